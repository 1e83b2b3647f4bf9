/* What the request-handling files of the service share (serve_handler.c: the two phases,
 * routing, authentication, audit, REST; serve_hooks.c: CDS Hooks): the per-request state and
 * the helpers that answer, parse and score (serve_request.c). Not a public API. */
#ifndef CLINFM_SERVE_SERVE_INTERNAL_H
#define CLINFM_SERVE_SERVE_INTERNAL_H

#include <stdatomic.h>

#include <cjson/cJSON.h>

#include "ingest/fhir_json.h"
#include "serve/serve.h"
#include "serve/serve_cache.h"
#include "serve/serve_record.h"

#define SERVE__MAX_CARDS 16

struct serve_ctx {
    serve_setup s;
    const serve_config *c;
    serve_metrics metrics;
    serve_cache *cache;         /* NULL when card_cache is 0 */
    /* protected-route requests refused before anyone was identified, by status index
     * (serve_metrics_status_index), since the last tick */
    atomic_uint_fast64_t unaudited[SERVE_N_STATUS];
};

/* One request, from its headers to its answer (serve_call in serve.h). */
struct serve_call {
    serve_ctx *s;
    const serve_request *rq;    /* the phase's request (headers only in phase one) */
    serve_response *rs;
    int route, auth;            /* route id; its authentication class */
    char method[16];
    char service_id[65];
    char path_id[257];          /* patient id from the URL */
    const serve_service *svc;
    char principal[600], role[16], user[256];
    int identified;             /* a key or JWT was accepted: the request is audited */
    int unlogged;               /* refused by the client budget: counted, not logged line by line */
    char patient_id[256];       /* the patient the request was about (pseudonymised in audit) */
    int scored;
    serve_card_row cards[SERVE__MAX_CARDS];
    char card_uuid[SERVE__MAX_CARDS][37];
    char card_task[SERVE__MAX_CARDS][65];
    size_t n_cards;
    const serve_feedback_row *feedback; /* recorded with the audit row; owned by the handler */
    size_t n_feedback;
    fhir_arena *arena;          /* non-NULL while a parse tree is alive */
    int64_t wall_us;
    double start_s;
    void (*cleanup)(struct serve_call *r); /* frees what the handler kept for the audit row */
    void *cleanup_data;
};
typedef struct serve_call req;

/* ------------------------------------------------------------------ shared helpers (serve_request.c) */

/* Replaces the response body (taken; type is static text). */
void serve__set_body(req *r, char *body, size_t len, const char *type);
/* A query argument's value, or NULL. */
const char *serve__arg(const req *r, const char *name);
/* Answers with {"error", "detail"} (ends the parse tree). */
void serve__fail(req *r, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Answers with o (taken; ends the parse tree first, so o must not live in the arena). */
void serve__reply_json(req *r, int status, cJSON *o);
/* Parses the body into the thread's arena with room for extra bytes of fetched FHIR data;
 * NULL with the response set on failure. */
cJSON *serve__parse_body(req *r, size_t extra);
/* Parses text into the active arena (after a depth check); NULL when it is not JSON. */
cJSON *serve__parse_more(req *r, const char *text, size_t len);
void serve__parse_end(req *r);
/* 1 (response set: 503) when the request ran past limits.request_timeout_ms. */
int serve__over_time(req *r);
double serve__elapsed_ms(const req *r);
/* Scores rec for t (through the card cache); -1 with the response set on failure. */
int serve__score_one(req *r, const serve_record *rec, const serve_task *t, serve_score *sc);
/* 1 when rec holds a dated event other than the birth at or before its prediction time: a
 * record with nothing else is never scored (its "prediction time" would be the birth). */
int serve__record_scorable(const serve_record *rec);
int serve__valid_id(const char *s, size_t max);
void serve__copy_str(char *dst, size_t cap, const cJSON *v);
const char *serve__indicator(const serve_task *t, double risk);
const char *serve__event_text(const serve_patient *p, size_t i);
int64_t serve__now_us(void);

/* CDS Hooks (serve_hooks.c). */
void serve__h_hook(req *r);
void serve__h_feedback(req *r);

#endif
