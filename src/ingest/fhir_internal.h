/* Internals shared by the FHIR ingestion files (not a public API).
 *
 * The work splits in two layers so that the expensive part runs on worker threads:
 *   - the mapping layer (fhir_map.c) turns one parsed bundle or a chunk of NDJSON lines into a
 *     fhir_batch: per resource an outcome (events, filtered, rejected), a subject (a resolved
 *     Patient key or a reference still to be checked), and its events with code strings. It
 *     touches no shared state, so any number of batches can be built at once;
 *   - the commit layer (fhir.c) takes batches in input order on one thread, resolves what needs
 *     global knowledge (Patients and Medications seen so far), and writes the store and report.
 * fhir_json.c holds the JSON side: an arena allocator for cJSON trees, parsing with size and
 * memory caps, and whole-file reading with gzip. */
#ifndef CLINFM_INGEST_FHIR_INTERNAL_H
#define CLINFM_INGEST_FHIR_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "ingest/fhir.h"
#include "util/err.h"
#include "util/sbuf.h"

/* ------------------------------------------------------------------ resource types */

/* All FHIR R4 resource type names, sorted; index -1 when unknown. */
int fhir_type_index(const char *name, size_t len);
const char *fhir_type_name(int index);
int fhir_type_count(void);

/* ------------------------------------------------------------------ batches */


enum { FHIR_OUT_EVENTS = 0, FHIR_OUT_FILTERED = 1, FHIR_OUT_REJECTED = 2 };

enum {
    FHIR_SUBJ_NONE = 0,
    FHIR_SUBJ_KEY,        /* the Patient key itself (resolved in the unit) */
    FHIR_SUBJ_PATIENT_ID, /* a Patient id from "Patient/<id>": must be a committed Patient */
    FHIR_SUBJ_URL,        /* a urn:uuid fullUrl not in the unit: must be a committed Patient */
};

typedef struct {
    int64_t time;
    float numeric;           /* NaN when absent */
    uint8_t has_text;
    uint8_t code_is_medref;  /* code holds only a prefix; the desc slot holds a Medication
                                reference key whose code is appended at commit */
    uint8_t is_phi;          /* a PHI//<KIND> identifier event: static, the value in text;
                                repeated values of one subject are written once at commit */
    size_t code_off, code_len;
    size_t text_off, text_len;
    size_t desc_off, desc_len; /* desc_len 0: no description */
} fhir_event;

typedef struct {
    int type;               /* fhir_type_index, or -1 (reported under "Resource") */
    const char *source;     /* report source when type < 0 ("Resource", "Bundle") */
    uint8_t outcome;
    uint8_t subj_kind;
    uint8_t is_patient;     /* registers subj (the key) and url (its fullUrl) */
    uint8_t is_medication;  /* registers med_keys -> events[ev_first].code */
    uint64_t row;
    size_t subj_off, subj_len;
    size_t url_off, url_len;
    size_t keys_off, keys_len; /* NUL-separated keys ("Medication/<id>", fullUrl) */
    size_t ev_first, ev_count;
    const char *reason;     /* static text when rejected */
    size_t loc_off, loc_len;/* location when rejected */
    size_t id_off, id_len;  /* the resource id when valid (for messages made at commit) */
} fhir_res;

typedef struct {
    sbuf heap;
    fhir_event *ev;
    size_t n_ev, cap_ev;
    fhir_res *res;
    size_t n_res, cap_res;
} fhir_batch;

void fhir_batch_init(fhir_batch *b);
void fhir_batch_reset(fhir_batch *b);
void fhir_batch_free(fhir_batch *b);
/* Appends bytes to the heap; returns the offset or SIZE_MAX on out-of-memory. */
size_t fhir_heap_add(fhir_batch *b, const void *p, size_t len);
/* Adds a resource record (zeroed, type -1); NULL on out-of-memory. */
fhir_res *fhir_batch_res(fhir_batch *b);
/* Adds a unit-level rejection (a whole bundle or line that could not be read as a resource). */
int fhir_batch_reject(fhir_batch *b, int type, const char *source, uint64_t row, const char *reason,
                      const char *location);

/* ------------------------------------------------------------------ JSON */

/* Starts / ends an arena for cJSON allocations on this thread. While active, cJSON nodes come
 * from the arena (bump allocation, no frees) and the whole tree is dropped at once by
 * fhir_arena_end; `limit` caps the arena so hostile input cannot exhaust memory. */
typedef struct fhir_arena fhir_arena;
/* Installs the arena-aware cJSON allocator (once per process); call before starting threads. */
void fhir_json_init(void);
fhir_arena *fhir_arena_new(void);
void fhir_arena_delete(fhir_arena *a);
void fhir_arena_begin(fhir_arena *a, size_t limit);
void fhir_arena_end(fhir_arena *a);
int fhir_arena_exhausted(const fhir_arena *a);

/* Parses len bytes as one JSON value inside the active arena. On failure returns NULL and sets
 * *why to a static reason ("invalid JSON", "JSON nested too deeply", "JSON parse tree over its
 * memory cap") and *offset to the byte where parsing stopped. */
cJSON *fhir_json_parse(fhir_arena *a, const char *data, size_t len, const char **why,
                       size_t *offset);

/* Validates the JSON value at data[*pos] (after whitespace) and moves *pos past it. Returns 0,
 * or -1 with *why set and *pos at the offending byte. Iterative, nesting capped like cJSON's. */
int fhir_json_skip(const char *data, size_t len, size_t *pos, const char **why);
/* Parses one JSON value at data[0..len) inside the active arena, without requiring the input to
 * end there; *used is the number of bytes consumed. On failure as fhir_json_parse. */
cJSON *fhir_json_parse_prefix(fhir_arena *a, const char *data, size_t len, size_t *used,
                              const char **why, size_t *offset);
/* Arena positions, to drop the tree of one bundle entry before parsing the next. */
typedef struct {
    void *chunk;
    size_t used, total;
} fhir_arena_mark;
fhir_arena_mark fhir_arena_get_mark(const fhir_arena *a);
void fhir_arena_release(fhir_arena *a, fhir_arena_mark m);

/* Reads a whole file, inflating gzip (detected by its magic bytes) with libdeflate, or zlib for
 * multi-member or unusual streams. Returns CF_OK; CF_EINPUT with *reason set (static text) for
 * input that is too large or corrupt (a rejection, not fatal); or another status with err set for
 * I/O failures. *buf is reused and grown as needed; the data is NUL-terminated. */
int fhir_read_file(const char *path, size_t max_len, char **buf, size_t *cap, size_t *len,
                   const char **reason, cf_err *err);
/* Frees the calling thread's decompressor and buffers kept by fhir_read_file. */
void fhir_read_release(void);
/* Whether gzip bundles are inflated by libdeflate (linked with -ldeflate) rather than zlib. */
int fhir_have_libdeflate(void);

/* ------------------------------------------------------------------ mapping */

/* Maps one parsed top-level JSON value from a bundle file (a Bundle or a single resource). */
int fhir_map_bundle(fhir_batch *b, const char *file, const cJSON *root);
/* Maps one parsed Bundle.entry element (row = its 1-based index). */
int fhir_map_entry(fhir_batch *b, const char *file, uint64_t row, const cJSON *entry);
/* Whether resources of this type produce events (or feed references); others are filtered
 * without being parsed into a tree. */
int fhir_type_mapped(int type);
/* Counts a resource of an unmapped type as filtered. */
int fhir_map_filtered(fhir_batch *b, int type, uint64_t row);
/* Maps bundle-file text, streaming: Bundle entries of unmapped types are only validated, the
 * others are parsed one entry at a time. Falls back to a whole-document tree for single
 * resources and unusual layouts. Returns 0 (a bundle-level rejection, if any, is in b) or -1. */
int fhir_map_bundle_text(fhir_batch *b, const char *file, const char *data, size_t len,
                         fhir_arena *a, size_t tree_limit);
/* Maps one parsed NDJSON line; expected_type is the type named by the file or -1. */
int fhir_map_line(fhir_batch *b, const char *file, uint64_t line, int expected_type,
                  const cJSON *res);

/* Location text "file:line" / "file: entry N" with resource and path, into out. */
void fhir_location(char *out, size_t cap, const char *file, int is_bundle, uint64_t row,
                   const char *type, const cJSON *res, const char *path);

#endif
