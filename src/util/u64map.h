/* A hash map from 64-bit keys to 64-bit values: open addressing with linear probing on a
 * power-of-two table, kept at most half full. The one map for integer keys (subject ids, token
 * pairs, keyed hashes); byte-string keys go through strmap.h instead.
 *
 * Every key is allowed (0 included). No order is promised: a caller that writes output walks its
 * own ordered list, not the table. A zeroed u64map is empty and valid; u64map_free releases it. */
#ifndef CLINFM_UTIL_U64MAP_H
#define CLINFM_UTIL_U64MAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint64_t *keys;   /* (cap) key, 0 = empty slot (key 0 itself lives in zero_val) */
    uint64_t *vals;   /* (cap) */
    size_t cap;       /* 0 or a power of two */
    size_t count;     /* keys held, key 0 included */
    int has_zero;
    uint64_t zero_val;
} u64map;

void u64map_free(u64map *m);
/* Forgets every key; the memory is kept for reuse. */
void u64map_clear(u64map *m);
/* The value of key, inserted as 0 when absent (*added 1, else 0; added may be NULL); NULL when
 * out of memory (the map is unchanged). The pointer is valid until the next insertion. */
uint64_t *u64map_put(u64map *m, uint64_t key, int *added);
/* The value of key, or NULL when absent. */
uint64_t *u64map_get(const u64map *m, uint64_t key);

#endif
