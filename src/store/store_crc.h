/* CRC-32 of version 3 event blocks (internal to src/store): zlib's CRC-32 (polynomial 0xEDB88320,
 * reflected), the value libdeflate_crc32 and zlib's crc32 give, computed faster where the CPU
 * allows (carry-less multiplication folding: VPCLMULQDQ on 512-bit registers, else PCLMULQDQ on
 * 128-bit ones; libdeflate's for short buffers and CPUs without either). */
#ifndef CLINFM_STORE_CRC_H
#define CLINFM_STORE_CRC_H

#include <stddef.h>
#include <stdint.h>

/* The CRC-32 of len bytes at p continuing from crc (0 to start), as libdeflate_crc32(crc, p, len).
 * The kernel is chosen once, at the first call, from the CPU; CLINFM_STORE_NO_SIMD=1 (read at that
 * call) keeps libdeflate's. */
uint32_t store_crc32(uint32_t crc, const void *p, size_t len);

/* The same with a given kernel, for tests and benchmarks: 0 libdeflate, 1 PCLMULQDQ, 2 VPCLMULQDQ.
 * A kernel the CPU lacks falls back to the next smaller. */
uint32_t store_crc32_with(int kernel, uint32_t crc, const void *p, size_t len);
/* The kernel store_crc32 uses (0, 1 or 2). */
int store_crc32_kernel(void);

#endif
