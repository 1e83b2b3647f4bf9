/* Mapping files: how a hospital tells clinfm to turn its own tables into events, without C.
 *
 * A mapping file is line-oriented, with [sections] and `key = value` lines ('#' starts a comment).
 * The full grammar with examples is in docs/MAPPING.md; in short:
 *
 *   [mapping]               name, description
 *   [dictionary NAME]       file, key (a template), columns (comma list), optional (yes|no),
 *                           where (conditions on its own columns) -- a lookup table
 *   [table NAME]            file, subject (column), subject_type (int|string),
 *                           join = DICT [as ALIAS] on TEMPLATE, join_optional = (same)
 *   [event TABLE/NAME]      code (template, required), time (template; absent = static fact),
 *                           time_format, numeric (template), numeric_invalid (reject|text|ignore),
 *                           text (template), text_if_no_numeric (yes|no), description (template),
 *                           empty (what an empty {field} becomes in code; default UNK),
 *                           where (condition; repeatable, all must hold)
 *
 * Templates mix literal text with {fields}: `LAB//{itemid}//{valueuom}`. A field is a column of the
 * table or DICT.column of a joined dictionary; `{a,b}` takes the first non-empty; filters follow
 * with '|': trim, upper, lower, map:DICT, split:SEP:INDEX, minus:COL|INT, plus:COL|INT.
 * Conditions: `col == v`, `col != v`, `col is empty`, `col is not empty`, `col in (a, b)`,
 * `col not in (a, b)`, `col in DICT`, `col not in DICT`; values may be quoted with "".
 *
 * File paths are relative to the --input directory, or to the mapping file's own directory when
 * written as `${mapping}/...`. Every error names the mapping file, its line and key. */
#ifndef CLINFM_INGEST_MAPPING_H
#define CLINFM_INGEST_MAPPING_H

#include <stddef.h>

#include "util/err.h"

enum tpl_filter_kind { TF_TRIM, TF_UPPER, TF_LOWER, TF_MAP, TF_SPLIT, TF_MINUS, TF_PLUS };

typedef struct {
    int kind;
    char *name;      /* dictionary name (map), column name or NULL (minus/plus) */
    long long num;   /* integer operand (minus/plus) or split index */
    char sep;        /* split separator */
    int col;         /* bound column for minus/plus, -1 if a literal */
    int dict;        /* bound dictionary index for map */
} tpl_filter;

typedef struct {
    char *dict_name; /* NULL for a column of the table itself */
    char *col_name;
    int join;        /* bound: index into the table's joins, or -1 */
    int col;         /* bound: column index in the table or in the dictionary's value columns */
    tpl_filter *filters;
    size_t n_filters;
} tpl_ref;

typedef struct {
    char *literal;   /* text before the field (may be "") */
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
               COND_IN_DICT, COND_NOT_IN_DICT };

typedef struct {
    tpl lhs;
    int op;
    char **values;
    size_t n_values;
    char *dict_name;
    int dict;
    int line;
} cond;

typedef struct {
    char *name;      /* "TABLE/NAME" */
    int line;
    tpl code, time, numeric, text, description;
    int has_time, has_numeric, has_text, has_description;
    char *time_format; /* NULL: ISO 8601 */
    int numeric_invalid; /* 0 reject, 1 text, 2 ignore */
    int text_if_no_numeric;
    char *empty;
    cond *where;
    size_t n_where;
} event_spec;

typedef struct {
    char *dict_name;
    char *alias;     /* the name templates use ({alias.column}); the dictionary name by default */
    int dict;        /* bound index into mapping.dicts */
    int optional;    /* 1: a miss leaves the fields empty instead of rejecting the row */
    tpl key;
    int line;
} join_spec;

typedef struct {
    char *name;
    char *file;
    int line;
    char *subject_col;
    int subject_is_string;
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
    int optional;    /* 1: a missing file is an empty dictionary, not an error */
    cond *where;     /* rows kept only when all hold */
    size_t n_where;
} dict_spec;

typedef struct {
    char *path;      /* the mapping file */
    char *dir;       /* its directory, for ${mapping} */
    char *name, *description;
    dict_spec *dicts;
    size_t n_dicts;
    table_spec *tables;
    size_t n_tables;
} mapping;

/* Parses a mapping file. On error, err names path:line and the key. */
int mapping_load(mapping *m, const char *path, cf_err *err);
void mapping_free(mapping *m);
/* Resolves a file path from the mapping against the input directory. */
void mapping_resolve_path(const mapping *m, const char *input_dir, const char *file, char *out, size_t cap);
/* Parses a template (exposed for tests). */
int tpl_parse(tpl *t, const char *text, const char *where, int line, cf_err *err);
void tpl_free(tpl *t);

#endif
