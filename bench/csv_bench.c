/* Micro benchmark for the CSV reader: parses each file given on the command line a few times
 * and prints the best throughput in MB/s of uncompressed CSV, then times pandas.read_csv on the
 * same file in the same run for comparison (skip with CSV_BENCH_NO_PANDAS=1).
 *
 * Build: gcc -std=c11 -O2 -D_GNU_SOURCE -Isrc -pthread bench/csv_bench.c src/ingest/csv.c \
 *            src/util/err.c -lz -o /tmp/csv_bench
 * Run:   nice /tmp/csv_bench data/mimic-iv-demo/hosp/labevents.csv.gz /tmp/labevents.csv */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

#include "ingest/csv.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Uncompressed size, via zlib's gz reader (which also passes plain files through). */
static uint64_t plain_size(const char *path) {
    gzFile g = gzopen(path, "rb");
    if (!g) return 0;
    static char buf[1 << 16];
    uint64_t n = 0;
    int k;
    while ((k = gzread(g, buf, sizeof buf)) > 0) n += (uint64_t)k;
    gzclose(g);
    return n;
}

/* One full pass; returns seconds or a negative value on error. Touches every field's first
 * byte so the work cannot be skipped. */
static double one_pass(const char *path, uint64_t *records, uint64_t *fields, unsigned *sink) {
    cf_err err = {0};
    csv_reader *r;
    double t0 = now();
    if (csv_open(&r, path, &err) != CF_OK) {
        cf_err_print(&err);
        return -1;
    }
    csv_record rec;
    int st;
    uint64_t n = 0, nf = 0;
    while ((st = csv_next(r, &rec, &err)) == 1) {
        n++;
        nf += rec.nfields;
        for (size_t i = 0; i < rec.nfields; i++) *sink += (unsigned char)rec.fields[i][0];
    }
    csv_close(r);
    double t = now() - t0;
    if (st < 0) {
        cf_err_print(&err);
        return -1;
    }
    *records = n;
    *fields = nf;
    return t;
}

static void pandas(const char *path, double mb) {
    char cmd[8192];
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 -c 'import sys,time\n"
             "t0=time.perf_counter()\n"
             "import pandas\n"
             "t1=time.perf_counter()\n"
             "df=pandas.read_csv(sys.argv[1], low_memory=False)\n"
             "t2=time.perf_counter()\n"
             "print(t2-t1, t2-t0, len(df))' '%s'",
             path);
    double t0 = now();
    FILE *f = popen(cmd, "r");
    if (!f) return;
    double read_s = 0, py_s = 0;
    unsigned long long rows = 0;
    int got = fscanf(f, "%lf %lf %llu", &read_s, &py_s, &rows);
    int rc = pclose(f);
    double wall = now() - t0;
    if (got != 3 || rc != 0) {
        printf("  pandas: failed\n");
        return;
    }
    printf("  pandas.read_csv: %llu rows, %.3f s (%.0f MB/s); python process incl. import: %.3f s\n",
           rows, read_s, mb / read_s, wall);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: csv_bench FILE...\n");
        return 1;
    }
    int reps = getenv("CSV_BENCH_REPS") ? atoi(getenv("CSV_BENCH_REPS")) : 5;
    unsigned sink = 0;
    for (int a = 1; a < argc; a++) {
        uint64_t size = plain_size(argv[a]);
        double mb = (double)size / 1e6, best = 1e30;
        uint64_t n = 0, nf = 0;
        for (int k = 0; k < reps; k++) {
            double t = one_pass(argv[a], &n, &nf, &sink);
            if (t < 0) return 1;
            if (t < best) best = t;
        }
        printf("%s: %.1f MB uncompressed, %llu records, %llu fields\n", argv[a], mb,
               (unsigned long long)n, (unsigned long long)nf);
        printf("  csv reader: best of %d %.4f s = %.0f MB/s\n", reps, best, mb / best);
        if (!getenv("CSV_BENCH_NO_PANDAS")) pandas(argv[a], mb);
    }
    return sink == 12345 ? 2 : 0; /* keeps sink alive */
}
