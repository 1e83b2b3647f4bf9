/* Fuzz target: arbitrary bytes through the annotated-corpus readers of `clinfm deid-eval`
 * (src/deid/eval.h). The first byte picks the layout: presidio JSON, clinfm's inline phrase
 * layout, or a PhysioNet pair (text and annotation file, split at the first NUL byte). A load
 * must either fail cleanly or give gold spans inside their record's text; re-casing must keep
 * the lengths. The files go to a private temporary folder made once per process. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "deid/deid_eval.h"

static char dir[64];

static int write_file(const char *path, const uint8_t *p, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    int ok = fwrite(p, 1, n, f) == n;
    return (fclose(f) == 0 && ok) ? 0 : -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "/tmp/clinfm-fuzz-corpus-XXXXXX");
        if (!mkdtemp(dir)) abort();
    }
    if (size < 1) return 0;
    uint8_t mode = data[0] % 3;
    const uint8_t *p = data + 1;
    size_t n = size - 1;
    char a[128], b[128];
    deid_corpus c;
    cf_err err = {0};
    int rc;
    if (mode == 0) {
        snprintf(a, sizeof a, "%s/corpus.json", dir);
        if (write_file(a, p, n)) abort();
        rc = deid_corpus_load(a, "presidio", &c, &err);
    } else if (mode == 1) {
        snprintf(a, sizeof a, "%s/corpus.txt", dir);
        if (write_file(a, p, n)) abort();
        rc = deid_corpus_load(a, "phrase", &c, &err);
    } else {
        const uint8_t *z = memchr(p, 0, n);
        size_t tl = z ? (size_t)(z - p) : n;
        snprintf(a, sizeof a, "%s/id.text", dir);
        snprintf(b, sizeof b, "%s/id-phi.phrase", dir);
        if (write_file(a, p, tl) || write_file(b, z ? z + 1 : p, z ? n - tl - 1 : 0)) abort();
        rc = deid_corpus_load_files(NULL, "phrase", a, b, &c, &err);
    }
    if (rc != CF_OK) return 0;
    for (size_t i = 0; i < c.n_docs; i++) {
        const deid_doc *d = &c.docs[i];
        for (size_t g = 0; g < d->n_gold; g++)
            if (d->gold[g].start > d->gold[g].end || d->gold[g].end > d->len) abort();
    }
    size_t before = 0, after = 0;
    for (size_t i = 0; i < c.n_docs; i++) before += c.docs[i].len;
    deid_corpus_recase(&c, (data[0] & 4) ? DEID_CASE_UPPER : DEID_CASE_LOWER);
    for (size_t i = 0; i < c.n_docs; i++) after += c.docs[i].len;
    if (before != after) abort();
    deid_corpus_free(&c);
    return 0;
}
