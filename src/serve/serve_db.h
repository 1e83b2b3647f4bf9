/* The service's own database (SQLite, WAL): the audit trail, the cards it issued, clinicians'
 * feedback on them, and API keys. One file, one writer process.
 *
 * Audit trail. One row per request to a protected route (and per token command): when, who
 * (API key id or JWT issuer and subject, the clinician's userId from the hook context), role,
 * method, route template (never the raw URL, which can hold a patient id), status, the patient as
 * a keyed pseudonym, model name and version, BLAKE2b-256 of the response body, latency. Rows are
 * hash-chained: row_hash = BLAKE2b-256 keyed with a subkey of the service secret over a version
 * tag, the previous row's hash, the row number and every field (length-prefixed). Editing a
 * field, deleting or inserting a row, or reordering rows breaks the chain, and without the
 * secret the chain cannot be recomputed. Deleting the newest rows leaves a valid shorter chain,
 * so the server also writes a MAC'd head file (<database>-head: last row number and hash) at most
 * once a second and at shutdown; verification fails when the table ends before the head. Rows
 * written in the last second before a crash are the only ones not covered by the head.
 *
 * Secret file (`clinfm audit keygen`): "clinfm-serve-key v1\n<64 hex>\n", mode 0600, kept apart
 * from the database. Subkeys (libsodium KDF) for the audit MAC, patient pseudonyms and API key
 * hashing are independent.
 *
 * API keys: "cfk_<16 hex id>_<64 hex secret>", shown once at creation; the database keeps only a
 * keyed BLAKE2b-256 of the whole token (a 256-bit random secret needs no slow password hash),
 * compared in constant time. Roles: clinician, service, admin.
 *
 * Every function is thread-safe (one connection behind a mutex). */
#ifndef CLINFM_SERVE_SERVE_DB_H
#define CLINFM_SERVE_SERVE_DB_H

#include <stdint.h>
#include <stdio.h>

#include "util/err.h"

#define SERVE_SECRET_BYTES 32
#define SERVE_KEY_ID_LEN 16
#define SERVE_TOKEN_LEN (4 + SERVE_KEY_ID_LEN + 1 + 64)

typedef struct serve_db serve_db;

int serve_secret_generate(const char *path, cf_err *err); /* refuses to overwrite */
int serve_secret_load(const char *path, unsigned char key[SERVE_SECRET_BYTES], cf_err *err);

/* Opens (creating the schema if needed). path ":memory:" gives a private in-memory database
 * without a head file (tests, fuzzing). */
int serve_db_open(serve_db **out, const char *path, const unsigned char secret[SERVE_SECRET_BYTES],
                  cf_err *err);
/* Writes the head file and closes. */
void serve_db_close(serve_db *db);

/* Keyed pseudonym of a patient id: 32 hex characters; "" for an empty id. */
void serve_db_pseudonym(const serve_db *db, const char *patient_id, char out[33]);

typedef struct {
    int64_t ts_us;
    const char *principal, *role, *user, *method, *route, *patient, *model, *model_version;
    int status;
    const char *response_hash; /* hex */
    int64_t latency_us;
} serve_audit_entry;

typedef struct {
    const char *uuid, *service, *hook, *task, *indicator;
    double risk, lo, hi;
} serve_card_row;

/* Appends one audit row (and the cards it issued) in one transaction. */
int serve_db_audit(serve_db *db, const serve_audit_entry *e, const serve_card_row *cards,
                   size_t n_cards, cf_err *err);

/* Verifies the chain and the head file of the database at path; prints findings to out. CF_OK
 * when intact; CF_EINPUT naming the first broken row otherwise. *rows gets the row count. */
int serve_db_verify(const char *path, const unsigned char secret[SERVE_SECRET_BYTES], FILE *out,
                    uint64_t *rows, cf_err *err);

/* ------------------------------------------------------------------ API keys */

/* Creates a key; token (SERVE_TOKEN_LEN + 1 bytes) receives the only copy of the secret. */
int serve_db_key_create(serve_db *db, const char *name, const char *role, int64_t expires_us,
                        char *token, char id[SERVE_KEY_ID_LEN + 1], cf_err *err);
int serve_db_key_revoke(serve_db *db, const char *id, cf_err *err); /* CF_EINPUT: no such key */
int serve_db_key_list(serve_db *db, FILE *out, cf_err *err);
/* 1 when token is a live key (fills id and role), 0 when not (unknown, wrong secret, revoked,
 * expired, malformed), -1 on a database error. */
int serve_db_key_check(serve_db *db, const char *token, int64_t now_us,
                       char id[SERVE_KEY_ID_LEN + 1], char role[16]);

/* ------------------------------------------------------------------ feedback */

typedef struct {
    int64_t ts_us;
    const char *service, *card, *outcome, *reason_code, *reason_system, *reason_display, *comment,
        *outcome_time, *principal;
} serve_feedback_row;

/* 1 when the service issued card uuid, 0 when not, -1 on error. */
int serve_db_card_known(serve_db *db, const char *uuid, const char *service);
int serve_db_feedback(serve_db *db, const serve_feedback_row *rows, size_t n, cf_err *err);
/* Feedback joined with the card it answers (task, model, risk, pseudonymised patient), as CSV or
 * JSON lines; free-text comments only when with_comments (they may name people). */
int serve_db_feedback_export(serve_db *db, FILE *out, int jsonl, int with_comments, cf_err *err);

/* The raw connection, for tests that tamper with rows. */
struct sqlite3 *serve_db_handle(serve_db *db);

#endif
