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

/* The header: magic, version, sizes, checksum (kept in v->hash) and the build's options. */
static int parse_header(vocab *v, const uint8_t *b, size_t len, const char *what, cf_err *err) {
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
    return CF_OK;
}

/* The token records, cut points and string heap that follow the header, checked field by field.
 * On failure the caller frees what was allocated. */
static int parse_tables(vocab *v, const uint8_t *b, const char *what, cf_err *err) {
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
        !v->slot_of || !v->cuts || !v->heap || !v->year)
        return cf_fail(err, CF_EINTERNAL, "out of memory loading the vocabulary");
    const uint8_t *p = b + VOCAB_HEADER_BYTES;
    for (uint32_t i = 0; i < n; i++, p += REC_BYTES) {
        v->kind[i] = p[0];
        v->str_off[i] = le_get32(p + 4);
        v->str_len[i] = le_get32(p + 8);
        v->cut_set[i] = le_get32(p + 12);
        v->aux0[i] = (int64_t)le_get64(p + 16);
        v->aux1[i] = (int64_t)le_get64(p + 24);
        v->count[i] = le_get64(p + 32);
        if (p[1] || p[2] || p[3] || p[0] < VOCAB_KIND_SPECIAL || p[0] >= VOCAB_KIND_MAX)
            return bad(err, what, "a token has an unknown kind");
        if (v->cut_set[i] != UINT32_MAX && (v->cut_set[i] >= v->n_cut_sets || p[0] != VOCAB_KIND_CODE))
            return bad(err, what, "a token refers to cut points that do not exist");
    }
    for (uint64_t i = 0; i < (uint64_t)v->n_cut_sets * VOCAB_N_CUTS; i++, p += 4) {
        uint32_t u = le_get32(p);
        memcpy(&v->cuts[i], &u, 4);
        if (!isfinite(v->cuts[i]) || (i % VOCAB_N_CUTS && v->cuts[i] < v->cuts[i - 1]))
            return bad(err, what, "decile cut points are not finite and ascending");
    }
    memcpy(v->heap, p, v->heap_len);
    v->heap[v->heap_len] = 0;
    return CF_OK;
}

/* Strings: inside the heap, NUL-terminated, no NUL inside, non-empty, unique; indexed by name. */
static int index_strings(vocab *v, const char *what, cf_err *err) {
    strmap_init(&v->index);
    for (uint32_t i = 0; i < v->n_tokens; i++) {
        uint64_t end = (uint64_t)v->str_off[i] + v->str_len[i];
        if (!v->str_len[i] || end >= v->heap_len || v->heap[end] != 0 ||
            memchr(v->heap + v->str_off[i], 0, v->str_len[i]))
            return bad(err, what, "a token string lies outside the string table");
        int64_t id = strmap_intern(&v->index, v->heap + v->str_off[i], v->str_len[i]);
        if (id < 0) return cf_fail(err, CF_EINTERNAL, "out of memory loading the vocabulary");
        if ((uint32_t)id != i) return bad(err, what, "two tokens have the same string");
    }
    return CF_OK;
}

/* The canonical layout: specials at 0..7, then quantiles, gaps, ages, years, in order; the
 * [NONE] tokens after them number the static slots. Fills the token tables; 0, or -1 when the
 * tokens are not in that layout. */
static int find_layout(vocab *v) {
    uint32_t t = 0, n = v->n_tokens;
    for (int k = 0; k < VOCAB_N_SPECIAL; k++, t++) {
        if (t >= n || v->kind[t] != VOCAB_KIND_SPECIAL || v->aux0[t] != k) return -1;
        v->special[k] = t;
    }
    for (int k = 0; k < VOCAB_N_QUANTILES; k++, t++) {
        if (t >= n || v->kind[t] != VOCAB_KIND_QUANTILE || v->aux0[t] != k + 1) return -1;
        v->quantile[k] = t;
    }
    for (int k = 0; k < VOCAB_N_GAPS; k++, t++) {
        if (t >= n || v->kind[t] != VOCAB_KIND_GAP || v->aux0[t] != gap_edges[k]) return -1;
        v->gap[k] = t;
    }
    for (int k = 0; k < VOCAB_N_AGE_BINS; k++, t++) {
        if (t >= n || v->kind[t] != VOCAB_KIND_AGE || v->aux0[t] != (int64_t)k * VOCAB_AGE_BIN_YEARS) return -1;
        v->age[k] = t;
    }
    if (t >= n || v->kind[t] != VOCAB_KIND_AGE || v->aux0[t] != -1) return -1;
    v->age_unknown = t++;
    if (t >= n || v->kind[t] != VOCAB_KIND_YEAR || v->aux0[t] != -1) return -1;
    v->year_unknown = t++;
    for (uint32_t k = 0; k < v->n_year_bins; k++, t++) {
        if (t >= n || v->kind[t] != VOCAB_KIND_YEAR ||
            v->aux0[t] != (int64_t)v->year_base + (int64_t)k * VOCAB_YEAR_BIN_YEARS)
            return -1;
        v->year[k] = t;
    }
    for (uint32_t i = t; i < n; i++) {
        if (v->kind[i] <= VOCAB_KIND_YEAR) return -1;
        if (v->kind[i] == VOCAB_KIND_NONE) {
            if (v->aux0[i] != (int64_t)v->n_slots || v->n_slots >= VOCAB_MAX_SLOTS || v->str_len[i] <= 8 ||
                strcmp(v->heap + v->str_off[i] + v->str_len[i] - 8, "//[NONE]") != 0)
                return -1;
            v->slot_none[v->n_slots++] = i;
        }
    }
    return 0;
}

int vocab_parse(vocab *v, const void *data, size_t len, const char *what, cf_err *err) {
    const uint8_t *b = data;
    memset(v, 0, sizeof *v);
    int rc = parse_header(v, b, len, what, err);
    if (rc) return rc;
    if ((rc = parse_tables(v, b, what, err)) || (rc = index_strings(v, what, err))) goto fail;
    if (find_layout(v)) {
        rc = bad(err, what, "tokens are not in the canonical layout");
        goto fail;
    }
    /* Which tokens are values of a static slot: code tokens and unknowns of its namespace. */
    for (uint32_t i = 0; i < v->n_tokens; i++) {
        v->slot_of[i] = -1;
        if (v->kind[i] == VOCAB_KIND_CODE || v->kind[i] == VOCAB_KIND_UNK) {
            const char *s = vocab_token_str(v, i);
            int k = vocab_slot_of_namespace(v, s, timeline_code_namespace(s));
            v->slot_of[i] = (int8_t)k;
        }
    }
    return CF_OK;
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

/* What the steps of vocab_build share. Owned buffers are freed once, in vocab_build. */
typedef struct {
    const store *s;
    const vocab_options *o;
    uint64_t C;                  /* store codes */
    uint64_t *cnt, *static_cnt;  /* train events per code; those without a time */
    uint64_t *num_cnt, *num_off; /* finite train values per code; their offset in values */
    uint8_t *is_train;           /* per subject: decided once, so both passes agree */
    store_cursor *cur;
    int64_t birth_code, tmin, tmax;
    uint64_t train_subjects, train_events;
    cand *cands;
    size_t n_cand;
    int32_t *code_cand;   /* store code -> candidate (whole codes only) */
    int32_t *tok_of_cand; /* candidate -> token, -1 when not chosen */
    ns_ent *nss;          /* namespaces, sorted */
    strmap cm, nsm, gen;  /* candidates, namespaces, generated token names */
    const char *slot_ns[VOCAB_MAX_SLOTS];
    size_t slot_len[VOCAB_MAX_SLOTS];
    uint32_t n_slots;
    int32_t year_base;
    uint32_t n_year_bins;
    uint32_t first_unk; /* token of the first namespace's [UNK] */
    float *values;
    draft d;
} build_ctx;

static int build_oom(cf_err *err) { return cf_fail(err, CF_EINTERNAL, "out of memory building the vocabulary"); }

/* Pass 1: counts over the train split only, read subject by subject through the store cursor. */
static int count_train(build_ctx *b, const split_config *sp, cf_err *err) {
    const store *s = b->s;
    b->birth_code = store_find_code(s, "MEDS_BIRTH");
    b->tmin = INT64_MAX;
    b->tmax = INT64_MIN;
    b->is_train = malloc(s->n_subjects + 1);
    if (!b->is_train) return build_oom(err);
    for (uint64_t k = 0; k < s->n_subjects; k++) b->is_train[k] = split_assign(sp, s->subject_id[k]) == SPLIT_TRAIN;
    int rc = store_cursor_new(&b->cur, s, STORE_CURSOR_READAHEAD, err);
    if (rc) return rc;
    for (uint64_t k = 0; k < s->n_subjects; k++) {
        if (!b->is_train[k]) continue;
        b->train_subjects++;
        store_events ev;
        if ((rc = store_cursor_subject(b->cur, k, &ev, err))) return rc;
        for (uint64_t i = 0; i < ev.n; i++) {
            uint32_t c = ev.code[i];
            int64_t t = ev.time[i];
            b->cnt[c]++;
            b->train_events++;
            if (t == TIME_NULL) b->static_cnt[c]++;
            else if ((int64_t)c != b->birth_code) {
                if (t < b->tmin) b->tmin = t;
                if (t > b->tmax) b->tmax = t;
            }
            if (isfinite(ev.numeric[i])) b->num_cnt[c]++;
        }
    }
    if (!b->train_subjects)
        return cf_fail(err, CF_EINPUT, "the train split of this store is empty; nothing to fit a vocabulary on");
    return CF_OK;
}

/* The calendar-year bins covering the timeline events in train. */
static int year_range(build_ctx *b, cf_err *err) {
    if (b->tmin > b->tmax) return CF_OK;
    int64_t y0 = year_of(b->tmin), y1 = year_of(b->tmax);
    int64_t base = floor_div(y0, VOCAB_YEAR_BIN_YEARS) * VOCAB_YEAR_BIN_YEARS;
    int64_t nb = (y1 - base) / VOCAB_YEAR_BIN_YEARS + 1;
    if (nb > VOCAB_MAX_YEAR_BINS)
        return cf_fail(err, CF_EINPUT, "train events span more than %d years; the store's times look wrong",
                       VOCAB_MAX_YEAR_BINS * VOCAB_YEAR_BIN_YEARS);
    b->year_base = (int32_t)base;
    b->n_year_bins = (uint32_t)nb;
    return CF_OK;
}

/* The namespaces in string order, for the unknown tokens. */
static int sort_namespaces(build_ctx *b, cf_err *err) {
    b->nss = malloc((b->nsm.count + 1) * sizeof *b->nss);
    if (!b->nss) return build_oom(err);
    for (uint32_t i = 0; i < b->nsm.count; i++) {
        size_t l;
        b->nss[i].s = strmap_str(&b->nsm, i, &l);
        b->nss[i].len = (uint32_t)l;
        b->nss[i].id = i;
    }
    qsort(b->nss, b->nsm.count, sizeof *b->nss, cmp_ns);
    return CF_OK;
}

/* A generated token, also remembered by name so no code token can take it. */
static int add_generated(build_ctx *b, int kind, const char *str, int64_t a0, int64_t a1) {
    if (draft_add(&b->d, kind, str, strlen(str), a0, a1, 0)) return -1;
    return strmap_intern(&b->gen, str, strlen(str)) < 0 ? -1 : 0;
}

/* The generated tokens, in canonical order: special, quantile, gap, age, year, then the
 * per-namespace [UNK] and per-slot [NONE] tokens. */
static int add_generated_tokens(build_ctx *b, cf_err *err) {
    char buf[1024];
    for (int k = 0; k < VOCAB_N_SPECIAL; k++)
        if (add_generated(b, VOCAB_KIND_SPECIAL, special_names[k], k, 0)) goto oom;
    for (int k = 1; k <= VOCAB_N_QUANTILES; k++) {
        snprintf(buf, sizeof buf, "[Q%d]", k);
        if (add_generated(b, VOCAB_KIND_QUANTILE, buf, k, 0)) goto oom;
    }
    for (int k = 0; k < VOCAB_N_GAPS; k++) {
        snprintf(buf, sizeof buf, "[GAP %s]", gap_labels[k]);
        int64_t hi = k + 1 < VOCAB_N_GAPS ? gap_edges[k + 1] : gap_edges[k];
        if (add_generated(b, VOCAB_KIND_GAP, buf, gap_edges[k], hi)) goto oom;
    }
    for (int k = 0; k < VOCAB_N_AGE_BINS; k++) {
        int lo = k * VOCAB_AGE_BIN_YEARS;
        if (k == VOCAB_N_AGE_BINS - 1) snprintf(buf, sizeof buf, "[AGE %d+]", lo);
        else snprintf(buf, sizeof buf, "[AGE %d-%d]", lo, lo + VOCAB_AGE_BIN_YEARS - 1);
        int64_t hi = k == VOCAB_N_AGE_BINS - 1 ? INT64_MAX : lo + VOCAB_AGE_BIN_YEARS - 1;
        if (add_generated(b, VOCAB_KIND_AGE, buf, lo, hi)) goto oom;
    }
    if (add_generated(b, VOCAB_KIND_AGE, "[AGE ?]", -1, -1)) goto oom;
    if (add_generated(b, VOCAB_KIND_YEAR, "[YEAR ?]", -1, -1)) goto oom;
    for (uint32_t k = 0; k < b->n_year_bins; k++) {
        int64_t lo = (int64_t)b->year_base + (int64_t)k * VOCAB_YEAR_BIN_YEARS;
        snprintf(buf, sizeof buf, "[YEAR %lld-%lld]", (long long)lo, (long long)(lo + VOCAB_YEAR_BIN_YEARS - 1));
        if (add_generated(b, VOCAB_KIND_YEAR, buf, lo, lo + VOCAB_YEAR_BIN_YEARS - 1)) goto oom;
    }
    b->first_unk = b->d.v.n_tokens;
    for (uint32_t i = 0; i < b->nsm.count; i++) {
        if (b->nss[i].len > sizeof buf - 16) goto toolong;
        snprintf(buf, sizeof buf, "%.*s//[UNK]", (int)b->nss[i].len, b->nss[i].s);
        if (add_generated(b, VOCAB_KIND_UNK, buf, 0, 0)) goto oom;
    }
    for (uint32_t k = 0; k < b->n_slots; k++) {
        if (b->slot_len[k] > sizeof buf - 16) goto toolong;
        snprintf(buf, sizeof buf, "%.*s//[NONE]", (int)b->slot_len[k], b->slot_ns[k]);
        if (add_generated(b, VOCAB_KIND_NONE, buf, k, 0)) goto oom;
    }
    return CF_OK;
toolong:
    return cf_fail(err, CF_EINPUT, "a code namespace is longer than %zu bytes", sizeof buf - 16);
oom:
    return build_oom(err);
}

/* Choose the code tokens: frequent enough, not colliding with a generated name, and within the
 * size cap (most frequent first). Leaves the candidates in string order, code_cand pointing at
 * their positions, and the [UNK] tokens counting the train events of the codes left out. */
static int choose_codes(build_ctx *b, cf_err *err) {
    cand *cands = b->cands;
    size_t n_cand = b->n_cand;
    for (size_t i = 0; i < n_cand; i++)
        cands[i].chosen = cands[i].count >= b->o->min_count && strmap_find(&b->gen, cands[i].str, cands[i].len) < 0;
    uint32_t fixed = b->d.v.n_tokens;
    qsort(cands, n_cand, sizeof *cands, cmp_cand_freq);
    if (b->o->max_vocab) {
        if (fixed >= b->o->max_vocab)
            return cf_fail(err, CF_EINPUT, "--max-vocab %u leaves no room for code tokens (%u tokens are fixed)",
                           b->o->max_vocab, fixed);
        size_t room = b->o->max_vocab - fixed, kept = 0;
        for (size_t i = 0; i < n_cand; i++)
            if (cands[i].chosen && ++kept > room) cands[i].chosen = 0;
    }
    qsort(cands, n_cand, sizeof *cands, cmp_cand_str);
    /* code_cand pointed at candidate ids; map ids to positions after the sort. */
    int32_t *pos_of = malloc((n_cand + 1) * sizeof *pos_of);
    if (!pos_of) return build_oom(err);
    for (size_t i = 0; i < n_cand; i++) pos_of[cands[i].id] = (int32_t)i;
    for (uint64_t c = 0; c < b->C; c++)
        if (b->code_cand[c] >= 0) b->code_cand[c] = pos_of[b->code_cand[c]];
    free(pos_of);
    /* Unknown tokens count the train events they stand for. */
    uint32_t *unk_of_ns = malloc((b->nsm.count + 1) * sizeof *unk_of_ns);
    if (!unk_of_ns) return build_oom(err);
    for (uint32_t u = 0; u < b->nsm.count; u++) unk_of_ns[b->nss[u].id] = b->first_unk + u;
    for (size_t i = 0; i < n_cand; i++)
        if (!cands[i].chosen)
            b->d.v.count[cands[i].ns == UINT32_MAX ? VOCAB_SP_UNK : unk_of_ns[cands[i].ns]] += cands[i].count;
    free(unk_of_ns);
    return CF_OK;
}

/* The chosen code tokens, after the generated ones, in string order. */
static int add_code_tokens(build_ctx *b, cf_err *err) {
    b->tok_of_cand = malloc((b->n_cand + 1) * sizeof *b->tok_of_cand);
    if (!b->tok_of_cand) return build_oom(err);
    for (size_t i = 0; i < b->n_cand; i++) {
        const cand *ca = &b->cands[i];
        b->tok_of_cand[i] = -1;
        if (!ca->chosen) continue;
        b->tok_of_cand[i] = (int32_t)b->d.v.n_tokens;
        int kind = ca->whole ? VOCAB_KIND_CODE : VOCAB_KIND_PART;
        if (draft_add(&b->d, kind, ca->str, ca->len, kind == VOCAB_KIND_PART ? ca->part_pos : 0, 0, ca->count))
            return build_oom(err);
    }
    return CF_OK;
}

/* Pass 2: the numeric values of whole-code tokens with enough of them, then their decile cuts. */
static int fit_value_cuts(build_ctx *b, cf_err *err) {
    uint64_t C = b->C, *num_cnt = b->num_cnt;
    b->num_off = calloc(C + 1, sizeof *b->num_off);
    if (!b->num_off) return build_oom(err);
    uint64_t total = 0;
    for (uint64_t c = 0; c < C; c++) {
        b->num_off[c] = total;
        if (b->code_cand[c] >= 0 && b->tok_of_cand[b->code_cand[c]] >= 0 && num_cnt[c] >= b->o->min_numeric &&
            num_cnt[c] > 0)
            total += num_cnt[c];
        else
            num_cnt[c] = 0; /* no cut points for this code */
    }
    b->values = malloc((total + 1) * sizeof *b->values);
    if (!b->values) return build_oom(err);
    uint64_t *fill = b->static_cnt; /* reuse: static counts are no longer needed */
    memset(fill, 0, (C + 1) * sizeof *fill);
    for (uint64_t k = 0; k < b->s->n_subjects && total; k++) {
        if (!b->is_train[k]) continue;
        store_events ev;
        int rc = store_cursor_subject(b->cur, k, &ev, err);
        if (rc) return rc;
        for (uint64_t i = 0; i < ev.n; i++) {
            uint32_t c = ev.code[i];
            if (num_cnt[c] && isfinite(ev.numeric[i])) b->values[b->num_off[c] + fill[c]++] = ev.numeric[i];
        }
    }
    uint32_t n_sets = 0;
    for (uint64_t c = 0; c < C; c++) n_sets += fill[c] > 0;
    vocab *v = &b->d.v;
    v->cuts = malloc(((size_t)n_sets * VOCAB_N_CUTS + 1) * sizeof *v->cuts);
    if (!v->cuts) return build_oom(err);
    for (uint64_t c = 0; c < C; c++) {
        if (!fill[c]) continue;
        uint32_t t = (uint32_t)b->tok_of_cand[b->code_cand[c]];
        v->cut_set[t] = v->n_cut_sets;
        vocab_fit_cuts(b->values + b->num_off[c], fill[c], v->cuts + (size_t)v->n_cut_sets * VOCAB_N_CUTS);
        v->n_cut_sets++;
    }
    return CF_OK;
}

/* The header fields: the options, split and train totals the vocabulary was built from. */
static void set_header(build_ctx *b, const split_config *sp) {
    vocab *v = &b->d.v;
    const vocab_options *o = b->o;
    v->flags = o->split_codes ? VOCAB_FLAG_SPLIT_CODES : 0;
    v->ruleset = TIMELINE_RULESET;
    v->min_count = o->min_count;
    v->min_numeric = o->min_numeric;
    v->max_vocab = o->max_vocab;
    v->value_mode = (uint32_t)o->value_mode;
    v->year_base = b->year_base;
    v->n_year_bins = b->n_year_bins;
    v->split_train_ppm = sp->train_ppm;
    v->split_tuning_ppm = sp->tuning_ppm;
    v->split_rotate_ppm = sp->rotate_ppm;
    split_key_id(sp, v->split_key_id);
    v->train_subjects = b->train_subjects;
    v->train_events = b->train_events;
}

int vocab_build(vocab *out, const store *s, const split_config *sp, const vocab_options *o, cf_err *err) {
    memset(out, 0, sizeof *out);
    build_ctx b;
    memset(&b, 0, sizeof b);
    b.s = s;
    b.o = o;
    b.C = s->n_codes;
    strmap_init(&b.cm);
    strmap_init(&b.nsm);
    strmap_init(&b.gen);
    uint8_t *img = NULL;
    size_t img_len = 0;
    int rc;
    b.cnt = calloc(b.C + 1, sizeof *b.cnt);
    b.static_cnt = calloc(b.C + 1, sizeof *b.static_cnt);
    b.num_cnt = calloc(b.C + 1, sizeof *b.num_cnt);
    b.code_cand = malloc((b.C + 1) * sizeof *b.code_cand);
    if (!b.cnt || !b.static_cnt || !b.num_cnt || !b.code_cand) {
        rc = build_oom(err);
        goto done;
    }
    if ((rc = count_train(&b, sp, err))) goto done;
    /* Candidates: the strings the encoder would emit for each code seen in train. */
    if (collect_candidates(s, o, b.cnt, &b.cm, &b.nsm, &b.cands, &b.n_cand, b.code_cand)) {
        rc = build_oom(err);
        goto done;
    }
    if ((rc = static_slots(s, o, &b.nsm, b.static_cnt, b.birth_code, b.slot_ns, b.slot_len, &b.n_slots, err)) ||
        (rc = year_range(&b, err)) || (rc = sort_namespaces(&b, err)) || (rc = add_generated_tokens(&b, err)) ||
        (rc = choose_codes(&b, err)) || (rc = add_code_tokens(&b, err)) || (rc = fit_value_cuts(&b, err)))
        goto done;
    set_header(&b, sp);
    if ((rc = vocab_serialize(&b.d.v, &img, &img_len, err))) goto done;
    rc = vocab_parse(out, img, img_len, "new vocabulary", err);
    if (rc) rc = CF_EINTERNAL; /* a vocabulary we built must parse */
done:
    store_cursor_free(b.cur);
    free(img);
    vocab_free(&b.d.v);
    CF_FREE_ALL(b.cnt, b.static_cnt, b.num_cnt, b.num_off, b.code_cand, b.tok_of_cand, b.values, b.cands, b.nss,
                b.is_train);
    strmap_free(&b.cm);
    strmap_free(&b.nsm);
    strmap_free(&b.gen);
    return rc;
}
