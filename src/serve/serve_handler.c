/* Request handling for the service: routing, authentication and roles, limits, the CDS Hooks and
 * REST handlers, audit and metrics. See serve.h for the routes and docs/SERVE.md for the rules.
 *
 * Request bodies are parsed into a per-thread arena (the FHIR reader's, ingest/fhir_internal.h)
 * with a memory cap proportional to the body, after a depth scan; everything a handler needs from
 * the body is copied out (into a serve_record or small buffers) before the arena is reset, and
 * responses are built afterwards with ordinary allocations. */
#include "serve/serve.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <sodium.h>

#include "ingest/fhir_internal.h"
#include "serve/serve_cache.h"
#include "serve/serve_record.h"
#include "serve/serve_summary.h"
#include "util/progress.h"

#define MAX_CARDS 16
#define MAX_FEEDBACK 100

struct serve_ctx {
    serve_setup s;
    const serve_config *c;
    serve_metrics metrics;
    serve_cache *cache;         /* NULL when card_cache is 0 */
};

typedef struct {
    serve_ctx *s;
    const serve_request *rq;
    serve_response *rs;
    int route;
    char service_id[65];
    char path_id[257];          /* patient id from the URL */
    const serve_service *svc;
    char principal[600], role[16], user[256];
    char patient_id[256];       /* the patient the request was about (pseudonymised in audit) */
    int scored;
    serve_card_row cards[MAX_CARDS];
    char card_uuid[MAX_CARDS][37];
    char card_task[MAX_CARDS][65];
    size_t n_cards;
    fhir_arena *arena;          /* non-NULL while a parse tree is alive */
    int64_t wall_us;
} req;

/* ------------------------------------------------------------------ thread arena */

static pthread_key_t arena_key;
static pthread_once_t arena_once = PTHREAD_ONCE_INIT;
static void arena_destroy(void *p) { fhir_arena_delete(p); }
static void arena_key_init(void) { pthread_key_create(&arena_key, arena_destroy); }

static fhir_arena *thread_arena(void) {
    pthread_once(&arena_once, arena_key_init);
    fhir_arena *a = pthread_getspecific(arena_key);
    if (!a && (a = fhir_arena_new())) pthread_setspecific(arena_key, a);
    return a;
}

void serve_thread_release(void) {
    pthread_once(&arena_once, arena_key_init);
    fhir_arena *a = pthread_getspecific(arena_key);
    if (a) {
        fhir_arena_delete(a);
        pthread_setspecific(arena_key, NULL);
    }
}

static void parse_end(req *r) {
    if (r->arena) fhir_arena_end(r->arena);
    r->arena = NULL;
}

/* ------------------------------------------------------------------ responses */

typedef struct {
    char *p;
    size_t len, cap;
    int oom;
} sbuf;

static void sb_put(sbuf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->len + n + 1 > b->cap) {
        size_t nc = b->cap ? b->cap * 2 : 256;
        while (nc < b->len + n + 1) nc *= 2;
        char *t = realloc(b->p, nc);
        if (!t) {
            b->oom = 1;
            return;
        }
        b->p = t;
        b->cap = nc;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_json_str(sbuf *b, const char *s) {
    sb_put(b, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        char e[8];
        if (c == '"' || c == '\\') {
            e[0] = '\\';
            e[1] = (char)c;
            sb_put(b, e, 2);
        } else if (c < 0x20) {
            snprintf(e, sizeof e, "\\u%04x", c);
            sb_put(b, e, 6);
        } else {
            sb_put(b, s, 1);
        }
    }
    sb_put(b, "\"", 1);
}

static void set_body(req *r, char *body, size_t len, const char *type) {
    free(r->rs->body);
    r->rs->body = body;
    r->rs->len = len;
    r->rs->content_type = type;
}

static void fail(req *r, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void fail(req *r, int status, const char *fmt, ...) {
    parse_end(r);
    const char *code = status == 400   ? "bad_request"
                       : status == 401 ? "unauthorized"
                       : status == 403 ? "forbidden"
                       : status == 404 ? "not_found"
                       : status == 405 ? "method_not_allowed"
                       : status == 413 ? "payload_too_large"
                       : status == 415 ? "unsupported_media_type"
                       : status == 429 ? "too_many_requests"
                       : status == 503 ? "unavailable"
                                       : "internal";
    char detail[1200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    sbuf b = {0};
    sb_put(&b, "{\"error\":", 9);
    sb_json_str(&b, code);
    sb_put(&b, ",\"detail\":", 10);
    sb_json_str(&b, detail);
    sb_put(&b, "}", 1);
    r->rs->status = status;
    if (b.oom) {
        free(b.p);
        static const char oom[] = "{\"error\":\"internal\",\"detail\":\"out of memory\"}";
        char *p = malloc(sizeof oom);
        if (p) memcpy(p, oom, sizeof oom);
        set_body(r, p, p ? sizeof oom - 1 : 0, "application/json");
        r->rs->status = 500;
        return;
    }
    set_body(r, b.p, b.len, "application/json");
}

/* Takes ownership of o. */
static void reply_json(req *r, int status, cJSON *o) {
    parse_end(r);
    char *text = o ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    if (!text) {
        fail(r, 500, "out of memory building the response");
        return;
    }
    r->rs->status = status;
    set_body(r, text, strlen(text), "application/json");
}

void serve_response_free(serve_response *rs) {
    free(rs->body);
    memset(rs, 0, sizeof *rs);
}

/* ------------------------------------------------------------------ small helpers */

static int64_t wall_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int valid_id(const char *s, size_t max) {
    size_t n = strlen(s);
    if (!n || n > max) return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '-' || *s == '.' || *s == '_'))
            return 0;
    return 1;
}

static const char *arg(const req *r, const char *name) {
    for (size_t i = 0; i < r->rq->n_args; i++)
        if (r->rq->args[i].name && !strcmp(r->rq->args[i].name, name)) return r->rq->args[i].value;
    return NULL;
}

static double elapsed_ms(const req *r) { return (now_seconds() - r->rq->start_s) * 1000.0; }

static int over_time(req *r) {
    if (elapsed_ms(r) <= r->s->c->request_timeout_ms) return 0;
    fail(r, 503, "the request took longer than limits.request_timeout_ms; retry later");
    r->rs->retry_after = 1;
    return 1;
}

static void pct(double x, char *out, size_t cap) {
    double p = x * 100;
    if (p < 10) snprintf(out, cap, "%.1f", p);
    else snprintf(out, cap, "%.0f", p);
}

static const char *indicator_of(const serve_task *t, double risk) {
    return risk >= t->threshold_critical ? "critical"
           : risk >= t->threshold_warning ? "warning" : "info";
}

static void copy_str(char *dst, size_t cap, const cJSON *v) {
    dst[0] = '\0';
    if (cJSON_IsString(v)) snprintf(dst, cap, "%s", v->valuestring);
}

/* Markdown-escapes text from the record (descriptions can hold *, _, [ ...). */
static void md_escape(sbuf *b, const char *s) {
    for (; *s; s++) {
        if (strchr("\\`*_{}[]<>()#+!|~", *s)) sb_put(b, "\\", 1);
        if (*s == '\n' || *s == '\r') sb_put(b, " ", 1);
        else sb_put(b, s, 1);
    }
}

/* ------------------------------------------------------------------ body parsing */

/* Nesting depth check before parsing. A table marks the bytes that matter, so runs of ordinary
 * text (most of a FHIR body) are skipped quickly. */
static int depth_ok(const char *s, size_t len, int max) {
    static const unsigned char special[256] = {['"'] = 1, ['\\'] = 2, ['['] = 3, ['{'] = 3,
                                               [']'] = 4, ['}'] = 4};
    int d = 0, in_str = 0;
    const unsigned char *p = (const unsigned char *)s, *end = p + len;
    while (p < end) {
        while (p < end && !special[*p]) p++;
        if (p >= end) break;
        unsigned char k = special[*p++];
        if (in_str) {
            if (k == 2) p++; /* skip the escaped byte */
            else if (k == 1) in_str = 0;
        } else if (k == 1) {
            in_str = 1;
        } else if (k == 3) {
            if (++d > max) return 0;
        } else if (k == 4 && d > 0) {
            d--;
        }
    }
    return 1;
}

static int json_type_ok(const char *ct) {
    if (!ct) return 0;
    size_t n = strcspn(ct, ";");
    while (n && (ct[n - 1] == ' ' || ct[n - 1] == '\t')) n--;
    return (n == 16 && !strncasecmp(ct, "application/json", 16)) ||
           (n == 21 && !strncasecmp(ct, "application/fhir+json", 21));
}

/* Parses the body into the thread arena; NULL with the response set on failure. */
static cJSON *parse_body(req *r) {
    const serve_request *rq = r->rq;
    const serve_config *c = r->s->c;
    if (rq->body_too_large || rq->body_len > c->max_body) {
        fail(r, 413, "the request body is larger than limits.max_body_bytes (%zu)", c->max_body);
        return NULL;
    }
    if (!json_type_ok(rq->content_type)) {
        fail(r, 415, "send the body as application/json or application/fhir+json");
        return NULL;
    }
    if (!rq->body_len) {
        fail(r, 400, "the request needs a JSON body");
        return NULL;
    }
    if (!depth_ok(rq->body, rq->body_len, c->max_depth)) {
        fail(r, 400, "the JSON body is nested deeper than limits.max_json_depth (%d)", c->max_depth);
        return NULL;
    }
    fhir_arena *a = thread_arena();
    if (!a) {
        fail(r, 500, "out of memory");
        return NULL;
    }
    fhir_arena_begin(a, rq->body_len * 12 + ((size_t)1 << 20));
    r->arena = a;
    const char *why;
    size_t off;
    cJSON *root = fhir_json_parse(a, rq->body, rq->body_len, &why, &off);
    if (!root) {
        if (fhir_arena_exhausted(a))
            fail(r, 413, "the JSON body needs more memory to parse than its size allows");
        else
            fail(r, 400, "the body is not valid JSON (%s near byte %zu)", why ? why : "parse error",
                 off);
        return NULL;
    }
    if (!cJSON_IsObject(root)) {
        fail(r, 400, "the JSON body must be an object");
        return NULL;
    }
    return root;
}

/* ------------------------------------------------------------------ patients and scores */

static int64_t prediction_time(const req *r) {
    return r->s->c->prediction_time_now ? r->wall_us : TIME_NULL;
}

/* From FHIR values when any is present, else from the store by id. 1 found, 0 no such patient
 * (no response set), -1 response set. Ends the parse arena. */
static int load_patient(req *r, const cJSON *const *vals, const char *const *names, size_t n,
                        const char *patient_id, serve_record *rec) {
    size_t present = 0;
    for (size_t i = 0; i < n; i++) present += vals[i] && !cJSON_IsNull(vals[i]);
    cf_err err = {0};
    if (present) {
        int rc = serve_record_from_fhir(rec, vals, names, n, patient_id && *patient_id ? patient_id : NULL,
                                        prediction_time(r), &err);
        parse_end(r);
        if (rc) {
            fail(r, rc == CF_EINPUT ? 400 : 500, "%s", err.msg);
            return -1;
        }
        snprintf(r->patient_id, sizeof r->patient_id, "%s", rec->key);
        return 1;
    }
    parse_end(r);
    if (!patient_id || !*patient_id) {
        fail(r, 400, "name a patient (patientId) or send FHIR resources");
        return -1;
    }
    snprintf(r->patient_id, sizeof r->patient_id, "%s", patient_id);
    if (!r->s->s.store) return 0;
    int rc = serve_record_from_store(rec, r->s->s.store, patient_id, prediction_time(r), &err);
    if (rc == CF_EINPUT) return 0;
    if (rc) {
        fail(r, 500, "%s", err.msg);
        return -1;
    }
    return 1;
}

static int check_score(const serve_score *sc) {
    return isfinite(sc->risk) && isfinite(sc->lo) && isfinite(sc->hi) && sc->lo >= 0 &&
           sc->hi <= 1 && sc->lo <= sc->risk + 1e-12 && sc->risk <= sc->hi + 1e-12 &&
           sc->n_reasons <= SERVE_MAX_REASONS;
}

/* Scores rec for t, from the card cache when it holds this exact (predictor, task, patient,
 * prediction time, events) and through the predictor otherwise. The caller builds the card and
 * the audit rows either way. */
static int score_one(req *r, const serve_record *rec, const serve_task *t, serve_score *sc) {
    cf_err err = {0};
    memset(sc, 0, sizeof *sc);
    const serve_predictor *p = r->s->s.predictor;
    serve_cache *cache = r->s->cache;
    serve_metrics *mt = &r->s->metrics;
    serve_cache_key key;
    if (cache) {
        serve_cache_key_make(&key, p, t->task_id, r->patient_id, &rec->p);
        if (serve_cache_get(cache, &key, sc)) {
            atomic_fetch_add_explicit(&mt->cache_hits, 1, memory_order_relaxed);
            r->scored = 1;
            return 0;
        }
        atomic_fetch_add_explicit(&mt->cache_misses, 1, memory_order_relaxed);
    }
    int rc = p->score(p->ctx, &rec->p, t, sc, &err);
    r->scored = 1;
    if (rc) {
        fail(r, rc == CF_EINPUT ? 400 : 500, "scoring %s: %s", t->task_id, err.msg);
        return -1;
    }
    if (!check_score(sc)) {
        fail(r, 500, "the predictor returned an invalid risk for task %s", t->task_id);
        return -1;
    }
    for (size_t k = 0; k < sc->n_reasons; k++)
        if (sc->reason[k].event >= rec->p.n) {
            fail(r, 500, "the predictor cited an event outside the record for task %s", t->task_id);
            return -1;
        }
    if (cache) {
        serve_cache_put(cache, &key, sc);
        atomic_store_explicit(&mt->cache_entries, serve_cache_size(cache), memory_order_relaxed);
    }
    return 0;
}

static void date_of(int64_t t, char *out, size_t cap) {
    char b[48];
    if (t == TIME_NULL) snprintf(out, cap, "undated");
    else snprintf(out, cap, "%.10s", serve_time_iso(t, b, sizeof b));
}

static const char *event_text(const serve_patient *p, size_t i) {
    return p->desc && p->desc[i] && p->desc[i][0] ? p->desc[i] : p->code[i];
}

/* ------------------------------------------------------------------ discovery, health, metrics */

static void h_discovery(req *r) {
    const serve_config *c = r->s->c;
    cJSON *root = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(root, "services");
    for (size_t i = 0; i < c->n_services; i++) {
        const serve_service *sv = &c->services[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "hook", sv->hook);
        cJSON_AddStringToObject(o, "id", sv->id);
        cJSON_AddStringToObject(o, "title", sv->title);
        cJSON_AddStringToObject(o, "description", sv->description);
        cJSON_AddItemToObject(o, "prefetch", cJSON_Duplicate(sv->prefetch, 1));
        cJSON_AddItemToArray(arr, o);
    }
    reply_json(r, 200, root);
}

static void h_health(req *r) {
    const serve_predictor *p = r->s->s.predictor;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "status", "ok");
    cJSON_AddStringToObject(o, "model", p->model_name);
    cJSON_AddStringToObject(o, "model_version", p->model_version);
    cJSON_AddBoolToObject(o, "store", r->s->s.store != NULL);
    cJSON_AddNumberToObject(o, "tasks", (double)r->s->c->n_tasks);
    reply_json(r, 200, o);
}

static void h_metrics(req *r) {
    size_t len;
    const serve_predictor *p = r->s->s.predictor;
    char *text = serve_metrics_text(&r->s->metrics, p->model_name, p->model_version, &len);
    if (!text) {
        fail(r, 500, "out of memory");
        return;
    }
    r->rs->status = 200;
    set_body(r, text, len, "text/plain; version=0.0.4; charset=utf-8");
}

static void h_tasks(req *r) {
    const serve_config *c = r->s->c;
    cJSON *o = cJSON_CreateObject();
    cJSON *m = cJSON_AddObjectToObject(o, "model");
    cJSON_AddStringToObject(m, "name", r->s->s.predictor->model_name);
    cJSON_AddStringToObject(m, "version", r->s->s.predictor->model_version);
    cJSON *arr = cJSON_AddArrayToObject(o, "tasks");
    for (size_t i = 0; i < c->n_tasks; i++) {
        cJSON *t = cJSON_CreateObject();
        cJSON_AddStringToObject(t, "id", c->tasks[i].task_id);
        cJSON_AddStringToObject(t, "title", c->tasks[i].title);
        cJSON_AddNumberToObject(t, "warning", c->tasks[i].threshold_warning);
        cJSON_AddNumberToObject(t, "critical", c->tasks[i].threshold_critical);
        cJSON_AddItemToArray(arr, t);
    }
    reply_json(r, 200, o);
}

/* ------------------------------------------------------------------ CDS Hooks */

static cJSON *make_card(req *r, const serve_record *rec, const serve_task *t, const serve_score *sc,
                        const char *indicator, const char *uuid) {
    const serve_predictor *p = r->s->s.predictor;
    const serve_config *c = r->s->c;
    char rp[16], lo[16], hi[16], summary[200];
    pct(sc->risk, rp, sizeof rp);
    pct(sc->lo, lo, sizeof lo);
    pct(sc->hi, hi, sizeof hi);
    snprintf(summary, sizeof summary, "%s: %s%% risk (95%% CI %s-%s%%)", t->title, rp, lo, hi);
    if (strlen(summary) > 139) { /* titles are capped at 80 characters, so this cannot happen */
        size_t n = 136;
        while (n && ((unsigned char)summary[n] & 0xC0) == 0x80) n--;
        memcpy(summary + n, "...", 4);
    }
    sbuf d = {0};
    char line[512], when[32];
    snprintf(line, sizeof line, "**%s%% risk** (95%% interval %s-%s%%) of ", rp, lo, hi);
    sb_put(&d, line, strlen(line));
    md_escape(&d, t->title);
    int64_t pt = rec->p.prediction_time;
    if (pt == TIME_NULL)
        for (size_t i = 0; i < rec->p.n; i++)
            if (rec->p.time[i] != TIME_NULL && (pt == TIME_NULL || rec->p.time[i] > pt)) pt = rec->p.time[i];
    date_of(pt, when, sizeof when);
    snprintf(line, sizeof line, ", estimated by %s %s from %zu events in the record up to %s.\n\n",
             p->model_name, p->model_version, sc->n_events_used, when);
    sb_put(&d, line, strlen(line));
    if (sc->n_reasons) {
        const char *h = "Events in this patient's record that most raised the estimate:\n\n";
        sb_put(&d, h, strlen(h));
        for (size_t k = 0; k < sc->n_reasons; k++) {
            const serve_reason *re = &sc->reason[k];
            date_of(rec->p.time[re->event], when, sizeof when);
            snprintf(line, sizeof line, "- %s: ", when);
            sb_put(&d, line, strlen(line));
            md_escape(&d, event_text(&rec->p, re->event));
            sb_put(&d, " (", 2);
            md_escape(&d, rec->p.code[re->event]);
            if (re->n_events > 1) snprintf(line, sizeof line, "; %zu times, latest shown", re->n_events);
            else line[0] = '\0';
            sb_put(&d, line, strlen(line));
            snprintf(line, sizeof line, "): +%.1f percentage points\n", re->contribution * 100);
            sb_put(&d, line, strlen(line));
        }
        sb_put(&d, "\n", 1);
    } else {
        const char *h = "No single event in the record raised the estimate.\n\n";
        sb_put(&d, h, strlen(h));
    }
    const char *foot = "This estimate is advice for the clinician. It does not order, change or "
                       "document anything.";
    sb_put(&d, foot, strlen(foot));
    if (d.oom) {
        free(d.p);
        return NULL;
    }
    cJSON *card = cJSON_CreateObject();
    cJSON_AddStringToObject(card, "uuid", uuid);
    cJSON_AddStringToObject(card, "summary", summary);
    cJSON_AddStringToObject(card, "indicator", indicator);
    cJSON_AddStringToObject(card, "detail", d.p);
    free(d.p);
    cJSON *src = cJSON_AddObjectToObject(card, "source");
    char label[300];
    snprintf(label, sizeof label, "clinfm %s %s", p->model_name, p->model_version);
    cJSON_AddStringToObject(src, "label", label);
    cJSON *topic = cJSON_AddObjectToObject(src, "topic");
    cJSON_AddStringToObject(topic, "system", "urn:clinfm:task");
    cJSON_AddStringToObject(topic, "code", t->task_id);
    cJSON_AddStringToObject(topic, "display", t->title);
    cJSON *ors = cJSON_AddArrayToObject(card, "overrideReasons");
    for (size_t i = 0; i < c->n_override_reasons; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "system", c->override_reasons[i].system);
        cJSON_AddStringToObject(o, "code", c->override_reasons[i].code);
        cJSON_AddStringToObject(o, "display", c->override_reasons[i].display);
        cJSON_AddItemToArray(ors, o);
    }
    return card;
}

static void new_uuid(char out[37]) {
    unsigned char b[16];
    randombytes_buf(b, sizeof b);
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
             b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
             b[14], b[15]);
}

static void h_hook(req *r) {
    const serve_service *sv = r->svc;
    cJSON *root = parse_body(r);
    if (!root) return;
    const cJSON *hook = cJSON_GetObjectItemCaseSensitive(root, "hook");
    const cJSON *inst = cJSON_GetObjectItemCaseSensitive(root, "hookInstance");
    const cJSON *ctx = cJSON_GetObjectItemCaseSensitive(root, "context");
    const cJSON *prefetch = cJSON_GetObjectItemCaseSensitive(root, "prefetch");
    if (!cJSON_IsString(hook) || strcmp(hook->valuestring, sv->hook)) {
        fail(r, 400, "hook must be \"%s\" for this service", sv->hook);
        return;
    }
    if (!cJSON_IsString(inst) || !inst->valuestring[0] || strlen(inst->valuestring) > 128) {
        fail(r, 400, "hookInstance must be a non-empty string of at most 128 characters");
        return;
    }
    if (!cJSON_IsObject(ctx)) {
        fail(r, 400, "context must be an object");
        return;
    }
    const cJSON *pid = cJSON_GetObjectItemCaseSensitive(ctx, "patientId");
    const cJSON *uid = cJSON_GetObjectItemCaseSensitive(ctx, "userId");
    const cJSON *eid = cJSON_GetObjectItemCaseSensitive(ctx, "encounterId");
    if (!cJSON_IsString(pid) || !valid_id(pid->valuestring, 64)) {
        fail(r, 400, "context.patientId must be a FHIR id (1-64 letters, digits, '-', '.')");
        return;
    }
    if (uid && (!cJSON_IsString(uid) || strlen(uid->valuestring) > 200)) {
        fail(r, 400, "context.userId must be a string of at most 200 characters");
        return;
    }
    if (!strcmp(sv->hook, "encounter-discharge") && (!cJSON_IsString(eid) || !eid->valuestring[0])) {
        fail(r, 400, "context.encounterId is required for encounter-discharge");
        return;
    }
    if (prefetch && !cJSON_IsObject(prefetch) && !cJSON_IsNull(prefetch)) {
        fail(r, 400, "prefetch must be an object");
        return;
    }
    copy_str(r->user, sizeof r->user, uid);
    char patient[80];
    copy_str(patient, sizeof patient, pid);
    snprintf(r->patient_id, sizeof r->patient_id, "%s", patient);
    /* prefetch values, in the order received */
    size_t n = 0;
    const cJSON *v, *pf = cJSON_IsObject(prefetch) ? prefetch : NULL;
    cJSON_ArrayForEach(v, pf) n++;
    if (n > 64) {
        fail(r, 400, "prefetch has more than 64 entries");
        return;
    }
    const cJSON *vals[64];
    char name_buf[64][80];
    const char *names[64];
    n = 0;
    cJSON_ArrayForEach(v, pf) {
        snprintf(name_buf[n], sizeof name_buf[n], "prefetch.%.60s", v->string);
        names[n] = name_buf[n];
        vals[n++] = v;
    }
    serve_record rec;
    serve_record_init(&rec);
    int found = load_patient(r, vals, names, n, patient, &rec);
    if (found < 0) goto done;
    cJSON *out = cJSON_CreateObject();
    cJSON *cards = cJSON_AddArrayToObject(out, "cards");
    if (found && !over_time(r)) {
        for (size_t i = 0; i < sv->n_tasks; i++) {
            const serve_task *t = serve_config_task(r->s->c, sv->tasks[i]);
            serve_score sc;
            if (score_one(r, &rec, t, &sc) || over_time(r)) {
                cJSON_Delete(out);
                goto done;
            }
            const char *ind = indicator_of(t, sc.risk);
            if (!strcmp(ind, "info") && !sv->show_info) continue;
            size_t k = r->n_cards;
            if (k >= MAX_CARDS) break;
            new_uuid(r->card_uuid[k]);
            snprintf(r->card_task[k], sizeof r->card_task[k], "%s", t->task_id);
            cJSON *card = make_card(r, &rec, t, &sc, ind, r->card_uuid[k]);
            if (!card) {
                cJSON_Delete(out);
                fail(r, 500, "out of memory building a card");
                goto done;
            }
            cJSON_AddItemToArray(cards, card);
            r->cards[k] = (serve_card_row){r->card_uuid[k], sv->id, sv->hook, r->card_task[k], ind,
                                           sc.risk, sc.lo, sc.hi};
            r->n_cards++;
        }
    } else if (r->rs->status == 503) {
        cJSON_Delete(out);
        goto done;
    }
    reply_json(r, 200, out);
done:
    serve_record_free(&rec);
}

static int coding_allowed(const serve_config *c, const char *system, const char *code) {
    for (size_t i = 0; i < c->n_override_reasons; i++)
        if (!strcmp(c->override_reasons[i].code, code) &&
            (!system || !strcmp(c->override_reasons[i].system, system)))
            return 1;
    return 0;
}

typedef struct {
    char card[37], outcome[12], code[65], system[257], display[257], time[40];
    char *comment;
} fb_item;

static void h_feedback(req *r) {
    const serve_config *c = r->s->c;
    cJSON *root = parse_body(r);
    if (!root) return;
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(root, "feedback");
    int n = cJSON_IsArray(arr) ? cJSON_GetArraySize(arr) : -1;
    if (n < 1 || n > MAX_FEEDBACK) {
        fail(r, 400, "feedback must be an array of 1 to %d items", MAX_FEEDBACK);
        return;
    }
    fb_item *items = calloc((size_t)n, sizeof *items);
    serve_feedback_row *rows = calloc((size_t)n, sizeof *rows);
    if (!items || !rows) {
        fail(r, 500, "out of memory");
        goto done;
    }
    int i = 0;
    const cJSON *f;
    cJSON_ArrayForEach(f, arr) {
        fb_item *it = &items[i];
        const cJSON *card = cJSON_GetObjectItemCaseSensitive(f, "card");
        const cJSON *outcome = cJSON_GetObjectItemCaseSensitive(f, "outcome");
        const cJSON *ts = cJSON_GetObjectItemCaseSensitive(f, "outcomeTimestamp");
        const cJSON *orr = cJSON_GetObjectItemCaseSensitive(f, "overrideReason");
        if (!cJSON_IsObject(f) || !cJSON_IsString(card) || strlen(card->valuestring) != 36) {
            fail(r, 400, "feedback[%d].card must be the uuid of a card", i);
            goto done;
        }
        if (!cJSON_IsString(outcome) || (strcmp(outcome->valuestring, "accepted") &&
                                         strcmp(outcome->valuestring, "overridden"))) {
            fail(r, 400, "feedback[%d].outcome must be \"accepted\" or \"overridden\"", i);
            goto done;
        }
        int64_t tv;
        if (!cJSON_IsString(ts) || strlen(ts->valuestring) >= sizeof it->time ||
            time_parse_iso(ts->valuestring, strlen(ts->valuestring), &tv, NULL)) {
            fail(r, 400, "feedback[%d].outcomeTimestamp must be an ISO 8601 date-time", i);
            goto done;
        }
        copy_str(it->card, sizeof it->card, card);
        copy_str(it->outcome, sizeof it->outcome, outcome);
        copy_str(it->time, sizeof it->time, ts);
        if (orr) {
            if (strcmp(it->outcome, "overridden") || !cJSON_IsObject(orr)) {
                fail(r, 400, "feedback[%d].overrideReason is an object and only for overridden "
                             "cards", i);
                goto done;
            }
            const cJSON *reason = cJSON_GetObjectItemCaseSensitive(orr, "reason");
            const cJSON *comment = cJSON_GetObjectItemCaseSensitive(orr, "userComment");
            if (reason) {
                const cJSON *code = cJSON_GetObjectItemCaseSensitive(reason, "code");
                const cJSON *sys = cJSON_GetObjectItemCaseSensitive(reason, "system");
                if (!cJSON_IsString(code) || (sys && !cJSON_IsString(sys)) ||
                    !coding_allowed(c, cJSON_IsString(sys) ? sys->valuestring : NULL,
                                    code->valuestring)) {
                    fail(r, 400, "feedback[%d].overrideReason.reason must be one of the card's "
                                 "overrideReasons", i);
                    goto done;
                }
                copy_str(it->code, sizeof it->code, code);
                for (size_t k = 0; k < c->n_override_reasons; k++)
                    if (!strcmp(c->override_reasons[k].code, it->code)) {
                        snprintf(it->system, sizeof it->system, "%s", c->override_reasons[k].system);
                        snprintf(it->display, sizeof it->display, "%s",
                                 c->override_reasons[k].display);
                    }
            }
            if (comment) {
                if (!cJSON_IsString(comment) || strlen(comment->valuestring) > 2000) {
                    fail(r, 400, "feedback[%d].overrideReason.userComment must be a string of at "
                                 "most 2000 characters", i);
                    goto done;
                }
                if (!(it->comment = strdup(comment->valuestring))) {
                    fail(r, 500, "out of memory");
                    goto done;
                }
            }
        }
        i++;
    }
    parse_end(r);
    for (i = 0; i < n; i++) {
        int k = serve_db_card_known(r->s->s.db, items[i].card, r->svc->id);
        if (k < 0) {
            fail(r, 500, "the audit database could not be read");
            goto done;
        }
        if (!k) {
            fail(r, 404, "feedback[%d].card was not issued by this service", i);
            goto done;
        }
        fb_item *it = &items[i];
        rows[i] = (serve_feedback_row){r->wall_us, r->svc->id, it->card, it->outcome,
                                       it->code[0] ? it->code : NULL,
                                       it->system[0] ? it->system : NULL,
                                       it->display[0] ? it->display : NULL, it->comment, it->time,
                                       r->principal};
    }
    cf_err err = {0};
    if (serve_db_feedback(r->s->s.db, rows, (size_t)n, &err)) {
        fail(r, 500, "%s", err.msg);
        goto done;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "recorded", n);
    reply_json(r, 200, o);
done:
    if (items)
        for (i = 0; i < n; i++) free(items[i].comment);
    free(items);
    free(rows);
}

/* ------------------------------------------------------------------ REST */

/* The patient of a /v1 call: a FHIR body, {"patientId": ...}, or the URL. 1 found, -1 response
 * set (404 included). */
static int v1_patient(req *r, serve_record *rec, const char **origin) {
    int found;
    if (r->path_id[0]) {
        *origin = "store";
        found = load_patient(r, NULL, NULL, 0, r->path_id, rec);
    } else {
        cJSON *root = parse_body(r);
        if (!root) return -1;
        const cJSON *rt = cJSON_GetObjectItemCaseSensitive(root, "resourceType");
        const cJSON *pid = cJSON_GetObjectItemCaseSensitive(root, "patientId");
        if (cJSON_IsString(rt)) {
            const cJSON *vals[1] = {root};
            const char *names[1] = {"body"};
            *origin = "request";
            found = load_patient(r, vals, names, 1, NULL, rec);
        } else if (cJSON_IsString(pid) && valid_id(pid->valuestring, 64)) {
            char id[80];
            copy_str(id, sizeof id, pid);
            *origin = "store";
            found = load_patient(r, NULL, NULL, 0, id, rec);
        } else {
            fail(r, 400, "send a FHIR Bundle or resource, or {\"patientId\": \"<FHIR id>\"}");
            return -1;
        }
    }
    if (found == 0) {
        fail(r, 404, "%s", r->s->s.store ? "no such patient in the store"
                                         : "no store is loaded; send FHIR resources instead");
        return -1;
    }
    return found;
}

static void h_risk(req *r) {
    const serve_config *c = r->s->c;
    const char *task = arg(r, "task");
    if (task && !serve_config_task(c, task)) {
        fail(r, 404, "no task with that id is loaded (see GET /v1/tasks)");
        return;
    }
    serve_record rec;
    serve_record_init(&rec);
    const char *origin = "";
    if (v1_patient(r, &rec, &origin) < 0 || over_time(r)) goto done;
    cJSON *o = cJSON_CreateObject();
    cJSON *pt = cJSON_AddObjectToObject(o, "patient");
    cJSON_AddStringToObject(pt, "source", origin);
    cJSON_AddNumberToObject(pt, "events", (double)rec.p.n);
    cJSON_AddNumberToObject(pt, "resources_rejected", (double)rec.n_rejected);
    cJSON *m = cJSON_AddObjectToObject(o, "model");
    cJSON_AddStringToObject(m, "name", r->s->s.predictor->model_name);
    cJSON_AddStringToObject(m, "version", r->s->s.predictor->model_version);
    cJSON *arr = cJSON_AddArrayToObject(o, "predictions");
    for (size_t i = 0; i < c->n_tasks; i++) {
        const serve_task *t = &c->tasks[i];
        if (task && strcmp(task, t->task_id)) continue;
        serve_score sc;
        if (score_one(r, &rec, t, &sc) || over_time(r)) {
            cJSON_Delete(o);
            goto done;
        }
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "task", t->task_id);
        cJSON_AddStringToObject(e, "title", t->title);
        cJSON_AddNumberToObject(e, "risk", round(sc.risk * 1e4) / 1e4);
        cJSON *iv = cJSON_AddArrayToObject(e, "interval95");
        cJSON_AddItemToArray(iv, cJSON_CreateNumber(round(sc.lo * 1e4) / 1e4));
        cJSON_AddItemToArray(iv, cJSON_CreateNumber(round(sc.hi * 1e4) / 1e4));
        cJSON_AddStringToObject(e, "indicator", indicator_of(t, sc.risk));
        cJSON_AddNumberToObject(e, "events_used", (double)sc.n_events_used);
        cJSON *rs = cJSON_AddArrayToObject(e, "reasons");
        for (size_t k = 0; k < sc.n_reasons; k++) {
            cJSON *x = cJSON_CreateObject();
            cJSON_AddStringToObject(x, "text", event_text(&rec.p, sc.reason[k].event));
            cJSON_AddNumberToObject(x, "contribution", round(sc.reason[k].contribution * 1e4) / 1e4);
            cJSON_AddNumberToObject(x, "events_with_code", (double)sc.reason[k].n_events);
            cJSON_AddItemToObject(x, "latest_event", serve_evidence(&rec.p, sc.reason[k].event));
            cJSON_AddItemToArray(rs, x);
        }
        cJSON_AddItemToArray(arr, e);
    }
    reply_json(r, 200, o);
done:
    serve_record_free(&rec);
}

static void h_summary(req *r) {
    serve_record rec;
    serve_record_init(&rec);
    const char *origin = "";
    if (v1_patient(r, &rec, &origin) < 0 || over_time(r)) goto done;
    cJSON *o = serve_summary(&rec.p, &r->s->c->summary);
    if (!o) {
        fail(r, 500, "out of memory building the summary");
        goto done;
    }
    cJSON_AddStringToObject(o, "source", origin);
    reply_json(r, 200, o);
done:
    serve_record_free(&rec);
}

/* ------------------------------------------------------------------ routing and auth */

enum { AUTH_NONE, AUTH_CDS, AUTH_V1, AUTH_OPS };

typedef struct {
    int route;
    const char *method;
    int auth;
} route_def;

/* Splits path into a route; fills r->service_id / r->path_id. -1: no such path. */
static int match_route(req *r, const char *path) {
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/') n--; /* tolerate a trailing slash */
    char p[512];
    if (n >= sizeof p) return -1;
    memcpy(p, path, n);
    p[n] = '\0';
    if (!strcmp(p, "/cds-services")) return SERVE_R_DISCOVERY;
    if (!strcmp(p, "/healthz")) return SERVE_R_HEALTH;
    if (!strcmp(p, "/metrics")) return SERVE_R_METRICS;
    if (!strcmp(p, "/v1/tasks")) return SERVE_R_TASKS;
    if (!strcmp(p, "/v1/risk")) return SERVE_R_RISK;
    if (!strcmp(p, "/v1/summary")) return SERVE_R_SUMMARY;
    if (!strncmp(p, "/cds-services/", 14)) {
        char *id = p + 14, *slash = strchr(id, '/');
        int route = SERVE_R_HOOK;
        if (slash) {
            if (strcmp(slash, "/feedback")) return -1;
            *slash = '\0';
            route = SERVE_R_FEEDBACK;
        }
        if (!valid_id(id, 64)) return -1;
        snprintf(r->service_id, sizeof r->service_id, "%.64s", id);
        r->svc = serve_config_service(r->s->c, id);
        return r->svc ? route : -1;
    }
    if (!strncmp(p, "/v1/patients/", 13)) {
        char *id = p + 13, *slash = strchr(id, '/');
        if (!slash) return -1;
        *slash = '\0';
        int route = !strcmp(slash + 1, "risk")      ? SERVE_R_PATIENT_RISK
                    : !strcmp(slash + 1, "summary") ? SERVE_R_PATIENT_SUMMARY : -1;
        if (route < 0 || !valid_id(id, 64)) return -1;
        snprintf(r->path_id, sizeof r->path_id, "%.64s", id);
        return route;
    }
    return -1;
}

static const route_def *route_info(int route) {
    static const route_def defs[] = {
        {SERVE_R_DISCOVERY, "GET", AUTH_NONE},  {SERVE_R_HOOK, "POST", AUTH_CDS},
        {SERVE_R_FEEDBACK, "POST", AUTH_CDS},   {SERVE_R_RISK, "POST", AUTH_V1},
        {SERVE_R_PATIENT_RISK, "GET", AUTH_V1}, {SERVE_R_SUMMARY, "POST", AUTH_V1},
        {SERVE_R_PATIENT_SUMMARY, "GET", AUTH_V1}, {SERVE_R_TASKS, "GET", AUTH_V1},
        {SERVE_R_HEALTH, "GET", AUTH_NONE},     {SERVE_R_METRICS, "GET", AUTH_OPS}};
    for (size_t i = 0; i < sizeof defs / sizeof defs[0]; i++)
        if (defs[i].route == route) return &defs[i];
    return NULL;
}

static int role_allowed(int auth, const char *role) {
    if (!strcmp(role, "admin")) return 1;
    switch (auth) {
    case AUTH_CDS: return !strcmp(role, "ehr") || !strcmp(role, "clinician") || !strcmp(role, "service");
    case AUTH_V1: return !strcmp(role, "clinician") || !strcmp(role, "service");
    case AUTH_OPS: return !strcmp(role, "service");
    default: return 0;
    }
}

/* 0 authenticated (principal and role set); otherwise the response is set. */
static int authenticate(req *r, int auth) {
    const char *h = r->rq->authorization;
    snprintf(r->rs->www_authenticate, sizeof r->rs->www_authenticate, "Bearer realm=\"clinfm\"");
    if (!h || !*h) {
        fail(r, 401, "a bearer token is required (Authorization: Bearer <token>)");
        return -1;
    }
    if (strncasecmp(h, "Bearer ", 7)) {
        fail(r, 401, "the Authorization header must use the Bearer scheme");
        return -1;
    }
    const char *tok = h + 7;
    while (*tok == ' ') tok++;
    if (!strncmp(tok, "cfk_", 4)) {
        char id[SERVE_KEY_ID_LEN + 1], role[16];
        int ok = serve_db_key_check(r->s->s.db, tok, r->wall_us, id, role);
        if (ok < 0) {
            fail(r, 500, "the key database could not be read");
            return -1;
        }
        if (!ok) {
            snprintf(r->rs->www_authenticate, sizeof r->rs->www_authenticate,
                     "Bearer realm=\"clinfm\", error=\"invalid_token\"");
            fail(r, 401, "the API key is unknown, revoked or expired");
            return -1;
        }
        snprintf(r->principal, sizeof r->principal, "key:%s", id);
        snprintf(r->role, sizeof r->role, "%s", role);
    } else {
        /* CDS Hooks JWT: the audience is this service's endpoint (or the discovery URL) */
        const serve_config *c = r->s->c;
        const char *auds[64];
        size_t na = 0;
        char a1[600], a2[600], a3[600];
        if (c->base_url) {
            snprintf(a1, sizeof a1, "%s/cds-services", c->base_url);
            auds[na++] = a1;
            if (r->service_id[0]) {
                snprintf(a2, sizeof a2, "%s/cds-services/%s", c->base_url, r->service_id);
                snprintf(a3, sizeof a3, "%s/cds-services/%s/feedback", c->base_url, r->service_id);
                auds[na++] = a2;
                auds[na++] = a3;
            }
        }
        for (size_t i = 0; i < c->n_audiences && na < 64; i++) auds[na++] = c->audiences[i];
        serve_jwt_claims cl;
        const char *why = "";
        int rc = serve_jwt_verify(r->s->s.auth, tok, auds, na, (int64_t)time(NULL), &cl, &why);
        if (rc) {
            if (rc == 2) {
                fail(r, 429, "%s", why);
                r->rs->retry_after = 1;
            } else if (rc == 3) {
                fail(r, 500, "%s", why);
            } else {
                snprintf(r->rs->www_authenticate, sizeof r->rs->www_authenticate,
                         "Bearer realm=\"clinfm\", error=\"invalid_token\"");
                fail(r, 401, "%s", why);
            }
            return -1;
        }
        snprintf(r->principal, sizeof r->principal, "jwt:%.250s%s%.250s", cl.iss,
                 cl.sub[0] ? "|" : "", cl.sub);
        snprintf(r->role, sizeof r->role, "ehr");
    }
    r->rs->www_authenticate[0] = '\0';
    if (!role_allowed(auth, r->role)) {
        fail(r, 403, "%s",
             !strcmp(r->role, "ehr") ? "EHR JWTs are accepted on CDS Hooks routes only"
                                     : "this route needs another role");
        return -1;
    }
    double retry;
    if (!serve_rate_take(r->s->s.auth, r->principal, now_seconds(), &retry)) {
        fail(r, 429, "too many requests for this key; see limits.rate_per_minute");
        r->rs->retry_after = (int)ceil(retry) > 0 ? (int)ceil(retry) : 1;
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ entry */

int serve_ctx_new(serve_ctx **out, const serve_setup *setup, cf_err *err) {
    *out = NULL;
    if (sodium_init() < 0) return cf_fail(err, CF_EINTERNAL, "libsodium failed to initialise");
    const serve_config *c = setup->config;
    for (size_t i = 0; i < c->n_tasks; i++)
        if (setup->predictor->supports && !setup->predictor->supports(setup->predictor->ctx,
                                                                      c->tasks[i].task_id))
            return cf_fail(err, CF_EINPUT, "the model %s %s cannot score task '%s' (tasks[%zu])",
                           setup->predictor->model_name, setup->predictor->model_version,
                           c->tasks[i].task_id, i);
    for (size_t i = 0; i < c->n_services; i++)
        if (c->services[i].n_tasks > MAX_CARDS)
            return cf_fail(err, CF_EINPUT, "services[%zu].tasks: at most %d tasks per service", i,
                           MAX_CARDS);
    serve_ctx *s = calloc(1, sizeof *s);
    if (!s) return cf_fail(err, CF_EINTERNAL, "out of memory");
    s->s = *setup;
    s->c = setup->config;
    serve_metrics_init(&s->metrics);
    if (c->card_cache > 0) {
        int rc = serve_cache_new(&s->cache, (size_t)c->card_cache, err);
        if (rc) {
            free(s);
            return rc;
        }
        atomic_store(&s->metrics.cache_capacity, (uint_fast64_t)c->card_cache);
    }
    *out = s;
    return CF_OK;
}

void serve_ctx_free(serve_ctx *s) {
    if (!s) return;
    serve_cache_free(s->cache);
    free(s);
}
serve_metrics *serve_ctx_metrics(serve_ctx *s) { return &s->metrics; }
const serve_config *serve_ctx_config(const serve_ctx *s) { return s->c; }

static void audit(req *r, int64_t latency_us) {
    serve_ctx *s = r->s;
    unsigned char h[32];
    char hex[65], pseudo[33];
    crypto_generichash(h, sizeof h, (const unsigned char *)(r->rs->body ? r->rs->body : ""),
                       r->rs->len, NULL, 0);
    sodium_bin2hex(hex, sizeof hex, h, sizeof h);
    serve_db_pseudonym(s->s.db, r->patient_id, pseudo);
    serve_audit_entry e = {r->wall_us,
                           r->principal[0] ? r->principal : "unauthenticated",
                           r->role,
                           r->user,
                           r->rq->method,
                           serve_route_name(r->route),
                           pseudo,
                           r->scored ? s->s.predictor->model_name : "",
                           r->scored ? s->s.predictor->model_version : "",
                           r->rs->status,
                           hex,
                           latency_us};
    cf_err err = {0};
    /* cards are recorded only when the response that carries them is a success */
    if (serve_db_audit(s->s.db, &e, r->cards, r->rs->status == 200 ? r->n_cards : 0, &err)) {
        atomic_fetch_add(&s->metrics.audit_failures, 1);
        if (s->s.log) fprintf(s->s.log, "clinfm serve: audit write failed: %s\n", err.msg);
        /* A response that cannot be audited is not given. */
        memset(r->cards, 0, sizeof r->cards);
        r->n_cards = 0;
        fail(r, 500, "the request could not be recorded in the audit trail");
    }
}

void serve_handle(serve_ctx *s, const serve_request *rq, serve_response *rs) {
    memset(rs, 0, sizeof *rs);
    req *r = calloc(1, sizeof *r);
    serve_request rq2 = *rq;
    if (rq2.start_s <= 0) rq2.start_s = now_seconds();
    if (!r) {
        rs->status = 500;
        return;
    }
    r->s = s;
    r->rq = &rq2;
    r->rs = rs;
    r->wall_us = wall_us();
    atomic_fetch_add(&s->metrics.in_flight, 1);
    const char *method = rq->method ? rq->method : "";
    int route = match_route(r, rq->path ? rq->path : "");
    r->route = route < 0 ? SERVE_R_OTHER : route;
    const route_def *def = route >= 0 ? route_info(route) : NULL;
    if (!def) {
        fail(r, 404, "no such route (see docs/SERVE.md)");
    } else if (strcmp(method, def->method)) {
        fail(r, 405, "this route takes %s", def->method);
    } else if (def->auth == AUTH_NONE) {
        if (route == SERVE_R_DISCOVERY) h_discovery(r);
        else h_health(r);
    } else if (authenticate(r, def->auth) == 0) {
        switch (route) {
        case SERVE_R_HOOK: h_hook(r); break;
        case SERVE_R_FEEDBACK: h_feedback(r); break;
        case SERVE_R_RISK:
        case SERVE_R_PATIENT_RISK: h_risk(r); break;
        case SERVE_R_SUMMARY:
        case SERVE_R_PATIENT_SUMMARY: h_summary(r); break;
        case SERVE_R_TASKS: h_tasks(r); break;
        case SERVE_R_METRICS: h_metrics(r); break;
        default: fail(r, 404, "no such route"); break;
        }
    }
    parse_end(r);
    if (!rs->status) fail(r, 500, "no response was produced");
    int64_t latency = (int64_t)((now_seconds() - rq2.start_s) * 1e6);
    if (def && def->auth != AUTH_NONE && route != SERVE_R_METRICS) audit(r, latency);
    if (rs->status >= 500 && s->s.log && rs->body)
        fprintf(s->s.log, "clinfm serve: %s %s: %d %.*s\n", method, serve_route_name(r->route),
                rs->status, (int)(rs->len > 300 ? 300 : rs->len), rs->body);
    serve_metrics_record(&s->metrics, r->route, rs->status, latency);
    if (s->c->access_log && s->s.log) {
        char tb[48];
        serve_time_iso(r->wall_us - r->wall_us % 1000000, tb, sizeof tb);
        tb[strlen(tb) - 1] = '\0'; /* drop the Z, add milliseconds */
        fprintf(s->s.log, "%s.%03dZ %s %s %d %.2fms %s\n", tb, (int)(r->wall_us % 1000000 / 1000),
                method[0] ? method : "-", serve_route_name(r->route), rs->status, latency / 1000.0,
                r->principal[0] ? r->principal : "-");
    }
    atomic_fetch_sub(&s->metrics.in_flight, 1);
    free(r);
}
