/* The ceiling: a predictor that reads the true probability of each label row from a ground-truth
 * file written by `clinfm synth` (truth/<task>.csv), so a report on generated data shows how far
 * every predictor is from the best possible (docs/SYNTH.md).
 *
 * The file's rows are keyed by the source's patient key and the prediction time:
 *   fhir_id,prediction_time,probability,...     (FHIR Patient.id, as `clinfm synth` writes)
 *   subject_id,prediction_time,probability,...  (a numeric subject id, as in the store)
 * A FHIR id becomes the store's subject id exactly as ingestion makes it (fhir_subject_id). On
 * a de-identified store, give the de-identification key: each truth row is then moved to the
 * subject's pseudonym and shifted by the subject's date shift, as `clinfm deid` did (policy
 * `shift` only: year-only dates cannot be joined). A label row without a truth row is an error
 * naming the subject id and time: the ceiling is only meaningful on the population it came from. */
#ifndef CLINFM_EVAL_EVAL_CEILING_H
#define CLINFM_EVAL_EVAL_CEILING_H

#include "eval/eval.h"

/* deid_key_path may be NULL (identified store); column names the probability column (NULL:
 * "probability"; `clinfm synth` also writes probability_censor_record and
 * probability_follow_data_end, one per censoring rule, docs/SYNTH.md). */
int eval_ceiling_new(eval_predictor *p, const char *truth_path, const char *column, const char *deid_key_path,
                     cf_err *err);
void eval_ceiling_free(eval_predictor *p);

#endif
