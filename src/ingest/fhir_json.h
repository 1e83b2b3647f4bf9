/* Capped JSON parsing for FHIR input (public: the FHIR reader and the service's request bodies).
 *
 * cJSON trees are built in a per-thread arena: bump allocation, no frees, the whole tree dropped
 * at once, and a byte limit so hostile input cannot exhaust memory. Parsing reports a static
 * reason and the byte offset where it stopped, never the input's text (it may hold PHI).
 * Implemented in fhir_json.c. */
#ifndef CLINFM_INGEST_FHIR_JSON_H
#define CLINFM_INGEST_FHIR_JSON_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cjson/cJSON.h>

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

/* The index of the first byte at or after i that is not JSON whitespace (len at the end).
 * Pretty-printed FHIR (Synthea's bundles) is about half indentation: runs of spaces are skipped
 * eight at a time. */
static inline size_t fhir_skip_ws(const char *s, size_t len, size_t i) {
    for (;;) {
        if (i + 8 <= len) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            if (w == UINT64_C(0x2020202020202020)) {
                i += 8;
                continue;
            }
        }
        if (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) {
            i++;
            continue;
        }
        return i;
    }
}

#endif
