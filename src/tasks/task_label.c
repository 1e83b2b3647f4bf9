/* Labelling: task definition + event store -> one label row per eligible prediction time.
 *
 * Per subject, the events of every code set the task names are gathered into sorted time lists
 * (the store keeps a subject's events sorted by time), so each window question ("any death in
 * (prediction, episode_end]?") is two binary searches, however long the record. Each trigger
 * event yields a candidate; candidates go through the exclusion rules in file order (the first
 * rule that holds is the one counted), the observation gap, the label rule and censoring, then
 * duplicates and the selection rule. Everything that removed a candidate is counted so a report
 * can show the whole flow from trigger events to rows.
 *
 * Static facts (events without a time) are never inside a time window; they are always part of
 * the input history. A rule that needs an anchor the record lacks (no episode end, no birth
 * event) cannot be checked and excludes the candidate. */
#include "tasks/task.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/sbuf.h"
#include "util/mix64.h"
#include "util/timeutil.h"

#define T_NEG INT64_MIN
#define T_POS INT64_MAX

enum {
    E_NO_PREDICTION = 0, E_LOOKBACK, E_DEAD, E_GAP, E_LABEL_UNDEFINED, E_CENSORED, E_FOLLOW_UP, E_COMPETING,
    E_DUPLICATE, E_NOT_SELECTED, E_BUILTIN
};
static const char *const builtin_reasons[E_BUILTIN] = {
    "prediction time undefined: the episode has no end event",
    NULL, /* E_LOOKBACK: written with the task's lookback (lookback_reason) */
    "died at or before the prediction time",
    "outcome during the observation gap",
    "label rule cannot be evaluated (no episode end or birth event)",
    "censored: the record ends before the label window does and the outcome was not seen",
    "censored: follow-up (to death or the data's end) ends before the label window does, outcome not seen",
    "competing event: died inside the label window before the outcome (left out by competing = exclude)",
    "same prediction time as an earlier row of the subject",
    "not selected by the selection rule"};

/* "less than 365 days of complete record before the prediction time (complete from the first
 * 'labs' event)" */
static void lookback_reason(const task_def *t, char *buf, size_t cap) {
    char d[64];
    task_time tt = {.anchor = TASK_T_PREDICTION, .offset = t->lookback};
    task_time_str(&tt, d, sizeof d); /* "prediction + 365d" */
    const char *dur = strchr(d, '+');
    dur = dur ? dur + 2 : d;
    if (t->complete_set >= 0)
        snprintf(buf, cap, "less than %s of complete record before the prediction time (the record counts as complete "
                 "from its first '%s' event)", dur, t->sets[t->complete_set].name);
    else snprintf(buf, cap, "less than %s of record before the prediction time", dur);
}

typedef struct {
    int64_t *t;
    size_t n, cap;
} tlist;

typedef struct {
    const task_def *t;
    const store *s;
    uint8_t **member;      /* [set][code] */
    int64_t birth_code;
    uint16_t *sg_value[TASK_MAX_SUBGROUPS]; /* prefix subgroups: [code] -> value id (0 none) */
    tlist *lists;          /* per set, per subject */
} lctx;

typedef struct {
    int64_t trigger, prediction;
    uint8_t label, event;
} cand;

/* First code id whose string is >= prefix (the dictionary is sorted by byte order). */
static uint64_t code_lower_bound(const store *s, const char *prefix) {
    uint64_t lo = 0, hi = s->n_codes;
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        if (strcmp(store_code_str(s, (uint32_t)mid), prefix) < 0) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

static int mark_set(const store *s, const task_codeset *cs, uint8_t *m) {
    int any = 0;
    for (size_t i = 0; i < cs->n_codes; i++) {
        int64_t c = store_find_code(s, cs->codes[i]);
        if (c >= 0) m[c] = 1, any = 1;
    }
    for (size_t i = 0; i < cs->n_prefixes; i++) {
        size_t pl = strlen(cs->prefixes[i]);
        for (uint64_t c = code_lower_bound(s, cs->prefixes[i]); c < s->n_codes; c++) {
            if (strncmp(store_code_str(s, (uint32_t)c), cs->prefixes[i], pl) != 0) break;
            m[c] = 1;
            any = 1;
        }
    }
    return any;
}

static int intern_value(task_labels *l, size_t g, const char *v, uint16_t *id, cf_err *err) {
    for (size_t i = 1; i < l->n_values[g]; i++)
        if (!strcmp(l->values[g][i], v)) {
            *id = (uint16_t)i;
            return CF_OK;
        }
    if (l->n_values[g] >= 65535) return cf_fail(err, CF_EINPUT, "subgroup '%s' has more than 65534 distinct values",
                                                l->subgroup_names[g]);
    char **nv = cf_realloc_array(l->values[g], l->n_values[g] + 1, sizeof *nv);
    if (!nv) return cf_fail(err, CF_EINTERNAL, "out of memory");
    l->values[g] = nv;
    size_t n = strlen(v);
    if (!(nv[l->n_values[g]] = cf_malloc(n + 1))) return cf_fail(err, CF_EINTERNAL, "out of memory");
    memcpy(nv[l->n_values[g]], v, n + 1);
    *id = (uint16_t)l->n_values[g]++;
    return CF_OK;
}

static void band_label(const task_subgroup *sg, size_t b, char *buf, size_t cap) {
    if (b == 0) snprintf(buf, cap, "<%g", sg->edges[0]);
    else if (b == sg->n_edges) snprintf(buf, cap, "%g+", sg->edges[b - 1]);
    else if (sg->edges[b] == floor(sg->edges[b]) && sg->edges[b - 1] == floor(sg->edges[b - 1]))
        snprintf(buf, cap, "%g-%g", sg->edges[b - 1], sg->edges[b] - 1); /* whole years: [18, 45) is 18-44 */
    else snprintf(buf, cap, "%g to <%g", sg->edges[b - 1], sg->edges[b]);
}

static int setup(lctx *c, const task_def *t, const store *s, task_labels *l, cf_err *err) {
    c->t = t;
    c->s = s;
    if (!(c->member = cf_calloc(t->n_sets, sizeof *c->member))) return cf_fail(err, CF_EINTERNAL, "out of memory");
    if (!(c->lists = cf_calloc(t->n_sets, sizeof *c->lists))) return cf_fail(err, CF_EINTERNAL, "out of memory");
    for (size_t k = 0; k < t->n_sets; k++) {
        if (!(c->member[k] = cf_calloc(s->n_codes ? s->n_codes : 1, 1))) return cf_fail(err, CF_EINTERNAL, "out of memory");
        mark_set(s, &t->sets[k], c->member[k]);
    }
    c->birth_code = l->birth_code = store_find_code(s, t->birth_code);
    /* Follow-up to the data's end. In a date-shifted store each subject's own end lies within a
     * shift of the store's, so only the shifted-back bound is provable (with each record's own
     * last event as a lower bound, in label_subject). */
    l->has_follow_up = t->death_set >= 0;
    l->data_end = TIME_NULL;
    if (l->has_follow_up && (t->follow_end == TASK_FU_DATA_END || t->follow_end == TASK_FU_DATE)) {
        int64_t end = t->follow_end == TASK_FU_DATE ? t->follow_date : s->last_time;
        if (end != TIME_NULL && (s->flags & STORE_FLAG_DATES_SHIFTED)) {
            end -= (t->follow_end == TASK_FU_DATE ? 1 : 2) * (int64_t)TASK_MAX_DATE_SHIFT_DAYS * USEC_PER_DAY;
            l->shifted_margin = 1;
        }
        l->data_end = end;
    }
    if (!(l->input_ok = cf_malloc(s->n_codes ? s->n_codes : 1))) return cf_fail(err, CF_EINTERNAL, "out of memory");
    memset(l->input_ok, 1, s->n_codes ? s->n_codes : 1);
    for (size_t i = 0; i < t->n_never_input; i++)
        for (uint64_t code = 0; code < s->n_codes; code++)
            if (c->member[t->never_input[i]][code]) l->input_ok[code] = 0;
    l->n_subgroups = t->n_subgroups;
    for (size_t g = 0; g < t->n_subgroups; g++) {
        const task_subgroup *sg = &t->subgroups[g];
        size_t nl = strlen(sg->name);
        if (!(l->subgroup_names[g] = cf_malloc(nl + 1))) return cf_fail(err, CF_EINTERNAL, "out of memory");
        memcpy(l->subgroup_names[g], sg->name, nl + 1);
        uint16_t id;
        int rc = intern_value(l, g, "unknown", &id, err);
        if (rc) return rc;
        if (sg->kind == TASK_SG_AGE) {
            for (size_t b = 0; b <= sg->n_edges; b++) {
                char buf[64];
                band_label(sg, b, buf, sizeof buf);
                if ((rc = intern_value(l, g, buf, &id, err))) return rc;
            }
            continue;
        }
        if (!(c->sg_value[g] = cf_calloc(s->n_codes ? s->n_codes : 1, sizeof(uint16_t))))
            return cf_fail(err, CF_EINTERNAL, "out of memory");
        size_t pl = strlen(sg->prefix);
        for (uint64_t code = code_lower_bound(s, sg->prefix); code < s->n_codes; code++) {
            const char *cs = store_code_str(s, (uint32_t)code);
            if (strncmp(cs, sg->prefix, pl) != 0) break;
            /* a coded value reads better with its dictionary label: "2106-3 (White)" */
            const char *desc = store_code_desc(s, (uint32_t)code);
            char shown[256];
            if (*desc && strcmp(desc, cs + pl) != 0) snprintf(shown, sizeof shown, "%s (%s)", cs + pl, desc);
            else snprintf(shown, sizeof shown, "%s", cs + pl);
            if ((rc = intern_value(l, g, shown, &id, err))) return rc;
            c->sg_value[g][code] = id;
        }
    }
    return CF_OK;
}

static void teardown(lctx *c) {
    if (c->member)
        for (size_t k = 0; k < c->t->n_sets; k++) free(c->member[k]);
    free(c->member);
    if (c->lists)
        for (size_t k = 0; k < c->t->n_sets; k++) free(c->lists[k].t);
    free(c->lists);
    for (size_t g = 0; g < TASK_MAX_SUBGROUPS; g++) free(c->sg_value[g]);
}

/* ---------------------------------------------------------------- evaluation */

typedef struct {
    int64_t v[TASK_T_COUNT];
    uint8_t ok[TASK_T_COUNT];
} anchors;

/* Absolute time of an expression; 0 when an anchor is missing. */
static int resolve_time(const anchors *a, const task_time *tt, int64_t *out) {
    if (tt->anchor == TASK_T_NEG_INF) return *out = T_NEG, 1;
    if (tt->anchor == TASK_T_POS_INF) return *out = T_POS, 1;
    if (!a->ok[tt->anchor]) return 0;
    *out = a->v[tt->anchor] + tt->offset;
    return 1;
}

/* Index of the first time >= x (or > x when strict). */
static size_t lower(const tlist *l, int64_t x, int strict) {
    size_t lo = 0, hi = l->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strict ? l->t[mid] <= x : l->t[mid] < x) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

static int in_window(const tlist *l, int64_t lo, int lo_closed, int64_t hi, int hi_closed) {
    size_t i = lower(l, lo, !lo_closed);
    if (i >= l->n) return 0;
    return hi_closed ? l->t[i] <= hi : l->t[i] < hi;
}

static int cmp_op(double a, int op, double b) {
    switch (op) {
    case TASK_OP_LT: return a < b;
    case TASK_OP_LE: return a <= b;
    case TASK_OP_GT: return a > b;
    default: return a >= b;
    }
}

/* 1 true, 0 false, -1 cannot be evaluated. */
static int eval_cond(const lctx *c, const task_cond *k, const anchors *a) {
    int64_t x, y;
    switch (k->kind) {
    case TASK_C_ANY:
    case TASK_C_NONE: {
        if (!resolve_time(a, &k->from, &x) || !resolve_time(a, &k->to, &y)) return -1;
        int hit = in_window(&c->lists[k->set], x, k->from_closed, y, k->to_closed);
        return k->kind == TASK_C_ANY ? hit : !hit;
    }
    case TASK_C_TIME_CMP:
        if (!resolve_time(a, &k->lhs, &x) || !resolve_time(a, &k->rhs, &y)) return -1;
        switch (k->op) {
        case TASK_OP_LT: return x < y;
        case TASK_OP_LE: return x <= y;
        case TASK_OP_GT: return x > y;
        default: return x >= y;
        }
    default: {
        if (!a->ok[TASK_T_BIRTH]) return -1;
        double age = (double)(a->v[TASK_T_PREDICTION] - a->v[TASK_T_BIRTH]) / (365.2425 * (double)USEC_PER_DAY);
        return cmp_op(age, k->op, k->age);
    }
    }
}

static int push_time(tlist *l, int64_t t) {
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 64;
        int64_t *nt = cf_realloc_array(l->t, nc, sizeof *nt);
        if (!nt) return -1;
        l->t = nt;
        l->cap = nc;
    }
    l->t[l->n++] = t;
    return 0;
}

static int cmp_cand(const void *pa, const void *pb) {
    const cand *a = pa, *b = pb;
    if (a->prediction != b->prediction) return a->prediction < b->prediction ? -1 : 1;
    return (a->trigger > b->trigger) - (a->trigger < b->trigger);
}

/* First event index >= lo in [lo, hi) with time > t. */
static uint64_t upper_time(const store *s, uint64_t lo, uint64_t hi, int64_t t) {
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        if (s->time[mid] <= t) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

static int add_row(lctx *c, task_labels *l, size_t *cap, uint64_t si, const cand *cd, int64_t birth,
                   int has_birth, const split_config *sp, cf_err *err) {
    const store *s = c->s;
    const task_def *t = c->t;
    if (l->n == *cap) {
        size_t nc = *cap ? *cap * 2 : 1024;
        label_row *nr = cf_realloc_array(l->rows, nc, sizeof *nr);
        if (!nr) return cf_fail(err, CF_EINTERNAL, "out of memory");
        l->rows = nr;
        *cap = nc;
    }
    label_row *r = &l->rows[l->n++];
    memset(r, 0, sizeof *r);
    uint64_t a = s->subject_start[si], b = s->subject_start[si + 1];
    r->subject_id = s->subject_id[si];
    r->subject_index = si;
    r->prediction_time = cd->prediction;
    r->trigger_time = cd->trigger;
    r->label = cd->label;
    r->event = cd->event;
    r->split = (uint8_t)split_assign(sp, r->subject_id);
    r->history_end = upper_time(s, a, b, cd->prediction);
    for (size_t g = 0; g < t->n_subgroups; g++) {
        const task_subgroup *sg = &t->subgroups[g];
        if (sg->kind == TASK_SG_AGE) {
            if (!has_birth) continue;
            double age = (double)(cd->prediction - birth) / (365.2425 * (double)USEC_PER_DAY);
            size_t band = 0;
            while (band < sg->n_edges && age >= sg->edges[band]) band++;
            r->group[g] = (uint16_t)(1 + band);
            continue;
        }
        /* the latest matching event at or before the prediction time */
        for (uint64_t e = r->history_end; e > a; e--) {
            uint16_t v = c->sg_value[g][s->code[e - 1]];
            if (v) {
                r->group[g] = v;
                break;
            }
        }
    }
    return CF_OK;
}

static int label_subject(lctx *c, uint64_t si, task_labels *l, size_t *row_cap, cand **cands, size_t *cand_cap,
                         const task_label_options *opt, cf_err *err) {
    const store *s = c->s;
    const task_def *t = c->t;
    uint64_t a = s->subject_start[si], b = s->subject_start[si + 1];
    anchors an;
    memset(&an, 0, sizeof an);
    uint64_t first_timed = a;
    while (first_timed < b && s->time[first_timed] == TIME_NULL) first_timed++;
    if (first_timed == b) return CF_OK; /* no timed events: nothing can trigger */
    an.v[TASK_T_RECORD_END] = s->time[b - 1], an.ok[TASK_T_RECORD_END] = 1;
    for (size_t k = 0; k < t->n_sets; k++) c->lists[k].n = 0;
    for (uint64_t e = first_timed; e < b; e++) {
        uint32_t code = s->code[e];
        /* the record starts with the first observation; a birth date is not one */
        if (!an.ok[TASK_T_RECORD_START] && (int64_t)code != c->birth_code)
            an.v[TASK_T_RECORD_START] = s->time[e], an.ok[TASK_T_RECORD_START] = 1;
        for (size_t k = 0; k < t->n_sets; k++)
            if (c->member[k][code] && push_time(&c->lists[k], s->time[e]))
                return cf_fail(err, CF_EINTERNAL, "out of memory");
        if (!an.ok[TASK_T_BIRTH] && (int64_t)code == c->birth_code)
            an.v[TASK_T_BIRTH] = s->time[e], an.ok[TASK_T_BIRTH] = 1;
    }
    size_t nc = 0;
    const tlist *ends = t->episode_end_set >= 0 ? &c->lists[t->episode_end_set] : NULL;
    for (uint64_t e = first_timed; e < b; e++) {
        if (!c->member[t->trigger_set][s->code[e]]) continue;
        l->n_triggers++;
        an.v[TASK_T_TRIGGER] = s->time[e], an.ok[TASK_T_TRIGGER] = 1;
        an.ok[TASK_T_EPISODE_END] = 0;
        if (ends) {
            if (t->episode_pair == TASK_PAIR_NEXT) {
                size_t j = lower(ends, s->time[e], 0);
                if (j < ends->n) an.v[TASK_T_EPISODE_END] = ends->t[j], an.ok[TASK_T_EPISODE_END] = 1;
            } else {
                const uint8_t *m = c->member[t->episode_end_set];
                for (uint64_t f = e; f < b; f++)
                    if (m[s->code[f]] && s->prov[f] == s->prov[e]) {
                        an.v[TASK_T_EPISODE_END] = s->time[f], an.ok[TASK_T_EPISODE_END] = 1;
                        break;
                    }
            }
        }
        size_t nx = t->n_exclude;
        int64_t pt;
        if (!resolve_time(&an, &t->prediction, &pt)) {
            l->excluded[nx + E_NO_PREDICTION].count++;
            continue;
        }
        an.v[TASK_T_PREDICTION] = pt, an.ok[TASK_T_PREDICTION] = 1;
        an.v[TASK_T_GAP_END] = pt + t->gap, an.ok[TASK_T_GAP_END] = 1;
        int excluded = 0;
        for (size_t r = 0; r < nx && !excluded; r++)
            if (eval_cond(c, &t->exclude[r], &an) != 0) {
                l->excluded[r].count++;
                excluded = 1;
            }
        if (excluded) continue;
        if (t->lookback) {
            /* the record is complete from its first complete_set event (or its start) */
            int64_t cs = TIME_NULL;
            if (t->complete_set < 0) cs = an.ok[TASK_T_RECORD_START] ? an.v[TASK_T_RECORD_START] : TIME_NULL;
            else if (c->lists[t->complete_set].n) cs = c->lists[t->complete_set].t[0];
            if (cs == TIME_NULL || cs > pt - t->lookback) {
                l->excluded[nx + E_LOOKBACK].count++;
                continue;
            }
        }
        int64_t death = TIME_NULL; /* the first death after the prediction time */
        if (t->death_set >= 0) {
            const tlist *dl = &c->lists[t->death_set];
            if (dl->n && dl->t[0] <= pt) {
                l->excluded[nx + E_DEAD].count++;
                continue;
            }
            if (dl->n) death = dl->t[0];
        }
        const task_cond *lb = &t->label;
        if (t->gap > 0 && (lb->kind == TASK_C_ANY || lb->kind == TASK_C_NONE) &&
            in_window(&c->lists[lb->set], pt, 0, pt + t->gap, 1)) {
            l->excluded[nx + E_GAP].count++;
            continue;
        }
        int v = eval_cond(c, lb, &an);
        if (v < 0) {
            l->excluded[nx + E_LABEL_UNDEFINED].count++;
            continue;
        }
        uint8_t event = v ? TASK_EVENT_OUTCOME : TASK_EVENT_NONE;
        if (t->death_set >= 0) {
            /* Follow-up ends at death or at the data's end, whichever is first: an outcome seen
             * by then is the outcome; a death inside the window before it is a competing event;
             * a window that ends within follow-up without either is a negative; otherwise the
             * row is censored. Never "the record goes on", which would keep only negatives who
             * came back. */
            int64_t x = T_NEG, y = T_POS;
            if (!resolve_time(&an, &lb->from, &x) || !resolve_time(&an, &lb->to, &y)) {
                l->excluded[nx + E_LABEL_UNDEFINED].count++; /* cannot happen: the rule was evaluated */
                continue;
            }
            int64_t fu = t->follow_end == TASK_FU_RECORD_END ? an.v[TASK_T_RECORD_END] : l->data_end;
            if (fu == TIME_NULL) fu = an.v[TASK_T_RECORD_END];
            if (l->shifted_margin && fu < an.v[TASK_T_RECORD_END]) fu = an.v[TASK_T_RECORD_END];
            const tlist *ol = &c->lists[lb->set];
            size_t oi = lower(ol, x, !lb->from_closed);
            int64_t outcome = oi < ol->n && (lb->to_closed ? ol->t[oi] <= y : ol->t[oi] < y) ? ol->t[oi] : TIME_NULL;
            int death_in = death != TIME_NULL && death <= fu && (lb->to_closed ? death <= y : death < y);
            if (death != TIME_NULL && death < fu) fu = death;
            if (outcome != TIME_NULL && outcome <= fu) {
                v = 1, event = TASK_EVENT_OUTCOME;
            } else if (death_in) {
                if (t->competing == TASK_COMPETING_EXCLUDE) {
                    l->excluded[nx + E_COMPETING].count++;
                    continue;
                }
                v = 0, event = TASK_EVENT_COMPETING;
            } else if (y != T_POS && y <= fu) {
                v = 0, event = TASK_EVENT_NONE;
            } else {
                l->excluded[nx + E_FOLLOW_UP].count++;
                continue;
            }
        }
        if (t->censor && (lb->kind == TASK_C_ANY || lb->kind == TASK_C_NONE)) {
            int happened = lb->kind == TASK_C_ANY ? v : !v;
            int64_t wend = T_POS;
            if (!resolve_time(&an, &lb->to, &wend)) wend = T_POS;
            if (!happened && wend != T_POS && wend > an.v[TASK_T_RECORD_END]) {
                l->excluded[nx + E_CENSORED].count++;
                continue;
            }
        }
        if (nc == *cand_cap) {
            size_t ncap = *cand_cap ? *cand_cap * 2 : 64;
            cand *ncd = cf_realloc_array(*cands, ncap, sizeof *ncd);
            if (!ncd) return cf_fail(err, CF_EINTERNAL, "out of memory");
            *cands = ncd;
            *cand_cap = ncap;
        }
        uint8_t label = (uint8_t)v;
        if (opt->target == TASK_TARGET_COMPETING) label = event == TASK_EVENT_COMPETING;
        (*cands)[nc++] = (cand){.trigger = s->time[e], .prediction = pt, .label = label, .event = event};
    }
    if (!nc) return CF_OK;
    cand *cd = *cands;
    qsort(cd, nc, sizeof *cd, cmp_cand);
    size_t m = 0;
    for (size_t i = 0; i < nc; i++) {
        if (m && cd[m - 1].prediction == cd[i].prediction) {
            l->excluded[t->n_exclude + E_DUPLICATE].count++;
            continue;
        }
        cd[m++] = cd[i];
    }
    size_t keep_from = 0, keep_to = m; /* for first / last / random: a single index */
    switch (t->select) {
    case TASK_SEL_FIRST: keep_to = 1; break;
    case TASK_SEL_LAST: keep_from = m - 1; break;
    case TASK_SEL_RANDOM:
        keep_from = (size_t)(cf_mix64(opt->seed ^ cf_mix64((uint64_t)s->subject_id[si])) % m);
        keep_to = keep_from + 1;
        break;
    default: break;
    }
    l->excluded[t->n_exclude + E_NOT_SELECTED].count += m - (keep_to - keep_from);
    int64_t last = 0;
    int have_last = 0;
    for (size_t i = keep_from; i < keep_to; i++) {
        if (t->select == TASK_SEL_SPACED) {
            if (have_last && cd[i].prediction < last + t->spacing) {
                l->excluded[t->n_exclude + E_NOT_SELECTED].count++;
                continue;
            }
            last = cd[i].prediction, have_last = 1;
        }
        int rc = add_row(c, l, row_cap, si, &cd[i], an.v[TASK_T_BIRTH], an.ok[TASK_T_BIRTH], &opt->split, err);
        if (rc) return rc;
    }
    return CF_OK;
}

int task_label(const task_def *t, const store *s, const task_label_options *opt, task_labels *out, cf_err *err) {
    memset(out, 0, sizeof *out);
    lctx c;
    memset(&c, 0, sizeof c);
    cand *cands = NULL;
    size_t cand_cap = 0, row_cap = 0;
    int rc = CF_OK;
    out->n_excluded = t->n_exclude + E_BUILTIN;
    if (!(out->excluded = cf_calloc(out->n_excluded, sizeof *out->excluded))) {
        rc = cf_fail(err, CF_EINTERNAL, "out of memory");
        goto done;
    }
    out->target = opt->target;
    for (size_t i = 0; i < out->n_excluded; i++) {
        char lbuf[256];
        const char *r = i < t->n_exclude ? t->exclude[i].text : builtin_reasons[i - t->n_exclude];
        if (i == t->n_exclude + E_LOOKBACK) lookback_reason(t, lbuf, sizeof lbuf), r = lbuf;
        size_t n = strlen(r);
        if (!(out->excluded[i].reason = cf_malloc(n + 1))) {
            rc = cf_fail(err, CF_EINTERNAL, "out of memory");
            goto done;
        }
        memcpy(out->excluded[i].reason, r, n + 1);
    }
    if ((rc = setup(&c, t, s, out, err))) goto done;
    for (uint64_t si = 0; si < s->n_subjects; si++)
        if ((rc = label_subject(&c, si, out, &row_cap, &cands, &cand_cap, opt, err))) goto done;
done:
    free(cands);
    teardown(&c);
    if (rc) task_labels_free(out);
    return rc;
}

void task_labels_free(task_labels *l) {
    if (!l) return;
    free(l->rows);
    for (size_t i = 0; i < l->n_excluded; i++) free(l->excluded ? l->excluded[i].reason : NULL);
    free(l->excluded);
    for (size_t g = 0; g < TASK_MAX_SUBGROUPS; g++) {
        free(l->subgroup_names[g]);
        for (size_t i = 0; i < l->n_values[g]; i++) free(l->values[g][i]);
        free(l->values[g]);
    }
    free(l->input_ok);
    memset(l, 0, sizeof *l);
}

task_counts task_count_rows(const label_row *rows, size_t n, int split) {
    task_counts c = {0};
    int64_t last = 0;
    int have = 0;
    for (size_t i = 0; i < n; i++) {
        if (split >= 0 && rows[i].split != split) continue;
        c.rows++;
        if (rows[i].label) c.pos++;
        else c.neg++;
        if (rows[i].event == TASK_EVENT_COMPETING) c.competing++;
        /* rows come grouped by subject */
        if (!have || rows[i].subject_id != last) c.subjects++;
        last = rows[i].subject_id, have = 1;
    }
    return c;
}

/* ---------------------------------------------------------------- CSV output */

static void csv_field(sbuf *s, const char *p) {
    if (!strpbrk(p, ",\"\r\n")) {
        sbuf_str(s, p);
        return;
    }
    sbuf_put(s, "\"", 1);
    for (; *p; p++) {
        if (*p == '"') sbuf_put(s, "\"", 1);
        sbuf_put(s, p, 1);
    }
    sbuf_put(s, "\"", 1);
}

int task_write_labels_csv(const task_labels *l, const char *path, int split, cf_err *err) {
    sbuf sb = {0};
    sbuf_str(&sb, "subject_id,prediction_time,boolean_value,split");
    if (l->has_follow_up) sbuf_str(&sb, ",competing_event");
    for (size_t g = 0; g < l->n_subgroups; g++) {
        sbuf_put(&sb, ",", 1);
        csv_field(&sb, l->subgroup_names[g]);
    }
    sbuf_put(&sb, "\n", 1);
    for (size_t i = 0; i < l->n; i++) {
        const label_row *r = &l->rows[i];
        if (split >= 0 && r->split != split) continue;
        char buf[128], tb[48];
        snprintf(buf, sizeof buf, "%lld,%s,%s,%s", (long long)r->subject_id,
                 time_format_iso(r->prediction_time, tb, sizeof tb), r->label ? "true" : "false",
                 split_name(r->split));
        sbuf_str(&sb, buf);
        if (l->has_follow_up) sbuf_str(&sb, r->event == TASK_EVENT_COMPETING ? ",true" : ",false");
        for (size_t g = 0; g < l->n_subgroups; g++) {
            sbuf_put(&sb, ",", 1);
            csv_field(&sb, l->values[g][r->group[g]]);
        }
        sbuf_put(&sb, "\n", 1);
    }
    return sbuf_write_file(&sb, path, err);
}

void task_print_summary(FILE *f, const task_def *t, const task_labels *l) {
    fprintf(f, "task %s: %s%s\n", t->name, t->title,
            l->target == TASK_TARGET_COMPETING ? " -- labelled with the competing event (death first)" : "");
    fprintf(f, "  trigger events      %llu\n", (unsigned long long)l->n_triggers);
    for (size_t i = 0; i < l->n_excluded; i++)
        if (l->excluded[i].count)
            fprintf(f, "  excluded %8llu    %s\n", (unsigned long long)l->excluded[i].count, l->excluded[i].reason);
    fprintf(f, "  %-10s %8s %8s %8s %8s%s\n", "split", "subjects", "rows", "positive", "negative",
            l->has_follow_up ? " competing" : "");
    for (int sp = -1; sp < SPLIT_COUNT; sp++) {
        task_counts c = task_count_rows(l->rows, l->n, sp);
        fprintf(f, "  %-10s %8zu %8zu %8zu %8zu", sp < 0 ? "all" : split_name(sp), c.subjects, c.rows, c.pos, c.neg);
        if (l->has_follow_up) fprintf(f, " %9zu", c.competing);
        fputc('\n', f);
    }
}
