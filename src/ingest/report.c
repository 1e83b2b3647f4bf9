/* Ingestion accounting; see report.h. */
#include "ingest/report.h"

#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "util/json.h"

void ingest_report_init(ingest_report *r, int strict) {
    memset(r, 0, sizeof *r);
    r->strict = strict;
}

void ingest_report_free(ingest_report *r) {
    for (size_t i = 0; i < r->n_rej; i++) {
        free(r->rej[i].source);
        free(r->rej[i].reason);
        for (int k = 0; k < r->rej[i].n_examples; k++) free(r->rej[i].examples[k]);
    }
    for (size_t i = 0; i < r->n_src; i++) {
        free(r->src[i].source);
        free(r->src[i].file);
    }
    free(r->rej);
    free(r->src);
    memset(r, 0, sizeof *r);
}

ingest_source_stats *ingest_report_source(ingest_report *r, const char *source, const char *file) {
    for (size_t i = 0; i < r->n_src; i++)
        if (!strcmp(r->src[i].source, source)) return &r->src[i];
    ingest_source_stats *p = cf_grow(r->src, &r->cap_src, r->n_src + 1, sizeof *p, 16);
    if (!p) return NULL;
    r->src = p;
    ingest_source_stats *s = &r->src[r->n_src];
    memset(s, 0, sizeof *s);
    s->source = strdup(source);
    s->file = strdup(file ? file : "");
    if (!s->source || !s->file) {
        free(s->source);
        free(s->file);
        return NULL;
    }
    r->n_src++;
    return s;
}

int ingest_reject(ingest_report *r, const char *source, const char *reason, const char *location,
                  cf_err *err) {
    if (r->strict)
        return cf_fail(err, CF_EINPUT, "%s: %s (rejected; --strict makes rejections fatal)",
                       location, reason);
    ingest_rejection *e = NULL;
    for (size_t i = 0; i < r->n_rej; i++)
        if (!strcmp(r->rej[i].source, source) && !strcmp(r->rej[i].reason, reason)) {
            e = &r->rej[i];
            break;
        }
    if (!e) {
        ingest_rejection *p = cf_grow(r->rej, &r->cap_rej, r->n_rej + 1, sizeof *p, 16);
        if (!p) return cf_fail(err, CF_EINTERNAL, "out of memory");
        r->rej = p;
        e = &r->rej[r->n_rej];
        memset(e, 0, sizeof *e);
        e->source = strdup(source);
        e->reason = strdup(reason);
        if (!e->source || !e->reason) {
            free(e->source);
            free(e->reason);
            return cf_fail(err, CF_EINTERNAL, "out of memory");
        }
        r->n_rej++;
    }
    e->count++;
    if (e->n_examples < REPORT_EXAMPLES) {
        char *copy = strdup(location);
        if (copy) e->examples[e->n_examples++] = copy;
    }
    return CF_OK;
}

uint64_t ingest_report_total_rejected(const ingest_report *r) {
    uint64_t n = 0;
    for (size_t i = 0; i < r->n_rej; i++) n += r->rej[i].count;
    return n;
}

void ingest_report_print(const ingest_report *r, FILE *out) {
    fprintf(out, "%-28s %10s %10s %10s %10s\n", "source", "rows", "events", "filtered", "rejected");
    for (size_t i = 0; i < r->n_src; i++) {
        const ingest_source_stats *s = &r->src[i];
        fprintf(out, "%-28s %10llu %10llu %10llu %10llu", s->source,
                (unsigned long long)s->rows, (unsigned long long)s->events,
                (unsigned long long)s->rows_filtered, (unsigned long long)s->rows_rejected);
        if (s->files > 1) fprintf(out, "  (%llu files)", (unsigned long long)s->files);
        if (s->events_rejected) fprintf(out, "  (%llu events rejected)", (unsigned long long)s->events_rejected);
        fputc('\n', out);
    }
    if (!r->n_rej) {
        fprintf(out, "rejections: none\n");
        return;
    }
    fprintf(out, "rejections (%llu):\n", (unsigned long long)ingest_report_total_rejected(r));
    for (size_t i = 0; i < r->n_rej; i++) {
        const ingest_rejection *e = &r->rej[i];
        fprintf(out, "  %8llu  %s: %s (e.g. %s", (unsigned long long)e->count, e->source,
                e->reason, e->examples[0] ? e->examples[0] : "?");
        for (int k = 1; k < e->n_examples; k++) fprintf(out, ", %s", e->examples[k]);
        fprintf(out, ")\n");
    }
}

char *ingest_report_json(const ingest_report *r) {
    cJSON *root = cJSON_CreateObject();
    cJSON *srcs = cJSON_AddArrayToObject(root, "sources");
    for (size_t i = 0; i < r->n_src; i++) {
        const ingest_source_stats *s = &r->src[i];
        cJSON *o = cJSON_CreateObject();
        JSON_ADD_STRINGS(o, {"source", s->source}, {"file", s->file});
        JSON_ADD_NUMBERS(o, {"rows", (double)s->rows}, {"rows_with_events", (double)s->rows_with_events},
                         {"rows_filtered", (double)s->rows_filtered}, {"rows_rejected", (double)s->rows_rejected},
                         {"events", (double)s->events}, {"events_rejected", (double)s->events_rejected},
                         {"files", (double)s->files});
        cJSON_AddItemToArray(srcs, o);
    }
    cJSON *rejs = cJSON_AddArrayToObject(root, "rejections");
    for (size_t i = 0; i < r->n_rej; i++) {
        const ingest_rejection *e = &r->rej[i];
        cJSON *o = cJSON_CreateObject();
        JSON_ADD_STRINGS(o, {"source", e->source}, {"reason", e->reason});
        cJSON_AddNumberToObject(o, "count", (double)e->count);
        cJSON *ex = cJSON_AddArrayToObject(o, "examples");
        for (int k = 0; k < e->n_examples; k++) cJSON_AddItemToArray(ex, cJSON_CreateString(e->examples[k]));
        cJSON_AddItemToArray(rejs, o);
    }
    char *s = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return s;
}
