/* Unit tests of the service's parts: the reference predictor (formula, interval, occlusion equal
 * to brute-force rescoring), patient records from FHIR prefetch versus the store, the grounded
 * summary's citations, JWT verification (CDS Hooks 2.0 header and claims, audiences per endpoint,
 * a jti spent at the wrong endpoint), the audit chain under tampering, signed anchors (an idle
 * tail, a restored head file, an anchor file, empty or missing chains), MACs on keys, cards and
 * feedback, database and secret file modes, API keys, rate limits per key and per client address,
 * prefetch templates and their states, configuration errors (empty values), log escaping, and the
 * card cache's key (what changes it and what does not) and LRU eviction. */
#include <math.h>
#include <sys/stat.h>
#include <time.h>

#include <sqlite3.h>

#include "check.h"
#include "ingest/fhir.h"
#include "serve/serve_auth.h"
#include "serve/serve_cache.h"
#include "serve/serve_config.h"
#include "serve/serve.h"
#include "serve/serve_db.h"
#include "serve/serve_prefetch.h"
#include "serve/serve_record.h"
#include "serve/serve_ref.h"
#include "serve/serve_summary.h"
#include "serve_testutil.h"

/* A small patient (61 resources) and a larger one with admissions and medications. */
#define SMALL "synthea-fhir-r4/Luigi_Wiegand_e27d88b0-c5e5-4042-ad49-184f6a900ee3.json.gz"
#define MEDIUM "synthea-fhir-r4/Estela_Flórez_c044311d-9071-42dd-8682-91dc128cffd0.json.gz"

static char *path_in_root(const char *rel) {
    static char buf[4][4096];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", check_root(), rel);
    return buf[k];
}

static double sigm(double z) { return 1 / (1 + exp(-z)); }

static serve_config example_config(void) {
    serve_config c;
    cf_err err = {0};
    int rc = serve_config_load(&c, path_in_root("docs/serve-example.json"), &err);
    if (rc) fprintf(stderr, "%s\n", err.msg);
    return c;
}

/* ------------------------------------------------------------------ reference predictor */

static void test_ref_formula(void) {
    const char *def = "{\"name\":\"t\",\"version\":\"1\",\"tasks\":{\"x\":{\"intercept\":-1,"
                      "\"intercept_se\":0.1,\"features\":["
                      "{\"codes\":[\"A//\"],\"transform\":\"count\",\"weight\":0.5,\"se\":0.2},"
                      "{\"codes\":[\"B\"],\"transform\":\"last_value\",\"center\":1,\"weight\":0.2},"
                      "{\"codes\":[\"MEDS_BIRTH\"],\"transform\":\"years_since\",\"scale\":10,"
                      "\"weight\":0.1},"
                      "{\"codes\":[\"A//\"],\"transform\":\"present\",\"window_days\":10,"
                      "\"weight\":0.7}]}}}";
    cJSON *j = cJSON_Parse(def);
    serve_predictor p;
    cf_err err = {0};
    REQUIRE(serve_ref_open(j, "test", &p, &err) == CF_OK);
    int64_t day = USEC_PER_DAY, t0 = 20000 * day;
    int64_t time[] = {t0 - 365 * 40 * day, t0 - 100 * day, t0 - 50 * day, t0 - 20 * day,
                      t0 - 5 * day, t0, t0 + 10 * day};
    const char *code[] = {"MEDS_BIRTH", "A//1", "B", "A//2", "B", "C", "A//1"};
    float value[] = {NAN, NAN, 3.0f, NAN, 5.0f, NAN, NAN};
    serve_patient pt = {7, time, code, value, NULL, NULL, NULL, NULL, t0};
    serve_task task = {"x", "x", 0.2, 0.5};
    serve_score sc;
    REQUIRE(p.score(p.ctx, &pt, &task, &sc, &err) == CF_OK);
    /* the event after the prediction time is ignored: count A = 2, last B = 5, age = 40 years
     * (365*40 days / 365.25), nothing of A within 10 days */
    double age = 365.0 * 40 / 365.25;
    double z = -1 + 0.5 * 2 + 0.2 * (5 - 1) + 0.1 * (age / 10) + 0.7 * 0;
    CHECK_NEAR(sc.risk, sigm(z), 1e-12);
    double var = 0.01 + 0.04 * 4;
    CHECK_NEAR(sc.lo, sigm(z - 1.959963984540054 * sqrt(var)), 1e-9);
    CHECK_NEAR(sc.hi, sigm(z + 1.959963984540054 * sqrt(var)), 1e-9);
    CHECK_EQ_INT(sc.n_events_used, 6);
    /* occlusion: dropping A//1 lowers the count by one; dropping the later B (the whole "B"
     * group, both events) falls back to the default 0 */
    int seen_a1 = 0, seen_b = 0;
    for (size_t k = 0; k < sc.n_reasons; k++) {
        const serve_reason *r = &sc.reason[k];
        if (!strcmp(code[r->event], "A//1")) {
            seen_a1 = 1;
            CHECK_NEAR(r->contribution, sigm(z) - sigm(z - 0.5), 1e-12);
        }
        if (!strcmp(code[r->event], "B")) {
            seen_b = 1;
            CHECK_EQ_INT(r->event, 4);
            CHECK_EQ_INT(r->n_events, 2);
            CHECK_NEAR(r->contribution, sigm(z) - sigm(z - 0.2 * (5 - 1) + 0.2 * (0 - 1)), 1e-12);
        }
        if (k) CHECK(sc.reason[k - 1].contribution >= r->contribution);
    }
    CHECK(seen_a1 && seen_b);
    /* bad definitions are refused with the JSON path */
    cJSON *bad = cJSON_Parse("{\"tasks\":{\"x\":{\"intercept\":0,\"features\":[{\"codes\":[\"A\"],"
                             "\"transform\":\"median\",\"weight\":1}]}}}");
    serve_predictor q;
    CHECK(serve_ref_open(bad, "cfg", &q, &err) == CF_EINPUT);
    CHECK_CONTAINS(err.msg, "cfg.tasks.x.features[0].transform");
    cJSON_Delete(bad);
    cJSON_Delete(j);
    p.close(p.ctx);
}

/* A Synthea bundle from the external data directory; NULL (test skipped) when it is absent. */
static cJSON *bundle_json(const char *rel) {
    const char *path = check_data(rel);
    char *text = path ? tu_read_gz(path, NULL) : NULL;
    cJSON *j = text ? cJSON_Parse(text) : NULL;
    free(text);
    return j;
}

static void test_ref_occlusion_equals_rescoring(void) {
    serve_config c = example_config();
    REQUIRE(c.reference_model != NULL);
    serve_predictor p;
    cf_err err = {0};
    REQUIRE(serve_ref_open(c.reference_model, "example", &p, &err) == CF_OK);
    if (!check_data(MEDIUM) || !check_data(SMALL)) return;
    const char *files[] = {MEDIUM, SMALL};
    int reasons_seen = 0;
    for (int f = 0; f < 2; f++) {
        cJSON *b = bundle_json(files[f]);
        REQUIRE(b != NULL);
        serve_record rec;
        serve_record_init(&rec);
        const cJSON *vals[] = {b};
        const char *names[] = {"bundle"};
        REQUIRE(serve_record_from_fhir(&rec, vals, names, 1, NULL, TIME_NULL, &err) == CF_OK);
        for (size_t t = 0; t < c.n_tasks; t++) {
            serve_score fast, slow;
            REQUIRE(p.score(p.ctx, &rec.p, &c.tasks[t], &fast, &err) == CF_OK);
            CHECK(fast.lo <= fast.risk && fast.risk <= fast.hi);
            REQUIRE(serve_occlusion(serve_ref_risk, p.ctx, &rec.p, &c.tasks[t], fast.risk, &slow,
                                    &err) == CF_OK);
            CHECK_EQ_INT(fast.n_reasons, slow.n_reasons);
            CHECK_EQ_INT(fast.n_events_used, slow.n_events_used);
            for (size_t k = 0; k < fast.n_reasons && k < slow.n_reasons; k++) {
                CHECK_EQ_INT(fast.reason[k].event, slow.reason[k].event);
                CHECK_EQ_INT(fast.reason[k].n_events, slow.reason[k].n_events);
                CHECK_NEAR(fast.reason[k].contribution, slow.reason[k].contribution, 1e-9);
                CHECK(fast.reason[k].contribution > 0);
            }
            reasons_seen += (int)fast.n_reasons;
        }
        serve_record_free(&rec);
        cJSON_Delete(b);
    }
    CHECK(reasons_seen >= 4); /* the comparison above compared something */
    p.close(p.ctx);
    serve_config_free(&c);
}

/* ------------------------------------------------------------------ records */

static int cmp_ev(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* "time|code|value" lines of a record, sorted, joined. */
static char *record_fingerprint(const serve_record *r) {
    char **lines = calloc(r->p.n + 1, sizeof *lines);
    size_t total = 1;
    for (size_t i = 0; i < r->p.n; i++) {
        char b[1200];
        snprintf(b, sizeof b, "%lld|%s|%.6g|%s", (long long)r->p.time[i], r->p.code[i],
                 (double)r->p.value[i], r->p.source[i]);
        lines[i] = strdup(b);
        total += strlen(b) + 1;
    }
    qsort(lines, r->p.n, sizeof *lines, cmp_ev);
    char *out = malloc(total);
    out[0] = '\0';
    for (size_t i = 0; i < r->p.n; i++) {
        strcat(out, lines[i]);
        strcat(out, "\n");
        free(lines[i]);
    }
    free(lines);
    return out;
}

static void test_record_prefetch_equals_store(void) {
    if (!check_data(MEDIUM)) return;
    cf_err err = {0};
    char store_path[4096];
    snprintf(store_path, sizeof store_path, "%s/medium.store", check_tmpdir());
    store_writer *w;
    REQUIRE(store_writer_open(&w, store_path, NULL, &err) == CF_OK);
    ingest_report rep;
    ingest_report_init(&rep, 0);
    fhir_options fo = {.strict = 0};
    REQUIRE(fhir_ingest(check_data(MEDIUM), w, &rep, &fo, &err) == CF_OK);
    ingest_report_free(&rep);
    REQUIRE(store_writer_finish(w, &err) == CF_OK);
    store s;
    REQUIRE(store_open(&s, store_path, &err) == CF_OK);

    char *text = tu_read_gz(check_data(MEDIUM), NULL);
    char pid[128];
    cJSON *pf = tu_prefetch(text, pid, sizeof pid);
    REQUIRE(pid[0] != '\0');
    serve_record a, b, c;
    serve_record_init(&a);
    serve_record_init(&b);
    serve_record_init(&c);
    REQUIRE(serve_record_from_store(&a, &s, pid, TIME_NULL, &err) == CF_OK);
    const cJSON *vals[32];
    const char *names[32];
    size_t n = 0;
    const cJSON *v;
    cJSON_ArrayForEach(v, pf) {
        vals[n] = v;
        names[n++] = v->string;
    }
    REQUIRE(serve_record_from_fhir(&b, vals, names, n, pid, TIME_NULL, &err) == CF_OK);
    cJSON *whole = cJSON_Parse(text);
    const cJSON *wv[] = {whole};
    const char *wn[] = {"bundle"};
    REQUIRE(serve_record_from_fhir(&c, wv, wn, 1, NULL, TIME_NULL, &err) == CF_OK);
    CHECK(a.p.n > 200);
    CHECK_EQ_INT(a.p.n, b.p.n);
    CHECK_EQ_INT(a.p.n, c.p.n);
    char *fa = record_fingerprint(&a), *fb = record_fingerprint(&b), *fc = record_fingerprint(&c);
    CHECK(strcmp(fa, fb) == 0);
    CHECK(strcmp(fa, fc) == 0);
    /* time-sorted */
    for (size_t i = 1; i < b.p.n; i++) CHECK(b.p.time[i - 1] <= b.p.time[i]);
    /* unknown ids are absent, not someone else */
    serve_record d;
    serve_record_init(&d);
    CHECK(serve_record_from_store(&d, &s, "no-such-patient", TIME_NULL, &err) == CF_EINPUT);
    serve_record_free(&d);
    /* a prefetch for another patient id, or mixing in another patient's resource, is refused */
    serve_record e;
    serve_record_init(&e);
    CHECK(serve_record_from_fhir(&e, vals, names, n, "someone-else", TIME_NULL, &err) == CF_EINPUT);
    CHECK_CONTAINS(err.msg, "context.patientId");
    serve_record_free(&e);
    cJSON *foreign = cJSON_Parse("{\"resourceType\":\"Condition\",\"id\":\"c1\",\"subject\":"
                                 "{\"reference\":\"Patient/other\"},\"code\":{\"coding\":[{"
                                 "\"system\":\"http://snomed.info/sct\",\"code\":\"38341003\"}]},"
                                 "\"recordedDate\":\"2020-01-01\"}");
    vals[n] = foreign;
    names[n] = "prefetch.extra";
    serve_record_init(&e);
    CHECK(serve_record_from_fhir(&e, vals, names, n + 1, pid, TIME_NULL, &err) == CF_EINPUT);
    CHECK_CONTAINS(err.msg, "another patient");
    CHECK(strstr(err.msg, "other") == strstr(err.msg, "another") + 2); /* no id in the message */
    serve_record_free(&e);
    cJSON_Delete(foreign);
    free(fa);
    free(fb);
    free(fc);
    serve_record_free(&a);
    serve_record_free(&b);
    serve_record_free(&c);
    cJSON_Delete(whole);
    cJSON_Delete(pf);
    free(text);
    store_close(&s);
}

/* ------------------------------------------------------------------ summary */

static void test_summary_cites_record(void) {
    if (!check_data(MEDIUM)) return;
    cJSON *b = bundle_json(MEDIUM);
    REQUIRE(b != NULL);
    serve_record rec;
    serve_record_init(&rec);
    cf_err err = {0};
    const cJSON *vals[] = {b};
    const char *names[] = {"bundle"};
    REQUIRE(serve_record_from_fhir(&rec, vals, names, 1, NULL, TIME_NULL, &err) == CF_OK);
    serve_summary_opts o;
    serve_summary_defaults(&o);
    o.lab_window_days = 3650;
    o.medication_window_days = 3650;
    cJSON *s = serve_summary(&rec.p, &o);
    REQUIRE(s != NULL);
    const char *sections[] = {"problems", "medications", "labs", "admissions"};
    for (int k = 0; k < 4; k++) {
        const cJSON *arr = cJSON_GetObjectItem(s, sections[k]);
        REQUIRE(cJSON_IsArray(arr));
        CHECK(cJSON_GetArraySize(arr) > 0);
        const cJSON *line;
        cJSON_ArrayForEach(line, arr) {
            const char *code = cJSON_GetStringValue(cJSON_GetObjectItem(line, "code"));
            const char *text = cJSON_GetStringValue(cJSON_GetObjectItem(line, "text"));
            const cJSON *ev = cJSON_GetObjectItem(line, "evidence");
            REQUIRE(code && text && cJSON_GetArraySize(ev) > 0);
            const cJSON *e;
            int i = 0;
            cJSON_ArrayForEach(e, ev) {
                size_t idx = (size_t)cJSON_GetNumberValue(cJSON_GetObjectItem(e, "event"));
                REQUIRE(idx < rec.p.n);
                const char *ecode = cJSON_GetStringValue(cJSON_GetObjectItem(e, "code"));
                CHECK_EQ_STR(ecode, rec.p.code[idx]);
                char tb[48];
                CHECK_EQ_STR(cJSON_GetStringValue(cJSON_GetObjectItem(e, "time")),
                             serve_time_iso(rec.p.time[idx], tb, sizeof tb));
                if (k != 3) CHECK_EQ_STR(ecode, code); /* the line is about its evidence */
                if (k == 3 && i == 0) CHECK(!strncmp(ecode, "ENCOUNTER_START//IMP", 20));
                i++;
            }
            /* line text is the record's own description of the code */
            size_t first = (size_t)cJSON_GetNumberValue(cJSON_GetObjectItem(cJSON_GetArrayItem(ev, 0), "event"));
            CHECK_EQ_STR(text, rec.p.desc[first][0] ? rec.p.desc[first] : rec.p.code[first]);
            if (k == 2 && cJSON_IsObject(cJSON_GetObjectItem(line, "previous"))) {
                double lv = cJSON_GetNumberValue(cJSON_GetObjectItem(cJSON_GetObjectItem(line, "latest"), "value"));
                double pv = cJSON_GetNumberValue(cJSON_GetObjectItem(cJSON_GetObjectItem(line, "previous"), "value"));
                const char *trend = cJSON_GetStringValue(cJSON_GetObjectItem(line, "trend"));
                CHECK_EQ_STR(trend, lv > pv ? "rising" : lv < pv ? "falling" : "unchanged");
                CHECK_NEAR(lv, rec.p.value[first], 1e-6);
            }
        }
    }
    cJSON_Delete(s);
    serve_record_free(&rec);
    cJSON_Delete(b);
}


/* MIMIC-style codes: a STOP after the last START ends a medication; admissions pair with the
 * discharge of the same source row; labs outside the window are left out. */
static void test_summary_rules(void) {
    int64_t d = USEC_PER_DAY, t0 = 19000 * d;
    int64_t time[] = {t0 - 400 * d, t0 - 30 * d, t0 - 20 * d, t0 - 10 * d, t0 - 9 * d, t0 - 5 * d,
                      t0 - 3 * d, t0 - 2 * d, t0};
    const char *code[] = {"LAB//50912//mg/dL", "HOSPITAL_ADMISSION//EW EMER.//EMERGENCY ROOM",
                          "LAB//50912//mg/dL", "MEDICATION//START//Heparin",
                          "HOSPITAL_DISCHARGE//HOME", "MEDICATION//STOP//Heparin",
                          "MEDICATION//START//Furosemide", "LAB//50912//mg/dL",
                          "DIAGNOSIS//ICD//10//I509"};
    const char *src[] = {"hosp/labevents", "hosp/admissions", "hosp/labevents",
                         "hosp/prescriptions", "hosp/admissions", "hosp/prescriptions",
                         "hosp/prescriptions", "hosp/labevents", "hosp/diagnoses_icd"};
    const char *desc[] = {"Creatinine", "", "Creatinine", "", "", "", "", "Creatinine",
                          "Heart failure, unspecified"};
    uint64_t row[] = {1, 7, 2, 3, 7, 3, 4, 3, 9};
    float value[] = {0.9f, NAN, 1.1f, NAN, NAN, NAN, NAN, 1.8f, NAN};
    serve_patient p = {9, time, code, value, NULL, desc, src, row, TIME_NULL};
    serve_summary_opts o;
    serve_summary_defaults(&o);
    cJSON *s = serve_summary(&p, &o);
    REQUIRE(s != NULL);
    const cJSON *meds = cJSON_GetObjectItem(s, "medications");
    REQUIRE_EQ_INT(cJSON_GetArraySize(meds), 1);
    CHECK_EQ_STR(cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(meds, 0), "code")),
                 "MEDICATION//START//Furosemide");
    const cJSON *labs = cJSON_GetObjectItem(s, "labs");
    REQUIRE_EQ_INT(cJSON_GetArraySize(labs), 1);
    const cJSON *lab = cJSON_GetArrayItem(labs, 0);
    CHECK_EQ_STR(cJSON_GetStringValue(cJSON_GetObjectItem(lab, "trend")), "rising");
    CHECK_NEAR(cJSON_GetNumberValue(cJSON_GetObjectItem(lab, "change")), 0.7, 1e-6);
    CHECK_EQ_INT(cJSON_GetNumberValue(cJSON_GetObjectItem(lab, "values_in_window")), 2);
    const cJSON *adm = cJSON_GetObjectItem(s, "admissions");
    REQUIRE_EQ_INT(cJSON_GetArraySize(adm), 1);
    CHECK_NEAR(cJSON_GetNumberValue(cJSON_GetObjectItem(cJSON_GetArrayItem(adm, 0), "length_of_stay_days")),
               21.0, 1e-9);
    const cJSON *probs = cJSON_GetObjectItem(s, "problems");
    REQUIRE_EQ_INT(cJSON_GetArraySize(probs), 1);
    CHECK_EQ_STR(cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(probs, 0), "text")),
                 "Heart failure, unspecified");
    cJSON_Delete(s);
}

/* ------------------------------------------------------------------ JWT */

static void test_jwt(void) {
    serve_config c = example_config();
    serve_auth *a;
    cf_err err = {0};
    REQUIRE(serve_auth_open(&a, &c, &err) == CF_OK);
    EVP_PKEY *ec = tu_key_ec(), *rsa = tu_key_rsa(), *other = tu_key_ec();
    char *j1 = tu_jwks(ec, "ec1"), *j2 = tu_jwks(rsa, "rsa1");
    REQUIRE(serve_auth_add_jwks(a, "https://ehr.example", j1, strlen(j1), "j1", &err) == CF_OK);
    REQUIRE(serve_auth_add_jwks(a, "https://ehr.example", j2, strlen(j2), "j2", &err) == CF_OK);
    const char *aud[] = {"https://cds.example.org/cds-services/svc"};
    int64_t now = (int64_t)time(NULL);
    char pl[512];
    serve_jwt_claims cl;
    const char *why;
#define PAYLOAD(exp, audience, jti)                                                            \
    snprintf(pl, sizeof pl,                                                                     \
             "{\"iss\":\"https://ehr.example\",\"sub\":\"client\",\"aud\":%s,\"exp\":%lld,"     \
             "\"iat\":%lld,\"jti\":\"%s\"}",                                                    \
             audience, (long long)(exp), (long long)now, jti)
    PAYLOAD(now + 120, "\"https://cds.example.org/cds-services/svc\"", "t1");
    char *t = tu_jwt(ec, "ES384", "ec1", pl);
    CHECK_EQ_INT(serve_jwt_verify(a, t, aud, 1, now, &cl, &why), 0);
    CHECK_EQ_STR(cl.iss, "https://ehr.example");
    CHECK_EQ_STR(cl.sub, "client");
    CHECK(serve_jwt_verify(a, t, aud, 1, now, &cl, &why) != 0); /* replay */
    CHECK_CONTAINS(why, "already used");
    /* a tampered payload keeps the signature but changes the message */
    char *dot = strchr(t, '.');
    dot[3] = dot[3] == 'A' ? 'B' : 'A';
    CHECK(serve_jwt_verify(a, t, aud, 1, now, &cl, &why) != 0);
    free(t);
    PAYLOAD(now + 120, "[\"x\",\"https://cds.example.org/cds-services/svc\"]", "t2");
    t = tu_jwt(rsa, "RS384", "rsa1", pl);
    CHECK_EQ_INT(serve_jwt_verify(a, t, aud, 1, now, &cl, &why), 0);
    free(t);
    struct {
        EVP_PKEY *k;
        const char *alg, *kid;
        int64_t exp;
        const char *aud, *jti, *want;
    } bad[] = {
        {ec, "ES384", "ec1", now - 3600, "\"https://cds.example.org/cds-services/svc\"", "b1", "expired"},
        {ec, "ES384", "ec1", now + 120, "\"https://cds.example.org/cds-services/other\"", "b2", "audience"},
        {ec, "ES384", "ec1", now + 86400, "\"https://cds.example.org/cds-services/svc\"", "b3", "too far"},
        {other, "ES384", "ec1", now + 120, "\"https://cds.example.org/cds-services/svc\"", "b4", "signature"},
        {rsa, "ES384", "ec1", now + 120, "\"https://cds.example.org/cds-services/svc\"", "b5", "signature"},
        {ec, "HS384", "ec1", now + 120, "\"https://cds.example.org/cds-services/svc\"", "b6", "ES384 or RS384"},
        {ec, "none", "ec1", now + 120, "\"https://cds.example.org/cds-services/svc\"", "b7", "ES384 or RS384"},
        {ec, "ES384", "ec1", now + 120, "\"https://cds.example.org/cds-services/svc\"", "", "jti"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        PAYLOAD(bad[i].exp, bad[i].aud, bad[i].jti);
        t = tu_jwt(bad[i].k, bad[i].alg, bad[i].kid, pl);
        why = "";
        CHECK(serve_jwt_verify(a, t, aud, 1, now, &cl, &why) != 0);
        CHECK_CONTAINS(why, bad[i].want);
        free(t);
    }
    snprintf(pl, sizeof pl, "{\"iss\":\"https://stranger\",\"aud\":\"%s\",\"exp\":%lld,\"jti\":\"x\"}",
             aud[0], (long long)(now + 60));
    t = tu_jwt(ec, "ES384", "ec1", pl);
    CHECK(serve_jwt_verify(a, t, aud, 1, now, &cl, &why) != 0);
    CHECK_CONTAINS(why, "issuer");
    free(t);
    CHECK(serve_jwt_verify(a, "not-a-token", aud, 1, now, &cl, &why) != 0);
    CHECK(serve_jwt_verify(a, "a.b.c.d", aud, 1, now, &cl, &why) != 0);
    /* JWKS with the wrong curve is refused */
    const char *p256 = "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"AA\",\"y\":\"AA\"}]}";
    CHECK(serve_auth_add_jwks(a, "i2", p256, strlen(p256), "p256", &err) == CF_EINPUT);
#undef PAYLOAD
    free(j1);
    free(j2);
    EVP_PKEY_free(ec);
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(other);
    serve_auth_close(a);
    serve_config_free(&c);
}

static void test_rate_limit(void) {
    serve_config c = example_config();
    c.rate_per_minute = 60;
    c.burst = 3;
    serve_auth *a;
    cf_err err = {0};
    REQUIRE(serve_auth_open(&a, &c, &err) == CF_OK);
    double retry;
    for (int i = 0; i < 3; i++) CHECK_EQ_INT(serve_rate_take(a, "k1", 100.0, &retry), 1);
    CHECK_EQ_INT(serve_rate_take(a, "k1", 100.0, &retry), 0);
    CHECK_NEAR(retry, 1.0, 1e-9);
    CHECK_EQ_INT(serve_rate_take(a, "k2", 100.0, &retry), 1); /* per principal */
    CHECK_EQ_INT(serve_rate_take(a, "k1", 101.0, &retry), 1); /* one token a second */
    CHECK_EQ_INT(serve_rate_take(a, "k1", 101.0, &retry), 0);
    serve_auth_close(a);
    serve_config_free(&c);
}

/* ------------------------------------------------------------------ audit and keys */

static void fresh_secret(const char *name, unsigned char key[SERVE_SECRET_BYTES], char *path,
                         size_t cap) {
    cf_err err = {0};
    snprintf(path, cap, "%s/%s", check_tmpdir(), name);
    unlink(path);
    CHECK(serve_secret_generate(path, &err) == CF_OK);
    CHECK(serve_secret_generate(path, &err) == CF_EINPUT); /* never overwritten */
    CHECK(serve_secret_load(path, key, &err) == CF_OK);
}

static void make_audit_db(const char *path, const unsigned char *key, int rows) {
    char hp[4200];
    snprintf(hp, sizeof hp, "%s-head", path);
    unlink(path);
    unlink(hp);
    serve_db *db;
    cf_err err = {0};
    REQUIRE(serve_db_open(&db, path, key, &err) == CF_OK);
    for (int i = 0; i < rows; i++) {
        char patient[33];
        serve_db_pseudonym(db, i % 2 ? "patient-a" : "patient-b", patient);
        serve_card_row card = {"00000000-0000-4000-8000-00000000000", "svc", "patient-view",
                               "mortality_1y", "warning", 0.3, 0.2, 0.4};
        char uuid[40];
        snprintf(uuid, sizeof uuid, "00000000-0000-4000-8000-%012d", i);
        card.uuid = uuid;
        serve_audit_entry e = {1700000000000000LL + i, "key:abc", "clinician", "Practitioner/1",
                               "POST", "/cds-services/{id}", patient, "m", "1", 200,
                               "ab", 1000 + i, 1};
        serve_feedback_row fb = {1700000000000000LL + i, "svc", uuid, "overridden", "disagree",
                                 "urn:clinfm:override-reason", "Disagree", "seen", "2026-01-01T00:00:00Z",
                                 "key:abc"};
        REQUIRE(serve_db_audit(db, &e, &card, 1, i % 2 ? &fb : NULL, i % 2, &err) == CF_OK);
    }
    serve_db_close(db);
}

static int verify_with(const char *path, const unsigned char *key, const char *anchors, char *msg,
                       size_t cap) {
    cf_err err = {0};
    int rc = serve_db_verify(path, key, anchors, NULL, NULL, &err);
    snprintf(msg, cap, "%s", err.msg);
    return rc;
}

static int verify(const char *path, const unsigned char *key, char *msg, size_t cap) {
    return verify_with(path, key, NULL, msg, cap);
}

static void tamper(const char *path, const char *sql) {
    sqlite3 *db;
    REQUIRE(sqlite3_open(path, &db) == SQLITE_OK);
    CHECK(sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_close(db);
}

static void test_audit_chain(void) {
    unsigned char key[SERVE_SECRET_BYTES], key2[SERVE_SECRET_BYTES];
    char sp[4096], sp2[4096], db[4096], msg[1100];
    fresh_secret("audit.key", key, sp, sizeof sp);
    fresh_secret("audit2.key", key2, sp2, sizeof sp2);
    snprintf(db, sizeof db, "%s/audit.db", check_tmpdir());
    /* pseudonyms: stable, keyed, never the id */
    serve_db *h;
    cf_err err = {0};
    REQUIRE(serve_db_open(&h, ":memory:", key, &err) == CF_OK);
    char p1[33], p2[33], p3[33];
    serve_db_pseudonym(h, "patient-a", p1);
    serve_db_pseudonym(h, "patient-a", p2);
    serve_db_pseudonym(h, "patient-b", p3);
    CHECK_EQ_STR(p1, p2);
    CHECK(strcmp(p1, p3) != 0 && strlen(p1) == 32 && !strstr(p1, "patient"));
    serve_db_close(h);

    make_audit_db(db, key, 6);
    CHECK_EQ_INT(verify(db, key, msg, sizeof msg), CF_OK);
    CHECK(verify(db, key2, msg, sizeof msg) != CF_OK); /* another secret cannot vouch for it */

    tamper(db, "UPDATE audit SET status = 500 WHERE seq = 3");
    CHECK(verify(db, key, msg, sizeof msg) != CF_OK);
    CHECK_CONTAINS(msg, "row 3");
    CHECK_CONTAINS(msg, "edited");

    make_audit_db(db, key, 6);
    tamper(db, "DELETE FROM audit WHERE seq = 4");
    CHECK(verify(db, key, msg, sizeof msg) != CF_OK);
    CHECK_CONTAINS(msg, "deleted");

    make_audit_db(db, key, 6);
    tamper(db, "DELETE FROM audit WHERE seq = 6");
    CHECK(verify(db, key, msg, sizeof msg) != CF_OK);
    CHECK_CONTAINS(msg, "newest rows were deleted");

    /* rewriting a row and every hash after it needs the secret: with a row re-hashed by another
     * key the chain breaks at that row */
    make_audit_db(db, key, 6);
    tamper(db, "UPDATE audit SET patient = 'x', row_hash = "
               "'0000000000000000000000000000000000000000000000000000000000000000' WHERE seq = 2");
    CHECK(verify(db, key, msg, sizeof msg) != CF_OK);
    CHECK_CONTAINS(msg, "row 2");

    make_audit_db(db, key, 6);
    char hp[4200];
    snprintf(hp, sizeof hp, "%s-head", db);
    unlink(hp);
    CHECK(verify(db, key, msg, sizeof msg) != CF_OK);
    CHECK_CONTAINS(msg, "missing");
}


/* Item 6: the tail is anchored on demand (the server's timer) and at close, each anchor signed;
 * an idle server's newest rows, a restored older head file, an emptied table or a missing head
 * file are never "intact". */
static void test_audit_anchors(void) {
    unsigned char key[SERVE_SECRET_BYTES], key2[SERVE_SECRET_BYTES];
    char sp[4096], sp2[4096], db[4096], hp[4200], af[4200], msg[1100];
    fresh_secret("anchor.key", key, sp, sizeof sp);
    fresh_secret("anchor2.key", key2, sp2, sizeof sp2);
    snprintf(db, sizeof db, "%s/anchor.db", check_tmpdir());
    snprintf(hp, sizeof hp, "%s-head", db);
    snprintf(af, sizeof af, "%s/anchors.log", check_tmpdir());
    unlink(db);
    unlink(hp);
    unlink(af);
    cf_err err = {0};
    serve_db *h;
    REQUIRE(serve_db_open(&h, db, key, &err) == CF_OK);
    serve_db_set_anchor_sinks(h, af, 0);
    /* a burst of rows, then the timer's anchor while the server stays open and idle */
    for (int i = 0; i < 20; i++) {
        serve_audit_entry e = {1700000000000000LL + i, "key:abc", "clinician", "", "GET",
                               "/v1/tasks", "", "", "", 200, "ab", 10, 1};
        REQUIRE(serve_db_audit(h, &e, NULL, 0, NULL, 0, &err) == CF_OK);
    }
    int missing = -1;
    REQUIRE(serve_db_anchor(h, &missing, &err) == CF_OK);
    CHECK_EQ_INT(missing, 1); /* a new database: no head yet */
    CHECK_EQ_INT(verify(db, key, msg, sizeof msg), CF_OK);
    /* the head file is a signed anchor naming the row count */
    char *head = tu_read_gz(hp, NULL);
    REQUIRE(head != NULL);
    CHECK(!strncmp(head, "clinfm-audit-anchor v1 ", 23));
    CHECK_CONTAINS(head, " rows=20 ");
    CHECK_CONTAINS(head, " sig=");
    struct stat stt;
    CHECK(stat(hp, &stt) == 0 && (stt.st_mode & 077) == 0);
    /* an old head kept aside, then more rows and another anchor */
    char *old_head = strdup(head);
    free(head);
    for (int i = 20; i < 30; i++) {
        serve_audit_entry e = {1700000000000000LL + i, "key:abc", "clinician", "", "GET",
                               "/v1/tasks", "", "", "", 200, "ab", 10, 1};
        REQUIRE(serve_db_audit(h, &e, NULL, 0, NULL, 0, &err) == CF_OK);
    }
    REQUIRE(serve_db_anchor(h, NULL, &err) == CF_OK);
    /* rows deleted from the live database of an idle server: caught */
    tamper(db, "DELETE FROM audit WHERE seq > 27");
    CHECK(verify(db, key, msg, sizeof msg) != CF_OK);
    CHECK_CONTAINS(msg, "newest rows were deleted");
    /* the server itself refuses to anchor over the gap */
    CHECK(serve_db_anchor(h, NULL, &err) == CF_EINPUT);
    CHECK_CONTAINS(err.msg, "deleted");
    serve_db_close(h);
    /* another database's anchor in the same (shared) file is skipped, not an error */
    char db2[4096], af2[4200];
    snprintf(db2, sizeof db2, "%s/anchor-other.db", check_tmpdir());
    snprintf(af2, sizeof af2, "%s/anchors-other.log", check_tmpdir());
    make_audit_db(db2, key2, 2);
    serve_db *h2;
    REQUIRE(serve_db_open(&h2, db2, key2, &err) == CF_OK);
    serve_db_set_anchor_sinks(h2, af2, 0);
    serve_audit_entry e2 = {1700000000000000LL, "key:abc", "clinician", "", "GET", "/v1/tasks", "",
                            "", "", 200, "ab", 10, 1};
    REQUIRE(serve_db_audit(h2, &e2, NULL, 0, NULL, 0, &err) == CF_OK);
    serve_db_close(h2);
    char *foreign = tu_read_gz(af2, NULL);
    REQUIRE(foreign != NULL);
    FILE *f = fopen(af, "a");
    fputs(foreign, f);
    fclose(f);
    free(foreign);
    /* a restored older head file does not hide the deletion from the anchor file */
    f = fopen(hp, "w");
    fputs(old_head, f);
    fclose(f);
    CHECK_EQ_INT(verify(db, key, msg, sizeof msg), CF_OK); /* the head alone cannot tell */
    CHECK(verify_with(db, key, af, msg, sizeof msg) != CF_OK);
    CHECK_CONTAINS(msg, "anchors.log anchored row 30");
    CHECK_CONTAINS(msg, "newest rows were deleted");
    REQUIRE(serve_db_open(&h, db, key, &err) == CF_OK); /* a server starting over it refuses */
    serve_db_set_anchor_sinks(h, af, 0);
    CHECK(serve_db_check_anchor_file(h, &err) == CF_EINPUT);
    CHECK_CONTAINS(err.msg, "row 30");
    serve_db_close(h);
    free(old_head);
    /* an anchor line edited (rows=30 -> rows=27) no longer verifies */
    char *lines = tu_read_gz(af, NULL);
    REQUIRE(lines != NULL);
    char *at = strstr(lines, " rows=30 ");
    REQUIRE(at != NULL);
    memcpy(at, " rows=27 ", 9);
    f = fopen(af, "w");
    fputs(lines, f);
    fclose(f);
    free(lines);
    CHECK(verify_with(db, key, af, msg, sizeof msg) != CF_OK);
    CHECK_CONTAINS(msg, "signature");
    /* another secret's anchors or head are refused */
    make_audit_db(db, key, 4);
    CHECK(verify(db, key2, msg, sizeof msg) != CF_OK);
    /* emptied table with the head file deleted: never intact */
    tamper(db, "DELETE FROM audit; DELETE FROM cards; DELETE FROM feedback");
    unlink(hp);
    CHECK(verify(db, key, msg, sizeof msg) != CF_OK);
    CHECK_CONTAINS(msg, "empty");
    /* a table whose head file is missing: never intact */
    make_audit_db(db, key, 4);
    unlink(hp);
    CHECK(verify(db, key, msg, sizeof msg) != CF_OK);
    CHECK_CONTAINS(msg, "missing");
    /* an edited row stops the anchoring too */
    make_audit_db(db, key, 4);
    REQUIRE(serve_db_open(&h, db, key, &err) == CF_OK);
    serve_audit_entry e = {1800000000000000LL, "key:abc", "clinician", "", "GET", "/v1/tasks", "",
                           "", "", 200, "ab", 10, 1};
    REQUIRE(serve_db_audit(h, &e, NULL, 0, NULL, 0, &err) == CF_OK);
    tamper(db, "UPDATE audit SET status = 403 WHERE seq = 5");
    CHECK(serve_db_anchor(h, NULL, &err) == CF_EINPUT);
    CHECK_CONTAINS(err.msg, "row 5");
    serve_db_close(h);
}

static void key_row_tamper(const char *db, const char *sql) { tamper(db, sql); }

/* Item 7: keys, cards and feedback carry MACs and are checked by the server and by verify. */
static void test_row_macs(void) {
    unsigned char key[SERVE_SECRET_BYTES];
    char sp[4096], db[4096], msg[1100], sql[512];
    fresh_secret("macs.key", key, sp, sizeof sp);
    snprintf(db, sizeof db, "%s/macs.db", check_tmpdir());
    cf_err err = {0};
    /* cards and feedback */
    make_audit_db(db, key, 6);
    CHECK_EQ_INT(verify(db, key, msg, sizeof msg), CF_OK);
    tamper(db, "UPDATE cards SET risk = 0.01 WHERE audit_seq = 3");
    CHECK(verify(db, key, msg, sizeof msg) != CF_OK);
    CHECK_CONTAINS(msg, "card 00000000-0000-4000-8000-000000000002");
    CHECK_CONTAINS(msg, "edited");
    serve_db *h;
    REQUIRE(serve_db_open(&h, db, key, &err) == CF_OK);
    CHECK_EQ_INT(serve_db_card_known(h, "00000000-0000-4000-8000-000000000002", "svc"), -2);
    CHECK_EQ_INT(serve_db_card_known(h, "00000000-0000-4000-8000-000000000001", "svc"), 1);
    serve_db_close(h);
    make_audit_db(db, key, 6);
    tamper(db, "UPDATE feedback SET outcome = 'accepted' WHERE id = 1");
    CHECK(verify(db, key, msg, sizeof msg) != CF_OK);
    CHECK_CONTAINS(msg, "feedback row 1");
    REQUIRE(serve_db_open(&h, db, key, &err) == CF_OK);
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    CHECK(serve_db_feedback_export(h, f, 1, 0, &err) == CF_EINPUT); /* nothing poisoned exported */
    fclose(f);
    free(out);
    CHECK_CONTAINS(err.msg, "integrity");
    serve_db_close(h);
    make_audit_db(db, key, 6);
    tamper(db, "DELETE FROM cards WHERE audit_seq = 2");
    CHECK(verify(db, key, msg, sizeof msg) != CF_OK);
    CHECK_CONTAINS(msg, "audit row 2");
    make_audit_db(db, key, 6);
    tamper(db, "DELETE FROM feedback WHERE id = 2");
    CHECK(verify(db, key, msg, sizeof msg) != CF_OK);
    CHECK_CONTAINS(msg, "deleted, added, moved or edited");
    make_audit_db(db, key, 6);
    tamper(db, "UPDATE cards SET audit_seq = 2 WHERE audit_seq = 3");
    CHECK(verify(db, key, msg, sizeof msg) != CF_OK);
    /* keys: a revoked key revived, a role raised, a row restored from before its revocation */
    char tok[SERVE_TOKEN_LEN + 1], tok2[SERVE_TOKEN_LEN + 1], id[SERVE_KEY_ID_LEN + 1],
        id2[SERVE_KEY_ID_LEN + 1], got[SERVE_KEY_ID_LEN + 1], role[16];
    int64_t now = 1800000000000000LL;
    make_audit_db(db, key, 2);
    REQUIRE(serve_db_open(&h, db, key, &err) == CF_OK);
    REQUIRE(serve_db_key_create(h, "ward", "clinician", 0, "test", tok, id, &err) == CF_OK);
    REQUIRE(serve_db_key_create(h, "old", "clinician", 0, "test", tok2, id2, &err) == CF_OK);
    /* the row as it was before revocation, kept by someone with database access */
    char saved[200];
    sqlite3_stmt *st;
    sqlite3_prepare_v2(serve_db_handle(h), "SELECT mac FROM api_keys WHERE id = ?1", -1, &st, NULL);
    sqlite3_bind_text(st, 1, id2, -1, SQLITE_STATIC);
    REQUIRE(sqlite3_step(st) == SQLITE_ROW);
    snprintf(saved, sizeof saved, "%s", (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    REQUIRE(serve_db_key_revoke(h, id2, "test", &err) == CF_OK);
    CHECK_EQ_INT(serve_db_key_check(h, tok2, now, got, role), 0);
    snprintf(sql, sizeof sql, "UPDATE api_keys SET revoked_us = 0 WHERE id = '%s'", id2);
    key_row_tamper(db, sql);
    CHECK_EQ_INT(serve_db_key_check(h, tok2, now, got, role), -2); /* refused, not revived */
    snprintf(sql, sizeof sql, "UPDATE api_keys SET role = 'admin' WHERE id = '%s'", id);
    key_row_tamper(db, sql);
    CHECK_EQ_INT(serve_db_key_check(h, tok, now, got, role), -2);
    serve_db_close(h);
    CHECK(verify(db, key, msg, sizeof msg) != CF_OK);
    CHECK_CONTAINS(msg, "API key");
    CHECK_CONTAINS(msg, "edited");
    snprintf(sql, sizeof sql, "UPDATE api_keys SET role = 'clinician' WHERE id = '%s';"
                              "UPDATE api_keys SET mac = '%s' WHERE id = '%s'", id, saved, id2);
    key_row_tamper(db, sql); /* the whole pre-revocation row is back: its MAC is valid */
    CHECK(verify(db, key, msg, sizeof msg) != CF_OK);
    CHECK_CONTAINS(msg, "was revoked");
    CHECK_CONTAINS(msg, "restored");
    /* an inserted key (its MAC copied from another row) */
    make_audit_db(db, key, 2);
    REQUIRE(serve_db_open(&h, db, key, &err) == CF_OK);
    REQUIRE(serve_db_key_create(h, "ward", "clinician", 0, "test", tok, id, &err) == CF_OK);
    serve_db_close(h);
    snprintf(sql, sizeof sql, "INSERT INTO api_keys SELECT '0123456789abcdef', name, 'admin', hash,"
                              " created_us, expires_us, revoked_us, mac FROM api_keys");
    key_row_tamper(db, sql);
    CHECK(verify(db, key, msg, sizeof msg) != CF_OK);
}

/* Item 8: the database is created 0600 and refused when others may read it; the same for the
 * secret and the TLS key. */
static void test_file_modes(void) {
    unsigned char key[SERVE_SECRET_BYTES];
    char sp[4096], db[4096], wal[4200];
    fresh_secret("modes.key", key, sp, sizeof sp);
    snprintf(db, sizeof db, "%s/modes.db", check_tmpdir());
    snprintf(wal, sizeof wal, "%s-wal", db);
    unlink(db);
    cf_err err = {0};
    mode_t old = umask(022); /* a usual umask: the service must not depend on it */
    serve_db *h;
    REQUIRE(serve_db_open(&h, db, key, &err) == CF_OK);
    serve_audit_entry e = {1700000000000000LL, "key:abc", "clinician", "", "GET", "/v1/tasks", "",
                           "", "", 200, "ab", 10, 1};
    REQUIRE(serve_db_audit(h, &e, NULL, 0, NULL, 0, &err) == CF_OK);
    struct stat st;
    CHECK(stat(db, &st) == 0 && (st.st_mode & 077) == 0);
    CHECK(stat(wal, &st) == 0 && (st.st_mode & 077) == 0);
    serve_db_close(h);
    umask(old);
    chmod(db, 0644);
    CHECK(serve_db_open(&h, db, key, &err) == CF_EINPUT);
    CHECK_CONTAINS(err.msg, "readable by its owner only");
    chmod(db, 0600);
    REQUIRE(serve_db_open(&h, db, key, &err) == CF_OK);
    serve_db_close(h);
    chmod(sp, 0640);
    CHECK(serve_secret_load(sp, key, &err) == CF_EINPUT);
    chmod(sp, 0600);
    char tls[4096];
    snprintf(tls, sizeof tls, "%s/tls.key", check_tmpdir());
    FILE *f = fopen(tls, "w");
    fputs("not really a key\n", f);
    fclose(f);
    chmod(tls, 0644);
    CHECK(serve_check_private(tls, "TLS private key", &err) == CF_EINPUT);
    CHECK_CONTAINS(err.msg, "TLS private key");
    chmod(tls, 0600);
    CHECK(serve_check_private(tls, "TLS private key", &err) == CF_OK);
}

/* Item 9 (verification part): kid, typ and iat are required; a token is spent wherever it is
 * presented, so one sent to discovery cannot be replayed on a hook. */
static void test_jwt_cds_hooks(void) {
    serve_config c = example_config();
    serve_auth *a;
    cf_err err = {0};
    REQUIRE(serve_auth_open(&a, &c, &err) == CF_OK);
    EVP_PKEY *ec = tu_key_ec();
    char *j = tu_jwks(ec, "ec1");
    REQUIRE(serve_auth_add_jwks(a, "https://ehr.example", j, strlen(j), "j", &err) == CF_OK);
    int64_t now = (int64_t)time(NULL);
    const char *hook[] = {"https://cds.example.org/cds-services/svc"};
    const char *disc[] = {"https://cds.example.org/cds-services"};
    serve_jwt_claims cl;
    const char *why;
    char pl[512];
    struct {
        const char *header, *payload_fmt, *want;
    } bad[] = {
        {"{\"alg\":\"ES384\",\"typ\":\"JWT\"}", "{\"iss\":\"https://ehr.example\",\"aud\":\"%s\","
         "\"exp\":%lld,\"iat\":%lld,\"jti\":\"k1\"}", "kid"},
        {"{\"alg\":\"ES384\",\"kid\":\"ec1\"}", "{\"iss\":\"https://ehr.example\",\"aud\":\"%s\","
         "\"exp\":%lld,\"iat\":%lld,\"jti\":\"k2\"}", "typ"},
        {"{\"alg\":\"ES384\",\"kid\":\"ec1\",\"typ\":\"at+jwt\"}", "{\"iss\":\"https://ehr.example\","
         "\"aud\":\"%s\",\"exp\":%lld,\"iat\":%lld,\"jti\":\"k3\"}", "typ"},
        {"{\"alg\":\"ES384\",\"kid\":\"ec1\",\"typ\":\"JWT\"}", "{\"iss\":\"https://ehr.example\","
         "\"aud\":\"%s\",\"exp\":%lld,\"jti\":\"k4\",\"x\":%lld}", "iat"},
        {"{\"alg\":\"ES384\",\"kid\":\"ec2\",\"typ\":\"JWT\"}", "{\"iss\":\"https://ehr.example\","
         "\"aud\":\"%s\",\"exp\":%lld,\"iat\":%lld,\"jti\":\"k5\"}", "kid"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(pl, sizeof pl, bad[i].payload_fmt, hook[0], (long long)now + 60, (long long)now);
        char *t = tu_jwt_raw(ec, bad[i].header, pl);
        why = "";
        CHECK(serve_jwt_verify(a, t, hook, 1, now, &cl, &why) != 0);
        CHECK_CONTAINS(why, bad[i].want);
        free(t);
    }
    /* a hook's token presented at discovery: refused there (audience), and spent */
    snprintf(pl, sizeof pl, "{\"iss\":\"https://ehr.example\",\"aud\":\"%s\",\"exp\":%lld,"
                            "\"iat\":%lld,\"jti\":\"spent-1\"}", hook[0], (long long)now + 60,
             (long long)now);
    char *t = tu_jwt(ec, "ES384", "ec1", pl);
    CHECK(serve_jwt_verify(a, t, disc, 1, now, &cl, &why) != 0);
    CHECK_CONTAINS(why, "audience");
    CHECK(serve_jwt_verify(a, t, hook, 1, now, &cl, &why) != 0);
    CHECK_CONTAINS(why, "already used");
    free(t);
    /* discovery's own token is accepted there once */
    snprintf(pl, sizeof pl, "{\"iss\":\"https://ehr.example\",\"aud\":\"%s\",\"exp\":%lld,"
                            "\"iat\":%lld,\"jti\":\"disc-1\"}", disc[0], (long long)now + 60,
             (long long)now);
    t = tu_jwt(ec, "ES384", "ec1", pl);
    CHECK_EQ_INT(serve_jwt_verify(a, t, disc, 1, now, &cl, &why), 0);
    CHECK(serve_jwt_verify(a, t, hook, 1, now, &cl, &why) != 0);
    free(t);
    free(j);
    EVP_PKEY_free(ec);
    serve_auth_close(a);
    serve_config_free(&c);
}

/* Item 5 (limiter part): an address's budget for requests that identify no one. */
static void test_client_budget(void) {
    serve_config c = example_config();
    c.client_rate_per_minute = 60;
    c.client_burst = 3;
    serve_auth *a;
    cf_err err = {0};
    REQUIRE(serve_auth_open(&a, &c, &err) == CF_OK);
    double retry;
    for (int i = 0; i < 5; i++) CHECK_EQ_INT(serve_client_allowed(a, "10.0.0.1", 100.0, &retry), 1);
    for (int i = 0; i < 3; i++) serve_client_charge(a, "10.0.0.1", 100.0);
    CHECK_EQ_INT(serve_client_allowed(a, "10.0.0.1", 100.0, &retry), 0);
    CHECK_NEAR(retry, 1.0, 1e-9);
    CHECK_EQ_INT(serve_client_allowed(a, "10.0.0.2", 100.0, &retry), 1);
    CHECK_EQ_INT(serve_client_allowed(a, "10.0.0.1", 101.0, &retry), 1);
    serve_auth_close(a);
    serve_config_free(&c);
}

/* Prefetch templates: what is accepted, how tokens expand, and what a value's state is. */
static void test_prefetch_templates(void) {
    CHECK(serve_prefetch_check("Patient/{{context.patientId}}", "patient-view") == NULL);
    CHECK(serve_prefetch_check("PractitionerRole?_id={{userPractitionerRoleId}}", "patient-view") == NULL);
    CHECK(serve_prefetch_check("https://x/Patient/1", "patient-view") != NULL);
    CHECK(serve_prefetch_check("/Patient/1", "patient-view") != NULL);
    CHECK(serve_prefetch_check("Patient/{{context.medication}}", "patient-view") != NULL);
    CHECK(serve_prefetch_check("Patient/{{context.patientId", "patient-view") != NULL);
    CHECK(serve_prefetch_check("Condition?patient={{context.patientId}} ", "patient-view") != NULL);
    serve_prefetch_ctx ctx = {"p1", NULL, "PractitionerRole/r9"};
    char out[200];
    CHECK(serve_prefetch_expand("Condition?patient={{context.patientId}}&x=1", &ctx, out, sizeof out) == 0);
    CHECK_EQ_STR(out, "Condition?patient=p1&x=1");
    CHECK(serve_prefetch_expand("PractitionerRole/{{userPractitionerRoleId}}", &ctx, out, sizeof out) == 0);
    CHECK_EQ_STR(out, "PractitionerRole/r9");
    CHECK(serve_prefetch_expand("Practitioner/{{userPractitionerId}}", &ctx, out, sizeof out) == -1);
    CHECK(serve_prefetch_expand("Encounter/{{context.encounterId}}", &ctx, out, sizeof out) == -1);
    const char *read = "Patient/{{context.patientId}}", *search = "Condition?patient={{context.patientId}}";
    const char *counted = "Observation?patient={{context.patientId}}&_count=500";
    cJSON *null = cJSON_CreateNull();
    cJSON *oo = cJSON_Parse("{\"resourceType\":\"OperationOutcome\",\"issue\":[{\"severity\":\"error\"}]}");
    cJSON *paged = cJSON_Parse("{\"resourceType\":\"Bundle\",\"type\":\"searchset\",\"link\":[{\"relation\":"
                               "\"next\",\"url\":\"https://f/Condition?page=2\"}],\"entry\":[]}");
    cJSON *warn = cJSON_Parse("{\"resourceType\":\"Bundle\",\"type\":\"searchset\",\"entry\":[{\"resource\":"
                              "{\"resourceType\":\"OperationOutcome\",\"issue\":[{\"severity\":\"warning\"}]}}]}");
    cJSON *err = cJSON_Parse("{\"resourceType\":\"Bundle\",\"type\":\"searchset\",\"entry\":[{\"resource\":"
                             "{\"resourceType\":\"OperationOutcome\",\"issue\":[{\"severity\":\"error\"}]}}]}");
    cJSON *pat = cJSON_Parse("{\"resourceType\":\"Patient\",\"id\":\"p1\"}");
    CHECK_EQ_INT(serve_prefetch_state(NULL, search, NULL), SERVE_PF_MISSING);
    CHECK_EQ_INT(serve_prefetch_state(null, search, NULL), SERVE_PF_EMPTY);
    CHECK_EQ_INT(serve_prefetch_state(null, read, NULL), SERVE_PF_MISSING);
    CHECK_EQ_INT(serve_prefetch_state(oo, search, NULL), SERVE_PF_MISSING);
    CHECK_EQ_INT(serve_prefetch_state(oo, read, NULL), SERVE_PF_MISSING);
    CHECK_EQ_INT(serve_prefetch_state(paged, search, NULL), SERVE_PF_MISSING);
    CHECK_EQ_INT(serve_prefetch_state(paged, counted, NULL), SERVE_PF_OK);
    CHECK_EQ_INT(serve_prefetch_state(warn, search, NULL), SERVE_PF_OK);
    CHECK_EQ_INT(serve_prefetch_state(err, search, NULL), SERVE_PF_MISSING);
    CHECK_EQ_INT(serve_prefetch_state(pat, read, NULL), SERVE_PF_OK);
    cJSON_Delete(null);
    cJSON_Delete(oo);
    cJSON_Delete(paged);
    cJSON_Delete(warn);
    cJSON_Delete(err);
    cJSON_Delete(pat);
}

/* Item 10 (escaping part): a value reaches the log as one printable token. */
static void test_log_escape(void) {
    char out[256];
    serve_log_escape("jwt:https://ehr|a\n2026-01-01T00:00:00.000Z POST / 200 \"x\\\x7f\xc3\xa9", out,
                     sizeof out);
    CHECK(strchr(out, '\n') == NULL);
    CHECK_EQ_STR(out, "jwt:https://ehr|a\\x0a2026-01-01T00:00:00.000Z POST / 200 \\x22x\\x5c\\x7f"
                      "\\xc3\\xa9");
    serve_log_escape("abc", out, 3); /* truncated, still terminated */
    CHECK(strlen(out) < 3);
}

static void test_api_keys(void) {
    unsigned char key[SERVE_SECRET_BYTES];
    char sp[4096];
    fresh_secret("keys.key", key, sp, sizeof sp);
    serve_db *db;
    cf_err err = {0};
    REQUIRE(serve_db_open(&db, ":memory:", key, &err) == CF_OK);
    char tok[SERVE_TOKEN_LEN + 1], id[SERVE_KEY_ID_LEN + 1], id2[SERVE_KEY_ID_LEN + 1], role[16];
    REQUIRE(serve_db_key_create(db, "ward 3", "clinician", 0, "test", tok, id, &err) == CF_OK);
    CHECK_EQ_INT(strlen(tok), SERVE_TOKEN_LEN);
    int64_t now = 1800000000000000LL;
    CHECK_EQ_INT(serve_db_key_check(db, tok, now, id2, role), 1);
    CHECK_EQ_STR(id2, id);
    CHECK_EQ_STR(role, "clinician");
    /* the stored hash is not the token, nor contains its secret */
    sqlite3_stmt *st;
    sqlite3_prepare_v2(serve_db_handle(db), "SELECT hash FROM api_keys", -1, &st, NULL);
    REQUIRE(sqlite3_step(st) == SQLITE_ROW);
    CHECK(strstr(tok, (const char *)sqlite3_column_text(st, 0)) == NULL);
    sqlite3_finalize(st);
    char bad[SERVE_TOKEN_LEN + 1];
    memcpy(bad, tok, sizeof bad);
    bad[SERVE_TOKEN_LEN - 1] = bad[SERVE_TOKEN_LEN - 1] == '0' ? '1' : '0';
    CHECK_EQ_INT(serve_db_key_check(db, bad, now, id2, role), 0);
    CHECK_EQ_INT(serve_db_key_check(db, "cfk_short", now, id2, role), 0);
    CHECK(serve_db_key_create(db, "x", "superuser", 0, "test", bad, id2, &err) == CF_EINPUT);
    REQUIRE(serve_db_key_revoke(db, id, "test", &err) == CF_OK);
    CHECK_EQ_INT(serve_db_key_check(db, tok, now, id2, role), 0);
    CHECK(serve_db_key_revoke(db, id, "test", &err) == CF_EINPUT);
    REQUIRE(serve_db_key_create(db, "temp", "service", now + 1000, "test", tok, id, &err) == CF_OK);
    CHECK_EQ_INT(serve_db_key_check(db, tok, now, id2, role), 1);
    CHECK_EQ_INT(serve_db_key_check(db, tok, now + 1000, id2, role), 0); /* expired */
    serve_db_close(db);
}

static void test_config_errors(void) {
    serve_config c;
    cf_err err = {0};
    const char *bad[][2] = {
        {"{\"tasks\":[{\"id\":\"a\"}],\"services\":[{\"id\":\"s\",\"hook\":\"patient-view\","
         "\"tasks\":[\"a\"]}],\"limits\":{\"max_body\":5}}", "limits.max_body: unknown key"},
        {"{\"tasks\":[{\"id\":\"a\",\"warning\":0.6,\"critical\":0.3}],\"services\":[]}",
         "warning must not exceed critical"},
        {"{\"tasks\":[{\"id\":\"a\"}],\"services\":[{\"id\":\"s\",\"hook\":\"order-sign\","
         "\"tasks\":[\"a\"]}]}", "services[0].hook"},
        {"{\"tasks\":[{\"id\":\"a\"}],\"services\":[{\"id\":\"s\",\"hook\":\"patient-view\","
         "\"tasks\":[\"b\"]}]}", "services[0].tasks[0]"},
        {"{\"tasks\":[{\"id\":\"a\"}],\"services\":[{\"id\":\"s\",\"hook\":\"patient-view\","
         "\"tasks\":[\"a\"]}],\"base_url\":\"ftp://x\"}", "base_url"},
        /* item 15: empty values where CDS Hooks forbids them */
        {"{\"tasks\":[{\"id\":\"a\"}],\"services\":[{\"id\":\"s\",\"hook\":\"patient-view\","
         "\"title\":\"\",\"tasks\":[\"a\"]}]}", "services[0].title: expected a non-empty string"},
        {"{\"tasks\":[{\"id\":\"a\"}],\"services\":[{\"id\":\"s\",\"hook\":\"patient-view\","
         "\"description\":\"\",\"tasks\":[\"a\"]}]}", "services[0].description: expected a non-empty"},
        {"{\"tasks\":[{\"id\":\"a\",\"title\":\"\"}],\"services\":[{\"id\":\"s\",\"hook\":"
         "\"patient-view\",\"tasks\":[\"a\"]}]}", "tasks[0].title: expected a non-empty"},
        {"{\"tasks\":[{\"id\":\"a\"}],\"services\":[{\"id\":\"s\",\"hook\":\"patient-view\","
         "\"tasks\":[\"a\"]}],\"override_reasons\":[]}", "override_reasons: expected a non-empty"},
        {"{\"tasks\":[{\"id\":\"a\"}],\"services\":[{\"id\":\"s\",\"hook\":\"patient-view\","
         "\"tasks\":[\"a\"]}],\"override_reasons\":[{\"code\":\"x\",\"display\":\"\"}]}",
         "override_reasons[0].display"},
        {"{\"tasks\":[{\"id\":\"a\"}],\"services\":[{\"id\":\"s\",\"hook\":\"patient-view\","
         "\"tasks\":[\"a\"],\"prefetch\":{}}]}", "services[0].prefetch: expected a non-empty object"},
        {"{\"tasks\":[{\"id\":\"a\"}],\"services\":[{\"id\":\"s\",\"hook\":\"patient-view\","
         "\"tasks\":[\"a\"],\"prefetch\":{\"p\":\"\"}}]}", "services[0].prefetch.p"},
        {"{\"tasks\":[{\"id\":\"a\"}],\"services\":[{\"id\":\"s\",\"hook\":\"patient-view\","
         "\"tasks\":[\"a\"],\"prefetch\":{\"p\":\"Patient/{{context.patient}}\"}}]}", "unknown token"},
        {"{\"tasks\":[{\"id\":\"a\"}],\"services\":[{\"id\":\"s\",\"hook\":\"patient-view\","
         "\"tasks\":[\"a\"]}],\"cors\":{\"allowed_origins\":[\"*\"]}}", "cors.allowed_origins[0]"},
        {"{\"tasks\":[{\"id\":\"a\"}],\"services\":[{\"id\":\"s\",\"hook\":\"patient-view\","
         "\"tasks\":[\"a\"]}],\"fhir\":{\"servers\":[\"\"]}}", "fhir.servers[0]"},
        {"{\"tasks\":[{\"id\":\"a\"}],\"services\":[{\"id\":\"s\",\"hook\":\"patient-view\","
         "\"tasks\":[\"a\"]}],\"database\":\"\"}", "database: expected a non-empty"},
        {"{\"tasks\":[{\"id\":\"a\"}],\"services\":[{\"id\":\"s\",\"hook\":\"patient-view\","
         "\"tasks\":[\"a\"]}],\"auth\":{\"audiences\":[]}}", "auth.audiences: unknown key"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK(serve_config_parse(&c, bad[i][0], strlen(bad[i][0]), "/tmp", "cfg.json", &err) ==
              CF_EINPUT);
        CHECK_CONTAINS(err.msg, bad[i][1]);
        serve_config_free(&c);
    }
    serve_config ok = example_config();
    CHECK_EQ_INT(ok.n_tasks, 2);
    CHECK_EQ_INT(ok.n_services, 2);
    CHECK(ok.n_override_reasons >= 3); /* defaults */
    CHECK(cJSON_GetObjectItem(ok.services[0].prefetch, "patient") != NULL);
    serve_config_free(&ok);
}

static void test_card_cache_key_and_lru(void) {
    /* three events and one after the prediction time, which no predictor sees */
    int64_t tm[4] = {TIME_NULL, 1000000, 2000000, 9000000};
    const char *code[4] = {"GENDER//F", "LOINC//2160-0", "SNOMED//44054006", "LOINC//2160-0"};
    float val[4] = {NAN, 1.2f, NAN, 3.0f};
    const char *desc[4] = {"", "Creatinine", "Diabetes", "Creatinine"};
    serve_patient p = {.n = 4, .time = tm, .code = code, .value = val, .desc = desc, .prediction_time = 2000000};
    serve_predictor pred = {.model_name = "m", .model_version = "1", .checksum = 42};
    uint64_t h0 = serve_cache_events_hash(&p);
    serve_cache_key k0, k;
    serve_cache_key_make(&k0, &pred, "task", "patient-1", &p);
    /* what the predictor does not read: the event after the prediction time, descriptions */
    val[3] = 4.0f;
    desc[1] = "Creatinine [Mass/volume] in Serum";
    CHECK(serve_cache_events_hash(&p) == h0);
    serve_cache_key_make(&k, &pred, "task", "patient-1", &p);
    CHECK(!memcmp(&k, &k0, sizeof k));
    /* what it does read: a value, a time, a code, one more event, the prediction time */
    val[1] = 1.3f;
    CHECK(serve_cache_events_hash(&p) != h0);
    val[1] = 1.2f;
    tm[2] = 2000001;
    p.prediction_time = 2000001;
    CHECK(serve_cache_events_hash(&p) != h0);
    tm[2] = 2000000;
    p.prediction_time = 2000000;
    code[2] = "SNOMED//44054007";
    CHECK(serve_cache_events_hash(&p) != h0);
    code[2] = "SNOMED//44054006";
    CHECK(serve_cache_events_hash(&p) == h0);
    p.prediction_time = 9000000; /* the fourth event becomes visible */
    CHECK(serve_cache_events_hash(&p) != h0);
    p.prediction_time = 2000000;
    p.n = 2;
    CHECK(serve_cache_events_hash(&p) != h0);
    p.n = 4;
    /* the other parts of the key */
    serve_cache_key_make(&k, &pred, "task2", "patient-1", &p);
    CHECK(memcmp(&k, &k0, sizeof k) != 0);
    serve_cache_key_make(&k, &pred, "task", "patient-2", &p);
    CHECK(memcmp(&k, &k0, sizeof k) != 0);
    pred.checksum = 43;
    serve_cache_key_make(&k, &pred, "task", "patient-1", &p);
    CHECK(memcmp(&k, &k0, sizeof k) != 0);
    pred.checksum = 42;
    pred.model_version = "2";
    serve_cache_key_make(&k, &pred, "task", "patient-1", &p);
    CHECK(memcmp(&k, &k0, sizeof k) != 0);

    /* LRU of two: a, b; reading a makes b the oldest, so c evicts b */
    serve_cache *c;
    cf_err err = {0};
    CHECK(serve_cache_new(&c, 0, &err) == CF_EINPUT && c == NULL);
    REQUIRE(serve_cache_new(&c, 2, &err) == CF_OK);
    serve_cache_key ka, kb, kc;
    serve_cache_key_make(&ka, &pred, "t", "a", &p);
    serve_cache_key_make(&kb, &pred, "t", "b", &p);
    serve_cache_key_make(&kc, &pred, "t", "c", &p);
    serve_score sa = {.risk = 0.1}, sb = {.risk = 0.2}, sc = {.risk = 0.3}, got;
    sa.n_reasons = 1;
    sa.reason[0] = (serve_reason){2, 1, 0.05};
    CHECK(!serve_cache_get(c, &ka, &got));
    serve_cache_put(c, &ka, &sa);
    serve_cache_put(c, &kb, &sb);
    CHECK(serve_cache_get(c, &ka, &got) && !memcmp(&got, &sa, sizeof got));
    serve_cache_put(c, &kc, &sc);
    CHECK_EQ_INT(serve_cache_size(c), 2);
    CHECK(!serve_cache_get(c, &kb, &got));
    CHECK(serve_cache_get(c, &ka, &got) && got.risk == 0.1);
    CHECK(serve_cache_get(c, &kc, &got) && got.risk == 0.3);
    /* a refresh replaces the score and keeps one entry */
    sc.risk = 0.35;
    serve_cache_put(c, &kc, &sc);
    CHECK(serve_cache_get(c, &kc, &got) && got.risk == 0.35);
    CHECK_EQ_INT(serve_cache_size(c), 2);
    serve_cache_free(c);
    /* configuration: card_cache defaults to 1024, 0 turns it off, negative is refused */
    const char *base = "{\"tasks\":[{\"id\":\"a\"}],\"services\":[{\"id\":\"s\",\"hook\":\"patient-view\","
                       "\"tasks\":[\"a\"]}]%s}";
    char text[512];
    serve_config cf;
    snprintf(text, sizeof text, base, "");
    REQUIRE(serve_config_parse(&cf, text, strlen(text), "/tmp", "cfg.json", &err) == CF_OK);
    CHECK_EQ_INT(cf.card_cache, 1024);
    CHECK_EQ_INT(cf.occlusion_batch, 16);
    serve_config_free(&cf);
    snprintf(text, sizeof text, base, ",\"card_cache\":0,\"occlusion_batch\":1");
    REQUIRE(serve_config_parse(&cf, text, strlen(text), "/tmp", "cfg.json", &err) == CF_OK);
    CHECK_EQ_INT(cf.card_cache, 0);
    CHECK_EQ_INT(cf.occlusion_batch, 1);
    serve_config_free(&cf);
    snprintf(text, sizeof text, base, ",\"card_cache\":-1");
    CHECK(serve_config_parse(&cf, text, strlen(text), "/tmp", "cfg.json", &err) == CF_EINPUT);
    CHECK_CONTAINS(err.msg, "card_cache");
    serve_config_free(&cf);
}

int main(void) {
    RUN(test_ref_formula);
    RUN(test_ref_occlusion_equals_rescoring);
    RUN(test_record_prefetch_equals_store);
    RUN(test_summary_cites_record);
    RUN(test_summary_rules);
    RUN(test_jwt);
    RUN(test_rate_limit);
    RUN(test_audit_chain);
    RUN(test_audit_anchors);
    RUN(test_row_macs);
    RUN(test_file_modes);
    RUN(test_jwt_cds_hooks);
    RUN(test_client_budget);
    RUN(test_prefetch_templates);
    RUN(test_log_escape);
    RUN(test_api_keys);
    RUN(test_config_errors);
    RUN(test_card_cache_key_and_lru);
    return check_summary();
}
