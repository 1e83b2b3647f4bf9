/* Value aggregates, the numeric feature family of the baselines (MEDS-Tab's min, max and mean
 * of each code's values per window, with the first and last value): see eval.h. Kept apart
 * from the count family (eval_features.c) so either can change alone.
 *
 * Codes are chosen from the train rows only, and every row's features come from its own
 * history [subject start, history_end) with never-input codes skipped, as for the counts. An
 * aggregate with no value in its window is absent (not zero): trees see missingness as
 * missingness, and the logistic regression puts it at the train mean. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval/eval.h"
#include "util/timeutil.h"


void eval_value_featurizer_free(eval_value_featurizer *f) {
    if (f->fit_first_col && f->first_col != f->fit_first_col) free(f->first_col);
    free(f->fit_first_col ? f->fit_first_col : f->first_col);
    free(f->col_code);
    memset(f, 0, sizeof *f);
}


int eval_value_features_fit(eval_value_featurizer *f, const store *s, const task_labels *l, const label_row *train,
                            size_t n, const eval_feature_options *opt, cf_err *err) {
    memset(f, 0, sizeof *f);
    f->s = s;
    f->input_ok = l->input_ok;
    size_t C = s->n_codes ? s->n_codes : 1;
    size_t min_rows = opt && opt->min_rows ? opt->min_rows : 3;
    size_t max_codes = opt && opt->max_codes ? opt->max_codes : 3000;
    uint64_t *rows_num = cf_calloc(C, sizeof *rows_num), *stamp = cf_calloc(C, sizeof *stamp);
    eval_code_freq *fr = cf_calloc(C, sizeof *fr);
    int rc = CF_OK;
    if (!rows_num || !stamp || !fr) {
        rc = cf_fail(err, CF_EINTERNAL, "out of memory");
        goto done;
    }
    for (size_t r = 0; r < n; r++) {
        uint64_t a = s->subject_start[train[r].subject_index];
        for (uint64_t e = a; e < train[r].history_end; e++) {
            uint32_t c = s->code[e];
            if (!l->input_ok[c] || !isfinite(s->numeric[e])) continue;
            if (stamp[c] != r + 1) stamp[c] = r + 1, rows_num[c]++;
        }
    }
    size_t nk = eval_rank_codes(fr, rows_num, s->n_codes, min_rows, max_codes);
    f->n_codes_kept = nk;
    f->n_cols = nk * EVAL_VALUE_COLS_PER_CODE;
    f->first_col = cf_malloc(C * sizeof *f->first_col);
    f->col_code = cf_malloc((f->n_cols ? f->n_cols : 1) * sizeof *f->col_code);
    if (!f->first_col || !f->col_code) {
        rc = cf_fail(err, CF_EINTERNAL, "out of memory");
        goto done;
    }
    memset(f->first_col, 0xff, C * sizeof *f->first_col);
    for (size_t k = 0; k < nk; k++) {
        f->first_col[fr[k].code] = (uint32_t)(k * EVAL_VALUE_COLS_PER_CODE);
        for (int j = 0; j < EVAL_VALUE_COLS_PER_CODE; j++) f->col_code[k * EVAL_VALUE_COLS_PER_CODE + j] = fr[k].code;
    }
    f->fit_s = s;
    f->fit_input_ok = l->input_ok;
    f->fit_first_col = f->first_col;
done:
    CF_FREE_ALL(rows_num, stamp, fr);
    if (rc) eval_value_featurizer_free(f);
    return rc;
}

int eval_value_features_bind(eval_value_featurizer *f, const store *s, const task_labels *l, cf_err *err) {
    if (f->first_col != f->fit_first_col) free(f->first_col);
    f->first_col = f->fit_first_col;
    f->s = f->fit_s;
    f->input_ok = f->fit_input_ok;
    if (s == f->fit_s) return CF_OK;
    uint32_t *fc = cf_malloc((s->n_codes ? s->n_codes : 1) * sizeof *fc);
    if (!fc) return cf_fail(err, CF_EINTERNAL, "out of memory");
    for (uint32_t c = 0; c < s->n_codes; c++) {
        int64_t k = store_find_code(f->fit_s, store_code_str(s, c));
        fc[c] = k < 0 ? UINT32_MAX : f->fit_first_col[k];
    }
    f->first_col = fc;
    f->s = s;
    f->input_ok = l->input_ok;
    return CF_OK;
}

/* Column j of a code's block: window-major min, max, mean, then first and last. */
static void col_meaning(size_t j, int *agg, int *window) {
    if (j < 3 * EVAL_N_WINDOWS) {
        *window = (int)(j / 3);
        *agg = (int)(j % 3);
    } else {
        *window = EVAL_N_WINDOWS - 1;
        *agg = j == 3 * EVAL_N_WINDOWS ? EVAL_AGG_FIRST : EVAL_AGG_LAST;
    }
}

char *eval_value_feature_name(const eval_value_featurizer *f, size_t col, char *buf, size_t cap) {
    if (col >= f->n_cols) {
        snprintf(buf, cap, "?");
        return buf;
    }
    static const char *const agg_name[] = {"min", "max", "mean", "first value", "last value"};
    int agg, w;
    col_meaning(col % EVAL_VALUE_COLS_PER_CODE, &agg, &w);
    const store *ns = f->fit_s ? f->fit_s : f->s; /* column codes are the fitted store's */
    if (agg >= EVAL_AGG_FIRST) snprintf(buf, cap, "%s %s", store_code_str(ns, f->col_code[col]), agg_name[agg]);
    else snprintf(buf, cap, "%s %s %s", store_code_str(ns, f->col_code[col]), agg_name[agg], eval_window_name[w]);
    return buf;
}

/* Running aggregates of one code in one row. */
typedef struct {
    float mn[EVAL_N_WINDOWS], mx[EVAL_N_WINDOWS];
    double sum[EVAL_N_WINDOWS];
    uint32_t cnt[EVAL_N_WINDOWS];
    float first, last;
} agg_state;

static int grow(ml_csr *out, size_t *cap, size_t need, cf_err *err) {
    if (need <= *cap) return CF_OK;
    size_t nc = *cap ? *cap * 2 : 4096;
    while (nc < need) nc *= 2;
    uint32_t *ni = cf_realloc_array(out->idx, nc, sizeof *ni);
    if (ni) out->idx = ni;
    float *nv = cf_realloc_array(out->val, nc, sizeof *nv);
    if (nv) out->val = nv;
    if (!ni || !nv) return cf_fail(err, CF_EINTERNAL, "out of memory");
    *cap = nc;
    return CF_OK;
}

int eval_value_features_build(const eval_value_featurizer *f, const label_row *rows, size_t n, ml_csr *out,
                              cf_err *err) {
    memset(out, 0, sizeof *out);
    const store *s = f->s;
    out->n_rows = n;
    out->n_cols = f->n_cols;
    size_t nk = f->n_codes_kept;
    agg_state *st = cf_calloc(nk ? nk : 1, sizeof *st);
    uint32_t *touched = cf_malloc((nk ? nk : 1) * sizeof *touched);
    uint8_t *seen = cf_calloc(nk ? nk : 1, 1);
    size_t cap = 0;
    int rc = CF_OK;
    out->indptr = cf_malloc((n + 1) * sizeof *out->indptr);
    if (!st || !touched || !seen || !out->indptr) {
        rc = cf_fail(err, CF_EINTERNAL, "out of memory");
        goto done;
    }
    out->indptr[0] = 0;
    for (size_t r = 0; r < n; r++) {
        size_t nt = 0;
        int64_t pt = rows[r].prediction_time;
        uint64_t a = s->subject_start[rows[r].subject_index];
        for (uint64_t e = a; e < rows[r].history_end; e++) {
            uint32_t c = s->code[e];
            float x = s->numeric[e];
            if (!f->input_ok[c] || f->first_col[c] == UINT32_MAX || !isfinite(x)) continue;
            uint32_t k = f->first_col[c] / EVAL_VALUE_COLS_PER_CODE;
            agg_state *g = &st[k];
            if (!seen[k]) {
                seen[k] = 1;
                touched[nt++] = k;
                memset(g, 0, sizeof *g);
                g->first = x;
            }
            g->last = x; /* events are in time order */
            int64_t t = s->time[e];
            for (int w = 0; w < EVAL_N_WINDOWS; w++) {
                /* static facts count in "all" only, as in the count family */
                if (t == TIME_NULL ? w != EVAL_N_WINDOWS - 1 : (pt - t) > eval_window_us[w]) continue;
                if (!g->cnt[w] || x < g->mn[w]) g->mn[w] = x;
                if (!g->cnt[w] || x > g->mx[w]) g->mx[w] = x;
                g->sum[w] += x;
                g->cnt[w]++;
            }
        }
        /* codes in column order, so each row's indices ascend */
        for (size_t i = 1; i < nt; i++)
            for (size_t j = i; j > 0 && touched[j - 1] > touched[j]; j--) {
                uint32_t tmp = touched[j - 1];
                touched[j - 1] = touched[j];
                touched[j] = tmp;
            }
        if ((rc = grow(out, &cap, out->nnz + nt * EVAL_VALUE_COLS_PER_CODE, err))) goto done;
        for (size_t i = 0; i < nt; i++) {
            uint32_t k = touched[i], base = k * EVAL_VALUE_COLS_PER_CODE;
            const agg_state *g = &st[k];
            for (int w = 0; w < EVAL_N_WINDOWS; w++) {
                if (!g->cnt[w]) continue;
                const float v3[3] = {g->mn[w], g->mx[w], (float)(g->sum[w] / g->cnt[w])};
                for (int j = 0; j < 3; j++) {
                    out->idx[out->nnz] = base + (uint32_t)(3 * w + j);
                    out->val[out->nnz++] = v3[j];
                }
            }
            out->idx[out->nnz] = base + 3 * EVAL_N_WINDOWS;
            out->val[out->nnz++] = g->first;
            out->idx[out->nnz] = base + 3 * EVAL_N_WINDOWS + 1;
            out->val[out->nnz++] = g->last;
            seen[k] = 0;
        }
        out->indptr[r + 1] = out->nnz;
    }
    rc = ml_csr_keep_valid(out, err);
done:
    CF_FREE_ALL(st, touched, seen);
    if (rc) ml_csr_free(out);
    return rc;
}
