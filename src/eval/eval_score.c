/* A clinical score the records already hold, as a predictor: the reference a hospital has
 * before any model (SAPS-I and SOFA in the PhysioNet 2012 outcome file, APACHE in others).
 *
 * The score is the last value of one code at or before the prediction time. It is read even
 * when the task marks the code never-input: no other predictor may see it, but the score itself
 * is the comparison. A one-variable logistic regression fitted on the train rows turns it into a
 * probability (rows without the score take the train median), so the score's calibration can be
 * reported too; its AUROC is the score's own, whatever the fit, since the map is monotone. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "eval/eval.h"

typedef struct {
    char *name, *code, *desc;
    int64_t code_id;     /* in the store the predictor was fitted on (-1: absent) */
    const store *s;
    double a, b, fill;   /* p = sigmoid(a x + b); fill replaces a missing score */
    size_t n_train, n_missing_train;
    int fitted;
} score_pred;

/* The last value of the score's code in the row's history, or NaN. */
static double score_of(const score_pred *sp, const store *s, const label_row *r) {
    if (sp->code_id < 0) return NAN;
    double v = NAN;
    for (uint64_t e = s->subject_start[r->subject_index]; e < r->history_end; e++)
        if (s->code[e] == (uint32_t)sp->code_id && isfinite(s->numeric[e])) v = s->numeric[e];
    return v;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int score_fit(void *ctx, const store *s, const label_row *train, size_t n_train, const label_row *tuning,
                     size_t n_tuning, cf_err *err) {
    (void)tuning;
    (void)n_tuning;
    score_pred *sp = ctx;
    sp->s = s;
    sp->code_id = store_find_code(s, sp->code);
    if (sp->code_id < 0) return cf_fail(err, CF_EINPUT, "--score %s: the store has no code %s", sp->name, sp->code);
    double *x = cf_malloc((n_train ? n_train : 1) * sizeof *x), *sorted = cf_malloc((n_train ? n_train : 1) * sizeof *sorted);
    if (!x || !sorted) {
        free(x), free(sorted);
        return cf_fail(err, CF_EINTERNAL, "out of memory");
    }
    size_t m = 0;
    for (size_t i = 0; i < n_train; i++) {
        x[i] = score_of(sp, s, &train[i]);
        if (isfinite(x[i])) sorted[m++] = x[i];
    }
    sp->n_train = n_train;
    sp->n_missing_train = n_train - m;
    if (!m) {
        free(x), free(sorted);
        return cf_fail(err, CF_EINPUT, "--score %s: no train row has a value of %s before its prediction time", sp->name,
                       sp->code);
    }
    qsort(sorted, m, sizeof *sorted, cmp_double);
    sp->fill = sorted[m / 2];
    /* Standardise, then Newton's method on the two coefficients (a tiny ridge keeps it finite
     * when the score separates the classes). */
    double mean = 0, sd = 0;
    for (size_t i = 0; i < m; i++) mean += sorted[i];
    mean /= (double)m;
    for (size_t i = 0; i < m; i++) sd += (sorted[i] - mean) * (sorted[i] - mean);
    sd = sqrt(sd / (double)m);
    if (!(sd > 0)) sd = 1;
    double a = 0, b = 0;
    for (int it = 0; it < 50; it++) {
        double ga = 0, gb = 0, haa = 1e-6, hab = 0, hbb = 1e-6;
        for (size_t i = 0; i < n_train; i++) {
            double z = ((isfinite(x[i]) ? x[i] : sp->fill) - mean) / sd;
            double p = 1 / (1 + exp(-(a * z + b))), y = train[i].label;
            ga += (p - y) * z, gb += p - y;
            double w = p * (1 - p);
            haa += w * z * z, hab += w * z, hbb += w;
        }
        ga += 1e-6 * a;
        double det = haa * hbb - hab * hab;
        if (!(det > 0)) break;
        double da = (hbb * ga - hab * gb) / det, db = (haa * gb - hab * ga) / det;
        a -= da, b -= db;
        if (fabs(da) + fabs(db) < 1e-10) break;
    }
    sp->a = a / sd;
    sp->b = b - a * mean / sd;
    sp->fitted = 1;
    free(x);
    free(sorted);
    return CF_OK;
}

static int score_predict(void *ctx, const store *s, const label_row *rows, size_t n, float *probs, cf_err *err) {
    score_pred *sp = ctx;
    if (!sp->fitted) return cf_fail(err, CF_EINTERNAL, "score predict before fit");
    if (s != sp->s) { /* another store: its own code id */
        sp->code_id = store_find_code(s, sp->code);
        sp->s = s;
    }
    for (size_t i = 0; i < n; i++) {
        double v = score_of(sp, s, &rows[i]);
        double z = sp->a * (isfinite(v) ? v : sp->fill) + sp->b;
        probs[i] = (float)(1 / (1 + exp(-z)));
    }
    return CF_OK;
}

static int score_bind(void *ctx, const store *s, const task_labels *l, cf_err *err) {
    (void)l;
    (void)err;
    score_pred *sp = ctx;
    sp->s = s;
    sp->code_id = store_find_code(s, sp->code);
    return CF_OK;
}

static char *score_describe(void *ctx) {
    score_pred *sp = ctx;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "code", sp->code);
    cJSON_AddStringToObject(o, "reads", "the last value of the code at or before the prediction time (a score the "
                                        "records hold; never input to any other predictor)");
    cJSON_AddStringToObject(o, "calibration", "one-variable logistic regression on the train rows");
    cJSON_AddNumberToObject(o, "slope", sp->a);
    cJSON_AddNumberToObject(o, "intercept", sp->b);
    cJSON_AddNumberToObject(o, "missing_filled_with_train_median", sp->fill);
    cJSON_AddNumberToObject(o, "train_rows", (double)sp->n_train);
    cJSON_AddNumberToObject(o, "train_rows_without_score", (double)sp->n_missing_train);
    char *txt = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return txt;
}

int eval_score_new(eval_predictor *p, const char *spec, cf_err *err) {
    memset(p, 0, sizeof *p);
    const char *eq = strchr(spec, '=');
    if (!eq || eq == spec || !eq[1])
        return cf_fail(err, CF_EINPUT, "--score expects NAME=CODE, such as SAPS-I=P12//SAPS-I");
    for (const char *c = spec; c < eq; c++)
        if (!(*c == '_' || *c == '-' || (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9')))
            return cf_fail(err, CF_EINPUT, "--score NAME=CODE: the name may hold letters, digits, '-' and '_' only");
    score_pred *sp = cf_calloc(1, sizeof *sp);
    if (!sp) return cf_fail(err, CF_EINTERNAL, "out of memory");
    size_t nl = (size_t)(eq - spec);
    sp->name = cf_malloc(nl + 7);
    sp->code = strdup(eq + 1);
    sp->desc = cf_malloc(strlen(eq + 1) + 96);
    if (!sp->name || !sp->code || !sp->desc) {
        free(sp->name), free(sp->code), free(sp->desc), free(sp);
        return cf_fail(err, CF_EINTERNAL, "out of memory");
    }
    snprintf(sp->name, nl + 7, "score_%.*s", (int)nl, spec);
    snprintf(sp->desc, strlen(eq + 1) + 96, "Reference: the clinical score recorded as %s, calibrated on train rows",
             eq + 1);
    sp->code_id = -1;
    *p = (eval_predictor){.name = sp->name, .description = sp->desc, .role = EVAL_ROLE_CANDIDATE,
                          .fit = score_fit, .predict = score_predict, .describe = score_describe,
                          .bind = score_bind, .ctx = sp};
    return CF_OK;
}

void eval_score_free(eval_predictor *p) {
    score_pred *sp = p->ctx;
    if (sp) {
        CF_FREE_ALL(sp->name, sp->code, sp->desc, sp);
    }
    memset(p, 0, sizeof *p);
}
