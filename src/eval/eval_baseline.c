/* The baselines every evaluation runs beside the model, as predictors: count features
 * (eval_features.c) with L2 logistic regression, and with gradient-boosted trees through
 * XGBoost's C API, each over all history and over a fixed 365-day lookback. All train on the
 * train split; the tuning split picks the penalty (logistic regression) or the depth and number
 * of trees (XGBoost, with early stopping), by log loss, which unlike AUROC is defined even when
 * a small tuning split holds one class only. Held-out rows never reach fit.
 *
 * The record-position probe is XGBoost on four numbers per row that say where the prediction
 * sits in the record and nothing clinical: years since the record starts, years since its last
 * event before the prediction, events per year over the history, and events in the last 365
 * days. Like every predictor it sees only what was recorded up to the prediction time (a probe
 * that saw the record's future end would score high on any mortality task, since death ends
 * records, and no real predictor could clear it). Where the shape of a record is an artefact of
 * the export (Synthea writes labs for the last ten years of a record only, and most of its heart
 * failure patients die of it), the probe scores high, and a predictor that does not clear it
 * is reading the record's window, not the patient. It is the floor every report shows.
 *
 * logreg_values and xgboost_values add the value aggregates (eval_features_values.c: min, max
 * and mean per window, first and last value of every code with numbers) to the all-history
 * counts: what a hospital would build for vital signs and laboratory series. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <xgboost/c_api.h>

#include "eval/eval.h"

static const double lambdas[] = {1e-4, 1e-3, 1e-2, 1e-1, 1};
#define N_LAMBDAS (sizeof lambdas / sizeof lambdas[0])
static const int depths[] = {2, 4, 6};
#define N_DEPTHS (sizeof depths / sizeof depths[0])
#define XGB_MAX_ROUNDS 300
#define XGB_PATIENCE 30
#define XGB_ETA "0.05"

#define PROBE_COLS 4
static const char *const probe_names[PROBE_COLS] = {
    "years since the record's start", "years since the record's last event before the prediction",
    "events per year over the history", "events in the last 365 days"};

typedef struct {
    int kind;
    int probe;            /* the record-position probe: its own four features */
    int values;           /* counts plus value aggregates */
    const task_labels *l;
    eval_baseline_options opt;
    eval_featurizer f;
    int have_f;
    eval_value_featurizer vf;
    int have_vf;
    uint8_t *kinds;       /* per column of the combined matrix: EVAL_COL_* */
    ml_logreg lr;
    int have_lr;
    BoosterHandle booster;
    int rounds, depth;
    double tune_loss;
    int tuned;            /* settings chosen on tuning rows (0: defaults, no tuning rows) */
    size_t n_train, n_tune, train_pos;
} baseline;

static int xgb_fail(cf_err *err, const char *what) {
    const char *m = XGBGetLastError();
    return cf_fail(err, CF_EINTERNAL, "xgboost: %s failed: %s", what, m ? m : "unknown error");
}

static int is_logreg(const baseline *b) {
    return b->kind == EVAL_BASELINE_LOGREG || b->kind == EVAL_BASELINE_LOGREG_1Y || b->kind == EVAL_BASELINE_LOGREG_VALUES;
}

static uint8_t *labels_of(const label_row *rows, size_t n) {
    uint8_t *y = cf_malloc(n ? n : 1);
    if (y)
        for (size_t i = 0; i < n; i++) y[i] = rows[i].label;
    return y;
}

static int make_dmatrix(const ml_csr *X, const uint8_t *y, DMatrixHandle *out, cf_err *err) {
    if (XGDMatrixCreateFromCSREx(X->indptr, X->idx, X->val, X->n_rows + 1, X->nnz, X->n_cols, out))
        return xgb_fail(err, "DMatrix creation");
    if (y) {
        float *yf = cf_malloc((X->n_rows ? X->n_rows : 1) * sizeof *yf);
        if (!yf) {
            XGDMatrixFree(*out);
            return cf_fail(err, CF_EINTERNAL, "out of memory");
        }
        for (size_t i = 0; i < X->n_rows; i++) yf[i] = y[i];
        int r = XGDMatrixSetFloatInfo(*out, "label", yf, X->n_rows);
        free(yf);
        if (r) {
            XGDMatrixFree(*out);
            return xgb_fail(err, "setting labels");
        }
    }
    return CF_OK;
}

static int xgb_booster(baseline *b, DMatrixHandle *mats, int n_mats, int depth, BoosterHandle *out, cf_err *err) {
    if (XGBoosterCreate(mats, (bst_ulong)n_mats, out)) return xgb_fail(err, "booster creation");
    char depth_s[16], seed_s[32], thr_s[16];
    snprintf(depth_s, sizeof depth_s, "%d", depth);
    snprintf(seed_s, sizeof seed_s, "%llu", (unsigned long long)(b->opt.seed % 2147483647u));
    snprintf(thr_s, sizeof thr_s, "%d", b->opt.threads > 0 ? b->opt.threads : 1);
    const char *params[][2] = {{"objective", "binary:logistic"}, {"eval_metric", "logloss"},
                               {"tree_method", "hist"},          {"max_bin", "64"},
                               {"eta", XGB_ETA},                 {"max_depth", depth_s},
                               {"subsample", "0.8"},             {"colsample_bytree", "0.8"},
                               {"min_child_weight", "1"},        {"lambda", "1"},
                               {"seed", seed_s},                 {"nthread", thr_s},
                               {"verbosity", "0"}};
    for (size_t i = 0; i < sizeof params / sizeof params[0]; i++)
        if (XGBoosterSetParam(*out, params[i][0], params[i][1])) {
            XGBoosterFree(*out);
            return xgb_fail(err, "setting a parameter");
        }
    return CF_OK;
}

static int xgb_predict(BoosterHandle bh, DMatrixHandle d, int rounds, float *p, size_t n, cf_err *err) {
    char cfg[160];
    snprintf(cfg, sizeof cfg,
             "{\"type\": 0, \"training\": false, \"iteration_begin\": 0, \"iteration_end\": %d, \"strict_shape\": false}",
             rounds);
    const bst_ulong *shape;
    bst_ulong dim;
    const float *res;
    if (XGBoosterPredictFromDMatrix(bh, d, cfg, &shape, &dim, &res)) return xgb_fail(err, "prediction");
    for (size_t i = 0; i < n; i++) {
        float v = res[i];
        p[i] = v < 0 ? 0 : v > 1 ? 1 : v;
    }
    return CF_OK;
}

static int fit_logreg(baseline *b, const ml_csr *Xtr, const uint8_t *ytr, const ml_csr *Xtu, const uint8_t *ytu,
                      cf_err *err) {
    int rc = CF_OK;
    if (!Xtu->n_rows) {
        b->tuned = 0;
        rc = ml_logreg_fit(&b->lr, Xtr, ytr, b->kinds, 1e-2, err);
        b->have_lr = !rc;
        return rc;
    }
    float *p = cf_malloc(Xtu->n_rows * sizeof *p);
    if (!p) return cf_fail(err, CF_EINTERNAL, "out of memory");
    b->tuned = 1;
    for (size_t k = 0; k < N_LAMBDAS; k++) {
        ml_logreg m;
        if ((rc = ml_logreg_fit(&m, Xtr, ytr, b->kinds, lambdas[k], err))) break;
        ml_logreg_predict(&m, Xtu, p);
        double loss = ml_log_loss(p, ytu, Xtu->n_rows);
        if (!b->have_lr || loss < b->tune_loss) {
            if (b->have_lr) ml_logreg_free(&b->lr);
            b->lr = m;
            b->have_lr = 1;
            b->tune_loss = loss;
        } else {
            ml_logreg_free(&m);
        }
    }
    free(p);
    return rc;
}

static int fit_xgb(baseline *b, const ml_csr *Xtr, const uint8_t *ytr, const ml_csr *Xtu, const uint8_t *ytu,
                   cf_err *err) {
    DMatrixHandle dtr = NULL, dtu = NULL;
    int rc = make_dmatrix(Xtr, ytr, &dtr, err);
    if (rc) return rc;
    if (Xtu->n_rows && (rc = make_dmatrix(Xtu, ytu, &dtu, err))) {
        XGDMatrixFree(dtr);
        return rc;
    }
    float *p = cf_malloc((Xtu->n_rows ? Xtu->n_rows : 1) * sizeof *p);
    if (!p) {
        rc = cf_fail(err, CF_EINTERNAL, "out of memory");
        goto done;
    }
    b->tuned = dtu != NULL;
    for (size_t k = 0; k < (dtu ? N_DEPTHS : 1); k++) {
        int depth = dtu ? depths[k] : 4;
        BoosterHandle bh;
        DMatrixHandle mats[2] = {dtr, dtu};
        if ((rc = xgb_booster(b, mats, dtu ? 2 : 1, depth, &bh, err))) goto done;
        double best = INFINITY;
        int best_rounds = dtu ? 0 : 100;
        for (int it = 0; it < (dtu ? XGB_MAX_ROUNDS : 100); it++) {
            if (XGBoosterUpdateOneIter(bh, it, dtr)) {
                XGBoosterFree(bh);
                rc = xgb_fail(err, "boosting round");
                goto done;
            }
            if (!dtu) continue;
            if ((rc = xgb_predict(bh, dtu, it + 1, p, Xtu->n_rows, err))) {
                XGBoosterFree(bh);
                goto done;
            }
            double loss = ml_log_loss(p, ytu, Xtu->n_rows);
            if (loss < best - 1e-9) best = loss, best_rounds = it + 1;
            else if (it + 1 - best_rounds >= XGB_PATIENCE) break;
        }
        if (!b->booster || best < b->tune_loss) {
            if (b->booster) XGBoosterFree(b->booster);
            b->booster = bh;
            b->tune_loss = best;
            b->rounds = best_rounds;
            b->depth = depth;
        } else {
            XGBoosterFree(bh);
        }
    }
done:
    free(p);
    /* the booster keeps what it needs from the training matrices */
    XGDMatrixFree(dtr);
    if (dtu) XGDMatrixFree(dtu);
    return rc;
}

/* The probe's features (see the top of the file); every row has all four. */
static int probe_build(const baseline *b, const store *s, const label_row *rows, size_t n, ml_csr *out, cf_err *err) {
    memset(out, 0, sizeof *out);
    out->n_rows = n;
    out->n_cols = PROBE_COLS;
    out->nnz = n * PROBE_COLS;
    out->indptr = cf_malloc((n + 1) * sizeof *out->indptr);
    out->idx = cf_malloc((out->nnz ? out->nnz : 1) * sizeof *out->idx);
    out->val = cf_malloc((out->nnz ? out->nnz : 1) * sizeof *out->val);
    if (!out->indptr || !out->idx || !out->val) {
        ml_csr_free(out);
        return cf_fail(err, CF_EINTERNAL, "out of memory");
    }
    const double year = 365.2425 * (double)USEC_PER_DAY, month = year / 12;
    for (size_t r = 0; r < n; r++) {
        /* the history only: [subject start, history_end) */
        uint64_t a = s->subject_start[rows[r].subject_index];
        int64_t start = TIME_NULL, last = TIME_NULL, pt = rows[r].prediction_time;
        uint64_t all = 0, recent = 0;
        for (uint64_t e = a; e < rows[r].history_end; e++) {
            if (s->time[e] == TIME_NULL || (int64_t)s->code[e] == b->l->birth_code) continue;
            if (start == TIME_NULL) start = s->time[e];
            last = s->time[e];
            all++;
            recent += pt - s->time[e] <= 365 * USEC_PER_DAY;
        }
        if (start == TIME_NULL) start = last = pt;
        double since = (double)(pt - start);
        float v[PROBE_COLS] = {(float)(since / year), (float)((double)(pt - last) / year),
                               (float)((double)all / ((since > month ? since : month) / year)), (float)recent};
        out->indptr[r] = r * PROBE_COLS;
        for (int k = 0; k < PROBE_COLS; k++) out->idx[r * PROBE_COLS + (size_t)k] = (uint32_t)k, out->val[r * PROBE_COLS + (size_t)k] = v[k];
    }
    out->indptr[n] = out->nnz;
    return CF_OK;
}

static int build_rows(baseline *b, const store *s, const label_row *rows, size_t n, ml_csr *out, cf_err *err) {
    if (b->probe) return probe_build(b, s, rows, n, out, err);
    if (!b->values) return eval_features_build(&b->f, rows, n, out, err);
    /* counts, then the value aggregates after them */
    ml_csr A, V;
    int rc = eval_features_build(&b->f, rows, n, &A, err);
    if (rc) return rc;
    if ((rc = eval_value_features_build(&b->vf, rows, n, &V, err))) {
        ml_csr_free(&A);
        return rc;
    }
    rc = ml_csr_hstack(&A, &V, out, err);
    ml_csr_free(&A);
    ml_csr_free(&V);
    return rc;
}

static int baseline_fit(void *ctx, const store *s, const label_row *train, size_t n_train, const label_row *tuning,
                        size_t n_tuning, cf_err *err) {
    baseline *b = ctx;
    ml_csr Xtr = {0}, Xtu = {0};
    uint8_t *ytr = labels_of(train, n_train), *ytu = labels_of(tuning, n_tuning);
    int rc = CF_OK;
    if (!ytr || !ytu) {
        rc = cf_fail(err, CF_EINTERNAL, "out of memory");
        goto done;
    }
    if (!n_train) {
        rc = cf_fail(err, CF_EINPUT, "the train split has no label rows: nothing to fit a baseline on");
        goto done;
    }
    b->n_train = n_train;
    b->n_tune = n_tuning;
    for (size_t i = 0; i < n_train; i++) b->train_pos += train[i].label;
    if (!b->probe && (rc = eval_features_fit(&b->f, s, b->l, train, n_train, &b->opt.features, err))) goto done;
    b->have_f = 1;
    if (b->values) {
        if ((rc = eval_value_features_fit(&b->vf, s, b->l, train, n_train, &b->opt.features, err))) goto done;
        b->have_vf = 1;
    }
    if (!b->probe) {
        size_t nc = b->f.n_cols + (b->values ? b->vf.n_cols : 0);
        if (!(b->kinds = cf_malloc(nc ? nc : 1))) {
            rc = cf_fail(err, CF_EINTERNAL, "out of memory");
            goto done;
        }
        memcpy(b->kinds, b->f.col_kind, b->f.n_cols);
        memset(b->kinds + b->f.n_cols, EVAL_COL_VALUE, nc - b->f.n_cols);
    }
    if ((rc = build_rows(b, s, train, n_train, &Xtr, err))) goto done;
    if ((rc = build_rows(b, s, tuning, n_tuning, &Xtu, err))) goto done;
    rc = is_logreg(b) ? fit_logreg(b, &Xtr, ytr, &Xtu, ytu, err) : fit_xgb(b, &Xtr, ytr, &Xtu, ytu, err);
done:
    ml_csr_free(&Xtr);
    ml_csr_free(&Xtu);
    free(ytr);
    free(ytu);
    return rc;
}

/* Rows of another store: the featurizers find their columns there by code string, and the
 * probe reads that store's birth code. */
static int baseline_bind(void *ctx, const store *s, const task_labels *l, cf_err *err) {
    baseline *b = ctx;
    b->l = l;
    if (b->have_f && !b->probe) {
        int rc = eval_features_bind(&b->f, s, l, err);
        if (rc) return rc;
    }
    return b->have_vf ? eval_value_features_bind(&b->vf, s, l, err) : CF_OK;
}

static int baseline_predict(void *ctx, const store *s, const label_row *rows, size_t n, float *probs, cf_err *err) {
    baseline *b = ctx;
    if (!b->have_f || (is_logreg(b) ? !b->have_lr : !b->booster))
        return cf_fail(err, CF_EINTERNAL, "baseline predict called before fit");
    if (!n) return CF_OK;
    ml_csr X;
    int rc = build_rows(b, s, rows, n, &X, err);
    if (rc) return rc;
    if (is_logreg(b)) {
        ml_logreg_predict(&b->lr, &X, probs);
    } else {
        DMatrixHandle d;
        if (!(rc = make_dmatrix(&X, NULL, &d, err))) {
            rc = xgb_predict(b->booster, d, b->rounds, probs, n, err);
            XGDMatrixFree(d);
        }
    }
    ml_csr_free(&X);
    return rc;
}

/* A feature column with what ranks it (a weight, a gain): sorted largest first, weights by size. */
typedef struct {
    size_t col;
    double v;
} col_value;
static int cmp_abs_desc(const void *a, const void *b) {
    double x = fabs(((const col_value *)a)->v), y = fabs(((const col_value *)b)->v);
    return (x < y) - (x > y);
}
static int cmp_desc(const void *a, const void *b) {
    double x = ((const col_value *)a)->v, y = ((const col_value *)b)->v;
    return (x < y) - (x > y);
}

static char *col_name(const baseline *b, size_t col, char *buf, size_t cap) {
    if (b->probe) {
        snprintf(buf, cap, "%s", col < PROBE_COLS ? probe_names[col] : "?");
        return buf;
    }
    if (col < b->f.n_cols) return eval_feature_name(&b->f, col, buf, cap);
    return eval_value_feature_name(&b->vf, col - b->f.n_cols, buf, cap);
}


/* The trees' total gain per feature (the trees actually used for predictions), most first. */
static void add_gain(const baseline *b, cJSON *o) {
    BoosterHandle used = NULL;
    if (XGBoosterSlice(b->booster, 0, b->rounds, 1, &used)) return;
    bst_ulong nf = 0, dim = 0;
    const char **names = NULL;
    const bst_ulong *shape = NULL;
    const float *scores = NULL;
    if (!XGBoosterFeatureScore(used, "{\"importance_type\": \"total_gain\"}", &nf, &names, &dim, &shape, &scores) &&
        nf) {
        col_value *g = cf_malloc(nf * sizeof *g);
        double total = 0;
        size_t m = 0;
        for (bst_ulong i = 0; g && i < nf; i++) {
            /* without names set, XGBoost calls feature k "fk" */
            char *end;
            unsigned long k = names[i][0] == 'f' ? strtoul(names[i] + 1, &end, 10) : 0;
            if (names[i][0] != 'f' || *end) continue;
            g[m++] = (col_value){(size_t)k, scores[i]};
            total += scores[i];
        }
        if (g) {
            qsort(g, m, sizeof *g, cmp_desc);
            cJSON *top = cJSON_AddArrayToObject(o, "top_features_by_gain");
            for (size_t j = 0; j < m && j < 10; j++) {
                char name[600];
                cJSON *e = cJSON_CreateObject();
                cJSON_AddStringToObject(e, "feature", col_name(b, g[j].col, name, sizeof name));
                cJSON_AddNumberToObject(e, "total_gain", g[j].v);
                cJSON_AddNumberToObject(e, "share", total > 0 ? g[j].v / total : 0);
                cJSON_AddItemToArray(top, e);
            }
        }
        free(g);
    }
    XGBoosterFree(used);
}

static char *baseline_describe(void *ctx) {
    baseline *b = ctx;
    cJSON *o = cJSON_CreateObject();
    if (b->probe) {
        cJSON_AddStringToObject(o, "features", "where the prediction sits in the record, nothing clinical: years "
                                               "since its start, years since its last event, events per year over the "
                                               "history, events in the last 365 days");
    } else {
        cJSON_AddStringToObject(o, "features", b->opt.features.lookback
                                                   ? "code counts in 1d/7d/30d/365d windows (nothing older than 365 "
                                                     "days), static facts, last numeric values within 365 days, age"
                                                   : b->values ? "code counts in 1d/7d/30d/365d/all windows, last numeric "
                                                                 "values, age; value aggregates (min, max, mean per "
                                                                 "window, first and last value) of codes with numbers"
                                                               : "code counts in 1d/7d/30d/365d/all windows, last numeric values, age");
        cJSON_AddNumberToObject(o, "feature_columns", (double)(b->f.n_cols + (b->values ? b->vf.n_cols : 0)));
        cJSON_AddNumberToObject(o, "codes_kept", (double)b->f.n_codes_kept);
        if (b->values) cJSON_AddNumberToObject(o, "value_codes", (double)b->vf.n_codes_kept);
    }
    cJSON_AddNumberToObject(o, "train_rows", (double)b->n_train);
    cJSON_AddNumberToObject(o, "train_positives", (double)b->train_pos);
    cJSON_AddNumberToObject(o, "tuning_rows", (double)b->n_tune);
    cJSON_AddStringToObject(o, "selected_by", b->tuned ? "tuning log loss" : "defaults (no tuning rows)");
    if (b->tuned && isfinite(b->tune_loss)) cJSON_AddNumberToObject(o, "tuning_log_loss", b->tune_loss);
    if (is_logreg(b) && b->have_lr) {
        cJSON_AddNumberToObject(o, "l2_lambda", b->lr.lambda);
        cJSON_AddNumberToObject(o, "lbfgs_iterations", b->lr.iterations);
        /* the strongest weights on the common scale: what drives this baseline */
        col_value *wc = cf_malloc((b->lr.d ? b->lr.d : 1) * sizeof *wc);
        if (wc) {
            for (size_t j = 0; j < b->lr.d; j++) wc[j] = (col_value){j, b->lr.w[j]};
            qsort(wc, b->lr.d, sizeof *wc, cmp_abs_desc);
            cJSON *top = cJSON_AddArrayToObject(o, "top_features");
            for (size_t j = 0; j < b->lr.d && j < 10; j++) {
                if (wc[j].v == 0) break;
                char name[512];
                cJSON *e = cJSON_CreateObject();
                cJSON_AddStringToObject(e, "feature", col_name(b, wc[j].col, name, sizeof name));
                cJSON_AddNumberToObject(e, "weight", wc[j].v);
                cJSON_AddItemToArray(top, e);
            }
            free(wc);
        }
    } else if (b->booster) {
        cJSON_AddNumberToObject(o, "max_depth", b->depth);
        cJSON_AddNumberToObject(o, "trees", b->rounds);
        cJSON_AddNumberToObject(o, "eta", atof(XGB_ETA));
        int ma, mi, pa;
        XGBoostVersion(&ma, &mi, &pa);
        char v[32];
        snprintf(v, sizeof v, "%d.%d.%d", ma, mi, pa);
        cJSON_AddStringToObject(o, "xgboost_version", v);
        add_gain(b, o);
    }
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

static const struct {
    const char *name, *description;
} kinds[EVAL_BASELINE_COUNT] = {
    {"logreg", "Baseline: L2 logistic regression on count features over all history (MEDS-Tab style)"},
    {"xgboost", "Baseline: gradient-boosted trees (XGBoost) on count features over all history (MEDS-Tab style)"},
    {"logreg_365d", "Baseline: L2 logistic regression on count features of the last 365 days only"},
    {"xgboost_365d", "Baseline: gradient-boosted trees (XGBoost) on count features of the last 365 days only"},
    {"record_position", "Floor: XGBoost on where the prediction sits in the record (how long ago it started, how "
                        "long since its last event, how dense it is), nothing clinical; a predictor that does not "
                        "clear it may be reading the record's window, not the patient"},
    {"logreg_values", "Baseline: L2 logistic regression on count features and value aggregates (min, max, mean per "
                      "window, first and last value) over all history (MEDS-Tab style)"},
    {"xgboost_values", "Baseline: gradient-boosted trees (XGBoost) on count features and value aggregates (min, max, "
                       "mean per window, first and last value) over all history (MEDS-Tab style)"},
};

const char *eval_baseline_name(int kind) { return kind >= 0 && kind < EVAL_BASELINE_COUNT ? kinds[kind].name : "?"; }

int eval_baseline_new(eval_predictor *p, int kind, const task_labels *l, const eval_baseline_options *opt,
                      cf_err *err) {
    memset(p, 0, sizeof *p);
    if (kind < 0 || kind >= EVAL_BASELINE_COUNT) return cf_fail(err, CF_EINTERNAL, "unknown baseline %d", kind);
    baseline *b = cf_calloc(1, sizeof *b);
    if (!b) return cf_fail(err, CF_EINTERNAL, "out of memory");
    b->kind = kind;
    b->probe = kind == EVAL_BASELINE_PROBE;
    b->values = kind == EVAL_BASELINE_LOGREG_VALUES || kind == EVAL_BASELINE_XGBOOST_VALUES;
    b->l = l;
    if (opt) b->opt = *opt;
    if (kind == EVAL_BASELINE_LOGREG_1Y || kind == EVAL_BASELINE_XGBOOST_1Y) b->opt.features.lookback = 365 * USEC_PER_DAY;
    b->tune_loss = INFINITY;
    *p = (eval_predictor){.name = kinds[kind].name, .description = kinds[kind].description,
                          .role = b->probe ? EVAL_ROLE_FLOOR : EVAL_ROLE_CANDIDATE, .fit = baseline_fit,
                          .predict = baseline_predict, .describe = baseline_describe,
                          .bind = baseline_bind, .ctx = b};
    return CF_OK;
}

void eval_baseline_free(eval_predictor *p) {
    baseline *b = p->ctx;
    if (b) {
        if (b->have_f) eval_featurizer_free(&b->f);
        if (b->have_vf) eval_value_featurizer_free(&b->vf);
        free(b->kinds);
        if (b->have_lr) ml_logreg_free(&b->lr);
        if (b->booster) XGBoosterFree(b->booster);
        free(b);
    }
    memset(p, 0, sizeof *p);
}
