/* Interning of byte strings: string -> dense uint32 id, ids assigned 0, 1, 2... in order of first
 * insertion. Strings are copied into an arena owned by the map. Open addressing with linear
 * probing on a power-of-two table; the hash is 64-bit FNV-1a mixed with a finaliser. */
#ifndef CLINFM_UTIL_STRMAP_H
#define CLINFM_UTIL_STRMAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint32_t *slots;    /* (cap) id+1, 0 = empty */
    uint64_t *hashes;   /* (cap) full hash of the slot's string */
    size_t cap;         /* power of two */
    char *arena;        /* all strings, each NUL-terminated */
    size_t arena_len, arena_cap;
    uint64_t *offsets;  /* (count) arena offset of id's string */
    uint32_t *lengths;  /* (count) */
    uint32_t count;
    uint32_t ids_cap;   /* capacity of offsets/lengths */
} strmap;

void strmap_init(strmap *m);
void strmap_free(strmap *m);
uint64_t strmap_hash(const char *s, size_t len);
/* Returns the id, inserting when absent; -1 on out-of-memory or more than 2^32-2 strings. */
int64_t strmap_intern(strmap *m, const char *s, size_t len);
/* Makes room for n more strings without regrowing the table (one rehash instead of many when
 * the count is known, as for word lists); ids and lookups are unchanged. -1 on out-of-memory. */
int strmap_reserve(strmap *m, size_t n);
/* Returns the id or -1 when absent. */
int64_t strmap_find(const strmap *m, const char *s, size_t len);
static inline const char *strmap_str(const strmap *m, uint32_t id, size_t *len) {
    if (len) *len = m->lengths[id];
    return m->arena + m->offsets[id];
}

#endif
