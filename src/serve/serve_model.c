/* The model-backed service predictor; see serve_model.h.
 *
 * `clinfm serve --model MODEL` scores each configured task with the foundation model through a
 * task head in the model bundle (model/bundle.h: heads/<task id>.json), which `clinfm eval
 * --model MODEL` writes into the bundle for the evaluated task. The head says how the task is
 * scored:
 *   finetuned  (default) logistic head on the patient embedding: one forward pass over the last
 *              maxT tokens; 95% interval by the delta method on the head's coefficients;
 *   readout    next-token probability of the outcome: one forward pass plus one batched step;
 *              no sampling, so its interval is the point itself;
 *   zero_shot  the share of sampled futures reaching the outcome, with a Wilson interval; slow
 *              (rollouts x tokens), so meant for offline use rather than cards.
 * Attribution is occlusion (serve_occlusion_batch): rescoring without each code's events. Each
 * variant is encoded as it is queued and compared with the full prompt: removing events that
 * lie before the context window changes nothing the model sees, so those variants cost no
 * forward pass. With the fine-tuned head the others are scored occlusion_batch at a time in one
 * batched pass (rt_embed_near_batch); with occlusion_batch 1, and for the other methods, one at
 * a time as before. Events after the prediction time and the task's never-input codes are never
 * encoded. Sessions (KV caches) and the request buffers are pooled, one slot per concurrent
 * request, and grow only, so a card allocates nothing per variant. */
#include "serve/serve_model.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "model/head.h"
#include "model/runtime.h"
#include "serve/serve_ref.h"
#include "util/mix64.h"
#include "util/strmap.h"

/* One pooled slot per concurrent request: a session (KV cache and batch scratch) and the
 * request's working buffers, grown as needed and kept for the next request, so a card does not
 * allocate per variant. */
typedef struct {
    rt_session ss;
    rt_events ev;          /* the usable events of the record being encoded */
    rt_prompt base;        /* the full record's prompt */
    rt_prompt *var;        /* (batch) prompts of the variants queued since the last flush */
    uint8_t *same;         /* (batch) 1: variant j encodes to the full record's prompt */
    const rt_prompt **run; /* (batch) the variants that need the network */
    float *emb;            /* (batch, C) their embeddings */
} sm_slot;

typedef struct {
    rt_model rm;
    size_t n_tasks;
    char **task_ids;
    rt_task_head *heads;
    int batch;             /* occlusion variants per batched forward; 1: one at a time */
    int n_pool;
    sm_slot *pool;
    int *busy;
    pthread_mutex_t lock;
    pthread_cond_t cv;
    char name[128];
} sm_ctx;

/* Per request: the patient's code dictionary and encoder, the pooled slot, the base risk. */
typedef struct {
    sm_ctx *m;
    const rt_task_head *th;
    sm_slot *sl;
    strmap codes;
    rt_encoder *enc;
    int64_t pt;
    int have_base;
    double base_risk;
    double lo, hi;
    int nq;                /* variants queued since the last flush */
} sm_call;

static const rt_task_head *head_for(const sm_ctx *m, const char *task_id) {
    for (size_t i = 0; i < m->n_tasks; i++)
        if (!strcmp(m->task_ids[i], task_id)) return &m->heads[i];
    return NULL;
}

static int sm_supports(void *ctx, const char *task_id) { return head_for(ctx, task_id) != NULL; }

static void slot_free(sm_slot *sl, int batch) {
    if (sl->ss.kv.memory) rt_session_free(&sl->ss);
    rt_events_free(&sl->ev);
    rt_prompt_free(&sl->base);
    if (sl->var)
        for (int j = 0; j < batch; j++) rt_prompt_free(&sl->var[j]);
    CF_FREE_ALL(sl->var, sl->same, sl->run, sl->emb);
}

static void sm_close(void *ctx) {
    sm_ctx *m = ctx;
    if (!m) return;
    for (size_t i = 0; i < m->n_tasks; i++) {
        rt_task_head_free(&m->heads[i]);
        free(m->task_ids[i]);
    }
    free(m->heads);
    free(m->task_ids);
    for (int i = 0; i < m->n_pool; i++) slot_free(&m->pool[i], m->batch);
    free(m->pool);
    free(m->busy);
    pthread_mutex_destroy(&m->lock);
    pthread_cond_destroy(&m->cv);
    rt_close(&m->rm);
    free(m);
}

static sm_slot *acquire(sm_ctx *m) {
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

static void release(sm_ctx *m, sm_slot *sl) {
    pthread_mutex_lock(&m->lock);
    m->busy[sl - m->pool] = 0;
    pthread_cond_signal(&m->cv);
    pthread_mutex_unlock(&m->lock);
}

/* Prompt length the head's method leaves room for. */
static int max_len_of(const sm_call *cl) {
    const int T = cl->sl->ss.rm->m.config.max_seq_len;
    int method = cl->th->method;
    return method == RT_METHOD_FINETUNED ? T : method == RT_METHOD_READOUT ? T - 1 : T - T / 4;
}

/* Encodes the usable events of q (at or before the prediction time, not never-input) into out. */
static int encode(sm_call *cl, const serve_patient *q, rt_prompt *out, cf_err *err) {
    sm_slot *sl = cl->sl;
    rt_events *ev = &sl->ev;
    int rc = rt_events_reserve(ev, q->n, err);
    if (rc) return rc;
    size_t m = 0;
    for (size_t i = 0; i < q->n; i++) {
        if (q->time[i] != TIME_NULL && cl->pt != TIME_NULL && q->time[i] > cl->pt) continue;
        int64_t id = strmap_find(&cl->codes, q->code[i], strlen(q->code[i]));
        if (id < 0) continue; /* never-input codes were left out of the dictionary */
        ev->code[m] = (uint32_t)id;
        ev->time[m] = q->time[i];
        ev->num[m++] = q->value ? q->value[i] : NAN;
    }
    /* Variants keep the full record's window: the same context minus the occluded events. */
    return rt_encode_events_from(cl->enc, ev->code, ev->time, ev->num, m, max_len_of(cl),
                                 cl->have_base ? sl->base.cut_time : TIME_NULL, out, err);
}

static int same_prompt(const rt_prompt *a, const rt_prompt *b) {
    return a->len == b->len && !memcmp(a->tokens, b->tokens, (size_t)a->len * sizeof *a->tokens) &&
           a->last_time == b->last_time;
}

static int check_risk(double risk, cf_err *err) {
    if (!(risk >= 0 && risk <= 1)) return cf_fail(err, CF_EINTERNAL, "the model gave a risk outside [0, 1]");
    return CF_OK;
}

/* The risk of an encoded prompt under the head's method, one forward at a time; fills
 * cl->lo/hi. The first call (the full record) sets the session's reference. */
static int risk_of(sm_call *cl, const rt_prompt *p, double *risk, cf_err *err) {
    const rt_task_head *th = cl->th;
    rt_session *ss = &cl->sl->ss;
    int rc;
    int64_t start, budget;
    rt_outcome_window(&th->outcome, cl->pt, cl->pt, p->last_time, &start, &budget);
    if (th->method == RT_METHOD_FINETUNED) {
        float emb[8192];
        if (ss->rm->m.config.channels > 8192) return cf_fail(err, CF_EINTERNAL, "model too wide for the service");
        /* the full record sets the reference; variants reuse its keys up to their first change */
        if ((rc = cl->have_base ? rt_embed_near(ss, p, emb, err) : rt_embed_ref(ss, p, emb, err))) return rc;
        double se, z = rt_head_logit(&th->head, emb, &se);
        *risk = rt_sigmoid(z);
        cl->lo = rt_sigmoid(z - 1.96 * se);
        cl->hi = rt_sigmoid(z + 1.96 * se);
    } else if (th->method == RT_METHOD_READOUT) {
        double r;
        if ((rc = rt_readout(ss, p, th->outcome.outcome, budget, &r, err))) return rc;
        *risk = th->outcome.polarity ? r : 1 - r;
        cl->lo = cl->hi = *risk;
    } else {
        /* The same seed for every variant (common random numbers), so occlusion differences
         * are not sampling noise alone. */
        rt_rollout_spec sp = {.outcome = th->outcome.outcome, .terminal = th->outcome.terminal, .start_us = start,
                              .budget_us = budget, .n_rollouts = th->rollouts, .max_new = th->max_new,
                              .seed = cf_mix64(0x636c696e666dULL), .temperature = 1.0f};
        rt_rollout_result res;
        if ((rc = rt_rollouts(ss, p, &sp, &res, err))) return rc;
        double k = th->outcome.polarity ? res.n_event : res.n - res.n_event, n = res.n, z = 1.96;
        *risk = k / n;
        double c = (*risk + z * z / (2 * n)) / (1 + z * z / n),
               h = z * sqrt(*risk * (1 - *risk) / n + z * z / (4 * n * n)) / (1 + z * z / n);
        cl->lo = c - h < 0 ? 0 : c - h;
        cl->hi = c + h > 1 ? 1 : c + h;
    }
    return check_risk(*risk, err);
}

/* serve_risk_batch.queue: encode the variant now (its arrays are reused afterwards). */
static int occl_queue(void *ctx, const serve_patient *q, const serve_task *t, cf_err *err) {
    sm_call *cl = ctx;
    sm_slot *sl = cl->sl;
    int j = cl->nq;
    if (j >= cl->m->batch) return cf_fail(err, CF_EINTERNAL, "occlusion queue overflow");
    int rc = encode(cl, q, &sl->var[j], err);
    if (rc) return rc;
    /* removing events that lie before the window changes nothing the model sees */
    sl->same[j] = (uint8_t)same_prompt(&sl->var[j], &sl->base);
    cl->nq++;
    return CF_OK;
}

/* serve_risk_batch.flush: the risks of the queued variants. With the fine-tuned head and a
 * batch over 1, every variant that needs the network goes through one batched pass
 * (rt_embed_near_batch); otherwise they run one at a time, as before. */
static int occl_flush(void *ctx, const serve_task *t, double *risk, cf_err *err) {
    sm_call *cl = ctx;
    sm_slot *sl = cl->sl;
    const int nq = cl->nq, C = sl->ss.rm->m.config.channels;
    int rc = CF_OK;
    cl->nq = 0;
    if (cl->th->method == RT_METHOD_FINETUNED && cl->m->batch > 1) {
        int nr = 0;
        for (int j = 0; j < nq; j++)
            if (!sl->same[j]) sl->run[nr++] = &sl->var[j];
        if ((rc = rt_embed_near_batch(&sl->ss, sl->run, nr, sl->emb, err))) return rc;
        for (int j = 0, k = 0; j < nq; j++) {
            if (sl->same[j]) {
                risk[j] = cl->base_risk;
                continue;
            }
            risk[j] = rt_sigmoid(rt_head_logit(&cl->th->head, sl->emb + (size_t)k++ * C, NULL));
            if ((rc = check_risk(risk[j], err))) return rc;
        }
        return CF_OK;
    }
    for (int j = 0; j < nq && !rc; j++) {
        if (sl->same[j]) risk[j] = cl->base_risk;
        else rc = risk_of(cl, &sl->var[j], &risk[j], err);
    }
    return rc;
}

/* Sizes the slot's variant buffers for the batch (once per slot). */
static int slot_ready(sm_slot *sl, int batch, int C, cf_err *err) {
    if (sl->var) return CF_OK;
    sl->var = calloc((size_t)batch, sizeof *sl->var);
    sl->same = calloc((size_t)batch, sizeof *sl->same);
    sl->run = calloc((size_t)batch, sizeof *sl->run);
    sl->emb = malloc((size_t)batch * (size_t)C * sizeof *sl->emb);
    if (!sl->var || !sl->same || !sl->run || !sl->emb) {
        CF_FREE_ALL(sl->var, sl->same, sl->run, sl->emb);
        sl->var = NULL;
        sl->same = NULL;
        sl->run = NULL;
        sl->emb = NULL;
        return cf_fail(err, CF_EINTERNAL, "out of memory");
    }
    return CF_OK;
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
    const char **dict = NULL;
    int rc = CF_OK;
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
    cl.sl = acquire(m);
    /* one core per request: the server runs as many requests at once as it has threads */
    rt_session_threads(&cl.sl->ss, 1);
    double base;
    if (!(rc = slot_ready(cl.sl, m->batch, m->rm.m.config.channels, err)) &&
        !(rc = encode(&cl, p, &cl.sl->base, err)) && !(rc = risk_of(&cl, &cl.sl->base, &base, err))) {
        out->risk = base;
        out->lo = cl.lo < base ? cl.lo : base;
        out->hi = cl.hi > base ? cl.hi : base;
        cl.have_base = 1;
        cl.base_risk = base;
        serve_risk_batch b = {occl_queue, occl_flush, m->batch};
        rc = serve_occlusion_batch(&b, &cl, p, t, base, out, err);
    }
    release(m, cl.sl);
done:
    free(dict);
    strmap_free(&cl.codes);
    rt_encoder_free(cl.enc);
    return rc;
}

/* The predictor's identity for the card cache: the network's parameters and the head files. */
static int model_checksum(sm_ctx *m, const model_bundle *b, const serve_config *c, uint64_t *out, cf_err *err) {
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, sizeof *out);
    crypto_generichash_update(&st, (const unsigned char *)m->rm.m.param_memory,
                              m->rm.m.num_parameters * sizeof(float));
    for (size_t i = 0; i < c->n_tasks; i++) {
        char path[4400], *text;
        size_t len;
        int rc = bundle_head_path(b, c->tasks[i].task_id, path, sizeof path, err);
        if (!rc) rc = serve_read_file(path, (size_t)1 << 30, &text, &len, err);
        if (rc) return rc;
        crypto_generichash_update(&st, (const unsigned char *)text, len + 1);
        free(text);
    }
    unsigned char h[sizeof *out];
    crypto_generichash_final(&st, h, sizeof h);
    memcpy(out, h, sizeof h);
    return CF_OK;
}

int serve_model_open(const char *model_path, const serve_config *c, serve_predictor *out, cf_err *err) {
    memset(out, 0, sizeof *out);
    sm_ctx *m = calloc(1, sizeof *m);
    if (!m) return cf_fail(err, CF_EINTERNAL, "out of memory");
    pthread_mutex_init(&m->lock, NULL);
    pthread_cond_init(&m->cv, NULL);
    model_bundle bundle;
    int rc = bundle_open(&bundle, model_path, err);
    if (!rc && (rc = rt_open_bundle(&m->rm, &bundle, NULL, err))) bundle_close(&bundle);
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
        if ((rc = bundle_head_path(&bundle, c->tasks[i].task_id, path, sizeof path, err)) ||
            (rc = rt_task_head_load(path, &m->rm, &m->heads[i], err)))
            goto fail;
        if (!(m->task_ids[i] = strdup(c->tasks[i].task_id))) {
            rc = cf_fail(err, CF_EINTERNAL, "out of memory");
            goto fail;
        }
        m->n_tasks = i + 1;
        if (m->heads[i].method == RT_METHOD_ZERO_SHOT && m->heads[i].rollouts > n_seq) n_seq = m->heads[i].rollouts;
    }
    int np = c->threads > 0 ? c->threads : 1;
    m->batch = c->occlusion_batch > 0 ? c->occlusion_batch : 1;
    m->pool = calloc((size_t)np, sizeof *m->pool);
    m->busy = calloc((size_t)np, sizeof *m->busy);
    if (!m->pool || !m->busy) {
        rc = cf_fail(err, CF_EINTERNAL, "out of memory");
        goto fail;
    }
    m->n_pool = np;
    for (int i = 0; i < m->n_pool; i++)
        if ((rc = rt_session_init(&m->pool[i].ss, &m->rm, n_seq, err))) goto fail;
    if ((rc = model_checksum(m, &bundle, c, &out->checksum, err))) goto fail;
    bundle_close(&bundle);
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
    bundle_close(&bundle);
    sm_close(m);
    return rc;
}
