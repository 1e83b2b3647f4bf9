/* The splitmix64 finaliser: a well-mixed 64-bit value from a seed, a key or a counter. One
 * definition for every module that derives a stream, a fold or a sample from a seed (the split
 * keys of tasks, the teacher's folds, the service's sampling, the model's and the generator's
 * streams), so the same seed means the same mixing everywhere. */
#ifndef CLINFM_UTIL_MIX64_H
#define CLINFM_UTIL_MIX64_H

#include <stdint.h>

static inline uint64_t cf_mix64(uint64_t z) {
    z += 0x9E3779B97F4A7C15ULL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

#endif
