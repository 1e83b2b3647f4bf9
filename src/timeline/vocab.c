/* Building, saving and loading the timeline vocabulary; see vocab.h and docs/TIMELINE.md.
 *
 * vocab_build counts the train split in two passes over the mmap'd store (counts first, then
 * the numeric values of the codes that get decile cut points), assembles the token table in
 * its canonical order, serialises it and parses the bytes back. So a freshly built vocabulary
 * and one loaded from disk go through the same checks and carry the same hash. */
#include "timeline/vocab.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "util/le.h"
#include "util/atomic_file.h"
#include "util/file.h"
#include "util/timeutil.h"

#define VOCAB_MAGIC "CLINFMVC"
#define REC_BYTES 40
#define HASH_OFFSET 224

/* ------------------------------------------------------------------ bins and quantiles */

#define MINUTE_US (INT64_C(60) * USEC_PER_SEC)
#define HOUR_US (INT64_C(60) * MINUTE_US)
/* Lower edges of the gap bins; bin b covers [edge[b], edge[b+1]); the last bin is the
 * 6-month token, repeated once per whole 182 days. */
static const int64_t gap_edges[VOCAB_N_GAPS] = {
    5 * MINUTE_US,     15 * MINUTE_US,    HOUR_US,           2 * HOUR_US,      6 * HOUR_US,
    12 * HOUR_US,      USEC_PER_DAY,      3 * USEC_PER_DAY,  7 * USEC_PER_DAY, 14 * USEC_PER_DAY,
    30 * USEC_PER_DAY, 91 * USEC_PER_DAY, 182 * USEC_PER_DAY,
};
static const char *const gap_labels[VOCAB_N_GAPS] = {
    "5m-15m", "15m-1h", "1h-2h", "2h-6h", "6h-12h", "12h-1d", "1d-3d",
    "3d-1w", "1w-2w", "2w-1mo", "1mo-3mo", "3mo-6mo", "6mo",
};
static const char *const special_names[VOCAB_N_SPECIAL] = {
    "[PAD]", "[EOT]", "[UNK]", "[ADMISSION_START]", "[ADMISSION_END]", "[ICU_START]", "[ICU_END]", "[DEATH]",
};

int64_t timeline_gap_lower_us(int b) { return b >= 0 && b < VOCAB_N_GAPS ? gap_edges[b] : -1; }

size_t timeline_gap_bins(int64_t gap_us, int *bins, size_t cap) {
    size_t n = 0;
    if (gap_us < gap_edges[0]) return 0;
    const int64_t six = gap_edges[VOCAB_N_GAPS - 1];
    int64_t whole = gap_us / six, rest = gap_us % six;
    for (int64_t i = 0; i < whole; i++, n++)
        if (n < cap) bins[n] = VOCAB_N_GAPS - 1;
    if (rest >= gap_edges[0]) {
        int b = 0;
        while (b + 1 < VOCAB_N_GAPS - 1 && rest >= gap_edges[b + 1]) b++;
        if (n < cap) bins[n] = b;
        n++;
    }
    return n;
}

static int64_t floor_div(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }

static void civil_of(int64_t t, int64_t *y, unsigned *m, unsigned *d) {
    civil_from_days(floor_div(t, USEC_PER_DAY), y, m, d);
}

int timeline_age_bin(int64_t birth, int64_t t) {
    if (birth == TIME_NULL || t == TIME_NULL) return -1;
    int64_t yb, yt;
    unsigned mb, db, mt, dt;
    civil_of(birth, &yb, &mb, &db);
    civil_of(t, &yt, &mt, &dt);
    /* Completed years: the birthday of this year counts once reached. */
    int64_t age = yt - yb - ((mt < mb || (mt == mb && dt < db)) ? 1 : 0);
    if (age < 0) age = 0;
    int64_t bin = age / VOCAB_AGE_BIN_YEARS;
    return bin >= VOCAB_N_AGE_BINS - 1 ? VOCAB_N_AGE_BINS - 1 : (int)bin;
}

static int64_t year_of(int64_t t) {
    int64_t y;
    unsigned m, d;
    civil_of(t, &y, &m, &d);
    return y;
}

static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return x < y ? -1 : x > y;
}

void vocab_fit_cuts(float *values, size_t n, float cuts[VOCAB_N_CUTS]) {
    qsort(values, n, sizeof *values, cmp_float);
    for (int j = 1; j <= VOCAB_N_CUTS; j++) {
        /* rank ceil(j*n/10), 1-based */
        size_t rank = ((size_t)j * n + VOCAB_N_QUANTILES - 1) / VOCAB_N_QUANTILES;
        if (rank < 1) rank = 1;
        cuts[j - 1] = values[rank - 1];
    }
}

int vocab_decile(const float cuts[VOCAB_N_CUTS], float value) {
    int q = 1;
    for (int j = 0; j < VOCAB_N_CUTS; j++) q += value > cuts[j];
    return q;
}

float vocab_value_norm(const float cuts[VOCAB_N_CUTS], float value) {
    if (!isfinite(value)) return NAN;
    double med = cuts[4], spread = ((double)cuts[8] - cuts[0]) / 2.563;
    if (!(spread > 0)) spread = ((double)cuts[7] - cuts[1]) / 1.683;
    /* A code whose train values are (nearly) all one number: any departure is large. */
    if (!(spread > 0)) spread = fmax(fabs(med) * 0.05, 1e-3);
    double z = ((double)value - med) / spread;
    if (z > 1e6) z = 1e6;
    if (z < -1e6) z = -1e6;
    return (float)asinh(z);
}

float vocab_decile_norm(const float cuts[VOCAB_N_CUTS], int d) {
    if (d < 1) d = 1;
    if (d > VOCAB_N_QUANTILES) d = VOCAB_N_QUANTILES;
    /* The outer deciles extend beyond their cut by the width of the neighbouring decile. */
    double lo = d > 1 ? cuts[d - 2] : 2.0 * cuts[0] - cuts[1];
    double hi = d < VOCAB_N_QUANTILES ? cuts[d - 1] : 2.0 * cuts[8] - cuts[7];
    return vocab_value_norm(cuts, (float)(0.5 * (lo + hi)));
}

void vocab_options_default(vocab_options *o) {
    memset(o, 0, sizeof *o);
    o->min_count = 5;
    o->min_numeric = 20;
    o->split_codes = 1;
}

/* ------------------------------------------------------------------ serialise / parse */

void vocab_free(vocab *v) {
    CF_FREE_ALL(v->kind, v->str_off, v->str_len, v->aux0, v->aux1, v->count, v->cut_set, v->slot_of,
                v->heap, v->cuts, v->year);
    strmap_free(&v->index);
    memset(v, 0, sizeof *v);
}

int vocab_serialize(const vocab *v, uint8_t **out, size_t *out_len, cf_err *err) {
    uint64_t body = (uint64_t)v->n_tokens * REC_BYTES + (uint64_t)v->n_cut_sets * VOCAB_N_CUTS * 4 + v->heap_len;
    size_t len = VOCAB_HEADER_BYTES + (size_t)body;
    uint8_t *b = calloc(1, len);
    if (!b) return cf_fail(err, CF_EINTERNAL, "out of memory serialising the vocabulary");
    memcpy(b, VOCAB_MAGIC, 8);
    le_put32(b + 8, v->value_mode || v->split_rotate_ppm ? VOCAB_FORMAT_VERSION : 1);
    le_put32(b + 104, v->value_mode);
    le_put32(b + 108, v->split_rotate_ppm);
    le_put32(b + 12, VOCAB_HEADER_BYTES);
    le_put32(b + 16, v->flags);
    le_put32(b + 20, v->ruleset);
    le_put32(b + 24, v->n_tokens);
    le_put32(b + 28, v->n_cut_sets);
    le_put32(b + 32, v->heap_len);
    le_put32(b + 36, v->min_count);
    le_put32(b + 40, v->min_numeric);
    le_put32(b + 44, v->max_vocab);
    le_put32(b + 48, (uint32_t)v->year_base);
    le_put32(b + 52, v->n_year_bins);
    le_put32(b + 56, v->split_train_ppm);
    le_put32(b + 60, v->split_tuning_ppm);
    memcpy(b + 64, v->split_key_id, SPLIT_KEY_ID_BYTES);
    le_put64(b + 80, v->train_subjects);
    le_put64(b + 88, v->train_events);
    le_put64(b + 96, body);
    uint8_t *p = b + VOCAB_HEADER_BYTES;
    for (uint32_t i = 0; i < v->n_tokens; i++, p += REC_BYTES) {
        p[0] = v->kind[i];
        le_put32(p + 4, v->str_off[i]);
        le_put32(p + 8, v->str_len[i]);
        le_put32(p + 12, v->cut_set[i]);
        le_put64(p + 16, (uint64_t)v->aux0[i]);
        le_put64(p + 24, (uint64_t)v->aux1[i]);
        le_put64(p + 32, v->count[i]);
    }
    for (uint64_t i = 0; i < (uint64_t)v->n_cut_sets * VOCAB_N_CUTS; i++, p += 4) {
        uint32_t u;
        memcpy(&u, &v->cuts[i], 4);
        le_put32(p, u);
    }
    if (v->heap_len) memcpy(p, v->heap, v->heap_len);
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, VOCAB_HASH_BYTES);
    crypto_generichash_update(&st, b, HASH_OFFSET);
    crypto_generichash_update(&st, b + VOCAB_HEADER_BYTES, (unsigned long long)body);
    crypto_generichash_final(&st, b + HASH_OFFSET, VOCAB_HASH_BYTES);
    *out = b;
    *out_len = len;
    return CF_OK;
}

static int bad(cf_err *err, const char *what, const char *why) {
    return cf_fail(err, CF_EINPUT, "%s: not a usable clinfm vocabulary: %s", what, why);
}

int vocab_slot_of_namespace(const vocab *v, const char *ns, size_t len) {
    for (uint32_t k = 0; k < v->n_slots; k++) {
        const char *s = vocab_token_str(v, v->slot_none[k]);
        size_t sl = v->str_len[v->slot_none[k]] - strlen("//[NONE]");
        if (sl == len && !memcmp(s, ns, len)) return (int)k;
    }
    return -1;
}

int vocab_parse(vocab *v, const void *data, size_t len, const char *what, cf_err *err) {
    const uint8_t *b = data;
    memset(v, 0, sizeof *v);
    if (len < VOCAB_HEADER_BYTES || memcmp(b, VOCAB_MAGIC, 8) != 0)
        return bad(err, what, "no vocabulary header (wrong file or truncated)");
    uint32_t version = le_get32(b + 8);
    if (version < 1 || version > VOCAB_FORMAT_VERSION)
        return cf_fail(err, CF_EINPUT, "%s: vocabulary format version %u; this clinfm reads version %u", what,
                       version, VOCAB_FORMAT_VERSION);
    if (le_get32(b + 12) != VOCAB_HEADER_BYTES) return bad(err, what, "unexpected header size");
    uint64_t body = le_get64(b + 96);
    if (body != len - VOCAB_HEADER_BYTES) return bad(err, what, "file size does not match its header (truncated?)");
    uint8_t h[VOCAB_HASH_BYTES];
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, VOCAB_HASH_BYTES);
    crypto_generichash_update(&st, b, HASH_OFFSET);
    crypto_generichash_update(&st, b + VOCAB_HEADER_BYTES, (unsigned long long)body);
    crypto_generichash_final(&st, h, sizeof h);
    if (sodium_memcmp(h, b + HASH_OFFSET, sizeof h) != 0)
        return bad(err, what, "checksum mismatch (the file is damaged)");
    for (size_t i = version >= 2 ? 112 : 104; i < HASH_OFFSET; i++)
        if (b[i]) return bad(err, what, "reserved header bytes are not zero");
    v->value_mode = version >= 2 ? le_get32(b + 104) : VOCAB_VALUES_TOKENS;
    v->split_rotate_ppm = version >= 2 ? le_get32(b + 108) : 0;
    if (v->split_rotate_ppm >= SPLIT_PPM) return bad(err, what, "split rotation out of range");
    if (v->value_mode > VOCAB_VALUES_EMBED) return bad(err, what, "unknown value mode");
    memcpy(v->hash, h, sizeof h);
    v->flags = le_get32(b + 16);
    v->ruleset = le_get32(b + 20);
    v->n_tokens = le_get32(b + 24);
    v->n_cut_sets = le_get32(b + 28);
    v->heap_len = le_get32(b + 32);
    v->min_count = le_get32(b + 36);
    v->min_numeric = le_get32(b + 40);
    v->max_vocab = le_get32(b + 44);
    v->year_base = (int32_t)le_get32(b + 48);
    v->n_year_bins = le_get32(b + 52);
    v->split_train_ppm = le_get32(b + 56);
    v->split_tuning_ppm = le_get32(b + 60);
    memcpy(v->split_key_id, b + 64, SPLIT_KEY_ID_BYTES);
    v->train_subjects = le_get64(b + 80);
    v->train_events = le_get64(b + 88);
    if (v->ruleset != TIMELINE_RULESET)
        return cf_fail(err, CF_EINPUT, "%s: vocabulary built with token rules version %u; this clinfm has version %u",
                       what, v->ruleset, TIMELINE_RULESET);
    if (v->n_tokens > (1u << 30) || v->n_cut_sets > v->n_tokens || v->n_year_bins > VOCAB_MAX_YEAR_BINS ||
        (uint64_t)v->n_tokens * REC_BYTES + (uint64_t)v->n_cut_sets * VOCAB_N_CUTS * 4 + v->heap_len != body)
        return bad(err, what, "inconsistent table sizes");
    int rc = CF_EINTERNAL;
    uint32_t n = v->n_tokens;
    v->kind = malloc(n ? n : 1);
    v->str_off = malloc((n ? n : 1) * sizeof *v->str_off);
    v->str_len = malloc((n ? n : 1) * sizeof *v->str_len);
    v->aux0 = malloc((n ? n : 1) * sizeof *v->aux0);
    v->aux1 = malloc((n ? n : 1) * sizeof *v->aux1);
    v->count = malloc((n ? n : 1) * sizeof *v->count);
    v->cut_set = malloc((n ? n : 1) * sizeof *v->cut_set);
    v->slot_of = malloc(n ? n : 1);
    v->cuts = malloc(((size_t)v->n_cut_sets * VOCAB_N_CUTS + 1) * sizeof *v->cuts);
    v->heap = malloc((size_t)v->heap_len + 1);
    v->year = malloc((v->n_year_bins + 1) * sizeof *v->year);
    if (!v->kind || !v->str_off || !v->str_len || !v->aux0 || !v->aux1 || !v->count || !v->cut_set ||
        !v->slot_of || !v->cuts || !v->heap || !v->year) {
        cf_fail(err, CF_EINTERNAL, "out of memory loading the vocabulary");
        goto fail;
    }
    const uint8_t *p = b + VOCAB_HEADER_BYTES;
    for (uint32_t i = 0; i < n; i++, p += REC_BYTES) {
        v->kind[i] = p[0];
        v->str_off[i] = le_get32(p + 4);
        v->str_len[i] = le_get32(p + 8);
        v->cut_set[i] = le_get32(p + 12);
        v->aux0[i] = (int64_t)le_get64(p + 16);
        v->aux1[i] = (int64_t)le_get64(p + 24);
        v->count[i] = le_get64(p + 32);
        if (p[1] || p[2] || p[3] || p[0] < VOCAB_KIND_SPECIAL || p[0] >= VOCAB_KIND_MAX) {
            rc = bad(err, what, "a token has an unknown kind");
            goto fail;
        }
        if (v->cut_set[i] != UINT32_MAX && (v->cut_set[i] >= v->n_cut_sets || p[0] != VOCAB_KIND_CODE)) {
            rc = bad(err, what, "a token refers to cut points that do not exist");
            goto fail;
        }
    }
    for (uint64_t i = 0; i < (uint64_t)v->n_cut_sets * VOCAB_N_CUTS; i++, p += 4) {
        uint32_t u = le_get32(p);
        memcpy(&v->cuts[i], &u, 4);
        if (!isfinite(v->cuts[i]) || (i % VOCAB_N_CUTS && v->cuts[i] < v->cuts[i - 1])) {
            rc = bad(err, what, "decile cut points are not finite and ascending");
            goto fail;
        }
    }
    memcpy(v->heap, p, v->heap_len);
    v->heap[v->heap_len] = 0;
    /* Strings: inside the heap, NUL-terminated, no NUL inside, non-empty, unique. */
    strmap_init(&v->index);
    for (uint32_t i = 0; i < n; i++) {
        uint64_t end = (uint64_t)v->str_off[i] + v->str_len[i];
        if (!v->str_len[i] || end >= v->heap_len || v->heap[end] != 0 ||
            memchr(v->heap + v->str_off[i], 0, v->str_len[i])) {
            rc = bad(err, what, "a token string lies outside the string table");
            goto fail;
        }
        int64_t id = strmap_intern(&v->index, v->heap + v->str_off[i], v->str_len[i]);
        if (id < 0) {
            cf_fail(err, CF_EINTERNAL, "out of memory loading the vocabulary");
            goto fail;
        }
        if ((uint32_t)id != i) {
            rc = bad(err, what, "two tokens have the same string");
            goto fail;
        }
    }
    /* The canonical layout: specials at 0..7, then quantiles, gaps, ages, years, in order. */
    uint32_t t = 0;
    for (int k = 0; k < VOCAB_N_SPECIAL; k++, t++) {
        if (t >= n || v->kind[t] != VOCAB_KIND_SPECIAL || v->aux0[t] != k) goto layout;
        v->special[k] = t;
    }
    for (int k = 0; k < VOCAB_N_QUANTILES; k++, t++) {
        if (t >= n || v->kind[t] != VOCAB_KIND_QUANTILE || v->aux0[t] != k + 1) goto layout;
        v->quantile[k] = t;
    }
    for (int k = 0; k < VOCAB_N_GAPS; k++, t++) {
        if (t >= n || v->kind[t] != VOCAB_KIND_GAP || v->aux0[t] != gap_edges[k]) goto layout;
        v->gap[k] = t;
    }
    for (int k = 0; k < VOCAB_N_AGE_BINS; k++, t++) {
        if (t >= n || v->kind[t] != VOCAB_KIND_AGE || v->aux0[t] != (int64_t)k * VOCAB_AGE_BIN_YEARS) goto layout;
        v->age[k] = t;
    }
    if (t >= n || v->kind[t] != VOCAB_KIND_AGE || v->aux0[t] != -1) goto layout;
    v->age_unknown = t++;
    if (t >= n || v->kind[t] != VOCAB_KIND_YEAR || v->aux0[t] != -1) goto layout;
    v->year_unknown = t++;
    for (uint32_t k = 0; k < v->n_year_bins; k++, t++) {
        if (t >= n || v->kind[t] != VOCAB_KIND_YEAR ||
            v->aux0[t] != (int64_t)v->year_base + (int64_t)k * VOCAB_YEAR_BIN_YEARS)
            goto layout;
        v->year[k] = t;
    }
    for (uint32_t i = t; i < n; i++) {
        if (v->kind[i] <= VOCAB_KIND_YEAR) goto layout;
        if (v->kind[i] == VOCAB_KIND_NONE) {
            if (v->aux0[i] != (int64_t)v->n_slots || v->n_slots >= VOCAB_MAX_SLOTS || v->str_len[i] <= 8 ||
                strcmp(v->heap + v->str_off[i] + v->str_len[i] - 8, "//[NONE]") != 0)
                goto layout;
            v->slot_none[v->n_slots++] = i;
        }
    }
    /* Which tokens are values of a static slot: code tokens and unknowns of its namespace. */
    for (uint32_t i = 0; i < n; i++) {
        v->slot_of[i] = -1;
        if (v->kind[i] == VOCAB_KIND_CODE || v->kind[i] == VOCAB_KIND_UNK) {
            const char *s = vocab_token_str(v, i);
            int k = vocab_slot_of_namespace(v, s, timeline_code_namespace(s));
            v->slot_of[i] = (int8_t)k;
        }
    }
    return CF_OK;
layout:
    rc = bad(err, what, "tokens are not in the canonical layout");
fail:
    vocab_free(v);
    return rc;
}

int vocab_save(const vocab *v, const char *path, cf_err *err) {
    uint8_t *buf;
    size_t len;
    int rc = vocab_serialize(v, &buf, &len, err);
    if (rc) return rc;
    rc = atomic_write_file(path, buf, len, err);
    free(buf);
    return rc;
}

int vocab_load(vocab *v, const char *path, cf_err *err) {
    memset(v, 0, sizeof *v);
    FILE *f = fopen(path, "rb");
    if (!f) return cf_fail_errno(err, CF_EINPUT, "%s: cannot open vocabulary", path);
    char *buf = NULL;
    size_t len = 0;
    int rc = file_read_stream(f, path, 0, &buf, &len, err);
    fclose(f);
    if (!rc) rc = vocab_parse(v, buf, len, path, err);
    free(buf);
    return rc;
}

int64_t vocab_find(const vocab *v, const char *s) { return strmap_find(&v->index, s, strlen(s)); }

char *vocab_hash_hex(const vocab *v, char *buf) {
    static const char hx[] = "0123456789abcdef";
    for (int i = 0; i < VOCAB_HASH_BYTES; i++) {
        buf[2 * i] = hx[v->hash[i] >> 4];
        buf[2 * i + 1] = hx[v->hash[i] & 15];
    }
    buf[2 * VOCAB_HASH_BYTES] = 0;
    return buf;
}

/* ------------------------------------------------------------------ build */

/* A growing token table, the same arrays as a vocab, before serialisation. */
typedef struct {
    vocab v;
    uint32_t cap;
    size_t heap_cap;
} draft;

static int draft_add(draft *d, int kind, const char *s, size_t len, int64_t a0, int64_t a1, uint64_t count) {
    vocab *v = &d->v;
    if (v->n_tokens == d->cap) {
        uint32_t nc = d->cap ? d->cap * 2 : 256;
        void *p;
#define GROW(field)                                                     \
    if (!(p = realloc(v->field, (size_t)nc * sizeof *v->field))) return -1; \
    v->field = p;
        GROW(kind) GROW(str_off) GROW(str_len) GROW(aux0) GROW(aux1) GROW(count) GROW(cut_set)
#undef GROW
        d->cap = nc;
    }
    if ((uint64_t)v->heap_len + len + 1 > UINT32_MAX) return -1;
    char *heap = cf_grow(v->heap, &d->heap_cap, v->heap_len + len + 1, 1, 4096);
    if (!heap) return -1;
    v->heap = heap;
    uint32_t i = v->n_tokens++;
    v->kind[i] = (uint8_t)kind;
    v->str_off[i] = v->heap_len;
    v->str_len[i] = (uint32_t)len;
    memcpy(v->heap + v->heap_len, s, len);
    v->heap[v->heap_len + len] = 0;
    v->heap_len += (uint32_t)len + 1;
    v->aux0[i] = a0;
    v->aux1[i] = a1;
    v->count[i] = count;
    v->cut_set[i] = UINT32_MAX;
    return 0;
}

/* A candidate token (a whole code, or a code part) with its train count. */
typedef struct {
    uint32_t id;      /* in the candidate strmap */
    const char *str;  /* into the strmap arena: valid after all inserts */
    uint32_t len;
    uint64_t count;
    int part;         /* 1 when it came from a split code (part position in part_pos) */
    int part_pos;
    int whole;        /* 1 when some store code is this exact string */
    uint32_t ns;      /* namespace id */
    int chosen;
} cand;

static int cmp_cand_freq(const void *a, const void *b) {
    const cand *x = a, *y = b;
    if (x->count != y->count) return x->count > y->count ? -1 : 1;
    int c = strcmp(x->str, y->str);
    return c;
}
static int cmp_cand_str(const void *a, const void *b) {
    const cand *x = a, *y = b;
    return strcmp(x->str, y->str);
}

typedef struct {
    const char *s;
    uint32_t len, id;
} ns_ent;
static int cmp_ns(const void *a, const void *b) { return strcmp(((const ns_ent *)a)->s, ((const ns_ent *)b)->s); }

/* Demographic namespaces that form static-prefix slots when present, in prefix order. */
static const char *const known_static[] = {"GENDER", "SEX", "RACE", "ETHNICITY", "MARITAL_STATUS"};

/* The token candidates: each string the encoder would emit for a code seen in train (the code,
 * or its parts when split), with its train count and namespace (interned in cm and nsm).
 * code_cand[c]: the candidate of whole code c, -1 if none. 0, or -1 when out of memory (what
 * *cands_out holds is the caller's to free either way). */
static int collect_candidates(const store *s, const vocab_options *o, const uint64_t *cnt, strmap *cm, strmap *nsm,
                              cand **cands_out, size_t *n_out, int32_t *code_cand) {
    size_t n_cand = 0, cap_cand = 0;
    cand *cands = NULL;
    for (uint64_t c = 0; c < s->n_codes; c++) {
        code_cand[c] = -1;
        if (!cnt[c]) continue;
        const char *code = store_code_str(s, (uint32_t)c);
        timeline_code_info info;
        timeline_code_analyse(code, o->split_codes, &info);
        if (!info.keep_code) continue;
        int np = info.n_parts ? info.n_parts : 1;
        for (int j = 0; j < np; j++) {
            const char *str = info.n_parts ? info.parts[j] : code;
            size_t len = strlen(str);
            int64_t id = strmap_intern(cm, str, len);
            if (id < 0) goto oom;
            if ((size_t)id == n_cand) {
                cand *nc = cf_grow(cands, &cap_cand, n_cand + 1, sizeof *nc, 1024);
                if (!nc) goto oom;
                cands = nc;
                memset(&cands[n_cand], 0, sizeof cands[n_cand]);
                cands[n_cand].id = (uint32_t)id;
                cands[n_cand].len = (uint32_t)len;
                /* Codes without "//" have no namespace: when rare they become [UNK]. */
                cands[n_cand].ns = UINT32_MAX;
                if (strstr(str, "//")) {
                    int64_t ns = strmap_intern(nsm, str, timeline_code_namespace(str));
                    if (ns < 0) goto oom;
                    cands[n_cand].ns = (uint32_t)ns;
                }
                n_cand++;
            }
            cands[id].count += cnt[c];
            if (info.n_parts) {
                cands[id].part = 1;
                cands[id].part_pos = j + 1;
            } else {
                cands[id].whole = 1;
                code_cand[c] = (int32_t)id;
            }
        }
    }
    for (size_t i = 0; i < n_cand; i++) cands[i].str = strmap_str(cm, cands[i].id, NULL);
    *cands_out = cands;
    *n_out = n_cand;
    return 0;
oom:
    *cands_out = cands;
    return -1;
}

/* The static prefix's slots, one namespace each: those --static names, else the known ones the
 * train codes use (GENDER, SEX, ...) followed by every other namespace of time-less train facts
 * in string order. slot_ns[k] points into o->static_ns, known_static or the store's codes and is
 * not NUL-terminated: slot_len[k] bytes. */
static int static_slots(const store *s, const vocab_options *o, const strmap *nsm, const uint64_t *static_cnt,
                        int64_t birth_code, const char **slot_ns, size_t *slot_len, uint32_t *n_slots, cf_err *err) {
    *n_slots = 0;
    if (o->static_ns) {
        const char *p = o->static_ns;
        while (*p) {
            const char *e = strchr(p, ',');
            size_t len = e ? (size_t)(e - p) : strlen(p);
            if (!len || len >= 200 || memchr(p, '/', len))
                return cf_fail(err, CF_EINPUT, "--static expects comma-separated namespaces such as GENDER,RACE");
            for (uint32_t k = 0; k < *n_slots; k++)
                if (slot_len[k] == len && !memcmp(slot_ns[k], p, len))
                    return cf_fail(err, CF_EINPUT, "--static names a namespace twice");
            if (*n_slots == VOCAB_MAX_SLOTS)
                return cf_fail(err, CF_EINPUT, "--static names more than %d namespaces", VOCAB_MAX_SLOTS);
            slot_ns[*n_slots] = p;
            slot_len[(*n_slots)++] = len;
            p += len;
            if (*p == ',') p++;
        }
    } else {
        for (size_t j = 0; j < sizeof known_static / sizeof *known_static; j++)
            if (strmap_find(nsm, known_static[j], strlen(known_static[j])) >= 0) {
                slot_ns[*n_slots] = known_static[j];
                slot_len[(*n_slots)++] = strlen(known_static[j]);
            }
        /* Then every other namespace of static (time-less) facts, in string order. */
        ns_ent extra[VOCAB_MAX_SLOTS];
        size_t n_extra = 0;
        for (uint64_t c = 0; c < s->n_codes; c++) {
            if (!static_cnt[c] || (int64_t)c == birth_code) continue;
            const char *code = store_code_str(s, (uint32_t)c);
            size_t nl = timeline_code_namespace(code);
            int seen = 0;
            for (uint32_t k = 0; k < *n_slots && !seen; k++) seen = slot_len[k] == nl && !memcmp(slot_ns[k], code, nl);
            for (size_t k = 0; k < n_extra && !seen; k++) seen = extra[k].len == nl && !memcmp(extra[k].s, code, nl);
            if (seen) continue;
            if (*n_slots + n_extra >= VOCAB_MAX_SLOTS) {
                return cf_fail(err, CF_EINPUT,
                             "the store has static facts in more than %d namespaces; choose the prefix with --static",
                             VOCAB_MAX_SLOTS);
            }
            extra[n_extra++] = (ns_ent){code, (uint32_t)nl, 0};
        }
        /* Insertion sort by namespace text (the strings run on past len, so compare bounded). */
        for (size_t a = 1; a < n_extra; a++)
            for (size_t j = a; j > 0; j--) {
                ns_ent x = extra[j - 1], y = extra[j];
                size_t m = x.len < y.len ? x.len : y.len;
                int c2 = memcmp(x.s, y.s, m);
                if (c2 < 0 || (c2 == 0 && x.len <= y.len)) break;
                extra[j - 1] = y;
                extra[j] = x;
            }
        for (size_t k = 0; k < n_extra; k++) {
            slot_ns[*n_slots] = extra[k].s;
            slot_len[(*n_slots)++] = extra[k].len;
        }
    }
    assert(*n_slots <= VOCAB_MAX_SLOTS);
    return CF_OK;
}

int vocab_build(vocab *out, const store *s, const split_config *sp, const vocab_options *o, cf_err *err) {
    memset(out, 0, sizeof *out);
    int rc = CF_EINTERNAL;
    uint64_t C = s->n_codes;
    uint64_t *cnt = calloc(C + 1, sizeof *cnt), *static_cnt = calloc(C + 1, sizeof *static_cnt),
             *num_cnt = calloc(C + 1, sizeof *num_cnt), *num_off = NULL;
    int32_t *code_cand = NULL;  /* store code -> candidate (whole codes only) */
    float *values = NULL;
    cand *cands = NULL;
    ns_ent *nss = NULL;
    strmap cm, nsm, gen;
    strmap_init(&cm);
    strmap_init(&nsm);
    strmap_init(&gen);
    draft d;
    memset(&d, 0, sizeof d);
    uint8_t *img = NULL;
    uint8_t *is_train = NULL;
    store_cursor *cur = NULL;
    size_t img_len = 0;
    const char *slot_ns[VOCAB_MAX_SLOTS];
    size_t slot_len[VOCAB_MAX_SLOTS];
    uint32_t n_slots = 0;
    char buf[1024];
    if (!cnt || !static_cnt || !num_cnt) goto oom;

    /* Pass 1: counts over the train split only. */
    int64_t birth_code = store_find_code(s, "MEDS_BIRTH");
    int64_t tmin = INT64_MAX, tmax = INT64_MIN;
    uint64_t train_subjects = 0, train_events = 0;
    /* The split is decided once per subject; both passes read this, so they cannot disagree. */
    is_train = malloc(s->n_subjects + 1);
    if (!is_train) goto oom;
    for (uint64_t k = 0; k < s->n_subjects; k++) is_train[k] = split_assign(sp, s->subject_id[k]) == SPLIT_TRAIN;
    /* Both passes read the events subject by subject, a block decoded at a time. */
    if ((rc = store_cursor_new(&cur, s, STORE_CURSOR_READAHEAD, err))) goto fail;
    rc = CF_EINTERNAL;
    for (uint64_t k = 0; k < s->n_subjects; k++) {
        if (!is_train[k]) continue;
        train_subjects++;
        store_events ev;
        if ((rc = store_cursor_subject(cur, k, &ev, err))) goto fail;
        rc = CF_EINTERNAL;
        for (uint64_t i = 0; i < ev.n; i++) {
            uint32_t c = ev.code[i];
            int64_t t = ev.time[i];
            cnt[c]++;
            train_events++;
            if (t == TIME_NULL) static_cnt[c]++;
            else if ((int64_t)c != birth_code) {
                if (t < tmin) tmin = t;
                if (t > tmax) tmax = t;
            }
            if (isfinite(ev.numeric[i])) num_cnt[c]++;
        }
    }
    if (!train_subjects) {
        rc = cf_fail(err, CF_EINPUT, "the train split of this store is empty; nothing to fit a vocabulary on");
        goto fail;
    }

    /* Candidates: the strings the encoder would emit for each code seen in train. */
    size_t n_cand = 0;
    code_cand = malloc((C + 1) * sizeof *code_cand);
    if (!code_cand || collect_candidates(s, o, cnt, &cm, &nsm, &cands, &n_cand, code_cand)) goto oom;

    /* Static-prefix slots. */
    if ((rc = static_slots(s, o, &nsm, static_cnt, birth_code, slot_ns, slot_len, &n_slots, err))) goto fail;

    /* Year range of the timeline events in train. */
    int32_t year_base = 0;
    uint32_t n_year_bins = 0;
    if (tmin <= tmax) {
        int64_t y0 = year_of(tmin), y1 = year_of(tmax);
        int64_t base = floor_div(y0, VOCAB_YEAR_BIN_YEARS) * VOCAB_YEAR_BIN_YEARS;
        int64_t nb = (y1 - base) / VOCAB_YEAR_BIN_YEARS + 1;
        if (nb > VOCAB_MAX_YEAR_BINS) {
            rc = cf_fail(err, CF_EINPUT, "train events span more than %d years; the store's times look wrong",
                         VOCAB_MAX_YEAR_BINS * VOCAB_YEAR_BIN_YEARS);
            goto fail;
        }
        year_base = (int32_t)base;
        n_year_bins = (uint32_t)nb;
    }

    /* Namespaces, sorted, for the unknown tokens. */
    nss = malloc((nsm.count + 1) * sizeof *nss);
    if (!nss) goto oom;
    for (uint32_t i = 0; i < nsm.count; i++) {
        size_t l;
        nss[i].s = strmap_str(&nsm, i, &l);
        nss[i].len = (uint32_t)l;
        nss[i].id = i;
    }
    qsort(nss, nsm.count, sizeof *nss, cmp_ns);

    /* The generated tokens, in canonical order. */
#define ADD(kind, str, a0, a1, c)                                                   \
    do {                                                                           \
        if (draft_add(&d, kind, str, strlen(str), a0, a1, c) ||                    \
            strmap_intern(&gen, str, strlen(str)) < 0)                             \
            goto oom;                                                              \
    } while (0)
    for (int k = 0; k < VOCAB_N_SPECIAL; k++) ADD(VOCAB_KIND_SPECIAL, special_names[k], k, 0, 0);
    for (int k = 1; k <= VOCAB_N_QUANTILES; k++) {
        snprintf(buf, sizeof buf, "[Q%d]", k);
        ADD(VOCAB_KIND_QUANTILE, buf, k, 0, 0);
    }
    for (int k = 0; k < VOCAB_N_GAPS; k++) {
        snprintf(buf, sizeof buf, "[GAP %s]", gap_labels[k]);
        ADD(VOCAB_KIND_GAP, buf, gap_edges[k], k + 1 < VOCAB_N_GAPS ? gap_edges[k + 1] : gap_edges[k], 0);
    }
    for (int k = 0; k < VOCAB_N_AGE_BINS; k++) {
        int lo = k * VOCAB_AGE_BIN_YEARS;
        if (k == VOCAB_N_AGE_BINS - 1) snprintf(buf, sizeof buf, "[AGE %d+]", lo);
        else snprintf(buf, sizeof buf, "[AGE %d-%d]", lo, lo + VOCAB_AGE_BIN_YEARS - 1);
        ADD(VOCAB_KIND_AGE, buf, lo, k == VOCAB_N_AGE_BINS - 1 ? INT64_MAX : lo + VOCAB_AGE_BIN_YEARS - 1, 0);
    }
    ADD(VOCAB_KIND_AGE, "[AGE ?]", -1, -1, 0);
    ADD(VOCAB_KIND_YEAR, "[YEAR ?]", -1, -1, 0);
    for (uint32_t k = 0; k < n_year_bins; k++) {
        int64_t lo = (int64_t)year_base + (int64_t)k * VOCAB_YEAR_BIN_YEARS;
        snprintf(buf, sizeof buf, "[YEAR %lld-%lld]", (long long)lo, (long long)(lo + VOCAB_YEAR_BIN_YEARS - 1));
        ADD(VOCAB_KIND_YEAR, buf, lo, lo + VOCAB_YEAR_BIN_YEARS - 1, 0);
    }
    uint32_t first_unk = d.v.n_tokens;
    for (uint32_t i = 0; i < nsm.count; i++) {
        if (nss[i].len > sizeof buf - 16) goto toolong;
        snprintf(buf, sizeof buf, "%.*s//[UNK]", (int)nss[i].len, nss[i].s);
        ADD(VOCAB_KIND_UNK, buf, 0, 0, 0);
    }
    for (uint32_t k = 0; k < n_slots; k++) {
        if (slot_len[k] > sizeof buf - 16) goto toolong;
        snprintf(buf, sizeof buf, "%.*s//[NONE]", (int)slot_len[k], slot_ns[k]);
        ADD(VOCAB_KIND_NONE, buf, k, 0, 0);
    }
#undef ADD

    /* Choose the code tokens: frequent enough, not colliding with a generated name, and
     * within the size cap (most frequent first). */
    for (size_t i = 0; i < n_cand; i++)
        cands[i].chosen = cands[i].count >= o->min_count && strmap_find(&gen, cands[i].str, cands[i].len) < 0;
    uint32_t fixed = d.v.n_tokens;
    qsort(cands, n_cand, sizeof *cands, cmp_cand_freq);
    if (o->max_vocab) {
        if (fixed >= o->max_vocab) {
            rc = cf_fail(err, CF_EINPUT, "--max-vocab %u leaves no room for code tokens (%u tokens are fixed)",
                         o->max_vocab, fixed);
            goto fail;
        }
        size_t room = o->max_vocab - fixed, kept = 0;
        for (size_t i = 0; i < n_cand; i++)
            if (cands[i].chosen && ++kept > room) cands[i].chosen = 0;
    }
    qsort(cands, n_cand, sizeof *cands, cmp_cand_str);
    /* code_cand pointed at candidate ids; map ids to positions after the sort. */
    int32_t *pos_of = malloc((n_cand + 1) * sizeof *pos_of);
    if (!pos_of) goto oom;
    for (size_t i = 0; i < n_cand; i++) pos_of[cands[i].id] = (int32_t)i;
    for (uint64_t c = 0; c < C; c++)
        if (code_cand[c] >= 0) code_cand[c] = pos_of[code_cand[c]];
    free(pos_of);
    /* Unknown tokens count the train events they stand for. */
    uint32_t *unk_of_ns = malloc((nsm.count + 1) * sizeof *unk_of_ns);
    if (!unk_of_ns) goto oom;
    for (uint32_t u = 0; u < nsm.count; u++) unk_of_ns[nss[u].id] = first_unk + u;
    for (size_t i = 0; i < n_cand; i++)
        if (!cands[i].chosen)
            d.v.count[cands[i].ns == UINT32_MAX ? VOCAB_SP_UNK : unk_of_ns[cands[i].ns]] += cands[i].count;
    free(unk_of_ns);
    int32_t *tok_of_cand = malloc((n_cand + 1) * sizeof *tok_of_cand);
    if (!tok_of_cand) goto oom;
    for (size_t i = 0; i < n_cand; i++) {
        tok_of_cand[i] = -1;
        if (!cands[i].chosen) continue;
        tok_of_cand[i] = (int32_t)d.v.n_tokens;
        int kind = cands[i].whole ? VOCAB_KIND_CODE : VOCAB_KIND_PART;
        if (draft_add(&d, kind, cands[i].str, cands[i].len, kind == VOCAB_KIND_PART ? cands[i].part_pos : 0, 0,
                      cands[i].count)) {
            free(tok_of_cand);
            goto oom;
        }
    }

    /* Pass 2: numeric values of whole-code tokens with enough of them, then decile cuts. */
    num_off = calloc(C + 1, sizeof *num_off);
    if (!num_off) {
        free(tok_of_cand);
        goto oom;
    }
    uint64_t total = 0;
    for (uint64_t c = 0; c < C; c++) {
        num_off[c] = total;
        if (code_cand[c] >= 0 && tok_of_cand[code_cand[c]] >= 0 && num_cnt[c] >= o->min_numeric && num_cnt[c] > 0)
            total += num_cnt[c];
        else
            num_cnt[c] = 0; /* no cut points for this code */
    }
    values = malloc((total + 1) * sizeof *values);
    if (!values) {
        free(tok_of_cand);
        goto oom;
    }
    uint64_t *fill = static_cnt; /* reuse: static counts are no longer needed */
    memset(fill, 0, (C + 1) * sizeof *fill);
    for (uint64_t k = 0; k < s->n_subjects && total; k++) {
        if (!is_train[k]) continue;
        store_events ev;
        if ((rc = store_cursor_subject(cur, k, &ev, err))) {
            free(tok_of_cand);
            goto fail;
        }
        rc = CF_EINTERNAL;
        for (uint64_t i = 0; i < ev.n; i++) {
            uint32_t c = ev.code[i];
            if (num_cnt[c] && isfinite(ev.numeric[i])) values[num_off[c] + fill[c]++] = ev.numeric[i];
        }
    }
    uint32_t n_sets = 0;
    for (uint64_t c = 0; c < C; c++) n_sets += fill[c] > 0;
    d.v.cuts = malloc(((size_t)n_sets * VOCAB_N_CUTS + 1) * sizeof *d.v.cuts);
    if (!d.v.cuts) {
        free(tok_of_cand);
        goto oom;
    }
    for (uint64_t c = 0; c < C; c++) {
        if (!fill[c]) continue;
        uint32_t t = (uint32_t)tok_of_cand[code_cand[c]];
        d.v.cut_set[t] = d.v.n_cut_sets;
        vocab_fit_cuts(values + num_off[c], fill[c], d.v.cuts + (size_t)d.v.n_cut_sets * VOCAB_N_CUTS);
        d.v.n_cut_sets++;
    }
    free(tok_of_cand);

    d.v.flags = o->split_codes ? VOCAB_FLAG_SPLIT_CODES : 0;
    d.v.ruleset = TIMELINE_RULESET;
    d.v.min_count = o->min_count;
    d.v.min_numeric = o->min_numeric;
    d.v.max_vocab = o->max_vocab;
    d.v.value_mode = (uint32_t)o->value_mode;
    d.v.year_base = year_base;
    d.v.n_year_bins = n_year_bins;
    d.v.split_train_ppm = sp->train_ppm;
    d.v.split_tuning_ppm = sp->tuning_ppm;
    d.v.split_rotate_ppm = sp->rotate_ppm;
    split_key_id(sp, d.v.split_key_id);
    d.v.train_subjects = train_subjects;
    d.v.train_events = train_events;
    if ((rc = vocab_serialize(&d.v, &img, &img_len, err))) goto fail;
    rc = vocab_parse(out, img, img_len, "new vocabulary", err);
    if (rc) rc = CF_EINTERNAL; /* a vocabulary we built must parse */
    goto done;
toolong:
    rc = cf_fail(err, CF_EINPUT, "a code namespace is longer than %zu bytes", sizeof buf - 16);
    goto fail;
oom:
    rc = cf_fail(err, CF_EINTERNAL, "out of memory building the vocabulary");
fail:
done:
    store_cursor_free(cur);
    free(img);
    free(is_train);
    vocab_free(&d.v);
    CF_FREE_ALL(cnt, static_cnt, num_cnt, num_off, code_cand, values, cands, nss);
    strmap_free(&cm);
    strmap_free(&nsm);
    strmap_free(&gen);
    return rc;
}
