/* One preparation of a model's data from a store: vocabulary, shards and baselines, recorded so
 * that the next run reuses them; see prepare.h. */
#include "timeline/prepare.h"

#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <sodium.h>

#include "util/atomic_file.h"
#include "util/file.h"

#define STORE_HEADER_BLOCK 4096 /* the store's header block (store/store.h) */
#define SHARD_HEADER_BYTES 256  /* a token shard's header (timeline.h) */

void timeline_prepare_options_default(timeline_prepare_options *o) {
    memset(o, 0, sizeof *o);
    vocab_options_default(&o->vo);
    o->reuse = 1;
    o->room_check = 1;
}

void timeline_store_fingerprint(const store *s, char hex[65]) {
    unsigned char h[32];
    size_t n = s->map_len < STORE_HEADER_BLOCK ? s->map_len : STORE_HEADER_BLOCK;
    crypto_generichash(h, sizeof h, s->map, n, NULL, 0);
    sodium_bin2hex(hex, 65, h, sizeof h);
}

/* Hex BLAKE2b-256 of a shard file's header and the file's size; 0 when it cannot be read. */
static int shard_fingerprint(const char *path, char hex[65], double *bytes) {
    struct stat st;
    unsigned char hdr[SHARD_HEADER_BYTES], h[32];
    if (stat(path, &st) != 0 || st.st_size < SHARD_HEADER_BYTES) return 0;
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    size_t n = fread(hdr, 1, sizeof hdr, f);
    fclose(f);
    if (n != sizeof hdr) return 0;
    crypto_generichash(h, sizeof h, hdr, sizeof hdr, NULL, 0);
    sodium_bin2hex(hex, 65, h, sizeof h);
    *bytes = (double)st.st_size;
    return 1;
}

/* What a preparation is made from: equal inputs make equal outputs. given: the hash of a
 * given vocabulary, or NULL when one is fitted with o->vo. */
static cJSON *inputs_json(const store *s, const split_config *sp, const timeline_prepare_options *o,
                          const char *given) {
    char hex[65];
    cJSON *in = cJSON_CreateObject();
    cJSON_AddNumberToObject(in, "format", TIMELINE_PREPARED_FORMAT);
    cJSON_AddNumberToObject(in, "vocab_format", VOCAB_FORMAT_VERSION);
    cJSON_AddNumberToObject(in, "shard_format", TIMELINE_SHARD_VERSION);
    cJSON *st = cJSON_AddObjectToObject(in, "store");
    timeline_store_fingerprint(s, hex);
    cJSON_AddStringToObject(st, "header_blake2b256", hex);
    cJSON_AddNumberToObject(st, "events", (double)s->n_events);
    cJSON_AddNumberToObject(st, "subjects", (double)s->n_subjects);
    cJSON_AddItemToObject(in, "split", split_config_json(sp, SPLIT_JSON_FOLDS_ALWAYS));
    cJSON *vj = cJSON_AddObjectToObject(in, "vocab");
    if (given) {
        cJSON_AddStringToObject(vj, "given", given);
    } else {
        cJSON *f = cJSON_AddObjectToObject(vj, "fitted");
        cJSON_AddNumberToObject(f, "min_count", o->vo.min_count);
        cJSON_AddNumberToObject(f, "min_numeric", o->vo.min_numeric);
        cJSON_AddNumberToObject(f, "max_vocab", o->vo.max_vocab);
        cJSON_AddBoolToObject(f, "split_codes", o->vo.split_codes != 0);
        if (o->vo.static_ns) cJSON_AddStringToObject(f, "static", o->vo.static_ns);
        else cJSON_AddNullToObject(f, "static");
        cJSON_AddStringToObject(f, "values", o->vo.value_mode == VOCAB_VALUES_EMBED ? "embed" : "tokens");
    }
    return in;
}

static cJSON *u64_array(const uint64_t *x) {
    cJSON *a = cJSON_CreateArray();
    for (int p = 0; p < SPLIT_COUNT; p++) cJSON_AddItemToArray(a, cJSON_CreateNumber((double)x[p]));
    return a;
}

static cJSON *f64_array(const double *x) {
    cJSON *a = cJSON_CreateArray();
    for (int p = 0; p < SPLIT_COUNT; p++) cJSON_AddItemToArray(a, isnan(x[p]) ? cJSON_CreateNull() : cJSON_CreateNumber(x[p]));
    return a;
}

/* Reads a 3-array back; 0 when it is not one. A null is NaN. */
static int read_array(const cJSON *a, double out[SPLIT_COUNT]) {
    if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) != SPLIT_COUNT) return 0;
    for (int p = 0; p < SPLIT_COUNT; p++) {
        const cJSON *e = cJSON_GetArrayItem(a, p);
        if (cJSON_IsNull(e)) out[p] = NAN;
        else if (cJSON_IsNumber(e)) out[p] = e->valuedouble;
        else return 0;
    }
    return 1;
}

static cJSON *baseline_json(const timeline_baseline *b) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "train_subjects", (double)b->train_subjects);
    cJSON_AddNumberToObject(j, "train_tokens", (double)b->train_tokens);
    cJSON_AddItemToObject(j, "eval_subjects", u64_array(b->eval_subjects));
    cJSON_AddItemToObject(j, "eval_targets", u64_array(b->eval_targets));
    cJSON_AddItemToObject(j, "unigram", f64_array(b->unigram));
    cJSON_AddItemToObject(j, "bigram", f64_array(b->bigram));
    cJSON_AddItemToObject(j, "tokens_total", u64_array(b->tokens_total));
    cJSON_AddItemToObject(j, "tokens_max", u64_array(b->tokens_max));
    cJSON_AddItemToObject(j, "tokens_median", u64_array(b->tokens_median));
    return j;
}

static int baseline_read(const cJSON *j, timeline_baseline *b) {
    if (!cJSON_IsObject(j)) return 0;
    const cJSON *ts = cJSON_GetObjectItem(j, "train_subjects"), *tt = cJSON_GetObjectItem(j, "train_tokens");
    if (!cJSON_IsNumber(ts) || !cJSON_IsNumber(tt)) return 0;
    b->train_subjects = (uint64_t)ts->valuedouble;
    b->train_tokens = (uint64_t)tt->valuedouble;
    double x[SPLIT_COUNT];
#define U64S(name)                                                                                                    \
    if (!read_array(cJSON_GetObjectItem(j, #name), x)) return 0;                                                      \
    for (int p = 0; p < SPLIT_COUNT; p++) b->name[p] = (uint64_t)x[p];
    U64S(eval_subjects) U64S(eval_targets) U64S(tokens_total) U64S(tokens_max) U64S(tokens_median)
#undef U64S
    if (!read_array(cJSON_GetObjectItem(j, "unigram"), b->unigram)) return 0;
    if (!read_array(cJSON_GetObjectItem(j, "bigram"), b->bigram)) return 0;
    return 1;
}

static void record_path(const char *dir, const char *name, char *buf, size_t cap) { snprintf(buf, cap, "%s/%s", dir, name); }


/* Tries to reuse the preparation recorded in o->shard_dir. Returns CF_OK with out->reused set
 * when it could (then *v is loaded), CF_OK with out->reused 0 and out->note saying why not,
 * or an error (reading a given vocabulary failed). */
static int try_reuse(vocab *v, const store *s, const split_config *sp, const timeline_prepare_options *o,
                     timeline_prepared *out, cf_err *err) {
    char path[4400], hex[65];
    int rc = CF_OK, have_v = 0;
    char *text = NULL;
    size_t len = 0;
    cJSON *rec = NULL, *want = NULL;
    cf_err ignored = {0};
    record_path(o->shard_dir, TIMELINE_PREPARED_FILE, path, sizeof path);
    if (access(path, F_OK) != 0) return CF_OK; /* never prepared here: nothing to say */
#define NOTE(...) (void)snprintf(out->note, sizeof out->note, __VA_ARGS__)
    if (file_read_all(path, (size_t)1 << 24, &text, &len, &ignored) || !(rec = cJSON_ParseWithLength(text, len))) {
        NOTE("%s cannot be read", path);
        goto out;
    }
    /* The inputs: a given vocabulary is known by its hash. */
    if (o->vocab_in) {
        if ((rc = vocab_load(v, o->vocab_in, err))) goto out;
        have_v = 1;
        vocab_hash_hex(v, hex);
    }
    /* The record's inputs must match, except that a given vocabulary matches any preparation
     * made with that very vocabulary (a resumed run gives the one its first run fitted). */
    want = inputs_json(s, sp, o, o->vocab_in ? hex : NULL);
    const cJSON *got = cJSON_GetObjectItem(rec, "inputs");
    static const char *const parts[][2] = {{"format", "an older preparation format"},
                                           {"vocab_format", "an older vocabulary format"},
                                           {"shard_format", "another token shard format"},
                                           {"store", "another store (or this store rewritten)"},
                                           {"split", "another split (key, fractions or fold)"},
                                           {"vocab", "other vocabulary options"}};
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
        if (o->vocab_in && !strcmp(parts[i][0], "vocab")) continue;
        if (!cJSON_Compare(cJSON_GetObjectItem(want, parts[i][0]), cJSON_GetObjectItem(got, parts[i][0]), 1)) {
            NOTE("%s was prepared from %s", o->shard_dir, parts[i][1]);
            goto out;
        }
    }
    const cJSON *vh = cJSON_GetObjectItem(rec, "vocab_hash");
    if (!have_v) {
        record_path(o->shard_dir, TIMELINE_PREPARED_VOCAB, path, sizeof path);
        if (vocab_load(v, path, &ignored)) {
            NOTE("%s cannot be read", path);
            goto out;
        }
        have_v = 1;
        vocab_hash_hex(v, hex);
    }
    if (!cJSON_IsString(vh) || strcmp(vh->valuestring, hex)) {
        if (o->vocab_in) NOTE("%s was prepared with another vocabulary than %s", o->shard_dir, o->vocab_in);
        else NOTE("%s/%s does not match its record", o->shard_dir, TIMELINE_PREPARED_VOCAB);
        goto out;
    }
    const cJSON *shards = cJSON_GetObjectItem(rec, "shards");
    for (int p = 0; p < SPLIT_COUNT; p++) {
        const cJSON *e = cJSON_GetObjectItem(shards, split_name(p));
        const cJSON *eh = cJSON_GetObjectItem(e, "header_blake2b256"), *eb = cJSON_GetObjectItem(e, "bytes");
        const cJSON *es = cJSON_GetObjectItem(e, "subjects"), *et = cJSON_GetObjectItem(e, "tokens");
        const cJSON *em = cJSON_GetObjectItem(e, "max_tokens");
        double bytes;
        if (!shard_fingerprint(out->shard_path[p], hex, &bytes)) {
            NOTE("%s is missing or unreadable", out->shard_path[p]);
            goto out;
        }
        if (!cJSON_IsString(eh) || strcmp(eh->valuestring, hex) || !cJSON_IsNumber(eb) || eb->valuedouble != bytes ||
            !cJSON_IsNumber(es) || !cJSON_IsNumber(et) || !cJSON_IsNumber(em)) {
            NOTE("%s has changed since it was prepared", out->shard_path[p]);
            goto out;
        }
        out->stats[p].subjects = (uint64_t)es->valuedouble;
        out->stats[p].tokens = (uint64_t)et->valuedouble;
        out->stats[p].max_tokens = (uint64_t)em->valuedouble;
    }
    if (o->baselines && !baseline_read(cJSON_GetObjectItem(rec, "baselines"), &out->base)) {
        NOTE("%s was prepared without baselines", o->shard_dir);
        goto out;
    }
    if (o->vocab_out) {
        if (o->vocab_in) rc = atomic_copy_file(o->vocab_in, o->vocab_out, err);
        else {
            record_path(o->shard_dir, TIMELINE_PREPARED_VOCAB, path, sizeof path);
            rc = atomic_copy_file(path, o->vocab_out, err);
        }
        if (rc) goto out;
    }
    out->reused = 1;
#undef NOTE
out:
    if (have_v && !out->reused) vocab_free(v);
    cJSON_Delete(rec);
    cJSON_Delete(want);
    free(text);
    return rc;
}

/* Writes the record of a preparation just made (the last file written). */
static int write_record(const vocab *v, const store *s, const split_config *sp, const timeline_prepare_options *o,
                        const timeline_prepared *out, cf_err *err) {
    char hex[65], path[4400];
    vocab_hash_hex(v, hex);
    cJSON *rec = cJSON_CreateObject();
    cJSON_AddItemToObject(rec, "inputs", inputs_json(s, sp, o, o->vocab_in ? hex : NULL));
    cJSON_AddStringToObject(rec, "vocab_hash", hex);
    cJSON *shards = cJSON_AddObjectToObject(rec, "shards");
    for (int p = 0; p < SPLIT_COUNT; p++) {
        double bytes;
        if (!shard_fingerprint(out->shard_path[p], hex, &bytes)) {
            cJSON_Delete(rec);
            return cf_fail(err, CF_EINPUT, "%s: cannot read the shard just written", out->shard_path[p]);
        }
        cJSON *e = cJSON_AddObjectToObject(shards, split_name(p));
        cJSON_AddStringToObject(e, "header_blake2b256", hex);
        cJSON_AddNumberToObject(e, "bytes", bytes);
        cJSON_AddNumberToObject(e, "subjects", (double)out->stats[p].subjects);
        cJSON_AddNumberToObject(e, "tokens", (double)out->stats[p].tokens);
        cJSON_AddNumberToObject(e, "max_tokens", (double)out->stats[p].max_tokens);
    }
    if (o->baselines) cJSON_AddItemToObject(rec, "baselines", baseline_json(&out->base));
    char *text = cJSON_Print(rec);
    cJSON_Delete(rec);
    if (!text) return cf_fail(err, CF_EINTERNAL, "out of memory");
    record_path(o->shard_dir, TIMELINE_PREPARED_FILE, path, sizeof path);
    int rc = atomic_write_file(path, text, strlen(text), err);
    free(text);
    return rc;
}

/* The start of every preparation: out cleared, the shard folder made and named, and an earlier
 * preparation reused when it matches (reads the store's header and counts only). */
static int prepare_begin(vocab *v, const store *s, const split_config *sp, const timeline_prepare_options *o,
                         timeline_prepared *out, cf_err *err) {
    memset(out, 0, sizeof *out);
    for (int p = 0; p < SPLIT_COUNT; p++) out->base.unigram[p] = out->base.bigram[p] = NAN;
    if (!o->shard_dir) return CF_OK;
    if (mkdir(o->shard_dir, 0777) != 0 && errno != EEXIST)
        return cf_fail_errno(err, CF_EINPUT, "%s: cannot create the shard directory", o->shard_dir);
    for (int p = 0; p < SPLIT_COUNT; p++)
        snprintf(out->shard_path[p], sizeof out->shard_path[p], "%s/%s.tokens", o->shard_dir, split_name(p));
    return o->reuse ? try_reuse(v, s, sp, o, out, err) : CF_OK;
}

int timeline_prepare_reusable(vocab *v, const store *s, const split_config *sp, const timeline_prepare_options *o,
                              timeline_prepared *out, cf_err *err) {
    return prepare_begin(v, s, sp, o, out, err);
}

int timeline_prepare_build(vocab *v, const store *s, const split_config *sp, const timeline_prepare_options *o,
                           timeline_prepared *out, cf_err *err) {
    assert(!out->reused);
    int rc;
    /* Before any work (the vocabulary's pass included): room for the shards. */
    if (o->shard_dir && o->room_check &&
        (rc = file_room_up_front(out->shard_path[SPLIT_TRAIN], s->n_events * TIMELINE_SHARD_ROOM_PER_EVENT + ((uint64_t)1 << 20),
                                 "the token shard set", "--room-check off", o->room_say, err)))
        return rc;
    if (o->shard_dir) {
        /* A rebuild starts by forgetting the old record, so an interrupted one is never taken
         * for a finished preparation. */
        char path[4400];
        record_path(o->shard_dir, TIMELINE_PREPARED_FILE, path, sizeof path);
        if (unlink(path) != 0 && errno != ENOENT)
            return cf_fail_errno(err, CF_EINPUT, "%s: cannot remove the old preparation record", path);
    }
    if ((rc = o->vocab_in ? vocab_load(v, o->vocab_in, err) : vocab_build(v, s, sp, &o->vo, err))) return rc;
    if (!o->vocab_in && o->vocab_out && (rc = vocab_save(v, o->vocab_out, err))) goto fail;
    if (o->shard_dir) {
        char path[4400];
        record_path(o->shard_dir, TIMELINE_PREPARED_VOCAB, path, sizeof path);
        if (!o->vocab_in && (rc = vocab_save(v, path, err))) goto fail;
        for (int p = 0; p < SPLIT_COUNT; p++)
            if ((rc = timeline_write_shards(v, s, sp, p, out->shard_path[p], &out->stats[p], err))) goto fail;
    }
    if (o->baselines && (rc = timeline_ngram_baseline(v, s, sp, &out->base, err))) goto fail;
    if (o->shard_dir && (rc = write_record(v, s, sp, o, out, err))) goto fail;
    return CF_OK;
fail:
    vocab_free(v);
    return rc;
}

int timeline_prepare(vocab *v, const store *s, const split_config *sp, const timeline_prepare_options *o,
                     timeline_prepared *out, cf_err *err) {
    int rc = timeline_prepare_reusable(v, s, sp, o, out, err);
    if (rc || out->reused) return rc;
    return timeline_prepare_build(v, s, sp, o, out, err);
}
