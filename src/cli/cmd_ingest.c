/* `clinfm ingest`: source tables -> event store.
 *
 * Formats: `csv` (the default) drives the mapped-CSV engine with a mapping file. The store is
 * written atomically; on any fatal error, or an interrupt, no store appears. The ingestion report
 * (rows, events, filtered and rejected rows per source, rejection reasons with example locations)
 * is printed and kept in the store's metadata. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "util/datadir.h"
#include "cli/commands.h"
#include "cli/opts.h"
#include "ingest/fhir.h"
#include "ingest/mapped_csv.h"
#include "ingest/mapping.h"
#include "ingest/report.h"
#include "ingest/room.h"
#include "store/store.h"
#include "util/atomic_file.h"
#include "util/progress.h"

static char *build_meta(const char *format, const mapping *m, const char *input, const ingest_report *rep) {
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "producer", "clinfm " CLINFM_VERSION);
    cJSON_AddStringToObject(root, "format", format);
    if (m) {
        cJSON_AddStringToObject(root, "mapping", m->name ? m->name : m->path);
        if (m->description) cJSON_AddStringToObject(root, "mapping_description", m->description);
    }
    cJSON_AddBoolToObject(root, "deidentified", 0);
    char *rj = ingest_report_json(rep);
    if (rj) {
        cJSON *r = cJSON_Parse(rj);
        if (r) cJSON_AddItemToObject(root, "ingest", r);
        free(rj);
    }
    (void)input; /* input paths can name a hospital's systems; keep them out of the store */
    char *s = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return s;
}

int cmd_ingest(int argc, char **argv) {
    int status;
    cli_named mapping_file = {.folder = "mappings", .ext = ".map"};
    const char *format = "csv", *input = NULL, *out = NULL, *tables = NULL, *report = NULL;
    int strict = 0, quiet = 0, threads = 0, room_mode = INGEST_ROOM_AUTO;
    static const cli_choice room_modes[] = {
        {"auto", INGEST_ROOM_AUTO}, {"sample", INGEST_ROOM_ALWAYS}, {"off", INGEST_ROOM_OFF}, {NULL, 0}};
    cli_list vars = {.n = 0};
    unsigned long long memory_mb = 256;
    const cli_opt opts[] = {
        CLI_OPT_STR("format", &format, "FORMAT",
                    "csv (default): CSV or .csv.gz tables read through a mapping file\n"
                    "(docs/MAPPING.md; MIMIC-IV and OMOP CDM mappings ship in mappings/);\n"
                    "fhir: FHIR R4 Bundles (.json, .json.gz), NDJSON, or a folder of them\n"
                    "such as a Bulk Data export (docs/FHIR.md)"),
        CLI_OPT_FN("mapping", &mapping_file, "FILE", cli_take_named, "mapping file (e.g. mappings/mimic-iv.map)"),
        CLI_OPT_STR("input", &input, "PATH",
                    "csv: directory the mapping's paths are relative to (default: the\n"
                    "mapping's own `input =`, if it has one); fhir: a file or folder"),
        CLI_OPT_LIST("var", &vars, "NAME=VALUE",
                   "csv: a value for one of the mapping's [variables] (repeatable),\n"
                   "e.g. --var set=b for mappings/physionet-2012.map"),
        CLI_OPT_STR("out", &out, "STORE", "the store file to write (atomically)"),
        CLI_OPT_STR("tables", &tables, "A,B", "csv: ingest only these tables of the mapping"),
        CLI_OPT_FLAG("strict", &strict, "the first rejected row is a fatal error"),
        CLI_OPT_U64("memory-mb", &memory_mb, "N", 1, 1ull << 20,
                    "event buffer before spilling sorted runs to disk (default 256)"),
        CLI_OPT_INT("threads", &threads, "N", 0, 64,
                    "csv: threads that parse and map a table's rows, cut into chunks of\n"
                    "whole records (default 0: one per processor); the store is the same\n"
                    "for any N"),
        CLI_OPT_CHOICE("room-check", &room_mode, "MODE", room_modes,
                       "before reading, estimate the disk the store and the writer's\n"
                       "scratch need on --out's filesystem, say it, and refuse (exit 1)\n"
                       "without it: auto (default: from a sample of the inputs through\n"
                       "the mapping, or of the FHIR files, unless 8x the inputs' bytes\n"
                       "are free), sample (always sample), off (the writer still refuses\n"
                       "at the end if the room is not there). The sample's store is\n"
                       "written in TMPDIR (else /tmp) while it is measured\n"),
        CLI_OPT_STR("report", &report, "FILE", "also write the ingestion report as JSON"),
        CLI_OPT_FLAG("quiet", &quiet, "print no report"),
        CLI_OPT_END};
    const cli_spec spec = {
        .cmd = "ingest",
        .usage = "ingest --mapping FILE [--input DIR] --out STORE [options]\n"
                 "       clinfm ingest --format fhir --input PATH --out STORE [options]",
        .about = "Reads source tables into an event store (MEDS data model: subject, time, code,\n"
                 "numeric value, text value, with provenance for every event).\n",
        .opts = opts,
        .after = "\n"
                 "Every input row becomes events, or is counted as filtered (excluded by the mapping's\n"
                 "`where` conditions) or rejected (with its reason and example file:line locations);\n"
                 "each event of a row is built, or rejected, on its own. A mapping event that rejects\n"
                 "every row it applies to is an error (unless the mapping says `may_be_empty = yes`).\n"};
    if (!cli_parse(&spec, argc, argv, NULL, &status)) return status;
    const char *mapping_path = mapping_file.path;
    for (size_t i = 0; i < vars.n; i++)
        if (!strchr(vars.v[i], '=') || vars.v[i][0] == '=') return cli_usage_error("ingest", "--var expects NAME=VALUE");
    if (!out) return cli_usage_error("ingest", "--out is required");
    int fhir = !strcmp(format, "fhir");
    if (!fhir && strcmp(format, "csv") != 0) return cli_usage_error("ingest", "--format must be csv or fhir");
    if (!fhir && !mapping_path) return cli_usage_error("ingest", "--mapping is required with --format csv");
    if (fhir && (mapping_path || tables || vars.n))
        return cli_usage_error("ingest", "--mapping, --tables and --var go with --format csv");
    if (fhir && !input) return cli_usage_error("ingest", "--input is required");

    cf_err err = {0};
    mapping m;
    memset(&m, 0, sizeof m);
    int rc = fhir ? CF_OK : mapping_load_vars(&m, mapping_path, vars.v, vars.n, &err);
    if (rc) {
        cf_err_print(&err);
        return rc;
    }
    char default_input[4096];
    if (!input && !fhir) {
        if (!m.default_input) {
            mapping_free(&m);
            return cli_usage_error("ingest", "--input is required (the mapping names no default `input =`)");
        }
        mapping_resolve_path(&m, ".", m.default_input, default_input, sizeof default_input);
        input = default_input;
    }
    /* Said before any work: how much disk the store and the writer's scratch will take, from a
     * sample of every table (FHIR: a bound), and a refusal when the output's filesystem (which
     * also holds the writer's scratch) lacks it. */
    rc = ingest_room_check(room_mode, fhir ? NULL : &m, input, tables, threads, out, quiet ? NULL : stderr, NULL, &err);
    if (rc) {
        cf_err_print(&err);
        fprintf(stderr, "clinfm: no store was written\n");
        if (!fhir) mapping_free(&m);
        return rc;
    }
    ingest_report rep;
    ingest_report_init(&rep, strict);
    store_writer *w = NULL;
    store_writer_options wopt = {.memory_budget = (size_t)memory_mb << 20};
    double t0 = now_seconds();
    rc = store_writer_open(&w, out, &wopt, &err);
    if (!rc && fhir) {
        fhir_options fo = {.strict = strict, .show_progress = 1};
        rc = fhir_ingest(input, w, &rep, &fo, &err);
    } else if (!rc) {
        mapped_csv_options mo = {.only_tables = tables, .show_progress = 1, .threads = threads};
        rc = mapped_csv_ingest(&m, input, w, &rep, &mo, &err);
    }
    uint64_t events = w ? store_writer_events(w) : 0;
    if (!rc) {
        char *meta = build_meta(format, fhir ? NULL : &m, input, &rep);
        if (!meta || store_writer_set_meta(w, meta)) rc = cf_fail(&err, CF_EINTERNAL, "out of memory");
        free(meta);
    }
    double t_read = now_seconds() - t0;
    if (!rc) {
        rc = store_writer_finish(w, &err);
        w = NULL;
    }
    if (w) store_writer_abort(w);
    double secs = now_seconds() - t0;
    if (rc) {
        cf_err_print(&err);
        fprintf(stderr, "clinfm: no store was written\n");
    } else {
        if (!quiet) {
            ingest_report_print(&rep, stdout);
            printf("wrote %s: %llu events in %.2f s (%.2f s reading and mapping, %.2f s sorting and writing)\n", out,
                   (unsigned long long)events, secs, t_read, secs - t_read);
        }
        if (report) {
            char *js = ingest_report_json(&rep);
            cf_err e2 = {0};
            if (!js || atomic_write_file(report, js, strlen(js), &e2)) {
                cf_err_print(&e2);
                rc = CF_EINTERNAL;
            }
            free(js);
        }
    }
    ingest_report_free(&rep);
    if (!fhir) mapping_free(&m);
    return rc;
}
