/* The card cache: scores the service has already computed, so a repeated patient-view (or /v1
 * risk call) for a record that has not changed is a lookup instead of a model run with
 * occlusion attribution.
 *
 * What is kept is the predictor's answer (serve_score: risk, interval, reasons as event
 * indices), not the card: every request still builds its card from the record it loaded (with
 * a fresh card uuid), is audited with its own row and card rows, and is counted in the metrics.
 * The key is a BLAKE2b-256 digest of
 *   - the predictor's identity: its checksum (network parameters and head files, or the
 *     reference model's definition), name and version;
 *   - the task id;
 *   - the patient id the request was about;
 *   - the prediction time the predictor uses (serve_patient_effective_time);
 *   - a 64-bit BLAKE2b hash of exactly the events the predictor sees: every event at or before
 *     the prediction time, in order, with its index, code, time and numeric value. Text values,
 *     descriptions and provenance are not read by any predictor and are not in the key; events
 *     after the prediction time are not either.
 * One more event, a changed value or time, or another prediction time is another key. Neither
 * ids nor events are stored, only digests. Entries are evicted least recently used first.
 * Thread-safe (one mutex; a lookup or insert is a few hundred nanoseconds); two concurrent
 * misses on one key both compute, and the second insert refreshes the entry. */
#ifndef CLINFM_SERVE_SERVE_CACHE_H
#define CLINFM_SERVE_SERVE_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "serve/predictor.h"

typedef struct serve_cache serve_cache;

typedef struct {
    uint8_t d[32];
} serve_cache_key;

/* A cache of capacity entries (capacity >= 1), allocated whole here. */
int serve_cache_new(serve_cache **out, size_t capacity, cf_err *err);
void serve_cache_free(serve_cache *c);

/* The 64-bit hash of the events p's predictor sees (see above). */
uint64_t serve_cache_events_hash(const serve_patient *p);

/* The key of (predictor, task, patient id, p's prediction time and events). */
void serve_cache_key_make(serve_cache_key *key, const serve_predictor *pred, const char *task_id,
                          const char *patient_id, const serve_patient *p);

/* 1 and *out filled when key is cached (it becomes the most recently used); 0 otherwise. */
int serve_cache_get(serve_cache *c, const serve_cache_key *key, serve_score *out);
/* Stores (or refreshes) key's score, evicting the least recently used entry when full. */
void serve_cache_put(serve_cache *c, const serve_cache_key *key, const serve_score *score);
/* Entries held now. */
size_t serve_cache_size(serve_cache *c);

#endif
