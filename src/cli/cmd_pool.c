/* `clinfm pool`: the folds of a cross-validation (or one evaluation) judged together: pooled
 * held-out metrics with patient-bootstrap intervals, recalibrated calibration, paired
 * differences against references, stacked predictors (eval_pool.c). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "eval/eval.h"

static void pool_help(void) {
    printf("usage: clinfm pool EVAL_DIR... [--out DIR] [--reference NAME]... [--stack A+B]... [options]\n"
           "\n"
           "Pools the held-out predictions of clinfm eval runs of one task (the K folds of a\n"
           "cross-validation made with --fold J/K, or a single run) and prints one table: AUROC,\n"
           "AUPRC, Brier score and ECE of every predictor with 95%% bootstrap intervals over patients,\n"
           "the ECE after recalibration (Platt scaling fitted on each run's tuning rows), paired AUROC\n"
           "differences against each reference (the same resampled patients on both sides), and the\n"
           "fit time summed over runs. A second table: the pooled AUROC after each run's\n"
           "recalibration on its own tuning rows (the raw pooled AUROC mixes folds whose models are\n"
           "calibrated differently; one deployed model is recalibrated), paired differences between\n"
           "recalibrated predictors, and the mean (min-max) of the runs' own AUROCs. Each run's predictions_tuning.csv is used only to fit the\n"
           "recalibration and the stacks; every figure is on held-out rows. Runs of one fold with\n"
           "different predictors (the baselines in one, the model in another) join into one when\n"
           "they hold the same held-out and tuning rows (matched by subject and time).\n"
           "\n"
           "options:\n"
           "  --out DIR            also write DIR/pool.md, DIR/pool.json and DIR/predictions.csv (the\n"
           "                       pooled held-out rows with every column, recalibrated and stacked)\n"
           "  --reference NAME     a predictor to compare every other with (repeatable, 8 at most)\n"
           "  --stack A+B[+C]      a stacked predictor: logistic regression on the logits of A, B, ...\n"
           "                       fitted on each run's tuning rows (repeatable, 8 at most)\n"
           "  --bootstrap N        resamples (default 1000)\n"
           "  --seed N             resampling seed (default 1)\n"
           "  --quiet              print nothing\n"
           "  -h, --help           this help\n"
           "exit status: 0 ok, 1 bad input or usage, 2 internal error.\n");
}

int cmd_pool(int argc, char **argv) {
    static const struct option opts[] = {{"out", required_argument, 0, 'o'},       {"reference", required_argument, 0, 'r'},
                                         {"stack", required_argument, 0, 's'},     {"bootstrap", required_argument, 0, 'B'},
                                         {"seed", required_argument, 0, 'S'},      {"quiet", no_argument, 0, 'q'},
                                         {"help", no_argument, 0, 'h'},            {0, 0, 0, 0}};
    eval_pool_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.n_boot = 1000;
    cfg.seed = 1;
    unsigned long long v;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'o': cfg.out_dir = optarg; break;
        case 'r':
            if (cfg.n_refs == 8) return cli_usage_error("pool", "--reference is given at most 8 times");
            cfg.refs[cfg.n_refs++] = optarg;
            break;
        case 's':
            if (cfg.n_stacks == 8) return cli_usage_error("pool", "--stack is given at most 8 times");
            cfg.stacks[cfg.n_stacks++] = optarg;
            break;
        case 'B':
            if (cli_parse_u64("pool", "--bootstrap", optarg, &v)) return 1;
            if (v > 100000) return cli_usage_error("pool", "--bootstrap is at most 100000");
            cfg.n_boot = (unsigned)v;
            break;
        case 'S':
            if (cli_parse_u64("pool", "--seed", optarg, &v)) return 1;
            cfg.seed = v;
            break;
        case 'q': cfg.quiet = 1; break;
        case 'h': pool_help(); return 0;
        default: return cli_usage_error("pool", "unknown option '%s' or missing value", argv[optind - 1]);
        }
    }
    if (optind >= argc) return cli_usage_error("pool", "name at least one evaluation directory");
    cfg.runs = (const char *const *)(argv + optind);
    cfg.n_runs = (size_t)(argc - optind);
    cf_err err = {0};
    int rc = eval_pool(&cfg, &err);
    if (rc) cf_err_print(&err);
    return rc;
}
