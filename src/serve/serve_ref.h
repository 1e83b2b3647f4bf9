/* The transparent reference predictor: a logistic score over a few code counts and values, with
 * exact occlusion attribution. It needs no trained network, so the service can be deployed,
 * tested and load-tested before (and independently of) the foundation model, and a governance
 * committee can read every weight it uses.
 *
 * Its definition is the "reference_model" object of the service configuration (docs/SERVE.md):
 *   {"name": "clinfm-reference", "version": "1",
 *    "tasks": {"<task id>": {"intercept": -3.1, "intercept_se": 0.2,
 *      "features": [{"name": "heart failure", "codes": ["SNOMED//84114007", "ICD10CM//I50"],
 *                    "transform": "log1p", "window_days": 365, "weight": 0.8, "se": 0.1,
 *                    "center": 0, "scale": 1, "default": 0}]}}}
 * A feature matches an event when the event's code starts with one of "codes" (plain prefix
 * match). transform: "count" (matching events), "log1p" (log(1 + count)), "present" (0/1),
 * "last_value" (numeric value of the latest matching event with one), "years_since" (years from
 * the latest matching event to the prediction time; MEDS_BIRTH gives age). Features without a
 * matching event take "default". window_days (0 = all time, static facts included) keeps events
 * in (prediction time - window, prediction time]. The value used is (x - center) / scale.
 *
 * risk = sigmoid(intercept + sum weight * value). The 95% interval is the Wald interval on the
 * logit, treating coefficient errors as independent: var = intercept_se^2 + sum (se * value)^2.
 * Attribution removes every event of one code at a time and recomputes the features exactly
 * (counts drop, a "latest" event falls back to the next latest of another code), which equals
 * rescoring without those events (tests check it against serve_occlusion) at O(events x
 * features) cost. The prediction time is the patient's prediction_time, or, when that is
 * TIME_NULL, the time of its last timed event. */
#ifndef CLINFM_SERVE_SERVE_REF_H
#define CLINFM_SERVE_SERVE_REF_H

#include <cjson/cJSON.h>

#include "serve/predictor.h"

/* Builds a reference predictor from its JSON definition; `where` names the JSON path for
 * messages (e.g. "config.json: reference_model"). Release with out->close(out->ctx). */
int serve_ref_open(const cJSON *def, const char *where, serve_predictor *out, cf_err *err);

/* The risk alone (no attribution), as a serve_risk_fn over the ctx of serve_ref_open. */
int serve_ref_risk(void *ctx, const serve_patient *p, const serve_task *t, double *risk,
                   cf_err *err);

/* The prediction time actually used for p (see above). */
int64_t serve_patient_effective_time(const serve_patient *p);

#endif
