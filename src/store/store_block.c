/* Event blocks of versions 2 and 3. Version 3 (store_block3.c) packs each stream's bits itself;
 * version 2, here: each block's columns become six integer streams (deltas where values
 * follow each other: times, text ids, rows of one source), each stream is split into byte planes,
 * and the whole block is one zstd frame with its content checksum.
 *
 * Why byte planes and not variable-length integers: a column of small values leaves its high
 * planes all zero, which zstd stores in a few bytes, and splitting and joining planes is a
 * branch-free loop, so decoding runs at memory speed and the compressor does the rest. */
#include "store/store_block.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zstd.h>
#include <zstd_errors.h>

#include "store/store_block3.h"
#include "store/store_format.h"
#include "util/err.h"

struct store_block_ctx {
    uint32_t version;    /* 2, or 3: then v3 does the work */
    store_block3_ctx *v3;
    ZSTD_CCtx *cctx;
    ZSTD_DCtx *dctx;
    uint8_t *raw;        /* one decompressed block */
    uint8_t *packed;     /* one compressed block (encoder) */
    size_t packed_cap;
    uint64_t *tmp;       /* (STORE_BLOCK_EVENTS) one stream's values */
    uint64_t *last_row;  /* (n_sources) */
    uint32_t n_sources;
};

store_block_ctx *store_block_ctx_new(uint32_t n_sources, int level, uint32_t version) {
    store_block_ctx *x = calloc(1, sizeof *x);
    if (!x) return NULL;
    x->version = version;
    if (version == 3) {
        if (!(x->v3 = store_block3_ctx_new(n_sources, level != 0))) goto fail;
        return x;
    }
    x->n_sources = n_sources;
    x->raw = malloc((size_t)STORE_BLOCK_EVENTS * STORE_BLOCK_BYTES_PER_EVENT);
    x->tmp = malloc((size_t)STORE_BLOCK_EVENTS * sizeof *x->tmp);
    x->last_row = calloc(n_sources ? n_sources : 1, sizeof *x->last_row);
    if (!x->raw || !x->tmp || !x->last_row) goto fail;
    if (level) {
        x->packed_cap = ZSTD_compressBound((size_t)STORE_BLOCK_EVENTS * STORE_BLOCK_BYTES_PER_EVENT);
        x->packed = malloc(x->packed_cap);
        x->cctx = ZSTD_createCCtx();
        if (!x->packed || !x->cctx) goto fail;
        if (ZSTD_isError(ZSTD_CCtx_setParameter(x->cctx, ZSTD_c_compressionLevel, level)) ||
            ZSTD_isError(ZSTD_CCtx_setParameter(x->cctx, ZSTD_c_checksumFlag, 1)) ||
            ZSTD_isError(ZSTD_CCtx_setParameter(x->cctx, ZSTD_c_contentSizeFlag, 1)))
            goto fail;
    } else {
        x->dctx = ZSTD_createDCtx();
        if (!x->dctx) goto fail;
    }
    return x;
fail:
    store_block_ctx_free(x);
    return NULL;
}

void store_block_ctx_free(store_block_ctx *x) {
    if (!x) return;
    store_block3_ctx_free(x->v3);
    ZSTD_freeCCtx(x->cctx);
    ZSTD_freeDCtx(x->dctx);
    CF_FREE_ALL(x->raw, x->packed, x->tmp, x->last_row, x);
}


/* Byte p of value i goes to plane p at position i. */
void store_planes_put(uint8_t *dst, const uint64_t *v, size_t n, int width) {
    for (int p = 0; p < width; p++) {
        uint8_t *plane = dst + (size_t)p * n;
        for (size_t i = 0; i < n; i++) plane[i] = (uint8_t)(v[i] >> (8 * p));
    }
}

/* The inverse, one pass per output value (each plane read once, the value written once). */
void store_planes_get(uint64_t *v, const uint8_t *src, size_t n, int width) {
    const uint8_t *p0 = src, *p1 = src + n, *p2 = src + 2 * n, *p3 = src + 3 * n;
    if (width == 2) {
        for (size_t i = 0; i < n; i++) v[i] = (uint64_t)p0[i] | (uint64_t)p1[i] << 8;
    } else if (width == 4) {
        for (size_t i = 0; i < n; i++)
            v[i] = (uint64_t)p0[i] | (uint64_t)p1[i] << 8 | (uint64_t)p2[i] << 16 | (uint64_t)p3[i] << 24;
    } else {
        const uint8_t *p4 = src + 4 * n, *p5 = src + 5 * n, *p6 = src + 6 * n, *p7 = src + 7 * n;
        for (size_t i = 0; i < n; i++)
            v[i] = (uint64_t)p0[i] | (uint64_t)p1[i] << 8 | (uint64_t)p2[i] << 16 | (uint64_t)p3[i] << 24 |
                   (uint64_t)p4[i] << 32 | (uint64_t)p5[i] << 40 | (uint64_t)p6[i] << 48 | (uint64_t)p7[i] << 56;
    }
}

/* Stream widths in bytes, in their order in the block. */
static const int stream_width[6] = {8, 4, 4, 8, 2, 8};

int store_block_encode(store_block_ctx *x, const store_block_cols *c, size_t n, const void **out,
                       size_t *out_len) {
    if (x->v3) return store_block3_encode(x->v3, c, n, out, out_len);
    if (n == 0 || n > STORE_BLOCK_EVENTS || !x->cctx) return -1;
    /* One stream at a time through a reused temporary: the values of stream s for all n events. */
    uint64_t *v = x->tmp;
    uint8_t *dst = x->raw;
    for (int s = 0; s < 6; s++) {
        switch (s) {
        case 0: {
            uint64_t prev = 0;
            for (size_t i = 0; i < n; i++) {
                v[i] = store_zigzag((int64_t)((uint64_t)c->time[i] - prev));
                prev = (uint64_t)c->time[i];
            }
            break;
        }
        case 1: for (size_t i = 0; i < n; i++) v[i] = c->code[i]; break;
        case 2:
            for (size_t i = 0; i < n; i++) {
                uint32_t b;
                memcpy(&b, &c->numeric[i], 4);
                v[i] = b;
            }
            break;
        case 3: {
            int64_t last = 0;
            for (size_t i = 0; i < n; i++) {
                if (!c->text[i]) {
                    v[i] = 0;
                } else {
                    v[i] = store_zigzag((int64_t)c->text[i] - last) + 1;
                    last = c->text[i];
                }
            }
            break;
        }
        case 4: for (size_t i = 0; i < n; i++) v[i] = c->prov[i] >> 48; break;
        case 5: {
            uint32_t k = x->n_sources;
            for (size_t i = 0; i < n; i++) {
                uint32_t src = (uint32_t)(c->prov[i] >> 48);
                if (src >= k) return -1;
                uint64_t row = c->prov[i] & ((UINT64_C(1) << 48) - 1);
                v[i] = store_zigzag((int64_t)(row - x->last_row[src]));
                x->last_row[src] = row;
            }
            for (size_t i = 0; i < n; i++) x->last_row[c->prov[i] >> 48] = 0;
            break;
        }
        }
        store_planes_put(dst, v, n, stream_width[s]);
        dst += (size_t)stream_width[s] * n;
    }
    size_t r = ZSTD_compress2(x->cctx, x->packed, x->packed_cap, x->raw, (size_t)(dst - x->raw));
    if (ZSTD_isError(r)) return -1;
    *out = x->packed;
    *out_len = r;
    return 0;
}

/* Which planes of a stream hold a non-zero byte (bit p for plane p). Most high planes are all zero
 * (small deltas, small ids), and a plane known to be zero costs nothing to join. */
static unsigned nonzero_planes(const uint8_t *src, size_t n, int width) {
    unsigned mask = 0;
    for (int p = 0; p < width; p++) {
        const uint8_t *pl = src + (size_t)p * n;
        uint64_t acc = 0;
        size_t i = 0;
        for (; i + 8 <= n; i += 8) {
            uint64_t w;
            memcpy(&w, pl + i, 8);
            acc |= w;
        }
        for (; i < n; i++) acc |= pl[i];
        if (acc) mask |= 1u << p;
    }
    return mask;
}

/* Joins the non-zero planes of a stream (store_planes_get, skipping planes that are all zero),
 * one loop per plane so each stays a simple widening loop the compiler vectorises. One body for
 * both element widths (T: uint64_t for times, values and provenance, uint32_t for codes and texts). */
#define DEFINE_JOIN(name, T)                                                                          \
    __attribute__((optimize("O3"))) static void name(T *restrict v, const uint8_t *restrict src, size_t n, \
                                                     int width, unsigned mask) {                      \
        for (size_t i = 0; i < n; i++) v[i] = src[i];                                                 \
        for (int p = 1; p < width; p++) {                                                             \
            if (!(mask >> p & 1)) continue;                                                           \
            const uint8_t *pl = src + (size_t)p * n;                                                  \
            int sh = 8 * p;                                                                           \
            for (size_t i = 0; i < n; i++) v[i] |= (T)pl[i] << sh;                                    \
        }                                                                                             \
    }
DEFINE_JOIN(join64, uint64_t)
DEFINE_JOIN(join32, uint32_t)
#undef DEFINE_JOIN

__attribute__((optimize("O3"))) static uint32_t max32(const uint32_t *v, size_t n) {
    uint32_t m = 0;
    for (size_t i = 0; i < n; i++) m = v[i] > m ? v[i] : m;
    return m;
}

int store_block_begin(store_block_ctx *x, const void *src, size_t len, size_t n, uint64_t n_codes, uint64_t n_texts,
                      const store_block_cols *c, size_t *done, const char **why) {
    *done = 0;
    if (x->v3) return store_block3_open(x->v3, src, len, n, n_codes, n_texts, why);
    if (store_block_decode(x, src, len, n, n_codes, n_texts, c, why)) return -1;
    *done = n;
    return 0;
}

int store_block_more(store_block_ctx *x, size_t upto, const store_block_cols *c, size_t *done, const char **why) {
    *why = "";
    if (x->v3) return store_block3_part(x->v3, upto, c, done, why);
    return 0; /* version 2: decoded whole by store_block_begin */
}

int store_block_decode(store_block_ctx *x, const void *src, size_t len, size_t n, uint64_t n_codes,
                       uint64_t n_texts, const store_block_cols *c, const char **why) {
    if (x->v3) return store_block3_decode(x->v3, src, len, n, n_codes, n_texts, c, why);
    *why = "";
    if (n == 0 || n > STORE_BLOCK_EVENTS || !x->dctx) {
        *why = "has an impossible event count";
        return -1;
    }
    size_t want = n * STORE_BLOCK_BYTES_PER_EVENT;
    unsigned long long content = ZSTD_getFrameContentSize(src, len);
    if (content != want) {
        *why = "is damaged (its frame header does not match the block)";
        return -1;
    }
    size_t r = ZSTD_decompressDCtx(x->dctx, x->raw, want, src, len);
    if (ZSTD_isError(r) || r != want) {
        *why = ZSTD_getErrorCode(r) == ZSTD_error_checksum_wrong ? "fails its checksum"
                                                                  : "does not decompress";
        return -1;
    }
    /* Streams decode into the output columns; the 8-byte ones go through the prov column as
     * temporary, which is written last. */
    const uint8_t *p = x->raw;
    uint64_t *v = c->prov;
    join64(v, p, n, 8, nonzero_planes(p, n, 8));
    p += 8 * n;
    uint64_t prev = 0;
    for (size_t i = 0; i < n; i++) {
        prev += (uint64_t)store_unzigzag(v[i]);
        c->time[i] = (int64_t)prev;
    }
    join32(c->code, p, n, 4, nonzero_planes(p, n, 4));
    p += 4 * n;
    if (max32(c->code, n) >= n_codes) {
        *why = "holds a code id out of range";
        return -1;
    }
    /* The float bits through the text column (written after), copied bit for bit. */
    join32(c->text, p, n, 4, nonzero_planes(p, n, 4));
    memcpy(c->numeric, c->text, n * 4);
    p += 4 * n;
    join64(v, p, n, 8, nonzero_planes(p, n, 8));
    p += 8 * n;
    if (store_block_text_ids(c->text, v, n, n_texts, why)) return -1;
    uint64_t *tmp = x->tmp;
    join64(tmp, p, n, 2, nonzero_planes(p, n, 2));
    join64(v, p + 2 * n, n, 8, nonzero_planes(p + 2 * n, n, 8));
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        if (tmp[i] >= x->n_sources) {
            *why = "holds a source id out of range";
            rc = -1;
            break;
        }
        uint64_t row = (x->last_row[tmp[i]] + (uint64_t)store_unzigzag(v[i])) & ((UINT64_C(1) << 48) - 1);
        x->last_row[tmp[i]] = row;
        v[i] = (tmp[i] << 48) | row;
    }
    for (size_t i = 0; i < n; i++)
        if (tmp[i] < x->n_sources) x->last_row[tmp[i]] = 0;
    return rc;
}

const char *store_read_block(const store *s, uint64_t b, char **buf, size_t *cap, const char **why) {
    const store_block *blk = (const store_block *)s->blocks + b;
    size_t len = (size_t)blk->size;
    if (len > *cap) {
        char *r = realloc(*buf, len);
        if (!r) {
            *why = "cannot be read (out of memory)";
            return NULL;
        }
        *buf = r;
        *cap = len;
    }
    off_t at = (off_t)(s->block_data - (const char *)s->map) + (off_t)blk->offset;
    for (size_t got = 0; got < len;) {
        ssize_t r = pread(s->fd, *buf + got, len - got, at + (off_t)got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            *why = r < 0 ? "cannot be read (an I/O error)" : "cannot be read (the file is shorter than it was)";
            return NULL;
        }
        got += (size_t)r;
    }
    return *buf;
}
