/* Tests of the GPT model (src/model): every layer's backward against central finite
 * differences, every fast or vectorised kernel against a plain one, a whole-model gradient
 * check, overfitting a tiny stream, exact resume from a checkpoint, checkpoint errors, seeded
 * sampling, KV-cache logits against full recomputation, and the embedding read-out.
 *
 * Finite differences run in float32 with a central step eps = 1e-3 on small dimensions; the
 * loss is accumulated in double. Rounding then dominates the error (about 1e-4 on gradients of
 * order 1), so a layer passes when every element satisfies |numeric - analytic| <= 2e-3 +
 * 2e-2 * |analytic|; the largest difference is printed for each layer. */
#include "check.h"

#include <fcntl.h>
#include <unistd.h>

#include "model/gpt.h"
#include "model/gpt_feat.h"
#include "model/gpt_kernels.h"
#include "timeline/timeline.h"

/* ------------------------------------------------------------------------------------------
 * helpers */

static uint64_t rng_state = 42;
static double urand(void) { /* uniform [0, 1) */
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (double)(rng_state >> 11) * (1.0 / 9007199254740992.0);
}
static void fill(float *x, size_t n, float lo, float hi) {
    for (size_t i = 0; i < n; i++) x[i] = lo + (hi - lo) * (float)urand();
}
static float *fvec(size_t n) { return calloc(n ? n : 1, sizeof(float)); }
static float *fcopy(const float *x, size_t n) {
    float *y = fvec(n);
    memcpy(y, x, n * sizeof(float));
    return y;
}
static double max_abs_diff(const float *a, const float *b, size_t n) {
    double m = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (d > m || d != d) m = d;
    }
    return m;
}
static double dot_d(const float *a, const float *b, size_t n) {
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

/* Central-difference check of analytic gradient `ana` of loss() w.r.t. x[0, n). */
#define FD_EPS 1e-3f
#define FD_ATOL 2e-3
#define FD_RTOL 2e-2
typedef double (*loss_fn)(void *ctx);
static double fd_check(const char *what, float *x, const float *ana, size_t n, loss_fn f,
                       void *ctx) {
    double worst = 0.0;
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        float keep = x[i];
        x[i] = keep + FD_EPS;
        double lp = f(ctx);
        x[i] = keep - FD_EPS;
        double lm = f(ctx);
        x[i] = keep;
        double num = (lp - lm) / (2.0 * FD_EPS);
        double diff = fabs(num - ana[i]);
        if (diff > worst) worst = diff;
        if (!(diff <= FD_ATOL + FD_RTOL * fabs(ana[i]))) {
            if (bad++ < 3)
                fprintf(stderr, "    %s[%zu]: numeric %.6g analytic %.6g\n", what, i, num,
                        (double)ana[i]);
        }
    }
    fprintf(stderr, "    fd %-22s n=%-5zu largest |numeric - analytic| = %.3g\n", what, n, worst);
    CHECK_EQ_INT(bad, 0);
    return worst;
}

/* ------------------------------------------------------------------------------------------
 * the fast exp and the dropout mixer */

static void test_fast_exp(void) {
    double worst = 0.0;
    for (int i = 0; i <= 200000; i++) {
        float x = -87.0f + 175.0f * (float)i / 200000.0f;
        double want = exp((double)x), got = gpt__expf(x);
        double rel = fabs(got - want) / want;
        if (rel > worst) worst = rel;
    }
    fprintf(stderr, "    gpt__expf largest relative error on [-87, 88]: %.3g\n", worst);
    CHECK(worst < 5e-7);
    CHECK(gpt__expf(-INFINITY) == 0.0f);
    CHECK(gpt__expf(-1000.0f) == 0.0f);
    CHECK(isinf(gpt__expf(1000.0f)));
    CHECK(isnan(gpt__expf(NAN)));
    CHECK(gpt__expf(0.0f) == 1.0f);
}

static void test_dropout_mask(void) {
    size_t N = 100000;
    float *x = fvec(N), *d = fvec(N), *ones = fvec(N);
    for (size_t i = 0; i < N; i++) x[i] = ones[i] = 1.0f;
    gpt__dropout_forward(x, 1234, 0.25f, 0, N);
    size_t dropped = 0;
    for (size_t i = 0; i < N; i++) {
        if (x[i] == 0.0f) dropped++;
        else CHECK_NEAR(x[i], 1.0f / 0.75f, 1e-6);
    }
    fprintf(stderr, "    dropped %zu of %zu at p = 0.25\n", dropped, N);
    CHECK(dropped > 24000 && dropped < 26000);
    /* Backward regenerates exactly the same mask from the same key... */
    gpt__dropout_backward(d, ones, 1234, 0.25f, 0, N);
    CHECK(memcmp(d, x, N * sizeof(float)) == 0);
    /* ...and another key gives another mask. */
    float *y = fvec(N);
    for (size_t i = 0; i < N; i++) y[i] = 1.0f;
    gpt__dropout_forward(y, 1235, 0.25f, 0, N);
    CHECK(memcmp(y, x, N * sizeof(float)) != 0);
    free(x);
    free(d);
    free(ones);
    free(y);
}

/* ------------------------------------------------------------------------------------------
 * per-layer finite differences */

typedef struct {
    float *out, *R, *inp, *w, *b, *mean, *rstd;
    size_t N;
    int C, OC, fast;
} lin_ctx;

static double ln_loss(void *p) {
    lin_ctx *c = p;
    gpt__layernorm_forward(c->out, c->mean, c->rstd, c->inp, c->w, c->b, c->N, c->C);
    return dot_d(c->out, c->R, c->N * c->C);
}

static void test_fd_layernorm(void) {
    lin_ctx c = {0};
    c.N = 3;
    c.C = 8;
    size_t n = c.N * c.C;
    c.out = fvec(n), c.R = fvec(n), c.inp = fvec(n), c.w = fvec(c.C), c.b = fvec(c.C);
    c.mean = fvec(c.N), c.rstd = fvec(c.N);
    fill(c.R, n, -1, 1), fill(c.inp, n, -2, 2), fill(c.w, c.C, 0.5f, 1.5f), fill(c.b, c.C, -1, 1);
    float *dinp = fvec(n), *dw = fvec(c.C), *db = fvec(c.C);
    ln_loss(&c);
    gpt__layernorm_backward(dinp, dw, db, c.R, c.inp, c.w, c.mean, c.rstd, c.N, c.C);
    fd_check("layernorm.inp", c.inp, dinp, n, ln_loss, &c);
    fd_check("layernorm.weight", c.w, dw, c.C, ln_loss, &c);
    fd_check("layernorm.bias", c.b, db, c.C, ln_loss, &c);
    /* Backward adds: a second call doubles every gradient. */
    float *dinp2 = fcopy(dinp, n);
    gpt__layernorm_backward(dinp2, dw, db, c.R, c.inp, c.w, c.mean, c.rstd, c.N, c.C);
    for (size_t i = 0; i < n; i++) CHECK_NEAR(dinp2[i], 2.0f * dinp[i], 1e-5);
    free(dinp2), free(dinp), free(dw), free(db);
    free(c.out), free(c.R), free(c.inp), free(c.w), free(c.b), free(c.mean), free(c.rstd);
}

static double mm_loss(void *p) {
    lin_ctx *c = p;
    if (c->fast) gpt__matmul_forward(c->out, c->inp, c->w, c->b, c->N, c->C, c->OC);
    else gpt__matmul_forward_ref(c->out, c->inp, c->w, c->b, c->N, c->C, c->OC);
    return dot_d(c->out, c->R, c->N * c->OC);
}

static void test_fd_matmul(void) {
    for (int fast = 0; fast <= 1; fast++) {
        lin_ctx c = {0};
        c.N = 4, c.C = 5, c.OC = 3, c.fast = fast;
        c.out = fvec(c.N * c.OC), c.R = fvec(c.N * c.OC), c.inp = fvec(c.N * c.C);
        c.w = fvec((size_t)c.OC * c.C), c.b = fvec(c.OC);
        fill(c.R, c.N * c.OC, -1, 1), fill(c.inp, c.N * c.C, -1, 1);
        fill(c.w, (size_t)c.OC * c.C, -1, 1), fill(c.b, c.OC, -1, 1);
        float *dinp = fvec(c.N * c.C), *dw = fvec((size_t)c.OC * c.C), *db = fvec(c.OC);
        if (fast) gpt__matmul_backward(dinp, dw, db, c.R, c.inp, c.w, c.N, c.C, c.OC);
        else gpt__matmul_backward_ref(dinp, dw, db, c.R, c.inp, c.w, c.N, c.C, c.OC);
        fd_check(fast ? "matmul.inp" : "matmul_ref.inp", c.inp, dinp, c.N * c.C, mm_loss, &c);
        fd_check(fast ? "matmul.weight" : "matmul_ref.weight", c.w, dw, (size_t)c.OC * c.C,
                 mm_loss, &c);
        fd_check(fast ? "matmul.bias" : "matmul_ref.bias", c.b, db, c.OC, mm_loss, &c);
        free(dinp), free(dw), free(db), free(c.out), free(c.R), free(c.inp), free(c.w), free(c.b);
    }
}

typedef struct {
    float *out, *lse, *R, *inp, *scratch;
    int B, T, C, NH, fast, nthreads;
} att_ctx;

static int max_threads(void) {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

static att_ctx att_make(int B, int T, int C, int NH, int fast) {
    att_ctx c = {0};
    c.B = B, c.T = T, c.C = C, c.NH = NH, c.fast = fast, c.nthreads = max_threads();
    size_t BT = (size_t)B * T;
    c.out = fvec(BT * C), c.lse = fvec((size_t)B * NH * T), c.R = fvec(BT * C);
    c.inp = fvec(BT * 3 * C);
    c.scratch = fvec((size_t)c.nthreads * GPT_ATT_SCRATCH(C / NH, T));
    fill(c.R, BT * C, -1, 1);
    fill(c.inp, BT * 3 * C, -1.5f, 1.5f);
    return c;
}
static void att_free(att_ctx *c) {
    free(c->out), free(c->lse), free(c->R), free(c->inp), free(c->scratch);
}
static void att_forward(att_ctx *c) {
    if (c->fast)
        gpt__attention_forward(c->out, c->lse, c->inp, c->scratch, c->nthreads, c->B, c->T, c->C,
                               c->NH);
    else gpt__attention_forward_ref(c->out, c->lse, c->inp, c->B, c->T, c->C, c->NH);
}
static void att_backward(att_ctx *c, float *dinp) {
    if (c->fast)
        gpt__attention_backward(dinp, c->R, c->inp, c->out, c->lse, c->scratch, c->nthreads, c->B,
                                c->T, c->C, c->NH);
    else gpt__attention_backward_ref(dinp, c->R, c->inp, c->B, c->T, c->C, c->NH);
}
static double att_loss(void *p) {
    att_ctx *c = p;
    att_forward(c);
    return dot_d(c->out, c->R, (size_t)c->B * c->T * c->C);
}

static void test_fd_attention(void) {
    for (int fast = 0; fast <= 1; fast++) {
        att_ctx c = att_make(2, 5, 8, 2, fast);
        size_t n = (size_t)c.B * c.T * 3 * c.C;
        float *dinp = fvec(n);
        att_forward(&c);
        att_backward(&c, dinp);
        fd_check(fast ? "attention.qkv" : "attention_ref.qkv", c.inp, dinp, n, att_loss, &c);
        free(dinp);
        att_free(&c);
    }
}

typedef struct {
    float *out, *R, *inp;
    size_t N;
} ew_ctx;

static double gelu_loss(void *p) {
    ew_ctx *c = p;
    gpt__gelu_forward(c->out, c->inp, c->N);
    return dot_d(c->out, c->R, c->N);
}

static void test_fd_gelu(void) {
    ew_ctx c = {fvec(40), fvec(40), fvec(40), 40};
    fill(c.R, c.N, -1, 1);
    fill(c.inp, c.N, -4, 4);
    float *dinp = fvec(c.N);
    gpt__gelu_backward(dinp, c.inp, c.R, c.N);
    fd_check("gelu.inp", c.inp, dinp, c.N, gelu_loss, &c);
    free(dinp), free(c.out), free(c.R), free(c.inp);
}

typedef struct {
    float *out, *R, *wte, *wpe;
    int *tok, B, T, C;
} enc_ctx;

static double enc_loss(void *p) {
    enc_ctx *c = p;
    gpt__encoder_forward(c->out, c->tok, c->wte, c->wpe, c->B, c->T, c->C);
    return dot_d(c->out, c->R, (size_t)c->B * c->T * c->C);
}

static void test_fd_encoder(void) {
    enc_ctx c = {0};
    c.B = 2, c.T = 3, c.C = 4;
    int tok[6] = {1, 3, 1, 0, 4, 3}; /* repeats: the scatter must add */
    c.tok = tok;
    size_t n = (size_t)c.B * c.T * c.C;
    c.out = fvec(n), c.R = fvec(n), c.wte = fvec(5 * 4), c.wpe = fvec(3 * 4);
    fill(c.R, n, -1, 1), fill(c.wte, 20, -1, 1), fill(c.wpe, 12, -1, 1);
    float *dwte = fvec(20), *dwpe = fvec(12);
    gpt__encoder_backward(dwte, dwpe, c.R, c.tok, c.B, c.T, c.C);
    fd_check("encoder.wte", c.wte, dwte, 20, enc_loss, &c);
    fd_check("encoder.wpe", c.wpe, dwpe, 12, enc_loss, &c);
    free(dwte), free(dwpe), free(c.out), free(c.R), free(c.wte), free(c.wpe);
}

typedef struct {
    float *out, *R, *res, *br;
    size_t N;
} rd_ctx;

static double rd_loss(void *p) {
    rd_ctx *c = p;
    gpt__residual_dropout_forward(c->out, c->res, c->br, 77, 0.3f, 5, c->N);
    return dot_d(c->out, c->R, c->N);
}

static void test_fd_residual_dropout(void) {
    rd_ctx c = {fvec(60), fvec(60), fvec(60), fvec(60), 60};
    fill(c.R, c.N, -1, 1), fill(c.res, c.N, -1, 1), fill(c.br, c.N, -1, 1);
    float *dbr = fvec(c.N);
    gpt__residual_dropout_backward(dbr, c.R, 77, 0.3f, 5, c.N);
    fd_check("residual_dropout.branch", c.br, dbr, c.N, rd_loss, &c);
    /* The residual's gradient is the identity: dout itself. */
    fd_check("residual_dropout.res", c.res, c.R, c.N, rd_loss, &c);
    free(dbr), free(c.out), free(c.R), free(c.res), free(c.br);
}

typedef struct {
    float *losses, *probs, *logits;
    int *targets, N, V, Vp;
} xe_ctx;

static double xe_loss(void *p) {
    xe_ctx *c = p;
    gpt__crossentropy_forward(c->losses, c->probs, c->logits, c->targets, (size_t)c->N, c->V,
                              c->Vp);
    double s = 0.0;
    for (int i = 0; i < c->N; i++) s += c->losses[i];
    return s * 0.5; /* dloss = 0.5 */
}

static void test_fd_crossentropy(void) {
    int targets[4] = {2, -1, 5, 0};
    xe_ctx c = {fvec(4), fvec(4 * 8), fvec(4 * 8), targets, 4, 6, 8};
    fill(c.logits, 32, -3, 3);
    xe_loss(&c);
    CHECK(c.losses[1] == 0.0f);
    for (int i = 0; i < 4; i++) CHECK(c.probs[i * 8 + 6] == 0.0f && c.probs[i * 8 + 7] == 0.0f);
    float *dlogits = fcopy(c.probs, 32);
    gpt__crossentropy_backward(dlogits, targets, 0.5f, 4, 6, 8);
    fd_check("crossentropy.logits", c.logits, dlogits, 32, xe_loss, &c);
    free(dlogits), free(c.losses), free(c.probs), free(c.logits);
}

/* ------------------------------------------------------------------------------------------
 * fast and vectorised kernels against plain ones */

/* The fast matrix product on the current kernel path against the reference on one shape;
 * tol scales with C (the length of each dot product). */
static void matmul_compare(size_t N, int C, int OC) {
    float *inp = fvec(N * C), *w = fvec((size_t)OC * C), *b = fvec(OC), *dout = fvec(N * OC);
    fill(inp, N * C, -1, 1), fill(w, (size_t)OC * C, -1, 1), fill(b, OC, -1, 1);
    fill(dout, N * OC, -1, 1);
    float *o1 = fvec(N * OC), *o2 = fvec(N * OC);
    gpt__matmul_forward(o1, inp, w, b, N, C, OC);
    gpt__matmul_forward_ref(o2, inp, w, b, N, C, OC);
    double d = max_abs_diff(o1, o2, N * OC), tol = 3e-6 * (C > (int)N ? C : (double)N) + 1e-5;
    fprintf(stderr, "    matmul %zux%dx%d %s fast vs ref: forward %.3g", N, C, OC,
            gpt__kernels_path_name(gpt__kernels_path()), d);
    CHECK(d < tol);
    /* Start from non-zero gradients: both must add. */
    float *di1 = fvec(N * C), *dw1 = fvec((size_t)OC * C), *db1 = fvec(OC);
    fill(di1, N * C, -1, 1), fill(dw1, (size_t)OC * C, -1, 1), fill(db1, OC, -1, 1);
    float *di2 = fcopy(di1, N * C), *dw2 = fcopy(dw1, (size_t)OC * C), *db2 = fcopy(db1, OC);
    gpt__matmul_backward(di1, dw1, db1, dout, inp, w, N, C, OC);
    gpt__matmul_backward_ref(di2, dw2, db2, dout, inp, w, N, C, OC);
    double d1 = max_abs_diff(di1, di2, N * C), d2 = max_abs_diff(dw1, dw2, (size_t)OC * C);
    double d3 = max_abs_diff(db1, db2, OC);
    fprintf(stderr, ", backward dinp %.3g dweight %.3g dbias %.3g\n", d1, d2, d3);
    CHECK(d1 < tol && d2 < tol && d3 < tol);
    free(inp), free(w), free(b), free(dout), free(o1), free(o2);
    free(di1), free(dw1), free(db1), free(di2), free(dw2), free(db2);
}

static void test_matmul_fast_vs_ref(void) {
    matmul_compare(67, 33, 45); /* nothing a multiple of a vector width */
    matmul_compare(1, 1, 7);    /* one row, one input channel */
    matmul_compare(130, 257, 65);
    matmul_compare(5, 300, 1); /* one output */
}

static void attention_compare(int B, int T, int C, int NH) {
    att_ctx f = att_make(B, T, C, NH, 1);
    att_ctx r = att_make(B, T, C, NH, 0);
    size_t BT = (size_t)B * T;
    memcpy(r.inp, f.inp, BT * 3 * C * sizeof(float));
    memcpy(r.R, f.R, BT * C * sizeof(float));
    att_forward(&f);
    att_forward(&r);
    double dout = max_abs_diff(f.out, r.out, BT * C);
    double dlse = max_abs_diff(f.lse, r.lse, (size_t)B * NH * T);
    float *g1 = fvec(BT * 3 * C);
    fill(g1, BT * 3 * C, -1, 1);
    float *g2 = fcopy(g1, BT * 3 * C);
    att_backward(&f, g1);
    att_backward(&r, g2);
    double dg = max_abs_diff(g1, g2, BT * 3 * C);
    fprintf(stderr, "    attention B=%d T=%d C=%d NH=%d fast vs ref: out %.3g lse %.3g dqkv %.3g\n",
            B, T, C, NH, dout, dlse, dg);
    CHECK(dout < 1e-5);
    CHECK(dlse < 1e-5);
    CHECK(dg < 1e-4);
    free(g1), free(g2);
    att_free(&f);
    att_free(&r);
}

static void test_attention_fast_vs_ref(void) {
    attention_compare(2, 150, 32, 2);  /* three query tiles, the last one partial */
    attention_compare(1, 130, 128, 2); /* head size 64 */
    attention_compare(3, 7, 12, 3);    /* one partial tile, head size 4 */
    attention_compare(1, 300, 16, 2);  /* two key tiles: the online softmax rescales */
    attention_compare(2, 600, 8, 1);   /* three key tiles, ten query tiles */
}

/* Plain double-precision references for the vectorised element-wise kernels. */
static void test_elementwise_vs_plain(void) {
    size_t N = 5000; /* over one CHUNK, with a tail */
    float *x = fvec(N), *y = fvec(N), *dy = fvec(N), *dx = fvec(N);
    fill(x, N, -6, 6), fill(dy, N, -1, 1);
    gpt__gelu_forward(y, x, N);
    gpt__gelu_backward(dx, x, dy, N);
    double wf = 0.0, wb = 0.0;
    for (size_t i = 0; i < N; i++) {
        double v = x[i], k = sqrt(2.0 / M_PI), u = k * (v + 0.044715 * v * v * v);
        double g = 0.5 * v * (1.0 + tanh(u));
        double dg = 0.5 * (1.0 + tanh(u)) +
                    0.5 * v * (1.0 - tanh(u) * tanh(u)) * k * (1.0 + 3.0 * 0.044715 * v * v);
        wf = fmax(wf, fabs(g - y[i]));
        wb = fmax(wb, fabs(dg * dy[i] - dx[i]));
    }
    fprintf(stderr, "    gelu vs double: forward %.3g backward %.3g\n", wf, wb);
    CHECK(wf < 1e-5 && wb < 1e-5);

    /* LayerNorm rows of 77 channels (not a multiple of the vector width). */
    int C = 77;
    size_t R = 9;
    float *in = fvec(R * C), *w = fvec(C), *b = fvec(C), *out = fvec(R * C);
    float *mean = fvec(R), *rstd = fvec(R);
    fill(in, R * C, -3, 5), fill(w, C, -1, 1), fill(b, C, -1, 1);
    gpt__layernorm_forward(out, mean, rstd, in, w, b, R, C);
    double wl = 0.0;
    for (size_t r = 0; r < R; r++) {
        double m = 0.0, v = 0.0;
        for (int c = 0; c < C; c++) m += in[r * C + c];
        m /= C;
        for (int c = 0; c < C; c++) v += (in[r * C + c] - m) * (in[r * C + c] - m);
        double rs = 1.0 / sqrt(v / C + 1e-5);
        for (int c = 0; c < C; c++)
            wl = fmax(wl, fabs((in[r * C + c] - m) * rs * w[c] + b[c] - out[r * C + c]));
    }
    fprintf(stderr, "    layernorm vs double: %.3g\n", wl);
    CHECK(wl < 1e-5);

    /* Cross-entropy over 1000 logits with a padded tail. */
    int V = 1000, Vp = 1024, tg[2] = {17, 999};
    float *lg = fvec(2 * (size_t)Vp), *pr = fvec(2 * (size_t)Vp), *ls = fvec(2);
    fill(lg, 2 * (size_t)Vp, -10, 10);
    gpt__crossentropy_forward(ls, pr, lg, tg, 2, V, Vp);
    double wp = 0.0, wloss = 0.0;
    for (int r = 0; r < 2; r++) {
        double mx = -1e30, s = 0.0;
        for (int i = 0; i < V; i++) mx = fmax(mx, lg[r * Vp + i]);
        for (int i = 0; i < V; i++) s += exp(lg[r * Vp + i] - mx);
        for (int i = 0; i < V; i++)
            wp = fmax(wp, fabs(exp(lg[r * Vp + i] - mx) / s - pr[r * Vp + i]));
        wloss = fmax(wloss, fabs(log(s) + mx - lg[r * Vp + tg[r]] - ls[r]));
    }
    fprintf(stderr, "    crossentropy vs double: probs %.3g loss %.3g\n", wp, wloss);
    CHECK(wp < 1e-6 && wloss < 1e-5);
    free(x), free(y), free(dy), free(dx), free(in), free(w), free(b), free(out), free(mean);
    free(rstd), free(lg), free(pr), free(ls);
}

/* ------------------------------------------------------------------------------------------
 * whole model */

static gpt_config tiny_config(int V, int Vp, int C, int NH, int L, int T, float p) {
    gpt_config c = {T, V, Vp, L, NH, C, p, 0, 0, 0, 0, 0, 0, 0};
    return c;
}

typedef struct {
    gpt_model *m;
    const int *in, *tg;
    int B, T;
    uint64_t counter;
} model_ctx;

static double model_loss(void *p) {
    model_ctx *c = p;
    c->m->rng_counter = c->counter; /* the same dropout masks every time */
    cf_err err;
    if (gpt_forward(c->m, c->in, c->tg, c->B, c->T, 1, &err) != CF_OK) return NAN;
    return c->m->mean_loss;
}

static const char *const names[GPT_NUM_PARAM_TENSORS] = {
    "wte", "wpe", "ln1w", "ln1b", "qkvw", "qkvb", "attprojw", "attprojb",
    "ln2w", "ln2b", "fcw", "fcb", "fcprojw", "fcprojb", "lnfw", "lnfb",
    "xw1", "xb1", "xw2", "clsw", "clsb", "valw", "valb", "clsq", "clsvw", "clsmap"};

static void test_fd_whole_model(void) {
    gpt_model m;
    cf_err err;
    gpt_config cfg = tiny_config(7, 8, 8, 2, 2, 4, 0.2f);
    REQUIRE_EQ_INT(gpt_build(&m, &cfg, 5, &err), CF_OK);
    /* Thousands of tiny forwards: one thread, so no parallel region is woken for each (slicing
     * has its own test). */
    m.num_threads = 1;
    /* Larger weights than the default init, so every path carries gradient. */
    fill(m.param_memory, m.num_parameters, -0.5f, 0.5f);
    int in[8] = {1, 2, 3, 4, 6, 5, 0, 1}, tg[8] = {2, 3, 4, -1, 5, 0, 1, 2};
    model_ctx c = {&m, in, tg, 2, 4, 3};
    model_loss(&c);
    gpt_zero_grad(&m);
    REQUIRE_EQ_INT(gpt_backward(&m, &err), CF_OK);
    gpt_zero_grad(&m);
    /* After a zero, the same forward + backward must give the same gradient again. */
    model_loss(&c);
    REQUIRE_EQ_INT(gpt_backward(&m, &err), CF_OK);
    float *ana = fcopy(m.grad_memory, m.num_parameters);
    size_t off = 0;
    for (int i = 0; i < GPT_NUM_PARAM_TENSORS; i++) {
        if (!m.param_sizes[i]) continue; /* no continuous inputs or heads in this model */
        char what[64];
        snprintf(what, sizeof what, "model.%s", names[i]);
        fd_check(what, m.param_memory + off, ana + off, m.param_sizes[i], model_loss, &c);
        off += (m.param_sizes[i] + 15) / 16 * 16;
    }
    /* The padding row of wte never gets gradient. */
    for (int ch = 0; ch < 8; ch++) CHECK(ana[7 * 8 + ch] == 0.0f);
    free(ana);
    gpt_free(&m);
}

/* Windows of a fixed random stream, chosen by step so a resumed run sees the same data. */
static void stream_batch(const int *stream, int len, uint64_t step, int B, int T, int *in,
                         int *tg) {
    for (int b = 0; b < B; b++) {
        uint64_t h = (step * 2654435761u + (uint64_t)b * 40503u) % (uint64_t)(len - T - 1);
        for (int t = 0; t < T; t++) {
            in[b * T + t] = stream[h + t];
            tg[b * T + t] = stream[h + t + 1];
        }
    }
}

static int train_steps(gpt_model *m, const gpt_opt_config *o, const int *stream, int len, int B,
                       int T, int steps, float *last_loss) {
    int *in = malloc(sizeof(int) * B * T), *tg = malloc(sizeof(int) * B * T);
    cf_err err;
    int rc = CF_OK;
    for (int s = 0; s < steps && rc == CF_OK; s++) {
        stream_batch(stream, len, m->step, B, T, in, tg);
        rc = gpt_forward(m, in, tg, B, T, 1, &err);
        if (!rc) {
            gpt_zero_grad(m);
            rc = gpt_backward(m, &err);
        }
        if (!rc) rc = gpt_update(m, o, NULL, &err);
        if (last_loss) *last_loss = m->mean_loss;
    }
    if (rc) fprintf(stderr, "    train: %s\n", err.msg);
    free(in);
    free(tg);
    return rc;
}

static void test_overfit_tiny_stream(void) {
    /* A random cyclic order of the 16 tokens, repeated: each token determines the next, so
     * the loss can go to 0 at every position of a window. */
    int period[16], stream[600];
    for (int i = 0; i < 16; i++) period[i] = i;
    for (int i = 15; i > 0; i--) {
        int j = (int)(urand() * (i + 1)), t = period[i];
        period[i] = period[j];
        period[j] = t;
    }
    for (int i = 0; i < 600; i++) stream[i] = period[i % 16];
    gpt_model m;
    cf_err err;
    gpt_config cfg = tiny_config(16, 0, 32, 2, 2, 16, 0.0f);
    REQUIRE_EQ_INT(gpt_build(&m, &cfg, 1, &err), CF_OK);
    CHECK_EQ_INT(m.config.padded_vocab_size, 64);
    m.num_threads = 1;
    gpt_opt_config o = gpt_opt_default(200);
    o.lr = 1e-2f;
    o.min_lr = 1e-3f;
    o.warmup_steps = 20;
    float loss0 = 0.0f, loss = 0.0f;
    REQUIRE_EQ_INT(train_steps(&m, &o, stream, 600, 4, 16, 1, &loss0), CF_OK);
    REQUIRE_EQ_INT(train_steps(&m, &o, stream, 600, 4, 16, 199, &loss), CF_OK);
    fprintf(stderr, "    tiny stream: loss %.4f after 1 step, %.4f after 200 (bound 0.05)\n",
            (double)loss0, (double)loss);
    CHECK(loss0 > 2.0f);
    CHECK(loss < 0.05f);
    gpt_free(&m);
}

static char *tmp_path(const char *name) {
    static char buf[4][4096];
    static int k = 0;
    char *p = buf[k++ % 4];
    snprintf(p, 4096, "%s/%s", check_tmpdir(), name);
    return p;
}

static void test_resume_exact(void) {
    int stream[300];
    for (int i = 0; i < 300; i++) stream[i] = (int)(urand() * 13);
    gpt_config cfg = tiny_config(13, 16, 16, 2, 2, 8, 0.1f);
    gpt_opt_config o = gpt_opt_default(12);
    o.warmup_steps = 3;
    cf_err err;
    gpt_model a, b, c;
    REQUIRE_EQ_INT(gpt_build(&a, &cfg, 9, &err), CF_OK);
    REQUIRE_EQ_INT(train_steps(&a, &o, stream, 300, 3, 8, 10, NULL), CF_OK);

    REQUIRE_EQ_INT(gpt_build(&b, &cfg, 9, &err), CF_OK);
    memset(b.vocab_hash, 0xAB, 32);
    REQUIRE_EQ_INT(train_steps(&b, &o, stream, 300, 3, 8, 5, NULL), CF_OK);
    const char *path = tmp_path("resume.ckpt");
    REQUIRE_EQ_INT(gpt_save(&b, path, &o, GPT_CKPT_OPTIMIZER, &err), CF_OK);
    gpt_free(&b);
    uint8_t hash[32];
    memset(hash, 0xAB, 32);
    gpt_opt_config o2;
    int rc = gpt_load(&c, path, hash, &o2, &err);
    if (rc) fprintf(stderr, "    load: %s\n", err.msg);
    REQUIRE_EQ_INT(rc, CF_OK);
    CHECK(o2.lr == o.lr && o2.min_lr == o.min_lr && o2.beta1 == o.beta1 && o2.beta2 == o.beta2);
    CHECK(o2.eps == o.eps && o2.weight_decay == o.weight_decay && o2.grad_clip == o.grad_clip);
    CHECK(o2.warmup_steps == o.warmup_steps && o2.total_steps == o.total_steps);
    CHECK_EQ_INT(c.step, 5);
    REQUIRE_EQ_INT(train_steps(&c, &o2, stream, 300, 3, 8, 5, NULL), CF_OK);
    CHECK_EQ_INT(c.step, a.step);
    CHECK_EQ_INT(c.rng_counter, a.rng_counter);
    size_t n = a.num_parameters * sizeof(float);
    double dp = max_abs_diff(a.param_memory, c.param_memory, a.num_parameters);
    fprintf(stderr, "    resume: largest parameter difference %.3g (expected bit-identical)\n", dp);
    CHECK(memcmp(a.param_memory, c.param_memory, n) == 0);
    CHECK(memcmp(a.m_memory, c.m_memory, n) == 0);
    CHECK(memcmp(a.v_memory, c.v_memory, n) == 0);
    /* Without the optimizer state the resume would differ: the test can tell. */
    gpt_model d;
    const char *path2 = tmp_path("noopt.ckpt");
    REQUIRE_EQ_INT(gpt_save(&c, path2, NULL, 0, &err), CF_OK);
    REQUIRE_EQ_INT(gpt_load(&d, path2, NULL, NULL, &err), CF_OK);
    CHECK(d.m_memory == NULL);
    CHECK(memcmp(d.param_memory, c.param_memory, n) == 0);
    gpt_free(&d);
    gpt_free(&a);
    gpt_free(&c);
}

static void write_file(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (f) {
        fwrite(data, 1, n, f);
        fclose(f);
    }
}

static void *read_file(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    void *p = malloc(*n);
    if (fread(p, 1, *n, f) != *n) *n = 0;
    fclose(f);
    return p;
}

static void test_checkpoint_errors(void) {
    gpt_config cfg = tiny_config(10, 16, 8, 2, 1, 4, 0.0f);
    gpt_model m, x;
    cf_err err;
    REQUIRE_EQ_INT(gpt_build(&m, &cfg, 3, &err), CF_OK);
    const char *path = tmp_path("m.ckpt"), *bad = tmp_path("bad.ckpt");
    REQUIRE_EQ_INT(gpt_save(&m, path, NULL, 0, &err), CF_OK);
    size_t n = 0;
    uint8_t *buf = read_file(path, &n);
    REQUIRE(buf && n > 512);

    CHECK_EQ_INT(gpt_load(&x, tmp_path("missing.ckpt"), NULL, NULL, &err), CF_EINPUT);
    CHECK_CONTAINS(err.msg, "cannot open");

    uint8_t *b = malloc(n);
    memcpy(b, buf, n);
    b[0] = 'X';
    write_file(bad, b, n);
    CHECK_EQ_INT(gpt_load(&x, bad, NULL, NULL, &err), CF_EINPUT);
    CHECK_CONTAINS(err.msg, "not a clinfm model checkpoint");

    memcpy(b, buf, n);
    b[8] = 9; /* version 9 */
    write_file(bad, b, n);
    CHECK_EQ_INT(gpt_load(&x, bad, NULL, NULL, &err), CF_EINPUT);
    CHECK_CONTAINS(err.msg, "upgrade clinfm");

    memcpy(b, buf, n);
    b[36] ^= 1; /* layers, without fixing the header CRC */
    write_file(bad, b, n);
    CHECK_EQ_INT(gpt_load(&x, bad, NULL, NULL, &err), CF_EINPUT);
    CHECK_CONTAINS(err.msg, "header is corrupt");

    memcpy(b, buf, n);
    b[n - 3] ^= 0x40; /* inside the last tensor, which ends the file */
    write_file(bad, b, n);
    CHECK_EQ_INT(gpt_load(&x, bad, NULL, NULL, &err), CF_EINPUT);
    CHECK_CONTAINS(err.msg, "CRC mismatch");

    write_file(bad, buf, n - 100);
    CHECK_EQ_INT(gpt_load(&x, bad, NULL, NULL, &err), CF_EINPUT);
    CHECK_CONTAINS(err.msg, "truncated");

    write_file(bad, buf, 100);
    CHECK_EQ_INT(gpt_load(&x, bad, NULL, NULL, &err), CF_EINPUT);
    CHECK_CONTAINS(err.msg, "too short");

    uint8_t other[32];
    memset(other, 1, 32);
    CHECK_EQ_INT(gpt_load(&x, path, other, NULL, &err), CF_EINPUT);
    CHECK_CONTAINS(err.msg, "different vocabulary");

    /* A good file loads into an identical model. */
    REQUIRE_EQ_INT(gpt_load(&x, path, NULL, NULL, &err), CF_OK);
    CHECK(memcmp(&x.config, &m.config, sizeof m.config) == 0);
    CHECK(memcmp(x.param_memory, m.param_memory, m.num_parameters * sizeof(float)) == 0);

    /* Asking for other architecture flags on resume says which one and what to do. */
    gpt_config asked = cfg;
    asked.padded_vocab_size = 16;
    CHECK_EQ_INT(gpt_config_compare(&x.config, &asked, &err), CF_OK);
    asked.num_layers = 3;
    CHECK_EQ_INT(gpt_config_compare(&x.config, &asked, &err), CF_EINPUT);
    CHECK_CONTAINS(err.msg, "layers 1 but 3");

    /* A failed save leaves no file behind and reports the path. */
    CHECK(gpt_save(&m, tmp_path("no/such/dir/m.ckpt"), NULL, 0, &err) != CF_OK);
    gpt_free(&x);
    gpt_free(&m);
    free(b);
    free(buf);
}

static void test_config_and_input_errors(void) {
    gpt_model m;
    cf_err err;
    gpt_config cfg = tiny_config(10, 0, 10, 3, 1, 4, 0.0f);
    CHECK_EQ_INT(gpt_build(&m, &cfg, 1, &err), CF_EINPUT);
    CHECK_CONTAINS(err.msg, "multiple of the head count");
    cfg = tiny_config(10, 0, 8, 2, 1, 4, 1.0f);
    CHECK_EQ_INT(gpt_build(&m, &cfg, 1, &err), CF_EINPUT);
    CHECK_CONTAINS(err.msg, "dropout");
    cfg = tiny_config(10, 0, 8, 2, 1, 4, 0.0f);
    REQUIRE_EQ_INT(gpt_build(&m, &cfg, 1, &err), CF_OK);
    int in[4] = {1, 2, 10, 3}, tg[4] = {0, 0, 0, 0};
    CHECK_EQ_INT(gpt_forward(&m, in, tg, 1, 4, 0, &err), CF_EINPUT);
    CHECK_CONTAINS(err.msg, "position 2 is outside the vocabulary");
    in[2] = 0;
    CHECK_EQ_INT(gpt_forward(&m, in, tg, 1, 5, 0, &err), CF_EINPUT);
    CHECK_EQ_INT(gpt_backward(&m, &err), CF_EINTERNAL);
    CHECK_EQ_INT(gpt_forward(&m, in, NULL, 1, 4, 0, &err), CF_OK);
    CHECK_EQ_INT(gpt_backward(&m, &err), CF_EINTERNAL); /* no targets */
    gpt_free(&m);
}

static void test_lr_schedule(void) {
    gpt_opt_config o = gpt_opt_default(110);
    o.warmup_steps = 10;
    o.lr = 1.0f;
    o.min_lr = 0.1f;
    CHECK_NEAR(gpt_lr(&o, 0), 0.1, 1e-7);
    CHECK_NEAR(gpt_lr(&o, 9), 1.0, 1e-7);
    CHECK_NEAR(gpt_lr(&o, 10), 1.0, 1e-7);
    CHECK_NEAR(gpt_lr(&o, 60), 0.55, 1e-6); /* half way down the cosine */
    CHECK_NEAR(gpt_lr(&o, 110), 0.1, 1e-7);
    CHECK_NEAR(gpt_lr(&o, 5000), 0.1, 1e-7);
    CHECK(gpt_lr(&o, 30) > gpt_lr(&o, 31));
}

/* One AdamW step against a plain double-precision AdamW with pow per step, then clipping. */
static void test_adamw_and_clipping(void) {
    gpt_config cfg = tiny_config(10, 16, 8, 2, 1, 4, 0.0f);
    gpt_model m;
    cf_err err;
    REQUIRE_EQ_INT(gpt_build(&m, &cfg, 2, &err), CF_OK);
    int in[4] = {1, 2, 3, 4}, tg[4] = {2, 3, 4, 5};
    REQUIRE_EQ_INT(gpt_forward(&m, in, tg, 1, 4, 1, &err), CF_OK);
    gpt_zero_grad(&m);
    REQUIRE_EQ_INT(gpt_backward(&m, &err), CF_OK);
    gpt_opt_config o = gpt_opt_default(100);
    o.warmup_steps = 0;
    o.grad_clip = 0.0f;
    size_t N = m.num_parameters;
    float *p0 = fcopy(m.param_memory, N), *g = fcopy(m.grad_memory, N);
    /* Two steps with the same gradient, checked against the textbook formulas. */
    double *mm = calloc(N, sizeof(double)), *vv = calloc(N, sizeof(double));
    double *pp = calloc(N, sizeof(double));
    for (size_t i = 0; i < N; i++) pp[i] = p0[i];
    for (int t = 1; t <= 2; t++) {
        gpt_update_stats st;
        REQUIRE_EQ_INT(gpt_update(&m, &o, &st, &err), CF_OK);
        memcpy(m.grad_memory, g, N * sizeof(float));
        double lr = gpt_lr(&o, (uint64_t)t - 1);
        CHECK_NEAR(st.lr, lr, 1e-9);
        size_t off = 0;
        for (int k = 0; k < GPT_NUM_PARAM_TENSORS; k++) {
            int decay = k == 0 || k == 1 || k == 4 || k == 6 || k == 10 || k == 12;
            for (size_t j = off; j < off + m.param_sizes[k]; j++) {
                mm[j] = o.beta1 * mm[j] + (1 - o.beta1) * g[j];
                vv[j] = o.beta2 * vv[j] + (1 - o.beta2) * (double)g[j] * g[j];
                double mh = mm[j] / (1 - pow(o.beta1, t)), vh = vv[j] / (1 - pow(o.beta2, t));
                pp[j] -= lr * (mh / (sqrt(vh) + o.eps) + (decay ? o.weight_decay * pp[j] : 0.0));
            }
            off += (m.param_sizes[k] + 15) / 16 * 16;
        }
    }
    double worst = 0.0;
    for (size_t i = 0; i < N; i++) worst = fmax(worst, fabs(pp[i] - m.param_memory[i]));
    fprintf(stderr, "    adamw vs double reference after 2 steps: largest diff %.3g\n", worst);
    CHECK(worst < 1e-6);

    /* Clipping: gradients scaled 1000x with clip = norm give the same step as the original
     * gradients without clipping. */
    gpt_model a, b;
    REQUIRE_EQ_INT(gpt_build(&a, &cfg, 2, &err), CF_OK);
    REQUIRE_EQ_INT(gpt_build(&b, &cfg, 2, &err), CF_OK);
    gpt_update_stats sa, sb;
    for (int k = 0; k < 2; k++) {
        gpt_model *x = k ? &b : &a;
        REQUIRE_EQ_INT(gpt_forward(x, in, tg, 1, 4, 1, &err), CF_OK);
        gpt_zero_grad(x);
        REQUIRE_EQ_INT(gpt_backward(x, &err), CF_OK);
    }
    REQUIRE_EQ_INT(gpt_update(&a, &o, &sa, &err), CF_OK);
    for (size_t i = 0; i < N; i++) b.grad_memory[i] *= 1000.0f;
    gpt_opt_config oc = o;
    oc.grad_clip = sa.grad_norm;
    REQUIRE_EQ_INT(gpt_update(&b, &oc, &sb, &err), CF_OK);
    CHECK_NEAR(sb.grad_norm / sa.grad_norm, 1000.0, 1e-2);
    double dc = max_abs_diff(a.param_memory, b.param_memory, N);
    fprintf(stderr, "    clipped vs unclipped step: largest diff %.3g\n", dc);
    CHECK(dc < 1e-6);
    /* A non-finite gradient is refused rather than applied. */
    b.grad_memory[0] = NAN;
    CHECK_EQ_INT(gpt_update(&b, &o, NULL, &err), CF_EINPUT);
    CHECK_CONTAINS(err.msg, "not finite");
    gpt_free(&a), gpt_free(&b), gpt_free(&m);
    free(p0), free(g), free(mm), free(vv), free(pp);
}

/* Per-tensor learning-rate scales (gpt_opt_config.lr_scale, fine-tuning's --ft-body-lr and
 * --ft-head-lr): all ones is today's update bit for bit; a tensor at 0 stays bit for bit (its
 * decay too); a tensor at 0.5 moves half as far as at 1 (decay included: both are lr times a
 * rate), while the tensors at 1 move exactly as without scales. */
static void test_lr_scale(void) {
    gpt_config cfg = tiny_config(10, 16, 8, 2, 1, 4, 0.0f);
    cf_err err;
    int in[4] = {1, 2, 3, 4}, tg[4] = {2, 3, 4, 5};
    enum { RUNS = 3 };
    gpt_model m[RUNS];
    float ones[GPT_NUM_PARAM_TENSORS], mixed[GPT_NUM_PARAM_TENSORS];
    for (int i = 0; i < GPT_NUM_PARAM_TENSORS; i++) ones[i] = mixed[i] = 1.0f;
    mixed[0] = 0.0f; /* wte: a matrix, so decay would move it */
    mixed[4] = 0.5f; /* qkvw */
    const float *scales[RUNS] = {NULL, ones, mixed};
    gpt_opt_config o = gpt_opt_default(100);
    o.warmup_steps = 0;
    o.lr = 1e-2f;
    float *p0 = NULL;
    for (int r = 0; r < RUNS; r++) {
        REQUIRE_EQ_INT(gpt_build(&m[r], &cfg, 2, &err), CF_OK);
        if (!p0) p0 = fcopy(m[r].param_memory, m[r].num_parameters);
        gpt_opt_config oc = o;
        oc.lr_scale = scales[r];
        for (int t = 0; t < 3; t++) { /* steps with moments, and gradients that differ */
            REQUIRE_EQ_INT(gpt_forward(&m[r], in, tg, 1, 4, 1, &err), CF_OK);
            gpt_zero_grad(&m[r]);
            REQUIRE_EQ_INT(gpt_backward(&m[r], &err), CF_OK);
            REQUIRE_EQ_INT(gpt_update(&m[r], &oc, NULL, &err), CF_OK);
        }
    }
    const size_t N = m[0].num_parameters;
    CHECK(memcmp(m[0].param_memory, m[1].param_memory, N * sizeof(float)) == 0);
    CHECK(memcmp(m[0].m_memory, m[1].m_memory, N * sizeof(float)) == 0);
    CHECK(memcmp(m[0].v_memory, m[1].v_memory, N * sizeof(float)) == 0);
    /* with the mixed scales the stream after the first step differs, so compare one step */
    gpt_model a, b;
    REQUIRE_EQ_INT(gpt_build(&a, &cfg, 2, &err), CF_OK);
    REQUIRE_EQ_INT(gpt_build(&b, &cfg, 2, &err), CF_OK);
    for (int k = 0; k < 2; k++) {
        gpt_model *x = k ? &b : &a;
        REQUIRE_EQ_INT(gpt_forward(x, in, tg, 1, 4, 1, &err), CF_OK);
        gpt_zero_grad(x);
        REQUIRE_EQ_INT(gpt_backward(x, &err), CF_OK);
    }
    gpt_opt_config om = o;
    om.lr_scale = mixed;
    REQUIRE_EQ_INT(gpt_update(&a, &o, NULL, &err), CF_OK);
    REQUIRE_EQ_INT(gpt_update(&b, &om, NULL, &err), CF_OK);
    size_t off = 0;
    int frozen_moved = 0, others_differ = 0;
    double worst_half = 0, moved_half = 0;
    for (int k = 0; k < GPT_NUM_PARAM_TENSORS; k++) {
        for (size_t j = off; j < off + a.param_sizes[k]; j++) {
            if (k == 0) frozen_moved += memcmp(&b.param_memory[j], &p0[j], sizeof(float)) != 0;
            else if (k == 4) {
                double da = (double)a.param_memory[j] - p0[j], db = (double)b.param_memory[j] - p0[j];
                worst_half = fmax(worst_half, fabs(db - 0.5 * da));
                moved_half = fmax(moved_half, fabs(da));
            } else
                others_differ += memcmp(&a.param_memory[j], &b.param_memory[j], sizeof(float)) != 0;
        }
        off += (a.param_sizes[k] + 15) / 16 * 16;
    }
    fprintf(stderr, "    lr scales: frozen tensor moved at %d places; half-rate tensor off by %.3g (step %.3g)\n",
            frozen_moved, worst_half, moved_half);
    CHECK_EQ_INT(frozen_moved, 0);
    CHECK_EQ_INT(others_differ, 0);
    CHECK(moved_half > 1e-3);
    CHECK(worst_half < 1e-6);
    /* gpt_lr_scales: the heads' tensors get the head's scale, every other the body's */
    float sc[GPT_NUM_PARAM_TENSORS];
    gpt_lr_scales(sc, 0.25f, 2.0f);
    int heads = 0;
    for (int i = 0; i < GPT_NUM_PARAM_TENSORS; i++) {
        CHECK(sc[i] == 0.25f || sc[i] == 2.0f);
        heads += sc[i] == 2.0f;
    }
    CHECK_EQ_INT(heads, 4);
    for (int r = 0; r < RUNS; r++) gpt_free(&m[r]);
    gpt_free(&a), gpt_free(&b);
    free(p0);
}

static void test_bitwise_determinism(void) {
    gpt_config cfg = tiny_config(50, 64, 32, 4, 2, 70, 0.1f);
    cf_err err;
    int in[140], tg[140];
    for (int i = 0; i < 140; i++) in[i] = (int)(urand() * 50), tg[i] = (int)(urand() * 50);
    float *g[2];
    for (int k = 0; k < 2; k++) {
        gpt_model m;
        REQUIRE_EQ_INT(gpt_build(&m, &cfg, 11, &err), CF_OK);
        REQUIRE_EQ_INT(gpt_forward(&m, in, tg, 2, 70, 1, &err), CF_OK);
        gpt_zero_grad(&m);
        REQUIRE_EQ_INT(gpt_backward(&m, &err), CF_OK);
        g[k] = fcopy(m.grad_memory, m.num_parameters);
        if (k == 1) CHECK(memcmp(g[0], g[1], m.num_parameters * sizeof(float)) == 0);
        gpt_free(&m);
    }
    free(g[0]), free(g[1]);
}

/* The batch cut into slices (one per thread or more) gives what one slice gives: the dropout
 * masks, attention statistics and gradients of each sequence do not depend on the cut. Thread
 * counts are forced, so this runs the sliced path even on a one-core machine. */
static void test_slices_match_whole(void) {
    gpt_config cfg = tiny_config(40, 0, 16, 2, 2, 33, 0.2f);
    cf_err err;
    int in[5 * 33], tg[5 * 33];
    for (int i = 0; i < 5 * 33; i++) in[i] = (int)(urand() * 40), tg[i] = (int)(urand() * 40);
    tg[7] = -1;
    float loss[3], *g[3], *res[3];
    int threads[3] = {1, 2, 3}; /* 1, 4 and 5 slices of a batch of 5 */
    size_t np = 0;
    for (int k = 0; k < 3; k++) {
        gpt_model m;
        REQUIRE_EQ_INT(gpt_build(&m, &cfg, 4, &err), CF_OK);
        m.num_threads = threads[k];
        REQUIRE_EQ_INT(gpt_forward(&m, in, tg, 5, 33, 1, &err), CF_OK);
        gpt_zero_grad(&m);
        REQUIRE_EQ_INT(gpt_backward(&m, &err), CF_OK);
        loss[k] = m.mean_loss;
        np = m.num_parameters;
        g[k] = fcopy(m.grad_memory, np);
        res[k] = fcopy(m.acts.residual3, (size_t)2 * 5 * 33 * 16);
        gpt_free(&m);
    }
    for (int k = 1; k < 3; k++) {
        double dg = max_abs_diff(g[0], g[k], np);
        double dr = max_abs_diff(res[0], res[k], (size_t)2 * 5 * 33 * 16);
        fprintf(stderr, "    %d threads vs 1: loss %.9g vs %.9g, activations %.3g, gradients %.3g\n",
                threads[k], (double)loss[k], (double)loss[0], dr, dg);
        CHECK_NEAR(loss[k], loss[0], 1e-6);
        CHECK(dr < 1e-5);
        CHECK(dg < 1e-5);
    }
    for (int k = 0; k < 3; k++) free(g[k]), free(res[k]);
}

/* The `_set` backward kernels write what their adding twins add into zeros, without reading the
 * buffer they are given (NaN there must not leak through), and still add into dweight/dbias. */
static void set_variants_compare(void) {
    size_t N = 37;
    int C = 19, OC = 23;
    float *inp = fvec(N * C), *w = fvec((size_t)OC * C), *dout = fvec(N * OC);
    fill(inp, N * C, -1, 1), fill(w, (size_t)OC * C, -1, 1), fill(dout, N * OC, -1, 1);
    float *di1 = fvec(N * C), *di2 = fvec(N * C), *dw1 = fvec((size_t)OC * C), *db1 = fvec(OC);
    fill(dw1, (size_t)OC * C, -1, 1), fill(db1, OC, -1, 1);
    float *dw2 = fcopy(dw1, (size_t)OC * C), *db2 = fcopy(db1, OC);
    for (size_t i = 0; i < N * C; i++) di1[i] = NAN;
    gpt__matmul_backward_set(di1, dw1, db1, dout, inp, w, N, C, OC);
    gpt__matmul_backward(di2, dw2, db2, dout, inp, w, N, C, OC);
    double d1 = max_abs_diff(di1, di2, N * C), d2 = max_abs_diff(dw1, dw2, (size_t)OC * C);
    double d3 = max_abs_diff(db1, db2, OC);
    size_t M = 5000; /* over one chunk, with a tail */
    float *x = fvec(M), *dy = fvec(M), *g1 = fvec(M), *g2 = fvec(M), *r1 = fvec(M), *r2 = fvec(M);
    fill(x, M, -5, 5), fill(dy, M, -1, 1);
    for (size_t i = 0; i < M; i++) g1[i] = r1[i] = NAN;
    gpt__gelu_backward_set(g1, x, dy, M);
    gpt__gelu_backward(g2, x, dy, M);
    double d4 = max_abs_diff(g1, g2, M);
    double d5 = 0.0;
    for (int k = 0; k < 2; k++) { /* with dropout, and p = 0 (a copy) */
        float p = k == 0 ? 0.3f : 0.0f;
        memset(r2, 0, M * sizeof(float));
        gpt__dropout_backward_set(r1, dy, 77u, p, 11, M);
        gpt__dropout_backward(r2, dy, 77u, p, 11, M);
        double d = max_abs_diff(r1, r2, M);
        if (d > d5 || d != d) d5 = d; /* fmax would drop a NaN */
    }
    fprintf(stderr, "    _set vs adding into zeros: matmul dinp %.3g dweight %.3g dbias %.3g, "
            "gelu %.3g, dropout %.3g\n", d1, d2, d3, d4, d5);
    CHECK(d1 == 0.0 && d2 == 0.0 && d3 == 0.0 && d4 == 0.0 && d5 == 0.0);
    free(inp), free(w), free(dout), free(di1), free(di2), free(dw1), free(db1), free(dw2);
    free(db2), free(x), free(dy), free(g1), free(g2), free(r1), free(r2);
}

/* Every kernel path this CPU runs (avx512, avx2, plain; gpt_kernels.h), forced in turn: the
 * fast matrix products and attention against the reference kernels on odd shapes, the
 * element-wise kernels and AdamW against double-precision references, and the same 25 training
 * steps (two threads, so four batch slices, dropout on) giving the same losses within rounding.
 * The widest path is the default, and forcing a path never gives a wider one. */
static void test_kernel_paths(void) {
    gpt_path dflt = gpt__kernels_path(), top = gpt__kernels_set_path(GPT_PATH_AVX512);
    fprintf(stderr, "    default path: %s (CLINFM_KERNELS %s), widest this CPU runs: %s\n",
            gpt__kernels_path_name(dflt), getenv("CLINFM_KERNELS") ? "set" : "unset",
            gpt__kernels_path_name(top));
    /* Without CLINFM_KERNELS the default is the widest path; asking for more gives no more. */
    if (!getenv("CLINFM_KERNELS")) CHECK(dflt == top);
    CHECK(dflt <= top);
    if (top < GPT_PATH_AVX512)
        fprintf(stderr, "    no AVX-512 (or no oneDNN) here: the avx512 path is not tested\n");
    int stream[700];
    for (int i = 0; i < 700; i++) stream[i] = (i * 7 + (int)(urand() * 3)) % 29;
    gpt_config cfg = tiny_config(29, 0, 32, 2, 2, 24, 0.1f);
    enum { STEPS = 25 };
    float loss[3][STEPS];
    float *params[3] = {NULL, NULL, NULL};
    size_t np = 0;
    for (int p = (int)top; p >= (int)GPT_PATH_PLAIN; p--) {
        REQUIRE_EQ_INT(gpt__kernels_set_path((gpt_path)p), p);
        matmul_compare(67, 33, 45);
        matmul_compare(1, 1, 7);
        matmul_compare(130, 257, 65);
        attention_compare(2, 150, 32, 2);
        test_elementwise_vs_plain();
        test_adamw_and_clipping();
        set_variants_compare();
        cf_err err;
        gpt_model m;
        REQUIRE_EQ_INT(gpt_build(&m, &cfg, 3, &err), CF_OK);
        m.num_threads = 2;
        gpt_opt_config o = gpt_opt_default(STEPS);
        o.lr = 3e-3f;
        for (int k = 0; k < STEPS; k++)
            REQUIRE_EQ_INT(train_steps(&m, &o, stream, 700, 4, 24, 1, &loss[p][k]), CF_OK);
        np = m.num_parameters;
        params[p] = fcopy(m.param_memory, np);
        gpt_free(&m);
    }
    for (int p = (int)top - 1; p >= (int)GPT_PATH_PLAIN; p--) {
        double dl = 0.0;
        for (int k = 0; k < STEPS; k++) dl = fmax(dl, fabs((double)loss[p][k] - loss[top][k]));
        double dp = max_abs_diff(params[p], params[top], np);
        fprintf(stderr, "    %s vs %s, %d steps: losses %.4f -> %.4f, largest loss diff %.3g, "
                "parameters %.3g\n", gpt__kernels_path_name((gpt_path)p),
                gpt__kernels_path_name(top), STEPS, (double)loss[top][0],
                (double)loss[top][STEPS - 1], dl, dp);
        CHECK(dl < 1e-4);
        CHECK(dp < 1e-4);
    }
    /* The run must have learnt something, or equal losses would prove little. */
    CHECK(loss[top][STEPS - 1] < loss[top][0] - 0.3f);
    gpt__kernels_set_path(dflt);
    for (int p = 0; p < 3; p++) free(params[p]);
}

/* ------------------------------------------------------------------------------------------
 * inference */

static void random_model(gpt_model *m, int V, int Vp, int T, cf_err *err) {
    gpt_config cfg = tiny_config(V, Vp, 32, 4, 2, T, 0.1f);
    if (gpt_build(m, &cfg, 21, err) != CF_OK) return;
    /* Bigger weights than the init so logits vary a lot. */
    for (size_t i = 0; i < m->num_parameters; i++) m->param_memory[i] *= 8.0f;
    for (int r = V; r < Vp; r++)
        for (int c = 0; c < 32; c++) m->params.wte[(size_t)r * 32 + c] = 0.0f;
}

static void test_kv_cache_matches_full(void) {
    gpt_model m;
    cf_err err;
    const int V = 37, Vp = 40, T = 70, N = 3;
    random_model(&m, V, Vp, T, &err);
    int tok[3 * 70];
    for (int i = 0; i < N * T; i++) tok[i] = (int)(urand() * V);
    for (int s = 1; s < N; s++) memcpy(tok + s * T, tok, 20 * sizeof(int)); /* shared prompt */
    /* Full recompute, no targets: the logits stay logits. Dropout is off outside training. */
    REQUIRE_EQ_INT(gpt_forward(&m, tok, NULL, N, T, 0, &err), CF_OK);
    float *full = fcopy(m.acts.logits, (size_t)N * T * Vp);
    float *lnf = fcopy(m.acts.lnf, (size_t)N * T * 32);

    gpt_kv_cache kv;
    REQUIRE_EQ_INT(gpt_kv_init(&kv, &m, N, &err), CF_OK);
    /* Prompt of 20 on sequence 0, broadcast, then one token at a time on all three. */
    REQUIRE_EQ_INT(gpt_kv_forward(&m, &kv, tok, 1, 20, GPT_LOGITS_ALL, &err), CF_OK);
    double worst = max_abs_diff(kv.logits, full, (size_t)20 * Vp);
    gpt_kv_broadcast(&m, &kv);
    int step[3];
    for (int t = 20; t < T; t++) {
        for (int s = 0; s < N; s++) step[s] = tok[s * T + t];
        REQUIRE_EQ_INT(gpt_kv_forward(&m, &kv, step, N, 1, GPT_LOGITS_LAST, &err), CF_OK);
        for (int s = 0; s < N; s++)
            worst = fmax(worst, max_abs_diff(kv.logits + (size_t)s * Vp,
                                             full + ((size_t)s * T + t) * Vp, (size_t)Vp));
    }
    double scale = 0.0;
    for (size_t i = 0; i < (size_t)N * T * Vp; i++) scale = fmax(scale, fabs(full[i]));
    fprintf(stderr, "    KV cache vs full recompute: largest logit diff %.3g (logits up to %.3g)\n",
            worst, scale);
    CHECK(worst < 1e-4 * fmax(1.0, scale));
    /* The context limit is enforced. */
    CHECK_EQ_INT(gpt_kv_forward(&m, &kv, step, N, 1, GPT_LOGITS_LAST, &err), CF_EINPUT);
    CHECK_CONTAINS(err.msg, "context");

    /* Embedding = final hidden state at the last position. */
    float emb[32];
    REQUIRE_EQ_INT(gpt_embed(&m, &kv, tok + T, 45, emb, &err), CF_OK);
    double de = max_abs_diff(emb, lnf + ((size_t)1 * T + 44) * 32, 32);
    fprintf(stderr, "    embedding vs full forward: %.3g\n", de);
    CHECK(de < 1e-4);
    /* Next-token probabilities sum to one and match softmax of the full logits. */
    float probs[37];
    REQUIRE_EQ_INT(gpt_next_token_probs(&m, &kv, tok, 30, probs, &err), CF_OK);
    double sum = 0.0, mx = -1e30, z = 0.0, wp = 0.0;
    for (int i = 0; i < V; i++) sum += probs[i], mx = fmax(mx, full[29 * Vp + i]);
    for (int i = 0; i < V; i++) z += exp(full[29 * Vp + i] - mx);
    for (int i = 0; i < V; i++) wp = fmax(wp, fabs(exp(full[29 * Vp + i] - mx) / z - probs[i]));
    CHECK_NEAR(sum, 1.0, 1e-5);
    CHECK(wp < 1e-4);
    gpt_kv_free(&kv);
    free(full);
    free(lnf);
    gpt_free(&m);
}

static void test_sampling(void) {
    gpt_model m;
    cf_err err;
    const int V = 13, Vp = 16, T = 40, N = 8, NEW = 30;
    random_model(&m, V, Vp, T, &err);
    /* Make the padding rows attractive: unmasked, they would win every draw. */
    for (int r = V; r < Vp; r++)
        for (int c = 0; c < 32; c++) m.params.wte[(size_t)r * 32 + c] = 50.0f * m.params.lnfw[c];
    gpt_kv_cache kv;
    REQUIRE_EQ_INT(gpt_kv_init(&kv, &m, N, &err), CF_OK);
    int prompt[5] = {1, 5, 2, 9, 3};
    int *a = malloc(sizeof(int) * N * NEW), *b = malloc(sizeof(int) * N * NEW);
    int *c = malloc(sizeof(int) * N * NEW);
    gpt_sample_config sc = {1.0f, 0, 1234, -1};
    REQUIRE_EQ_INT(gpt_sample(&m, &kv, prompt, 5, NEW, &sc, a, &err), CF_OK);
    REQUIRE_EQ_INT(gpt_sample(&m, &kv, prompt, 5, NEW, &sc, b, &err), CF_OK);
    CHECK(memcmp(a, b, sizeof(int) * N * NEW) == 0);
    int distinct_rows = 0, in_range = 1;
    for (int s = 0; s < N; s++) {
        if (s > 0 && memcmp(a + s * NEW, a, sizeof(int) * NEW) != 0) distinct_rows++;
        for (int i = 0; i < NEW; i++) in_range &= a[s * NEW + i] >= 0 && a[s * NEW + i] < V;
    }
    CHECK(in_range);
    CHECK(distinct_rows > 0); /* the samples are not all the same continuation */
    sc.seed = 1235;
    REQUIRE_EQ_INT(gpt_sample(&m, &kv, prompt, 5, NEW, &sc, c, &err), CF_OK);
    CHECK(memcmp(a, c, sizeof(int) * N * NEW) != 0);

    /* top_k = 1 is greedy: every sample follows the argmax of the full-recompute logits. */
    sc.top_k = 1;
    REQUIRE_EQ_INT(gpt_sample(&m, &kv, prompt, 5, 10, &sc, c, &err), CF_OK);
    int seq[15];
    memcpy(seq, prompt, sizeof prompt);
    for (int i = 0; i < 10; i++) {
        REQUIRE_EQ_INT(gpt_forward(&m, seq, NULL, 1, 5 + i, 0, &err), CF_OK);
        const float *lg = m.acts.logits + (size_t)(4 + i) * Vp;
        int best = 0;
        for (int v = 1; v < V; v++)
            if (lg[v] > lg[best]) best = v;
        seq[5 + i] = best;
    }
    for (int s = 0; s < N; s++) CHECK(memcmp(c + s * 10, seq + 5, 10 * sizeof(int)) == 0);

    /* top_k = 3 draws only among the three most likely first tokens, and not always the same
     * one: 20 seeds x 8 samples of one token. */
    REQUIRE_EQ_INT(gpt_forward(&m, prompt, NULL, 1, 5, 0, &err), CF_OK);
    const float *l0 = m.acts.logits + (size_t)4 * Vp;
    int rank_ok = 1, seen[13] = {0}, kinds = 0;
    for (int seed = 0; seed < 20; seed++) {
        gpt_sample_config k3 = {2.0f, 3, (uint64_t)seed, -1};
        REQUIRE_EQ_INT(gpt_sample(&m, &kv, prompt, 5, 1, &k3, c, &err), CF_OK);
        for (int s = 0; s < N; s++) {
            int above = 0; /* tokens strictly more likely than the one drawn */
            for (int v = 0; v < V; v++) above += l0[v] > l0[c[s]];
            rank_ok &= above < 3;
            kinds += !seen[c[s]]++;
        }
    }
    CHECK(rank_ok);
    CHECK(kinds >= 2);

    /* A stop token ends a row; the rest is -1. */
    sc.top_k = 0;
    sc.stop_token = a[2]; /* the third token of sample 0 under seed 1234 */
    sc.seed = 1234;
    REQUIRE_EQ_INT(gpt_sample(&m, &kv, prompt, 5, NEW, &sc, b, &err), CF_OK);
    int first = -1;
    for (int i = 0; i < NEW; i++)
        if (a[i] == sc.stop_token) {
            first = i;
            break;
        }
    REQUIRE(first >= 0);
    CHECK(memcmp(b, a, sizeof(int) * (first + 1)) == 0);
    for (int i = first + 1; i < NEW; i++) CHECK_EQ_INT(b[i], -1);

    /* Bad requests. */
    CHECK_EQ_INT(gpt_sample(&m, &kv, prompt, 5, T, &sc, b, &err), CF_EINPUT);
    sc.temperature = 0.0f;
    CHECK_EQ_INT(gpt_sample(&m, &kv, prompt, 5, 3, &sc, b, &err), CF_EINPUT);
    free(a), free(b), free(c);
    gpt_kv_free(&kv);
    gpt_free(&m);
}


/* ------------------------------------------------------------------------------------------
 * continuous inputs and task heads (gpt_feat.c) */

typedef struct {
    float *out, *xh, *feat, *w1, *b1, *w2, *r;
    int N, F, H, C;
} feat_ctx;

static double feat_loss(void *p) {
    feat_ctx *c = p;
    memset(c->out, 0, sizeof(float) * c->N * c->C);
    gpt__feat_forward(c->out, c->xh, c->feat, c->w1, c->b1, c->w2, (size_t)c->N, c->F, c->H, c->C);
    return dot_d(c->out, c->r, (size_t)c->N * c->C);
}

static void test_fd_feat(void) {
    const int N = 5, F = 3, H = 4, C = 6;
    feat_ctx c = {fvec(N * C), fvec(N * H), fvec(N * F), fvec(H * F), fvec(H), fvec(C * H), fvec(N * C),
                  N, F, H, C};
    fill(c.feat, N * F, -2, 2);
    fill(c.w1, H * F, -1, 1);
    fill(c.b1, H, -0.5f, 0.5f);
    fill(c.w2, C * H, -1, 1);
    fill(c.r, N * C, -1, 1);
    /* out must be added into, not overwritten */
    float *pre = fvec(N * C);
    fill(pre, N * C, -1, 1);
    float *out2 = fcopy(pre, N * C), *xh2 = fvec(N * H);
    gpt__feat_forward(out2, xh2, c.feat, c.w1, c.b1, c.w2, N, F, H, C);
    feat_loss(&c);
    double wadd = 0.0;
    for (int i = 0; i < N * C; i++) wadd = fmax(wadd, fabs(out2[i] - pre[i] - c.out[i]));
    CHECK(wadd < 1e-6);
    /* a row of zero inputs equals feat == NULL for that row */
    float *zf = fvec(N * F), *o0 = fvec(N * C), *o1 = fvec(N * C);
    gpt__feat_forward(o0, xh2, zf, c.w1, c.b1, c.w2, N, F, H, C);
    gpt__feat_forward(o1, xh2, NULL, c.w1, c.b1, c.w2, N, F, H, C);
    CHECK(max_abs_diff(o0, o1, N * C) == 0.0);
    feat_loss(&c);
    float *d1 = fvec(H * F), *db = fvec(H), *d2 = fvec(C * H), *dxh = fvec(N * H);
    /* backward adds: start from ones and subtract them after */
    for (int i = 0; i < H * F; i++) d1[i] = 1.0f;
    gpt__feat_backward(d1, db, d2, dxh, c.r, c.xh, c.feat, c.w2, N, F, H, C);
    for (int i = 0; i < H * F; i++) d1[i] -= 1.0f;
    fd_check("feat.xw1", c.w1, d1, H * F, feat_loss, &c);
    fd_check("feat.xb1", c.b1, db, H, feat_loss, &c);
    fd_check("feat.xw2", c.w2, d2, C * H, feat_loss, &c);
    free(c.out), free(c.xh), free(c.feat), free(c.w1), free(c.b1), free(c.w2), free(c.r);
    free(pre), free(out2), free(xh2), free(zf), free(o0), free(o1), free(d1), free(db), free(d2), free(dxh);
}

typedef struct {
    float *logits, *x, *h, *w, *b, *y, *feat, *q;
    int *pos;
    int B, T, C, K, pool, F, G;
    gpt__pool_vars pv;
} cls_ctx;

static double cls_loss(void *p) {
    cls_ctx *c = p;
    size_t n = 0;
    return gpt__cls_forward(c->logits, c->x, c->h, c->pos, c->feat, c->F, c->q, c->G, &c->pv, c->w, c->b, c->y, &n, NULL, NULL, 0,
                            c->B, c->T, c->C, c->K, c->pool);
}

/* A variables pooling's map for a test model of V tokens: token v in slot v % (S + 1) - 1, so
 * every slot has tokens and some tokens have none; -1 past the vocabulary. */
static void set_slot_map(gpt_model *m) {
    for (int v = 0; v < m->config.padded_vocab_size; v++)
        m->params.clsmap[v] = v < m->config.vocab_size ? (float)(v % (m->config.cls_slots + 1) - 1) : -1.0f;
}

/* The heads in each pooling mode: logits and loss against double precision (the pooled input
 * worked out here from the hours themselves: the last position, the mean up to it, both, the
 * channel-wise max and min, and those over the first and second half of the history in time),
 * gradients against central differences, and no gradient past each row's head position. The
 * rows' hours make the windows differ from the whole history: row 0 splits at 24 h (a point at
 * 24.5 h is late), row 1 has one position (in both windows), row 2 starts after its own midpoint
 * (a cut history: position 0 is early alone, and late too). The attention pooling is worked out
 * as a softmax in double per channel group (two groups of 3; C 6), and its query gets its own
 * central-difference check. The variables pooling (S 3 slots of k 2 channels) is worked out per
 * slot from the tokens: row 0 has slot 0 twice (tokens 1 and 5 share it), slot 1 three times and
 * slot 2 once, row 1 one position (slots 1 and 2 empty: their tokens lie past the head
 * position), row 2 no slot 0 or 2 before its head position; its projection gets its own
 * central-difference check. */
static void test_fd_cls(void) {
    enum { B = 3, T = 6, C = 6, K = 2, F = TIMELINE_N_FEATURES, G = 2, S = 3, KP = 2 };
    int pos[B] = {5, 0, 3};
    int tok[B * T] = {1, 2, 5, 4, 2, 7, /**/ 1, 4, 4, 2, 4, 4, /**/ 3, 2, 7, 6, 4, 1};
    const float slot[8] = {-1, 0, 1, -1, 2, 0, -1, 1};
    const double hours[B][T] = {{0, 5, 20, 24.5, 40, 48}, {0, 0, 0, 0, 0, 0}, {30, 31, 40, 50, 60, 70}};
    float *feat = fvec(B * T * F);
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++)
            timeline_token_features(feat + (b * T + t) * F, 0, (int64_t)(hours[b][t] * 3600e6) + 1000, TIME_NULL,
                                    1000, NAN);
    for (int pool = GPT_POOL_LAST; pool <= GPT_POOL_VARIABLES; pool++) {
        const int P = pool == GPT_POOL_WINDOWS      ? 8 * C
                      : pool == GPT_POOL_ATTENTION  ? 5 * C
                      : pool == GPT_POOL_VARIABLES  ? 4 * C + 3 * KP * S
                      : pool == GPT_POOL_EXTREMES   ? 4 * C
                      : pool == GPT_POOL_BOTH       ? 2 * C
                                                    : C;
        CHECK_EQ_INT(gpt_pool_width(pool, C, S, KP), P);
        float *proj = fvec(KP * C);
        fill(proj, KP * C, -1, 1);
        cls_ctx c = {fvec(B * K), fvec(B * P), fvec(B * T * C), fvec(K * P), fvec(K), fvec(B * K), feat, fvec(C),
                     pos, B, T, C, K, pool, F, G, {tok, slot, proj, S, KP}};
        fill(c.q, C, -2, 2);
        fill(c.h, B * T * C, -1, 1);
        fill(c.w, K * P, -1, 1);
        fill(c.b, K, -1, 1);
        float y[6] = {1, 0, NAN, 1, 0, 0};
        memcpy(c.y, y, sizeof y);
        size_t n = 0;
        double l = cls_loss(&c), ref = 0;
        n = 0;
        gpt__cls_forward(c.logits, c.x, c.h, c.pos, c.feat, F, c.q, G, &c.pv, c.w, c.b, c.y, &n, NULL, NULL, 0, B, T, C, K, pool);
        CHECK_EQ_INT(n, 5);
        for (int b = 0; b < B; b++) {
            double x[8 * C + 3 * KP * S];
            const double mid = hours[b][pos[b]] / 2;
            for (int i = 0; i < C; i++) {
                double mean = 0, mx = -INFINITY, mn = INFINITY;
                double emx = -INFINITY, emn = INFINITY, lmx = -INFINITY, lmn = INFINITY;
                for (int t = 0; t <= pos[b]; t++) {
                    double v = c.h[(b * T + t) * C + i];
                    mean += v;
                    mx = fmax(mx, v), mn = fmin(mn, v);
                    if (t == 0 || hours[b][t] <= mid) emx = fmax(emx, v), emn = fmin(emn, v);
                    if (t == pos[b] || hours[b][t] > mid) lmx = fmax(lmx, v), lmn = fmin(lmn, v);
                }
                mean /= pos[b] + 1;
                double last = c.h[(b * T + pos[b]) * C + i];
                if (pool == GPT_POOL_LAST) x[i] = last;
                else if (pool == GPT_POOL_MEAN) x[i] = mean;
                else x[i] = last, x[C + i] = mean;
                if (pool >= GPT_POOL_EXTREMES) x[2 * C + i] = mx, x[3 * C + i] = mn;
                if (pool == GPT_POOL_WINDOWS)
                    x[4 * C + i] = emx, x[5 * C + i] = emn, x[6 * C + i] = lmx, x[7 * C + i] = lmn;
            }
            if (pool == GPT_POOL_ATTENTION)
                for (int g = 0; g < G; g++) {
                    const int D = C / G;
                    double s[T], zs = 0;
                    for (int t = 0; t <= pos[b]; t++) {
                        s[t] = 0;
                        for (int i = 0; i < D; i++) s[t] += (double)c.q[g * D + i] * c.h[(b * T + t) * C + g * D + i];
                        s[t] = exp(s[t] / sqrt((double)D));
                        zs += s[t];
                    }
                    for (int i = 0; i < D; i++) {
                        double a = 0;
                        for (int t = 0; t <= pos[b]; t++) a += s[t] / zs * c.h[(b * T + t) * C + g * D + i];
                        x[4 * C + g * D + i] = a;
                    }
                }
            if (pool == GPT_POOL_VARIABLES)
                for (int sl = 0; sl < S; sl++)
                    for (int j = 0; j < KP; j++) {
                        double last = 0, mx = 0, mn = 0;
                        int seen = 0;
                        for (int t = 0; t <= pos[b]; t++) {
                            if (slot[tok[b * T + t]] != sl) continue;
                            double z = 0;
                            for (int i = 0; i < C; i++) z += (double)proj[j * C + i] * c.h[(b * T + t) * C + i];
                            last = z, mx = seen ? fmax(mx, z) : z, mn = seen ? fmin(mn, z) : z, seen = 1;
                        }
                        double *o = x + 4 * C + 3 * KP * sl; /* zeros for a slot with no position */
                        o[j] = last, o[KP + j] = mx, o[2 * KP + j] = mn;
                    }
            if (pool == GPT_POOL_VARIABLES && b == 1) /* row 1: its one position, in slot 0 */
                CHECK(c.x[b * P + 4 * C] != 0.0f && c.x[b * P + 4 * C + 3 * KP] == 0.0f);
            if (pool == GPT_POOL_VARIABLES && b == 2) /* row 2: slots 0 and 2 only past its head position */
                CHECK(c.x[b * P + 4 * C] == 0.0f && c.x[b * P + 4 * C + 3 * KP * 2] == 0.0f &&
                      c.x[b * P + 4 * C + 3 * KP] != 0.0f);
            for (int k = 0; k < K; k++) {
                double z = c.b[k];
                for (int i = 0; i < P; i++) z += (double)c.w[k * P + i] * x[i];
                CHECK_NEAR(c.logits[b * K + k], z, 1e-5);
                if (isnan(y[b * K + k])) continue;
                double s = 1.0 / (1.0 + exp(-z));
                ref -= y[b * K + k] ? log(s) : log(1 - s);
            }
        }
        CHECK_NEAR(l, ref, 1e-6);
        float *dh = fvec(B * T * C), *dw = fvec(K * P), *db = fvec(K), *dq = fvec(C), *dp = fvec(KP * C);
        cls_loss(&c);
        const float ones[K] = {1.0f, 1.0f};
        gpt__cls_backward(dh, dw, db, dq, dp, c.logits, c.x, c.h, c.pos, c.feat, F, c.q, G, &c.pv, c.w, c.y, ones, NULL, 0, B,
                          T, C, K, pool);
        char what[32];
        snprintf(what, sizeof what, "cls%d.h", pool);
        fd_check(what, c.h, dh, B * T * C, cls_loss, &c);
        snprintf(what, sizeof what, "cls%d.w", pool);
        fd_check(what, c.w, dw, K * P, cls_loss, &c);
        snprintf(what, sizeof what, "cls%d.b", pool);
        fd_check(what, c.b, db, K, cls_loss, &c);
        if (pool == GPT_POOL_ATTENTION) fd_check("cls5.q", c.q, dq, C, cls_loss, &c);
        else
            for (int i = 0; i < C; i++) CHECK(dq[i] == 0.0f); /* the query is the attention's alone */
        if (pool == GPT_POOL_VARIABLES) fd_check("cls6.proj", proj, dp, KP * C, cls_loss, &c);
        else
            for (int i = 0; i < KP * C; i++) CHECK(dp[i] == 0.0f); /* the projection is the variables' alone */
        for (int b = 0; b < B; b++)
            for (int t = pos[b] + 1; t < T; t++)
                for (int i = 0; i < C; i++) CHECK(dh[(b * T + t) * C + i] == 0.0f);
        free(c.logits), free(c.x), free(c.h), free(c.w), free(c.b), free(c.y), free(c.q), free(dh), free(dw), free(db),
            free(dq), free(dp), free(proj);
    }
    free(feat);
}

/* Adds uniform noise to every parameter (not the alignment gaps between tensors, nor wte's
 * padding rows). */
static void perturb(gpt_model *m, float amp) {
    size_t off = 0;
    for (int i = 0; i < GPT_NUM_PARAM_TENSORS; i++) {
        size_t n = i == 0 ? (size_t)m->config.vocab_size * m->config.channels : m->param_sizes[i];
        for (size_t j = 0; j < n; j++) m->param_memory[off + j] += amp * (float)(urand() - 0.5);
        off += (m->param_sizes[i] + 15) / 16 * 16;
    }
}

typedef struct {
    float *pred, *h, *w, *b, *vt;
    int *tg;
    int N, C;
} val_ctx;

static double val_loss(void *p) {
    val_ctx *c = p;
    size_t n = 0;
    return gpt__value_forward(c->pred, c->h, c->tg, c->vt, c->w, c->b, &n, (size_t)c->N, c->C);
}

/* The value forecast: its loss against double precision (only positions whose target carries a
 * value count), and gradients against central differences. */
static void test_fd_value(void) {
    const int N = 6, C = 5, V = 4;
    int tg[6] = {1, 3, -1, 0, 3, 2};
    float vt[6] = {0.4f, -1.0f, 0.7f, NAN, 2.0f, 0.0f};
    val_ctx c = {fvec(N), fvec(N * C), fvec(V * C), fvec(V), vt, tg, N, C};
    fill(c.h, N * C, -1, 1);
    fill(c.w, V * C, -1, 1);
    fill(c.b, V, -1, 1);
    size_t n = 0;
    double l = gpt__value_forward(c.pred, c.h, c.tg, c.vt, c.w, c.b, &n, N, C), ref = 0;
    CHECK_EQ_INT(n, 4); /* position 2 has no target token, position 3 no value */
    for (int i = 0; i < N; i++) {
        if (tg[i] < 0 || isnan(vt[i])) continue;
        double z = c.b[tg[i]];
        for (int k = 0; k < C; k++) z += (double)c.w[tg[i] * C + k] * c.h[i * C + k];
        ref += 0.5 * (z - vt[i]) * (z - vt[i]);
    }
    CHECK_NEAR(l, ref, 1e-5);
    float *dh = fvec(N * C), *dw = fvec(V * C), *db = fvec(V);
    val_loss(&c);
    gpt__value_backward(dh, dw, db, c.pred, c.h, c.tg, c.vt, c.w, 1.0f, N, C);
    fd_check("value.h", c.h, dh, N * C, val_loss, &c);
    fd_check("value.w", c.w, dw, V * C, val_loss, &c);
    fd_check("value.b", c.b, db, V, val_loss, &c);
    free(c.pred), free(c.h), free(c.w), free(c.b), free(dh), free(dw), free(db);
}

static gpt_config feat_config(int V, int C, int NH, int L, int T, float p, int F, int H, int K) {
    gpt_config c = {T, V, 0, L, NH, C, p, F, H, K, GPT_POOL_LAST, 0, 0, 0};
    return c;
}

typedef struct {
    gpt_model *m;
    const int *in, *tg;
    gpt_extra x;
    int B, T;
    uint64_t counter;
} ex_ctx;

static double ex_loss(void *p) {
    ex_ctx *c = p;
    c->m->rng_counter = c->counter;
    cf_err err;
    if (gpt_forward_ex(c->m, c->in, c->tg, &c->x, c->B, c->T, 1, &err) != CF_OK) return NAN;
    double l = 0.0;
    if (c->tg) l += c->x.lm_weight * c->m->mean_loss;
    if (c->x.cls_y) l += c->x.cls_weight * c->m->cls_loss;
    if (c->tg && c->x.value_targets) l += c->x.value_weight * c->m->value_loss;
    return l;
}

/* The whole model with continuous inputs and two task heads: every parameter's gradient of
 * lm_weight * next-token loss + cls_weight * head loss against central differences, with
 * dropout; then the heads alone (no next-token targets). Pooled by windows, by attention and by
 * variables (between them every path of the pooling; test_fd_cls has each mode alone); the
 * attention's query exists in that mode only, the variables' projection and map in theirs (the
 * map gets no gradient: it is data, and a nudge of it moves no token to another slot). */
static void test_fd_whole_model_ex(void) {
    for (int pool = GPT_POOL_WINDOWS; pool <= GPT_POOL_VARIABLES; pool++) {
        gpt_model m;
        cf_err err;
        gpt_config cfg = feat_config(7, 8, 2, 2, 4, 0.2f, 4, 5, 2);
        cfg.cls_pool = pool;
        cfg.value_head = 1;
        if (pool == GPT_POOL_VARIABLES) cfg.cls_slots = 2, cfg.cls_proj = 2;
        REQUIRE_EQ_INT(gpt_build(&m, &cfg, 5, &err), CF_OK);
        m.num_threads = 1;
        fill(m.param_memory, m.num_parameters, -0.5f, 0.5f);
        if (pool == GPT_POOL_VARIABLES) set_slot_map(&m);
        int in[8] = {1, 2, 3, 4, 6, 5, 0, 1}, tg[8] = {2, 3, 4, -1, 5, 0, 1, 2}, pos[2] = {3, 1};
        float feats[32], y[4] = {1, NAN, 0, 1};
        fill(feats, 32, -1.5f, 1.5f);
        float vt[8] = {0.5f, NAN, -1.2f, 0.3f, NAN, 2.0f, 0.1f, NAN}; /* position 3's target is -1: unused */
        ex_ctx c = {&m, in, tg, {feats, pos, y, 0.7f, 1.3f, vt, 0.9f, NULL}, 2, 4, 3};
        const float hw[2] = {1.0f, 0.4f}; /* a main head and an auxiliary one at 0.4 */
        for (int pass = 0; pass < 3; pass++) {
            if (pass == 1) c.tg = NULL; /* heads alone: what end-to-end fine-tuning may run */
            if (pass == 2) { /* head weights: each head's mean over its own labelled rows, weighted */
                c.tg = tg;
                c.x.cls_head_weight = hw;
                ex_loss(&c);
                /* head 0 labels rows 0 and 1, head 1 row 1 alone: written out by hand */
                double ref = 0;
                for (int k = 0; k < 2; k++) {
                    double s = 0;
                    int n = 0;
                    for (int b = 0; b < 2; b++) {
                        float t = y[b * 2 + k];
                        if (isnan(t)) continue;
                        double z = m.acts.cls_logits[b * 2 + k], p = 1 / (1 + exp(-z));
                        s -= t ? log(p) : log(1 - p);
                        n++;
                    }
                    ref += hw[k] * s / n;
                }
                CHECK_NEAR(m.cls_loss, ref, 1e-5);
            }
            ex_loss(&c);
            gpt_zero_grad(&m);
            REQUIRE_EQ_INT(gpt_backward(&m, &err), CF_OK);
            float *ana = fcopy(m.grad_memory, m.num_parameters);
            size_t off = 0;
            for (int i = 0; i < GPT_NUM_PARAM_TENSORS; i++) {
                char what[64];
                snprintf(what, sizeof what, "%s.%s", pass == 2 ? "weighted" : pass ? "heads" : "model+", names[i]);
                /* 23: clsq, the attention's; 24, 25: clsvw and clsmap, the variables' */
                const int present = i == 23 ? pool == GPT_POOL_ATTENTION : i > 23 ? pool == GPT_POOL_VARIABLES : 1;
                CHECK((m.param_sizes[i] > 0) == present);
                fd_check(what, m.param_memory + off, ana + off, m.param_sizes[i], ex_loss, &c);
                off += (m.param_sizes[i] + 15) / 16 * 16;
            }
            free(ana);
        }
        /* Misuse is refused: labels without positions, positions outside the window. */
        gpt_extra bad = {feats, NULL, y, 1, 1, NULL, 0, NULL};
        CHECK_EQ_INT(gpt_forward_ex(&m, in, tg, &bad, 2, 4, 0, &err), CF_EINPUT);
        int far[2] = {4, 0};
        bad.cls_pos = far;
        CHECK_EQ_INT(gpt_forward_ex(&m, in, tg, &bad, 2, 4, 0, &err), CF_EINPUT);
        CHECK_CONTAINS(err.msg, "head position");
        gpt_free(&m);
    }
}

/* gpt_copy_params, how fine-tuning starts: into a model with task heads (which sit between
 * the base's tensors and its value head) every base tensor arrives unchanged, so the copy's
 * next-token and value losses equal the base's; into a longer context the position
 * embeddings are the base's resampled (the base rows at every other row when the new context
 * is 2 (maxT - 1) + 1, midpoints between); another architecture is refused. */
static void test_copy_params(void) {
    gpt_model base, ft, flat, longer;
    cf_err err;
    gpt_config cb = feat_config(7, 8, 2, 2, 4, 0.0f, 3, 5, 0);
    cb.value_head = 1;
    REQUIRE_EQ_INT(gpt_build(&base, &cb, 5, &err), CF_OK);
    fill(base.param_memory, base.num_parameters, -0.5f, 0.5f);
    gpt_config cf = cb;
    cf.num_outputs = 1;
    cf.cls_pool = GPT_POOL_BOTH;
    REQUIRE_EQ_INT(gpt_build(&ft, &cf, 9, &err), CF_OK);
    REQUIRE_EQ_INT(gpt_copy_params(&ft, &base, &err), CF_OK);
    const float *bt[] = {base.params.wte, base.params.wpe, base.params.qkvw, base.params.lnfw, base.params.xw2,
                         base.params.valw, base.params.valb};
    const float *ftt[] = {ft.params.wte, ft.params.wpe, ft.params.qkvw, ft.params.lnfw, ft.params.xw2, ft.params.valw,
                          ft.params.valb};
    const int idx[] = {0, 1, 4, 14, 18, 21, 22};
    for (int k = 0; k < 7; k++) {
        CHECK(ft.param_sizes[idx[k]] == base.param_sizes[idx[k]] && base.param_sizes[idx[k]] > 0);
        CHECK(memcmp(bt[k], ftt[k], base.param_sizes[idx[k]] * sizeof(float)) == 0);
    }
    int in[8] = {1, 2, 3, 4, 6, 5, 0, 1}, tg[8] = {2, 3, 4, 1, 5, 0, 1, 2};
    float feats[24], vt[8];
    fill(feats, 24, -1.5f, 1.5f);
    for (int i = 0; i < 24; i += 3) feats[i] = 1.0f; /* every token carries a value */
    gpt_value_targets(feats, 2, 4, 3, vt);
    gpt_extra x = {.feats = feats, .lm_weight = 1, .value_targets = vt, .value_weight = 1};
    base.num_threads = ft.num_threads = 1;
    REQUIRE_EQ_INT(gpt_forward_ex(&base, in, tg, &x, 2, 4, 0, &err), CF_OK);
    REQUIRE_EQ_INT(gpt_forward_ex(&ft, in, tg, &x, 2, 4, 0, &err), CF_OK);
    CHECK(base.value_loss > 0);
    CHECK_NEAR(ft.mean_loss, base.mean_loss, 1e-6);
    CHECK_NEAR(ft.value_loss, base.value_loss, 1e-6);
    /* the flat copy fine-tuning used to make lands the value head shifted by the heads' size */
    REQUIRE_EQ_INT(gpt_build(&flat, &cf, 9, &err), CF_OK);
    memcpy(flat.param_memory, base.param_memory, base.num_parameters * sizeof(float));
    CHECK(memcmp(flat.params.valw, base.params.valw, base.param_sizes[21] * sizeof(float)) != 0);
    gpt_free(&flat);
    /* a longer context: 7 = 2 (4 - 1) + 1 positions */
    gpt_config cl = cf;
    cl.max_seq_len = 7;
    REQUIRE_EQ_INT(gpt_build(&longer, &cl, 9, &err), CF_OK);
    REQUIRE_EQ_INT(gpt_copy_params(&longer, &base, &err), CF_OK);
    const int C = cb.channels;
    double worst = 0;
    for (int p = 0; p < 7; p++)
        for (int c = 0; c < C; c++) {
            double want = p % 2 ? 0.5 * ((double)base.params.wpe[(p / 2) * C + c] + base.params.wpe[(p / 2 + 1) * C + c])
                                : base.params.wpe[(p / 2) * C + c];
            worst = fmax(worst, fabs(longer.params.wpe[p * C + c] - want));
        }
    CHECK(worst < 1e-6);
    CHECK(memcmp(longer.params.valw, base.params.valw, base.param_sizes[21] * sizeof(float)) == 0);
    gpt_free(&longer);
    /* another architecture is refused, naming what differs */
    gpt_config co = cf;
    co.channels = 4;
    gpt_model other;
    REQUIRE_EQ_INT(gpt_build(&other, &co, 9, &err), CF_OK);
    CHECK_EQ_INT(gpt_copy_params(&other, &base, &err), CF_EINPUT);
    CHECK_CONTAINS(err.msg, "channels");
    gpt_free(&other);
    gpt_free(&ft);
    gpt_free(&base);
}

/* feat_model_paths for one pooling (cfg): slices of 1, 2 and 3 threads agree, and the KV cache
 * and gpt_cls_input give the plain forward's hidden states and head logits; then, for the
 * variables pooling, its map and projection survive a checkpoint, a damaged map is refused at
 * load, and an update leaves the map alone. */
static void feat_paths(gpt_config cfg) {
    cf_err err;
    const int V = cfg.vocab_size, C = cfg.channels, T = cfg.max_seq_len, B = 5, F = cfg.n_features, K = cfg.num_outputs;
    const int pool = cfg.cls_pool;
    int in[5 * 25], tg[5 * 25], pos[5] = {24, 3, 10, 0, 17};
    float feats[5 * 25 * 4], y[15];
    for (int i = 0; i < B * T; i++) in[i] = (int)(urand() * V), tg[i] = (int)(urand() * V);
    fill(feats, B * T * F, -2, 2);
    for (int i = 0; i < B * K; i++) y[i] = urand() < 0.2 ? NAN : (float)(urand() < 0.5);
    gpt_extra x = {feats, pos, y, 1.0f, 0.5f, NULL, 0, NULL};
    float *g[3], lloss[3], closs[3];
    int threads[3] = {1, 2, 3};
    size_t np = 0;
    for (int k = 0; k < 3; k++) {
        gpt_model m;
        REQUIRE_EQ_INT(gpt_build(&m, &cfg, 4, &err), CF_OK);
        rng_state = 42; /* the same perturbation for every thread count */
        perturb(&m, 0.05f);
        if (pool == GPT_POOL_VARIABLES) set_slot_map(&m);
        m.num_threads = threads[k];
        REQUIRE_EQ_INT(gpt_forward_ex(&m, in, tg, &x, B, T, 1, &err), CF_OK);
        gpt_zero_grad(&m);
        REQUIRE_EQ_INT(gpt_backward(&m, &err), CF_OK);
        lloss[k] = m.mean_loss, closs[k] = m.cls_loss;
        np = m.num_parameters;
        g[k] = fcopy(m.grad_memory, np);
        gpt_free(&m);
    }
    for (int k = 1; k < 3; k++) {
        CHECK_NEAR(lloss[k], lloss[0], 1e-6);
        CHECK_NEAR(closs[k], closs[0], 1e-6);
        CHECK(max_abs_diff(g[0], g[k], np) < 1e-5);
    }
    for (int k = 0; k < 3; k++) free(g[k]);

    gpt_model m;
    REQUIRE_EQ_INT(gpt_build(&m, &cfg, 9, &err), CF_OK);
    perturb(&m, 0.3f);
    if (pool == GPT_POOL_VARIABLES) set_slot_map(&m);
    REQUIRE_EQ_INT(gpt_forward_ex(&m, in, NULL, &x, B, T, 0, &err), CF_OK);
    float *full = fcopy(m.acts.logits, (size_t)B * T * m.config.padded_vocab_size);
    float *lnf = fcopy(m.acts.lnf, (size_t)B * T * C), *cl = fcopy(m.acts.cls_logits, (size_t)B * K);
    /* zero inputs are the same network as no inputs */
    float zero[5 * 25 * 4] = {0};
    gpt_extra xz = {zero, NULL, NULL, 1, 0, NULL, 0, NULL}, xn = {NULL, NULL, NULL, 1, 0, NULL, 0, NULL};
    REQUIRE_EQ_INT(gpt_forward_ex(&m, in, NULL, &xz, B, T, 0, &err), CF_OK);
    float *lz = fcopy(m.acts.lnf, (size_t)B * T * C);
    REQUIRE_EQ_INT(gpt_forward_ex(&m, in, NULL, &xn, B, T, 0, &err), CF_OK);
    CHECK(max_abs_diff(lz, m.acts.lnf, (size_t)B * T * C) == 0.0);
    CHECK(max_abs_diff(lz, lnf, (size_t)B * T * C) > 1e-3); /* the inputs do change the network */
    gpt_kv_cache kv;
    REQUIRE_EQ_INT(gpt_kv_init(&kv, &m, 1, &err), CF_OK);
    double worst = 0.0, wcls = 0.0;
    for (int b = 0; b < B; b++) {
        gpt_kv_reset(&kv);
        REQUIRE_EQ_INT(gpt_kv_forward_x(&m, &kv, in + b * T, feats + (size_t)b * T * F, 1, 10, GPT_LOGITS_ALL, &err), CF_OK);
        worst = fmax(worst, max_abs_diff(kv.lnf, lnf + (size_t)b * T * C, (size_t)10 * C));
        for (int t = 10; t < T; t++) {
            REQUIRE_EQ_INT(gpt_kv_forward_x(&m, &kv, in + b * T + t, feats + ((size_t)b * T + t) * F, 1, 1, GPT_LOGITS_LAST, &err), CF_OK);
            worst = fmax(worst, max_abs_diff(kv.lnf, lnf + ((size_t)b * T + t) * C, (size_t)C));
        }
        float xin[8 * 16], z[3]; /* 8C: the windows pooling; the variables' 4C + 3 x 2 x 4 is less */
        gpt_kv_reset(&kv);
        REQUIRE_EQ_INT(gpt_kv_forward_x(&m, &kv, in + b * T, feats + (size_t)b * T * F, 1, pos[b] + 1, GPT_LOGITS_NONE, &err),
                       CF_OK);
        gpt_cls_input(&m, in + b * T, kv.lnf, feats + (size_t)b * T * F, pos[b] + 1, xin);
        gpt_cls_logits(&m, xin, z);
        wcls = fmax(wcls, max_abs_diff(z, cl + (size_t)b * K, K));
    }
    fprintf(stderr, "    with inputs, pooling %d: KV cache vs full %.3g, head logits %.3g\n", pool, worst, wcls);
    CHECK(worst < 1e-4);
    CHECK(wcls < 1e-4);
    gpt_kv_free(&kv);
    if (pool == GPT_POOL_VARIABLES) {
        /* the variables pooling's map and projection survive the round trip; a map that leaves a
         * slot without a token, or holds a fraction, is refused at load */
        char vpath[512];
        snprintf(vpath, sizeof vpath, "%s", tmp_path("vars.ckpt"));
        REQUIRE_EQ_INT(gpt_save(&m, vpath, NULL, 0, &err), CF_OK);
        gpt_model r;
        REQUIRE_EQ_INT(gpt_load(&r, vpath, NULL, NULL, &err), CF_OK);
        CHECK(r.config.cls_pool == GPT_POOL_VARIABLES && r.config.cls_slots == 4 && r.config.cls_proj == 2);
        CHECK(r.num_parameters == m.num_parameters &&
              memcmp(r.params.clsmap, m.params.clsmap, (size_t)m.config.padded_vocab_size * sizeof(float)) == 0 &&
              memcmp(r.params.clsvw, m.params.clsvw, (size_t)2 * C * sizeof(float)) == 0 && r.params.clsvw[0] != 0.0f);
        gpt_free(&r);
        for (int v = 0; v < V; v++) /* no token of slot 3 */
            if (m.params.clsmap[v] == 3.0f) m.params.clsmap[v] = 0.0f;
        REQUIRE_EQ_INT(gpt_save(&m, vpath, NULL, 0, &err), CF_OK);
        CHECK_EQ_INT(gpt_load(&r, vpath, NULL, NULL, &err), CF_EINPUT);
        CHECK_CONTAINS(err.msg, "slot 3 of 4 no token");
        set_slot_map(&m);
        m.params.clsmap[1] = 0.5f;
        REQUIRE_EQ_INT(gpt_save(&m, vpath, NULL, 0, &err), CF_OK);
        CHECK_EQ_INT(gpt_load(&r, vpath, NULL, NULL, &err), CF_EINPUT);
        CHECK_CONTAINS(err.msg, "token-to-slot map gives token 1 slot 0.5");
        /* gpt_update leaves the map as it is, whatever its gradient buffer holds */
        set_slot_map(&m);
        float *map0 = fcopy(m.params.clsmap, (size_t)m.config.padded_vocab_size);
        REQUIRE_EQ_INT(gpt_forward_ex(&m, in, tg, &x, B, T, 1, &err), CF_OK);
        gpt_zero_grad(&m);
        REQUIRE_EQ_INT(gpt_backward(&m, &err), CF_OK);
        for (int v = 0; v < m.config.padded_vocab_size; v++) m.grads.clsmap[v] = 1.0f;
        gpt_opt_config oc = gpt_opt_default(10);
        REQUIRE_EQ_INT(gpt_update(&m, &oc, NULL, &err), CF_OK);
        CHECK(memcmp(map0, m.params.clsmap, (size_t)m.config.padded_vocab_size * sizeof(float)) == 0);
        free(map0);
    }
    gpt_free(&m);
    free(full), free(lnf), free(cl), free(lz);
}

/* Continuous inputs and heads: slices, the KV cache and checkpoints agree with the plain
 * forward; a model without them still writes a version-1 checkpoint. */
static void test_feat_model_paths(void) {
    cf_err err;
    const int V = 30, C = 16, T = 25, F = 4, H = 6, K = 3;
    gpt_config cfg = feat_config(V, C, 2, 2, T, 0.2f, F, H, K);
    cfg.cls_pool = GPT_POOL_WINDOWS; /* the widest pooling: every part of it through the KV cache and
                                        the slices (the windows read each slice's own inputs) */
    {
        /* the windows need the time input (column 3); a pooling past the last known is refused,
         * as a binary older than the windows refuses 4 */
        gpt_model bad;
        gpt_config c3 = feat_config(V, C, 2, 2, T, 0.2f, 3, H, K);
        c3.cls_pool = GPT_POOL_WINDOWS;
        CHECK_EQ_INT(gpt_build(&bad, &c3, 4, &err), CF_EINPUT);
        CHECK_CONTAINS(err.msg, "--inputs");
        c3 = cfg, c3.cls_pool = GPT_POOL_VARIABLES + 1;
        CHECK_EQ_INT(gpt_build(&bad, &c3, 4, &err), CF_EINPUT);
        CHECK_CONTAINS(err.msg, "head pooling 7");
        /* the variables pooling without its map (no slots) is refused, and so are slots in
         * another mode */
        c3 = cfg, c3.cls_pool = GPT_POOL_VARIABLES;
        CHECK_EQ_INT(gpt_build(&bad, &c3, 4, &err), CF_EINPUT);
        CHECK_CONTAINS(err.msg, "token-to-slot map");
        c3.cls_slots = GPT_POOL_MAX_SLOTS + 1, c3.cls_proj = 2;
        CHECK_EQ_INT(gpt_build(&bad, &c3, 4, &err), CF_EINPUT);
        c3 = cfg, c3.cls_slots = 3, c3.cls_proj = 2;
        CHECK_EQ_INT(gpt_build(&bad, &c3, 4, &err), CF_EINPUT);
    }
    feat_paths(cfg);
    gpt_config cv = cfg; /* the variables pooling through the slices and the KV cache too: it reads
                            each row's tokens */
    cv.cls_pool = GPT_POOL_VARIABLES, cv.cls_slots = 4, cv.cls_proj = 2;
    feat_paths(cv);

    gpt_model m;
    unsigned char hdr[12];
    int fd;
    REQUIRE_EQ_INT(gpt_build(&m, &cfg, 9, &err), CF_OK);
    perturb(&m, 0.3f);

    /* checkpoint round trip, version 2 */
    char path[512];
    snprintf(path, sizeof path, "%s", tmp_path("feat.ckpt"));
    REQUIRE_EQ_INT(gpt_save(&m, path, NULL, 0, &err), CF_OK);
    gpt_model r;
    REQUIRE_EQ_INT(gpt_load(&r, path, NULL, NULL, &err), CF_OK);
    CHECK_EQ_INT(r.config.n_features, F);
    CHECK_EQ_INT(r.config.feat_hidden, H);
    CHECK_EQ_INT(r.config.num_outputs, K);
    CHECK(r.num_parameters == m.num_parameters &&
          memcmp(r.param_memory, m.param_memory, m.num_parameters * sizeof(float)) == 0);
    CHECK_EQ_INT(gpt_config_compare(&r.config, &m.config, &err), CF_OK);
    gpt_config other = m.config;
    other.num_outputs = 1;
    CHECK_EQ_INT(gpt_config_compare(&r.config, &other, &err), CF_EINPUT);
    CHECK_CONTAINS(err.msg, "task heads");
    gpt_free(&r);
    fd = open(path, O_RDONLY);
    CHECK(fd >= 0 && read(fd, hdr, 12) == 12);
    if (fd >= 0) close(fd);
    CHECK_EQ_INT(hdr[8], 2);
    gpt_free(&m);
    /* the attention pooling's query is one more tensor: it survives the round trip, a heads-less
     * copy of the model has none */
    gpt_config ca = cfg;
    ca.cls_pool = GPT_POOL_ATTENTION;
    REQUIRE_EQ_INT(gpt_build(&m, &ca, 3, &err), CF_OK);
    perturb(&m, 0.3f);
    CHECK(m.param_sizes[23] == (size_t)C && m.params.clsq[0] != 0.0f);
    REQUIRE_EQ_INT(gpt_save(&m, path, NULL, 0, &err), CF_OK);
    REQUIRE_EQ_INT(gpt_load(&r, path, NULL, NULL, &err), CF_OK);
    CHECK_EQ_INT(r.config.cls_pool, GPT_POOL_ATTENTION);
    CHECK(r.num_parameters == m.num_parameters && memcmp(r.params.clsq, m.params.clsq, C * sizeof(float)) == 0);
    gpt_free(&r);
    ca.num_outputs = 0;
    REQUIRE_EQ_INT(gpt_build(&r, &ca, 3, &err), CF_OK);
    CHECK(r.param_sizes[23] == 0);
    gpt_free(&r);
    gpt_free(&m);
    gpt_config plain = tiny_config(V, 0, C, 2, 1, T, 0.0f);
    REQUIRE_EQ_INT(gpt_build(&m, &plain, 1, &err), CF_OK);
    REQUIRE_EQ_INT(gpt_save(&m, path, NULL, 0, &err), CF_OK);
    fd = open(path, O_RDONLY);
    CHECK(fd >= 0 && read(fd, hdr, 12) == 12);
    if (fd >= 0) close(fd);
    CHECK_EQ_INT(hdr[8], 1);
    gpt_free(&m);
}

int main(void) {
    RUN(test_fast_exp);
    RUN(test_dropout_mask);
    RUN(test_fd_layernorm);
    RUN(test_fd_matmul);
    RUN(test_fd_attention);
    RUN(test_fd_gelu);
    RUN(test_fd_encoder);
    RUN(test_fd_residual_dropout);
    RUN(test_fd_crossentropy);
    RUN(test_matmul_fast_vs_ref);
    RUN(test_attention_fast_vs_ref);
    RUN(test_elementwise_vs_plain);
    RUN(test_fd_whole_model);
    RUN(test_fd_feat);
    RUN(test_fd_cls);
    RUN(test_fd_value);
    RUN(test_fd_whole_model_ex);
    RUN(test_copy_params);
    RUN(test_feat_model_paths);
    RUN(test_lr_schedule);
    RUN(test_adamw_and_clipping);
    RUN(test_lr_scale);
    RUN(test_bitwise_determinism);
    RUN(test_slices_match_whole);
    RUN(test_kernel_paths);
    RUN(test_overfit_tiny_stream);
    RUN(test_resume_exact);
    RUN(test_checkpoint_errors);
    RUN(test_config_and_input_errors);
    RUN(test_kv_cache_matches_full);
    RUN(test_sampling);
    return check_summary();
}
