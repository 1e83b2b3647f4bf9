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
 * is for the final figures. */
#ifndef CLINFM_TIMELINE_SPLIT_H
#define CLINFM_TIMELINE_SPLIT_H

#include <stdint.h>

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
} split_config;

/* The project default: 80/10/10 with the default key, BLAKE2b-256 (unkeyed) of the ASCII text
 * "clinfm default split key v1". Public, so only for demos and tests. */
void split_config_default(split_config *c);
/* Reads a key file: exactly 32 bytes, or 64 hex digits optionally followed by a newline. */
int split_load_key(split_config *c, const char *path, cf_err *err);
/* Parses "TRAIN/TUNING/HELD_OUT" percentages (e.g. "80/10/10", decimals allowed, sum 100). */
int split_parse_fractions(split_config *c, const char *text, cf_err *err);
/* SPLIT_TRAIN, SPLIT_TUNING or SPLIT_HELD_OUT. */
int split_assign(const split_config *c, int64_t subject_id);
/* A public fingerprint of the key (keyed BLAKE2b-128 of a constant), recorded in vocabularies
 * and token shards so a stage can tell whether two artefacts used the same split; it reveals
 * nothing about the key. */
void split_key_id(const split_config *c, uint8_t id[SPLIT_KEY_ID_BYTES]);
/* "train", "tuning", "held_out"; "?" otherwise. */
const char *split_name(int part);
/* The part named s, or -1. */
int split_from_name(const char *s);

#endif
