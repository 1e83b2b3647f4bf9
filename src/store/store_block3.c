/* Version 3 event blocks: each block's columns become six integer streams (time deltas, code
 * ids, float bits, text-id deltas, source ids, and rows as offsets from their source's lowest row
 * in the block), and each stream is frame-of-reference bit-packed on its own, with no
 * general-purpose compressor; a CRC-32 over the block checks it. store_format.h gives the byte
 * layout.
 *
 * Why not zstd (version 2): decompressing was 60% of a pass over the store and made a pass three
 * to five times slower than reading version 1's raw columns. A bit-packed stream decodes in one
 * loop per stream that does a load, a shift, a mask and a multiply-add per value (the width is a
 * compile-time constant in each of the scalar unpackers, so the offsets fold; with AVX2, eight
 * values at a time, with AVX-512, sixteen), and most of the size zstd won came from the narrowing the packing does
 * itself: small deltas, ids in a block's range, a block's few distinct lab values.
 *
 * A stream is packed one of two ways, whichever is smaller:
 *   FOR   value = base + mult * packed (width w bits), except for listed positions (exceptions)
 *         whose values are stored whole: the rare big jump (a new subject's first time, a static
 *         fact's TIME_NULL) does not widen every value. mult is the greatest common divisor of
 *         the regular values' offsets: times recorded to the second or minute are multiples of
 *         10^6 or 6 * 10^7 µs.
 *   DICT  the block's distinct values, sorted, as a FOR stream, then each value's index as a
 *         FOR stream: for float values (a block holds a few thousand distinct lab results and
 *         NaN) and code ids.
 * The encoder's choices depend only on the block's values, so outputs are byte-identical
 * whatever the thread count or memory budget. */
#include "store/store_block3.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"
#include "store/store_crc.h"
#include "store/store_format.h"
#include "util/err.h"

#define DICT_MAX 16384u  /* distinct values a dictionary may hold */
#define HASH_SLOTS 32768u /* the encoder's table of distinct values: twice DICT_MAX */
#define EXC_BITS 80       /* an exception's cost: 16-bit position, 64-bit value */
#define STREAM_HEADER 24  /* u8 mode, u8 width, u16 0, u32 count, u64 base, u64 mult */
#define MODE_FOR 0
#define MODE_DICT 1
#define ROWS_FROM_LOWEST 0 /* row = the source's lowest row in the block + offset */
#define ROWS_DELTA 1       /* row = the source's previous row in the block + zigzag delta */
/* Events decoded per step: a slice of every stream and its temporaries fit L1 (4,096 events are
 * 112 KiB of columns, which L2 holds). A multiple of 8 (the unpackers' groups). */
#define PART 4096u
_Static_assert(PART % 8 == 0 && STORE_BLOCK_EVENTS % PART == 0, "parts of whole groups");

/* A FOR stream's header, checked against the bytes that remain. */
typedef struct {
    int w;
    uint32_t n_exc;
    uint64_t base, mult;
    const uint8_t *packed, *pos, *vals; /* packed values; exception positions (u16), values (u64) */
} for_hdr;

/* One stream of a block being decoded in parts (store_block3_open, store_block3_part). */
typedef struct {
    for_hdr h;          /* the packed values (of a dictionary stream: its indices) */
    size_t avail;       /* packed bytes */
    uint32_t next_exc;  /* the first exception not yet applied */
    const uint32_t *dict; /* a dictionary stream's values, else NULL */
    uint64_t limit;     /* 32-bit streams: every value is below it (a dictionary's: its size) */
    const char *range_why; /* what a value at or above limit means */
    int wide;           /* 32-bit stream whose packed values might not fit 32 bits: through 64 */
    int check;          /* 32-bit stream whose bound does not settle its range: each value checked */
} part_stream;

enum { ST_TIME, ST_CODE, ST_VALUE, ST_TEXT, ST_SOURCE, ST_ROW, N_ST };

struct store_block3_ctx {
    uint64_t *a;            /* (STORE_BLOCK_EVENTS) one stream's values */
    uint64_t *b;            /* (STORE_BLOCK_EVENTS) encoder: dictionary indices, row deltas */
    uint64_t *dict;         /* (DICT_MAX) encoder: a dictionary */
    uint32_t *dict32[3];    /* (DICT_MAX each) decoder: the code, value and source dictionaries */
    uint32_t *idx32;        /* (PART) decoder: one part's dictionary indices */
    uint32_t *src32;        /* (PART) decoder: one part's source ids */
    part_stream st[N_ST];   /* decoder: the open block's streams */
    size_t n, done;         /* its events (0: none open), how many decoded so far */
    uint64_t n_texts;
    uint64_t time_sum;      /* the running sum of time deltas */
    int64_t text_last;      /* the last text id */
    uint64_t row_mode;
    uint8_t *out;           /* one encoded block (encoder) */
    size_t out_cap;
    uint64_t *hkey;         /* (HASH_SLOTS) encoder: distinct values */
    uint32_t *hval;         /* (HASH_SLOTS) their index in the sorted dictionary; 0 = empty slot */
    uint64_t *row_base;     /* (n_sources) each source's lowest row in the block */
    uint64_t *prev_row;     /* (n_sources) encoder */
    uint32_t n_sources;
    int simd;               /* the vector kernels: 0 none, 1 AVX2, 2 AVX2 and AVX-512 */
    int crc;                /* store_crc32_with's kernel: the fastest, or libdeflate's without SIMD */
};

static int have_simd(void);

store_block3_ctx *store_block3_ctx_new(uint32_t n_sources, int encoder) {
    store_block3_ctx *x = calloc(1, sizeof *x);
    if (!x) return NULL;
    const size_t E = STORE_BLOCK_EVENTS;
    x->n_sources = n_sources;
    x->simd = getenv("CLINFM_STORE_NO_SIMD") ? 0 : have_simd();
    x->crc = getenv("CLINFM_STORE_NO_SIMD") ? 0 : 2;
    /* Measuring the AVX2 path: as a CPU without AVX-512, whose CRC folds 128 bits at a time. */
    if (getenv("CLINFM_STORE_NO_AVX512")) {
        x->simd = x->simd > 1 ? 1 : x->simd;
        x->crc = x->crc > 1 ? 1 : x->crc;
    }
    x->a = malloc(E * 8);
    for (int k = 0; k < 3; k++) x->dict32[k] = malloc(DICT_MAX * 4);
    x->idx32 = malloc(PART * 4);
    x->src32 = malloc(PART * 4);
    x->row_base = calloc((size_t)n_sources + 16, sizeof *x->row_base); /* + 16: join_avx512's table */
    if (!x->a || !x->dict32[0] || !x->dict32[1] || !x->dict32[2] || !x->idx32 || !x->src32 || !x->row_base) goto fail;
    if (encoder) {
        x->b = malloc(E * 8);
        x->dict = malloc(DICT_MAX * 8);
        if (!x->b || !x->dict) goto fail;
        /* Worst case per stream (six of a block's length, one of n_sources): whole 8-byte values
         * plus headers and padding; a dictionary or exceptions are chosen only when smaller. */
        x->out_cap = 6 * (E * 8 + 4 * STREAM_HEADER + 64) + ((size_t)n_sources + 1) * 8 + 4 * STREAM_HEADER + 128;
        x->out = malloc(x->out_cap);
        x->hkey = malloc(HASH_SLOTS * sizeof *x->hkey);
        x->hval = malloc(HASH_SLOTS * sizeof *x->hval);
        x->prev_row = calloc(n_sources ? n_sources : 1, sizeof *x->prev_row);
        if (!x->out || !x->hkey || !x->hval || !x->prev_row) goto fail;
    }
    return x;
fail:
    store_block3_ctx_free(x);
    return NULL;
}

void store_block3_ctx_free(store_block3_ctx *x) {
    if (!x) return;
    CF_FREE_ALL(x->a, x->b, x->dict, x->dict32[0], x->dict32[1], x->dict32[2], x->idx32, x->src32, x->out, x->hkey, x->hval, x->row_base, x->prev_row, x);
}

static inline int bitlen(uint64_t x) { return x ? 64 - __builtin_clzll(x) : 0; }
static inline uint64_t get64(const uint8_t *p) {
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}
static inline void put64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }
static inline uint32_t get32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* Bytes of a packed area of n values of w bits: 8 bytes of padding after the last value, so an
 * unpacker may read any value with one 8-byte load (w <= 56 leaves room for the shift). */
static size_t packed_len(size_t n, int w) { return w == 64 ? n * 8 : (n * (size_t)w + 7) / 8 + 8; }

/* ---------------------------------------------------------------- decoding */

/* Value i of w bits is out[i] = base + mult * packed (wrapping). One function per width and
 * output type, so that in each group of eight values (w bytes) every load offset and shift is a
 * constant; the 32-bit outputs keep the low half (a 32-bit column's stream is checked to fit
 * before it is unpacked this way). */
#define UNPACK_T(W, T, name)                                                                            \
    __attribute__((optimize("O3"))) static void name(T *restrict out, const uint8_t *restrict src, size_t n, \
                                                     uint64_t base, uint64_t mult) {                    \
        const uint64_t mask = (UINT64_C(1) << W) - 1;                                                   \
        size_t i = 0;                                                                                   \
        for (; i + 8 <= n; i += 8) {                                                                    \
            const uint8_t *g = src + (i / 8) * W;                                                       \
            _Pragma("GCC unroll 8") for (int j = 0; j < 8; j++)                                         \
                out[i + j] = (T)(base + mult * ((get64(g + (j * W) / 8) >> ((j * W) % 8)) & mask));     \
        }                                                                                               \
        for (; i < n; i++) {                                                                            \
            size_t bit = i * W;                                                                         \
            out[i] = (T)(base + mult * ((get64(src + bit / 8) >> (bit % 8)) & mask));                   \
        }                                                                                               \
    }
#define UNPACK(W) UNPACK_T(W, uint64_t, unpack64_##W) UNPACK_T(W, uint32_t, unpack32_##W)
#define UNPACK10(a) UNPACK(a##0) UNPACK(a##1) UNPACK(a##2) UNPACK(a##3) UNPACK(a##4) UNPACK(a##5) \
                    UNPACK(a##6) UNPACK(a##7) UNPACK(a##8) UNPACK(a##9)
UNPACK(0) UNPACK(1) UNPACK(2) UNPACK(3) UNPACK(4) UNPACK(5) UNPACK(6) UNPACK(7) UNPACK(8) UNPACK(9)
UNPACK10(1) UNPACK10(2) UNPACK10(3) UNPACK10(4)
UNPACK(50) UNPACK(51) UNPACK(52) UNPACK(53) UNPACK(54) UNPACK(55) UNPACK(56)
#undef UNPACK10
#undef UNPACK
#undef UNPACK_T

__attribute__((optimize("O3"))) static void unpack64_64(uint64_t *restrict out, const uint8_t *restrict src,
                                                        size_t n, uint64_t base, uint64_t mult) {
    for (size_t i = 0; i < n; i++) out[i] = base + mult * get64(src + 8 * i);
}
__attribute__((optimize("O3"))) static void unpack32_64(uint32_t *restrict out, const uint8_t *restrict src,
                                                        size_t n, uint64_t base, uint64_t mult) {
    for (size_t i = 0; i < n; i++) out[i] = (uint32_t)(base + mult * get64(src + 8 * i));
}

typedef void (*unpack64_fn)(uint64_t *restrict, const uint8_t *restrict, size_t, uint64_t, uint64_t);
typedef void (*unpack32_fn)(uint32_t *restrict, const uint8_t *restrict, size_t, uint64_t, uint64_t);
#define F10(t, a) t##a##0, t##a##1, t##a##2, t##a##3, t##a##4, t##a##5, t##a##6, t##a##7, t##a##8, t##a##9
#define TABLE(t) {t##0, t##1, t##2, t##3, t##4, t##5, t##6, t##7, t##8, t##9, F10(t, 1), F10(t, 2), F10(t, 3), \
                  F10(t, 4), t##50, t##51, t##52, t##53, t##54, t##55, t##56, [64] = t##64}
static const unpack64_fn unpack64[65] = TABLE(unpack64_);
static const unpack32_fn unpack32[65] = TABLE(unpack32_);
#undef TABLE
#undef F10

/* The same with AVX2 where the CPU has it (checked once per context), for widths up to 24:
 * eight values are w bytes; each 128-bit half takes four, a byte shuffle puts each value's four
 * bytes in its lane and a variable shift and mask leave its bits. Returns how many values it did
 * (a multiple of 8, never reading past avail bytes); the scalar unpacker does the rest. */
#if defined(__x86_64__) && !defined(CLINFM_NO_SIMD) /* CLINFM_NO_SIMD: build without them */
#include <immintrin.h>
#define SIMD_MAX_WIDTH 24

/* The byte shuffles and shifts of each width, made once (a part calls the unpackers a few times
 * per stream, and making them per call was 2% of a pass). */
static uint8_t tab_shuf8[SIMD_MAX_WIDTH + 1][32], tab_perm16[SIMD_MAX_WIDTH + 1][64];
static uint32_t tab_shift8[SIMD_MAX_WIDTH + 1][8], tab_shift16[SIMD_MAX_WIDTH + 1][16];
static pthread_once_t tab_once = PTHREAD_ONCE_INIT;

static void tab_init(void) {
    for (int w = 0; w <= SIMD_MAX_WIDTH; w++) {
        int o4 = 4 * w / 8;
        for (int j = 0; j < 8; j++) {
            int o = j * w / 8, rel = j < 4 ? o : o - o4;
            for (int k = 0; k < 4; k++) tab_shuf8[w][(j / 4) * 16 + (j % 4) * 4 + k] = (uint8_t)(rel + k);
            tab_shift8[w][j] = (uint32_t)(j * w % 8);
        }
        for (int j = 0; j < 16; j++) {
            for (int k = 0; k < 4; k++) tab_perm16[w][j * 4 + k] = (uint8_t)(j * w / 8 + k);
            tab_shift16[w][j] = (uint32_t)(j * w % 8);
        }
    }
}

__attribute__((target("avx2"))) static size_t simd_groups(const uint8_t *src, size_t n, size_t avail, int w,
                                                          __m256i *shuf, __m256i *shift, int *o4) {
    *o4 = 4 * w / 8;
    *shuf = _mm256_loadu_si256((const __m256i *)tab_shuf8[w]);
    *shift = _mm256_loadu_si256((const __m256i *)tab_shift8[w]);
    /* Groups whose two 16-byte loads stay inside the packed bytes. */
    size_t groups = n / 8;
    if (avail < (size_t)*o4 + 16) return 0;
    size_t fit = w ? (avail - (size_t)*o4 - 16) / (size_t)w + 1 : groups;
    (void)src;
    return groups < fit ? groups : fit;
}

__attribute__((target("avx2"))) static inline __m256i simd_group(const uint8_t *g, int o4, __m256i shuf,
                                                                 __m256i shift, __m256i mask) {
    __m256i x = _mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)g));
    x = _mm256_inserti128_si256(x, _mm_loadu_si128((const __m128i *)(g + o4)), 1);
    return _mm256_and_si256(_mm256_srlv_epi32(_mm256_shuffle_epi8(x, shuf), shift), mask);
}

__attribute__((target("avx2"))) static size_t unpack32_simd(uint32_t *out, const uint8_t *src, size_t n, size_t avail,
                                                            int w, uint64_t base, uint64_t mult) {
    __m256i shuf, shift;
    int o4;
    size_t groups = simd_groups(src, n, avail, w, &shuf, &shift, &o4);
    const __m256i mask = _mm256_set1_epi32((int)((UINT32_C(1) << w) - 1));
    const __m256i vb = _mm256_set1_epi32((int)(uint32_t)base), vm = _mm256_set1_epi32((int)(uint32_t)mult);
    for (size_t g = 0; g < groups; g++) {
        __m256i x = simd_group(src + g * (size_t)w, o4, shuf, shift, mask);
        _mm256_storeu_si256((__m256i *)(out + 8 * g), _mm256_add_epi32(vb, _mm256_mullo_epi32(x, vm)));
    }
    return groups * 8;
}

/* base + mult * x for four 64-bit lanes holding values below 2^32 (wrapping, as the scalar). */
__attribute__((target("avx2"))) static inline __m256i simd_fma64(__m256i x, __m256i vb, __m256i mlo, __m256i mhi) {
    __m256i lo = _mm256_mul_epu32(x, mlo), hi = _mm256_slli_epi64(_mm256_mul_epu32(x, mhi), 32);
    return _mm256_add_epi64(vb, _mm256_add_epi64(lo, hi));
}

__attribute__((target("avx2"))) static size_t unpack64_simd(uint64_t *out, const uint8_t *src, size_t n, size_t avail,
                                                            int w, uint64_t base, uint64_t mult) {
    __m256i shuf, shift;
    int o4;
    size_t groups = simd_groups(src, n, avail, w, &shuf, &shift, &o4);
    const __m256i mask = _mm256_set1_epi32((int)((UINT32_C(1) << w) - 1));
    const __m256i vb = _mm256_set1_epi64x((long long)base), mlo = _mm256_set1_epi64x((long long)(mult & 0xffffffffu)),
                  mhi = _mm256_set1_epi64x((long long)(mult >> 32));
    for (size_t g = 0; g < groups; g++) {
        __m256i x = simd_group(src + g * (size_t)w, o4, shuf, shift, mask);
        __m256i a = _mm256_cvtepu32_epi64(_mm256_castsi256_si128(x)), b = _mm256_cvtepu32_epi64(_mm256_extracti128_si256(x, 1));
        _mm256_storeu_si256((__m256i *)(out + 8 * g), simd_fma64(a, vb, mlo, mhi));
        _mm256_storeu_si256((__m256i *)(out + 8 * g + 4), simd_fma64(b, vb, mlo, mhi));
    }
    return groups * 8;
}

/* The same with AVX-512 (VBMI's byte permute): sixteen values (2w bytes, w <= 24) a step from one
 * masked 64-byte load, which reads no byte past the ones the sixteen values need. */
#define TARGET_512 __attribute__((target("avx512f,avx512bw,avx512vbmi")))
TARGET_512 static size_t groups16(size_t n, size_t avail, int w, __m512i *perm, __m512i *shift, __mmask64 *load) {
    *perm = _mm512_loadu_si512(tab_perm16[w]);
    *shift = _mm512_loadu_si512(tab_shift16[w]);
    size_t need = (size_t)(15 * w / 8 + 4), groups = n / 16; /* bytes a step reads */
    *load = need >= 64 ? ~(__mmask64)0 : (((__mmask64)1 << need) - 1);
    if (avail < need) return 0;
    size_t fit = w ? (avail - need) / (2 * (size_t)w) + 1 : groups;
    return groups < fit ? groups : fit;
}

TARGET_512 static size_t unpack32_avx512(uint32_t *out, const uint8_t *src, size_t n, size_t avail, int w,
                                         uint64_t base, uint64_t mult) {
    __m512i perm, shift;
    __mmask64 load;
    size_t groups = groups16(n, avail, w, &perm, &shift, &load);
    const __m512i mask = _mm512_set1_epi32((int)((UINT32_C(1) << w) - 1)), vb = _mm512_set1_epi32((int)(uint32_t)base),
                  vm = _mm512_set1_epi32((int)(uint32_t)mult);
    for (size_t g = 0; g < groups; g++) {
        __m512i x = _mm512_permutexvar_epi8(perm, _mm512_maskz_loadu_epi8(load, src + g * 2 * (size_t)w));
        x = _mm512_and_si512(_mm512_srlv_epi32(x, shift), mask);
        _mm512_storeu_si512(out + 16 * g, _mm512_add_epi32(vb, _mm512_mullo_epi32(x, vm)));
    }
    return groups * 16;
}

TARGET_512 static inline __m512i fma64_avx512(__m512i x, __m512i vb, __m512i mlo, __m512i mhi) {
    __m512i lo = _mm512_mul_epu32(x, mlo), hi = _mm512_slli_epi64(_mm512_mul_epu32(x, mhi), 32);
    return _mm512_add_epi64(vb, _mm512_add_epi64(lo, hi));
}

TARGET_512 static size_t unpack64_avx512(uint64_t *out, const uint8_t *src, size_t n, size_t avail, int w,
                                         uint64_t base, uint64_t mult) {
    __m512i perm, shift;
    __mmask64 load;
    size_t groups = groups16(n, avail, w, &perm, &shift, &load);
    const __m512i mask = _mm512_set1_epi32((int)((UINT32_C(1) << w) - 1)), vb = _mm512_set1_epi64((long long)base),
                  mlo = _mm512_set1_epi64((long long)(mult & 0xffffffffu)), mhi = _mm512_set1_epi64((long long)(mult >> 32));
    for (size_t g = 0; g < groups; g++) {
        __m512i x = _mm512_permutexvar_epi8(perm, _mm512_maskz_loadu_epi8(load, src + g * 2 * (size_t)w));
        x = _mm512_and_si512(_mm512_srlv_epi32(x, shift), mask);
        __m512i a = _mm512_cvtepu32_epi64(_mm512_castsi512_si256(x)), b = _mm512_cvtepu32_epi64(_mm512_extracti64x4_epi64(x, 1));
        _mm512_storeu_si512(out + 16 * g, fma64_avx512(a, vb, mlo, mhi));
        _mm512_storeu_si512(out + 16 * g + 8, fma64_avx512(b, vb, mlo, mhi));
    }
    return groups * 16;
}

/* Largest of n 32-bit values. */
__attribute__((target("avx2"), optimize("O3"))) static uint32_t max32_simd(const uint32_t *v, size_t n) {
    uint32_t m = 0;
    for (size_t i = 0; i < n; i++) m = v[i] > m ? v[i] : m;
    return m;
}

/* The AVX-512 kernels: the dictionary lookups and the row join, 16 and 8 lanes a gather (with
 * AVX2's 8 and 4 they measured no faster than scalar loads; with AVX-512 on this CPU, Zen 5, they
 * are: docs/SCALE.md, session 8). Each returns how many values it did. */
__attribute__((target("avx512f"))) static size_t lookup_avx512(uint32_t *out, const uint32_t *idx, const uint32_t *d,
                                                               uint32_t nd, size_t m, uint32_t *bad) {
    const __m512i vnd = _mm512_set1_epi32((int)nd), vmask = _mm512_set1_epi32((int)(DICT_MAX - 1));
    __mmask16 over = 0;
    size_t i = 0;
    for (; i + 16 <= m; i += 16) {
        __m512i v = _mm512_loadu_si512(idx + i);
        over |= _mm512_cmpge_epu32_mask(v, vnd);
        _mm512_storeu_si512(out + i, _mm512_i32gather_epi32(_mm512_and_si512(v, vmask), d, 4));
    }
    *bad |= over != 0;
    return i;
}

/* The row join when a part's sources all lie in [first, first + 16) (a FOR stream of at most 4
 * bits, no divisor, no exception: the usual case, a block holding a few tables' rows): each
 * source's lowest row comes from a 16-entry table in two registers (a permute), not a gather. */
__attribute__((target("avx512f"))) static size_t join_avx512(uint64_t *v, const uint32_t *sc, const uint64_t *rb,
                                                             uint32_t first, size_t m) {
    const __m512i rowmask = _mm512_set1_epi64((long long)STORE_MAX_ROW), t0 = _mm512_loadu_si512(rb + first),
                  t1 = _mm512_loadu_si512(rb + first + 8);
    const __m256i vfirst = _mm256_set1_epi32((int)first);
    size_t i = 0;
    for (; i + 8 <= m; i += 8) {
        __m256i s = _mm256_loadu_si256((const __m256i *)(sc + i));
        __m512i base = _mm512_permutex2var_epi64(t0, _mm512_cvtepu32_epi64(_mm256_sub_epi32(s, vfirst)), t1);
        __m512i row = _mm512_and_si512(_mm512_add_epi64(base, _mm512_loadu_si512(v + i)), rowmask);
        _mm512_storeu_si512(v + i, _mm512_or_si512(row, _mm512_slli_epi64(_mm512_cvtepu32_epi64(s), 48)));
    }
    return i;
}

/* The same two with AVX2 alone (session 9; a CPU without AVX-512). The lookup: an 8-lane gather
 * (on this Zen 5, with the block read by pread, a little faster than scalar loads). The join: the
 * 16-entry table as its 32-bit halves in four registers, an entry picked by two 8-lane permutes and
 * a blend on the index's bit 3, the halves interleaved back into 64-bit lanes. */
__attribute__((target("avx2"))) static size_t lookup_avx2(uint32_t *out, const uint32_t *idx, const uint32_t *d,
                                                          uint32_t nd, size_t m, uint32_t *bad) {
    const __m256i vnd = _mm256_set1_epi32((int)nd), vmask = _mm256_set1_epi32((int)(DICT_MAX - 1));
    __m256i over = _mm256_setzero_si256();
    size_t i = 0;
    for (; i + 8 <= m; i += 8) {
        __m256i v = _mm256_loadu_si256((const __m256i *)(idx + i));
        over = _mm256_or_si256(over, _mm256_cmpeq_epi32(_mm256_max_epu32(v, vnd), v)); /* v >= nd */
        _mm256_storeu_si256((__m256i *)(out + i), _mm256_i32gather_epi32((const int *)d, _mm256_and_si256(v, vmask), 4));
    }
    *bad |= !_mm256_testz_si256(over, over);
    return i;
}

__attribute__((target("avx2"))) static size_t join_avx2(uint64_t *v, const uint32_t *sc, const uint64_t *rb,
                                                        uint32_t first, size_t m) {
    uint32_t lo[16], hi[16];
    for (int k = 0; k < 16; k++) {
        lo[k] = (uint32_t)rb[first + (uint32_t)k];
        hi[k] = (uint32_t)(rb[first + (uint32_t)k] >> 32);
    }
    const __m256i lo0 = _mm256_loadu_si256((const __m256i *)lo), lo1 = _mm256_loadu_si256((const __m256i *)(lo + 8)),
                  hi0 = _mm256_loadu_si256((const __m256i *)hi), hi1 = _mm256_loadu_si256((const __m256i *)(hi + 8)),
                  rowmask = _mm256_set1_epi64x((long long)STORE_MAX_ROW), vfirst = _mm256_set1_epi32((int)first);
    size_t i = 0;
    for (; i + 8 <= m; i += 8) {
        __m256i s = _mm256_loadu_si256((const __m256i *)(sc + i)), k = _mm256_sub_epi32(s, vfirst);
        __m256 upper = _mm256_castsi256_ps(_mm256_slli_epi32(k, 28)); /* bit 3 of the index as the sign */
        __m256i l = _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(_mm256_permutevar8x32_epi32(lo0, k)),
                                                         _mm256_castsi256_ps(_mm256_permutevar8x32_epi32(lo1, k)), upper));
        __m256i h = _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(_mm256_permutevar8x32_epi32(hi0, k)),
                                                         _mm256_castsi256_ps(_mm256_permutevar8x32_epi32(hi1, k)), upper));
        __m256i a = _mm256_unpacklo_epi32(l, h), b = _mm256_unpackhi_epi32(l, h); /* events 0 1 4 5, 2 3 6 7 */
        __m256i b0 = _mm256_permute2x128_si256(a, b, 0x20), b1 = _mm256_permute2x128_si256(a, b, 0x31);
        __m256i s0 = _mm256_slli_epi64(_mm256_cvtepu32_epi64(_mm256_castsi256_si128(s)), 48),
                s1 = _mm256_slli_epi64(_mm256_cvtepu32_epi64(_mm256_extracti128_si256(s, 1)), 48);
        __m256i r0 = _mm256_and_si256(_mm256_add_epi64(b0, _mm256_loadu_si256((const __m256i *)(v + i))), rowmask),
                r1 = _mm256_and_si256(_mm256_add_epi64(b1, _mm256_loadu_si256((const __m256i *)(v + i + 4))), rowmask);
        _mm256_storeu_si256((__m256i *)(v + i), _mm256_or_si256(r0, s0));
        _mm256_storeu_si256((__m256i *)(v + i + 4), _mm256_or_si256(r1, s1));
    }
    return i;
}

static int have_simd(void) {
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx2")) return 0;
    pthread_once(&tab_once, tab_init);
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vbmi")
               ? 2 : 1;
}
#else
#define SIMD_MAX_WIDTH (-1)
static size_t unpack32_simd(uint32_t *out, const uint8_t *src, size_t n, size_t avail, int w, uint64_t base, uint64_t mult) {
    return 0;
}
static size_t unpack64_simd(uint64_t *out, const uint8_t *src, size_t n, size_t avail, int w, uint64_t base, uint64_t mult) {
    return 0;
}
static int have_simd(void) { return 0; }
static size_t lookup_avx512(uint32_t *out, const uint32_t *idx, const uint32_t *d, uint32_t nd, size_t m, uint32_t *bad) {
    return 0;
}
static size_t join_avx512(uint64_t *v, const uint32_t *sc, const uint64_t *rb, uint32_t first, size_t m) { return 0; }
static size_t lookup_avx2(uint32_t *out, const uint32_t *idx, const uint32_t *d, uint32_t nd, size_t m, uint32_t *bad) {
    return 0;
}
static size_t join_avx2(uint64_t *v, const uint32_t *sc, const uint64_t *rb, uint32_t first, size_t m) { return 0; }
static size_t unpack32_avx512(uint32_t *out, const uint8_t *src, size_t n, size_t avail, int w, uint64_t base,
                              uint64_t mult) {
    return 0;
}
static size_t unpack64_avx512(uint64_t *out, const uint8_t *src, size_t n, size_t avail, int w, uint64_t base,
                              uint64_t mult) {
    return 0;
}
static uint32_t max32_simd(const uint32_t *v, size_t n) { return UINT32_MAX; } /* never called: simd is 0 */
#endif

/* The unpackers above, the vector one first where it applies; avail: the packed bytes from src on. */
static void run_unpack32(const store_block3_ctx *x, uint32_t *out, const uint8_t *src, size_t n, size_t avail, int w,
                         uint64_t base, uint64_t mult) {
    size_t done = 0;
    if (x->simd > 1 && w <= SIMD_MAX_WIDTH) done = unpack32_avx512(out, src, n, avail, w, base, mult);
    if (x->simd && w <= SIMD_MAX_WIDTH && n - done >= 8) {
        size_t off = done / 8 * (size_t)w;
        done += unpack32_simd(out + done, src + off, n - done, avail - off, w, base, mult);
    }
    unpack32[w](out + done, src + done / 8 * (size_t)w, n - done, base, mult);
}
static void run_unpack64(const store_block3_ctx *x, uint64_t *out, const uint8_t *src, size_t n, size_t avail, int w,
                         uint64_t base, uint64_t mult) {
    size_t done = 0;
    if (x->simd > 1 && w <= SIMD_MAX_WIDTH) done = unpack64_avx512(out, src, n, avail, w, base, mult);
    if (x->simd && w <= SIMD_MAX_WIDTH && n - done >= 8) {
        size_t off = done / 8 * (size_t)w;
        done += unpack64_simd(out + done, src + off, n - done, avail - off, w, base, mult);
    }
    unpack64[w](out + done, src + done / 8 * (size_t)w, n - done, base, mult);
}

static const uint8_t *read_for(const uint8_t *p, const uint8_t *end, size_t n, for_hdr *h, const char **why) {
    if (end - p < STREAM_HEADER || p[0] != MODE_FOR || p[2] || p[3]) {
        *why = "is malformed (a stream header)";
        return NULL;
    }
    h->w = p[1];
    memcpy(&h->n_exc, p + 4, 4);
    h->base = get64(p + 8);
    h->mult = get64(p + 16);
    p += STREAM_HEADER;
    if (h->w > 64 || !unpack64[h->w] || h->n_exc > n) {
        *why = "is malformed (a stream's width or exception count)";
        return NULL;
    }
    size_t len = packed_len(n, h->w);
    if ((size_t)(end - p) < len || (size_t)(end - p - len) < (size_t)h->n_exc * 10) {
        *why = "is malformed (a stream runs past the block)";
        return NULL;
    }
    h->packed = p;
    h->pos = p + len;
    h->vals = h->pos + (size_t)h->n_exc * 2;
    return h->vals + (size_t)h->n_exc * 8;
}

/* The largest value the packed part can give (exceptions aside); 0 when it could wrap. */
static int for_bound(const for_hdr *h, uint64_t *hi) {
    uint64_t top = h->w == 64 ? UINT64_MAX : (UINT64_C(1) << h->w) - 1, m;
    return !__builtin_mul_overflow(top, h->mult, &m) && !__builtin_add_overflow(m, h->base, hi);
}

/* Exception e: its position (checked < n) and value. */
static int for_exc(const for_hdr *h, uint32_t e, size_t n, uint16_t *at, uint64_t *v, const char **why) {
    memcpy(at, h->pos + 2 * (size_t)e, 2);
    *v = get64(h->vals + 8 * (size_t)e);
    if (*at >= n) {
        *why = "is malformed (an exception's position)";
        return -1;
    }
    return 0;
}

__attribute__((optimize("O3"))) static uint64_t max64(const uint64_t *v, size_t n) {
    uint64_t m = 0;
    for (size_t i = 0; i < n; i++) m = v[i] > m ? v[i] : m;
    return m;
}
__attribute__((optimize("O3"))) static uint32_t max32(const uint32_t *v, size_t n) {
    uint32_t m = 0;
    for (size_t i = 0; i < n; i++) m = v[i] > m ? v[i] : m;
    return m;
}

/* A FOR stream of n values whose every value must be < limit (<= 2^32), into 32-bit out: a
 * dictionary, decoded whole when its block is opened. */
static const uint8_t *get_for32(store_block3_ctx *x, const uint8_t *p, const uint8_t *end, uint32_t *out,
                                size_t n, uint64_t limit, const char **why) {
    for_hdr h;
    if (!(p = read_for(p, end, n, &h, why))) return NULL;
    uint64_t hi;
    if (!for_bound(&h, &hi) || hi > UINT32_MAX) {
        /* Values that might not fit 32 bits (no encoder writes this): the exact way. */
        uint64_t *a = x->a;
        run_unpack64(x, a, h.packed, n, packed_len(n, h.w), h.w, h.base, h.mult);
        for (uint32_t e = 0; e < h.n_exc; e++) {
            uint16_t at;
            uint64_t v;
            if (for_exc(&h, e, n, &at, &v, why)) return NULL;
            a[at] = v;
        }
        if (max64(a, n) >= limit) goto range;
        for (size_t i = 0; i < n; i++) out[i] = (uint32_t)a[i];
        return p;
    }
    run_unpack32(x, out, h.packed, n, packed_len(n, h.w), h.w, h.base, h.mult);
    for (uint32_t e = 0; e < h.n_exc; e++) {
        uint16_t at;
        uint64_t v;
        if (for_exc(&h, e, n, &at, &v, why)) return NULL;
        if (v >= limit) goto range;
        out[at] = (uint32_t)v;
    }
    if (hi >= limit && (x->simd ? max32_simd(out, n) : max32(out, n)) >= limit) goto range;
    return p;
range:
    *why = "holds a value out of range";
    return NULL;
}

/* A FOR stream into 64-bit out, whole (the row bases: any value is valid). */
static const uint8_t *get_for64(const store_block3_ctx *x, const uint8_t *p, const uint8_t *end, uint64_t *out,
                                size_t n, const char **why) {
    for_hdr h;
    if (!(p = read_for(p, end, n, &h, why))) return NULL;
    run_unpack64(x, out, h.packed, n, packed_len(n, h.w), h.w, h.base, h.mult);
    for (uint32_t e = 0; e < h.n_exc; e++) {
        uint16_t at;
        uint64_t v;
        if (for_exc(&h, e, n, &at, &v, why)) return NULL;
        out[at] = v;
    }
    return p;
}

/* ---------------------------------------------------------------- a block in parts
 *
 * Why in parts: decoding a whole block (65,536 events) wrote 1.8 MB of columns, more than this
 * core's L2, before the reader looked at the first event, so every column was written to memory
 * and read back from it. store_block3_open checks everything that does not need the values
 * decoded (the CRC, every stream's header and length, exception positions, the dictionaries and
 * the row bases); store_block3_part then decodes events front to back, PART at a time, each
 * stream's slice through temporaries that stay in L1, into the caller's whole-block columns, and
 * checks each value (ids in range) before it returns them. A cursor asks for the events it hands
 * out next, which it reads while they are still in cache. The bytes decoded are the same whatever
 * the parts: state that runs through a block (the time sum, the last text id, each source's
 * previous row) is carried from part to part. */


/* Checks a FOR stream's exceptions: positions inside the block and ascending (as the encoder
 * writes them), so that a part applies its own by walking them. */
static const uint8_t *open_for(const uint8_t *p, const uint8_t *end, size_t n, part_stream *s, const char **why) {
    if (!(p = read_for(p, end, n, &s->h, why))) return NULL;
    s->avail = packed_len(n, s->h.w);
    s->next_exc = 0;
    /* Each position above the one before (no dependency from one to the next: vectorised, as a
     * block's time stream holds thousands), the last below n. */
    const uint8_t *pos = s->h.pos;
    uint32_t bad = 0, n_exc = s->h.n_exc;
    for (uint32_t e = 1; e < n_exc; e++) {
        uint16_t at, before;
        memcpy(&at, pos + 2 * (size_t)e, 2);
        memcpy(&before, pos + 2 * (size_t)e - 2, 2);
        bad |= at <= before;
    }
    uint16_t last = 0;
    if (n_exc) memcpy(&last, pos + 2 * (size_t)(n_exc - 1), 2);
    if (bad || last >= n) {
        *why = "is malformed (an exception's position)";
        return NULL;
    }
    return p;
}

/* A stream of 32-bit values below limit (<= 2^32), of either mode: the dictionary decoded (into
 * dict) and checked here, the values per part. range_why: what a value out of range means. */
static const uint8_t *open_stream32(store_block3_ctx *x, const uint8_t *p, const uint8_t *end, part_stream *s,
                                    size_t n, uint64_t limit, uint32_t *dict, const char *range_why, const char **why) {
    memset(s, 0, sizeof *s);
    s->limit = limit;
    s->range_why = range_why;
    if (end - p >= STREAM_HEADER && p[0] == MODE_DICT) {
        uint32_t nd;
        memcpy(&nd, p + 4, 4);
        if (nd == 0 || nd > DICT_MAX) {
            *why = "is malformed (a dictionary's size)";
            return NULL;
        }
        if (!(p = get_for32(x, p + STREAM_HEADER, end, dict, nd, limit, why))) {
            if (!strcmp(*why, "holds a value out of range")) *why = range_why;
            return NULL;
        }
        s->dict = dict;
        s->limit = nd; /* the values are indices into the dictionary */
        s->range_why = "is malformed (a dictionary index out of range)";
    }
    if (!(p = open_for(p, end, n, s, why))) return NULL;
    uint64_t hi;
    s->wide = !for_bound(&s->h, &hi) || hi > UINT32_MAX;
    s->check = s->wide || hi >= s->limit;
    for (uint32_t e = 0; e < s->h.n_exc; e++)
        if (get64(s->h.vals + 8 * (size_t)e) >= s->limit) {
            *why = s->range_why;
            return NULL;
        }
    return p;
}

/* Values [lo, lo + m) of a FOR stream into out[0..m), exceptions applied (lo a multiple of 8). */
static void part_unpack64(const store_block3_ctx *x, part_stream *s, uint64_t *out, size_t lo, size_t m) {
    size_t off = lo / 8 * (size_t)s->h.w;
    if (s->h.w == 0 && s->h.base == 0) memset(out, 0, m * 8); /* the time deltas of events at one time */
    else run_unpack64(x, out, s->h.packed + off, m, s->avail - off, s->h.w, s->h.base, s->h.mult);
    /* Exceptions (a quarter of the time deltas): through locals, which the stores cannot alias. */
    const uint8_t *pos = s->h.pos, *vals = s->h.vals;
    uint32_t e = s->next_exc, n_exc = s->h.n_exc;
    for (; e < n_exc; e++) {
        uint16_t at;
        memcpy(&at, pos + 2 * (size_t)e, 2);
        if (at >= lo + m) break;
        out[at - lo] = get64(vals + 8 * (size_t)e);
    }
    s->next_exc = e;
}

/* The same for a 32-bit stream (values checked against its limit; a dictionary's looked up). */
static int part_get32(store_block3_ctx *x, part_stream *s, uint32_t *out, size_t lo, size_t m, const char **why) {
    uint32_t *v = s->dict ? x->idx32 : out;
    if (s->wide) {
        uint64_t *a = x->a;
        part_unpack64(x, s, a, lo, m);
        if (max64(a, m) >= s->limit) goto range;
        for (size_t i = 0; i < m; i++) v[i] = (uint32_t)a[i];
    } else {
        size_t off = lo / 8 * (size_t)s->h.w;
        run_unpack32(x, v, s->h.packed + off, m, s->avail - off, s->h.w, s->h.base, s->h.mult);
        for (; s->next_exc < s->h.n_exc; s->next_exc++) { /* values checked at open */
            uint16_t at;
            memcpy(&at, s->h.pos + 2 * (size_t)s->next_exc, 2);
            if (at >= lo + m) break;
            v[at - lo] = (uint32_t)get64(s->h.vals + 8 * (size_t)s->next_exc);
        }
        if (!s->dict && s->check && (x->simd ? max32_simd(v, m) : max32(v, m)) >= s->limit) goto range;
    }
    if (s->dict) {
        /* Indices checked here (the mask keeps a bad one inside the table until then). */
        const uint32_t *d = s->dict, nd = (uint32_t)s->limit;
        uint32_t bad = 0;
        size_t i = x->simd > 1 ? lookup_avx512(out, v, d, nd, m, &bad) : x->simd ? lookup_avx2(out, v, d, nd, m, &bad) : 0;
        for (; i < m; i++) {
            bad |= v[i] >= nd;
            out[i] = d[v[i] & (DICT_MAX - 1)];
        }
        if (bad) goto range;
    }
    return 0;
range:
    *why = s->range_why;
    return -1;
}

int store_block3_open(store_block3_ctx *x, const void *src, size_t len, size_t n, uint64_t n_codes, uint64_t n_texts,
                      const char **why) {
    *why = "";
    x->n = x->done = 0;
    if (n == 0 || n > STORE_BLOCK_EVENTS) {
        *why = "has an impossible event count";
        return -1;
    }
    const uint8_t *p = src;
    uint32_t crc;
    if (len < 4) {
        *why = "is truncated";
        return -1;
    }
    memcpy(&crc, p + len - 4, 4);
    if (store_crc32_with(x->crc, 0, p, len - 4) != crc) {
        *why = "fails its checksum";
        return -1;
    }
    const uint8_t *end = p + len - 4;
    uint32_t n_block;
    if (len < 12 || (memcpy(&n_block, p, 4), n_block != n) || get32(p + 4)) {
        *why = "holds another number of events than its entry says";
        return -1;
    }
    p += 8;
    part_stream *st = x->st;
    memset(&st[ST_TIME], 0, sizeof st[ST_TIME]);
    if (!(p = open_for(p, end, n, &st[ST_TIME], why))) return -1;
    if (!(p = open_stream32(x, p, end, &st[ST_CODE], n, n_codes, x->dict32[0], "holds a code id out of range", why)) ||
        !(p = open_stream32(x, p, end, &st[ST_VALUE], n, UINT64_C(1) << 32, x->dict32[1], "holds a value out of range", why)))
        return -1;
    /* Texts: most events have none, and a block without texts is one zero-width stream. */
    memset(&st[ST_TEXT], 0, sizeof st[ST_TEXT]);
    if (!(p = open_for(p, end, n, &st[ST_TEXT], why))) return -1;
    if (!(p = open_stream32(x, p, end, &st[ST_SOURCE], n, x->n_sources, x->dict32[2], "holds a source id out of range", why)))
        return -1;
    if (end - p < 8 || get64(p) > ROWS_DELTA) {
        *why = "is malformed (its row mode)";
        return -1;
    }
    x->row_mode = get64(p);
    /* Each source's lowest row in the block (a table of n_sources), then each row's offset. */
    if (!(p = get_for64(x, p + 8, end, x->row_base, x->n_sources, why))) return -1;
    memset(&st[ST_ROW], 0, sizeof st[ST_ROW]);
    if (!(p = open_for(p, end, n, &st[ST_ROW], why))) return -1;
    if (p != end) {
        *why = "is malformed (bytes after its last stream)";
        return -1;
    }
    x->n = n;
    x->n_texts = n_texts;
    x->time_sum = 0;
    x->text_last = 0;
    return 0;
}

/* Events [lo, lo + m) of the open block into c (whole-block columns). */
static int part_decode(store_block3_ctx *x, size_t lo, size_t m, const store_block_cols *c, const char **why) {
    part_stream *st = x->st;
    /* Times: deltas, then their running sum. */
    uint64_t *t = (uint64_t *)c->time + lo, sum = x->time_sum;
    part_stream *ts = &st[ST_TIME];
    part_unpack64(x, ts, t, lo, m);
    /* Four events per step of the carried sum (the sums within a step do not wait for it). */
    size_t k = 0;
    for (; k + 4 <= m; k += 4) {
        uint64_t a = t[k], b = a + t[k + 1], d2 = b + t[k + 2], d3 = d2 + t[k + 3];
        t[k] = sum + a;
        t[k + 1] = sum + b;
        t[k + 2] = sum + d2;
        t[k + 3] = sum + d3;
        sum += d3;
    }
    for (; k < m; k++) {
        sum += t[k];
        t[k] = sum;
    }
    x->time_sum = sum;
    if (part_get32(x, &st[ST_CODE], c->code + lo, lo, m, why) ||
        part_get32(x, &st[ST_VALUE], (uint32_t *)c->numeric + lo, lo, m, why))
        return -1;
    /* Text ids: 0 for none, else 1 + the zigzag delta from the last text id in the block. */
    uint32_t *tx = c->text + lo;
    ts = &st[ST_TEXT];
    uint64_t last = (uint64_t)x->text_last, bad = 0;
    if (ts->h.w == 0 && ts->h.base == 0) {
        /* No texts but the exceptions (a block with a few notes): they are its only ids. */
        memset(tx, 0, m * 4);
        for (; ts->next_exc < ts->h.n_exc; ts->next_exc++) {
            uint16_t at;
            memcpy(&at, ts->h.pos + 2 * (size_t)ts->next_exc, 2);
            if (at >= lo + m) break;
            uint64_t u = get64(ts->h.vals + 8 * (size_t)ts->next_exc);
            if (!u) continue;
            last += (uint64_t)store_unzigzag(u - 1);
            bad |= last - 1 >= x->n_texts; /* the id is outside 1..n_texts */
            tx[at - lo] = (uint32_t)last;
        }
    } else {
        /* Without a branch per event (texts come and go at random): a 0 adds 0 and writes 0. */
        uint64_t *a = x->a;
        part_unpack64(x, ts, a, lo, m);
        for (size_t i = 0; i < m; i++) {
            uint64_t u = a[i], some = (uint64_t)0 - (u != 0);
            last += (uint64_t)store_unzigzag(u - 1) & some;
            bad |= (last - 1 >= x->n_texts) & some;
            tx[i] = (uint32_t)(last & some);
        }
    }
    if (bad) {
        *why = "holds a text id out of range";
        return -1;
    }
    x->text_last = (int64_t)last;
    /* Sources, then rows joined with them. */
    uint32_t *sc = x->src32;
    uint64_t *v = c->prov + lo, *rb = x->row_base;
    if (part_get32(x, &st[ST_SOURCE], sc, lo, m, why)) return -1;
    part_unpack64(x, &st[ST_ROW], v, lo, m);
    if (x->row_mode == ROWS_FROM_LOWEST) {
        const part_stream *ss = &st[ST_SOURCE];
        int table = x->simd && !ss->dict && !ss->wide && ss->h.w <= 4 && ss->h.mult == 1 && ss->h.n_exc == 0;
        size_t i = !table ? 0 : x->simd > 1 ? join_avx512(v, sc, rb, (uint32_t)ss->h.base, m)
                                            : join_avx2(v, sc, rb, (uint32_t)ss->h.base, m);
        for (; i < m; i++)
            v[i] = (uint64_t)sc[i] << 48 | ((rb[sc[i]] + v[i]) & STORE_MAX_ROW);
    } else {
        /* A chain through each source's previous row: slower, chosen only when much smaller. */
        for (size_t i = 0; i < m; i++) {
            uint64_t row = (rb[sc[i]] + (uint64_t)store_unzigzag(v[i])) & STORE_MAX_ROW;
            rb[sc[i]] = row;
            v[i] = (uint64_t)sc[i] << 48 | row;
        }
    }
    return 0;
}

int store_block3_part(store_block3_ctx *x, size_t upto, const store_block_cols *c, size_t *done, const char **why) {
    *why = "";
    if (!x->n) {
        *why = "was not opened";
        return -1;
    }
    upto = upto >= x->n ? x->n : (upto + 7) / 8 * 8 < x->n ? (upto + 7) / 8 * 8 : x->n;
    while (x->done < upto) {
        size_t m = upto - x->done < PART ? upto - x->done : PART;
        if (part_decode(x, x->done, m, c, why)) {
            x->n = x->done = 0; /* the block is closed: its values past here are never handed out */
            return -1;
        }
        x->done += m;
    }
    if (done) *done = x->done;
    return 0;
}

int store_block3_decode(store_block3_ctx *x, const void *src, size_t len, size_t n, uint64_t n_codes,
                        uint64_t n_texts, const store_block_cols *c, const char **why) {
    if (store_block3_open(x, src, len, n, n_codes, n_texts, why)) return -1;
    return store_block3_part(x, n, c, NULL, why);
}

/* ---------------------------------------------------------------- encoding */

typedef struct {
    int w;             /* packed width: 0..56 or 64 */
    int w1;            /* width before dividing by mult: values wider are exceptions */
    uint64_t base, mult;
    uint32_t n_exc;
} for_plan;

static size_t plan_bytes(const for_plan *f, size_t n) {
    return STREAM_HEADER + packed_len(n, f->w) + (size_t)f->n_exc * 10;
}

/* The width (0..56) minimising n * w + EXC_BITS * exceptions, where a value of bit length b is an
 * exception when b > w; exc0 exceptions are there already. */
static int best_width(const uint32_t hist[65], size_t n, uint64_t exc0, uint32_t *n_exc) {
    uint64_t above = exc0;
    for (int b = 57; b <= 64; b++) above += hist[b];
    int best = 56;
    uint64_t best_cost = UINT64_MAX, exc_best = above;
    for (int w = 56; w >= 0; w--) {
        uint64_t cost = (uint64_t)n * (uint64_t)w + EXC_BITS * above;
        if (cost <= best_cost) {
            best_cost = cost;
            best = w;
            exc_best = above;
        }
        above += hist[w];
    }
    *n_exc = (uint32_t)exc_best;
    return best;
}

static uint64_t gcd64(uint64_t a, uint64_t b) {
    while (b) {
        uint64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

static inline int regular(const for_plan *f, uint64_t off) {
    return bitlen(off) <= f->w1 && (f->w == 64 || bitlen(off / f->mult) <= f->w);
}

static for_plan plan_for(const uint64_t *v, size_t n) {
    for_plan f = {0, 0, UINT64_MAX, 1, 0};
    for (size_t i = 0; i < n; i++) f.base = v[i] < f.base ? v[i] : f.base;
    uint32_t hist[65] = {0};
    for (size_t i = 0; i < n; i++) hist[bitlen(v[i] - f.base)]++;
    uint32_t exc;
    int w = best_width(hist, n, 0, &exc);
    /* Whole 8-byte values when that is no larger than the best width with its exceptions. */
    if ((uint64_t)n * 64 <= (uint64_t)n * (uint64_t)w + (uint64_t)EXC_BITS * exc) {
        f.w = f.w1 = 64;
        return f;
    }
    f.w = f.w1 = w;
    f.n_exc = exc;
    if (w == 0) return f;
    uint64_t g = 0;
    for (size_t i = 0; i < n && g != 1; i++) {
        uint64_t off = v[i] - f.base;
        if (!off || bitlen(off) > w) continue;
        if (!g) g = off;
        else if (off % g) g = gcd64(g, off);
    }
    if (g > 1) {
        memset(hist, 0, sizeof hist);
        for (size_t i = 0; i < n; i++) {
            uint64_t off = v[i] - f.base;
            if (bitlen(off) <= w) hist[bitlen(off / g)]++;
        }
        f.mult = g;
        f.w = best_width(hist, n, exc, &f.n_exc);
    }
    return f;
}

/* Writes v (n values) as a FOR stream at d; returns the end. */
static uint8_t *put_for(uint8_t *d, const uint64_t *v, size_t n, const for_plan *f) {
    d[0] = MODE_FOR;
    d[1] = (uint8_t)f->w;
    d[2] = d[3] = 0;
    memcpy(d + 4, &f->n_exc, 4);
    put64(d + 8, f->base);
    put64(d + 16, f->mult);
    d += STREAM_HEADER;
    size_t len = packed_len(n, f->w);
    if (f->w == 64) {
        for (size_t i = 0; i < n; i++) put64(d + 8 * i, v[i] - f->base);
        return d + len;
    }
    memset(d, 0, len);
    uint8_t *pos = d + len, *vals = pos + (size_t)f->n_exc * 2;
    uint32_t e = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t off = v[i] - f->base;
        if (!regular(f, off)) {
            uint16_t at = (uint16_t)i;
            memcpy(pos + 2 * (size_t)e, &at, 2);
            put64(vals + 8 * (size_t)e, v[i]);
            e++;
            continue;
        }
        if (!f->w) continue;
        size_t bit = i * (size_t)f->w;
        put64(d + bit / 8, get64(d + bit / 8) | (off / f->mult) << (bit % 8));
    }
    return vals + (size_t)f->n_exc * 8;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static inline uint32_t hash_slot(uint64_t v) {
    return (uint32_t)((v * UINT64_C(0x9E3779B97F4A7C15)) >> 49) & (HASH_SLOTS - 1);
}

/* Writes v as the smaller of a FOR stream and (when allowed) a dictionary stream. */
static uint8_t *put_stream(store_block3_ctx *x, uint8_t *d, const uint64_t *v, size_t n, int allow_dict) {
    for_plan f = plan_for(v, n);
    if (!allow_dict) return put_for(d, v, n, &f);
    /* Distinct values, up to DICT_MAX: hval 0 is an empty slot, else 1 + the value's position. */
    memset(x->hval, 0, HASH_SLOTS * sizeof *x->hval);
    uint32_t nd = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t h = hash_slot(v[i]);
        while (x->hval[h] && x->hkey[h] != v[i]) h = (h + 1) & (HASH_SLOTS - 1);
        if (x->hval[h]) continue;
        if (nd == DICT_MAX) return put_for(d, v, n, &f);
        x->hkey[h] = v[i];
        x->hval[h] = 1;
        x->dict[nd++] = v[i];
    }
    qsort(x->dict, nd, sizeof *x->dict, cmp_u64);
    for (uint32_t k = 0; k < nd; k++) {
        uint32_t h = hash_slot(x->dict[k]);
        while (x->hkey[h] != x->dict[k]) h = (h + 1) & (HASH_SLOTS - 1);
        x->hval[h] = k + 1;
    }
    for (size_t i = 0; i < n; i++) {
        uint32_t h = hash_slot(v[i]);
        while (x->hkey[h] != v[i]) h = (h + 1) & (HASH_SLOTS - 1);
        x->b[i] = x->hval[h] - 1;
    }
    for_plan fd = plan_for(x->dict, nd), fi = plan_for(x->b, n);
    if (STREAM_HEADER + plan_bytes(&fd, nd) + plan_bytes(&fi, n) >= plan_bytes(&f, n)) return put_for(d, v, n, &f);
    memset(d, 0, STREAM_HEADER);
    d[0] = MODE_DICT;
    memcpy(d + 4, &nd, 4);
    d = put_for(d + STREAM_HEADER, x->dict, nd, &fd);
    return put_for(d, x->b, n, &fi);
}

int store_block3_encode(store_block3_ctx *x, const store_block_cols *c, size_t n, const void **out, size_t *out_len) {
    if (n == 0 || n > STORE_BLOCK_EVENTS || !x->out) return -1;
    uint64_t *v = x->a;
    uint8_t *d = x->out;
    put64(d, n); /* u32 events, u32 0 */
    d += 8;
    uint64_t prev = 0;
    for (size_t i = 0; i < n; i++) {
        v[i] = (uint64_t)c->time[i] - prev;
        prev = (uint64_t)c->time[i];
    }
    d = put_stream(x, d, v, n, 0);
    for (size_t i = 0; i < n; i++) v[i] = c->code[i];
    d = put_stream(x, d, v, n, 1);
    for (size_t i = 0; i < n; i++) {
        uint32_t bits;
        memcpy(&bits, &c->numeric[i], 4);
        v[i] = bits;
    }
    d = put_stream(x, d, v, n, 1);
    int64_t last = 0;
    for (size_t i = 0; i < n; i++) {
        if (!c->text[i]) {
            v[i] = 0;
        } else {
            v[i] = store_zigzag((int64_t)c->text[i] - last) + 1;
            last = c->text[i];
        }
    }
    d = put_stream(x, d, v, n, 0);
    for (size_t i = 0; i < n; i++) {
        v[i] = c->prov[i] >> 48;
        if (v[i] >= x->n_sources) return -1;
    }
    d = put_stream(x, d, v, n, 0);
    uint64_t *rb = x->row_base;
    for (uint32_t k = 0; k < x->n_sources; k++) rb[k] = UINT64_MAX;
    for (size_t i = 0; i < n; i++) {
        uint64_t row = c->prov[i] & STORE_MAX_ROW, *b = &rb[c->prov[i] >> 48];
        *b = row < *b ? row : *b;
    }
    for (uint32_t k = 0; k < x->n_sources; k++) rb[k] = rb[k] == UINT64_MAX ? 0 : rb[k];
    for (size_t i = 0; i < n; i++) v[i] = (c->prov[i] & STORE_MAX_ROW) - rb[c->prov[i] >> 48];
    /* The other way: zigzag delta from the source's previous row in the block (from 0 at first). */
    uint64_t *dv = x->b;
    for (uint32_t k = 0; k < x->n_sources; k++) x->prev_row[k] = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t row = c->prov[i] & STORE_MAX_ROW, *pr = &x->prev_row[c->prov[i] >> 48];
        dv[i] = store_zigzag((int64_t)(row - *pr));
        *pr = row;
    }
    for_plan fo = plan_for(v, n), fd = plan_for(dv, n);
    uint64_t mode = 4 * plan_bytes(&fd, n) < 3 * plan_bytes(&fo, n) ? ROWS_DELTA : ROWS_FROM_LOWEST;
    put64(d, mode);
    d += 8;
    if (mode == ROWS_DELTA) {
        memset(rb, 0, x->n_sources * sizeof *rb);
        d = put_stream(x, d, rb, x->n_sources, 0);
        d = put_for(d, dv, n, &fd);
    } else {
        d = put_stream(x, d, rb, x->n_sources, 0);
        d = put_for(d, v, n, &fo);
    }
    uint32_t crc = store_crc32_with(x->crc, 0, x->out, (size_t)(d - x->out));
    memcpy(d, &crc, 4);
    d += 4;
    *out = x->out;
    *out_len = (size_t)(d - x->out);
    return 0;
}
