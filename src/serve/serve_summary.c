/* The grounded patient summary; see serve_summary.h for what goes in each section and why.
 *
 * Events arrive time-sorted (serve_record sorts both sources), so each group's list is in time
 * order. Events are classified one by one, grouped by (section, code) with a strmap, and each group
 * becomes at most one line citing its events. Sorting and truncation happen last, so a line's
 * evidence never depends on the order of other lines. */
#include "serve/serve_summary.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "serve/serve_ref.h"
#include "util/strmap.h"

enum { K_OTHER = 0, K_PROBLEM, K_MED, K_LAB, K_ADMIT, K_DISCHARGE };

void serve_summary_defaults(serve_summary_opts *o) {
    o->medication_window_days = 180;
    o->lab_window_days = 365;
    o->max_items = 50;
    o->max_evidence = 10;
}

const char *serve_time_iso(int64_t t, char *buf, size_t cap) {
    if (t == TIME_NULL) {
        buf[0] = '\0';
        return buf;
    }
    char tmp[40];
    time_format_iso(t, tmp, sizeof tmp);
    snprintf(buf, cap, "%sZ", tmp);
    return buf;
}

static int starts(const char *s, const char *prefix) {
    return !strncmp(s, prefix, strlen(prefix));
}

static int source_has(const char *src, const char *word) { return src && strcasestr(src, word); }

static int classify(const serve_patient *p, size_t i) {
    const char *c = p->code[i], *s = p->source ? p->source[i] : "";
    static const char *const admit[] = {"ENCOUNTER_START//IMP", "ENCOUNTER_START//ACUTE",
                                        "ENCOUNTER_START//NONAC", "HOSPITAL_ADMISSION//",
                                        "VISIT//IP", "VISIT//ERIP"};
    static const char *const disch[] = {"ENCOUNTER_END//IMP", "ENCOUNTER_END//ACUTE",
                                        "ENCOUNTER_END//NONAC", "HOSPITAL_DISCHARGE//",
                                        "VISIT_END//IP", "VISIT_END//ERIP"};
    for (size_t k = 0; k < sizeof admit / sizeof admit[0]; k++) {
        if (starts(c, admit[k])) return K_ADMIT;
        if (starts(c, disch[k])) return K_DISCHARGE;
    }
    if (starts(c, "DIAGNOSIS//") || source_has(s, "condition") || source_has(s, "diagnoses") ||
        source_has(s, "diagnosis"))
        return K_PROBLEM;
    if (starts(c, "MEDICATION//") || starts(c, "MED_ADMIN//") ||
        (s && (!strcmp(s, "MedicationRequest") || !strcmp(s, "MedicationAdministration"))) ||
        source_has(s, "prescription") || source_has(s, "emar") || source_has(s, "pharmacy") ||
        source_has(s, "drug"))
        return K_MED;
    if (!isnan(p->value[i]) && (starts(c, "LAB//") || (s && !strcmp(s, "Observation")) ||
                                source_has(s, "lab") || source_has(s, "measurement")))
        return K_LAB;
    return K_OTHER;
}

cJSON *serve_evidence(const serve_patient *p, size_t i) {
    char tb[48];
    cJSON *e = cJSON_CreateObject();
    if (!e) return NULL;
    cJSON_AddNumberToObject(e, "event", (double)i);
    if (p->time[i] == TIME_NULL) cJSON_AddNullToObject(e, "time");
    else cJSON_AddStringToObject(e, "time", serve_time_iso(p->time[i], tb, sizeof tb));
    cJSON_AddStringToObject(e, "code", p->code[i]);
    cJSON_AddStringToObject(e, "source", p->source && p->source[i] ? p->source[i] : "");
    cJSON_AddNumberToObject(e, "row", p->row ? (double)p->row[i] : 0);
    if (!isnan(p->value[i])) cJSON_AddNumberToObject(e, "value", (double)p->value[i]);
    return e;
}

static const char *line_text(const serve_patient *p, size_t i) {
    return p->desc && p->desc[i] && p->desc[i][0] ? p->desc[i] : p->code[i];
}

/* The most recent max events of list (time-ordered ascending), newest first. */
static cJSON *evidence_list(const serve_patient *p, const size_t *list, size_t n, int max) {
    cJSON *a = cJSON_CreateArray();
    if (!a) return NULL;
    for (size_t k = n, added = 0; k > 0 && added < (size_t)max; k--, added++)
        cJSON_AddItemToArray(a, serve_evidence(p, list[k - 1]));
    return a;
}

typedef struct {
    int kind;
    const char *code; /* the group's code (of its last event) */
    size_t *ev;     /* event indices, ascending time */
    size_t n, cap;
    int64_t sort_time;
    cJSON *line;
} group;

static const char *sort_code(const group *g) { return g->code ? g->code : ""; }

static int cmp_line(const void *a, const void *b) {
    const group *x = *(group *const *)a, *y = *(group *const *)b;
    if (x->sort_time != y->sort_time) return x->sort_time > y->sort_time ? -1 : 1;
    /* ties by code, so the order does not depend on how the record was assembled */
    int c = strcmp(sort_code(x), sort_code(y));
    if (c) return c;
    return x->ev[0] < y->ev[0] ? -1 : x->ev[0] > y->ev[0];
}

static void add_time(cJSON *o, const char *key, int64_t t) {
    char tb[48];
    if (t == TIME_NULL) cJSON_AddNullToObject(o, key);
    else cJSON_AddStringToObject(o, key, serve_time_iso(t, tb, sizeof tb));
}

static cJSON *problem_line(const serve_patient *p, const group *g, const serve_summary_opts *o) {
    cJSON *l = cJSON_CreateObject();
    size_t first = g->ev[0], last = g->ev[g->n - 1];
    cJSON_AddStringToObject(l, "text", line_text(p, last));
    cJSON_AddStringToObject(l, "code", p->code[last]);
    add_time(l, "first_recorded", p->time[first]);
    add_time(l, "last_recorded", p->time[last]);
    cJSON_AddNumberToObject(l, "times_recorded", (double)g->n);
    cJSON_AddItemToObject(l, "evidence", evidence_list(p, g->ev, g->n, o->max_evidence));
    return l;
}

static cJSON *med_line(const serve_patient *p, const group *g, const serve_summary_opts *o,
                       int64_t now, int *current) {
    /* the last START (or any non-STOP event) and whether a STOP follows it */
    long last_start = -1, last_stop = -1;
    for (size_t k = 0; k < g->n; k++) {
        size_t i = g->ev[k];
        if (starts(p->code[i], "MEDICATION//STOP//")) last_stop = (long)i;
        else last_start = (long)i;
    }
    *current = 0;
    if (last_start < 0) return NULL;
    int64_t t = p->time[last_start];
    int64_t win = (int64_t)o->medication_window_days * USEC_PER_DAY;
    int stopped = last_stop >= 0 && p->time[last_stop] >= t;
    *current = t != TIME_NULL && now != TIME_NULL && t > now - win && !stopped;
    if (!*current) return NULL;
    cJSON *l = cJSON_CreateObject();
    cJSON_AddStringToObject(l, "text", line_text(p, (size_t)last_start));
    cJSON_AddStringToObject(l, "code", p->code[last_start]);
    add_time(l, "first_recorded", p->time[g->ev[0]]);
    add_time(l, "last_recorded", t);
    cJSON_AddNumberToObject(l, "times_recorded", (double)g->n);
    cJSON_AddItemToObject(l, "evidence", evidence_list(p, g->ev, g->n, o->max_evidence));
    return l;
}

static cJSON *lab_line(const serve_patient *p, const group *g, const serve_summary_opts *o,
                       int64_t now) {
    int64_t win = (int64_t)o->lab_window_days * USEC_PER_DAY;
    size_t *in = malloc(g->n * sizeof *in), m = 0;
    if (!in) return NULL;
    for (size_t k = 0; k < g->n; k++) {
        size_t i = g->ev[k];
        if (p->time[i] != TIME_NULL && now != TIME_NULL && p->time[i] > now - win) in[m++] = i;
    }
    if (!m) {
        free(in);
        return NULL;
    }
    size_t last = in[m - 1];
    cJSON *l = cJSON_CreateObject();
    cJSON_AddStringToObject(l, "text", line_text(p, last));
    cJSON_AddStringToObject(l, "code", p->code[last]);
    cJSON *latest = cJSON_AddObjectToObject(l, "latest");
    cJSON_AddNumberToObject(latest, "value", (double)p->value[last]);
    add_time(latest, "time", p->time[last]);
    if (m >= 2) {
        size_t prev = in[m - 2];
        cJSON *pv = cJSON_AddObjectToObject(l, "previous");
        cJSON_AddNumberToObject(pv, "value", (double)p->value[prev]);
        add_time(pv, "time", p->time[prev]);
        double d = (double)p->value[last] - (double)p->value[prev];
        cJSON_AddStringToObject(l, "trend", d > 0 ? "rising" : d < 0 ? "falling" : "unchanged");
        cJSON_AddNumberToObject(l, "change", d);
    } else {
        cJSON_AddNullToObject(l, "previous");
        cJSON_AddStringToObject(l, "trend", "single value");
    }
    cJSON_AddNumberToObject(l, "values_in_window", (double)m);
    cJSON_AddItemToObject(l, "evidence", evidence_list(p, in, m, o->max_evidence));
    free(in);
    return l;
}

static cJSON *admission_line(const serve_patient *p, size_t start, long end) {
    cJSON *l = cJSON_CreateObject();
    cJSON_AddStringToObject(l, "text", line_text(p, start));
    cJSON_AddStringToObject(l, "code", p->code[start]);
    add_time(l, "start", p->time[start]);
    if (end >= 0) {
        add_time(l, "end", p->time[end]);
        if (p->time[start] != TIME_NULL && p->time[end] != TIME_NULL)
            cJSON_AddNumberToObject(
                l, "length_of_stay_days",
                round((double)(p->time[end] - p->time[start]) / (double)USEC_PER_DAY * 10) / 10);
    } else {
        cJSON_AddNullToObject(l, "end");
    }
    cJSON *ev = cJSON_AddArrayToObject(l, "evidence");
    cJSON_AddItemToArray(ev, serve_evidence(p, start));
    if (end >= 0) cJSON_AddItemToArray(ev, serve_evidence(p, (size_t)end));
    return l;
}

static int add_to(group *g, size_t i) {
    size_t *t = cf_grow(g->ev, &g->cap, g->n + 1, sizeof *t, 4);
    if (!t) return -1;
    g->ev = t;
    g->ev[g->n++] = i;
    return 0;
}

cJSON *serve_summary(const serve_patient *p, const serve_summary_opts *o) {
    int64_t now = serve_patient_effective_time(p);
    strmap keys;
    strmap_init(&keys);
    group *groups = NULL;
    size_t n_groups = 0, cap_groups = 0;
    group **order = NULL;
    cJSON *root = cJSON_CreateObject(), *result = NULL;
    char *kb = NULL;
    size_t kb_cap = 0;
    int *kind = calloc(p->n ? p->n : 1, sizeof *kind);
    if (!root || !kind) goto done;
    for (size_t i = 0; i < p->n; i++) {
        if (p->time[i] != TIME_NULL && now != TIME_NULL && p->time[i] > now) continue;
        int k = kind[i] = classify(p, i);
        if (k == K_OTHER || k == K_ADMIT || k == K_DISCHARGE) continue;
        /* group key: section + code, with MIMIC STOP events joining their START */
        const char *c = p->code[i];
        char tag = (char)('0' + k);
        size_t cl = strlen(c), need = cl + 16;
        if (need > kb_cap) {
            char *t = realloc(kb, need);
            if (!t) goto done;
            kb = t;
            kb_cap = need;
        }
        int n;
        if (starts(c, "MEDICATION//STOP//"))
            n = snprintf(kb, kb_cap, "%cMEDICATION//START//%s", tag, c + 18);
        else
            n = snprintf(kb, kb_cap, "%c%s", tag, c);
        int64_t gi = strmap_intern(&keys, kb, (size_t)n);
        if (gi < 0) goto done;
        if ((size_t)gi >= cap_groups) {
            size_t nc = cap_groups ? cap_groups * 2 : 64;
            group *t = realloc(groups, nc * sizeof *t);
            if (!t) goto done;
            memset(t + cap_groups, 0, (nc - cap_groups) * sizeof *t);
            groups = t;
            cap_groups = nc;
        }
        if ((size_t)gi == n_groups) {
            n_groups++;
            groups[gi].kind = k;
        }
        if (add_to(&groups[gi], i)) goto done;
    }
    order = malloc((n_groups ? n_groups : 1) * sizeof *order);
    if (!order) goto done;
    char tb[48];
    if (now == TIME_NULL) cJSON_AddNullToObject(root, "as_of");
    else cJSON_AddStringToObject(root, "as_of", serve_time_iso(now, tb, sizeof tb));
    cJSON_AddNumberToObject(root, "events", (double)p->n);
    static const char *const names[] = {"", "problems", "medications", "labs"};
    for (int k = K_PROBLEM; k <= K_LAB; k++) {
        size_t m = 0;
        for (size_t gi = 0; gi < n_groups; gi++) {
            group *g = &groups[gi];
            if (g->kind != k) continue;
            int current = 0;
            g->line = k == K_PROBLEM ? problem_line(p, g, o)
                      : k == K_MED   ? med_line(p, g, o, now, &current)
                                     : lab_line(p, g, o, now);
            if (!g->line) continue;
            g->sort_time = p->time[g->ev[g->n - 1]];
            g->code = p->code[g->ev[g->n - 1]];
            order[m++] = g;
        }
        qsort(order, m, sizeof *order, cmp_line);
        cJSON *arr = cJSON_AddArrayToObject(root, names[k]);
        for (size_t j = 0; j < m; j++) {
            if (j < (size_t)o->max_items) cJSON_AddItemToArray(arr, order[j]->line);
            else cJSON_Delete(order[j]->line);
            order[j]->line = NULL;
        }
    }
    /* admissions: starts paired with the end event of the same source record */
    cJSON *adm = cJSON_AddArrayToObject(root, "admissions");
    size_t shown = 0;
    for (size_t i = p->n; i > 0 && shown < (size_t)o->max_items; i--) {
        size_t s = i - 1;
        if (kind[s] != K_ADMIT) continue;
        long end = -1;
        for (size_t j = 0; j < p->n; j++) {
            if (kind[j] != K_DISCHARGE || !p->row || !p->row[s] || p->row[j] != p->row[s] ||
                !p->source ||
                strcmp(p->source[j] ? p->source[j] : "", p->source[s] ? p->source[s] : ""))
                continue;
            end = (long)j;
            break;
        }
        cJSON_AddItemToArray(adm, admission_line(p, s, end));
        shown++;
    }
    result = root;
    root = NULL;
done:
    for (size_t gi = 0; gi < n_groups; gi++) {
        free(groups[gi].ev);
        cJSON_Delete(groups[gi].line);
    }
    CF_FREE_ALL(groups, order, kind, kb);
    strmap_free(&keys);
    cJSON_Delete(root);
    return result;
}
