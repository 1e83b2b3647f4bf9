/* The in-clinic service, independent of the transport: one call turns a request (method, path,
 * query arguments, Authorization and Content-Type headers, body) into a response (status, JSON
 * body). serve_http.c puts it on libmicrohttpd; the fuzzer and tests call it directly.
 *
 * Routes (docs/SERVE.md has the full reference):
 *   GET  /cds-services                     CDS Hooks discovery (no token)
 *   POST /cds-services/{id}                patient-view / encounter-discharge hook call
 *   POST /cds-services/{id}/feedback       accepted / overridden outcomes
 *   POST /v1/risk, GET /v1/patients/{id}/risk        risks for a FHIR Bundle or a stored patient
 *   POST /v1/summary, GET /v1/patients/{id}/summary  grounded patient summary
 *   GET  /v1/tasks                         tasks and thresholds
 *   GET  /healthz (no token), GET /metrics (service or admin)
 * Every protected request is authenticated (API key or, on CDS Hooks routes, a JWT), authorised
 * by role, rate limited per principal, audited (serve_db.h) and counted (serve_metrics.h).
 * Errors are {"error": code, "detail": sentence} with 400/401/403/404/405/413/415/429/500/503;
 * no detail or log line ever holds a value from a record or a request (ids included). */
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

typedef struct {
    const char *name, *value;
} serve_arg;

typedef struct {
    const char *method, *path;     /* path without the query string */
    const serve_arg *args;         /* decoded query arguments */
    size_t n_args;
    const char *authorization, *content_type; /* NULL when absent */
    const char *body;
    size_t body_len;
    int body_too_large;            /* the transport stopped reading at limits.max_body_bytes */
    double start_s;                /* arrival (now_seconds()); 0 = now */
} serve_request;

typedef struct {
    int status;
    char *body;                    /* malloc'd */
    size_t len;
    const char *content_type;
    char www_authenticate[128];    /* "" when none */
    int retry_after;               /* seconds, 0 when none */
} serve_response;

void serve_handle(serve_ctx *s, const serve_request *rq, serve_response *rs);
void serve_response_free(serve_response *rs);

/* Releases the calling thread's parse arena (done automatically at thread exit). */
void serve_thread_release(void);

#endif
