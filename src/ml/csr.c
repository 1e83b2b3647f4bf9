/* Sparse matrices; see csr.h. */
#include "ml/csr.h"

#include <stdlib.h>
#include <string.h>

void ml_csr_free(ml_csr *m) {
    free(m->indptr);
    free(m->idx);
    free(m->val);
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
