/* Prometheus text exposition of the service's counters; see serve_metrics.h. */
#include "serve/serve_metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/progress.h"
#include "util/sbuf.h"

static const int statuses[SERVE_N_STATUS] = {200, 204, 400, 401, 403, 404, 405, 408,
                                             412, 413, 415, 429, 500, 503, 0};
static const char *const refused_names[SERVE_N_REFUSED] = {
    "unauthenticated", "client_budget", "framing", "header_deadline", "body_deadline",
    "pending_body"};
static const double bounds[SERVE_N_BUCKETS - 1] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                   0.1,   0.25,   0.5,   1,    2.5};
static const char *const routes[SERVE_N_ROUTES] = {
    "/cds-services", "/cds-services/{id}", "/cds-services/{id}/feedback", "/v1/risk",
    "/v1/patients/{id}/risk", "/v1/summary", "/v1/patients/{id}/summary", "/v1/tasks",
    "/healthz", "/metrics", "other"};

const char *serve_route_name(int route) {
    return route >= 0 && route < SERVE_N_ROUTES ? routes[route] : "other";
}

void serve_metrics_init(serve_metrics *m) {
    memset(m, 0, sizeof *m);
    m->start_s = now_seconds();
}

int serve_metrics_status_index(int status) {
    for (int i = 0; i < SERVE_N_STATUS - 1; i++)
        if (statuses[i] == status) return i;
    return SERVE_N_STATUS - 1;
}

int serve_metrics_status_at(int i) { return i >= 0 && i < SERVE_N_STATUS ? statuses[i] : 0; }

void serve_metrics_record(serve_metrics *m, int route, int status, int64_t latency_us) {
    if (route < 0 || route >= SERVE_N_ROUTES) route = SERVE_R_OTHER;
    int si = serve_metrics_status_index(status);
    atomic_fetch_add_explicit(&m->by_status[route][si], 1, memory_order_relaxed);
    double s = (double)latency_us / 1e6;
    int b = SERVE_N_BUCKETS - 1;
    for (int i = 0; i < SERVE_N_BUCKETS - 1; i++)
        if (s <= bounds[i]) {
            b = i;
            break;
        }
    atomic_fetch_add_explicit(&m->bucket[route][b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->latency_us_sum[route], (uint_fast64_t)(latency_us > 0 ? latency_us : 0),
                              memory_order_relaxed);
    if (status >= 500) atomic_fetch_add_explicit(&m->errors_5xx[route], 1, memory_order_relaxed);
    else if (status >= 400) atomic_fetch_add_explicit(&m->errors_4xx[route], 1, memory_order_relaxed);
}

/* Label values here are fixed strings or the operator's model name; escape anyway. */
static void put_label(sbuf *b, const char *s) {
    for (; *s; s++) {
        if (*s == '\\' || *s == '"') sbuf_fmt(b, "\\%c", *s);
        else if (*s == '\n') sbuf_fmt(b, "\\n");
        else sbuf_fmt(b, "%c", *s);
    }
}

/* One unlabelled counter or gauge: its HELP and TYPE lines and its value. */
static void put_scalar(sbuf *b, const char *name, const char *type, const char *help, unsigned long long v) {
    sbuf_fmt(b, "# HELP %s %s\n# TYPE %s %s\n%s %llu\n", name, help, name, type, name, v);
}

char *serve_metrics_text(serve_metrics *m, const char *model, const char *version, size_t *len) {
    sbuf b = {0};
    sbuf_fmt(&b, "# HELP clinfm_build_info The model the service scores with.\n"
            "# TYPE clinfm_build_info gauge\nclinfm_build_info{model=\"");
    put_label(&b, model);
    sbuf_fmt(&b, "\",model_version=\"");
    put_label(&b, version);
    sbuf_fmt(&b, "\"} 1\n");
    sbuf_fmt(&b, "# HELP clinfm_uptime_seconds Seconds since the service started.\n"
            "# TYPE clinfm_uptime_seconds gauge\nclinfm_uptime_seconds %.3f\n",
        now_seconds() - m->start_s);
    sbuf_fmt(&b, "# HELP clinfm_http_requests_in_flight Requests being handled.\n"
            "# TYPE clinfm_http_requests_in_flight gauge\nclinfm_http_requests_in_flight %lld\n",
        (long long)atomic_load(&m->in_flight));
    put_scalar(&b, "clinfm_audit_write_failures_total", "counter", "Audit rows that could not be written.",
               (unsigned long long)atomic_load(&m->audit_failures));
    put_scalar(&b, "clinfm_integrity_failures_total", "counter",
               "Key or card rows failing their MAC, and anchors refused because the chain broke.",
               (unsigned long long)atomic_load(&m->integrity_failures));
    sbuf_fmt(&b, "# HELP clinfm_http_refused_total Requests and connections refused before anyone was "
            "identified, by reason.\n# TYPE clinfm_http_refused_total counter\n");
    for (int i = 0; i < SERVE_N_REFUSED; i++)
        sbuf_fmt(&b, "clinfm_http_refused_total{reason=\"%s\"} %llu\n", refused_names[i],
            (unsigned long long)atomic_load(&m->refused[i]));
    put_scalar(&b, "clinfm_fhir_reads_total", "counter", "Reads from an EHR's FHIR server.",
               (unsigned long long)atomic_load(&m->fhir_reads));
    put_scalar(&b, "clinfm_fhir_read_failures_total", "counter",
               "FHIR server reads that gave no usable data (error, timeout, OperationOutcome).",
               (unsigned long long)atomic_load(&m->fhir_read_failures));
    put_scalar(&b, "clinfm_store_fallbacks_total", "counter",
               "Hook calls scored from the store because prefetch and the FHIR server fell short.",
               (unsigned long long)atomic_load(&m->store_fallbacks));
    put_scalar(&b, "clinfm_precondition_failed_total", "counter",
               "Hook calls answered 412: the patient's data could be found nowhere.",
               (unsigned long long)atomic_load(&m->precondition_failed));
    put_scalar(&b, "clinfm_card_cache_hits_total", "counter", "Scores served from the card cache.",
               (unsigned long long)atomic_load(&m->cache_hits));
    put_scalar(&b, "clinfm_card_cache_misses_total", "counter", "Scores computed because the card cache had none.",
               (unsigned long long)atomic_load(&m->cache_misses));
    put_scalar(&b, "clinfm_card_cache_entries", "gauge", "Scores held in the card cache.",
               (unsigned long long)atomic_load(&m->cache_entries));
    put_scalar(&b, "clinfm_card_cache_capacity", "gauge", "Configured size of the card cache (0: off).",
               (unsigned long long)atomic_load(&m->cache_capacity));
    sbuf_fmt(&b, "# HELP clinfm_http_requests_total Requests by route and status.\n"
            "# TYPE clinfm_http_requests_total counter\n");
    for (int r = 0; r < SERVE_N_ROUTES; r++)
        for (int s = 0; s < SERVE_N_STATUS; s++) {
            unsigned long long v = atomic_load(&m->by_status[r][s]);
            if (!v) continue;
            if (statuses[s])
                sbuf_fmt(&b, "clinfm_http_requests_total{route=\"%s\",status=\"%d\"} %llu\n", routes[r],
                    statuses[s], v);
            else
                sbuf_fmt(&b, "clinfm_http_requests_total{route=\"%s\",status=\"other\"} %llu\n",
                    routes[r], v);
        }
    sbuf_fmt(&b, "# HELP clinfm_http_errors_total Error responses by route and class.\n"
            "# TYPE clinfm_http_errors_total counter\n");
    for (int r = 0; r < SERVE_N_ROUTES; r++) {
        sbuf_fmt(&b, "clinfm_http_errors_total{route=\"%s\",class=\"4xx\"} %llu\n", routes[r],
            (unsigned long long)atomic_load(&m->errors_4xx[r]));
        sbuf_fmt(&b, "clinfm_http_errors_total{route=\"%s\",class=\"5xx\"} %llu\n", routes[r],
            (unsigned long long)atomic_load(&m->errors_5xx[r]));
    }
    sbuf_fmt(&b, "# HELP clinfm_http_request_duration_seconds Time to handle a request.\n"
            "# TYPE clinfm_http_request_duration_seconds histogram\n");
    for (int r = 0; r < SERVE_N_ROUTES; r++) {
        unsigned long long cum = 0;
        for (int i = 0; i < SERVE_N_BUCKETS; i++) {
            cum += atomic_load(&m->bucket[r][i]);
            if (i < SERVE_N_BUCKETS - 1)
                sbuf_fmt(&b, "clinfm_http_request_duration_seconds_bucket{route=\"%s\",le=\"%g\"} %llu\n",
                    routes[r], bounds[i], cum);
            else
                sbuf_fmt(&b, "clinfm_http_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"} %llu\n",
                    routes[r], cum);
        }
        sbuf_fmt(&b, "clinfm_http_request_duration_seconds_sum{route=\"%s\"} %.6f\n", routes[r],
            (double)atomic_load(&m->latency_us_sum[r]) / 1e6);
        sbuf_fmt(&b, "clinfm_http_request_duration_seconds_count{route=\"%s\"} %llu\n", routes[r], cum);
    }
    return sbuf_take(&b, len);
}
