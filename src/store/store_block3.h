/* Version 3 event blocks: bit-packed streams (internal to src/store; store_block.c dispatches to
 * them for a version 3 store). The layout is described next to STORE_BLOCK3_LAYOUT in
 * store_format.h. */
#ifndef CLINFM_STORE_BLOCK3_H
#define CLINFM_STORE_BLOCK3_H

#include <stddef.h>
#include <stdint.h>

#include "store/store_block_cols.h"

typedef struct store_block3_ctx store_block3_ctx;
/* encoder: 1 for a context that encodes (it holds the output buffer), 0 for decoding only. */
store_block3_ctx *store_block3_ctx_new(uint32_t n_sources, int encoder);
void store_block3_ctx_free(store_block3_ctx *x);
/* As store_block_encode and store_block_decode (store_block.h). */
int store_block3_encode(store_block3_ctx *x, const store_block_cols *c, size_t n, const void **out, size_t *out_len);
int store_block3_decode(store_block3_ctx *x, const void *src, size_t len, size_t n, uint64_t n_codes,
                        uint64_t n_texts, const store_block_cols *c, const char **why);
/* The same in parts (store_block_begin, store_block_more). */
int store_block3_open(store_block3_ctx *x, const void *src, size_t len, size_t n, uint64_t n_codes, uint64_t n_texts,
                      const char **why);
int store_block3_part(store_block3_ctx *x, size_t upto, const store_block_cols *c, size_t *done, const char **why);

#endif
