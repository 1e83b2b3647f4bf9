/* Clinical notes for a synthetic patient's hospital stays, with gold identifier spans.
 *
 * The notes themselves come from the note generator (notes.h, issue 14's): this file only gives
 * it each stay's context from the patient (name, sex, address, phone, record number, age, the
 * admission date, the day of the stay; the hospital, relatives and clinicians drawn once per
 * patient from the name lists) and writes the results: a FHIR DocumentReference per note (the
 * text base64-encoded, the note's clinician as author), and the same notes with their gold spans
 * in the presidio JSON and clinfm's inline phrase layouts that `clinfm deid-eval` reads. Per stay:
 * a nursing note on the day of admission, a progress note the next day (stays of a day or more),
 * and a discharge summary at a discharge alive; about one note in five is upper- or lower-case. */
#ifndef CLINFM_SYNTH_PATIENT_NOTES_H
#define CLINFM_SYNTH_PATIENT_NOTES_H

#include <stdint.h>

#include "synth/notes.h"
#include "synth/sim.h"
#include "synth/synth_fhir.h"

typedef struct {
    synth_buf docref;    /* DocumentReference NDJSON lines */
    synth_buf presidio;  /* presidio records, comma-separated, without the enclosing [ ] */
    synth_buf phrase;    /* inline phrase records, without the file's header line */
    uint64_t notes, spans, events;
} synth_patient_notes_out;

/* Appends the patient's notes to out (whose buffers the caller owns and resets). */
int synth_patient_notes(const synth_patient *p, const synth_namelists *nl, uint64_t seed,
                        synth_patient_notes_out *out, cf_err *err);

#endif
