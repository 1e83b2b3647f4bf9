/* The service configuration: one JSON file that hospital IT owns (docs/SERVE.md has a complete
 * example). Unknown keys are errors, so a misspelt limit is never silently ignored; so are empty
 * strings, and empty arrays or objects where CDS Hooks forbids an empty value (override reasons,
 * prefetch); relative paths are resolved against the configuration file's directory. Every
 * message names the key path. */
#ifndef CLINFM_SERVE_SERVE_CONFIG_H
#define CLINFM_SERVE_SERVE_CONFIG_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "serve/predictor.h"
#include "serve/serve_summary.h"

typedef struct {
    const char *id, *hook, *title, *description;
    const char **tasks;   /* task ids scored by this service */
    size_t n_tasks;
    cJSON *prefetch;      /* prefetch templates, key -> relative FHIR query (borrowed from the
                             config tree); every token is one serve_prefetch_expand knows */
    int show_info;        /* also return info cards (risk below the warning threshold) */
} serve_service;

typedef struct {
    const char *code, *system, *display;
} serve_coding;

typedef struct {
    const char *iss;
    char *jwks_path;
} serve_issuer;

typedef struct {
    char *dir;                     /* directory of the configuration file */
    const char *listen;
    int port, threads;
    char *tls_cert, *tls_key;      /* both or neither */
    const char *base_url;          /* public URL of the service, without /cds-services */
    char *database, *secret_file;
    /* limits */
    size_t max_body;
    size_t max_pending_body;       /* request body bytes buffered at once, over all connections */
    int max_depth, connection_timeout_s, request_timeout_ms, max_connections;
    int header_timeout_s;          /* absolute: request line and headers within this */
    int body_timeout_s;            /* absolute: the body within this once the headers are in */
    int max_connections_per_client;/* per client address; 0: no limit */
    double rate_per_minute, burst; /* per authenticated principal */
    double client_rate_per_minute, client_burst; /* per client address, for requests that
                                                    identify no one (0: off) */
    /* auth */
    serve_issuer *issuers;
    size_t n_issuers;
    const char **extra_base_urls;  /* other public base URLs of the service (JWT aud) */
    size_t n_extra_base_urls;
    int max_token_lifetime_s, clock_skew_s;
    size_t replay_cache_max;
    /* CORS: origins browser-based EHRs call from ("https://host[:port]"); none: no CORS */
    const char **cors_origins;
    size_t n_cors_origins;
    int cors_max_age_s;
    /* FHIR servers the service may read from (CDS Hooks fhirServer); none: never calls out */
    const char **fhir_servers;
    size_t n_fhir_servers;
    int fhir_timeout_ms, fhir_max_pages;
    size_t fhir_max_bytes;
    char *fhir_ca_file;            /* NULL: the system's CA store */
    /* audit anchors (serve_db.h) */
    int anchor_interval_s;
    char *anchor_file;             /* NULL: none besides the head file */
    int anchor_syslog;
    /* clinical */
    serve_task *tasks;
    size_t n_tasks;
    serve_service *services;
    size_t n_services, cap_services;
    serve_coding *override_reasons;
    size_t n_override_reasons;
    int prediction_time_now;       /* 1: the request time; 0: the patient's last event */
    serve_summary_opts summary;
    int access_log;
    int card_cache;                /* scores kept for repeated requests (serve_cache.h); 0: off */
    int occlusion_batch;           /* model predictor: occlusion variants per batched pass */
    const cJSON *reference_model;  /* NULL when absent */
    cJSON *root;                   /* the parsed file; strings above point into it */
} serve_config;

/* Parses configuration text; dir resolves relative paths, name labels messages. */
int serve_config_parse(serve_config *c, const char *text, size_t len, const char *dir,
                       const char *name, cf_err *err);
int serve_config_load(serve_config *c, const char *path, cf_err *err);
void serve_config_free(serve_config *c);

const serve_task *serve_config_task(const serve_config *c, const char *id);
const serve_service *serve_config_service(const serve_config *c, const char *id);

/* Reads a whole (small) file, NUL-terminated; CF_EINPUT naming the path when unreadable. */
int serve_read_file(const char *path, size_t max, char **out, size_t *len, cf_err *err);

#endif
