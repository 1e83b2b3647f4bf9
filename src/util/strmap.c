/* String interning; see strmap.h. */
#include "util/strmap.h"

#include "util/err.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

void strmap_init(strmap *m) { memset(m, 0, sizeof *m); }

void strmap_free(strmap *m) {
    CF_FREE_ALL(m->slots, m->hashes, m->arena, m->offsets, m->lengths);
    memset(m, 0, sizeof *m);
}

uint64_t strmap_hash(const char *s, size_t len) {
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < len; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return h;
}

static int grow_table(strmap *m) {
    size_t ncap = m->cap ? m->cap * 2 : 1024;
    uint32_t *slots = cf_calloc_table(ncap, sizeof *slots);
    uint64_t *hashes = cf_calloc_table(ncap, sizeof *hashes);
    if (!slots || !hashes) {
        free(slots);
        free(hashes);
        return -1;
    }
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->slots[i]) continue;
        size_t j = m->hashes[i] & (ncap - 1);
        while (slots[j]) j = (j + 1) & (ncap - 1);
        slots[j] = m->slots[i];
        hashes[j] = m->hashes[i];
    }
    free(m->slots);
    free(m->hashes);
    m->slots = slots;
    m->hashes = hashes;
    m->cap = ncap;
    return 0;
}

int strmap_reserve(strmap *m, size_t n) {
    if (n >= (size_t)UINT32_MAX / 2) return -1;
    while ((size_t)m->count + n + 1 >= m->cap / 2)
        if (grow_table(m)) return -1;
    return 0;
}

static int64_t lookup(const strmap *m, const char *s, size_t len, uint64_t h, size_t *slot) {
    size_t j = h & (m->cap - 1);
    while (m->slots[j]) {
        uint32_t id = m->slots[j] - 1;
        if (m->hashes[j] == h && m->lengths[id] == len &&
            memcmp(m->arena + m->offsets[id], s, len) == 0)
            return id;
        j = (j + 1) & (m->cap - 1);
    }
    *slot = j;
    return -1;
}

int64_t strmap_find(const strmap *m, const char *s, size_t len) {
    if (!m->cap) return -1;
    size_t slot;
    return lookup(m, s, len, strmap_hash(s, len), &slot);
}

int64_t strmap_intern(strmap *m, const char *s, size_t len) {
    if (len > UINT32_MAX) return -1;
    if ((size_t)m->count + 1 >= m->cap / 2 && grow_table(m)) return -1;
    uint64_t h = strmap_hash(s, len);
    size_t slot;
    int64_t id = lookup(m, s, len, h, &slot);
    if (id >= 0) return id;
    assert(m->cap && !(m->cap & (m->cap - 1)) && !m->slots[slot]); /* a power of two; a free slot */
    if (m->count >= UINT32_MAX - 1) return -1;
    char *a = cf_grow(m->arena, &m->arena_cap, m->arena_len + len + 1, 1, 4096);
    if (!a) return -1;
    m->arena = a;
    if (m->count == m->ids_cap) {
        size_t n = m->ids_cap ? (size_t)m->ids_cap * 2 : 16;
        if (n > UINT32_MAX) n = UINT32_MAX;
        uint64_t *o = realloc(m->offsets, n * sizeof *o);
        if (!o) return -1;
        m->offsets = o;
        uint32_t *l = realloc(m->lengths, n * sizeof *l);
        if (!l) return -1;
        m->lengths = l;
        m->ids_cap = (uint32_t)n;
    }
    memcpy(m->arena + m->arena_len, s, len);
    m->arena[m->arena_len + len] = '\0';
    id = m->count++;
    m->offsets[id] = m->arena_len;
    m->lengths[id] = (uint32_t)len;
    m->arena_len += len + 1;
    m->slots[slot] = (uint32_t)id + 1;
    m->hashes[slot] = h;
    return id;
}
