/* Inference from a KV cache: feeding tokens, sampling many continuations of one prompt,
 * reading out next-token probabilities and patient embeddings.
 *
 * The cache keeps every layer's keys and values for N sequences, so each new token costs one
 * row through the network instead of a pass over the whole context. Sampling N continuations
 * of one prompt runs the prompt once on sequence 0, copies its cache to the others, then
 * advances all N together, one batched row each per step. The model is only read here, and all
 * scratch lives in the cache, so several caches can run on one model from several threads.
 *
 * Sampling randomness: sample s draws from its own stream seeded by (seed, s), so a seed gives
 * the same continuations whatever the thread count or the order samples are processed in. */
#include "model/gpt.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/gpt_feat.h"
#include "model/gpt_kernels.h"

static float *alloc_floats(size_t n) {
    void *p = NULL;
    if (posix_memalign(&p, 64, (n ? n : 1) * sizeof(float)) != 0) return NULL;
    return p;
}

int gpt_kv_init(gpt_kv_cache *kv, const gpt_model *m, int n_seq, cf_err *err) {
    memset(kv, 0, sizeof *kv);
    const gpt_config *c = &m->config;
    if (n_seq < 1 || n_seq > 65536)
        return cf_fail(err, CF_EINPUT, "KV cache: %d sequences, expected 1 .. 65536", n_seq);
    size_t L = (size_t)c->num_layers, C = (size_t)c->channels, maxT = (size_t)c->max_seq_len;
    size_t Vp = (size_t)c->padded_vocab_size, N = (size_t)n_seq;
    size_t rows = N > maxT ? N : maxT;
#ifdef _OPENMP
    int nt = omp_get_max_threads();
#else
    int nt = 1;
#endif
    size_t sizes[13] = {L * N * maxT * C, L * N * maxT * C, rows * C, rows * C, rows * 3 * C,
                        rows * C, rows * 4 * C, rows * C, rows * C, rows * Vp, N * Vp,
                        (size_t)nt * maxT, rows * (size_t)c->feat_hidden};
    size_t total = 0;
    for (int i = 0; i < 13; i++) total += (sizes[i] + 15) / 16 * 16;
    kv->memory = alloc_floats(total);
    if (!kv->memory)
        return cf_fail(err, CF_EINTERNAL, "out of memory for a KV cache of %d sequences", n_seq);
    float **ptrs[13] = {&kv->k, &kv->v, &kv->x, &kv->ln, &kv->qkv, &kv->atty, &kv->fch,
                        &kv->branch, &kv->lnf, &kv->logits, &kv->probs, &kv->att_scratch, &kv->xh};
    float *p = kv->memory;
    for (int i = 0; i < 13; i++) {
        *ptrs[i] = p;
        p += (sizes[i] + 15) / 16 * 16;
    }
    kv->n_seq = n_seq;
    kv->max_len = (int)maxT;
    kv->max_rows = (int)rows;
    kv->num_threads = nt;
    kv->seq_stride = maxT * C;
    kv->num_layers = c->num_layers;
    kv->channels = c->channels;
    kv->padded_vocab_size = c->padded_vocab_size;
    kv->feat_hidden = c->feat_hidden;
    return CF_OK;
}

void gpt_kv_free(gpt_kv_cache *kv) {
    free(kv->memory);
    memset(kv, 0, sizeof *kv);
}

void gpt_kv_reset(gpt_kv_cache *kv) { kv->len = 0; }

static int kv_matches(const gpt_model *m, const gpt_kv_cache *kv, cf_err *err) {
    const gpt_config *c = &m->config;
    if (!kv->memory || kv->num_layers != c->num_layers || kv->channels != c->channels ||
        kv->padded_vocab_size != c->padded_vocab_size || kv->max_len != c->max_seq_len ||
        kv->feat_hidden != c->feat_hidden)
        return cf_fail(err, CF_EINTERNAL, "KV cache was not made for this model");
    return CF_OK;
}

int gpt_kv_forward(const gpt_model *m, gpt_kv_cache *kv, const int *tokens, int n_active,
                   int n_new, int logits_mode, cf_err *err) {
    return gpt_kv_forward_x(m, kv, tokens, NULL, n_active, n_new, logits_mode, err);
}

void gpt_cls_logits(const gpt_model *m, const float *x, float *out) {
    const int P = gpt_cls_width(&m->config);
    for (int k = 0; k < m->config.num_outputs; k++) {
        const float *w = m->params.clsw + (size_t)k * P;
        float z = m->params.clsb[k];
        for (int c = 0; c < P; c++) z += w[c] * x[c];
        out[k] = z;
    }
}

void gpt_cls_input(const gpt_model *m, const int *tokens, const float *lnf, const float *feats, int len, float *x) {
    const gpt__pool_vars pv = {tokens, m->params.clsmap, m->params.clsvw, m->config.cls_slots, m->config.cls_proj};
    gpt__cls_pool(x, lnf, feats, m->config.n_features, m->params.clsq, m->config.num_heads, &pv, len,
                  m->config.channels, m->config.cls_pool);
}

int gpt_kv_forward_x(const gpt_model *m, gpt_kv_cache *kv, const int *tokens, const float *feats,
                     int n_active, int n_new, int logits_mode, cf_err *err) {
    int rc = kv_matches(m, kv, err);
    if (rc) return rc;
    const gpt_config *c = &m->config;
    if (n_active < 1 || n_active > kv->n_seq || n_new < 1 ||
        (size_t)n_active * n_new > (size_t)kv->max_rows)
        return cf_fail(err, CF_EINPUT,
                       "KV forward: %d sequences x %d tokens, expected 1 .. %d sequences and at "
                       "most %d rows", n_active, n_new, kv->n_seq, kv->max_rows);
    if (kv->len + n_new > kv->max_len)
        return cf_fail(err, CF_EINPUT,
                       "KV forward: %d cached + %d new positions exceed the model's context of "
                       "%d; cut the input to its last %d tokens", kv->len, n_new, kv->max_len,
                       kv->max_len);
    const size_t R = (size_t)n_active * n_new;
    for (size_t r = 0; r < R; r++)
        if (tokens[r] < 0 || tokens[r] >= c->vocab_size)
            return cf_fail(err, CF_EINPUT, "KV forward: token %zu of sequence %zu is outside the "
                           "vocabulary [0, %d)", r % n_new, r / n_new, c->vocab_size);

    const gpt_params *w = &m->params;
    const int Ci = c->channels, NH = c->num_heads, Vp = c->padded_vocab_size;
    const size_t C = (size_t)Ci, L = (size_t)c->num_layers, pos0 = (size_t)kv->len;
    const size_t layer_stride = (size_t)kv->n_seq * kv->seq_stride;

    GPT_OMP(omp parallel for schedule(static) if (R * C >= GPT_PAR_MIN))
    for (size_t r = 0; r < R; r++) {
        const float *te = w->wte + (size_t)tokens[r] * C;
        const float *pe = w->wpe + (pos0 + r % (size_t)n_new) * C;
        for (size_t i = 0; i < C; i++) kv->x[r * C + i] = te[i] + pe[i];
    }
    if (c->n_features)
        gpt__feat_forward(kv->x, kv->xh, feats, w->xw1, w->xb1, w->xw2, R, c->n_features,
                          c->feat_hidden, Ci);
    for (size_t l = 0; l < L; l++) {
        float *kc = kv->k + l * layer_stride, *vc = kv->v + l * layer_stride;
        gpt__layernorm_forward(kv->ln, NULL, NULL, kv->x, w->ln1w + l * C, w->ln1b + l * C, R,
                               Ci);
        gpt__matmul_forward(kv->qkv, kv->ln, w->qkvw + l * 3 * C * C, w->qkvb + l * 3 * C, R,
                            Ci, 3 * Ci);
        for (size_t r = 0; r < R; r++) {
            size_t s = r / (size_t)n_new, pos = pos0 + r % (size_t)n_new;
            memcpy(kc + s * kv->seq_stride + pos * C, kv->qkv + r * 3 * C + C, C * sizeof(float));
            memcpy(vc + s * kv->seq_stride + pos * C, kv->qkv + r * 3 * C + 2 * C,
                   C * sizeof(float));
        }
        gpt__attention_cached_forward(kv->atty, kv->qkv, 3 * Ci, kc, vc, kv->seq_stride, n_active,
                                      n_new, (int)pos0, kv->att_scratch, kv->num_threads, Ci, NH);
        gpt__matmul_forward(kv->branch, kv->atty, w->attprojw + l * C * C, w->attprojb + l * C, R,
                            Ci, Ci);
        gpt__residual_dropout_forward(kv->x, kv->x, kv->branch, 0, 0.0f, 0, R * C);
        gpt__layernorm_forward(kv->ln, NULL, NULL, kv->x, w->ln2w + l * C, w->ln2b + l * C, R,
                               Ci);
        gpt__matmul_forward(kv->fch, kv->ln, w->fcw + l * 4 * C * C, w->fcb + l * 4 * C, R, Ci,
                            4 * Ci);
        gpt__gelu_forward(kv->fch, kv->fch, R * 4 * C);
        gpt__matmul_forward(kv->branch, kv->fch, w->fcprojw + l * 4 * C * C, w->fcprojb + l * C,
                            R, 4 * Ci, Ci);
        gpt__residual_dropout_forward(kv->x, kv->x, kv->branch, 0, 0.0f, 0, R * C);
    }
    gpt__layernorm_forward(kv->lnf, NULL, NULL, kv->x, w->lnfw, w->lnfb, R, Ci);
    if (logits_mode == GPT_LOGITS_ALL) {
        gpt__matmul_forward(kv->logits, kv->lnf, w->wte, NULL, R, Ci, Vp);
    } else if (logits_mode == GPT_LOGITS_LAST) {
        /* Only each sequence's last row: gather those rows, one matrix product. */
        for (int s = 0; s < n_active; s++)
            memcpy(kv->branch + (size_t)s * C, kv->lnf + ((size_t)s * n_new + n_new - 1) * C,
                   C * sizeof(float));
        gpt__matmul_forward(kv->logits, kv->branch, w->wte, NULL, (size_t)n_active, Ci, Vp);
    }
    kv->len += n_new;
    return CF_OK;
}

void gpt_kv_broadcast(const gpt_model *m, gpt_kv_cache *kv) {
    size_t L = (size_t)m->config.num_layers, layer_stride = (size_t)kv->n_seq * kv->seq_stride;
    size_t bytes = (size_t)kv->len * (size_t)m->config.channels * sizeof(float);
    for (size_t l = 0; l < L; l++)
        for (int s = 1; s < kv->n_seq; s++) {
            memcpy(kv->k + l * layer_stride + (size_t)s * kv->seq_stride, kv->k + l * layer_stride,
                   bytes);
            memcpy(kv->v + l * layer_stride + (size_t)s * kv->seq_stride, kv->v + l * layer_stride,
                   bytes);
        }
}

/* ------------------------------------------------------------------------------------------
 * sampling */

/* The k-th largest of x[0, n) (k >= 1); x is reordered. Hoare-style selection. */
static float kth_largest(float *x, int n, int k) {
    int lo = 0, hi = n - 1, want = k - 1;
    while (lo < hi) {
        float pivot = x[lo + (hi - lo) / 2];
        int i = lo, j = hi;
        while (i <= j) {
            while (x[i] > pivot) i++;
            while (x[j] < pivot) j--;
            if (i <= j) {
                float t = x[i];
                x[i] = x[j];
                x[j] = t;
                i++;
                j--;
            }
        }
        if (want <= j) hi = j;
        else if (want >= i) lo = i;
        else break;
    }
    return x[want];
}

int gpt__sample_row(const float *logits, int V, float temperature, int top_k, uint64_t *rng,
                    float *scratch) {
    float cut = -INFINITY;
    if (top_k > 0 && top_k < V) {
        memcpy(scratch, logits, (size_t)V * sizeof(float));
        cut = kth_largest(scratch, V, top_k);
    }
    float mx = -INFINITY;
    for (int i = 0; i < V; i++)
        if (logits[i] >= cut && logits[i] > mx) mx = logits[i];
    double sum = 0.0;
    for (int i = 0; i < V; i++) {
        scratch[i] = logits[i] >= cut ? expf((logits[i] - mx) / temperature) : 0.0f;
        sum += scratch[i];
    }
    double u = gpt__uniform(rng) * sum, acc = 0.0;
    int last = 0;
    for (int i = 0; i < V; i++) {
        if (scratch[i] <= 0.0f) continue;
        acc += scratch[i];
        last = i;
        if (u < acc) return i;
    }
    return last; /* rounding left u at the very top: the last kept id */
}

int gpt_sample(const gpt_model *m, gpt_kv_cache *kv, const int *prompt, int prompt_len,
               int max_new, const gpt_sample_config *sc, int *out, cf_err *err) {
    int rc = kv_matches(m, kv, err);
    if (rc) return rc;
    const gpt_config *c = &m->config;
    if (prompt_len < 1 || max_new < 1 || prompt_len + max_new - 1 > c->max_seq_len)
        return cf_fail(err, CF_EINPUT,
                       "sampling: prompt of %d tokens and %d new ones, expected a prompt of at "
                       "least 1 and prompt + new - 1 <= %d (the context); cut the prompt to its "
                       "last tokens", prompt_len, max_new, c->max_seq_len);
    if (!(sc->temperature > 0.0f) || sc->top_k < 0)
        return cf_fail(err, CF_EINPUT, "sampling: temperature must be > 0 and top-k >= 0");
    const int N = kv->n_seq, V = c->vocab_size, Vp = c->padded_vocab_size;
    uint64_t *rng = malloc((size_t)N * sizeof(uint64_t));
    int *feed = malloc((size_t)N * sizeof(int));
    unsigned char *alive = malloc((size_t)N);
    float *scratch = malloc((size_t)V * sizeof(float));
    if (!rng || !feed || !alive || !scratch) {
        rc = cf_fail(err, CF_EINTERNAL, "out of memory for sampling state");
        goto out;
    }
    for (int s = 0; s < N; s++) rng[s] = gpt__mix64(sc->seed ^ gpt__mix64((uint64_t)s + 1));
    for (size_t i = 0; i < (size_t)N * max_new; i++) out[i] = -1;

    gpt_kv_reset(kv);
    rc = gpt_kv_forward(m, kv, prompt, 1, prompt_len, GPT_LOGITS_LAST, err);
    if (rc) goto out;
    gpt_kv_broadcast(m, kv);
    int live = 0;
    for (int s = 0; s < N; s++) {
        /* All samples share the prompt's logits, in row 0. */
        int tok = gpt__sample_row(kv->logits, V, sc->temperature, sc->top_k, &rng[s], scratch);
        out[(size_t)s * max_new] = tok;
        feed[s] = tok;
        alive[s] = tok != sc->stop_token;
        live += alive[s];
    }
    for (int i = 1; i < max_new && live > 0; i++) {
        /* Stopped sequences are still fed (their stop token) to keep the batch in lockstep;
         * what they produce is ignored. */
        rc = gpt_kv_forward(m, kv, feed, N, 1, GPT_LOGITS_LAST, err);
        if (rc) goto out;
        live = 0;
        for (int s = 0; s < N; s++) {
            if (!alive[s]) continue;
            int tok = gpt__sample_row(kv->logits + (size_t)s * Vp, V, sc->temperature,
                                      sc->top_k, &rng[s], scratch);
            out[(size_t)s * max_new + i] = tok;
            feed[s] = tok;
            alive[s] = tok != sc->stop_token;
            live += alive[s];
        }
    }
out:
    CF_FREE_ALL(rng, feed, alive, scratch);
    return rc;
}

int gpt_next_token_probs(const gpt_model *m, gpt_kv_cache *kv, const int *prompt,
                         int prompt_len, float *probs, cf_err *err) {
    return gpt_next_token_probs_x(m, kv, prompt, NULL, prompt_len, probs, err);
}

int gpt_next_token_probs_x(const gpt_model *m, gpt_kv_cache *kv, const int *prompt, const float *feats,
                           int prompt_len, float *probs, cf_err *err) {
    gpt_kv_reset(kv);
    int rc = gpt_kv_forward_x(m, kv, prompt, feats, 1, prompt_len, GPT_LOGITS_LAST, err);
    if (rc) return rc;
    gpt__softmax_row(probs, kv->logits, m->config.vocab_size, 1.0f);
    return CF_OK;
}

int gpt_embed(const gpt_model *m, gpt_kv_cache *kv, const int *tokens, int len, float *emb,
              cf_err *err) {
    return gpt_embed_x(m, kv, tokens, NULL, len, emb, err);
}

int gpt_embed_x(const gpt_model *m, gpt_kv_cache *kv, const int *tokens, const float *feats, int len,
                float *emb, cf_err *err) {
    gpt_kv_reset(kv);
    int rc = gpt_kv_forward_x(m, kv, tokens, feats, 1, len, GPT_LOGITS_NONE, err);
    if (rc) return rc;
    memcpy(emb, kv->lnf + (size_t)(len - 1) * m->config.channels,
           (size_t)m->config.channels * sizeof(float));
    return CF_OK;
}
