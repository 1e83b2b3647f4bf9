/* Mapping-file parser; see mapping.h for the format and docs/MAPPING.md for the guide.
 *
 * The parser checks everything that can be checked without the data: section and key names,
 * template and condition syntax, filter names, that every event belongs to a declared table and
 * every dictionary reference to a declared dictionary. Column names are checked later, against
 * each file's header, when the table is opened. */
#include "ingest/mapping.h"
#include "util/datadir.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *dupn(const char *s, size_t n) {
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

static char *trim(char *s) {
    while (*s && isspace((unsigned char)*s)) s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1])) *--e = '\0';
    return s;
}

static int is_ident(const char *s, size_t n) {
    if (!n) return 0;
    for (size_t i = 0; i < n; i++)
        if (!(isalnum((unsigned char)s[i]) || s[i] == '_' || s[i] == '-' || s[i] == '.' || s[i] == '/')) return 0;
    return 1;
}

void tpl_free(tpl *t) {
    for (size_t i = 0; i < t->n_parts; i++) {
        tpl_part *p = &t->parts[i];
        free(p->literal);
        for (size_t a = 0; a < p->n_alts; a++) {
            free(p->alts[a].dict_name);
            free(p->alts[a].col_name);
            for (size_t f = 0; f < p->alts[a].n_filters; f++) free(p->alts[a].filters[f].name);
            free(p->alts[a].filters);
        }
        free(p->alts);
    }
    free(t->parts);
    free(t->source);
    memset(t, 0, sizeof *t);
}

/* Parses one filter "name[:arg[:arg]]". */
static int parse_filter(tpl_filter *f, const char *s, size_t n, const char *where, int line, cf_err *err) {
    memset(f, 0, sizeof *f);
    f->col = -1;
    f->dict = -1;
    char buf[256];
    if (n >= sizeof buf) return cf_fail(err, CF_EINPUT, "%s:%d: filter is too long", where, line);
    memcpy(buf, s, n);
    buf[n] = '\0';
    char *arg = strchr(buf, ':');
    if (arg) *arg++ = '\0';
    char *name = trim(buf);
    if (!strcmp(name, "trim")) f->kind = TF_TRIM;
    else if (!strcmp(name, "upper")) f->kind = TF_UPPER;
    else if (!strcmp(name, "lower")) f->kind = TF_LOWER;
    else if (!strcmp(name, "map")) f->kind = TF_MAP;
    else if (!strcmp(name, "split")) f->kind = TF_SPLIT;
    else if (!strcmp(name, "minus")) f->kind = TF_MINUS;
    else if (!strcmp(name, "plus")) f->kind = TF_PLUS;
    else
        return cf_fail(err, CF_EINPUT, "%s:%d: unknown filter '%s' (expected trim, upper, lower, map, split, minus, plus)",
                       where, line, name);
    int needs_arg = f->kind >= TF_MAP;
    if (needs_arg && (!arg || !*arg))
        return cf_fail(err, CF_EINPUT, "%s:%d: filter '%s' needs an argument", where, line, name);
    if (!needs_arg && arg) return cf_fail(err, CF_EINPUT, "%s:%d: filter '%s' takes no argument", where, line, name);
    if (f->kind == TF_MAP) {
        arg = trim(arg);
        if (!is_ident(arg, strlen(arg)))
            return cf_fail(err, CF_EINPUT, "%s:%d: map: expects a dictionary name", where, line);
        f->name = strdup(arg);
    } else if (f->kind == TF_SPLIT) {
        /* split:SEP:INDEX, SEP one character (':' itself is allowed as "split:::1"). */
        char *idx = strrchr(arg, ':');
        if (!idx || idx - arg != 1)
            return cf_fail(err, CF_EINPUT, "%s:%d: split expects split:SEPARATOR:INDEX with a one-character separator",
                           where, line);
        f->sep = arg[0];
        char *end;
        f->num = strtoll(idx + 1, &end, 10);
        if (*end || end == idx + 1 || f->num < 0)
            return cf_fail(err, CF_EINPUT, "%s:%d: split index must be a non-negative integer", where, line);
    } else if (f->kind == TF_MINUS || f->kind == TF_PLUS) {
        arg = trim(arg);
        char *end;
        long long v = strtoll(arg, &end, 10);
        if (*arg && !*end) {
            f->num = v;
        } else if (is_ident(arg, strlen(arg))) {
            f->name = strdup(arg);
        } else {
            return cf_fail(err, CF_EINPUT, "%s:%d: %s expects a column name or an integer", where, line, name);
        }
    }
    return CF_OK;
}

/* Parses "{a|f, dict.b|g:x}" contents into alternatives. */
static int parse_field(tpl_part *p, const char *s, size_t n, const char *where, int line, cf_err *err) {
    size_t start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && s[i] != ',') continue;
        /* Commas inside filter arguments (split:,:0) are allowed when preceded by ':'. */
        if (i < n && i > 0 && s[i - 1] == ':') continue;
        const char *a = s + start;
        size_t an = i - start;
        start = i + 1;
        tpl_ref *nr = realloc(p->alts, (p->n_alts + 1) * sizeof *nr);
        if (!nr) return cf_fail(err, CF_EINTERNAL, "out of memory");
        p->alts = nr;
        tpl_ref *r = &p->alts[p->n_alts++];
        memset(r, 0, sizeof *r);
        r->join = -1;
        r->col = -1;
        /* Split off filters. */
        size_t name_end = 0;
        while (name_end < an && a[name_end] != '|') name_end++;
        size_t b = 0, e = name_end;
        while (b < e && isspace((unsigned char)a[b])) b++;
        while (e > b && isspace((unsigned char)a[e - 1])) e--;
        if (!is_ident(a + b, e - b))
            return cf_fail(err, CF_EINPUT, "%s:%d: '{...}' must name a column (letters, digits, _ and .)", where, line);
        const char *dot = memchr(a + b, '.', e - b);
        if (dot) {
            r->dict_name = dupn(a + b, (size_t)(dot - (a + b)));
            r->col_name = dupn(dot + 1, (size_t)(a + e - dot - 1));
        } else {
            r->col_name = dupn(a + b, e - b);
        }
        size_t f0 = name_end;
        while (f0 < an) {
            size_t f1 = f0 + 1;
            while (f1 < an && a[f1] != '|') f1++;
            tpl_filter *nf = realloc(r->filters, (r->n_filters + 1) * sizeof *nf);
            if (!nf) return cf_fail(err, CF_EINTERNAL, "out of memory");
            r->filters = nf;
            int rc = parse_filter(&r->filters[r->n_filters], a + f0 + 1, f1 - f0 - 1, where, line, err);
            r->n_filters++;
            if (rc) return rc;
            f0 = f1;
        }
    }
    return CF_OK;
}

int tpl_parse(tpl *t, const char *text, const char *where, int line, cf_err *err) {
    memset(t, 0, sizeof *t);
    t->source = strdup(text);
    t->line = line;
    const char *s = text;
    char lit[4096];
    size_t ll = 0;
    while (*s) {
        if (*s == '}') return cf_fail(err, CF_EINPUT, "%s:%d: '}' without '{' in template", where, line);
        if (*s != '{') {
            if (ll + 1 >= sizeof lit) return cf_fail(err, CF_EINPUT, "%s:%d: template literal too long", where, line);
            lit[ll++] = *s++;
            continue;
        }
        const char *close = strchr(s, '}');
        if (!close) return cf_fail(err, CF_EINPUT, "%s:%d: '{' without closing '}' in template", where, line);
        tpl_part *np = realloc(t->parts, (t->n_parts + 1) * sizeof *np);
        if (!np) return cf_fail(err, CF_EINTERNAL, "out of memory");
        t->parts = np;
        tpl_part *p = &t->parts[t->n_parts++];
        memset(p, 0, sizeof *p);
        p->literal = dupn(lit, ll);
        ll = 0;
        int rc = parse_field(p, s + 1, (size_t)(close - s - 1), where, line, err);
        if (rc) return rc;
        s = close + 1;
    }
    if (ll || t->n_parts == 0) {
        tpl_part *np = realloc(t->parts, (t->n_parts + 1) * sizeof *np);
        if (!np) return cf_fail(err, CF_EINTERNAL, "out of memory");
        t->parts = np;
        tpl_part *p = &t->parts[t->n_parts++];
        memset(p, 0, sizeof *p);
        p->literal = dupn(lit, ll);
    }
    return CF_OK;
}

static void cond_free(cond *c) {
    tpl_free(&c->lhs);
    for (size_t i = 0; i < c->n_values; i++) free(c->values[i]);
    free(c->values);
    free(c->dict_name);
}

/* Unquotes "value" or returns the trimmed bare word. */
static char *value_of(char *s) {
    s = trim(s);
    size_t n = strlen(s);
    if (n >= 2 && s[0] == '"' && s[n - 1] == '"') return dupn(s + 1, n - 2);
    return strdup(s);
}

static int parse_cond(cond *c, char *text, const char *where, int line, cf_err *err) {
    memset(c, 0, sizeof *c);
    c->dict = -1;
    c->line = line;
    text = trim(text);
    /* The left side is a column name or a {template}. */
    char *rest;
    char lhs[512];
    if (text[0] == '{') {
        char *close = strchr(text, '}');
        if (!close) return cf_fail(err, CF_EINPUT, "%s:%d: where: '{' without '}'", where, line);
        snprintf(lhs, sizeof lhs, "%.*s", (int)(close - text + 1), text);
        rest = close + 1;
    } else {
        size_t n = 0;
        while (text[n] && !isspace((unsigned char)text[n]) && text[n] != '=' && text[n] != '!') n++;
        if (!is_ident(text, n))
            return cf_fail(err, CF_EINPUT, "%s:%d: where: expected a column name first", where, line);
        snprintf(lhs, sizeof lhs, "{%.*s}", (int)n, text);
        rest = text + n;
    }
    int rc = tpl_parse(&c->lhs, lhs, where, line, err);
    if (rc) return rc;
    rest = trim(rest);
    if (!strncmp(rest, "==", 2) || !strncmp(rest, "!=", 2)) {
        c->op = rest[0] == '=' ? COND_EQ : COND_NE;
        c->values = malloc(sizeof *c->values);
        if (!c->values) return cf_fail(err, CF_EINTERNAL, "out of memory");
        c->values[0] = value_of(rest + 2);
        c->n_values = 1;
        return CF_OK;
    }
    if (!strcmp(rest, "is empty")) {
        c->op = COND_EMPTY;
        return CF_OK;
    }
    if (!strcmp(rest, "is not empty")) {
        c->op = COND_NOT_EMPTY;
        return CF_OK;
    }
    int negate = 0;
    if (!strncmp(rest, "not in ", 7)) {
        negate = 1;
        rest += 7;
    } else if (!strncmp(rest, "in ", 3)) {
        rest += 3;
    } else {
        return cf_fail(err, CF_EINPUT, "%s:%d: where: expected ==, !=, is empty, is not empty, in or not in",
                       where, line);
    }
    rest = trim(rest);
    if (rest[0] == '(') {
        size_t n = strlen(rest);
        if (rest[n - 1] != ')') return cf_fail(err, CF_EINPUT, "%s:%d: where: '(' without ')'", where, line);
        rest[n - 1] = '\0';
        c->op = negate ? COND_NOT_IN_SET : COND_IN_SET;
        for (char *tok = strtok(rest + 1, ","); tok; tok = strtok(NULL, ",")) {
            char **nv = realloc(c->values, (c->n_values + 1) * sizeof *nv);
            if (!nv) return cf_fail(err, CF_EINTERNAL, "out of memory");
            c->values = nv;
            c->values[c->n_values++] = value_of(tok);
        }
        return CF_OK;
    }
    if (!is_ident(rest, strlen(rest)))
        return cf_fail(err, CF_EINPUT, "%s:%d: where: 'in' expects (values) or a dictionary name", where, line);
    c->op = negate ? COND_NOT_IN_DICT : COND_IN_DICT;
    c->dict_name = strdup(rest);
    return CF_OK;
}

static void event_free(event_spec *e) {
    free(e->name);
    tpl_free(&e->code);
    tpl_free(&e->time);
    tpl_free(&e->numeric);
    tpl_free(&e->text);
    tpl_free(&e->description);
    free(e->time_format);
    free(e->empty);
    for (size_t i = 0; i < e->n_where; i++) cond_free(&e->where[i]);
    free(e->where);
}

void mapping_free(mapping *m) {
    for (size_t i = 0; i < m->n_dicts; i++) {
        dict_spec *d = &m->dicts[i];
        free(d->name);
        free(d->file);
        tpl_free(&d->key);
        for (size_t k = 0; k < d->n_columns; k++) free(d->columns[k]);
        free(d->columns);
        for (size_t k = 0; k < d->n_where; k++) cond_free(&d->where[k]);
        free(d->where);
    }
    free(m->dicts);
    for (size_t i = 0; i < m->n_tables; i++) {
        table_spec *t = &m->tables[i];
        free(t->name);
        free(t->file);
        free(t->subject_col);
        for (size_t j = 0; j < t->n_joins; j++) {
            free(t->joins[j].dict_name);
            free(t->joins[j].alias);
            tpl_free(&t->joins[j].key);
        }
        free(t->joins);
        for (size_t j = 0; j < t->n_events; j++) event_free(&t->events[j]);
        free(t->events);
    }
    free(m->tables);
    free(m->path);
    free(m->dir);
    free(m->name);
    free(m->description);
    memset(m, 0, sizeof *m);
}

static int find_dict(const mapping *m, const char *name) {
    for (size_t i = 0; i < m->n_dicts; i++)
        if (!strcmp(m->dicts[i].name, name)) return (int)i;
    return -1;
}

static int find_table(const mapping *m, const char *name) {
    for (size_t i = 0; i < m->n_tables; i++)
        if (!strcmp(m->tables[i].name, name)) return (int)i;
    return -1;
}

/* Checks the dictionary references of a template against the declared dictionaries and the
 * table's joins. */
static int check_tpl_refs(const mapping *m, const table_spec *t, const tpl *tp, int allow_joins, cf_err *err) {
    for (size_t i = 0; i < tp->n_parts; i++)
        for (size_t a = 0; a < tp->parts[i].n_alts; a++) {
            const tpl_ref *r = &tp->parts[i].alts[a];
            if (r->dict_name) {
                int ok = 0;
                for (size_t j = 0; allow_joins && t && j < t->n_joins; j++)
                    if (!strcmp(t->joins[j].alias, r->dict_name)) ok = 1;
                if (!ok)
                    return cf_fail(err, CF_EINPUT, "%s:%d: '{%s.%s}' refers to dictionary '%s', which this table does not join "
                                   "(add `join = %s on {key column}` to [table %s])", m->path, tp->line, r->dict_name,
                                   r->col_name, r->dict_name, r->dict_name, t ? t->name : "?");
            }
            for (size_t f = 0; f < r->n_filters; f++)
                if (r->filters[f].kind == TF_MAP && find_dict(m, r->filters[f].name) < 0)
                    return cf_fail(err, CF_EINPUT, "%s:%d: map:%s names no [dictionary %s] section", m->path, tp->line,
                                   r->filters[f].name, r->filters[f].name);
        }
    return CF_OK;
}

static int validate(mapping *m, cf_err *err) {
    if (!m->n_tables) return cf_fail(err, CF_EINPUT, "%s: no [table ...] sections; nothing to ingest", m->path);
    for (size_t i = 0; i < m->n_dicts; i++) {
        dict_spec *d = &m->dicts[i];
        if (!d->file) return cf_fail(err, CF_EINPUT, "%s:%d: [dictionary %s] needs `file =`", m->path, d->line, d->name);
        if (!d->key.n_parts) return cf_fail(err, CF_EINPUT, "%s:%d: [dictionary %s] needs `key =`", m->path, d->line, d->name);
        if (!d->n_columns)
            return cf_fail(err, CF_EINPUT, "%s:%d: [dictionary %s] needs `columns =` (or `value =`)", m->path, d->line, d->name);
        int rc = check_tpl_refs(m, NULL, &d->key, 0, err);
        for (size_t w = 0; !rc && w < d->n_where; w++) rc = check_tpl_refs(m, NULL, &d->where[w].lhs, 0, err);
        if (rc) return rc;
    }
    for (size_t i = 0; i < m->n_tables; i++) {
        table_spec *t = &m->tables[i];
        if (!t->file) return cf_fail(err, CF_EINPUT, "%s:%d: [table %s] needs `file =`", m->path, t->line, t->name);
        if (!t->subject_col)
            return cf_fail(err, CF_EINPUT, "%s:%d: [table %s] needs `subject =` (the subject id column)", m->path, t->line, t->name);
        if (!t->n_events)
            return cf_fail(err, CF_EINPUT, "%s:%d: [table %s] has no [event %s/...] sections", m->path, t->line, t->name, t->name);
        for (size_t j = 0; j < t->n_joins; j++) {
            t->joins[j].dict = find_dict(m, t->joins[j].dict_name);
            if (t->joins[j].dict < 0)
                return cf_fail(err, CF_EINPUT, "%s:%d: join names no [dictionary %s] section", m->path, t->joins[j].line,
                               t->joins[j].dict_name);
            int rc = check_tpl_refs(m, t, &t->joins[j].key, 0, err);
            if (rc) return rc;
        }
        for (size_t j = 0; j < t->n_events; j++) {
            event_spec *e = &t->events[j];
            if (!e->code.n_parts) return cf_fail(err, CF_EINPUT, "%s:%d: [event %s] needs `code =`", m->path, e->line, e->name);
            const tpl *all[] = {&e->code, &e->time, &e->numeric, &e->text, &e->description};
            for (int k = 0; k < 5; k++) {
                int rc = check_tpl_refs(m, t, all[k], 1, err);
                if (rc) return rc;
            }
            for (size_t w = 0; w < e->n_where; w++) {
                cond *c = &e->where[w];
                int rc = check_tpl_refs(m, t, &c->lhs, 1, err);
                if (rc) return rc;
                if (c->dict_name && (c->dict = find_dict(m, c->dict_name)) < 0)
                    return cf_fail(err, CF_EINPUT, "%s:%d: where: names no [dictionary %s] section", m->path, c->line, c->dict_name);
            }
        }
    }
    return CF_OK;
}

static int set_tpl(tpl *t, int *flag, const char *value, const char *path, int line, const char *key, cf_err *err) {
    if (t->n_parts) return cf_fail(err, CF_EINPUT, "%s:%d: key '%s' given twice", path, line, key);
    if (flag) *flag = 1;
    return tpl_parse(t, value, path, line, err);
}

/* A setting with two spellings: *out = 0 for v0, 1 for v1; -1 (and *out unchanged) otherwise. */
static int choose2(const char *val, const char *v0, const char *v1, int *out) {
    if (strcmp(val, v0) != 0 && strcmp(val, v1) != 0) return -1;
    *out = strcmp(val, v0) != 0;
    return 0;
}

/* A string setting given again replaces the earlier value. */
static void set_str(char **dst, const char *val) {
    free(*dst);
    *dst = strdup(val);
}

/* [dictionary NAME] or [table NAME] (kind): a new zeroed spec named name, declared at lineno,
 * appended to the mapping's dictionaries or tables, unless that name is taken there. */
static int add_section(mapping *m, const char *kind, const char *name, int lineno, const char *path,
                       cf_err *err) {
    int is_table = !strcmp(kind, "table");
    if (is_table && strchr(name, '/'))
        return cf_fail(err, CF_EINPUT, "%s:%d: table names may not contain '/'", path, lineno);
    if ((is_table ? find_table(m, name) : find_dict(m, name)) >= 0)
        return cf_fail(err, CF_EINPUT, "%s:%d: %s '%s' declared twice", path, lineno, kind, name);
    size_t n = is_table ? m->n_tables : m->n_dicts;
    size_t sz = is_table ? sizeof *m->tables : sizeof *m->dicts;
    void *grown = realloc(is_table ? (void *)m->tables : (void *)m->dicts, (n + 1) * sz);
    if (!grown) return cf_fail(err, CF_EINTERNAL, "out of memory");
    memset((char *)grown + n * sz, 0, sz);
    if (is_table) {
        m->tables = grown;
        m->tables[n].name = strdup(name);
        m->tables[n].line = lineno;
        m->n_tables++;
    } else {
        m->dicts = grown;
        m->dicts[n].name = strdup(name);
        m->dicts[n].line = lineno;
        m->n_dicts++;
    }
    return CF_OK;
}

int mapping_load(mapping *m, const char *path, cf_err *err) {
    memset(m, 0, sizeof *m);
    FILE *f = fopen(path, "r");
    if (!f) return cf_fail_errno(err, CF_EINPUT, "%s: cannot open mapping file", path);
    m->path = strdup(path);
    const char *slash = strrchr(path, '/');
    m->dir = slash ? dupn(path, (size_t)(slash - path)) : strdup(".");
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int lineno = 0, rc = CF_OK;
    enum { S_NONE, S_MAPPING, S_DICT, S_TABLE, S_EVENT } sec = S_NONE;
    dict_spec *cur_dict = NULL;
    table_spec *cur_table = NULL;
    event_spec *cur_event = NULL;
    while ((n = getline(&line, &cap, f)) >= 0) {
        lineno++;
        if (memchr(line, '\0', (size_t)n)) {
            rc = cf_fail(err, CF_EINPUT, "%s:%d: NUL byte in mapping file", path, lineno);
            goto done;
        }
        /* '#' starts a comment unless inside a quoted value. */
        int inq = 0;
        for (char *p = line; *p; p++) {
            if (*p == '"') inq = !inq;
            else if (*p == '#' && !inq) {
                *p = '\0';
                break;
            }
        }
        char *s = trim(line);
        if (!*s) continue;
        if (*s == '[') {
            size_t len = strlen(s);
            if (s[len - 1] != ']') {
                rc = cf_fail(err, CF_EINPUT, "%s:%d: section header must end with ']'", path, lineno);
                goto done;
            }
            s[len - 1] = '\0';
            char *kind = trim(s + 1), *arg = kind;
            while (*arg && !isspace((unsigned char)*arg)) arg++;
            if (*arg) *arg++ = '\0';
            arg = trim(arg);
            cur_dict = NULL;
            cur_table = NULL;
            cur_event = NULL;
            if (!strcmp(kind, "mapping")) {
                sec = S_MAPPING;
                continue;
            }
            if (!is_ident(arg, strlen(arg))) {
                rc = cf_fail(err, CF_EINPUT, "%s:%d: [%s] needs a name (letters, digits, _ - . /)", path, lineno, kind);
                goto done;
            }
            if (!strcmp(kind, "dictionary") || !strcmp(kind, "table")) {
                if ((rc = add_section(m, kind, arg, lineno, path, err))) goto done;
                if (kind[0] == 't') {
                    cur_table = &m->tables[m->n_tables - 1];
                    sec = S_TABLE;
                } else {
                    cur_dict = &m->dicts[m->n_dicts - 1];
                    sec = S_DICT;
                }
            } else if (!strcmp(kind, "event")) {
                char *sl = strchr(arg, '/');
                if (!sl) {
                    rc = cf_fail(err, CF_EINPUT, "%s:%d: [event ...] must be named TABLE/NAME", path, lineno);
                    goto done;
                }
                *sl = '\0';
                int ti = find_table(m, arg);
                *sl = '/';
                if (ti < 0) {
                    rc = cf_fail(err, CF_EINPUT, "%s:%d: [event %s] names a table not declared above it", path, lineno, arg);
                    goto done;
                }
                table_spec *t = &m->tables[ti];
                for (size_t j = 0; j < t->n_events; j++)
                    if (!strcmp(t->events[j].name, arg)) {
                        rc = cf_fail(err, CF_EINPUT, "%s:%d: event '%s' declared twice", path, lineno, arg);
                        goto done;
                    }
                event_spec *ne = realloc(t->events, (t->n_events + 1) * sizeof *ne);
                if (!ne) goto oom;
                t->events = ne;
                cur_event = &t->events[t->n_events++];
                memset(cur_event, 0, sizeof *cur_event);
                cur_event->name = strdup(arg);
                cur_event->line = lineno;
                sec = S_EVENT;
            } else {
                rc = cf_fail(err, CF_EINPUT, "%s:%d: unknown section [%s] (expected mapping, dictionary, table or event)",
                             path, lineno, kind);
                goto done;
            }
            continue;
        }
        char *eq = strchr(s, '=');
        if (!eq) {
            rc = cf_fail(err, CF_EINPUT, "%s:%d: expected `key = value` or a [section]", path, lineno);
            goto done;
        }
        *eq = '\0';
        char *key = trim(s), *val = trim(eq + 1);
        size_t vl = strlen(val);
        if (vl >= 2 && val[0] == '"' && val[vl - 1] == '"') {
            val[vl - 1] = '\0';
            val++;
        }
#define UNKNOWN_KEY(secname, expected)                                                                  \
    do {                                                                                                \
        rc = cf_fail(err, CF_EINPUT, "%s:%d: unknown key '%s' in [%s] (expected %s)", path, lineno, key, \
                     secname, expected);                                                                \
        goto done;                                                                                      \
    } while (0)
        switch (sec) {
        case S_NONE:
            rc = cf_fail(err, CF_EINPUT, "%s:%d: key '%s' outside any [section]", path, lineno, key);
            goto done;
        case S_MAPPING:
            if (!strcmp(key, "name")) {
                set_str(&m->name, val);
            } else if (!strcmp(key, "description")) {
                set_str(&m->description, val);
            } else if (strcmp(key, "version") != 0) {
                UNKNOWN_KEY("mapping", "name, description, version");
            }
            break;
        case S_DICT:
            if (!strcmp(key, "file")) {
                set_str(&cur_dict->file, val);
            } else if (!strcmp(key, "key")) {
                char tmp[512];
                /* A bare column name is shorthand for {column}. */
                if (!strchr(val, '{')) snprintf(tmp, sizeof tmp, "{%s}", val);
                else snprintf(tmp, sizeof tmp, "%s", val);
                if ((rc = set_tpl(&cur_dict->key, NULL, tmp, path, lineno, key, err))) goto done;
            } else if (!strcmp(key, "where")) {
                cond *nw = realloc(cur_dict->where, (cur_dict->n_where + 1) * sizeof *nw);
                if (!nw) goto oom;
                cur_dict->where = nw;
                if ((rc = parse_cond(&cur_dict->where[cur_dict->n_where++], val, path, lineno, err))) goto done;
                if (cur_dict->where[cur_dict->n_where - 1].dict_name) {
                    rc = cf_fail(err, CF_EINPUT, "%s:%d: a dictionary's where may not test another dictionary", path, lineno);
                    goto done;
                }
            } else if (!strcmp(key, "optional")) {
                if (choose2(val, "no", "yes", &cur_dict->optional)) {
                    rc = cf_fail(err, CF_EINPUT, "%s:%d: optional must be yes or no", path, lineno);
                    goto done;
                }
            } else if (!strcmp(key, "columns") || !strcmp(key, "value")) {
                for (char *tok = strtok(val, ","); tok; tok = strtok(NULL, ",")) {
                    char **nc = realloc(cur_dict->columns, (cur_dict->n_columns + 1) * sizeof *nc);
                    if (!nc) goto oom;
                    cur_dict->columns = nc;
                    cur_dict->columns[cur_dict->n_columns++] = strdup(trim(tok));
                }
            } else {
                UNKNOWN_KEY("dictionary", "file, key, columns, value, optional, where");
            }
            break;
        case S_TABLE:
            if (!strcmp(key, "file")) {
                set_str(&cur_table->file, val);
            } else if (!strcmp(key, "subject")) {
                set_str(&cur_table->subject_col, val);
            } else if (!strcmp(key, "subject_type")) {
                if (choose2(val, "int", "string", &cur_table->subject_is_string)) {
                    rc = cf_fail(err, CF_EINPUT, "%s:%d: subject_type must be int or string", path, lineno);
                    goto done;
                }
            } else if (!strcmp(key, "join") || !strcmp(key, "join_optional")) {
                char *on = strstr(val, " on ");
                if (!on) {
                    rc = cf_fail(err, CF_EINPUT, "%s:%d: %s expects `DICTIONARY [as ALIAS] on {column}`", path, lineno, key);
                    goto done;
                }
                *on = '\0';
                char *dname = trim(val), *kt = trim(on + 4), *alias = NULL;
                char *as = strstr(dname, " as ");
                if (as) {
                    *as = '\0';
                    alias = trim(as + 4);
                    dname = trim(dname);
                    if (!is_ident(alias, strlen(alias)) || strchr(alias, '.')) {
                        rc = cf_fail(err, CF_EINPUT, "%s:%d: join alias must be a plain name", path, lineno);
                        goto done;
                    }
                }
                for (size_t q = 0; q < cur_table->n_joins; q++)
                    if (!strcmp(cur_table->joins[q].alias, alias ? alias : dname)) {
                        rc = cf_fail(err, CF_EINPUT, "%s:%d: '%s' is joined twice; give one an alias with `as`", path,
                                     lineno, alias ? alias : dname);
                        goto done;
                    }
                join_spec *nj = realloc(cur_table->joins, (cur_table->n_joins + 1) * sizeof *nj);
                if (!nj) goto oom;
                cur_table->joins = nj;
                join_spec *j = &cur_table->joins[cur_table->n_joins++];
                memset(j, 0, sizeof *j);
                j->dict = -1;
                j->line = lineno;
                j->dict_name = strdup(dname);
                j->alias = strdup(alias ? alias : dname);
                j->optional = !strcmp(key, "join_optional");
                char tmp[512];
                if (!strchr(kt, '{')) snprintf(tmp, sizeof tmp, "{%s}", kt);
                else snprintf(tmp, sizeof tmp, "%s", kt);
                if ((rc = tpl_parse(&j->key, tmp, path, lineno, err))) goto done;
            } else {
                UNKNOWN_KEY("table", "file, subject, subject_type, join, join_optional");
            }
            break;
        case S_EVENT: {
            event_spec *e = cur_event;
            if (!strcmp(key, "code")) rc = set_tpl(&e->code, NULL, val, path, lineno, key, err);
            else if (!strcmp(key, "time")) rc = set_tpl(&e->time, &e->has_time, val, path, lineno, key, err);
            else if (!strcmp(key, "numeric")) rc = set_tpl(&e->numeric, &e->has_numeric, val, path, lineno, key, err);
            else if (!strcmp(key, "text")) rc = set_tpl(&e->text, &e->has_text, val, path, lineno, key, err);
            else if (!strcmp(key, "description"))
                rc = set_tpl(&e->description, &e->has_description, val, path, lineno, key, err);
            else if (!strcmp(key, "time_format")) {
                set_str(&e->time_format, val);
            } else if (!strcmp(key, "empty")) {
                set_str(&e->empty, val);
            } else if (!strcmp(key, "numeric_invalid")) {
                if (!strcmp(val, "reject")) e->numeric_invalid = 0;
                else if (!strcmp(val, "text")) e->numeric_invalid = 1;
                else if (!strcmp(val, "ignore")) e->numeric_invalid = 2;
                else rc = cf_fail(err, CF_EINPUT, "%s:%d: numeric_invalid must be reject, text or ignore", path, lineno);
            } else if (!strcmp(key, "text_if_no_numeric")) {
                if (choose2(val, "no", "yes", &e->text_if_no_numeric))
                    rc = cf_fail(err, CF_EINPUT, "%s:%d: text_if_no_numeric must be yes or no", path, lineno);
            } else if (!strcmp(key, "where")) {
                cond *nw = realloc(e->where, (e->n_where + 1) * sizeof *nw);
                if (!nw) goto oom;
                e->where = nw;
                rc = parse_cond(&e->where[e->n_where++], val, path, lineno, err);
            } else {
                UNKNOWN_KEY("event", "code, time, time_format, numeric, numeric_invalid, text, text_if_no_numeric, "
                            "description, empty, where");
            }
            if (rc) goto done;
            break;
        }
        }
#undef UNKNOWN_KEY
    }
    rc = validate(m, err);
    goto done;
oom:
    rc = cf_fail(err, CF_EINTERNAL, "out of memory");
done:
    free(line);
    fclose(f);
    if (rc) mapping_free(m);
    return rc;
}

void mapping_resolve_path(const mapping *m, const char *input_dir, const char *file, char *out, size_t cap) {
    const char *data = cf_data_dir();
    if (!strncmp(file, "${mapping}/", 11)) snprintf(out, cap, "%s/%s", m->dir, file + 11);
    else if (!strncmp(file, "${data}/", 8)) snprintf(out, cap, "%s/%s", data ? data : "$CLINFM_DATA", file + 8);
    else if (file[0] == '/') snprintf(out, cap, "%s", file);
    else snprintf(out, cap, "%s/%s", input_dir, file);
}
