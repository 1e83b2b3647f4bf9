/* Ingest's up-front room check: how big the store will be, and how much disk the writer needs at
 * its peak (the store, its spilled runs while the store is written, the long texts it keeps
 * aside until then), said before a row is ingested, so that a filesystem without that room is
 * named at once rather than after an hour of reading. The writer's own check at the end
 * (store_writer_finish) stays as the backstop.
 *
 * CSV (a mapping): the selected tables are sampled through the mapping, joins and all, into a
 * throw-away store in the temporary folder (TMPDIR, else /tmp): INGEST_ROOM_SAMPLE input bytes
 * in all, shared in proportion to the tables' sizes so that the sample's events mix as the
 * whole's do, each table's first bytes (at least MAPPED_CSV_SAMPLE_MIN). A table's events per
 * input byte scale to its size (gzip files: csv_input_size), and the sample store's bytes per
 * event (its long texts counted apart) to the events. A small store carries its code dictionary
 * and block headers over few events, so the estimate errs large; a table read whole is exact.
 * In the default mode a filesystem with INGEST_ROOM_AMPLE times the inputs' bytes free (plus a
 * GiB) is not sampled: no shipped mapping makes a store that large (docs/SCALE.md).
 *
 * FHIR: the same sample (fhir_options.sample_bytes): every k-th bundle, each NDJSON file's first
 * lines, Patient and Medication NDJSON files whole; it scales as one, and every text the sample
 * store holds counts as a long one. */
#ifndef CLINFM_INGEST_ROOM_H
#define CLINFM_INGEST_ROOM_H

#include <stdint.h>
#include <stdio.h>

#include "ingest/mapping.h"
#include "util/err.h"

#define INGEST_ROOM_SAMPLE ((size_t)32 << 20)
#define INGEST_ROOM_AMPLE 8

enum { INGEST_ROOM_AUTO = 0, INGEST_ROOM_ALWAYS = 1, INGEST_ROOM_OFF = 2 };

typedef struct {
    uint64_t input_bytes;  /* the inputs' bytes (uncompressed) */
    uint64_t events;       /* estimated events (0 when not sampled) */
    uint64_t store_bytes;  /* estimated store size (0 when not estimated) */
    uint64_t need_bytes;   /* disk the writer needs at its peak on the output's filesystem */
    int sampled;
    double seconds;        /* the check's own time */
} ingest_room;

/* Estimates (mode INGEST_ROOM_AUTO or _ALWAYS, see above), says the estimate on say (NULL:
 * silent) and refuses (CF_EINPUT, naming --room-check off) when the filesystem that will hold
 * out lacks the room. m is NULL for FHIR (input a file or folder); only_tables and threads as
 * for mapped_csv_options. r may be NULL. */
int ingest_room_check(int mode, mapping *m, const char *input, const char *only_tables, int threads, const char *out,
                      FILE *say, ingest_room *r, cf_err *err);

#endif
