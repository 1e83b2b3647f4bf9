/* Little-endian integers in byte buffers: the one byte-order codec of clinfm's own file formats
 * (vocabulary, token shards, checkpoints, the bundle's split subjects, keyed split hashes), which
 * are little-endian whatever the host. The event store instead writes host order and a
 * byte-order mark (store/store.h), since it is read in place through mmap. */
#ifndef CLINFM_UTIL_LE_H
#define CLINFM_UTIL_LE_H

#include <stdint.h>
#include <string.h>

static inline void le_put32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static inline void le_put64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static inline uint32_t le_get32(const uint8_t *p) {
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--) v = v << 8 | p[i];
    return v;
}
static inline uint64_t le_get64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}
/* IEEE-754 single precision, its bits little-endian. */
static inline void le_putf(uint8_t *p, float f) {
    uint32_t v;
    memcpy(&v, &f, 4);
    le_put32(p, v);
}
static inline float le_getf(const uint8_t *p) {
    uint32_t v = le_get32(p);
    float f;
    memcpy(&f, &v, 4);
    return f;
}

#endif
