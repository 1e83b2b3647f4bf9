/* `clinfm keygen` and `clinfm deid`: the secret key, and a de-identified copy of a store. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "cli/commands.h"
#include "deid/store_deid.h"
#include "timeline/split.h"
#include "util/atomic_file.h"

int cmd_keygen(int argc, char **argv) {
    static const struct option opts[] = {{"out", required_argument, 0, 'o'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    const char *out = NULL;
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'o': out = optarg; break;
        case 'h':
            printf("usage: clinfm keygen --out KEYFILE\n\n"
                   "Makes a new secret de-identification key (32 random bytes, libsodium) in a file\n"
                   "readable by its owner only. Keep it apart from the data: with it, pseudonyms can be\n"
                   "recomputed from real ids; without it, they cannot be linked. An existing file is\n"
                   "never overwritten.\n"
                   "options:\n  --out KEYFILE   where to write the key\n  -h, --help      this help\n");
            return 0;
        default: return cli_usage_error("keygen", "unknown option '%s' or missing value", argv[optind - 1]);
        }
    }
    if (optind < argc) return cli_usage_error("keygen", "unexpected argument '%s'", argv[optind]);
    if (!out) return cli_usage_error("keygen", "--out KEYFILE is required");
    cf_err err = {0};
    int rc = deid_key_generate(out, &err);
    if (rc) cf_err_print(&err);
    else printf("wrote a new key to %s (mode 0600); keep it apart from the data\n", out);
    return rc;
}

/* The split group de-identification keeps: the subject's percentile under the split key. */
static int split_group_of(const void *ctx, int64_t subject_id) { return split_percentile(ctx, subject_id); }

static void deid_help(void) {
    printf("usage: clinfm deid STORE --out STORE --key KEYFILE [options]\n"
           "\n"
           "Writes a de-identified copy of an event store (HIPAA Safe Harbor identifiers, see docs/DEID.md):\n"
           "keyed subject pseudonyms; per-subject date shifts (or year-only dates); ages over 89\n"
           "aggregated; identifier fields (PHI// events) removed, ZIP kept to 3 digits; every note\n"
           "de-identified with the subject's own identifiers; a report of what was removed (counts only)\n"
           "and the k-anonymity of the result.\n"
           "\n"
           "options:\n"
           "  --out STORE          the de-identified store (written atomically)\n"
           "  --key KEYFILE        the secret key (`clinfm keygen`); it never enters the output\n"
           "  --dates POLICY       shift (default: one shift per subject, intervals kept; Expert\n"
           "                       Determination) or safe-harbor (keep the year only)\n"
           "  --text MODE          tag (default: [NAME], [DATE]...) or surrogate (realistic stand-ins)\n"
           "  --k N                k-anonymity floor for the report (default 5)\n"
           "  --suppress           drop subjects whose quasi-identifier group is smaller than k\n"
           "  --rules DIR          text rules and the restricted ZIP3 table (default: the shipped data/deid)\n"
           "  --split-key FILE     keep the train/tuning/held_out split of this split key: each\n"
           "                       pseudonym falls in its original id's split percentile, so any\n"
           "                       whole-percent split under FILE puts the same patients on each side\n"
           "                       in the original store and in every copy, whatever --key is\n"
           "  --report FILE        also write the report as JSON\n"
           "  --quiet              print no report\n"
           "  -h, --help           this help\n"
           "exit status: 0 ok, 1 bad input or usage, 2 internal error.\n");
}

int cmd_deid(int argc, char **argv) {
    static const struct option opts[] = {
        {"out", required_argument, 0, 'o'},   {"key", required_argument, 0, 'k'},  {"dates", required_argument, 0, 'd'},
        {"text", required_argument, 0, 't'},  {"k", required_argument, 0, 'K'},    {"suppress", no_argument, 0, 's'},
        {"rules", required_argument, 0, 'r'}, {"report", required_argument, 0, 'R'}, {"quiet", no_argument, 0, 'q'},
        {"policy", required_argument, 0, 'd'}, {"help", no_argument, 0, 'h'},
        {"split-key", required_argument, 0, 'S'}, {0, 0, 0, 0}};
    const char *out = NULL, *key_path = NULL, *report = NULL, *split_key = NULL;
    int quiet = 0;
    deid_store_options opt = {.dates = DEID_DATES_SHIFT, .text_mode = DEID_MODE_TAG, .k = 5, .rules_dir = NULL};
    optind = 1;
    opterr = 0;
    int c;
    unsigned long long k;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'o': out = optarg; break;
        case 'k': key_path = optarg; break;
        case 'd':
            if (!strcmp(optarg, "shift")) opt.dates = DEID_DATES_SHIFT;
            else if (!strcmp(optarg, "safe-harbor")) opt.dates = DEID_DATES_YEAR;
            else return cli_usage_error("deid", "--dates must be shift or safe-harbor");
            break;
        case 't':
            if (!strcmp(optarg, "tag")) opt.text_mode = DEID_MODE_TAG;
            else if (!strcmp(optarg, "surrogate")) opt.text_mode = DEID_MODE_SURROGATE;
            else return cli_usage_error("deid", "--text must be tag or surrogate");
            break;
        case 'K':
            if (cli_parse_u64("deid", "--k", optarg, &k)) return 1;
            if (k < 2 || k > 1000000) return cli_usage_error("deid", "--k must be 2 or more");
            opt.k = (int)k;
            break;
        case 's': opt.suppress = 1; break;
        case 'r': opt.rules_dir = optarg; break;
        case 'R': report = optarg; break;
        case 'S': split_key = optarg; break;
        case 'q': quiet = 1; break;
        case 'h': deid_help(); return 0;
        default: return cli_usage_error("deid", "unknown option '%s' or missing value", argv[optind - 1]);
        }
    }
    if (optind != argc - 1) return cli_usage_error("deid", "expected exactly one input STORE");
    if (!out) return cli_usage_error("deid", "--out STORE is required");
    if (!key_path) return cli_usage_error("deid", "--key KEYFILE is required (make one with `clinfm keygen`)");
    if (!strcmp(out, argv[optind])) return cli_usage_error("deid", "--out must differ from the input store");
    cf_err err = {0};
    unsigned char key[DEID_KEY_BYTES];
    int rc = deid_key_load(key_path, key, &err);
    if (rc) {
        cf_err_print(&err);
        return rc;
    }
    split_config sp;
    char sp_hex[2 * SPLIT_KEY_ID_BYTES + 1];
    if (split_key) {
        split_config_default(&sp);
        if ((rc = split_load_key(&sp, split_key, &err))) {
            sodium_memzero(key, sizeof key);
            cf_err_print(&err);
            return rc;
        }
        uint8_t id[SPLIT_KEY_ID_BYTES];
        split_key_id(&sp, id);
        sodium_bin2hex(sp_hex, sizeof sp_hex, id, sizeof id);
        opt.split_group = split_group_of;
        opt.split_ctx = &sp;
        opt.split_key_id = sp_hex;
    }
    deid_store_report rep;
    rc = deid_store(argv[optind], out, key, &opt, &rep, &err);
    if (split_key) sodium_memzero(&sp, sizeof sp);
    sodium_memzero(key, sizeof key);
    if (rc) {
        cf_err_print(&err);
        fprintf(stderr, "clinfm: no store was written\n");
        return rc;
    }
    char *js = deid_store_report_json(&rep, &opt);
    if (!quiet && js) {
        printf("%s\n", js);
        printf("wrote %s: %llu subjects, %llu events in %.2f s (%.1f MB of text at %.1f MB/s)\n", out,
               (unsigned long long)rep.subjects_out, (unsigned long long)rep.events_out, rep.seconds,
               (double)rep.text_bytes / 1e6, rep.seconds > 0 ? (double)rep.text_bytes / 1e6 / rep.seconds : 0);
    }
    if (report && js) {
        cf_err e2 = {0};
        if (atomic_write_file(report, js, strlen(js), &e2)) {
            cf_err_print(&e2);
            rc = CF_EINTERNAL;
        }
    }
    free(js);
    return rc;
}
