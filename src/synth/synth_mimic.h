/* The generated population as MIMIC-IV tables (hosp/ and icu/ .csv.gz, v2.2 column layout), the
 * input `clinfm ingest --mapping mappings/mimic-iv.map` reads.
 *
 * What goes where, as a hospital's MIMIC-style export would have it:
 *   hosp/patients        one row a patient: gender, anchor_year (the year the record starts),
 *                        anchor_age (91 above 89, as MIMIC), dod (date of death, date only)
 *   hosp/admissions      one row a hospital stay (the inpatient encounters): admittime (arrival),
 *                        dischtime, deathtime, type and location (most through the emergency
 *                        department, with edregtime/edouttime), discharge location, insurance,
 *                        language, marital status, race
 *   hosp/transfers       ED, admit, intensive care and ward moves, discharge
 *   icu/icustays         the transfer to intensive care until the patient leaves it
 *   hosp/services        the stay's clinical service
 *   hosp/diagnoses_icd   ICD-10-CM (no dot, icd_version 10): the stay's acute diagnosis first, then
 *                        the chronic diagnoses recorded by discharge (coded at discharge)
 *   hosp/procedures_icd  ICD-10-PCS of the modules' procedures (chartdate: a date only)
 *   hosp/labevents       every laboratory result, inpatient (hadm_id) and outpatient or emergency
 *                        (no hadm_id), with charttime (specimen) and storetime (result, later)
 *   hosp/prescriptions   the stay's orders and the home medications continued, until discharge
 *   hosp/emar            their administrations (first dose, then daily)
 *   hosp/microbiologyevents  cultures of infection stays, resulted days later (storetime)
 *   hosp/omr             outpatient blood pressure, weight, BMI, height (chartdate only)
 *   hosp/drgcodes, hosp/hcpcsevents  header only (no billing groupers are simulated)
 *   hosp/d_labitems, d_icd_diagnoses, d_icd_procedures  the dictionaries of the codes used
 * Laboratory items take MIMIC-IV's d_labitems numbers for the tests MIMIC has (creatinine 50912,
 * ...), so a generated store and a MIMIC store share lab codes; a test no table knows (a module a
 * hospital added) gets a local itemid from 90001. Inpatient vital signs (charted in icu/chartevents,
 * which the mapping does not read) and spirometry are not written. Ids (docs/SYNTH.md) derive from
 * subject_id = 10000000 + patient index: hadm_id = subject_id * 1000 + stay number, and so on. */
#ifndef CLINFM_SYNTH_SYNTH_MIMIC_H
#define CLINFM_SYNTH_SYNTH_MIMIC_H

#include "synth/synth_out.h"

int synth_mimic_format(synth_format *f, const sim_world *w, uint64_t seed, cf_err *err);

#endif
