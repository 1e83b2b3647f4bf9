/* Fuzz target: arbitrary bytes as a de-identification model file (src/deid/model.c). The loader
 * must either refuse the file with an error naming its line or load a model that scores a short
 * note without crashing; a loaded model is saved and loaded again and must keep its threshold and its one-case flag. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "deid/model_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[64], path2[72];
    snprintf(path, sizeof path, "/tmp/fuzz-deid-model-%d.tsv", (int)getpid());
    snprintf(path2, sizeof path2, "%s.out", path);
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    fwrite(data, 1, size, f);
    fclose(f);
    cf_err err = {0};
    deid_model *m = NULL;
    int rc = deid_model_load(&m, path, &err);
    if (rc == CF_OK && m) {
        if (!(m->threshold > 0 && m->threshold <= 1)) abort();
        /* score a chain with the loaded transitions: marginals must be probabilities */
        float E[3 * DEID_NL] = {0}, P[3 * DEID_NL], work[4 * 3 * DEID_NL + 1];
        deid__crf_marginals(E, 3, m->trans, P, work);
        if (deid_model_save(m, path2, 0.0f, &err) == CF_OK) {
            deid_model *b = NULL;
            if (deid_model_load(&b, path2, &err) != CF_OK || !b) abort();
            if (b->threshold < m->threshold - 1e-3f || b->threshold > m->threshold + 1e-3f) abort();
            if (b->one_case_context != m->one_case_context) abort();
            deid_model_free(b);
        }
        deid_model_free(m);
    } else if (rc != CF_OK && !strstr(err.msg, path)) {
        abort(); /* errors name the file */
    }
    remove(path);
    remove(path2);
    return 0;
}
