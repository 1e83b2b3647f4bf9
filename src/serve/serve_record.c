/* A patient's record from the event store or from FHIR resources; see serve_record.h.
 *
 * The FHIR path uses the FHIR reader's public mapping layer (ingest/fhir_map.h: fhir_map_bundle
 * fills a batch of resources with their events and subject references) and does here, for one
 * patient and one request, what the reader's commit step does for a whole export: resolve the
 * subject and Medication references. Nothing touches disk. */
#include "serve/serve_record.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ingest/fhir.h"
#include "ingest/fhir_map.h"
#include "util/ids.h"
#include "util/strmap.h"

struct serve_chunk {
    serve_chunk *next;
    size_t cap, used;
    char data[];
};

void serve_record_init(serve_record *r) { memset(r, 0, sizeof *r); }

void serve_record_free(serve_record *r) {
    CF_FREE_ALL(r->time, r->code, r->text, r->desc, r->source, r->value, r->row);
    for (serve_chunk *c = r->chunks, *n; c; c = n) {
        n = c->next;
        free(c);
    }
    memset(r, 0, sizeof *r);
}

const char *serve_record_strdup(serve_record *r, const char *s, size_t len) {
    serve_chunk *c = r->chunks;
    if (!c || c->cap - c->used < len + 1) {
        size_t cap = len + 1 > 16384 ? len + 1 : 16384;
        serve_chunk *nc = malloc(sizeof *nc + cap);
        if (!nc) return NULL;
        nc->cap = cap;
        nc->used = 0;
        nc->next = c;
        r->chunks = c = nc;
    }
    char *d = c->data + c->used;
    memcpy(d, s, len);
    d[len] = '\0';
    c->used += len + 1;
    return d;
}

static int reserve(serve_record *r, size_t n) {
    if (n <= r->cap) return 0;
    size_t cap = r->cap ? r->cap : 256;
    while (cap < n) cap *= 2;
    int ok = 1;
    void *p;
    /* each array grown in place; one that fails keeps its old block (freed with the record) */
#define GROW(field)                                              \
    if ((p = realloc(r->field, cap * sizeof *r->field))) r->field = p; \
    else ok = 0;
    GROW(time) GROW(code) GROW(text) GROW(desc) GROW(source) GROW(value) GROW(row)
#undef GROW
    if (!ok) return -1;
    r->cap = cap;
    return 0;
}

static void publish(serve_record *r, size_t n, int64_t prediction_time) {
    r->p = (serve_patient){.n = n, .time = r->time, .code = r->code, .value = r->value, .text = r->text,
                           .desc = r->desc, .source = r->source, .row = r->row,
                           .prediction_time = prediction_time};
}

/* ------------------------------------------------------------------ store */

static int key_equals(const store *s, int64_t idx, const char *key, size_t len) {
    size_t kl;
    const char *k = store_subject_key(s, (uint64_t)idx, &kl);
    return k && kl == len && !memcmp(k, key, len);
}

static int64_t find_patient(const store *s, const char *id) {
    size_t len = strlen(id);
    if (!len) return -1;
    if (s->subject_key_offset) {
        int64_t cand[2] = {fhir_subject_id(id, len), subject_id_from_string(id, len)};
        for (int i = 0; i < 2; i++) {
            int64_t idx = store_find_subject(s, cand[i]);
            if (idx >= 0 && key_equals(s, idx, id, len)) return idx;
        }
    }
    /* numeric subject ids (MIMIC-style stores, or subjects stored without a key) */
    char *end;
    errno = 0;
    long long v = strtoll(id, &end, 10);
    if (errno || *end || end == id) return -1;
    int64_t idx = store_find_subject(s, (int64_t)v);
    if (idx < 0) return -1;
    size_t kl;
    if (s->subject_key_offset && store_subject_key(s, (uint64_t)idx, &kl) && !key_equals(s, idx, id, len))
        return -1; /* this subject is known by a string key; the number is not its name */
    return idx;
}

int serve_record_from_store(serve_record *r, const store *s, const char *patient_id,
                            int64_t prediction_time, cf_err *err) {
    int64_t idx = find_patient(s, patient_id);
    if (idx < 0) return cf_fail(err, CF_EINPUT, "patient not in the store");
    uint64_t a = s->subject_start[idx], b = s->subject_start[idx + 1];
    size_t n = (size_t)(b - a);
    if (reserve(r, n ? n : 1)) return cf_fail(err, CF_EINTERNAL, "out of memory");
    snprintf(r->key, sizeof r->key, "%s", patient_id);
    size_t i = 0;
    for (uint64_t e = a; e < b; e++) {
        uint32_t c = s->code[e];
        /* Identifiers are for de-identification only: never scored, summarised or logged. */
        if (!strncmp(store_code_str(s, c), "PHI//", 5)) continue;
        r->time[i] = s->time[e];
        r->code[i] = store_code_str(s, c);
        r->desc[i] = store_code_desc(s, c);
        r->value[i] = s->numeric[e];
        r->source[i] = store_source_name(s, store_prov_source(s->prov[e]));
        r->row[i] = store_prov_row(s->prov[e]);
        r->text[i] = NULL;
        if (s->text[e]) {
            size_t tl;
            const char *t = store_text_str(s, s->text[e], &tl);
            if (!(r->text[i] = serve_record_strdup(r, t, tl)))
                return cf_fail(err, CF_EINTERNAL, "out of memory");
        }
        i++;
    }
    publish(r, i, prediction_time);
    return CF_OK;
}

/* ------------------------------------------------------------------ FHIR */

typedef struct {
    int64_t time;
    uint64_t row;
    int type;
    size_t ord;
} ev_order;

static int cmp_order(const void *pa, const void *pb) {
    const ev_order *a = pa, *b = pb;
    if (a->time != b->time) return a->time < b->time ? -1 : 1; /* TIME_NULL is the minimum */
    if (a->type != b->type) return a->type < b->type ? -1 : 1;
    if (a->row != b->row) return a->row < b->row ? -1 : 1;
    return a->ord < b->ord ? -1 : a->ord > b->ord;
}

static int heq(const fhir_batch *b, size_t off, size_t len, const char *s, size_t sl) {
    return len == sl && !memcmp(b->heap.p + off, s, sl);
}

int serve_record_from_fhir(serve_record *r, const cJSON *const *values, const char *const *names,
                           size_t n, const char *expected_id, int64_t prediction_time, cf_err *err) {
    fhir_batch b;
    fhir_batch_init(&b);
    strmap meds, seen;
    strmap_init(&meds);
    strmap_init(&seen);
    size_t *med_event = NULL; /* per meds id: the batch event holding its code */
    size_t cap_med = 0;
    ev_order *ord = NULL;
    int rc = CF_OK;
    for (size_t i = 0; i < n; i++) {
        if (!values[i] || cJSON_IsNull(values[i])) continue; /* the EHR could not prefetch it */
        if (fhir_map_bundle(&b, names[i], values[i])) {
            rc = cf_fail(err, CF_EINTERNAL, "out of memory mapping FHIR resources");
            goto done;
        }
    }
    /* the patient */
    const fhir_res *pat = NULL;
    for (size_t i = 0; i < b.n_res; i++) {
        const fhir_res *x = &b.res[i];
        if (!x->is_patient || x->outcome == FHIR_OUT_REJECTED) continue;
        if (pat && !heq(&b, x->subj_off, x->subj_len, b.heap.p + pat->subj_off, pat->subj_len)) {
            rc = cf_fail(err, CF_EINPUT, "%s: the resources hold more than one Patient",
                         names[0]);
            goto done;
        }
        if (!pat || (!pat->url_len && x->url_len)) pat = x;
    }
    const char *key;
    size_t key_len;
    if (pat) {
        key = b.heap.p + pat->subj_off;
        key_len = pat->subj_len;
        if (expected_id && !heq(&b, pat->subj_off, pat->subj_len, expected_id, strlen(expected_id))) {
            rc = cf_fail(err, CF_EINPUT, "the Patient resource is not the patient named by the "
                                         "request (context.patientId)");
            goto done;
        }
    } else if (expected_id && *expected_id) {
        key = expected_id;
        key_len = strlen(expected_id);
    } else {
        rc = cf_fail(err, CF_EINPUT, "the resources hold no Patient and the request names no "
                                     "patient id");
        goto done;
    }
    if (key_len >= sizeof r->key) {
        rc = cf_fail(err, CF_EINPUT, "the patient id is longer than %zu bytes", sizeof r->key - 1);
        goto done;
    }
    memcpy(r->key, key, key_len);
    r->key[key_len] = '\0';
    char urn[300];
    snprintf(urn, sizeof urn, "urn:uuid:%s", r->key);
    /* Medications: their codes, by every key that can reference them */
    for (size_t i = 0; i < b.n_res; i++) {
        const fhir_res *x = &b.res[i];
        if (!x->is_medication || !x->ev_count) continue;
        const char *k = b.heap.p + x->keys_off, *end = k + x->keys_len;
        while (k < end) {
            size_t kl = strlen(k);
            uint32_t before = meds.count;
            int64_t mi = strmap_intern(&meds, k, kl);
            if (mi >= 0 && (size_t)mi >= cap_med) {
                size_t nc = cap_med ? cap_med * 2 : 16;
                while (nc <= (size_t)mi) nc *= 2;
                size_t *t = realloc(med_event, nc * sizeof *t);
                if (t) {
                    med_event = t;
                    cap_med = nc;
                }
            }
            if (mi < 0 || (size_t)mi >= cap_med) {
                rc = cf_fail(err, CF_EINTERNAL, "out of memory");
                goto done;
            }
            if (meds.count != before) med_event[mi] = x->ev_first; /* first definition wins */
            k += kl + 1;
        }
    }
    /* the events, with their subject checked; a resource met twice (an Encounter read and the
     * encounters search both hold the encounter being discharged) counts once */
    ord = malloc((b.n_ev ? b.n_ev : 1) * sizeof *ord);
    if (!ord || reserve(r, b.n_ev ? b.n_ev : 1)) {
        rc = cf_fail(err, CF_EINTERNAL, "out of memory");
        goto done;
    }
    size_t m = 0;
    for (size_t i = 0; i < b.n_res; i++) {
        const fhir_res *x = &b.res[i];
        if (x->outcome == FHIR_OUT_REJECTED) {
            r->n_rejected++;
            continue;
        }
        if (x->outcome != FHIR_OUT_EVENTS || !x->ev_count) continue;
        if (x->id_len && !x->is_patient) {
            char tid[300];
            int tl = snprintf(tid, sizeof tid, "%d/%.*s", x->type, (int)x->id_len, b.heap.p + x->id_off);
            uint32_t before = seen.count;
            if (tl > 0 && (size_t)tl < sizeof tid) {
                if (strmap_intern(&seen, tid, (size_t)tl) < 0) {
                    rc = cf_fail(err, CF_EINTERNAL, "out of memory");
                    goto done;
                }
                if (seen.count == before) continue;
            }
        }
        int mine;
        switch (x->subj_kind) {
        case FHIR_SUBJ_KEY:
        case FHIR_SUBJ_PATIENT_ID: mine = heq(&b, x->subj_off, x->subj_len, r->key, key_len); break;
        case FHIR_SUBJ_URL:
            mine = heq(&b, x->subj_off, x->subj_len, urn, strlen(urn)) ||
                   (pat && pat->url_len &&
                    heq(&b, x->subj_off, x->subj_len, b.heap.p + pat->url_off, pat->url_len));
            break;
        default: mine = 0;
        }
        if (!mine) {
            rc = cf_fail(err, CF_EINPUT, "%s: a %s resource (entry %llu) belongs to another "
                                         "patient than the one requested",
                         names[0], fhir_type_name(x->type), (unsigned long long)x->row);
            goto done;
        }
        for (size_t k = 0; k < x->ev_count; k++) {
            size_t e = x->ev_first + k;
            const fhir_event *ev = &b.ev[e];
            /* Identifiers are for de-identification only: never scored, summarised or logged. */
            if (ev->is_phi) continue;
            if (ev->code_is_medref &&
                strmap_find(&meds, b.heap.p + ev->desc_off, ev->desc_len) < 0) {
                r->n_unresolved++;
                continue;
            }
            ord[m] = (ev_order){ev->time, x->row, x->type, e};
            m++;
        }
    }
    qsort(ord, m, sizeof *ord, cmp_order);
    for (size_t j = 0; j < m; j++) {
        size_t e = ord[j].ord;
        const fhir_event *ev = &b.ev[e];
        const char *code, *desc = "", *text = NULL;
        if (ev->code_is_medref) {
            int64_t mi = strmap_find(&meds, b.heap.p + ev->desc_off, ev->desc_len);
            const fhir_event *me = &b.ev[med_event[mi]];
            size_t cl = ev->code_len + me->code_len;
            char *tmp = malloc(cl + 1);
            if (!tmp) {
                rc = cf_fail(err, CF_EINTERNAL, "out of memory");
                goto done;
            }
            memcpy(tmp, b.heap.p + ev->code_off, ev->code_len);
            memcpy(tmp + ev->code_len, b.heap.p + me->code_off, me->code_len);
            code = serve_record_strdup(r, tmp, cl);
            free(tmp);
            if (code && me->desc_len) desc = serve_record_strdup(r, b.heap.p + me->desc_off, me->desc_len);
        } else {
            code = serve_record_strdup(r, b.heap.p + ev->code_off, ev->code_len);
            if (code && ev->desc_len) desc = serve_record_strdup(r, b.heap.p + ev->desc_off, ev->desc_len);
        }
        if (code && ev->has_text) text = serve_record_strdup(r, b.heap.p + ev->text_off, ev->text_len);
        if (!code || !desc || (ev->has_text && !text)) {
            rc = cf_fail(err, CF_EINTERNAL, "out of memory");
            goto done;
        }
        r->time[j] = ev->time;
        r->code[j] = code;
        r->desc[j] = desc;
        r->text[j] = text;
        r->value[j] = ev->numeric;
        r->source[j] = fhir_type_name(ord[j].type);
        r->row[j] = ord[j].row;
    }
    publish(r, m, prediction_time);
done:
    free(ord);
    free(med_event);
    strmap_free(&meds);
    strmap_free(&seen);
    fhir_batch_free(&b);
    return rc;
}
