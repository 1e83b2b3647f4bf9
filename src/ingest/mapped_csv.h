/* The mapped-CSV engine: reads every table a mapping file declares, row by row, and turns each
 * row into the events the mapping describes (see mapping.h), writing them to a store writer.
 *
 * A row yields all of its events or none: if any event of a row cannot be built (unparsable time,
 * number or subject id; a join without a match; a wrong field count), the whole row is rejected
 * and counted with its reason in the report, so that a row is never half-ingested. Rows for which
 * every event's `where` condition is false are counted as filtered. */
#ifndef CLINFM_INGEST_MAPPED_CSV_H
#define CLINFM_INGEST_MAPPED_CSV_H

#include "ingest/mapping.h"
#include "ingest/report.h"
#include "store/store.h"

typedef struct {
    const char *only_tables; /* comma-separated table names to ingest, or NULL for all */
    int show_progress;
    int threads;             /* worker threads; 0 = 2 */
} mapped_csv_options;

int mapped_csv_ingest(mapping *m, const char *input_dir, store_writer *w, ingest_report *rep,
                      const mapped_csv_options *opt, cf_err *err);

#endif
