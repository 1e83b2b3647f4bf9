/* The mapped-CSV engine: reads every table a mapping file declares, row by row, and turns each
 * row into the events the mapping describes (see mapping.h), writing them to a store writer.
 *
 * A table is one file or a folder of files (a pattern). Each event of a row is built on its own:
 * one that cannot be built (an unparsable time or number, a join without a match) is rejected and
 * counted with its reason, and the row's other events are kept; a row without a readable subject,
 * or with a wrong field count, is rejected whole. A row that yields no event is filtered (its
 * conditions excluded everything) or rejected (something failed). An event that rejects every row
 * it applies to, or a table whose every row is rejected, is a fatal mapping error unless the
 * mapping says `may_be_empty = yes`. Missing input files are reported before any row is read. */
#ifndef CLINFM_INGEST_MAPPED_CSV_H
#define CLINFM_INGEST_MAPPED_CSV_H

#include "ingest/mapping.h"
#include "ingest/report.h"
#include "store/store.h"

/* A chunk stays in a core's L2 cache while it is parsed and mapped: 1 MiB chunks cost 5-10% more
 * CPU than 64-256 KiB ones on the MIMIC demo at 10x (two threads, loaded machine). */
#define MAPPED_CSV_CHUNK_BYTES ((size_t)256 << 10)

/* Threads: up to two tables are read at a time, and the rows of a table (one without `once`
 * events) are cut into chunks of whole records that `threads` threads map in parallel; chunks are
 * committed in file order, so the store and the report are the same for any thread count. */
typedef struct {
    const char *only_tables; /* comma-separated table names to ingest, or NULL for all */
    int show_progress;
    int threads;             /* threads; 0 = the machine's online processors */
    size_t chunk_bytes;      /* bytes of input per chunk; 0 = MAPPED_CSV_CHUNK_BYTES (tests use tiny ones) */
    /* A sample, for ingest's up-front room estimate: when sample_bytes > 0, about that many
     * (uncompressed) input bytes are read in all, each table's share in proportion to its size
     * (so the sample's events mix as the whole's do) and at least MAPPED_CSV_SAMPLE_MIN; the
     * checks that need the whole table (an event that rejected every row) are skipped, and
     * sample[table index] says what was read. */
    size_t sample_bytes;
    struct mapped_csv_sample *sample; /* (m->n_tables); NULL without sampling */
} mapped_csv_options;

/* What the sample of one table read and made. A table read to its end (cut == 0) is exact;
 * otherwise its events scale by total / read. */
typedef struct mapped_csv_sample {
    uint64_t events;     /* events made from the rows read */
    uint64_t long_text;  /* bytes of those events' texts longer than MAPPED_CSV_LONG_TEXT */
    uint64_t read;       /* input bytes read (headers and records, uncompressed) */
    uint64_t total;      /* the table's input bytes: file sizes, gzip ones as csv_input_size says */
    uint64_t budget;     /* the bytes its sample was to read */
    int cut;             /* the sample stopped before the table's end */
} mapped_csv_sample;

/* The store writer shares texts up to this length (one copy each); longer ones are stored as
 * they come, so the room estimate counts their bytes apart from the events'. */
#define MAPPED_CSV_LONG_TEXT 64
#define MAPPED_CSV_SAMPLE_MIN ((uint64_t)256 << 10)

/* The input bytes of the selected tables (uncompressed; gzip files estimated by csv_input_size). */
int mapped_csv_input_bytes(const mapping *m, const char *input_dir, const char *only_tables, uint64_t *bytes,
                           cf_err *err);
int mapped_csv_ingest(mapping *m, const char *input_dir, store_writer *w, ingest_report *rep,
                      const mapped_csv_options *opt, cf_err *err);

#endif
