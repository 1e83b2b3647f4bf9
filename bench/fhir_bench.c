/* FHIR ingestion driver for bench/fhir_bench.sh, used until `clinfm ingest --format fhir` exists:
 * the same work as the command (fhir_ingest into a store writer, then finish) without the CLI.
 *
 * Build: cc -std=c11 -O2 -D_GNU_SOURCE -Isrc -pthread bench/fhir_bench.c build/libclinfm.a \
 *           -lcjson -lsodium -lzstd -lz -lm -lpthread -ldeflate -o /tmp/fhir_ingest
 * Run:   /tmp/fhir_ingest data/synthea-fhir-r4 /tmp/synthea.store [--memory-mb N] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ingest/fhir.h"
#include "ingest/report.h"
#include "store/store.h"

int main(int argc, char **argv) {
    if (argc != 3 && !(argc == 5 && !strcmp(argv[3], "--memory-mb"))) {
        fprintf(stderr, "usage: fhir_ingest INPUT STORE [--memory-mb N]\n");
        return 1;
    }
    store_writer_options wopt = {.memory_budget = argc == 5 ? (size_t)atoi(argv[4]) << 20 : 0};
    cf_err err = {0};
    store_writer *w = NULL;
    ingest_report rep;
    ingest_report_init(&rep, 0);
    fhir_options opt = {.show_progress = 1};
    int rc = store_writer_open(&w, argv[2], &wopt, &err);
    if (!rc) {
        rc = fhir_ingest(argv[1], w, &rep, &opt, &err);
        if (rc) store_writer_abort(w);
        else rc = store_writer_finish(w, &err);
    }
    if (rc) cf_err_print(&err);
    else fprintf(stderr, "%llu rejected\n", (unsigned long long)ingest_report_total_rejected(&rep));
    ingest_report_free(&rep);
    return rc;
}
