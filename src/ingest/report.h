/* Accounting for ingestion: every input row (or FHIR resource) ends up as events, as filtered
 * (excluded on purpose by the mapping), or as a counted rejection with a reason. Nothing is
 * dropped silently. Rejections keep the first few locations (file and line, or file and
 * resource id and JSON path) as examples, never field values, since values may be PHI.
 *
 * Under --strict the first rejection is fatal: ingest_reject returns CF_EINPUT and the caller
 * aborts the store. */
#ifndef CLINFM_INGEST_REPORT_H
#define CLINFM_INGEST_REPORT_H

#include <stdint.h>
#include <stdio.h>

#include "util/err.h"

#define REPORT_EXAMPLES 3

typedef struct {
    char *source;                   /* e.g. "hosp/labevents" or "Observation" */
    char *reason;                   /* e.g. "unparsable time in column 'charttime'" */
    uint64_t count;
    char *examples[REPORT_EXAMPLES];/* "hosp/labevents.csv.gz:1234" */
    int n_examples;
} ingest_rejection;

/* rows = rows_with_events + rows_filtered + rows_rejected. A row is rejected when it yields no
 * event and at least one of its events (or the row itself) failed; events_rejected counts every
 * event that failed, including those of rows whose other events were kept. */
typedef struct {
    char *source;
    char *file;
    uint64_t rows, rows_with_events, rows_filtered, rows_rejected, events, events_rejected;
    uint64_t files;  /* files read (a table may be a folder of files); 0 for an absent optional table */
} ingest_source_stats;

typedef struct {
    int strict;
    ingest_rejection *rej;
    size_t n_rej, cap_rej;
    ingest_source_stats *src;
    size_t n_src, cap_src;
} ingest_report;

void ingest_report_init(ingest_report *r, int strict);
void ingest_report_free(ingest_report *r);
/* Returns the stats record for source (created on first use), or NULL on out-of-memory. */
ingest_source_stats *ingest_report_source(ingest_report *r, const char *source, const char *file);
/* Counts one rejection. location names file and line (or resource id and JSON path).
 * Returns CF_OK, or CF_EINPUT under --strict with err describing the rejection. */
int ingest_reject(ingest_report *r, const char *source, const char *reason, const char *location,
                  cf_err *err);
uint64_t ingest_report_total_rejected(const ingest_report *r);
/* Human-readable summary (per source: rows, events, filtered, rejected; then reasons). */
void ingest_report_print(const ingest_report *r, FILE *out);
/* JSON object {"sources": [...], "rejections": [...]} as a malloc'd string. */
char *ingest_report_json(const ingest_report *r);

#endif
