/* The summary target of fine-tuning (src/model/ft_summary.h, `eval --ft-summary-weight`).
 *
 * Checked:
 *   - the variables are the tokens carrying a value in the most prompts (ties: the lower id),
 *     and each prompt's targets (last, min, max, mean standardised by the train prompts that
 *     have the variable; present 0/1; missing value targets NaN) equal a double-precision
 *     reference worked out here from the same prompts;
 *   - the head's forward (predictions, sum of squared errors, observed count) against double
 *     precision, and every gradient of its backward (A, c and the input x) against central
 *     differences;
 *   - a missing target contributes nothing: the rows of A and c of a variable absent from every
 *     prompt of the batch get exactly zero gradient, though the head predicts something there;
 *   - the whole chain: the model's every parameter and the head's under cls_weight * head log
 *     loss + W * the summary's mean squared error, the summary read from the model's own pooled
 *     states (extremes pooling, dropout on) and its gradient carried in by gpt_backward_ex,
 *     against central differences; and a zero extra gradient leaves gpt_backward's bits. */
#include "check.h"
#include "model/ft_summary.h"
#include "model/gpt.h"
#include "model/gpt_kernels.h"

#define F 4 /* continuous inputs of the handmade prompts: 0 carries a value, 1 the value */
#define NTOK 10

static uint64_t rng_state = 7;
static double urand(void) { return (double)(gpt__mix64(rng_state++) >> 11) * (1.0 / 9007199254740992.0); }
static void fill(float *x, size_t n, float lo, float hi) {
    for (size_t i = 0; i < n; i++) x[i] = lo + (hi - lo) * (float)urand();
}

/* A prompt from (token, value) pairs, NaN: the token carries no value. */
static rt_prompt make_prompt(const int *tok, const float *val, int n) {
    rt_prompt p;
    memset(&p, 0, sizeof p);
    p.tokens = malloc((size_t)n * sizeof *p.tokens);
    p.feats = calloc((size_t)n * F, sizeof *p.feats);
    p.len = n;
    for (int t = 0; t < n; t++) {
        p.tokens[t] = tok[t];
        p.feats[t * F + 0] = isnan(val[t]) ? 0.0f : 1.0f;
        p.feats[t * F + 1] = isnan(val[t]) ? 0.0f : val[t];
        p.feats[t * F + 2] = (float)t * 0.1f; /* other inputs: never read as values */
        p.feats[t * F + 3] = 0.7f;
    }
    return p;
}

/* Four prompts: token 3 carries values in all four, 5 in three, 4 and 7 in one each (4 in
 * prompt 0, 7 in prompt 3), 2 everywhere but never with a value, 1 a value-less prefix. */
#define NP 4
static rt_prompt PR[NP];
static void make_prompts(void) {
    const float N = NAN;
    static const int t0[] = {1, 3, 2, 5, 3, 4, 3}, t1[] = {1, 5, 2, 3, 5}, t2[] = {1, 3, 2, 3, 3, 5, 5},
                     t3[] = {1, 2, 3, 7, 2};
    const float v0[] = {N, 0.5f, N, -1.0f, 2.0f, 0.25f, -0.5f}, v1[] = {N, 3.0f, N, 1.5f, 2.0f},
                v2[] = {N, -2.0f, N, 0.0f, 1.0f, 0.75f, -0.25f}, v3[] = {N, N, 1.25f, 4.0f, N};
    PR[0] = make_prompt(t0, v0, 7);
    PR[1] = make_prompt(t1, v1, 5);
    PR[2] = make_prompt(t2, v2, 7);
    PR[3] = make_prompt(t3, v3, 5);
}

/* The reference: per prompt and token, the raw last/min/max/mean (double), has = count. */
static void ref_raw(const rt_prompt *p, int tok, double r[4], int *has) {
    *has = 0;
    double sum = 0;
    for (int t = 0; t < p->len; t++) {
        if (p->tokens[t] != tok || p->feats[t * F] != 1.0f) continue;
        double x = p->feats[t * F + 1];
        if (!*has) r[1] = r[2] = x;
        r[0] = x;
        r[1] = x < r[1] ? x : r[1];
        r[2] = x > r[2] ? x : r[2];
        sum += x;
        ++*has;
    }
    if (*has) r[3] = sum / *has;
}

static void test_targets_against_reference(void) {
    cf_err err;
    ft_summary s;
    REQUIRE_EQ_INT(ft_summary_init(&s, PR, NP, NTOK, F, 6, 3, &err), CF_OK);
    /* 3 (4 prompts), 5 (3 prompts), then 4 and 7 tie at one: the lower id, 4; 7 is left out */
    CHECK_EQ_INT(s.V, 3);
    CHECK_EQ_INT(s.J, 15);
    const int want_slot[NTOK] = {-1, -1, -1, 0, 2, 1, -1, -1, -1, -1};
    for (int v = 0; v < NTOK; v++) CHECK_EQ_INT(s.slot[v], want_slot[v]);
    const int tok_of[3] = {3, 5, 4};
    /* the standardisation over the prompts that have each variable, population spread */
    double mu[3][4] = {{0}}, sd[3][4] = {{0}}, cnt[3] = {0};
    for (int i = 0; i < NP; i++)
        for (int v = 0; v < 3; v++) {
            double r[4];
            int h;
            ref_raw(&PR[i], tok_of[v], r, &h);
            if (!h) continue;
            cnt[v]++;
            for (int k = 0; k < 4; k++) mu[v][k] += r[k], sd[v][k] += r[k] * r[k];
        }
    for (int v = 0; v < 3; v++)
        for (int k = 0; k < 4; k++) {
            mu[v][k] /= cnt[v];
            double var = sd[v][k] / cnt[v] - mu[v][k] * mu[v][k];
            sd[v][k] = var > 1e-12 ? sqrt(var) : 1.0; /* token 4: one prompt, no spread */
        }
    double worst = 0, csum[15] = {0}, ccnt[15] = {0};
    int nan_ok = 1;
    for (int i = 0; i < NP; i++) {
        float y[15];
        ft_summary_targets(&s, &PR[i], y);
        for (int v = 0; v < 3; v++) {
            double r[4];
            int h;
            ref_raw(&PR[i], tok_of[v], r, &h);
            for (int k = 0; k < 4; k++) {
                if (!h) {
                    nan_ok &= isnan(y[5 * v + k]);
                    continue;
                }
                double want = (r[k] - mu[v][k]) / sd[v][k];
                worst = fmax(worst, fabs(y[5 * v + k] - want));
                csum[5 * v + k] += y[5 * v + k], ccnt[5 * v + k]++;
            }
            CHECK(y[5 * v + 4] == (h ? 1.0f : 0.0f));
            csum[5 * v + 4] += y[5 * v + 4], ccnt[5 * v + 4]++;
        }
    }
    fprintf(stderr, "  targets: largest difference from the double reference %.3g\n", worst);
    CHECK(worst < 1e-6);
    CHECK(nan_ok);
    /* the head starts at each target's train mean: zero for the standardised values, the share
     * of prompts with the variable for its presence (3 in 4, 5 in 3 of 4, 4 in 1 of 4) */
    for (int j = 0; j < 15; j++) CHECK_NEAR(s.c[j], csum[j] / ccnt[j], 1e-6);
    CHECK_NEAR(s.c[4], 1.0, 1e-7);
    CHECK_NEAR(s.c[9], 0.75, 1e-7);
    CHECK_NEAR(s.c[14], 0.25, 1e-7);
    for (size_t i = 0; i < (size_t)s.J * s.P; i++) CHECK(s.A[i] == 0.0f);
    ft_summary_free(&s);
    /* prompts without any value-carrying token, and a model without inputs, are refused */
    const int tk[2] = {1, 2};
    const float nv[2] = {NAN, NAN};
    rt_prompt bare = make_prompt(tk, nv, 2);
    CHECK_EQ_INT(ft_summary_init(&s, &bare, 1, NTOK, F, 6, 3, &err), CF_EINPUT);
    CHECK_CONTAINS(err.msg, "no token that carries a value");
    CHECK_EQ_INT(ft_summary_init(&s, PR, NP, NTOK, 0, 6, 3, &err), CF_EINPUT);
    CHECK_CONTAINS(err.msg, "--values embed --inputs");
    rt_prompt_free(&bare);
}

/* A head with random A and c on random inputs; y the four prompts' targets. */
typedef struct {
    ft_summary s;
    float x[NP * 6], y[NP * 15], pred[NP * 15];
    float scale;
} head_ctx;

static void head_setup(head_ctx *h) {
    cf_err err;
    memset(h, 0, sizeof *h);
    if (ft_summary_init(&h->s, PR, NP, NTOK, F, 6, 3, &err) != CF_OK) return;
    fill(h->s.A, (size_t)h->s.J * 6, -0.5f, 0.5f);
    fill(h->s.c, (size_t)h->s.J, -0.5f, 0.5f);
    fill(h->x, NP * 6, -1.5f, 1.5f);
    for (int i = 0; i < NP; i++) ft_summary_targets(&h->s, &PR[i], h->y + i * 15);
    h->scale = 0.37f;
}

static double head_loss(head_ctx *h) {
    size_t n = 0;
    return h->scale * ft_summary_forward(&h->s, h->x, h->y, NP, h->pred, &n);
}

/* Central differences of loss(ctx) in each x[i] against ana[i]: the count out of tolerance. */
static int fd_check(const char *what, float *x, const float *ana, size_t n, double (*loss)(void *), void *ctx,
                    double atol, double rtol) {
    int bad = 0;
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        const float keep = x[i], eps = 1e-3f;
        x[i] = keep + eps;
        double lp = loss(ctx);
        x[i] = keep - eps;
        double lm = loss(ctx);
        x[i] = keep;
        double num = (lp - lm) / (2.0 * eps), d = fabs(num - ana[i]);
        worst = fmax(worst, d);
        if (!(d <= atol + rtol * fabs(ana[i])) && bad++ < 3)
            fprintf(stderr, "    %s[%zu]: numeric %.6g analytic %.6g\n", what, i, num, (double)ana[i]);
    }
    fprintf(stderr, "    fd %-10s n=%-5zu largest |numeric - analytic| = %.3g\n", what, n, worst);
    return bad;
}

static double head_loss_v(void *h) { return head_loss(h); }

static void test_head_forward_and_gradients(void) {
    head_ctx h;
    head_setup(&h);
    REQUIRE(h.s.J == 15);
    size_t n = 0;
    double sse = ft_summary_forward(&h.s, h.x, h.y, NP, h.pred, &n);
    double ref = 0, worst = 0;
    size_t nref = 0;
    for (int b = 0; b < NP; b++)
        for (int j = 0; j < 15; j++) {
            double z = h.s.c[j];
            for (int i = 0; i < 6; i++) z += (double)h.s.A[j * 6 + i] * h.x[b * 6 + i];
            worst = fmax(worst, fabs(z - h.pred[b * 15 + j]));
            if (isnan(h.y[b * 15 + j])) continue;
            ref += (z - h.y[b * 15 + j]) * (z - h.y[b * 15 + j]);
            nref++;
        }
    fprintf(stderr, "  forward: predictions within %.3g, loss %.6f (reference %.6f), %zu observed of %d\n", worst, sse,
            ref, n, NP * 15);
    CHECK(worst < 1e-5);
    CHECK_NEAR(sse, ref, 1e-5 * ref);
    CHECK_EQ_INT(n, nref);
    CHECK(n < NP * 15); /* the fixture has missing targets */
    /* backward against central differences: A, c and the input */
    float dx[NP * 6] = {0};
    ft_summary_zero_grad(&h.s);
    head_loss(&h);
    ft_summary_backward(&h.s, h.x, h.y, h.pred, NP, h.scale, dx);
    int bad = fd_check("A", h.s.A, h.s.dA, (size_t)h.s.J * 6, head_loss_v, &h, 1e-3, 1e-3);
    bad += fd_check("c", h.s.c, h.s.dc, (size_t)h.s.J, head_loss_v, &h, 1e-3, 1e-3);
    bad += fd_check("x", h.x, dx, NP * 6, head_loss_v, &h, 1e-3, 1e-3);
    CHECK_EQ_INT(bad, 0);
    ft_summary_free(&h.s);
}

/* Missing entries contribute nothing: token 4 (slot 2) has values in prompt 0 only, so over
 * prompts 1-3 its four value targets are missing in every row: their rows of A and c get no
 * gradient at all, though A and c are random there and the predictions far from zero. Its
 * present target (0) is observed and does get one. */
static void test_missing_contribute_nothing(void) {
    head_ctx h;
    head_setup(&h);
    REQUIRE(h.s.J == 15);
    const float *x = h.x + 6, *y = h.y + 15; /* prompts 1-3 */
    for (int b = 0; b < 3; b++)
        for (int k = 0; k < 4; k++) REQUIRE(isnan(y[b * 15 + 10 + k]));
    float dx[3 * 6] = {0};
    size_t n = 0;
    ft_summary_zero_grad(&h.s);
    ft_summary_forward(&h.s, x, y, 3, h.pred, &n);
    ft_summary_backward(&h.s, x, y, h.pred, 3, 1.0f, dx);
    int moved = 0;
    for (int j = 10; j < 14; j++) {
        moved += h.s.dc[j] != 0.0f;
        for (int i = 0; i < 6; i++) moved += h.s.dA[j * 6 + i] != 0.0f;
    }
    CHECK_EQ_INT(moved, 0);
    CHECK(h.s.dc[14] != 0.0f);
    CHECK(fabsf(h.pred[10]) > 1e-3f);
    /* and the loss and the input gradient are those of the observed entries alone */
    double ref = 0;
    float dref[3 * 6] = {0};
    size_t nref = 0;
    for (int b = 0; b < 3; b++)
        for (int j = 0; j < 15; j++) {
            if (isnan(y[b * 15 + j])) continue;
            double g = 2.0 * (h.pred[b * 15 + j] - y[b * 15 + j]);
            ref += 0.25 * g * g;
            nref++;
            for (int i = 0; i < 6; i++) dref[b * 6 + i] += (float)(g * h.s.A[j * 6 + i]);
        }
    double d = 0;
    for (int i = 0; i < 18; i++) d = fmax(d, fabs(dx[i] - dref[i]));
    CHECK_EQ_INT(n, nref);
    CHECK(d < 1e-5);
    ft_summary_free(&h.s);
}

/* The whole chain on a small model: two rows, extremes pooling, dropout 0.2 (the mask fixed by
 * the RNG counter), one head with labels; the summary's prompts are the rows' own tokens and
 * inputs up to each head position. */
typedef struct {
    gpt_model m;
    ft_summary s;
    int in[8], pos[2];
    float feats[8 * F], ycls[2], y[2 * 64 * 5], pred[2 * 64 * 5];
    float W;
    uint64_t counter;
} chain_ctx;

static double chain_loss(chain_ctx *c) {
    cf_err err;
    c->m.rng_counter = c->counter;
    gpt_extra x = {.feats = c->feats, .cls_pos = c->pos, .cls_y = c->ycls, .cls_weight = 0.8f};
    if (gpt_forward_ex(&c->m, c->in, NULL, &x, 2, 4, 1, &err) != CF_OK) return NAN;
    size_t n = 0;
    double sse = ft_summary_forward(&c->s, c->m.acts.cls_in, c->y, 2, c->pred, &n);
    return 0.8 * c->m.cls_loss + c->W * sse / (double)n;
}

static double chain_loss_v(void *c) { return chain_loss(c); }

static void test_chain_through_the_model(void) {
    static const char *names[] = {"wte", "wpe", "ln1w", "ln1b", "qkvw", "qkvb", "attprojw", "attprojb",
                                  "ln2w", "ln2b", "fcw", "fcb", "fcprojw", "fcprojb", "lnfw", "lnfb",
                                  "xw1", "xb1", "xw2", "clsw", "clsb", "valw", "valb", "clsq", "clsvw", "clsmap"};
    _Static_assert(sizeof names / sizeof names[0] >= GPT_NUM_PARAM_TENSORS, "a name per tensor");
    static chain_ctx c;
    cf_err err;
    memset(&c, 0, sizeof c);
    gpt_config cfg = {.max_seq_len = 4, .vocab_size = 7, .num_layers = 2, .num_heads = 2, .channels = 8,
                      .dropout = 0.2f, .n_features = F, .feat_hidden = 5, .num_outputs = 1,
                      .cls_pool = GPT_POOL_EXTREMES};
    REQUIRE_EQ_INT(gpt_build(&c.m, &cfg, 5, &err), CF_OK);
    c.m.num_threads = 1;
    fill(c.m.param_memory, c.m.num_parameters, -0.5f, 0.5f);
    const int in[8] = {1, 3, 4, 3, 6, 5, 3, 5}, pos[2] = {3, 2};
    memcpy(c.in, in, sizeof in);
    memcpy(c.pos, pos, sizeof pos);
    fill(c.feats, 8 * F, -1.0f, 1.0f);
    /* tokens 3 and 5 carry values; the 5 at row 1's position 3 is past its head position: not its input */
    for (int t = 0; t < 8; t++) c.feats[t * F] = in[t] == 3 || in[t] == 5 ? 1.0f : 0.0f;
    c.ycls[0] = 1.0f, c.ycls[1] = 0.0f;
    rt_prompt rows[2];
    for (int b = 0; b < 2; b++) {
        memset(&rows[b], 0, sizeof rows[b]);
        rows[b].tokens = c.in + b * 4;
        rows[b].feats = c.feats + b * 4 * F;
        rows[b].len = pos[b] + 1;
    }
    const int P = gpt_cls_width(&c.m.config);
    REQUIRE_EQ_INT(ft_summary_init(&c.s, rows, 2, 7, F, P, 8, &err), CF_OK);
    REQUIRE_EQ_INT(c.s.V, 2);
    for (int b = 0; b < 2; b++) ft_summary_targets(&c.s, &rows[b], c.y + b * c.s.J);
    fill(c.s.A, (size_t)c.s.J * P, -0.5f, 0.5f);
    fill(c.s.c, (size_t)c.s.J, -0.5f, 0.5f);
    c.W = 0.6f;
    c.counter = 11;

    /* a zero extra gradient changes no bit of gpt_backward's */
    chain_loss(&c);
    gpt_zero_grad(&c.m);
    REQUIRE_EQ_INT(gpt_backward(&c.m, &err), CF_OK);
    float *plain = malloc(c.m.num_parameters * sizeof *plain);
    memcpy(plain, c.m.grad_memory, c.m.num_parameters * sizeof *plain);
    float zero[2 * 64 * 4 * 8] = {0};
    chain_loss(&c);
    gpt_zero_grad(&c.m);
    REQUIRE_EQ_INT(gpt_backward_ex(&c.m, zero, &err), CF_OK);
    CHECK(memcmp(plain, c.m.grad_memory, c.m.num_parameters * sizeof *plain) == 0);

    /* the objective with the summary: every tensor of the model and the head */
    size_t n = 0;
    chain_loss(&c);
    n = 0;
    ft_summary_forward(&c.s, c.m.acts.cls_in, c.y, 2, c.pred, &n);
    REQUIRE(n > 0);
    float dx[2 * 4 * 8] = {0};
    ft_summary_zero_grad(&c.s);
    ft_summary_backward(&c.s, c.m.acts.cls_in, c.y, c.pred, 2, c.W / (float)n, dx);
    gpt_zero_grad(&c.m);
    REQUIRE_EQ_INT(gpt_backward_ex(&c.m, dx, &err), CF_OK);
    float *ana = malloc(c.m.num_parameters * sizeof *ana);
    memcpy(ana, c.m.grad_memory, c.m.num_parameters * sizeof *ana);
    int bad = 0, differs = 0;
    size_t off = 0;
    for (int i = 0; i < GPT_NUM_PARAM_TENSORS; i++) {
        if (c.m.param_sizes[i])
            bad += fd_check(names[i], c.m.param_memory + off, ana + off, c.m.param_sizes[i], chain_loss_v, &c, 2e-3, 2e-2);
        off += (c.m.param_sizes[i] + 15) / 16 * 16;
    }
    for (size_t i = 0; i < c.m.num_parameters; i++) differs += ana[i] != plain[i];
    float *dA = malloc((size_t)c.s.J * P * sizeof *dA), dc[64 * 5];
    memcpy(dA, c.s.dA, (size_t)c.s.J * P * sizeof *dA);
    memcpy(dc, c.s.dc, (size_t)c.s.J * sizeof *dc);
    bad += fd_check("summary.A", c.s.A, dA, (size_t)c.s.J * P, chain_loss_v, &c, 2e-3, 2e-2);
    bad += fd_check("summary.c", c.s.c, dc, (size_t)c.s.J, chain_loss_v, &c, 2e-3, 2e-2);
    CHECK_EQ_INT(bad, 0);
    fprintf(stderr, "  the summary moved %d of %zu model gradients\n", differs, c.m.num_parameters);
    CHECK(differs > 100);
    /* two threads: the batch's rows go back in slices, each reading its own rows of the extra
     * gradient; the same gradients up to the order of the sums */
    c.m.num_threads = 2;
    chain_loss(&c);
    n = 0;
    ft_summary_forward(&c.s, c.m.acts.cls_in, c.y, 2, c.pred, &n);
    memset(dx, 0, sizeof dx);
    ft_summary_backward(&c.s, c.m.acts.cls_in, c.y, c.pred, 2, c.W / (float)n, dx);
    gpt_zero_grad(&c.m);
    REQUIRE_EQ_INT(gpt_backward_ex(&c.m, dx, &err), CF_OK);
    double sd = 0;
    for (size_t i = 0; i < c.m.num_parameters; i++) sd = fmax(sd, fabs(c.m.grad_memory[i] - ana[i]));
    fprintf(stderr, "  two threads' slices against one: gradients within %.3g\n", sd);
    CHECK(sd < 1e-5);
    /* an extra gradient needs head positions in the forward */
    gpt_extra nx = {.feats = c.feats, .lm_weight = 1.0f};
    const int tg[8] = {3, 4, 3, 6, 5, 3, 1, 2};
    REQUIRE_EQ_INT(gpt_forward_ex(&c.m, c.in, tg, &nx, 2, 4, 1, &err), CF_OK);
    CHECK_EQ_INT(gpt_backward_ex(&c.m, dx, &err), CF_EINTERNAL);
    CHECK_CONTAINS(err.msg, "head positions");
    free(plain);
    free(ana);
    free(dA);
    ft_summary_free(&c.s);
    gpt_free(&c.m);
}

int main(void) {
    make_prompts();
    RUN(test_targets_against_reference);
    RUN(test_head_forward_and_gradients);
    RUN(test_missing_contribute_nothing);
    RUN(test_chain_through_the_model);
    for (int i = 0; i < NP; i++) rt_prompt_free(&PR[i]);
    return check_summary();
}
