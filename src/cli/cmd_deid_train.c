/* `clinfm deid-train`: fits the text de-identifier's model (data/deid/model.tsv) on annotated
 * notes: corpora in the formats deid-eval reads (a record range of each may be named, so a
 * held-out part stays unseen), optionally every note again in upper and in lower case, and
 * generated clinical notes with PHI at known offsets (src/synth/notes.h). Prints counts, never
 * note text. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "cli/opts.h"
#include "util/datadir.h"
#include "deid/deid_eval.h"
#include "deid/text.h"
#include "deid/train.h"
#include "synth/notes.h"

static const char *CMD = "deid-train";

typedef struct {
    deid_corpus *v;
    size_t n, cap;
} corpora;

static int add_corpus(corpora *cs, deid_corpus *c) {
    deid_corpus *nv = cf_grow(cs->v, &cs->cap, cs->n + 1, sizeof *nv, 8);
    if (!nv) return -1;
    cs->v = nv;
    cs->v[cs->n++] = *c;
    return 0;
}

/* Is s[0..n) a weekday name alone ("Friday", "THURS.", "sun")? A weekday names no date element
 * (45 CFR 164.514(b)(2)(i)(C) lists dates, not days of the week) and the nursing-note gold
 * standard does not annotate it ("repeat echo Friday"), while the presidio set does. Training
 * reads such a gold span as not PHI, so every corpus teaches the same thing. */
static int weekday_only(const char *s, size_t n) {
    static const char *W[] = {"monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday", "mon", "tue",
                              "tues", "wed", "thu", "thur", "thurs", "fri", "sat", "sun"};
    char w[16];
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (ch == ' ' || ch == '.' || ch == ',' || ch == '\n') continue;
        if (ch >= 'A' && ch <= 'Z') ch = (char)(ch + 32);
        if (ch < 'a' || ch > 'z' || k + 1 >= sizeof w) return 0;
        w[k++] = ch;
    }
    if (k > 1 && w[k - 1] == 's' && k > 6) k--; /* "Fridays" */
    w[k] = 0;
    for (size_t i = 0; i < sizeof W / sizeof W[0]; i++)
        if (!strcmp(w, W[i])) return 1;
    return 0;
}

static size_t drop_weekday_gold(deid_corpus *c) {
    size_t n = 0;
    for (size_t d = 0; d < c->n_docs; d++)
        for (size_t k = 0; k < c->docs[d].n_gold; k++) {
            deid_gold *g = &c->docs[d].gold[k];
            if (g->type == DEID_DATE && g->in_scope && weekday_only(c->docs[d].text + g->start, g->end - g->start)) {
                g->in_scope = 0;
                n++;
            }
        }
    return n;
}

/* Loads FORMAT:PATH[@A-B] once per requested casing. */
static int load_spec(const char *spec, int cases, corpora *cs, cf_err *err) {
    const char *colon = strchr(spec, ':');
    if (!colon) return cf_fail(err, CF_EINPUT, "--corpus %s: expected FORMAT:PATH[@A-B]", spec);
    char fmt[16], path[4096];
    size_t fl = (size_t)(colon - spec);
    if (fl >= sizeof fmt) return cf_fail(err, CF_EINPUT, "--corpus: unknown format");
    memcpy(fmt, spec, fl);
    fmt[fl] = 0;
    if (strcmp(fmt, "presidio") && strcmp(fmt, "phrase"))
        return cf_fail(err, CF_EINPUT, "--corpus: the format must be presidio or phrase");
    snprintf(path, sizeof path, "%s", colon + 1);
    char *at = strrchr(path, '@');
    int ranged = 0;
    unsigned long long a = 0, b = 0;
    if (at) {
        char *e1, *e2;
        a = strtoull(at + 1, &e1, 10);
        if (e1 == at + 1 || *e1 != '-') return cf_fail(err, CF_EINPUT, "--corpus %s: expected @A-B after the path", spec);
        b = strtoull(e1 + 1, &e2, 10);
        if (e2 == e1 + 1 || *e2 || b < a) return cf_fail(err, CF_EINPUT, "--corpus %s: expected @A-B with A <= B", spec);
        *at = 0;
        ranged = 1;
    }
    for (int cm = 0; cm < (cases ? 3 : 1); cm++) {
        deid_corpus c;
        memset(&c, 0, sizeof c);
        int rc = deid_corpus_load(path, fmt, &c, err);
        if (!rc && ranged) rc = deid_corpus_select(&c, (size_t)a, (size_t)b, err);
        if (rc) {
            deid_corpus_free(&c);
            return rc;
        }
        deid_corpus_recase(&c, cm == 0 ? DEID_CASE_AS_IS : cm == 1 ? DEID_CASE_UPPER : DEID_CASE_LOWER);
        size_t nw = drop_weekday_gold(&c);
        if (nw && cm == 0) fprintf(stderr, "deid-train: %s: %zu weekday-only date annotations read as not PHI\n", path, nw);
        if (add_corpus(cs, &c)) {
            deid_corpus_free(&c);
            return cf_fail(err, CF_EINTERNAL, "out of memory");
        }
    }
    return CF_OK;
}

int cmd_deid_train(int argc, char **argv) {
    int status;
    const char *out = NULL, *rules = NULL;
    cli_list specs = {.n = 0};
    int cases = 0;
    unsigned long long gen = 0, gen1 = 0, genl = 0, seed = 1, epochs = 8, calib = 0, calib_seed = 0;
    int calib_only = 0, coded = 0, name_lines = 0, contrast_lines = 0, contrast_names = 0;
    int contrast_mixed = 0, contrast_thin = 0;
    double calib_p = 0;
    deid_train_opts to;
    deid_train_opts_default(&to);
    /* The model's thresholds are floats; a float's value survives the trip through double. */
    double thr_given = to.threshold, thr_bare = to.threshold_bare, thr_nopat = to.threshold_nopattern;
    double thr_dense = 0;
    const cli_opt opts[] = {
        CLI_OPT_STR_REQ("out", &out, "FILE", "the model file to write"),
        CLI_OPT_LIST("corpus", &specs, "SPEC",
                     "FORMAT:PATH[@A-B]: an annotated corpus as deid-eval reads it (FORMAT\n"
                     "presidio or phrase), records A to B only (0-based, inclusive) when\n"
                     "given; may be repeated"),
        CLI_OPT_U64("generate", &gen, "N", 0, CLI_ANY,
                    "add N generated clinical notes (nursing, progress, discharge; every\n"
                    "casing) with PHI at known offsets, names from the rules' own lists"),
        CLI_OPT_U64("generate-one-case", &gen1, "N", 0, CLI_ANY,
                    "add N more generated notes, other seeds, all written in one case\n"
                    "(upper and lower alternating): one-case notes carry no capitals, and\n"
                    "their context has to be learned from distinct notes"),
        CLI_OPT_U64("generate-lines", &genl, "N", 0, CLI_ANY,
                    "add N more generated notes, other seeds, written as short lines with no\n"
                    "sentence end (run-on nursing notes broken at their full stops; every\n"
                    "casing): notes the list-note feature weighs as lists that hold PHI"),
        CLI_OPT_FLAG("list-person-gate", &to.list_person_gate,
                     "the list-note features stand aside for a word with a person cue (a\n"
                     "title, kinship word, role) within two words (round 13 candidate)"),
        CLI_OPT_FLAG("coded-prose", &coded,
                     "the generated notes (--generate, --calibrate) also open some progress,\n"
                     "discharge, social, therapy and dictated notes with templated prose of\n"
                     "coded findings (\"part-time employment (finding)\"; round 13 candidate)"),
        CLI_OPT_FLAG("name-lines", &name_lines,
                     "the --generate and --generate-lines nursing notes also hold lines that\n"
                     "open with a given name and no cue before a state or action, a clinician\n"
                     "after \"per\"/\"w/\"/\"d/w\" with the instruction right after, and\n"
                     "lines of those shapes with no PHI (round 25 candidate M1)"),
        CLI_OPT_FLAG("contrast-lines", &contrast_lines,
                     "the --generate notes gain one one-line note for every eight, after them:\n"
                     "words both in a name or place list and in a keep or English list used\n"
                     "among clinical words, and names opening the line beside them (round 26\n"
                     "candidate C)"),
        CLI_OPT_FLAG("contrast-names", &contrast_names,
                     "with --contrast-lines: no word of the given-name list among the traps and a\n"
                     "name opening half the contrast notes (round 27 candidate C2)"),
        CLI_OPT_FLAG("contrast-mixed", &contrast_mixed,
                     "with --contrast-lines: every contrast note in mixed case, none upper- or\n"
                     "lower-cased (round 28 candidate C4)"),
        CLI_OPT_FLAG("contrast-thin", &contrast_thin,
                     "with --contrast-lines: one contrast note for every sixteen --generate\n"
                     "notes, not eight (round 28 candidate C5)"),
        CLI_OPT_FLAG("list-catalogue-test", &to.list_catalogue_test,
                     "with --list-person-gate: a list note none of whose lines reads as\n"
                     "narrative (a kinship word, a pronoun, an auxiliary verb, a charting\n"
                     "verb of keep_name_verbs.txt, a clock time) is a catalogue, and its list\n"
                     "features stay beside a one-word cue (\"patient\", \"II\"), not beside a\n"
                     "title or a cue phrase (\"Dr\", \"ordered by\"; round 15, in the\n"
                     "shipped model since round 16)"),
        CLI_OPT_FLAG("amp-firm-span", &to.amp_firm_span,
                     "capitalised words the rules join into a firm by an ampersand\n"
                     "(\"Johnson & Johnson\") are one organisation span once the model\n"
                     "takes any of them as a name, place or organisation (round 16; in the\n"
                     "shipped model)"),
        CLI_OPT_FLAG("one-case-fields", &to.one_case_fields,
                     "in a note written in one case, a catalogue (no narrative line) of\n"
                     "field-shaped lines is a field list, whose names need the field's own\n"
                     "cue, even when its lines are long or open with common words (round 19\n"
                     "candidate C; a decoding switch, the weights are unchanged)"),
        CLI_OPT_INT("one-case-cue", &to.one_case_cue, "N", 0, 2,
                    "with --one-case-fields: in a one-case catalogue, 1 a title cue (\"dr\",\n"
                    "\"name is\"), 2 every cue before a word (\"pt\", \"per\", \"by\" too) holds\n"
                    "the word after it whatever its case (round 20 candidates C't and C';\n"
                    "a decoding switch, the weights are unchanged; default 0)"),
        CLI_OPT_INT("nursing-shorthand", &to.nursing_shorthand, "N", 0, 4,
                    "nursing shorthand the model took for PHI is dropped: 1 a chain of\n"
                    "numbers joined by '/' after a ventilator word (a_vent cues) or closed by\n"
                    "'%' is no date, a word of one or two letters glued to '+' is no name (an\n"
                    "ion); 2 also a bare host name of numbers and common words ending in a\n"
                    "two-letter label (\"2.Pt\") the model labelled a URL is no URL (round 22\n"
                    "candidates N1, N2); 3 N1 and, on any label, such a host the URL pattern\n"
                    "types, a signed number of under seven digits (\"+900\") and a pain score\n"
                    "\"a/10\" after pain/score/scale; 4 also a listed clinical or common word\n"
                    "labelled a place after at/in/from (round 23 candidates S1, S2; a decoding\n"
                    "switch, the weights are unchanged; default 0)"),
        CLI_OPT_FLAG("field-dates", &to.field_dates,
                     "on a field list's line with its own person evidence (a name the field\n"
                     "cue holds, a credential after a name), a date the model found stays\n"
                     "whatever pattern covers it: a dated signature (round 21 candidate C'';\n"
                     "a decoding switch, the weights are unchanged)"),
        CLI_OPT_FLAG("keep-unnamed", &to.keep_unnamed,
                     "the keep filter keeps a clinical word in no name or place list beside a\n"
                     "credential or suffix after it, or alone on its line (round 19 candidate\n"
                     "A; a decoding switch, the weights are unchanged)"),
        CLI_OPT_FLAG("one-case-context", &to.one_case_context,
                     "also learn the context of words in notes written in one case apart\n"
                     "from mixed-case notes (features conjoined with \"one case\")"),
        CLI_OPT_FLAG("cases", &cases, "add every corpus note again in upper case and in lower case"),
        CLI_OPT_STR("rules", &rules, "DIR",
                    "rules folder (default $CLINFM_DEID_RULES, else the shipped data/deid); its\n"
                    "model.tsv, if any, is not used while training"),
        CLI_OPT_U64("epochs", &epochs, "N", 1, 1000, "passes over the notes (default 8)"),
        CLI_OPT_DOUBLE("threshold", &thr_given, "P", 0, 1,
                       "written into the model: a word is PHI when P(not PHI) < P\n"
                       "(default 0.7; higher finds more; above 0)"),
        CLI_OPT_DOUBLE("threshold-bare", &thr_bare, "P", 0, 1,
                       "the same for a word no pattern, rule detector or known string\n"
                       "marks (default 0.8; 0 = as --threshold)"),
        CLI_OPT_DOUBLE("threshold-nopattern", &thr_nopat, "P", 0, 1,
                       "the same for a word labelled a shaped type (date, phone,\n"
                       "id, ZIP, age...) that no pattern covers (default 0.5; 0 = as --threshold)"),
        CLI_OPT_DOUBLE("threshold-dense", &thr_dense, "P", 0, 1,
                       "written into the model (@threshold_dense): in a note where at least one\n"
                       "word in seven is a clinical keep-list word, a word is PHI when P(not\n"
                       "PHI) < P instead of --threshold's (calibration leaves it as given);\n"
                       "round 30 candidates D75, D70 (a decoding switch; default 0: off)"),
        CLI_OPT_U64("calibrate", &calib, "N", 0, CLI_ANY,
                    "then choose the threshold on N generated notes kept apart from\n"
                    "training (names from the held-apart lists; half in the note kinds\n"
                    "of training, half in the held-apart event-note style; every\n"
                    "casing): of the grid values (0.30 to 0.99), the lowest whose F2 is\n"
                    "within one bootstrap standard error (over notes) of the best F2 is\n"
                    "written into the model"),
        CLI_OPT_DOUBLE("calibrate-precision", &calib_p, "P", 0, 1,
                       "only thresholds whose precision on the calibration notes reaches P\n"
                       "count (default 0: no floor; before round 12, 0.98)"),
        CLI_OPT_U64("calibrate-seed", &calib_seed, "S", 1, CLI_ANY,
                    "the calibration notes' seed (default: --seed's), to see how the\n"
                    "choice moves with the notes"),
        CLI_OPT_FLAG("calibrate-only", &calib_only,
                     "no training: calibrate the model already at --out (with --calibrate N)"),
        CLI_OPT_INT("min-count", &to.min_count, "N", 0, 1000000,
                    "features seen in fewer than N training words get no weight\n"
                    "(default 3)"),
        CLI_OPT_U64("seed", &seed, "S", 0, CLI_ANY, "shuffling and note generation (default 1)"),
        CLI_OPT_FLAG("verbose", &to.verbose, "loss per epoch on stderr"),
        CLI_OPT_END};
    const cli_spec spec = {
        .cmd = CMD,
        .usage = "deid-train --out MODEL [--corpus FORMAT:PATH[@A-B]]... [--generate N]\n"
                 "                         [--generate-one-case N] [--one-case-context] [--generate-lines N]\n"
                 "                         [--list-person-gate] [--coded-prose]\n"
                 "                         [--cases] [--rules DIR] [--epochs N] [--threshold P] [--seed S]\n"
                 "                         [--calibrate N] [--calibrate-precision P] [--calibrate-seed S]\n"
                 "                         [--calibrate-only] [--min-count N]\n"
                 "                         [--threshold-bare P] [--threshold-nopattern P] [--threshold-dense P]",
        .about = "Fits the de-identifier's model (a linear-chain CRF over the evidence of the rules folder)\n"
                 "on annotated notes and writes it as text (put it in the rules folder as model.tsv).\n",
        .opts = opts};
    if (!cli_parse(&spec, argc, argv, NULL, &status)) return status;
    if (thr_given <= 0) return cli_usage_error(CMD, "--threshold expects a number in (0, 1]");
    to.threshold = (float)thr_given;
    to.threshold_bare = (float)thr_bare;
    to.threshold_nopattern = (float)thr_nopat;
    to.threshold_dense = (float)thr_dense;
    if (calib_only && thr_dense > 0)
        return cli_usage_error(CMD, "--calibrate-only trains nothing and keeps the model's @threshold_dense: give no --threshold-dense");
    if (calib_only && !calib) return cli_usage_error(CMD, "--calibrate-only needs --calibrate N");
    int contrast;
    int ustatus = cli_contrast_bits(CMD, contrast_lines, contrast_names, contrast_mixed, contrast_thin, &contrast);
    if (ustatus) return ustatus;
    if (to.one_case_cue && !to.one_case_fields)
        return cli_usage_error(CMD, "--one-case-cue reads the one-case field lists of --one-case-fields: give both");
    if (calib_only && (specs.n || gen || gen1 || genl))
        return cli_usage_error(CMD, "--calibrate-only trains nothing: give no --corpus or --generate");
    if (!calib_only && !specs.n && !gen && !gen1 && !genl) return cli_usage_error(CMD, "give at least one --corpus or --generate N");
    if (!calib_seed) calib_seed = seed;
    to.epochs = (int)epochs;
    to.seed = seed;
    char shipped_rules[4096];
    rules = cli_deid_rules(rules, shipped_rules, sizeof shipped_rules);

    cf_err err = {0};
    deid_text_rules *r = NULL;
    corpora cs = {0};
    /* the generated material, in this order in the training notes: --generate, --generate-one-case,
       --generate-lines; the last two on seeds apart from --generate's (seed * 1000003 + i) and from
       calibration's */
    enum { N_GENERATED = 3 };
    const struct {
        unsigned long long n;
        int style;
        uint64_t seed;
    } gspec[N_GENERATED] = {{gen, (coded ? SYNTH_GEN_CODED : 0) |
                                      (name_lines ? SYNTH_GEN_NAME_LINES : 0) | contrast,
                             seed},
                            {gen1, SYNTH_GEN_ONE_CASE, seed + 5550001},
                            {genl, SYNTH_GEN_LINES_STYLE | (name_lines ? SYNTH_GEN_NAME_LINES : 0),
                             seed + 5550002}};
    synth_notes gens[N_GENERATED];
    memset(gens, 0, sizeof gens);
    const deid_doc **docs = NULL;
    int rc = deid_rules_load(&r, rules, &err);
    for (size_t k = 0; !rc && k < specs.n; k++) rc = load_spec(specs.v[k], cases, &cs, &err);
    size_t n = 0, n_gen = 0;
    for (int g = 0; g < N_GENERATED; g++) {
        if (!rc && gspec[g].n)
            rc = synth_notes_generate_ex(&gens[g], rules, SYNTH_NAMES_LISTED, gspec[g].style, (size_t)gspec[g].n,
                                         gspec[g].seed, &err);
        n_gen += gens[g].corpus.n_docs;
    }
    for (size_t k = 0; k < cs.n; k++) n += cs.v[k].n_docs;
    n += n_gen;
    if (!rc) {
        docs = malloc((n + 1) * sizeof *docs);
        if (!docs) rc = cf_fail(&err, CF_EINTERNAL, "out of memory");
    }
    size_t q = 0, n_gold = 0;
    for (size_t k = 0; !rc && k < cs.n; k++)
        for (size_t d = 0; d < cs.v[k].n_docs; d++) {
            docs[q++] = &cs.v[k].docs[d];
            n_gold += cs.v[k].docs[d].n_gold;
        }
    for (int g = 0; g < N_GENERATED; g++)
        for (size_t d = 0; !rc && d < gens[g].corpus.n_docs; d++) {
            docs[q++] = &gens[g].corpus.docs[d];
            n_gold += gens[g].corpus.docs[d].n_gold;
        }
    if (!rc && !calib_only) {
        fprintf(stderr, "deid-train: %zu notes (%zu from corpora, %zu generated), %zu annotations\n", n,
                n - n_gen, n_gen, n_gold);
        rc = deid_model_train(r, docs, n, &to, out, &err);
    }
    if (!rc && !calib_only) fprintf(stderr, "deid-train: wrote %s\n", out);
    if (!rc && calib) {
        /* held apart from training: names from data/deid/heldout, seeds training never uses,
           and half the notes in the event-note style training never writes */
        synth_notes held[2];
        memset(held, 0, sizeof held);
        size_t half = (size_t)calib / 2;
        rc = synth_notes_generate_ex(&held[0], rules, SYNTH_NAMES_HELDOUT, coded ? SYNTH_GEN_CODED : 0, (size_t)calib - half, calib_seed + 7777001, &err);
        if (!rc && half) rc = synth_notes_generate_ex(&held[1], rules, SYNTH_NAMES_HELDOUT, SYNTH_GEN_HELDOUT_STYLE, half, calib_seed + 7777002, &err);
        deid_corpus hc[2] = {held[0].corpus, held[1].corpus};
        double thr = 0, cr = 0, cp = 0;
        if (!rc) rc = deid_model_calibrate(r, out, hc, half ? 2 : 1, calib_p, to.prune, to.verbose, &thr, &cr, &cp, &err);
        if (!rc)
            fprintf(stderr, "deid-train: threshold %.2f chosen on %llu held-apart generated notes (recall %.4f, precision %.4f)\n",
                    thr, calib, cr, cp);
        synth_notes_free(&held[0]);
        synth_notes_free(&held[1]);
    }
    if (rc) cf_err_print(&err);
    free(docs);
    for (size_t k = 0; k < cs.n; k++) deid_corpus_free(&cs.v[k]);
    free(cs.v);
    for (int g = 0; g < N_GENERATED; g++) synth_notes_free(&gens[g]);
    deid_rules_free(r);
    return rc;
}
