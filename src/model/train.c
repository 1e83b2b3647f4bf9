/* Training a model from a store, the library half; see train.h. */
#include "model/train.h"

#include <assert.h>
#include <errno.h>
#include <math.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cblas.h>
#include <cjson/cJSON.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "model/dist.h"
#include "timeline/prepare.h"
#include "util/atomic_file.h"
#include "util/file.h"

/* ---------------------------------------------------------------- the data order and a step */

/* Window start for batch row b of a step: a pure function of (seed, step, b). */
uint64_t train_window_pos(uint64_t seed, uint64_t step, int b, uint64_t n_tokens) {
    uint64_t x = seed * 0x9E3779B97F4A7C15ULL ^ (step + 1) * 0xBF58476D1CE4E5B9ULL ^ (uint64_t)(b + 1) * 0x94D049BB133111EBULL;
    x ^= x >> 30;
    x *= 0xBF58476D1CE4E5B9ULL;
    x ^= x >> 27;
    x *= 0x94D049BB133111EBULL;
    x ^= x >> 31;
    return n_tokens ? x % n_tokens : 0;
}

int train_batch_alloc(train_batch *b, const gpt_model *m, int B, cf_err *err) {
    const int T = m->config.max_seq_len, F = m->config.n_features;
    const size_t BT = (size_t)B * T;
    *b = (train_batch){.B = B, .T = T, .F = F};
    b->inputs = malloc(BT * sizeof *b->inputs);
    b->targets = malloc(BT * sizeof *b->targets);
    b->feats = F ? malloc(BT * F * sizeof *b->feats) : NULL;
    b->vtgt = m->config.value_head ? malloc(BT * sizeof *b->vtgt) : NULL;
    if (!b->inputs || !b->targets || (F && !b->feats) || (m->config.value_head && !b->vtgt)) {
        train_batch_free(b);
        return cf_fail(err, CF_EINTERNAL, "out of memory");
    }
    return CF_OK;
}

void train_batch_free(train_batch *b) {
    CF_FREE_ALL(b->inputs, b->targets, b->feats, b->vtgt);
    memset(b, 0, sizeof *b);
}

void train_fill_batch(train_batch *bt, const timeline_shard *train, const vocab *v, uint64_t seed, uint64_t step) {
    const int B = bt->B, T = bt->T, F = bt->F, R = dist_rank(), N = dist_size();
    assert(train->n_tokens > 0); /* the command refuses a train split without tokens */
    /* Row b of rank R is slot R + b*N of the step's global batch. */
    for (int b = 0; b < B; b++)
        timeline_shard_window_x(train, v, train_window_pos(seed, step, R + b * N, train->n_tokens), T,
                                bt->inputs + (size_t)b * T, bt->targets + (size_t)b * T,
                                bt->feats ? bt->feats + (size_t)b * T * F : NULL);
}

static int average_gradients(gpt_model *m, cf_err *err) {
    const size_t BT = (size_t)m->batch_size * m->seq_len;
    const int N = dist_size();
    double loc[2] = {0, 0};
    for (size_t i = 0; i < BT; i++)
        if (m->targets[i] >= 0) {
            loc[0] += m->acts.losses[i];
            loc[1] += 1;
        }
    double tot[2] = {loc[0], loc[1]};
    int rc = dist_allreduce_sum_double(tot, 2, err);
    if (rc) return rc;
    if (tot[1] > 0 && loc[1] * N != tot[1]) {
        const float scale = (float)(loc[1] * N / tot[1]);
        float *g = m->grad_memory;
        for (size_t i = 0; i < m->num_parameters; i++) g[i] *= scale;
    }
    if ((rc = dist_allreduce_mean(m->grad_memory, m->num_parameters, err))) return rc;
    m->mean_loss = tot[1] > 0 ? (float)(tot[0] / tot[1]) : 0.0f;
    return CF_OK;
}

int train_step(gpt_model *m, const gpt_opt_config *opt, train_batch *b, float value_weight, gpt_update_stats *us,
               cf_err *err) {
    int rc;
    assert(b->T == m->config.max_seq_len && b->F == m->config.n_features);
    if (b->vtgt) gpt_value_targets(b->feats, b->B, b->T, b->F, b->vtgt);
    gpt_extra ex = {.feats = b->feats, .lm_weight = 1.0f, .value_targets = b->vtgt, .value_weight = value_weight};
    if ((rc = gpt_forward_ex(m, b->inputs, b->targets, &ex, b->B, b->T, 1, err))) return rc;
    gpt_zero_grad(m);
    if ((rc = gpt_backward(m, err))) return rc;
    if (dist_size() > 1 && (rc = average_gradients(m, err))) return rc;
    return gpt_update(m, opt, us, err);
}

int train_eval_shard(gpt_model *m, const timeline_shard *sh, const vocab *v, uint64_t max_windows, train_batch *bt,
                     double *loss_out, uint64_t *targets_out, double *vloss_out, cf_err *err) {
    const int B = bt->B, T = bt->T, F = bt->F;
    assert(T == m->config.max_seq_len && F == m->config.n_features);
    int *inputs = bt->inputs, *targets = bt->targets;
    float *feats = bt->feats, *vtgt = bt->vtgt;
    *loss_out = NAN;
    *targets_out = 0;
    if (vloss_out) *vloss_out = NAN;
    if (!sh->n_tokens) return CF_OK;
    uint64_t n_windows = (sh->n_tokens + (uint64_t)T - 1) / (uint64_t)T;
    uint64_t use = max_windows > 0 && n_windows > max_windows ? max_windows : n_windows;
    const uint64_t R = (uint64_t)dist_rank(), N = (uint64_t)dist_size();
    double sum = 0, vsum = 0;
    uint64_t count = 0, vcount = 0, k = 0;
    for (uint64_t w0 = 0; w0 < use; w0 += (uint64_t)B, k++) {
        if (k % N != R) continue;
        int rows = (int)(use - w0 < (uint64_t)B ? use - w0 : (uint64_t)B);
        for (int b = 0; b < B; b++) {
            uint64_t wi = w0 + (uint64_t)(b < rows ? b : 0);
            uint64_t pos = (wi * n_windows / use) * (uint64_t)T;
            timeline_shard_window_x(sh, v, pos, T, inputs + (size_t)b * T, targets + (size_t)b * T,
                                    F ? feats + (size_t)b * T * F : NULL);
            if (b >= rows)
                for (int t = 0; t < T; t++) targets[(size_t)b * T + t] = -1;
        }
        if (vtgt) gpt_value_targets(feats, B, T, F, vtgt);
        gpt_extra ex = {.feats = feats, .lm_weight = 1.0f, .value_targets = vtgt};
        int rc = gpt_forward_ex(m, inputs, targets, &ex, B, T, 0, err);
        if (rc) return rc;
        uint64_t nv = 0;
        for (size_t i = 0; i < (size_t)B * T; i++)
            if (targets[i] >= 0) {
                sum += m->acts.losses[i];
                count++;
                if (vtgt && isfinite(vtgt[i])) nv++; /* as gpt__value_forward counts them */
            }
        if (vtgt && nv) vsum += (double)m->value_loss * (double)nv, vcount += nv;
    }
    if (N > 1) {
        double tot[4] = {sum, (double)count, vsum, (double)vcount};
        int rc = dist_allreduce_sum_double(tot, 4, err);
        if (rc) return rc;
        sum = tot[0];
        count = (uint64_t)tot[1];
        vsum = tot[2];
        vcount = (uint64_t)tot[3];
    }
    *loss_out = count ? sum / (double)count : NAN;
    *targets_out = count;
    if (vloss_out && vtgt) *vloss_out = vcount ? vsum / (double)vcount : NAN;
    return CF_OK;
}

/* ---------------------------------------------------------------- the ranks */

static uint64_t state_checksum(const gpt_model *m) {
    size_t bytes = m->num_parameters * sizeof(float);
    uint64_t h = dist_checksum64(m->param_memory, bytes, 1);
    if (m->m_memory) h = dist_checksum64(m->m_memory, bytes, h);
    if (m->v_memory) h = dist_checksum64(m->v_memory, bytes, h);
    return h;
}

int train_resync_if_drifted(gpt_model *m, int *resynced, cf_err *err) {
    *resynced = 0;
    if (dist_size() < 2) return CF_OK;
    uint64_t h = state_checksum(m);
    int first_diff;
    int rc = dist_agree_u64(&h, 1, &first_diff, err);
    if (rc || first_diff < 0) return rc;
    size_t bytes = m->num_parameters * sizeof(float);
    if ((rc = dist_bcast(m->param_memory, bytes, 0, err))) return rc;
    if (m->m_memory && (rc = dist_bcast(m->m_memory, bytes, 0, err))) return rc;
    if (m->v_memory && (rc = dist_bcast(m->v_memory, bytes, 0, err))) return rc;
    *resynced = 1;
    return CF_OK;
}

static uint64_t opt_checksum(const gpt_opt_config *o) {
    const float f[7] = {o->lr, o->min_lr, o->beta1, o->beta2, o->eps, o->weight_decay, o->grad_clip};
    const uint64_t n[2] = {o->warmup_steps, o->total_steps};
    return dist_checksum64(n, sizeof n, dist_checksum64(f, sizeof f, 0));
}

static uint64_t config_checksum(const gpt_config *c) {
    const int32_t x[6] = {c->max_seq_len, c->vocab_size, c->padded_vocab_size, c->num_layers, c->num_heads, c->channels};
    return dist_checksum64(&c->dropout, sizeof c->dropout, dist_checksum64(x, sizeof x, 0));
}

/* Values every rank must hold alike before training starts, and what each one means. */
enum {
    AG_RANKS, AG_BATCH, AG_SEED, AG_STEPS, AG_STOP, AG_EVAL, AG_SAVE, AG_EVAL_BATCHES, AG_HELD_BATCHES, AG_OPT,
    AG_MODEL, AG_VOCAB, AG_SHARDS, AG_STEP, AG_RNG, AG_PARAMS, AG_MOMENTS, AG_COUNT
};
static const char *const agree_names[AG_COUNT] = {
    "the number of ranks", "--batch", "--seed", "--steps", "--stop-after", "--eval-every", "--save-every",
    "--eval-batches", "--held-out-batches", "the optimizer settings (--lr, --min-lr, --warmup, --weight-decay, --grad-clip)",
    "the model architecture", "the vocabulary", "the token shards", "the step being resumed from",
    "the dropout RNG state", "the initial parameters", "the optimizer moments"};

int train_agree(const train_plan *p, const gpt_opt_config *opt, const gpt_model *m, const vocab *v,
                const timeline_shard sh[SPLIT_COUNT], const char **disagree, cf_err *err) {
    uint64_t ag[AG_COUNT];
    ag[AG_RANKS] = (uint64_t)dist_size();
    ag[AG_BATCH] = (uint64_t)p->batch;
    ag[AG_SEED] = p->seed;
    ag[AG_STEPS] = p->steps;
    ag[AG_STOP] = p->stop_after;
    ag[AG_EVAL] = p->eval_every;
    ag[AG_SAVE] = p->save_every;
    ag[AG_EVAL_BATCHES] = (uint64_t)p->eval_batches;
    ag[AG_HELD_BATCHES] = (uint64_t)p->held_out_batches;
    ag[AG_OPT] = opt_checksum(opt);
    ag[AG_MODEL] = config_checksum(&m->config);
    ag[AG_VOCAB] = dist_checksum64(v->hash, sizeof v->hash, v->n_tokens);
    ag[AG_SHARDS] = dist_checksum64(&sh[SPLIT_TRAIN].n_tokens, sizeof sh[SPLIT_TRAIN].n_tokens, 0) ^
                    dist_checksum64(&sh[SPLIT_TUNING].n_tokens, sizeof sh[SPLIT_TUNING].n_tokens, 1) ^
                    dist_checksum64(&sh[SPLIT_HELD_OUT].n_tokens, sizeof sh[SPLIT_HELD_OUT].n_tokens, 2);
    ag[AG_STEP] = m->step;
    ag[AG_RNG] = dist_checksum64(&m->rng_counter, sizeof m->rng_counter, m->rng_seed);
    ag[AG_PARAMS] = dist_checksum64(m->param_memory, m->num_parameters * sizeof(float), 0);
    ag[AG_MOMENTS] = (m->m_memory ? dist_checksum64(m->m_memory, m->num_parameters * sizeof(float), 0) : 0) ^
                     (m->v_memory ? dist_checksum64(m->v_memory, m->num_parameters * sizeof(float), 1) : 0);
    int first_diff;
    *disagree = NULL;
    int rc = dist_agree_u64(ag, AG_COUNT, &first_diff, err);
    if (!rc && first_diff >= 0) *disagree = agree_names[first_diff];
    return rc;
}

int train_threads_per_rank(int user_threads) {
    int t = user_threads;
    if (!t && dist_size() > 1 && !getenv("OMP_NUM_THREADS") && !getenv("OPENBLAS_NUM_THREADS")) {
        long online = sysconf(_SC_NPROCESSORS_ONLN);
        int share = (int)((online > 0 ? online : 1) / dist_local_size());
        cpu_set_t set;
        /* A launcher that binds each rank to some cores has already divided them. */
        if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) < share) share = CPU_COUNT(&set);
        t = share > 1 ? share : 1;
    }
    if (t) {
#ifdef _OPENMP
        omp_set_num_threads(t);
#endif
        openblas_set_num_threads(t);
    }
    return t;
}

/* ---------------------------------------------------------------- starting from another model */

int train_init_from(gpt_model *m, const vocab *v, const char *path, train_init_report *rep, cf_err *err) {
    memset(rep, 0, sizeof *rep);
    char vp[4400], cp[4400];
    model_bundle mb;
    int rc = bundle_open(&mb, path, err);
    if (rc) return rc;
    rc = bundle_part_path(&mb, BUNDLE_VOCAB, vp, sizeof vp, err);
    if (!rc) rc = bundle_part_path(&mb, BUNDLE_CHECKPOINT, cp, sizeof cp, err);
    bundle_close(&mb);
    if (rc) return rc;
    vocab sv;
    if ((rc = vocab_load(&sv, vp, err))) return rc;
    gpt_model src;
    if ((rc = gpt_load(&src, cp, sv.hash, NULL, err))) {
        vocab_free(&sv);
        return rc;
    }
    const gpt_config *a = &src.config, *b = &m->config;
    if (a->num_layers != b->num_layers || a->channels != b->channels || a->num_heads != b->num_heads) {
        rc = cf_fail(err, CF_EINPUT, "--init %s: its architecture (%d layers, d_model %d, %d heads) differs from this "
                     "one (%d, %d, %d); give the same --layers, --d-model and --heads", path, a->num_layers, a->channels,
                     a->num_heads, b->num_layers, b->channels, b->num_heads);
        goto out;
    }
    const size_t C = (size_t)b->channels, L = (size_t)b->num_layers;
    const gpt_params *x = &src.params, *y = &m->params;
#define COPY(f, count) memcpy(y->f, x->f, (count) * sizeof(float))
    COPY(ln1w, L * C); COPY(ln1b, L * C); COPY(qkvw, L * 3 * C * C); COPY(qkvb, L * 3 * C);
    COPY(attprojw, L * C * C); COPY(attprojb, L * C); COPY(ln2w, L * C); COPY(ln2b, L * C);
    COPY(fcw, L * 4 * C * C); COPY(fcb, L * 4 * C); COPY(fcprojw, L * 4 * C * C); COPY(fcprojb, L * C);
    COPY(lnfw, C); COPY(lnfb, C);
    int inputs = a->n_features == b->n_features && a->feat_hidden == b->feat_hidden && b->n_features > 0;
    if (inputs) {
        COPY(xw1, (size_t)b->feat_hidden * b->n_features);
        COPY(xb1, (size_t)b->feat_hidden);
        COPY(xw2, C * (size_t)b->feat_hidden);
    }
    int pos = a->max_seq_len < b->max_seq_len ? a->max_seq_len : b->max_seq_len;
    COPY(wpe, (size_t)pos * C);
#undef COPY
    /* The value forecast is indexed by token like the embeddings: a shared token keeps the forecast
     * it learned, so the adaptation does not start one of its two losses from scratch. */
    const int values = a->value_head && b->value_head;
    uint32_t shared = 0;
    for (uint32_t t = 0; t < v->n_tokens; t++) {
        int64_t j = vocab_find(&sv, vocab_token_str(v, t));
        if (j < 0) continue;
        memcpy(y->wte + (size_t)t * C, x->wte + (size_t)j * C, C * sizeof(float));
        if (values) {
            memcpy(y->valw + (size_t)t * C, x->valw + (size_t)j * C, C * sizeof(float));
            y->valb[t] = x->valb[j];
        }
        shared++;
    }
    *rep = (train_init_report){.step = gpt_params_step(&src), .inputs = inputs, .values = values, .positions = pos, .shared = shared};
out:
    gpt_free(&src);
    vocab_free(&sv);
    return rc;
}

/* ---------------------------------------------------------------- sharing rank 0's data */

static int mkdir_parents(const char *dir, cf_err *err) {
    char p[4300];
    snprintf(p, sizeof p, "%s", dir);
    for (char *c = p + 1;; c++) {
        if (*c != '/' && *c) continue;
        char keep = *c;
        *c = '\0';
        if (mkdir(p, 0777) != 0 && errno != EEXIST)
            return cf_fail_errno(err, CF_EINPUT, "%s: cannot create the shard directory", p);
        *c = keep;
        if (!keep) return CF_OK;
    }
}

int train_share_prepared(vocab *v, int have_vocab, const char *shard_dir, char shard_path[SPLIT_COUNT][4300],
                         int *ranks_received, cf_err *err) {
    const int lead = dist_rank() == 0;
    uint8_t *bytes = NULL;
    size_t n = 0;
    int rc = CF_OK, r2;
    if (lead && (!have_vocab || vocab_serialize(v, &bytes, &n, err))) n = 0;
    uint64_t n64 = n;
    if ((rc = dist_bcast(&n64, sizeof n64, 0, err))) goto out;
    if (!n64) {
        rc = cf_fail(err, CF_EINTERNAL, "rank 0 could not send its vocabulary");
        goto out;
    }
    if (!lead && !(bytes = malloc(n64))) rc = cf_fail(err, CF_EINTERNAL, "out of memory");
    if (rc) {
        /* this rank cannot receive; the job cannot go on */
        cf_err_print(err);
        cf_err_reported(err);
        rc = dist_abort(rc);
        goto out;
    }
    if ((rc = dist_bcast(bytes, n64, 0, err))) goto out;
    if (!lead) rc = vocab_parse(v, bytes, n64, "rank 0's vocabulary", err);
    if (!lead && !rc) rc = mkdir_parents(shard_dir, err);
    double any = 0; /* this rank received a shard */
    for (int p = 0; p < SPLIT_COUNT; p++) {
        char local[4300];
        int fd, got;
        r2 = dist_share_file(shard_path[p], 256, 1, NULL, local, sizeof local, &fd, &got, err);
        if (!rc) rc = r2;
        if (got) any = 1;
    }
    if ((r2 = dist_allreduce_sum_double(&any, 1, err)) && !rc) rc = r2;
    *ranks_received = (int)any;
out:
    free(bytes);
    return rc;
}

/* ---------------------------------------------------------------- the training split */

static int file_exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0;
}

int train_split_reuse(model_bundle *b, const store *s, const split_config *sp, const char *dir, int *kept,
                      cf_err *err) {
    char pj[4400], pb[4400];
    snprintf(pj, sizeof pj, "%s/%s", dir, BUNDLE_SPLIT);
    snprintf(pb, sizeof pb, "%s/%s", dir, BUNDLE_SPLIT_SUBJECTS);
    *kept = 0;
    if (!file_exists(pj) || !file_exists(pb)) return CF_OK;
    int rc;
    if ((rc = bundle_put_file(b, BUNDLE_SPLIT_SUBJECTS, pb, err)) || (rc = bundle_put_file(b, BUNDLE_SPLIT, pj, err)))
        return rc;
    bundle_split bs;
    cf_err ignored = {0};
    if (bundle_load_split(b, &bs, &ignored) == CF_OK) {
        char hex[65];
        uint8_t id[SPLIT_KEY_ID_BYTES];
        timeline_store_fingerprint(s, hex);
        split_key_id(sp, id);
        *kept = bs.present && !strcmp(bs.store_hash, hex) && !memcmp(bs.key_id, id, sizeof id) &&
                bs.train_ppm == sp->train_ppm && bs.tuning_ppm == sp->tuning_ppm;
        bundle_split_free(&bs);
    }
    return CF_OK;
}

int train_split_record(model_bundle *b, const store *s, const split_config *sp, const char *dir, cf_err *err) {
    assert(store_events_open(s));
    char pj[4400], pb[4400], bj[4400], bb[4400];
    snprintf(pj, sizeof pj, "%s/%s", dir, BUNDLE_SPLIT);
    snprintf(pb, sizeof pb, "%s/%s", dir, BUNDLE_SPLIT_SUBJECTS);
    unlink(pj);
    unlink(pb);
    int rc = bundle_record_split(b, s, sp, err);
    if (rc) return rc;
    /* Kept for the next run; a folder that cannot take it costs that run the time, nothing else. */
    cf_err ignored = {0};
    if (!bundle_part_path(b, BUNDLE_SPLIT, bj, sizeof bj, &ignored) &&
        !bundle_part_path(b, BUNDLE_SPLIT_SUBJECTS, bb, sizeof bb, &ignored) && !atomic_copy_file(bb, pb, &ignored))
        (void)atomic_copy_file(bj, pj, &ignored);
    return CF_OK;
}

/* ---------------------------------------------------------------- the training summary */

int train_write_summary(const char *path, const train_summary *t, const gpt_model *m, const vocab *v,
                        const timeline_baseline *base, cf_err *err) {
    cJSON *r = cJSON_CreateObject();
    char hex[2 * VOCAB_HASH_BYTES + 1];
    cJSON_AddStringToObject(r, "producer", t->producer);
    cJSON_AddBoolToObject(r, "trained_on_identified_data", t->identified);
    cJSON *c = cJSON_AddObjectToObject(r, "config");
    cJSON_AddNumberToObject(c, "layers", m->config.num_layers);
    cJSON_AddNumberToObject(c, "d_model", m->config.channels);
    cJSON_AddNumberToObject(c, "heads", m->config.num_heads);
    cJSON_AddNumberToObject(c, "context", m->config.max_seq_len);
    cJSON_AddNumberToObject(c, "vocab_size", m->config.vocab_size);
    cJSON_AddNumberToObject(c, "parameters", (double)m->num_parameters);
    cJSON_AddNumberToObject(c, "dropout", m->config.dropout);
    cJSON_AddNumberToObject(c, "continuous_inputs", m->config.n_features);
    cJSON_AddNumberToObject(c, "input_hidden", m->config.feat_hidden);
    cJSON_AddStringToObject(c, "values", v->value_mode == VOCAB_VALUES_EMBED ? "embed" : "tokens");
    if (t->init) cJSON_AddStringToObject(c, "init", t->init);
    if (t->early_stop) cJSON_AddNumberToObject(c, "early_stop", t->early_stop);
    cJSON_AddNumberToObject(c, "batch", t->batch);
    cJSON_AddNumberToObject(c, "ranks", dist_size());
    cJSON_AddNumberToObject(c, "global_batch", (double)t->batch * dist_size());
    cJSON_AddNumberToObject(c, "steps", (double)t->steps);
    cJSON_AddNumberToObject(c, "lr", t->lr);
    cJSON_AddNumberToObject(c, "seed", (double)t->seed);
    cJSON_AddStringToObject(r, "vocab_hash", vocab_hash_hex(v, hex));
    cJSON_AddNumberToObject(r, "step", (double)m->step);
    if (m->kept_step) cJSON_AddNumberToObject(r, "kept_step", (double)m->kept_step);
    cJSON_AddNumberToObject(r, "trained_tokens", (double)t->trained_tokens);
    cJSON_AddNumberToObject(r, "tokens_per_second", t->tokens_per_s);
    cJSON *l = cJSON_AddObjectToObject(r, "loss_nats_per_token");
    cJSON_AddNumberToObject(l, "train_last", t->train_loss);
    if (!isnan(t->tuning_loss)) cJSON_AddNumberToObject(l, "tuning", t->tuning_loss);
    if (!isnan(t->held_loss)) cJSON_AddNumberToObject(l, "held_out", t->held_loss);
    cJSON_AddNumberToObject(l, "held_out_targets", (double)t->held_targets);
    if (!isnan(t->held_loss)) {
        cJSON_AddNumberToObject(l, "held_out_windows", (double)t->held_windows[0]);
        cJSON_AddNumberToObject(l, "held_out_windows_total", (double)t->held_windows[1]);
    }
    if (!isnan(base->unigram[SPLIT_HELD_OUT])) cJSON_AddNumberToObject(l, "held_out_unigram", base->unigram[SPLIT_HELD_OUT]);
    if (!isnan(base->bigram[SPLIT_HELD_OUT])) cJSON_AddNumberToObject(l, "held_out_bigram", base->bigram[SPLIT_HELD_OUT]);
    char *s = cJSON_Print(r);
    cJSON_Delete(r);
    if (!s) return cf_fail(err, CF_EINTERNAL, "out of memory");
    int rc = atomic_write_file(path, s, strlen(s), err);
    free(s);
    return rc;
}

int train_patch_summary(const char *path, const train_summary *t, cf_err *err) {
    char *text = NULL, *out = NULL;
    size_t n = 0;
    int rc = file_read_all(path, (size_t)1 << 24, &text, &n, err);
    if (rc) return rc;
    cJSON *r = cJSON_ParseWithLength(text, n);
    cJSON *l = r ? cJSON_GetObjectItem(r, "loss_nats_per_token") : NULL;
    if (!cJSON_IsObject(l)) {
        rc = cf_fail(err, CF_EINPUT, "%s: no loss_nats_per_token object to update", path);
        goto out;
    }
    const char *keys[4] = {"held_out", "held_out_targets", "held_out_windows", "held_out_windows_total"};
    const double vals[4] = {t->held_loss, (double)t->held_targets, (double)t->held_windows[0], (double)t->held_windows[1]};
    for (int i = 0; i < 4; i++) {
        cJSON_DeleteItemFromObject(l, keys[i]);
        if (!isnan(vals[i])) cJSON_AddNumberToObject(l, keys[i], vals[i]);
    }
    if (!(out = cJSON_Print(r))) rc = cf_fail(err, CF_EINTERNAL, "out of memory");
    else rc = atomic_write_file(path, out, strlen(out), err);
out:
    cJSON_Delete(r);
    free(text);
    free(out);
    return rc;
}

int train_summary_data(const char *path, long *global_batch, uint64_t *seed, cf_err *err) {
    FILE *f = fopen(path, "r");
    if (!f) return cf_fail_errno(err, CF_EINPUT, "%s: cannot read the run being resumed", path);
    char buf[65536];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    cJSON *r = cJSON_Parse(buf);
    cJSON *c = r ? cJSON_GetObjectItem(r, "config") : NULL;
    cJSON *jb = c ? cJSON_GetObjectItem(c, "batch") : NULL, *js = c ? cJSON_GetObjectItem(c, "seed") : NULL;
    cJSON *jg = c ? cJSON_GetObjectItem(c, "global_batch") : NULL;
    int rc = CF_OK;
    if (!cJSON_IsNumber(jb) || !cJSON_IsNumber(js)) {
        rc = cf_fail(err, CF_EINPUT, "%s: no batch and seed recorded; cannot resume exactly", path);
    } else {
        *global_batch = cJSON_IsNumber(jg) ? (long)jg->valuedouble : (long)jb->valuedouble;
        *seed = (uint64_t)js->valuedouble;
    }
    cJSON_Delete(r);
    return rc;
}
