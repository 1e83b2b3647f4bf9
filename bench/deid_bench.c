/* Text de-identification throughput on the Synthea bulk notes.
 *
 * Reads DocumentReference NDJSON (FHIR Bulk Data), decodes every content[].attachment.data
 * (base64 note text), then times deid_find + deid_redact over all notes, on one thread, for a
 * number of rounds, and prints MB/s (of note text) per core. Built and run by bench/deid_bench.sh.
 *
 *   deid_bench RULES_DIR DOCUMENTREFERENCE.ndjson [ROUNDS] */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "deid/text.h"
#include "util/progress.h"

static int b64val(int c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+' || c == '-') return 62;
    if (c == '/' || c == '_') return 63;
    return -1;
}

static char *b64decode(const char *s, size_t *out_len) {
    size_t n = strlen(s);
    char *out = malloc(n / 4 * 3 + 4);
    if (!out) return NULL;
    size_t o = 0;
    unsigned acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64val((unsigned char)s[i]);
        if (v < 0) continue; /* padding, newlines */
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (char)((acc >> bits) & 0xFF);
        }
    }
    out[o] = 0;
    *out_len = o;
    return out;
}

/* CPU time of this thread: the per-core figure, unaffected by other processes waiting for the
 * same cores (wall time is printed too). */
static double cpu_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: deid_bench RULES_DIR DocumentReference.ndjson [ROUNDS]\n");
        return 1;
    }
    int rounds = argc > 3 ? atoi(argv[3]) : 3;
    if (rounds < 1) rounds = 1;
    FILE *f = fopen(argv[2], "rb");
    if (!f) {
        fprintf(stderr, "deid_bench: cannot open %s\n", argv[2]);
        return 1;
    }
    char **notes = NULL;
    size_t *lens = NULL, n = 0, cap = 0, total = 0;
    char *line = NULL;
    size_t lcap = 0;
    ssize_t ll;
    while ((ll = getline(&line, &lcap, f)) > 0) {
        cJSON *doc = cJSON_ParseWithLength(line, (size_t)ll);
        cJSON *content = cJSON_GetObjectItemCaseSensitive(doc, "content");
        cJSON *it;
        cJSON_ArrayForEach(it, content) {
            cJSON *att = cJSON_GetObjectItemCaseSensitive(it, "attachment");
            cJSON *data = cJSON_GetObjectItemCaseSensitive(att, "data");
            if (!cJSON_IsString(data)) continue;
            if (n == cap) {
                cap = cap ? cap * 2 : 256;
                notes = realloc(notes, cap * sizeof *notes);
                lens = realloc(lens, cap * sizeof *lens);
                if (!notes || !lens) return 2;
            }
            notes[n] = b64decode(data->valuestring, &lens[n]);
            if (!notes[n]) return 2;
            total += lens[n];
            n++;
        }
        cJSON_Delete(doc);
    }
    free(line);
    fclose(f);
    cf_err err = {0};
    deid_text_rules *r;
    double t0 = now_seconds();
    if (deid_rules_load(&r, argv[1], &err)) {
        fprintf(stderr, "deid_bench: %s\n", err.msg);
        return 1;
    }
    double load_s = now_seconds() - t0;
    deid_redact_opts opts;
    memset(&opts, 0, sizeof opts);
    opts.mode = DEID_MODE_TAG;
    opts.shift_dates = 1;
    opts.shift_days = -17;
    uint64_t counts[DEID_N_TYPES] = {0};
    double best = 1e30, best_wall = 1e30;
    for (int k = 0; k < rounds; k++) {
        double s = cpu_seconds(), sw = now_seconds();
        for (size_t i = 0; i < n; i++) {
            char *out;
            size_t ol;
            if (deid_text(r, notes[i], lens[i], NULL, &opts, &out, &ol, k == 0 ? counts : NULL, &err)) {
                fprintf(stderr, "deid_bench: note %zu: %s\n", i, err.msg);
                return 2;
            }
            free(out);
        }
        double e = cpu_seconds() - s, ew = now_seconds() - sw;
        if (e < best) best = e;
        if (ew < best_wall) best_wall = ew;
    }
    printf("notes: %zu, %.2f MB of text; rules loaded in %.3f s\n", n, (double)total / 1e6, load_s);
    printf("best of %d rounds: %.3f s of CPU = %.2f MB/s per core (find + redact, tag mode, dates shifted); "
           "wall %.3f s = %.2f MB/s\n",
           rounds, best, (double)total / 1e6 / best, best_wall, (double)total / 1e6 / best_wall);
    printf("replaced:");
    for (int t = 0; t < DEID_N_TYPES; t++)
        if (counts[t]) printf(" %s=%llu", deid_type_name(t), (unsigned long long)counts[t]);
    printf("\n");
    for (size_t i = 0; i < n; i++) free(notes[i]);
    free(notes);
    free(lens);
    deid_rules_free(r);
    return 0;
}
