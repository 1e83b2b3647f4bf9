/* The GPT's layer kernels, forward and backward side by side; see gpt_kernels.h for the
 * contract (outputs first, dimensions last, backward adds into gradients).
 *
 * What this file is: plain C loops that gcc can vectorise (the element-wise ones built three
 * times, for AVX-512, AVX2 and the baseline, from gpt_kernels_simd.inc), matrix products handed
 * to oneDNN or OpenBLAS by kernel path (gpt_kernels.h), and a streaming ("flash") attention
 * that walks the causal triangle in tiles and keeps only one log-sum-exp per query for the
 * backward pass. What it is not: a tensor library. Every kernel knows the one layout the model
 * uses.
 *
 * Determinism: every reduction that crosses rows (bias and LayerNorm weight gradients, the
 * embedding scatter) is split over threads by column, never by row, so a result never depends
 * on which thread finished first. With a fixed thread count, training is bit-reproducible. */
#include "model/gpt_kernels.h"

#include <cblas.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#ifdef CLINFM_WITH_DNNL
#include <oneapi/dnnl/dnnl.h>
#endif

/* ------------------------------------------------------------------------------------------
 * kernel paths and the one matrix product
 *
 * Why oneDNN for AVX-512: Debian's OpenBLAS is pinned to its Haswell (AVX2) kernels on this
 * kind of machine (OPENBLAS_CORETYPE), Debian's BLIS 0.9 does not recognise Zen 4/5 and falls
 * back to its generic kernels, and libxsmm hands products of this size to the BLAS it was linked
 * with; oneDNN picks its AVX-512 sgemm from the CPU's feature bits, whatever the vendor, and ran
 * the model's products at 1.5-2x OpenBLAS's speed (bench/gemm_libs.c, docs/MODEL.md). Where the
 * CPU lacks AVX-512, OpenBLAS stays: oneDNN capped at AVX2 was about 15% slower on them. */

static gpt_path path_cpu = GPT_PATH_PLAIN; /* the widest path this CPU and build run */
static gpt_path path_now = GPT_PATH_PLAIN; /* the path in effect */
static pthread_once_t path_once = PTHREAD_ONCE_INIT;

static gpt_path path_parse(const char *s, gpt_path dflt) {
    if (!s || !*s) return dflt;
    if (strcmp(s, "avx512") == 0) return GPT_PATH_AVX512;
    if (strcmp(s, "avx2") == 0) return GPT_PATH_AVX2;
    if (strcmp(s, "plain") == 0) return GPT_PATH_PLAIN;
    return dflt; /* an unknown name leaves the default: speed is never a reason to fail */
}

static void path_init(void) {
    gpt_path p = GPT_PATH_PLAIN;
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) p = GPT_PATH_AVX2;
#ifdef CLINFM_WITH_DNNL
    if (p == GPT_PATH_AVX2 && __builtin_cpu_supports("avx512f") &&
        __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("avx512dq"))
        p = GPT_PATH_AVX512;
#endif
#endif
    path_cpu = p;
    gpt_path want = path_parse(getenv("CLINFM_KERNELS"), p);
    path_now = want < p ? want : p;
}

gpt_path gpt__kernels_path(void) {
    pthread_once(&path_once, path_init);
    return path_now;
}

gpt_path gpt__kernels_set_path(gpt_path want) {
    pthread_once(&path_once, path_init);
    path_now = want < path_cpu ? want : path_cpu;
    return path_now;
}

const char *gpt__kernels_path_name(gpt_path p) {
    return p == GPT_PATH_AVX512 ? "avx512" : p == GPT_PATH_AVX2 ? "avx2" : "plain";
}

/* Below this many multiply-adds a product runs on the calling thread: oneDNN would otherwise
 * wake every OpenMP thread for it (OpenBLAS has a threshold of its own), and waking threads
 * for a few microseconds of work costs more than it saves, far more on a busy machine. */
#define GEMM_PAR_MIN (1 << 21)

void gpt__sgemm(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
                const float *B, int ldb, float beta, float *C, int ldc) {
    if (M <= 0 || N <= 0) return;
#ifdef CLINFM_WITH_DNNL
    if (gpt__kernels_path() == GPT_PATH_AVX512) {
        int restore = 0;
#ifdef _OPENMP
        /* oneDNN sizes its team with omp_get_max_threads() (it runs serially inside an active
         * parallel region, such as the batch slices, already). */
        if ((double)M * N * K < GEMM_PAR_MIN && !omp_in_parallel() && omp_get_max_threads() > 1) {
            restore = omp_get_max_threads();
            omp_set_num_threads(1);
        }
#endif
        dnnl_status_t st = dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', M, N, K, alpha, A, lda, B,
                                      ldb, beta, C, ldc);
#ifdef _OPENMP
        if (restore) omp_set_num_threads(restore);
#endif
        if (st == dnnl_success) return;
        /* oneDNN refuses only arguments OpenBLAS would refuse too, or fails to allocate its
         * packing buffers; OpenBLAS then does the product (nothing was written to C yet). */
    }
#endif
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M,
                N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

/* ------------------------------------------------------------------------------------------
 * small helpers */

static int thread_id(void) {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

static int thread_count(void) {
#ifdef _OPENMP
    return omp_get_num_threads();
#else
    return 1;
#endif
}

/* The calling thread's share [c0, c1) of C columns, in blocks of 16 so vector loops stay whole. */
static void thread_columns(int C, int *c0, int *c1) {
    int nt = thread_count(), tid = thread_id();
    int blocks = (C + 15) / 16;
    int per = blocks / nt, extra = blocks % nt;
    int b0 = tid * per + (tid < extra ? tid : extra);
    int b1 = b0 + per + (tid < extra ? 1 : 0);
    *c0 = b0 * 16 < C ? b0 * 16 : C;
    *c1 = b1 * 16 < C ? b1 * 16 : C;
}

/* Three builds of the element-wise kernels (AVX-512, AVX2, baseline) need a compiler that takes
 * per-function targets for x86-64 micro-architecture levels; elsewhere there is one build. */
#if defined(__x86_64__) && !defined(GPT_NO_CLONES) && \
    ((defined(__clang__) && __clang_major__ >= 14) || (!defined(__clang__) && __GNUC__ >= 11))
#define GPT_MULTI_TARGET 1
#else
#define GPT_MULTI_TARGET 0
#endif

/* GELU (tanh approximation) computes tanh(u) as 1 - 2 / (exp(2u) + 1), with
 * u = GELU_K (x + 0.044715 x^3). */
#define GELU_K 0.7978845608f /* sqrt(2 / pi) */

/* The derivative of that GELU at x. */
static inline float gelu_grad(float x) {
    float u = GELU_K * (x + 0.044715f * x * x * x);
    float th = 1.0f - 2.0f / (gpt__expf(2.0f * u) + 1.0f);
    float du = GELU_K * (1.0f + 3.0f * 0.044715f * x * x);
    return 0.5f * (1.0f + th) + 0.5f * x * (1.0f - th * th) * du;
}

/* Element-wise kernels run over chunks of this many elements, one chunk per loop iteration. */
#define CHUNK 4096

/* Dropout: element i (counted over the whole tensor) is kept when the top 24 bits of
 * mix32(i * golden + key) reach the threshold p * 2^24; kept elements are scaled by 1/(1-p). */
static uint32_t drop_threshold(float p) { return (uint32_t)(p * 16777216.0f); }

/* Returns scale for kept elements and 0 for dropped ones, without a branch. */
static inline float keep_factor(size_t i, uint32_t key, uint32_t thr, float scale) {
    uint32_t h = gpt__mix32((uint32_t)i * 0x9E3779B9U + key);
    int32_t keep = -(int32_t)((int32_t)(h >> 8) >= (int32_t)thr);
    return gpt__bits_f(keep & gpt__f_bits(scale));
}

/* ------------------------------------------------------------------------------------------
 * the element-wise kernels of each path (gpt_kernels_simd.inc, compiled three times) */

typedef struct {
    float (*dot)(const float *a, const float *b, int n);
    void (*axpy)(float *y, float a, const float *x, int n);
    void (*scale_row)(float *y, float a, int n);
    float (*max_of)(const float *x, int n);
    float (*exp_shift_sum)(float *p, const float *x, float shift, int n);
    void (*layernorm_row)(float *out, float *mean, float *rstd, const float *x, const float *w,
                          const float *b, int C);
    void (*layernorm_backward_row)(float *dinp, const float *dout, const float *x,
                                   const float *w, float mean, float rstd, int C);
    void (*layernorm_param_grads)(float *dweight, float *dbias, const float *dout,
                                  const float *inp, const float *mean, const float *rstd,
                                  size_t N, int C, int c0, int c1);
    void (*column_sums)(float *acc, const float *x, size_t N, int stride, int c0, int c1);
    float (*online_softmax_row)(float *s, int lim, int nk, float *m, float *l);
    void (*attention_weights_row)(float *s, float lse_i, int lim, int nk);
    void (*attention_dscore_row)(float *dp, const float *p, float d_i, float scale, int nk);
    void (*gelu_forward_chunk)(float *out, const float *x, size_t n);
    void (*gelu_backward_chunk)(float *dinp, const float *x, const float *dout, size_t n,
                                int add);
    void (*residual_dropout_chunk)(float *out, const float *res, const float *br, size_t i0,
                                   size_t n, uint32_t key, uint32_t thr, float scale);
    void (*residual_chunk)(float *out, const float *res, const float *br, size_t n);
    void (*dropout_backward_chunk)(float *dinp, const float *dout, size_t i0, size_t n,
                                   uint32_t key, uint32_t thr, float scale, int add);
    void (*dropout_forward_chunk)(float *x, size_t i0, size_t n, uint32_t key, uint32_t thr,
                                  float scale);
    float (*crossentropy_row)(float *p, const float *logit, int target, int V, int Vp);
    void (*crossentropy_backward_row)(float *p, int target, float dloss, int V);
    double (*sum_squares)(const float *x, size_t n);
    void (*adamw_chunk)(float *p, const float *g, float *mm, float *vv, size_t n, float gscale,
                        float b1, float b2, float a, float inv_bc2, float eps, float lr_wd);
} simd_kernels;

/* The baseline copy: whatever the compiler's default target is (SSE2 on x86-64). */
#define SIMD(name) name##_plain
#include "model/gpt_kernels_simd.inc"
#undef SIMD

#if GPT_MULTI_TARGET
/* gcc and clang spell "compile the functions below for this target" differently. The AVX-512
 * copy asks for 512-bit vectors: gcc's default tuning would otherwise keep them at 256. */
#if defined(__clang__)
#define SIMD_TARGET_BEGIN(t) _Pragma(GPT__STR(clang attribute push(__attribute__((target(t))), \
                                                                   apply_to = function)))
#define SIMD_TARGET_END _Pragma("clang attribute pop")
#define SIMD_AVX512 "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,bmi,bmi2,f16c,popcnt"
#else
#define SIMD_TARGET_BEGIN(t) _Pragma("GCC push_options") _Pragma(GPT__STR(GCC target(t)))
#define SIMD_TARGET_END _Pragma("GCC pop_options")
#define SIMD_AVX512 "arch=x86-64-v4,prefer-vector-width=512"
#endif
#define GPT__STR(x) #x

SIMD_TARGET_BEGIN("avx2,fma,bmi,bmi2,f16c,popcnt")
#define SIMD(name) name##_avx2
#include "model/gpt_kernels_simd.inc"
#undef SIMD
SIMD_TARGET_END

SIMD_TARGET_BEGIN(SIMD_AVX512)
#define SIMD(name) name##_avx512
#include "model/gpt_kernels_simd.inc"
#undef SIMD
SIMD_TARGET_END
#endif

/* The table of the path in effect. */
static const simd_kernels *kernels(void) {
#if GPT_MULTI_TARGET
    switch (gpt__kernels_path()) {
    case GPT_PATH_AVX512: return &kernels_avx512;
    case GPT_PATH_AVX2: return &kernels_avx2;
    default: break;
    }
#endif
    return &kernels_plain;
}

/* ------------------------------------------------------------------------------------------
 * embedding */

void gpt__encoder_forward(float *out, const int *inp, const float *wte, const float *wpe,
                          int B, int T, int C) {
    GPT_OMP(omp parallel for schedule(static) if ((size_t)B * T * C >= GPT_PAR_MIN))
    for (size_t bt = 0; bt < (size_t)B * T; bt++) {
        const float *te = wte + (size_t)inp[bt] * C, *pe = wpe + (bt % (size_t)T) * C;
        float *o = out + bt * C;
        for (int c = 0; c < C; c++) o[c] = te[c] + pe[c];
    }
}

void gpt__encoder_backward(float *dwte, float *dwpe, const float *dout, const int *inp,
                           int B, int T, int C) {
    /* Several positions may hold the same token, so rows of dwte collide; splitting by column
     * keeps the scatter race-free and its summation order fixed. */
    GPT_OMP(omp parallel if ((size_t)B * T * C >= GPT_PAR_MIN))
    {
        int c0, c1;
        thread_columns(C, &c0, &c1);
        for (size_t bt = 0; bt < (size_t)B * T; bt++) {
            const float *d = dout + bt * C;
            float *te = dwte + (size_t)inp[bt] * C, *pe = dwpe + (bt % (size_t)T) * C;
            for (int c = c0; c < c1; c++) {
                te[c] += d[c];
                pe[c] += d[c];
            }
        }
    }
}

/* ------------------------------------------------------------------------------------------
 * LayerNorm */

void gpt__layernorm_forward(float *out, float *mean, float *rstd, const float *inp,
                            const float *weight, const float *bias, size_t N, int C) {
    const simd_kernels *k = kernels();
    GPT_OMP(omp parallel for schedule(static) if (N * (size_t)C >= GPT_PAR_MIN))
    for (size_t i = 0; i < N; i++)
        k->layernorm_row(out + i * C, mean ? mean + i : NULL, rstd ? rstd + i : NULL, inp + i * C,
                      weight, bias, C);
}

void gpt__layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                             const float *inp, const float *weight, const float *mean,
                             const float *rstd, size_t N, int C) {
    const simd_kernels *k = kernels();
    GPT_OMP(omp parallel if (N * (size_t)C >= GPT_PAR_MIN))
    {
        GPT_OMP(omp for schedule(static) nowait)
        for (size_t i = 0; i < N; i++)
            k->layernorm_backward_row(dinp + i * C, dout + i * C, inp + i * C, weight, mean[i],
                                   rstd[i], C);
        int c0, c1;
        thread_columns(C, &c0, &c1);
        k->layernorm_param_grads(dweight, dbias, dout, inp, mean, rstd, N, C, c0, c1);
    }
}

/* ------------------------------------------------------------------------------------------
 * matrix products */

void gpt__matmul_forward_ref(float *out, const float *inp, const float *weight,
                             const float *bias, size_t N, int C, int OC) {
    for (size_t i = 0; i < N; i++)
        for (int o = 0; o < OC; o++) {
            float v = bias ? bias[o] : 0.0f;
            for (int c = 0; c < C; c++) v += inp[i * C + c] * weight[(size_t)o * C + c];
            out[i * OC + o] = v;
        }
}

void gpt__matmul_forward(float *out, const float *inp, const float *weight, const float *bias,
                         size_t N, int C, int OC) {
    float beta = 0.0f;
    if (bias) {
        GPT_OMP(omp parallel for schedule(static) if (N * (size_t)OC >= GPT_PAR_MIN))
        for (size_t i = 0; i < N; i++) memcpy(out + i * OC, bias, (size_t)OC * sizeof(float));
        beta = 1.0f;
    }
    gpt__sgemm(0, 1, (int)N, OC, C, 1.0f, inp, C, weight, C, beta, out, OC);
}

void gpt__matmul_backward_ref(float *dinp, float *dweight, float *dbias, const float *dout,
                              const float *inp, const float *weight, size_t N, int C, int OC) {
    for (size_t i = 0; i < N; i++)
        for (int o = 0; o < OC; o++) {
            float d = dout[i * OC + o];
            if (dbias) dbias[o] += d;
            for (int c = 0; c < C; c++) {
                dinp[i * C + c] += weight[(size_t)o * C + c] * d;
                dweight[(size_t)o * C + c] += inp[i * C + c] * d;
            }
        }
}

/* dinp_beta 1 adds into dinp, 0 overwrites it (without reading it). */
static void matmul_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                            const float *inp, const float *weight, size_t N, int C, int OC,
                            float dinp_beta) {
    const simd_kernels *k = kernels();
    gpt__sgemm(0, 0, (int)N, C, OC, 1.0f, dout, OC, weight, C, dinp_beta, dinp, C);
    gpt__sgemm(1, 0, OC, C, (int)N, 1.0f, dout, OC, inp, C, 1.0f, dweight, C);
    if (dbias) {
        GPT_OMP(omp parallel if (N * (size_t)OC >= GPT_PAR_MIN))
        {
            int c0, c1;
            thread_columns(OC, &c0, &c1);
            k->column_sums(dbias, dout, N, OC, c0, c1);
        }
    }
}

void gpt__matmul_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                          const float *inp, const float *weight, size_t N, int C, int OC) {
    matmul_backward(dinp, dweight, dbias, dout, inp, weight, N, C, OC, 1.0f);
}

void gpt__matmul_backward_set(float *dinp, float *dweight, float *dbias, const float *dout,
                              const float *inp, const float *weight, size_t N, int C, int OC) {
    matmul_backward(dinp, dweight, dbias, dout, inp, weight, N, C, OC, 0.0f);
}

/* ------------------------------------------------------------------------------------------
 * causal self-attention: the plain reference, O(T^2) per head and no scratch */

/* a . b over n elements, summed in order. */
static float ref_dot(const float *a, const float *b, int n) {
    float s = 0.0f;
    for (int d = 0; d < n; d++) s += a[d] * b[d];
    return s;
}

/* The largest scaled score of query q against the keys at positions 0..t of the rows from
 * row0 (inp as for the attention kernels, head offset ho). */
static float ref_score_max(const float *q, const float *inp, size_t row0, int t, int C, int ho,
                           int hs, float scale) {
    float mx = -INFINITY;
    for (int u = 0; u <= t; u++) {
        float s = ref_dot(q, inp + (row0 + u) * 3 * C + C + ho, hs);
        if (s * scale > mx) mx = s * scale;
    }
    return mx;
}

void gpt__attention_forward_ref(float *out, float *lse, const float *inp,
                                int B, int T, int C, int NH) {
    int hs = C / NH, C3 = 3 * C;
    float scale = 1.0f / sqrtf((float)hs);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++)
            for (int t = 0; t < T; t++) {
                const float *q = inp + ((size_t)b * T + t) * C3 + h * hs;
                float mx = ref_score_max(q, inp, (size_t)b * T, t, C, h * hs, hs, scale);
                float sum = 0.0f;
                float *o = out + ((size_t)b * T + t) * C + h * hs;
                for (int d = 0; d < hs; d++) o[d] = 0.0f;
                for (int u = 0; u <= t; u++) {
                    const float *k = inp + ((size_t)b * T + u) * C3 + C + h * hs;
                    const float *v = k + C;
                    float e = expf(ref_dot(q, k, hs) * scale - mx);
                    sum += e;
                    for (int d = 0; d < hs; d++) o[d] += e * v[d];
                }
                for (int d = 0; d < hs; d++) o[d] /= sum;
                if (lse) lse[((size_t)b * NH + h) * T + t] = mx + logf(sum);
            }
}

void gpt__attention_backward_ref(float *dinp, const float *dout, const float *inp,
                                 int B, int T, int C, int NH) {
    int hs = C / NH, C3 = 3 * C;
    float scale = 1.0f / sqrtf((float)hs);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++)
            for (int t = 0; t < T; t++) {
                const float *q = inp + ((size_t)b * T + t) * C3 + h * hs;
                const float *dy = dout + ((size_t)b * T + t) * C + h * hs;
                float *dq = dinp + ((size_t)b * T + t) * C3 + h * hs;
                /* Pass 1: max and normaliser of the scores, as in forward. */
                float mx = ref_score_max(q, inp, (size_t)b * T, t, C, h * hs, hs, scale);
                float sum = 0.0f;
                for (int u = 0; u <= t; u++) {
                    const float *k = inp + ((size_t)b * T + u) * C3 + C + h * hs;
                    sum += expf(ref_dot(q, k, hs) * scale - mx);
                }
                /* Pass 2: sum_u att[u] * datt[u], the softmax Jacobian's shared term. */
                float shared = 0.0f;
                for (int u = 0; u <= t; u++) {
                    const float *k = inp + ((size_t)b * T + u) * C3 + C + h * hs;
                    shared += expf(ref_dot(q, k, hs) * scale - mx) / sum * ref_dot(dy, k + C, hs);
                }
                /* Pass 3: gradients into q, k and v. */
                for (int u = 0; u <= t; u++) {
                    const float *k = inp + ((size_t)b * T + u) * C3 + C + h * hs;
                    const float *v = k + C;
                    float *dk = dinp + ((size_t)b * T + u) * C3 + C + h * hs;
                    float *dv = dk + C;
                    float a = expf(ref_dot(q, k, hs) * scale - mx) / sum;
                    float da = ref_dot(dy, v, hs);
                    float ds = a * (da - shared) * scale;
                    for (int d = 0; d < hs; d++) {
                        dq[d] += ds * k[d];
                        dk[d] += ds * q[d];
                        dv[d] += a * dy[d];
                    }
                }
            }
}

/* ------------------------------------------------------------------------------------------
 * causal self-attention: streaming tiles, OpenMP over (batch, head)
 *
 * Forward keeps, per query row, the running maximum m and normaliser l of the scores seen so
 * far and rescales the partial output when m grows (the online softmax), so scores exist only
 * one BQ x BK tile at a time. Backward rebuilds each tile's weights from the saved lse, the
 * way FlashAttention-2 does: P = exp(S - lse), dS = P * (dP - D) with D = rowsum(dO * O). Key
 * tiles wholly above the diagonal are never touched, which halves the work of a full T x T. */

void gpt__attention_forward(float *out, float *lse, const float *inp, float *scratch,
                            int nthreads, int B, int T, int C, int NH) {
    const simd_kernels *k = kernels();
    const int hs = C / NH, C3 = 3 * C;
    const float scale = 1.0f / sqrtf((float)hs);
    GPT_OMP(omp parallel for collapse(2) schedule(static) num_threads(nthreads)
            if ((size_t)B * NH * T * T * (C / NH) >= GPT_PAR_MIN))
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++) {
            float *S = scratch + (size_t)thread_id() * GPT_ATT_SCRATCH(hs, T);
            float *O = S + 2 * GPT_ATT_BQ * GPT_ATT_BK;
            float *mrow = O + (size_t)GPT_ATT_BQ * hs, *lrow = mrow + GPT_ATT_BQ;
            const float *Q = inp + (size_t)b * T * C3 + h * hs, *K = Q + C, *V = Q + 2 * C;
            float *Y = out + (size_t)b * T * C + h * hs;
            float *L = lse + ((size_t)b * NH + h) * T;
            for (int q0 = 0; q0 < T; q0 += GPT_ATT_BQ) {
                int nq = T - q0 < GPT_ATT_BQ ? T - q0 : GPT_ATT_BQ;
                for (int i = 0; i < nq; i++) {
                    mrow[i] = -INFINITY;
                    lrow[i] = 0.0f;
                }
                memset(O, 0, (size_t)nq * hs * sizeof(float));
                int kend = q0 + nq; /* keys 0 .. kend-1 are visible to some row of this tile */
                for (int k0 = 0; k0 < kend; k0 += GPT_ATT_BK) {
                    int nk = kend - k0 < GPT_ATT_BK ? kend - k0 : GPT_ATT_BK;
                    gpt__sgemm(0, 1, nq, nk, hs, scale, Q + (size_t)q0 * C3, C3,
                               K + (size_t)k0 * C3, C3, 0.0f, S, GPT_ATT_BK);
                    for (int i = 0; i < nq; i++) {
                        int lim = q0 + i - k0 + 1; /* keys k0 .. q0+i are visible to row i */
                        if (lim > nk) lim = nk;
                        float alpha = k->online_softmax_row(S + (size_t)i * GPT_ATT_BK, lim, nk,
                                                         &mrow[i], &lrow[i]);
                        if (alpha != 1.0f) k->scale_row(O + (size_t)i * hs, alpha, hs);
                    }
                    gpt__sgemm(0, 0, nq, hs, nk, 1.0f, S, GPT_ATT_BK, V + (size_t)k0 * C3, C3,
                               1.0f, O, hs);
                }
                for (int i = 0; i < nq; i++) {
                    float inv = 1.0f / lrow[i];
                    float *y = Y + (size_t)(q0 + i) * C;
                    const float *o = O + (size_t)i * hs;
                    for (int d = 0; d < hs; d++) y[d] = o[d] * inv;
                    L[q0 + i] = mrow[i] + logf(lrow[i]);
                }
            }
        }
}

void gpt__attention_backward(float *dinp, const float *dout, const float *inp, const float *out,
                             const float *lse, float *scratch, int nthreads,
                             int B, int T, int C, int NH) {
    const simd_kernels *k = kernels();
    const int hs = C / NH, C3 = 3 * C;
    const float scale = 1.0f / sqrtf((float)hs);
    GPT_OMP(omp parallel for collapse(2) schedule(static) num_threads(nthreads)
            if ((size_t)B * NH * T * T * (C / NH) >= GPT_PAR_MIN))
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++) {
            float *P = scratch + (size_t)thread_id() * GPT_ATT_SCRATCH(hs, T);
            float *dP = P + GPT_ATT_BQ * GPT_ATT_BK;
            float *D = dP + GPT_ATT_BQ * GPT_ATT_BK + (size_t)GPT_ATT_BQ * hs + 2 * GPT_ATT_BQ;
            const float *Q = inp + (size_t)b * T * C3 + h * hs, *K = Q + C, *V = Q + 2 * C;
            float *dQ = dinp + (size_t)b * T * C3 + h * hs, *dK = dQ + C, *dV = dQ + 2 * C;
            const float *dY = dout + (size_t)b * T * C + h * hs;
            const float *Y = out + (size_t)b * T * C + h * hs;
            const float *L = lse + ((size_t)b * NH + h) * T;
            for (int t = 0; t < T; t++) D[t] = k->dot(dY + (size_t)t * C, Y + (size_t)t * C, hs);
            for (int k0 = 0; k0 < T; k0 += GPT_ATT_BK) {
                int nk = T - k0 < GPT_ATT_BK ? T - k0 : GPT_ATT_BK;
                /* Query tiles from the one holding row k0 on: earlier rows cannot see k0.. */
                for (int q0 = (k0 / GPT_ATT_BQ) * GPT_ATT_BQ; q0 < T; q0 += GPT_ATT_BQ) {
                    int nq = T - q0 < GPT_ATT_BQ ? T - q0 : GPT_ATT_BQ;
                    /* ..and this tile's rows see no key past q0 + nq - 1: the keys beyond get
                     * no gradient from it, so they are left out (this halves the work for a
                     * single key tile, where every query tile used to span all T keys). */
                    int nv = q0 + nq - k0 < nk ? q0 + nq - k0 : nk;
                    gpt__sgemm(0, 1, nq, nv, hs, scale, Q + (size_t)q0 * C3, C3,
                               K + (size_t)k0 * C3, C3, 0.0f, P, GPT_ATT_BK);
                    for (int i = 0; i < nq; i++) {
                        int lim = q0 + i - k0 + 1;
                        if (lim > nv) lim = nv;
                        k->attention_weights_row(P + (size_t)i * GPT_ATT_BK, L[q0 + i], lim, nv);
                    }
                    /* dV += P^T dY */
                    gpt__sgemm(1, 0, nv, hs, nq, 1.0f, P, GPT_ATT_BK, dY + (size_t)q0 * C, C,
                               1.0f, dV + (size_t)k0 * C3, C3);
                    /* dP = dY V^T, then dS */
                    gpt__sgemm(0, 1, nq, nv, hs, 1.0f, dY + (size_t)q0 * C, C,
                               V + (size_t)k0 * C3, C3, 0.0f, dP, GPT_ATT_BK);
                    for (int i = 0; i < nq; i++)
                        k->attention_dscore_row(dP + (size_t)i * GPT_ATT_BK,
                                                P + (size_t)i * GPT_ATT_BK, D[q0 + i], scale, nv);
                    /* dQ += dS K, dK += dS^T Q */
                    gpt__sgemm(0, 0, nq, hs, nv, 1.0f, dP, GPT_ATT_BK, K + (size_t)k0 * C3, C3,
                               1.0f, dQ + (size_t)q0 * C3, C3);
                    gpt__sgemm(1, 0, nv, hs, nq, 1.0f, dP, GPT_ATT_BK, Q + (size_t)q0 * C3, C3,
                               1.0f, dK + (size_t)k0 * C3, C3);
                }
            }
        }
}

/* ------------------------------------------------------------------------------------------
 * attention of new rows against a KV cache (inference) */

void gpt__attention_cached_forward(float *out, const float *q, int q_stride, const float *kcache,
                                   const float *vcache, size_t kv_stride, int n_seq, int n_new,
                                   int pos0, float *scratch, int nthreads, int C, int NH) {
    const simd_kernels *k = kernels();
    const int hs = C / NH, len = pos0 + n_new;
    const float scale = 1.0f / sqrtf((float)hs);
    GPT_OMP(omp parallel for collapse(2) schedule(static) num_threads(nthreads)
            if ((size_t)n_seq * n_new * len * C >= GPT_PAR_MIN))
    for (int r = 0; r < n_seq * n_new; r++)
        for (int h = 0; h < NH; h++) {
            float *s = scratch + (size_t)thread_id() * len;
            int seq = r / n_new, vis = pos0 + r % n_new + 1;
            const float *qr = q + (size_t)r * q_stride + h * hs;
            const float *K = kcache + seq * kv_stride + h * hs;
            const float *V = vcache + seq * kv_stride + h * hs;
            for (int u = 0; u < vis; u++) s[u] = k->dot(qr, K + (size_t)u * C, hs) * scale;
            float mx = k->max_of(s, vis);
            float inv = 1.0f / k->exp_shift_sum(s, s, mx, vis);
            float *o = out + (size_t)r * C + h * hs;
            memset(o, 0, (size_t)hs * sizeof(float));
            for (int u = 0; u < vis; u++) k->axpy(o, s[u] * inv, V + (size_t)u * C, hs);
        }
}

/* ------------------------------------------------------------------------------------------
 * GELU (tanh approximation) */

void gpt__gelu_forward(float *out, const float *inp, size_t N) {
    const simd_kernels *k = kernels();
    GPT_OMP(omp parallel for schedule(static) if (N >= GPT_PAR_MIN))
    for (size_t i = 0; i < N; i += CHUNK)
        k->gelu_forward_chunk(out + i, inp + i, N - i < CHUNK ? N - i : CHUNK);
}

static void gelu_backward(float *dinp, const float *inp, const float *dout, size_t N, int add) {
    const simd_kernels *k = kernels();
    GPT_OMP(omp parallel for schedule(static) if (N >= GPT_PAR_MIN))
    for (size_t i = 0; i < N; i += CHUNK)
        k->gelu_backward_chunk(dinp + i, inp + i, dout + i, N - i < CHUNK ? N - i : CHUNK, add);
}

void gpt__gelu_backward(float *dinp, const float *inp, const float *dout, size_t N) {
    gelu_backward(dinp, inp, dout, N, 1);
}

void gpt__gelu_backward_set(float *dinp, const float *inp, const float *dout, size_t N) {
    gelu_backward(dinp, inp, dout, N, 0);
}

/* ------------------------------------------------------------------------------------------
 * dropout (the mask: keep_factor above) */

void gpt__residual_dropout_forward(float *out, const float *res, const float *branch,
                                   uint32_t key, float p, size_t offset, size_t N) {
    const simd_kernels *k = kernels();
    uint32_t thr = drop_threshold(p);
    float scale = 1.0f / (1.0f - p);
    GPT_OMP(omp parallel for schedule(static) if (N >= GPT_PAR_MIN))
    for (size_t i = 0; i < N; i += CHUNK) {
        size_t n = N - i < CHUNK ? N - i : CHUNK;
        if (p > 0.0f)
            k->residual_dropout_chunk(out + i, res + i, branch + i, offset + i, n, key, thr, scale);
        else k->residual_chunk(out + i, res + i, branch + i, n);
    }
}

void gpt__dropout_forward(float *inout, uint32_t key, float p, size_t offset, size_t N) {
    const simd_kernels *k = kernels();
    if (p <= 0.0f) return;
    uint32_t thr = drop_threshold(p);
    float scale = 1.0f / (1.0f - p);
    GPT_OMP(omp parallel for schedule(static) if (N >= GPT_PAR_MIN))
    for (size_t i = 0; i < N; i += CHUNK)
        k->dropout_forward_chunk(inout + i, offset + i, N - i < CHUNK ? N - i : CHUNK, key, thr,
                              scale);
}

static void dropout_backward(float *dinp, const float *dout, uint32_t key, float p,
                             size_t offset, size_t N, int add) {
    const simd_kernels *k = kernels();
    uint32_t thr = drop_threshold(p);
    float scale = 1.0f / (1.0f - p);
    GPT_OMP(omp parallel for schedule(static) if (N >= GPT_PAR_MIN))
    for (size_t i = 0; i < N; i += CHUNK) {
        size_t n = N - i < CHUNK ? N - i : CHUNK;
        if (p > 0.0f)
            k->dropout_backward_chunk(dinp + i, dout + i, offset + i, n, key, thr, scale, add);
        else if (add) k->residual_chunk(dinp + i, dinp + i, dout + i, n);
        else memcpy(dinp + i, dout + i, n * sizeof(float));
    }
}

void gpt__dropout_backward(float *dinp, const float *dout, uint32_t key, float p, size_t offset,
                           size_t N) {
    dropout_backward(dinp, dout, key, p, offset, N, 1);
}

void gpt__dropout_backward_set(float *dinp, const float *dout, uint32_t key, float p,
                               size_t offset, size_t N) {
    dropout_backward(dinp, dout, key, p, offset, N, 0);
}

void gpt__residual_dropout_backward(float *dbranch, const float *dout, uint32_t key, float p,
                                    size_t offset, size_t N) {
    gpt__dropout_backward(dbranch, dout, key, p, offset, N);
}

/* ------------------------------------------------------------------------------------------
 * softmax + cross-entropy, fused */

void gpt__crossentropy_forward(float *losses, float *probs, const float *logits,
                               const int *targets, size_t N, int V, int Vp) {
    const simd_kernels *k = kernels();
    GPT_OMP(omp parallel for schedule(static) if (N * (size_t)Vp >= GPT_PAR_MIN))
    for (size_t i = 0; i < N; i++)
        losses[i] = k->crossentropy_row(probs + i * Vp, logits + i * Vp, targets[i], V, Vp);
}

void gpt__crossentropy_backward(float *probs_to_dlogits, const int *targets, float dloss,
                                size_t N, int V, int Vp) {
    const simd_kernels *k = kernels();
    GPT_OMP(omp parallel for schedule(static) if (N * (size_t)Vp >= GPT_PAR_MIN))
    for (size_t i = 0; i < N; i++)
        k->crossentropy_backward_row(probs_to_dlogits + i * Vp, targets[i], dloss, V);
}

void gpt__softmax_row(float *probs, const float *logits, int V, float temperature) {
    const simd_kernels *k = kernels();
    float inv_t = 1.0f / temperature;
    float mx = k->max_of(logits, V) * inv_t;
    float sum = 0.0f;
    for (int i = 0; i < V; i++) {
        probs[i] = expf(logits[i] * inv_t - mx);
        sum += probs[i];
    }
    for (int i = 0; i < V; i++) probs[i] /= sum;
}

/* ------------------------------------------------------------------------------------------
 * AdamW helpers (the loop over tensors is gpt.c's) */

double gpt__sum_squares(const float *x, size_t n) { return kernels()->sum_squares(x, n); }

void gpt__adamw_chunk(float *p, const float *g, float *m, float *v, size_t n, float gscale,
                      float b1, float b2, float a, float inv_bc2, float eps, float lr_wd) {
    kernels()->adamw_chunk(p, g, m, v, n, gscale, b1, b2, a, inv_bc2, eps, lr_wd);
}
