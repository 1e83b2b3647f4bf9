/* Batched embeddings of prompts that share a first part with the session's reference prompt:
 * the occlusion variants of one patient (rt_embed_near_batch, runtime.h).
 *
 * rt_embed_near runs one variant at a time: the rows from its first changed token on go
 * through the network as one small batch, and attention is one dot product per (row, head,
 * key). With a small model nearly all of a card's time went there (the attention loop alone
 * was about 70% of a 58-variant card). Here all variants of a call advance together, and
 * their rows are "ragged": sequence i contributes only its own rows [q_i, len_i), where q_i is
 * its first position that differs from the reference, so there is no padding and nothing is
 * recomputed that the reference already has. Every matrix product (QKV, projections, MLP) runs
 * once over all the rows of the call, and attention is two matrix products per (sequence,
 * head): the reference's cached keys and values for positions [0, q_i) (KV sequence 1, kept
 * by rt_embed_ref) and the variant's own new keys and values, read in place from the QKV rows,
 * so no cache is copied and the batch size is not bounded by the session's sequences.
 *
 * Memory: one block per session, laid out explicitly (as gpt_kv_cache) on first use for a row
 * budget, and reused by every later call: no allocation per request. Calls with more rows than
 * the budget are cut into chunks of whole prompts. The result equals rt_embed_near up to float
 * rounding (summation order in the matrix products and the softmax); tests compare them. */
#include "model/runtime.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/gpt_feat.h"
#include "model/gpt_kernels.h"

/* Activation floats per session for the batch path; at least one full context is always
 * allowed. 4M floats (16 MB) is 5,461 rows at d_model 64: a whole card's variants in a few
 * calls. */
#define RT_BATCH_FLOATS ((size_t)4 << 20)

static float *alloc_floats(size_t n) {
    void *p = NULL;
    if (posix_memalign(&p, 64, (n ? n : 1) * sizeof(float)) != 0) return NULL;
    return p;
}

/* Lays out the session's batch scratch on first use. */
static int batch_alloc(rt_session *ss, cf_err *err) {
    if (ss->bmem) return CF_OK;
    const gpt_config *c = &ss->rm->m.config;
    size_t C = (size_t)c->channels, T = (size_t)c->max_seq_len;
    size_t H = (size_t)c->feat_hidden, F = TIMELINE_N_FEATURES;
    size_t per_row = 11 * C + H + F; /* x, ln, qkv (3C), atty, fch (4C), branch, inputs */
    size_t rows = RT_BATCH_FLOATS / per_row;
    if (rows < T) rows = T;
    size_t sizes[9] = {rows * C, rows * C, rows * 3 * C, rows * C, rows * 4 * C, rows * C, T * T, rows * H, rows * F};
    size_t total = 0;
    for (int i = 0; i < 9; i++) total += (sizes[i] + 15) / 16 * 16;
    ss->bmem = alloc_floats(total);
    ss->btok = malloc(rows * sizeof *ss->btok);
    ss->bpos = malloc(rows * sizeof *ss->bpos);
    if (!ss->bmem || !ss->btok || !ss->bpos) {
        CF_FREE_ALL(ss->bmem, ss->btok, ss->bpos);
        ss->bmem = NULL;
        ss->btok = ss->bpos = NULL;
        return cf_fail(err, CF_EINTERNAL, "out of memory for batched embeddings");
    }
    float **ptrs[9] = {&ss->bx, &ss->bln, &ss->bqkv, &ss->batty, &ss->bfch, &ss->bbranch, &ss->bscore, &ss->bxh,
                       &ss->bfeat};
    float *p = ss->bmem;
    for (int i = 0; i < 9; i++) {
        *ptrs[i] = p;
        p += (sizes[i] + 15) / 16 * 16;
    }
    ss->brows = (int)rows;
    return CF_OK;
}

/* row[0, vis) becomes its softmax, row[vis, len) zero (the causal mask). Vectorised: the
 * scores of a card's variants are tens of millions of exponentials. */
GPT_SIMD static void softmax_causal(float *row, int vis, int len) {
    float mx = -INFINITY;
    for (int u = 0; u < vis; u++) mx = row[u] > mx ? row[u] : mx;
    float sum = 0.0f;
    GPT_OMP(omp simd reduction(+ : sum))
    for (int u = 0; u < vis; u++) {
        row[u] = gpt__expf(row[u] - mx);
        sum += row[u];
    }
    float inv = 1.0f / sum;
    GPT_OMP(omp simd)
    for (int u = 0; u < vis; u++) row[u] *= inv;
    for (int u = vis; u < len; u++) row[u] = 0.0f;
}

/* Attention of sequence s's m new rows (positions q .. q+m-1) for one layer: keys and values
 * [0, q) from the reference (KV sequence 1), [q, q+m) from the rows' own QKV. Rows go in tiles
 * of RT_ATT_TILE, each against the keys it can see only, so little of the causal mask's upper
 * triangle is computed and thrown away. */
#define RT_ATT_TILE 64
static void attend(rt_session *ss, size_t l, const float *qkv, float *atty, int q, int m) {
    const gpt_config *c = &ss->rm->m.config;
    const int Ci = c->channels, NH = c->num_heads, hs = Ci / NH;
    const gpt_kv_cache *kv = &ss->kv;
    const size_t layer = l * (size_t)kv->n_seq * kv->seq_stride;
    const float *kref = kv->k + layer + kv->seq_stride, *vref = kv->v + layer + kv->seq_stride;
    const float scale = 1.0f / sqrtf((float)hs);
    float *S = ss->bscore; /* (tile rows, keys seen) */
    for (int t0 = 0; t0 < m; t0 += RT_ATT_TILE) {
        const int tm = m - t0 < RT_ATT_TILE ? m - t0 : RT_ATT_TILE, kn = t0 + tm, len = q + kn;
        const float *qt = qkv + (size_t)t0 * 3 * Ci;
        for (int h = 0; h < NH; h++) {
            const float *Q = qt + h * hs, *Kn = qkv + Ci + h * hs, *Vn = qkv + 2 * Ci + h * hs;
            if (q > 0)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, tm, q, hs, scale, Q, 3 * Ci, kref + h * hs, Ci,
                            0.0f, S, len);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, tm, kn, hs, scale, Q, 3 * Ci, Kn, 3 * Ci, 0.0f,
                        S + q, len);
            for (int t = 0; t < tm; t++) softmax_causal(S + (size_t)t * len, q + t0 + t + 1, len);
            float *O = atty + (size_t)t0 * Ci + h * hs;
            if (q > 0)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, tm, hs, q, 1.0f, S, len, vref + h * hs, Ci,
                            0.0f, O, Ci);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, tm, hs, kn, 1.0f, S + q, len, Vn, 3 * Ci,
                        q > 0 ? 1.0f : 0.0f, O, Ci);
        }
    }
}

/* One chunk: prompts [0, n) with their first changed positions q[], all rows fitting. */
static void forward_chunk(rt_session *ss, const rt_prompt *const *ps, const int *q, int n, float *emb) {
    const gpt_model *gm = &ss->rm->m;
    const gpt_config *c = &gm->config;
    const gpt_params *w = &gm->params;
    const int Ci = c->channels;
    const size_t C = (size_t)Ci, L = (size_t)c->num_layers;
    const int F = c->n_features;
    size_t R = 0;
    for (int i = 0; i < n; i++)
        for (int t = q[i]; t < ps[i]->len; t++) {
            if (F) memcpy(ss->bfeat + R * F, ps[i]->feats + (size_t)t * F, (size_t)F * sizeof(float));
            ss->btok[R] = ps[i]->tokens[t];
            ss->bpos[R++] = t;
        }
    for (size_t r = 0; r < R; r++) {
        const float *te = w->wte + (size_t)ss->btok[r] * C, *pe = w->wpe + (size_t)ss->bpos[r] * C;
        for (size_t j = 0; j < C; j++) ss->bx[r * C + j] = te[j] + pe[j];
    }
    if (F) gpt__feat_forward(ss->bx, ss->bxh, ss->bfeat, w->xw1, w->xb1, w->xw2, R, F, c->feat_hidden, Ci);
    for (size_t l = 0; l < L; l++) {
        gpt__layernorm_forward(ss->bln, NULL, NULL, ss->bx, w->ln1w + l * C, w->ln1b + l * C, R, Ci);
        gpt__matmul_forward(ss->bqkv, ss->bln, w->qkvw + l * 3 * C * C, w->qkvb + l * 3 * C, R, Ci, 3 * Ci);
        size_t r0 = 0;
        for (int i = 0; i < n; i++) {
            int m = ps[i]->len - q[i];
            attend(ss, l, ss->bqkv + r0 * 3 * C, ss->batty + r0 * C, q[i], m);
            r0 += (size_t)m;
        }
        gpt__matmul_forward(ss->bbranch, ss->batty, w->attprojw + l * C * C, w->attprojb + l * C, R, Ci, Ci);
        gpt__residual_dropout_forward(ss->bx, ss->bx, ss->bbranch, 0, 0.0f, 0, R * C);
        gpt__layernorm_forward(ss->bln, NULL, NULL, ss->bx, w->ln2w + l * C, w->ln2b + l * C, R, Ci);
        gpt__matmul_forward(ss->bfch, ss->bln, w->fcw + l * 4 * C * C, w->fcb + l * 4 * C, R, Ci, 4 * Ci);
        gpt__gelu_forward(ss->bfch, ss->bfch, R * 4 * C);
        gpt__matmul_forward(ss->bbranch, ss->bfch, w->fcprojw + l * 4 * C * C, w->fcprojb + l * C, R, 4 * Ci, Ci);
        gpt__residual_dropout_forward(ss->bx, ss->bx, ss->bbranch, 0, 0.0f, 0, R * C);
    }
    /* the embedding is the final LayerNorm of each prompt's last row only */
    size_t r0 = 0;
    for (int i = 0; i < n; i++) {
        r0 += (size_t)(ps[i]->len - q[i]);
        gpt__layernorm_forward(emb + (size_t)i * C, NULL, NULL, ss->bx + (r0 - 1) * C, w->lnfw, w->lnfb, 1, Ci);
    }
}

int rt_embed_near_batch(rt_session *ss, const rt_prompt *const *ps, int n, float *emb, cf_err *err) {
    if (n <= 0) return CF_OK;
    const int T = ss->rm->m.config.max_seq_len;
    const size_t C = (size_t)ss->rm->m.config.channels;
    for (int i = 0; i < n; i++)
        if (ps[i]->len < 1 || ps[i]->len > T)
            return cf_fail(err, CF_EINTERNAL, "a prompt of %d tokens does not fit the context of %d", ps[i]->len, T);
    int rc = batch_alloc(ss, err);
    if (rc) return rc;
    /* first changed positions; at least the last position runs, to give its hidden state */
    int qs[64];
    for (int a = 0; a < n;) {
        int b = a, rows = 0;
        while (b < n && b - a < 64) {
            const rt_prompt *p = ps[b];
            int q = rt_same_as_ref(ss, p);
            if (q >= p->len) q = p->len - 1;
            if (b > a && rows + (p->len - q) > ss->brows) break;
            qs[b - a] = q;
            rows += p->len - q;
            b++;
        }
        forward_chunk(ss, ps + a, qs, b - a, emb + (size_t)a * C);
        a = b;
    }
    return CF_OK;
}
