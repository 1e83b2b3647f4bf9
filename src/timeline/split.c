/* Keyed-hash subject splits; see split.h. */
#include "timeline/split.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

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

int split_assign(const split_config *c, int64_t subject_id) {
    unsigned char in[8], h[8];
    uint64_t u = (uint64_t)subject_id;
    for (int i = 0; i < 8; i++) in[i] = (unsigned char)(u >> (8 * i));
    crypto_generichash(h, sizeof h, in, sizeof in, c->key, sizeof c->key);
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | h[i];
    /* The modulo bias (2^64 mod 1e6 over 2^64) is below 1e-13: irrelevant. */
    uint32_t bucket = (uint32_t)(v % SPLIT_PPM);
    if (bucket < c->train_ppm) return SPLIT_TRAIN;
    if (bucket < c->train_ppm + c->tuning_ppm) return SPLIT_TUNING;
    return SPLIT_HELD_OUT;
}

void split_key_id(const split_config *c, uint8_t id[SPLIT_KEY_ID_BYTES]) {
    static const char msg[] = "clinfm split key id v1";
    crypto_generichash(id, SPLIT_KEY_ID_BYTES, (const unsigned char *)msg, sizeof msg - 1, c->key,
                       sizeof c->key);
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
