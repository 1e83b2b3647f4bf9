/* Mapping files: how a hospital tells clinfm to turn its own tables into events, without C.
 *
 * A mapping file is line-oriented, with [sections] and `key = value` lines ('#' starts a comment).
 * The full grammar with worked examples is in docs/MAPPING.md; in short:
 *
 *   [mapping]               name, description, version, input (default --input)
 *   [variables]             NAME = default value; `${NAME}` in later values; --var NAME=VALUE
 *   [dictionary NAME]       file, key (a template), columns (comma list), optional (yes|no),
 *                           separator, where (conditions on its own columns) -- a lookup table
 *   [table NAME]            file (a path, or a pattern with * or ? naming a folder of files),
 *                           subject (template), subject_type (int|string), subject_from
 *                           (condition), separator, missing (values read as empty), optional,
 *                           may_be_empty, join = DICT [as ALIAS] on TEMPLATE, join_optional
 *   [event TABLE/NAME]      code (template, required), time (template; absent = static fact),
 *                           time_format, time_offset (unit) with time_anchor (time or template),
 *                           anchor_format, date_only (start|end), time_not_after (template),
 *                           numeric, numeric_invalid (reject|text|ignore), text,
 *                           text_if_no_numeric (yes|no), description, empty (default UNK),
 *                           missing, unpivot (columns), once (first|last per TEMPLATE),
 *                           may_be_empty, where (condition; repeatable, all must hold)
 *
 * Templates mix literal text with {fields}: `LAB//{itemid}//{valueuom}`. A field is a column of the
 * table, DICT.column of a joined dictionary, `const:TEXT`, or one of the reserved names _file (the
 * file's name without folder and extension), _column and _value (in an unpivot event); `{a,b}`
 * takes the first non-empty; filters follow with '|' and apply to every alternative not written in
 * parentheses ({a,(b|date)}): trim, upper, lower, date, map:DICT[.column], split:SEP:INDEX, replace:OLD:NEW, minus:X, plus:X, times:X, div:X (X a number, a
 * column or DICT.column). Conditions: a template (or a column name), then ==, !=, <, <=, >, >=
 * (numbers), is empty, is not empty, in (a, "b, c"), not in (...), in DICT, not in DICT,
 * starts with X, not starts with X, matches REGEX, not matches REGEX (PCRE2).
 *
 * File paths are relative to the --input directory; `${mapping}/...` is relative to the mapping
 * file's own directory and `${data}/...` to the external data directory. Every error names the
 * mapping file, its line and key. */
#ifndef CLINFM_INGEST_MAPPING_H
#define CLINFM_INGEST_MAPPING_H

#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

/* Bound positions of a template field other than a column index (>= 0). */
#define TPL_COL_UNBOUND (-1)
#define TPL_COL_FILE (-2)   /* {_file} */
#define TPL_COL_NAME (-3)   /* {_column}: the unpivoted column's name */
#define TPL_COL_VALUE (-4)  /* {_value}: the unpivoted column's value */
#define TPL_COL_CONST (-5)  /* {const:TEXT} */

enum tpl_filter_kind { TF_TRIM, TF_UPPER, TF_LOWER, TF_DATE, TF_MAP, TF_SPLIT, TF_MINUS, TF_PLUS, TF_TIMES, TF_DIV,
                       TF_REPLACE };

typedef struct {
    int kind;
    char *name;      /* map: dictionary name; arithmetic: operand column (NULL for a number) */
    char *column;    /* map:DICT.column: the value column (NULL: the dictionary's first) */
    char *alias;     /* arithmetic: the operand's joined dictionary ({DICT.column}), or NULL */
    char *from, *to; /* replace */
    double num;      /* arithmetic: number operand */
    long long inum;  /* arithmetic: the same when it is an integer (num_is_int); split: the index */
    int num_is_int;
    char sep;        /* split separator */
    int col;         /* bound: operand column (or join value column), -1 if a number */
    int join;        /* bound: operand join index, or -1 for a column of the table */
    int dict;        /* bound: dictionary index for map */
    int value_col;   /* bound: map's value column index */
} tpl_filter;

typedef struct {
    char *dict_name; /* NULL for a column of the table itself */
    char *col_name;
    char *const_val; /* {const:TEXT}: the text (col is TPL_COL_CONST) */
    int join;        /* bound: index into the table's joins, or -1 */
    int col;         /* bound: column index in the table or the dictionary's value columns, or TPL_COL_* */
    tpl_filter *filters;
    size_t n_filters;
} tpl_ref;

typedef struct {
    char *literal;   /* text before the field (may be "") */
    size_t literal_len;
    tpl_ref *alts;   /* first non-empty wins; n_alts == 0 for a trailing literal */
    size_t n_alts;
} tpl_part;

typedef struct {
    tpl_part *parts;
    size_t n_parts;
    char *source;    /* as written, for messages */
    int line;
} tpl;

enum cond_op { COND_EQ, COND_NE, COND_EMPTY, COND_NOT_EMPTY, COND_IN_SET, COND_NOT_IN_SET,
               COND_IN_DICT, COND_NOT_IN_DICT, COND_LT, COND_LE, COND_GT, COND_GE,
               COND_PREFIX, COND_NOT_PREFIX, COND_MATCH, COND_NOT_MATCH };

typedef struct {
    tpl lhs;
    int op;
    char **values;
    size_t n_values;
    double number;   /* <, <=, >, >= */
    char *dict_name;
    int dict;
    void *re;        /* matches: pcre2_code_8 */
    void *re_match;  /* its match data; a condition is evaluated by one thread at a time */
    int line;
} cond;

/* time_offset units: the time template gives an offset from time_anchor. */
enum { OFFSET_NONE, OFFSET_SECONDS, OFFSET_MILLISECONDS, OFFSET_MINUTES, OFFSET_HOURS, OFFSET_DAYS,
       OFFSET_WEEKS, OFFSET_YEARS, OFFSET_HHMM, OFFSET_EPOCH };

/* `once`: one event per group of rows sharing a key. */
enum { ONCE_ALL, ONCE_FIRST, ONCE_LAST };

typedef struct {
    char *first, *last; /* one column (last NULL) or a range of the header, first .. last */
} unpivot_item;

typedef struct {
    char *name;      /* "TABLE/NAME" */
    int line;
    tpl code, time, numeric, text, description;
    int has_time, has_numeric, has_text, has_description;
    char *time_format;  /* NULL: ISO 8601 */
    int format_date_only; /* time_format has no hour: its values are dates */
    int offset;         /* OFFSET_*: the time is an offset from the anchor */
    tpl anchor;         /* time_anchor as a template (when it has fields) */
    int has_anchor, anchor_is_const;
    int64_t anchor_const; /* time_anchor as a constant time */
    char *anchor_format;  /* NULL: ISO 8601 */
    int date_only_end;  /* dates (and whole-day offsets) at the end of their day, not its start */
    tpl not_after;      /* time_not_after: the latest time the event may have */
    int has_not_after;
    int numeric_invalid; /* 0 reject, 1 text, 2 ignore */
    int text_if_no_numeric;
    char *empty;
    char **missing;     /* values read as empty in this event's fields (NULL: the table's) */
    size_t n_missing;
    int has_missing;
    unpivot_item *unpivot; /* one event per listed column */
    size_t n_unpivot;
    int once;           /* ONCE_* */
    tpl once_key;
    int may_be_empty;   /* yes: every row rejected is not a failure */
    cond *where;
    size_t n_where;
} event_spec;

typedef struct {
    char *dict_name;
    char *alias;     /* the name templates use ({alias.column}); the dictionary name by default */
    int dict;        /* bound index into mapping.dicts */
    int optional;    /* 1: a miss leaves the fields empty instead of failing the events that use them */
    tpl key;
    int line;
} join_spec;

typedef struct {
    char *name;
    char *file;
    int line;
    tpl subject;     /* a template; a bare column name is {column} */
    int subject_is_string;
    cond *subject_from; /* the subject is read from the first row of each file where this holds */
    char sep;        /* field separator, ',' by default */
    char **missing;  /* values read as empty in every field of this table */
    size_t n_missing;
    int optional;    /* a missing file (or a pattern matching none) is an empty table */
    int may_be_empty;
    join_spec *joins;
    size_t n_joins;
    event_spec *events;
    size_t n_events;
} table_spec;

typedef struct {
    char *name;
    char *file;
    int line;
    tpl key;
    char **columns;
    size_t n_columns;
    char sep;
    int optional;    /* 1: a missing file is an empty dictionary, not an error */
    cond *where;     /* rows kept only when all hold */
    size_t n_where;
} dict_spec;

typedef struct {
    char *path;      /* the mapping file */
    char *dir;       /* its directory, for ${mapping} */
    char *name, *description;
    char *default_input; /* [mapping] input: used when --input is not given */
    char **var_names, **var_values;
    size_t n_vars;
    dict_spec *dicts;
    size_t n_dicts;
    table_spec *tables;
    size_t n_tables;
} mapping;

/* Parses a mapping file. On error, err names path:line and the key. */
int mapping_load(mapping *m, const char *path, cf_err *err);
/* The same, with variable values given as "NAME=VALUE" strings (clinfm ingest --var), which
 * replace the defaults of the [variables] section; a name the mapping does not declare is an
 * error. */
int mapping_load_vars(mapping *m, const char *path, char *const *vars, size_t n_vars, cf_err *err);
void mapping_free(mapping *m);
/* Resolves a file path from the mapping against the input directory. */
void mapping_resolve_path(const mapping *m, const char *input_dir, const char *file, char *out, size_t cap);
/* The files a `file =` value names: one path, or every file matching a pattern (*, ?, [...]), in
 * sorted order. *out is a malloc'd array of malloc'd paths (free with mapping_files_free). A
 * missing file or a pattern matching nothing gives *n = 0 when optional, else an error. */
int mapping_files(const mapping *m, const char *input_dir, const char *file, int optional, char ***out,
                  size_t *n, cf_err *err);
void mapping_files_free(char **files, size_t n);
/* Parses a template (exposed for tests). */
int tpl_parse(tpl *t, const char *text, const char *where, int line, cf_err *err);
void tpl_free(tpl *t);

#endif
