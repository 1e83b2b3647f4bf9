/* Integration tests of the service over HTTP on 127.0.0.1 (any free port): discovery, both hooks
 * with prefetch from a bundled Synthea patient and from the store, feedback, authentication
 * failures (missing, expired, wrong audience, revoked, replayed, wrong role), limits (body size,
 * JSON depth, content type, rate, request timeout), the /v1 API, metrics, the card cache (a
 * repeated request is a hit with the same card, one more event a miss, every request audited),
 * and audit verification after tampering with a row. The servers run in this process and are stopped at the end; an
 * alarm ends the process if anything hangs. */
#include <regex.h>
#include <signal.h>
#include <sys/stat.h>
#include <time.h>

#include <sqlite3.h>

#include "check.h"
#include "ingest/fhir.h"
#include "serve/serve.h"
#include "serve/serve_http.h"
#include "serve/serve_record.h"
#include "serve/serve_ref.h"
#include "serve_testutil.h"

#define SMALL "synthea-fhir-r4/Lyle_Baumbach_40a23e3f-fc1e-4333-8588-c5aaa9aa7c9b.json.gz"
#define BASE "https://cds.test"

typedef struct {
    serve_config cfg;
    serve_db *db;
    serve_auth *auth;
    serve_predictor pred;
    serve_ctx *ctx;
    serve_http *http;
    int port;
} server;

static server S, SLOW;            /* the main server; one with tight limits and a slow model */
static store ST;
static char *LOG_BUF;
static size_t LOG_LEN;
static FILE *LOG;
static EVP_PKEY *EC, *RSA_KEY;
static char PID[128], ENC_ID[128], DB_PATH[4096], SECRET[4096];
static int64_t ENC_END = TIME_NULL; /* the end of encounter ENC_ID */
static char *BUNDLE_TEXT;
static char KEY_CLIN[SERVE_TOKEN_LEN + 1], KEY_SVC[SERVE_TOKEN_LEN + 1],
    KEY_REVOKED[SERVE_TOKEN_LEN + 1];
static char CARD_UUID[64];
static int jti_seq;

/* ------------------------------------------------------------------ setup */

static const serve_predictor *slow_inner;
static int slow_score(void *ctx, const serve_patient *p, const serve_task *t, serve_score *out,
                      cf_err *err) {
    struct timespec ts = {0, 30 * 1000 * 1000};
    nanosleep(&ts, NULL);
    return slow_inner->score(slow_inner->ctx, p, t, out, err);
}

static char *config_text(const char *dir, int tight) {
    char path[4096];
    snprintf(path, sizeof path, "%s/docs/serve-example.json", check_root());
    char *text = tu_read_gz(path, NULL);
    cJSON *c = cJSON_Parse(text);
    free(text);
    cJSON_ReplaceItemInObject(c, "database", cJSON_CreateString(DB_PATH));
    cJSON_ReplaceItemInObject(c, "secret_file", cJSON_CreateString(SECRET));
    cJSON_ReplaceItemInObject(c, "port", cJSON_CreateNumber(0));
    cJSON_ReplaceItemInObject(c, "base_url", cJSON_CreateString(BASE));
    cJSON *lim = cJSON_GetObjectItem(c, "limits");
    cJSON_ReplaceItemInObject(lim, "max_body_bytes", cJSON_CreateNumber(1 << 20));
    cJSON_ReplaceItemInObject(lim, "max_json_depth", cJSON_CreateNumber(32));
    cJSON_ReplaceItemInObject(lim, "burst", cJSON_CreateNumber(tight ? 2 : 100000));
    cJSON_ReplaceItemInObject(lim, "rate_per_minute", cJSON_CreateNumber(tight ? 1 : 1e6));
    cJSON_ReplaceItemInObject(lim, "request_timeout_ms", cJSON_CreateNumber(tight ? 10 : 10000));
    cJSON *iss = cJSON_GetObjectItem(cJSON_GetObjectItem(c, "auth"), "issuers");
    const char *files[] = {"ec.jwks", "rsa.jwks"};
    for (int i = 0; i < 2; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "iss", "https://ehr.test");
        cJSON_AddStringToObject(o, "jwks_file", files[i]);
        cJSON_AddItemToArray(iss, o);
    }
    /* every risk gets a card on patient-view, so the tests see cards for any patient */
    cJSON *sv = cJSON_GetArrayItem(cJSON_GetObjectItem(c, "services"), 0);
    cJSON_AddBoolToObject(sv, "show_info", 1);
    cJSON_AddBoolToObject(cJSON_GetArrayItem(cJSON_GetObjectItem(c, "services"), 1), "show_info", 1);
    char *out = cJSON_PrintUnformatted(c);
    cJSON_Delete(c);
    (void)dir;
    return out;
}

static int start(server *sv, int tight) {
    cf_err err = {0};
    char *text = config_text(check_tmpdir(), tight);
    unsigned char key[SERVE_SECRET_BYTES];
    if (serve_config_parse(&sv->cfg, text, strlen(text), check_tmpdir(), "test-config", &err) ||
        serve_secret_load(SECRET, key, &err) || serve_db_open(&sv->db, DB_PATH, key, &err) ||
        serve_auth_open(&sv->auth, &sv->cfg, &err) ||
        serve_ref_open(sv->cfg.reference_model, "ref", &sv->pred, &err)) {
        fprintf(stderr, "setup: %s\n", err.msg);
        free(text);
        return -1;
    }
    free(text);
    serve_predictor *p = &sv->pred;
    static serve_predictor slow;
    if (tight) {
        slow_inner = &S.pred;
        slow = S.pred;
        slow.score = slow_score;
        p = &slow;
    }
    serve_setup setup = {&sv->cfg, &ST, p, sv->db, sv->auth, LOG};
    serve_http_options ho = serve_http_options_of(&sv->cfg);
    ho.port = 0;
    ho.connection_timeout_s = 5;
    ho.max_connections = 100;
    if (serve_ctx_new(&sv->ctx, &setup, &err) || serve_http_start(&sv->http, sv->ctx, &ho, &err)) {
        fprintf(stderr, "start: %s\n", err.msg);
        return -1;
    }
    sv->port = serve_http_port(sv->http);
    return 0;
}

static void stop(server *sv) {
    serve_http_stop(sv->http);
    serve_ctx_free(sv->ctx);
    if (sv->pred.close) sv->pred.close(sv->pred.ctx);
    serve_auth_close(sv->auth);
    serve_db_close(sv->db);
    serve_config_free(&sv->cfg);
}

static int setup(void) {
    cf_err err = {0};
    const char *tmp = check_tmpdir();
    snprintf(DB_PATH, sizeof DB_PATH, "%s/serve.db", tmp);
    snprintf(SECRET, sizeof SECRET, "%s/serve.key", tmp);
    unlink(DB_PATH);
    unlink(SECRET);
    if (serve_secret_generate(SECRET, &err)) return -1;
    EC = tu_key_ec();
    RSA_KEY = tu_key_rsa();
    char *j1 = tu_jwks(EC, "ec1"), *j2 = tu_jwks(RSA_KEY, "rsa1"), p[4096];
    snprintf(p, sizeof p, "%s/ec.jwks", tmp);
    FILE *f = fopen(p, "w");
    fputs(j1, f);
    fclose(f);
    snprintf(p, sizeof p, "%s/rsa.jwks", tmp);
    f = fopen(p, "w");
    fputs(j2, f);
    fclose(f);
    free(j1);
    free(j2);
    /* the store holds the same patient */
    char sp[4096], bp[4096];
    snprintf(sp, sizeof sp, "%s/small.store", tmp);
    snprintf(bp, sizeof bp, "%s", check_data_or_exit(SMALL));
    store_writer *w;
    ingest_report rep;
    ingest_report_init(&rep, 0);
    fhir_options fo = {.strict = 0};
    if (store_writer_open(&w, sp, NULL, &err) || fhir_ingest(bp, w, &rep, &fo, &err) ||
        store_writer_finish(w, &err) || store_open(&ST, sp, &err)) {
        fprintf(stderr, "store: %s\n", err.msg);
        return -1;
    }
    ingest_report_free(&rep);
    BUNDLE_TEXT = tu_read_gz(bp, NULL);
    LOG = open_memstream(&LOG_BUF, &LOG_LEN);
    if (start(&S, 0) || start(&SLOW, 1)) return -1;
    /* API keys */
    char id[SERVE_KEY_ID_LEN + 1];
    if (serve_db_key_create(S.db, "ward", "clinician", 0, "test", KEY_CLIN, id, &err) ||
        serve_db_key_create(S.db, "monitoring", "service", 0, "test", KEY_SVC, id, &err) ||
        serve_db_key_create(S.db, "old", "clinician", 0, "test", KEY_REVOKED, id, &err) ||
        serve_db_key_revoke(S.db, id, "test", &err))
        return -1;
    return 0;
}

/* ------------------------------------------------------------------ request helpers */

static char *jwt_for(EVP_PKEY *k, const char *alg, const char *aud, long exp_in, const char *jti) {
    char pl[1024], jbuf[64];
    if (!jti) {
        snprintf(jbuf, sizeof jbuf, "jti-%d-%ld", ++jti_seq, (long)time(NULL));
        jti = jbuf;
    }
    long now = (long)time(NULL);
    snprintf(pl, sizeof pl,
             "{\"iss\":\"https://ehr.test\",\"sub\":\"ehr-client\",\"aud\":\"%s\",\"exp\":%ld,"
             "\"iat\":%ld,\"jti\":\"%s\"}",
             aud, now + exp_in, now, jti);
    return tu_jwt(k, alg, EVP_PKEY_is_a(k, "EC") ? "ec1" : "rsa1", pl);
}

static tu_resp call(int port, const char *method, const char *path, const char *token,
                    const char *body) {
    char h[10000] = "";
    if (token) snprintf(h, sizeof h, "Authorization: Bearer %s\r\n", token);
    return tu_http(port, method, path, h, body, body ? strlen(body) : 0);
}

static char *hook_body(const char *hook, int with_prefetch, int with_encounter) {
    cJSON *b = cJSON_CreateObject();
    cJSON_AddStringToObject(b, "hookInstance", "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea");
    cJSON_AddStringToObject(b, "hook", hook);
    cJSON *ctx = cJSON_AddObjectToObject(b, "context");
    cJSON_AddStringToObject(ctx, "userId", "Practitioner/example");
    cJSON_AddStringToObject(ctx, "patientId", PID);
    if (with_encounter) cJSON_AddStringToObject(ctx, "encounterId", ENC_ID);
    if (with_prefetch) {
        char pid[128];
        cJSON_AddItemToObject(b, "prefetch", tu_prefetch(BUNDLE_TEXT, pid, sizeof pid));
    }
    char *s = cJSON_PrintUnformatted(b);
    cJSON_Delete(b);
    return s;
}

/* POSTs a hook_body(hook, with_prefetch, with_encounter) request to the service at path with a
 * fresh JWT signed by k for that service's audience. */
static tu_resp post_hook(EVP_PKEY *k, const char *alg, const char *path, const char *hook,
                         int with_prefetch, int with_encounter) {
    char aud[256];
    snprintf(aud, sizeof aud, BASE "%s", path);
    char *tok = jwt_for(k, alg, aud, 120, NULL);
    char *body = hook_body(hook, with_prefetch, with_encounter);
    tu_resp r = call(S.port, "POST", path, tok, body);
    free(tok);
    free(body);
    return r;
}

/* The status of a POST of body to path by the clinician key. */
static int post_status(const char *path, const char *body) {
    tu_resp r = call(S.port, "POST", path, KEY_CLIN, body);
    int status = r.status;
    tu_resp_free(&r);
    return status;
}

/* A string field of the first card of a cards array. */
static const char *card0_str(const cJSON *cards, const char *field) {
    return cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(cards, 0), field));
}

static cJSON *body_json(const tu_resp *r) { return r->body ? cJSON_Parse(r->body) : NULL; }

static const char *err_code(const tu_resp *r) {
    static char code[64];
    cJSON *j = body_json(r);
    snprintf(code, sizeof code, "%s",
             j && cJSON_GetStringValue(cJSON_GetObjectItem(j, "error"))
                 ? cJSON_GetStringValue(cJSON_GetObjectItem(j, "error"))
                 : "(none)");
    if (j && !cJSON_GetStringValue(cJSON_GetObjectItem(j, "detail"))) snprintf(code, sizeof code, "(no detail)");
    cJSON_Delete(j);
    return code;
}

/* ------------------------------------------------------------------ tests */

static void test_discovery_and_health(void) {
    tu_resp r = call(S.port, "GET", "/cds-services", NULL, NULL);
    REQUIRE_EQ_INT(r.status, 200);
    cJSON *j = body_json(&r);
    const cJSON *svcs = cJSON_GetObjectItem(j, "services");
    CHECK_EQ_INT(cJSON_GetArraySize(svcs), 2);
    const cJSON *s0 = cJSON_GetArrayItem(svcs, 0);
    CHECK_EQ_STR(cJSON_GetStringValue(cJSON_GetObjectItem(s0, "hook")), "patient-view");
    CHECK_EQ_STR(cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(s0, "prefetch"), "patient")),
                 "Patient/{{context.patientId}}");
    CHECK_EQ_STR(cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(svcs, 1), "hook")),
                 "encounter-discharge");
    cJSON_Delete(j);
    tu_resp_free(&r);
    r = call(S.port, "GET", "/healthz", NULL, NULL);
    CHECK_EQ_INT(r.status, 200);
    CHECK_CONTAINS(r.body, "\"status\":\"ok\"");
    tu_resp_free(&r);
}

/* Risk of the patient computed directly at prediction time pt (TIME_NULL: the last event), for
 * comparison with what the service says. */
static double direct_risk_at(const char *task_id, int64_t pt) {
    char pid[128];
    cJSON *pf = tu_prefetch(BUNDLE_TEXT, pid, sizeof pid);
    const cJSON *vals[32];
    const char *names[32];
    size_t n = 0;
    const cJSON *v;
    cJSON_ArrayForEach(v, pf) {
        vals[n] = v;
        names[n++] = v->string;
    }
    serve_record rec;
    serve_record_init(&rec);
    cf_err err = {0};
    serve_score sc = {0};
    if (!serve_record_from_fhir(&rec, vals, names, n, pid, pt, &err))
        S.pred.score(S.pred.ctx, &rec.p, serve_config_task(&S.cfg, task_id), &sc, &err);
    serve_record_free(&rec);
    cJSON_Delete(pf);
    return sc.risk;
}

static double direct_risk(const char *task_id) { return direct_risk_at(task_id, TIME_NULL); }

static void check_card(const cJSON *card, double want_risk) {
    const char *summary = cJSON_GetStringValue(cJSON_GetObjectItem(card, "summary"));
    const char *ind = cJSON_GetStringValue(cJSON_GetObjectItem(card, "indicator"));
    const char *detail = cJSON_GetStringValue(cJSON_GetObjectItem(card, "detail"));
    const char *label = cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(card, "source"), "label"));
    REQUIRE(summary && ind && detail && label);
    CHECK(strlen(summary) < 140);
    CHECK(!strcmp(ind, "info") || !strcmp(ind, "warning") || !strcmp(ind, "critical"));
    CHECK_CONTAINS(label, "2026.11-illustrative"); /* the model version is the source */
    CHECK(cJSON_GetObjectItem(card, "suggestions") == NULL); /* never an action */
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(card, "overrideReasons")) >= 3);
    char pctb[32];
    double p = want_risk * 100;
    if (p < 10) snprintf(pctb, sizeof pctb, ": %.1f%% risk", p);
    else snprintf(pctb, sizeof pctb, ": %.0f%% risk", p);
    CHECK_CONTAINS(summary, pctb);
    /* the detail names the patient's own events with their dates */
    regex_t re;
    regcomp(&re, "\n- [0-9]{4}-[0-9]{2}-[0-9]{2}: ", REG_EXTENDED);
    CHECK(regexec(&re, detail, 0, NULL, 0) == 0);
    regfree(&re);
    CHECK_CONTAINS(detail, "percentage points");
    CHECK_CONTAINS(detail, "does not order");
}

static void test_patient_view_prefetch_and_store(void) {
    const char *pv = "/cds-services/clinfm-patient-view";
    tu_resp r = post_hook(EC, "ES384", pv, "patient-view", 1, 0);
    REQUIRE_EQ_INT(r.status, 200);
    cJSON *j = body_json(&r);
    const cJSON *cards = cJSON_GetObjectItem(j, "cards");
    REQUIRE_EQ_INT(cJSON_GetArraySize(cards), 1);
    double risk = direct_risk("mortality_1y");
    CHECK(risk > 0 && risk < 1);
    check_card(cJSON_GetArrayItem(cards, 0), risk);
    snprintf(CARD_UUID, sizeof CARD_UUID, "%s", card0_str(cards, "uuid"));
    CHECK_EQ_INT(strlen(CARD_UUID), 36);
    char *summary1 = strdup(card0_str(cards, "summary"));
    cJSON_Delete(j);
    tu_resp_free(&r);
    /* no prefetch: the same patient from the store gives the same card */
    r = post_hook(EC, "ES384", pv, "patient-view", 0, 0);
    REQUIRE_EQ_INT(r.status, 200);
    j = body_json(&r);
    cards = cJSON_GetObjectItem(j, "cards");
    REQUIRE_EQ_INT(cJSON_GetArraySize(cards), 1);
    CHECK_EQ_STR(card0_str(cards, "summary"), summary1);
    cJSON_Delete(j);
    tu_resp_free(&r);
    free(summary1);
    /* an unknown patient without prefetch: found nowhere, so 412 (CDS Hooks), never an empty
     * answer an EHR would show as "no risk" */
    char save[128];
    snprintf(save, sizeof save, "%s", PID);
    snprintf(PID, sizeof PID, "unknown-patient-1");
    r = post_hook(EC, "ES384", pv, "patient-view", 0, 0);
    CHECK_EQ_INT(r.status, 412);
    CHECK_EQ_STR(err_code(&r), "precondition_failed");
    tu_resp_free(&r);
    snprintf(PID, sizeof PID, "%s", save);
}

static void test_discharge(void) {
    const char *dc = "/cds-services/clinfm-discharge";
    tu_resp r = post_hook(RSA_KEY, "RS384", dc, "encounter-discharge", 1, 1);
    REQUIRE_EQ_INT(r.status, 200);
    cJSON *j = body_json(&r);
    const cJSON *cards = cJSON_GetObjectItem(j, "cards");
    REQUIRE_EQ_INT(cJSON_GetArraySize(cards), 1);
    /* scored at that encounter's discharge, not at the record's last event */
    REQUIRE(ENC_END != TIME_NULL);
    check_card(cJSON_GetArrayItem(cards, 0), direct_risk_at("readmission_30d", ENC_END));
    CHECK_CONTAINS(card0_str(cards, "summary"), "30-day readmission");
    cJSON_Delete(j);
    tu_resp_free(&r);
    /* encounter-discharge needs encounterId; the hook name must match the service */
    r = post_hook(RSA_KEY, "RS384", dc, "encounter-discharge", 1, 0);
    CHECK_EQ_INT(r.status, 400);
    CHECK_CONTAINS(r.body, "encounterId");
    tu_resp_free(&r);
    char *body = hook_body("patient-view", 0, 1);
    r = call(S.port, "POST", dc, KEY_CLIN, body);
    CHECK_EQ_INT(r.status, 400);
    CHECK_EQ_STR(err_code(&r), "bad_request");
    tu_resp_free(&r);
    free(body);
}

static void test_feedback(void) {
    REQUIRE(CARD_UUID[0]);
    char body[2048];
    snprintf(body, sizeof body,
             "{\"feedback\":[{\"card\":\"%s\",\"outcome\":\"accepted\",\"outcomeTimestamp\":"
             "\"2026-11-22T10:00:00Z\"}]}", CARD_UUID);
    /* the audience of a feedback call is the feedback endpoint (CDS Hooks: the URL invoked) */
    char *tok = jwt_for(EC, "ES384", BASE "/cds-services/clinfm-patient-view", 120, NULL);
    tu_resp r = call(S.port, "POST", "/cds-services/clinfm-patient-view/feedback", tok, body);
    CHECK_EQ_INT(r.status, 401);
    CHECK_CONTAINS(r.body, "audience");
    tu_resp_free(&r);
    free(tok);
    tok = jwt_for(EC, "ES384", BASE "/cds-services/clinfm-patient-view/feedback", 120, NULL);
    r = call(S.port, "POST", "/cds-services/clinfm-patient-view/feedback", tok, body);
    CHECK_EQ_INT(r.status, 200);
    CHECK_CONTAINS(r.body, "\"recorded\":1");
    tu_resp_free(&r);
    free(tok);
    snprintf(body, sizeof body,
             "{\"feedback\":[{\"card\":\"%s\",\"outcome\":\"overridden\",\"overrideReason\":{"
             "\"reason\":{\"system\":\"urn:clinfm:override-reason\",\"code\":\"not-relevant\"},"
             "\"userComment\":\"seen by cardiology\"},\"outcomeTimestamp\":\"2026-11-22T10:01:00Z\"}]}",
             CARD_UUID);
    CHECK_EQ_INT(post_status("/cds-services/clinfm-patient-view/feedback", body), 200);
    /* a reason that is not one of the card's override reasons */
    snprintf(body, sizeof body,
             "{\"feedback\":[{\"card\":\"%s\",\"outcome\":\"overridden\",\"overrideReason\":{"
             "\"reason\":{\"code\":\"because\"}},\"outcomeTimestamp\":\"2026-11-22T10:01:00Z\"}]}",
             CARD_UUID);
    CHECK_EQ_INT(post_status("/cds-services/clinfm-patient-view/feedback", body), 400);
    /* a card this service never issued, and one issued by the other service */
    snprintf(body, sizeof body,
             "{\"feedback\":[{\"card\":\"00000000-0000-4000-8000-000000000000\",\"outcome\":"
             "\"accepted\",\"outcomeTimestamp\":\"2026-11-22T10:01:00Z\"}]}");
    CHECK_EQ_INT(post_status("/cds-services/clinfm-patient-view/feedback", body), 404);
    snprintf(body, sizeof body,
             "{\"feedback\":[{\"card\":\"%s\",\"outcome\":\"accepted\",\"outcomeTimestamp\":"
             "\"2026-11-22T10:00:00Z\"}]}", CARD_UUID);
    CHECK_EQ_INT(post_status("/cds-services/clinfm-discharge/feedback", body), 404);
    /* the export joins feedback with the card */
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    cf_err err = {0};
    CHECK(serve_db_feedback_export(S.db, f, 0, 0, &err) == CF_OK);
    fclose(f);
    CHECK_CONTAINS(out, "accepted");
    CHECK_CONTAINS(out, "not-relevant");
    CHECK_CONTAINS(out, "mortality_1y");
    CHECK(strstr(out, "cardiology") == NULL); /* comments only on request */
    free(out);
}

static void test_auth_failures(void) {
    char *body = hook_body("patient-view", 0, 0);
    const char *path = "/cds-services/clinfm-patient-view";
    tu_resp r = call(S.port, "POST", path, NULL, body);
    CHECK_EQ_INT(r.status, 401);
    CHECK_CONTAINS(r.headers, "WWW-Authenticate: Bearer");
    CHECK_EQ_STR(err_code(&r), "unauthorized");
    tu_resp_free(&r);
    struct {
        char *tok;
        const char *why;
    } cases[] = {
        {jwt_for(EC, "ES384", BASE "/cds-services/clinfm-patient-view", -600, NULL), "expired"},
        {jwt_for(EC, "ES384", "https://elsewhere.test/cds-services/clinfm-patient-view", 120, NULL),
         "audience"},
        {jwt_for(EC, "ES384", BASE "/cds-services/clinfm-discharge", 120, NULL), "audience"},
        {strdup(KEY_REVOKED), "revoked"},
        {strdup("cfk_0123456789abcdef_00"), "unknown"},
        {strdup("eyJhbGciOiJub25lIn0.e30."), "JWT"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        r = call(S.port, "POST", path, cases[i].tok, body);
        CHECK_EQ_INT(r.status, 401);
        CHECK_CONTAINS(r.body, cases[i].why);
        tu_resp_free(&r);
        free(cases[i].tok);
    }
    /* replay: the same token twice */
    char *tok = jwt_for(EC, "ES384", BASE "/cds-services/clinfm-patient-view", 120, "fixed-jti");
    r = call(S.port, "POST", path, tok, body);
    CHECK_EQ_INT(r.status, 200);
    tu_resp_free(&r);
    r = call(S.port, "POST", path, tok, body);
    CHECK_EQ_INT(r.status, 401);
    CHECK_CONTAINS(r.body, "already used");
    tu_resp_free(&r);
    free(tok);
    /* roles: EHR JWTs only on CDS routes; clinicians not on /metrics */
    tok = jwt_for(EC, "ES384", BASE "/cds-services", 120, NULL);
    r = call(S.port, "GET", "/v1/tasks", tok, NULL);
    CHECK_EQ_INT(r.status, 401);
    CHECK_CONTAINS(r.body, "CDS Hooks routes only");
    tu_resp_free(&r);
    free(tok);
    r = call(S.port, "GET", "/metrics", KEY_CLIN, NULL);
    CHECK_EQ_INT(r.status, 403);
    tu_resp_free(&r);
    r = call(S.port, "GET", "/metrics", NULL, NULL);
    CHECK_EQ_INT(r.status, 401);
    tu_resp_free(&r);
    free(body);
}

static void test_limits(void) {
    const char *path = "/cds-services/clinfm-patient-view";
    /* body larger than max_body_bytes (1 MiB) */
    size_t big = (1 << 20) + 100;
    char *b = malloc(big + 1);
    memset(b, ' ', big);
    b[0] = '{';
    b[big - 1] = '}';
    b[big] = '\0';
    tu_resp r = call(S.port, "POST", path, KEY_CLIN, b);
    CHECK_EQ_INT(r.status, 413);
    CHECK_EQ_STR(err_code(&r), "payload_too_large");
    tu_resp_free(&r);
    free(b);
    /* nesting deeper than 32 */
    char deep[200] = "{\"a\":";
    for (int i = 0; i < 40; i++) strcat(deep, "[");
    for (int i = 0; i < 40; i++) strcat(deep, "]");
    strcat(deep, "}");
    r = call(S.port, "POST", path, KEY_CLIN, deep);
    CHECK_EQ_INT(r.status, 400);
    CHECK_CONTAINS(r.body, "max_json_depth");
    tu_resp_free(&r);
    r = call(S.port, "POST", path, KEY_CLIN, "{\"hook\": ");
    CHECK_EQ_INT(r.status, 400);
    CHECK_CONTAINS(r.body, "not valid JSON");
    tu_resp_free(&r);
    char h[256];
    snprintf(h, sizeof h, "Authorization: Bearer %s\r\nContent-Type: text/plain\r\n", KEY_CLIN);
    r = tu_http(S.port, "POST", "/v1/risk", h, "x", 1);
    CHECK_EQ_INT(r.status, 415);
    tu_resp_free(&r);
    r = call(S.port, "GET", "/nowhere", KEY_CLIN, NULL);
    CHECK_EQ_INT(r.status, 404);
    CHECK_EQ_STR(err_code(&r), "not_found");
    tu_resp_free(&r);
    r = call(S.port, "GET", path, KEY_CLIN, NULL);
    CHECK_EQ_INT(r.status, 405);
    tu_resp_free(&r);
    /* the tight server: a model slower than request_timeout_ms, then the rate limit (burst 2) */
    char *body = hook_body("patient-view", 0, 0);
    r = call(SLOW.port, "POST", path, KEY_CLIN, body);
    CHECK_EQ_INT(r.status, 503);
    CHECK_CONTAINS(r.body, "request_timeout_ms");
    tu_resp_free(&r);
    r = call(SLOW.port, "GET", "/v1/tasks", KEY_CLIN, NULL);
    CHECK_EQ_INT(r.status, 200);
    tu_resp_free(&r);
    r = call(SLOW.port, "GET", "/v1/tasks", KEY_CLIN, NULL);
    CHECK_EQ_INT(r.status, 429);
    CHECK_CONTAINS(r.headers, "Retry-After:");
    CHECK_EQ_STR(err_code(&r), "too_many_requests");
    tu_resp_free(&r);
    r = call(SLOW.port, "GET", "/v1/tasks", KEY_SVC, NULL); /* another key has its own budget */
    CHECK_EQ_INT(r.status, 200);
    tu_resp_free(&r);
    free(body);
}

static void strip_event_index(cJSON *j) {
    cJSON *c;
    if (cJSON_IsObject(j)) cJSON_DeleteItemFromObject(j, "event");
    cJSON_ArrayForEach(c, j) strip_event_index(c);
}

static void test_v1(void) {
    /* a FHIR transaction Bundle (urn:uuid references) posted as is */
    tu_resp r = call(S.port, "POST", "/v1/risk", KEY_CLIN, BUNDLE_TEXT);
    REQUIRE_EQ_INT(r.status, 200);
    cJSON *j = body_json(&r);
    const cJSON *preds = cJSON_GetObjectItem(j, "predictions");
    CHECK_EQ_INT(cJSON_GetArraySize(preds), 2);
    double bundle_risk = -1;
    const cJSON *p;
    cJSON_ArrayForEach(p, preds) {
        double risk = cJSON_GetNumberValue(cJSON_GetObjectItem(p, "risk"));
        const cJSON *iv = cJSON_GetObjectItem(p, "interval95");
        CHECK(cJSON_GetNumberValue(cJSON_GetArrayItem(iv, 0)) <= risk);
        CHECK(risk <= cJSON_GetNumberValue(cJSON_GetArrayItem(iv, 1)));
        if (!strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(p, "task")), "mortality_1y")) {
            bundle_risk = risk;
            CHECK_NEAR(risk, direct_risk("mortality_1y"), 1e-4);
        }
        const cJSON *rs = cJSON_GetObjectItem(p, "reasons");
        const cJSON *x;
        cJSON_ArrayForEach(x, rs) {
            CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(x, "contribution")) > 0);
            CHECK(cJSON_GetObjectItem(cJSON_GetObjectItem(x, "latest_event"), "time") != NULL);
        }
    }
    cJSON_Delete(j);
    tu_resp_free(&r);
    char path[512];
    snprintf(path, sizeof path, "/v1/patients/%s/risk?task=mortality_1y", PID);
    r = call(S.port, "GET", path, KEY_SVC, NULL);
    REQUIRE_EQ_INT(r.status, 200);
    j = body_json(&r);
    preds = cJSON_GetObjectItem(j, "predictions");
    CHECK_EQ_INT(cJSON_GetArraySize(preds), 1);
    CHECK_NEAR(cJSON_GetNumberValue(cJSON_GetObjectItem(cJSON_GetArrayItem(preds, 0), "risk")),
               bundle_risk, 1e-9);
    cJSON_Delete(j);
    tu_resp_free(&r);
    snprintf(path, sizeof path, "/v1/patients/%s/risk?task=nope", PID);
    r = call(S.port, "GET", path, KEY_CLIN, NULL);
    CHECK_EQ_INT(r.status, 404);
    tu_resp_free(&r);
    r = call(S.port, "GET", "/v1/patients/nobody/risk", KEY_CLIN, NULL);
    CHECK_EQ_INT(r.status, 404);
    tu_resp_free(&r);
    char body[256];
    snprintf(body, sizeof body, "{\"patientId\":\"%s\"}", PID);
    r = call(S.port, "POST", "/v1/summary", KEY_CLIN, body);
    CHECK_EQ_INT(r.status, 200);
    j = body_json(&r);
    CHECK(cJSON_IsArray(cJSON_GetObjectItem(j, "problems")));
    CHECK(cJSON_IsArray(cJSON_GetObjectItem(j, "medications")));
    CHECK(cJSON_IsArray(cJSON_GetObjectItem(j, "labs")));
    CHECK(cJSON_IsArray(cJSON_GetObjectItem(j, "admissions")));
    cJSON_Delete(j);
    tu_resp_free(&r);
    snprintf(path, sizeof path, "/v1/patients/%s/summary", PID);
    tu_resp r2 = call(S.port, "GET", path, KEY_CLIN, NULL);
    CHECK_EQ_INT(r2.status, 200);
    tu_resp r3 = call(S.port, "POST", "/v1/summary", KEY_CLIN, BUNDLE_TEXT);
    CHECK_EQ_INT(r3.status, 200);
    /* the same record from the store and from the bundle summarises identically */
    cJSON *a = body_json(&r2), *b = body_json(&r3);
    cJSON_DeleteItemFromObject(a, "source");
    cJSON_DeleteItemFromObject(b, "source");
    strip_event_index(a); /* events at the same instant may be numbered differently */
    strip_event_index(b);
    char *sa = cJSON_PrintUnformatted(a), *sb = cJSON_PrintUnformatted(b);
    CHECK(sa && sb && !strcmp(sa, sb));
    if (getenv("SERVE_TEST_DUMP")) {
        FILE *f1 = fopen("/tmp/sa.json", "w"), *f2 = fopen("/tmp/sb.json", "w");
        fputs(sa, f1);
        fputs(sb, f2);
        fclose(f1);
        fclose(f2);
    }
    free(sa);
    free(sb);
    cJSON_Delete(a);
    cJSON_Delete(b);
    tu_resp_free(&r2);
    tu_resp_free(&r3);
    r = call(S.port, "GET", "/v1/tasks", KEY_CLIN, NULL);
    CHECK_EQ_INT(r.status, 200);
    CHECK_CONTAINS(r.body, "readmission_30d");
    tu_resp_free(&r);
    r = call(S.port, "GET", "/metrics", KEY_SVC, NULL);
    CHECK_EQ_INT(r.status, 200);
    CHECK_CONTAINS(r.headers, "text/plain");
    CHECK_CONTAINS(r.body, "clinfm_http_requests_total{route=\"/cds-services/{id}\",status=\"200\"}");
    CHECK_CONTAINS(r.body, "clinfm_http_requests_total{route=\"/cds-services/{id}\",status=\"401\"}");
    CHECK_CONTAINS(r.body, "clinfm_http_request_duration_seconds_bucket{route=\"/v1/risk\",le=\"+Inf\"}");
    CHECK_CONTAINS(r.body, "clinfm_http_errors_total{route=\"/cds-services/{id}\",class=\"4xx\"}");
    CHECK(strstr(r.body, PID) == NULL);
    tu_resp_free(&r);
}

/* A counter's value in a /metrics body (-1 when absent). */
static double metric(const char *body, const char *name) {
    char pat[200];
    snprintf(pat, sizeof pat, "\n%s ", name);
    const char *at = body ? strstr(body, pat) : NULL;
    return at ? atof(at + strlen(pat)) : -1;
}

static double metric_now(const char *name) {
    tu_resp r = call(S.port, "GET", "/metrics", KEY_SVC, NULL);
    double v = metric(r.body, name);
    tu_resp_free(&r);
    return v;
}

static int audit_rows(void) {
    sqlite3 *db;
    int n = -1;
    if (sqlite3_open(DB_PATH, &db) != SQLITE_OK) return -1;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "SELECT count(*) FROM audit", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
}

/* The first card of a hook response without its uuid (fresh for every card issued). */
static char *card_without_uuid(const tu_resp *r, char *uuid, size_t cap) {
    cJSON *j = body_json(r);
    cJSON *card = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "cards"), 0);
    if (!card) {
        cJSON_Delete(j);
        return NULL;
    }
    snprintf(uuid, cap, "%s", cJSON_GetStringValue(cJSON_GetObjectItem(card, "uuid")));
    cJSON_DeleteItemFromObject(card, "uuid");
    char *out = cJSON_PrintUnformatted(card);
    cJSON_Delete(j);
    return out;
}

/* POSTs body to the patient-view service with a fresh JWT. */
static tu_resp post_pv(const char *body) {
    const char *pv = "/cds-services/clinfm-patient-view";
    char *tok = jwt_for(EC, "ES384", BASE "/cds-services/clinfm-patient-view", 120, NULL);
    tu_resp r = call(S.port, "POST", pv, tok, body);
    free(tok);
    return r;
}

static void test_card_cache(void) {
    CHECK_EQ_INT((int)metric_now("clinfm_card_cache_capacity"), 1024);
    /* records the earlier tests never sent: the patient's prefetch without its last two
     * observations, then with one of them back ("one more event") */
    char pid[128];
    cJSON *pf = tu_prefetch(BUNDLE_TEXT, pid, sizeof pid);
    cJSON *obs = cJSON_GetObjectItem(cJSON_GetObjectItem(pf, "observations"), "entry");
    REQUIRE(cJSON_GetArraySize(obs) > 3);
    cJSON_DeleteItemFromArray(obs, cJSON_GetArraySize(obs) - 1);
    cJSON *last = cJSON_DetachItemFromArray(obs, cJSON_GetArraySize(obs) - 1);
    cJSON *b = cJSON_CreateObject();
    cJSON_AddStringToObject(b, "hookInstance", "d1577c69-dfbe-44ad-ba6d-3e05e953b2eb");
    cJSON_AddStringToObject(b, "hook", "patient-view");
    cJSON *ctx = cJSON_AddObjectToObject(b, "context");
    cJSON_AddStringToObject(ctx, "userId", "Practitioner/example");
    cJSON_AddStringToObject(ctx, "patientId", PID);
    cJSON_AddItemToObject(b, "prefetch", pf);
    char *body1 = cJSON_PrintUnformatted(b);
    double h0 = metric_now("clinfm_card_cache_hits_total"), m0 = metric_now("clinfm_card_cache_misses_total");
    int a0 = audit_rows();
    REQUIRE(h0 >= 0 && m0 >= 0 && a0 > 0);

    tu_resp r1 = post_pv(body1);
    REQUIRE_EQ_INT(r1.status, 200);
    CHECK_EQ_INT((int)metric_now("clinfm_card_cache_misses_total"), (int)m0 + 1);
    CHECK_EQ_INT((int)metric_now("clinfm_card_cache_hits_total"), (int)h0);
    /* the same request again: a hit, the same card but for its uuid, and its own audit rows */
    tu_resp r2 = post_pv(body1);
    REQUIRE_EQ_INT(r2.status, 200);
    CHECK_EQ_INT((int)metric_now("clinfm_card_cache_hits_total"), (int)h0 + 1);
    CHECK_EQ_INT((int)metric_now("clinfm_card_cache_misses_total"), (int)m0 + 1);
    char u1[64], u2[64], u3[64];
    char *c1 = card_without_uuid(&r1, u1, sizeof u1), *c2 = card_without_uuid(&r2, u2, sizeof u2);
    REQUIRE(c1 && c2);
    CHECK_EQ_STR(c1, c2);
    CHECK(strcmp(u1, u2) != 0);
    CHECK_CONTAINS(c1, "percentage points");

    /* one more event: a miss, scored afresh */
    cJSON_AddItemToArray(obs, last);
    char *body3 = cJSON_PrintUnformatted(b);
    tu_resp r3 = post_pv(body3);
    REQUIRE_EQ_INT(r3.status, 200);
    CHECK_EQ_INT((int)metric_now("clinfm_card_cache_misses_total"), (int)m0 + 2);
    CHECK_EQ_INT((int)metric_now("clinfm_card_cache_hits_total"), (int)h0 + 1);
    char *c3 = card_without_uuid(&r3, u3, sizeof u3);
    REQUIRE(c3);
    CHECK(strcmp(u3, u1) != 0 && strcmp(u3, u2) != 0);
    CHECK(strcmp(c3, c1) != 0); /* "from N events": the record did change */
    /* the full record from the store: sent by an earlier test (as prefetch and from the
     * store), so a hit */
    tu_resp r4 = post_hook(EC, "ES384", "/cds-services/clinfm-patient-view", "patient-view", 0, 0);
    REQUIRE_EQ_INT(r4.status, 200);
    CHECK_EQ_INT((int)metric_now("clinfm_card_cache_hits_total"), (int)h0 + 2);
    /* every request was audited, hits included (4 hooks; the /metrics calls are not audited),
     * and each card issued has its row */
    CHECK_EQ_INT(audit_rows(), a0 + 4);
    sqlite3 *db;
    REQUIRE(sqlite3_open(DB_PATH, &db) == SQLITE_OK);
    sqlite3_stmt *st;
    sqlite3_prepare_v2(db, "SELECT count(*) FROM cards WHERE uuid IN (?1, ?2, ?3)", -1, &st, NULL);
    sqlite3_bind_text(st, 1, u1, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, u2, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, u3, -1, SQLITE_STATIC);
    REQUIRE(sqlite3_step(st) == SQLITE_ROW);
    CHECK_EQ_INT(sqlite3_column_int(st, 0), 3);
    sqlite3_finalize(st);
    sqlite3_close(db);
    CHECK(metric_now("clinfm_card_cache_entries") >= 2);
    free(c1);
    free(c2);
    free(c3);
    free(body1);
    free(body3);
    cJSON_Delete(b);
    tu_resp_free(&r1);
    tu_resp_free(&r2);
    tu_resp_free(&r3);
    tu_resp_free(&r4);
}

static void test_audit_and_logs(void) {
    /* every protected request that identified someone was audited, patients only as pseudonyms;
     * the refused ones are summed up in one row per status at the tick */
    cf_err err = {0};
    REQUIRE(serve_ctx_tick(S.ctx, &err) == CF_OK);
    sqlite3 *db;
    REQUIRE(sqlite3_open(DB_PATH, &db) == SQLITE_OK);
    sqlite3_stmt *st;
    sqlite3_prepare_v2(db, "SELECT count(*), sum(patient = ?1), "
                           "sum(CASE WHEN status = 401 AND principal = 'unauthenticated' THEN count END), "
                           "sum(model <> ''), sum(status = 401 AND principal <> 'unauthenticated') "
                           "FROM audit", -1, &st, NULL);
    sqlite3_bind_text(st, 1, PID, -1, SQLITE_STATIC);
    REQUIRE(sqlite3_step(st) == SQLITE_ROW);
    CHECK(sqlite3_column_int(st, 0) >= 25);
    CHECK_EQ_INT(sqlite3_column_int(st, 1), 0);
    CHECK(sqlite3_column_int(st, 2) >= 7);
    CHECK(sqlite3_column_int(st, 3) >= 5);
    CHECK_EQ_INT(sqlite3_column_int(st, 4), 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    /* stop the servers: the head file now names the last row */
    stop(&SLOW);
    stop(&S);
    unsigned char key[SERVE_SECRET_BYTES];
    REQUIRE(serve_secret_load(SECRET, key, &err) == CF_OK);
    serve_verify_report rep;
    CHECK(serve_db_verify(DB_PATH, key, NULL, NULL, &rep, &err) == CF_OK);
    CHECK(rep.rows >= 25);
    REQUIRE(sqlite3_open(DB_PATH, &db) == SQLITE_OK);
    CHECK(sqlite3_exec(db, "UPDATE audit SET status = 200 WHERE seq = (SELECT min(seq) FROM audit "
                           "WHERE status = 401)", NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_close(db);
    CHECK(serve_db_verify(DB_PATH, key, NULL, NULL, &rep, &err) == CF_EINPUT);
    CHECK_CONTAINS(err.msg, "edited");
    /* the log has lines, none with the patient id or record contents */
    fflush(LOG);
    CHECK(LOG_LEN > 0);
    CHECK(strstr(LOG_BUF, PID) == NULL);
    CHECK(strstr(LOG_BUF, "Lyle") == NULL && strstr(LOG_BUF, "Baumbach") == NULL);
    CHECK(strstr(LOG_BUF, "Practitioner/example") == NULL);
    CHECK_CONTAINS(LOG_BUF, "POST /cds-services/{id} 200");
}

int main(void) {
    signal(SIGPIPE, SIG_IGN); /* the server may close before reading a refused body */
    alarm(120); /* never hang: the default action ends the process and its server threads */
    if (setup()) {
        fprintf(stderr, "setup failed\n");
        return 1;
    }
    char pid[128];
    cJSON *pf = tu_prefetch(BUNDLE_TEXT, pid, sizeof pid);
    snprintf(PID, sizeof PID, "%s", pid);
    /* an inpatient encounter of the patient, with its end, for the discharge hook */
    const cJSON *e;
    cJSON_ArrayForEach(e, cJSON_GetObjectItem(cJSON_GetObjectItem(pf, "encounters"), "entry")) {
        const cJSON *res = cJSON_GetObjectItem(e, "resource");
        const char *end = cJSON_GetStringValue(
            cJSON_GetObjectItem(cJSON_GetObjectItem(res, "period"), "end"));
        if (end && !ENC_ID[0]) {
            snprintf(ENC_ID, sizeof ENC_ID, "%s", cJSON_GetStringValue(cJSON_GetObjectItem(res, "id")));
            time_parse_iso(end, strlen(end), &ENC_END, NULL);
        }
    }
    cJSON_Delete(pf);
    RUN(test_discovery_and_health);
    RUN(test_patient_view_prefetch_and_store);
    RUN(test_discharge);
    RUN(test_feedback);
    RUN(test_auth_failures);
    RUN(test_limits);
    RUN(test_v1);
    RUN(test_card_cache);
    RUN(test_audit_and_logs);
    serve_thread_release();
    store_close(&ST);
    fclose(LOG);
    free(LOG_BUF);
    free(BUNDLE_TEXT);
    EVP_PKEY_free(EC);
    EVP_PKEY_free(RSA_KEY);
    return check_summary();
}
