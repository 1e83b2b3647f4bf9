/* Count features as MEDS-Tab builds them: for each kept code, how often it occurs in the last
 * 1, 7, 30 and 365 days and in all history before the prediction time; for codes with numbers,
 * the last value; and age at the prediction time. Sex, race and the like are codes (static or
 * timed) and so appear as counts.
 *
 * With a lookback (the fixed-lookback baselines), timed events older than it are ignored: the
 * "all" columns keep static facts only and last values come from within the lookback. All-
 * history counts grow with the length of the record, so where a record's window is an artefact
 * of the export (Synthea writes labs for the last ten years of a record only) they measure the
 * distance to the record's end; the fixed-lookback baselines beside them show how much of a
 * result rests on that.
 *
 * Columns are chosen from the train rows only (codes seen in at least min_rows train histories,
 * the max_codes most frequent), and every row's features come from its own history
 * [subject start, history_end) with the task's never-input codes skipped: nothing at or after a
 * later time can reach a feature. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval/eval.h"
#include "util/timeutil.h"

const int64_t eval_window_us[EVAL_N_WINDOWS] = {USEC_PER_DAY, 7 * USEC_PER_DAY, 30 * USEC_PER_DAY,
                                                365 * USEC_PER_DAY, INT64_MAX};
const char *const eval_window_name[EVAL_N_WINDOWS] = {"1d", "7d", "30d", "365d", "all"};

void eval_featurizer_free(eval_featurizer *f) {
    if (f->fit_count_col && f->count_col != f->fit_count_col) free(f->count_col);
    if (f->fit_value_col && f->value_col != f->fit_value_col) free(f->value_col);
    free(f->fit_count_col ? f->fit_count_col : f->count_col);
    free(f->fit_value_col ? f->fit_value_col : f->value_col);
    f->count_col = f->value_col = NULL;
    CF_FREE_ALL(f->col_code, f->col_kind, f->col_window);
    memset(f, 0, sizeof *f);
}

static int cmp_freq(const void *a, const void *b) {
    const eval_code_freq *x = a, *y = b;
    if (x->rows != y->rows) return x->rows > y->rows ? -1 : 1;
    return (x->code > y->code) - (x->code < y->code);
}

size_t eval_rank_codes(eval_code_freq *fr, const uint64_t *rows, uint32_t n_codes, size_t min_rows, size_t max_codes) {
    size_t nk = 0;
    for (uint32_t c = 0; c < n_codes; c++)
        if (rows[c] >= min_rows) fr[nk++] = (eval_code_freq){c, rows[c]};
    qsort(fr, nk, sizeof *fr, cmp_freq);
    return nk > max_codes ? max_codes : nk;
}

int eval_features_fit(eval_featurizer *f, const store *s, const task_labels *l, const label_row *train,
                      size_t n, const eval_feature_options *opt, cf_err *err) {
    memset(f, 0, sizeof *f);
    f->s = s;
    f->input_ok = l->input_ok;
    f->birth_code = -1;
    size_t C = s->n_codes ? s->n_codes : 1;
    size_t min_rows = opt && opt->min_rows ? opt->min_rows : 3;
    size_t max_codes = opt && opt->max_codes ? opt->max_codes : 3000;
    int64_t lookback = opt ? opt->lookback : 0;
    f->lookback = lookback;
    uint64_t *rows_with = cf_calloc(C, sizeof *rows_with), *rows_num = cf_calloc(C, sizeof *rows_num);
    uint64_t *stamp = cf_calloc(C, sizeof *stamp), *stamp_num = cf_calloc(C, sizeof *stamp_num);
    eval_code_freq *cf = cf_calloc(C, sizeof *cf);
    int rc = CF_OK;
    if (!rows_with || !rows_num || !stamp || !stamp_num || !cf) {
        rc = cf_fail(err, CF_EINTERNAL, "out of memory");
        goto done;
    }
    for (size_t r = 0; r < n; r++) {
        uint64_t a = s->subject_start[train[r].subject_index];
        for (uint64_t e = a; e < train[r].history_end; e++) {
            uint32_t c = s->code[e];
            if (!l->input_ok[c]) continue;
            if (lookback && s->time[e] != TIME_NULL && train[r].prediction_time - s->time[e] > lookback) continue;
            if (stamp[c] != r + 1) stamp[c] = r + 1, rows_with[c]++;
            if (!isnan(s->numeric[e]) && stamp_num[c] != r + 1) stamp_num[c] = r + 1, rows_num[c]++;
        }
    }
    size_t nk = eval_rank_codes(cf, rows_with, s->n_codes, min_rows, max_codes);
    size_t nv = 0;
    for (size_t k = 0; k < nk; k++)
        if (rows_num[cf[k].code] >= min_rows) nv++;
    f->n_codes_kept = nk;
    f->n_value_cols = nv;
    f->n_cols = nk * EVAL_N_WINDOWS + nv + 1;
    f->count_col = cf_malloc(C * sizeof *f->count_col);
    f->value_col = cf_malloc(C * sizeof *f->value_col);
    f->col_code = cf_malloc(f->n_cols * sizeof *f->col_code);
    f->col_kind = cf_malloc(f->n_cols);
    f->col_window = cf_calloc(f->n_cols, 1);
    if (!f->count_col || !f->value_col || !f->col_code || !f->col_kind || !f->col_window) {
        rc = cf_fail(err, CF_EINTERNAL, "out of memory");
        goto done;
    }
    memset(f->count_col, 0xff, C * sizeof *f->count_col);
    memset(f->value_col, 0xff, C * sizeof *f->value_col);
    size_t col = 0;
    for (size_t k = 0; k < nk; k++) {
        f->count_col[cf[k].code] = (uint32_t)col;
        for (int w = 0; w < EVAL_N_WINDOWS; w++, col++) {
            f->col_code[col] = cf[k].code;
            f->col_kind[col] = EVAL_COL_COUNT;
            f->col_window[col] = (uint8_t)w;
        }
    }
    for (size_t k = 0; k < nk; k++)
        if (rows_num[cf[k].code] >= min_rows) {
            f->value_col[cf[k].code] = (uint32_t)col;
            f->col_code[col] = cf[k].code;
            f->col_kind[col++] = EVAL_COL_VALUE;
        }
    f->col_code[col] = UINT32_MAX;
    f->col_kind[col++] = EVAL_COL_AGE;
    f->birth_code = l->birth_code;
    f->fit_s = s;
    f->fit_input_ok = l->input_ok;
    f->fit_birth_code = l->birth_code;
    f->fit_count_col = f->count_col;
    f->fit_value_col = f->value_col;
done:
    CF_FREE_ALL(rows_with, rows_num, stamp, stamp_num, cf);
    if (rc) eval_featurizer_free(f);
    return rc;
}

static int cmp_col(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

int eval_features_build(const eval_featurizer *f, const label_row *rows, size_t n, ml_csr *out, cf_err *err) {
    memset(out, 0, sizeof *out);
    const store *s = f->s;
    out->n_rows = n;
    out->n_cols = f->n_cols;
    float *dense = cf_calloc(f->n_cols, sizeof *dense);
    uint8_t *touched = cf_calloc(f->n_cols, 1);
    uint32_t *list = cf_malloc(f->n_cols * sizeof *list);
    size_t cap = 0;
    int rc = CF_OK;
    out->indptr = cf_malloc((n + 1) * sizeof *out->indptr);
    if (!dense || !touched || !list || !out->indptr) {
        rc = cf_fail(err, CF_EINTERNAL, "out of memory");
        goto done;
    }
    out->indptr[0] = 0;
    for (size_t r = 0; r < n; r++) {
        size_t nt = 0;
        int64_t pt = rows[r].prediction_time, birth = TIME_NULL;
        uint64_t a = s->subject_start[rows[r].subject_index];
        for (uint64_t e = a; e < rows[r].history_end; e++) {
            uint32_t c = s->code[e];
            if ((int64_t)c == f->birth_code && birth == TIME_NULL && s->time[e] != TIME_NULL) birth = s->time[e];
            if (!f->input_ok[c]) continue;
            if (f->lookback && s->time[e] != TIME_NULL && pt - s->time[e] > f->lookback) continue;
            uint32_t base = f->count_col[c];
            if (base != UINT32_MAX) {
                int64_t t = s->time[e];
                for (int w = 0; w < EVAL_N_WINDOWS; w++) {
                    /* static facts count in "all" only; timed events in every window they fall in */
                    if (t == TIME_NULL ? w != EVAL_N_WINDOWS - 1
                                       : (pt - t) > eval_window_us[w] || (f->lookback && w == EVAL_N_WINDOWS - 1))
                        continue; /* with a lookback, "all" holds static facts only */
                    uint32_t col = base + (uint32_t)w;
                    if (!touched[col]) touched[col] = 1, list[nt++] = col;
                    dense[col] += 1;
                }
            }
            uint32_t vc = f->value_col[c];
            if (vc != UINT32_MAX && !isnan(s->numeric[e])) {
                if (!touched[vc]) touched[vc] = 1, list[nt++] = vc;
                dense[vc] = s->numeric[e]; /* events are in time order: the last one wins */
            }
        }
        if (birth != TIME_NULL) {
            uint32_t col = (uint32_t)(f->n_cols - 1);
            touched[col] = 1, list[nt++] = col;
            dense[col] = (float)((double)(pt - birth) / (365.2425 * (double)USEC_PER_DAY));
        }
        qsort(list, nt, sizeof *list, cmp_col); /* a row's columns in order */
        if (out->nnz + nt > cap) {
            size_t nc = cap ? cap * 2 : 4096;
            while (nc < out->nnz + nt) nc *= 2;
            uint32_t *ni = cf_realloc_array(out->idx, nc, sizeof *ni);
            if (ni) out->idx = ni;
            float *nv = cf_realloc_array(out->val, nc, sizeof *nv);
            if (nv) out->val = nv;
            if (!ni || !nv) {
                rc = cf_fail(err, CF_EINTERNAL, "out of memory");
                goto done;
            }
            cap = nc;
        }
        for (size_t k = 0; k < nt; k++) {
            uint32_t col = list[k];
            out->idx[out->nnz] = col;
            out->val[out->nnz++] = dense[col];
            dense[col] = 0;
            touched[col] = 0;
        }
        out->indptr[r + 1] = out->nnz;
    }
    rc = ml_csr_keep_valid(out, err);
done:
    CF_FREE_ALL(dense, touched, list);
    if (rc) ml_csr_free(out);
    return rc;
}

char *eval_feature_name(const eval_featurizer *f, size_t col, char *buf, size_t cap) {
    if (col >= f->n_cols || f->col_kind[col] == EVAL_COL_AGE) {
        snprintf(buf, cap, col >= f->n_cols ? "?" : "age");
        return buf;
    }
    const store *ns = f->fit_s ? f->fit_s : f->s; /* column codes are the fitted store's */
    const char *code = store_code_str(ns, f->col_code[col]), *desc = store_code_desc(ns, f->col_code[col]);
    char named[400];
    /* a reader knows "Mirena 52 MG Intrauterine System", not RXNORM//235389 */
    if (*desc && strcmp(desc, code) != 0) snprintf(named, sizeof named, "%s (%.120s%s)", code, desc, strlen(desc) > 120 ? "..." : "");
    else snprintf(named, sizeof named, "%s", code);
    if (f->col_kind[col] == EVAL_COL_VALUE) snprintf(buf, cap, "%s last value", named);
    else if (f->lookback && f->col_window[col] == EVAL_N_WINDOWS - 1) snprintf(buf, cap, "%s (static fact)", named);
    else snprintf(buf, cap, "%s count %s", named, eval_window_name[f->col_window[col]]);
    return buf;
}

int eval_features_bind(eval_featurizer *f, const store *s, const task_labels *l, cf_err *err) {
    if (f->count_col != f->fit_count_col) free(f->count_col);
    if (f->value_col != f->fit_value_col) free(f->value_col);
    f->count_col = f->fit_count_col;
    f->value_col = f->fit_value_col;
    f->s = f->fit_s;
    f->input_ok = f->fit_input_ok;
    f->birth_code = f->fit_birth_code;
    if (s == f->fit_s) return CF_OK;
    size_t C = s->n_codes ? s->n_codes : 1;
    uint32_t *cc = cf_malloc(C * sizeof *cc), *vc = cf_malloc(C * sizeof *vc);
    if (!cc || !vc) {
        free(cc);
        free(vc);
        return cf_fail(err, CF_EINTERNAL, "out of memory");
    }
    /* each code of s takes the columns of the same code string in the fitted store */
    for (uint32_t c = 0; c < s->n_codes; c++) {
        int64_t k = store_find_code(f->fit_s, store_code_str(s, c));
        cc[c] = k < 0 ? UINT32_MAX : f->fit_count_col[k];
        vc[c] = k < 0 ? UINT32_MAX : f->fit_value_col[k];
    }
    f->count_col = cc;
    f->value_col = vc;
    f->s = s;
    f->input_ok = l->input_ok;
    f->birth_code = l->birth_code;
    return CF_OK;
}
