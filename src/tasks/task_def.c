/* Task files: parsing and validation (the format is described in docs/TASKS.md).
 *
 * The format is line-oriented like the mapping files: `# comments`, `[section]` headers and
 * `key = value` lines. Everything is checked before any data is read, and every message names the
 * file and line, so a committee member editing a task gets told exactly what is wrong. Times are
 * written as an anchor plus an optional offset ("trigger + 24h"); conditions are one of
 * `any SET in WINDOW`, `none SET in WINDOW`, `TIME OP TIME` and `age OP YEARS`. */
#include "tasks/task.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/file.h"
#include "util/kv.h"
#include "util/timeutil.h"

static const char *const anchor_names[TASK_T_COUNT] = {
    "-inf", "+inf", "trigger", "prediction", "gap_end", "episode_end", "record_start", "record_end",
    "birth"};

static char *dupn(const char *s, size_t n) {
    char *d = cf_malloc(n + 1);
    if (!d) return NULL;
    memcpy(d, s, n);
    d[n] = 0;
    return d;
}
static char *dup0(const char *s) { return dupn(s, strlen(s)); }

static int push_str(char ***arr, size_t *n, const char *s) {
    char **a = cf_realloc_array(*arr, *n + 1, sizeof *a);
    if (!a) return -1;
    *arr = a;
    if (!(a[*n] = dup0(s))) return -1;
    (*n)++;
    return 0;
}

void task_free(task_def *t) {
    if (!t) return;
    CF_FREE_ALL(t->path, t->name, t->title, t->description, t->population, t->outcome, t->data,
                t->birth_code);
    for (size_t i = 0; i < t->n_sets; i++) {
        task_codeset *cs = &t->sets[i];
        free(cs->name);
        free(cs->description);
        for (size_t j = 0; j < cs->n_codes; j++) free(cs->codes[j]);
        for (size_t j = 0; j < cs->n_prefixes; j++) free(cs->prefixes[j]);
        free(cs->codes);
        free(cs->prefixes);
    }
    free(t->sets);
    for (size_t i = 0; i < t->n_exclude; i++) free(t->exclude[i].text);
    CF_FREE_ALL(t->exclude, t->label.text, t->never_input);
    for (size_t i = 0; i < t->n_subgroups; i++) {
        free(t->subgroups[i].name);
        free(t->subgroups[i].prefix);
    }
    memset(t, 0, sizeof *t);
}

char *task_time_str(const task_time *tt, char *buf, size_t cap) {
    if (!cap) return buf;
    const char *a = tt->anchor >= 0 && tt->anchor < TASK_T_COUNT ? anchor_names[tt->anchor] : "?";
    if (!tt->offset) {
        snprintf(buf, cap, "%s", a);
        return buf;
    }
    int64_t v = tt->offset < 0 ? -tt->offset : tt->offset;
    const char *unit = "s";
    int64_t q = v / USEC_PER_SEC;
    if (v % USEC_PER_DAY == 0 && v >= 2 * USEC_PER_DAY) unit = "d", q = v / USEC_PER_DAY;
    else if (v % (3600 * USEC_PER_SEC) == 0) unit = "h", q = v / (3600 * USEC_PER_SEC);
    else if (v % (60 * USEC_PER_SEC) == 0) unit = "min", q = v / (60 * USEC_PER_SEC);
    snprintf(buf, cap, "%s %c %lld%s", a, tt->offset < 0 ? '-' : '+', (long long)q, unit);
    return buf;
}

/* ---------------------------------------------------------------- small lexer */

typedef struct {
    const char *p, *end;
} lex;

static void skip_ws(lex *l) {
    while (l->p < l->end && (*l->p == ' ' || *l->p == '\t')) l->p++;
}
static int at_end(lex *l) {
    skip_ws(l);
    return l->p >= l->end;
}
/* A word of [A-Za-z0-9_.] or the tokens -inf/+inf. */
static size_t word(lex *l, const char **w) {
    skip_ws(l);
    const char *s = l->p;
    if (l->end - s >= 4 && (s[0] == '-' || s[0] == '+') && !strncmp(s + 1, "inf", 3)) {
        l->p += 4;
        *w = s;
        return 4;
    }
    while (l->p < l->end && (isalnum((unsigned char)*l->p) || *l->p == '_' || *l->p == '.')) l->p++;
    *w = s;
    return (size_t)(l->p - s);
}
static int word_is(const char *w, size_t n, const char *s) { return n == strlen(s) && !memcmp(w, s, n); }
static int peek(lex *l, char c) {
    skip_ws(l);
    return l->p < l->end && *l->p == c;
}

/* Parses "<number><unit>" (units s, min, h, d, w); returns 0 or -1. */
static int parse_duration(lex *l, int64_t *out) {
    skip_ws(l);
    const char *s = l->p;
    char *e;
    char buf[64];
    size_t n = 0;
    while (l->p < l->end && (isdigit((unsigned char)*l->p) || *l->p == '.') && n < sizeof buf - 1)
        buf[n++] = *l->p++;
    buf[n] = 0;
    if (!n) return -1;
    errno = 0;
    double v = strtod(buf, &e);
    if (errno || *e || !(v >= 0) || v > 1e6) return -1;
    const char *u = l->p;
    while (l->p < l->end && isalpha((unsigned char)*l->p)) l->p++;
    size_t un = (size_t)(l->p - u);
    double mul;
    if (word_is(u, un, "s")) mul = 1e6;
    else if (word_is(u, un, "min")) mul = 60e6;
    else if (word_is(u, un, "h")) mul = 3600e6;
    else if (word_is(u, un, "d")) mul = 86400e6;
    else if (word_is(u, un, "w")) mul = 7 * 86400e6;
    else {
        l->p = s;
        return -1;
    }
    *out = (int64_t)llround(v * mul);
    return 0;
}

/* anchor [(+|-) duration] */
static int parse_time(lex *l, task_time *tt, const char **why) {
    const char *w;
    size_t n = word(l, &w);
    int a = -1;
    for (int i = 0; i < TASK_T_COUNT; i++)
        if (word_is(w, n, anchor_names[i])) a = i;
    if (a < 0) {
        *why = "a time: one of trigger, prediction, gap_end, episode_end, record_start, "
               "record_end, birth, -inf, +inf, optionally followed by + or - and a duration such "
               "as 24h";
        return -1;
    }
    tt->anchor = a;
    tt->offset = 0;
    if (peek(l, '+') || peek(l, '-')) {
        if (a == TASK_T_NEG_INF || a == TASK_T_POS_INF) {
            *why = "no offset after -inf or +inf";
            return -1;
        }
        int neg = *l->p == '-';
        l->p++;
        int64_t d;
        if (parse_duration(l, &d)) {
            *why = "a duration after + or -: a number and a unit (s, min, h, d, w), such as 24h";
            return -1;
        }
        tt->offset = neg ? -d : d;
    }
    return 0;
}

static int parse_op(lex *l, int *op) {
    skip_ws(l);
    if (l->end - l->p >= 2 && l->p[1] == '=') {
        if (*l->p == '<') *op = TASK_OP_LE;
        else if (*l->p == '>') *op = TASK_OP_GE;
        else return -1;
        l->p += 2;
        return 0;
    }
    if (l->p < l->end && (*l->p == '<' || *l->p == '>')) {
        *op = *l->p == '<' ? TASK_OP_LT : TASK_OP_GT;
        l->p++;
        return 0;
    }
    return -1;
}

/* ---------------------------------------------------------------- parser state */

typedef struct {
    task_def *t;
    const char *path;
    int line;
    cf_err *err;
    /* conditions keep their set name until all sets are known */
    char **cond_set_names; /* parallel to exclude[], then one for the label */
    char *label_set_name;
    char *trigger_name, *end_name;
    int trigger_line, end_line, label_line, have_label;
    char **never_names;
    size_t n_never;
    int never_line;
    char *death_name, *complete_name;
    int death_line, complete_line, have_follow_up;
} pstate;

static int fail(pstate *ps, const char *fmt, const char *detail) {
    return cf_fail(ps->err, CF_EINPUT, fmt, ps->path, ps->line, detail);
}

static int parse_cond(pstate *ps, const char *text, task_cond *c, char **set_name) {
    lex l = {text, text + strlen(text)};
    const char *why = NULL, *w;
    memset(c, 0, sizeof *c);
    c->line = ps->line;
    *set_name = NULL;
    const char *save = l.p;
    size_t n = word(&l, &w);
    if (word_is(w, n, "any") || word_is(w, n, "none")) {
        c->kind = word_is(w, n, "any") ? TASK_C_ANY : TASK_C_NONE;
        n = word(&l, &w);
        if (!n) return fail(ps, "%s:%d: expected a code set name after any/none%s", "");
        if (!(*set_name = dupn(w, n))) return cf_fail(ps->err, CF_EINTERNAL, "out of memory");
        n = word(&l, &w);
        if (!word_is(w, n, "in")) return fail(ps, "%s:%d: expected 'in' and a window after the set name%s", "");
        skip_ws(&l);
        if (l.p >= l.end || (*l.p != '(' && *l.p != '['))
            return fail(ps, "%s:%d: expected a window such as (prediction, episode_end]%s", "");
        c->from_closed = *l.p++ == '[';
        if (parse_time(&l, &c->from, &why)) return fail(ps, "%s:%d: window start: expected %s", why);
        if (!peek(&l, ',')) return fail(ps, "%s:%d: expected ',' between the window's start and end%s", "");
        l.p++;
        if (parse_time(&l, &c->to, &why)) return fail(ps, "%s:%d: window end: expected %s", why);
        skip_ws(&l);
        if (l.p >= l.end || (*l.p != ')' && *l.p != ']'))
            return fail(ps, "%s:%d: expected ')' or ']' to close the window%s", "");
        c->to_closed = *l.p++ == ']';
        if (c->from.anchor == TASK_T_POS_INF || c->to.anchor == TASK_T_NEG_INF)
            return fail(ps, "%s:%d: a window runs from an earlier to a later time%s", "");
    } else if (word_is(w, n, "age")) {
        c->kind = TASK_C_AGE_CMP;
        if (parse_op(&l, &c->op)) return fail(ps, "%s:%d: expected <, <=, > or >= after age%s", "");
        skip_ws(&l);
        char *e;
        errno = 0;
        c->age = strtod(l.p, &e);
        if (e == l.p || errno || !(c->age >= 0 && c->age <= 200))
            return fail(ps, "%s:%d: expected an age in years (0 to 200)%s", "");
        l.p = e;
    } else {
        l.p = save;
        c->kind = TASK_C_TIME_CMP;
        if (parse_time(&l, &c->lhs, &why))
            return fail(ps, "%s:%d: expected a condition: 'any SET in WINDOW', 'none SET in WINDOW', "
                            "'TIME OP TIME' or 'age OP YEARS'; left side: %s", why);
        if (parse_op(&l, &c->op)) return fail(ps, "%s:%d: expected <, <=, > or >= between two times%s", "");
        if (parse_time(&l, &c->rhs, &why)) return fail(ps, "%s:%d: right side: expected %s", why);
    }
    if (!at_end(&l)) return fail(ps, "%s:%d: unexpected text after the condition%s", "");
    if (!(c->text = dup0(text))) return cf_fail(ps->err, CF_EINTERNAL, "out of memory");
    return CF_OK;
}

static int valid_name(const char *s) {
    if (!*s) return 0;
    for (; *s; s++)
        if (!(isalnum((unsigned char)*s) || *s == '_')) return 0;
    return 1;
}

static int find_set(const task_def *t, const char *name) {
    for (size_t i = 0; i < t->n_sets; i++)
        if (!strcmp(t->sets[i].name, name)) return (int)i;
    return -1;
}

static int set_text(pstate *ps, char **dst, const char *v, const char *key) {
    if (*dst) return fail(ps, "%s:%d: '%s' is given twice", key);
    if (!(*dst = dup0(v))) return cf_fail(ps->err, CF_EINTERNAL, "out of memory");
    return CF_OK;
}

/* A code set's name, and the line it was given on (for errors found once all sections are read). */
static int set_name(pstate *ps, char **dst, int *line, const char *v, const char *key) {
    *line = ps->line;
    return set_text(ps, dst, v, key);
}

/* The index of v among the n names, or -1: a value that names one of a key's choices. */
static int choice(const char *v, const char *const *names, int n) {
    for (int i = 0; i < n; i++)
        if (!strcmp(v, names[i])) return i;
    return -1;
}

enum { S_NONE, S_TASK, S_CODES, S_TRIGGER, S_EPISODE, S_PREDICTION, S_EXCLUDE, S_LABEL, S_INPUT, S_SUBGROUPS,
       S_FOLLOW_UP, S_RECORD, S_REPORT, S_COUNT_ };

static int handle_kv(pstate *ps, int sec, const char *key, const char *val) {
    task_def *t = ps->t;
    int rc;
    switch (sec) {
    case S_TASK:
        if (!strcmp(key, "name")) {
            if (!valid_name(val)) return fail(ps, "%s:%d: name: expected letters, digits and '_'%s", "");
            return set_text(ps, &t->name, val, key);
        }
        if (!strcmp(key, "title")) return set_text(ps, &t->title, val, key);
        if (!strcmp(key, "description")) return set_text(ps, &t->description, val, key);
        if (!strcmp(key, "population")) return set_text(ps, &t->population, val, key);
        if (!strcmp(key, "outcome")) return set_text(ps, &t->outcome, val, key);
        if (!strcmp(key, "data")) return set_text(ps, &t->data, val, key);
        if (!strcmp(key, "birth_code")) return set_text(ps, &t->birth_code, val, key);
        break;
    case S_CODES: {
        task_codeset *cs = &t->sets[t->n_sets - 1];
        if (!strcmp(key, "code") || !strcmp(key, "prefix")) {
            /* comma-separated lists are allowed: code = A, B */
            const char *p = val;
            while (*p) {
                while (*p == ' ' || *p == ',') p++;
                const char *s = p;
                while (*p && *p != ',') p++;
                const char *e = p;
                while (e > s && e[-1] == ' ') e--;
                if (e == s) continue;
                char *one = dupn(s, (size_t)(e - s));
                if (!one) return cf_fail(ps->err, CF_EINTERNAL, "out of memory");
                int r = !strcmp(key, "code") ? push_str(&cs->codes, &cs->n_codes, one)
                                             : push_str(&cs->prefixes, &cs->n_prefixes, one);
                free(one);
                if (r) return cf_fail(ps->err, CF_EINTERNAL, "out of memory");
            }
            return CF_OK;
        }
        if (!strcmp(key, "description")) return set_text(ps, &cs->description, val, key);
        break;
    }
    case S_TRIGGER:
        if (!strcmp(key, "codes")) return set_name(ps, &ps->trigger_name, &ps->trigger_line, val, key);
        break;
    case S_EPISODE:
        if (!strcmp(key, "end")) return set_name(ps, &ps->end_name, &ps->end_line, val, key);
        if (!strcmp(key, "pair")) {
            static const char *const pairs[] = {"record", "next"}; /* TASK_PAIR_* */
            if ((t->episode_pair = choice(val, pairs, 2)) < 0)
                return fail(ps, "%s:%d: pair: expected 'record' or 'next'%s", "");
            return CF_OK;
        }
        break;
    case S_PREDICTION:
        if (!strcmp(key, "time")) {
            lex l = {val, val + strlen(val)};
            const char *why;
            if (parse_time(&l, &t->prediction, &why) || !at_end(&l))
                return fail(ps, "%s:%d: time: expected %s", "trigger or episode_end with an optional offset, such as trigger + 24h");
            if (t->prediction.anchor != TASK_T_TRIGGER && t->prediction.anchor != TASK_T_EPISODE_END)
                return fail(ps, "%s:%d: time: the prediction time is anchored at %s", "trigger or episode_end");
            return CF_OK;
        }
        if (!strcmp(key, "gap") || !strcmp(key, "spacing")) {
            lex l = {val, val + strlen(val)};
            int64_t d;
            if (parse_duration(&l, &d) || !at_end(&l))
                return fail(ps, "%s:%d: %s: expected a duration such as 24h or 365d", key);
            if (!strcmp(key, "gap")) t->gap = d;
            else t->spacing = d;
            return CF_OK;
        }
        if (!strcmp(key, "select")) {
            static const char *const sel[] = {"all", "first", "last", "random", "spaced"};
            int i = choice(val, sel, 5);
            if (i < 0) return fail(ps, "%s:%d: select: expected %s", "all, first, last, random or spaced");
            t->select = i;
            return CF_OK;
        }
        break;
    case S_EXCLUDE:
        if (!strcmp(key, "when")) {
            task_cond *ex = cf_realloc_array(t->exclude, t->n_exclude + 1, sizeof *ex);
            char **names = cf_realloc_array(ps->cond_set_names, t->n_exclude + 1, sizeof *names);
            if (ex) t->exclude = ex;
            if (names) ps->cond_set_names = names;
            if (!ex || !names) return cf_fail(ps->err, CF_EINTERNAL, "out of memory");
            names[t->n_exclude] = NULL;
            rc = parse_cond(ps, val, &ex[t->n_exclude], &names[t->n_exclude]);
            t->n_exclude++; /* counted even on failure so task_free releases its text */
            return rc;
        }
        break;
    case S_LABEL:
        if (!strcmp(key, "when")) {
            if (ps->have_label) return fail(ps, "%s:%d: %s", "a task has one label rule ('when' is given twice)");
            ps->have_label = 1;
            ps->label_line = ps->line;
            return parse_cond(ps, val, &t->label, &ps->label_set_name);
        }
        if (!strcmp(key, "censor")) {
            static const char *const no_yes[] = {"no", "yes"};
            if ((t->censor = choice(val, no_yes, 2)) < 0) return fail(ps, "%s:%d: censor: expected %s", "yes or no");
            return CF_OK;
        }
        break;
    case S_INPUT:
        if (!strcmp(key, "never")) {
            ps->never_line = ps->line;
            const char *p = val;
            while (*p) {
                while (*p == ' ' || *p == ',') p++;
                const char *s = p;
                while (*p && *p != ',' && *p != ' ') p++;
                if (p == s) continue;
                char *one = dupn(s, (size_t)(p - s));
                int r = one ? push_str(&ps->never_names, &ps->n_never, one) : -1;
                free(one);
                if (r) return cf_fail(ps->err, CF_EINTERNAL, "out of memory");
            }
            return CF_OK;
        }
        break;
    case S_FOLLOW_UP:
        if (!strcmp(key, "death")) return set_name(ps, &ps->death_name, &ps->death_line, val, key);
        if (!strcmp(key, "end")) {
            if (!strcmp(val, "data_end")) t->follow_end = TASK_FU_DATA_END;
            else if (!strcmp(val, "record_end")) t->follow_end = TASK_FU_RECORD_END;
            else if (time_parse_iso(val, strlen(val), &t->follow_date, NULL) == 0) t->follow_end = TASK_FU_DATE;
            else return fail(ps, "%s:%d: end: expected %s", "data_end, record_end or a date such as 2020-01-01");
            return CF_OK;
        }
        if (!strcmp(key, "competing")) {
            static const char *const ways[] = {"negative", "exclude"}; /* TASK_COMPETING_* */
            if ((t->competing = choice(val, ways, 2)) < 0)
                return fail(ps, "%s:%d: competing: expected %s", "negative or exclude");
            return CF_OK;
        }
        break;
    case S_RECORD:
        if (!strcmp(key, "complete_from")) return set_name(ps, &ps->complete_name, &ps->complete_line, val, key);
        if (!strcmp(key, "lookback")) {
            lex l = {val, val + strlen(val)};
            if (parse_duration(&l, &t->lookback) || !at_end(&l) || t->lookback <= 0)
                return fail(ps, "%s:%d: lookback: expected %s", "a duration such as 365d");
            return CF_OK;
        }
        break;
    case S_REPORT:
        if (!strcmp(key, "thresholds")) {
            const char *p = val;
            t->n_thresholds = 0;
            while (*p) {
                while (*p == ' ' || *p == ',') p++;
                if (!*p) break;
                char *e;
                double v = strtod(p, &e);
                if (e == p || !(v > 0 && v < 1) || (t->n_thresholds && v <= t->thresholds[t->n_thresholds - 1]))
                    return fail(ps, "%s:%d: thresholds: expected ascending risks between 0 and 1, such as %s",
                                "0.05, 0.1, 0.2");
                if (t->n_thresholds == TASK_MAX_THRESHOLDS) return fail(ps, "%s:%d: at most 8 thresholds%s", "");
                t->thresholds[t->n_thresholds++] = v;
                p = e;
            }
            if (!t->n_thresholds) return fail(ps, "%s:%d: thresholds: expected at least one risk%s", "");
            return CF_OK;
        }
        break;
    case S_SUBGROUPS: {
        if (!valid_name(key)) return fail(ps, "%s:%d: subgroup names are letters, digits and '_'%s", "");
        if (t->n_subgroups == TASK_MAX_SUBGROUPS) return fail(ps, "%s:%d: at most 8 subgroups%s", "");
        for (size_t i = 0; i < t->n_subgroups; i++)
            if (!strcmp(t->subgroups[i].name, key)) return fail(ps, "%s:%d: subgroup '%s' is given twice", key);
        task_subgroup *sg = &t->subgroups[t->n_subgroups];
        memset(sg, 0, sizeof *sg);
        if (!strncmp(val, "prefix ", 7)) {
            const char *pf = val + 7;
            while (*pf == ' ') pf++;
            if (!*pf) return fail(ps, "%s:%d: expected a code prefix after 'prefix'%s", "");
            sg->kind = TASK_SG_PREFIX;
            if (!(sg->prefix = dup0(pf))) return cf_fail(ps->err, CF_EINTERNAL, "out of memory");
        } else if (!strncmp(val, "age ", 4)) {
            sg->kind = TASK_SG_AGE;
            const char *p = val + 4;
            while (*p) {
                while (*p == ' ' || *p == ',') p++;
                if (!*p) break;
                char *e;
                double v = strtod(p, &e);
                if (e == p || !(v > 0 && v < 200) || (sg->n_edges && v <= sg->edges[sg->n_edges - 1]))
                    return fail(ps, "%s:%d: age bands: expected ascending ages in years, such as %s", "18, 45, 65, 80");
                if (sg->n_edges == TASK_MAX_BANDS) return fail(ps, "%s:%d: at most 16 age band edges%s", "");
                sg->edges[sg->n_edges++] = v;
                p = e;
            }
            if (!sg->n_edges) return fail(ps, "%s:%d: age bands: expected at least one age%s", "");
        } else {
            return fail(ps, "%s:%d: a subgroup is 'prefix CODE_PREFIX' or 'age EDGES' (%s)", "such as age 18, 45, 65");
        }
        if (!(sg->name = dup0(key))) {
            free(sg->prefix);
            return cf_fail(ps->err, CF_EINTERNAL, "out of memory");
        }
        t->n_subgroups++;
        return CF_OK;
    }
    default:
        return fail(ps, "%s:%d: %s", "a key outside any section");
    }
    return cf_fail(ps->err, CF_EINPUT, "%s:%d: unknown key '%s' in this section", ps->path, ps->line, key);
}

static int uses_anchor(const task_cond *c, int a) {
    if (c->kind == TASK_C_ANY || c->kind == TASK_C_NONE) return c->from.anchor == a || c->to.anchor == a;
    if (c->kind == TASK_C_TIME_CMP) return c->lhs.anchor == a || c->rhs.anchor == a;
    return 0;
}

static int resolve(pstate *ps) {
    task_def *t = ps->t;
    if (!t->name) return cf_fail(ps->err, CF_EINPUT, "%s: [task] needs a name", ps->path);
    if (!ps->trigger_name) return cf_fail(ps->err, CF_EINPUT, "%s: [trigger] needs 'codes = SET'", ps->path);
    if (!ps->have_label) return cf_fail(ps->err, CF_EINPUT, "%s: [label] needs a 'when' rule", ps->path);
    if ((t->trigger_set = find_set(t, ps->trigger_name)) < 0)
        return cf_fail(ps->err, CF_EINPUT, "%s:%d: trigger: no [codes %s] section", ps->path, ps->trigger_line,
                       ps->trigger_name);
    t->episode_end_set = -1;
    if (ps->end_name && (t->episode_end_set = find_set(t, ps->end_name)) < 0)
        return cf_fail(ps->err, CF_EINPUT, "%s:%d: episode end: no [codes %s] section", ps->path, ps->end_line,
                       ps->end_name);
    for (size_t i = 0; i <= t->n_exclude; i++) {
        task_cond *c = i < t->n_exclude ? &t->exclude[i] : &t->label;
        const char *nm = i < t->n_exclude ? ps->cond_set_names[i] : ps->label_set_name;
        if (nm && (c->set = find_set(t, nm)) < 0)
            return cf_fail(ps->err, CF_EINPUT, "%s:%d: no [codes %s] section", ps->path, c->line, nm);
        if (t->episode_end_set < 0 && uses_anchor(c, TASK_T_EPISODE_END))
            return cf_fail(ps->err, CF_EINPUT, "%s:%d: episode_end needs an [episode] section", ps->path, c->line);
    }
    if (t->prediction.anchor == TASK_T_EPISODE_END && t->episode_end_set < 0)
        return cf_fail(ps->err, CF_EINPUT, "%s: the prediction time uses episode_end, which needs an [episode] section",
                       ps->path);
    t->death_set = t->complete_set = -1;
    if (ps->have_follow_up) {
        if (!ps->death_name)
            return cf_fail(ps->err, CF_EINPUT, "%s: [follow_up] needs 'death = SET' (the events that end follow-up)", ps->path);
        if ((t->death_set = find_set(t, ps->death_name)) < 0)
            return cf_fail(ps->err, CF_EINPUT, "%s:%d: death: no [codes %s] section", ps->path, ps->death_line,
                           ps->death_name);
        if (!t->follow_end) t->follow_end = TASK_FU_DATA_END;
        if (t->label.kind != TASK_C_ANY)
            return cf_fail(ps->err, CF_EINPUT, "%s:%d: [follow_up] needs a label rule 'any SET in WINDOW' (the outcome "
                           "whose follow-up it ends)", ps->path, ps->label_line);
        if (t->censor)
            return cf_fail(ps->err, CF_EINPUT, "%s: 'censor = yes' and [follow_up] both say when follow-up ends; keep "
                           "[follow_up]", ps->path);
    }
    if (ps->complete_name && (t->complete_set = find_set(t, ps->complete_name)) < 0)
        return cf_fail(ps->err, CF_EINPUT, "%s:%d: complete_from: no [codes %s] section", ps->path, ps->complete_line,
                       ps->complete_name);
    if (ps->complete_name && !t->lookback)
        return cf_fail(ps->err, CF_EINPUT, "%s:%d: complete_from needs 'lookback = DURATION' in [record]", ps->path,
                       ps->complete_line);
    if (t->select == TASK_SEL_SPACED && t->spacing <= 0)
        return cf_fail(ps->err, CF_EINPUT, "%s: select = spaced needs 'spacing = DURATION' in [prediction]", ps->path);
    if (ps->n_never) {
        if (!(t->never_input = cf_calloc(ps->n_never, sizeof *t->never_input)))
            return cf_fail(ps->err, CF_EINTERNAL, "out of memory");
        for (size_t i = 0; i < ps->n_never; i++) {
            int k = find_set(t, ps->never_names[i]);
            if (k < 0)
                return cf_fail(ps->err, CF_EINPUT, "%s:%d: never: no [codes %s] section", ps->path, ps->never_line,
                               ps->never_names[i]);
            t->never_input[t->n_never_input++] = k;
        }
    }
    for (size_t i = 0; i < t->n_sets; i++)
        if (!t->sets[i].n_codes && !t->sets[i].n_prefixes)
            return cf_fail(ps->err, CF_EINPUT, "%s:%d: [codes %s] lists no code or prefix", ps->path, t->sets[i].line,
                           t->sets[i].name);
    if (!t->birth_code && !(t->birth_code = dup0("MEDS_BIRTH"))) return cf_fail(ps->err, CF_EINTERNAL, "out of memory");
    if (!t->title && !(t->title = dup0(t->name))) return cf_fail(ps->err, CF_EINTERNAL, "out of memory");
    return CF_OK;
}

/* A section header: which section, and for [codes NAME] a new code set. */
static int task_section(pstate *ps, const char *name, const char *arg, int *sec, int seen[]) {
    static const char *const secs[S_COUNT_] = {"", "task", "codes", "trigger", "episode", "prediction",
                                               "exclude", "label", "input", "subgroups", "follow_up",
                                               "record", "report"};
    task_def *t = ps->t;
    *sec = -1;
    for (int i = 1; i < S_COUNT_; i++)
        if (!strcmp(name, secs[i])) *sec = i;
    if (*sec < 0)
        return cf_fail(ps->err, CF_EINPUT,
                       "%s:%d: unknown section; expected task, codes NAME, trigger, episode, prediction, "
                       "exclude, label, follow_up, record, input, subgroups or report", ps->path, ps->line);
    if (*sec == S_FOLLOW_UP) ps->have_follow_up = 1;
    if (*sec != S_CODES) {
        if (*arg) return cf_fail(ps->err, CF_EINPUT, "%s:%d: [%s] takes no name", ps->path, ps->line, name);
        if (seen[*sec]++)
            return cf_fail(ps->err, CF_EINPUT, "%s:%d: section [%s] appears twice", ps->path, ps->line, name);
        return CF_OK;
    }
    if (!valid_name(arg))
        return cf_fail(ps->err, CF_EINPUT, "%s:%d: [codes NAME]: a name of letters, digits and '_'", ps->path, ps->line);
    if (find_set(t, arg) >= 0)
        return cf_fail(ps->err, CF_EINPUT, "%s:%d: code set '%s' is defined twice", ps->path, ps->line, arg);
    task_codeset *ns = cf_realloc_array(t->sets, t->n_sets + 1, sizeof *ns);
    if (!ns) return cf_fail(ps->err, CF_EINTERNAL, "out of memory");
    t->sets = ns;
    memset(&ns[t->n_sets], 0, sizeof *ns);
    ns[t->n_sets].line = ps->line;
    if (!(ns[t->n_sets].name = dup0(arg))) return cf_fail(ps->err, CF_EINTERNAL, "out of memory");
    t->n_sets++;
    return CF_OK;
}

int task_parse(task_def *t, const char *path, const char *text, size_t len, cf_err *err) {
    memset(t, 0, sizeof *t);
    t->episode_end_set = t->death_set = t->complete_set = -1;
    t->prediction.anchor = TASK_T_TRIGGER;
    pstate ps = {.t = t, .path = path, .err = err};
    int rc = CF_OK, sec = S_NONE;
    int seen[16] = {0};
    if (!(t->path = dup0(path))) return cf_fail(err, CF_EINTERNAL, "out of memory");
    kv_reader kv;
    kv_open(&kv, path, text, len, KV_QUOTES);
    for (int item; !rc && (item = kv_next(&kv, err)) != KV_END;) {
        ps.line = kv.line;
        if (item == KV_ERROR) rc = err->code;
        else if (item == KV_SECTION) rc = task_section(&ps, kv.kind, kv.name, &sec, seen);
        else if (!*kv.value) rc = kv_fail(&kv, err, "'%s' has no value", kv.key);
        else rc = handle_kv(&ps, sec, kv.key, kv.value);
    }
    kv_close(&kv);
    if (!rc) rc = resolve(&ps);
    for (size_t i = 0; i < t->n_exclude; i++) free(ps.cond_set_names ? ps.cond_set_names[i] : NULL);
    CF_FREE_ALL(ps.cond_set_names, ps.label_set_name, ps.trigger_name, ps.end_name);
    for (size_t i = 0; i < ps.n_never; i++) free(ps.never_names[i]);
    CF_FREE_ALL(ps.never_names, ps.death_name, ps.complete_name);
    if (rc) task_free(t);
    return rc;
}

int task_load(task_def *t, const char *path, cf_err *err) {
    memset(t, 0, sizeof *t);
    char *buf;
    size_t len;
    int rc = file_read_all(path, (size_t)16 << 20, &buf, &len, err);
    if (!rc) rc = task_parse(t, path, buf, len, err);
    free(buf);
    return rc;
}
