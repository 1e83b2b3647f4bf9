/* A teacher's soft targets for end-to-end fine-tuning (`clinfm eval --ft-distill KIND`,
 * docs/P12.md "Session 15"). The fine-tuned model learns, beside the task's labels, a count /
 * value baseline's probabilities of the same train rows: what a gradient-boosted model reads off
 * the value aggregates, handed to the transformer as a second target, while at prediction time
 * the model stands alone.
 *
 * A teacher fitted on the train rows and asked about those same rows would hand back their labels
 * (a boosted model nearly memorises 3,000 rows), and the student would learn nothing it did not
 * already have. So each train row's target comes from a teacher that never saw it: the train rows
 * are cut into folds by patient, and each fold is predicted by a teacher fitted on the others
 * (out-of-fold, as a stacked model's first level is). The tuning rows choose each teacher's
 * settings as they choose the baseline's; they get no soft target (only the task's head judges
 * an epoch). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eval/eval.h"
#include "ml/logreg.h"
#include "util/mix64.h"

int eval_distill_column(const store *s, const task_labels *l, int kind, const eval_baseline_options *opt,
                        const label_row *rows, size_t n, const label_row *tuning, size_t n_tuning, int folds,
                        uint64_t seed, float *p, size_t stride, double *oof_log_loss, cf_err *err) {
    if (folds < 2) return cf_fail(err, CF_EINPUT, "the teacher's targets need at least 2 folds of the train rows, not %d", folds);
    if (kind < 0 || kind >= EVAL_BASELINE_COUNT || kind == EVAL_BASELINE_PROBE)
        return cf_fail(err, CF_EINPUT, "the teacher must be a count or value baseline");
    int *fold = malloc((n ? n : 1) * sizeof *fold);
    label_row *fit = malloc((n ? n : 1) * sizeof *fit), *held = malloc((n ? n : 1) * sizeof *held);
    float *q = malloc((n ? n : 1) * sizeof *q);
    uint8_t *y = malloc(n ? n : 1);
    int rc = CF_OK;
    if (!fold || !fit || !held || !q || !y) {
        rc = cf_fail(err, CF_EINTERNAL, "out of memory");
        goto done;
    }
    /* by patient: a patient's rows share a fold, so no teacher sees another row of its patient */
    for (size_t i = 0; i < n; i++) {
        fold[i] = (int)(cf_mix64(rows[i].subject_index ^ cf_mix64(seed)) % (uint64_t)folds);
        p[i * stride] = NAN;
    }
    for (int k = 0; k < folds; k++) {
        size_t nf = 0, nh = 0;
        size_t pos = 0;
        for (size_t i = 0; i < n; i++) {
            if (fold[i] == k) held[nh++] = rows[i];
            else fit[nf++] = rows[i], pos += rows[i].label != 0;
        }
        if (!nh) continue;
        if (!pos || pos == nf) {
            rc = cf_fail(err, CF_EINPUT, "the teacher's fold %d of %d has train rows of one class only (%zu rows): "
                         "too few rows or positives for out-of-fold targets", k + 1, folds, nf);
            goto done;
        }
        eval_predictor t;
        if ((rc = eval_baseline_new(&t, kind, l, opt, err))) goto done;
        if (!(rc = t.fit(t.ctx, s, fit, nf, tuning, n_tuning, err))) rc = t.predict(t.ctx, s, held, nh, q, err);
        eval_baseline_free(&t);
        if (rc) goto done;
        for (size_t i = 0, h = 0; i < n; i++)
            if (fold[i] == k) p[i * stride] = q[h++];
    }
    if (oof_log_loss) { /* how well the targets predict the labels: a teacher that saw its rows sits near 0 */
        for (size_t i = 0; i < n; i++) q[i] = p[i * stride], y[i] = rows[i].label != 0;
        *oof_log_loss = ml_log_loss(q, y, n);
    }
done:
    free(fold);
    free(fit);
    free(held);
    free(q);
    free(y);
    return rc;
}
