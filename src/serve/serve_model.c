/* The model-backed service predictor; see serve_model.h.
 *
 * `clinfm serve --model MODEL` scores each configured task with the foundation model through a
 * task head file, MODEL.heads/<task id>.json, which `clinfm eval --model MODEL` writes as
 * OUT/model_head.json for the evaluated task (deploying it is a copy, after the committee has
 * read that evaluation). The head says how the task is scored:
 *   finetuned  (default) logistic head on the patient embedding: one forward pass over the last
 *              maxT tokens; 95% interval by the delta method on the head's coefficients;
 *   readout    next-token probability of the outcome: one forward pass plus one batched step;
 *              no sampling, so its interval is the point itself;
 *   zero_shot  the share of sampled futures reaching the outcome, with a Wilson interval; slow
 *              (rollouts x tokens), so meant for offline use rather than cards.
 * Attribution is occlusion (serve_occlusion): rescoring without each code's events. Before
 * running the network for a variant, its prompt is compared with the full one: removing events
 * that lie before the context window changes nothing the model sees, so those variants cost no
 * forward pass. Events after the prediction time and the task's never-input codes are never
 * encoded. Sessions (KV caches) are pooled, one per concurrent request. */
#include "serve/serve_model.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/head.h"
#include "model/runtime.h"
#include "serve/serve_ref.h"
#include "util/strmap.h"

typedef struct {
    rt_model rm;
    size_t n_tasks;
    char **task_ids;
    rt_task_head *heads;
    int n_pool;
    rt_session *pool;
    int *busy;
    pthread_mutex_t lock;
    pthread_cond_t cv;
    char name[128];
} sm_ctx;

/* Per request: the patient's code dictionary and encoder, the session, the full prompt. */
typedef struct {
    sm_ctx *m;
    const rt_task_head *th;
    rt_session *ss;
    strmap codes;
    rt_encoder *enc;
    int64_t pt;
    uint32_t *code;
    int64_t *time;
    float *num;
    rt_prompt p, base;
    int have_base;
    double base_risk;
    double lo, hi;
} sm_call;

static const rt_task_head *head_for(const sm_ctx *m, const char *task_id) {
    for (size_t i = 0; i < m->n_tasks; i++)
        if (!strcmp(m->task_ids[i], task_id)) return &m->heads[i];
    return NULL;
}

static int sm_supports(void *ctx, const char *task_id) { return head_for(ctx, task_id) != NULL; }

static void sm_close(void *ctx) {
    sm_ctx *m = ctx;
    if (!m) return;
    for (size_t i = 0; i < m->n_tasks; i++) {
        rt_task_head_free(&m->heads[i]);
        free(m->task_ids[i]);
    }
    free(m->heads);
    free(m->task_ids);
    for (int i = 0; i < m->n_pool; i++)
        if (m->pool[i].kv.memory) rt_session_free(&m->pool[i]);
    free(m->pool);
    free(m->busy);
    pthread_mutex_destroy(&m->lock);
    pthread_cond_destroy(&m->cv);
    rt_close(&m->rm);
    free(m);
}

static rt_session *acquire(sm_ctx *m) {
    pthread_mutex_lock(&m->lock);
    for (;;) {
        for (int i = 0; i < m->n_pool; i++)
            if (!m->busy[i]) {
                m->busy[i] = 1;
                pthread_mutex_unlock(&m->lock);
                return &m->pool[i];
            }
        pthread_cond_wait(&m->cv, &m->lock);
    }
}

static void release(sm_ctx *m, rt_session *ss) {
    pthread_mutex_lock(&m->lock);
    m->busy[ss - m->pool] = 0;
    pthread_cond_signal(&m->cv);
    pthread_mutex_unlock(&m->lock);
}

static uint64_t mix64(uint64_t z) {
    z += 0x9E3779B97F4A7C15ULL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* Encodes the usable events of q (at or before the prediction time, not never-input) into cl->p. */
static int encode(sm_call *cl, const serve_patient *q, int max_len, cf_err *err) {
    size_t m = 0;
    for (size_t i = 0; i < q->n; i++) {
        if (q->time[i] != TIME_NULL && cl->pt != TIME_NULL && q->time[i] > cl->pt) continue;
        int64_t id = strmap_find(&cl->codes, q->code[i], strlen(q->code[i]));
        if (id < 0) continue; /* never-input codes were left out of the dictionary */
        cl->code[m] = (uint32_t)id;
        cl->time[m] = q->time[i];
        cl->num[m++] = q->value ? q->value[i] : NAN;
    }
    /* Variants keep the full record's window: the same context minus the occluded events. */
    return rt_encode_events_from(cl->enc, cl->code, cl->time, cl->num, m, max_len,
                                 cl->have_base ? cl->base.cut_time : TIME_NULL, &cl->p, err);
}

static int same_prompt(const rt_prompt *a, const rt_prompt *b) {
    return a->len == b->len && !memcmp(a->tokens, b->tokens, (size_t)a->len * sizeof *a->tokens) &&
           a->last_time == b->last_time;
}

/* The risk of q under the head's method; fills cl->lo/hi. */
static int risk_of(sm_call *cl, const serve_patient *q, double *risk, cf_err *err) {
    const rt_task_head *th = cl->th;
    rt_session *ss = cl->ss;
    const int T = ss->rm->m.config.max_seq_len;
    int max_len = th->method == RT_METHOD_FINETUNED ? T : th->method == RT_METHOD_READOUT ? T - 1 : T - T / 4;
    int rc = encode(cl, q, max_len, err);
    if (rc) return rc;
    if (cl->have_base && same_prompt(&cl->p, &cl->base)) {
        *risk = cl->base_risk;
        return CF_OK;
    }
    int64_t start, budget;
    rt_outcome_window(&th->outcome, cl->pt, cl->pt, cl->p.last_time, &start, &budget);
    if (th->method == RT_METHOD_FINETUNED) {
        float emb[8192];
        if (ss->rm->m.config.channels > 8192) return cf_fail(err, CF_EINTERNAL, "model too wide for the service");
        /* the full record sets the reference; variants reuse its keys up to their first change */
        if ((rc = cl->have_base ? rt_embed_near(ss, &cl->p, emb, err) : rt_embed_ref(ss, &cl->p, emb, err))) return rc;
        double se, z = rt_head_logit(&th->head, emb, &se);
        *risk = rt_sigmoid(z);
        cl->lo = rt_sigmoid(z - 1.96 * se);
        cl->hi = rt_sigmoid(z + 1.96 * se);
    } else if (th->method == RT_METHOD_READOUT) {
        double r;
        if ((rc = rt_readout(ss, &cl->p, th->outcome.outcome, budget, &r, err))) return rc;
        *risk = th->outcome.polarity ? r : 1 - r;
        cl->lo = cl->hi = *risk;
    } else {
        /* The same seed for every variant (common random numbers), so occlusion differences
         * are not sampling noise alone. */
        rt_rollout_spec sp = {.outcome = th->outcome.outcome, .terminal = th->outcome.terminal, .start_us = start,
                              .budget_us = budget, .n_rollouts = th->rollouts, .max_new = th->max_new,
                              .seed = mix64(0x636c696e666dULL), .temperature = 1.0f};
        rt_rollout_result res;
        if ((rc = rt_rollouts(ss, &cl->p, &sp, &res, err))) return rc;
        double k = th->outcome.polarity ? res.n_event : res.n - res.n_event, n = res.n, z = 1.96;
        *risk = k / n;
        double c = (*risk + z * z / (2 * n)) / (1 + z * z / n),
               h = z * sqrt(*risk * (1 - *risk) / n + z * z / (4 * n * n)) / (1 + z * z / n);
        cl->lo = c - h < 0 ? 0 : c - h;
        cl->hi = c + h > 1 ? 1 : c + h;
    }
    if (!(*risk >= 0 && *risk <= 1)) return cf_fail(err, CF_EINTERNAL, "the model gave a risk outside [0, 1]");
    return CF_OK;
}

static int risk_fn(void *ctx, const serve_patient *p, const serve_task *t, double *risk, cf_err *err) {
    return risk_of(ctx, p, risk, err);
}

static void call_free(sm_call *cl) {
    strmap_free(&cl->codes);
    rt_encoder_free(cl->enc);
    free(cl->code);
    free(cl->time);
    free(cl->num);
    rt_prompt_free(&cl->p);
    rt_prompt_free(&cl->base);
}

static int sm_score(void *ctx, const serve_patient *p, const serve_task *t, serve_score *out, cf_err *err) {
    sm_ctx *m = ctx;
    memset(out, 0, sizeof *out);
    const rt_task_head *th = head_for(m, t->task_id);
    if (!th) return cf_fail(err, CF_EINPUT, "task %s has no model head", t->task_id);
    sm_call cl;
    memset(&cl, 0, sizeof cl);
    cl.m = m;
    cl.th = th;
    cl.pt = serve_patient_effective_time(p);
    strmap_init(&cl.codes);
    size_t n = p->n ? p->n : 1;
    cl.code = malloc(n * sizeof *cl.code);
    cl.time = malloc(n * sizeof *cl.time);
    cl.num = malloc(n * sizeof *cl.num);
    const char **dict = NULL;
    int rc = CF_OK;
    if (!cl.code || !cl.time || !cl.num) {
        rc = cf_fail(err, CF_EINTERNAL, "out of memory");
        goto done;
    }
    /* The patient's own code dictionary, without the task's never-input codes. */
    for (size_t i = 0; i < p->n; i++)
        if (!rt_task_head_never(th, p->code[i]) && strmap_intern(&cl.codes, p->code[i], strlen(p->code[i])) < 0) {
            rc = cf_fail(err, CF_EINTERNAL, "out of memory");
            goto done;
        }
    dict = malloc((cl.codes.count ? cl.codes.count : 1) * sizeof *dict);
    if (!dict) {
        rc = cf_fail(err, CF_EINTERNAL, "out of memory");
        goto done;
    }
    for (uint32_t k = 0; k < cl.codes.count; k++) dict[k] = strmap_str(&cl.codes, k, NULL);
    if ((rc = rt_encoder_new_codes(&cl.enc, &m->rm, dict, cl.codes.count, err))) goto done;
    cl.ss = acquire(m);
    /* one core per request: the server runs as many requests at once as it has threads */
    rt_session_threads(cl.ss, 1);
    double base;
    if (!(rc = risk_of(&cl, p, &base, err))) {
        out->risk = base;
        out->lo = cl.lo < base ? cl.lo : base;
        out->hi = cl.hi > base ? cl.hi : base;
        /* keep the full prompt: variants that encode to it need no forward pass */
        rt_prompt tmp = cl.base;
        cl.base = cl.p;
        cl.p = tmp;
        cl.have_base = 1;
        cl.base_risk = base;
        rc = serve_occlusion(risk_fn, &cl, p, t, base, out, err);
    }
    release(m, cl.ss);
done:
    free(dict);
    call_free(&cl);
    return rc;
}

int serve_model_open(const char *model_path, const serve_config *c, serve_predictor *out, cf_err *err) {
    memset(out, 0, sizeof *out);
    sm_ctx *m = calloc(1, sizeof *m);
    if (!m) return cf_fail(err, CF_EINTERNAL, "out of memory");
    pthread_mutex_init(&m->lock, NULL);
    pthread_cond_init(&m->cv, NULL);
    int rc = rt_open(&m->rm, model_path, NULL, err);
    if (rc) {
        pthread_mutex_destroy(&m->lock);
        pthread_cond_destroy(&m->cv);
        free(m);
        return rc;
    }
    m->heads = calloc(c->n_tasks ? c->n_tasks : 1, sizeof *m->heads);
    m->task_ids = calloc(c->n_tasks ? c->n_tasks : 1, sizeof *m->task_ids);
    if (!m->heads || !m->task_ids) {
        rc = cf_fail(err, CF_EINTERNAL, "out of memory");
        goto fail;
    }
    int n_seq = VOCAB_N_GAPS + 1;
    for (size_t i = 0; i < c->n_tasks; i++) {
        char path[4400];
        snprintf(path, sizeof path, "%s.heads/%s.json", model_path, c->tasks[i].task_id);
        if ((rc = rt_task_head_load(path, &m->rm, &m->heads[i], err))) goto fail;
        if (!(m->task_ids[i] = strdup(c->tasks[i].task_id))) {
            rc = cf_fail(err, CF_EINTERNAL, "out of memory");
            goto fail;
        }
        m->n_tasks = i + 1;
        if (m->heads[i].method == RT_METHOD_ZERO_SHOT && m->heads[i].rollouts > n_seq) n_seq = m->heads[i].rollouts;
    }
    int np = c->threads > 0 ? c->threads : 1;
    m->pool = calloc((size_t)np, sizeof *m->pool);
    m->busy = calloc((size_t)np, sizeof *m->busy);
    if (!m->pool || !m->busy) {
        rc = cf_fail(err, CF_EINTERNAL, "out of memory");
        goto fail;
    }
    m->n_pool = np;
    for (int i = 0; i < m->n_pool; i++)
        if ((rc = rt_session_init(&m->pool[i], &m->rm, n_seq, err))) goto fail;
    const char *base = strrchr(model_path, '/');
    snprintf(m->name, sizeof m->name, "%s", base ? base + 1 : model_path);
    out->score = sm_score;
    out->supports = sm_supports;
    out->close = sm_close;
    out->ctx = m;
    out->model_name = m->name;
    out->model_version = m->rm.version;
    return CF_OK;
fail:
    sm_close(m);
    return rc;
}
