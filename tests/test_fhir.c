/* FHIR R4 ingestion: hand-written bundles and NDJSON exports (every supported resource type,
 * references, time zones, every rejection kind, strict mode, caps, thread-count independence),
 * then the bundled Synthea sets checked against counts made independently by Python's json
 * module at run time. */
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>
#include <zlib.h>

#include "check.h"
#include "ingest/fhir.h"
#include "ingest/fhir_internal.h"
#include "store/store.h"

/* ------------------------------------------------------------------ helpers */

static char g_dir[4096];

/* JSON fixtures are written with single quotes for readability; this swaps them for double
 * quotes (no fixture contains an apostrophe). Returns a static buffer. */
static const char *q(const char *s) {
    static char buf[1 << 16];
    size_t n = strlen(s);
    if (n >= sizeof buf) abort();
    for (size_t i = 0; i <= n; i++) buf[i] = s[i] == '\'' ? '"' : s[i];
    return buf;
}

static void path_of(char *out, size_t cap, const char *rel) {
    if (snprintf(out, cap, "%s/%s", g_dir, rel) >= (int)cap) abort();
}

static void mkdirs(const char *rel) {
    char p[4096];
    path_of(p, sizeof p, rel);
    for (char *s = p + strlen(g_dir) + 1; *s; s++)
        if (*s == '/') {
            *s = 0;
            mkdir(p, 0755);
            *s = '/';
        }
    mkdir(p, 0755);
}

static void write_file(const char *rel, const char *content) {
    char p[4096];
    path_of(p, sizeof p, rel);
    FILE *f = fopen(p, "wb");
    if (!f) abort();
    fwrite(content, 1, strlen(content), f);
    fclose(f);
}

static void write_bin(const char *rel, const void *data, size_t len) {
    char p[4096];
    path_of(p, sizeof p, rel);
    FILE *f = fopen(p, "wb");
    if (!f) abort();
    fwrite(data, 1, len, f);
    fclose(f);
}

static void write_gz(const char *rel, const char *content) {
    char p[4096];
    path_of(p, sizeof p, rel);
    gzFile g = gzopen(p, "wb");
    if (!g) abort();
    gzwrite(g, content, (unsigned)strlen(content));
    gzclose(g);
}

static char *b64(const char *s) {
    static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t n = strlen(s);
    char *o = malloc(n / 3 * 4 + 8), *p = o;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned char)s[i] << 16;
        if (i + 1 < n) v |= (unsigned char)s[i + 1] << 8;
        if (i + 2 < n) v |= (unsigned char)s[i + 2];
        *p++ = al[v >> 18 & 63];
        *p++ = al[v >> 12 & 63];
        *p++ = i + 1 < n ? al[v >> 6 & 63] : '=';
        *p++ = i + 2 < n ? al[v & 63] : '=';
    }
    *p = 0;
    return o;
}

/* Ingests path into <dir>/<store_name>; returns the fhir_ingest status. On success the store is
 * finished and opened into *s. */
static int ingest(const char *rel_input, const char *store_name, ingest_report *rep, int strict,
                  store *s, cf_err *err) {
    char in[4096], out[4096];
    if (rel_input[0] == '/') snprintf(in, sizeof in, "%s", rel_input);
    else path_of(in, sizeof in, rel_input);
    path_of(out, sizeof out, store_name);
    store_writer *w;
    if (store_writer_open(&w, out, NULL, err)) return -1;
    ingest_report_init(rep, strict);
    fhir_options opt = {.strict = strict};
    int rc = fhir_ingest(in, w, rep, &opt, err);
    if (rc) {
        store_writer_abort(w);
        return rc;
    }
    if (store_writer_finish(w, err)) return -1;
    if (s && store_open(s, out, err)) return -1;
    return 0;
}

static const ingest_source_stats *src_stats(const ingest_report *r, const char *name) {
    for (size_t i = 0; i < r->n_src; i++)
        if (!strcmp(r->src[i].source, name)) return &r->src[i];
    return NULL;
}

static const ingest_rejection *rej(const ingest_report *r, const char *source, const char *reason) {
    for (size_t i = 0; i < r->n_rej; i++)
        if (!strcmp(r->rej[i].source, source) && !strcmp(r->rej[i].reason, reason)) return &r->rej[i];
    return NULL;
}

typedef struct {
    int64_t time;
    float num;
    const char *text;
    size_t text_len;
    const char *source;
    uint64_t row;
    int found;
} ev_view;

/* The n-th (0-based) event of subject sid with the given code. */
static ev_view find_ev(const store *s, int64_t sid, const char *code, int nth) {
    ev_view v;
    memset(&v, 0, sizeof v);
    int64_t si = store_find_subject(s, sid), c = store_find_code(s, code);
    if (si < 0 || c < 0) return v;
    for (uint64_t e = s->subject_start[si]; e < s->subject_start[si + 1]; e++) {
        if (s->code[e] != (uint32_t)c || nth-- > 0) continue;
        v.found = 1;
        v.time = s->time[e];
        v.num = s->numeric[e];
        if (s->text[e]) v.text = store_text_str(s, s->text[e], &v.text_len);
        v.source = store_source_name(s, store_prov_source(s->prov[e]));
        v.row = store_prov_row(s->prov[e]);
        break;
    }
    return v;
}

static uint64_t code_count(const store *s, const char *code) {
    int64_t c = store_find_code(s, code);
    return c < 0 ? 0 : s->code_count[c];
}

static int64_t ts(const char *iso) {
    int64_t t = 0;
    if (time_parse_iso(iso, strlen(iso), &t, NULL)) abort();
    return t;
}

static int64_t sid_of(const char *key) { return fhir_subject_id(key, strlen(key)); }

/* ------------------------------------------------------------------ fixtures */

static const char *BUNDLE_ALL =
    "{'resourceType':'Bundle','type':'transaction','entry':["
    /* 1 */ "{'fullUrl':'urn:uuid:p-1','resource':{'resourceType':'Patient','id':'p-1',"
    "'gender':'female','birthDate':'1970-03-04','deceasedDateTime':'2020-05-06T07:08:09+02:00',"
    "'extension':[{'url':'http://hl7.org/fhir/us/core/StructureDefinition/us-core-race','extension':["
    "{'url':'ombCategory','valueCoding':{'system':'urn:oid:2.16.840.1.113883.6.238','code':'2106-3','display':'White'}},"
    "{'url':'text','valueString':'White'}]},"
    "{'url':'http://hl7.org/fhir/us/core/StructureDefinition/us-core-ethnicity','extension':["
    "{'url':'ombCategory','valueCoding':{'system':'urn:oid:2.16.840.1.113883.6.238','code':'2186-5'}}]}],"
    "'maritalStatus':{'coding':[{'system':'http://terminology.hl7.org/CodeSystem/v3-MaritalStatus','code':'M'}]}}},"
    /* 2 */ "{'fullUrl':'urn:uuid:e-1','resource':{'resourceType':'Encounter','id':'e-1','status':'finished',"
    "'class':{'system':'http://terminology.hl7.org/CodeSystem/v3-ActCode','code':'IMP'},"
    "'type':[{'coding':[{'system':'http://snomed.info/sct','code':'32485007','display':'Hospital admission'}]},"
    "{'coding':[{'system':'http://example.org/local','code':'X1'}]}],"
    "'subject':{'reference':'urn:uuid:p-1'},"
    "'period':{'start':'2019-01-01T10:00:00+02:00','end':'2019-01-03T12:30:00Z'}}},"
    /* 3 */ "{'resource':{'resourceType':'Condition','id':'c-1',"
    "'code':{'coding':[{'system':'http://example.org/local','code':'L1'},"
    "{'system':'http://hl7.org/fhir/sid/icd-10-cm','code':'E11.9','display':'Type 2 diabetes'}]},"
    "'subject':{'reference':'Patient/p-1'},'onsetDateTime':'2015-06-01',"
    "'recordedDate':'2019-01-02T09:00:00Z'}},"
    /* 4 */ "{'resource':{'resourceType':'Observation','id':'o-1','status':'final',"
    "'code':{'coding':[{'system':'http://loinc.org','code':'8867-4','display':'Heart rate'}]},"
    "'subject':{'reference':'urn:uuid:p-1'},'effectiveDateTime':'2019-01-02T08:00:00-05:00',"
    "'valueQuantity':{'value':72.5,'unit':'beats/minute','system':'http://unitsofmeasure.org','code':'/min'}}},"
    /* 5 */ "{'resource':{'resourceType':'Observation','id':'o-2','status':'final',"
    "'code':{'coding':[{'system':'http://loinc.org','code':'55284-4'}]},"
    "'subject':{'reference':'urn:uuid:p-1'},'effectivePeriod':{'start':'2019-01-02T08:05:00Z'},"
    "'component':[{'code':{'coding':[{'system':'http://loinc.org','code':'8480-6'}]},"
    "'valueQuantity':{'value':120,'system':'http://unitsofmeasure.org','code':'mm[Hg]'}},"
    "{'code':{'coding':[{'system':'http://loinc.org','code':'8462-4'}]},"
    "'valueQuantity':{'value':80,'system':'http://unitsofmeasure.org','code':'mm[Hg]'}}]}},"
    /* 6 */ "{'resource':{'resourceType':'Observation','id':'o-3','status':'final',"
    "'code':{'coding':[{'system':'http://loinc.org','code':'72166-2'}]},"
    "'subject':{'reference':'urn:uuid:p-1'},'issued':'2019-01-02T09:00:00.250Z',"
    "'valueCodeableConcept':{'coding':[{'system':'http://snomed.info/sct','code':'266919005','display':'Never smoker'}]}}},"
    /* 7 */ "{'resource':{'resourceType':'Observation','id':'o-4','status':'final',"
    "'code':{'coding':[{'system':'http://loinc.org','code':'2951-2'}]},"
    "'subject':{'reference':'urn:uuid:p-1'},'effectiveDateTime':'2019-01-02T09:00:00Z',"
    "'valueQuantity':{'value':1000,'comparator':'>','unit':'mmol/L'}}},"
    /* 8 */ "{'resource':{'resourceType':'Observation','id':'o-5','status':'entered-in-error',"
    "'code':{'coding':[{'system':'http://loinc.org','code':'8867-4'}]},"
    "'subject':{'reference':'urn:uuid:p-1'},'effectiveDateTime':'2019-01-02T09:00:00Z'}},"
    /* 9 */ "{'fullUrl':'urn:uuid:m-1','resource':{'resourceType':'Medication','id':'m-1',"
    "'code':{'coding':[{'system':'http://www.nlm.nih.gov/research/umls/rxnorm','code':'860975','display':'metformin'}]}}},"
    /* 10 */ "{'resource':{'resourceType':'MedicationRequest','id':'mr-1','status':'active','intent':'order',"
    "'medicationReference':{'reference':'urn:uuid:m-1'},'subject':{'reference':'urn:uuid:p-1'},"
    "'authoredOn':'2019-01-03T10:00:00Z'}},"
    /* 11 */ "{'resource':{'resourceType':'MedicationRequest','id':'mr-2','status':'stopped','intent':'order',"
    "'medicationCodeableConcept':{'coding':[{'system':'http://www.nlm.nih.gov/research/umls/rxnorm','code':'197361'}]},"
    "'subject':{'reference':'urn:uuid:p-1'},'authoredOn':'2019-01-03T11:00:00Z'}},"
    /* 12 */ "{'resource':{'resourceType':'MedicationAdministration','id':'ma-1','status':'completed',"
    "'contained':[{'resourceType':'Medication','id':'med','code':{'coding':[{'system':'http://www.nlm.nih.gov/research/umls/rxnorm','code':'1719'}]}}],"
    "'medicationReference':{'reference':'#med'},'subject':{'reference':'Patient/p-1'},"
    "'effectiveDateTime':'2019-01-02T12:00:00Z'}},"
    /* 13 */ "{'resource':{'resourceType':'Procedure','id':'pr-1','status':'completed',"
    "'code':{'coding':[{'system':'http://snomed.info/sct','code':'73761001'}]},"
    "'subject':{'reference':'urn:uuid:p-1'},'performedPeriod':{'start':'2019-01-02T13:00:00Z','end':'2019-01-02T14:00:00Z'}}},"
    /* 14 */ "{'resource':{'resourceType':'Immunization','id':'im-1','status':'completed',"
    "'vaccineCode':{'coding':[{'system':'http://hl7.org/fhir/sid/cvx','code':'140'}]},"
    "'patient':{'reference':'urn:uuid:p-1'},'occurrenceDateTime':'2018-10-01T09:00:00Z'}},"
    /* 15 */ "{'resource':{'resourceType':'AllergyIntolerance','id':'al-1',"
    "'code':{'coding':[{'system':'http://snomed.info/sct','code':'91935009'}]},"
    "'patient':{'reference':'urn:uuid:p-1'},'recordedDate':'2010-02-03'}},"
    /* 16 */ "{'resource':{'resourceType':'DiagnosticReport','id':'dr-1','status':'final',"
    "'code':{'coding':[{'system':'http://loinc.org','code':'57698-3'}]},"
    "'subject':{'reference':'urn:uuid:p-1'},'effectiveDateTime':'2019-01-02T15:00:00Z',"
    "'presentedForm':[{'contentType':'text/plain','data':'@REPORT@'}]}},"
    /* 17 */ "{'resource':{'resourceType':'CarePlan','id':'cp-1','status':'active','intent':'plan',"
    "'category':[{'coding':[{'system':'http://hl7.org/fhir/us/core/CodeSystem/careplan-category','code':'assess-plan'}]},"
    "{'coding':[{'system':'http://snomed.info/sct','code':'698360004'}]}],"
    "'activity':[{'detail':{'code':{'coding':[{'system':'http://snomed.info/sct','code':'160670007'}]}}}],"
    "'subject':{'reference':'urn:uuid:p-1'},'period':{'start':'2019-01-03'}}},"
    /* 18 */ "{'resource':{'resourceType':'DocumentReference','id':'doc-1','status':'current',"
    "'type':{'coding':[{'system':'http://loinc.org','code':'34117-2'}]},"
    "'subject':{'reference':'urn:uuid:p-1'},'date':'2019-01-03T16:00:00.5+01:00',"
    "'content':[{'attachment':{'contentType':'text/html','data':'PGI+aGk8L2I+'}},"
    "{'attachment':{'contentType':'text/plain; charset=utf-8','data':'@NOTE@'}}]}},"
    /* 19 */ "{'resource':{'resourceType':'Claim','id':'cl-1','patient':{'reference':'urn:uuid:p-1'}}},"
    /* 20 */ "{'request':{'method':'DELETE','url':'Patient/old'}}"
    "]}";

static char *make_bundle_all(void) {
    const char *t = q(BUNDLE_ALL);
    char *note = b64("Cough for 3 days.\nPlan: rest, fluids.\n");
    char *rep = b64("Lipid panel: normal.");
    size_t n = strlen(t) + strlen(note) + strlen(rep) + 16;
    char *out = malloc(n), *o = out;
    for (const char *p = t; *p;) {
        if (!strncmp(p, "@NOTE@", 6)) {
            o += sprintf(o, "%s", note);
            p += 6;
        } else if (!strncmp(p, "@REPORT@", 8)) {
            o += sprintf(o, "%s", rep);
            p += 8;
        } else {
            *o++ = *p++;
        }
    }
    *o = 0;
    free(note);
    free(rep);
    return out;
}

/* ------------------------------------------------------------------ unit tests */

static void test_type_table(void) {
    int n = fhir_type_count();
    CHECK(n > 140);
    for (int i = 0; i + 1 < n; i++) CHECK(strcmp(fhir_type_name(i), fhir_type_name(i + 1)) < 0);
    for (int i = 0; i < n; i++) CHECK_EQ_INT(fhir_type_index(fhir_type_name(i), strlen(fhir_type_name(i))), i);
    CHECK_EQ_INT(fhir_type_index("Patients", 8), -1);
    CHECK_EQ_INT(fhir_type_index("Patien", 6), -1);
    CHECK(fhir_type_index("Patient.000", 7) >= 0);
    CHECK_EQ_STR(fhir_system_prefix("http://snomed.info/sct"), "SNOMED");
    CHECK_EQ_STR(fhir_system_prefix("http://loinc.org"), "LOINC");
    CHECK_EQ_STR(fhir_system_prefix("http://www.nlm.nih.gov/research/umls/rxnorm"), "RXNORM");
    CHECK_EQ_STR(fhir_system_prefix("http://hl7.org/fhir/sid/cvx"), "CVX");
    CHECK_EQ_STR(fhir_system_prefix("http://hl7.org/fhir/sid/icd-10-cm"), "ICD10CM");
    CHECK_EQ_STR(fhir_system_prefix("urn:oid:2.16.840.1.113883.6.96"), "SNOMED");
    CHECK(fhir_system_prefix("http://loinc.org/") == NULL);
    CHECK(fhir_system_prefix("http://example.org/local") == NULL);
}

static void test_subject_id(void) {
    /* independent computation straight from libsodium */
    REQUIRE(sodium_init() >= 0);
    const char *key = "e925b0f3-8006-43f6-aa31-94bd215e55e7";
    unsigned char h[32];
    crypto_generichash(h, 32, (const unsigned char *)key, strlen(key), NULL, 0);
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v |= (uint64_t)h[i] << (8 * i);
    v &= 0x7fffffffffffffffULL;
    CHECK_EQ_INT(fhir_subject_id(key, strlen(key)), (int64_t)v);
    CHECK(sid_of("a") > 0 && sid_of("b") > 0 && sid_of("a") != sid_of("b"));
}

static void test_bundle_all_types(void) {
    char *bundle = make_bundle_all();
    mkdirs("all");
    write_file("all/bundle.json", bundle);
    free(bundle);
    ingest_report rep;
    store s;
    cf_err err = {0};
    REQUIRE_EQ_INT(ingest("all/bundle.json", "all.store", &rep, 0, &s, &err), 0);
    int64_t p = sid_of("p-1");
    CHECK_EQ_INT(s.n_subjects, 1);
    CHECK_EQ_INT(s.subject_id[0], p);
    size_t kl = 0;
    const char *key = store_subject_key(&s, 0, &kl);
    CHECK(key && kl == 3 && !memcmp(key, "p-1", 3));

    /* Patient: static facts, birth at midnight UTC, death converted from +02:00 */
    ev_view v = find_ev(&s, p, "GENDER//F", 0);
    CHECK(v.found && v.time == TIME_NULL);
    CHECK_EQ_STR(v.source, "Patient");
    CHECK_EQ_INT(v.row, 1);
    CHECK(find_ev(&s, p, "RACE//2106-3", 0).found);
    CHECK(find_ev(&s, p, "ETHNICITY//2186-5", 0).found);
    CHECK(find_ev(&s, p, "MARITAL_STATUS//M", 0).found);
    CHECK_EQ_INT(find_ev(&s, p, "MEDS_BIRTH", 0).time, ts("1970-03-04"));
    CHECK_EQ_INT(find_ev(&s, p, "MEDS_DEATH", 0).time, ts("2020-05-06T05:08:09"));
    int64_t c = store_find_code(&s, "RACE//2106-3");
    REQUIRE(c >= 0);
    CHECK_EQ_STR(store_code_desc(&s, (uint32_t)c), "White");

    /* Encounter: start in +02:00, end in Z, typed by SNOMED only (the local type is skipped) */
    v = find_ev(&s, p, "ENCOUNTER_START//IMP", 0);
    CHECK(v.found && v.time == ts("2019-01-01T08:00:00"));
    CHECK_EQ_STR(v.source, "Encounter");
    CHECK_EQ_INT(v.row, 2);
    CHECK_EQ_INT(find_ev(&s, p, "ENCOUNTER_END//IMP", 0).time, ts("2019-01-03T12:30:00"));
    CHECK_EQ_INT(find_ev(&s, p, "ENCOUNTER_TYPE//SNOMED//32485007", 0).time, ts("2019-01-01T08:00:00"));
    CHECK_EQ_INT(code_count(&s, "ENCOUNTER_TYPE//SNOMED//32485007"), 1);

    /* Condition: the known-system coding, at the later of onset and recorded date */
    CHECK_EQ_INT(find_ev(&s, p, "ICD10CM//E11.9", 0).time, ts("2019-01-02T09:00:00"));

    /* Observations */
    v = find_ev(&s, p, "LOINC//8867-4///min", 0);
    CHECK(v.found && v.time == ts("2019-01-02T13:00:00"));
    CHECK_NEAR(v.num, 72.5, 1e-4);
    CHECK_EQ_INT(code_count(&s, "LOINC//8867-4///min"), 1); /* entered-in-error one filtered */
    CHECK_NEAR(find_ev(&s, p, "LOINC//8480-6//mm[Hg]", 0).num, 120, 1e-4);
    CHECK_NEAR(find_ev(&s, p, "LOINC//8462-4//mm[Hg]", 0).num, 80, 1e-4);
    CHECK_EQ_INT(find_ev(&s, p, "LOINC//8462-4//mm[Hg]", 0).row, 5);
    CHECK(!find_ev(&s, p, "LOINC//55284-4", 0).found); /* panel without a value of its own */
    v = find_ev(&s, p, "LOINC//72166-2//SNOMED//266919005", 0);
    CHECK(v.found && v.time == ts("2019-01-02T09:00:00.25") && isnan(v.num));
    v = find_ev(&s, p, "LOINC//2951-2//mmol/L", 0);
    CHECK(v.found && v.text_len == 1 && v.text && v.text[0] == '>');
    CHECK_NEAR(v.num, 1000, 1e-3);

    /* Medications: in-bundle reference, codeable concept, contained */
    v = find_ev(&s, p, "RXNORM//860975", 0);
    CHECK(v.found && v.time == ts("2019-01-03T10:00:00"));
    CHECK_EQ_STR(v.source, "MedicationRequest");
    c = store_find_code(&s, "RXNORM//860975");
    REQUIRE(c >= 0);
    CHECK_EQ_STR(store_code_desc(&s, (uint32_t)c), "metformin");
    CHECK(find_ev(&s, p, "RXNORM//197361", 0).found);
    CHECK_EQ_INT(find_ev(&s, p, "MED_ADMIN//RXNORM//1719", 0).time, ts("2019-01-02T12:00:00"));

    CHECK_EQ_INT(find_ev(&s, p, "SNOMED//73761001", 0).time, ts("2019-01-02T13:00:00"));
    CHECK_EQ_INT(find_ev(&s, p, "CVX//140", 0).time, ts("2018-10-01T09:00:00"));
    CHECK_EQ_INT(find_ev(&s, p, "ALLERGY//SNOMED//91935009", 0).time, ts("2010-02-03"));

    /* DiagnosticReport and its text; CarePlan; note text chosen as text/plain and decoded */
    CHECK(find_ev(&s, p, "LOINC//57698-3", 0).found);
    v = find_ev(&s, p, "NOTE//LOINC//57698-3", 0);
    CHECK(v.found && v.text_len == strlen("Lipid panel: normal.") &&
          !memcmp(v.text, "Lipid panel: normal.", v.text_len));
    CHECK_EQ_INT(find_ev(&s, p, "CAREPLAN//SNOMED//698360004", 0).time, ts("2019-01-03"));
    CHECK(find_ev(&s, p, "CAREPLAN_ACTIVITY//SNOMED//160670007", 0).found);
    v = find_ev(&s, p, "NOTE//LOINC//34117-2", 0);
    const char *note = "Cough for 3 days.\nPlan: rest, fluids.\n";
    CHECK(v.found && v.time == ts("2019-01-03T15:00:00.5"));
    CHECK(v.text && v.text_len == strlen(note) && !memcmp(v.text, note, v.text_len));
    CHECK_EQ_INT(v.row, 18);

    /* report: every resource counted */
    CHECK_EQ_INT(ingest_report_total_rejected(&rep), 0);
    const ingest_source_stats *st = src_stats(&rep, "Observation");
    REQUIRE(st);
    CHECK_EQ_INT(st->rows, 5);
    CHECK_EQ_INT(st->rows_filtered, 1);
    CHECK_EQ_INT(st->events, 5);
    CHECK_EQ_INT(src_stats(&rep, "Claim")->rows_filtered, 1);
    CHECK_EQ_INT(src_stats(&rep, "Medication")->rows_filtered, 1);
    CHECK_EQ_INT(src_stats(&rep, "Encounter")->events, 3);
    uint64_t rows = 0;
    for (size_t i = 0; i < rep.n_src; i++) rows += rep.src[i].rows;
    CHECK_EQ_INT(rows, 19); /* the DELETE entry has no resource */
    store_close(&s);
    ingest_report_free(&rep);
}

static void test_bulk_ndjson(void) {
    mkdirs("bulk/sub");
    /* Condition sorts before Patient by name: Patient files must still be read first */
    write_gz("bulk/Condition.000.ndjson.gz",
             q("{'resourceType':'Condition','id':'c1','code':{'coding':[{'system':'http://snomed.info/sct','code':'44054006'}]},"
               "'subject':{'reference':'Patient/pa'},'onsetDateTime':'2001-02-03T04:05:06Z'}\n"
               "{'resourceType':'Condition','id':'c2','code':{'coding':[{'system':'http://snomed.info/sct','code':'38341003'}]},"
               "'subject':{'reference':'https://ehr.example.org/fhir/Patient/pb/_history/3'},'recordedDate':'2002-02-03'}\n"));
    write_file("bulk/Patient.000.ndjson",
               q("{'resourceType':'Patient','id':'pa','gender':'male','birthDate':'1950'}\r\n"
                 "\n"
                 "{'resourceType':'Patient','id':'pb','gender':'other','birthDate':'1960-07'}\r\n"));
    write_file("bulk/Medication.000.ndjson",
               q("{'resourceType':'Medication','id':'med1','code':{'coding':[{'system':'http://www.nlm.nih.gov/research/umls/rxnorm','code':'314076','display':'lisinopril'}]}}\n"));
    write_file("bulk/sub/MedicationRequest.000.ndjson",
               q("{'resourceType':'MedicationRequest','id':'r1','status':'active','medicationReference':{'reference':'Medication/med1'},"
                 "'subject':{'reference':'Patient/pb'},'authoredOn':'2003-01-01T00:00:00+00:00'}"));
    write_file("bulk/log.ndjson", "{\"eventId\":\"kickoff\"}\n");
    write_file("bulk/README.txt", "not FHIR\n");
    ingest_report rep;
    store s;
    cf_err err = {0};
    REQUIRE_EQ_INT(ingest("bulk", "bulk.store", &rep, 0, &s, &err), 0);
    CHECK_EQ_INT(s.n_subjects, 2);
    int64_t a = sid_of("pa"), b = sid_of("pb");
    CHECK_EQ_INT(find_ev(&s, a, "MEDS_BIRTH", 0).time, ts("1950-01-01"));
    CHECK_EQ_INT(find_ev(&s, b, "MEDS_BIRTH", 0).time, ts("1960-07-01"));
    CHECK(find_ev(&s, a, "GENDER//M", 0).found);
    CHECK(find_ev(&s, b, "GENDER//O", 0).found);
    ev_view v = find_ev(&s, b, "MEDS_BIRTH", 0);
    CHECK_EQ_INT(v.row, 3); /* NDJSON line number, blank line counted */
    v = find_ev(&s, a, "SNOMED//44054006", 0);
    CHECK(v.found && v.time == ts("2001-02-03T04:05:06") && v.row == 1);
    CHECK_EQ_STR(v.source, "Condition");
    v = find_ev(&s, b, "SNOMED//38341003", 0);
    CHECK(v.found && v.row == 2);
    v = find_ev(&s, b, "RXNORM//314076", 0);
    CHECK(v.found && v.time == ts("2003-01-01"));
    CHECK_EQ_INT(ingest_report_total_rejected(&rep), 0);
    CHECK(src_stats(&rep, "Resource") == NULL); /* log.ndjson skipped, not rejected */
    CHECK_EQ_INT(src_stats(&rep, "Patient")->rows, 2);
    store_close(&s);
    ingest_report_free(&rep);
}

/* One resource per case, each with a distinctive value that must never reach a message. */
static void test_rejections(void) {
    mkdirs("rej");
    char deep[2300];
    size_t k = 0;
    for (int i = 0; i < 1100; i++) deep[k++] = '[';
    for (int i = 0; i < 1100; i++) deep[k++] = ']';
    deep[k] = 0;
    char *text = malloc(1 << 16);
    char *o = text;
    o += sprintf(o, "%s",
        q("{'resourceType':'Patient','id':'ok','gender':'female','birthDate':'1980-01-01'}\n"        /* 1 */
          "{'resourceType':'Patient','id':'ok','gender':'male'}\n"                                     /* 2 dup */
          "{'resourceType':'Patient','id':'bad id SECRET'}\n"                                          /* 3 */
          "{'resourceType':'Patient','id':'g','gender':'SECRETgender','name':[{'family':'SECRETfamily'}]}\n" /* 4 */
          "{'resourceType':'Observation','id':'o1','code':{'coding':[{'system':'http://loinc.org','code':'1'}]},'effectiveDateTime':'2020-01-01T00:00:00Z'}\n" /* 5 missing subject */
          "{'resourceType':'Observation','id':'o2','subject':{'reference':'Patient/nobody'},'code':{'coding':[{'system':'http://loinc.org','code':'1'}]},'effectiveDateTime':'2020-01-01T00:00:00Z'}\n" /* 6 unresolved */
          "{'resourceType':'Observation','id':'o3','subject':{'reference':'Group/g1'},'code':{'coding':[{'system':'http://loinc.org','code':'1'}]},'effectiveDateTime':'2020-01-01T00:00:00Z'}\n" /* 7 not a patient */
          "{'resourceType':'Observation','id':'o4','subject':{'reference':'Patient/ok'},'code':{'coding':[{'system':'http://example.org/SECRET','code':'SECRET1'}]},'effectiveDateTime':'2020-01-01T00:00:00Z'}\n" /* 8 unknown system */
          "{'resourceType':'Observation','id':'o5','subject':{'reference':'Patient/ok'},'code':{'text':'SECRET text only'},'effectiveDateTime':'2020-01-01T00:00:00Z'}\n" /* 9 missing code */
          "{'resourceType':'Observation','id':'o6','subject':{'reference':'Patient/ok'},'code':{'coding':[{'system':'http://loinc.org','code':'1'}]},'effectiveDateTime':'2020-01-01T10:11:12'}\n" /* 10 no zone */
          "{'resourceType':'Observation','id':'o7','subject':{'reference':'Patient/ok'},'code':{'coding':[{'system':'http://loinc.org','code':'1'}]},'effectiveDateTime':'SECRET-date'}\n" /* 11 unparsable */
          "{'resourceType':'Observation','id':'o8','subject':{'reference':'Patient/ok'},'code':{'coding':[{'system':'http://loinc.org','code':'1'}]}}\n" /* 12 missing time */
          "{'resourceType':'DocumentReference','id':'d1','subject':{'reference':'Patient/ok'},'date':'2020-01-01','content':[{'attachment':{'contentType':'text/plain','data':'SECRET!!'}}]}\n" /* 13 base64 */
          "{'resourceType':'MedicationRequest','id':'m1','subject':{'reference':'Patient/ok'},'authoredOn':'2020-01-01','medicationReference':{'reference':'Medication/none'}}\n" /* 14 med */
          "{'resourceType':'Frobnicator','id':'f1'}\n"                                                /* 15 unknown type */
          "{'id':'x1'}\n"                                                                              /* 16 missing type */
          "{'resourceType':'Observation','id':'o9','subject':{'reference':'Patient/ok'} SECRET\n"      /* 17 invalid JSON */
          "[1,2]\n"                                                                                    /* 18 not an object */
          "{'resourceType':'Observation','id':'o10','subject':{'reference':'Patient/ok'},'code':{'coding':[{'system':'http://loinc.org','code':'1'}]},'effectiveDateTime':'2020-01-01T00:00:00Z','component':[{'code':{'coding':[{'system':'http://loinc.org','code':'2'}]},'valueQuantity':{'value':1e300}}]}\n" /* 19 float range */
          "{'resourceType':'Observation','id':'o11','subject':{'reference':'Patient/ok'},'code':{'coding':[{'system':'http://loinc.org','code':'1'}]},'effectiveDateTime':'2020-01-01T00:00:00Z','valueQuantity':{'value':5}}\n")); /* 20 ok */
    o += sprintf(o, "%s\n", deep); /* 21 */
    write_file("rej/mixed.ndjson", text);
    ingest_report rep;
    store s;
    cf_err err = {0};
    /* a folder only takes NDJSON files named after a type: give this one directly */
    REQUIRE_EQ_INT(ingest("rej/mixed.ndjson", "rej.store", &rep, 0, &s, &err), 0);
    struct {
        const char *source, *reason, *where;
    } want[] = {
        {"Patient", "duplicate Patient id", "mixed.ndjson:2 (Patient/ok) at Patient.id"},
        {"Patient", "Patient without a valid id", "mixed.ndjson:3 (Patient) at Patient.id"},
        {"Patient", "unsupported gender code", "mixed.ndjson:4 (Patient/g) at Patient.gender"},
        {"Observation", "missing subject reference", "mixed.ndjson:5 (Observation/o1)"},
        {"Observation", "subject reference does not resolve to a Patient in the input", ":6 (Observation/o2)"},
        {"Observation", "subject reference is not a Patient", ":7 (Observation/o3)"},
        {"Observation", "unknown code system", ":8 (Observation/o4) at Observation.code.coding"},
        {"Observation", "missing code", ":9 (Observation/o5) at Observation.code"},
        {"Observation", "date/time without time zone", ":10 (Observation/o6) at Observation.effectiveDateTime"},
        {"Observation", "unparsable date/time", ":11 (Observation/o7) at Observation.effectiveDateTime"},
        {"Observation", "missing time", ":12 (Observation/o8)"},
        {"DocumentReference", "invalid base64 in attachment", ":13 (DocumentReference/d1)"},
        {"MedicationRequest", "medication reference does not resolve to a coded Medication", ":14 (MedicationRequest/m1)"},
        {"Resource", "unknown resourceType", ":15 (Resource/f1) at resourceType"},
        {"Resource", "missing resourceType", ":16 (Resource/x1) at resourceType"},
        {"Resource", "invalid JSON", "mixed.ndjson:17 (near byte"},
        {"Resource", "line is not a JSON object", "mixed.ndjson:18"},
        {"Observation", "numeric value outside float range", ":19 (Observation/o10) at Observation.component[0].valueQuantity.value"},
        {"Resource", "JSON nested too deeply", "mixed.ndjson:21"},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const ingest_rejection *r = rej(&rep, want[i].source, want[i].reason);
        if (!r) {
            CHECK_FAIL_("missing rejection %s: %s", want[i].source, want[i].reason);
            continue;
        }
        CHECK_EQ_INT(r->count, 1);
        CHECK(r->n_examples == 1);
        if (r->n_examples) CHECK_CONTAINS(r->examples[0], want[i].where);
    }
    CHECK_EQ_INT(ingest_report_total_rejected(&rep), sizeof want / sizeof want[0]);
    char *json = ingest_report_json(&rep);
    REQUIRE(json);
    CHECK(!strstr(json, "SECRET"));
    free(json);
    /* the good resources made it: one Patient (first 'ok') and one Observation */
    CHECK_EQ_INT(s.n_subjects, 1);
    CHECK(find_ev(&s, sid_of("ok"), "GENDER//F", 0).found);
    CHECK(!find_ev(&s, sid_of("ok"), "GENDER//M", 0).found);
    CHECK_NEAR(find_ev(&s, sid_of("ok"), "LOINC//1", 0).num, 5, 0);
    CHECK_EQ_INT(code_count(&s, "LOINC//1"), 1);
    CHECK_EQ_INT(code_count(&s, "LOINC//2"), 0); /* o10 rejected whole, no partial events */
    const ingest_source_stats *st = src_stats(&rep, "Observation");
    REQUIRE(st);
    CHECK_EQ_INT(st->rows, 10);
    CHECK_EQ_INT(st->rows_rejected, 9);
    CHECK_EQ_INT(st->rows_with_events, 1);
    store_close(&s);
    ingest_report_free(&rep);

    /* an NDJSON file holds one type, the one its name says */
    mkdirs("rej2");
    write_file("rej2/Patient.000.ndjson", q("{'resourceType':'Patient','id':'ok'}\n"));
    write_file("rej2/Observation.000.ndjson",
               q("{'resourceType':'Condition','id':'wrong','subject':{'reference':'Patient/ok'}}\n"));
    REQUIRE_EQ_INT(ingest("rej2", "rej2.store", &rep, 0, NULL, &err), 0);
    const ingest_rejection *wr =
        rej(&rep, "Observation", "resourceType does not match the NDJSON file name");
    CHECK(wr && wr->n_examples == 1 &&
          strstr(wr->examples[0], "Observation.000.ndjson:1 (Condition/wrong) at resourceType"));
    CHECK_EQ_INT(ingest_report_total_rejected(&rep), 1);
    ingest_report_free(&rep);

    /* strict: the first rejection is fatal and names where, not what */
    REQUIRE_EQ_INT(ingest("rej/mixed.ndjson", "rej-strict.store", &rep, 1, NULL, &err), CF_EINPUT);
    CHECK_CONTAINS(err.msg, "mixed.ndjson:2 (Patient/ok) at Patient.id");
    CHECK_CONTAINS(err.msg, "duplicate Patient id");
    CHECK(!strstr(err.msg, "SECRET"));
    ingest_report_free(&rep);
    char p[4096];
    path_of(p, sizeof p, "rej-strict.store");
    CHECK(access(p, F_OK) != 0); /* aborted store leaves nothing */
    free(text);
}

static void test_bundle_file_rejections(void) {
    mkdirs("badb");
    write_file("badb/a-invalid.json", "{\"resourceType\":\"Bundle\",\"entry\":[SECRET");
    write_file("badb/b-scalar.json", "42");
    write_file("badb/c-entry.json", "{\"resourceType\":\"Bundle\",\"entry\":{\"a\":1}}");
    /* a valid gzip header followed by garbage */
    static const unsigned char corrupt[] = {0x1f, 0x8b, 0x08, 0, 0, 0, 0, 0, 0, 0x03, 0xff, 0xff,
                                            0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 100, 0, 0, 0};
    write_bin("badb/d-corrupt.json.gz", corrupt, sizeof corrupt);
    /* a single resource file and a bundle referencing a Patient from another bundle file */
    write_gz("badb/e-patient.json.gz", q("{'resourceType':'Patient','id':'solo','gender':'unknown'}"));
    write_file("badb/f-obs.json",
               q("{'resourceType':'Bundle','type':'searchset','entry':[{'fullUrl':'https://x/Observation/1','resource':"
                 "{'resourceType':'Observation','id':'1','subject':{'reference':'Patient/solo'},"
                 "'code':{'coding':[{'system':'http://loinc.org','code':'1'}]},'effectiveInstant':'2020-01-01T00:00:00Z'}},"
                 "{'resource':'not an object'}]}"));
    /* 4 MB of "[1,1,...]": a parse tree over 8x its size */
    size_t n = 4u << 20;
    char *big = malloc(n + 1);
    big[0] = '[';
    for (size_t i = 1; i + 1 < n; i += 2) big[i] = '1', big[i + 1] = ',';
    big[n - 2] = '1';
    big[n - 1] = ']';
    big[n] = 0;
    write_file("badb/g-huge.json", big);
    free(big);
    ingest_report rep;
    store s;
    cf_err err = {0};
    REQUIRE_EQ_INT(ingest("badb", "badb.store", &rep, 0, &s, &err), 0);
    const char *reasons[][2] = {
        {"invalid JSON", "a-invalid.json (near byte"},
        {"top-level JSON value is not an object", "b-scalar.json"},
        {"Bundle.entry is not an array", "c-entry.json"},
        {"corrupt gzip stream", "d-corrupt.json.gz"},
        {"JSON parse tree over its memory cap", "g-huge.json"},
    };
    for (size_t i = 0; i < 5; i++) {
        const ingest_rejection *r = rej(&rep, "Bundle", reasons[i][0]);
        if (!r) {
            CHECK_FAIL_("missing Bundle rejection %s", reasons[i][0]);
            continue;
        }
        CHECK_CONTAINS(r->examples[0], reasons[i][1]);
    }
    const ingest_rejection *r = rej(&rep, "Resource", "entry.resource is not an object");
    CHECK(r && strstr(r->examples[0], "f-obs.json: entry 2"));
    CHECK_EQ_INT(ingest_report_total_rejected(&rep), 6);
    CHECK_EQ_INT(s.n_subjects, 1);
    CHECK(find_ev(&s, sid_of("solo"), "GENDER//UNK", 0).found);
    CHECK_EQ_INT(find_ev(&s, sid_of("solo"), "LOINC//1", 0).time, ts("2020-01-01"));
    store_close(&s);
    ingest_report_free(&rep);
}

static int files_equal(const char *rel_a, const char *rel_b) {
    char a[4096], b[4096];
    path_of(a, sizeof a, rel_a);
    path_of(b, sizeof b, rel_b);
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    int same = fa && fb, ca, cb;
    while (same) {
        ca = fgetc(fa);
        cb = fgetc(fb);
        if (ca != cb) same = 0;
        if (ca == EOF) break;
    }
    if (fa) fclose(fa);
    if (fb) fclose(fb);
    return same;
}

/* The streaming walk (unmapped entries validated, never parsed into trees) must give exactly what
 * the whole-document path gives; a syntax error anywhere takes the whole bundle back. */
static void test_bundle_streaming(void) {
    const char *entries =
        "[{'fullUrl':'urn:uuid:s1','resource':{'resourceType':'Patient','id':'s1','gender':'male'}},"
        " {'resource':{'resourceType':'Claim','id':'cl','item':[{'sequence':1,'net':{'value':-1.5e2}}],"
        "   'text':'esc \\' \\\\ \\u00e9 \\n','patient':{'reference':'urn:uuid:s1'}}},"
        " {'resource':{'id':'o1','resourceType':'Observation','subject':{'reference':'urn:uuid:s1'},"
        "   'code':{'coding':[{'system':'http://loinc.org','code':'1'}]},'effectiveDateTime':'2020-01-01T00:00:00Z',"
        "   'valueQuantity':{'value':3}}},"
        " 17, {'request':{'method':'DELETE'}}]";
    char buf[8192];
    mkdirs("stream/a");
    mkdirs("stream/b");
    mkdirs("stream/c");
    snprintf(buf, sizeof buf, "{'resourceType':'Bundle','type':'collection','entry':%s}", entries);
    write_file("stream/a/bundle.json", q(buf));
    /* entry before resourceType: the whole-document path */
    snprintf(buf, sizeof buf, "{'entry':%s,'type':'collection','resourceType':'Bundle'}", entries);
    write_file("stream/b/bundle.json", q(buf));
    ingest_report rep;
    cf_err err = {0};
    REQUIRE_EQ_INT(ingest("stream/a", "stream-a.store", &rep, 0, NULL, &err), 0);
    CHECK_EQ_INT(ingest_report_total_rejected(&rep), 0);
    CHECK_EQ_INT(src_stats(&rep, "Claim")->rows_filtered, 1);
    CHECK_EQ_INT(src_stats(&rep, "Observation")->events, 1);
    ingest_report_free(&rep);
    REQUIRE_EQ_INT(ingest("stream/b", "stream-b.store", &rep, 0, NULL, &err), 0);
    CHECK_EQ_INT(ingest_report_total_rejected(&rep), 0);
    CHECK_EQ_INT(src_stats(&rep, "Claim")->rows_filtered, 1);
    ingest_report_free(&rep);
    CHECK(files_equal("stream-a.store", "stream-b.store"));

    /* broken JSON inside the skipped Claim, after the Patient was mapped */
    snprintf(buf, sizeof buf,
             "{'resourceType':'Bundle','entry':[{'resource':{'resourceType':'Patient','id':'s2'}},"
             "{'resource':{'resourceType':'Claim','item':[1,2,,3]}},"
             "{'resource':{'resourceType':'Claim','x':'\\q'}}]}");
    write_file("stream/c/bundle.json", q(buf));
    store s;
    REQUIRE_EQ_INT(ingest("stream/c", "stream-c.store", &rep, 0, &s, &err), 0);
    CHECK_EQ_INT(s.n_subjects, 0);
    CHECK(src_stats(&rep, "Patient") == NULL);
    const ingest_rejection *r = rej(&rep, "Bundle", "invalid JSON");
    CHECK(r && r->count == 1);
    CHECK_EQ_INT(ingest_report_total_rejected(&rep), 1);
    store_close(&s);
    ingest_report_free(&rep);

    /* the validating skip itself */
    const char *good[] = {"{}", "[]", " [1, -0.5e+3, true, false, null, \"a\\u00ffb\"] ",
                          "{\"a\":{\"b\":[{}]}}", "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"",
                          "[\"0123456789abcdefghij\\\"0123456789abcdefghij\\u0041\"]"};
    const char *bad[] = {"", "[1,]", "{\"a\"}", "{\"a\":1,}", "[01]", "[1.]", "[.5]", "tru",
                         "\"\\x\"", "\"\\u12g4\"", "\"open", "[1 2]", "{1:2}", "[-]",
                         "[\"0123456789abcdefghijklmnop\\x\"]", "\"0123456789abcdefghijklmnopqrstuvwxyz"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        size_t pos = 0;
        const char *why;
        CHECK_EQ_INT(fhir_json_skip(good[i], strlen(good[i]), &pos, &why), 0);
        size_t n = strlen(good[i]);
        while (n && good[i][n - 1] == ' ') n--;
        CHECK_EQ_INT(pos, n);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        size_t pos = 0;
        const char *why;
        if (fhir_json_skip(bad[i], strlen(bad[i]), &pos, &why) == 0 && pos == strlen(bad[i]))
            CHECK_FAIL_("accepted invalid JSON #%zu", i);
    }
    char deep[2100];
    memset(deep, '[', 1001);
    memset(deep + 1001, ']', 1001);
    size_t pos = 0;
    const char *why = NULL;
    CHECK_EQ_INT(fhir_json_skip(deep, 2002, &pos, &why), -1);
    CHECK_EQ_STR(why, "JSON nested too deeply");
    pos = 0;
    CHECK_EQ_INT(fhir_json_skip(deep + 1, 2000, &pos, &why), 0); /* 1000 levels are fine */
}

/* In a bundle, entry order does not matter; in NDJSON a line sees the lines before it only. */
static void test_reference_order(void) {
    mkdirs("order");
    write_file("order/bundle.json",
               q("{'resourceType':'Bundle','type':'searchset','entry':["
                 "{'resource':{'resourceType':'MedicationRequest','id':'r','subject':{'reference':'urn:uuid:u-9'},"
                 "'medicationReference':{'reference':'Medication/late'},'authoredOn':'2021-01-01T00:00:00Z'}},"
                 "{'fullUrl':'urn:uuid:m-late','resource':{'resourceType':'Medication','id':'late',"
                 "'code':{'coding':[{'system':'http://www.nlm.nih.gov/research/umls/rxnorm','code':'42'}]}}},"
                 "{'fullUrl':'urn:uuid:u-9','resource':{'resourceType':'Patient','gender':'female'}}]}"));
    write_file("order/lines.ndjson",
               q("{'resourceType':'Observation','id':'early','subject':{'reference':'Patient/n1'},"
                 "'code':{'coding':[{'system':'http://loinc.org','code':'1'}]},'effectiveDateTime':'2020-01-01'}\n"
                 "{'resourceType':'Patient','id':'n1','gender':'male'}\n"
                 "{'resourceType':'Observation','id':'later','subject':{'reference':'Patient/n1'},"
                 "'code':{'coding':[{'system':'http://loinc.org','code':'1'}]},'effectiveDateTime':'2020-01-02'}\n"));
    ingest_report rep;
    store s;
    cf_err err = {0};
    /* the Patient has no id: its key is the uuid of its fullUrl */
    REQUIRE_EQ_INT(ingest("order/bundle.json", "order-b.store", &rep, 0, &s, &err), 0);
    CHECK_EQ_INT(ingest_report_total_rejected(&rep), 0);
    CHECK_EQ_INT(find_ev(&s, sid_of("u-9"), "RXNORM//42", 0).time, ts("2021-01-01"));
    size_t kl = 0;
    const char *key = s.n_subjects == 1 ? store_subject_key(&s, 0, &kl) : NULL;
    CHECK(key && kl == 3 && !memcmp(key, "u-9", 3));
    store_close(&s);
    ingest_report_free(&rep);
    REQUIRE_EQ_INT(ingest("order/lines.ndjson", "order-l.store", &rep, 0, &s, &err), 0);
    const ingest_rejection *r =
        rej(&rep, "Observation", "subject reference does not resolve to a Patient in the input");
    CHECK(r && r->count == 1 && strstr(r->examples[0], "lines.ndjson:1 (Observation/early)"));
    CHECK_EQ_INT(code_count(&s, "LOINC//1"), 1);
    CHECK_EQ_INT(find_ev(&s, sid_of("n1"), "LOINC//1", 0).time, ts("2020-01-02"));
    store_close(&s);
    ingest_report_free(&rep);
}

static void test_long_line(void) {
    mkdirs("long");
    size_t n = (size_t)FHIR_MAX_LINE + 100;
    char *buf = malloc(n + 512);
    char *o = buf;
    o += sprintf(o, "%s", q("{'resourceType':'Patient','id':'l1','gender':'male'}\n"));
    o += sprintf(o, "{\"resourceType\":\"Patient\",\"id\":\"l2\",\"x\":\"");
    memset(o, 'a', n);
    o += n;
    o += sprintf(o, "\"}\n%s", q("{'resourceType':'Patient','id':'l3','gender':'female'}\n"));
    char p[4096];
    path_of(p, sizeof p, "long/Patient.ndjson");
    FILE *f = fopen(p, "wb");
    fwrite(buf, 1, (size_t)(o - buf), f);
    fclose(f);
    free(buf);
    ingest_report rep;
    store s;
    cf_err err = {0};
    REQUIRE_EQ_INT(ingest("long", "long.store", &rep, 0, &s, &err), 0);
    const ingest_rejection *r = rej(&rep, "Patient", "line longer than the size cap");
    REQUIRE(r);
    CHECK_CONTAINS(r->examples[0], "Patient.ndjson:2");
    CHECK_EQ_INT(s.n_subjects, 2);
    CHECK_EQ_INT(find_ev(&s, sid_of("l3"), "GENDER//F", 0).row, 3); /* numbering continues */
    store_close(&s);
    ingest_report_free(&rep);
}

static void test_buffer_api(void) {
    /* the fuzzing entry point: one bundle / NDJSON lines, w may be NULL (dry run) */
    ingest_report rep;
    ingest_report_init(&rep, 0);
    cf_err err = {0};
    fhir_options opt = {.strict = 0};
    const char *lines = q("{'resourceType':'Patient','id':'z','gender':'male'}\n"
                          "{'resourceType':'Encounter','id':'e','subject':{'reference':'Patient/z'},"
                          "'period':{'start':'2020-01-02T00:00:00Z','end':'2020-01-01T00:00:00Z'}}\n");
    CHECK_EQ_INT(fhir_ingest_buffer("buf.ndjson", lines, strlen(lines), FHIR_BUFFER_NDJSON, NULL,
                                    &rep, &opt, &err), 0);
    CHECK(rej(&rep, "Encounter", "end before start") != NULL);
    CHECK_EQ_INT(src_stats(&rep, "Patient")->rows_with_events, 1);
    ingest_report_free(&rep);
    ingest_report_init(&rep, 0);
    CHECK_EQ_INT(fhir_ingest_buffer("x.json", "", 0, FHIR_BUFFER_BUNDLE, NULL, &rep, &opt, &err), 0);
    CHECK(rej(&rep, "Bundle", "invalid JSON") != NULL);
    ingest_report_free(&rep);
}

static void test_threads_identical(void) {
    /* results are committed in input order: any thread count gives the same bytes */
    char in[4096], a[4096], b[4096];
    const char *bulk = check_data("synthea-bulk-ndjson");
    if (!bulk) return;
    snprintf(in, sizeof in, "%s", bulk);
    const char *counts[] = {"1", "3"};
    for (int i = 0; i < 2; i++) {
        setenv("CLINFM_THREADS", counts[i], 1);
        ingest_report rep;
        cf_err err = {0};
        REQUIRE_EQ_INT(ingest(in, i ? "t3.store" : "t1.store", &rep, 0, NULL, &err), 0);
        ingest_report_free(&rep);
    }
    unsetenv("CLINFM_THREADS");
    path_of(a, sizeof a, "t1.store");
    path_of(b, sizeof b, "t3.store");
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    REQUIRE(fa && fb);
    int same = 1, ca, cb;
    do {
        ca = fgetc(fa);
        cb = fgetc(fb);
        if (ca != cb) same = 0;
    } while (same && ca != EOF);
    fclose(fa);
    fclose(fb);
    CHECK(same);
}

/* ------------------------------------------------------------------ identifiers */

/* The PHI// events of one subject as sorted "CODE=value|source" lines; all must be static. */
static char *phi_lines(const store *s, int64_t sid) {
    int64_t si = store_find_subject(s, sid);
    if (si < 0) return NULL;
    size_t n = 0, cap = 64;
    char **items = malloc(cap * sizeof *items);
    for (uint64_t e = s->subject_start[si]; e < s->subject_start[si + 1]; e++) {
        const char *code = store_code_str(s, s->code[e]);
        if (strncmp(code, "PHI//", 5)) continue;
        size_t tl = 0;
        const char *t = s->text[e] ? store_text_str(s, s->text[e], &tl) : "";
        const char *src = store_source_name(s, store_prov_source(s->prov[e]));
        char *line = malloc(strlen(code) + tl + strlen(src) + 8);
        sprintf(line, "%s=%.*s|%s%s", code, (int)tl, t, src, s->time[e] == TIME_NULL ? "" : " (timed!)");
        if (n == cap) items = realloc(items, (cap *= 2) * sizeof *items);
        items[n++] = line;
    }
    for (size_t i = 1; i < n; i++) /* insertion sort: a few dozen lines */
        for (size_t j = i; j > 0 && strcmp(items[j - 1], items[j]) > 0; j--) {
            char *x = items[j];
            items[j] = items[j - 1];
            items[j - 1] = x;
        }
    size_t len = 1;
    for (size_t i = 0; i < n; i++) len += strlen(items[i]) + 1;
    char *out = malloc(len), *o = out;
    *o = 0;
    for (size_t i = 0; i < n; i++) {
        o += sprintf(o, "%s\n", items[i]);
        free(items[i]);
    }
    free(items);
    return out;
}

static void test_patient_identifiers(void) {
    mkdirs("phi");
    write_file("phi/Patient.000.ndjson",
        q("{'resourceType':'Patient','id':'zq','gender':'female','birthDate':'1950-02-03',"
          "'name':[{'use':'official','prefix':['Dr.'],'given':['Zelda','Q'],'family':'Quixwort','suffix':['Jr.']},"
          "{'use':'maiden','prefix':['Lady'],'given':['Zelda'],'family':'Oldfield','text':'Zelda Oldfield'},"
          "{'given':['  '],'family':' '}],"
          "'telecom':[{'system':'phone','value':'(617) 555-0143','use':'home'},{'system':'fax','value':'617-555-0199'},"
          "{'system':'email','value':'zq@example.org'},{'system':'url','value':'https://zq.example.org'},"
          "{'system':'other','value':'@zquix'},{'system':'phone'}],"
          "'address':[{'line':['12 Elm Street','Apt 3'],'city':'Springfield','district':'Hampden',"
          "'state':'MA','postalCode':'01105','country':'US'}],"
          "'identifier':[{'type':{'coding':[{'system':'http://terminology.hl7.org/CodeSystem/v2-0203','code':'SS'}]},"
          "'system':'http://hl7.org/fhir/sid/us-ssn','value':'999-12-3456'},"
          "{'type':{'coding':[{'system':'http://terminology.hl7.org/CodeSystem/v2-0203','code':'MR'}]},'value':'MRN-777'},"
          "{'type':{'coding':[{'system':'http://terminology.hl7.org/CodeSystem/v2-0203','code':'DL'}]},'value':'S99940903'},"
          "{'system':'http://example.org/plan','value':'PLAN 4455'}],"
          "'extension':[{'url':'http://hl7.org/fhir/StructureDefinition/patient-mothersMaidenName','valueString':'Ruth Vantongeren'},"
          "{'url':'http://hl7.org/fhir/StructureDefinition/patient-birthPlace','valueAddress':{'city':'Olathe','state':'Kansas','postalCode':'66061'}}],"
          "'contact':[{'name':{'given':['Bob'],'family':'Quixwort'},'telecom':[{'system':'phone','value':'617-555-0101'}],"
          "'address':{'line':['9 Oak Road'],'city':'Boston','state':'MA','postalCode':'02134'},"
          "'organization':{'display':'Quixwort Family Trust'}}],"
          "'generalPractitioner':[{'reference':'Practitioner/1','display':'Dr. Hal Jordan'}],"
          "'managingOrganization':{'reference':'Organization/9','display':'Springfield General'}}\n"
          "{'resourceType':'Patient','id':'other','name':[{'given':['Ann'],'family':'Other'}]}\n"));
    write_file("phi/Encounter.000.ndjson",
        q("{'resourceType':'Encounter','id':'e1','status':'finished','class':{'code':'AMB'},"
          "'subject':{'reference':'Patient/zq','display':'Mrs. Zelda Quixwort'},"
          "'participant':[{'individual':{'reference':'Practitioner/2','display':'Dr. Carol Ferris'}}],"
          "'location':[{'location':{'reference':'Location/3','display':'Springfield General Ward 4'}}],"
          "'serviceProvider':{'reference':'Organization?identifier=x|9','display':'Springfield General'},"
          "'period':{'start':'2020-01-01T10:00:00Z','end':'2020-01-01T11:00:00Z'}}\n"
          /* the same people again: nothing new for zq, all new for the other patient */
          "{'resourceType':'Encounter','id':'e2','status':'finished','class':{'code':'AMB'},"
          "'subject':{'reference':'Patient/zq','display':'Mrs. Zelda Quixwort'},"
          "'participant':[{'individual':{'reference':'Practitioner/2','display':'Dr. Carol Ferris'}}],"
          "'period':{'start':'2020-02-01T10:00:00Z'}}\n"
          "{'resourceType':'Encounter','id':'e3','status':'finished','class':{'code':'AMB'},"
          "'subject':{'reference':'Patient/other'},"
          "'participant':[{'individual':{'reference':'Practitioner/2','display':'Dr. Carol Ferris'}}],"
          "'period':{'start':'2020-03-01T10:00:00Z'}}\n"
          /* a cancelled encounter is filtered: its people are not recorded */
          "{'resourceType':'Encounter','id':'e4','status':'cancelled','class':{'code':'AMB'},"
          "'subject':{'reference':'Patient/zq'},"
          "'participant':[{'individual':{'display':'Dr. Never Seen'}}],'period':{'start':'2020-04-01T10:00:00Z'}}\n"));
    char *note = b64("Zelda seen today.");
    char doc[2048];
    snprintf(doc, sizeof doc,
             "%s%s%s",
             q("{'resourceType':'DocumentReference','id':'d1','status':'current','subject':{'reference':'Patient/zq'},"
               "'date':'2020-01-01T12:00:00Z','author':[{'reference':'Practitioner/2','display':'Dr. Carol Ferris'},"
               "{'reference':'Organization/9','display':'Springfield General Lab'}],"
               "'authenticator':{'display':'Kyle Rayner'},'custodian':{'display':'Springfield Records'},"
               "'content':[{'attachment':{'contentType':'text/plain','data':'"),
             note, "\"}}]}\n");
    free(note);
    write_file("phi/DocumentReference.000.ndjson", doc);
    write_file("phi/DiagnosticReport.000.ndjson",
        q("{'resourceType':'DiagnosticReport','id':'r1','status':'final','subject':{'reference':'Patient/zq'},"
          "'code':{'coding':[{'system':'http://loinc.org','code':'57698-3'}]},'effectiveDateTime':'2020-01-02T00:00:00Z',"
          "'performer':[{'reference':'Organization/7','display':'Quest Lab East'}],"
          "'resultsInterpreter':[{'display':'Dr. Guy Gardner'}]}\n"));
    ingest_report rep;
    store s;
    cf_err err = {0};
    REQUIRE_EQ_INT(ingest("phi", "phi.store", &rep, 0, &s, &err), 0);
    CHECK_EQ_INT(ingest_report_total_rejected(&rep), 0);
    char *got = phi_lines(&s, sid_of("zq"));
    const char *want =
        "PHI//ADDRESS=02134|Patient\n"          /* the relative's postal code: removed, not a ZIP3 */
        "PHI//ADDRESS=12 Elm Street|Patient\n"
        "PHI//ADDRESS=66061|Patient\n"          /* the birthplace's, likewise */
        "PHI//ADDRESS=9 Oak Road|Patient\n"
        "PHI//ADDRESS=Apt 3|Patient\n"
        "PHI//CITY=Boston|Patient\n"
        "PHI//CITY=Hampden|Patient\n"
        "PHI//CITY=Olathe|Patient\n"
        "PHI//CITY=Springfield|Patient\n"
        "PHI//EMAIL=zq@example.org|Patient\n"
        "PHI//FAX=617-555-0199|Patient\n"
        "PHI//ID=@zquix|Patient\n"
        "PHI//ID=PLAN 4455|Patient\n"
        "PHI//ID=S99940903|Patient\n"
        "PHI//MRN=MRN-777|Patient\n"
        "PHI//NAME=Bob Quixwort|Patient\n"
        "PHI//NAME=Dr. Carol Ferris|DocumentReference\n" /* documents are committed before encounters */
        "PHI//NAME=Dr. Guy Gardner|DiagnosticReport\n"
        "PHI//NAME=Dr. Hal Jordan|Patient\n"
        "PHI//NAME=Kyle Rayner|DocumentReference\n"
        "PHI//NAME=Lady Zelda Oldfield|Patient\n"
        "PHI//NAME=Mrs. Zelda Quixwort|Encounter\n"
        "PHI//NAME=Oldfield|Patient\n"
        "PHI//NAME=Quixwort|Patient\n"
        "PHI//NAME=Ruth Vantongeren|Patient\n"
        "PHI//NAME=Zelda Oldfield|Patient\n"
        "PHI//NAME=Zelda Q Quixwort|Patient\n"
        "PHI//ORGANIZATION=Quest Lab East|DiagnosticReport\n"
        "PHI//ORGANIZATION=Quixwort Family Trust|Patient\n"
        "PHI//ORGANIZATION=Springfield General Lab|DocumentReference\n"
        "PHI//ORGANIZATION=Springfield General Ward 4|Encounter\n"
        "PHI//ORGANIZATION=Springfield General|Patient\n" /* '|' sorts after ' ' */
        "PHI//ORGANIZATION=Springfield Records|DocumentReference\n"
        "PHI//PHONE=(617) 555-0143|Patient\n"
        "PHI//PHONE=617-555-0101|Patient\n"
        "PHI//SSN=999-12-3456|Patient\n"
        "PHI//STATE=MA|Patient\n"
        "PHI//URL=https://zq.example.org|Patient\n"
        "PHI//ZIP=01105|Patient\n";
    CHECK_EQ_STR(got, want);
    free(got);
    /* per subject: the other patient gets the shared practitioner too */
    got = phi_lines(&s, sid_of("other"));
    CHECK_EQ_STR(got, "PHI//NAME=Ann Other|Patient\n"
                      "PHI//NAME=Dr. Carol Ferris|Encounter\n"
                      "PHI//NAME=Other|Patient\n");
    free(got);
    /* the report counts what was written: 2 + 1 + 1 encounter events, and the identifiers not
     * seen before for that subject: 2 for zq (its name as the subject's display, the ward), 1 for
     * the other patient; the cancelled encounter is filtered */
    const ingest_source_stats *st = src_stats(&rep, "Encounter");
    REQUIRE(st);
    CHECK_EQ_INT(st->events, 4 + 2 + 1);
    CHECK_EQ_INT(st->rows_filtered, 1);
    uint64_t in_store = 0;
    for (uint64_t e = 0; e < s.n_events; e++)
        if (!strcmp(store_source_name(&s, store_prov_source(s.prov[e])), "Encounter")) in_store++;
    CHECK_EQ_INT(in_store, st->events);
    /* titles alone are not names */
    CHECK(store_find_code(&s, "PHI//NAME") >= 0);
    for (uint64_t e = 0; e < s.n_events; e++) {
        size_t tl = 0;
        const char *t = s.text[e] ? store_text_str(&s, s.text[e], &tl) : NULL;
        CHECK(!(t && ((tl == 3 && !memcmp(t, "Dr.", 3)) || (tl == 3 && !memcmp(t, "Jr.", 3)))));
    }
    store_close(&s);
    ingest_report_free(&rep);
}

/* ------------------------------------------------------------------ Synthea vs Python */

static const char *PY_COUNT =
    "import gzip, json, os, re, sys\n"
    "KNOWN = {'http://snomed.info/sct', 'http://loinc.org', 'http://www.nlm.nih.gov/research/umls/rxnorm',\n"
    "         'http://hl7.org/fhir/sid/cvx', 'http://hl7.org/fhir/sid/icd-10-cm'}\n"
    "rows, events, pats, phi_kinds = {}, {}, set(), {}\n"
    "seen = set()  # (patient, kind, value): identifiers are written once per patient\n"
    "def known(cc):\n"
    "    return any(c.get('system') in KNOWN and c.get('code') for c in (cc or {}).get('coding', []))\n"
    "# ---- identifiers, as docs/FHIR.md describes them\n"
    "TITLES = {'mr', 'mrs', 'ms', 'miss', 'mx', 'dr', 'prof', 'rev', 'fr', 'sir', 'dame', 'hon', 'jr', 'sr',\n"
    "          'ii', 'iii', 'iv', 'md', 'phd', 'do', 'rn', 'np', 'pa', 'dds', 'dmd', 'esq', 'mstr', 'master'}\n"
    "def clean(v):\n"
    "    if not isinstance(v, str): return ''\n"
    "    b = v.strip(' \\t\\n\\r\\f\\v').encode()\n"
    "    if len(b) > 1024:\n"
    "        b = b[:1025]\n"
    "        n = 1024\n"
    "        while n > 0 and (b[n] & 0xC0) == 0x80: n -= 1\n"
    "        b = b[:n]\n"
    "    return b.decode()\n"
    "def only_titles(s):\n"
    "    words = re.findall(r'(?:[A-Za-z0-9]|[^\\x00-\\x7f])+', s)\n"
    "    return all(w.lower() in TITLES for w in words)\n"
    "def strings(v):\n"
    "    return [v] if isinstance(v, str) else [x for x in v if isinstance(x, str)] if isinstance(v, list) else []\n"
    "def parts(v, skip_titles):\n"
    "    out = [clean(x) for x in strings(v)]\n"
    "    return [x for x in out if x and not (skip_titles and only_titles(x))]\n"
    "def name(out, hn):\n"
    "    if not isinstance(hn, dict): return\n"
    "    full = parts(hn.get('prefix'), 1) + parts(hn.get('given'), 0) + parts(hn.get('family'), 0) + parts(hn.get('suffix'), 1)\n"
    "    out += [('NAME', ' '.join(full)), ('NAME', ' '.join(parts(hn.get('family'), 0))), ('NAME', hn.get('text'))]\n"
    "TEL = {'phone': 'PHONE', 'pager': 'PHONE', 'sms': 'PHONE', 'fax': 'FAX', 'email': 'EMAIL', 'url': 'URL'}\n"
    "def telecom(out, lst):\n"
    "    for x in lst if isinstance(lst, list) else []:\n"
    "        out.append((TEL.get(x.get('system'), 'ID'), x.get('value')))\n"
    "def address(out, a, own):\n"
    "    if not isinstance(a, dict): return\n"
    "    out += [('ADDRESS', l) for l in a.get('line', []) if isinstance(l, str)]\n"
    "    out += [('ADDRESS', a.get('text')), ('CITY', a.get('city')), ('CITY', a.get('district')),\n"
    "            ('ZIP' if own else 'ADDRESS', a.get('postalCode'))]\n"
    "    if own: out.append(('STATE', a.get('state')))\n"
    "def identifiers(out, lst):\n"
    "    for x in lst if isinstance(lst, list) else []:\n"
    "        codes = [c.get('code') for c in x.get('type', {}).get('coding', [])]\n"
    "        if x.get('system') == 'http://hl7.org/fhir/sid/us-ssn' or 'SS' in codes or 'SB' in codes: k = 'SSN'\n"
    "        elif 'MR' in codes: k = 'MRN'\n"
    "        else: k = 'ID'\n"
    "        out.append((k, x.get('value')))\n"
    "def ref_kind(ref, dflt):\n"
    "    r, t, kind = ref.get('reference') or '', ref.get('type'), dflt\n"
    "    def names(ty):\n"
    "        return re.match(re.escape(ty) + r'([/?]|$)', r) is not None or ('/' + ty + '/') in r or t == ty\n"
    "    if any(names(x) for x in ('Organization', 'Location', 'HealthcareService')): kind = 'ORGANIZATION'\n"
    "    if any(names(x) for x in ('Practitioner', 'PractitionerRole', 'Patient', 'RelatedPerson', 'Person')): kind = 'NAME'\n"
    "    return kind\n"
    "def ref(out, x, dflt):\n"
    "    if isinstance(x, dict) and isinstance(x.get('display'), str): out.append((ref_kind(x, dflt), x['display']))\n"
    "def refs(out, lst, field, dflt):\n"
    "    for x in lst if isinstance(lst, list) else []:\n"
    "        ref(out, x.get(field) if field else x, dflt)\n"
    "def phi(t, r):\n"
    "    out = []\n"
    "    if t == 'Patient':\n"
    "        for n in r.get('name', []): name(out, n)\n"
    "        telecom(out, r.get('telecom'))\n"
    "        for a in r.get('address', []): address(out, a, 1)\n"
    "        identifiers(out, r.get('identifier'))\n"
    "        for x in r.get('extension', []):\n"
    "            if x.get('url') == 'http://hl7.org/fhir/StructureDefinition/patient-mothersMaidenName':\n"
    "                out.append(('NAME', x.get('valueString')))\n"
    "            elif x.get('url') == 'http://hl7.org/fhir/StructureDefinition/patient-birthPlace':\n"
    "                address(out, x.get('valueAddress'), 0)\n"
    "        for ct in r.get('contact', []):\n"
    "            name(out, ct.get('name')); telecom(out, ct.get('telecom')); address(out, ct.get('address'), 0)\n"
    "            ref(out, ct.get('organization'), 'ORGANIZATION')\n"
    "        refs(out, r.get('generalPractitioner'), None, 'NAME')\n"
    "        ref(out, r.get('managingOrganization'), 'ORGANIZATION')\n"
    "    elif t == 'Encounter':\n"
    "        refs(out, r.get('participant'), 'individual', 'NAME')\n"
    "        refs(out, r.get('location'), 'location', 'ORGANIZATION')\n"
    "        ref(out, r.get('serviceProvider'), 'ORGANIZATION')\n"
    "    elif t == 'DocumentReference':\n"
    "        refs(out, r.get('author'), None, 'NAME')\n"
    "        ref(out, r.get('authenticator'), 'NAME')\n"
    "        ref(out, r.get('custodian'), 'ORGANIZATION')\n"
    "    elif t == 'DiagnosticReport':\n"
    "        refs(out, r.get('performer'), None, 'NAME')\n"
    "        refs(out, r.get('resultsInterpreter'), None, 'NAME')\n"
    "    if t != 'Patient':\n"
    "        ref(out, r['subject'] if 'subject' in r else r.get('patient'), 'NAME')\n"
    "    res, mine = [], set()\n"
    "    for k, v in out:\n"
    "        v = clean(v)\n"
    "        if v and (k, v) not in mine:\n"
    "            mine.add((k, v)); res.append((k, v))\n"
    "    return res\n"
    "def subject(t, r, urls):\n"
    "    if t == 'Patient': return r['id']\n"
    "    s = (r['subject'] if 'subject' in r else r.get('patient'))['reference']\n"
    "    return urls[s] if s.startswith('urn:uuid:') else s.split('Patient/')[1].split('/')[0]\n"
    "def count(r, urls):\n"
    "    t = r['resourceType']\n"
    "    rows[t] = rows.get(t, 0) + 1\n"
    "    n = 0\n"
    "    if t == 'Patient':\n"
    "        pats.add(r['id'])\n"
    "        n = ('gender' in r) + ('birthDate' in r) + ('deceasedDateTime' in r) + ('maritalStatus' in r)\n"
    "        for x in r.get('extension', []):\n"
    "            if x['url'].endswith('us-core-race') or x['url'].endswith('us-core-ethnicity'):\n"
    "                n += sum(1 for s in x.get('extension', []) if s['url'] == 'ombCategory')\n"
    "    elif t == 'Encounter':\n"
    "        n = 1 + ('end' in r.get('period', {})) + sum(1 for ty in r.get('type', []) if known(ty))\n"
    "    elif t == 'Observation':\n"
    "        if r.get('status') in ('cancelled', 'entered-in-error'): n = 0\n"
    "        else:\n"
    "            comps = r.get('component', [])\n"
    "            has_value = any(k.startswith('value') for k in r)\n"
    "            n = (1 if has_value or not comps else 0) + len(comps)\n"
    "    elif t == 'DiagnosticReport':\n"
    "        n = 1 + any('data' in a for a in r.get('presentedForm', []))\n"
    "    elif t == 'CarePlan':\n"
    "        n = sum(1 for c in r.get('category', []) if known(c))\n"
    "        n += sum(1 for a in r.get('activity', []) if known(a.get('detail', {}).get('code')))\n"
    "    elif t in ('Condition', 'Procedure', 'Immunization', 'MedicationRequest', 'AllergyIntolerance', 'DocumentReference'):\n"
    "        n = 1\n"
    "    if n or t == 'Patient':\n"
    "        who = subject(t, r, urls)\n"
    "        for k, v in phi(t, r):\n"
    "            if (who, k, v) not in seen:\n"
    "                seen.add((who, k, v)); n += 1\n"
    "                phi_kinds[k] = phi_kinds.get(k, 0) + 1\n"
    "    events[t] = events.get(t, 0) + n\n"
    "d = sys.argv[1]\n"
    "# clinfm's commit order: Patient NDJSON files, Medication NDJSON files, bundles, other NDJSON files\n"
    "def group(f):\n"
    "    if '.ndjson' in f: return 0 if f.startswith('Patient') else 1 if f.startswith('Medication.') else 3\n"
    "    return 2\n"
    "for f in sorted(sorted(os.listdir(d)), key=group):\n"
    "    p = os.path.join(d, f)\n"
    "    op = gzip.open if f.endswith('.gz') else open\n"
    "    if f.endswith('.json.gz') or f.endswith('.json'):\n"
    "        with op(p, 'rb') as fh:\n"
    "            entries = json.load(fh).get('entry', [])\n"
    "        urls = {e['fullUrl']: e['resource']['id'] for e in entries if e['resource']['resourceType'] == 'Patient'}\n"
    "        for e in entries:\n"
    "            count(e['resource'], urls)\n"
    "    elif '.ndjson' in f and f.split('.')[0] not in ('log',):\n"
    "        with op(p, 'rb') as fh:\n"
    "            for line in fh:\n"
    "                if line.strip(): count(json.loads(line), {})\n"
    "print('patients', len(pats))\n"
    "for t in sorted(rows): print(t, rows[t], events[t])\n"
    "for k in sorted(phi_kinds): print('PHI//' + k, phi_kinds[k], 0)\n";

static void check_against_python(const char *rel_data, const char *store_name, int expect_patients) {
    char in[4096], script[4096], cmd[8192];
    const char *data = check_data(rel_data);
    if (!data) return;
    snprintf(in, sizeof in, "%s", data);
    path_of(script, sizeof script, "count.py");
    write_file("count.py", PY_COUNT);
    if (snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s' '%s'", script, in) >= (int)sizeof cmd) abort();
    FILE *pf = popen(cmd, "r");
    REQUIRE(pf);
    ingest_report rep;
    store s;
    cf_err err = {0};
    REQUIRE_EQ_INT(ingest(in, store_name, &rep, 0, &s, &err), 0);
    CHECK_EQ_INT(ingest_report_total_rejected(&rep), 0);
    /* events per provenance source, from the store itself */
    uint64_t per_source[64] = {0};
    for (uint64_t e = 0; e < s.n_events; e++) {
        uint32_t k = store_prov_source(s.prov[e]);
        if (k < 64) per_source[k]++;
    }
    char name[128];
    unsigned long long rows, events;
    int n_types = 0, patients = -1;
    if (fscanf(pf, "patients %d\n", &patients) != 1) patients = -2;
    CHECK_EQ_INT(patients, expect_patients);
    CHECK_EQ_INT(s.n_subjects, expect_patients);
    int n_phi_kinds = 0;
    while (fscanf(pf, "%127s %llu %llu\n", name, &rows, &events) == 3) {
        if (!strncmp(name, "PHI//", 5)) { /* identifier events by kind, as written */
            n_phi_kinds++;
            if (code_count(&s, name) != rows)
                CHECK_FAIL_("%s: clinfm %llu, python %llu", name, (unsigned long long)code_count(&s, name), rows);
            continue;
        }
        n_types++;
        const ingest_source_stats *st = src_stats(&rep, name);
        if (!st) {
            CHECK_FAIL_("type %s missing from the report", name);
            continue;
        }
        if (st->rows != rows) CHECK_FAIL_("%s rows: clinfm %llu, python %llu", name, (unsigned long long)st->rows, rows);
        if (st->events != events) CHECK_FAIL_("%s events: clinfm %llu, python %llu", name, (unsigned long long)st->events, events);
        uint64_t in_store = 0;
        for (uint64_t k = 0; k < s.n_sources; k++)
            if (!strcmp(store_source_name(&s, (uint32_t)k), name) && k < 64) in_store = per_source[k];
        if (in_store != events) CHECK_FAIL_("%s events in store: %llu, python %llu", name, (unsigned long long)in_store, events);
    }
    CHECK_EQ_INT(pclose(pf), 0);
    CHECK(n_types >= 10);
    CHECK(n_phi_kinds >= 4); /* at least names, addresses, phones and ids */
    int phi_codes_in_store = 0; /* and no kind that Python did not expect */
    for (uint32_t c = 0; c < s.n_codes; c++)
        if (!strncmp(store_code_str(&s, c), "PHI//", 5) && s.code_count[c]) phi_codes_in_store++;
    CHECK_EQ_INT(phi_codes_in_store, n_phi_kinds);
    CHECK_EQ_INT(n_types, rep.n_src);
    /* every subject carries its Patient id, and its id is the hash of that key */
    for (uint64_t i = 0; i < s.n_subjects; i++) {
        size_t kl = 0;
        const char *key = store_subject_key(&s, i, &kl);
        if (!key || fhir_subject_id(key, kl) != s.subject_id[i]) {
            CHECK_FAIL_("subject %llu key mismatch", (unsigned long long)i);
            break;
        }
    }
    CHECK_EQ_INT(code_count(&s, "MEDS_BIRTH"), expect_patients);
    store_close(&s);
    ingest_report_free(&rep);
}

static void test_synthea_bundles(void) { check_against_python("synthea-fhir-r4", "synthea.store", 615); }
static void test_synthea_bulk(void) { check_against_python("synthea-bulk-ndjson", "bulk13.store", 13); }

int main(void) {
    snprintf(g_dir, sizeof g_dir, "%s", check_tmpdir());
    RUN(test_type_table);
    RUN(test_subject_id);
    RUN(test_bundle_all_types);
    RUN(test_bulk_ndjson);
    RUN(test_rejections);
    RUN(test_bundle_file_rejections);
    RUN(test_bundle_streaming);
    RUN(test_reference_order);
    RUN(test_long_line);
    RUN(test_buffer_api);
    RUN(test_threads_identical);
    RUN(test_patient_identifiers);
    RUN(test_synthea_bulk);
    RUN(test_synthea_bundles);
    return check_summary();
}
