/* Zero-shot inference on the runtime: N sampled futures of a patient with a time budget (ETHOS
 * style), and the one-step read-out of next-token probabilities. See runtime.h.
 *
 * Rollouts advance in lockstep through one KV cache, one batched row per rollout per step, and
 * stop as soon as every rollout is decided. A history plus its futures can outgrow the context
 * (a MIMIC stay is thousands of tokens); then each live rollout is re-primed from a fresh
 * static prefix and its last maxT/2 tokens, the way training windows start, and sampling goes
 * on. Each rollout has its own random stream seeded by (seed, rollout), so results do not depend
 * on thread counts or on which rollouts are still alive. */
#include "model/runtime.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/gpt_kernels.h"
#include "timeline/timeline_codes.h"

/* softmax of logits[0, V) at temperature into p (sums to 1) */
static void softmax(const float *logits, int V, float temperature, float *p) {
    float mx = -INFINITY;
    for (int i = 0; i < V; i++)
        if (logits[i] > mx) mx = logits[i];
    double sum = 0;
    for (int i = 0; i < V; i++) {
        p[i] = expf((logits[i] - mx) / temperature);
        sum += p[i];
    }
    float inv = (float)(1.0 / sum);
    for (int i = 0; i < V; i++) p[i] *= inv;
}

enum { R_LIVE = 0, R_EVENT, R_CLOSED };

#define NF TIMELINE_N_FEATURES

/* Feeds n_active sequences their rows of ctx ((n_active, len), row stride `stride`) and of
 * their continuous inputs ctxf ((n_active, len, NF), same row stride in tokens; NULL when the
 * model takes none) from an empty cache, in chunks that respect the cache's row limit; the
 * logits of each sequence's last token end up in row s. */
static int prime(rt_session *ss, const int *ctx, const float *ctxf, int stride, int n_active, int len, cf_err *err) {
    gpt_kv_reset(&ss->kv);
    ss->ref_len = 0; /* sequences 0 and 1 are about to be overwritten */
    int chunk = ss->kv.max_rows / n_active;
    if (chunk < 1) chunk = 1;
    for (int o = 0; o < len; o += chunk) {
        int c = len - o < chunk ? len - o : chunk;
        for (int s = 0; s < n_active; s++) {
            memcpy(ss->feed + (size_t)s * c, ctx + (size_t)s * stride + o, (size_t)c * sizeof(int));
            if (ctxf)
                memcpy(ss->ffeed + (size_t)s * c * NF, ctxf + ((size_t)s * stride + o) * NF, (size_t)c * NF * sizeof(float));
        }
        int rc = gpt_kv_forward_x(&ss->rm->m, &ss->kv, ss->feed, ctxf ? ss->ffeed : NULL, n_active, c,
                                  o + c == len ? GPT_LOGITS_LAST : GPT_LOGITS_NONE, err);
        if (rc) return rc;
    }
    return CF_OK;
}

/* The value a sampled token stands for: a decile token after a code with cut points is the
 * middle of that decile (vocab_decile_norm); anything else carries none. */
static float sampled_value(const vocab *v, int prev_tok, int tok) {
    if (tok < 0 || (uint32_t)tok >= v->n_tokens || v->kind[tok] != VOCAB_KIND_QUANTILE) return NAN;
    if (prev_tok < 0 || (uint32_t)prev_tok >= v->n_tokens || v->cut_set[prev_tok] == UINT32_MAX) return NAN;
    return vocab_decile_norm(v->cuts + (size_t)v->cut_set[prev_tok] * VOCAB_N_CUTS, (int)v->aux0[tok]);
}

int rt_rollouts(rt_session *ss, const rt_prompt *p, const rt_rollout_spec *sp, rt_rollout_result *res,
                cf_err *err) {
    const rt_model *rm = ss->rm;
    const gpt_model *m = &rm->m;
    const vocab *v = &rm->v;
    const int N = sp->n_rollouts, V = m->config.vocab_size, Vp = m->config.padded_vocab_size;
    const int T = m->config.max_seq_len, P = (int)v->n_slots + 2;
    memset(res, 0, sizeof *res);
    if (N < 1 || N > ss->n_seq)
        return cf_fail(err, CF_EINPUT, "%d rollouts asked of a session of %d sequences", N, ss->n_seq);
    if (sp->max_new < 1 || !(sp->temperature > 0) || !sp->outcome)
        return cf_fail(err, CF_EINPUT, "rollouts need max_new >= 1, a positive temperature and an outcome set");
    const int keep = (T - P) / 2;
    if (keep < 1) return cf_fail(err, CF_EINPUT, "a context of %d tokens is too short to sample futures", T);
    if (p->len < 1 || p->len > T || p->n_prefix < 0 || p->n_prefix > p->len)
        return cf_fail(err, CF_EINTERNAL, "a prompt of %d tokens does not fit the context of %d", p->len, T);
    if (m->config.n_features && !p->feats)
        return cf_fail(err, CF_EINTERNAL, "a prompt without continuous inputs for a model that takes them");
    int cap = p->len + sp->max_new;
    if (cap > ss->hist_cap || !ss->hist) {
        int *h = realloc(ss->hist, (size_t)ss->n_seq * cap * sizeof *h);
        if (h) ss->hist = h;
        int64_t *ht = realloc(ss->htime, (size_t)ss->n_seq * cap * sizeof *ht);
        if (ht) ss->htime = ht;
        float *hf = realloc(ss->hfeat, (size_t)ss->n_seq * cap * NF * sizeof *hf);
        if (hf) ss->hfeat = hf;
        if (!h || !ht || !hf) return cf_fail(err, CF_EINTERNAL, "out of memory for rollouts");
        ss->hist_cap = cap;
    }
    const int hc = ss->hist_cap, with_f = m->config.n_features > 0;
    /* a window without an end in time closes at the horizon, if one is given */
    const int64_t budget = sp->budget_us == INT64_MAX && sp->horizon_us > 0 ? sp->horizon_us : sp->budget_us;
    const int by_horizon = budget != sp->budget_us;
    uint64_t *rng = malloc((size_t)N * sizeof *rng);
    int64_t *elapsed = calloc((size_t)N, sizeof *elapsed);
    /* each rollout's clock for its inputs: the current event time and the one before it */
    int64_t *cur_t = malloc((size_t)N * sizeof *cur_t), *prev_t = malloc((size_t)N * sizeof *prev_t);
    float *ctxf = with_f ? malloc((size_t)N * T * NF * sizeof *ctxf) : NULL;
    int *state = calloc((size_t)N, sizeof *state), *map = malloc((size_t)N * sizeof *map);
    float *scratch = malloc((size_t)Vp * sizeof *scratch);
    int *ctx = malloc((size_t)N * T * sizeof *ctx);
    int rc = CF_OK;
    if (!rng || !elapsed || !state || !map || !scratch || !ctx || !cur_t || !prev_t || (with_f && !ctxf)) {
        rc = cf_fail(err, CF_EINTERNAL, "out of memory for rollouts");
        goto done;
    }
    for (int r = 0; r < N; r++) {
        rng[r] = gpt__mix64(sp->seed ^ gpt__mix64((uint64_t)r + 1));
        memcpy(ss->hist + (size_t)r * hc, p->tokens, (size_t)p->len * sizeof(int));
        memcpy(ss->htime + (size_t)r * hc, p->times, (size_t)p->len * sizeof(int64_t));
        if (p->feats) memcpy(ss->hfeat + (size_t)r * hc * NF, p->feats, (size_t)p->len * NF * sizeof(float));
        else memset(ss->hfeat + (size_t)r * hc * NF, 0, (size_t)p->len * NF * sizeof(float));
        cur_t[r] = p->last_time;
        prev_t[r] = p->prev_time;
        map[r] = r;
    }
    const int eot = (int)v->special[VOCAB_SP_EOT], pad = (int)v->special[VOCAB_SP_PAD];
    int n_active = N, hlen = p->len, shared_row = 1;
    if ((rc = prime(ss, p->tokens, with_f ? p->feats : NULL, p->len, 1, p->len, err))) goto done;
    gpt_kv_broadcast(m, &ss->kv);
    for (int gen = 0;; gen++) {
        /* sample one token for each live rollout and judge it */
        int live = 0, last_live = -1;
        for (int s = 0; s < n_active; s++) {
            int r = map[s];
            if (state[r] != R_LIVE) continue;
            const float *lg = ss->kv.logits + (shared_row ? 0 : (size_t)s * Vp);
            int tok = gpt__sample_row(lg, V, sp->temperature, 0, &rng[r], scratch);
            res->generated++;
            ss->hist[(size_t)r * hc + hlen] = tok;
            int64_t gl = rm->gap_lower[tok];
            if (gl >= 0) {
                elapsed[r] += gl;
                if (budget != INT64_MAX && elapsed[r] > budget) {
                    state[r] = R_CLOSED;
                    res->n_horizon += by_horizon;
                }
            } else if (sp->outcome[tok] && elapsed[r] >= sp->start_us) {
                state[r] = R_EVENT;
            } else if (tok == eot || tok == pad || (sp->terminal && sp->terminal[tok])) {
                state[r] = R_CLOSED;
            }
            int64_t t = p->last_time == TIME_NULL ? TIME_NULL : p->last_time + elapsed[r];
            ss->htime[(size_t)r * hc + hlen] = t;
            if (t != cur_t[r]) {
                prev_t[r] = cur_t[r];
                cur_t[r] = t;
            }
            timeline_token_features(ss->hfeat + ((size_t)r * hc + hlen) * NF, 0, t, prev_t[r], p->record_start,
                                    sampled_value(v, ss->hist[(size_t)r * hc + hlen - 1], tok));
            if (state[r] == R_LIVE) {
                live++;
                last_live = s;
            }
        }
        hlen++;
        shared_row = 0;
        if (!live || gen + 1 >= sp->max_new) break;
        if (ss->kv.len + 1 > T) {
            /* The context is full: rebuild it for the live rollouts only, each from a fresh
             * prefix (slots as of the cut, age and year at the cut's clock) and its last keep
             * tokens, the way training windows begin mid-timeline. */
            int a = 0, cut = hlen - keep;
            for (int s = 0; s < n_active; s++) {
                int r = map[s];
                if (state[r] != R_LIVE) continue;
                const int *h = ss->hist + (size_t)r * hc;
                uint32_t slots[VOCAB_MAX_SLOTS], pre[VOCAB_MAX_SLOTS + 2];
                for (uint32_t j = 0; j < v->n_slots; j++) slots[j] = (uint32_t)h[j];
                for (int g = p->n_prefix; g < cut; g++)
                    if (v->slot_of[h[g]] >= 0) slots[v->slot_of[h[g]]] = (uint32_t)h[g];
                uint32_t np = timeline_prefix(v, slots, p->birth, ss->htime[(size_t)r * hc + cut], pre);
                int *row = ctx + (size_t)a * T;
                for (uint32_t j = 0; j < np; j++) row[j] = (int)pre[j];
                memcpy(row + np, h + cut, (size_t)keep * sizeof(int));
                if (with_f) {
                    /* the fresh prefix's inputs, then the kept tokens' own (their true clock) */
                    float *rf = ctxf + (size_t)a * T * NF;
                    for (uint32_t j = 0; j < np; j++)
                        timeline_token_features(rf + (size_t)j * NF, 1, TIME_NULL, TIME_NULL, TIME_NULL, NAN);
                    memcpy(rf + (size_t)np * NF, ss->hfeat + ((size_t)r * hc + cut) * NF, (size_t)keep * NF * sizeof(float));
                }
                map[a++] = r;
            }
            n_active = a;
            res->reprimes++;
            if ((rc = prime(ss, ctx, ctxf, T, n_active, P + keep, err))) goto done;
            continue;
        }
        n_active = last_live + 1;
        for (int s = 0; s < n_active; s++) {
            int r = map[s];
            int live_r = state[r] == R_LIVE;
            ss->feed[s] = live_r ? ss->hist[(size_t)r * hc + hlen - 1] : pad;
            if (with_f) {
                if (live_r) memcpy(ss->ffeed + (size_t)s * NF, ss->hfeat + ((size_t)r * hc + hlen - 1) * NF, NF * sizeof(float));
                else memset(ss->ffeed + (size_t)s * NF, 0, NF * sizeof(float));
            }
        }
        if ((rc = gpt_kv_forward_x(m, &ss->kv, ss->feed, with_f ? ss->ffeed : NULL, n_active, 1, GPT_LOGITS_LAST, err)))
            goto done;
    }
    res->n = N;
    for (int r = 0; r < N; r++) {
        res->n_event += state[r] == R_EVENT;
        res->n_closed += state[r] == R_CLOSED;
        res->n_open += state[r] == R_LIVE;
    }
done:
    CF_FREE_ALL(rng, elapsed, cur_t, prev_t, ctxf, state, map, scratch, ctx);
    return rc;
}

int rt_readout(rt_session *ss, const rt_prompt *p, const uint8_t *outcome, int64_t budget_us, double *risk,
               cf_err *err) {
    const rt_model *rm = ss->rm;
    const gpt_model *m = &rm->m;
    const vocab *v = &rm->v;
    const int V = m->config.vocab_size, Vp = m->config.padded_vocab_size, T = m->config.max_seq_len;
    *risk = 0;
    if (ss->n_seq < VOCAB_N_GAPS + 1)
        return cf_fail(err, CF_EINTERNAL, "the read-out needs a session of %d sequences", VOCAB_N_GAPS + 1);
    if (p->len < 1 || p->len + 1 > T)
        return cf_fail(err, CF_EINTERNAL, "a read-out prompt of %d tokens leaves no room in a context of %d", p->len, T);
    const int with_f = m->config.n_features > 0;
    if (with_f && !p->feats)
        return cf_fail(err, CF_EINTERNAL, "a prompt without continuous inputs for a model that takes them");
    int rc = prime(ss, p->tokens, with_f ? p->feats : NULL, p->len, 1, p->len, err);
    if (rc) return rc;
    float *p0 = ss->probs;
    softmax(ss->kv.logits, V, 1.0f, p0);
    double r = 0;
    for (int t = 0; t < V; t++)
        if (outcome[t]) r += p0[t];
    int gaps[VOCAB_N_GAPS], G = 0;
    for (int b = 0; b < VOCAB_N_GAPS; b++) {
        int g = (int)v->gap[b];
        if (rm->gap_lower[g] <= budget_us) gaps[G++] = g;
    }
    if (G) {
        float *pg = malloc((size_t)Vp * sizeof *pg);
        if (!pg) return cf_fail(err, CF_EINTERNAL, "out of memory");
        gpt_kv_broadcast(m, &ss->kv);
        for (int j = 0; with_f && j < G; j++) {
            int64_t t = p->last_time == TIME_NULL ? TIME_NULL : p->last_time + rm->gap_lower[gaps[j]];
            timeline_token_features(ss->ffeed + (size_t)j * NF, 0, t, p->last_time, p->record_start, NAN);
        }
        if ((rc = gpt_kv_forward_x(m, &ss->kv, gaps, with_f ? ss->ffeed : NULL, G, 1, GPT_LOGITS_LAST, err))) {
            free(pg);
            return rc;
        }
        for (int j = 0; j < G; j++) {
            softmax(ss->kv.logits + (size_t)j * Vp, V, 1.0f, pg);
            double o = 0;
            for (int t = 0; t < V; t++)
                if (outcome[t]) o += pg[t];
            r += (double)p0[gaps[j]] * o;
        }
        free(pg);
    }
    *risk = r < 0 ? 0 : r > 1 ? 1 : r;
    return CF_OK;
}
