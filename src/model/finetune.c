/* End-to-end fine-tuning of the model with task heads; see finetune.h. */
#include "model/finetune.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cblas.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "model/ft_summary.h"
#include "model/gpt_kernels.h"
#include "model/head.h"

void ft_options_default(ft_options *o) {
    memset(o, 0, sizeof *o);
    o->epochs = 30;
    o->batch = 16;
    o->lr = 2e-4f;
    o->body_lr = o->head_lr = 1.0f;
    o->weight_decay = 0.05f;
    o->lm_weight = 0.3f;
    o->dropout = 0.1f;
    o->patience = 4;
    o->probe_init = 1;
    o->pool = GPT_POOL_BOTH;
    o->var_slots = 48;
    o->var_proj = 2;
    o->aux_weight = 0.5f;
    o->summary_vars = 48;
    o->seed = 1;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The batch buffers, sized for batch x maxT. */
typedef struct {
    int *in, *tg, *pos;
    float *feats, *y, *vt;
    int *kept; /* (B, T) with value dropout: the prompt positions each row keeps, in order */
    int B, T, F, K;
} ft_batch;

static int batch_alloc(ft_batch *b, int B, int T, int F, int K) {
    memset(b, 0, sizeof *b);
    b->B = B, b->T = T, b->F = F, b->K = K;
    b->in = malloc((size_t)B * T * sizeof *b->in);
    b->tg = malloc((size_t)B * T * sizeof *b->tg);
    b->pos = malloc((size_t)B * sizeof *b->pos);
    b->feats = F ? malloc((size_t)B * T * F * sizeof *b->feats) : NULL;
    b->y = malloc((size_t)B * (K ? K : 1) * sizeof *b->y);
    b->vt = F ? malloc((size_t)B * T * sizeof *b->vt) : NULL;
    b->kept = malloc((size_t)B * T * sizeof *b->kept);
    return b->in && b->tg && b->pos && (!F || (b->feats && b->vt)) && b->y && b->kept ? 0 : -1;
}

static void batch_free(ft_batch *b) {
    CF_FREE_ALL(b->in, b->tg, b->pos, b->feats, b->y, b->vt, b->kept);
}

int ft_kept_positions(const rt_prompt *p, int F, float drop, uint64_t *rng, int *kept) {
    int m = 0;
    for (int t = 0; t < p->len; t++) {
        /* the last token stays, so the heads read the same moment of the stay whatever was left out */
        const int has_value = drop > 0 && F > 0 && t >= p->n_prefix && t + 1 < p->len && p->feats[(size_t)t * F] > 0.5f;
        if (!has_value || cf_unit(cf_step64(rng)) >= drop) kept[m++] = t;
    }
    return m;
}

/* Fills rows [0, n) from prompts idx[0, n): tokens padded to the longest (returned), next-
 * token targets outside the static prefix (with lm), head position at each prompt's end. With
 * drop > 0 a row is the positions ft_kept_positions keeps, closed up. */
static int batch_fill(ft_batch *b, const rt_prompt *ps, const float *y, const size_t *idx, int n, int pad, int lm,
                      float drop, uint64_t *rng) {
    int T = 1;
    int *len = b->pos; /* each row's kept length, until the head positions overwrite it */
    for (int r = 0; r < n; r++) {
        const int m = ft_kept_positions(&ps[idx[r]], b->F, drop, rng, b->kept + (size_t)r * b->T);
        len[r] = m;
        if (m > T) T = m;
    }
    for (int r = 0; r < n; r++) {
        const rt_prompt *p = &ps[idx[r]];
        const int *kept = b->kept + (size_t)r * b->T, L = len[r];
        int *in = b->in + (size_t)r * T, *tg = b->tg + (size_t)r * T;
        for (int t = 0; t < T; t++) {
            in[t] = t < L ? p->tokens[kept[t]] : pad;
            /* the target of t is token t+1 when that is a stream token of the prompt (the prefix
             * is never left out, so its positions are the prompt's own) */
            tg[t] = lm && t + 1 < L && t + 1 >= p->n_prefix ? p->tokens[kept[t + 1]] : -1;
        }
        if (b->F) {
            float *f = b->feats + (size_t)r * T * b->F;
            for (int t = 0; t < L; t++) memcpy(f + (size_t)t * b->F, p->feats + (size_t)kept[t] * b->F, (size_t)b->F * sizeof *f);
            memset(f + (size_t)L * b->F, 0, (size_t)(T - L) * b->F * sizeof *f);
        }
        b->pos[r] = L - 1;
        if (y) memcpy(b->y + (size_t)r * b->K, y + idx[r] * (size_t)b->K, (size_t)b->K * sizeof *b->y);
    }
    return T;
}

/* Runs n prompts through m (no dropout, K >= 1 heads), batch at a time: the head logits (n, K)
 * and/or what the heads read, emb (n, P) (the pooled final hidden states); either may be NULL. */
static int run_prompts(gpt_model *m, const rt_prompt *ps, size_t n, int pad, int batch, float *logits, float *emb,
                       cf_err *err) {
    const int K = m->config.num_outputs, F = m->config.n_features, maxT = m->config.max_seq_len;
    const size_t P = (size_t)gpt_cls_width(&m->config);
    if (K < 1) return cf_fail(err, CF_EINTERNAL, "the model has no task heads");
    if (batch < 1) batch = 16;
    for (size_t i = 0; i < n; i++)
        if (ps[i].len < 1 || ps[i].len > maxT || (F && !ps[i].feats))
            return cf_fail(err, CF_EINTERNAL, "prompt %zu does not fit the model (%d tokens, context %d)", i, ps[i].len,
                           maxT);
    ft_batch b;
    if (batch_alloc(&b, batch, maxT, F, K)) {
        batch_free(&b);
        return cf_fail(err, CF_EINTERNAL, "out of memory");
    }
    /* Prompts in length order, so each batch pads little. */
    size_t *order = malloc((n ? n : 1) * sizeof *order);
    if (!order) {
        batch_free(&b);
        return cf_fail(err, CF_EINTERNAL, "out of memory");
    }
    for (size_t i = 0; i < n; i++) order[i] = i;
    for (size_t i = 1; i < n; i++) /* insertion sort: n is thousands, lengths nearly sorted after a few */
        for (size_t j = i; j > 0 && ps[order[j - 1]].len > ps[order[j]].len; j--) {
            size_t t = order[j - 1];
            order[j - 1] = order[j];
            order[j] = t;
        }
    int rc = CF_OK;
    for (size_t a = 0; a < n && !rc; a += (size_t)batch) {
        int nb = (int)(n - a < (size_t)batch ? n - a : (size_t)batch);
        int T = batch_fill(&b, ps, NULL, order + a, nb, pad, 0, 0.0f, NULL);
        gpt_extra x = {.feats = b.feats, .cls_pos = b.pos, .lm_weight = 0.0f};
        if ((rc = gpt_forward_ex(m, b.in, NULL, &x, nb, T, 0, err))) break;
        for (int r = 0; r < nb; r++) {
            size_t i = order[a + (size_t)r];
            if (logits) memcpy(logits + i * (size_t)K, m->acts.cls_logits + (size_t)r * K, (size_t)K * sizeof *logits);
            if (emb) memcpy(emb + i * P, m->acts.cls_in + (size_t)r * P, P * sizeof *emb);
        }
    }
    free(order);
    batch_free(&b);
    return rc;
}

/* The thread count of a fine-tuning call: the model's, OpenMP's and OpenBLAS's, restored after.
 * OpenBLAS on its own would run every small matrix product on all cores, and under
 * contention its threads spend most of their time yielding to each other. */
typedef struct {
    int omp, blas;
} thread_state;

static thread_state threads_enter(gpt_model *m, int n) {
    thread_state t = {0, 0};
    if (n <= 0) return t;
#ifdef _OPENMP
    t.omp = omp_get_max_threads();
    omp_set_num_threads(n);
#endif
    t.blas = openblas_get_num_threads();
    openblas_set_num_threads(n);
    m->num_threads = n;
    return t;
}

static void threads_leave(thread_state t) {
#ifdef _OPENMP
    if (t.omp) omp_set_num_threads(t.omp);
#endif
    if (t.blas) openblas_set_num_threads(t.blas);
}

int ft_logits(gpt_model *m, const rt_prompt *ps, size_t n, int pad, int batch, float *logits, cf_err *err) {
    return run_prompts(m, ps, n, pad, batch, logits, NULL, err);
}

/* Linear probe, then fine-tune (LP-FT): each head starts as the L2 logistic regression on the
 * base model's frozen embeddings (head.h, penalty chosen on tuning rows), converted from its
 * standardised inputs to raw ones. A head at zero passes no gradient into the network at
 * first, and the network then drifts under the next-token loss before the head has learned
 * anything; starting from the probe, the first steps already push the features toward the
 * task. */
#define PROBE_MAX_SD 3.0
#define PROBE_MAX_NORM 4.0
/* The half-width of the uniform start of the heads' weights on the variables pooling's block:
 * about the size of a probe weight on the extremes (a norm of at most PROBE_MAX_NORM over 4C =
 * 256 numbers on the d64 model is 0.25 at most each; most are well under). */
#define VARS_HEAD_INIT 0.05

static int probe_init(gpt_model *out, int K, const rt_prompt *train, const float *ytr, size_t ntr, const rt_prompt *tune,
                      const float *ytu, size_t ntu, int pad, int batch, int cv, ft_report *rep, cf_err *err) {
    /* The probe reads what the heads read; with the variables pooling only its extremes (the
     * first 4C columns): the per-variable block is zero until the projection learns (see
     * vars_start), and its head weights are set there. So the probe, and fine-tuning's start,
     * is the extremes pooling's. */
    const int P = gpt_cls_width(&out->config);
    const int C = out->config.cls_pool == GPT_POOL_VARIABLES ? 4 * out->config.channels : P;
    float *etr = malloc(ntr * (size_t)P * sizeof *etr), *etu = malloc((ntu ? ntu : 1) * (size_t)P * sizeof *etu);
    float *xtr = malloc(ntr * (size_t)C * sizeof *xtr), *xtu = malloc((ntu ? ntu : 1) * (size_t)C * sizeof *xtu);
    uint8_t *ltr = malloc(ntr), *ltu = malloc(ntu ? ntu : 1);
    int rc = CF_OK;
    if (!etr || !etu || !xtr || !xtu || !ltr || !ltu) {
        rc = cf_fail(err, CF_EINTERNAL, "out of memory");
        goto done;
    }
    if ((rc = run_prompts(out, train, ntr, pad, batch, NULL, etr, err))) goto done;
    if (ntu && (rc = run_prompts(out, tune, ntu, pad, batch, NULL, etu, err))) goto done;
    for (int k = 0; k < K; k++) {
        size_t a = 0, b = 0;
        int pos = 0;
        for (size_t i = 0; i < ntr; i++) {
            float y = ytr[i * (size_t)K + k];
            if (isnan(y)) continue;
            memcpy(xtr + a * C, etr + i * P, (size_t)C * sizeof *xtr);
            ltr[a++] = y > 0.5f;
            pos += y > 0.5f;
        }
        for (size_t i = 0; i < ntu; i++) {
            float y = ytu[i * (size_t)K + k];
            if (isnan(y)) continue;
            memcpy(xtu + b * C, etu + i * P, (size_t)C * sizeof *xtu);
            ltu[b++] = y > 0.5f;
        }
        if (!a || !pos || pos == (int)a) continue; /* one class only: the prevalence start stays */
        rt_head h;
        double cvl = NAN;
        if ((rc = cv ? rt_head_fit_cv(&h, C, xtr, ltr, a, cv, xtu, ltu, b, &cvl, err)
                     : rt_head_fit(&h, C, xtr, ltr, a, xtu, ltu, b, err)))
            goto done;
        if (isnan(rep->probe_lambda)) rep->probe_lambda = h.lambda, rep->probe_cv_loss = cvl;
        double bias = h.b;
        for (int j = 0; j < C; j++) {
            out->params.clsw[(size_t)k * P + j] = (float)(h.w[j] * h.scale[j]);
            bias -= h.w[j] * h.scale[j] * h.shift[j];
        }
        out->params.clsb[k] = (float)bias;
        rt_head_free(&h);
        /* A probe can have huge weights (a tiny penalty on nearly separable rows, or columns of
         * tiny spread scaled up by the standardisation); fine-tuning under such a head is
         * unstable, since any change of the features swings the logits. So the weights are
         * shrunk about the train logits' mean until their norm is at most PROBE_MAX_NORM and
         * the train logits' spread at most PROBE_MAX_SD: the ranking, hence the AUROC, stays. */
        double sum = 0, sq = 0, nw = 0;
        float *w = out->params.clsw + (size_t)k * P;
        for (int j = 0; j < C; j++) nw += (double)w[j] * w[j];
        for (size_t i = 0; i < a; i++) {
            double z = out->params.clsb[k];
            for (int j = 0; j < C; j++) z += (double)w[j] * xtr[i * C + j];
            sum += z;
            sq += z * z;
        }
        double mean = sum / (double)a, sd = sqrt(fmax(sq / (double)a - mean * mean, 0));
        double f = fmin(sd > PROBE_MAX_SD ? PROBE_MAX_SD / sd : 1.0, sqrt(nw) > PROBE_MAX_NORM ? PROBE_MAX_NORM / sqrt(nw) : 1.0);
        if (f < 1) {
            for (int j = 0; j < C; j++) w[j] = (float)(w[j] * f);
            out->params.clsb[k] = (float)(out->params.clsb[k] * f + (1 - f) * mean);
        }
    }
done:
    CF_FREE_ALL(etr, etu, xtr, xtu, ltr, ltu);
    return rc;
}

/* Mean log loss over the labelled entries of columns [k0, k1) of logits (n, K) against y. */
static double log_loss(const float *logits, const float *y, size_t n, int K, int k0, int k1) {
    double s = 0;
    size_t c = 0;
    for (size_t i = 0; i < n * (size_t)K; i++) {
        if (isnan(y[i]) || (int)(i % (size_t)K) < k0 || (int)(i % (size_t)K) >= k1) continue;
        double z = logits[i];
        s += (z > 0 ? z + log1p(exp(-z)) : log1p(exp(z))) - y[i] * z;
        c++;
    }
    return c ? s / (double)c : NAN;
}

/* The summary target's mean squared error over the observed entries of n prompts whose pooled
 * states are emb (n, P) and targets y (n, J), batch rows at a time through pred (batch, J). */
static double summary_mse(const ft_summary *sm, const float *emb, const float *y, size_t n, float *pred, int batch) {
    double sse = 0;
    size_t nobs = 0;
    for (size_t a = 0; a < n; a += (size_t)batch) {
        int nb = (int)(n - a < (size_t)batch ? n - a : (size_t)batch);
        sse += ft_summary_forward(sm, emb + a * (size_t)sm->P, y + a * (size_t)sm->J, nb, pred, &nobs);
    }
    return nobs ? sse / (double)nobs : NAN;
}

/* The variables pooling's slots: the tokens that carry a value (continuous input 0) in the most
 * train prompts, at most cap of them (ft_choose_slots). With --values embed each measured
 * variable is one code token with its value as an input, so a token is a variable. */

/* The variables pooling starts with its projection at zero, so what the heads read is the
 * extremes' and the block of slots is zero; the heads' weights on that block start small and
 * random (seeded), as LoRA starts one factor at zero and the other random: were both zero,
 * neither would ever get a gradient, and with the projection random the probe and the start
 * would no longer be the extremes'. */
static void vars_start(gpt_model *m, uint64_t seed) {
    const int P = gpt_cls_width(&m->config), C4 = 4 * m->config.channels;
    uint64_t s = gpt__mix64(seed ^ 0x7A75u);
    for (int k = 0; k < m->config.num_outputs; k++)
        for (int j = C4; j < P; j++) {
            double u = cf_unit_open(cf_step64(&s));
            m->params.clsw[(size_t)k * P + j] = (float)((2.0 * u - 1.0) * VARS_HEAD_INIT);
        }
}

int ft_train(gpt_model *out, const gpt_model *base, int K, const rt_prompt *train, const float *ytr, size_t ntr,
             const rt_prompt *tune, const float *ytu, size_t ntu, int pad, const ft_options *o, ft_report *rep,
             cf_err *err) {
    memset(rep, 0, sizeof *rep);
    rep->best_tune_loss = rep->probe_lambda = rep->probe_cv_loss = rep->aux_tune_loss = NAN;
    for (int e = 0; e <= FT_CURVE; e++) rep->tune_curve[e] = rep->avg_curve[e] = NAN;
    memset(out, 0, sizeof *out);
    if (K < 1 || K > GPT_MAX_OUTPUTS) return cf_fail(err, CF_EINPUT, "fine-tuning needs 1 .. %d task heads", GPT_MAX_OUTPUTS);
    if (!ntr) return cf_fail(err, CF_EINPUT, "fine-tuning needs train prompts");
    if (o->average_from < 0) return cf_fail(err, CF_EINPUT, "the weight average starts at an epoch >= 1 (0: off)");
    if (!(o->drop_values >= 0 && o->drop_values < 1))
        return cf_fail(err, CF_EINPUT, "the value dropout is a probability in [0, 1)");
    if (o->drop_values > 0 && !base->config.n_features)
        return cf_fail(err, CF_EINPUT, "the value dropout finds a measurement by the tokens that carry a value, but the "
                       "model has no continuous inputs: train it with --values embed --inputs");
    if (o->probe_cv < 0 || o->probe_cv == 1 || o->probe_cv > 64)
        return cf_fail(err, CF_EINPUT, "the probe's penalty is cross-validated over 2 .. 64 folds (0: tuning rows)");
    double t_start = now_s();
    gpt_config cfg = base->config;
    cfg.num_outputs = K;
    cfg.cls_pool = o->pool;
    cfg.cls_slots = cfg.cls_proj = 0;
    if (o->context > 0) cfg.max_seq_len = o->context;
    if (o->dropout >= 0) cfg.dropout = o->dropout;
    int *slot = NULL, rc;
    if (o->pool == GPT_POOL_VARIABLES) {
        const int cap = o->var_slots > 0 ? o->var_slots : 48;
        if (!cfg.n_features)
            return cf_fail(err, CF_EINPUT, "the variables pooling (--ft-pool variables) finds a variable's events by "
                           "the tokens that carry a value, but the model has no continuous inputs: train it with "
                           "--values embed --inputs");
        if (cap > GPT_POOL_MAX_SLOTS || o->var_proj < 1 || o->var_proj > GPT_POOL_MAX_PROJ)
            return cf_fail(err, CF_EINPUT, "the variables pooling takes 1 .. %d slots of 1 .. %d channels, not %d of %d",
                           GPT_POOL_MAX_SLOTS, GPT_POOL_MAX_PROJ, cap, o->var_proj);
        if (!(slot = malloc((size_t)cfg.vocab_size * sizeof *slot))) return cf_fail(err, CF_EINTERNAL, "out of memory");
        for (size_t i = 0; i < ntr; i++)
            if (!train[i].feats) {
                free(slot);
                return cf_fail(err, CF_EINTERNAL, "train prompt %zu has no continuous inputs", i);
            }
        cfg.cls_slots = ft_choose_slots(train, ntr, cfg.vocab_size, cfg.n_features, cap, slot);
        cfg.cls_proj = o->var_proj;
        if (!cfg.cls_slots) {
            free(slot);
            return cf_fail(err, CF_EINPUT, "the variables pooling (--ft-pool variables) found no token that carries a "
                           "value in the train prompts: nothing to pool per variable");
        }
    }
    rc = gpt_build(out, &cfg, o->seed, err);
    if (rc) {
        free(slot);
        return rc;
    }
    if (slot) {
        for (int v = 0; v < cfg.vocab_size; v++) out->params.clsmap[v] = (float)slot[v];
        free(slot);
    }
    if (base->config.num_outputs) {
        gpt_free(out);
        return cf_fail(err, CF_EINPUT, "fine-tuning starts from a model without task heads");
    }
    /* Tensor by tensor: the new heads sit between the base's tensors and its value head. */
    if ((rc = gpt_copy_params(out, base, err))) {
        gpt_free(out);
        return rc;
    }
    memcpy(out->vocab_hash, base->vocab_hash, sizeof out->vocab_hash);
    thread_state ts = threads_enter(out, o->threads);
    /* Each head starts at its train prevalence, so the first steps learn the task, not the rate. */
    for (int k = 0; k < K; k++) {
        double pos = 0, cnt = 0;
        for (size_t i = 0; i < ntr; i++) {
            float y = ytr[i * (size_t)K + k];
            if (!isnan(y)) pos += y, cnt++;
        }
        double p = cnt ? (pos + 0.5) / (cnt + 1.0) : 0.5;
        out->params.clsb[k] = (float)log(p / (1 - p));
    }
    const int B = o->batch > 0 ? o->batch : 16, F = cfg.n_features, maxT = cfg.max_seq_len;
    const int epochs = o->epochs > 0 ? o->epochs : 30;
    const size_t steps_per_epoch = (ntr + (size_t)B - 1) / (size_t)B;
    gpt_opt_config opt = gpt_opt_default((uint64_t)epochs * steps_per_epoch);
    opt.lr = o->lr > 0 ? o->lr : 2e-4f;
    opt.min_lr = opt.lr / 10;
    opt.weight_decay = o->weight_decay;
    opt.warmup_steps = steps_per_epoch / 10 + 1;
    /* The heads start at the probe's optimum and the body at pretraining's: a body moved at the
     * heads' rate can undo in the first epoch what the probe found (docs/P12.md, session 10). */
    float lr_scale[GPT_NUM_PARAM_TENSORS];
    gpt_lr_scales(lr_scale, o->body_lr, o->head_lr);
    if (o->body_lr != 1.0f || o->head_lr != 1.0f) opt.lr_scale = lr_scale;
    for (size_t i = 0; i < ntr; i++)
        if (train[i].len < 1 || train[i].len > maxT || (F && !train[i].feats)) {
            gpt_free(out);
            return cf_fail(err, CF_EINTERNAL, "train prompt %zu does not fit the model", i);
        }
    ft_batch b;
    size_t *order = malloc(ntr * sizeof *order);
    float *best = malloc(out->num_parameters * sizeof *best);
    float *tl = malloc((ntu ? ntu : 1) * (size_t)K * sizeof *tl);
    /* The summary target (ft_summary.h): off at weight 0, where nothing below differs from
     * fine-tuning without it. Its targets are worked out once per prompt. */
    const int summ = o->summary_weight > 0;
    ft_summary sm;
    memset(&sm, 0, sizeof sm);
    float *sy_tr = NULL, *sy_tu = NULL, *sy_b = NULL, *s_pred = NULL, *s_dx = NULL, *s_emb = NULL;
    /* The weight average: its running sum in double (a mean of floats is then exact to rounding,
     * and a tensor that never moves stays bit for bit), and the trained parameters set aside
     * while the average is judged. */
    const int avg_from = o->average_from;
    double *avg_sum = avg_from > 0 ? calloc(out->num_parameters, sizeof *avg_sum) : NULL;
    float *raw = avg_from > 0 ? malloc(out->num_parameters * sizeof *raw) : NULL;
    int n_avg = 0;
    if (batch_alloc(&b, B, maxT, F, K) || !order || !best || !tl || (avg_from > 0 && (!avg_sum || !raw))) {
        rc = cf_fail(err, CF_EINTERNAL, "out of memory for fine-tuning");
        goto done;
    }
    if (summ) {
        const int P = gpt_cls_width(&cfg);
        if ((rc = ft_summary_init(&sm, train, ntr, cfg.vocab_size, F, P, o->summary_vars, err))) goto done;
        const size_t J = (size_t)sm.J, nu = ntu ? ntu : 1;
        sy_tr = malloc(ntr * J * sizeof *sy_tr), sy_tu = malloc(nu * J * sizeof *sy_tu);
        sy_b = malloc((size_t)B * J * sizeof *sy_b), s_pred = malloc((size_t)B * J * sizeof *s_pred);
        s_dx = malloc((size_t)B * P * sizeof *s_dx), s_emb = malloc(nu * (size_t)P * sizeof *s_emb);
        if (!sy_tr || !sy_tu || !sy_b || !s_pred || !s_dx || !s_emb) {
            rc = cf_fail(err, CF_EINTERNAL, "out of memory for the summary target");
            goto done;
        }
        for (size_t i = 0; i < ntr; i++) ft_summary_targets(&sm, &train[i], sy_tr + i * J);
        for (size_t i = 0; i < ntu; i++) {
            if (!tune[i].feats) {
                rc = cf_fail(err, CF_EINTERNAL, "tuning prompt %zu has no continuous inputs", i);
                goto done;
            }
            ft_summary_targets(&sm, &tune[i], sy_tu + i * J);
        }
        rep->summary_vars = sm.V;
    }
    rep->summary_tune_mse = NAN;
    if (o->probe_init && (rc = probe_init(out, K, train, ytr, ntr, tune, ytu, ntu, pad, B, o->probe_cv, rep, err)))
        goto done;
    if (cfg.cls_pool == GPT_POOL_VARIABLES) vars_start(out, o->seed);
    memcpy(best, out->param_memory, out->num_parameters * sizeof *best);
    /* With auxiliary heads the choice is the task's: head 0's tuning loss alone (an epoch that
     * helps the auxiliaries and hurts the task must not be kept). */
    const int aux = o->main_head && K > 1, k_sel = aux ? 1 : K;
    float head_w[GPT_MAX_OUTPUTS];
    for (int k = 0; k < K; k++) head_w[k] = k ? o->aux_weight : 1.0f;
    if (aux && o->last_head_weight > 0) head_w[K - 1] = o->last_head_weight;
    double best_loss = INFINITY, best_aux = NAN;
    if (ntu) {
        if ((rc = run_prompts(out, tune, ntu, pad, B, tl, summ ? s_emb : NULL, err))) goto done;
        best_loss = log_loss(tl, ytu, ntu, K, 0, k_sel);
        if (aux) best_aux = log_loss(tl, ytu, ntu, K, 1, K);
        if (summ) rep->summary_tune_mse = summary_mse(&sm, s_emb, sy_tu, ntu, s_pred, B);
    }
    rep->best_tune_loss = ntu ? best_loss : NAN;
    rep->probe_tune_loss = rep->tune_curve[0] = rep->best_tune_loss;
    rep->aux_tune_loss = best_aux;
    if (!o->quiet && ntu && !aux)
        fprintf(stderr, "  fine-tune start (%s): tuning log loss %.4f\n", o->probe_init ? "linear probe" : "prevalence",
                best_loss);
    else if (!o->quiet && ntu)
        fprintf(stderr, "  fine-tune start (%s): tuning log loss %.4f (auxiliary heads %.4f)\n",
                o->probe_init ? "linear probe" : "prevalence", best_loss, best_aux);
    if (!o->quiet && ntu && summ)
        fprintf(stderr, "  summary target: %d variables, tuning summary MSE %.4f at the start\n", sm.V,
                rep->summary_tune_mse);
    if (!o->quiet && o->probe_init && o->probe_cv && !isnan(rep->probe_lambda))
        fprintf(stderr, "  probe penalty %g by %d-fold cross-validation on the train rows (log loss %.4f)\n",
                rep->probe_lambda, o->probe_cv, rep->probe_cv_loss);
    uint64_t rs = gpt__mix64(o->seed ^ 0xF17E7u);
    uint64_t rd = gpt__mix64(o->seed ^ 0xD409u); /* the value dropout's own stream: order is rs's alone */
    int since = 0;
    for (int ep = 1; ep <= epochs; ep++) {
        /* a seeded shuffle, then length order within runs of 8 batches: little padding, and
         * batches that still differ from epoch to epoch */
        for (size_t i = 0; i < ntr; i++) order[i] = i;
        for (size_t i = ntr; i > 1; i--) {
            size_t j = (size_t)(cf_step64(&rs) % i), t = order[i - 1];
            order[i - 1] = order[j];
            order[j] = t;
        }
        size_t run = (size_t)B * 8;
        for (size_t a = 0; a < ntr; a += run) {
            size_t e = a + run < ntr ? a + run : ntr;
            for (size_t i = a + 1; i < e; i++)
                for (size_t j = i; j > a && train[order[j - 1]].len > train[order[j]].len; j--) {
                    size_t t = order[j - 1];
                    order[j - 1] = order[j];
                    order[j] = t;
                }
        }
        double task = 0, lm = 0, s_sse = 0;
        size_t nsteps = 0, s_nobs = 0;
        for (size_t a = 0; a < ntr; a += (size_t)B) {
            int nb = (int)(ntr - a < (size_t)B ? ntr - a : (size_t)B);
            int T = batch_fill(&b, train, ytr, order + a, nb, pad, o->lm_weight > 0, o->drop_values, &rd);
            /* a base model that forecasts values keeps doing so beside the next-token loss */
            const int vh = cfg.value_head && o->lm_weight > 0;
            if (vh) gpt_value_targets(b.feats, nb, T, F, b.vt);
            gpt_extra x = {.feats = b.feats, .cls_pos = b.pos, .cls_y = b.y, .lm_weight = o->lm_weight,
                           .cls_weight = 1.0f, .value_targets = vh ? b.vt : NULL, .value_weight = o->lm_weight,
                           .cls_head_weight = aux ? head_w : NULL};
            if ((rc = gpt_forward_ex(out, b.in, o->lm_weight > 0 ? b.tg : NULL, &x, nb, T, 1, err))) goto done;
            gpt_zero_grad(out);
            float s_lr = 0.0f; /* the summary head's rate: the heads', at this step (before the update moves it) */
            if (summ) {
                /* the summary head reads what the task heads read in this very forward (dropout
                 * and all), and its gradient joins theirs before the pooling's backward */
                const size_t J = (size_t)sm.J, P = (size_t)sm.P;
                for (int r = 0; r < nb; r++) memcpy(sy_b + r * J, sy_tr + order[a + (size_t)r] * J, J * sizeof *sy_b);
                size_t nobs = 0;
                s_sse += ft_summary_forward(&sm, out->acts.cls_in, sy_b, nb, s_pred, &nobs);
                s_nobs += nobs;
                memset(s_dx, 0, (size_t)nb * P * sizeof *s_dx);
                ft_summary_zero_grad(&sm);
                if (nobs) ft_summary_backward(&sm, out->acts.cls_in, sy_b, s_pred, nb, o->summary_weight / (float)nobs, s_dx);
                s_lr = gpt_lr(&opt, out->step) * o->head_lr;
            }
            if ((rc = gpt_backward_ex(out, summ ? s_dx : NULL, err))) goto done;
            if ((rc = gpt_update(out, &opt, NULL, err))) goto done;
            if (summ) ft_summary_update(&sm, &opt, s_lr);
            task += out->cls_loss;
            if (o->lm_weight > 0) lm += out->mean_loss;
            rep->tokens += (uint64_t)nb * (uint64_t)T;
            nsteps++;
        }
        rep->epochs_run = ep;
        double tune_loss = NAN, tune_aux = NAN, tune_smse = NAN;
        if (ntu) {
            if ((rc = run_prompts(out, tune, ntu, pad, B, tl, summ ? s_emb : NULL, err))) goto done;
            tune_loss = log_loss(tl, ytu, ntu, K, 0, k_sel);
            if (aux) tune_aux = log_loss(tl, ytu, ntu, K, 1, K);
            if (summ) tune_smse = summary_mse(&sm, s_emb, sy_tu, ntu, s_pred, B);
        }
        if (ep <= FT_CURVE) rep->tune_curve[ep] = tune_loss;
        if (o->epoch_hook) o->epoch_hook(o->hook_ctx, ep, out);
        int improved = 0;
        if (!ntu || tune_loss < best_loss) {
            best_loss = tune_loss;
            best_aux = tune_aux;
            rep->best_epoch = ep;
            rep->best_averaged = 0;
            rep->summary_tune_mse = tune_smse;
            memcpy(best, out->param_memory, out->num_parameters * sizeof *best);
            improved = 1;
        }
        /* The average of epochs avg_from .. ep, a candidate of its own once it holds two epochs;
         * training goes on from the trained parameters, which it never touches. */
        double avg_loss = NAN;
        if (avg_sum && ep >= avg_from) {
            n_avg++;
            for (size_t i = 0; i < out->num_parameters; i++) avg_sum[i] += out->param_memory[i];
            if (ntu && n_avg >= 2) {
                memcpy(raw, out->param_memory, out->num_parameters * sizeof *raw);
                for (size_t i = 0; i < out->num_parameters; i++) out->param_memory[i] = (float)(avg_sum[i] / n_avg);
                rc = ft_logits(out, tune, ntu, pad, B, tl, err);
                if (!rc) avg_loss = log_loss(tl, ytu, ntu, K, 0, k_sel);
                if (!rc && avg_loss < best_loss) {
                    best_loss = avg_loss;
                    if (aux) best_aux = log_loss(tl, ytu, ntu, K, 1, K);
                    rep->best_epoch = ep;
                    rep->best_averaged = 1;
                    rep->summary_tune_mse = NAN; /* not measured on the average */
                    memcpy(best, out->param_memory, out->num_parameters * sizeof *best);
                    improved = 1;
                }
                memcpy(out->param_memory, raw, out->num_parameters * sizeof *raw);
                if (rc) goto done;
                if (ep <= FT_CURVE) rep->avg_curve[ep] = avg_loss;
            }
        }
        if (!o->quiet) { /* with auxiliary heads the train loss is the weighted sum over heads */
            char wsum[80] = "";
            if (aux && o->last_head_weight > 0 && K > 2)
                snprintf(wsum, sizeof wsum, " (main + %.2f x auxiliary + %.2f x last)", (double)o->aux_weight,
                         (double)o->last_head_weight);
            else if (aux)
                snprintf(wsum, sizeof wsum, " (main + %.2f x auxiliary)",
                         (double)(o->last_head_weight > 0 ? o->last_head_weight : o->aux_weight));
            fprintf(stderr, "  fine-tune epoch %2d: train task loss%s %.4f%s%.4f, tuning log loss %.4f", ep, wsum,
                    task / (double)nsteps, o->lm_weight > 0 ? ", next-token " : "", o->lm_weight > 0 ? lm / (double)nsteps : 0.0,
                    tune_loss);
            if (aux) fprintf(stderr, " (auxiliary heads %.4f)", tune_aux);
            if (!isnan(avg_loss)) fprintf(stderr, ", mean of epochs %d-%d %.4f", avg_from, ep, avg_loss);
            if (summ)
                fprintf(stderr, ", summary MSE %.4f, tuning summary MSE %.4f", s_nobs ? s_sse / (double)s_nobs : NAN,
                        tune_smse);
            fputc('\n', stderr);
        }
        if (improved)
            since = 0;
        else if (++since >= (o->patience > 0 ? o->patience : 4))
            break;
    }
    if (!ntu && n_avg >= 2) { /* nothing to judge by: the average of every epoch from avg_from */
        for (size_t i = 0; i < out->num_parameters; i++) best[i] = (float)(avg_sum[i] / n_avg);
        rep->best_averaged = 1;
    }
    memcpy(out->param_memory, best, out->num_parameters * sizeof *best);
    if (!o->quiet && ntu && (avg_sum || o->probe_cv)) {
        char what[64];
        if (rep->best_averaged)
            snprintf(what, sizeof what, "the mean of epochs %d-%d", avg_from, rep->best_epoch);
        else
            snprintf(what, sizeof what, "epoch %d%s", rep->best_epoch, rep->best_epoch ? "" : " (the start)");
        fprintf(stderr, "  fine-tune kept: %s, tuning log loss %.4f\n", what, best_loss);
    }
    rep->best_tune_loss = ntu ? best_loss : NAN;
    rep->aux_tune_loss = ntu && aux ? best_aux : NAN;
done:
    threads_leave(ts);
    rep->seconds = now_s() - t_start;
    batch_free(&b);
    CF_FREE_ALL(order, best, tl, avg_sum, raw, sy_tr, sy_tu, sy_b, s_pred, s_dx, s_emb);
    ft_summary_free(&sm);
    if (rc) gpt_free(out);
    return rc;
}
