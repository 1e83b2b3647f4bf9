/* `clinfm train`: the institution's own model, trained from scratch on its (de-identified) store.
 *
 * Pipeline: store -> vocabulary fitted on the train split, token shards per split and n-gram
 * baselines, prepared once and reused by later runs (src/timeline/prepare.h) -> GPT
 * (src/model/gpt.h) trained on fixed-length windows packed from the train shard, evaluated on
 * the tuning shard as it goes and on a budget of held_out windows at the end
 * (--held-out-batches; 0: all), next to the unigram and bigram baselines. Checkpoints are
 * written atomically; `--resume` continues exactly: the optimizer state, step and dropout RNG
 * are in the checkpoint, and the data order is a pure function of (seed, step), so a resumed
 * run sees the same batches it would have seen.
 *
 * Data parallel (src/model/dist.h): started by mpirun with N ranks, rank r trains on global
 * batch slots r, r+N, r+2N, ... of each step, so the N ranks together see exactly the windows
 * one process with --batch N*B would see. Gradients are summed across ranks weighted by each
 * rank's target count, which makes them the gradient of the global batch's mean loss, and
 * every rank then takes the same AdamW step, so the parameters stay identical without being
 * sent around. Rank 0 alone prepares the data, writes files and prints, and sends the ranks
 * whose machine lacks them the vocabulary, shards and (on resume) checkpoint; every other rank
 * is silent unless it fails. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cblas.h>
#include <cjson/cJSON.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "cli/commands.h"
#include "cli/opts.h"
#include "model/bundle.h"
#include "model/dist.h"
#include "model/gpt.h"
#include "store/store.h"
#include "timeline/prepare.h"
#include "timeline/split.h"
#include "timeline/timeline.h"
#include "timeline/vocab.h"
#include "util/atomic_file.h"
#include "util/file.h"
#include "util/progress.h"

typedef struct {
    const char *store, *out, *vocab, *shards, *init;
    cli_split_args split;
    int values; /* VOCAB_VALUES_TOKENS or _EMBED; -1: not given (a new vocabulary's default, or as reused) */
    int layers, d_model, heads, context, batch;
    int inputs, input_hidden, patience;
    float value_loss;
    unsigned long long steps, stop_after, warmup, eval_every, save_every;
    int eval_batches, held_out_batches; /* held_out_batches: -1 as eval_batches, 0 all */
    float lr, min_lr, weight_decay, dropout, grad_clip;
    unsigned long long seed;
    int resume, allow_identified, threads, rebuild;
    int got_arch, batch_set, seed_set; /* given on the command line */
} train_args;

/* --dist is read (and taken out of argv) by dist_init before the table is, so a --dist that
 * reaches the table is an abbreviation dist_init did not take. */
static int dist_prefix(const char *cmd, const char *value, void *dst) {
    (void)value, (void)dst;
    return cli_usage_error(cmd, "write --dist in full (--dist auto|mpi)");
}

/* Reads the command line into *a (defaults filled in). Returns -1 to go on, else the exit status
 * (0 after --help, 1 after a usage error). */
static int train_options(int argc, char **argv, train_args *a) {
    static const cli_choice values[] = {{"tokens", VOCAB_VALUES_TOKENS}, {"embed", VOCAB_VALUES_EMBED}, {NULL, 0}};
    *a = (train_args){.layers = 4, .d_model = 256, .heads = 4, .context = 256, .batch = 8, .steps = 1000,
                      .lr = 3e-4f, .min_lr = -1, .weight_decay = 0.1f, .dropout = 0.1f, .grad_clip = 1.0f,
                      .seed = 1, .eval_batches = 16, .held_out_batches = -1, .input_hidden = 32, .values = -1};
    const cli_opt opts[] = {
        /* data */
        CLI_OPT_STR_REQ("store", &a->store, "STORE",
                        "event store; must be de-identified (clinfm deid) unless\n"
                        "--allow-identified is given, which the training log then records"),
        CLI_OPT_STR_REQ("out", &a->out, "MODEL", "the model bundle directory to write (or, with --resume, continue)"),
        CLI_OPT_FLAG("allow-identified", &a->allow_identified,
                     "train on a store that is not de-identified (the model's training\n"
                     "summary says so)"),
        CLI_OPT_STR("vocab", &a->vocab, "FILE", "use this vocabulary instead of fitting one (copied into MODEL)"),
        CLI_OPT_STR("shards", &a->shards, "DIR",
                    "where the prepared data goes (default MODEL.shards): token shards,\n"
                    "vocabulary copy and prepared.json; a DIR prepared from the same\n"
                    "store, split and vocabulary (by an earlier train or clinfm vocab\n"
                    "--shards) is reused, checked by checksum; a stale one is rebuilt"),
        CLI_OPT_FLAG("rebuild", &a->rebuild, "prepare the data again even when DIR matches"),
        CLI_OPTS_SPLIT(&a->split),
        CLI_OPT_CHOICE("values", &a->values, "tokens|embed", values,
                       "numeric values as a decile token after the code (tokens, default)\n"
                       "or on the code token alone (embed); a new vocabulary only"),
        /* model (defaults: the reference configuration) */
        CLI_OPT_INT("layers", &a->layers, "N", 1, 64, "transformer layers (default 4)"),
        CLI_OPT_INT("d-model", &a->d_model, "N", 8, 8192, "model width (default 256)"),
        CLI_OPT_INT("heads", &a->heads, "N", 1, 256, "attention heads (default 4)"),
        CLI_OPT_INT("context", &a->context, "N", 16, 65536, "tokens per window (default 256)"),
        CLI_OPT_FLOAT("dropout", &a->dropout, "P", 0, INFINITY, "dropout probability, below 1 (default 0.1)"),
        CLI_OPT_FLAG("inputs", &a->inputs,
                     "give the model each token's numeric value and times as continuous\n"
                     "inputs (docs/MODEL.md)"),
        CLI_OPT_INT("input-hidden", &a->input_hidden, "N", 1, 4096, "with --inputs: their MLP width (default 32)"),
        CLI_OPT_FLOAT("value-loss", &a->value_loss, "W", 0, INFINITY,
                      "with --inputs: also forecast each next token's value (given the\n"
                      "token), weight W beside the next-token loss, so the model learns\n"
                      "the numbers it reads (0: off)"),
        CLI_OPT_STR("init", &a->init, "MODEL",
                    "start from a trained model (another store's, another vocabulary):\n"
                    "the transformer is copied, token embeddings by token string;\n"
                    "the rest starts fresh"),
        /* optimisation */
        CLI_OPT_INT("batch", &a->batch, "N", 1, 4096, "windows per step (default 8; per rank with mpirun)"),
        CLI_OPT_U64("steps", &a->steps, "N", 1, CLI_ANY, "optimizer steps (default 1000)"),
        CLI_OPT_FLOAT("lr", &a->lr, "X", 0, INFINITY, "peak learning rate (default 3e-4)"),
        CLI_OPT_FLOAT("min-lr", &a->min_lr, "X", 0, INFINITY, "learning rate at the end of the decay (default lr/10)"),
        CLI_OPT_U64("warmup", &a->warmup, "N", 0, CLI_ANY, "warm-up steps (default steps/20)"),
        CLI_OPT_FLOAT("weight-decay", &a->weight_decay, "X", 0, INFINITY, "AdamW weight decay (default 0.1)"),
        CLI_OPT_FLOAT("grad-clip", &a->grad_clip, "X", 0, INFINITY, "gradient norm clip (default 1.0)"),
        CLI_OPT_U64("seed", &a->seed, "N", 0, CLI_ANY, "initialisation, data order and dropout seed (default 1)"),
        CLI_OPT_INT("threads", &a->threads, "N", 1, 1024, "threads (default: all cores; cores / ranks with mpirun)"),
        CLI_OPT_U64("eval-every", &a->eval_every, "N", 0, CLI_ANY, "steps between tuning evaluations (default steps/10)"),
        CLI_OPT_INT("eval-batches", &a->eval_batches, "N", 1, 100000, "batches of a tuning evaluation (default 16)"),
        CLI_OPT_U64("save-every", &a->save_every, "N", 0, CLI_ANY, "steps between checkpoints (default eval-every)"),
        CLI_OPT_INT("held-out-batches", &a->held_out_batches, "N", 0, 100000000,
                    "batches of the held-out evaluation after the last step (default:\n"
                    "--eval-batches; 0: the whole split). --resume --held-out-batches 0\n"
                    "on a finished model evaluates it all and updates train.json"),
        CLI_OPT_INT("early-stop", &a->patience, "N", 1, 1000000,
                    "stop after N evaluations without a better tuning loss, and\n"
                    "write the parameters of the best one (chosen on tuning loss)"),
        CLI_OPT_FLAG("resume", &a->resume, "continue from MODEL (same data, vocabulary and architecture)"),
        CLI_OPT_U64("stop-after", &a->stop_after, "N", 0, CLI_ANY, "stop after step N of --steps (a planned interruption)"),
        /* data-parallel */
        CLI_OPT_FN("dist", NULL, "auto|mpi", dist_prefix,
                       "auto (default): join MPI only when started by mpirun/mpiexec/srun;\n"
                       "mpi: always"),
        CLI_OPT_END};
    unsigned char given[sizeof opts / sizeof opts[0]];
    const cli_spec spec = {
        .cmd = "train",
        .usage = "train --store STORE --out MODEL [options]",
        .about = "Trains a GPT-style model on the store's patient timelines (train split), reporting tuning\n"
                 "loss as it goes and held-out loss at the end beside unigram and bigram baselines.\n"
                 "MODEL is a bundle directory (docs/MODEL.md): checkpoint, vocabulary (fitted on train, or\n"
                 "--vocab), training summary, the split it was trained under and keyed hashes of its\n"
                 "training subjects, with a manifest of checksums; task heads join it from clinfm eval.\n"
                 "Token shards go to MODEL.shards/ beside it (patient data, never part of the bundle).\n",
        .opts = opts,
        .after = "\ndata-parallel (docs/MODEL.md):\n"
                 "  mpirun -np N [--hostfile H] clinfm train ...\n"
                 "    trains on N ranks: --batch is per rank, and the N ranks together see the batches one\n"
                 "    process with --batch N*B would see; rank 0 writes every file; threads per rank default\n"
                 "    to cores / ranks. Machines need not share a filesystem: ranks lacking rank 0's shards\n"
                 "    (or, on --resume, checkpoint) receive them.\n",
        .given = given};
    int status;
    /* Every rank reads the same command line; rank 0 alone prints the help. */
    if (dist_rank() > 0)
        for (int i = 1; i < argc && strcmp(argv[i], "--"); i++)
            if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) return 0;
    if (!cli_parse(&spec, argc, argv, NULL, &status)) return status;
    if (a->dropout >= 1) return cli_usage_error("train", "--dropout must be below 1");
    a->got_arch = cli_given(&spec, "layers") || cli_given(&spec, "d-model") || cli_given(&spec, "heads") ||
                  cli_given(&spec, "context") || cli_given(&spec, "dropout") || cli_given(&spec, "input") ||
                  cli_given(&spec, "value-loss");
    a->batch_set = cli_given(&spec, "batch");
    a->seed_set = cli_given(&spec, "seed");
    if (a->min_lr < 0) a->min_lr = a->lr / 10;
    if (!cli_given(&spec, "warmup")) a->warmup = a->steps / 20;
    if (!a->eval_every) a->eval_every = a->steps / 10 ? a->steps / 10 : 1;
    if (!a->save_every) a->save_every = a->eval_every;
    if (!a->stop_after || a->stop_after > a->steps) a->stop_after = a->steps;
    if (a->held_out_batches < 0) a->held_out_batches = a->eval_batches;
    return -1;
}

/* Window start for batch row b of a step: a pure function of (seed, step, b). */
static uint64_t window_pos(uint64_t seed, uint64_t step, int b, uint64_t n_tokens) {
    uint64_t x = seed * 0x9E3779B97F4A7C15ULL ^ (step + 1) * 0xBF58476D1CE4E5B9ULL ^ (uint64_t)(b + 1) * 0x94D049BB133111EBULL;
    x ^= x >> 30;
    x *= 0xBF58476D1CE4E5B9ULL;
    x ^= x >> 27;
    x *= 0x94D049BB133111EBULL;
    x ^= x >> 31;
    return n_tokens ? x % n_tokens : 0;
}

/* Mean loss over target tokens of windows tiling the shard (at most max_windows of them, evenly
 * spaced): the same windows every time, so evaluations are comparable across steps. With
 * several ranks, rank r runs batches r, r+N, ... of those windows and the sums are added
 * across ranks, so every rank must call this at the same point. With vtgt (B*T scratch; a
 * model with a value head) also the mean value-forecast loss over the tokens that carry a
 * value into *vloss_out: the training step's own value loss is no measure of the tuning rows. */
static int eval_shard(gpt_model *m, const timeline_shard *sh, const vocab *v, int B, int T, uint64_t max_windows,
                      double *loss_out, uint64_t *targets_out, int *inputs, int *targets, float *feats, float *vtgt,
                      double *vloss_out, cf_err *err) {
    const int F = m->config.n_features;
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

/* After each rank's backward: makes every rank's gradient the gradient of the global batch's
 * mean loss, and m->mean_loss that loss. A rank's backward divided by its own target count n_r;
 * scaling by n_r * N / n_total before the mean over ranks turns that into sum / n_total, as one
 * process holding the whole batch would compute (ranks' target counts differ: prefix tokens
 * carry no target). */
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

/* Checksum of what an update reads and writes: parameters and both AdamW moments. */
static uint64_t state_checksum(const gpt_model *m) {
    size_t bytes = m->num_parameters * sizeof(float);
    uint64_t h = dist_checksum64(m->param_memory, bytes, 1);
    if (m->m_memory) h = dist_checksum64(m->m_memory, bytes, h);
    if (m->v_memory) h = dist_checksum64(m->v_memory, bytes, h);
    return h;
}

/* Ranks run the same update on the same averaged gradients, so their states stay equal; but
 * ranks on CPUs of different kinds may round differently. At each save point the states are
 * compared and, if they drifted, rank 0's is copied to the others (rank 0's is the one saved). */
static int resync_if_drifted(gpt_model *m, int *resynced, cf_err *err) {
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

/* Threads per rank: --threads, else with several ranks on a machine and no thread count chosen
 * (OMP_NUM_THREADS, OPENBLAS_NUM_THREADS), each rank takes its share of the cores it may run on,
 * at least one, so N ranks do not run N x cores threads. The count goes to OpenMP and OpenBLAS
 * as well as the model: a model on one thread whose kernels still open parallel regions of all
 * cores ran about 40 times slower here. Returns the count chosen, or 0 when the defaults stand. */
static int threads_per_rank(int user_threads) {
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

/* Starts m (built for vocabulary v) from the trained model at path (and path.vocab): the
 * transformer's tensors when the two architectures agree, the continuous inputs' MLP when both
 * have the same inputs, the position embeddings of the positions both have, and the token
 * embedding of every token whose string both vocabularies hold (the rest keep their fresh
 * initialisation). Task heads are never copied: a new task starts its head from zero. This is
 * how a model pretrained on one store (another hospital, more patients) is adapted to another. */
static int init_from(gpt_model *m, const vocab *v, const char *path, int verbose, cf_err *err) {
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
    uint32_t shared = 0;
    for (uint32_t t = 0; t < v->n_tokens; t++) {
        int64_t j = vocab_find(&sv, vocab_token_str(v, t));
        if (j < 0) continue;
        memcpy(y->wte + (size_t)t * C, x->wte + (size_t)j * C, C * sizeof(float));
        shared++;
    }
    if (verbose)
        printf("init: from %s (step %llu): transformer%s, %d positions, %u of %u token embeddings (by token string)\n",
               path, (unsigned long long)src.step, inputs ? " and continuous inputs" : "", pos, shared, v->n_tokens);
out:
    gpt_free(&src);
    vocab_free(&sv);
    return rc;
}

static int file_exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0;
}


/* Reopens a store opened by store_open_summary with its events (store_open), unless they can
 * be read already. */
static int open_events(store *s, const char *path, int *open_ok, cf_err *err) {
    if (store_events_open(s)) return CF_OK;
    store_close(s);
    *open_ok = 0;
    int rc = store_open(s, path, err);
    if (!rc) *open_ok = 1;
    return rc;
}

/* The bundle's record of the training split (split.json, split_subjects.bin) depends on the
 * store and the split alone, as the preparation does, but reads the first events of every
 * subject (about 20 us each: 0.2 s at 10,000 subjects, minutes at 10 million). So it is kept
 * beside the preparation and copied from there while the preparation is reused; the copy must
 * name this store and split key, or it is made again. A store opened by store_open_summary has
 * no events: when the kept copy cannot be used, *need_events is set and nothing is recorded
 * (the caller opens the events and calls again). */
static int record_split(model_bundle *b, const store *s, const split_config *sp, const char *dir, int reused,
                        int *need_events, cf_err *err) {
    char pj[4400], pb[4400], bj[4400], bb[4400];
    snprintf(pj, sizeof pj, "%s/%s", dir, BUNDLE_SPLIT);
    snprintf(pb, sizeof pb, "%s/%s", dir, BUNDLE_SPLIT_SUBJECTS);
    int rc;
    if (reused && file_exists(pj) && file_exists(pb)) {
        if ((rc = bundle_put_file(b, BUNDLE_SPLIT_SUBJECTS, pb, err)) || (rc = bundle_put_file(b, BUNDLE_SPLIT, pj, err)))
            return rc;
        bundle_split bs;
        cf_err ignored = {0};
        if (bundle_load_split(b, &bs, &ignored) == CF_OK) {
            char hex[65];
            uint8_t id[SPLIT_KEY_ID_BYTES];
            timeline_store_fingerprint(s, hex);
            split_key_id(sp, id);
            int ok = bs.present && !strcmp(bs.store_hash, hex) && !memcmp(bs.key_id, id, sizeof id) &&
                     bs.train_ppm == sp->train_ppm && bs.tuning_ppm == sp->tuning_ppm;
            bundle_split_free(&bs);
            if (ok) return CF_OK;
        }
    }
    if (!store_events_open(s)) {
        *need_events = 1;
        return CF_OK;
    }
    unlink(pj);
    unlink(pb);
    if ((rc = bundle_record_split(b, s, sp, err))) return rc;
    /* Kept for the next run; a folder that cannot take it costs that run the time, nothing else. */
    cf_err ignored = {0};
    if (!bundle_part_path(b, BUNDLE_SPLIT, bj, sizeof bj, &ignored) &&
        !bundle_part_path(b, BUNDLE_SPLIT_SUBJECTS, bb, sizeof bb, &ignored) && !atomic_copy_file(bb, pb, &ignored))
        (void)atomic_copy_file(bj, pj, &ignored);
    return CF_OK;
}

static int write_summary(const char *path, const train_args *a, const gpt_model *m, const vocab *v,
                         const timeline_baseline *base, double train_loss, double tuning_loss, double held_loss, uint64_t held_targets,
                         const uint64_t held_windows[2], double tokens_per_s, uint64_t trained_tokens, int identified,
                         cf_err *err) {
    cJSON *r = cJSON_CreateObject();
    char hex[2 * VOCAB_HASH_BYTES + 1];
    cJSON_AddStringToObject(r, "producer", "clinfm " CLINFM_VERSION);
    cJSON_AddBoolToObject(r, "trained_on_identified_data", identified);
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
    if (a->init) cJSON_AddStringToObject(c, "init", a->init);
    if (a->patience) cJSON_AddNumberToObject(c, "early_stop", a->patience);
    cJSON_AddNumberToObject(c, "batch", a->batch);
    cJSON_AddNumberToObject(c, "ranks", dist_size());
    cJSON_AddNumberToObject(c, "global_batch", (double)a->batch * dist_size());
    cJSON_AddNumberToObject(c, "steps", (double)a->steps);
    cJSON_AddNumberToObject(c, "lr", a->lr);
    cJSON_AddNumberToObject(c, "seed", (double)a->seed);
    cJSON_AddStringToObject(r, "vocab_hash", vocab_hash_hex(v, hex));
    cJSON_AddNumberToObject(r, "step", (double)m->step);
    cJSON_AddNumberToObject(r, "trained_tokens", (double)trained_tokens);
    cJSON_AddNumberToObject(r, "tokens_per_second", tokens_per_s);
    cJSON *l = cJSON_AddObjectToObject(r, "loss_nats_per_token");
    cJSON_AddNumberToObject(l, "train_last", train_loss);
    if (!isnan(tuning_loss)) cJSON_AddNumberToObject(l, "tuning", tuning_loss);
    if (!isnan(held_loss)) cJSON_AddNumberToObject(l, "held_out", held_loss);
    cJSON_AddNumberToObject(l, "held_out_targets", (double)held_targets);
    if (!isnan(held_loss)) {
        cJSON_AddNumberToObject(l, "held_out_windows", (double)held_windows[0]);
        cJSON_AddNumberToObject(l, "held_out_windows_total", (double)held_windows[1]);
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

/* A run that trained no step (a finished model resumed, to evaluate held_out again, e.g. whole
 * with --held-out-batches 0) keeps its summary and replaces only the held-out figures. */
static int patch_summary(const char *path, double held_loss, uint64_t held_targets, const uint64_t held_windows[2],
                         cf_err *err) {
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
    const double vals[4] = {held_loss, (double)held_targets, (double)held_windows[0], (double)held_windows[1]};
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

/* The global batch (batch x ranks) and the data seed decide which windows each step sees, so a
 * resume takes them from the run being resumed. The rank count may change if it divides the
 * global batch: the ranks then still see the same windows. */
static int resume_data_args(const char *summary_path, train_args *a, int batch_set, int seed_set, cf_err *err) {
    FILE *f = fopen(summary_path, "r");
    if (!f) return cf_fail_errno(err, CF_EINPUT, "%s: cannot read the run being resumed", summary_path);
    char buf[65536];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    cJSON *r = cJSON_Parse(buf);
    cJSON *c = r ? cJSON_GetObjectItem(r, "config") : NULL;
    cJSON *jb = c ? cJSON_GetObjectItem(c, "batch") : NULL, *js = c ? cJSON_GetObjectItem(c, "seed") : NULL;
    cJSON *jg = c ? cJSON_GetObjectItem(c, "global_batch") : NULL;
    const int N = dist_size();
    int rc = CF_OK;
    if (!cJSON_IsNumber(jb) || !cJSON_IsNumber(js)) {
        rc = cf_fail(err, CF_EINPUT, "%s: no batch and seed recorded; cannot resume exactly", summary_path);
        goto out;
    }
    long global = cJSON_IsNumber(jg) ? (long)jg->valuedouble : (long)jb->valuedouble;
    if (seed_set && a->seed != (uint64_t)js->valuedouble) {
        rc = cf_fail(err, CF_EINPUT, "--seed differs from the run being resumed (%llu); omit it",
                     (unsigned long long)js->valuedouble);
    } else if (batch_set && (long)a->batch * N != global) {
        rc = N == 1 ? cf_fail(err, CF_EINPUT, "--batch differs from the run being resumed (%ld); omit it", global)
                    : cf_fail(err, CF_EINPUT, "--batch %d on %d ranks is a global batch of %ld, but the run being resumed "
                              "used %ld; omit --batch", a->batch, N, (long)a->batch * N, global);
    } else if (global < 1 || global % N != 0 || global / N > 4096) {
        rc = cf_fail(err, CF_EINPUT, "the run being resumed used a global batch of %ld, which %d ranks cannot share "
                     "evenly; use a rank count that divides it", global, N);
    } else {
        a->batch = (int)(global / N);
        a->seed = (uint64_t)js->valuedouble;
    }
out:
    cJSON_Delete(r);
    return rc;
}

/* Prints a failure of this rank; with several ranks it names the rank, so a message from a
 * rank other than 0 can be told apart. */
static void print_rank_error(const cf_err *err) {
    if (dist_size() < 2) {
        cf_err_print(err);
        return;
    }
    fprintf(stderr, "clinfm: rank %d of %d: %s\n", dist_rank(), dist_size(), err->msg[0] ? err->msg : "unknown error");
}

/* Ends a setup phase on every rank together, failed or not, so that none waits for a rank that
 * quit: returns the worst status over ranks. A failure is printed by rank 0 if rank 0 failed
 * too (ranks mostly fail alike, and N copies of one message help nobody), else by each rank
 * that failed. err is marked reported, so that it is printed once. */
static int end_phase(int rc, cf_err *err) {
    int rc0 = rc;
    cf_err ignored;
    if (dist_size() > 1 && dist_bcast(&rc0, sizeof rc0, 0, &ignored) != CF_OK) rc0 = CF_EINTERNAL;
    if (rc && (dist_rank() == 0 || rc0 == CF_OK)) print_rank_error(err);
    cf_err_reported(err); /* printed, or printed by rank 0 */
    return dist_max_status(rc);
}

/* mkdir -p: another machine may have none of the path. */
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

/* Phase 2 with several ranks: rank 0's vocabulary (sent) and token shards on every rank. The
 * machines need not share a filesystem: a rank whose shard_dir lacks rank 0's shards (by size
 * and header checksum, which covers the sections' checksums) receives them into it, where the
 * next run finds them. Collective: every rank takes part to the end, whatever fails. */
static int share_prepared(vocab *v, int have_vocab, const char *shard_dir, char shard_path[SPLIT_COUNT][4300],
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

/* A file of rank 0's (the resumed run's checkpoint or summary) readable on this rank: the
 * same path, or an anonymous copy of rank 0's bytes in the shard folder (*fd: close it when
 * done). Collective. */
static int share_file(const char *path, const char *scratch_dir, char *local, size_t cap, int *fd, cf_err *err) {
    int got;
    return dist_share_file(path, 0, 0, scratch_dir, local, cap, fd, &got, err);
}

/* Checksum of the optimizer settings, field by field (the struct has padding). */
static uint64_t opt_checksum(const gpt_opt_config *o) {
    const float f[7] = {o->lr, o->min_lr, o->beta1, o->beta2, o->eps, o->weight_decay, o->grad_clip};
    const uint64_t n[2] = {o->warmup_steps, o->total_steps};
    return dist_checksum64(n, sizeof n, dist_checksum64(f, sizeof f, 0));
}

/* Checksum of the architecture, field by field. */
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

static int train_main(int argc, char **argv);

int cmd_train(int argc, char **argv) {
    cf_err err = {0};
    int rc = dist_init(&argc, &argv, &err);
    if (rc) {
        cf_err_print(&err);
        return rc;
    }
    rc = train_main(argc, argv);
    dist_finalize();
    return rc;
}

static int train_main(int argc, char **argv) {
    train_args a;
    int status = train_options(argc, argv, &a);
    if (status >= 0) return status;
    const int got_arch = a.got_arch, batch_set = a.batch_set, seed_set = a.seed_set;

    /* R: this rank, N: ranks. lead (rank 0) writes every file and every line of output. */
    const int R = dist_rank(), N = dist_size(), lead = R == 0;
    cf_err err = {0};
    int rc = CF_OK;
    store s;
    vocab v;
    int have_vocab = 0, store_open_ok = 0, model_ok = 0, identified = 0;
    timeline_shard sh[SPLIT_COUNT];
    int sh_open[SPLIT_COUNT] = {0};
    timeline_baseline base;
    gpt_model m;
    memset(&m, 0, sizeof m);
    memset(&v, 0, sizeof v);
    memset(&base, 0, sizeof base);
    for (int p = 0; p < SPLIT_COUNT; p++) base.unigram[p] = base.bigram[p] = NAN;
    int *inputs = NULL, *targets = NULL;
    float *feats = NULL, *best = NULL, *vtgt = NULL;
    int F = 0;
    int scratch_fd[2] = {-1, -1}; /* rank 0's checkpoint and summary, received (no shared filesystem) */
    double best_loss = INFINITY;
    uint64_t best_step = 0, since_best = 0;
    /* The model is a bundle directory (model/bundle.h): rank 0 writes it; every rank reads the
     * vocabulary from it. Shards are patient data and stay outside it. */
    model_bundle bundle;
    memset(&bundle, 0, sizeof bundle);
    int have_bundle = 0;
    char vocab_path[4400], ckpt_path[4400], shard_dir[4200], shard_path[SPLIT_COUNT][4300], summary_path[4400];
    {
        model_bundle at = {.path = (char *)a.out};
        if (bundle_part_path(&at, BUNDLE_VOCAB, vocab_path, sizeof vocab_path, &err) ||
            bundle_part_path(&at, BUNDLE_CHECKPOINT, ckpt_path, sizeof ckpt_path, &err) ||
            bundle_part_path(&at, BUNDLE_SUMMARY, summary_path, sizeof summary_path, &err)) {
            cf_err_print(&err);
            return CF_EINPUT;
        }
    }
    snprintf(shard_dir, sizeof shard_dir, "%s", a.shards ? a.shards : "");
    if (!a.shards) snprintf(shard_dir, sizeof shard_dir, "%s.shards", a.out);
    for (int p = 0; p < SPLIT_COUNT; p++) /* rank 0 names them again in timeline_prepare */
        snprintf(shard_path[p], sizeof shard_path[p], "%s/%s.tokens", shard_dir, split_name(p));

    /* Phase 1, rank 0 only: the store, the vocabulary and the token shards (written once, not
     * by N ranks racing on the same files). */
    if (lead) {
        /* The header, dictionaries and counts first: a reused preparation needs no events, and
         * decoding them (28 bytes an event) would make start-up grow with the data. */
        if ((rc = store_open_summary(&s, a.store, &err))) goto phase1;
        store_open_ok = 1;
        identified = !(s.flags & STORE_FLAG_DEIDENTIFIED);
        if (identified && !a.allow_identified) {
            rc = cf_fail(&err, CF_EINPUT, "%s is not de-identified: run `clinfm deid` first, or pass --allow-identified "
                         "to train on identifiable data deliberately (the model file will say so)", a.store);
            goto phase1;
        }
        split_config sp;
        split_config_default(&sp);
        if ((rc = cli_split_apply(&a.split, &sp, &err))) goto phase1;
        if ((rc = bundle_create(&bundle, a.out, a.resume, &err))) goto phase1;
        have_bundle = 1;

        /* Vocabulary (given, reused from an earlier run of this model, or fitted now on train) and
         * shards (a resume keeps those made with this vocabulary), through the one preparation. */
        timeline_prepare_options po;
        timeline_prepare_options_default(&po);
        if (a.vocab) po.vocab_in = a.vocab;
        else if (a.resume && bundle_has(&bundle, BUNDLE_VOCAB)) po.vocab_in = vocab_path;
        else po.vocab_out = vocab_path;
        if (a.values == VOCAB_VALUES_EMBED) po.vo.value_mode = VOCAB_VALUES_EMBED;
        po.shard_dir = shard_dir;
        po.baselines = 1;
        po.reuse = !a.rebuild;
        static timeline_prepared prep; /* static: ~13 KB of paths */
        if ((rc = timeline_prepare_reusable(&v, &s, &sp, &po, &prep, &err))) goto phase1;
        if (!prep.reused) {
            if ((rc = open_events(&s, a.store, &store_open_ok, &err))) goto phase1;
            if ((rc = timeline_prepare_build(&v, &s, &sp, &po, &prep, &err))) goto phase1;
        }
        have_vocab = 1;
        base = prep.base;
        if (prep.note[0]) printf("note: %s; preparing the data again\n", prep.note);
        if (prep.reused) printf("data: reusing the preparation in %s (vocabulary, shards, baselines)\n", shard_dir);
        /* a given vocabulary becomes part of the model, so every reader finds it there */
        if (a.vocab && (rc = bundle_put_file(&bundle, BUNDLE_VOCAB, a.vocab, &err))) goto phase1;
        if (po.vocab_out && (rc = bundle_commit(&bundle, BUNDLE_VOCAB, &err))) goto phase1;
        /* Who the model was trained on, so an evaluation can refuse their rows as held-out. */
        int need_events = 0;
        if ((rc = record_split(&bundle, &s, &sp, shard_dir, prep.reused, &need_events, &err))) goto phase1;
        if (need_events && ((rc = open_events(&s, a.store, &store_open_ok, &err)) ||
                            (rc = record_split(&bundle, &s, &sp, shard_dir, 0, &need_events, &err))))
            goto phase1;
        for (int p = 0; p < SPLIT_COUNT; p++) {
            if ((rc = timeline_shard_open(&sh[p], shard_path[p], &v, &err))) goto phase1;
            sh_open[p] = 1;
        }
    }
phase1:
    if ((rc = end_phase(rc, &err))) goto done;

    /* Phase 2: the other ranks get what rank 0 prepared (machines need not share a
     * filesystem); every rank builds or loads the model. */
    char ckpt_local[4400], summary_local[4400];
    int have_ckpt = lead && a.resume && file_exists(ckpt_path);
    snprintf(ckpt_local, sizeof ckpt_local, "%s", ckpt_path);
    snprintf(summary_local, sizeof summary_local, "%s", summary_path);
    if (N > 1) {
        int received = 0;
        if ((rc = share_prepared(&v, have_vocab, shard_dir, shard_path, &received, &err)) == CF_OK) have_vocab = 1;
        if (lead && received)
            printf("data-parallel: %d of %d ranks did not find rank 0's shards (no shared filesystem) and received them "
                   "into %s\n", received, N, shard_dir);
        int r2 = dist_bcast(&have_ckpt, sizeof have_ckpt, 0, &err);
        if (!rc) rc = r2;
        if (have_ckpt) {
            r2 = share_file(summary_path, shard_dir, summary_local, sizeof summary_local, &scratch_fd[0], &err);
            if (!rc) rc = r2;
            r2 = share_file(ckpt_path, shard_dir, ckpt_local, sizeof ckpt_local, &scratch_fd[1], &err);
            if (!rc) rc = r2;
        }
        if (rc) goto phase2;
    }
    if (!lead) {
        for (int p = 0; p < SPLIT_COUNT; p++) {
            if ((rc = timeline_shard_open(&sh[p], shard_path[p], &v, &err))) goto phase2;
            sh_open[p] = 1;
        }
    }
    if (!sh[SPLIT_TRAIN].n_tokens) {
        rc = cf_fail(&err, CF_EINPUT, "%s: the train split has no tokens; nothing to train on", a.store);
        goto phase2;
    }

    if (a.values >= 0 && have_vocab && (int)v.value_mode != a.values) {
        rc = cf_fail(&err, CF_EINPUT, "--values %s differs from the vocabulary's value mode; drop --values to use the "
                     "vocabulary as it is", a.values == VOCAB_VALUES_EMBED ? "embed" : "tokens");
        goto phase2;
    }
    gpt_config cfg = {.max_seq_len = a.context, .vocab_size = (int)v.n_tokens, .num_layers = a.layers,
                      .num_heads = a.heads, .channels = a.d_model, .dropout = a.dropout,
                      .n_features = a.inputs ? TIMELINE_N_FEATURES : 0, .feat_hidden = a.inputs ? a.input_hidden : 0,
                      .value_head = a.inputs && a.value_loss > 0};
    if (a.value_loss > 0 && !a.inputs) {
        rc = cf_fail(&err, CF_EINPUT, "--value-loss needs --inputs: the values are the continuous inputs");
        goto phase2;
    }
    gpt_opt_config opt = gpt_opt_default(a.steps);
    opt.lr = a.lr;
    opt.min_lr = a.min_lr;
    opt.weight_decay = a.weight_decay;
    opt.grad_clip = a.grad_clip;
    opt.warmup_steps = a.warmup;
    opt.total_steps = a.steps;
    if (have_ckpt) {
        /* The batch size and data seed decide which windows each step sees: take them from the
         * run being resumed, and refuse different ones. */
        if ((rc = resume_data_args(summary_local, &a, batch_set, seed_set, &err))) goto phase2;
        gpt_opt_config saved;
        if ((rc = gpt_load(&m, ckpt_local, v.hash, &saved, &err))) goto phase2;
        model_ok = 1;
        if (got_arch && (rc = gpt_config_compare(&m.config, &cfg, &err))) goto phase2;
        opt = saved;
        a.steps = opt.total_steps;
        if (a.stop_after > a.steps) a.stop_after = a.steps;
        if (lead) printf("resuming %s at step %llu of %llu\n", a.out, (unsigned long long)m.step, (unsigned long long)a.steps);
    } else {
        if ((rc = gpt_build(&m, &cfg, a.seed, &err))) goto phase2;
        model_ok = 1;
        memcpy(m.vocab_hash, v.hash, sizeof m.vocab_hash);
        /* Every rank copies the same tensors from the same file, so the ranks still agree. */
        if (a.init && (rc = init_from(&m, &v, a.init, lead, &err))) goto phase2;
    }
    int threads = threads_per_rank(a.threads);
    if (threads) m.num_threads = threads;
    inputs = malloc((size_t)a.batch * m.config.max_seq_len * sizeof *inputs);
    targets = malloc((size_t)a.batch * m.config.max_seq_len * sizeof *targets);
    F = m.config.n_features;
    feats = F ? malloc((size_t)a.batch * m.config.max_seq_len * F * sizeof *feats) : NULL;
    vtgt = m.config.value_head ? malloc((size_t)a.batch * m.config.max_seq_len * sizeof *vtgt) : NULL;
    if (m.config.value_head && a.value_loss <= 0) a.value_loss = 1.0f; /* a resumed value model */
    if (a.patience) best = malloc(m.num_parameters * sizeof *best);
    if (!inputs || !targets || (F && !feats) || (a.patience && !best)) rc = cf_fail(&err, CF_EINTERNAL, "out of memory");
    else if (F && F != TIMELINE_N_FEATURES)
        rc = cf_fail(&err, CF_EINPUT, "%s has %d continuous inputs but this clinfm makes %d; retrain", a.out, F,
                     TIMELINE_N_FEATURES);
phase2:
    if ((rc = end_phase(rc, &err))) goto done;

    /* Phase 3: the ranks must agree on everything that decides the training, or their updates
     * would differ silently. */
    if (N > 1) {
        uint64_t ag[AG_COUNT];
        ag[AG_RANKS] = (uint64_t)N;
        ag[AG_BATCH] = (uint64_t)a.batch;
        ag[AG_SEED] = a.seed;
        ag[AG_STEPS] = a.steps;
        ag[AG_STOP] = a.stop_after;
        ag[AG_EVAL] = a.eval_every;
        ag[AG_SAVE] = a.save_every;
        ag[AG_EVAL_BATCHES] = (uint64_t)a.eval_batches;
        ag[AG_HELD_BATCHES] = (uint64_t)a.held_out_batches;
        ag[AG_OPT] = opt_checksum(&opt);
        ag[AG_MODEL] = config_checksum(&m.config);
        ag[AG_VOCAB] = dist_checksum64(v.hash, sizeof v.hash, v.n_tokens);
        ag[AG_SHARDS] = dist_checksum64(&sh[SPLIT_TRAIN].n_tokens, sizeof sh[SPLIT_TRAIN].n_tokens, 0) ^
                        dist_checksum64(&sh[SPLIT_TUNING].n_tokens, sizeof sh[SPLIT_TUNING].n_tokens, 1) ^
                        dist_checksum64(&sh[SPLIT_HELD_OUT].n_tokens, sizeof sh[SPLIT_HELD_OUT].n_tokens, 2);
        ag[AG_STEP] = m.step;
        ag[AG_RNG] = dist_checksum64(&m.rng_counter, sizeof m.rng_counter, m.rng_seed);
        ag[AG_PARAMS] = dist_checksum64(m.param_memory, m.num_parameters * sizeof(float), 0);
        ag[AG_MOMENTS] = (m.m_memory ? dist_checksum64(m.m_memory, m.num_parameters * sizeof(float), 0) : 0) ^
                         (m.v_memory ? dist_checksum64(m.v_memory, m.num_parameters * sizeof(float), 1) : 0);
        int first_diff;
        if ((rc = dist_agree_u64(ag, AG_COUNT, &first_diff, &err))) goto done;
        if (first_diff >= 0) {
            rc = cf_fail(&err, CF_EINPUT, "the %d ranks disagree on %s; start every rank with the same options, "
                         "binary and files", N, agree_names[first_diff]);
            if (lead) cf_err_print(&err);
            cf_err_reported(&err); /* printed by rank 0 */
            goto done;
        }
        /* Each rank draws its own dropout masks (all ranks share the seed, and the same masks on
         * every rank's rows would correlate them). Rank 0 keeps the seed it saves. */
        if (R > 0) m.rng_seed = dist_checksum64(&R, sizeof R, m.rng_seed);
    }

    int B = a.batch, T = m.config.max_seq_len;
    if (lead) {
        printf("model: %d layers, d_model %d, %d heads, context %d, vocabulary %u: %zu parameters\n", m.config.num_layers,
               m.config.channels, m.config.num_heads, T, v.n_tokens, m.num_parameters);
        printf("data: train %llu tokens (%llu subjects), tuning %llu, held_out %llu; baselines on held_out: unigram %.3f, "
               "bigram %.3f nats/token\n",
               (unsigned long long)sh[SPLIT_TRAIN].n_tokens, (unsigned long long)sh[SPLIT_TRAIN].n_subjects,
               (unsigned long long)sh[SPLIT_TUNING].n_tokens, (unsigned long long)sh[SPLIT_HELD_OUT].n_tokens,
               base.unigram[SPLIT_HELD_OUT], base.bigram[SPLIT_HELD_OUT]);
        if (N > 1)
            printf("data-parallel: %d ranks (%d on this machine), batch %d per rank, global batch %d, %d threads per rank\n",
                   N, dist_local_size(), B, B * N, m.num_threads);
        fflush(stdout);
    }

    progress pr;
    memset(&pr, 0, sizeof pr);
    if (lead) progress_begin(&pr, "train", "steps", a.stop_after);
    /* train_loss: the last step's loss (evaluations reuse m.mean_loss for their own batches). */
    double t_start = now_seconds(), t_train = 0, tuning_loss = NAN, train_loss = NAN, train_vloss = NAN,
           tuning_vloss = NAN;
    uint64_t trained_tokens = 0, first_step = m.step;
    const int log_tty = isatty(STDOUT_FILENO);
    double t_log = t_start;
    int global_failure = 0; /* a failure every rank sees alike, which needs no abort */
    int early_stopped = 0;
    while (m.step < a.stop_after) {
        uint64_t step = m.step;
        /* Row b of rank R is slot R + b*N of the step's global batch. */
        for (int b = 0; b < B; b++)
            timeline_shard_window_x(&sh[SPLIT_TRAIN], &v, window_pos(a.seed, step, R + b * N, sh[SPLIT_TRAIN].n_tokens), T,
                                    inputs + (size_t)b * T, targets + (size_t)b * T,
                                    feats ? feats + (size_t)b * T * F : NULL);
        double t0 = now_seconds();
        gpt_update_stats us;
        if (vtgt) gpt_value_targets(feats, B, T, F, vtgt);
        gpt_extra ex = {.feats = feats, .lm_weight = 1.0f, .value_targets = vtgt, .value_weight = a.value_loss};
        if ((rc = gpt_forward_ex(&m, inputs, targets, &ex, B, T, 1, &err))) break;
        gpt_zero_grad(&m);
        if ((rc = gpt_backward(&m, &err))) break;
        if (N > 1 && (rc = average_gradients(&m, &err))) break;
        if ((rc = gpt_update(&m, &opt, &us, &err))) break;
        t_train += now_seconds() - t0;
        trained_tokens += (uint64_t)B * T * N;
        train_loss = m.mean_loss;
        train_vloss = m.value_loss;
        if (!isfinite(m.mean_loss)) {
            rc = cf_fail(&err, CF_EINPUT, "training diverged at step %llu (loss is not finite); lower --lr",
                         (unsigned long long)m.step);
            global_failure = 1;
            break;
        }
        /* The progress line redraws on a terminal; the step log below is the record. */
        pr.calls = 4095;
        if (lead) progress_update(&pr, m.step);
        int last = m.step == a.stop_after;
        /* A log written to a file (no progress line there) gets a line at the first step and
         * then every 30 s, so a run is never silent until its first evaluation. */
        if (lead && !log_tty && !(m.step % a.eval_every == 0 || last) &&
            (m.step == first_step + 1 || now_seconds() - t_log >= 30)) {
            double tps = t_train > 0 ? (double)trained_tokens / t_train : 0;
            printf("step %6llu/%llu  train loss %.4f  lr %.2e  %.0f tokens/s  ETA %.0f s\n", (unsigned long long)m.step,
                   (unsigned long long)a.steps, train_loss, us.lr, tps,
                   tps > 0 ? (double)(a.stop_after - m.step) * B * N * T / tps : 0);
            fflush(stdout);
            t_log = now_seconds();
        }
        if (m.step % a.eval_every == 0 || last) {
            uint64_t nt;
            if ((rc = eval_shard(&m, &sh[SPLIT_TUNING], &v, B, T, (uint64_t)a.eval_batches * B * N, &tuning_loss, &nt,
                                 inputs, targets, feats, vtgt, &tuning_vloss, &err)))
                break;
            if (a.patience) {
                /* Early stopping on tuning loss: keep the best parameters seen. Every rank
                 * computes the same (all-reduced) loss, so they decide alike. */
                if (tuning_loss < best_loss) {
                    best_loss = tuning_loss;
                    best_step = m.step;
                    since_best = 0;
                    memcpy(best, m.param_memory, m.num_parameters * sizeof *best);
                } else if (++since_best >= (uint64_t)a.patience) {
                    early_stopped = 1;
                }
            }
            double tps = t_train > 0 ? (double)trained_tokens / t_train : 0;
            double eta = tps > 0 ? (double)(a.stop_after - m.step) * B * N * T / tps : 0;
            if (lead) {
                progress_end(&pr);
                printf("step %6llu/%llu  train loss %.4f  tuning loss %.4f  lr %.2e  grad norm %.3f  %.0f tokens/s  ETA %.0f s",
                       (unsigned long long)m.step, (unsigned long long)a.steps, train_loss, tuning_loss, us.lr,
                       us.grad_norm, tps, eta);
                if (vtgt) printf("  value loss train %.4f tuning %.4f", train_vloss, tuning_vloss);
                printf("\n");
                fflush(stdout);
            }
        }
        if (early_stopped) {
            /* The best parameters become the model (an inference checkpoint: their optimizer
             * state was not kept, so it is not resumable). */
            memcpy(m.param_memory, best, m.num_parameters * sizeof *best);
            if (lead) {
                printf("early stop at step %llu: no better tuning loss for %d evaluations; keeping step %llu (tuning "
                       "loss %.4f)\n", (unsigned long long)m.step, a.patience, (unsigned long long)best_step, best_loss);
                if ((rc = gpt_save(&m, ckpt_path, &opt, 0, &err)) ||
                    (rc = bundle_commit(&bundle, BUNDLE_CHECKPOINT, &err)))
                    break;
            }
            tuning_loss = best_loss;
            break;
        }
        if (a.patience && last && best_step && best_step != m.step) {
            memcpy(m.param_memory, best, m.num_parameters * sizeof *best);
            tuning_loss = best_loss;
            if (lead) printf("keeping step %llu (best tuning loss %.4f)\n", (unsigned long long)best_step, best_loss);
        }
        if (m.step % a.save_every == 0 || last) {
            int resynced;
            if ((rc = resync_if_drifted(&m, &resynced, &err))) break;
            if (resynced && lead)
                printf("note: the ranks' parameters had drifted apart by float rounding (CPUs of different kinds?); "
                       "copied rank 0's to the others at step %llu\n", (unsigned long long)m.step);
            if (lead && ((rc = gpt_save(&m, ckpt_path, &opt, GPT_CKPT_OPTIMIZER, &err)) ||
                         (rc = bundle_commit(&bundle, BUNDLE_CHECKPOINT, &err))))
                break;
        }
    }
    if (lead) progress_end(&pr);
    if (rc && N > 1 && !global_failure) {
        /* The other ranks are, or soon will be, waiting in a collective for this one. */
        print_rank_error(&err);
        cf_err_reported(&err);
        rc = dist_abort(rc);
    }
    if (rc) {
        if (!lead) cf_err_reported(&err); /* every rank failed alike: rank 0 says so */
        goto done;
    }
    double held_loss = NAN, held_vloss = NAN;
    uint64_t held_targets = 0, held_windows[2] = {0, 0};
    if (m.step == a.steps || early_stopped) {
        /* The budget: --held-out-batches batches of evenly spaced windows (0: every window). */
        held_windows[1] = (sh[SPLIT_HELD_OUT].n_tokens + (uint64_t)T - 1) / (uint64_t)T;
        held_windows[0] = a.held_out_batches ? (uint64_t)a.held_out_batches * B * N : held_windows[1];
        if (held_windows[0] > held_windows[1]) held_windows[0] = held_windows[1];
        rc = eval_shard(&m, &sh[SPLIT_HELD_OUT], &v, B, T, (uint64_t)a.held_out_batches * B * N, &held_loss,
                        &held_targets, inputs, targets, feats, vtgt, &held_vloss, &err);
        if (rc && N > 1) {
            print_rank_error(&err);
            cf_err_reported(&err);
            rc = dist_abort(rc);
        }
        if (rc) goto done;
        if (lead) {
            printf("held_out: %.4f nats/token over %llu tokens (unigram %.4f, bigram %.4f)", held_loss,
                   (unsigned long long)held_targets, base.unigram[SPLIT_HELD_OUT], base.bigram[SPLIT_HELD_OUT]);
            if (held_windows[0] < held_windows[1])
                printf("; %llu of %llu windows (--held-out-batches; 0: all)", (unsigned long long)held_windows[0],
                       (unsigned long long)held_windows[1]);
            if (vtgt) printf("; value loss %.4f", held_vloss);
            printf("\n");
        }
    }
    double tps = t_train > 0 ? (double)trained_tokens / t_train : 0;
    if (lead) {
        if (m.step == first_step && have_ckpt) rc = patch_summary(summary_path, held_loss, held_targets, held_windows, &err);
        else
            rc = write_summary(summary_path, &a, &m, &v, &base, train_loss, tuning_loss, held_loss, held_targets,
                               held_windows, tps, trained_tokens, identified, &err);
        if (rc || (rc = bundle_commit(&bundle, BUNDLE_SUMMARY, &err))) goto done;
        if (m.step == first_step && have_ckpt)
            printf("updated the held-out figures of %s (step %llu; no step trained)\n", a.out, (unsigned long long)m.step);
        else
        printf("wrote %s (step %llu: checkpoint, vocabulary, training summary and split in one bundle); %.0f training "
               "tokens/s over %llu steps in %.1f s\n", a.out, (unsigned long long)m.step, tps,
               (unsigned long long)(m.step - first_step),
               now_seconds() - t_start);
    }
done:
    if (rc && cf_err_unreported(&err)) cf_err_print(&err);
    for (int i = 0; i < 2; i++)
        if (scratch_fd[i] >= 0) close(scratch_fd[i]);
    free(inputs);
    free(targets);
    free(feats);
    free(vtgt);
    free(best);
    if (model_ok) gpt_free(&m);
    for (int p = 0; p < SPLIT_COUNT; p++)
        if (sh_open[p]) timeline_shard_close(&sh[p]);
    if (have_vocab) vocab_free(&v);
    if (store_open_ok) store_close(&s);
    if (have_bundle && rc) bundle_abandon(&bundle); /* removes it only if this run made it and saved nothing */
    else if (have_bundle) bundle_close(&bundle);
    return rc;
}
