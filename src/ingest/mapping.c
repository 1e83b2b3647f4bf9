/* Mapping-file parser; see mapping.h for the format and docs/MAPPING.md for the guide.
 *
 * The parser checks everything that can be checked without the data: section and key names,
 * template and condition syntax, filter names, regular expressions, constant anchors, variables,
 * that every event belongs to a declared table and every dictionary reference to a declared
 * dictionary. Column names are checked later, against each file's header, when it is opened. */
#include "ingest/mapping.h"
#include "util/datadir.h"
#include "util/file.h"
#include "util/kv.h"
#include "util/timeutil.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <assert.h>
#include <ctype.h>
#include <glob.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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

/* The array arr of n elements of size bytes with one more, zeroed, at index n; NULL when out of
 * memory (arr is then unchanged). The one append of the parser's lists. */
static void *append_zeroed(void *arr, size_t n, size_t size) {
    char *a = cf_realloc_array(arr, n + 1, size);
    if (a) memset(a + n * size, 0, size);
    return a;
}

static void filter_free(tpl_filter *f) { CF_FREE_ALL(f->name, f->column, f->alias, f->from, f->to); }

void tpl_free(tpl *t) {
    for (size_t i = 0; i < t->n_parts; i++) {
        tpl_part *p = &t->parts[i];
        free(p->literal);
        for (size_t a = 0; a < p->n_alts; a++) {
            free(p->alts[a].dict_name);
            free(p->alts[a].col_name);
            free(p->alts[a].const_val);
            for (size_t f = 0; f < p->alts[a].n_filters; f++) filter_free(&p->alts[a].filters[f]);
            free(p->alts[a].filters);
        }
        free(p->alts);
    }
    free(t->parts);
    free(t->source);
    memset(t, 0, sizeof *t);
}

/* An arithmetic operand: a number, a column, or DICT.column of a joined dictionary. */
static int parse_operand(tpl_filter *f, char *arg, const char *name, const char *where, int line, cf_err *err) {
    arg = trim(arg);
    char *end;
    double v = strtod(arg, &end);
    if (*arg && !*end) {
        f->num = v;
        long long iv = strtoll(arg, &end, 10);
        f->num_is_int = !*end;
        f->inum = iv;
        return CF_OK;
    }
    if (!is_ident(arg, strlen(arg)))
        return cf_fail(err, CF_EINPUT, "%s:%d: %s: expects a number, a column or DICTIONARY.column", where, line, name);
    char *dot = strchr(arg, '.');
    if (dot) {
        f->alias = dupn(arg, (size_t)(dot - arg));
        f->name = strdup(dot + 1);
    } else {
        f->name = strdup(arg);
    }
    return CF_OK;
}

/* Parses one filter "name[:arg[:arg]]". */
static int parse_filter(tpl_filter *f, const char *s, size_t n, const char *where, int line, cf_err *err) {
    memset(f, 0, sizeof *f);
    f->col = -1;
    f->join = -1;
    f->dict = -1;
    char buf[256];
    if (n >= sizeof buf) return cf_fail(err, CF_EINPUT, "%s:%d: filter is too long", where, line);
    memcpy(buf, s, n);
    buf[n] = '\0';
    char *arg = strchr(buf, ':');
    if (arg) *arg++ = '\0';
    char *name = trim(buf);
    static const struct {
        const char *name;
        int kind;
    } kinds[] = {{"trim", TF_TRIM},   {"upper", TF_UPPER}, {"lower", TF_LOWER}, {"date", TF_DATE}, {"map", TF_MAP},
                 {"split", TF_SPLIT}, {"minus", TF_MINUS}, {"plus", TF_PLUS},  {"times", TF_TIMES},
                 {"div", TF_DIV},     {"replace", TF_REPLACE}};
    size_t k = 0;
    while (k < sizeof kinds / sizeof kinds[0] && strcmp(name, kinds[k].name) != 0) k++;
    if (k == sizeof kinds / sizeof kinds[0])
        return cf_fail(err, CF_EINPUT,
                       "%s:%d: unknown filter '%s' (expected trim, upper, lower, date, map, split, replace, minus, plus, "
                       "times, div)", where, line, name);
    f->kind = kinds[k].kind;
    int needs_arg = f->kind >= TF_MAP;
    if (needs_arg && (!arg || !*arg))
        return cf_fail(err, CF_EINPUT, "%s:%d: filter '%s' needs an argument", where, line, name);
    if (!needs_arg && arg) return cf_fail(err, CF_EINPUT, "%s:%d: filter '%s' takes no argument", where, line, name);
    switch (f->kind) {
    case TF_MAP: {
        arg = trim(arg);
        if (!is_ident(arg, strlen(arg)))
            return cf_fail(err, CF_EINPUT, "%s:%d: map: expects a dictionary name (or DICTIONARY.column)", where, line);
        char *dot = strchr(arg, '.');
        if (dot) {
            f->column = strdup(dot + 1);
            *dot = '\0';
        }
        f->name = strdup(arg);
        break;
    }
    case TF_SPLIT: {
        /* split:SEP:INDEX, SEP one character (':' itself is allowed as "split:::1"). */
        char *idx = strrchr(arg, ':');
        if (!idx || idx - arg != 1)
            return cf_fail(err, CF_EINPUT, "%s:%d: split expects split:SEPARATOR:INDEX with a one-character separator",
                           where, line);
        f->sep = arg[0];
        char *end;
        f->inum = strtoll(idx + 1, &end, 10);
        if (*end || end == idx + 1 || f->inum < 0)
            return cf_fail(err, CF_EINPUT, "%s:%d: split index must be a non-negative integer", where, line);
        break;
    }
    case TF_REPLACE: {
        /* replace:OLD:NEW; OLD may not contain ':', NEW may be empty (a deletion). */
        char *to = strchr(arg, ':');
        if (!to || to == arg)
            return cf_fail(err, CF_EINPUT, "%s:%d: replace expects replace:OLD:NEW (OLD not empty; NEW may be)", where,
                           line);
        f->from = dupn(arg, (size_t)(to - arg));
        f->to = strdup(to + 1);
        break;
    }
    default: /* minus, plus, times, div */
        return parse_operand(f, arg, name, where, line, err);
    case TF_TRIM:
    case TF_UPPER:
    case TF_LOWER:
    case TF_DATE:
        break;
    }
    return CF_OK;
}

static int copy_filter(tpl_filter *d, const tpl_filter *s) {
    *d = *s;
    d->name = s->name ? strdup(s->name) : NULL;
    d->column = s->column ? strdup(s->column) : NULL;
    d->alias = s->alias ? strdup(s->alias) : NULL;
    d->from = s->from ? strdup(s->from) : NULL;
    d->to = s->to ? strdup(s->to) : NULL;
    return (s->name && !d->name) || (s->column && !d->column) || (s->alias && !d->alias) || (s->from && !d->from) || (s->to && !d->to) ? -1 : 0;
}

/* Parses "{a|f, dict.b|g:x}" contents into alternatives. Filters written after the last
 * alternative apply to every alternative (after its own), so `{a,b|upper}` upper-cases either;
 * an alternative in parentheses keeps its filters to itself and takes no shared ones:
 * `{storetime,(storedate|date)}`. */
static int parse_field(tpl_part *p, const char *s, size_t n, const char *where, int line, cf_err *err) {
    size_t start = 0;
    unsigned char sealed[64];
    for (size_t i = 0; i <= n; i++) {
        if (i < n && s[i] != ',') continue;
        /* Commas inside filter arguments (split:,:0) are allowed when preceded by ':'. */
        if (i < n && i > 0 && s[i - 1] == ':') continue;
        size_t b = start, e = i;
        start = i + 1;
        while (b < e && isspace((unsigned char)s[b])) b++;
        while (e > b && isspace((unsigned char)s[e - 1])) e--;
        if (p->n_alts == sizeof sealed) return cf_fail(err, CF_EINPUT, "%s:%d: too many alternatives in {...}", where, line);
        sealed[p->n_alts] = b < e && s[b] == '(';
        if (sealed[p->n_alts]) {
            if (e - b < 2 || s[e - 1] != ')')
                return cf_fail(err, CF_EINPUT, "%s:%d: '(' without ')' in an alternative of {...}", where, line);
            b++, e--;
        }
        const char *a = s + b;
        size_t an = e - b;
        tpl_ref *nr = append_zeroed(p->alts, p->n_alts, sizeof *nr);
        if (!nr) return cf_fail(err, CF_EINTERNAL, "out of memory");
        p->alts = nr;
        tpl_ref *r = &p->alts[p->n_alts++];
        r->join = -1;
        r->col = TPL_COL_UNBOUND;
        size_t name_end = 0;
        while (name_end < an && a[name_end] != '|') name_end++;
        size_t nb = 0, ne = name_end;
        while (nb < ne && isspace((unsigned char)a[nb])) nb++;
        while (ne > nb && isspace((unsigned char)a[ne - 1])) ne--;
        if (ne - nb >= 6 && !memcmp(a + nb, "const:", 6)) {
            r->const_val = dupn(a + nb + 6, ne - nb - 6);
            r->col = TPL_COL_CONST;
        } else if (!is_ident(a + nb, ne - nb)) {
            return cf_fail(err, CF_EINPUT, "%s:%d: '{...}' must name a column (letters, digits, _ and .) or const:TEXT",
                           where, line);
        } else {
            const char *dot = memchr(a + nb, '.', ne - nb);
            if (dot) {
                r->dict_name = dupn(a + nb, (size_t)(dot - (a + nb)));
                r->col_name = dupn(dot + 1, (size_t)(a + ne - dot - 1));
            } else {
                r->col_name = dupn(a + nb, ne - nb);
            }
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
    /* The last alternative's filters are shared (unless it is in parentheses): append copies to
     * the others that are not in parentheses. */
    const tpl_ref *last = &p->alts[p->n_alts - 1];
    for (size_t a = 0; a + 1 < p->n_alts && last->n_filters && !sealed[p->n_alts - 1]; a++) {
        tpl_ref *r = &p->alts[a];
        if (sealed[a]) continue;
        tpl_filter *nf = realloc(r->filters, (r->n_filters + last->n_filters) * sizeof *nf);
        if (!nf) return cf_fail(err, CF_EINTERNAL, "out of memory");
        r->filters = nf;
        for (size_t f = 0; f < last->n_filters; f++)
            if (copy_filter(&r->filters[r->n_filters++], &last->filters[f]))
                return cf_fail(err, CF_EINTERNAL, "out of memory");
    }
    return CF_OK;
}

/* Appends a part of t that starts with the literal lit[0, ll); NULL when out of memory. */
static tpl_part *add_part(tpl *t, const char *lit, size_t ll) {
    tpl_part *np = append_zeroed(t->parts, t->n_parts, sizeof *np);
    if (!np) return NULL;
    t->parts = np;
    tpl_part *p = &t->parts[t->n_parts++];
    p->literal = dupn(lit, ll);
    p->literal_len = ll;
    return p;
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
        tpl_part *p = add_part(t, lit, ll);
        if (!p) return cf_fail(err, CF_EINTERNAL, "out of memory");
        ll = 0;
        int rc = parse_field(p, s + 1, (size_t)(close - s - 1), where, line, err);
        if (rc) return rc;
        s = close + 1;
    }
    if ((ll || t->n_parts == 0) && !add_part(t, lit, ll)) return cf_fail(err, CF_EINTERNAL, "out of memory");
    return CF_OK;
}

static void cond_free(cond *c) {
    tpl_free(&c->lhs);
    for (size_t i = 0; i < c->n_values; i++) free(c->values[i]);
    free(c->values);
    free(c->dict_name);
    if (c->re_match) pcre2_match_data_free(c->re_match);
    if (c->re) pcre2_code_free(c->re);
    memset(c, 0, sizeof *c);
}

/* Unquotes "value" or returns the trimmed bare word. */
static char *value_of(char *s) {
    s = trim(s);
    size_t n = strlen(s);
    if (n >= 2 && s[0] == '"' && s[n - 1] == '"') return dupn(s + 1, n - 2);
    return strdup(s);
}

/* Splits a comma list at commas outside double quotes; each value trimmed and unquoted
 * (`a, "b, c"` is two values). Returns 0, or -1 on out-of-memory or an unclosed quote. */
static int split_list(const char *s, char ***out, size_t *n) {
    *out = NULL;
    *n = 0;
    size_t len = strlen(s), start = 0;
    int inq = 0;
    char *tmp = malloc(len + 1);
    if (!tmp) return -1;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && s[i] == '"') inq = !inq;
        if (i < len && (s[i] != ',' || inq)) continue;
        memcpy(tmp, s + start, i - start);
        tmp[i - start] = '\0';
        start = i + 1;
        char **nv = realloc(*out, (*n + 1) * sizeof *nv);
        if (!nv) goto fail;
        *out = nv;
        if (!((*out)[(*n)++] = value_of(tmp))) goto fail;
    }
    free(tmp);
    if (inq) goto fail_noalloc;
    return 0;
fail:
    free(tmp);
fail_noalloc:
    for (size_t i = 0; i < *n; i++) free((*out)[i]);
    free(*out);
    *out = NULL;
    *n = 0;
    return -1;
}

static void free_list(char **v, size_t n) {
    for (size_t i = 0; i < n; i++) free(v[i]);
    free(v);
}

#define COND_SYNTAX                                                                                      \
    "expected a column or a {template} followed by ==, !=, <, <=, >, >= (numbers), is empty, is not empty, " \
    "in (a, b), not in (a, b), in DICTIONARY, not in DICTIONARY, starts with X, not starts with X, "        \
    "matches REGEX or not matches REGEX"

static int parse_cond(cond *c, char *text, const char *where, int line, cf_err *err) {
    memset(c, 0, sizeof *c);
    c->dict = -1;
    c->line = line;
    text = trim(text);
    /* The left side runs to the first space or operator character outside braces: a column
     * name, or a template such as {a}//{b|trim}. */
    size_t n = 0;
    int depth = 0, has_brace = 0;
    while (text[n]) {
        char ch = text[n];
        if (ch == '{') depth++, has_brace = 1;
        else if (ch == '}') depth--;
        else if (!depth && (isspace((unsigned char)ch) || ch == '=' || ch == '!' || ch == '<' || ch == '>')) break;
        n++;
    }
    if (!n || depth) return cf_fail(err, CF_EINPUT, "%s:%d: where: %s", where, line, COND_SYNTAX);
    char lhs[1024];
    if (n + 3 > sizeof lhs) return cf_fail(err, CF_EINPUT, "%s:%d: where: left side too long", where, line);
    if (has_brace) {
        snprintf(lhs, sizeof lhs, "%.*s", (int)n, text);
    } else {
        if (!is_ident(text, n)) return cf_fail(err, CF_EINPUT, "%s:%d: where: %s", where, line, COND_SYNTAX);
        snprintf(lhs, sizeof lhs, "{%.*s}", (int)n, text);
    }
    int rc = tpl_parse(&c->lhs, lhs, where, line, err);
    if (rc) return rc;
    char *rest = trim(text + n);
    static const struct {
        const char *op;
        int kind;
    } cmp[] = {{"==", COND_EQ}, {"!=", COND_NE}, {"<=", COND_LE}, {">=", COND_GE}, {"<", COND_LT}, {">", COND_GT}};
    for (size_t k = 0; k < sizeof cmp / sizeof cmp[0]; k++) {
        size_t ol = strlen(cmp[k].op);
        if (strncmp(rest, cmp[k].op, ol) != 0) continue;
        c->op = cmp[k].kind;
        c->values = malloc(sizeof *c->values);
        if (!c->values || !(c->values[0] = value_of(rest + ol))) return cf_fail(err, CF_EINTERNAL, "out of memory");
        c->n_values = 1;
        if (c->op >= COND_LT) {
            char *end;
            c->number = strtod(c->values[0], &end);
            if (!c->values[0][0] || *end)
                return cf_fail(err, CF_EINPUT, "%s:%d: where: %s compares numbers; '%s' is not a number", where, line,
                               cmp[k].op, c->values[0]);
        }
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
    if (!strncmp(rest, "not ", 4)) {
        negate = 1;
        rest = trim(rest + 4);
    }
    if (!strncmp(rest, "starts with ", 12)) {
        c->op = negate ? COND_NOT_PREFIX : COND_PREFIX;
        c->values = malloc(sizeof *c->values);
        if (!c->values || !(c->values[0] = value_of(rest + 12))) return cf_fail(err, CF_EINTERNAL, "out of memory");
        c->n_values = 1;
        return CF_OK;
    }
    if (!strncmp(rest, "matches ", 8)) {
        c->op = negate ? COND_NOT_MATCH : COND_MATCH;
        char *pat = value_of(rest + 8);
        if (!pat) return cf_fail(err, CF_EINTERNAL, "out of memory");
        int ecode;
        PCRE2_SIZE eoff;
        c->re = pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_MATCH_INVALID_UTF, &ecode,
                              &eoff, NULL);
        free(pat);
        if (!c->re) {
            PCRE2_UCHAR msg[160];
            pcre2_get_error_message(ecode, msg, sizeof msg);
            return cf_fail(err, CF_EINPUT, "%s:%d: where: regular expression: %s at offset %zu", where, line,
                           (const char *)msg, (size_t)eoff);
        }
        (void)pcre2_jit_compile(c->re, PCRE2_JIT_COMPLETE); /* best effort; the interpreter is the fallback */
        c->re_match = pcre2_match_data_create_from_pattern(c->re, NULL);
        if (!c->re_match) return cf_fail(err, CF_EINTERNAL, "out of memory");
        return CF_OK;
    }
    if (!strncmp(rest, "in ", 3)) {
        rest = trim(rest + 3);
    } else {
        return cf_fail(err, CF_EINPUT, "%s:%d: where: %s", where, line, COND_SYNTAX);
    }
    if (rest[0] == '(') {
        size_t len = strlen(rest);
        if (rest[len - 1] != ')') return cf_fail(err, CF_EINPUT, "%s:%d: where: '(' without ')'", where, line);
        rest[len - 1] = '\0';
        c->op = negate ? COND_NOT_IN_SET : COND_IN_SET;
        if (split_list(rest + 1, &c->values, &c->n_values))
            return cf_fail(err, CF_EINPUT, "%s:%d: where: a quote in (...) is never closed", where, line);
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
    tpl_free(&e->anchor);
    tpl_free(&e->not_after);
    tpl_free(&e->once_key);
    free(e->time_format);
    free(e->anchor_format);
    free(e->empty);
    free_list(e->missing, e->n_missing);
    for (size_t i = 0; i < e->n_unpivot; i++) {
        free(e->unpivot[i].first);
        free(e->unpivot[i].last);
    }
    free(e->unpivot);
    for (size_t i = 0; i < e->n_where; i++) cond_free(&e->where[i]);
    free(e->where);
}

void mapping_free(mapping *m) {
    for (size_t i = 0; i < m->n_dicts; i++) {
        dict_spec *d = &m->dicts[i];
        free(d->name);
        free(d->file);
        tpl_free(&d->key);
        free_list(d->columns, d->n_columns);
        for (size_t k = 0; k < d->n_where; k++) cond_free(&d->where[k]);
        free(d->where);
    }
    free(m->dicts);
    for (size_t i = 0; i < m->n_tables; i++) {
        table_spec *t = &m->tables[i];
        free(t->name);
        free(t->file);
        tpl_free(&t->subject);
        if (t->subject_from) cond_free(t->subject_from);
        free(t->subject_from);
        free_list(t->missing, t->n_missing);
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
    free_list(m->var_names, m->n_vars);
    free_list(m->var_values, m->n_vars);
    CF_FREE_ALL(m->path, m->dir, m->name, m->description, m->default_input);
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

static int joined(const table_spec *t, const char *alias) {
    for (size_t j = 0; t && j < t->n_joins; j++)
        if (!strcmp(t->joins[j].alias, alias)) return 1;
    return 0;
}

/* Checks the dictionary references of a template against the declared dictionaries and the
 * table's joins. */
static int check_tpl_refs(const mapping *m, const table_spec *t, const tpl *tp, int allow_joins, cf_err *err) {
    for (size_t i = 0; i < tp->n_parts; i++)
        for (size_t a = 0; a < tp->parts[i].n_alts; a++) {
            const tpl_ref *r = &tp->parts[i].alts[a];
            if (r->dict_name && !(allow_joins && joined(t, r->dict_name)))
                return cf_fail(err, CF_EINPUT, "%s:%d: '{%s.%s}' refers to dictionary '%s', which this table does not join "
                               "(add `join = %s on {key column}` to [table %s])", m->path, tp->line, r->dict_name,
                               r->col_name, r->dict_name, r->dict_name, t ? t->name : "?");
            for (size_t f = 0; f < r->n_filters; f++) {
                const tpl_filter *fl = &r->filters[f];
                int di = fl->kind == TF_MAP ? find_dict(m, fl->name) : 0;
                if (di < 0)
                    return cf_fail(err, CF_EINPUT, "%s:%d: map:%s names no [dictionary %s] section", m->path, tp->line,
                                   fl->name, fl->name);
                if (fl->kind == TF_MAP && fl->column) {
                    size_t c = 0;
                    while (c < m->dicts[di].n_columns && strcmp(m->dicts[di].columns[c], fl->column) != 0) c++;
                    if (c == m->dicts[di].n_columns)
                        return cf_fail(err, CF_EINPUT, "%s:%d: map:%s.%s: '%s' is not among [dictionary %s] columns",
                                       m->path, tp->line, fl->name, fl->column, fl->column, fl->name);
                }
                if (fl->alias && !(allow_joins && joined(t, fl->alias)))
                    return cf_fail(err, CF_EINPUT, "%s:%d: operand '%s.%s' refers to dictionary '%s', which this table "
                                   "does not join", m->path, tp->line, fl->alias, fl->name, fl->alias);
            }
        }
    return CF_OK;
}

static int check_cond(const mapping *m, const table_spec *t, cond *c, int allow_joins, cf_err *err) {
    int rc = check_tpl_refs(m, t, &c->lhs, allow_joins, err);
    if (rc) return rc;
    if (c->dict_name && (c->dict = find_dict(m, c->dict_name)) < 0)
        return cf_fail(err, CF_EINPUT, "%s:%d: where: names no [dictionary %s] section", m->path, c->line, c->dict_name);
    return CF_OK;
}

static int tpl_uses_map(const tpl *t) {
    for (size_t i = 0; i < t->n_parts; i++)
        for (size_t a = 0; a < t->parts[i].n_alts; a++)
            for (size_t f = 0; f < t->parts[i].alts[a].n_filters; f++)
                if (t->parts[i].alts[a].filters[f].kind == TF_MAP) return 1;
    return 0;
}

/* A time constant in ISO 8601 or the given format. */
static int parse_const_time(const char *s, const char *fmt, int64_t *out) {
    return fmt ? time_parse_format(s, strlen(s), fmt, out) : time_parse_iso(s, strlen(s), out, NULL);
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
        /* Dictionaries load in any order, in parallel: one cannot look into another. */
        int uses_map = tpl_uses_map(&d->key);
        for (size_t w = 0; w < d->n_where; w++) uses_map |= tpl_uses_map(&d->where[w].lhs);
        if (uses_map)
            return cf_fail(err, CF_EINPUT, "%s:%d: [dictionary %s]: map: is not available in a dictionary's key or "
                           "where (dictionaries cannot look into each other)", m->path, d->line, d->name);
    }
    for (size_t i = 0; i < m->n_tables; i++) {
        table_spec *t = &m->tables[i];
        if (!t->file) return cf_fail(err, CF_EINPUT, "%s:%d: [table %s] needs `file =`", m->path, t->line, t->name);
        if (!t->subject.n_parts)
            return cf_fail(err, CF_EINPUT, "%s:%d: [table %s] needs `subject =` (the subject id column or template)", m->path,
                           t->line, t->name);
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
        int rc = check_tpl_refs(m, t, &t->subject, 1, err);
        if (!rc && t->subject_from) rc = check_cond(m, t, t->subject_from, 1, err);
        if (rc) return rc;
        for (size_t j = 0; j < t->n_events; j++) {
            event_spec *e = &t->events[j];
            if (!e->code.n_parts) return cf_fail(err, CF_EINPUT, "%s:%d: [event %s] needs `code =`", m->path, e->line, e->name);
            const tpl *all[] = {&e->code, &e->time, &e->numeric, &e->text, &e->description, &e->anchor, &e->not_after,
                                &e->once_key};
            for (size_t k = 0; k < sizeof all / sizeof all[0]; k++) {
                rc = check_tpl_refs(m, t, all[k], 1, err);
                if (rc) return rc;
            }
            for (size_t w = 0; w < e->n_where; w++)
                if ((rc = check_cond(m, t, &e->where[w], 1, err))) return rc;
            if (e->offset == OFFSET_EPOCH && e->has_anchor)
                return cf_fail(err, CF_EINPUT, "%s:%d: [event %s]: time_format = %%s counts from 1970-01-01 and takes no "
                               "time_anchor", m->path, e->line, e->name);
            if (e->offset != OFFSET_NONE && e->offset != OFFSET_EPOCH && !e->has_anchor)
                return cf_fail(err, CF_EINPUT, "%s:%d: [event %s]: time_offset needs `time_anchor =` (a time such as "
                               "2100-01-01, or a {column})", m->path, e->line, e->name);
            if (e->offset != OFFSET_NONE && e->time_format && e->offset != OFFSET_EPOCH)
                return cf_fail(err, CF_EINPUT, "%s:%d: [event %s]: time_offset and time_format exclude each other (the "
                               "anchor has its own anchor_format)", m->path, e->line, e->name);
            if (e->has_anchor && e->offset == OFFSET_NONE)
                return cf_fail(err, CF_EINPUT, "%s:%d: [event %s]: time_anchor needs `time_offset =` (the unit of the "
                               "time column)", m->path, e->line, e->name);
            if ((e->offset != OFFSET_NONE || e->has_not_after || e->date_only_end) && !e->has_time)
                return cf_fail(err, CF_EINPUT, "%s:%d: [event %s]: time_offset, time_not_after and date_only need `time =`",
                               m->path, e->line, e->name);
            if (e->anchor_is_const) {
                const char *src = e->anchor.source;
                if (parse_const_time(src, e->anchor_format, &e->anchor_const))
                    return cf_fail(err, CF_EINPUT, "%s:%d: [event %s]: time_anchor '%s' is not a valid %s", m->path,
                                   e->line, e->name, src, e->anchor_format ? e->anchor_format : "ISO 8601 time");
            }
            if (e->time_format) e->format_date_only = !strstr(e->time_format, "%H");
        }
    }
    return CF_OK;
}

static int set_tpl(tpl *t, int *flag, const char *value, const char *path, int line, const char *key, cf_err *err) {
    if (t->n_parts) return cf_fail(err, CF_EINPUT, "%s:%d: key '%s' given twice", path, line, key);
    if (flag) *flag = 1;
    return tpl_parse(t, value, path, line, err);
}

/* A template where a bare column name is shorthand for {column} (a dictionary's key, a table's
 * subject). */
static int set_column_tpl(tpl *t, const char *val, const char *path, int line, const char *key, cf_err *err) {
    char tmp[512];
    if (!strchr(val, '{')) snprintf(tmp, sizeof tmp, "{%s}", val);
    else snprintf(tmp, sizeof tmp, "%s", val);
    return set_tpl(t, NULL, tmp, path, line, key, err);
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

/* `separator = |` (one character; `tab` or \t for a tab). */
static int parse_sep(const char *val, char *out) {
    if (!strcmp(val, "tab") || !strcmp(val, "\\t")) *out = '\t';
    else if (strlen(val) == 1 && val[0] != '"' && val[0] != '\n' && val[0] != '\r') *out = val[0];
    else return -1;
    return 0;
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
    void *grown = append_zeroed(is_table ? (void *)m->tables : (void *)m->dicts, n, sz);
    if (!grown) return cf_fail(err, CF_EINTERNAL, "out of memory");
    if (is_table) {
        m->tables = grown;
        m->tables[n].name = strdup(name);
        m->tables[n].line = lineno;
        m->tables[n].sep = ',';
        m->n_tables++;
    } else {
        m->dicts = grown;
        m->dicts[n].name = strdup(name);
        m->dicts[n].line = lineno;
        m->dicts[n].sep = ',';
        m->n_dicts++;
    }
    return CF_OK;
}

/* Replaces ${NAME} of declared variables in val (into out); ${data} and ${mapping} are path
 * prefixes resolved later and stay as written. */
static int substitute(const mapping *m, const char *val, char *out, size_t cap, const char *path, int lineno,
                      cf_err *err) {
    size_t o = 0;
    for (const char *s = val; *s;) {
        if (s[0] == '$' && s[1] == '{') {
            const char *close = strchr(s, '}');
            if (!close) return cf_fail(err, CF_EINPUT, "%s:%d: '${' without '}'", path, lineno);
            size_t nl = (size_t)(close - s - 2);
            const char *name = s + 2;
            if ((nl == 4 && !memcmp(name, "data", 4)) || (nl == 7 && !memcmp(name, "mapping", 7))) {
                size_t k = (size_t)(close + 1 - s);
                if (o + k >= cap) return cf_fail(err, CF_EINPUT, "%s:%d: value too long", path, lineno);
                memcpy(out + o, s, k);
                o += k;
                s = close + 1;
                continue;
            }
            size_t v = 0;
            while (v < m->n_vars && !(strlen(m->var_names[v]) == nl && !memcmp(m->var_names[v], name, nl))) v++;
            if (v == m->n_vars)
                return cf_fail(err, CF_EINPUT, "%s:%d: ${%.*s} names no variable (declare it in [variables] above)", path,
                               lineno, (int)nl, name);
            size_t k = strlen(m->var_values[v]);
            if (o + k >= cap) return cf_fail(err, CF_EINPUT, "%s:%d: value too long", path, lineno);
            memcpy(out + o, m->var_values[v], k);
            o += k;
            s = close + 1;
            continue;
        }
        if (o + 1 >= cap) return cf_fail(err, CF_EINPUT, "%s:%d: value too long", path, lineno);
        out[o++] = *s++;
    }
    out[o] = '\0';
    return CF_OK;
}

static int add_cond(cond **list, size_t *n, char *val, const char *path, int lineno, cf_err *err) {
    cond *nw = realloc(*list, (*n + 1) * sizeof *nw);
    if (!nw) return cf_fail(err, CF_EINTERNAL, "out of memory");
    *list = nw;
    return parse_cond(&(*list)[(*n)++], val, path, lineno, err);
}

static int parse_unpivot(event_spec *e, const char *val, const char *path, int lineno, cf_err *err) {
    char **items;
    size_t n;
    if (split_list(val, &items, &n)) return cf_fail(err, CF_EINPUT, "%s:%d: unpivot: unclosed quote", path, lineno);
    int rc = CF_OK;
    e->unpivot = calloc(n ? n : 1, sizeof *e->unpivot);
    if (!e->unpivot) rc = cf_fail(err, CF_EINTERNAL, "out of memory");
    for (size_t i = 0; !rc && i < n; i++) {
        char *dots = strstr(items[i], "..");
        unpivot_item *u = &e->unpivot[e->n_unpivot++];
        if (dots) {
            *dots = '\0';
            u->first = strdup(trim(items[i]));
            u->last = strdup(trim(dots + 2));
        } else {
            u->first = strdup(items[i]);
        }
        if (!u->first || !*u->first || (dots && (!u->last || !*u->last)))
            rc = cf_fail(err, CF_EINPUT, "%s:%d: unpivot expects columns and ranges: A, B, C .. F", path, lineno);
    }
    if (!rc && !n) rc = cf_fail(err, CF_EINPUT, "%s:%d: unpivot needs at least one column", path, lineno);
    free_list(items, n);
    return rc;
}

static int parse_offset_unit(const char *v, int *out) {
    static const struct {
        const char *name;
        int unit;
    } units[] = {{"seconds", OFFSET_SECONDS}, {"s", OFFSET_SECONDS},       {"milliseconds", OFFSET_MILLISECONDS},
                 {"ms", OFFSET_MILLISECONDS}, {"minutes", OFFSET_MINUTES}, {"min", OFFSET_MINUTES},
                 {"hours", OFFSET_HOURS},     {"h", OFFSET_HOURS},         {"days", OFFSET_DAYS},
                 {"d", OFFSET_DAYS},          {"weeks", OFFSET_WEEKS},     {"w", OFFSET_WEEKS},
                 {"years", OFFSET_YEARS},     {"hh:mm", OFFSET_HHMM},      {"hh:mm:ss", OFFSET_HHMM}};
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (!strcmp(v, units[i].name)) {
            *out = units[i].unit;
            return 0;
        }
    return -1;
}

/* The mapping-file grammar, key by key; one call per `key = value` line of section sec. */
enum section { S_NONE, S_MAPPING, S_VARS, S_DICT, S_TABLE, S_EVENT };

#define FAIL(...) return cf_fail(err, CF_EINPUT, __VA_ARGS__)
#define UNKNOWN_KEY(secname, expected) \
    FAIL("%s:%d: unknown key '%s' in [%s] (expected %s)", path, lineno, key, secname, expected)

/* [vars]: a variable and its value (the last --var NAME=VALUE for it wins over the file's). */
static int parse_var(mapping *m, const char *key, const char *val, const char *path, int lineno, char *const *vars,
                     size_t n_vars, cf_err *err) {
    if (!is_ident(key, strlen(key)) || strchr(key, '.') || strchr(key, '/') || !strcmp(key, "data") ||
        !strcmp(key, "mapping"))
        FAIL("%s:%d: variable names are letters, digits, _ and - (data and mapping are reserved)", path, lineno);
    for (size_t v = 0; v < m->n_vars; v++)
        if (!strcmp(m->var_names[v], key)) FAIL("%s:%d: variable '%s' declared twice", path, lineno, key);
    const char *value = val;
    size_t kl = strlen(key);
    for (size_t v = 0; v < n_vars; v++) /* the last --var for a name wins */
        if (!strncmp(vars[v], key, kl) && vars[v][kl] == '=') value = vars[v] + kl + 1;
    char **nn = realloc(m->var_names, (m->n_vars + 1) * sizeof *nn);
    if (!nn) return cf_fail(err, CF_EINTERNAL, "out of memory");
    m->var_names = nn;
    char **nv = realloc(m->var_values, (m->n_vars + 1) * sizeof *nv);
    if (!nv) return cf_fail(err, CF_EINTERNAL, "out of memory");
    m->var_values = nv;
    m->var_names[m->n_vars] = strdup(key);
    m->var_values[m->n_vars] = strdup(value);
    m->n_vars++;
    return CF_OK;
}

/* A key of a [dictionary NAME]. */
static int parse_dict_key(dict_spec *d, const char *key, char *val, const char *path, int lineno, cf_err *err) {
    int rc;
    if (!strcmp(key, "file")) {
        set_str(&d->file, val);
    } else if (!strcmp(key, "key")) {
        return set_column_tpl(&d->key, val, path, lineno, key, err);
    } else if (!strcmp(key, "where")) {
        if ((rc = add_cond(&d->where, &d->n_where, val, path, lineno, err))) return rc;
        if (d->where[d->n_where - 1].dict_name)
            FAIL("%s:%d: a dictionary's where may not test another dictionary", path, lineno);
    } else if (!strcmp(key, "optional")) {
        if (choose2(val, "no", "yes", &d->optional)) FAIL("%s:%d: optional must be yes or no", path, lineno);
    } else if (!strcmp(key, "separator")) {
        if (parse_sep(val, &d->sep)) FAIL("%s:%d: separator must be one character (or tab)", path, lineno);
    } else if (!strcmp(key, "columns") || !strcmp(key, "value")) {
        char **cols;
        size_t nc;
        if (split_list(val, &cols, &nc)) return cf_fail(err, CF_EINTERNAL, "out of memory");
        char **grown = realloc(d->columns, (d->n_columns + nc) * sizeof *grown);
        if (!grown) {
            free_list(cols, nc);
            return cf_fail(err, CF_EINTERNAL, "out of memory");
        }
        d->columns = grown;
        for (size_t i = 0; i < nc; i++) d->columns[d->n_columns++] = cols[i];
        free(cols);
    } else {
        UNKNOWN_KEY("dictionary", "file, key, columns, value, optional, separator, where");
    }
    return CF_OK;
}

/* `{column}`, or a bare column name written without braces, as a template's text in tmp. */
static void braced(const char *kt, char tmp[512]) {
    if (!strchr(kt, '{')) snprintf(tmp, 512, "{%s}", kt);
    else snprintf(tmp, 512, "%s", kt);
}

/* A table's `join` or `join_optional` (key): `DICTIONARY [as ALIAS] on {column}`. */
static int parse_join(table_spec *t, const char *key, char *val, const char *path, int lineno, cf_err *err) {
    char *on = strstr(val, " on ");
    if (!on) FAIL("%s:%d: %s expects `DICTIONARY [as ALIAS] on {column}`", path, lineno, key);
    *on = '\0';
    char *dname = trim(val), *kt = trim(on + 4), *alias = NULL;
    char *as = strstr(dname, " as ");
    if (as) {
        *as = '\0';
        alias = trim(as + 4);
        dname = trim(dname);
        if (!is_ident(alias, strlen(alias)) || strchr(alias, '.'))
            FAIL("%s:%d: join alias must be a plain name", path, lineno);
    }
    if (joined(t, alias ? alias : dname))
        FAIL("%s:%d: '%s' is joined twice; give one an alias with `as`", path, lineno, alias ? alias : dname);
    join_spec *nj = append_zeroed(t->joins, t->n_joins, sizeof *nj);
    if (!nj) return cf_fail(err, CF_EINTERNAL, "out of memory");
    t->joins = nj;
    join_spec *j = &t->joins[t->n_joins++];
    j->dict = -1;
    j->line = lineno;
    j->dict_name = strdup(dname);
    j->alias = strdup(alias ? alias : dname);
    j->optional = !strcmp(key, "join_optional");
    char tmp[512];
    braced(kt, tmp);
    return tpl_parse(&j->key, tmp, path, lineno, err);
}

/* A key of a [table NAME]. */
static int parse_table_key(table_spec *t, const char *key, char *val, const char *path, int lineno, cf_err *err) {
    int rc;
    if (!strcmp(key, "file")) {
        set_str(&t->file, val);
    } else if (!strcmp(key, "subject")) {
        return set_column_tpl(&t->subject, val, path, lineno, key, err);
    } else if (!strcmp(key, "subject_from")) {
        if (t->subject_from) FAIL("%s:%d: key 'subject_from' given twice", path, lineno);
        if (!(t->subject_from = calloc(1, sizeof *t->subject_from))) return cf_fail(err, CF_EINTERNAL, "out of memory");
        if ((rc = parse_cond(t->subject_from, val, path, lineno, err))) return rc;
    } else if (!strcmp(key, "subject_type")) {
        if (choose2(val, "int", "string", &t->subject_is_string))
            FAIL("%s:%d: subject_type must be int or string", path, lineno);
    } else if (!strcmp(key, "separator")) {
        if (parse_sep(val, &t->sep)) FAIL("%s:%d: separator must be one character (or tab)", path, lineno);
    } else if (!strcmp(key, "missing")) {
        free_list(t->missing, t->n_missing);
        if (split_list(val, &t->missing, &t->n_missing)) FAIL("%s:%d: missing: unclosed quote", path, lineno);
    } else if (!strcmp(key, "optional")) {
        if (choose2(val, "no", "yes", &t->optional)) FAIL("%s:%d: optional must be yes or no", path, lineno);
    } else if (!strcmp(key, "may_be_empty")) {
        if (choose2(val, "no", "yes", &t->may_be_empty)) FAIL("%s:%d: may_be_empty must be yes or no", path, lineno);
    } else if (!strcmp(key, "join") || !strcmp(key, "join_optional")) {
        return parse_join(t, key, val, path, lineno, err);
    } else {
        UNKNOWN_KEY("table", "file, subject, subject_type, subject_from, separator, missing, optional, "
                    "may_be_empty, join, join_optional");
    }
    return CF_OK;
}

/* An event's `once`: `first per {key}` or `last per {key}`. */
static int parse_once(event_spec *e, const char *key, char *val, const char *path, int lineno, cf_err *err) {
    char *per = strstr(val, " per ");
    if (!per) FAIL("%s:%d: once expects `first per {key}` or `last per {key}`", path, lineno);
    *per = '\0';
    char *which = trim(val), *kt = trim(per + 5);
    if (!strcmp(which, "first")) e->once = ONCE_FIRST;
    else if (!strcmp(which, "last")) e->once = ONCE_LAST;
    else FAIL("%s:%d: once expects `first per {key}` or `last per {key}`", path, lineno);
    char tmp[512];
    braced(kt, tmp);
    return set_tpl(&e->once_key, NULL, tmp, path, lineno, key, err);
}

/* A key of an [event TABLE/NAME]. */
static int parse_event_key(event_spec *e, const char *key, char *val, const char *path, int lineno, cf_err *err) {
    int rc;
    if (!strcmp(key, "code")) return set_tpl(&e->code, NULL, val, path, lineno, key, err);
    if (!strcmp(key, "time")) return set_tpl(&e->time, &e->has_time, val, path, lineno, key, err);
    if (!strcmp(key, "numeric")) return set_tpl(&e->numeric, &e->has_numeric, val, path, lineno, key, err);
    if (!strcmp(key, "text")) return set_tpl(&e->text, &e->has_text, val, path, lineno, key, err);
    if (!strcmp(key, "description")) return set_tpl(&e->description, &e->has_description, val, path, lineno, key, err);
    if (!strcmp(key, "time_not_after")) return set_tpl(&e->not_after, &e->has_not_after, val, path, lineno, key, err);
    if (!strcmp(key, "time_format")) {
        if (!strcmp(val, "%s")) {
            e->offset = OFFSET_EPOCH; /* seconds since 1970-01-01T00:00:00Z */
        } else {
            set_str(&e->time_format, val);
        }
    } else if (!strcmp(key, "time_offset")) {
        if (parse_offset_unit(val, &e->offset))
            FAIL("%s:%d: time_offset must be seconds, milliseconds, minutes, hours, days, weeks, years or hh:mm",
                 path, lineno);
    } else if (!strcmp(key, "time_anchor")) {
        if ((rc = set_tpl(&e->anchor, &e->has_anchor, val, path, lineno, key, err))) return rc;
        e->anchor_is_const = !strchr(val, '{');
    } else if (!strcmp(key, "anchor_format")) {
        set_str(&e->anchor_format, val);
    } else if (!strcmp(key, "date_only")) {
        if (choose2(val, "start", "end", &e->date_only_end))
            FAIL("%s:%d: date_only must be start (00:00:00) or end (23:59:59)", path, lineno);
    } else if (!strcmp(key, "empty")) {
        set_str(&e->empty, val);
    } else if (!strcmp(key, "missing")) {
        free_list(e->missing, e->n_missing);
        e->has_missing = 1;
        if (split_list(val, &e->missing, &e->n_missing)) FAIL("%s:%d: missing: unclosed quote", path, lineno);
    } else if (!strcmp(key, "unpivot")) {
        if (e->n_unpivot) FAIL("%s:%d: key 'unpivot' given twice", path, lineno);
        return parse_unpivot(e, val, path, lineno, err);
    } else if (!strcmp(key, "once")) {
        return parse_once(e, key, val, path, lineno, err);
    } else if (!strcmp(key, "may_be_empty")) {
        if (choose2(val, "no", "yes", &e->may_be_empty)) FAIL("%s:%d: may_be_empty must be yes or no", path, lineno);
    } else if (!strcmp(key, "numeric_invalid")) {
        if (!strcmp(val, "reject")) e->numeric_invalid = 0;
        else if (!strcmp(val, "text")) e->numeric_invalid = 1;
        else if (!strcmp(val, "ignore")) e->numeric_invalid = 2;
        else FAIL("%s:%d: numeric_invalid must be reject, text or ignore", path, lineno);
    } else if (!strcmp(key, "text_if_no_numeric")) {
        if (choose2(val, "no", "yes", &e->text_if_no_numeric))
            FAIL("%s:%d: text_if_no_numeric must be yes or no", path, lineno);
    } else if (!strcmp(key, "where")) {
        return add_cond(&e->where, &e->n_where, val, path, lineno, err);
    } else {
        UNKNOWN_KEY("event", "code, time, time_format, time_offset, time_anchor, anchor_format, date_only, "
                    "time_not_after, numeric, numeric_invalid, text, text_if_no_numeric, description, empty, "
                    "missing, unpivot, once, may_be_empty, where");
    }
    return CF_OK;
}

static int parse_key(mapping *m, int sec, dict_spec *d, table_spec *t, event_spec *e, char *key, char *val,
                     const char *path, int lineno, char *const *vars, size_t n_vars, cf_err *err) {
    switch (sec) {
    case S_NONE: FAIL("%s:%d: key '%s' outside any [section]", path, lineno, key);
    case S_VARS: return parse_var(m, key, val, path, lineno, vars, n_vars, err);
    case S_MAPPING:
        if (!strcmp(key, "name")) set_str(&m->name, val);
        else if (!strcmp(key, "description")) set_str(&m->description, val);
        else if (!strcmp(key, "input")) set_str(&m->default_input, val);
        else if (strcmp(key, "version") != 0) UNKNOWN_KEY("mapping", "name, description, version, input");
        return CF_OK;
    case S_DICT: assert(d); return parse_dict_key(d, key, val, path, lineno, err);
    case S_TABLE: assert(t); return parse_table_key(t, key, val, path, lineno, err);
    case S_EVENT: assert(e); return parse_event_key(e, key, val, path, lineno, err);
    }
    assert(!"a section of no known kind");
    return CF_OK;
}
#undef UNKNOWN_KEY
#undef FAIL

/* Where keys go: the section last opened and, in it, its dictionary, table or event. */
typedef struct {
    int sec;
    dict_spec *dict;
    table_spec *table;
    event_spec *event;
} map_cursor;

/* [event TABLE/NAME]: a new event of a declared table. */
static int add_event(mapping *m, char *arg, int lineno, const char *path, map_cursor *cur, cf_err *err) {
    char *sl = strchr(arg, '/');
    if (!sl) return cf_fail(err, CF_EINPUT, "%s:%d: [event ...] must be named TABLE/NAME", path, lineno);
    *sl = '\0';
    int ti = find_table(m, arg);
    *sl = '/';
    if (ti < 0) return cf_fail(err, CF_EINPUT, "%s:%d: [event %s] names a table not declared above it", path, lineno, arg);
    table_spec *t = &m->tables[ti];
    for (size_t j = 0; j < t->n_events; j++)
        if (!strcmp(t->events[j].name, arg))
            return cf_fail(err, CF_EINPUT, "%s:%d: event '%s' declared twice", path, lineno, arg);
    event_spec *ne = append_zeroed(t->events, t->n_events, sizeof *ne);
    if (!ne) return cf_fail(err, CF_EINTERNAL, "out of memory");
    t->events = ne;
    cur->event = &t->events[t->n_events++];
    cur->event->name = strdup(arg);
    cur->event->line = lineno;
    cur->sec = S_EVENT;
    return CF_OK;
}

/* A section header [kind name]. */
static int open_section(mapping *m, const char *kind, char *arg, int lineno, const char *path, map_cursor *cur,
                        cf_err *err) {
    memset(cur, 0, sizeof *cur);
    if (!strcmp(kind, "mapping") || !strcmp(kind, "variables")) {
        cur->sec = kind[0] == 'm' ? S_MAPPING : S_VARS;
        return CF_OK;
    }
    int known = !strcmp(kind, "dictionary") || !strcmp(kind, "table") || !strcmp(kind, "event");
    if (!known)
        return cf_fail(err, CF_EINPUT,
                       "%s:%d: unknown section [%s] (expected mapping, variables, dictionary, table or event)", path,
                       lineno, kind);
    if (!is_ident(arg, strlen(arg)))
        return cf_fail(err, CF_EINPUT, "%s:%d: [%s] needs a name (letters, digits, _ - . /)", path, lineno, kind);
    if (kind[0] == 'e') return add_event(m, arg, lineno, path, cur, err);
    int rc = add_section(m, kind, arg, lineno, path, err);
    if (rc) return rc;
    if (kind[0] == 't') {
        cur->table = &m->tables[m->n_tables - 1];
        cur->sec = S_TABLE;
    } else {
        cur->dict = &m->dicts[m->n_dicts - 1];
        cur->sec = S_DICT;
    }
    return CF_OK;
}

int mapping_load_vars(mapping *m, const char *path, char *const *vars, size_t n_vars, cf_err *err) {
    memset(m, 0, sizeof *m);
    for (size_t v = 0; v < n_vars; v++) {
        const char *eq = strchr(vars[v], '=');
        if (!eq || eq == vars[v]) return cf_fail(err, CF_EINPUT, "--var expects NAME=VALUE");
    }
    char *text = NULL, *subst = NULL;
    size_t len;
    int rc = file_read_all(path, (size_t)16 << 20, &text, &len, err);
    if (rc) return rc;
    m->path = strdup(path);
    const char *slash = strrchr(path, '/');
    m->dir = slash ? dupn(path, (size_t)(slash - path)) : strdup(".");
    map_cursor cur = {S_NONE, NULL, NULL, NULL};
    const size_t subst_cap = 16384;
    subst = malloc(subst_cap);
    kv_reader kv;
    kv_open(&kv, path, text, len, KV_HASH_ANYWHERE | KV_QUOTES);
    if (!subst || !m->path || !m->dir) {
        rc = cf_fail(err, CF_EINTERNAL, "out of memory");
        goto done;
    }
    for (int item; (item = kv_next(&kv, err)) != KV_END;) {
        if (item == KV_ERROR) {
            rc = err->code;
            goto done;
        }
        if (item == KV_SECTION) {
            if ((rc = open_section(m, kv.kind, kv.name, kv.line, path, &cur, err))) goto done;
            continue;
        }
        char *val = kv.value;
        if (cur.sec != S_VARS) {
            if ((rc = substitute(m, val, subst, subst_cap, path, kv.line, err))) goto done;
            val = subst;
        }
        if ((rc = parse_key(m, cur.sec, cur.dict, cur.table, cur.event, kv.key, val, path, kv.line, vars, n_vars, err)))
            goto done;
    }
    for (size_t v = 0; v < n_vars; v++) {
        size_t kl = (size_t)(strchr(vars[v], '=') - vars[v]), k = 0;
        while (k < m->n_vars && !(strlen(m->var_names[k]) == kl && !strncmp(m->var_names[k], vars[v], kl))) k++;
        if (k == m->n_vars) {
            rc = cf_fail(err, CF_EINPUT, "--var %.*s: %s declares no such variable (its [variables] section has %zu)",
                         (int)kl, vars[v], path, m->n_vars);
            goto done;
        }
    }
    rc = validate(m, err);
done:
    kv_close(&kv);
    free(text);
    free(subst);
    if (rc) mapping_free(m);
    return rc;
}

int mapping_load(mapping *m, const char *path, cf_err *err) { return mapping_load_vars(m, path, NULL, 0, err); }

void mapping_resolve_path(const mapping *m, const char *input_dir, const char *file, char *out, size_t cap) {
    const char *data = cf_data_dir();
    if (!strncmp(file, "${mapping}/", 11)) snprintf(out, cap, "%s/%s", m->dir, file + 11);
    else if (!strncmp(file, "${data}/", 8)) snprintf(out, cap, "%s/%s", data ? data : "$CLINFM_DATA", file + 8);
    else if (file[0] == '/') snprintf(out, cap, "%s", file);
    else snprintf(out, cap, "%s/%s", input_dir, file);
}

void mapping_files_free(char **files, size_t n) { free_list(files, n); }

int mapping_files(const mapping *m, const char *input_dir, const char *file, int optional, char ***out, size_t *n,
                  cf_err *err) {
    *out = NULL;
    *n = 0;
    char path[4096];
    if (!strncmp(file, "${data}/", 8) && !cf_data_dir()) {
        if (optional) return CF_OK;
        return cf_fail(err, CF_EINPUT, "%s: '%s' is in the external data directory, which is not set: set CLINFM_DATA "
                       "to the folder holding it (there is no ../shared/data here)", m->path, file);
    }
    mapping_resolve_path(m, input_dir, file, path, sizeof path);
    if (!strpbrk(file, "*?[")) {
        struct stat st;
        if (stat(path, &st) != 0) {
            if (optional) return CF_OK;
            return cf_fail_errno(err, CF_EINPUT, "%s: cannot open", path);
        }
        *out = malloc(sizeof **out);
        if (!*out || !((*out)[0] = strdup(path))) {
            free(*out);
            *out = NULL;
            return cf_fail(err, CF_EINTERNAL, "out of memory");
        }
        *n = 1;
        return CF_OK;
    }
    glob_t g;
    int grc = glob(path, 0, NULL, &g); /* sorted, so the order of files (and of events) is fixed */
    if (grc == GLOB_NOMATCH) {
        globfree(&g);
        if (optional) return CF_OK;
        return cf_fail(err, CF_EINPUT, "%s: no file matches this pattern", path);
    }
    if (grc != 0) {
        globfree(&g);
        return cf_fail(err, grc == GLOB_NOSPACE ? CF_EINTERNAL : CF_EINPUT, "%s: cannot list the files of this pattern",
                       path);
    }
    size_t k = 0;
    char **list = malloc((g.gl_pathc ? g.gl_pathc : 1) * sizeof *list);
    for (size_t i = 0; list && i < g.gl_pathc; i++) {
        struct stat st;
        if (stat(g.gl_pathv[i], &st) != 0 || S_ISDIR(st.st_mode)) continue; /* folders are not tables */
        if (!(list[k] = strdup(g.gl_pathv[i]))) {
            free_list(list, k);
            list = NULL;
            break;
        }
        k++;
    }
    globfree(&g);
    if (!list) return cf_fail(err, CF_EINTERNAL, "out of memory");
    if (!k && !optional) {
        free(list);
        return cf_fail(err, CF_EINPUT, "%s: no file matches this pattern", path);
    }
    *out = list;
    *n = k;
    return CF_OK;
}
