/* Internals shared by the FHIR ingestion files (not a public API; the public parts are
 * fhir.h, fhir_json.h and fhir_map.h).
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
#include <string.h>

#include <cjson/cJSON.h>

#include "ingest/fhir.h"
#include "ingest/fhir_json.h"
#include "ingest/fhir_map.h"
#include "util/err.h"
#include "util/sbuf.h"

/* ------------------------------------------------------------------ resource types */

/* The number of FHIR R4 resource types: fhir_type_index gives 0 .. count - 1. */
int fhir_type_count(void);

/* ------------------------------------------------------------------ building batches */

/* Appends bytes to the heap; returns the offset or SIZE_MAX on out-of-memory. */
size_t fhir_heap_add(fhir_batch *b, const void *p, size_t len);
/* Adds a resource record (zeroed, type -1); NULL on out-of-memory. */
fhir_res *fhir_batch_res(fhir_batch *b);
/* Adds a unit-level rejection (a whole bundle or line that could not be read as a resource). */
int fhir_batch_reject(fhir_batch *b, int type, const char *source, uint64_t row, const char *reason,
                      const char *location);

/* ------------------------------------------------------------------ files */

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
