/* The data a model is trained on, prepared from a store once: the vocabulary (read from a file,
 * or fitted on the train split), the token shards of every split (<dir>/train.tokens,
 * tuning.tokens, held_out.tokens) and the n-gram baselines. `clinfm vocab --shards` and
 * `clinfm train` both prepare through timeline_prepare, so the two cannot drift apart.
 *
 * Preparation once: with a shard directory, the preparation is recorded in <dir>/prepared.json
 * (written last, atomically) beside a copy of its vocabulary (<dir>/vocab.bin). The record
 * names what the preparation was made from (the store's header fingerprint, which covers every
 * section's checksum; the split key id and fractions; the vocabulary's options, or the hash of
 * a given vocabulary; the vocabulary and token shard format versions, so shards of an older
 * format are rebuilt, not refused) and what it made (the vocabulary hash; each shard's size and header
 * BLAKE2b, the header holding the checksums of its sections; the baselines). A later call with
 * the same inputs whose files still match the record reuses everything and reads nothing of
 * the store; any difference (another store, split, options or vocabulary; a shard rewritten,
 * truncated or missing) is named in `note` and the preparation is rebuilt.
 *
 * The vocabulary is fitted before any shard is written (the shards are encoded with it); a
 * failure leaves the files already written as they are (each is written atomically, and the
 * record is removed before a rebuild starts), never half a file. */
#ifndef CLINFM_TIMELINE_PREPARE_H
#define CLINFM_TIMELINE_PREPARE_H

#include <stdio.h>

#include "store/store.h"
#include "timeline/split.h"
#include "timeline/timeline.h"
#include "timeline/vocab.h"
#include "util/err.h"

#define TIMELINE_PREPARED_FILE "prepared.json"
#define TIMELINE_PREPARED_VOCAB "vocab.bin"
#define TIMELINE_PREPARED_FORMAT 1

typedef struct {
    const char *vocab_in;   /* read this vocabulary; NULL: fit one on train with vo */
    const char *vocab_out;  /* where the vocabulary is saved (fitted or reused); NULL: not saved */
    vocab_options vo;       /* for fitting */
    const char *shard_dir;  /* created when absent; NULL: no shards (and nothing is reused) */
    int baselines;          /* also the n-gram baselines (kept in the record) */
    int reuse;              /* reuse a matching preparation in shard_dir (default 1); 0: rebuild */
    /* Before a build writes shards: say on room_say (NULL: silent) how much room they need on
     * shard_dir's filesystem, TIMELINE_SHARD_ROOM_PER_EVENT bytes per event of the store, and
     * refuse (CF_EINPUT) without it. Default on; 0 skips it (`--room-check off`). */
    int room_check;
    FILE *room_say;
} timeline_prepare_options;

/* A bound on token-shard bytes per store event, for the room check: the shards measure 6.5 bytes
 * per event (5.3 with `--values embed`) on the MIMIC-IV demo at 1x-100x (docs/SCALE.md); the
 * bound leaves 1.8x for timelines with more tokens per event. */
#define TIMELINE_SHARD_ROOM_PER_EVENT 12

typedef struct {
    timeline_shard_stats stats[SPLIT_COUNT]; /* subjects and tokens of each shard */
    char shard_path[SPLIT_COUNT][4300];      /* when shard_dir is set */
    timeline_baseline base;                  /* when baselines were asked (else NaN losses) */
    int reused;                              /* 1: an earlier preparation was reused whole */
    char note[9000];                         /* why an earlier preparation was not reused ("" if none) */
} timeline_prepared;

/* Fills o with the defaults: fit with vocab_options_default, save nowhere, no shards, no
 * baselines, reuse on. */
void timeline_prepare_options_default(timeline_prepare_options *o);

/* Prepares s's data under split sp into *out; *v is the vocabulary (the caller frees it with
 * vocab_free). */
int timeline_prepare(vocab *v, const store *s, const split_config *sp, const timeline_prepare_options *o,
                     timeline_prepared *out, cf_err *err);

/* timeline_prepare in its two halves, for a caller that opens the store's events only when
 * they are needed (`clinfm train`):
 *
 * timeline_prepare_reusable: when the preparation recorded in o->shard_dir matches s, sp and o,
 * fills *out with out->reused = 1 and loads *v (the caller frees it), as timeline_prepare would;
 * otherwise out->reused = 0 (out->note says why) and nothing is prepared. Reads only the store's
 * header and counts, so s may come from store_open_summary.
 *
 * timeline_prepare_build: prepares what timeline_prepare_reusable (called just before, with the
 * same arguments and out) found not reusable, keeping out's note; s may come from store_open or
 * store_open_summary (the events are read through store cursors, a block at a time). */
int timeline_prepare_reusable(vocab *v, const store *s, const split_config *sp, const timeline_prepare_options *o,
                              timeline_prepared *out, cf_err *err);
int timeline_prepare_build(vocab *v, const store *s, const split_config *sp, const timeline_prepare_options *o,
                           timeline_prepared *out, cf_err *err);

/* The fingerprint of a store: hex BLAKE2b-256 of its header block, which holds every
 * section's checksum, so two stores with the same fingerprint have the same bytes. The one
 * fingerprint of a store: a preparation's record, a bundle's split.json and an evaluation's
 * report all name the store by it. */
void timeline_store_fingerprint(const store *s, char hex[65]);

#endif
