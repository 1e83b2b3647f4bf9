/* Shared between the evaluation run (eval_run.c) and its report writers (eval_report.c): the
 * results of one evaluation, held in memory until every output is written. */
#ifndef CLINFM_EVAL_EVAL_INTERNAL_H
#define CLINFM_EVAL_EVAL_INTERNAL_H

#include <stddef.h>

#include "eval/eval.h"
#include "util/sbuf.h"

typedef struct {
    const eval_predictor *p;
    char *info_json;            /* describe() output or NULL */
    float *probs;               /* one per held-out row */
    float *probs_tune;          /* one per tuning row: what recalibration and stacking fit on
                                   (predictions_tuning.csv; clinfm pool) */
    double fit_seconds;
    double lat_median_ms, lat_p95_ms, lat_mean_ms;
    size_t lat_patients;
    eval_metrics overall;
    eval_curve roc, pr;
    eval_metrics *groups[TASK_MAX_SUBGROUPS]; /* [value index] */
    eval_threshold thr[TASK_MAX_THRESHOLDS];   /* at st->thresholds */
    eval_bin deciles[10];                       /* calibration by deciles of predicted risk */
    size_t n_deciles;
} eval_pred_result;

/* Fewer held-out rows with (or without) the outcome than this: every performance figure is
 * "insufficient" in the report and model card (metrics.json keeps the numbers, flagged). */
#define EVAL_MIN_POSITIVES 10

typedef struct {
    const eval_config *cfg;
    task_def task;
    store s;
    task_labels labels;
    label_row *split_rows[SPLIT_COUNT];
    size_t split_n[SPLIT_COUNT];
    task_counts counts[SPLIT_COUNT + 1]; /* per split, then all */
    uint8_t *y_held;
    int64_t *cluster_held;
    eval_pred_result *res;
    size_t n_res;
    char generated[40];  /* UTC time of the run */
    eval_model_info model;  /* with cfg->model_path: the model, its training data, the overlap check */
    eval_leak leak;         /* single-feature AUROCs */
    double thresholds[TASK_MAX_THRESHOLDS];
    size_t n_thresholds;
    int thresholds_from;    /* 0 default, 1 the task file, 2 --thresholds */
    int proposed;           /* index into res of the predictor proposed for use, -1: none */
    int insufficient;       /* held-out positives or negatives below EVAL_MIN_POSITIVES */
    int probe;              /* index into res of the record-position probe, -1: none */
    int small;           /* fewer held-out patients (or positives) than a judgement needs */
    /* External evaluation (cfg->eval_store_path): the held-out rows are every row of another
     * store. While predictors run, held_s and held_labels are that store and its labels, and s
     * and labels the store fitted on; for the reports they are swapped, so every page describes
     * the data evaluated on (fit_s and fit_labels then hold the fitted store's). */
    int external;
    store other_s;
    task_labels other_labels;
    const store *held_s;
    const task_labels *held_labels;
} eval_state;

int eval_write_json(const eval_state *st, const char *path, cf_err *err);
/* report.html (eval_report.c) and MODEL_CARD.md (eval_card.c) */
int eval_write_html(const eval_state *st, const char *path, cf_err *err);
int eval_write_model_card(const eval_state *st, const char *path, cf_err *err);

/* The reports are assembled in the shared growing buffer (util/sbuf.h). */
typedef sbuf eval_buf;
static inline void eb_put(eval_buf *s, const char *p, size_t n) { sbuf_put(s, p, n); }
static inline void eb_str(eval_buf *s, const char *p) { sbuf_str(s, p); }
void eb_fmt(eval_buf *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void eb_html(eval_buf *s, const char *p); /* HTML-escaped */
/* "0.812 (0.751-0.866)" or "n/a" */
void eb_ci(eval_buf *s, const eval_ci *c);
/* The same with the given digits, the interval printed whenever its low end is known. */
void eb_ci_digits(eval_buf *s, const eval_ci *c, int digits);
/* The date of t ("2019-03-02"), or "unknown" for TIME_NULL. */
void eb_time(eval_buf *b, int64_t t);
/* The model's training data: "N train and M tuning patients of a de-identified store with data
 * from DATE to DATE", with identified in place of "de-identified " for an identified store. */
void eb_trained_on(eval_buf *b, const eval_model_info *mi, const char *identified);

/* Text report.html and MODEL_CARD.md share (eval_text.c, with the eb_* helpers above); html 1
 * writes HTML, 0 Markdown. */
const char *eval_role_name(int role);
int eval_metrics_insufficient(const eval_metrics *m);
void eval_text_cells(eval_buf *b, const eval_metrics *m, int html); /* AUROC, AUPRC, Brier, ECE */
void eval_text_evidence(eval_buf *b, const eval_state *st, int html);
void eval_text_overlap(eval_buf *b, const eval_state *st, int html);
void eval_text_follow_up(eval_buf *b, const eval_state *st, int html);
void eval_text_alarms(eval_buf *b, const eval_state *st, int html);

#endif
