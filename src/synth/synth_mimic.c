/* MIMIC-IV tables of a synthetic patient (see synth_mimic.h). The simulation (sim.c) says what
 * happened and when; this file says how MIMIC-IV would have recorded it: which table, which
 * codes, and the clerical times around the clinical ones (a result stored after its specimen was
 * drawn, a culture resulted days later, an emergency registration before the admission). Those
 * times come from the patient's own writer stream (seed, patient), separate from the simulation's,
 * so the population is the same in every layout. */
#include "synth/synth_mimic.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "synth/rng.h"
#include "util/strmap.h"
#include "util/timeutil.h"

/* ------------------------------------------------------------------ tables */

enum {
    T_PATIENTS = 0, T_ADMISSIONS, T_TRANSFERS, T_ICUSTAYS, T_SERVICES, T_DIAGNOSES, T_PROCEDURES, T_LABEVENTS,
    T_PRESCRIPTIONS, T_EMAR, T_MICRO, T_OMR, T_DRG, T_HCPCS, T_D_LABITEMS, T_D_ICD_DX, T_D_ICD_PCS, T_N
};

static const synth_table mimic_tables[T_N] = {
    {"patients", "hosp/patients.csv.gz", "subject_id,gender,anchor_age,anchor_year,anchor_year_group,dod\n", 1, 0, 0},
    {"admissions", "hosp/admissions.csv.gz",
     "subject_id,hadm_id,admittime,dischtime,deathtime,admission_type,admit_provider_id,admission_location,"
     "discharge_location,insurance,language,marital_status,race,edregtime,edouttime,hospital_expire_flag\n", 1, 0, 0},
    {"transfers", "hosp/transfers.csv.gz", "subject_id,hadm_id,transfer_id,eventtype,careunit,intime,outtime\n", 1, 0, 0},
    {"icustays", "icu/icustays.csv.gz", "subject_id,hadm_id,stay_id,first_careunit,last_careunit,intime,outtime,los\n", 1, 0, 0},
    {"services", "hosp/services.csv.gz", "subject_id,hadm_id,transfertime,prev_service,curr_service\n", 1, 0, 0},
    {"diagnoses_icd", "hosp/diagnoses_icd.csv.gz", "subject_id,hadm_id,seq_num,icd_code,icd_version\n", 1, 0, 0},
    {"procedures_icd", "hosp/procedures_icd.csv.gz", "subject_id,hadm_id,seq_num,chartdate,icd_code,icd_version\n", 1, 0, 0},
    {"labevents", "hosp/labevents.csv.gz",
     "labevent_id,subject_id,hadm_id,specimen_id,itemid,order_provider_id,charttime,storetime,value,valuenum,"
     "valueuom,ref_range_lower,ref_range_upper,flag,priority,comments\n", 1, 0, 0},
    {"prescriptions", "hosp/prescriptions.csv.gz",
     "subject_id,hadm_id,pharmacy_id,poe_id,poe_seq,order_provider_id,starttime,stoptime,drug_type,drug,"
     "formulary_drug_cd,gsn,ndc,prod_strength,form_rx,dose_val_rx,dose_unit_rx,form_val_disp,form_unit_disp,"
     "doses_per_24_hrs,route\n", 1, 0, 0},
    {"emar", "hosp/emar.csv.gz",
     "subject_id,hadm_id,emar_id,emar_seq,poe_id,pharmacy_id,enter_provider_id,charttime,medication,event_txt,"
     "scheduletime,storetime\n", 1, 0, 0},
    {"microbiologyevents", "hosp/microbiologyevents.csv.gz",
     "microevent_id,subject_id,hadm_id,micro_specimen_id,order_provider_id,chartdate,charttime,spec_itemid,"
     "spec_type_desc,test_seq,storedate,storetime,test_itemid,test_name,org_itemid,org_name,isolate_num,quantity,"
     "ab_itemid,ab_name,dilution_text,dilution_comparison,dilution_value,interpretation,comments\n", 1, 0, 0},
    {"omr", "hosp/omr.csv.gz", "subject_id,chartdate,seq_num,result_name,result_value\n", 1, 0, 0},
    {"drgcodes", "hosp/drgcodes.csv.gz", "subject_id,hadm_id,drg_type,drg_code,description,drg_severity,drg_mortality\n", 1, 0, 0},
    {"hcpcsevents", "hosp/hcpcsevents.csv.gz", "subject_id,hadm_id,chartdate,hcpcs_cd,seq_num,short_description\n", 1, 0, 0},
    {"d_labitems", "hosp/d_labitems.csv.gz", "itemid,label,fluid,category\n", 1, 1, 0},
    {"d_icd_diagnoses", "hosp/d_icd_diagnoses.csv.gz", "icd_code,icd_version,long_title\n", 1, 1, 0},
    {"d_icd_procedures", "hosp/d_icd_procedures.csv.gz", "icd_code,icd_version,long_title\n", 1, 1, 0},
};

/* Laboratory tests MIMIC-IV has, by LOINC: its d_labitems itemid, label, fluid and category, the
 * unit it reports, and a reference range (lo > hi: none). */
typedef struct {
    const char *loinc;
    int itemid;
    const char *label, *fluid, *category, *unit;
    double lo, hi;
} lab_item;

static const lab_item known_labs[] = {
    {"38483-4", 50912, "Creatinine", "Blood", "Chemistry", "mg/dL", 0.5, 1.2},
    {"2160-0", 50912, "Creatinine", "Blood", "Chemistry", "mg/dL", 0.5, 1.2},
    {"2339-0", 50931, "Glucose", "Blood", "Chemistry", "mg/dL", 70, 100},
    {"2345-7", 50931, "Glucose", "Blood", "Chemistry", "mg/dL", 70, 100},
    {"6299-2", 51006, "Urea Nitrogen", "Blood", "Chemistry", "mg/dL", 6, 20},
    {"2947-0", 50983, "Sodium", "Blood", "Chemistry", "mEq/L", 135, 145},
    {"2951-2", 50983, "Sodium", "Blood", "Chemistry", "mEq/L", 135, 145},
    {"6298-4", 50971, "Potassium", "Blood", "Chemistry", "mEq/L", 3.5, 5.1},
    {"2823-3", 50971, "Potassium", "Blood", "Chemistry", "mEq/L", 3.5, 5.1},
    {"718-7", 51222, "Hemoglobin", "Blood", "Hematology", "g/dL", 12, 16},
    {"6690-2", 51301, "White Blood Cells", "Blood", "Hematology", "K/uL", 4, 11},
    {"4548-4", 50852, "% Hemoglobin A1c", "Blood", "Chemistry", "%", 4, 6},
    {"33914-3", 50920, "Estimated GFR (MDRD equation)", "Blood", "Chemistry", "mL/min/1.73 m2", 1, 0},
    {"33762-6", 50963, "NTproBNP", "Blood", "Chemistry", "pg/mL", 0, 353},
    {"10839-9", 51002, "Troponin I", "Blood", "Chemistry", "ng/mL", 0, 0.04},
    {"2524-7", 50813, "Lactate", "Blood", "Blood Gas", "mmol/L", 0.5, 2},
};

/* Codes that are not laboratory tests in MIMIC-IV: vital signs (outpatient ones go to omr, charted
 * ones to icu/chartevents), smoking status, spirometry. */
static const char *const not_labs[] = {"8480-6", "8462-4", "8867-4", "9279-1", "8310-5", "29463-7", "8302-2",
                                       "39156-5", "2708-6", "72166-2", "85354-9", "19926-5"};

/* The service, wards and intensive care unit of a stay, by the module that brought the patient;
 * cultures drawn (1 blood, 2 urine). Modules not listed go to medicine and the MICU. */
enum { CULT_BLOOD = 1, CULT_URINE = 2 };
typedef struct {
    const char *module, *service, *ward, *icu;
    int elective, cultures;
} unit_row;
static const unit_row units[] = {
    {"myocardial_infarction", "CMED", "Medicine/Cardiology", "Coronary Care Unit (CCU)", 0, 0},
    {"heart_failure_exacerbation", "CMED", "Medicine/Cardiology", "Coronary Care Unit (CCU)", 0, 0},
    {"stroke", "NMED", "Neurology", "Neuro Surgical Intensive Care Unit (Neuro SICU)", 0, 0},
    {"hip_fracture", "ORTHO", "Orthopaedics", "Surgical Intensive Care Unit (SICU)", 0, 0},
    {"knee_osteoarthritis", "ORTHO", "Orthopaedics", "Surgical Intensive Care Unit (SICU)", 1, 0},
    {"appendicitis", "SURG", "Med/Surg", "Surgical Intensive Care Unit (SICU)", 0, 0},
    {"childbirth", "OBS", "Obstetrics (Postpartum & Antepartum)", "Medical Intensive Care Unit (MICU)", 0, 0},
    {"sepsis", "MED", "Medicine", "Medical Intensive Care Unit (MICU)", 0, CULT_BLOOD | CULT_URINE},
    {"pneumonia", "MED", "Medicine", "Medical Intensive Care Unit (MICU)", 0, CULT_BLOOD},
    {"urinary_tract_infection", "MED", "Medicine", "Medical Intensive Care Unit (MICU)", 0, CULT_URINE},
    {"cellulitis", "MED", "Medicine", "Medical Intensive Care Unit (MICU)", 0, CULT_BLOOD},
};
static const unit_row default_unit = {"", "MED", "Medicine", "Medical Intensive Care Unit (MICU)", 0, 0};

#define MAX_LABS 96
#define MAX_DICT 160

typedef struct {
    const sim_world *w;
    uint64_t seed;
    strmap lab_index;            /* LOINC -> index into labs */
    lab_item labs[MAX_LABS];
    char local_label[MAX_LABS][112];
    size_t n_labs;
    const unit_row *unit_of[SYNTH_MAX_MODULES];
    const synth_code *icd[MAX_DICT], *pcs[MAX_DICT];
    size_t n_icd, n_pcs;
} mimic_ctx;

static int add_lab(mimic_ctx *c, const lab_item *it, cf_err *err) {
    if (strmap_find(&c->lab_index, it->loinc, strlen(it->loinc)) >= 0) return CF_OK;
    if (c->n_labs == MAX_LABS) return cf_fail(err, CF_EINPUT, "the modules use more than %d laboratory tests", MAX_LABS);
    if (strmap_intern(&c->lab_index, it->loinc, strlen(it->loinc)) < 0) return cf_fail(err, CF_EINTERNAL, "out of memory");
    c->labs[c->n_labs++] = *it;
    return CF_OK;
}

/* A test the table does not know: a local itemid from 90001, in module order (stable for the files). */
static int add_local_lab(mimic_ctx *c, const synth_code *loinc, const char *unit, cf_err *err) {
    for (size_t i = 0; i < sizeof not_labs / sizeof not_labs[0]; i++)
        if (!strcmp(loinc->code, not_labs[i])) return CF_OK;
    if (strmap_find(&c->lab_index, loinc->code, strlen(loinc->code)) >= 0) return CF_OK;
    int local = 90001;
    for (size_t i = 0; i < c->n_labs; i++)
        if (c->labs[i].itemid >= local) local = c->labs[i].itemid + 1;
    if (c->n_labs == MAX_LABS) return cf_fail(err, CF_EINPUT, "the modules use more than %d laboratory tests", MAX_LABS);
    snprintf(c->local_label[c->n_labs], sizeof c->local_label[0], "%s", loinc->display);
    lab_item it = {loinc->code, local, c->local_label[c->n_labs], "Blood", "Chemistry", unit, 1, 0};
    return add_lab(c, &it, err);
}

static void add_code(const synth_code **arr, size_t *n, const synth_code *c) {
    if (!c->code[0]) return;
    for (size_t i = 0; i < *n; i++)
        if (!strcmp(arr[i]->code, c->code)) return;
    if (*n < MAX_DICT) arr[(*n)++] = c;
}

/* ------------------------------------------------------------------ small writers */

#define S(lit) synth_buf_put(b, lit, sizeof(lit) - 1)
#define C() synth_buf_put(b, ",", 1)

static void put_hadm(synth_buf *b, uint64_t sid, int stay) { synth_buf_u64(b, sid * 1000 + (uint64_t)stay); }

/* minutes drawn log-normally around a median, within [lo, hi] */
static double minutes(synth_rng *r, double median, double sigma, double lo, double hi) {
    double m = median * exp(sigma * synth_normal(r));
    return fmin(fmax(m, lo), hi) / 1440.0;
}

/* seconds-exact, as the simulation's times */
static double sec(double day) { return floor(day * 86400.0 + 0.5) / 86400.0; }

static int civil_year(double day) {
    int64_t y;
    unsigned m, d;
    civil_from_days((int64_t)floor(day), &y, &m, &d);
    return (int)y;
}

static void provider(synth_buf *b, synth_rng *r) {
    static const char a36[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    uint64_t x = synth_mix64(synth_next(r) % 400 + 17);
    char id[7] = "P";
    for (int i = 1; i < 6; i++, x /= 36) id[i] = a36[x % 36];
    id[6] = 0;
    synth_buf_str(b, id);
}

static const char *route_of(const char *display) {
    if (strstr(display, "Injection") || strstr(display, "Injectable")) return "IV";
    if (strstr(display, "Inhalation")) return "IH";
    return "PO";
}

/* ------------------------------------------------------------------ one patient */

typedef struct {
    size_t rec;          /* the encounter record */
    int module;          /* the acute module that brought the patient, or -1 */
    double t_icu;        /* transfer to intensive care, or -1 */
    int died;
} stay_info;

static void patient_row(const mimic_ctx *c, const synth_patient *p, uint64_t sid, synth_buf *out, uint64_t *rows,
                        uint64_t *events) {
    synth_buf *b = &out[T_PATIENTS];
    int ay = civil_year(p->record_start), by = civil_year(p->birth);
    int age = ay - by;
    if (age > 89) age = 91; /* MIMIC-IV: everyone over 89 is 91 */
    int g = ay >= 2008 ? 2008 + (ay - 2008) / 3 * 3 : 2008 - ((2008 - ay + 2) / 3) * 3;
    synth_buf_u64(b, sid);
    synth_buf_str(b, p->sex == SYN_SEX_M ? ",M," : ",F,");
    synth_buf_u64(b, (uint64_t)(age < 0 ? 0 : age));
    C();
    synth_buf_u64(b, (uint64_t)ay);
    C();
    synth_buf_u64(b, (uint64_t)g);
    S(" - ");
    synth_buf_u64(b, (uint64_t)(g + 2));
    C();
    if (p->death >= 0) synth_buf_time(b, p->death, 1);
    S("\n");
    rows[T_PATIENTS]++;
    events[T_PATIENTS] += 2 + (p->death >= 0); /* gender, birth, death */
    (void)c;
}

static void lab_row(const mimic_ctx *c, synth_buf *b, uint64_t sid, uint64_t k, uint64_t specimen, int stay,
                    const synth_rec *r, const lab_item *it, int cls, synth_rng *rng) {
    double store;
    if (cls == SYN_ENC_IMP) store = r->t + minutes(rng, 50, 0.5, 5, 24 * 60);
    else if (cls == SYN_ENC_EMER) store = r->t + minutes(rng, 60, 0.4, 10, 12 * 60);
    else store = r->t + minutes(rng, 300, 0.6, 30, 3 * 1440);
    synth_buf_u64(b, sid * 100000 + k);
    C();
    synth_buf_u64(b, sid);
    C();
    if (stay > 0) put_hadm(b, sid, stay);
    C();
    synth_buf_u64(b, specimen);
    C();
    synth_buf_u64(b, (uint64_t)it->itemid);
    S(",,");
    synth_buf_datetime(b, r->t);
    C();
    synth_buf_datetime(b, sec(store));
    C();
    synth_buf_fixed(b, r->v, r->dec);
    C();
    synth_buf_fixed(b, r->v, r->dec);
    C();
    synth_buf_csv(b, it->unit);
    C();
    int range = it->lo <= it->hi;
    if (range) {
        synth_buf_fixed(b, it->lo, it->lo == floor(it->lo) ? 0 : 2);
        C();
        synth_buf_fixed(b, it->hi, it->hi == floor(it->hi) ? 0 : 2);
    } else {
        C();
    }
    C();
    if (range && (r->v < it->lo || r->v > it->hi)) S("abnormal");
    C();
    synth_buf_str(b, cls == SYN_ENC_AMB ? "ROUTINE" : "STAT");
    S(",\n");
    (void)c;
}

static void omr_row(synth_buf *b, uint64_t sid, double t, int seq, const char *name, double v, int dec, double v2) {
    synth_buf_u64(b, sid);
    C();
    synth_buf_time(b, t, 1);
    C();
    synth_buf_u64(b, (uint64_t)seq);
    C();
    synth_buf_str(b, name);
    C();
    synth_buf_fixed(b, v, dec);
    if (v2 >= 0) {
        S("/");
        synth_buf_fixed(b, v2, 0);
    }
    S("\n");
}

/* A prescription and its administrations; returns the next emar_seq. */
static uint64_t prescription(synth_buf *out, uint64_t *rows, uint64_t *events, uint64_t sid, int stay, uint64_t pharm,
                             const synth_code *drug, double start, double stop, uint64_t emar_seq, synth_rng *r) {
    synth_buf *b = &out[T_PRESCRIPTIONS];
    synth_buf_u64(b, sid);
    C();
    put_hadm(b, sid, stay);
    C();
    synth_buf_u64(b, pharm);
    S(",,,,");
    synth_buf_datetime(b, start);
    C();
    synth_buf_datetime(b, stop);
    S(",MAIN,");
    synth_buf_csv(b, drug->display);
    S(",,,,,,,,,,,");
    synth_buf_str(b, route_of(drug->display));
    S("\n");
    rows[T_PRESCRIPTIONS]++;
    events[T_PRESCRIPTIONS] += 2; /* start, stop */
    /* administrations: a first dose soon after the order, then each morning until the stop */
    b = &out[T_EMAR];
    double sched = sec(start + minutes(r, 40, 0.5, 5, 240));
    for (int n = 0; n < 60 && sched < stop; n++) {
        double given = sec(sched + minutes(r, 10, 0.8, 0, 90));
        if (given >= stop) break;
        synth_buf_u64(b, sid);
        C();
        put_hadm(b, sid, stay);
        C();
        synth_buf_u64(b, sid);
        S("-");
        synth_buf_u64(b, emar_seq);
        C();
        synth_buf_u64(b, emar_seq);
        S(",,");
        synth_buf_u64(b, pharm);
        S(",,");
        synth_buf_datetime(b, given);
        C();
        synth_buf_csv(b, drug->display);
        S(",Administered,");
        synth_buf_datetime(b, sched);
        C();
        synth_buf_datetime(b, sec(given + minutes(r, 4, 0.7, 0, 60)));
        S("\n");
        rows[T_EMAR]++;
        events[T_EMAR]++;
        emar_seq++;
        sched = sec(floor(sched) + 1 + 9.0 / 24); /* the next morning, 09:00 */
    }
    return emar_seq;
}

static void stay_rows(const mimic_ctx *c, const synth_patient *p, uint64_t sid, int k, const stay_info *si,
                      synth_buf *out, uint64_t *rows, uint64_t *events, uint64_t *emar_seq, int lang_unknown, synth_rng *r) {
    const sim_world *w = c->w;
    const synth_rec *e = &p->recs[si->rec];
    double t = e->t, t_out = e->t_end;
    const unit_row *u = si->module >= 0 ? c->unit_of[si->module] : &default_unit;
    double age = (t - p->birth) / 365.2425;
    /* how the patient came: mostly through the emergency department */
    double x = synth_unif(r);
    const char *type, *loc;
    int via_ed = 0;
    if (u->elective) type = "ELECTIVE", loc = "PHYSICIAN REFERRAL";
    else if (x < 0.78) type = "EW EMER.", loc = "EMERGENCY ROOM", via_ed = 1;
    else if (x < 0.86) type = "OBSERVATION ADMIT", loc = "EMERGENCY ROOM", via_ed = 1;
    else if (x < 0.95) type = "URGENT", loc = "TRANSFER FROM HOSPITAL";
    else type = "DIRECT EMER.", loc = "PHYSICIAN REFERRAL";
    double edreg = via_ed ? sec(t - minutes(r, 200, 0.5, 30, 24 * 60)) : 0;
    static const char *const dispo[] = {"HOME", "HOME", "SKILLED NURSING FACILITY", "HOME HEALTH CARE", "DIED"};
    int dv = e->v2 >= 1 && e->v2 <= 4 ? (int)e->v2 : 1;
    static const char *const marital[] = {"MARRIED", "SINGLE", "DIVORCED", "WIDOWED"};
    static const char *const race[] = {"WHITE", "BLACK/AFRICAN AMERICAN", "ASIAN", "AMERICAN INDIAN/ALASKA NATIVE",
                                       "NATIVE HAWAIIAN OR OTHER PACIFIC ISLANDER", "OTHER"};
    synth_buf *b = &out[T_ADMISSIONS];
    synth_buf_u64(b, sid);
    C();
    put_hadm(b, sid, k);
    C();
    synth_buf_datetime(b, t);
    C();
    synth_buf_datetime(b, t_out);
    C();
    if (si->died) synth_buf_datetime(b, t_out);
    C();
    synth_buf_str(b, type);
    C();
    provider(b, r);
    C();
    synth_buf_str(b, loc);
    C();
    synth_buf_str(b, dispo[dv]);
    C();
    synth_buf_str(b, age >= 65 ? "Medicare" : p->insurance == 1 ? "Medicaid" : "Other");
    C();
    synth_buf_str(b, lang_unknown ? "?" : "ENGLISH");
    C();
    int has_marital = age >= 18;
    if (has_marital) synth_buf_str(b, marital[p->marital]);
    C();
    synth_buf_str(b, p->ethnicity && p->race != 2 ? "HISPANIC OR LATINO" : race[p->race]);
    C();
    if (via_ed) {
        synth_buf_datetime(b, edreg);
        C();
        synth_buf_datetime(b, t);
    } else {
        C();
    }
    synth_buf_str(b, si->died ? ",1\n" : ",0\n");
    rows[T_ADMISSIONS]++;
    /* admission, insurance, race, language, discharge; marital status, ED times, death when there */
    events[T_ADMISSIONS] += 5 + has_marital + 2 * via_ed + si->died;

    /* transfers and the ICU stay */
    double icu_in = si->t_icu, icu_out = -1;
    if (icu_in >= 0) {
        icu_out = si->died ? t_out : sec(t_out - minutes(r, 1800, 0.6, 60, 7 * 1440));
        if (icu_out < icu_in + 1.0 / 24) icu_out = t_out; /* discharged from intensive care itself */
    }
    b = &out[T_TRANSFERS];
    uint64_t tid = (sid * 1000 + (uint64_t)k) * 10;
    int ntr = 0;
#define TRANSFER(kind, unit, tin, tout)                                                                      \
    do {                                                                                                     \
        synth_buf_u64(b, sid);                                                                               \
        C();                                                                                                 \
        put_hadm(b, sid, k);                                                                                 \
        C();                                                                                                 \
        synth_buf_u64(b, tid + (uint64_t)ntr++);                                                              \
        S("," kind ",");                                                                                     \
        synth_buf_str(b, unit);                                                                              \
        C();                                                                                                 \
        synth_buf_datetime(b, tin);                                                                          \
        C();                                                                                                 \
        if ((tout) >= 0) synth_buf_datetime(b, tout);                                                        \
        S("\n");                                                                                             \
    } while (0)
    if (via_ed) TRANSFER("ED", "Emergency Department", edreg, t);
    TRANSFER("admit", u->ward, t, icu_in >= 0 ? icu_in : t_out);
    if (icu_in >= 0) {
        TRANSFER("transfer", u->icu, icu_in, icu_out);
        if (icu_out < t_out) TRANSFER("transfer", u->ward, icu_out, t_out);
    }
    TRANSFER("discharge", "", t_out, -1.0);
#undef TRANSFER
    rows[T_TRANSFERS] += (uint64_t)ntr;
    events[T_TRANSFERS] += (uint64_t)ntr;
    if (icu_in >= 0) {
        b = &out[T_ICUSTAYS];
        synth_buf_u64(b, sid);
        C();
        put_hadm(b, sid, k);
        C();
        synth_buf_u64(b, (sid * 1000 + (uint64_t)k) * 10 + 1);
        C();
        synth_buf_str(b, u->icu);
        C();
        synth_buf_str(b, u->icu);
        C();
        synth_buf_datetime(b, icu_in);
        C();
        synth_buf_datetime(b, icu_out);
        C();
        synth_buf_fixed(b, icu_out - icu_in, 4);
        S("\n");
        rows[T_ICUSTAYS]++;
        events[T_ICUSTAYS] += 2;
    }
    b = &out[T_SERVICES];
    synth_buf_u64(b, sid);
    C();
    put_hadm(b, sid, k);
    C();
    synth_buf_datetime(b, t);
    S(",,");
    synth_buf_str(b, u->service);
    S("\n");
    rows[T_SERVICES]++;
    events[T_SERVICES]++;

    /* diagnoses, coded at discharge: the acute one first, then each chronic diagnosis recorded by
     * then (its latest stage) and a past infarction */
    const synth_code *chronic[SYNTH_MAX_MODULES] = {0};
    const synth_code *acute_icd = NULL, *old_mi = NULL;
    for (size_t i = 0; i < p->n_recs; i++) {
        const synth_rec *q = &p->recs[i];
        if (q->kind != SYN_R_CONDITION || q->t > t_out || q->module < 0) continue;
        if (q->code == &synth_history_mi) old_mi = q->code2;
        else if (w->mods.m[q->module].kind == SYN_CHRONIC) chronic[q->module] = q->code2;
        else if (q->enc == (int32_t)si->rec && !acute_icd) acute_icd = q->code2;
    }
    b = &out[T_DIAGNOSES];
    int seq = 0;
    for (int m = -1; m <= (int)w->mods.n; m++) {
        const synth_code *ic = m < 0 ? acute_icd : m == (int)w->mods.n ? old_mi : chronic[m];
        if (!ic) continue;
        synth_buf_u64(b, sid);
        C();
        put_hadm(b, sid, k);
        C();
        synth_buf_u64(b, (uint64_t)++seq);
        C();
        synth_buf_nodot(b, ic->code);
        S(",10\n");
        rows[T_DIAGNOSES]++;
        events[T_DIAGNOSES]++;
    }
    /* procedures with an ICD-10-PCS code, dated */
    b = &out[T_PROCEDURES];
    seq = 0;
    for (size_t i = 0; i < p->n_recs; i++) {
        const synth_rec *q = &p->recs[i];
        if (q->kind != SYN_R_PROC || q->enc != (int32_t)si->rec || q->module < 0) continue;
        const synth_module *md = &w->mods.m[q->module];
        if (q->code != &md->procedure || !md->procedure_pcs.code[0]) continue;
        synth_buf_u64(b, sid);
        C();
        put_hadm(b, sid, k);
        C();
        synth_buf_u64(b, (uint64_t)++seq);
        C();
        synth_buf_time(b, q->t, 1);
        C();
        synth_buf_str(b, md->procedure_pcs.code);
        S(",10\n");
        rows[T_PROCEDURES]++;
        events[T_PROCEDURES]++;
    }
    /* orders: the stay's own, then the home medications continued (from the visits before) */
    uint64_t pharm = (sid * 1000 + (uint64_t)k) * 100;
    int n_rx = 0;
    for (size_t i = 0; i < p->n_recs && n_rx < 99; i++) {
        const synth_rec *q = &p->recs[i];
        if (q->kind != SYN_R_MED || q->enc != (int32_t)si->rec) continue;
        *emar_seq = prescription(out, rows, events, sid, k, pharm + (uint64_t)++n_rx, q->code, q->t, t_out, *emar_seq, r);
    }
    const synth_code *home[32];
    int n_home = 0;
    for (size_t i = 0; i < p->n_recs; i++) {
        const synth_rec *q = &p->recs[i];
        if (q->kind != SYN_R_MED || q->t >= t || q->module < 0 || w->mods.m[q->module].kind != SYN_CHRONIC) continue;
        int seen = 0;
        for (int j = 0; j < n_home; j++) seen |= home[j] == q->code;
        if (!seen && n_home < 32) home[n_home++] = q->code;
    }
    for (int j = 0; j < n_home && n_rx < 99; j++) {
        double start = sec(t + minutes(r, 240, 0.5, 30, 24 * 60));
        if (start >= t_out) continue;
        *emar_seq = prescription(out, rows, events, sid, k, pharm + (uint64_t)++n_rx, home[j], start, t_out, *emar_seq, r);
    }
    /* cultures of an infection stay: drawn in the first hours, resulted two to three days later */
    b = &out[T_MICRO];
    for (int kind = 0; kind < 2; kind++) {
        if (!(u->cultures & (1 << kind))) continue;
        double drawn = sec(t + minutes(r, 90, 0.5, 10, 12 * 60));
        double stored = sec(drawn + 2 + synth_unif(r));
        double pos = si->module >= 0 && !strcmp(w->mods.m[si->module].name, "urinary_tract_infection") ? 0.7
                     : kind == 0 ? (si->module >= 0 && !strcmp(w->mods.m[si->module].name, "sepsis") ? 0.4 : 0.1)
                                 : 0.3;
        static const char *const blood_org[] = {"ESCHERICHIA COLI", "STAPH AUREUS COAG +", "STREPTOCOCCUS PNEUMONIAE",
                                                "KLEBSIELLA PNEUMONIAE"};
        static const char *const urine_org[] = {"ESCHERICHIA COLI", "KLEBSIELLA PNEUMONIAE", "PROTEUS MIRABILIS",
                                                "ENTEROCOCCUS SP."};
        const char *org = synth_bern(r, pos) ? (kind == 0 ? blood_org : urine_org)[synth_next(r) % 4] : NULL;
        synth_buf_u64(b, (sid * 1000 + (uint64_t)k) * 10 + (uint64_t)kind);
        C();
        synth_buf_u64(b, sid);
        C();
        put_hadm(b, sid, k);
        C();
        synth_buf_u64(b, (sid * 1000 + (uint64_t)k) * 10 + (uint64_t)kind);
        S(",,");
        synth_buf_time(b, drawn, 1);
        S(" 00:00:00,");
        synth_buf_datetime(b, drawn);
        S(",,");
        synth_buf_str(b, kind == 0 ? "BLOOD CULTURE" : "URINE");
        S(",1,");
        synth_buf_time(b, stored, 1);
        S(" 00:00:00,");
        synth_buf_datetime(b, stored);
        S(",,");
        synth_buf_csv(b, kind == 0 ? "Blood Culture, Routine" : "URINE CULTURE");
        S(",,");
        if (org) synth_buf_str(b, org);
        S(",,,,,,,,,");
        if (!org) S("NO GROWTH.");
        S("\n");
        rows[T_MICRO]++;
        events[T_MICRO]++;
    }
}

static void mimic_patient(const void *vctx, const synth_patient *p, synth_buf *out, uint64_t *rows, uint64_t *events) {
    const mimic_ctx *c = vctx;
    const sim_world *w = c->w;
    uint64_t sid = synth_subject_id(p->index);
    synth_rng r;
    synth_rng_seed(&r, c->seed ^ 0x6d696d6963ULL /* "mimic" */, p->index, 0, 0);
    patient_row(c, p, sid, out, rows, events);
    int lang_unknown = synth_bern(&r, p->ethnicity ? 0.3 : 0.03);

    /* the stays, numbered from 1; stay_of[encounter record] is its number */
    int32_t stay_buf[256];
    int32_t *stay_of = p->n_recs <= 256 ? stay_buf : malloc(p->n_recs * sizeof *stay_of);
    if (!stay_of) {
        for (int t = 0; t < T_N; t++) out[t].oom = 1;
        return;
    }
    int n_stays = 0;
    for (size_t i = 0; i < p->n_recs; i++) {
        const synth_rec *q = &p->recs[i];
        stay_of[i] = q->kind == SYN_R_ENCOUNTER && q->cls == SYN_ENC_IMP && n_stays < 999 ? ++n_stays : 0;
    }
    uint64_t emar_seq = 1;
    for (size_t i = 0; i < p->n_recs; i++) {
        if (!stay_of[i]) continue;
        stay_info si = {i, -1, -1, p->recs[i].v2 == 4};
        for (size_t j = i + 1; j < p->n_recs; j++) {
            const synth_rec *q = &p->recs[j];
            if (q->enc != (int32_t)i) continue;
            if (q->kind == SYN_R_CONDITION && si.module < 0 && q->module >= 0 && w->mods.m[q->module].kind == SYN_ACUTE)
                si.module = q->module;
            if (q->kind == SYN_R_PROC && q->code == &synth_icu_procedure && si.t_icu < 0) si.t_icu = q->t;
        }
        stay_rows(c, p, sid, stay_of[i], &si, out, rows, events, &emar_seq, lang_unknown, &r);
    }

    /* laboratory results, and the outpatient visits' measures (omr, dated) */
    uint64_t n_lab = 0, specimen = 0;
    double last_t = -1;
    int32_t last_enc = -2;
    double omr_day = -1;
    int omr_seq[4] = {0};
    for (size_t i = 0; i < p->n_recs; i++) {
        const synth_rec *q = &p->recs[i];
        if (q->kind != SYN_R_OBS && q->kind != SYN_R_BP) continue;
        int cls = q->enc >= 0 ? p->recs[q->enc].cls : SYN_ENC_AMB;
        int stay = q->enc >= 0 ? stay_of[q->enc] : 0;
        if (q->kind == SYN_R_OBS) {
            int64_t li = strmap_find(&c->lab_index, q->code->code, strlen(q->code->code));
            if (li >= 0) {
                if (q->t != last_t || q->enc != last_enc) specimen++;
                last_t = q->t, last_enc = q->enc;
                lab_row(c, &out[T_LABEVENTS], sid, ++n_lab, sid * 100000 + specimen, stay, q, &c->labs[li], cls, &r);
                rows[T_LABEVENTS]++;
                events[T_LABEVENTS]++;
                continue;
            }
        }
        if (cls != SYN_ENC_AMB) continue; /* charted vital signs: icu/chartevents, not written */
        double day = floor(q->t);
        if (day != omr_day) omr_day = day, memset(omr_seq, 0, sizeof omr_seq);
        synth_buf *b = &out[T_OMR];
        if (q->kind == SYN_R_BP) {
            omr_row(b, sid, q->t, ++omr_seq[0], "Blood Pressure", q->v, 0, q->v2);
            events[T_OMR] += 2; /* systolic, diastolic */
        } else if (!strcmp(q->code->code, synth_vital_codes[SYN_V_WEIGHT].code)) {
            omr_row(b, sid, q->t, ++omr_seq[1], "Weight (Lbs)", q->v * 2.20462, 1, -1);
            events[T_OMR]++;
        } else if (!strcmp(q->code->code, synth_vital_codes[SYN_V_BMI].code)) {
            omr_row(b, sid, q->t, ++omr_seq[2], "BMI (kg/m2)", q->v, 1, -1);
            events[T_OMR]++;
        } else if (!strcmp(q->code->code, synth_vital_codes[SYN_V_HEIGHT].code)) {
            omr_row(b, sid, q->t, ++omr_seq[3], "Height (Inches)", q->v / 2.54, 1, -1);
            events[T_OMR]++;
        } else {
            continue;
        }
        rows[T_OMR]++;
    }
    if (stay_of != stay_buf) free(stay_of);
}

static void mimic_dictionaries(const void *vctx, synth_buf *out, uint64_t *rows) {
    const mimic_ctx *c = vctx;
    synth_buf *b = &out[T_D_LABITEMS];
    for (size_t i = 0; i < c->n_labs; i++) {
        int dup = 0; /* two LOINC codes may share an item */
        for (size_t j = 0; j < i; j++) dup |= c->labs[j].itemid == c->labs[i].itemid;
        if (dup) continue;
        synth_buf_u64(b, (uint64_t)c->labs[i].itemid);
        C();
        synth_buf_csv(b, c->labs[i].label);
        C();
        synth_buf_csv(b, c->labs[i].fluid);
        C();
        synth_buf_csv(b, c->labs[i].category);
        S("\n");
        rows[T_D_LABITEMS]++;
    }
    for (int d = 0; d < 2; d++) {
        b = &out[d ? T_D_ICD_PCS : T_D_ICD_DX];
        const synth_code *const *arr = d ? c->pcs : c->icd;
        size_t n = d ? c->n_pcs : c->n_icd;
        for (size_t i = 0; i < n; i++) {
            synth_buf_nodot(b, arr[i]->code);
            S(",10,");
            synth_buf_csv(b, arr[i]->display);
            S("\n");
            rows[d ? T_D_ICD_PCS : T_D_ICD_DX]++;
        }
    }
}

/* MIMIC-IV's task files for the four hospital tasks (tasks/in_hospital_mortality.task...): the
 * FHIR tasks' truth under the MIMIC names. The new-onset tasks need outpatient diagnoses, which a
 * MIMIC layout does not have. */
static const char *mimic_truth_task(const void *vctx, size_t k) {
    const mimic_ctx *c = vctx;
    static const char *const names[SYNTH_N_HOSPITAL] = {"in_hospital_mortality", "long_stay_7d", "icu_admission",
                                                        "readmission_30d"};
    if (k < c->w->n_targets || k >= c->w->n_tasks) return NULL;
    return names[k - c->w->n_targets];
}

static void mimic_free(void *vctx) {
    mimic_ctx *c = vctx;
    if (!c) return;
    strmap_free(&c->lab_index);
    free(c);
}

int synth_mimic_format(synth_format *f, const sim_world *w, uint64_t seed, cf_err *err) {
    memset(f, 0, sizeof *f);
    mimic_ctx *c = calloc(1, sizeof *c);
    if (!c) return cf_fail(err, CF_EINTERNAL, "out of memory");
    c->w = w;
    c->seed = seed;
    strmap_init(&c->lab_index);
    int rc = CF_OK;
    for (size_t i = 0; i < sizeof known_labs / sizeof known_labs[0] && !rc; i++) rc = add_lab(c, &known_labs[i], err);
    for (size_t m = 0; m < w->mods.n && !rc; m++) {
        const synth_module *md = &w->mods.m[m];
        if (md->measured) rc = add_local_lab(c, &md->loinc, md->unit, err);
        for (size_t l = 0; l < md->n_labs && !rc; l++) rc = add_local_lab(c, &md->labs[l].loinc, md->labs[l].unit, err);
        c->unit_of[m] = &default_unit;
        for (size_t u = 0; u < sizeof units / sizeof units[0]; u++)
            if (!strcmp(units[u].module, md->name)) c->unit_of[m] = &units[u];
        add_code(c->icd, &c->n_icd, &md->icd10);
        for (size_t s = 0; s < md->n_stages; s++) add_code(c->icd, &c->n_icd, &md->stages[s].icd10);
        add_code(c->pcs, &c->n_pcs, &md->procedure_pcs);
    }
    add_code(c->icd, &c->n_icd, &synth_history_mi_icd);
    if (rc) {
        mimic_free(c);
        return rc;
    }
    *f = (synth_format){.name = "mimic-csv", .tables = mimic_tables, .n_tables = T_N,
                        .truth_key = "subject_id", .ctx = c, .dictionaries = mimic_dictionaries,
                        .patient = mimic_patient, .truth_task = mimic_truth_task, .free = mimic_free};
    return CF_OK;
}
