/* Event blocks (versions 2 and 3): encoding and decoding of one block of events (internal to
 * src/store). The layouts are described next to STORE_BLOCK_EVENTS in store_format.h. */
#ifndef CLINFM_STORE_BLOCK_H
#define CLINFM_STORE_BLOCK_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"
#include "store/store_block_cols.h"

/* Per-thread working memory for encoding or decoding blocks of one format version (2 or 3). level:
 * 0 for a decoding context, else an encoding one (the zstd level for version 2). */
typedef struct store_block_ctx store_block_ctx;
store_block_ctx *store_block_ctx_new(uint32_t n_sources, int level, uint32_t version);
void store_block_ctx_free(store_block_ctx *c);

/* Compresses n events (1..STORE_BLOCK_EVENTS) of c into a buffer owned by the context; *out and
 * *out_len stay valid until the next call. Returns 0, or -1 when compression fails. */
int store_block_encode(store_block_ctx *x, const store_block_cols *c, size_t n, const void **out,
                       size_t *out_len);

/* Decodes one block of n events into c (each array with room for n). Returns 0, or -1 with a
 * reason in why (a static string) when the block is damaged (its checksum fails), decodes to
 * another size or is malformed, or holds an id out of range: code >= n_codes, text > n_texts, source >= the
 * context's n_sources. */
int store_block_decode(store_block_ctx *x, const void *src, size_t len, size_t n, uint64_t n_codes,
                       uint64_t n_texts, const store_block_cols *c, const char **why);

/* One block decoded in parts, front to back, so that a reader can use the first events while they
 * are in cache (version 3; a version 2 block is decoded whole by store_block_begin).
 * store_block_begin checks what it can without decoding the values (the checksum, the structure,
 * the dictionaries) and returns -1 with why as store_block_decode would; store_block_more decodes
 * events up to at least upto (a multiple of 8, or n) into c (whole-block columns: event i at
 * c->time[i] ...), checking each value before it returns, and sets *done to the events decoded so
 * far. A failing store_block_more closes the block (then no more of it is decoded). The columns
 * and checks are those of store_block_decode; c must be the same columns on every call. */
int store_block_begin(store_block_ctx *x, const void *src, size_t len, size_t n, uint64_t n_codes, uint64_t n_texts,
                      const store_block_cols *c, size_t *done, const char **why);
int store_block_more(store_block_ctx *x, size_t upto, const store_block_cols *c, size_t *done, const char **why);

/* Block b of a version 2 or 3 store whose file it keeps open (fd_open): its encoded bytes read
 * with pread into *buf (grown to *cap as needed; the caller frees it), which is returned; NULL with
 * why when the read fails (store_block.c). Why not the mapping: store_cursor.c. */
const char *store_read_block(const store *s, uint64_t b, char **buf, size_t *cap, const char **why);

/* Frees a store's cache of decoded blocks (store_cache_set; store_cursor.c), for store_close. */
struct store_cache;
void store_cache_release(struct store_cache *k);

/* Byte planes: byte p of v[i] goes to dst[p * n + i] for p < width, and back. */
void store_planes_put(uint8_t *dst, const uint64_t *v, size_t n, int width);
void store_planes_get(uint64_t *v, const uint8_t *src, size_t n, int width);

#endif
