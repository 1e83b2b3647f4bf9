/* Little-endian integers in byte buffers, for the timeline module's file formats (the
 * vocabulary file and the token shards are little-endian whatever the host). Internal to
 * src/timeline. */
#ifndef CLINFM_TIMELINE_LE_BYTES_H
#define CLINFM_TIMELINE_LE_BYTES_H

#include <stdint.h>

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

#endif
