/* The in-clinic service, independent of the transport: a request (method, path, query arguments,
 * the headers that matter, body) becomes a response (status, JSON body, headers). serve_http.c
 * puts it on libmicrohttpd; the fuzzer and tests call it directly.
 *
 * Routes (docs/SERVE.md has the full reference):
 *   GET  /cds-services                     CDS Hooks discovery (a token is optional; when one is
 *                                          sent it is checked, and a JWT's jti is spent)
 *   POST /cds-services/{id}                patient-view / encounter-discharge hook call
 *   POST /cds-services/{id}/feedback       accepted / overridden outcomes
 *   POST /v1/risk, GET /v1/patients/{id}/risk        risks for a FHIR Bundle or a stored patient
 *   POST /v1/summary, GET /v1/patients/{id}/summary  grounded patient summary
 *   GET  /v1/tasks                         tasks and thresholds
 *   GET  /healthz (no token), GET /metrics (service or admin)
 * HEAD works wherever GET does, OPTIONS answers CORS preflights for the configured origins, and a
 * 405 names the methods in Allow.
 *
 * A request is handled in two phases, so nothing is read into memory for a caller who cannot
 * use it: serve_call_begin runs on the request line and headers alone (framing, the client
 * address's budget for requests that identify no one, routing, authentication, role, rate limit,
 * a declared body over the limit) and either refuses at once or lets the transport read the
 * body; serve_call_finish handles the request with its body. Every request that identified
 * someone is audited (serve_db.h); the ones refused before that are counted in the metrics and
 * summarised in one audit row per anchor interval (serve_ctx_tick). Errors are
 * {"error": code, "detail": sentence}; no detail or log line holds a value from a record, and
 * every value that reaches the log is escaped. */
#ifndef CLINFM_SERVE_SERVE_H
#define CLINFM_SERVE_SERVE_H

#include <stddef.h>
#include <stdio.h>

#include "serve/predictor.h"
#include "serve/serve_auth.h"
#include "serve/serve_config.h"
#include "serve/serve_db.h"
#include "serve/serve_metrics.h"
#include "store/store.h"

typedef struct serve_ctx serve_ctx;

typedef struct {
    const serve_config *config;    /* borrowed, like everything here */
    const store *store;            /* NULL: patients come only from request data */
    const serve_predictor *predictor;
    serve_db *db;
    serve_auth *auth;
    FILE *log;                     /* access and error log; NULL for none */
} serve_setup;

/* Checks that the predictor supports every configured task. */
int serve_ctx_new(serve_ctx **out, const serve_setup *setup, cf_err *err);
void serve_ctx_free(serve_ctx *s);
serve_metrics *serve_ctx_metrics(serve_ctx *s);
const serve_config *serve_ctx_config(const serve_ctx *s);
/* The periodic work (call every audit.anchor_interval_s, and once at shutdown): one audit row per
 * kind of request refused before anyone was identified since the last tick, then an anchor of
 * the chain's tail. CF_EINPUT when the chain no longer verifies (nothing is anchored then). */
int serve_ctx_tick(serve_ctx *s, cf_err *err);

typedef struct {
    const char *name, *value;
} serve_arg;

typedef struct {
    const char *method, *path;     /* path without the query string */
    const serve_arg *args;         /* decoded query arguments */
    size_t n_args;
    const char *authorization, *content_type; /* NULL when absent */
    const char *origin;            /* Origin, NULL when absent */
    const char *acr_method;        /* Access-Control-Request-Method (preflight), NULL when absent */
    const char *client;            /* client address ("127.0.0.1"); NULL: unknown */
    const char *framing_error;     /* set by the transport: conflicting Content-Length headers,
                                      Content-Length with Transfer-Encoding... (400 at once) */
    long long content_length;      /* declared body size, -1 when not declared */
    const char *body;
    size_t body_len;
    int body_too_large;            /* the transport stopped reading at limits.max_body_bytes */
    int overloaded;                /* the transport dropped the body: limits.max_pending_body_bytes
                                      were buffered already (503) */
    double start_s;                /* arrival (now_seconds()); 0 = now */
} serve_request;

typedef struct {
    int status;
    char *body;                    /* malloc'd */
    size_t len;
    const char *content_type;
    char www_authenticate[128];    /* "" when none */
    int retry_after;               /* seconds, 0 when none */
    const char *allow;             /* Allow header (405, OPTIONS), NULL when none */
    char cors_origin[256];         /* Access-Control-Allow-Origin, "" when none */
    const char *cors_methods;      /* preflight: Access-Control-Allow-Methods, NULL otherwise */
    int cors_max_age;              /* preflight: Access-Control-Max-Age */
} serve_response;

typedef struct serve_call serve_call;

/* Phase one, on the request line and headers (rq->body is not read yet). Returns the call when
 * the transport should read the body and then call serve_call_finish; NULL when *rs already holds
 * the answer (audited when someone was identified, counted, logged). */
serve_call *serve_call_begin(serve_ctx *s, const serve_request *rq, serve_response *rs);
/* Phase two, with the body (rq is the same request, now with body, body_len, body_too_large).
 * Handles, audits, counts, logs, and frees c. */
void serve_call_finish(serve_call *c, const serve_request *rq, serve_response *rs);
/* A call whose body never came (the client went away or ran past limits.body_timeout_s): audited
 * with status 408 when someone was identified, counted, logged; frees c. */
void serve_call_abort(serve_call *c);

/* Both phases at once (the fuzzer, tests, and anything that already holds the whole request). */
void serve_handle(serve_ctx *s, const serve_request *rq, serve_response *rs);
void serve_response_free(serve_response *rs);

/* Writes s into out for a log line: printable ASCII is kept, everything else (controls, quotes,
 * backslashes, bytes >= 0x7f) becomes \xNN, so no value can forge a line or a field. */
void serve_log_escape(const char *s, char *out, size_t cap);

/* Releases the calling thread's parse arena (done automatically at thread exit). */
void serve_thread_release(void);

#endif
