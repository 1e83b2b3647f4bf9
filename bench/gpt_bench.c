/* Training throughput of the clinfm GPT on the reference configuration, and the share of the
 * machine's fp32 FMA peak it reaches.
 *
 * Trains the model of src/model/gpt.h on a synthetic token stream (a noisy repeating pattern,
 * so the loss moves) for a few untimed warm-up steps and then --steps timed ones, measures the
 * FMA peak of the same threads right before and right after (bench/fma_peak.h, the widest
 * vector width the CPU has, best of both), and prints one line
 *   clinfm tokens_per_s=N gflops=G peak_gflops=P share=S cpu_tokens_per_s=N
 *          peak_cpu_gflops=P cpu_share=S path=K peak_isa=I peak_rss_mb=M loss=L threads=T
 *          params=N flops_per_token=F
 * gflops = tokens/s x flops_per_token and share = gflops / peak_gflops, both over wall-clock
 * time, so both suffer the load of the moment alike. cpu_tokens_per_s and cpu_share do the same
 * over CPU time (the process's CPU seconds over the thread count; the peak loop's flops over
 * each thread's CPU seconds): what the run reaches on cores of its own, a figure other people's
 * processes disturb much less (threads spinning at a barrier count as busy, so it does not
 * flatter).
 *
 * flops_per_token counts each multiply-add as 2 flops: every matrix product forward and its two
 * backward products (6 x the 12 L C^2 + C Vp weights per token) and the causal attention's
 * score and value products over the visible keys only (forward 4 C (t+1) per layer at position
 * t, 2 C (T+1) on average; backward twice that: 6 L C (T+1) in all); nothing for LayerNorm,
 * GELU, softmax or AdamW, nor for the scores backward recomputes.
 *
 * path is the kernel path (src/model/gpt_kernels.h; CLINFM_KERNELS=avx2 forces the AVX2 one).
 * With --profile it also prints the split of a step into forward, backward and update. The
 * same model in PyTorch is bench/gpt_bench_torch.py; bench/gpt_bench.sh runs both and prints
 * the ratios. Defaults are the reference configuration: 4 layers, d_model 256, 4 heads,
 * context 256, batch 8, vocabulary 4096, dropout 0.1, AdamW with warm-up + cosine and clipping
 * at 1. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "fma_peak.h"
#include "model/gpt.h"
#include "model/gpt_kernels.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* CPU time of the whole process (all threads): what it ran, however busy the machine was. */
static double cpu_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
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

    const char *peak_isa = fma_peak_isa(NULL);
    double peak = fma_peak_gflops(peak_isa, m.num_threads, 5, 0);
    double peak_cpu = fma_peak_gflops(peak_isa, m.num_threads, 5, 1);
    double c0 = 0.0;

    double t0 = 0.0, tf = 0.0, tb = 0.0, tu = 0.0;
    float loss = 0.0f;
    for (int step = 0; step < warm + steps; step++) {
        if (step == warm) t0 = now(), c0 = cpu_now();
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
    double dt = now() - t0, cdt = cpu_now() - c0;
    double peak2 = fma_peak_gflops(peak_isa, m.num_threads, 5, 0);
    double peak_cpu2 = fma_peak_gflops(peak_isa, m.num_threads, 5, 1);
    if (peak2 > peak) peak = peak2;
    if (peak_cpu2 > peak_cpu) peak_cpu = peak_cpu2;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double L = cfg.num_layers, C = cfg.channels, Vp = m.config.padded_vocab_size;
    double flops_tok = 6.0 * (12.0 * L * C * C + C * Vp) + 6.0 * L * C * (T + 1.0);
    double tps = (double)steps * B * T / dt, gflops = tps * flops_tok / 1e9;
    double cpu_tps = (double)steps * B * T / (cdt / m.num_threads);
    printf("clinfm tokens_per_s=%.1f gflops=%.1f peak_gflops=%.1f share=%.3f cpu_tokens_per_s=%.1f "
           "peak_cpu_gflops=%.1f cpu_share=%.3f path=%s peak_isa=%s peak_rss_mb=%.1f loss=%.4f "
           "threads=%d params=%zu flops_per_token=%.0f\n",
           tps, gflops, peak, gflops / peak, cpu_tps, peak_cpu,
           cpu_tps * flops_tok / 1e9 / peak_cpu, gpt__kernels_path_name(gpt__kernels_path()),
           peak_isa, (double)ru.ru_maxrss / 1024.0, (double)loss, m.num_threads, m.num_parameters,
           flops_tok);
    if (profile)
        printf("clinfm per step: forward %.1f ms, backward %.1f ms, update %.1f ms\n",
               1e3 * tf / steps, 1e3 * tb / steps, 1e3 * tu / steps);
    gpt_free(&m);
    free(stream);
    free(in);
    free(tg);
    return 0;
}
