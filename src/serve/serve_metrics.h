/* Prometheus metrics for the service: requests by route and status, latency histograms and error
 * counts by route, requests in flight, requests and connections refused before anyone was
 * identified (by reason), audit write failures, integrity failures, card cache hits and misses,
 * FHIR server reads. Counters are C11 atomics, so recording costs a few relaxed increments and no
 * lock. Routes are templates ("/v1/patients/{id}/summary"), never raw paths, so no patient id can
 * reach a metric label. */
#ifndef CLINFM_SERVE_SERVE_METRICS_H
#define CLINFM_SERVE_SERVE_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

enum {
    SERVE_R_DISCOVERY, SERVE_R_HOOK, SERVE_R_FEEDBACK, SERVE_R_RISK, SERVE_R_PATIENT_RISK,
    SERVE_R_SUMMARY, SERVE_R_PATIENT_SUMMARY, SERVE_R_TASKS, SERVE_R_HEALTH, SERVE_R_METRICS,
    SERVE_R_OTHER, SERVE_N_ROUTES
};

#define SERVE_N_STATUS 15
#define SERVE_N_BUCKETS 12

/* Why a request or connection was refused before anyone was identified. */
enum {
    SERVE_REFUSED_UNAUTHENTICATED, /* no token, or one that does not verify (401) */
    SERVE_REFUSED_CLIENT_BUDGET,   /* the client address spent limits.client_* (429) */
    SERVE_REFUSED_FRAMING,         /* conflicting Content-Length / Transfer-Encoding (400) */
    SERVE_REFUSED_HEADER_DEADLINE, /* connection closed: headers not in by header_timeout_s */
    SERVE_REFUSED_BODY_DEADLINE,   /* connection closed: body not in by body_timeout_s */
    SERVE_REFUSED_PENDING_BODY,    /* 503: max_pending_body_bytes buffered already */
    SERVE_N_REFUSED
};

typedef struct {
    atomic_uint_fast64_t by_status[SERVE_N_ROUTES][SERVE_N_STATUS];
    atomic_uint_fast64_t bucket[SERVE_N_ROUTES][SERVE_N_BUCKETS]; /* non-cumulative */
    atomic_uint_fast64_t latency_us_sum[SERVE_N_ROUTES];
    atomic_uint_fast64_t errors_4xx[SERVE_N_ROUTES], errors_5xx[SERVE_N_ROUTES];
    atomic_int_fast64_t in_flight;
    atomic_uint_fast64_t audit_failures;
    atomic_uint_fast64_t refused[SERVE_N_REFUSED];
    atomic_uint_fast64_t integrity_failures; /* key / card rows failing their MAC, broken chain */
    atomic_uint_fast64_t fhir_reads, fhir_read_failures, store_fallbacks, precondition_failed;
    /* card cache (serve_cache.h): lookups that found a score, lookups that did not, entries
     * held, and the configured size (0: the cache is off and nothing is counted) */
    atomic_uint_fast64_t cache_hits, cache_misses, cache_entries, cache_capacity;
    double start_s;
} serve_metrics;

void serve_metrics_init(serve_metrics *m);
void serve_metrics_record(serve_metrics *m, int route, int status, int64_t latency_us);
/* The index of status in by_status (the last one: any other status). */
int serve_metrics_status_index(int status);
/* The status at index i (0 for "other"). */
int serve_metrics_status_at(int i);
/* The route template of a route id ("/cds-services/{id}"). */
const char *serve_route_name(int route);
/* Prometheus text exposition (format 0.0.4); malloc'd, NULL on out-of-memory. */
char *serve_metrics_text(serve_metrics *m, const char *model, const char *version, size_t *len);

#endif
