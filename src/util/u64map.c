/* The integer-keyed hash map; see u64map.h. */
#include "util/u64map.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

/* Fibonacci hashing: the key's high bits after a multiply by 2^64 / phi spread even sequential
 * keys over the table. */
static size_t slot_of(uint64_t key, size_t cap) { return (size_t)((key * 0x9E3779B97F4A7C15ULL) >> 20) & (cap - 1); }

void u64map_free(u64map *m) {
    free(m->keys);
    free(m->vals);
    memset(m, 0, sizeof *m);
}

void u64map_clear(u64map *m) {
    if (m->cap) memset(m->keys, 0, m->cap * sizeof *m->keys);
    m->count = 0;
    m->has_zero = 0;
    m->zero_val = 0;
}

static int grow(u64map *m) {
    size_t nc = m->cap ? m->cap * 2 : 64;
    uint64_t *k = calloc(nc, sizeof *k), *v = malloc(nc * sizeof *v);
    if (!k || !v) {
        free(k);
        free(v);
        return -1;
    }
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->keys[i]) continue;
        size_t j = slot_of(m->keys[i], nc);
        while (k[j]) j = (j + 1) & (nc - 1);
        k[j] = m->keys[i];
        v[j] = m->vals[i];
    }
    free(m->keys);
    free(m->vals);
    m->keys = k;
    m->vals = v;
    m->cap = nc;
    return 0;
}

uint64_t *u64map_get(const u64map *m, uint64_t key) {
    if (!key) return m->has_zero ? (uint64_t *)&m->zero_val : NULL;
    if (!m->cap) return NULL;
    for (size_t j = slot_of(key, m->cap);; j = (j + 1) & (m->cap - 1)) {
        if (m->keys[j] == key) return &m->vals[j];
        if (!m->keys[j]) return NULL;
    }
}

uint64_t *u64map_put(u64map *m, uint64_t key, int *added) {
    if (added) *added = 0;
    if (!key) {
        if (!m->has_zero) {
            m->has_zero = 1;
            m->zero_val = 0;
            m->count++;
            if (added) *added = 1;
        }
        return &m->zero_val;
    }
    if ((m->count + 1) * 2 > m->cap && grow(m)) return NULL;
    size_t j = slot_of(key, m->cap);
    while (m->keys[j] && m->keys[j] != key) j = (j + 1) & (m->cap - 1);
    if (!m->keys[j]) {
        m->keys[j] = key;
        m->vals[j] = 0;
        m->count++;
        if (added) *added = 1;
    }
    assert(m->count * 2 <= m->cap);
    return &m->vals[j];
}
