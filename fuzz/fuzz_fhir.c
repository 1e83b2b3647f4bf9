/* Fuzz target for FHIR ingestion (parsing, mapping and commit layers, without a store).
 *
 * The first byte selects the mode: bit 0 set = NDJSON lines, clear = one bundle file; bit 1 set =
 * the NDJSON "file" is named Observation.000.ndjson, so every line must be an Observation. The
 * rest of the input is the content. Each input is ingested twice, leniently and strictly, and
 * the results must agree with the accounting rules: every resource is counted once per source
 * (rows = with events + filtered + rejected), the report's rejections add up, and strict mode
 * fails exactly when lenient mode rejected something. Any disagreement aborts. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ingest/fhir.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    int ndjson = data[0] & 1;
    const char *name = !ndjson ? "fuzz.json" : (data[0] & 2) ? "Observation.000.ndjson" : "fuzz.ndjson";
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    int kind = ndjson ? FHIR_BUFFER_NDJSON : FHIR_BUFFER_BUNDLE;

    ingest_report rep;
    ingest_report_init(&rep, 0);
    cf_err err = {0};
    fhir_options lenient = {0, 0}, strict = {1, 0};
    int rc = fhir_ingest_buffer(name, text, len, kind, NULL, &rep, &lenient, &err);
    if (rc != CF_OK && rc != CF_EINTERNAL) abort(); /* lenient mode only fails on resources */
    uint64_t rejected = 0;
    for (size_t i = 0; i < rep.n_src; i++) {
        const ingest_source_stats *s = &rep.src[i];
        if (s->rows != s->rows_with_events + s->rows_filtered + s->rows_rejected) abort();
        if (s->rows_with_events > s->events) abort();
        rejected += s->rows_rejected;
    }
    if (rc == CF_OK && rejected != ingest_report_total_rejected(&rep)) abort();
    ingest_report_free(&rep);

    ingest_report_init(&rep, 1);
    cf_err serr = {0};
    int src = fhir_ingest_buffer(name, text, len, kind, NULL, &rep, &strict, &serr);
    if (rc == CF_OK) {
        if (rejected && src != CF_EINPUT) abort();
        if (!rejected && src != CF_OK) abort();
        if (src == CF_EINPUT && !strstr(serr.msg, "--strict")) abort();
    }
    ingest_report_free(&rep);
    return 0;
}
