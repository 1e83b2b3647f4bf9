/* Helpers shared by the service tests: reading gzipped bundles, signing CDS Hooks JWTs the way an
 * EHR would (OpenSSL, ES384 and RS384) with their JWKS, building prefetch from a Synthea bundle,
 * a minimal blocking HTTP/1.1 client for loopback (optionally from another loopback address, so
 * tests can play several hosts), a small fictional patient, and a FHIR test server on loopback
 * that serves it. Everything here is test code. */
#ifndef CLINFM_TESTS_SERVE_TESTUTIL_H
#define CLINFM_TESTS_SERVE_TESTUTIL_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <microhttpd.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <sodium.h>
#include <zlib.h>

#include "loopback.h"

/* Whole file, gunzipped when gzipped; NUL-terminated. */
static inline char *tu_read_gz(const char *path, size_t *len) {
    gzFile f = gzopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    int r;
    while (buf && (r = gzread(f, buf + n, (unsigned)(cap - n - 1))) > 0) {
        n += (size_t)r;
        if (cap - n < 2) {
            char *t = realloc(buf, cap * 2);
            if (!t) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = t;
            cap *= 2;
        }
    }
    gzclose(f);
    if (buf) buf[n] = '\0';
    if (len) *len = n;
    return buf;
}

static inline void tu_b64url(const unsigned char *in, size_t n, char *out, size_t cap) {
    sodium_bin2base64(out, cap, in, n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

static inline EVP_PKEY *tu_key_ec(void) { return EVP_EC_gen("P-384"); }
static inline EVP_PKEY *tu_key_rsa(void) { return EVP_RSA_gen(2048); }

/* JWKS text {"keys":[...]} for one public key. */
static inline char *tu_jwks(EVP_PKEY *k, const char *kid) {
    char a[1024], b[1024], *out = malloc(4096);
    if (!out) return NULL;
    if (EVP_PKEY_is_a(k, "EC")) {
        unsigned char pub[200];
        size_t pl = 0;
        EVP_PKEY_get_octet_string_param(k, OSSL_PKEY_PARAM_PUB_KEY, pub, sizeof pub, &pl);
        tu_b64url(pub + 1, 48, a, sizeof a);
        tu_b64url(pub + 49, 48, b, sizeof b);
        snprintf(out, 4096,
                 "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-384\",\"x\":\"%s\",\"y\":\"%s\","
                 "\"kid\":\"%s\",\"alg\":\"ES384\",\"use\":\"sig\"}]}",
                 a, b, kid);
    } else {
        BIGNUM *n = NULL, *e = NULL;
        EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_RSA_N, &n);
        EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_RSA_E, &e);
        unsigned char nb[600], eb[16];
        int nl = BN_bn2bin(n, nb), el = BN_bn2bin(e, eb);
        tu_b64url(nb, (size_t)nl, a, sizeof a);
        tu_b64url(eb, (size_t)el, b, sizeof b);
        snprintf(out, 4096,
                 "{\"keys\":[{\"kty\":\"RSA\",\"n\":\"%s\",\"e\":\"%s\",\"kid\":\"%s\","
                 "\"alg\":\"RS384\"}]}",
                 a, b, kid);
        BN_free(n);
        BN_free(e);
    }
    return out;
}

/* Compact JWT with the given header and payload JSON, signed with k (ES384: raw r||s; RS384:
 * PKCS#1 v1.5). The header is written as given, so tests can leave out kid or typ. */
static inline char *tu_jwt_raw(EVP_PKEY *k, const char *header, const char *payload) {
    char h64[1024], *p64 = malloc(strlen(payload) * 2 + 8);
    tu_b64url((const unsigned char *)header, strlen(header), h64, sizeof h64);
    tu_b64url((const unsigned char *)payload, strlen(payload), p64, strlen(payload) * 2 + 8);
    size_t ml = strlen(h64) + 1 + strlen(p64);
    char *msg = malloc(ml + 1);
    snprintf(msg, ml + 1, "%s.%s", h64, p64);
    unsigned char sig[1024], raw[96];
    size_t sl = sizeof sig;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_DigestSignInit(md, NULL, EVP_sha384(), NULL, k);
    EVP_DigestSign(md, sig, &sl, (const unsigned char *)msg, ml);
    EVP_MD_CTX_free(md);
    const unsigned char *s = sig;
    size_t slen = sl;
    if (EVP_PKEY_is_a(k, "EC")) {
        const unsigned char *pp = sig;
        ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &pp, (long)sl);
        const BIGNUM *r, *ss;
        ECDSA_SIG_get0(es, &r, &ss);
        BN_bn2binpad(r, raw, 48);
        BN_bn2binpad(ss, raw + 48, 48);
        ECDSA_SIG_free(es);
        s = raw;
        slen = 96;
    }
    char s64[2048];
    tu_b64url(s, slen, s64, sizeof s64);
    size_t tl = ml + 1 + strlen(s64) + 1;
    char *tok = malloc(tl);
    snprintf(tok, tl, "%s.%s", msg, s64);
    free(msg);
    free(p64);
    return tok;
}

/* Compact JWT with header {"alg":alg,"typ":"JWT","kid":kid} and the given payload, signed with k.
 * alg is written as given, so tests can lie about it. */
static inline char *tu_jwt(EVP_PKEY *k, const char *alg, const char *kid, const char *payload) {
    char header[256];
    snprintf(header, sizeof header, "{\"alg\":\"%s\",\"typ\":\"JWT\",\"kid\":\"%s\"}", alg, kid);
    return tu_jwt_raw(k, header, payload);
}

/* The key of the service's default prefetch templates for a resource type ("conditions" for
 * Condition); types no default template asks for get "<type>s" (which the service ignores). */
static inline void tu_prefetch_key(const char *type, char *key, size_t cap) {
    static const char *const map[][2] = {{"Condition", "conditions"},
                                         {"MedicationRequest", "medications"},
                                         {"Observation", "observations"},
                                         {"Encounter", "encounters"},
                                         {"Procedure", "procedures"}};
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (!strcmp(type, map[i][0])) {
            snprintf(key, cap, "%s", map[i][1]);
            return;
        }
    snprintf(key, cap, "%.50ss", type);
    key[0] = (char)(key[0] | 0x20);
}

/* Prefetch as an EHR would send it for the Patient of a Synthea transaction bundle: "patient" is
 * the Patient resource; other resources are grouped by type into searchset Bundles under the
 * default templates' keys, with their subject/patient references rewritten to "Patient/<id>".
 * *patient_id receives the id. */
static inline cJSON *tu_prefetch(const char *bundle_text, char *patient_id, size_t cap) {
    cJSON *b = cJSON_Parse(bundle_text);
    cJSON *pf = cJSON_CreateObject();
    const cJSON *e;
    patient_id[0] = '\0';
    cJSON_ArrayForEach(e, cJSON_GetObjectItem(b, "entry")) {
        cJSON *r = cJSON_GetObjectItem(e, "resource");
        const char *t = cJSON_GetStringValue(cJSON_GetObjectItem(r, "resourceType"));
        if (t && !strcmp(t, "Patient"))
            snprintf(patient_id, cap, "%s", cJSON_GetStringValue(cJSON_GetObjectItem(r, "id")));
    }
    cJSON_ArrayForEach(e, cJSON_GetObjectItem(b, "entry")) {
        cJSON *r = cJSON_Duplicate(cJSON_GetObjectItem(e, "resource"), 1);
        const char *t = cJSON_GetStringValue(cJSON_GetObjectItem(r, "resourceType"));
        if (!t) {
            cJSON_Delete(r);
            continue;
        }
        if (!strcmp(t, "Patient")) {
            cJSON_AddItemToObject(pf, "patient", r);
            continue;
        }
        char ref[300];
        snprintf(ref, sizeof ref, "Patient/%.200s", patient_id);
        const char *fields[] = {"subject", "patient"};
        for (int i = 0; i < 2; i++) {
            cJSON *s = cJSON_GetObjectItem(r, fields[i]);
            if (s && cJSON_GetObjectItem(s, "reference"))
                cJSON_ReplaceItemInObject(s, "reference", cJSON_CreateString(ref));
        }
        char key[64];
        tu_prefetch_key(t, key, sizeof key);
        cJSON *sb = cJSON_GetObjectItem(pf, key);
        if (!sb) {
            sb = cJSON_AddObjectToObject(pf, key);
            cJSON_AddStringToObject(sb, "resourceType", "Bundle");
            cJSON_AddStringToObject(sb, "type", "searchset");
            cJSON_AddArrayToObject(sb, "entry");
        }
        cJSON *en = cJSON_CreateObject();
        cJSON_AddItemToObject(en, "resource", r);
        cJSON_AddItemToArray(cJSON_GetObjectItem(sb, "entry"), en);
    }
    /* a search with no result is null, as CDS Hooks asks of a client */
    static const char *const searches[] = {"conditions", "medications", "observations",
                                           "encounters", "procedures"};
    for (size_t i = 0; i < sizeof searches / sizeof searches[0]; i++)
        if (!cJSON_GetObjectItem(pf, searches[i])) cJSON_AddNullToObject(pf, searches[i]);
    cJSON_Delete(b);
    return pf;
}

typedef struct {
    int status;
    char *body;      /* NUL-terminated */
    size_t body_len;
    char headers[4096];
} tu_resp;

/* Reads a whole response until the server closes; status 0 on a transport failure. */
static inline tu_resp tu_read_resp(int fd) {
    tu_resp r = {0, NULL, 0, ""};
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (cap - n < 4096) {
            cap *= 2;
            buf = realloc(buf, cap);
        }
        ssize_t got = read(fd, buf + n, cap - n - 1);
        if (got <= 0) break;
        n += (size_t)got;
    }
    buf[n] = '\0';
    char *sep = strstr(buf, "\r\n\r\n");
    if (sscanf(buf, "HTTP/1.%*d %d", &r.status) != 1 || !sep) {
        r.status = 0;
        free(buf);
        return r;
    }
    size_t hl = (size_t)(sep - buf);
    snprintf(r.headers, sizeof r.headers, "%.*s", (int)(hl < 4000 ? hl : 4000), buf);
    r.body_len = n - hl - 4;
    r.body = malloc(r.body_len + 1);
    memcpy(r.body, sep + 4, r.body_len);
    r.body[r.body_len] = '\0';
    free(buf);
    return r;
}

/* One request over a fresh connection ("Connection: close") from loopback address src (NULL:
 * 127.0.0.1); status 0 on a transport failure. extra_headers: "Name: value\r\n..." or NULL. */
static inline tu_resp tu_http_from(const char *src, int port, const char *method, const char *path,
                                   const char *extra_headers, const char *body, size_t body_len) {
    tu_resp r = {0, NULL, 0, ""};
    int fd = tu_connect_from(src, port, 20);
    if (fd < 0) return r;
    char head[16384];
    int hn = snprintf(head, sizeof head,
                      "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n%s%s"
                      "Content-Length: %zu\r\n\r\n",
                      method, path, extra_headers ? extra_headers : "",
                      body ? "Content-Type: application/json\r\n" : "", body ? body_len : 0);
    if (write(fd, head, (size_t)hn) != hn) {
        close(fd);
        return r;
    }
    size_t off = 0;
    while (body && off < body_len) {
        ssize_t w = write(fd, body + off, body_len - off);
        if (w <= 0) break; /* the server may answer (413) before reading everything */
        off += (size_t)w;
    }
    r = tu_read_resp(fd);
    close(fd);
    return r;
}

static inline tu_resp tu_http(int port, const char *method, const char *path,
                              const char *extra_headers, const char *body, size_t body_len) {
    return tu_http_from(NULL, port, method, path, extra_headers, body, body_len);
}

/* The process's resident memory in KiB. */
static inline long tu_rss_kb(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "VmRSS:", 6)) kb = atol(line + 6);
    if (f) fclose(f);
    return kb;
}

static inline void tu_resp_free(tu_resp *r) {
    free(r->body);
    r->body = NULL;
}

/* ------------------------------------------------------------------ a fictional patient */

/* A fictional patient (no real person; written for these tests): an 80-year-old woman with heart
 * failure, atrial fibrillation, a stroke, dementia, diabetes and hypertension, two inpatient stays
 * and an emergency visit, creatinine and hemoglobin results, a medication order and a procedure,
 * and a cardiac arrest after the second stay. The heart failure display carries a URL, a "www."
 * address and an e-mail address, as free text in a record can. Every resource references "Patient/<TU_PID>". */
#define TU_PID "fic-1001"
static const char TU_FIXTURE[] =
    "{\"resourceType\":\"Bundle\",\"type\":\"collection\",\"entry\":["
    "{\"resource\":{\"resourceType\":\"Patient\",\"id\":\"fic-1001\",\"gender\":\"female\","
    "\"birthDate\":\"1940-03-01\"}},"
    "{\"resource\":{\"resourceType\":\"Condition\",\"id\":\"c1\",\"subject\":{\"reference\":"
    "\"Patient/fic-1001\"},\"code\":{\"coding\":[{\"system\":\"http://snomed.info/sct\",\"code\":"
    "\"88805009\",\"display\":\"Chronic congestive heart failure; see https://evil.example/login, "
    "www.evil.example or help@evil.example\"}]},\"onsetDateTime\":"
    "\"2018-02-10T09:00:00Z\"}},"
    "{\"resource\":{\"resourceType\":\"Condition\",\"id\":\"c2\",\"subject\":{\"reference\":"
    "\"Patient/fic-1001\"},\"code\":{\"coding\":[{\"system\":\"http://snomed.info/sct\",\"code\":"
    "\"49436004\",\"display\":\"Atrial fibrillation\"}]},\"onsetDateTime\":\"2017-09-09T09:00:00Z\"}},"
    "{\"resource\":{\"resourceType\":\"Condition\",\"id\":\"c3\",\"subject\":{\"reference\":"
    "\"Patient/fic-1001\"},\"code\":{\"coding\":[{\"system\":\"http://snomed.info/sct\",\"code\":"
    "\"230690007\",\"display\":\"Stroke\"}]},\"onsetDateTime\":\"2019-01-05T09:00:00Z\"}},"
    "{\"resource\":{\"resourceType\":\"Condition\",\"id\":\"c4\",\"subject\":{\"reference\":"
    "\"Patient/fic-1001\"},\"code\":{\"coding\":[{\"system\":\"http://snomed.info/sct\",\"code\":"
    "\"26929004\",\"display\":\"Dementia\"}]},\"onsetDateTime\":\"2019-06-01T09:00:00Z\"}},"
    "{\"resource\":{\"resourceType\":\"Condition\",\"id\":\"c5\",\"subject\":{\"reference\":"
    "\"Patient/fic-1001\"},\"code\":{\"coding\":[{\"system\":\"http://snomed.info/sct\",\"code\":"
    "\"44054006\",\"display\":\"Diabetes\"}]},\"onsetDateTime\":\"2015-04-04T09:00:00Z\"}},"
    "{\"resource\":{\"resourceType\":\"Condition\",\"id\":\"c6\",\"subject\":{\"reference\":"
    "\"Patient/fic-1001\"},\"code\":{\"coding\":[{\"system\":\"http://snomed.info/sct\",\"code\":"
    "\"38341003\",\"display\":\"Hypertension\"}]},\"onsetDateTime\":\"2010-01-01T09:00:00Z\"}},"
    "{\"resource\":{\"resourceType\":\"Condition\",\"id\":\"c7\",\"subject\":{\"reference\":"
    "\"Patient/fic-1001\"},\"code\":{\"coding\":[{\"system\":\"http://snomed.info/sct\",\"code\":"
    "\"410429000\",\"display\":\"Cardiac arrest\"}]},\"onsetDateTime\":\"2020-09-01T09:00:00Z\"}},"
    "{\"resource\":{\"resourceType\":\"Encounter\",\"id\":\"enc-a\",\"status\":\"finished\","
    "\"class\":{\"code\":\"IMP\"},\"subject\":{\"reference\":\"Patient/fic-1001\"},\"period\":"
    "{\"start\":\"2019-05-01T08:00:00Z\",\"end\":\"2019-05-10T12:00:00Z\"}}},"
    "{\"resource\":{\"resourceType\":\"Encounter\",\"id\":\"enc-b\",\"status\":\"finished\","
    "\"class\":{\"code\":\"IMP\"},\"subject\":{\"reference\":\"Patient/fic-1001\"},\"period\":"
    "{\"start\":\"2020-06-01T08:00:00Z\",\"end\":\"2020-06-12T12:00:00Z\"}}},"
    "{\"resource\":{\"resourceType\":\"Encounter\",\"id\":\"enc-c\",\"status\":\"finished\","
    "\"class\":{\"code\":\"EMER\"},\"subject\":{\"reference\":\"Patient/fic-1001\"},\"period\":"
    "{\"start\":\"2020-11-20T08:00:00Z\",\"end\":\"2020-11-20T16:00:00Z\"}}},"
    "{\"resource\":{\"resourceType\":\"Observation\",\"id\":\"o1\",\"status\":\"final\","
    "\"subject\":{\"reference\":\"Patient/fic-1001\"},\"code\":{\"coding\":[{\"system\":"
    "\"http://loinc.org\",\"code\":\"2160-0\",\"display\":\"Creatinine\"}]},\"effectiveDateTime\":"
    "\"2020-06-05T08:00:00Z\",\"valueQuantity\":{\"value\":2.1,\"unit\":\"mg/dL\",\"code\":"
    "\"mg/dL\"}}},"
    "{\"resource\":{\"resourceType\":\"Observation\",\"id\":\"o2\",\"status\":\"final\","
    "\"subject\":{\"reference\":\"Patient/fic-1001\"},\"code\":{\"coding\":[{\"system\":"
    "\"http://loinc.org\",\"code\":\"718-7\",\"display\":\"Hemoglobin\"}]},\"effectiveDateTime\":"
    "\"2020-06-05T08:00:00Z\",\"valueQuantity\":{\"value\":10.5,\"unit\":\"g/dL\",\"code\":"
    "\"g/dL\"}}},"
    "{\"resource\":{\"resourceType\":\"MedicationRequest\",\"id\":\"m1\",\"status\":\"active\","
    "\"intent\":\"order\",\"subject\":{\"reference\":\"Patient/fic-1001\"},"
    "\"medicationCodeableConcept\":{\"coding\":[{\"system\":"
    "\"http://www.nlm.nih.gov/research/umls/rxnorm\",\"code\":\"197361\",\"display\":"
    "\"Amlodipine 5 MG Oral Tablet\"}]},\"authoredOn\":\"2020-06-10T08:00:00Z\"}},"
    "{\"resource\":{\"resourceType\":\"Procedure\",\"id\":\"p1\",\"status\":\"completed\","
    "\"subject\":{\"reference\":\"Patient/fic-1001\"},\"code\":{\"coding\":[{\"system\":"
    "\"http://snomed.info/sct\",\"code\":\"40701008\",\"display\":\"Echocardiography\"}]},"
    "\"performedDateTime\":\"2020-06-02T08:00:00Z\"}}"
    "]}";

/* ------------------------------------------------------------------ a FHIR test server */

/* A FHIR server on 127.0.0.1 for the service to read from, serving a collection Bundle: reads
 * ("<Type>/<id>") and searches ("<Type>?patient=<id>...": every resource of the type whose
 * subject or patient is "Patient/<id>", as a searchset Bundle). Searches without _count are paged
 * by `page` entries with absolute next links, so the service has to follow them. It answers 401
 * without "Authorization: Bearer <token>", 404 with an OperationOutcome for unknown reads, and an
 * OperationOutcome (HTTP 500) for the resource types listed in `fail`. Counts the reads. */
typedef struct {
    struct MHD_Daemon *d;
    int port;
    cJSON *bundle;
    char token[128];
    char fail[256];         /* "Condition,Observation" */
    int page;
    pthread_mutex_t mu;
    int reads, unauthorized;
} tu_fhir;

static inline enum MHD_Result tu_fhir_send(struct MHD_Connection *c, int status, char *body) {
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header(r, "Content-Type", "application/fhir+json");
    enum MHD_Result ret = MHD_queue_response(c, (unsigned)status, r);
    MHD_destroy_response(r);
    return ret;
}

static inline char *tu_fhir_outcome(const char *code) {
    char *s = malloc(256);
    snprintf(s, 256, "{\"resourceType\":\"OperationOutcome\",\"issue\":[{\"severity\":\"error\","
                     "\"code\":\"%s\"}]}", code);
    return s;
}

static inline enum MHD_Result tu_fhir_request(void *cls, struct MHD_Connection *c, const char *url,
                                              const char *method, const char *version,
                                              const char *upload, size_t *upload_size, void **cc) {
    (void)version;
    (void)upload;
    (void)upload_size;
    (void)cc;
    tu_fhir *f = cls;
    pthread_mutex_lock(&f->mu);
    f->reads++;
    pthread_mutex_unlock(&f->mu);
    if (strcmp(method, "GET")) return tu_fhir_send(c, 405, tu_fhir_outcome("not-supported"));
    char want[200];
    snprintf(want, sizeof want, "Bearer %s", f->token);
    const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    if (f->token[0] && (!auth || strcmp(auth, want))) {
        pthread_mutex_lock(&f->mu);
        f->unauthorized++;
        pthread_mutex_unlock(&f->mu);
        return tu_fhir_send(c, 401, tu_fhir_outcome("login"));
    }
    if (strncmp(url, "/fhir/", 6)) return tu_fhir_send(c, 404, tu_fhir_outcome("not-found"));
    char type[64], id[128] = "";
    snprintf(type, sizeof type, "%.*s", (int)strcspn(url + 6, "/"), url + 6);
    const char *slash = strchr(url + 6, '/');
    if (slash) snprintf(id, sizeof id, "%s", slash + 1);
    if (strstr(f->fail, type)) return tu_fhir_send(c, 500, tu_fhir_outcome("exception"));
    const char *patient = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "patient");
    const char *count = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "_count");
    const char *pg = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "_page");
    int page = pg ? atoi(pg) : 0;
    char ref[200];
    snprintf(ref, sizeof ref, "Patient/%s", patient ? patient : "");
    cJSON *out = NULL, *all = cJSON_CreateArray();
    const cJSON *e;
    cJSON_ArrayForEach(e, cJSON_GetObjectItem(f->bundle, "entry")) {
        const cJSON *r = cJSON_GetObjectItem(e, "resource");
        if (strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(r, "resourceType")), type)) continue;
        if (id[0]) {
            if (!strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(r, "id")), id))
                out = cJSON_Duplicate(r, 1);
            continue;
        }
        const cJSON *s = cJSON_GetObjectItem(r, "subject");
        if (!s) s = cJSON_GetObjectItem(r, "patient");
        const char *sr = cJSON_GetStringValue(cJSON_GetObjectItem(s, "reference"));
        if (sr && !strcmp(sr, ref)) {
            cJSON *en = cJSON_CreateObject();
            cJSON_AddItemToObject(en, "resource", cJSON_Duplicate(r, 1));
            cJSON_AddItemToArray(all, en);
        }
    }
    if (id[0]) {
        cJSON_Delete(all);
        if (!out) return tu_fhir_send(c, 404, tu_fhir_outcome("not-found"));
    } else {
        out = cJSON_CreateObject();
        cJSON_AddStringToObject(out, "resourceType", "Bundle");
        cJSON_AddStringToObject(out, "type", "searchset");
        int n = cJSON_GetArraySize(all), per = count || f->page <= 0 ? n : f->page;
        cJSON *entries = cJSON_AddArrayToObject(out, "entry");
        for (int i = page * per; i < n && i < (page + 1) * per; i++)
            cJSON_AddItemToArray(entries, cJSON_Duplicate(cJSON_GetArrayItem(all, i), 1));
        if (per && (page + 1) * per < n) {
            char next[300];
            snprintf(next, sizeof next, "http://127.0.0.1:%d/fhir/%s?patient=%s&_page=%d", f->port,
                     type, patient ? patient : "", page + 1);
            cJSON *links = cJSON_AddArrayToObject(out, "link"), *l = cJSON_CreateObject();
            cJSON_AddStringToObject(l, "relation", "next");
            cJSON_AddStringToObject(l, "url", next);
            cJSON_AddItemToArray(links, l);
        }
        cJSON_Delete(all);
    }
    char *text = cJSON_PrintUnformatted(out);
    cJSON_Delete(out);
    return tu_fhir_send(c, 200, text);
}

/* Starts a FHIR test server on 127.0.0.1 (any port) serving bundle_text; token "" needs none. */
static inline int tu_fhir_start(tu_fhir *f, const char *bundle_text, const char *token, int page) {
    memset(f, 0, sizeof *f);
    f->bundle = cJSON_Parse(bundle_text);
    snprintf(f->token, sizeof f->token, "%s", token);
    f->page = page;
    pthread_mutex_init(&f->mu, NULL);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    f->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO, 0, NULL, NULL,
                            tu_fhir_request, f, MHD_OPTION_SOCK_ADDR, &a, MHD_OPTION_END);
    if (!f->d || !f->bundle) return -1;
    f->port = MHD_get_daemon_info(f->d, MHD_DAEMON_INFO_BIND_PORT)->port;
    return 0;
}

static inline void tu_fhir_stop(tu_fhir *f) {
    if (f->d) MHD_stop_daemon(f->d);
    cJSON_Delete(f->bundle);
    pthread_mutex_destroy(&f->mu);
    memset(f, 0, sizeof *f);
}

#endif
