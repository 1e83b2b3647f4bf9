/* What the generator writes, whatever the layout: growable byte buffers, times and CSV fields,
 * and the function table an output format fills (FHIR NDJSON in synth_fhir.c, MIMIC-IV tables
 * in synth_mimic.c, OMOP CDM tables in synth_omop.c).
 *
 * A format is a list of tables (files under the output folder) and a function that appends one
 * patient's rows to one buffer per table, counting rows and the events `clinfm ingest` makes of
 * them with the shipped reader or mapping. Dictionary tables (d_labitems, CONCEPT...) are written
 * whole before any patient. The function may run on any worker thread: it reads only the
 * patient, the format's context (built once, then read-only) and its own random stream, keyed by
 * (seed, patient), so the bytes do not depend on the thread count. */
#ifndef CLINFM_SYNTH_SYNTH_OUT_H
#define CLINFM_SYNTH_SYNTH_OUT_H

#include <stddef.h>
#include <stdint.h>

#include "synth/sim.h"
#include "synth/synth.h"
#include "util/err.h"
#include "util/sbuf.h"

/* The layouts' output: a util/sbuf (bytes in p, len of them, oom after a failed write). */
typedef sbuf synth_buf;

void synth_buf_put(synth_buf *s, const char *p, size_t n);
void synth_buf_str(synth_buf *s, const char *p);
void synth_buf_u64(synth_buf *s, uint64_t v);
/* "YYYY-MM-DDTHH:MM:SSZ" (or the date alone) of a time in days since 1970. */
void synth_buf_time(synth_buf *s, double day, int date_only);
/* "YYYY-MM-DD HH:MM:SS", as MIMIC-IV and OMOP CSV exports write datetimes (no zone: UTC). */
void synth_buf_datetime(synth_buf *s, double day);
/* v with dec decimals (0 to 6). */
void synth_buf_fixed(synth_buf *s, double v, int dec);
/* A CSV field (RFC 4180): quoted, with quotes doubled, when it holds a comma, a quote or a line break. */
void synth_buf_csv(synth_buf *s, const char *v);
/* The same without the separator's dots (ICD codes as MIMIC writes them: "I21.9" -> "I219"). */
void synth_buf_nodot(synth_buf *s, const char *v);

/* The integer subject id of patient `index` in the CSV layouts (MIMIC subject_id, OMOP person_id):
 * eight digits from 10000000, as in MIMIC-IV. Row ids of a patient's other records are built
 * from it (docs/SYNTH.md), so they are unique without any shared counter. */
static inline uint64_t synth_subject_id(uint64_t index) { return 10000000ULL + index; }

typedef struct {
    const char *name;    /* the source name `clinfm ingest --report` gives it (a FHIR type, a mapping table) */
    const char *path;    /* under the output folder */
    const char *header;  /* CSV header line ending in "\n", or NULL (NDJSON) */
    int gzip;            /* written gzip-compressed */
    int dictionary;      /* a lookup table (written whole before any patient; no events of its own) */
    int unmapped;        /* written for completeness, read by no shipped mapping (0 events) */
} synth_table;

typedef struct {
    const char *name;         /* "fhir-ndjson", "mimic-csv", "omop-csv" */
    size_t n_tables;
    const synth_table *tables;
    const char *truth_key;    /* "fhir_id" (the Patient id) or "subject_id" (the integer id) */
    void *ctx;                /* the format's own tables (read-only once made) */
    /* rows of the dictionary tables: out[t] for each table t marked dictionary */
    void (*dictionaries)(const void *ctx, synth_buf *out, uint64_t *rows);
    /* one patient's rows: out[t] += rows, rows[t] += rows written, events[t] += events made of them */
    void (*patient)(const void *ctx, const synth_patient *p, synth_buf *out, uint64_t *rows, uint64_t *events);
    /* the file name (without .csv) of truth task k of the world, or NULL when this layout has no
     * task that reads it */
    const char *(*truth_task)(const void *ctx, size_t k);
    void (*free)(void *ctx);
} synth_format;

#endif
