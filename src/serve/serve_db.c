/* The service database: audit chain, anchors, cards, feedback, API keys; see serve_db.h. */
#include "serve/serve_db.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <sodium.h>
#include <sqlite3.h>

#include "serve/serve_config.h"
#include "serve/serve_summary.h"
#include "util/atomic_file.h"
#include "util/timeutil.h"

#define SECRET_MAGIC "clinfm-serve-key v1"
#define ANCHOR_MAGIC "clinfm-audit-anchor v1"
#define CHAIN_TAG_V1 "clinfm-audit-v1"
#define CHAIN_TAG_V2 "clinfm-audit-v2"
#define SCHEMA_VERSION "2"

enum { SUB_AUDIT = 1, SUB_PSEUDONYM = 2, SUB_APIKEY = 3, SUB_ROWMAC = 4, SUB_ANCHOR = 5 };

/* Every key the database uses, derived from the service secret. */
typedef struct {
    unsigned char audit[32], pseudo[32], apikey[32], row[32];
    unsigned char sign_pk[crypto_sign_PUBLICKEYBYTES], sign_sk[crypto_sign_SECRETKEYBYTES];
} keyset;

struct serve_db {
    sqlite3 *db;
    sqlite3 *rd;             /* second connection for anchoring (NULL for :memory:) */
    pthread_mutex_t mu;      /* the write connection */
    pthread_mutex_t anchor_mu;
    keyset k;
    char db_id[33];
    int64_t v2_from;         /* first audit row hashed under the v2 tag */
    char *head_path;         /* NULL for :memory: */
    char *anchor_file;
    int use_syslog;
    /* the newest row anchored (or found anchored in the head file at open) */
    int64_t anchored_seq;
    unsigned char anchored_hash[32];
    int head_invalid;        /* the head file was missing or did not verify at open */
    sqlite3_stmt *st_last, *st_audit, *st_card, *st_key, *st_card_known, *st_feedback;
};

static int64_t now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void derive(const unsigned char *secret, int which, unsigned char out[32]) {
    crypto_kdf_derive_from_key(out, 32, (uint64_t)which, "clinfmsv", secret);
}

static void keyset_derive(keyset *k, const unsigned char *secret) {
    unsigned char seed[32];
    derive(secret, SUB_AUDIT, k->audit);
    derive(secret, SUB_PSEUDONYM, k->pseudo);
    derive(secret, SUB_APIKEY, k->apikey);
    derive(secret, SUB_ROWMAC, k->row);
    derive(secret, SUB_ANCHOR, seed);
    crypto_sign_seed_keypair(k->sign_pk, k->sign_sk, seed);
    sodium_memzero(seed, sizeof seed);
}

static int hex32(const char *s, unsigned char out[32]) {
    size_t bl = 0;
    return s && strlen(s) == 64 && !sodium_hex2bin(out, 32, s, 64, NULL, &bl, NULL) && bl == 32;
}

static const char *col(sqlite3_stmt *st, int i) {
    const char *s = (const char *)sqlite3_column_text(st, i);
    return s ? s : "";
}

static void bind_text(sqlite3_stmt *st, int i, const char *s) {
    sqlite3_bind_text(st, i, s ? s : "", -1, SQLITE_TRANSIENT);
}

static void bind_opt(sqlite3_stmt *st, int i, const char *s) {
    if (s) sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT);
    else sqlite3_bind_null(st, i);
}

/* ------------------------------------------------------------------ secret and file modes */

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

int serve_check_private(const char *path, const char *what, cf_err *err) {
    struct stat st;
    if (stat(path, &st)) return cf_fail_errno(err, CF_EINPUT, "%s: cannot read the %s", path, what);
    if (st.st_mode & 077)
        return cf_fail(err, CF_EINPUT, "%s: the %s must be readable by its owner only (chmod 600 "
                                       "%s); refusing to start", path, what, path);
    return CF_OK;
}

int serve_secret_load(const char *path, unsigned char key[SERVE_SECRET_BYTES], cf_err *err) {
    if (sodium_init() < 0) return cf_fail(err, CF_EINTERNAL, "libsodium failed to initialise");
    int rc = serve_check_private(path, "service secret", err);
    if (rc) return rc;
    char *text;
    size_t len;
    if ((rc = serve_read_file(path, 4096, &text, &len, err))) return rc;
    size_t ml = strlen(SECRET_MAGIC), bin_len = 0;
    const char *hex_end = NULL;
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

/* The database and its WAL files: created 0600, refused when others may read them (feedback
 * comments can name people, and pseudonyms are linkable). */
static int db_file_private(const char *path, cf_err *err) {
    static const char *const sfx[] = {"", "-wal", "-shm"};
    for (size_t i = 0; i < 3; i++) {
        char p[4200];
        snprintf(p, sizeof p, "%s%s", path, sfx[i]);
        struct stat st;
        if (stat(p, &st)) {
            if (errno != ENOENT) return cf_fail_errno(err, CF_EINPUT, "%s: cannot stat", p);
            if (i) continue;
            int fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
            if (fd < 0 && errno != EEXIST)
                return cf_fail_errno(err, CF_EINPUT, "%s: cannot create the service database", p);
            if (fd >= 0) close(fd);
            continue;
        }
        if (st.st_mode & 077)
            return cf_fail(err, CF_EINPUT, "%s: the service database must be readable by its owner "
                                           "only (it holds feedback comments and pseudonyms): "
                                           "chmod 600 %s*", p, path);
    }
    return CF_OK;
}

/* Replaces path with data: a 0600 temporary file, fsynced, renamed over it. */
static int write_private_file(const char *path, const char *data, size_t len, cf_err *err) {
    char tmp[4300];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) return cf_fail_errno(err, CF_EINTERNAL, "%s: cannot write", tmp);
    int rc = write_all(fd, data, len, tmp, err);
    if (!rc && fsync(fd)) rc = cf_fail_errno(err, CF_EINTERNAL, "%s: fsync", tmp);
    close(fd);
    if (!rc && rename(tmp, path)) rc = cf_fail_errno(err, CF_EINTERNAL, "%s: cannot replace", path);
    if (rc) unlink(tmp);
    return rc;
}

/* ------------------------------------------------------------------ MACs and the chain */

typedef struct {
    int64_t seq, ts_us, status, latency_us, count;
    const char *time, *principal, *role, *user, *method, *route, *patient, *model, *model_version,
        *response_hash, *attached;
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

/* Doubles as the shortest text that reads back to the same value, so what SQLite returns
 * hashes like what was written. */
static void mac_double(crypto_generichash_state *st, double v) {
    char b[40];
    snprintf(b, sizeof b, "%.17g", v);
    mac_field(st, b);
}

/* v1 rows (schema 1) have no count and no attached digest. */
static void row_hash(const keyset *k, int v2, const unsigned char prev[32], const audit_fields *f,
                     unsigned char out[32]) {
    crypto_generichash_state st;
    crypto_generichash_init(&st, k->audit, 32, 32);
    mac_field(&st, v2 ? CHAIN_TAG_V2 : CHAIN_TAG_V1);
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
    if (v2) {
        mac_int(&st, f->count);
        mac_field(&st, f->attached);
    }
    crypto_generichash_final(&st, out, 32);
}

typedef struct {
    const char *uuid, *service, *hook, *task, *indicator, *patient, *model, *model_version;
    int64_t ts_us, audit_seq;
    double risk, lo, hi;
} card_fields;

static void card_mac(const keyset *k, const card_fields *c, char out[65]) {
    crypto_generichash_state st;
    unsigned char h[32];
    crypto_generichash_init(&st, k->row, 32, 32);
    mac_field(&st, "card v1");
    mac_field(&st, c->uuid);
    mac_int(&st, c->ts_us);
    mac_field(&st, c->service);
    mac_field(&st, c->hook);
    mac_field(&st, c->task);
    mac_double(&st, c->risk);
    mac_double(&st, c->lo);
    mac_double(&st, c->hi);
    mac_field(&st, c->indicator);
    mac_field(&st, c->patient);
    mac_field(&st, c->model);
    mac_field(&st, c->model_version);
    mac_int(&st, c->audit_seq);
    crypto_generichash_final(&st, h, 32);
    sodium_bin2hex(out, 65, h, 32);
}

/* NULL optional fields hash differently from empty ones. */
static void mac_opt(crypto_generichash_state *st, const char *s) {
    mac_field(st, s ? "1" : "0");
    mac_field(st, s);
}

static void feedback_mac(const keyset *k, const serve_feedback_row *f, int64_t audit_seq,
                         char out[65]) {
    crypto_generichash_state st;
    unsigned char h[32];
    crypto_generichash_init(&st, k->row, 32, 32);
    mac_field(&st, "feedback v1");
    mac_int(&st, f->ts_us);
    mac_field(&st, f->service);
    mac_field(&st, f->card);
    mac_field(&st, f->outcome);
    mac_opt(&st, f->reason_code);
    mac_opt(&st, f->reason_system);
    mac_opt(&st, f->reason_display);
    mac_opt(&st, f->comment);
    mac_opt(&st, f->outcome_time);
    mac_field(&st, f->principal);
    mac_int(&st, audit_seq);
    crypto_generichash_final(&st, h, 32);
    sodium_bin2hex(out, 65, h, 32);
}

static void key_mac(const keyset *k, const char *id, const char *name, const char *role,
                    const char *hash, int64_t created, int64_t expires, int64_t revoked,
                    char out[65]) {
    crypto_generichash_state st;
    unsigned char h[32];
    crypto_generichash_init(&st, k->row, 32, 32);
    mac_field(&st, "apikey v1");
    mac_field(&st, id);
    mac_field(&st, name);
    mac_field(&st, role);
    mac_field(&st, hash);
    mac_int(&st, created);
    mac_int(&st, expires);
    mac_int(&st, revoked);
    crypto_generichash_final(&st, h, 32);
    sodium_bin2hex(out, 65, h, 32);
}

/* The `attached` digest of an audit row: its cards' and feedback rows' MACs, sorted so the
 * order rows come back in does not matter; "" when there are none. */
typedef struct {
    char (*mac)[66];
    size_t n, cap;
} mac_list;

static int mac_list_add(mac_list *l, char kind, const char *mac) {
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 16;
        void *t = realloc(l->mac, nc * sizeof *l->mac);
        if (!t) return -1;
        l->mac = t;
        l->cap = nc;
    }
    l->mac[l->n][0] = kind;
    snprintf(l->mac[l->n] + 1, 65, "%s", mac);
    l->n++;
    return 0;
}

static int cmp_mac(const void *a, const void *b) { return strcmp(a, b); }

static void attached_digest(const keyset *k, mac_list *l, char out[65]) {
    out[0] = '\0';
    if (!l->n) return;
    qsort(l->mac, l->n, sizeof *l->mac, cmp_mac);
    crypto_generichash_state st;
    unsigned char h[32];
    crypto_generichash_init(&st, k->row, 32, 32);
    mac_field(&st, "attached v1");
    for (size_t i = 0; i < l->n; i++) mac_field(&st, l->mac[i]);
    crypto_generichash_final(&st, h, 32);
    sodium_bin2hex(out, 65, h, 32);
}

/* ------------------------------------------------------------------ anchors */

typedef struct {
    char db[33];
    int64_t rows, ts_us;
    unsigned char hash[32];
    char time[40];
} anchor;

static int anchor_format(const keyset *k, const anchor *a, char *out, size_t cap) {
    char hash_hex[65], sig_hex[2 * crypto_sign_BYTES + 1];
    unsigned char sig[crypto_sign_BYTES];
    sodium_bin2hex(hash_hex, sizeof hash_hex, a->hash, 32);
    int n = snprintf(out, cap, "%s db=%s rows=%" PRId64 " hash=%s ts_us=%" PRId64 " time=%s",
                     ANCHOR_MAGIC, a->db, a->rows, hash_hex, a->ts_us, a->time);
    if (n < 0 || (size_t)n + 8 + sizeof sig_hex >= cap) return -1;
    crypto_sign_detached(sig, NULL, (const unsigned char *)out, (size_t)n, k->sign_sk);
    sodium_bin2hex(sig_hex, sizeof sig_hex, sig, sizeof sig);
    return snprintf(out + n, cap - (size_t)n, " sig=%s\n", sig_hex) + n;
}

/* Parses and checks one anchor line (without its newline). 0 ok; -1 not an anchor line; -2 the
 * signature does not verify (forged, edited, or made with another secret). */
static int anchor_parse(const keyset *k, const char *line, size_t len, anchor *a) {
    char buf[600];
    if (len >= sizeof buf || len < strlen(ANCHOR_MAGIC) ||
        memcmp(line, ANCHOR_MAGIC " ", strlen(ANCHOR_MAGIC) + 1))
        return -1;
    memcpy(buf, line, len);
    buf[len] = '\0';
    char *sig = strstr(buf, " sig=");
    if (!sig) return -1;
    unsigned char sb[crypto_sign_BYTES];
    size_t sl = 0;
    if (sodium_hex2bin(sb, sizeof sb, sig + 5, strlen(sig + 5), NULL, &sl, NULL) ||
        sl != sizeof sb)
        return -1;
    if (crypto_sign_verify_detached(sb, (const unsigned char *)buf, (size_t)(sig - buf), k->sign_pk))
        return -2;
    *sig = '\0';
    char db[40] = "", hash[80] = "", tm[48] = "";
    long long rows = -1, ts = 0;
    if (sscanf(buf + strlen(ANCHOR_MAGIC), " db=%39s rows=%lld hash=%79s ts_us=%lld time=%47s", db,
               &rows, hash, &ts, tm) != 5 ||
        strlen(db) >= sizeof a->db || strlen(tm) >= sizeof a->time || rows < 1 ||
        !hex32(hash, a->hash))
        return -1;
    memcpy(a->db, db, strlen(db) + 1);
    memcpy(a->time, tm, strlen(tm) + 1);
    a->rows = rows;
    a->ts_us = ts;
    return 0;
}

/* Reads the head file: 0 valid (for this database), -1 missing, -2 present but not valid. */
static int head_read(const keyset *k, const char *head_path, const char *db_id, anchor *a) {
    char *text = NULL;
    size_t len = 0;
    cf_err e;
    if (access(head_path, F_OK)) return -1;
    if (serve_read_file(head_path, 4096, &text, &len, &e)) return -2;
    size_t ll = strcspn(text, "\n");
    int r = anchor_parse(k, text, ll, a);
    free(text);
    if (r || strcmp(a->db, db_id)) return -2;
    return 0;
}

/* ------------------------------------------------------------------ schema */

static const char *SCHEMA_V2 =
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "CREATE TABLE audit (seq INTEGER PRIMARY KEY, ts_us INTEGER NOT NULL,"
    " time TEXT NOT NULL, principal TEXT NOT NULL, role TEXT NOT NULL, user TEXT NOT NULL,"
    " method TEXT NOT NULL, route TEXT NOT NULL, status INTEGER NOT NULL, patient TEXT NOT NULL,"
    " model TEXT NOT NULL, model_version TEXT NOT NULL, response_hash TEXT NOT NULL,"
    " latency_us INTEGER NOT NULL, prev_hash TEXT NOT NULL, row_hash TEXT NOT NULL,"
    " count INTEGER NOT NULL DEFAULT 1, attached TEXT NOT NULL DEFAULT '');"
    "CREATE TABLE cards (uuid TEXT PRIMARY KEY, ts_us INTEGER NOT NULL,"
    " service TEXT NOT NULL, hook TEXT NOT NULL, task TEXT NOT NULL, risk REAL NOT NULL,"
    " lo REAL NOT NULL, hi REAL NOT NULL, indicator TEXT NOT NULL, patient TEXT NOT NULL,"
    " model TEXT NOT NULL, model_version TEXT NOT NULL, audit_seq INTEGER NOT NULL,"
    " mac TEXT NOT NULL DEFAULT '');"
    "CREATE TABLE feedback (id INTEGER PRIMARY KEY, ts_us INTEGER NOT NULL,"
    " service TEXT NOT NULL, card_uuid TEXT NOT NULL, outcome TEXT NOT NULL,"
    " reason_code TEXT, reason_system TEXT, reason_display TEXT, user_comment TEXT,"
    " outcome_time TEXT, principal TEXT NOT NULL, audit_seq INTEGER NOT NULL DEFAULT 0,"
    " mac TEXT NOT NULL DEFAULT '');"
    "CREATE TABLE api_keys (id TEXT PRIMARY KEY, name TEXT NOT NULL,"
    " role TEXT NOT NULL, hash TEXT NOT NULL, created_us INTEGER NOT NULL,"
    " expires_us INTEGER NOT NULL, revoked_us INTEGER NOT NULL, mac TEXT NOT NULL DEFAULT '');";

static const char *INDEXES =
    "CREATE INDEX IF NOT EXISTS feedback_card ON feedback(card_uuid);"
    "CREATE INDEX IF NOT EXISTS cards_audit ON cards(audit_seq);"
    "CREATE INDEX IF NOT EXISTS feedback_audit ON feedback(audit_seq);";

/* Schema 1 had no count/attached columns and no row MACs; the upgrade adds them, MACs the rows
 * that exist (they are vouched for from now on, as the chain already vouched for the audit
 * rows), and records where the v2 chain tag and attached feedback start. Runs in the caller's
 * transaction. */
static int migrate_v1(sqlite3 *db, const keyset *k) {
    static const char *alter =
        "ALTER TABLE audit ADD COLUMN count INTEGER NOT NULL DEFAULT 1;"
        "ALTER TABLE audit ADD COLUMN attached TEXT NOT NULL DEFAULT '';"
        "ALTER TABLE cards ADD COLUMN mac TEXT NOT NULL DEFAULT '';"
        "ALTER TABLE feedback ADD COLUMN audit_seq INTEGER NOT NULL DEFAULT 0;"
        "ALTER TABLE feedback ADD COLUMN mac TEXT NOT NULL DEFAULT '';"
        "ALTER TABLE api_keys ADD COLUMN mac TEXT NOT NULL DEFAULT '';"
        "INSERT OR REPLACE INTO meta VALUES ('chain_v2_from',"
        " (SELECT coalesce(max(seq), 0) + 1 FROM audit));"
        "INSERT OR REPLACE INTO meta VALUES ('feedback_v2_from',"
        " (SELECT coalesce(max(id), 0) + 1 FROM feedback));";
    if (sqlite3_exec(db, alter, NULL, NULL, NULL) != SQLITE_OK) return -1;
    sqlite3_stmt *sel = NULL, *upd = NULL;
    int ok = 0;
    /* cards */
    if (sqlite3_prepare_v2(db, "SELECT uuid, ts_us, service, hook, task, risk, lo, hi, indicator,"
                               " patient, model, model_version, audit_seq FROM cards", -1, &sel,
                           NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db, "UPDATE cards SET mac = ?2 WHERE uuid = ?1", -1, &upd, NULL) !=
            SQLITE_OK)
        goto out;
    while (sqlite3_step(sel) == SQLITE_ROW) {
        card_fields c = {col(sel, 0), col(sel, 2), col(sel, 3), col(sel, 4), col(sel, 8),
                         col(sel, 9), col(sel, 10), col(sel, 11), sqlite3_column_int64(sel, 1),
                         sqlite3_column_int64(sel, 12), sqlite3_column_double(sel, 5),
                         sqlite3_column_double(sel, 6), sqlite3_column_double(sel, 7)};
        char mac[65];
        card_mac(k, &c, mac);
        sqlite3_reset(upd);
        bind_text(upd, 1, c.uuid);
        bind_text(upd, 2, mac);
        if (sqlite3_step(upd) != SQLITE_DONE) goto out;
    }
    sqlite3_finalize(sel);
    sqlite3_finalize(upd);
    sel = upd = NULL;
    /* feedback */
    if (sqlite3_prepare_v2(db, "SELECT id, ts_us, service, card_uuid, outcome, reason_code,"
                               " reason_system, reason_display, user_comment, outcome_time,"
                               " principal FROM feedback", -1, &sel, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db, "UPDATE feedback SET mac = ?2 WHERE id = ?1", -1, &upd, NULL) !=
            SQLITE_OK)
        goto out;
    while (sqlite3_step(sel) == SQLITE_ROW) {
#define OPT(i) (sqlite3_column_type(sel, i) == SQLITE_NULL ? NULL : col(sel, i))
        serve_feedback_row f = {sqlite3_column_int64(sel, 1), col(sel, 2), col(sel, 3),
                                col(sel, 4), OPT(5), OPT(6), OPT(7), OPT(8), OPT(9), col(sel, 10)};
#undef OPT
        char mac[65];
        feedback_mac(k, &f, 0, mac);
        sqlite3_reset(upd);
        sqlite3_bind_int64(upd, 1, sqlite3_column_int64(sel, 0));
        bind_text(upd, 2, mac);
        if (sqlite3_step(upd) != SQLITE_DONE) goto out;
    }
    sqlite3_finalize(sel);
    sqlite3_finalize(upd);
    sel = upd = NULL;
    /* keys */
    if (sqlite3_prepare_v2(db, "SELECT id, name, role, hash, created_us, expires_us, revoked_us"
                               " FROM api_keys", -1, &sel, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db, "UPDATE api_keys SET mac = ?2 WHERE id = ?1", -1, &upd, NULL) !=
            SQLITE_OK)
        goto out;
    while (sqlite3_step(sel) == SQLITE_ROW) {
        char mac[65];
        key_mac(k, col(sel, 0), col(sel, 1), col(sel, 2), col(sel, 3), sqlite3_column_int64(sel, 4),
                sqlite3_column_int64(sel, 5), sqlite3_column_int64(sel, 6), mac);
        sqlite3_reset(upd);
        bind_text(upd, 1, col(sel, 0));
        bind_text(upd, 2, mac);
        if (sqlite3_step(upd) != SQLITE_DONE) goto out;
    }
    ok = 1;
out:
    sqlite3_finalize(sel);
    sqlite3_finalize(upd);
    return ok ? 0 : -1;
}

static int meta_get(sqlite3 *db, const char *key, char *out, size_t cap) {
    sqlite3_stmt *st = NULL;
    int found = 0;
    out[0] = '\0';
    if (sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key = ?1", -1, &st, NULL) == SQLITE_OK) {
        bind_text(st, 1, key);
        if (sqlite3_step(st) == SQLITE_ROW) {
            snprintf(out, cap, "%s", col(st, 0));
            found = 1;
        }
    }
    sqlite3_finalize(st);
    return found;
}

static int table_exists(sqlite3 *db, const char *name) {
    sqlite3_stmt *st = NULL;
    int found = 0;
    if (sqlite3_prepare_v2(db, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1", -1,
                           &st, NULL) == SQLITE_OK) {
        bind_text(st, 1, name);
        found = sqlite3_step(st) == SQLITE_ROW;
    }
    sqlite3_finalize(st);
    return found;
}

/* Creates or upgrades the schema in one transaction. */
static int setup_schema(sqlite3 *db, const keyset *k, const char *path, cf_err *err) {
    if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        return cf_fail(err, CF_EINPUT, "%s: cannot lock the service database: %s", path,
                       sqlite3_errmsg(db));
    char ver[16];
    int ok = 1;
    if (!table_exists(db, "meta")) {
        unsigned char idb[16];
        char id[33], sql[256];
        randombytes_buf(idb, sizeof idb);
        sodium_bin2hex(id, sizeof id, idb, sizeof idb);
        snprintf(sql, sizeof sql,
                 "INSERT INTO meta VALUES ('schema_version', '" SCHEMA_VERSION "'),"
                 " ('chain_v2_from', '1'), ('feedback_v2_from', '1'), ('db_id', '%s');", id);
        ok = sqlite3_exec(db, SCHEMA_V2, NULL, NULL, NULL) == SQLITE_OK &&
             sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK;
    } else if (meta_get(db, "schema_version", ver, sizeof ver) && !strcmp(ver, "1")) {
        unsigned char idb[16];
        char id[33], sql[200];
        randombytes_buf(idb, sizeof idb);
        sodium_bin2hex(id, sizeof id, idb, sizeof idb);
        snprintf(sql, sizeof sql,
                 "UPDATE meta SET value = '" SCHEMA_VERSION "' WHERE key = 'schema_version';"
                 "INSERT OR REPLACE INTO meta VALUES ('db_id', '%s');", id);
        ok = migrate_v1(db, k) == 0 && sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK;
    } else if (strcmp(ver, SCHEMA_VERSION)) {
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        return cf_fail(err, CF_EINPUT, "%s: not a clinfm service database of schema 1 or 2 "
                                       "(schema_version '%.8s')", path, ver);
    }
    ok = ok && sqlite3_exec(db, INDEXES, NULL, NULL, NULL) == SQLITE_OK;
    if (!ok || sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        int rc = cf_fail(err, CF_EINPUT, "%s: cannot set up the service database: %s", path,
                         sqlite3_errmsg(db));
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        return rc;
    }
    return CF_OK;
}

/* ------------------------------------------------------------------ open / close */

static int db_fail(serve_db *db, cf_err *err, const char *what) {
    return cf_fail(err, CF_EINTERNAL, "audit database: %s: %s", what,
                   db && db->db ? sqlite3_errmsg(db->db) : "cannot open");
}

static int prepare(serve_db *db, sqlite3_stmt **st, const char *sql, cf_err *err) {
    if (sqlite3_prepare_v3(db->db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL) != SQLITE_OK)
        return db_fail(db, err, "preparing a statement");
    return CF_OK;
}

int serve_db_open(serve_db **out, const char *path, const unsigned char secret[SERVE_SECRET_BYTES],
                  cf_err *err) {
    *out = NULL;
    if (sodium_init() < 0) return cf_fail(err, CF_EINTERNAL, "libsodium failed to initialise");
    serve_db *db = calloc(1, sizeof *db);
    if (!db) return cf_fail(err, CF_EINTERNAL, "out of memory");
    pthread_mutex_init(&db->mu, NULL);
    pthread_mutex_init(&db->anchor_mu, NULL);
    keyset_derive(&db->k, secret);
    int rc = CF_OK;
    int mem = !strcmp(path, ":memory:");
    if (!mem) {
        if ((rc = db_file_private(path, err))) goto fail;
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
                     NULL) != SQLITE_OK) {
        rc = cf_fail(err, CF_EINPUT, "%s: cannot set up the service database: %s", path,
                     sqlite3_errmsg(db->db));
        goto fail;
    }
    if ((rc = setup_schema(db->db, &db->k, path, err))) goto fail;
    char v[64];
    meta_get(db->db, "db_id", db->db_id, sizeof db->db_id);
    db->v2_from = meta_get(db->db, "chain_v2_from", v, sizeof v) ? atoll(v) : 1;
    if (!mem) {
        if (sqlite3_open_v2(path, &db->rd, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) !=
            SQLITE_OK) {
            rc = cf_fail(err, CF_EINPUT, "%s: cannot open the service database for reading", path);
            goto fail;
        }
        sqlite3_busy_timeout(db->rd, 5000);
        anchor a;
        if (head_read(&db->k, db->head_path, db->db_id, &a) == 0) {
            db->anchored_seq = a.rows;
            memcpy(db->anchored_hash, a.hash, 32);
        } else {
            db->head_invalid = 1;
        }
    }
    if ((rc = prepare(db, &db->st_last, "SELECT seq, row_hash FROM audit ORDER BY seq DESC LIMIT 1",
                      err)) ||
        (rc = prepare(db, &db->st_audit,
                      "INSERT INTO audit (seq, ts_us, time, principal, role, user, method, route,"
                      " status, patient, model, model_version, response_hash, latency_us,"
                      " prev_hash, row_hash, count, attached) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7,"
                      " ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)",
                      err)) ||
        (rc = prepare(db, &db->st_card,
                      "INSERT INTO cards (uuid, ts_us, service, hook, task, risk, lo, hi,"
                      " indicator, patient, model, model_version, audit_seq, mac) VALUES (?1, ?2,"
                      " ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
                      err)) ||
        (rc = prepare(db, &db->st_key,
                      "SELECT role, hash, expires_us, revoked_us, name, created_us, mac FROM"
                      " api_keys WHERE id = ?1", err)) ||
        (rc = prepare(db, &db->st_card_known,
                      "SELECT uuid, ts_us, service, hook, task, risk, lo, hi, indicator, patient,"
                      " model, model_version, audit_seq, mac FROM cards WHERE uuid = ?1", err)) ||
        (rc = prepare(db, &db->st_feedback,
                      "INSERT INTO feedback (ts_us, service, card_uuid, outcome, reason_code, "
                      "reason_system, reason_display, user_comment, outcome_time, principal, "
                      "audit_seq, mac) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                      err)))
        goto fail;
    *out = db;
    return CF_OK;
fail:
    serve_db_close(db);
    return rc;
}

void serve_db_set_anchor_sinks(serve_db *db, const char *anchor_file, int use_syslog) {
    pthread_mutex_lock(&db->anchor_mu);
    free(db->anchor_file);
    db->anchor_file = anchor_file ? strdup(anchor_file) : NULL;
    db->use_syslog = use_syslog;
    if (use_syslog) openlog("clinfm-serve", LOG_PID | LOG_NDELAY, LOG_AUTHPRIV);
    pthread_mutex_unlock(&db->anchor_mu);
}

void serve_db_close(serve_db *db) {
    if (!db) return;
    if (db->db && db->rd) {
        cf_err e;
        if (serve_db_anchor(db, NULL, &e)) fprintf(stderr, "clinfm: audit anchor: %s\n", e.msg);
    }
    sqlite3_stmt *sts[] = {db->st_last, db->st_audit, db->st_card, db->st_key, db->st_card_known,
                           db->st_feedback};
    for (size_t i = 0; i < sizeof sts / sizeof sts[0]; i++) sqlite3_finalize(sts[i]);
    if (db->rd) sqlite3_close(db->rd);
    if (db->db) sqlite3_close(db->db);
    pthread_mutex_destroy(&db->mu);
    pthread_mutex_destroy(&db->anchor_mu);
    free(db->head_path);
    free(db->anchor_file);
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
                       db->k.pseudo, 32);
    sodium_bin2hex(out, 33, h, sizeof h);
}

/* ------------------------------------------------------------------ appending */

/* Appends one row (and what it carries) inside the caller's write transaction; *seq_out gets
 * its number. The tail is read inside the transaction, so two writers never fork the chain. */
static int append_locked(serve_db *db, const serve_audit_entry *e, const serve_card_row *cards,
                         size_t n_cards, const serve_feedback_row *fb, size_t n_fb,
                         int64_t *seq_out, cf_err *err) {
    char tb[48];
    serve_time_iso(e->ts_us, tb, sizeof tb);
    unsigned char prev[32] = {0};
    int64_t seq = 1;
    sqlite3_reset(db->st_last);
    int s = sqlite3_step(db->st_last);
    if (s == SQLITE_ROW) {
        seq = sqlite3_column_int64(db->st_last, 0) + 1;
        if (!hex32((const char *)sqlite3_column_text(db->st_last, 1), prev)) {
            sqlite3_reset(db->st_last);
            return cf_fail(err, CF_EINTERNAL, "audit database: the last row's hash is malformed "
                                              "(run 'clinfm audit verify')");
        }
    } else if (s != SQLITE_DONE) {
        sqlite3_reset(db->st_last);
        return db_fail(db, err, "reading the chain's tail");
    }
    sqlite3_reset(db->st_last);
    /* the rows it carries, MAC'd with the row number they belong to */
    mac_list macs = {0};
    char (*cmac)[65] = n_cards ? calloc(n_cards, sizeof *cmac) : NULL;
    char (*fmac)[65] = n_fb ? calloc(n_fb, sizeof *fmac) : NULL;
    int rc = CF_OK;
    if ((n_cards && !cmac) || (n_fb && !fmac)) {
        rc = cf_fail(err, CF_EINTERNAL, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n_cards; i++) {
        const serve_card_row *c = &cards[i];
        card_fields cf = {c->uuid, c->service, c->hook, c->task, c->indicator, e->patient,
                          e->model, e->model_version, e->ts_us, seq, c->risk, c->lo, c->hi};
        card_mac(&db->k, &cf, cmac[i]);
        if (mac_list_add(&macs, 'c', cmac[i])) rc = cf_fail(err, CF_EINTERNAL, "out of memory");
    }
    for (size_t i = 0; i < n_fb; i++) {
        feedback_mac(&db->k, &fb[i], seq, fmac[i]);
        if (mac_list_add(&macs, 'f', fmac[i])) rc = cf_fail(err, CF_EINTERNAL, "out of memory");
    }
    if (rc) goto out;
    char attached[65];
    attached_digest(&db->k, &macs, attached);
    audit_fields f = {seq, e->ts_us, e->status, e->latency_us, e->count > 0 ? e->count : 1, tb,
                      e->principal, e->role, e->user, e->method, e->route, e->patient, e->model,
                      e->model_version, e->response_hash, attached};
    unsigned char h[32];
    row_hash(&db->k, 1, prev, &f, h);
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
    sqlite3_bind_int64(st, 17, f.count);
    bind_text(st, 18, attached);
    if (sqlite3_step(st) != SQLITE_DONE) {
        rc = db_fail(db, err, "appending an audit row");
        goto out;
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
        bind_text(st, 14, cmac[i]);
        if (sqlite3_step(st) != SQLITE_DONE) {
            rc = db_fail(db, err, "recording a card");
            goto out;
        }
    }
    for (size_t i = 0; i < n_fb; i++) {
        const serve_feedback_row *x = &fb[i];
        st = db->st_feedback;
        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, x->ts_us);
        bind_text(st, 2, x->service);
        bind_text(st, 3, x->card);
        bind_text(st, 4, x->outcome);
        bind_opt(st, 5, x->reason_code);
        bind_opt(st, 6, x->reason_system);
        bind_opt(st, 7, x->reason_display);
        bind_opt(st, 8, x->comment);
        bind_opt(st, 9, x->outcome_time);
        bind_text(st, 10, x->principal);
        sqlite3_bind_int64(st, 11, seq);
        bind_text(st, 12, fmac[i]);
        if (sqlite3_step(st) != SQLITE_DONE) {
            rc = db_fail(db, err, "recording feedback");
            goto out;
        }
    }
    *seq_out = seq;
out:
    CF_FREE_ALL(macs.mac, cmac, fmac);
    return rc;
}

int serve_db_audit(serve_db *db, const serve_audit_entry *e, const serve_card_row *cards,
                   size_t n_cards, const serve_feedback_row *feedback, size_t n_feedback,
                   cf_err *err) {
    int rc = CF_OK;
    int64_t seq;
    pthread_mutex_lock(&db->mu);
    if (sqlite3_exec(db->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
        rc = db_fail(db, err, "starting a transaction");
        goto out;
    }
    rc = append_locked(db, e, cards, n_cards, feedback, n_feedback, &seq, err);
    if (!rc && sqlite3_exec(db->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        rc = db_fail(db, err, "committing an audit row");
    if (rc) sqlite3_exec(db->db, "ROLLBACK", NULL, NULL, NULL);
out:
    pthread_mutex_unlock(&db->mu);
    return rc;
}

/* ------------------------------------------------------------------ anchoring */

#define AUDIT_COLS                                                                                 \
    "seq, ts_us, time, principal, role, user, method, route, status, patient, model,"              \
    " model_version, response_hash, latency_us, prev_hash, row_hash, count, attached"

static audit_fields row_fields(sqlite3_stmt *st) {
    return (audit_fields){sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1),
                          sqlite3_column_int64(st, 8), sqlite3_column_int64(st, 13),
                          sqlite3_column_int64(st, 16), col(st, 2), col(st, 3), col(st, 4),
                          col(st, 5), col(st, 6), col(st, 7), col(st, 9), col(st, 10), col(st, 11),
                          col(st, 12), col(st, 17)};
}

/* Checks one row against its predecessor's hash: link, contents, number. 0 or a message. */
static const char *check_row(const keyset *k, int64_t v2_from, const unsigned char prev[32],
                             int64_t expect, sqlite3_stmt *st, unsigned char h[32]) {
    audit_fields f = row_fields(st);
    unsigned char link[32], stored[32];
    if (f.seq != expect) return "rows were deleted";
    if (!hex32(col(st, 14), link) || sodium_memcmp(link, prev, 32) != 0)
        return "its link to the previous row is broken (a row was edited, deleted or inserted)";
    int v2 = f.seq >= v2_from;
    if (!v2 && (f.count != 1 || f.attached[0])) return "its contents do not match its hash (the row was edited)";
    row_hash(k, v2, prev, &f, h);
    if (!hex32(col(st, 15), stored) || sodium_memcmp(stored, h, 32) != 0)
        return "its contents do not match its hash (the row was edited)";
    return NULL;
}

static void emit_anchor(serve_db *db, const char *line, size_t len, cf_err *err) {
    cf_err e;
    if (write_private_file(db->head_path, line, len, &e) && err) *err = e;
    if (db->anchor_file) {
        int fd = open(db->anchor_file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
        if (fd < 0 || write_all(fd, line, len, db->anchor_file, &e) || fsync(fd))
            fprintf(stderr, "clinfm serve: cannot append to the anchor file %s\n", db->anchor_file);
        if (fd >= 0) close(fd);
    }
    if (db->use_syslog) syslog(LOG_INFO, "%.*s", (int)(len && line[len - 1] == '\n' ? len - 1 : len), line);
}

int serve_db_anchor(serve_db *db, int *head_missing, cf_err *err) {
    if (head_missing) *head_missing = 0;
    if (!db->head_path) return CF_OK; /* :memory: */
    pthread_mutex_lock(&db->anchor_mu);
    int rc = CF_OK;
    sqlite3_stmt *st = NULL;
    int64_t start = db->anchored_seq;
    if (db->head_invalid) start = 0;
    if (sqlite3_prepare_v2(db->rd, "SELECT " AUDIT_COLS " FROM audit WHERE seq >= ?1 ORDER BY seq",
                           -1, &st, NULL) != SQLITE_OK) {
        rc = cf_fail(err, CF_EINTERNAL, "audit database: %s", sqlite3_errmsg(db->rd));
        goto out;
    }
    sqlite3_bind_int64(st, 1, start > 0 ? start : 1);
    unsigned char prev[32] = {0}, h[32];
    int64_t expect = start > 0 ? start : 1, last = 0;
    int s;
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t seq = sqlite3_column_int64(st, 0);
        if (start > 0 && seq == start) {
            /* the anchored row itself: still there, unchanged */
            unsigned char stored[32];
            if (seq != start || !hex32(col(st, 15), stored) ||
                sodium_memcmp(stored, db->anchored_hash, 32) != 0) {
                rc = cf_fail(err, CF_EINPUT, "audit row %" PRId64 " is not the row the last anchor "
                                             "recorded (the chain was rewritten)", seq);
                goto out;
            }
            memcpy(prev, stored, 32);
            expect = seq + 1;
            last = seq;
            continue;
        }
        if (start > 0 && expect == start) {
            rc = cf_fail(err, CF_EINPUT, "audit row %" PRId64 ", which the last anchor recorded, "
                                         "was deleted", start);
            goto out;
        }
        const char *why = check_row(&db->k, db->v2_from, prev, expect, st, h);
        if (why) {
            rc = cf_fail(err, CF_EINPUT, "audit row %" PRId64 ": %s", seq, why);
            goto out;
        }
        memcpy(prev, h, 32);
        last = seq;
        expect++;
    }
    if (s != SQLITE_DONE) {
        rc = cf_fail(err, CF_EINTERNAL, "audit database: %s", sqlite3_errmsg(db->rd));
        goto out;
    }
    if (start > 0 && last < start) {
        rc = cf_fail(err, CF_EINPUT, "the audit table ends before row %" PRId64 ", which the last "
                                     "anchor recorded: the newest rows were deleted", start);
        goto out;
    }
    if (head_missing && db->head_invalid && last > 0) *head_missing = 1;
    if (last == 0 || (last == db->anchored_seq && !db->head_invalid)) goto out; /* nothing new */
    anchor a;
    snprintf(a.db, sizeof a.db, "%s", db->db_id);
    a.rows = last;
    memcpy(a.hash, prev, 32);
    a.ts_us = now_us();
    serve_time_iso(a.ts_us - a.ts_us % 1000000, a.time, sizeof a.time);
    char line[600];
    int n = anchor_format(&db->k, &a, line, sizeof line);
    if (n < 0) {
        rc = cf_fail(err, CF_EINTERNAL, "audit anchor: line too long");
        goto out;
    }
    cf_err we = {0};
    emit_anchor(db, line, (size_t)n, &we);
    if (we.code) {
        rc = cf_fail(err, CF_EINTERNAL, "%s", we.msg);
        goto out;
    }
    db->anchored_seq = last;
    memcpy(db->anchored_hash, prev, 32);
    db->head_invalid = 0;
out:
    sqlite3_finalize(st);
    pthread_mutex_unlock(&db->anchor_mu);
    return rc;
}

int serve_db_check_anchor_file(serve_db *db, cf_err *err) {
    if (!db->anchor_file || !db->rd) return CF_OK;
    FILE *f = fopen(db->anchor_file, "r");
    if (!f) return CF_OK; /* none written yet */
    /* the last anchor of this database (a shared file or syslog may hold others') */
    char *line = NULL;
    size_t cap = 0;
    anchor a, last;
    int have = 0, rc = CF_OK;
    while (getline(&line, &cap, f) > 0) {
        char *at = strstr(line, ANCHOR_MAGIC);
        /* lines of other databases, or not signed with this secret (verify --anchor reports
         * those), are not this database's anchors */
        if (!at || anchor_parse(&db->k, at, strcspn(at, "\r\n"), &a) || strcmp(a.db, db->db_id))
            continue;
        last = a;
        have = 1;
    }
    free(line);
    fclose(f);
    if (!have) return CF_OK;
    sqlite3_stmt *st = NULL;
    unsigned char h[32];
    if (sqlite3_prepare_v2(db->rd, "SELECT row_hash FROM audit WHERE seq = ?1", -1, &st, NULL) !=
        SQLITE_OK)
        return cf_fail(err, CF_EINTERNAL, "audit database: %s", sqlite3_errmsg(db->rd));
    sqlite3_bind_int64(st, 1, last.rows);
    if (sqlite3_step(st) != SQLITE_ROW)
        rc = cf_fail(err, CF_EINPUT, "the audit table no longer holds row %" PRId64 ", which %s "
                                     "anchored at %s: the newest rows were deleted", last.rows,
                     db->anchor_file, last.time);
    else if (!hex32(col(st, 0), h) || sodium_memcmp(h, last.hash, 32) != 0)
        rc = cf_fail(err, CF_EINPUT, "audit row %" PRId64 " is not the row %s anchored at %s (the "
                                     "chain was rewritten)", last.rows, db->anchor_file, last.time);
    sqlite3_finalize(st);
    return rc;
}

/* ------------------------------------------------------------------ verification */

typedef struct {
    anchor *a;
    size_t n, cap;
} anchor_list;

static int cmp_anchor(const void *x, const void *y) {
    const anchor *a = x, *b = y;
    return a->rows < b->rows ? -1 : a->rows > b->rows;
}

static int read_anchor_file(const keyset *k, const char *path, const char *db_id, anchor_list *l,
                            cf_err *err) {
    FILE *f = fopen(path, "r");
    if (!f) return cf_fail_errno(err, CF_EINPUT, "%s: cannot read the anchor file", path);
    char *line = NULL;
    size_t cap = 0, lineno = 0;
    ssize_t n;
    int rc = CF_OK;
    while ((n = getline(&line, &cap, f)) > 0) {
        lineno++;
        size_t len = (size_t)n;
        while (len && (line[len - 1] == '\n' || line[len - 1] == '\r')) len--;
        if (!len) continue;
        /* syslog lines carry a prefix: take the anchor from where it starts */
        char *at = memmem(line, len, ANCHOR_MAGIC, strlen(ANCHOR_MAGIC));
        if (!at) continue;
        /* another database's anchor in a shared log (signed with its own secret) is skipped */
        char want[48];
        snprintf(want, sizeof want, " db=%s ", db_id);
        if (!memmem(at, len - (size_t)(at - line), want, strlen(want))) continue;
        anchor a;
        int r = anchor_parse(k, at, len - (size_t)(at - line), &a);
        if (r) {
            rc = cf_fail(err, CF_EINPUT, "%s:%zu: %s", path, lineno,
                         r == -2 ? "the anchor's signature does not verify with this secret "
                                   "(forged or edited)"
                                 : "not a well-formed anchor");
            break;
        }
        if (l->n == l->cap) {
            size_t nc = l->cap ? l->cap * 2 : 64;
            anchor *t = realloc(l->a, nc * sizeof *t);
            if (!t) {
                rc = cf_fail(err, CF_EINTERNAL, "out of memory");
                break;
            }
            l->a = t;
            l->cap = nc;
        }
        l->a[l->n++] = a;
    }
    free(line);
    fclose(f);
    if (!rc && !l->n)
        rc = cf_fail(err, CF_EINPUT, "%s: holds no anchor of this database", path);
    if (!rc) qsort(l->a, l->n, sizeof *l->a, cmp_anchor);
    return rc;
}

/* Token commands recorded in the chain, to check the api_keys table against. */
typedef struct {
    char (*id)[SERVE_KEY_ID_LEN + 1];
    int64_t *seq;
    size_t n, cap;
} id_list;

static int id_add(id_list *l, const char *id, int64_t seq) {
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 16;
        void *a = realloc(l->id, nc * sizeof *l->id), *b = a ? realloc(l->seq, nc * sizeof *l->seq) : NULL;
        if (a) l->id = a;
        if (!a || !b) return -1;
        l->seq = b;
        l->cap = nc;
    }
    snprintf(l->id[l->n], sizeof l->id[0], "%.16s", id);
    l->seq[l->n++] = seq;
    return 0;
}

static int64_t id_find(const id_list *l, const char *id) {
    for (size_t i = 0; i < l->n; i++)
        if (!strcmp(l->id[i], id)) return l->seq[i];
    return 0;
}

int serve_db_verify(const char *path, const unsigned char secret[SERVE_SECRET_BYTES],
                    const char *anchor_file, FILE *out, serve_verify_report *rep, cf_err *err) {
    serve_verify_report local;
    if (!rep) rep = &local;
    memset(rep, 0, sizeof *rep);
    if (sodium_init() < 0) return cf_fail(err, CF_EINTERNAL, "libsodium failed to initialise");
    keyset *k = sodium_malloc(sizeof *k);
    if (!k) return cf_fail(err, CF_EINTERNAL, "out of memory");
    keyset_derive(k, secret);
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL, *cq = NULL, *fq = NULL;
    anchor_list anchors = {0};
    id_list created = {0}, revoked = {0};
    mac_list macs = {0};
    int rc = CF_OK;
    char ver[16], db_id[40], v[64];
    if (access(path, R_OK) ||
        sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        rc = cf_fail(err, CF_EINPUT, "%s: cannot open the service database", path);
        goto done;
    }
    sqlite3_busy_timeout(db, 5000);
    if (!table_exists(db, "meta") || !meta_get(db, "schema_version", ver, sizeof ver)) {
        rc = cf_fail(err, CF_EINPUT, "%s: not a clinfm service database", path);
        goto done;
    }
    if (strcmp(ver, SCHEMA_VERSION)) {
        rc = cf_fail(err, CF_EINPUT, "%s: schema %.8s: open it once with this clinfm (for example "
                                     "'clinfm token list') to upgrade it, then verify", path, ver);
        goto done;
    }
    meta_get(db, "db_id", db_id, sizeof db_id);
    int64_t v2_from = meta_get(db, "chain_v2_from", v, sizeof v) ? atoll(v) : 1;
    int64_t fb_v2_from = meta_get(db, "feedback_v2_from", v, sizeof v) ? atoll(v) : 1;
    /* the head file and the auditor's anchors */
    char head_path[4200];
    snprintf(head_path, sizeof head_path, "%s-head", path);
    anchor head;
    int hr = head_read(k, head_path, db_id, &head);
    if (hr == -2) {
        rc = cf_fail(err, CF_EINPUT, "%s: the head file is damaged, belongs to another database or "
                                     "was not written with this secret", head_path);
        goto done;
    }
    if (anchor_file && (rc = read_anchor_file(k, anchor_file, db_id, &anchors, err))) goto done;
    if (sqlite3_prepare_v2(db, "SELECT " AUDIT_COLS " FROM audit ORDER BY seq", -1, &st, NULL) !=
            SQLITE_OK ||
        sqlite3_prepare_v2(db, "SELECT mac FROM cards WHERE audit_seq = ?1", -1, &cq, NULL) !=
            SQLITE_OK ||
        sqlite3_prepare_v2(db, "SELECT mac FROM feedback WHERE audit_seq = ?1 AND id >= ?2", -1,
                           &fq, NULL) != SQLITE_OK) {
        rc = cf_fail(err, CF_EINPUT, "%s: not a clinfm service database: %s", path,
                     sqlite3_errmsg(db));
        goto done;
    }
    unsigned char prev[32] = {0}, h[32];
    int64_t expect = 1;
    size_t next_anchor = 0;
    uint64_t attached_cards = 0, attached_fb = 0;
    int s;
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        audit_fields f = row_fields(st);
        const char *why = check_row(k, v2_from, prev, expect, st, h);
        if (why) {
            if (f.seq != expect)
                rc = cf_fail(err, CF_EINPUT, "audit row %" PRId64 " follows row %" PRId64
                                             ": rows were deleted", f.seq, expect - 1);
            else
                rc = cf_fail(err, CF_EINPUT, "audit row %" PRId64 ": %s", f.seq, why);
            goto done;
        }
        /* the cards and feedback it carries */
        if (f.seq >= v2_from) {
            macs.n = 0;
            size_t nc = 0, nf = 0;
            sqlite3_reset(cq);
            sqlite3_bind_int64(cq, 1, f.seq);
            while (sqlite3_step(cq) == SQLITE_ROW) {
                if (mac_list_add(&macs, 'c', col(cq, 0))) goto oom;
                nc++;
            }
            sqlite3_reset(fq);
            sqlite3_bind_int64(fq, 1, f.seq);
            sqlite3_bind_int64(fq, 2, fb_v2_from);
            while (sqlite3_step(fq) == SQLITE_ROW) {
                if (mac_list_add(&macs, 'f', col(fq, 0))) goto oom;
                nf++;
            }
            char digest[65];
            attached_digest(k, &macs, digest);
            if (strcmp(digest, f.attached)) {
                rc = cf_fail(err, CF_EINPUT, "audit row %" PRId64 ": the cards or feedback written "
                                             "with it were deleted, added, moved or edited",
                             f.seq);
                goto done;
            }
            attached_cards += nc;
            attached_fb += nf;
        }
        /* token commands */
        if (!strcmp(f.method, "CLI")) {
            if (!strncmp(f.route, "token create ", 13) && id_add(&created, f.route + 13, f.seq)) goto oom;
            if (!strncmp(f.route, "token revoke ", 13) && id_add(&revoked, f.route + 13, f.seq)) goto oom;
        }
        /* anchors naming this row */
        if (hr == 0 && head.rows == f.seq && sodium_memcmp(h, head.hash, 32) != 0) {
            rc = cf_fail(err, CF_EINPUT, "audit row %" PRId64 " is not the row the head file "
                                         "anchored (the chain was rewritten)", f.seq);
            goto done;
        }
        while (next_anchor < anchors.n && anchors.a[next_anchor].rows == f.seq) {
            if (sodium_memcmp(h, anchors.a[next_anchor].hash, 32) != 0) {
                rc = cf_fail(err, CF_EINPUT, "audit row %" PRId64 " is not the row anchored at %s "
                                             "in %s (the chain was rewritten)", f.seq,
                             anchors.a[next_anchor].time, anchor_file);
                goto done;
            }
            rep->anchored = (uint64_t)f.seq;
            snprintf(rep->anchored_time, sizeof rep->anchored_time, "%s", anchors.a[next_anchor].time);
            next_anchor++;
        }
        memcpy(prev, h, 32);
        expect++;
        rep->rows++;
    }
    if (s != SQLITE_DONE) {
        rc = cf_fail(err, CF_EINPUT, "%s: reading the audit table: %s", path, sqlite3_errmsg(db));
        goto done;
    }
    if (rep->rows == 0) {
        rc = cf_fail(err, CF_EINPUT, "the audit table is empty: nothing vouches for it (a server "
                                     "that has started once has rows)");
        goto done;
    }
    if (next_anchor < anchors.n) {
        const anchor *a = &anchors.a[anchors.n - 1];
        rc = cf_fail(err, CF_EINPUT, "the audit table ends at row %" PRIu64 " but %s anchored row "
                                     "%" PRId64 " at %s: the newest rows were deleted",
                     rep->rows, anchor_file, a->rows, a->time);
        goto done;
    }
    if (hr == -1) {
        rc = cf_fail(err, CF_EINPUT, "%s is missing: the newest rows cannot be vouched for%s",
                     head_path, anchor_file ? "" : " (give the anchor file with --anchor)");
        goto done;
    }
    if ((uint64_t)head.rows > rep->rows) {
        rc = cf_fail(err, CF_EINPUT, "the audit table ends at row %" PRIu64 " but the head file "
                                     "records row %" PRId64 ": the newest rows were deleted",
                     rep->rows, head.rows);
        goto done;
    }
    if ((uint64_t)head.rows > rep->anchored) {
        rep->anchored = (uint64_t)head.rows;
        snprintf(rep->anchored_time, sizeof rep->anchored_time, "%s", head.time);
    }
    /* every card, feedback and key row: its MAC, and that none is outside what the chain
     * carries */
    sqlite3_finalize(st);
    st = NULL;
    if (sqlite3_prepare_v2(db, "SELECT uuid, ts_us, service, hook, task, risk, lo, hi, indicator,"
                               " patient, model, model_version, audit_seq, mac FROM cards", -1,
                           &st, NULL) != SQLITE_OK)
        goto sqlfail;
    uint64_t v2_cards = 0;
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        card_fields c = {col(st, 0), col(st, 2), col(st, 3), col(st, 4), col(st, 8), col(st, 9),
                         col(st, 10), col(st, 11), sqlite3_column_int64(st, 1),
                         sqlite3_column_int64(st, 12), sqlite3_column_double(st, 5),
                         sqlite3_column_double(st, 6), sqlite3_column_double(st, 7)};
        char mac[65];
        card_mac(k, &c, mac);
        if (strcmp(mac, col(st, 13))) {
            rc = cf_fail(err, CF_EINPUT, "card %.36s (audit row %" PRId64 ") fails its integrity "
                                         "check: it was edited", c.uuid, c.audit_seq);
            goto done;
        }
        if (c.audit_seq >= v2_from) v2_cards++;
        rep->cards++;
    }
    if (s != SQLITE_DONE) goto sqlfail;
    if (v2_cards != attached_cards) {
        rc = cf_fail(err, CF_EINPUT, "%" PRIu64 " cards are not carried by the audit row they name "
                                     "(inserted or moved)", v2_cards - attached_cards);
        goto done;
    }
    sqlite3_finalize(st);
    st = NULL;
    if (sqlite3_prepare_v2(db, "SELECT id, ts_us, service, card_uuid, outcome, reason_code,"
                               " reason_system, reason_display, user_comment, outcome_time,"
                               " principal, audit_seq, mac FROM feedback", -1, &st, NULL) !=
        SQLITE_OK)
        goto sqlfail;
    uint64_t v2_fb = 0;
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
#define OPT(i) (sqlite3_column_type(st, i) == SQLITE_NULL ? NULL : col(st, i))
        serve_feedback_row f = {sqlite3_column_int64(st, 1), col(st, 2), col(st, 3), col(st, 4),
                                OPT(5), OPT(6), OPT(7), OPT(8), OPT(9), col(st, 10)};
#undef OPT
        int64_t id = sqlite3_column_int64(st, 0), aseq = sqlite3_column_int64(st, 11);
        char mac[65];
        feedback_mac(k, &f, aseq, mac);
        if (strcmp(mac, col(st, 12))) {
            rc = cf_fail(err, CF_EINPUT, "feedback row %" PRId64 " fails its integrity check: it "
                                         "was edited", id);
            goto done;
        }
        if (id >= fb_v2_from) v2_fb++;
        rep->feedback++;
    }
    if (s != SQLITE_DONE) goto sqlfail;
    if (v2_fb != attached_fb) {
        rc = cf_fail(err, CF_EINPUT, "%" PRIu64 " feedback rows are not carried by the audit row "
                                     "they name (inserted or moved)", v2_fb - attached_fb);
        goto done;
    }
    sqlite3_finalize(st);
    st = NULL;
    if (sqlite3_prepare_v2(db, "SELECT id, name, role, hash, created_us, expires_us, revoked_us,"
                               " mac FROM api_keys", -1, &st, NULL) != SQLITE_OK)
        goto sqlfail;
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        const char *id = col(st, 0);
        char mac[65];
        key_mac(k, id, col(st, 1), col(st, 2), col(st, 3), sqlite3_column_int64(st, 4),
                sqlite3_column_int64(st, 5), sqlite3_column_int64(st, 6), mac);
        if (strcmp(mac, col(st, 7))) {
            rc = cf_fail(err, CF_EINPUT, "API key %.16s fails its integrity check: its row was "
                                         "edited (role, expiry or revocation)", id);
            goto done;
        }
        if (!id_find(&created, id)) {
            rc = cf_fail(err, CF_EINPUT, "API key %.16s has no 'token create' row in the audit "
                                         "chain: it was inserted", id);
            goto done;
        }
        int64_t rs = id_find(&revoked, id);
        if (rs && sqlite3_column_int64(st, 6) == 0) {
            rc = cf_fail(err, CF_EINPUT, "API key %.16s was revoked (audit row %" PRId64 ") but its "
                                         "row says live: it was restored from before the "
                                         "revocation", id, rs);
            goto done;
        }
        rep->keys++;
    }
    if (s != SQLITE_DONE) goto sqlfail;
    if (out) {
        char pk[2 * crypto_sign_PUBLICKEYBYTES + 1];
        sodium_bin2hex(pk, sizeof pk, k->sign_pk, sizeof k->sign_pk);
        fprintf(out, "audit chain intact: %" PRIu64 " rows, anchored through row %" PRIu64
                     " at %s%s%s\n",
                rep->rows, rep->anchored, rep->anchored_time,
                rep->anchored < rep->rows ? " (newer rows are chained but not yet anchored)" : "",
                anchor_file ? "; every anchor in the anchor file matches" : "");
        fprintf(out, "rows with a MAC intact: %" PRIu64 " cards, %" PRIu64 " feedback, %" PRIu64
                     " API keys\nanchor signing key: ed25519:%s\n",
                rep->cards, rep->feedback, rep->keys, pk);
    }
    goto done;
sqlfail:
    rc = cf_fail(err, CF_EINPUT, "%s: reading the database: %s", path, sqlite3_errmsg(db));
    goto done;
oom:
    rc = cf_fail(err, CF_EINTERNAL, "out of memory");
done:
    sodium_free(k);
    CF_FREE_ALL(anchors.a, created.id, created.seq, revoked.id, revoked.seq, macs.mac);
    sqlite3_finalize(st);
    sqlite3_finalize(cq);
    sqlite3_finalize(fq);
    if (db) sqlite3_close(db);
    return rc;
}

/* ------------------------------------------------------------------ API keys */

static void key_hash(const serve_db *db, const char *token, char out[65]) {
    unsigned char h[32];
    crypto_generichash(h, 32, (const unsigned char *)token, strlen(token), db->k.apikey, 32);
    sodium_bin2hex(out, 65, h, 32);
}

static int valid_role(const char *r) {
    return !strcmp(r, "clinician") || !strcmp(r, "service") || !strcmp(r, "admin");
}

/* A CLI audit row for a token command, in the caller's transaction. */
static int cli_row(serve_db *db, const char *who, const char *what, cf_err *err) {
    int64_t seq;
    serve_audit_entry e = {now_us(), who, "admin", "", "CLI", what, "", "", "", 0, "", 0, 1};
    return append_locked(db, &e, NULL, 0, NULL, 0, &seq, err);
}

int serve_db_key_create(serve_db *db, const char *name, const char *role, int64_t expires_us,
                        const char *who, char *token, char id[SERVE_KEY_ID_LEN + 1], cf_err *err) {
    if (!valid_role(role))
        return cf_fail(err, CF_EINPUT, "role must be clinician, service or admin");
    if (!*name || strlen(name) > 100)
        return cf_fail(err, CF_EINPUT, "the key name must be 1-100 characters");
    for (const char *p = name; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return cf_fail(err, CF_EINPUT, "the key name must not hold control characters");
    unsigned char idb[SERVE_KEY_ID_LEN / 2], sec[32];
    randombytes_buf(idb, sizeof idb);
    randombytes_buf(sec, sizeof sec);
    char sec_hex[65], hash[65], mac[65], what[64];
    sodium_bin2hex(id, SERVE_KEY_ID_LEN + 1, idb, sizeof idb);
    sodium_bin2hex(sec_hex, sizeof sec_hex, sec, sizeof sec);
    snprintf(token, SERVE_TOKEN_LEN + 1, "cfk_%s_%s", id, sec_hex);
    sodium_memzero(sec, sizeof sec);
    sodium_memzero(sec_hex, sizeof sec_hex);
    key_hash(db, token, hash);
    int64_t created = now_us();
    key_mac(&db->k, id, name, role, hash, created, expires_us, 0, mac);
    snprintf(what, sizeof what, "token create %s", id);
    int rc = CF_OK;
    sqlite3_stmt *st = NULL;
    pthread_mutex_lock(&db->mu);
    if (sqlite3_exec(db->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
        rc = db_fail(db, err, "starting a transaction");
        goto out;
    }
    if (sqlite3_prepare_v2(db->db, "INSERT INTO api_keys (id, name, role, hash, created_us,"
                                   " expires_us, revoked_us, mac) VALUES (?1, ?2, ?3, ?4, ?5, ?6,"
                                   " 0, ?7)", -1, &st, NULL) != SQLITE_OK) {
        rc = db_fail(db, err, "preparing");
    } else {
        bind_text(st, 1, id);
        bind_text(st, 2, name);
        bind_text(st, 3, role);
        bind_text(st, 4, hash);
        sqlite3_bind_int64(st, 5, created);
        sqlite3_bind_int64(st, 6, expires_us);
        bind_text(st, 7, mac);
        if (sqlite3_step(st) != SQLITE_DONE) rc = db_fail(db, err, "storing the key");
    }
    if (!rc) rc = cli_row(db, who, what, err);
    if (!rc && sqlite3_exec(db->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        rc = db_fail(db, err, "committing the key");
    if (rc) sqlite3_exec(db->db, "ROLLBACK", NULL, NULL, NULL);
out:
    sqlite3_finalize(st);
    pthread_mutex_unlock(&db->mu);
    if (rc) sodium_memzero(token, SERVE_TOKEN_LEN + 1);
    return rc;
}

int serve_db_key_revoke(serve_db *db, const char *id, const char *who, cf_err *err) {
    int rc = CF_OK;
    sqlite3_stmt *st = NULL;
    if (strlen(id) != SERVE_KEY_ID_LEN) return cf_fail(err, CF_EINPUT, "a key id has 16 hex digits");
    pthread_mutex_lock(&db->mu);
    if (sqlite3_exec(db->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
        rc = db_fail(db, err, "starting a transaction");
        goto out;
    }
    if (sqlite3_prepare_v2(db->db, "SELECT name, role, hash, created_us, expires_us, mac FROM"
                                   " api_keys WHERE id = ?1 AND revoked_us = 0", -1, &st, NULL) !=
        SQLITE_OK) {
        rc = db_fail(db, err, "preparing");
        goto rollback;
    }
    bind_text(st, 1, id);
    if (sqlite3_step(st) != SQLITE_ROW) {
        rc = cf_fail(err, CF_EINPUT, "no live API key has id %.40s", id);
        goto rollback;
    }
    char old[65], mac[65], name[128], role[16], hash[65], what[64];
    int64_t created = sqlite3_column_int64(st, 3), expires = sqlite3_column_int64(st, 4),
            revoked = now_us();
    snprintf(name, sizeof name, "%s", col(st, 0));
    snprintf(role, sizeof role, "%s", col(st, 1));
    snprintf(hash, sizeof hash, "%s", col(st, 2));
    key_mac(&db->k, id, name, role, hash, created, expires, 0, old);
    /* a row that was already edited is revoked all the same, with a note in the error log */
    if (strcmp(old, col(st, 5)))
        fprintf(stderr, "clinfm: API key %.16s failed its integrity check before revocation\n", id);
    key_mac(&db->k, id, name, role, hash, created, expires, revoked, mac);
    sqlite3_finalize(st);
    st = NULL;
    if (sqlite3_prepare_v2(db->db, "UPDATE api_keys SET revoked_us = ?2, mac = ?3 WHERE id = ?1",
                           -1, &st, NULL) != SQLITE_OK) {
        rc = db_fail(db, err, "preparing");
        goto rollback;
    }
    bind_text(st, 1, id);
    sqlite3_bind_int64(st, 2, revoked);
    bind_text(st, 3, mac);
    if (sqlite3_step(st) != SQLITE_DONE) {
        rc = db_fail(db, err, "revoking the key");
        goto rollback;
    }
    snprintf(what, sizeof what, "token revoke %.16s", id);
    if ((rc = cli_row(db, who, what, err))) goto rollback;
    if (sqlite3_exec(db->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        rc = db_fail(db, err, "committing the revocation");
        goto rollback;
    }
    goto out;
rollback:
    sqlite3_exec(db->db, "ROLLBACK", NULL, NULL, NULL);
out:
    sqlite3_finalize(st);
    pthread_mutex_unlock(&db->mu);
    return rc;
}

int serve_db_key_list(serve_db *db, FILE *out, cf_err *err) {
    sqlite3_stmt *st = NULL;
    int rc = CF_OK;
    pthread_mutex_lock(&db->mu);
    if (sqlite3_prepare_v2(db->db,
                           "SELECT id, role, created_us, expires_us, revoked_us, name, hash, mac"
                           " FROM api_keys ORDER BY created_us",
                           -1, &st, NULL) != SQLITE_OK) {
        rc = db_fail(db, err, "preparing");
        goto out;
    }
    fprintf(out, "%-16s  %-9s  %-20s  %-20s  %-20s  %s\n", "id", "role", "created", "expires",
            "revoked", "name");
    int s;
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        char c[48], e[48], r[48], mac[65];
        int64_t cu = sqlite3_column_int64(st, 2), eu = sqlite3_column_int64(st, 3),
                ru = sqlite3_column_int64(st, 4);
        key_mac(&db->k, col(st, 0), col(st, 5), col(st, 1), col(st, 6), cu, eu, ru, mac);
        time_format_iso(cu - cu % 1000000, c, sizeof c);
        if (eu) time_format_iso(eu - eu % 1000000, e, sizeof e);
        else snprintf(e, sizeof e, "never");
        if (ru) time_format_iso(ru - ru % 1000000, r, sizeof r);
        else snprintf(r, sizeof r, "-");
        fprintf(out, "%-16s  %-9s  %-20s  %-20s  %-20s  %s%s\n", col(st, 0), col(st, 1), c, e, r,
                col(st, 5), strcmp(mac, col(st, 7)) ? "  [EDITED: refused]" : "");
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
        if (strlen(h) == 64 && sodium_memcmp(h, want, 64) == 0) {
            char mac[65];
            key_mac(&db->k, id, col(st, 4), r, h, sqlite3_column_int64(st, 5), exp, rev, mac);
            if (strcmp(mac, col(st, 6))) {
                ok = -2;
            } else if (rev == 0 && (exp == 0 || now < exp) && valid_role(r)) {
                snprintf(role, 16, "%s", r);
                ok = 1;
            }
        }
    } else if (s != SQLITE_DONE) {
        ok = -1;
    }
    sqlite3_reset(st);
    pthread_mutex_unlock(&db->mu);
    return ok;
}

/* ------------------------------------------------------------------ cards and feedback */

static int card_row_ok(const keyset *k, sqlite3_stmt *st) {
    card_fields c = {col(st, 0), col(st, 2), col(st, 3), col(st, 4), col(st, 8), col(st, 9),
                     col(st, 10), col(st, 11), sqlite3_column_int64(st, 1),
                     sqlite3_column_int64(st, 12), sqlite3_column_double(st, 5),
                     sqlite3_column_double(st, 6), sqlite3_column_double(st, 7)};
    char mac[65];
    card_mac(k, &c, mac);
    return !strcmp(mac, col(st, 13));
}

int serve_db_card_known(serve_db *db, const char *uuid, const char *service) {
    pthread_mutex_lock(&db->mu);
    sqlite3_stmt *st = db->st_card_known;
    sqlite3_reset(st);
    bind_text(st, 1, uuid);
    int s = sqlite3_step(st), r;
    if (s == SQLITE_ROW) r = !card_row_ok(&db->k, st) ? -2 : !strcmp(col(st, 2), service);
    else r = s == SQLITE_DONE ? 0 : -1;
    sqlite3_reset(st);
    pthread_mutex_unlock(&db->mu);
    return r;
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
    sqlite3_stmt *st = NULL, *cs = NULL;
    int rc = CF_OK;
    pthread_mutex_lock(&db->mu);
    if (sqlite3_prepare_v2(
            db->db,
            "SELECT f.ts_us, f.service, f.card_uuid, f.outcome, f.reason_system, f.reason_code,"
            " f.reason_display, f.outcome_time, f.user_comment, f.principal, f.audit_seq, f.mac,"
            " f.id FROM feedback f ORDER BY f.id",
            -1, &st, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db->db,
                           "SELECT uuid, ts_us, service, hook, task, risk, lo, hi, indicator,"
                           " patient, model, model_version, audit_seq, mac FROM cards WHERE uuid"
                           " = ?1", -1, &cs, NULL) != SQLITE_OK) {
        rc = db_fail(db, err, "preparing the export");
        goto out;
    }
    if (!jsonl)
        for (int i = 0; i < n_cols; i++) csv_field(out, names[i], i == n_cols - 1);
    int s;
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
#define OPT(i) (sqlite3_column_type(st, i) == SQLITE_NULL ? NULL : col(st, i))
        serve_feedback_row f = {sqlite3_column_int64(st, 0), col(st, 1), col(st, 2), col(st, 3),
                                OPT(5), OPT(4), OPT(6), OPT(8), OPT(7), col(st, 9)};
#undef OPT
        char mac[65];
        feedback_mac(&db->k, &f, sqlite3_column_int64(st, 10), mac);
        if (strcmp(mac, col(st, 11))) {
            rc = cf_fail(err, CF_EINPUT, "feedback row %lld fails its integrity check (edited); "
                                         "nothing exported: run 'clinfm audit verify'",
                         (long long)sqlite3_column_int64(st, 12));
            break;
        }
        sqlite3_reset(cs);
        bind_text(cs, 1, f.card);
        int have_card = sqlite3_step(cs) == SQLITE_ROW;
        if (have_card && !card_row_ok(&db->k, cs)) {
            rc = cf_fail(err, CF_EINPUT, "card %.36s fails its integrity check (edited); nothing "
                                         "exported: run 'clinfm audit verify'", f.card);
            break;
        }
        char tb[48], num[3][32];
        serve_time_iso(f.ts_us, tb, sizeof tb);
        for (int k = 0; k < 3; k++) {
            if (!have_card) num[k][0] = '\0';
            else snprintf(num[k], sizeof num[k], "%.4f", sqlite3_column_double(cs, 5 + k));
        }
        const char *v[17] = {tb, f.service, f.card,
                             have_card ? col(cs, 4) : "", have_card ? col(cs, 10) : "",
                             have_card ? col(cs, 11) : "", num[0], num[1], num[2],
                             have_card ? col(cs, 8) : "", have_card ? col(cs, 9) : "",
                             f.outcome, f.reason_system ? f.reason_system : "",
                             f.reason_code ? f.reason_code : "",
                             f.reason_display ? f.reason_display : "",
                             f.outcome_time ? f.outcome_time : "", f.comment ? f.comment : ""};
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
        sqlite3_reset(cs);
    }
    if (!rc && s != SQLITE_DONE) rc = db_fail(db, err, "reading feedback");
    if (!rc && (fflush(out) || ferror(out))) rc = cf_fail(err, CF_EINPUT, "writing the export failed");
out:
    sqlite3_finalize(st);
    sqlite3_finalize(cs);
    pthread_mutex_unlock(&db->mu);
    return rc;
}
