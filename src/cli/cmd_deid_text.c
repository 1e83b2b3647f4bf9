/* `clinfm deid-text`: de-identifies one text file (or standard input) and writes the result to
 * standard output or a file; --explain lists each span instead, with its type, the model's
 * probability and the evidence that weighed most (for the people who review the de-identifier;
 * the listing quotes the text, so it is as sensitive as the input). */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "cli/opts.h"
#include "util/datadir.h"
#include "deid/text.h"
#include "util/atomic_file.h"

static const char *CMD = "deid-text";

static int read_all(FILE *f, char **out, size_t *len) {
    size_t cap = 1 << 16, n = 0;
    char *b = malloc(cap);
    if (!b) return -1;
    for (;;) {
        if (n + 4096 > cap) {
            char *nb = realloc(b, cap * 2);
            if (!nb) {
                free(b);
                return -1;
            }
            b = nb;
            cap *= 2;
        }
        size_t got = fread(b + n, 1, cap - n - 1, f);
        n += got;
        if (!got) break;
    }
    if (ferror(f)) {
        free(b);
        return -1;
    }
    b[n] = 0;
    *out = b;
    *len = n;
    return 0;
}

int cmd_deid_text(int argc, char **argv) {
    int status;
    const char *in = NULL, *out = NULL, *rules = NULL;
    int explain = 0, surrogate = 0, shift = INT_MIN; /* INT_MIN: not given (0 is a shift) */
    const cli_opt opts[] = {
        CLI_OPT_STR("in", &in, "FILE", "the text (default: standard input)"),
        CLI_OPT_STR("out", &out, "FILE", "where to write (default: standard output)"),
        CLI_OPT_FLAG("explain", &explain,
                     "list the spans found instead, one a line: start, end, type, the\n"
                     "model's P(PHI) and the features that weighed most, then the text\n"
                     "of the span (the listing holds PHI: keep it as safe as the input);\n"
                     "words the model took that the clinical keep filter kept follow,\n"
                     "typed KEPT:TYPE, with the keep-list entry that kept them"),
        CLI_OPT_FLAG("surrogate", &surrogate,
                     "realistic surrogates instead of tags (key: all zero, so only\n"
                     "consistent; clinfm deid uses the secret key)"),
        CLI_OPT_INT("shift-days", &shift, "N", -36500, 36500, "shift dates by N days (may be negative)"),
        CLI_OPT_STR("rules", &rules, "DIR", "rules folder (default $CLINFM_DEID_RULES, else the shipped data/deid)"),
        CLI_OPT_END};
    const cli_spec spec = {
        .cmd = CMD,
        .usage = "deid-text [--in FILE] [--out FILE] [--explain] [--surrogate]\n"
                 "                        [--shift-days N] [--rules DIR]",
        .about = "De-identifies a note: every identifier found becomes a tag ([NAME], [DATE], ...) or,\n"
                 "with --surrogate, a realistic stand-in; --shift-days moves dates by N days in their\n"
                 "own format (\"March 3rd\" -> \"March 10th\").\n",
        .opts = opts};
    if (!cli_parse(&spec, argc, argv, NULL, &status)) return status;
    int have_shift = shift != INT_MIN;
    if (!have_shift) shift = 0;
    char shipped_rules[4096];
    rules = cli_deid_rules(rules, shipped_rules, sizeof shipped_rules);
    cf_err err = {0};
    char *text = NULL, *res = NULL;
    size_t len = 0, rl = 0;
    FILE *f = in ? fopen(in, "rb") : stdin;
    if (!f) {
        cf_fail_errno(&err, CF_EINPUT, "%s: cannot open", in);
        cf_err_print(&err);
        return 1;
    }
    int rc = read_all(f, &text, &len) ? cf_fail(&err, CF_EINPUT, "%s: read error", in ? in : "standard input") : CF_OK;
    if (in) fclose(f);
    deid_text_rules *r = NULL;
    if (!rc) rc = deid_rules_load(&r, rules, &err);
    if (!rc && explain) {
        deid_explained *ex = NULL;
        size_t n = 0;
        rc = deid_find_explain(r, text, len, NULL, &ex, &n, &err);
        FILE *o = stdout;
        char *mb = NULL;
        size_t ml = 0;
        if (!rc && out) o = open_memstream(&mb, &ml);
        for (size_t k = 0; !rc && o && k < n; k++) {
            fprintf(o, "%zu\t%zu\t%s%s\t%.3f\t%s\t", ex[k].start, ex[k].end, ex[k].kept ? "KEPT:" : "",
                    deid_type_name(ex[k].type), (double)ex[k].prob, ex[k].why);
            for (size_t q = ex[k].start; q < ex[k].end; q++) fputc(text[q] == '\n' || text[q] == '\t' ? ' ' : text[q], o);
            fputc('\n', o);
        }
        if (out && o) {
            fclose(o);
            if (!rc) rc = atomic_write_file(out, mb, ml, &err);
            free(mb);
        }
        free(ex);
    } else if (!rc) {
        deid_redact_opts ro;
        memset(&ro, 0, sizeof ro);
        ro.mode = surrogate ? DEID_MODE_SURROGATE : DEID_MODE_TAG;
        ro.shift_dates = have_shift;
        ro.shift_days = shift;
        rc = deid_text(r, text, len, NULL, &ro, &res, &rl, NULL, &err);
        if (!rc) {
            if (out) rc = atomic_write_file(out, res, rl, &err);
            else fwrite(res, 1, rl, stdout);
        }
    }
    if (rc) cf_err_print(&err);
    free(res);
    free(text);
    deid_rules_free(r);
    return rc;
}
