/* The library half of training a model from a store (`clinfm train` is the command-line half):
 * the data order, one optimizer step over the ranks, the evaluation of a split, the ranks'
 * agreement and resynchronisation, starting from another model, the training split kept beside a
 * preparation, and the training summary (train.json) of the bundle.
 *
 * The data order is a pure function of (seed, step): row b of a step's global batch is the
 * window at train_window_pos(seed, step, b, tokens), so a resumed run sees the batches it would
 * have seen. With N ranks (model/dist.h) rank r trains on slots r, r+N, r+2N, ... of each step,
 * so the ranks together see exactly the windows one process with batch N*B would see; the
 * gradients are summed weighted by each rank's target count (the gradient of the global batch's
 * mean loss), and every rank takes the same AdamW step. Functions that talk to the other ranks
 * say "Collective": every rank calls them at the same point. */
#ifndef CLINFM_MODEL_TRAIN_H
#define CLINFM_MODEL_TRAIN_H

#include <stdint.h>

#include "model/bundle.h"
#include "model/gpt.h"
#include "store/store.h"
#include "timeline/split.h"
#include "timeline/timeline.h"
#include "timeline/vocab.h"
#include "util/err.h"

/* What decides which windows each step and evaluation sees (every rank must hold it alike). */
typedef struct {
    int batch;            /* windows per step on each rank */
    uint64_t seed;        /* the data order's (and the initialisation's) seed */
    uint64_t steps;       /* the schedule's length */
    uint64_t stop_after;  /* the last step of this run (<= steps) */
    uint64_t eval_every, save_every;
    int eval_batches;     /* batches of a tuning evaluation */
    int held_out_batches; /* batches of the held-out evaluation; 0: all of it */
} train_plan;

/* Window start for row b of a step: a pure function of (seed, step, b). */
uint64_t train_window_pos(uint64_t seed, uint64_t step, int b, uint64_t n_tokens);

/* One rank's batch: B x T token ids and targets, and for a model with continuous inputs their
 * features (B x T x F) and, with a value head, the value targets (B x T). */
typedef struct {
    int B, T, F;
    int *inputs, *targets; /* (B, T) */
    float *feats;          /* (B, T, F) or NULL */
    float *vtgt;           /* (B, T) or NULL */
} train_batch;
int train_batch_alloc(train_batch *b, const gpt_model *m, int B, cf_err *err);
void train_batch_free(train_batch *b);

/* Fills b with this rank's rows of step `step` of the train shard (slot R + i*N for row i). */
void train_fill_batch(train_batch *b, const timeline_shard *train, const vocab *v, uint64_t seed, uint64_t step);
/* One optimizer step on b: forward (value_weight: the value loss's weight beside the next-token
 * loss), backward, the ranks' gradients averaged, AdamW. m->mean_loss is then the global batch's
 * mean loss. Collective. */
int train_step(gpt_model *m, const gpt_opt_config *opt, train_batch *b, float value_weight, gpt_update_stats *us,
               cf_err *err);

/* Mean loss over target tokens of windows tiling the shard (at most max_windows of them, evenly
 * spaced; 0: all): the same windows every time, so evaluations are comparable across steps. Rank
 * r runs batches r, r+N, ... of those windows and the sums are added across ranks. With b->vtgt
 * (a model with a value head) also the mean value-forecast loss over the tokens that carry a
 * value into *vloss (else NaN): the training step's own value loss is no measure of the tuning
 * rows. b is scratch. Collective. */
int train_eval_shard(gpt_model *m, const timeline_shard *sh, const vocab *v, uint64_t max_windows, train_batch *b,
                     double *loss, uint64_t *targets, double *vloss, cf_err *err);

/* Ranks run the same update on the same averaged gradients, so their states stay equal; but
 * ranks on CPUs of different kinds may round differently. Compares the states (parameters and
 * both AdamW moments) and, if they drifted, copies rank 0's to the others (*resynced = 1).
 * Collective. */
int train_resync_if_drifted(gpt_model *m, int *resynced, cf_err *err);

/* Before the first step, every rank must hold the same plan, optimizer settings, architecture,
 * vocabulary, shards, step, dropout RNG, parameters and moments, or their updates would differ
 * silently. *disagree is NULL when they agree, else what the first difference is about
 * ("--batch", "the vocabulary", ...). Collective. */
int train_agree(const train_plan *p, const gpt_opt_config *opt, const gpt_model *m, const vocab *v,
                const timeline_shard sh[SPLIT_COUNT], const char **disagree, cf_err *err);

/* Threads per rank: user_threads, else with several ranks on a machine and no thread count
 * chosen (OMP_NUM_THREADS, OPENBLAS_NUM_THREADS) each rank's share of the cores it may run on,
 * at least one, so N ranks do not run N x cores threads. The count goes to OpenMP and OpenBLAS
 * as well (a model on one thread whose kernels still open parallel regions of all cores ran
 * about 40 times slower here). Returns the count chosen, or 0 when the defaults stand. */
int train_threads_per_rank(int user_threads);

/* Starts m (built for vocabulary v) from the trained model bundle at path: the transformer's
 * tensors when the two architectures agree, the continuous inputs' MLP when both have the same
 * inputs, the position embeddings of the positions both have, and the token embedding of every
 * token whose string both vocabularies hold, with its value forecast when both models have one
 * (the rest keep their fresh initialisation). Task heads are never copied. This is how a model
 * pretrained on one store is adapted to another. */
typedef struct {
    uint64_t step;    /* the source model's step */
    int inputs;       /* 1: the continuous inputs' MLP was copied */
    int values;       /* the value forecast of shared tokens copied (both models have one) */
    int positions;    /* position embeddings copied */
    uint32_t shared;  /* token embeddings copied (by token string) */
} train_init_report;
int train_init_from(gpt_model *m, const vocab *v, const char *path, train_init_report *rep, cf_err *err);

/* Rank 0's vocabulary and token shards on every rank. The machines need not share a filesystem:
 * a rank whose shard_dir lacks rank 0's shards (by size and header checksum) receives them into
 * it, where the next run finds them; *ranks_received counts those ranks. Every rank but 0 parses
 * the vocabulary into *v. A rank that cannot receive prints why and ends the job (dist_abort).
 * Collective: every rank takes part to the end, whatever fails. */
int train_share_prepared(vocab *v, int have_vocab, const char *shard_dir, char shard_path[SPLIT_COUNT][4300],
                         int *ranks_received, cf_err *err);

/* The bundle's record of the training split (split.json, split_subjects.bin) depends on the
 * store and the split alone, as the preparation does, but reads the first events of every
 * subject (about 20 us each: 0.2 s at 10,000 subjects, minutes at 10 million). So a copy is kept
 * beside the preparation in dir and used while the preparation is reused:
 * train_split_reuse puts the kept copy into b when it names this store (any opening of it) and
 * split key and fractions (*kept = 1); train_split_record records the split anew from s, which
 * must have its events (store_events_open), and keeps the copy (a folder that cannot take it
 * costs the next run the time, nothing else). */
int train_split_reuse(model_bundle *b, const store *s, const split_config *sp, const char *dir, int *kept,
                      cf_err *err);
int train_split_record(model_bundle *b, const store *s, const split_config *sp, const char *dir, cf_err *err);

/* The training summary (the bundle's train.json). */
typedef struct {
    const char *producer; /* "clinfm 0.1.0" */
    int identified;      /* trained on a store not de-identified */
    const char *init;    /* --init's model, or NULL */
    int early_stop;      /* patience, or 0 */
    int batch;           /* per rank */
    uint64_t steps, seed;
    float lr;
    double train_loss, tuning_loss, held_loss; /* NaN: not measured */
    uint64_t held_targets, held_windows[2];    /* windows evaluated, of all */
    double tokens_per_s;
    uint64_t trained_tokens;
} train_summary;
int train_write_summary(const char *path, const train_summary *t, const gpt_model *m, const vocab *v,
                        const timeline_baseline *base, cf_err *err);
/* A run that trained no step (a finished model resumed, to evaluate held_out again) keeps its
 * summary and replaces only the held-out figures. */
int train_patch_summary(const char *path, const train_summary *t, cf_err *err);
/* The global batch (batch x ranks) and seed the summary at path records, which decide the
 * windows each step sees (a resume takes them). */
int train_summary_data(const char *path, long *global_batch, uint64_t *seed, cf_err *err);

#endif
