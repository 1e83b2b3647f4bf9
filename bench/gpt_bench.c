/* Training throughput of the clinfm GPT on the reference configuration.
 *
 * Trains the model of src/model/gpt.h on a synthetic token stream (a noisy repeating pattern,
 * so the loss moves) for a few untimed warm-up steps and then --steps timed ones, and prints
 *   clinfm tokens_per_s=N peak_rss_mb=M loss=L threads=T
 * plus, with --profile, the split of a step into forward, backward and update. The same model
 * in PyTorch is bench/gpt_bench_torch.py; bench/gpt_bench.sh runs both and prints the ratio.
 * Defaults are the reference configuration: 4 layers, d_model 256, 4 heads, context 256,
 * batch 8, vocabulary 4096, dropout 0.1, AdamW with warm-up + cosine and clipping at 1. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "model/gpt.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int arg_int(int argc, char **argv, const char *name, int def) {
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], name) == 0) return atoi(argv[i + 1]);
    return def;
}

static double arg_double(int argc, char **argv, const char *name, double def) {
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], name) == 0) return atof(argv[i + 1]);
    return def;
}

int main(int argc, char **argv) {
    gpt_config cfg = {0};
    cfg.num_layers = arg_int(argc, argv, "--layers", 4);
    cfg.channels = arg_int(argc, argv, "--d-model", 256);
    cfg.num_heads = arg_int(argc, argv, "--heads", 4);
    cfg.max_seq_len = arg_int(argc, argv, "--context", 256);
    cfg.vocab_size = arg_int(argc, argv, "--vocab", 4096);
    cfg.dropout = (float)arg_double(argc, argv, "--dropout", 0.1);
    int B = arg_int(argc, argv, "--batch", 8), T = cfg.max_seq_len;
    int steps = arg_int(argc, argv, "--steps", 20), warm = arg_int(argc, argv, "--warmup-steps", 3);
    int profile = 0;
    for (int i = 1; i < argc; i++) profile |= strcmp(argv[i], "--profile") == 0;

    cf_err err;
    gpt_model m;
    if (gpt_build(&m, &cfg, (uint64_t)arg_int(argc, argv, "--seed", 1), &err) != CF_OK) {
        cf_err_print(&err);
        return 1;
    }
    gpt_opt_config opt = gpt_opt_default((uint64_t)(warm + steps));
    opt.warmup_steps = 10;

    /* The stream: token i is (7 i + noise in 0..4) mod V, as in the PyTorch twin. */
    size_t len = (size_t)B * T * 64;
    int *stream = malloc(len * sizeof(int)), *in = malloc(sizeof(int) * B * T);
    int *tg = malloc(sizeof(int) * B * T);
    if (!stream || !in || !tg) {
        fprintf(stderr, "gpt_bench: out of memory\n");
        return 2;
    }
    uint64_t s = 1;
    for (size_t i = 0; i < len; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        stream[i] = (int)((i * 7 + (s >> 33) % 5) % (size_t)cfg.vocab_size);
    }

    double t0 = 0.0, tf = 0.0, tb = 0.0, tu = 0.0;
    float loss = 0.0f;
    for (int step = 0; step < warm + steps; step++) {
        if (step == warm) t0 = now();
        size_t off = ((size_t)step * B * T) % (len - (size_t)B * T - 1);
        memcpy(in, stream + off, sizeof(int) * B * T);
        memcpy(tg, stream + off + 1, sizeof(int) * B * T);
        double a = now();
        int rc = gpt_forward(&m, in, tg, B, T, 1, &err);
        double b = now();
        if (!rc) {
            gpt_zero_grad(&m);
            rc = gpt_backward(&m, &err);
        }
        double c = now();
        if (!rc) rc = gpt_update(&m, &opt, NULL, &err);
        double d = now();
        if (rc) {
            cf_err_print(&err);
            return rc;
        }
        if (step >= warm) tf += b - a, tb += c - b, tu += d - c;
        loss = m.mean_loss;
    }
    double dt = now() - t0;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("clinfm tokens_per_s=%.1f peak_rss_mb=%.1f loss=%.4f threads=%d params=%zu\n",
           (double)steps * B * T / dt, (double)ru.ru_maxrss / 1024.0, (double)loss, m.num_threads,
           m.num_parameters);
    if (profile)
        printf("clinfm per step: forward %.1f ms, backward %.1f ms, update %.1f ms\n",
               1e3 * tf / steps, 1e3 * tb / steps, 1e3 * tu / steps);
    gpt_free(&m);
    free(stream);
    free(in);
    free(tg);
    return 0;
}
