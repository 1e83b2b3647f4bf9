/* What the service's request handlers share (serve_handler.c: routing, REST; serve_hooks.c: CDS
 * Hooks): the per-thread JSON arena and body parsing with its caps, answering (bodies, errors,
 * JSON), the request's time budget, and scoring one task through the cache. Both handler files
 * call here; nothing here calls a handler, so the two form no circle. See serve_internal.h. */
#include "serve/serve_internal.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "util/progress.h"
#include "util/sbuf.h"

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

void serve__parse_end(req *r) {
    if (r->arena) fhir_arena_end(r->arena);
    r->arena = NULL;
}

/* ------------------------------------------------------------------ responses */

void serve__set_body(req *r, char *body, size_t len, const char *type) {
    free(r->rs->body);
    r->rs->body = body;
    r->rs->len = len;
    r->rs->content_type = type;
}

void serve__fail(req *r, int status, const char *fmt, ...) {
    serve__parse_end(r);
    const char *code = status == 400   ? "bad_request"
                       : status == 401 ? "unauthorized"
                       : status == 403 ? "forbidden"
                       : status == 404 ? "not_found"
                       : status == 405 ? "method_not_allowed"
                       : status == 408 ? "request_timeout"
                       : status == 412 ? "precondition_failed"
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
    sbuf_put(&b, "{\"error\":", 9);
    sbuf_json_str(&b, code);
    sbuf_put(&b, ",\"detail\":", 10);
    sbuf_json_str(&b, detail);
    sbuf_put(&b, "}", 1);
    r->rs->status = status;
    if (b.oom) {
        free(b.p);
        static const char oom[] = "{\"error\":\"internal\",\"detail\":\"out of memory\"}";
        char *p = malloc(sizeof oom);
        if (p) memcpy(p, oom, sizeof oom);
        serve__set_body(r, p, p ? sizeof oom - 1 : 0, "application/json");
        r->rs->status = 500;
        return;
    }
    serve__set_body(r, b.p, b.len, "application/json");
}

void serve__reply_json(req *r, int status, cJSON *o) {
    serve__parse_end(r);
    char *text = o ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    if (!text) {
        serve__fail(r, 500, "out of memory building the response");
        return;
    }
    r->rs->status = status;
    serve__set_body(r, text, strlen(text), "application/json");
}

void serve_response_free(serve_response *rs) {
    free(rs->body);
    memset(rs, 0, sizeof *rs);
}

void serve_log_escape(const char *s, char *out, size_t cap) {
    size_t o = 0;
    if (!cap) return;
    for (; s && *s && o + 5 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x20 || c >= 0x7f || c == '\\' || c == '"') o += (size_t)snprintf(out + o, cap - o, "\\x%02x", c);
        else out[o++] = (char)c;
    }
    out[o] = '\0';
}

/* ------------------------------------------------------------------ small helpers */

int64_t serve__now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int serve__valid_id(const char *s, size_t max) {
    size_t n = strlen(s);
    if (!n || n > max) return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '-' || *s == '.' || *s == '_'))
            return 0;
    return 1;
}

const char *serve__arg(const req *r, const char *name) {
    for (size_t i = 0; i < r->rq->n_args; i++)
        if (r->rq->args[i].name && !strcmp(r->rq->args[i].name, name)) return r->rq->args[i].value;
    return NULL;
}

double serve__elapsed_ms(const req *r) { return (now_seconds() - r->start_s) * 1000.0; }

int serve__over_time(req *r) {
    if (serve__elapsed_ms(r) <= r->s->c->request_timeout_ms) return 0;
    serve__fail(r, 503, "the request took longer than limits.request_timeout_ms; retry later");
    r->rs->retry_after = 1;
    return 1;
}

const char *serve__indicator(const serve_task *t, double risk) {
    return risk >= t->threshold_critical ? "critical"
           : risk >= t->threshold_warning ? "warning" : "info";
}

void serve__copy_str(char *dst, size_t cap, const cJSON *v) {
    dst[0] = '\0';
    if (cJSON_IsString(v)) snprintf(dst, cap, "%s", v->valuestring);
}

const char *serve__event_text(const serve_patient *p, size_t i) {
    return p->desc && p->desc[i] && p->desc[i][0] ? p->desc[i] : p->code[i];
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

cJSON *serve__parse_body(req *r, size_t extra) {
    const serve_request *rq = r->rq;
    const serve_config *c = r->s->c;
    if (rq->body_too_large || rq->body_len > c->max_body) {
        serve__fail(r, 413, "the request body is larger than limits.max_body_bytes (%zu)", c->max_body);
        return NULL;
    }
    if (!json_type_ok(rq->content_type)) {
        serve__fail(r, 415, "send the body as application/json or application/fhir+json");
        return NULL;
    }
    if (!rq->body_len) {
        serve__fail(r, 400, "the request needs a JSON body");
        return NULL;
    }
    if (!depth_ok(rq->body, rq->body_len, c->max_depth)) {
        serve__fail(r, 400, "the JSON body is nested deeper than limits.max_json_depth (%d)",
                    c->max_depth);
        return NULL;
    }
    fhir_arena *a = thread_arena();
    if (!a) {
        serve__fail(r, 500, "out of memory");
        return NULL;
    }
    /* The arena caps the parse tree at 12x its text plus 1 MiB (hostile JSON can cost 32 bytes
     * of nodes per byte); FHIR data read from a server later in the request gets the same. */
    fhir_arena_begin(a, (rq->body_len + extra) * 12 + ((size_t)1 << 20));
    r->arena = a;
    const char *why;
    size_t off;
    cJSON *root = fhir_json_parse(a, rq->body, rq->body_len, &why, &off);
    if (!root) {
        if (fhir_arena_exhausted(a))
            serve__fail(r, 413, "the JSON body needs more memory to parse than its size allows");
        else
            serve__fail(r, 400, "the body is not valid JSON (%s near byte %zu)",
                        why ? why : "parse error", off);
        return NULL;
    }
    if (!cJSON_IsObject(root)) {
        serve__fail(r, 400, "the JSON body must be an object");
        return NULL;
    }
    return root;
}

cJSON *serve__parse_more(req *r, const char *text, size_t len) {
    if (!r->arena || !len || !depth_ok(text, len, r->s->c->max_depth)) return NULL;
    const char *why;
    size_t off;
    return fhir_json_parse(r->arena, text, len, &why, &off);
}

/* ------------------------------------------------------------------ scores */

static int check_score(const serve_score *sc) {
    return isfinite(sc->risk) && isfinite(sc->lo) && isfinite(sc->hi) && sc->lo >= 0 &&
           sc->hi <= 1 && sc->lo <= sc->risk + 1e-12 && sc->risk <= sc->hi + 1e-12 &&
           sc->n_reasons <= SERVE_MAX_REASONS;
}

int serve__record_scorable(const serve_record *rec) {
    const serve_patient *p = &rec->p;
    for (size_t i = 0; i < p->n; i++) {
        if (p->time[i] == TIME_NULL || !strcmp(p->code[i], "MEDS_BIRTH")) continue;
        if (p->prediction_time != TIME_NULL && p->time[i] > p->prediction_time) continue;
        return 1;
    }
    return 0;
}

/* Scores rec for t, from the card cache when it holds this exact (predictor, task, patient,
 * prediction time, events) and through the predictor otherwise. The caller builds the card and
 * the audit rows either way. */
int serve__score_one(req *r, const serve_record *rec, const serve_task *t, serve_score *sc) {
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
        serve__fail(r, rc == CF_EINPUT ? 400 : 500, "scoring %s: %s", t->task_id, err.msg);
        return -1;
    }
    if (!check_score(sc)) {
        serve__fail(r, 500, "the predictor returned an invalid risk for task %s", t->task_id);
        return -1;
    }
    for (size_t k = 0; k < sc->n_reasons; k++)
        if (sc->reason[k].event >= rec->p.n) {
            serve__fail(r, 500, "the predictor cited an event outside the record for task %s",
                        t->task_id);
            return -1;
        }
    if (cache) {
        serve_cache_put(cache, &key, sc);
        atomic_store_explicit(&mt->cache_entries, serve_cache_size(cache), memory_order_relaxed);
    }
    return 0;
}
