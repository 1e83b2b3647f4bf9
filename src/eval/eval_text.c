/* The text the evaluation's outputs share: formatting into the report buffer (eval_buf, numbers
 * with intervals, HTML escaping, dates) and the sentences report.html (eval_report.c) and
 * MODEL_CARD.md (eval_card.c) both print (evidence, overlap, follow-up, alarms), in HTML or
 * Markdown. The run (eval_run.c) calls the writers; the writers call this file; nothing here
 * calls back, so the three files form no circle. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval/eval_internal.h"

/* ---------------------------------------------------------------- formatting into the buffer */

void eb_fmt(eval_buf *s, const char *fmt, ...) {
    char tmp[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n < sizeof tmp) {
        eb_put(s, tmp, (size_t)n);
        return;
    }
    char *big = malloc((size_t)n + 1);
    if (!big) {
        s->oom = 1;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    eb_put(s, big, (size_t)n);
    free(big);
}
void eb_html(eval_buf *s, const char *p) {
    for (; p && *p; p++) {
        switch (*p) {
        case '&': eb_str(s, "&amp;"); break;
        case '<': eb_str(s, "&lt;"); break;
        case '>': eb_str(s, "&gt;"); break;
        case '"': eb_str(s, "&quot;"); break;
        case '\'': eb_str(s, "&#39;"); break;
        default: eb_put(s, p, 1);
        }
    }
}
void eb_ci(eval_buf *s, const eval_ci *c) {
    if (isnan(c->value)) {
        eb_str(s, "n/a");
        return;
    }
    eb_fmt(s, "%.3f", c->value);
    if (!isnan(c->lo) && !isnan(c->hi)) eb_fmt(s, " (%.3f-%.3f)", c->lo, c->hi);
}

void eb_ci_digits(eval_buf *s, const eval_ci *c, int digits) {
    if (isnan(c->value)) {
        eb_str(s, "n/a");
        return;
    }
    eb_fmt(s, "%.*f", digits, c->value);
    if (!isnan(c->lo)) eb_fmt(s, " (%.*f-%.*f)", digits, c->lo, digits, c->hi);
}

/* ---------------------------------------------------------------- text shared with the card */

const char *eval_role_name(int role) {
    return role == EVAL_ROLE_FLOOR ? "floor" : role == EVAL_ROLE_CEILING ? "ceiling" : "candidate";
}

int eval_metrics_insufficient(const eval_metrics *m) { return m->pos < EVAL_MIN_POSITIVES || m->neg < EVAL_MIN_POSITIVES; }

static void tag(eval_buf *b, int html, const char *h, const char *md) { eb_str(b, html ? h : md); }

static void text(eval_buf *b, int html, const char *s) {
    if (html) eb_html(b, s);
    else
        for (; s && *s; s++) eb_put(b, *s == '|' ? "/" : *s == '\n' ? " " : s, 1);
}

/* AUROC, AUPRC, Brier and ECE as table cells' contents (the caller opens the first cell and
 * closes the last), or "insufficient" in each when there are too few rows of a class. */
void eval_text_cells(eval_buf *b, const eval_metrics *m, int html) {
    const char *sep = html ? "</td><td>" : " | ";
    if (eval_metrics_insufficient(m)) {
        eb_fmt(b, "insufficient (%zu with the outcome, %zu without)", m->pos, m->neg);
        for (int k = 1; k < 4; k++) eb_fmt(b, "%sinsufficient", sep);
        return;
    }
    const eval_ci *c[4] = {&m->auroc, &m->auprc, &m->brier, &m->ece};
    for (int k = 0; k < 4; k++) {
        if (k) eb_str(b, sep);
        eb_ci(b, c[k]);
        if (!isnan(c[k]->value) && isnan(c[k]->lo)) eb_str(b, " (no interval)");
    }
}

void eval_text_evidence(eval_buf *b, const eval_state *st, int html) {
    const task_counts *c = &st->counts[SPLIT_HELD_OUT];
    eb_fmt(b, "This evaluation rests on %zu held-out patient%s (%zu prediction time%s: %zu with the outcome, %zu without).",
           c->subjects, c->subjects == 1 ? "" : "s", c->rows, c->rows == 1 ? "" : "s", c->pos, c->neg);
    if (st->insufficient) {
        tag(b, html, " <strong>", " **");
        eb_fmt(b, "With fewer than %d prediction times with (or without) the outcome, no performance figure here is a "
                  "result: each reads \"insufficient\".", EVAL_MIN_POSITIVES);
        tag(b, html, "</strong>", "**");
        eb_str(b, " metrics.json keeps the numbers, marked insufficient, for checking only.");
    }
    if (!st->small) return;
    tag(b, html, " <strong>", " **");
    eb_str(b, "That is too few to judge any model");
    tag(b, html, "</strong>", "**");
    eb_fmt(b, ": the intervals are wide, a single patient can move a figure, and subgroup results are anecdotes. "
              "The whole data set holds %llu patients.",
           (unsigned long long)st->s.n_subjects);
}

void eval_text_overlap(eval_buf *b, const eval_state *st, int html) {
    const eval_model_info *m = &st->model;
    if (!m->overlap_allowed) return;
    tag(b, html, "<p class=\"red\">", "> **");
    eb_fmt(b, "NOT A VALIDATION: %zu of the %zu held-out patients were training or tuning patients of the model (%zu "
              "found by id, %zu by their record). Its figures measure memory, not prediction. This run was allowed "
              "with --allow-overlap.",
           m->overlap_patients, m->held_patients, m->overlap_by_id, m->overlap_by_record);
    tag(b, html, "</p>\n", "**\n\n");
}

void eb_time(eval_buf *b, int64_t t) {
    char tb[48];
    if (t == TIME_NULL) eb_str(b, "unknown");
    else eb_fmt(b, "%.10s", time_format_iso(t, tb, sizeof tb));
}

void eb_trained_on(eval_buf *b, const eval_model_info *mi, const char *identified) {
    eb_fmt(b, "%llu train and %llu tuning patients of a %sstore with data from ",
           (unsigned long long)mi->train_subjects, (unsigned long long)mi->tuning_subjects,
           mi->train_deidentified ? "de-identified " : identified);
    eb_time(b, mi->train_first);
    eb_str(b, " to ");
    eb_time(b, mi->train_last);
}

/* Follow-up and censoring in words, from the task and the labels. */
void eval_text_follow_up(eval_buf *b, const eval_state *st, int html) {
    const task_def *t = &st->task;
    const task_labels *l = &st->labels;
    if (l->has_follow_up) {
        eb_str(b, "Follow-up ends at death (the task's '");
        text(b, html, t->sets[t->death_set].name);
        eb_str(b, "' codes) or ");
        if (t->follow_end == TASK_FU_RECORD_END) {
            eb_str(b, "at the patient's last recorded event, whichever comes first.");
        } else {
            eb_str(b, t->follow_end == TASK_FU_DATE ? "at the stated data cut-off" : "at the end of the data");
            eb_str(b, " (");
            eb_time(b, l->data_end);
            eb_str(b, l->shifted_margin ? ", already moved back by twice the largest de-identification date shift, "
                                          "since each patient's own end is shifted; a record that goes on counts up to its "
                                          "last event)"
                                        : ")");
            eb_str(b, ", whichever comes first.");
        }
        eb_str(b, " An outcome seen by then makes a positive; a death first, inside the label window, is a competing "
                  "event, ");
        eb_str(b, t->competing == TASK_COMPETING_EXCLUDE ? "left out and counted"
                                                         : "kept as a negative and counted");
        eb_str(b, "; a prediction whose window outlasts follow-up is censored and counted.");
        if (l->target == TASK_TARGET_COMPETING)
            eb_str(b, " Here the competing event itself is the label (death before the outcome).");
    } else if (t->censor) {
        eb_str(b, "A negative needs the patient's record to reach the end of the label window (censor = yes): patients "
                  "who die, or leave, without the outcome are dropped, which favours those who come back.");
    } else {
        eb_str(b, "The task states no follow-up rule: the label window is read as recorded (for an episode such as a "
                  "hospital stay, the stay itself is the follow-up).");
    }
    if (t->lookback) {
        char lb[256];
        task_time tt = {.anchor = TASK_T_PREDICTION, .offset = t->lookback};
        task_time_str(&tt, lb, sizeof lb);
        eb_fmt(b, " A prediction needs %s of complete record before it", strchr(lb, '+') ? strchr(lb, '+') + 2 : lb);
        if (t->complete_set >= 0) {
            eb_str(b, " (complete from the first ");
            text(b, html, t->sets[t->complete_set].name);
            eb_str(b, " event)");
        }
        eb_str(b, ".");
    }
}

/* The alarms in a few sentences. */
void eval_text_alarms(eval_buf *b, const eval_state *st, int html) {
    const eval_leak *lk = &st->leak;
    if (st->probe >= 0) {
        const eval_pred_result *p = &st->res[st->probe];
        eb_str(b, "Record-position floor (a predictor that sees only when the record started, how long since its last "
                  "event and how dense it is): AUROC ");
        if (eval_metrics_insufficient(&p->overall)) eb_str(b, "insufficient");
        else eb_ci(b, &p->overall.auroc);
        eb_str(b, ". ");
        for (size_t i = 0; i < st->n_res; i++) {
            const eval_pred_result *r = &st->res[i];
            if (r->p->role != EVAL_ROLE_CANDIDATE || isnan(r->overall.auroc.value) || isnan(p->overall.auroc.value) ||
                eval_metrics_insufficient(&r->overall))
                continue;
            if (r->overall.auroc.value <= p->overall.auroc.value) {
                tag(b, html, "<strong>", "**");
                text(b, html, r->p->name);
                eb_str(b, " does not clear it");
                tag(b, html, "</strong>", "**");
                eb_str(b, ": its result may come from where predictions sit in the record. ");
            }
        }
    }
    if (lk->n_features && (lk->pos < 10 || lk->neg < 10)) {
        eb_fmt(b, "Too few labelled rows with (or without) the outcome (%zu with, %zu without, every split) for a "
                  "single feature's AUROC to mean anything: none is flagged. ", lk->pos, lk->neg);
    } else if (lk->n_features) {
        if (lk->n_flagged) {
            tag(b, html, "<strong>", "**");
            eb_fmt(b, "%zu single feature%s alone reach%s AUROC over %.1f or the best predictor's", lk->n_flagged,
                   lk->n_flagged == 1 ? "" : "s", lk->n_flagged == 1 ? "es" : "", lk->flag_auroc);
            tag(b, html, "</strong>", "**");
            eb_str(b, " (strongest: ");
            text(b, html, lk->top[0].name);
            eb_fmt(b, ", %.3f over all rows, ", lk->top[0].auroc);
            if (isnan(lk->top[0].auroc_held)) eb_str(b, "n/a held out");
            else eb_fmt(b, "%.3f held out", lk->top[0].auroc_held);
            eb_str(b, "): a leak, or a count that measures the record's window, until shown otherwise. ");
        } else {
            eb_fmt(b, "No single feature reaches AUROC %.1f or the best predictor's (%zu features checked). ", lk->flag_auroc,
                   lk->n_features);
        }
    }
    /* all history against a fixed lookback, for each baseline that has both */
    static const char *const pairs[][2] = {{"xgboost", "xgboost_365d"}, {"logreg", "logreg_365d"}};
    for (size_t k = 0; k < 2; k++) {
        const eval_pred_result *a = NULL, *c = NULL;
        for (size_t i = 0; i < st->n_res; i++) {
            if (!strcmp(st->res[i].p->name, pairs[k][0])) a = &st->res[i];
            if (!strcmp(st->res[i].p->name, pairs[k][1])) c = &st->res[i];
        }
        if (!a || !c || eval_metrics_insufficient(&a->overall)) continue;
        eb_fmt(b, "%s over all history ", pairs[k][0]);
        eb_ci(b, &a->overall.auroc);
        eb_str(b, ", over the last 365 days only ");
        eb_ci(b, &c->overall.auroc);
        eb_str(b, ". ");
    }
}
