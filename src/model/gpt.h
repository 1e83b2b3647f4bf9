/* The clinfm model: a GPT-style decoder trained from scratch on patient token streams.
 *
 * Pre-LayerNorm blocks of causal self-attention and a tanh-GELU MLP, learned position
 * embeddings, token embeddings tied to the output layer, dropout on the embedding sum and on
 * each residual branch (training only). Optionally (config n_features > 0) each position also
 * carries F continuous inputs (a numeric value, times: see timeline_features in src/timeline),
 * embedded by a small tanh MLP and added to the token embedding; and (num_outputs > 0) K
 * binary task heads read the final hidden state at one chosen position per sequence, so the
 * whole network can be fine-tuned end to end on a task, alone or beside the next-token loss. Training is forward, backward, update on a flat
 * parameter array; inference runs from a KV cache (gpt_sample.c). The model knows nothing of
 * tokenizers or stores: it eats int token ids in [0, vocab_size) and the caller owns the data.
 *
 * Dimension legend used in every shape comment:
 *   B  batch (sequences per step)        T   positions per sequence (<= maxT)
 *   C  channels (d_model)                V   real vocabulary, Vp padded vocabulary (>= V)
 *   NH attention heads, hs = C / NH      L   layers      maxT  context length
 *   F  continuous inputs per position    H   their hidden width     K  task heads (outputs)
 *
 * Typical training loop (the caller supplies batches; targets[i] < 0 means "no target"):
 *   gpt_model m; gpt_build(&m, &cfg, seed, &err);
 *   for (...) { gpt_forward(&m, in, tg, B, T, 1, &err); gpt_zero_grad(&m);
 *               gpt_backward(&m, &err); gpt_update(&m, &opt, &stats, &err); }
 *   gpt_save(&m, path, &opt, GPT_CKPT_OPTIMIZER, &err); gpt_free(&m);
 * The model is not thread-safe while training; inference functions take a const model and a
 * caller-owned KV cache, so several caches may run on one model at once.
 *
 * Threads: OpenMP (all cores unless OMP_NUM_THREADS or m->num_threads says otherwise) and
 * OpenBLAS. A batch of several sequences is cut into slices of whole sequences that threads
 * take on demand, each running the whole network on its slice, so a step synchronises only a
 * few times; a single sequence is parallelised inside the kernels instead. With a fixed thread
 * count, training is bit-reproducible; across thread counts it agrees to float rounding. */
#ifndef CLINFM_MODEL_GPT_H
#define CLINFM_MODEL_GPT_H

#include <stddef.h>
#include <stdint.h>

#include "model/gpt_pool.h"
#include "util/err.h"

typedef struct {
    int max_seq_len;       /* maxT: positions the model was built for */
    int vocab_size;        /* V: token ids are 0 .. V-1 */
    int padded_vocab_size; /* Vp: 0 in gpt_build means V rounded up to a multiple of 64 */
    int num_layers;        /* L */
    int num_heads;         /* NH; C % NH == 0 and hs <= 256 */
    int channels;          /* C */
    float dropout;         /* p in [0, 1), used only by training forwards */
    int n_features;        /* F: continuous inputs per position (0: none, the version-1 model) */
    int feat_hidden;       /* H: hidden width of their embedding MLP (0 when F is 0) */
    int num_outputs;       /* K: binary task heads on the final hidden state (0: none) */
    int cls_pool;          /* what the heads read, GPT_POOL_*: the hidden state at the head
                              position, the mean of the hidden states up to it, both, or both
                              with their channel-wise max and min, then those over the
                              history's first and second half in time (GPT_POOL_WINDOWS), or
                              the extremes and a learned attention pooling (GPT_POOL_ATTENTION),
                              or the extremes and per variable slot the last, max and min of a
                              learned projection (GPT_POOL_VARIABLES) */
    int value_head;        /* 1: a value forecast beside the next-token one: at each position the
                              value the next token carries (when it carries one), predicted given
                              that token, a self-supervised objective that makes the model learn
                              the numbers it reads (the continuous inputs), not only which code
                              comes next */
    int cls_slots;         /* S: GPT_POOL_VARIABLES's variable slots (1 .. GPT_POOL_MAX_SLOTS; 0
                              in every other mode); the token-to-slot map is the tensor clsmap */
    int cls_proj;          /* k: its projected channels per position (1 .. GPT_POOL_MAX_PROJ; 0
                              otherwise) */
} gpt_config;

static inline int gpt_cls_width(const gpt_config *c) {
    return gpt_pool_width(c->cls_pool, c->channels, c->cls_slots, c->cls_proj);
}

#define GPT_MAX_FEATURES 64
#define GPT_MAX_OUTPUTS 64

#define GPT_NUM_PARAM_TENSORS 26
typedef struct {
    float *wte;      /* (Vp, C) token embeddings, also the output layer; rows >= V stay 0 */
    float *wpe;      /* (maxT, C) position embeddings */
    float *ln1w;     /* (L, C) */
    float *ln1b;     /* (L, C) */
    float *qkvw;     /* (L, 3*C, C) */
    float *qkvb;     /* (L, 3*C) */
    float *attprojw; /* (L, C, C) */
    float *attprojb; /* (L, C) */
    float *ln2w;     /* (L, C) */
    float *ln2b;     /* (L, C) */
    float *fcw;      /* (L, 4*C, C) */
    float *fcb;      /* (L, 4*C) */
    float *fcprojw;  /* (L, C, 4*C) */
    float *fcprojb;  /* (L, C) */
    float *lnfw;     /* (C) */
    float *lnfb;     /* (C) */
    float *xw1;      /* (H, F) continuous inputs: hidden = tanh(feat @ xw1^T + xb1) */
    float *xb1;      /* (H) */
    float *xw2;      /* (C, H) embedding added to the token's: hidden @ xw2^T */
    float *clsw;     /* (K, P) task heads: logit k = clsw[k] . pooled + clsb[k], pooled (P) the
                        final hidden state at pos, their mean over 0..pos, or both (P = 2C) */
    float *clsb;     /* (K) */
    float *valw;     /* (Vp, C) value forecast: value of next token v = valw[v] . lnf + valb[v] */
    float *valb;     /* (Vp) */
    float *clsq;     /* (C) the heads' attention query (cls_pool GPT_POOL_ATTENTION only; last, so
                        the tensors before it keep their places) */
    float *clsvw;    /* (k, C) GPT_POOL_VARIABLES: each position's final hidden state projected to
                        k channels, pooled per variable slot */
    float *clsmap;   /* (Vp) GPT_POOL_VARIABLES: token id -> its variable slot 0 .. S-1, or -1 (a
                        token of no slot), as whole numbers. Data, not learned: a tensor so the
                        checkpoint carries it with its CRC (prediction and the service read the
                        map the fine-tuning chose); gpt_update never changes it. Both last, so
                        older checkpoints keep their layout. */
} gpt_params;

/* What a forward pass keeps for backward, for the current (B, T). */
#define GPT_NUM_ACT_TENSORS 27
typedef struct {
    float *encoded;   /* (B, T, C) embedding sum after dropout: the stream entering layer 0 */
    float *ln1;       /* (L, B, T, C) */
    float *ln1_mean;  /* (L, B, T) */
    float *ln1_rstd;  /* (L, B, T) */
    float *qkv;       /* (L, B, T, 3*C) */
    float *atty;      /* (L, B, T, C) attention output before its projection */
    float *att_lse;   /* (L, B, NH, T) log-sum-exp of each query's scores: no T x T is kept */
    float *residual2; /* (L, B, T, C) stream after the attention branch */
    float *ln2;       /* (L, B, T, C) */
    float *ln2_mean;  /* (L, B, T) */
    float *ln2_rstd;  /* (L, B, T) */
    float *fch;       /* (L, B, T, 4*C) MLP hidden before GELU */
    float *fch_gelu;  /* (L, B, T, 4*C) */
    float *residual3; /* (L, B, T, C) stream after the MLP branch */
    float *lnf;       /* (B, T, C) */
    float *lnf_mean;  /* (B, T) */
    float *lnf_rstd;  /* (B, T) */
    float *logits;    /* (B, T, Vp) logits; with targets, probabilities; after backward, dlogits */
    float *losses;    /* (B, T) per-position loss (0 where the target is < 0) */
    float *branch;    /* (B, T, C) scratch: a residual branch's output before dropout */
    float *feats;     /* (B, T, F) copy of the continuous inputs */
    float *xh;        /* (B, T, H) their hidden layer after tanh */
    float *cls_logits;/* (B, K) task-head logits (with labels: for backward) */
    float *cls_y;     /* (B, K) copy of the task labels; NaN = none */
    float *cls_in;    /* (B, P) what the heads read (see clsw) */
    float *val_pred;  /* (B, T) value forecasts (value_head) */
    float *val_tgt;   /* (B, T) copy of the value targets; NaN = none */
} gpt_acts;

/* Gradients of activations, needed only while backward walks one layer, so one layer's worth
 * is reused for all layers. */
#define GPT_NUM_GRAD_ACT_TENSORS 6
typedef struct {
    float *dresidual; /* (B, T, C) gradient of the residual stream at the current layer */
    float *dbranch;   /* (B, T, C) gradient of a branch output, through dropout */
    float *dln;       /* (B, T, C) gradient of a LayerNorm output */
    float *datty;     /* (B, T, C) */
    float *dbig1;     /* (B, T, 4*C) dfch_gelu, then dqkv in its first 3*C columns */
    float *dbig2;     /* (B, T, 4*C) dfch */
} gpt_grad_acts;

/* AdamW with decoupled weight decay on matrices (wte, wpe, qkvw, attprojw, fcw, fcprojw) only,
 * linear warm-up over warmup_steps then cosine decay from lr to min_lr at total_steps, and
 * clipping of the global gradient norm to grad_clip (0 = off). */
typedef struct {
    float lr, min_lr;
    float beta1, beta2, eps;
    float weight_decay;
    float grad_clip;
    uint64_t warmup_steps, total_steps;
    /* NULL (every gpt_opt_default, every loaded config), or GPT_NUM_PARAM_TENSORS multipliers of
     * the learning rate, one per parameter tensor in the checkpoint's order (gpt_lr_scales fills
     * them): fine-tuning moves a pretrained body slower than its new heads. The decay scales with
     * it (AdamW's decoupled decay is lr times the rate), so 0 leaves a tensor exactly as it is.
     * Not saved: a run that resumes sets it again. */
    const float *lr_scale;
} gpt_opt_config;

/* Fills scale (GPT_NUM_PARAM_TENSORS) for gpt_opt_config.lr_scale: head for the task heads'
 * tensors (their weights and bias, the attention query, the variables projection), body for
 * every other (the pretrained model, its value head included). */
void gpt_lr_scales(float *scale, float body, float head);

/* The defaults: lr 3e-4 -> 3e-5, betas (0.9, 0.95), eps 1e-8, decay 0.1, clip 1.0, and 100
 * warm-up steps (a tenth of total_steps when that is under 1,000). */
gpt_opt_config gpt_opt_default(uint64_t total_steps);

typedef struct {
    float grad_norm; /* global norm before clipping */
    float lr;        /* learning rate used */
} gpt_update_stats;

typedef struct {
    gpt_config config;
    gpt_params params;          /* pointers into param_memory */
    size_t param_sizes[GPT_NUM_PARAM_TENSORS];
    size_t num_parameters;
    float *param_memory;        /* (num_parameters) */
    gpt_params grads;           /* pointers into grad_memory, allocated by the first backward */
    float *grad_memory;         /* (num_parameters) */
    float *grad_extra;          /* (slices - 1, num_parameters) other batch slices' gradients */
    int grad_extra_slices;      /* slices grad_extra was sized for */
    float *m_memory;            /* (num_parameters) AdamW first moment, from the first update */
    float *v_memory;            /* (num_parameters) AdamW second moment */
    gpt_acts acts;              /* pointers into act_memory, laid out for (batch, seq_len) */
    gpt_grad_acts grad_acts;    /* pointers into act_memory too */
    size_t act_capacity;        /* floats allocated in act_memory */
    float *act_memory;
    float *att_scratch;         /* (slices, GPT_ATT_SCRATCH(hs, T)) inside act_memory */
    int *inputs;                /* (B, T) copy of the last forward's inputs, for backward */
    int *targets;               /* (B, T) copy of its targets */
    size_t tok_capacity;        /* ints allocated at inputs, for inputs and targets */
    int batch_size, seq_len;    /* B, T of the last forward; 0 before */
    int num_threads;            /* OpenMP threads; may be changed between steps */
    int act_threads;            /* num_threads the activations were laid out for */
    int has_targets;            /* the last forward had targets (backward allowed) */
    int train;                  /* the last forward was a training forward (dropout on) */
    float mean_loss;            /* mean loss over positions with targets, or -1 */
    float cls_loss;             /* mean task-head log loss over labelled (row, head), or -1; with
                                   head weights, sum over heads k of w_k x head k's mean */
    float value_loss;           /* mean value forecast loss over positions with a target, or -1 */
    float lm_weight, cls_weight;/* the last forward's objective weights (gpt_extra) */
    int cls_weighted;           /* the last forward had head weights: cls_head_w holds them */
    float cls_head_w[GPT_MAX_OUTPUTS];
    float value_weight;
    int has_values;             /* the last forward had value targets (backward trains the head) */
    int has_cls;                /* the last forward computed head logits (cls_pos given) */
    int *cls_pos;               /* (B) copy of the head positions */
    uint64_t step;              /* optimizer updates done */
    uint64_t kept_step;         /* early stopping kept the parameters of this earlier step (0: of step) */
    uint64_t rng_seed;          /* seeds initialisation and dropout */
    uint64_t rng_counter;       /* training forwards done; dropout masks derive from it */
    uint64_t dropout_key;       /* counter value the last training forward used */
    uint8_t vocab_hash[32];     /* identifies the vocabulary; saved with checkpoints */
} gpt_model;

/* Validates cfg, allocates the parameters and initialises them from seed (normal(0, 0.02);
 * residual projections 0.02 / sqrt(2L); LayerNorm 1 and 0; biases 0). Gradients, moments and
 * activations are allocated on first use. On failure m holds nothing to free. */
int gpt_build(gpt_model *m, const gpt_config *cfg, uint64_t seed, cf_err *err);
void gpt_free(gpt_model *m);
/* CF_OK, or CF_EINPUT with a sentence saying which field of cfg is unusable. */
int gpt_config_check(const gpt_config *cfg, cf_err *err);
/* Copies src's parameters into dst (both built), tensor by tensor: how a fine-tuned copy of a
 * model starts. The two must share vocabulary, layers, heads, channels, continuous inputs and
 * value head; they may differ in
 *   - task heads (K, pooling): dst's heads keep what they hold unless both have the same ones;
 *   - context: dst's position embeddings are src's resampled linearly to dst's maxT (row p of
 *     dst is src's row at p (Ms - 1) / (Md - 1)), as a vision transformer's are when it is
 *     fine-tuned on larger images: positions keep their order and spacing relative to the
 *     window, and a longer window sees a whole history that src had to cut.
 * (A flat copy of src's memory is wrong whenever the heads differ: the tensors after them, the
 * value head's, would land shifted.) CF_EINPUT naming the first field that differs. */
int gpt_copy_params(gpt_model *dst, const gpt_model *src, cf_err *err);

/* Forward pass over inputs (B, T). With targets (B, T) the loss is computed (m->mean_loss) and
 * backward becomes possible; train != 0 turns dropout on and consumes one dropout key. */
int gpt_forward(gpt_model *m, const int *inputs, const int *targets, int B, int T, int train,
                cf_err *err);

/* What gpt_forward_ex adds: continuous inputs and task heads. A model with F > 0 always adds
 * the inputs' embedding (zeros when feats is NULL), so every caller sees the same network. */
typedef struct {
    const float *feats;   /* (B, T, F) continuous inputs, or NULL: all zero */
    const int *cls_pos;   /* (B) position whose final hidden state the heads read, or NULL */
    const float *cls_y;   /* (B, K) labels 0/1, NaN = no label for that head and row; NULL:
                             no task loss (the logits are still computed when cls_pos is given) */
    float lm_weight;      /* weight of the mean next-token loss in the objective */
    float cls_weight;     /* weight of the mean task-head log loss over labelled (row, head) */
    const float *value_targets; /* (B, T) the value the target token carries, NaN = none (or
                                   NULL): with value_head, the value forecast's targets */
    float value_weight;   /* weight of the mean value forecast loss, 1/2 (forecast - value)^2 */
    const float *cls_head_weight; /* (K) or NULL. Given: the head term is cls_weight x the sum over
                                     heads k of cls_head_weight[k] x head k's mean log loss over
                                     its labelled rows (a head's share does not depend on how many
                                     rows the others label: multi-task fine-tuning, finetune.h).
                                     NULL: cls_weight x the mean over every labelled (row, head),
                                     the same for one head */
} gpt_extra;

/* The value targets of a window from its continuous inputs (timeline.h layout: input 0 says a
 * token carries a value, input 1 is the value): vt[i] = the value of token i+1, NaN when it has
 * none or lies past the window. feats (B, T, F), vt (B, T). */
void gpt_value_targets(const float *feats, int B, int T, int F, float *vt);

/* gpt_forward with extras (x may be NULL: gpt_forward). The objective backward differentiates
 * is lm_weight * mean next-token loss + cls_weight * mean head log loss; m->mean_loss is the
 * next-token loss, m->cls_loss the head loss (-1 without either), and m->acts.cls_logits
 * (B, K) the head logits. */
int gpt_forward_ex(gpt_model *m, const int *inputs, const int *targets, const gpt_extra *x, int B,
                   int T, int train, cf_err *err);
/* Sets every parameter gradient to zero; backward adds into them (so gradients of several
 * forward/backward pairs accumulate until the next zero). */
void gpt_zero_grad(gpt_model *m);
/* Backward pass of the last forward (which must have had targets), adding into the gradients. */
int gpt_backward(gpt_model *m, cf_err *err);
/* The same, with cls_dx (B, gpt_cls_width), when not NULL, added to the gradient on what the heads
 * read before it goes back through the pooling: the gradient of an objective computed outside
 * the model from m->acts.cls_in (fine-tuning's summary target, ft_summary.h). The forward must
 * have had head positions. NULL: gpt_backward, bit for bit. */
int gpt_backward_ex(gpt_model *m, const float *cls_dx, cf_err *err);
/* One AdamW step at the learning rate of m->step's place in the schedule; then m->step++. */
int gpt_update(gpt_model *m, const gpt_opt_config *opt, gpt_update_stats *stats, cf_err *err);
/* The schedule's learning rate at a step. */
float gpt_lr(const gpt_opt_config *opt, uint64_t step);
/* The step whose parameters the model holds: step, or the earlier step early stopping kept
 * (step still counts the updates done, which a resume and the schedule go by). */
static inline uint64_t gpt_params_step(const gpt_model *m) { return m->kept_step ? m->kept_step : m->step; }

/* Checkpoints: one file, a fixed 256-byte header (magic, version, flags, config, vocabulary
 * hash, step, RNG state, optimizer config), a directory of named tensors with CRC-32s, then
 * the tensors, written atomically. GPT_CKPT_OPTIMIZER adds the AdamW moments, which an exact
 * resume needs; without it the file is an inference-only export. */
#define GPT_CKPT_OPTIMIZER 1u
int gpt_save(const gpt_model *m, const char *path, const gpt_opt_config *opt, unsigned flags,
             cf_err *err);
/* Builds m from a checkpoint (m must not hold a model). expect_vocab_hash (32 bytes) may be
 * NULL; when given, a checkpoint of another vocabulary is refused. opt_out (may be NULL)
 * receives the saved optimizer config. Moments are loaded when present. */
int gpt_load(gpt_model *m, const char *path, const uint8_t *expect_vocab_hash,
             gpt_opt_config *opt_out, cf_err *err);
/* CF_OK when a and b describe the same architecture; otherwise CF_EINPUT and a message that
 * names the first differing field, for "--resume with other flags" errors. */
int gpt_config_compare(const gpt_config *saved, const gpt_config *asked, cf_err *err);

/* ------------------------------------------------------------------------------------------
 * Inference (gpt_sample.c) */

/* A KV cache for n_seq sequences that advance together. It owns its scratch, so inference is
 * re-entrant per cache. */
typedef struct {
    int n_seq;          /* N sequences */
    int max_len;        /* maxT positions per sequence */
    int len;            /* positions filled so far (same for every sequence) */
    int max_rows;       /* rows one gpt_kv_forward call may process: max(N, maxT) */
    int num_threads;
    int num_layers, channels, padded_vocab_size, feat_hidden; /* the model it was made for */
    size_t seq_stride;  /* floats between sequences in k and v: maxT * C */
    float *k;           /* (L, N, maxT, C) keys */
    float *v;           /* (L, N, maxT, C) values */
    float *x;           /* (rows, C) residual stream */
    float *ln;          /* (rows, C) */
    float *qkv;         /* (rows, 3*C) */
    float *atty;        /* (rows, C) */
    float *fch;         /* (rows, 4*C) MLP hidden, GELU applied in place */
    float *branch;      /* (rows, C) */
    float *lnf;         /* (rows, C) final hidden states after the last LayerNorm */
    float *xh;          /* (rows, H) continuous inputs' hidden layer */
    float *logits;      /* (rows, Vp) */
    float *probs;       /* (N, Vp) sampling scratch */
    float *att_scratch; /* (num_threads, maxT) */
    float *memory;
} gpt_kv_cache;

enum { GPT_LOGITS_NONE = 0, GPT_LOGITS_LAST = 1, GPT_LOGITS_ALL = 2 };

int gpt_kv_init(gpt_kv_cache *kv, const gpt_model *m, int n_seq, cf_err *err);
void gpt_kv_free(gpt_kv_cache *kv);
void gpt_kv_reset(gpt_kv_cache *kv);
/* Feeds n_new tokens to each of the first n_active sequences (tokens (n_active, n_new)) at
 * positions len .. len+n_new-1, then len += n_new. Afterwards kv->lnf holds the final hidden
 * states of the n_active * n_new rows, and kv->logits the logits of every row (GPT_LOGITS_ALL)
 * or of each sequence's last row, at row s (GPT_LOGITS_LAST). When n_active < n_seq, the
 * other sequences fall behind: call gpt_kv_broadcast before using them. */
int gpt_kv_forward(const gpt_model *m, gpt_kv_cache *kv, const int *tokens, int n_active,
                   int n_new, int logits_mode, cf_err *err);
/* gpt_kv_forward with continuous inputs feats (n_active * n_new, F), or NULL (zeros). */
int gpt_kv_forward_x(const gpt_model *m, gpt_kv_cache *kv, const int *tokens, const float *feats,
                     int n_active, int n_new, int logits_mode, cf_err *err);
/* The K task-head logits of what the heads read, x (P, gpt_cls_width): out (K). */
void gpt_cls_logits(const gpt_model *m, const float *x, float *out);
/* What the heads read for a sequence of tokens (len), their final hidden states lnf (len, C) and
 * continuous inputs feats (len, F; NULL: zeros): x (P). */
void gpt_cls_input(const gpt_model *m, const int *tokens, const float *lnf, const float *feats, int len, float *x);
/* GPT_POOL_VARIABLES's token-to-slot map (clsmap) is usable: every entry a whole number in
 * -1 .. S-1, -1 past the real vocabulary, and every slot some token's. CF_EINPUT naming the
 * first fault otherwise (gpt_load checks every checkpoint with it); CF_OK in other modes. */
int gpt_slot_map_check(const gpt_model *m, cf_err *err);
/* Copies sequence 0's cached keys and values to every other sequence. */
void gpt_kv_broadcast(const gpt_model *m, gpt_kv_cache *kv);

typedef struct {
    float temperature; /* > 0; 1 samples the model's distribution */
    int top_k;         /* keep the k most likely tokens (ties included); 0 = all */
    uint64_t seed;     /* same seed, prompt and model: same samples, whatever the thread count */
    int stop_token;    /* a sequence ends after emitting it; -1 = never */
} gpt_sample_config;

/* Samples kv->n_seq continuations of max_new tokens of one prompt (prompt_len >= 1, prompt_len +
 * max_new - 1 <= maxT). out is (n_seq, max_new); after a stop token the rest of a row is -1.
 * Ids >= vocab_size (padding) are never sampled. */
int gpt_sample(const gpt_model *m, gpt_kv_cache *kv, const int *prompt, int prompt_len,
               int max_new, const gpt_sample_config *sc, int *out, cf_err *err);
/* The next-token distribution after the prompt: probs (V) at temperature 1. */
int gpt_next_token_probs(const gpt_model *m, gpt_kv_cache *kv, const int *prompt,
                         int prompt_len, float *probs, cf_err *err);
/* The patient embedding: the final hidden state (after the last LayerNorm) at the prompt's
 * last position, emb (C). Timelines longer than maxT must be cut to their last maxT tokens. */
int gpt_embed(const gpt_model *m, gpt_kv_cache *kv, const int *tokens, int len, float *emb,
              cf_err *err);
/* The same two with continuous inputs feats (len, F), or NULL. */
int gpt_next_token_probs_x(const gpt_model *m, gpt_kv_cache *kv, const int *prompt, const float *feats,
                           int prompt_len, float *probs, cf_err *err);
int gpt_embed_x(const gpt_model *m, gpt_kv_cache *kv, const int *tokens, const float *feats, int len,
                float *emb, cf_err *err);

#endif
