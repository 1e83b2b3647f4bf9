/* The event store: clinfm's data foundation.
 *
 * One binary file holds every event of every subject, in the MEDS data model:
 *   (subject_id int64, time int64 µs or TIME_NULL, code string, numeric_value float32 or NaN,
 *    text_value string or none)
 * plus provenance (source table, source row) for every event. Events are sorted by subject,
 * then time (static facts, TIME_NULL, first), then provenance. Columns are stored separately
 * (struct of arrays) so a reader touches only the columns it needs. Version 1 was read through
 * mmap as it lay on disk (28 bytes per event); versions 2 and 3 encode the event columns block by
 * block and decode them either all at open (store_open) or a block at a time through a cursor
 * (store_open_summary and store_cursor_*, below). Version 2 (zstd over byte planes, about 5 bytes
 * per event) decoded at a third to a fifth of version 1's read speed; version 3 (written today:
 * bit-packed streams, about 8.5 bytes per event) costs 1.1-1.8x version 1's CPU per pass.
 *
 * Layout (all integers little-endian, every section 64-byte aligned):
 *   header (4096 bytes): magic, format version, flags, counts, section table, BLAKE2b of header
 * Versions 2 and 3 store the event columns encoded, in blocks of 65,536 events (store_format.h
 * describes both encodings: version 2 deltas in byte planes, one zstd frame per block with its
 * checksum; version 3 deltas, ids and values frame-of-reference bit-packed or in block
 * dictionaries, a CRC-32 per block):
 *   EVENT_DATA     bytes         the blocks
 *   EVENT_BLOCKS   {uint64 offset, size, n_events} [ceil(N / 65536)]
 *   SUMMARY        uint64 [3+K]  static, numeric and with-text events, then events per source
 * and the reader decodes them into the columns below (all of them, or a block's worth at a time).
 * Version 1 stored them as they are read:
 *   EVENT_TIME     int64  [N]    µs since epoch, TIME_NULL for static facts
 *   EVENT_CODE     uint32 [N]    index into the code dictionary (sorted by code string)
 *   EVENT_NUMERIC  float  [N]    NaN when absent
 *   EVENT_TEXT     uint32 [N]    text id, 0 when absent
 *   EVENT_PROV     uint64 [N]    (source id << 48) | source row (1-based line of the record)
 *   SUBJECT_ID     int64  [S]    ascending
 *   SUBJECT_START  uint64 [S+1]  events of subject i are [start[i], start[i+1])
 *   CODE_OFFSET    uint64 [C+1]  into CODE_HEAP; strings NUL-terminated
 *   CODE_HEAP      bytes
 *   CODE_COUNT     uint64 [C]    events per code
 *   CODE_DESC_OFFSET uint64[C+1], CODE_DESC_HEAP: optional human description per code ("" if none)
 *   TEXT_OFFSET    uint64 [T+1]  text id t (1..T) is HEAP[off[t-1], off[t]); id 0 is "no text"
 *   TEXT_HEAP      bytes
 *   SOURCE_OFFSET  uint64 [K+1], SOURCE_HEAP: provenance source names (e.g. "hosp/labevents")
 *   SUBJECT_KEY_OFFSET uint64[S+1], SUBJECT_KEY_HEAP: optional original subject identifiers
 *                  (e.g. FHIR Patient ids) when subject ids were derived from strings
 *   META           bytes         UTF-8 JSON: producer, inputs, rejection summary, policies
 * (in versions 2 and 3 the sections after the event blocks come in this order too)
 * Each section carries a BLAKE2b-256 checksum; store_open checks the header's, store_verify all.
 *
 * The writer accepts events in any order and any number, spilling sorted runs to anonymous
 * scratch files when its memory budget is reached, then merges them into the final file, which
 * appears atomically (see util/atomic_file.h). */
#ifndef CLINFM_STORE_STORE_H
#define CLINFM_STORE_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "util/err.h"
#include "util/timeutil.h"

#define STORE_FORMAT_VERSION 3     /* written; versions 1 and 2 are still read */
#define STORE_MAX_SOURCES 65535
#define STORE_MAX_ROW ((UINT64_C(1) << 48) - 1)

/* Header flags. */
#define STORE_FLAG_DEIDENTIFIED   (1u << 0)
#define STORE_FLAG_DATES_SHIFTED  (1u << 1) /* per-subject date shift (Expert Determination) */
#define STORE_FLAG_DATES_YEAR     (1u << 2) /* dates reduced to year (Safe Harbor) */

static inline uint32_t store_prov_source(uint64_t prov) { return (uint32_t)(prov >> 48); }
static inline uint64_t store_prov_row(uint64_t prov) { return prov & STORE_MAX_ROW; }

/* ---------------------------------------------------------------- writer */

typedef struct store_writer store_writer;

typedef struct {
    size_t memory_budget;   /* bytes of event buffer before spilling; 0 = default (256 MiB) */
    const char *scratch_dir;/* where spill runs go; NULL = directory of the output */
    uint32_t flags;         /* STORE_FLAG_* to record in the header */
    uint32_t version;       /* format to write: 0 = STORE_FORMAT_VERSION; 2 to make a version 2
                             * store (tests that older stores stay readable) */
} store_writer_options;

int store_writer_open(store_writer **out, const char *path, const store_writer_options *opt,
                      cf_err *err);
/* Registers a provenance source name; returns its id (same name, same id) or -1 when full. */
int store_writer_source(store_writer *w, const char *name);
/* Interns a code string; returns its (writer-local) id or -1 on out-of-memory. */
int64_t store_writer_code(store_writer *w, const char *code, size_t len);
/* Sets the description of a code if it has none yet. */
int store_writer_code_describe(store_writer *w, uint32_t code_id, const char *desc, size_t len);
/* Adds one event. numeric is NaN when absent; text NULL when absent (text_len 0 with non-NULL
 * text is an empty string, which is kept). Returns CF_OK or an error status. */
int store_writer_add(store_writer *w, int64_t subject_id, int64_t time, uint32_t code_id,
                     float numeric, const char *text, size_t text_len, uint32_t source,
                     uint64_t row, cf_err *err);
/* Records the original string identifier of a subject (optional; first one wins). */
int store_writer_subject_key(store_writer *w, int64_t subject_id, const char *key, size_t len,
                             cf_err *err);
/* Replaces the metadata JSON (copied). */
int store_writer_set_meta(store_writer *w, const char *json);
uint64_t store_writer_events(const store_writer *w);
/* Sorts, merges and writes the store, then makes it appear atomically. Frees w either way. */
int store_writer_finish(store_writer *w, cf_err *err);
/* Discards everything written so far; no file is left behind. Frees w. */
void store_writer_abort(store_writer *w);

/* ---------------------------------------------------------------- reader */

/* A read-only, mmap'd store. Caller-owned: store_open fills it, store_close releases it.
 * Column pointers point into the mapping; they stay valid until store_close. */
typedef struct {
    void *map;
    size_t map_len;
    uint32_t version, flags;
    uint64_t n_events, n_subjects, n_codes, n_texts, n_sources;
    int64_t first_time, last_time;          /* over timed events; TIME_NULL if none */

    const int64_t *time;                    /* (N) */
    const uint32_t *code;                   /* (N) */
    const float *numeric;                   /* (N) */
    const uint32_t *text;                   /* (N) */
    const uint64_t *prov;                   /* (N) */
    const int64_t *subject_id;              /* (S) */
    const uint64_t *subject_start;          /* (S+1) */
    const uint64_t *code_offset;            /* (C+1) */
    const char *code_heap;
    const uint64_t *code_count;             /* (C) */
    const uint64_t *code_desc_offset;       /* (C+1) */
    const char *code_desc_heap;
    const uint64_t *text_offset;            /* (T+1) */
    const char *text_heap;
    const uint64_t *source_offset;          /* (K+1) */
    const char *source_heap;
    const uint64_t *subject_key_offset;     /* (S+1) or NULL */
    const char *subject_key_heap;
    const char *meta;                       /* JSON, meta_len bytes, not NUL-terminated */
    size_t meta_len;
    /* Counts over all events: version 2 and 3 stores keep them; for a version 1 store
     * store_open_summary counts them in one pass and store_open leaves has_summary 0. */
    int has_summary;
    uint64_t n_static_events, n_numeric_events, n_text_events;
    const uint64_t *source_events;          /* (K) events per provenance source */
    void *decoded;                          /* versions 2-3: the decoded event columns (owned) */
    size_t decoded_len;
    uint64_t *summary_buf;                  /* version 1: the counts computed at open (owned) */
    /* Versions 2-3: where the encoded blocks lie in the mapping (read by store_cursor). */
    const void *blocks;                     /* store_block [n_blocks], store_format.h */
    const char *block_data;
    uint64_t n_blocks;
    char *path;                             /* as given to store_open (owned), for messages */
    /* The mapped file, kept open (fd_open 1): a cursor reads each version 2 or 3 block out of it
     * with pread into its own buffer (store_cursor.c says why). */
    int fd, fd_open;
    struct store_cache *cache;              /* decoded blocks kept for later passes (owned) or NULL */
} store;

/* Opens a store. A version 1 store's columns are mapped as they lie in the file; a version 2 or 3
 * store's compressed blocks are decoded into memory (28 bytes per event), in parallel, each
 * block's checksum and ids checked on the way. Stages that read the events in order (a pass over
 * subjects) should use store_open_summary and a store_cursor instead: memory stays bounded by a
 * block and the largest subject (a version 3 pass: docs/SCALE.md has its speed against version 1). */
int store_open(store *s, const char *path, cf_err *err);
/* Opens only what a summary needs: counts, dictionaries, subject index, metadata; the per-event
 * columns (time, code, numeric, text, prov) are NULL for a version 2 or 3 store. Costs no pass over
 * the events. */
int store_open_summary(store *s, const char *path, cf_err *err);
void store_close(store *s);

/* ---------------------------------------------------------------- cursor */

/* Events [first, first + n) of a store as columns indexed from 0 (time[0] is event `first`). */
typedef struct {
    uint64_t first, n;
    const int64_t *time;
    const uint32_t *code;
    const float *numeric;
    const uint32_t *text;
    const uint64_t *prov;
} store_events;

/* A cursor hands out the events of a range or of one subject, decoding a version 2 or 3 store one
 * block (65,536 events) at a time into buffers it reuses, each block's checksum and ids checked
 * when it is decoded. It works on a store from store_open or store_open_summary, of either
 * version: when the store's columns are in memory already (version 1, or store_open) it points
 * into them and decodes nothing.
 *
 * Contract: the pointers in a store_events stay valid until the next call on the same cursor (or
 * store_cursor_free); the store must outlive the cursor. A range that crosses block boundaries
 * (a subject spanning blocks) is assembled into one contiguous buffer that grows to the largest
 * range asked for. Any order of ranges is allowed; in ascending order each block is decoded once
 * (twice at most when a subject spans it). One cursor per thread: a cursor is not thread-safe,
 * but any number of cursors may read one store.
 *
 * STORE_CURSOR_READAHEAD starts a thread that decodes the next blocks (up to 4) while the caller
 * works on the current one, from the moment the caller steps from one block to the next (a pass
 * in ascending order); the results are the same either way. */
typedef struct store_cursor store_cursor;
#define STORE_CURSOR_READAHEAD 1u
int store_cursor_new(store_cursor **out, const store *s, unsigned flags, cf_err *err);
void store_cursor_free(store_cursor *c);
/* Events [begin, end) (begin <= end <= n_events). CF_EINPUT naming the store file and the block
 * index when a block is damaged. */
int store_cursor_range(store_cursor *c, uint64_t begin, uint64_t end, store_events *ev, cf_err *err);
/* The events of subject index k (< n_subjects). */
int store_cursor_subject(store_cursor *c, uint64_t k, store_events *ev, cf_err *err);
/* Lets the cursors of a version 2 or 3 store keep the blocks they decode, up to budget bytes in all
 * (1.75 MiB a block), for stages that pass over the store several times (timeline preparation
 * makes ten passes): a kept block is decoded once. The first blocks decoded are kept and
 * later ones decoded again on every pass, so memory stays bounded whatever the store's size.
 * Kept until store_close; safe with cursors in several threads. No effect on a store whose
 * columns are in memory already. Call before making cursors. */
int store_cache_set(store *s, size_t budget, cf_err *err);

/* 1 when s's per-event columns (time, code, numeric, text, prov) can be read: opened by
 * store_open, or a version 1 store (mapped as it lies) by store_open_summary, or a store with
 * no events; 0 for a version 2 or 3 store opened by store_open_summary. */
static inline int store_events_open(const store *s) {
    return s->code != NULL || s->n_events == 0;
}
/* Recomputes every section checksum; CF_EINPUT naming the first corrupt section. */
int store_verify(const store *s, cf_err *err);

/* Index of subject_id, or -1. O(log S). */
int64_t store_find_subject(const store *s, int64_t subject_id);
static inline const char *store_code_str(const store *s, uint32_t c) {
    return s->code_heap + s->code_offset[c];
}
/* Code id for a string, or -1. O(log C): the dictionary is sorted. */
int64_t store_find_code(const store *s, const char *code);
static inline const char *store_code_desc(const store *s, uint32_t c) {
    return s->code_desc_heap + s->code_desc_offset[c];
}
/* Text of an event's text id (non-zero), with its length. */
static inline const char *store_text_str(const store *s, uint32_t t, size_t *len) {
    *len = (size_t)(s->text_offset[t] - s->text_offset[t - 1]);
    return s->text_heap + s->text_offset[t - 1];
}
static inline const char *store_source_name(const store *s, uint32_t k) {
    return s->source_heap + s->source_offset[k];
}
/* The original identifier of subject index i, or NULL when none was recorded. */
const char *store_subject_key(const store *s, uint64_t i, size_t *len);

#endif
