/* `clinfm label`: a task file and an event store -> MEDS-style label CSV.
 *
 * Writes subject_id, prediction_time, boolean_value, the subject's split and one column per
 * subgroup attribute, atomically, and prints the flow from trigger events to rows (what each
 * exclusion rule removed, positives and negatives per split) so the cohort can be checked. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/datadir.h"
#include "cli/commands.h"
#include "cli/opts.h"
#include "tasks/task.h"

static const char label_about[] =
    "Labels every prediction time a task defines (see docs/TASKS.md and tasks/*.task):\n"
    "one row per eligible trigger event, with subject_id, prediction_time, boolean_value\n"
    "(MEDS label schema), the subject's split and the task's subgroup attributes.\n"
    "Only events at or before a row's prediction time are input to any predictor.\n";

/* --split is the fractions everywhere; a split name is the old spelling of --only. */
typedef struct {
    const char *only, *fractions;
} split_args;

static int take_split(const char *cmd, const char *v, void *dst) {
    split_args *a = dst;
    if (!strcmp(v, "all") || split_from_name(v) >= 0) a->only = v;
    else a->fractions = v;
    return 0;
}

int cmd_label(int argc, char **argv) {
    int status;
    cli_named task = {.folder = "tasks", .ext = ".task"};
    const char *store_path = NULL, *out = NULL, *key = NULL, *fold = NULL;
    split_args sa = {"all", NULL};
    unsigned long long seed = 1;
    int quiet = 0, target = TASK_TARGET_OUTCOME;
    static const cli_choice targets[] = {{"outcome", TASK_TARGET_OUTCOME}, {"competing", TASK_TARGET_COMPETING}, {NULL, 0}};
    const cli_opt opts[] = {
        CLI_OPT_FN("task", &task, "FILE", cli_take_named, "task definition"),
        CLI_OPT_STR("store", &store_path, "STORE", "event store (from clinfm ingest or deid)"),
        CLI_OPT_STR("out", &out, "FILE", "label CSV to write (atomically)"),
        CLI_OPT_STR("only", &sa.only, "NAME", "write only train, tuning or held_out rows (default: all)"),
        CLI_OPT_STR("split-key", &key, "FILE",
                    "secret split key (32 bytes or 64 hex digits); default:\n"
                    "the public project key (demos only)"),
        CLI_OPT_FN("split", &sa, "T/U/H", take_split,
                   "percentages of train/tuning/held_out (default 80/10/10;\n"
                   "--split-fractions is the same option; --split NAME is\n"
                   "the old spelling of --only NAME)"),
        CLI_OPT_STR("split-fractions", &sa.fractions, "T/U/H", NULL),
        CLI_OPT_STR("fold", &fold, "J/K", "cross-validation: fold J (0-based) of K is held out (K divides 100)"),
        CLI_OPT_CHOICE("target", &target, "EVENT", targets,
                       "outcome (default) or competing: label each row with the\n"
                       "competing event instead (death before the outcome inside\n"
                       "the label window; tasks with [follow_up])"),
        CLI_OPT_U64("seed", &seed, "N", 0, CLI_ANY, "seed for 'select = random' (default 1)"),
        CLI_OPT_FLAG("quiet", &quiet, "print no summary"),
        CLI_OPT_END};
    const cli_spec spec = {.cmd = "label", .usage = "label --task FILE --store STORE --out LABELS.csv [options]",
                           .about = label_about, .opts = opts};
    if (!cli_parse(&spec, argc, argv, NULL, &status)) return status;
    const char *task_path = task.path, *split_arg = sa.only, *fr = sa.fractions;
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
    cli_split_args sargs = {key, fr, fold};
    if ((rc = cli_split_apply(&sargs, &lo.split, &err))) goto done;
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
