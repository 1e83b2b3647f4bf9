/* `clinfm keygen` and `clinfm deid`: the secret key, and a de-identified copy of a store. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <sodium.h>

#include "cli/commands.h"
#include "cli/opts.h"
#include "deid/store_deid.h"
#include "timeline/split.h"
#include "util/atomic_file.h"
#include "util/file.h"

int cmd_keygen(int argc, char **argv) {
    int status;
    const char *out = NULL;
    const cli_opt opts[] = {CLI_OPT_STR_REQ("out", &out, "KEYFILE", "where to write the key"), CLI_OPT_END};
    const cli_spec spec = {
        .cmd = "keygen",
        .usage = "keygen --out KEYFILE",
        .about = "Makes a new secret de-identification key (32 random bytes, libsodium) in a file\n"
                 "readable by its owner only. Keep it apart from the data: with it, pseudonyms can be\n"
                 "recomputed from real ids; without it, they cannot be linked. An existing file is\n"
                 "never overwritten.\n",
        .opts = opts};
    if (!cli_parse(&spec, argc, argv, NULL, &status)) return status;
    cf_err err = {0};
    int rc = deid_key_generate(out, &err);
    if (rc) cf_err_print(&err);
    else printf("wrote a new key to %s (mode 0600); keep it apart from the data\n", out);
    return rc;
}

/* The split group de-identification keeps: the subject's percentile under the split key. */
static int split_group_of(const void *ctx, int64_t subject_id) { return split_percentile(ctx, subject_id); }

static const char deid_about[] =
    "Writes a de-identified copy of an event store (HIPAA Safe Harbor identifiers, see docs/DEID.md):\n"
    "keyed subject pseudonyms; per-subject date shifts (or year-only dates); ages over 89\n"
    "aggregated; identifier fields (PHI// events) removed, ZIP kept to 3 digits; every note\n"
    "de-identified with the subject's own identifiers; a report of what was removed (counts only)\n"
    "and the k-anonymity of the result.\n";

int cmd_deid(int argc, char **argv) {
    int status;
    const char *out = NULL, *key_path = NULL, *report = NULL, *split_key = NULL;
    int quiet = 0, dates = DEID_DATES_SHIFT, text_mode = DEID_MODE_TAG, arg;
    deid_store_options opt = {.dates = DEID_DATES_SHIFT, .text_mode = DEID_MODE_TAG, .k = 5, .rules_dir = NULL};
    static const cli_choice date_policies[] = {{"shift", DEID_DATES_SHIFT}, {"safe-harbor", DEID_DATES_YEAR}, {NULL, 0}};
    static const cli_choice text_modes[] = {{"tag", DEID_MODE_TAG}, {"surrogate", DEID_MODE_SURROGATE}, {NULL, 0}};
    const cli_opt opts[] = {
        CLI_OPT_STR("out", &out, "STORE", "the de-identified store (written atomically)"),
        CLI_OPT_STR("key", &key_path, "KEYFILE", "the secret key (`clinfm keygen`); it never enters the output"),
        CLI_OPT_CHOICE("dates", &dates, "POLICY", date_policies,
                       "shift (default: one shift per subject, intervals kept; Expert\n"
                       "Determination) or safe-harbor (keep the year only)"),
        CLI_OPT_CHOICE("policy", &dates, "POLICY", date_policies, NULL), /* the old spelling of --dates */
        CLI_OPT_CHOICE("text", &text_mode, "MODE", text_modes,
                       "tag (default: [NAME], [DATE]...) or surrogate (realistic stand-ins)"),
        CLI_OPT_INT("k", &opt.k, "N", 2, 1000000, "k-anonymity floor for the report (default 5)"),
        CLI_OPT_FLAG("suppress", &opt.suppress, "drop subjects whose quasi-identifier group is smaller than k"),
        CLI_OPT_STR("rules", &opt.rules_dir, "DIR", "text rules and the restricted ZIP3 table (default: the shipped data/deid)"),
        CLI_OPT_STR("split-key", &split_key, "FILE",
                    "keep the train/tuning/held_out split of this split key: each\n"
                    "pseudonym falls in its original id's split percentile, so any\n"
                    "whole-percent split under FILE puts the same patients on each side\n"
                    "in the original store and in every copy, whatever --key is"),
        CLI_OPT_STR("report", &report, "FILE", "also write the report as JSON"),
        CLI_OPT_FLAG("quiet", &quiet, "print no report"),
        CLI_OPT_END};
    const cli_spec spec = {.cmd = "deid", .usage = "deid STORE --out STORE --key KEYFILE [options]", .about = deid_about,
                           .opts = opts, .args = "input STORE", .min_args = 1, .max_args = 1};
    if (!cli_parse(&spec, argc, argv, &arg, &status)) return status;
    opt.dates = dates;
    opt.text_mode = text_mode;
    if (!out) return cli_usage_error("deid", "--out STORE is required");
    if (!key_path) return cli_usage_error("deid", "--key KEYFILE is required (make one with `clinfm keygen`)");
    if (!strcmp(out, argv[arg])) return cli_usage_error("deid", "--out must differ from the input store");
    cf_err err = {0};
    /* Said before any work: the copy is at most the input's size (fewer texts, the same events)
     * and the writer's spilled runs, punched as the output grows, stay under a fifth of it. */
    struct stat in_st;
    if (stat(argv[arg], &in_st) == 0 && S_ISREG(in_st.st_mode) &&
        file_room_up_front(out, (uint64_t)in_st.st_size + (uint64_t)in_st.st_size / 5 + ((uint64_t)1 << 20),
                           "the de-identified store", NULL, NULL, &err)) {
        cf_err_print(&err);
        return err.code;
    }
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
    rc = deid_store(argv[arg], out, key, &opt, &rep, &err);
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
