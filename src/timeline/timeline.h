/* Patient timelines as tokens: encoding one subject of a store with a vocabulary, printing it,
 * token shards for training, and n-gram baselines.
 *
 * A subject's sequence is
 *   prefix:  one token per static slot (e.g. GENDER//F, RACE//[NONE], MARITAL_STATUS//[NONE]),
 *            then [AGE a-b] and [YEAR y-z] at the time of the first timeline event
 *   stream:  for each event in store order (time, then provenance):
 *              time-gap tokens when its time is at least 5 minutes after the previous event's,
 *              a special marker ([ADMISSION_START], [ICU_END], [DEATH], ...) when the code has one,
 *              the code's token(s) (one, or its ICD parts; unknown codes become NS//[UNK]),
 *              [Qd] when the code has decile cut points and the event a numeric value
 *              (not in the vocabulary's VOCAB_VALUES_EMBED mode)
 *   [EOT]    at the time of the last event.
 * The token that stands for a value ([Qd], or in embed mode the code token itself) also
 * carries it as a number, normalised by the code's train deciles (vocab_value_norm), in
 * timeline_seq.values; timeline_token_features turns values and times into the model's
 * continuous inputs.
 * MEDS_BIRTH gives the age tokens and is not a token itself. Static (time-less) facts fill the
 * slots; timed events of a slot's namespace (RACE//... at each admission) appear in the stream
 * only when they change the slot's value. Events identical to an earlier one at the same time
 * (same code and value) are dropped. Each token carries the time of its event; gap tokens carry
 * the time of the event they lead to, so "all tokens with time <= t" is exactly the history
 * known at time t.
 *
 * Encoding is a pure function of (vocabulary, the subject's events): same input, same tokens. */
#ifndef CLINFM_TIMELINE_TIMELINE_H
#define CLINFM_TIMELINE_TIMELINE_H

#include <stdint.h>
#include <stdio.h>

#include "store/store.h"
#include "timeline/split.h"
#include "timeline/vocab.h"
#include "util/err.h"

/* One encoded subject. Caller-owned; reuse it across subjects to avoid allocations. */
typedef struct {
    uint32_t *tokens;   /* (len) token ids */
    int64_t *times;     /* (len) event time of each token (TIME_NULL when the subject has none) */
    float *values;      /* (len) normalised numeric value the token carries, NaN for none */
    size_t len, cap;
    uint32_t n_prefix;  /* the static prefix: tokens[0 .. n_prefix) */
    int64_t subject_id;
    int64_t birth;      /* from MEDS_BIRTH, or TIME_NULL */
    /* scratch for dropping repeated events within one timestamp */
    uint64_t *seen_key;
    uint32_t *seen_gen;
    size_t seen_cap, seen_used;
    uint32_t gen;
} timeline_seq;

void timeline_seq_init(timeline_seq *q);
void timeline_seq_free(timeline_seq *q);
/* How many leading tokens are known at time t (inclusive): the prefix plus every token whose
 * time is <= t. The history to prompt a model with at a prediction time. */
size_t timeline_seq_known_at(const timeline_seq *q, int64_t t);

/* The per-store part of encoding (each store code's tokens), built once, and a store cursor that
 * reads a subject's events (a block decoded at a time when the store was opened with
 * store_open_summary). One thread at a time per encoder: threads that encode in parallel each
 * make their own encoder (and timeline_seq). */
typedef struct timeline_encoder timeline_encoder;

typedef struct {
    uint64_t codes;            /* store codes */
    uint64_t codes_unknown;    /* codes that map (wholly or partly) to an unknown token */
    uint64_t codes_split;      /* codes written as ICD parts */
    uint64_t codes_quantised;  /* codes with decile cut points */
} timeline_encoder_stats;

int timeline_encoder_new(timeline_encoder **out, const vocab *v, const store *s, cf_err *err);
void timeline_encoder_free(timeline_encoder *e);
const timeline_encoder_stats *timeline_encoder_get_stats(const timeline_encoder *e);
/* Encodes subject index k (0 .. n_subjects-1) of the encoder's store into q. */
int timeline_encode(const timeline_encoder *e, uint64_t k, timeline_seq *q, cf_err *err);

/* The static prefix for a window that starts at time t: slot values (n_slots tokens), then the
 * age and year tokens at t. Returns the number of tokens written to out (n_slots + 2). */
uint32_t timeline_prefix(const vocab *v, const uint32_t *slot_values, int64_t birth, int64_t t, uint32_t *out);

/* Prints subject k as readable tokens: a header line, the prefix, then one line per event
 * time ("time  token token ..."). show_ids appends each token's id as "#id". sp (may be NULL)
 * names the subject's split. limit > 0 stops after that many lines of events. */
int timeline_print_subject(FILE *out, const vocab *v, const store *s, uint64_t k, const split_config *sp,
                           int show_ids, uint64_t limit, cf_err *err);

/* ------------------------------------------------------------------------------------------
 * Continuous inputs: what the model is told beside each token id (gpt.h n_features).
 *
 *   0  1 when the token carries a value, else 0
 *   1  the normalised value (vocab_value_norm), 0 without one
 *   2  log(1 + hours since the previous event time) / 2: the gap before this token's event
 *      (0 for the first event, for tokens of the static prefix, and within one time)
 *   3  log(1 + hours since the record's first event) / 4
 *   4  hours since the record's first event / 24, at most 2: resolves the first two days
 *      (an ICU stay's usual window) linearly where the log compresses them
 *   5  1 for a static-prefix token (a fresh prefix inside a window too), else 0
 * Times come from the tokens' own times, so they are exactly what the prompt knows. The set is
 * fixed by TIMELINE_FEATURES_VERSION; a model records how many inputs it was trained with. */
#define TIMELINE_N_FEATURES 6
#define TIMELINE_FEATURES_VERSION 1

/* The inputs of one token at time t (prev_t: the latest earlier event time of the record,
 * TIME_NULL for none; t0: the record's first event time) carrying value (NaN: none). */
void timeline_token_features(float out[TIMELINE_N_FEATURES], int is_prefix, int64_t t, int64_t prev_t, int64_t t0,
                             float value);
/* The inputs of tokens [0, n) of one record whose times and values are given, out (n, F):
 * tokens [0, n_prefix) are its static prefix, t0 the time of its first event. prev_t of the
 * first token is prev0 (TIME_NULL at a record's start). */
void timeline_features(float *out, const int64_t *times, const float *values, size_t n, size_t n_prefix, int64_t t0,
                       int64_t prev0);
/* The same, piece by piece: run carries the state from one piece to the next (start it at
 * {prev0, TIME_NULL}); n_prefix counts the piece's own prefix tokens. Pieces make exactly the
 * inputs one call over their concatenation makes. */
typedef struct {
    int64_t prev, cur; /* the previous event time and the current one */
} timeline_feature_run;
void timeline_features_run(timeline_feature_run *run, float *out, const int64_t *times, const float *values, size_t n,
                           size_t n_prefix, int64_t t0);

/* ------------------------------------------------------------------------------------------
 * Token shards: every token of one split, mmap-able, for training; times and values coded by
 * blocks so a shard is about a third of the flat arrays it replaces (docs/TIMELINE.md).
 *
 * File layout, version 3 (little-endian; sections 64-byte aligned):
 *   header (256 bytes): magic "CLINFMTK", version, split, token width (2 or 4 bytes), counts,
 *     the vocabulary hash, the split key id, section offsets, BLAKE2b-256 of SUBJECTS, of
 *     TOKENS and of (the hashes of INDEX and DATA), the block size, the header's own hash
 *   SUBJECTS  n_subjects x 32 bytes: subject_id i64, first token u64, n_tokens u32,
 *             n_prefix u32, birth i64
 *   TOKENS    uint16 or uint32 [n_tokens]: the subjects' sequences back to back
 *   INDEX     per block of 128 tokens (global positions, blocks run across subjects):
 *             its DATA offset u64, its first token's time i64
 *   DATA      per block: time unit, the bitmap of tokens whose time differs from the token
 *             before, those deltas as varints in the unit, the bitmap of tokens carrying a
 *             value, those values as float32 (bit-exact: what the encoder made)
 * Random access: a token is an array read; a time or value decodes its block (128 tokens).
 * Versions 1 and 2 (flat int64 times and float32 values, 14 bytes a token) are refused with a
 * request to prepare again; preparation records the version, so it rebuilds them by itself. */
#define TIMELINE_SHARD_VERSION 3

typedef struct {
    int64_t subject_id;
    uint64_t first;     /* index of its first token in TOKENS */
    uint32_t n_tokens;
    uint32_t n_prefix;
    int64_t birth;
} timeline_shard_subject;

typedef struct {
    void *map;
    size_t map_len;
    uint32_t split, token_bytes;
    uint64_t n_subjects, n_tokens;
    uint8_t vocab_hash[VOCAB_HASH_BYTES];
    uint8_t split_key_id[SPLIT_KEY_ID_BYTES];
    const uint8_t *subjects;   /* (n_subjects * 32) records; read with timeline_shard_get_subject */
    const void *tokens;        /* uint16_t or uint32_t (n_tokens) */
    const uint8_t *index;      /* (n_blocks * 16) */
    const uint8_t *data;       /* (data_len) */
    uint64_t n_blocks, data_len;
    uint32_t version;
    const uint8_t *section_hash[3];
} timeline_shard;

typedef struct {
    uint64_t subjects, tokens, max_tokens;
} timeline_shard_stats;

/* Writes every subject of split `part` (SPLIT_*) of s, under sp, to path, atomically. The
 * vocabulary must have been built with the same split key and fractions (checked). */
int timeline_write_shards(const vocab *v, const store *s, const split_config *sp, int part, const char *path,
                          timeline_shard_stats *stats, cf_err *err);
/* Maps a shard. expect (may be NULL): refuse a shard made with another vocabulary. */
int timeline_shard_open(timeline_shard *sh, const char *path, const vocab *expect, cf_err *err);
void timeline_shard_close(timeline_shard *sh);
/* Recomputes the section checksums and decodes every block (a full read). */
int timeline_shard_verify(const timeline_shard *sh, cf_err *err);
void timeline_shard_get_subject(const timeline_shard *sh, uint64_t i, timeline_shard_subject *out);
static inline uint32_t timeline_shard_token(const timeline_shard *sh, uint64_t i) {
    return sh->token_bytes == 2 ? ((const uint16_t *)sh->tokens)[i] : ((const uint32_t *)sh->tokens)[i];
}
/* Times and values of tokens [g, g + n) (either output may be NULL). A damaged block (which
 * timeline_shard_verify reports) reads as TIME_NULL and NaN, never outside the file. */
void timeline_shard_read(const timeline_shard *sh, uint64_t g, size_t n, int64_t *times, float *values);
int64_t timeline_shard_time(const timeline_shard *sh, uint64_t i);
float timeline_shard_value(const timeline_shard *sh, uint64_t i); /* NaN: none */
/* The subject whose tokens include global position pos (< n_tokens). O(log S). */
uint64_t timeline_shard_subject_at(const timeline_shard *sh, uint64_t pos);
/* A training window of T inputs starting at global position pos: when pos falls after the
 * subject's prefix, the window starts with a fresh prefix (slot values at pos, age and year at
 * pos's time), then tokens pos, pos+1, ... continuing into the following subjects; [PAD] after
 * the shard's end. targets[i] is the token after inputs[i], or -1 where that token is a prefix
 * token (no loss on the static prefix, ETHOS-style) or padding. T >= n_slots + 3. Returns the
 * number of prefix tokens placed at the window's start (0 when pos is in a native prefix, so
 * the window starts at the subject's first token). */
int timeline_shard_window(const timeline_shard *sh, const vocab *v, uint64_t pos, int T, int *inputs, int *targets);
/* The same window with its continuous inputs feats (T, TIMELINE_N_FEATURES) (may be NULL). */
int timeline_shard_window_x(const timeline_shard *sh, const vocab *v, uint64_t pos, int T, int *inputs, int *targets,
                            float *feats);

/* ------------------------------------------------------------------------------------------
 * N-gram baselines: what a model must beat. Counts come from the train split; the loss is
 * the mean negative natural log probability of each non-prefix token (stream tokens and [EOT])
 * of a split given the previous token. Unigram: add-one smoothing. Bigram: Witten-Bell
 * interpolation with the unigram. */
typedef struct {
    uint64_t train_subjects, train_tokens;   /* tokens: all of them, prefix included */
    uint64_t eval_subjects[SPLIT_COUNT], eval_targets[SPLIT_COUNT];
    double unigram[SPLIT_COUNT], bigram[SPLIT_COUNT]; /* nats per target token; NaN if none */
    uint64_t tokens_total[SPLIT_COUNT];      /* all tokens of the split's subjects */
    uint64_t tokens_max[SPLIT_COUNT];        /* longest subject */
    uint64_t tokens_median[SPLIT_COUNT];
} timeline_baseline;

int timeline_ngram_baseline(const vocab *v, const store *s, const split_config *sp, timeline_baseline *out,
                            cf_err *err);

#endif
