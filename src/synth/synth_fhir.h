/* FHIR R4 resources of one synthetic patient, as NDJSON lines (one buffer per resource type).
 * The JSON is assembled by hand (no tree): every string written is either a fixed literal, a
 * code table entry checked when modules load (no quotes or backslashes), or a generated
 * identifier, so nothing needs escaping. */
#ifndef CLINFM_SYNTH_SYNTH_FHIR_H
#define CLINFM_SYNTH_SYNTH_FHIR_H

#include <stddef.h>
#include <stdint.h>

#include "synth/sim.h"
#include "synth/synth.h"

typedef struct {
    char *b;
    size_t n, cap;
    int oom;
} synth_buf;

void synth_buf_put(synth_buf *s, const char *p, size_t n);
void synth_buf_str(synth_buf *s, const char *p);
/* "YYYY-MM-DDTHH:MM:SSZ" (or the date alone) of a time in days since 1970. */
void synth_buf_time(synth_buf *s, double day, int date_only);
void synth_buf_fixed(synth_buf *s, double v, int dec);

/* Appends the patient's resources to out[type]; counts[type] += lines written; events[type] +=
 * the events clinfm's FHIR reader makes of them (identifier PHI// events of the Patient not
 * counted: their number depends on the reader's deduplication). */
void synth_fhir_patient(const synth_patient *p, synth_buf out[SYNTH_N_TYPES], uint64_t counts[SYNTH_N_TYPES],
                        uint64_t events[SYNTH_N_TYPES]);

#endif
