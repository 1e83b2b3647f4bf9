/* FHIR resources -> events: the mapping layer (see fhir.h for the code conventions and
 * fhir_internal.h for how it fits with the commit layer).
 *
 * Each resource is mapped atomically: either all of its events land in the batch or, when any
 * part is unusable (unknown code system, time without zone...), none do and the resource becomes
 * one rejection with a reason and a location (file, line or entry, resource id, JSON path). The
 * functions here read the cJSON tree only; they never modify shared state, so worker threads run
 * them concurrently. Return convention inside this file: 0 ok, 1 rejected (reason and path set on
 * the context), 2 filtered on purpose, -1 out of memory. */
#include "ingest/fhir_internal.h"

#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/timeutil.h"

#define FHIR_MAX_CODE 512   /* bytes of an assembled code string */
#define FHIR_MAX_PART 128   /* bytes of one code value taken from the data */
#define FHIR_MAX_DESC 256   /* bytes of a code description */

/* ------------------------------------------------------------------ resource type names */

static const char *const k_types[] = {
    "Account", "ActivityDefinition", "AdverseEvent", "AllergyIntolerance", "Appointment",
    "AppointmentResponse", "AuditEvent", "Basic", "Binary", "BiologicallyDerivedProduct",
    "BodyStructure", "Bundle", "CapabilityStatement", "CarePlan", "CareTeam", "CatalogEntry",
    "ChargeItem", "ChargeItemDefinition", "Claim", "ClaimResponse", "ClinicalImpression",
    "CodeSystem", "Communication", "CommunicationRequest", "CompartmentDefinition", "Composition",
    "ConceptMap", "Condition", "Consent", "Contract", "Coverage", "CoverageEligibilityRequest",
    "CoverageEligibilityResponse", "DetectedIssue", "Device", "DeviceDefinition", "DeviceMetric",
    "DeviceRequest", "DeviceUseStatement", "DiagnosticReport", "DocumentManifest",
    "DocumentReference", "EffectEvidenceSynthesis", "Encounter", "Endpoint", "EnrollmentRequest",
    "EnrollmentResponse", "EpisodeOfCare", "EventDefinition", "Evidence", "EvidenceVariable",
    "ExampleScenario", "ExplanationOfBenefit", "FamilyMemberHistory", "Flag", "Goal",
    "GraphDefinition", "Group", "GuidanceResponse", "HealthcareService", "ImagingStudy",
    "Immunization", "ImmunizationEvaluation", "ImmunizationRecommendation", "ImplementationGuide",
    "InsurancePlan", "Invoice", "Library", "Linkage", "List", "Location", "Measure", "MeasureReport",
    "Media", "Medication", "MedicationAdministration", "MedicationDispense", "MedicationKnowledge",
    "MedicationRequest", "MedicationStatement", "MedicinalProduct", "MedicinalProductAuthorization",
    "MedicinalProductContraindication", "MedicinalProductIndication", "MedicinalProductIngredient",
    "MedicinalProductInteraction", "MedicinalProductManufactured", "MedicinalProductPackaged",
    "MedicinalProductPharmaceutical", "MedicinalProductUndesirableEffect", "MessageDefinition",
    "MessageHeader", "MolecularSequence", "NamingSystem", "NutritionOrder", "Observation",
    "ObservationDefinition", "OperationDefinition", "OperationOutcome", "Organization",
    "OrganizationAffiliation", "Parameters", "Patient", "PaymentNotice", "PaymentReconciliation",
    "Person", "PlanDefinition", "Practitioner", "PractitionerRole", "Procedure", "Provenance",
    "Questionnaire", "QuestionnaireResponse", "RelatedPerson", "RequestGroup", "ResearchDefinition",
    "ResearchElementDefinition", "ResearchStudy", "ResearchSubject", "RiskAssessment",
    "RiskEvidenceSynthesis", "Schedule", "SearchParameter", "ServiceRequest", "Slot", "Specimen",
    "SpecimenDefinition", "StructureDefinition", "StructureMap", "Subscription", "Substance",
    "SubstanceNucleicAcid", "SubstancePolymer", "SubstanceProtein",
    "SubstanceReferenceInformation", "SubstanceSourceMaterial", "SubstanceSpecification",
    "SupplyDelivery", "SupplyRequest", "Task", "TerminologyCapabilities", "TestReport",
    "TestScript", "ValueSet", "VerificationResult", "VisionPrescription",
};
#define N_TYPES ((int)(sizeof k_types / sizeof k_types[0]))

int fhir_type_count(void) { return N_TYPES; }
const char *fhir_type_name(int i) { return i >= 0 && i < N_TYPES ? k_types[i] : "Resource"; }

int fhir_type_index(const char *name, size_t len) {
    int lo = 0, hi = N_TYPES - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        /* name is len bytes and may hold NULs (fuzzed input): compare by length, never reading
         * past either string. */
        size_t kl = strlen(k_types[mid]);
        int c = memcmp(name, k_types[mid], len < kl ? len : kl);
        if (c == 0) c = len < kl ? -1 : len > kl;
        if (c == 0) return mid;
        if (c < 0) hi = mid - 1;
        else lo = mid + 1;
    }
    return -1;
}

/* ------------------------------------------------------------------ code systems */

static const struct {
    const char *system, *prefix;
} k_systems[] = {
    {"http://snomed.info/sct", "SNOMED"},
    {"http://loinc.org", "LOINC"},
    {"http://www.nlm.nih.gov/research/umls/rxnorm", "RXNORM"},
    {"http://hl7.org/fhir/sid/cvx", "CVX"},
    {"http://hl7.org/fhir/sid/icd-10-cm", "ICD10CM"},
    {"http://hl7.org/fhir/sid/icd-10", "ICD10"},
    {"http://hl7.org/fhir/sid/icd-9-cm", "ICD9CM"},
    {"http://www.cms.gov/Medicare/Coding/ICD10", "ICD10PCS"},
    {"http://www.ama-assn.org/go/cpt", "CPT"},
    {"https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets", "HCPCS"},
    {"http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets", "HCPCS"},
    {"http://hl7.org/fhir/sid/ndc", "NDC"},
    {"http://www.whocc.no/atc", "ATC"},
    {"http://unitsofmeasure.org", "UCUM"},
    {"urn:oid:2.16.840.1.113883.6.96", "SNOMED"},
    {"urn:oid:2.16.840.1.113883.6.1", "LOINC"},
    {"urn:oid:2.16.840.1.113883.6.88", "RXNORM"},
    {"urn:oid:2.16.840.1.113883.12.292", "CVX"},
    {"urn:oid:2.16.840.1.113883.6.90", "ICD10CM"},
    {"urn:oid:2.16.840.1.113883.6.3", "ICD10"},
    {"urn:oid:2.16.840.1.113883.6.103", "ICD9CM"},
    {"urn:oid:2.16.840.1.113883.6.4", "ICD10PCS"},
    {"urn:oid:2.16.840.1.113883.6.12", "CPT"},
    {"urn:oid:2.16.840.1.113883.6.285", "HCPCS"},
    {"urn:oid:2.16.840.1.113883.6.69", "NDC"},
    {"urn:oid:2.16.840.1.113883.6.73", "ATC"},
    {"urn:oid:2.16.840.1.113883.6.8", "UCUM"},
};

const char *fhir_system_prefix(const char *system) {
    if (!system) return NULL;
    for (size_t i = 0; i < sizeof k_systems / sizeof k_systems[0]; i++)
        if (!strcmp(system, k_systems[i].system)) return k_systems[i].prefix;
    return NULL;
}

/* ------------------------------------------------------------------ batches */

void fhir_batch_init(fhir_batch *b) { memset(b, 0, sizeof *b); }

void fhir_batch_reset(fhir_batch *b) {
    sbuf_clear(&b->heap);
    b->n_ev = 0;
    b->n_res = 0;
}

void fhir_batch_free(fhir_batch *b) {
    sbuf_free(&b->heap);
    free(b->ev);
    free(b->res);
    memset(b, 0, sizeof *b);
}

size_t fhir_heap_add(fhir_batch *b, const void *p, size_t len) {
    size_t off = b->heap.len;
    return sbuf_put(&b->heap, p, len) ? SIZE_MAX : off;
}

fhir_res *fhir_batch_res(fhir_batch *b) {
    fhir_res *p = cf_grow(b->res, &b->cap_res, b->n_res + 1, sizeof *p, 256);
    if (!p) return NULL;
    b->res = p;
    fhir_res *r = &b->res[b->n_res++];
    memset(r, 0, sizeof *r);
    r->type = -1;
    r->ev_first = b->n_ev;
    return r;
}

int fhir_batch_reject(fhir_batch *b, int type, const char *source, uint64_t row, const char *reason,
                      const char *location) {
    fhir_res *r = fhir_batch_res(b);
    if (!r) return -1;
    r->type = type;
    r->source = source;
    r->row = row;
    r->outcome = FHIR_OUT_REJECTED;
    r->reason = reason;
    r->loc_len = strlen(location);
    r->loc_off = fhir_heap_add(b, location, r->loc_len);
    return r->loc_off == SIZE_MAX ? -1 : 0;
}

/* ------------------------------------------------------------------ small JSON helpers */

static const cJSON *get(const cJSON *o, const char *key) {
    return o ? cJSON_GetObjectItemCaseSensitive(o, key) : NULL;
}

/* The string value of o[key], or NULL (absent or not a string). */
static const char *get_str(const cJSON *o, const char *key) {
    const cJSON *v = get(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* A FHIR id: [A-Za-z0-9-.]{1,64}. Only such ids are printed in messages or used as keys. */
static int valid_id(const char *s) {
    size_t n = 0;
    if (!s) return 0;
    for (; s[n]; n++) {
        char ch = s[n];
        if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
              ch == '-' || ch == '.'))
            return 0;
        if (n >= 64) return 0;
    }
    return n > 0;
}

/* A code value or unit usable inside a code string: 1..max bytes, no control characters. */
static int valid_part(const char *s, size_t max) {
    size_t n = 0;
    if (!s) return 0;
    for (; s[n]; n++) {
        unsigned char ch = (unsigned char)s[n];
        if (ch < 0x20 || ch == 0x7f || n >= max) return 0;
    }
    return n > 0;
}

void fhir_location(char *out, size_t cap, const char *file, int is_bundle, uint64_t row,
                   const char *type, const cJSON *res, const char *path) {
    const char *id = res ? get_str(res, "id") : NULL;
    char where[64];
    if (is_bundle) snprintf(where, sizeof where, ": entry %llu", (unsigned long long)row);
    else snprintf(where, sizeof where, ":%llu", (unsigned long long)row);
    snprintf(out, cap, "%s%s (%s%s%s)%s%s", file, where, type ? type : "Resource",
             valid_id(id) ? "/" : "", valid_id(id) ? id : "", path && *path ? " at " : "",
             path && *path ? path : "");
}

/* ------------------------------------------------------------------ mapping context */

typedef struct {
    fhir_batch *b;
    const char *file;
    int is_bundle;
    uint64_t row;
    int type;
    const char *tname;
    const cJSON *res;
    const cJSON *entry;        /* bundle entry (for fullUrl), or NULL */
    fhir_res *r;
    size_t ev_first;           /* the resource's first event in the batch */
    const char *reason;
    char path[160];
} mctx;

static int reject(mctx *c, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int reject(mctx *c, const char *reason, const char *fmt, ...) {
    c->reason = reason;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->path, sizeof c->path, fmt, ap);
    va_end(ap);
    return 1;
}

/* Code strings are assembled here; overlong ones reject the resource. */
typedef struct {
    char s[FHIR_MAX_CODE + 1];
    size_t len;
    int over;
} codebuf;

static void cb_reset(codebuf *cb) {
    cb->len = 0;
    cb->over = 0;
    cb->s[0] = '\0';
}

static void cb_add(codebuf *cb, const char *s) {
    size_t n = strlen(s);
    if (cb->len + n > FHIR_MAX_CODE) {
        cb->over = 1;
        return;
    }
    memcpy(cb->s + cb->len, s, n + 1);
    cb->len += n;
}

/* Adds one event; text may be NULL (no text). */
static int emit(mctx *c, int64_t t, const codebuf *cb, float num, const char *text, size_t tlen,
                const char *desc) {
    if (cb->over) return reject(c, "code longer than 512 bytes", "%s", c->tname);
    fhir_batch *b = c->b;
    fhir_event *p = cf_grow(b->ev, &b->cap_ev, b->n_ev + 1, sizeof *p, 1024);
    if (!p) return -1;
    b->ev = p;
    fhir_event *e = &b->ev[b->n_ev];
    memset(e, 0, sizeof *e);
    e->time = t;
    e->numeric = num;
    e->code_len = cb->len;
    if ((e->code_off = fhir_heap_add(b, cb->s, cb->len)) == SIZE_MAX) return -1;
    if (text) {
        e->has_text = 1;
        e->text_len = tlen;
        if ((e->text_off = fhir_heap_add(b, text, tlen)) == SIZE_MAX) return -1;
    }
    if (desc && *desc) {
        size_t dl = strlen(desc);
        if (dl > FHIR_MAX_DESC) { /* cut at a UTF-8 character boundary */
            dl = FHIR_MAX_DESC;
            while (dl > 0 && ((unsigned char)desc[dl] & 0xC0) == 0x80) dl--;
        }
        e->desc_len = dl;
        if ((e->desc_off = fhir_heap_add(b, desc, dl)) == SIZE_MAX) return -1;
    }
    b->n_ev++;
    return 0;
}

/* Adds an event without a value whose code is prefix, then "<sys>//" when sys is given, then
 * code when given: the shape of every fact below that is not a measurement or a note. */
static int emit_code(mctx *c, int64_t t, const char *prefix, const char *sys, const char *code,
                     const char *desc) {
    codebuf cb;
    cb_reset(&cb);
    cb_add(&cb, prefix);
    if (sys) {
        cb_add(&cb, sys);
        cb_add(&cb, "//");
    }
    if (code) cb_add(&cb, code);
    return emit(c, t, &cb, NAN, NULL, 0, desc);
}

/* ------------------------------------------------------------------ times */

/* FHIR date, dateTime or instant -> µs UTC. 0 ok, -1 unparsable, -2 a time without a zone. */
static int parse_time(const char *s, int64_t *t) {
    size_t len = strlen(s);
    char tmp[16];
    int hz = 0;
    if (len == 4 || len == 7) { /* partial dates YYYY and YYYY-MM: the first day */
        memcpy(tmp, s, len);
        memcpy(tmp + len, len == 4 ? "-01-01" : "-01", len == 4 ? 7 : 4);
        return time_parse_iso(tmp, strlen(tmp), t, NULL) ? -1 : 0;
    }
    if (time_parse_iso(s, len, t, &hz)) return -1;
    if (!hz && memchr(s, ':', len)) return -2;
    return 0;
}

/* Reads obj[field] as a time. *found is 0 when absent; a present but bad value rejects. */
static int get_time(mctx *c, const cJSON *obj, const char *field, const char *path, int64_t *t,
                    int *found) {
    *found = 0;
    const cJSON *v = get(obj, field);
    if (!v) return 0;
    if (!cJSON_IsString(v)) return reject(c, "unparsable date/time", "%s.%s", path, field);
    int rc = parse_time(v->valuestring, t);
    if (rc == -2) return reject(c, "date/time without time zone", "%s.%s", path, field);
    if (rc) return reject(c, "unparsable date/time", "%s.%s", path, field);
    *found = 1;
    return 0;
}

/* The first present of: <base>DateTime, <base>Period.start, <base>Instant, then the fallback
 * field (a plain dateTime), else "missing time". Field names are spelled out by the callers
 * (EFFECTIVE...) because this runs for every resource. */
typedef struct {
    const char *date_time, *period, *instant;
} time_fields;
static const time_fields EFFECTIVE = {"effectiveDateTime", "effectivePeriod", "effectiveInstant"};
static const time_fields PERFORMED = {"performedDateTime", "performedPeriod", "performedInstant"};
static const time_fields OCCURRENCE = {"occurrenceDateTime", "occurrencePeriod", "occurrenceInstant"};
static const time_fields ONSET = {"onsetDateTime", "onsetPeriod", "onsetInstant"};

static int event_time(mctx *c, const time_fields *f, const char *fallback, int64_t *t) {
    int found = 0, rc;
    if ((rc = get_time(c, c->res, f->date_time, c->tname, t, &found)) || found) return rc;
    const cJSON *p = get(c->res, f->period);
    if (p) {
        char path[96];
        snprintf(path, sizeof path, "%s.%s", c->tname, f->period);
        if ((rc = get_time(c, p, "start", path, t, &found)) || found) return rc;
    }
    if ((rc = get_time(c, c->res, f->instant, c->tname, t, &found)) || found) return rc;
    if (fallback) {
        if ((rc = get_time(c, c->res, fallback, c->tname, t, &found)) || found) return rc;
        return reject(c, "missing time", "%s.%s|%s", c->tname, f->date_time, fallback);
    }
    return reject(c, "missing time", "%s.%s", c->tname, f->date_time);
}

/* ------------------------------------------------------------------ concepts */

/* Picks the first coding of a CodeableConcept whose system is known and whose code is usable.
 * Returns 0 (found), 1 (codings, none from a known system), 2 (no usable coding). */
static int pick_coding(const cJSON *cc, const char **prefix, const char **code, const char **display) {
    const cJSON *codings = get(cc, "coding");
    int any = 0;
    if (cJSON_IsArray(codings)) {
        const cJSON *cd;
        cJSON_ArrayForEach(cd, codings) {
            const char *sys = get_str(cd, "system"), *cv = get_str(cd, "code");
            if (!valid_part(cv, FHIR_MAX_PART)) continue;
            any = 1;
            const char *pf = fhir_system_prefix(sys);
            if (!pf) continue;
            *prefix = pf;
            *code = cv;
            *display = get_str(cd, "display");
            return 0;
        }
    }
    return any ? 1 : 2;
}

/* Appends "<SYS>//<code>" of a required concept to cb, or rejects. */
static int concept_code(mctx *c, const cJSON *cc, const char *path, codebuf *cb,
                        const char **display) {
    const char *pf = NULL, *cv = NULL;
    *display = NULL;
    int rc = pick_coding(cc, &pf, &cv, display);
    if (rc == 1) return reject(c, "unknown code system", "%s.coding", path);
    if (rc == 2) return reject(c, "missing code", "%s", path);
    cb_add(cb, pf);
    cb_add(cb, "//");
    cb_add(cb, cv);
    return 0;
}

/* The required concept at the resource's field (path "<Type>.<field>") into cb, after prefix. */
static int resource_concept(mctx *c, const char *field, const char *prefix, codebuf *cb,
                            const char **display) {
    char path[96];
    snprintf(path, sizeof path, "%s.%s", c->tname, field);
    cb_reset(cb);
    cb_add(cb, prefix);
    return concept_code(c, get(c->res, field), path, cb, display);
}

/* prefix<SYS>//<code> for each item of list whose concept (the item itself, or its
 * field.sub when field is given) has a coding from a known system. *n (when given) counts the
 * events; *unknown (when given) is set when some item had codings from unknown systems only. */
static int emit_concepts(mctx *c, int64_t t, const cJSON *list, const char *field,
                         const char *sub, const char *prefix, int *n, int *unknown) {
    const cJSON *x;
    if (!cJSON_IsArray(list)) return 0;
    cJSON_ArrayForEach(x, list) {
        const char *pf, *cv, *d;
        int pr = pick_coding(field ? get(get(x, field), sub) : x, &pf, &cv, &d);
        if (pr == 1 && unknown) *unknown = 1;
        if (pr != 0) continue;
        int rc = emit_code(c, t, prefix, pf, cv, d);
        if (rc) return rc;
        if (n) (*n)++;
    }
    return 0;
}

/* The code of a Coding or CodeableConcept taken as given (fixed value sets: encounter class,
 * marital status): the code of the first coding with a usable code. */
static const char *plain_code(const cJSON *v, const char **display) {
    *display = NULL;
    if (!v) return NULL;
    const char *cv = get_str(v, "code");
    if (valid_part(cv, FHIR_MAX_PART)) {
        *display = get_str(v, "display");
        return cv;
    }
    const cJSON *codings = get(v, "coding"), *cd;
    if (cJSON_IsArray(codings)) {
        cJSON_ArrayForEach(cd, codings) {
            cv = get_str(cd, "code");
            if (valid_part(cv, FHIR_MAX_PART)) {
                *display = get_str(cd, "display");
                return cv;
            }
        }
    }
    return NULL;
}

/* ------------------------------------------------------------------ references */

/* Extracts <id> from "Patient/<id>", ".../Patient/<id>", "...Patient/<id>/_history/<v>" for the
 * given type name. Returns the id's length (0 when the reference is not of that form). */
static size_t ref_id(const char *ref, const char *type, const char **id) {
    size_t tl = strlen(type);
    const char *p = NULL;
    if (!strncmp(ref, type, tl) && ref[tl] == '/') p = ref;
    else {
        /* an absolute reference: the last "/<Type>/" segment */
        for (const char *q = ref; (q = strchr(q, '/')) != NULL; q++)
            if (!strncmp(q + 1, type, tl) && q[1 + tl] == '/') p = q + 1;
    }
    if (!p) return 0;
    p += tl + 1;
    const char *e = strchr(p, '/');
    size_t n = e ? (size_t)(e - p) : strlen(p);
    if (e && strncmp(e, "/_history/", 10) != 0) return 0;
    if (n == 0 || n > 64) return 0;
    for (size_t i = 0; i < n; i++) {
        char ch = p[i];
        if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
              ch == '-' || ch == '.'))
            return 0;
    }
    *id = p;
    return n;
}

/* The subject key of a Patient resource: its id, or the uuid of its urn:uuid fullUrl. */
static const char *patient_key(const cJSON *res, const char *full_url, size_t *len) {
    const char *id = get_str(res, "id");
    if (id) {
        if (!valid_id(id)) return NULL;
        *len = strlen(id);
        return id;
    }
    if (full_url && !strncmp(full_url, "urn:uuid:", 9) && valid_id(full_url + 9)) {
        *len = strlen(full_url + 9);
        return full_url + 9;
    }
    return NULL;
}

static int set_subject(mctx *c, int kind, const char *s, size_t len) {
    c->r->subj_kind = (uint8_t)kind;
    c->r->subj_len = len;
    c->r->subj_off = fhir_heap_add(c->b, s, len);
    return c->r->subj_off == SIZE_MAX ? -1 : 0;
}

/* Subjects are resolved at commit, where every Patient of the unit and of earlier units is
 * known; here the reference is only parsed. */
static int resolve_subject(mctx *c) {
    const cJSON *sub = get(c->res, "subject");
    const char *field = "subject";
    if (!sub) {
        sub = get(c->res, "patient");
        field = "patient";
    }
    const char *ref = get_str(sub, "reference");
    if (!ref || !*ref)
        return reject(c, "missing subject reference", "%s.%s.reference", c->tname, field);
    if (!strncmp(ref, "urn:uuid:", 9)) {
        if (strlen(ref) > 128)
            return reject(c, "subject reference does not resolve to a Patient in the input",
                          "%s.%s.reference", c->tname, field);
        return set_subject(c, FHIR_SUBJ_URL, ref, strlen(ref));
    }
    const char *id = NULL;
    size_t n = ref_id(ref, "Patient", &id);
    if (!n) return reject(c, "subject reference is not a Patient", "%s.%s.reference", c->tname, field);
    return set_subject(c, FHIR_SUBJ_PATIENT_ID, id, n);
}

/* ------------------------------------------------------------------ statuses */

static int status_is(const cJSON *res, const char *field, const char *const *bad) {
    const char *s = get_str(res, field);
    if (!s) return 0;
    for (; *bad; bad++)
        if (!strcmp(s, *bad)) return 1;
    return 0;
}

static int concept_status_is(const cJSON *res, const char *field, const char *const *bad) {
    const char *d;
    const char *s = plain_code(get(res, field), &d);
    if (!s) return 0;
    for (; *bad; bad++)
        if (!strcmp(s, *bad)) return 1;
    return 0;
}

/* The start of every clinical resource: filtered (2) when its status field (a code, or a
 * CodeableConcept when concept) is one of skip, else its subject reference parsed. */
static int open_clinical(mctx *c, const char *field, int concept, const char *const *skip) {
    if (concept ? concept_status_is(c->res, field, skip) : status_is(c->res, field, skip)) return 2;
    return resolve_subject(c);
}

static const char *const SKIP_ERROR[] = {"entered-in-error", NULL};
static const char *const SKIP_NOT_DONE[] = {"not-done", "entered-in-error", NULL};
static const char *const SKIP_CANCELLED[] = {"cancelled", "entered-in-error", NULL};
static const char *const SKIP_REFUTED[] = {"refuted", "entered-in-error", NULL};

/* A resource whose main event is one required concept at a time found by event_time. */
typedef struct {
    const char *const *skip;   /* statuses filtered out */
    const time_fields *time;
    const char *time_fallback; /* a plain dateTime field tried last, or NULL */
    const char *code_field;
} coded_spec;

static const coded_spec PROCEDURE = {SKIP_NOT_DONE, &PERFORMED, NULL, "code"};
static const coded_spec IMMUNIZATION = {SKIP_NOT_DONE, &OCCURRENCE, "recorded", "vaccineCode"};
static const coded_spec OBSERVATION = {SKIP_CANCELLED, &EFFECTIVE, "issued", "code"};
static const coded_spec REPORT = {SKIP_CANCELLED, &EFFECTIVE, "issued", "code"};

/* Status, subject, time and code of a coded_spec resource; the code goes into cb. */
static int coded_head(mctx *c, const coded_spec *sp, int64_t *t, codebuf *cb, const char **disp) {
    int rc;
    if ((rc = open_clinical(c, "status", 0, sp->skip))) return rc;
    if ((rc = event_time(c, sp->time, sp->time_fallback, t))) return rc;
    return resource_concept(c, sp->code_field, "", cb, disp);
}

/* ------------------------------------------------------------------ identifiers (PHI//) */

/* A resource's identifiers (names, addresses, telecom, identifier values, the names of the
 * people and organisations around the patient) go to the store as static events `PHI//<KIND>`
 * with the value as text (the contract of deid/store_deid.h): `clinfm deid` uses them as known
 * strings for that subject's notes and then drops them. They are taken as written, never
 * validated: a malformed phone number is still the patient's phone number, and a rejection
 * would have to say which value was wrong. The same value is kept once per resource here and
 * once per subject at commit (fhir.c). */

#define FHIR_MAX_PHI 1024 /* bytes of one identifier value; longer values are cut */

static int is_space_ch(char ch) {
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\f' || ch == '\v';
}

/* Emits PHI//<kind> with text v[0..len), trimmed; empty values give nothing. */
static int emit_phi(mctx *c, const char *kind, const char *v, size_t len) {
    if (!v) return 0;
    while (len && is_space_ch(v[0])) v++, len--;
    while (len && is_space_ch(v[len - 1])) len--;
    if (!len) return 0;
    if (len > FHIR_MAX_PHI) { /* cut at a UTF-8 character boundary */
        len = FHIR_MAX_PHI;
        while (len > 0 && ((unsigned char)v[len] & 0xC0) == 0x80) len--;
    }
    codebuf cb;
    cb_reset(&cb);
    cb_add(&cb, "PHI//");
    cb_add(&cb, kind);
    const fhir_batch *b = c->b;
    for (size_t i = c->ev_first; i < b->n_ev; i++) { /* official and maiden names share parts */
        const fhir_event *e = &b->ev[i];
        if (e->is_phi && e->code_len == cb.len && e->text_len == len &&
            !memcmp(b->heap.p + e->code_off, cb.s, cb.len) && !memcmp(b->heap.p + e->text_off, v, len))
            return 0;
    }
    int rc = emit(c, TIME_NULL, &cb, NAN, v, len, NULL);
    if (rc == 0) c->b->ev[c->b->n_ev - 1].is_phi = 1;
    return rc;
}

static int emit_phi_str(mctx *c, const char *kind, const char *v) {
    return v ? emit_phi(c, kind, v, strlen(v)) : 0;
}

/* Whether s holds only courtesy titles, generational suffixes and degrees ("Mr.", "Dr", "Jr.",
 * "MD, PhD"): those are kept out of the name strings, since on their own they identify no one
 * and as known strings they would blank every "Dr." in the patient's notes. */
static int only_titles(const char *s) {
    static const char *const titles[] = {"mr",  "mrs", "ms", "miss", "mx",  "dr",  "prof", "rev",
                                         "fr",  "sir", "dame", "hon", "jr", "sr",  "ii",   "iii",
                                         "iv",  "md",  "phd", "do",  "rn",  "np",  "pa",   "dds",
                                         "dmd", "esq", "mstr", "master"};
    size_t i = 0;
    while (s[i]) {
        unsigned char ch = (unsigned char)s[i];
        if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
              ch >= 0x80)) {
            i++;
            continue;
        }
        size_t st = i;
        while (s[i] && (((unsigned char)s[i] >= 'A' && (unsigned char)s[i] <= 'Z') ||
                        ((unsigned char)s[i] >= 'a' && (unsigned char)s[i] <= 'z') ||
                        ((unsigned char)s[i] >= '0' && (unsigned char)s[i] <= '9') ||
                        (unsigned char)s[i] >= 0x80))
            i++;
        size_t n = i - st;
        int title = 0;
        for (size_t t = 0; t < sizeof titles / sizeof titles[0] && !title; t++)
            if (strlen(titles[t]) == n && !strncasecmp(s + st, titles[t], n)) title = 1;
        if (!title) return 0;
    }
    return 1;
}

/* Appends the string items of v (a string or an array of strings) to buf, space-separated;
 * titles are skipped when skip_titles. Parts that do not fit are left out. */
static void name_parts(char *buf, size_t cap, size_t *n, const cJSON *v, int skip_titles) {
    const cJSON *x;
    if (cJSON_IsString(v)) {
        const char *p = v->valuestring;
        size_t pl = strlen(p);
        while (pl && is_space_ch(p[0])) p++, pl--;
        while (pl && is_space_ch(p[pl - 1])) pl--;
        if (!pl || (skip_titles && only_titles(p))) return;
        if (*n + pl + 1 >= cap) return;
        if (*n) buf[(*n)++] = ' ';
        memcpy(buf + *n, p, pl);
        *n += pl;
        buf[*n] = '\0';
        return;
    }
    if (cJSON_IsArray(v)) cJSON_ArrayForEach(x, v) name_parts(buf, cap, n, x, skip_titles);
}

/* A HumanName: the full name (non-title prefixes, given names, family, non-title suffixes) as
 * one string, the family name alone, and the name's text when given. */
static int emit_name(mctx *c, const cJSON *hn) {
    if (!cJSON_IsObject(hn)) return 0;
    char full[2 * FHIR_MAX_PHI];
    size_t n = 0;
    full[0] = '\0';
    name_parts(full, sizeof full, &n, get(hn, "prefix"), 1);
    name_parts(full, sizeof full, &n, get(hn, "given"), 0);
    name_parts(full, sizeof full, &n, get(hn, "family"), 0);
    name_parts(full, sizeof full, &n, get(hn, "suffix"), 1);
    int rc;
    if ((rc = emit_phi(c, "NAME", full, n))) return rc;
    char fam[2 * FHIR_MAX_PHI];
    size_t fl = 0;
    fam[0] = '\0';
    name_parts(fam, sizeof fam, &fl, get(hn, "family"), 0);
    if ((rc = emit_phi(c, "NAME", fam, fl))) return rc;
    return emit_phi_str(c, "NAME", get_str(hn, "text"));
}

/* ContactPoints: phone, pager and sms -> PHONE, fax -> FAX, email -> EMAIL, url -> URL,
 * anything else -> ID. */
static int emit_telecom(mctx *c, const cJSON *list) {
    const cJSON *x;
    if (!cJSON_IsArray(list)) return 0;
    cJSON_ArrayForEach(x, list) {
        const char *sys = get_str(x, "system"), *kind = "ID";
        if (sys && (!strcmp(sys, "phone") || !strcmp(sys, "pager") || !strcmp(sys, "sms")))
            kind = "PHONE";
        else if (sys && !strcmp(sys, "fax")) kind = "FAX";
        else if (sys && !strcmp(sys, "email")) kind = "EMAIL";
        else if (sys && !strcmp(sys, "url")) kind = "URL";
        int rc = emit_phi_str(c, kind, get_str(x, "value"));
        if (rc) return rc;
    }
    return 0;
}

/* An Address. The patient's own (own = 1) gives ZIP and STATE, which de-identification keeps
 * generalised (ZIP3) as facts about where the patient lives; a relative's address or the
 * birthplace gives its postal code as ADDRESS (removed, not generalised) and no state. */
static int emit_address(mctx *c, const cJSON *a, int own) {
    if (!cJSON_IsObject(a)) return 0;
    const cJSON *lines = get(a, "line"), *x;
    int rc;
    if (cJSON_IsArray(lines))
        cJSON_ArrayForEach(x, lines) {
            if (cJSON_IsString(x) && (rc = emit_phi_str(c, "ADDRESS", x->valuestring))) return rc;
        }
    if ((rc = emit_phi_str(c, "ADDRESS", get_str(a, "text")))) return rc;
    if ((rc = emit_phi_str(c, "CITY", get_str(a, "city")))) return rc;
    if ((rc = emit_phi_str(c, "CITY", get_str(a, "district")))) return rc;
    if ((rc = emit_phi_str(c, own ? "ZIP" : "ADDRESS", get_str(a, "postalCode")))) return rc;
    if (own && (rc = emit_phi_str(c, "STATE", get_str(a, "state")))) return rc;
    return 0;
}

/* Identifier values: SSN (type SS or SB, or the US SSN system), MRN (type MR), everything else
 * (driver's licence, passport, health plan, the source system's own ids) ID. */
static int emit_identifiers(mctx *c, const cJSON *list) {
    const cJSON *x;
    if (!cJSON_IsArray(list)) return 0;
    cJSON_ArrayForEach(x, list) {
        const char *kind = "ID", *sys = get_str(x, "system");
        if (sys && !strcmp(sys, "http://hl7.org/fhir/sid/us-ssn")) kind = "SSN";
        const cJSON *codings = get(get(x, "type"), "coding"), *cd;
        if (cJSON_IsArray(codings))
            cJSON_ArrayForEach(cd, codings) {
                const char *code = get_str(cd, "code");
                if (!code) continue;
                if (!strcmp(code, "SS") || !strcmp(code, "SB")) kind = "SSN";
                else if (!strcmp(code, "MR") && strcmp(kind, "SSN") != 0) kind = "MRN";
            }
        int rc = emit_phi_str(c, kind, get_str(x, "value"));
        if (rc) return rc;
    }
    return 0;
}

/* Whether a reference ("Organization/1", "Organization?identifier=...", ".../Organization/1")
 * or a Reference.type names the given resource type. */
static int ref_names_type(const char *ref, const char *type) {
    size_t tl = strlen(type);
    if (!ref) return 0;
    if (!strncmp(ref, type, tl) && (ref[tl] == '/' || ref[tl] == '?' || ref[tl] == '\0')) return 1;
    for (const char *q = ref; (q = strchr(q, '/')) != NULL; q++)
        if (!strncmp(q + 1, type, tl) && q[1 + tl] == '/') return 1;
    return 0;
}

/* The display text of a Reference: ORGANIZATION when it points to an Organization, Location or
 * HealthcareService, NAME when it points to a person, else the caller's default. */
static int emit_ref_display(mctx *c, const cJSON *ref, const char *dflt) {
    const char *d = get_str(ref, "display");
    if (!d) return 0;
    static const char *const orgs[] = {"Organization", "Location", "HealthcareService"};
    static const char *const people[] = {"Practitioner", "PractitionerRole", "Patient",
                                         "RelatedPerson", "Person"};
    const char *r = get_str(ref, "reference"), *t = get_str(ref, "type"), *kind = dflt;
    for (size_t i = 0; i < sizeof orgs / sizeof orgs[0]; i++)
        if (ref_names_type(r, orgs[i]) || (t && !strcmp(t, orgs[i]))) kind = "ORGANIZATION";
    for (size_t i = 0; i < sizeof people / sizeof people[0]; i++)
        if (ref_names_type(r, people[i]) || (t && !strcmp(t, people[i]))) kind = "NAME";
    return emit_phi_str(c, kind, d);
}

/* emit_ref_display over a list of References (or of objects holding one in field). */
static int emit_ref_list(mctx *c, const cJSON *list, const char *field, const char *dflt) {
    const cJSON *x;
    if (!cJSON_IsArray(list)) return 0;
    cJSON_ArrayForEach(x, list) {
        int rc = emit_ref_display(c, field ? get(x, field) : x, dflt);
        if (rc) return rc;
    }
    return 0;
}

/* One field of a resource that names people or places: a Reference, or (list) an array of
 * References or of objects holding one in `in`; dflt as for emit_ref_display. */
typedef struct {
    const char *field;
    int list;
    const char *in;
    const char *dflt;
} ref_field;

/* The display texts of the fields f[] (ended by a NULL field) of resource res. */
static int emit_refs(mctx *c, const cJSON *res, const ref_field *f) {
    for (; f->field; f++) {
        const cJSON *v = get(res, f->field);
        int rc = f->list ? emit_ref_list(c, v, f->in, f->dflt) : emit_ref_display(c, v, f->dflt);
        if (rc) return rc;
    }
    return 0;
}

/* Everything identifying in a Patient: names, telecom, addresses, identifiers, the mother's
 * maiden name, the birthplace, contacts (relatives, guardians: name, telecom, address,
 * organisation), general practitioners and the managing organisation. */
static int patient_phi(mctx *c) {
    const cJSON *res = c->res, *x;
    int rc;
    const cJSON *names = get(res, "name");
    if (cJSON_IsArray(names))
        cJSON_ArrayForEach(x, names) {
            if ((rc = emit_name(c, x))) return rc;
        }
    if ((rc = emit_telecom(c, get(res, "telecom")))) return rc;
    const cJSON *addrs = get(res, "address");
    if (cJSON_IsArray(addrs))
        cJSON_ArrayForEach(x, addrs) {
            if ((rc = emit_address(c, x, 1))) return rc;
        }
    if ((rc = emit_identifiers(c, get(res, "identifier")))) return rc;
    const cJSON *exts = get(res, "extension");
    if (cJSON_IsArray(exts))
        cJSON_ArrayForEach(x, exts) {
            const char *url = get_str(x, "url");
            if (!url) continue;
            rc = 0;
            if (!strcmp(url, "http://hl7.org/fhir/StructureDefinition/patient-mothersMaidenName"))
                rc = emit_phi_str(c, "NAME", get_str(x, "valueString"));
            else if (!strcmp(url, "http://hl7.org/fhir/StructureDefinition/patient-birthPlace"))
                rc = emit_address(c, get(x, "valueAddress"), 0);
            if (rc) return rc;
        }
    const cJSON *contacts = get(res, "contact");
    if (cJSON_IsArray(contacts))
        cJSON_ArrayForEach(x, contacts) {
            if ((rc = emit_name(c, get(x, "name")))) return rc;
            if ((rc = emit_telecom(c, get(x, "telecom")))) return rc;
            if ((rc = emit_address(c, get(x, "address"), 0))) return rc;
            if ((rc = emit_ref_display(c, get(x, "organization"), "ORGANIZATION"))) return rc;
        }
    static const ref_field refs[] = {{"generalPractitioner", 1, NULL, "NAME"},
                                     {"managingOrganization", 0, NULL, "ORGANIZATION"},
                                     {NULL, 0, NULL, NULL}};
    return emit_refs(c, res, refs);
}

/* ------------------------------------------------------------------ Patient */

static int map_patient(mctx *c) {
    const char *full_url = c->entry ? get_str(c->entry, "fullUrl") : NULL;
    size_t kl = 0;
    const char *key = patient_key(c->res, full_url, &kl);
    if (!key) return reject(c, "Patient without a valid id", "Patient.id");
    c->r->is_patient = 1;
    int rc;
    if ((rc = set_subject(c, FHIR_SUBJ_KEY, key, kl))) return rc;
    if (full_url && strlen(full_url) <= 128) {
        c->r->url_len = strlen(full_url);
        if ((c->r->url_off = fhir_heap_add(c->b, full_url, c->r->url_len)) == SIZE_MAX) return -1;
    }
    const cJSON *g = get(c->res, "gender");
    if (g) {
        static const char *const names[][2] = {
            {"male", "M"}, {"female", "F"}, {"other", "O"}, {"unknown", "UNK"}};
        const char *m = NULL;
        if (cJSON_IsString(g))
            for (int i = 0; i < 4; i++)
                if (!strcmp(g->valuestring, names[i][0])) m = names[i][1];
        if (!m) return reject(c, "unsupported gender code", "Patient.gender");
        if ((rc = emit_code(c, TIME_NULL, "GENDER//", NULL, m, NULL))) return rc;
    }
    int64_t t;
    int found;
    if ((rc = get_time(c, c->res, "birthDate", "Patient", &t, &found))) return rc;
    if (found && (rc = emit_code(c, t, "MEDS_BIRTH", NULL, NULL, NULL))) return rc;
    if ((rc = get_time(c, c->res, "deceasedDateTime", "Patient", &t, &found))) return rc;
    if (found && (rc = emit_code(c, t, "MEDS_DEATH", NULL, NULL, NULL))) return rc;
    const cJSON *exts = get(c->res, "extension"), *x;
    if (cJSON_IsArray(exts)) {
        cJSON_ArrayForEach(x, exts) {
            const char *url = get_str(x, "url"), *what = NULL;
            if (!url) continue;
            if (!strcmp(url, "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race"))
                what = "RACE//";
            else if (!strcmp(url,
                             "http://hl7.org/fhir/us/core/StructureDefinition/us-core-ethnicity"))
                what = "ETHNICITY//";
            if (!what) continue;
            const cJSON *subs = get(x, "extension"), *sx;
            if (!cJSON_IsArray(subs)) continue;
            cJSON_ArrayForEach(sx, subs) {
                const char *su = get_str(sx, "url");
                if (!su || strcmp(su, "ombCategory") != 0) continue;
                const cJSON *vc = get(sx, "valueCoding");
                const char *code = get_str(vc, "code");
                if (!valid_part(code, FHIR_MAX_PART)) continue;
                if ((rc = emit_code(c, TIME_NULL, what, NULL, code, get_str(vc, "display"))))
                    return rc;
            }
        }
    }
    const char *disp;
    const char *ms = plain_code(get(c->res, "maritalStatus"), &disp);
    if (ms && (rc = emit_code(c, TIME_NULL, "MARITAL_STATUS//", NULL, ms, disp))) return rc;
    return patient_phi(c);
}

/* ------------------------------------------------------------------ Encounter */

static int map_encounter(mctx *c) {
    static const char *const skip[] = {"planned", "cancelled", "entered-in-error", NULL};
    int rc;
    if ((rc = open_clinical(c, "status", 0, skip))) return rc;
    const cJSON *period = get(c->res, "period");
    int64_t start, end;
    int has_start = 0, has_end = 0;
    if ((rc = get_time(c, period, "start", "Encounter.period", &start, &has_start))) return rc;
    if ((rc = get_time(c, period, "end", "Encounter.period", &end, &has_end))) return rc;
    if (!has_start) return reject(c, "missing time", "Encounter.period.start");
    if (has_end && end < start) return reject(c, "end before start", "Encounter.period.end");
    /* class: a Coding in R4, a list of CodeableConcepts in R5 */
    const cJSON *cls = get(c->res, "class");
    if (cJSON_IsArray(cls)) cls = cJSON_GetArrayItem(cls, 0);
    const char *disp;
    const char *cl = plain_code(cls, &disp);
    if (!cl) cl = "UNK";
    if ((rc = emit_code(c, start, "ENCOUNTER_START//", NULL, cl, disp))) return rc;
    rc = emit_concepts(c, start, get(c->res, "type"), NULL, NULL, "ENCOUNTER_TYPE//", NULL, NULL);
    if (rc) return rc;
    if (has_end && (rc = emit_code(c, end, "ENCOUNTER_END//", NULL, cl, disp))) return rc;
    /* who saw the patient, and where */
    static const ref_field refs[] = {{"participant", 1, "individual", "NAME"},
                                     {"location", 1, "location", "ORGANIZATION"},
                                     {"serviceProvider", 0, NULL, "ORGANIZATION"},
                                     {NULL, 0, NULL, NULL}};
    return emit_refs(c, c->res, refs);
}

/* ------------------------------------------------------------------ Condition */

static int map_condition(mctx *c) {
    int rc;
    if ((rc = open_clinical(c, "verificationStatus", 1, SKIP_REFUTED))) return rc;
    codebuf cb;
    const char *disp;
    if ((rc = resource_concept(c, "code", "", &cb, &disp))) return rc;
    int64_t onset = 0, rec = 0, t;
    int has_onset = 0, has_rec = 0;
    if ((rc = get_time(c, c->res, "onsetDateTime", "Condition", &onset, &has_onset))) return rc;
    if (!has_onset) {
        const cJSON *p = get(c->res, "onsetPeriod");
        if (p && (rc = get_time(c, p, "start", "Condition.onsetPeriod", &onset, &has_onset)))
            return rc;
    }
    if ((rc = get_time(c, c->res, "recordedDate", "Condition", &rec, &has_rec))) return rc;
    if (!has_onset && !has_rec)
        return reject(c, "missing time", "Condition.onsetDateTime|recordedDate");
    t = has_onset && has_rec ? (onset > rec ? onset : rec) : has_onset ? onset : rec;
    return emit(c, t, &cb, NAN, NULL, 0, disp);
}

/* ------------------------------------------------------------------ Observation */

/* Emits the event for an Observation or one of its components: cb holds the code already. */
static int emit_valued(mctx *c, const cJSON *obj, const char *path, codebuf *cb, int64_t t,
                       const char *desc) {
    const cJSON *v;
    float num = NAN;
    const char *text = NULL;
    size_t tlen = 0;
    char dbuf[FHIR_MAX_DESC + 1];
    if ((v = get(obj, "valueQuantity"))) {
        const cJSON *val = get(v, "value");
        if (val) {
            if (!cJSON_IsNumber(val))
                return reject(c, "non-numeric valueQuantity.value", "%s.valueQuantity.value", path);
            if (!(fabs(val->valuedouble) <= FLT_MAX))
                return reject(c, "numeric value outside float range", "%s.valueQuantity.value",
                              path);
            num = (float)val->valuedouble;
        }
        const char *sys = get_str(v, "system"), *unit = get_str(v, "code");
        int ucum = !sys || !strcmp(sys, "http://unitsofmeasure.org");
        if (!unit || !ucum) unit = get_str(v, "unit");
        if (unit) {
            if (!valid_part(unit, 64)) return reject(c, "invalid unit", "%s.valueQuantity", path);
            cb_add(cb, "//");
            cb_add(cb, unit);
        }
        const char *cmp = get_str(v, "comparator");
        if (cmp && (!strcmp(cmp, "<") || !strcmp(cmp, "<=") || !strcmp(cmp, ">=") ||
                    !strcmp(cmp, ">") || !strcmp(cmp, "ad"))) {
            text = cmp;
            tlen = strlen(cmp);
        }
    } else if ((v = get(obj, "valueCodeableConcept"))) {
        const char *pf, *cv, *d;
        int rc = pick_coding(v, &pf, &cv, &d);
        if (rc == 1)
            return reject(c, "unknown code system", "%s.valueCodeableConcept.coding", path);
        if (rc == 0) {
            cb_add(cb, "//");
            cb_add(cb, pf);
            cb_add(cb, "//");
            cb_add(cb, cv);
            if (desc && d) {
                snprintf(dbuf, sizeof dbuf, "%s: %s", desc, d);
                desc = dbuf;
            } else {
                desc = d;
            }
        } else if ((text = get_str(v, "text"))) {
            tlen = strlen(text);
        }
    } else if ((v = get(obj, "valueString")) && cJSON_IsString(v)) {
        text = v->valuestring;
        tlen = strlen(text);
    } else if ((v = get(obj, "valueBoolean")) && cJSON_IsBool(v)) {
        text = cJSON_IsTrue(v) ? "true" : "false";
        tlen = strlen(text);
    } else if ((v = get(obj, "valueInteger")) && cJSON_IsNumber(v)) {
        if (!(fabs(v->valuedouble) <= FLT_MAX))
            return reject(c, "numeric value outside float range", "%s.valueInteger", path);
        num = (float)v->valuedouble;
    }
    return emit(c, t, cb, num, text, tlen, desc);
}

static int has_value(const cJSON *o) {
    for (const cJSON *ch = o ? o->child : NULL; ch; ch = ch->next)
        if (ch->string && !strncmp(ch->string, "value", 5)) return 1;
    return 0;
}

static int map_observation(mctx *c) {
    int64_t t;
    codebuf cb;
    const char *disp;
    int rc;
    if ((rc = coded_head(c, &OBSERVATION, &t, &cb, &disp))) return rc;
    const cJSON *comps = get(c->res, "component");
    int n_comp = cJSON_IsArray(comps) ? cJSON_GetArraySize(comps) : 0;
    if (has_value(c->res) || n_comp == 0) {
        if ((rc = emit_valued(c, c->res, "Observation", &cb, t, disp))) return rc;
    }
    int i = 0;
    const cJSON *comp;
    if (n_comp) {
        cJSON_ArrayForEach(comp, comps) {
            char path[64];
            snprintf(path, sizeof path, "Observation.component[%d]", i++);
            char cpath[80];
            snprintf(cpath, sizeof cpath, "%s.code", path);
            cb_reset(&cb);
            if ((rc = concept_code(c, get(comp, "code"), cpath, &cb, &disp))) return rc;
            if ((rc = emit_valued(c, comp, path, &cb, t, disp))) return rc;
        }
    }
    return 0;
}

/* ------------------------------------------------------------------ medications */

/* The code of a Medication resource's code concept into cb; 0, or 1 when it has none usable. */
static int medication_code(const cJSON *med, codebuf *cb, const char **disp) {
    const char *pf, *cv;
    if (pick_coding(get(med, "code"), &pf, &cv, disp) != 0) return 1;
    cb_add(cb, pf);
    cb_add(cb, "//");
    cb_add(cb, cv);
    return 0;
}

static int unresolved_medication(mctx *c) {
    return reject(c, "medication reference does not resolve to a coded Medication",
                  "%s.medicationReference", fhir_type_name(c->type));
}

/* medication[x] of a MedicationRequest / MedicationAdministration, emitted with prefix. */
static int map_medication_use(mctx *c, const char *prefix, int64_t t) {
    const char *mtype = fhir_type_name(c->type);
    char path[96];
    codebuf cb;
    cb_reset(&cb);
    cb_add(&cb, prefix);
    const char *disp = NULL;
    const cJSON *cc = get(c->res, "medicationCodeableConcept");
    if (cc) {
        snprintf(path, sizeof path, "%s.medicationCodeableConcept", mtype);
        int rc = concept_code(c, cc, path, &cb, &disp);
        if (rc) return rc;
        return emit(c, t, &cb, NAN, NULL, 0, disp);
    }
    const char *ref = get_str(get(c->res, "medicationReference"), "reference");
    if (!ref || !*ref)
        return reject(c, "missing code", "%s.medication[x]", mtype);
    const cJSON *med = NULL;
    if (ref[0] == '#') { /* contained */
        const cJSON *cont = get(c->res, "contained"), *x;
        if (cJSON_IsArray(cont)) {
            cJSON_ArrayForEach(x, cont) {
                const char *id = get_str(x, "id"), *rt = get_str(x, "resourceType");
                if (id && rt && !strcmp(rt, "Medication") && !strcmp(id, ref + 1)) {
                    med = x;
                    break;
                }
            }
        }
        if (!med) return unresolved_medication(c);
    } else { /* resolved at commit among the Medications of this unit and earlier ones */
        const char *id = NULL;
        size_t n = 0;
        char key[160];
        if (!strncmp(ref, "urn:uuid:", 9) && strlen(ref) < sizeof key)
            snprintf(key, sizeof key, "%s", ref);
        else if ((n = ref_id(ref, "Medication", &id)))
            snprintf(key, sizeof key, "Medication/%.*s", (int)n, id);
        else
            return unresolved_medication(c);
        int rc = emit(c, t, &cb, NAN, NULL, 0, NULL);
        if (rc) return rc;
        fhir_event *ev = &c->b->ev[c->b->n_ev - 1];
        ev->code_is_medref = 1;
        /* the prefix stays as the code; the key rides in the description slot */
        ev->desc_len = strlen(key);
        if ((ev->desc_off = fhir_heap_add(c->b, key, ev->desc_len)) == SIZE_MAX) return -1;
        return 0;
    }
    if (medication_code(med, &cb, &disp)) return unresolved_medication(c);
    return emit(c, t, &cb, NAN, NULL, 0, disp);
}

static int map_medication_request(mctx *c) {
    int rc;
    if ((rc = open_clinical(c, "status", 0, SKIP_ERROR))) return rc;
    int64_t t;
    int found;
    if ((rc = get_time(c, c->res, "authoredOn", "MedicationRequest", &t, &found))) return rc;
    if (!found) return reject(c, "missing time", "MedicationRequest.authoredOn");
    return map_medication_use(c, "", t);
}

static int map_medication_admin(mctx *c) {
    int rc;
    if ((rc = open_clinical(c, "status", 0, SKIP_NOT_DONE))) return rc;
    int64_t t;
    if ((rc = event_time(c, &EFFECTIVE, NULL, &t))) return rc;
    return map_medication_use(c, "MED_ADMIN//", t);
}

/* A Medication: no events of its own; its code is kept so references to it resolve. */
static int map_medication(mctx *c) {
    codebuf cb;
    cb_reset(&cb);
    const char *disp;
    if (medication_code(c->res, &cb, &disp)) return 2;
    const char *id = get_str(c->res, "id");
    const char *full_url = c->entry ? get_str(c->entry, "fullUrl") : NULL;
    char key[96];
    size_t k0 = c->b->heap.len, kl = 0;
    if (valid_id(id)) {
        snprintf(key, sizeof key, "Medication/%s", id);
        if (fhir_heap_add(c->b, key, strlen(key) + 1) == SIZE_MAX) return -1;
    }
    if (full_url && strlen(full_url) <= 128 &&
        fhir_heap_add(c->b, full_url, strlen(full_url) + 1) == SIZE_MAX)
        return -1;
    kl = c->b->heap.len - k0;
    if (!kl) return 2;
    c->r->keys_off = k0;
    c->r->keys_len = kl;
    int rc = emit(c, TIME_NULL, &cb, NAN, NULL, 0, disp);
    if (rc) return rc;
    c->r->is_medication = 1;
    return 2; /* counted as filtered: no patient events */
}

/* ------------------------------------------------------------------ simple coded events */

/* A coded_spec resource with its one event. */
static int map_coded(mctx *c, const coded_spec *sp) {
    int64_t t;
    codebuf cb;
    const char *disp;
    int rc = coded_head(c, sp, &t, &cb, &disp);
    return rc ? rc : emit(c, t, &cb, NAN, NULL, 0, disp);
}

static int map_procedure(mctx *c) { return map_coded(c, &PROCEDURE); }
static int map_immunization(mctx *c) { return map_coded(c, &IMMUNIZATION); }

static int map_allergy(mctx *c) {
    int rc;
    if ((rc = open_clinical(c, "verificationStatus", 1, SKIP_REFUTED))) return rc;
    int64_t t;
    int found;
    if ((rc = get_time(c, c->res, "recordedDate", "AllergyIntolerance", &t, &found))) return rc;
    if (!found && (rc = event_time(c, &ONSET, NULL, &t))) return rc;
    codebuf cb;
    const char *disp;
    if ((rc = resource_concept(c, "code", "ALLERGY//", &cb, &disp))) return rc;
    return emit(c, t, &cb, NAN, NULL, 0, disp);
}

/* ------------------------------------------------------------------ notes */

static int b64val(unsigned char ch) {
    if (ch >= 'A' && ch <= 'Z') return ch - 'A';
    if (ch >= 'a' && ch <= 'z') return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9') return ch - '0' + 52;
    if (ch == '+' || ch == '-') return 62;
    if (ch == '/' || ch == '_') return 63;
    return -1;
}

/* Decodes base64 (whitespace ignored, padding optional) into out, which holds len*3/4+3
 * bytes. Returns the decoded length or -1. */
static long b64_decode(const char *s, size_t len, char *out) {
    uint32_t acc = 0;
    int bits = 0, pad = 0;
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == ' ' || ch == '\n' || ch == '\r' || ch == '\t') continue;
        if (ch == '=') {
            pad++;
            continue;
        }
        int v = b64val(ch);
        if (v < 0 || pad) return -1; /* data after padding */
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (char)((acc >> bits) & 0xFF);
        }
    }
    if (bits >= 6 || pad > 2) return -1; /* a lone leftover character */
    return (long)o;
}

/* Picks a text attachment among list[].<field> (attachment objects directly when field is
 * NULL): text/plain first, then any other text type, then untyped. */
static const cJSON *pick_text_attachment(const cJSON *list, const char *field) {
    const cJSON *best = NULL, *x;
    int best_rank = 0;
    if (!cJSON_IsArray(list)) return NULL;
    cJSON_ArrayForEach(x, list) {
        const cJSON *a = field ? get(x, field) : x;
        if (!get_str(a, "data")) continue;
        const char *ct = get_str(a, "contentType");
        int rank = !ct ? 1 : !strncmp(ct, "text/plain", 10) ? 3 : !strncmp(ct, "text/", 5) ? 2 : 0;
        if (rank > best_rank) {
            best = a;
            best_rank = rank;
        }
    }
    return best;
}

/* Emits a note event with the decoded text of attachment a (or no text when a is NULL). */
static int emit_note(mctx *c, int64_t t, const codebuf *cb, const cJSON *a, const char *path,
                     const char *disp) {
    if (!a) return emit(c, t, cb, NAN, NULL, 0, disp);
    const char *data = get_str(a, "data");
    size_t len = strlen(data);
    char *out = malloc(len / 4 * 3 + 4);
    if (!out) return -1;
    long n = b64_decode(data, len, out);
    int rc;
    if (n < 0) rc = reject(c, "invalid base64 in attachment", "%s.data", path);
    else rc = emit(c, t, cb, NAN, out, (size_t)n, disp);
    free(out);
    return rc;
}

static int map_document(mctx *c) {
    if (status_is(c->res, "docStatus", SKIP_ERROR)) return 2;
    int rc;
    if ((rc = open_clinical(c, "status", 0, SKIP_ERROR))) return rc;
    int64_t t;
    int found;
    if ((rc = get_time(c, c->res, "date", "DocumentReference", &t, &found))) return rc;
    if (!found) {
        const cJSON *p = get(get(c->res, "context"), "period");
        if ((rc = get_time(c, p, "start", "DocumentReference.context.period", &t, &found)))
            return rc;
    }
    if (!found) return reject(c, "missing time", "DocumentReference.date");
    codebuf cb;
    cb_reset(&cb);
    cb_add(&cb, "NOTE");
    const char *disp = NULL;
    const cJSON *type = get(c->res, "type");
    if (type) {
        cb_add(&cb, "//");
        if ((rc = concept_code(c, type, "DocumentReference.type", &cb, &disp))) return rc;
    }
    const cJSON *a = pick_text_attachment(get(c->res, "content"), "attachment");
    if ((rc = emit_note(c, t, &cb, a, "DocumentReference.content.attachment", disp))) return rc;
    static const ref_field refs[] = {{"author", 1, NULL, "NAME"},
                                     {"authenticator", 0, NULL, "NAME"},
                                     {"custodian", 0, NULL, "ORGANIZATION"},
                                     {NULL, 0, NULL, NULL}};
    return emit_refs(c, c->res, refs);
}

static int map_report(mctx *c) {
    int64_t t;
    codebuf cb;
    const char *disp;
    int rc;
    if ((rc = coded_head(c, &REPORT, &t, &cb, &disp))) return rc;
    if ((rc = emit(c, t, &cb, NAN, NULL, 0, disp))) return rc;
    const cJSON *a = pick_text_attachment(get(c->res, "presentedForm"), NULL);
    if (a) {
        codebuf nb;
        cb_reset(&nb);
        cb_add(&nb, "NOTE//");
        cb_add(&nb, cb.s);
        if ((rc = emit_note(c, t, &nb, a, "DiagnosticReport.presentedForm", disp))) return rc;
    }
    /* R4 DiagnosticReport has no author: its people are the performers and interpreters */
    static const ref_field refs[] = {{"performer", 1, NULL, "NAME"},
                                     {"resultsInterpreter", 1, NULL, "NAME"},
                                     {NULL, 0, NULL, NULL}};
    return emit_refs(c, c->res, refs);
}

static int map_careplan(mctx *c) {
    static const char *const skip[] = {"entered-in-error", "revoked", NULL};
    int rc;
    if ((rc = open_clinical(c, "status", 0, skip))) return rc;
    int64_t t;
    int found;
    const cJSON *p = get(c->res, "period");
    if ((rc = get_time(c, p, "start", "CarePlan.period", &t, &found))) return rc;
    if (!found && (rc = get_time(c, c->res, "created", "CarePlan", &t, &found))) return rc;
    if (!found) return reject(c, "missing time", "CarePlan.period.start|created");
    int any_coding = 0, n = 0;
    if ((rc = emit_concepts(c, t, get(c->res, "category"), NULL, NULL, "CAREPLAN//", &n,
                            &any_coding)))
        return rc;
    if ((rc = emit_concepts(c, t, get(c->res, "activity"), "detail", "code",
                            "CAREPLAN_ACTIVITY//", &n, &any_coding)))
        return rc;
    if (!n) return reject(c, any_coding ? "unknown code system" : "missing code",
                          "CarePlan.category|activity.detail.code");
    return 0;
}

/* ------------------------------------------------------------------ dispatch */

typedef int (*map_fn)(mctx *);

static map_fn handler_for(const char *t) {
    switch (t[0]) {
    case 'A': return !strcmp(t, "AllergyIntolerance") ? map_allergy : NULL;
    case 'C':
        return !strcmp(t, "Condition") ? map_condition : !strcmp(t, "CarePlan") ? map_careplan : NULL;
    case 'D':
        return !strcmp(t, "DiagnosticReport") ? map_report
             : !strcmp(t, "DocumentReference") ? map_document : NULL;
    case 'E': return !strcmp(t, "Encounter") ? map_encounter : NULL;
    case 'I': return !strcmp(t, "Immunization") ? map_immunization : NULL;
    case 'M':
        return !strcmp(t, "MedicationRequest") ? map_medication_request
             : !strcmp(t, "MedicationAdministration") ? map_medication_admin
             : !strcmp(t, "Medication") ? map_medication : NULL;
    case 'O': return !strcmp(t, "Observation") ? map_observation : NULL;
    case 'P':
        return !strcmp(t, "Patient") ? map_patient : !strcmp(t, "Procedure") ? map_procedure : NULL;
    default: return NULL;
    }
}

/* Maps one resource object of known type into the batch. */
static int map_one(fhir_batch *b, const char *file, int is_bundle, uint64_t row, int type,
                   const cJSON *res, const cJSON *entry) {
    fhir_res *r = fhir_batch_res(b);
    if (!r) return -1;
    r->type = type;
    r->row = row;
    mctx c = {.b = b, .file = file, .is_bundle = is_bundle, .row = row, .type = type,
              .tname = fhir_type_name(type), .res = res, .entry = entry, .r = r,
              .ev_first = b->n_ev};
    const char *id = get_str(res, "id");
    if (valid_id(id)) {
        r->id_len = strlen(id);
        if ((r->id_off = fhir_heap_add(b, id, r->id_len)) == SIZE_MAX) return -1;
    }
    size_t ev_mark = b->n_ev, heap_mark = b->heap.len;
    map_fn fn = handler_for(c.tname);
    int rc = fn ? fn(&c) : 2;
    /* the patient's name as written in this resource's subject reference */
    if (rc == 0 && r->subj_kind != FHIR_SUBJ_NONE && !r->is_patient)
        rc = emit_ref_display(&c, get(res, "subject") ? get(res, "subject") : get(res, "patient"),
                              "NAME");
    if (rc < 0) return -1;
    if (rc == 1) {
        char loc[1024];
        b->n_ev = ev_mark;
        b->heap.len = heap_mark;
        /* the record starts again as a rejection (its events dropped), keeping only its id */
        *r = (fhir_res){.type = type, .outcome = FHIR_OUT_REJECTED, .row = row, .ev_first = ev_mark,
                        .reason = c.reason, .id_off = r->id_off, .id_len = r->id_len};
        fhir_location(loc, sizeof loc, file, is_bundle, row, c.tname, res, c.path);
        r->loc_len = strlen(loc);
        if ((r->loc_off = fhir_heap_add(b, loc, r->loc_len)) == SIZE_MAX) return -1;
        return 0;
    }
    if (rc == 2) {
        r->outcome = FHIR_OUT_FILTERED;
        if (!r->is_medication) {
            b->n_ev = ev_mark;
            r->subj_kind = FHIR_SUBJ_NONE;
        }
    } else {
        r->outcome = FHIR_OUT_EVENTS;
    }
    r->ev_first = ev_mark;
    r->ev_count = b->n_ev - ev_mark;
    return 0;
}

/* resourceType of a resource object -> type index, or a rejection. */
static int resource_type(fhir_batch *b, const char *file, int is_bundle, uint64_t row,
                         const cJSON *res, int expected, int *type) {
    char loc[1024];
    const char *rt = get_str(res, "resourceType");
    const char *src = expected >= 0 ? NULL : "Resource";
    if (!rt) {
        fhir_location(loc, sizeof loc, file, is_bundle, row, fhir_type_name(expected), res,
                      "resourceType");
        return fhir_batch_reject(b, expected, src, row, "missing resourceType", loc) ? -1 : 1;
    }
    int t = fhir_type_index(rt, strlen(rt));
    if (t < 0) {
        fhir_location(loc, sizeof loc, file, is_bundle, row, fhir_type_name(expected), res,
                      "resourceType");
        return fhir_batch_reject(b, expected, src, row, "unknown resourceType", loc) ? -1 : 1;
    }
    if (expected >= 0 && t != expected) {
        fhir_location(loc, sizeof loc, file, is_bundle, row, fhir_type_name(t), res, "resourceType");
        return fhir_batch_reject(b, expected, NULL, row,
                                 "resourceType does not match the NDJSON file name", loc)
                   ? -1
                   : 1;
    }
    *type = t;
    return 0;
}

int fhir_map_line(fhir_batch *b, const char *file, uint64_t line, int expected_type,
                  const cJSON *res) {
    char loc[1024];
    if (!cJSON_IsObject(res)) {
        fhir_location(loc, sizeof loc, file, 0, line, fhir_type_name(expected_type), NULL, "");
        return fhir_batch_reject(b, expected_type, expected_type < 0 ? "Resource" : NULL, line,
                                 "line is not a JSON object", loc);
    }
    int type, rc = resource_type(b, file, 0, line, res, expected_type, &type);
    if (rc) return rc < 0 ? -1 : 0;
    return map_one(b, file, 0, line, type, res, NULL);
}

int fhir_type_mapped(int type) { return type >= 0 && handler_for(fhir_type_name(type)) != NULL; }

int fhir_map_entry(fhir_batch *b, const char *file, uint64_t row, const cJSON *e) {
    const cJSON *res = get(e, "resource");
    if (!res) return 0; /* e.g. a DELETE in a transaction: nothing to count */
    if (!cJSON_IsObject(res)) {
        char loc[1024];
        snprintf(loc, sizeof loc, "%s: entry %llu at entry.resource", file, (unsigned long long)row);
        return fhir_batch_reject(b, -1, "Resource", row, "entry.resource is not an object", loc);
    }
    int type, trc = resource_type(b, file, 1, row, res, -1, &type);
    if (trc) return trc < 0 ? -1 : 0;
    return map_one(b, file, 1, row, type, res, e);
}

int fhir_map_filtered(fhir_batch *b, int type, uint64_t row) {
    fhir_res *r = fhir_batch_res(b);
    if (!r) return -1;
    r->type = type;
    r->row = row;
    r->outcome = FHIR_OUT_FILTERED;
    return 0;
}

int fhir_map_bundle(fhir_batch *b, const char *file, const cJSON *root) {
    char loc[1024];
    if (!cJSON_IsObject(root)) {
        snprintf(loc, sizeof loc, "%s", file);
        return fhir_batch_reject(b, -1, "Bundle", 1, "top-level JSON value is not an object", loc);
    }
    const char *rt = get_str(root, "resourceType");
    if (!rt || strcmp(rt, "Bundle") != 0) { /* a file holding one resource */
        int type, rc = resource_type(b, file, 1, 1, root, -1, &type);
        if (rc) return rc < 0 ? -1 : 0;
        return map_one(b, file, 1, 1, type, root, NULL);
    }
    const cJSON *entries = get(root, "entry");
    if (!entries) return 0;
    if (!cJSON_IsArray(entries)) {
        snprintf(loc, sizeof loc, "%s (Bundle) at Bundle.entry", file);
        return fhir_batch_reject(b, -1, "Bundle", 1, "Bundle.entry is not an array", loc);
    }
    uint64_t row = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, entries) {
        if (fhir_map_entry(b, file, ++row, e)) return -1;
    }
    return 0;
}
