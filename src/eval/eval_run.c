/* The evaluation run: label the task, fit every predictor on train (settings by tuning),
 * predict the held-out rows one patient at a time (timing each patient), compute the metrics
 * with bootstrap intervals overall and per subgroup, and write metrics.json, predictions.csv,
 * report.html and MODEL_CARD.md into the output directory, each atomically. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "eval/eval_internal.h"
#include "util/atomic_file.h"
#include "util/json.h"
#include "util/progress.h"

#define MAX_PREDICTORS 24

/* ---------------------------------------------------------------- metrics.json */

static cJSON *num_or_null(double v) { return isnan(v) || isinf(v) ? cJSON_CreateNull() : cJSON_CreateNumber(v); }

static cJSON *ci_json(const eval_ci *c) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "value", num_or_null(c->value));
    cJSON_AddItemToObject(o, "lo", num_or_null(c->lo));
    cJSON_AddItemToObject(o, "hi", num_or_null(c->hi));
    return o;
}

static cJSON *bin_json(const eval_bin *x) {
    cJSON *e = cJSON_CreateObject();
    cJSON_AddNumberToObject(e, "from", x->lo_edge);
    cJSON_AddNumberToObject(e, "to", x->hi_edge);
    cJSON_AddNumberToObject(e, "rows", x->n);
    cJSON_AddItemToObject(e, "mean_predicted", num_or_null(x->mean_pred));
    cJSON_AddItemToObject(e, "observed", num_or_null(x->frac_pos));
    cJSON_AddItemToObject(e, "observed_lo", num_or_null(x->frac_lo));
    cJSON_AddItemToObject(e, "observed_hi", num_or_null(x->frac_hi));
    return e;
}

static cJSON *metrics_json(const eval_metrics *m, int with_bins) {
    cJSON *o = cJSON_CreateObject();
    JSON_ADD_NUMBERS(o, {"rows", (double)m->n}, {"positives", (double)m->pos}, {"negatives", (double)m->neg},
                     {"patients", (double)m->clusters});
    cJSON_AddItemToObject(o, "auroc", ci_json(&m->auroc));
    cJSON_AddItemToObject(o, "auprc", ci_json(&m->auprc));
    cJSON_AddItemToObject(o, "brier", ci_json(&m->brier));
    cJSON_AddItemToObject(o, "ece", ci_json(&m->ece));
    cJSON_AddNumberToObject(o, "bootstrap_replicates", m->n_boot);
    cJSON_AddNumberToObject(o, "bootstrap_replicates_with_both_classes", m->boot_valid);
    if (with_bins) {
        cJSON *bins = cJSON_AddArrayToObject(o, "reliability");
        for (int b = 0; b < EVAL_BINS; b++) cJSON_AddItemToArray(bins, bin_json(&m->bins[b]));
    }
    return o;
}

static cJSON *counts_json(const task_counts *c, int follow_up) {
    cJSON *o = cJSON_CreateObject();
    JSON_ADD_NUMBERS(o, {"patients", (double)c->subjects}, {"rows", (double)c->rows}, {"positives", (double)c->pos},
                     {"negatives", (double)c->neg});
    if (follow_up) cJSON_AddNumberToObject(o, "competing_events", (double)c->competing);
    return o;
}

static cJSON *threshold_json(const eval_threshold *t) {
    cJSON *o = cJSON_CreateObject();
    JSON_ADD_NUMBERS(o, {"threshold", t->threshold}, {"true_positives", (double)t->tp},
                     {"false_positives", (double)t->fp}, {"true_negatives", (double)t->tn},
                     {"false_negatives", (double)t->fn});
    cJSON_AddItemToObject(o, "sensitivity", ci_json(&t->sensitivity));
    cJSON_AddItemToObject(o, "specificity", ci_json(&t->specificity));
    cJSON_AddItemToObject(o, "ppv", ci_json(&t->ppv));
    cJSON_AddItemToObject(o, "number_needed_to_evaluate", ci_json(&t->nne));
    cJSON_AddItemToObject(o, "alerts_per_100_predictions", ci_json(&t->alerts_per_100));
    return o;
}


int eval_write_json(const eval_state *st, const char *path, cf_err *err) {
    const task_def *t = &st->task;
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "producer", "clinfm eval");
    cJSON_AddStringToObject(root, "generated", st->generated);
    cJSON *task = cJSON_AddObjectToObject(root, "task");
    cJSON_AddStringToObject(task, "name", t->name);
    cJSON_AddStringToObject(task, "title", t->title);
    if (t->description) cJSON_AddStringToObject(task, "description", t->description);
    if (t->population) cJSON_AddStringToObject(task, "population", t->population);
    if (t->outcome) cJSON_AddStringToObject(task, "outcome", t->outcome);
    char tb[96];
    cJSON_AddStringToObject(task, "prediction_time", task_time_str(&t->prediction, tb, sizeof tb));
    cJSON_AddStringToObject(task, "label_rule", t->label.text);
    cJSON *data = cJSON_AddObjectToObject(root, "store");
    cJSON_AddNumberToObject(data, "patients", (double)st->s.n_subjects);
    cJSON_AddNumberToObject(data, "events", (double)st->s.n_events);
    cJSON_AddBoolToObject(data, "deidentified", (st->s.flags & STORE_FLAG_DEIDENTIFIED) != 0);
    cJSON *sp = cJSON_AddObjectToObject(root, "split");
    cJSON_AddBoolToObject(sp, "default_key", st->cfg->split.default_key);
    cJSON_AddNumberToObject(sp, "train_percent", st->cfg->split.train_ppm / 1e4);
    cJSON_AddNumberToObject(sp, "tuning_percent", st->cfg->split.tuning_ppm / 1e4);
    cJSON_AddNumberToObject(sp, "held_out_percent",
                            (SPLIT_PPM - st->cfg->split.train_ppm - st->cfg->split.tuning_ppm) / 1e4);
    if (st->cfg->split.folds) {
        cJSON_AddNumberToObject(sp, "fold", st->cfg->split.fold);
        cJSON_AddNumberToObject(sp, "folds", st->cfg->split.folds);
    }
    cJSON *labels = cJSON_AddObjectToObject(root, "labels");
    cJSON_AddNumberToObject(labels, "trigger_events", (double)st->labels.n_triggers);
    cJSON *ex = cJSON_AddArrayToObject(labels, "excluded");
    for (size_t i = 0; i < st->labels.n_excluded; i++) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "rule", st->labels.excluded[i].reason);
        cJSON_AddNumberToObject(e, "count", (double)st->labels.excluded[i].count);
        cJSON_AddItemToArray(ex, e);
    }
    const int fu = st->labels.has_follow_up;
    cJSON_AddItemToObject(labels, "all", counts_json(&st->counts[SPLIT_COUNT], fu));
    for (int k = 0; k < SPLIT_COUNT; k++) cJSON_AddItemToObject(labels, split_name(k), counts_json(&st->counts[k], fu));
    cJSON_AddStringToObject(labels, "target", st->labels.target == TASK_TARGET_COMPETING ? "competing" : "outcome");
    if (fu) {
        cJSON *f = cJSON_AddObjectToObject(labels, "follow_up");
        cJSON_AddStringToObject(f, "death", t->sets[t->death_set].name);
        cJSON_AddStringToObject(f, "ends", t->follow_end == TASK_FU_RECORD_END ? "record_end" : t->follow_end == TASK_FU_DATE ? "date" : "data_end");
        char db[48];
        if (st->labels.data_end != TIME_NULL)
            cJSON_AddStringToObject(f, "data_end_used", time_format_iso(st->labels.data_end, db, sizeof db));
        cJSON_AddBoolToObject(f, "date_shift_margin", st->labels.shifted_margin);
        cJSON_AddStringToObject(f, "competing_death", t->competing == TASK_COMPETING_EXCLUDE ? "excluded" : "negative");
    }
    cJSON_AddBoolToObject(root, "small_sample", st->small);
    cJSON_AddBoolToObject(root, "insufficient", st->insufficient);
    cJSON_AddNumberToObject(root, "insufficient_below_positives", EVAL_MIN_POSITIVES);
    if (st->proposed >= 0) cJSON_AddStringToObject(root, "proposed_predictor", st->res[st->proposed].p->name);
    else cJSON_AddNullToObject(root, "proposed_predictor");
    if (st->cfg->model_path) {
        const eval_model_info *mi = &st->model;
        cJSON *mo = cJSON_AddObjectToObject(root, "model");
        cJSON_AddStringToObject(mo, "version", mi->version);
        if (mi->checkpoint_hash[0]) cJSON_AddStringToObject(mo, "checkpoint_blake2b256", mi->checkpoint_hash);
        cJSON_AddBoolToObject(mo, "old_layout", mi->legacy);
        cJSON_AddBoolToObject(mo, "training_split_recorded", mi->split_recorded);
        cJSON_AddBoolToObject(mo, "evaluated_on_training_store", mi->same_store);
        char tb2[48];
        if (mi->train_first != TIME_NULL) cJSON_AddStringToObject(mo, "training_data_from", time_format_iso(mi->train_first, tb2, sizeof tb2));
        if (mi->train_last != TIME_NULL) cJSON_AddStringToObject(mo, "training_data_to", time_format_iso(mi->train_last, tb2, sizeof tb2));
        cJSON *ov = cJSON_AddObjectToObject(mo, "overlap");
        cJSON_AddNumberToObject(ov, "held_out_patients_checked", (double)mi->held_patients);
        cJSON_AddNumberToObject(ov, "training_patients_among_them", (double)mi->overlap_patients);
        cJSON_AddNumberToObject(ov, "found_by_id", (double)mi->overlap_by_id);
        cJSON_AddNumberToObject(ov, "found_by_record", (double)mi->overlap_by_record);
        cJSON_AddNumberToObject(ov, "held_out_patients_too_short_for_a_record_print", (double)mi->held_unprinted);
        cJSON_AddBoolToObject(ov, "allowed", mi->overlap_allowed);
    }
    cJSON *al = cJSON_AddObjectToObject(root, "leakage_alarms");
    cJSON_AddNumberToObject(al, "flag_auroc", st->leak.flag_auroc);
    cJSON_AddNumberToObject(al, "features_scanned", (double)st->leak.n_features);
    cJSON_AddNumberToObject(al, "features_flagged", (double)st->leak.n_flagged);
    if (st->leak.best_name) cJSON_AddStringToObject(al, "compared_with", st->leak.best_name);
    cJSON_AddItemToObject(al, "compared_with_auroc", num_or_null(st->leak.best_auroc));
    if (st->probe >= 0) cJSON_AddItemToObject(al, "record_position_auroc", ci_json(&st->res[st->probe].overall.auroc));
    cJSON *tf = cJSON_AddArrayToObject(al, "strongest_single_features");
    for (size_t i = 0; i < st->leak.n_top; i++) {
        const eval_feature_auc *a = &st->leak.top[i];
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "feature", a->name);
        cJSON_AddNumberToObject(e, "auroc_all_rows", a->auroc);
        cJSON_AddItemToObject(e, "auroc_held_out", num_or_null(a->auroc_held));
        cJSON_AddStringToObject(e, "direction", a->higher_means_outcome ? "more means the outcome" : "less means the outcome");
        cJSON_AddBoolToObject(e, "flagged", a->flag != 0);
        cJSON_AddItemToArray(tf, e);
    }
    cJSON *th = cJSON_AddArrayToObject(root, "thresholds");
    for (size_t k = 0; k < st->n_thresholds; k++) cJSON_AddItemToArray(th, cJSON_CreateNumber(st->thresholds[k]));
    cJSON *preds = cJSON_AddArrayToObject(root, "predictors");
    for (size_t i = 0; i < st->n_res; i++) {
        const eval_pred_result *r = &st->res[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", r->p->name);
        cJSON_AddStringToObject(o, "role", eval_role_name(r->p->role));
        if (r->p->description) cJSON_AddStringToObject(o, "description", r->p->description);
        cJSON *info = r->info_json ? cJSON_Parse(r->info_json) : NULL;
        if (info) cJSON_AddItemToObject(o, "settings", info);
        cJSON_AddNumberToObject(o, "fit_seconds", r->fit_seconds);
        cJSON *lat = cJSON_AddObjectToObject(o, "latency_ms_per_patient");
        cJSON_AddItemToObject(lat, "median", num_or_null(r->lat_median_ms));
        cJSON_AddItemToObject(lat, "p95", num_or_null(r->lat_p95_ms));
        cJSON_AddItemToObject(lat, "mean", num_or_null(r->lat_mean_ms));
        cJSON_AddNumberToObject(lat, "patients", (double)r->lat_patients);
        cJSON *ho = metrics_json(&r->overall, 1);
        cJSON_AddBoolToObject(ho, "insufficient", st->insufficient);
        cJSON *dec = cJSON_AddArrayToObject(ho, "reliability_deciles");
        for (size_t b = 0; b < r->n_deciles; b++) cJSON_AddItemToArray(dec, bin_json(&r->deciles[b]));
        cJSON *ta = cJSON_AddArrayToObject(ho, "at_thresholds");
        for (size_t k = 0; k < st->n_thresholds; k++) cJSON_AddItemToArray(ta, threshold_json(&r->thr[k]));
        cJSON_AddItemToObject(o, "held_out", ho);
        cJSON *sg = cJSON_AddObjectToObject(o, "subgroups");
        for (size_t g = 0; g < st->labels.n_subgroups; g++) {
            cJSON *arr = cJSON_AddArrayToObject(sg, st->labels.subgroup_names[g]);
            for (size_t v = 0; v < st->labels.n_values[g]; v++) {
                if (!r->groups[g] || !r->groups[g][v].n) continue;
                cJSON *m = metrics_json(&r->groups[g][v], 0);
                cJSON_AddItemToObject(m, "value", cJSON_CreateString(st->labels.values[g][v]));
                cJSON_AddItemToArray(arr, m);
            }
        }
        cJSON_AddItemToArray(preds, o);
    }
    char *txt = cJSON_Print(root);
    cJSON_Delete(root);
    if (!txt) return cf_fail(err, CF_EINTERNAL, "out of memory");
    size_t n = strlen(txt);
    int rc = atomic_write_file(path, txt, n, err);
    free(txt);
    return rc;
}

/* ---------------------------------------------------------------- predictions.csv */

/* The held-out rows' predictions (predictions.csv), or with tuning the tuning rows' (predictions_
 * tuning.csv: fitted predictors' scores on rows that chose their settings, for recalibration and
 * stacking by clinfm pool, never for figures). */
static int write_predictions(const eval_state *st, const char *path, int tuning, cf_err *err) {
    eval_buf b = {0};
    eb_str(&b, "subject_id,prediction_time,boolean_value");
    for (size_t i = 0; i < st->n_res; i++) eb_fmt(&b, ",%s", st->res[i].p->name);
    eb_str(&b, "\n");
    const int part = tuning ? SPLIT_TUNING : SPLIT_HELD_OUT;
    const label_row *rows = st->split_rows[part];
    for (size_t r = 0; r < st->split_n[part]; r++) {
        char tb[48];
        eb_fmt(&b, "%lld,%s,%s", (long long)rows[r].subject_id, time_format_iso(rows[r].prediction_time, tb, sizeof tb),
               rows[r].label ? "true" : "false");
        /* %.9g: every float round-trips, so the metrics can be recomputed from the file exactly */
        for (size_t i = 0; i < st->n_res; i++)
            eb_fmt(&b, ",%.9g", (double)(tuning ? st->res[i].probs_tune : st->res[i].probs)[r]);
        eb_str(&b, "\n");
    }
    return sbuf_write_file(&b, path, err);
}

/* ---------------------------------------------------------------- the run */

static double elapsed_ms(const struct timespec *a, const struct timespec *b) {
    return (double)(b->tv_sec - a->tv_sec) * 1e3 + (double)(b->tv_nsec - a->tv_nsec) / 1e6;
}

static int run_predictor(eval_state *st, const eval_predictor *p, eval_pred_result *r, cf_err *err) {
    memset(r, 0, sizeof *r);
    r->p = p;
    const label_row *held = st->split_rows[SPLIT_HELD_OUT];
    size_t nh = st->split_n[SPLIT_HELD_OUT];
    int rc;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (p->fit && (rc = p->fit(p->ctx, &st->s, st->split_rows[SPLIT_TRAIN], st->split_n[SPLIT_TRAIN],
                               st->split_rows[SPLIT_TUNING], st->split_n[SPLIT_TUNING], err)))
        return rc;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    r->fit_seconds = elapsed_ms(&t0, &t1) / 1e3;
    if (!(r->probs = cf_malloc((nh ? nh : 1) * sizeof *r->probs))) return cf_fail(err, CF_EINTERNAL, "out of memory");
    double *lat = cf_malloc((nh ? nh : 1) * sizeof *lat);
    if (!lat) return cf_fail(err, CF_EINTERNAL, "out of memory");
    size_t np = 0;
    if (st->external) {
        if (!p->bind) {
            free(lat);
            return cf_fail(err, CF_EINPUT, "predictor %s cannot predict the rows of another store (--eval-store)",
                           p->name);
        }
        if ((rc = p->bind(p->ctx, st->held_s, st->held_labels, err))) {
            free(lat);
            return rc;
        }
    }
    /* one call per patient, as a point-of-care request would be */
    for (size_t i = 0; i < nh;) {
        size_t j = i;
        while (j < nh && held[j].subject_index == held[i].subject_index) j++;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        rc = p->predict(p->ctx, st->held_s, held + i, j - i, r->probs + i, err);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        if (rc) {
            free(lat);
            return rc;
        }
        lat[np++] = elapsed_ms(&t0, &t1);
        i = j;
    }
    r->lat_patients = np;
    /* The tuning rows too, in one call (not timed), in the store fitted on. */
    if (st->external && (rc = p->bind(p->ctx, &st->s, &st->labels, err))) {
        free(lat);
        return rc;
    }
    size_t nt = st->split_n[SPLIT_TUNING];
    if (!(r->probs_tune = cf_malloc((nt ? nt : 1) * sizeof *r->probs_tune))) {
        free(lat);
        return cf_fail(err, CF_EINTERNAL, "out of memory");
    }
    if (nt && (rc = p->predict(p->ctx, &st->s, st->split_rows[SPLIT_TUNING], nt, r->probs_tune, err))) {
        free(lat);
        return rc;
    }
    /* after every prediction: a predictor may describe how its predictions went */
    if (p->describe) r->info_json = p->describe(p->ctx);
    double sum = 0;
    for (size_t i = 0; i < np; i++) sum += lat[i];
    r->lat_mean_ms = np ? sum / (double)np : NAN;
    r->lat_median_ms = eval_quantile(lat, np, 0.5);
    r->lat_p95_ms = eval_quantile(lat, np, 0.95);
    free(lat);
    for (size_t i = 0; i < nh; i++)
        if (!(r->probs[i] >= 0 && r->probs[i] <= 1))
            return cf_fail(err, CF_EINTERNAL, "predictor %s gave a value outside [0, 1] for held-out row %zu", p->name, i);
    if ((rc = eval_metrics_compute(r->probs, st->y_held, st->cluster_held, nh, &st->cfg->boot, &r->overall, err)))
        return rc;
    for (size_t k = 0; k < st->n_thresholds; k++)
        eval_threshold_metrics(r->probs, st->y_held, nh, st->thresholds[k], &r->thr[k]);
    r->n_deciles = eval_quantile_bins(r->probs, st->y_held, nh, 10, r->deciles);
    if ((rc = eval_roc_curve(r->probs, st->y_held, nh, &r->roc, err))) return rc;
    if ((rc = eval_pr_curve(r->probs, st->y_held, nh, &r->pr, err))) return rc;
    /* subgroups */
    float *gp = cf_malloc((nh ? nh : 1) * sizeof *gp);
    uint8_t *gy = cf_malloc(nh ? nh : 1);
    int64_t *gc = cf_malloc((nh ? nh : 1) * sizeof *gc);
    if (!gp || !gy || !gc) {
        free(gp), free(gy), free(gc);
        return cf_fail(err, CF_EINTERNAL, "out of memory");
    }
    rc = CF_OK;
    for (size_t g = 0; g < st->held_labels->n_subgroups && !rc; g++) {
        size_t nv = st->held_labels->n_values[g];
        if (!(r->groups[g] = cf_calloc(nv, sizeof *r->groups[g]))) {
            rc = cf_fail(err, CF_EINTERNAL, "out of memory");
            break;
        }
        for (size_t v = 0; v < nv && !rc; v++) {
            size_t m = 0;
            for (size_t i = 0; i < nh; i++)
                if (held[i].group[g] == v) gp[m] = r->probs[i], gy[m] = held[i].label, gc[m++] = held[i].subject_id;
            if (m) rc = eval_metrics_compute(gp, gy, gc, m, &st->cfg->boot, &r->groups[g][v], err);
        }
    }
    CF_FREE_ALL(gp, gy, gc);
    return rc;
}

static void free_result(eval_pred_result *r) {
    CF_FREE_ALL(r->info_json, r->probs, r->probs_tune);
    eval_curve_free(&r->roc);
    eval_curve_free(&r->pr);
    for (int g = 0; g < TASK_MAX_SUBGROUPS; g++) free(r->groups[g]);
}

static int join_path(char *buf, size_t cap, const char *dir, const char *name, cf_err *err) {
    int n = snprintf(buf, cap, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= cap) return cf_fail(err, CF_EINPUT, "%s: output directory path is too long", dir);
    return CF_OK;
}

int eval_run(const eval_config *cfg, cf_err *err) {
    eval_state st;
    memset(&st, 0, sizeof st);
    st.cfg = cfg;
    eval_predictor preds[MAX_PREDICTORS];
    size_t n_preds = 0, n_base = 0, n_model = 0;
    int probe_at = -1;
    size_t score_at = 0, n_scores = 0;
    st.proposed = st.probe = -1;
    int have_task = 0, have_store = 0, rc;
    task_def aux_t[EVAL_MAX_AUX];
    task_labels aux_l[EVAL_MAX_AUX];
    size_t n_aux_t = 0, n_aux_l = 0;
    time_t now = time(NULL);
    struct tm tmv;
    gmtime_r(&now, &tmv);
    strftime(st.generated, sizeof st.generated, "%Y-%m-%dT%H:%M:%SZ", &tmv);

    if ((rc = task_load(&st.task, cfg->task_path, err))) goto done;
    have_task = 1;
    if ((rc = store_open(&st.s, cfg->store_path, err))) goto done;
    have_store = 1;
    if (mkdir(cfg->out_dir, 0777) != 0 && errno != EEXIST) {
        rc = cf_fail_errno(err, CF_EINPUT, "%s: cannot create the output directory", cfg->out_dir);
        goto done;
    }
    task_label_options lo = {.split = cfg->split, .seed = cfg->boot.seed, .target = cfg->target};
    if (cfg->target == TASK_TARGET_COMPETING && st.task.death_set < 0) {
        rc = cf_fail(err, CF_EINPUT, "%s: --target competing needs a [follow_up] section naming the death events",
                     cfg->task_path);
        goto done;
    }
    if ((rc = task_label(&st.task, &st.s, &lo, &st.labels, err))) goto done;
    st.held_s = &st.s;
    st.held_labels = &st.labels;
    /* Auxiliary tasks: refused here, before any predictor runs, unless their prompts are the
     * task's (eval_aux.c). */
    if (cfg->n_aux) {
        if (!cfg->model_path || !(cfg->model.which & EVAL_MODEL_E2E) || cfg->target == TASK_TARGET_COMPETING ||
            cfg->n_aux > EVAL_MAX_AUX) {
            rc = cf_fail(err, CF_EINPUT, "--ft-aux-task trains heads beside finetuned_e2e's: it needs --model, "
                         "finetuned_e2e among --model-predictors, the task's own outcome (not --target competing) "
                         "and at most %d auxiliary tasks", EVAL_MAX_AUX);
            goto done;
        }
        task_label_options alo = lo;
        alo.target = TASK_TARGET_OUTCOME;
        for (size_t a = 0; a < cfg->n_aux; a++) {
            if ((rc = task_load(&aux_t[a], cfg->aux_tasks[a], err))) goto done;
            n_aux_t++;
            if ((rc = task_label(&aux_t[a], &st.s, &alo, &aux_l[a], err))) goto done;
            n_aux_l++;
            if ((rc = eval_aux_check(&st.s, &st.task, &st.labels, &aux_t[a], &aux_l[a], err))) goto done;
            if (!cfg->quiet) {
                task_counts c = task_count_rows(aux_l[a].rows, aux_l[a].n, SPLIT_TRAIN);
                fprintf(stderr, "clinfm eval: auxiliary task %s: %zu train rows (%zu positive)\n", aux_t[a].name, c.rows,
                        c.pos);
            }
        }
    }
    if (cfg->eval_store_path) {
        /* External evaluation: every labelled row of the other store is held out. */
        if ((rc = store_open(&st.other_s, cfg->eval_store_path, err))) goto done;
        st.external = 1;
        if ((rc = task_label(&st.task, &st.other_s, &lo, &st.other_labels, err))) goto done;
        st.external = 2; /* both opened: both freed */
        for (size_t i = 0; i < st.other_labels.n; i++) st.other_labels.rows[i].split = SPLIT_HELD_OUT;
        st.held_s = &st.other_s;
        st.held_labels = &st.other_labels;
    }
    for (int k = 0; k < SPLIT_COUNT; k++) {
        st.counts[k] = task_count_rows(st.labels.rows, st.labels.n, k);
        if (st.external && k == SPLIT_HELD_OUT) st.counts[k] = task_count_rows(st.other_labels.rows, st.other_labels.n, k);
        if (!(st.split_rows[k] = cf_malloc((st.counts[k].rows ? st.counts[k].rows : 1) * sizeof(label_row)))) {
            rc = cf_fail(err, CF_EINTERNAL, "out of memory");
            goto done;
        }
    }
    st.counts[SPLIT_COUNT] = task_count_rows(st.labels.rows, st.labels.n, -1);
    for (size_t i = 0; i < st.labels.n; i++) {
        int k = st.labels.rows[i].split;
        if (st.external && k == SPLIT_HELD_OUT) continue; /* unused: the other store is held out */
        st.split_rows[k][st.split_n[k]++] = st.labels.rows[i];
    }
    for (size_t i = 0; st.external && i < st.other_labels.n; i++)
        st.split_rows[SPLIT_HELD_OUT][st.split_n[SPLIT_HELD_OUT]++] = st.other_labels.rows[i];
    size_t nh = st.split_n[SPLIT_HELD_OUT];
    st.y_held = cf_malloc(nh ? nh : 1);
    st.cluster_held = cf_malloc((nh ? nh : 1) * sizeof *st.cluster_held);
    if (!st.y_held || !st.cluster_held) {
        rc = cf_fail(err, CF_EINTERNAL, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < nh; i++) {
        st.y_held[i] = st.split_rows[SPLIT_HELD_OUT][i].label;
        st.cluster_held[i] = st.split_rows[SPLIT_HELD_OUT][i].subject_id;
    }
    const task_counts *hc = &st.counts[SPLIT_HELD_OUT];
    st.small = hc->subjects < (size_t)(cfg->small_patients > 0 ? cfg->small_patients : 1000) || hc->pos < 30 ||
               hc->neg < 30;
    st.insufficient = hc->pos < EVAL_MIN_POSITIVES || hc->neg < EVAL_MIN_POSITIVES;
    /* thresholds: --thresholds, else the task file's, else a stated default */
    static const double default_thr[] = {0.05, 0.1, 0.2, 0.5};
    const double *thr = default_thr;
    st.n_thresholds = 4;
    if (cfg->n_thresholds) thr = cfg->thresholds, st.n_thresholds = cfg->n_thresholds, st.thresholds_from = 2;
    else if (st.task.n_thresholds) thr = st.task.thresholds, st.n_thresholds = st.task.n_thresholds, st.thresholds_from = 1;
    memcpy(st.thresholds, thr, st.n_thresholds * sizeof *thr);
    if (!cfg->quiet) fprintf(stderr, "clinfm eval: single-feature AUROCs ...\n");
    if ((rc = eval_leak_scan(&st.leak, &st.s, &st.labels, st.split_rows[SPLIT_TRAIN], st.split_n[SPLIT_TRAIN],
                             &cfg->baseline.features, err)))
        goto done;

    for (int kind = 0; kind < EVAL_BASELINE_COUNT; kind++) {
        if (kind == EVAL_BASELINE_PROBE || !(cfg->baselines & (1 << kind))) continue;
        if ((rc = eval_baseline_new(&preds[n_preds], kind, &st.labels, &cfg->baseline, err))) goto done;
        n_preds++, n_base++;
    }
    if (cfg->model_path) {
        eval_model_options mo = cfg->model;
        mo.out_dir = cfg->out_dir;
        mo.split = cfg->split;
        mo.store = &st.s;
        if (st.external) mo.held_store = &st.other_s, mo.held_labels = &st.other_labels;
        mo.allow_overlap = cfg->allow_overlap;
        mo.info = &st.model;
        char head_name[300];
        if (cfg->target == TASK_TARGET_COMPETING) {
            /* The sampled predictors translate the task's outcome rule, which is not this label;
             * the fine-tuned head learns the labels, and goes in as a task of its own. */
            if (mo.which & (EVAL_MODEL_ZERO_SHOT | EVAL_MODEL_READOUT)) {
                rc = cf_fail(err, CF_EINPUT, "--target competing: only the finetuned model predictor learns the "
                             "competing event (zero_shot and readout sample the task's outcome)");
                goto done;
            }
            mo.which = EVAL_MODEL_FINETUNED;
            snprintf(head_name, sizeof head_name, "%s__competing", st.task.name);
            mo.head_name = head_name;
        }
        mo.aux_tasks = aux_t, mo.aux_labels = aux_l, mo.n_aux = cfg->n_aux;
        mo.distill_baseline = cfg->baseline; /* a teacher is fitted as its baseline would be */
        if (!mo.seed) mo.seed = cfg->boot.seed;
        if (!mo.threads) mo.threads = cfg->baseline.threads;
        if ((rc = eval_model_predictors(cfg->model_path, &mo, &st.task, &st.labels, preds + n_preds,
                                        MAX_PREDICTORS - n_preds - cfg->n_extra - 1, &n_model, err)))
            goto done;
        n_preds += n_model;
    }
    for (size_t i = 0; i < cfg->n_extra && n_preds < MAX_PREDICTORS - 1; i++) preds[n_preds++] = cfg->extra[i];
    /* clinical scores the records hold: the references before any model */
    score_at = n_preds;
    for (size_t i = 0; i < cfg->n_scores && n_preds < MAX_PREDICTORS - 1; i++) {
        if ((rc = eval_score_new(&preds[n_preds], cfg->scores[i], err))) goto done;
        n_preds++, n_scores++;
    }
    /* the record-position probe: the floor every report shows */
    if (st.split_n[SPLIT_TRAIN]) {
        if ((rc = eval_baseline_new(&preds[n_preds], EVAL_BASELINE_PROBE, &st.labels, &cfg->baseline, err))) goto done;
        probe_at = (int)n_preds++;
    }
    if (!n_preds) {
        rc = cf_fail(err, CF_EINPUT, "nothing to evaluate: no baselines and no model predictors");
        goto done;
    }
    if (!(st.res = cf_calloc(n_preds, sizeof *st.res))) {
        rc = cf_fail(err, CF_EINTERNAL, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < n_preds; i++) {
        if (!cfg->quiet) fprintf(stderr, "clinfm eval: %s ...\n", preds[i].name);
        rc = run_predictor(&st, &preds[i], &st.res[i], err);
        st.n_res = i + 1;
        if (rc) goto done;
    }
    st.probe = probe_at;
    if (st.external) {
        /* the reports describe the data evaluated on */
        store ts = st.s;
        st.s = st.other_s;
        st.other_s = ts;
        task_labels tl = st.labels;
        st.labels = st.other_labels;
        st.other_labels = tl;
        st.held_s = &st.s;
        st.held_labels = &st.labels;
    }
    /* the alarms measure single features against the best candidate, never the floor or a ceiling */
    {
        double best = NAN;
        const char *best_name = NULL;
        for (size_t i = 0; i < st.n_res; i++)
            if (st.res[i].p->role == EVAL_ROLE_CANDIDATE && !isnan(st.res[i].overall.auroc.value) &&
                (isnan(best) || st.res[i].overall.auroc.value > best))
                best = st.res[i].overall.auroc.value, best_name = st.res[i].p->name;
        eval_leak_flag(&st.leak, best, best_name, !st.insufficient);
    }
    /* the predictor proposed for use: named, or the model's fine-tuned head (what the service
     * scores with) when it was evaluated */
    {
        const char *want = cfg->propose ? cfg->propose : "finetuned";
        for (size_t i = 0; i < st.n_res; i++)
            if (!strcmp(st.res[i].p->name, want)) st.proposed = (int)i;
        if (cfg->propose && (st.proposed < 0 || st.res[st.proposed].p->role != EVAL_ROLE_CANDIDATE)) {
            rc = cf_fail(err, CF_EINPUT, "--propose %s: no such candidate predictor in this evaluation", cfg->propose);
            goto done;
        }
    }
    char path[4200];
    if ((rc = join_path(path, sizeof path, cfg->out_dir, "metrics.json", err)) || (rc = eval_write_json(&st, path, err)))
        goto done;
    if ((rc = join_path(path, sizeof path, cfg->out_dir, "predictions.csv", err)) ||
        (rc = write_predictions(&st, path, 0, err)))
        goto done;
    if ((rc = join_path(path, sizeof path, cfg->out_dir, "predictions_tuning.csv", err)) ||
        (rc = write_predictions(&st, path, 1, err)))
        goto done;
    if ((rc = join_path(path, sizeof path, cfg->out_dir, "report.html", err)) || (rc = eval_write_html(&st, path, err)))
        goto done;
    if ((rc = join_path(path, sizeof path, cfg->out_dir, "MODEL_CARD.md", err)) ||
        (rc = eval_write_model_card(&st, path, err)))
        goto done;
    if (!cfg->quiet) {
        task_print_summary(stdout, &st.task, &st.labels);
        printf("held-out results (%zu patients, %zu rows: %zu positive, %zu negative)%s\n", hc->subjects, hc->rows,
               hc->pos, hc->neg, st.small ? "  -- TOO FEW to judge a model; see the report" : "");
        if (st.insufficient)
            printf("  INSUFFICIENT: fewer than %d held-out rows with (or without) the outcome; the figures below are "
                   "not results\n", EVAL_MIN_POSITIVES);
        if (st.model.overlap_allowed)
            printf("  WARNING: %zu held-out patients were the model's training patients (--allow-overlap)\n",
                   st.model.overlap_patients);
        for (size_t i = 0; i < st.n_res; i++) {
            eval_buf b = {0};
            eb_str(&b, "AUROC ");
            eb_ci(&b, &st.res[i].overall.auroc);
            eb_str(&b, "  AUPRC ");
            eb_ci(&b, &st.res[i].overall.auprc);
            eb_str(&b, "  Brier ");
            eb_ci(&b, &st.res[i].overall.brier);
            printf("  %-15s %s%s\n", st.res[i].p->name, b.p ? b.p : "",
                   st.res[i].p->role == EVAL_ROLE_FLOOR ? "  (floor: where the prediction sits in the record)"
                   : st.res[i].p->role == EVAL_ROLE_CEILING ? "  (ceiling)"
                   : (int)i == st.proposed ? "  (proposed)" : "");
            free(b.p);
        }
        if (st.leak.n_flagged) {
            printf("  ALARM: %zu single feature%s reach%s AUROC over %.1f or the best predictor's; the strongest: %s "
                   "(%.3f over all rows, %.3f held out)\n", st.leak.n_flagged, st.leak.n_flagged == 1 ? "" : "s",
                   st.leak.n_flagged == 1 ? "es" : "", st.leak.flag_auroc, st.leak.top[0].name, st.leak.top[0].auroc,
                   st.leak.top[0].auroc_held);
        }
        printf("wrote %s/{metrics.json,predictions.csv,report.html,MODEL_CARD.md}\n", cfg->out_dir);
    }
done:
    for (size_t i = 0; i < st.n_res; i++) free_result(&st.res[i]);
    free(st.res);
    for (size_t i = 0; i < n_base; i++) eval_baseline_free(&preds[i]);
    if (n_model) eval_model_predictors_free(preds + n_base, n_model);
    if (probe_at >= 0) eval_baseline_free(&preds[probe_at]);
    for (size_t i = 0; i < n_scores; i++) eval_score_free(&preds[score_at + i]);
    eval_leak_free(&st.leak);
    for (int k = 0; k < SPLIT_COUNT; k++) free(st.split_rows[k]);
    free(st.y_held);
    free(st.cluster_held);
    task_labels_free(&st.labels);
    if (have_store) store_close(&st.s);
    if (st.external) {
        if (st.external == 2) task_labels_free(&st.other_labels);
        store_close(&st.other_s);
    }
    if (have_task) task_free(&st.task);
    for (size_t a = 0; a < n_aux_l; a++) task_labels_free(&aux_l[a]);
    for (size_t a = 0; a < n_aux_t; a++) task_free(&aux_t[a]);
    return rc;
}
