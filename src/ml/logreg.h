/* L2-regularised logistic regression on sparse features, trained by L-BFGS: the one fitter
 * behind the count-feature baselines (src/eval), the fine-tuned task heads on frozen embeddings
 * (src/model/head.c) and, through the heads, the service's model cards.
 *
 * Each column is put on a common scale on the train rows first, so one penalty suits them all
 * without destroying sparsity: a count column (ML_COL_COUNT) becomes log1p(count) over its root
 * mean square; any other column is standardised over the rows that hold it. */
#ifndef CLINFM_ML_LOGREG_H
#define CLINFM_ML_LOGREG_H

#include <stddef.h>
#include <stdint.h>

#include "ml/csr.h"
#include "util/err.h"

/* Column kinds: a count (log1p-scaled) or a value (standardised). */
enum { ML_COL_COUNT = 0, ML_COL_VALUE = 1 };

typedef struct {
    size_t d;
    double *w, b;        /* (d) weights on the transformed columns, and the intercept */
    double lambda;
    /* column transform fitted on train: count -> log1p(x) * scale; value -> (x - shift) * scale */
    const uint8_t *kind; /* borrowed: ML_COL_* per column (other values read as a value) */
    double *shift, *scale;
    int iterations;
} ml_logreg;

/* Minimises mean log loss + lambda/2 |w|^2 (intercept not penalised) over X's rows and labels y
 * (0 or 1). kind must outlive m. */
int ml_logreg_fit(ml_logreg *m, const ml_csr *X, const uint8_t *y, const uint8_t *kind, double lambda, cf_err *err);
/* p[r] = P(y = 1) for each row of X. */
void ml_logreg_predict(const ml_logreg *m, const ml_csr *X, float *p);
void ml_logreg_free(ml_logreg *m);
/* Mean log loss of predictions (clipped away from 0 and 1). */
double ml_log_loss(const float *p, const uint8_t *y, size_t n);
/* 1 / (1 + e^-z), without overflow for large |z|. */
double ml_sigmoid(double z);

#endif
