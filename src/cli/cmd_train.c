/* `clinfm train`: the institution's own model, trained from scratch on its (de-identified) store.
 * This file is the command-line half: the options, and the run as named steps; the library
 * calls are the stages' (timeline/prepare.h, model/train.h, model/gpt.h, model/bundle.h).
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
 * Data parallel (src/model/dist.h, model/train.h): started by mpirun with N ranks, the N ranks
 * together see exactly the windows one process with --batch N*B would see, and every rank takes
 * the same AdamW step on the averaged gradient. Rank 0 alone prepares the data, writes files and
 * prints, and sends the ranks whose machine lacks them the vocabulary, shards and (on resume)
 * checkpoint; every other rank is silent unless it fails.
 *
 * The steps (train_main): options -> run_begin (paths) -> prepare_data (rank 0: store, reused or
 * new preparation, bundle, training split) -> share_data and build_model (every rank) ->
 * agree_ranks -> train_loop -> evaluate_held_out -> write_results (the bundle's summary). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/commands.h"
#include "cli/opts.h"
#include "model/bundle.h"
#include "model/dist.h"
#include "model/gpt.h"
#include "model/train.h"
#include "store/store.h"
#include "timeline/prepare.h"
#include "timeline/split.h"
#include "timeline/timeline.h"
#include "timeline/vocab.h"
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
    int resume, allow_identified, threads, rebuild, room_check;
    int got_arch, got_steps, batch_set, seed_set; /* given on the command line */
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
                      .seed = 1, .eval_batches = 16, .held_out_batches = -1, .input_hidden = 32, .values = -1,
                      .room_check = 1};
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
        CLI_OPT_ROOM_CHECK(&a->room_check, "the shards (a bound of 12 bytes an event)"),
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
    a->got_steps = cli_given(&spec, "steps");
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

/* ---------------------------------------------------------------- one run, step by step */

/* What the steps of one run share. R: this rank, N: ranks; lead (rank 0) writes every file and
 * every line of output. */
typedef struct {
    train_args a;
    int R, N, lead;
    cf_err err;
    /* The model is a bundle directory (model/bundle.h): rank 0 writes it; every rank reads the
     * vocabulary from it. Shards are patient data and stay outside it. */
    char vocab_path[4400], ckpt_path[4400], summary_path[4400], shard_dir[4200], shard_path[SPLIT_COUNT][4300];
    char ckpt_local[4400], summary_local[4400]; /* rank 0's checkpoint and summary, as this rank reads them */
    int scratch_fd[2];                          /* their copies on a rank without rank 0's filesystem */
    model_bundle bundle;
    int have_bundle, have_ckpt; /* have_ckpt: resuming from a checkpoint */
    store s;
    int store_open_ok, identified;
    vocab v;
    int have_vocab;
    timeline_shard sh[SPLIT_COUNT];
    int sh_open[SPLIT_COUNT];
    timeline_baseline base;
    gpt_model m;
    int model_ok;
    gpt_opt_config opt;
    train_batch batch;
    /* The loop's record. train_loss: the last step's loss (evaluations reuse m.mean_loss). */
    double t_start, t_train, train_loss, tuning_loss, train_vloss, tuning_vloss;
    uint64_t trained_tokens, first_step;
    float *best; /* --early-stop: the parameters of the best tuning loss so far */
    double best_loss;
    uint64_t best_step, since_best;
    int early_stopped;
    double held_loss, held_vloss;
    uint64_t held_targets, held_windows[2]; /* windows evaluated, of all */
} train_run;

/* The run's starting state and the paths of its files. */
static int run_begin(train_run *r) {
    r->R = dist_rank();
    r->N = dist_size();
    r->lead = r->R == 0;
    r->scratch_fd[0] = r->scratch_fd[1] = -1;
    for (int p = 0; p < SPLIT_COUNT; p++) r->base.unigram[p] = r->base.bigram[p] = NAN;
    r->best_loss = INFINITY;
    r->tuning_loss = r->train_loss = r->train_vloss = r->tuning_vloss = NAN;
    r->held_loss = r->held_vloss = NAN;
    model_bundle at = {.path = (char *)r->a.out};
    if (bundle_part_path(&at, BUNDLE_VOCAB, r->vocab_path, sizeof r->vocab_path, &r->err) ||
        bundle_part_path(&at, BUNDLE_CHECKPOINT, r->ckpt_path, sizeof r->ckpt_path, &r->err) ||
        bundle_part_path(&at, BUNDLE_SUMMARY, r->summary_path, sizeof r->summary_path, &r->err)) {
        cf_err_print(&r->err);
        return CF_EINPUT;
    }
    if (r->a.shards) snprintf(r->shard_dir, sizeof r->shard_dir, "%s", r->a.shards);
    else snprintf(r->shard_dir, sizeof r->shard_dir, "%s.shards", r->a.out);
    for (int p = 0; p < SPLIT_COUNT; p++) /* rank 0 names them again in timeline_prepare */
        snprintf(r->shard_path[p], sizeof r->shard_path[p], "%s/%s.tokens", r->shard_dir, split_name(p));
    return CF_OK;
}

/* Reopens a store opened by store_open_summary with its events (store_open), unless they can
 * be read already. */
static int open_events(train_run *r) {
    if (store_events_open(&r->s)) return CF_OK;
    store_close(&r->s);
    r->store_open_ok = 0;
    int rc = store_open(&r->s, r->a.store, &r->err);
    if (!rc) r->store_open_ok = 1;
    return rc;
}

/* Step 1, rank 0 only: the store, the vocabulary and the token shards (written once, not by N
 * ranks racing on the same files), and the bundle with its vocabulary and training split. */
static int prepare_data(train_run *r) {
    const train_args *a = &r->a;
    cf_err *err = &r->err;
    int rc;
    /* The header, dictionaries and counts first: a reused preparation needs no events, and
     * decoding them (28 bytes an event) would make start-up grow with the data. */
    if ((rc = store_open_summary(&r->s, a->store, err))) return rc;
    r->store_open_ok = 1;
    r->identified = !(r->s.flags & STORE_FLAG_DEIDENTIFIED);
    if (r->identified && !a->allow_identified)
        return cf_fail(err, CF_EINPUT, "%s is not de-identified: run `clinfm deid` first, or pass --allow-identified "
                       "to train on identifiable data deliberately (the model file will say so)", a->store);
    split_config sp;
    split_config_default(&sp);
    if ((rc = cli_split_apply(&a->split, &sp, err))) return rc;
    if ((rc = bundle_create(&r->bundle, a->out, a->resume, err))) return rc;
    r->have_bundle = 1;

    /* Vocabulary (given, reused from an earlier run of this model, or fitted now on train) and
     * shards (a resume keeps those made with this vocabulary), through the one preparation. */
    timeline_prepare_options po;
    timeline_prepare_options_default(&po);
    if (a->vocab) po.vocab_in = a->vocab;
    else if (a->resume && bundle_has(&r->bundle, BUNDLE_VOCAB)) po.vocab_in = r->vocab_path;
    else po.vocab_out = r->vocab_path;
    if (a->values == VOCAB_VALUES_EMBED) po.vo.value_mode = VOCAB_VALUES_EMBED;
    po.shard_dir = r->shard_dir;
    po.baselines = 1;
    po.reuse = !a->rebuild;
    po.room_check = a->room_check;
    po.room_say = r->lead ? stderr : NULL;
    static timeline_prepared prep; /* static: ~13 KB of paths */
    if ((rc = timeline_prepare_reusable(&r->v, &r->s, &sp, &po, &prep, err))) return rc;
    if (!prep.reused && ((rc = open_events(r)) || (rc = timeline_prepare_build(&r->v, &r->s, &sp, &po, &prep, err))))
        return rc;
    r->have_vocab = 1;
    r->base = prep.base;
    if (prep.note[0]) printf("note: %s; preparing the data again\n", prep.note);
    if (prep.reused) printf("data: reusing the preparation in %s (vocabulary, shards, baselines)\n", r->shard_dir);
    /* a given vocabulary becomes part of the model, so every reader finds it there */
    if (a->vocab && (rc = bundle_put_file(&r->bundle, BUNDLE_VOCAB, a->vocab, err))) return rc;
    if (po.vocab_out && (rc = bundle_commit(&r->bundle, BUNDLE_VOCAB, err))) return rc;
    /* Who the model was trained on, so an evaluation can refuse their rows as held-out: the copy
     * kept beside a reused preparation, or recorded from the store's events. */
    int kept = 0;
    if (prep.reused && (rc = train_split_reuse(&r->bundle, &r->s, &sp, r->shard_dir, &kept, err))) return rc;
    if (!kept && ((rc = open_events(r)) || (rc = train_split_record(&r->bundle, &r->s, &sp, r->shard_dir, err))))
        return rc;
    for (int p = 0; p < SPLIT_COUNT; p++) {
        if ((rc = timeline_shard_open(&r->sh[p], r->shard_path[p], &r->v, err))) return rc;
        r->sh_open[p] = 1;
    }
    return CF_OK;
}

/* Step 2a: the other ranks get what rank 0 prepared (machines need not share a filesystem) and
 * open the shards. Collective. */
static int share_data(train_run *r) {
    cf_err *err = &r->err;
    int rc = CF_OK;
    r->have_ckpt = r->lead && r->a.resume && access(r->ckpt_path, F_OK) == 0;
    snprintf(r->ckpt_local, sizeof r->ckpt_local, "%s", r->ckpt_path);
    snprintf(r->summary_local, sizeof r->summary_local, "%s", r->summary_path);
    if (r->N > 1) {
        int received = 0, got;
        if ((rc = train_share_prepared(&r->v, r->have_vocab, r->shard_dir, r->shard_path, &received, err)) == CF_OK)
            r->have_vocab = 1;
        if (r->lead && received)
            printf("data-parallel: %d of %d ranks did not find rank 0's shards (no shared filesystem) and received them "
                   "into %s\n", received, r->N, r->shard_dir);
        int r2 = dist_bcast(&r->have_ckpt, sizeof r->have_ckpt, 0, err);
        if (!rc) rc = r2;
        if (r->have_ckpt) {
            r2 = dist_share_file(r->summary_path, 0, 0, r->shard_dir, r->summary_local, sizeof r->summary_local,
                                 &r->scratch_fd[0], &got, err);
            if (!rc) rc = r2;
            r2 = dist_share_file(r->ckpt_path, 0, 0, r->shard_dir, r->ckpt_local, sizeof r->ckpt_local,
                                 &r->scratch_fd[1], &got, err);
            if (!rc) rc = r2;
        }
        if (rc) return rc;
    }
    if (!r->lead) {
        for (int p = 0; p < SPLIT_COUNT; p++) {
            if ((rc = timeline_shard_open(&r->sh[p], r->shard_path[p], &r->v, err))) return rc;
            r->sh_open[p] = 1;
        }
    }
    if (!r->sh[SPLIT_TRAIN].n_tokens)
        return cf_fail(err, CF_EINPUT, "%s: the train split has no tokens; nothing to train on", r->a.store);
    return CF_OK;
}

/* The global batch (batch x ranks) and the data seed decide which windows each step sees, so a
 * resume takes them from the run being resumed, and refuses different ones given. The rank
 * count may change if it divides the global batch: the ranks then still see the same windows. */
static int resume_data(train_run *r) {
    train_args *a = &r->a;
    long global;
    uint64_t seed;
    int rc = train_summary_data(r->summary_local, &global, &seed, &r->err);
    if (rc) return rc;
    const int N = r->N;
    if (a->seed_set && a->seed != seed)
        return cf_fail(&r->err, CF_EINPUT, "--seed differs from the run being resumed (%llu); omit it",
                       (unsigned long long)seed);
    if (a->batch_set && (long)a->batch * N != global)
        return N == 1 ? cf_fail(&r->err, CF_EINPUT, "--batch differs from the run being resumed (%ld); omit it", global)
                      : cf_fail(&r->err, CF_EINPUT, "--batch %d on %d ranks is a global batch of %ld, but the run being "
                                "resumed used %ld; omit --batch", a->batch, N, (long)a->batch * N, global);
    if (global < 1 || global % N != 0 || global / N > 4096)
        return cf_fail(&r->err, CF_EINPUT, "the run being resumed used a global batch of %ld, which %d ranks cannot "
                       "share evenly; use a rank count that divides it", global, N);
    a->batch = (int)(global / N);
    a->seed = seed;
    return CF_OK;
}

/* Step 2b, every rank: the model built (or loaded to resume, or started from --init) and the
 * buffers a step needs. */
static int build_model(train_run *r) {
    train_args *a = &r->a;
    cf_err *err = &r->err;
    gpt_model *m = &r->m;
    int rc;
    if (a->values >= 0 && r->have_vocab && (int)r->v.value_mode != a->values)
        return cf_fail(err, CF_EINPUT, "--values %s differs from the vocabulary's value mode; drop --values to use the "
                       "vocabulary as it is", a->values == VOCAB_VALUES_EMBED ? "embed" : "tokens");
    gpt_config cfg = {.max_seq_len = a->context, .vocab_size = (int)r->v.n_tokens, .num_layers = a->layers,
                      .num_heads = a->heads, .channels = a->d_model, .dropout = a->dropout,
                      .n_features = a->inputs ? TIMELINE_N_FEATURES : 0, .feat_hidden = a->inputs ? a->input_hidden : 0,
                      .value_head = a->inputs && a->value_loss > 0};
    if (a->value_loss > 0 && !a->inputs)
        return cf_fail(err, CF_EINPUT, "--value-loss needs --inputs: the values are the continuous inputs");
    r->opt = gpt_opt_default(a->steps);
    r->opt.lr = a->lr;
    r->opt.min_lr = a->min_lr;
    r->opt.weight_decay = a->weight_decay;
    r->opt.grad_clip = a->grad_clip;
    r->opt.warmup_steps = a->warmup;
    r->opt.total_steps = a->steps;
    if (r->have_ckpt) {
        gpt_opt_config saved;
        if ((rc = resume_data(r)) || (rc = gpt_load(m, r->ckpt_local, r->v.hash, &saved, err))) return rc;
        r->model_ok = 1;
        if (a->got_arch && (rc = gpt_config_compare(&m->config, &cfg, err))) return rc;
        /* The learning-rate schedule ends at the planned step, so a resumed run cannot be lengthened. */
        if (a->got_steps && a->steps != saved.total_steps)
            return cf_fail(err, CF_EINPUT,
                           "--steps %llu differs from the %llu steps %s was started with: --resume finishes the "
                           "planned schedule; to train further from these weights, start a new schedule with "
                           "--init %s --out ANOTHER_MODEL", (unsigned long long)a->steps,
                           (unsigned long long)saved.total_steps, a->out, a->out);
        r->opt = saved;
        a->steps = r->opt.total_steps;
        if (a->stop_after > a->steps) a->stop_after = a->steps;
        if (r->lead)
            printf("resuming %s at step %llu of %llu\n", a->out, (unsigned long long)m->step, (unsigned long long)a->steps);
    } else {
        if ((rc = gpt_build(m, &cfg, a->seed, err))) return rc;
        r->model_ok = 1;
        memcpy(m->vocab_hash, r->v.hash, sizeof m->vocab_hash);
        /* Every rank copies the same tensors from the same file, so the ranks still agree. */
        train_init_report ir;
        if (a->init && (rc = train_init_from(m, &r->v, a->init, &ir, err))) return rc;
        if (a->init && r->lead)
            printf("init: from %s (step %llu): transformer%s, %d positions, %u of %u token embeddings%s (by token string)\n",
                   a->init, (unsigned long long)ir.step, ir.inputs ? " and continuous inputs" : "", ir.positions, ir.shared,
                   r->v.n_tokens, ir.values ? " and value forecasts" : "");
    }
    int threads = train_threads_per_rank(a->threads);
    if (threads) m->num_threads = threads;
    if (m->config.value_head && a->value_loss <= 0) a->value_loss = 1.0f; /* a resumed value model */
    if ((rc = train_batch_alloc(&r->batch, m, a->batch, err))) return rc;
    if (a->patience && !(r->best = malloc(m->num_parameters * sizeof *r->best)))
        return cf_fail(err, CF_EINTERNAL, "out of memory");
    if (m->config.n_features && m->config.n_features != TIMELINE_N_FEATURES)
        return cf_fail(err, CF_EINPUT, "%s has %d continuous inputs but this clinfm makes %d; retrain", a->out,
                       m->config.n_features, TIMELINE_N_FEATURES);
    return CF_OK;
}

/* Step 3: the ranks must agree on everything that decides the training, or their updates would
 * differ silently. Collective. */
static int agree_ranks(train_run *r) {
    if (r->N < 2) return CF_OK;
    const train_args *a = &r->a;
    const train_plan plan = {.batch = a->batch, .seed = a->seed, .steps = a->steps, .stop_after = a->stop_after,
                             .eval_every = a->eval_every, .save_every = a->save_every, .eval_batches = a->eval_batches,
                             .held_out_batches = a->held_out_batches};
    const char *what;
    int rc = train_agree(&plan, &r->opt, &r->m, &r->v, r->sh, &what, &r->err);
    if (rc) return rc;
    if (what) {
        rc = cf_fail(&r->err, CF_EINPUT, "the %d ranks disagree on %s; start every rank with the same options, "
                     "binary and files", r->N, what);
        if (r->lead) cf_err_print(&r->err);
        cf_err_reported(&r->err); /* printed by rank 0 */
        return rc;
    }
    /* Each rank draws its own dropout masks (all ranks share the seed, and the same masks on
     * every rank's rows would correlate them). Rank 0 keeps the seed it saves. */
    if (r->R > 0) r->m.rng_seed = dist_checksum64(&r->R, sizeof r->R, r->m.rng_seed);
    return CF_OK;
}

/* The model and data lines that open the log. */
static void print_start(const train_run *r) {
    if (!r->lead) return;
    const gpt_model *m = &r->m;
    const timeline_shard *sh = r->sh;
    printf("model: %d layers, d_model %d, %d heads, context %d, vocabulary %u: %zu parameters\n", m->config.num_layers,
           m->config.channels, m->config.num_heads, m->config.max_seq_len, r->v.n_tokens, m->num_parameters);
    printf("data: train %llu tokens (%llu subjects), tuning %llu, held_out %llu; baselines on held_out: unigram %.3f, "
           "bigram %.3f nats/token\n",
           (unsigned long long)sh[SPLIT_TRAIN].n_tokens, (unsigned long long)sh[SPLIT_TRAIN].n_subjects,
           (unsigned long long)sh[SPLIT_TUNING].n_tokens, (unsigned long long)sh[SPLIT_HELD_OUT].n_tokens,
           r->base.unigram[SPLIT_HELD_OUT], r->base.bigram[SPLIT_HELD_OUT]);
    if (r->N > 1)
        printf("data-parallel: %d ranks (%d on this machine), batch %d per rank, global batch %d, %d threads per rank\n",
               r->N, dist_local_size(), r->a.batch, r->a.batch * r->N, m->num_threads);
    fflush(stdout);
}

/* Training tokens per second so far, and the seconds the remaining steps will take at that rate. */
static double rate(const train_run *r, double *eta) {
    double tps = r->t_train > 0 ? (double)r->trained_tokens / r->t_train : 0;
    *eta = tps > 0 ? (double)(r->a.stop_after - r->m.step) * r->a.batch * r->N * r->m.config.max_seq_len / tps : 0;
    return tps;
}

/* An evaluation on tuning after a step, with early stopping's bookkeeping and its log line.
 * Collective. */
static int evaluate_tuning(train_run *r, progress *pr, const gpt_update_stats *us) {
    const train_args *a = &r->a;
    gpt_model *m = &r->m;
    uint64_t nt;
    int rc = train_eval_shard(m, &r->sh[SPLIT_TUNING], &r->v, (uint64_t)a->eval_batches * a->batch * r->N, &r->batch,
                              &r->tuning_loss, &nt, &r->tuning_vloss, &r->err);
    if (rc) return rc;
    if (a->patience) {
        /* Early stopping on tuning loss: keep the best parameters seen. Every rank computes the
         * same (all-reduced) loss, so they decide alike. */
        if (r->tuning_loss < r->best_loss) {
            r->best_loss = r->tuning_loss;
            r->best_step = m->step;
            r->since_best = 0;
            memcpy(r->best, m->param_memory, m->num_parameters * sizeof *r->best);
        } else if (++r->since_best >= (uint64_t)a->patience) {
            r->early_stopped = 1;
        }
    }
    if (r->lead) {
        double eta, tps = rate(r, &eta);
        progress_end(pr);
        printf("step %6llu/%llu  train loss %.4f  tuning loss %.4f  lr %.2e  grad norm %.3f  %.0f tokens/s  ETA %.0f s",
               (unsigned long long)m->step, (unsigned long long)a->steps, r->train_loss, r->tuning_loss, us->lr,
               us->grad_norm, tps, eta);
        if (r->batch.vtgt) printf("  value loss train %.4f tuning %.4f", r->train_vloss, r->tuning_vloss);
        printf("\n");
        fflush(stdout);
    }
    return CF_OK;
}

/* A save point: the ranks' states compared (and resynchronised), and rank 0's saved. Collective. */
static int save_point(train_run *r) {
    int resynced, rc;
    if ((rc = train_resync_if_drifted(&r->m, &resynced, &r->err))) return rc;
    if (resynced && r->lead)
        printf("note: the ranks' parameters had drifted apart by float rounding (CPUs of different kinds?); "
               "copied rank 0's to the others at step %llu\n", (unsigned long long)r->m.step);
    if (r->lead && ((rc = gpt_save(&r->m, r->ckpt_path, &r->opt, GPT_CKPT_OPTIMIZER, &r->err)) ||
                    (rc = bundle_commit(&r->bundle, BUNDLE_CHECKPOINT, &r->err))))
        return rc;
    return CF_OK;
}

/* --early-stop at the last step: the parameters of the best tuning loss become the model's. */
static void keep_best(train_run *r) {
    memcpy(r->m.param_memory, r->best, r->m.num_parameters * sizeof *r->best);
    r->m.kept_step = r->best_step;
    r->tuning_loss = r->best_loss;
    if (r->lead)
        printf("keeping step %llu (best tuning loss %.4f)\n", (unsigned long long)r->best_step, r->best_loss);
}

/* An early stop: the best parameters become the model, saved as an inference checkpoint
 * (their optimizer state was not kept, so it is not resumable). */
static int stop_early(train_run *r) {
    int rc;
    memcpy(r->m.param_memory, r->best, r->m.num_parameters * sizeof *r->best);
    r->m.kept_step = r->best_step;
    if (r->lead) {
        printf("early stop at step %llu: no better tuning loss for %d evaluations; keeping step %llu (tuning "
               "loss %.4f)\n", (unsigned long long)r->m.step, r->a.patience, (unsigned long long)r->best_step,
               r->best_loss);
        if ((rc = gpt_save(&r->m, r->ckpt_path, &r->opt, 0, &r->err)) ||
            (rc = bundle_commit(&r->bundle, BUNDLE_CHECKPOINT, &r->err)))
            return rc;
    }
    r->tuning_loss = r->best_loss;
    return CF_OK;
}

/* Step 4: the training loop, from the model's step to --stop-after, evaluating on tuning every
 * --eval-every steps and saving every --save-every. A failure on one rank ends the job (the
 * others would wait for it in a collective); a failure every rank sees alike (divergence) ends
 * each rank on its own. */
static int train_loop(train_run *r) {
    const train_args *a = &r->a;
    gpt_model *m = &r->m;
    cf_err *err = &r->err;
    const int lead = r->lead, log_tty = isatty(STDOUT_FILENO);
    progress pr;
    memset(&pr, 0, sizeof pr);
    if (lead) progress_begin(&pr, "train", "steps", a->stop_after);
    r->t_start = now_seconds();
    r->first_step = m->step;
    double t_log = r->t_start;
    int rc = CF_OK, global_failure = 0; /* a failure every rank sees alike, which needs no abort */
    while (m->step < a->stop_after) {
        gpt_update_stats us;
        train_fill_batch(&r->batch, &r->sh[SPLIT_TRAIN], &r->v, a->seed, m->step);
        double t0 = now_seconds();
        if ((rc = train_step(m, &r->opt, &r->batch, a->value_loss, &us, err))) break;
        r->t_train += now_seconds() - t0;
        r->trained_tokens += (uint64_t)a->batch * m->config.max_seq_len * r->N;
        r->train_loss = m->mean_loss;
        r->train_vloss = m->value_loss;
        if (!isfinite(m->mean_loss)) {
            rc = cf_fail(err, CF_EINPUT, "training diverged at step %llu (loss is not finite); lower --lr",
                         (unsigned long long)m->step);
            global_failure = 1;
            break;
        }
        /* The progress line redraws on a terminal; the step log below is the record. */
        pr.calls = 4095;
        if (lead) progress_update(&pr, m->step);
        const int last = m->step == a->stop_after, eval = m->step % a->eval_every == 0 || last;
        /* A log written to a file (no progress line there) gets a line at the first step and
         * then every 30 s, so a run is never silent until its first evaluation. */
        if (lead && !log_tty && !eval && (m->step == r->first_step + 1 || now_seconds() - t_log >= 30)) {
            double eta, tps = rate(r, &eta);
            printf("step %6llu/%llu  train loss %.4f  lr %.2e  %.0f tokens/s  ETA %.0f s\n", (unsigned long long)m->step,
                   (unsigned long long)a->steps, r->train_loss, us.lr, tps, eta);
            fflush(stdout);
            t_log = now_seconds();
        }
        if (eval && (rc = evaluate_tuning(r, &pr, &us))) break;
        if (r->early_stopped) {
            rc = stop_early(r);
            break;
        }
        if (a->patience && last && r->best_step && r->best_step != m->step) keep_best(r);
        if ((m->step % a->save_every == 0 || last) && (rc = save_point(r))) break;
    }
    if (lead) progress_end(&pr);
    if (rc && r->N > 1 && !global_failure) {
        /* The other ranks are, or soon will be, waiting in a collective for this one. */
        print_rank_error(err);
        cf_err_reported(err);
        rc = dist_abort(rc);
    }
    if (rc && !lead) cf_err_reported(err); /* every rank failed alike: rank 0 says so */
    return rc;
}

/* Step 5: the held-out evaluation after the last step (or an early stop), over
 * --held-out-batches batches of evenly spaced windows (0: every window). Collective. */
static int evaluate_held_out(train_run *r) {
    const train_args *a = &r->a;
    const timeline_shard *held = &r->sh[SPLIT_HELD_OUT];
    if (r->m.step != a->steps && !r->early_stopped) return CF_OK;
    const uint64_t T = (uint64_t)r->m.config.max_seq_len, budget = (uint64_t)a->held_out_batches * a->batch * r->N;
    r->held_windows[1] = (held->n_tokens + T - 1) / T;
    r->held_windows[0] = a->held_out_batches ? budget : r->held_windows[1];
    if (r->held_windows[0] > r->held_windows[1]) r->held_windows[0] = r->held_windows[1];
    int rc = train_eval_shard(&r->m, held, &r->v, budget, &r->batch, &r->held_loss, &r->held_targets, &r->held_vloss,
                              &r->err);
    if (rc && r->N > 1) {
        print_rank_error(&r->err);
        cf_err_reported(&r->err);
        rc = dist_abort(rc);
    }
    if (rc) return rc;
    if (r->lead) {
        printf("held_out: %.4f nats/token over %llu tokens (unigram %.4f, bigram %.4f)", r->held_loss,
               (unsigned long long)r->held_targets, r->base.unigram[SPLIT_HELD_OUT], r->base.bigram[SPLIT_HELD_OUT]);
        if (r->held_windows[0] < r->held_windows[1])
            printf("; %llu of %llu windows (--held-out-batches; 0: all)", (unsigned long long)r->held_windows[0],
                   (unsigned long long)r->held_windows[1]);
        if (r->batch.vtgt) printf("; value loss %.4f", r->held_vloss);
        printf("\n");
    }
    return CF_OK;
}

/* Step 6, rank 0: the training summary into the bundle (only the held-out figures when no step
 * was trained: a finished model resumed to evaluate held_out again), and the closing line. */
static int write_results(train_run *r) {
    if (!r->lead) return CF_OK;
    const train_args *a = &r->a;
    const gpt_model *m = &r->m;
    double eta, tps = rate(r, &eta);
    const int evaluated_only = m->step == r->first_step && r->have_ckpt;
    const train_summary t = {.producer = "clinfm " CLINFM_VERSION, .identified = r->identified, .init = a->init,
                             .early_stop = a->patience, .batch = a->batch, .steps = a->steps, .seed = a->seed,
                             .lr = a->lr, .train_loss = r->train_loss, .tuning_loss = r->tuning_loss,
                             .held_loss = r->held_loss, .held_targets = r->held_targets,
                             .held_windows = {r->held_windows[0], r->held_windows[1]}, .tokens_per_s = tps,
                             .trained_tokens = r->trained_tokens};
    int rc = evaluated_only ? train_patch_summary(r->summary_path, &t, &r->err)
                            : train_write_summary(r->summary_path, &t, m, &r->v, &r->base, &r->err);
    if (rc || (rc = bundle_commit(&r->bundle, BUNDLE_SUMMARY, &r->err))) return rc;
    if (evaluated_only)
        printf("updated the held-out figures of %s (step %llu; no step trained)\n", a->out, (unsigned long long)m->step);
    else
        printf("wrote %s (step %llu%s: checkpoint, vocabulary, training summary and split in one bundle); %.0f "
               "training tokens/s over %llu steps in %.1f s\n", a->out, (unsigned long long)gpt_params_step(m),
               m->kept_step ? ", kept by early stopping" : "", tps,
               (unsigned long long)(m->step - r->first_step), now_seconds() - r->t_start);
    return CF_OK;
}

static void run_free(train_run *r, int rc) {
    for (int i = 0; i < 2; i++)
        if (r->scratch_fd[i] >= 0) close(r->scratch_fd[i]);
    train_batch_free(&r->batch);
    free(r->best);
    if (r->model_ok) gpt_free(&r->m);
    for (int p = 0; p < SPLIT_COUNT; p++)
        if (r->sh_open[p]) timeline_shard_close(&r->sh[p]);
    if (r->have_vocab) vocab_free(&r->v);
    if (r->store_open_ok) store_close(&r->s);
    if (r->have_bundle && rc) bundle_abandon(&r->bundle); /* removes it only if this run made it and saved nothing */
    else if (r->have_bundle) bundle_close(&r->bundle);
    free(r);
}

/* The steps in order. The setup steps end on every rank together (end_phase), so that no rank
 * waits in a collective for one that quit. */
static int train_main(int argc, char **argv) {
    train_run *r = calloc(1, sizeof *r);
    if (!r) {
        fprintf(stderr, "clinfm: out of memory\n");
        return CF_EINTERNAL;
    }
    int rc = train_options(argc, argv, &r->a);
    if (rc >= 0 || (rc = run_begin(r))) {
        free(r);
        return rc;
    }
    if ((rc = end_phase(r->lead ? prepare_data(r) : CF_OK, &r->err))) goto done;
    if ((rc = share_data(r)) == CF_OK) rc = build_model(r);
    if ((rc = end_phase(rc, &r->err)) || (rc = agree_ranks(r))) goto done;
    print_start(r);
    if ((rc = train_loop(r)) || (rc = evaluate_held_out(r)) || (rc = write_results(r))) goto done;
done:
    if (rc && cf_err_unreported(&r->err)) cf_err_print(&r->err);
    run_free(r, rc);
    return rc;
}

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
