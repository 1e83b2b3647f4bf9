/* The data a model is trained on, prepared from a store in one call: the vocabulary (read from a
 * file, or fitted on the train split and saved) and the token shards of every split
 * (<dir>/train.tokens, tuning.tokens, held_out.tokens). `clinfm vocab --shards` and `clinfm train`
 * both prepare through timeline_prepare, so the two cannot drift apart.
 *
 * The vocabulary is fitted before any shard is written (the shards are encoded with it); a failure
 * leaves the files already written as they are (each is written atomically), never half a file. */
#ifndef CLINFM_TIMELINE_PREPARE_H
#define CLINFM_TIMELINE_PREPARE_H

#include "store/store.h"
#include "timeline/split.h"
#include "timeline/timeline.h"
#include "timeline/vocab.h"
#include "util/err.h"

typedef struct {
    const char *vocab_in;   /* read this vocabulary; NULL: fit one on train with vo */
    const char *vocab_out;  /* where a fitted vocabulary is saved; NULL: not saved */
    vocab_options vo;       /* for fitting */
    const char *shard_dir;  /* created when absent; NULL: no shards */
    int reuse_shards;       /* keep a shard already there that was made with this vocabulary (a
                               resumed training run); otherwise every shard is written */
} timeline_prepare_options;

/* Fills o with the defaults: fit with vocab_options_default, save nowhere, no shards. */
void timeline_prepare_options_default(timeline_prepare_options *o);

/* Prepares s's data under split sp: *v is the vocabulary (the caller frees it with vocab_free);
 * stats[p] counts shard p's subjects and tokens (max_tokens only for a shard written now) and
 * shard_path[p] names it, when o->shard_dir is set. */
int timeline_prepare(vocab *v, const store *s, const split_config *sp, const timeline_prepare_options *o,
                     timeline_shard_stats stats[SPLIT_COUNT], char shard_path[SPLIT_COUNT][4300], cf_err *err);

#endif
