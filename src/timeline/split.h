/* Subject splits: every subject belongs to exactly one of train, tuning and held_out.
 *
 * The assignment is a keyed hash of the subject id alone: BLAKE2b-64 (libsodium
 * crypto_generichash) of the id as 8 little-endian bytes, keyed with a 32-byte secret, read as a
 * little-endian uint64, taken modulo 1,000,000 and compared with the cumulative fractions in
 * parts per million. So the split of any subject can be recomputed from (key, id) at any time,
 * by any stage, without a table, and it does not change when subjects are added to or removed
 * from a store. The key is secret so that nobody can predict or steer which records land in
 * held_out; without a key file, a fixed project default is used so demo runs reproduce (see
 * split_config_default and docs/TIMELINE.md). Anything fitted (vocabulary, quantiles, n-gram
 * baselines, the model) sees train only; tuning is for early stopping and choices; held_out
 * is for the final figures.
 *
 * Stable under de-identification. A de-identified store's subject ids are keyed pseudonyms, so
 * hashing them would put a patient on another side of the split under every de-identification
 * key. `clinfm deid --split-key K` therefore picks each subject's pseudonym among candidates so
 * that its percentile (split_percentile) under K equals that of the original id: the split of
 * the identified store and of every de-identified copy is then the same for any whole-percent
 * fractions. Only the percentile carries over, and only for someone holding K.
 *
 * Who was trained on. split_subject_hash and the record print (split_printer) let a model
 * remember its training subjects without keeping their ids: a keyed hash of the id (same store
 * or the same id space) and a keyed hash of the first events of the record, which survives
 * pseudonyms and whole-week date shifts, so an evaluation on the identified store or on another
 * de-identified copy still finds a training patient among its held-out rows.
 *
 * Folds. Cross-validation over patients (split_set_fold) reuses the same positions: with K
 * folds, fold j is the positions [j/K, (j+1)/K) and is held_out; tuning is the tuning share just
 * below it (cyclically: part of fold j-1); train is the rest. It is done by rotating the
 * positions before the fractions are applied, so every stage that recomputes a split (labels,
 * vocabulary, shards, the bundle's fingerprint) agrees on the fold, the K held-out folds
 * partition the patients, and with K dividing 100 the folds survive de-identification like
 * any whole-percent split. */
#ifndef CLINFM_TIMELINE_SPLIT_H
#define CLINFM_TIMELINE_SPLIT_H

#include <stdint.h>

#include "store/store.h"
#include "util/err.h"

enum { SPLIT_TRAIN = 0, SPLIT_TUNING = 1, SPLIT_HELD_OUT = 2, SPLIT_COUNT = 3 };

#define SPLIT_KEY_BYTES 32
#define SPLIT_KEY_ID_BYTES 16
#define SPLIT_PPM 1000000u

typedef struct {
    uint8_t key[SPLIT_KEY_BYTES];
    uint32_t train_ppm;  /* share of train, parts per million */
    uint32_t tuning_ppm; /* share of tuning; held_out gets the rest */
    int default_key;     /* 1 when key is the public project default */
    uint32_t rotate_ppm; /* positions are rotated by this before the fractions (folds; 0: none) */
    int fold, folds;     /* the fold this split holds out, of folds (0 / 0: no folds) */
} split_config;

/* The project default: 80/10/10 with the default key, BLAKE2b-256 (unkeyed) of the ASCII text
 * "clinfm default split key v1". Public, so only for demos and tests. */
void split_config_default(split_config *c);
/* Reads a key file: exactly 32 bytes, or 64 hex digits optionally followed by a newline. */
int split_load_key(split_config *c, const char *path, cf_err *err);
/* Parses "TRAIN/TUNING/HELD_OUT" percentages (e.g. "80/10/10", decimals allowed, sum 100). */
int split_parse_fractions(split_config *c, const char *text, cf_err *err);
/* Parses "J/K" (fold J of K, 0-based; K divides 100, 2 <= K <= 100) and makes fold J the
 * held-out share 1/K, keeping the tuning share (it must leave train some room); train gets the
 * rest. Call after the fractions and the key are set. */
int split_parse_fold(split_config *c, const char *text, cf_err *err);
int split_set_fold(split_config *c, int fold, int folds, cf_err *err);
/* SPLIT_TRAIN, SPLIT_TUNING or SPLIT_HELD_OUT. */
int split_assign(const split_config *c, int64_t subject_id);
/* The subject's position in [0, SPLIT_PPM) under the key; split_assign compares it with the
 * fractions. */
uint32_t split_bucket(const split_config *c, int64_t subject_id);
/* The position's whole percent, 0..99: all a whole-percent split depends on. */
static inline int split_percentile(const split_config *c, int64_t subject_id) {
    return (int)(split_bucket(c, subject_id) / (SPLIT_PPM / 100));
}
/* 1 when both fractions are whole percentages (then de-identification keeps the split). */
static inline int split_whole_percent(const split_config *c) {
    return c->train_ppm % (SPLIT_PPM / 100) == 0 && c->tuning_ppm % (SPLIT_PPM / 100) == 0;
}
/* A keyed 64-bit hash of a subject id (under the split key; not the bucket's hash). */
uint64_t split_subject_hash(const split_config *c, int64_t subject_id);

/* The record print: the first SPLIT_PRINT_EVENTS timed events of a subject (every event of the
 * last timestamp reached included), without identifier events (PHI//), the birth date (capped
 * by de-identification) and text values, as (time since the first of them, code, value),
 * sorted within each timestamp; de-identification keeps all of that (whole-week shifts keep
 * intervals). A record with fewer than SPLIT_PRINT_MIN_EVENTS such events at fewer than
 * SPLIT_PRINT_MIN_TIMES times gets no print: short records collide too easily. A year-only date
 * policy (safe-harbor) changes intervals, so prints do not match across it. */
#define SPLIT_PRINT_EVENTS 32
#define SPLIT_PRINT_MIN_EVENTS 8
#define SPLIT_PRINT_MIN_TIMES 3
typedef struct {
    const store *s;
    uint64_t *code_hash; /* (C) unkeyed hash of each code string */
    uint8_t *skip;       /* (C) 1: never part of a print */
} split_printer;
int split_printer_init(split_printer *p, const store *s, cf_err *err);
void split_printer_free(split_printer *p);
/* Keyed hash of subject index si's record print into *out; 0 when the record is too short. */
int split_record_hash(const split_printer *p, const split_config *c, uint64_t si, uint64_t *out);
/* A public fingerprint of the key (keyed BLAKE2b-128 of a constant), recorded in vocabularies
 * and token shards so a stage can tell whether two artefacts used the same split; it reveals
 * nothing about the key. */
void split_key_id(const split_config *c, uint8_t id[SPLIT_KEY_ID_BYTES]);
/* The split as a JSON object (cJSON; the caller owns it), the one description every file that
 * records a split writes: "key_id" (hex split_key_id), then with SPLIT_JSON_DEFAULT_KEY
 * "default_key" (true for the public project key), "train_ppm", "tuning_ppm", and "rotate_ppm",
 * "fold", "folds" when c has folds, or always with SPLIT_JSON_FOLDS_ALWAYS (a record that is
 * compared field by field: a preparation's inputs). NULL when out of memory. */
#define SPLIT_JSON_DEFAULT_KEY 1u
#define SPLIT_JSON_FOLDS_ALWAYS 2u
struct cJSON;
struct cJSON *split_config_json(const split_config *c, unsigned flags);
/* "train", "tuning", "held_out"; "?" otherwise. */
const char *split_name(int part);
/* The part named s, or -1. */
int split_from_name(const char *s);

#endif
