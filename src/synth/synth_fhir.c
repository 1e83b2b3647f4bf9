/* FHIR R4 NDJSON for a synthetic patient (see synth_fhir.h). Codes go out with their systems'
 * canonical URLs (SNOMED CT, LOINC, RxNorm, ICD-10-CM, UCUM) so clinfm's FHIR reader, and any
 * other, maps them as it would a hospital's export. */
#include "synth/synth_fhir.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S(lit) synth_buf_put(b, lit, sizeof(lit) - 1)

static void coding(synth_buf *b, const char *system, const synth_code *c) {
    S("{\"system\":\"");
    synth_buf_str(b, system);
    S("\",\"code\":\"");
    synth_buf_str(b, c->code);
    S("\",\"display\":\"");
    synth_buf_str(b, c->display);
    S("\"}");
}

static void concept(synth_buf *b, const char *system, const synth_code *c, const char *system2, const synth_code *c2) {
    S("{\"coding\":[");
    coding(b, system, c);
    if (c2) {
        S(",");
        coding(b, system2, c2);
    }
    S("],\"text\":\"");
    synth_buf_str(b, c->display);
    S("\"}");
}

static void ref_id(synth_buf *b, const synth_patient *p, char kind, size_t n) {
    synth_buf_str(b, p->id);
    char tmp[32];
    int k = snprintf(tmp, sizeof tmp, "-%c%zu", kind, n);
    synth_buf_put(b, tmp, (size_t)k);
}

static void head(synth_buf *b, const char *type, const synth_patient *p, char kind, size_t n) {
    S("{\"resourceType\":\"");
    synth_buf_str(b, type);
    S("\",\"id\":\"");
    ref_id(b, p, kind, n);
    S("\"");
}

static void subject_enc(synth_buf *b, const synth_patient *p, int32_t enc) {
    S(",\"subject\":{\"reference\":\"Patient/");
    synth_buf_str(b, p->id);
    S("\"}");
    if (enc >= 0) {
        S(",\"encounter\":{\"reference\":\"Encounter/");
        ref_id(b, p, 'e', (size_t)enc);
        S("\"}");
    }
}

/* A resource that is one coded act at one moment (a MedicationRequest, a Procedure): its head,
 * the fixed fields that lead to the code, the code, subject and encounter, and r's time under
 * time_key (which opens the string). */
static void coded_act(synth_buf *b, const char *type, char kind, const synth_patient *p, size_t i, const char *fields,
                      const char *system, const synth_rec *r, const char *time_key) {
    head(b, type, p, kind, i);
    synth_buf_str(b, fields);
    concept(b, system, r->code, NULL, NULL);
    subject_enc(b, p, r->enc);
    synth_buf_str(b, time_key);
    synth_buf_time(b, r->t, 0);
    S("\"}\n");
}

static void quantity(synth_buf *b, double v, int dec, const char *unit) {
    S("{\"value\":");
    synth_buf_fixed(b, v, dec);
    S(",\"unit\":\"");
    synth_buf_str(b, unit);
    S("\",\"system\":\"http://unitsofmeasure.org\",\"code\":\"");
    synth_buf_str(b, unit);
    S("\"}");
}

#define SNOMED "http://snomed.info/sct"
#define LOINC "http://loinc.org"
#define RXNORM "http://www.nlm.nih.gov/research/umls/rxnorm"
#define ICD10CM "http://hl7.org/fhir/sid/icd-10-cm"

static void patient(synth_buf *b, const synth_patient *p, uint64_t *events) {
    static const struct { const char *code, *display; } races[] = {
        {"2106-3", "White"}, {"2054-5", "Black or African American"}, {"2028-9", "Asian"},
        {"1002-5", "American Indian or Alaska Native"}, {"2076-8", "Native Hawaiian or Other Pacific Islander"},
        {"2131-1", "Other Race"}};
    static const char *const marital[][2] = {{"M", "Married"}, {"S", "Never Married"}, {"D", "Divorced"}, {"W", "Widowed"}};
    S("{\"resourceType\":\"Patient\",\"id\":\"");
    synth_buf_str(b, p->id);
    S("\",\"extension\":[{\"url\":\"http://hl7.org/fhir/us/core/StructureDefinition/us-core-race\",\"extension\":[{\"url\":\"");
    /* "other race" is not an OMB category: it goes in `detailed` (US Core), so clinfm records no
     * RACE// event for it, as for a hospital that records "other" */
    synth_buf_str(b, p->race == 5 ? "detailed" : "ombCategory");
    S("\",\"valueCoding\":{\"system\":\"urn:oid:2.16.840.1.113883.6.238\",\"code\":\"");
    synth_buf_str(b, races[p->race].code);
    S("\",\"display\":\"");
    synth_buf_str(b, races[p->race].display);
    S("\"}},{\"url\":\"text\",\"valueString\":\"");
    synth_buf_str(b, races[p->race].display);
    S("\"}]},{\"url\":\"http://hl7.org/fhir/us/core/StructureDefinition/us-core-ethnicity\",\"extension\":[{\"url\":\"ombCategory\",\"valueCoding\":{\"system\":\"urn:oid:2.16.840.1.113883.6.238\",\"code\":\"");
    synth_buf_str(b, p->ethnicity ? "2135-2\",\"display\":\"Hispanic or Latino" : "2186-5\",\"display\":\"Not Hispanic or Latino");
    S("\"}},{\"url\":\"text\",\"valueString\":\"");
    synth_buf_str(b, p->ethnicity ? "Hispanic or Latino" : "Not Hispanic or Latino");
    S("\"}]}],\"identifier\":[{\"type\":{\"coding\":[{\"system\":\"http://terminology.hl7.org/CodeSystem/v2-0203\",\"code\":\"MR\"}]},\"system\":\"urn:clinfm:synth:mrn\",\"value\":\"");
    synth_buf_str(b, p->mrn);
    S("\"},{\"type\":{\"coding\":[{\"system\":\"http://terminology.hl7.org/CodeSystem/v2-0203\",\"code\":\"SS\"}]},\"system\":\"http://hl7.org/fhir/sid/us-ssn\",\"value\":\"");
    synth_buf_str(b, p->ssn);
    S("\"}],\"name\":[{\"use\":\"official\",\"family\":\"");
    synth_buf_str(b, p->family);
    S("\",\"given\":[\"");
    synth_buf_str(b, p->given);
    S("\"]}],\"telecom\":[{\"system\":\"phone\",\"value\":\"");
    synth_buf_str(b, p->phone);
    S("\",\"use\":\"home\"}],\"gender\":\"");
    synth_buf_str(b, p->sex == SYN_SEX_M ? "male" : "female");
    S("\",\"birthDate\":\"");
    synth_buf_time(b, p->birth, 1);
    S("\"");
    if (p->death >= 0) {
        S(",\"deceasedDateTime\":\"");
        synth_buf_time(b, p->death, 0);
        S("\"");
    }
    S(",\"address\":[{\"line\":[\"");
    synth_buf_str(b, p->street);
    S("\"],\"city\":\"");
    synth_buf_str(b, p->city);
    S("\",\"state\":\"");
    synth_buf_str(b, p->state);
    S("\",\"postalCode\":\"");
    synth_buf_str(b, p->zip);
    S("\",\"country\":\"US\"}],\"maritalStatus\":{\"coding\":[{\"system\":\"http://terminology.hl7.org/CodeSystem/v3-MaritalStatus\",\"code\":\"");
    synth_buf_str(b, marital[p->marital][0]);
    S("\",\"display\":\"");
    synth_buf_str(b, marital[p->marital][1]);
    S("\"}]}}\n");
    /* gender, race (OMB only), ethnicity, marital status, birth, death */
    *events += 4 + (p->race != 5) + (p->death >= 0);
}

void synth_fhir_patient(const synth_patient *p, synth_buf out[SYNTH_N_TYPES], uint64_t counts[SYNTH_N_TYPES],
                        uint64_t events[SYNTH_N_TYPES]) {
    static const char *const cls[][2] = {{"AMB", "ambulatory"}, {"EMER", "emergency"}, {"IMP", "inpatient encounter"}};
    static const char *const dispo[][2] = {{"", ""}, {"home", "Home"}, {"snf", "Skilled nursing facility"},
                                           {"oth", "Other (home health care)"}, {"exp", "Expired"}};
    patient(&out[SYNTH_T_PATIENT], p, &events[SYNTH_T_PATIENT]);
    counts[SYNTH_T_PATIENT]++;
    for (size_t i = 0; i < p->n_recs; i++) {
        const synth_rec *r = &p->recs[i];
        synth_buf *b;
        switch (r->kind) {
        case SYN_R_ENCOUNTER:
            b = &out[SYNTH_T_ENCOUNTER];
            head(b, "Encounter", p, 'e', i);
            S(",\"status\":\"finished\",\"class\":{\"system\":\"http://terminology.hl7.org/CodeSystem/v3-ActCode\",\"code\":\"");
            synth_buf_str(b, cls[r->cls][0]);
            S("\",\"display\":\"");
            synth_buf_str(b, cls[r->cls][1]);
            S("\"},\"type\":[");
            concept(b, SNOMED, r->code2, NULL, NULL);
            S("]");
            subject_enc(b, p, -1);
            S(",\"period\":{\"start\":\"");
            synth_buf_time(b, r->t, 0);
            S("\",\"end\":\"");
            synth_buf_time(b, r->t_end, 0);
            S("\"}");
            if (r->cls == SYN_ENC_IMP && r->v2 >= 1 && r->v2 <= 4) {
                int k = (int)r->v2;
                S(",\"hospitalization\":{\"dischargeDisposition\":{\"coding\":[{\"system\":\"http://terminology.hl7.org/CodeSystem/discharge-disposition\",\"code\":\"");
                synth_buf_str(b, dispo[k][0]);
                S("\",\"display\":\"");
                synth_buf_str(b, dispo[k][1]);
                S("\"}]}}");
            }
            S("}\n");
            counts[SYNTH_T_ENCOUNTER]++;
            events[SYNTH_T_ENCOUNTER] += 3; /* start, type, end */
            break;
        case SYN_R_CONDITION:
            b = &out[SYNTH_T_CONDITION];
            head(b, "Condition", p, 'c', i);
            S(",\"clinicalStatus\":{\"coding\":[{\"system\":\"http://terminology.hl7.org/CodeSystem/condition-clinical\",\"code\":\"active\"}]},"
              "\"verificationStatus\":{\"coding\":[{\"system\":\"http://terminology.hl7.org/CodeSystem/condition-ver-status\",\"code\":\"confirmed\"}]},"
              "\"category\":[{\"coding\":[{\"system\":\"http://terminology.hl7.org/CodeSystem/condition-category\",\"code\":\"encounter-diagnosis\"}]}],\"code\":");
            concept(b, SNOMED, r->code, ICD10CM, r->code2);
            subject_enc(b, p, r->enc);
            S(",\"onsetDateTime\":\"");
            synth_buf_time(b, r->t_end, 0);
            S("\",\"recordedDate\":\"");
            synth_buf_time(b, r->t, 0);
            S("\"}\n");
            counts[SYNTH_T_CONDITION]++;
            events[SYNTH_T_CONDITION] += 1;
            break;
        case SYN_R_OBS:
        case SYN_R_BP:
        case SYN_R_SMOKING: {
            b = &out[SYNTH_T_OBSERVATION];
            head(b, "Observation", p, 'o', i);
            int lab = r->kind == SYN_R_OBS && r->module >= 0;
            const char *cat = r->kind == SYN_R_SMOKING ? "social-history" : lab ? "laboratory" : "vital-signs";
            if (r->kind == SYN_R_OBS && r->code && r->unit && strcmp(r->unit, "mm[Hg]") && strcmp(r->unit, "/min") &&
                strcmp(r->unit, "Cel") && strcmp(r->unit, "kg") && strcmp(r->unit, "cm") && strcmp(r->unit, "kg/m2") &&
                strcmp(r->code->code, "2708-6"))
                cat = "laboratory";
            S(",\"status\":\"final\",\"category\":[{\"coding\":[{\"system\":\"http://terminology.hl7.org/CodeSystem/observation-category\",\"code\":\"");
            synth_buf_str(b, cat);
            S("\"}]}],\"code\":");
            concept(b, LOINC, r->code, NULL, NULL);
            subject_enc(b, p, r->enc);
            S(",\"effectiveDateTime\":\"");
            synth_buf_time(b, r->t, 0);
            S("\"");
            if (r->kind == SYN_R_OBS) {
                S(",\"valueQuantity\":");
                quantity(b, r->v, r->dec, r->unit);
                events[SYNTH_T_OBSERVATION] += 1;
            } else if (r->kind == SYN_R_BP) {
                S(",\"component\":[{\"code\":");
                concept(b, LOINC, &synth_vital_codes[SYN_V_SBP], NULL, NULL);
                S(",\"valueQuantity\":");
                quantity(b, r->v, 0, "mm[Hg]");
                S("},{\"code\":");
                concept(b, LOINC, &synth_vital_codes[SYN_V_DBP], NULL, NULL);
                S(",\"valueQuantity\":");
                quantity(b, r->v2, 0, "mm[Hg]");
                S("}]");
                events[SYNTH_T_OBSERVATION] += 2;
            } else {
                S(",\"valueCodeableConcept\":");
                concept(b, SNOMED, r->code2, NULL, NULL);
                events[SYNTH_T_OBSERVATION] += 1;
            }
            S("}\n");
            counts[SYNTH_T_OBSERVATION]++;
            break;
        }
        case SYN_R_MED:
            coded_act(&out[SYNTH_T_MEDREQ], "MedicationRequest", 'm', p, i,
                      ",\"status\":\"active\",\"intent\":\"order\",\"medicationCodeableConcept\":", RXNORM, r,
                      ",\"authoredOn\":\"");
            counts[SYNTH_T_MEDREQ]++;
            events[SYNTH_T_MEDREQ] += 1;
            break;
        case SYN_R_PROC:
            coded_act(&out[SYNTH_T_PROCEDURE], "Procedure", 'p', p, i, ",\"status\":\"completed\",\"code\":", SNOMED, r,
                      ",\"performedDateTime\":\"");
            counts[SYNTH_T_PROCEDURE]++;
            events[SYNTH_T_PROCEDURE] += 1;
            break;
        }
    }
}

static const synth_table fhir_tables[SYNTH_N_TYPES] = {
    {"Patient", "fhir/Patient.000.ndjson", NULL, 0, 0, 0},
    {"Encounter", "fhir/Encounter.000.ndjson", NULL, 0, 0, 0},
    {"Condition", "fhir/Condition.000.ndjson", NULL, 0, 0, 0},
    {"Observation", "fhir/Observation.000.ndjson", NULL, 0, 0, 0},
    {"MedicationRequest", "fhir/MedicationRequest.000.ndjson", NULL, 0, 0, 0},
    {"Procedure", "fhir/Procedure.000.ndjson", NULL, 0, 0, 0},
    {"DocumentReference", "fhir/DocumentReference.000.ndjson", NULL, 0, 0, 0},
};

static void fhir_patient_fn(const void *ctx, const synth_patient *p, synth_buf *out, uint64_t *rows, uint64_t *events) {
    (void)ctx;
    synth_fhir_patient(p, out, rows, events);
}

static const char *fhir_truth_task(const void *ctx, size_t k) {
    const sim_world *w = ctx;
    return k < w->n_tasks ? w->task_names[k] : NULL;
}

void synth_fhir_format(synth_format *f, const sim_world *w, int notes) {
    memset(f, 0, sizeof *f);
    f->name = "fhir-ndjson";
    f->tables = fhir_tables;
    f->n_tables = notes ? SYNTH_N_TYPES : SYNTH_T_DOCREF; /* DocumentReference last, only with notes */
    f->truth_key = "fhir_id";
    f->ctx = (void *)w;
    f->patient = fhir_patient_fn;
    f->truth_task = fhir_truth_task;
}
