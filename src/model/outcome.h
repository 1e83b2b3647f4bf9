/* What a zero-shot predictor looks for in sampled futures: a set of outcome tokens, the tokens
 * that close the window (the end of the episode, such as discharge), a polarity, and a window on
 * the generated clock (the sum of generated gap tokens' lower edges) anchored at the trigger, the
 * prediction time or the end of the observation gap.
 *
 * The model knows no tasks: an rt_outcome is filled from a task's label rule by the tasks'
 * translation (tasks/task_outcome.h), or read back from a task head file (rt_outcome_from_json). */
#ifndef CLINFM_MODEL_OUTCOME_H
#define CLINFM_MODEL_OUTCOME_H

#include <stdint.h>

#include <cjson/cJSON.h>

#include "model/runtime.h"
#include "util/err.h"

/* How the window ends. */
enum { RT_END_NONE = 0, RT_END_TRIGGER, RT_END_PREDICTION, RT_END_GAP_END, RT_END_EPISODE };

typedef struct {
    int expressible;        /* 0: no zero-shot prediction; why says what stands in the way */
    char why[512];
    int polarity;           /* 1: positive when an outcome token is reached; 0: when none is */
    int end_kind;           /* RT_END_*: TRIGGER..GAP_END = that time + end_offset */
    int64_t end_offset;     /* µs */
    int start_kind;         /* RT_END_TRIGGER..GAP_END: outcome tokens count after start + offset */
    int64_t start_offset;
    int64_t gap;            /* the task's observation gap, µs (for gap_end) */
    uint8_t *outcome;       /* (V) */
    uint8_t *terminal;      /* (V) tokens that close the window (the episode's end) */
    uint32_t n_outcome, n_terminal;
    uint32_t set_codes, set_codes_with_token; /* exact codes of the outcome set, and how many
                                                 have a token of their own */
} rt_outcome;

void rt_outcome_free(rt_outcome *o);
/* For one prediction: outcome tokens count once the generated clock (µs after last_time, the
 * prompt's last event) is at least *start_us, and the window closes past *budget_us
 * (INT64_MAX: no time limit). trigger may equal prediction when unknown. */
void rt_outcome_window(const rt_outcome *o, int64_t trigger, int64_t prediction, int64_t last_time,
                       int64_t *start_us, int64_t *budget_us);
/* A sentence on the translation ("outcome: 2 tokens ...; window: ..."), malloc'd. */
char *rt_outcome_describe(const rt_outcome *o, const vocab *v);

/* JSON form for task head files: token strings, polarity, window. */
cJSON *rt_outcome_to_json(const rt_outcome *o, const vocab *v);
int rt_outcome_from_json(rt_outcome *o, const rt_model *rm, const cJSON *j, const char *where, cf_err *err);

#endif
