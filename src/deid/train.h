/* Fitting the de-identifier's model (model_int.h) on annotated notes: `clinfm deid-train`.
 *
 * Each note is run through the evidence layers of the rules folder; each word gets the label of
 * the in-scope gold span it overlaps (its PHI type) or "not PHI"; the CRF's weights are fitted by
 * stochastic gradient descent on the negative log-likelihood of the gold labels, with AdaGrad
 * steps and an L2 penalty, one note at a time in a shuffled order. Reproducible: the same notes,
 * rules and options give the same weights. */
#ifndef CLINFM_DEID_TRAIN_H
#define CLINFM_DEID_TRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "deid/deid_eval.h"
#include "deid/text.h"
#include "util/err.h"

typedef struct {
    int epochs;      /* passes over the notes (default 8) */
    float lr;        /* AdaGrad step (default 0.1) */
    float l2;        /* L2 penalty per step on the weights a note touches (default 1e-5) */
    float threshold; /* written into the model: a word is PHI when P(O) < threshold (default 0.7) */
    float threshold_bare;      /* the same for words no evidence layer marks (default 0.8; 0 = none) */
    float threshold_nopattern; /* for a shaped type (date, phone, id...) no pattern covers (default 0.5) */
    float threshold_dense; /* in a note of keep density class '3', in place of threshold (round 30; default 0 = off) */
    float prune;     /* weights under this in magnitude are not saved (default 0.05) */
    int min_count;   /* features seen in fewer training words than this keep weight 0 and are not
                        saved (default 3): a smaller, faster model that does not memorise one-offs */
    int one_case_context; /* emit the one-case context features (model_int.h; default 0) */
    int list_person_gate; /* list features stand aside beside a person cue (model_int.h; default 0) */
    int list_catalogue_test; /* in a list note with no narrative line, the person-cue gate only beside a title or cue phrase (round 15; default 0) */
    int amp_firm_span; /* an ampersand-joined firm the model touches is one organisation (round 16; default 0) */
    int one_case_fields; /* a one-case catalogue of field-shaped lines is a field list (round 19 candidate C; default 0) */
    int one_case_cue; /* with one_case_fields: 1 a title cue, 2 every cue before a word holds it whatever its case (round 20 candidates C't, C'; default 0) */
    int nursing_shorthand; /* 1: vent settings and ions the model took are dropped, 2: also bare hosts of common words (round 22 candidates N1, N2), 3 and 4: round 23's S1, S2 (decode.c, shorthand_filter_s); default 0 */
    int field_dates; /* a date on a field line with its own person evidence (a dated signature) stays (round 21 candidate C''; default 0) */
    int keep_unnamed; /* keep filter: no shape-only cue holds a clinical word in no name list (round 19 candidate A; default 0) */
    uint64_t seed;   /* shuffling */
    int verbose;     /* loss per epoch on stderr */
} deid_train_opts;

void deid_train_opts_default(deid_train_opts *o);

/* Fits a model on docs (gold spans with in_scope set are PHI, the rest of the text is not) and
 * writes it to out_path. The rules' own model, if any, is ignored (the evidence layers do not
 * read it). */
int deid_model_train(const deid_text_rules *r, const deid_doc *const *docs, size_t n, const deid_train_opts *o,
                     const char *out_path, cf_err *err);

/* Calibrates the decision threshold of the model at model_path on annotated corpora kept apart
 * from training (deid-train uses generated notes with held-apart names and the held-apart note
 * style): every threshold of a fixed grid (0.30 to 0.99) is scored note by note (any-overlap
 * recall and precision over the Safe Harbor types) and deid_calib_choose picks one, which is
 * written into the model file, the weights saved again with the same pruning level. *chosen and,
 * when not NULL, the scores of the chosen threshold receive the result; with verbose, every row
 * of the sweep (with the clinical-content cost of the notes' non-PHI words) and the bootstrap
 * standard error go to stderr. The rules' own model is put back afterwards. */
int deid_model_calibrate(deid_text_rules *r, const char *model_path, const deid_corpus *held, size_t n_held,
                         double min_precision, float prune, int verbose, double *chosen, double *recall,
                         double *precision, cf_err *err);

/* One calibration note's counts at one threshold (any overlap, Safe Harbor scope). */
typedef struct {
    uint32_t gold_hit, gold_n, pred_hit, pred_n;
} deid_calib_counts;

/* The calibration rule (round 12). counts[g * n_notes + d] holds note d's counts at the g-th of
 * ng thresholds, ascending. F2 = 5PR / (4P + R) of the pooled counts is computed at each; the
 * best is the highest among thresholds whose precision is at least min_precision (0: no floor;
 * when none reaches the floor, the most precise threshold is returned at once). Its standard
 * error is estimated by n_boot bootstrap replicates over notes (resampled with a generator seeded
 * by seed), and the lowest threshold (also reaching the floor) whose F2 is within one standard
 * error of the best is returned: F2 differences smaller than the noise of the calibration notes
 * do not decide, and a lower threshold removes fewer words. *best and *se (either may be NULL)
 * receive the best index and the standard error. Before round 12 the tolerance was a fixed 0.001
 * with a 0.98 precision floor, and the threshold jumped between 0.75 and 0.90 as the generated
 * notes' precision crossed the floor. */
size_t deid_calib_choose(const deid_calib_counts *counts, size_t ng, size_t n_notes, double min_precision,
                         unsigned n_boot, uint64_t seed, size_t *best, double *se);

#endif
