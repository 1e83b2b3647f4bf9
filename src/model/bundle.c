/* The model bundle on disk: manifest, parts, checksums, the training split's fingerprint; see
 * bundle.h. */
#include "model/bundle.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <sodium.h>

#include "timeline/prepare.h"
#include "util/atomic_file.h"
#include "util/file.h"
#include "util/le.h"

#define MANIFEST "manifest.json"
#define MAX_MANIFEST ((size_t)64 << 20)
#define SS_MAGIC "CLINFMSS"

/* ---------------------------------------------------------------- small helpers */

static int is_dir(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static int is_file(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* Part names are relative paths of letters, digits and . _ - /, never "..": a manifest that
 * names anything else is refused rather than followed out of the directory. */
static int valid_part(const char *part) {
    if (!*part || *part == '/' || strstr(part, "..") || strstr(part, "//")) return 0;
    for (const char *p = part; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '.' ||
              *p == '_' || *p == '-' || *p == '/'))
            return 0;
    return 1;
}

/* Size and hex BLAKE2b-256 of a file. */
static int hash_file(const char *path, uint64_t *bytes, char hex[65], cf_err *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return cf_fail_errno(err, CF_EINPUT, "%s: cannot open", path);
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, 32);
    unsigned char buf[1 << 16];
    uint64_t n = 0;
    size_t got;
    while ((got = fread(buf, 1, sizeof buf, f)) > 0) {
        crypto_generichash_update(&st, buf, got);
        n += got;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) return cf_fail(err, CF_EINPUT, "%s: read error", path);
    unsigned char h[32];
    crypto_generichash_final(&st, h, sizeof h);
    sodium_bin2hex(hex, 65, h, sizeof h);
    *bytes = n;
    return CF_OK;
}

static void utc_now(char *buf, size_t cap) {
    time_t now = time(NULL);
    struct tm tmv;
    gmtime_r(&now, &tmv);
    strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tmv);
}

/* ---------------------------------------------------------------- paths */

int bundle_part_path(const model_bundle *b, const char *part, char *buf, size_t cap, cf_err *err) {
    if (!valid_part(part)) return cf_fail(err, CF_EINPUT, "%s: '%s' is not a bundle part name", b->path, part);
    int n;
    if (b->legacy) {
        /* the old layout's sibling files */
        if (!strcmp(part, BUNDLE_CHECKPOINT)) n = snprintf(buf, cap, "%s", b->path);
        else if (!strcmp(part, BUNDLE_VOCAB)) n = snprintf(buf, cap, "%s.vocab", b->path);
        else if (!strcmp(part, BUNDLE_SUMMARY)) n = snprintf(buf, cap, "%s.json", b->path);
        else if (!strncmp(part, "heads/", 6)) n = snprintf(buf, cap, "%s.heads/%s", b->path, part + 6);
        else return cf_fail(err, CF_EINPUT, "%s: a model in the old layout has no %s", b->path, part);
    } else {
        n = snprintf(buf, cap, "%s/%s", b->path, part);
    }
    if (n < 0 || (size_t)n >= cap) return cf_fail(err, CF_EINPUT, "%s: model path is too long", b->path);
    return CF_OK;
}

int bundle_head_path(const model_bundle *b, const char *task_id, char *buf, size_t cap, cf_err *err) {
    char part[300];
    int n = snprintf(part, sizeof part, "heads/%s.json", task_id);
    if (n < 0 || (size_t)n >= sizeof part || strchr(task_id, '/'))
        return cf_fail(err, CF_EINPUT, "task id '%s' cannot name a head file", task_id);
    int rc = bundle_part_path(b, part, buf, cap, err);
    if (rc) return rc;
    /* the heads folder, so a head can be written there */
    char dir[4400];
    snprintf(dir, sizeof dir, "%s", buf);
    char *slash = strrchr(dir, '/');
    if (slash) {
        *slash = '\0';
        if (mkdir(dir, 0755) != 0 && errno != EEXIST && errno != EACCES && errno != EROFS)
            return cf_fail_errno(err, CF_EINPUT, "%s: cannot create the heads folder", dir);
    }
    return CF_OK;
}

static cJSON *parts_of(const model_bundle *b) {
    return b->manifest ? cJSON_GetObjectItemCaseSensitive((cJSON *)b->manifest, "parts") : NULL;
}

int bundle_has(const model_bundle *b, const char *part) {
    if (b->legacy) {
        char p[4400];
        cf_err e;
        return bundle_part_path(b, part, p, sizeof p, &e) == CF_OK && is_file(p);
    }
    return cJSON_GetObjectItemCaseSensitive(parts_of(b), part) != NULL;
}

const char *bundle_part_hash(const model_bundle *b, const char *part) {
    cJSON *e = cJSON_GetObjectItemCaseSensitive(parts_of(b), part);
    cJSON *h = e ? cJSON_GetObjectItemCaseSensitive(e, "blake2b256") : NULL;
    return cJSON_IsString(h) ? h->valuestring : NULL;
}

/* ---------------------------------------------------------------- the manifest */

/* Parses and checks a manifest's shape; *out gets the whole object. */
static int parse_manifest(const char *path, const char *text, cJSON **out, cf_err *err) {
    cJSON *m = cJSON_Parse(text);
    if (!m) return cf_fail(err, CF_EINPUT, "%s: not valid JSON", path);
    cJSON *fmt = cJSON_GetObjectItemCaseSensitive(m, "format"), *ver = cJSON_GetObjectItemCaseSensitive(m, "version");
    cJSON *parts = cJSON_GetObjectItemCaseSensitive(m, "parts");
    int rc = CF_OK;
    if (!cJSON_IsString(fmt) || strcmp(fmt->valuestring, BUNDLE_FORMAT) != 0)
        rc = cf_fail(err, CF_EINPUT, "%s: \"format\" is not \"%s\"", path, BUNDLE_FORMAT);
    else if (!cJSON_IsNumber(ver) || ver->valuedouble < 1)
        rc = cf_fail(err, CF_EINPUT, "%s: \"version\" is missing", path);
    else if (ver->valuedouble > BUNDLE_VERSION)
        rc = cf_fail(err, CF_EINPUT, "%s: bundle version %d is newer than this clinfm reads (%d); upgrade clinfm", path,
                     (int)ver->valuedouble, BUNDLE_VERSION);
    else if (!cJSON_IsObject(parts))
        rc = cf_fail(err, CF_EINPUT, "%s: \"parts\" must be an object", path);
    for (cJSON *e = parts ? parts->child : NULL; !rc && e; e = e->next) {
        cJSON *by = cJSON_GetObjectItemCaseSensitive(e, "bytes"), *h = cJSON_GetObjectItemCaseSensitive(e, "blake2b256");
        if (!valid_part(e->string)) rc = cf_fail(err, CF_EINPUT, "%s: parts: '%s' is not a part name", path, e->string);
        else if (!cJSON_IsNumber(by) || !cJSON_IsString(h) || strlen(h->valuestring) != 64)
            rc = cf_fail(err, CF_EINPUT, "%s: parts.%s: expected \"bytes\" and a 64-digit \"blake2b256\"", path, e->string);
    }
    if (rc) cJSON_Delete(m);
    else *out = m;
    return rc;
}

static cJSON *empty_manifest(void) {
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "format", BUNDLE_FORMAT);
    cJSON_AddNumberToObject(m, "version", BUNDLE_VERSION);
    cJSON_AddStringToObject(m, "producer", "clinfm");
    cJSON_AddObjectToObject(m, "parts");
    return m;
}

static int write_manifest(const model_bundle *b, const cJSON *m, cf_err *err) {
    char path[4400];
    snprintf(path, sizeof path, "%s/%s", b->path, MANIFEST);
    char *txt = cJSON_Print(m);
    if (!txt) return cf_fail(err, CF_EINTERNAL, "out of memory");
    int rc = atomic_write_file(path, txt, strlen(txt), err);
    free(txt);
    return rc;
}

/* Checks each listed part's size and checksum; skip names a part allowed to differ. */
static int verify_parts(const model_bundle *b, const char *skip, cf_err *err) {
    for (cJSON *e = parts_of(b) ? parts_of(b)->child : NULL; e; e = e->next) {
        if (skip && !strcmp(e->string, skip)) continue;
        char p[4400], hex[65];
        uint64_t bytes;
        int rc = bundle_part_path(b, e->string, p, sizeof p, err);
        if (rc) return rc;
        if (!is_file(p)) return cf_fail(err, CF_EINPUT, "%s: part %s is listed in the manifest but missing", b->path, e->string);
        if ((rc = hash_file(p, &bytes, hex, err))) return rc;
        const char *want = cJSON_GetObjectItemCaseSensitive(e, "blake2b256")->valuestring;
        if (bytes != (uint64_t)cJSON_GetObjectItemCaseSensitive(e, "bytes")->valuedouble || strcmp(hex, want) != 0)
            return cf_fail(err, CF_EINPUT, "%s: part %s does not match its checksum in the manifest (changed after it was "
                           "written, or a write was interrupted%s)", b->path, e->string,
                           !strcmp(e->string, BUNDLE_CHECKPOINT) ? "; `clinfm train --resume` repairs an interrupted save" : "");
    }
    return CF_OK;
}

static int load_manifest(model_bundle *b, cf_err *err) {
    char path[4400], *text;
    snprintf(path, sizeof path, "%s/%s", b->path, MANIFEST);
    if (!is_file(path))
        return cf_fail(err, CF_EINPUT, "%s: not a model bundle (no %s); models are written by `clinfm train`", b->path,
                       MANIFEST);
    int rc = file_read_all(path, MAX_MANIFEST, &text, NULL, err);
    if (rc) return rc;
    cJSON *m = NULL;
    rc = parse_manifest(path, text, &m, err);
    free(text);
    if (rc) return rc;
    b->manifest = m;
    return CF_OK;
}

int bundle_open(model_bundle *b, const char *path, cf_err *err) {
    memset(b, 0, sizeof *b);
    if (!(b->path = strdup(path))) return cf_fail(err, CF_EINTERNAL, "out of memory");
    int rc;
    if (is_file(path)) {
        /* the old layout: the checkpoint file itself, with its vocabulary beside it */
        b->legacy = 1;
        char v[4400];
        snprintf(v, sizeof v, "%s.vocab", path);
        if (!is_file(v)) {
            rc = cf_fail(err, CF_EINPUT, "%s: not a model bundle, and no %s beside it for a model in the old layout", path, v);
            goto fail;
        }
        return CF_OK;
    }
    if (!is_dir(path)) {
        rc = cf_fail(err, CF_EINPUT, "%s: no such model (a bundle directory written by `clinfm train`)", path);
        goto fail;
    }
    if ((rc = load_manifest(b, err)) || (rc = verify_parts(b, NULL, err))) goto fail;
    if (!bundle_has(b, BUNDLE_CHECKPOINT) || !bundle_has(b, BUNDLE_VOCAB)) {
        rc = cf_fail(err, CF_EINPUT, "%s: the bundle has no %s yet (training has not saved a checkpoint)", path,
                     bundle_has(b, BUNDLE_VOCAB) ? BUNDLE_CHECKPOINT : BUNDLE_VOCAB);
        goto fail;
    }
    return CF_OK;
fail:
    bundle_close(b);
    return rc;
}

int bundle_create(model_bundle *b, const char *path, int resume, cf_err *err) {
    memset(b, 0, sizeof *b);
    if (is_file(path))
        return cf_fail(err, CF_EINPUT, "%s is a model in the old layout (a checkpoint file with %s.vocab beside it); "
                       "models are now bundle directories: train into a new --out%s", path, path,
                       resume ? " (the old layout cannot be resumed in place)" : "");
    if (!(b->path = strdup(path))) return cf_fail(err, CF_EINTERNAL, "out of memory");
    int rc = CF_OK;
    if (!is_dir(path)) {
        if (mkdir(path, 0755) != 0) {
            rc = cf_fail_errno(err, CF_EINPUT, "%s: cannot create the model directory", path);
            goto fail;
        }
        b->created = 1;
    }
    char mpath[4400];
    snprintf(mpath, sizeof mpath, "%s/%s", path, MANIFEST);
    if (is_file(mpath)) {
        if ((rc = load_manifest(b, err))) goto fail;
        if (resume) {
            /* a save that was interrupted between checkpoint and manifest is repaired by the
             * next save; gpt_load checks the checkpoint itself */
            if ((rc = verify_parts(b, BUNDLE_CHECKPOINT, err))) goto fail;
            return CF_OK;
        }
        /* a new model: the old one's heads would score with weights that no longer exist */
        for (cJSON *e = parts_of(b)->child; e; e = e->next)
            if (!strncmp(e->string, "heads/", 6)) {
                char p[4400];
                if (bundle_part_path(b, e->string, p, sizeof p, err) == CF_OK) unlink(p);
            }
        cJSON_Delete(b->manifest);
        b->manifest = NULL;
    }
    b->manifest = empty_manifest();
    if (!b->manifest) {
        rc = cf_fail(err, CF_EINTERNAL, "out of memory");
        goto fail;
    }
    if ((rc = write_manifest(b, b->manifest, err))) goto fail;
    return CF_OK;
fail:
    bundle_close(b);
    return rc;
}

void bundle_abandon(model_bundle *b) {
    if (b->created && !b->legacy && b->path && !bundle_has(b, BUNDLE_CHECKPOINT)) {
        char p[4400];
        cf_err e;
        for (cJSON *x = parts_of(b) ? parts_of(b)->child : NULL; x; x = x->next)
            if (bundle_part_path(b, x->string, p, sizeof p, &e) == CF_OK) unlink(p);
        snprintf(p, sizeof p, "%s/%s", b->path, MANIFEST);
        unlink(p);
        snprintf(p, sizeof p, "%s/heads", b->path);
        rmdir(p);
        rmdir(b->path);
    }
    bundle_close(b);
}

void bundle_close(model_bundle *b) {
    free(b->path);
    cJSON_Delete(b->manifest);
    memset(b, 0, sizeof *b);
}

int bundle_commit(model_bundle *b, const char *part, cf_err *err) {
    if (b->legacy) return CF_OK; /* the old layout has no manifest */
    char p[4400], hex[65];
    uint64_t bytes;
    int rc = bundle_part_path(b, part, p, sizeof p, err);
    if (rc || (rc = hash_file(p, &bytes, hex, err))) return rc;
    /* Under the directory's lock, re-read the manifest so that parts another process committed
     * meanwhile (another evaluation's head) are kept. */
    int dfd = open(b->path, O_RDONLY | O_DIRECTORY);
    if (dfd < 0) return cf_fail_errno(err, CF_EINPUT, "%s: cannot open the model directory", b->path);
    if (flock(dfd, LOCK_EX) != 0) {
        close(dfd);
        return cf_fail_errno(err, CF_EINPUT, "%s: cannot lock the model directory", b->path);
    }
    char mpath[4400], *text = NULL;
    snprintf(mpath, sizeof mpath, "%s/%s", b->path, MANIFEST);
    cJSON *m = NULL;
    if (is_file(mpath)) {
        if (!(rc = file_read_all(mpath, MAX_MANIFEST, &text, NULL, err))) rc = parse_manifest(mpath, text, &m, err);
        free(text);
    } else if (!(m = empty_manifest())) {
        rc = cf_fail(err, CF_EINTERNAL, "out of memory");
    }
    if (!rc) {
        char when[32];
        utc_now(when, sizeof when);
        cJSON *parts = cJSON_GetObjectItemCaseSensitive(m, "parts");
        cJSON *e = cJSON_CreateObject();
        cJSON_AddNumberToObject(e, "bytes", (double)bytes);
        cJSON_AddStringToObject(e, "blake2b256", hex);
        cJSON_AddStringToObject(e, "written", when);
        if (cJSON_GetObjectItemCaseSensitive(parts, part)) cJSON_ReplaceItemInObjectCaseSensitive(parts, part, e);
        else cJSON_AddItemToObject(parts, part, e);
        /* A new checkpoint has new weights: heads fitted on the old ones no longer belong to it. */
        if (!strcmp(part, BUNDLE_CHECKPOINT))
            for (cJSON *x = parts->child, *next; x; x = next) {
                next = x->next;
                if (strncmp(x->string, "heads/", 6)) continue;
                char hp[4400];
                cf_err ignore;
                if (bundle_part_path(b, x->string, hp, sizeof hp, &ignore) == CF_OK) unlink(hp);
                cJSON_DeleteItemFromObjectCaseSensitive(parts, x->string);
            }
        rc = write_manifest(b, m, err);
    }
    flock(dfd, LOCK_UN);
    close(dfd);
    if (rc) {
        cJSON_Delete(m);
        return rc;
    }
    cJSON_Delete(b->manifest);
    b->manifest = m;
    return CF_OK;
}

int bundle_put(model_bundle *b, const char *part, const void *data, size_t n, cf_err *err) {
    char p[4400];
    int rc = bundle_part_path(b, part, p, sizeof p, err);
    if (rc) return rc;
    if (!strncmp(part, "heads/", 6)) {
        char d[4400];
        snprintf(d, sizeof d, "%s", p);
        char *slash = strrchr(d, '/');
        if (slash) *slash = '\0', mkdir(d, 0755);
    }
    if ((rc = atomic_write_file(p, data, n, err))) return rc;
    return bundle_commit(b, part, err);
}

int bundle_put_file(model_bundle *b, const char *part, const char *src, cf_err *err) {
    char *data;
    size_t n;
    int rc = file_read_all(src, 0, &data, &n, err);
    if (!rc) rc = bundle_put(b, part, data, n, err);
    free(data);
    return rc;
}

/* ---------------------------------------------------------------- the training split */

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

int bundle_split_has(const uint64_t *sorted, size_t n, uint64_t h) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (sorted[mid] < h) lo = mid + 1;
        else hi = mid;
    }
    return lo < n && sorted[lo] == h;
}

int bundle_record_split(model_bundle *b, const store *s, const split_config *c, cf_err *err) {
    split_printer pr;
    int rc = split_printer_init(&pr, s, err);
    if (rc) return rc;
    size_t cap = s->n_subjects ? s->n_subjects : 1;
    uint64_t *ids = malloc(cap * sizeof *ids), *prints = malloc(cap * sizeof *prints);
    unsigned char *bin = NULL;
    char *txt = NULL;
    cJSON *j = NULL;
    if (!ids || !prints) {
        rc = cf_fail(err, CF_EINTERNAL, "out of memory");
        goto done;
    }
    size_t n_id = 0, n_print = 0;
    uint64_t per[SPLIT_COUNT] = {0}, unprinted = 0;
    for (uint64_t k = 0; k < s->n_subjects; k++) {
        int part = split_assign(c, s->subject_id[k]);
        per[part]++;
        if (part == SPLIT_HELD_OUT) continue;
        ids[n_id++] = split_subject_hash(c, s->subject_id[k]);
        uint64_t h;
        if (split_record_hash(&pr, c, k, &h)) prints[n_print++] = h;
        else unprinted++;
    }
    qsort(ids, n_id, sizeof *ids, cmp_u64);
    qsort(prints, n_print, sizeof *prints, cmp_u64);
    size_t len = 40 + 8 * (n_id + n_print);
    if (!(bin = malloc(len))) {
        rc = cf_fail(err, CF_EINTERNAL, "out of memory");
        goto done;
    }
    memcpy(bin, SS_MAGIC, 8);
    le_put64(bin + 8, 1); /* version */
    le_put64(bin + 16, n_id);
    le_put64(bin + 24, n_print);
    le_put64(bin + 32, unprinted);
    for (size_t i = 0; i < n_id; i++) le_put64(bin + 40 + 8 * i, ids[i]);
    for (size_t i = 0; i < n_print; i++) le_put64(bin + 40 + 8 * (n_id + i), prints[i]);
    if ((rc = bundle_put(b, BUNDLE_SPLIT_SUBJECTS, bin, len, err))) goto done;

    j = cJSON_CreateObject();
    char hex[65];
    timeline_store_fingerprint(s, hex);
    cJSON *st = cJSON_AddObjectToObject(j, "store");
    cJSON_AddStringToObject(st, "header_blake2b256", hex);
    cJSON_AddNumberToObject(st, "subjects", (double)s->n_subjects);
    cJSON_AddNumberToObject(st, "events", (double)s->n_events);
    cJSON_AddBoolToObject(st, "deidentified", (s->flags & STORE_FLAG_DEIDENTIFIED) != 0);
    char tb[48];
    if (s->first_time != TIME_NULL) cJSON_AddStringToObject(st, "first_time", time_format_iso(s->first_time, tb, sizeof tb));
    if (s->last_time != TIME_NULL) cJSON_AddStringToObject(st, "last_time", time_format_iso(s->last_time, tb, sizeof tb));
    cJSON_AddItemToObject(j, "split", split_config_json(c, SPLIT_JSON_DEFAULT_KEY));
    cJSON *subj = cJSON_AddObjectToObject(j, "subjects");
    for (int p = 0; p < SPLIT_COUNT; p++) cJSON_AddNumberToObject(subj, split_name(p), (double)per[p]);
    cJSON_AddNumberToObject(subj, "train_and_tuning_without_record_print", (double)unprinted);
    cJSON_AddStringToObject(j, "subject_hashes", "split_subjects.bin: keyed BLAKE2b-64 (split key) of every train and "
                                                 "tuning subject's id and record print, sorted");
    if (!(txt = cJSON_Print(j))) {
        rc = cf_fail(err, CF_EINTERNAL, "out of memory");
        goto done;
    }
    rc = bundle_put(b, BUNDLE_SPLIT, txt, strlen(txt), err);
done:
    free(txt);
    cJSON_Delete(j);
    free(bin);
    free(ids);
    free(prints);
    split_printer_free(&pr);
    return rc;
}

void bundle_split_free(bundle_split *sp) {
    free(sp->id_hash);
    free(sp->print_hash);
    memset(sp, 0, sizeof *sp);
}

static double num(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : -1;
}

int bundle_load_split(const model_bundle *b, bundle_split *out, cf_err *err) {
    memset(out, 0, sizeof *out);
    if (b->legacy || !bundle_has(b, BUNDLE_SPLIT) || !bundle_has(b, BUNDLE_SPLIT_SUBJECTS)) return CF_OK;
    char p[4400], *text = NULL, *bin = NULL;
    cJSON *j = NULL;
    int rc = bundle_part_path(b, BUNDLE_SPLIT, p, sizeof p, err);
    if (rc || (rc = file_read_all(p, MAX_MANIFEST, &text, NULL, err))) goto done;
    if (!(j = cJSON_Parse(text))) {
        rc = cf_fail(err, CF_EINPUT, "%s: not valid JSON", p);
        goto done;
    }
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(j, "store"), *sp = cJSON_GetObjectItemCaseSensitive(j, "split");
    const cJSON *subj = cJSON_GetObjectItemCaseSensitive(j, "subjects");
    const cJSON *h = cJSON_GetObjectItemCaseSensitive(st, "header_blake2b256");
    const cJSON *kid = cJSON_GetObjectItemCaseSensitive(sp, "key_id");
    size_t kl = 0;
    if (!cJSON_IsString(h) || strlen(h->valuestring) != 64 || !cJSON_IsString(kid) ||
        sodium_hex2bin(out->key_id, sizeof out->key_id, kid->valuestring, strlen(kid->valuestring), NULL, &kl, NULL) ||
        kl != SPLIT_KEY_ID_BYTES || num(sp, "train_ppm") < 0 || num(sp, "tuning_ppm") < 0) {
        rc = cf_fail(err, CF_EINPUT, "%s: expected store.header_blake2b256, split.key_id, split.train_ppm and "
                     "split.tuning_ppm", p);
        goto done;
    }
    snprintf(out->store_hash, sizeof out->store_hash, "%s", h->valuestring);
    out->store_subjects = (uint64_t)num(st, "subjects");
    out->store_events = (uint64_t)num(st, "events");
    out->deidentified = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(st, "deidentified"));
    out->first_time = out->last_time = TIME_NULL;
    const cJSON *ft = cJSON_GetObjectItemCaseSensitive(st, "first_time"), *lt = cJSON_GetObjectItemCaseSensitive(st, "last_time");
    if (cJSON_IsString(ft)) time_parse_iso(ft->valuestring, strlen(ft->valuestring), &out->first_time, NULL);
    if (cJSON_IsString(lt)) time_parse_iso(lt->valuestring, strlen(lt->valuestring), &out->last_time, NULL);
    out->train_ppm = (uint32_t)num(sp, "train_ppm");
    out->tuning_ppm = (uint32_t)num(sp, "tuning_ppm");
    out->default_key = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(sp, "default_key"));
    for (int k = 0; k < SPLIT_COUNT; k++) {
        double v = num(subj, split_name(k));
        out->subjects[k] = v < 0 ? 0 : (uint64_t)v;
    }
    if ((rc = bundle_part_path(b, BUNDLE_SPLIT_SUBJECTS, p, sizeof p, err))) goto done;
    /* file_read_all adds a NUL; the part's size is checked against the manifest already */
    if ((rc = file_read_all(p, (size_t)1 << 34, &bin, NULL, err))) goto done;
    struct stat sb;
    if (stat(p, &sb) != 0 || sb.st_size < 40 || memcmp(bin, SS_MAGIC, 8) != 0) {
        rc = cf_fail(err, CF_EINPUT, "%s: not a list of training subjects", p);
        goto done;
    }
    const unsigned char *u = (const unsigned char *)bin;
    uint64_t n_id = le_get64(u + 16), n_print = le_get64(u + 24);
    if (le_get64(u + 8) != 1 || n_id > ((uint64_t)sb.st_size - 40) / 8 || n_print > ((uint64_t)sb.st_size - 40) / 8 ||
        (uint64_t)sb.st_size != 40 + 8 * (n_id + n_print)) {
        rc = cf_fail(err, CF_EINPUT, "%s: version or counts do not match the file's size", p);
        goto done;
    }
    out->n_id = (size_t)n_id;
    out->n_print = (size_t)n_print;
    out->unprinted = le_get64(u + 32);
    out->id_hash = malloc((out->n_id ? out->n_id : 1) * sizeof *out->id_hash);
    out->print_hash = malloc((out->n_print ? out->n_print : 1) * sizeof *out->print_hash);
    if (!out->id_hash || !out->print_hash) {
        rc = cf_fail(err, CF_EINTERNAL, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < out->n_id; i++) out->id_hash[i] = le_get64(u + 40 + 8 * i);
    for (size_t i = 0; i < out->n_print; i++) out->print_hash[i] = le_get64(u + 40 + 8 * (out->n_id + i));
    out->present = 1;
done:
    free(text);
    free(bin);
    cJSON_Delete(j);
    if (rc) bundle_split_free(out);
    return rc;
}
