/* Random streams for the population generator.
 *
 * Every patient has its own stream, seeded from (seed, patient index) through splitmix64, so a
 * patient's record depends on nothing but the seed and its index: the same bytes whatever the
 * thread count or the order in which workers take patients. The ground-truth simulations draw from
 * further streams keyed by (seed, patient, candidate, task, path), never from the patient's own,
 * so writing or skipping the truth leaves the record unchanged. The generator is xoshiro256**. */
#ifndef CLINFM_SYNTH_RNG_H
#define CLINFM_SYNTH_RNG_H

#include <math.h>
#include <stdint.h>

#include "util/mix64.h"

typedef struct {
    uint64_t s[4];
} synth_rng;

static inline uint64_t synth_mix64(uint64_t x) { return cf_mix64(x); } /* util/mix64.h */

/* A stream from up to four keys (seed, patient, ...); different key tuples give unrelated streams. */
static inline void synth_rng_seed(synth_rng *r, uint64_t a, uint64_t b, uint64_t c, uint64_t d) {
    uint64_t x = synth_mix64(a ^ synth_mix64(b ^ synth_mix64(c ^ synth_mix64(d))));
    for (int i = 0; i < 4; i++) r->s[i] = x = synth_mix64(x + (uint64_t)i);
}

static inline uint64_t synth_rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static inline uint64_t synth_next(synth_rng *r) {
    uint64_t *s = r->s;
    uint64_t out = synth_rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = synth_rotl(s[3], 45);
    return out;
}

/* Uniform in [0, 1). */
static inline double synth_unif(synth_rng *r) { return (double)(synth_next(r) >> 11) * 0x1.0p-53; }

/* Standard normal (Box-Muller, one value per call: simple, and fast enough). */
static inline double synth_normal(synth_rng *r) {
    double u = synth_unif(r), v = synth_unif(r);
    if (u < 1e-300) u = 1e-300;
    return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

/* Exponential with the given rate (per unit time); +inf for a zero rate. */
static inline double synth_exp(synth_rng *r, double rate) {
    if (rate <= 0) return INFINITY;
    return -log(1.0 - synth_unif(r)) / rate;
}

static inline int synth_bern(synth_rng *r, double p) { return synth_unif(r) < p; }

/* Index drawn from cumulative weights cum[0..n-1] (cum[n-1] is the total). */
static inline int synth_pick(synth_rng *r, const double *cum, int n) {
    double x = synth_unif(r) * cum[n - 1];
    for (int i = 0; i < n; i++)
        if (x < cum[i]) return i;
    return n - 1;
}

#endif
