/* Zero-shot sampling throughput: generated tokens per second when N futures of one prompt are
 * sampled together through the KV cache (gpt_sample, the engine under the zero-shot
 * predictor's rollouts).
 *
 * The model is either a clinfm checkpoint (--model MODEL) or the given configuration with
 * seeded random weights. --export FILE writes its weights (and the next-token probabilities of
 * the benchmark prompt, as a check) for bench/sample_bench_torch.py, so PyTorch samples the very
 * same network. Prints one line:
 *   clinfm tokens_per_s=N best_s=S rollouts=N new=K prompt=P params=M
 * where tokens/s counts every sampled token (rollouts x new) over the best of --reps timed runs
 * after one untimed run. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "model/gpt.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Weights for PyTorch: a text header line of the configuration, then float32 tensors in
 * gpt_params order without padding rows beyond V, then the prompt and its next-token
 * probabilities (V floats) from clinfm, which the PyTorch side compares with its own. */
static int export_weights(const gpt_model *m, const char *path, const int *prompt, int P, const float *probs) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    const gpt_config *c = &m->config;
    fprintf(f, "clinfm-weights-v1 L=%d C=%d NH=%d T=%d V=%d Vp=%d P=%d\n", c->num_layers, c->channels, c->num_heads,
            c->max_seq_len, c->vocab_size, c->padded_vocab_size, P);
    const float *t[GPT_NUM_PARAM_TENSORS] = {m->params.wte,      m->params.wpe,      m->params.ln1w,   m->params.ln1b,
                                             m->params.qkvw,     m->params.qkvb,     m->params.attprojw,
                                             m->params.attprojb, m->params.ln2w,     m->params.ln2b,   m->params.fcw,
                                             m->params.fcb,      m->params.fcprojw,  m->params.fcprojb,
                                             m->params.lnfw,     m->params.lnfb};
    for (int i = 0; i < GPT_NUM_PARAM_TENSORS; i++)
        if (fwrite(t[i], sizeof(float), m->param_sizes[i], f) != m->param_sizes[i]) {
            fclose(f);
            return -1;
        }
    fwrite(prompt, sizeof(int), (size_t)P, f);
    fwrite(probs, sizeof(float), (size_t)c->vocab_size, f);
    return fclose(f);
}

int main(int argc, char **argv) {
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'},  {"layers", required_argument, 0, 'L'},
        {"d-model", required_argument, 0, 'C'}, {"heads", required_argument, 0, 'H'},
        {"context", required_argument, 0, 'T'}, {"vocab", required_argument, 0, 'V'},
        {"rollouts", required_argument, 0, 'N'}, {"prompt", required_argument, 0, 'P'},
        {"new", required_argument, 0, 'K'},     {"reps", required_argument, 0, 'r'},
        {"export", required_argument, 0, 'e'},  {"seed", required_argument, 0, 's'},
        {0, 0, 0, 0}};
    const char *model = NULL, *export = NULL;
    int L = 4, C = 256, NH = 4, T = 256, V = 4096, N = 20, P = 128, K = 128, reps = 3;
    unsigned long long seed = 1;
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'm': model = optarg; break;
        case 'L': L = atoi(optarg); break;
        case 'C': C = atoi(optarg); break;
        case 'H': NH = atoi(optarg); break;
        case 'T': T = atoi(optarg); break;
        case 'V': V = atoi(optarg); break;
        case 'N': N = atoi(optarg); break;
        case 'P': P = atoi(optarg); break;
        case 'K': K = atoi(optarg); break;
        case 'r': reps = atoi(optarg); break;
        case 'e': export = optarg; break;
        case 's': seed = strtoull(optarg, NULL, 10); break;
        default:
            fprintf(stderr, "usage: sample_bench [--model M | --layers --d-model --heads --context --vocab] "
                            "[--rollouts N] [--prompt P] [--new K] [--reps R] [--export FILE]\n");
            return 1;
        }
    }
    cf_err err = {0};
    gpt_model m;
    if (model) {
        if (gpt_load(&m, model, NULL, NULL, &err)) {
            cf_err_print(&err);
            return 1;
        }
    } else {
        gpt_config cfg = {.max_seq_len = T, .vocab_size = V, .num_layers = L, .num_heads = NH, .channels = C};
        if (gpt_build(&m, &cfg, seed, &err)) {
            cf_err_print(&err);
            return 1;
        }
    }
    T = m.config.max_seq_len;
    V = m.config.vocab_size;
    if (P < 1 || K < 1 || P + K - 1 > T) {
        fprintf(stderr, "sample_bench: prompt + new - 1 must fit the context of %d\n", T);
        return 1;
    }
    int *prompt = malloc((size_t)P * sizeof *prompt), *out = malloc((size_t)N * K * sizeof *out);
    float *probs = malloc((size_t)V * sizeof *probs);
    for (int i = 0; i < P; i++) prompt[i] = (int)((i * 7919u + 13u) % (unsigned)V);
    gpt_kv_cache kv;
    if (gpt_kv_init(&kv, &m, N, &err)) {
        cf_err_print(&err);
        return 1;
    }
    if (gpt_next_token_probs(&m, &kv, prompt, P, probs, &err)) {
        cf_err_print(&err);
        return 1;
    }
    if (export && export_weights(&m, export, prompt, P, probs)) {
        fprintf(stderr, "sample_bench: cannot write %s\n", export);
        return 1;
    }
    gpt_sample_config sc = {.temperature = 1.0f, .top_k = 0, .seed = seed, .stop_token = -1};
    double best = 1e30;
    for (int r = 0; r <= reps; r++) {
        double t0 = now_s();
        if (gpt_sample(&m, &kv, prompt, P, K, &sc, out, &err)) {
            cf_err_print(&err);
            return 1;
        }
        double dt = now_s() - t0;
        if (r > 0 && dt < best) best = dt; /* the first run warms caches and threads */
    }
    printf("clinfm tokens_per_s=%.1f best_s=%.4f rollouts=%d new=%d prompt=%d params=%zu\n", (double)N * K / best, best,
           N, K, P, m.num_parameters);
    gpt_kv_free(&kv);
    gpt_free(&m);
    free(prompt);
    free(out);
    free(probs);
    return 0;
}
