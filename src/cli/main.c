/* clinfm: build, own and run a hospital's clinical foundation model.
 * The entry point: dispatches `clinfm <command> [options]` to the command's run function. */
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "util/atomic_file.h"

static const cf_command commands[] = {
    {"ingest", "read source tables (mapped CSV) into an event store", cmd_ingest},
    {"inspect", "summarise a store, or show one subject's timeline", cmd_inspect},
    {"export", "write a store as MEDS-schema CSV", cmd_export},
    {"keygen", "make a secret de-identification key", cmd_keygen},
    {"deid", "write a de-identified copy of a store (Safe Harbor, notes, k-anonymity)", cmd_deid},
    {"deid-eval", "measure the text de-identifier on an annotated corpus", cmd_deid_eval},
    {"deid-text", "de-identify a text file; --explain says why each span was taken", cmd_deid_text},
    {"deid-train", "fit the text de-identifier's model on annotated and generated notes", cmd_deid_train},
    {"deid-notes", "write generated clinical notes with annotated PHI (a corpus for deid-eval)", cmd_deid_notes},
    {"vocab", "fit the timeline vocabulary on the train split; token shards, baselines", cmd_vocab},
    {"tokens", "show one subject's timeline as model tokens", cmd_tokens},
    {"train", "train the model on a store's timelines (resumable)", cmd_train},
    {"label", "label a task's prediction times (MEDS label CSV)", cmd_label},
    {"eval", "evaluate baselines and predictors on a task: metrics, report, model card", cmd_eval},
    {"pool", "pool the folds of a cross-validation: one table with intervals, references, stacks", cmd_pool},
    {"serve", "run the CDS Hooks / REST service (auth, audit, metrics)", cmd_serve},
    {"token", "create, revoke or list the service's API keys", cmd_token},
    {"audit", "make the service secret; verify the audit trail's hash chain", cmd_audit},
    {"feedback", "export clinicians' feedback on cards", cmd_feedback},
    {"synth", "make a synthetic population with known ground truth (FHIR)", cmd_synth},
    {"demo", "the whole path, from no data to a clinician's card", cmd_demo},
};
#define N_COMMANDS (sizeof commands / sizeof commands[0])

static void usage(FILE *out) {
    fprintf(out,
            "usage: clinfm <command> [options]\n"
            "       clinfm <command> --help\n\n"
            "clinfm builds an institution's own clinical foundation model from its records.\n\n"
            "commands:\n");
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(out,
            "\nexit status: 0 ok, 1 bad input or usage, 2 internal error.\n"
            "Progress lines appear on a terminal only (set CLINFM_NO_PROGRESS=1 to silence).\n");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 1;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        if (argc > 2 && strcmp(argv[1], "help") == 0) {
            for (size_t i = 0; i < N_COMMANDS; i++)
                if (!strcmp(argv[2], commands[i].name)) {
                    char *args[] = {argv[2], "--help", NULL};
                    return commands[i].run(2, args);
                }
        }
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("clinfm %s\n", CLINFM_VERSION);
        return 0;
    }
    atomic_install_signal_cleanup();
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "clinfm: '%s' is not a command; see 'clinfm --help'\n", argv[1]);
    return 1;
}
