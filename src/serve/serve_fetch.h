/* The service's FHIR client: reads what a hook's prefetch did not bring from the EHR's FHIR
 * server (CDS Hooks fhirServer, with the fhirAuthorization access token as a bearer token).
 *
 * libcurl (Debian libcurl4-openssl-dev) does the HTTP(S): it is the FHIR client most EHR
 * integrations already trust, verifies TLS peers against the system's CAs (or fhir.ca_file), and
 * its multi interface reads every missing key at once, so a hook waits for the slowest read, not
 * for the sum. What this module adds is the service's rules:
 *   - it only ever talks to servers the configuration lists (fhir.servers): fhirServer comes
 *     from the request, so without the list any caller with a key could point the service at
 *     any address (server-side request forgery). Redirects are not followed; next-page links are
 *     followed only when they stay under the same server base;
 *   - everything must be in by one deadline (the hook's remaining time, at most fhir.timeout_ms),
 *     and all responses together are capped at fhir.max_bytes;
 *   - the access token goes only into the Authorization header of these reads; it is never
 *     logged, stored or echoed (messages name the prefetch key, never URLs, which hold ids).
 * One call reads one round of URLs; the caller parses the pages and, for searches without _count,
 * asks for the "next" links in another round (up to fhir.max_pages), after checking with
 * serve_fetch_same_server that each stays under the server's base. */
#ifndef CLINFM_SERVE_SERVE_FETCH_H
#define CLINFM_SERVE_SERVE_FETCH_H

#include <stddef.h>

#include "util/err.h"

typedef struct {
    const char *url;           /* absolute (borrowed) */
    /* results */
    int status;                /* HTTP status; 0: no answer in time, or over the byte budget */
    char *body;                /* the response body, NUL-terminated; malloc'd */
    size_t len;
} serve_fetch_item;

typedef struct {
    const char *server;        /* the request's fhirServer, exactly as listed in fhir.servers */
    const char *token;         /* fhirAuthorization.access_token, or NULL */
    double deadline_s;         /* now_seconds() value by which everything must be in */
    size_t *budget;            /* response bytes still allowed over all rounds; decremented */
    const char *ca_file;       /* NULL: the system's CA store */
} serve_fetch_opts;

/* Once per process, before any thread starts (libcurl's global state). */
int serve_fetch_global_init(cf_err *err);

/* 1 when server is one of the n configured bases (compared without a trailing '/'). */
int serve_fetch_allowed(const char *server, const char *const *servers, size_t n);
/* 1 when url lies under the base server ("<server>/..." or "<server>?..."). */
int serve_fetch_same_server(const char *server, const char *url);

/* 1 when token can go into an Authorization header as is (printable ASCII, no spaces, at most
 * 4096 characters): a CR or LF would let the caller write its own headers. */
int serve_fetch_token_ok(const char *token);

/* Reads every item at once. Returns CF_OK when the reads ran (each item says how it went:
 * status 200 with a body, another status, or 0); CF_EINTERNAL when libcurl could not start. */
int serve_fetch_run(const serve_fetch_opts *o, serve_fetch_item *items, size_t n, cf_err *err);

void serve_fetch_free(serve_fetch_item *items, size_t n);

#endif
