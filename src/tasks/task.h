/* Clinical prediction tasks: definitions read from task files, and the labels they give.
 *
 * A task file (docs/TASKS.md; examples in the tasks folder) says, in text a clinical committee can
 * read, when a prediction is made and what counts as the outcome: named code sets, a trigger
 * (one candidate prediction per trigger event), an optional episode (the stay the trigger
 * opens, ended by a paired event such as discharge), the prediction time (trigger or episode
 * end plus an offset), an observation gap, exclusion rules, one label rule, the codes never used
 * as input, and the subgroup attributes to report.
 *
 * Labelling (task_label) walks each subject's events once per trigger. It may look at the whole
 * record, future included, because labels and exclusions are about the future; what a predictor
 * may see is fixed separately: every label_row carries history_end, and the events of the
 * subject before it are exactly those timed at or before the prediction time (static facts
 * included). Predictors and feature builders read only [subject start, history_end) and skip
 * codes for which task_input_allowed is false (codes whose coarse timing would leak the
 * outcome, such as a date-only death record). */
#ifndef CLINFM_TASKS_TASK_H
#define CLINFM_TASKS_TASK_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "store/store.h"
#include "timeline/split.h"
#include "util/err.h"

#define TASK_MAX_SUBGROUPS 8
#define TASK_MAX_BANDS 16

/* Anchors a time expression can start from. */
enum {
    TASK_T_NEG_INF = 0,
    TASK_T_POS_INF,
    TASK_T_TRIGGER,
    TASK_T_PREDICTION,
    TASK_T_GAP_END,
    TASK_T_EPISODE_END,
    TASK_T_RECORD_START,
    TASK_T_RECORD_END,
    TASK_T_BIRTH,
    TASK_T_COUNT
};

typedef struct {
    int anchor;     /* TASK_T_* */
    int64_t offset; /* µs added to the anchor */
} task_time;

/* Kinds of condition (the `when = ...` lines). */
enum { TASK_C_ANY = 0, TASK_C_NONE, TASK_C_TIME_CMP, TASK_C_AGE_CMP };
/* Comparison operators. */
enum { TASK_OP_LT = 0, TASK_OP_LE, TASK_OP_GT, TASK_OP_GE };

typedef struct {
    int kind;
    int set;                       /* code set index (ANY, NONE) */
    task_time from, to;            /* window (ANY, NONE) */
    int from_closed, to_closed;    /* '[' / ']' */
    task_time lhs, rhs;            /* TIME_CMP */
    int op;
    double age;                    /* AGE_CMP: age in years `op` age */
    int line;                      /* line in the task file */
    char *text;                    /* the condition as written */
} task_cond;

typedef struct {
    char *name;
    char *description;
    char **codes;     /* exact codes */
    size_t n_codes;
    char **prefixes;  /* code prefixes */
    size_t n_prefixes;
    int line;
} task_codeset;

enum { TASK_SG_PREFIX = 0, TASK_SG_AGE };
typedef struct {
    char *name;
    int kind;
    char *prefix;                 /* TASK_SG_PREFIX: value = rest of the latest matching code */
    double edges[TASK_MAX_BANDS]; /* TASK_SG_AGE: ascending band edges in years */
    size_t n_edges;
} task_subgroup;

enum { TASK_PAIR_RECORD = 0, TASK_PAIR_NEXT };
/* Where follow-up ends when no death comes first ([follow_up] end). */
enum { TASK_FU_NONE = 0, TASK_FU_DATA_END, TASK_FU_RECORD_END, TASK_FU_DATE };
/* What a competing death (before the outcome, inside the label window) makes of a row. */
enum { TASK_COMPETING_NEGATIVE = 0, TASK_COMPETING_EXCLUDE };
/* What happened in a row's label window. */
enum { TASK_EVENT_NONE = 0, TASK_EVENT_OUTCOME, TASK_EVENT_COMPETING };
/* Which event is the label (task_label_options.target). */
enum { TASK_TARGET_OUTCOME = 0, TASK_TARGET_COMPETING };
/* The largest whole-week date shift de-identification applies (deid/key.h: 1 to 52 weeks either
 * way): in a date-shifted store each subject's own data cut-off lies within this of the
 * store's, so follow-up to the data's end is only provable up to the store's last time minus
 * twice this. */
#define TASK_MAX_DATE_SHIFT_DAYS 364
#define TASK_MAX_THRESHOLDS 8
enum { TASK_SEL_ALL = 0, TASK_SEL_FIRST, TASK_SEL_LAST, TASK_SEL_RANDOM, TASK_SEL_SPACED };

typedef struct {
    char *path;
    char *name, *title, *description, *population, *outcome, *data, *birth_code;
    task_codeset *sets;
    size_t n_sets;
    int trigger_set;
    int episode_end_set; /* -1 without an episode */
    int episode_pair;    /* TASK_PAIR_* */
    task_time prediction;
    int64_t gap;         /* µs */
    int select;          /* TASK_SEL_* */
    int64_t spacing;     /* µs, TASK_SEL_SPACED */
    task_cond *exclude;
    size_t n_exclude;
    task_cond label;
    int censor;          /* drop rows whose outcome did not happen and whose record ends first */
    /* [follow_up]: follow-up ends at the first death_set event or at end, whichever comes first;
     * a death inside the label window before the outcome is a competing event. */
    int death_set;       /* -1: no [follow_up] */
    int follow_end;      /* TASK_FU_* */
    int64_t follow_date; /* TASK_FU_DATE: the stated data cut-off (µs) */
    int competing;       /* TASK_COMPETING_* */
    /* [record]: a prediction needs lookback of complete record before it, the record counting as
     * complete from the first event of complete_set (-1: from record_start). */
    int complete_set;
    int64_t lookback;    /* µs; 0: no requirement */
    /* [report] thresholds: risk thresholds at which sensitivity, PPV ... are reported */
    double thresholds[TASK_MAX_THRESHOLDS];
    size_t n_thresholds;
    int *never_input;    /* code set indices never used as input */
    size_t n_never_input;
    task_subgroup subgroups[TASK_MAX_SUBGROUPS];
    size_t n_subgroups;
} task_def;

/* Parses a task file; errors name the file, the line and what was expected. */
int task_load(task_def *t, const char *path, cf_err *err);
/* The same from text in memory (path is used in messages only). */
int task_parse(task_def *t, const char *path, const char *text, size_t len, cf_err *err);
void task_free(task_def *t);
/* Writes a time expression ("trigger + 24h") into buf; returns buf. */
char *task_time_str(const task_time *tt, char *buf, size_t cap);

/* ---------------------------------------------------------------- labels */

/* One prediction: MEDS label (subject_id, prediction_time, boolean_value) plus what evaluation
 * needs. Events [s->subject_start[subject_index], history_end) are the usable input. */
typedef struct {
    int64_t subject_id;
    uint64_t subject_index;
    int64_t prediction_time;
    int64_t trigger_time;
    uint64_t history_end;
    uint8_t label;
    uint8_t event;                        /* TASK_EVENT_*: what the label window held */
    uint8_t split;                        /* SPLIT_* */
    uint16_t group[TASK_MAX_SUBGROUPS];   /* value index per subgroup; 0 = unknown */
} label_row;

typedef struct {
    char *reason; /* the exclusion rule as written, or a built-in reason */
    uint64_t count;
} task_exclusion;

typedef struct {
    label_row *rows;
    size_t n;
    uint64_t n_triggers;          /* trigger events considered */
    task_exclusion *excluded;     /* per rule, in the order they apply */
    size_t n_excluded;
    size_t n_subgroups;
    char *subgroup_names[TASK_MAX_SUBGROUPS];
    char **values[TASK_MAX_SUBGROUPS]; /* value strings; values[g][0] = "unknown" */
    size_t n_values[TASK_MAX_SUBGROUPS];
    uint8_t *input_ok;            /* per store code: 1 when usable as input */
    int64_t birth_code;           /* store code id of the task's birth code, or -1 */
    int target;                   /* TASK_TARGET_*: which event the labels are */
    int has_follow_up;            /* the task has [follow_up]: rows carry competing events */
    int64_t data_end;             /* follow-up end TASK_FU_DATA_END / _DATE used (before the
                                     per-record bound), TIME_NULL when not used */
    int shifted_margin;           /* data_end was pulled back for a date-shifted store */
} task_labels;

typedef struct {
    split_config split;
    uint64_t seed;                /* for select = random */
    int target;                   /* TASK_TARGET_OUTCOME (default) or _COMPETING: a row's label is
                                     then whether death came first (the competing event as a task) */
} task_label_options;

/* Labels every subject of s. Rows are ordered by subject, then prediction time. */
int task_label(const task_def *t, const store *s, const task_label_options *opt,
               task_labels *out, cf_err *err);
void task_labels_free(task_labels *l);
/* 1 when events with code c may be used as input under this task. */
static inline int task_input_allowed(const task_labels *l, uint32_t c) { return l->input_ok[c]; }

/* Counts over rows (all splits when split < 0). */
typedef struct {
    size_t rows, pos, neg, subjects;
    size_t competing;             /* rows whose label window held a competing death */
} task_counts;
task_counts task_count_rows(const label_row *rows, size_t n, int split);

/* Writes the labels as CSV, atomically: subject_id,prediction_time,boolean_value,split, then
 * competing_event (true/false) when the task has [follow_up], then one column per subgroup.
 * split < 0 writes every split. */
int task_write_labels_csv(const task_labels *l, const char *path, int split, cf_err *err);
/* Prints the cohort flow: trigger events, what each rule excluded, rows per split. */
void task_print_summary(FILE *f, const task_def *t, const task_labels *l);

#endif
