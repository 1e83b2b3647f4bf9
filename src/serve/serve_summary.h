/* The grounded patient summary: problem list, current medications, recent labs with trends, and
 * admissions, built only from the patient's events. Every line carries "evidence": the events
 * (index, time, code, provenance source and row) it was read from. Line text is the code's own
 * description from the record (or the code when there is none); dates, counts, values and trends
 * are computed from the cited events. Nothing is phrased, inferred or completed beyond that.
 *
 * Which events go where (by provenance source and code, case-insensitive source match):
 *   problems     a source naming "condition" (FHIR Condition, OMOP condition_occurrence),
 *                "diagnoses" or "diagnosis" (MIMIC diagnoses_icd), or DIAGNOSIS// codes
 *   medications  MedicationRequest / MedicationAdministration, sources naming "prescription",
 *                "emar", "pharmacy" or "drug", or MEDICATION// and MED_ADMIN// codes. "Current"
 *                means ordered or given within medication_window_days before the summary time;
 *                a MIMIC MEDICATION//STOP//<drug> after the last START ends it.
 *   labs         events with a numeric value from Observation, sources naming "lab" or
 *                "measurement", or LAB// codes, within lab_window_days; trend compares the latest
 *                value with the one before it. (Events carry no FHIR category, so vital signs
 *                recorded as LOINC Observations appear here too.)
 *   admissions   inpatient encounter starts (ENCOUNTER_START//IMP|ACUTE|NONAC,
 *                HOSPITAL_ADMISSION//, VISIT//IP, VISIT//ERIP) paired with the end event of the
 *                same source record (same provenance source and row).
 * The summary time is the patient's prediction time, or its last timed event. */
#ifndef CLINFM_SERVE_SERVE_SUMMARY_H
#define CLINFM_SERVE_SERVE_SUMMARY_H

#include <cjson/cJSON.h>

#include "serve/predictor.h"

typedef struct {
    int medication_window_days; /* default 180 */
    int lab_window_days;        /* default 365 */
    int max_items;              /* lines per section, default 50 */
    int max_evidence;           /* cited events per line, default 10 (the most recent) */
} serve_summary_opts;

void serve_summary_defaults(serve_summary_opts *o);

/* Builds the summary object; NULL on out-of-memory. */
cJSON *serve_summary(const serve_patient *p, const serve_summary_opts *o);

/* "YYYY-MM-DDTHH:MM:SSZ" (fraction when nonzero) into buf (48 bytes), "" for TIME_NULL. */
const char *serve_time_iso(int64_t t, char *buf, size_t cap);

/* The evidence object for event i: {"event", "time", "code", "source", "row"[, "value"]}. */
cJSON *serve_evidence(const serve_patient *p, size_t i);

#endif
