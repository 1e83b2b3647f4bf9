/* `clinfm label`: a task file and an event store -> MEDS-style label CSV.
 *
 * Writes subject_id, prediction_time, boolean_value, the subject's split and one column per
 * subgroup attribute, atomically, and prints the flow from trigger events to rows (what each
 * exclusion rule removed, positives and negatives per split) so the cohort can be checked. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/datadir.h"
#include "cli/commands.h"
#include "tasks/task.h"

static void label_help(void) {
    printf("usage: clinfm label --task FILE --store STORE --out LABELS.csv [options]\n"
           "\n"
           "Labels every prediction time a task defines (see docs/TASKS.md and tasks/*.task):\n"
           "one row per eligible trigger event, with subject_id, prediction_time, boolean_value\n"
           "(MEDS label schema), the subject's split and the task's subgroup attributes.\n"
           "Only events at or before a row's prediction time are input to any predictor.\n"
           "\n"
           "options:\n"
           "  --task FILE             task definition\n"
           "  --store STORE           event store (from clinfm ingest or deid)\n"
           "  --out FILE              label CSV to write (atomically)\n"
           "  --only NAME             write only train, tuning or held_out rows (default: all)\n"
           "  --split-key FILE        secret split key (32 bytes or 64 hex digits); default:\n"
           "                          the public project key (demos only)\n"
           "  --split T/U/H           percentages of train/tuning/held_out (default 80/10/10;\n"
           "                          --split-fractions is the same option; --split NAME is\n"
           "                          the old spelling of --only NAME)\n"
           "  --fold J/K              cross-validation: fold J (0-based) of K is held out (K divides 100)\n"
           "  --target EVENT          outcome (default) or competing: label each row with the\n"
           "                          competing event instead (death before the outcome inside\n"
           "                          the label window; tasks with [follow_up])\n"
           "  --seed N                seed for 'select = random' (default 1)\n"
           "  --quiet                 print no summary\n"
           "  -h, --help              this help\n"
           "exit status: 0 ok, 1 bad input or usage, 2 internal error.\n");
}

int cmd_label(int argc, char **argv) {
    static const struct option opts[] = {
        {"task", required_argument, 0, 't'},       {"store", required_argument, 0, 's'},
        {"out", required_argument, 0, 'o'},        {"split", required_argument, 0, 'p'},
        {"split-key", required_argument, 0, 'k'},  {"split-fractions", required_argument, 0, 'f'},
        {"fold", required_argument, 0, 'F'},
        {"only", required_argument, 0, 'O'},       {"target", required_argument, 0, 'T'},
        {"seed", required_argument, 0, 'S'},       {"quiet", no_argument, 0, 'q'},
        {"help", no_argument, 0, 'h'},             {0, 0, 0, 0}};
    char task_file[4096];
    const char *task_path = NULL, *store_path = NULL, *out = NULL, *split_arg = "all", *key = NULL, *fr = NULL, *fold = NULL;
    unsigned long long seed = 1;
    int quiet = 0, c, target = TASK_TARGET_OUTCOME;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
        switch (c) {
        case 't': cf_share_resolve_named(optarg, "tasks", ".task", task_file, sizeof task_file); task_path = task_file; break;
        case 's': store_path = optarg; break;
        case 'o': out = optarg; break;
        case 'O': split_arg = optarg; break;
        case 'T':
            if (!strcmp(optarg, "outcome")) target = TASK_TARGET_OUTCOME;
            else if (!strcmp(optarg, "competing")) target = TASK_TARGET_COMPETING;
            else return cli_usage_error("label", "--target must be outcome or competing");
            break;
        case 'p':
            /* --split is the fractions everywhere; a split name is the old spelling of --only. */
            if (!strcmp(optarg, "all") || split_from_name(optarg) >= 0) split_arg = optarg;
            else fr = optarg;
            break;
        case 'k': key = optarg; break;
        case 'f': fr = optarg; break;
        case 'F': fold = optarg; break;
        case 'S':
            if (cli_parse_u64("label", "--seed", optarg, &seed)) return 1;
            break;
        case 'q': quiet = 1; break;
        case 'h': label_help(); return 0;
        case '?':
            if (optopt) return cli_usage_error("label", "option -%c is unknown or needs a value", optopt);
            return cli_usage_error("label", "unknown option '%s' or missing value", argv[optind - 1]);
        default: return cli_usage_error("label", "bad option");
        }
    }
    if (optind < argc) return cli_usage_error("label", "unexpected argument '%s'", argv[optind]);
    if (!task_path) return cli_usage_error("label", "--task is required");
    if (!store_path) return cli_usage_error("label", "--store is required");
    if (!out) return cli_usage_error("label", "--out is required");
    int split = -1;
    if (strcmp(split_arg, "all") != 0 && (split = split_from_name(split_arg)) < 0)
        return cli_usage_error("label", "--only must be train, tuning, held_out or all");

    cf_err err = {0};
    task_def t;
    task_labels l;
    memset(&l, 0, sizeof l);
    store s;
    int have_store = 0;
    int rc = task_load(&t, task_path, &err);
    if (rc) {
        cf_err_print(&err);
        return rc;
    }
    if (target == TASK_TARGET_COMPETING && t.death_set < 0) {
        rc = cf_fail(&err, CF_EINPUT, "%s: --target competing needs a [follow_up] section naming the death events",
                     task_path);
        cf_err_print(&err);
        task_free(&t);
        return rc;
    }
    task_label_options lo = {.seed = seed, .target = target};
    split_config_default(&lo.split);
    if (key && (rc = split_load_key(&lo.split, key, &err))) goto done;
    if (fr && (rc = split_parse_fractions(&lo.split, fr, &err))) goto done;
    if (fold && (rc = split_parse_fold(&lo.split, fold, &err))) goto done;
    if ((rc = store_open(&s, store_path, &err))) goto done;
    have_store = 1;
    if ((rc = task_label(&t, &s, &lo, &l, &err))) goto done;
    if ((rc = task_write_labels_csv(&l, out, split, &err))) goto done;
    if (!quiet) {
        task_print_summary(stdout, &t, &l);
        if (lo.split.default_key)
            printf("  note: splits use the public default key; pass --split-key for real evaluations\n");
    }
done:
    if (rc) cf_err_print(&err);
    task_labels_free(&l);
    if (have_store) store_close(&s);
    task_free(&t);
    return rc;
}
