/* `clinfm eval`: evaluate the baselines (and, with --model, the model's predictors) on a task's
 * held-out patients and write metrics.json, predictions.csv, report.html and MODEL_CARD.md. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/datadir.h"
#include "cli/commands.h"
#include "eval/eval.h"
#include "eval/eval_ceiling.h"

static void eval_help(void) {
    printf("usage: clinfm eval --task FILE --store STORE --out DIR [--model MODEL] [options]\n"
           "\n"
           "Labels the task, trains the count-feature baselines (L2 logistic regression and\n"
           "XGBoost, MEDS-Tab style) on the train split with settings chosen on the tuning split,\n"
           "and evaluates every predictor on the held-out split: AUROC, AUPRC, Brier score and\n"
           "calibration (reliability curve, ECE) with bootstrap 95%% intervals, overall and per\n"
           "subgroup, and latency per patient. Writes into DIR: metrics.json, predictions.csv,\n"
           "report.html (self-contained, no network) and MODEL_CARD.md.\n"
           "\n"
           "options:\n"
           "  --task FILE             task definition (docs/TASKS.md)\n"
           "  --store STORE           event store\n"
           "  --out DIR               output directory (created if missing)\n"
           "  --eval-store STORE      external evaluation: every labelled row of STORE is held out\n"
           "                          (another site, a later period); the predictors fit on the\n"
           "                          train and tuning rows of --store (use --split 90/10/0 to use\n"
           "                          all of it); the model must have been trained on --store\n"
           "  --model MODEL           also evaluate the model's predictors: zero_shot (sampled\n"
           "                          futures), readout (next-token probabilities) and finetuned\n"
           "                          (logistic head on the patient embedding); the fitted head\n"
           "                          goes into MODEL (heads/TASK.json, for clinfm serve) and to\n"
           "                          DIR/model_head.json\n"
           "  --model-predictors LIST zero_shot,readout,finetuned (default: all the task allows),\n"
           "                          and finetuned_e2e: the whole model fine-tuned end to end with a\n"
           "                          task head (minutes of training; only when named)\n"
           "  --ft-epochs N --ft-lr X --ft-batch N --ft-patience N --ft-dropout P --ft-weight-decay X\n"
           "  --ft-lm-weight X        finetuned_e2e settings (30, 2e-4, 16, 4, 0.1, 0.05; next-token\n"
           "                          loss weight beside the task loss 0.3); --ft-ensemble N averages N\n"
           "                          models fine-tuned with successive seeds (1); --ft-pool\n"
           "                          last|mean|both: the head reads the last history token's final\n"
           "                          hidden state, their mean over the history, or both (both)\n"
           "  --allow-overlap         evaluate MODEL even when held-out patients were its training\n"
           "                          or tuning patients (refused by default); every page of the\n"
           "                          report then says so\n"
           "  --rollouts N            zero-shot futures per prediction (default 20)\n"
           "  --max-new-tokens N      tokens per zero-shot future at most (default 1024)\n"
           "  --rollout-horizon DUR   a zero-shot future of a window without an end in time (until\n"
           "                          discharge, or open) stops once its clock passes DUR after the\n"
           "                          prediction, without the outcome (default 30d; none: never);\n"
           "                          the share stopped so and the share left undecided at the token\n"
           "                          limit are reported\n"
           "  --target EVENT          outcome (default) or competing: evaluate the competing event\n"
           "                          (death before the outcome; tasks with [follow_up]) as a task\n"
           "                          of its own; its model head is TASK__competing\n"
           "  --baselines LIST        count-feature baselines: logreg, xgboost (all history),\n"
           "                          logreg_365d, xgboost_365d (the last 365 days only); default\n"
           "                          all four; or none; and logreg_values, xgboost_values (counts\n"
           "                          plus value aggregates: min, max, mean per window, first and\n"
           "                          last value; only when named). The record-position probe (a\n"
           "                          floor) and the single-feature AUROC alarms always run\n"
           "  --score NAME=CODE       a clinical score the records hold, as a reference predictor\n"
           "                          score_NAME: the last value of CODE at or before the prediction\n"
           "                          time (read even when the task keeps CODE from every other\n"
           "                          predictor), calibrated on train rows; repeatable (4)\n"
           "  --propose NAME          the predictor the model card proposes for use (default:\n"
           "                          finetuned when --model is given, else none)\n"
           "  --thresholds LIST       risk thresholds for sensitivity, specificity, PPV, number\n"
           "                          needed to evaluate and alerts per 100 (default: the task's\n"
           "                          [report] thresholds, else 0.05,0.1,0.2,0.5)\n"
           "  --split-key FILE        secret split key (32 bytes or 64 hex digits); default: the\n"
           "                          public project key (demos only)\n"
           "  --split T/U/H           percentages of train/tuning/held_out (default 80/10/10;\n"
           "                          --split-fractions is the same option)\n"
           "  --fold J/K              cross-validation: fold J (0-based) of K is held out, the tuning\n"
           "                          share just below it, train the rest (K divides 100); the model\n"
           "                          must have been trained with the same --fold\n"
           "  --bootstrap N           bootstrap resamples for intervals (default 1000; 0: none)\n"
           "  --seed N                seed for resampling and training (default 1)\n"
           "  --threads N             threads for XGBoost and the model (default 1)\n"
           "  --min-code-rows N       keep codes seen in at least N train histories (default 3)\n"
           "  --max-codes N           keep at most N most frequent codes (default 3000)\n"
           "  --ceiling FILE          ground truth from `clinfm synth` (truth/<task>.csv): adds the\n"
           "                          ceiling row, the best any predictor could do (docs/SYNTH.md)\n"
           "  --ceiling-key KEYFILE   the de-identification key, when the store is de-identified\n"
           "  --ceiling-column NAME   the truth file's probability column (default probability)\n"
           "  --quiet                 print no summary\n"
           "  -h, --help              this help\n"
           "exit status: 0 ok, 1 bad input or usage, 2 internal error.\n");
}

int cmd_eval(int argc, char **argv) {
    static const struct option opts[] = {
        {"task", required_argument, 0, 't'},          {"store", required_argument, 0, 's'},
        {"out", required_argument, 0, 'o'},           {"model", required_argument, 0, 'm'},
        {"baselines", required_argument, 0, 'b'},     {"split-key", required_argument, 0, 'k'},
        {"split-fractions", required_argument, 0, 'f'}, {"bootstrap", required_argument, 0, 'B'},
        {"split", required_argument, 0, 'f'},         {"allow-overlap", no_argument, 0, 'A'},
        {"fold", required_argument, 0, 'F'},           {"score", required_argument, 0, 1009},
        {"eval-store", required_argument, 0, 1011},    {"rollout-horizon", required_argument, 0, 1012},
        {"target", required_argument, 0, 'G'},       {"propose", required_argument, 0, 'p'},
        {"thresholds", required_argument, 0, 'H'},
        {"seed", required_argument, 0, 'S'},          {"threads", required_argument, 0, 'T'},
        {"min-code-rows", required_argument, 0, 'r'}, {"max-codes", required_argument, 0, 'c'},
        {"model-predictors", required_argument, 0, 'P'}, {"rollouts", required_argument, 0, 'R'},
        {"max-new-tokens", required_argument, 0, 'N'},
        {"ft-epochs", required_argument, 0, 1001},     {"ft-lr", required_argument, 0, 1002},
        {"ft-batch", required_argument, 0, 1003},      {"ft-patience", required_argument, 0, 1004},
        {"ft-dropout", required_argument, 0, 1005},    {"ft-weight-decay", required_argument, 0, 1006},
        {"ft-lm-weight", required_argument, 0, 1007},  {"ft-ensemble", required_argument, 0, 1008},
        {"ft-pool", required_argument, 0, 1010},
        {"ceiling", required_argument, 0, 'C'},       {"ceiling-key", required_argument, 0, 'K'},
        {"ceiling-column", required_argument, 0, 'L'},
        {"quiet", no_argument, 0, 'q'},               {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    char task_file[4096];
    eval_config cfg;
    memset(&cfg, 0, sizeof cfg);
    split_config_default(&cfg.split);
    cfg.baselines = EVAL_BASELINES_DEFAULT;
    cfg.boot.n_boot = 1000;
    cfg.boot.seed = 1;
    cfg.baseline.seed = 1;
    cfg.baseline.threads = 1;
    cfg.small_patients = 1000;
    eval_ft_options_default(&cfg.model.ft);
    const char *key = NULL, *fr = NULL, *fold = NULL, *ceiling = NULL, *ceiling_key = NULL, *ceiling_col = NULL;
    unsigned long long v;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
        switch (c) {
        case 't': cf_share_resolve_named(optarg, "tasks", ".task", task_file, sizeof task_file); cfg.task_path = task_file; break;
        case 's': cfg.store_path = optarg; break;
        case 'o': cfg.out_dir = optarg; break;
        case 'm': cfg.model_path = optarg; break;
        case 'k': key = optarg; break;
        case 'f': fr = optarg; break;
        case 'F': fold = optarg; break;
        case 'q': cfg.quiet = 1; break;
        case 'C': ceiling = optarg; break;
        case 'K': ceiling_key = optarg; break;
        case 'L': ceiling_col = optarg; break;
        case 'A': cfg.allow_overlap = 1; break;
        case 'p': cfg.propose = optarg; break;
        case 'H': {
            const char *p = optarg;
            cfg.n_thresholds = 0;
            while (*p) {
                char *e;
                double t = strtod(p, &e);
                if (e == p || !(t > 0 && t < 1) || cfg.n_thresholds == TASK_MAX_THRESHOLDS ||
                    (cfg.n_thresholds && t <= cfg.thresholds[cfg.n_thresholds - 1]))
                    return cli_usage_error("eval", "--thresholds takes up to 8 ascending risks between 0 and 1, such "
                                                   "as 0.05,0.1,0.2");
                cfg.thresholds[cfg.n_thresholds++] = t;
                p = *e == ',' ? e + 1 : e;
                if (*e && *e != ',') return cli_usage_error("eval", "--thresholds: comma-separated numbers");
            }
            break;
        }
        case 'G':
            if (!strcmp(optarg, "outcome")) cfg.target = TASK_TARGET_OUTCOME;
            else if (!strcmp(optarg, "competing")) cfg.target = TASK_TARGET_COMPETING;
            else return cli_usage_error("eval", "--target must be outcome or competing");
            break;
        case 'b': {
            cfg.baselines = 0;
            if (!strcmp(optarg, "none")) break;
            char buf[128];
            snprintf(buf, sizeof buf, "%s", optarg);
            for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
                int k = 0;
                while (k < EVAL_BASELINE_COUNT && (k == EVAL_BASELINE_PROBE || strcmp(tok, eval_baseline_name(k)))) k++;
                if (k == EVAL_BASELINE_COUNT)
                    return cli_usage_error("eval", "--baselines takes logreg, xgboost, logreg_365d, xgboost_365d, "
                                                   "logreg_values, xgboost_values (comma-separated) or none");
                cfg.baselines |= 1 << k;
            }
            break;
        }
        case 'P': {
            cfg.model.which = 0;
            char buf[128];
            snprintf(buf, sizeof buf, "%s", optarg);
            for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
                if (!strcmp(tok, "zero_shot")) cfg.model.which |= EVAL_MODEL_ZERO_SHOT;
                else if (!strcmp(tok, "readout")) cfg.model.which |= EVAL_MODEL_READOUT;
                else if (!strcmp(tok, "finetuned")) cfg.model.which |= EVAL_MODEL_FINETUNED;
                else if (!strcmp(tok, "finetuned_e2e")) cfg.model.which |= EVAL_MODEL_E2E;
                else return cli_usage_error("eval", "--model-predictors takes zero_shot, readout, finetuned, finetuned_e2e "
                                                    "(comma-separated)");
            }
            break;
        }
        case 'R':
            if (cli_parse_u64("eval", "--rollouts", optarg, &v)) return 1;
            if (v < 1 || v > 1024) return cli_usage_error("eval", "--rollouts must be 1 to 1024");
            cfg.model.rollouts = (int)v;
            break;
        case 'N':
            if (cli_parse_u64("eval", "--max-new-tokens", optarg, &v)) return 1;
            if (v < 1 || v > 1000000) return cli_usage_error("eval", "--max-new-tokens must be 1 to 1000000");
            cfg.model.max_new_tokens = (int)v;
            break;
        case 'B':
            if (cli_parse_u64("eval", "--bootstrap", optarg, &v)) return 1;
            if (v > 100000) return cli_usage_error("eval", "--bootstrap is at most 100000");
            cfg.boot.n_boot = (unsigned)v;
            break;
        case 'S':
            if (cli_parse_u64("eval", "--seed", optarg, &v)) return 1;
            cfg.boot.seed = cfg.baseline.seed = v;
            break;
        case 'T':
            if (cli_parse_u64("eval", "--threads", optarg, &v)) return 1;
            if (v < 1 || v > 256) return cli_usage_error("eval", "--threads must be 1 to 256");
            cfg.baseline.threads = (int)v;
            break;
        case 'r':
            if (cli_parse_u64("eval", "--min-code-rows", optarg, &v)) return 1;
            if (v < 1) return cli_usage_error("eval", "--min-code-rows must be at least 1");
            cfg.baseline.features.min_rows = (size_t)v;
            break;
        case 'c':
            if (cli_parse_u64("eval", "--max-codes", optarg, &v)) return 1;
            if (v < 1 || v > 1000000) return cli_usage_error("eval", "--max-codes must be 1 to 1000000");
            cfg.baseline.features.max_codes = (size_t)v;
            break;
        case 1001: case 1003: case 1004: case 1008: {
            static const char *const nm[] = {"--ft-epochs", "", "--ft-batch", "--ft-patience", "", "", "", "--ft-ensemble"};
            const char *name = nm[c - 1001];
            if (cli_parse_u64("eval", name, optarg, &v)) return 1;
            if (v < 1 || v > (c == 1008 ? 16 : 100000)) return cli_usage_error("eval", "%s is out of range", name);
            if (c == 1001) cfg.model.ft.epochs = (int)v;
            if (c == 1003) cfg.model.ft.batch = (int)v;
            if (c == 1004) cfg.model.ft.patience = (int)v;
            if (c == 1008) cfg.model.ft.ensemble = (int)v;
            cfg.model.ft.set = 1;
            break;
        }
        case 1002: case 1005: case 1006: case 1007: {
            static const char *const nm[] = {"", "--ft-lr", "", "", "--ft-dropout", "--ft-weight-decay", "--ft-lm-weight"};
            const char *name = nm[c - 1001];
            char *end;
            double x = strtod(optarg, &end);
            if (!*optarg || *end || !(x >= 0) || x > 100 || (c == 1005 && x >= 1) || (c == 1002 && x == 0))
                return cli_usage_error("eval", "%s expects a non-negative number%s", name,
                                       c == 1005 ? " below 1" : c == 1002 ? " above 0" : "");
            if (c == 1002) cfg.model.ft.lr = (float)x;
            if (c == 1005) cfg.model.ft.dropout = (float)x;
            if (c == 1006) cfg.model.ft.weight_decay = (float)x;
            if (c == 1007) cfg.model.ft.lm_weight = (float)x;
            cfg.model.ft.set = 1;
            break;
        }
        case 1010:
            if (!strcmp(optarg, "last")) cfg.model.ft.pool = 0;
            else if (!strcmp(optarg, "mean")) cfg.model.ft.pool = 1;
            else if (!strcmp(optarg, "both")) cfg.model.ft.pool = 2;
            else return cli_usage_error("eval", "--ft-pool takes last, mean or both");
            cfg.model.ft.set = 1;
            break;
        case 1011: cfg.eval_store_path = optarg; break;
        case 1012: {
            char *end;
            double d = strtod(optarg, &end);
            double unit = !strcmp(end, "d") ? 86400e6 : !strcmp(end, "h") ? 3600e6 : !strcmp(end, "w") ? 7 * 86400e6 : 0;
            if (!strcmp(optarg, "none")) cfg.model.horizon_us = -1;
            else if (end == optarg || !unit || !(d > 0) || d * unit > 1e18)
                return cli_usage_error("eval", "--rollout-horizon takes a duration such as 30d, 72h or 8w, or none");
            else cfg.model.horizon_us = (int64_t)(d * unit);
            break;
        }
        case 1009:
            if (cfg.n_scores == sizeof cfg.scores / sizeof *cfg.scores)
                return cli_usage_error("eval", "--score is given at most %zu times", sizeof cfg.scores / sizeof *cfg.scores);
            cfg.scores[cfg.n_scores++] = optarg;
            break;
        case 'h': eval_help(); return 0;
        case '?':
            if (optopt) return cli_usage_error("eval", "option -%c is unknown or needs a value", optopt);
            return cli_usage_error("eval", "unknown option '%s' or missing value", argv[optind - 1]);
        default: return cli_usage_error("eval", "bad option");
        }
    }
    if (optind < argc) return cli_usage_error("eval", "unexpected argument '%s'", argv[optind]);
    if (!cfg.task_path) return cli_usage_error("eval", "--task is required");
    if (!cfg.store_path) return cli_usage_error("eval", "--store is required");
    if (!cfg.out_dir) return cli_usage_error("eval", "--out is required");
    if (cfg.allow_overlap && !cfg.model_path) return cli_usage_error("eval", "--allow-overlap needs --model");
    if ((cfg.model.which || cfg.model.rollouts || cfg.model.max_new_tokens || cfg.model.ft.set || cfg.model.horizon_us) &&
        !cfg.model_path)
        return cli_usage_error("eval", "--model-predictors, --rollouts, --max-new-tokens and --ft-* need --model");
    if (!cfg.baselines && !cfg.model_path)
        return cli_usage_error("eval", "--baselines none needs --model: there would be nothing to evaluate");
    if ((ceiling_key || ceiling_col) && !ceiling) return cli_usage_error("eval", "--ceiling-key and --ceiling-column need --ceiling");
    cf_err err = {0};
    int rc = CF_OK;
    eval_predictor ceil_pred = {0};
    if (key && (rc = split_load_key(&cfg.split, key, &err))) goto done;
    if (fr && (rc = split_parse_fractions(&cfg.split, fr, &err))) goto done;
    if (fold && (rc = split_parse_fold(&cfg.split, fold, &err))) goto done;
    if (ceiling) { /* the ceiling row: one extra predictor (src/eval/eval_ceiling.c) */
        if ((rc = eval_ceiling_new(&ceil_pred, ceiling, ceiling_col, ceiling_key, &err))) goto done;
        cfg.extra = &ceil_pred;
        cfg.n_extra = 1;
    }
    rc = eval_run(&cfg, &err);
done:
    eval_ceiling_free(&ceil_pred);
    if (rc) cf_err_print(&err);
    return rc;
}
