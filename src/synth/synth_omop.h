/* The generated population as OMOP CDM v5.3 tables (CSV, the large ones gzipped), the input
 * `clinfm ingest --mapping mappings/omop-cdm.map` reads: PERSON, OBSERVATION_PERIOD, DEATH,
 * VISIT_OCCURRENCE (outpatient 9202, emergency 9203, inpatient 9201), CONDITION_OCCURRENCE
 * (SNOMED CT concept, ICD-10-CM source value), DRUG_EXPOSURE (RxNorm), PROCEDURE_OCCURRENCE
 * (SNOMED CT; the transfer to intensive care too), MEASUREMENT (LOINC with UCUM units: labs and
 * vital signs, blood pressure as two rows), OBSERVATION (smoking status), and a CONCEPT table of
 * every concept these use.
 *
 * Concept ids: the OMOP standard ids for gender (8507, 8532), race (8527, 8516, 8515, 8657,
 * 8557), ethnicity (38003563, 38003564), visits (9201, 9202, 9203) and the EHR type concept
 * (32817); every clinical concept (SNOMED CT, LOINC, RxNorm, ICD-10-CM, UCUM) gets a local id
 * from 2000000001, the range OMOP leaves to local concepts, because clinfm ships no Athena
 * vocabulary. Its CONCEPT row carries the real vocabulary and code, so the mapping gives the same
 * codes (SNOMED//44054006, LOINC//8480-6//mm[Hg]) a warehouse with Athena ids would. Ids of rows
 * derive from person_id = 10000000 + patient index (docs/SYNTH.md). */
#ifndef CLINFM_SYNTH_SYNTH_OMOP_H
#define CLINFM_SYNTH_SYNTH_OMOP_H

#include "synth/synth_out.h"

int synth_omop_format(synth_format *f, const sim_world *w, uint64_t seed, cf_err *err);

#endif
