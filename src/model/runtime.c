/* The model runtime: opening a model with its vocabulary, encoding histories into prompts, and
 * sessions for embeddings and next-token probabilities (sampling is in runtime_sample.c).
 *
 * The encoder runs the timeline encoder of src/timeline on a one-subject "view" store: a store
 * struct whose code dictionary is the real one (or one built from strings for FHIR data) and
 * whose event columns point at just the events a predictor may see. So the tokens match
 * training exactly, and events after the prediction time are never handed to the encoder. */
#include "model/runtime.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/bundle.h"
#include "timeline/timeline_codes.h"

#include <cblas.h>

#ifdef _OPENMP
#include <omp.h>
#endif

/* ------------------------------------------------------------------ model */

int rt_open(rt_model *rm, const char *model_path, const char *vocab_path, cf_err *err) {
    memset(rm, 0, sizeof *rm);
    model_bundle b;
    int rc = bundle_open(&b, model_path, err);
    if (rc) return rc;
    rc = rt_open_bundle(rm, &b, vocab_path, err);
    bundle_close(&b);
    return rc;
}

int rt_open_bundle(rt_model *rm, const model_bundle *b, const char *vocab_path, cf_err *err) {
    memset(rm, 0, sizeof *rm);
    char cp[4400], vp[4400];
    int rc0 = bundle_part_path(b, BUNDLE_CHECKPOINT, cp, sizeof cp, err);
    if (!rc0 && !vocab_path && !(rc0 = bundle_part_path(b, BUNDLE_VOCAB, vp, sizeof vp, err))) vocab_path = vp;
    if (rc0) return rc0;
    const char *model_path = cp;
    /* the checkpoint first, so a wrong path is named as such rather than as a missing vocabulary */
    FILE *f = fopen(model_path, "rb");
    if (!f) return cf_fail_errno(err, CF_EINPUT, "%s: cannot read the model checkpoint", model_path);
    fclose(f);
    int rc = vocab_load(&rm->v, vocab_path, err);
    if (rc) {
        memset(rm, 0, sizeof *rm);
        return rc;
    }
    if ((rc = gpt_load(&rm->m, model_path, rm->v.hash, NULL, err))) {
        vocab_free(&rm->v);
        memset(rm, 0, sizeof *rm);
        return rc;
    }
    if (rm->m.config.n_features && rm->m.config.n_features != TIMELINE_N_FEATURES) {
        rc = cf_fail(err, CF_EINPUT, "%s takes %d continuous inputs per token but this clinfm makes %d; retrain it with "
                     "this clinfm", model_path, rm->m.config.n_features, TIMELINE_N_FEATURES);
        goto fail;
    }
    if ((uint32_t)rm->m.config.vocab_size != rm->v.n_tokens) {
        rc = cf_fail(err, CF_EINPUT, "%s: the model has %d tokens but its vocabulary %s has %u; retrain", model_path,
                     rm->m.config.vocab_size, vocab_path, rm->v.n_tokens);
        goto fail;
    }
    rm->gap_lower = malloc((size_t)rm->v.n_tokens * sizeof *rm->gap_lower);
    rm->path = strdup(b->path);
    if (!rm->gap_lower || !rm->path) {
        rc = cf_fail(err, CF_EINTERNAL, "out of memory");
        goto fail;
    }
    for (uint32_t t = 0; t < rm->v.n_tokens; t++)
        rm->gap_lower[t] = rm->v.kind[t] == VOCAB_KIND_GAP ? rm->v.aux0[t] : -1;
    char hex[2 * VOCAB_HASH_BYTES + 1];
    vocab_hash_hex(&rm->v, hex);
    snprintf(rm->version, sizeof rm->version, "step %llu, vocab %.8s", (unsigned long long)gpt_params_step(&rm->m), hex);
    return CF_OK;
fail:
    rt_close(rm);
    return rc;
}

void rt_close(rt_model *rm) {
    if (rm->m.param_memory) gpt_free(&rm->m);
    vocab_free(&rm->v);
    free(rm->gap_lower);
    free(rm->path);
    memset(rm, 0, sizeof *rm);
}

/* ------------------------------------------------------------------ encoder */

struct rt_encoder {
    const rt_model *rm;
    const store *src;      /* store-backed encoders: whose events rt_encode_history reads */
    store view;            /* what the timeline encoder reads; it keeps this address */
    timeline_encoder *enc;
    uint64_t start[2];
    int64_t sid;
    uint64_t *own_offsets; /* dictionaries built from strings */
    char *own_heap;
    rt_events ev;          /* scratch: the filtered history of rt_encode_history */
    timeline_seq seq;
};

int rt_events_reserve(rt_events *ev, size_t n, cf_err *err) {
    if (n <= ev->cap) return CF_OK;
    size_t nc = ev->cap ? ev->cap : 1024;
    while (nc < n) nc *= 2;
    uint32_t *c = realloc(ev->code, nc * sizeof *c);
    if (c) ev->code = c;
    int64_t *t = realloc(ev->time, nc * sizeof *t);
    if (t) ev->time = t;
    float *x = realloc(ev->num, nc * sizeof *x);
    if (x) ev->num = x;
    if (!c || !t || !x) return cf_fail(err, CF_EINTERNAL, "out of memory");
    ev->cap = nc;
    return CF_OK;
}

void rt_events_free(rt_events *ev) {
    CF_FREE_ALL(ev->code, ev->time, ev->num);
    memset(ev, 0, sizeof *ev);
}

void rt_prompt_free(rt_prompt *p) {
    CF_FREE_ALL(p->tokens, p->times, p->feats);
    memset(p, 0, sizeof *p);
}

void rt_encoder_free(rt_encoder *e) {
    if (!e) return;
    timeline_encoder_free(e->enc);
    timeline_seq_free(&e->seq);
    rt_events_free(&e->ev);
    CF_FREE_ALL(e->own_offsets, e->own_heap, e);
}

static int encoder_finish(rt_encoder *e, cf_err *err) {
    e->view.n_subjects = 1;
    e->view.subject_id = &e->sid;
    e->view.subject_start = e->start;
    timeline_seq_init(&e->seq);
    return timeline_encoder_new(&e->enc, &e->rm->v, &e->view, err);
}

int rt_encoder_new_store(rt_encoder **out, const rt_model *rm, const store *s, cf_err *err) {
    *out = NULL;
    rt_encoder *e = calloc(1, sizeof *e);
    if (!e) return cf_fail(err, CF_EINTERNAL, "out of memory");
    e->rm = rm;
    e->src = s;
    e->view = *s; /* the code dictionary; event columns are replaced per call */
    int rc = encoder_finish(e, err);
    if (rc) {
        rt_encoder_free(e);
        return rc;
    }
    *out = e;
    return CF_OK;
}

int rt_encoder_new_codes(rt_encoder **out, const rt_model *rm, const char *const *codes, size_t n_codes,
                         cf_err *err) {
    *out = NULL;
    rt_encoder *e = calloc(1, sizeof *e);
    if (!e) return cf_fail(err, CF_EINTERNAL, "out of memory");
    e->rm = rm;
    size_t heap = 1;
    for (size_t i = 0; i < n_codes; i++) heap += strlen(codes[i]) + 1;
    e->own_offsets = malloc((n_codes + 1) * sizeof *e->own_offsets);
    e->own_heap = malloc(heap);
    if (!e->own_offsets || !e->own_heap) {
        rt_encoder_free(e);
        return cf_fail(err, CF_EINTERNAL, "out of memory");
    }
    size_t o = 0;
    for (size_t i = 0; i < n_codes; i++) {
        size_t l = strlen(codes[i]);
        e->own_offsets[i] = o;
        memcpy(e->own_heap + o, codes[i], l + 1);
        o += l + 1;
    }
    e->own_offsets[n_codes] = o;
    e->own_heap[o] = '\0';
    e->view.n_codes = n_codes;
    e->view.code_offset = e->own_offsets;
    e->view.code_heap = e->own_heap;
    int rc = encoder_finish(e, err);
    if (rc) {
        rt_encoder_free(e);
        return rc;
    }
    *out = e;
    return CF_OK;
}

static int prompt_reserve(rt_prompt *p, int n) {
    if (n <= p->cap) return 0;
    int nc = p->cap ? p->cap : 256;
    while (nc < n) nc *= 2;
    int *t = realloc(p->tokens, (size_t)nc * sizeof *t);
    if (!t) return -1;
    p->tokens = t;
    int64_t *tm = realloc(p->times, (size_t)nc * sizeof *tm);
    if (!tm) return -1;
    p->times = tm;
    float *f = realloc(p->feats, (size_t)nc * TIMELINE_N_FEATURES * sizeof *f);
    if (!f) return -1;
    p->feats = f;
    p->cap = nc;
    return 0;
}

/* The event time before the last one of q's first n tokens (TIME_NULL when none). */
static int64_t prev_event(const timeline_seq *q, size_t n) {
    if (n <= q->n_prefix) return TIME_NULL;
    int64_t last = q->times[n - 1];
    for (size_t j = n - 1; j-- > q->n_prefix;)
        if (q->times[j] != last) return q->times[j];
    return TIME_NULL;
}

/* The encoded history as a prompt: without its closing [EOT], cut to its last max_len tokens
 * behind a fresh prefix (slot values as of the cut, age and year at the cut's time), as
 * timeline_shard_window builds training windows. The cut moves forward to the next timestamp
 * so one time's tokens stay together; from_time (TIME_NULL: none) drops earlier stream tokens
 * first. */
static int prompt_cut(const vocab *v, const timeline_seq *q, size_t n, int max_len, int64_t from_time,
                      const float *all, rt_prompt *out, cf_err *err);

static int prompt_from_seq(const vocab *v, const timeline_seq *q, int max_len, int64_t from_time, rt_prompt *out,
                           cf_err *err) {
    size_t n = q->len, P = q->n_prefix;
    if (n > P && q->tokens[n - 1] == v->special[VOCAB_SP_EOT]) n--;
    int fresh = (int)v->n_slots + 2;
    if (max_len < fresh + 1)
        return cf_fail(err, CF_EINPUT, "a prompt of %d tokens cannot hold the %d-token static prefix and an event",
                       max_len, fresh);
    out->birth = q->birth;
    out->history_len = n;
    out->last_time = n > P ? q->times[n - 1] : TIME_NULL;
    out->cut_time = TIME_NULL;
    out->record_start = q->times[0]; /* the prefix carries the first event's time */
    out->prev_time = prev_event(q, n);
    /* Inputs over the whole history first, so a cut window keeps its true gaps and clock. */
    if (prompt_reserve(out, (int)n + fresh + 1)) return cf_fail(err, CF_EINTERNAL, "out of memory");
    float *all = malloc(((size_t)n + 1) * TIMELINE_N_FEATURES * sizeof *all);
    if (!all) return cf_fail(err, CF_EINTERNAL, "out of memory");
    timeline_features(all, q->times, q->values, n, P, q->times[0], TIME_NULL);
    int rc = prompt_cut(v, q, n, max_len, from_time, all, out, err);
    free(all);
    return rc;
}

static int prompt_cut(const vocab *v, const timeline_seq *q, size_t n, int max_len, int64_t from_time,
                      const float *all, rt_prompt *out, cf_err *err) {
    const size_t P = q->n_prefix, F = TIMELINE_N_FEATURES;
    const int fresh = (int)v->n_slots + 2;
    size_t from = P;
    if (from_time != TIME_NULL)
        while (from < n && (q->times[from] == TIME_NULL || q->times[from] < from_time)) from++;
    if (from == P && n <= (size_t)max_len) {
        if (prompt_reserve(out, (int)n + 1)) return cf_fail(err, CF_EINTERNAL, "out of memory");
        for (size_t i = 0; i < n; i++) {
            out->tokens[i] = (int)q->tokens[i];
            out->times[i] = q->times[i];
        }
        memcpy(out->feats, all, n * F * sizeof *all);
        out->len = (int)n;
        out->n_prefix = (int)P;
        return CF_OK;
    }
    size_t keep_max = (size_t)(max_len - fresh), cut = from;
    if (n - from > keep_max) {
        size_t c = n - keep_max;
        while (c < n && q->times[c] == q->times[c - 1]) c++;
        cut = c < n ? c : n - keep_max; /* one time alone overflows: cut inside it */
    }
    size_t keep = n - cut;
    out->cut_time = cut < n ? q->times[cut] : TIME_NULL;
    uint32_t slots[VOCAB_MAX_SLOTS], pre[VOCAB_MAX_SLOTS + 2];
    for (uint32_t j = 0; j < v->n_slots; j++) slots[j] = q->tokens[j];
    for (size_t g = P; g < cut; g++) {
        uint32_t t = q->tokens[g];
        if (t < v->n_tokens && v->slot_of[t] >= 0) slots[v->slot_of[t]] = t;
    }
    uint32_t np = timeline_prefix(v, slots, q->birth, cut < n ? q->times[cut] : out->last_time, pre);
    if (prompt_reserve(out, (int)(np + keep) + 1)) return cf_fail(err, CF_EINTERNAL, "out of memory");
    for (uint32_t j = 0; j < np; j++) {
        out->tokens[j] = (int)pre[j];
        out->times[j] = cut < n ? q->times[cut] : out->last_time;
        timeline_token_features(out->feats + j * F, 1, TIME_NULL, TIME_NULL, TIME_NULL, NAN);
    }
    for (size_t i = 0; i < keep; i++) {
        out->tokens[np + i] = (int)q->tokens[cut + i];
        out->times[np + i] = q->times[cut + i];
    }
    memcpy(out->feats + (size_t)np * F, all + cut * F, keep * F * sizeof *all);
    out->len = (int)(np + keep);
    out->n_prefix = (int)np;
    return CF_OK;
}

int rt_encode_events(rt_encoder *e, const uint32_t *code, const int64_t *time, const float *numeric, size_t n,
                     int max_len, rt_prompt *out, cf_err *err) {
    return rt_encode_events_from(e, code, time, numeric, n, max_len, TIME_NULL, out, err);
}

int rt_encode_events_from(rt_encoder *e, const uint32_t *code, const int64_t *time, const float *numeric, size_t n,
                          int max_len, int64_t from_time, rt_prompt *out, cf_err *err) {
    /* max_len may exceed the model's context: end-to-end fine-tuning can run a longer copy */
    if (max_len <= 0) max_len = e->rm->m.config.max_seq_len;
    for (size_t i = 0; i < n; i++)
        if (code[i] >= e->view.n_codes)
            return cf_fail(err, CF_EINTERNAL, "event %zu has a code outside the encoder's dictionary", i);
    e->view.code = code;
    e->view.time = time;
    e->view.numeric = numeric;
    e->view.n_events = n;
    e->start[0] = 0;
    e->start[1] = n;
    e->sid = 0;
    int rc = timeline_encode(e->enc, 0, &e->seq, err);
    e->view.code = NULL;
    e->view.time = NULL;
    e->view.numeric = NULL;
    if (rc) return rc;
    return prompt_from_seq(&e->rm->v, &e->seq, max_len, from_time, out, err);
}

int rt_encode_history(rt_encoder *e, uint64_t k, uint64_t history_end, const uint8_t *input_ok, int max_len,
                      rt_prompt *out, cf_err *err) {
    const store *s = e->src;
    if (!s) return cf_fail(err, CF_EINTERNAL, "rt_encode_history needs a store-backed encoder");
    if (k >= s->n_subjects) return cf_fail(err, CF_EINTERNAL, "subject index %llu out of range", (unsigned long long)k);
    uint64_t a = s->subject_start[k], b = s->subject_start[k + 1];
    if (history_end < a || history_end > b)
        return cf_fail(err, CF_EINTERNAL, "history end of subject index %llu is outside its events",
                       (unsigned long long)k);
    size_t n = (size_t)(history_end - a);
    rt_events *ev = &e->ev;
    int rc = rt_events_reserve(ev, n, err);
    if (rc) return rc;
    size_t m = 0;
    for (uint64_t i = a; i < history_end; i++) {
        uint32_t c = s->code[i];
        if (input_ok && !input_ok[c]) continue;
        ev->code[m] = c;
        ev->time[m] = s->time[i];
        ev->num[m++] = s->numeric[i];
    }
    rc = rt_encode_events(e, ev->code, ev->time, ev->num, m, max_len, out, err);
    if (!rc) e->seq.subject_id = s->subject_id[k];
    return rc;
}

/* ------------------------------------------------------------------ sessions */

int rt_session_init(rt_session *ss, const rt_model *rm, int n_seq, cf_err *err) {
    memset(ss, 0, sizeof *ss);
    ss->rm = rm;
    int rc = gpt_kv_init(&ss->kv, &rm->m, n_seq, err);
    if (rc) return rc;
    ss->n_seq = n_seq;
    ss->max_threads = ss->kv.num_threads;
    ss->probs = malloc((size_t)rm->m.config.padded_vocab_size * sizeof *ss->probs);
    ss->feed = malloc((size_t)ss->kv.max_rows * sizeof *ss->feed);
    ss->ref = malloc((size_t)rm->m.config.max_seq_len * sizeof *ss->ref);
    ss->ref_feat = malloc((size_t)rm->m.config.max_seq_len * TIMELINE_N_FEATURES * sizeof *ss->ref_feat);
    ss->ffeed = malloc((size_t)ss->kv.max_rows * TIMELINE_N_FEATURES * sizeof *ss->ffeed);
    if (!ss->probs || !ss->feed || !ss->ref || !ss->ref_feat || !ss->ffeed) {
        rt_session_free(ss);
        return cf_fail(err, CF_EINTERNAL, "out of memory");
    }
    return CF_OK;
}

void rt_session_threads(rt_session *ss, int n) {
    if (n < 1) n = 1;
#ifdef _OPENMP
    omp_set_num_threads(n);
#endif
    /* OpenBLAS keeps its own count: left at every core, it splits each small product of a
     * one-prompt forward across threads that then spin-yield to each other under load */
    openblas_set_num_threads(n);
    /* the attention scratch was sized for the threads at init: never use more */
    ss->kv.num_threads = n < ss->max_threads ? n : ss->max_threads;
}

void rt_session_free(rt_session *ss) {
    if (ss->kv.memory) gpt_kv_free(&ss->kv);
    CF_FREE_ALL(ss->probs, ss->hist, ss->htime, ss->feed, ss->ffeed, ss->hfeat, ss->ref,
                ss->ref_feat, ss->bmem, ss->btok, ss->bpos);
    memset(ss, 0, sizeof *ss);
}

static int check_prompt(const rt_session *ss, const rt_prompt *p, int room, cf_err *err) {
    int T = ss->rm->m.config.max_seq_len;
    if (p->len < 1 || p->len + room > T)
        return cf_fail(err, CF_EINTERNAL, "a prompt of %d tokens does not fit the context of %d (%d kept free)",
                       p->len, T, room);
    if (ss->rm->m.config.n_features && !p->feats)
        return cf_fail(err, CF_EINTERNAL, "a prompt without continuous inputs for a model that takes them");
    return CF_OK;
}

int rt_next_probs(rt_session *ss, const rt_prompt *p, float *probs, cf_err *err) {
    int rc = check_prompt(ss, p, 0, err);
    if (rc) return rc;
    ss->ref_len = 0;
    return gpt_next_token_probs_x(&ss->rm->m, &ss->kv, p->tokens, rt_prompt_feats(ss->rm, p, 0), p->len, probs, err);
}

int rt_embed(rt_session *ss, const rt_prompt *p, float *emb, cf_err *err) {
    int rc = check_prompt(ss, p, 0, err);
    if (rc) return rc;
    ss->ref_len = 0;
    return gpt_embed_x(&ss->rm->m, &ss->kv, p->tokens, rt_prompt_feats(ss->rm, p, 0), p->len, emb, err);
}

/* Copies positions [from, to) of sequence src's keys and values to sequence dst, every layer. */
static void kv_copy(rt_session *ss, int dst, int src, int from, int to) {
    if (to <= from) return;
    const gpt_kv_cache *kv = &ss->kv;
    size_t C = (size_t)kv->channels, layer = (size_t)kv->n_seq * kv->seq_stride;
    for (int l = 0; l < kv->num_layers; l++) {
        size_t base = (size_t)l * layer + (size_t)from * C;
        memcpy(kv->k + base + (size_t)dst * kv->seq_stride, kv->k + base + (size_t)src * kv->seq_stride,
               (size_t)(to - from) * C * sizeof(float));
        memcpy(kv->v + base + (size_t)dst * kv->seq_stride, kv->v + base + (size_t)src * kv->seq_stride,
               (size_t)(to - from) * C * sizeof(float));
    }
}

int rt_same_as_ref(const rt_session *ss, const rt_prompt *p) {
    const int F = ss->rm->m.config.n_features;
    int q = 0;
    while (q < p->len && q < ss->ref_len && p->tokens[q] == ss->ref[q] &&
           (!F || !memcmp(p->feats + (size_t)q * F, ss->ref_feat + (size_t)q * F, (size_t)F * sizeof(float))))
        q++;
    return q;
}

int rt_embed_ref(rt_session *ss, const rt_prompt *p, float *emb, cf_err *err) {
    if (ss->n_seq < 2) return cf_fail(err, CF_EINTERNAL, "a reference prompt needs a session of 2 sequences");
    int rc = rt_embed(ss, p, emb, err);
    if (rc) return rc;
    kv_copy(ss, 1, 0, 0, p->len);
    memcpy(ss->ref, p->tokens, (size_t)p->len * sizeof *ss->ref);
    if (p->feats) memcpy(ss->ref_feat, p->feats, (size_t)p->len * TIMELINE_N_FEATURES * sizeof *ss->ref_feat);
    ss->ref_len = p->len;
    ss->dirty_from = p->len;
    return CF_OK;
}

int rt_embed_near(rt_session *ss, const rt_prompt *p, float *emb, cf_err *err) {
    int rc = check_prompt(ss, p, 0, err);
    if (rc) return rc;
    int q = rt_same_as_ref(ss, p);
    if (q >= p->len) q = p->len - 1; /* the last position must run to give its hidden state */
    if (q < 1 || !ss->ref_len) {
        int keep = ss->ref_len;
        rc = gpt_embed_x(&ss->rm->m, &ss->kv, p->tokens, rt_prompt_feats(ss->rm, p, 0), p->len, emb, err);
        ss->ref_len = keep;
        ss->dirty_from = 0;
        return rc;
    }
    /* sequence 0 = the reference up to q, then this prompt's own tokens */
    if (ss->dirty_from < q) kv_copy(ss, 0, 1, ss->dirty_from, q);
    if (q < ss->dirty_from) ss->dirty_from = q;
    ss->kv.len = q;
    if ((rc = gpt_kv_forward_x(&ss->rm->m, &ss->kv, p->tokens + q, rt_prompt_feats(ss->rm, p, q), 1, p->len - q,
                               GPT_LOGITS_NONE, err)))
        return rc;
    memcpy(emb, ss->kv.lnf + (size_t)(p->len - q - 1) * ss->rm->m.config.channels,
           (size_t)ss->rm->m.config.channels * sizeof(float));
    return CF_OK;
}
