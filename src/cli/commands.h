/* The clinfm subcommands: the top of the house. Every command lives here in src/cli/ (cmd_<name>.c)
 * and calls the stages' library functions; no stage includes this header or knows the command
 * line. main.c dispatches by name. Every command reads its options through the one option parser
 * (cli/opts.h), prints its --help to stdout, rejects unknown options,
 * and returns an exit status: 0 ok, 1 bad input or usage, 2 internal error. */
#ifndef CLINFM_CLI_COMMANDS_H
#define CLINFM_CLI_COMMANDS_H

#include <stddef.h>

#include "cli/opts.h"
#include "timeline/split.h"

typedef struct {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv);
} cf_command;

int cmd_ingest(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_demo(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_vocab(int argc, char **argv);
int cmd_tokens(int argc, char **argv);
int cmd_keygen(int argc, char **argv);
int cmd_deid(int argc, char **argv);
int cmd_deid_eval(int argc, char **argv);
int cmd_deid_train(int argc, char **argv);
int cmd_deid_notes(int argc, char **argv);
int cmd_deid_text(int argc, char **argv);
int cmd_label(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_pool(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_token(int argc, char **argv);
int cmd_audit(int argc, char **argv);
int cmd_feedback(int argc, char **argv);
int cmd_synth(int argc, char **argv);

/* Prints "clinfm <cmd>: <msg>; see 'clinfm <cmd> --help'" and returns 1. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Parses a non-negative integer option value; returns 0 or prints an error and returns 1. */
int cli_parse_u64(const char *cmd, const char *opt, const char *text, unsigned long long *out);

/* The de-identifier's rules folder: the --rules value when given, else $CLINFM_DEID_RULES when
 * set and not empty, else the shipped data/deid (written into buf). */
const char *cli_deid_rules(const char *given, char *buf, size_t cap);

/* deid-train's and deid-notes' one-line contrast material (rounds 26-28): the SYNTH_GEN_CONTRAST_*
 * bits of --contrast-lines and its refinements (--contrast-names, --contrast-mixed,
 * --contrast-thin) into *bits; a refinement without --contrast-lines is a usage error, whose status
 * is returned (else 0). */
int cli_contrast_bits(const char *cmd, int lines, int names, int mixed, int thin, int *bits);

/* A shipped file named without a path (--task NAME, --mapping NAME): cli_take_named, an option
 * parser hook (opts.h CLI_OPT_FN), resolves the value under folder with ext (util/datadir.h) into
 * buf and points path at it. */
typedef struct {
    const char *folder, *ext;
    const char *path; /* NULL until the option is given */
    char buf[4096];
} cli_named;
int cli_take_named(const char *cmd, const char *value, void *named);

/* The patient split options of every command that splits (vocab, label, eval, train):
 * --split-key FILE, --split T/U/H (also spelled --split-fractions) and --fold J/K, as rows of an
 * option table, and cli_split_apply, which applies those given to a split_config. */
typedef struct {
    const char *key, *fractions, *fold;
} cli_split_args;
#define CLI_OPTS_SPLIT(a)                                                                               \
    CLI_OPT_STR("split-key", &(a)->key, "FILE",                                                          \
                "secret split key (32 bytes or 64 hex digits); default: the\n"                          \
                "public project key (demos only)"),                                                      \
        CLI_OPT_STR("split", &(a)->fractions, "T/U/H",                                                   \
                    "percentages of train/tuning/held_out (default 80/10/10;\n"                         \
                    "--split-fractions is the same option)"),                                            \
        CLI_OPT_STR("split-fractions", &(a)->fractions, "T/U/H", NULL),                                  \
        CLI_OPT_STR("fold", &(a)->fold, "J/K",                                                           \
                    "cross-validation: fold J (0-based) of K is held out, the tuning\n"                 \
                    "share just below it, train the rest (K divides 100; docs/TIMELINE.md)")
int cli_split_apply(const cli_split_args *a, split_config *sp, cf_err *err);

#define CLINFM_VERSION "0.1.0"

#endif
