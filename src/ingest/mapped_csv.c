/* The mapped-CSV engine; see mapped_csv.h.
 *
 * Dictionaries are loaded whole into memory first (they are lookup tables: item definitions,
 * code maps, one row per admission). Tables then stream through the CSV reader one record at a
 * time. Templates were parsed with the mapping; here they are bound to column positions once per
 * file, so evaluating a row touches no strings but the row's own fields. */
#include "ingest/mapped_csv.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "ingest/csv.h"
#include "util/ids.h"
#include "util/progress.h"
#include "util/strmap.h"

typedef struct {
    char *data;
    size_t len, cap;
} sbuf;

static int sbuf_reserve(sbuf *b, size_t extra) {
    if (b->len + extra + 1 <= b->cap) return 0;
    size_t nc = b->cap ? b->cap : 256;
    while (nc < b->len + extra + 1) nc *= 2;
    char *d = realloc(b->data, nc);
    if (!d) return -1;
    b->data = d;
    b->cap = nc;
    return 0;
}

static int sbuf_add(sbuf *b, const char *s, size_t n) {
    if (sbuf_reserve(b, n)) return -1;
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

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
    const char *s = d->values.data + off;
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
    const char *reason;       /* set on evaluation failure */
    char reason_buf[256];
} row_ctx;

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

/* Binds a template's column references to positions in header (for this table) and to joins. */
static int bind_tpl(tpl *t, char **header, size_t nh, const join_spec *joins, size_t n_joins,
                    const mapping *m, const char *file, cf_err *err) {
    for (size_t i = 0; i < t->n_parts; i++)
        for (size_t a = 0; a < t->parts[i].n_alts; a++) {
            tpl_ref *r = &t->parts[i].alts[a];
            if (r->dict_name) {
                r->join = -1;
                for (size_t j = 0; j < n_joins; j++)
                    if (!strcmp(joins[j].alias, r->dict_name)) r->join = (int)j;
                if (r->join < 0)
                    return cf_fail(err, CF_EINPUT, "%s:%d: dictionary '%s' is not joined here", m->path, t->line, r->dict_name);
                const dict_spec *d = &m->dicts[joins[r->join].dict];
                r->col = -1;
                for (size_t c = 0; c < d->n_columns; c++)
                    if (!strcmp(d->columns[c], r->col_name)) r->col = (int)c;
                if (r->col < 0)
                    return cf_fail(err, CF_EINPUT, "%s:%d: '{%s.%s}': column '%s' is not among [dictionary %s] columns",
                                   m->path, t->line, r->dict_name, r->col_name, r->col_name, r->dict_name);
            } else {
                r->col = find_col(header, nh, r->col_name);
                if (r->col < 0)
                    return cf_fail(err, CF_EINPUT, "%s:%d: column '%s' is not in the header of %s", m->path, t->line,
                                   r->col_name, file);
            }
            for (size_t f = 0; f < r->n_filters; f++) {
                tpl_filter *fl = &r->filters[f];
                if ((fl->kind == TF_MINUS || fl->kind == TF_PLUS) && fl->name) {
                    fl->col = find_col(header, nh, fl->name);
                    if (fl->col < 0)
                        return cf_fail(err, CF_EINPUT, "%s:%d: column '%s' (in %s:) is not in the header of %s", m->path,
                                       t->line, fl->name, fl->kind == TF_MINUS ? "minus" : "plus", file);
                }
                if (fl->kind == TF_MAP) {
                    fl->dict = -1;
                    for (size_t d = 0; d < m->n_dicts; d++)
                        if (!strcmp(m->dicts[d].name, fl->name)) fl->dict = (int)d;
                }
            }
        }
    return CF_OK;
}

/* ------------------------------------------------------------- evaluation */

static int fail_reason(row_ctx *c, const char *fmt, const char *a, const char *b) {
    snprintf(c->reason_buf, sizeof c->reason_buf, fmt, a, b);
    c->reason = c->reason_buf;
    return -1;
}

static int parse_ll(const char *s, size_t n, long long *out) {
    char buf[32];
    while (n && isspace((unsigned char)*s)) s++, n--;
    while (n && isspace((unsigned char)s[n - 1])) n--;
    if (!n || n >= sizeof buf) return -1;
    memcpy(buf, s, n);
    buf[n] = '\0';
    char *end;
    errno = 0;
    long long v = strtoll(buf, &end, 10);
    if (errno || *end) return -1;
    *out = v;
    return 0;
}

/* Evaluates one field reference (with filters) into tmp; returns 0 and sets *s and *n. */
static int eval_ref(const tpl_ref *r, row_ctx *c, sbuf *tmp, const char **s, size_t *n) {
    if (r->join >= 0) {
        int64_t row = c->join_row[r->join];
        if (row < 0 && !c->joins[r->join].optional)
            return fail_reason(c, "no row in dictionary '%s' matches this row's join key%s", c->joins[r->join].dict_name, "");
        if (row < 0) {
            *s = "";
            *n = 0;
        } else {
            *s = dict_value(&c->dicts[c->joins[r->join].dict], row, (size_t)r->col, n);
        }
    } else {
        *s = c->fields[r->col];
        *n = c->lens[r->col];
    }
    for (size_t f = 0; f < r->n_filters; f++) {
        const tpl_filter *fl = &r->filters[f];
        switch (fl->kind) {
        case TF_TRIM:
            while (*n && isspace((unsigned char)**s)) (*s)++, (*n)--;
            while (*n && isspace((unsigned char)(*s)[*n - 1])) (*n)--;
            break;
        case TF_UPPER:
        case TF_LOWER: {
            if (!(tmp->data && *s >= tmp->data && *s < tmp->data + tmp->cap)) {
                tmp->len = 0;
                if (sbuf_add(tmp, *s, *n)) return fail_reason(c, "out of memory%s%s", "", "");
                *s = tmp->data;
            }
            /* Either way *s now lies in tmp, which we own: transform in place. */
            char *dst = tmp->data + (*s - tmp->data);
            for (size_t i = 0; i < *n; i++)
                dst[i] = (char)(fl->kind == TF_UPPER ? toupper((unsigned char)dst[i]) : tolower((unsigned char)dst[i]));
            break;
        }
        case TF_MAP: {
            const dict_rt *d = &c->dicts[fl->dict];
            int64_t row = strmap_find(&d->keys, *s, *n);
            if (row < 0) {
                *s = "";
                *n = 0;
            } else {
                *s = dict_value(d, row, 0, n);
            }
            break;
        }
        case TF_SPLIT: {
            const char *p = *s, *end = *s + *n;
            for (long long k = 0; k < fl->num && p; k++) {
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
        case TF_MINUS:
        case TF_PLUS: {
            long long a, b = fl->num;
            if (!*n) break; /* empty stays empty */
            if (parse_ll(*s, *n, &a))
                return fail_reason(c, "column '%s' is not an integer (needed by %s)", r->col_name,
                                   fl->kind == TF_MINUS ? "minus" : "plus");
            if (fl->col >= 0 && parse_ll(c->fields[fl->col], c->lens[fl->col], &b))
                return fail_reason(c, "column '%s' is not an integer (needed by %s)", fl->name,
                                   fl->kind == TF_MINUS ? "minus" : "plus");
            char num[32];
            int k = snprintf(num, sizeof num, "%lld", fl->kind == TF_MINUS ? a - b : a + b);
            tmp->len = 0;
            if (sbuf_add(tmp, num, (size_t)k)) return fail_reason(c, "out of memory%s%s", "", "");
            *s = tmp->data;
            *n = (size_t)k;
            break;
        }
        }
    }
    return 0;
}

/* Appends the template's value to out. Empty fields become `empty` when it is not NULL.
 * Sets *all_empty when every field was empty (and there were fields). */
static int eval_tpl(const tpl *t, row_ctx *c, const char *empty, sbuf *out, sbuf *tmp, int *any_field_empty) {
    if (any_field_empty) *any_field_empty = 0;
    for (size_t i = 0; i < t->n_parts; i++) {
        const tpl_part *p = &t->parts[i];
        if (p->literal[0] && sbuf_add(out, p->literal, strlen(p->literal))) return fail_reason(c, "out of memory%s%s", "", "");
        if (!p->n_alts) continue;
        const char *s = "";
        size_t n = 0;
        for (size_t a = 0; a < p->n_alts; a++) {
            if (eval_ref(&p->alts[a], c, tmp, &s, &n)) return -1;
            if (n) break;
        }
        if (!n) {
            if (any_field_empty) *any_field_empty = 1;
            if (empty) {
                s = empty;
                n = strlen(empty);
            }
        }
        /* s may point into tmp, which the next field reuses: copy now. */
        if (sbuf_add(out, s, n)) return fail_reason(c, "out of memory%s%s", "", "");
    }
    return 0;
}

static int eval_cond(const cond *cd, row_ctx *c, sbuf *scratch, sbuf *tmp, int *result) {
    scratch->len = 0;
    if (sbuf_reserve(scratch, 0)) return fail_reason(c, "out of memory%s%s", "", "");
    scratch->data[0] = '\0';
    if (eval_tpl(&cd->lhs, c, NULL, scratch, tmp, NULL)) return -1;
    const char *v = scratch->data;
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
    }
    return 0;
}

/* ------------------------------------------------------------- dictionaries */

static void dict_free(dict_rt *d) {
    strmap_free(&d->keys);
    free(d->values.data);
    free(d->value_off);
    memset(d, 0, sizeof *d);
}

static int load_dict(mapping *m, size_t di, const char *input_dir, dict_rt *d, const mapped_csv_options *opt, cf_err *err) {
    dict_spec *ds = &m->dicts[di];
    char path[4096];
    mapping_resolve_path(m, input_dir, ds->file, path, sizeof path);
    strmap_init(&d->keys);
    d->n_columns = ds->n_columns;
    struct stat fst;
    if (ds->optional && stat(path, &fst) != 0) return CF_OK; /* absent: an empty dictionary */
    csv_reader *r;
    int rc = csv_open(&r, path, err);
    if (rc) return rc;
    csv_record rec;
    int got = csv_next(r, &rec, err);
    if (got <= 0) {
        csv_close(r);
        return got < 0 ? err->code : cf_fail(err, CF_EINPUT, "%s: empty file, expected a header line", path);
    }
    char **header = malloc(rec.nfields * sizeof *header);
    size_t nh = rec.nfields;
    int *cols = malloc((ds->n_columns ? ds->n_columns : 1) * sizeof *cols);
    if (!header || !cols) {
        free(header);
        free(cols);
        csv_close(r);
        return cf_fail(err, CF_EINTERNAL, "out of memory");
    }
    for (size_t i = 0; i < nh; i++) header[i] = strdup(rec.fields[i]);
    rc = bind_tpl(&ds->key, header, nh, NULL, 0, m, path, err);
    for (size_t q = 0; !rc && q < ds->n_where; q++) rc = bind_tpl(&ds->where[q].lhs, header, nh, NULL, 0, m, path, err);
    sbuf cond_scratch = {0};
    for (size_t c = 0; !rc && c < ds->n_columns; c++) {
        cols[c] = find_col(header, nh, ds->columns[c]);
        if (cols[c] < 0)
            rc = cf_fail(err, CF_EINPUT, "%s:%d: [dictionary %s] column '%s' is not in the header of %s", m->path, ds->line,
                         ds->name, ds->columns[c], path);
    }
    size_t cap_rows = 0;
    sbuf key = {0}, tmp = {0};
    row_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
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
            if (eval_cond(&ds->where[q], &ctx, &cond_scratch, &tmp, &keep)) {
                rc = cf_fail(err, CF_EINPUT, "%s:%llu: dictionary condition: %s", path, (unsigned long long)rec.line,
                             ctx.reason ? ctx.reason : "failed");
                break;
            }
        if (rc) break;
        if (!keep) continue;
        key.len = 0;
        if (sbuf_reserve(&key, 0) || eval_tpl(&ds->key, &ctx, NULL, &key, &tmp, NULL)) {
            rc = cf_fail(err, CF_EINPUT, "%s:%llu: dictionary key: %s", path, (unsigned long long)rec.line,
                         ctx.reason ? ctx.reason : "out of memory");
            break;
        }
        uint32_t before = d->keys.count;
        int64_t id = strmap_intern(&d->keys, key.data ? key.data : "", key.len);
        if (id < 0) {
            rc = cf_fail(err, CF_EINTERNAL, "out of memory");
            break;
        }
        if (d->keys.count == before) {
            d->duplicates++; /* first row wins */
            continue;
        }
        if (d->rows == cap_rows) {
            cap_rows = cap_rows ? cap_rows * 2 : 1024;
            uint64_t *p = realloc(d->value_off, cap_rows * d->n_columns * sizeof *p);
            if (!p) {
                rc = cf_fail(err, CF_EINTERNAL, "out of memory");
                break;
            }
            d->value_off = p;
        }
        for (size_t c = 0; c < d->n_columns; c++) {
            d->value_off[d->rows * d->n_columns + c] = d->values.len;
            if (sbuf_add(&d->values, rec.fields[cols[c]], rec.lens[cols[c]]) || sbuf_add(&d->values, "", 1)) {
                rc = cf_fail(err, CF_EINTERNAL, "out of memory");
                break;
            }
        }
        d->rows++;
    }
    progress_end(&pr);
    if (!rc && got < 0) rc = err->code;
    for (size_t i = 0; i < nh; i++) free(header[i]);
    free(header);
    free(cols);
    free(key.data);
    free(tmp.data);
    free(cond_scratch.data);
    csv_close(r);
    return rc;
}

/* ------------------------------------------------------------- tables */

/* One event of the current row, staged until the whole row has succeeded. */
typedef struct {
    int64_t time;
    size_t code_off, code_len;
    float numeric;
    int has_text;
    size_t text_off, text_len;
    size_t desc_off, desc_len;
} staged;

/* Events of whole, accepted rows, waiting to go to the store writer. Workers fill their own
 * batch without locking and hand it over under the engine lock, so the serial part (code
 * interning, appending to the writer's buffer) is a small share of the work. */
typedef struct {
    staged *ev;
    int64_t *subject;
    uint64_t *row;
    size_t n, cap;
    sbuf strings;
    int key_col_len_dummy;
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
static int batch_flush_locked(engine *g, batch *b, uint32_t source, int subject_is_string, cf_err *err) {
    for (size_t k = 0; k < b->n; k++) {
        staged *sg = &b->ev[k];
        const char *str = b->strings.data;
        if (sg->code_len == SIZE_MAX) { /* a subject key record */
            int rc = store_writer_subject_key(g->w, b->subject[k], str + sg->text_off, sg->text_len, err);
            if (rc) return rc;
            continue;
        }
        int64_t code = store_writer_code(g->w, str + sg->code_off, sg->code_len);
        if (code < 0) return cf_fail(err, CF_EINTERNAL, "out of memory");
        if (sg->desc_len) store_writer_code_describe(g->w, (uint32_t)code, str + sg->desc_off, sg->desc_len);
        int rc = store_writer_add(g->w, b->subject[k], sg->time, (uint32_t)code, sg->numeric,
                                  sg->has_text ? str + sg->text_off : NULL, sg->text_len, source, b->row[k], err);
        if (rc) return rc;
    }
    (void)subject_is_string;
    b->n = 0;
    b->strings.len = 0;
    return CF_OK;
}

static int batch_flush(engine *g, batch *b, uint32_t source, int subject_is_string, uint64_t rows, cf_err *err) {
    pthread_mutex_lock(&g->lock);
    int rc = g->failed ? CF_EINPUT : batch_flush_locked(g, b, source, subject_is_string, err);
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

/* Rejects the current row with a formatted reason (kinds and template names, never values). */
#define REJECT_ROW(...)                                   \
    do {                                                  \
        snprintf(reason, sizeof reason, __VA_ARGS__);     \
        why = reason;                                     \
        goto reject;                                      \
    } while (0)

static int ingest_table(engine *g, size_t ti, cf_err *err) {
    mapping *m = g->m;
    table_spec *t = &m->tables[ti];
    dict_rt *dicts = g->dicts;
    ingest_report *rep = g->rep;
    char path[4096];
    mapping_resolve_path(m, g->input_dir, t->file, path, sizeof path);
    csv_reader *r = NULL;
    int rc = csv_open(&r, path, err);
    if (rc) return rc;
    ingest_source_stats *st = g->table_stats[ti];
    uint32_t source = (uint32_t)g->table_source[ti];
    batch b;
    memset(&b, 0, sizeof b);
    uint64_t rows_since_flush = 0;
    csv_record rec;
    int got = csv_next(r, &rec, err);
    if (got <= 0) {
        csv_close(r);
        return got < 0 ? err->code : cf_fail(err, CF_EINPUT, "%s: empty file, expected a header line", path);
    }
    size_t nh = rec.nfields;
    char **header = calloc(nh, sizeof *header);
    int64_t *join_row = calloc(t->n_joins ? t->n_joins : 1, sizeof *join_row);
    staged *stage = calloc(t->n_events, sizeof *stage);
    sbuf row = {0}, tmp = {0}, scratch = {0};
    char location[4300], reason[512];
    if (!header || !join_row || !stage || !st) {
        rc = cf_fail(err, CF_EINTERNAL, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < nh; i++)
        if (!(header[i] = strdup(rec.fields[i]))) {
            rc = cf_fail(err, CF_EINTERNAL, "out of memory");
            goto done;
        }
    int subject_col = find_col(header, nh, t->subject_col);
    if (subject_col < 0) {
        rc = cf_fail(err, CF_EINPUT, "%s:%d: [table %s] subject column '%s' is not in the header of %s", m->path, t->line,
                     t->name, t->subject_col, path);
        goto done;
    }
    for (size_t j = 0; j < t->n_joins && !rc; j++) rc = bind_tpl(&t->joins[j].key, header, nh, NULL, 0, m, path, err);
    for (size_t k = 0; k < t->n_events && !rc; k++) {
        event_spec *e = &t->events[k];
        tpl *all[] = {&e->code, &e->time, &e->numeric, &e->text, &e->description};
        for (int q = 0; q < 5 && !rc; q++)
            if (all[q]->n_parts) rc = bind_tpl(all[q], header, nh, t->joins, t->n_joins, m, path, err);
        for (size_t q = 0; q < e->n_where && !rc; q++)
            rc = bind_tpl(&e->where[q].lhs, header, nh, t->joins, t->n_joins, m, path, err);
    }
    if (rc) goto done;

    row_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    ctx.dicts = dicts;
    ctx.joins = t->joins;
    ctx.join_row = join_row;
    while ((got = csv_next(r, &rec, err)) > 0) {
        st->rows++;
        rows_since_flush++;
        if ((st->rows & 4095) == 0 && g->failed) {
            rc = CF_EINPUT; /* another worker failed: stop early, its error is the one reported */
            goto done;
        }
        ctx.fields = rec.fields;
        ctx.lens = rec.lens;
        ctx.nfields = rec.nfields;
        ctx.reason = NULL;
        const char *why = NULL;
        int64_t subject = 0;
        size_t n_staged = 0;
        row.len = 0;
        if (rec.nfields != nh)
            REJECT_ROW("row has a different number of fields than the header (%zu)", nh);
        if (t->subject_is_string) {
            if (!rec.lens[subject_col]) {
                why = "subject id is empty";
                goto reject;
            }
            subject = subject_id_from_string(rec.fields[subject_col], rec.lens[subject_col]);
        } else {
            long long v;
            if (parse_ll(rec.fields[subject_col], rec.lens[subject_col], &v)) {
                why = "subject id is not an integer";
                goto reject;
            }
            subject = v;
        }
        for (size_t j = 0; j < t->n_joins; j++) {
            scratch.len = 0;
            sbuf_reserve(&scratch, 0);
            if (eval_tpl(&t->joins[j].key, &ctx, NULL, &scratch, &tmp, NULL)) {
                why = ctx.reason;
                goto reject;
            }
            join_row[j] = strmap_find(&dicts[t->joins[j].dict].keys, scratch.data, scratch.len);
        }
        for (size_t k = 0; k < t->n_events; k++) {
            event_spec *e = &t->events[k];
            int keep = 1;
            for (size_t q = 0; q < e->n_where && keep; q++)
                if (eval_cond(&e->where[q], &ctx, &scratch, &tmp, &keep))
                    REJECT_ROW("event %s: %s", e->name, ctx.reason);
            if (!keep) continue;
            staged *sg = &stage[n_staged];
            memset(sg, 0, sizeof *sg);
            sg->time = TIME_NULL;
            sg->numeric = NAN;
            if (e->has_time) {
                scratch.len = 0;
                sbuf_reserve(&scratch, 0);
                if (eval_tpl(&e->time, &ctx, NULL, &scratch, &tmp, NULL))
                    REJECT_ROW("event %s: %s", e->name, ctx.reason);
                if (!scratch.len)
                    REJECT_ROW("event %s: time '%s' is empty", e->name, e->time.source);
                int bad = e->time_format ? time_parse_format(scratch.data, scratch.len, e->time_format, &sg->time)
                                         : time_parse_iso(scratch.data, scratch.len, &sg->time, NULL);
                if (bad)
                    REJECT_ROW("event %s: time '%s' is not a valid %s", e->name, e->time.source,
                               e->time_format ? e->time_format : "ISO 8601 date or date-time");
            }
            sg->code_off = row.len;
            if (eval_tpl(&e->code, &ctx, e->empty ? e->empty : "UNK", &row, &tmp, NULL))
                REJECT_ROW("event %s: %s", e->name, ctx.reason);
            sg->code_len = row.len - sg->code_off;
            int numeric_as_text = 0;
            if (e->has_numeric) {
                scratch.len = 0;
                sbuf_reserve(&scratch, 0);
                if (eval_tpl(&e->numeric, &ctx, NULL, &scratch, &tmp, NULL))
                    REJECT_ROW("event %s: %s", e->name, ctx.reason);
                if (scratch.len) {
                    char *end;
                    errno = 0;
                    float v = strtof(scratch.data, &end);
                    while (*end == ' ') end++;
                    if (*end || errno == ERANGE || !isfinite(v) || end == scratch.data) {
                        if (e->numeric_invalid == 0)
                            REJECT_ROW("event %s: numeric value '%s' is not a number", e->name, e->numeric.source);
                        numeric_as_text = e->numeric_invalid == 1;
                    } else {
                        sg->numeric = v;
                    }
                }
            }
            if (numeric_as_text) {
                sg->has_text = 1;
                sg->text_off = row.len;
                sbuf_add(&row, scratch.data, scratch.len);
                sg->text_len = scratch.len;
            } else if (e->has_text && !(e->text_if_no_numeric && !isnan(sg->numeric))) {
                size_t off = row.len;
                int fe;
                if (eval_tpl(&e->text, &ctx, NULL, &row, &tmp, &fe))
                    REJECT_ROW("event %s: %s", e->name, ctx.reason);
                if (row.len > off) {
                    sg->has_text = 1;
                    sg->text_off = off;
                    sg->text_len = row.len - off;
                }
            }
            if (e->has_description) {
                sg->desc_off = row.len;
                if (eval_tpl(&e->description, &ctx, NULL, &row, &tmp, NULL)) {
                    /* A description is a label, not data: a missing join just leaves it out. */
                    row.len = sg->desc_off;
                }
                sg->desc_len = row.len - sg->desc_off;
            }
            n_staged++;
        }
        if (!n_staged) {
            st->rows_filtered++;
            continue;
        }
        if (batch_reserve(&b, n_staged + 1)) {
            rc = cf_fail(err, CF_EINTERNAL, "out of memory");
            goto done;
        }
        size_t base = b.strings.len;
        if (sbuf_add(&b.strings, row.data ? row.data : "", row.len)) {
            rc = cf_fail(err, CF_EINTERNAL, "out of memory");
            goto done;
        }
        for (size_t k = 0; k < n_staged; k++) {
            staged *sg = &b.ev[b.n];
            *sg = stage[k];
            sg->code_off += base;
            sg->text_off += base;
            sg->desc_off += base;
            b.subject[b.n] = subject;
            b.row[b.n] = rec.line;
            b.n++;
        }
        if (t->subject_is_string) {
            staged *sg = &b.ev[b.n];
            memset(sg, 0, sizeof *sg);
            sg->code_len = SIZE_MAX;
            sg->text_off = b.strings.len;
            sg->text_len = rec.lens[subject_col];
            if (sbuf_add(&b.strings, rec.fields[subject_col], rec.lens[subject_col])) {
                rc = cf_fail(err, CF_EINTERNAL, "out of memory");
                goto done;
            }
            b.subject[b.n] = subject;
            b.row[b.n] = rec.line;
            b.n++;
        }
        if (b.n >= BATCH_EVENTS) {
            if ((rc = batch_flush(g, &b, source, t->subject_is_string, rows_since_flush, err))) goto done;
            rows_since_flush = 0;
        }
        st->rows_with_events++;
        st->events += n_staged;
        continue;
    reject:
        st->rows_rejected++;
        snprintf(location, sizeof location, "%s:%llu", path, (unsigned long long)rec.line);
        pthread_mutex_lock(&g->lock);
        rc = ingest_reject(rep, t->name, why ? why : "unknown", location, err);
        pthread_mutex_unlock(&g->lock);
        if (rc) goto done;
    }
    if (got < 0) rc = err->code ? err->code : CF_EINPUT;
    if (!rc) rc = batch_flush(g, &b, source, t->subject_is_string, rows_since_flush, err);
done:
    free(b.ev);
    free(b.subject);
    free(b.row);
    free(b.strings.data);
    if (header)
        for (size_t i = 0; i < nh; i++) free(header[i]);
    free(header);
    free(join_row);
    free(stage);
    free(row.data);
    free(tmp.data);
    free(scratch.data);
    csv_close(r);
    return rc;
}

/* Marks the dictionaries a table uses (joins, map: filters, `in DICT` conditions). */
static void table_dict_needs(const mapping *m, const table_spec *t, char *need) {
    for (size_t j = 0; j < t->n_joins; j++) need[t->joins[j].dict] = 1;
    for (size_t k = 0; k < t->n_events; k++) {
        const event_spec *e = &t->events[k];
        const tpl *all[] = {&e->code, &e->time, &e->numeric, &e->text, &e->description};
        for (int q = 0; q < 5; q++)
            for (size_t p = 0; p < all[q]->n_parts; p++)
                for (size_t a = 0; a < all[q]->parts[p].n_alts; a++)
                    for (size_t f = 0; f < all[q]->parts[p].alts[a].n_filters; f++) {
                        const tpl_filter *fl = &all[q]->parts[p].alts[a].filters[f];
                        if (fl->kind == TF_MAP)
                            for (size_t d = 0; d < m->n_dicts; d++)
                                if (!strcmp(m->dicts[d].name, fl->name)) need[d] = 1;
                    }
        for (size_t q = 0; q < e->n_where; q++)
            if (e->where[q].dict >= 0) need[e->where[q].dict] = 1;
    }
    /* A join key may itself use map: (e.g. a code translated before the lookup). */
    for (size_t j = 0; j < t->n_joins; j++)
        for (size_t p = 0; p < t->joins[j].key.n_parts; p++)
            for (size_t a = 0; a < t->joins[j].key.parts[p].n_alts; a++)
                for (size_t f = 0; f < t->joins[j].key.parts[p].alts[a].n_filters; f++) {
                    const tpl_filter *fl = &t->joins[j].key.parts[p].alts[a].filters[f];
                    if (fl->kind == TF_MAP)
                        for (size_t d = 0; d < m->n_dicts; d++)
                            if (!strcmp(m->dicts[d].name, fl->name)) need[d] = 1;
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

int mapped_csv_ingest(mapping *m, const char *input_dir, store_writer *w, ingest_report *rep,
                      const mapped_csv_options *opt, cf_err *err) {
    struct stat st;
    if (stat(input_dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return cf_fail(err, CF_EINPUT, "%s: --input must be a directory holding the mapped tables", input_dir);
    engine g;
    memset(&g, 0, sizeof g);
    g.m = m;
    g.input_dir = input_dir;
    g.w = w;
    g.rep = rep;
    g.opt = opt;
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
    for (size_t t = 0; t < nt; t++) {
        if (!g.table_state[t]) continue;
        char path[4096];
        struct stat fst;
        mapping_resolve_path(m, input_dir, m->tables[t].file, path, sizeof path);
        g.table_weight[t] = stat(path, &fst) == 0 ? (double)fst.st_size : 0;
    }
    for (size_t d = 0; d < m->n_dicts; d++) {
        if (!g.dict_state[d]) continue;
        char path[4096];
        struct stat fst;
        mapping_resolve_path(m, input_dir, m->dicts[d].file, path, sizeof path);
        double own = stat(path, &fst) == 0 ? (double)fst.st_size : 0, waiting_table = 0;
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
    int nthreads = opt->threads > 0 ? opt->threads : 2;
    if (nthreads > 64) nthreads = 64;
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
    free(g.dicts);
    free(g.dict_state);
    free(g.table_state);
    free(g.table_needs);
    free(g.table_source);
    free(g.table_stats);
    free(g.dict_weight);
    free(g.table_weight);
    return rc;
}
