/* Where the foundation model's predictors plug into `clinfm eval --model MODEL`.
 *
 * Three predictors share one loaded model (src/model/runtime.h) and one KV-cache session:
 *   zero_shot  ETHOS style: N futures sampled from the history at the prediction time; the risk
 *              is the share that reach the task's outcome inside its window (tasks/task_outcome.h
 *              translates the label rule into tokens and a time budget). No fitting at all.
 *   readout    the one-step version: the next-token probability of the outcome, also through
 *              one gap token that stays inside the window. No fitting, one forward pass.
 *   finetuned  CLMBR style: an L2 logistic head on the frozen patient embedding at the
 *              prediction time, fitted on train rows, its penalty chosen on tuning rows; the
 *              fitted head is written to OUT/model_head.json for the service.
 *   finetuned_e2e  the whole model and a task head trained together on the train rows'
 *              histories (src/model/finetune.h), next-token loss kept beside the task loss,
 *              stopped on the tuning rows' log loss; optionally an ensemble over seeds.
 * Every prompt is the encoded history [subject start, history_end) without never-input codes,
 * so no predictor can see anything after the prediction time. The model must have been trained
 * under the evaluation's split, or held-out patients could have been its training data: that
 * is checked against the split fingerprint its vocabulary records. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "eval/eval.h"
#include "model/finetune.h"
#include "model/gpt_pool.h"
#include "model/head.h"
#include "model/outcome.h"
#include "model/runtime.h"
#include "tasks/task_outcome.h"
#include "timeline/prepare.h"
#include "util/json.h"
#include "util/mix64.h"

typedef struct {
    model_bundle bundle;
    int have_bundle;
    rt_model rm;
    int have_model;
    rt_session ss;
    int have_session;
    rt_encoder *enc;
    const store *enc_store; /* the store enc was built for */
    const task_def *t;
    const task_labels *l;
    rt_outcome oc;
    eval_model_options o;
    char head_path[4200];
} model_shared;

#define MAX_ENSEMBLE 16

typedef struct {
    model_shared *sh;
    int kind; /* EVAL_MODEL_* */
    rt_head head;
    int have_head;
    uint64_t generated, rollouts, open, horizon;
    /* finetuned_e2e: the fine-tuned models and how their training went */
    gpt_model e2e[MAX_ENSEMBLE];
    ft_report e2e_rep[MAX_ENSEMBLE];
    size_t aux_rows[EVAL_MAX_AUX], aux_pos[EVAL_MAX_AUX]; /* train rows each auxiliary task labels */
    double distill_loss;  /* the teacher's out-of-fold log loss on the train rows' labels */
    size_t distill_rows;  /* train rows with a soft target */
    int n_e2e;
    size_t e2e_cut, e2e_train_rows; /* train prompts whose history was cut to the context, of */
    ft_options fto;
} model_pred;

void eval_ft_options_default(eval_ft_options *o) {
    ft_options d;
    ft_options_default(&d);
    memset(o, 0, sizeof *o);
    o->epochs = d.epochs;
    o->batch = d.batch;
    o->patience = d.patience;
    o->pool = d.pool;
    o->ensemble = 1;
    o->lr = d.lr;
    o->body_lr = d.body_lr;
    o->head_lr = d.head_lr;
    o->weight_decay = d.weight_decay;
    o->lm_weight = d.lm_weight;
    o->dropout = d.dropout;
    o->var_slots = d.var_slots;
    o->var_proj = d.var_proj;
    o->aux_weight = d.aux_weight;
    o->summary_weight = d.summary_weight;
    o->summary_vars = d.summary_vars;
    o->distill_weight = 1.0f;
}

static int encoder_for(model_shared *sh, const store *s, cf_err *err) {
    if (sh->enc && sh->enc_store == s) return CF_OK;
    rt_encoder_free(sh->enc);
    sh->enc = NULL;
    int rc = rt_encoder_new_store(&sh->enc, &sh->rm, s, err);
    if (!rc) sh->enc_store = s;
    return rc;
}

static int row_prompt(model_shared *sh, const store *s, const label_row *r, int max_len, rt_prompt *p, cf_err *err) {
    int rc = encoder_for(sh, s, err);
    if (rc) return rc;
    return rt_encode_history(sh->enc, r->subject_index, r->history_end, sh->l->input_ok, max_len, p, err);
}

/* ------------------------------------------------------------------ zero-shot and read-out */

static int zs_predict(void *ctx, const store *s, const label_row *rows, size_t n, float *probs, cf_err *err) {
    model_pred *mp = ctx;
    model_shared *sh = mp->sh;
    /* One prompt at a time through the KV cache: one thread. The products of one prompt are
     * too small to share (a 2-layer model ran 3-4x slower on two threads on a loaded machine);
     * --threads goes to end-to-end fine-tuning, whose batches are cut between threads. */
    rt_session_threads(&sh->ss, 1);
    const int T = sh->rm.m.config.max_seq_len;
    rt_prompt p = {0};
    int rc = CF_OK;
    for (size_t i = 0; i < n && !rc; i++) {
        const label_row *r = &rows[i];
        int64_t start, budget;
        if (mp->kind == EVAL_MODEL_READOUT) {
            if ((rc = row_prompt(sh, s, r, T - 1, &p, err))) break;
            rt_outcome_window(&sh->oc, r->trigger_time, r->prediction_time, p.last_time, &start, &budget);
            double risk;
            if ((rc = rt_readout(&sh->ss, &p, sh->oc.outcome, budget, &risk, err))) break;
            probs[i] = (float)(sh->oc.polarity ? risk : 1 - risk);
            continue;
        }
        /* Leave a quarter of the context for the future before the first re-priming. */
        if ((rc = row_prompt(sh, s, r, T - T / 4, &p, err))) break;
        rt_outcome_window(&sh->oc, r->trigger_time, r->prediction_time, p.last_time, &start, &budget);
        rt_rollout_spec sp = {.outcome = sh->oc.outcome, .terminal = sh->oc.terminal, .start_us = start,
                              .budget_us = budget, .n_rollouts = sh->o.rollouts, .max_new = sh->o.max_new_tokens,
                              .seed = cf_mix64(sh->o.seed ^ cf_mix64((uint64_t)r->subject_id ^ cf_mix64((uint64_t)r->prediction_time))),
                              .temperature = 1.0f, .horizon_us = sh->o.horizon_us > 0 ? sh->o.horizon_us : 0};
        rt_rollout_result res;
        if ((rc = rt_rollouts(&sh->ss, &p, &sp, &res, err))) break;
        int hit = sh->oc.polarity ? res.n_event : res.n - res.n_event;
        probs[i] = (float)hit / (float)res.n;
        mp->generated += res.generated;
        mp->rollouts += (uint64_t)res.n;
        mp->open += (uint64_t)res.n_open;
        mp->horizon += (uint64_t)res.n_horizon;
    }
    rt_prompt_free(&p);
    return rc;
}

/* A predictor's settings (describe): an object that opens with the model's version ... */
static cJSON *describe_new(const model_pred *mp) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "model", mp->sh->rm.version);
    return j;
}

/* ... and its text (caller frees); j is deleted. */
static char *describe_text(cJSON *j) {
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return s;
}

static char *zs_describe(void *ctx) {
    model_pred *mp = ctx;
    model_shared *sh = mp->sh;
    cJSON *j = describe_new(mp);
    char *d = rt_outcome_describe(&sh->oc, &sh->rm.v);
    if (d) cJSON_AddStringToObject(j, "outcome", d);
    free(d);
    if (mp->kind == EVAL_MODEL_ZERO_SHOT) {
        cJSON_AddNumberToObject(j, "rollouts", sh->o.rollouts);
        cJSON_AddNumberToObject(j, "max_new_tokens", sh->o.max_new_tokens);
        cJSON_AddNumberToObject(j, "seed", (double)sh->o.seed);
        if (sh->o.horizon_us > 0) cJSON_AddNumberToObject(j, "horizon_days", (double)sh->o.horizon_us / 86400e6);
        if (mp->rollouts) {
            cJSON_AddNumberToObject(j, "rollouts_run", (double)mp->rollouts);
            cJSON_AddNumberToObject(j, "tokens_per_rollout", (double)mp->generated / (double)mp->rollouts);
            cJSON_AddNumberToObject(j, "share_closed_at_horizon", (double)mp->horizon / (double)mp->rollouts);
            cJSON_AddNumberToObject(j, "share_undecided_at_token_limit", (double)mp->open / (double)mp->rollouts);
        }
    } else {
        cJSON_AddStringToObject(j, "readout", "P(next token is an outcome token) + sum over gap tokens inside the "
                                              "window of P(gap) x P(outcome token right after it)");
    }
    return describe_text(j);
}

/* ------------------------------------------------------------------ fine-tuned head */

static int embed_rows(model_pred *mp, const store *s, const label_row *rows, size_t n, float *X, uint8_t *y,
                      cf_err *err) {
    model_shared *sh = mp->sh;
    rt_session_threads(&sh->ss, 1);
    int C = sh->rm.m.config.channels, rc = CF_OK;
    rt_prompt p = {0};
    for (size_t i = 0; i < n && !rc; i++) {
        if (!(rc = row_prompt(sh, s, &rows[i], 0, &p, err))) rc = rt_embed(&sh->ss, &p, X + i * (size_t)C, err);
        if (y) y[i] = rows[i].label;
    }
    rt_prompt_free(&p);
    return rc;
}

static int ft_save_head(model_pred *mp, cf_err *err) {
    model_shared *sh = mp->sh;
    if (!sh->head_path[0]) return CF_OK;
    const task_def *t = sh->t;
    rt_task_head th;
    memset(&th, 0, sizeof th);
    th.task_name = t->name;
    th.task_title = t->title ? t->title : t->name;
    th.have_head = 1;
    th.head = mp->head;
    th.outcome = sh->oc;
    th.method = RT_METHOD_FINETUNED;
    th.rollouts = sh->o.rollouts;
    th.max_new = sh->o.max_new_tokens;
    size_t nc = 0, np = 0;
    for (size_t k = 0; k < t->n_never_input; k++) {
        nc += t->sets[t->never_input[k]].n_codes;
        np += t->sets[t->never_input[k]].n_prefixes;
    }
    th.never_codes = calloc(nc ? nc : 1, sizeof *th.never_codes);
    th.never_prefixes = calloc(np ? np : 1, sizeof *th.never_prefixes);
    if (!th.never_codes || !th.never_prefixes) {
        free(th.never_codes);
        free(th.never_prefixes);
        return cf_fail(err, CF_EINTERNAL, "out of memory");
    }
    for (size_t k = 0; k < t->n_never_input; k++) {
        const task_codeset *cs = &t->sets[t->never_input[k]];
        for (size_t i = 0; i < cs->n_codes; i++) th.never_codes[th.n_never_codes++] = cs->codes[i];
        for (size_t i = 0; i < cs->n_prefixes; i++) th.never_prefixes[th.n_never_prefixes++] = cs->prefixes[i];
    }
    int rc = rt_task_head_save(sh->head_path, &th, &sh->rm, err);
    /* and into the model bundle, where the service reads it */
    char bp[4400];
    const char *hn = sh->o.head_name ? sh->o.head_name : t->name;
    if (!rc && !(rc = bundle_head_path(&sh->bundle, hn, bp, sizeof bp, err)) &&
        !(rc = rt_task_head_save(bp, &th, &sh->rm, err))) {
        char part[300];
        snprintf(part, sizeof part, "heads/%s.json", hn);
        if (!(rc = bundle_commit(&sh->bundle, part, err)) && sh->o.info)
            snprintf(sh->o.info->head_file, sizeof sh->o.info->head_file, "%s", bp);
    }
    free(th.never_codes);
    free(th.never_prefixes);
    return rc;
}

static int ft_fit(void *ctx, const store *s, const label_row *train, size_t n_train, const label_row *tuning,
                  size_t n_tuning, cf_err *err) {
    model_pred *mp = ctx;
    int C = mp->sh->rm.m.config.channels, rc;
    float *Xtr = malloc((n_train ? n_train : 1) * (size_t)C * sizeof *Xtr);
    float *Xtu = malloc((n_tuning ? n_tuning : 1) * (size_t)C * sizeof *Xtu);
    uint8_t *ytr = malloc(n_train ? n_train : 1), *ytu = malloc(n_tuning ? n_tuning : 1);
    if (!Xtr || !Xtu || !ytr || !ytu) {
        rc = cf_fail(err, CF_EINTERNAL, "out of memory");
        goto done;
    }
    if ((rc = embed_rows(mp, s, train, n_train, Xtr, ytr, err)) ||
        (rc = embed_rows(mp, s, tuning, n_tuning, Xtu, ytu, err)))
        goto done;
    if ((rc = rt_head_fit(&mp->head, C, Xtr, ytr, n_train, Xtu, ytu, n_tuning, err))) goto done;
    mp->have_head = 1;
    rc = ft_save_head(mp, err);
done:
    CF_FREE_ALL(Xtr, Xtu, ytr, ytu);
    return rc;
}

static int ft_predict(void *ctx, const store *s, const label_row *rows, size_t n, float *probs, cf_err *err) {
    model_pred *mp = ctx;
    if (!mp->have_head) return cf_fail(err, CF_EINTERNAL, "the fine-tuned head was not fitted");
    int C = mp->sh->rm.m.config.channels;
    float *x = malloc((size_t)C * sizeof *x);
    if (!x) return cf_fail(err, CF_EINTERNAL, "out of memory");
    int rc = CF_OK;
    for (size_t i = 0; i < n && !rc; i++) {
        if (!(rc = embed_rows(mp, s, rows + i, 1, x, NULL, err)))
            probs[i] = (float)rt_sigmoid(rt_head_logit(&mp->head, x, NULL));
    }
    free(x);
    return rc;
}

static char *ft_describe(void *ctx) {
    model_pred *mp = ctx;
    cJSON *j = describe_new(mp);
    cJSON_AddStringToObject(j, "features", "final hidden state at the last history token (frozen)");
    if (mp->have_head) {
        cJSON_AddNumberToObject(j, "l2_lambda", mp->head.lambda);
        cJSON_AddBoolToObject(j, "tuned", mp->head.tuned);
        if (isfinite(mp->head.tune_loss)) cJSON_AddNumberToObject(j, "tuning_log_loss", mp->head.tune_loss);
        cJSON_AddNumberToObject(j, "train_rows", (double)mp->head.n_train);
    }
    if (mp->sh->head_path[0]) cJSON_AddStringToObject(j, "head_file", "model_head.json");
    return describe_text(j);
}

/* ------------------------------------------------------------------ end-to-end fine-tuning */

/* Prompts (at most max_len tokens, 0: the model's context) and labels of rows; *cut (may be
 * NULL) counts the prompts whose history was cut to fit. */
static int prompts_of(model_shared *sh, const store *s, const label_row *rows, size_t n, int max_len, rt_prompt *ps,
                      float *y, size_t *cut, cf_err *err) {
    int rc = CF_OK;
    for (size_t i = 0; i < n && !rc; i++) {
        rc = row_prompt(sh, s, &rows[i], max_len, &ps[i], err);
        if (!rc && cut && (size_t)ps[i].len < ps[i].history_len) (*cut)++;
        if (y) y[i] = rows[i].label ? 1.0f : 0.0f;
    }
    return rc;
}

static void prompts_free(rt_prompt *ps, size_t n) {
    for (size_t i = 0; ps && i < n; i++) rt_prompt_free(&ps[i]);
    free(ps);
}

static int e2e_fit(void *ctx, const store *s, const label_row *train, size_t n_train, const label_row *tuning,
                   size_t n_tuning, cf_err *err) {
    model_pred *mp = ctx;
    model_shared *sh = mp->sh;
    rt_session_threads(&sh->ss, 1);
    rt_prompt *ptr = calloc(n_train ? n_train : 1, sizeof *ptr), *ptu = calloc(n_tuning ? n_tuning : 1, sizeof *ptu);
    float *ytr = malloc((n_train ? n_train : 1) * sizeof *ytr), *ytu = malloc((n_tuning ? n_tuning : 1) * sizeof *ytu);
    int rc = CF_OK;
    if (!ptr || !ptu || !ytr || !ytu) {
        rc = cf_fail(err, CF_EINTERNAL, "out of memory");
        goto done;
    }
    mp->e2e_cut = 0;
    if ((rc = prompts_of(sh, s, train, n_train, mp->fto.context, ptr, ytr, &mp->e2e_cut, err)) ||
        (rc = prompts_of(sh, s, tuning, n_tuning, mp->fto.context, ptu, ytu, NULL, err)))
        goto done;
    mp->e2e_train_rows = n_train;
    /* With auxiliary tasks, y gets a column per task after the task's own (NaN outside its
     * population), and head 0, the task's, alone chooses the epoch. */
    const int distill = sh->o.distill > 0;
    const int K = 1 + (int)sh->o.n_aux + distill;
    if (K > 1) {
        float *wtr = malloc((n_train ? n_train : 1) * (size_t)K * sizeof *wtr);
        float *wtu = malloc((n_tuning ? n_tuning : 1) * (size_t)K * sizeof *wtu);
        if (!wtr || !wtu) {
            free(wtr);
            free(wtu);
            rc = cf_fail(err, CF_EINTERNAL, "out of memory");
            goto done;
        }
        for (size_t i = 0; i < n_train; i++) wtr[i * K] = ytr[i];
        for (size_t i = 0; i < n_tuning; i++) wtu[i * K] = ytu[i];
        for (size_t a = 0; a < sh->o.n_aux; a++) {
            eval_aux_column(&sh->o.aux_labels[a], train, n_train, wtr + 1 + a, (size_t)K);
            eval_aux_column(&sh->o.aux_labels[a], tuning, n_tuning, wtu + 1 + a, (size_t)K);
            size_t nl = 0, np = 0;
            for (size_t i = 0; i < n_train; i++)
                if (!isnan(wtr[i * K + 1 + a])) nl++, np += wtr[i * K + 1 + a] > 0.5f;
            mp->aux_rows[a] = nl, mp->aux_pos[a] = np;
        }
        if (distill) { /* the teacher's out-of-fold probabilities, the last head's soft targets */
            for (size_t i = 0; i < n_tuning; i++) wtu[i * K + K - 1] = NAN;
            rc = eval_distill_column(s, sh->l, sh->o.distill - 1, &sh->o.distill_baseline, train, n_train, tuning,
                                     n_tuning, sh->o.distill_folds, sh->o.seed, wtr + K - 1, (size_t)K,
                                     &mp->distill_loss, err);
            mp->distill_rows = rc ? 0 : n_train; /* every train row gets a target */
        }
        free(ytr);
        free(ytu);
        ytr = wtr, ytu = wtu;
        if (rc) goto done;
    }
    const int n = sh->o.ft.set && sh->o.ft.ensemble > 0 ? sh->o.ft.ensemble : 1;
    for (int k = 0; k < n && k < MAX_ENSEMBLE; k++) {
        ft_options fo = mp->fto;
        fo.seed = mp->fto.seed + (uint64_t)k;
        if ((rc = ft_train(&mp->e2e[k], &sh->rm.m, K, ptr, ytr, n_train, ptu, ytu, n_tuning,
                           (int)sh->rm.v.special[VOCAB_SP_PAD], &fo, &mp->e2e_rep[k], err)))
            break;
        mp->n_e2e = k + 1;
    }
done:
    prompts_free(ptr, n_train);
    prompts_free(ptu, n_tuning);
    free(ytr);
    free(ytu);
    return rc;
}

static int e2e_predict(void *ctx, const store *s, const label_row *rows, size_t n, float *probs, cf_err *err) {
    model_pred *mp = ctx;
    if (!mp->n_e2e) return cf_fail(err, CF_EINTERNAL, "the fine-tuned model was not trained");
    rt_prompt *ps = calloc(n ? n : 1, sizeof *ps);
    const size_t K = (size_t)mp->e2e[0].config.num_outputs; /* the task's head, then auxiliary ones */
    float *lg = malloc((n ? n : 1) * K * sizeof *lg);
    int rc = CF_OK;
    if (!ps || !lg) {
        rc = cf_fail(err, CF_EINTERNAL, "out of memory");
        goto done;
    }
    if ((rc = prompts_of(mp->sh, s, rows, n, mp->fto.context, ps, NULL, NULL, err))) goto done;
    for (size_t i = 0; i < n; i++) probs[i] = 0;
    /* the ensemble's probability is the mean of its members' */
    for (int k = 0; k < mp->n_e2e && !rc; k++) {
        if (mp->sh->o.threads > 0) mp->e2e[k].num_threads = mp->sh->o.threads;
        if ((rc = ft_logits(&mp->e2e[k], ps, n, (int)mp->sh->rm.v.special[VOCAB_SP_PAD], mp->fto.batch, lg, err))) break;
        for (size_t i = 0; i < n; i++) probs[i] += (float)(rt_sigmoid(lg[i * K]) / mp->n_e2e);
    }
    for (size_t i = 0; i < n; i++) probs[i] = probs[i] < 0 ? 0 : probs[i] > 1 ? 1 : probs[i];
done:
    prompts_free(ps, n);
    free(lg);
    return rc;
}

static char *e2e_describe(void *ctx) {
    model_pred *mp = ctx;
    cJSON *j = describe_new(mp);
    /* indexed by GPT_POOL_* */
    static const char *const pools[] = {"last history token", "mean over the history", "last token and mean",
                                        "last token, mean, max and min",
                                        "last token, mean, max and min, and max and min over each half of the stay",
                                        "last token, mean, max and min, and a learned attention pooling",
                                        "last token, mean, max and min, and per variable the last, max and min "
                                        "of a learned projection of its events' hidden states"};
    const int np = (int)(sizeof pools / sizeof pools[0]);
    _Static_assert(sizeof pools / sizeof pools[0] == GPT_POOL_VARIABLES + 1, "one description per pooling mode");
    const char *reads = pools[mp->fto.pool >= 0 && mp->fto.pool < np ? mp->fto.pool : 0];
    /* The method names the pooling too: it once said "the last history token's final hidden state"
     * whatever head_reads said beside it. */
    char method[512];
    snprintf(method, sizeof method,
             "the whole model and a logistic task head on the history's final hidden states (%s), trained together "
             "(next-token loss kept beside the task loss), the epoch%s chosen by tuning log loss",
             reads, mp->fto.average_from > 0 ? " or a weight average of the epochs" : "");
    cJSON_AddStringToObject(j, "method", method);
    JSON_ADD_NUMBERS(j, {"max_epochs", mp->fto.epochs}, {"batch", mp->fto.batch}, {"lr", mp->fto.lr},
                     {"body_lr_scale", mp->fto.body_lr}, {"head_lr_scale", mp->fto.head_lr},
                     {"weight_decay", mp->fto.weight_decay}, {"next_token_weight", mp->fto.lm_weight},
                     {"dropout", mp->fto.dropout}, {"patience", mp->fto.patience});
    cJSON_AddStringToObject(j, "head_reads", reads);
    /* the selection's two options, named only when on, so today's metrics.json is unchanged */
    if (mp->fto.average_from > 0) cJSON_AddNumberToObject(j, "average_from_epoch", mp->fto.average_from);
    if (mp->fto.probe_cv > 0) cJSON_AddNumberToObject(j, "probe_penalty_cv_folds", mp->fto.probe_cv);
    if (mp->fto.drop_values > 0) cJSON_AddNumberToObject(j, "value_dropout", mp->fto.drop_values);
    /* the summary target is a training objective only: the head it trains is not part of the
     * fine-tuned model */
    cJSON_AddNumberToObject(j, "summary_weight", mp->fto.summary_weight);
    if (mp->fto.summary_weight > 0) cJSON_AddNumberToObject(j, "summary_max_variables", mp->fto.summary_vars);
    cJSON_AddNumberToObject(j, "ensemble", mp->n_e2e);
    cJSON_AddNumberToObject(j, "context", mp->fto.context > 0 ? mp->fto.context : mp->sh->rm.m.config.max_seq_len);
    if (mp->e2e_train_rows)
        cJSON_AddNumberToObject(j, "share_train_prompts_cut", (double)mp->e2e_cut / (double)mp->e2e_train_rows);
    if (mp->n_e2e && mp->e2e[0].config.cls_pool == GPT_POOL_VARIABLES) { /* the slots fine-tuning chose */
        cJSON_AddNumberToObject(j, "variable_slots", mp->e2e[0].config.cls_slots);
        cJSON_AddNumberToObject(j, "variable_channels", mp->e2e[0].config.cls_proj);
    }
    if (mp->sh->o.n_aux) { /* heads trained beside the task's, never predicted */
        cJSON *ax = cJSON_AddArrayToObject(j, "auxiliary_tasks");
        for (size_t a = 0; a < mp->sh->o.n_aux; a++) {
            cJSON *t = cJSON_CreateObject();
            cJSON_AddStringToObject(t, "task", mp->sh->o.aux_tasks[a].name);
            JSON_ADD_NUMBERS(t, {"train_rows_labelled", (double)mp->aux_rows[a]}, {"train_positives", (double)mp->aux_pos[a]});
            cJSON_AddItemToArray(ax, t);
        }
        cJSON_AddNumberToObject(j, "auxiliary_weight", mp->fto.aux_weight);
        cJSON_AddStringToObject(j, "epoch_chosen_by", "the task head's tuning log loss alone");
    }
    if (mp->sh->o.distill) { /* a teacher's soft targets, trained beside the task's head, never predicted */
        cJSON *d = cJSON_AddObjectToObject(j, "teacher");
        cJSON_AddStringToObject(d, "baseline", eval_baseline_name(mp->sh->o.distill - 1));
        JSON_ADD_NUMBERS(d, {"folds", mp->sh->o.distill_folds},
                         {"weight", mp->fto.last_head_weight}, {"train_rows", (double)mp->distill_rows});
        if (isfinite(mp->distill_loss)) cJSON_AddNumberToObject(d, "out_of_fold_log_loss", mp->distill_loss);
    }
    cJSON *runs = cJSON_AddArrayToObject(j, "runs");
    for (int k = 0; k < mp->n_e2e; k++) {
        cJSON *r = cJSON_CreateObject();
        cJSON_AddNumberToObject(r, "seed", (double)(mp->fto.seed + (uint64_t)k));
        cJSON_AddNumberToObject(r, "epochs_run", mp->e2e_rep[k].epochs_run);
        const ft_report *fr = &mp->e2e_rep[k];
        cJSON_AddNumberToObject(r, "best_epoch", fr->best_epoch);
        if (isfinite(fr->best_tune_loss)) cJSON_AddNumberToObject(r, "tuning_log_loss", fr->best_tune_loss);
        if (isfinite(fr->aux_tune_loss)) cJSON_AddNumberToObject(r, "auxiliary_tuning_log_loss", fr->aux_tune_loss);
        if (mp->fto.average_from > 0 || mp->fto.probe_cv > 0) {
            /* what was kept, and every candidate's tuning log loss (null where none was judged) */
            cJSON_AddStringToObject(r, "kept", fr->best_averaged ? "weight average" : fr->best_epoch ? "epoch" : "start");
            if (fr->best_averaged) cJSON_AddNumberToObject(r, "kept_average_from_epoch", mp->fto.average_from);
            if (isfinite(fr->probe_lambda)) cJSON_AddNumberToObject(r, "probe_penalty", fr->probe_lambda);
            if (isfinite(fr->probe_cv_loss)) cJSON_AddNumberToObject(r, "probe_cv_log_loss", fr->probe_cv_loss);
            const int last = fr->epochs_run < FT_CURVE ? fr->epochs_run : FT_CURVE;
            cJSON *tc = cJSON_AddArrayToObject(r, "tuning_log_loss_by_epoch");
            cJSON *ac = mp->fto.average_from > 0 ? cJSON_AddArrayToObject(r, "average_tuning_log_loss_by_epoch") : NULL;
            for (int e = 0; e <= last; e++) {
                cJSON_AddItemToArray(tc, isfinite(fr->tune_curve[e]) ? cJSON_CreateNumber(fr->tune_curve[e]) : cJSON_CreateNull());
                if (ac)
                    cJSON_AddItemToArray(ac, isfinite(fr->avg_curve[e]) ? cJSON_CreateNumber(fr->avg_curve[e]) : cJSON_CreateNull());
            }
        }
        if (fr->summary_vars) {
            cJSON_AddNumberToObject(r, "summary_variables", fr->summary_vars);
            if (isfinite(fr->summary_tune_mse)) cJSON_AddNumberToObject(r, "summary_tuning_mse", fr->summary_tune_mse);
        }
        cJSON_AddNumberToObject(r, "seconds", mp->e2e_rep[k].seconds);
        cJSON_AddNumberToObject(r, "tokens", (double)mp->e2e_rep[k].tokens);
        cJSON_AddItemToArray(runs, r);
    }
    return describe_text(j);
}

/* Rows of another store: prompts then leave out that store's never-input codes (the encoder
 * follows the store by itself). */
static int model_bind(void *ctx, const store *s, const task_labels *l, cf_err *err) {
    (void)s;
    (void)err;
    model_pred *mp = ctx;
    mp->sh->l = l;
    return CF_OK;
}

/* ------------------------------------------------------------------ registration */

static void shared_free(model_shared *sh) {
    if (!sh) return;
    rt_encoder_free(sh->enc);
    if (sh->have_session) rt_session_free(&sh->ss);
    rt_outcome_free(&sh->oc);
    if (sh->have_model) rt_close(&sh->rm);
    if (sh->have_bundle) bundle_close(&sh->bundle);
    free(sh);
}

/* The model must come from the evaluation's split: same shares, same key. */
static int check_split(const model_shared *sh, const char *model_path, cf_err *err) {
    const vocab *v = &sh->rm.v;
    uint8_t id[SPLIT_KEY_ID_BYTES];
    split_key_id(&sh->o.split, id);
    if (v->split_train_ppm != sh->o.split.train_ppm || v->split_tuning_ppm != sh->o.split.tuning_ppm ||
        v->split_rotate_ppm != sh->o.split.rotate_ppm || memcmp(v->split_key_id, id, SPLIT_KEY_ID_BYTES))
        return cf_fail(err, CF_EINPUT, "%s was trained under another split (train %.4g%%, tuning %.4g%%%s%s); evaluate "
                       "with the split it was trained with (--split, --fold, --split-key), or held-out patients "
                       "may have been its training data", model_path, v->split_train_ppm / 1e4, v->split_tuning_ppm / 1e4,
                       v->split_rotate_ppm != sh->o.split.rotate_ppm ? ", another fold" : "",
                       memcmp(v->split_key_id, id, SPLIT_KEY_ID_BYTES) ? ", another split key" : "");
    return CF_OK;
}

/* No held-out patient may have been a training or tuning patient of the model: each distinct
 * held-out subject is looked up among the bundle's keyed hashes of training subjects, by id
 * (same id space) and by record print (the same patient in another de-identified copy, or in
 * the identified store). */
static int check_overlap(model_shared *sh, const char *model_path, cf_err *err) {
    const int external = sh->o.held_store != NULL;
    const store *s = external ? sh->o.held_store : sh->o.store;
    eval_model_info *info = sh->o.info, local;
    if (!info) info = &local;
    bundle_split bs;
    int rc = bundle_load_split(&sh->bundle, &bs, err);
    if (rc) return rc;
    info->legacy = sh->bundle.legacy;
    info->split_recorded = bs.present;
    info->train_first = info->train_last = TIME_NULL;
    if (!bs.present) return CF_OK; /* nothing to check against: the report says so */
    char hex[65];
    if (s) timeline_store_fingerprint(s, hex);
    info->same_store = s && !strcmp(hex, bs.store_hash);
    info->train_deidentified = bs.deidentified;
    info->train_first = bs.first_time;
    info->train_last = bs.last_time;
    info->train_subjects = bs.subjects[SPLIT_TRAIN];
    info->tuning_subjects = bs.subjects[SPLIT_TUNING];
    split_printer pr = {0};
    if (s && (rc = split_printer_init(&pr, s, err))) {
        bundle_split_free(&bs);
        return rc;
    }
    const task_labels *l = external ? sh->o.held_labels : sh->l;
    uint64_t last = UINT64_MAX;
    for (size_t i = 0; i < l->n; i++) {
        const label_row *r = &l->rows[i];
        if ((!external && r->split != SPLIT_HELD_OUT) || r->subject_index == last) continue;
        last = r->subject_index;
        info->held_patients++;
        int by_id = bundle_split_has(bs.id_hash, bs.n_id, split_subject_hash(&sh->o.split, r->subject_id));
        uint64_t h;
        int printed = s && split_record_hash(&pr, &sh->o.split, r->subject_index, &h);
        int by_print = printed && bundle_split_has(bs.print_hash, bs.n_print, h);
        if (!printed) info->held_unprinted++;
        info->overlap_by_id += (size_t)by_id;
        info->overlap_by_record += (size_t)by_print;
        info->overlap_patients += (size_t)(by_id || by_print);
    }
    if (s) split_printer_free(&pr);
    bundle_split_free(&bs);
    if (info->overlap_patients && !sh->o.allow_overlap)
        return cf_fail(err, CF_EINPUT, "%zu of the %zu held-out patients were training or tuning patients of %s (%zu found "
                       "by id, %zu by their record): its figures would measure memory, not prediction. Evaluate on "
                       "the store it was trained on, or on a copy de-identified with the same --split-key, with the "
                       "split it was trained under; --allow-overlap runs anyway and marks every page of the report",
                       info->overlap_patients, info->held_patients, model_path, info->overlap_by_id,
                       info->overlap_by_record);
    info->overlap_allowed = info->overlap_patients > 0;
    return CF_OK;
}

int eval_model_predictors(const char *model_path, const eval_model_options *o, const task_def *t,
                          const task_labels *l, eval_predictor *out, size_t cap, size_t *n_out, cf_err *err) {
    *n_out = 0;
    model_shared *sh = calloc(1, sizeof *sh);
    if (!sh) return cf_fail(err, CF_EINTERNAL, "out of memory");
    sh->o = *o;
    if (sh->o.distill && sh->o.distill_folds <= 0) sh->o.distill_folds = 5; /* the default, resolved once */
    if (sh->o.rollouts <= 0) sh->o.rollouts = 20;
    if (sh->o.max_new_tokens <= 0) sh->o.max_new_tokens = 1024;
    if (sh->o.horizon_us == 0) sh->o.horizon_us = 30 * 86400000000LL;
    sh->t = t;
    sh->l = l;
    int rc;
    if ((rc = bundle_open(&sh->bundle, model_path, err))) goto fail;
    sh->have_bundle = 1;
    if ((rc = rt_open_bundle(&sh->rm, &sh->bundle, NULL, err))) goto fail;
    sh->have_model = 1;
    if (o->info) {
        const char *ch = bundle_part_hash(&sh->bundle, BUNDLE_CHECKPOINT);
        snprintf(o->info->version, sizeof o->info->version, "%s", sh->rm.version);
        snprintf(o->info->checkpoint_hash, sizeof o->info->checkpoint_hash, "%s", ch ? ch : "");
    }
    if ((rc = check_split(sh, model_path, err)) || (rc = check_overlap(sh, model_path, err))) goto fail;
    if ((rc = task_outcome(&sh->oc, &sh->rm.v, t, err))) goto fail;
    int n_seq = sh->o.rollouts > VOCAB_N_GAPS + 1 ? sh->o.rollouts : VOCAB_N_GAPS + 1;
    if ((rc = rt_session_init(&sh->ss, &sh->rm, n_seq, err))) goto fail;
    sh->have_session = 1;
    if (sh->o.threads <= 0) sh->o.threads = 1;
    if (o->out_dir) snprintf(sh->head_path, sizeof sh->head_path, "%s/model_head.json", o->out_dir);
    /* End-to-end fine-tuning trains a model (minutes, not seconds): only when asked for. */
    unsigned which = o->which ? o->which : EVAL_MODEL_ZERO_SHOT | EVAL_MODEL_READOUT | EVAL_MODEL_FINETUNED;
    if (!sh->oc.expressible && (which & (EVAL_MODEL_ZERO_SHOT | EVAL_MODEL_READOUT))) {
        if (o->which & (EVAL_MODEL_ZERO_SHOT | EVAL_MODEL_READOUT)) {
            rc = cf_fail(err, CF_EINPUT, "task %s: zero-shot prediction is not possible: %s", t->name, sh->oc.why);
            goto fail;
        }
        fprintf(stderr, "clinfm eval: no zero-shot predictors for task %s: %s\n", t->name, sh->oc.why);
        which &= ~(unsigned)(EVAL_MODEL_ZERO_SHOT | EVAL_MODEL_READOUT);
    }
    static const struct {
        unsigned bit;
        const char *name, *desc;
    } kinds[] = {
        {EVAL_MODEL_ZERO_SHOT, "zero_shot", "foundation model, zero-shot: share of sampled futures reaching the outcome"},
        {EVAL_MODEL_READOUT, "readout", "foundation model, zero-shot: next-token probability of the outcome"},
        {EVAL_MODEL_FINETUNED, "finetuned", "foundation model, fine-tuned: logistic head on the frozen patient embedding"},
        {EVAL_MODEL_E2E, "finetuned_e2e", "foundation model, fine-tuned end to end: the whole model with a task head"},
    };
    for (size_t k = 0; k < 4; k++) {
        if (!(which & kinds[k].bit)) continue;
        if (*n_out >= cap) {
            rc = cf_fail(err, CF_EINTERNAL, "no room for the model's predictors");
            goto fail;
        }
        model_pred *mp = calloc(1, sizeof *mp);
        if (!mp) {
            rc = cf_fail(err, CF_EINTERNAL, "out of memory");
            goto fail;
        }
        mp->sh = sh;
        mp->kind = (int)kinds[k].bit;
        eval_predictor *p = &out[(*n_out)++];
        memset(p, 0, sizeof *p);
        p->name = kinds[k].name;
        p->description = kinds[k].desc;
        p->ctx = mp;
        if (kinds[k].bit == EVAL_MODEL_FINETUNED) {
            p->fit = ft_fit;
            p->predict = ft_predict;
            p->describe = ft_describe;
            p->bind = model_bind;
        } else if (kinds[k].bit == EVAL_MODEL_E2E) {
            ft_options_default(&mp->fto);
            if (o->ft.set) {
                mp->fto.epochs = o->ft.epochs;
                mp->fto.batch = o->ft.batch;
                mp->fto.patience = o->ft.patience;
                mp->fto.pool = o->ft.pool;
                mp->fto.context = o->ft.context;
                mp->fto.lr = o->ft.lr;
                mp->fto.body_lr = o->ft.body_lr;
                mp->fto.head_lr = o->ft.head_lr;
                mp->fto.weight_decay = o->ft.weight_decay;
                mp->fto.lm_weight = o->ft.lm_weight;
                mp->fto.dropout = o->ft.dropout;
                mp->fto.var_slots = o->ft.var_slots;
                mp->fto.var_proj = o->ft.var_proj;
                mp->fto.average_from = o->ft.average_from;
                mp->fto.probe_cv = o->ft.probe_cv;
                mp->fto.aux_weight = o->ft.aux_weight;
                mp->fto.summary_weight = o->ft.summary_weight;
                mp->fto.summary_vars = o->ft.summary_vars;
                mp->fto.drop_values = o->ft.drop_values;
            }
            mp->fto.main_head = o->n_aux > 0 || o->distill > 0;
            if (o->distill > 0) mp->fto.last_head_weight = o->ft.set ? o->ft.distill_weight : 1.0f;
            mp->fto.seed = sh->o.seed;
            mp->fto.threads = sh->o.threads;
            p->fit = e2e_fit;
            p->predict = e2e_predict;
            p->describe = e2e_describe;
            p->bind = model_bind;
        } else {
            p->predict = zs_predict;
            p->describe = zs_describe;
            p->bind = model_bind;
        }
    }
    if (!*n_out) {
        rc = cf_fail(err, CF_EINPUT, "no model predictor applies to task %s", t->name);
        goto fail;
    }
    return CF_OK;
fail:
    for (size_t i = 0; i < *n_out; i++) free(out[i].ctx);
    *n_out = 0;
    shared_free(sh);
    return rc;
}

void eval_model_predictors_free(eval_predictor *p, size_t n) {
    model_shared *sh = NULL;
    for (size_t i = 0; i < n; i++) {
        model_pred *mp = p[i].ctx;
        if (!mp) continue;
        sh = mp->sh;
        /* How the sampling went: undecided rollouts mean --max-new-tokens was too short. */
        if (mp->kind == EVAL_MODEL_ZERO_SHOT && mp->rollouts)
            fprintf(stderr, "clinfm eval: zero_shot sampled %llu tokens in %llu rollouts (%.1f per rollout); %.1f%% "
                    "reached the token limit undecided, %.1f%% were closed by the time horizon\n",
                    (unsigned long long)mp->generated, (unsigned long long)mp->rollouts,
                    (double)mp->generated / (double)mp->rollouts, 100.0 * (double)mp->open / (double)mp->rollouts,
                    100.0 * (double)mp->horizon / (double)mp->rollouts);
        if (mp->have_head) rt_head_free(&mp->head);
        for (int k = 0; k < mp->n_e2e; k++) gpt_free(&mp->e2e[k]);
        free(mp);
        p[i].ctx = NULL;
    }
    shared_free(sh);
}
