/* Which sgemm for the model: OpenBLAS, BLIS, oneDNN and libxsmm on the model's own shapes.
 *
 * The GPT trainer (src/model/gpt.c) cuts a batch into slices and each thread runs whole
 * slices, calling every matrix product single-threaded; so the figure that matters is each
 * library's single-threaded speed with both threads busy at once. For the reference
 * configuration (d_model 256, batch 8 x 256 tokens, 2 threads, 4 slices) a slice has 512 rows.
 * Shapes, row-major, as gpt__matmul_forward/backward call them (N rows, C in, OC out):
 *   forward  out (N, OC) = inp (N, C) @ W (OC, C)^T            "NT"
 *   backward dinp (N, C) += dout (N, OC) @ W (OC, C)            "NN"
 *            dW (OC, C) += dout (N, OC)^T @ inp (N, C)          "TN"
 * Prints GFLOP/s per library and shape and the share of the FMA peak measured in the same run.
 * Build and run: bash bench/gemm_libs.sh. Not part of make test. */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fma_peak.h"

#ifdef HAVE_BLIS
#include <blis.h>
#endif
#ifdef HAVE_DNNL
#include <oneapi/dnnl/dnnl.h>
#endif
#ifdef HAVE_XSMM
#include <libxsmm.h>
#endif

typedef struct {
    char ta, tb;
    int M, N, K;
    const char *what;
} shape;

/* One row-major C (M, N) = op(A) op(B) + beta C with leading dimensions implied by shape. */
typedef void (*gemm_fn)(char ta, char tb, int M, int N, int K, const float *A, const float *B,
                        float beta, float *C);

static void g_openblas(char ta, char tb, int M, int N, int K, const float *A, const float *B,
                       float beta, float *C) {
    cblas_sgemm(CblasRowMajor, ta == 'T' ? CblasTrans : CblasNoTrans,
                tb == 'T' ? CblasTrans : CblasNoTrans, M, N, K, 1.0f, A, ta == 'T' ? M : K, B,
                tb == 'T' ? K : N, beta, C, N);
}

#ifdef HAVE_BLIS
static rntm_t blis_one;
static void g_blis(char ta, char tb, int M, int N, int K, const float *A, const float *B,
                   float beta, float *C) {
    float one = 1.0f;
    /* Row-major: row stride lda, column stride 1 of the stored matrix; BLIS transposes. */
    inc_t rsa = ta == 'T' ? M : K, rsb = tb == 'T' ? K : N;
    bli_sgemm_ex(ta == 'T' ? BLIS_TRANSPOSE : BLIS_NO_TRANSPOSE,
                 tb == 'T' ? BLIS_TRANSPOSE : BLIS_NO_TRANSPOSE, M, N, K, &one, (float *)A, rsa, 1,
                 (float *)B, rsb, 1, &beta, C, N, 1, NULL, &blis_one);
}
#endif

#ifdef HAVE_DNNL
static void g_dnnl(char ta, char tb, int M, int N, int K, const float *A, const float *B,
                   float beta, float *C) {
    dnnl_sgemm(ta, tb, M, N, K, 1.0f, A, ta == 'T' ? M : K, B, tb == 'T' ? K : N, beta, C, N);
}
#endif

#ifdef HAVE_XSMM
static void g_xsmm(char ta, char tb, int M, int N, int K, const float *A, const float *B,
                   float beta, float *C) {
    /* libxsmm is column-major: C^T = op(B)^T op(A)^T. */
    float one = 1.0f;
    libxsmm_blasint m = N, n = M, k = K, lda = tb == 'T' ? K : N, ldb = ta == 'T' ? M : K, ldc = N;
    libxsmm_sgemm(&tb, &ta, &m, &n, &k, &one, B, &lda, A, &ldb, &beta, C, &ldc);
}
#endif

/* Thread CPU time: on a machine other people share, the time this thread actually ran. */
static double cpu_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int main(int argc, char **argv) {
    int rows = argc > 1 ? atoi(argv[1]) : 512, C = argc > 2 ? atoi(argv[2]) : 256;
    int V = argc > 3 ? atoi(argv[3]) : 4096, threads = 2;
    shape sh[] = {
        {'N', 'T', rows, 3 * C, C, "qkv fwd"},    {'N', 'N', rows, C, 3 * C, "qkv dinp"},
        {'T', 'N', 3 * C, C, rows, "qkv dW"},     {'N', 'T', rows, C, C, "attproj fwd"},
        {'N', 'T', rows, 4 * C, C, "fc fwd"},     {'N', 'N', rows, C, 4 * C, "fc dinp"},
        {'T', 'N', 4 * C, C, rows, "fc dW"},      {'N', 'T', rows, C, 4 * C, "fcproj fwd"},
        {'N', 'N', rows, 4 * C, C, "fcproj dinp"}, {'T', 'N', C, 4 * C, rows, "fcproj dW"},
        {'N', 'T', rows, V, C, "logits fwd"},     {'N', 'N', rows, C, V, "logits dinp"},
        {'T', 'N', V, C, rows, "logits dW"}};
    const int nsh = (int)(sizeof sh / sizeof sh[0]);
    struct {
        const char *name;
        gemm_fn f;
    } libs[8];
    int nl = 0;
    libs[nl].name = "openblas";
    libs[nl++].f = g_openblas;
#ifdef HAVE_BLIS
    bli_rntm_init(&blis_one);
    bli_rntm_set_num_threads(1, &blis_one);
    libs[nl].name = "blis";
    libs[nl++].f = g_blis;
    printf("blis: arch %s\n", bli_arch_string(bli_arch_query_id()));
#endif
#ifdef HAVE_DNNL
    libs[nl].name = "onednn";
    libs[nl++].f = g_dnnl;
#endif
#ifdef HAVE_XSMM
    libxsmm_init();
    libs[nl].name = "libxsmm";
    libs[nl++].f = g_xsmm;
#endif
    const char *isa = fma_peak_isa(getenv("PEAK_ISA"));
    double peak = fma_peak_gflops(isa, threads, 5, 1);
    printf("fma peak (%s, %d threads): %.0f GFLOP per CPU-second x threads\n", isa, threads, peak);

    size_t big = (size_t)V * (rows > 4 * C ? rows : 4 * C) * 2;
    float *buf[2][3];
    for (int t = 0; t < 2; t++)
        for (int k = 0; k < 3; k++) {
            buf[t][k] = aligned_alloc(64, big * sizeof(float));
            for (size_t i = 0; i < big; i++)
                buf[t][k][i] = (float)((i * 7 + (size_t)k) % 13) * 0.01f;
        }
    printf("%-12s", "shape");
    for (int l = 0; l < nl; l++) printf(" %10s", libs[l].name);
    printf("   (GFLOP per CPU-second x %d threads, each running its own product)\n", threads);
    double tot_t[8] = {0};
    double flops_all = 0.0;
    for (int s = 0; s < nsh; s++) {
        double flops = 2.0 * sh[s].M * sh[s].N * sh[s].K;
        flops_all += flops;
        printf("%-12s", sh[s].what);
        for (int l = 0; l < nl; l++) {
            int reps = (int)(3e9 / flops / 10) + 1;
            double best = 1e30;
            for (int r = 0; r < 5; r++) {
                double cpu[2] = {0, 0};
#pragma omp parallel num_threads(threads)
                {
                    int t = omp_get_thread_num();
                    double t0 = cpu_now();
                    for (int i = 0; i < reps; i++)
                        libs[l].f(sh[s].ta, sh[s].tb, sh[s].M, sh[s].N, sh[s].K, buf[t][0],
                                  buf[t][1], sh[s].ta == 'T' ? 1.0f : 0.0f, buf[t][2]);
                    cpu[t] = cpu_now() - t0;
                }
                /* Per product: the mean over threads of the CPU time each one ran. */
                double dt = (cpu[0] + cpu[1]) / 2.0 / reps;
                if (dt < best) best = dt;
            }
            tot_t[l] += best;
            printf(" %10.0f", flops * threads / best / 1e9);
        }
        printf("\n");
    }
    printf("%-12s", "all");
    for (int l = 0; l < nl; l++) printf(" %10.0f", flops_all * threads / tot_t[l] / 1e9);
    printf("\n%-12s", "share peak");
    for (int l = 0; l < nl; l++)
        printf(" %9.0f%%", 100.0 * flops_all * threads / tot_t[l] / 1e9 / peak);
    printf("\n");
    return 0;
}
