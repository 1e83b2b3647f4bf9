/* Fuzz target for the disease-module reader (synth_module_parse, then cross-module resolution
 * with a shipped-like companion module). Whatever parses must be self-consistent: counts within
 * their arrays, every error message names the file and a line, strings NUL-terminated within
 * their fields, and resolution either succeeds with every effect pointing at a real module or
 * fails with a message naming the file. Any disagreement aborts. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "synth/module.h"

static const char companion[] =
    "[module]\nname = hypertension\nkind = chronic\n[condition]\nsnomed = 59621000 | Essential hypertension\n"
    "icd10 = I10 | Essential hypertension\n[marker]\nname = sbp\nloinc = 8480-6 | Systolic blood pressure\n"
    "unit = mm[Hg]\nmean = 120\n[diagnosis]\nthreshold = 140\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > (1u << 16)) return 0;
    synth_modules *ms = calloc(1, sizeof *ms);
    if (!ms) return 0;
    cf_err err = {0};
    if (synth_module_parse(&ms->m[0], "fuzz.module", (const char *)data, size, &err) != CF_OK) {
        if (strncmp(err.msg, "fuzz.module:", 12) != 0) abort();
        free(ms);
        return 0;
    }
    const synth_module *m = &ms->m[0];
    if (m->n_effects > SYNTH_MAX_EFFECTS || m->n_hazard > SYNTH_MAX_EFFECTS || m->n_stages > SYNTH_MAX_STAGES ||
        m->n_drugs > SYNTH_MAX_DRUGS || m->n_labs > SYNTH_MAX_LABS)
        abort();
    if (!memchr(m->name, 0, sizeof m->name) || !memchr(m->title, 0, sizeof m->title) || !m->name[0]) abort();
    if (synth_module_parse(&ms->m[1], "companion.module", companion, sizeof companion - 1, &err) != CF_OK) abort();
    ms->n = strcmp(m->name, "hypertension") ? 2 : 1;
    if (synth_modules_resolve(ms, &err) == CF_OK) {
        for (size_t i = 0; i < ms->n; i++) {
            for (size_t e = 0; e < ms->m[i].n_effects; e++)
                if (ms->m[i].effects[e].cov >= SYN_COV_MARKER && (ms->m[i].effects[e].module < 0 || ms->m[i].effects[e].module >= (int)ms->n))
                    abort();
            for (size_t e = 0; e < ms->m[i].n_hazard; e++)
                if (ms->m[i].hazard[e].cov >= SYN_COV_MARKER && (ms->m[i].hazard[e].module < 0 || ms->m[i].hazard[e].module >= (int)ms->n))
                    abort();
        }
    } else if (!strstr(err.msg, ".module")) {
        abort();
    }
    free(ms);
    return 0;
}
