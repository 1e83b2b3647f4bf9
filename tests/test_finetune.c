/* Values as model inputs and end-to-end fine-tuning, on a constructed store where only a
 * number decides the outcome.
 *
 * The store: 240 subjects, each with sex, birth, two noise labs, a potassium-like LAB//K whose
 * value is uniform in [0, 100), then a trigger visit (the prediction time) and, a day later,
 * OUT//EVENT when the value was above 50 and OTHER//EVENT otherwise. The vocabulary is in
 * embed mode, so the token stream says "LAB//K" and nothing about its size: only a model that
 * reads the continuous inputs can tell the two groups apart.
 *
 * Checked:
 *   - finetuned_e2e (the whole model and a head, as `clinfm eval --model` registers it) on a
 *     model with inputs reaches held-out AUROC >= 0.9; the same predictor on a model without
 *     inputs stays below 0.75 (the check has teeth: it fails if the inputs were dropped
 *     anywhere between the store and the heads);
 *   - ft_train is reproducible for a seed, leaves the base model untouched, keeps the epoch
 *     with the best tuning loss (the returned model's tuning loss equals the reported one),
 *     and refuses a base that already has heads;
 *   - the weight average (--ft-average-from): its candidates' tuning losses are those of the
 *     mean of the epochs' parameters computed here by hand, what is kept is that mean, and
 *     judging it leaves training bit for bit as without it (off is today's run);
 *   - the probe's penalty by cross-validation on train rows (--ft-probe-cv): the heaviest
 *     penalties on pure noise, a light one on a clean signal, whatever the tuning rows say;
 *   - the frozen-embedding head and the read-out run on a model with inputs;
 *   - batched cached-prefix embeddings (the service's occlusion path) equal full passes on a
 *     model with inputs, also for a variant whose tokens are the same but whose value differs. */
#include <unistd.h>

#include <cblas.h>
#include <omp.h>

#include "check.h"
#include "eval/eval.h"
#include "model/finetune.h"
#include "model/head.h"
#include "model/runtime.h"
#include "store/store.h"
#include "tasks/task.h"
#include "timeline/timeline.h"
#include "timeline/vocab.h"

#define NS 240
#define DAY 86400000000LL
#define BASE_T 1577836800000000LL

static char STORE[4096], MODEL_IN[4096], MODEL_NOIN[4096], TASK[4096];

static const char *TASK_TEXT = "[task]\n"
                               "name = value_outcome\n"
                               "[codes trig]\n"
                               "code = TRIG//VISIT\n"
                               "[codes outcome]\n"
                               "code = OUT//EVENT\n"
                               "[trigger]\n"
                               "codes = trig\n"
                               "[prediction]\n"
                               "time = trigger\n"
                               "[label]\n"
                               "when = any outcome in (prediction, prediction + 30d]\n";

static uint64_t mix(uint64_t z) {
    z += 0x9E3779B97F4A7C15ULL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static float k_value(int64_t sid) { return (float)(mix((uint64_t)sid * 31) % 10000) / 100.0f; }

static int add(store_writer *w, int64_t sid, int64_t t, const char *code, float v, cf_err *err) {
    int64_t c = store_writer_code(w, code, strlen(code));
    if (c < 0) return CF_EINTERNAL;
    return store_writer_add(w, sid, t, (uint32_t)c, v, NULL, 0, 0, 1, err);
}

static int build_store(void) {
    cf_err err = {0};
    store_writer *w;
    store_writer_options o = {0};
    if (store_writer_open(&w, STORE, &o, &err)) return -1;
    store_writer_source(w, "synthetic");
    int rc = 0;
    for (int64_t sid = 1; sid <= NS && !rc; sid++) {
        int64_t t0 = BASE_T + sid * DAY;
        uint64_t h = mix((uint64_t)sid);
        float k = k_value(sid);
        rc |= add(w, sid, TIME_NULL, h & 1 ? "GENDER//F" : "GENDER//M", NAN, &err);
        rc |= add(w, sid, t0 - (int64_t)(40 + h % 30) * 365 * DAY, "MEDS_BIRTH", NAN, &err);
        rc |= add(w, sid, t0, "LAB//NA", (float)(130 + h % 15), &err);
        rc |= add(w, sid, t0 + 3600000000LL, "LAB//GLU", (float)(70 + (h >> 8) % 90), &err);
        rc |= add(w, sid, t0 + 7200000000LL, "LAB//K", k, &err);
        rc |= add(w, sid, t0 + DAY, "TRIG//VISIT", NAN, &err);
        rc |= add(w, sid, t0 + 2 * DAY, k > 50 ? "OUT//EVENT" : "OTHER//EVENT", NAN, &err);
    }
    if (rc) {
        store_writer_abort(w);
        return -1;
    }
    return store_writer_finish(w, &err) ? -1 : 0;
}

/* A model in embed mode, with or without continuous inputs, briefly trained on the train
 * split's token windows, written to path and path.vocab. */
static int make_model(const char *path, int inputs) {
    cf_err err = {0};
    store s;
    if (store_open(&s, STORE, &err)) return -1;
    split_config sp;
    split_config_default(&sp);
    vocab v;
    vocab_options vo;
    vocab_options_default(&vo);
    vo.value_mode = VOCAB_VALUES_EMBED;
    char vpath[4200], spath[4200];
    snprintf(vpath, sizeof vpath, "%s.vocab", path);
    snprintf(spath, sizeof spath, "%s.train.tokens", path);
    timeline_shard sh;
    int rc = vocab_build(&v, &s, &sp, &vo, &err) || vocab_save(&v, vpath, &err) ||
             timeline_write_shards(&v, &s, &sp, SPLIT_TRAIN, spath, NULL, &err) ||
             timeline_shard_open(&sh, spath, &v, &err);
    if (rc) {
        fprintf(stderr, "model setup: %s\n", err.msg);
        store_close(&s);
        return -1;
    }
    gpt_config cfg = {.max_seq_len = 24, .vocab_size = (int)v.n_tokens, .num_layers = 1, .num_heads = 2,
                      .channels = 32, .dropout = 0.0f, .n_features = inputs ? TIMELINE_N_FEATURES : 0,
                      .feat_hidden = inputs ? 16 : 0};
    gpt_model m;
    rc = gpt_build(&m, &cfg, 3, &err);
    if (!rc) {
        memcpy(m.vocab_hash, v.hash, sizeof m.vocab_hash);
        m.num_threads = 1;
        gpt_opt_config o = gpt_opt_default(100);
        o.lr = 3e-3f;
        int in[8 * 24], tg[8 * 24];
        float f[8 * 24 * TIMELINE_N_FEATURES];
        for (int step = 0; step < 100 && !rc; step++) {
            for (int b = 0; b < 8; b++)
                timeline_shard_window_x(&sh, &v, mix((uint64_t)(step * 8 + b)) % sh.n_tokens, 24, in + b * 24,
                                        tg + b * 24, f + (size_t)b * 24 * TIMELINE_N_FEATURES);
            gpt_extra x = {.feats = f, .lm_weight = 1};
            rc = gpt_forward_ex(&m, in, tg, &x, 8, 24, 1, &err);
            if (!rc) gpt_zero_grad(&m);
            if (!rc) rc = gpt_backward(&m, &err);
            if (!rc) rc = gpt_update(&m, &o, NULL, &err);
        }
        if (!rc) rc = gpt_save(&m, path, NULL, 0, &err);
        gpt_free(&m);
    }
    if (rc) fprintf(stderr, "model training: %s\n", err.msg);
    timeline_shard_close(&sh);
    vocab_free(&v);
    store_close(&s);
    return rc ? -1 : 0;
}

static int setup(void) {
    snprintf(STORE, sizeof STORE, "%s/ft.store", check_tmpdir());
    snprintf(MODEL_IN, sizeof MODEL_IN, "%s/ft_in.model", check_tmpdir());
    snprintf(MODEL_NOIN, sizeof MODEL_NOIN, "%s/ft_noin.model", check_tmpdir());
    snprintf(TASK, sizeof TASK, "%s/ft.task", check_tmpdir());
    FILE *f = fopen(TASK, "w");
    if (!f) return -1;
    fputs(TASK_TEXT, f);
    fclose(f);
    return build_store() || make_model(MODEL_IN, 1) || make_model(MODEL_NOIN, 0) ? -1 : 0;
}

typedef struct {
    task_def t;
    store s;
    task_labels l;
    label_row *rows[SPLIT_COUNT];
    size_t n[SPLIT_COUNT];
} labelled;

/* The mean log loss of logits z against 0/1 labels y, computed apart from the code under test
 * (stable for large |z|): what a fine-tuning run must report for the epoch it keeps. */
static double mean_log_loss(const float *z, const float *y, size_t n) {
    double sum = 0;
    for (size_t i = 0; i < n; i++) {
        double zi = z[i];
        sum += (zi > 0 ? zi + log1p(exp(-zi)) : log1p(exp(zi))) - y[i] * zi;
    }
    return sum / (double)n;
}

static int label_all(labelled *L) {
    cf_err err = {0};
    memset(L, 0, sizeof *L);
    if (task_load(&L->t, TASK, &err) || store_open(&L->s, STORE, &err)) return -1;
    task_label_options lo = {.seed = 1};
    split_config_default(&lo.split);
    if (task_label(&L->t, &L->s, &lo, &L->l, &err)) return -1;
    for (int k = 0; k < SPLIT_COUNT; k++) L->rows[k] = malloc((L->l.n + 1) * sizeof(label_row));
    for (size_t i = 0; i < L->l.n; i++) {
        int k = L->l.rows[i].split;
        L->rows[k][L->n[k]++] = L->l.rows[i];
    }
    return 0;
}

static void label_free(labelled *L) {
    for (int k = 0; k < SPLIT_COUNT; k++) free(L->rows[k]);
    task_labels_free(&L->l);
    store_close(&L->s);
    task_free(&L->t);
}

/* Held-out AUROC of one model predictor fitted on train and tuning rows. */
static double predictor_auroc(labelled *L, const char *model, unsigned which) {
    cf_err err = {0};
    eval_model_options mo;
    memset(&mo, 0, sizeof mo);
    mo.which = which;
    mo.seed = 5;
    mo.threads = 1;
    split_config_default(&mo.split);
    eval_ft_options_default(&mo.ft);
    mo.ft.epochs = 15;
    mo.ft.lr = 3e-3f;
    mo.ft.batch = 24;
    mo.ft.patience = 5;
    mo.ft.dropout = 0.0f;
    mo.ft.set = 1;
    eval_predictor p[4];
    size_t np = 0;
    if (eval_model_predictors(model, &mo, &L->t, &L->l, p, 4, &np, &err) != CF_OK || np != 1) {
        fprintf(stderr, "  predictors: %s\n", err.msg);
        return NAN;
    }
    double auc = NAN;
    size_t nh = L->n[SPLIT_HELD_OUT];
    float *pr = malloc(nh * sizeof *pr);
    uint8_t *y = malloc(nh);
    if (p[0].fit && p[0].fit(p[0].ctx, &L->s, L->rows[SPLIT_TRAIN], L->n[SPLIT_TRAIN], L->rows[SPLIT_TUNING],
                             L->n[SPLIT_TUNING], &err) != CF_OK) {
        fprintf(stderr, "  fit: %s\n", err.msg);
    } else if (p[0].predict(p[0].ctx, &L->s, L->rows[SPLIT_HELD_OUT], nh, pr, &err) == CF_OK) {
        for (size_t i = 0; i < nh; i++) y[i] = L->rows[SPLIT_HELD_OUT][i].label;
        auc = eval_auroc(pr, y, nh);
    }
    free(pr);
    free(y);
    eval_model_predictors_free(p, np);
    return auc;
}

static void test_values_reach_the_heads(void) {
    labelled L;
    REQUIRE(label_all(&L) == 0);
    REQUIRE(L.n[SPLIT_HELD_OUT] >= 20);
    double with = predictor_auroc(&L, MODEL_IN, EVAL_MODEL_E2E);
    double without = predictor_auroc(&L, MODEL_NOIN, EVAL_MODEL_E2E);
    fprintf(stderr, "  finetuned_e2e held-out AUROC: %.3f with inputs, %.3f without (%zu rows)\n", with, without,
            L.n[SPLIT_HELD_OUT]);
    CHECK(with >= 0.9);
    CHECK(without < 0.75);
    /* the frozen head and the read-out run on a model with inputs */
    double frozen = predictor_auroc(&L, MODEL_IN, EVAL_MODEL_FINETUNED);
    fprintf(stderr, "  frozen head with inputs: %.3f\n", frozen);
    CHECK(frozen >= 0.0 && frozen <= 1.0);
    label_free(&L);
}

/* The trained parameters at the ends of epochs 1-3, as ft_train's epoch hook hands them over. */
typedef struct {
    float *p[4];
    size_t n;
} epochs_seen;

static void keep_epoch(void *ctx, int epoch, const gpt_model *m) {
    epochs_seen *s = ctx;
    if (epoch < 1 || epoch > 3) return;
    free(s->p[epoch]);
    s->p[epoch] = malloc(m->num_parameters * sizeof(float));
    memcpy(s->p[epoch], m->param_memory, m->num_parameters * sizeof(float));
    s->n = m->num_parameters;
}

static void epochs_free(epochs_seen *s) {
    for (int e = 0; e < 4; e++) free(s->p[e]);
    memset(s, 0, sizeof *s);
}

/* The mean of epochs a..b's parameters, summed in double in epoch order as a hand would. */
static void mean_of(const epochs_seen *s, int a, int b, float *out) {
    for (size_t i = 0; i < s->n; i++) {
        double sum = 0;
        for (int e = a; e <= b; e++) sum += s->p[e][i];
        out[i] = (float)(sum / (b - a + 1));
    }
}

static size_t differing(const float *a, const float *b, size_t n) {
    size_t d = 0;
    for (size_t i = 0; i < n; i++) d += memcmp(&a[i], &b[i], sizeof *a) != 0;
    return d;
}

/* --ft-average-from on the constructed task, three epochs, against a hand computation. */
static void check_weight_average(const gpt_model *base, const ft_options *o0, const rt_prompt *ptr, const float *ytr,
                                 size_t ntr, const rt_prompt *ptu, const float *ytu, size_t ntu, int pad) {
    cf_err err = {0};
    ft_options o = *o0;
    o.epochs = 3;
    o.patience = 10;
    o.epoch_hook = keep_epoch;
    epochs_seen off = {0}, on = {0}, nt = {0};
    gpt_model m0, m1, m2;
    ft_report r0, r1, r2;
    o.hook_ctx = &off;
    REQUIRE(ft_train(&m0, base, 1, ptr, ytr, ntr, ptu, ytu, ntu, pad, &o, &r0, &err) == CF_OK);
    o.average_from = 1;
    o.hook_ctx = &on;
    REQUIRE(ft_train(&m1, base, 1, ptr, ytr, ntr, ptu, ytu, ntu, pad, &o, &r1, &err) == CF_OK);
    REQUIRE(off.n == m0.num_parameters && on.n == off.n && on.p[3] && off.p[3]);
    /* Judging the average leaves training alone: every epoch's trained parameters, and their
     * tuning losses, are bit for bit those of the run without it (today's). */
    size_t moved = 0;
    for (int e = 1; e <= 3; e++) {
        moved += differing(on.p[e], off.p[e], on.n);
        CHECK(r1.tune_curve[e] == r0.tune_curve[e]);
    }
    CHECK_EQ_INT(moved, 0);
    CHECK(r1.tune_curve[0] == r0.tune_curve[0]);
    CHECK(!r0.best_averaged && isnan(r0.avg_curve[2]) && isnan(r0.avg_curve[3]));
    CHECK(isnan(r1.avg_curve[1])); /* an average of one epoch is that epoch: not judged again */
    /* The averages' tuning losses are those of the means computed here. */
    float *hand = malloc(on.n * sizeof *hand), *lg = malloc(ntu * sizeof *lg);
    double best = r1.tune_curve[0];
    for (int e = 1; e <= 3; e++) best = fmin(best, r1.tune_curve[e]);
    for (int e = 2; e <= 3; e++) {
        mean_of(&on, 1, e, hand);
        memcpy(m0.param_memory, hand, on.n * sizeof *hand);
        REQUIRE(ft_logits(&m0, ptu, ntu, pad, 16, lg, &err) == CF_OK);
        double want = mean_log_loss(lg, ytu, ntu);
        fprintf(stderr, "  weight average of epochs 1-%d: tuning loss %.6f (by hand %.6f; epoch %d alone %.6f)\n", e,
                r1.avg_curve[e], want, e, r1.tune_curve[e]);
        CHECK_NEAR(r1.avg_curve[e], want, 1e-9);
        best = fmin(best, r1.avg_curve[e]);
    }
    /* the kept model is the best candidate, and is what the report says it is */
    CHECK(r1.best_tune_loss == best);
    if (r1.best_averaged) mean_of(&on, 1, r1.best_epoch, hand);
    else if (r1.best_epoch > 0) memcpy(hand, on.p[r1.best_epoch], on.n * sizeof *hand);
    if (r1.best_epoch > 0 || r1.best_averaged) CHECK_EQ_INT(differing(m1.param_memory, hand, on.n), 0);
    fprintf(stderr, "  weight average: kept %s %d, tuning loss %.4f\n", r1.best_averaged ? "the mean up to epoch" : "epoch",
            r1.best_epoch, r1.best_tune_loss);
    /* Without tuning rows the mean of epochs 2-3 is kept, exactly. */
    o.average_from = 2;
    o.hook_ctx = &nt;
    REQUIRE(ft_train(&m2, base, 1, ptr, ytr, ntr, NULL, NULL, 0, pad, &o, &r2, &err) == CF_OK);
    REQUIRE(nt.n == on.n && nt.p[3]);
    mean_of(&nt, 2, 3, hand);
    CHECK(r2.best_averaged == 1 && r2.best_epoch == 3);
    CHECK_EQ_INT(differing(m2.param_memory, hand, on.n), 0);
    CHECK(differing(m2.param_memory, nt.p[3], on.n) > 0); /* the mean is not the last epoch */
    /* bad settings are refused */
    gpt_model bad;
    ft_report rb;
    o.hook_ctx = NULL, o.epoch_hook = NULL;
    o.average_from = -1;
    CHECK(ft_train(&bad, base, 1, ptr, ytr, ntr, ptu, ytu, ntu, pad, &o, &rb, &err) == CF_EINPUT);
    o.average_from = 0;
    o.probe_cv = 1;
    CHECK(ft_train(&bad, base, 1, ptr, ytr, ntr, ptu, ytu, ntu, pad, &o, &rb, &err) == CF_EINPUT);
    /* --ft-probe-cv: the probe's penalty and its cross-validated loss are reported */
    o.probe_cv = 5;
    o.epochs = 1;
    REQUIRE(ft_train(&bad, base, 1, ptr, ytr, ntr, ptu, ytu, ntu, pad, &o, &rb, &err) == CF_OK);
    fprintf(stderr, "  probe by 5-fold CV: penalty %g, CV log loss %.4f, tuning %.4f\n", rb.probe_lambda, rb.probe_cv_loss,
            rb.probe_tune_loss);
    CHECK(rb.probe_lambda >= 1e-4 && rb.probe_lambda <= 100 && isfinite(rb.probe_cv_loss) && isfinite(rb.probe_tune_loss));
    gpt_free(&bad);
    free(hand);
    free(lg);
    gpt_free(&m0);
    gpt_free(&m1);
    gpt_free(&m2);
    epochs_free(&off);
    epochs_free(&on);
    epochs_free(&nt);
}

/* rt_head_fit_cv on constructed rows whose best penalty is known: on columns of pure noise any
 * fitted weight only hurts unseen rows, so cross-validation takes one of the three heaviest
 * penalties (1, 10, 100: weights near zero whichever; a fit judged on its own rows would take
 * the lightest); on a clean one-column signal
 * a light one. Tuning rows whose labels are noise do not move the choice (they would move
 * rt_head_fit's to the heaviest), and only measure the head. */
static void test_probe_penalty_cv(void) {
    cf_err err = {0};
    const size_t n = 400, nt = 200;
    const int d = 40;
    float *X = malloc(n * d * sizeof *X), *Xt = malloc(nt * d * sizeof *Xt);
    uint8_t *y = malloc(n), *yt = malloc(nt);
    uint64_t r = 7;
    for (size_t i = 0; i < n * d; i++) X[i] = (float)(mix(r++) % 10000) / 5000.0f - 1.0f;
    for (size_t i = 0; i < nt * d; i++) Xt[i] = (float)(mix(r++) % 10000) / 5000.0f - 1.0f;
    for (size_t i = 0; i < n; i++) y[i] = mix(r++) % 10 < 3;
    for (size_t i = 0; i < nt; i++) yt[i] = mix(r++) % 10 < 3;
    rt_head h;
    double cvl = NAN;
    REQUIRE(rt_head_fit_cv(&h, d, X, y, n, 5, Xt, yt, nt, &cvl, &err) == CF_OK);
    fprintf(stderr, "  noise: penalty %g by 5-fold CV (CV log loss %.4f, tuning %.4f)\n", h.lambda, cvl, h.tune_loss);
    CHECK(h.lambda >= 1);
    CHECK(!h.tuned && isfinite(h.tune_loss) && isfinite(cvl));
    rt_head_free(&h);
    /* the clean signal: y = [x0 + noise/4 > 0.2], the other columns noise */
    for (size_t i = 0; i < n; i++) y[i] = X[i * d] + 0.25f * X[i * d + 1] > 0.2f;
    REQUIRE(rt_head_fit_cv(&h, d, X, y, n, 5, Xt, yt, nt, &cvl, &err) == CF_OK);
    fprintf(stderr, "  signal: penalty %g by 5-fold CV (CV log loss %.4f)\n", h.lambda, cvl);
    CHECK(h.lambda <= 1e-2);
    CHECK(cvl < 0.3);
    /* the tuning rows measure the head that was fitted: their loss is its predictions' */
    double s = 0;
    for (size_t i = 0; i < nt; i++) {
        float pf = (float)rt_sigmoid(rt_head_logit(&h, Xt + i * d, NULL)); /* as ml_log_loss clips */
        double p = pf < 1e-7 ? 1e-7 : pf > 1 - 1e-7 ? 1 - 1e-7 : pf;
        s -= yt[i] ? log(p) : log(1 - p);
    }
    CHECK_NEAR(h.tune_loss, s / (double)nt, 1e-4);
    rt_head_free(&h);
    rt_head ht; /* the same rows with the penalty chosen on the noise tuning rows: the heaviest */
    REQUIRE(rt_head_fit(&ht, d, X, y, n, Xt, yt, nt, &err) == CF_OK);
    fprintf(stderr, "  signal, penalty chosen on noise tuning rows instead: %g\n", ht.lambda);
    CHECK(ht.lambda >= 10 && ht.tuned);
    rt_head_free(&ht);
    CHECK(rt_head_fit_cv(&h, d, X, y, n, 1, Xt, yt, nt, NULL, &err) == CF_EINPUT);
    CHECK(rt_head_fit_cv(&h, d, X, y, 3, 5, Xt, yt, nt, NULL, &err) == CF_EINPUT);
    free(X), free(Xt), free(y), free(yt);
}

/* Prompts and labels of one split's rows (the history as eval gives it, no never-input codes). */
static void encode_rows(rt_encoder *enc, const label_row *rows, size_t n, rt_prompt *ps, float *y, int K) {
    cf_err err = {0};
    for (size_t i = 0; i < n; i++) {
        REQUIRE(rt_encode_history(enc, rows[i].subject_index, rows[i].history_end, NULL, 0, &ps[i], &err) == CF_OK);
        y[i * (size_t)K] = rows[i].label;
    }
}

/* One split's prompts and labels (one head), encoded from the labelled rows. */
typedef struct {
    rt_prompt *p;
    float *y;
    size_t n;
} split_prompts;

static split_prompts encode_split(rt_encoder *enc, const labelled *L, int split) {
    split_prompts s = {.n = L->n[split]};
    s.p = calloc(s.n ? s.n : 1, sizeof *s.p);
    s.y = malloc((s.n ? s.n : 1) * sizeof *s.y);
    CHECK(s.p && s.y);
    if (s.p && s.y) encode_rows(enc, L->rows[split], s.n, s.p, s.y, 1);
    return s;
}

static void split_prompts_free(split_prompts *s) {
    for (size_t i = 0; s->p && i < s->n; i++) rt_prompt_free(&s->p[i]);
    free(s->p), free(s->y);
}

/* Fine-tuning options of these tests: short, fast, quiet, one thread. */
static ft_options quick_options(int epochs, int patience) {
    ft_options o;
    ft_options_default(&o);
    o.epochs = epochs;
    o.lr = 3e-3f;
    o.patience = patience;
    o.quiet = 1;
    o.threads = 1;
    return o;
}

/* The labelled rows, the model with inputs and an encoder on the store, for ft_train tests. */
static int open_labelled_model(labelled *L, rt_model *rm, rt_encoder **enc) {
    cf_err err = {0};
    if (label_all(L) || rt_open(rm, MODEL_IN, NULL, &err)) return -1;
    return rt_encoder_new_store(enc, rm, &L->s, &err) == CF_OK ? 0 : -1;
}

static void test_ft_train_contract(void) {
    labelled L;
    cf_err err = {0};
    rt_model rm;
    rt_encoder *enc;
    REQUIRE(open_labelled_model(&L, &rm, &enc) == 0);
    size_t ntr = L.n[SPLIT_TRAIN], ntu = L.n[SPLIT_TUNING];
    rt_prompt *ptr = calloc(ntr, sizeof *ptr), *ptu = calloc(ntu, sizeof *ptu);
    float *ytr = malloc(ntr * sizeof *ytr), *ytu = malloc(ntu * sizeof *ytu);
    encode_rows(enc, L.rows[SPLIT_TRAIN], ntr, ptr, ytr, 1);
    encode_rows(enc, L.rows[SPLIT_TUNING], ntu, ptu, ytu, 1);
    float *before = malloc(rm.m.num_parameters * sizeof *before);
    memcpy(before, rm.m.param_memory, rm.m.num_parameters * sizeof *before);
    ft_options o = quick_options(6, 2);
    const int pad = (int)rm.v.special[VOCAB_SP_PAD];
    gpt_model a, b;
    ft_report ra, rb;
    REQUIRE(ft_train(&a, &rm.m, 1, ptr, ytr, ntr, ptu, ytu, ntu, pad, &o, &ra, &err) == CF_OK);
    REQUIRE(ft_train(&b, &rm.m, 1, ptr, ytr, ntr, ptu, ytu, ntu, pad, &o, &rb, &err) == CF_OK);
    CHECK(memcmp(rm.m.param_memory, before, rm.m.num_parameters * sizeof *before) == 0);
    CHECK(a.num_parameters == b.num_parameters &&
          memcmp(a.param_memory, b.param_memory, a.num_parameters * sizeof(float)) == 0);
    CHECK_EQ_INT(ra.best_epoch, rb.best_epoch);
    CHECK(ra.epochs_run >= ra.best_epoch && ra.best_epoch >= 0);
    /* the returned parameters are the best epoch's: their tuning loss is the one reported */
    float *lg = malloc(ntu * sizeof *lg);
    REQUIRE(ft_logits(&a, ptu, ntu, pad, 7, lg, &err) == CF_OK);
    double loss = mean_log_loss(lg, ytu, ntu);
    fprintf(stderr, "  ft_train: best epoch %d of %d, tuning loss %.4f (recomputed %.4f)\n", ra.best_epoch, ra.epochs_run,
            ra.best_tune_loss, loss);
    CHECK_NEAR(loss, ra.best_tune_loss, 1e-4);
    /* batch size does not change the logits */
    float *lg2 = malloc(ntu * sizeof *lg2);
    REQUIRE(ft_logits(&a, ptu, ntu, pad, 1, lg2, &err) == CF_OK);
    double wd = 0;
    for (size_t i = 0; i < ntu; i++) wd = fmax(wd, fabs(lg[i] - lg2[i]) / (1 + fabs(lg[i])));
    CHECK(wd < 1e-4);
    /* --ft-body-lr 0: the base model's tensors come out as they went in, bit for bit, while the
     * heads train; with --ft-head-lr 0 too nothing moves (the start: the probe). No tuning
     * prompts, so the last epoch is kept whatever its loss. */
    {
        ft_options ob = o;
        ob.epochs = 2;
        ob.body_lr = 0.0f;
        gpt_model fb, f0;
        ft_report rb0, rb1;
        REQUIRE(ft_train(&fb, &rm.m, 1, ptr, ytr, ntr, NULL, NULL, 0, pad, &ob, &rb1, &err) == CF_OK);
        ob.head_lr = 0.0f;
        REQUIRE(ft_train(&f0, &rm.m, 1, ptr, ytr, ntr, NULL, NULL, 0, pad, &ob, &rb0, &err) == CF_OK);
        CHECK_EQ_INT(rb1.best_epoch, 2);
        size_t ob_off = 0, of_off = 0;
        int body_moved = 0, start_moved = 0, head_moved = 0, body_tensors = 0;
        for (int i = 0; i < GPT_NUM_PARAM_TENSORS; i++) {
            const size_t nb = rm.m.param_sizes[i], nf = fb.param_sizes[i];
            if (nb == nf && nb > 0) { /* a tensor of the base (the heads are absent there) */
                body_tensors++;
                body_moved += memcmp(fb.param_memory + of_off, rm.m.param_memory + ob_off, nb * sizeof(float)) != 0;
            } else if (nb == 0 && nf > 0) {
                head_moved += memcmp(fb.param_memory + of_off, f0.param_memory + of_off, nf * sizeof(float)) != 0;
            }
            start_moved += nb == nf && memcmp(f0.param_memory + of_off, rm.m.param_memory + ob_off, nb * sizeof(float)) != 0;
            ob_off += (nb + 15) / 16 * 16;
            of_off += (nf + 15) / 16 * 16;
        }
        fprintf(stderr, "  body lr 0: %d of %d base tensors moved, %d head tensors moved\n", body_moved, body_tensors,
                head_moved);
        CHECK(body_tensors >= 16);
        CHECK_EQ_INT(body_moved, 0);
        CHECK_EQ_INT(start_moved, 0);
        CHECK_EQ_INT(head_moved, 2); /* the heads' weights and bias */
        gpt_free(&fb);
        gpt_free(&f0);
    }
    check_weight_average(&rm.m, &o, ptr, ytr, ntr, ptu, ytu, ntu, pad);
    /* --ft-summary-weight: at 0 fine-tuning is what it is without the option, bit for bit,
     * whatever the summary's other setting; above 0 the head trains beside the task and changes
     * the model, whose checkpoint keeps its tensors (the summary head is not saved) and predicts
     * after a round trip as before it. The summarised variables are the store's three labs. */
    {
        ft_options o0 = o;
        o0.summary_vars = 2;
        o0.summary_weight = 0.0f;
        gpt_model z, sw;
        ft_report rz, rs;
        REQUIRE(ft_train(&z, &rm.m, 1, ptr, ytr, ntr, ptu, ytu, ntu, pad, &o0, &rz, &err) == CF_OK);
        CHECK(z.num_parameters == a.num_parameters &&
              memcmp(z.param_memory, a.param_memory, a.num_parameters * sizeof(float)) == 0);
        CHECK_EQ_INT(rz.best_epoch, ra.best_epoch);
        CHECK(rz.best_tune_loss == ra.best_tune_loss && rz.summary_vars == 0);
        ft_options o1 = o;
        o1.summary_weight = 1.0f;
        REQUIRE(ft_train(&sw, &rm.m, 1, ptr, ytr, ntr, ptu, ytu, ntu, pad, &o1, &rs, &err) == CF_OK);
        CHECK_EQ_INT(rs.summary_vars, 3);
        CHECK(isfinite(rs.summary_tune_mse) && rs.summary_tune_mse > 0);
        CHECK(rs.probe_tune_loss == ra.probe_tune_loss); /* the same start */
        CHECK(sw.num_parameters == a.num_parameters &&
              memcmp(sw.param_memory, a.param_memory, a.num_parameters * sizeof(float)) != 0);
        float *ls = malloc(ntu * sizeof *ls), *lb = malloc(ntu * sizeof *lb);
        REQUIRE(ft_logits(&sw, ptu, ntu, pad, 5, ls, &err) == CF_OK);
        fprintf(stderr, "  summary weight 1: best epoch %d, tuning loss %.4f (recomputed %.4f), tuning summary MSE %.4f\n",
                rs.best_epoch, rs.best_tune_loss, mean_log_loss(ls, ytu, ntu), rs.summary_tune_mse);
        CHECK_NEAR(mean_log_loss(ls, ytu, ntu), rs.best_tune_loss, 1e-4);
        char path[512];
        snprintf(path, sizeof path, "%s/summ.ckpt", check_tmpdir());
        gpt_model back;
        REQUIRE(gpt_save(&sw, path, NULL, 0, &err) == CF_OK);
        REQUIRE(gpt_load(&back, path, NULL, NULL, &err) == CF_OK);
        CHECK(back.num_parameters == a.num_parameters);
        REQUIRE(ft_logits(&back, ptu, ntu, pad, 5, lb, &err) == CF_OK);
        CHECK(memcmp(ls, lb, ntu * sizeof *ls) == 0);
        free(ls), free(lb);
        gpt_free(&back);
        gpt_free(&sw);
        gpt_free(&z);
        /* a model without continuous inputs has no values to summarise: refused, with the fix */
        rt_model rn;
        REQUIRE(rt_open(&rn, MODEL_NOIN, NULL, &err) == CF_OK);
        gpt_model nm;
        CHECK(ft_train(&nm, &rn.m, 1, ptr, ytr, ntr, ptu, ytu, ntu, pad, &o1, &rs, &err) == CF_EINPUT);
        CHECK_CONTAINS(err.msg, "--values embed --inputs");
        rt_close(&rn);
    }
    /* a base that already has heads is refused */
    gpt_model c;
    ft_report rc2;
    CHECK(ft_train(&c, &a, 1, ptr, ytr, ntr, ptu, ytu, ntu, pad, &o, &rc2, &err) == CF_EINPUT);

    /* A longer context (--ft-context): a history of 21 potassium values does not fit the base's
     * 24 positions and is cut at the default length; asked for 64 it comes whole, only the
     * longer fine-tuned copy takes it. */
    {
        uint32_t code[22];
        int64_t tm[22];
        float num[22];
        const int64_t ck = store_find_code(&L.s, "LAB//K"), cg = store_find_code(&L.s, "GENDER//F");
        REQUIRE(ck >= 0 && cg >= 0);
        code[0] = (uint32_t)cg, tm[0] = TIME_NULL, num[0] = NAN;
        for (int i = 1; i < 22; i++) code[i] = (uint32_t)ck, tm[i] = BASE_T + i * 3600000000LL, num[i] = (float)(i % 7) * 10;
        rt_prompt shortp = {0}, longp = {0};
        REQUIRE(rt_encode_events(enc, code, tm, num, 22, 0, &shortp, &err) == CF_OK);
        REQUIRE(rt_encode_events(enc, code, tm, num, 22, 64, &longp, &err) == CF_OK);
        CHECK(shortp.len <= 24 && (size_t)shortp.len < shortp.history_len);
        fprintf(stderr, "  22 events: %d tokens cut to the context, %d of %zu asked for 64\n", shortp.len, longp.len, longp.history_len);
        CHECK(longp.len > 24 && (size_t)longp.len == longp.history_len);
        ft_options ol = o;
        ol.context = 64;
        ol.epochs = 1;
        gpt_model lm;
        ft_report rl;
        REQUIRE(ft_train(&lm, &rm.m, 1, ptr, ytr, ntr, ptu, ytu, ntu, pad, &ol, &rl, &err) == CF_OK);
        CHECK_EQ_INT(lm.config.max_seq_len, 64);
        float z = NAN;
        CHECK(ft_logits(&lm, &longp, 1, pad, 4, &z, &err) == CF_OK && isfinite(z));
        CHECK(ft_logits(&a, &longp, 1, pad, 4, &z, &err) != CF_OK); /* the 24-position copy refuses it */
        gpt_free(&lm);
        rt_prompt_free(&shortp);
        rt_prompt_free(&longp);
    }

    /* The extremes, windows, attention and variables poolings (--ft-pool
     * extremes|windows|attention|variables): the head reads 4, 8, 5 x d_model or 4 x d_model +
     * 3 k S numbers, and the kept epoch's reported tuning loss is what its predictions give (a
     * forward that pooled otherwise at prediction time than in training, e.g. windows without
     * the prompts' times, attention with the query of another epoch, or variables without the
     * map, would not match). The variables pooling starts where the extremes start (the same
     * probe: its block is zero until the projection moves), its slots are the tokens that carry
     * a value (the one lab here: potassium), and its map survives a checkpoint. */
    double probe_extremes = NAN;
    for (int pool = GPT_POOL_EXTREMES; pool <= GPT_POOL_VARIABLES; pool++) {
        static const char *const pname[] = {"last", "mean", "both", "extremes", "windows", "attention", "variables"};
        const int wide[] = {1, 1, 2, 4, 8, 5, 4};
        ft_options ox = o;
        ox.pool = pool;
        ox.epochs = 2;
        gpt_model xm;
        ft_report rx;
        REQUIRE(ft_train(&xm, &rm.m, 1, ptr, ytr, ntr, ptu, ytu, ntu, pad, &ox, &rx, &err) == CF_OK);
        CHECK_EQ_INT(xm.config.cls_pool, pool);
        CHECK_EQ_INT(gpt_cls_width(&xm.config),
                     wide[pool] * rm.m.config.channels + 3 * xm.config.cls_proj * xm.config.cls_slots);
        if (pool == GPT_POOL_EXTREMES) probe_extremes = rx.probe_tune_loss;
        if (pool == GPT_POOL_VARIABLES) {
            CHECK_NEAR(rx.probe_tune_loss, probe_extremes, 1e-6);
            CHECK(xm.config.cls_slots >= 1 && xm.config.cls_proj == 2);
            /* the slots are exactly the tokens that carry a value in some train prompt (fewer
             * than the cap of 48 here) */
            const int V = rm.m.config.vocab_size;
            char *carries = calloc((size_t)V, 1);
            int n_carry = 0, wrong = 0;
            for (size_t i = 0; i < ntr; i++)
                for (int t = 0; t < ptr[i].len; t++)
                    if (ptr[i].feats[t * TIMELINE_N_FEATURES] == 1.0f && !carries[ptr[i].tokens[t]])
                        carries[ptr[i].tokens[t]] = 1, n_carry++;
            for (int v = 0; v < V; v++) wrong += (xm.params.clsmap[v] >= 0) != carries[v];
            CHECK(n_carry >= 1 && xm.config.cls_slots == n_carry && wrong == 0);
            free(carries);
            double pn = 0; /* the projection left its zero start */
            for (int i = 0; i < 2 * rm.m.config.channels; i++) pn += fabs(xm.params.clsvw[i]);
            CHECK(pn > 0);
            char path[512];
            snprintf(path, sizeof path, "%s/vars.ckpt", check_tmpdir());
            gpt_model back;
            REQUIRE(gpt_save(&xm, path, NULL, 0, &err) == CF_OK);
            REQUIRE(gpt_load(&back, path, NULL, NULL, &err) == CF_OK);
            float *lb = malloc(ntu * sizeof *lb), *la = malloc(ntu * sizeof *la);
            REQUIRE(ft_logits(&back, ptu, ntu, pad, 5, lb, &err) == CF_OK);
            REQUIRE(ft_logits(&xm, ptu, ntu, pad, 5, la, &err) == CF_OK);
            CHECK(memcmp(la, lb, ntu * sizeof *la) == 0);
            free(la), free(lb);
            gpt_free(&back);
        }
        if (pool == GPT_POOL_ATTENTION) { /* the query left its zero start: the attention was trained */
            double qn = 0;
            for (int ch = 0; ch < rm.m.config.channels; ch++) qn += fabs(xm.params.clsq[ch]);
            CHECK(qn > 0);
        }
        float *lx = malloc(ntu * sizeof *lx);
        REQUIRE(ft_logits(&xm, ptu, ntu, pad, 5, lx, &err) == CF_OK);
        double lxs = mean_log_loss(lx, ytu, ntu);
        fprintf(stderr, "  %s pooling: best epoch %d, tuning loss %.4f (recomputed %.4f)\n", pname[pool], rx.best_epoch,
                rx.best_tune_loss, lxs);
        CHECK_NEAR(lxs, rx.best_tune_loss, 1e-4);
        free(lx);
        gpt_free(&xm);
    }

    /* occlusion on a model with inputs: a variant with the same tokens but another value must
     * not reuse the reference's cached rows past the change */
    rt_session ss;
    REQUIRE(rt_session_init(&ss, &rm, 2, &err) == CF_OK);
    rt_session_threads(&ss, 1);
    const int C = rm.m.config.channels;
    float ref[64], full[64], near[64], bat[64];
    REQUIRE(rt_embed_ref(&ss, &ptr[0], ref, &err) == CF_OK);
    rt_prompt var = ptr[0];
    var.feats = malloc((size_t)var.len * TIMELINE_N_FEATURES * sizeof(float));
    memcpy(var.feats, ptr[0].feats, (size_t)var.len * TIMELINE_N_FEATURES * sizeof(float));
    int changed = -1;
    for (int j = 0; j < var.len; j++)
        if (var.feats[j * TIMELINE_N_FEATURES] == 1.0f) changed = j;
    REQUIRE(changed > 0);
    var.feats[changed * TIMELINE_N_FEATURES + 1] += 1.5f;
    CHECK_EQ_INT(rt_same_as_ref(&ss, &var), changed);
    REQUIRE(rt_embed(&ss, &var, full, &err) == CF_OK);
    REQUIRE(rt_embed_ref(&ss, &ptr[0], ref, &err) == CF_OK);
    REQUIRE(rt_embed_near(&ss, &var, near, &err) == CF_OK);
    const rt_prompt *pv = &var;
    REQUIRE(rt_embed_near_batch(&ss, &pv, 1, bat, &err) == CF_OK);
    double dn = 0, db = 0, dref = 0;
    for (int j = 0; j < C; j++) {
        dn = fmax(dn, fabs(near[j] - full[j]));
        db = fmax(db, fabs(bat[j] - full[j]));
        dref = fmax(dref, fabs(ref[j] - full[j]));
    }
    fprintf(stderr, "  value-changed variant: near %.2e, batched %.2e (the change moved the embedding by %.2e)\n", dn, db,
            dref);
    CHECK(dn < 1e-4 && db < 1e-4);
    CHECK(dref > 1e-3);
    free(var.feats);
    rt_session_free(&ss);
    gpt_free(&a);
    gpt_free(&b);
    free(lg);
    free(lg2);
    free(before);
    for (size_t i = 0; i < ntr; i++) rt_prompt_free(&ptr[i]);
    for (size_t i = 0; i < ntu; i++) rt_prompt_free(&ptu[i]);
    free(ptr);
    free(ptu);
    free(ytr);
    free(ytu);
    rt_encoder_free(enc);
    rt_close(&rm);
    label_free(&L);
}

/* The model options of a finetuned_e2e predictor alone, one thread, defaults otherwise. */
static eval_model_options e2e_options(void) {
    eval_model_options mo;
    memset(&mo, 0, sizeof mo);
    mo.which = EVAL_MODEL_E2E;
    mo.threads = 1;
    split_config_default(&mo.split);
    eval_ft_options_default(&mo.ft);
    mo.ft.set = 1;
    return mo;
}

/* What metrics.json and the model card say the fine-tuned head reads: the method and head_reads
 * name the same pooling (the method once said "the last history token's final hidden state" for
 * every pooling, beside a head_reads of the extremes). Described before fitting, as nothing
 * about the pooling waits for the fit. */
static void test_e2e_describes_its_pooling(void) {
    labelled L;
    REQUIRE(label_all(&L) == 0);
    static const struct {
        int pool;
        const char *reads;
    } cases[] = {{GPT_POOL_LAST, "last history token"},
                 {GPT_POOL_EXTREMES, "last token, mean, max and min"},
                 {GPT_POOL_ATTENTION, "last token, mean, max and min, and a learned attention pooling"},
                 {GPT_POOL_VARIABLES, "last token, mean, max and min, and per variable the last, max and min of a "
                                      "learned projection of its events' hidden states"}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        cf_err err = {0};
        eval_model_options mo = e2e_options();
        mo.ft.pool = cases[c].pool;
        eval_predictor p[4];
        size_t np = 0;
        REQUIRE(eval_model_predictors(MODEL_IN, &mo, &L.t, &L.l, p, 4, &np, &err) == CF_OK && np == 1);
        char *d = p[0].describe(p[0].ctx);
        REQUIRE(d);
        char want[400];
        snprintf(want, sizeof want, "\"head_reads\":\"%s\"", cases[c].reads);
        CHECK(strstr(d, want) != NULL);
        snprintf(want, sizeof want, "final hidden states (%s)", cases[c].reads);
        const char *m = strstr(d, "\"method\":\"");
        const char *mend = m ? strstr(m + 10, "\",") : NULL;
        const char *w = strstr(d, want);
        CHECK(m && mend && w && w > m && w < mend); /* inside the method's text */
        if (!(m && mend && w && w > m && w < mend)) fprintf(stderr, "  described as: %s\n", d);
        free(d);
        eval_model_predictors_free(p, np);
    }
    label_free(&L);
}

/* The mean log loss over the labelled entries of column k of logits (n, K), computed apart. */
static double column_log_loss(const float *z, const float *y, size_t n, int K, int k) {
    double sum = 0;
    size_t c = 0;
    for (size_t i = 0; i < n; i++) {
        double zi = z[i * K + k], yi = y[i * K + k];
        if (isnan(yi)) continue;
        sum += (zi > 0 ? zi + log1p(exp(-zi)) : log1p(exp(zi))) - yi * zi;
        c++;
    }
    return sum / (double)c;
}

/* Auxiliary heads (`clinfm eval --ft-aux-task`, finetune.h main_head):
 *   - one head: main_head on or off gives the same model bit for bit (single-task fine-tuning is
 *     what it was);
 *   - two heads, the second labelled against the task on the tuning rows (its best epoch is not
 *     the task's) and NaN on every third row: with main_head the reported tuning loss, and so the
 *     epoch kept, is head 0's alone (recomputed here from the returned model's logits), the
 *     auxiliary loss is the second column's over its labelled rows; without main_head the loss is
 *     the mean over every labelled entry, as before;
 *   - the weight reaches training: auxiliary weight 0 and 2 give different task logits, and the
 *     last head's own weight stands in for the auxiliary weight on that head. */
static void test_aux_heads(void) {
    struct {
        labelled L;
        rt_model rm;
        rt_encoder *enc;
    } F;
    REQUIRE(open_labelled_model(&F.L, &F.rm, &F.enc) == 0);
    cf_err err = {0};
    const gpt_model *base = &F.rm.m;
    const size_t ntr = F.L.n[SPLIT_TRAIN], ntu = F.L.n[SPLIT_TUNING];
    rt_prompt *ptr = calloc(ntr, sizeof *ptr), *ptu = calloc(ntu, sizeof *ptu);
    float *ytr = malloc(ntr * 2 * sizeof *ytr), *ytu = malloc(ntu * 2 * sizeof *ytu);
    float *y1tr = malloc(ntr * sizeof *y1tr), *y1tu = malloc(ntu * sizeof *y1tu);
    encode_rows(F.enc, F.L.rows[SPLIT_TRAIN], ntr, ptr, ytr, 2);
    encode_rows(F.enc, F.L.rows[SPLIT_TUNING], ntu, ptu, ytu, 2);
    for (size_t i = 0; i < ntr; i++) {
        y1tr[i] = ytr[2 * i];
        ytr[2 * i + 1] = i % 3 == 0 ? NAN : (float)(mix(i) & 1); /* noise on train rows */
    }
    for (size_t i = 0; i < ntu; i++) {
        y1tu[i] = ytu[2 * i];
        ytu[2 * i + 1] = i % 3 == 0 ? NAN : 1.0f - ytu[2 * i]; /* against the task on tuning rows */
    }
    ft_options o = quick_options(4, 4);
    const int pad = (int)F.rm.v.special[VOCAB_SP_PAD];
    gpt_model a, b;
    ft_report ra, rb;
    /* one head: the flag changes nothing */
    REQUIRE(ft_train(&a, base, 1, ptr, y1tr, ntr, ptu, y1tu, ntu, pad, &o, &ra, &err) == CF_OK);
    o.main_head = 1;
    REQUIRE(ft_train(&b, base, 1, ptr, y1tr, ntr, ptu, y1tu, ntu, pad, &o, &rb, &err) == CF_OK);
    CHECK(a.num_parameters == b.num_parameters &&
          memcmp(a.param_memory, b.param_memory, a.num_parameters * sizeof(float)) == 0);
    CHECK(ra.best_epoch == rb.best_epoch && memcmp(&ra.best_tune_loss, &rb.best_tune_loss, sizeof(double)) == 0);
    CHECK(isnan(rb.aux_tune_loss));
    gpt_free(&a), gpt_free(&b);
    /* two heads, the second an auxiliary task */
    float *lg = malloc(ntu * 2 * sizeof *lg);
    REQUIRE(ft_train(&a, base, 2, ptr, ytr, ntr, ptu, ytu, ntu, pad, &o, &ra, &err) == CF_OK);
    REQUIRE(ft_logits(&a, ptu, ntu, pad, 16, lg, &err) == CF_OK);
    double l0 = column_log_loss(lg, ytu, ntu, 2, 0), l1 = column_log_loss(lg, ytu, ntu, 2, 1);
    fprintf(stderr, "  main head: epoch %d kept, tuning loss %.4f (recomputed %.4f); auxiliary %.4f (%.4f)\n",
            ra.best_epoch, ra.best_tune_loss, l0, ra.aux_tune_loss, l1);
    CHECK_NEAR(ra.best_tune_loss, l0, 1e-5);
    CHECK_NEAR(ra.aux_tune_loss, l1, 1e-5);
    CHECK(fabs(l0 - l1) > 1e-3); /* the check has teeth: the columns' losses differ */
    /* the weight reaches training */
    float *lg0 = malloc(ntu * 2 * sizeof *lg0);
    ft_options ow = o;
    ow.aux_weight = 0.0f;
    ow.patience = 100;
    ow.epochs = 2;
    ow.lr = 1e-2f; /* no tuning prompts below: the last epoch is kept, so both runs train */
    REQUIRE(ft_train(&b, base, 2, ptr, ytr, ntr, NULL, NULL, 0, pad, &ow, &rb, &err) == CF_OK);
    REQUIRE(ft_logits(&b, ptu, ntu, pad, 16, lg0, &err) == CF_OK);
    gpt_free(&b);
    ow.aux_weight = 2.0f;
    REQUIRE(ft_train(&b, base, 2, ptr, ytr, ntr, NULL, NULL, 0, pad, &ow, &rb, &err) == CF_OK);
    REQUIRE(ft_logits(&b, ptu, ntu, pad, 16, lg, &err) == CF_OK);
    double diff = 0;
    for (size_t i = 0; i < ntu; i++) diff = fmax(diff, fabs(lg[2 * i] - lg0[2 * i]));
    fprintf(stderr, "  task logits, auxiliary weight 0 against 2: largest difference %.4f\n", diff);
    CHECK(diff > 1e-3);
    gpt_free(&b);
    /* the last head's own weight (a teacher's, --ft-distill) replaces the auxiliary weight for it:
     * auxiliary 0 with the last head at 2 trains as auxiliary 2 did, bit for bit */
    ow.aux_weight = 0.0f;
    ow.last_head_weight = 2.0f;
    REQUIRE(ft_train(&b, base, 2, ptr, ytr, ntr, NULL, NULL, 0, pad, &ow, &rb, &err) == CF_OK);
    REQUIRE(ft_logits(&b, ptu, ntu, pad, 16, lg0, &err) == CF_OK);
    CHECK(memcmp(lg0, lg, ntu * 2 * sizeof *lg) == 0);
    gpt_free(&b);
    /* the old rule without main_head: every labelled entry alike */
    o.main_head = 0;
    gpt_free(&a);
    REQUIRE(ft_train(&a, base, 2, ptr, ytr, ntr, ptu, ytu, ntu, pad, &o, &ra, &err) == CF_OK);
    REQUIRE(ft_logits(&a, ptu, ntu, pad, 16, lg, &err) == CF_OK);
    double sum = 0;
    size_t c = 0;
    for (size_t i = 0; i < 2 * ntu; i++) {
        if (isnan(ytu[i])) continue;
        double z = lg[i];
        sum += (z > 0 ? z + log1p(exp(-z)) : log1p(exp(z))) - ytu[i] * z;
        c++;
    }
    CHECK_NEAR(ra.best_tune_loss, sum / (double)c, 1e-5);
    gpt_free(&a);
    for (size_t i = 0; i < ntr; i++) rt_prompt_free(&ptr[i]);
    for (size_t i = 0; i < ntu; i++) rt_prompt_free(&ptu[i]);
    free(ptr), free(ptu), free(ytr), free(ytu), free(y1tr), free(y1tu), free(lg), free(lg0);
    rt_encoder_free(F.enc);
    rt_close(&F.rm);
    label_free(&F.L);
}

/* An auxiliary task as eval checks and labels it (eval_aux.c): the other outcome of the same
 * rows, with subjects under 55 left out. Each row's auxiliary label is its own row's (the
 * complement of the task's here), NaN for a row the task keeps and the auxiliary leaves out;
 * another prediction time, another trigger or another [input] never is refused, each naming what
 * differs; and finetuned_e2e with the auxiliary trains and predicts the task only (the
 * auxiliary in what it describes, probabilities in [0, 1]). */
static void test_aux_eval(void) {
    labelled L;
    REQUIRE(label_all(&L) == 0);
    const char *body = "[codes trig]\ncode = TRIG//VISIT\n[codes out]\ncode = OUT//EVENT\n[codes other]\n"
                       "code = OTHER//EVENT\n[codes glu]\ncode = LAB//GLU\n";
    struct {
        const char *trigger, *prediction, *never, *want;
    } cases[] = {{"trig", "trigger", "", NULL},
                 {"trig", "trigger + 1h", "", "prediction time (trigger + 1h) differs"},
                 {"other", "trigger", "", "trigger codes differ"},
                 {"trig", "trigger", "[input]\nnever = glu\n", "[input] never"}};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        char text[1024];
        snprintf(text, sizeof text,
                 "[task]\nname = aux_other\n%s[trigger]\ncodes = %s\n[prediction]\ntime = %s\n[exclude]\n"
                 "when = age < 55\n[label]\nwhen = any other in (prediction, prediction + 30d]\n%s",
                 body, cases[k].trigger, cases[k].prediction, cases[k].never);
        task_def at;
        task_labels al;
        cf_err err = {0};
        REQUIRE(task_parse(&at, "aux.task", text, strlen(text), &err) == CF_OK);
        task_label_options lo = {.seed = 1};
        split_config_default(&lo.split);
        REQUIRE(task_label(&at, &L.s, &lo, &al, &err) == CF_OK);
        int rc = eval_aux_check(&L.s, &L.t, &L.l, &at, &al, &err);
        if (cases[k].want) {
            CHECK_EQ_INT(rc, CF_EINPUT);
            CHECK_CONTAINS(err.msg, cases[k].want);
        } else {
            CHECK_EQ_INT(rc, CF_OK);
            const size_t n = L.n[SPLIT_TRAIN];
            float *y = malloc(n * 2 * sizeof *y);
            for (size_t i = 0; i < 2 * n; i++) y[i] = -1;
            eval_aux_column(&al, L.rows[SPLIT_TRAIN], n, y + 1, 2);
            size_t nan = 0, bad = 0;
            for (size_t i = 0; i < n; i++) {
                const label_row *r = &L.rows[SPLIT_TRAIN][i];
                const label_row *x = NULL;
                for (size_t j = 0; j < al.n && !x; j++)
                    if (al.rows[j].subject_index == r->subject_index && al.rows[j].prediction_time == r->prediction_time)
                        x = &al.rows[j];
                if (!x) nan++, bad += !isnan(y[2 * i + 1]);
                else bad += y[2 * i + 1] != (float)!r->label; /* the other outcome: the complement */
                bad += y[2 * i] != -1.0f;                      /* the stride leaves column 0 alone */
            }
            fprintf(stderr, "  auxiliary column: %zu of %zu train rows outside its population\n", nan, n);
            CHECK(nan > 0 && nan < n);
            CHECK_EQ_INT(bad, 0);
            free(y);
            /* finetuned_e2e with the auxiliary task: the task alone is predicted */
            eval_model_options mo = e2e_options();
            mo.ft.epochs = 2;
            mo.ft.lr = 3e-3f;
            mo.aux_tasks = &at, mo.aux_labels = &al, mo.n_aux = 1;
            eval_predictor p[4];
            size_t np = 0;
            REQUIRE(eval_model_predictors(MODEL_IN, &mo, &L.t, &L.l, p, 4, &np, &err) == CF_OK && np == 1);
            REQUIRE(p[0].fit(p[0].ctx, &L.s, L.rows[SPLIT_TRAIN], n, L.rows[SPLIT_TUNING], L.n[SPLIT_TUNING], &err) ==
                    CF_OK);
            const size_t nh = L.n[SPLIT_HELD_OUT];
            float *pr = malloc(nh * sizeof *pr);
            REQUIRE(p[0].predict(p[0].ctx, &L.s, L.rows[SPLIT_HELD_OUT], nh, pr, &err) == CF_OK);
            uint8_t *yh = malloc(nh);
            for (size_t i = 0; i < nh; i++) {
                CHECK(pr[i] >= 0 && pr[i] <= 1);
                yh[i] = L.rows[SPLIT_HELD_OUT][i].label;
            }
            fprintf(stderr, "  finetuned_e2e with an auxiliary head: held-out AUROC %.3f\n", eval_auroc(pr, yh, nh));
            char *d = p[0].describe(p[0].ctx);
            CHECK(d && strstr(d, "\"auxiliary_tasks\":[{\"task\":\"aux_other\"") && strstr(d, "\"auxiliary_weight\":0.5"));
            free(d), free(pr), free(yh);
            eval_model_predictors_free(p, np);
        }
        task_labels_free(&al);
        task_free(&at);
    }
    label_free(&L);
}

/* --ft-drop-values: which positions a training batch keeps (ft_kept_positions), and that
 * ft_train honours the option (deterministic, different from none, tuning rows untouched,
 * refused without continuous inputs or at 1). */
static void test_value_dropout(void) {
    enum { LEN = 301, PREFIX = 4, F = TIMELINE_N_FEATURES };
    rt_prompt p;
    memset(&p, 0, sizeof p);
    int tokens[LEN], kept[LEN];
    float feats[LEN * F];
    memset(feats, 0, sizeof feats);
    p.tokens = tokens, p.feats = feats, p.len = LEN, p.n_prefix = PREFIX;
    /* every third token carries a value, the prefix and the last token too: the prefix and the
     * last stay by their position, not by their inputs */
    int n_draws = 0;
    for (int t = 0; t < LEN; t++) {
        tokens[t] = t;
        feats[(size_t)t * F] = t < PREFIX || t == LEN - 1 || t % 3 == 0 ? 1.0f : 0.0f;
        n_draws += t >= PREFIX && t + 1 < LEN && t % 3 == 0;
    }
    uint64_t rng = 77, rng0 = rng;
    CHECK_EQ_INT(ft_kept_positions(&p, F, 0.0f, &rng, kept), LEN);
    CHECK(rng == rng0); /* no draw at 0: fine-tuning without the option is what it was */
    for (int t = 0; t < LEN; t++) CHECK_EQ_INT(kept[t], t);
    /* without continuous inputs nothing is known to carry a value: all kept */
    CHECK_EQ_INT(ft_kept_positions(&p, 0, 0.5f, &rng, kept), LEN);
    CHECK(rng == rng0);
    const float drop = 0.3f;
    long dropped = 0, eligible = 0;
    for (int rep = 0; rep < 200; rep++) {
        const uint64_t before = rng;
        int m = ft_kept_positions(&p, F, drop, &rng, kept), bad = 0;
        /* one draw per value-carrying stream token, none for the others */
        CHECK(rng == before + (uint64_t)n_draws * 0x9E3779B97F4A7C15ULL);
        bad |= m < 1 || kept[m - 1] != LEN - 1;
        for (int i = 0; i < PREFIX; i++) bad |= kept[i] != i;
        int seen[LEN] = {0};
        for (int i = 0; i < m; i++) {
            bad |= i > 0 && kept[i] <= kept[i - 1];
            seen[kept[i]] = 1;
        }
        for (int t = PREFIX; t < LEN - 1; t++) {
            if (t % 3) bad |= !seen[t]; /* a token without a value is never left out */
            else eligible++, dropped += !seen[t];
        }
        CHECK(!bad);
        if (bad) break;
    }
    const double rate = (double)dropped / (double)eligible;
    fprintf(stderr, "  value dropout %.2f: %.4f of %ld value tokens left out\n", drop, rate, eligible);
    CHECK(fabs(rate - drop) < 0.02); /* about 20,000 draws: 5 standard errors */

    /* ft_train with it, on the labelled train and tuning prompts */
    labelled L;
    cf_err err = {0};
    rt_model rm;
    rt_encoder *enc;
    REQUIRE(open_labelled_model(&L, &rm, &enc) == 0);
    split_prompts tr = encode_split(enc, &L, SPLIT_TRAIN), tu = encode_split(enc, &L, SPLIT_TUNING);
    rt_prompt *ptr = tr.p, *ptu = tu.p;
    float *ytr = tr.y, *ytu = tu.y, *lg = malloc(tu.n * sizeof *lg);
    const size_t ntr = tr.n, ntu = tu.n;
    const int pad = (int)rm.v.special[VOCAB_SP_PAD];
    ft_options o = quick_options(3, 3);
    gpt_model none, a, b;
    ft_report rn, ra, rb;
    REQUIRE(ft_train(&none, &rm.m, 1, ptr, ytr, ntr, ptu, ytu, ntu, pad, &o, &rn, &err) == CF_OK);
    o.drop_values = 0.25f;
    REQUIRE(ft_train(&a, &rm.m, 1, ptr, ytr, ntr, ptu, ytu, ntu, pad, &o, &ra, &err) == CF_OK);
    REQUIRE(ft_train(&b, &rm.m, 1, ptr, ytr, ntr, ptu, ytu, ntu, pad, &o, &rb, &err) == CF_OK);
    CHECK(memcmp(a.param_memory, b.param_memory, a.num_parameters * sizeof(float)) == 0);
    /* the training batches differ (the first epoch's curve), the tuning prompts do not: the
     * kept model's reported loss is its loss on the whole tuning prompts */
    fprintf(stderr, "  value dropout 0.25: tuning loss after epoch 1 %.4f (none %.4f), kept epoch %d %.4f\n",
            ra.tune_curve[1], rn.tune_curve[1], ra.best_epoch, ra.best_tune_loss);
    CHECK(ra.tune_curve[1] != rn.tune_curve[1]);
    CHECK_EQ_INT(ra.tune_curve[0] == rn.tune_curve[0], 1);
    REQUIRE(ft_logits(&a, ptu, ntu, pad, 7, lg, &err) == CF_OK);
    CHECK_NEAR(mean_log_loss(lg, ytu, ntu), ra.best_tune_loss, 1e-4);
    gpt_model bad_model;
    o.drop_values = 1.0f;
    CHECK(ft_train(&bad_model, &rm.m, 1, ptr, ytr, ntr, ptu, ytu, ntu, pad, &o, &ra, &err) == CF_EINPUT);
    o.drop_values = 0.25f;
    rt_model rno;
    REQUIRE(rt_open(&rno, MODEL_NOIN, NULL, &err) == CF_OK);
    CHECK(ft_train(&bad_model, &rno.m, 1, ptr, ytr, ntr, ptu, ytu, ntu, pad, &o, &ra, &err) == CF_EINPUT);
    CHECK_CONTAINS(err.msg, "--values embed --inputs");
    rt_close(&rno);
    gpt_free(&none), gpt_free(&a), gpt_free(&b);
    split_prompts_free(&tr), split_prompts_free(&tu);
    free(lg);
    rt_encoder_free(enc);
    rt_close(&rm);
    label_free(&L);
}

int main(void) {
    /* One thread: the models are tiny, and parallel regions on a shared machine cost more
     * than they save (the predictors are given --threads 1 the same way). */
    omp_set_num_threads(1);
    openblas_set_num_threads(1);
    if (setup()) {
        fprintf(stderr, "setup failed\n");
        return 1;
    }
    RUN(test_values_reach_the_heads);
    RUN(test_ft_train_contract);
    RUN(test_e2e_describes_its_pooling);
    RUN(test_probe_penalty_cv);
    RUN(test_aux_heads);
    RUN(test_aux_eval);
    RUN(test_value_dropout);
    return check_summary();
}
