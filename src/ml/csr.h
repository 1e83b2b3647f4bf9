/* Sparse matrices in compressed sparse row form: the layout the count-feature baselines build,
 * the logistic regression and XGBoost read, and the task heads fill from dense embeddings.
 *
 * Row r's entries are idx[indptr[r] .. indptr[r + 1]) (column numbers, ascending within a row)
 * with values val[...]; an entry not stored is 0. A zeroed ml_csr is an empty 0 x 0 matrix. */
#ifndef CLINFM_ML_CSR_H
#define CLINFM_ML_CSR_H

#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

typedef struct {
    size_t n_rows, n_cols, nnz;
    size_t *indptr; /* (n_rows + 1) */
    uint32_t *idx;  /* (nnz) */
    float *val;     /* (nnz) */
} ml_csr;

/* A dense (n, d) row-major matrix with every entry stored (zeros too, so per-column statistics
 * see every row). 0, or -1 when out of memory (m is then freed). */
int ml_csr_from_dense(ml_csr *m, const float *X, size_t n, size_t d);
void ml_csr_free(ml_csr *m);
/* After a build that stored no entry: gives idx and val one slot each, so a matrix with no
 * entries still has valid pointers for the readers (XGBoost among them). */
int ml_csr_keep_valid(ml_csr *m, cf_err *err);
/* out = [a | b]: the columns of b after a's, row by row (a and b have the same rows). */
int ml_csr_hstack(const ml_csr *a, const ml_csr *b, ml_csr *out, cf_err *err);

#endif
