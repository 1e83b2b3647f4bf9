/* One patient's record as the service scores and summarises it: a serve_patient (predictor.h)
 * together with the memory behind it.
 *
 * Two sources. The event store (mmap'd, read-only, shared by every thread): a patient id is looked
 * up as a FHIR Patient key (the store's subject keys, through fhir_subject_id and
 * subject_id_from_string, both confirmed against the stored key so a hash collision can never
 * select someone else) or, in stores without keys (MIMIC-style), as the numeric subject id. Code
 * strings point into the mapping; nothing is copied but texts.
 *
 * FHIR R4 resources (CDS Hooks prefetch, or a Bundle posted to /v1): each JSON value (a Bundle of
 * any type or a single resource) goes through the FHIR reader's mapping layer, so prefetch yields
 * exactly the codes, times and values `clinfm ingest` would have put in the store. The service then
 * keeps only what belongs to one patient: one Patient resource at most, matching the expected id
 * when one is given; every other resource must reference that patient (Patient/<id> or the
 * Patient's urn:uuid), otherwise the whole request is refused, because scoring a mix of two
 * people's data would be worse than not scoring. Resources the reader rejects are counted, not
 * fatal (as in ingestion). A resource present twice (same type and id: an Encounter read and the
 * encounters search) counts once. Events are sorted by time, then source and entry order. */
#ifndef CLINFM_SERVE_SERVE_RECORD_H
#define CLINFM_SERVE_SERVE_RECORD_H

#include <cjson/cJSON.h>

#include "serve/predictor.h"
#include "store/store.h"

typedef struct serve_chunk serve_chunk;

typedef struct {
    serve_patient p;       /* views into the arrays below */
    char key[256];         /* the patient id as requested or found (PHI: never logged) */
    size_t n_rejected;     /* FHIR resources the reader rejected */
    size_t n_unresolved;   /* FHIR events dropped: medication reference without a code */
    /* owned */
    int64_t *time;
    const char **code, **text, **desc, **source;
    float *value;
    uint64_t *row;
    size_t cap;
    serve_chunk *chunks;   /* copied strings */
} serve_record;

void serve_record_init(serve_record *r);
void serve_record_free(serve_record *r);

/* Loads patient_id's events from s. CF_OK; CF_EINPUT (err says "not in the store") when absent.
 * prediction_time is stored in r->p (TIME_NULL: the last event). */
int serve_record_from_store(serve_record *r, const store *s, const char *patient_id,
                            int64_t prediction_time, cf_err *err);

/* Builds the record from n FHIR JSON values (names[i] labels value i in messages, e.g.
 * "prefetch.conditions"). expected_id: the patient id the caller asked about (CDS context
 * patientId), or NULL. CF_EINPUT with a message naming the problem when the data holds no Patient
 * and no id was given, a Patient other than expected_id, two Patients, or resources of another
 * patient. */
int serve_record_from_fhir(serve_record *r, const cJSON *const *values, const char *const *names,
                           size_t n, const char *expected_id, int64_t prediction_time, cf_err *err);

/* Copies len bytes of s (plus a NUL) into the record's string memory; NULL on out-of-memory. */
const char *serve_record_strdup(serve_record *r, const char *s, size_t len);

#endif
