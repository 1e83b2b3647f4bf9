/* The evaluation run end to end on a synthetic store where the outcome follows a risk code:
 * both baselines learn it; a registered predictor sees train and tuning rows in fit and only
 * held-out rows, one patient per call, in predict, and never an event after a prediction time;
 * metrics.json carries its AUROC exactly; the report is self-contained and says how few
 * patients it rests on; the model card says who decides. */
#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "check.h"
#include "eval/eval.h"
#include "ml/logreg.h"
#include "store/store.h"
#include "tasks/task.h"
#include "util/timeutil.h"

#define H (INT64_C(3600) * USEC_PER_SEC)
#define D USEC_PER_DAY
#define NSUBJ 400

static uint64_t rs = 88172645463325252ULL;
static double urand(void) {
    rs ^= rs << 13;
    rs ^= rs >> 7;
    rs ^= rs << 17;
    return (double)(rs >> 11) / 9007199254740992.0;
}

static int add(store_writer *w, int64_t sid, int64_t t, const char *code, float v, uint64_t row) {
    cf_err err = {0};
    int64_t c = store_writer_code(w, code, strlen(code));
    return c < 0 || store_writer_add(w, sid, t, (uint32_t)c, v, NULL, 0, 0, row, &err);
}

/* plant: a code recorded because of the outcome (a palliative-care note for nearly everyone who
 * will die, two hours after admission, before the prediction time): a leak. */
static const char *make_store(int plant) {
    static char paths[2][512];
    char *path = paths[plant != 0];
    snprintf(path, 512, "%s/synthetic%s.store", check_tmpdir(), plant ? "_leak" : "");
    rs = 88172645463325252ULL;
    store_writer *w;
    cf_err err = {0};
    if (store_writer_open(&w, path, NULL, &err) || store_writer_source(w, "synthetic") != 0) return NULL;
    uint64_t row = 1;
    int bad = 0;
    for (int i = 0; i < NSUBJ; i++) {
        int64_t sid = 5000 + i, t0 = days_from_civil(2015, 1, 1) * D + (int64_t)(urand() * 1000) * D + 8 * H;
        int risk = urand() < 0.3, die = urand() < (risk ? 0.7 : 0.05);
        bad |= add(w, sid, TIME_NULL, urand() < 0.5 ? "GENDER//F" : "GENDER//M", NAN, row);
        bad |= add(w, sid, days_from_civil(1940 + (int)(urand() * 50), 1, 1) * D, "MEDS_BIRTH", NAN, row);
        if (risk) bad |= add(w, sid, t0 - 30 * D, "DIAGNOSIS//RISK", NAN, row + 1);
        bad |= add(w, sid, t0 - 400 * D, "DIAGNOSIS//OTHER", NAN, row + 1);
        bad |= add(w, sid, t0, "HOSPITAL_ADMISSION//EW EMER.//EMERGENCY ROOM", NAN, row + 2);
        bad |= add(w, sid, t0, urand() < 0.5 ? "INSURANCE//Medicare" : "INSURANCE//Private", NAN, row + 2);
        bad |= add(w, sid, t0 + 2 * H, "LAB//50912//mg/dL", (float)(1 + urand() + risk), row + 3);
        double u = urand();
        if (plant && u < (die ? 0.95 : 0.02)) bad |= add(w, sid, t0 + 2 * H, "NOTE//PALLIATIVE", NAN, row + 3);
        int64_t end = t0 + (3 + (int64_t)(urand() * 6)) * D;
        if (die) {
            bad |= add(w, sid, end, "HOSPITAL_DEATH", NAN, row + 2);
            bad |= add(w, sid, end, "HOSPITAL_DISCHARGE//DIED", NAN, row + 2);
        } else {
            bad |= add(w, sid, end, "HOSPITAL_DISCHARGE//HOME", NAN, row + 2);
        }
        row += 4;
    }
    if (bad) {
        store_writer_abort(w);
        return NULL;
    }
    return store_writer_finish(w, &err) ? NULL : path;
}

/* A predictor that checks what it is shown. */
typedef struct {
    int fit_calls, predict_calls, violations;
    size_t train_rows, tuning_rows, predicted_rows, tuning_predicted;
    int64_t risk_code;
} probe;

static int probe_fit(void *ctx, const store *s, const label_row *train, size_t n_train, const label_row *tuning,
                     size_t n_tuning, cf_err *err) {
    probe *p = ctx;
    p->fit_calls++;
    p->train_rows = n_train;
    p->tuning_rows = n_tuning;
    for (size_t i = 0; i < n_train; i++) p->violations += train[i].split != SPLIT_TRAIN;
    for (size_t i = 0; i < n_tuning; i++) p->violations += tuning[i].split != SPLIT_TUNING;
    p->risk_code = store_find_code(s, "DIAGNOSIS//RISK");
    return CF_OK;
}

static int probe_predict(void *ctx, const store *s, const label_row *rows, size_t n, float *probs, cf_err *err) {
    probe *p = ctx;
    /* held-out rows one patient per call (as a point-of-care request), then the tuning rows
     * in one call (for recalibration and stacking); never a train row */
    int tuning = n && rows[0].split == SPLIT_TUNING;
    if (!tuning) p->predict_calls++;
    for (size_t i = 0; i < n; i++) {
        const label_row *r = &rows[i];
        p->violations += r->split != (tuning ? SPLIT_TUNING : SPLIT_HELD_OUT);
        if (!tuning) p->violations += r->subject_index != rows[0].subject_index;
        int risk = 0;
        for (uint64_t e = s->subject_start[r->subject_index]; e < r->history_end; e++) {
            p->violations += s->time[e] > r->prediction_time;
            risk |= (int64_t)s->code[e] == p->risk_code;
        }
        probs[i] = risk ? 0.8f : 0.1f;
        if (tuning) p->tuning_predicted++;
        else p->predicted_rows++;
    }
    return CF_OK;
}

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) n = 0;
    if (b) b[n] = 0;
    fclose(f);
    return b;
}

static size_t count_sub(const char *h, const char *n) {
    size_t k = 0;
    for (const char *p = h; (p = strstr(p, n)); p += strlen(n)) k++;
    return k;
}

static const cJSON *predictor(const cJSON *root, const char *name) {
    const cJSON *p;
    cJSON_ArrayForEach(p, cJSON_GetObjectItem(root, "predictors")) {
        const cJSON *nm = cJSON_GetObjectItem(p, "name");
        if (cJSON_IsString(nm) && !strcmp(nm->valuestring, name)) return p;
    }
    return NULL;
}

static double auroc_of(const cJSON *p) {
    const cJSON *v = cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(p, "held_out"), "auroc"), "value");
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static void test_eval_run(void) {
    const char *sp = make_store(0);
    REQUIRE(sp);
    char task[512], out[512], path[600];
    snprintf(task, sizeof task, "%s/tasks/in_hospital_mortality.task", check_root());
    snprintf(out, sizeof out, "%s/eval_out", check_tmpdir());
    probe pr = {0};
    eval_predictor extra = {.name = "probe", .description = "test predictor", .fit = probe_fit,
                            .predict = probe_predict, .ctx = &pr};
    eval_config cfg = {.task_path = task, .store_path = sp, .out_dir = out, .baselines = 3,
                       .boot = {.n_boot = 200, .seed = 3}, .baseline = {.seed = 3, .threads = 1},
                       .small_patients = 1000, .quiet = 1, .extra = &extra, .n_extra = 1};
    split_config_default(&cfg.split);
    REQUIRE(split_parse_fractions(&cfg.split, "60/20/20", &(cf_err){0}) == CF_OK);
    cf_err err = {0};
    int rc = eval_run(&cfg, &err);
    if (rc) fprintf(stderr, "eval: %s\n", err.msg);
    REQUIRE(rc == CF_OK);
    CHECK_EQ_INT(pr.fit_calls, 1);
    CHECK_EQ_INT(pr.violations, 0);
    CHECK(pr.train_rows > 150 && pr.tuning_rows > 40);
    CHECK(pr.predicted_rows > 40);
    CHECK_EQ_INT(pr.predict_calls, pr.predicted_rows); /* one admission per patient here */
    CHECK_EQ_INT(pr.tuning_predicted, pr.tuning_rows);

    snprintf(path, sizeof path, "%s/metrics.json", out);
    char *js = slurp(path);
    REQUIRE(js);
    cJSON *root = cJSON_Parse(js);
    free(js);
    REQUIRE(root);
    const cJSON *lr = predictor(root, "logreg"), *xg = predictor(root, "xgboost"), *pb = predictor(root, "probe");
    REQUIRE(lr && xg && pb);
    /* the outcome follows the risk code: both baselines find it */
    CHECK(auroc_of(lr) > 0.75);
    CHECK(auroc_of(xg) > 0.75);
    const cJSON *ho = cJSON_GetObjectItem(pb, "held_out");
    CHECK_EQ_INT(cJSON_GetObjectItem(ho, "rows")->valuedouble, pr.predicted_rows);
    /* the probe's AUROC, recomputed here from the rows it predicted */
    snprintf(path, sizeof path, "%s/predictions.csv", out);
    FILE *f = fopen(path, "r");
    REQUIRE(f);
    char line[512];
    REQUIRE(fgets(line, sizeof line, f));
    /* the record-position probe, a floor, comes last */
    CHECK_EQ_STR(line, "subject_id,prediction_time,boolean_value,logreg,xgboost,probe,record_position\n");
    float p[NSUBJ];
    uint8_t y[NSUBJ];
    size_t n = 0;
    while (n < NSUBJ && fgets(line, sizeof line, f)) {
        char *c1 = strchr(line, ','), *c2 = c1 ? strchr(c1 + 1, ',') : NULL, *c3 = c2 ? strchr(c2 + 1, ',') : NULL;
        char *c4 = c3 ? strchr(c3 + 1, ',') : NULL, *c5 = c4 ? strchr(c4 + 1, ',') : NULL;
        REQUIRE(c5);
        y[n] = !strncmp(c2 + 1, "true", 4);
        p[n++] = strtof(c5 + 1, NULL);
    }
    fclose(f);
    CHECK_EQ_INT(n, pr.predicted_rows);
    CHECK_NEAR(auroc_of(pb), eval_auroc(p, y, n), 1e-9);
    /* subgroups are there with counts */
    const cJSON *sex = cJSON_GetObjectItem(cJSON_GetObjectItem(lr, "subgroups"), "sex");
    CHECK(cJSON_GetArraySize(sex) == 2);
    double rows = 0;
    const cJSON *g;
    cJSON_ArrayForEach(g, sex) rows += cJSON_GetObjectItem(g, "rows")->valuedouble;
    CHECK_NEAR(rows, (double)n, 0);
    CHECK(cJSON_IsTrue(cJSON_GetObjectItem(root, "small_sample")));
    cJSON_Delete(root);

    snprintf(path, sizeof path, "%s/report.html", out);
    char *html = slurp(path);
    REQUIRE(html);
    CHECK(count_sub(html, "<svg") >= 4);
    CHECK_EQ_INT(count_sub(html, "<script"), 0);
    CHECK_EQ_INT(count_sub(html, "http"), count_sub(html, "xmlns=\"http://www.w3.org/2000/svg\""));
    CHECK_CONTAINS(html, "This evaluation rests on");
    CHECK_CONTAINS(html, "too few to judge any model");
    CHECK_CONTAINS(html, "a clinician decides");
    free(html);
    snprintf(path, sizeof path, "%s/MODEL_CARD.md", out);
    char *card = slurp(path);
    REQUIRE(card);
    CHECK_CONTAINS(card, "## Intended use");
    CHECK_CONTAINS(card, "## Limitations");
    CHECK_CONTAINS(card, "The model advises; a clinician decides.");
    CHECK_CONTAINS(card, "| logreg | ");
    free(card);

    /* a model path that is no model: said so */
    cfg.model_path = "no.model";
    CHECK_EQ_INT(eval_run(&cfg, &err), CF_EINPUT);
    CHECK_CONTAINS(err.msg, "no.model");
}

/* The single-feature AUROCs of every row of store_path's in-hospital mortality labels. */
static int scan(const char *store_path, eval_leak *lk, task_labels *l, store *s, task_def *t) {
    char task[512];
    cf_err err = {0};
    snprintf(task, sizeof task, "%s/tasks/in_hospital_mortality.task", check_root());
    if (task_load(t, task, &err) || store_open(s, store_path, &err)) return -1;
    task_label_options o = {.seed = 1};
    split_config_default(&o.split);
    split_parse_fractions(&o.split, "60/20/20", &err);
    if (task_label(t, s, &o, l, &err)) return -1;
    label_row *train = malloc((l->n ? l->n : 1) * sizeof *train);
    size_t n = 0;
    for (size_t i = 0; i < l->n; i++)
        if (l->rows[i].split == SPLIT_TRAIN) train[n++] = l->rows[i];
    int rc = eval_leak_scan(lk, s, l, train, n, NULL, &err);
    free(train);
    if (rc) fprintf(stderr, "leak scan: %s\n", err.msg);
    return rc;
}

/* A planted single-feature leak (a note written because the patient is dying, before the
 * prediction time) trips the alarm, first in the list, in metrics.json, the report and the card;
 * the same store without it trips nothing over the threshold. */
static void test_leak_alarm(void) {
    const char *clean = make_store(0), *leaky = make_store(1);
    REQUIRE(clean && leaky);
    eval_leak lk;
    task_labels l;
    store s;
    task_def t;
    REQUIRE(scan(clean, &lk, &l, &s, &t) == 0);
    eval_leak_flag(&lk, 0.99, "a model", 0);
    CHECK(lk.n_features > 5);
    /* the real signal (the risk code, AUROC about 0.87) stays under the threshold */
    for (size_t i = 0; i < lk.n_features; i++) CHECK(!(lk.top[i].flag & EVAL_LEAK_OVER_THRESHOLD));
    CHECK_EQ_INT(lk.n_flagged, 0);
    CHECK(lk.top[0].auroc > 0.8); /* and is the strongest */
    eval_leak_free(&lk);
    task_labels_free(&l);
    store_close(&s);
    task_free(&t);

    REQUIRE(scan(leaky, &lk, &l, &s, &t) == 0);
    eval_leak_flag(&lk, 0.99, "a model", 0);
    REQUIRE(lk.n_top > 0);
    CHECK(!strncmp(lk.top[0].name, "NOTE//PALLIATIVE count", 22));
    CHECK(lk.top[0].flag & EVAL_LEAK_OVER_THRESHOLD);
    CHECK(lk.top[0].higher_means_outcome);
    CHECK(lk.n_flagged >= 1);
    /* its AUROC, recomputed here as the AUROC of "has the note" over every row (metrics.c) */
    int64_t note = store_find_code(&s, "NOTE//PALLIATIVE");
    float *has = malloc(l.n * sizeof *has);
    uint8_t *y = malloc(l.n);
    REQUIRE(has && y && note >= 0);
    for (size_t i = 0; i < l.n; i++) {
        has[i] = 0;
        y[i] = l.rows[i].label;
        for (uint64_t e = s.subject_start[l.rows[i].subject_index]; e < l.rows[i].history_end; e++)
            if ((int64_t)s.code[e] == note) has[i] = 1;
    }
    CHECK_NEAR(lk.top[0].auroc, eval_auroc(has, y, l.n), 1e-12);
    CHECK(lk.top[0].auroc > 0.9);
    free(has);
    free(y);
    eval_leak_free(&lk);
    task_labels_free(&l);
    store_close(&s);
    task_free(&t);

    /* and the full run says so everywhere */
    char task[512], out[512], path[600];
    snprintf(task, sizeof task, "%s/tasks/in_hospital_mortality.task", check_root());
    snprintf(out, sizeof out, "%s/eval_leak", check_tmpdir());
    eval_config cfg = {.task_path = task, .store_path = leaky, .out_dir = out, .baselines = 1,
                       .boot = {.n_boot = 50, .seed = 3}, .baseline = {.seed = 3, .threads = 1},
                       .small_patients = 1000, .quiet = 1};
    split_config_default(&cfg.split);
    cf_err err = {0};
    REQUIRE(split_parse_fractions(&cfg.split, "60/20/20", &err) == CF_OK);
    REQUIRE(eval_run(&cfg, &err) == CF_OK);
    snprintf(path, sizeof path, "%s/metrics.json", out);
    char *js = slurp(path);
    cJSON *root = js ? cJSON_Parse(js) : NULL;
    free(js);
    REQUIRE(root);
    const cJSON *al = cJSON_GetObjectItem(root, "leakage_alarms");
    CHECK(cJSON_GetObjectItem(al, "features_flagged")->valuedouble >= 1);
    const cJSON *first = cJSON_GetArrayItem(cJSON_GetObjectItem(al, "strongest_single_features"), 0);
    CHECK_CONTAINS(cJSON_GetObjectItem(first, "feature")->valuestring, "NOTE//PALLIATIVE");
    CHECK(cJSON_IsTrue(cJSON_GetObjectItem(first, "flagged")));
    /* the probe is there as a floor */
    const cJSON *pr = predictor(root, "record_position");
    REQUIRE(pr);
    CHECK_EQ_STR(cJSON_GetObjectItem(pr, "role")->valuestring, "floor");
    cJSON_Delete(root);
    snprintf(path, sizeof path, "%s/report.html", out);
    char *html = slurp(path);
    REQUIRE(html);
    CHECK_CONTAINS(html, "alone reach");
    CHECK_CONTAINS(html, "(strongest: NOTE//PALLIATIVE count");
    CHECK_CONTAINS(html, "<tr class=\"flag\"><td>NOTE//PALLIATIVE count");
    free(html);
    snprintf(path, sizeof path, "%s/MODEL_CARD.md", out);
    char *card = slurp(path);
    REQUIRE(card);
    CHECK_CONTAINS(card, "- flagged: NOTE//PALLIATIVE count");
    free(card);
}


/* Reads one predictor's column of a predictions.csv into p/y at *n; returns the rows read. */
static size_t read_col(const char *path, const char *name, float *p, uint8_t *y, size_t *n) {
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    char line[2048];
    int col = -1;
    if (fgets(line, sizeof line, f)) {
        int k = 0;
        for (char *s = line, *tok; (tok = strsep(&s, ",\n"));) {
            if (!strcmp(tok, name)) col = k;
            k++;
        }
    }
    size_t got = 0;
    while (col >= 0 && fgets(line, sizeof line, f)) {
        int k = 0;
        for (char *s = line, *tok; (tok = strsep(&s, ",\n")); k++) {
            if (k == 2) y[*n] = !strcmp(tok, "true");
            if (k == col) p[*n] = strtof(tok, NULL);
        }
        (*n)++, got++;
    }
    fclose(f);
    return got;
}

/* Writes dst/ as a run of the same fold as src/ holding only predictor col, renamed to as, and
 * (when also is set) predictor also under its own name, with the rows in reverse order (another
 * store may list them in another order): what a second evaluation of the fold with another
 * predictor leaves. Returns 0 on success. */
static int copy_run_column(const char *src, const char *dst, const char *col, const char *as, const char *also) {
    char from[800], to[800];
    if (mkdir(dst, 0755) && errno != EEXIST) return -1;
    snprintf(from, sizeof from, "%s/metrics.json", src);
    snprintf(to, sizeof to, "%s/metrics.json", dst);
    char *m = slurp(from);
    FILE *o = m ? fopen(to, "w") : NULL;
    if (!o) return free(m), -1;
    fputs(m, o);
    fclose(o);
    free(m);
    const char *files[2] = {"predictions.csv", "predictions_tuning.csv"};
    for (int f = 0; f < 2; f++) {
        snprintf(from, sizeof from, "%s/%s", src, files[f]);
        snprintf(to, sizeof to, "%s/%s", dst, files[f]);
        char *txt = slurp(from);
        if (!txt) return -1;
        char *lines[4096];
        int nl = 0, c = -1, c2 = -1;
        for (char *sv = NULL, *l = strtok_r(txt, "\n", &sv); l && nl < 4096; l = strtok_r(NULL, "\n", &sv)) lines[nl++] = l;
        if (nl < 1) return free(txt), -1;
        char *fh[64];
        int nh = 0;
        for (char *sv = lines[0], *tok; nh < 64 && (tok = strsep(&sv, ","));) fh[nh++] = tok;
        for (int k = 0; k < nh; k++) {
            if (!strcmp(fh[k], col)) c = k;
            if (also && !strcmp(fh[k], also)) c2 = k;
        }
        o = c < 3 || (also && c2 < 3) ? NULL : fopen(to, "w");
        if (!o) return free(txt), -1;
        fprintf(o, "subject_id,prediction_time,boolean_value,%s%s%s\n", as, also ? "," : "", also ? also : "");
        for (int i = nl - 1; i >= 1; i--) {
            char *fld[64];
            int nf = 0;
            for (char *sv = lines[i], *tok; nf < 64 && (tok = strsep(&sv, ","));) fld[nf++] = tok;
            if (c < nf && (!also || c2 < nf))
                fprintf(o, "%s,%s,%s,%s%s%s\n", fld[0], fld[1], fld[2], fld[c], also ? "," : "", also ? fld[c2] : "");
        }
        fclose(o);
        free(txt);
    }
    return 0;
}

/* The in-hospital mortality labels of a synthetic store (default split). */
static void label_store(const char *sp, task_def *t, store *s, task_labels *l) {
    char task[512];
    snprintf(task, sizeof task, "%s/tasks/in_hospital_mortality.task", check_root());
    cf_err err = {0};
    REQUIRE(task_load(t, task, &err) == CF_OK && store_open(s, sp, &err) == CF_OK);
    task_label_options lo = {.seed = 1};
    split_config_default(&lo.split);
    REQUIRE(task_label(t, s, &lo, l, &err) == CF_OK);
}

/* The value aggregates of one row against the events themselves; two folds evaluated and
 * pooled: every row once, the pooled AUROC that of the rows' own predictions, differences
 * paired against a reference, a stack, and a patient held out twice refused; a clinical score
 * read from the records; and an external evaluation on another store. */
static void test_values_folds_pool(void) {
    const char *sp = make_store(0), *leaky = make_store(1);
    REQUIRE(sp && leaky);
    char task[512], out0[600], out1[600], outp[600], path[700];
    snprintf(task, sizeof task, "%s/tasks/in_hospital_mortality.task", check_root());
    cf_err err = {0};

    /* value aggregates of the lab (one value per stay, two hours after admission) */
    task_def t;
    store s;
    task_labels l;
    label_store(sp, &t, &s, &l);
    eval_value_featurizer vf;
    REQUIRE(eval_value_features_fit(&vf, &s, &l, l.rows, l.n, NULL, &err) == CF_OK);
    CHECK_EQ_INT(vf.n_codes_kept, 1);
    ml_csr X;
    REQUIRE(eval_value_features_build(&vf, l.rows, 1, &X, &err) == CF_OK);
    int64_t lab = store_find_code(&s, "LAB//50912//mg/dL");
    float v = NAN;
    for (uint64_t e = s.subject_start[l.rows[0].subject_index]; e < l.rows[0].history_end; e++)
        if ((int64_t)s.code[e] == lab) v = s.numeric[e];
    REQUIRE(!isnan(v));
    /* every window holds the one value: min, max, mean in 5 windows, first, last */
    CHECK_EQ_INT(X.nnz, EVAL_VALUE_COLS_PER_CODE);
    for (size_t k = 0; k < X.nnz; k++) CHECK(X.val[k] == v);
    char name[600];
    CHECK_EQ_STR(eval_value_feature_name(&vf, 1, name, sizeof name), "LAB//50912//mg/dL max 1d");
    ml_csr_free(&X);
    eval_value_featurizer_free(&vf);
    task_labels_free(&l);
    store_close(&s);
    task_free(&t);

    /* two folds */
    const char *outs[2] = {out0, out1};
    for (int j = 0; j < 2; j++) {
        snprintf((char *)outs[j], 600, "%s/eval_fold%d", check_tmpdir(), j);
        eval_config cfg = {.task_path = task, .store_path = sp, .out_dir = outs[j],
                           .baselines = 1 << EVAL_BASELINE_LOGREG | 1 << EVAL_BASELINE_XGBOOST_VALUES,
                           .boot = {.n_boot = 50, .seed = 3}, .baseline = {.seed = 3, .threads = 1},
                           .small_patients = 1000, .quiet = 1, .scores = {"LAB=LAB//50912//mg/dL"}, .n_scores = 1};
        split_config_default(&cfg.split);
        REQUIRE(split_parse_fractions(&cfg.split, "60/20/20", &err) == CF_OK);
        REQUIRE(split_set_fold(&cfg.split, j, 2, &err) == CF_OK);
        int rc = eval_run(&cfg, &err);
        if (rc) fprintf(stderr, "eval: %s\n", err.msg);
        REQUIRE(rc == CF_OK);
    }
    snprintf(outp, sizeof outp, "%s/eval_pool", check_tmpdir());
    eval_pool_config pc = {.runs = outs, .n_runs = 2, .refs = {"logreg"}, .n_refs = 1,
                           .stacks = {"logreg+xgboost_values"}, .n_stacks = 1, .n_boot = 100, .seed = 1,
                           .out_dir = outp, .quiet = 1};
    REQUIRE(eval_pool(&pc, &err) == CF_OK);
    /* the pooled rows are every labelled row once; the pooled logreg AUROC is the AUROC of the
     * two runs' own predictions put together */
    float p[2 * NSUBJ], ps[2 * NSUBJ];
    uint8_t y[2 * NSUBJ], ys[2 * NSUBJ];
    size_t n = 0, ns = 0;
    for (int j = 0; j < 2; j++) {
        snprintf(path, sizeof path, "%s/predictions.csv", outs[j]);
        CHECK(read_col(path, "logreg", p, y, &n) > 50);
    }
    snprintf(path, sizeof path, "%s/predictions.csv", outp);
    CHECK_EQ_INT(read_col(path, "score_LAB", ps, ys, &ns), n);
    snprintf(path, sizeof path, "%s/pool.json", outp);
    char *js = slurp(path);
    cJSON *root = js ? cJSON_Parse(js) : NULL;
    free(js);
    REQUIRE(root);
    CHECK_EQ_INT(cJSON_GetObjectItem(root, "rows")->valuedouble, n);
    const cJSON *lr = predictor(root, "logreg"), *st = predictor(root, "stack(logreg+xgboost_values)"),
                *sc = predictor(root, "score_LAB");
    REQUIRE(lr && st && sc);
    CHECK_NEAR(cJSON_GetObjectItem(cJSON_GetObjectItem(lr, "auroc"), "value")->valuedouble, eval_auroc(p, y, n), 1e-9);
    const cJSON *self = cJSON_GetObjectItem(cJSON_GetObjectItem(lr, "auroc_minus"), "logreg");
    CHECK_NEAR(cJSON_GetObjectItem(self, "value")->valuedouble, 0, 0);
    CHECK(cJSON_IsTrue(cJSON_GetObjectItem(st, "stacked")));
    /* the lab carries the risk, so its score ranks the outcome (AUROC of the value itself) */
    CHECK(cJSON_GetObjectItem(cJSON_GetObjectItem(sc, "auroc"), "value")->valuedouble > 0.6);
    cJSON_Delete(root);
    /* the same fold twice: refused */
    const char *twice[2] = {out0, out0};
    pc.runs = twice;
    CHECK(eval_pool(&pc, &err) == CF_EINPUT);

    /* runs of one fold with other predictors (the model evaluated apart from the baselines) join:
     * rows matched by subject and time in whatever order, so the pooled copy equals the original;
     * a predictor both runs have with the same predictions (a floor every run computes) is kept once */
    char cp0[600], cp1[600];
    snprintf(cp0, sizeof cp0, "%s/eval_fold0_copy", check_tmpdir());
    snprintf(cp1, sizeof cp1, "%s/eval_fold1_copy", check_tmpdir());
    REQUIRE(copy_run_column(out0, cp0, "logreg", "logreg_copy", "logreg") == 0);
    REQUIRE(copy_run_column(out1, cp1, "logreg", "logreg_copy", "logreg") == 0);
    const char *joined[4] = {out0, cp1, cp0, out1};
    pc.runs = joined;
    pc.n_runs = 4;
    REQUIRE(eval_pool(&pc, &err) == CF_OK);
    snprintf(path, sizeof path, "%s/pool.json", outp);
    js = slurp(path);
    root = js ? cJSON_Parse(js) : NULL;
    free(js);
    REQUIRE(root);
    CHECK_EQ_INT(cJSON_GetObjectItem(root, "rows")->valuedouble, n);
    CHECK_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItem(root, "runs")), 2);
    const cJSON *cpy = predictor(root, "logreg_copy");
    REQUIRE(cpy);
    CHECK_NEAR(cJSON_GetObjectItem(cJSON_GetObjectItem(cpy, "auroc"), "value")->valuedouble, eval_auroc(p, y, n), 1e-9);
    const cJSON *dz = cJSON_GetObjectItem(cJSON_GetObjectItem(cpy, "auroc_minus"), "logreg");
    CHECK_NEAR(cJSON_GetObjectItem(dz, "value")->valuedouble, 0, 1e-12);
    cJSON_Delete(root);
    /* a run of the fold that lacks a row is refused, naming both runs */
    snprintf(path, sizeof path, "%s/predictions.csv", cp0);
    char *pr = slurp(path);
    REQUIRE(pr);
    FILE *o = fopen(path, "w");
    REQUIRE(o);
    char *last = strrchr(pr, '\n');
    if (last) *last = 0;
    last = strrchr(pr, '\n');
    if (last) last[1] = 0; /* drop the last row */
    fputs(pr, o);
    fclose(o);
    free(pr);
    pc.n_runs = 4;
    CHECK(eval_pool(&pc, &err) == CF_EINPUT);
    CHECK_CONTAINS(err.msg, "eval_fold0_copy");
    /* a predictor of the same name with other predictions is refused */
    char cpx[600];
    snprintf(cpx, sizeof cpx, "%s/eval_fold0_clash", check_tmpdir());
    REQUIRE(copy_run_column(out0, cpx, "xgboost_values", "logreg", NULL) == 0);
    const char *clash[3] = {out0, cpx, out1};
    pc.runs = clash;
    pc.n_runs = 3;
    CHECK(eval_pool(&pc, &err) == CF_EINPUT);
    CHECK_CONTAINS(err.msg, "other predictions");
    pc.n_runs = 2;

    /* external evaluation: fit on this store, every row of another held out */
    char oute[600];
    snprintf(oute, sizeof oute, "%s/eval_external", check_tmpdir());
    eval_config ec = {.task_path = task, .store_path = sp, .eval_store_path = leaky, .out_dir = oute,
                      .baselines = 1 << EVAL_BASELINE_LOGREG | 1 << EVAL_BASELINE_XGBOOST_VALUES,
                      .boot = {.n_boot = 50, .seed = 3}, .baseline = {.seed = 3, .threads = 1},
                      .small_patients = 1000, .quiet = 1};
    split_config_default(&ec.split);
    REQUIRE(split_parse_fractions(&ec.split, "80/20/0", &err) == CF_OK);
    int rc = eval_run(&ec, &err);
    if (rc) fprintf(stderr, "external: %s\n", err.msg);
    REQUIRE(rc == CF_OK);
    label_store(leaky, &t, &s, &l);
    snprintf(path, sizeof path, "%s/predictions.csv", oute);
    n = 0;
    CHECK_EQ_INT(read_col(path, "logreg", p, y, &n), l.n);
    CHECK(eval_auroc(p, y, n) > 0.75); /* the risk code, found by string in the other store */
    task_labels_free(&l);
    store_close(&s);
    task_free(&t);
}

/* AUROC by counting pairs over groups of tied scores: group g has score s[g], pos[g] positive
 * and neg[g] negative rows (an independent check of the pool's rankings). */
static double group_auroc(const double *s, const int *pos, const int *neg, int G) {
    double num = 0, P = 0, N = 0;
    for (int g = 0; g < G; g++) {
        P += pos[g], N += neg[g];
        for (int h = 0; h < G; h++) num += pos[g] * neg[h] * (s[g] > s[h] ? 1.0 : s[g] == s[h] ? 0.5 : 0.0);
    }
    return num / (P * N);
}

/* Writes a run of clinfm eval by hand: fold J of 2, predictors m (score per group) and ref (0.5
 * everywhere), two groups of 10 rows in the tuning and held-out files with pos positives each. */
static int write_run(const char *dir, int fold, const double *score, const int *tune_pos, const int *held_pos) {
    char path[700];
    if (mkdir(dir, 0777) != 0 && errno != EEXIST) return -1;
    snprintf(path, sizeof path, "%s/metrics.json", dir);
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    if (fold < 0) /* a single split (train on one set, evaluate on another): no fold; rows as fold -fold-1's */
        fprintf(f, "{\"task\":{\"name\":\"t\"},\"split\":{\"train_percent\":90},\"predictors\":[]}\n");
    else
        fprintf(f, "{\"task\":{\"name\":\"t\"},\"split\":{\"fold\":%d,\"folds\":2},\"predictors\":[]}\n", fold);
    if (fold < 0) fold = -fold - 1;
    fclose(f);
    for (int part = 0; part < 2; part++) {
        snprintf(path, sizeof path, "%s/%s", dir, part ? "predictions.csv" : "predictions_tuning.csv");
        if (!(f = fopen(path, "w"))) return -1;
        fprintf(f, "subject_id,prediction_time,boolean_value,m,ref\n");
        for (int g = 0; g < 2; g++)
            for (int k = 0; k < 10; k++)
                fprintf(f, "%d,2100-01-01T00:00:00,%s,%g,0.5\n", 1000 * fold + 100 * part + 10 * g + k + 1,
                        k < (part ? held_pos : tune_pos)[g] ? "true" : "false", score[g]);
        fclose(f);
    }
    return 0;
}

/* The teacher's soft targets (--ft-distill) are out of fold: a train row's target comes from a
 * teacher that never saw the row, so flipping its label leaves its target as it was while the
 * rows of other folds, whose teachers it trained, move; and the targets still carry the risk. */
static void test_distill_out_of_fold(void) {
    const char *sp = make_store(0);
    REQUIRE(sp);
    cf_err err = {0};
    task_def t;
    store s;
    task_labels l;
    label_store(sp, &t, &s, &l);
    static label_row tr[NSUBJ], tu[NSUBJ];
    size_t ntr = 0, ntu = 0;
    for (size_t i = 0; i < l.n; i++) {
        if (l.rows[i].split == SPLIT_TRAIN && ntr < NSUBJ) tr[ntr++] = l.rows[i];
        if (l.rows[i].split == SPLIT_TUNING && ntu < NSUBJ) tu[ntu++] = l.rows[i];
    }
    REQUIRE(ntr > 100 && ntu > 10);
    static float p[2 * NSUBJ], q[NSUBJ];
    static uint8_t y[NSUBJ];
    eval_baseline_options bo = {.seed = 3, .threads = 1};
    /* stride 2: the column of a wider matrix, the other column untouched */
    for (size_t i = 0; i < 2 * ntr; i++) p[i] = -7.0f;
    double oof = NAN;
    REQUIRE(eval_distill_column(&s, &l, EVAL_BASELINE_XGBOOST_VALUES, &bo, tr, ntr, tu, ntu, 5, 11, p, 2, &oof, &err) == CF_OK);
    int bad = 0;
    for (size_t i = 0; i < ntr; i++) {
        bad += !(p[2 * i] > 0.0f && p[2 * i] < 1.0f) || p[2 * i + 1] != -7.0f;
        q[i] = p[2 * i], y[i] = tr[i].label;
    }
    CHECK_EQ_INT(bad, 0);
    /* the outcome follows the risk code (70% against 5%): out of fold, the teacher still sees it */
    CHECK(eval_auroc(q, y, ntr) > 0.75);
    /* the reported out-of-fold log loss is the targets' own against the labels */
    CHECK_NEAR(oof, ml_log_loss(q, y, ntr), 1e-12);
    /* flip one row's label: its own target stays, bit for bit; other folds' targets move */
    size_t flip = ntr / 2;
    tr[flip].label ^= 1;
    static float p2[NSUBJ];
    REQUIRE(eval_distill_column(&s, &l, EVAL_BASELINE_XGBOOST_VALUES, &bo, tr, ntr, tu, ntu, 5, 11, p2, 1, NULL, &err) == CF_OK);
    CHECK(p2[flip] == q[flip]);
    size_t moved = 0;
    for (size_t i = 0; i < ntr; i++) moved += p2[i] != q[i];
    CHECK(moved > 0);
    /* the same seed, the same folds: the unflipped run again gives the same targets */
    tr[flip].label ^= 1;
    REQUIRE(eval_distill_column(&s, &l, EVAL_BASELINE_XGBOOST_VALUES, &bo, tr, ntr, tu, ntu, 5, 11, p2, 1, NULL, &err) == CF_OK);
    CHECK(memcmp(p2, q, ntr * sizeof *q) == 0);
    /* one fold is no teacher out of fold */
    CHECK(eval_distill_column(&s, &l, EVAL_BASELINE_XGBOOST_VALUES, &bo, tr, ntr, tu, ntu, 1, 11, p2, 1, NULL, &err) == CF_EINPUT);
    task_labels_free(&l);
    store_close(&s);
    task_free(&t);
}

/* The pooled AUROC after per-run recalibration. Two folds whose model is calibrated differently
 * (fold 0 scores 0.2/0.4, fold 1 scores 0.6/0.8); each score group's death rate is set by its
 * tuning rows (0.1, 0.3 in fold 0; 0.2, 0.4 in fold 1), and Platt scaling on two groups
 * reproduces the groups' rates, so the recalibrated held-out rows rank 0.1 < 0.2 < 0.3 < 0.4
 * across folds. Three rankings differ on purpose: the raw one, the one recalibration on the
 * held-out rows would give (rates 0.3, 0.5 and 0.1, 0.2), and a single recalibration of both
 * folds together (monotone, so the raw ranking again): only the first, tuning-fitted, per-fold
 * ranking passes. */
static void test_pool_recalibrated(void) {
    char d0[600], d1[600], outp[600], path[700];
    snprintf(d0, sizeof d0, "%s/recal_fold0", check_tmpdir());
    snprintf(d1, sizeof d1, "%s/recal_fold1", check_tmpdir());
    snprintf(outp, sizeof outp, "%s/recal_pool", check_tmpdir());
    const double s0[2] = {0.2, 0.4}, s1[2] = {0.6, 0.8};
    const int t0[2] = {1, 3}, t1[2] = {2, 4}, h0[2] = {3, 5}, h1[2] = {1, 2};
    REQUIRE(write_run(d0, 0, s0, t0, h0) == 0 && write_run(d1, 1, s1, t1, h1) == 0);
    const char *runs[2] = {d0, d1};
    eval_pool_config pc = {.runs = runs, .n_runs = 2, .refs = {"ref"}, .n_refs = 1, .n_boot = 50, .seed = 1,
                           .out_dir = outp, .quiet = 1};
    cf_err err = {0};
    REQUIRE(eval_pool(&pc, &err) == CF_OK);
    /* held-out groups in the order fold 0 low, fold 0 high, fold 1 low, fold 1 high */
    const int pos[4] = {3, 5, 1, 2}, neg[4] = {7, 5, 9, 8};
    const double raw[4] = {0.2, 0.4, 0.6, 0.8}, tuned[4] = {0.1, 0.3, 0.2, 0.4}, held[4] = {0.3, 0.5, 0.1, 0.2};
    const double want = group_auroc(tuned, pos, neg, 4), want_raw = group_auroc(raw, pos, neg, 4);
    CHECK(fabs(want - group_auroc(held, pos, neg, 4)) > 0.1 && fabs(want - want_raw) > 0.1);
    /* ref is constant: recalibrated, each fold's tuning death rate (0.2 and 0.3) */
    const double ref_rates[4] = {0.2, 0.2, 0.3, 0.3};
    const double want_ref = group_auroc(ref_rates, pos, neg, 4);
    const double run0 = group_auroc(s0, pos, neg, 2), run1 = group_auroc(s1, pos + 2, neg + 2, 2);

    snprintf(path, sizeof path, "%s/pool.json", outp);
    char *js = slurp(path);
    cJSON *root = js ? cJSON_Parse(js) : NULL;
    free(js);
    REQUIRE(root);
    const cJSON *m = predictor(root, "m"), *rf = predictor(root, "ref");
    REQUIRE(m && rf);
    CHECK_NEAR(cJSON_GetObjectItem(cJSON_GetObjectItem(m, "auroc"), "value")->valuedouble, want_raw, 1e-9);
    const cJSON *ar = cJSON_GetObjectItem(m, "auroc_recalibrated");
    REQUIRE(ar);
    CHECK_NEAR(cJSON_GetObjectItem(ar, "value")->valuedouble, want, 1e-9);
    CHECK_NEAR(cJSON_GetObjectItem(cJSON_GetObjectItem(rf, "auroc_recalibrated"), "value")->valuedouble, want_ref, 1e-9);
    const cJSON *rd = cJSON_GetObjectItem(cJSON_GetObjectItem(m, "auroc_recalibrated_minus"), "ref");
    REQUIRE(rd);
    CHECK_NEAR(cJSON_GetObjectItem(rd, "value")->valuedouble, want - want_ref, 1e-9);
    const cJSON *ra = cJSON_GetObjectItem(m, "auroc_runs");
    REQUIRE(ra && cJSON_GetObjectItem(ra, "mean"));
    CHECK_NEAR(cJSON_GetObjectItem(ra, "mean")->valuedouble, (run0 + run1) / 2, 1e-9);
    CHECK_NEAR(cJSON_GetObjectItem(ra, "min")->valuedouble, run0 < run1 ? run0 : run1, 1e-9);
    CHECK_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItem(ra, "values")), 2);
    cJSON_Delete(root);
    /* the recalibrated probabilities themselves: each group's tuning death rate */
    float p[40];
    uint8_t y[40];
    size_t n = 0;
    snprintf(path, sizeof path, "%s/predictions.csv", outp);
    REQUIRE(read_col(path, "m_recalibrated", p, y, &n) == 40);
    for (int g = 0; g < 4; g++) CHECK_NEAR(p[10 * g], tuned[g], 1e-3);
    snprintf(path, sizeof path, "%s/pool.md", outp);
    char *md = slurp(path);
    REQUIRE(md);
    CHECK_CONTAINS(md, "AUROC, runs recalibrated");
    free(md);
}

/* Two folds of two runs each (runs[] in the order fold 0 a, fold 1 a, fold 0 b, fold 1 b, the
 * paths in d[]), predictor m scoring each fold's two row groups as given, and the pool's out dir:
 * the setting of the --average tests. Fold 0 has 1 and 3 tuning and 3 and 5 held-out deaths in
 * its groups of ten, fold 1 2 and 4, 1 and 2. */
static int two_fold_runs(const char *tag, char d[4][600], char *outp, size_t outp_len, const double *s0a,
                         const double *s0b, const double *s1a, const double *s1b) {
    static const char *const names[4] = {"fold0a", "fold1a", "fold0b", "fold1b"};
    for (int k = 0; k < 4; k++) snprintf(d[k], 600, "%s/%s_%s", check_tmpdir(), tag, names[k]);
    snprintf(outp, outp_len, "%s/%s_pool", check_tmpdir(), tag);
    const int t0[2] = {1, 3}, t1[2] = {2, 4}, h0[2] = {3, 5}, h1[2] = {1, 2};
    return write_run(d[0], 0, s0a, t0, h0) || write_run(d[2], 0, s0b, t0, h0) || write_run(d[1], 1, s1a, t1, h1) ||
           write_run(d[3], 1, s1b, t1, h1);
}

/* A seed ensemble in the pool (--average m): two runs of each fold hold predictor m with other
 * predictions; joined, m is the mean of the two runs' probabilities, on held-out and tuning rows
 * alike. The seeds disagree on purpose (in fold 0 they rank the groups in opposite orders), so
 * the pooled AUROC of the mean differs from either seed's; the recalibrated probabilities are
 * each group's tuning death rate only when the tuning rows were averaged too. A predictor whose
 * predictions agree (ref) is kept once even when named. Without --average the runs are refused,
 * and so are folds averaging different numbers of runs. */
static void test_pool_average(void) {
    char d[4][600], outp[600], path[700];
    const double s0a[2] = {0.2, 0.4}, s0b[2] = {0.6, 0.1}, s1a[2] = {0.6, 0.8}, s1b[2] = {0.3, 0.9};
    REQUIRE(two_fold_runs("avg", d, outp, sizeof outp, s0a, s0b, s1a, s1b) == 0);
    const char *runs[4] = {d[0], d[1], d[2], d[3]};
    eval_pool_config pc = {.runs = runs, .n_runs = 4, .n_boot = 20, .seed = 1, .out_dir = outp, .quiet = 1};
    cf_err err = {0};
    CHECK(eval_pool(&pc, &err) == CF_EINPUT); /* other predictions of m, no --average */
    pc.averages[0] = "m";
    pc.averages[1] = "ref"; /* the same predictions in both runs: kept once, not averaged */
    pc.n_averages = 2;
    pc.n_runs = 3; /* fold 0 averages two runs, fold 1 one */
    CHECK(eval_pool(&pc, &err) == CF_EINPUT);
    pc.n_runs = 4;
    int rc = eval_pool(&pc, &err);
    if (rc) fprintf(stderr, "average: %s\n", err.msg);
    REQUIRE(rc == CF_OK);
    const int pos[4] = {3, 5, 1, 2}, neg[4] = {7, 5, 9, 8};
    const double mean[4] = {0.4, 0.25, 0.45, 0.85}, a[4] = {0.2, 0.4, 0.6, 0.8}, b[4] = {0.6, 0.1, 0.3, 0.9};
    const double want = group_auroc(mean, pos, neg, 4);
    CHECK(fabs(want - group_auroc(a, pos, neg, 4)) > 0.02 && fabs(want - group_auroc(b, pos, neg, 4)) > 0.02);
    snprintf(path, sizeof path, "%s/pool.json", outp);
    char *js = slurp(path);
    cJSON *root = js ? cJSON_Parse(js) : NULL;
    free(js);
    REQUIRE(root);
    const cJSON *m = predictor(root, "m");
    REQUIRE(m);
    CHECK_NEAR(cJSON_GetObjectItem(cJSON_GetObjectItem(m, "auroc"), "value")->valuedouble, want, 1e-9);
    CHECK_EQ_INT(cJSON_GetObjectItem(m, "runs_averaged") ? cJSON_GetObjectItem(m, "runs_averaged")->valueint : 0, 2);
    REQUIRE(predictor(root, "ref"));
    CHECK(!cJSON_GetObjectItem(predictor(root, "ref"), "runs_averaged"));
    CHECK_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItem(root, "runs")), 2);
    cJSON_Delete(root);
    float p[40];
    uint8_t y[40];
    size_t n = 0;
    snprintf(path, sizeof path, "%s/predictions.csv", outp);
    REQUIRE(read_col(path, "m", p, y, &n) == 40);
    for (int g = 0; g < 4; g++) CHECK_NEAR(p[10 * g], mean[g], 1e-6);
    n = 0;
    REQUIRE(read_col(path, "m_recalibrated", p, y, &n) == 40);
    const double rates[4] = {0.1, 0.3, 0.2, 0.4};
    for (int g = 0; g < 4; g++) CHECK_NEAR(p[10 * g], rates[g], 1e-3);
}

/* Pools pc, which must succeed (what names the case in the failure), and reads column col of the
 * pool's predictions.csv into p and y: the rows read. */
static size_t pool_and_read(const eval_pool_config *pc, const char *what, const char *col, float *p, uint8_t *y) {
    cf_err err = {0};
    int rc = eval_pool(pc, &err);
    if (rc) fprintf(stderr, "%s: %s\n", what, err.msg);
    if (rc) return 0;
    char path[700];
    size_t n = 0;
    snprintf(path, sizeof path, "%s/predictions.csv", pc->out_dir);
    return (size_t)read_col(path, col, p, y, &n);
}

/* Two members that both put every row near zero (a fold with one positive: probabilities of 1e-8
 * and 3e-9) are two predictions, not one: with --average m they are averaged like any others. An
 * absolute tolerance of 1e-6 once took them for the same predictor and refused the pool. */
static void test_pool_average_near_zero(void) {
    char d[4][600], outp[600], path[700];
    const double s0a[2] = {2e-8, 4e-8}, s0b[2] = {6e-9, 1e-9}, s1a[2] = {6e-8, 8e-8}, s1b[2] = {3e-9, 9e-9};
    REQUIRE(two_fold_runs("tiny", d, outp, sizeof outp, s0a, s0b, s1a, s1b) == 0);
    const char *runs[4] = {d[0], d[1], d[2], d[3]};
    const char *d0a = d[0], *d0b = d[2], *d1a = d[1], *d1b = d[3];
    const int t0[2] = {1, 3}, h0[2] = {3, 5};
    eval_pool_config pc = {.runs = runs, .n_runs = 4, .n_boot = 20, .seed = 1, .out_dir = outp, .quiet = 1,
                           .averages = {"m"}, .n_averages = 1};
    float p[40];
    uint8_t y[40];
    REQUIRE(pool_and_read(&pc, "near zero", "m", p, y) == 40);
    const double mean[4] = {1.3e-8, 2.05e-8, 3.15e-8, 4.45e-8};
    for (int g = 0; g < 4; g++) CHECK_NEAR(p[10 * g], mean[g], 1e-12);
    /* a fold whose two members agree on every row (each kept the same constant) joins them as their
     * mean, beside a fold that averages two different runs: still "the mean of 2 runs" */
    const double c0[2] = {0.07, 0.07};
    REQUIRE(write_run(d0a, 0, c0, t0, h0) == 0 && write_run(d0b, 0, c0, t0, h0) == 0);
    /* something must differ between two runs of one fold: there, ref (0.5 and 0.6), averaged too */
    for (int part = 0; part < 2; part++) {
        snprintf(path, sizeof path, "%s/%s", d0b, part ? "predictions.csv" : "predictions_tuning.csv");
        char *csv = slurp(path);
        REQUIRE(csv);
        for (char *q = strstr(csv, ",0.5\n"); q; q = strstr(q + 1, ",0.5\n")) q[3] = '6';
        FILE *f = fopen(path, "w");
        REQUIRE(f);
        fputs(csv, f);
        fclose(f);
        free(csv);
    }
    pc.averages[1] = "ref";
    pc.n_averages = 2;
    const char *first[4] = {d0a, d0b, d1a, d1b}; /* the agreeing fold first: its count must not set the mean's */
    pc.runs = first;
    REQUIRE(pool_and_read(&pc, "agreeing fold", "m", p, y) == 40);
    CHECK_NEAR(p[0], 0.07, 1e-7);
    CHECK_NEAR(p[20], 3.15e-8, 1e-12);
    snprintf(path, sizeof path, "%s/pool.json", outp);
    char *js = slurp(path);
    cJSON *root = js ? cJSON_Parse(js) : NULL;
    free(js);
    REQUIRE(root && predictor(root, "m"));
    const cJSON *ra = cJSON_GetObjectItem(predictor(root, "m"), "runs_averaged");
    CHECK_EQ_INT(ra ? ra->valueint : 0, 2);
    cJSON_Delete(root);
    /* a fold with one run beside folds of two is still refused */
    const char *short_fold[3] = {d0a, d1a, d1b};
    pc.runs = short_fold;
    pc.n_runs = 3;
    cf_err err = {0};
    CHECK(eval_pool(&pc, &err) == CF_EINPUT);
}

/* The members of an ensemble evaluated on one single split (bench/p12_eval.sh's set-B form: each
 * trained on all of one set, evaluated on every stay of another) join as runs of one fold do: m is
 * the mean of their probabilities, without --average refused. Two single splits holding out other
 * patients stay two runs side by side (two external sets), not joined. */
static void test_pool_average_single_split(void) {
    char da[600], db[600], dc[600], outp[600], path[700];
    snprintf(da, sizeof da, "%s/single_a", check_tmpdir());
    snprintf(db, sizeof db, "%s/single_b", check_tmpdir());
    snprintf(dc, sizeof dc, "%s/single_other", check_tmpdir());
    snprintf(outp, sizeof outp, "%s/single_pool", check_tmpdir());
    const double sa[2] = {0.2, 0.4}, sb[2] = {0.6, 0.1};
    const int t[2] = {1, 3}, h[2] = {3, 5};
    REQUIRE(write_run(da, -1, sa, t, h) == 0 && write_run(db, -1, sb, t, h) == 0);
    REQUIRE(write_run(dc, -2, sa, t, h) == 0); /* other patients (fold 1's row ids) */
    const char *runs[2] = {da, db};
    eval_pool_config pc = {.runs = runs, .n_runs = 2, .n_boot = 20, .seed = 1, .out_dir = outp, .quiet = 1};
    cf_err err = {0};
    CHECK(eval_pool(&pc, &err) == CF_EINPUT); /* other predictions of m, no --average */
    pc.averages[0] = "m";
    pc.n_averages = 1;
    float p[20];
    uint8_t y[20];
    REQUIRE(pool_and_read(&pc, "single split", "m", p, y) == 20);
    CHECK_NEAR(p[0], 0.4, 1e-6);
    CHECK_NEAR(p[10], 0.25, 1e-6);
    const char *apart[2] = {da, dc};
    pc.runs = apart;
    REQUIRE(eval_pool(&pc, &err) == CF_OK);
    size_t n = 0;
    snprintf(path, sizeof path, "%s/predictions.csv", outp);
    float q[40];
    uint8_t z[40];
    REQUIRE(read_col(path, "m", q, z, &n) == 40);
    CHECK_NEAR(q[0], 0.2, 1e-6);
}

int main(void) {
    RUN(test_eval_run);
    RUN(test_leak_alarm);
    RUN(test_values_folds_pool);
    RUN(test_distill_out_of_fold);
    RUN(test_pool_recalibrated);
    RUN(test_pool_average);
    RUN(test_pool_average_near_zero);
    RUN(test_pool_average_single_split);
    return check_summary();
}
