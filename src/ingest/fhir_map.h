/* The FHIR mapping layer (public: the FHIR reader's commit step and the service, which maps one
 * patient's resources per request, both build on it).
 *
 * fhir_map_bundle turns one parsed JSON value (a Bundle of any type, or a single resource) into a
 * fhir_batch: per resource an outcome (events, filtered, rejected), a subject (a resolved Patient
 * key or a reference still to be checked) and its events, with code strings, texts and
 * descriptions in the batch's heap. It touches no shared state. Resolving what needs more than one
 * unit (subjects of references, Medication codes) is the caller's: fhir.c does it for a whole
 * export, serve_record.c for one patient. The events are those described in fhir.h.
 * Implemented in fhir_map.c. */
#ifndef CLINFM_INGEST_FHIR_MAP_H
#define CLINFM_INGEST_FHIR_MAP_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "util/sbuf.h"

/* ------------------------------------------------------------------ resource types */

/* All FHIR R4 resource type names, sorted; index -1 when unknown. */
int fhir_type_index(const char *name, size_t len);
const char *fhir_type_name(int index);

/* ------------------------------------------------------------------ batches */

enum { FHIR_OUT_EVENTS = 0, FHIR_OUT_FILTERED = 1, FHIR_OUT_REJECTED = 2 };

enum {
    FHIR_SUBJ_NONE = 0,
    FHIR_SUBJ_KEY,        /* the Patient key itself (resolved in the unit) */
    FHIR_SUBJ_PATIENT_ID, /* a Patient id from "Patient/<id>": must be a committed Patient */
    FHIR_SUBJ_URL,        /* a urn:uuid fullUrl not in the unit: must be a committed Patient */
};

typedef struct {
    int64_t time;
    float numeric;           /* NaN when absent */
    uint8_t has_text;
    uint8_t code_is_medref;  /* code holds only a prefix; the desc slot holds a Medication
                                reference key whose code is appended at commit */
    uint8_t is_phi;          /* a PHI//<KIND> identifier event: static, the value in text;
                                repeated values of one subject are written once at commit */
    size_t code_off, code_len;
    size_t text_off, text_len;
    size_t desc_off, desc_len; /* desc_len 0: no description */
} fhir_event;

typedef struct {
    int type;               /* fhir_type_index, or -1 (reported under "Resource") */
    const char *source;     /* report source when type < 0 ("Resource", "Bundle") */
    uint8_t outcome;
    uint8_t subj_kind;
    uint8_t is_patient;     /* registers subj (the key) and url (its fullUrl) */
    uint8_t is_medication;  /* registers med_keys -> events[ev_first].code */
    uint64_t row;
    size_t subj_off, subj_len;
    size_t url_off, url_len;
    size_t keys_off, keys_len; /* NUL-separated keys ("Medication/<id>", fullUrl) */
    size_t ev_first, ev_count;
    const char *reason;     /* static text when rejected */
    size_t loc_off, loc_len;/* location when rejected */
    size_t id_off, id_len;  /* the resource id when valid (for messages made at commit) */
} fhir_res;

typedef struct {
    sbuf heap;
    fhir_event *ev;
    size_t n_ev, cap_ev;
    fhir_res *res;
    size_t n_res, cap_res;
} fhir_batch;

void fhir_batch_init(fhir_batch *b);
void fhir_batch_reset(fhir_batch *b);
void fhir_batch_free(fhir_batch *b);

/* ------------------------------------------------------------------ mapping */

/* Maps one parsed top-level JSON value from a bundle file (a Bundle or a single resource). */
int fhir_map_bundle(fhir_batch *b, const char *file, const cJSON *root);

#endif
