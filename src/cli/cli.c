/* Shared helpers for the subcommands' option parsing; see commands.h. */
#include "cli/commands.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "synth/notes.h"
#include "util/datadir.h"

int cli_usage_error(const char *cmd, const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "clinfm %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "; see 'clinfm %s --help'\n", cmd);
    return 1;
}

int cli_parse_u64(const char *cmd, const char *opt, const char *text, unsigned long long *out) {
    char *end;
    errno = 0;
    if (!text || !*text || *text == '-')
        return cli_usage_error(cmd, "%s expects a non-negative integer", opt);
    unsigned long long v = strtoull(text, &end, 10);
    if (errno || *end) return cli_usage_error(cmd, "%s expects a non-negative integer", opt);
    *out = v;
    return 0;
}

const char *cli_deid_rules(const char *given, char *buf, size_t cap) {
    const char *rules = given ? given : getenv("CLINFM_DEID_RULES");
    if (rules && *rules) return rules;
    cf_share_path("data/deid", buf, cap);
    return buf;
}

int cli_contrast_bits(const char *cmd, int lines, int names, int mixed, int thin, int *bits) {
    const struct {
        int on;
        const char *opt;
        int bit;
    } refine[] = {{names, "--contrast-names", SYNTH_GEN_CONTRAST_NAMES},
                  {mixed, "--contrast-mixed", SYNTH_GEN_CONTRAST_MIXED},
                  {thin, "--contrast-thin", SYNTH_GEN_CONTRAST_THIN}};
    *bits = lines ? SYNTH_GEN_CONTRAST_LINES : 0;
    for (size_t k = 0; k < sizeof refine / sizeof *refine; k++) {
        if (!refine[k].on) continue;
        if (!lines) return cli_usage_error(cmd, "%s changes the material of --contrast-lines: give both", refine[k].opt);
        *bits |= refine[k].bit;
    }
    return 0;
}

int cli_take_named(const char *cmd, const char *value, void *named) {
    cli_named *n = named;
    cf_share_resolve_named(value, n->folder, n->ext, n->buf, sizeof n->buf);
    n->path = n->buf;
    return 0;
}

int cli_split_apply(const cli_split_args *a, split_config *sp, cf_err *err) {
    int rc = CF_OK;
    if (a->key && (rc = split_load_key(sp, a->key, err))) return rc;
    if (a->fractions && (rc = split_parse_fractions(sp, a->fractions, err))) return rc;
    if (a->fold) rc = split_parse_fold(sp, a->fold, err);
    return rc;
}
