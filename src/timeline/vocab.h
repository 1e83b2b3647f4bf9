/* The timeline vocabulary: which tokens exist, what each means, and the numbers fitted on the
 * train split (code counts, decile cut points of numeric values, the calendar-year range).
 *
 * Token ids are laid out in a fixed order, so a vocabulary is readable without the store:
 *   special tokens   [PAD] [EOT] [UNK] [ADMISSION_START] [ADMISSION_END] [ICU_START] [ICU_END]
 *                    [DEATH]                                              (ids 0..7, fixed)
 *   quantiles        [Q1] .. [Q10]           decile of the preceding code's numeric value
 *   time gaps        [GAP 5m-15m] .. [GAP 3mo-6mo], [GAP 6mo] (13 bins; see timeline_gap_bins)
 *   ages             [AGE 0-4] .. [AGE 95-99], [AGE 100+], [AGE ?]
 *   calendar years   [YEAR ?], [YEAR 1905-1909] .. (5-year bins over the train range)
 *   unknown codes    NS//[UNK] per code namespace seen in train (NS = text before the first //)
 *   missing values   NS//[NONE] per static-prefix slot (sex, race, ... not known yet)
 *   code tokens      codes (or ICD code parts) seen at least min_count times in train,
 *                    sorted by string
 * Every token string is unique; generated tokens use square brackets so they do not collide
 * with source codes (a source code that does is treated as unknown and counted).
 *
 * The file (see docs/TIMELINE.md): a 256-byte header (magic "CLINFMVC", version, parameters,
 * split fingerprint, BLAKE2b-256 of header and body), a token table, the cut points and a
 * string heap. The hash identifies the vocabulary; model checkpoints record it. Files are
 * written atomically; vocab_load rejects any damaged or truncated file. */
#ifndef CLINFM_TIMELINE_VOCAB_H
#define CLINFM_TIMELINE_VOCAB_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"
#include "timeline/split.h"
#include "timeline/timeline_codes.h"
#include "util/err.h"
#include "util/strmap.h"

/* Version 2 adds the value mode (header offset 104); a vocabulary in the default mode is
 * still written as version 1, byte for byte as before. */
#define VOCAB_FORMAT_VERSION 2
#define VOCAB_HEADER_BYTES 256
#define VOCAB_HASH_BYTES 32

enum {
    VOCAB_KIND_SPECIAL = 1, /* aux0 = VOCAB_SP_* */
    VOCAB_KIND_QUANTILE,    /* aux0 = 1..10 */
    VOCAB_KIND_GAP,         /* aux0, aux1 = bin edges in µs [lo, hi); the 6-month bin has lo == hi */
    VOCAB_KIND_AGE,         /* aux0, aux1 = years [lo, hi]; -1, -1 = unknown */
    VOCAB_KIND_YEAR,        /* aux0, aux1 = calendar years [lo, hi]; -1, -1 = unknown */
    VOCAB_KIND_UNK,         /* a rare or unseen code of one namespace */
    VOCAB_KIND_NONE,        /* aux0 = slot: that static value is not known yet */
    VOCAB_KIND_CODE,        /* a whole source code; may carry decile cut points */
    VOCAB_KIND_PART,        /* one part of a split hierarchical code (aux0 = part position) */
    VOCAB_KIND_MAX
};

#define VOCAB_N_QUANTILES 10
#define VOCAB_N_CUTS (VOCAB_N_QUANTILES - 1)
#define VOCAB_N_GAPS 13
#define VOCAB_AGE_BIN_YEARS 5
#define VOCAB_N_AGE_BINS 21        /* 0-4 .. 95-99, 100+ */
#define VOCAB_YEAR_BIN_YEARS 5
#define VOCAB_MAX_YEAR_BINS 2000
#define VOCAB_MAX_SLOTS 16
#define VOCAB_FLAG_SPLIT_CODES 1u

/* How a numeric value enters the stream. In both modes the token that carries the value also
 * carries it as a number (timeline_seq.values, the model's continuous inputs):
 *   VOCAB_VALUES_TOKENS  the code token, then a decile token [Qd] that carries the value
 *                        (version 1 behaviour; the model can sample values as deciles)
 *   VOCAB_VALUES_EMBED   the code token alone, carrying the value: half the tokens for
 *                        measurement-heavy data, but generated events have no value */
enum { VOCAB_VALUES_TOKENS = 0, VOCAB_VALUES_EMBED = 1 };

typedef struct {
    uint32_t min_count;    /* a code needs this many train events for its own token (default 5) */
    uint32_t min_numeric;  /* a code needs this many finite train values for deciles (default 20) */
    uint32_t max_vocab;    /* 0: no cap; else keep the most frequent codes so the total fits */
    int split_codes;       /* split ICD-10-CM / ICD-10-PCS codes into parts (default 1) */
    const char *static_ns; /* comma-separated static-prefix namespaces; NULL: automatic */
    int value_mode;        /* VOCAB_VALUES_* (default tokens) */
} vocab_options;

typedef struct {
    uint32_t n_tokens;
    uint8_t *kind;        /* (n_tokens) VOCAB_KIND_* */
    uint32_t *str_off;    /* (n_tokens) into heap; strings are NUL-terminated there */
    uint32_t *str_len;    /* (n_tokens) */
    int64_t *aux0, *aux1; /* (n_tokens) see the kinds */
    uint64_t *count;      /* (n_tokens) occurrences in train (code tokens; 0 for the rest) */
    uint32_t *cut_set;    /* (n_tokens) index into cuts / VOCAB_N_CUTS, UINT32_MAX for none */
    int8_t *slot_of;      /* (n_tokens) static slot whose value this token is, or -1 */
    char *heap;
    uint32_t heap_len;
    float *cuts;          /* (n_cut_sets * VOCAB_N_CUTS) ascending per set */
    uint32_t n_cut_sets;
    strmap index;         /* token string -> id */

    /* Parameters, as recorded in the header. */
    uint32_t flags, ruleset, min_count, min_numeric, max_vocab;
    uint32_t value_mode;  /* VOCAB_VALUES_* */
    int32_t year_base;    /* first year of the first year bin */
    uint32_t n_year_bins;
    uint32_t split_train_ppm, split_tuning_ppm;
    uint32_t split_rotate_ppm;  /* folds: the positions' rotation (0: none; version 2 only) */
    uint8_t split_key_id[SPLIT_KEY_ID_BYTES];
    uint64_t train_subjects, train_events;
    uint8_t hash[VOCAB_HASH_BYTES];

    /* Lookups derived on load. */
    uint32_t n_slots;
    uint32_t special[VOCAB_N_SPECIAL];
    uint32_t quantile[VOCAB_N_QUANTILES]; /* quantile[q-1] is [Qq] */
    uint32_t gap[VOCAB_N_GAPS];
    uint32_t age[VOCAB_N_AGE_BINS];
    uint32_t age_unknown, year_unknown;
    uint32_t *year;                       /* (n_year_bins) */
    uint32_t slot_none[VOCAB_MAX_SLOTS];  /* the [NONE] token of each slot */
} vocab;

void vocab_options_default(vocab_options *o);
/* Builds v from the train split of s (tuning and held_out subjects are never read). */
int vocab_build(vocab *v, const store *s, const split_config *sp, const vocab_options *o, cf_err *err);
int vocab_save(const vocab *v, const char *path, cf_err *err);
int vocab_load(vocab *v, const char *path, cf_err *err);
/* Parses a vocabulary file image (what = name for messages). */
int vocab_parse(vocab *v, const void *data, size_t len, const char *what, cf_err *err);
/* The file image vocab_save writes (malloc'd). */
int vocab_serialize(const vocab *v, uint8_t **out, size_t *out_len, cf_err *err);
void vocab_free(vocab *v);

static inline const char *vocab_token_str(const vocab *v, uint32_t id) {
    return id < v->n_tokens ? v->heap + v->str_off[id] : "[?]";
}
/* Token id of a string, or -1. */
int64_t vocab_find(const vocab *v, const char *s);
/* 64 lowercase hex digits of the hash into buf (65 bytes). */
char *vocab_hash_hex(const vocab *v, char *buf);
/* The slot index of a static-prefix namespace, or -1. */
int vocab_slot_of_namespace(const vocab *v, const char *ns, size_t len);

/* Decile cut points of n finite values (sorted in place): cut j (1..9) is the value at rank
 * ceil(j*n/10) in ascending order (the empirical j/10 quantile, no interpolation). n >= 1. */
void vocab_fit_cuts(float *values, size_t n, float cuts[VOCAB_N_CUTS]);
/* The decile 1..10 of value under cuts: 1 + the number of cut points strictly below it. */
int vocab_decile(const float cuts[VOCAB_N_CUTS], float value);
/* A value as the model's continuous input: asinh of a robust z-score, (value - median) /
 * spread, with the median and the spread ((90th - 10th percentile) / 2.563, the standard
 * deviation of a normal with that spread) read from the train decile cut points. Monotone,
 * about linear near the median and logarithmic in the tails, so an extreme lactate stays
 * distinguishable from a high one. A non-finite value gives NaN (no value). */
float vocab_value_norm(const float cuts[VOCAB_N_CUTS], float value);
/* The normalised value at the middle of decile d (1..10) of cuts: what a sampled [Qd] token
 * stands for. */
float vocab_decile_norm(const float cuts[VOCAB_N_CUTS], int d);

/* Time gaps: the bins of a gap of gap_us microseconds, as gap-bin indices 0..VOCAB_N_GAPS-1 in
 * emission order: one 6-month bin per whole 182 days, then the bin of the rest when the rest
 * is at least 5 minutes. Returns how many (0 under 5 minutes); at most cap are written. */
size_t timeline_gap_bins(int64_t gap_us, int *bins, size_t cap);
/* The lower edge of gap bin b in µs (the 6-month bin: 182 days). */
int64_t timeline_gap_lower_us(int b);
/* Age bin 0..20 at time t for a birth time, or -1 when birth is TIME_NULL. */
int timeline_age_bin(int64_t birth, int64_t t);

#endif
