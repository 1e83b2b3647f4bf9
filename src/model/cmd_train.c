/* `clinfm train`: the institution's own model, trained from scratch on its (de-identified) store.
 *
 * Pipeline: store -> vocabulary fitted on the train split (src/timeline) -> token shards per
 * split -> GPT (src/model/gpt.h) trained on fixed-length windows packed from the train shard,
 * evaluated on the tuning shard as it goes and on held_out at the end, next to the unigram and
 * bigram baselines. Checkpoints are written atomically; `--resume` continues exactly: the
 * optimizer state, step and dropout RNG are in the checkpoint, and the data order is a pure
 * function of (seed, step), so a resumed run sees the same batches it would have seen. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli/commands.h"
#include "model/gpt.h"
#include "store/store.h"
#include "timeline/split.h"
#include "timeline/timeline.h"
#include "timeline/vocab.h"
#include "util/atomic_file.h"
#include "util/progress.h"

typedef struct {
    const char *store, *out, *vocab, *shards, *split_key, *split_fractions;
    int layers, d_model, heads, context, batch;
    uint64_t steps, stop_after, warmup, eval_every, save_every;
    int eval_batches;
    float lr, min_lr, weight_decay, dropout, grad_clip;
    uint64_t seed;
    int resume, allow_identified, threads;
} train_args;

static void train_help(void) {
    printf("usage: clinfm train --store STORE --out MODEL [options]\n"
           "\n"
           "Trains a GPT-style model on the store's patient timelines (train split), reporting tuning\n"
           "loss as it goes and held-out loss at the end beside unigram and bigram baselines.\n"
           "Writes MODEL (checkpoint), MODEL.vocab (unless --vocab), MODEL.shards/ (token shards),\n"
           "and MODEL.json (configuration, losses, throughput).\n"
           "\n"
           "data:\n"
           "  --store STORE          event store; must be de-identified (clinfm deid) unless\n"
           "  --allow-identified     is given, which the training log then records\n"
           "  --vocab FILE           use this vocabulary instead of fitting one\n"
           "  --shards DIR           where token shards go (default MODEL.shards)\n"
           "  --split-key FILE       secret key for the train/tuning/held_out split (default: the\n"
           "                         public project key; see docs/TIMELINE.md)\n"
           "  --split P/P/P          split percentages (default 80/10/10)\n"
           "model (defaults: the reference configuration):\n"
           "  --layers N (4)  --d-model N (256)  --heads N (4)  --context N (256)  --dropout P (0.1)\n"
           "optimisation:\n"
           "  --batch N (8)  --steps N (1000)  --lr X (3e-4)  --min-lr X (lr/10)  --warmup N (steps/20)\n"
           "  --weight-decay X (0.1)  --grad-clip X (1.0)  --seed N (1)  --threads N (all cores)\n"
           "  --eval-every N (steps/10)  --eval-batches N (16)  --save-every N (eval-every)\n"
           "  --resume               continue from MODEL (same data, vocabulary and architecture)\n"
           "  --stop-after N         stop after step N of --steps (a planned interruption)\n"
           "  -h, --help             this help\n"
           "exit status: 0 ok, 1 bad input or usage, 2 internal error.\n");
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
 * spaced): the same windows every time, so evaluations are comparable across steps. */
static int eval_shard(gpt_model *m, const timeline_shard *sh, const vocab *v, int B, int T, int max_windows,
                      double *loss_out, uint64_t *targets_out, int *inputs, int *targets, cf_err *err) {
    *loss_out = NAN;
    *targets_out = 0;
    if (!sh->n_tokens) return CF_OK;
    uint64_t n_windows = (sh->n_tokens + (uint64_t)T - 1) / (uint64_t)T;
    uint64_t use = max_windows > 0 && n_windows > (uint64_t)max_windows ? (uint64_t)max_windows : n_windows;
    double sum = 0;
    uint64_t count = 0;
    for (uint64_t w0 = 0; w0 < use; w0 += (uint64_t)B) {
        int rows = (int)(use - w0 < (uint64_t)B ? use - w0 : (uint64_t)B);
        for (int b = 0; b < B; b++) {
            uint64_t wi = w0 + (uint64_t)(b < rows ? b : 0);
            uint64_t pos = (wi * n_windows / use) * (uint64_t)T;
            timeline_shard_window(sh, v, pos, T, inputs + (size_t)b * T, targets + (size_t)b * T);
            if (b >= rows)
                for (int t = 0; t < T; t++) targets[(size_t)b * T + t] = -1;
        }
        int rc = gpt_forward(m, inputs, targets, B, T, 0, err);
        if (rc) return rc;
        for (size_t i = 0; i < (size_t)B * T; i++)
            if (targets[i] >= 0) {
                sum += m->acts.losses[i];
                count++;
            }
    }
    *loss_out = count ? sum / (double)count : NAN;
    *targets_out = count;
    return CF_OK;
}

static int file_exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0;
}

static int write_summary(const char *path, const train_args *a, const gpt_model *m, const vocab *v,
                         const timeline_baseline *base, double tuning_loss, double held_loss, uint64_t held_targets,
                         double tokens_per_s, uint64_t trained_tokens, int identified, cf_err *err) {
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
    cJSON_AddNumberToObject(c, "batch", a->batch);
    cJSON_AddNumberToObject(c, "steps", (double)a->steps);
    cJSON_AddNumberToObject(c, "lr", a->lr);
    cJSON_AddNumberToObject(c, "seed", (double)a->seed);
    cJSON_AddStringToObject(r, "vocab_hash", vocab_hash_hex(v, hex));
    cJSON_AddNumberToObject(r, "step", (double)m->step);
    cJSON_AddNumberToObject(r, "trained_tokens", (double)trained_tokens);
    cJSON_AddNumberToObject(r, "tokens_per_second", tokens_per_s);
    cJSON *l = cJSON_AddObjectToObject(r, "loss_nats_per_token");
    cJSON_AddNumberToObject(l, "train_last", m->mean_loss);
    if (!isnan(tuning_loss)) cJSON_AddNumberToObject(l, "tuning", tuning_loss);
    if (!isnan(held_loss)) cJSON_AddNumberToObject(l, "held_out", held_loss);
    cJSON_AddNumberToObject(l, "held_out_targets", (double)held_targets);
    if (!isnan(base->unigram[SPLIT_HELD_OUT])) cJSON_AddNumberToObject(l, "held_out_unigram", base->unigram[SPLIT_HELD_OUT]);
    if (!isnan(base->bigram[SPLIT_HELD_OUT])) cJSON_AddNumberToObject(l, "held_out_bigram", base->bigram[SPLIT_HELD_OUT]);
    char *s = cJSON_Print(r);
    cJSON_Delete(r);
    if (!s) return cf_fail(err, CF_EINTERNAL, "out of memory");
    int rc = atomic_write_file(path, s, strlen(s), err);
    free(s);
    return rc;
}

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
    int rc = CF_OK;
    if (!cJSON_IsNumber(jb) || !cJSON_IsNumber(js)) {
        rc = cf_fail(err, CF_EINPUT, "%s: no batch and seed recorded; cannot resume exactly", summary_path);
    } else if ((batch_set && a->batch != jb->valueint) || (seed_set && a->seed != (uint64_t)js->valuedouble)) {
        rc = cf_fail(err, CF_EINPUT, "--batch or --seed differs from the run being resumed (%d, %llu); omit them", jb->valueint,
                     (unsigned long long)js->valuedouble);
    } else {
        a->batch = jb->valueint;
        a->seed = (uint64_t)js->valuedouble;
    }
    cJSON_Delete(r);
    return rc;
}

static int parse_float(const char *opt, const char *text, float *out) {
    char *end;
    float v = strtof(text, &end);
    if (!*text || *end || !isfinite(v) || v < 0) return cli_usage_error("train", "%s expects a non-negative number", opt);
    *out = v;
    return 0;
}

static int parse_int(const char *opt, const char *text, int *out, int lo, int hi) {
    unsigned long long v;
    if (cli_parse_u64("train", opt, text, &v)) return 1;
    if (v < (unsigned long long)lo || v > (unsigned long long)hi) return cli_usage_error("train", "%s must be %d to %d", opt, lo, hi);
    *out = (int)v;
    return 0;
}

int cmd_train(int argc, char **argv) {
    static const struct option opts[] = {
        {"store", required_argument, 0, 'S'},      {"out", required_argument, 0, 'o'},
        {"vocab", required_argument, 0, 'V'},      {"shards", required_argument, 0, 'D'},
        {"split-key", required_argument, 0, 'K'},  {"split", required_argument, 0, 'P'},
        {"layers", required_argument, 0, 'L'},     {"d-model", required_argument, 0, 'C'},
        {"heads", required_argument, 0, 'H'},      {"context", required_argument, 0, 'T'},
        {"batch", required_argument, 0, 'B'},      {"steps", required_argument, 0, 's'},
        {"stop-after", required_argument, 0, 'x'}, {"warmup", required_argument, 0, 'w'},
        {"eval-every", required_argument, 0, 'e'}, {"eval-batches", required_argument, 0, 'E'},
        {"save-every", required_argument, 0, 'k'}, {"lr", required_argument, 0, 'l'},
        {"min-lr", required_argument, 0, 'm'},     {"weight-decay", required_argument, 0, 'W'},
        {"dropout", required_argument, 0, 'd'},    {"grad-clip", required_argument, 0, 'g'},
        {"seed", required_argument, 0, 'z'},       {"threads", required_argument, 0, 'j'},
        {"resume", no_argument, 0, 'r'},           {"allow-identified", no_argument, 0, 'A'},
        {"help", no_argument, 0, 'h'},             {0, 0, 0, 0}};
    train_args a = {.layers = 4, .d_model = 256, .heads = 4, .context = 256, .batch = 8, .steps = 1000,
                    .lr = 3e-4f, .min_lr = -1, .weight_decay = 0.1f, .dropout = 0.1f, .grad_clip = 1.0f,
                    .seed = 1, .eval_batches = 16};
    int got_arch = 0, warmup_set = 0, batch_set = 0, seed_set = 0;
    unsigned long long u;
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'S': a.store = optarg; break;
        case 'o': a.out = optarg; break;
        case 'V': a.vocab = optarg; break;
        case 'D': a.shards = optarg; break;
        case 'K': a.split_key = optarg; break;
        case 'P': a.split_fractions = optarg; break;
        case 'L': if (parse_int("--layers", optarg, &a.layers, 1, 64)) return 1; got_arch = 1; break;
        case 'C': if (parse_int("--d-model", optarg, &a.d_model, 8, 8192)) return 1; got_arch = 1; break;
        case 'H': if (parse_int("--heads", optarg, &a.heads, 1, 256)) return 1; got_arch = 1; break;
        case 'T': if (parse_int("--context", optarg, &a.context, 16, 65536)) return 1; got_arch = 1; break;
        case 'B': if (parse_int("--batch", optarg, &a.batch, 1, 4096)) return 1; batch_set = 1; break;
        case 's': if (cli_parse_u64("train", "--steps", optarg, &u)) return 1; a.steps = u; break;
        case 'x': if (cli_parse_u64("train", "--stop-after", optarg, &u)) return 1; a.stop_after = u; break;
        case 'w': if (cli_parse_u64("train", "--warmup", optarg, &u)) return 1; a.warmup = u; warmup_set = 1; break;
        case 'e': if (cli_parse_u64("train", "--eval-every", optarg, &u)) return 1; a.eval_every = u; break;
        case 'E': if (parse_int("--eval-batches", optarg, &a.eval_batches, 1, 100000)) return 1; break;
        case 'k': if (cli_parse_u64("train", "--save-every", optarg, &u)) return 1; a.save_every = u; break;
        case 'l': if (parse_float("--lr", optarg, &a.lr)) return 1; break;
        case 'm': if (parse_float("--min-lr", optarg, &a.min_lr)) return 1; break;
        case 'W': if (parse_float("--weight-decay", optarg, &a.weight_decay)) return 1; break;
        case 'd': if (parse_float("--dropout", optarg, &a.dropout)) return 1; got_arch = 1; break;
        case 'g': if (parse_float("--grad-clip", optarg, &a.grad_clip)) return 1; break;
        case 'z': if (cli_parse_u64("train", "--seed", optarg, &u)) return 1; a.seed = u; seed_set = 1; break;
        case 'j': if (parse_int("--threads", optarg, &a.threads, 1, 1024)) return 1; break;
        case 'r': a.resume = 1; break;
        case 'A': a.allow_identified = 1; break;
        case 'h': train_help(); return 0;
        default: return cli_usage_error("train", "unknown option '%s' or missing value", argv[optind - 1]);
        }
    }
    if (optind < argc) return cli_usage_error("train", "unexpected argument '%s'", argv[optind]);
    if (!a.store || !a.out) return cli_usage_error("train", "--store and --out are required");
    if (a.steps < 1) return cli_usage_error("train", "--steps must be at least 1");
    if (a.dropout >= 1) return cli_usage_error("train", "--dropout must be below 1");
    if (a.min_lr < 0) a.min_lr = a.lr / 10;
    if (!warmup_set) a.warmup = a.steps / 20;
    if (!a.eval_every) a.eval_every = a.steps / 10 ? a.steps / 10 : 1;
    if (!a.save_every) a.save_every = a.eval_every;
    if (!a.stop_after || a.stop_after > a.steps) a.stop_after = a.steps;

    cf_err err = {0};
    int rc = CF_OK;
    store s;
    vocab v;
    int have_vocab = 0, store_open_ok = 0, model_ok = 0;
    timeline_shard sh[SPLIT_COUNT];
    int sh_open[SPLIT_COUNT] = {0};
    gpt_model m;
    memset(&m, 0, sizeof m);
    memset(&v, 0, sizeof v);
    int *inputs = NULL, *targets = NULL;
    char vocab_path[4200], shard_dir[4200], shard_path[SPLIT_COUNT][4300], summary_path[4200];
    snprintf(vocab_path, sizeof vocab_path, "%s", a.vocab ? a.vocab : "");
    if (!a.vocab) snprintf(vocab_path, sizeof vocab_path, "%s.vocab", a.out);
    snprintf(shard_dir, sizeof shard_dir, "%s", a.shards ? a.shards : "");
    if (!a.shards) snprintf(shard_dir, sizeof shard_dir, "%s.shards", a.out);
    snprintf(summary_path, sizeof summary_path, "%s.json", a.out);

    if ((rc = store_open(&s, a.store, &err))) goto done;
    store_open_ok = 1;
    int identified = !(s.flags & STORE_FLAG_DEIDENTIFIED);
    if (identified && !a.allow_identified) {
        rc = cf_fail(&err, CF_EINPUT, "%s is not de-identified: run `clinfm deid` first, or pass --allow-identified "
                     "to train on identifiable data deliberately (the model file will say so)", a.store);
        goto done;
    }
    split_config sp;
    split_config_default(&sp);
    if (a.split_key && (rc = split_load_key(&sp, a.split_key, &err))) goto done;
    if (a.split_fractions && (rc = split_parse_fractions(&sp, a.split_fractions, &err))) goto done;

    /* Vocabulary: given, reused from an earlier run of this model, or fitted now on train. */
    if (a.vocab || (a.resume && file_exists(vocab_path))) {
        if ((rc = vocab_load(&v, vocab_path, &err))) goto done;
    } else {
        vocab_options vo;
        vocab_options_default(&vo);
        if ((rc = vocab_build(&v, &s, &sp, &vo, &err))) goto done;
        if ((rc = vocab_save(&v, vocab_path, &err))) goto done;
    }
    have_vocab = 1;
    mkdir(shard_dir, 0755);
    for (int p = 0; p < SPLIT_COUNT; p++) {
        snprintf(shard_path[p], sizeof shard_path[p], "%s/%s.tokens", shard_dir, split_name(p));
        /* Reuse shards of this vocabulary (a resume); otherwise write them. */
        if (!(a.resume && file_exists(shard_path[p]) && timeline_shard_open(&sh[p], shard_path[p], &v, &err) == CF_OK)) {
            timeline_shard_stats st;
            if ((rc = timeline_write_shards(&v, &s, &sp, p, shard_path[p], &st, &err))) goto done;
            if ((rc = timeline_shard_open(&sh[p], shard_path[p], &v, &err))) goto done;
        }
        sh_open[p] = 1;
    }
    if (!sh[SPLIT_TRAIN].n_tokens) {
        rc = cf_fail(&err, CF_EINPUT, "%s: the train split has no tokens; nothing to train on", a.store);
        goto done;
    }
    timeline_baseline base;
    if ((rc = timeline_ngram_baseline(&v, &s, &sp, &base, &err))) goto done;

    gpt_config cfg = {.max_seq_len = a.context, .vocab_size = (int)v.n_tokens, .num_layers = a.layers,
                      .num_heads = a.heads, .channels = a.d_model, .dropout = a.dropout};
    gpt_opt_config opt = gpt_opt_default(a.steps);
    opt.lr = a.lr;
    opt.min_lr = a.min_lr;
    opt.weight_decay = a.weight_decay;
    opt.grad_clip = a.grad_clip;
    opt.warmup_steps = a.warmup;
    opt.total_steps = a.steps;
    if (a.resume && file_exists(a.out)) {
        /* The batch size and data seed decide which windows each step sees: take them from the
         * run being resumed, and refuse different ones. */
        if ((rc = resume_data_args(summary_path, &a, batch_set, seed_set, &err))) goto done;
        gpt_opt_config saved;
        if ((rc = gpt_load(&m, a.out, v.hash, &saved, &err))) goto done;
        model_ok = 1;
        if (got_arch && (rc = gpt_config_compare(&m.config, &cfg, &err))) goto done;
        opt = saved;
        a.steps = opt.total_steps;
        if (a.stop_after > a.steps) a.stop_after = a.steps;
        printf("resuming %s at step %llu of %llu\n", a.out, (unsigned long long)m.step, (unsigned long long)a.steps);
    } else {
        if ((rc = gpt_build(&m, &cfg, a.seed, &err))) goto done;
        model_ok = 1;
        memcpy(m.vocab_hash, v.hash, sizeof m.vocab_hash);
    }
    if (a.threads) m.num_threads = a.threads;
    int B = a.batch, T = m.config.max_seq_len;
    inputs = malloc((size_t)B * T * sizeof *inputs);
    targets = malloc((size_t)B * T * sizeof *targets);
    if (!inputs || !targets) {
        rc = cf_fail(&err, CF_EINTERNAL, "out of memory");
        goto done;
    }
    printf("model: %d layers, d_model %d, %d heads, context %d, vocabulary %u: %zu parameters\n", m.config.num_layers,
           m.config.channels, m.config.num_heads, T, v.n_tokens, m.num_parameters);
    printf("data: train %llu tokens (%llu subjects), tuning %llu, held_out %llu; baselines on held_out: unigram %.3f, "
           "bigram %.3f nats/token\n",
           (unsigned long long)sh[SPLIT_TRAIN].n_tokens, (unsigned long long)sh[SPLIT_TRAIN].n_subjects,
           (unsigned long long)sh[SPLIT_TUNING].n_tokens, (unsigned long long)sh[SPLIT_HELD_OUT].n_tokens,
           base.unigram[SPLIT_HELD_OUT], base.bigram[SPLIT_HELD_OUT]);
    fflush(stdout);

    progress pr;
    progress_begin(&pr, "train", "steps", a.stop_after);
    double t_start = now_seconds(), t_train = 0, tuning_loss = NAN;
    uint64_t trained_tokens = 0, first_step = m.step;
    while (m.step < a.stop_after) {
        uint64_t step = m.step;
        for (int b = 0; b < B; b++)
            timeline_shard_window(&sh[SPLIT_TRAIN], &v, window_pos(a.seed, step, b, sh[SPLIT_TRAIN].n_tokens), T,
                                  inputs + (size_t)b * T, targets + (size_t)b * T);
        double t0 = now_seconds();
        gpt_update_stats us;
        if ((rc = gpt_forward(&m, inputs, targets, B, T, 1, &err))) break;
        gpt_zero_grad(&m);
        if ((rc = gpt_backward(&m, &err))) break;
        if ((rc = gpt_update(&m, &opt, &us, &err))) break;
        t_train += now_seconds() - t0;
        trained_tokens += (uint64_t)B * T;
        if (!isfinite(m.mean_loss)) {
            rc = cf_fail(&err, CF_EINPUT, "training diverged at step %llu (loss is not finite); lower --lr",
                         (unsigned long long)m.step);
            break;
        }
        /* The progress line redraws on a terminal; the step log below is the record. */
        pr.calls = 4095;
        progress_update(&pr, m.step);
        int last = m.step == a.stop_after;
        if (m.step % a.eval_every == 0 || last) {
            uint64_t nt;
            if ((rc = eval_shard(&m, &sh[SPLIT_TUNING], &v, B, T, a.eval_batches * B, &tuning_loss, &nt, inputs, targets,
                                 &err)))
                break;
            double tps = t_train > 0 ? (double)trained_tokens / t_train : 0;
            double eta = tps > 0 ? (double)(a.stop_after - m.step) * B * T / tps : 0;
            progress_end(&pr);
            printf("step %6llu/%llu  train loss %.4f  tuning loss %.4f  lr %.2e  grad norm %.3f  %.0f tokens/s  ETA %.0f s\n",
                   (unsigned long long)m.step, (unsigned long long)a.steps, m.mean_loss, tuning_loss, us.lr, us.grad_norm,
                   tps, eta);
            fflush(stdout);
        }
        if (m.step % a.save_every == 0 || last) {
            if ((rc = gpt_save(&m, a.out, &opt, GPT_CKPT_OPTIMIZER, &err))) break;
        }
    }
    progress_end(&pr);
    if (rc) goto done;
    double held_loss = NAN;
    uint64_t held_targets = 0;
    if (m.step == a.steps) {
        if ((rc = eval_shard(&m, &sh[SPLIT_HELD_OUT], &v, B, T, 0, &held_loss, &held_targets, inputs, targets, &err)))
            goto done;
        printf("held_out: %.4f nats/token over %llu tokens (unigram %.4f, bigram %.4f)\n", held_loss,
               (unsigned long long)held_targets, base.unigram[SPLIT_HELD_OUT], base.bigram[SPLIT_HELD_OUT]);
    }
    double tps = t_train > 0 ? (double)trained_tokens / t_train : 0;
    if ((rc = write_summary(summary_path, &a, &m, &v, &base, tuning_loss, held_loss, held_targets, tps, trained_tokens,
                            identified, &err)))
        goto done;
    printf("wrote %s (step %llu), %s, %s; %.0f training tokens/s over %llu steps in %.1f s\n", a.out,
           (unsigned long long)m.step, vocab_path, summary_path, tps, (unsigned long long)(m.step - first_step),
           now_seconds() - t_start);
done:
    if (rc) cf_err_print(&err);
    free(inputs);
    free(targets);
    if (model_ok) gpt_free(&m);
    for (int p = 0; p < SPLIT_COUNT; p++)
        if (sh_open[p]) timeline_shard_close(&sh[p]);
    if (have_vocab) vocab_free(&v);
    if (store_open_ok) store_close(&s);
    return rc;
}
