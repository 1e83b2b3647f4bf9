/* The GPT's layer kernels: the internal contract between gpt.c, gpt_sample.c, runtime_sample.c
 * (which shares the sampling helpers) and the tests.
 *
 * Each layer comes as a forward and a backward with mirrored signatures: outputs first, then
 * inputs, dimensions last. A backward ADDS into the gradients it is given (dinp, dweight, ...),
 * so the caller zeroes them first; the exceptions are the fused softmax + cross-entropy
 * backward, which overwrites the probabilities it is given with the logits' gradient in place,
 * and the `_set` variants, which overwrite their input gradient (a buffer that would only have
 * been zeroed to be added into: the memset and the read of zeros are saved).
 * Where a fast kernel exists (matrix products through oneDNN or OpenBLAS, streaming attention)
 * the plain reference kernel stays beside it under the same name with `_ref`, and
 * tests/test_gpt.c checks one against the other. None of these functions fails or allocates.
 *
 * Dimension legend: B batch, T time (positions), C channels, OC output channels, V real
 * vocabulary, Vp padded vocabulary, NH heads, hs = C / NH head size, N a flat element count. */
#ifndef CLINFM_MODEL_GPT_KERNELS_H
#define CLINFM_MODEL_GPT_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "util/mix64.h"

/* OpenMP pragmas go through this macro so the file still compiles (serially, warning-free)
 * when -fopenmp is not on the command line. */
#ifdef _OPENMP
#include <omp.h>
#define GPT_OMP(...) _Pragma(#__VA_ARGS__)
#else
#define GPT_OMP(...)
#endif

/* A kernel opens a parallel region only for at least this much work (elements, or multiply-adds
 * for attention): below it, waking and joining threads costs more than it saves, and far more
 * when other processes keep a core busy and a barrier waits for a descheduled thread. */
#define GPT_PAR_MIN 32768

/* The model's own element-wise kernels are built once per kernel path (gpt_kernels_simd.inc,
 * chosen with the path, see below). GPT_SIMD is for hot loops elsewhere (runtime_batch.c):
 * compiled for AVX2+FMA (x86-64-v3) and for the baseline, the loader picks one by CPU; the
 * Makefile's flags then need no -march. */
#if defined(__x86_64__) && !defined(GPT_NO_CLONES) && \
    ((defined(__clang__) && __clang_major__ >= 14) || (!defined(__clang__) && __GNUC__ >= 11))
#define GPT_SIMD __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define GPT_SIMD
#endif

/* Streaming attention tiles: BQ queries against BK keys at a time. */
#define GPT_ATT_BQ 64
#define GPT_ATT_BK 256
/* Per-thread scratch floats the streaming attention needs for head size hs and length T. */
#define GPT_ATT_SCRATCH(hs, T) ((size_t)2 * GPT_ATT_BQ * GPT_ATT_BK + (size_t)GPT_ATT_BQ * (hs) + \
                                2 * GPT_ATT_BQ + (size_t)(T))

/* exp(x) in float, vectorisable, relative error below 3e-7; exp(-inf) = 0, exp(NaN) = NaN. */
static inline float gpt__bits_f(int32_t i) { union { int32_t i; float f; } u; u.i = i; return u.f; }
static inline int32_t gpt__f_bits(float f) { union { int32_t i; float f; } u; u.f = f; return u.i; }
static inline float gpt__expf(float x) {
    /* Out-of-range and NaN inputs are masked with integer bit operations rather than branches,
     * because branches stop gcc 12 from vectorising the loops this is inlined into. */
    int32_t under = -(int32_t)(x < -87.0f);
    int32_t over = -(int32_t)(x > 88.0f);
    int32_t nan = -(int32_t)(x != x);
    float xc = gpt__bits_f(gpt__f_bits(x) & ~(under | over | nan));
    /* x = n ln2 + r with |r| <= ln2/2; n is rounded by the 1.5 * 2^23 trick. */
    float n = (xc * 1.44269504f + 12582912.0f) - 12582912.0f;
    float r = xc - n * 0.693145752f - n * 1.42860677e-6f;
    /* Taylor series of e^r to degree 7: the first omitted term is below 1.5e-9 for |r| <= 0.35. */
    float p = 1.0f / 5040.0f;
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    float res = p * gpt__bits_f(((int32_t)n + 127) << 23);
    int32_t bits = (gpt__f_bits(res) & ~(under | over | nan)) | (over & 0x7f800000) |
                   (nan & 0x7fc00000);
    return gpt__bits_f(bits);
}

/* A 32-bit avalanche mixer: the dropout mask of element i under key k is a pure function of
 * (k, i), so backward regenerates the forward's mask instead of storing it, and any thread can
 * compute any element. */
static inline uint32_t gpt__mix32(uint32_t x) {
    x ^= x >> 16;
    x *= 0x7feb352dU;
    x ^= x >> 15;
    x *= 0x846ca68bU;
    x ^= x >> 16;
    return x;
}

/* ---- embedding: out = wte[token] + wpe[position] ---- */
void gpt__encoder_forward(float *out, const int *inp, const float *wte, const float *wpe,
                          int B, int T, int C);
void gpt__encoder_backward(float *dwte, float *dwpe, const float *dout, const int *inp,
                           int B, int T, int C);

/* ---- LayerNorm over the last dimension (eps 1e-5), mean and rstd kept for backward ---- */
void gpt__layernorm_forward(float *out, float *mean, float *rstd, const float *inp,
                            const float *weight, const float *bias, size_t N, int C);
void gpt__layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                             const float *inp, const float *weight, const float *mean,
                             const float *rstd, size_t N, int C);

/* ---- kernel paths, chosen once at run time ----
 * avx512: matrix products through oneDNN's sgemm (AVX-512 kernels, picked by CPU features
 *         whatever the vendor) and the AVX-512 clones of the element-wise kernels;
 * avx2:   matrix products through OpenBLAS and the AVX2+FMA clones;
 * plain:  OpenBLAS and the baseline x86-64 (SSE2) build of the element-wise kernels.
 * The default is the widest path the CPU (and the build: oneDNN is optional, CLINFM_WITH_DNNL)
 * supports. The environment variable CLINFM_KERNELS=avx512|avx2|plain caps it, and
 * gpt__kernels_set_path does the same from code (tests); asking for a path wider than the CPU
 * runs gets the widest one it does run. Set the path only while no kernel is running. */
typedef enum { GPT_PATH_PLAIN = 0, GPT_PATH_AVX2 = 1, GPT_PATH_AVX512 = 2 } gpt_path;
/* The path in effect (resolved from the CPU and CLINFM_KERNELS on first use). */
gpt_path gpt__kernels_path(void);
/* Caps the path at `want` and returns the path then in effect. */
gpt_path gpt__kernels_set_path(gpt_path want);
/* "avx512", "avx2" or "plain". */
const char *gpt__kernels_path_name(gpt_path p);

/* Row-major C (M, N) = alpha op(A) op(B) + beta C, op = transpose when ta / tb is nonzero,
 * through the library of the current path: the one matrix product every kernel calls. */
void gpt__sgemm(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
                const float *B, int ldb, float beta, float *C, int ldc);

/* ---- matrix product: out (N, OC) = inp (N, C) @ weight(OC, C)^T + bias (OC); bias may be
 * NULL (then dbias must be NULL too) ---- */
void gpt__matmul_forward(float *out, const float *inp, const float *weight, const float *bias,
                         size_t N, int C, int OC);
void gpt__matmul_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                          const float *inp, const float *weight, size_t N, int C, int OC);
/* As gpt__matmul_backward, but dinp is overwritten, not added to (nor read), so a caller whose
 * dinp holds nothing yet need not zero it first; dweight and dbias still add. */
void gpt__matmul_backward_set(float *dinp, float *dweight, float *dbias, const float *dout,
                              const float *inp, const float *weight, size_t N, int C, int OC);
void gpt__matmul_forward_ref(float *out, const float *inp, const float *weight,
                             const float *bias, size_t N, int C, int OC);
void gpt__matmul_backward_ref(float *dinp, float *dweight, float *dbias, const float *dout,
                              const float *inp, const float *weight, size_t N, int C, int OC);

/* ---- causal self-attention: inp (B, T, 3C) holds q, k, v per position; out (B, T, C);
 * lse (B, NH, T) the log-sum-exp of each query's scaled scores, all backward needs to rebuild
 * the attention weights. The fast kernels stream over GPT_ATT_BQ x GPT_ATT_BK tiles (no T x T
 * matrix), run OpenMP over (batch, head) and need `scratch` of nthreads *
 * GPT_ATT_SCRATCH(hs, T) floats; they must be called with at most nthreads OpenMP threads. */
void gpt__attention_forward(float *out, float *lse, const float *inp, float *scratch,
                            int nthreads, int B, int T, int C, int NH);
void gpt__attention_backward(float *dinp, const float *dout, const float *inp, const float *out,
                             const float *lse, float *scratch, int nthreads,
                             int B, int T, int C, int NH);
void gpt__attention_forward_ref(float *out, float *lse, const float *inp,
                                int B, int T, int C, int NH);
void gpt__attention_backward_ref(float *dinp, const float *dout, const float *inp,
                                 int B, int T, int C, int NH);

/* ---- GELU, tanh approximation ---- */
void gpt__gelu_forward(float *out, const float *inp, size_t N);
void gpt__gelu_backward(float *dinp, const float *inp, const float *dout, size_t N);
/* As gpt__gelu_backward, but dinp is overwritten, not added to (nor read). */
void gpt__gelu_backward_set(float *dinp, const float *inp, const float *dout, size_t N);

/* ---- dropout on a residual branch: out = res + keep(key, offset + i) * branch / (1 - p); the
 * mask of element i depends only on (key, offset + i), so a tensor processed in slices gets the
 * same mask as in one piece when each slice passes its first element's index as offset. The
 * residual's own gradient is the identity, so backward only produces dbranch. p == 0 is a
 * plain residual add. out may alias res. ---- */
void gpt__residual_dropout_forward(float *out, const float *res, const float *branch,
                                   uint32_t key, float p, size_t offset, size_t N);
void gpt__residual_dropout_backward(float *dbranch, const float *dout, uint32_t key, float p,
                                    size_t offset, size_t N);
/* In-place dropout of a whole tensor (the embedding sum), and its backward. */
void gpt__dropout_forward(float *inout, uint32_t key, float p, size_t offset, size_t N);
void gpt__dropout_backward(float *dinp, const float *dout, uint32_t key, float p, size_t offset,
                           size_t N);
/* As gpt__dropout_backward (and so gpt__residual_dropout_backward), but dinp is overwritten, not
 * added to (nor read). */
void gpt__dropout_backward_set(float *dinp, const float *dout, uint32_t key, float p,
                               size_t offset, size_t N);

/* ---- softmax over the first V of Vp logits and cross-entropy against targets (a target < 0
 * is ignored: loss 0, no gradient). probs may alias logits. Backward overwrites probs with
 * dlogits = (probs - onehot) * dloss in place; padded columns stay 0. ---- */
void gpt__crossentropy_forward(float *losses, float *probs, const float *logits,
                               const int *targets, size_t N, int V, int Vp);
void gpt__crossentropy_backward(float *probs_to_dlogits, const int *targets, float dloss,
                                size_t N, int V, int Vp);

/* ---- AdamW over one chunk of a flat parameter array: the sum of squares of gradients (for
 * the global norm, accumulated in float within the chunk), and one decoupled-weight-decay step
 * with g scaled by gscale, a = lr / (1 - beta1^t), inv_bc2 = 1 / (1 - beta2^t) and
 * lr_wd = lr * weight decay (0 for vectors) ---- */
double gpt__sum_squares(const float *x, size_t n);
void gpt__adamw_chunk(float *p, const float *g, float *m, float *v, size_t n, float gscale,
                      float b1, float b2, float a, float inv_bc2, float eps, float lr_wd);

/* ---- plain helpers ---- */
void gpt__softmax_row(float *probs, const float *logits, int V, float temperature);

/* The splitmix64 finaliser (util/mix64.h): seeds and per-stream states are mixed through it. */
static inline uint64_t gpt__mix64(uint64_t z) { return cf_mix64(z); }

/* Uniform in [0, 1) from a splitmix64 stream (the samplers' streams, one per sequence). */
static inline double gpt__uniform(uint64_t *state) {
    return cf_unit(cf_step64(state));
}

/* Draws one id from logits[0, V) at temperature, keeping the top_k most likely (0 = all), with
 * the stream rng (gpt_sample.c). scratch holds V floats. */
int gpt__sample_row(const float *logits, int V, float temperature, int top_k, uint64_t *rng,
                    float *scratch);

/* ---- attention of new rows against a KV cache: q (R, C) for R = n_seq * n_new rows in
 * sequence-major order, keys/values of sequence s at kcache + s * kv_stride, row stride C; row
 * (s, t) sees cache positions 0 .. pos0 + t. scratch: nthreads * (pos0 + n_new) floats. ---- */
void gpt__attention_cached_forward(float *out, const float *q, int q_stride, const float *kcache,
                                   const float *vcache, size_t kv_stride, int n_seq, int n_new,
                                   int pos0, float *scratch, int nthreads, int C, int NH);

#endif
