/* Leakage alarms: the AUROC of every single count feature on its own.
 *
 * A feature that alone separates the outcome almost perfectly (AUROC over 0.9), or as well as
 * the best full predictor, is more often a leak than a discovery: a code recorded because of
 * the outcome, a timestamp that puts a later fact before the prediction, or a count that
 * measures the record's window (how near its end, often death, is) rather than the patient.
 * Every report lists the strongest single features by name and flags those, so a reader sees
 * the alarm before the headline figure.
 *
 * The features are the all-history count baseline's (eval_features.c: columns chosen on train
 * rows), built for every labelled row of every split: the alarm is about the data and the
 * cohort, not about a fitted model, and more rows make it less noisy. Direction is free: a
 * feature whose absence predicts the outcome counts as much (AUROC = max(a, 1 - a)). Rows
 * without the feature hold 0, one tied group. The held-out AUROC is shown beside it. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval/eval_internal.h"

#define LEAK_TOP 15

/* Empirical AUROC (ties one half) of m values plus a group of zpos + zneg rows valued 0. */
static double auc_with_zeros(eval_scored *a, size_t m, size_t zpos, size_t zneg) {
    size_t P = zpos, N = zneg;
    for (size_t i = 0; i < m; i++) *(a[i].y ? &P : &N) += 1;
    if (!P || !N) return NAN;
    qsort(a, m, sizeof *a, eval_scored_cmp);
    /* walk tie groups in ascending order, the zero group merged where it belongs */
    double wins = 0, neg_below = 0;
    int zero_done = zpos + zneg == 0;
    size_t i = 0;
    while (i < m || !zero_done) {
        int take_zero = !zero_done && (i >= m || a[i].p >= 0);
        size_t gp = 0, gn = 0;
        if (take_zero) {
            gp = zpos, gn = zneg;
            zero_done = 1;
            for (; i < m && a[i].p == 0; i++) *(a[i].y ? &gp : &gn) += 1;
        } else {
            float v = a[i].p;
            for (; i < m && a[i].p == v; i++) *(a[i].y ? &gp : &gn) += 1;
        }
        wins += (double)gp * (neg_below + 0.5 * (double)gn);
        neg_below += (double)gn;
    }
    return wins / ((double)P * (double)N);
}

/* AUROC of every column of X for labels y (all rows), into auc[cols]. */
static int column_aurocs(const ml_csr *X, const uint8_t *y, double *auc, cf_err *err) {
    size_t P = 0, N = 0;
    for (size_t r = 0; r < X->n_rows; r++) *(y[r] ? &P : &N) += 1;
    size_t *cnt = cf_calloc(X->n_cols + 1, sizeof *cnt);
    eval_scored *buf = cf_malloc((X->nnz ? X->nnz : 1) * sizeof *buf);
    size_t *pos = cf_malloc((X->n_cols + 1) * sizeof *pos);
    if (!cnt || !buf || !pos) {
        free(cnt), free(buf), free(pos);
        return cf_fail(err, CF_EINTERNAL, "out of memory");
    }
    /* transpose: the nonzeros of each column together */
    for (size_t k = 0; k < X->nnz; k++) cnt[X->idx[k] + 1]++;
    for (size_t c = 0; c < X->n_cols; c++) cnt[c + 1] += cnt[c];
    memcpy(pos, cnt, (X->n_cols + 1) * sizeof *pos);
    for (size_t r = 0; r < X->n_rows; r++)
        for (size_t k = X->indptr[r]; k < X->indptr[r + 1]; k++) buf[pos[X->idx[k]]++] = (eval_scored){X->val[k], y[r]};
    for (size_t c = 0; c < X->n_cols; c++) {
        size_t m = cnt[c + 1] - cnt[c], mp = 0;
        for (size_t i = cnt[c]; i < cnt[c + 1]; i++) mp += buf[i].y;
        auc[c] = auc_with_zeros(buf + cnt[c], m, P - mp, N - (m - mp));
    }
    free(cnt), free(buf), free(pos);
    return CF_OK;
}

static double strength_of(const eval_feature_auc *a) { return a->auroc; }

/* Report order: flagged first, strongest held-out first; then the others, strongest first. */
static int cmp_feat(const void *pa, const void *pb) {
    const eval_feature_auc *a = pa, *b = pb;
    if (!a->flag != !b->flag) return a->flag ? -1 : 1;
    double x = a->flag ? (isnan(a->auroc_held) ? a->auroc : a->auroc_held) : strength_of(a);
    double y = b->flag ? (isnan(b->auroc_held) ? b->auroc : b->auroc_held) : strength_of(b);
    if (x != y) return (x < y) - (x > y);
    return strcmp(a->name, b->name);
}

int eval_leak_scan(eval_leak *out, const store *s, const task_labels *l, const label_row *train, size_t n_train,
                   const eval_feature_options *opt, cf_err *err) {
    memset(out, 0, sizeof *out);
    out->flag_auroc = 0.9;
    if (!n_train || !l->n) return CF_OK;
    eval_featurizer f;
    ml_csr X = {0}, Xh = {0};
    uint8_t *y = NULL, *yh = NULL;
    double *auc = NULL, *auch = NULL;
    label_row *held = NULL;
    eval_feature_options fo = opt ? *opt : (eval_feature_options){0};
    fo.lookback = 0;
    int rc = eval_features_fit(&f, s, l, train, n_train, &fo, err);
    if (rc) return rc;
    size_t nh = 0;
    for (size_t i = 0; i < l->n; i++) nh += l->rows[i].split == SPLIT_HELD_OUT;
    y = cf_malloc(l->n);
    yh = cf_malloc(nh ? nh : 1);
    held = cf_malloc((nh ? nh : 1) * sizeof *held);
    auc = cf_malloc(f.n_cols * sizeof *auc);
    auch = cf_malloc(f.n_cols * sizeof *auch);
    if (!y || !yh || !held || !auc || !auch) {
        rc = cf_fail(err, CF_EINTERNAL, "out of memory");
        goto done;
    }
    nh = 0;
    for (size_t i = 0; i < l->n; i++) {
        y[i] = l->rows[i].label;
        *(y[i] ? &out->pos : &out->neg) += 1;
        if (l->rows[i].split == SPLIT_HELD_OUT) yh[nh] = l->rows[i].label, held[nh++] = l->rows[i];
    }
    if ((rc = eval_features_build(&f, l->rows, l->n, &X, err)) || (rc = column_aurocs(&X, y, auc, err))) goto done;
    if ((rc = eval_features_build(&f, held, nh, &Xh, err)) || (rc = column_aurocs(&Xh, yh, auch, err))) goto done;
    size_t m = 0;
    for (size_t c = 0; c < f.n_cols; c++) m += !isnan(auc[c]);
    if (!(out->top = cf_calloc(m ? m : 1, sizeof *out->top))) {
        rc = cf_fail(err, CF_EINTERNAL, "out of memory");
        goto done;
    }
    for (size_t c = 0; c < f.n_cols; c++) {
        if (isnan(auc[c])) continue;
        eval_feature_auc *a = &out->top[out->n_features];
        char name[600];
        eval_feature_name(&f, c, name, sizeof name);
        if (!(a->name = strdup(name))) {
            rc = cf_fail(err, CF_EINTERNAL, "out of memory");
            goto done;
        }
        out->n_features++;
        a->higher_means_outcome = auc[c] >= 0.5;
        a->auroc = a->higher_means_outcome ? auc[c] : 1 - auc[c];
        a->auroc_held = isnan(auch[c]) ? NAN : a->higher_means_outcome ? auch[c] : 1 - auch[c];
    }
    eval_leak_flag(out, NAN, NULL, 0);
    out->scanned = 1;
done:
    eval_featurizer_free(&f);
    ml_csr_free(&X);
    ml_csr_free(&Xh);
    free(y), free(yh), free(held), free(auc), free(auch);
    if (rc) eval_leak_free(out);
    return rc;
}

void eval_leak_flag(eval_leak *lk, double best_auroc, const char *best_name, int held_ok) {
    lk->best_auroc = best_auroc;
    lk->best_name = best_name;
    lk->n_flagged = 0;
    /* a few outcomes make any single feature's AUROC noise */
    int all_ok = lk->pos >= 10 && lk->neg >= 10;
    for (size_t i = 0; i < lk->n_features; i++) lk->top[i].flag = 0;
    for (size_t i = 0; all_ok && i < lk->n_features; i++) {
        eval_feature_auc *a = &lk->top[i];
        int held = held_ok && !isnan(a->auroc_held);
        if (a->auroc > lk->flag_auroc || (held && a->auroc_held > lk->flag_auroc)) a->flag |= EVAL_LEAK_OVER_THRESHOLD;
        /* the best predictor's AUROC is itself only a figure when the held-out rows are sufficient */
        if (held_ok && !isnan(best_auroc) && (a->auroc >= best_auroc || (held && a->auroc_held >= best_auroc)))
            a->flag |= EVAL_LEAK_BEATS_MODEL;
        lk->n_flagged += a->flag != 0;
    }
    qsort(lk->top, lk->n_features, sizeof *lk->top, cmp_feat);
    lk->n_top = lk->n_flagged > LEAK_TOP ? lk->n_flagged : LEAK_TOP;
    if (lk->n_top > lk->n_features) lk->n_top = lk->n_features;
}

void eval_leak_free(eval_leak *lk) {
    for (size_t i = 0; lk->top && i < lk->n_features; i++) free(lk->top[i].name);
    free(lk->top);
    memset(lk, 0, sizeof *lk);
}
