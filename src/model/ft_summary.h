/* A label-free auxiliary objective for end-to-end fine-tuning (`eval --ft-summary-weight W`):
 * from what the task heads read (the pooled final hidden states, gpt_cls_width numbers per
 * prompt), a linear regression head predicts the prompt's own per-variable summaries, and its
 * mean squared error, times W, is added to the fine-tuning loss.
 *
 * Why: on PhysioNet 2012 a logistic regression on per-variable aggregates (min, max, mean, last,
 * count of each vital sign and lab) beats the fine-tuned model, and a linear probe on the model's
 * pooled states is about as good as fine-tuning (docs/P12.md, sessions 10-11): the representation
 * does not keep, in linearly readable form, what a table of aggregates keeps. This objective asks
 * it to. The targets are the prompt's own inputs (no label, no future), so every row has them.
 *
 * A variable is a code token that carries a value (continuous input 0 is 1; with --values embed a
 * measured variable is one code token, its normalised value input 1): the V tokens carrying one
 * in the most train prompts (ft_choose_slots, as the variables pooling chooses its slots). Per
 * variable five targets, in this order: the last, min, max and mean of its values over the
 * prompt, each standardised by its mean and standard deviation over the train prompts that have
 * the variable, then a present indicator (1 when the prompt has a value of it, else 0; not
 * standardised). A prompt without the variable leaves its four value targets missing (NaN), and
 * a missing target is out of the loss and of its count.
 *
 * The head is training-only: it is not part of the fine-tuned model and is not saved (the
 * checkpoint is the one fine-tuning without it would write). Forward and backward side by side:
 *   pred[b][j] = A[j] . x[b] + c[j]                         (A: J x P, c: J, J = 5 V)
 *   loss = W / N * sum over observed (b, j) of (pred[b][j] - y[b][j])^2,  N observed entries. */
#ifndef CLINFM_MODEL_FT_SUMMARY_H
#define CLINFM_MODEL_FT_SUMMARY_H

#include <stddef.h>

#include "model/gpt.h"
#include "model/runtime.h"
#include "util/err.h"

#define FT_SUMMARY_STATS 5 /* last, min, max, mean, present */
#define FT_SUMMARY_MAX_VARS 64

typedef struct {
    int V, J, P;        /* variables, targets (5 V), what the head reads per prompt */
    int n_tokens;       /* vocabulary size: slot's length */
    int F;              /* continuous inputs per position of the prompts */
    int *slot;          /* (n_tokens) token -> variable 0 .. V-1, or -1 */
    double *mu, *sd;    /* (V * 4) standardisation of the value targets (train prompts) */
    float *A, *c;       /* (J, P), (J): the regression head */
    float *dA, *dc;     /* their gradients (backward adds; ft_summary_zero_grad clears) */
    float *mA, *vA, *mc, *vc; /* AdamW moments */
    unsigned long long step;
} ft_summary;

/* The tokens that carry a value in the most train prompts, at most cap (ties: the lower id):
 * slot (V) gets each token's index or -1; returns the count. Shared with the variables pooling. */
int ft_choose_slots(const rt_prompt *ps, size_t n, int V, int F, int cap, int *slot);

/* Chooses at most max_vars variables on the train prompts, fits the standardisation on them, and
 * starts the head at A = 0 and c = each target's train mean (so its first gradient into the model
 * is zero and the first steps fit the head, not the body). P: what the task heads read. CF_EINPUT
 * when no train token carries a value. */
int ft_summary_init(ft_summary *s, const rt_prompt *train, size_t ntr, int n_tokens, int F, int P, int max_vars,
                    cf_err *err);
void ft_summary_free(ft_summary *s);

/* The J targets of one prompt, y (J), NaN where missing. */
void ft_summary_targets(const ft_summary *s, const rt_prompt *p, float *y);

/* Forward: pred (B, J) from x (B, P); returns the sum of squared errors over the observed entries
 * of y (B, J) and adds their count to *n_obs. */
double ft_summary_forward(const ft_summary *s, const float *x, const float *y, int B, float *pred, size_t *n_obs);
/* Backward of scale * that sum (fine-tuning passes W / N): adds into dA, dc and dx (B, P), the
 * gradient on what the heads read (gpt_backward_ex carries it into the model). */
void ft_summary_backward(ft_summary *s, const float *x, const float *y, const float *pred, int B, float scale,
                         float *dx);
void ft_summary_zero_grad(ft_summary *s);
/* One Adam step at learning rate lr with o's betas and eps, without decay (the head is a
 * regression fitted alongside, not a parameter of the model), bias-corrected like gpt_update's. */
void ft_summary_update(ft_summary *s, const gpt_opt_config *o, float lr);

#endif
