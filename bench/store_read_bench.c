/* Read speed of an event store: open it and touch every event's five columns, as a full pass
 * (vocab, shards, export) does. Prints seconds and events/s for each store given, cold (the file
 * dropped from the page cache first, posix_fadvise) and warm (best of 3), so a version 1 store
 * (mmap'd as is) and a version 2 store (blocks decoded at open) are compared in one run.
 *
 *   make && cc -std=c11 -O2 -D_GNU_SOURCE -Isrc -pthread -o /tmp/store_read_bench \
 *      bench/store_read_bench.c build/libclinfm.a -lsodium -lzstd -lm -lpthread
 *   /tmp/store_read_bench OLD.store NEW.store     (the same events in both: equal checksums) */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
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

/* One pass: open, sum every column, close. Returns seconds, or -1. */
static double pass(const char *path, uint64_t *n, uint64_t *check) {
    double t0 = now();
    store s;
    cf_err err = {0};
    if (store_open(&s, path, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return -1;
    }
    uint64_t sum = 0;
    for (uint64_t i = 0; i < s.n_events; i++) {
        uint32_t bits;
        memcpy(&bits, &s.numeric[i], 4);
        sum += (uint64_t)s.time[i] + s.code[i] + bits + s.text[i] + s.prov[i];
    }
    *n = s.n_events;
    *check = sum;
    store_close(&s);
    return now() - t0;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: store_read_bench STORE...\n");
        return 1;
    }
    for (int a = 1; a < argc; a++) {
        uint64_t n = 0, check = 0;
        drop_cache(argv[a]);
        double cold = pass(argv[a], &n, &check), warm = 1e30;
        if (cold < 0) return 1;
        for (int r = 0; r < 3; r++) {
            double t = pass(argv[a], &n, &check);
            if (t < 0) return 1;
            if (t < warm) warm = t;
        }
        printf("%s: %llu events, cold %.3f s (%.1f M events/s), warm %.3f s (%.1f M events/s), checksum %016llx\n",
               argv[a], (unsigned long long)n, cold, n / cold / 1e6, warm, n / warm / 1e6, (unsigned long long)check);
    }
    return 0;
}
