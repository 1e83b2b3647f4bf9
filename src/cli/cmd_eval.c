/* `clinfm eval`: evaluate the baselines (and, with --model, the model's predictors) on a task's
 * held-out patients and write metrics.json, predictions.csv, report.html and MODEL_CARD.md. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/datadir.h"
#include "cli/commands.h"
#include "cli/opts.h"
#include "eval/eval.h"
#include "eval/eval_ceiling.h"
#include "model/ft_summary.h"
#include "model/gpt_pool.h"

/* --thresholds 0.05,0.1,...: up to TASK_MAX_THRESHOLDS ascending risks in (0, 1). */
static int take_thresholds(const char *cmd, const char *v, void *dst) {
    eval_config *cfg = dst;
    cfg->n_thresholds = 0;
    for (const char *p = v; *p;) {
        char *e;
        double t = strtod(p, &e);
        if (e == p || !(t > 0 && t < 1) || cfg->n_thresholds == TASK_MAX_THRESHOLDS ||
            (cfg->n_thresholds && t <= cfg->thresholds[cfg->n_thresholds - 1]))
            return cli_usage_error(cmd, "--thresholds takes up to 8 ascending risks between 0 and 1, such as 0.05,0.1,0.2");
        cfg->thresholds[cfg->n_thresholds++] = t;
        p = *e == ',' ? e + 1 : e;
        if (*e && *e != ',') return cli_usage_error(cmd, "--thresholds: comma-separated numbers");
    }
    return 0;
}

/* The baseline kind a name gives (the probe is no choice: it always runs), or EVAL_BASELINE_COUNT. */
static int baseline_kind(const char *name) {
    int k = 0;
    while (k < EVAL_BASELINE_COUNT && (k == EVAL_BASELINE_PROBE || strcmp(name, eval_baseline_name(k)))) k++;
    return k;
}

/* --baselines logreg,xgboost,...|none: a bit per baseline kind. */
static int take_baselines(const char *cmd, const char *v, void *dst) {
    int *bits = dst;
    *bits = 0;
    if (!strcmp(v, "none")) return 0;
    char buf[128];
    snprintf(buf, sizeof buf, "%s", v);
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        int k = baseline_kind(tok);
        if (k == EVAL_BASELINE_COUNT)
            return cli_usage_error(cmd, "--baselines takes logreg, xgboost, logreg_365d, xgboost_365d, "
                                        "logreg_values, xgboost_values (comma-separated) or none");
        *bits |= 1 << k;
    }
    return 0;
}

/* --ft-distill KIND: 1 + the baseline kind whose out-of-fold probabilities are the teacher's. */
static int take_teacher(const char *cmd, const char *v, void *dst) {
    int k = baseline_kind(v);
    if (k == EVAL_BASELINE_COUNT)
        return cli_usage_error(cmd, "--ft-distill takes one of logreg, xgboost, logreg_365d, xgboost_365d, "
                                    "logreg_values, xgboost_values");
    *(int *)dst = 1 + k;
    return 0;
}

/* --model-predictors zero_shot,readout,...: EVAL_MODEL_* bits. */
static int take_model_predictors(const char *cmd, const char *v, void *dst) {
    static const cli_choice kinds[] = {{"zero_shot", EVAL_MODEL_ZERO_SHOT}, {"readout", EVAL_MODEL_READOUT},
                                       {"finetuned", EVAL_MODEL_FINETUNED}, {"finetuned_e2e", EVAL_MODEL_E2E},
                                       {NULL, 0}};
    unsigned *which = dst;
    *which = 0;
    char buf[128];
    snprintf(buf, sizeof buf, "%s", v);
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        int k = 0;
        while (kinds[k].name && strcmp(tok, kinds[k].name)) k++;
        if (!kinds[k].name)
            return cli_usage_error(cmd, "--model-predictors takes zero_shot, readout, finetuned, finetuned_e2e "
                                        "(comma-separated)");
        *which |= (unsigned)kinds[k].value;
    }
    return 0;
}

/* --rollout-horizon 30d|72h|8w|none: microseconds, -1 for none. */
static int take_horizon(const char *cmd, const char *v, void *dst) {
    int64_t *us = dst;
    char *end;
    double d = strtod(v, &end);
    double unit = !strcmp(end, "d") ? 86400e6 : !strcmp(end, "h") ? 3600e6 : !strcmp(end, "w") ? 7 * 86400e6 : 0;
    if (!strcmp(v, "none")) *us = -1;
    else if (end == v || !unit || !(d > 0) || d * unit > 1e18)
        return cli_usage_error(cmd, "--rollout-horizon takes a duration such as 30d, 72h or 8w, or none");
    else *us = (int64_t)(d * unit);
    return 0;
}

int cmd_eval(int argc, char **argv) {
    int status;
    cli_named task = {.folder = "tasks", .ext = ".task"};
    eval_config cfg;
    memset(&cfg, 0, sizeof cfg);
    split_config_default(&cfg.split);
    cfg.baselines = EVAL_BASELINES_DEFAULT;
    cfg.baseline.threads = 1;
    cfg.small_patients = 1000;
    eval_ft_options_default(&cfg.model.ft);
    cli_split_args split = {0};
    const char *ceiling = NULL, *ceiling_key = NULL, *ceiling_col = NULL;
    unsigned long long n_boot = 1000, seed = 1, min_rows = 0, max_codes = 0; /* 0: eval's defaults */
    cli_list scores = {.n = 0};
    /* The fine-tuning settings are floats; a float's value survives the trip through double. */
    eval_ft_options *ft = &cfg.model.ft;
    double ft_lr = ft->lr, ft_dropout = ft->dropout, ft_wd = ft->weight_decay, ft_lm = ft->lm_weight;
    double ft_body_lr = ft->body_lr, ft_head_lr = ft->head_lr, ft_aux_weight = ft->aux_weight;
    double ft_summary_w = ft->summary_weight, ft_distill_w = ft->distill_weight, ft_drop_values = ft->drop_values;
    cli_list aux = {.n = 0};
    static const cli_choice targets[] = {{"outcome", TASK_TARGET_OUTCOME}, {"competing", TASK_TARGET_COMPETING}, {NULL, 0}};
    static const cli_choice pools[] = {{"last", GPT_POOL_LAST},           {"mean", GPT_POOL_MEAN},
                                       {"both", GPT_POOL_BOTH},           {"extremes", GPT_POOL_EXTREMES},
                                       {"windows", GPT_POOL_WINDOWS},     {"attention", GPT_POOL_ATTENTION},
                                       {"variables", GPT_POOL_VARIABLES}, {NULL, 0}};
    const cli_opt opts[] = {
        CLI_OPT_FN("task", &task, "FILE", cli_take_named, "task definition (docs/TASKS.md)"),
        CLI_OPT_STR("store", &cfg.store_path, "STORE", "event store"),
        CLI_OPT_STR("out", &cfg.out_dir, "DIR", "output directory (created if missing)"),
        CLI_OPT_STR("eval-store", &cfg.eval_store_path, "STORE",
                    "external evaluation: every labelled row of STORE is held out\n"
                    "(another site, a later period); the predictors fit on the\n"
                    "train and tuning rows of --store (use --split 90/10/0 to use\n"
                    "all of it); the model must have been trained on --store"),
        CLI_OPT_STR("model", &cfg.model_path, "MODEL",
                    "also evaluate the model's predictors: zero_shot (sampled\n"
                    "futures), readout (next-token probabilities) and finetuned\n"
                    "(logistic head on the patient embedding); the fitted head\n"
                    "goes into MODEL (heads/TASK.json, for clinfm serve) and to\n"
                    "DIR/model_head.json"),
        CLI_OPT_FN("model-predictors", &cfg.model.which, "LIST", take_model_predictors,
                   "zero_shot,readout,finetuned (default: all the task allows),\n"
                   "and finetuned_e2e: the whole model fine-tuned end to end with a\n"
                   "task head (minutes of training; only when named)"),
        CLI_OPT_INT("ft-epochs", &ft->epochs, "N", 1, 100000,
                    "finetuned_e2e settings: epochs (30), --ft-lr X (2e-4), --ft-batch N\n"
                    "(16), --ft-patience N (4), --ft-dropout P (0.1), --ft-weight-decay X\n"
                    "(0.05), --ft-lm-weight X (next-token loss weight beside the task\n"
                    "loss, 0.3); --ft-body-lr S and --ft-head-lr S multiply --ft-lr for\n"
                    "the pretrained model's parameters and the task heads' (1 and 1; a\n"
                    "body at 0 stays as pretrained); --ft-ensemble N averages N models fine-tuned with\n"
                    "successive seeds (1); --ft-pool\n"
                    "last|mean|both|extremes|windows|attention|variables:\n"
                    "the head reads the last history token's final hidden state,\n"
                    "their mean over the history, both (both), or both with their\n"
                    "channel-wise max and min over the history (extremes), then the\n"
                    "max and min over its first and second half in time (windows;\n"
                    "a model trained with --inputs), or the extremes with a learned\n"
                    "attention pooling over the history (attention), or the extremes\n"
                    "with, per variable (a code token that carries a value; the\n"
                    "--ft-var-slots N (48) in the most train stays), the last, max\n"
                    "and min of a learned projection of its events' hidden states\n"
                    "to --ft-var-channels K (2) numbers (variables; a model trained\n"
                    "with --values embed --inputs); --ft-summary-weight W (0): a\n"
                    "training-only linear head on what the task head reads predicts\n"
                    "each stay's own last, min, max and mean value and presence of\n"
                    "the --ft-summary-vars N (48) variables carrying a value in the\n"
                    "most train stays, its mean squared error times W added to the\n"
                    "loss (a model trained with --values embed --inputs; the head is\n"
                    "not saved); --ft-context N\n"
                    "fine-tunes a copy with an N-token context (default the model's), so histories\n"
                    "the model had to cut are read whole; --ft-average-from E (0: off)\n"
                    "also judges, after each epoch e > E, the mean of the parameters at\n"
                    "the ends of epochs E .. e (a weight average) on the tuning rows, and\n"
                    "keeps the best of the raw epochs and the averages; --ft-probe-cv K\n"
                    "(0: off) chooses the starting probe's penalty by K-fold\n"
                    "cross-validation on the train rows instead of on the tuning rows,\n"
                    "which then judge the start and every epoch alike (docs/P12.md)"),
        CLI_OPT_DOUBLE("ft-lr", &ft_lr, "X", 0, 100, NULL),
        CLI_OPT_INT("ft-batch", &ft->batch, "N", 1, 100000, NULL),
        CLI_OPT_INT("ft-patience", &ft->patience, "N", 1, 100000, NULL),
        CLI_OPT_DOUBLE("ft-dropout", &ft_dropout, "P", 0, 1, NULL),
        CLI_OPT_DOUBLE("ft-weight-decay", &ft_wd, "X", 0, 100, NULL),
        CLI_OPT_DOUBLE("ft-lm-weight", &ft_lm, "X", 0, 100, NULL),
        CLI_OPT_DOUBLE("ft-body-lr", &ft_body_lr, "S", 0, 100, NULL),
        CLI_OPT_DOUBLE("ft-head-lr", &ft_head_lr, "S", 0, 100, NULL),
        CLI_OPT_INT("ft-ensemble", &ft->ensemble, "N", 1, 16, NULL),
        CLI_OPT_CHOICE("ft-pool", &ft->pool, "P", pools, NULL),
        CLI_OPT_INT("ft-context", &ft->context, "N", 16, 65536, NULL),
        CLI_OPT_INT("ft-var-slots", &ft->var_slots, "N", 1, GPT_POOL_MAX_SLOTS, NULL),
        CLI_OPT_INT("ft-var-channels", &ft->var_proj, "K", 1, GPT_POOL_MAX_PROJ, NULL),
        CLI_OPT_INT("ft-average-from", &ft->average_from, "E", 0, 100000, NULL),
        CLI_OPT_INT("ft-probe-cv", &ft->probe_cv, "K", 0, 64, NULL),
        CLI_OPT_DOUBLE("ft-drop-values", &ft_drop_values, "P",
                       0, 1, "finetuned_e2e: each training batch leaves out every measured\n"
                       "value (a token that carries one) with probability P, afresh each\n"
                       "epoch (an augmentation; a model trained with --values embed\n"
                       "--inputs; the prefix, the last token and the tuning and held-out\n"
                       "stays are never touched; default 0: none)"),
        CLI_OPT_LIST("ft-aux-task", &aux, "FILE",
                     "an auxiliary task of finetuned_e2e (repeatable, 8 at most):\n"
                     "its labels of the task's rows train a head of their own beside\n"
                     "the task's (no label outside its population); only the task's\n"
                     "head is predicted, and its tuning loss alone chooses the epoch.\n"
                     "Its prompts must be the task's (same trigger, prediction time\n"
                     "and [input] never), or the run is refused; --ft-aux-weight W\n"
                     "(0.5) weighs each auxiliary head's loss against the task's"),
        CLI_OPT_DOUBLE("ft-aux-weight", &ft_aux_weight, "W", 0, 100, NULL),
        CLI_OPT_FN("ft-distill", &cfg.model.distill, "BASELINE", take_teacher,
                   "a teacher for finetuned_e2e (e.g. xgboost_values): its\n"
                   "probabilities of the train rows, each from a teacher fitted\n"
                   "without that row's patient (--ft-distill-folds K folds by\n"
                   "patient, 5), are soft targets of a head of their own beside\n"
                   "the task's, weighed --ft-distill-weight W (1); only the task's\n"
                   "head is predicted, and its tuning loss alone chooses the epoch"),
        CLI_OPT_DOUBLE("ft-distill-weight", &ft_distill_w, "W", 0, 100, NULL),
        CLI_OPT_INT("ft-distill-folds", &cfg.model.distill_folds, "K", 2, 64, NULL),
        CLI_OPT_DOUBLE("ft-summary-weight", &ft_summary_w, "W", 0, 1000, NULL),
        CLI_OPT_INT("ft-summary-vars", &ft->summary_vars, "N", 1, FT_SUMMARY_MAX_VARS, NULL),
        CLI_OPT_FLAG("allow-overlap", &cfg.allow_overlap,
                     "evaluate MODEL even when held-out patients were its training\n"
                     "or tuning patients (refused by default); every page of the\n"
                     "report then says so"),
        CLI_OPT_INT("rollouts", &cfg.model.rollouts, "N", 1, 1024, "zero-shot futures per prediction (default 20)"),
        CLI_OPT_INT("max-new-tokens", &cfg.model.max_new_tokens, "N", 1, 1000000,
                    "tokens per zero-shot future at most (default 1024)"),
        CLI_OPT_FN("rollout-horizon", &cfg.model.horizon_us, "DUR", take_horizon,
                   "a zero-shot future of a window without an end in time (until\n"
                   "discharge, or open) stops once its clock passes DUR after the\n"
                   "prediction, without the outcome (default 30d; none: never);\n"
                   "the share stopped so and the share left undecided at the token\n"
                   "limit are reported"),
        CLI_OPT_CHOICE("target", &cfg.target, "EVENT", targets,
                       "outcome (default) or competing: evaluate the competing event\n"
                       "(death before the outcome; tasks with [follow_up]) as a task\n"
                       "of its own; its model head is TASK__competing"),
        CLI_OPT_FN("baselines", &cfg.baselines, "LIST", take_baselines,
                   "count-feature baselines: logreg, xgboost (all history),\n"
                   "logreg_365d, xgboost_365d (the last 365 days only); default\n"
                   "all four; or none; and logreg_values, xgboost_values (counts\n"
                   "plus value aggregates: min, max, mean per window, first and\n"
                   "last value; only when named). The record-position probe (a\n"
                   "floor) and the single-feature AUROC alarms always run"),
        CLI_OPT_LIST("score", &scores, "NAME=CODE",
                     "a clinical score the records hold, as a reference predictor\n"
                     "score_NAME: the last value of CODE at or before the prediction\n"
                     "time (read even when the task keeps CODE from every other\n"
                     "predictor), calibrated on train rows; repeatable (4)"),
        CLI_OPT_STR("propose", &cfg.propose, "NAME",
                    "the predictor the model card proposes for use (default:\n"
                    "finetuned when --model is given, else none)"),
        CLI_OPT_FN("thresholds", &cfg, "LIST", take_thresholds,
                   "risk thresholds for sensitivity, specificity, PPV, number\n"
                   "needed to evaluate and alerts per 100 (default: the task's\n"
                   "[report] thresholds, else 0.05,0.1,0.2,0.5)"),
        CLI_OPTS_SPLIT(&split),
        CLI_OPT_U64("bootstrap", &n_boot, "N", 0, 100000, "bootstrap resamples for intervals (default 1000; 0: none)"),
        CLI_OPT_U64("seed", &seed, "N", 0, CLI_ANY, "seed for resampling and training (default 1)"),
        CLI_OPT_INT("threads", &cfg.baseline.threads, "N", 1, 256, "threads for XGBoost and the model (default 1)"),
        CLI_OPT_U64("min-code-rows", &min_rows, "N", 1, CLI_ANY, "keep codes seen in at least N train histories (default 3)"),
        CLI_OPT_U64("max-codes", &max_codes, "N", 1, 1000000, "keep at most N most frequent codes (default 3000)"),
        CLI_OPT_STR("ceiling", &ceiling, "FILE",
                    "ground truth from `clinfm synth` (truth/<task>.csv): adds the\n"
                    "ceiling row, the best any predictor could do (docs/SYNTH.md)"),
        CLI_OPT_STR("ceiling-key", &ceiling_key, "KEYFILE", "the de-identification key, when the store is de-identified"),
        CLI_OPT_STR("ceiling-column", &ceiling_col, "NAME", "the truth file's probability column (default probability)"),
        CLI_OPT_FLAG("quiet", &cfg.quiet, "print no summary"),
        CLI_OPT_END};
    unsigned char given[sizeof opts / sizeof opts[0]];
    const cli_spec spec = {
        .cmd = "eval",
        .usage = "eval --task FILE --store STORE --out DIR [--model MODEL] [options]",
        .about = "Labels the task, trains the count-feature baselines (L2 logistic regression and\n"
                 "XGBoost, MEDS-Tab style) on the train split with settings chosen on the tuning split,\n"
                 "and evaluates every predictor on the held-out split: AUROC, AUPRC, Brier score and\n"
                 "calibration (reliability curve, ECE) with bootstrap 95% intervals, overall and per\n"
                 "subgroup, and latency per patient. Writes into DIR: metrics.json, predictions.csv,\n"
                 "report.html (self-contained, no network) and MODEL_CARD.md.\n",
        .opts = opts,
        .given = given};
    if (!cli_parse(&spec, argc, argv, NULL, &status)) return status;
    if (ft_lr == 0) return cli_usage_error("eval", "--ft-lr expects a non-negative number above 0");
    if (ft_dropout >= 1) return cli_usage_error("eval", "--ft-dropout expects a non-negative number below 1");
    if (ft_drop_values >= 1) return cli_usage_error("eval", "--ft-drop-values expects a probability below 1");
    if (ft->probe_cv == 1) return cli_usage_error("eval", "--ft-probe-cv expects 0 (off) or 2 .. 64 folds");
    ft->lr = (float)ft_lr;
    ft->dropout = (float)ft_dropout;
    ft->weight_decay = (float)ft_wd;
    ft->lm_weight = (float)ft_lm;
    ft->body_lr = (float)ft_body_lr;
    ft->head_lr = (float)ft_head_lr;
    ft->aux_weight = (float)ft_aux_weight;
    if (aux.n > EVAL_MAX_AUX) return cli_usage_error("eval", "--ft-aux-task is given at most %d times", EVAL_MAX_AUX);
    for (size_t i = 0; i < aux.n; i++) cfg.aux_tasks[cfg.n_aux++] = aux.v[i];
    if (cli_given(&spec, "ft-aux-weight") && !aux.n) return cli_usage_error("eval", "--ft-aux-weight needs --ft-aux-task");
    if (aux.n && (!(cfg.model.which & EVAL_MODEL_E2E) || cfg.target == TASK_TARGET_COMPETING))
        return cli_usage_error("eval", "--ft-aux-task trains heads beside finetuned_e2e's: name finetuned_e2e in "
                                       "--model-predictors (and evaluate the task's own outcome, not --target competing)");
    ft->summary_weight = (float)ft_summary_w;
    ft->drop_values = (float)ft_drop_values;
    ft->distill_weight = (float)ft_distill_w;
    if ((cli_given(&spec, "ft-distill-weight") || cli_given(&spec, "ft-distill-folds")) && !cfg.model.distill)
        return cli_usage_error("eval", "--ft-distill-weight and --ft-distill-folds need --ft-distill");
    if (cfg.model.distill && (!(cfg.model.which & EVAL_MODEL_E2E) || cfg.target == TASK_TARGET_COMPETING))
        return cli_usage_error("eval", "--ft-distill trains a head beside finetuned_e2e's: name finetuned_e2e in "
                                       "--model-predictors (and evaluate the task's own outcome, not --target competing)");
    ft->set = cli_given(&spec, "ft-");
    if (scores.n > sizeof cfg.scores / sizeof *cfg.scores)
        return cli_usage_error("eval", "--score is given at most %zu times", sizeof cfg.scores / sizeof *cfg.scores);
    for (size_t i = 0; i < scores.n; i++) cfg.scores[cfg.n_scores++] = scores.v[i];
    cfg.task_path = task.path;
    cfg.boot.n_boot = (unsigned)n_boot;
    cfg.boot.seed = cfg.baseline.seed = seed;
    cfg.baseline.features.min_rows = (size_t)min_rows;
    cfg.baseline.features.max_codes = (size_t)max_codes;
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
    if ((rc = cli_split_apply(&split, &cfg.split, &err))) goto done;
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
