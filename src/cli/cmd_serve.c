/* The service's commands: `clinfm serve`, `clinfm token create|revoke|list`,
 * `clinfm audit keygen|verify` and `clinfm feedback export`. See docs/SERVE.md.
 *
 * `serve` blocks SIGINT/SIGTERM/SIGHUP in every thread before the HTTP threads start and waits
 * for them in the main thread, waking every audit.anchor_interval_s to anchor the audit chain
 * (serve_ctx_tick), so the tail of an idle server is anchored too; a stop request goes through
 * an orderly shutdown: the server drains, the chain is anchored a last time, the database and
 * the store are closed. Before it listens, `serve` checks the chain from its last anchor (and
 * against the anchor file's last line) and refuses to extend a chain that no longer verifies.
 *
 * Every command here runs with umask 077: the database, its WAL files, the head and anchor
 * files, and exports (which can hold feedback comments) are readable by their owner only. */

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/commands.h"
#include "cli/opts.h"
#include "cli/opts.h"
#include "cli/opts.h"
#include "cli/opts.h"
#include "serve/serve.h"
#include "serve/serve_http.h"
#include "serve/serve_model.h"
#include "serve/serve_ref.h"
#include "util/atomic_file.h"

static int64_t wall_now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Opens the database named by the configuration with its secret. */
static int open_db(const char *config_path, serve_config *cfg, serve_db **db, cf_err *err) {
    unsigned char secret[SERVE_SECRET_BYTES];
    umask(077);
    int rc = serve_config_load(cfg, config_path, err);
    if (!rc) rc = serve_secret_load(cfg->secret_file, secret, err);
    if (!rc) rc = serve_db_open(db, cfg->database, secret, err);
    if (!rc) serve_db_set_anchor_sinks(*db, cfg->anchor_file, cfg->anchor_syslog);
    memset(secret, 0, sizeof secret);
    return rc;
}

/* The end of a command that opened them (open_db): closes both, tells the error, returns rc. */
static int close_db(serve_config *cfg, serve_db *db, int rc, const cf_err *err) {
    serve_db_close(db);
    serve_config_free(cfg);
    if (rc) cf_err_print(err);
    return rc;
}

static void cli_who(char *who, size_t cap) { snprintf(who, cap, "cli:uid=%u", (unsigned)getuid()); }

/* Commands leave a trace in the audit trail too. */
static int audit_cli(serve_db *db, const char *what, cf_err *err) {
    char who[64];
    cli_who(who, sizeof who);
    serve_audit_entry e = {wall_now_us(), who, "admin", "", "CLI", what, "", "", "", 0, "", 0, 1};
    return serve_db_audit(db, &e, NULL, 0, NULL, 0, err);
}

/* ------------------------------------------------------------------ serve */

int cmd_serve(int argc, char **argv) {
    int status;
    const char *config = NULL, *store_path = NULL, *model = NULL, *listen = NULL, *port_file = NULL;
    int quiet = 0, port_given = -1, cache_given = -1; /* -1: not given */
    const cli_opt opts[] = {
        CLI_OPT_STR_REQ("config", &config, "FILE", "service configuration (JSON; see docs/SERVE.md)"),
        CLI_OPT_STR("store", &store_path, "STORE", "event store to look patients up in when a request brings no FHIR data"),
        CLI_OPT_STR("model", &model, "MODEL",
                    "score with this foundation model instead of the configuration's\n"
                    "reference_model"),
        CLI_OPT_STR("listen", &listen, "ADDR", "override the configuration's listen address"),
        CLI_OPT_INT("port", &port_given, "N", 0, 65535, "override the configuration's port (0: any free port)"),
        CLI_OPT_STR("port-file", &port_file, "FILE", "write the port actually bound to FILE once listening"),
        CLI_OPT_INT("card-cache", &cache_given, "N", 0, 10000000,
                    "keep the scores of N (task, patient, record) combinations so a repeated\n"
                    "request for an unchanged record is a lookup; overrides the\n"
                    "configuration's card_cache (default 1024); 0 turns the cache off"),
        CLI_OPT_FLAG("quiet", &quiet, "no access log on stderr"),
        CLI_OPT_END};
    const cli_spec spec = {
        .cmd = "serve",
        .usage = "serve --config FILE [--store STORE] [--model MODEL] [options]",
        .about = "Runs the in-clinic service: CDS Hooks 2.0 (patient-view, encounter-discharge) and the /v1\n"
                 "REST API, with bearer-token authentication, an audit trail and Prometheus metrics.\n",
        .opts = opts,
        .after = "\nStops cleanly on SIGINT or SIGTERM. Before the first start: 'clinfm audit keygen' for the\n"
                 "secret file and 'clinfm token create' for API keys.\n"};
    if (!cli_parse(&spec, argc, argv, NULL, &status)) return status;
    long port = port_given, card_cache = cache_given;

    cf_err err = {0};
    serve_config cfg;
    serve_db *db = NULL;
    serve_auth *auth = NULL;
    store st;
    int have_store = 0, have_pred = 0;
    serve_predictor pred;
    serve_ctx *ctx = NULL;
    serve_http *http = NULL;
    memset(&st, 0, sizeof st);
    int rc = open_db(config, &cfg, &db, &err);
    if (rc) goto done;
    if (card_cache >= 0) cfg.card_cache = (int)card_cache;
    if ((rc = serve_auth_open(&auth, &cfg, &err))) goto done;
    if (store_path) {
        if ((rc = store_open(&st, store_path, &err))) goto done;
        have_store = 1;
    }
    if (model) {
        rc = serve_model_open(model, &cfg, &pred, &err);
    } else if (cfg.reference_model) {
        char where[4200];
        snprintf(where, sizeof where, "%s: reference_model", config);
        rc = serve_ref_open(cfg.reference_model, where, &pred, &err);
    } else {
        rc = cf_fail(&err, CF_EINPUT, "%s: no reference_model and no --model: nothing to score "
                                      "with", config);
    }
    if (rc) goto done;
    have_pred = 1;
    serve_setup setup = {&cfg, have_store ? &st : NULL, &pred, db, auth, quiet ? NULL : stderr};
    if (quiet) cfg.access_log = 0;
    if ((rc = serve_ctx_new(&ctx, &setup, &err))) goto done;

    /* the chain as it stands: still holding the anchor file's last row, intact since the last
     * anchor (all of it when the head file is missing); never extended when broken */
    int head_missing = 0;
    if ((rc = serve_db_check_anchor_file(db, &err)) || (rc = serve_db_anchor(db, &head_missing, &err))) {
        fprintf(stderr, "clinfm serve: the audit chain does not verify; refusing to start so the "
                        "evidence stays as it is (keep the database for investigation and start "
                        "with a new one)\n");
        goto done;
    }
    if (head_missing)
        fprintf(stderr, "clinfm serve: %s-head was missing: the chain was verified from row 1 and "
                        "anchored again; rows deleted before that cannot be ruled out without the "
                        "anchor file\n", cfg.database);
    if ((rc = audit_cli(db, head_missing ? "serve start (head file missing; chain re-anchored)"
                                         : "serve start", &err)) ||
        (rc = serve_db_anchor(db, NULL, &err)))
        goto done;

    /* signals: block before any thread exists, wait for them below */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    serve_http_options ho = serve_http_options_of(&cfg);
    if (listen) ho.listen = listen;
    if (port >= 0) ho.port = (int)port;
    if ((rc = serve_http_start(&http, ctx, &ho, &err))) goto done;
    int bound = serve_http_port(http);
    if (port_file) {
        char text[32];
        int n = snprintf(text, sizeof text, "%d\n", bound);
        if ((rc = atomic_write_file(port_file, text, (size_t)n, &err))) goto done;
    }
    fprintf(stderr, "clinfm serve: listening on %s://%s:%d (%d threads), model %s %s, %zu tasks, "
                    "%s, card cache %d\n",
            cfg.tls_cert ? "https" : "http", ho.listen, bound, cfg.threads, pred.model_name,
            pred.model_version, cfg.n_tasks, have_store ? "store loaded" : "no store",
            cfg.card_cache);
    int sig = 0;
    for (;;) {
        struct timespec ts = {cfg.anchor_interval_s, 0};
        sig = sigtimedwait(&set, NULL, &ts);
        if (sig > 0) break;
        cf_err te = {0};
        if (serve_ctx_tick(ctx, &te)) fprintf(stderr, "clinfm serve: audit anchor: %s\n", te.msg);
    }
    fprintf(stderr, "clinfm serve: stopping (signal %d)\n", sig);
    serve_http_stop(http);
    http = NULL;
    cf_err te = {0};
    if (serve_ctx_tick(ctx, &te)) fprintf(stderr, "clinfm serve: audit anchor: %s\n", te.msg);
done:
    serve_http_stop(http);
    serve_thread_release();
    serve_ctx_free(ctx);
    if (have_pred && pred.close) pred.close(pred.ctx);
    if (have_store) store_close(&st);
    serve_auth_close(auth);
    return close_db(&cfg, db, rc, &err);
}

/* ------------------------------------------------------------------ token */

int cmd_token(int argc, char **argv) {
    int status;
    const char *config = NULL, *name = NULL, *role = NULL;
    unsigned long long days = 0;
    const cli_opt opts[] = {
        CLI_OPT_STR_REQ("config", &config, "FILE", "service configuration (JSON; see docs/SERVE.md)"),
        CLI_OPT_STR("name", &name, "NAME", "create: who or what the key is for"),
        CLI_OPT_STR("role", &role, "ROLE", "create: clinician, service or admin"),
        CLI_OPT_U64("expires-days", &days, "N", 0, 36500, "create: the key expires after N days (default 0: never)"),
        CLI_OPT_END};
    const cli_spec spec = {
        .cmd = "token",
        .usage = "token create --config FILE --name NAME --role ROLE [--expires-days N]\n"
                 "       clinfm token revoke --config FILE ID\n"
                 "       clinfm token list --config FILE",
        .about = "Manages the service's API keys. create prints the key once (keep it: only a keyed hash is\n"
                 "stored); roles: clinician (CDS Hooks, /v1 risk and summary), service (the same plus\n"
                 "/metrics), admin (everything). revoke takes effect on the next request.\n",
        .opts = opts, .args = "ID", .min_args = 0, .max_args = 1};
    if (argc < 2) return cli_usage_error("token", "expected create, revoke or list");
    const char *sub = argv[1];
    if (!strcmp(sub, "--help") || !strcmp(sub, "-h")) {
        cli_help(&spec);
        return 0;
    }
    int is_create = !strcmp(sub, "create"), is_revoke = !strcmp(sub, "revoke"),
        is_list = !strcmp(sub, "list");
    if (!is_create && !is_revoke && !is_list)
        return cli_usage_error("token", "unknown subcommand '%s'; expected create, revoke or list", sub);
    int arg; /* argv + 1: the subcommand stands where getopt expects the program's name */
    if (!cli_parse(&spec, argc - 1, argv + 1, &arg, &status)) return status;
    const char *id = NULL;
    int positional = argc - 1 - arg;
    if (is_revoke) {
        if (positional != 1)
            return cli_usage_error("token", "revoke needs exactly one key id (see 'clinfm token "
                                            "list')");
        id = argv[1 + arg];
    } else if (positional > 0) {
        return cli_usage_error("token", "unexpected argument");
    }
    if (is_create && (!name || !role))
        return cli_usage_error("token", "create needs --name and --role");
    cf_err err = {0};
    serve_config cfg;
    serve_db *db = NULL;
    int rc = open_db(config, &cfg, &db, &err);
    char who[64];
    cli_who(who, sizeof who);
    if (!rc && is_create) {
        char token[SERVE_TOKEN_LEN + 1], kid[SERVE_KEY_ID_LEN + 1];
        int64_t exp = days ? wall_now_us() + (int64_t)days * 86400 * 1000000 : 0;
        rc = serve_db_key_create(db, name, role, exp, who, token, kid, &err);
        if (!rc) {
            printf("%s\n", token);
            fprintf(stderr, "clinfm token: created key %s (%s); the line above is shown only "
                            "once\n", kid, role);
            memset(token, 0, sizeof token);
        }
    } else if (!rc && is_revoke) {
        rc = serve_db_key_revoke(db, id, who, &err);
        if (!rc) fprintf(stderr, "clinfm token: revoked key %s\n", id);
    } else if (!rc) {
        rc = serve_db_key_list(db, stdout, &err);
    }
    return close_db(&cfg, db, rc, &err);
}

/* ------------------------------------------------------------------ audit */

int cmd_audit(int argc, char **argv) {
    int status;
    const char *config = NULL, *dbp = NULL, *secp = NULL, *anchor = NULL;
    const cli_opt opts[] = {
        CLI_OPT_STR("config", &config, "FILE", "verify: the service configuration (its database and secret)"),
        CLI_OPT_STR("db", &dbp, "DATABASE", "verify: the service database (instead of --config's)"),
        CLI_OPT_STR("secret", &secp, "FILE", "verify: the service secret (instead of --config's)"),
        CLI_OPT_STR("anchor", &anchor, "FILE", "verify: also check every signed anchor in FILE"),
        CLI_OPT_END};
    const cli_spec spec = {
        .cmd = "audit",
        .usage = "audit keygen FILE\n"
                 "       clinfm audit verify --config FILE [--anchor FILE]\n"
                 "       clinfm audit verify --db DATABASE --secret FILE [--anchor FILE]",
        .about = "keygen makes the service secret (mode 0600; keep it apart from the database: it keys the\n"
                 "audit chain, patient pseudonyms, API key hashes, row MACs and the anchor signing key).\n"
                 "verify recomputes the audit trail's hash chain, the MAC of every card, feedback and API key\n"
                 "row, and checks the chain against the head file and, with --anchor, against every signed\n"
                 "anchor in FILE (the anchor file or syslog an auditor kept). It exits 1 naming the first\n"
                 "row that was edited, deleted or inserted; an empty chain or a missing head file is never\n"
                 "intact.\n",
        .opts = opts};
    if (argc < 2) return cli_usage_error("audit", "expected keygen or verify");
    const char *sub = argv[1];
    if (!strcmp(sub, "--help") || !strcmp(sub, "-h")) {
        cli_help(&spec);
        return 0;
    }
    cf_err err = {0};
    if (!strcmp(sub, "keygen")) {
        if (argc == 3 && (!strcmp(argv[2], "--help") || !strcmp(argv[2], "-h"))) {
            cli_help(&spec);
            return 0;
        }
        if (argc != 3 || argv[2][0] == '-') return cli_usage_error("audit", "keygen needs FILE");
        int rc = serve_secret_generate(argv[2], &err);
        if (rc) cf_err_print(&err);
        else fprintf(stderr, "clinfm audit: wrote the service secret to %s\n", argv[2]);
        return rc;
    }
    if (strcmp(sub, "verify")) return cli_usage_error("audit", "unknown subcommand '%s'; expected keygen or verify", sub);
    /* argv + 1: the subcommand stands where getopt expects the program's name */
    if (!cli_parse(&spec, argc - 1, argv + 1, NULL, &status)) return status;
    if (!config && !(dbp && secp))
        return cli_usage_error("audit", "verify needs --config, or --db and --secret");
    serve_config cfg;
    memset(&cfg, 0, sizeof cfg);
    int rc = CF_OK;
    if (config) {
        rc = serve_config_load(&cfg, config, &err);
        if (!rc) {
            if (!dbp) dbp = cfg.database;
            if (!secp) secp = cfg.secret_file;
        }
    }
    unsigned char secret[SERVE_SECRET_BYTES];
    serve_verify_report rep;
    memset(&rep, 0, sizeof rep);
    if (!rc) rc = serve_secret_load(secp, secret, &err);
    if (!rc) rc = serve_db_verify(dbp, secret, anchor, stdout, &rep, &err);
    memset(secret, 0, sizeof secret);
    serve_config_free(&cfg);
    if (rc) {
        fprintf(stderr, "clinfm audit: VERIFICATION FAILED after %llu intact rows\n",
                (unsigned long long)rep.rows);
        cf_err_print(&err);
    }
    return rc;
}

/* ------------------------------------------------------------------ feedback */

int cmd_feedback(int argc, char **argv) {
    int status;
    const char *config = NULL, *output = NULL;
    int with_comments = 0, jsonl = 0;
    static const cli_choice formats[] = {{"csv", 0}, {"jsonl", 1}, {NULL, 0}};
    const cli_opt opts[] = {
        CLI_OPT_STR_REQ("config", &config, "FILE", "service configuration (JSON; see docs/SERVE.md)"),
        CLI_OPT_CHOICE("format", &jsonl, "F", formats, "csv (default) or jsonl"),
        CLI_OPT_STR("output", &output, "FILE", "write here, whole or not at all (default: standard output)"),
        CLI_OPT_FLAG("with-comments", &with_comments, "include the free-text comments (they can name people)"),
        CLI_OPT_END};
    const cli_spec spec = {
        .cmd = "feedback",
        .usage = "feedback export --config FILE [--format csv|jsonl] [--output FILE]\n"
                 "                              [--with-comments]",
        .about = "Exports clinicians' feedback on cards (accepted / overridden, with the override reason),\n"
                 "joined with the card it answers: task, model and version, risk and interval, indicator and\n"
                 "the pseudonymised patient, for model refinement. Free-text comments can name people and\n"
                 "are left out unless --with-comments is given.\n",
        .opts = opts};
    if (argc < 2) return cli_usage_error("feedback", "expected export");
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        cli_help(&spec);
        return 0;
    }
    if (strcmp(argv[1], "export"))
        return cli_usage_error("feedback", "unknown subcommand '%s'; expected export", argv[1]);
    /* argv + 1: the subcommand stands where getopt expects the program's name */
    if (!cli_parse(&spec, argc - 1, argv + 1, NULL, &status)) return status;
    cf_err err = {0};
    serve_config cfg;
    serve_db *db = NULL;
    int rc = open_db(config, &cfg, &db, &err);
    if (!rc) {
        if (output) {
            /* written whole or not at all */
            char *buf = NULL;
            size_t len = 0;
            FILE *mem = open_memstream(&buf, &len);
            if (!mem) {
                rc = cf_fail(&err, CF_EINTERNAL, "out of memory");
            } else {
                rc = serve_db_feedback_export(db, mem, jsonl, with_comments, &err);
                fclose(mem);
                if (!rc) rc = atomic_write_file(output, buf, len, &err);
                free(buf);
            }
        } else {
            rc = serve_db_feedback_export(db, stdout, jsonl, with_comments, &err);
        }
    }
    return close_db(&cfg, db, rc, &err);
}
