/* Validation metrics for binary predictions, with bootstrap intervals.
 *
 * AUROC is the empirical area (Mann-Whitney; tied scores count one half), not a fitted curve.
 * AUPRC is average precision, sum over decreasing thresholds of (R_k - R_{k-1}) * P_k, as in
 * scikit-learn's average_precision_score. Brier is the mean squared error of the probability.
 * Calibration uses equal-width bins on [0, 1]: per bin the mean prediction and the observed
 * fraction of positives; ECE is their absolute difference averaged with bin weights.
 *
 * Intervals are 95% percentile bootstrap intervals. Resampling is by cluster (pass the subject id
 * of each row) because the rows of one patient are not independent: a patient with ten
 * admissions is drawn, or not, with all ten. The generator is seeded, so a report reproduces.
 * A replicate without both classes gives no AUROC/AUPRC; boot_valid counts those that did.
 * With fewer than EVAL_MIN_CLASS_FOR_CI rows of a class, AUROC and AUPRC get no interval at all:
 * a percentile bootstrap over two positives would look precise and mean nothing. */
#ifndef CLINFM_EVAL_METRICS_H
#define CLINFM_EVAL_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

#define EVAL_BINS 10
/* AUROC and AUPRC get an interval only with at least this many rows of each class */
#define EVAL_MIN_CLASS_FOR_CI 5

typedef struct {
    double value, lo, hi; /* NaN when undefined */
} eval_ci;

/* A score with its outcome (0 or 1); eval_scored_cmp orders them by score, ascending (qsort). */
typedef struct {
    float p;
    uint8_t y;
} eval_scored;
int eval_scored_cmp(const void *a, const void *b);

typedef struct {
    double lo_edge, hi_edge;
    double n;              /* rows in the bin */
    double mean_pred;      /* NaN when empty */
    double frac_pos;       /* NaN when empty */
    double frac_lo, frac_hi;
} eval_bin;

typedef struct {
    size_t n, pos, neg, clusters;
    eval_ci auroc, auprc, brier, ece;
    eval_bin bins[EVAL_BINS];
    unsigned n_boot, boot_valid;
} eval_metrics;

typedef struct {
    unsigned n_boot; /* replicates; 0 = no intervals */
    uint64_t seed;
} eval_boot_options;

/* Point estimates; NaN when undefined (one class only, or n == 0). */
double eval_auroc(const float *p, const uint8_t *y, size_t n);
double eval_auprc(const float *p, const uint8_t *y, size_t n);
double eval_brier(const float *p, const uint8_t *y, size_t n);
/* ECE over EVAL_BINS equal-width bins; bins (may be NULL) receives the reliability curve. */
double eval_ece(const float *p, const uint8_t *y, size_t n, eval_bin *bins);

/* All metrics with intervals. cluster may be NULL (every row its own cluster). Probabilities
 * must lie in [0, 1]; anything else (NaN included) is CF_EINPUT. */
int eval_metrics_compute(const float *p, const uint8_t *y, const int64_t *cluster, size_t n,
                         const eval_boot_options *opt, eval_metrics *out, cf_err *err);

/* Paired differences AUROC(p[k]) - AUROC(ref), k < m, over the same rows: out[k] holds the
 * difference and its 95% percentile interval from one cluster bootstrap shared by every
 * predictor and the reference (the same resampled patients on both sides of each difference,
 * which is what makes the interval of a difference much narrower than two separate ones). No
 * interval with fewer than EVAL_MIN_CLASS_FOR_CI rows of a class. */
int eval_auroc_diffs(const float *const *p, size_t m, const float *ref, const uint8_t *y, const int64_t *cluster,
                     size_t n, const eval_boot_options *opt, eval_ci *out, cf_err *err);

/* Curves for plots: ROC as (false positive rate, true positive rate) from (0,0) to (1,1);
 * precision-recall as (recall, precision), one point per distinct threshold. */
typedef struct {
    double *x, *y;
    size_t n;
} eval_curve;
int eval_roc_curve(const float *p, const uint8_t *y, size_t n, eval_curve *c, cf_err *err);
int eval_pr_curve(const float *p, const uint8_t *y, size_t n, eval_curve *c, cf_err *err);
void eval_curve_free(eval_curve *c);

/* The q-quantile (0..1) of v[0..n) by linear interpolation; sorts v. NaN when n == 0. */
double eval_quantile(double *v, size_t n, double q);

/* A decision threshold: a row is flagged (an alert) when its probability is at least t. Every
 * proportion has a Wilson 95% interval over rows; number needed to evaluate is 1 / PPV (its
 * interval from PPV's). NaN where a denominator is 0. */
typedef struct {
    double threshold;
    size_t tp, fp, tn, fn;
    eval_ci sensitivity, specificity, ppv, nne, alerts_per_100;
} eval_threshold;
void eval_threshold_metrics(const float *p, const uint8_t *y, size_t n, double t, eval_threshold *out);
/* Wilson score interval (95%) for k of n; value k/n. */
eval_ci eval_wilson(size_t k, size_t n);

/* Calibration in nb bins of equal counts by predicted risk (deciles with nb = 10): each bin's
 * count, mean prediction, observed fraction and its Wilson interval. For rare outcomes the
 * equal-width bins put every row in the first; these show the range the predictions use.
 * Returns the bins filled (fewer when rows are few or tied). */
size_t eval_quantile_bins(const float *p, const uint8_t *y, size_t n, size_t nb, eval_bin *out);

#endif
