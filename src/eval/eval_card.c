/* MODEL_CARD.md: what the governance committee reads before it approves a model for use.
 *
 * It names the predictor proposed for use (or says none is) and shows what that predictor
 * claims, with intervals: discrimination, calibration by deciles with their counts, and the
 * decision thresholds (sensitivity, specificity, PPV, number needed to evaluate, alerts per
 * 100); whether it clears the record-position floor and what the leakage alarms say; the data
 * window, the split and how follow-up and censoring were decided; subgroups; and the source
 * attributes of the US ONC HTI-1 rule for predictive decision support interventions (45 CFR
 * 170.315(b)(11)(iv)), each filled from what clinfm knows or marked for the deploying hospital
 * to fill. The card says "aligned with", never "compliant": compliance is a certification
 * matter for the hospital and its EHR vendor. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "eval/eval_internal.h"

#define HOSPITAL "_To be completed by the deploying hospital._"

static void md(eval_buf *b, const char *s) {
    /* keep table cells on one line */
    for (; s && *s; s++) eb_put(b, *s == '|' ? "/" : *s == '\n' ? " " : s, 1);
}

/* ---------------------------------------------------------------- demographics */

/* The demographic and social variables the HTI-1 rule asks about, as code prefixes. */
static const struct {
    const char *label, *prefix;
} demo_vars[] = {
    {"race", "RACE//"},
    {"ethnicity", "ETHNICITY//"},
    {"language", "LANGUAGE//"},
    {"sexual orientation", "SEXUAL_ORIENTATION//"},
    {"gender identity", "GENDER_IDENTITY//"},
    {"sex", "GENDER//"},
    {"sex", "SEX//"},
    {"date of birth (as age)", "MEDS_BIRTH"},
    {"marital status", "MARITAL_STATUS//"},
    {"insurance (a social determinant of health)", "INSURANCE//"},
};
#define N_DEMO (sizeof demo_vars / sizeof demo_vars[0])

/* Subjects of the store carrying a code with the prefix, and whether any such code is input. */
static void demo_presence(const eval_state *st, const char *prefix, uint64_t *codes, int *input) {
    *codes = 0, *input = 0;
    size_t pl = strlen(prefix);
    for (uint64_t c = 0; c < st->s.n_codes; c++)
        if (!strncmp(store_code_str(&st->s, (uint32_t)c), prefix, pl) && st->s.code_count[c]) {
            (*codes)++;
            *input |= task_input_allowed(&st->labels, (uint32_t)c);
        }
}

typedef struct {
    uint32_t code;
    size_t n;
} vcount;
static int cmp_vcount(const void *a, const void *b) {
    size_t x = ((const vcount *)a)->n, y = ((const vcount *)b)->n;
    return (x < y) - (x > y);
}

/* "F 52% (220), M 48% (201)": subjects of one split by the first code with the prefix. */
static void demo_mix(eval_buf *b, const eval_state *st, const char *prefix, int split) {
    size_t pl = strlen(prefix), n = 0, unknown = 0;
    vcount *vc = cf_calloc(st->s.n_codes ? st->s.n_codes : 1, sizeof *vc);
    if (!vc) return;
    for (uint64_t k = 0; k < st->s.n_subjects; k++) {
        if (split_assign(&st->cfg->split, st->s.subject_id[k]) != split) continue;
        n++;
        int64_t found = -1;
        for (uint64_t e = st->s.subject_start[k]; e < st->s.subject_start[k + 1] && found < 0; e++)
            if (!strncmp(store_code_str(&st->s, st->s.code[e]), prefix, pl)) found = st->s.code[e];
        if (found < 0) unknown++;
        else vc[found].code = (uint32_t)found, vc[found].n++;
    }
    qsort(vc, st->s.n_codes, sizeof *vc, cmp_vcount);
    for (size_t i = 0; i < st->s.n_codes && vc[i].n && i < 6; i++) {
        const char *code = store_code_str(&st->s, vc[i].code), *desc = store_code_desc(&st->s, vc[i].code);
        if (i) eb_str(b, ", ");
        md(b, code + pl);
        if (*desc && strcmp(desc, code + pl)) {
            eb_str(b, " (");
            md(b, desc);
            eb_str(b, ")");
        }
        eb_fmt(b, " %.0f%% (%zu)", n ? 100.0 * (double)vc[i].n / (double)n : 0, vc[i].n);
    }
    if (unknown) eb_fmt(b, "%sunrecorded %zu", vc[0].n ? ", " : "", unknown);
    free(vc);
}

/* ---------------------------------------------------------------- pieces */

static void thresholds_table(eval_buf *b, const eval_state *st, const eval_pred_result *r) {
    eb_str(b, "| risk at least | alerts per 100 predictions | sensitivity | specificity | PPV | number needed to evaluate | "
              "TP / FP / FN / TN |\n|---|---|---|---|---|---|---|\n");
    for (size_t k = 0; k < st->n_thresholds; k++) {
        const eval_threshold *t = &r->thr[k];
        eb_fmt(b, "| %g | ", t->threshold);
        eb_ci_digits(b, &t->alerts_per_100, 1);
        if (st->insufficient) {
            eb_str(b, " | insufficient | insufficient | insufficient | insufficient");
        } else {
            eb_str(b, " | ");
            eb_ci_digits(b, &t->sensitivity, 3);
            eb_str(b, " | ");
            eb_ci_digits(b, &t->specificity, 3);
            eb_str(b, " | ");
            eb_ci_digits(b, &t->ppv, 3);
            eb_str(b, " | ");
            eb_ci_digits(b, &t->nne, 1);
        }
        eb_fmt(b, " | %zu / %zu / %zu / %zu |\n", t->tp, t->fp, t->fn, t->tn);
    }
}

static void deciles_table(eval_buf *b, const eval_pred_result *r) {
    eb_str(b, "| risk decile | rows | mean predicted | observed (95% interval) |\n|---|---|---|---|\n");
    for (size_t k = 0; k < r->n_deciles; k++) {
        const eval_bin *x = &r->deciles[k];
        eb_fmt(b, "| %zu | %.0f | %.4f | %.4f (%.4f-%.4f) |\n", k + 1, x->n, x->mean_pred, x->frac_pos, x->frac_lo,
               x->frac_hi);
    }
}

/* 1 when the de-identification report in the store's META says the split was kept (clinfm deid
 * --split-key): {"deid": {"split": {"kept": true, ...}}}. */
static int split_kept_by_deid(const store *s) {
    if (!s->meta || !s->meta_len) return 0;
    cJSON *m = cJSON_ParseWithLength(s->meta, s->meta_len);
    cJSON *sp = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(m, "deid"), "split");
    int kept = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(sp, "kept"));
    cJSON_Delete(m);
    return kept;
}

/* ---------------------------------------------------------------- HTI-1 */

typedef struct {
    const char *category, *attribute;
} hti_row;

static const hti_row hti[] = {
    {"Details and output", "Name and contact information of the developer"},
    {"Details and output", "Funding source of the development"},
    {"Details and output", "Value the intervention produces as its output"},
    {"Details and output", "Output type (prediction, classification, recommendation, evaluation, analysis, other)"},
    {"Purpose", "Intended use"},
    {"Purpose", "Intended patient population(s)"},
    {"Purpose", "Intended user(s)"},
    {"Purpose", "Intended decision-making role (informs, augments, replaces clinical management)"},
    {"Cautioned out-of-scope use", "Tasks, situations or populations where users are cautioned against applying it"},
    {"Cautioned out-of-scope use", "Known risks, inappropriate settings or uses, known limitations"},
    {"Development details and input features", "Exclusion and inclusion criteria that shaped the training data"},
    {"Development details and input features", "Use of race, ethnicity, language, sexual orientation, gender identity, "
                                               "sex, date of birth, social determinants of health and health status "
                                               "assessments as input features"},
    {"Development details and input features", "Demographic representativeness of the training data"},
    {"Development details and input features", "Relevance of the training data to the intended deployed setting"},
    {"Fairness in development", "Approach taken to ensure the output is fair"},
    {"Fairness in development", "Approaches to manage, reduce or eliminate bias"},
    {"External validation", "Data source, clinical setting or environment of validation other than the training source"},
    {"External validation", "Party that conducted the external testing"},
    {"External validation", "Demographic representativeness of the external data"},
    {"External validation", "Description of the external validation process"},
    {"Quantitative measures of performance", "Validity in test data from the same source as the training data"},
    {"Quantitative measures of performance", "Fairness in test data from the same source as the training data"},
    {"Quantitative measures of performance", "Validity in data external to, or from another source than, the training data"},
    {"Quantitative measures of performance", "Fairness in data external to, or from another source than, the training data"},
    {"Quantitative measures of performance", "References to evaluations of the intervention's effect on outcomes"},
    {"Ongoing maintenance", "Update and continued validation or fairness assessment schedule"},
    {"Ongoing maintenance", "Validity in local data"},
    {"Ongoing maintenance", "Fairness in local data"},
    {"Ongoing maintenance", "Process and frequency of monitoring performance in use"},
    {"Ongoing maintenance", "Version, release date and checksum of the model"},
    {"Ongoing maintenance", "Performance of the alert thresholds in use (PPV, sensitivity, alerts per 100)"},
};
#define N_HTI (sizeof hti / sizeof hti[0])

static void hti_answer(eval_buf *b, const eval_state *st, size_t k, const eval_pred_result *prop) {
    const task_def *t = &st->task;
    const eval_model_info *mi = &st->model;
    char tb[96];
    switch (k) {
    case 0:
    case 1: eb_str(b, HOSPITAL " The model is the hospital's own, trained and evaluated with clinfm (open source)."); break;
    case 2:
        eb_str(b, "A probability (0 to 1) of: ");
        md(b, t->outcome ? t->outcome : t->label.text);
        eb_fmt(b, ", at `%s`, from what is recorded up to then", task_time_str(&t->prediction, tb, sizeof tb));
        if (prop && !strcmp(prop->p->name, "finetuned")) eb_str(b, "; each with a 95% interval on the head's coefficients");
        eb_str(b, ".");
        break;
    case 3: eb_str(b, "Prediction (a risk), shown to clinicians as a card with its reasons."); break;
    case 4: md(b, t->description ? t->description : t->title); break;
    case 5: md(b, t->population ? t->population : "as defined by the task file"); break;
    case 6: eb_str(b, "Clinicians, as one input to their own judgement; the hospital's AI committee, to decide on use."); break;
    case 7: eb_str(b, "Informs: one input to a clinician's judgement. It does not replace clinical management."); break;
    case 8:
        eb_str(b, "Patients outside the population above; other hospitals or later periods without a new validation; any "
                  "other outcome; deciding care without a clinician.");
        break;
    case 9: eb_str(b, "See Limitations and Leakage alarms below."); break;
    case 10:
        eb_fmt(b, "The task's exclusions (%zu rules, and the counts under Training and evaluation data); follow-up and "
                  "censoring as stated there; patients split by a keyed hash.",
               t->n_exclude);
        break;
    case 11: {
        int any = 0;
        for (size_t i = 0; i < N_DEMO; i++) {
            uint64_t n;
            int input;
            demo_presence(st, demo_vars[i].prefix, &n, &input);
            if (!n) continue;
            eb_fmt(b, "%s%s: %s", any ? "; " : "", demo_vars[i].label, input ? "**an input**" : "in the data, never input");
            any = 1;
        }
        eb_str(b, any ? ". " : "None of these variables is coded in the data. ");
        eb_str(b, "Sexual orientation, gender identity, social determinants and health status assessments are inputs "
                  "whenever coded in the record under other codes: " HOSPITAL);
        break;
    }
    case 12:
        eb_str(b, "Train split of this store by sex: ");
        demo_mix(b, st, "GENDER//", SPLIT_TRAIN);
        eb_str(b, "; by race: ");
        demo_mix(b, st, "RACE//", SPLIT_TRAIN);
        eb_str(b, "; by ethnicity: ");
        demo_mix(b, st, "ETHNICITY//", SPLIT_TRAIN);
        eb_str(b, ".");
        break;
    case 13:
        eb_str(b, "Trained on this hospital's own records (data from ");
        eb_time(b, mi->split_recorded ? mi->train_first : st->s.first_time);
        eb_str(b, " to ");
        eb_time(b, mi->split_recorded ? mi->train_last : st->s.last_time);
        eb_str(b, "). Whether the deployed setting matches: " HOSPITAL);
        break;
    case 14: eb_str(b, "Performance is reported per subgroup with intervals (below); no fairness constraint is applied in training."); break;
    case 15: eb_str(b, "No bias mitigation is applied by clinfm beyond subgroup reporting and the alarms. " HOSPITAL); break;
    case 16:
    case 17:
    case 18:
    case 19:
    case 22:
    case 23: eb_str(b, "None: this card reports same-source held-out patients only. " HOSPITAL); break;
    case 20:
        if (!prop) eb_str(b, "No predictor is proposed; see Performance.");
        else if (st->insufficient) eb_str(b, "Insufficient held-out outcomes to state it.");
        else {
            eb_str(b, "AUROC ");
            eb_ci_digits(b, &prop->overall.auroc, 3);
            eb_str(b, ", AUPRC ");
            eb_ci_digits(b, &prop->overall.auprc, 3);
            eb_str(b, ", Brier ");
            eb_ci_digits(b, &prop->overall.brier, 3);
            eb_str(b, " (held-out patients of the same source).");
        }
        break;
    case 21: eb_str(b, "Per subgroup under Subgroups (same-source held-out patients)."); break;
    case 24: eb_str(b, "None known. " HOSPITAL); break;
    case 25:
    case 26:
    case 27: eb_str(b, HOSPITAL " `clinfm serve` records each card and clinicians' feedback for this."); break;
    case 28: eb_str(b, HOSPITAL " `clinfm serve` exposes metrics and an audit trail; re-run `clinfm eval` on new data."); break;
    case 29:
        if (st->cfg->model_path) {
            eb_fmt(b, "%s; checkpoint BLAKE2b-256 `%s`; evaluated %s.", mi->version,
                   mi->checkpoint_hash[0] ? mi->checkpoint_hash : "(old layout: none)", st->generated);
        } else {
            eb_fmt(b, "No foundation model evaluated; baselines refitted in this evaluation (%s).", st->generated);
        }
        break;
    default:
        eb_fmt(b, "At the thresholds reported under Proposed for use (%s). The service's own warning and critical "
                  "thresholds are reported when given to `clinfm eval --thresholds`.",
               st->thresholds_from == 2 ? "given with --thresholds" : st->thresholds_from == 1 ? "from the task file" : "clinfm's default list");
        break;
    }
}

/* ---------------------------------------------------------------- the card */

int eval_write_model_card(const eval_state *st, const char *path, cf_err *err) {
    const task_def *t = &st->task;
    const task_labels *l = &st->labels;
    const eval_model_info *mi = &st->model;
    const eval_pred_result *prop = st->proposed >= 0 ? &st->res[st->proposed] : NULL;
    const eval_pred_result *floor_r = st->probe >= 0 ? &st->res[st->probe] : NULL;
    eval_buf b = {0};
    char tb[96];
    eb_str(&b, "# Model card: ");
    md(&b, t->title);
    if (l->target == TASK_TARGET_COMPETING) eb_str(&b, " (the competing event: death before the outcome)");
    eb_fmt(&b, "\n\nTask `%s`, evaluated %s by `clinfm eval`.\n\n", t->name, st->generated);
    eval_text_overlap(&b, st, 0);
    eb_str(&b, "> ");
    eval_text_evidence(&b, st, 0);
    eb_str(&b, "\n\n**The model advises; a clinician decides.**\n\n");

    eb_str(&b, "## Proposed for use\n\n");
    if (!prop) {
        eb_str(&b, "None. No foundation model predictor was evaluated (or none was named with `--propose`): the rows "
                   "below are references, not a proposal.\n\n");
    } else {
        eb_fmt(&b, "**`%s`**", prop->p->name);
        if (prop->p->description) {
            eb_str(&b, ": ");
            md(&b, prop->p->description);
        }
        eb_str(&b, st->cfg->propose ? " (named by the evaluator).\n\n"
                                    : " (the model's fine-tuned head, which the service scores with).\n\n");
        eb_str(&b, "What it claims on held-out patients: ");
        if (eval_metrics_insufficient(&prop->overall)) {
            eb_str(&b, "**nothing yet**: too few held-out outcomes (insufficient).\n\n");
        } else {
            eb_str(&b, "AUROC ");
            eb_ci_digits(&b, &prop->overall.auroc, 3);
            eb_str(&b, ", AUPRC ");
            eb_ci_digits(&b, &prop->overall.auprc, 3);
            eb_str(&b, ", Brier ");
            eb_ci_digits(&b, &prop->overall.brier, 3);
            eb_str(&b, ", calibration error (ECE) ");
            eb_ci_digits(&b, &prop->overall.ece, 3);
            eb_str(&b, ".\n\n");
        }
        if (floor_r) {
            eb_str(&b, "Against the record-position floor (");
            eb_ci_digits(&b, &floor_r->overall.auroc, 3);
            eb_str(&b, "): ");
            if (eval_metrics_insufficient(&prop->overall) || isnan(prop->overall.auroc.value) ||
                isnan(floor_r->overall.auroc.value))
                eb_str(&b, "cannot be told.\n\n");
            else if (prop->overall.auroc.value <= floor_r->overall.auroc.value)
                eb_str(&b, "**does not clear it**: its result may come from where predictions sit in the record.\n\n");
            else if (!isnan(prop->overall.auroc.lo) && !isnan(floor_r->overall.auroc.hi) &&
                     prop->overall.auroc.lo > floor_r->overall.auroc.hi)
                eb_str(&b, "clears it, the intervals apart.\n\n");
            else eb_str(&b, "above it, but the intervals overlap.\n\n");
        }
        eb_str(&b, "Calibration by deciles of its risk (held out; rows per decile shown):\n\n");
        deciles_table(&b, prop);
        eb_str(&b, "\nAt the decision thresholds (Wilson 95% intervals over prediction times):\n\n");
        thresholds_table(&b, st, prop);
        eb_str(&b, "\n");
    }

    eb_str(&b, "## Leakage alarms\n\n");
    eval_text_alarms(&b, st, 0);
    eb_str(&b, "\n\n");
    for (size_t i = 0; i < st->leak.n_top && st->leak.top[i].flag; i++) {
        eb_str(&b, "- flagged: ");
        md(&b, st->leak.top[i].name);
        eb_fmt(&b, ": AUROC %.3f over all rows", st->leak.top[i].auroc);
        if (!isnan(st->leak.top[i].auroc_held)) eb_fmt(&b, ", %.3f held out", st->leak.top[i].auroc_held);
        eb_str(&b, "\n");
    }
    if (st->leak.n_flagged) eb_str(&b, "\n");

    eb_str(&b, "## Intended use\n\n");
    if (t->description) {
        md(&b, t->description);
        eb_str(&b, "\n\n");
    }
    eb_str(&b, "- **Population:** ");
    md(&b, t->population ? t->population : "as defined by the task file");
    eb_str(&b, "\n- **Outcome:** ");
    md(&b, t->outcome ? t->outcome : t->label.text);
    eb_fmt(&b, "\n- **When:** at `%s`, using only what is recorded up to that moment.\n",
           task_time_str(&t->prediction, tb, sizeof tb));
    eb_str(&b, "- **Users:** clinicians, as one input to their own judgement about a patient, and the hospital's AI "
               "committee, to decide whether the model may be used.\n"
               "- **Not for:** deciding care without a clinician, patients outside the population above, other "
               "hospitals or time periods without a new validation, or any purpose other than this outcome.\n\n");

    eb_str(&b, "## Training and evaluation data\n\n");
    eb_fmt(&b, "- Event store: %llu patients, %llu events%s, data from ", (unsigned long long)st->s.n_subjects,
           (unsigned long long)st->s.n_events, (st->s.flags & STORE_FLAG_DEIDENTIFIED) ? ", de-identified" : "");
    eb_time(&b, st->s.first_time);
    eb_str(&b, " to ");
    eb_time(&b, st->s.last_time);
    eb_str(&b, (st->s.flags & STORE_FLAG_DATES_SHIFTED) ? " (each patient's dates shifted by de-identification).\n" : ".\n");
    eb_fmt(&b, "- Split: patients by a keyed hash of their identifier: train %.4g%%, tuning %.4g%%, held out %.4g%% "
               "(key: %s).",
           st->cfg->split.train_ppm / 1e4, st->cfg->split.tuning_ppm / 1e4,
           (SPLIT_PPM - st->cfg->split.train_ppm - st->cfg->split.tuning_ppm) / 1e4,
           st->cfg->split.default_key ? "the public default, for demonstrations only" : "secret");
    if (split_kept_by_deid(&st->s))
        eb_str(&b, " De-identification kept each patient's split, so the same patients are held out in the identified "
                   "store and in every de-identified copy made with that split key.");
    eb_str(&b, "\n");
    if (st->cfg->model_path) {
        eb_fmt(&b, "- Model: `%s`, %s", st->cfg->model_path, mi->version);
        if (mi->checkpoint_hash[0]) eb_fmt(&b, ", checkpoint BLAKE2b-256 `%s`", mi->checkpoint_hash);
        if (mi->split_recorded) {
            eb_str(&b, "; trained on ");
            eb_trained_on(&b, mi, "identified ");
            eb_fmt(&b, " (%s). Training patients among the held-out ones: %zu of %zu checked.\n",
                   mi->same_store ? "this store" : "another store than this one", mi->overlap_patients, mi->held_patients);
        } else {
            eb_str(&b, ". Its training patients are not recorded (old layout): whether held-out patients were among them "
                       "could not be checked.\n");
        }
    }
    eb_str(&b, "- Follow-up and censoring: ");
    eval_text_follow_up(&b, st, 0);
    eb_fmt(&b, "\n- Trigger events: %llu. Exclusions:\n", (unsigned long long)l->n_triggers);
    for (size_t i = 0; i < l->n_excluded; i++)
        if (l->excluded[i].count) {
            eb_fmt(&b, "  - %llu: ", (unsigned long long)l->excluded[i].count);
            md(&b, l->excluded[i].reason);
            eb_str(&b, "\n");
        }
    eb_str(&b, "\n| split | patients | prediction times | with outcome | without |");
    if (l->has_follow_up) eb_str(&b, " of them, death first (competing) |");
    eb_str(&b, l->has_follow_up ? "\n|---|---|---|---|---|---|\n" : "\n|---|---|---|---|---|\n");
    for (int k = 0; k <= SPLIT_COUNT; k++) {
        const task_counts *c = &st->counts[k];
        eb_fmt(&b, "| %s | %zu | %zu | %zu | %zu |", k == SPLIT_COUNT ? "all" : split_name(k), c->subjects, c->rows,
               c->pos, c->neg);
        if (l->has_follow_up) eb_fmt(&b, " %zu |", c->competing);
        eb_str(&b, "\n");
    }

    eb_str(&b, "\n## Performance on held-out patients\n\n"
               "| predictor | role | AUROC | AUPRC | Brier | ECE | latency per patient (median) |\n"
               "|---|---|---|---|---|---|---|\n");
    for (size_t i = 0; i < st->n_res; i++) {
        const eval_pred_result *r = &st->res[i];
        eb_fmt(&b, "| %s%s | %s | ", r->p->name, (int)i == st->proposed ? " (proposed)" : "", eval_role_name(r->p->role));
        eval_text_cells(&b, &r->overall, 0);
        if (isnan(r->lat_median_ms)) eb_str(&b, " | n/a |\n");
        else eb_fmt(&b, " | %.2f ms |\n", r->lat_median_ms);
    }
    eb_fmt(&b, "\nIntervals: 95%%, from %u bootstrap resamples of patients. A floor is a reference to clear, a "
               "ceiling the best that could be reached; neither is proposed.\n",
           st->n_res ? st->res[0].overall.n_boot : 0);
    for (size_t i = 0; i < st->n_res; i++)
        if (st->res[i].p->description) {
            eb_fmt(&b, "\n- `%s`: ", st->res[i].p->name);
            md(&b, st->res[i].p->description);
        }

    eb_str(&b, "\n\n## Subgroups (AUROC, held out)\n\n");
    for (size_t g = 0; g < l->n_subgroups; g++) {
        eb_str(&b, "### ");
        md(&b, l->subgroup_names[g]);
        eb_str(&b, "\n\n| group | patients | + | - |");
        for (size_t i = 0; i < st->n_res; i++) eb_fmt(&b, " %s |", st->res[i].p->name);
        eb_str(&b, "\n|---|---|---|---|");
        for (size_t i = 0; i < st->n_res; i++) eb_str(&b, "---|");
        eb_str(&b, "\n");
        for (size_t v = 0; v < l->n_values[g]; v++) {
            const eval_metrics *m0 = st->n_res && st->res[0].groups[g] ? &st->res[0].groups[g][v] : NULL;
            if (!m0 || !m0->n) continue;
            eb_str(&b, "| ");
            md(&b, l->values[g][v]);
            eb_fmt(&b, " | %zu | %zu | %zu |", m0->clusters, m0->pos, m0->neg);
            for (size_t i = 0; i < st->n_res; i++) {
                const eval_metrics *m = &st->res[i].groups[g][v];
                if (eval_metrics_insufficient(m)) eb_str(&b, " insufficient |");
                else {
                    eb_str(&b, " ");
                    eb_ci(&b, &m->auroc);
                    eb_str(&b, " |");
                }
            }
            eb_str(&b, "\n");
        }
        eb_str(&b, "\n");
    }

    eb_str(&b, "## ONC HTI-1 source attributes\n\n"
               "The source attributes that the US ONC HTI-1 rule (45 CFR 170.315(b)(11)(iv)) lists for predictive "
               "decision support interventions, in its categories, with what clinfm knows about this model. This card "
               "is *aligned with* that list; it is not a statement of compliance, which is a certification matter for "
               "the deploying hospital and its EHR. Attributes only the hospital can state are marked for it.\n\n"
               "| # | category | source attribute | this model |\n|---|---|---|---|\n");
    for (size_t k = 0; k < N_HTI; k++) {
        eb_fmt(&b, "| %zu | %s | %s | ", k + 1, hti[k].category, hti[k].attribute);
        hti_answer(&b, st, k, prop);
        eb_str(&b, " |\n");
    }

    eb_str(&b, "\n## Limitations\n\n");
    if (st->small) {
        eb_str(&b, "- **Too little evidence.** ");
        eval_text_evidence(&b, st, 0);
        eb_str(&b, "\n");
    }
    eb_str(&b, "- Validated on one data set from one source; performance elsewhere, or later in time, is unknown "
               "until measured there.\n"
               "- Labels come from coded events (the task file above): outcomes that were not recorded, or recorded "
               "late, are missed, and coding habits differ between sites.\n"
               "- Subgroups are defined by recorded codes; small groups have wide intervals, and a group absent "
               "from the held-out split was not evaluated at all.\n"
               "- Probabilities are calibrated to this population's base rate; where the outcome is more or less "
               "common, re-check calibration before use.\n"
               "- Synthetic data (Synthea) follows simulated disease models and exports some event types for only part "
               "of a record: figures on it show that the pipeline works, not how a model would do on real patients.\n\n"
               "## Human oversight\n\nThe model advises; a clinician decides. Its output is a probability for one "
               "outcome; it is not a diagnosis and does not replace examination, tests or clinical judgement.\n");
    return sbuf_write_file(&b, path, err);
}
