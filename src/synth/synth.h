/* `clinfm synth`: a synthetic population with known ground truth.
 *
 * synth_run simulates patients 0..N-1 (sim.h), each from its own random stream, on T threads,
 * and writes them in patient order, so the output is the same bytes for a seed whatever T. It
 * streams: patients are made in batches whose buffers are reused, so memory does not grow with
 * N. Output folder (created whole: written under a temporary name and renamed at the end):
 *
 *   fhir/<Type>.000.ndjson   --format fhir-ndjson: FHIR R4 Bulk Data layout (Patient, Encounter,
 *                            Condition, Observation, MedicationRequest, Procedure), read by
 *                            `clinfm ingest --format fhir`
 *   hosp/, icu/              --format mimic-csv: MIMIC-IV tables (synth_mimic.h), read with
 *                            mappings/mimic-iv.map
 *   PERSON.csv.gz, ...       --format omop-csv: OMOP CDM v5.3 tables and CONCEPT (synth_omop.h), read
 *                            with mappings/omop-cdm.map
 *   notes/gold.presidio.json with --notes (FHIR): the notes (DocumentReference in fhir/) with their
 *   notes/gold.phrase.txt    gold identifier spans, in the layouts `clinfm deid-eval` reads
 *   truth/<task>.csv         ground truth per task the layout's task files define: fhir_id (FHIR) or
 *                            subject_id (CSV layouts), prediction_time (ISO 8601 UTC), probability
 *                            (of a positive label among rows the task keeps), p_outcome,
 *                            p_followed, outcome, followed
 *   manifest.json            seed, options, module files, rows and events per table, truth files
 *
 * docs/SYNTH.md describes the model, the module files, the truth and how it joins to labels. */
#ifndef CLINFM_SYNTH_SYNTH_H
#define CLINFM_SYNTH_SYNTH_H

#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

enum { SYNTH_FMT_FHIR = 0, SYNTH_FMT_NULL = 1, SYNTH_FMT_MIMIC = 2, SYNTH_FMT_OMOP = 3 };
#define SYNTH_MAX_TABLES 24

typedef struct {
    uint64_t patients;
    uint64_t seed;
    const char *out_dir;
    const char *modules_dir;   /* default data/synth/modules */
    int format;                /* SYNTH_FMT_* (null: simulate and count, write nothing but the manifest) */
    int start_year, end_year;  /* the data window: Jan 1 of start to Jan 1 of end + 1 */
    int threads;
    int truth_paths;           /* simulated futures per truth row; 0: no truth */
    int notes;                 /* SYNTH_NOTES_*: notes for hospital stays (patient_notes.h) */
    int quiet;
} synth_options;

/* Resource types written, in this order. */
enum { SYNTH_T_PATIENT = 0, SYNTH_T_ENCOUNTER, SYNTH_T_CONDITION, SYNTH_T_OBSERVATION,
       SYNTH_T_MEDREQ, SYNTH_T_PROCEDURE, SYNTH_T_DOCREF, SYNTH_N_TYPES };
/* --notes: which name lists the notes draw relatives, clinicians and hospitals from */
enum { SYNTH_NOTES_NONE = 0, SYNTH_NOTES_LISTED, SYNTH_NOTES_HELDOUT };
extern const char *const synth_type_names[SYNTH_N_TYPES];

/* One output table (a FHIR resource type or a CSV table), as the run wrote it. */
typedef struct {
    char name[40], path[64];
    uint64_t rows, events;     /* rows written; the events clinfm's reader or mapping makes of them */
    int dictionary, unmapped;  /* a lookup table (no events); a table no shipped mapping reads */
} synth_table_report;

typedef struct {
    uint64_t patients, resources[SYNTH_N_TYPES];
    uint64_t events;           /* events clinfm's FHIR reader makes of them (PHI// identifiers aside) */
    uint64_t type_events[SYNTH_N_TYPES];
    uint64_t deaths, deaths_in_hospital, admissions;
    /* follow-up (record start to death, leaving or the window's end) and deaths, by the age bands
     * of the US national statistics (0-4, 5-14, ..., 75-84, 85+): the figures to set beside
     * national rates (docs/SYNTH.md) */
    double person_years[10];
    uint64_t deaths_by_age[10];
    uint64_t truth_rows, truth_positive;
    uint64_t notes, note_spans;
    uint64_t bytes;            /* as formatted (before compression) */
    size_t n_tables;
    synth_table_report tables[SYNTH_MAX_TABLES];
    double seconds;
} synth_report;

int synth_run(const synth_options *o, synth_report *rep, cf_err *err);

#endif
