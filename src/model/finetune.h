/* End-to-end fine-tuning: the whole trained model (transformer, embeddings, continuous inputs)
 * and K new binary task heads trained together on labelled prompts, with the next-token loss
 * on the same histories kept beside the task loss if asked (a multi-task objective that keeps
 * the model a model of the data while it learns the task). The tuning prompts choose when to
 * stop: after each epoch their log loss is measured, the best epoch's parameters are kept, and
 * training stops after `patience` epochs without improvement.
 *
 * This is what the frozen-embedding head (head.h) cannot do: there the representation is
 * fixed and only a logistic regression learns; here every layer adapts to the task. The
 * heads start from that frozen-embedding regression (linear probe, then fine-tune: LP-FT),
 * so fine-tuning begins where the frozen head ends and the tuning rows can pick epoch 0. On small
 * labelled sets the two regularisers that matter are the short schedule (early stopping) and
 * dropout; the base model's pretraining is the prior.
 *
 * Batches hold whole prompts, right-padded to the longest in the batch (causal attention
 * never lets a padded position reach an earlier one), with the task heads reading each
 * prompt's last position. Prompts are grouped by length to keep padding small. Everything is
 * a pure function of (base model, data, options): same seed, same fine-tuned model. */
#ifndef CLINFM_MODEL_FINETUNE_H
#define CLINFM_MODEL_FINETUNE_H

#include <stddef.h>
#include <stdint.h>

#include "model/gpt.h"
#include "model/runtime.h"
#include "util/err.h"

typedef struct {
    int epochs;         /* at most this many passes over the train prompts (default 30) */
    int batch;          /* prompts per step (default 16) */
    float lr;           /* peak learning rate, after a warm-up of a tenth of the first epoch's
                           steps, cosine to lr/10 over all epochs (default 2e-4) */
    float body_lr;      /* multiplier of lr for the base model's parameters (default 1; 0: only
                           the heads train) */
    float head_lr;      /* multiplier of lr for the task heads' parameters (default 1) */
    float weight_decay; /* AdamW decay on matrices (default 0.05) */
    float lm_weight;    /* weight of the next-token loss beside the task loss (default 0.3) */
    float dropout;      /* dropout while fine-tuning; < 0: the base model's (default 0.1) */
    int patience;       /* epochs without a better tuning loss before stopping (default 4) */
    int probe_init;     /* start each head from a linear probe of the frozen model (LP-FT;
                           default 1), else from its train prevalence */
    int pool;           /* what the heads read: GPT_POOL_LAST (the last history token's final
                           hidden state), _MEAN (their mean over the history), _BOTH
                           (default), _EXTREMES (both, then their channel-wise max and min) or
                           _WINDOWS (extremes, then the max and min over the history's first
                           and second half in time; a model with continuous inputs), _ATTENTION
                           or _VARIABLES (extremes, then per variable slot the last, max and min
                           of a learned projection to var_proj channels; a model with
                           continuous inputs: the slots are the var_slots tokens that carry a
                           value in the most train prompts) */
    int var_slots;      /* GPT_POOL_VARIABLES: at most this many slots (default 48) */
    int var_proj;       /* GPT_POOL_VARIABLES: projected channels per position, k (default 2) */
    float summary_weight; /* > 0: a training-only regression head on what the task heads read
                           predicts each prompt's own per-variable summaries, and its mean squared
                           error times this is added to the loss (ft_summary.h; default 0: none,
                           and fine-tuning is what it was without it, bit for bit) */
    int summary_vars;   /* the summary target's variables: the tokens carrying a value in the most
                           train prompts, at most this many (default 48, at most 64) */
    int context;        /* the fine-tuned model's context (maxT; 0: the base model's). A longer one
                           takes whole histories the base had to cut; its position embeddings
                           start as the base's resampled (gpt_copy_params) */
    int average_from;   /* E0 >= 1: the mean of the parameters at the ends of epochs E0 .. e (a
                           stochastic weight average, kept apart from the trained parameters) is
                           judged on the tuning prompts after each epoch e > E0 beside epoch e
                           itself, and the kept model is the best of all candidates; without
                           tuning prompts the mean up to the last epoch is kept (0: off) */
    int probe_cv;       /* K >= 2: the probe's L2 penalty is chosen by K-fold cross-validation on
                           the train prompts' frozen features, so the tuning prompts judge epoch 0
                           as they judge the others (0: chosen on the tuning prompts) */
    /* called with the trained (not averaged) parameters at each epoch's end, when set (tests) */
    void (*epoch_hook)(void *ctx, int epoch, const gpt_model *m);
    void *hook_ctx;
    int main_head;      /* 1: head 0 is the task and heads 1 .. K-1 are auxiliary tasks (labels that
                           share the prompts, NaN outside their population): the objective is
                           head 0's mean log loss plus aux_weight times each auxiliary head's (each
                           a mean over its own labelled rows), and head 0's tuning log loss alone
                           chooses the epoch, the probe's start included, and is what the report
                           gives. 0 (default): every head alike, the mean over every labelled
                           (row, head), in training and in the choice */
    float aux_weight;   /* with main_head: the auxiliary heads' weight against head 0's (default 0.5) */
    float last_head_weight; /* with main_head and > 0: the last head's weight instead of aux_weight
                           (a teacher's soft targets, labels in [0, 1]; default 0: aux_weight) */
    float drop_values;  /* in [0, 1): each training batch leaves out every stream token that carries
                           a value with this probability, drawn afresh each epoch (an augmentation:
                           a stay is seen with a different subset of its measurements each time, as
                           charting differs between stays; the static prefix, tokens without a
                           value and the tuning prompts are never touched; a model with continuous
                           inputs; default 0: none, and fine-tuning is what it was, bit for bit) */
    uint64_t seed;      /* prompt order and dropout */
    int threads;        /* threads of the model, OpenMP and OpenBLAS while training (0: as they
                           are); restored on return */
    int quiet;          /* no per-epoch line on stderr */
} ft_options;

void ft_options_default(ft_options *o);

#define FT_CURVE 64 /* epochs whose tuning losses a report keeps */

typedef struct {
    int epochs_run;        /* epochs trained */
    int best_epoch;        /* 1-based epoch whose parameters were kept (0: the base model's) */
    int best_averaged;     /* 1: what was kept is the mean of epochs average_from .. best_epoch */
    double best_tune_loss; /* tuning log loss there (NaN without tuning prompts) */
    double probe_tune_loss;/* tuning log loss before the first epoch (the probe's, or the
                              prevalence's) */
    double probe_lambda;   /* the probe's L2 penalty (the first head's; NaN without a probe) */
    double probe_cv_loss;  /* its cross-validated train log loss (NaN unless probe_cv) */
    double tune_curve[FT_CURVE + 1]; /* tuning log loss after epoch e (0: the start), NaN past the
                                        last epoch run or without tuning prompts */
    double avg_curve[FT_CURVE + 1];  /* the same of the weight average, NaN where none was judged */
    double aux_tune_loss;  /* with main_head: the auxiliary heads' mean tuning log loss at the kept
                              epoch (NaN otherwise) */
    int summary_vars;      /* variables of the summary target (0: none) */
    double summary_tune_mse;/* the kept epoch's mean squared error of the summary target on the
                              tuning prompts (NaN without either) */
    double seconds;        /* wall time */
    uint64_t tokens;       /* prompt tokens processed in training steps */
} ft_report;

/* Fine-tunes a copy of base into *out (built here; gpt_free it) with K heads. y (n, K) holds
 * each prompt's labels, NaN where a head has none. Without tuning prompts every epoch runs and
 * the last is kept. Prompts must fit the base model's context and carry continuous inputs
 * when it takes them (prompts may be as long as o->context). pad is the vocabulary's [PAD] token. */
int ft_train(gpt_model *out, const gpt_model *base, int K, const rt_prompt *train, const float *ytr, size_t ntr,
             const rt_prompt *tune, const float *ytu, size_t ntu, int pad, const ft_options *o, ft_report *rep,
             cf_err *err);

/* The positions of p a training batch keeps with value dropout drop (ft_options.drop_values),
 * ascending into kept (p->len at most; returned: how many): every position but the stream
 * tokens that carry a value (continuous input 0 of F > 0 per token), each of which is left out
 * with probability drop, one draw of *rng each; the static prefix and the last token always
 * stay. drop 0 keeps all and draws nothing. */
int ft_kept_positions(const rt_prompt *p, int F, float drop, uint64_t *rng, int *kept);

/* The K head logits of n prompts, logits (n, K), batch prompts at a time. */
int ft_logits(gpt_model *m, const rt_prompt *ps, size_t n, int pad, int batch, float *logits, cf_err *err);

#endif
