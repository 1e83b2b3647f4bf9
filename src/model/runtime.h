/* The model runtime: what every model-backed predictor (evaluation, service, benchmark) needs on
 * top of the bare GPT of gpt.h.
 *
 *   rt_model     a trained checkpoint with its vocabulary, from the model bundle `clinfm train`
 *                writes (model/bundle.h); the checkpoint must carry that vocabulary's hash.
 *   rt_encoder   turns a patient's events into the tokens the model was trained on, through the
 *                timeline encoder itself (src/timeline), so prediction-time tokens can never
 *                drift from training-time tokens. It is given only the events a predictor may
 *                see: for a store row, [subject start, history_end) minus never-input codes, so
 *                nothing after the prediction time is ever read (the encoder is run on a one-
 *                subject view of those events, not on the whole record cut afterwards).
 *   rt_prompt    the encoded history, without the [EOT] the encoder closes every timeline with
 *                (the history is not over), cut to its last tokens when it exceeds the context
 *                with a fresh static prefix in front, as training windows are.
 *   rt_session   a KV cache and scratch for one thread: next-token probabilities, patient
 *                embeddings, and batched sampling of N futures with a time budget.
 *
 * Models are read-only after rt_open, so one rt_model serves any number of sessions, one per
 * thread. Nothing here logs or reports event contents. */
#ifndef CLINFM_MODEL_RUNTIME_H
#define CLINFM_MODEL_RUNTIME_H

#include <stddef.h>
#include <stdint.h>

#include "model/bundle.h"
#include "model/gpt.h"
#include "store/store.h"
#include "timeline/timeline.h"
#include "timeline/vocab.h"
#include "util/err.h"

typedef struct {
    gpt_model m;
    vocab v;
    int64_t *gap_lower;  /* (V) lower edge in µs of each gap token's bin; -1 for other tokens */
    char *path;          /* the checkpoint's path */
    char version[64];    /* "step N, vocab XXXXXXXX": names this exact model in reports */
} rt_model;

/* Opens the model bundle at model_path (model/bundle.h; every part checked against its
 * manifest) with its vocabulary, or vocab_path when given. The checkpoint must have been trained
 * with that vocabulary (hash checked). */
int rt_open(rt_model *rm, const char *model_path, const char *vocab_path, cf_err *err);
/* The same from a bundle already open (the caller keeps it, for heads and the split). */
int rt_open_bundle(rt_model *rm, const model_bundle *b, const char *vocab_path, cf_err *err);
void rt_close(rt_model *rm);

/* ------------------------------------------------------------------------------------------
 * Encoding histories */

typedef struct {
    int *tokens;          /* (len) token ids */
    int64_t *times;       /* (len) time of each token (the prefix: that of the first kept token) */
    float *feats;         /* (len, TIMELINE_N_FEATURES) continuous inputs of each token, computed
                             on the whole history before any cut (timeline_features) */
    int len, cap;
    int n_prefix;         /* tokens[0 .. n_prefix) are the static prefix */
    int64_t birth;        /* TIME_NULL when unknown */
    int64_t last_time;    /* time of the last history event, TIME_NULL when there is none */
    int64_t cut_time;     /* time of the first kept stream token when the history was cut,
                             TIME_NULL when it was not */
    size_t history_len;   /* tokens of the whole history before any cut (without [EOT]) */
    int64_t record_start; /* time of the record's first event (the clock of the inputs) */
    int64_t prev_time;    /* the event time before last_time, TIME_NULL when there is none */
} rt_prompt;

/* The continuous inputs of p from position off on, or NULL when the model takes none. */
static inline const float *rt_prompt_feats(const rt_model *rm, const rt_prompt *p, int off) {
    return rm->m.config.n_features ? p->feats + (size_t)off * TIMELINE_N_FEATURES : NULL;
}

void rt_prompt_free(rt_prompt *p);

typedef struct rt_encoder rt_encoder;

/* An encoder for the codes of store s (rt_encode_history reads s's events). */
int rt_encoder_new_store(rt_encoder **out, const rt_model *rm, const store *s, cf_err *err);
/* An encoder over a caller-given code dictionary: event code k means codes[k] (copied). */
int rt_encoder_new_codes(rt_encoder **out, const rt_model *rm, const char *const *codes, size_t n_codes,
                         cf_err *err);
void rt_encoder_free(rt_encoder *e);

/* Events to encode (the inputs of rt_encode_events), in arrays grown as needed: the scratch of a
 * caller that filters a history before encoding it, kept from one record to the next. */
typedef struct {
    uint32_t *code;
    int64_t *time;
    float *num;
    size_t cap;
} rt_events;
/* Room for n events (the contents are kept); CF_EINTERNAL when out of memory. */
int rt_events_reserve(rt_events *ev, size_t n, cf_err *err);
void rt_events_free(rt_events *ev);

/* Encodes n events (codes index the encoder's dictionary; sorted by time, static facts with
 * TIME_NULL first, as in a store) into a prompt of at most max_len tokens (0: the model's
 * context; more than the context only for a caller that runs a longer-context copy of the
 * model, as --ft-context fine-tuning does). A history that does not fit is cut at the start of a timestamp (never between two
 * tokens of one time, unless one time alone overflows the context). Not thread-safe per
 * encoder. */
int rt_encode_events(rt_encoder *e, const uint32_t *code, const int64_t *time, const float *numeric, size_t n,
                     int max_len, rt_prompt *out, cf_err *err);
/* The same, keeping only stream tokens timed at or after from_time (TIME_NULL: no such limit)
 * before the length cut: occlusion variants use the full record's cut_time, so they see the same
 * window minus the occluded events. */
int rt_encode_events_from(rt_encoder *e, const uint32_t *code, const int64_t *time, const float *numeric, size_t n,
                          int max_len, int64_t from_time, rt_prompt *out, cf_err *err);
/* Encodes the events [s->subject_start[k], history_end) of subject k of the encoder's store,
 * skipping events whose code c has input_ok[c] == 0 (input_ok may be NULL). */
int rt_encode_history(rt_encoder *e, uint64_t k, uint64_t history_end, const uint8_t *input_ok, int max_len,
                      rt_prompt *out, cf_err *err);

/* ------------------------------------------------------------------------------------------
 * Sessions: inference for one thread */

typedef struct {
    const rt_model *rm;
    gpt_kv_cache kv;
    int n_seq;
    int max_threads;   /* threads the cache's attention scratch was sized for */
    float *probs;      /* (Vp) scratch */
    /* rollout state, sized on first use */
    int *hist;         /* (n_seq, hist_cap) each rollout's tokens: prompt, then generated */
    int64_t *htime;    /* (n_seq, hist_cap) */
    float *hfeat;      /* (n_seq, hist_cap, TIMELINE_N_FEATURES) their continuous inputs */
    float *ffeed;      /* (max_rows, TIMELINE_N_FEATURES) inputs of the rows fed */
    int hist_cap;
    int *feed;         /* (max_rows) */
    /* rt_embed_ref / rt_embed_near: sequence 1 keeps a reference prompt's keys and values */
    int *ref;          /* (maxT) the reference prompt's tokens */
    float *ref_feat;   /* (maxT, TIMELINE_N_FEATURES) and their continuous inputs */
    int ref_len;       /* 0: no reference */
    int dirty_from;    /* sequence 0 differs from the reference from this position on */
    /* rt_embed_near_batch scratch (runtime_batch.c): one block laid out on first use, reused */
    float *bmem;
    float *bx, *bln, *bqkv, *batty, *bfch, *bbranch; /* (brows, C or 3C or 4C) */
    float *bscore;     /* (maxT, maxT) one head's attention scores */
    float *bxh;        /* (brows, H) continuous inputs' hidden layer */
    float *bfeat;      /* (brows, TIMELINE_N_FEATURES) */
    int *btok, *bpos;  /* (brows) token and position of each row */
    int brows;         /* rows one batched forward may hold */
} rt_session;

/* A session for up to n_seq parallel sequences (rollouts per call). */
int rt_session_init(rt_session *ss, const rt_model *rm, int n_seq, cf_err *err);
void rt_session_free(rt_session *ss);
/* Threads for this session's attention and for the calling thread's other OpenMP and OpenBLAS
 * work (per thread: a server thread can run its requests on one core while another runs
 * its own). Small models on a shared machine run fastest on one thread: every kernel's barrier
 * waits for a core someone else may hold (rollouts of a 2-layer, d_model 64 model measured 3-4x
 * faster on one thread than on two while another job ran). */
void rt_session_threads(rt_session *ss, int n);

/* The next-token distribution after the prompt: probs (V). */
int rt_next_probs(rt_session *ss, const rt_prompt *p, float *probs, cf_err *err);
/* The patient embedding at the prompt's last token: emb (C), the final hidden state. */
int rt_embed(rt_session *ss, const rt_prompt *p, float *emb, cf_err *err);
/* rt_embed that also keeps p as the session's reference (needs n_seq >= 2). */
int rt_embed_ref(rt_session *ss, const rt_prompt *p, float *emb, cf_err *err);
/* rt_embed for a prompt that shares a first part with the reference: the keys and values of
 * the shared positions are reused and only the rest runs through the network (occlusion
 * variants of one patient). The same result as rt_embed up to float rounding. */
int rt_embed_near(rt_session *ss, const rt_prompt *p, float *emb, cf_err *err);
/* How many leading positions of p equal the reference's (tokens and continuous inputs). */
int rt_same_as_ref(const rt_session *ss, const rt_prompt *p);
/* rt_embed_near for n prompts at once: emb (n, C), row i for ps[i]. All prompts' changed rows
 * go through the network together (matrix products over every row of the call; attention
 * reads the reference's cached keys in place), so a card's occlusion variants cost a few
 * batched passes instead of one pass each. Equal to rt_embed_near up to float rounding; the
 * reference (rt_embed_ref) is left as it was. Scratch is allocated once per session. */
int rt_embed_near_batch(rt_session *ss, const rt_prompt *const *ps, int n, float *emb, cf_err *err);

/* What a rollout is looking for. Times are µs after the prompt's last event; the generated
 * stream's clock is the sum of its gap tokens' lower edges (a lower bound on elapsed time). */
typedef struct {
    const uint8_t *outcome;  /* (V) 1: reaching this token is the outcome */
    const uint8_t *terminal; /* (V) 1: this token closes the window without the outcome ([EOT],
                                discharge, ...); [EOT] and [PAD] always do */
    int64_t start_us;        /* outcome tokens count only once the clock is at least this */
    int64_t budget_us;       /* the window closes once the clock exceeds this; INT64_MAX: never */
    int64_t horizon_us;      /* for a window without an end in time (budget INT64_MAX): stop
                                once the clock passes this and count the rollout as not having
                                reached the outcome, in n_horizon (0: no horizon) */
    int n_rollouts;          /* <= the session's n_seq */
    int max_new;             /* tokens per rollout at most */
    uint64_t seed;           /* rollout r draws from its own stream seeded by (seed, r) */
    float temperature;       /* 1 samples the model's distribution */
} rt_rollout_spec;

typedef struct {
    int n;             /* rollouts */
    int n_event;       /* reached an outcome token inside the window */
    int n_closed;      /* the window closed first (terminal token or time budget) */
    int n_open;        /* max_new tokens without either */
    int n_horizon;     /* of n_closed: stopped by the time horizon (horizon_us) */
    uint64_t generated;/* tokens sampled, all rollouts */
    int reprimes;      /* times the context filled and was rebuilt from the last tokens */
} rt_rollout_result;

/* Samples sp->n_rollouts futures of the prompt, all advancing together through the KV cache;
 * when the context fills, each live rollout continues from a fresh prefix and its last maxT/2
 * tokens. A rollout ends at its first outcome token (inside the window), terminal token, clock
 * past the budget, or after max_new tokens. Same seed, prompt and model: same result. */
int rt_rollouts(rt_session *ss, const rt_prompt *p, const rt_rollout_spec *sp, rt_rollout_result *res,
                cf_err *err);

/* One-step read-out: the probability that the next event is an outcome token, read from the
 * next-token distribution directly: P(next token in outcome) plus, for each gap token whose
 * lower edge is within budget_us, P(gap) x P(outcome token right after that gap). Needs a
 * session of at least VOCAB_N_GAPS + 1 sequences. */
int rt_readout(rt_session *ss, const rt_prompt *p, const uint8_t *outcome, int64_t budget_us, double *risk,
               cf_err *err);

#endif
