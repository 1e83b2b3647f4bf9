/* The columns of one block of events and the small stream helpers both block versions share
 * (internal to src/store). Apart from store_block.h so that the version 3 codec
 * (store_block3.c), which store_block.c dispatches to, depends on nothing above it. */
#ifndef CLINFM_STORE_BLOCK_COLS_H
#define CLINFM_STORE_BLOCK_COLS_H

#include <stddef.h>
#include <stdint.h>

/* Columns of up to STORE_BLOCK_EVENTS events, as the reader exposes them. */
typedef struct {
    int64_t *time;
    uint32_t *code;
    float *numeric;
    uint32_t *text;
    uint64_t *prov;
} store_block_cols;

/* Signed deltas as unsigned: 0, -1, 1, -2 ... -> 0, 1, 2, 3 ... (both block versions). */
static inline uint64_t store_zigzag(int64_t v) { return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63); }
static inline int64_t store_unzigzag(uint64_t u) { return (int64_t)(u >> 1) ^ -(int64_t)(u & 1); }

/* Text ids from their stream (both block versions): 0 for no text, else 1 + the zigzag delta
 * from the previous text id in the block. Returns 0, or -1 with why when an id falls outside
 * 1..n_texts. */
static inline int store_block_text_ids(uint32_t *text, const uint64_t *v, size_t n, uint64_t n_texts, const char **why) {
    int64_t last = 0;
    for (size_t i = 0; i < n; i++) {
        if (!v[i]) {
            text[i] = 0;
            continue;
        }
        int64_t t = (int64_t)((uint64_t)last + (uint64_t)store_unzigzag(v[i] - 1));
        if (t < 1 || (uint64_t)t > n_texts) {
            *why = "holds a text id out of range";
            return -1;
        }
        text[i] = (uint32_t)t;
        last = t;
    }
    return 0;
}

#endif
