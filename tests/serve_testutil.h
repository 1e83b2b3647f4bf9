/* Helpers shared by the service tests: reading gzipped bundles, signing CDS Hooks JWTs the way an
 * EHR would (OpenSSL, ES384 and RS384) with their JWKS, building prefetch from a Synthea bundle,
 * and a minimal blocking HTTP/1.1 client for loopback. Everything here is test code. */
#ifndef CLINFM_TESTS_SERVE_TESTUTIL_H
#define CLINFM_TESTS_SERVE_TESTUTIL_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <sodium.h>
#include <zlib.h>

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

/* Compact JWT with header {"alg":alg,"typ":"JWT","kid":kid} and the given payload, signed with k
 * (ES384: raw r||s; RS384: PKCS#1 v1.5). alg is written as given, so tests can lie about it. */
static inline char *tu_jwt(EVP_PKEY *k, const char *alg, const char *kid, const char *payload) {
    char header[256], h64[512], *p64 = malloc(strlen(payload) * 2 + 8);
    snprintf(header, sizeof header, "{\"alg\":\"%s\",\"typ\":\"JWT\",\"kid\":\"%s\"}", alg, kid);
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

/* Prefetch as an EHR would send it for the Patient of a Synthea transaction bundle: "patient" is
 * the Patient resource; other resources are grouped by type into searchset Bundles, with their
 * subject/patient references rewritten to "Patient/<id>". *patient_id receives the id. */
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
        snprintf(key, sizeof key, "%.50ss", t);
        key[0] = (char)(key[0] | 0x20);
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
    cJSON_Delete(b);
    return pf;
}

typedef struct {
    int status;
    char *body;      /* NUL-terminated */
    size_t body_len;
    char headers[4096];
} tu_resp;

/* One request over a fresh connection ("Connection: close"); status 0 on a transport failure.
 * extra_headers: "Name: value\r\n..." or NULL. */
static inline tu_resp tu_http(int port, const char *method, const char *path,
                              const char *extra_headers, const char *body, size_t body_len) {
    tu_resp r = {0, NULL, 0, ""};
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {20, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&a, sizeof a)) {
        close(fd);
        return r;
    }
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
    close(fd);
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

static inline void tu_resp_free(tu_resp *r) {
    free(r->body);
    r->body = NULL;
}

#endif
