/* The model-backed predictors on a tiny model trained here, on a constructed store.
 *
 * The store: 400 subjects, each with a check-up, a lab value, a note that is never input, a
 * marker event (MARK//A or MARK//B) two hours before a trigger visit (TRIG//VISIT, the prediction
 * time), then a day later OUT//EVENT for type A and OTHER//EVENT for type B, and a later
 * check-up; a third also have a hospital stay afterwards (for the outcome translation of the
 * MIMIC tasks). The task: "OUT//EVENT within 30 days after the trigger", so the history's marker
 * decides the label. A 1-layer GPT is trained on the train split for 300 steps (about a second).
 *
 * Checked:
 *   - the zero-shot, read-out and fine-tuned predictors as `clinfm eval --model` registers them
 *     (eval_model_predictors): risks in [0, 1]; zero-shot reproducible for a seed; predictions on
 *     a second store whose futures are flipped (every A gets OTHER, every B gets OUT, so every
 *     label flips) are bit-identical, while the same predictor given the future (history_end at
 *     the subject's end) changes its answers, so the test would catch a predictor that read
 *     past the prediction time; a model trained under another split is refused;
 *   - the model learned the pattern: zero-shot, read-out and fine-tuned AUROC on held-out rows
 *     near 1 (the fine-tuned head is the "easy separable task" check);
 *   - the outcome translation of the synthetic task and of the shipped MIMIC tasks, and its
 *     head-file form read back;
 *   - rollouts that outgrow the context (re-priming), determinism, another seed giving other
 *     futures, and bookkeeping;
 *   - the service predictor (serve_model_open) from the head file eval wrote: the same risk as the
 *     evaluation's fine-tuned head for the same row even when handed the whole record (events
 *     after the prediction time are ignored), an interval around it, reasons that are events at
 *     or before the prediction time (never a never-input code), and occlusion equal to rescoring
 *     without the reason's code. */
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "eval/eval.h"
#include "model/head.h"
#include "model/outcome.h"
#include "tasks/task_outcome.h"
#include "model/runtime.h"
#include "serve/serve_config.h"
#include "serve/serve_model.h"
#include "store/store.h"
#include "tasks/task.h"
#include "timeline/timeline.h"
#include "timeline/vocab.h"

#define NS 400
#define DAY 86400000000LL
#define BASE_T 1577836800000000LL /* 2020-01-01 */

static char STORE1[4096], STORE2[4096], MODEL[4096], OUTDIR[4096];
static int model_ok;

static const char *TASK_TEXT =
    "[task]\n"
    "name = synth_outcome\n"
    "title = Synthetic outcome within 30 days\n"
    "[codes trig]\n"
    "code = TRIG//VISIT\n"
    "[codes outcome]\n"
    "code = OUT//EVENT\n"
    "[codes hidden]\n"
    "code = SECRET//NOTE\n"
    "[trigger]\n"
    "codes = trig\n"
    "[prediction]\n"
    "time = trigger\n"
    "[label]\n"
    "when = any outcome in (prediction, prediction + 30d]\n"
    "[input]\n"
    "never = hidden\n";

static uint64_t mix(uint64_t z) {
    z += 0x9E3779B97F4A7C15ULL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static int is_type_a(int64_t id) { return (mix((uint64_t)id) & 1) != 0; }

static int add(store_writer *w, int64_t sid, int64_t t, const char *code, float v, cf_err *err) {
    int64_t c = store_writer_code(w, code, strlen(code));
    if (c < 0) return CF_EINTERNAL;
    return store_writer_add(w, sid, t, (uint32_t)c, v, NULL, 0, 0, 1, err);
}

/* flip: every subject's future after the trigger swapped (OUT <-> OTHER). */
static int build_store(const char *path, int flip) {
    cf_err err = {0};
    store_writer *w;
    store_writer_options o = {0};
    if (store_writer_open(&w, path, &o, &err)) return -1;
    store_writer_source(w, "synthetic");
    int rc = 0;
    for (int64_t sid = 1; sid <= NS && !rc; sid++) {
        int a = is_type_a(sid);
        int64_t t0 = BASE_T + sid * DAY;
        uint64_t h = mix((uint64_t)sid * 7919);
        rc |= add(w, sid, TIME_NULL, h & 2 ? "GENDER//F" : "GENDER//M", NAN, &err);
        rc |= add(w, sid, t0 - (int64_t)(30 + h % 40) * 365 * DAY, "MEDS_BIRTH", NAN, &err);
        rc |= add(w, sid, t0, "CLINIC//CHECKUP", NAN, &err);
        rc |= add(w, sid, t0 + DAY, "LAB//X", (float)(h % 100), &err);
        rc |= add(w, sid, t0 + 2 * DAY, "SECRET//NOTE", NAN, &err); /* never input */
        rc |= add(w, sid, t0 + 3 * DAY - 7200000000LL, a ? "MARK//A" : "MARK//B", NAN, &err);
        rc |= add(w, sid, t0 + 3 * DAY, "TRIG//VISIT", NAN, &err);
        rc |= add(w, sid, t0 + 4 * DAY, (a ^ flip) ? "OUT//EVENT" : "OTHER//EVENT", NAN, &err);
        rc |= add(w, sid, t0 + 20 * DAY, "CLINIC//CHECKUP", NAN, &err);
        if (h % 3 == 0) { /* a hospital stay, for the MIMIC task translations */
            rc |= add(w, sid, t0 + 40 * DAY, h & 4 ? "HOSPITAL_ADMISSION//EW EMER." : "HOSPITAL_ADMISSION//URGENT", NAN, &err);
            rc |= add(w, sid, t0 + 41 * DAY, "ICU_ADMISSION//MICU", NAN, &err);
            rc |= add(w, sid, t0 + 45 * DAY, h & 8 ? "HOSPITAL_DISCHARGE//DIED" : "HOSPITAL_DISCHARGE//HOME", NAN, &err);
        }
    }
    if (rc) {
        store_writer_abort(w);
        return -1;
    }
    return store_writer_finish(w, &err) ? -1 : 0;
}

/* Trains the tiny model on store 1 and writes MODEL and MODEL.vocab. */
static int train_model(void) {
    cf_err err = {0};
    store s;
    if (store_open(&s, STORE1, &err)) return -1;
    split_config sp;
    split_config_default(&sp);
    vocab v;
    vocab_options vo;
    vocab_options_default(&vo);
    char vpath[4200], spath[4200];
    snprintf(vpath, sizeof vpath, "%s.vocab", MODEL);
    snprintf(spath, sizeof spath, "%s/train.tokens", check_tmpdir());
    int rc = vocab_build(&v, &s, &sp, &vo, &err) || vocab_save(&v, vpath, &err);
    timeline_shard_stats st;
    timeline_shard sh;
    rc = rc || timeline_write_shards(&v, &s, &sp, SPLIT_TRAIN, spath, &st, &err) ||
         timeline_shard_open(&sh, spath, &v, &err);
    if (rc) {
        fprintf(stderr, "train setup: %s\n", err.msg);
        return -1;
    }
    gpt_config cfg = {.max_seq_len = 32, .vocab_size = (int)v.n_tokens, .num_layers = 1, .num_heads = 2,
                      .channels = 32, .dropout = 0};
    gpt_model m;
    int B = 8, T = 32, steps = 300;
    if (gpt_build(&m, &cfg, 11, &err)) return -1;
    memcpy(m.vocab_hash, v.hash, sizeof m.vocab_hash);
    gpt_opt_config opt = gpt_opt_default((uint64_t)steps);
    opt.lr = 1e-2f;
    opt.min_lr = 1e-3f;
    opt.warmup_steps = 20;
    int in[8 * 32], tg[8 * 32];
    for (int step = 0; step < steps && !rc; step++) {
        for (int b = 0; b < B; b++)
            timeline_shard_window(&sh, &v, mix((uint64_t)(step * B + b)) % sh.n_tokens, T, in + b * T, tg + b * T);
        gpt_update_stats us;
        rc = gpt_forward(&m, in, tg, B, T, 1, &err);
        gpt_zero_grad(&m);
        rc = rc || gpt_backward(&m, &err) || gpt_update(&m, &opt, &us, &err);
    }
    fprintf(stderr, "  tiny model: final train loss %.3f\n", m.mean_loss);
    rc = rc || gpt_save(&m, MODEL, &opt, 0, &err);
    if (rc) fprintf(stderr, "train: %s\n", err.msg);
    gpt_free(&m);
    timeline_shard_close(&sh);
    vocab_free(&v);
    store_close(&s);
    return rc ? -1 : 0;
}

static int setup(void) {
    snprintf(STORE1, sizeof STORE1, "%s/mp1.store", check_tmpdir());
    snprintf(STORE2, sizeof STORE2, "%s/mp2.store", check_tmpdir());
    snprintf(MODEL, sizeof MODEL, "%s/mp.model", check_tmpdir());
    snprintf(OUTDIR, sizeof OUTDIR, "%s/mp_eval", check_tmpdir());
    mkdir(OUTDIR, 0777);
    if (build_store(STORE1, 0) || build_store(STORE2, 1) || train_model()) return -1;
    model_ok = 1;
    return 0;
}

/* Mann-Whitney AUROC (ties count one half). */
static double auroc(const float *p, const uint8_t *y, size_t n) {
    double num = 0, np = 0, nn = 0;
    for (size_t i = 0; i < n; i++) {
        if (y[i]) np++;
        else nn++;
        for (size_t j = 0; j < n; j++)
            if (y[i] && !y[j]) num += p[i] > p[j] ? 1 : p[i] == p[j] ? 0.5 : 0;
    }
    return np && nn ? num / (np * nn) : NAN;
}

typedef struct {
    store s;
    task_def t;
    task_labels l;
    label_row *rows[SPLIT_COUNT];
    size_t n[SPLIT_COUNT];
} labelled;

static int label_store(labelled *x, const char *path) {
    cf_err err = {0};
    memset(x, 0, sizeof *x);
    if (store_open(&x->s, path, &err)) return -1;
    if (task_parse(&x->t, "synth.task", TASK_TEXT, strlen(TASK_TEXT), &err)) return -1;
    task_label_options lo = {.seed = 1};
    split_config_default(&lo.split);
    if (task_label(&x->t, &x->s, &lo, &x->l, &err)) {
        fprintf(stderr, "label: %s\n", err.msg);
        return -1;
    }
    for (int k = 0; k < SPLIT_COUNT; k++) x->rows[k] = malloc((x->l.n + 1) * sizeof(label_row));
    for (size_t i = 0; i < x->l.n; i++) {
        int k = x->l.rows[i].split;
        x->rows[k][x->n[k]++] = x->l.rows[i];
    }
    return 0;
}

static void labelled_free(labelled *x) {
    for (int k = 0; k < SPLIT_COUNT; k++) free(x->rows[k]);
    task_labels_free(&x->l);
    task_free(&x->t);
    store_close(&x->s);
}

static eval_model_options model_opts(void) {
    eval_model_options o;
    memset(&o, 0, sizeof o);
    o.rollouts = 16;
    o.max_new_tokens = 24;
    o.seed = 3;
    o.out_dir = OUTDIR;
    split_config_default(&o.split);
    return o;
}

static const eval_predictor *find_pred(const eval_predictor *p, size_t n, const char *name) {
    for (size_t i = 0; i < n; i++)
        if (!strcmp(p[i].name, name)) return &p[i];
    return NULL;
}

static float FT_PROBS[NS];
static label_row FT_ROWS[NS];
static size_t FT_N;

static void test_predictors_no_future(void) {
    REQUIRE(model_ok);
    labelled a, b;
    REQUIRE(label_store(&a, STORE1) == 0);
    REQUIRE(label_store(&b, STORE2) == 0);
    size_t nh = a.n[SPLIT_HELD_OUT];
    REQUIRE(nh >= 20 && nh == b.n[SPLIT_HELD_OUT]);
    const label_row *ha = a.rows[SPLIT_HELD_OUT], *hb = b.rows[SPLIT_HELD_OUT];
    /* the future flips every answer, and nothing else differs before the prediction time */
    for (size_t i = 0; i < nh; i++) {
        CHECK(ha[i].subject_id == hb[i].subject_id && ha[i].prediction_time == hb[i].prediction_time);
        CHECK(ha[i].label != hb[i].label);
        CHECK(ha[i].history_end - a.s.subject_start[ha[i].subject_index] ==
              hb[i].history_end - b.s.subject_start[hb[i].subject_index]);
    }
    cf_err err = {0};
    eval_model_options o = model_opts();
    eval_predictor preds[4];
    size_t np = 0;
    int rc = eval_model_predictors(MODEL, &o, &a.t, &a.l, preds, 4, &np, &err);
    if (rc) fprintf(stderr, "  %s\n", err.msg);
    REQUIRE(rc == CF_OK && np == 3);
    const eval_predictor *zs = find_pred(preds, np, "zero_shot"), *ro = find_pred(preds, np, "readout"),
                         *ft = find_pred(preds, np, "finetuned");
    REQUIRE(zs && ro && ft);
    float *p1 = malloc(nh * sizeof *p1), *p2 = malloc(nh * sizeof *p2), *p3 = malloc(nh * sizeof *p3);
    uint8_t *y = malloc(nh);
    label_row *leaky = malloc(nh * sizeof *leaky);
    for (size_t i = 0; i < nh; i++) y[i] = ha[i].label;

    /* zero-shot: [0, 1], reproducible, blind to the future */
    REQUIRE(zs->predict(zs->ctx, &a.s, ha, nh, p1, &err) == CF_OK);
    REQUIRE(zs->predict(zs->ctx, &a.s, ha, nh, p2, &err) == CF_OK);
    int inrange = 1;
    for (size_t i = 0; i < nh; i++) inrange &= p1[i] >= 0 && p1[i] <= 1;
    CHECK(inrange);
    CHECK(!memcmp(p1, p2, nh * sizeof *p1));
    REQUIRE(zs->predict(zs->ctx, &b.s, hb, nh, p3, &err) == CF_OK);
    CHECK(!memcmp(p1, p3, nh * sizeof *p1));
    double auc_zs = auroc(p1, y, nh);
    fprintf(stderr, "  zero-shot held-out AUROC %.3f on %zu rows\n", auc_zs, nh);
    CHECK(auc_zs >= 0.9);
    /* given the future, the same predictor answers differently: the check above has teeth */
    for (size_t i = 0; i < nh; i++) {
        leaky[i] = hb[i];
        leaky[i].history_end = b.s.subject_start[hb[i].subject_index + 1];
    }
    REQUIRE(zs->predict(zs->ctx, &b.s, leaky, nh, p3, &err) == CF_OK);
    CHECK(memcmp(p1, p3, nh * sizeof *p1) != 0);

    /* read-out: [0, 1], blind to the future, and it ranks the marker */
    REQUIRE(ro->predict(ro->ctx, &a.s, ha, nh, p1, &err) == CF_OK);
    REQUIRE(ro->predict(ro->ctx, &b.s, hb, nh, p2, &err) == CF_OK);
    inrange = 1;
    for (size_t i = 0; i < nh; i++) inrange &= p1[i] >= 0 && p1[i] <= 1;
    CHECK(inrange);
    CHECK(!memcmp(p1, p2, nh * sizeof *p1));
    fprintf(stderr, "  read-out held-out AUROC %.3f\n", auroc(p1, y, nh));
    CHECK(auroc(p1, y, nh) >= 0.9);

    /* fine-tuned head: fitted on train, tuned on tuning, near-perfect on held-out */
    REQUIRE(ft->fit(ft->ctx, &a.s, a.rows[SPLIT_TRAIN], a.n[SPLIT_TRAIN], a.rows[SPLIT_TUNING], a.n[SPLIT_TUNING],
                    &err) == CF_OK);
    REQUIRE(ft->predict(ft->ctx, &a.s, ha, nh, p1, &err) == CF_OK);
    REQUIRE(ft->predict(ft->ctx, &b.s, hb, nh, p2, &err) == CF_OK);
    CHECK(!memcmp(p1, p2, nh * sizeof *p1));
    double auc_ft = auroc(p1, y, nh);
    fprintf(stderr, "  fine-tuned held-out AUROC %.3f\n", auc_ft);
    CHECK(auc_ft >= 0.97);
    char *desc = ft->describe(ft->ctx);
    CHECK_CONTAINS(desc, "l2_lambda");
    free(desc);
    memcpy(FT_PROBS, p1, nh * sizeof *p1);
    memcpy(FT_ROWS, ha, nh * sizeof *ha);
    FT_N = nh;

    eval_predictor p4[4];
    size_t n4 = 0;
    /* a model evaluated under another split is refused */
    split_parse_fractions(&o.split, "50/20/30", &err);
    CHECK(eval_model_predictors(MODEL, &o, &a.t, &a.l, p4, 4, &n4, &err) == CF_EINPUT);
    CHECK_CONTAINS(err.msg, "another split");

    eval_model_predictors_free(preds, np);
    free(p1);
    free(p2);
    free(p3);
    free(y);
    free(leaky);
    labelled_free(&a);
    labelled_free(&b);
}

static void test_outcome_translation(void) {
    REQUIRE(model_ok);
    cf_err err = {0};
    rt_model rm;
    REQUIRE(rt_open(&rm, MODEL, NULL, &err) == CF_OK);
    const vocab *v = &rm.v;
    task_def t;
    REQUIRE(task_parse(&t, "synth.task", TASK_TEXT, strlen(TASK_TEXT), &err) == CF_OK);
    rt_outcome o;
    REQUIRE(task_outcome(&o, &rm.v, &t, &err) == CF_OK);
    CHECK(o.expressible && o.polarity == 1 && o.n_outcome == 1 && o.end_kind == RT_END_PREDICTION);
    CHECK(o.outcome[vocab_find(v, "OUT//EVENT")] && !o.outcome[vocab_find(v, "OTHER//EVENT")]);
    int64_t st, bu;
    rt_outcome_window(&o, BASE_T, BASE_T + DAY, BASE_T, &st, &bu);
    CHECK(st == 0 && bu == 31 * DAY); /* the clock starts at the last event, a day before */
    rt_outcome_free(&o);
    task_free(&t);

    struct {
        const char *file;
        int expressible, polarity, end;
        const char *in, *out, *term;
    } cases[] = {
        {"in_hospital_mortality", 1, 1, RT_END_EPISODE, "HOSPITAL_DISCHARGE//DIED", "HOSPITAL_DISCHARGE//HOME",
         "HOSPITAL_DISCHARGE//HOME"},
        {"readmission_30d", 1, 1, RT_END_PREDICTION, "[ADMISSION_START]", "HOSPITAL_DISCHARGE//HOME", NULL},
        {"icu_admission", 1, 1, RT_END_EPISODE, "ICU_ADMISSION//MICU", "[ADMISSION_START]", "[ADMISSION_END]"},
        {"long_stay_7d", 1, 0, RT_END_TRIGGER, "HOSPITAL_DISCHARGE//HOME", "ICU_ADMISSION//MICU", NULL},
        {"new_onset_heart_failure", 0, 0, 0, NULL, NULL, NULL}, /* no SNOMED code in this vocabulary */
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        char path[4200];
        snprintf(path, sizeof path, "%s/tasks/%s.task", check_root(), cases[k].file);
        REQUIRE(task_load(&t, path, &err) == CF_OK);
        REQUIRE(task_outcome(&o, &rm.v, &t, &err) == CF_OK);
        CHECK_EQ_INT(o.expressible, cases[k].expressible);
        if (o.expressible) {
            CHECK_EQ_INT(o.polarity, cases[k].polarity);
            CHECK_EQ_INT(o.end_kind, cases[k].end);
            CHECK(o.outcome[vocab_find(v, cases[k].in)]);
            CHECK(!o.outcome[vocab_find(v, cases[k].out)]);
            if (cases[k].term) CHECK(o.terminal[vocab_find(v, cases[k].term)]);
            /* [ADMISSION_END] precedes both DIED and HOME: for mortality it must not close the
             * window before the token that tells which */
            if (!strcmp(cases[k].file, "in_hospital_mortality"))
                CHECK(!o.terminal[v->special[VOCAB_SP_ADM_END]] && !o.outcome[v->special[VOCAB_SP_ADM_END]]);
            if (!strcmp(cases[k].file, "icu_admission")) CHECK(o.outcome[v->special[VOCAB_SP_ICU_START]]);
            /* the head file form reads back the same */
            cJSON *j = rt_outcome_to_json(&o, v);
            rt_outcome o2;
            REQUIRE(rt_outcome_from_json(&o2, &rm, j, "test", &err) == CF_OK);
            CHECK(!memcmp(o.outcome, o2.outcome, v->n_tokens) && !memcmp(o.terminal, o2.terminal, v->n_tokens));
            CHECK(o2.polarity == o.polarity && o2.end_kind == o.end_kind && o2.end_offset == o.end_offset);
            rt_outcome_free(&o2);
            cJSON_Delete(j);
        } else {
            CHECK_CONTAINS(o.why, "no code of the outcome set");
        }
        rt_outcome_free(&o);
        task_free(&t);
    }
    rt_close(&rm);
}

static void test_rollouts_reprime(void) {
    REQUIRE(model_ok);
    cf_err err = {0};
    rt_model rm;
    REQUIRE(rt_open(&rm, MODEL, NULL, &err) == CF_OK);
    store s;
    REQUIRE(store_open(&s, STORE1, &err) == CF_OK);
    rt_encoder *e;
    REQUIRE(rt_encoder_new_store(&e, &rm, &s, &err) == CF_OK);
    rt_prompt p = {0};
    /* the whole first subject, then rollouts with no outcome that can happen and no budget */
    REQUIRE(rt_encode_history(e, 0, s.subject_start[1], NULL, 0, &p, &err) == CF_OK);
    CHECK(p.len <= rm.m.config.max_seq_len && p.n_prefix == (int)rm.v.n_slots + 2);
    CHECK(p.tokens[p.len - 1] != (int)rm.v.special[VOCAB_SP_EOT]);
    uint8_t *never = calloc(rm.v.n_tokens, 1);
    never[rm.v.special[VOCAB_SP_DEATH]] = 1;
    rt_session ss;
    REQUIRE(rt_session_init(&ss, &rm, 8, &err) == CF_OK);
    /* EOT is what the model expects next: let it close nothing, by sampling hot and long */
    rt_rollout_spec sp = {.outcome = never, .budget_us = INT64_MAX, .n_rollouts = 8, .max_new = 120, .seed = 9,
                          .temperature = 3.0f};
    rt_rollout_result r1, r2;
    REQUIRE(rt_rollouts(&ss, &p, &sp, &r1, &err) == CF_OK);
    REQUIRE(rt_rollouts(&ss, &p, &sp, &r2, &err) == CF_OK);
    CHECK(r1.n == 8 && r1.n_event + r1.n_closed + r1.n_open == 8);
    CHECK(!memcmp(&r1, &r2, sizeof r1));
    CHECK(r1.generated >= 8 && r1.generated <= 8 * 120);
    CHECK_EQ_INT(r1.n_horizon, 0);
    /* a time horizon closes an open window: hot sampling makes gap tokens, and a horizon shorter
     * than any gap bin (5 minutes) stops every rollout at its first one, without the outcome */
    {
        rt_rollout_spec hz = sp;
        hz.horizon_us = 60000000LL; /* one minute */
        rt_rollout_result rh;
        REQUIRE(rt_rollouts(&ss, &p, &hz, &rh, &err) == CF_OK);
        CHECK(rh.n_horizon > 0 && rh.n_horizon <= rh.n_closed);
        CHECK_EQ_INT(rh.n_event, 0);
        CHECK(rh.n_open <= r1.n_open);
        CHECK(rh.generated < r1.generated);
        /* a window with its own end in time ignores the horizon */
        hz.budget_us = 365 * DAY;
        REQUIRE(rt_rollouts(&ss, &p, &hz, &rh, &err) == CF_OK);
        CHECK_EQ_INT(rh.n_horizon, 0);
    }
    sp.seed = 10; /* another seed, other futures */
    REQUIRE(rt_rollouts(&ss, &p, &sp, &r2, &err) == CF_OK);
    CHECK(memcmp(&r1, &r2, sizeof r1) != 0);
    sp.seed = 9;
    fprintf(stderr, "  rollouts: %llu tokens, %d re-primings, %d closed, %d open\n", (unsigned long long)r1.generated,
            r1.reprimes, r1.n_closed, r1.n_open);
    /* a prompt that fills the context: every rollout alive after its first token forces a
     * re-priming before the second */
    int T = rm.m.config.max_seq_len;
    rt_prompt full = {.tokens = malloc((size_t)T * sizeof(int)), .times = malloc((size_t)T * sizeof(int64_t)),
                      .len = T, .cap = T, .n_prefix = p.n_prefix, .birth = p.birth, .last_time = p.last_time};
    for (int i = 0; i < T; i++) {
        full.tokens[i] = i < p.n_prefix ? p.tokens[i] : p.tokens[p.n_prefix + (i - p.n_prefix) % (p.len - p.n_prefix)];
        full.times[i] = p.times[i < p.len ? i : p.len - 1];
    }
    sp.max_new = 3;
    REQUIRE(rt_rollouts(&ss, &full, &sp, &r1, &err) == CF_OK);
    CHECK(r1.generated == 8 || r1.reprimes >= 1);
    CHECK(r1.n_event + r1.n_closed + r1.n_open == 8);
    /* embeddings that reuse a reference prompt's cached keys equal full forward passes, also
     * when a variant changes an earlier position than the one before it and the next a later
     * one (the cache must be restored from the reference in between) */
    int C = rm.m.config.channels, at[4] = {T - 2, T - 20, T - 4, p.n_prefix + 1};
    float *want = malloc((size_t)4 * C * sizeof *want), *got = malloc((size_t)C * sizeof *got);
    rt_prompt var[4];
    for (int v = 0; v < 4; v++) {
        var[v] = full;
        var[v].tokens = malloc((size_t)T * sizeof(int));
        memcpy(var[v].tokens, full.tokens, (size_t)T * sizeof(int));
        var[v].tokens[at[v]] = full.tokens[at[v] - 1];
        var[v].len = T - v;
        REQUIRE(rt_embed(&ss, &var[v], want + (size_t)v * C, &err) == CF_OK);
    }
    REQUIRE(rt_embed_ref(&ss, &full, got, &err) == CF_OK);
    double worst = 0;
    for (int v = 0; v < 4; v++) {
        REQUIRE(rt_embed_near(&ss, &var[v], got, &err) == CF_OK);
        for (int j = 0; j < C; j++)
            if (fabs(got[j] - want[(size_t)v * C + j]) > worst) worst = fabs(got[j] - want[(size_t)v * C + j]);
    }
    fprintf(stderr, "  cached-prefix embeddings: largest difference %.2e\n", worst);
    CHECK(worst < 1e-4);
    /* the batched path: all four variants (each changed from another position) in one call,
     * then twice over with the full prompt itself among them, equal to the full passes */
    float *bat = malloc((size_t)9 * C * sizeof *bat), *fullemb = malloc((size_t)C * sizeof *fullemb);
    REQUIRE(rt_embed(&ss, &full, fullemb, &err) == CF_OK);
    REQUIRE(rt_embed_ref(&ss, &full, got, &err) == CF_OK);
    const rt_prompt *pv[9];
    for (int i = 0; i < 9; i++) pv[i] = i == 4 ? &full : &var[i % 4];
    REQUIRE(rt_embed_near_batch(&ss, pv, 9, bat, &err) == CF_OK);
    double bworst = 0;
    for (int i = 0; i < 9; i++) {
        const float *w = i == 4 ? fullemb : want + (size_t)(i % 4) * C;
        for (int j = 0; j < C; j++)
            if (fabs(bat[(size_t)i * C + j] - w[j]) > bworst) bworst = fabs(bat[(size_t)i * C + j] - w[j]);
    }
    /* and the reference is left intact for rt_embed_near afterwards */
    REQUIRE(rt_embed_near(&ss, &var[1], got, &err) == CF_OK);
    for (int j = 0; j < C; j++)
        if (fabs(got[j] - want[(size_t)C + j]) > bworst) bworst = fabs(got[j] - want[(size_t)C + j]);
    fprintf(stderr, "  batched cached-prefix embeddings: largest difference %.2e\n", bworst);
    CHECK(bworst < 1e-5);
    for (int v = 0; v < 4; v++) free(var[v].tokens);
    free(bat);
    free(fullemb);
    free(want);
    free(got);
    /* a session too small for the rollouts asked is an error, not an overflow */
    sp.n_rollouts = 9;
    CHECK(rt_rollouts(&ss, &p, &sp, &r1, &err) == CF_EINPUT);
    free(never);
    rt_prompt_free(&p);
    rt_prompt_free(&full);
    rt_session_free(&ss);
    rt_encoder_free(e);
    store_close(&s);
    rt_close(&rm);
}

static void test_serve_model(void) {
    REQUIRE(model_ok && FT_N > 0);
    cf_err err = {0};
    /* deploy the head eval wrote */
    char heads[4200], src[4200], dst[4400];
    snprintf(heads, sizeof heads, "%s.heads", MODEL);
    mkdir(heads, 0777);
    snprintf(src, sizeof src, "%s/model_head.json", OUTDIR);
    snprintf(dst, sizeof dst, "%s/synth_outcome.json", heads);
    REQUIRE(rename(src, dst) == 0);
    const char *cfg_text =
        "{\"tasks\": [{\"id\": \"synth_outcome\", \"title\": \"Synthetic outcome\", \"warning\": 0.2, \"critical\": 0.5}],"
        " \"services\": [{\"id\": \"pv\", \"hook\": \"patient-view\", \"title\": \"t\", \"description\": \"d\","
        " \"tasks\": [\"synth_outcome\"]}], \"threads\": 2}";
    serve_config c;
    REQUIRE(serve_config_parse(&c, cfg_text, strlen(cfg_text), check_tmpdir(), "cfg", &err) == CF_OK);
    serve_predictor pr;
    int rc = serve_model_open(MODEL, &c, &pr, &err);
    if (rc) fprintf(stderr, "  %s\n", err.msg);
    REQUIRE(rc == CF_OK);
    CHECK_EQ_STR(pr.model_name, "mp.model");
    CHECK_CONTAINS(pr.model_version, "step 300");
    CHECK(pr.supports(pr.ctx, "synth_outcome") && !pr.supports(pr.ctx, "other"));
    store s;
    REQUIRE(store_open(&s, STORE1, &err) == CF_OK);
    const serve_task *t = serve_config_task(&c, "synth_outcome");
    int checked = 0, occl_checked = 0;
    for (size_t r = 0; r < FT_N && r < 12; r++) {
        const label_row *row = &FT_ROWS[r];
        uint64_t a = s.subject_start[row->subject_index], b = s.subject_start[row->subject_index + 1];
        size_t n = (size_t)(b - a);
        int64_t *tm = malloc(n * sizeof *tm);
        const char **code = malloc(n * sizeof *code), **empty = malloc(n * sizeof *empty);
        float *val = malloc(n * sizeof *val);
        for (size_t i = 0; i < n; i++) {
            tm[i] = s.time[a + i];
            code[i] = store_code_str(&s, s.code[a + i]);
            val[i] = s.numeric[a + i];
            empty[i] = "";
        }
        /* the whole record, future included: the predictor must stop at the prediction time */
        serve_patient p = {.n = n, .time = tm, .code = code, .value = val, .desc = empty, .source = empty,
                           .prediction_time = row->prediction_time};
        serve_score sc;
        rc = pr.score(pr.ctx, &p, t, &sc, &err);
        if (rc) fprintf(stderr, "  %s\n", err.msg);
        CHECK(rc == CF_OK);
        CHECK_NEAR(sc.risk, FT_PROBS[r], 2e-6);
        CHECK(sc.lo <= sc.risk && sc.risk <= sc.hi && sc.lo < sc.hi && sc.lo >= 0 && sc.hi <= 1);
        CHECK(sc.n_events_used < n);
        for (size_t k = 0; k < sc.n_reasons; k++) {
            CHECK(sc.reason[k].contribution > 0);
            CHECK(k == 0 || sc.reason[k].contribution <= sc.reason[k - 1].contribution);
            CHECK(tm[sc.reason[k].event] == TIME_NULL || tm[sc.reason[k].event] <= row->prediction_time);
            CHECK(strcmp(code[sc.reason[k].event], "SECRET//NOTE") != 0);
        }
        /* occlusion is rescoring: the patient without the top reason's code scores exactly
         * risk - contribution (this also checks that variants are not confused with the full
         * record, which the predictor scores without a forward pass) */
        if (sc.n_reasons) {
            const char *top = code[sc.reason[0].event];
            size_t m = 0;
            for (size_t i = 0; i < n; i++)
                if (strcmp(code[i], top)) {
                    tm[m] = tm[i];
                    code[m] = code[i];
                    val[m++] = val[i];
                }
            serve_patient q = p;
            q.n = m;
            serve_score sq;
            CHECK(pr.score(pr.ctx, &q, t, &sq, &err) == CF_OK);
            /* variants reuse the full record's cached keys: equal up to float rounding */
            CHECK_NEAR(sq.risk, sc.risk - sc.reason[0].contribution, 2e-5);
            occl_checked++;
        }
        checked++;
        free(tm);
        free(code);
        free(empty);
        free(val);
    }
    fprintf(stderr, "  serve: %d patients scored, %d occlusions rescored\n", checked, occl_checked);
    CHECK(checked == 12 && occl_checked > 0);
    /* batched occlusion (the default, 16 variants per pass, and 2 per pass so several flushes
     * run per card) against one forward per variant: the same reasons and risks within 1e-5 */
    const char *cfg_seq =
        "{\"tasks\": [{\"id\": \"synth_outcome\", \"title\": \"Synthetic outcome\", \"warning\": 0.2, \"critical\": 0.5}],"
        " \"services\": [{\"id\": \"pv\", \"hook\": \"patient-view\", \"title\": \"t\", \"description\": \"d\","
        " \"tasks\": [\"synth_outcome\"]}], \"threads\": 1, \"occlusion_batch\": 1}";
    serve_config cs, c2b;
    REQUIRE(serve_config_parse(&cs, cfg_seq, strlen(cfg_seq), check_tmpdir(), "cfg-seq", &err) == CF_OK);
    CHECK_EQ_INT(cs.occlusion_batch, 1);
    CHECK_EQ_INT(c.occlusion_batch, 16);
    REQUIRE(serve_config_parse(&c2b, cfg_seq, strlen(cfg_seq), check_tmpdir(), "cfg-2", &err) == CF_OK);
    c2b.occlusion_batch = 2;
    serve_predictor seq, two;
    REQUIRE(serve_model_open(MODEL, &cs, &seq, &err) == CF_OK);
    REQUIRE(serve_model_open(MODEL, &c2b, &two, &err) == CF_OK);
    CHECK(seq.checksum == pr.checksum && seq.checksum != 0);
    double worst = 0;
    size_t compared = 0;
    for (size_t r = 0; r < FT_N; r++) {
        const label_row *row = &FT_ROWS[r];
        uint64_t a = s.subject_start[row->subject_index], b = s.subject_start[row->subject_index + 1];
        size_t n = (size_t)(b - a);
        int64_t *tm = malloc(n * sizeof *tm);
        const char **code = malloc(n * sizeof *code), **empty = malloc(n * sizeof *empty);
        float *val = malloc(n * sizeof *val);
        for (size_t i = 0; i < n; i++) {
            tm[i] = s.time[a + i];
            code[i] = store_code_str(&s, s.code[a + i]);
            val[i] = s.numeric[a + i];
            empty[i] = "";
        }
        serve_patient p = {.n = n, .time = tm, .code = code, .value = val, .desc = empty, .source = empty,
                           .prediction_time = row->prediction_time};
        serve_score s1, s16, s2;
        REQUIRE(seq.score(seq.ctx, &p, t, &s1, &err) == CF_OK);
        REQUIRE(pr.score(pr.ctx, &p, t, &s16, &err) == CF_OK);
        REQUIRE(two.score(two.ctx, &p, t, &s2, &err) == CF_OK);
        CHECK(s1.risk == s16.risk && s1.risk == s2.risk); /* the full record: the same pass */
        CHECK(s1.n_reasons == s16.n_reasons && s1.n_reasons == s2.n_reasons);
        for (size_t k = 0; k < s1.n_reasons && k < s16.n_reasons && k < s2.n_reasons; k++) {
            CHECK(s1.reason[k].event == s16.reason[k].event && s1.reason[k].event == s2.reason[k].event);
            double d1 = fabs(s1.reason[k].contribution - s16.reason[k].contribution),
                   d2 = fabs(s1.reason[k].contribution - s2.reason[k].contribution);
            if (d1 > worst) worst = d1;
            if (d2 > worst) worst = d2;
            compared++;
        }
        free(tm);
        free(code);
        free(empty);
        free(val);
    }
    fprintf(stderr, "  batched vs sequential occlusion: %zu reasons, largest risk difference %.2e\n", compared, worst);
    CHECK(compared >= 10);
    CHECK(worst < 1e-5);
    seq.close(seq.ctx);
    two.close(two.ctx);
    serve_config_free(&cs);
    serve_config_free(&c2b);
    pr.close(pr.ctx);
    /* a task without a head file is refused at start, naming the file */
    const char *cfg2 =
        "{\"tasks\": [{\"id\": \"nohead\", \"title\": \"x\", \"warning\": 0.2, \"critical\": 0.5}],"
        " \"services\": [{\"id\": \"pv\", \"hook\": \"patient-view\", \"title\": \"t\", \"description\": \"d\","
        " \"tasks\": [\"nohead\"]}]}";
    serve_config c2;
    REQUIRE(serve_config_parse(&c2, cfg2, strlen(cfg2), check_tmpdir(), "cfg2", &err) == CF_OK);
    CHECK(serve_model_open(MODEL, &c2, &pr, &err) == CF_EINPUT);
    CHECK_CONTAINS(err.msg, "nohead.json");
    serve_config_free(&c2);
    serve_config_free(&c);
    store_close(&s);
}

int main(void) {
    if (setup()) {
        fprintf(stderr, "  setup failed\n");
        return 1;
    }
    RUN(test_predictors_no_future);
    RUN(test_outcome_translation);
    RUN(test_rollouts_reprime);
    RUN(test_serve_model);
    return check_summary();
}
