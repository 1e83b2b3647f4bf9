/* `clinfm synth`: make a synthetic population with known ground truth (docs/SYNTH.md). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "synth/synth.h"
#include "util/datadir.h"

static void synth_help(void) {
    printf("usage: clinfm synth --patients N --out DIR [options]\n"
           "\n"
           "Simulates N fictional patients (demographics, visits, vitals and labs that follow\n"
           "latent disease markers, diagnoses, treatments, emergency visits, hospital stays,\n"
           "intensive care, deaths) from disease modules written as data files, and writes them\n"
           "as FHIR R4 NDJSON (DIR/fhir, read by `clinfm ingest --format fhir`), with the ground\n"
           "truth of each new-onset task (DIR/truth/<task>.csv, read by `clinfm eval --ceiling`)\n"
           "and DIR/manifest.json. The same seed gives the same bytes for any --threads.\n"
           "\n"
           "options:\n"
           "  --patients N        patients to make (required)\n"
           "  --out DIR           output folder (must not exist)\n"
           "  --seed S            random seed (default 1)\n"
           "  --format F          fhir-ndjson (default) or null (simulate and count only)\n"
           "  --start YYYY        first year of the data window (default 2010)\n"
           "  --end YYYY          last year of the data window (default 2024)\n"
           "  --threads T         worker threads (default 2)\n"
           "  --truth-paths K     simulated futures per ground-truth row (default 8; 0: no truth)\n"
           "  --modules DIR       disease module files (default: the shipped data/synth/modules)\n"
           "  --notes             notes for hospital stays (nursing, progress, discharge summary) as\n"
           "                      DocumentReference, with gold identifier spans in DIR/notes/\n"
           "  --notes-names L     listed (default: names the de-identifier knows) or heldout\n"
           "                      (names it never lists, to measure recall on unseen names)\n"
           "  --quiet             print no summary\n"
           "  -h, --help          this help\n"
           "exit status: 0 ok, 1 bad input or usage, 2 internal error.\n");
}

int cmd_synth(int argc, char **argv) {
    static const struct option opts[] = {
        {"patients", required_argument, 0, 'n'}, {"out", required_argument, 0, 'o'},
        {"seed", required_argument, 0, 's'},     {"format", required_argument, 0, 'f'},
        {"start", required_argument, 0, 'a'},    {"end", required_argument, 0, 'b'},
        {"threads", required_argument, 0, 't'},  {"truth-paths", required_argument, 0, 'k'},
        {"modules", required_argument, 0, 'm'},  {"quiet", no_argument, 0, 'q'},
        {"notes", no_argument, 0, 'N'},          {"notes-names", required_argument, 0, 'L'},
        {"help", no_argument, 0, 'h'},           {0, 0, 0, 0}};
    synth_options o;
    memset(&o, 0, sizeof o);
    o.seed = 1;
    o.start_year = 2010;
    o.end_year = 2024;
    o.threads = 2;
    o.truth_paths = 8;
    static char shipped[4096];
    cf_share_path("data/synth/modules", shipped, sizeof shipped); /* checkout, install or CLINFM_SHARE */
    o.modules_dir = shipped;
    int have_n = 0;
    unsigned long long v;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
        switch (c) {
        case 'n':
            if (cli_parse_u64("synth", "--patients", optarg, &v)) return 1;
            if (v < 1 || v > 100000000ULL) return cli_usage_error("synth", "--patients must be 1 to 100000000");
            o.patients = v;
            have_n = 1;
            break;
        case 'o': o.out_dir = optarg; break;
        case 's':
            if (cli_parse_u64("synth", "--seed", optarg, &v)) return 1;
            o.seed = v;
            break;
        case 'f':
            if (!strcmp(optarg, "fhir-ndjson") || !strcmp(optarg, "fhir")) o.format = SYNTH_FMT_FHIR;
            else if (!strcmp(optarg, "null")) o.format = SYNTH_FMT_NULL;
            else return cli_usage_error("synth", "--format takes fhir-ndjson or null");
            break;
        case 'a':
        case 'b':
            if (cli_parse_u64("synth", c == 'a' ? "--start" : "--end", optarg, &v)) return 1;
            if (v < 1900 || v > 2100) return cli_usage_error("synth", "--start and --end are years from 1900 to 2100");
            if (c == 'a') o.start_year = (int)v;
            else o.end_year = (int)v;
            break;
        case 't':
            if (cli_parse_u64("synth", "--threads", optarg, &v)) return 1;
            if (v < 1 || v > 256) return cli_usage_error("synth", "--threads must be 1 to 256");
            o.threads = (int)v;
            break;
        case 'k':
            if (cli_parse_u64("synth", "--truth-paths", optarg, &v)) return 1;
            if (v > 4096) return cli_usage_error("synth", "--truth-paths is at most 4096");
            o.truth_paths = (int)v;
            break;
        case 'm': o.modules_dir = optarg; break;
        case 'N':
            if (!o.notes) o.notes = SYNTH_NOTES_LISTED;
            break;
        case 'L':
            if (!strcmp(optarg, "listed")) o.notes = SYNTH_NOTES_LISTED;
            else if (!strcmp(optarg, "heldout")) o.notes = SYNTH_NOTES_HELDOUT;
            else return cli_usage_error("synth", "--notes-names takes listed or heldout");
            break;
        case 'q': o.quiet = 1; break;
        case 'h': synth_help(); return 0;
        case '?':
            if (optopt) return cli_usage_error("synth", "option -%c is unknown or needs a value", optopt);
            return cli_usage_error("synth", "unknown option '%s' or missing value", argv[optind - 1]);
        default: return cli_usage_error("synth", "bad option");
        }
    }
    if (optind < argc) return cli_usage_error("synth", "unexpected argument '%s'", argv[optind]);
    if (!have_n) return cli_usage_error("synth", "--patients is required");
    if (!o.out_dir) return cli_usage_error("synth", "--out is required");
    if (o.end_year < o.start_year) return cli_usage_error("synth", "--end must not be before --start");
    cf_err err = {0};
    synth_report rep;
    int rc = synth_run(&o, &rep, &err);
    if (rc) {
        cf_err_print(&err);
        return rc;
    }
    if (!o.quiet) {
        printf("clinfm synth: %llu patients, %llu events, %.1f s (%.0f patients/s, %.0f events/s) into %s\n",
               (unsigned long long)rep.patients, (unsigned long long)rep.events, rep.seconds,
               rep.patients / (rep.seconds > 0 ? rep.seconds : 1), rep.events / (rep.seconds > 0 ? rep.seconds : 1),
               o.out_dir);
        printf("  resources:");
        for (int t = 0; t < SYNTH_N_TYPES; t++) printf(" %s %llu", synth_type_names[t], (unsigned long long)rep.resources[t]);
        if (o.notes) printf("\n  notes %llu with %llu gold identifier spans", (unsigned long long)rep.notes,
                            (unsigned long long)rep.note_spans);
        printf("\n  deaths %llu (in hospital %llu), hospital admissions %llu, truth rows %llu (%llu positive)\n",
               (unsigned long long)rep.deaths, (unsigned long long)rep.deaths_in_hospital,
               (unsigned long long)rep.admissions, (unsigned long long)rep.truth_rows,
               (unsigned long long)rep.truth_positive);
    }
    return 0;
}
