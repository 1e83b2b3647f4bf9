/* The mapped-CSV engine; see mapped_csv.h.
 *
 * Dictionaries are loaded whole into memory first (they are lookup tables: item definitions,
 * code maps, one row per admission). Tables then stream through the CSV reader one record at a
 * time; a table may be one file or a folder of files (one per subject, say), read in sorted
 * order. Templates were parsed with the mapping; here they are bound to column positions once per
 * file, so evaluating a row touches no strings but the row's own fields.
 *
 * Each event of a row is built on its own: one that fails (an unparsable time, a join without a
 * match) is counted as a rejection with its reason, and the row's other events are kept. */
#include "ingest/mapped_csv.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <pcre2.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ingest/csv.h"
#include "util/ids.h"
#include "util/progress.h"
#include "util/sbuf.h"
#include "util/strmap.h"

/* A loaded dictionary: key -> one row of value columns. */
typedef struct {
    strmap keys;           /* key string -> row id */
    sbuf values;           /* all values, NUL-separated */
    uint64_t *value_off;   /* (rows * n_columns) offsets into values */
    size_t rows, n_columns;
    uint64_t duplicates;
} dict_rt;

static const char *dict_value(const dict_rt *d, int64_t row, size_t col, size_t *len) {
    uint64_t off = d->value_off[(size_t)row * d->n_columns + col];
    const char *s = d->values.p + off;
    *len = strlen(s);
    return s;
}

/* Everything a template needs to evaluate against the current row. */
typedef struct {
    char **fields;
    const size_t *lens;
    size_t nfields;
    const dict_rt *dicts;
    const join_spec *joins;
    const int64_t *join_row;  /* per join: matched dictionary row or -1 */
    const char *file_stem;    /* {_file} */
    size_t file_stem_len;
    const char *col_name;     /* {_column}, {_value}: the unpivoted column */
    size_t col_name_len;
    const char *col_value;
    size_t col_value_len;
    char *const *missing;     /* values read as empty */
    size_t n_missing;
    sbuf alt[2];              /* filter outputs; a filter writes to the one its input is not in */
    const char *reason;       /* set on evaluation failure */
    char reason_buf[256];
} row_ctx;

static void ctx_free(row_ctx *c) {
    free(c->alt[0].p);
    free(c->alt[1].p);
}

/* ------------------------------------------------------------- binding */

/* Exact match first; then, if exactly one header matches ignoring case, that one (OMOP exports
 * come with upper- or lower-case headers, and one mapping should read both). */
static int find_col(char **header, size_t n, const char *name) {
    int found = -1, nci = 0;
    for (size_t i = 0; i < n; i++) {
        if (!strcmp(header[i], name)) return (int)i;
        if (!strcasecmp(header[i], name)) found = (int)i, nci++;
    }
    return nci == 1 ? found : -1;
}

/* Binds a dictionary column named col of the join called alias; returns CF_OK and *join, *col. */
static int bind_join_col(const char *alias, const char *col, const join_spec *joins, size_t n_joins, const mapping *m,
                         int line, int *join, int *ci, cf_err *err) {
    *join = -1;
    for (size_t j = 0; j < n_joins; j++)
        if (!strcmp(joins[j].alias, alias)) *join = (int)j;
    if (*join < 0) return cf_fail(err, CF_EINPUT, "%s:%d: dictionary '%s' is not joined here", m->path, line, alias);
    const dict_spec *d = &m->dicts[joins[*join].dict];
    *ci = -1;
    for (size_t c = 0; c < d->n_columns; c++)
        if (!strcmp(d->columns[c], col)) *ci = (int)c;
    if (*ci < 0)
        return cf_fail(err, CF_EINPUT, "%s:%d: '{%s.%s}': column '%s' is not among [dictionary %s] columns", m->path, line,
                       alias, col, col, joins[*join].dict_name);
    return CF_OK;
}

/* Binds a template's column references to positions in header (for this file) and to joins.
 * unpivot: whether {_column} and {_value} are defined (an event with `unpivot`). */
static int bind_tpl(tpl *t, char **header, size_t nh, const join_spec *joins, size_t n_joins, const mapping *m,
                    const char *file, int unpivot, cf_err *err) {
    for (size_t i = 0; i < t->n_parts; i++)
        for (size_t a = 0; a < t->parts[i].n_alts; a++) {
            tpl_ref *r = &t->parts[i].alts[a];
            if (r->const_val) {
                r->col = TPL_COL_CONST;
            } else if (r->dict_name) {
                int rc = bind_join_col(r->dict_name, r->col_name, joins, n_joins, m, t->line, &r->join, &r->col, err);
                if (rc) return rc;
            } else if (!strcmp(r->col_name, "_file")) {
                r->col = TPL_COL_FILE;
            } else if (!strcmp(r->col_name, "_column") || !strcmp(r->col_name, "_value")) {
                if (!unpivot)
                    return cf_fail(err, CF_EINPUT, "%s:%d: {%s} is defined only in an event with `unpivot =`", m->path,
                                   t->line, r->col_name);
                r->col = r->col_name[1] == 'c' ? TPL_COL_NAME : TPL_COL_VALUE;
            } else {
                r->col = find_col(header, nh, r->col_name);
                if (r->col < 0)
                    return cf_fail(err, CF_EINPUT, "%s:%d: column '%s' is not in the header of %s", m->path, t->line,
                                   r->col_name, file);
            }
            for (size_t f = 0; f < r->n_filters; f++) {
                tpl_filter *fl = &r->filters[f];
                if (fl->kind >= TF_MINUS && fl->kind <= TF_DIV && fl->name) {
                    if (fl->alias) {
                        int rc = bind_join_col(fl->alias, fl->name, joins, n_joins, m, t->line, &fl->join, &fl->col, err);
                        if (rc) return rc;
                    } else {
                        fl->join = -1;
                        fl->col = find_col(header, nh, fl->name);
                        if (fl->col < 0)
                            return cf_fail(err, CF_EINPUT, "%s:%d: column '%s' (an operand of a filter) is not in the "
                                           "header of %s", m->path, t->line, fl->name, file);
                    }
                }
                if (fl->kind == TF_MAP) {
                    fl->dict = -1;
                    fl->value_col = 0;
                    for (size_t d = 0; d < m->n_dicts; d++)
                        if (!strcmp(m->dicts[d].name, fl->name)) fl->dict = (int)d;
                    for (size_t vc = 0; fl->column && fl->dict >= 0 && vc < m->dicts[fl->dict].n_columns; vc++)
                        if (!strcmp(m->dicts[fl->dict].columns[vc], fl->column)) fl->value_col = (int)vc;
                }
            }
        }
    return CF_OK;
}

/* ------------------------------------------------------------- evaluation */

static int fail_reason(row_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail_reason(row_ctx *c, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->reason_buf, sizeof c->reason_buf, fmt, ap);
    va_end(ap);
    c->reason = c->reason_buf;
    return -1;
}

/* Drops the white space around the span s[0, n). */
static void trim_span(const char **s, size_t *n) {
    while (*n && isspace((unsigned char)**s)) (*s)++, (*n)--;
    while (*n && isspace((unsigned char)(*s)[*n - 1])) (*n)--;
}

/* The trimmed span as a C string in buf (cap bytes) for strtoll/strtod; -1 when it is empty or too
 * long to be a number. */
static int number_cstr(const char *s, size_t n, char *buf, size_t cap) {
    trim_span(&s, &n);
    if (!n || n >= cap) return -1;
    memcpy(buf, s, n);
    buf[n] = '\0';
    return 0;
}

static int parse_ll(const char *s, size_t n, long long *out) {
    char buf[32], *end;
    if (number_cstr(s, n, buf, sizeof buf)) return -1;
    errno = 0;
    long long v = strtoll(buf, &end, 10);
    if (errno || *end) return -1;
    *out = v;
    return 0;
}

/* A finite decimal number (surrounding spaces allowed). */
static int parse_double(const char *s, size_t n, double *out) {
    char buf[64], *end;
    if (number_cstr(s, n, buf, sizeof buf)) return -1;
    errno = 0;
    double v = strtod(buf, &end);
    if (errno == ERANGE || *end || !isfinite(v)) return -1;
    *out = v;
    return 0;
}

static int is_missing(const row_ctx *c, const char *s, size_t n) {
    trim_span(&s, &n);
    for (size_t i = 0; i < c->n_missing; i++)
        if (c->missing[i][0] == s[0] && !strncmp(c->missing[i], s, n) && c->missing[i][n] == '\0') return 1;
    return 0;
}

/* The value of a column or of a joined dictionary's column, with missing markers read as empty. */
static int column_value(row_ctx *c, int join, int col, const char *dict_name, const char **s, size_t *n) {
    if (join >= 0) {
        int64_t row = c->join_row[join];
        if (row < 0 && !c->joins[join].optional)
            return fail_reason(c, "no row in dictionary '%s' matches this row's join key", dict_name);
        if (row < 0) {
            *s = "";
            *n = 0;
            return 0;
        }
        *s = dict_value(&c->dicts[c->joins[join].dict], row, (size_t)col, n);
    } else {
        *s = c->fields[col];
        *n = c->lens[col];
    }
    if (c->n_missing && *n && is_missing(c, *s, *n)) *n = 0, *s = "";
    return 0;
}

/* The buffer a filter writes to: the one of the two that s does not point into. */
static sbuf *out_buf(row_ctx *c, const char *s) {
    sbuf *b = &c->alt[0];
    if (b->p && s >= b->p && s < b->p + b->cap) b = &c->alt[1];
    sbuf_clear(b);
    return b;
}

static int arith(const tpl_filter *fl, const tpl_ref *r, row_ctx *c, const char **s, size_t *n) {
    static const char *names[] = {"minus", "plus", "times", "div"};
    const char *fname = names[fl->kind - TF_MINUS];
    if (!*n) return 0; /* empty (unknown) stays empty */
    const char *os = NULL;
    size_t on = 0;
    if (fl->col >= 0) {
        if (column_value(c, fl->join, fl->col, fl->alias, &os, &on)) return -1;
        if (!on) { /* an unknown operand makes the result unknown */
            *s = "";
            *n = 0;
            return 0;
        }
    }
    long long a, b = fl->inum;
    char num[48];
    int k;
    int ints = !parse_ll(*s, *n, &a) && (os ? !parse_ll(os, on, &b) : fl->num_is_int) && fl->kind != TF_DIV;
    if (ints && !(fl->kind == TF_TIMES && (a > 3037000499LL || a < -3037000499LL || b > 3037000499LL || b < -3037000499LL))) {
        long long v = fl->kind == TF_MINUS ? a - b : fl->kind == TF_PLUS ? a + b : a * b;
        k = snprintf(num, sizeof num, "%lld", v);
    } else {
        double x, y = fl->num;
        if (parse_double(*s, *n, &x))
            return fail_reason(c, "'%s' is not a number (needed by %s)", r->col_name ? r->col_name : "const", fname);
        if (os && parse_double(os, on, &y)) return fail_reason(c, "'%s' is not a number (needed by %s)", fl->name, fname);
        if (fl->kind == TF_DIV && y == 0) return fail_reason(c, "division by zero (div:%s)", fl->name ? fl->name : "0");
        double v = fl->kind == TF_MINUS ? x - y : fl->kind == TF_PLUS ? x + y : fl->kind == TF_TIMES ? x * y : x / y;
        k = snprintf(num, sizeof num, "%.15g", v);
    }
    sbuf *o = out_buf(c, *s);
    if (sbuf_put(o, num, (size_t)k)) return fail_reason(c, "out of memory");
    *s = o->p;
    *n = (size_t)k;
    return 0;
}

/* Evaluates one field reference (with filters); returns 0 and sets *s and *n. */
static int eval_ref(const tpl_ref *r, row_ctx *c, const char **s, size_t *n) {
    switch (r->col) {
    case TPL_COL_CONST:
        *s = r->const_val;
        *n = strlen(r->const_val);
        break;
    case TPL_COL_FILE:
        *s = c->file_stem;
        *n = c->file_stem_len;
        break;
    case TPL_COL_NAME:
        *s = c->col_name;
        *n = c->col_name_len;
        break;
    case TPL_COL_VALUE:
        *s = c->col_value;
        *n = c->col_value_len;
        if (c->n_missing && *n && is_missing(c, *s, *n)) *n = 0, *s = "";
        break;
    default:
        if (column_value(c, r->join, r->col, r->dict_name, s, n)) return -1;
    }
    for (size_t f = 0; f < r->n_filters; f++) {
        const tpl_filter *fl = &r->filters[f];
        switch (fl->kind) {
        case TF_TRIM:
            trim_span(s, n);
            break;
        case TF_DATE:
            /* YYYY-MM-DD[ T]anything: the date (a DATE column exported with a midnight time). */
            if (*n > 10 && (((*s)[10] == ' ') || (*s)[10] == 'T') && (*s)[4] == '-' && (*s)[7] == '-') *n = 10;
            break;
        case TF_UPPER:
        case TF_LOWER: {
            sbuf *o = out_buf(c, *s);
            if (sbuf_put(o, *s, *n)) return fail_reason(c, "out of memory");
            for (size_t i = 0; i < *n; i++)
                o->p[i] = (char)(fl->kind == TF_UPPER ? toupper((unsigned char)o->p[i]) : tolower((unsigned char)o->p[i]));
            *s = o->p;
            break;
        }
        case TF_MAP: {
            const dict_rt *d = &c->dicts[fl->dict];
            int64_t row = strmap_find(&d->keys, *s, *n);
            if (row < 0) {
                *s = "";
                *n = 0;
            } else {
                *s = dict_value(d, row, (size_t)fl->value_col, n);
            }
            break;
        }
        case TF_SPLIT: {
            const char *p = *s, *end = *s + *n;
            for (long long k = 0; k < fl->inum && p; k++) {
                p = memchr(p, fl->sep, (size_t)(end - p));
                if (p) p++;
            }
            if (!p) {
                *s = "";
                *n = 0;
            } else {
                const char *q = memchr(p, fl->sep, (size_t)(end - p));
                *s = p;
                *n = (size_t)((q ? q : end) - p);
            }
            break;
        }
        case TF_REPLACE: {
            size_t fl_len = strlen(fl->from), to_len = strlen(fl->to);
            sbuf *o = out_buf(c, *s);
            if (sbuf_reserve(o, 0)) return fail_reason(c, "out of memory");
            const char *p = *s, *end = *s + *n;
            while (p < end) {
                const char *q = (size_t)(end - p) >= fl_len ? memmem(p, (size_t)(end - p), fl->from, fl_len) : NULL;
                size_t run = (size_t)((q ? q : end) - p);
                if (sbuf_put(o, p, run) || (q && sbuf_put(o, fl->to, to_len)))
                    return fail_reason(c, "out of memory");
                p = q ? q + fl_len : end;
            }
            *s = o->p;
            *n = o->len;
            break;
        }
        default:
            if (arith(fl, r, c, s, n)) return -1;
        }
    }
    return 0;
}

/* Appends the template's value to out. Empty fields become `empty` when it is not NULL. */
static int eval_tpl(const tpl *t, row_ctx *c, const char *empty, sbuf *out) {
    for (size_t i = 0; i < t->n_parts; i++) {
        const tpl_part *p = &t->parts[i];
        if (p->literal_len && sbuf_put(out, p->literal, p->literal_len)) return fail_reason(c, "out of memory");
        if (!p->n_alts) continue;
        const char *s = "";
        size_t n = 0;
        for (size_t a = 0; a < p->n_alts; a++) {
            if (eval_ref(&p->alts[a], c, &s, &n)) return -1;
            if (n) break;
        }
        if (!n && empty) {
            s = empty;
            n = strlen(empty);
        }
        /* s may point into a filter buffer, which the next field reuses: copy now. */
        if (sbuf_put(out, s, n)) return fail_reason(c, "out of memory");
    }
    if (sbuf_reserve(out, 0)) return fail_reason(c, "out of memory");
    out->p[out->len] = '\0';
    return 0;
}

/* The template's value alone in out (emptied first), a C string. */
static int tpl_string(const tpl *t, row_ctx *c, sbuf *out) {
    sbuf_clear(out);
    return eval_tpl(t, c, NULL, out);
}

static int eval_cond(const cond *cd, row_ctx *c, sbuf *scratch, int *result) {
    if (tpl_string(&cd->lhs, c, scratch)) return -1;
    const char *v = scratch->p;
    switch (cd->op) {
    case COND_EQ: *result = strcmp(v, cd->values[0]) == 0; break;
    case COND_NE: *result = strcmp(v, cd->values[0]) != 0; break;
    case COND_EMPTY: *result = v[0] == '\0'; break;
    case COND_NOT_EMPTY: *result = v[0] != '\0'; break;
    case COND_IN_SET:
    case COND_NOT_IN_SET: {
        int in = 0;
        for (size_t i = 0; i < cd->n_values && !in; i++) in = strcmp(v, cd->values[i]) == 0;
        *result = cd->op == COND_IN_SET ? in : !in;
        break;
    }
    case COND_IN_DICT:
    case COND_NOT_IN_DICT: {
        int in = strmap_find(&c->dicts[cd->dict].keys, v, scratch->len) >= 0;
        *result = cd->op == COND_IN_DICT ? in : !in;
        break;
    }
    case COND_LT:
    case COND_LE:
    case COND_GT:
    case COND_GE: {
        /* A value that is not a number (or is empty) satisfies no comparison. */
        double x;
        if (parse_double(v, scratch->len, &x)) {
            *result = 0;
            break;
        }
        double y = cd->number;
        *result = cd->op == COND_LT ? x < y : cd->op == COND_LE ? x <= y : cd->op == COND_GT ? x > y : x >= y;
        break;
    }
    case COND_PREFIX:
    case COND_NOT_PREFIX: {
        size_t k = strlen(cd->values[0]);
        int pre = scratch->len >= k && !memcmp(v, cd->values[0], k);
        *result = cd->op == COND_PREFIX ? pre : !pre;
        break;
    }
    case COND_MATCH:
    case COND_NOT_MATCH: {
        int rc = pcre2_match(cd->re, (PCRE2_SPTR)v, scratch->len, 0, 0, cd->re_match, NULL);
        if (rc < 0 && rc != PCRE2_ERROR_NOMATCH) return fail_reason(c, "regular expression failed on this value");
        *result = (rc >= 0) == (cd->op == COND_MATCH);
        break;
    }
    }
    return 0;
}

/* ------------------------------------------------------------- times */

static const int64_t offset_unit_us[] = {
    [OFFSET_SECONDS] = USEC_PER_SEC,          [OFFSET_MILLISECONDS] = 1000,
    [OFFSET_MINUTES] = 60 * USEC_PER_SEC,     [OFFSET_HOURS] = 3600 * USEC_PER_SEC,
    [OFFSET_DAYS] = USEC_PER_DAY,             [OFFSET_WEEKS] = 7 * USEC_PER_DAY,
    [OFFSET_YEARS] = 31556952 * USEC_PER_SEC, /* 365.2425 days, as the tasks count ages */
    [OFFSET_EPOCH] = USEC_PER_SEC,
};

/* [-]H:MM[:SS] elapsed (hours may exceed 24). */
static int parse_hhmm(const char *s, size_t n, int64_t *us) {
    trim_span(&s, &n);
    size_t i = 0;
    int neg = 0;
    if (i < n && (s[i] == '-' || s[i] == '+')) neg = s[i++] == '-';
    int64_t h = 0, mi = 0, se = 0;
    size_t d0 = i;
    while (i < n && isdigit((unsigned char)s[i]) && i - d0 < 9) h = h * 10 + (s[i++] - '0');
    if (i == d0 || i >= n || s[i++] != ':') return -1;
    if (i + 2 > n || !isdigit((unsigned char)s[i]) || !isdigit((unsigned char)s[i + 1])) return -1;
    mi = (s[i] - '0') * 10 + (s[i + 1] - '0');
    i += 2;
    if (i < n) {
        if (s[i++] != ':' || i + 2 != n || !isdigit((unsigned char)s[i]) || !isdigit((unsigned char)s[i + 1])) return -1;
        se = (s[i] - '0') * 10 + (s[i + 1] - '0');
        i += 2;
    }
    if (i != n || mi > 59 || se > 59) return -1;
    int64_t v = ((h * 60 + mi) * 60 + se) * USEC_PER_SEC;
    *us = neg ? -v : v;
    return 0;
}

/* Turns the text of a time template into µs the way event e says: ISO 8601, time_format,
 * seconds since 1970, or an offset from the anchor. abuf holds the anchor's text. Returns 0, or -1
 * with the reason set (naming what, never the value). */
static int time_value(const event_spec *e, row_ctx *c, const char *key, const tpl *src, const char *s, size_t n,
                      sbuf *abuf, int64_t *out) {
    if (e->offset == OFFSET_NONE) {
        int bad = e->time_format ? time_parse_format(s, n, e->time_format, out) : time_parse_iso(s, n, out, NULL);
        if (bad)
            return fail_reason(c, "%s '%s' is not a valid %s", key, src->source,
                               e->time_format ? e->time_format : "ISO 8601 date or date-time");
        if (e->date_only_end) {
            size_t k = n;
            while (k && isspace((unsigned char)s[k - 1])) k--;
            const char *p = s;
            while (k && isspace((unsigned char)*p)) p++, k--;
            if (e->time_format ? e->format_date_only : k == 10) *out += USEC_PER_DAY - USEC_PER_SEC;
        }
        return 0;
    }
    int64_t off;
    int whole_days = 0;
    if (e->offset == OFFSET_HHMM) {
        if (parse_hhmm(s, n, &off)) return fail_reason(c, "%s '%s' is not an elapsed time [-]H:MM[:SS]", key, src->source);
    } else {
        double v;
        if (parse_double(s, n, &v))
            return fail_reason(c, "%s '%s' is not a number (an offset in time_offset units)", key, src->source);
        double us = v * (double)offset_unit_us[e->offset];
        if (!(fabs(us) < 9.0e18)) return fail_reason(c, "%s '%s' is out of range", key, src->source);
        off = (int64_t)llround(us);
        whole_days = e->offset == OFFSET_DAYS && v == floor(v);
    }
    if (e->date_only_end && whole_days) off += USEC_PER_DAY - USEC_PER_SEC; /* day N: its last second */
    int64_t anchor = 0;
    if (e->offset == OFFSET_EPOCH) {
        anchor = 0;
    } else if (e->anchor_is_const) {
        anchor = e->anchor_const;
    } else {
        if (tpl_string(&e->anchor, c, abuf)) return -1;
        if (!abuf->len) return fail_reason(c, "time_anchor '%s' is empty", e->anchor.source);
        int bad = e->anchor_format ? time_parse_format(abuf->p, abuf->len, e->anchor_format, &anchor)
                                   : time_parse_iso(abuf->p, abuf->len, &anchor, NULL);
        if (bad)
            return fail_reason(c, "time_anchor '%s' is not a valid %s", e->anchor.source,
                               e->anchor_format ? e->anchor_format : "ISO 8601 date or date-time");
    }
    *out = anchor + off;
    return 0;
}

/* ------------------------------------------------------------- dictionaries */

static void dict_free(dict_rt *d) {
    strmap_free(&d->keys);
    free(d->values.p);
    free(d->value_off);
    memset(d, 0, sizeof *d);
}

/* Opens a mapped table or dictionary file and reads its header line into *header. */
static int open_with_header(const char *path, char sep, csv_reader **r, csv_record *header, cf_err *err) {
    int rc = csv_open_sep(r, path, sep, err);
    if (rc) return rc;
    int got = csv_next(*r, header, err);
    if (got > 0) return CF_OK;
    csv_close(*r);
    *r = NULL;
    return got < 0 ? err->code : cf_fail(err, CF_EINPUT, "%s: empty file, expected a header line", path);
}

static int load_dict_file(mapping *m, dict_spec *ds, const char *path, dict_rt *d, size_t *cap_rows,
                          const mapped_csv_options *opt, cf_err *err) {
    csv_reader *r;
    csv_record rec;
    int rc = open_with_header(path, ds->sep, &r, &rec, err);
    if (rc) return rc;
    int got = 1;
    size_t nh = rec.nfields;
    char **header = calloc(nh, sizeof *header);
    int *cols = malloc((ds->n_columns ? ds->n_columns : 1) * sizeof *cols);
    sbuf key = {0}, cond_scratch = {0};
    row_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    if (!header || !cols) {
        rc = cf_fail(err, CF_EINTERNAL, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < nh; i++)
        if (!(header[i] = strdup(rec.fields[i]))) {
            rc = cf_fail(err, CF_EINTERNAL, "out of memory");
            goto done;
        }
    rc = bind_tpl(&ds->key, header, nh, NULL, 0, m, path, 0, err);
    for (size_t q = 0; !rc && q < ds->n_where; q++) rc = bind_tpl(&ds->where[q].lhs, header, nh, NULL, 0, m, path, 0, err);
    for (size_t c = 0; !rc && c < ds->n_columns; c++) {
        cols[c] = find_col(header, nh, ds->columns[c]);
        if (cols[c] < 0)
            rc = cf_fail(err, CF_EINPUT, "%s:%d: [dictionary %s] column '%s' is not in the header of %s", m->path, ds->line,
                         ds->name, ds->columns[c], path);
    }
    const char *slash = strrchr(path, '/');
    ctx.file_stem = slash ? slash + 1 : path;
    ctx.file_stem_len = strcspn(ctx.file_stem, ".");
    progress pr;
    progress_begin(&pr, ds->name, "rows", 0);
    if (!opt->show_progress) pr.enabled = 0;
    while (!rc && (got = csv_next(r, &rec, err)) > 0) {
        progress_update(&pr, d->rows);
        if (rec.nfields != nh) {
            rc = cf_fail(err, CF_EINPUT, "%s:%llu: dictionary row has %zu fields, header has %zu", path,
                         (unsigned long long)rec.line, rec.nfields, nh);
            break;
        }
        ctx.fields = rec.fields;
        ctx.lens = rec.lens;
        ctx.nfields = rec.nfields;
        int keep = 1;
        for (size_t q = 0; q < ds->n_where && keep; q++)
            if (eval_cond(&ds->where[q], &ctx, &cond_scratch, &keep)) {
                rc = cf_fail(err, CF_EINPUT, "%s:%llu: dictionary condition: %s", path, (unsigned long long)rec.line,
                             ctx.reason ? ctx.reason : "failed");
                break;
            }
        if (rc) break;
        if (!keep) continue;
        if (tpl_string(&ds->key, &ctx, &key)) {
            rc = cf_fail(err, CF_EINPUT, "%s:%llu: dictionary key: %s", path, (unsigned long long)rec.line,
                         ctx.reason ? ctx.reason : "out of memory");
            break;
        }
        uint32_t before = d->keys.count;
        int64_t id = strmap_intern(&d->keys, key.p, key.len);
        if (id < 0) {
            rc = cf_fail(err, CF_EINTERNAL, "out of memory");
            break;
        }
        if (d->keys.count == before) {
            d->duplicates++; /* first row wins */
            continue;
        }
        if (d->rows == *cap_rows) {
            *cap_rows = *cap_rows ? *cap_rows * 2 : 1024;
            uint64_t *p = realloc(d->value_off, *cap_rows * d->n_columns * sizeof *p);
            if (!p) {
                rc = cf_fail(err, CF_EINTERNAL, "out of memory");
                break;
            }
            d->value_off = p;
        }
        for (size_t c = 0; c < d->n_columns; c++) {
            d->value_off[d->rows * d->n_columns + c] = d->values.len;
            if (sbuf_put(&d->values, rec.fields[cols[c]], rec.lens[cols[c]]) || sbuf_put(&d->values, "", 1)) {
                rc = cf_fail(err, CF_EINTERNAL, "out of memory");
                break;
            }
        }
        d->rows++;
    }
    progress_end(&pr);
    if (!rc && got < 0) rc = err->code;
done:
    if (header)
        for (size_t i = 0; i < nh; i++) free(header[i]);
    free(header);
    free(cols);
    free(key.p);
    free(cond_scratch.p);
    ctx_free(&ctx);
    csv_close(r);
    return rc;
}

static int load_dict(mapping *m, size_t di, const char *input_dir, dict_rt *d, const mapped_csv_options *opt, cf_err *err) {
    dict_spec *ds = &m->dicts[di];
    strmap_init(&d->keys);
    d->n_columns = ds->n_columns;
    char **files;
    size_t nf, cap_rows = 0;
    int rc = mapping_files(m, input_dir, ds->file, ds->optional, &files, &nf, err);
    for (size_t i = 0; !rc && i < nf; i++) rc = load_dict_file(m, ds, files[i], d, &cap_rows, opt, err);
    mapping_files_free(files, nf);
    return rc;
}

/* ------------------------------------------------------------- tables */

/* One event of the current row, staged until the row is done. */
typedef struct {
    int64_t time;
    size_t code_off, code_len;
    float numeric;
    int has_text;
    size_t text_off, text_len;
    size_t desc_off, desc_len;
} staged;

/* Events waiting to go to the store writer. Workers fill their own batch without locking and
 * hand it over under the engine lock, so the serial part (code interning, appending to the
 * writer's buffer) is a small share of the work. */
typedef struct {
    staged *ev;
    int64_t *subject;
    uint64_t *row;
    size_t n, cap;
    sbuf strings;
} batch;

typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    mapping *m;
    const char *input_dir;
    store_writer *w;
    ingest_report *rep;
    const mapped_csv_options *opt;
    dict_rt *dicts;
    int *dict_state;            /* (n_dicts) 0 unused, 1 waiting, 2 loading, 3 loaded */
    int *table_state;           /* (n_tables) 0 unselected, 1 waiting, 2 running, 3 done */
    char *table_needs;          /* (n_tables * n_dicts) */
    int *table_source;          /* (n_tables) provenance source id, registered in mapping order */
    double *dict_weight, *table_weight; /* scheduling priority: bytes on the task's critical path */
    ingest_source_stats **table_stats;
    int failed;
    cf_err err;                 /* the first fatal error */
    uint64_t rows_done;
    progress pr;
    int chunk_threads;          /* threads mapping the chunks of one table */
    size_t chunk_bytes;
    size_t sample_bytes;        /* > 0: read a sample of each table (mapped_csv_options) */
} engine;

#define BATCH_EVENTS 8192

static int table_selected(const mapped_csv_options *opt, const char *name) {
    if (!opt->only_tables) return 1;
    size_t n = strlen(name);
    for (const char *p = opt->only_tables; *p;) {
        const char *e = strchr(p, ',');
        size_t k = e ? (size_t)(e - p) : strlen(p);
        if (k == n && !memcmp(p, name, n)) return 1;
        if (!e) break;
        p = e + 1;
    }
    return 0;
}

/* Hands a batch to the store writer. Called with the engine lock held. */
static int batch_flush_locked(engine *g, batch *b, uint32_t source, cf_err *err) {
    mapped_csv_sample *sample = NULL;
    for (size_t t = 0; g->opt->sample && t < g->m->n_tables; t++)
        if (g->table_state[t] && (uint32_t)g->table_source[t] == source) sample = &g->opt->sample[t];
    for (size_t k = 0; k < b->n; k++) {
        staged *sg = &b->ev[k];
        const char *str = b->strings.p;
        if (sg->code_len == SIZE_MAX) { /* a subject key record */
            int rc = store_writer_subject_key(g->w, b->subject[k], str + sg->text_off, sg->text_len, err);
            if (rc) return rc;
            continue;
        }
        int64_t code = store_writer_code(g->w, str + sg->code_off, sg->code_len);
        if (code < 0) return cf_fail(err, CF_EINTERNAL, "out of memory");
        if (sg->desc_len) store_writer_code_describe(g->w, (uint32_t)code, str + sg->desc_off, sg->desc_len);
        if (sample && sg->has_text && sg->text_len > MAPPED_CSV_LONG_TEXT) sample->long_text += sg->text_len;
        int rc = store_writer_add(g->w, b->subject[k], sg->time, (uint32_t)code, sg->numeric,
                                  sg->has_text ? str + sg->text_off : NULL, sg->text_len, source, b->row[k], err);
        if (rc) return rc;
    }
    b->n = 0;
    b->strings.len = 0;
    return CF_OK;
}

static int batch_flush(engine *g, batch *b, uint32_t source, uint64_t rows, cf_err *err) {
    pthread_mutex_lock(&g->lock);
    int rc = g->failed ? CF_EINPUT : batch_flush_locked(g, b, source, err);
    g->rows_done += rows;
    progress_update(&g->pr, g->rows_done);
    pthread_mutex_unlock(&g->lock);
    return rc;
}

static int batch_reserve(batch *b, size_t extra) {
    if (b->n + extra <= b->cap) return 0;
    size_t nc = b->cap ? b->cap * 2 : 1024;
    while (nc < b->n + extra) nc *= 2;
    staged *e = realloc(b->ev, nc * sizeof *e);
    if (!e) return -1;
    b->ev = e;
    int64_t *su = realloc(b->subject, nc * sizeof *su);
    if (!su) return -1;
    b->subject = su;
    uint64_t *ro = realloc(b->row, nc * sizeof *ro);
    if (!ro) return -1;
    b->row = ro;
    b->cap = nc;
    return 0;
}

/* Appends events (strings in str, offsets relative to it) of one subject and row to the batch,
 * with the subject's original key when subjects are strings. */
static int batch_add(batch *b, const staged *ev, size_t n, const char *str, size_t str_len, int64_t subject,
                     uint64_t row, const char *key, size_t key_len) {
    if (batch_reserve(b, n + 1)) return -1;
    size_t base = b->strings.len;
    if (sbuf_put(&b->strings, str ? str : "", str_len)) return -1;
    for (size_t k = 0; k < n; k++) {
        staged *sg = &b->ev[b->n];
        *sg = ev[k];
        sg->code_off += base;
        sg->text_off += base;
        sg->desc_off += base;
        b->subject[b->n] = subject;
        b->row[b->n] = row;
        b->n++;
    }
    if (key) {
        staged *sg = &b->ev[b->n];
        memset(sg, 0, sizeof *sg);
        sg->code_len = SIZE_MAX;
        sg->text_off = b->strings.len;
        sg->text_len = key_len;
        if (sbuf_put(&b->strings, key, key_len)) return -1;
        b->subject[b->n] = subject;
        b->row[b->n] = row;
        b->n++;
    }
    return 0;
}

/* `once = last per KEY`: the latest candidate event of each group, emitted when the table ends. */
typedef struct {
    int64_t subject;
    uint64_t row;
    staged sg;       /* offsets into str */
    char *str;
    size_t str_len;
    char *key;       /* the subject's original string (string subjects) */
    size_t key_len;
} last_slot;

/* State of one event spec over all files of a table. */
typedef struct {
    strmap groups;       /* once: group keys seen (first) or held (last) */
    last_slot *last;     /* (groups.count) */
    size_t last_cap;
    int *ucols;          /* unpivot: the current file's column positions */
    size_t n_ucols;
    uint64_t made, rejected;
    char first_reason[300], first_where[300];
} event_rt;

/* Rejections of one chunk's rows, kept in row order until the chunk is committed. */
typedef struct {
    sbuf why;            /* reasons, NUL-terminated, back to back */
    uint64_t *line;      /* (n) */
    size_t n, cap;
} rej_list;

/* A table being ingested: its files, per-event state, the batch and the scratch buffers. A
 * chunk worker has one of its own, whose st, ev and b point into the chunk it works on. */
typedef struct {
    engine *g;
    size_t ti;
    table_spec *t;
    ingest_source_stats *st;
    uint32_t source;
    event_rt *ev;
    batch *b;
    batch own_b;
    rej_list *defer;     /* a chunk worker: rejections are kept here, not reported yet */
    int64_t *join_row;   /* (n_joins) */
    uint64_t rows_since_flush;
    uint64_t sample_read;  /* sampling: input bytes read so far (the table's thread only) */
    int sample_cut;        /* sampling: stopped before the table's end */
    staged *stage;
    size_t stage_cap;
    sbuf row, scratch, tbuf, abuf, key, skey;
    row_ctx ctx;
} table_rt;

static void event_rt_free(event_rt *e) {
    for (uint32_t i = 0; e->last && i < e->groups.count; i++) {
        free(e->last[i].str);
        free(e->last[i].key);
    }
    free(e->last);
    strmap_free(&e->groups);
    free(e->ucols);
}

/* Counts one rejection (per event, or for a whole row when ev is NULL). */
static int reject(table_rt *T, event_rt *ev, const char *why, const char *path, uint64_t line, cf_err *err) {
    char location[4400];
    snprintf(location, sizeof location, "%s:%llu", path, (unsigned long long)line);
    if (T->defer) { /* reported when the chunk is committed, in row order */
        rej_list *d = T->defer;
        uint64_t *p = cf_grow(d->line, &d->cap, d->n + 1, sizeof *p, 64);
        if (!p) return cf_fail(err, CF_EINTERNAL, "out of memory");
        d->line = p;
        if (sbuf_put(&d->why, why, strlen(why) + 1)) return cf_fail(err, CF_EINTERNAL, "out of memory");
        d->line[d->n++] = line;
    }
    if (ev) {
        if (!ev->rejected++) {
            snprintf(ev->first_reason, sizeof ev->first_reason, "%.*s", (int)sizeof ev->first_reason - 1, why);
            snprintf(ev->first_where, sizeof ev->first_where, "%.*s", (int)sizeof ev->first_where - 1, location);
        }
        T->st->events_rejected++;
    }
    if (T->defer) return CF_OK;
    pthread_mutex_lock(&T->g->lock);
    int rc = ingest_reject(T->g->rep, T->t->name, why, location, err);
    pthread_mutex_unlock(&T->g->lock);
    return rc;
}

/* Builds event e of the current row into T->row and *sg. Returns 1 (built), 0 (its conditions
 * exclude it) or -1 (rejected: why holds the reason). On -1 the row buffer is as before. */
static int build_event(table_rt *T, const event_spec *e, staged *sg, char *why, size_t why_cap) {
    row_ctx *c = &T->ctx;
    size_t row_len0 = T->row.len;
    c->reason = NULL;
    int keep = 1;
    for (size_t q = 0; q < e->n_where && keep; q++)
        if (eval_cond(&e->where[q], c, &T->scratch, &keep)) goto fail;
    if (!keep) return 0;
    memset(sg, 0, sizeof *sg);
    sg->time = TIME_NULL;
    sg->numeric = NAN;
    if (e->has_time) {
        if (tpl_string(&e->time, c, &T->tbuf)) goto fail;
        if (!T->tbuf.len) {
            fail_reason(c, "time '%s' is empty", e->time.source);
            goto fail;
        }
        if (time_value(e, c, "time", &e->time, T->tbuf.p, T->tbuf.len, &T->abuf, &sg->time)) goto fail;
        if (e->has_not_after) {
            if (tpl_string(&e->not_after, c, &T->tbuf)) goto fail;
            if (T->tbuf.len) { /* empty: no limit */
                int64_t lim;
                if (time_value(e, c, "time_not_after", &e->not_after, T->tbuf.p, T->tbuf.len, &T->abuf, &lim)) goto fail;
                if (sg->time > lim) sg->time = lim;
            }
        }
    }
    sg->code_off = T->row.len;
    if (eval_tpl(&e->code, c, e->empty ? e->empty : "UNK", &T->row)) goto fail;
    sg->code_len = T->row.len - sg->code_off;
    int numeric_as_text = 0;
    if (e->has_numeric) {
        if (tpl_string(&e->numeric, c, &T->scratch)) goto fail;
        if (T->scratch.len) {
            char *end;
            errno = 0;
            float v = strtof(T->scratch.p, &end);
            while (*end == ' ') end++;
            if (*end || errno == ERANGE || !isfinite(v) || end == T->scratch.p) {
                if (e->numeric_invalid == 0) {
                    fail_reason(c, "numeric value '%s' is not a number", e->numeric.source);
                    goto fail;
                }
                numeric_as_text = e->numeric_invalid == 1;
            } else {
                sg->numeric = v;
            }
        }
    }
    if (numeric_as_text) {
        sg->has_text = 1;
        sg->text_off = T->row.len;
        if (sbuf_put(&T->row, T->scratch.p, T->scratch.len)) goto oom;
        sg->text_len = T->scratch.len;
    } else if (e->has_text && !(e->text_if_no_numeric && !isnan(sg->numeric))) {
        size_t off = T->row.len;
        if (eval_tpl(&e->text, c, NULL, &T->row)) goto fail;
        if (T->row.len > off) {
            sg->has_text = 1;
            sg->text_off = off;
            sg->text_len = T->row.len - off;
        }
    }
    if (e->has_description) {
        sg->desc_off = T->row.len;
        /* A description is a label, not data: a missing join just leaves it out. */
        if (eval_tpl(&e->description, c, NULL, &T->row)) T->row.len = sg->desc_off;
        sg->desc_len = T->row.len - sg->desc_off;
    }
    return 1;
oom:
    fail_reason(c, "out of memory");
fail:
    T->row.len = row_len0;
    snprintf(why, why_cap, "event %s: %s", e->name, c->reason ? c->reason : "failed");
    return -1;
}

static int stage_reserve(table_rt *T, size_t n) {
    staged *p = cf_grow(T->stage, &T->stage_cap, n, sizeof *p, 16);
    if (!p) return -1;
    T->stage = p;
    return 0;
}

/* Keeps a `once = last` candidate for its group, replacing the group's earlier one. */
static int keep_last(event_rt *er, int64_t gid, const staged *sg, const char *rowstr, int64_t subject, uint64_t line,
                     const char *key, size_t key_len) {
    if ((size_t)gid >= er->last_cap) {
        size_t nc = er->last_cap ? er->last_cap * 2 : 64;
        while (nc <= (size_t)gid) nc *= 2;
        last_slot *p = realloc(er->last, nc * sizeof *p);
        if (!p) return -1;
        memset(p + er->last_cap, 0, (nc - er->last_cap) * sizeof *p);
        er->last = p;
        er->last_cap = nc;
    }
    last_slot *ls = &er->last[gid];
    /* The event's strings lie in [code_off, end of its last string). */
    size_t lo = sg->code_off, hi = sg->code_off + sg->code_len;
    if (sg->has_text && sg->text_off + sg->text_len > hi) hi = sg->text_off + sg->text_len;
    if (sg->desc_len && sg->desc_off + sg->desc_len > hi) hi = sg->desc_off + sg->desc_len;
    char *s = malloc(hi - lo + 1);
    char *k = key ? malloc(key_len + 1) : NULL;
    if (!s || (key && !k)) {
        free(s);
        free(k);
        return -1;
    }
    memcpy(s, rowstr + lo, hi - lo);
    if (k) memcpy(k, key, key_len);
    free(ls->str);
    free(ls->key);
    ls->str = s;
    ls->str_len = hi - lo;
    ls->key = k;
    ls->key_len = key_len;
    ls->sg = *sg;
    ls->sg.code_off -= lo;
    ls->sg.text_off = sg->has_text ? sg->text_off - lo : 0;
    ls->sg.desc_off = sg->desc_len ? sg->desc_off - lo : 0;
    ls->subject = subject;
    ls->row = line;
    return 0;
}

static int compute_joins(table_rt *T, int64_t *join_row, const char **why) {
    table_spec *t = T->t;
    for (size_t j = 0; j < t->n_joins; j++) {
        if (tpl_string(&t->joins[j].key, &T->ctx, &T->scratch)) {
            *why = T->ctx.reason;
            return -1;
        }
        join_row[j] = strmap_find(&T->g->dicts[t->joins[j].dict].keys, T->scratch.p, T->scratch.len);
    }
    return 0;
}

/* The subject id of the current row (template already bound). *key and *key_len: the original
 * string for string subjects (valid until the next row). */
static int row_subject(table_rt *T, int64_t *subject, const char **key, size_t *key_len, const char **why) {
    table_spec *t = T->t;
    const tpl *st = &t->subject;
    const char *s;
    size_t n;
    if (st->n_parts == 1 && !st->parts[0].literal[0] && st->parts[0].n_alts == 1 && !st->parts[0].alts[0].n_filters &&
        st->parts[0].alts[0].col >= 0 && st->parts[0].alts[0].join < 0) {
        int col = st->parts[0].alts[0].col; /* the usual case: one column, read in place */
        s = T->ctx.fields[col];
        n = T->ctx.lens[col];
        if (T->ctx.n_missing && n && is_missing(&T->ctx, s, n)) n = 0;
    } else {
        if (tpl_string(st, &T->ctx, &T->key)) {
            *why = T->ctx.reason;
            return -1;
        }
        s = T->key.p;
        n = T->key.len;
    }
    if (t->subject_is_string) {
        if (!n) {
            *why = "subject id is empty";
            return -1;
        }
        *subject = subject_id_from_string(s, n);
        *key = s;
        *key_len = n;
        return 0;
    }
    long long v;
    if (parse_ll(s, n, &v)) {
        *why = n ? "subject id is not an integer" : "subject id is empty";
        return -1;
    }
    *subject = v;
    *key = NULL;
    *key_len = 0;
    return 0;
}

/* Binds everything the table's templates name to this file's header. */
static int bind_file(table_rt *T, char **header, size_t nh, const char *path, cf_err *err) {
    mapping *m = T->g->m;
    table_spec *t = T->t;
    int rc = bind_tpl(&t->subject, header, nh, t->joins, t->n_joins, m, path, 0, err);
    const char *col_msg = rc ? strstr(err->msg, ": column '") : NULL;
    if (col_msg) {
        char tail[900];
        snprintf(tail, sizeof tail, "%s", col_msg + 2);
        rc = cf_fail(err, CF_EINPUT, "%s:%d: [table %s] subject %s", m->path, t->line, t->name, tail);
    }
    if (!rc && t->subject_from) rc = bind_tpl(&t->subject_from->lhs, header, nh, t->joins, t->n_joins, m, path, 0, err);
    for (size_t j = 0; j < t->n_joins && !rc; j++) rc = bind_tpl(&t->joins[j].key, header, nh, NULL, 0, m, path, 0, err);
    for (size_t k = 0; k < t->n_events && !rc; k++) {
        event_spec *e = &t->events[k];
        int up = e->n_unpivot > 0;
        tpl *all[] = {&e->code, &e->time, &e->numeric, &e->text, &e->description, &e->anchor, &e->not_after, &e->once_key};
        for (size_t q = 0; q < sizeof all / sizeof all[0] && !rc; q++)
            if (all[q]->n_parts) rc = bind_tpl(all[q], header, nh, t->joins, t->n_joins, m, path, up, err);
        for (size_t q = 0; q < e->n_where && !rc; q++)
            rc = bind_tpl(&e->where[q].lhs, header, nh, t->joins, t->n_joins, m, path, up, err);
        if (rc || !up) continue;
        event_rt *er = &T->ev[k];
        er->n_ucols = 0;
        for (size_t u = 0; u < e->n_unpivot && !rc; u++) {
            int a = find_col(header, nh, e->unpivot[u].first);
            int b = e->unpivot[u].last ? find_col(header, nh, e->unpivot[u].last) : a;
            const char *bad = a < 0 ? e->unpivot[u].first : b < 0 ? e->unpivot[u].last : NULL;
            if (bad) {
                rc = cf_fail(err, CF_EINPUT, "%s:%d: [event %s] unpivot: column '%s' is not in the header of %s", m->path,
                             e->line, e->name, bad, path);
                break;
            }
            if (b < a) {
                rc = cf_fail(err, CF_EINPUT, "%s:%d: [event %s] unpivot: '%s' comes after '%s' in the header of %s",
                             m->path, e->line, e->name, e->unpivot[u].first, e->unpivot[u].last, path);
                break;
            }
            int *p = realloc(er->ucols, (er->n_ucols + (size_t)(b - a) + 1) * sizeof *p);
            if (!p) {
                rc = cf_fail(err, CF_EINTERNAL, "out of memory");
                break;
            }
            er->ucols = p;
            for (int col = a; col <= b; col++) er->ucols[er->n_ucols++] = col;
        }
    }
    return rc;
}

/* subject_from: the subject of a file is read from its first row where the condition holds.
 * Returns CF_OK with *found = 0 when no row does. */
static int file_subject(table_rt *T, const char *path, int64_t *join_row, int64_t *subject, char **key, size_t *key_len,
                        int *found, cf_err *err) {
    *found = 0;
    csv_reader *r;
    int rc = csv_open_sep(&r, path, T->t->sep, err);
    if (rc) return rc;
    csv_record rec;
    int got = csv_next(r, &rec, err); /* the header, already checked by the caller */
    size_t nh = got > 0 ? rec.nfields : 0;
    while (got > 0 && (got = csv_next(r, &rec, err)) > 0) {
        if (rec.nfields != nh) continue;
        T->ctx.fields = rec.fields;
        T->ctx.lens = rec.lens;
        T->ctx.nfields = rec.nfields;
        T->ctx.missing = T->t->missing;
        T->ctx.n_missing = T->t->n_missing;
        const char *why = NULL;
        int hold = 0;
        if (compute_joins(T, join_row, &why) || eval_cond(T->t->subject_from, &T->ctx, &T->scratch, &hold)) continue;
        if (!hold) continue;
        const char *k;
        size_t kl;
        if (row_subject(T, subject, &k, &kl, &why)) break; /* the subject row itself is bad: no subject */
        if (k && !(*key = malloc(kl + 1))) {
            rc = cf_fail(err, CF_EINTERNAL, "out of memory");
            break;
        }
        if (k) memcpy(*key, k, kl), *key_len = kl;
        *found = 1;
        break;
    }
    if (!rc && got < 0) rc = err->code ? err->code : CF_EINPUT;
    csv_close(r);
    return rc;
}

/* Rejects the current row as a whole (wrong field count, no subject, a join key that fails). */
#define REJECT_ROW(...)                                   \
    do {                                                  \
        snprintf(reason, sizeof reason, __VA_ARGS__);     \
        why = reason;                                     \
        goto reject;                                      \
    } while (0)

/* One file of a table as every chunk of it sees it: fixed while its rows are mapped. */
typedef struct {
    const char *path;
    char **header;
    size_t *hlen, nh;
    int64_t file_subj;       /* subject_from: the file's subject */
    char *file_key;
    size_t file_key_len;
    int have_file_subj;
} file_ctx;

/* Points T's row context at the file: its {_file} stem, the dictionaries, T's join rows. */
static void ctx_for_file(table_rt *T, const file_ctx *f) {
    row_ctx *c = &T->ctx;
    /* {_file}: the name without folder and extension(s). */
    const char *slash = strrchr(f->path, '/');
    c->file_stem = slash ? slash + 1 : f->path;
    c->file_stem_len = strcspn(c->file_stem, ".");
    c->dicts = T->g->dicts;
    c->joins = T->t->joins;
    c->join_row = T->join_row;
}

/* Maps every row r yields (the rest of a file, or one chunk of it) into T->b, counting in T->st
 * and T->ev. A table's own thread hands full batches to the writer as it goes; a chunk worker
 * (T->defer set) keeps the chunk's events and rejections for the commit in chunk order. */
static int ingest_rows(table_rt *T, csv_reader *r, const file_ctx *f, cf_err *err) {
    engine *g = T->g;
    table_spec *t = T->t;
    ingest_source_stats *st = T->st;
    const char *path = f->path;
    char **header = f->header;
    const size_t *hlen = f->hlen;
    size_t nh = f->nh;
    const char *file_key = f->file_key;
    size_t file_key_len = f->file_key_len;
    int64_t file_subj = f->file_subj;
    int have_file_subj = f->have_file_subj;
    int64_t *join_row = T->join_row;
    char reason[512];
    row_ctx *c = &T->ctx;
    csv_record rec;
    int got, rc = CF_OK;
    ctx_for_file(T, f);
    while ((got = csv_next(r, &rec, err)) > 0) {
        if (g->sample_bytes && !T->defer) { /* a sample read row by row (a table with `once` events) */
            if (T->sample_read >= g->opt->sample[T->ti].budget) {
                T->sample_cut = 1;
                break;
            }
            T->sample_read += rec.nfields; /* separators and the line end */
            for (size_t i = 0; i < rec.nfields; i++) T->sample_read += rec.lens[i];
        }
        st->rows++;
        T->rows_since_flush++;
        if ((st->rows & 4095) == 0 && g->failed) {
            rc = CF_EINPUT; /* another worker failed: stop early, its error is the one reported */
            goto done;
        }
        c->fields = rec.fields;
        c->lens = rec.lens;
        c->nfields = rec.nfields;
        c->reason = NULL;
        c->missing = t->missing;
        c->n_missing = t->n_missing;
        const char *why = NULL;
        int64_t subject = 0;
        const char *key = NULL;
        size_t key_len = 0, n_staged = 0;
        int made = 0, failed = 0;
        T->row.len = 0;
        if (rec.nfields != nh) REJECT_ROW("row has a different number of fields than the header (%zu)", nh);
        if (compute_joins(T, join_row, &why)) goto reject;
        if (t->subject_from) {
            if (!have_file_subj) REJECT_ROW("no row of this file gives the subject (subject_from)");
            subject = file_subj;
            key = file_key;
            key_len = file_key_len;
        } else if (row_subject(T, &subject, &key, &key_len, &why)) {
            goto reject;
        }
        /* A string subject's original text may lie in T->key, which once keys reuse: copy it. */
        if (key && t->subject_is_string && key != file_key) {
            if ((sbuf_clear(&T->skey), sbuf_put(&T->skey, key, key_len))) {
                rc = cf_fail(err, CF_EINTERNAL, "out of memory");
                goto done;
            }
            key = T->skey.p;
        }
        for (size_t k = 0; k < t->n_events; k++) {
            event_spec *e = &t->events[k];
            event_rt *er = &T->ev[k];
            c->missing = e->has_missing ? e->missing : t->missing;
            c->n_missing = e->has_missing ? e->n_missing : t->n_missing;
            size_t iters = e->n_unpivot ? er->n_ucols : 1;
            for (size_t it = 0; it < iters; it++) {
                if (e->n_unpivot) {
                    int col = er->ucols[it];
                    c->col_name = header[col];
                    c->col_name_len = hlen[col];
                    c->col_value = rec.fields[col];
                    c->col_value_len = rec.lens[col];
                    if (!c->col_value_len || (c->n_missing && is_missing(c, c->col_value, c->col_value_len)))
                        continue; /* not measured: no event */
                }
                int64_t gid = -1;
                if (e->once != ONCE_ALL) {
                    if (tpl_string(&e->once_key, c, &T->key)) {
                        failed = 1;
                        snprintf(reason, sizeof reason, "event %s: once key: %s", e->name, c->reason ? c->reason : "failed");
                        if ((rc = reject(T, er, reason, path, rec.line, err))) goto done;
                        continue;
                    }
                    /* first: a group is taken by its first event built (a failed or excluded row
                     * leaves it open); last: every candidate replaces the group's earlier one. */
                    if (e->once == ONCE_FIRST && strmap_find(&er->groups, T->key.p, T->key.len) >= 0) continue;
                    if (e->once == ONCE_LAST && (gid = strmap_intern(&er->groups, T->key.p, T->key.len)) < 0) {
                        rc = cf_fail(err, CF_EINTERNAL, "out of memory");
                        goto done;
                    }
                }
                if (stage_reserve(T, n_staged + 1)) {
                    rc = cf_fail(err, CF_EINTERNAL, "out of memory");
                    goto done;
                }
                staged *sg = &T->stage[n_staged];
                int b = build_event(T, e, sg, reason, sizeof reason);
                if (b < 0) {
                    failed = 1;
                    if ((rc = reject(T, er, reason, path, rec.line, err))) goto done;
                    continue;
                }
                if (b == 0) continue;
                if (e->once == ONCE_FIRST && strmap_intern(&er->groups, T->key.p, T->key.len) < 0) {
                    rc = cf_fail(err, CF_EINTERNAL, "out of memory");
                    goto done;
                }
                er->made++;
                made = 1;
                if (e->once == ONCE_LAST) {
                    size_t len0 = sg->code_off;
                    if (keep_last(er, gid, sg, T->row.p, subject, rec.line, key, key_len)) {
                        rc = cf_fail(err, CF_EINTERNAL, "out of memory");
                        goto done;
                    }
                    T->row.len = len0; /* held aside, not part of this row's events */
                    continue;
                }
                n_staged++;
            }
        }
        if (n_staged) {
            if (batch_add(T->b, T->stage, n_staged, T->row.p, T->row.len, subject, rec.line,
                          t->subject_is_string ? key : NULL, key_len)) {
                rc = cf_fail(err, CF_EINTERNAL, "out of memory");
                goto done;
            }
            st->events += n_staged;
        }
        if (made) st->rows_with_events++;
        else if (failed) st->rows_rejected++;
        else st->rows_filtered++;
        if (T->b->n >= BATCH_EVENTS && !T->defer) {
            if ((rc = batch_flush(g, T->b, T->source, T->rows_since_flush, err))) goto done;
            T->rows_since_flush = 0;
        }
        continue;
    reject:
        st->rows_rejected++;
        if ((rc = reject(T, NULL, why ? why : "unknown", path, rec.line, err))) goto done;
    }
    if (got < 0) rc = err->code ? err->code : CF_EINPUT;
done:
    return rc;
}

/* ------------------------------------------------------------- chunks in parallel */

/* A table without `once` events is mapped chunk by chunk: the table's thread cuts the file into
 * chunks of whole records (csv_next_chunk: it decompresses, and finds record ends by the parser's
 * quoting rules), any thread of the pipeline maps a chunk into its own slot (events, counts,
 * rejections with their lines), and the table's thread commits the slots to the writer and the
 * report strictly in chunk order. The writer and the report therefore see the same calls in the
 * same order as one thread reading the file, whatever the thread count and timing: the store is
 * byte-identical, and the first error (a malformed row, --strict's first rejection) is the one
 * the sequential reading meets first. Slots are a ring, so memory stays bounded. `once` events
 * decide on a row by the rows before it, so their tables are read by one thread as before. */

enum { SLOT_FREE, SLOT_READY, SLOT_TAKEN, SLOT_DONE };

typedef struct {
    int state;
    csv_reader *r;            /* the chunk's records, until mapped */
    batch b;
    ingest_source_stats st;   /* this chunk's counts */
    event_rt *ev;             /* (n_events) this chunk's counts; ucols borrowed from the table */
    rej_list rej;
    int rc;
    cf_err err;
} chunk_slot;

typedef struct pipeline pipeline;
typedef struct {
    pipeline *P;
    table_rt *W;
} helper_arg;

struct pipeline {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    table_rt *T;              /* the table: what chunks are committed to */
    table_rt *wk;             /* (n_threads) working state per thread; wk[0] is the table's thread */
    int n_threads, n_started, stop;
    pthread_t tid[64];
    helper_arg *args;         /* (n_threads) */
    chunk_slot *slot;
    size_t n_slots, chunk_bytes;
    uint64_t next_read, next_take, next_commit; /* chunk sequence numbers */
    const file_ctx *f;
};


static void chunk_work(pipeline *P, table_rt *W, chunk_slot *sl) {
    const table_spec *t = P->T->t;
    memset(&sl->st, 0, sizeof sl->st);
    sl->b.n = 0;
    sl->b.strings.len = 0;
    sl->rej.n = 0;
    sl->rej.why.len = 0;
    for (size_t k = 0; k < t->n_events; k++) {
        event_rt *e = &sl->ev[k];
        e->made = e->rejected = 0;
        e->first_reason[0] = e->first_where[0] = '\0';
        e->ucols = P->T->ev[k].ucols;
        e->n_ucols = P->T->ev[k].n_ucols;
    }
    W->st = &sl->st;
    W->b = &sl->b;
    W->ev = sl->ev;
    W->defer = &sl->rej;
    memset(&sl->err, 0, sizeof sl->err);
    sl->rc = ingest_rows(W, sl->r, P->f, &sl->err);
    csv_close(sl->r);
    sl->r = NULL;
}

/* Hands a mapped chunk to the writer and the report, and adds its counts to the table's. */
static int chunk_commit(pipeline *P, chunk_slot *sl, cf_err *err) {
    table_rt *T = P->T;
    engine *g = T->g;
    pthread_mutex_lock(&g->lock);
    int rc = g->failed ? CF_EINPUT : batch_flush_locked(g, &sl->b, T->source, err);
    g->rows_done += sl->st.rows;
    progress_update(&g->pr, g->rows_done);
    const char *why = sl->rej.why.p;
    for (size_t i = 0; i < sl->rej.n && !rc; i++) {
        char location[4400];
        snprintf(location, sizeof location, "%s:%llu", P->f->path, (unsigned long long)sl->rej.line[i]);
        rc = ingest_reject(g->rep, T->t->name, why, location, err);
        why += strlen(why) + 1;
    }
    pthread_mutex_unlock(&g->lock);
    ingest_source_stats *st = T->st;
    st->rows += sl->st.rows;
    st->rows_with_events += sl->st.rows_with_events;
    st->rows_filtered += sl->st.rows_filtered;
    st->rows_rejected += sl->st.rows_rejected;
    st->events += sl->st.events;
    st->events_rejected += sl->st.events_rejected;
    for (size_t k = 0; k < T->t->n_events; k++) {
        event_rt *to = &T->ev[k], *from = &sl->ev[k];
        if (from->rejected && !to->rejected) {
            memcpy(to->first_reason, from->first_reason, sizeof to->first_reason);
            memcpy(to->first_where, from->first_where, sizeof to->first_where);
        }
        to->made += from->made;
        to->rejected += from->rejected;
    }
    if (!rc && sl->rc) {
        *err = sl->err;
        rc = sl->rc;
    }
    return rc;
}

static void *chunk_helper(void *arg) {
    helper_arg *h = arg;
    pipeline *P = h->P;
    pthread_mutex_lock(&P->mu);
    while (!P->stop) {
        if (P->next_take < P->next_read) {
            chunk_slot *sl = &P->slot[P->next_take++ % P->n_slots];
            sl->state = SLOT_TAKEN;
            pthread_mutex_unlock(&P->mu);
            chunk_work(P, h->W, sl);
            pthread_mutex_lock(&P->mu);
            sl->state = SLOT_DONE;
            pthread_cond_broadcast(&P->cv);
            continue;
        }
        pthread_cond_wait(&P->cv, &P->mu);
    }
    pthread_mutex_unlock(&P->mu);
    return NULL;
}

/* The rest of file f (r has read its header) through the pipeline; returns when every chunk is
 * committed, or at the first error with no chunk still being mapped. The table's thread commits
 * first, then cuts the next chunk while the ring has room, then maps one itself. */
static int pipeline_file(pipeline *P, csv_reader *r, const file_ctx *f, cf_err *err) {
    int eof = 0, rc = CF_OK;
    pthread_mutex_lock(&P->mu);
    P->f = f;
    for (;;) {
        chunk_slot *sl = &P->slot[P->next_commit % P->n_slots];
        if (P->next_commit < P->next_read && sl->state == SLOT_DONE) {
            pthread_mutex_unlock(&P->mu);
            rc = chunk_commit(P, sl, err);
            pthread_mutex_lock(&P->mu);
            sl->state = SLOT_FREE;
            P->next_commit++;
            if (rc) break;
            continue;
        }
        if (eof && P->next_commit == P->next_read) break;
        if (!eof && P->next_read - P->next_commit < P->n_slots) {
            sl = &P->slot[P->next_read % P->n_slots];
            pthread_mutex_unlock(&P->mu);
            csv_chunk ch;
            int got = csv_next_chunk(r, P->chunk_bytes, &ch, err);
            size_t ch_len = got > 0 ? ch.len : 0;
            int ch_last = got > 0 && ch.last;
            if (got > 0 && csv_open_chunk(&sl->r, f->path, P->T->t->sep, &ch, err) != CF_OK) got = -1;
            pthread_mutex_lock(&P->mu);
            if (got < 0) {
                rc = err->code ? err->code : CF_EINTERNAL;
                break;
            }
            if (got == 0) {
                eof = 1;
                continue;
            }
            sl->state = SLOT_READY;
            P->next_read++;
            uint64_t budget = P->T->g->sample_bytes ? P->T->g->opt->sample[P->T->ti].budget : 0;
            if (budget && (P->T->sample_read += ch_len) >= budget && !ch_last) {
                P->T->sample_cut = 1; /* a sample: map what was cut, read no further */
                eof = 1;
            }
            pthread_cond_broadcast(&P->cv);
            continue;
        }
        if (P->next_take < P->next_read) {
            sl = &P->slot[P->next_take++ % P->n_slots];
            sl->state = SLOT_TAKEN;
            pthread_mutex_unlock(&P->mu);
            chunk_work(P, &P->wk[0], sl);
            pthread_mutex_lock(&P->mu);
            sl->state = SLOT_DONE;
            continue;
        }
        pthread_cond_wait(&P->cv, &P->mu);
    }
    if (rc) { /* drop the chunks not taken, wait for those being mapped, forget them all */
        P->next_take = P->next_read;
        for (;;) {
            int busy = 0;
            for (size_t i = 0; i < P->n_slots; i++) busy |= P->slot[i].state == SLOT_TAKEN;
            if (!busy) break;
            pthread_cond_wait(&P->cv, &P->mu);
        }
        for (size_t i = 0; i < P->n_slots; i++) {
            csv_close(P->slot[i].r);
            P->slot[i].r = NULL;
            P->slot[i].state = SLOT_FREE;
        }
        P->next_commit = P->next_read;
    }
    P->f = NULL;
    pthread_mutex_unlock(&P->mu);
    return rc;
}

static void table_rt_scratch_free(table_rt *T) {
    CF_FREE_ALL(T->own_b.ev, T->own_b.subject, T->own_b.row, T->own_b.strings.p, T->stage, T->row.p,
                T->scratch.p, T->tbuf.p, T->abuf.p, T->key.p, T->skey.p, T->join_row);
    ctx_free(&T->ctx);
}

static void pipeline_free(pipeline *P) {
    if (!P) return;
    pthread_mutex_lock(&P->mu);
    P->stop = 1;
    pthread_cond_broadcast(&P->cv);
    pthread_mutex_unlock(&P->mu);
    for (int i = 0; i < P->n_started; i++) pthread_join(P->tid[i], NULL);
    pthread_cond_destroy(&P->cv);
    pthread_mutex_destroy(&P->mu);
    for (size_t i = 0; P->slot && i < P->n_slots; i++) {
        chunk_slot *sl = &P->slot[i];
        csv_close(sl->r);
        CF_FREE_ALL(sl->b.ev, sl->b.subject, sl->b.row, sl->b.strings.p, sl->rej.why.p, sl->rej.line);
        for (size_t k = 0; sl->ev && k < P->T->t->n_events; k++) {
            sl->ev[k].ucols = NULL; /* the table's */
            event_rt_free(&sl->ev[k]);
        }
        free(sl->ev);
    }
    free(P->slot);
    for (int i = 0; P->wk && i < P->n_threads; i++) table_rt_scratch_free(&P->wk[i]);
    free(P->wk);
    free(P->args);
    free(P);
}

/* A pipeline of n_threads threads (the table's own and n_threads - 1 helpers) for table T. */
static int pipeline_new(pipeline **out, table_rt *T, int n_threads, size_t chunk_bytes, cf_err *err) {
    *out = NULL;
    pipeline *P = calloc(1, sizeof *P);
    if (!P) return cf_fail(err, CF_EINTERNAL, "out of memory");
    pthread_mutex_init(&P->mu, NULL);
    pthread_cond_init(&P->cv, NULL);
    P->T = T;
    P->n_threads = n_threads < 1 ? 1 : n_threads > 64 ? 64 : n_threads;
    P->chunk_bytes = chunk_bytes;
    P->n_slots = 2 * (size_t)P->n_threads + 2;
    P->slot = calloc(P->n_slots, sizeof *P->slot);
    P->wk = calloc((size_t)P->n_threads, sizeof *P->wk);
    P->args = calloc((size_t)P->n_threads, sizeof *P->args);
    int ok = P->slot && P->wk && P->args;
    size_t nj = T->t->n_joins ? T->t->n_joins : 1;
    for (size_t i = 0; ok && i < P->n_slots; i++) {
        P->slot[i].ev = calloc(T->t->n_events ? T->t->n_events : 1, sizeof *P->slot[i].ev);
        ok = P->slot[i].ev != NULL;
        for (size_t k = 0; ok && k < T->t->n_events; k++) strmap_init(&P->slot[i].ev[k].groups);
    }
    for (int i = 0; ok && i < P->n_threads; i++) {
        table_rt *W = &P->wk[i];
        W->g = T->g;
        W->ti = T->ti;
        W->t = T->t;
        W->source = T->source;
        ok = (W->join_row = calloc(nj, sizeof *W->join_row)) != NULL;
    }
    if (!ok) {
        pipeline_free(P);
        return cf_fail(err, CF_EINTERNAL, "out of memory");
    }
    for (int i = 1; i < P->n_threads; i++) {
        P->args[i].P = P;
        P->args[i].W = &P->wk[i];
        if (pthread_create(&P->tid[P->n_started], NULL, chunk_helper, &P->args[i]) != 0) break;
        P->n_started++;
    }
    *out = P;
    return CF_OK;
}

/* Reads one file of table T: its header, then its rows, on T's thread or through T's pipeline. */
static int ingest_file(table_rt *T, pipeline *P, const char *path, cf_err *err) {
    table_spec *t = T->t;
    csv_reader *r = NULL;
    csv_record rec;
    int rc = open_with_header(path, t->sep, &r, &rec, err);
    if (rc) return rc;
    T->sample_read += rec.nfields;
    for (size_t i = 0; i < rec.nfields; i++) T->sample_read += rec.lens[i];
    file_ctx f;
    memset(&f, 0, sizeof f);
    f.path = path;
    f.nh = rec.nfields;
    f.header = calloc(f.nh, sizeof *f.header);
    f.hlen = calloc(f.nh, sizeof *f.hlen);
    if (!f.header || !f.hlen) {
        rc = cf_fail(err, CF_EINTERNAL, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < f.nh; i++) {
        if (!(f.header[i] = strdup(rec.fields[i]))) {
            rc = cf_fail(err, CF_EINTERNAL, "out of memory");
            goto done;
        }
        f.hlen[i] = rec.lens[i];
    }
    if ((rc = bind_file(T, f.header, f.nh, path, err))) goto done;
    ctx_for_file(T, &f);
    if (t->subject_from &&
        (rc = file_subject(T, path, T->join_row, &f.file_subj, &f.file_key, &f.file_key_len, &f.have_file_subj, err)))
        goto done;
    T->st->files++;
    rc = P ? pipeline_file(P, r, &f, err) : ingest_rows(T, r, &f, err);
done:
    if (f.header)
        for (size_t i = 0; i < f.nh; i++) free(f.header[i]);
    free(f.header);
    free(f.hlen);
    free(f.file_key);
    csv_close(r);
    return rc;
}

static int ingest_table(engine *g, size_t ti, cf_err *err) {
    mapping *m = g->m;
    table_spec *t = &m->tables[ti];
    table_rt T;
    memset(&T, 0, sizeof T);
    T.g = g;
    T.ti = ti;
    T.t = t;
    T.st = g->table_stats[ti];
    T.source = (uint32_t)g->table_source[ti];
    T.b = &T.own_b;
    char **files = NULL;
    size_t nf = 0;
    pipeline *P = NULL;
    int rc = mapping_files(m, g->input_dir, t->file, t->optional, &files, &nf, err);
    if (rc) return rc;
    T.ev = calloc(t->n_events, sizeof *T.ev);
    T.join_row = calloc(t->n_joins ? t->n_joins : 1, sizeof *T.join_row);
    if (!T.ev || !T.st || !T.join_row) {
        rc = cf_fail(err, CF_EINTERNAL, "out of memory");
        goto done;
    }
    for (size_t k = 0; k < t->n_events; k++) strmap_init(&T.ev[k].groups);
    int once = 0;
    for (size_t k = 0; k < t->n_events; k++) once |= t->events[k].once != ONCE_ALL;
    if (nf && !once && (rc = pipeline_new(&P, &T, g->chunk_threads, g->chunk_bytes, err))) goto done;
    for (size_t i = 0; i < nf && !rc && !T.sample_cut; i++) {
        if (g->sample_bytes && T.sample_read >= g->opt->sample[ti].budget) {
            T.sample_cut = 1; /* a sample: the files after this one are not read */
            break;
        }
        rc = ingest_file(&T, P, files[i], err);
    }
    /* `once = last`: each group's latest event, in the order groups were first seen. */
    for (size_t k = 0; k < t->n_events && !rc; k++) {
        event_rt *er = &T.ev[k];
        if (t->events[k].once != ONCE_LAST) continue;
        for (uint32_t gi = 0; gi < er->groups.count && !rc; gi++) {
            last_slot *ls = gi < er->last_cap ? &er->last[gi] : NULL;
            if (!ls || !ls->str) continue; /* the group's candidates all failed */
            if (batch_add(T.b, &ls->sg, 1, ls->str, ls->str_len, ls->subject, ls->row, ls->key, ls->key_len))
                rc = cf_fail(err, CF_EINTERNAL, "out of memory");
            T.st->events++;
            if (!rc && T.b->n >= BATCH_EVENTS) rc = batch_flush(g, T.b, T.source, 0, err);
        }
    }
    if (!rc) rc = batch_flush(g, T.b, T.source, T.rows_since_flush, err);
    /* A mapping that rejects every row it reads is wrong (a time format that never parses, say),
     * not a source with bad rows: stop, unless the mapping says the table or event may be empty. */
    for (size_t k = 0; k < t->n_events && !rc && !g->sample_bytes; k++) {
        event_rt *er = &T.ev[k];
        if (er->rejected && !er->made && !t->may_be_empty && !t->events[k].may_be_empty)
            rc = cf_fail(err, CF_EINPUT, "%s:%d: [event %s] rejected every row it applies to (%llu), e.g. %s: %s; fix the "
                         "mapping, or write `may_be_empty = yes` if that can be right", m->path, t->events[k].line,
                         t->events[k].name, (unsigned long long)er->rejected, er->first_where, er->first_reason);
    }
    if (!rc && !g->sample_bytes && T.st->rows && T.st->rows == T.st->rows_rejected && !t->may_be_empty)
        rc = cf_fail(err, CF_EINPUT, "%s:%d: [table %s]: every row (%llu) was rejected; see the first rejection with "
                     "--strict, fix the mapping, or write `may_be_empty = yes` if that can be right", m->path, t->line,
                     t->name, (unsigned long long)T.st->rows);
    if (g->opt->sample && T.st) {
        mapped_csv_sample *sm = &g->opt->sample[ti];
        sm->events = T.st->events;
        sm->read = T.sample_read;
        sm->cut = T.sample_cut;
    }
done:
    pipeline_free(P);
    for (size_t k = 0; T.ev && k < t->n_events; k++) event_rt_free(&T.ev[k]);
    free(T.ev);
    table_rt_scratch_free(&T);
    mapping_files_free(files, nf);
    return rc;
}

/* Marks the dictionaries a template uses through map: filters. */
static void tpl_dict_needs(const mapping *m, const tpl *tp, char *need) {
    for (size_t p = 0; p < tp->n_parts; p++)
        for (size_t a = 0; a < tp->parts[p].n_alts; a++)
            for (size_t f = 0; f < tp->parts[p].alts[a].n_filters; f++) {
                const tpl_filter *fl = &tp->parts[p].alts[a].filters[f];
                if (fl->kind == TF_MAP)
                    for (size_t d = 0; d < m->n_dicts; d++)
                        if (!strcmp(m->dicts[d].name, fl->name)) need[d] = 1;
            }
}

static void cond_dict_needs(const mapping *m, const cond *c, char *need) {
    if (c->dict >= 0) need[c->dict] = 1;
    tpl_dict_needs(m, &c->lhs, need);
}

/* Marks the dictionaries a table uses (joins, map: filters, `in DICT` conditions). */
static void table_dict_needs(const mapping *m, const table_spec *t, char *need) {
    for (size_t j = 0; j < t->n_joins; j++) {
        need[t->joins[j].dict] = 1;
        tpl_dict_needs(m, &t->joins[j].key, need); /* a join key may itself use map: */
    }
    tpl_dict_needs(m, &t->subject, need);
    if (t->subject_from) cond_dict_needs(m, t->subject_from, need);
    for (size_t k = 0; k < t->n_events; k++) {
        const event_spec *e = &t->events[k];
        const tpl *all[] = {&e->code, &e->time, &e->numeric, &e->text, &e->description, &e->anchor, &e->not_after,
                            &e->once_key};
        for (size_t q = 0; q < sizeof all / sizeof all[0]; q++) tpl_dict_needs(m, all[q], need);
        for (size_t q = 0; q < e->n_where; q++) cond_dict_needs(m, &e->where[q], need);
    }
}

static void engine_fail(engine *g, const cf_err *err) {
    if (!g->failed) {
        g->failed = 1;
        g->err = *err;
    }
}

/* A worker takes the next task it can run: a dictionary to load, else a table whose
 * dictionaries are loaded; it waits while tasks remain that it cannot run yet. */
static void *worker(void *arg) {
    engine *g = arg;
    mapping *m = g->m;
    mapped_csv_options quiet = *g->opt;
    quiet.show_progress = 0;
    pthread_mutex_lock(&g->lock);
    for (;;) {
        if (g->failed) break;
        int took = 0, waiting = 0;
        /* Longest critical path first: a dictionary counts with the largest table that waits
         * for it, so a big table's small dictionary is loaded before a big dictionary that only
         * a small table needs. */
        long best_d = -1, best_t = -1;
        double best = -1;
        for (size_t d = 0; d < m->n_dicts; d++)
            if (g->dict_state[d] == 1 && g->dict_weight[d] > best) best = g->dict_weight[d], best_d = (long)d;
        for (size_t t = 0; t < m->n_tables; t++) {
            if (g->table_state[t] != 1) continue;
            int ready = 1;
            for (size_t d = 0; d < m->n_dicts; d++)
                if (g->table_needs[t * m->n_dicts + d] && g->dict_state[d] != 3) ready = 0;
            if (!ready) {
                waiting = 1;
                continue;
            }
            if (g->table_weight[t] > best) best = g->table_weight[t], best_t = (long)t, best_d = -1;
        }
        if (best_d >= 0) {
            size_t d = (size_t)best_d;
            g->dict_state[d] = 2;
            took = 1;
            pthread_mutex_unlock(&g->lock);
            cf_err err = {0};
            int rc = load_dict(m, d, g->input_dir, &g->dicts[d], &quiet, &err);
            pthread_mutex_lock(&g->lock);
            if (rc) engine_fail(g, &err);
            g->dict_state[d] = 3;
            pthread_cond_broadcast(&g->changed);
        } else if (best_t >= 0) {
            size_t t = (size_t)best_t;
            g->table_state[t] = 2;
            took = 1;
            pthread_mutex_unlock(&g->lock);
            cf_err err = {0};
            int rc = ingest_table(g, t, &err);
            pthread_mutex_lock(&g->lock);
            if (rc && err.msg[0]) engine_fail(g, &err);
            else if (rc) g->failed = 1;
            g->table_state[t] = 3;
            pthread_cond_broadcast(&g->changed);
        }
        for (size_t d = 0; d < m->n_dicts && !took; d++)
            if (g->dict_state[d] == 2) waiting = 1; /* being loaded by the other worker */
        if (took) continue;
        if (!waiting) break;
        pthread_cond_wait(&g->changed, &g->lock);
    }
    pthread_cond_broadcast(&g->changed);
    pthread_mutex_unlock(&g->lock);
    return NULL;
}

/* Bytes a file (or all files of a pattern) holds, in *w; a missing file that is not optional is
 * an error, found here, in mapping order, before any worker starts. */
static int files_weight(const mapping *m, const char *input_dir, const char *file, int optional, double *w,
                        cf_err *err) {
    char **files;
    size_t n;
    *w = 0;
    int rc = mapping_files(m, input_dir, file, optional, &files, &n, err);
    if (rc) return rc;
    for (size_t i = 0; i < n; i++) {
        struct stat st;
        if (stat(files[i], &st) == 0) *w += (double)st.st_size;
    }
    mapping_files_free(files, n);
    return CF_OK;
}

/* The input bytes of a table's files as the reader will see them (gzip ones estimated). */
static int files_input_size(const mapping *m, const char *input_dir, const table_spec *t, uint64_t *total,
                            cf_err *err) {
    char **files;
    size_t n;
    *total = 0;
    int rc = mapping_files(m, input_dir, t->file, t->optional, &files, &n, err);
    if (rc) return rc;
    for (size_t i = 0; i < n && !rc; i++) {
        uint64_t b;
        if (!(rc = csv_input_size(files[i], &b, err))) *total += b;
    }
    mapping_files_free(files, n);
    return rc;
}

int mapped_csv_input_bytes(const mapping *m, const char *input_dir, const char *only_tables, uint64_t *bytes,
                           cf_err *err) {
    mapped_csv_options o = {.only_tables = only_tables};
    *bytes = 0;
    struct stat st;
    if (stat(input_dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return cf_fail(err, CF_EINPUT, "%s: --input must be a directory holding the mapped tables", input_dir);
    for (size_t t = 0; t < m->n_tables; t++) {
        uint64_t b;
        if (!table_selected(&o, m->tables[t].name)) continue;
        int rc = files_input_size(m, input_dir, &m->tables[t], &b, err);
        if (rc) return rc;
        *bytes += b;
    }
    return CF_OK;
}

int mapped_csv_ingest(mapping *m, const char *input_dir, store_writer *w, ingest_report *rep,
                      const mapped_csv_options *opt, cf_err *err) {
    struct stat st;
    if (stat(input_dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return cf_fail(err, CF_EINPUT, "%s: --input must be a directory holding the mapped tables", input_dir);
    engine g = {.m = m, .input_dir = input_dir, .w = w, .rep = rep, .opt = opt};
    size_t nd = m->n_dicts ? m->n_dicts : 1, nt = m->n_tables;
    g.dicts = calloc(nd, sizeof *g.dicts);
    g.dict_state = calloc(nd, sizeof *g.dict_state);
    g.table_state = calloc(nt, sizeof *g.table_state);
    g.table_needs = calloc(nt * nd, 1);
    g.table_source = calloc(nt, sizeof *g.table_source);
    g.table_stats = calloc(nt, sizeof *g.table_stats);
    g.dict_weight = calloc(nd, sizeof *g.dict_weight);
    g.table_weight = calloc(nt ? nt : 1, sizeof *g.table_weight);
    int rc = CF_OK;
    if (!g.dict_weight || !g.table_weight || !g.dicts || !g.dict_state || !g.table_state || !g.table_needs || !g.table_source || !g.table_stats) {
        rc = cf_fail(err, CF_EINTERNAL, "out of memory");
        goto done;
    }
    /* Sources and report lines are created in mapping order, before any thread runs, so ids
     * and the report do not depend on which worker finishes first. */
    size_t selected = 0;
    for (size_t t = 0; t < nt; t++) {
        if (!table_selected(opt, m->tables[t].name)) continue;
        selected++;
        g.table_state[t] = 1;
        table_dict_needs(m, &m->tables[t], g.table_needs + t * nd);
        for (size_t d = 0; d < m->n_dicts; d++)
            if (g.table_needs[t * nd + d]) g.dict_state[d] = 1;
        g.table_source[t] = store_writer_source(w, m->tables[t].name);
        if (g.table_source[t] < 0 || !ingest_report_source(rep, m->tables[t].name, m->tables[t].file)) {
            rc = cf_fail(err, CF_EINTERNAL, "out of memory or more than %d tables", STORE_MAX_SOURCES);
            goto done;
        }
    }
    if (!selected) {
        rc = cf_fail(err, CF_EINPUT, "--tables selects none of the mapping's tables");
        goto done;
    }
    for (size_t t = 0; t < nt; t++)
        if (g.table_state[t] &&
            (rc = files_weight(m, input_dir, m->tables[t].file, m->tables[t].optional, &g.table_weight[t], err)))
            goto done;
    g.sample_bytes = opt->sample ? opt->sample_bytes : 0;
    uint64_t all_input = 0;
    for (size_t t = 0; t < nt && g.sample_bytes; t++) {
        memset(&opt->sample[t], 0, sizeof opt->sample[t]);
        if (g.table_state[t] && (rc = files_input_size(m, input_dir, &m->tables[t], &opt->sample[t].total, err)))
            goto done;
        all_input += opt->sample[t].total;
    }
    for (size_t t = 0; t < nt && g.sample_bytes; t++) {
        double share = all_input ? (double)g.sample_bytes * ((double)opt->sample[t].total / (double)all_input) : 0;
        opt->sample[t].budget = share > (double)MAPPED_CSV_SAMPLE_MIN ? (uint64_t)share : MAPPED_CSV_SAMPLE_MIN;
    }
    for (size_t d = 0; d < m->n_dicts; d++) {
        if (!g.dict_state[d]) continue;
        double own, waiting_table = 0;
        if ((rc = files_weight(m, input_dir, m->dicts[d].file, m->dicts[d].optional, &own, err))) goto done;
        for (size_t t = 0; t < nt; t++)
            if (g.table_needs[t * nd + d] && g.table_weight[t] > waiting_table) waiting_table = g.table_weight[t];
        g.dict_weight[d] = own + waiting_table;
    }
    /* The report's array is complete now, so pointers into it stay valid. */
    for (size_t t = 0; t < nt; t++)
        if (g.table_state[t]) g.table_stats[t] = ingest_report_source(rep, m->tables[t].name, m->tables[t].file);
    pthread_mutex_init(&g.lock, NULL);
    pthread_cond_init(&g.changed, NULL);
    progress_begin(&g.pr, "ingest", "rows", 0);
    if (!opt->show_progress) g.pr.enabled = 0;
    /* Up to two tables at a time (a small table's work overlaps a big one's), each mapped in
     * chunks by `threads` threads; more tables at once would only add threads on a busy machine. */
    int threads = opt->threads > 0 ? opt->threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (threads < 1) threads = 1;
    if (threads > 64) threads = 64;
    g.chunk_threads = threads;
    g.chunk_bytes = opt->chunk_bytes ? opt->chunk_bytes : MAPPED_CSV_CHUNK_BYTES;
    int nthreads = threads < 2 ? 1 : 2;
    pthread_t tid[64];
    int started = 0;
    for (int i = 0; i < nthreads; i++) {
        if (pthread_create(&tid[i], NULL, worker, &g) != 0) break;
        started++;
    }
    if (!started) worker(&g); /* no threads to be had: do the work here */
    for (int i = 0; i < started; i++) pthread_join(tid[i], NULL);
    progress_end(&g.pr);
    pthread_cond_destroy(&g.changed);
    pthread_mutex_destroy(&g.lock);
    if (g.failed) {
        if (err) *err = g.err;
        rc = g.err.code ? g.err.code : CF_EINPUT;
    }
done:
    for (size_t d = 0; g.dicts && d < m->n_dicts; d++) dict_free(&g.dicts[d]);
    CF_FREE_ALL(g.dicts, g.dict_state, g.table_state, g.table_needs, g.table_source, g.table_stats, g.dict_weight,
                g.table_weight);
    return rc;
}
