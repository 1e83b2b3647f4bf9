/* The GPT model: parameter and activation layout, build, forward, backward, AdamW update and
 * checkpoints. See gpt.h for the API and the dimension legend, gpt_kernels.c for the layers
 * and gpt_sample.c for inference from a KV cache.
 *
 * Layout, as in llm.c: one allocation each for parameters, gradients, the two AdamW moments
 * and activations, each with a table of pointers into it, so the optimizer and the checkpoint
 * are loops over flat arrays. Every tensor starts on a 64-byte boundary.
 *
 * Dropout masks are not stored: each training forward takes the next value of a counter, and
 * every dropout site derives a 32-bit key from (seed, counter, site); backward regenerates the
 * same masks from the same keys. Saving the seed and counter therefore saves the RNG state. */
#include "model/gpt.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "model/gpt_feat.h"
#include "model/gpt_kernels.h"
#include "util/atomic_file.h"
#include "util/le.h"

#define ALIGN_FLOATS 16 /* 64 bytes */
#define MAX_THREADS 256
#define MAX_HEAD_SIZE 256

static size_t round_up(size_t n, size_t a) { return (n + a - 1) / a * a; }

static float *alloc_floats(size_t n) {
    void *p = NULL;
    if (n == 0) n = 1;
    if (posix_memalign(&p, 64, round_up(n * sizeof(float), 64)) != 0) return NULL;
    return p;
}

/* ------------------------------------------------------------------------------------------
 * configuration */

int gpt_config_check(const gpt_config *c, cf_err *err) {
    if (c->max_seq_len < 1 || c->max_seq_len > (1 << 20))
        return cf_fail(err, CF_EINPUT, "model config: context %d, expected 1 .. 1048576",
                       c->max_seq_len);
    if (c->vocab_size < 2 || c->vocab_size > (1 << 24))
        return cf_fail(err, CF_EINPUT, "model config: vocabulary size %d, expected 2 .. 16777216",
                       c->vocab_size);
    if (c->padded_vocab_size < c->vocab_size || c->padded_vocab_size > (1 << 24))
        return cf_fail(err, CF_EINPUT,
                       "model config: padded vocabulary %d, expected at least the vocabulary (%d)",
                       c->padded_vocab_size, c->vocab_size);
    if (c->num_layers < 1 || c->num_layers > 1024)
        return cf_fail(err, CF_EINPUT, "model config: %d layers, expected 1 .. 1024",
                       c->num_layers);
    if (c->channels < 1 || c->channels > 65536 || c->num_heads < 1 ||
        c->channels % c->num_heads != 0)
        return cf_fail(err, CF_EINPUT,
                       "model config: d_model %d and %d heads, expected d_model a multiple of "
                       "the head count", c->channels, c->num_heads);
    if (c->channels / c->num_heads > MAX_HEAD_SIZE)
        return cf_fail(err, CF_EINPUT,
                       "model config: head size %d (d_model / heads), expected at most %d; "
                       "use more heads", c->channels / c->num_heads, MAX_HEAD_SIZE);
    if (!(c->dropout >= 0.0f && c->dropout < 1.0f))
        return cf_fail(err, CF_EINPUT, "model config: dropout must be in [0, 1)");
    if (c->n_features < 0 || c->n_features > GPT_MAX_FEATURES ||
        (c->n_features > 0 && (c->feat_hidden < 1 || c->feat_hidden > 4 * c->channels)) ||
        (c->n_features == 0 && c->feat_hidden != 0))
        return cf_fail(err, CF_EINPUT,
                       "model config: %d continuous inputs with hidden width %d, expected 0 .. %d "
                       "inputs and a width of 1 .. 4 x d_model when there are any (0 otherwise)",
                       c->n_features, c->feat_hidden, GPT_MAX_FEATURES);
    if (c->num_outputs < 0 || c->num_outputs > GPT_MAX_OUTPUTS)
        return cf_fail(err, CF_EINPUT, "model config: %d task heads, expected 0 .. %d",
                       c->num_outputs, GPT_MAX_OUTPUTS);
    if (c->value_head < 0 || c->value_head > 1)
        return cf_fail(err, CF_EINPUT, "model config: value head %d, expected 0 or 1", c->value_head);
    if (c->cls_pool < GPT_POOL_LAST || c->cls_pool > GPT_POOL_VARIABLES ||
        (c->num_outputs > 0 && c->channels > 4096))
        return cf_fail(err, CF_EINPUT, "model config: head pooling %d, expected 0 (last), 1 (mean), "
                       "2 (both), 3 (extremes), 4 (windows), 5 (attention) or 6 (variables), with d_model at "
                       "most 4096 when there are task heads", c->cls_pool);
    if (c->cls_pool == GPT_POOL_VARIABLES && c->cls_slots == 0)
        return cf_fail(err, CF_EINPUT, "model config: head pooling 6 (variables) reads each variable's events "
                       "through a token-to-slot map, but the model has none (0 slots); fine-tune it with "
                       "clinfm eval --ft-pool variables, which chooses the map");
    if (c->cls_pool == GPT_POOL_VARIABLES ? c->cls_slots < 1 || c->cls_slots > GPT_POOL_MAX_SLOTS || c->cls_proj < 1 ||
                                                c->cls_proj > GPT_POOL_MAX_PROJ
                                          : c->cls_slots != 0 || c->cls_proj != 0)
        return cf_fail(err, CF_EINPUT, "model config: %d variable slots of %d channels with head pooling %d, "
                       "expected 1 .. %d slots of 1 .. %d channels with pooling 6 (variables), none otherwise",
                       c->cls_slots, c->cls_proj, c->cls_pool, GPT_POOL_MAX_SLOTS, GPT_POOL_MAX_PROJ);
    if (c->cls_pool == GPT_POOL_WINDOWS && c->n_features <= GPT_POOL_TIME_FEATURE)
        return cf_fail(err, CF_EINPUT, "model config: head pooling 4 (windows) reads each position's "
                       "time from continuous input %d, but the model has %d continuous inputs "
                       "(train it with --inputs)", GPT_POOL_TIME_FEATURE, c->n_features);
    return CF_OK;
}

int gpt_config_compare(const gpt_config *saved, const gpt_config *asked, cf_err *err) {
    static const char *const names[] = {"layers", "d-model", "heads", "context",
                                         "vocabulary size", "padded vocabulary size",
                                         "continuous inputs", "input hidden width", "task heads",
                                         "head pooling", "value head", "variable slots",
                                         "variable channels"};
    const int a[13] = {saved->num_layers, saved->channels, saved->num_heads, saved->max_seq_len,
                       saved->vocab_size, saved->padded_vocab_size, saved->n_features,
                       saved->feat_hidden, saved->num_outputs, saved->cls_pool, saved->value_head,
                       saved->cls_slots, saved->cls_proj};
    const int b[13] = {asked->num_layers, asked->channels, asked->num_heads, asked->max_seq_len,
                       asked->vocab_size, asked->padded_vocab_size, asked->n_features,
                       asked->feat_hidden, asked->num_outputs, asked->cls_pool, asked->value_head,
                       asked->cls_slots, asked->cls_proj};
    for (int i = 0; i < 13; i++)
        if (a[i] != b[i] && !(i == 5 && b[i] == 0)) /* padding is derived from the vocabulary: 0 = not asked */
            return cf_fail(err, CF_EINPUT,
                           "the checkpoint has %s %d but %d was asked for: drop the option to "
                           "continue with the checkpoint's value, or train a new model into "
                           "another --out", names[i], a[i], b[i]);
    if (saved->dropout != asked->dropout)
        return cf_fail(err, CF_EINPUT,
                       "the checkpoint has dropout %g but %g was asked for: drop the option to "
                       "continue with the checkpoint's value", (double)saved->dropout,
                       (double)asked->dropout);
    return CF_OK;
}

gpt_opt_config gpt_opt_default(uint64_t total_steps) {
    gpt_opt_config o;
    o.lr = 3e-4f;
    o.min_lr = 3e-5f;
    o.beta1 = 0.9f;
    o.beta2 = 0.95f;
    o.eps = 1e-8f;
    o.weight_decay = 0.1f;
    o.grad_clip = 1.0f;
    o.total_steps = total_steps;
    o.warmup_steps = total_steps >= 1000 ? 100 : total_steps / 10;
    o.lr_scale = NULL;
    return o;
}

float gpt_lr(const gpt_opt_config *o, uint64_t step) {
    if (step < o->warmup_steps) return o->lr * (float)(step + 1) / (float)o->warmup_steps;
    if (step >= o->total_steps) return o->min_lr;
    double frac = (double)(step - o->warmup_steps) / (double)(o->total_steps - o->warmup_steps);
    return (float)(o->min_lr + 0.5 * (o->lr - o->min_lr) * (1.0 + cos(M_PI * frac)));
}

/* ------------------------------------------------------------------------------------------
 * parameter table */

/* The task heads' tensors, by their place in the tables below: a copy between models keeps them
 * only when the heads agree (gpt_copy_params). Named by index, not by pointer: a tensor of size
 * zero (no heads, no query) shares its address with the next. */
enum { PARAM_CLSW = 19, PARAM_CLSB = 20, PARAM_CLSQ = 23, PARAM_CLSVW = 24, PARAM_CLSMAP = 25 };
static const char *const param_names[GPT_NUM_PARAM_TENSORS] = {
    "wte", "wpe", "ln1w", "ln1b", "qkvw", "qkvb", "attprojw", "attprojb",
    "ln2w", "ln2b", "fcw", "fcb", "fcprojw", "fcprojb", "lnfw", "lnfb",
    "xw1", "xb1", "xw2", "clsw", "clsb", "valw", "valb", "clsq", "clsvw", "clsmap"};

/* Matrices get weight decay; vectors (biases, LayerNorm) do not. */
static const int param_is_matrix[GPT_NUM_PARAM_TENSORS] = {1, 1, 0, 0, 1, 0, 1, 0,
                                                           0, 0, 1, 0, 1, 0, 0, 0,
                                                           1, 0, 1, 1, 0, 1, 0, 0, 1, 0};

void gpt_lr_scales(float *scale, float body, float head) {
    for (int i = 0; i < GPT_NUM_PARAM_TENSORS; i++)
        scale[i] = i == PARAM_CLSW || i == PARAM_CLSB || i == PARAM_CLSQ || i == PARAM_CLSVW ? head : body;
}

/* Shape of parameter tensor i, up to 3 dims; returns the dim count. */
static int param_shape(const gpt_config *c, int i, uint32_t dims[3]) {
    uint32_t L = (uint32_t)c->num_layers, C = (uint32_t)c->channels;
    uint32_t F = (uint32_t)c->n_features, H = (uint32_t)c->feat_hidden, K = (uint32_t)c->num_outputs;
    uint32_t P = (uint32_t)gpt_cls_width(c);
    uint32_t VV = c->value_head ? (uint32_t)c->padded_vocab_size : 0, VC = c->value_head ? C : 0;
    uint32_t Q = K && c->cls_pool == GPT_POOL_ATTENTION ? C : 0;
    const int vars = K && c->cls_pool == GPT_POOL_VARIABLES;
    uint32_t VK = vars ? (uint32_t)c->cls_proj : 0, VCC = vars ? C : 0, VM = vars ? (uint32_t)c->padded_vocab_size : 0;
    uint32_t shapes[GPT_NUM_PARAM_TENSORS][4] = {
        {2, (uint32_t)c->padded_vocab_size, C, 0}, {2, (uint32_t)c->max_seq_len, C, 0},
        {2, L, C, 0}, {2, L, C, 0}, {3, L, 3 * C, C}, {2, L, 3 * C, 0}, {3, L, C, C},
        {2, L, C, 0}, {2, L, C, 0}, {2, L, C, 0}, {3, L, 4 * C, C}, {2, L, 4 * C, 0},
        {3, L, C, 4 * C}, {2, L, C, 0}, {1, C, 0, 0}, {1, C, 0, 0},
        {2, H, F, 0}, {1, H, 0, 0}, {2, C, H, 0}, {2, K, P, 0}, {1, K, 0, 0}, {2, VV, VC, 0}, {1, VV, 0, 0},
        {1, Q, 0, 0}, {2, VK, VCC, 0}, {1, VM, 0, 0}};
    for (int d = 0; d < 3; d++) dims[d] = shapes[i][d + 1];
    return (int)shapes[i][0];
}

static size_t param_count(const gpt_config *c, int i) {
    uint32_t dims[3];
    int nd = param_shape(c, i, dims);
    size_t n = 1;
    for (int d = 0; d < nd; d++) n *= dims[d];
    return n;
}

static void point_params(gpt_params *p, float *mem, const size_t *sizes) {
    float **ptrs[GPT_NUM_PARAM_TENSORS] = {
        &p->wte, &p->wpe, &p->ln1w, &p->ln1b, &p->qkvw, &p->qkvb, &p->attprojw, &p->attprojb,
        &p->ln2w, &p->ln2b, &p->fcw, &p->fcb, &p->fcprojw, &p->fcprojb, &p->lnfw, &p->lnfb,
        &p->xw1, &p->xb1, &p->xw2, &p->clsw, &p->clsb, &p->valw, &p->valb, &p->clsq, &p->clsvw, &p->clsmap};
    for (int i = 0; i < GPT_NUM_PARAM_TENSORS; i++) {
        *ptrs[i] = mem;
        mem += round_up(sizes[i], ALIGN_FLOATS);
    }
}

/* ------------------------------------------------------------------------------------------
 * build and free */

/* Uniform in (0, 1) from a splitmix64 stream. */
static double next_uniform(uint64_t *s) { return cf_unit_open(cf_step64(s)); }

static void fill_normal(float *x, size_t n, float std, uint64_t *s) {
    for (size_t i = 0; i < n; i += 2) {
        double u1 = next_uniform(s), u2 = next_uniform(s);
        double r = sqrt(-2.0 * log(u1));
        x[i] = (float)(r * cos(2.0 * M_PI * u2) * std);
        if (i + 1 < n) x[i + 1] = (float)(r * sin(2.0 * M_PI * u2) * std);
    }
}

static void init_params(gpt_model *m, uint64_t seed) {
    const gpt_config *c = &m->config;
    gpt_params *p = &m->params;
    size_t C = (size_t)c->channels, L = (size_t)c->num_layers;
    uint64_t s = gpt__mix64(seed ^ 0x5DEECE66DULL);
    float std = 0.02f, proj_std = 0.02f / sqrtf(2.0f * (float)L);
    /* Padding rows of wte stay zero: they never receive gradient and are never sampled. */
    memset(m->param_memory, 0, m->num_parameters * sizeof(float));
    fill_normal(p->wte, (size_t)c->vocab_size * C, std, &s);
    fill_normal(p->wpe, (size_t)c->max_seq_len * C, std, &s);
    fill_normal(p->qkvw, L * 3 * C * C, std, &s);
    fill_normal(p->attprojw, L * C * C, proj_std, &s);
    fill_normal(p->fcw, L * 4 * C * C, std, &s);
    fill_normal(p->fcprojw, L * 4 * C * C, proj_std, &s);
    for (size_t i = 0; i < L * C; i++) p->ln1w[i] = p->ln2w[i] = 1.0f;
    for (size_t i = 0; i < C; i++) p->lnfw[i] = 1.0f;
    /* The continuous inputs' MLP: inputs are of order 1, so weights of 1/sqrt(F) give hidden
     * units in tanh's working range; the second layer starts at the token embeddings' scale.
     * Drawn after every other tensor so a model without inputs initialises as before. */
    size_t F = (size_t)c->n_features, H = (size_t)c->feat_hidden, K = (size_t)c->num_outputs;
    if (F) {
        fill_normal(p->xw1, H * F, 1.0f / sqrtf((float)F), &s);
        fill_normal(p->xb1, H, 0.5f, &s);
        fill_normal(p->xw2, C * H, std, &s);
    }
    /* Task heads start at zero: every prediction starts at probability one half. The variables
     * pooling's projection starts at zero too (the caller breaks the symmetry: finetune.c), and
     * its map gives no token a slot until the caller fills it. */
    for (size_t i = 0; i < m->param_sizes[PARAM_CLSMAP]; i++) p->clsmap[i] = -1.0f;
    (void)K;
}

static int build_uninit(gpt_model *m, const gpt_config *cfg, uint64_t seed, cf_err *err) {
    memset(m, 0, sizeof *m);
    gpt_config c = *cfg;
    if (c.padded_vocab_size == 0) c.padded_vocab_size = (int)round_up((size_t)c.vocab_size, 64);
    int rc = gpt_config_check(&c, err);
    if (rc) return rc;
    m->config = c;
    size_t total = 0;
    for (int i = 0; i < GPT_NUM_PARAM_TENSORS; i++) {
        m->param_sizes[i] = param_count(&c, i);
        total += round_up(m->param_sizes[i], ALIGN_FLOATS);
    }
    m->num_parameters = total;
    m->param_memory = alloc_floats(total);
    if (!m->param_memory)
        return cf_fail(err, CF_EINTERNAL, "out of memory for %zu model parameters", total);
    point_params(&m->params, m->param_memory, m->param_sizes);
    m->rng_seed = seed;
#ifdef _OPENMP
    m->num_threads = omp_get_max_threads();
#else
    m->num_threads = 1;
#endif
    if (m->num_threads > MAX_THREADS) m->num_threads = MAX_THREADS;
    m->mean_loss = -1.0f;
    return CF_OK;
}

int gpt_build(gpt_model *m, const gpt_config *cfg, uint64_t seed, cf_err *err) {
    int rc = build_uninit(m, cfg, seed, err);
    if (rc) return rc;
    init_params(m, seed);
    return CF_OK;
}

int gpt_copy_params(gpt_model *dst, const gpt_model *src, cf_err *err) {
    const gpt_config *d = &dst->config, *s = &src->config;
    struct {
        const char *name;
        int a, b;
    } same[] = {{"vocabulary", d->vocab_size, s->vocab_size}, {"padded vocabulary", d->padded_vocab_size, s->padded_vocab_size},
                {"layers", d->num_layers, s->num_layers},       {"heads", d->num_heads, s->num_heads},
                {"channels", d->channels, s->channels},         {"continuous inputs", d->n_features, s->n_features},
                {"input hidden width", d->feat_hidden, s->feat_hidden}, {"value head", d->value_head, s->value_head}};
    for (size_t i = 0; i < sizeof same / sizeof same[0]; i++)
        if (same[i].a != same[i].b)
            return cf_fail(err, CF_EINPUT, "cannot copy a model's parameters into one of another architecture (%s %d, not %d)",
                           same[i].name, same[i].b, same[i].a);
    const int heads_same = d->num_outputs == s->num_outputs && d->cls_pool == s->cls_pool &&
                           gpt_cls_width(d) == gpt_cls_width(s) && d->cls_proj == s->cls_proj;
    float *const dt[GPT_NUM_PARAM_TENSORS] = {
        dst->params.wte, dst->params.wpe, dst->params.ln1w, dst->params.ln1b, dst->params.qkvw, dst->params.qkvb,
        dst->params.attprojw, dst->params.attprojb, dst->params.ln2w, dst->params.ln2b, dst->params.fcw, dst->params.fcb,
        dst->params.fcprojw, dst->params.fcprojb, dst->params.lnfw, dst->params.lnfb, dst->params.xw1, dst->params.xb1,
        dst->params.xw2, dst->params.clsw, dst->params.clsb, dst->params.valw, dst->params.valb, dst->params.clsq,
        dst->params.clsvw, dst->params.clsmap};
    const float *const st[GPT_NUM_PARAM_TENSORS] = {
        src->params.wte, src->params.wpe, src->params.ln1w, src->params.ln1b, src->params.qkvw, src->params.qkvb,
        src->params.attprojw, src->params.attprojb, src->params.ln2w, src->params.ln2b, src->params.fcw, src->params.fcb,
        src->params.fcprojw, src->params.fcprojb, src->params.lnfw, src->params.lnfb, src->params.xw1, src->params.xb1,
        src->params.xw2, src->params.clsw, src->params.clsb, src->params.valw, src->params.valb, src->params.clsq,
        src->params.clsvw, src->params.clsmap};
    for (int i = 0; i < GPT_NUM_PARAM_TENSORS; i++) {
        if (i == PARAM_CLSW || i == PARAM_CLSB || i == PARAM_CLSQ || i == PARAM_CLSVW || i == PARAM_CLSMAP) {
            if (!heads_same) continue;
        } else if (dt[i] == dst->params.wpe) {
            /* (maxT, C): linear resampling along positions (a plain copy when maxT agrees) */
            const size_t C = (size_t)d->channels;
            const int Md = d->max_seq_len, Ms = s->max_seq_len;
            for (int p = 0; p < Md; p++) {
                double x = Md > 1 ? (double)p * (double)(Ms - 1) / (double)(Md - 1) : 0.0;
                int lo = (int)x;
                if (lo > Ms - 1) lo = Ms - 1;
                int hi = lo + 1 < Ms ? lo + 1 : lo;
                double f = x - lo;
                for (size_t c = 0; c < C; c++)
                    dt[i][(size_t)p * C + c] =
                        (float)((1.0 - f) * src->params.wpe[(size_t)lo * C + c] + f * src->params.wpe[(size_t)hi * C + c]);
            }
            continue;
        }
        if (dst->param_sizes[i] != src->param_sizes[i])
            return cf_fail(err, CF_EINTERNAL, "parameter tensor %s differs in size", param_names[i]);
        if (src->param_sizes[i]) memcpy(dt[i], st[i], src->param_sizes[i] * sizeof(float));
    }
    return CF_OK;
}

void gpt_free(gpt_model *m) {
    CF_FREE_ALL(m->param_memory, m->grad_memory, m->grad_extra, m->m_memory, m->v_memory,
                m->act_memory, m->inputs);
    memset(m, 0, sizeof *m);
}

/* Slices per thread: with more slices than threads, handed out on demand, a thread that lost
 * its core for a while does less of the batch instead of holding everyone up. */
#ifndef GPT_SLICES_PER_THREAD
#define GPT_SLICES_PER_THREAD 2
#endif

static int max_slices(int threads) { return GPT_SLICES_PER_THREAD * threads; }

/* Slices of a batch of B, for the thread count the activations were laid out for. */
static int num_slices(const gpt_model *m, int B) {
    if (B < 2 || m->act_threads < 2) return 1;
    return B < max_slices(m->act_threads) ? B : max_slices(m->act_threads);
}

/* ------------------------------------------------------------------------------------------
 * activation table */

static void act_sizes(const gpt_model *m, int B, int T, size_t *a, size_t *g, size_t *scratch) {
    const gpt_config *c = &m->config;
    size_t BT = (size_t)B * T, C = (size_t)c->channels, L = (size_t)c->num_layers;
    size_t NH = (size_t)c->num_heads, Vp = (size_t)c->padded_vocab_size;
    size_t F = (size_t)c->n_features, H = (size_t)c->feat_hidden, K = (size_t)c->num_outputs;
    size_t P = K ? (size_t)gpt_cls_width(c) : 0, VH = c->value_head ? BT : 0;
    size_t s[GPT_NUM_ACT_TENSORS] = {
        BT * C, L * BT * C, L * BT, L * BT, L * BT * 3 * C, L * BT * C, L * NH * BT,
        L * BT * C, L * BT * C, L * BT, L * BT, L * BT * 4 * C, L * BT * 4 * C, L * BT * C,
        BT * C, BT, BT, BT * Vp, BT, BT * C, BT * F, BT * H, (size_t)B * K, (size_t)B * K, (size_t)B * P, VH, VH};
    size_t d[GPT_NUM_GRAD_ACT_TENSORS] = {BT * C, BT * C, BT * C, BT * C, BT * 4 * C, BT * 4 * C};
    memcpy(a, s, sizeof s);
    memcpy(g, d, sizeof d);
    int slots = max_slices(m->num_threads);
    *scratch = (size_t)slots * GPT_ATT_SCRATCH(C / NH, (size_t)T);
}

static size_t point_acts(gpt_model *m, int B, int T, float *mem) {
    size_t a[GPT_NUM_ACT_TENSORS], g[GPT_NUM_GRAD_ACT_TENSORS], scratch;
    act_sizes(m, B, T, a, g, &scratch);
    gpt_acts *x = &m->acts;
    float **ap[GPT_NUM_ACT_TENSORS] = {
        &x->encoded, &x->ln1, &x->ln1_mean, &x->ln1_rstd, &x->qkv, &x->atty, &x->att_lse,
        &x->residual2, &x->ln2, &x->ln2_mean, &x->ln2_rstd, &x->fch, &x->fch_gelu,
        &x->residual3, &x->lnf, &x->lnf_mean, &x->lnf_rstd, &x->logits, &x->losses, &x->branch,
        &x->feats, &x->xh, &x->cls_logits, &x->cls_y, &x->cls_in, &x->val_pred, &x->val_tgt};
    gpt_grad_acts *y = &m->grad_acts;
    float **gp[GPT_NUM_GRAD_ACT_TENSORS] = {&y->dresidual, &y->dbranch, &y->dln,
                                            &y->datty, &y->dbig1, &y->dbig2};
    size_t off = 0;
    for (int i = 0; i < GPT_NUM_ACT_TENSORS; i++) {
        if (mem) *ap[i] = mem + off;
        off += round_up(a[i], ALIGN_FLOATS);
    }
    for (int i = 0; i < GPT_NUM_GRAD_ACT_TENSORS; i++) {
        if (mem) *gp[i] = mem + off;
        off += round_up(g[i], ALIGN_FLOATS);
    }
    if (mem) m->att_scratch = mem + off;
    off += round_up(scratch, ALIGN_FLOATS);
    return off;
}

/* Lays the activations out for (B, T), reallocating only when they do not fit. */
static int ensure_acts(gpt_model *m, int B, int T, cf_err *err) {
    if (m->act_memory && m->batch_size == B && m->seq_len == T && m->act_threads == m->num_threads)
        return CF_OK;
    size_t need = point_acts(m, B, T, NULL);
    size_t ntok = (size_t)B * T;
    if (need > m->act_capacity || 2 * ntok + (size_t)B > m->tok_capacity) {
        free(m->act_memory);
        free(m->inputs);
        m->act_capacity = m->tok_capacity = 0;
        m->batch_size = m->seq_len = 0;
        m->act_memory = alloc_floats(need);
        m->inputs = malloc((2 * ntok + (size_t)B) * sizeof(int));
        if (!m->act_memory || !m->inputs) {
            free(m->act_memory);
            free(m->inputs);
            m->act_memory = NULL;
            m->inputs = NULL;
            return cf_fail(err, CF_EINTERNAL, "out of memory for activations of batch %d x %d",
                           B, T);
        }
        m->act_capacity = need;
        m->tok_capacity = 2 * ntok + (size_t)B;
    }
    point_acts(m, B, T, m->act_memory);
    m->targets = m->inputs + ntok;
    m->cls_pos = m->inputs + 2 * ntok;
    m->batch_size = B;
    m->seq_len = T;
    m->act_threads = m->num_threads;
    return CF_OK;
}

/* ------------------------------------------------------------------------------------------
 * forward
 *
 * With B >= 2 sequences and several threads, the batch is cut into slices of whole sequences
 * (GPT_SLICES_PER_THREAD per thread, handed out on demand) and a thread runs the entire network
 * on each slice it takes, calling the kernels serially (their own parallel regions stay
 * inactive inside, and OpenBLAS runs on the calling thread). A step then synchronises a few
 * times instead of several times per layer. That matters on a shared machine: every barrier
 * waits for the slowest thread, and a thread whose core another process took is very slow.
 * With one sequence, or one thread, the batch is one slice and the kernels parallelise
 * internally instead. */

/* The dropout key of one site (0 = embedding, 1 + 2l and 2 + 2l = layer l's two branches). */
static uint32_t site_key(const gpt_model *m, int site) {
    return (uint32_t)(gpt__mix64(m->rng_seed ^ gpt__mix64(m->dropout_key * 0x100000001B3ULL +
                                                           (uint64_t)site)) >> 32);
}


typedef struct {
    int b0, b1;         /* sequences [b0, b1) of the batch */
    float *att_scratch; /* this slice's attention scratch */
    int att_threads;    /* threads the attention kernel may use */
} slice;

static slice slice_of(const gpt_model *m, int k, int ns) {
    slice s;
    s.b0 = (int)((long)m->batch_size * k / ns);
    s.b1 = (int)((long)m->batch_size * (k + 1) / ns);
    size_t scr = GPT_ATT_SCRATCH(m->config.channels / m->config.num_heads, (size_t)m->seq_len);
    s.att_scratch = m->att_scratch + (ns == 1 ? 0 : (size_t)k * scr);
    s.att_threads = ns == 1 ? m->act_threads : 1;
    return s;
}

/* Layer l's rows of slice s in a (L, B, T, X) activation tensor. */
#define AT(t, l, X) ((t) + ((size_t)(l) * BT + r0) * (size_t)(X))

/* Layer l's activations over the rows of slice s: forward writes them, backward reads them
 * (residual is the layer's input: the embedding, or the layer before's residual3). */
typedef struct {
    float *residual, *ln1, *ln1_mean, *ln1_rstd, *qkv, *atty, *lse, *residual2, *ln2, *ln2_mean,
        *ln2_rstd, *fch, *fch_gelu, *residual3;
} layer_acts;

static layer_acts layer_view(const gpt_model *m, const slice *s, size_t l) {
    const gpt_acts *a = &m->acts;
    const size_t C = (size_t)m->config.channels, T = (size_t)m->seq_len;
    const size_t BT = (size_t)m->batch_size * T, r0 = (size_t)s->b0 * T;
    layer_acts x;
    x.residual = l == 0 ? AT(a->encoded, 0, C) : AT(a->residual3, l - 1, C);
    x.ln1 = AT(a->ln1, l, C);
    x.ln1_mean = AT(a->ln1_mean, l, 1);
    x.ln1_rstd = AT(a->ln1_rstd, l, 1);
    x.qkv = AT(a->qkv, l, 3 * C);
    x.atty = AT(a->atty, l, C);
    x.lse = a->att_lse +
            (l * (size_t)m->batch_size + (size_t)s->b0) * (size_t)m->config.num_heads * T;
    x.residual2 = AT(a->residual2, l, C);
    x.ln2 = AT(a->ln2, l, C);
    x.ln2_mean = AT(a->ln2_mean, l, 1);
    x.ln2_rstd = AT(a->ln2_rstd, l, 1);
    x.fch = AT(a->fch, l, 4 * C);
    x.fch_gelu = AT(a->fch_gelu, l, 4 * C);
    x.residual3 = AT(a->residual3, l, C);
    return x;
}

static void forward_slice(gpt_model *m, const slice *s, float p) {
    const gpt_config *c = &m->config;
    const gpt_params *w = &m->params;
    gpt_acts *a = &m->acts;
    const int T = m->seq_len, nb = s->b1 - s->b0, NH = c->num_heads, Ci = c->channels;
    const int Vp = c->padded_vocab_size;
    const size_t C = (size_t)Ci, L = (size_t)c->num_layers, BT = (size_t)m->batch_size * T;
    const size_t r0 = (size_t)s->b0 * T, n = (size_t)nb * T;

    float *encoded = AT(a->encoded, 0, C), *branch = AT(a->branch, 0, C);
    gpt__encoder_forward(encoded, m->inputs + r0, w->wte, w->wpe, nb, T, Ci);
    const int F = c->n_features, H = c->feat_hidden;
    if (F) gpt__feat_forward(encoded, a->xh + r0 * H, a->feats + r0 * F, w->xw1, w->xb1, w->xw2, n, F, H, Ci);
    gpt__dropout_forward(encoded, site_key(m, 0), p, r0 * C, n * C);
    for (size_t l = 0; l < L; l++) {
        const layer_acts x = layer_view(m, s, l);

        gpt__layernorm_forward(x.ln1, x.ln1_mean, x.ln1_rstd, x.residual, w->ln1w + l * C,
                               w->ln1b + l * C, n, Ci);
        gpt__matmul_forward(x.qkv, x.ln1, w->qkvw + l * 3 * C * C, w->qkvb + l * 3 * C, n, Ci,
                            3 * Ci);
        gpt__attention_forward(x.atty, x.lse, x.qkv, s->att_scratch, s->att_threads, nb, T, Ci,
                               NH);
        gpt__matmul_forward(branch, x.atty, w->attprojw + l * C * C, w->attprojb + l * C, n, Ci,
                            Ci);
        gpt__residual_dropout_forward(x.residual2, x.residual, branch,
                                      site_key(m, 1 + 2 * (int)l), p, r0 * C, n * C);
        gpt__layernorm_forward(x.ln2, x.ln2_mean, x.ln2_rstd, x.residual2, w->ln2w + l * C,
                               w->ln2b + l * C, n, Ci);
        gpt__matmul_forward(x.fch, x.ln2, w->fcw + l * 4 * C * C, w->fcb + l * 4 * C, n, Ci,
                            4 * Ci);
        gpt__gelu_forward(x.fch_gelu, x.fch, n * 4 * C);
        gpt__matmul_forward(branch, x.fch_gelu, w->fcprojw + l * 4 * C * C, w->fcprojb + l * C,
                            n, 4 * Ci, Ci);
        gpt__residual_dropout_forward(x.residual3, x.residual2, branch,
                                      site_key(m, 2 + 2 * (int)l), p, r0 * C, n * C);
    }
    float *lnf = AT(a->lnf, 0, C), *logits = a->logits + r0 * Vp;
    gpt__layernorm_forward(lnf, AT(a->lnf_mean, 0, 1), AT(a->lnf_rstd, 0, 1),
                           AT(a->residual3, L - 1, C), w->lnfw, w->lnfb, n, Ci);
    gpt__matmul_forward(logits, lnf, w->wte, NULL, n, Ci, Vp);
    if (m->has_targets)
        gpt__crossentropy_forward(a->losses + r0, logits, logits, m->targets + r0, n,
                                  c->vocab_size, Vp);
}

int gpt_forward(gpt_model *m, const int *inputs, const int *targets, int B, int T, int train,
                cf_err *err) {
    return gpt_forward_ex(m, inputs, targets, NULL, B, T, train, err);
}

int gpt_forward_ex(gpt_model *m, const int *inputs, const int *targets, const gpt_extra *x, int B,
                   int T, int train, cf_err *err) {
    const gpt_config *c = &m->config;
    const int K = c->num_outputs, F = c->n_features;
    const int *cls_pos = x && K ? x->cls_pos : NULL;
    if (x && x->cls_y && !cls_pos)
        return cf_fail(err, CF_EINPUT, "model forward: task labels without head positions%s",
                       K ? "" : " (the model has no task heads)");
    for (int b = 0; cls_pos && b < B; b++)
        if (cls_pos[b] < 0 || cls_pos[b] >= T)
            return cf_fail(err, CF_EINPUT, "model forward: head position %d of row %d is outside "
                           "[0, %d)", cls_pos[b], b, T);
    if (B < 1 || T < 1 || T > c->max_seq_len || (size_t)B * T > (size_t)(1 << 30) / 4)
        return cf_fail(err, CF_EINPUT,
                       "model forward: batch of %d x %d positions, expected at least 1 x 1 and "
                       "at most %d positions (the model's context)", B, T, c->max_seq_len);
    size_t BT = (size_t)B * T;
    for (size_t i = 0; i < BT; i++) {
        if (inputs[i] < 0 || inputs[i] >= c->vocab_size)
            return cf_fail(err, CF_EINPUT,
                           "model forward: input token at row %zu, position %zu is outside the "
                           "vocabulary [0, %d)", i / T, i % T, c->vocab_size);
        if (targets && targets[i] >= c->vocab_size)
            return cf_fail(err, CF_EINPUT,
                           "model forward: target at row %zu, position %zu is outside the "
                           "vocabulary [0, %d)", i / T, i % T, c->vocab_size);
    }
    int rc = ensure_acts(m, B, T, err);
    if (rc) return rc;
    memcpy(m->inputs, inputs, BT * sizeof(int));
    if (targets) memcpy(m->targets, targets, BT * sizeof(int));
    else
        for (size_t i = 0; i < BT; i++) m->targets[i] = -1;
    if (F) {
        if (x && x->feats) memcpy(m->acts.feats, x->feats, BT * (size_t)F * sizeof(float));
        else memset(m->acts.feats, 0, BT * (size_t)F * sizeof(float));
    }
    m->has_cls = cls_pos != NULL;
    int with_y = m->has_cls && x->cls_y;
    if (m->has_cls) memcpy(m->cls_pos, cls_pos, (size_t)B * sizeof(int));
    if (with_y) memcpy(m->acts.cls_y, x->cls_y, (size_t)B * K * sizeof(float));
    m->lm_weight = x ? x->lm_weight : 1.0f;
    m->cls_weight = with_y ? x->cls_weight : 0.0f;
    m->cls_weighted = with_y && x->cls_head_weight;
    for (int k = 0; k < K && k < GPT_MAX_OUTPUTS; k++) m->cls_head_w[k] = m->cls_weighted ? x->cls_head_weight[k] : 1.0f;
    m->has_values = c->value_head && x && x->value_targets && targets;
    m->value_weight = m->has_values ? x->value_weight : 0.0f;
    if (m->has_values) memcpy(m->acts.val_tgt, x->value_targets, BT * sizeof(float));
    m->has_targets = targets != NULL || with_y;
    m->train = train != 0;
    float p = train ? c->dropout : 0.0f;
    if (p > 0.0f) m->dropout_key = m->rng_counter++;

    int ns = num_slices(m, B);
    if (ns == 1) {
        slice s = slice_of(m, 0, 1);
        forward_slice(m, &s, p);
    } else {
        GPT_OMP(omp parallel for schedule(dynamic, 1) num_threads(ns < m->act_threads ? ns : m->act_threads))
        for (int k = 0; k < ns; k++) {
            slice s = slice_of(m, k, ns);
            forward_slice(m, &s, p);
        }
    }

    m->mean_loss = -1.0f;
    if (targets) {
        double sum = 0.0;
        size_t valid = 0;
        for (size_t i = 0; i < BT; i++)
            if (targets[i] >= 0) {
                sum += m->acts.losses[i];
                valid++;
            }
        m->mean_loss = valid ? (float)(sum / (double)valid) : 0.0f;
    }
    m->value_loss = -1.0f;
    if (m->has_values) {
        size_t nv = 0;
        double sum = gpt__value_forward(m->acts.val_pred, m->acts.lnf, m->targets, m->acts.val_tgt, m->params.valw,
                                        m->params.valb, &nv, BT, c->channels);
        m->value_loss = nv ? (float)(sum / (double)nv) : 0.0f;
    }
    m->cls_loss = -1.0f;
    if (m->has_cls) {
        size_t labelled = 0, head_n[GPT_MAX_OUTPUTS] = {0};
        double head_loss[GPT_MAX_OUTPUTS] = {0};
        const gpt__pool_vars pv = {m->inputs, m->params.clsmap, m->params.clsvw, c->cls_slots, c->cls_proj};
        double sum = gpt__cls_forward(m->acts.cls_logits, m->acts.cls_in, m->acts.lnf, m->cls_pos,
                                      F ? m->acts.feats : NULL, F, m->params.clsq, c->num_heads, &pv, m->params.clsw,
                                      m->params.clsb, with_y ? m->acts.cls_y : NULL, &labelled,
                                      m->cls_weighted ? head_loss : NULL, m->cls_weighted ? head_n : NULL, 0, B, T,
                                      c->channels, K, c->cls_pool);
        if (with_y) m->cls_loss = labelled ? (float)(sum / (double)labelled) : 0.0f;
        if (m->cls_weighted) { /* the weighted objective: each head's mean, weighted */
            double wsum = 0.0;
            for (int k = 0; k < K; k++)
                if (head_n[k]) wsum += (double)m->cls_head_w[k] * head_loss[k] / (double)head_n[k];
            m->cls_loss = (float)wsum;
        }
    }
    return CF_OK;
}

void gpt_value_targets(const float *feats, int B, int T, int F, float *vt) {
    for (int b = 0; b < B; b++)
        for (int i = 0; i < T; i++) {
            const float *f = feats + ((size_t)b * T + (size_t)i + 1) * (size_t)F;
            vt[(size_t)b * T + i] = i + 1 < T && f[0] == 1.0f ? f[1] : NAN;
        }
}

/* ------------------------------------------------------------------------------------------
 * backward */

void gpt_zero_grad(gpt_model *m) {
    if (m->grad_memory) memset(m->grad_memory, 0, m->num_parameters * sizeof(float));
}

static void backward_slice(gpt_model *m, const slice *s, const gpt_params *g, float p,
                           float dloss, const float *dcls, float dval, const float *cls_dx) {
    const gpt_config *c = &m->config;
    const gpt_params *w = &m->params;
    gpt_acts *a = &m->acts;
    const int T = m->seq_len, nb = s->b1 - s->b0, NH = c->num_heads, Ci = c->channels;
    const int Vp = c->padded_vocab_size;
    const size_t C = (size_t)Ci, L = (size_t)c->num_layers, BT = (size_t)m->batch_size * T;
    const size_t r0 = (size_t)s->b0 * T, n = (size_t)nb * T;
    /* This slice's rows of the activation gradients. */
    float *dresidual = m->grad_acts.dresidual + r0 * C, *dbuf = m->grad_acts.dbranch + r0 * C;
    float *dln = m->grad_acts.dln + r0 * C, *datty = m->grad_acts.datty + r0 * C;
    float *dbig1 = m->grad_acts.dbig1 + r0 * 4 * C, *dbig2 = m->grad_acts.dbig2 + r0 * 4 * C;
    float *logits = a->logits + r0 * Vp;

    /* Classifier, task heads and final LayerNorm. */
    memset(dln, 0, n * C * sizeof(float));
    if (dloss != 0.0f) {
        gpt__crossentropy_backward(logits, m->targets + r0, dloss, n, c->vocab_size, Vp);
        gpt__matmul_backward(dln, g->wte, NULL, logits, AT(a->lnf, 0, C), w->wte, n, Ci, Vp);
    }
    if (dval != 0.0f)
        gpt__value_backward(dln, g->valw, g->valb, a->val_pred + r0, AT(a->lnf, 0, C), m->targets + r0,
                            a->val_tgt + r0, w->valw, dval, n, Ci);
    const int K = c->num_outputs;
    if (dcls || cls_dx) {
        const gpt__pool_vars pv = {m->inputs + r0, w->clsmap, w->clsvw, c->cls_slots, c->cls_proj};
        const size_t P = (size_t)gpt_cls_width(c);
        gpt__cls_backward(dln, g->clsw, g->clsb, g->clsq, g->clsvw, a->cls_logits + (size_t)s->b0 * K,
                          a->cls_in + (size_t)s->b0 * P, AT(a->lnf, 0, C), m->cls_pos + s->b0,
                          c->n_features ? a->feats + r0 * (size_t)c->n_features : NULL, c->n_features, w->clsq,
                          c->num_heads, &pv, w->clsw, a->cls_y + (size_t)s->b0 * K, dcls,
                          cls_dx ? cls_dx + (size_t)s->b0 * P : NULL, 0, nb, T, Ci, K, c->cls_pool);
    }
    memset(dresidual, 0, n * C * sizeof(float));
    gpt__layernorm_backward(dresidual, g->lnfw, g->lnfb, dln, AT(a->residual3, L - 1, C),
                            w->lnfw, AT(a->lnf_mean, 0, 1), AT(a->lnf_rstd, 0, 1), n, Ci);

    for (size_t li = L; li-- > 0;) {
        const size_t l = li;
        const layer_acts x = layer_view(m, s, l);
        const float *dbranch;

        /* MLP branch: residual3 = residual2 + dropout(fcproj(gelu(fc(ln2(residual2))))). The
         * branch's gradient is taken from dresidual before the LayerNorm path adds into it. */
        if (p > 0.0f) {
            gpt__dropout_backward_set(dbuf, dresidual, site_key(m, 2 + 2 * (int)l), p, r0 * C,
                                      n * C);
            dbranch = dbuf;
        } else {
            dbranch = dresidual;
        }
        gpt__matmul_backward_set(dbig1, g->fcprojw + l * 4 * C * C, g->fcprojb + l * C, dbranch,
                                 x.fch_gelu, w->fcprojw + l * 4 * C * C, n, 4 * Ci, Ci);
        gpt__gelu_backward_set(dbig2, x.fch, dbig1, n * 4 * C);
        gpt__matmul_backward_set(dln, g->fcw + l * 4 * C * C, g->fcb + l * 4 * C, dbig2, x.ln2,
                                 w->fcw + l * 4 * C * C, n, Ci, 4 * Ci);
        gpt__layernorm_backward(dresidual, g->ln2w + l * C, g->ln2b + l * C, dln, x.residual2,
                                w->ln2w + l * C, x.ln2_mean, x.ln2_rstd, n, Ci);

        /* Attention branch: residual2 = residual + dropout(attproj(attention(qkv(ln1(.))))). */
        if (p > 0.0f) {
            gpt__dropout_backward_set(dbuf, dresidual, site_key(m, 1 + 2 * (int)l), p, r0 * C,
                                      n * C);
            dbranch = dbuf;
        } else {
            dbranch = dresidual;
        }
        gpt__matmul_backward_set(datty, g->attprojw + l * C * C, g->attprojb + l * C, dbranch,
                                 x.atty, w->attprojw + l * C * C, n, Ci, Ci);
        float *dqkv = dbig1; /* (B, T, 3*C) */
        memset(dqkv, 0, n * 3 * C * sizeof(float));
        gpt__attention_backward(dqkv, datty, x.qkv, x.atty, x.lse, s->att_scratch,
                                s->att_threads, nb, T, Ci, NH);
        gpt__matmul_backward_set(dln, g->qkvw + l * 3 * C * C, g->qkvb + l * 3 * C, dqkv, x.ln1,
                                 w->qkvw + l * 3 * C * C, n, Ci, 3 * Ci);
        gpt__layernorm_backward(dresidual, g->ln1w + l * C, g->ln1b + l * C, dln, x.residual,
                                w->ln1w + l * C, x.ln1_mean, x.ln1_rstd, n, Ci);
    }

    /* Embedding, through the embedding dropout. */
    const float *dencoded = dresidual;
    if (p > 0.0f) {
        gpt__dropout_backward_set(dbuf, dresidual, site_key(m, 0), p, r0 * C, n * C);
        dencoded = dbuf;
    }
    gpt__encoder_backward(g->wte, g->wpe, dencoded, m->inputs + r0, nb, T, Ci);
    const int F = c->n_features, H = c->feat_hidden;
    if (F)
        gpt__feat_backward(g->xw1, g->xb1, g->xw2, dbig1, dencoded, a->xh + r0 * H, a->feats + r0 * F,
                           w->xw2, n, F, H, Ci);
}

#undef AT

#define REDUCE_CHUNK 8192

int gpt_backward(gpt_model *m, cf_err *err) {
    return gpt_backward_ex(m, NULL, err);
}

int gpt_backward_ex(gpt_model *m, const float *cls_dx, cf_err *err) {
    if (!m->has_targets)
        return cf_fail(err, CF_EINTERNAL, "model backward without a forward that had targets");
    if (cls_dx && !m->has_cls)
        return cf_fail(err, CF_EINTERNAL, "model backward: a gradient on what the heads read, but the forward had no "
                       "head positions");
    const size_t P = m->num_parameters;
    if (!m->grad_memory) {
        m->grad_memory = alloc_floats(P);
        if (!m->grad_memory)
            return cf_fail(err, CF_EINTERNAL, "out of memory for %zu gradients", P);
        memset(m->grad_memory, 0, P * sizeof(float));
        point_params(&m->grads, m->grad_memory, m->param_sizes);
    }
    int ns = num_slices(m, m->batch_size);
    if (ns > 1 && m->grad_extra_slices < ns) {
        free(m->grad_extra);
        m->grad_extra = NULL;
        m->grad_extra_slices = 0;
        /* Slices other than the first add into private gradients (kept zero between steps). */
        size_t n = (size_t)(max_slices(m->act_threads) - 1) * P;
        m->grad_extra = alloc_floats(n);
        if (!m->grad_extra)
            return cf_fail(err, CF_EINTERNAL, "out of memory for per-slice gradients");
        memset(m->grad_extra, 0, n * sizeof(float));
        m->grad_extra_slices = max_slices(m->act_threads);
    }
    m->has_targets = 0; /* the logits now become their gradient: no second backward */
    const float p = m->train ? m->config.dropout : 0.0f;
    const size_t BT = (size_t)m->batch_size * m->seq_len;
    size_t valid = 0;
    for (size_t i = 0; i < BT; i++) valid += m->targets[i] >= 0;
    const float dloss = valid ? m->lm_weight / (float)valid : 0.0f;
    /* each head's gradient scale: the mean over every labelled (row, head), or with head weights
     * w_k / (head k's labelled rows) */
    const int K = m->config.num_outputs;
    size_t labelled = 0, nk[GPT_MAX_OUTPUTS] = {0};
    float dcls_k[GPT_MAX_OUTPUTS];
    if (m->cls_weight != 0.0f)
        for (size_t i = 0; i < (size_t)m->batch_size * K; i++)
            if (!isnan(m->acts.cls_y[i])) labelled++, nk[i % (size_t)K]++;
    for (int k = 0; k < K; k++)
        dcls_k[k] = !m->cls_weighted ? (labelled ? m->cls_weight / (float)labelled : 0.0f)
                    : nk[k]          ? m->cls_weight * m->cls_head_w[k] / (float)nk[k]
                                     : 0.0f;
    const float *dcls = labelled ? dcls_k : NULL;
    size_t n_val = 0;
    if (m->has_values && m->value_weight != 0.0f)
        for (size_t i = 0; i < BT; i++) n_val += m->targets[i] >= 0 && isfinite(m->acts.val_tgt[i]);
    const float dval = n_val ? m->value_weight / (float)n_val : 0.0f;

    if (ns == 1) {
        slice s = slice_of(m, 0, 1);
        backward_slice(m, &s, &m->grads, p, dloss, dcls, dval, cls_dx);
        return CF_OK;
    }
    GPT_OMP(omp parallel for schedule(dynamic, 1) num_threads(ns < m->act_threads ? ns : m->act_threads))
    for (int k = 0; k < ns; k++) {
        gpt_params g = m->grads;
        if (k > 0) point_params(&g, m->grad_extra + (size_t)(k - 1) * P, m->param_sizes);
        slice s = slice_of(m, k, ns);
        backward_slice(m, &s, &g, p, dloss, dcls, dval, cls_dx);
    }
    /* Add the other slices' gradients in slice order (so the sums do not depend on timing),
     * zeroing them for the next step. */
    float *g0 = m->grad_memory;
    GPT_OMP(omp parallel for schedule(dynamic, 4))
    for (size_t j = 0; j < P; j += REDUCE_CHUNK) {
        size_t e = P - j < REDUCE_CHUNK ? P : j + REDUCE_CHUNK;
        for (int k = 1; k < ns; k++) {
            float *gk = m->grad_extra + (size_t)(k - 1) * P;
            for (size_t i = j; i < e; i++) {
                g0[i] += gk[i];
                gk[i] = 0.0f;
            }
        }
    }
    return CF_OK;
}

/* ------------------------------------------------------------------------------------------
 * AdamW */

#define UPDATE_CHUNK 8192

int gpt_update(gpt_model *m, const gpt_opt_config *o, gpt_update_stats *stats, cf_err *err) {
    if (!m->grad_memory)
        return cf_fail(err, CF_EINTERNAL, "model update before any backward pass");
    if (!m->m_memory) {
        m->m_memory = alloc_floats(m->num_parameters);
        m->v_memory = alloc_floats(m->num_parameters);
        if (!m->m_memory || !m->v_memory) {
            free(m->m_memory);
            free(m->v_memory);
            m->m_memory = m->v_memory = NULL;
            return cf_fail(err, CF_EINTERNAL, "out of memory for the optimizer state");
        }
        memset(m->m_memory, 0, m->num_parameters * sizeof(float));
        memset(m->v_memory, 0, m->num_parameters * sizeof(float));
    }
    /* Global gradient norm: fixed chunks, partial sums in double added in chunk order, so the
     * result does not depend on the thread schedule. */
    size_t N = m->num_parameters, nchunks = (N + UPDATE_CHUNK - 1) / UPDATE_CHUNK;
    double *partial = malloc(nchunks * sizeof(double));
    if (!partial) return cf_fail(err, CF_EINTERNAL, "out of memory for the gradient norm");
    const float *gm = m->grad_memory;
    GPT_OMP(omp parallel for schedule(dynamic, 8) if (N >= GPT_PAR_MIN))
    for (size_t k = 0; k < nchunks; k++) {
        size_t i = k * UPDATE_CHUNK;
        partial[k] = gpt__sum_squares(gm + i, N - i < UPDATE_CHUNK ? N - i : UPDATE_CHUNK);
    }
    double ss = 0.0;
    for (size_t k = 0; k < nchunks; k++) ss += partial[k];
    free(partial);
    double norm = sqrt(ss);
    if (!isfinite(norm))
        return cf_fail(err, CF_EINPUT,
                       "gradient norm is not finite at step %llu (training diverged): lower the "
                       "learning rate or resume from an earlier checkpoint",
                       (unsigned long long)m->step);
    float gscale = (o->grad_clip > 0.0f && norm > o->grad_clip) ? (float)(o->grad_clip / norm)
                                                                 : 1.0f;
    float lr = gpt_lr(o, m->step);
    double t = (double)(m->step + 1);
    float a = (float)(lr / (1.0 - pow(o->beta1, t)));
    float inv_bc2 = (float)(1.0 / (1.0 - pow(o->beta2, t)));

    size_t off = 0;
    for (int i = 0; i < GPT_NUM_PARAM_TENSORS; i++) {
        const float sc = o->lr_scale ? o->lr_scale[i] : 1.0f;
        /* the map is data, not learned; a tensor at scale 0 is frozen, bit for bit */
        size_t n = i == PARAM_CLSMAP || sc == 0.0f ? 0 : m->param_sizes[i];
        float lr_wd = param_is_matrix[i] ? sc * lr * o->weight_decay : 0.0f;
        float *p = m->param_memory + off, *mm = m->m_memory + off, *vv = m->v_memory + off;
        const float *g = m->grad_memory + off;
        GPT_OMP(omp parallel for schedule(dynamic, 8) if (n >= GPT_PAR_MIN))
        for (size_t j = 0; j < n; j += UPDATE_CHUNK)
            gpt__adamw_chunk(p + j, g + j, mm + j, vv + j,
                             n - j < UPDATE_CHUNK ? n - j : UPDATE_CHUNK, gscale, o->beta1,
                             o->beta2, sc * a, inv_bc2, o->eps, lr_wd);
        off += round_up(m->param_sizes[i], ALIGN_FLOATS);
    }
    m->step++;
    m->kept_step = 0; /* the parameters are this step's again */
    if (stats) {
        stats->grad_norm = (float)norm;
        stats->lr = lr;
    }
    return CF_OK;
}

/* ------------------------------------------------------------------------------------------
 * checkpoints
 *
 * File layout (all integers little-endian):
 *   0    header, 256 bytes:
 *        0 magic "CLFMGPT\0" | 8 u32 version | 12 u32 flags | 16 u32 header bytes (256)
 *        20 u32 tensor count | 24 i32 max_seq_len | 28 i32 vocab_size | 32 i32 padded vocab
 *        36 i32 layers | 40 i32 heads | 44 i32 channels | 48 f32 dropout | 52 u32 0
 *        56 u64 step | 64 u64 rng seed | 72 u64 rng counter | 80 32-byte vocabulary hash
 *        112 f32 lr, min_lr, beta1, beta2, eps, weight_decay, grad_clip | 140 u64 warmup
 *        148 u64 total steps | 156 i32 continuous inputs F | 160 i32 their hidden width H
 *        | 164 i32 task heads K | 168 i32 head pooling | 172 i32 value head
 *        | 176 i32 the head's variable slots | 180 i32 their projection width
 *        | 184 u64 kept step (early stopping kept this earlier step's parameters; 0: step's)
 *        | 192 .. 251 zero
 *        | 252 u32 CRC-32 of bytes 0 .. 251
 *        Version 2 is written when F or K is non-zero (version 1 readers would ignore the new
 *        tensors and run another network); a model without them is still written as version 1.
 *   256  directory, 96 bytes per tensor: name[48] (NUL-padded) | u32 ndim | u32 dims[4]
 *        | u32 CRC-32 of the data | u64 offset | u64 bytes | 8 bytes zero
 *   then each tensor's float32 data at its offset (64-byte aligned). */

#define CKPT_MAGIC "CLFMGPT"
#define CKPT_VERSION 2u
#define CKPT_HEADER 256
#define CKPT_ENTRY 96
#define CKPT_MAX_TENSORS (3 * GPT_NUM_PARAM_TENSORS)

static uint32_t crc_of(const void *data, size_t n) {
    uLong crc = crc32(0L, Z_NULL, 0);
    const Bytef *p = data;
    while (n > 0) {
        uInt k = n > (1u << 30) ? (1u << 30) : (uInt)n;
        crc = crc32(crc, p, k);
        p += k;
        n -= k;
    }
    return (uint32_t)crc;
}

static int host_is_little_endian(void) {
    uint16_t x = 1;
    uint8_t b;
    memcpy(&b, &x, 1);
    return b == 1;
}

typedef struct {
    char name[48];
    const float *data;
    float *dest;
    int ndim;
    uint32_t dims[4];
    size_t count;
} ckpt_tensor;

/* The tensors a checkpoint of m holds: parameters, then (with moments) adam.m.* and adam.v.*. */
static int ckpt_tensors(const gpt_model *m, int with_moments, ckpt_tensor *t) {
    int n = 0;
    for (int set = 0; set < (with_moments ? 3 : 1); set++) {
        float *base = set == 0 ? m->param_memory : set == 1 ? m->m_memory : m->v_memory;
        size_t off = 0;
        for (int i = 0; i < GPT_NUM_PARAM_TENSORS; i++) {
            if (!m->param_sizes[i]) continue; /* the optional parts a model does not have */
            ckpt_tensor *x = &t[n++];
            memset(x, 0, sizeof *x);
            const char *prefix = set == 0 ? "" : set == 1 ? "adam.m." : "adam.v.";
            snprintf(x->name, sizeof x->name, "%s%s", prefix, param_names[i]);
            x->ndim = param_shape(&m->config, i, x->dims);
            x->count = m->param_sizes[i];
            x->data = base ? base + off : NULL;
            x->dest = base ? base + off : NULL;
            off += round_up(m->param_sizes[i], ALIGN_FLOATS);
        }
    }
    return n;
}

int gpt_save(const gpt_model *m, const char *path, const gpt_opt_config *opt, unsigned flags,
             cf_err *err) {
    if (!host_is_little_endian())
        return cf_fail(err, CF_EINTERNAL, "checkpoints are little-endian; this host is not");
    /* A model that never took a step has zero moments, which is what a resume starts from
     * anyway, so they are simply left out. */
    int with_moments = (flags & GPT_CKPT_OPTIMIZER) && m->m_memory;
    ckpt_tensor t[CKPT_MAX_TENSORS];
    int n = ckpt_tensors(m, with_moments, t);
    uint8_t hdr[CKPT_HEADER];
    memset(hdr, 0, sizeof hdr);
    memcpy(hdr, CKPT_MAGIC, 8);
    le_put32(hdr + 8, m->config.n_features || m->config.num_outputs || m->config.value_head ? CKPT_VERSION : 1u);
    le_put32(hdr + 12, with_moments ? GPT_CKPT_OPTIMIZER : 0);
    le_put32(hdr + 16, CKPT_HEADER);
    le_put32(hdr + 20, (uint32_t)n);
    const gpt_config *c = &m->config;
    le_put32(hdr + 24, (uint32_t)c->max_seq_len);
    le_put32(hdr + 28, (uint32_t)c->vocab_size);
    le_put32(hdr + 32, (uint32_t)c->padded_vocab_size);
    le_put32(hdr + 36, (uint32_t)c->num_layers);
    le_put32(hdr + 40, (uint32_t)c->num_heads);
    le_put32(hdr + 44, (uint32_t)c->channels);
    le_putf(hdr + 48, c->dropout);
    le_put64(hdr + 56, m->step);
    le_put64(hdr + 184, m->kept_step); /* zero in older files: the parameters are step's */
    le_put64(hdr + 64, m->rng_seed);
    le_put64(hdr + 72, m->rng_counter);
    memcpy(hdr + 80, m->vocab_hash, 32);
    if (opt) {
        le_putf(hdr + 112, opt->lr);
        le_putf(hdr + 116, opt->min_lr);
        le_putf(hdr + 120, opt->beta1);
        le_putf(hdr + 124, opt->beta2);
        le_putf(hdr + 128, opt->eps);
        le_putf(hdr + 132, opt->weight_decay);
        le_putf(hdr + 136, opt->grad_clip);
        le_put64(hdr + 140, opt->warmup_steps);
        le_put64(hdr + 148, opt->total_steps);
    }
    le_put32(hdr + 156, (uint32_t)c->n_features);
    le_put32(hdr + 160, (uint32_t)c->feat_hidden);
    le_put32(hdr + 164, (uint32_t)c->num_outputs);
    le_put32(hdr + 168, (uint32_t)c->cls_pool);
    le_put32(hdr + 172, (uint32_t)c->value_head);
    le_put32(hdr + 176, (uint32_t)c->cls_slots);
    le_put32(hdr + 180, (uint32_t)c->cls_proj);
    le_put32(hdr + 252, crc_of(hdr, 252));

    size_t dir_bytes = (size_t)n * CKPT_ENTRY;
    uint8_t *dir = calloc(1, dir_bytes);
    if (!dir) return cf_fail(err, CF_EINTERNAL, "out of memory for the checkpoint directory");
    size_t off = round_up(CKPT_HEADER + dir_bytes, 64), end = off;
    for (int i = 0; i < n; i++) {
        uint8_t *e = dir + (size_t)i * CKPT_ENTRY;
        memcpy(e, t[i].name, strlen(t[i].name));
        le_put32(e + 48, (uint32_t)t[i].ndim);
        for (int k = 0; k < 4; k++) le_put32(e + 52 + 4 * k, t[i].dims[k]);
        le_put32(e + 68, crc_of(t[i].data, t[i].count * sizeof(float)));
        le_put64(e + 72, off);
        le_put64(e + 80, t[i].count * sizeof(float));
        end = off + t[i].count * sizeof(float);
        off = round_up(end, 64);
    }

    atomic_file f;
    int rc = atomic_file_open(&f, path, err);
    if (rc) goto out;
    rc = write_all(f.fd, hdr, sizeof hdr, path, err);
    if (!rc) rc = write_all(f.fd, dir, dir_bytes, path, err);
    for (int i = 0; i < n && !rc; i++)
        rc = pwrite_all(f.fd, t[i].data, t[i].count * sizeof(float),
                        (long long)le_get64(dir + (size_t)i * CKPT_ENTRY + 72), path, err);
    /* The file ends exactly at the last tensor's end (which may be a hole of zeros). */
    if (!rc && ftruncate(f.fd, (off_t)end) != 0)
        rc = cf_fail_errno(err, CF_EINTERNAL, "%s: cannot size the checkpoint", path);
    if (rc) {
        atomic_file_abort(&f);
        goto out;
    }
    rc = atomic_file_commit(&f, err);
out:
    free(dir);
    return rc;
}

static int pread_all(int fd, void *buf, size_t n, uint64_t off) {
    uint8_t *p = buf;
    while (n > 0) {
        ssize_t k = pread(fd, p, n > (1u << 30) ? (1u << 30) : n, (off_t)off);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return -1;
        p += k;
        n -= (size_t)k;
        off += (uint64_t)k;
    }
    return 0;
}

int gpt_load(gpt_model *m, const char *path, const uint8_t *expect_vocab_hash,
             gpt_opt_config *opt_out, cf_err *err) {
    memset(m, 0, sizeof *m);
    if (!host_is_little_endian())
        return cf_fail(err, CF_EINTERNAL, "checkpoints are little-endian; this host is not");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return cf_fail_errno(err, CF_EINPUT, "%s: cannot open the model checkpoint", path);
    uint8_t hdr[CKPT_HEADER], *dir = NULL;
    int rc = CF_OK;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        rc = cf_fail_errno(err, CF_EINPUT, "%s: cannot stat the model checkpoint", path);
        goto fail;
    }
    if (pread_all(fd, hdr, sizeof hdr, 0) != 0) {
        rc = cf_fail(err, CF_EINPUT, "%s: too short for a clinfm model checkpoint (no 256-byte "
                     "header); pass a file written by clinfm train", path);
        goto fail;
    }
    if (memcmp(hdr, CKPT_MAGIC, 8) != 0) {
        rc = cf_fail(err, CF_EINPUT, "%s: not a clinfm model checkpoint (bad magic); pass a "
                     "file written by clinfm train", path);
        goto fail;
    }
    uint32_t version = le_get32(hdr + 8);
    if (version > CKPT_VERSION) {
        rc = cf_fail(err, CF_EINPUT, "%s: checkpoint format version %u is newer than this "
                     "clinfm reads (%u); upgrade clinfm", path, version, CKPT_VERSION);
        goto fail;
    }
    if (version < 1 || le_get32(hdr + 16) != CKPT_HEADER) {
        rc = cf_fail(err, CF_EINPUT, "%s: checkpoint format version %u is not supported; "
                     "retrain with this clinfm", path, version);
        goto fail;
    }
    if (le_get32(hdr + 252) != crc_of(hdr, 252)) {
        rc = cf_fail(err, CF_EINPUT, "%s: checkpoint header is corrupt (CRC mismatch); restore "
                     "the file or retrain", path);
        goto fail;
    }
    if (expect_vocab_hash && memcmp(hdr + 80, expect_vocab_hash, 32) != 0) {
        rc = cf_fail(err, CF_EINPUT, "%s: checkpoint was trained with a different vocabulary "
                     "(hash mismatch); use the vocabulary it was trained with, or retrain", path);
        goto fail;
    }
    uint32_t flags = le_get32(hdr + 12), n = le_get32(hdr + 20);
    gpt_config c;
    c.max_seq_len = (int)le_get32(hdr + 24);
    c.vocab_size = (int)le_get32(hdr + 28);
    c.padded_vocab_size = (int)le_get32(hdr + 32);
    c.num_layers = (int)le_get32(hdr + 36);
    c.num_heads = (int)le_get32(hdr + 40);
    c.channels = (int)le_get32(hdr + 44);
    c.dropout = le_getf(hdr + 48);
    c.n_features = version >= 2 ? (int)le_get32(hdr + 156) : 0;
    c.feat_hidden = version >= 2 ? (int)le_get32(hdr + 160) : 0;
    c.num_outputs = version >= 2 ? (int)le_get32(hdr + 164) : 0;
    c.cls_pool = version >= 2 ? (int)le_get32(hdr + 168) : 0;
    c.value_head = version >= 2 ? (int)le_get32(hdr + 172) : 0;
    /* zero in a checkpoint written before the variables pooling */
    c.cls_slots = version >= 2 ? (int)le_get32(hdr + 176) : 0;
    c.cls_proj = version >= 2 ? (int)le_get32(hdr + 180) : 0;
    cf_err why = {0};
    if (c.padded_vocab_size == 0 || gpt_config_check(&c, &why) != CF_OK) {
        /* a pooling mode this build does not know is a newer clinfm's checkpoint, not damage */
        rc = cf_fail(err, CF_EINPUT, "%s: checkpoint holds a model config this clinfm cannot use "
                     "(%s); the file is damaged or was written by a newer clinfm", path,
                     c.padded_vocab_size == 0 ? "padded vocabulary size 0" : why.msg);
        goto fail;
    }
    if (n > CKPT_MAX_TENSORS || (uint64_t)st.st_size < CKPT_HEADER + (uint64_t)n * CKPT_ENTRY) {
        rc = cf_fail(err, CF_EINPUT, "%s: checkpoint directory is damaged or truncated", path);
        goto fail;
    }
    /* The tensors the config implies must fit in the file before anything that size is
     * allocated: a damaged header must not be able to ask for gigabytes. */
    uint64_t need = 0;
    for (int i = 0; i < GPT_NUM_PARAM_TENSORS; i++) need += param_count(&c, i) * sizeof(float);
    if (flags & GPT_CKPT_OPTIMIZER) need *= 3;
    if (need > (uint64_t)st.st_size) {
        rc = cf_fail(err, CF_EINPUT, "%s: checkpoint is truncated (its config needs %llu bytes of "
                     "tensors, the file has %llu); restore the file or retrain", path,
                     (unsigned long long)need, (unsigned long long)st.st_size);
        goto fail;
    }
    dir = malloc((size_t)n * CKPT_ENTRY + 1);
    if (!dir) {
        rc = cf_fail(err, CF_EINTERNAL, "out of memory reading the checkpoint directory");
        goto fail;
    }
    if (pread_all(fd, dir, (size_t)n * CKPT_ENTRY, CKPT_HEADER) != 0) {
        rc = cf_fail(err, CF_EINPUT, "%s: checkpoint directory is truncated", path);
        goto fail;
    }
    rc = build_uninit(m, &c, le_get64(hdr + 64), err);
    if (rc) goto fail;
    int with_moments = (flags & GPT_CKPT_OPTIMIZER) != 0;
    if (with_moments) {
        m->m_memory = alloc_floats(m->num_parameters);
        m->v_memory = alloc_floats(m->num_parameters);
        if (!m->m_memory || !m->v_memory) {
            rc = cf_fail(err, CF_EINTERNAL, "out of memory for the optimizer state");
            goto fail_model;
        }
        memset(m->m_memory, 0, m->num_parameters * sizeof(float));
        memset(m->v_memory, 0, m->num_parameters * sizeof(float));
    }
    memset(m->param_memory, 0, m->num_parameters * sizeof(float));
    ckpt_tensor t[CKPT_MAX_TENSORS];
    int nt = ckpt_tensors(m, with_moments, t);
    for (int i = 0; i < nt; i++) {
        const uint8_t *e = NULL;
        for (uint32_t k = 0; k < n; k++) {
            const uint8_t *x = dir + (size_t)k * CKPT_ENTRY;
            if (strncmp((const char *)x, t[i].name, 48) == 0) {
                e = x;
                break;
            }
        }
        if (!e) {
            rc = cf_fail(err, CF_EINPUT, "%s: checkpoint lacks tensor %s; it was written by an "
                         "incompatible clinfm: retrain", path, t[i].name);
            goto fail_model;
        }
        int same = le_get32(e + 48) == (uint32_t)t[i].ndim;
        for (int k = 0; k < 4; k++) same = same && le_get32(e + 52 + 4 * k) == t[i].dims[k];
        uint64_t off = le_get64(e + 72), bytes = le_get64(e + 80);
        if (!same || bytes != t[i].count * sizeof(float)) {
            rc = cf_fail(err, CF_EINPUT, "%s: tensor %s has a shape that does not match the "
                         "checkpoint's config; the file is damaged", path, t[i].name);
            goto fail_model;
        }
        if (off > (uint64_t)st.st_size || bytes > (uint64_t)st.st_size - off ||
            pread_all(fd, t[i].dest, bytes, off) != 0) {
            rc = cf_fail(err, CF_EINPUT, "%s: checkpoint is truncated inside tensor %s; restore "
                         "the file or retrain", path, t[i].name);
            goto fail_model;
        }
        if (crc_of(t[i].dest, bytes) != le_get32(e + 68)) {
            rc = cf_fail(err, CF_EINPUT, "%s: tensor %s is corrupt (CRC mismatch); restore the "
                         "file or retrain", path, t[i].name);
            goto fail_model;
        }
    }
    cf_err bad = {0};
    if (gpt_slot_map_check(m, &bad) != CF_OK) {
        rc = cf_fail(err, CF_EINPUT, "%s: %s; the file is damaged", path, bad.msg);
        goto fail_model;
    }
    m->step = le_get64(hdr + 56);
    m->kept_step = le_get64(hdr + 184);
    m->rng_counter = le_get64(hdr + 72);
    memcpy(m->vocab_hash, hdr + 80, 32);
    if (opt_out) {
        memset(opt_out, 0, sizeof *opt_out);
        opt_out->lr = le_getf(hdr + 112);
        opt_out->min_lr = le_getf(hdr + 116);
        opt_out->beta1 = le_getf(hdr + 120);
        opt_out->beta2 = le_getf(hdr + 124);
        opt_out->eps = le_getf(hdr + 128);
        opt_out->weight_decay = le_getf(hdr + 132);
        opt_out->grad_clip = le_getf(hdr + 136);
        opt_out->warmup_steps = le_get64(hdr + 140);
        opt_out->total_steps = le_get64(hdr + 148);
    }
    free(dir);
    close(fd);
    return CF_OK;
fail_model:
    gpt_free(m);
fail:
    free(dir);
    close(fd);
    return rc;
}

int gpt_slot_map_check(const gpt_model *m, cf_err *err) {
    const gpt_config *c = &m->config;
    if (c->cls_pool != GPT_POOL_VARIABLES || !c->num_outputs) return CF_OK;
    int used[GPT_POOL_MAX_SLOTS] = {0};
    for (int v = 0; v < c->padded_vocab_size; v++) {
        const float x = m->params.clsmap[v];
        if (!(x == floorf(x) && x >= -1.0f && x < (float)c->cls_slots) || (v >= c->vocab_size && x != -1.0f))
            return cf_fail(err, CF_EINPUT, "the variables pooling's token-to-slot map gives token %d slot %g, "
                           "expected a whole number in -1 .. %d (-1 past the vocabulary)", v, (double)x,
                           c->cls_slots - 1);
        if (x >= 0) used[(int)x] = 1;
    }
    for (int s = 0; s < c->cls_slots; s++)
        if (!used[s])
            return cf_fail(err, CF_EINPUT, "the variables pooling's token-to-slot map gives slot %d of %d no token",
                           s, c->cls_slots);
    return CF_OK;
}
