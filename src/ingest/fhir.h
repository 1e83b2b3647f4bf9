/* FHIR R4 ingestion: Bundles and Bulk Data NDJSON into the event store.
 *
 * Input is a Bundle file (.json or .json.gz; any bundle type: transaction, collection,
 * searchset...), a single-resource .json file, an NDJSON file, or a folder (searched recursively)
 * of those, such as a Bulk Data export of <ResourceType>.<n>.ndjson(.gz) files. JSON is parsed
 * with cJSON one bundle entry or one NDJSON line at a time, so an export never sits in memory
 * whole; bundle entries of unmapped types are validated without building a tree (fhir_bundle.c).
 * docs/FHIR.md is the user-facing description.
 * Work is spread over worker threads (CLINFM_THREADS, default: online CPUs up to 4); results are
 * committed in input order, so the store and the report do not depend on thread timing.
 *
 * Events (codes follow MEDS: `MEDS_BIRTH`, `MEDS_DEATH`, `<VOCABULARY>//<code>[//<unit>]`):
 *   Patient            GENDER//F|M|O|UNK, RACE//<CDC code>, ETHNICITY//<CDC code>,
 *                      MARITAL_STATUS//<code> (static, no time); MEDS_BIRTH at birthDate;
 *                      MEDS_DEATH at deceasedDateTime (deceasedBoolean alone gives no event).
 *   Encounter          ENCOUNTER_START//<class> at period.start, ENCOUNTER_END//<class> at
 *                      period.end, ENCOUNTER_TYPE//<SYS>//<code> at period.start per type.
 *   Condition          <SYS>//<code> at the later of onset[DateTime|Period.start] and
 *                      recordedDate: the time the diagnosis was known, so a back-dated onset never
 *                      puts it before the record existed (the leak ETHOS warns about).
 *   Observation        <SYS>//<code>//<unit> with numeric_value for valueQuantity (unit = UCUM code,
 *                      else the unit text; no unit part when neither); <SYS>//<code>//<SYS2>//<answer>
 *                      for valueCodeableConcept (text-only answers go to text_value with the bare
 *                      code); valueString/valueBoolean in text_value; valueInteger numeric; each
 *                      component as its own event by the same rules. A panel with components and
 *                      no value of its own (blood pressure) gives only the component events.
 *                      valueQuantity.comparator ("<", ">=") goes to text_value.
 *                      Time: effectiveDateTime | effectivePeriod.start | effectiveInstant | issued.
 *   MedicationRequest  <SYS>//<code> (RXNORM//...) at authoredOn.
 *   MedicationAdministration  MED_ADMIN//<SYS>//<code> at effective[DateTime|Period.start].
 *                      medicationReference is resolved through contained resources, the same
 *                      bundle, or Medication resources read earlier (Medication NDJSON files are
 *                      read before other resource files).
 *   Procedure          <SYS>//<code> at performedDateTime | performedPeriod.start.
 *   Immunization       CVX//<code> at occurrenceDateTime | recorded.
 *   AllergyIntolerance ALLERGY//<SYS>//<code> at recordedDate | onset (the substance is not a drug
 *                      taken, hence the prefix).
 *   DiagnosticReport   <SYS>//<code> at effective | issued; NOTE//<SYS>//<code> with the text of a
 *                      presentedForm text attachment.
 *   CarePlan           CAREPLAN//<SYS>//<code> per category, CAREPLAN_ACTIVITY//<SYS>//<code> per
 *                      activity, at period.start | created (planned, not performed, hence the prefix).
 *   DocumentReference  NOTE//<SYS>//<type code> (NOTE when untyped) at date | context.period.start,
 *                      text_value = the first text attachment (text/plain preferred), base64-decoded.
 *   Identifiers        PHI//NAME, ADDRESS, CITY, ZIP, STATE, PHONE, FAX, EMAIL, URL, SSN, MRN, ID,
 *                      ORGANIZATION (static, the value in text_value) from Patient names, telecom,
 *                      addresses, identifiers and contacts, from the people and organisations of
 *                      Encounters, DocumentReferences and DiagnosticReports, and from every
 *                      subject.display: input for `clinfm deid`, which uses them on the patient's
 *                      notes and drops them. Each (patient, kind, value) is written once.
 * Every other resource type (Claim, Organization, Medication...) is counted as filtered, as are
 * resources marked entered-in-error, cancelled / not-done where that means "did not happen", and
 * refuted Conditions and allergies. Code descriptions come from coding.display.
 *
 * Code systems: well-known URLs and OIDs map to SNOMED, LOINC, RXNORM, CVX, ICD10CM, ICD10,
 * ICD9CM, ICD10PCS, CPT, HCPCS, NDC, ATC, UCUM (see fhir_system_prefix). A concept is coded through
 * its first coding from a known system. When the concept that defines an event has codings but
 * none from a known system, the resource is rejected ("unknown code system"): local codes need a
 * mapping, not a silent guess. Descriptive lists (Encounter.type, CarePlan category/activity)
 * simply skip concepts from unknown systems, but a CarePlan with nothing known is rejected.
 * Encounter class, gender, marital status and race codes are taken as given (fixed value sets).
 *
 * Subjects: each Patient's id (or, lacking one, its urn:uuid fullUrl) is the subject key; the
 * subject_id is fhir_subject_id(key) and the key is kept with store_writer_subject_key.
 * References `Patient/<id>` (relative or absolute, with or without _history) and `urn:uuid:...`
 * resolve against the Patients of the same bundle (in any entry order), of earlier NDJSON lines,
 * and of earlier files (in a folder, Patient NDJSON files are read first). A subject that does
 * not resolve is a rejection: the store never holds events of a subject without its Patient
 * resource. A second Patient with the same key is rejected as a duplicate.
 *
 * Times: dateTime with a zone -> UTC µs; date-only (and FHIR's partial YYYY, YYYY-MM) -> midnight
 * UTC of the first day; a time without a zone is rejected (FHIR requires one).
 *
 * Provenance: source = resource type; row = the 1-based NDJSON line, or for bundles the 1-based
 * index of the entry within its bundle file.
 *
 * Bad input (each counted as a rejection with file, line or entry, resource id and JSON path,
 * never a value; fatal under strict): invalid JSON, JSON nested deeper than cJSON's limit, a
 * bundle or line over the size caps, a parse tree over its memory cap, missing or unknown
 * resourceType, resourceType not matching the NDJSON file name, missing/unresolvable subject,
 * unknown code system, missing code, missing or unparsable time, time without zone, bad base64,
 * invalid Patient id. Empty lines in NDJSON are skipped. */
#ifndef CLINFM_INGEST_FHIR_H
#define CLINFM_INGEST_FHIR_H

#include <stddef.h>
#include <stdint.h>

#include "ingest/report.h"
#include "store/store.h"
#include "util/err.h"

/* Uncompressed bytes of one bundle file / one NDJSON line before it is rejected unread. */
#define FHIR_MAX_BUNDLE (256u << 20)
#define FHIR_MAX_LINE (64u << 20)

typedef struct {
    int strict;        /* first rejection is fatal */
    int show_progress; /* progress line on a TTY */
    /* A sample, for ingest's room estimate: about sample_bytes of the input, in proportion (every
     * k-th bundle, each NDJSON file's first lines, Patient and Medication files whole); the bytes
     * read and the bytes of all input files (uncompressed) are written to the two counters. */
    uint64_t sample_bytes;
    uint64_t *sample_read, *sample_total;
} fhir_options;

/* Reads a Bundle (.json or .json.gz), an NDJSON file, or a folder of them into w. Every
 * resource is counted in rep (as events, filtered/unsupported, or rejected with a reason).
 * w may be NULL for a dry run that only validates and counts. */
/* The bytes (uncompressed; gzip files estimated as csv_input_size does) and the number of the
 * FHIR files fhir_ingest would read from input_path, for ingest's room estimate. */
int fhir_input_bytes(const char *input_path, uint64_t *bytes, uint64_t *n_files, cf_err *err);
int fhir_ingest(const char *input_path, store_writer *w, ingest_report *rep,
                const fhir_options *opt, cf_err *err);

enum { FHIR_BUFFER_BUNDLE = 0, FHIR_BUFFER_NDJSON = 1 };

/* Ingests one in-memory unit: a bundle (or single resource) when kind is FHIR_BUFFER_BUNDLE, or
 * NDJSON lines when FHIR_BUFFER_NDJSON. name appears in messages; for NDJSON its base name sets
 * the expected resource type as for files ("Observation.000.ndjson"). For tests and fuzzing. */
int fhir_ingest_buffer(const char *name, const char *data, size_t len, int kind, store_writer *w,
                       ingest_report *rep, const fhir_options *opt, cf_err *err);

/* The subject_id of a Patient key: the first 8 bytes (little-endian) of BLAKE2b-256
 * (libsodium crypto_generichash) of the key, masked to 63 bits; 0 becomes 1. */
int64_t fhir_subject_id(const char *key, size_t len);

/* Vocabulary prefix of a code system URL or OID ("http://loinc.org" -> "LOINC"), or NULL. */
const char *fhir_system_prefix(const char *system);

#endif
