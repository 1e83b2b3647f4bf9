/* `clinfm pool`: the folds of a cross-validation (or one evaluation) judged together: pooled
 * held-out metrics with patient-bootstrap intervals, recalibrated calibration, paired
 * differences against references, stacked predictors (eval_pool.c). */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "cli/opts.h"
#include "eval/eval.h"

int cmd_pool(int argc, char **argv) {
    int status;
    eval_pool_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cli_list refs = {.n = 0}, stacks = {.n = 0}, avgs = {.n = 0};
    unsigned long long n_boot = 1000, seed = 1;
    int arg;
    const cli_opt opts[] = {
        CLI_OPT_STR("out", &cfg.out_dir, "DIR",
                    "also write DIR/pool.md, DIR/pool.json and DIR/predictions.csv (the\n"
                    "pooled held-out rows with every column, recalibrated and stacked)"),
        CLI_OPT_LIST("reference", &refs, "NAME", "a predictor to compare every other with (repeatable, 8 at most)"),
        CLI_OPT_LIST("stack", &stacks, "A+B[+C]",
                     "a stacked predictor: logistic regression on the logits of A, B, ...\n"
                     "fitted on each run's tuning rows (repeatable, 8 at most)"),
        CLI_OPT_LIST("average", &avgs, "NAME",
                     "runs of one fold that both hold predictor NAME with other predictions\n"
                     "(fine-tuned with other seeds, or from other pretrained models)\n"
                     "average its probabilities, an ensemble, instead of being refused; every fold must average as many\n"
                     "runs (repeatable, 8 at most)"),
        CLI_OPT_U64("bootstrap", &n_boot, "N", 0, 100000, "resamples (default 1000)"),
        CLI_OPT_U64("seed", &seed, "N", 0, CLI_ANY, "resampling seed (default 1)"),
        CLI_OPT_FLAG("quiet", &cfg.quiet, "print nothing"),
        CLI_OPT_END};
    const cli_spec spec = {
        .cmd = "pool",
        .usage = "pool EVAL_DIR... [--out DIR] [--reference NAME]... [--stack A+B]... [--average NAME]... [options]",
        .about = "Pools the held-out predictions of clinfm eval runs of one task (the K folds of a\n"
                 "cross-validation made with --fold J/K, or a single run) and prints one table: AUROC,\n"
                 "AUPRC, Brier score and ECE of every predictor with 95% bootstrap intervals over patients,\n"
                 "the ECE after recalibration (Platt scaling fitted on each run's tuning rows), paired AUROC\n"
                 "differences against each reference (the same resampled patients on both sides), and the\n"
                 "fit time summed over runs. A second table: the pooled AUROC after each run's\n"
                 "recalibration on its own tuning rows (the raw pooled AUROC mixes folds whose models are\n"
                 "calibrated differently; one deployed model is recalibrated), paired differences between\n"
                 "recalibrated predictors, and the mean (min-max) of the runs' own AUROCs. Each run's\n"
                 "predictions_tuning.csv is used only to fit the\n"
                 "recalibration and the stacks; every figure is on held-out rows. Runs of one fold with\n"
                 "different predictors (the baselines in one, the model in another) join into one when\n"
                 "they hold the same held-out and tuning rows (matched by subject and time).\n",
        .opts = opts, .args = "at least one evaluation directory", .min_args = 1, .max_args = INT_MAX};
    if (!cli_parse(&spec, argc, argv, &arg, &status)) return status;
    if (refs.n > 8) return cli_usage_error("pool", "--reference is given at most 8 times");
    if (stacks.n > 8) return cli_usage_error("pool", "--stack is given at most 8 times");
    if (avgs.n > 8) return cli_usage_error("pool", "--average is given at most 8 times");
    for (size_t i = 0; i < avgs.n; i++) cfg.averages[cfg.n_averages++] = avgs.v[i];
    for (size_t i = 0; i < refs.n; i++) cfg.refs[cfg.n_refs++] = refs.v[i];
    for (size_t i = 0; i < stacks.n; i++) cfg.stacks[cfg.n_stacks++] = stacks.v[i];
    cfg.n_boot = (unsigned)n_boot;
    cfg.seed = seed;
    cfg.runs = (const char *const *)(argv + arg);
    cfg.n_runs = (size_t)(argc - arg);
    cf_err err = {0};
    int rc = eval_pool(&cfg, &err);
    if (rc) cf_err_print(&err);
    return rc;
}
