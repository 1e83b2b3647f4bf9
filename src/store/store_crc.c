/* CRC-32 of version 3 event blocks by carry-less multiplication (see store_crc.h).
 *
 * Why not libdeflate_crc32 alone: the Debian libdeflate (1.14) folds 16 bytes at a time and ran at
 * about 10 GB/s on data in cache, 5-6 GB/s on a block just read from the page cache: a quarter of
 * a warm pass over a version 3 store went to checking its blocks. The checksum stays zlib's CRC-32,
 * so every store already written keeps its value; only the way of computing it changes.
 *
 * The method (folding, as in Intel's white paper "Fast CRC Computation for Generic Polynomials
 * Using PCLMULQDQ Instruction"): the message is a polynomial over GF(2), bits reflected. A 128-bit
 * accumulator that lies D bits before the data it is folded into is replaced by
 * lo64 * (x^(D+32) mod P) xor hi64 * (x^(D-32) mod P), which leaves the remainder mod P unchanged;
 * at the end 128 bits are reduced to 64, then to 32 by Barrett reduction. Each constant below is
 * x^e mod P, bit-reflected and shifted left by one (33 bits: k1..k5 of the white paper for D =
 * 512 and 128; the others computed the same way); tests/test_store.c checks every kernel against
 * zlib's crc32 on every length up to 1,200 bytes at several alignments and on a block-sized
 * buffer. */
#include "store/store_crc.h"

#include <stdlib.h>

#include <libdeflate.h>

/* x^e mod P for the exponents the folds need (D = fold distance in bits, e = D + 32 and D - 32). */
#define K_E2080 UINT64_C(0x11542778a) /* D = 2048: four 512-bit accumulators */
#define K_E2016 UINT64_C(0x1322d1430)
#define K_E544 UINT64_C(0x154442bd4)  /* D = 512 */
#define K_E480 UINT64_C(0x1c6e41596)
#define K_E416 UINT64_C(0x03db1ecdc)  /* D = 384 */
#define K_E352 UINT64_C(0x174359406)
#define K_E288 UINT64_C(0x0f1da05aa)  /* D = 256 */
#define K_E224 UINT64_C(0x15a546366)
#define K_E160 UINT64_C(0x1751997d0)  /* D = 128 */
#define K_E96 UINT64_C(0x0ccaa009e)
#define K_E64 UINT64_C(0x163cd6124)   /* 64 -> 32 bits */
#define K_POLY UINT64_C(0x1db710641)  /* P, reflected */
#define K_MU UINT64_C(0x1f7011641)    /* floor(x^64 / P), reflected: Barrett's quotient */

static uint32_t crc_lib(uint32_t crc, const void *p, size_t len) { return (uint32_t)libdeflate_crc32(crc, p, len); }

#if defined(__x86_64__) && !defined(CLINFM_NO_SIMD)
#include <immintrin.h>

#define TARGET_128 __attribute__((target("pclmul,sse4.1")))
#define TARGET_512 __attribute__((target("pclmul,sse4.1,avx512f,avx512vl,vpclmulqdq")))

/* a folded over D bits (k = {x^(D+32), x^(D-32)}) into b. */
TARGET_128 static inline __m128i fold128(__m128i a, __m128i k, __m128i b) {
    return _mm_xor_si128(_mm_xor_si128(_mm_clmulepi64_si128(a, k, 0x00), _mm_clmulepi64_si128(a, k, 0x11)), b);
}

/* The rest after an accumulator x that stands for everything before p: 16 bytes at a time, then the
 * reduction to 32 bits, then libdeflate for the last len % 16 bytes. Returns the CRC (final form). */
TARGET_128 static inline uint32_t finish128(__m128i x, const uint8_t *p, size_t len) {
    const __m128i k128 = _mm_set_epi64x((long long)K_E96, (long long)K_E160);
    for (; len >= 16; p += 16, len -= 16) x = fold128(x, k128, _mm_loadu_si128((const __m128i *)p));
    /* 128 -> 64 bits: the low half folded over 64 bits into the high half. */
    x = _mm_xor_si128(_mm_srli_si128(x, 8), _mm_clmulepi64_si128(x, k128, 0x10));
    /* 64 -> 32 bits. */
    const __m128i mask = _mm_setr_epi32(-1, 0, -1, 0);
    __m128i hi = _mm_srli_si128(x, 4);
    x = _mm_xor_si128(_mm_clmulepi64_si128(_mm_and_si128(x, mask), _mm_set_epi64x(0, (long long)K_E64), 0x00), hi);
    /* Barrett: q = (x mod x^32) * mu, then x - (q mod x^32) * P. */
    const __m128i poly = _mm_set_epi64x((long long)K_MU, (long long)K_POLY);
    __m128i q = _mm_and_si128(_mm_clmulepi64_si128(_mm_and_si128(x, mask), poly, 0x10), mask);
    x = _mm_xor_si128(x, _mm_clmulepi64_si128(q, poly, 0x00));
    uint32_t crc = ~(uint32_t)_mm_extract_epi32(x, 1);
    return len ? crc_lib(crc, p, len) : crc;
}

TARGET_128 static uint32_t crc_pclmul(uint32_t crc, const void *src, size_t len) {
    const uint8_t *p = src;
    if (len < 64) return crc_lib(crc, p, len);
    const __m128i k512 = _mm_set_epi64x((long long)K_E480, (long long)K_E544);
    __m128i x0 = _mm_loadu_si128((const __m128i *)p), x1 = _mm_loadu_si128((const __m128i *)(p + 16)),
            x2 = _mm_loadu_si128((const __m128i *)(p + 32)), x3 = _mm_loadu_si128((const __m128i *)(p + 48));
    x0 = _mm_xor_si128(x0, _mm_cvtsi32_si128((int)~crc));
    for (p += 64, len -= 64; len >= 64; p += 64, len -= 64) {
        x0 = fold128(x0, k512, _mm_loadu_si128((const __m128i *)p));
        x1 = fold128(x1, k512, _mm_loadu_si128((const __m128i *)(p + 16)));
        x2 = fold128(x2, k512, _mm_loadu_si128((const __m128i *)(p + 32)));
        x3 = fold128(x3, k512, _mm_loadu_si128((const __m128i *)(p + 48)));
    }
    const __m128i k128 = _mm_set_epi64x((long long)K_E96, (long long)K_E160);
    __m128i x = fold128(fold128(fold128(x0, k128, x1), k128, x2), k128, x3);
    return finish128(x, p, len);
}

TARGET_512 static inline __m512i fold512(__m512i a, __m512i k, __m512i b) {
    return _mm512_ternarylogic_epi64(_mm512_clmulepi64_epi128(a, k, 0x00), _mm512_clmulepi64_epi128(a, k, 0x11), b, 0x96);
}

TARGET_512 static uint32_t crc_vpclmul(uint32_t crc, const void *src, size_t len) {
    const uint8_t *p = src;
    if (len < 256) return crc_pclmul(crc, p, len);
    const __m512i k2048 = _mm512_broadcast_i32x4(_mm_set_epi64x((long long)K_E2016, (long long)K_E2080));
    const __m512i k512 = _mm512_broadcast_i32x4(_mm_set_epi64x((long long)K_E480, (long long)K_E544));
    __m512i z0 = _mm512_loadu_si512(p), z1 = _mm512_loadu_si512(p + 64), z2 = _mm512_loadu_si512(p + 128),
            z3 = _mm512_loadu_si512(p + 192);
    z0 = _mm512_xor_si512(z0, _mm512_castsi128_si512(_mm_cvtsi32_si128((int)~crc)));
    for (p += 256, len -= 256; len >= 256; p += 256, len -= 256) {
        z0 = fold512(z0, k2048, _mm512_loadu_si512(p));
        z1 = fold512(z1, k2048, _mm512_loadu_si512(p + 64));
        z2 = fold512(z2, k2048, _mm512_loadu_si512(p + 128));
        z3 = fold512(z3, k2048, _mm512_loadu_si512(p + 192));
    }
    __m512i z = fold512(fold512(fold512(z0, k512, z1), k512, z2), k512, z3);
    for (; len >= 64; p += 64, len -= 64) z = fold512(z, k512, _mm512_loadu_si512(p));
    /* The four 128-bit lanes, oldest first, folded over 384, 256 and 128 bits into the last. */
    __m128i x = _mm512_extracti32x4_epi32(z, 3);
    x = fold128(_mm512_castsi512_si128(z), _mm_set_epi64x((long long)K_E352, (long long)K_E416), x);
    x = fold128(_mm512_extracti32x4_epi32(z, 1), _mm_set_epi64x((long long)K_E224, (long long)K_E288), x);
    x = fold128(_mm512_extracti32x4_epi32(z, 2), _mm_set_epi64x((long long)K_E96, (long long)K_E160), x);
    return finish128(x, p, len);
}

static int best_kernel(void) {
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("pclmul") || !__builtin_cpu_supports("sse4.1")) return 0;
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("vpclmulqdq"))
        return 2;
    return 1;
}
#else
static uint32_t crc_pclmul(uint32_t crc, const void *p, size_t len) { return crc_lib(crc, p, len); }
static uint32_t crc_vpclmul(uint32_t crc, const void *p, size_t len) { return crc_lib(crc, p, len); }
static int best_kernel(void) { return 0; }
#endif

static int best = -1; /* best_kernel(), once; every thread computes the same value */
static int chosen = -1; /* store_crc32's kernel */

static int best_cached(void) {
    int k = __atomic_load_n(&best, __ATOMIC_RELAXED);
    if (k < 0) __atomic_store_n(&best, k = best_kernel(), __ATOMIC_RELAXED);
    return k;
}

uint32_t store_crc32_with(int kernel, uint32_t crc, const void *p, size_t len) {
    int best_k = best_cached();
    if (kernel > best_k) kernel = best_k;
    return kernel == 2 ? crc_vpclmul(crc, p, len) : kernel == 1 ? crc_pclmul(crc, p, len) : crc_lib(crc, p, len);
}

int store_crc32_kernel(void) {
    int k = __atomic_load_n(&chosen, __ATOMIC_RELAXED);
    if (k < 0) {
        k = getenv("CLINFM_STORE_NO_SIMD") ? 0 : best_cached();
        __atomic_store_n(&chosen, k, __ATOMIC_RELAXED);
    }
    return k;
}

uint32_t store_crc32(uint32_t crc, const void *p, size_t len) {
    int k = store_crc32_kernel();
    return k == 2 ? crc_vpclmul(crc, p, len) : k == 1 ? crc_pclmul(crc, p, len) : crc_lib(crc, p, len);
}
