/* Latency of one model-backed card: serve_model_open() on the bundle MODEL with its head heads/<TASK>.json
 * (as `clinfm serve --model` loads it), then score() -- the risk, its interval and occlusion
 * attribution over every code group -- for the stored patient whose record is closest to
 * --events events (default 500), --reps times (default 20) after one untimed call. --batch N sets
 * the configuration's occlusion_batch (variants per batched forward; 1 = one forward per
 * variant, the sequential path; default 16, the service's default).
 *
 *   cc -std=c11 -O2 -D_GNU_SOURCE -Isrc -fopenmp -pthread bench/card_latency.c build/libclinfm.a \
 *      $(LIBS from the Makefile) -o build/card_latency
 *   build/card_latency MODEL STORE TASK [--events N] [--reps R] [--batch N]
 *
 * Prints the patient's event count, the method the head names, median / p95 / mean latency in
 * ms, and the number of reasons. The prediction time is the patient's last event, as with the
 * service's default prediction_time "last_event". */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "serve/serve_config.h"
#include "serve/serve_model.h"
#include "store/store.h"

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    static const struct option opts[] = {{"events", required_argument, 0, 'e'}, {"reps", required_argument, 0, 'r'},
                                         {"batch", required_argument, 0, 'b'}, {0, 0, 0, 0}};
    long want = 500;
    int reps = 20, batch = 16, c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 'e') want = atol(optarg);
        else if (c == 'r') reps = atoi(optarg);
        else if (c == 'b') batch = atoi(optarg);
        else return 1;
    }
    if (argc - optind != 3 || reps < 1 || batch < 1) {
        fprintf(stderr, "usage: card_latency MODEL STORE TASK [--events N] [--reps R] [--batch N]\n");
        return 1;
    }
    const char *model = argv[optind], *store_path = argv[optind + 1], *task = argv[optind + 2];
    cf_err err = {0};
    char cfg[1024];
    snprintf(cfg, sizeof cfg,
             "{\"tasks\": [{\"id\": \"%s\", \"title\": \"t\", \"warning\": 0.2, \"critical\": 0.5}], \"services\": "
             "[{\"id\": \"pv\", \"hook\": \"patient-view\", \"title\": \"t\", \"description\": \"d\", \"tasks\": "
             "[\"%s\"]}], \"threads\": 1, \"occlusion_batch\": %d}",
             task, task, batch);
    serve_config sc;
    serve_predictor pr;
    store s;
    if (serve_config_parse(&sc, cfg, strlen(cfg), ".", "bench", &err) || serve_model_open(model, &sc, &pr, &err) ||
        store_open(&s, store_path, &err)) {
        cf_err_print(&err);
        return 1;
    }
    uint64_t best = 0;
    for (uint64_t k = 0; k < s.n_subjects; k++) {
        long n = (long)(s.subject_start[k + 1] - s.subject_start[k]), bn = (long)(s.subject_start[best + 1] - s.subject_start[best]);
        if (labs(n - want) < labs(bn - want)) best = k;
    }
    uint64_t a = s.subject_start[best];
    size_t n = (size_t)(s.subject_start[best + 1] - a);
    int64_t *tm = malloc(n * sizeof *tm);
    const char **code = malloc(n * sizeof *code), **empty = malloc(n * sizeof *empty);
    float *val = malloc(n * sizeof *val);
    for (size_t i = 0; i < n; i++) {
        tm[i] = s.time[a + i];
        code[i] = store_code_str(&s, s.code[a + i]);
        val[i] = s.numeric[a + i];
        empty[i] = "";
    }
    serve_patient p = {.n = n, .time = tm, .code = code, .value = val, .desc = empty, .source = empty,
                       .prediction_time = TIME_NULL};
    const serve_task *t = serve_config_task(&sc, task);
    double *lat = malloc((size_t)reps * sizeof *lat);
    serve_score out;
    for (int r = -1; r < reps; r++) {
        double t0 = now_ms();
        if (pr.score(pr.ctx, &p, t, &out, &err)) {
            cf_err_print(&err);
            return 1;
        }
        if (r >= 0) lat[r] = now_ms() - t0;
    }
    double sum = 0;
    for (int r = 0; r < reps; r++) sum += lat[r];
    qsort(lat, (size_t)reps, sizeof *lat, cmp_d);
    printf("patient with %zu events (%zu used), model %s (%s): risk %.4f (%.4f-%.4f), %zu reasons; latency per card "
           "median %.1f ms, p95 %.1f ms, mean %.1f ms over %d calls (occlusion batch %d)\n",
           n, out.n_events_used, pr.model_name, pr.model_version, out.risk, out.lo, out.hi, out.n_reasons,
           lat[reps / 2], lat[(int)(0.95 * (reps - 1))], sum / reps, reps, batch);
    pr.close(pr.ctx);
    serve_config_free(&sc);
    store_close(&s);
    free(tm);
    free(code);
    free(empty);
    free(val);
    free(lat);
    return 0;
}
