/* The commands' option parser: argv read against a command's table (see opts.h). */
#include "cli/opts.h"

#include <assert.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"

const cli_choice cli_room_check_choices[] = {{"on", 1}, {"off", 0}, {NULL, 0}};

#define CLI_MAX_OPTS 64
#define HELP_VAL 'h'
#define FIRST_VAL 256 /* getopt_long's val for row i is FIRST_VAL + i: above every short option */

static int n_opts(const cli_opt *opts) {
    int n = 0;
    while (opts[n].type != CLI_END) n++;
    return n;
}

/* "a, b or c" from a choice table, for messages and nothing else. */
static void choice_list(const cli_choice *c, char *buf, size_t cap) {
    size_t len = 0;
    buf[0] = 0;
    for (int i = 0; c[i].name; i++) {
        const char *sep = i == 0 ? "" : c[i + 1].name ? ", " : " or ";
        int w = snprintf(buf + len, cap - len, "%s%s", sep, c[i].name);
        if (w < 0 || (size_t)w >= cap - len) break;
        len += (size_t)w;
    }
}

static int range_error(const char *cmd, const char *name, unsigned long long lo, unsigned long long hi) {
    if (hi == CLI_ANY) return cli_usage_error(cmd, "--%s must be %llu or more", name, lo);
    return cli_usage_error(cmd, "--%s must be %llu to %llu", name, lo, hi);
}

/* Stores one option's value; returns 0, or 1 after printing why the value is not taken. */
static int take(const char *cmd, const cli_opt *o, const char *v) {
    char opt[96];
    snprintf(opt, sizeof opt, "--%s", o->name);
    switch (o->type) {
    case CLI_FLAG: *(int *)o->dst = o->set; return 0;
    case CLI_STR: *(const char **)o->dst = v; return 0;
    case CLI_U64:
    case CLI_U32: {
        unsigned long long u;
        if (cli_parse_u64(cmd, opt, v, &u)) return 1;
        unsigned long long cap = o->type == CLI_U64 ? UINT64_MAX : UINT32_MAX;
        unsigned long long hi = o->hi < cap ? o->hi : cap;
        if (u < o->lo || u > hi) return range_error(cmd, o->name, o->lo, o->hi < cap ? o->hi : CLI_ANY);
        if (o->type == CLI_U64) *(unsigned long long *)o->dst = u;
        else *(uint32_t *)o->dst = (uint32_t)u;
        return 0;
    }
    case CLI_INT: {
        char *end;
        errno = 0;
        long long i = strtoll(v, &end, 10);
        assert(o->dlo >= INT_MIN && o->dhi <= INT_MAX);
        if (!*v || *end || errno) return cli_usage_error(cmd, "%s expects a whole number", opt);
        if ((double)i < o->dlo || (double)i > o->dhi)
            return cli_usage_error(cmd, "%s must be %.0f to %.0f", opt, o->dlo, o->dhi);
        *(int *)o->dst = (int)i;
        return 0;
    }
    case CLI_DOUBLE: {
        char *end;
        errno = 0;
        double d = strtod(v, &end);
        if (!*v || *end || errno || !isfinite(d)) return cli_usage_error(cmd, "%s expects a number", opt);
        if (d < o->dlo || d > o->dhi) return cli_usage_error(cmd, "%s must be %g to %g", opt, o->dlo, o->dhi);
        *(double *)o->dst = d;
        return 0;
    }
    case CLI_FLOAT: {
        char *end;
        float f = strtof(v, &end); /* an underflow to 0 or a subnormal is taken as the number it is */
        if (!*v || *end || !isfinite(f)) return cli_usage_error(cmd, "%s expects a number", opt);
        if (f < o->dlo || f > o->dhi) {
            if (isinf(o->dhi)) return cli_usage_error(cmd, "%s must be %g or more", opt, o->dlo);
            return cli_usage_error(cmd, "%s must be %g to %g", opt, o->dlo, o->dhi);
        }
        *(float *)o->dst = f;
        return 0;
    }
    case CLI_CHOICE: {
        for (int i = 0; o->choices[i].name; i++)
            if (!strcmp(v, o->choices[i].name)) {
                *(int *)o->dst = o->choices[i].value;
                return 0;
            }
        char list[512];
        choice_list(o->choices, list, sizeof list);
        return cli_usage_error(cmd, "%s must be %s", opt, list);
    }
    case CLI_LIST: {
        cli_list *l = o->dst;
        if (l->n == CLI_LIST_MAX) return cli_usage_error(cmd, "at most %d %s options", CLI_LIST_MAX, opt);
        l->v[l->n++] = (char *)v; /* argv's strings are the caller's to change */
        return 0;
    }
    case CLI_FN: return o->fn(cmd, v, o->dst);
    case CLI_END: break;
    }
    assert(!"an option row of no known type");
    return 1;
}

/* cli_parse's work: 0 to go on, -1 after --help, 1 after a usage error. */
static int parse(const cli_spec *spec, int argc, char **argv, int *first_arg) {
    const cli_opt *opts = spec->opts;
    int n = n_opts(opts);
    assert(n <= CLI_MAX_OPTS);
    struct option lo[CLI_MAX_OPTS + 2];
    unsigned char seen[CLI_MAX_OPTS] = {0};
    for (int i = 0; i < n; i++)
        lo[i] = (struct option){opts[i].name, opts[i].type == CLI_FLAG ? no_argument : required_argument, 0,
                                FIRST_VAL + i};
    lo[n] = (struct option){"help", no_argument, 0, HELP_VAL};
    lo[n + 1] = (struct option){0, 0, 0, 0};
    optind = 1;
    opterr = 0; /* the messages are ours */
    int c;
    /* ':' first: a missing value is told apart from an unknown option. */
    while ((c = getopt_long(argc, argv, ":h", lo, NULL)) != -1) {
        if (c == HELP_VAL) {
            cli_help(spec);
            return -1;
        }
        if (c == ':') return cli_usage_error(spec->cmd, "%s needs a value", argv[optind - 1]);
        if (c == '?') {
            if (optopt >= FIRST_VAL) return cli_usage_error(spec->cmd, "%s takes no value", argv[optind - 1]);
            if (optopt) return cli_usage_error(spec->cmd, "unknown option '-%c'", optopt);
            return cli_usage_error(spec->cmd, "unknown option '%s'", argv[optind - 1]);
        }
        int i = c - FIRST_VAL;
        assert(i >= 0 && i < n);
        if (take(spec->cmd, &opts[i], optarg)) return 1;
        seen[i] = 1;
    }
    int n_args = argc - optind;
    if (!spec->args) {
        if (n_args > 0) return cli_usage_error(spec->cmd, "unexpected argument '%s'", argv[optind]);
    } else if (n_args < spec->min_args || n_args > spec->max_args) {
        if (spec->min_args == spec->max_args && spec->min_args == 1)
            return cli_usage_error(spec->cmd, "expected exactly one %s argument", spec->args);
        if (n_args > spec->max_args)
            return cli_usage_error(spec->cmd, "unexpected argument '%s'", argv[optind + spec->max_args]);
        return cli_usage_error(spec->cmd, "expected %s", spec->args);
    }
    /* A required option is met by any row that shares its destination (an old spelling). */
    for (int i = 0; i < n; i++) {
        if (!opts[i].required) continue;
        int met = 0;
        for (int j = 0; j < n && !met; j++) met = seen[j] && opts[j].dst == opts[i].dst;
        if (!met) {
            if (opts[i].meta) return cli_usage_error(spec->cmd, "--%s %s is required", opts[i].name, opts[i].meta);
            return cli_usage_error(spec->cmd, "--%s is required", opts[i].name);
        }
    }
    if (spec->given) memcpy(spec->given, seen, (size_t)n);
    if (first_arg) *first_arg = optind;
    return 0;
}

int cli_parse(const cli_spec *spec, int argc, char **argv, int *first_arg, int *exit_status) {
    int rc = parse(spec, argc, argv, first_arg);
    *exit_status = rc < 0 ? 0 : rc;
    return rc == 0;
}

int cli_given(const cli_spec *spec, const char *prefix) {
    assert(spec->given);
    size_t len = strlen(prefix);
    for (int i = 0; i < n_opts(spec->opts); i++)
        if (spec->given[i] && !strncmp(spec->opts[i].name, prefix, len)) return 1;
    return 0;
}

/* "  --name META" as the help shows it; returns its width. */
static int opt_head(const cli_opt *o, char *buf, size_t cap) {
    int w = o->meta ? snprintf(buf, cap, "  --%s %s", o->name, o->meta) : snprintf(buf, cap, "  --%s", o->name);
    return w < 0 ? 0 : w;
}

void cli_help(const cli_spec *spec) {
    const cli_opt *opts = spec->opts;
    int n = n_opts(opts), col = 14;
    char head[160];
    for (int i = 0; i < n; i++)
        if (opts[i].help) {
            int w = opt_head(&opts[i], head, sizeof head);
            if (w + 2 > col && w + 2 <= 28) col = w + 2;
        }
    printf("usage: clinfm %s\n", spec->usage);
    if (spec->about) printf("\n%s", spec->about);
    printf("\noptions:\n");
    for (int i = 0; i < n; i++) {
        if (!opts[i].help) continue;
        int w = opt_head(&opts[i], head, sizeof head);
        fputs(head, stdout);
        /* A head wider than the column puts the help on the next line. */
        if (w + 1 > col) printf("\n%*s", col, "");
        else printf("%*s", col - w, "");
        for (const char *p = opts[i].help; *p;) {
            const char *nl = strchr(p, '\n');
            size_t len = nl ? (size_t)(nl - p) : strlen(p);
            printf("%.*s\n", (int)len, p);
            if (!nl) break;
            p = nl + 1;
            if (*p) printf("%*s", col, "");
        }
    }
    printf("  -h, --help%*sthis help\n", col - 12 > 1 ? col - 12 : 1, "");
    if (spec->after) printf("%s", spec->after);
    fputs(spec->status ? spec->status : "exit status: 0 ok, 1 bad input or usage, 2 internal error.\n", stdout);
}
