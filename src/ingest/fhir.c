/* FHIR ingestion driver: finds the input files, cuts them into units (a bundle file, or a chunk
 * of NDJSON lines), maps units to batches on worker threads, and commits batches to the store and
 * the report in input order on the calling thread. See fhir.h for what is produced and
 * fhir_internal.h for the split between mapping and commit.
 *
 * Order of a folder: Patient NDJSON files first (so Bulk Data references resolve), then
 * Medication NDJSON files (so medicationReference resolves), then bundle files, then the other
 * NDJSON files; each group in path order. A bundle's Patients and Medications are registered
 * before its other entries, whatever the entry order; an NDJSON line sees earlier lines only.
 *
 * Memory: about 2 units per worker are in flight (a bundle file of at most FHIR_MAX_BUNDLE
 * bytes and its mapped events, or a chunk of about FHIR_CHUNK bytes of NDJSON lines), each worker
 * holds the parse tree of one bundle entry or line, and the commit side keeps one entry per
 * Patient and per Medication. Nothing grows with the number of bundles or lines except those two
 * tables (and the store writer's buffer, which spills at its budget). */
#include "ingest/fhir.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>
#include <zlib.h>

#include "ingest/csv.h"
#include "ingest/fhir_internal.h"
#include "util/progress.h"
#include "util/strmap.h"
#include "util/u64map.h"

#define FHIR_CHUNK ((size_t)4 << 20) /* target bytes of NDJSON lines per unit */
#define FHIR_MAX_THREADS 16
#define FHIR_WALK_DEPTH 16

/* Arena cap for the parse tree of a text of len bytes. Synthea bundles need about 2x their size
 * (long strings, few nodes); a tiny resource can need 30x, which the 64 MiB of slack absorbs;
 * "[1,1,1,...]" needs 32x and is stopped at 8x, so a 256 MiB bundle costs at most 2 GiB. */
static size_t tree_cap(size_t len) {
    size_t cap = (len > ((size_t)1 << 32) ? ((size_t)1 << 32) : len) * 8 + ((size_t)64 << 20);
    return cap > ((size_t)2 << 30) ? ((size_t)2 << 30) : cap;
}

int64_t fhir_subject_id(const char *key, size_t len) {
    unsigned char h[crypto_generichash_BYTES];
    crypto_generichash(h, sizeof h, (const unsigned char *)key, len, NULL, 0);
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | h[i];
    v &= (uint64_t)INT64_MAX;
    return v ? (int64_t)v : 1;
}

/* ------------------------------------------------------------------ input files */

enum { F_BUNDLE = 0, F_NDJSON = 1 };

typedef struct {
    char *path;
    int kind;
    int expected; /* NDJSON: resource type named by the file, or -1 */
    int group;    /* ordering group, see the file comment */
    int skip;     /* a sample leaves this bundle out */
    uint64_t cap; /* a sample reads at most about this many bytes of this NDJSON file; 0: all */
    uint64_t used;/* NDJSON bytes handed out */
} in_file;

typedef struct {
    in_file *v;
    size_t n, cap;
} file_list;

static int ends_with_ci(const char *s, const char *suf) {
    size_t n = strlen(s), m = strlen(suf);
    return n >= m && !strcasecmp(s + n - m, suf);
}

static const char *base_name(const char *p) {
    const char *b = strrchr(p, '/');
    return b ? b + 1 : p;
}

/* Resource type named by an NDJSON file ("Observation.000.ndjson"), or -1. */
static int type_from_name(const char *path) {
    const char *b = base_name(path);
    size_t n = strcspn(b, ".");
    return fhir_type_index(b, n);
}

static int add_file(file_list *l, const char *path, int kind, int expected, cf_err *err) {
    if (l->n == l->cap) {
        size_t n = l->cap ? l->cap * 2 : 64;
        in_file *p = cf_realloc_array(l->v, n, sizeof *p);
        if (!p) return cf_fail(err, CF_EINTERNAL, "out of memory listing input files");
        l->v = p;
        l->cap = n;
    }
    in_file *f = &l->v[l->n];
    if (!(f->path = strdup(path))) return cf_fail(err, CF_EINTERNAL, "out of memory");
    f->kind = kind;
    f->expected = expected;
    f->skip = 0;
    f->cap = f->used = 0;
    static int pt = -2, mt = -2;
    if (pt == -2) {
        pt = fhir_type_index("Patient", 7);
        mt = fhir_type_index("Medication", 10);
    }
    f->group = kind == F_BUNDLE ? 2 : expected == pt ? 0 : expected == mt ? 1 : 3;
    l->n++;
    return CF_OK;
}

static int walk(file_list *l, const char *dir, int depth, int quiet, cf_err *err) {
    if (depth > FHIR_WALK_DEPTH)
        return cf_fail(err, CF_EINPUT, "%s: folders nested more than %d deep", dir, FHIR_WALK_DEPTH);
    DIR *d = opendir(dir);
    if (!d) return cf_fail_errno(err, CF_EINPUT, "%s: cannot open folder", dir);
    int rc = CF_OK;
    struct dirent *de;
    while (rc == CF_OK && (de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.') continue; /* hidden files, "." and ".." */
        size_t n = strlen(dir) + strlen(de->d_name) + 2;
        char *p = malloc(n);
        if (!p) {
            rc = cf_fail(err, CF_EINTERNAL, "out of memory");
            break;
        }
        snprintf(p, n, "%s/%s", dir, de->d_name);
        struct stat st;
        if (stat(p, &st) != 0) {
            rc = cf_fail_errno(err, CF_EINPUT, "%s: cannot stat", p);
        } else if (S_ISDIR(st.st_mode)) {
            rc = walk(l, p, depth + 1, quiet, err);
        } else if (S_ISREG(st.st_mode)) {
            if (ends_with_ci(p, ".ndjson") || ends_with_ci(p, ".ndjson.gz")) {
                int t = type_from_name(p);
                if (t < 0) {
                    if (!quiet)
                        fprintf(stderr, "clinfm: note: skipping %s (its name does not start with a "
                                        "FHIR resource type)\n", p);
                } else {
                    rc = add_file(l, p, F_NDJSON, t, err);
                }
            } else if (ends_with_ci(p, ".json") || ends_with_ci(p, ".json.gz")) {
                rc = add_file(l, p, F_BUNDLE, -1, err);
            }
        }
        free(p);
    }
    closedir(d);
    return rc;
}

static int cmp_file(const void *a, const void *b) {
    const in_file *x = a, *y = b;
    if (x->group != y->group) return x->group < y->group ? -1 : 1;
    return strcmp(x->path, y->path);
}

static void free_files(file_list *l) {
    for (size_t i = 0; i < l->n; i++) free(l->v[i].path);
    free(l->v);
    memset(l, 0, sizeof *l);
}

/* ------------------------------------------------------------------ units */

enum { U_BUNDLE_FILE, U_BUNDLE_BUFFER, U_NDJSON, U_REJECT };

typedef struct {
    int kind;
    const char *file;      /* name in messages (owned by the file list or the caller) */
    int expected;          /* NDJSON resource type or -1 */
    char *data;            /* NDJSON lines or a bundle buffer */
    size_t len;
    int owns_data;
    uint64_t first_line;   /* NDJSON: line number of data[0] */
    uint64_t reject_row;   /* U_REJECT */
    const char *reject_reason;
    fhir_batch batch;
    int status;            /* CF_OK, or a fatal error from the worker */
    cf_err err;
    int state;             /* 0 free, 1 queued, 2 taken, 3 done */
} unit;

typedef struct {
    fhir_arena *arena;
    char *buf;
    size_t cap;
} worker_state;

static void unit_clear(unit *u) {
    if (u->owns_data) free(u->data);
    u->data = NULL;
    u->owns_data = 0;
    u->len = 0;
    u->status = CF_OK;
    u->err.msg[0] = '\0';
    u->state = 0;
    fhir_batch_reset(&u->batch);
}

static int reject_line(unit *u, int type, const char *source, uint64_t row, const char *why,
                       size_t offset) {
    char loc[1024];
    snprintf(loc, sizeof loc, "%s:%llu (near byte %zu of the line)", u->file,
             (unsigned long long)row, offset);
    return fhir_batch_reject(&u->batch, type, source, row, why, loc);
}

static int process_bundle_text(unit *u, worker_state *ws, const char *data, size_t len) {
    if (len > FHIR_MAX_BUNDLE) {
        char loc[1024];
        snprintf(loc, sizeof loc, "%s", u->file);
        return fhir_batch_reject(&u->batch, -1, "Bundle", 1, "file larger than the size cap", loc);
    }
    return fhir_map_bundle_text(&u->batch, u->file, data, len, ws->arena, tree_cap(len));
}

static int process_lines(unit *u, worker_state *ws) {
    const char *p = u->data, *end = u->data + u->len;
    uint64_t line = u->first_line;
    const char *src = u->expected < 0 ? "Resource" : NULL;
    for (; p < end; line++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        size_t n = (size_t)(le - p);
        const char *s = p;
        p = nl ? nl + 1 : end;
        while (n && (s[n - 1] == '\r' || s[n - 1] == ' ' || s[n - 1] == '\t')) n--;
        size_t k = 0;
        while (k < n && (s[k] == ' ' || s[k] == '\t')) k++;
        if (k == n) continue; /* blank line */
        if (n > FHIR_MAX_LINE) {
            char loc[1024];
            snprintf(loc, sizeof loc, "%s:%llu", u->file, (unsigned long long)line);
            if (fhir_batch_reject(&u->batch, u->expected, src, line, "line longer than the size cap",
                                  loc))
                return -1;
            continue;
        }
        const char *why;
        size_t off;
        fhir_arena_begin(ws->arena, tree_cap(n));
        cJSON *res = fhir_json_parse(ws->arena, s, n, &why, &off);
        int rc = res ? fhir_map_line(&u->batch, u->file, line, u->expected, res)
                     : reject_line(u, u->expected, src, line, why, off);
        fhir_arena_end(ws->arena);
        if (rc) return rc;
    }
    return 0;
}

/* Worker side: fills u->batch. Only fatal problems set u->status. */
static void process_unit(unit *u, worker_state *ws) {
    int rc = 0;
    switch (u->kind) {
    case U_BUNDLE_FILE: {
        size_t len = 0;
        const char *reason = NULL;
        int st = fhir_read_file(u->file, FHIR_MAX_BUNDLE, &ws->buf, &ws->cap, &len, &reason,
                                &u->err);
        if (st == CF_EINPUT && reason) {
            char loc[1024];
            snprintf(loc, sizeof loc, "%s", u->file);
            rc = fhir_batch_reject(&u->batch, -1, "Bundle", 1, reason, loc);
        } else if (st != CF_OK) {
            u->status = st;
            return;
        } else {
            rc = process_bundle_text(u, ws, ws->buf, len);
        }
        /* One huge bundle must not keep its buffer for the rest of the run. */
        if (ws->cap > ((size_t)64 << 20)) {
            free(ws->buf);
            ws->buf = NULL;
            ws->cap = 0;
        }
        break;
    }
    case U_BUNDLE_BUFFER: rc = process_bundle_text(u, ws, u->data, u->len); break;
    case U_NDJSON: rc = process_lines(u, ws); break;
    case U_REJECT: {
        char loc[1024];
        snprintf(loc, sizeof loc, "%s:%llu", u->file, (unsigned long long)u->reject_row);
        rc = fhir_batch_reject(&u->batch, u->expected, u->expected < 0 ? "Resource" : NULL,
                               u->reject_row, u->reject_reason, loc);
        break;
    }
    }
    if (rc) u->status = cf_fail(&u->err, CF_EINTERNAL, "%s: out of memory mapping resources",
                                u->file);
}

/* ------------------------------------------------------------------ commit */

typedef struct {
    store_writer *w;
    ingest_report *rep;
    const char *input;
    strmap patients;          /* Patient key -> index */
    int64_t *patient_sid;     /* (patients.count) */
    size_t cap_sid;
    strmap urls;              /* Patient fullUrl -> index; url_patient[index] = patient index */
    uint32_t *url_patient;
    size_t cap_url;
    u64map sid_owner;         /* subject id -> patient index: detects collisions */
    strmap meds;              /* Medication key -> index */
    uint32_t *med_code, *med_desc; /* into medstr; UINT32_MAX = no description */
    size_t cap_med, cap_med_desc;
    strmap medstr;
    int source_id[160];       /* store source per type, -1 unregistered */
    long stats_idx[162];      /* report source index per type (+ "Resource", "Bundle") */
    uint8_t *described;       /* per writer code id */
    size_t cap_described;
    strmap phi_seen;          /* subject id + PHI code + value already written */
    uint64_t done;
    progress prog;
    int show_progress;
} commit_ctx;

static void commit_init(commit_ctx *cc, store_writer *w, ingest_report *rep, const char *input,
                        int show_progress) {
    memset(cc, 0, sizeof *cc);
    cc->w = w;
    cc->rep = rep;
    cc->input = input;
    strmap_init(&cc->patients);
    strmap_init(&cc->urls);
    strmap_init(&cc->meds);
    strmap_init(&cc->medstr);
    strmap_init(&cc->phi_seen);
    for (size_t i = 0; i < sizeof cc->source_id / sizeof cc->source_id[0]; i++) cc->source_id[i] = -1;
    for (size_t i = 0; i < sizeof cc->stats_idx / sizeof cc->stats_idx[0]; i++) cc->stats_idx[i] = -1;
    cc->show_progress = show_progress;
    if (show_progress) progress_begin(&cc->prog, "ingest fhir", "resources", 0);
}

static void commit_free(commit_ctx *cc) {
    if (cc->show_progress) progress_end(&cc->prog);
    strmap_free(&cc->patients);
    strmap_free(&cc->urls);
    strmap_free(&cc->meds);
    strmap_free(&cc->medstr);
    strmap_free(&cc->phi_seen);
    free(cc->patient_sid);
    free(cc->url_patient);
    u64map_free(&cc->sid_owner);
    CF_FREE_ALL(cc->med_code, cc->med_desc, cc->described);
}

static ingest_source_stats *stats_for(commit_ctx *cc, int type, const char *source) {
    int slot = type >= 0 ? type : !strcmp(source ? source : "", "Bundle") ? 161 : 160;
    const char *name = type >= 0 ? fhir_type_name(type) : slot == 161 ? "Bundle" : "Resource";
    if (cc->stats_idx[slot] >= 0) return &cc->rep->src[cc->stats_idx[slot]];
    ingest_source_stats *s = ingest_report_source(cc->rep, name, cc->input);
    if (s) cc->stats_idx[slot] = (long)(s - cc->rep->src);
    return s;
}

static int grow_arr(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return 0;
    size_t n = *cap ? *cap : 256;
    while (n < need) n *= 2;
    void *q = cf_realloc_array(*p, n, elem);
    if (!q) return -1;
    memset((char *)q + *cap * elem, 0, (n - *cap) * elem);
    *p = q;
    *cap = n;
    return 0;
}

/* Records subject id sid for patient index idx; CF_EINTERNAL on a hash collision. */
static int sid_register(commit_ctx *cc, int64_t sid, uint32_t idx, cf_err *err) {
    int added;
    uint64_t *owner = u64map_put(&cc->sid_owner, (uint64_t)sid, &added);
    if (!owner) return cf_fail(err, CF_EINTERNAL, "out of memory");
    if (added) *owner = idx;
    else if (*owner != idx)
        return cf_fail(err, CF_EINTERNAL,
                       "two Patient ids map to the same subject_id (a 63-bit hash collision); "
                       "the input cannot be ingested as is");
    return CF_OK;
}

static void commit_location(char *out, size_t cap, const unit *u, const fhir_batch *b,
                            const fhir_res *r, const char *path) {
    const char *type = r->type >= 0 ? fhir_type_name(r->type) : "Resource";
    int is_bundle = u->kind == U_BUNDLE_FILE || u->kind == U_BUNDLE_BUFFER;
    char where[64];
    if (is_bundle) snprintf(where, sizeof where, ": entry %llu", (unsigned long long)r->row);
    else snprintf(where, sizeof where, ":%llu", (unsigned long long)r->row);
    snprintf(out, cap, "%s%s (%s%s%.*s) at %s.%s", u->file, where, type, r->id_len ? "/" : "",
             (int)r->id_len, b->heap.p + r->id_off, type, path);
}

/* Counts one rejection made at commit time. */
static int commit_reject(commit_ctx *cc, ingest_source_stats *st, const unit *u,
                         const fhir_res *r, const char *reason, const char *path, cf_err *err) {
    char loc[1024];
    commit_location(loc, sizeof loc, u, &u->batch, r, path);
    st->rows_rejected++;
    return ingest_reject(cc->rep, fhir_type_name(r->type), reason, loc, err);
}

static int register_medication(commit_ctx *cc, const fhir_batch *b, const fhir_res *r,
                               cf_err *err);

/* Registers the Patients and Medications among records [from, to) of a unit. dup[i] marks
 * duplicate Patients. */
static int register_unit(commit_ctx *cc, unit *u, uint8_t *dup, size_t from, size_t to,
                         cf_err *err) {
    fhir_batch *b = &u->batch;
    for (size_t i = from; i < to; i++) {
        fhir_res *r = &b->res[i];
        if (r->is_medication) {
            int rc = register_medication(cc, b, r, err);
            if (rc) return rc;
            continue;
        }
        if (!r->is_patient || r->outcome == FHIR_OUT_REJECTED) continue;
        const char *key = b->heap.p + r->subj_off;
        if (strmap_find(&cc->patients, key, r->subj_len) >= 0) {
            dup[i] = 1;
            continue;
        }
        int64_t idx = strmap_intern(&cc->patients, key, r->subj_len);
        if (idx < 0 || grow_arr((void **)&cc->patient_sid, &cc->cap_sid, (size_t)idx + 1,
                                sizeof(int64_t)))
            return cf_fail(err, CF_EINTERNAL, "out of memory");
        int64_t sid = fhir_subject_id(key, r->subj_len);
        cc->patient_sid[idx] = sid;
        int rc = sid_register(cc, sid, (uint32_t)idx, err);
        if (rc) return rc;
        if (r->url_len) {
            int64_t ui = strmap_intern(&cc->urls, b->heap.p + r->url_off, r->url_len);
            if (ui < 0 || grow_arr((void **)&cc->url_patient, &cc->cap_url, (size_t)ui + 1,
                                   sizeof(uint32_t)))
                return cf_fail(err, CF_EINTERNAL, "out of memory");
            if ((uint32_t)ui == cc->urls.count - 1) cc->url_patient[ui] = (uint32_t)idx;
        }
        if (cc->w && store_writer_subject_key(cc->w, sid, key, r->subj_len, err)) return err->code;
    }
    return CF_OK;
}

static int register_medication(commit_ctx *cc, const fhir_batch *b, const fhir_res *r,
                               cf_err *err) {
    if (!r->ev_count) return CF_OK;
    const fhir_event *e = &b->ev[r->ev_first];
    int64_t code = strmap_intern(&cc->medstr, b->heap.p + e->code_off, e->code_len);
    int64_t desc = e->desc_len ? strmap_intern(&cc->medstr, b->heap.p + e->desc_off, e->desc_len)
                               : (int64_t)UINT32_MAX;
    if (code < 0 || desc < 0) return cf_fail(err, CF_EINTERNAL, "out of memory");
    const char *k = b->heap.p + r->keys_off, *end = k + r->keys_len;
    while (k < end) {
        size_t kl = strlen(k);
        int64_t mi = strmap_intern(&cc->meds, k, kl);
        if (mi < 0 ||
            grow_arr((void **)&cc->med_code, &cc->cap_med, (size_t)mi + 1, sizeof(uint32_t)) ||
            grow_arr((void **)&cc->med_desc, &cc->cap_med_desc, (size_t)mi + 1, sizeof(uint32_t)))
            return cf_fail(err, CF_EINTERNAL, "out of memory");
        if ((uint32_t)mi == cc->meds.count - 1) { /* first definition wins */
            cc->med_code[mi] = (uint32_t)code;
            cc->med_desc[mi] = (uint32_t)desc;
        }
        k += kl + 1;
    }
    return CF_OK;
}

static int add_event(commit_ctx *cc, int64_t sid, const char *code, size_t code_len,
                     const char *desc, size_t desc_len, const fhir_event *e, const char *text,
                     int source, uint64_t row, cf_err *err) {
    int64_t cid = store_writer_code(cc->w, code, code_len);
    if (cid < 0) return cf_fail(err, CF_EINTERNAL, "out of memory interning codes");
    if (desc_len) {
        if (grow_arr((void **)&cc->described, &cc->cap_described, (size_t)cid + 1, 1))
            return cf_fail(err, CF_EINTERNAL, "out of memory");
        if (!cc->described[cid]) {
            cc->described[cid] = 1;
            if (store_writer_code_describe(cc->w, (uint32_t)cid, desc, desc_len))
                return cf_fail(err, CF_EINTERNAL, "out of memory describing codes");
        }
    }
    return store_writer_add(cc->w, sid, e->time, (uint32_t)cid, e->numeric, text,
                            e->has_text ? e->text_len : 0, (uint32_t)source, row, err);
}

/* Identifier values repeat: every Encounter names its practitioner and hospital, every note
 * its author. Each (subject, PHI code, value) is written once; the set is exact and is emptied
 * when it passes PHI_SEEN_MAX bytes, so memory stays bounded on huge inputs (repeats after that
 * are written again, which costs space, never an identifier). 0: new, 1: seen, -1: no memory. */
#define PHI_SEEN_MAX ((size_t)64 << 20)

static int phi_seen(commit_ctx *cc, int64_t sid, const fhir_batch *b, const fhir_event *e) {
    char stack[512], *key = stack;
    size_t n = 8 + e->code_len + 1 + e->text_len;
    if (n > sizeof stack && !(key = malloc(n))) return -1;
    for (int i = 0; i < 8; i++) key[i] = (char)((uint64_t)sid >> (8 * i));
    memcpy(key + 8, b->heap.p + e->code_off, e->code_len);
    key[8 + e->code_len] = '\0';
    memcpy(key + 9 + e->code_len, b->heap.p + e->text_off, e->text_len);
    int rc = 1;
    if (strmap_find(&cc->phi_seen, key, n) < 0) {
        if (cc->phi_seen.arena_len > PHI_SEEN_MAX) {
            strmap_free(&cc->phi_seen);
            strmap_init(&cc->phi_seen);
        }
        rc = strmap_intern(&cc->phi_seen, key, n) < 0 ? -1 : 0;
    }
    if (key != stack) free(key);
    return rc;
}

static int commit_unit(commit_ctx *cc, unit *u, cf_err *err) {
    fhir_batch *b = &u->batch;
    uint8_t *dup = calloc(b->n_res ? b->n_res : 1, 1);
    if (!dup) return cf_fail(err, CF_EINTERNAL, "out of memory");
    /* A bundle's Patients and Medications are known before its other entries, whatever the
     * entry order; NDJSON lines see those of earlier lines only, so chunking never matters. */
    int whole = u->kind == U_BUNDLE_FILE || u->kind == U_BUNDLE_BUFFER;
    int rc = whole ? register_unit(cc, u, dup, 0, b->n_res, err) : CF_OK;
    for (size_t i = 0; rc == CF_OK && i < b->n_res; i++) {
        fhir_res *r = &b->res[i];
        if (!whole && (rc = register_unit(cc, u, dup, i, i + 1, err))) break;
        ingest_source_stats *st = stats_for(cc, r->type, r->source);
        if (!st) {
            rc = cf_fail(err, CF_EINTERNAL, "out of memory");
            break;
        }
        st->rows++;
        cc->done++;
        if (cc->show_progress) progress_update(&cc->prog, cc->done);
        if (r->outcome == FHIR_OUT_REJECTED) {
            st->rows_rejected++;
            const char *src = r->type >= 0 ? fhir_type_name(r->type)
                                           : (r->source ? r->source : "Resource");
            char loc[1100];
            snprintf(loc, sizeof loc, "%.*s", (int)r->loc_len, b->heap.p + r->loc_off);
            rc = ingest_reject(cc->rep, src, r->reason, loc, err);
            continue;
        }
        if (r->outcome == FHIR_OUT_FILTERED) {
            st->rows_filtered++;
            continue;
        }
        if (dup[i]) {
            rc = commit_reject(cc, st, u, r, "duplicate Patient id", "id", err);
            continue;
        }
        /* subject */
        int64_t sid = 0, pidx = -1;
        const char *key = b->heap.p + r->subj_off;
        if (r->subj_kind == FHIR_SUBJ_KEY || r->subj_kind == FHIR_SUBJ_PATIENT_ID) {
            pidx = strmap_find(&cc->patients, key, r->subj_len);
        } else if (r->subj_kind == FHIR_SUBJ_URL) {
            int64_t ui = strmap_find(&cc->urls, key, r->subj_len);
            if (ui >= 0) pidx = cc->url_patient[ui];
        }
        if (pidx < 0) {
            rc = commit_reject(cc, st, u, r,
                               "subject reference does not resolve to a Patient in the input",
                               "subject.reference", err);
            continue;
        }
        sid = cc->patient_sid[pidx];
        /* medication references: all must resolve before anything is written */
        int bad_med = 0;
        for (size_t k = 0; k < r->ev_count; k++) {
            const fhir_event *e = &b->ev[r->ev_first + k];
            if (e->code_is_medref && strmap_find(&cc->meds, b->heap.p + e->desc_off, e->desc_len) < 0)
                bad_med = 1;
        }
        if (bad_med) {
            rc = commit_reject(cc, st, u, r,
                               "medication reference does not resolve to a coded Medication",
                               "medicationReference", err);
            continue;
        }
        int source = 0;
        if (cc->w) {
            if (cc->source_id[r->type] < 0)
                cc->source_id[r->type] = store_writer_source(cc->w, fhir_type_name(r->type));
            if ((source = cc->source_id[r->type]) < 0) {
                rc = cf_fail(err, CF_EINTERNAL, "too many provenance sources in the store");
                break;
            }
        }
        uint64_t written = 0;
        for (size_t k = 0; rc == CF_OK && k < r->ev_count; k++) {
            const fhir_event *e = &b->ev[r->ev_first + k];
            if (e->is_phi) {
                int seen = phi_seen(cc, sid, b, e);
                if (seen < 0) rc = cf_fail(err, CF_EINTERNAL, "out of memory");
                if (seen) continue;
            }
            written++;
            if (!cc->w) continue;
            const char *text = e->has_text ? b->heap.p + e->text_off : NULL;
            if (e->code_is_medref) {
                int64_t mi = strmap_find(&cc->meds, b->heap.p + e->desc_off, e->desc_len);
                size_t ml, dl = 0;
                const char *mc = strmap_str(&cc->medstr, cc->med_code[mi], &ml);
                const char *md = cc->med_desc[mi] != UINT32_MAX
                                     ? strmap_str(&cc->medstr, cc->med_desc[mi], &dl) : NULL;
                char code[1024];
                int n = snprintf(code, sizeof code, "%.*s%.*s", (int)e->code_len,
                                 b->heap.p + e->code_off, (int)ml, mc);
                if (n < 0 || (size_t)n >= sizeof code) n = (int)sizeof code - 1;
                rc = add_event(cc, sid, code, (size_t)n, md, dl, e, text, source, r->row, err);
            } else {
                rc = add_event(cc, sid, b->heap.p + e->code_off, e->code_len,
                               b->heap.p + e->desc_off, e->desc_len, e, text, source, r->row, err);
            }
        }
        if (rc) break;
        st->events += written;
        if (written) st->rows_with_events++;
        else st->rows_filtered++; /* nothing to record (say, a Patient without data) */
    }
    free(dup);
    return rc;
}

/* ------------------------------------------------------------------ NDJSON reader */

typedef struct {
    gzFile gz;
    in_file *f;
    char *buf;
    size_t cap, len;
    uint64_t line;   /* lines handed out so far */
    int eof;
} nd_reader;

static int nd_open(nd_reader *r, in_file *f, cf_err *err) {
    memset(r, 0, sizeof *r);
    r->f = f;
    r->gz = gzopen(f->path, "rb");
    if (!r->gz) return cf_fail_errno(err, CF_EINPUT, "%s: cannot open", f->path);
    gzbuffer(r->gz, 1 << 18);
    return CF_OK;
}

static void nd_close(nd_reader *r) {
    if (r->gz) gzclose(r->gz);
    free(r->buf);
    memset(r, 0, sizeof *r);
}

/* Reads more into r->buf (up to want bytes in total). Returns 0, 1 at a corrupt stream, -1 on
 * out-of-memory / I/O error (err set). */
static int nd_fill(nd_reader *r, size_t want, cf_err *err) {
    if (want > r->cap) {
        char *p = realloc(r->buf, want);
        if (!p) return cf_fail(err, CF_EINTERNAL, "out of memory"), -1;
        r->buf = p;
        r->cap = want;
    }
    while (!r->eof && r->len < want) {
        size_t room = want - r->len;
        if (room > (1u << 30)) room = 1u << 30;
        int n = gzread(r->gz, r->buf + r->len, (unsigned)room);
        if (n < 0) {
            int zerr;
            gzerror(r->gz, &zerr);
            if (zerr == Z_ERRNO) return cf_fail_errno(err, CF_EINPUT, "%s: read error", r->f->path), -1;
            r->eof = 1;
            return 1;
        }
        if (n == 0) {
            r->eof = 1;
            break;
        }
        r->len += (size_t)n;
    }
    return 0;
}

static uint64_t count_lines(const char *p, size_t n) {
    uint64_t c = 0;
    const char *end = p + n;
    while ((p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
        c++;
        p++;
    }
    return c;
}

/* Produces the next unit of an NDJSON file into u. Returns 1 (unit made), 0 (file done), or an
 * error status < 0 with err set. */
static int nd_next(nd_reader *r, unit *u, cf_err *err) {
    u->file = r->f->path;
    u->expected = r->f->expected;
    size_t want = FHIR_CHUNK;
    if (r->f->cap) { /* a sample: about cap bytes of whole lines */
        if (r->f->used >= r->f->cap) return 0;
        if (r->f->cap - r->f->used < want) want = (size_t)(r->f->cap - r->f->used) + 1;
    }
    for (;;) {
        int fr = nd_fill(r, want, err);
        if (fr < 0) return -1;
        if (fr == 1) { /* corrupt stream: one rejection, rest of the file unread */
            u->kind = U_REJECT;
            u->reject_row = r->line + 1 + count_lines(r->buf, r->len);
            u->reject_reason = "corrupt gzip stream (rest of the file unread)";
            r->len = 0;
            return 1;
        }
        if (r->len == 0) return 0;
        /* the last newline in the buffer closes the chunk */
        char *last = NULL;
        for (size_t i = r->len; i > 0; i--)
            if (r->buf[i - 1] == '\n') {
                last = r->buf + i - 1;
                break;
            }
        size_t take;
        if (last) take = (size_t)(last - r->buf) + 1;
        else if (r->eof) take = r->len;
        else if (r->len <= FHIR_MAX_LINE) { /* a long line: read more of it */
            want = r->len * 2 > (size_t)FHIR_MAX_LINE + 2 ? (size_t)FHIR_MAX_LINE + 2 : r->len * 2;
            if (want <= r->len) want = r->len + 1;
            continue;
        } else { /* longer than the cap: reject it and skip to its end */
            u->kind = U_REJECT;
            u->reject_row = ++r->line;
            u->reject_reason = "line longer than the size cap";
            for (;;) {
                r->len = 0;
                if (nd_fill(r, FHIR_CHUNK, err) < 0) return -1;
                char *nl = memchr(r->buf, '\n', r->len);
                if (nl) {
                    size_t rest = r->len - (size_t)(nl + 1 - r->buf);
                    memmove(r->buf, nl + 1, rest);
                    r->len = rest;
                    break;
                }
                if (r->eof) {
                    r->len = 0;
                    break;
                }
            }
            return 1;
        }
        /* hand the buffer to the unit; the remainder goes to a fresh buffer */
        size_t rest = r->len - take;
        size_t ncap = FHIR_CHUNK > rest ? FHIR_CHUNK : rest;
        char *nb = malloc(ncap);
        if (!nb) return cf_fail(err, CF_EINTERNAL, "out of memory"), -1;
        memcpy(nb, r->buf + take, rest);
        u->kind = U_NDJSON;
        u->data = r->buf;
        u->len = take;
        u->owns_data = 1;
        u->first_line = r->line + 1;
        r->line += count_lines(r->buf, take) + (last ? 0 : 1);
        r->f->used += take;
        r->buf = nb;
        r->cap = ncap;
        r->len = rest;
        return 1;
    }
}

/* ------------------------------------------------------------------ pipeline */

typedef struct {
    file_list *files;
    size_t next_file;
    nd_reader nd;
    int nd_open;
} producer;

/* Fills u with the next unit. Returns 1, 0 at the end of the input, or -1 (err set). */
static int produce(producer *p, unit *u, cf_err *err) {
    for (;;) {
        if (p->nd_open) {
            int rc = nd_next(&p->nd, u, err);
            if (rc != 0) return rc;
            nd_close(&p->nd);
            p->nd_open = 0;
        }
        if (p->next_file >= p->files->n) return 0;
        in_file *f = &p->files->v[p->next_file++];
        if (f->kind == F_BUNDLE) {
            if (f->skip) continue;
            u->kind = U_BUNDLE_FILE;
            u->file = f->path;
            u->expected = -1;
            return 1;
        }
        if (nd_open(&p->nd, f, err)) return -1;
        p->nd_open = 1;
    }
}

typedef struct {
    unit *ring;
    size_t nslots, head, count; /* ring of in-flight units in input order */
    size_t next_take;           /* next queued unit for workers (ring index) */
    size_t queued;
    int shutdown;
    pthread_mutex_t mu;
    pthread_cond_t work, done;
} pool;

static void *worker_main(void *arg) {
    pool *pl = arg;
    worker_state ws = {fhir_arena_new(), NULL, 0};
    pthread_mutex_lock(&pl->mu);
    for (;;) {
        while (!pl->shutdown && pl->queued == 0) pthread_cond_wait(&pl->work, &pl->mu);
        if (pl->shutdown) break;
        unit *u = &pl->ring[pl->next_take];
        pl->next_take = (pl->next_take + 1) % pl->nslots;
        pl->queued--;
        u->state = 2;
        pthread_mutex_unlock(&pl->mu);
        if (ws.arena) process_unit(u, &ws);
        else u->status = cf_fail(&u->err, CF_EINTERNAL, "out of memory");
        pthread_mutex_lock(&pl->mu);
        u->state = 3;
        pthread_cond_broadcast(&pl->done);
    }
    pthread_mutex_unlock(&pl->mu);
    fhir_arena_delete(ws.arena);
    free(ws.buf);
    fhir_read_release();
    return NULL;
}

static int thread_count(void) {
    const char *e = getenv("CLINFM_THREADS");
    long n = e && *e ? strtol(e, NULL, 10) : sysconf(_SC_NPROCESSORS_ONLN);
    if (!e && n > 4) n = 4;
    if (n < 1) n = 1;
    if (n > FHIR_MAX_THREADS) n = FHIR_MAX_THREADS;
    return (int)n;
}

static int run_sequential(producer *pr, commit_ctx *cc, cf_err *err) {
    worker_state ws = {fhir_arena_new(), NULL, 0};
    unit u;
    memset(&u, 0, sizeof u);
    fhir_batch_init(&u.batch);
    int rc = ws.arena ? CF_OK : cf_fail(err, CF_EINTERNAL, "out of memory");
    while (rc == CF_OK) {
        int pr_rc = produce(pr, &u, err);
        if (pr_rc < 0) {
            rc = err->code ? err->code : CF_EINTERNAL;
            break;
        }
        if (pr_rc == 0) break;
        process_unit(&u, &ws);
        if (u.status) {
            *err = u.err;
            rc = u.status;
        } else {
            rc = commit_unit(cc, &u, err);
        }
        unit_clear(&u);
    }
    unit_clear(&u);
    fhir_batch_free(&u.batch);
    fhir_arena_delete(ws.arena);
    free(ws.buf);
    fhir_read_release();
    return rc;
}

static int run_parallel(producer *pr, commit_ctx *cc, int nthreads, cf_err *err) {
    pool pl;
    memset(&pl, 0, sizeof pl);
    pl.nslots = (size_t)nthreads * 2 + 1;
    pl.ring = calloc(pl.nslots, sizeof *pl.ring);
    pthread_t th[FHIR_MAX_THREADS];
    int started = 0, rc = CF_OK, input_done = 0;
    if (!pl.ring) return cf_fail(err, CF_EINTERNAL, "out of memory");
    pthread_mutex_init(&pl.mu, NULL);
    pthread_cond_init(&pl.work, NULL);
    pthread_cond_init(&pl.done, NULL);
    for (; started < nthreads; started++)
        if (pthread_create(&th[started], NULL, worker_main, &pl) != 0) break;
    if (!started) {
        rc = cf_fail(err, CF_EINTERNAL, "cannot start worker threads");
        goto out;
    }
    for (;;) {
        /* keep the ring full */
        while (!input_done && pl.count < pl.nslots) {
            unit *u = &pl.ring[(pl.head + pl.count) % pl.nslots];
            int prc = produce(pr, u, err);
            if (prc < 0) {
                rc = err->code ? err->code : CF_EINTERNAL;
                goto out;
            }
            if (prc == 0) {
                input_done = 1;
                break;
            }
            pthread_mutex_lock(&pl.mu);
            u->state = 1;
            pl.count++;
            pl.queued++;
            pthread_cond_signal(&pl.work);
            pthread_mutex_unlock(&pl.mu);
        }
        if (pl.count == 0) break;
        unit *h = &pl.ring[pl.head];
        pthread_mutex_lock(&pl.mu);
        while (h->state != 3) pthread_cond_wait(&pl.done, &pl.mu);
        pthread_mutex_unlock(&pl.mu);
        if (h->status) {
            *err = h->err;
            rc = h->status;
            goto out;
        }
        rc = commit_unit(cc, h, err);
        if (rc) goto out;
        unit_clear(h);
        pl.head = (pl.head + 1) % pl.nslots;
        pl.count--;
    }
out:
    pthread_mutex_lock(&pl.mu);
    pl.shutdown = 1;
    pthread_cond_broadcast(&pl.work);
    pthread_mutex_unlock(&pl.mu);
    for (int i = 0; i < started; i++) pthread_join(th[i], NULL);
    for (size_t i = 0; i < pl.nslots; i++) {
        unit_clear(&pl.ring[i]);
        fhir_batch_free(&pl.ring[i].batch);
    }
    free(pl.ring);
    pthread_mutex_destroy(&pl.mu);
    pthread_cond_destroy(&pl.work);
    pthread_cond_destroy(&pl.done);
    return rc;
}

/* ------------------------------------------------------------------ entry points */

/* A sample of about budget input bytes in proportion: every k-th bundle, and each NDJSON file's
 * first lines; Patient and Medication NDJSON files, which later lines refer to, are read whole.
 * A kept bundle's cap holds its size (for the bytes read); *total gets all files' bytes. */
static int plan_sample(file_list *files, uint64_t budget, uint64_t *total, cf_err *err) {
    *total = 0;
    for (size_t i = 0; i < files->n; i++) {
        uint64_t b;
        int rc = csv_input_size(files->v[i].path, &b, err);
        if (rc) return rc;
        files->v[i].cap = b;
        *total += b;
    }
    double frac = *total > budget ? (double)budget / (double)*total : 1.0;
    size_t bundle = 0;
    for (size_t i = 0; i < files->n; i++) {
        in_file *f = &files->v[i];
        if (f->kind == F_BUNDLE) {
            /* kept when the running share crosses a whole bundle: the first, then ~frac of them */
            f->skip = bundle && floor((double)(bundle + 1) * frac) == floor((double)bundle * frac);
            bundle++;
        } else if (f->group >= 2) {
            double c = (double)f->cap * frac;
            f->cap = c > (double)(64 << 10) ? (uint64_t)c : (uint64_t)64 << 10;
        } else {
            f->cap = 0;
        }
    }
    return CF_OK;
}

/* The FHIR files input_path names (itself, or those under the folder); none is an error. */
static int gather(const char *input_path, file_list *files, int quiet, cf_err *err) {
    struct stat st;
    int rc;
    if (stat(input_path, &st) != 0) return cf_fail_errno(err, CF_EINPUT, "%s: cannot open", input_path);
    if (S_ISDIR(st.st_mode)) {
        rc = walk(files, input_path, 0, quiet, err);
    } else {
        int nd = ends_with_ci(input_path, ".ndjson") || ends_with_ci(input_path, ".ndjson.gz");
        rc = add_file(files, input_path, nd ? F_NDJSON : F_BUNDLE, nd ? type_from_name(input_path) : -1,
                      err);
    }
    if (!rc && files->n == 0)
        rc = cf_fail(err, CF_EINPUT, "%s: no FHIR files (*.json, *.json.gz, *.ndjson, "
                                     "*.ndjson.gz) found", input_path);
    if (rc) free_files(files);
    return rc;
}

int fhir_input_bytes(const char *input_path, uint64_t *bytes, uint64_t *n_files, cf_err *err) {
    file_list files = {0};
    *bytes = 0;
    *n_files = 0;
    int rc = gather(input_path, &files, 1, err);
    for (size_t i = 0; !rc && i < files.n; i++) {
        uint64_t b;
        if (!(rc = csv_input_size(files.v[i].path, &b, err))) *bytes += b;
    }
    if (!rc) *n_files = files.n;
    free_files(&files);
    return rc;
}

int fhir_ingest(const char *input_path, store_writer *w, ingest_report *rep,
                const fhir_options *opt, cf_err *err) {
    if (sodium_init() < 0) return cf_fail(err, CF_EINTERNAL, "libsodium failed to initialise");
    fhir_json_init();
    file_list files = {0};
    int sampling = opt && opt->sample_bytes;
    int rc = gather(input_path, &files, sampling, err);
    if (rc) return rc;
    qsort(files.v, files.n, sizeof *files.v, cmp_file);
    if (sampling && (rc = plan_sample(&files, opt->sample_bytes, opt->sample_total, err))) {
        free_files(&files);
        return rc;
    }
    commit_ctx cc;
    commit_init(&cc, w, rep, input_path, opt && opt->show_progress);
    ingest_report *r = rep;
    r->strict = opt ? opt->strict : r->strict;
    producer pr = {&files, 0, {0}, 0};
    int nthreads = thread_count();
    rc = nthreads <= 1 || (files.n == 1 && files.v[0].kind == F_BUNDLE)
             ? run_sequential(&pr, &cc, err)
             : run_parallel(&pr, &cc, nthreads, err);
    if (pr.nd_open) nd_close(&pr.nd);
    commit_free(&cc);
    if (sampling) {
        *opt->sample_read = 0;
        for (size_t i = 0; i < files.n; i++)
            *opt->sample_read += files.v[i].kind == F_NDJSON ? files.v[i].used : files.v[i].skip ? 0 : files.v[i].cap;
    }
    free_files(&files);
    return rc;
}

int fhir_ingest_buffer(const char *name, const char *data, size_t len, int kind, store_writer *w,
                       ingest_report *rep, const fhir_options *opt, cf_err *err) {
    if (sodium_init() < 0) return cf_fail(err, CF_EINTERNAL, "libsodium failed to initialise");
    commit_ctx cc;
    commit_init(&cc, w, rep, name, 0);
    if (opt) rep->strict = opt->strict;
    worker_state ws = {fhir_arena_new(), NULL, 0};
    unit u;
    memset(&u, 0, sizeof u);
    fhir_batch_init(&u.batch);
    u.file = name;
    u.data = (char *)data;
    u.len = len;
    u.first_line = 1;
    if (kind == FHIR_BUFFER_NDJSON) {
        u.kind = U_NDJSON;
        u.expected = type_from_name(name);
    } else {
        u.kind = U_BUNDLE_BUFFER;
        u.expected = -1;
    }
    int rc;
    if (!ws.arena) {
        rc = cf_fail(err, CF_EINTERNAL, "out of memory");
    } else {
        process_unit(&u, &ws);
        if (u.status) {
            *err = u.err;
            rc = u.status;
        } else {
            rc = commit_unit(&cc, &u, err);
        }
    }
    fhir_batch_free(&u.batch);
    fhir_arena_delete(ws.arena);
    free(ws.buf);
    commit_free(&cc);
    return rc;
}
