/* Auxiliary tasks of end-to-end fine-tuning (`clinfm eval --ft-aux-task`): other labels of the
 * same prompts, each trained by a head of its own beside the task's (docs/TASKS.md, "Auxiliary
 * tasks"; docs/P12.md, session 11). An auxiliary label is only of use, and only safe, on the
 * main task's very prompts: a row whose history ended elsewhere, or that let other codes in,
 * would train the shared body on inputs the task never sees. So it is checked here, by the task
 * files and row by row, and a difference is refused rather than mended. */
#include <math.h>
#include <string.h>

#include "eval/eval.h"

/* Whether two code sets name the same codes and prefixes (as sets: the order may differ). */
static int same_list(char *const *a, size_t na, char *const *b, size_t nb) {
    if (na != nb) return 0;
    for (size_t i = 0; i < na; i++) {
        size_t j = 0;
        while (j < nb && strcmp(a[i], b[j])) j++;
        if (j == nb) return 0;
    }
    return 1;
}

static int same_set(const task_codeset *a, const task_codeset *b) {
    return same_list(a->codes, a->n_codes, b->codes, b->n_codes) &&
           same_list(a->prefixes, a->n_prefixes, b->prefixes, b->n_prefixes);
}

static int row_before(const label_row *r, uint64_t subject, int64_t t) {
    return r->subject_index < subject || (r->subject_index == subject && r->prediction_time < t);
}

/* The row of al at (subject, prediction time), or NULL; al's rows are in that order. */
static const label_row *find_row(const task_labels *al, uint64_t subject, int64_t t) {
    size_t lo = 0, hi = al->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (row_before(&al->rows[mid], subject, t)) lo = mid + 1;
        else hi = mid;
    }
    return lo < al->n && al->rows[lo].subject_index == subject && al->rows[lo].prediction_time == t ? &al->rows[lo]
                                                                                                    : NULL;
}

int eval_aux_check(const store *s, const task_def *mt, const task_labels *ml, const task_def *aux,
                   const task_labels *al, cf_err *err) {
    char a[64], b[64];
    if (!same_set(&mt->sets[mt->trigger_set], &aux->sets[aux->trigger_set]))
        return cf_fail(err, CF_EINPUT, "auxiliary task %s: its trigger codes differ from task %s's; an auxiliary task "
                       "must have the task's prompts (the same [trigger] codes and prediction time)", aux->name, mt->name);
    if (mt->prediction.anchor != aux->prediction.anchor || mt->prediction.offset != aux->prediction.offset)
        return cf_fail(err, CF_EINPUT, "auxiliary task %s: its prediction time (%s) differs from task %s's (%s); an "
                       "auxiliary task must have the task's prompts", aux->name,
                       task_time_str(&aux->prediction, a, sizeof a), mt->name,
                       task_time_str(&mt->prediction, b, sizeof b));
    for (uint64_t c = 0; c < s->n_codes; c++)
        if (ml->input_ok[c] != al->input_ok[c])
            return cf_fail(err, CF_EINPUT, "auxiliary task %s: its [input] never leaves out other codes than task %s's; "
                           "give it the same [input] never, so its prompts are the task's", aux->name, mt->name);
    for (size_t i = 1; i < al->n; i++)
        if (row_before(&al->rows[i], al->rows[i - 1].subject_index, al->rows[i - 1].prediction_time))
            return cf_fail(err, CF_EINTERNAL, "auxiliary task %s: labels out of order", aux->name);
    size_t shared = 0;
    for (size_t i = 0; i < ml->n; i++) {
        const label_row *r = &ml->rows[i], *x = find_row(al, r->subject_index, r->prediction_time);
        if (!x) continue;
        if (x->trigger_time != r->trigger_time || x->history_end != r->history_end)
            return cf_fail(err, CF_EINPUT, "auxiliary task %s: row %zu of task %s (same subject and prediction time) has "
                           "another %s there; an auxiliary task must have the task's prompts", aux->name, i, mt->name,
                           x->trigger_time != r->trigger_time ? "trigger" : "history");
        shared += r->split == SPLIT_TRAIN;
    }
    if (!shared)
        return cf_fail(err, CF_EINPUT, "auxiliary task %s labels none of task %s's train rows: nothing to learn from it",
                       aux->name, mt->name);
    return CF_OK;
}

void eval_aux_column(const task_labels *al, const label_row *rows, size_t n, float *y, size_t stride) {
    for (size_t i = 0; i < n; i++) {
        const label_row *x = find_row(al, rows[i].subject_index, rows[i].prediction_time);
        y[i * stride] = x ? (x->label ? 1.0f : 0.0f) : NAN;
    }
}
