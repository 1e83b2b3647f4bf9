/* `clinfm demo`: the whole pipeline on the bundled data, as far as it is built.
 * Each stage runs through its own command, exactly as a user would type it, so the demo is also
 * a smoke test of the CLI. Outputs go under --out (default out/demo). */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/commands.h"
#include "util/datadir.h"

static int run(const char *title, int (*fn)(int, char **), char **args) {
    int n = 0;
    while (args[n]) n++;
    printf("\n== %s\n$ clinfm", title);
    for (int i = 0; i < n; i++) printf(" %s", args[i]);
    printf("\n");
    fflush(stdout);
    int rc = fn(n, args);
    fflush(stdout);
    if (rc) fprintf(stderr, "clinfm demo: step '%s' failed (exit %d)\n", title, rc);
    return rc;
}

int cmd_demo(int argc, char **argv) {
    static const struct option opts[] = {{"data", required_argument, 0, 'd'}, {"mappings", required_argument, 0, 'm'},
                                         {"out", required_argument, 0, 'o'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    const char *data = cf_data_dir(), *mappings = "mappings", *out = "out/demo";
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'd': data = optarg; break;
        case 'm': mappings = optarg; break;
        case 'o': out = optarg; break;
        case 'h':
            printf("usage: clinfm demo [--data DIR] [--mappings DIR] [--out DIR]\n\n"
                   "Runs the pipeline on the public datasets (run from the repository root):\n"
                   "  1. ingest the MIMIC-IV demo (100 patients) through mappings/mimic-iv.map\n"
                   "  2. summarise the store and show one patient's timeline\n"
                   "  3. export it as MEDS CSV\n"
                   "options:\n"
                   "  --data DIR       public datasets (default $CLINFM_DATA, else ../shared/data)\n"
                   "  --mappings DIR   mapping files (default mappings)\n"
                   "  --out DIR        where outputs go (default out/demo)\n"
                   "  -h, --help       this help\n");
            return 0;
        default: return cli_usage_error("demo", "unknown option '%s' or missing value", argv[optind - 1]);
        }
    }
    if (optind < argc) return cli_usage_error("demo", "unexpected argument '%s'", argv[optind]);
    if (!data)
        return cli_usage_error("demo", "no data directory: set CLINFM_DATA (or --data) to the folder holding "
                                       "mimic-iv-demo/ and synthea-fhir-r4/");
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", out);
    for (char *p = buf + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            mkdir(buf, 0755);
            *p = '/';
        }
    if (mkdir(buf, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "clinfm demo: %s: cannot create directory: %s\n", out, strerror(errno));
        return 1;
    }
    char mapping[4200], input[4200], store_path[4200], report[4200], meds[4200], key[4200], deid_store[4200],
        deid_report[4200], model[4200], fhir_in[4200], fhir_store[4200], rules[4200];
    snprintf(mapping, sizeof mapping, "%s/mimic-iv.map", mappings);
    snprintf(input, sizeof input, "%s/mimic-iv-demo", data);
    snprintf(store_path, sizeof store_path, "%s/mimic.store", out);
    snprintf(report, sizeof report, "%s/mimic.ingest.json", out);
    snprintf(meds, sizeof meds, "%s/mimic-meds", out);
    snprintf(key, sizeof key, "%s/demo.key", out);
    snprintf(deid_store, sizeof deid_store, "%s/mimic.deid.store", out);
    snprintf(deid_report, sizeof deid_report, "%s/mimic.deid.json", out);
    snprintf(model, sizeof model, "%s/mimic.model", out);
    snprintf(fhir_in, sizeof fhir_in, "%s/synthea-fhir-r4", data);
    snprintf(fhir_store, sizeof fhir_store, "%s/synthea.store", out);
    cf_share_path("data/deid", rules, sizeof rules);
    char *ingest[] = {"ingest", "--mapping", mapping, "--input", input, "--out", store_path, "--report", report, NULL};
    char *inspect[] = {"inspect", store_path, "--verify", NULL};
    char *timeline[] = {"inspect", store_path, "--subject", "10000032", "--limit", "25", NULL};
    char *export[] = {"export", "--format", "meds-csv", store_path, "--out", meds, NULL};
    char *keygen[] = {"keygen", "--out", key, NULL};
    char *deid[] = {"deid", store_path, "--out", deid_store, "--key", key, "--rules", rules, "--report", deid_report,
                    "--quiet", NULL};
    char *deid_inspect[] = {"inspect", deid_store, NULL};
    /* A small model, so the demo finishes in minutes on two cores; see docs/MODEL.md for the
     * reference configuration. */
    char *train[] = {"train", "--store", deid_store, "--out", model, "--layers", "2", "--d-model", "64", "--heads", "2",
                     "--context", "128", "--batch", "8", "--steps", "150", "--eval-every", "50", "--lr", "2e-3", NULL};
    char *fhir[] = {"ingest", "--format", "fhir", "--input", fhir_in, "--out", fhir_store, "--quiet", NULL};
    char *fhir_inspect[] = {"inspect", fhir_store, "--top", "5", NULL};
    int rc;
    struct stat st;
    if ((rc = run("1. ingest MIMIC-IV demo", cmd_ingest, ingest))) return rc;
    if ((rc = run("2. summarise the store", cmd_inspect, inspect))) return rc;
    if ((rc = run("   one patient's timeline", cmd_inspect, timeline))) return rc;
    if ((rc = run("3. export as MEDS CSV", cmd_export, export))) return rc;
    if (stat(key, &st) != 0 && (rc = run("4. make a de-identification key (kept apart from data in real use)", cmd_keygen, keygen)))
        return rc;
    if ((rc = run("5. de-identify (pseudonyms, date shifts, notes, k-anonymity report)", cmd_deid, deid))) return rc;
    if ((rc = run("   the de-identified store", cmd_inspect, deid_inspect))) return rc;
    if ((rc = run("6. train a small model on the de-identified store", cmd_train, train))) return rc;
    if ((rc = run("7. ingest the Synthea FHIR population (615 patients)", cmd_ingest, fhir))) return rc;
    if ((rc = run("   its summary", cmd_inspect, fhir_inspect))) return rc;
    printf("\nDemo finished. Outputs:\n"
           "  %-34s the event store (clinfm inspect %s)\n"
           "  %-34s the ingestion report (rows, events, rejections)\n"
           "  %-34s MEDS CSV export (data.csv, codes.csv)\n"
           "  %-34s the de-identified store; %s its report (counts only)\n"
           "  %-34s the model bundle (checkpoint, vocabulary, losses vs baselines, split); .shards/ beside it\n"
           "  %-34s the Synthea FHIR store\n",
           store_path, store_path, report, meds, deid_store, deid_report, model, fhir_store);
    return 0;
}
