/* The patient simulation and its ground truth (the model is described in sim.h and
 * docs/SYNTH.md). One function, run(), advances a patient through competing hazards; the record
 * is written only in the main run, while the ground-truth runs replay the same code from a copy
 * of the state with fresh random streams, the target's diagnosis switched off, and the target's
 * recorded-diagnosis hazard integrated instead. Sharing run() is what makes the truth the truth
 * of this generator rather than of a second model of it. */
#include "synth/sim.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define YEAR 365.2425
#define MAXM SYNTH_MAX_MODULES
#define MIN_PER_DAY 1440.0

/* ------------------------------------------------------------------ code tables */

const synth_code synth_vital_codes[SYN_V_COUNT] = {
    {"8480-6", "Systolic blood pressure"},
    {"8462-4", "Diastolic blood pressure"},
    {"8867-4", "Heart rate"},
    {"9279-1", "Respiratory rate"},
    {"8310-5", "Body temperature"},
    {"29463-7", "Body weight"},
    {"8302-2", "Body height"},
    {"39156-5", "Body mass index (BMI) [Ratio]"},
    {"2708-6", "Oxygen saturation in Arterial blood"},
    {"2339-0", "Glucose [Mass/volume] in Blood"},
    {"38483-4", "Creatinine [Mass/volume] in Blood"},
    {"6299-2", "Urea nitrogen [Mass/volume] in Blood"},
    {"2947-0", "Sodium [Moles/volume] in Blood"},
    {"6298-4", "Potassium [Moles/volume] in Blood"},
    {"718-7", "Hemoglobin [Mass/volume] in Blood"},
    {"6690-2", "Leukocytes [#/volume] in Blood by Automated count"},
    {"72166-2", "Tobacco smoking status"},
    {"85354-9", "Blood pressure panel with all children optional"},
};
const char *const synth_vital_units[SYN_V_COUNT] = {
    "mm[Hg]", "mm[Hg]", "/min", "/min", "Cel", "kg", "cm", "kg/m2", "%", "mg/dL", "mg/dL", "mg/dL",
    "mmol/L", "mmol/L", "g/dL", "10*3/uL", "", ""};
const synth_code synth_smoking_answers[3] = {
    {"266919005", "Never smoked tobacco (finding)"},
    {"8517006", "Ex-smoker (finding)"},
    {"449868002", "Smokes tobacco daily (finding)"}};
const synth_code synth_encounter_types[SYN_ET_COUNT] = {
    {"185349003", "Encounter for check up (procedure)"},
    {"185347001", "Encounter for problem (procedure)"},
    {"50849002", "Emergency room admission (procedure)"},
    {"32485007", "Hospital admission (procedure)"}};
const synth_code synth_icu_procedure = {"305351004", "Admission to intensive care unit (procedure)"};
const synth_code synth_history_mi = {"399211009", "History of myocardial infarction (situation)"};
const synth_code synth_history_mi_icd = {"I25.2", "Old myocardial infarction"};
const char *const synth_hospital_tasks[SYNTH_N_HOSPITAL] = {"in_hospital_mortality_fhir", "long_stay_7d_fhir",
                                                          "icu_admission_fhir", "readmission_30d_fhir"};

/* ------------------------------------------------------------------ state */

typedef struct {
    synth_rng r;
    double t, birth, height;
    int male, black, hisp, asian, smoke;
    double bmi40, bmi_slope;
    double u[MAXM], s[MAXM];
    uint32_t dx, treated, hist, recorded;
    double dx_day[MAXM];
    int stage[MAXM];
    int alive, left, in_record, first_done;
    double rec_start, last_discharge, last_checkup;
} sim_state;

typedef struct {
    const sim_world *w;
    synth_patient *p;        /* NULL in a truth run */
    uint64_t index;
    int suppress;            /* module whose diagnosis is off (truth run), else -1 */
    int truth_run;           /* a truth run (death and leaving integrated, not drawn) */
    int target_admit;        /* truth run for readmission: hospital admissions are the target */
    double win_lo, win_hi;   /* the truth window (t0, t0 + window] */
    /* truth run (death and leaving are not drawn but integrated, so a path carries the
     * probability of being alive and in the record instead of a 0/1 outcome): */
    double cum;              /* target diagnosis + death + leaving hazards integrated since win_lo */
    double p_dx;             /* P(target diagnosed in the window, alive and in the record) */
    double p_cont;           /* P(a recorded event after the window | alive, in the record there) */
    double p_death;          /* P(death before the diagnosis, within the window and the data) */
    int ended;               /* the path died in hospital (drawn: stays are not integrated) */
    int oom;
    /* main run: truth rows */
    synth_truth_row **truth;
    size_t *n_truth, *cap_truth;
    uint64_t n_cand;
    /* marker module indices the visits use (-1 when absent) */
    int mk_sbp, mk_hba1c, mk_egfr, mk_fev, mk_hf;
} sim_ctx;

typedef struct {
    double m[MAXM];          /* latent marker values */
    double death, leave, visit, chron[MAXM], acute[MAXM], total;
    double target;           /* truth run: the target's recorded-diagnosis hazard */
} rates;

static double age_at(const sim_state *st, double t) { return (t - st->birth) / YEAR; }

static double bmi_at(const sim_state *st, double t) {
    double a = age_at(st, t);
    if (a < 18) return 17 + (st->bmi40 - 17) * (a / 18.0) * 0.8;
    double b = st->bmi40 + st->bmi_slope * (fmin(a, 65) - 40) - 0.08 * fmax(a - 72, 0);
    return fmin(fmax(b, 15), 65);
}

static double phi(double x) { return 0.5 * erfc(-x / 1.4142135623730951); }

static double cov_value(const synth_effect *e, const sim_state *st, double t, const double *m) {
    double x = 0;
    switch (e->cov) {
    case SYN_COV_AGE: x = age_at(st, t) - 40; break;
    case SYN_COV_MALE: x = st->male; break;
    case SYN_COV_BLACK: x = st->black; break;
    case SYN_COV_HISPANIC: x = st->hisp; break;
    case SYN_COV_ASIAN: x = st->asian; break;
    case SYN_COV_BMI: x = bmi_at(st, t); break;
    case SYN_COV_SMOKER: x = st->smoke == SYN_SMOKE_CURRENT; break;
    case SYN_COV_FORMER: x = st->smoke == SYN_SMOKE_FORMER; break;
    case SYN_COV_MARKER: x = m[e->module]; break;
    case SYN_COV_DX: x = (st->dx >> e->module) & 1; break;
    case SYN_COV_HISTORY: x = (st->hist >> e->module) & 1; break;
    case SYN_COV_TREATED: x = (st->treated >> e->module) & 1; break;
    }
    if (e->ref_kind == SYN_REF_ABOVE) x = fmax(x - e->ref, 0);
    else if (e->ref_kind == SYN_REF_BELOW) x = fmax(e->ref - x, 0);
    return e->coef * x;
}

static void markers(const sim_world *w, const sim_state *st, double t, double *m) {
    double a = age_at(st, t) - 40;
    for (size_t k = 0; k < w->mods.n; k++) {
        int i = w->mods.order[k];
        const synth_module *md = &w->mods.m[i];
        if (!md->has_marker) {
            m[i] = 0;
            continue;
        }
        double v = md->mean + st->u[i] + st->s[i] * a;
        for (size_t e = 0; e < md->n_effects; e++) v += cov_value(&md->effects[e], st, t, m);
        if ((st->treated >> i) & 1) v += md->treat_effect;
        m[i] = fmin(fmax(v, md->lo), md->hi);
    }
}

static double log_hazard(const synth_module *md, const sim_state *st, double t, const double *m) {
    double x = 0;
    for (size_t e = 0; e < md->n_hazard; e++) x += cov_value(&md->hazard[e], st, t, m);
    return x;
}

/* Visits a year by age and sex (NAMCS 2019: ~2-3 office visits a person a year, rising with age),
 * multiplied by each diagnosed module's visit_factor. */
static double visit_rate(const sim_world *w, const sim_state *st, double t) {
    double a = age_at(st, t), v;
    if (a < 18) v = 1.6;
    else if (a < 45) v = st->male ? 1.0 : 1.7;
    else if (a < 65) v = 2.1;
    else if (a < 80) v = 3.2;
    else v = 3.8;
    for (size_t i = 0; i < w->mods.n; i++)
        if ((st->dx >> i) & 1) v *= w->mods.m[i].visit_factor;
    return v / YEAR;
}

static void compute_rates(sim_ctx *c, const sim_state *st, double t, rates *R) {
    const sim_world *w = c->w;
    markers(w, st, t, R->m);
    double a = age_at(st, t);
    /* Gompertz all-cause mortality fitted to US life tables 2019 (0.2%/yr at 40, 1.5% at 65,
     * 11% at 90), men x1.4, times each diagnosis' hazard ratio. */
    double ld = -10.1 + 0.0805 * a + (st->male ? 0.336 : 0); /* x0.5: the tables include the modules' deaths */
    /* The modules' diseases pile up with age, so their hazard ratios explain more of the deaths of
     * the old: a further x0.5 from 55 to 75, and x0.74 more from 72 to 85, keep the generated
     * death rates by age near the 2019 US rates (measured: docs/SYNTH.md, realism) instead of
     * 1.5-2x above them after 65. */
    ld -= 0.7 * fmin(fmax((a - 55) / 20, 0), 1) + 0.3 * fmin(fmax((a - 72) / 13, 0), 1);
    if (a < 18) ld = log(0.0003);
    for (size_t i = 0; i < w->mods.n; i++)
        if (((st->dx | st->hist) >> i) & 1) ld += w->mods.m[i].death_log_hr;
    R->death = st->in_record ? exp(ld) / YEAR : 0;
    R->leave = st->in_record ? 0.02 / YEAR : 0; /* moving away: 2% a year */
    R->visit = visit_rate(w, st, t);
    R->target = 0;
    R->total = R->visit + (c->truth_run ? 0 : R->death + R->leave);
    double since = t - st->last_discharge;
    double early = exp(-since / 12.0); /* early readmission: x(1 + boost) right after a discharge */
    for (size_t i = 0; i < w->mods.n; i++) {
        const synth_module *md = &w->mods.m[i];
        R->chron[i] = R->acute[i] = 0;
        if (a < md->min_age) continue;
        if (md->kind == SYN_ACUTE) {
            if (md->requires >= 0 && !((st->dx >> md->requires) & 1)) continue;
            R->acute[i] = md->rate * exp(log_hazard(md, st, t, R->m)) * (1 + md->readmission_boost * early) / YEAR;
            if (c->target_admit) { /* truth run for readmission: admissions integrated, not drawn */
                R->target += R->acute[i] * md->admit;
                R->acute[i] *= 1 - md->admit;
            }
            R->total += R->acute[i];
            continue;
        }
        if ((st->dx >> i) & 1) continue;
        double h;
        if (md->has_marker)
            h = md->symptom_rate * exp(fmin(md->symptom_slope * md->direction * (R->m[i] - md->threshold), 8));
        else
            h = md->rate * exp(log_hazard(md, st, t, R->m));
        h /= YEAR;
        if ((int)i == c->suppress) {
            R->target += h; /* screening is added below, once every visit rate is known */
            continue;
        }
        R->chron[i] = h;
        R->total += h;
    }
    if (c->suppress >= 0 && R->target > 0) {
        /* truth run: the target's diagnosis hazard, from presentations and from a measurement past
         * the threshold at any visit (routine, or brought by another module's symptoms), is
         * integrated, not drawn */
        const synth_module *md = &w->mods.m[c->suppress];
        if (md->has_marker && md->measured && md->noise_sd > 0) {
            double visits = R->visit;
            for (size_t i = 0; i < w->mods.n; i++) visits += R->chron[i];
            /* a measurement is rounded to the module's decimals before it is compared with the
             * threshold: "reaches 6.5" is "6.45 or more" before rounding */
            double half = 0.5 * pow(10, -md->decimals), eff = md->threshold;
            if (md->log10_scale) eff = log10(fmax(pow(10, md->threshold) - md->direction * half, 1e-9));
            else eff -= md->direction * half;
            R->target += visits * md->screen * phi(md->direction * (R->m[c->suppress] - eff) / md->noise_sd);
        }
    }
}

/* ------------------------------------------------------------------ records */

static synth_rec *add_rec(sim_ctx *c, int kind, double t) {
    synth_patient *p = c->p;
    if (p->n_recs == p->cap_recs) {
        size_t cap = p->cap_recs ? p->cap_recs * 2 : 256;
        synth_rec *r = realloc(p->recs, cap * sizeof *r);
        if (!r) {
            c->oom = 1;
            return NULL;
        }
        p->recs = r;
        p->cap_recs = cap;
    }
    synth_rec *r = &p->recs[p->n_recs++];
    memset(r, 0, sizeof *r);
    r->kind = (uint8_t)kind;
    r->t = t;
    r->module = -1;
    r->enc = -1;
    return r;
}

static int emitting(const sim_ctx *c, const sim_state *st) { return c->p && st->in_record && !c->oom; }

static void obs(sim_ctx *c, int32_t enc, double t, const synth_code *code, const char *unit, double v, int dec, int module) {
    synth_rec *r = add_rec(c, SYN_R_OBS, t);
    if (!r) return;
    r->sys = SYN_SYS_LOINC;
    r->code = code;
    r->unit = unit;
    r->v = v;
    r->dec = (uint8_t)dec;
    r->enc = enc;
    r->module = (int16_t)module;
}

static void vital(sim_ctx *c, int32_t enc, double t, int which, double v, int dec) {
    obs(c, enc, t, &synth_vital_codes[which], synth_vital_units[which], v, dec, -1);
}

static void condition(sim_ctx *c, int32_t enc, double t, double onset, const synth_code *sn, const synth_code *icd, int module) {
    synth_rec *r = add_rec(c, SYN_R_CONDITION, t);
    if (!r) return;
    r->sys = SYN_SYS_SNOMED;
    r->code = sn;
    r->code2 = icd;
    r->t_end = onset;
    r->enc = enc;
    r->module = (int16_t)module;
}

static void med(sim_ctx *c, int32_t enc, double t, const synth_code *rx, int module) {
    synth_rec *r = add_rec(c, SYN_R_MED, t);
    if (!r) return;
    r->sys = SYN_SYS_RXNORM;
    r->code = rx;
    r->enc = enc;
    r->module = (int16_t)module;
}

static void procedure(sim_ctx *c, int32_t enc, double t, const synth_code *sn, int module) {
    synth_rec *r = add_rec(c, SYN_R_PROC, t);
    if (!r) return;
    r->sys = SYN_SYS_SNOMED;
    r->code = sn;
    r->enc = enc;
    r->module = (int16_t)module;
}

static int32_t encounter(sim_ctx *c, double t, double t_end, int cls, int type) {
    synth_rec *r = add_rec(c, SYN_R_ENCOUNTER, t);
    if (!r) return -1;
    r->cls = (uint8_t)cls;
    r->t_end = t_end;
    r->code2 = &synth_encounter_types[type];
    r->enc = (int32_t)(c->p->n_recs - 1);
    return r->enc;
}

/* Seconds-exact times: every time written is a whole second, so labels and truth rows join on
 * exact microseconds. */
static double round_sec(double day) { return floor(day * 86400.0 + 0.5) / 86400.0; }

static double rnd(double v, int dec) {
    double s = pow(10, dec);
    return floor(v * s + 0.5) / s;
}

/* The measured value of a marker (reported units). */
static double measure(const synth_module *md, double latent, synth_rng *r) {
    double v = latent + md->noise_sd * synth_normal(r);
    if (md->log10_scale) v = pow(10, v);
    return rnd(v, md->decimals);
}
static double latent_of(const synth_module *md, double reported) {
    return md->log10_scale ? log10(fmax(reported, 1e-9)) : reported;
}

/* CKD-EPI 2021 (race-free) solved for serum creatinine. */
static double creatinine_from_egfr(double egfr, double age, int male) {
    double kappa = male ? 0.9 : 0.7, alpha = male ? -0.302 : -0.241, f = male ? 1.0 : 1.012;
    double base = 142.0 * pow(0.9938, age) * f;
    double scr = kappa * pow(egfr / base, -1.0 / 1.2);
    if (scr < kappa) scr = kappa * pow(egfr / base, 1.0 / alpha);
    return scr;
}

/* Records what was diagnosed before the record began, at the first encounter in the record. */
static void record_prevalent(sim_ctx *c, sim_state *st, int32_t enc, double t) {
    if (st->first_done) return;
    st->first_done = 1;
    if (!emitting(c, st)) return;
    const sim_world *w = c->w;
    vital(c, enc, t, SYN_V_HEIGHT, rnd(st->height, 1), 1);
    synth_rec *r = add_rec(c, SYN_R_SMOKING, t);
    if (r) {
        r->sys = SYN_SYS_LOINC;
        r->code = &synth_vital_codes[SYN_V_SMOKING];
        r->code2 = &synth_smoking_answers[age_at(st, t) < 18 ? 0 : st->smoke];
        r->enc = enc;
    }
    for (size_t i = 0; i < w->mods.n; i++) {
        const synth_module *md = &w->mods.m[i];
        if (md->kind == SYN_CHRONIC && ((st->dx >> i) & 1)) {
            const synth_code *sn = &md->snomed, *icd = &md->icd10;
            if (md->n_stages) sn = &md->stages[st->stage[i]].snomed, icd = &md->stages[st->stage[i]].icd10;
            condition(c, enc, t, st->dx_day[i], sn, icd, (int)i);
            st->recorded |= 1u << i;
            if ((st->treated >> i) & 1)
                for (size_t d = 0; d < md->n_drugs; d++) med(c, enc, t, &md->drugs[d], (int)i);
        } else if (md->kind == SYN_ACUTE && ((st->hist >> i) & 1) && !strcmp(md->name, "myocardial_infarction")) {
            /* a past infarction is kept on the problem list; past pneumonias and the like are not */
            condition(c, enc, t, st->dx_day[i], &synth_history_mi, &synth_history_mi_icd, (int)i);
        }
    }
}

static void diagnose(sim_ctx *c, sim_state *st, int i, double t, int32_t enc, double latent) {
    const synth_module *md = &c->w->mods.m[i];
    st->dx |= 1u << i;
    st->dx_day[i] = t;
    int stage = 0;
    for (size_t k = 1; k < md->n_stages; k++)
        if (md->direction * (latent - md->stages[k].threshold) >= 0) stage = (int)k;
    st->stage[i] = stage;
    int treat = md->n_drugs > 0 && synth_bern(&st->r, 0.85); /* ~85% start treatment */
    if (treat) st->treated |= 1u << i;
    if (!emitting(c, st)) return;
    const synth_code *sn = &md->snomed, *icd = &md->icd10;
    if (md->n_stages) sn = &md->stages[stage].snomed, icd = &md->stages[stage].icd10;
    condition(c, enc, t, t, sn, icd, i);
    st->recorded |= 1u << i;
    if (treat)
        for (size_t d = 0; d < md->n_drugs; d++) med(c, enc, t, &md->drugs[d], i);
}

static void truth_rows(sim_ctx *c, sim_state *st, double t_end);
static void add_truth(sim_ctx *c, int task, double t, double p_outcome, double p_followed, double p_kept_end,
                      int outcome);
static double readmission_truth(sim_ctx *c, const sim_state *st, double t_dis, uint64_t cand);

/* A stay's hazards on day d (from admission): death, transfer to intensive care, discharge. The
 * severity z improves by 0.12 a day; the first day has fewer discharges and more transfers. */
static void stay_hazards(const synth_module *md, double z, int d, double a, double comorb, int icu, double *h_death,
                         double *h_icu, double *h_dis) {
    double zd = z - 0.12 * d;
    *h_death = md->death_per_day * exp(fmin(0.9 * zd + 0.02 * (a - 65) + 0.5 * icu + 0.25 * comorb, 5));
    *h_icu = icu ? 0 : md->icu_per_day * exp(fmin(1.1 * zd, 5)) * (d == 0 ? 1.5 : 1);
    *h_dis = (1.0 / md->los_days) * exp(-0.35 * zd) * (icu ? 0.35 : 1) * (d == 0 ? 0.3 : 1);
}

/* The rest of a stay, exactly (a Markov chain on "in intensive care or not" by day, the same
 * hazards as the stay's loop), from the start of day d0: P(death in hospital), P(a transfer to
 * intensive care), P(still in hospital at the start of day 7, i.e. a stay over 7 days). */
static void stay_dp(const synth_module *md, double z, double a, double comorb, int d0, int icu0, double *p_death,
                    double *p_icu, double *p_long) {
    double pn = icu0 ? 0 : 1, pi = icu0 ? 1 : 0;
    *p_death = *p_icu = 0;
    *p_long = d0 >= 7 ? 1 : 0;
    for (int d = d0; d < 60; d++) {
        if (d == 7) *p_long = pn + pi;
        double hd, hi, hs, move = 0, next_n = pn, next_i = pi;
        for (int s = 0; s < 2; s++) {
            double mass = s ? pi : pn;
            if (mass <= 0) continue;
            stay_hazards(md, z, d, a, comorb, s, &hd, &hi, &hs);
            double tot = hd + hi + hs, pa = -expm1(-tot);
            if (tot <= 0) continue;
            *p_death += mass * pa * hd / tot;
            if (!s) move = mass * pa * hi / tot;
            if (s) next_i = mass * (1 - pa);
            else next_n = mass * (1 - pa);
        }
        *p_icu += move;
        pn = next_n;
        pi = next_i + move;
    }
}

/* Vitals of a visit; the systolic pressure is the hypertension marker when there is one. */
static void visit_vitals(sim_ctx *c, sim_state *st, int32_t enc, double t, const double *m) {
    const sim_world *w = c->w;
    double sbp = c->mk_sbp >= 0 ? m[c->mk_sbp] : 120;
    double noise = c->mk_sbp >= 0 ? w->mods.m[c->mk_sbp].noise_sd : 8;
    double s = rnd(fmin(fmax(sbp + noise * synth_normal(&st->r), 70), 250), 0);
    double d = rnd(fmin(fmax(0.45 * s + 18 + 6 * synth_normal(&st->r), 40), 140), 0);
    double hr = rnd(74 + 8 * synth_normal(&st->r) + (c->mk_hf >= 0 && ((st->dx >> c->mk_hf) & 1) ? 6 : 0), 0);
    double bmi = bmi_at(st, t) + 0.4 * synth_normal(&st->r);
    double wt = bmi * (st->height / 100) * (st->height / 100);
    if (!emitting(c, st)) return;
    synth_rec *r = add_rec(c, SYN_R_BP, t);
    if (r) {
        r->sys = SYN_SYS_LOINC;
        r->code = &synth_vital_codes[SYN_V_BP_PANEL];
        r->v = s;
        r->v2 = d;
        r->enc = enc;
    }
    vital(c, enc, t, SYN_V_HR, hr, 0);
    vital(c, enc, t, SYN_V_WEIGHT, rnd(wt, 1), 1);
    vital(c, enc, t, SYN_V_BMI, rnd(bmi, 1), 1);
}

/* A routine (or problem) visit: vitals, the modules' measurements, diagnoses by threshold,
 * renewals, stage progression. `problem` is the module that brought the patient (or -1). */
static void visit(sim_ctx *c, sim_state *st, double t, const double *m, int problem) {
    const sim_world *w = c->w;
    t = round_sec(t);
    double a = age_at(st, t);
    double dur = round_sec((15 + 20 * synth_unif(&st->r)) / MIN_PER_DAY);
    int checkup = problem < 0 && t - st->last_checkup > 300;
    if (checkup) st->last_checkup = t;
    int32_t enc = -1;
    if (emitting(c, st)) {
        enc = encounter(c, t, t + dur, SYN_ENC_AMB, checkup ? SYN_ET_CHECKUP : SYN_ET_PROBLEM);
        record_prevalent(c, st, enc, t);
        if (checkup && st->first_done && c->p->n_recs > 1) {
            synth_rec *r = add_rec(c, SYN_R_SMOKING, t);
            if (r) {
                r->sys = SYN_SYS_LOINC;
                r->code = &synth_vital_codes[SYN_V_SMOKING];
                r->code2 = &synth_smoking_answers[a < 18 ? 0 : st->smoke];
                r->enc = enc;
            }
        }
    } else if (st->in_record) {
        st->first_done = 1;
    }
    visit_vitals(c, st, enc, t, m);
    int bmp = 0;
    for (size_t i = 0; i < w->mods.n; i++) {
        const synth_module *md = &w->mods.m[i];
        if (md->kind != SYN_CHRONIC) continue;
        int dx = (st->dx >> i) & 1;
        if (!md->has_marker) {
            if ((int)i == problem && !dx) diagnose(c, st, (int)i, t, enc, 0);
            continue;
        }
        if (!md->measured) {
            if ((int)i == problem && !dx) diagnose(c, st, (int)i, t, enc, m[i]);
            continue;
        }
        double q = (int)i == problem ? 1.0 : dx ? md->monitor : md->screen;
        if (a < md->min_age && (int)i != problem) q *= 0.1;
        if (!synth_bern(&st->r, q)) continue;
        double val = measure(md, m[i], &st->r);
        double lat = latent_of(md, val);
        if ((int)i == c->mk_egfr) bmp = 1;
        if (emitting(c, st)) obs(c, enc, t, &md->loinc, md->unit, val, md->decimals, (int)i);
        if (!dx) {
            if ((int)i == c->suppress) continue;
            if ((int)i == problem || (a >= md->min_age && md->direction * (lat - md->threshold) >= 0))
                diagnose(c, st, (int)i, t, enc, lat);
        } else if (md->n_stages && st->stage[i] + 1 < (int)md->n_stages &&
                   md->direction * (lat - md->stages[st->stage[i] + 1].threshold) >= 0) {
            st->stage[i]++;
            if (emitting(c, st))
                condition(c, enc, t, t, &md->stages[st->stage[i]].snomed, &md->stages[st->stage[i]].icd10, (int)i);
        }
    }
    /* a basic metabolic panel goes with every eGFR */
    if (bmp) {
        double egfr = m[c->mk_egfr];
        double cr = creatinine_from_egfr(egfr, a, st->male) * exp(0.05 * synth_normal(&st->r));
        double bun = 13 + fmax(90 - egfr, 0) * 0.25 + 3 * synth_normal(&st->r);
        double na = 140 + 2.5 * synth_normal(&st->r);
        double k = 4.2 + fmax(60 - egfr, 0) * 0.012 + 0.35 * synth_normal(&st->r);
        double glu = (c->mk_hba1c >= 0 ? 28.7 * m[c->mk_hba1c] - 46.7 : 100) + 15 * synth_normal(&st->r);
        if (emitting(c, st)) {
            vital(c, enc, t, SYN_V_CREAT, rnd(fmax(cr, 0.3), 2), 2);
            vital(c, enc, t, SYN_V_BUN, rnd(fmax(bun, 3), 0), 0);
            vital(c, enc, t, SYN_V_NA, rnd(na, 0), 0);
            vital(c, enc, t, SYN_V_K, rnd(fmax(k, 2.5), 1), 1);
            vital(c, enc, t, SYN_V_GLUCOSE, rnd(fmax(glu, 50), 0), 0);
        }
    }
    /* renewals of the treatments going on */
    for (size_t i = 0; i < w->mods.n; i++) {
        const synth_module *md = &w->mods.m[i];
        if (!((st->treated >> i) & 1) || st->dx_day[i] == t) continue;
        for (size_t d = 0; d < md->n_drugs; d++)
            if (synth_bern(&st->r, 0.4) && emitting(c, st)) med(c, enc, t, &md->drugs[d], (int)i);
    }
    st->t = t + dur;
    if (c->p && st->in_record) truth_rows(c, st, t + dur);
}

/* An acute event: treat-and-release at the emergency department, or a hospital stay. */
static void acute(sim_ctx *c, sim_state *st, double t, int k, const double *m) {
    const sim_world *w = c->w;
    const synth_module *md = &w->mods.m[k];
    t = round_sec(t);
    double a = age_at(st, t);
    if (!st->in_record) { /* before the record: only the history counts */
        st->hist |= 1u << k;
        st->dx_day[k] = t;
        return;
    }
    double z = md->severity_sd * synth_normal(&st->r);
    double comorb = 0;
    for (size_t i = 0; i < w->mods.n; i++)
        if (((st->dx | st->hist) >> i) & 1) comorb += w->mods.m[i].death_log_hr;
    st->hist |= 1u << k;
    st->dx_day[k] = t;
    int admit = synth_bern(&st->r, md->admit) && !c->target_admit;
    if (!admit) {
        double end = round_sec(t + (2 + 4 * synth_unif(&st->r)) / 24.0);
        int32_t enc = -1;
        if (emitting(c, st)) {
            enc = encounter(c, t, end, SYN_ENC_EMER, SYN_ET_ED);
            record_prevalent(c, st, enc, t);
            condition(c, enc, t, t, &md->snomed, &md->icd10, k);
        }
        visit_vitals(c, st, enc, t, m);
        for (size_t l = 0; l < md->n_labs; l++) {
            const synth_lab *lb = &md->labs[l];
            double v = lb->mean + lb->per_severity * (z - 0.5) + lb->sd * synth_normal(&st->r);
            if (emitting(c, st)) obs(c, enc, t, &lb->loinc, lb->unit, rnd(fmin(fmax(v, lb->lo), lb->hi), lb->decimals), lb->decimals, k);
        }
        if (md->n_drugs && emitting(c, st)) med(c, enc, t, &md->drugs[0], k);
        st->t = end;
        if (c->p) truth_rows(c, st, end);
        return;
    }
    int32_t enc = -1;
    synth_rec *er = NULL;
    if (emitting(c, st)) {
        enc = encounter(c, t, t, SYN_ENC_IMP, SYN_ET_ADMIT);
        record_prevalent(c, st, enc, t);
        condition(c, enc, t, t, &md->snomed, &md->icd10, k);
        for (size_t d = 0; d < md->n_drugs; d++)
            if (synth_bern(&st->r, 0.85)) med(c, enc, t, &md->drugs[d], k);
    }
    if (md->procedure.code[0] && synth_bern(&st->r, md->procedure_prob) && emitting(c, st))
        procedure(c, enc, round_sec(t + 0.1 + 0.3 * synth_unif(&st->r)), &md->procedure, k);
    int icu = 0, died = 0, ever_icu = 0, in_at_24h = 0;
    double t_out = t;
    double p_icu_adm = 0, p_death24 = 0, p_long24 = 0;
    int hosp_truth = c->p && c->w->truth_paths && st->in_record;
    if (hosp_truth) {
        double pd_, pl_;
        stay_dp(md, z, a, comorb, 0, 0, &pd_, &p_icu_adm, &pl_);
    }
    for (int d = 0; d < 60; d++) {
        if (d == 1) { /* 24 hours after admission: the state the mortality and stay tasks predict from */
            in_at_24h = 1;
            if (hosp_truth) {
                double pi_;
                stay_dp(md, z, a, comorb, 1, icu, &p_death24, &pi_, &p_long24);
            }
        }
        double day = t + d;
        double zd = z - 0.12 * d;
        /* daily observations: vitals and labs follow the severity */
        double tm = round_sec(d == 0 ? t + 1.0 / 24 : floor(day) + 0.25 + 0.1 * synth_unif(&st->r));
        if (tm <= t) tm = round_sec(t + 1.0 / 24);
        double hr = 82 + 9 * zd + 8 * synth_normal(&st->r);
        double rr = 18 + 2.5 * zd + 2 * synth_normal(&st->r);
        double spo2 = 96 - 1.8 * fmax(zd, 0) - (c->mk_fev >= 0 && ((st->dx >> c->mk_fev) & 1) ? 2 : 0) + synth_normal(&st->r);
        double temp = 37.0 + 0.5 * fmax(zd, 0) + 0.3 * synth_normal(&st->r);
        double sbp = (c->mk_sbp >= 0 ? m[c->mk_sbp] : 120) - 6 * fmax(zd, 0) + 10 * synth_normal(&st->r);
        double egfr = c->mk_egfr >= 0 ? m[c->mk_egfr] : 90;
        double cr = creatinine_from_egfr(egfr, a, st->male) * (1 + 0.25 * fmax(zd, 0)) * exp(0.06 * synth_normal(&st->r));
        double wbc = 8 + 2.5 * fmax(zd, 0) + 1.8 * synth_normal(&st->r);
        double hgb = (st->male ? 14.2 : 12.8) - 0.4 * fmax(zd, 0) + 0.9 * synth_normal(&st->r);
        if (emitting(c, st)) {
            vital(c, enc, tm, SYN_V_HR, rnd(fmax(hr, 30), 0), 0);
            vital(c, enc, tm, SYN_V_RR, rnd(fmax(rr, 6), 0), 0);
            vital(c, enc, tm, SYN_V_SPO2, rnd(fmin(fmax(spo2, 70), 100), 0), 0);
            vital(c, enc, tm, SYN_V_TEMP, rnd(temp, 1), 1);
            synth_rec *r = add_rec(c, SYN_R_BP, tm);
            if (r) {
                r->sys = SYN_SYS_LOINC;
                r->code = &synth_vital_codes[SYN_V_BP_PANEL];
                r->v = rnd(fmin(fmax(sbp, 60), 240), 0);
                r->v2 = rnd(fmin(fmax(0.5 * sbp + 10 + 6 * synth_normal(&st->r), 30), 140), 0);
                r->enc = enc;
            }
            vital(c, enc, tm, SYN_V_CREAT, rnd(fmax(cr, 0.3), 2), 2);
            vital(c, enc, tm, SYN_V_WBC, rnd(fmax(wbc, 0.5), 1), 1);
            vital(c, enc, tm, SYN_V_HGB, rnd(fmax(hgb, 5), 1), 1);
            for (size_t l = 0; l < md->n_labs; l++) {
                const synth_lab *lb = &md->labs[l];
                double v = lb->mean + lb->per_severity * zd + lb->sd * synth_normal(&st->r);
                obs(c, enc, tm, &lb->loinc, lb->unit, rnd(fmin(fmax(v, lb->lo), lb->hi), lb->decimals), lb->decimals, k);
            }
        } else {
            for (int j = 0; j < 9 + 2 * (int)md->n_labs; j++) synth_normal(&st->r); /* same draws */
        }
        /* the day's hazards: death, intensive care, discharge */
        double h_death, h_icu, h_dis;
        stay_hazards(md, z, d, a, comorb, icu, &h_death, &h_icu, &h_dis);
        double tot = h_death + h_icu + h_dis;
        double u = synth_unif(&st->r), when = synth_unif(&st->r);
        if (u < 1 - exp(-tot)) {
            double x = synth_unif(&st->r) * tot;
            double te = round_sec(fmax(tm, day) + (1.0 - (fmax(tm, day) - day)) * when);
            if (te <= tm) te = round_sec(tm + 1.0 / 24);
            if (x < h_death) {
                died = 1;
                t_out = te;
                break;
            } else if (x < h_death + h_icu) {
                icu = ever_icu = 1;
                if (emitting(c, st)) procedure(c, enc, te, &synth_icu_procedure, k);
            } else {
                t_out = te;
                break;
            }
        }
        t_out = round_sec(day + 1);
    }
    if (emitting(c, st) && enc >= 0) {
        er = &c->p->recs[enc];
        er->t_end = t_out;
        /* discharge disposition: 1 home, 2 skilled nursing, 3 home health, 4 died */
        er->v2 = died ? 4 : (a > 75 && z > 0.5) ? 2 : (a > 65 && z > 0) ? 3 : 1;
    }
    st->t = t_out;
    st->last_discharge = t_out;
    if (hosp_truth) {
        add_truth(c, (int)c->w->n_targets + SYNTH_H_ICU, t, p_icu_adm, 1, 1, ever_icu);
        if (in_at_24h) {
            add_truth(c, (int)c->w->n_targets + SYNTH_H_MORTALITY, t + 1, p_death24, 1, 1, died);
            add_truth(c, (int)c->w->n_targets + SYNTH_H_LONG_STAY, t + 1, p_long24, 1, 1, t_out > t + 7);
        }
        uint64_t cand = c->n_cand++; /* counted whether or not computed: the same truth streams in every layout */
        if (!died && !c->w->task_off[c->w->n_targets + SYNTH_H_READMISSION]) {
            /* a discharge after the data's end (a stay that began before it): nothing follows in
             * the record, so no readmission can be labelled */
            double pr = t_out <= c->w->end ? readmission_truth(c, st, t_out, cand) : 0;
            add_truth(c, (int)c->w->n_targets + SYNTH_H_READMISSION, t_out, pr, 1, 1, 0); /* outcome set later */
        }
    }
    if (died) {
        st->alive = 0;
        if (c->p && st->in_record) {
            c->p->death = t_out;
            c->p->died_in_hospital = 1;
        }
        return;
    }
    if (c->p) truth_rows(c, st, t_out);
}

/* Advances the patient to t_stop (or death, leaving, or, in a truth run, the point where the
 * window is over and the follow-up known). */
static void run(sim_ctx *c, sim_state *st, double t_stop) {
    rates R;
    int truth = c->truth_run;
    while (st->alive && !st->left && st->t < t_stop && !c->oom) {
        if (truth && st->t >= fmin(c->win_hi, c->w->end)) break;
        double step = st->t - st->last_discharge < 60 ? 7 : 30;
        double step_end = fmin(st->t + step, t_stop);
        compute_rates(c, st, st->t, &R);
        double dt = synth_exp(&st->r, R.total);
        double t_next = st->t + dt;
        double until = fmin(t_next, step_end);
        if (truth) {
            /* over [t, until] (within the window and the data): the target's diagnosis with rate
             * lambda, competing with death and leaving (mu): P(diagnosed here) adds
             * exp(-cum) * lambda / (lambda + mu) * (1 - exp(-(lambda + mu) * L)) */
            double lo = fmax(st->t, c->win_lo), hi = fmin(until, fmin(c->win_hi, c->w->end));
            if (hi > lo) {
                double lam = R.target, mu = R.death + R.leave, L = hi - lo, a = lam + mu;
                if (a > 0) {
                    double f = exp(-c->cum) * -expm1(-a * L) / a;
                    c->p_dx += f * lam;
                    c->p_death += f * R.death;
                }
                c->cum += a * L;
            }
        }
        if (t_next >= step_end) {
            st->t = step_end;
            continue;
        }
        st->t = t_next;
        double x = synth_unif(&st->r) * R.total;
        if (!truth) {
            if ((x -= R.death) < 0) {
                st->t = round_sec(t_next);
                st->alive = 0;
                if (c->p && st->in_record) c->p->death = st->t;
                break;
            }
            if ((x -= R.leave) < 0) {
                st->left = 1;
                break;
            }
        }
        if ((x -= R.visit) < 0) {
            visit(c, st, t_next, R.m, -1);
            continue;
        }
        int done = 0;
        for (size_t i = 0; i < c->w->mods.n && !done; i++) {
            if ((x -= R.chron[i]) < 0) {
                visit(c, st, t_next, R.m, (int)i);
                done = 1;
            } else if ((x -= R.acute[i]) < 0) {
                acute(c, st, t_next, (int)i, R.m);
                done = 1;
            }
        }
    }
    if (truth) {
        if (!st->alive) { /* died in hospital: drawn, not integrated */
            c->ended = 1;
            if (st->t <= fmin(c->win_hi, c->w->end)) c->p_death += exp(-c->cum);
            return;
        }
        /* alive at the window's end (weight exp(-cum)): the record goes on if some recorded event
         * (a visit, a presentation, an acute event) comes before death or leaving and before the
         * data end, with the rates of that moment */
        double t_end_w = c->win_hi;
        if (t_end_w >= c->w->end) {
            c->p_cont = 0;
            return;
        }
        compute_rates(c, st, st->t, &R);
        double r = R.total + R.target, mu = R.death + R.leave;
        c->p_cont = r + mu > 0 ? r / (r + mu) * -expm1(-(r + mu) * (c->w->end - t_end_w)) : 0;
    }
}

/* ------------------------------------------------------------------ ground truth */

static void add_truth(sim_ctx *c, int task, double t, double p_outcome, double p_followed, double p_kept_end,
                      int outcome) {
    if (*c->n_truth == *c->cap_truth) {
        size_t cap = *c->cap_truth ? *c->cap_truth * 2 : 64;
        synth_truth_row *r = realloc(*c->truth, cap * sizeof *r);
        if (!r) {
            c->oom = 1;
            return;
        }
        *c->truth = r;
        *c->cap_truth = cap;
    }
    synth_truth_row *row = &(*c->truth)[(*c->n_truth)++];
    memset(row, 0, sizeof *row);
    row->task = task;
    row->t = t;
    row->p_outcome = (float)p_outcome;
    row->p_followed = (float)p_followed;
    row->p_kept_end = (float)p_kept_end;
    row->outcome = (uint8_t)outcome;
    row->followed = 1;
}

/* A truth run from a copy of the state at t0: `paths` futures with fresh streams. */
static void truth_paths(sim_ctx *c, const sim_state *st, double t0, double window, int suppress, int admit,
                        uint64_t cand, uint64_t key, double *sum_d, double *sum_f, double *sum_k) {
    const sim_world *w = c->w;
    *sum_d = *sum_f = *sum_k = 0;
    for (int path = 0; path < w->truth_paths; path++) {
        sim_state s2 = *st;
        s2.t = t0;
        synth_rng_seed(&s2.r, w->seed ^ 0x7275746873ULL, c->index, cand, key * 4096 + (uint64_t)path);
        sim_ctx c2 = *c;
        c2.p = NULL;
        c2.truth_run = 1;
        c2.suppress = suppress;
        c2.target_admit = admit;
        c2.win_lo = t0;
        c2.win_hi = t0 + window;
        c2.cum = c2.p_dx = c2.p_cont = c2.p_death = 0;
        c2.ended = 0;
        run(&c2, &s2, w->end + 1);
        double pd = c2.p_dx;
        double alive_undiagnosed = c2.ended ? 0 : exp(-c2.cum);
        *sum_d += pd;
        *sum_f += pd + alive_undiagnosed * c2.p_cont;
        /* followed to death or the data's end: every row whose window ends inside the data is
         * kept; past it, a row is kept when the outcome or a death comes first */
        *sum_k += t0 + window <= w->end ? 1.0 : pd + c2.p_death;
    }
    *sum_d /= w->truth_paths, *sum_f /= w->truth_paths, *sum_k /= w->truth_paths;
}

/* P(a hospital admission within 30 days of a discharge at t_dis). */
static double readmission_truth(sim_ctx *c, const sim_state *st, double t_dis, uint64_t cand) {
    double d, f, k;
    truth_paths(c, st, t_dis, 30, -1, 1, cand, 1000, &d, &f, &k);
    return d;
}

static void truth_rows(sim_ctx *c, sim_state *st, double t_end) {
    const sim_world *w = c->w;
    if (!w->truth_paths || !st->alive || st->left || age_at(st, t_end) < 18 || t_end > w->end) return;
    uint64_t cand = c->n_cand++;
    for (size_t k = 0; k < w->n_targets; k++) {
        int X = w->targets[k];
        if (((st->dx >> X) & 1) || w->task_off[k]) continue;
        double sd, sf, sk;
        truth_paths(c, st, t_end, w->window, X, 0, cand, k, &sd, &sf, &sk);
        add_truth(c, (int)k, t_end, sd, sf, sk, 0);
    }
}

/* ------------------------------------------------------------------ people */

static const char *const given_f[] = {
    "Mary", "Patricia", "Jennifer", "Linda", "Elizabeth", "Barbara", "Susan", "Jessica", "Sarah", "Karen",
    "Lisa", "Nancy", "Betty", "Sandra", "Margaret", "Ashley", "Kimberly", "Emily", "Donna", "Michelle",
    "Carol", "Amanda", "Melissa", "Deborah", "Stephanie", "Dorothy", "Rebecca", "Sharon", "Laura", "Cynthia",
    "Amy", "Kathleen", "Angela", "Shirley", "Brenda", "Emma", "Anna", "Pamela", "Nicole", "Samantha",
    "Katherine", "Christine", "Helen", "Debra", "Rachel", "Carolyn", "Janet", "Maria", "Catherine", "Heather",
    "Diane", "Olivia", "Julie", "Joyce", "Victoria", "Ruth", "Virginia", "Lauren", "Kelly", "Christina",
    "Joan", "Evelyn", "Judith", "Andrea", "Hannah", "Megan", "Cheryl", "Jacqueline", "Martha", "Madison",
    "Teresa", "Gloria", "Sara", "Janice", "Ann", "Kathryn", "Abigail", "Sophia", "Frances", "Jean",
    "Alice", "Judy", "Isabella", "Julia", "Grace", "Amber", "Denise", "Danielle", "Marilyn", "Beverly",
    "Charlotte", "Natalie", "Theresa", "Diana", "Brittany", "Doris", "Kayla", "Alexis", "Lori", "Marie",
    "Rosa", "Ana", "Lucia", "Guadalupe", "Mei", "Yan", "Aisha", "Fatima", "Priya", "Keisha"};
static const char *const given_m[] = {
    "James", "Robert", "John", "Michael", "David", "William", "Richard", "Joseph", "Thomas", "Christopher",
    "Charles", "Daniel", "Matthew", "Anthony", "Mark", "Donald", "Steven", "Andrew", "Paul", "Joshua",
    "Kenneth", "Kevin", "Brian", "George", "Timothy", "Ronald", "Jason", "Edward", "Jeffrey", "Ryan",
    "Jacob", "Gary", "Nicholas", "Eric", "Jonathan", "Stephen", "Larry", "Justin", "Scott", "Brandon",
    "Benjamin", "Samuel", "Gregory", "Alexander", "Patrick", "Frank", "Raymond", "Jack", "Dennis", "Jerry",
    "Tyler", "Aaron", "Jose", "Adam", "Nathan", "Henry", "Zachary", "Douglas", "Peter", "Kyle",
    "Noah", "Ethan", "Jeremy", "Walter", "Christian", "Keith", "Roger", "Terry", "Austin", "Sean",
    "Gerald", "Carl", "Harold", "Dylan", "Arthur", "Lawrence", "Jordan", "Jesse", "Bryan", "Billy",
    "Bruce", "Gabriel", "Joe", "Logan", "Alan", "Juan", "Albert", "Willie", "Elijah", "Wayne",
    "Randy", "Vincent", "Mason", "Roy", "Ralph", "Bobby", "Russell", "Bradley", "Philip", "Eugene",
    "Carlos", "Luis", "Miguel", "Wei", "Hiroshi", "Omar", "Ahmed", "Raj", "Darnell", "Tyrone"};
static const char *const family[] = {
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez",
    "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Jackson", "Martin",
    "Lee", "Perez", "Thompson", "White", "Harris", "Sanchez", "Clark", "Ramirez", "Lewis", "Robinson",
    "Walker", "Young", "Allen", "King", "Wright", "Scott", "Torres", "Nguyen", "Hill", "Flores",
    "Green", "Adams", "Nelson", "Baker", "Hall", "Rivera", "Campbell", "Mitchell", "Carter", "Roberts",
    "Gomez", "Phillips", "Evans", "Turner", "Diaz", "Parker", "Cruz", "Edwards", "Collins", "Reyes",
    "Stewart", "Morris", "Morales", "Murphy", "Cook", "Rogers", "Gutierrez", "Ortiz", "Morgan", "Cooper",
    "Peterson", "Bailey", "Reed", "Kelly", "Howard", "Ramos", "Kim", "Cox", "Ward", "Richardson",
    "Watson", "Brooks", "Chavez", "Wood", "James", "Bennett", "Gray", "Mendoza", "Ruiz", "Hughes",
    "Price", "Alvarez", "Castillo", "Sanders", "Patel", "Myers", "Long", "Ross", "Foster", "Jimenez",
    "Chen", "Wang", "Li", "Zhang", "Singh", "Kowalski", "Novak", "Olsen", "Schmidt", "Murray"};
static const char *const streets[] = {
    "Maple", "Oak", "Pine", "Cedar", "Elm", "Washington", "Lake", "Hill", "Park", "Main", "Walnut",
    "Chestnut", "Spruce", "Willow", "Sunset", "Highland", "River", "Church", "Mill", "Meadow", "Forest",
    "Jefferson", "Lincoln", "Franklin", "Madison", "Adams", "Jackson", "Cherry", "Birch", "Spring"};
static const char *const street_kinds[] = {"St", "Ave", "Rd", "Ln", "Dr", "Ct", "Way", "Blvd"};
static const struct { const char *city, *state, *zip2; } places[] = {
    {"Springfield", "IL", "62"}, {"Franklin", "TN", "37"}, {"Greenville", "SC", "29"},
    {"Bristol", "CT", "06"},     {"Clinton", "IA", "52"},  {"Fairview", "OR", "97"},
    {"Salem", "MA", "01"},       {"Madison", "WI", "53"},  {"Georgetown", "TX", "78"},
    {"Riverside", "CA", "92"},   {"Arlington", "VA", "22"}, {"Dayton", "OH", "45"},
    {"Columbia", "MO", "65"},    {"Lancaster", "PA", "17"}, {"Marion", "IN", "46"},
    {"Auburn", "AL", "36"},      {"Burlington", "VT", "05"}, {"Jackson", "MS", "39"},
    {"Aurora", "CO", "80"},      {"Rochester", "MN", "55"}, {"Athens", "GA", "30"},
    {"Lexington", "KY", "40"},   {"Tucson", "AZ", "85"},   {"Orlando", "FL", "32"},
    {"Raleigh", "NC", "27"},     {"Albany", "NY", "12"},   {"Tacoma", "WA", "98"}};
#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static void make_person(const sim_world *w, uint64_t index, synth_patient *p, sim_state *st) {
    synth_rng *r = &st->r;
    snprintf(p->id, sizeof p->id, "%08llx-%04llx-4%03llx-a%03llx-%012llx", (unsigned long long)(synth_next(r) >> 32),
             (unsigned long long)(synth_next(r) >> 48), (unsigned long long)(synth_next(r) >> 52),
             (unsigned long long)(synth_next(r) >> 52), (unsigned long long)(synth_next(r) >> 16));
    p->index = index;
    p->sex = synth_bern(r, 0.492) ? SYN_SEX_M : SYN_SEX_F;
    /* age on the window's start, US Census 2020 bands (share %) */
    static const double age_lo[] = {0, 5, 18, 25, 35, 45, 55, 65, 75, 85};
    static const double age_hi[] = {5, 18, 25, 35, 45, 55, 65, 75, 85, 98};
    static const double age_cum[] = {6, 22, 31, 45, 58, 70, 83, 93, 98, 100};
    int b = synth_pick(r, age_cum, 10);
    double age = age_lo[b] + (age_hi[b] - age_lo[b]) * synth_unif(r);
    /* race (OMB, Census 2020): White, Black, Asian, AIAN, NHPI, other / two or more */
    static const double race_cum[] = {61.6, 74.0, 80.0, 81.1, 81.3, 100};
    p->race = synth_pick(r, race_cum, 6);
    p->ethnicity = synth_bern(r, p->race == 5 ? 0.6 : 0.08) ? 1 : 0; /* Hispanic or Latino ~19% */
    /* joins the record: most at the window's start, some later (moved in), and some are born
     * during the window, at the US birth rate (11.4 per 1,000 people a year, CDC NVSS 2019): of
     * everyone the record ever holds, B / (1 + B) with B = 0.0114 * window years are its newborns */
    double join = w->start, years = (w->end - w->start) / YEAR, births = 0.0114 * years;
    p->birth = floor(w->start - age * YEAR + 0.5);
    if (synth_bern(r, births / (1 + births))) {
        p->birth = floor(w->start + (w->end - w->start) * synth_unif(r)); /* a birth date; the record starts that day */
        join = p->birth;
        age = -1;
    } else if (synth_bern(r, 0.25)) {
        join = w->start + (w->end - w->start) * 0.9 * synth_unif(r);
    }
    p->death = -1;
    p->record_start = join;
    st->birth = p->birth;
    st->male = p->sex == SYN_SEX_M;
    st->black = p->race == 1;
    st->asian = p->race == 2;
    st->hisp = p->ethnicity;
    st->height = (st->male ? 176 : 162) + 7 * synth_normal(r);
    st->bmi40 = exp(log(27.5) + 0.2 * synth_normal(r));
    st->bmi_slope = 0.07 + 0.05 * synth_normal(r);
    /* smoking (adults, CDC 2020): current 12.5%, former 23% */
    double sm = synth_unif(r);
    st->smoke = sm < 0.125 ? SYN_SMOKE_CURRENT : sm < 0.355 ? SYN_SMOKE_FORMER : SYN_SMOKE_NEVER;
    p->smoking = st->smoke;
    double mar = synth_unif(r);
    p->marital = age < 18 ? 1 : mar < 0.5 ? 0 : mar < 0.8 ? 1 : mar < 0.92 ? 2 : 3; /* M S D W */
    p->insurance = age >= 65 ? 0 : synth_bern(r, 0.2) ? 1 : synth_bern(r, 0.9) ? 2 : 3;
    for (size_t i = 0; i < w->mods.n; i++) {
        st->u[i] = w->mods.m[i].between_sd * synth_normal(r);
        st->s[i] = w->mods.m[i].slope_sd * synth_normal(r);
    }
    /* identifiers: fictional (555-01xx numbers are reserved for fiction; 9xx SSNs are never issued) */
    const char *g = st->male ? given_m[synth_next(r) % COUNT(given_m)] : given_f[synth_next(r) % COUNT(given_f)];
    snprintf(p->given, sizeof p->given, "%s", g);
    snprintf(p->family, sizeof p->family, "%s", family[synth_next(r) % COUNT(family)]);
    snprintf(p->street, sizeof p->street, "%u %s %s", (unsigned)(10 + synth_next(r) % 9980),
             streets[synth_next(r) % COUNT(streets)], street_kinds[synth_next(r) % COUNT(street_kinds)]);
    size_t pl = synth_next(r) % COUNT(places);
    snprintf(p->city, sizeof p->city, "%s", places[pl].city);
    snprintf(p->state, sizeof p->state, "%s", places[pl].state);
    snprintf(p->zip, sizeof p->zip, "%s%03u", places[pl].zip2, (unsigned)(synth_next(r) % 1000));
    snprintf(p->phone, sizeof p->phone, "%03u-555-01%02u", (unsigned)(201 + synth_next(r) % 700),
             (unsigned)(synth_next(r) % 100));
    snprintf(p->ssn, sizeof p->ssn, "9%02u-%02u-%04u", (unsigned)(synth_next(r) % 100),
             (unsigned)(70 + synth_next(r) % 20), (unsigned)(synth_next(r) % 10000));
    snprintf(p->mrn, sizeof p->mrn, "M%09llu", (unsigned long long)(synth_next(r) % 1000000000ULL));
}

int sim_patient(const sim_world *w, uint64_t index, synth_patient *p, synth_truth_row **truth, size_t *n_truth,
                size_t *cap_truth, cf_err *err) {
    p->n_recs = 0;
    p->died_in_hospital = 0;
    size_t truth0 = n_truth ? *n_truth : 0;
    sim_state st;
    memset(&st, 0, sizeof st);
    synth_rng_seed(&st.r, w->seed, index, 0, 0);
    make_person(w, index, p, &st);
    sim_ctx c;
    memset(&c, 0, sizeof c);
    c.w = w;
    c.p = p;
    c.index = index;
    c.suppress = -1;
    c.truth = truth;
    c.n_truth = n_truth;
    c.cap_truth = cap_truth;
    size_t dummy_n = 0, dummy_cap = 0;
    synth_truth_row *dummy = NULL;
    if (!truth) c.truth = &dummy, c.n_truth = &dummy_n, c.cap_truth = &dummy_cap;
    c.mk_sbp = c.mk_hba1c = c.mk_egfr = c.mk_fev = c.mk_hf = -1;
    for (size_t i = 0; i < w->mods.n; i++) {
        const char *mn = w->mods.m[i].marker_name;
        if (!strcmp(mn, "sbp")) c.mk_sbp = (int)i;
        if (!strcmp(mn, "hba1c")) c.mk_hba1c = (int)i;
        if (!strcmp(mn, "egfr")) c.mk_egfr = (int)i;
        if (!strcmp(mn, "fev1fvc")) c.mk_fev = (int)i;
        if (!strcmp(w->mods.m[i].name, "heart_failure")) c.mk_hf = (int)i;
    }
    st.alive = 1;
    st.last_discharge = -1e9;
    st.last_checkup = -1e9;
    /* silent history: up to 25 years before the record, from age 18 */
    double h0 = fmax(p->birth + 18 * YEAR, p->record_start - 25 * YEAR);
    st.rec_start = p->record_start;
    if (h0 < p->record_start) {
        st.t = h0;
        run(&c, &st, p->record_start);
    }
    st.t = p->record_start;
    st.in_record = 1;
    st.alive = 1;
    st.left = 0;
    st.last_checkup = -1e9;
    run(&c, &st, w->end);
    if (c.oom) return cf_fail(err, CF_EINTERNAL, "out of memory simulating patient %llu", (unsigned long long)index);
    p->followed_until = st.alive && !st.left ? w->end : fmin(st.t, w->end);
    /* the record's end: its last recorded event */
    double last = p->record_start;
    for (size_t i = 0; i < p->n_recs; i++) {
        last = fmax(last, p->recs[i].t);
        if (p->recs[i].kind == SYN_R_ENCOUNTER) last = fmax(last, p->recs[i].t_end);
    }
    if (p->death >= 0) last = fmax(last, p->death);
    p->record_end = last;
    /* what happened to each truth row, in this record (the hospital rows' outcomes were set
     * when their stay ended, except readmission's) */
    for (size_t i = truth0; i < *c.n_truth; i++) {
        synth_truth_row *row = &(*c.truth)[i];
        if (row->task == (int)w->n_targets + SYNTH_H_READMISSION) {
            row->outcome = 0;
            for (size_t j = 0; j < p->n_recs; j++) {
                const synth_rec *r = &p->recs[j];
                if (r->kind == SYN_R_ENCOUNTER && r->cls == SYN_ENC_IMP && r->t > row->t && r->t <= row->t + 30) {
                    row->outcome = 1;
                    break;
                }
            }
            continue;
        }
        if (row->task >= (int)w->n_targets) continue;
        int X = w->targets[row->task];
        double hi = row->t + w->window;
        double first = -1;
        for (size_t j = 0; j < p->n_recs; j++) {
            const synth_rec *r = &p->recs[j];
            if (r->kind == SYN_R_CONDITION && r->module == X && r->t > row->t) {
                first = r->t;
                break;
            }
        }
        row->outcome = first > row->t && first <= hi;
        row->followed = row->outcome || last > hi;
    }
    free(dummy);
    return CF_OK;
}

void synth_patient_free(synth_patient *p) {
    free(p->recs);
    p->recs = NULL;
    p->n_recs = p->cap_recs = 0;
}

int sim_world_init(sim_world *w, const char *modules_dir, double start, double end, uint64_t seed, int truth_paths,
                   cf_err *err) {
    memset(w, 0, sizeof *w);
    int rc = synth_modules_load(&w->mods, modules_dir, err);
    if (rc) return rc;
    w->start = start;
    w->end = end;
    w->seed = seed;
    w->truth_paths = truth_paths;
    w->window = 365;
    for (size_t i = 0; i < w->mods.n && w->n_targets < SYNTH_MAX_TARGETS; i++)
        if (w->mods.m[i].task[0]) {
            w->task_names[w->n_targets] = w->mods.m[i].task;
            w->targets[w->n_targets++] = (int)i;
        }
    w->n_tasks = w->n_targets;
    for (int h = 0; h < SYNTH_N_HOSPITAL; h++) w->task_names[w->n_tasks++] = synth_hospital_tasks[h];
    return CF_OK;
}
