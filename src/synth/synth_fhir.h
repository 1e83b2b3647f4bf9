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
#include "synth/synth_out.h"

/* Appends the patient's resources to out[type]; counts[type] += lines written; events[type] +=
 * the events clinfm's FHIR reader makes of them (identifier PHI// events of the Patient not
 * counted: their number depends on the reader's deduplication). */
void synth_fhir_patient(const synth_patient *p, synth_buf out[SYNTH_N_TYPES], uint64_t counts[SYNTH_N_TYPES],
                        uint64_t events[SYNTH_N_TYPES]);

/* The FHIR layout as an output format (its tables are the resource types of SYNTH_T_*, in that
 * order; DocumentReference only with notes, which synth_run appends itself). */
void synth_fhir_format(synth_format *f, const sim_world *w, int notes);

#endif
