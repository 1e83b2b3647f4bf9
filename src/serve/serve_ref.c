/* The reference predictor (see serve_ref.h) and the generic occlusion attribution shared by every
 * predictor (see predictor.h).
 *
 * Events are grouped by code string with a per-call strmap, so the same code read from the store
 * (one pointer per code) or from FHIR prefetch (one string per event) groups the same way. */
#include "serve/serve_ref.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "ml/logreg.h"
#include "util/strmap.h"

enum { TR_COUNT, TR_LOG1P, TR_PRESENT, TR_LAST_VALUE, TR_YEARS_SINCE };

typedef struct {
    char *name;
    char **prefix;
    size_t *prefix_len;
    size_t n_prefix;
    int transform;
    int64_t window_us; /* 0 = all time */
    double weight, se, center, scale, dflt;
} ref_feature;

typedef struct {
    char *id;
    double b0, se0;
    ref_feature *f;
    size_t nf;
} ref_task;

typedef struct {
    char *name, *version;
    ref_task *t;
    size_t nt;
} ref_model;

#define YEAR_US (365.25 * 86400.0 * 1e6)

/* ------------------------------------------------------------------ shared helpers */

int64_t serve_patient_effective_time(const serve_patient *p) {
    if (p->prediction_time != TIME_NULL) return p->prediction_time;
    int64_t t = TIME_NULL;
    for (size_t i = 0; i < p->n; i++)
        if (p->time[i] != TIME_NULL && (t == TIME_NULL || p->time[i] > t)) t = p->time[i];
    return t;
}

static int ev_used(const serve_patient *p, size_t i, int64_t pt) {
    return p->time[i] == TIME_NULL || pt == TIME_NULL || p->time[i] <= pt;
}

size_t serve_patient_used(const serve_patient *p) {
    int64_t pt = p->prediction_time;
    size_t n = 0;
    for (size_t i = 0; i < p->n; i++) n += (size_t)ev_used(p, i, pt);
    return n;
}

/* Groups the used events by code: gid[i] for used events (-1 otherwise); returns the number of
 * groups, or -1 on out-of-memory. last[g] = most recent event of group g, count[g] its size. */
typedef struct {
    int32_t *gid;
    size_t *last, *count;
    size_t n_groups;
} grouping;

static void grouping_free(grouping *g) {
    CF_FREE_ALL(g->gid, g->last, g->count);
    memset(g, 0, sizeof *g);
}

static int group_events(const serve_patient *p, int64_t pt, grouping *g) {
    memset(g, 0, sizeof *g);
    strmap m;
    strmap_init(&m);
    g->gid = malloc((p->n ? p->n : 1) * sizeof *g->gid);
    if (!g->gid) goto oom;
    for (size_t i = 0; i < p->n; i++) {
        g->gid[i] = -1;
        if (!ev_used(p, i, pt)) continue;
        int64_t id = strmap_intern(&m, p->code[i], strlen(p->code[i]));
        if (id < 0) goto oom;
        g->gid[i] = (int32_t)id;
    }
    g->n_groups = m.count;
    g->last = calloc(g->n_groups ? g->n_groups : 1, sizeof *g->last);
    g->count = calloc(g->n_groups ? g->n_groups : 1, sizeof *g->count);
    if (!g->last || !g->count) goto oom;
    for (size_t i = 0; i < p->n; i++) {
        if (g->gid[i] < 0) continue;
        size_t k = (size_t)g->gid[i];
        /* the most recent event of the group (a timed one over a static one; ties: later) */
        size_t cur = g->last[k];
        if (++g->count[k] == 1 || (p->time[i] != TIME_NULL &&
                                   (p->time[cur] == TIME_NULL || p->time[i] >= p->time[cur])))
            g->last[k] = i;
    }
    strmap_free(&m);
    return 0;
oom:
    strmap_free(&m);
    grouping_free(g);
    return -1;
}

/* Keeps the SERVE_MAX_REASONS largest positive contributions. */
static void push_reason(serve_score *out, const serve_patient *p, size_t event, size_t n_events,
                        double c) {
    if (!(c > 1e-12)) return;
    size_t n = out->n_reasons;
    /* position: contribution desc, then more recent first, then code, for determinism */
    size_t pos = n;
    while (pos > 0) {
        const serve_reason *r = &out->reason[pos - 1];
        int before;
        if (c != r->contribution) before = c > r->contribution;
        else if (p->time[event] != p->time[r->event]) before = p->time[event] > p->time[r->event];
        else before = strcmp(p->code[event], p->code[r->event]) < 0;
        if (!before) break;
        pos--;
    }
    if (pos >= SERVE_MAX_REASONS) return;
    if (n == SERVE_MAX_REASONS) n--;
    memmove(&out->reason[pos + 1], &out->reason[pos], (n - pos) * sizeof out->reason[0]);
    out->reason[pos] = (serve_reason){event, n_events, c};
    out->n_reasons = n + 1;
}

/* serve_occlusion through the batched interface: one variant per flush. */
typedef struct {
    serve_risk_fn fn;
    void *ctx;
    double risk;
} one_at_a_time;

static int one_queue(void *ctx, const serve_patient *q, const serve_task *t, cf_err *err) {
    one_at_a_time *o = ctx;
    return o->fn(o->ctx, q, t, &o->risk, err);
}

static int one_flush(void *ctx, const serve_task *t, double *risk, cf_err *err) {
    *risk = ((one_at_a_time *)ctx)->risk;
    return CF_OK;
}

int serve_occlusion(serve_risk_fn fn, void *ctx, const serve_patient *p, const serve_task *t,
                    double base, serve_score *out, cf_err *err) {
    one_at_a_time o = {fn, ctx, 0};
    serve_risk_batch b = {one_queue, one_flush, 1};
    return serve_occlusion_batch(&b, &o, p, t, base, out, err);
}

int serve_occlusion_batch(const serve_risk_batch *b, void *ctx, const serve_patient *p,
                          const serve_task *t, double base, serve_score *out, cf_err *err) {
    int64_t pt = serve_patient_effective_time(p);
    int batch = b->batch < 1 ? 1 : b->batch;
    grouping g;
    if (group_events(p, pt, &g)) return cf_fail(err, CF_EINTERNAL, "out of memory");
    size_t n = p->n ? p->n : 1;
    int64_t *time = malloc(n * sizeof *time);
    const char **code = malloc(n * sizeof *code), **text = malloc(n * sizeof *text),
               **desc = malloc(n * sizeof *desc), **source = malloc(n * sizeof *source);
    float *value = malloc(n * sizeof *value);
    uint64_t *row = malloc(n * sizeof *row);
    double *risk = malloc((size_t)batch * sizeof *risk);
    int rc = CF_OK;
    if (!time || !code || !text || !desc || !source || !value || !row || !risk) {
        rc = cf_fail(err, CF_EINTERNAL, "out of memory");
        goto done;
    }
    out->n_reasons = 0;
    out->n_events_used = 0;
    for (size_t i = 0; i < p->n; i++) out->n_events_used += g.gid[i] >= 0;
    size_t first = 0; /* the first group queued since the last flush */
    for (size_t k = 0; k < g.n_groups; k++) {
        serve_patient q = {0};
        size_t m = 0;
        for (size_t i = 0; i < p->n; i++) {
            if (g.gid[i] < 0 || (size_t)g.gid[i] == k) continue;
            time[m] = p->time[i];
            code[m] = p->code[i];
            value[m] = p->value[i];
            text[m] = p->text ? p->text[i] : NULL;
            desc[m] = p->desc ? p->desc[i] : "";
            source[m] = p->source ? p->source[i] : "";
            row[m] = p->row ? p->row[i] : 0;
            m++;
        }
        q.n = m;
        q.time = time;
        q.code = code;
        q.value = value;
        q.text = text;
        q.desc = desc;
        q.source = source;
        q.row = row;
        q.prediction_time = pt; /* fixed: removing the last event must not move "now" */
        if ((rc = b->queue(ctx, &q, t, err))) goto done;
        if (k + 1 - first == (size_t)batch || k + 1 == g.n_groups) {
            if ((rc = b->flush(ctx, t, risk, err))) goto done;
            /* in group order, as one rescoring at a time would push them */
            for (size_t j = first; j <= k; j++) push_reason(out, p, g.last[j], g.count[j], base - risk[j - first]);
            first = k + 1;
        }
    }
done:
    CF_FREE_ALL(time, code, text, desc, source, value, row, risk);
    grouping_free(&g);
    return rc;
}

/* ------------------------------------------------------------------ definition */

static void model_free(ref_model *m) {
    if (!m) return;
    for (size_t i = 0; i < m->nt; i++) {
        ref_task *t = &m->t[i];
        for (size_t j = 0; j < t->nf; j++) {
            for (size_t k = 0; k < t->f[j].n_prefix; k++) free(t->f[j].prefix[k]);
            CF_FREE_ALL(t->f[j].prefix, t->f[j].prefix_len, t->f[j].name);
        }
        free(t->f);
        free(t->id);
    }
    CF_FREE_ALL(m->t, m->name, m->version, m);
}

static int get_num(const cJSON *o, const char *key, double dflt, int required, double *out,
                   const char *where, cf_err *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v) {
        if (required) return cf_fail(err, CF_EINPUT, "%s.%s: a number is required", where, key);
        *out = dflt;
        return CF_OK;
    }
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
        return cf_fail(err, CF_EINPUT, "%s.%s: expected a finite number", where, key);
    *out = v->valuedouble;
    return CF_OK;
}

static int parse_feature(const cJSON *o, ref_feature *f, const char *where, cf_err *err) {
    if (!cJSON_IsObject(o)) return cf_fail(err, CF_EINPUT, "%s: expected an object", where);
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(o, "name");
    f->name = strdup(cJSON_IsString(name) ? name->valuestring : "");
    if (!f->name) return cf_fail(err, CF_EINTERNAL, "out of memory");
    const cJSON *codes = cJSON_GetObjectItemCaseSensitive(o, "codes");
    if (!cJSON_IsArray(codes) || cJSON_GetArraySize(codes) == 0)
        return cf_fail(err, CF_EINPUT, "%s.codes: expected a non-empty array of code prefixes",
                       where);
    size_t n = (size_t)cJSON_GetArraySize(codes);
    f->prefix = calloc(n, sizeof *f->prefix);
    f->prefix_len = calloc(n, sizeof *f->prefix_len);
    if (!f->prefix || !f->prefix_len) return cf_fail(err, CF_EINTERNAL, "out of memory");
    const cJSON *c;
    cJSON_ArrayForEach(c, codes) {
        if (!cJSON_IsString(c) || !c->valuestring[0])
            return cf_fail(err, CF_EINPUT, "%s.codes[%zu]: expected a non-empty string", where,
                           f->n_prefix);
        if (!(f->prefix[f->n_prefix] = strdup(c->valuestring)))
            return cf_fail(err, CF_EINTERNAL, "out of memory");
        f->prefix_len[f->n_prefix] = strlen(c->valuestring);
        f->n_prefix++;
    }
    const cJSON *tr = cJSON_GetObjectItemCaseSensitive(o, "transform");
    const char *ts = cJSON_IsString(tr) ? tr->valuestring : tr ? "" : "count";
    static const char *const names[] = {"count", "log1p", "present", "last_value", "years_since"};
    f->transform = -1;
    for (int i = 0; i < 5; i++)
        if (!strcmp(ts, names[i])) f->transform = i;
    if (f->transform < 0)
        return cf_fail(err, CF_EINPUT,
                       "%s.transform: expected count, log1p, present, last_value or years_since",
                       where);
    double window = 0;
    int rc;
    if ((rc = get_num(o, "window_days", 0, 0, &window, where, err))) return rc;
    if (window < 0 || window > 365.25 * 200)
        return cf_fail(err, CF_EINPUT, "%s.window_days: expected 0 (all time) to 73050", where);
    f->window_us = (int64_t)(window * 86400.0 * 1e6);
    if ((rc = get_num(o, "weight", 0, 1, &f->weight, where, err)) ||
        (rc = get_num(o, "se", 0, 0, &f->se, where, err)) ||
        (rc = get_num(o, "center", 0, 0, &f->center, where, err)) ||
        (rc = get_num(o, "scale", 1, 0, &f->scale, where, err)) ||
        (rc = get_num(o, "default", 0, 0, &f->dflt, where, err)))
        return rc;
    if (f->se < 0) return cf_fail(err, CF_EINPUT, "%s.se: expected a non-negative number", where);
    if (f->scale == 0) return cf_fail(err, CF_EINPUT, "%s.scale: must not be 0", where);
    return CF_OK;
}

static int parse_model(const cJSON *def, const char *where, ref_model *m, cf_err *err) {
    if (!cJSON_IsObject(def)) return cf_fail(err, CF_EINPUT, "%s: expected an object", where);
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(def, "name");
    const cJSON *version = cJSON_GetObjectItemCaseSensitive(def, "version");
    m->name = strdup(cJSON_IsString(name) ? name->valuestring : "clinfm-reference");
    m->version = strdup(cJSON_IsString(version) ? version->valuestring : "0");
    if (!m->name || !m->version) return cf_fail(err, CF_EINTERNAL, "out of memory");
    const cJSON *tasks = cJSON_GetObjectItemCaseSensitive(def, "tasks");
    if (!cJSON_IsObject(tasks) || !tasks->child)
        return cf_fail(err, CF_EINPUT, "%s.tasks: expected an object with one entry per task",
                       where);
    m->t = calloc((size_t)cJSON_GetArraySize(tasks), sizeof *m->t);
    if (!m->t) return cf_fail(err, CF_EINTERNAL, "out of memory");
    const cJSON *t;
    cJSON_ArrayForEach(t, tasks) {
        char w[512];
        snprintf(w, sizeof w, "%s.tasks.%.200s", where, t->string);
        ref_task *rt = &m->t[m->nt++];
        if (!(rt->id = strdup(t->string))) return cf_fail(err, CF_EINTERNAL, "out of memory");
        if (!cJSON_IsObject(t)) return cf_fail(err, CF_EINPUT, "%s: expected an object", w);
        int rc;
        if ((rc = get_num(t, "intercept", 0, 1, &rt->b0, w, err)) ||
            (rc = get_num(t, "intercept_se", 0, 0, &rt->se0, w, err)))
            return rc;
        const cJSON *fs = cJSON_GetObjectItemCaseSensitive(t, "features");
        if (!cJSON_IsArray(fs)) return cf_fail(err, CF_EINPUT, "%s.features: expected an array", w);
        rt->f = calloc((size_t)cJSON_GetArraySize(fs) + 1, sizeof *rt->f);
        if (!rt->f) return cf_fail(err, CF_EINTERNAL, "out of memory");
        const cJSON *f;
        cJSON_ArrayForEach(f, fs) {
            char fw[600];
            snprintf(fw, sizeof fw, "%s.features[%zu]", w, rt->nf);
            if ((rc = parse_feature(f, &rt->f[rt->nf++], fw, err))) return rc;
        }
    }
    return CF_OK;
}

/* ------------------------------------------------------------------ scoring */

static const ref_task *find_task(const ref_model *m, const char *id) {
    for (size_t i = 0; i < m->nt; i++)
        if (!strcmp(m->t[i].id, id)) return &m->t[i];
    return NULL;
}

static int feature_matches(const ref_feature *f, const char *code) {
    for (size_t k = 0; k < f->n_prefix; k++)
        if (!strncmp(code, f->prefix[k], f->prefix_len[k])) return 1;
    return 0;
}

static int in_window(const ref_feature *f, int64_t t, int64_t pt) {
    if (f->window_us == 0) return 1;
    if (t == TIME_NULL || pt == TIME_NULL) return 0;
    return t > pt - f->window_us;
}

/* Is event i a candidate for the "latest" of a last_value / years_since feature? */
static int latest_candidate(const ref_feature *f, const serve_patient *p, size_t i) {
    if (f->transform == TR_LAST_VALUE) return !isnan(p->value[i]);
    return p->time[i] != TIME_NULL;
}

static int later(const serve_patient *p, size_t a, size_t b) { /* is a later than b? */
    int64_t ta = p->time[a], tb = p->time[b];
    if (ta != tb) return ta == TIME_NULL ? 0 : tb == TIME_NULL ? 1 : ta > tb;
    return a > b;
}

static double feature_value(const ref_feature *f, size_t count, long latest, const serve_patient *p,
                            int64_t pt) {
    double x;
    switch (f->transform) {
    case TR_COUNT: x = (double)count; break;
    case TR_LOG1P: x = log1p((double)count); break;
    case TR_PRESENT: x = count > 0; break;
    case TR_LAST_VALUE: x = latest >= 0 ? (double)p->value[latest] : f->dflt; break;
    default:
        x = latest >= 0 && pt != TIME_NULL ? (double)(pt - p->time[latest]) / YEAR_US : f->dflt;
        break;
    }
    return (x - f->center) / f->scale;
}

/* Full scoring with optional exact group occlusion (out may be NULL for the risk alone). */
static int score_impl(const ref_model *m, const serve_patient *p, const serve_task *t,
                      double *risk_out, serve_score *out, cf_err *err) {
    const ref_task *rt = find_task(m, t->task_id);
    if (!rt) return cf_fail(err, CF_EINPUT, "the reference model has no task '%s'", t->task_id);
    int64_t pt = serve_patient_effective_time(p);
    grouping g;
    if (group_events(p, pt, &g)) return cf_fail(err, CF_EINTERNAL, "out of memory");
    size_t G = g.n_groups ? g.n_groups : 1;
    uint8_t *match = calloc(G, 1);
    size_t *gcount = calloc(G, sizeof *gcount);
    double *delta = calloc(G, sizeof *delta);
    int rc = CF_OK;
    if (!match || !gcount || !delta) {
        rc = cf_fail(err, CF_EINTERNAL, "out of memory");
        goto done;
    }
    double z = rt->b0, var = rt->se0 * rt->se0;
    for (size_t j = 0; j < rt->nf; j++) {
        const ref_feature *f = &rt->f[j];
        /* which groups match: decided once per distinct code */
        memset(match, 0, G);
        for (size_t k = 0; k < g.n_groups; k++)
            match[k] = (uint8_t)feature_matches(f, p->code[g.last[k]]);
        memset(gcount, 0, G * sizeof *gcount);
        size_t count = 0;
        long e1 = -1, e2 = -1; /* latest candidate; latest candidate of another group */
        for (size_t i = 0; i < p->n; i++) {
            if (g.gid[i] < 0 || !match[g.gid[i]] || !in_window(f, p->time[i], pt)) continue;
            count++;
            gcount[g.gid[i]]++;
            if (latest_candidate(f, p, i) && (e1 < 0 || later(p, i, (size_t)e1))) e1 = (long)i;
        }
        /* Removing e1's group falls back to e2; removing any other group leaves e1. */
        if (e1 >= 0 && out && (f->transform == TR_LAST_VALUE || f->transform == TR_YEARS_SINCE))
            for (size_t i = 0; i < p->n; i++) {
                if (g.gid[i] < 0 || g.gid[i] == g.gid[e1] || !match[g.gid[i]] ||
                    !in_window(f, p->time[i], pt) || !latest_candidate(f, p, i))
                    continue;
                if (e2 < 0 || later(p, i, (size_t)e2)) e2 = (long)i;
            }
        double x = feature_value(f, count, e1, p, pt);
        z += f->weight * x;
        var += (f->se * x) * (f->se * x);
        if (!out) continue;
        for (size_t k = 0; k < g.n_groups; k++) {
            if (!match[k]) continue;
            long latest = e1 >= 0 && (size_t)g.gid[e1] == k ? e2 : e1;
            double xk = feature_value(f, count - gcount[k], latest, p, pt);
            delta[k] += f->weight * (x - xk);
        }
    }
    double risk = ml_sigmoid(z);
    if (risk_out) *risk_out = risk;
    if (out) {
        double half = 1.959963984540054 * sqrt(var);
        out->risk = risk;
        out->lo = ml_sigmoid(z - half);
        out->hi = ml_sigmoid(z + half);
        out->n_reasons = 0;
        out->n_events_used = 0;
        for (size_t i = 0; i < p->n; i++) out->n_events_used += g.gid[i] >= 0;
        for (size_t k = 0; k < g.n_groups; k++)
            if (delta[k] != 0) push_reason(out, p, g.last[k], g.count[k], risk - ml_sigmoid(z - delta[k]));
    }
done:
    CF_FREE_ALL(match, gcount, delta);
    grouping_free(&g);
    return rc;
}

int serve_ref_risk(void *ctx, const serve_patient *p, const serve_task *t, double *risk,
                   cf_err *err) {
    return score_impl(ctx, p, t, risk, NULL, err);
}

static int ref_score(void *ctx, const serve_patient *p, const serve_task *t, serve_score *out,
                     cf_err *err) {
    return score_impl(ctx, p, t, NULL, out, err);
}

static int ref_supports(void *ctx, const char *task_id) {
    return find_task(ctx, task_id) != NULL;
}

static void ref_close(void *ctx) { model_free(ctx); }

int serve_ref_open(const cJSON *def, const char *where, serve_predictor *out, cf_err *err) {
    ref_model *m = calloc(1, sizeof *m);
    if (!m) return cf_fail(err, CF_EINTERNAL, "out of memory");
    int rc = parse_model(def, where, m, err);
    if (rc) {
        model_free(m);
        return rc;
    }
    memset(out, 0, sizeof *out);
    out->score = ref_score;
    out->supports = ref_supports;
    out->close = ref_close;
    out->ctx = m;
    out->model_name = m->name;
    out->model_version = m->version;
    /* the definition as parsed (whitespace and key order of the file do not matter) */
    char *text = cJSON_PrintUnformatted(def);
    if (!text) {
        model_free(m);
        memset(out, 0, sizeof *out);
        return cf_fail(err, CF_EINTERNAL, "out of memory");
    }
    unsigned char h[8];
    crypto_generichash(h, sizeof h, (const unsigned char *)text, strlen(text), NULL, 0);
    memcpy(&out->checksum, h, sizeof h);
    free(text);
    return CF_OK;
}
