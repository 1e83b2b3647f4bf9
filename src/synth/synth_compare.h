/* The realism report of `clinfm synth --compare`: a generated population beside a real store, on
 * the same measures computed the same way from both stores (so layout choices cancel out when
 * both are in the same layout: `clinfm synth --compare` generates in the layout of the real
 * store and ingests it with the same reader or mapping).
 *
 * Measures, per store: patients, male share, age at the first recorded event, events per patient,
 * record years per patient, deaths per 100 patient-years; the share of patients carrying each
 * code; the quantiles of the numeric values of the codes both stores have (labs, vital signs);
 * hospital stays (an admission event and the discharge event of the same source record:
 * HOSPITAL_ADMISSION/HOSPITAL_DISCHARGE, ENCOUNTER_START//IMP/ENCOUNTER_END//IMP, VISIT//IP or
 * ERIP/VISIT_END//...): admissions per 100 patient-years, length of stay, in-hospital deaths
 * (a discharge to death, or a death within the stay), intensive care (ICU_ADMISSION//, SNOMED CT
 * 305351004) and readmissions within 30 days per stay. Each measure is flagged where the two
 * differ beyond a stated margin (docs/SYNTH.md), and the flags are listed with their numbers. */
#ifndef CLINFM_SYNTH_SYNTH_COMPARE_H
#define CLINFM_SYNTH_SYNTH_COMPARE_H

#include <stdio.h>

#include "store/store.h"
#include "util/err.h"

typedef struct cJSON cJSON;

/* Compares gen (the generated population) with real; returns the report as a JSON tree (caller
 * frees with cJSON_Delete) in *out. labels name the two sides in the report. */
int synth_compare(const store *gen, const store *real, const char *gen_label, const char *real_label, cJSON **out,
                  cf_err *err);
/* The report as text. */
void synth_compare_print(const cJSON *report, FILE *f);

/* The layout a store was read from, guessed from its codes: "mimic-csv" (HOSPITAL_ADMISSION//),
 * "omop-csv" (VISIT//), else "fhir-ndjson". */
const char *synth_compare_layout(const store *s);

#endif
