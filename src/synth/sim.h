/* One synthetic patient's life and record, and the ground truth the generator can state.
 *
 * Time runs in days since 1970-01-01 (double). A patient is simulated as competing hazards,
 * recomputed after every event and at least every 30 days (7 days in the two months after a
 * hospital discharge): death, leaving the health system, routine visits (Poisson, more with age
 * and diagnoses), symptomatic presentations and hazard onsets of the chronic modules, and the
 * acute modules (emergency visit, perhaps a stay with daily hazards of intensive care, death and
 * discharge). At a routine visit each chronic marker is measured with its module's probability;
 * a measurement past the threshold diagnoses the disease and starts treatment.
 *
 * Before the patient's record starts (the data window's start, or the day the patient joins),
 * up to 25 years are simulated silently so that prevalent disease exists; it is recorded at the
 * first visit, with its onset date. Nobody dies before the record starts (the population is the
 * living population at the start), a simplification.
 *
 * Ground truth (sim_truth): for a new-onset task, at the end of each encounter of an adult who
 * is undiagnosed, the probability that the diagnosis is recorded in the next 365 days, and the
 * probability that the label row is kept by the task's censoring rule (outcome seen, or some
 * recorded event after the window). The future is simulated from the patient's exact state
 * (latent marker levels and slopes included) with the target's diagnosis switched off, and the
 * target's recorded-diagnosis hazard integrated along each simulated path (a Rao-Blackwellised
 * estimate: exact when nothing else random happens within the year, low-variance otherwise).
 * The state holds more than the record shows, so this is the Bayes-optimal predictor given the
 * state: no predictor that sees only the record can do better in expectation. */
#ifndef CLINFM_SYNTH_SIM_H
#define CLINFM_SYNTH_SIM_H

#include <stddef.h>
#include <stdint.h>

#include "synth/module.h"
#include "synth/rng.h"
#include "util/err.h"

/* Encounter classes (FHIR v3 ActCode). */
enum { SYN_ENC_AMB = 0, SYN_ENC_EMER, SYN_ENC_IMP };
/* Record kinds. */
enum { SYN_R_ENCOUNTER = 0, SYN_R_CONDITION, SYN_R_OBS, SYN_R_BP, SYN_R_SMOKING, SYN_R_MED, SYN_R_PROC };
/* Code systems of a record's code. */
enum { SYN_SYS_SNOMED = 0, SYN_SYS_LOINC, SYN_SYS_RXNORM };

typedef struct {
    uint8_t kind, cls, sys, dec;  /* cls: encounter class; dec: decimals of the value */
    int16_t module;               /* module behind it, or -1 */
    int32_t enc;                  /* index of the encounter record it belongs to, or -1 */
    double t, t_end;              /* days; t_end for encounters (and a condition's onset: t_end <= t) */
    const synth_code *code;       /* SNOMED / LOINC / RxNorm */
    const synth_code *code2;      /* ICD-10-CM for conditions; encounter type for encounters */
    const char *unit;
    double v, v2;                 /* value; diastolic for SYN_R_BP; discharge code for encounters */
} synth_rec;

enum { SYN_SEX_F = 0, SYN_SEX_M = 1 };
enum { SYN_SMOKE_NEVER = 0, SYN_SMOKE_FORMER, SYN_SMOKE_CURRENT };

/* What a patient is, for the FHIR writer and the note generator: demographics, identifiers,
 * the record. The strings are fictional, made from the patient's own stream. */
typedef struct {
    uint64_t index;
    char id[40];                  /* FHIR Patient.id */
    int sex, race, ethnicity, smoking, marital, insurance;
    double birth, death;          /* days; death < 0 when alive at the end of the record */
    int died_in_hospital;
    double record_start, record_end;
    double followed_until;        /* death, leaving the health system, or the window's end */
    char given[24], family[32], street[64], city[32], state[3], zip[6], phone[16], ssn[12], mrn[12];
    synth_rec *recs;
    size_t n_recs, cap_recs;
} synth_patient;

/* A ground-truth row. */
typedef struct {
    int task;                     /* index into sim_world.targets */
    double t;                     /* prediction time (an encounter's end), days */
    float p_outcome, p_followed;  /* P(diagnosis in window), P(outcome or record past the window) */
    float p_kept_end;             /* P(outcome, death, or a window inside the data): follow-up to death or data end */
    uint8_t outcome, followed;    /* what happened in this record */
} synth_truth_row;

#define SYNTH_MAX_TARGETS 8
/* The hospital tasks with ground truth (FHIR codes: the tasks named *_fhir), after the new-onset ones. */
enum { SYNTH_H_MORTALITY = 0, SYNTH_H_LONG_STAY, SYNTH_H_ICU, SYNTH_H_READMISSION, SYNTH_N_HOSPITAL };
extern const char *const synth_hospital_tasks[SYNTH_N_HOSPITAL];
#define SYNTH_MAX_TASKS (SYNTH_MAX_TARGETS + SYNTH_N_HOSPITAL)

typedef struct {
    synth_modules mods;
    double start, end;            /* the data window, days */
    uint64_t seed;
    int truth_paths;              /* simulated futures per truth row (0: no truth) */
    int targets[SYNTH_MAX_TARGETS];/* modules with a new-onset task: truth tasks 0..n_targets-1 */
    size_t n_targets;
    size_t n_tasks;               /* n_targets + SYNTH_N_HOSPITAL */
    const char *task_names[SYNTH_MAX_TASKS];
    double window;                /* new-onset window, days (365) */
    uint8_t task_off[SYNTH_MAX_TASKS]; /* tasks whose truth no output reads: not computed (the
                                    * expensive ones: new-onset and readmission paths) */
} sim_world;

/* Shared tables the writers use. */
extern const synth_code synth_vital_codes[];
enum { SYN_V_SBP = 0, SYN_V_DBP, SYN_V_HR, SYN_V_RR, SYN_V_TEMP, SYN_V_WEIGHT, SYN_V_HEIGHT, SYN_V_BMI,
       SYN_V_SPO2, SYN_V_GLUCOSE, SYN_V_CREAT, SYN_V_BUN, SYN_V_NA, SYN_V_K, SYN_V_HGB, SYN_V_WBC,
       SYN_V_SMOKING, SYN_V_BP_PANEL, SYN_V_COUNT };
extern const char *const synth_vital_units[];
extern const synth_code synth_smoking_answers[3];
extern const synth_code synth_encounter_types[];
enum { SYN_ET_CHECKUP = 0, SYN_ET_PROBLEM, SYN_ET_ED, SYN_ET_ADMIT, SYN_ET_COUNT };
extern const synth_code synth_icu_procedure;
extern const synth_code synth_history_mi, synth_history_mi_icd;

int sim_world_init(sim_world *w, const char *modules_dir, double start, double end, uint64_t seed,
                   int truth_paths, cf_err *err);
/* Simulates patient `index`; truth rows go to *truth (grown with realloc; may be NULL when
 * w->truth_paths is 0). Returns CF_OK or CF_EINTERNAL (out of memory). */
int sim_patient(const sim_world *w, uint64_t index, synth_patient *p, synth_truth_row **truth,
                size_t *n_truth, size_t *cap_truth, cf_err *err);
void synth_patient_free(synth_patient *p);

#endif
