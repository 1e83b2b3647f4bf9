/* Sparse matrices; see csr.h. */
#include "ml/csr.h"

#include <stdlib.h>
#include <string.h>

#include "util/err.h"

void ml_csr_free(ml_csr *m) {
    CF_FREE_ALL(m->indptr, m->idx, m->val);
    memset(m, 0, sizeof *m);
}

int ml_csr_from_dense(ml_csr *m, const float *X, size_t n, size_t d) {
    memset(m, 0, sizeof *m);
    size_t nnz = n * d;
    m->n_rows = n;
    m->n_cols = d;
    m->nnz = nnz;
    m->indptr = malloc((n + 1) * sizeof *m->indptr);
    m->idx = malloc((nnz ? nnz : 1) * sizeof *m->idx);
    m->val = malloc((nnz ? nnz : 1) * sizeof *m->val);
    if (!m->indptr || !m->idx || !m->val) {
        ml_csr_free(m);
        return -1;
    }
    for (size_t r = 0; r <= n; r++) m->indptr[r] = r * d;
    for (size_t k = 0; k < nnz; k++) {
        m->idx[k] = (uint32_t)(k % d);
        m->val[k] = X[k];
    }
    return 0;
}

int ml_csr_hstack(const ml_csr *a, const ml_csr *b, ml_csr *out, cf_err *err) {
    memset(out, 0, sizeof *out);
    if (a->n_rows != b->n_rows) return cf_fail(err, CF_EINTERNAL, "hstack of matrices with different rows");
    size_t n = a->n_rows, nnz = a->nnz + b->nnz;
    out->n_rows = n;
    out->n_cols = a->n_cols + b->n_cols;
    out->indptr = cf_malloc((n + 1) * sizeof *out->indptr);
    out->idx = cf_malloc((nnz ? nnz : 1) * sizeof *out->idx);
    out->val = cf_malloc((nnz ? nnz : 1) * sizeof *out->val);
    if (!out->indptr || !out->idx || !out->val) {
        ml_csr_free(out);
        return cf_fail(err, CF_EINTERNAL, "out of memory");
    }
    out->indptr[0] = 0;
    for (size_t r = 0; r < n; r++) {
        for (size_t k = a->indptr[r]; k < a->indptr[r + 1]; k++) {
            out->idx[out->nnz] = a->idx[k];
            out->val[out->nnz++] = a->val[k];
        }
        for (size_t k = b->indptr[r]; k < b->indptr[r + 1]; k++) {
            out->idx[out->nnz] = (uint32_t)(a->n_cols + b->idx[k]);
            out->val[out->nnz++] = b->val[k];
        }
        out->indptr[r + 1] = out->nnz;
    }
    return CF_OK;
}

int ml_csr_keep_valid(ml_csr *m, cf_err *err) {
    if (m->idx) return CF_OK;
    m->idx = cf_malloc(sizeof *m->idx);
    m->val = cf_malloc(sizeof *m->val);
    if (!m->idx || !m->val) return cf_fail(err, CF_EINTERNAL, "out of memory");
    return CF_OK;
}
