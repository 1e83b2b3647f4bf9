/* Request handling for the service: the two phases of a call, routing, the client address's
 * budget, authentication and roles, CORS, limits, the REST handlers, audit, metrics and the
 * access log. See serve.h for the routes and docs/SERVE.md for the rules; the CDS Hooks
 * handlers are in serve_hooks.c, the helpers both use in serve_request.c.
 *
 * Request bodies are parsed (serve_request.c) into a per-thread arena (the FHIR reader's,
 * ingest/fhir_json.h) with a memory cap proportional to the body, after a depth scan; everything a
 * handler needs from the body is copied out (into a serve_record or small buffers) before the
 * arena is reset, and responses are built afterwards with ordinary allocations. */
#include "serve/serve_internal.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <sodium.h>

#include "serve/serve_fetch.h"
#include "serve/serve_summary.h"
#include "util/progress.h"
#include "util/json.h"
#include "util/sbuf.h"

/* ------------------------------------------------------------------ discovery, health, metrics */

static void h_discovery(req *r) {
    const serve_config *c = r->s->c;
    cJSON *root = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(root, "services");
    for (size_t i = 0; i < c->n_services; i++) {
        const serve_service *sv = &c->services[i];
        cJSON *o = cJSON_CreateObject();
        JSON_ADD_STRINGS(o, {"hook", sv->hook}, {"id", sv->id}, {"title", sv->title},
                         {"description", sv->description});
        cJSON_AddItemToObject(o, "prefetch", cJSON_Duplicate(sv->prefetch, 1));
        cJSON_AddItemToArray(arr, o);
    }
    serve__reply_json(r, 200, root);
}

static void h_health(req *r) {
    const serve_predictor *p = r->s->s.predictor;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "status", "ok");
    cJSON_AddStringToObject(o, "model", p->model_name);
    cJSON_AddStringToObject(o, "model_version", p->model_version);
    cJSON_AddBoolToObject(o, "store", r->s->s.store != NULL);
    cJSON_AddNumberToObject(o, "tasks", (double)r->s->c->n_tasks);
    serve__reply_json(r, 200, o);
}

static void h_metrics(req *r) {
    size_t len;
    const serve_predictor *p = r->s->s.predictor;
    char *text = serve_metrics_text(&r->s->metrics, p->model_name, p->model_version, &len);
    if (!text) {
        serve__fail(r, 500, "out of memory");
        return;
    }
    r->rs->status = 200;
    serve__set_body(r, text, len, "text/plain; version=0.0.4; charset=utf-8");
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
    serve__reply_json(r, 200, o);
}

/* ------------------------------------------------------------------ REST */

/* The record of a stored patient; 1 found, -1 response set (404 included). A record with no
 * event besides the birth gets 412: there is nothing to score. */
static int v1_from_store(req *r, const char *id, serve_record *rec) {
    cf_err err = {0};
    snprintf(r->patient_id, sizeof r->patient_id, "%s", id);
    if (!r->s->s.store) {
        serve__fail(r, 404, "no store is loaded; send FHIR resources instead");
        return -1;
    }
    int64_t pt = r->s->c->prediction_time_now ? r->wall_us : TIME_NULL;
    int rc = serve_record_from_store(rec, r->s->s.store, id, pt, &err);
    if (rc == CF_EINPUT) {
        serve__fail(r, 404, "no such patient in the store");
        return -1;
    }
    if (rc) {
        serve__fail(r, 500, "%s", err.msg);
        return -1;
    }
    return 1;
}

/* The patient of a /v1 call: a FHIR body, {"patientId": ...}, or the URL. 1 found, -1 response
 * set. */
static int v1_patient(req *r, serve_record *rec, const char **origin) {
    int found = -1;
    if (r->path_id[0]) {
        *origin = "store";
        found = v1_from_store(r, r->path_id, rec);
    } else {
        cJSON *root = serve__parse_body(r, 0);
        if (!root) return -1;
        const cJSON *rt = cJSON_GetObjectItemCaseSensitive(root, "resourceType");
        const cJSON *pid = cJSON_GetObjectItemCaseSensitive(root, "patientId");
        if (cJSON_IsString(rt)) {
            const cJSON *vals[1] = {root};
            const char *names[1] = {"body"};
            cf_err err = {0};
            *origin = "request";
            int64_t pt = r->s->c->prediction_time_now ? r->wall_us : TIME_NULL;
            int rc = serve_record_from_fhir(rec, vals, names, 1, NULL, pt, &err);
            serve__parse_end(r);
            if (rc) {
                serve__fail(r, rc == CF_EINPUT ? 400 : 500, "%s", err.msg);
                return -1;
            }
            snprintf(r->patient_id, sizeof r->patient_id, "%s", rec->key);
            found = 1;
        } else if (cJSON_IsString(pid) && serve__valid_id(pid->valuestring, 64)) {
            char id[80];
            serve__copy_str(id, sizeof id, pid);
            serve__parse_end(r);
            *origin = "store";
            found = v1_from_store(r, id, rec);
        } else {
            serve__fail(r, 400, "send a FHIR Bundle or resource, or {\"patientId\": \"<FHIR id>\"}");
            return -1;
        }
    }
    return found;
}

static void h_risk(req *r) {
    const serve_config *c = r->s->c;
    const char *task = serve__arg(r, "task");
    if (task && !serve_config_task(c, task)) {
        serve__fail(r, 404, "no task with that id is loaded (see GET /v1/tasks)");
        return;
    }
    serve_record rec;
    serve_record_init(&rec);
    const char *origin = "";
    if (v1_patient(r, &rec, &origin) < 0 || serve__over_time(r)) goto done;
    if (!serve__record_scorable(&rec)) {
        serve__fail(r, 412, "the record holds no dated event besides the birth: nothing to score");
        goto done;
    }
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
        if (serve__score_one(r, &rec, t, &sc) || serve__over_time(r)) {
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
        cJSON_AddStringToObject(e, "indicator", serve__indicator(t, sc.risk));
        cJSON_AddNumberToObject(e, "events_used", (double)sc.n_events_used);
        cJSON *rs = cJSON_AddArrayToObject(e, "reasons");
        for (size_t k = 0; k < sc.n_reasons; k++) {
            cJSON *x = cJSON_CreateObject();
            cJSON_AddStringToObject(x, "text", serve__event_text(&rec.p, sc.reason[k].event));
            cJSON_AddNumberToObject(x, "contribution", round(sc.reason[k].contribution * 1e4) / 1e4);
            cJSON_AddNumberToObject(x, "events_with_code", (double)sc.reason[k].n_events);
            cJSON_AddItemToObject(x, "latest_event", serve_evidence(&rec.p, sc.reason[k].event));
            cJSON_AddItemToArray(rs, x);
        }
        cJSON_AddItemToArray(arr, e);
    }
    serve__reply_json(r, 200, o);
done:
    serve_record_free(&rec);
}

static void h_summary(req *r) {
    serve_record rec;
    serve_record_init(&rec);
    const char *origin = "";
    if (v1_patient(r, &rec, &origin) < 0 || serve__over_time(r)) goto done;
    cJSON *o = serve_summary(&rec.p, &r->s->c->summary);
    if (!o) {
        serve__fail(r, 500, "out of memory building the summary");
        goto done;
    }
    cJSON_AddStringToObject(o, "source", origin);
    serve__reply_json(r, 200, o);
done:
    serve_record_free(&rec);
}

/* ------------------------------------------------------------------ routing */

enum { AUTH_NONE, AUTH_DISCOVERY, AUTH_CDS, AUTH_V1, AUTH_OPS };

typedef struct {
    int route;
    const char *method; /* GET routes also answer HEAD */
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
        if (!serve__valid_id(id, 64)) return -1;
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
        if (route < 0 || !serve__valid_id(id, 64)) return -1;
        snprintf(r->path_id, sizeof r->path_id, "%.64s", id);
        return route;
    }
    return -1;
}

static const route_def *route_info(int route) {
    static const route_def defs[] = {
        {SERVE_R_DISCOVERY, "GET", AUTH_DISCOVERY}, {SERVE_R_HOOK, "POST", AUTH_CDS},
        {SERVE_R_FEEDBACK, "POST", AUTH_CDS},       {SERVE_R_RISK, "POST", AUTH_V1},
        {SERVE_R_PATIENT_RISK, "GET", AUTH_V1},     {SERVE_R_SUMMARY, "POST", AUTH_V1},
        {SERVE_R_PATIENT_SUMMARY, "GET", AUTH_V1},  {SERVE_R_TASKS, "GET", AUTH_V1},
        {SERVE_R_HEALTH, "GET", AUTH_NONE},         {SERVE_R_METRICS, "GET", AUTH_OPS}};
    for (size_t i = 0; i < sizeof defs / sizeof defs[0]; i++)
        if (defs[i].route == route) return &defs[i];
    return NULL;
}

static const char *allow_of(const route_def *d) {
    return !strcmp(d->method, "GET") ? "GET, HEAD, OPTIONS" : "POST, OPTIONS";
}

static int role_allowed(int auth, const char *role) {
    if (!strcmp(role, "admin")) return 1;
    switch (auth) {
    case AUTH_DISCOVERY: return 1;
    case AUTH_CDS: return !strcmp(role, "ehr") || !strcmp(role, "clinician") || !strcmp(role, "service");
    case AUTH_V1: return !strcmp(role, "clinician") || !strcmp(role, "service");
    case AUTH_OPS: return !strcmp(role, "service");
    default: return 0;
    }
}

/* ------------------------------------------------------------------ CORS */

static int origin_allowed(const serve_config *c, const char *origin) {
    if (!origin) return 0;
    for (size_t i = 0; i < c->n_cors_origins; i++)
        if (!strcmp(c->cors_origins[i], origin)) return 1;
    return 0;
}

/* An allowed Origin is echoed (never "*": requests carry bearer tokens), with Vary: Origin set
 * by the transport. */
static void cors_apply(req *r) {
    if (origin_allowed(r->s->c, r->rq->origin))
        snprintf(r->rs->cors_origin, sizeof r->rs->cors_origin, "%s", r->rq->origin);
}

static void h_options(req *r, const route_def *d) {
    const char *origin = r->rq->origin;
    r->rs->allow = allow_of(d);
    if (origin && r->rq->acr_method) {
        if (!origin_allowed(r->s->c, origin)) {
            serve__fail(r, 403, "this origin is not allowed to call the service (cors.allowed_origins)");
            return;
        }
        r->rs->cors_methods = allow_of(d);
        r->rs->cors_max_age = r->s->c->cors_max_age_s;
    }
    r->rs->status = 204;
    serve__set_body(r, NULL, 0, NULL);
}

/* ------------------------------------------------------------------ authentication */

/* The JWT audiences of this route: its endpoint's URL under base_url and every extra base. */
static size_t audiences(const req *r, int auth, char (*buf)[600], const char **auds, size_t cap) {
    const serve_config *c = r->s->c;
    size_t n = 0;
    for (size_t i = 0; i < 1 + c->n_extra_base_urls && n < cap; i++) {
        const char *base = i == 0 ? c->base_url : c->extra_base_urls[i - 1];
        if (!base) continue;
        if (auth == AUTH_DISCOVERY)
            snprintf(buf[n], sizeof buf[n], "%s/cds-services", base);
        else if (r->route == SERVE_R_FEEDBACK)
            snprintf(buf[n], sizeof buf[n], "%s/cds-services/%s/feedback", base, r->service_id);
        else
            snprintf(buf[n], sizeof buf[n], "%s/cds-services/%s", base, r->service_id);
        auds[n] = buf[n];
        n++;
    }
    return n;
}

static void count_refused(req *r, int why) {
    atomic_fetch_add_explicit(&r->s->metrics.refused[why], 1, memory_order_relaxed);
}

/* 0 authenticated (principal and role set); otherwise the response is set. */
static int authenticate(req *r, int auth) {
    const char *h = r->rq->authorization;
    serve_ctx *s = r->s;
    snprintf(r->rs->www_authenticate, sizeof r->rs->www_authenticate, "Bearer realm=\"clinfm\"");
    if (!h || !*h) {
        serve__fail(r, 401, "a bearer token is required (Authorization: Bearer <token>)");
        goto refused;
    }
    if (strncasecmp(h, "Bearer ", 7)) {
        serve__fail(r, 401, "the Authorization header must use the Bearer scheme");
        goto refused;
    }
    const char *tok = h + 7;
    while (*tok == ' ') tok++;
    if (!strncmp(tok, "cfk_", 4)) {
        char id[SERVE_KEY_ID_LEN + 1], role[16];
        int ok = serve_db_key_check(s->s.db, tok, r->wall_us, id, role);
        if (ok == -1) {
            serve__fail(r, 500, "the key database could not be read");
            return -1;
        }
        if (ok == -2) {
            atomic_fetch_add(&s->metrics.integrity_failures, 1);
            if (s->s.log)
                fprintf(s->s.log, "clinfm serve: API key %s was refused: its row fails its "
                                  "integrity check (edited in the database)\n", id);
        }
        if (ok != 1) {
            snprintf(r->rs->www_authenticate, sizeof r->rs->www_authenticate,
                     "Bearer realm=\"clinfm\", error=\"invalid_token\"");
            serve__fail(r, 401, "the API key is unknown, revoked or expired");
            goto refused;
        }
        snprintf(r->principal, sizeof r->principal, "key:%s", id);
        snprintf(r->role, sizeof r->role, "%s", role);
    } else if (auth != AUTH_CDS && auth != AUTH_DISCOVERY) {
        snprintf(r->rs->www_authenticate, sizeof r->rs->www_authenticate,
                 "Bearer realm=\"clinfm\", error=\"invalid_token\"");
        serve__fail(r, 401, "EHR JWTs are accepted on CDS Hooks routes only; this route needs an "
                            "API key");
        goto refused;
    } else {
        const char *auds[64];
        char abuf[64][600];
        size_t na = audiences(r, auth, abuf, auds, 64);
        serve_jwt_claims cl;
        const char *why = "";
        int rc = serve_jwt_verify(s->s.auth, tok, auds, na, (int64_t)time(NULL), &cl, &why);
        if (rc == 2) {
            serve__fail(r, 429, "%s", why);
            r->rs->retry_after = 1;
            return -1;
        }
        if (rc == 3) {
            serve__fail(r, 500, "%s", why);
            return -1;
        }
        if (rc) {
            snprintf(r->rs->www_authenticate, sizeof r->rs->www_authenticate,
                     "Bearer realm=\"clinfm\", error=\"invalid_token\"");
            serve__fail(r, 401, "%s", why);
            goto refused;
        }
        snprintf(r->principal, sizeof r->principal, "jwt:%.250s%s%.250s", cl.iss,
                 cl.sub[0] ? "|" : "", cl.sub);
        snprintf(r->role, sizeof r->role, "ehr");
    }
    r->identified = 1;
    r->rs->www_authenticate[0] = '\0';
    if (!role_allowed(auth, r->role)) {
        serve__fail(r, 403, "this route needs another role");
        return -1;
    }
    double retry;
    if (auth != AUTH_DISCOVERY && !serve_rate_take(s->s.auth, r->principal, now_seconds(), &retry)) {
        serve__fail(r, 429, "too many requests for this key; see limits.rate_per_minute");
        r->rs->retry_after = (int)ceil(retry) > 0 ? (int)ceil(retry) : 1;
        return -1;
    }
    return 0;
refused:
    serve_client_charge(s->s.auth, r->rq->client, now_seconds());
    count_refused(r, SERVE_REFUSED_UNAUTHENTICATED);
    return -1;
}

/* ------------------------------------------------------------------ context */

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
        if (c->services[i].n_tasks > SERVE__MAX_CARDS)
            return cf_fail(err, CF_EINPUT, "services[%zu].tasks: at most %d tasks per service", i,
                           SERVE__MAX_CARDS);
    if (c->n_fhir_servers) {
        int rc = serve_fetch_global_init(err);
        if (rc) return rc;
    }
    fhir_json_init(); /* the arena's cJSON hooks, before any server thread exists */
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

int serve_ctx_tick(serve_ctx *s, cf_err *err) {
    int64_t now = serve__now_us();
    for (int i = 0; i < SERVE_N_STATUS; i++) {
        uint_fast64_t n = atomic_exchange(&s->unaudited[i], 0);
        if (!n) continue;
        serve_audit_entry e = {now, "unauthenticated", "", "", "*", "(refused before identification)",
                               "", "", "", serve_metrics_status_at(i), "", 0, (int64_t)n};
        cf_err e2;
        if (serve_db_audit(s->s.db, &e, NULL, 0, NULL, 0, &e2)) {
            atomic_fetch_add(&s->unaudited[i], n); /* kept for the next tick */
            atomic_fetch_add(&s->metrics.audit_failures, 1);
            if (s->s.log) fprintf(s->s.log, "clinfm serve: audit write failed: %s\n", e2.msg);
        }
    }
    int rc = serve_db_anchor(s->s.db, NULL, err);
    if (rc == CF_EINPUT) atomic_fetch_add(&s->metrics.integrity_failures, 1);
    return rc;
}

/* ------------------------------------------------------------------ the end of a call */

static void audit(req *r, int64_t latency_us) {
    serve_ctx *s = r->s;
    unsigned char h[32];
    char hex[65], pseudo[33];
    crypto_generichash(h, sizeof h, (const unsigned char *)(r->rs->body ? r->rs->body : ""),
                       r->rs->len, NULL, 0);
    sodium_bin2hex(hex, sizeof hex, h, sizeof h);
    serve_db_pseudonym(s->s.db, r->patient_id, pseudo);
    serve_audit_entry e = {r->wall_us,
                           r->principal,
                           r->role,
                           r->user,
                           r->method,
                           serve_route_name(r->route),
                           pseudo,
                           r->scored ? s->s.predictor->model_name : "",
                           r->scored ? s->s.predictor->model_version : "",
                           r->rs->status,
                           hex,
                           latency_us,
                           1};
    cf_err err = {0};
    /* cards and feedback are recorded only when the response that carries them is a success */
    int ok = r->rs->status == 200;
    if (serve_db_audit(s->s.db, &e, r->cards, ok ? r->n_cards : 0, r->feedback,
                       ok ? r->n_feedback : 0, &err)) {
        atomic_fetch_add(&s->metrics.audit_failures, 1);
        if (s->s.log) fprintf(s->s.log, "clinfm serve: audit write failed: %s\n", err.msg);
        /* A response that cannot be audited is not given. */
        memset(r->cards, 0, sizeof r->cards);
        r->n_cards = 0;
        serve__fail(r, 500, "the request could not be recorded in the audit trail");
    }
}

/* Audits (someone identified) or counts (a protected route, no one identified), logs, counts,
 * frees r. */
static void end_call(req *r) {
    serve_ctx *s = r->s;
    serve_response *rs = r->rs;
    serve__parse_end(r);
    if (!rs->status) serve__fail(r, 500, "no response was produced");
    int64_t latency = (int64_t)((now_seconds() - r->start_s) * 1e6);
    int protected_route = r->auth != AUTH_NONE && r->auth != AUTH_DISCOVERY && r->route != SERVE_R_OTHER;
    if (r->identified && r->route != SERVE_R_METRICS && r->route != SERVE_R_DISCOVERY)
        audit(r, latency);
    if (r->cleanup) r->cleanup(r);
    else if (!r->identified && protected_route)
        atomic_fetch_add_explicit(&s->unaudited[serve_metrics_status_index(rs->status)], 1,
                                  memory_order_relaxed);
    char method[64], who[sizeof r->principal * 4];
    serve_log_escape(r->method[0] ? r->method : "-", method, sizeof method);
    serve_log_escape(r->principal[0] ? r->principal : "-", who, sizeof who);
    if (rs->status >= 500 && s->s.log && rs->body) {
        char detail[1300];
        char body[301];
        snprintf(body, sizeof body, "%.*s", (int)(rs->len > 300 ? 300 : rs->len), rs->body);
        serve_log_escape(body, detail, sizeof detail);
        fprintf(s->s.log, "clinfm serve: %s %s: %d %s\n", method, serve_route_name(r->route),
                rs->status, detail);
    }
    serve_metrics_record(&s->metrics, r->route, rs->status, latency);
    if (s->c->access_log && s->s.log && !r->unlogged) {
        char tb[48];
        serve_time_iso(r->wall_us - r->wall_us % 1000000, tb, sizeof tb);
        tb[strlen(tb) - 1] = '\0'; /* drop the Z, add milliseconds */
        fprintf(s->s.log, "%s.%03dZ %s %s %d %.2fms %s\n", tb, (int)(r->wall_us % 1000000 / 1000),
                method, serve_route_name(r->route), rs->status, latency / 1000.0, who);
    }
    cors_apply(r);
    atomic_fetch_sub(&s->metrics.in_flight, 1);
    free(r);
}

/* ------------------------------------------------------------------ the two phases */

static void run_get(req *r) {
    switch (r->route) {
    case SERVE_R_DISCOVERY: h_discovery(r); break;
    case SERVE_R_HEALTH: h_health(r); break;
    case SERVE_R_METRICS: h_metrics(r); break;
    case SERVE_R_TASKS: h_tasks(r); break;
    case SERVE_R_PATIENT_RISK: h_risk(r); break;
    case SERVE_R_PATIENT_SUMMARY: h_summary(r); break;
    default: serve__fail(r, 404, "no such route"); break;
    }
}

serve_call *serve_call_begin(serve_ctx *s, const serve_request *rq, serve_response *rs) {
    memset(rs, 0, sizeof *rs);
    req *r = calloc(1, sizeof *r);
    if (!r) {
        rs->status = 500;
        return NULL;
    }
    r->s = s;
    r->rq = rq;
    r->rs = rs;
    r->wall_us = serve__now_us();
    r->start_s = rq->start_s > 0 ? rq->start_s : now_seconds();
    r->route = SERVE_R_OTHER;
    r->auth = AUTH_NONE;
    atomic_fetch_add(&s->metrics.in_flight, 1);
    snprintf(r->method, sizeof r->method, "%s", rq->method ? rq->method : "");
    double now = now_seconds(), retry;
    int route = match_route(r, rq->path ? rq->path : "");
    const route_def *def = route >= 0 ? route_info(route) : NULL;
    if (def) {
        r->route = route;
        r->auth = def->auth;
    }
    /* before any work: an address that spent its budget on requests identifying no one */
    if (!serve_client_allowed(s->s.auth, rq->client, now, &retry)) {
        count_refused(r, SERVE_REFUSED_CLIENT_BUDGET);
        r->unlogged = 1; /* a flood must not fill the disk through the log either */
        serve__fail(r, 429, "too many requests from this address without a valid token; see "
                            "limits.client_rate_per_minute");
        r->rs->retry_after = (int)ceil(retry) > 0 ? (int)ceil(retry) : 1;
        goto answered;
    }
    if (rq->framing_error) {
        count_refused(r, SERVE_REFUSED_FRAMING);
        serve_client_charge(s->s.auth, rq->client, now);
        serve__fail(r, 400, "%s", rq->framing_error);
        goto answered;
    }
    if (!def) {
        serve_client_charge(s->s.auth, rq->client, now);
        serve__fail(r, 404, "no such route (see docs/SERVE.md)");
        goto answered;
    }
    int is_get = !strcmp(def->method, "GET");
    if (!strcmp(r->method, "OPTIONS")) {
        serve_client_charge(s->s.auth, rq->client, now);
        h_options(r, def);
        goto answered;
    }
    if (strcmp(r->method, def->method) && !(is_get && !strcmp(r->method, "HEAD"))) {
        serve_client_charge(s->s.auth, rq->client, now);
        rs->allow = allow_of(def);
        serve__fail(r, 405, "this route takes %s", def->method);
        goto answered;
    }
    if (def->auth == AUTH_NONE || (def->auth == AUTH_DISCOVERY && !rq->authorization)) {
        serve_client_charge(s->s.auth, rq->client, now);
        run_get(r);
        goto answered;
    }
    if (authenticate(r, def->auth)) goto answered;
    if (is_get) {
        run_get(r);
        goto answered;
    }
    if (rq->content_length > 0 && (unsigned long long)rq->content_length > s->c->max_body) {
        serve__fail(r, 413, "the request body is larger than limits.max_body_bytes (%zu)",
                    s->c->max_body);
        goto answered;
    }
    r->rq = NULL; /* the headers' request is the transport's; finish brings the whole one */
    r->rs = NULL;
    return r;
answered:
    end_call(r);
    return NULL;
}

void serve_call_finish(serve_call *r, const serve_request *rq, serve_response *rs) {
    memset(rs, 0, sizeof *rs);
    r->rq = rq;
    r->rs = rs;
    if (rq->overloaded) {
        serve__fail(r, 503, "the service is holding as many request bodies as it may "
                            "(limits.max_pending_body_bytes); retry shortly");
        rs->retry_after = 1;
        end_call(r);
        return;
    }
    switch (r->route) {
    case SERVE_R_HOOK: serve__h_hook(r); break;
    case SERVE_R_FEEDBACK: serve__h_feedback(r); break;
    case SERVE_R_RISK: h_risk(r); break;
    case SERVE_R_SUMMARY: h_summary(r); break;
    default: serve__fail(r, 404, "no such route"); break;
    }
    end_call(r);
}

void serve_call_abort(serve_call *r) {
    serve_response rs;
    serve_request rq;
    memset(&rs, 0, sizeof rs);
    memset(&rq, 0, sizeof rq);
    r->rq = &rq;
    r->rs = &rs;
    serve__fail(r, 408, "the request body did not arrive in time");
    end_call(r);
    serve_response_free(&rs);
}

void serve_handle(serve_ctx *s, const serve_request *rq, serve_response *rs) {
    serve_call *c = serve_call_begin(s, rq, rs);
    if (c) serve_call_finish(c, rq, rs);
}
