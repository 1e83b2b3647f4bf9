/* Read speed of an event store: touch every event's five columns, as a full pass (vocab, shards,
 * export, deid) does, three ways:
 *   open     store_open, then the columns (a version 2 or 3 store is decoded whole at open)
 *   cursor   store_open_summary and a store_cursor, subject by subject, one thread
 *   cursor+  the same with the cursor's readahead thread (STORE_CURSOR_READAHEAD)
 * Prints seconds and events/s for each store given, cold (the file dropped from the page cache
 * first, posix_fadvise; run as root after `echo 1 > /proc/sys/vm/drop_caches` for the same) and
 * warm, each the best of STORE_BENCH_REPS passes (default 3), the CPU seconds of a warm pass (all
 * threads; best of the same), the peak RSS growth
 * of each way, the file's bytes per event, and each time's ratio to the first store's
 * `open` time measured in the same run (give a version 1 store first: it is mapped as it lies).
 * Any mix of versions 1, 2 and 3 (the same events in all: equal checksums).
 *
 *   make && cc -std=c11 -O2 -D_GNU_SOURCE -Isrc -pthread -o /tmp/store_read_bench \
 *      bench/store_read_bench.c build/libclinfm.a -lsodium -lzstd -ldeflate -lm -lpthread
 *   /tmp/store_read_bench V1.store V2.store V3.store
 * Version 3 is read with the widest vector kernels the CPU has (AVX-512, else AVX2);
 * CLINFM_STORE_NO_AVX512=1 reads it on the AVX2 path (a CPU without AVX-512), CLINFM_STORE_NO_SIMD=1
 * on the scalar one (a CPU without AVX2; the block CRC then by libdeflate). */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store/store.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void drop_cache(const char *path) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) return;
    fdatasync(fd);
    posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    close(fd);
}

static uint64_t sum_events(const int64_t *time, const uint32_t *code, const float *numeric, const uint32_t *text,
                           const uint64_t *prov, uint64_t n) {
    uint64_t sum = 0;
    for (uint64_t i = 0; i < n; i++) {
        uint32_t bits;
        memcpy(&bits, &numeric[i], 4);
        sum += (uint64_t)time[i] + code[i] + bits + text[i] + prov[i];
    }
    return sum;
}

enum { WAY_OPEN, WAY_CURSOR, WAY_READAHEAD, N_WAYS };
static const char *way_name[N_WAYS] = {"open", "cursor", "cursor+"};

/* One pass: open, sum every column, close. Returns seconds, or -1. */
static double pass(const char *path, int way, uint64_t *n, uint64_t *check) {
    double t0 = now();
    store s;
    cf_err err = {0};
    int rc = way == WAY_OPEN ? store_open(&s, path, &err) : store_open_summary(&s, path, &err);
    if (rc) {
        fprintf(stderr, "%s\n", err.msg);
        return -1;
    }
    uint64_t sum = 0;
    if (way == WAY_OPEN) {
        sum = sum_events(s.time, s.code, s.numeric, s.text, s.prov, s.n_events);
    } else {
        store_cursor *c;
        if (store_cursor_new(&c, &s, way == WAY_READAHEAD ? STORE_CURSOR_READAHEAD : 0, &err)) goto fail;
        for (uint64_t k = 0; k < s.n_subjects; k++) {
            store_events ev;
            if (store_cursor_subject(c, k, &ev, &err)) {
                store_cursor_free(c);
                goto fail;
            }
            sum += sum_events(ev.time, ev.code, ev.numeric, ev.text, ev.prov, ev.n);
        }
        store_cursor_free(c);
    }
    *n = s.n_events;
    *check = sum;
    store_close(&s);
    return now() - t0;
fail:
    fprintf(stderr, "%s\n", err.msg);
    store_close(&s);
    return -1;
}

/* CPU seconds of the process so far (every thread): on a shared machine the wall time follows the
 * load, the CPU time much less. */
static double cpu_s(void) {
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return (double)u.ru_utime.tv_sec + (double)u.ru_utime.tv_usec * 1e-6 + (double)u.ru_stime.tv_sec +
           (double)u.ru_stime.tv_usec * 1e-6;
}

static long rss_kib(void) {
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return u.ru_maxrss;
}

int main(int argc, char **argv) {
    if (argc < 2 || argc > 9) {
        fprintf(stderr, "usage: store_read_bench STORE... (up to 8)\n");
        return 1;
    }
    double cold[9][N_WAYS], warm[9][N_WAYS], cpu[9][N_WAYS];
    uint64_t n_events[9] = {0};
    const char *e = getenv("STORE_BENCH_REPS");
    int reps = e && atoi(e) > 0 ? atoi(e) : 3;
    /* The ways that grow the peak RSS least go first, so each way's growth is its own. */
    const int order[N_WAYS] = {WAY_CURSOR, WAY_READAHEAD, WAY_OPEN};
    for (int a = 1; a < argc; a++) {
        for (int w = 0; w < N_WAYS; w++) {
            int way = order[w];
            uint64_t n = 0, check = 0;
            long rss0 = rss_kib();
            double c = 1e30, best = 1e30, best_cpu = 1e30;
            for (int r = 0; r < reps; r++) {
                drop_cache(argv[a]);
                double t = pass(argv[a], way, &n, &check);
                if (t < 0) return 1;
                if (t < c) c = t;
            }
            for (int r = 0; r < reps; r++) {
                double u0 = cpu_s(), t = pass(argv[a], way, &n, &check), u = cpu_s() - u0;
                if (t < 0) return 1;
                if (t < best) best = t;
                if (u < best_cpu) best_cpu = u;
            }
            cpu[a][way] = best_cpu;
            n_events[a] = n;
            cold[a][way] = c;
            warm[a][way] = best;
            printf("%s %-7s: %llu events, cold %.3f s (%.1f M events/s), warm %.3f s (%.1f M events/s), "
                   "CPU %.3f s, peak RSS +%ld MiB, checksum %016llx\n",
                   argv[a], way_name[way], (unsigned long long)n, c, n / c / 1e6, best, n / best / 1e6, best_cpu,
                   (rss_kib() - rss0) / 1024, (unsigned long long)check);
        }
    }
    printf("\ntime against %s open (same run; < 1 is faster):\n", argv[1]);
    for (int a = 1; a < argc; a++) {
        struct stat st;
        double bpe = stat(argv[a], &st) == 0 && n_events[a] ? (double)st.st_size / (double)n_events[a] : 0;
        for (int way = 0; way < N_WAYS; way++)
            printf("  %s %-7s  cold %.2fx  warm %.2fx  CPU %.2fx  (%.2f bytes/event)\n", argv[a], way_name[way],
                   cold[a][way] / cold[1][WAY_OPEN], warm[a][way] / warm[1][WAY_OPEN], cpu[a][way] / cpu[1][WAY_OPEN], bpe);
    }
    return 0;
}
