/* Fuzz target: arbitrary bytes through the free-text de-identifier (find, then redact in tag and
 * surrogate mode with date shifting), with a "known" list cut from the input. Checks that spans
 * are sorted, disjoint and inside the text, and that redaction succeeds on them. The rules are
 * loaded once from $CLINFM_DEID_RULES or data/deid (fuzzers run from the repository root), in
 * LLVMFuzzerInitialize: loading them inside the first input counted the load (seconds under the
 * sanitizers) against that input's timeout. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "deid/text.h"

static deid_text_rules *rules;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    cf_err err = {0};
    const char *dir = getenv("CLINFM_DEID_RULES");
    if (deid_rules_load(&rules, dir && *dir ? dir : "data/deid", &err)) abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2) return 0;
    uint8_t mode = data[0];
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    cf_err err = {0};
    deid_known *k = NULL;
    if ((mode & 1) && deid_known_new(&k, &err) == CF_OK) {
        /* the first few bytes of the text as a known name and as a known phone */
        size_t kl = len < 24 ? len : 24;
        deid_known_add(k, DEID_NAME, text, kl, &err);
        deid_known_add(k, DEID_PHONE, text, kl, &err);
        deid_known_add(k, DEID_ADDRESS, text, kl, &err);
    }
    deid_span *sp = NULL;
    size_t n = 0;
    if (deid_find(rules, text, len, k, &sp, &n, &err) != CF_OK) abort();
    for (size_t i = 0; i < n; i++) {
        if (sp[i].start >= sp[i].end || sp[i].end > len) abort();
        if (i && sp[i].start < sp[i - 1].end) abort();
        if (!deid_type_name(sp[i].type)) abort();
    }
    deid_redact_opts o;
    memset(&o, 0, sizeof o);
    o.mode = (mode & 2) ? DEID_MODE_SURROGATE : DEID_MODE_TAG;
    o.shift_dates = (mode & 4) != 0;
    o.shift_days = (int)(int8_t)mode * 97;
    o.key[0] = mode;
    char *out = NULL;
    size_t ol = 0;
    uint64_t counts[DEID_N_TYPES] = {0};
    if (deid_redact(rules, text, len, sp, n, &o, &out, &ol, counts, &err) != CF_OK) abort();
    if (!out || strlen(out) > ol) abort();
    free(out);
    free(sp);
    deid_known_free(k);
    return 0;
}
