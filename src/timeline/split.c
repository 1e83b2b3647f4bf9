/* Keyed-hash subject splits; see split.h. */
#include "timeline/split.h"

#include <stdio.h>
#include <stdlib.h>
#include <math.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <sodium.h>

#include "util/le.h"

void split_config_default(split_config *c) {
    static const char seed[] = "clinfm default split key v1";
    memset(c, 0, sizeof *c);
    /* crypto_generichash works before sodium_init too; init only picks faster code. */
    if (sodium_init() < 0) c->default_key = 1;
    crypto_generichash(c->key, sizeof c->key, (const unsigned char *)seed, sizeof seed - 1, NULL, 0);
    c->train_ppm = 800000;
    c->tuning_ppm = 100000;
    c->default_key = 1;
}

static int hexval(int ch) {
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

int split_load_key(split_config *c, const char *path, cf_err *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return cf_fail_errno(err, CF_EINPUT, "%s: cannot open split key file", path);
    unsigned char buf[80];
    size_t n = fread(buf, 1, sizeof buf, f);
    int rd_err = ferror(f);
    fclose(f);
    if (rd_err) return cf_fail(err, CF_EINPUT, "%s: cannot read split key file", path);
    uint8_t key[SPLIT_KEY_BYTES];
    if (n == SPLIT_KEY_BYTES) {
        memcpy(key, buf, sizeof key);
    } else {
        /* Text form: 64 hex digits, one optional line end. */
        size_t len = n;
        if (len && buf[len - 1] == '\n') len--;
        if (len && buf[len - 1] == '\r') len--;
        if (len != 2 * SPLIT_KEY_BYTES)
            return cf_fail(err, CF_EINPUT, "%s: a split key file holds exactly 32 bytes or 64 hex digits",
                           path);
        for (size_t i = 0; i < SPLIT_KEY_BYTES; i++) {
            int hi = hexval(buf[2 * i]), lo = hexval(buf[2 * i + 1]);
            if (hi < 0 || lo < 0)
                return cf_fail(err, CF_EINPUT, "%s: character %zu of the split key is not a hex digit", path,
                               2 * i + (hi < 0 ? 1 : 2));
            key[i] = (uint8_t)(hi << 4 | lo);
        }
    }
    memcpy(c->key, key, sizeof key);
    sodium_memzero(key, sizeof key);
    sodium_memzero(buf, sizeof buf);
    c->default_key = 0;
    return CF_OK;
}

/* Parses a percentage with up to 4 decimals into parts per million, exactly (no float). */
static int parse_percent(const char *s, const char **end, uint32_t *ppm) {
    uint64_t whole = 0, frac = 0;
    int digits = 0, fdigits = 0;
    while (*s >= '0' && *s <= '9') {
        whole = whole * 10 + (uint64_t)(*s++ - '0');
        if (++digits > 3) return -1;
    }
    if (*s == '.') {
        s++;
        while (*s >= '0' && *s <= '9') {
            if (fdigits == 4) return -1;
            frac = frac * 10 + (uint64_t)(*s++ - '0');
            fdigits++;
        }
    }
    if (!digits && !fdigits) return -1;
    while (fdigits < 4) frac *= 10, fdigits++;
    uint64_t v = whole * 10000 + frac;
    if (v > SPLIT_PPM) return -1;
    *ppm = (uint32_t)v;
    *end = s;
    return 0;
}

int split_parse_fractions(split_config *c, const char *text, cf_err *err) {
    uint32_t v[3];
    const char *s = text;
    for (int i = 0; i < 3; i++) {
        if (parse_percent(s, &s, &v[i]))
            return cf_fail(err, CF_EINPUT, "--split expects three percentages TRAIN/TUNING/HELD_OUT such as 80/10/10");
        if (i < 2 && *s++ != '/')
            return cf_fail(err, CF_EINPUT, "--split expects three percentages TRAIN/TUNING/HELD_OUT such as 80/10/10");
    }
    if (*s) return cf_fail(err, CF_EINPUT, "--split expects three percentages TRAIN/TUNING/HELD_OUT such as 80/10/10");
    if ((uint64_t)v[0] + v[1] + v[2] != SPLIT_PPM)
        return cf_fail(err, CF_EINPUT, "--split percentages must add up to 100");
    if (v[0] == 0) return cf_fail(err, CF_EINPUT, "--split needs a non-empty train share");
    c->train_ppm = v[0];
    c->tuning_ppm = v[1];
    return CF_OK;
}

/* BLAKE2b-64 of msg keyed with the split key, read little-endian. */
static uint64_t keyed64(const split_config *c, const unsigned char *msg, size_t n) {
    unsigned char h[8];
    crypto_generichash(h, sizeof h, msg, n, c->key, sizeof c->key);
    return le_get64(h);
}

uint32_t split_bucket(const split_config *c, int64_t subject_id) {
    unsigned char in[8];
    le_put64(in, (uint64_t)subject_id);
    /* The modulo bias (2^64 mod 1e6 over 2^64) is below 1e-13: irrelevant. */
    return (uint32_t)(keyed64(c, in, sizeof in) % SPLIT_PPM);
}

uint64_t split_subject_hash(const split_config *c, int64_t subject_id) {
    /* A domain prefix keeps this hash unrelated to the bucket's. */
    unsigned char in[16] = "subject:";
    le_put64(in + 8, (uint64_t)subject_id);
    return keyed64(c, in, sizeof in);
}

int split_assign(const split_config *c, int64_t subject_id) {
    uint32_t bucket = (uint32_t)(((uint64_t)split_bucket(c, subject_id) + c->rotate_ppm) % SPLIT_PPM);
    if (bucket < c->train_ppm) return SPLIT_TRAIN;
    if (bucket < c->train_ppm + c->tuning_ppm) return SPLIT_TUNING;
    return SPLIT_HELD_OUT;
}

int split_set_fold(split_config *c, int fold, int folds, cf_err *err) {
    if (folds < 2 || folds > 100 || 100 % folds != 0 || fold < 0 || fold >= folds)
        return cf_fail(err, CF_EINPUT, "--fold J/K: K must divide 100 (2, 4, 5, 10, 20, ...) and J be 0 .. K-1");
    uint32_t held = SPLIT_PPM / (uint32_t)folds;
    if ((uint64_t)c->tuning_ppm + held >= SPLIT_PPM)
        return cf_fail(err, CF_EINPUT, "--fold %d/%d: the tuning share and one fold leave nothing to train on; give a "
                       "smaller tuning share with --split", fold, folds);
    c->train_ppm = SPLIT_PPM - held - c->tuning_ppm;
    /* position p becomes p + rotate: fold j, [j, j+1)/K, lands on [1 - 1/K, 1), the held-out end */
    c->rotate_ppm = (uint32_t)(((uint64_t)SPLIT_PPM * 2 - (uint64_t)(fold + 1) * held) % SPLIT_PPM);
    c->fold = fold;
    c->folds = folds;
    return CF_OK;
}

int split_parse_fold(split_config *c, const char *text, cf_err *err) {
    char *end;
    long j = strtol(text, &end, 10);
    if (end == text || *end != '/') return cf_fail(err, CF_EINPUT, "--fold expects J/K, such as 0/5");
    const char *k0 = end + 1;
    long k = strtol(k0, &end, 10);
    if (end == k0 || *end) return cf_fail(err, CF_EINPUT, "--fold expects J/K, such as 0/5");
    if (j < 0 || k < 2 || k > 100 || j >= k) return split_set_fold(c, -1, 0, err);
    return split_set_fold(c, (int)j, (int)k, err);
}

void split_key_id(const split_config *c, uint8_t id[SPLIT_KEY_ID_BYTES]) {
    static const char msg[] = "clinfm split key id v1";
    crypto_generichash(id, SPLIT_KEY_ID_BYTES, (const unsigned char *)msg, sizeof msg - 1, c->key,
                       sizeof c->key);
}

cJSON *split_config_json(const split_config *c, unsigned flags) {
    uint8_t id[SPLIT_KEY_ID_BYTES];
    char hex[2 * SPLIT_KEY_ID_BYTES + 1];
    split_key_id(c, id);
    sodium_bin2hex(hex, sizeof hex, id, sizeof id);
    cJSON *j = cJSON_CreateObject();
    if (!j) return NULL;
    cJSON_AddStringToObject(j, "key_id", hex);
    if (flags & SPLIT_JSON_DEFAULT_KEY) cJSON_AddBoolToObject(j, "default_key", c->default_key);
    cJSON_AddNumberToObject(j, "train_ppm", c->train_ppm);
    cJSON_AddNumberToObject(j, "tuning_ppm", c->tuning_ppm);
    if (c->folds || (flags & SPLIT_JSON_FOLDS_ALWAYS)) {
        /* cross-validation: held_out is fold `fold` of `folds` (positions rotated by rotate_ppm) */
        cJSON_AddNumberToObject(j, "rotate_ppm", c->rotate_ppm);
        cJSON_AddNumberToObject(j, "fold", c->fold);
        cJSON_AddNumberToObject(j, "folds", c->folds);
    }
    return j;
}

const char *split_name(int part) {
    switch (part) {
    case SPLIT_TRAIN: return "train";
    case SPLIT_TUNING: return "tuning";
    case SPLIT_HELD_OUT: return "held_out";
    default: return "?";
    }
}

int split_from_name(const char *s) {
    for (int i = 0; i < SPLIT_COUNT; i++)
        if (!strcmp(s, split_name(i))) return i;
    return -1;
}

/* ---------------------------------------------------------------- record prints */

int split_printer_init(split_printer *p, const store *s, cf_err *err) {
    memset(p, 0, sizeof *p);
    p->s = s;
    size_t n = s->n_codes ? s->n_codes : 1;
    p->code_hash = malloc(n * sizeof *p->code_hash);
    p->skip = calloc(n, 1);
    if (!p->code_hash || !p->skip) {
        split_printer_free(p);
        return cf_fail(err, CF_EINTERNAL, "out of memory");
    }
    for (uint64_t k = 0; k < s->n_codes; k++) {
        const char *code = store_code_str(s, (uint32_t)k);
        unsigned char h[8];
        crypto_generichash(h, sizeof h, (const unsigned char *)code, strlen(code), NULL, 0);
        uint64_t v = 0;
        for (int i = 7; i >= 0; i--) v = v << 8 | h[i];
        p->code_hash[k] = v;
        /* What de-identification removes or moves: identifier events and the birth date (ages
         * over 89 are capped). ZIP3 and STATE facts it adds are static, so never in a print. */
        p->skip[k] = !strncmp(code, "PHI//", 5) || !strcmp(code, "MEDS_BIRTH");
    }
    return CF_OK;
}

void split_printer_free(split_printer *p) {
    free(p->code_hash);
    free(p->skip);
    memset(p, 0, sizeof *p);
}

typedef struct {
    int64_t dt;
    uint64_t code;
    uint32_t value;
} print_item;

static int cmp_item(const void *pa, const void *pb) {
    const print_item *a = pa, *b = pb;
    if (a->dt != b->dt) return a->dt < b->dt ? -1 : 1;
    if (a->code != b->code) return a->code < b->code ? -1 : 1;
    return (a->value > b->value) - (a->value < b->value);
}

int split_record_hash(const split_printer *p, const split_config *c, uint64_t si, uint64_t *out) {
    const store *s = p->s;
    /* Events of one time keep together, so the print may run past SPLIT_PRINT_EVENTS by the rest
     * of the last time's events: bounded here, beyond which a record gets no print. */
    enum { CAP = 4 * SPLIT_PRINT_EVENTS };
    print_item it[CAP];
    size_t n = 0;
    int times = 0;
    int64_t t0 = 0, last = 0;
    for (uint64_t e = s->subject_start[si]; e < s->subject_start[si + 1]; e++) {
        int64_t t = s->time[e];
        if (t == TIME_NULL || p->skip[s->code[e]]) continue;
        if (!n) t0 = t;
        if (!n || t != last) {
            if (n >= SPLIT_PRINT_EVENTS) break;
            times++;
            last = t;
        }
        if (n == CAP) return 0;
        uint32_t bits;
        float v = s->numeric[e];
        if (isnan(v)) v = NAN; /* one NaN */
        memcpy(&bits, &v, sizeof bits);
        it[n++] = (print_item){.dt = t - t0, .code = p->code_hash[s->code[e]], .value = bits};
    }
    if (n < SPLIT_PRINT_MIN_EVENTS || times < SPLIT_PRINT_MIN_TIMES) return 0;
    /* The order of events at one time follows their source rows, which de-identification drops. */
    qsort(it, n, sizeof *it, cmp_item);
    unsigned char buf[16 + CAP * 20];
    size_t len = 0;
    memcpy(buf, "record:", 8);
    len = 8;
    le_put64(buf + len, (uint64_t)n);
    len += 8;
    for (size_t i = 0; i < n; i++) {
        le_put64(buf + len, (uint64_t)it[i].dt);
        le_put64(buf + len + 8, it[i].code);
        le_put32(buf + len + 16, it[i].value);
        len += 20;
    }
    *out = keyed64(c, buf, len);
    return 1;
}
