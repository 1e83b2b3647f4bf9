/* `clinfm deid-notes`: writes generated clinical notes with PHI at known offsets
 * (src/synth/notes.h) as an annotated corpus in a layout deid-eval and deid-train read, so the
 * de-identifier can be measured on notes in the style of ICU nursing notes, with names it lists
 * or with held-apart names it has never listed. */
#include <errno.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "cli/opts.h"
#include "util/datadir.h"
#include "synth/notes.h"
#include "util/atomic_file.h"

static const char *CMD = "deid-notes";

int cmd_deid_notes(int argc, char **argv) {
    int status;
    const char *out = NULL, *format = "presidio", *rules = NULL;
    unsigned long long n = 0, seed = 1;
    int which = SYNTH_NAMES_LISTED, heldout_style = 0, name_lines = 0, contrast_lines = 0, contrast_names = 0;
    int contrast_mixed = 0, contrast_thin = 0;
    static const cli_choice names[] = {{"listed", SYNTH_NAMES_LISTED}, {"heldout", SYNTH_NAMES_HELDOUT}, {NULL, 0}};
    static const cli_choice styles[] = {{"train", 0}, {"heldout", SYNTH_GEN_HELDOUT_STYLE}, {"one-case", SYNTH_GEN_ONE_CASE}, {"message", SYNTH_GEN_MESSAGE_STYLE}, {"shortline", SYNTH_GEN_SHORTLINE_STYLE}, {"lines", SYNTH_GEN_LINES_STYLE}, {NULL, 0}};
    const cli_opt opts[] = {
        CLI_OPT_STR_REQ("out", &out, "PATH",
                        "the corpus file (presidio, phrase) or folder (physionet: id.text and\n"
                        "id-phi.phrase in it)"),
        CLI_OPT_U64("n", &n, "N", 1, 1000000, "number of notes (1 to 1000000)"),
        CLI_OPT_STR("format", &format, "F", "presidio (JSON, default), phrase (clinfm inline) or physionet"),
        CLI_OPT_CHOICE("names", &which, "W", names,
                       "listed: names and places from the de-identifier's lists (default);\n"
                       "heldout: from its heldout/ lists, which it never reads"),
        CLI_OPT_CHOICE("style", &heldout_style, "S", styles,
                       "train: the note kinds deid-train uses (default); heldout: short\n"
                       "event notes and shift summaries, a style deid-train never writes;\n"
                       "one-case: the training kinds, every note in upper or lower case;\n"
                       "message: telephone messages, dispositions, history years and sign-offs\n"
                       "(round 10 stress notes, never used for training);\n"
                       "shortline: nursing notes as short unlabelled lines, mixed case (round 13,\n"
                       "never used for training); lines: run-on nursing notes broken into short\n"
                       "lines, every casing (what deid-train --generate-lines adds)"),
        CLI_OPT_FLAG("name-lines", &name_lines,
                     "with --style train or lines: the nursing notes also hold round 25's lines\n"
                     "(deid-train --name-lines): a given name opening a line with no cue, a\n"
                     "clinician after per/w/ before an instruction, the same shapes with no PHI"),
        CLI_OPT_FLAG("contrast-lines", &contrast_lines,
                     "with --style train: N / 8 one-line contrast notes after the N (round 26,\n"
                     "deid-train --contrast-lines)"),
        CLI_OPT_FLAG("contrast-names", &contrast_names,
                     "with --contrast-lines: round 27's C2 material (deid-train --contrast-names)"),
        CLI_OPT_FLAG("contrast-mixed", &contrast_mixed,
                     "with --contrast-lines: every contrast note in mixed case (round 28 C4,\n"
                     "deid-train --contrast-mixed)"),
        CLI_OPT_FLAG("contrast-thin", &contrast_thin,
                     "with --contrast-lines: N / 16 contrast notes, not N / 8 (round 28 C5,\n"
                     "deid-train --contrast-thin)"),
        CLI_OPT_U64("seed", &seed, "S", 0, CLI_ANY, "(default 1); the same seed gives the same notes"),
        CLI_OPT_STR("rules", &rules, "DIR",
                    "rules folder holding the lists (default $CLINFM_DEID_RULES, else the shipped data/deid)"),
        CLI_OPT_END};
    const cli_spec spec = {
        .cmd = CMD,
        .usage = "deid-notes --out PATH --n N [--format presidio|phrase|physionet]\n"
                 "                         [--names listed|heldout] [--style train|heldout|one-case|message|shortline|lines] [--seed S]\n"
                 "                         [--name-lines] [--contrast-lines [--contrast-names] [--contrast-mixed] [--contrast-thin]]\n"
                 "                         [--rules DIR]",
        .about = "Writes N generated clinical notes (ICU nursing notes, progress notes, discharge summaries,\n"
                 "in mixed, upper and lower case) with every identifier annotated. The notes are fictional.\n",
        .opts = opts};
    if (!cli_parse(&spec, argc, argv, NULL, &status)) return status;
    if (n == 0) return cli_usage_error(CMD, "--n must be 1 to 1000000");
    if (strcmp(format, "presidio") && strcmp(format, "phrase") && strcmp(format, "physionet"))
        return cli_usage_error(CMD, "--format must be presidio, phrase or physionet");
    if (name_lines && heldout_style != 0 && heldout_style != SYNTH_GEN_LINES_STYLE)
        return cli_usage_error(CMD, "--name-lines writes training material: only with --style train or lines");
    if (name_lines) heldout_style |= SYNTH_GEN_NAME_LINES;
    if (contrast_lines && heldout_style & ~SYNTH_GEN_NAME_LINES)
        return cli_usage_error(CMD, "--contrast-lines writes training material: only with --style train");
    int contrast;
    int ustatus = cli_contrast_bits(CMD, contrast_lines, contrast_names, contrast_mixed, contrast_thin, &contrast);
    if (ustatus) return ustatus;
    heldout_style |= contrast;
    char shipped_rules[4096];
    rules = cli_deid_rules(rules, shipped_rules, sizeof shipped_rules);
    cf_err err = {0};
    synth_notes sn;
    int rc = synth_notes_generate_ex(&sn, rules, which, heldout_style, (size_t)n, seed, &err);
    char *buf = NULL, *buf2 = NULL;
    size_t bl = 0, bl2 = 0;
    if (!rc) {
        FILE *f = open_memstream(&buf, &bl), *f2 = NULL;
        if (!f) rc = cf_fail(&err, CF_EINTERNAL, "out of memory");
        else if (!strcmp(format, "presidio")) rc = synth_notes_write_presidio(f, &sn.corpus, &err);
        else if (!strcmp(format, "phrase")) rc = synth_notes_write_phrase(f, &sn.corpus, &err);
        else {
            f2 = open_memstream(&buf2, &bl2);
            if (!f2) rc = cf_fail(&err, CF_EINTERNAL, "out of memory");
            else rc = synth_notes_write_physionet(f, f2, &sn.corpus, &err);
        }
        if (f) fclose(f);
        if (f2) fclose(f2);
    }
    if (!rc) {
        if (!strcmp(format, "physionet")) {
            char p1[4096], p2[4096];
            if (mkdir(out, 0777) && errno != EEXIST) rc = cf_fail_errno(&err, CF_EINPUT, "%s: cannot create folder", out);
            snprintf(p1, sizeof p1, "%s/id.text", out);
            snprintf(p2, sizeof p2, "%s/id-phi.phrase", out);
            if (!rc) rc = atomic_write_file(p1, buf, bl, &err);
            if (!rc) rc = atomic_write_file(p2, buf2, bl2, &err);
        } else {
            rc = atomic_write_file(out, buf, bl, &err);
        }
    }
    if (!rc)
        fprintf(stderr, "deid-notes: %zu notes, %zu annotations written to %s\n", sn.corpus.n_docs, sn.corpus.n_gold, out);
    else cf_err_print(&err);
    free(buf);
    free(buf2);
    synth_notes_free(&sn);
    return rc;
}
