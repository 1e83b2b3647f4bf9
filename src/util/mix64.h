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

/* The next value of a splitmix64 stream whose state is *s (the bootstrap's and the calibration's
 * resampling). */
static inline uint64_t cf_splitmix64(uint64_t *s) {
    uint64_t r = cf_mix64(*s);
    *s += 0x9E3779B97F4A7C15ULL;
    return r;
}

/* The model's streams (initialisation, sampling, shuffles) step the state before mixing, so a
 * value is cf_mix64 of the stepped state: one gamma more than cf_splitmix64. Kept apart, not
 * folded into cf_splitmix64, so that a seed recorded with an earlier model still gives the same
 * weights, samples and orders. */
static inline uint64_t cf_step64(uint64_t *s) {
    *s += 0x9E3779B97F4A7C15ULL;
    return cf_mix64(*s);
}

/* A stream value as a double: in [0, 1) (cf_unit) or in (0, 1) (cf_unit_open, for a log). */
static inline double cf_unit(uint64_t r) { return (double)(r >> 11) * (1.0 / 9007199254740992.0); }
static inline double cf_unit_open(uint64_t r) { return ((double)(r >> 11) + 0.5) * (1.0 / 9007199254740992.0); }

#endif
