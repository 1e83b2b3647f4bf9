/* The service database: audit chain, cards, feedback, API keys; see serve_db.h. */
#include "serve/serve_db.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>
#include <sqlite3.h>

#include "serve/serve_config.h"
#include "serve/serve_summary.h"
#include "util/atomic_file.h"
#include "util/timeutil.h"

#define SECRET_MAGIC "clinfm-serve-key v1"
#define HEAD_MAGIC "clinfm-audit-head v1"
#define CHAIN_TAG "clinfm-audit-v1"

enum { SUB_AUDIT = 1, SUB_PSEUDONYM = 2, SUB_APIKEY = 3 };

struct serve_db {
    sqlite3 *db;
    pthread_mutex_t mu;
    unsigned char k_audit[32], k_pseudo[32], k_apikey[32];
    char *head_path;         /* NULL for :memory: */
    int64_t last_head_us;    /* when the head file was last written */
    int64_t head_seq;        /* the row the head file names */
    unsigned char head_hash[32];
    int64_t tail_seq;        /* last row written by this process */
    unsigned char tail_hash[32];
    sqlite3_stmt *st_last, *st_audit, *st_card, *st_key, *st_card_known, *st_feedback;
};

static int64_t now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ------------------------------------------------------------------ secret */

int serve_secret_generate(const char *path, cf_err *err) {
    if (sodium_init() < 0) return cf_fail(err, CF_EINTERNAL, "libsodium failed to initialise");
    unsigned char key[SERVE_SECRET_BYTES];
    char hex[2 * SERVE_SECRET_BYTES + 1], text[128];
    randombytes_buf(key, sizeof key);
    sodium_bin2hex(hex, sizeof hex, key, sizeof key);
    sodium_memzero(key, sizeof key);
    int n = snprintf(text, sizeof text, "%s\n%s\n", SECRET_MAGIC, hex);
    sodium_memzero(hex, sizeof hex);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        sodium_memzero(text, sizeof text);
        if (errno == EEXIST)
            return cf_fail(err, CF_EINPUT, "%s: already exists; a secret is never overwritten "
                                           "(the audit chain depends on it)", path);
        return cf_fail_errno(err, CF_EINPUT, "%s: cannot create", path);
    }
    int rc = write_all(fd, text, (size_t)n, path, err);
    sodium_memzero(text, sizeof text);
    if (!rc && fsync(fd)) rc = cf_fail_errno(err, CF_EINTERNAL, "%s: fsync", path);
    close(fd);
    if (rc) unlink(path);
    return rc;
}

int serve_secret_load(const char *path, unsigned char key[SERVE_SECRET_BYTES], cf_err *err) {
    if (sodium_init() < 0) return cf_fail(err, CF_EINTERNAL, "libsodium failed to initialise");
    struct stat st;
    if (stat(path, &st)) return cf_fail_errno(err, CF_EINPUT, "%s: cannot read the service secret", path);
    if (st.st_mode & 077)
        return cf_fail(err, CF_EINPUT, "%s: the service secret must be readable by its owner only "
                                       "(chmod 600)", path);
    char *text;
    size_t len;
    int rc = serve_read_file(path, 4096, &text, &len, err);
    if (rc) return rc;
    size_t ml = strlen(SECRET_MAGIC), bin_len = 0;
    const char *hex_end = NULL;
    rc = CF_OK;
    if (len < ml + 1 || memcmp(text, SECRET_MAGIC, ml) || text[ml] != '\n' ||
        sodium_hex2bin(key, SERVE_SECRET_BYTES, text + ml + 1, len - ml - 1, NULL, &bin_len,
                       &hex_end) ||
        bin_len != SERVE_SECRET_BYTES)
        rc = cf_fail(err, CF_EINPUT, "%s: not a clinfm service secret (make one with "
                                     "'clinfm audit keygen')", path);
    sodium_memzero(text, len);
    free(text);
    return rc;
}

/* ------------------------------------------------------------------ open / close */

static const char *SCHEMA =
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "INSERT OR IGNORE INTO meta VALUES ('schema_version', '1');"
    "CREATE TABLE IF NOT EXISTS audit (seq INTEGER PRIMARY KEY, ts_us INTEGER NOT NULL,"
    " time TEXT NOT NULL, principal TEXT NOT NULL, role TEXT NOT NULL, user TEXT NOT NULL,"
    " method TEXT NOT NULL, route TEXT NOT NULL, status INTEGER NOT NULL, patient TEXT NOT NULL,"
    " model TEXT NOT NULL, model_version TEXT NOT NULL, response_hash TEXT NOT NULL,"
    " latency_us INTEGER NOT NULL, prev_hash TEXT NOT NULL, row_hash TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS cards (uuid TEXT PRIMARY KEY, ts_us INTEGER NOT NULL,"
    " service TEXT NOT NULL, hook TEXT NOT NULL, task TEXT NOT NULL, risk REAL NOT NULL,"
    " lo REAL NOT NULL, hi REAL NOT NULL, indicator TEXT NOT NULL, patient TEXT NOT NULL,"
    " model TEXT NOT NULL, model_version TEXT NOT NULL, audit_seq INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS feedback (id INTEGER PRIMARY KEY, ts_us INTEGER NOT NULL,"
    " service TEXT NOT NULL, card_uuid TEXT NOT NULL, outcome TEXT NOT NULL,"
    " reason_code TEXT, reason_system TEXT, reason_display TEXT, user_comment TEXT,"
    " outcome_time TEXT, principal TEXT NOT NULL);"
    "CREATE INDEX IF NOT EXISTS feedback_card ON feedback(card_uuid);"
    "CREATE TABLE IF NOT EXISTS api_keys (id TEXT PRIMARY KEY, name TEXT NOT NULL,"
    " role TEXT NOT NULL, hash TEXT NOT NULL, created_us INTEGER NOT NULL,"
    " expires_us INTEGER NOT NULL, revoked_us INTEGER NOT NULL);";

static int db_fail(serve_db *db, cf_err *err, const char *what) {
    return cf_fail(err, CF_EINTERNAL, "audit database: %s: %s", what,
                   db && db->db ? sqlite3_errmsg(db->db) : "cannot open");
}

static int prepare(serve_db *db, sqlite3_stmt **st, const char *sql, cf_err *err) {
    if (sqlite3_prepare_v3(db->db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL) != SQLITE_OK)
        return db_fail(db, err, "preparing a statement");
    return CF_OK;
}

static void derive(const unsigned char *secret, int which, unsigned char out[32]) {
    crypto_kdf_derive_from_key(out, 32, (uint64_t)which, "clinfmsv", secret);
}

static int hex32(const char *s, unsigned char out[32]) {
    size_t bl = 0;
    return s && strlen(s) == 64 && !sodium_hex2bin(out, 32, s, 64, NULL, &bl, NULL) && bl == 32;
}

int serve_db_open(serve_db **out, const char *path, const unsigned char secret[SERVE_SECRET_BYTES],
                  cf_err *err) {
    *out = NULL;
    if (sodium_init() < 0) return cf_fail(err, CF_EINTERNAL, "libsodium failed to initialise");
    serve_db *db = calloc(1, sizeof *db);
    if (!db) return cf_fail(err, CF_EINTERNAL, "out of memory");
    pthread_mutex_init(&db->mu, NULL);
    derive(secret, SUB_AUDIT, db->k_audit);
    derive(secret, SUB_PSEUDONYM, db->k_pseudo);
    derive(secret, SUB_APIKEY, db->k_apikey);
    int rc = CF_OK;
    int mem = !strcmp(path, ":memory:");
    if (!mem) {
        size_t n = strlen(path) + 8;
        if (!(db->head_path = malloc(n))) {
            rc = cf_fail(err, CF_EINTERNAL, "out of memory");
            goto fail;
        }
        snprintf(db->head_path, n, "%s-head", path);
    }
    if (sqlite3_open_v2(path, &db->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK) {
        rc = cf_fail(err, CF_EINPUT, "%s: cannot open the service database: %s", path,
                     db->db ? sqlite3_errmsg(db->db) : "out of memory");
        goto fail;
    }
    sqlite3_busy_timeout(db->db, 5000);
    if (sqlite3_exec(db->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;", NULL, NULL,
                     NULL) != SQLITE_OK ||
        sqlite3_exec(db->db, SCHEMA, NULL, NULL, NULL) != SQLITE_OK) {
        rc = cf_fail(err, CF_EINPUT, "%s: cannot set up the service database: %s", path,
                     sqlite3_errmsg(db->db));
        goto fail;
    }
    if ((rc = prepare(db, &db->st_last, "SELECT seq, row_hash FROM audit ORDER BY seq DESC LIMIT 1",
                      err)) ||
        (rc = prepare(db, &db->st_audit,
                      "INSERT INTO audit VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, "
                      "?12, ?13, ?14, ?15, ?16)",
                      err)) ||
        (rc = prepare(db, &db->st_card,
                      "INSERT INTO cards VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, "
                      "?13)",
                      err)) ||
        (rc = prepare(db, &db->st_key,
                      "SELECT role, hash, expires_us, revoked_us FROM api_keys WHERE id = ?1", err)) ||
        (rc = prepare(db, &db->st_card_known,
                      "SELECT 1 FROM cards WHERE uuid = ?1 AND service = ?2", err)) ||
        (rc = prepare(db, &db->st_feedback,
                      "INSERT INTO feedback (ts_us, service, card_uuid, outcome, reason_code, "
                      "reason_system, reason_display, user_comment, outcome_time, principal) "
                      "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                      err)))
        goto fail;
    *out = db;
    return CF_OK;
fail:
    serve_db_close(db);
    return rc;
}

static void head_mac(const serve_db *db, int64_t seq, const char *hash_hex, unsigned char mac[32]) {
    char msg[128];
    int n = snprintf(msg, sizeof msg, "%s %" PRId64 " %s", HEAD_MAGIC, seq, hash_hex);
    crypto_generichash(mac, 32, (const unsigned char *)msg, (size_t)n, db->k_audit, 32);
}

/* Records the chain's tail in the head file (caller holds the mutex or is the only user). */
static void write_head(serve_db *db) {
    if (!db->head_path || db->tail_seq == 0 || db->tail_seq == db->head_seq) return;
    char hash_hex[65], mac_hex[65], text[256];
    unsigned char mac[32];
    sodium_bin2hex(hash_hex, sizeof hash_hex, db->tail_hash, 32);
    head_mac(db, db->tail_seq, hash_hex, mac);
    sodium_bin2hex(mac_hex, sizeof mac_hex, mac, 32);
    int n = snprintf(text, sizeof text, "%s\n%" PRId64 " %s\n%s\n", HEAD_MAGIC, db->tail_seq,
                     hash_hex, mac_hex);
    cf_err e;
    if (atomic_write_file(db->head_path, text, (size_t)n, &e) == CF_OK) {
        db->head_seq = db->tail_seq;
        memcpy(db->head_hash, db->tail_hash, 32);
    }
    db->last_head_us = now_us();
}

void serve_db_close(serve_db *db) {
    if (!db) return;
    write_head(db);
    sqlite3_stmt *sts[] = {db->st_last, db->st_audit, db->st_card, db->st_key, db->st_card_known,
                           db->st_feedback};
    for (size_t i = 0; i < sizeof sts / sizeof sts[0]; i++) sqlite3_finalize(sts[i]);
    if (db->db) sqlite3_close(db->db);
    pthread_mutex_destroy(&db->mu);
    free(db->head_path);
    sodium_memzero(db, sizeof *db);
    free(db);
}

struct sqlite3 *serve_db_handle(serve_db *db) { return db->db; }

void serve_db_pseudonym(const serve_db *db, const char *patient_id, char out[33]) {
    if (!patient_id || !*patient_id) {
        out[0] = '\0';
        return;
    }
    unsigned char h[16];
    crypto_generichash(h, sizeof h, (const unsigned char *)patient_id, strlen(patient_id),
                       db->k_pseudo, 32);
    sodium_bin2hex(out, 33, h, sizeof h);
}

/* ------------------------------------------------------------------ audit chain */

typedef struct {
    int64_t seq, ts_us, status, latency_us;
    const char *time, *principal, *role, *user, *method, *route, *patient, *model, *model_version,
        *response_hash;
} audit_fields;

static void mac_field(crypto_generichash_state *st, const char *s) {
    uint32_t n = (uint32_t)strlen(s ? s : "");
    unsigned char len[4] = {(unsigned char)n, (unsigned char)(n >> 8), (unsigned char)(n >> 16),
                            (unsigned char)(n >> 24)};
    crypto_generichash_update(st, len, 4);
    crypto_generichash_update(st, (const unsigned char *)(s ? s : ""), n);
}

static void mac_int(crypto_generichash_state *st, int64_t v) {
    char b[32];
    snprintf(b, sizeof b, "%" PRId64, v);
    mac_field(st, b);
}

static void row_hash(const serve_db *db, const unsigned char prev[32], const audit_fields *f,
                     unsigned char out[32]) {
    crypto_generichash_state st;
    crypto_generichash_init(&st, db->k_audit, 32, 32);
    mac_field(&st, CHAIN_TAG);
    crypto_generichash_update(&st, prev, 32);
    mac_int(&st, f->seq);
    mac_int(&st, f->ts_us);
    mac_field(&st, f->time);
    mac_field(&st, f->principal);
    mac_field(&st, f->role);
    mac_field(&st, f->user);
    mac_field(&st, f->method);
    mac_field(&st, f->route);
    mac_int(&st, f->status);
    mac_field(&st, f->patient);
    mac_field(&st, f->model);
    mac_field(&st, f->model_version);
    mac_field(&st, f->response_hash);
    mac_int(&st, f->latency_us);
    crypto_generichash_final(&st, out, 32);
}

static void bind_text(sqlite3_stmt *st, int i, const char *s) {
    sqlite3_bind_text(st, i, s ? s : "", -1, SQLITE_TRANSIENT);
}

int serve_db_audit(serve_db *db, const serve_audit_entry *e, const serve_card_row *cards,
                   size_t n_cards, cf_err *err) {
    char tb[48];
    serve_time_iso(e->ts_us, tb, sizeof tb);
    int rc = CF_OK;
    pthread_mutex_lock(&db->mu);
    if (sqlite3_exec(db->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
        rc = db_fail(db, err, "starting a transaction");
        goto out;
    }
    /* The tail is read inside the write transaction, so two writers can never fork the chain. */
    unsigned char prev[32] = {0};
    int64_t seq = 1;
    sqlite3_reset(db->st_last);
    int s = sqlite3_step(db->st_last);
    if (s == SQLITE_ROW) {
        seq = sqlite3_column_int64(db->st_last, 0) + 1;
        if (!hex32((const char *)sqlite3_column_text(db->st_last, 1), prev)) {
            rc = cf_fail(err, CF_EINTERNAL, "audit database: the last row's hash is malformed "
                                            "(run 'clinfm audit verify')");
            goto rollback;
        }
    } else if (s != SQLITE_DONE) {
        rc = db_fail(db, err, "reading the chain's tail");
        goto rollback;
    }
    sqlite3_reset(db->st_last);
    audit_fields f = {seq, e->ts_us, e->status, e->latency_us, tb, e->principal, e->role, e->user,
                      e->method, e->route, e->patient, e->model, e->model_version,
                      e->response_hash};
    unsigned char h[32];
    row_hash(db, prev, &f, h);
    char prev_hex[65], h_hex[65];
    sodium_bin2hex(prev_hex, sizeof prev_hex, prev, 32);
    sodium_bin2hex(h_hex, sizeof h_hex, h, 32);
    sqlite3_stmt *st = db->st_audit;
    sqlite3_reset(st);
    sqlite3_bind_int64(st, 1, seq);
    sqlite3_bind_int64(st, 2, e->ts_us);
    bind_text(st, 3, tb);
    bind_text(st, 4, e->principal);
    bind_text(st, 5, e->role);
    bind_text(st, 6, e->user);
    bind_text(st, 7, e->method);
    bind_text(st, 8, e->route);
    sqlite3_bind_int64(st, 9, e->status);
    bind_text(st, 10, e->patient);
    bind_text(st, 11, e->model);
    bind_text(st, 12, e->model_version);
    bind_text(st, 13, e->response_hash);
    sqlite3_bind_int64(st, 14, e->latency_us);
    bind_text(st, 15, prev_hex);
    bind_text(st, 16, h_hex);
    if (sqlite3_step(st) != SQLITE_DONE) {
        rc = db_fail(db, err, "appending an audit row");
        goto rollback;
    }
    for (size_t i = 0; i < n_cards; i++) {
        const serve_card_row *c = &cards[i];
        st = db->st_card;
        sqlite3_reset(st);
        bind_text(st, 1, c->uuid);
        sqlite3_bind_int64(st, 2, e->ts_us);
        bind_text(st, 3, c->service);
        bind_text(st, 4, c->hook);
        bind_text(st, 5, c->task);
        sqlite3_bind_double(st, 6, c->risk);
        sqlite3_bind_double(st, 7, c->lo);
        sqlite3_bind_double(st, 8, c->hi);
        bind_text(st, 9, c->indicator);
        bind_text(st, 10, e->patient);
        bind_text(st, 11, e->model);
        bind_text(st, 12, e->model_version);
        sqlite3_bind_int64(st, 13, seq);
        if (sqlite3_step(st) != SQLITE_DONE) {
            rc = db_fail(db, err, "recording a card");
            goto rollback;
        }
    }
    if (sqlite3_exec(db->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        rc = db_fail(db, err, "committing an audit row");
        goto rollback;
    }
    db->tail_seq = seq;
    memcpy(db->tail_hash, h, 32);
    if (e->ts_us - db->last_head_us >= 1000000) write_head(db);
    goto out;
rollback:
    sqlite3_exec(db->db, "ROLLBACK", NULL, NULL, NULL);
out:
    pthread_mutex_unlock(&db->mu);
    return rc;
}

static const char *col(sqlite3_stmt *st, int i) {
    const char *s = (const char *)sqlite3_column_text(st, i);
    return s ? s : "";
}

int serve_db_verify(const char *path, const unsigned char secret[SERVE_SECRET_BYTES], FILE *out,
                    uint64_t *rows, cf_err *err) {
    *rows = 0;
    if (sodium_init() < 0) return cf_fail(err, CF_EINTERNAL, "libsodium failed to initialise");
    serve_db keys;
    memset(&keys, 0, sizeof keys);
    derive(secret, SUB_AUDIT, keys.k_audit);
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int rc = CF_OK;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        rc = cf_fail(err, CF_EINPUT, "%s: cannot open: %s", path,
                     db ? sqlite3_errmsg(db) : "out of memory");
        goto done;
    }
    sqlite3_busy_timeout(db, 5000);
    if (sqlite3_prepare_v2(db,
                           "SELECT seq, ts_us, time, principal, role, user, method, route, status, "
                           "patient, model, model_version, response_hash, latency_us, prev_hash, "
                           "row_hash FROM audit ORDER BY seq",
                           -1, &st, NULL) != SQLITE_OK) {
        rc = cf_fail(err, CF_EINPUT, "%s: not a clinfm service database: %s", path,
                     sqlite3_errmsg(db));
        goto done;
    }
    unsigned char prev[32] = {0}, stored[32], h[32];
    int64_t expect = 1;
    int s;
    /* the hash of each row, remembered only for the row the head file names */
    char *head_text = NULL;
    size_t head_len = 0;
    int64_t head_seq = 0;
    unsigned char head_hash[32];
    char head_path[4200];
    snprintf(head_path, sizeof head_path, "%s-head", path);
    int have_head = 0;
    cf_err e2;
    if (access(head_path, F_OK) == 0) {
        if (serve_read_file(head_path, 4096, &head_text, &head_len, &e2) == CF_OK) {
            char hash_hex[65] = "", mac_hex[65] = "";
            long long hs = 0;
            if (sscanf(head_text, HEAD_MAGIC "\n%lld %64s\n%64s", &hs, hash_hex, mac_hex) == 3 &&
                hex32(hash_hex, head_hash)) {
                unsigned char mac[32], want[32];
                head_mac(&keys, hs, hash_hex, want);
                if (hex32(mac_hex, mac) && sodium_memcmp(mac, want, 32) == 0) {
                    have_head = 1;
                    head_seq = hs;
                }
            }
            free(head_text);
        }
        if (!have_head) {
            rc = cf_fail(err, CF_EINPUT, "%s: the head file is damaged or was not written with "
                                         "this secret", head_path);
            goto done;
        }
    }
    int head_checked = 0;
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        audit_fields f = {sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1),
                          sqlite3_column_int64(st, 8), sqlite3_column_int64(st, 13),
                          col(st, 2), col(st, 3), col(st, 4), col(st, 5), col(st, 6), col(st, 7),
                          col(st, 9), col(st, 10), col(st, 11), col(st, 12)};
        if (f.seq != expect) {
            rc = cf_fail(err, CF_EINPUT, "audit row %" PRId64 " follows row %" PRId64
                                         ": rows were deleted", f.seq, expect - 1);
            goto done;
        }
        unsigned char link[32];
        if (!hex32(col(st, 14), link) || sodium_memcmp(link, prev, 32) != 0) {
            rc = cf_fail(err, CF_EINPUT, "audit row %" PRId64 ": its link to the previous row is "
                                         "broken (a row was edited, deleted or inserted)", f.seq);
            goto done;
        }
        row_hash(&keys, prev, &f, h);
        if (!hex32(col(st, 15), stored) || sodium_memcmp(stored, h, 32) != 0) {
            rc = cf_fail(err, CF_EINPUT, "audit row %" PRId64 ": its contents do not match its "
                                         "hash (the row was edited)", f.seq);
            goto done;
        }
        if (have_head && f.seq == head_seq) {
            if (sodium_memcmp(h, head_hash, 32) != 0) {
                rc = cf_fail(err, CF_EINPUT, "audit row %" PRId64 " is not the row the head file "
                                             "recorded (the chain was rewritten)", f.seq);
                goto done;
            }
            head_checked = 1;
        }
        memcpy(prev, h, 32);
        expect++;
        (*rows)++;
    }
    if (s != SQLITE_DONE) {
        rc = cf_fail(err, CF_EINPUT, "%s: reading the audit table: %s", path, sqlite3_errmsg(db));
        goto done;
    }
    if (have_head && !head_checked) {
        rc = cf_fail(err, CF_EINPUT, "the audit table ends at row %" PRId64 " but the head file "
                                     "records row %" PRId64 ": the newest rows were deleted",
                     expect - 1, head_seq);
        goto done;
    }
    if (!have_head && *rows > 0) {
        rc = cf_fail(err, CF_EINPUT, "%s is missing: the newest rows cannot be vouched for",
                     head_path);
        goto done;
    }
    if (out)
        fprintf(out, "audit chain intact: %" PRIu64 " rows%s\n", *rows,
                have_head && head_seq < expect - 1
                    ? " (the newest rows after the head file's last update are chained but not "
                      "yet anchored)"
                    : "");
done:
    sodium_memzero(&keys, sizeof keys);
    sqlite3_finalize(st);
    if (db) sqlite3_close(db);
    return rc;
}

/* ------------------------------------------------------------------ API keys */

static void key_hash(const serve_db *db, const char *token, char out[65]) {
    unsigned char h[32];
    crypto_generichash(h, 32, (const unsigned char *)token, strlen(token), db->k_apikey, 32);
    sodium_bin2hex(out, 65, h, 32);
}

static int valid_role(const char *r) {
    return !strcmp(r, "clinician") || !strcmp(r, "service") || !strcmp(r, "admin");
}

int serve_db_key_create(serve_db *db, const char *name, const char *role, int64_t expires_us,
                        char *token, char id[SERVE_KEY_ID_LEN + 1], cf_err *err) {
    if (!valid_role(role))
        return cf_fail(err, CF_EINPUT, "role must be clinician, service or admin");
    if (!*name || strlen(name) > 100)
        return cf_fail(err, CF_EINPUT, "the key name must be 1-100 characters");
    unsigned char idb[SERVE_KEY_ID_LEN / 2], sec[32];
    randombytes_buf(idb, sizeof idb);
    randombytes_buf(sec, sizeof sec);
    char sec_hex[65], hash[65];
    sodium_bin2hex(id, SERVE_KEY_ID_LEN + 1, idb, sizeof idb);
    sodium_bin2hex(sec_hex, sizeof sec_hex, sec, sizeof sec);
    snprintf(token, SERVE_TOKEN_LEN + 1, "cfk_%s_%s", id, sec_hex);
    sodium_memzero(sec, sizeof sec);
    sodium_memzero(sec_hex, sizeof sec_hex);
    key_hash(db, token, hash);
    int rc = CF_OK;
    sqlite3_stmt *st = NULL;
    pthread_mutex_lock(&db->mu);
    if (sqlite3_prepare_v2(db->db, "INSERT INTO api_keys VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0)", -1,
                           &st, NULL) != SQLITE_OK) {
        rc = db_fail(db, err, "preparing");
    } else {
        bind_text(st, 1, id);
        bind_text(st, 2, name);
        bind_text(st, 3, role);
        bind_text(st, 4, hash);
        sqlite3_bind_int64(st, 5, now_us());
        sqlite3_bind_int64(st, 6, expires_us);
        if (sqlite3_step(st) != SQLITE_DONE) rc = db_fail(db, err, "storing the key");
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&db->mu);
    if (rc) sodium_memzero(token, SERVE_TOKEN_LEN + 1);
    return rc;
}

int serve_db_key_revoke(serve_db *db, const char *id, cf_err *err) {
    int rc = CF_OK;
    sqlite3_stmt *st = NULL;
    pthread_mutex_lock(&db->mu);
    if (sqlite3_prepare_v2(db->db,
                           "UPDATE api_keys SET revoked_us = ?2 WHERE id = ?1 AND revoked_us = 0",
                           -1, &st, NULL) != SQLITE_OK) {
        rc = db_fail(db, err, "preparing");
    } else {
        bind_text(st, 1, id);
        sqlite3_bind_int64(st, 2, now_us());
        if (sqlite3_step(st) != SQLITE_DONE) rc = db_fail(db, err, "revoking the key");
        else if (sqlite3_changes(db->db) == 0)
            rc = cf_fail(err, CF_EINPUT, "no live API key has id %.40s", id);
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&db->mu);
    return rc;
}

int serve_db_key_list(serve_db *db, FILE *out, cf_err *err) {
    sqlite3_stmt *st = NULL;
    int rc = CF_OK;
    pthread_mutex_lock(&db->mu);
    if (sqlite3_prepare_v2(db->db,
                           "SELECT id, role, created_us, expires_us, revoked_us, name FROM api_keys "
                           "ORDER BY created_us",
                           -1, &st, NULL) != SQLITE_OK) {
        rc = db_fail(db, err, "preparing");
        goto out;
    }
    fprintf(out, "%-16s  %-9s  %-20s  %-20s  %-20s  %s\n", "id", "role", "created", "expires",
            "revoked", "name");
    int s;
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        char c[48], e[48], r[48];
        int64_t cu = sqlite3_column_int64(st, 2), eu = sqlite3_column_int64(st, 3),
                ru = sqlite3_column_int64(st, 4);
        time_format_iso(cu - cu % 1000000, c, sizeof c);
        if (eu) time_format_iso(eu - eu % 1000000, e, sizeof e);
        else snprintf(e, sizeof e, "never");
        if (ru) time_format_iso(ru - ru % 1000000, r, sizeof r);
        else snprintf(r, sizeof r, "-");
        fprintf(out, "%-16s  %-9s  %-20s  %-20s  %-20s  %s\n", col(st, 0), col(st, 1), c, e, r,
                col(st, 5));
    }
    if (s != SQLITE_DONE) rc = db_fail(db, err, "listing keys");
out:
    sqlite3_finalize(st);
    pthread_mutex_unlock(&db->mu);
    return rc;
}

static int is_hex(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return 0;
    return 1;
}

int serve_db_key_check(serve_db *db, const char *token, int64_t now, char id[SERVE_KEY_ID_LEN + 1],
                       char role[16]) {
    if (strlen(token) != SERVE_TOKEN_LEN || strncmp(token, "cfk_", 4) ||
        token[4 + SERVE_KEY_ID_LEN] != '_' || !is_hex(token + 4, SERVE_KEY_ID_LEN) ||
        !is_hex(token + 5 + SERVE_KEY_ID_LEN, 64))
        return 0;
    memcpy(id, token + 4, SERVE_KEY_ID_LEN);
    id[SERVE_KEY_ID_LEN] = '\0';
    char want[65];
    key_hash(db, token, want);
    int ok = 0;
    pthread_mutex_lock(&db->mu);
    sqlite3_stmt *st = db->st_key;
    sqlite3_reset(st);
    bind_text(st, 1, id);
    int s = sqlite3_step(st);
    if (s == SQLITE_ROW) {
        const char *r = col(st, 0), *h = col(st, 1);
        int64_t exp = sqlite3_column_int64(st, 2), rev = sqlite3_column_int64(st, 3);
        if (strlen(h) == 64 && sodium_memcmp(h, want, 64) == 0 && rev == 0 &&
            (exp == 0 || now < exp) && valid_role(r)) {
            snprintf(role, 16, "%s", r);
            ok = 1;
        }
    } else if (s != SQLITE_DONE) {
        ok = -1;
    }
    sqlite3_reset(st);
    pthread_mutex_unlock(&db->mu);
    return ok;
}

/* ------------------------------------------------------------------ feedback */

int serve_db_card_known(serve_db *db, const char *uuid, const char *service) {
    pthread_mutex_lock(&db->mu);
    sqlite3_stmt *st = db->st_card_known;
    sqlite3_reset(st);
    bind_text(st, 1, uuid);
    bind_text(st, 2, service);
    int s = sqlite3_step(st);
    sqlite3_reset(st);
    pthread_mutex_unlock(&db->mu);
    return s == SQLITE_ROW ? 1 : s == SQLITE_DONE ? 0 : -1;
}

static void bind_opt(sqlite3_stmt *st, int i, const char *s) {
    if (s) sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT);
    else sqlite3_bind_null(st, i);
}

int serve_db_feedback(serve_db *db, const serve_feedback_row *rows, size_t n, cf_err *err) {
    int rc = CF_OK;
    pthread_mutex_lock(&db->mu);
    if (sqlite3_exec(db->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
        rc = db_fail(db, err, "starting a transaction");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        const serve_feedback_row *f = &rows[i];
        sqlite3_stmt *st = db->st_feedback;
        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, f->ts_us);
        bind_text(st, 2, f->service);
        bind_text(st, 3, f->card);
        bind_text(st, 4, f->outcome);
        bind_opt(st, 5, f->reason_code);
        bind_opt(st, 6, f->reason_system);
        bind_opt(st, 7, f->reason_display);
        bind_opt(st, 8, f->comment);
        bind_opt(st, 9, f->outcome_time);
        bind_text(st, 10, f->principal);
        if (sqlite3_step(st) != SQLITE_DONE) {
            rc = db_fail(db, err, "recording feedback");
            sqlite3_exec(db->db, "ROLLBACK", NULL, NULL, NULL);
            goto out;
        }
    }
    if (sqlite3_exec(db->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        rc = db_fail(db, err, "committing feedback");
        sqlite3_exec(db->db, "ROLLBACK", NULL, NULL, NULL);
    }
out:
    pthread_mutex_unlock(&db->mu);
    return rc;
}

static void csv_field(FILE *out, const char *s, int last) {
    if (strpbrk(s, ",\"\r\n")) {
        fputc('"', out);
        for (; *s; s++) {
            if (*s == '"') fputc('"', out);
            fputc(*s, out);
        }
        fputc('"', out);
    } else {
        fputs(s, out);
    }
    fputc(last ? '\n' : ',', out);
}

int serve_db_feedback_export(serve_db *db, FILE *out, int jsonl, int with_comments, cf_err *err) {
    static const char *const names[] = {
        "received", "service", "card", "task", "model", "model_version", "risk", "risk_lo",
        "risk_hi", "indicator", "patient", "outcome", "reason_system", "reason_code",
        "reason_display", "outcome_time", "user_comment"};
    const int n_cols = with_comments ? 17 : 16;
    sqlite3_stmt *st = NULL;
    int rc = CF_OK;
    pthread_mutex_lock(&db->mu);
    if (sqlite3_prepare_v2(
            db->db,
            "SELECT f.ts_us, f.service, f.card_uuid, c.task, c.model, c.model_version, c.risk, "
            "c.lo, c.hi, c.indicator, c.patient, f.outcome, f.reason_system, f.reason_code, "
            "f.reason_display, f.outcome_time, f.user_comment FROM feedback f "
            "LEFT JOIN cards c ON c.uuid = f.card_uuid ORDER BY f.id",
            -1, &st, NULL) != SQLITE_OK) {
        rc = db_fail(db, err, "preparing the export");
        goto out;
    }
    if (!jsonl)
        for (int i = 0; i < n_cols; i++) csv_field(out, names[i], i == n_cols - 1);
    int s;
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        char tb[48], num[3][32];
        serve_time_iso(sqlite3_column_int64(st, 0), tb, sizeof tb);
        for (int k = 0; k < 3; k++) {
            if (sqlite3_column_type(st, 6 + k) == SQLITE_NULL) num[k][0] = '\0';
            else snprintf(num[k], sizeof num[k], "%.4f", sqlite3_column_double(st, 6 + k));
        }
        const char *v[17];
        v[0] = tb;
        for (int i = 1; i < 17; i++) v[i] = i >= 6 && i <= 8 ? num[i - 6] : col(st, i);
        if (jsonl) {
            cJSON *o = cJSON_CreateObject();
            for (int i = 0; i < n_cols; i++) {
                if (i >= 6 && i <= 8 && v[i][0]) cJSON_AddNumberToObject(o, names[i], atof(v[i]));
                else if (!v[i][0]) cJSON_AddNullToObject(o, names[i]);
                else cJSON_AddStringToObject(o, names[i], v[i]);
            }
            char *line = cJSON_PrintUnformatted(o);
            if (line) fprintf(out, "%s\n", line);
            cJSON_free(line);
            cJSON_Delete(o);
        } else {
            for (int i = 0; i < n_cols; i++) csv_field(out, v[i], i == n_cols - 1);
        }
    }
    if (s != SQLITE_DONE) rc = db_fail(db, err, "reading feedback");
    if (fflush(out) || ferror(out)) rc = cf_fail(err, CF_EINPUT, "writing the export failed");
out:
    sqlite3_finalize(st);
    pthread_mutex_unlock(&db->mu);
    return rc;
}
