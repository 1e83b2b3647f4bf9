/* The service's own database (SQLite, WAL): the audit trail, the cards it issued, clinicians'
 * feedback on them, and API keys, all under tamper evidence keyed by the service secret. One
 * file, one writer process; created mode 0600 and refused when others may read it.
 *
 * Audit trail. One row per request that identified someone (an API key or a verified JWT),
 * per token command, per server start, and one aggregate row per anchor interval for the
 * requests refused before anyone was identified (`count` of them): when, who (API key id or JWT
 * issuer and subject, the clinician's userId from the hook context), role, method, route
 * template (never the raw URL, which can hold a patient id), status, the patient as a keyed
 * pseudonym, model name and version, BLAKE2b-256 of the response body, latency, count, and
 * `attached`: a digest of the MACs of the cards and feedback rows written with the row. Rows are
 * hash-chained: row_hash = BLAKE2b-256 keyed with a subkey of the service secret over a version
 * tag, the previous row's hash, the row number and every field (length-prefixed). Editing a field,
 * deleting or inserting a row, or reordering rows breaks the chain, and without the secret the
 * chain cannot be recomputed. (Rows written before schema 2 carry the v1 tag and no count or
 * attached field; meta.chain_v2_from says where v2 starts.)
 *
 * Anchors. Deleting the newest rows would leave a valid shorter chain, so the chain's tail is
 * anchored: serve_db_anchor verifies the rows appended since the last anchor and writes a signed
 * anchor line (Ed25519, a key derived from the service secret)
 *     clinfm-audit-anchor v1 db=<id> rows=<n> hash=<row n's hash> ts_us=<t> time=<iso> sig=<hex>
 * to <database>-head (replaced atomically), to an anchor file the operator keeps elsewhere
 * (appended; audit.anchor_file) and to syslog (audit.anchor_syslog). The server anchors on a
 * timer (audit.anchor_interval_s) and at shutdown, so an idle server's tail is anchored within
 * one interval; verification fails when the table ends before an anchor, and `--anchor FILE`
 * checks the chain against every anchor an auditor kept, which a restored older head file cannot
 * fool. An empty table or a missing head file is never reported intact.
 *
 * Cards, feedback and keys. Every row carries a MAC (BLAKE2b-256 keyed by another subkey) over
 * all its fields; cards and feedback name the audit row they were written with, whose `attached`
 * digest covers their MACs, so editing, deleting, adding or moving one is detected; a key row
 * whose MAC fails is never accepted (a revoked key cannot be revived nor a role raised by SQL),
 * and verification also checks each key against the token create / revoke rows of the chain
 * (a row restored from before its revocation has a valid MAC but a revocation in the chain).
 *
 * Secret file (`clinfm audit keygen`): "clinfm-serve-key v1\n<64 hex>\n", mode 0600, kept apart
 * from the database. Subkeys (libsodium KDF) for the audit chain, patient pseudonyms, API key
 * hashing, row MACs and the anchor signing key are independent.
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
/* CF_EINPUT naming path when its group or others have any access (a database, TLS key...). */
int serve_check_private(const char *path, const char *what, cf_err *err);

/* Opens (creating the schema if needed, mode 0600; upgrading a schema 1 database in place).
 * path ":memory:" gives a private in-memory database without a head file (tests, fuzzing). */
int serve_db_open(serve_db **out, const char *path, const unsigned char secret[SERVE_SECRET_BYTES],
                  cf_err *err);
/* Where anchors go besides the head file: an append-only file (NULL: none) and syslog. */
void serve_db_set_anchor_sinks(serve_db *db, const char *anchor_file, int use_syslog);
/* Anchors and closes. */
void serve_db_close(serve_db *db);

/* Verifies the rows appended since the last anchor (from row 1 when there is none) and anchors
 * the chain's tail when it moved. CF_OK; CF_EINPUT naming the first bad row (nothing anchored).
 * *head_missing (may be NULL) is set when the database has rows but no valid head file. */
int serve_db_anchor(serve_db *db, int *head_missing, cf_err *err);
/* Checks that the chain still holds the row the anchor file's last anchor of this database names
 * (rows deleted behind a restored head file are found at the next start). CF_OK when there is no
 * anchor file, or no anchor of this database in it, yet. */
int serve_db_check_anchor_file(serve_db *db, cf_err *err);

/* Keyed pseudonym of a patient id: 32 hex characters; "" for an empty id. */
void serve_db_pseudonym(const serve_db *db, const char *patient_id, char out[33]);

typedef struct {
    int64_t ts_us;
    const char *principal, *role, *user, *method, *route, *patient, *model, *model_version;
    int status;
    const char *response_hash; /* hex */
    int64_t latency_us;
    int64_t count;             /* requests the row stands for; 0 means 1 */
} serve_audit_entry;

typedef struct {
    const char *uuid, *service, *hook, *task, *indicator;
    double risk, lo, hi;
} serve_card_row;

typedef struct {
    int64_t ts_us;
    const char *service, *card, *outcome, *reason_code, *reason_system, *reason_display, *comment,
        *outcome_time, *principal;
} serve_feedback_row;

/* Appends one audit row with the cards it issued and the feedback it recorded, in one
 * transaction. */
int serve_db_audit(serve_db *db, const serve_audit_entry *e, const serve_card_row *cards,
                   size_t n_cards, const serve_feedback_row *feedback, size_t n_feedback,
                   cf_err *err);

typedef struct {
    uint64_t rows, cards, feedback, keys;
    uint64_t anchored;         /* rows covered by the newest anchor checked */
    char anchored_time[40];
} serve_verify_report;

/* Verifies the database at path: the chain, every card, feedback and key row, the head file,
 * and (anchor_file non-NULL) every anchor in that file. Prints a summary to out. CF_OK when
 * intact; CF_EINPUT naming the first problem otherwise (an empty chain, a missing head file,
 * rows deleted before an anchor...). rep may be NULL. */
int serve_db_verify(const char *path, const unsigned char secret[SERVE_SECRET_BYTES],
                    const char *anchor_file, FILE *out, serve_verify_report *rep, cf_err *err);

/* ------------------------------------------------------------------ API keys */

/* Creates a key and its "token create <id>" audit row (principal `who`) in one transaction;
 * token (SERVE_TOKEN_LEN + 1 bytes) receives the only copy of the secret. */
int serve_db_key_create(serve_db *db, const char *name, const char *role, int64_t expires_us,
                        const char *who, char *token, char id[SERVE_KEY_ID_LEN + 1], cf_err *err);
/* Revokes a key with its "token revoke <id>" audit row. CF_EINPUT: no such live key. */
int serve_db_key_revoke(serve_db *db, const char *id, const char *who, cf_err *err);
int serve_db_key_list(serve_db *db, FILE *out, cf_err *err);
/* 1 when token is a live key (fills id and role), 0 when not (unknown, wrong secret, revoked,
 * expired, malformed), -2 when the key's row fails its integrity check (it was edited: refused),
 * -1 on a database error. */
int serve_db_key_check(serve_db *db, const char *token, int64_t now_us,
                       char id[SERVE_KEY_ID_LEN + 1], char role[16]);

/* ------------------------------------------------------------------ cards and feedback */

/* 1 when the service issued card uuid, 0 when not, -2 when the card's row fails its integrity
 * check, -1 on error. */
int serve_db_card_known(serve_db *db, const char *uuid, const char *service);
/* Feedback joined with the card it answers (task, model, risk, pseudonymised patient), as CSV or
 * JSON lines; free-text comments only when with_comments (they may name people). Fails naming
 * the row when a feedback or card row fails its integrity check. */
int serve_db_feedback_export(serve_db *db, FILE *out, int jsonl, int with_comments, cf_err *err);

/* The raw connection, for tests that tamper with rows. */
struct sqlite3 *serve_db_handle(serve_db *db);

#endif
