/* Fuzz target for the service's request handling (serve_handle), without sockets.
 *
 * Input: a request line "METHOD PATH[?a=b&...]", header lines "Name: value", an empty line, then
 * the body. Authorization values "@key" and "@svc" are replaced by live clinician and service API
 * keys and "@jwt" by a freshly signed ES384 JWT for the path's service, so the fuzzer reaches the
 * handlers behind authentication. The service runs on an in-memory database with the reference
 * predictor and no store (patients come from the body).
 *
 * Checked on every input (abort on violation): the status is one the service documents and never
 * 500 (a 204 has no body); error bodies are {"error": string, "detail": string}; JSON responses
 * parse; cards have a summary under 140 characters and no suggestions (no automatic actions). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <sqlite3.h>

#include "../tests/serve_testutil.h"
#include "serve/serve.h"
#include "serve/serve_ref.h"

static const char CONFIG[] =
    "{\"base_url\":\"https://cds.fuzz\",\"database\":\":memory:\","
    "\"limits\":{\"max_body_bytes\":65536,\"max_json_depth\":24,\"rate_per_minute\":1e9,"
    "\"burst\":1e9,\"request_timeout_ms\":60000,\"client_rate_per_minute\":0},"
    "\"cors\":{\"allowed_origins\":[\"https://ehr.fuzz\"]},"
    "\"auth\":{\"replay_cache_max\":1000},"
    "\"tasks\":[{\"id\":\"mortality_1y\",\"title\":\"1-year mortality\",\"warning\":0.1,"
    "\"critical\":0.3},{\"id\":\"readmission_30d\",\"title\":\"30-day readmission\"}],"
    "\"services\":[{\"id\":\"pv\",\"hook\":\"patient-view\",\"tasks\":[\"mortality_1y\","
    "\"readmission_30d\"],\"show_info\":true},{\"id\":\"dc\",\"hook\":\"encounter-discharge\","
    "\"tasks\":[\"readmission_30d\"]}],"
    "\"reference_model\":{\"name\":\"ref\",\"version\":\"1\",\"tasks\":{"
    "\"mortality_1y\":{\"intercept\":-3,\"intercept_se\":0.2,\"features\":["
    "{\"codes\":[\"MEDS_BIRTH\"],\"transform\":\"years_since\",\"center\":60,\"scale\":10,"
    "\"default\":60,\"weight\":0.6,\"se\":0.1},"
    "{\"codes\":[\"SNOMED//\"],\"transform\":\"log1p\",\"weight\":0.3,\"se\":0.1},"
    "{\"codes\":[\"LOINC//\"],\"transform\":\"last_value\",\"window_days\":365,\"scale\":100,"
    "\"weight\":0.2}]},"
    "\"readmission_30d\":{\"intercept\":-2,\"features\":[{\"codes\":[\"ENCOUNTER_START//\"],"
    "\"transform\":\"count\",\"window_days\":365,\"weight\":0.4,\"se\":0.1}]}}}}";

static struct {
    serve_config cfg;
    serve_db *db;
    serve_auth *auth;
    serve_predictor pred;
    serve_ctx *ctx;
    EVP_PKEY *ec;
    char key[SERVE_TOKEN_LEN + 1], svc[SERVE_TOKEN_LEN + 1];
    unsigned long iter;
} F;

static void init(void) {
    cf_err err = {0};
    unsigned char secret[SERVE_SECRET_BYTES];
    memset(secret, 7, sizeof secret);
    char id[SERVE_KEY_ID_LEN + 1];
    F.ec = tu_key_ec();
    char *jwks = tu_jwks(F.ec, "k1");
    if (serve_config_parse(&F.cfg, CONFIG, sizeof CONFIG - 1, "/tmp", "fuzz", &err) ||
        serve_db_open(&F.db, ":memory:", secret, &err) ||
        serve_auth_open(&F.auth, &F.cfg, &err) ||
        serve_auth_add_jwks(F.auth, "https://ehr.fuzz", jwks, strlen(jwks), "jwks", &err) ||
        serve_ref_open(F.cfg.reference_model, "fuzz", &F.pred, &err) ||
        serve_db_key_create(F.db, "fuzz", "clinician", 0, "fuzz", F.key, id, &err) ||
        serve_db_key_create(F.db, "fuzz-svc", "service", 0, "fuzz", F.svc, id, &err)) {
        fprintf(stderr, "fuzz_serve setup: %s\n", err.msg);
        abort();
    }
    free(jwks);
    serve_setup setup = {&F.cfg, NULL, &F.pred, F.db, F.auth, NULL};
    if (serve_ctx_new(&F.ctx, &setup, &err)) abort();
}

static int allowed_status(int s) {
    static const int ok[] = {200, 204, 400, 401, 403, 404, 405, 412, 413, 415, 429, 503};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        if (s == ok[i]) return 1;
    return 0;
}

static void check_response(const serve_response *rs) {
    if (!allowed_status(rs->status)) {
        fprintf(stderr, "status %d: %.*s\n", rs->status, (int)rs->len, rs->body ? rs->body : "");
        abort();
    }
    if (rs->status == 204) {
        if (rs->len) abort(); /* no content means none */
        return;
    }
    if (rs->content_type && strncmp(rs->content_type, "application/json", 16)) return; /* metrics */
    cJSON *j = cJSON_ParseWithLength(rs->body ? rs->body : "", rs->len);
    if (!j) abort();
    if (rs->status != 200) {
        if (!cJSON_IsString(cJSON_GetObjectItem(j, "error")) ||
            !cJSON_IsString(cJSON_GetObjectItem(j, "detail")))
            abort();
    }
    const cJSON *card;
    cJSON_ArrayForEach(card, cJSON_GetObjectItem(j, "cards")) {
        const char *s = cJSON_GetStringValue(cJSON_GetObjectItem(card, "summary"));
        if (!s || strlen(s) >= 140 || cJSON_GetObjectItem(card, "suggestions")) abort();
    }
    cJSON_Delete(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!F.ctx) init();
    if (++F.iter % 4096 == 0) /* keep the in-memory audit trail small */
        sqlite3_exec(serve_db_handle(F.db), "DELETE FROM audit; DELETE FROM cards; "
                                            "DELETE FROM feedback;", NULL, NULL, NULL);
    char *in = malloc(size + 1);
    if (!in) return 0;
    memcpy(in, data, size);
    in[size] = '\0';
    /* request line */
    char *p = in, *end = in + size;
    char *nl = memchr(p, '\n', (size_t)(end - p));
    char *line_end = nl ? nl : end;
    *line_end = '\0';
    char *sp = strchr(p, ' ');
    const char *method = p, *target = "/";
    if (sp) {
        *sp = '\0';
        target = sp + 1;
    }
    char path[2048];
    snprintf(path, sizeof path, "%s", target);
    serve_arg args[8];
    size_t n_args = 0;
    char *q = strchr(path, '?');
    if (q) {
        *q++ = '\0';
        for (char *tok = strtok(q, "&"); tok && n_args < 8; tok = strtok(NULL, "&")) {
            char *eq = strchr(tok, '=');
            if (eq) *eq++ = '\0';
            args[n_args++] = (serve_arg){tok, eq ? eq : ""};
        }
    }
    p = nl ? nl + 1 : end;
    /* headers until an empty line */
    const char *auth = NULL, *ctype = NULL, *origin = NULL, *acrm = NULL;
    char *jwt = NULL;
    while (p < end) {
        nl = memchr(p, '\n', (size_t)(end - p));
        line_end = nl ? nl : end;
        *line_end = '\0';
        char *next = nl ? nl + 1 : end;
        if (line_end == p) {
            p = next;
            break;
        }
        char *colon = strchr(p, ':');
        if (colon) {
            *colon = '\0';
            char *v = colon + 1;
            while (*v == ' ') v++;
            if (!strcasecmp(p, "authorization")) auth = v;
            else if (!strcasecmp(p, "content-type")) ctype = v;
            else if (!strcasecmp(p, "origin")) origin = v;
            else if (!strcasecmp(p, "access-control-request-method")) acrm = v;
        }
        p = next;
    }
    char authbuf[SERVE_TOKEN_LEN + 64];
    if (auth && !strcmp(auth, "@key")) {
        snprintf(authbuf, sizeof authbuf, "Bearer %s", F.key);
        auth = authbuf;
    } else if (auth && !strcmp(auth, "@svc")) {
        snprintf(authbuf, sizeof authbuf, "Bearer %s", F.svc);
        auth = authbuf;
    } else if (auth && !strcmp(auth, "@jwt")) {
        char pl[512], aud[600];
        const char *svc = strncmp(path, "/cds-services/", 14) ? "" : path + 14;
        snprintf(aud, sizeof aud, "https://cds.fuzz/cds-services/%.*s", (int)strcspn(svc, "/"), svc);
        long now = (long)time(NULL);
        snprintf(pl, sizeof pl,
                 "{\"iss\":\"https://ehr.fuzz\",\"aud\":\"%s\",\"exp\":%ld,\"iat\":%ld,"
                 "\"jti\":\"j%lu\"}", aud, now + 60, now, F.iter);
        char *tok = tu_jwt(F.ec, "ES384", "k1", pl);
        size_t n = strlen(tok) + 8;
        jwt = malloc(n);
        snprintf(jwt, n, "Bearer %s", tok);
        free(tok);
        auth = jwt;
    }
    serve_request rq = {.method = method, .path = path, .args = args, .n_args = n_args,
                        .authorization = auth, .content_type = ctype ? ctype : "application/json",
                        .origin = origin, .acr_method = acrm, .client = "127.0.0.1",
                        .content_length = (long long)(end - p), .body = p,
                        .body_len = (size_t)(end - p)};
    serve_response rs;
    serve_handle(F.ctx, &rq, &rs);
    check_response(&rs);
    serve_response_free(&rs);
    free(jwt);
    free(in);
    return 0;
}
