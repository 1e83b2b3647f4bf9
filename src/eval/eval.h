/* Evaluation of predictors on a task: the predictor interface, the count-feature baselines
 * (MEDS-Tab style, with L2 logistic regression (ml/logreg.h) and with XGBoost) and the evaluation run that
 * writes metrics.json, report.html and MODEL_CARD.md.
 *
 * A predictor is "a function giving a probability per label row". The rows carry
 * history_end: a predictor must read only the events [s->subject_start[row.subject_index],
 * row.history_end) of the row's subject (everything at or before the prediction time) and
 * should skip codes the task marks as never-input (task_input_allowed). fit, when present, is
 * called once with the train and tuning rows before any predict; held_out rows are never shown
 * to fit. */
#ifndef CLINFM_EVAL_EVAL_H
#define CLINFM_EVAL_EVAL_H

#include <stddef.h>
#include <stdint.h>

#include "eval/metrics.h"
#include "ml/csr.h"
#include "ml/logreg.h"
#include "store/store.h"
#include "tasks/task.h"
#include "util/err.h"

/* What a predictor is in a report. A candidate may be proposed for use; a floor (the record-
 * position probe) or a ceiling (a predictor that knows what generated the data, such as a
 * simulator's own risk) is a reference row: shown beside the others with its role, never
 * proposed, never the model an alarm is measured against. */
enum { EVAL_ROLE_CANDIDATE = 0, EVAL_ROLE_FLOOR, EVAL_ROLE_CEILING };

typedef struct eval_predictor {
    const char *name;        /* short id: "logreg", "xgboost", "zero_shot", ... */
    const char *description; /* one line for the report and model card (may be NULL) */
    int role;                /* EVAL_ROLE_*; 0 (candidate) for ordinary predictors */
    /* optional: train on train rows, choose settings on tuning rows */
    int (*fit)(void *ctx, const store *s, const label_row *train, size_t n_train, const label_row *tuning,
               size_t n_tuning, cf_err *err);
    /* required: probs[i] = P(label of rows[i]) in [0, 1] */
    int (*predict)(void *ctx, const store *s, const label_row *rows, size_t n, float *probs, cf_err *err);
    /* optional: the settings chosen, as a JSON object text (malloc'd; caller frees) */
    char *(*describe)(void *ctx);
    /* optional: predict the rows of another store s (labelled by l) from now on; called with
     * the fit store to return to it. A predictor without it cannot cross stores. */
    int (*bind)(void *ctx, const store *s, const task_labels *l, cf_err *err);
    void *ctx;
} eval_predictor;

/* ---------------------------------------------------------------- count features */

#define EVAL_N_WINDOWS 5 /* 1 day, 7 days, 30 days, 365 days, all history */
extern const int64_t eval_window_us[EVAL_N_WINDOWS];     /* INT64_MAX: all history */
extern const char *const eval_window_name[EVAL_N_WINDOWS]; /* "1d" .. "all" */

/* The codes a feature family keeps: rows[c] train histories hold code c; those in at least
 * min_rows, the most frequent first (ties by code), at most max_codes. fr has room for n_codes;
 * returns how many it kept (fr[0 .. k)). */
typedef struct {
    uint32_t code;
    uint64_t rows;
} eval_code_freq;
size_t eval_rank_codes(eval_code_freq *fr, const uint64_t *rows, uint32_t n_codes, size_t min_rows, size_t max_codes);
/* Column kinds: a count and a last value are the logistic regression's (ml/logreg.h); age is a value. */
enum { EVAL_COL_COUNT = ML_COL_COUNT, EVAL_COL_VALUE = ML_COL_VALUE, EVAL_COL_AGE };

typedef struct {
    size_t min_rows;  /* a code is kept when it occurs in at least this many train histories (3) */
    size_t max_codes; /* most frequent codes kept (3000) */
    int64_t lookback; /* µs; 0: all history. Otherwise only timed events in the last lookback
                         count (windows up to it, last values within it) and the "all" columns
                         hold static facts only: counts that grow with the length of a record
                         cannot measure where in the record a prediction sits */
} eval_feature_options;

typedef struct {
    const store *s;
    const uint8_t *input_ok;  /* per code; from the task labels */
    int64_t birth_code;       /* -1 when the store has none */
    uint32_t *count_col;      /* per store code: first of EVAL_N_WINDOWS count columns, or UINT32_MAX */
    uint32_t *value_col;      /* per store code: last-value column, or UINT32_MAX */
    uint32_t *col_code;       /* per column: store code (UINT32_MAX for age) */
    uint8_t *col_kind;        /* per column: EVAL_COL_* */
    uint8_t *col_window;      /* per count column: window index */
    size_t n_cols, n_codes_kept, n_value_cols;
    int64_t lookback;         /* eval_feature_options.lookback */
    /* Rows of another store (eval_features_bind): s, input_ok, birth_code, count_col and
     * value_col then describe that store; the fitted ones are kept here. */
    const store *fit_s;
    const uint8_t *fit_input_ok;
    int64_t fit_birth_code;
    uint32_t *fit_count_col, *fit_value_col;
} eval_featurizer;

/* Chooses the feature columns from the train rows' histories. */
int eval_features_fit(eval_featurizer *f, const store *s, const task_labels *l, const label_row *train,
                      size_t n, const eval_feature_options *opt, cf_err *err);
/* Count, last-value and age features of rows, using only each row's history. */
int eval_features_build(const eval_featurizer *f, const label_row *rows, size_t n, ml_csr *out, cf_err *err);
void eval_featurizer_free(eval_featurizer *f);
/* Makes f build the rows of store s (task labels l of s): the fitted columns, found in s by
 * code string. s may be the store f was fitted on (which restores it). */
int eval_features_bind(eval_featurizer *f, const store *s, const task_labels *l, cf_err *err);
/* "LAB//50912//mg/dL count 7d", "LAB//50912//mg/dL last value", "age", with the code's
 * description from the store's dictionary when it has one: "RXNORM//235389 (Mirena 52 MG
 * Intrauterine System) count all"; returns buf. */
char *eval_feature_name(const eval_featurizer *f, size_t col, char *buf, size_t cap);

/* ---------------------------------------------------------------- value aggregates
 *
 * A second feature family, the numeric half of MEDS-Tab: for each kept code with numeric
 * values, per window (the count family's 1d, 7d, 30d, 365d, all) the minimum, maximum and mean
 * of its values, and over all history its first and last value. Beside the counts this is what
 * a hospital would build for vital signs and laboratory series (eval_features_values.c). */

enum { EVAL_AGG_MIN = 0, EVAL_AGG_MAX, EVAL_AGG_MEAN, EVAL_AGG_FIRST, EVAL_AGG_LAST };
#define EVAL_VALUE_COLS_PER_CODE (3 * EVAL_N_WINDOWS + 2)

typedef struct {
    const store *s;
    const uint8_t *input_ok;  /* per code; from the task labels */
    uint32_t *first_col;      /* per store code: its first column, or UINT32_MAX */
    uint32_t *col_code;       /* per column: store code (of the store fitted on) */
    size_t n_cols, n_codes_kept;
    const store *fit_s;       /* the store fitted on (eval_value_features_bind) */
    const uint8_t *fit_input_ok;
    uint32_t *fit_first_col;
} eval_value_featurizer;

/* Chooses the codes (numeric values in at least min_rows train histories, the max_codes
 * most frequent) from the train rows. */
int eval_value_features_fit(eval_value_featurizer *f, const store *s, const task_labels *l, const label_row *train,
                            size_t n, const eval_feature_options *opt, cf_err *err);
/* The value aggregates of rows, from each row's own history only. */
int eval_value_features_build(const eval_value_featurizer *f, const label_row *rows, size_t n, ml_csr *out,
                              cf_err *err);
void eval_value_featurizer_free(eval_value_featurizer *f);
/* As eval_features_bind, for the value aggregates. */
int eval_value_features_bind(eval_value_featurizer *f, const store *s, const task_labels *l, cf_err *err);
/* "LAB//50912//mg/dL max 1d", "... first value"; returns buf. */
char *eval_value_feature_name(const eval_value_featurizer *f, size_t col, char *buf, size_t cap);

/* ---------------------------------------------------------------- leakage alarms (eval_leak.c) */

enum { EVAL_LEAK_OVER_THRESHOLD = 1, EVAL_LEAK_BEATS_MODEL = 2 };

typedef struct {
    char *name;               /* eval_feature_name, with the code's description */
    double auroc;             /* over every labelled row, direction-free: max(a, 1 - a) */
    double auroc_held;        /* the same direction, held-out rows only (NaN: one class) */
    int higher_means_outcome; /* more of the feature, more often the outcome */
    int flag;                 /* EVAL_LEAK_* bits */
} eval_feature_auc;

typedef struct {
    int scanned;
    eval_feature_auc *top;    /* every feature with an AUROC; after eval_leak_flag in report
                                 order: the flagged first (strongest held-out first), then the
                                 strongest others. The report shows the first n_top: 15, or
                                 every flagged one when more */
    size_t n_top, n_features, n_flagged;
    double flag_auroc;        /* 0.9 */
    double best_auroc;        /* the best candidate predictor's held-out AUROC (NaN: none) */
    size_t pos, neg;          /* labelled rows with and without the outcome (all splits): with
                                 fewer than 10 of either, no feature is flagged (noise) */
    const char *best_name;
} eval_leak;

/* The single-feature AUROC of every all-history count feature (columns chosen on train rows),
 * over all of l's rows and over its held-out rows. */
int eval_leak_scan(eval_leak *out, const store *s, const task_labels *l, const label_row *train, size_t n_train,
                   const eval_feature_options *opt, cf_err *err);
/* Flags features over the threshold (on all rows, when they hold 10 of each class; also on
 * held-out rows when held_ok, i.e. they hold enough of each class to say) or, when held_ok, at
 * least as strong as the best predictor, and puts them first. */
void eval_leak_flag(eval_leak *lk, double best_auroc, const char *best_name, int held_ok);
void eval_leak_free(eval_leak *lk);

/* ---------------------------------------------------------------- baselines as predictors */

/* The baselines: count features with logistic regression or XGBoost, over all history or over
 * a fixed lookback (365 days); the record-position probe (XGBoost on when the record starts
 * and ends and how dense it is: a floor, role EVAL_ROLE_FLOOR); and the two learners on counts
 * plus value aggregates over all history (MEDS-Tab's numeric half). */
enum {
    EVAL_BASELINE_LOGREG = 0, EVAL_BASELINE_XGBOOST, EVAL_BASELINE_LOGREG_1Y, EVAL_BASELINE_XGBOOST_1Y,
    EVAL_BASELINE_PROBE, EVAL_BASELINE_LOGREG_VALUES, EVAL_BASELINE_XGBOOST_VALUES, EVAL_BASELINE_COUNT
};
#define EVAL_BASELINES_DEFAULT 0xf /* the four count baselines; the probe is always run */
const char *eval_baseline_name(int kind);

typedef struct {
    eval_feature_options features;
    uint64_t seed;
    int threads;
} eval_baseline_options;

/* A count-feature baseline as a predictor; the task labels must outlive it. */
int eval_baseline_new(eval_predictor *p, int kind, const task_labels *l, const eval_baseline_options *opt,
                      cf_err *err);
void eval_baseline_free(eval_predictor *p);

/* Out-of-fold probabilities of baseline kind (the teacher) for n rows, p[i * stride] for rows[i]:
 * the rows are cut into folds by patient, and each fold is predicted by a teacher fitted on the
 * other folds' rows (its settings chosen on the tuning rows), so no row's own label reaches its
 * target. The soft targets of --ft-distill (eval_distill.c). oof_log_loss (may be NULL): their log
 * loss against the rows' labels. */
int eval_distill_column(const store *s, const task_labels *l, int kind, const eval_baseline_options *opt,
                        const label_row *rows, size_t n, const label_row *tuning, size_t n_tuning, int folds,
                        uint64_t seed, float *p, size_t stride, double *oof_log_loss, cf_err *err);

/* ---------------------------------------------------------------- clinical scores (eval_score.c) */

/* A score the records hold (spec NAME=CODE: the last value of CODE at or before the prediction
 * time, read even when the task keeps CODE from every other predictor), calibrated by a
 * one-variable logistic regression on train rows; named score_NAME. */
int eval_score_new(eval_predictor *p, const char *spec, cf_err *err);
void eval_score_free(eval_predictor *p);

/* ---------------------------------------------------------------- model predictors (hook) */

enum { EVAL_MODEL_ZERO_SHOT = 1, EVAL_MODEL_READOUT = 2, EVAL_MODEL_FINETUNED = 4, EVAL_MODEL_E2E = 8 };

/* End-to-end fine-tuning settings (src/model/finetune.h), as the evaluation passes them;
 * eval_ft_options_default fills finetune.h's defaults. With set == 0 the defaults are used
 * whatever the fields hold (a zeroed eval_config means "defaults"). */
typedef struct {
    int epochs, batch, patience;
    int pool;                             /* GPT_POOL_* (model/gpt.h) */
    int ensemble;                         /* models fine-tuned with seeds seed .. seed+n-1, averaged */
    int context;                          /* the fine-tuned model's context (0: the base's); its
                                             prompts are cut to it */
    float lr, weight_decay, lm_weight, dropout;
    float body_lr, head_lr;               /* multipliers of lr for the base model and the heads */
    int var_slots, var_proj;              /* GPT_POOL_VARIABLES: slots at most, channels */
    int average_from;                     /* weight average from this epoch on (0: off) */
    int probe_cv;                         /* the probe's penalty by this many folds of the train
                                             rows (0: on the tuning rows) */
    float aux_weight;                     /* with auxiliary tasks: their heads' loss weight against
                                             the task's (finetune.h; default 0.5) */
    float summary_weight;                 /* the summary target's weight (0: none) */
    int summary_vars;                     /* its variables at most */
    float drop_values;                    /* value dropout while fine-tuning (finetune.h; 0: none) */
    float distill_weight;                 /* with a teacher (eval_model_options.distill): its soft
                                             targets' head's loss weight against the task's */
    int set;
} eval_ft_options;
void eval_ft_options_default(eval_ft_options *o);

/* What opening the model told the evaluation: which model, what it was trained on, and whether
 * any held-out patient was one of its training or tuning patients. */
typedef struct {
    char version[64];            /* "step N, vocab XXXXXXXX" */
    char checkpoint_hash[65];    /* BLAKE2b-256 of the checkpoint ("" for a model in the old layout) */
    char head_file[4400];        /* where the fitted head went in the bundle ("" when none) */
    int legacy;                  /* old layout: no record of its training subjects */
    int split_recorded;          /* the bundle records its training split */
    int same_store;              /* evaluated on the very store it was trained on */
    int train_deidentified;
    int64_t train_first, train_last; /* the training store's time range (TIME_NULL: unknown) */
    uint64_t train_subjects, tuning_subjects;
    size_t held_patients;        /* held-out patients checked */
    size_t overlap_patients;     /* of them, training or tuning patients of the model */
    size_t overlap_by_id, overlap_by_record, held_unprinted;
    int overlap_allowed;         /* overlap_patients > 0 and --allow-overlap */
} eval_model_info;

typedef struct {
    unsigned which;       /* EVAL_MODEL_* bits; 0 = every one the task allows */
    int rollouts;         /* zero-shot: sampled futures per prediction (0 = 20) */
    int max_new_tokens;   /* zero-shot: tokens per future at most (0 = 1024) */
    int64_t horizon_us;   /* zero-shot: a window without an end in time (until discharge, +inf)
                             closes this long after the prediction (0 = 30 days; < 0: never) */
    uint64_t seed;        /* zero-shot sampling seed */
    int threads;          /* OpenMP / OpenBLAS threads while the model runs (0 = 1) */
    const char *out_dir;  /* the fitted task head goes to out_dir/model_head.json (NULL: nowhere) */
    split_config split;   /* the evaluation's split: must be the one the model was trained under */
    eval_ft_options ft;   /* finetuned_e2e settings */
    const store *store;   /* the evaluation's store, for record prints (NULL: held-out patients are
                             checked by id only) */
    int allow_overlap;    /* evaluate even when held-out patients were training patients */
    const char *head_name;/* the head's name in the bundle (NULL: the task's name) */
    const store *held_store;          /* external evaluation: the held-out rows are every row of
                                         held_labels, in this store (NULL: store's held-out split) */
    const task_labels *held_labels;
    eval_model_info *info;/* filled when not NULL */
    /* finetuned_e2e with auxiliary tasks (--ft-aux-task): n_aux tasks labelled on the same store
     * and checked by eval_aux_check; each adds a head beside the task's, trained on its labels
     * (NaN for rows outside its population), never predicted or reported */
    const task_def *aux_tasks;
    const task_labels *aux_labels;
    size_t n_aux;
    /* finetuned_e2e with a teacher (--ft-distill): 1 + the EVAL_BASELINE_* kind (0: none) whose
     * out-of-fold probabilities of the train rows (distill_folds folds by patient, 5 when 0 or less;
     * eval_distill_column) a last head learns at ft.distill_weight beside the task's; trained,
     * never predicted or reported */
    int distill, distill_folds;
    eval_baseline_options distill_baseline;
} eval_model_options;

/* ---------------------------------------------------------------- auxiliary tasks (eval_aux.c) */

#define EVAL_MAX_AUX 8
/* Whether aux (labelled as al on the store s the task mt was labelled on, ml) can be an auxiliary
 * task of mt: its rows must have mt's prompts, so the same trigger codes, the same prediction time,
 * the same input codes ([input] never) and, for every row both tasks hold (same subject, same
 * prediction time), the same trigger and the same history; and the two must share at least one
 * train row. Otherwise CF_EINPUT with what differs. Rows mt holds and aux does not are outside
 * aux's population (no label); rows aux holds and mt does not are never used. */
int eval_aux_check(const store *s, const task_def *mt, const task_labels *ml, const task_def *aux,
                   const task_labels *al, cf_err *err);
/* The auxiliary task's label of each row (0 or 1), NaN for a row it does not hold (outside its
 * population); y[i * stride] for rows[i]. */
void eval_aux_column(const task_labels *al, const label_row *rows, size_t n, float *y, size_t stride);

/* Fills up to cap predictors that use the trained model bundle at model_path (zero-shot sampling,
 * the one-step read-out, the fine-tuned head); implemented in eval_model.c on src/model/runtime.h.
 * Refuses a model trained under another split, and one whose training or tuning patients are
 * among the held-out rows (by id or record print, model/bundle.h) unless allow_overlap. The
 * fitted head goes into the bundle (heads/<task>.json) and to out_dir/model_head.json. Release
 * with eval_model_predictors_free. */
int eval_model_predictors(const char *model_path, const eval_model_options *o, const task_def *t,
                          const task_labels *l, eval_predictor *out, size_t cap, size_t *n_out, cf_err *err);
void eval_model_predictors_free(eval_predictor *p, size_t n);

/* ---------------------------------------------------------------- pooling (eval_pool.c) */

/* Pools the held-out predictions of several evaluations of one task (the folds of a cross-
 * validation, each a `clinfm eval` output directory with predictions.csv, predictions_tuning.csv
 * and metrics.json; or a single evaluation) and judges every predictor on the pooled rows:
 * AUROC, AUPRC, Brier, ECE with patient-bootstrap intervals, ECE after recalibration on each
 * run's tuning rows, paired AUROC differences against reference predictors, and stacked
 * predictors (a logistic regression on the logits of several, fitted on each run's tuning
 * rows). Beside the raw pooled AUROC (which mixes runs calibrated differently): the pooled AUROC
 * after each run's recalibration on its own tuning rows (what one deployed, calibrated model
 * would rank), paired differences between recalibrated predictors, and the mean (min-max) of the
 * runs' own AUROCs. Runs of one fold join: a predictor named in averages that several of them
 * hold is the mean of their probabilities (an ensemble of seeds or pretrainings), every fold
 * averaging as many runs.
 * Refuses runs of different tasks, runs that are not distinct folds, and a patient held
 * out twice. Prints a markdown table; with out_dir writes pool.md, pool.json and the pooled
 * predictions.csv. */
typedef struct {
    const char *const *runs;
    size_t n_runs;
    const char *refs[8];     /* --reference NAME */
    size_t n_refs;
    const char *stacks[8];   /* --stack A+B */
    size_t n_stacks;
    const char *averages[8]; /* --average NAME: runs of one fold that both hold NAME with other
                                predictions (other seeds) are averaged, not refused */
    size_t n_averages;
    unsigned n_boot;
    uint64_t seed;
    const char *out_dir;     /* NULL: print only */
    int quiet;
} eval_pool_config;
int eval_pool(const eval_pool_config *cfg, cf_err *err);

/* ---------------------------------------------------------------- the evaluation run */

typedef struct {
    const char *task_path, *store_path, *out_dir, *model_path;
    const char *eval_store_path; /* external evaluation: every labelled row of this store is held
                                    out; predictors fit on store_path's train and tuning rows */
    split_config split;
    int baselines;           /* bit k: baseline kind k (EVAL_BASELINE_*; the probe always runs) */
    eval_boot_options boot;
    eval_baseline_options baseline;
    eval_model_options model;/* settings of the model's predictors (with model_path) */
    int small_patients;      /* below this many held-out patients the report warns (default 1000) */
    int allow_overlap;       /* evaluate a model even when held-out patients were its training patients */
    int target;              /* TASK_TARGET_OUTCOME, or _COMPETING: the competing event as the task */
    const char *propose;     /* the predictor proposed for use (default: finetuned when evaluated) */
    double thresholds[TASK_MAX_THRESHOLDS]; /* risk thresholds to report (n 0: the task's, or
                                               0.05, 0.1, 0.2, 0.5) */
    size_t n_thresholds;
    int quiet;
    const char *scores[4];   /* --score NAME=CODE: clinical scores the records hold, as references */
    size_t n_scores;
    /* extra predictors (tests, embedding programs); evaluated after the baselines */
    eval_predictor *extra;
    size_t n_extra;
    const char *aux_tasks[EVAL_MAX_AUX]; /* --ft-aux-task FILE: auxiliary tasks of finetuned_e2e */
    size_t n_aux;
} eval_config;

int eval_run(const eval_config *cfg, cf_err *err);

#endif
