/* OMOP CDM v5.3 tables of a synthetic patient (see synth_omop.h). Each simulated record becomes
 * the row a warehouse's ETL would make of the same EHR record: an encounter a visit, a diagnosis a
 * condition occurrence (SNOMED CT concept, ICD-10-CM source value), a value a measurement. The
 * concept table is built once, before any patient, from the modules and the fixed tables, so every
 * id is known to every worker thread without locking. */
#include "synth/synth_omop.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/strmap.h"
#include "util/timeutil.h"

enum { T_PERSON = 0, T_OBS_PERIOD, T_DEATH, T_VISIT, T_CONDITION, T_DRUG, T_PROCEDURE, T_MEASUREMENT, T_OBSERVATION,
       T_CONCEPT, T_N };

static const synth_table omop_tables[T_N] = {
    {"person", "PERSON.csv.gz",
     "person_id,gender_concept_id,year_of_birth,month_of_birth,day_of_birth,birth_datetime,race_concept_id,"
     "ethnicity_concept_id,location_id,provider_id,care_site_id,person_source_value,gender_source_value,"
     "gender_source_concept_id,race_source_value,race_source_concept_id,ethnicity_source_value,"
     "ethnicity_source_concept_id\n", 1, 0, 0},
    {"observation_period", "OBSERVATION_PERIOD.csv.gz",
     "observation_period_id,person_id,observation_period_start_date,observation_period_end_date,"
     "period_type_concept_id\n", 1, 0, 1},
    {"death", "DEATH.csv",
     "person_id,death_date,death_datetime,death_type_concept_id,cause_concept_id,cause_source_value,"
     "cause_source_concept_id\n", 0, 0, 0},
    {"visit_occurrence", "VISIT_OCCURRENCE.csv.gz",
     "visit_occurrence_id,person_id,visit_concept_id,visit_start_date,visit_start_datetime,visit_end_date,"
     "visit_end_datetime,visit_type_concept_id,provider_id,care_site_id,visit_source_value,visit_source_concept_id,"
     "admitting_source_concept_id,admitting_source_value,discharge_to_concept_id,discharge_to_source_value,"
     "preceding_visit_occurrence_id\n", 1, 0, 0},
    {"condition_occurrence", "CONDITION_OCCURRENCE.csv.gz",
     "condition_occurrence_id,person_id,condition_concept_id,condition_start_date,condition_start_datetime,"
     "condition_end_date,condition_end_datetime,condition_type_concept_id,stop_reason,provider_id,"
     "visit_occurrence_id,visit_detail_id,condition_source_value,condition_source_concept_id,"
     "condition_status_source_value,condition_status_concept_id\n", 1, 0, 0},
    {"drug_exposure", "DRUG_EXPOSURE.csv.gz",
     "drug_exposure_id,person_id,drug_concept_id,drug_exposure_start_date,drug_exposure_start_datetime,"
     "drug_exposure_end_date,drug_exposure_end_datetime,verbatim_end_date,drug_type_concept_id,stop_reason,refills,"
     "quantity,days_supply,sig,route_concept_id,lot_number,provider_id,visit_occurrence_id,visit_detail_id,"
     "drug_source_value,drug_source_concept_id,route_source_value,dose_unit_source_value\n", 1, 0, 0},
    {"procedure_occurrence", "PROCEDURE_OCCURRENCE.csv.gz",
     "procedure_occurrence_id,person_id,procedure_concept_id,procedure_date,procedure_datetime,"
     "procedure_type_concept_id,modifier_concept_id,quantity,provider_id,visit_occurrence_id,visit_detail_id,"
     "procedure_source_value,procedure_source_concept_id,modifier_source_value\n", 1, 0, 0},
    {"measurement", "MEASUREMENT.csv.gz",
     "measurement_id,person_id,measurement_concept_id,measurement_date,measurement_datetime,measurement_time,"
     "measurement_type_concept_id,operator_concept_id,value_as_number,value_as_concept_id,unit_concept_id,"
     "range_low,range_high,provider_id,visit_occurrence_id,visit_detail_id,measurement_source_value,"
     "measurement_source_concept_id,unit_source_value,value_source_value\n", 1, 0, 0},
    {"observation", "OBSERVATION.csv.gz",
     "observation_id,person_id,observation_concept_id,observation_date,observation_datetime,"
     "observation_type_concept_id,value_as_number,value_as_string,value_as_concept_id,qualifier_concept_id,"
     "unit_concept_id,provider_id,visit_occurrence_id,visit_detail_id,observation_source_value,"
     "observation_source_concept_id,unit_source_value,qualifier_source_value\n", 1, 0, 0},
    {"concept", "CONCEPT.csv",
     "concept_id,concept_name,domain_id,vocabulary_id,concept_class_id,standard_concept,concept_code,"
     "valid_start_date,valid_end_date,invalid_reason\n", 0, 1, 0},
};

#define EHR_TYPE 32817 /* OMOP type concept "EHR" */
#define LOCAL_BASE 2000000000ULL
#define MAX_CONCEPTS 512

typedef struct {
    uint64_t id;
    const char *name, *domain, *vocab, *cls, *standard, *code;
} concept;

static const concept fixed[] = {
    {8507, "MALE", "Gender", "Gender", "Gender", "S", "M"},
    {8532, "FEMALE", "Gender", "Gender", "Gender", "S", "F"},
    {8527, "White", "Race", "Race", "Race", "S", "5"},
    {8516, "Black or African American", "Race", "Race", "Race", "S", "3"},
    {8515, "Asian", "Race", "Race", "Race", "S", "2"},
    {8657, "American Indian or Alaska Native", "Race", "Race", "Race", "S", "1"},
    {8557, "Native Hawaiian or Other Pacific Islander", "Race", "Race", "Race", "S", "4"},
    {38003563, "Hispanic or Latino", "Ethnicity", "Ethnicity", "Ethnicity", "S", "Hispanic"},
    {38003564, "Not Hispanic or Latino", "Ethnicity", "Ethnicity", "Ethnicity", "S", "Not Hispanic"},
    {9201, "Inpatient Visit", "Visit", "Visit", "Visit", "S", "IP"},
    {9202, "Outpatient Visit", "Visit", "Visit", "Visit", "S", "OP"},
    {9203, "Emergency Room Visit", "Visit", "Visit", "Visit", "S", "ER"},
};
enum { C_MALE = 0, C_FEMALE, C_RACE0, C_HISP = 7, C_NOT_HISP, C_IP, C_OP, C_ER };

typedef struct {
    const sim_world *w;
    strmap index;              /* "VOCAB|code" -> index into concepts */
    concept concepts[MAX_CONCEPTS];
    size_t n;
} omop_ctx;

/* The concept of (vocabulary, code), registered at first sight; local ids in registration order. */
static int reg(omop_ctx *c, const char *vocab, const char *code, const char *name, const char *domain,
               const char *cls, const char *standard, uint64_t id, cf_err *err) {
    char key[96];
    int k = snprintf(key, sizeof key, "%s|%s", vocab, code);
    if (strmap_find(&c->index, key, (size_t)k) >= 0) return CF_OK;
    if (c->n == MAX_CONCEPTS) return cf_fail(err, CF_EINPUT, "the modules use more than %d concepts", MAX_CONCEPTS);
    if (strmap_intern(&c->index, key, (size_t)k) < 0) return cf_fail(err, CF_EINTERNAL, "out of memory");
    concept *x = &c->concepts[c->n];
    x->id = id ? id : LOCAL_BASE + 1 + c->n;
    x->name = name, x->domain = domain, x->vocab = vocab, x->cls = cls, x->standard = standard, x->code = code;
    c->n++;
    return CF_OK;
}

static uint64_t cid(const omop_ctx *c, const char *vocab, const char *code) {
    char key[96];
    int k = snprintf(key, sizeof key, "%s|%s", vocab, code);
    int64_t i = strmap_find(&c->index, key, (size_t)k);
    return i >= 0 ? c->concepts[i].id : 0;
}

#define S(lit) synth_buf_put(b, lit, sizeof(lit) - 1)
#define C() synth_buf_put(b, ",", 1)

/* row ids: unique within the patient (the record's index, two rows at most per record) */
static uint64_t row_id(uint64_t sid, size_t rec, int j) { return sid * 10000000ULL + 2 * (uint64_t)rec + (uint64_t)j; }

static void date_dt(synth_buf *b, double t) {
    synth_buf_time(b, t, 1);
    C();
    synth_buf_datetime(b, t);
}

/* the columns every clinical table opens with: its row id, person_id, the concept, the date and
 * the datetime */
static void row_head(synth_buf *b, uint64_t id, uint64_t sid, uint64_t concept_id, double t) {
    synth_buf_u64(b, id);
    C();
    synth_buf_u64(b, sid);
    C();
    synth_buf_u64(b, concept_id);
    C();
    date_dt(b, t);
}

static void measurement(const omop_ctx *c, synth_buf *b, uint64_t sid, size_t i, int j, const synth_rec *r,
                        const char *loinc, double v, int dec, const char *unit, uint64_t visit) {
    row_head(b, row_id(sid, i, j), sid, cid(c, "LOINC", loinc), r->t);
    S(",,");
    synth_buf_u64(b, EHR_TYPE);
    S(",,");
    synth_buf_fixed(b, v, dec);
    S(",,");
    synth_buf_u64(b, cid(c, "UCUM", unit));
    S(",,,,");
    if (visit) synth_buf_u64(b, visit);
    S(",,");
    synth_buf_str(b, loinc);
    C();
    synth_buf_u64(b, cid(c, "LOINC", loinc));
    C();
    synth_buf_csv(b, unit);
    S(",\n");
}

static void omop_patient(const void *vctx, const synth_patient *p, synth_buf *out, uint64_t *rows, uint64_t *events) {
    const omop_ctx *c = vctx;
    uint64_t sid = synth_subject_id(p->index);
    static const char *const race_src[] = {"White", "Black or African American", "Asian",
                                           "American Indian or Alaska Native",
                                           "Native Hawaiian or Other Pacific Islander", "Other Race"};
    int64_t y;
    unsigned mo, d;
    civil_from_days((int64_t)floor(p->birth), &y, &mo, &d);
    synth_buf *b = &out[T_PERSON];
    synth_buf_u64(b, sid);
    C();
    synth_buf_u64(b, c->concepts[p->sex == SYN_SEX_M ? C_MALE : C_FEMALE].id);
    C();
    synth_buf_u64(b, (uint64_t)y);
    C();
    synth_buf_u64(b, mo);
    C();
    synth_buf_u64(b, d);
    C();
    synth_buf_datetime(b, floor(p->birth));
    C();
    synth_buf_u64(b, p->race < 5 ? c->concepts[C_RACE0 + p->race].id : 0);
    C();
    synth_buf_u64(b, c->concepts[p->ethnicity ? C_HISP : C_NOT_HISP].id);
    S(",,,,");
    synth_buf_str(b, p->id);
    C();
    synth_buf_str(b, p->sex == SYN_SEX_M ? "M" : "F");
    S(",0,");
    synth_buf_str(b, race_src[p->race]);
    S(",0,");
    synth_buf_str(b, p->ethnicity ? "Hispanic or Latino" : "Not Hispanic or Latino");
    S(",0\n");
    rows[T_PERSON]++;
    events[T_PERSON] += 4; /* gender, birth, race (its concept, or the source value "Other Race"), ethnicity */

    b = &out[T_OBS_PERIOD];
    synth_buf_u64(b, sid);
    C();
    synth_buf_u64(b, sid);
    C();
    synth_buf_time(b, p->record_start, 1);
    C();
    synth_buf_time(b, p->record_end, 1);
    C();
    synth_buf_u64(b, EHR_TYPE);
    S("\n");
    rows[T_OBS_PERIOD]++;

    uint64_t prev_visit = 0;
    for (size_t i = 0; i < p->n_recs; i++) {
        const synth_rec *r = &p->recs[i];
        uint64_t visit = r->enc >= 0 ? row_id(sid, (size_t)r->enc, 0) : 0;
        switch (r->kind) {
        case SYN_R_ENCOUNTER: {
            static const char *const dispo[] = {"", "home", "skilled nursing facility", "home health care", "expired"};
            int vc = r->cls == SYN_ENC_IMP ? C_IP : r->cls == SYN_ENC_EMER ? C_ER : C_OP;
            b = &out[T_VISIT];
            row_head(b, visit, sid, c->concepts[vc].id, r->t);
            C();
            date_dt(b, r->t_end);
            C();
            synth_buf_u64(b, EHR_TYPE);
            S(",,,");
            synth_buf_str(b, r->code2->code);
            S(",0,0,,0,");
            if (r->cls == SYN_ENC_IMP && r->v2 >= 1 && r->v2 <= 4) synth_buf_str(b, dispo[(int)r->v2]);
            C();
            if (prev_visit) synth_buf_u64(b, prev_visit);
            S("\n");
            prev_visit = visit;
            rows[T_VISIT]++;
            events[T_VISIT] += 2; /* start, end */
            break;
        }
        case SYN_R_CONDITION:
            b = &out[T_CONDITION];
            row_head(b, row_id(sid, i, 0), sid, cid(c, "SNOMED", r->code->code), r->t);
            S(",,,");
            synth_buf_u64(b, EHR_TYPE);
            S(",,,");
            if (visit) synth_buf_u64(b, visit);
            S(",,");
            synth_buf_str(b, r->code2 ? r->code2->code : "");
            C();
            synth_buf_u64(b, r->code2 ? cid(c, "ICD10CM", r->code2->code) : 0);
            S(",,0\n");
            rows[T_CONDITION]++;
            events[T_CONDITION]++;
            break;
        case SYN_R_MED: {
            int inpatient = r->enc >= 0 && p->recs[r->enc].cls == SYN_ENC_IMP;
            double end = inpatient ? p->recs[r->enc].t_end : r->t + 90;
            b = &out[T_DRUG];
            row_head(b, row_id(sid, i, 0), sid, cid(c, "RxNorm", r->code->code), r->t);
            C();
            date_dt(b, end);
            S(",,");
            synth_buf_u64(b, EHR_TYPE);
            S(",,0,,");
            if (!inpatient) S("90");
            S(",,0,,,");
            if (visit) synth_buf_u64(b, visit);
            S(",,");
            synth_buf_str(b, r->code->code);
            C();
            synth_buf_u64(b, cid(c, "RxNorm", r->code->code));
            S(",,\n");
            rows[T_DRUG]++;
            events[T_DRUG]++;
            break;
        }
        case SYN_R_PROC:
            b = &out[T_PROCEDURE];
            row_head(b, row_id(sid, i, 0), sid, cid(c, "SNOMED", r->code->code), r->t);
            C();
            synth_buf_u64(b, EHR_TYPE);
            S(",0,1,,");
            if (visit) synth_buf_u64(b, visit);
            S(",,");
            synth_buf_str(b, r->code->code);
            C();
            synth_buf_u64(b, cid(c, "SNOMED", r->code->code));
            S(",\n");
            rows[T_PROCEDURE]++;
            events[T_PROCEDURE]++;
            break;
        case SYN_R_OBS:
            measurement(c, &out[T_MEASUREMENT], sid, i, 0, r, r->code->code, r->v, r->dec, r->unit, visit);
            rows[T_MEASUREMENT]++;
            events[T_MEASUREMENT]++;
            break;
        case SYN_R_BP:
            measurement(c, &out[T_MEASUREMENT], sid, i, 0, r, synth_vital_codes[SYN_V_SBP].code, r->v, 0, "mm[Hg]", visit);
            measurement(c, &out[T_MEASUREMENT], sid, i, 1, r, synth_vital_codes[SYN_V_DBP].code, r->v2, 0, "mm[Hg]", visit);
            rows[T_MEASUREMENT] += 2;
            events[T_MEASUREMENT] += 2;
            break;
        case SYN_R_SMOKING:
            b = &out[T_OBSERVATION];
            row_head(b, row_id(sid, i, 0), sid, cid(c, "LOINC", r->code->code), r->t);
            C();
            synth_buf_u64(b, EHR_TYPE);
            S(",,,");
            synth_buf_u64(b, cid(c, "SNOMED", r->code2->code));
            S(",,,,");
            if (visit) synth_buf_u64(b, visit);
            S(",,");
            synth_buf_str(b, r->code->code);
            C();
            synth_buf_u64(b, cid(c, "LOINC", r->code->code));
            S(",,\n");
            rows[T_OBSERVATION]++;
            events[T_OBSERVATION]++;
            break;
        }
    }
    if (p->death >= 0) {
        /* the cause: the acute diagnosis of the stay that ended in death */
        const synth_rec *cause = NULL;
        for (size_t i = 0; i < p->n_recs && p->died_in_hospital; i++) {
            const synth_rec *r = &p->recs[i];
            if (r->kind == SYN_R_CONDITION && r->enc >= 0 && p->recs[r->enc].cls == SYN_ENC_IMP &&
                p->recs[r->enc].t_end == p->death && r->module >= 0 && c->w->mods.m[r->module].kind == SYN_ACUTE)
                cause = r;
        }
        b = &out[T_DEATH];
        synth_buf_u64(b, sid);
        C();
        date_dt(b, p->death);
        C();
        synth_buf_u64(b, EHR_TYPE);
        C();
        synth_buf_u64(b, cause ? cid(c, "SNOMED", cause->code->code) : 0);
        C();
        if (cause) synth_buf_str(b, cause->code2->code);
        C();
        synth_buf_u64(b, cause ? cid(c, "ICD10CM", cause->code2->code) : 0);
        S("\n");
        rows[T_DEATH]++;
        events[T_DEATH]++;
    }
}

static void omop_dictionaries(const void *vctx, synth_buf *out, uint64_t *rows) {
    const omop_ctx *c = vctx;
    synth_buf *b = &out[T_CONCEPT];
    for (size_t i = 0; i < c->n; i++) {
        const concept *x = &c->concepts[i];
        synth_buf_u64(b, x->id);
        C();
        synth_buf_csv(b, x->name);
        C();
        synth_buf_csv(b, x->domain);
        C();
        synth_buf_csv(b, x->vocab);
        C();
        synth_buf_csv(b, x->cls);
        C();
        synth_buf_str(b, x->standard);
        C();
        synth_buf_csv(b, x->code);
        S(",1970-01-01,2099-12-31,\n");
        rows[T_CONCEPT]++;
    }
}

/* The FHIR tasks (tasks/<name>_fhir.task) list the OMOP visit codes beside the FHIR encounter codes, and
 * the new-onset tasks the OMOP visit ends, so every task of the world reads an OMOP store. */
static const char *omop_truth_task(const void *vctx, size_t k) {
    const omop_ctx *c = vctx;
    return k < c->w->n_tasks ? c->w->task_names[k] : NULL;
}

static void omop_free(void *vctx) {
    omop_ctx *c = vctx;
    if (!c) return;
    strmap_free(&c->index);
    free(c);
}

static int reg_code(omop_ctx *c, const char *vocab, const synth_code *x, const char *domain, const char *cls,
                    const char *standard, cf_err *err) {
    if (!x->code[0]) return CF_OK;
    return reg(c, vocab, x->code, x->display, domain, cls, standard, 0, err);
}

int synth_omop_format(synth_format *f, const sim_world *w, uint64_t seed, cf_err *err) {
    (void)seed; /* no clerical randomness in this layout: its times are the simulation's */
    memset(f, 0, sizeof *f);
    omop_ctx *c = calloc(1, sizeof *c);
    if (!c) return cf_fail(err, CF_EINTERNAL, "out of memory");
    c->w = w;
    strmap_init(&c->index);
    int rc = CF_OK;
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0] && !rc; i++)
        rc = reg(c, fixed[i].vocab, fixed[i].code, fixed[i].name, fixed[i].domain, fixed[i].cls, fixed[i].standard,
                 fixed[i].id, err);
    for (int v = 0; v < SYN_V_COUNT && !rc; v++) {
        rc = reg_code(c, "LOINC", &synth_vital_codes[v], v == SYN_V_SMOKING ? "Observation" : "Measurement",
                      "Clinical Observation", "S", err);
        if (!rc && synth_vital_units[v][0])
            rc = reg(c, "UCUM", synth_vital_units[v], synth_vital_units[v], "Unit", "Unit", "S", 0, err);
    }
    for (int i = 0; i < 3 && !rc; i++) rc = reg_code(c, "SNOMED", &synth_smoking_answers[i], "Observation", "Clinical Finding", "S", err);
    if (!rc) rc = reg_code(c, "SNOMED", &synth_icu_procedure, "Procedure", "Procedure", "S", err);
    if (!rc) rc = reg_code(c, "SNOMED", &synth_history_mi, "Condition", "Clinical Finding", "S", err);
    if (!rc) rc = reg_code(c, "ICD10CM", &synth_history_mi_icd, "Condition", "ICD10 code", "", err);
    for (size_t m = 0; m < w->mods.n && !rc; m++) {
        const synth_module *md = &w->mods.m[m];
        rc = reg_code(c, "SNOMED", &md->snomed, "Condition", "Clinical Finding", "S", err);
        if (!rc) rc = reg_code(c, "ICD10CM", &md->icd10, "Condition", "ICD10 code", "", err);
        for (size_t s = 0; s < md->n_stages && !rc; s++) {
            rc = reg_code(c, "SNOMED", &md->stages[s].snomed, "Condition", "Clinical Finding", "S", err);
            if (!rc) rc = reg_code(c, "ICD10CM", &md->stages[s].icd10, "Condition", "ICD10 code", "", err);
        }
        if (!rc && md->measured) {
            rc = reg_code(c, "LOINC", &md->loinc, "Measurement", "Lab Test", "S", err);
            if (!rc) rc = reg(c, "UCUM", md->unit, md->unit, "Unit", "Unit", "S", 0, err);
        }
        for (size_t d = 0; d < md->n_drugs && !rc; d++) rc = reg_code(c, "RxNorm", &md->drugs[d], "Drug", "Clinical Drug", "S", err);
        if (!rc) rc = reg_code(c, "SNOMED", &md->procedure, "Procedure", "Procedure", "S", err);
        for (size_t l = 0; l < md->n_labs && !rc; l++) {
            rc = reg_code(c, "LOINC", &md->labs[l].loinc, "Measurement", "Lab Test", "S", err);
            if (!rc) rc = reg(c, "UCUM", md->labs[l].unit, md->labs[l].unit, "Unit", "Unit", "S", 0, err);
        }
    }
    if (rc) {
        omop_free(c);
        return rc;
    }
    *f = (synth_format){.name = "omop-csv", .tables = omop_tables, .n_tables = T_N,
                        .truth_key = "subject_id", .ctx = c, .dictionaries = omop_dictionaries,
                        .patient = omop_patient, .truth_task = omop_truth_task, .free = omop_free};
    return CF_OK;
}
