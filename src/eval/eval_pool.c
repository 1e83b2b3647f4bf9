/* Pooling evaluations: the held-out predictions of the folds of a cross-validation (or of one
 * evaluation) read back from their output directories and judged together; see eval.h.
 *
 * Every figure is computed on the pooled held-out rows, with intervals from one bootstrap over
 * patients. Two things are fitted, and both only on each run's own tuning rows
 * (predictions_tuning.csv), then applied to that run's held-out rows:
 *   - recalibration: Platt scaling of each predictor (a logistic regression on its logit), so
 *     calibration can be judged after the step a deployment would take anyway;
 *   - stacking: a logistic regression on the logits of several predictors (a model and a
 *     baseline), which shows what a model adds to what the hospital already has.
 * Tuning rows chose the predictors' own settings too (early stopping, penalties), so their
 * scores are a little optimistic; the held-out rows stay untouched by every fit. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "eval/eval.h"
#include "eval/eval_internal.h"
#include "util/atomic_file.h"

#define MAX_COLS 64

typedef struct {
    size_t n;
    int64_t *sid;
    char **ptime;
    uint8_t *y;
    float *p;           /* (n, n_cols) */
    size_t n_cols;
    char *names[MAX_COLS];
} pred_table;

typedef struct {
    char *dir;
    char *task;
    int fold, folds;
    pred_table held, tune;
    double fit_seconds[MAX_COLS]; /* by the held table's columns (NaN: not reported) */
    int n_mean[MAX_COLS];         /* by the held table's columns: runs whose probabilities it averages */
    int n_joined[MAX_COLS];       /* ... and runs joined into it: those averaged and those that agreed with
                                     it (the mean of runs that agree is any of them) */
} pool_run;

static void table_free(pred_table *t) {
    for (size_t i = 0; i < t->n; i++) free(t->ptime[i]);
    for (size_t j = 0; j < t->n_cols; j++) free(t->names[j]);
    CF_FREE_ALL(t->sid, t->ptime, t->y, t->p);
    memset(t, 0, sizeof *t);
}

static char *read_all(const char *path, size_t *len, cf_err *err) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        cf_fail_errno(err, CF_EINPUT, "%s: cannot read", path);
        return NULL;
    }
    size_t cap = 1 << 16, n = 0;
    char *b = malloc(cap + 1);
    while (b) {
        size_t k = fread(b + n, 1, cap - n, f);
        n += k;
        if (n < cap) break;
        cap *= 2;
        char *nb = realloc(b, cap + 1);
        if (!nb) free(b);
        b = nb;
    }
    int bad = ferror(f);
    fclose(f);
    if (!b || bad) {
        free(b);
        cf_fail(err, CF_EINPUT, "%s: cannot read", path);
        return NULL;
    }
    b[n] = 0;
    if (len) *len = n;
    return b;
}

/* predictions.csv as eval writes it: subject_id,prediction_time,boolean_value,<predictor>... */
static int read_table(const char *path, pred_table *t, cf_err *err) {
    memset(t, 0, sizeof *t);
    char *txt = read_all(path, NULL, err);
    if (!txt) return CF_EINPUT;
    int rc = CF_OK;
    char *save = NULL, *line = strtok_r(txt, "\n", &save);
    if (!line || strncmp(line, "subject_id,prediction_time,boolean_value", 40)) {
        rc = cf_fail(err, CF_EINPUT, "%s: line 1: expected the header subject_id,prediction_time,boolean_value,... "
                     "(a predictions file of clinfm eval)", path);
        goto done;
    }
    for (char *c = line + 40; *c == ',';) {
        char *e = strchr(c + 1, ',');
        size_t l = e ? (size_t)(e - c - 1) : strlen(c + 1);
        if (t->n_cols == MAX_COLS || !l) {
            rc = cf_fail(err, CF_EINPUT, "%s: line 1: an empty predictor name, or more than %d", path, MAX_COLS);
            goto done;
        }
        if (!(t->names[t->n_cols++] = strndup(c + 1, l))) {
            rc = cf_fail(err, CF_EINTERNAL, "out of memory");
            goto done;
        }
        c = e ? e : c + 1 + l;
    }
    size_t cap = 0, lineno = 1;
    while ((line = strtok_r(NULL, "\n", &save))) {
        lineno++;
        if (t->n == cap) {
            cap = cap ? cap * 2 : 1024;
            int64_t *a = realloc(t->sid, cap * sizeof *a);
            if (a) t->sid = a;
            char **b = realloc(t->ptime, cap * sizeof *b);
            if (b) t->ptime = b;
            uint8_t *c = realloc(t->y, cap);
            if (c) t->y = c;
            float *d = realloc(t->p, cap * (t->n_cols ? t->n_cols : 1) * sizeof *d);
            if (d) t->p = d;
            if (!a || !b || !c || !d) {
                rc = cf_fail(err, CF_EINTERNAL, "out of memory");
                goto done;
            }
        }
        char *f[3 + MAX_COLS];
        size_t nf = 0;
        for (char *s = line, *tok; nf < 3 + t->n_cols + 1 && (tok = strsep(&s, ","));) f[nf++] = tok;
        char *end;
        long long sid = nf == 3 + t->n_cols ? strtoll(f[0], &end, 10) : 0;
        if (nf != 3 + t->n_cols || *end || (strcmp(f[2], "true") && strcmp(f[2], "false"))) {
            rc = cf_fail(err, CF_EINPUT, "%s: line %zu: expected %zu fields: a subject id, a time, true or false, then "
                         "one probability per predictor", path, lineno, 3 + t->n_cols);
            goto done;
        }
        size_t i = t->n;
        t->sid[i] = sid;
        t->y[i] = f[2][0] == 't';
        if (!(t->ptime[i] = strdup(f[1]))) {
            rc = cf_fail(err, CF_EINTERNAL, "out of memory");
            goto done;
        }
        t->n++;
        for (size_t j = 0; j < t->n_cols; j++) {
            double v = strtod(f[3 + j], &end);
            if (*end || !(v >= 0 && v <= 1)) {
                rc = cf_fail(err, CF_EINPUT, "%s: line %zu: column %s is not a probability in [0, 1]", path, lineno,
                             t->names[j]);
                goto done;
            }
            t->p[i * t->n_cols + j] = (float)v;
        }
    }
done:
    free(txt);
    if (rc) table_free(t);
    return rc;
}

static int read_run(const char *dir, pool_run *r, cf_err *err) {
    memset(r, 0, sizeof *r);
    r->fold = -1;
    char path[4400];
    int rc = CF_OK;
    if (!(r->dir = strdup(dir))) return cf_fail(err, CF_EINTERNAL, "out of memory");
    snprintf(path, sizeof path, "%s/metrics.json", dir);
    char *txt = read_all(path, NULL, err);
    if (!txt) return CF_EINPUT;
    cJSON *j = cJSON_Parse(txt);
    free(txt);
    const cJSON *task = j ? cJSON_GetObjectItemCaseSensitive(j, "task") : NULL;
    const cJSON *tn = task ? cJSON_GetObjectItemCaseSensitive(task, "name") : NULL;
    if (!cJSON_IsString(tn)) {
        cJSON_Delete(j);
        return cf_fail(err, CF_EINPUT, "%s: not a metrics.json of clinfm eval (no task.name)", path);
    }
    r->task = strdup(tn->valuestring);
    const cJSON *sp = cJSON_GetObjectItemCaseSensitive(j, "split");
    const cJSON *fo = sp ? cJSON_GetObjectItemCaseSensitive(sp, "fold") : NULL;
    const cJSON *fs = sp ? cJSON_GetObjectItemCaseSensitive(sp, "folds") : NULL;
    if (cJSON_IsNumber(fo) && cJSON_IsNumber(fs)) r->fold = fo->valueint, r->folds = fs->valueint;
    snprintf(path, sizeof path, "%s/predictions.csv", dir);
    if ((rc = read_table(path, &r->held, err))) goto done;
    snprintf(path, sizeof path, "%s/predictions_tuning.csv", dir);
    if ((rc = read_table(path, &r->tune, err))) goto done;
    if (r->tune.n_cols != r->held.n_cols) {
        rc = cf_fail(err, CF_EINPUT, "%s: predictions.csv and predictions_tuning.csv name different predictors", dir);
        goto done;
    }
    for (size_t c = 0; c < r->held.n_cols; c++) {
        r->fit_seconds[c] = NAN;
        r->n_mean[c] = r->n_joined[c] = 1;
        if (strcmp(r->held.names[c], r->tune.names[c])) {
            rc = cf_fail(err, CF_EINPUT, "%s: predictions.csv and predictions_tuning.csv name different predictors", dir);
            goto done;
        }
    }
    const cJSON *preds = cJSON_GetObjectItemCaseSensitive(j, "predictors"), *e;
    cJSON_ArrayForEach(e, preds) {
        const cJSON *nm = cJSON_GetObjectItemCaseSensitive(e, "name"), *fsec = cJSON_GetObjectItemCaseSensitive(e, "fit_seconds");
        if (!cJSON_IsString(nm) || !cJSON_IsNumber(fsec)) continue;
        for (size_t c = 0; c < r->held.n_cols; c++)
            if (!strcmp(r->held.names[c], nm->valuestring)) r->fit_seconds[c] = fsec->valuedouble;
    }
done:
    cJSON_Delete(j);
    return rc;
}

/* Two runs' probabilities of one row are the same prediction when they differ by no more than a
 * millionth of the larger: a run read twice, or printed by another build, agrees to that, and two
 * models that both put a row near zero (1e-8 and 3e-9, a fold with one positive) do not (an
 * absolute 1e-6 once took two such members for one and refused to pool them). */
static int same_prediction(float x, float y) { return fabsf(x - y) <= 1e-6f * fmaxf(fabsf(x), fabsf(y)); }

/* Puts the predictors of table b beside those of table a, row by row (rows matched by subject and
 * prediction time, so two stores that list them in another order still agree): a and b must hold
 * the same rows with the same labels. A predictor both tables have is kept once when its
 * predictions agree on every row (a floor such as record_position, which every run computes),
 * averaged when it is one of the names in avg (the same predictor fine-tuned with other seeds
 * or from another pretrained model: an ensemble, a's column the mean of its count[] runs so far)
 * and refused otherwise. keep[c] says whether b's column c joins as a new column, mean_to[c]
 * which of a's columns it is averaged into (-1: none): both decided here when decide is set (the
 * held-out table), followed otherwise (the tuning table). what names the rows in errors. */
static int table_join(pred_table *a, pred_table *b, const char *da, const char *db, const char *what, int decide,
                      const char *const *avg, size_t n_avg, const int *count, uint8_t *keep, int *mean_to,
                      cf_err *err) {
    if (a->n != b->n)
        return cf_fail(err, CF_EINPUT, "%s and %s evaluate the same fold but hold %zu and %zu %s rows: pool runs of one "
                       "fold only when they evaluate the same rows", da, db, a->n, b->n, what);
    size_t *at = cf_malloc((a->n ? a->n : 1) * sizeof *at); /* b's row of a's row i */
    uint8_t *used = cf_calloc(b->n ? b->n : 1, 1);
    float *p = NULL;
    int rc = CF_OK;
    if (!at || !used) {
        rc = cf_fail(err, CF_EINTERNAL, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < a->n; i++) {
        size_t j = i < b->n && !used[i] && b->sid[i] == a->sid[i] && !strcmp(b->ptime[i], a->ptime[i]) ? i : b->n;
        for (size_t k = 0; j == b->n && k < b->n; k++) /* another order: search (runs hold ~1,000 rows) */
            if (!used[k] && b->sid[k] == a->sid[i] && !strcmp(b->ptime[k], a->ptime[i])) j = k;
        if (j == b->n || b->y[j] != a->y[i]) {
            rc = cf_fail(err, CF_EINPUT, "%s and %s evaluate the same fold but their %s rows differ (subject %lld %s): "
                         "pool runs of one fold only when they evaluate the same rows", da, db, what,
                         (long long)a->sid[i], j == b->n ? "is missing in the second" : "has another label");
            goto done;
        }
        used[j] = 1;
        at[i] = j;
    }
    size_t add = 0, averaged = 0;
    for (size_t c = 0; c < b->n_cols; c++) {
        if (decide) {
            int same = -1;
            for (size_t k = 0; k < a->n_cols; k++)
                if (!strcmp(a->names[k], b->names[c])) same = (int)k;
            keep[c] = same < 0;
            mean_to[c] = -1;
            for (size_t i = 0; same >= 0 && mean_to[c] < 0 && i < a->n; i++)
                if (!same_prediction(a->p[i * a->n_cols + (size_t)same], b->p[at[i] * b->n_cols + c])) {
                    for (size_t k = 0; k < n_avg; k++) /* predictions that agree are kept once, never averaged */
                        if (!strcmp(avg[k], b->names[c])) mean_to[c] = same;
                    if (mean_to[c] >= 0) break;
                    rc = cf_fail(err, CF_EINPUT, "%s and %s evaluate the same fold and both have predictor %s, with "
                                 "other predictions: pool the folds of one cross-validation, or runs of one fold "
                                 "with different predictors (or --average %s: an ensemble)", da, db, b->names[c],
                                 b->names[c]);
                    goto done;
                }
        }
        add += keep[c];
        averaged += mean_to[c] >= 0;
    }
    if (decide && !add && !averaged) {
        rc = cf_fail(err, CF_EINPUT, "%s and %s evaluate the same fold with the same predictors: pool the folds of one "
                     "cross-validation, or runs of one fold with different predictors", da, db);
        goto done;
    }
    if (a->n_cols + add > MAX_COLS) {
        rc = cf_fail(err, CF_EINPUT, "%s and %s: more than %d predictors together", da, db, MAX_COLS);
        goto done;
    }
    const size_t W = a->n_cols + add;
    if (!(p = cf_malloc((a->n ? a->n : 1) * W * sizeof *p))) {
        rc = cf_fail(err, CF_EINTERNAL, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < a->n; i++) {
        memcpy(p + i * W, a->p + i * a->n_cols, a->n_cols * sizeof *p);
        for (size_t c = 0, w = a->n_cols; c < b->n_cols; c++) {
            const float v = b->p[at[i] * b->n_cols + c];
            if (keep[c]) p[i * W + w++] = v;
            else if (mean_to[c] >= 0) { /* the running mean of count + 1 runs' probabilities */
                float *m = &p[i * W + (size_t)mean_to[c]];
                *m = (float)(((double)*m * count[mean_to[c]] + v) / (count[mean_to[c]] + 1));
            }
        }
    }
    free(a->p);
    a->p = p;
    p = NULL;
    for (size_t c = 0, w = a->n_cols; c < b->n_cols; c++)
        if (keep[c]) a->names[w++] = b->names[c], b->names[c] = NULL;
    a->n_cols = W;
done:
    CF_FREE_ALL(p, at, used);
    return rc;
}

static int find_col(const pred_table *t, const char *name) {
    for (size_t c = 0; c < t->n_cols; c++)
        if (!strcmp(t->names[c], name)) return (int)c;
    return -1;
}

/* Two runs of one fold (the baselines evaluated in one, the model in another) become one: a gets
 * b's predictors beside its own, on the same held-out and tuning rows. */
static int run_join(pool_run *a, pool_run *b, const eval_pool_config *cfg, cf_err *err) {
    const size_t na = a->held.n_cols;
    uint8_t keep[MAX_COLS];
    int mean_to[MAX_COLS];
    int rc = table_join(&a->held, &b->held, a->dir, b->dir, "held-out", 1, cfg->averages, cfg->n_averages, a->n_mean,
                        keep, mean_to, err);
    if (!rc)
        rc = table_join(&a->tune, &b->tune, a->dir, b->dir, "tuning", 0, cfg->averages, cfg->n_averages, a->n_mean, keep,
                        mean_to, err);
    if (rc) return rc;
    for (size_t c = 0, w = na; c < b->held.n_cols; c++)
        if (keep[c]) {
            a->n_mean[w] = b->n_mean[c];
            a->n_joined[w] = b->n_joined[c];
            a->fit_seconds[w++] = b->fit_seconds[c];
        } else if (mean_to[c] >= 0) { /* an ensemble costs what its members cost */
            a->n_mean[mean_to[c]] += b->n_mean[c];
            a->n_joined[mean_to[c]] += b->n_joined[c];
            a->fit_seconds[mean_to[c]] += b->fit_seconds[c];
        } else /* agreed with a's own column of that name, kept once */
            a->n_joined[find_col(&a->held, b->held.names[c])] += b->n_joined[c];
    size_t l = strlen(a->dir) + strlen(b->dir) + 2;
    char *d = malloc(l);
    if (!d) return cf_fail(err, CF_EINTERNAL, "out of memory");
    snprintf(d, l, "%s+%s", a->dir, b->dir);
    free(a->dir);
    a->dir = d;
    return CF_OK;
}

static void run_free(pool_run *r) {
    free(r->dir);
    free(r->task);
    table_free(&r->held);
    table_free(&r->tune);
}

static double logit(double p) {
    p = p < 1e-6 ? 1e-6 : p > 1 - 1e-6 ? 1 - 1e-6 : p;
    return log(p / (1 - p));
}

/* A ridge logistic regression of y on X (n, d) plus an intercept, by Newton's method: w (d+1),
 * the intercept last. d <= 8. The ridge (lambda per row, intercept free) keeps it finite. */
static void fit_lr(const double *X, const uint8_t *y, size_t n, int d, double lambda, double *w) {
    const int D = d + 1;
    for (int k = 0; k < D; k++) w[k] = 0;
    for (int it = 0; it < 100; it++) {
        double g[9] = {0}, H[81] = {0};
        for (size_t i = 0; i < n; i++) {
            double z = w[d];
            for (int k = 0; k < d; k++) z += w[k] * X[i * d + k];
            double p = 1 / (1 + exp(-z)), q = p * (1 - p), x[9];
            for (int k = 0; k < d; k++) x[k] = X[i * d + k];
            x[d] = 1;
            for (int a = 0; a < D; a++) {
                g[a] += (p - y[i]) * x[a];
                for (int b = 0; b < D; b++) H[a * D + b] += q * x[a] * x[b];
            }
        }
        for (int k = 0; k < d; k++) g[k] += lambda * (double)n * w[k], H[k * D + k] += lambda * (double)n;
        H[d * D + d] += 1e-9;
        /* solve H dw = g by Gaussian elimination with partial pivoting */
        double A[81], b[9];
        memcpy(A, H, sizeof A);
        memcpy(b, g, sizeof b);
        int ok = 1;
        for (int c = 0; c < D && ok; c++) {
            int piv = c;
            for (int r = c + 1; r < D; r++)
                if (fabs(A[r * D + c]) > fabs(A[piv * D + c])) piv = r;
            if (fabs(A[piv * D + c]) < 1e-300) {
                ok = 0;
                break;
            }
            for (int k = 0; k < D; k++) {
                double t = A[c * D + k];
                A[c * D + k] = A[piv * D + k];
                A[piv * D + k] = t;
            }
            double t = b[c];
            b[c] = b[piv];
            b[piv] = t;
            for (int r = c + 1; r < D; r++) {
                double f = A[r * D + c] / A[c * D + c];
                for (int k = c; k < D; k++) A[r * D + k] -= f * A[c * D + k];
                b[r] -= f * b[c];
            }
        }
        if (!ok) break;
        double step = 0;
        for (int c = D - 1; c >= 0; c--) {
            double s = b[c];
            for (int k = c + 1; k < D; k++) s -= A[c * D + k] * b[k];
            b[c] = s / A[c * D + c];
            w[c] -= b[c];
            step += fabs(b[c]);
        }
        if (step < 1e-10) break;
    }
}

/* The pooled columns: each predictor, its recalibrated version, and the stacks. */
typedef struct {
    char name[256];
    float *p;          /* (n) pooled held-out probabilities */
    double fit_seconds;/* summed over runs (NaN when a run did not report it) */
    int recal_of;      /* the column this recalibrates, or -1 */
    int role_stack;    /* 1 for a stacked predictor */
    int n_mean;        /* runs of each fold whose probabilities it averages (--average; else 1) */
} pool_col;

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, z = *(const int64_t *)b;
    return (x > z) - (x < z);
}

/* Whether two tables hold out the same patients, as many rows each (run_join then matches every
 * row). Out of memory reads as "not the same", which the pool then refuses as two runs of
 * nothing in common. */
static int same_patients(const pred_table *a, const pred_table *b) {
    if (a->n != b->n) return 0;
    int64_t *x = cf_malloc((2 * a->n + 1) * sizeof *x);
    if (!x) return 0;
    memcpy(x, a->sid, a->n * sizeof *x);
    memcpy(x + a->n, b->sid, b->n * sizeof *x);
    qsort(x, a->n, sizeof *x, cmp_i64);
    qsort(x + a->n, b->n, sizeof *x, cmp_i64);
    int same = !memcmp(x, x + a->n, a->n * sizeof *x);
    free(x);
    return same;
}

/* Mean, min and max of the runs' AUROCs, skipping runs with one class (NaN when none has both). */
/* One table cell: a paired AUROC difference with its interval, said higher or lower when the
 * interval excludes zero; the reference column's own cell names it. Both tables print through it. */
/* An interval under key in o: {"value", "lo", "hi"}, the ends only when known. */
static void add_ci(cJSON *o, const char *key, const eval_ci *ci) {
    cJSON *m = cJSON_AddObjectToObject(o, key);
    cJSON_AddNumberToObject(m, "value", ci->value);
    if (!isnan(ci->lo)) cJSON_AddNumberToObject(m, "lo", ci->lo), cJSON_AddNumberToObject(m, "hi", ci->hi);
}

/* A Markdown table's header and rule: head (the first columns), a paired-difference column per
 * reference ("AUROC - NAME" and ref_note), then tail (the last columns, or ""); n_cols counts
 * the columns of head and tail. */
static void table_head(eval_buf *b, const char *head, const char *ref_note, const char *tail, size_t n_cols,
                       const char *const *refs, size_t nref) {
    eb_str(b, head);
    for (size_t k = 0; k < nref; k++) eb_fmt(b, " AUROC - %s%s |", refs[k], ref_note);
    eb_str(b, tail);
    eb_str(b, "\n|");
    for (size_t k = 0; k < n_cols + nref; k++) eb_str(b, "---|");
    eb_str(b, "\n");
}

static void diff_cell(eval_buf *b, const eval_ci *d, int is_reference) {
    if (is_reference) eb_str(b, " (reference) |");
    else if (isnan(d->lo)) eb_fmt(b, " %+.3f |", d->value);
    else eb_fmt(b, " %+.3f (%+.3f, %+.3f)%s |", d->value, d->lo, d->hi, d->lo > 0 ? " higher" : d->hi < 0 ? " lower" : "");
}

static void run_auroc_summary(const double *a, size_t R, double *mean, double *lo, double *hi) {
    double s = 0;
    size_t k = 0;
    *lo = INFINITY, *hi = -INFINITY;
    for (size_t r = 0; r < R; r++)
        if (!isnan(a[r])) {
            s += a[r], k++;
            if (a[r] < *lo) *lo = a[r];
            if (a[r] > *hi) *hi = a[r];
        }
    *mean = k ? s / (double)k : NAN;
}

int eval_pool(const eval_pool_config *cfg, cf_err *err) {
    int rc = CF_OK;
    size_t R = cfg->n_runs, n = 0, ncol = 0, base_cols = 0;
    pool_run *runs = cf_calloc(R ? R : 1, sizeof *runs);
    pool_col *cols = NULL;
    int64_t *sid = NULL;
    uint8_t *y = NULL;
    size_t *run_of = NULL;
    char *md = NULL;
    cJSON *root = NULL;
    if (!runs) return cf_fail(err, CF_EINTERNAL, "out of memory");
    if (!R) {
        free(runs);
        return cf_fail(err, CF_EINPUT, "no evaluation directories to pool");
    }
    size_t loaded = 0;
    for (size_t r = 0; r < R; r++, loaded++)
        if ((rc = read_run(cfg->runs[r], &runs[r], err))) {
            loaded++;
            goto done;
        }
    /* Runs of one fold join into one (every fold must then have the same predictors); so do two
     * runs of one single split, known by holding out the same patients (the members of an
     * ensemble trained on all of one set and evaluated on another). */
    for (size_t r = 1; r < R; r++) {
        size_t q = 0;
        while (q < r && !(runs[q].folds && runs[q].folds == runs[r].folds && runs[q].fold == runs[r].fold) &&
               !(!runs[q].folds && !runs[r].folds && same_patients(&runs[q].held, &runs[r].held)))
            q++;
        if (q == r) continue;
        if (strcmp(runs[r].task, runs[q].task)) continue; /* refused below */
        if ((rc = run_join(&runs[q], &runs[r], cfg, err))) goto done;
        run_free(&runs[r]);
        memmove(&runs[r], &runs[r + 1], (R - r - 1) * sizeof *runs);
        R--, loaded--, r--;
    }
    for (size_t r = 1; r < R; r++) {
        if (strcmp(runs[r].task, runs[0].task)) {
            rc = cf_fail(err, CF_EINPUT, "%s evaluates task %s but %s evaluates %s: pool runs of one task", runs[r].dir,
                         runs[r].task, runs[0].dir, runs[0].task);
            goto done;
        }
        if (runs[r].folds != runs[0].folds || (runs[r].folds && runs[r].fold == runs[0].fold)) {
            rc = cf_fail(err, CF_EINPUT, "%s and %s are not distinct folds of one cross-validation", runs[0].dir,
                         runs[r].dir);
            goto done;
        }
    }
    /* The columns every run has, in the first run's order. */
    int colmap[MAX_COLS][64];
    if (R > 64) {
        rc = cf_fail(err, CF_EINPUT, "at most 64 runs can be pooled");
        goto done;
    }
    size_t n_stack = cfg->n_stacks;
    cols = cf_calloc(2 * MAX_COLS + n_stack + 1, sizeof *cols);
    if (!cols) {
        rc = cf_fail(err, CF_EINTERNAL, "out of memory");
        goto done;
    }
    for (size_t c = 0; c < runs[0].held.n_cols; c++) {
        int ok = 1;
        for (size_t r = 0; r < R && ok; r++) ok = (colmap[base_cols][r] = find_col(&runs[r].held, runs[0].held.names[c])) >= 0;
        if (!ok) continue;
        snprintf(cols[base_cols].name, sizeof cols[base_cols].name, "%s", runs[0].held.names[c]);
        cols[base_cols].recal_of = -1;
        cols[base_cols].n_mean = 1; /* the runs averaged where they did not all agree */
        for (size_t r = 0; r < R; r++)
            if (runs[r].n_mean[colmap[base_cols][r]] > cols[base_cols].n_mean)
                cols[base_cols].n_mean = runs[r].n_mean[colmap[base_cols][r]];
        base_cols++;
    }
    /* An average of seeds is one predictor only when every fold joins as many runs (a fold whose
     * members agree on every row, e.g. each kept the same constant, joins them as their mean). */
    for (size_t k = 0; k < cfg->n_averages; k++) {
        size_t c = 0;
        while (c < base_cols && strcmp(cols[c].name, cfg->averages[k])) c++;
        if (c == base_cols) {
            rc = cf_fail(err, CF_EINPUT, "--average %s: no predictor of that name in every run", cfg->averages[k]);
            goto done;
        }
        for (size_t r = 0; r < R; r++)
            if (runs[r].n_joined[colmap[c][r]] != runs[0].n_joined[colmap[c][0]]) {
                rc = cf_fail(err, CF_EINPUT, "--average %s: %s averages %d runs of it but %s %d: give every fold "
                             "as many runs", cfg->averages[k], runs[0].dir, runs[0].n_joined[colmap[c][0]], runs[r].dir,
                             runs[r].n_joined[colmap[c][r]]);
                goto done;
            }
    }
    for (size_t r = 0; r < R; r++) n += runs[r].held.n;
    sid = cf_malloc((n ? n : 1) * sizeof *sid);
    y = cf_malloc(n ? n : 1);
    run_of = cf_malloc((n ? n : 1) * sizeof *run_of);
    if (!sid || !y || !run_of) {
        rc = cf_fail(err, CF_EINTERNAL, "out of memory");
        goto done;
    }
    {
        size_t i = 0;
        for (size_t r = 0; r < R; r++)
            for (size_t k = 0; k < runs[r].held.n; k++, i++) {
                sid[i] = runs[r].held.sid[k];
                y[i] = runs[r].held.y[k];
                run_of[i] = r;
            }
    }
    /* A patient held out in two runs would be counted twice (and trained on in one of them). */
    {
        int64_t *ids = cf_malloc((n ? n : 1) * sizeof *ids);
        if (!ids) {
            rc = cf_fail(err, CF_EINTERNAL, "out of memory");
            goto done;
        }
        size_t m = 0;
        for (size_t r = 0; r < R; r++) {
            size_t a = m;
            for (size_t k = 0; k < runs[r].held.n; k++) ids[m++] = runs[r].held.sid[k];
            qsort(ids + a, m - a, sizeof *ids, cmp_i64);
            size_t u = a; /* one entry per subject of this run */
            for (size_t k = a; k < m; k++)
                if (k == a || ids[k] != ids[k - 1]) ids[u++] = ids[k];
            m = u;
        }
        qsort(ids, m, sizeof *ids, cmp_i64);
        for (size_t q = 1; q < m; q++)
            if (ids[q] == ids[q - 1]) {
                long long dup = (long long)ids[q];
                free(ids);
                rc = cf_fail(err, CF_EINPUT, "subject %lld is held out in two of the pooled runs: pool the folds of "
                             "one cross-validation", dup);
                goto done;
            }
        free(ids);
    }
    /* raw columns */
    for (size_t c = 0; c < base_cols; c++) {
        if (!(cols[c].p = cf_malloc((n ? n : 1) * sizeof *cols[c].p))) {
            rc = cf_fail(err, CF_EINTERNAL, "out of memory");
            goto done;
        }
        cols[c].fit_seconds = 0;
        for (size_t i = 0, r = 0; r < R; r++) {
            int jc = colmap[c][r];
            cols[c].fit_seconds += runs[r].fit_seconds[jc];
            for (size_t k = 0; k < runs[r].held.n; k++, i++) cols[c].p[i] = runs[r].held.p[k * runs[r].held.n_cols + (size_t)jc];
        }
    }
    ncol = base_cols;
    /* stacks: a logistic regression on the logits of the named predictors, per run on its
     * tuning rows, applied to its held-out rows */
    for (size_t s = 0; s < n_stack; s++) {
        char spec[512];
        snprintf(spec, sizeof spec, "%s", cfg->stacks[s]);
        int members[8], nm = 0;
        for (char *sv = NULL, *tok = strtok_r(spec, "+", &sv); tok; tok = strtok_r(NULL, "+", &sv)) {
            int c = -1;
            for (size_t k = 0; k < base_cols; k++)
                if (!strcmp(cols[k].name, tok)) c = (int)k;
            if (c < 0 || nm == 8) {
                rc = cf_fail(err, CF_EINPUT, "--stack %s: %s is not a predictor every run has (or more than 8 members)",
                             cfg->stacks[s], tok);
                goto done;
            }
            members[nm++] = c;
        }
        if (nm < 2) {
            rc = cf_fail(err, CF_EINPUT, "--stack %s: name at least two predictors joined by '+'", cfg->stacks[s]);
            goto done;
        }
        pool_col *sc = &cols[ncol];
        snprintf(sc->name, sizeof sc->name, "stack(%s)", cfg->stacks[s]);
        sc->recal_of = -1;
        sc->role_stack = 1;
        sc->fit_seconds = 0;
        if (!(sc->p = cf_malloc((n ? n : 1) * sizeof *sc->p))) {
            rc = cf_fail(err, CF_EINTERNAL, "out of memory");
            goto done;
        }
        for (size_t i0 = 0, r = 0; r < R; r++) {
            const pred_table *tu = &runs[r].tune, *he = &runs[r].held;
            double *X = cf_malloc((tu->n ? tu->n : 1) * (size_t)nm * sizeof *X), w[9];
            if (!X) {
                rc = cf_fail(err, CF_EINTERNAL, "out of memory");
                goto done;
            }
            for (size_t k = 0; k < tu->n; k++)
                for (int m = 0; m < nm; m++) X[k * nm + m] = logit(tu->p[k * tu->n_cols + (size_t)colmap[members[m]][r]]);
            fit_lr(X, tu->y, tu->n, nm, 1e-3, w);
            free(X);
            for (size_t k = 0; k < he->n; k++) {
                double z = w[nm];
                for (int m = 0; m < nm; m++) z += w[m] * logit(he->p[k * he->n_cols + (size_t)colmap[members[m]][r]]);
                sc->p[i0 + k] = (float)(1 / (1 + exp(-z)));
            }
            i0 += he->n;
        }
        ncol++;
    }
    /* recalibrated versions of every column (Platt scaling on each run's tuning rows) */
    size_t nc0 = ncol;
    for (size_t c = 0; c < nc0; c++) {
        pool_col *rcol = &cols[ncol];
        snprintf(rcol->name, sizeof rcol->name, "%s", cols[c].name);
        rcol->recal_of = (int)c;
        rcol->fit_seconds = NAN;
        if (!(rcol->p = cf_malloc((n ? n : 1) * sizeof *rcol->p))) {
            rc = cf_fail(err, CF_EINTERNAL, "out of memory");
            goto done;
        }
        for (size_t i0 = 0, r = 0; r < R; r++) {
            const pred_table *tu = &runs[r].tune, *he = &runs[r].held;
            double *X = cf_malloc((tu->n ? tu->n : 1) * sizeof *X), w[2];
            if (!X) {
                rc = cf_fail(err, CF_EINTERNAL, "out of memory");
                goto done;
            }
            if (cols[c].role_stack) {
                /* a stack is already a logistic regression fitted on the tuning rows */
                for (size_t k = 0; k < he->n; k++) rcol->p[i0 + k] = cols[c].p[i0 + k];
            } else {
                for (size_t k = 0; k < tu->n; k++) X[k] = logit(tu->p[k * tu->n_cols + (size_t)colmap[c][r]]);
                fit_lr(X, tu->y, tu->n, 1, 1e-6, w);
                for (size_t k = 0; k < he->n; k++) {
                    double z = w[0] * logit(he->p[k * he->n_cols + (size_t)colmap[c][r]]) + w[1];
                    rcol->p[i0 + k] = (float)(1 / (1 + exp(-z)));
                }
            }
            free(X);
            i0 += he->n;
        }
        ncol++;
    }
    /* metrics */
    eval_boot_options bo = {.n_boot = cfg->n_boot, .seed = cfg->seed};
    eval_metrics *met = cf_calloc(ncol, sizeof *met);
    size_t nref = cfg->n_refs;
    eval_ci *diffs = cf_calloc((nc0 ? nc0 : 1) * (nref ? nref : 1), sizeof *diffs);
    const float **pp = cf_malloc((nc0 ? nc0 : 1) * sizeof *pp);
    if (!met || !diffs || !pp) {
        free(met), free(diffs), free(pp);
        rc = cf_fail(err, CF_EINTERNAL, "out of memory");
        goto done;
    }
    for (size_t c = 0; c < ncol && !rc; c++) rc = eval_metrics_compute(cols[c].p, y, sid, n, &bo, &met[c], err);
    for (size_t c = 0; c < nc0; c++) pp[c] = cols[c].p;
    int ref_col[8];
    for (size_t k = 0; k < nref && !rc; k++) {
        ref_col[k] = -1;
        for (size_t c = 0; c < nc0; c++)
            if (!strcmp(cols[c].name, cfg->refs[k])) ref_col[k] = (int)c;
        if (ref_col[k] < 0) rc = cf_fail(err, CF_EINPUT, "--reference %s: no such predictor in every run", cfg->refs[k]);
        else rc = eval_auroc_diffs(pp, nc0, cols[ref_col[k]].p, y, sid, n, &bo, diffs + k * nc0, err);
    }
    /* Each run's model is calibrated its own way, so a pooled ranking of raw probabilities mixes
     * scales; the recalibrated columns (each run mapped onto the outcome scale by its own tuning
     * rows) are what one deployed, calibrated model would rank. Their paired differences, and the
     * mean of the runs' own AUROCs, go beside the raw figures. */
    eval_ci *rdiffs = cf_calloc((nc0 ? nc0 : 1) * (nref ? nref : 1), sizeof *rdiffs);
    double *run_auc = cf_malloc((nc0 ? nc0 : 1) * R * sizeof *run_auc);
    if (!rc && (!rdiffs || !run_auc)) rc = cf_fail(err, CF_EINTERNAL, "out of memory");
    for (size_t c = 0; c < nc0 && !rc; c++) pp[c] = cols[nc0 + c].p;
    for (size_t k = 0; k < nref && !rc; k++)
        rc = eval_auroc_diffs(pp, nc0, cols[nc0 + (size_t)ref_col[k]].p, y, sid, n, &bo, rdiffs + k * nc0, err);
    for (size_t c = 0; c < nc0 && !rc; c++)
        for (size_t i0 = 0, r = 0; r < R; i0 += runs[r].held.n, r++)
            run_auc[c * R + r] = eval_auroc(cols[c].p + i0, y + i0, runs[r].held.n);
    if (rc) {
        free(met), free(diffs), free(pp), free(rdiffs), free(run_auc);
        goto done;
    }
    size_t pos = 0;
    for (size_t i = 0; i < n; i++) pos += y[i];
    /* the table */
    eval_buf b = {0};
    eb_fmt(&b, "Pooled held-out predictions of %zu evaluation%s of task %s: %zu rows, %zu positive (%.1f%%)%s.\n"
               "Intervals: 95%% bootstrap over patients (%u resamples); differences are paired (the same resampled "
               "patients on both sides). ECE after recalibration: Platt scaling fitted on each run's tuning rows.\n\n",
           R, R == 1 ? "" : "s", runs[0].task, n, pos, n ? 100.0 * (double)pos / (double)n : 0.0,
           runs[0].folds ? " (cross-validation folds)" : "", cfg->n_boot);
    for (size_t c = 0; c < base_cols; c++)
        if (cols[c].n_mean > 1)
            eb_fmt(&b, "%s: the mean of %d runs' probabilities in each fold (--average: an ensemble of fine-tunings, seeds or pretrainings).\n\n",
                   cols[c].name, cols[c].n_mean);
    table_head(&b, "| predictor | AUROC | AUPRC | Brier | ECE | ECE recalibrated |", "", " fit (s, all runs) |", 7,
               cfg->refs, nref);
    for (size_t c = 0; c < nc0; c++) {
        eb_fmt(&b, "| %s | ", cols[c].name);
        eb_ci(&b, &met[c].auroc);
        eb_str(&b, " | ");
        eb_ci(&b, &met[c].auprc);
        eb_str(&b, " | ");
        eb_ci(&b, &met[c].brier);
        eb_str(&b, " | ");
        eb_ci(&b, &met[c].ece);
        eb_str(&b, " | ");
        eb_ci(&b, &met[nc0 + c].ece);
        eb_str(&b, " |");
        for (size_t k = 0; k < nref; k++) {
            const eval_ci *d = &diffs[k * nc0 + c];
            diff_cell(&b, d, (int)c == ref_col[k]);
        }
        if (isnan(cols[c].fit_seconds)) eb_str(&b, " - |\n");
        else eb_fmt(&b, " %.0f |\n", cols[c].fit_seconds);
    }
    eb_fmt(&b, "\nEach run recalibrated (Platt scaling fitted on its own tuning rows, as one deployed model "
               "would be): the pooled AUROC then ranks every run's rows on one scale, where the raw pooled AUROC "
               "above mixes runs calibrated differently. Beside it, the mean (min-max) of the %zu runs' own "
               "AUROCs, and paired differences between recalibrated predictors.\n\n", R);
    table_head(&b, "| predictor | AUROC, runs recalibrated | mean run AUROC (min-max) |", ", both recalibrated", "", 3,
               cfg->refs, nref);
    for (size_t c = 0; c < nc0; c++) {
        double mean, lo, hi;
        run_auroc_summary(run_auc + c * R, R, &mean, &lo, &hi);
        eb_fmt(&b, "| %s | ", cols[c].name);
        eb_ci(&b, &met[nc0 + c].auroc);
        if (isnan(mean)) eb_str(&b, " | - |");
        else eb_fmt(&b, " | %.3f (%.3f-%.3f) |", mean, lo, hi);
        for (size_t k = 0; k < nref; k++) {
            const eval_ci *d = &rdiffs[k * nc0 + c];
            diff_cell(&b, d, (int)c == ref_col[k]);
        }
        eb_str(&b, "\n");
    }
    if (b.oom) {
        free(b.p);
        free(rdiffs), free(run_auc);
        free(met), free(diffs), free(pp);
        rc = cf_fail(err, CF_EINTERNAL, "out of memory");
        goto done;
    }
    md = b.p;
    if (!cfg->quiet) fputs(md, stdout);
    /* JSON */
    root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "producer", "clinfm pool");
    cJSON_AddStringToObject(root, "task", runs[0].task);
    cJSON_AddNumberToObject(root, "rows", (double)n);
    cJSON_AddNumberToObject(root, "positives", (double)pos);
    cJSON_AddNumberToObject(root, "bootstrap_replicates", cfg->n_boot);
    cJSON *jr = cJSON_AddArrayToObject(root, "runs");
    for (size_t r = 0; r < R; r++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "dir", runs[r].dir);
        if (runs[r].folds) cJSON_AddNumberToObject(o, "fold", runs[r].fold), cJSON_AddNumberToObject(o, "folds", runs[r].folds);
        cJSON_AddNumberToObject(o, "held_out_rows", (double)runs[r].held.n);
        cJSON_AddNumberToObject(o, "tuning_rows", (double)runs[r].tune.n);
        cJSON_AddItemToArray(jr, o);
    }
    cJSON *jp = cJSON_AddArrayToObject(root, "predictors");
    for (size_t c = 0; c < nc0; c++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", cols[c].name);
        cJSON_AddBoolToObject(o, "stacked", cols[c].role_stack);
        if (cols[c].n_mean > 1) cJSON_AddNumberToObject(o, "runs_averaged", cols[c].n_mean);
        const eval_ci *ci[5] = {&met[c].auroc, &met[c].auprc, &met[c].brier, &met[c].ece, &met[nc0 + c].ece};
        const char *nm[5] = {"auroc", "auprc", "brier", "ece", "ece_recalibrated"};
        for (int k = 0; k < 5; k++) add_ci(o, nm[k], ci[k]);
        cJSON_AddNumberToObject(o, "brier_recalibrated", met[nc0 + c].brier.value);
        cJSON *dd = cJSON_AddObjectToObject(o, "auroc_minus");
        for (size_t k = 0; k < nref; k++) add_ci(dd, cfg->refs[k], &diffs[k * nc0 + c]);
        add_ci(o, "auroc_recalibrated", &met[nc0 + c].auroc);
        cJSON *rd = cJSON_AddObjectToObject(o, "auroc_recalibrated_minus");
        for (size_t k = 0; k < nref; k++) add_ci(rd, cfg->refs[k], &rdiffs[k * nc0 + c]);
        double mean, lo, hi;
        run_auroc_summary(run_auc + c * R, R, &mean, &lo, &hi);
        cJSON *ra = cJSON_AddObjectToObject(o, "auroc_runs");
        if (!isnan(mean)) {
            cJSON_AddNumberToObject(ra, "mean", mean);
            cJSON_AddNumberToObject(ra, "min", lo);
            cJSON_AddNumberToObject(ra, "max", hi);
        }
        cJSON *rv = cJSON_AddArrayToObject(ra, "values");
        for (size_t r = 0; r < R; r++)
            cJSON_AddItemToArray(rv, isnan(run_auc[c * R + r]) ? cJSON_CreateNull() : cJSON_CreateNumber(run_auc[c * R + r]));
        if (!isnan(cols[c].fit_seconds)) cJSON_AddNumberToObject(o, "fit_seconds_all_runs", cols[c].fit_seconds);
        cJSON_AddItemToArray(jp, o);
    }
    CF_FREE_ALL(met, diffs, pp, rdiffs, run_auc);
    if (cfg->out_dir) {
        if (mkdir(cfg->out_dir, 0777) != 0 && errno != EEXIST) {
            rc = cf_fail_errno(err, CF_EINPUT, "%s: cannot create the output directory", cfg->out_dir);
            goto done;
        }
        char path[4400];
        char *js = cJSON_Print(root);
        if (!js) {
            rc = cf_fail(err, CF_EINTERNAL, "out of memory");
            goto done;
        }
        snprintf(path, sizeof path, "%s/pool.json", cfg->out_dir);
        rc = atomic_write_file(path, js, strlen(js), err);
        free(js);
        snprintf(path, sizeof path, "%s/pool.md", cfg->out_dir);
        if (!rc) rc = atomic_write_file(path, md, strlen(md), err);
        /* pooled predictions: every column, the stacks, and the recalibrated ones */
        eval_buf pb = {0};
        eb_str(&pb, "subject_id,prediction_time,boolean_value,run");
        for (size_t c = 0; c < ncol; c++) eb_fmt(&pb, ",%s%s", cols[c].name, cols[c].recal_of >= 0 ? "_recalibrated" : "");
        eb_str(&pb, "\n");
        for (size_t i = 0, r = 0; r < R; r++)
            for (size_t k = 0; k < runs[r].held.n; k++, i++) {
                eb_fmt(&pb, "%lld,%s,%s,%zu", (long long)sid[i], runs[r].held.ptime[k], y[i] ? "true" : "false", r);
                for (size_t c = 0; c < ncol; c++) eb_fmt(&pb, ",%.9g", (double)cols[c].p[i]);
                eb_str(&pb, "\n");
            }
        snprintf(path, sizeof path, "%s/predictions.csv", cfg->out_dir);
        if (!rc) rc = sbuf_write_file(&pb, path, err);
        else free(pb.p);
    }
done:
    cJSON_Delete(root);
    free(md);
    if (cols)
        for (size_t c = 0; c < 2 * MAX_COLS + n_stack + 1; c++) free(cols[c].p);
    CF_FREE_ALL(cols, sid, y, run_of);
    for (size_t r = 0; r < loaded && r < R; r++) run_free(&runs[r]);
    free(runs);
    return rc;
}
