/* Disease modules: the data files that say how a disease arises, is found, treated and ends.
 *
 * A module is a text file (data/synth/modules/NAME.module; format in docs/SYNTH.md) in the layout
 * of the task and mapping files: `# comments`, `[section]` headers, `key = value` lines. It holds
 * no C, so a hospital (or a test) changes a disease by editing a file, and every number in it
 * carries its source in a comment. Two kinds:
 *
 *   chronic  a latent marker (systolic pressure, HbA1c, eGFR, log10 NT-proBNP, FEV1/FVC...) that
 *            drifts with age and risk factors around a patient's own level and slope; it is
 *            measured at visits with noise; the disease is diagnosed when a measurement crosses
 *            the guideline threshold, or at a symptomatic presentation whose hazard grows with
 *            the marker's distance past it; or, for a module without a marker, by a hazard;
 *            treatment starts at diagnosis and shifts the marker.
 *   acute    an event with a hazard (log-linear in the covariates) that brings the patient to the
 *            emergency department and perhaps a hospital stay with daily hazards of intensive
 *            care, death and discharge, driven by a latent severity.
 *
 * Covariates an effect can name: age (years past 40), male, black, hispanic, asian, bmi,
 * smoker, former_smoker, marker:NAME, dx:NAME (1 once diagnosed), history:NAME (1 after an
 * acute event of that module), treated:NAME. `above R` / `below R` take the positive part of
 * (x - R) / (R - x). Loading checks every file completely and names file:line on any error. */
#ifndef CLINFM_SYNTH_MODULE_H
#define CLINFM_SYNTH_MODULE_H

#include <stddef.h>

#include "util/err.h"

#define SYNTH_MAX_MODULES 24
#define SYNTH_MAX_EFFECTS 16
#define SYNTH_MAX_STAGES 6
#define SYNTH_MAX_DRUGS 4
#define SYNTH_MAX_LABS 4

typedef struct {
    char code[24];
    char display[112];
} synth_code;

enum {
    SYN_COV_AGE = 0, SYN_COV_MALE, SYN_COV_BLACK, SYN_COV_HISPANIC, SYN_COV_ASIAN, SYN_COV_BMI,
    SYN_COV_SMOKER, SYN_COV_FORMER, SYN_COV_MARKER, SYN_COV_DX, SYN_COV_HISTORY, SYN_COV_TREATED
};
enum { SYN_REF_NONE = 0, SYN_REF_ABOVE, SYN_REF_BELOW };

typedef struct {
    int cov;        /* SYN_COV_* */
    int module;     /* the module named by marker:/dx:/history:/treated: (index), else -1 */
    double coef;
    int ref_kind;   /* SYN_REF_* */
    double ref;
    int line;
    char ref_name[32]; /* the module name as written, resolved after loading */
} synth_effect;

enum { SYN_CHRONIC = 0, SYN_ACUTE = 1 };

typedef struct {
    double threshold;   /* marker value entering the stage (direction as the diagnosis) */
    synth_code snomed, icd10;
} synth_stage;

typedef struct {
    synth_code loinc;
    char unit[24];
    double mean, per_severity, sd; /* value = mean + per_severity * severity + sd * noise */
    double lo, hi;
    int decimals;
} synth_lab;

typedef struct {
    char path[512];
    char name[32], title[112];
    char task[48];               /* the new-onset task whose outcome is this module's first diagnosis */
    int kind;
    double min_age;
    synth_code snomed, icd10;
    /* chronic: marker */
    int has_marker, measured;    /* measured: has a LOINC code (else latent only) */
    char marker_name[32];
    synth_code loinc;
    char unit[24];
    int decimals, log10_scale;   /* log10_scale: the latent is log10 of the reported value */
    double mean, between_sd, slope_sd, noise_sd, lo, hi;
    synth_effect effects[SYNTH_MAX_EFFECTS]; /* on the marker level */
    size_t n_effects;
    /* chronic: diagnosis */
    int direction;               /* +1: diagnosed above the threshold; -1: below */
    double threshold, screen, monitor, symptom_rate, symptom_slope;
    double rate;                 /* hazard modules (no marker) and acute: per year at reference */
    char requires_name[32];      /* acute: only in patients diagnosed with this chronic module */
    int requires;                /* its index, or -1 */
    synth_effect hazard[SYNTH_MAX_EFFECTS]; /* log-hazard effects */
    size_t n_hazard;
    synth_stage stages[SYNTH_MAX_STAGES];
    size_t n_stages;
    /* treatment */
    synth_code drugs[SYNTH_MAX_DRUGS];
    size_t n_drugs;
    double treat_effect;
    double death_log_hr;         /* on the death hazard once diagnosed (or after the event) */
    double visit_factor;         /* visits per year multiplied by this once diagnosed */
    /* acute: the stay */
    double admit, los_days, icu_per_day, death_per_day, severity_sd, procedure_prob;
    double readmission_boost;    /* the hazard is x(1 + boost * exp(-days since a discharge / 12)); default 3 */
    synth_code procedure;
    synth_code procedure_pcs;    /* its ICD-10-PCS code (MIMIC-IV procedures_icd), optional */
    synth_lab labs[SYNTH_MAX_LABS];
    size_t n_labs;
} synth_module;

typedef struct {
    synth_module m[SYNTH_MAX_MODULES];
    size_t n;
    int order[SYNTH_MAX_MODULES]; /* markers in dependency order */
} synth_modules;

/* Parses one module file's text (path used in messages only) into m (not yet cross-resolved). */
int synth_module_parse(synth_module *m, const char *path, const char *text, size_t len, cf_err *err);
/* Loads every *.module file of dir (sorted by name), resolves marker:/dx:/history:/treated:
 * references, and orders markers so each is computed after those it depends on (a cycle is an
 * error naming the modules). */
int synth_modules_load(synth_modules *ms, const char *dir, cf_err *err);
/* The same resolution for modules already parsed (tests). */
int synth_modules_resolve(synth_modules *ms, cf_err *err);
/* Index of the module with this name, or -1. */
int synth_module_find(const synth_modules *ms, const char *name);

#endif
