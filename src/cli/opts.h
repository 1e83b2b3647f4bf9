/* One option parser for every clinfm command. A command describes its options once, in a table
 * (name, type, where the value goes, range or choices, help line), and cli_parse reads argv
 * against that table: it stores typed values, checks ranges and choices, prints --help made from
 * the same table, and rejects what the table does not allow with one message naming the option
 * and what was expected ("clinfm deid: --k must be 2 to 1000000; see 'clinfm deid --help'").
 * So a command's help, its checks and its error messages cannot drift apart, and no command
 * writes a getopt loop of its own.
 *
 * Parsing is getopt_long's: "--name value" or "--name=value", unique prefixes of long names,
 * options and arguments in any order, "--" ends the options. An option given twice keeps its last
 * value. */
#ifndef CLINFM_CLI_OPTS_H
#define CLINFM_CLI_OPTS_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    CLI_END = 0, /* ends a table */
    CLI_FLAG,    /* no value: stores .set into an int */
    CLI_STR,     /* the value as given (a pointer into argv) */
    CLI_U64,     /* unsigned long long in [lo, hi] */
    CLI_U32,     /* uint32_t in [lo, hi] */
    CLI_INT,     /* int in [dlo, dhi] (may be negative) */
    CLI_DOUBLE,  /* double in [dlo, dhi] */
    CLI_FLOAT,   /* float in [dlo, dhi], read by strtof (no double rounding); dhi INFINITY: no upper end */
    CLI_CHOICE,  /* one of .choices' names: stores that choice's value into an int */
    CLI_LIST,    /* repeatable: appends the value to a cli_list */
    CLI_FN,      /* .fn(cmd, value, dst) decides: returns 0, or 1 after printing why */
} cli_type;

typedef struct {
    const char *name;
    int value;
} cli_choice; /* a table of these ends with {NULL, 0} */

#define CLI_LIST_MAX 64
typedef struct {
    char *v[CLI_LIST_MAX]; /* pointers into argv, in the order given */
    size_t n;
} cli_list;

typedef struct {
    const char *name; /* the long name without "--" */
    cli_type type;
    void *dst;        /* where the value goes; its type follows .type (the macros check it) */
    const char *meta; /* the value's name in --help ("FILE"); NULL for flags */
    const char *help; /* lines separated by '\n'; NULL hides the option (an old spelling) */
    int required;     /* cli_parse fails when the option is missing */
    int set;          /* CLI_FLAG: the value stored */
    unsigned long long lo, hi; /* integer range, inclusive */
    double dlo, dhi;           /* CLI_INT and CLI_DOUBLE range, inclusive */
    const cli_choice *choices;
    int (*fn)(const char *cmd, const char *value, void *dst);
} cli_opt;

/* Table rows. Each checks at compile time that dst points to the type the option stores. */
#define CLI_OPT_FLAG(name, dst, help) {name, CLI_FLAG, (1 ? (dst) : (int *)0), NULL, help, 0, 1, 0, 0, 0, 0, 0, 0}
#define CLI_OPT_SET(name, dst, value, help) \
    {name, CLI_FLAG, (1 ? (dst) : (int *)0), NULL, help, 0, value, 0, 0, 0, 0, 0, 0}
#define CLI_OPT_STR(name, dst, meta, help) \
    {name, CLI_STR, (1 ? (dst) : (const char **)0), meta, help, 0, 0, 0, 0, 0, 0, 0, 0}
#define CLI_OPT_STR_REQ(name, dst, meta, help) \
    {name, CLI_STR, (1 ? (dst) : (const char **)0), meta, help, 1, 0, 0, 0, 0, 0, 0, 0}
#define CLI_OPT_U64(name, dst, meta, lo, hi, help) \
    {name, CLI_U64, (1 ? (dst) : (unsigned long long *)0), meta, help, 0, 0, lo, hi, 0, 0, 0, 0}
#define CLI_OPT_U32(name, dst, meta, lo, hi, help) \
    {name, CLI_U32, (1 ? (dst) : (uint32_t *)0), meta, help, 0, 0, lo, hi, 0, 0, 0, 0}
#define CLI_OPT_INT(name, dst, meta, lo, hi, help) \
    {name, CLI_INT, (1 ? (dst) : (int *)0), meta, help, 0, 0, 0, 0, lo, hi, 0, 0}
#define CLI_OPT_DOUBLE(name, dst, meta, lo, hi, help) \
    {name, CLI_DOUBLE, (1 ? (dst) : (double *)0), meta, help, 0, 0, 0, 0, lo, hi, 0, 0}
#define CLI_OPT_FLOAT(name, dst, meta, lo, hi, help) \
    {name, CLI_FLOAT, (1 ? (dst) : (float *)0), meta, help, 0, 0, 0, 0, lo, hi, 0, 0}
#define CLI_OPT_CHOICE(name, dst, meta, choices, help) \
    {name, CLI_CHOICE, (1 ? (dst) : (int *)0), meta, help, 0, 0, 0, 0, 0, 0, choices, 0}
#define CLI_OPT_LIST(name, dst, meta, help) \
    {name, CLI_LIST, (1 ? (dst) : (cli_list *)0), meta, help, 0, 0, 0, 0, 0, 0, 0, 0}
#define CLI_OPT_FN(name, dst, meta, fn, help) {name, CLI_FN, dst, meta, help, 0, 0, 0, 0, 0, 0, 0, fn}
#define CLI_OPT_END {0}

/* `--room-check on|off` of the commands that write a big output (vocab --shards, train's
 * preparation, export): on (1, the default) says the room needed and refuses without it. */
extern const cli_choice cli_room_check_choices[];
#define CLI_OPT_ROOM_CHECK(dst, what)                                                   \
    CLI_OPT_CHOICE("room-check", dst, "on|off", cli_room_check_choices,              \
                   "before writing " what ",\nsay the room needed on its filesystem and\n" \
                   "refuse (exit 1) without it (on, default); off skips it")

#define CLI_ANY UINT64_MAX /* an integer range with no upper end */

typedef struct {
    const char *cmd;        /* "deid": messages say "clinfm deid: ..." */
    const char *usage;      /* the line after "usage: clinfm " */
    const char *about;      /* paragraphs between the usage line and the options, or NULL */
    const cli_opt *opts;    /* ends with CLI_OPT_END */
    const char *after;      /* text after the options (notes, examples), or NULL */
    const char *status;     /* the exit status line when not the usual one, or NULL */
    const char *args;       /* the positional arguments' name ("STORE"); NULL: none allowed */
    int min_args, max_args; /* how many positional arguments (with .args) */
    unsigned char *given;   /* NULL, or room for one flag a row: cli_parse sets those given */
} cli_spec;

/* Reads argv against spec. Returns 1 when the command goes on (*first_arg, when not NULL: argv's
 * index of the first positional argument, argc when there is none), or 0 when the command ends
 * here with *exit_status: 0 after printing --help to stdout, 1 after printing a usage error to
 * stderr. So a command opens with
 *     if (!cli_parse(&spec, argc, argv, &arg, &status)) return status; */
int cli_parse(const cli_spec *spec, int argc, char **argv, int *first_arg, int *exit_status);

/* Was any option whose name starts with prefix given? (needs spec->given) */
int cli_given(const cli_spec *spec, const char *prefix);

/* Prints spec's --help to stdout (cli_parse does it for -h and --help). */
void cli_help(const cli_spec *spec);

#endif
