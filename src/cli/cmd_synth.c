/* `clinfm synth`: make a synthetic population with known ground truth (docs/SYNTH.md), or, with
 * --compare, set one beside a real store (the realism report). The comparison generates in the
 * real store's layout and ingests through the same reader or shipped mapping a user would, so
 * both stores are read the same way. */
#define _XOPEN_SOURCE 700
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli/commands.h"
#include "cli/opts.h"
#include "ingest/fhir.h"
#include "ingest/mapped_csv.h"
#include "ingest/mapping.h"
#include "ingest/report.h"
#include "store/store.h"
#include "synth/synth.h"
#include "synth/synth_compare.h"
#include "util/datadir.h"

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    remove(path);
    return 0;
}

/* The generated folder into a store, as `clinfm ingest` would read it (strict: a generated row
 * that its own mapping rejects is a bug, not data). */
static int ingest_generated(int format, const char *dir, const char *out, cf_err *err) {
    ingest_report rep;
    ingest_report_init(&rep, 1);
    store_writer *w = NULL;
    store_writer_options wopt;
    memset(&wopt, 0, sizeof wopt);
    mapping m;
    memset(&m, 0, sizeof m);
    int have_map = 0, rc = store_writer_open(&w, out, &wopt, err);
    char path[8400];
    if (!rc && format == SYNTH_FMT_FHIR) {
        snprintf(path, sizeof path, "%s/fhir", dir);
        fhir_options fo = {.strict = 1, .show_progress = 0};
        rc = fhir_ingest(path, w, &rep, &fo, err);
    } else if (!rc) {
        cf_share_path(format == SYNTH_FMT_MIMIC ? "mappings/mimic-iv.map" : "mappings/omop-cdm.map", path, sizeof path);
        if (!(rc = mapping_load(&m, path, err))) {
            have_map = 1;
            mapped_csv_options mo;
            memset(&mo, 0, sizeof mo);
            rc = mapped_csv_ingest(&m, dir, w, &rep, &mo, err);
        }
    }
    if (!rc) {
        rc = store_writer_finish(w, err);
        w = NULL;
    }
    if (w) store_writer_abort(w);
    if (have_map) mapping_free(&m);
    ingest_report_free(&rep);
    return rc;
}

static int run_compare(const char *real_path, const char *gen_path, synth_options *o, int have_format, int json) {
    cf_err err = {0};
    store real, gen;
    memset(&real, 0, sizeof real);
    memset(&gen, 0, sizeof gen);
    char tmp[4096] = "", dir[4200], gstore[4200], label[256];
    int rc = store_open(&real, real_path, &err), have_gen = 0;
    cJSON *rep = NULL;
    if (rc) goto done;
    if (!gen_path) {
        if (!have_format) {
            const char *lay = synth_compare_layout(&real);
            o->format = !strcmp(lay, "mimic-csv") ? SYNTH_FMT_MIMIC : !strcmp(lay, "omop-csv") ? SYNTH_FMT_OMOP : SYNTH_FMT_FHIR;
        }
        const char *base = getenv("TMPDIR");
        snprintf(tmp, sizeof tmp, "%s/clinfm-compare.XXXXXX", base && *base ? base : "/tmp");
        if (!mkdtemp(tmp)) {
            rc = cf_fail_errno(&err, CF_EINPUT, "%s: cannot create a temporary folder (set TMPDIR)", tmp);
            tmp[0] = 0;
            goto done;
        }
        snprintf(dir, sizeof dir, "%s/gen", tmp);
        snprintf(gstore, sizeof gstore, "%s/gen.store", tmp);
        o->out_dir = dir;
        o->truth_paths = 0;
        int quiet = o->quiet;
        o->quiet = 1;
        synth_report srep;
        if (!quiet) fprintf(stderr, "clinfm synth --compare: generating %llu patients...\n", (unsigned long long)o->patients);
        if ((rc = synth_run(o, &srep, &err)) || (rc = ingest_generated(o->format, dir, gstore, &err))) goto done;
        gen_path = gstore;
        snprintf(label, sizeof label, "clinfm synth, %llu patients, seed %llu, %d-%d", (unsigned long long)o->patients,
                 (unsigned long long)o->seed, o->start_year, o->end_year);
    } else {
        snprintf(label, sizeof label, "%s", gen_path);
    }
    if ((rc = store_open(&gen, gen_path, &err))) goto done;
    have_gen = 1;
    if ((rc = synth_compare(&gen, &real, label, real_path, &rep, &err))) goto done;
    if (json) {
        char *s = cJSON_Print(rep);
        if (!s) {
            rc = cf_fail(&err, CF_EINTERNAL, "out of memory");
            goto done;
        }
        printf("%s\n", s);
        free(s);
    } else {
        synth_compare_print(rep, stdout);
    }
done:
    cJSON_Delete(rep);
    if (have_gen) store_close(&gen);
    if (real.map) store_close(&real);
    if (tmp[0]) nftw(tmp, rm_entry, 16, FTW_DEPTH | FTW_PHYS); /* ours: made by mkdtemp above */
    if (rc) cf_err_print(&err);
    return rc;
}

int cmd_synth(int argc, char **argv) {
    int status;
    synth_options o;
    memset(&o, 0, sizeof o);
    o.start_year = 2010;
    o.end_year = 2024;
    o.threads = 2;
    o.truth_paths = 8;
    static char shipped[4096];
    cf_share_path("data/synth/modules", shipped, sizeof shipped); /* checkout, install or CLINFM_SHARE */
    o.modules_dir = shipped;
    unsigned long long patients = 0, seed = 1; /* patients 0: not given */
    int format = -1, notes = 0, notes_names = -1, json = 0;
    const char *compare = NULL, *generated = NULL;
    static const cli_choice formats[] = {{"fhir-ndjson", SYNTH_FMT_FHIR}, {"fhir", SYNTH_FMT_FHIR},
                                         {"mimic-csv", SYNTH_FMT_MIMIC},  {"mimic", SYNTH_FMT_MIMIC},
                                         {"omop-csv", SYNTH_FMT_OMOP},    {"omop", SYNTH_FMT_OMOP},
                                         {"null", SYNTH_FMT_NULL},        {NULL, 0}};
    static const cli_choice names[] = {{"listed", SYNTH_NOTES_LISTED}, {"heldout", SYNTH_NOTES_HELDOUT}, {NULL, 0}};
    const cli_opt opts[] = {
        CLI_OPT_U64("patients", &patients, "N", 1, 100000000, "patients to make (required)"),
        CLI_OPT_STR("out", &o.out_dir, "DIR", "output folder (must not exist)"),
        CLI_OPT_U64("seed", &seed, "S", 0, CLI_ANY, "random seed (default 1)"),
        CLI_OPT_CHOICE("format", &format, "F", formats,
                       "fhir-ndjson (default: DIR/fhir), mimic-csv (MIMIC-IV hosp/ and icu/\n"
                       "tables for mappings/mimic-iv.map), omop-csv (OMOP CDM v5.3 tables and\n"
                       "CONCEPT for mappings/omop-cdm.map), or null (simulate and format\n"
                       "FHIR, write only the manifest)"),
        CLI_OPT_INT("start", &o.start_year, "YYYY", 1900, 2100, "first year of the data window (default 2010)"),
        CLI_OPT_INT("end", &o.end_year, "YYYY", 1900, 2100, "last year of the data window (default 2024)"),
        CLI_OPT_INT("threads", &o.threads, "T", 1, 256, "worker threads (default 2)"),
        CLI_OPT_INT("truth-paths", &o.truth_paths, "K", 0, 4096,
                    "simulated futures per ground-truth row (default 8; 0: no truth)"),
        CLI_OPT_STR("modules", &o.modules_dir, "DIR", "disease module files (default: the shipped data/synth/modules)"),
        CLI_OPT_FLAG("notes", &notes,
                     "notes for hospital stays (nursing, progress, discharge summary) as\n"
                     "DocumentReference, with gold identifier spans in DIR/notes/"),
        CLI_OPT_CHOICE("notes-names", &notes_names, "L", names,
                       "listed (default: names the de-identifier knows) or heldout\n"
                       "(names it never lists, to measure recall on unseen names)"),
        CLI_OPT_FLAG("quiet", &o.quiet, "print no summary"),
        CLI_OPT_STR("compare", &compare, "STORE", NULL), /* the realism report: described in .after */
        CLI_OPT_STR("generated", &generated, "STORE2", NULL),
        CLI_OPT_FLAG("json", &json, NULL),
        CLI_OPT_END};
    const cli_spec spec = {
        .cmd = "synth",
        .usage = "synth --patients N --out DIR [options]",
        .about = "Simulates N fictional patients (demographics, visits, vitals and labs that follow\n"
                 "latent disease markers, diagnoses, treatments, emergency visits, hospital stays,\n"
                 "intensive care, deaths) from disease modules written as data files, and writes them\n"
                 "as FHIR R4 NDJSON (DIR/fhir, read by `clinfm ingest --format fhir`), MIMIC-IV or OMOP\n"
                 "CDM tables, with the ground truth of each task the layout's task files define\n"
                 "(DIR/truth/<task>.csv, read by `clinfm eval --ceiling`)\n"
                 "and DIR/manifest.json. The same seed gives the same bytes for any --threads.\n",
        .opts = opts,
        .after = "\n"
                 "realism report: clinfm synth --compare STORE [--generated STORE2 | --patients N ...] [--json]\n"
                 "  --compare STORE     set a generated population beside this real store: age and sex,\n"
                 "                      events per patient, code frequencies, value distributions, stays\n"
                 "                      (admissions, length of stay, deaths, intensive care, readmissions),\n"
                 "                      and where they differ. Without --generated, N patients (default\n"
                 "                      2000) are generated in the store's layout (or --format) into a\n"
                 "                      temporary folder and ingested with the shipped reader or mapping\n"
                 "  --generated STORE2  compare this store (made from generated data) instead\n"
                 "  --json              the report as JSON\n"};
    if (!cli_parse(&spec, argc, argv, NULL, &status)) return status;
    int have_n = patients > 0, have_format = format >= 0;
    o.patients = patients;
    o.seed = seed;
    if (have_format) o.format = format;
    if (notes_names >= 0) o.notes = notes_names;
    else if (notes) o.notes = SYNTH_NOTES_LISTED;
    if (generated && !compare) return cli_usage_error("synth", "--generated goes with --compare");
    if (json && !compare) return cli_usage_error("synth", "--json goes with --compare");
    if (compare) {
        if (o.out_dir) return cli_usage_error("synth", "--compare writes no folder: drop --out");
        if (generated && (have_n || have_format)) return cli_usage_error("synth", "--generated compares a store as it is: drop --patients and --format");
        if (!have_n) o.patients = 2000;
        if (have_format && o.format == SYNTH_FMT_NULL) return cli_usage_error("synth", "--compare needs a layout that writes files");
        return run_compare(compare, generated, &o, have_format, json);
    }
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
        if (o.format == SYNTH_FMT_FHIR || o.format == SYNTH_FMT_NULL) {
            printf("  resources:");
            for (int t = 0; t < SYNTH_N_TYPES; t++) printf(" %s %llu", synth_type_names[t], (unsigned long long)rep.resources[t]);
        } else { /* rows (events) per table */
            printf("  tables (rows, events):");
            for (size_t t = 0; t < rep.n_tables; t++) {
                const synth_table_report *x = &rep.tables[t];
                if (x->dictionary || x->unmapped) printf(" %s %llu", x->name, (unsigned long long)x->rows);
                else printf(" %s %llu (%llu)", x->name, (unsigned long long)x->rows, (unsigned long long)x->events);
            }
        }
        if (o.notes) printf("\n  notes %llu with %llu gold identifier spans", (unsigned long long)rep.notes,
                            (unsigned long long)rep.note_spans);
        printf("\n  deaths %llu (in hospital %llu), hospital admissions %llu, truth rows %llu (%llu positive)\n",
               (unsigned long long)rep.deaths, (unsigned long long)rep.deaths_in_hospital,
               (unsigned long long)rep.admissions, (unsigned long long)rep.truth_rows,
               (unsigned long long)rep.truth_positive);
    }
    return 0;
}
