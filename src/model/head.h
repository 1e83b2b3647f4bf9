/* Task heads on the frozen model: a logistic regression on the patient embedding (CLMBR style),
 * and the file that carries everything the service needs to score a task with the model.
 *
 * The head reuses the evaluation module's L2 logistic regression (src/eval: L-BFGS, columns
 * standardised on train rows), with the penalty chosen by log loss on tuning rows. On top it
 * keeps the sandwich covariance of its coefficients, so a single prediction carries a 95%
 * interval (delta method on the logit): it states how sure the fitted head is, not how right
 * the model is, and is documented as such.
 *
 * A task head file (JSON, written atomically by `clinfm eval --model` into the model bundle as
 * heads/<task id>.json, model/bundle.h, and read from there by `clinfm serve --model`) holds: the task's name and title, the model it was
 * fitted on (vocabulary hash, step), the codes never used as input, the fitted head, the
 * zero-shot translation of the label rule (model/outcome.h, made by tasks/task_outcome.h), and the method the service uses. */
#ifndef CLINFM_MODEL_HEAD_H
#define CLINFM_MODEL_HEAD_H

#include <stddef.h>
#include <stdint.h>

#include "model/outcome.h"
#include "model/runtime.h"
#include "util/err.h"

typedef struct {
    int d;               /* embedding width */
    double *w;           /* (d) on standardised inputs */
    double b;
    double *shift;       /* (d) column means over train rows */
    double *scale;       /* (d) 1 / column standard deviation (0: constant column, ignored) */
    double lambda;       /* L2 penalty chosen */
    double *cov;         /* (d+1, d+1) covariance of (w, b), or NULL */
    int tuned;           /* 1 when lambda was chosen on tuning rows */
    double tune_loss;    /* tuning log loss at lambda (NaN when untuned) */
    size_t n_train, n_tuning;
} rt_head;

/* Fits a head on train embeddings Xtr (ntr, d) with labels ytr, choosing lambda among 1e-4 ..
 * 1e2 by log loss on the tuning rows (ntu may be 0: lambda 1e-2). */
int rt_head_fit(rt_head *h, int d, const float *Xtr, const uint8_t *ytr, size_t ntr, const float *Xtu,
                const uint8_t *ytu, size_t ntu, cf_err *err);
/* The same head with lambda chosen by folds-fold cross-validation over the train rows alone (the
 * pooled out-of-fold log loss; rows dealt to folds by class, in row order), then refitted on all
 * of them; the tuning rows (ntu may be 0) only measure it (tune_loss; tuned is 0). *cv_loss (may
 * be NULL) gets the chosen lambda's cross-validated loss. */
int rt_head_fit_cv(rt_head *h, int d, const float *Xtr, const uint8_t *ytr, size_t ntr, int folds, const float *Xtu,
                   const uint8_t *ytu, size_t ntu, double *cv_loss, cf_err *err);
/* The logit for embedding x; *se (may be NULL) gets its standard error (0 without covariance). */
double rt_head_logit(const rt_head *h, const float *x, double *se);
double rt_sigmoid(double z);
void rt_head_free(rt_head *h);

enum { RT_METHOD_FINETUNED = 0, RT_METHOD_READOUT, RT_METHOD_ZERO_SHOT };

typedef struct {
    char *task_name, *task_title;
    int have_head;
    rt_head head;
    rt_outcome outcome;           /* its expressible flag says whether zero-shot is possible */
    char **never_codes, **never_prefixes; /* codes never used as input */
    size_t n_never_codes, n_never_prefixes;
    int method;                   /* RT_METHOD_*: what the service scores with */
    int rollouts, max_new;        /* zero-shot settings */
} rt_task_head;

/* 1 when code is never input under the head's task. */
int rt_task_head_never(const rt_task_head *th, const char *code);
void rt_task_head_free(rt_task_head *th);
/* Writes th (fitted on rm) to path, atomically. */
int rt_task_head_save(const char *path, const rt_task_head *th, const rt_model *rm, cf_err *err);
/* Reads a head file; it must have been made for rm (vocabulary hash checked). */
int rt_task_head_load(const char *path, const rt_model *rm, rt_task_head *th, cf_err *err);
const char *rt_method_name(int method);

#endif
