/* JWT verification against locally configured JWKS, the jti replay cache, and rate limiting;
 * see serve_auth.h for the rules and why libcrypto. */
#include "serve/serve_auth.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <sodium.h>

#define MAX_TOKEN 8192

enum { ALG_ES384 = 1, ALG_RS384 = 2 };

typedef struct {
    int issuer;       /* index into issuers */
    int alg;
    char kid[128];
    EVP_PKEY *pkey;
} jwk_key;

typedef struct {
    unsigned char h[16]; /* BLAKE2b of iss NUL jti */
    int64_t exp;         /* 0 = empty slot */
} replay_slot;

typedef struct {
    uint64_t h;          /* 0 = empty */
    double tokens, last;
} bucket;

/* Token buckets keyed by a string's hash, under one mutex. */
typedef struct {
    pthread_mutex_t mu;
    bucket *buckets;
    size_t cap, used;
    double rate_per_s, burst;
} limiter;

struct serve_auth {
    char **issuers;
    size_t n_issuers;
    jwk_key *keys;
    size_t n_keys, cap_keys;
    int max_lifetime_s, skew_s;
    /* replay cache */
    pthread_mutex_t replay_mu;
    replay_slot *slots;
    size_t cap_slots, used_slots, max_entries;
    /* rate limiting: per authenticated principal, and per client address for requests that
     * identify no one */
    limiter principals, clients;
};

long serve_b64url_decode(const char *in, size_t len, unsigned char *out, size_t cap) {
    size_t n = 0;
    if (len == 0) return 0;
    if (sodium_base642bin(out, cap, in, len, NULL, &n, NULL,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0)
        return -1;
    return (long)n;
}

/* ------------------------------------------------------------------ keys */

static long b64_field(const cJSON *o, const char *key, unsigned char *out, size_t cap) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsString(v)) return -1;
    return serve_b64url_decode(v->valuestring, strlen(v->valuestring), out, cap);
}

static EVP_PKEY *ec_key(const cJSON *jwk) {
    const cJSON *crv = cJSON_GetObjectItemCaseSensitive(jwk, "crv");
    if (!cJSON_IsString(crv) || strcmp(crv->valuestring, "P-384")) return NULL;
    unsigned char pub[1 + 96], x[64], y[64];
    long xl = b64_field(jwk, "x", x, sizeof x), yl = b64_field(jwk, "y", y, sizeof y);
    if (xl != 48 || yl != 48) return NULL;
    pub[0] = 0x04;
    memcpy(pub + 1, x, 48);
    memcpy(pub + 49, y, 48);
    EVP_PKEY *pkey = NULL;
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    if (bld && ctx &&
        OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "secp384r1", 0) &&
        OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pub, sizeof pub) &&
        (params = OSSL_PARAM_BLD_to_param(bld)) && EVP_PKEY_fromdata_init(ctx) > 0 &&
        EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) > 0) {
        /* fromdata does not prove the point is on the curve; a check does */
        EVP_PKEY_CTX *chk = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
        if (!chk || EVP_PKEY_public_check(chk) != 1) {
            EVP_PKEY_free(pkey);
            pkey = NULL;
        }
        EVP_PKEY_CTX_free(chk);
    }
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    return pkey;
}

static EVP_PKEY *rsa_key(const cJSON *jwk) {
    unsigned char n[1024], e[16];
    long nl = b64_field(jwk, "n", n, sizeof n), el = b64_field(jwk, "e", e, sizeof e);
    if (nl < 256 || el < 1) return NULL; /* at least 2048 bits */
    EVP_PKEY *pkey = NULL;
    BIGNUM *bn = BN_bin2bn(n, (int)nl, NULL), *be = BN_bin2bn(e, (int)el, NULL);
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
    if (bn && be && bld && ctx && BN_num_bits(bn) >= 2048 &&
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) &&
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be) &&
        (params = OSSL_PARAM_BLD_to_param(bld)) && EVP_PKEY_fromdata_init(ctx) > 0)
        EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params);
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_free(bn);
    BN_free(be);
    return pkey;
}

int serve_auth_add_jwks(serve_auth *a, const char *iss, const char *jwks, size_t len,
                        const char *name, cf_err *err) {
    int issuer = -1;
    for (size_t i = 0; i < a->n_issuers; i++)
        if (!strcmp(a->issuers[i], iss)) issuer = (int)i;
    if (issuer < 0) {
        char **t = realloc(a->issuers, (a->n_issuers + 1) * sizeof *t);
        if (!t) return cf_fail(err, CF_EINTERNAL, "out of memory");
        a->issuers = t;
        if (!(t[a->n_issuers] = strdup(iss))) return cf_fail(err, CF_EINTERNAL, "out of memory");
        issuer = (int)a->n_issuers++;
    }
    cJSON *root = cJSON_ParseWithLength(jwks, len);
    if (!root) return cf_fail(err, CF_EINPUT, "%s: not valid JSON", name);
    int rc = CF_OK;
    const cJSON *keys = cJSON_GetObjectItemCaseSensitive(root, "keys");
    if (!cJSON_IsArray(keys)) {
        rc = cf_fail(err, CF_EINPUT, "%s: expected a JWKS object {\"keys\": [...]}", name);
        goto done;
    }
    size_t idx = 0, added = 0;
    const cJSON *k;
    cJSON_ArrayForEach(k, keys) {
        idx++;
        const cJSON *kty = cJSON_GetObjectItemCaseSensitive(k, "kty");
        const cJSON *alg = cJSON_GetObjectItemCaseSensitive(k, "alg");
        const cJSON *use = cJSON_GetObjectItemCaseSensitive(k, "use");
        const cJSON *kid = cJSON_GetObjectItemCaseSensitive(k, "kid");
        if (cJSON_IsString(use) && strcmp(use->valuestring, "sig")) continue;
        if (!cJSON_IsString(kty)) {
            rc = cf_fail(err, CF_EINPUT, "%s: keys[%zu].kty: expected a string", name, idx - 1);
            goto done;
        }
        int a_alg = !strcmp(kty->valuestring, "EC") ? ALG_ES384
                    : !strcmp(kty->valuestring, "RSA") ? ALG_RS384 : 0;
        if (!a_alg) continue; /* other key types cannot sign ES384/RS384 tokens */
        if (cJSON_IsString(alg) &&
            strcmp(alg->valuestring, a_alg == ALG_ES384 ? "ES384" : "RS384")) {
            continue; /* a key meant for another algorithm (ES256, RS512...) */
        }
        EVP_PKEY *pk = a_alg == ALG_ES384 ? ec_key(k) : rsa_key(k);
        if (!pk) {
            rc = cf_fail(err, CF_EINPUT,
                         "%s: keys[%zu]: not a usable %s public key (EC keys must be P-384 with x "
                         "and y; RSA keys need n of at least 2048 bits and e)",
                         name, idx - 1, a_alg == ALG_ES384 ? "EC" : "RSA");
            goto done;
        }
        jwk_key *t = cf_grow(a->keys, &a->cap_keys, a->n_keys + 1, sizeof *t, 8);
        if (!t) {
            EVP_PKEY_free(pk);
            rc = cf_fail(err, CF_EINTERNAL, "out of memory");
            goto done;
        }
        a->keys = t;
        jwk_key *jk = &a->keys[a->n_keys++];
        memset(jk, 0, sizeof *jk);
        jk->issuer = issuer;
        jk->alg = a_alg;
        jk->pkey = pk;
        if (cJSON_IsString(kid)) snprintf(jk->kid, sizeof jk->kid, "%s", kid->valuestring);
        added++;
    }
    if (!added)
        rc = cf_fail(err, CF_EINPUT, "%s: no ES384 (EC P-384) or RS384 (RSA) signing key", name);
done:
    cJSON_Delete(root);
    return rc;
}

int serve_auth_open(serve_auth **out, const serve_config *c, cf_err *err) {
    serve_auth *a = calloc(1, sizeof *a);
    if (!a) return cf_fail(err, CF_EINTERNAL, "out of memory");
    pthread_mutex_init(&a->replay_mu, NULL);
    pthread_mutex_init(&a->principals.mu, NULL);
    pthread_mutex_init(&a->clients.mu, NULL);
    a->max_lifetime_s = c->max_token_lifetime_s;
    a->skew_s = c->clock_skew_s;
    a->max_entries = c->replay_cache_max;
    a->principals.rate_per_s = c->rate_per_minute / 60.0;
    a->principals.burst = c->burst;
    a->clients.rate_per_s = c->client_rate_per_minute / 60.0;
    a->clients.burst = c->client_burst;
    *out = a;
    for (size_t i = 0; i < c->n_issuers; i++) {
        char *text;
        size_t len;
        int rc = serve_read_file(c->issuers[i].jwks_path, 1 << 20, &text, &len, err);
        if (!rc) {
            rc = serve_auth_add_jwks(a, c->issuers[i].iss, text, len, c->issuers[i].jwks_path, err);
            free(text);
        }
        if (rc) {
            serve_auth_close(a);
            *out = NULL;
            return rc;
        }
    }
    return CF_OK;
}

void serve_auth_close(serve_auth *a) {
    if (!a) return;
    for (size_t i = 0; i < a->n_keys; i++) EVP_PKEY_free(a->keys[i].pkey);
    free(a->keys);
    for (size_t i = 0; i < a->n_issuers; i++) free(a->issuers[i]);
    CF_FREE_ALL(a->issuers, a->slots, a->principals.buckets, a->clients.buckets);
    pthread_mutex_destroy(&a->replay_mu);
    pthread_mutex_destroy(&a->principals.mu);
    pthread_mutex_destroy(&a->clients.mu);
    free(a);
}

/* ------------------------------------------------------------------ signature */

static int verify_sig(const jwk_key *k, const unsigned char *msg, size_t len,
                      const unsigned char *sig, size_t sig_len) {
    unsigned char der[160];
    const unsigned char *vs = sig;
    size_t vl = sig_len;
    if (k->alg == ALG_ES384) {
        /* JWS carries r || s (48 bytes each); OpenSSL verifies DER */
        if (sig_len != 96) return 0;
        ECDSA_SIG *es = ECDSA_SIG_new();
        BIGNUM *r = BN_bin2bn(sig, 48, NULL), *s = BN_bin2bn(sig + 48, 48, NULL);
        if (!es || !r || !s || !ECDSA_SIG_set0(es, r, s)) {
            BN_free(r);
            BN_free(s);
            ECDSA_SIG_free(es);
            return 0;
        }
        unsigned char *p = der;
        int n = i2d_ECDSA_SIG(es, NULL);
        if (n <= 0 || (size_t)n > sizeof der) {
            ECDSA_SIG_free(es);
            return 0;
        }
        n = i2d_ECDSA_SIG(es, &p);
        ECDSA_SIG_free(es);
        vs = der;
        vl = (size_t)n;
    }
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int ok = md && EVP_DigestVerifyInit(md, NULL, EVP_sha384(), NULL, k->pkey) == 1 &&
             EVP_DigestVerify(md, vs, vl, msg, len) == 1;
    EVP_MD_CTX_free(md);
    return ok;
}

/* ------------------------------------------------------------------ replay cache */

static size_t slot_of(const unsigned char h[16], size_t cap) {
    uint64_t v;
    memcpy(&v, h, 8);
    return (size_t)(v & (cap - 1));
}

/* Rebuilds the table at cap slots, dropping expired entries. */
static int replay_rehash(serve_auth *a, size_t cap, int64_t now) {
    replay_slot *n = calloc(cap, sizeof *n);
    if (!n) return -1;
    size_t used = 0;
    for (size_t i = 0; i < a->cap_slots; i++) {
        replay_slot *s = &a->slots[i];
        if (!s->exp || s->exp < now) continue;
        size_t j = slot_of(s->h, cap);
        while (n[j].exp) j = (j + 1) & (cap - 1);
        n[j] = *s;
        used++;
    }
    free(a->slots);
    a->slots = n;
    a->cap_slots = cap;
    a->used_slots = used;
    return 0;
}

/* 0 first use (recorded), 1 replay, 2 cache full, -1 out of memory. */
static int replay_check(serve_auth *a, const char *iss, const char *jti, int64_t exp, int64_t now) {
    unsigned char h[16];
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, sizeof h);
    crypto_generichash_update(&st, (const unsigned char *)iss, strlen(iss) + 1);
    crypto_generichash_update(&st, (const unsigned char *)jti, strlen(jti));
    crypto_generichash_final(&st, h, sizeof h);
    int rc = 0;
    pthread_mutex_lock(&a->replay_mu);
    if (!a->cap_slots && replay_rehash(a, 1024, now)) {
        rc = -1;
        goto out;
    }
    if ((a->used_slots + 1) * 2 > a->cap_slots) {
        /* drop expired entries first; grow only when live entries need it */
        size_t cap = a->cap_slots;
        if (replay_rehash(a, cap, now)) {
            rc = -1;
            goto out;
        }
        if ((a->used_slots + 1) * 2 > a->cap_slots) {
            if (a->used_slots >= a->max_entries) {
                rc = 2;
                goto out;
            }
            if (replay_rehash(a, cap * 2, now)) {
                rc = -1;
                goto out;
            }
        }
    }
    size_t j = slot_of(h, a->cap_slots);
    while (a->slots[j].exp) {
        if (!memcmp(a->slots[j].h, h, 16) && a->slots[j].exp >= now) {
            rc = 1;
            goto out;
        }
        j = (j + 1) & (a->cap_slots - 1);
    }
    memcpy(a->slots[j].h, h, 16);
    a->slots[j].exp = exp;
    a->used_slots++;
out:
    pthread_mutex_unlock(&a->replay_mu);
    return rc;
}

/* ------------------------------------------------------------------ verify */

static int num_claim(const cJSON *p, const char *k, int64_t *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(p, k);
    if (!v) return 0;
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || fabs(v->valuedouble) > 1e15) return -1;
    *out = (int64_t)v->valuedouble;
    return 1;
}

static int aud_ok(const cJSON *aud, const char *const *auds, size_t n) {
    if (cJSON_IsString(aud)) {
        for (size_t i = 0; i < n; i++)
            if (auds[i] && !strcmp(aud->valuestring, auds[i])) return 1;
        return 0;
    }
    if (!cJSON_IsArray(aud)) return 0;
    const cJSON *v;
    cJSON_ArrayForEach(v, aud) if (cJSON_IsString(v) && aud_ok(v, auds, n)) return 1;
    return 0;
}

int serve_jwt_verify(serve_auth *a, const char *token, const char *const *auds, size_t n_auds,
                     int64_t now, serve_jwt_claims *out, const char **why) {
    size_t len = strlen(token);
    const char *d1 = memchr(token, '.', len);
    const char *d2 = d1 ? memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - token)) : NULL;
    if (len > MAX_TOKEN || !d1 || !d2 || memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - token))) {
        *why = "the bearer token is neither an API key nor a compact JWT";
        return 1;
    }
    static _Thread_local unsigned char hbuf[MAX_TOKEN], pbuf[MAX_TOKEN], sbuf[MAX_TOKEN];
    long hl = serve_b64url_decode(token, (size_t)(d1 - token), hbuf, sizeof hbuf - 1);
    long pl = serve_b64url_decode(d1 + 1, (size_t)(d2 - d1 - 1), pbuf, sizeof pbuf - 1);
    long sl = serve_b64url_decode(d2 + 1, len - (size_t)(d2 + 1 - token), sbuf, sizeof sbuf);
    if (hl <= 0 || pl <= 0 || sl <= 0) {
        *why = "the JWT is not valid base64url";
        return 1;
    }
    cJSON *h = cJSON_ParseWithLength((const char *)hbuf, (size_t)hl);
    cJSON *p = cJSON_ParseWithLength((const char *)pbuf, (size_t)pl);
    int rc = 1;
    if (!cJSON_IsObject(h) || !cJSON_IsObject(p)) {
        *why = "the JWT header or payload is not a JSON object";
        goto done;
    }
    const cJSON *alg = cJSON_GetObjectItemCaseSensitive(h, "alg");
    const cJSON *kid = cJSON_GetObjectItemCaseSensitive(h, "kid");
    const cJSON *typ = cJSON_GetObjectItemCaseSensitive(h, "typ");
    int want = !cJSON_IsString(alg) ? 0
               : !strcmp(alg->valuestring, "ES384") ? ALG_ES384
               : !strcmp(alg->valuestring, "RS384") ? ALG_RS384 : 0;
    if (!want) {
        *why = "the JWT algorithm must be ES384 or RS384";
        goto done;
    }
    if (cJSON_GetObjectItemCaseSensitive(h, "crit")) {
        *why = "the JWT names critical header extensions this service does not implement";
        goto done;
    }
    /* CDS Hooks 2.0: kid and typ "JWT" are required in the header */
    if (!cJSON_IsString(kid) || !kid->valuestring[0]) {
        *why = "the JWT header has no kid (CDS Hooks requires one)";
        goto done;
    }
    if (!cJSON_IsString(typ) || strcasecmp(typ->valuestring, "JWT")) {
        *why = "the JWT header typ must be \"JWT\"";
        goto done;
    }
    const cJSON *iss = cJSON_GetObjectItemCaseSensitive(p, "iss");
    int issuer = -1;
    if (cJSON_IsString(iss))
        for (size_t i = 0; i < a->n_issuers; i++)
            if (!strcmp(a->issuers[i], iss->valuestring)) issuer = (int)i;
    if (issuer < 0) {
        *why = "the JWT issuer is not configured";
        goto done;
    }
    int verified = 0, candidates = 0;
    for (size_t i = 0; i < a->n_keys && !verified; i++) {
        const jwk_key *k = &a->keys[i];
        if (k->issuer != issuer || k->alg != want || strcmp(k->kid, kid->valuestring)) continue;
        candidates++;
        verified = verify_sig(k, (const unsigned char *)token, (size_t)(d2 - token), sbuf,
                              (size_t)sl);
    }
    if (!verified) {
        *why = candidates ? "the JWT signature does not verify"
                          : "no configured key of the issuer matches the JWT kid and algorithm";
        goto done;
    }
    int64_t exp = 0, nbf = 0, iat = 0;
    int he = num_claim(p, "exp", &exp), hn = num_claim(p, "nbf", &nbf),
        hi = num_claim(p, "iat", &iat);
    if (he <= 0) {
        *why = "the JWT has no numeric exp";
        goto done;
    }
    if (hi <= 0) {
        *why = "the JWT has no numeric iat (CDS Hooks requires one)";
        goto done;
    }
    if (hn < 0) {
        *why = "the JWT nbf is not a number";
        goto done;
    }
    if (now > exp + a->skew_s) {
        *why = "the JWT has expired";
        goto done;
    }
    if (exp - now > (int64_t)a->max_lifetime_s + a->skew_s) {
        *why = "the JWT expires too far in the future (see auth.max_token_lifetime_s)";
        goto done;
    }
    if ((hn && nbf > now + a->skew_s) || iat > now + a->skew_s) {
        *why = "the JWT is not valid yet (nbf or iat in the future)";
        goto done;
    }
    const cJSON *jti = cJSON_GetObjectItemCaseSensitive(p, "jti");
    if (!cJSON_IsString(jti) || !jti->valuestring[0] || strlen(jti->valuestring) > 512) {
        *why = "the JWT has no jti";
        goto done;
    }
    /* A signed, current token is spent wherever it is presented, before its audience is checked:
     * one sent to the wrong endpoint (discovery, another service) can never be replayed on the
     * right one. */
    int r = replay_check(a, iss->valuestring, jti->valuestring, exp + a->skew_s, now);
    if (r == 1) {
        *why = "the JWT was already used (jti replay)";
        goto done;
    }
    if (r) {
        *why = r == 2 ? "the replay cache is full; retry shortly" : "out of memory";
        rc = r == 2 ? 2 : 3;
        goto done;
    }
    if (!aud_ok(cJSON_GetObjectItemCaseSensitive(p, "aud"), auds, n_auds)) {
        *why = "the JWT audience is not the endpoint called";
        goto done;
    }
    const cJSON *sub = cJSON_GetObjectItemCaseSensitive(p, "sub");
    snprintf(out->iss, sizeof out->iss, "%s", iss->valuestring);
    snprintf(out->sub, sizeof out->sub, "%s", cJSON_IsString(sub) ? sub->valuestring : "");
    rc = 0;
done:
    cJSON_Delete(h);
    cJSON_Delete(p);
    return rc;
}

/* ------------------------------------------------------------------ rate limit */

static uint64_t hash_str(const char *s) {
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    h ^= h >> 29;
    return h ? h : 1;
}

/* The bucket of key (created full), with its tokens brought up to now; NULL when out of memory.
 * Caller holds l->mu. */
static bucket *bucket_of(limiter *l, const char *key, double now) {
    uint64_t h = hash_str(key);
    if ((l->used + 1) * 2 > l->cap) {
        /* Buckets of idle keys are full anyway; past 65536 keys, start afresh. */
        size_t cap = l->cap ? l->cap * 2 : 64;
        if (cap > 131072) cap = 131072;
        bucket *n = calloc(cap, sizeof *n);
        if (!n) return NULL;
        size_t used = 0;
        if (cap > l->cap)
            for (size_t i = 0; i < l->cap; i++) {
                if (!l->buckets[i].h) continue;
                size_t j = l->buckets[i].h & (cap - 1);
                while (n[j].h) j = (j + 1) & (cap - 1);
                n[j] = l->buckets[i];
                used++;
            }
        free(l->buckets);
        l->buckets = n;
        l->cap = cap;
        l->used = used;
    }
    size_t j = h & (l->cap - 1);
    while (l->buckets[j].h && l->buckets[j].h != h) j = (j + 1) & (l->cap - 1);
    bucket *b = &l->buckets[j];
    if (!b->h) {
        b->h = h;
        b->tokens = l->burst;
        b->last = now;
        l->used++;
    }
    b->tokens += (now - b->last) * l->rate_per_s;
    if (b->tokens > l->burst) b->tokens = l->burst;
    b->last = now;
    return b;
}

/* take: consume a token when one is there. Returns 1 when one was (or the limiter is off or
 * out of memory: authentication has its own checks), 0 when empty with *retry_s set. */
static int limiter_use(limiter *l, const char *key, double now, int take, double *retry_s) {
    *retry_s = 0;
    if (l->rate_per_s <= 0) return 1;
    int ok = 1;
    pthread_mutex_lock(&l->mu);
    bucket *b = bucket_of(l, key, now);
    if (b) {
        if (b->tokens >= 1) {
            if (take) b->tokens -= 1;
        } else {
            ok = 0;
            *retry_s = (1 - b->tokens) / l->rate_per_s;
        }
    }
    pthread_mutex_unlock(&l->mu);
    return ok;
}

int serve_rate_take(serve_auth *a, const char *principal, double now, double *retry_s) {
    return limiter_use(&a->principals, principal, now, 1, retry_s);
}

int serve_client_allowed(serve_auth *a, const char *client, double now, double *retry_s) {
    return limiter_use(&a->clients, client ? client : "", now, 0, retry_s);
}

void serve_client_charge(serve_auth *a, const char *client, double now) {
    double r;
    limiter_use(&a->clients, client ? client : "", now, 1, &r);
}
