/* clinfm synth: module files (every shipped one loads; each kind of mistake gets a file:line
 * error), random streams, the same bytes for a seed whatever the thread count, and ground truth
 * that is calibrated against what happens in the records (the outcomes come from the patients'
 * own streams, the probabilities from separate simulations, so agreement is an independent
 * check of the truth's arithmetic). */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "check.h"
#include "synth/module.h"
#include "synth/rng.h"
#include "synth/sim.h"
#include "synth/synth.h"

static char modules_dir[4096];

static void test_rng_streams(void) {
    synth_rng a, b, c;
    synth_rng_seed(&a, 1, 7, 0, 0);
    synth_rng_seed(&b, 1, 7, 0, 0);
    synth_rng_seed(&c, 1, 8, 0, 0);
    int same = 1, diff = 0;
    for (int i = 0; i < 100; i++) {
        uint64_t x = synth_next(&a), y = synth_next(&b), z = synth_next(&c);
        same &= x == y;
        diff += x != z;
    }
    CHECK(same);
    CHECK(diff > 95);
    /* normal draws: mean 0, variance 1 within 5 standard errors */
    double s = 0, s2 = 0;
    int n = 200000;
    for (int i = 0; i < n; i++) {
        double x = synth_normal(&a);
        s += x, s2 += x * x;
    }
    CHECK_NEAR(s / n, 0, 5 / sqrt(n));
    CHECK_NEAR(s2 / n, 1, 5 * sqrt(2.0 / n));
    double e = 0;
    for (int i = 0; i < n; i++) e += synth_exp(&a, 4.0);
    CHECK_NEAR(e / n, 0.25, 5 * 0.25 / sqrt(n));
}

static void test_shipped_modules(void) {
    synth_modules *ms = calloc(1, sizeof *ms);
    cf_err err = {0};
    int rc = synth_modules_load(ms, modules_dir, &err);
    if (rc) fprintf(stderr, "    %s\n", err.msg);
    REQUIRE(rc == CF_OK);
    CHECK(ms->n >= 10);
    const char *want[] = {"hypertension", "type2_diabetes", "chronic_kidney_disease", "heart_failure", "copd",
                          "atrial_fibrillation", "myocardial_infarction", "stroke", "pneumonia", "sepsis"};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) CHECK(synth_module_find(ms, want[i]) >= 0);
    /* markers come after those they depend on: eGFR after systolic pressure and HbA1c */
    int pos[SYNTH_MAX_MODULES];
    for (size_t k = 0; k < ms->n; k++) pos[ms->order[k]] = (int)k;
    int ckd = synth_module_find(ms, "chronic_kidney_disease"), htn = synth_module_find(ms, "hypertension"),
        t2d = synth_module_find(ms, "type2_diabetes");
    CHECK(pos[ckd] > pos[htn]);
    CHECK(pos[ckd] > pos[t2d]);
    /* the tasks the truth covers exist as task files */
    for (size_t i = 0; i < ms->n + SYNTH_N_HOSPITAL; i++) {
        const char *name = i < ms->n ? ms->m[i].task : synth_hospital_tasks[i - ms->n];
        if (!name[0]) continue;
        char p[4200];
        snprintf(p, sizeof p, "%s/tasks/%s.task", check_root(), name);
        struct stat sb;
        if (stat(p, &sb) != 0) CHECK_FAIL_("%s is missing", p);
    }
    free(ms);
}

static const char good[] =
    "[module]\nname = m1\nkind = chronic\n"
    "[condition]\nsnomed = 59621000 | Essential hypertension (disorder)\nicd10 = I10 | Essential hypertension\n"
    "[marker]\nname = sbp\nloinc = 8480-6 | Systolic blood pressure\nunit = mm[Hg]\nmean = 120\n"
    "[diagnosis]\nthreshold = 140\n";

/* Parses text with one line replaced (or appended) and expects an error mentioning `want`. */
static void expect_error(const char *text, const char *want) {
    synth_module *m = calloc(1, sizeof *m);
    cf_err err = {0};
    int rc = synth_module_parse(m, "bad.module", text, strlen(text), &err);
    CHECK_EQ_INT(rc, CF_EINPUT);
    CHECK_CONTAINS(err.msg, want);
    CHECK_CONTAINS(err.msg, "bad.module:");
    free(m);
}

static void test_module_errors(void) {
    synth_module *m = calloc(1, sizeof *m);
    cf_err err = {0};
    REQUIRE(synth_module_parse(m, "good.module", good, strlen(good), &err) == CF_OK);
    CHECK_EQ_STR(m->marker_name, "sbp");
    CHECK_NEAR(m->threshold, 140, 0);
    free(m);
    char buf[2048];
    snprintf(buf, sizeof buf, "%sscreen = 1.5\n", good);
    expect_error(buf, "bad.module:14: 'screen' must be a number from 0 to 1");
    snprintf(buf, sizeof buf, "%sthreshhold = 3\n", good);
    expect_error(buf, "bad.module:14: unknown key 'threshhold' in [diagnosis]");
    snprintf(buf, sizeof buf, "%s[marker]\n", good);
    expect_error(buf, "bad.module:14: section [marker] appears twice");
    snprintf(buf, sizeof buf, "%s[treatment]\ndrug = 31407A | lisinopril\n", good);
    expect_error(buf, "bad.module:15: 'drug' must be an RxNorm code");
    snprintf(buf, sizeof buf, "%s[treatment]\ndrug = 314076 lisinopril\n", good);
    expect_error(buf, "bad.module:15:");
    snprintf(buf, sizeof buf, "%s[marker]\n", good);
    const char *p = strstr(good, "[diagnosis]");
    snprintf(buf, sizeof buf, "%.*s[diagnosis]\nrate = 0.1\neffect = bloodtype 3\n", (int)(p - good), good);
    expect_error(buf, "bad.module:14: 'effect' must be COVARIATE COEFFICIENT");
    snprintf(buf, sizeof buf, "%.*s", (int)(p - good), good); /* no threshold */
    expect_error(buf, "needs its mean and a [diagnosis] threshold");
    expect_error("[module]\nname = x\nkind = sometimes\n", "bad.module:3: 'kind' must be chronic or acute");
    expect_error("name = x\n", "bad.module:1: key 'name' before any [section]");
    expect_error("[module]\nname = x\nkind = acute\n[condition]\nsnomed = 1 | a\nicd10 = A00 | a\n[acute]\nlab = 2524-7 | Lactate | mmol/L | 1 | 2\n",
                 "bad.module:8: 'lab' must be LOINC | display | unit");
    expect_error("[module]\nname = x\nkind = chronic\n[condition]\nsnomed = 1 | a\nicd10 = A00 | a\n[marker]\nname = q\nloinc = 4548-4 | x\nmean = 1\nunit = %\n"
                 "[diagnosis]\nthreshold = 2\n[stage]\nstage = 3 | 1 | A00 | s1\nstage = 2 | 2 | A01 | s2\n",
                 "stages must be listed from the mildest");
    /* an ICD-10-PCS code has seven characters, digits and capitals without I and O, and codes a procedure */
    const char *acute = "[module]\nname = x\nkind = acute\n[condition]\nsnomed = 1 | a\nicd10 = A00 | a\n[acute]\nrate = 0.1\n";
    snprintf(buf, sizeof buf, "%sprocedure = 415070008 | PCI\nprocedure_icd10pcs = 02703DZ | Dilation\n", acute);
    m = calloc(1, sizeof *m);
    REQUIRE(synth_module_parse(m, "good.module", buf, strlen(buf), &err) == CF_OK);
    CHECK_EQ_STR(m->procedure_pcs.code, "02703DZ");
    free(m);
    snprintf(buf, sizeof buf, "%sprocedure = 415070008 | PCI\nprocedure_icd10pcs = 02703D | Dilation\n", acute);
    expect_error(buf, "bad.module:10: 'procedure_icd10pcs' must be a icd10pcs code");
    snprintf(buf, sizeof buf, "%sprocedure = 415070008 | PCI\nprocedure_icd10pcs = 027O3DZ | Dilation\n", acute);
    expect_error(buf, "bad.module:10: 'procedure_icd10pcs' must be a icd10pcs code");
    snprintf(buf, sizeof buf, "%sprocedure_icd10pcs = 02703DZ | Dilation\n", acute);
    expect_error(buf, "procedure_icd10pcs codes the module's procedure: it needs a procedure");
}

/* Resolution across modules: unknown names and marker cycles. */
static void test_module_resolution(void) {
    synth_modules *ms = calloc(1, sizeof *ms);
    cf_err err = {0};
    const char *a = "[module]\nname = a\nkind = chronic\n[condition]\nsnomed = 1 | a\nicd10 = A00 | a\n"
                    "[marker]\nname = ma\nloinc = 4548-4 | x\nunit = %\nmean = 1\neffect = marker:mb 0.5\n[diagnosis]\nthreshold = 2\n";
    const char *b = "[module]\nname = b\nkind = chronic\n[condition]\nsnomed = 2 | b\nicd10 = B00 | b\n"
                    "[marker]\nname = mb\nloinc = 4548-4 | x\nunit = %\nmean = 1\neffect = marker:ma 0.5\n[diagnosis]\nthreshold = 2\n";
    REQUIRE(synth_module_parse(&ms->m[0], "a.module", a, strlen(a), &err) == CF_OK);
    REQUIRE(synth_module_parse(&ms->m[1], "b.module", b, strlen(b), &err) == CF_OK);
    ms->n = 2;
    CHECK_EQ_INT(synth_modules_resolve(ms, &err), CF_EINPUT);
    CHECK_CONTAINS(err.msg, "cycle");
    const char *c = "[module]\nname = c\nkind = chronic\n[condition]\nsnomed = 2 | b\nicd10 = B00 | b\n"
                    "[diagnosis]\nrate = 0.1\neffect = dx:nosuch 0.5\n";
    memset(ms, 0, sizeof *ms);
    REQUIRE(synth_module_parse(&ms->m[0], "c.module", c, strlen(c), &err) == CF_OK);
    ms->n = 1;
    CHECK_EQ_INT(synth_modules_resolve(ms, &err), CF_EINPUT);
    CHECK_CONTAINS(err.msg, "c.module:9: effect names 'nosuch'");
    free(ms);
}

static char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    if (b) b[n] = 0;
    fclose(f);
    *len = (size_t)n;
    return b;
}

static int same_file(const char *a, const char *b) {
    size_t la, lb;
    char *x = slurp(a, &la), *y = slurp(b, &lb);
    int same = x && y && la == lb && !memcmp(x, y, la);
    free(x);
    free(y);
    return same;
}

static int run_synth(const char *out, int threads, uint64_t seed, uint64_t n, int paths, synth_report *rep) {
    synth_options o;
    memset(&o, 0, sizeof o);
    o.patients = n;
    o.seed = seed;
    o.out_dir = out;
    o.modules_dir = modules_dir;
    o.start_year = 2012;
    o.end_year = 2020;
    o.threads = threads;
    o.truth_paths = paths;
    o.quiet = 1;
    cf_err err = {0};
    int rc = synth_run(&o, rep, &err);
    if (rc) fprintf(stderr, "    %s\n", err.msg);
    return rc;
}

static void test_same_bytes_any_threads(void) {
    char d1[4200], d2[4200], d3[4200];
    snprintf(d1, sizeof d1, "%s/syn_t1", check_tmpdir());
    snprintf(d2, sizeof d2, "%s/syn_t2", check_tmpdir());
    snprintf(d3, sizeof d3, "%s/syn_s2", check_tmpdir());
    synth_report r1, r2, r3;
    REQUIRE(run_synth(d1, 1, 11, 150, 2, &r1) == CF_OK);
    REQUIRE(run_synth(d2, 2, 11, 150, 2, &r2) == CF_OK);
    REQUIRE(run_synth(d3, 2, 12, 150, 2, &r3) == CF_OK);
    CHECK(r1.events > 10000);
    CHECK_EQ_INT(r1.events, r2.events);
    const char *files[] = {"fhir/Patient.000.ndjson", "fhir/Encounter.000.ndjson", "fhir/Condition.000.ndjson",
                           "fhir/Observation.000.ndjson", "fhir/MedicationRequest.000.ndjson",
                           "fhir/Procedure.000.ndjson", "truth/new_onset_hypertension.csv",
                           "truth/new_onset_t2d.csv", "truth/new_onset_ckd.csv", "truth/new_onset_heart_failure.csv",
                           "truth/in_hospital_mortality_fhir.csv", "truth/readmission_30d_fhir.csv"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char a[4400], b[4400], c[4400];
        snprintf(a, sizeof a, "%s/%s", d1, files[i]);
        snprintf(b, sizeof b, "%s/%s", d2, files[i]);
        snprintf(c, sizeof c, "%s/%s", d3, files[i]);
        if (!same_file(a, b)) CHECK_FAIL_("%s differs between 1 and 2 threads", files[i]);
        if (i < 4 && same_file(a, c)) CHECK_FAIL_("%s is the same for seeds 11 and 12", files[i]);
    }
    /* the output folder is not overwritten */
    synth_report r4;
    synth_options o;
    memset(&o, 0, sizeof o);
    o.patients = 1, o.seed = 1, o.out_dir = d1, o.modules_dir = modules_dir, o.start_year = 2012, o.end_year = 2020,
    o.threads = 1, o.quiet = 1;
    cf_err err = {0};
    CHECK_EQ_INT(synth_run(&o, &r4, &err), CF_EINPUT);
    CHECK_CONTAINS(err.msg, "already exists");
}

/* Calibration of the truth against the realised outcomes. A patient's rows share one future, so
 * they are not independent: the test sums, per patient and task, positives minus probabilities
 * over the rows a task keeps, and compares the total with its cluster-robust standard error
 * (the root of the sum of squared per-patient residuals): within 4, per task and in total. The
 * upper range of predicted risk also holds most of the positives. */
static void test_truth_calibrated(void) {
    sim_world *w = calloc(1, sizeof *w);
    cf_err err = {0};
    REQUIRE(sim_world_init(w, modules_dir, 14245 /* 2009-01-01 */, 16802 /* 2016-01-01 */, 5, 4, &err) == CF_OK);
    synth_patient p;
    memset(&p, 0, sizeof p);
    synth_truth_row *rows = NULL;
    size_t n = 0, cap = 0;
    double res[SYNTH_MAX_TASKS + 1] = {0}, res2[SYNTH_MAX_TASKS + 1] = {0}, pos[SYNTH_MAX_TASKS + 1] = {0};
    double exp_[SYNTH_MAX_TASKS + 1] = {0};
    double top = 0, bottom = 0;
    size_t kept = 0;
    for (uint64_t i = 0; i < 800; i++) {
        n = 0;
        REQUIRE(sim_patient(w, i, &p, &rows, &n, &cap, &err) == CF_OK);
        double r[SYNTH_MAX_TASKS + 1] = {0};
        for (size_t j = 0; j < n; j++) {
            const synth_truth_row *t = &rows[j];
            CHECK(t->p_outcome >= 0 && t->p_outcome <= t->p_followed + 1e-6 && t->p_followed <= 1 + 1e-6);
            if (!t->followed || !(t->p_followed > 0)) continue;
            double q = t->p_outcome / t->p_followed;
            kept++;
            if (q > 0.02) top += t->outcome;
            else bottom += t->outcome;
            r[t->task] += t->outcome - q;
            r[w->n_tasks] += t->outcome - q;
            exp_[t->task] += q, exp_[w->n_tasks] += q;
            pos[t->task] += t->outcome, pos[w->n_tasks] += t->outcome;
        }
        for (size_t k = 0; k <= w->n_tasks; k++) res[k] += r[k], res2[k] += r[k] * r[k];
    }
    synth_patient_free(&p);
    REQUIRE(kept > 5000);
    for (size_t k = 0; k <= w->n_tasks; k++) {
        double se = sqrt(res2[k]);
        fprintf(stderr, "    %-28s expected %.1f positive rows, seen %.0f (cluster-robust se %.1f)\n",
                k < w->n_tasks ? w->task_names[k] : "all", exp_[k], pos[k], se);
        CHECK(fabs(res[k]) < 4 * se + 1);
    }
    CHECK(pos[w->n_tasks] > 100);
    fprintf(stderr, "    positives on rows with probability > 0.02: %.0f, below: %.0f\n", top, bottom);
    CHECK(top > bottom);
    free(rows);
    free(w);
}

int main(void) {
    snprintf(modules_dir, sizeof modules_dir, "%s/data/synth/modules", check_root());
    RUN(test_rng_streams);
    RUN(test_shipped_modules);
    RUN(test_module_errors);
    RUN(test_module_resolution);
    RUN(test_same_bytes_any_threads);
    RUN(test_truth_calibrated);
    return check_summary();
}
