/* The machine's fp32 FMA peak, measured: the yardstick the model benchmarks divide by.
 *
 * A loop of independent fused multiply-adds on registers (no memory traffic), in the widest
 * vector width the CPU has, chosen at run time: AVX-512 (16 floats), else AVX2+FMA (8 floats),
 * else plain C (whatever the compiler makes of it). Every OpenMP thread of the calling team runs
 * the loop at once and the figure is the sum, so it is the peak of the cores the benchmark itself
 * uses, under the load of the moment. Best of several short runs: a run that lost its core to
 * another process is slower, never faster. Header-only, for the benchmarks in bench/. */
#ifndef CLINFM_BENCH_FMA_PEAK_H
#define CLINFM_BENCH_FMA_PEAK_H

#include <string.h>
#include <time.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#if defined(__x86_64__)
#include <immintrin.h>
#endif

static double fma_peak__now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* 12 independent accumulators, each its own variable so they stay in registers (gcc -O2 does
 * not unroll a loop over an array of them): enough to cover FMA latency (4 cycles) on 2 pipes
 * (8 in flight) with room to spare. Returns a value that depends on every lane so the loop is
 * not dropped. */
#define FMA_PEAK_ACC 12
#define FMA_PEAK__12(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)

#if defined(__x86_64__)
__attribute__((target("avx512f"))) static float fma_peak__avx512(long iters) {
    const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
#define FMA_PEAK__DECL(k) __m512 acc##k = _mm512_set1_ps((float)(k));
#define FMA_PEAK__STEP(k) acc##k = _mm512_fmadd_ps(acc##k, a, b);
#define FMA_PEAK__SUM(k) s = _mm512_add_ps(s, acc##k);
    FMA_PEAK__12(FMA_PEAK__DECL)
    for (long i = 0; i < iters; i++) {
        FMA_PEAK__12(FMA_PEAK__STEP)
    }
    __m512 s = _mm512_setzero_ps();
    FMA_PEAK__12(FMA_PEAK__SUM)
#undef FMA_PEAK__DECL
#undef FMA_PEAK__STEP
#undef FMA_PEAK__SUM
    return _mm512_reduce_add_ps(s);
}

__attribute__((target("avx2,fma"))) static float fma_peak__avx2(long iters) {
    const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
#define FMA_PEAK__DECL(k) __m256 acc##k = _mm256_set1_ps((float)(k));
#define FMA_PEAK__STEP(k) acc##k = _mm256_fmadd_ps(acc##k, a, b);
#define FMA_PEAK__SUM(k) s = _mm256_add_ps(s, acc##k);
    FMA_PEAK__12(FMA_PEAK__DECL)
    for (long i = 0; i < iters; i++) {
        FMA_PEAK__12(FMA_PEAK__STEP)
    }
    __m256 s = _mm256_setzero_ps();
    FMA_PEAK__12(FMA_PEAK__SUM)
#undef FMA_PEAK__DECL
#undef FMA_PEAK__STEP
#undef FMA_PEAK__SUM
    float f[8];
    _mm256_storeu_ps(f, s);
    return f[0] + f[1] + f[2] + f[3] + f[4] + f[5] + f[6] + f[7];
}
#endif

static float fma_peak__plain(long iters) {
    float acc[FMA_PEAK_ACC * 4];
    for (int k = 0; k < FMA_PEAK_ACC * 4; k++) acc[k] = (float)k;
    for (long i = 0; i < iters; i++)
        for (int k = 0; k < FMA_PEAK_ACC * 4; k++) acc[k] = acc[k] * 0.999999f + 1e-7f;
    float s = 0.0f;
    for (int k = 0; k < FMA_PEAK_ACC * 4; k++) s += acc[k];
    return s;
}

/* The widest path this CPU runs ("avx512", "avx2", "plain"); force (NULL or "" for none) caps
 * it, e.g. "avx2" on an AVX-512 machine. */
static const char *fma_peak_isa(const char *force) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    int no512 = force && (strcmp(force, "avx2") == 0 || strcmp(force, "plain") == 0);
    int no256 = force && strcmp(force, "plain") == 0;
    if (!no512 && __builtin_cpu_supports("avx512f")) return "avx512";
    if (!no256 && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "avx2";
#endif
    (void)force;
    return "plain";
}

static double fma_peak__thread_cpu(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Summed GFLOP/s of all threads of an OpenMP team of `threads` running the loop of `isa` at
 * once, best of `rounds` runs of about 0.1 s each. With cpu_time, each thread's flops are
 * divided by the CPU time it actually ran (what the cores can do when they are ours) instead
 * of by the wall-clock time of the whole team (what they did under the load of the moment). */
static double fma_peak_gflops(const char *isa, int threads, int rounds, int cpu_time) {
    int width = strcmp(isa, "avx512") == 0 ? 16 : strcmp(isa, "avx2") == 0 ? 8 : 4;
    const long iters = strcmp(isa, "plain") == 0 ? 2000000L : 4000000L;
    /* One FMA is two flops per lane; the plain loop counts its 4 * ACC scalar chains. */
    const double per_thread = (double)iters * FMA_PEAK_ACC * (width == 4 ? 4 : width) * 2.0;
    double best = 0.0;
    volatile float sink = 0.0f;
    for (int r = 0; r < rounds; r++) {
        double t0 = fma_peak__now(), rate = 0.0;
        int team = 1;
#ifdef _OPENMP
#pragma omp parallel num_threads(threads)
#endif
        {
            double c0 = fma_peak__thread_cpu();
            float v;
#if defined(__x86_64__)
            if (width == 16) v = fma_peak__avx512(iters);
            else if (width == 8) v = fma_peak__avx2(iters);
            else
#endif
                v = fma_peak__plain(iters);
            double c = fma_peak__thread_cpu() - c0;
#ifdef _OPENMP
#pragma omp critical
            {
                sink += v;
                rate += per_thread / c;
                team = omp_get_num_threads();
            }
#else
            sink += v;
            rate += per_thread / c;
#endif
        }
        double g = cpu_time ? rate / 1e9 : per_thread * team / (fma_peak__now() - t0) / 1e9;
        if (g > best) best = g;
    }
    (void)threads;
    return best;
}

#endif
