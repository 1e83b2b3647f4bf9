/* From a task's label rule to what a zero-shot predictor looks for in sampled futures
 * (model/outcome.h): the task-to-token translation, kept beside the tasks so the model knows none.
 *
 * A task (src/tasks/task.h) says "positive when an event of code set S happens in a window after
 * the prediction time". The model speaks tokens, so the set becomes the vocabulary tokens whose
 * code strings satisfy S's predicate (exact codes, prefixes; a code encoded as a marker alone,
 * such as MEDS_DEATH, becomes its marker token), and the window becomes a time budget on the
 * generated clock (the sum of generated gap tokens' lower edges) or a closing token (the end of
 * the episode, such as discharge). Rules the translation handles:
 *
 *   any S in (A, B]            outcome = S's tokens; polarity "event"
 *   none S in (A, B]           outcome = S's tokens; polarity "no event" (risk = share without)
 *   episode_end > X (or >=)    outcome = the episode end set's tokens; polarity "no event"
 *   episode_end < X (or <=)    outcome = the episode end set's tokens; polarity "event"
 *
 * with A at or after the prediction time (trigger, prediction or gap_end plus an offset) and B
 * such an anchor plus an offset, episode_end (the end set's tokens close the window), or +inf.
 * Anything else (age rules, windows reaching into the history or ending at record_end, code sets
 * written as split ICD parts, sets without any token of their own because every code is rarer
 * than the vocabulary's threshold) cannot be expressed, and `why` says which. */
#ifndef CLINFM_TASKS_TASK_OUTCOME_H
#define CLINFM_TASKS_TASK_OUTCOME_H

#include "model/outcome.h"
#include "tasks/task.h"
#include "timeline/vocab.h"
#include "util/err.h"

/* The zero-shot translation of task t for a model with vocabulary v. CF_OK even when not
 * expressible (check o->expressible); errors are out-of-memory only. */
int task_outcome(rt_outcome *o, const vocab *v, const task_def *t, cf_err *err);

#endif
