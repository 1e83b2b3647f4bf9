/* Authentication for the service: CDS Hooks JWTs, the replay cache, and per-principal rate
 * limits. (Opaque API keys live in serve_db.h.)
 *
 * JWTs (CDS Hooks 2.0 security): the EHR signs a JWT with its private key; the service checks it
 * against the issuer's public keys, configured locally as a JWKS file per issuer (no network
 * fetch: a hospital decides which EHRs it trusts). Accepted algorithms are exactly ES384 (P-384)
 * and RS384 (RSA >= 2048 bits), pinned by the key: a key's type decides its algorithm, so a token
 * cannot choose "none", HMAC with a public key, or another curve. Checks, in order: compact form
 * and size, header (alg; kid and typ "JWT", both required by CDS Hooks 2.0; no "crit"), issuer
 * known, signature by the issuer's key of that kid, exp (required, not past, not more than
 * max_token_lifetime_s ahead), iat (required) and nbf (not in the future), jti (required) and the
 * replay check -- (iss, jti) is remembered until the token expires and a second use is refused --
 * and last aud (string or array) holding the URL of the endpoint called. The jti is spent before
 * the audience is compared, so a token presented at the wrong endpoint (discovery, another
 * service) is used up there and cannot be replayed where it was meant to go. Clock skew
 * tolerance applies to every time check.
 *
 * Signatures are verified with OpenSSL's libcrypto. Debian 12's libjwt (1.10.2) was considered
 * and not used: it has no JWKS support (keys must be PEM) and verifies with whatever algorithm the
 * token's header names, which would force a second parse of the header to stop algorithm
 * confusion; with libcrypto the JWK -> key -> algorithm binding is explicit and the service needs
 * no extra library. */
#ifndef CLINFM_SERVE_SERVE_AUTH_H
#define CLINFM_SERVE_SERVE_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "serve/serve_config.h"
#include "util/err.h"

typedef struct serve_auth serve_auth;

/* Loads every issuer's JWKS file. */
int serve_auth_open(serve_auth **out, const serve_config *c, cf_err *err);
void serve_auth_close(serve_auth *a);

/* Adds keys from JWKS text for issuer iss (also used by tests and the fuzzer). */
int serve_auth_add_jwks(serve_auth *a, const char *iss, const char *jwks, size_t len,
                        const char *name, cf_err *err);

typedef struct {
    char iss[256], sub[256];
} serve_jwt_claims;

/* Verifies token; auds lists the accepted audiences for this route (the endpoint's URL under each
 * base URL). Returns 0 when accepted; 2 when the replay cache is full, 3 out of memory, and 1
 * for every other refusal, with *why a static reason fit for a 401 detail. now_s: Unix time. */
int serve_jwt_verify(serve_auth *a, const char *token, const char *const *auds, size_t n_auds,
                     int64_t now_s, serve_jwt_claims *out, const char **why);

/* Token-bucket rate limit per principal: rate_per_minute sustained, burst at once. Returns 1
 * when the request may proceed, 0 when limited (*retry_s: seconds until a token is available).
 * rate_per_minute 0 disables the limit. */
int serve_rate_take(serve_auth *a, const char *principal, double now_s, double *retry_s);

/* The budget of a client address for requests that identify no one (limits.client_rate_per_minute,
 * client_burst): serve_client_allowed, asked before any authentication work, is 0 (with
 * *retry_s) once the address has spent it; serve_client_charge spends one request (a refused
 * token, a route without one, an unknown route). A client whose requests authenticate never
 * spends anything, so an unauthenticated flood from one address stops costing more than a
 * lookup without touching the clients that identify themselves. */
int serve_client_allowed(serve_auth *a, const char *client, double now_s, double *retry_s);
void serve_client_charge(serve_auth *a, const char *client, double now_s);

/* Base64url without padding (JWT segments). Returns the decoded length or -1. */
long serve_b64url_decode(const char *in, size_t len, unsigned char *out, size_t cap);

#endif
