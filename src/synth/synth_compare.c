/* The realism report (see synth_compare.h). One pass over each store's events gathers what the
 * measures need (per code: patients carrying it; per subject: birth, sex, first and last events,
 * deaths, stays paired by source record); a second pass samples the numeric values of the codes
 * both stores have (a reservoir of at most VALUES_CAP per code, so memory stays bounded for any
 * store). The thresholds that flag a difference are stated where they are applied and in
 * docs/SYNTH.md: a ratio beyond 1.3 (or below 1/1.3) for rates and shares, medians apart by more
 * than a quarter of the real store's interquartile range for distributions, a factor of 2 for a
 * code's share of patients. */
#include "synth/synth_compare.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "synth/rng.h"

#define US_PER_DAY 86400e6
#define YEAR_DAYS 365.25
#define VALUES_CAP 4000
#define TOP_CODES 25
#define TOP_VALUES 20
#define RATIO_FLAG 1.3

enum { K_ADM = 1, K_DIS = 2, K_DIED_DIS = 4, K_DEATH = 8, K_ICU = 16, K_BIRTH = 32, K_MALE = 64, K_GENDER = 128 };

typedef struct {
    double *v;
    size_t n, cap;
} dvec;

static int dpush(dvec *d, double x) {
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 256;
        double *v = realloc(d->v, cap * sizeof *v);
        if (!v) return -1;
        d->v = v, d->cap = cap;
    }
    d->v[d->n++] = x;
    return 0;
}

typedef struct {
    const store *s;
    uint8_t *kind;         /* (C) K_* bits of each code */
    uint32_t *patients;    /* (C) patients carrying the code */
    uint64_t *numeric;     /* (C) events with a numeric value */
    dvec ages, epp, los;
    double years, deaths, male, gendered;
    uint64_t adm, adm_died, adm_icu, dis_alive, readmit;
} prof;

static int has_prefix(const char *s, const char *p) { return !strncmp(s, p, strlen(p)); }

static uint8_t classify(const char *c) {
    uint8_t k = 0;
    if (has_prefix(c, "HOSPITAL_ADMISSION//") || has_prefix(c, "ENCOUNTER_START//IMP") || !strcmp(c, "VISIT//IP") ||
        !strcmp(c, "VISIT//ERIP"))
        k |= K_ADM;
    if (has_prefix(c, "HOSPITAL_DISCHARGE//") || has_prefix(c, "ENCOUNTER_END//IMP") || !strcmp(c, "VISIT_END//IP") ||
        !strcmp(c, "VISIT_END//ERIP"))
        k |= K_DIS;
    if (!strcmp(c, "HOSPITAL_DISCHARGE//DIED")) k |= K_DIED_DIS;
    if (!strcmp(c, "MEDS_DEATH") || !strcmp(c, "HOSPITAL_DEATH")) k |= K_DEATH;
    if (has_prefix(c, "ICU_ADMISSION//") || !strcmp(c, "SNOMED//305351004")) k |= K_ICU;
    if (!strcmp(c, "MEDS_BIRTH")) k |= K_BIRTH;
    if (has_prefix(c, "GENDER//")) k |= K_GENDER;
    if (!strcmp(c, "GENDER//M") || !strcmp(c, "GENDER//MALE")) k |= K_MALE;
    return k;
}

typedef struct {
    int64_t a, d;
    int died;
} stay;

static int cmp_stay(const void *x, const void *y) {
    const stay *a = x, *b = y;
    return (a->a > b->a) - (a->a < b->a);
}

static int profile(const store *s, prof *p, cf_err *err) {
    memset(p, 0, sizeof *p);
    p->s = s;
    size_t C = (size_t)s->n_codes;
    p->kind = calloc(C ? C : 1, 1);
    p->patients = calloc(C ? C : 1, sizeof *p->patients);
    p->numeric = calloc(C ? C : 1, sizeof *p->numeric);
    uint32_t *last = calloc(C ? C : 1, sizeof *last);
    stay *st = NULL;
    size_t cap_st = 0;
    int rc = CF_OK;
    if (!p->kind || !p->patients || !p->numeric || !last) {
        rc = cf_fail(err, CF_EINTERNAL, "out of memory");
        goto done;
    }
    for (size_t c = 0; c < C; c++) p->kind[c] = classify(store_code_str(s, (uint32_t)c));
    for (uint64_t k = 0; k < s->n_subjects; k++) {
        uint64_t a = s->subject_start[k], b = s->subject_start[k + 1];
        int64_t birth = TIME_NULL, first = TIME_NULL, lastt = TIME_NULL, death = TIME_NULL;
        int male = 0, gendered = 0;
        size_t n_st = 0;
        for (uint64_t i = a; i < b; i++) {
            uint32_t c = s->code[i];
            uint8_t kd = p->kind[c];
            if (last[c] != (uint32_t)(k + 1)) last[c] = (uint32_t)(k + 1), p->patients[c]++;
            if (!isnan(s->numeric[i])) p->numeric[c]++;
            if (kd & K_GENDER) gendered = 1, male |= (kd & K_MALE) != 0;
            int64_t t = s->time[i];
            if (t == TIME_NULL) continue;
            if (kd & K_BIRTH) {
                if (birth == TIME_NULL) birth = t;
                continue;
            }
            if (kd & K_DEATH && death == TIME_NULL) death = t;
            if (first == TIME_NULL) first = t;
            lastt = t;
            if (!(kd & K_ADM)) continue;
            /* the stay: this admission's discharge is the discharge event of the same record */
            for (uint64_t j = i + 1; j < b; j++) {
                if (!(p->kind[s->code[j]] & K_DIS) || s->prov[j] != s->prov[i]) continue;
                int64_t d = s->time[j];
                if (d == TIME_NULL || d < t) break;
                int died = (p->kind[s->code[j]] & K_DIED_DIS) != 0, icu = 0;
                for (uint64_t q = i + 1; q < b; q++) {
                    int64_t tq = s->time[q];
                    if (tq == TIME_NULL) continue;
                    if (tq > d + 3600 * (int64_t)1000000) break;
                    uint8_t kq = p->kind[s->code[q]];
                    if ((kq & K_DEATH) && tq >= t) died = 1;
                    if ((kq & K_ICU) && tq > t && tq <= d) icu = 1;
                }
                if (n_st == cap_st) {
                    size_t nc = cap_st ? cap_st * 2 : 16;
                    stay *x = realloc(st, nc * sizeof *x);
                    if (!x) {
                        rc = cf_fail(err, CF_EINTERNAL, "out of memory");
                        goto done;
                    }
                    st = x, cap_st = nc;
                }
                st[n_st++] = (stay){t, d, died};
                p->adm++;
                p->adm_died += died;
                p->adm_icu += icu;
                if (dpush(&p->los, (double)(d - t) / US_PER_DAY)) {
                    rc = cf_fail(err, CF_EINTERNAL, "out of memory");
                    goto done;
                }
                break;
            }
        }
        if (n_st) qsort(st, n_st, sizeof *st, cmp_stay); /* st is NULL for a patient without stays: qsort(NULL, 0) is undefined */
        for (size_t x = 0; x < n_st; x++) {
            if (st[x].died) continue;
            p->dis_alive++;
            for (size_t y = 0; y < n_st; y++)
                if (st[y].a > st[x].d && st[y].a <= st[x].d + (int64_t)(30 * US_PER_DAY)) {
                    p->readmit++;
                    break;
                }
        }
        p->male += male, p->gendered += gendered;
        if (dpush(&p->epp, (double)(b - a))) {
            rc = cf_fail(err, CF_EINTERNAL, "out of memory");
            goto done;
        }
        if (first != TIME_NULL) {
            double yrs = (double)(lastt - first) / US_PER_DAY / YEAR_DAYS;
            p->years += yrs > 1.0 / 12 ? yrs : 1.0 / 12;
            if (birth != TIME_NULL && dpush(&p->ages, (double)(first - birth) / US_PER_DAY / YEAR_DAYS)) {
                rc = cf_fail(err, CF_EINTERNAL, "out of memory");
                goto done;
            }
        }
        if (death != TIME_NULL) p->deaths++;
    }
done:
    free(last);
    free(st);
    return rc;
}

static void prof_free(prof *p) {
    CF_FREE_ALL(p->kind, p->patients, p->numeric, p->ages.v, p->epp.v, p->los.v);
}

static int cmp_double(const void *x, const void *y) {
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

/* quantile q of v (sorted in place); NaN when empty */
static double quant(dvec *v, double q) {
    if (!v->n) return NAN;
    qsort(v->v, v->n, sizeof *v->v, cmp_double);
    size_t i = (size_t)(q * (double)v->n);
    return v->v[i < v->n ? i : v->n - 1];
}

/* ------------------------------------------------------------------ report */

static cJSON *num(double x) { return isfinite(x) ? cJSON_CreateNumber(x) : cJSON_CreateNull(); }

static void differ(cJSON *diffs, const char *name, double g, double r) {
    char line[512];
    if (r != 0 && isfinite(g / r)) snprintf(line, sizeof line, "%s: %.3g generated, %.3g real (x%.2f)", name, g, r, g / r);
    else snprintf(line, sizeof line, "%s: %.3g generated, %.3g real", name, g, r);
    cJSON_AddItemToArray(diffs, cJSON_CreateString(line));
}

/* a rate or share: flagged when the ratio lies beyond 1.3 either way (or one side is zero) */
static void measure(cJSON *arr, cJSON *diffs, const char *name, double g, double r, const char *note) {
    int d = isfinite(g) && isfinite(r) && (r > 0 ? (g / r > RATIO_FLAG || g / r < 1 / RATIO_FLAG) : g > 0);
    cJSON *x = cJSON_CreateObject();
    cJSON_AddStringToObject(x, "name", name);
    cJSON_AddItemToObject(x, "generated", num(g));
    cJSON_AddItemToObject(x, "real", num(r));
    cJSON_AddBoolToObject(x, "differs", d);
    if (note) cJSON_AddStringToObject(x, "note", note);
    cJSON_AddItemToArray(arr, x);
    if (d) differ(diffs, name, g, r);
}

/* a distribution: flagged when the medians lie more than a quarter of the real interquartile
 * range apart (or, with no spread, more than 20% apart) */
static int dist_differs(const double *g, const double *r) {
    double iqr = r[4] - r[3];
    if (!isfinite(g[1]) || !isfinite(r[1])) return 0;
    if (iqr > 0) return fabs(g[1] - r[1]) > 0.25 * iqr;
    return fabs(g[1] - r[1]) > 0.2 * fabs(r[1]);
}

static void quantiles(cJSON *arr, cJSON *diffs, const char *name, dvec *gv, dvec *rv, const char *unit) {
    double g[5] = {quant(gv, .1), quant(gv, .5), quant(gv, .9), quant(gv, .25), quant(gv, .75)};
    double r[5] = {quant(rv, .1), quant(rv, .5), quant(rv, .9), quant(rv, .25), quant(rv, .75)};
    int d = dist_differs(g, r);
    cJSON *x = cJSON_CreateObject();
    cJSON_AddStringToObject(x, "name", name);
    cJSON *a = cJSON_AddArrayToObject(x, "generated"), *b = cJSON_AddArrayToObject(x, "real");
    for (int i = 0; i < 3; i++) cJSON_AddItemToArray(a, num(g[i])), cJSON_AddItemToArray(b, num(r[i]));
    cJSON_AddBoolToObject(x, "differs", d);
    cJSON_AddItemToArray(arr, x);
    if (d) {
        char line[512];
        snprintf(line, sizeof line, "%s: median %.3g%s [p10-p90 %.3g-%.3g] generated, %.3g%s [%.3g-%.3g] real", name, g[1],
                 unit, g[0], g[2], r[1], unit, r[0], r[2]);
        cJSON_AddItemToArray(diffs, cJSON_CreateString(line));
    }
}

typedef struct {
    uint32_t code;
    double share;
} code_share;

static int cmp_share(const void *x, const void *y) {
    const code_share *a = x, *b = y;
    if (a->share != b->share) return a->share > b->share ? -1 : 1;
    return (a->code > b->code) - (a->code < b->code);
}

/* codes sorted by share of patients, most common first (caller frees) */
static code_share *ranked(const prof *p, size_t *n) {
    size_t C = (size_t)p->s->n_codes;
    code_share *v = malloc((C ? C : 1) * sizeof *v);
    if (!v) return NULL;
    for (size_t c = 0; c < C; c++) v[c] = (code_share){(uint32_t)c, p->s->n_subjects ? (double)p->patients[c] / (double)p->s->n_subjects : 0};
    qsort(v, C, sizeof *v, cmp_share);
    *n = C;
    return v;
}

static double share_of(const prof *p, const char *code) {
    int64_t c = store_find_code(p->s, code);
    return c >= 0 && p->s->n_subjects ? (double)p->patients[c] / (double)p->s->n_subjects : 0;
}

/* numeric values of code c (reservoir of VALUES_CAP, deterministic) */
static int sample_values(const store *s, uint32_t c, dvec *out) {
    synth_rng r;
    synth_rng_seed(&r, 0x76616c756573ULL, c, 0, 0);
    uint64_t seen = 0;
    for (uint64_t i = 0; i < s->n_events; i++) {
        if (s->code[i] != c || isnan(s->numeric[i])) continue;
        seen++;
        if (out->n < VALUES_CAP) {
            if (dpush(out, s->numeric[i])) return -1;
        } else {
            uint64_t j = synth_next(&r) % seen;
            if (j < VALUES_CAP) out->v[j] = s->numeric[i];
        }
    }
    return 0;
}

const char *synth_compare_layout(const store *s) {
    uint64_t mimic = 0, omop = 0, fhir = 0;
    for (uint64_t c = 0; c < s->n_codes; c++) {
        const char *x = store_code_str(s, (uint32_t)c);
        if (has_prefix(x, "HOSPITAL_ADMISSION//") || has_prefix(x, "LAB//")) mimic += s->code_count[c];
        else if (has_prefix(x, "VISIT//")) omop += s->code_count[c];
        else if (has_prefix(x, "ENCOUNTER_START//")) fhir += s->code_count[c];
    }
    if (mimic > omop && mimic > fhir) return "mimic-csv";
    if (omop > fhir) return "omop-csv";
    return "fhir-ndjson";
}

int synth_compare(const store *gen, const store *real, const char *gen_label, const char *real_label, cJSON **out,
                  cf_err *err) {
    prof P[2];
    memset(P, 0, sizeof P);
    code_share *rk[2] = {NULL, NULL};
    size_t nrk[2] = {0, 0};
    cJSON *root = NULL;
    int rc;
    if ((rc = profile(gen, &P[0], err)) || (rc = profile(real, &P[1], err))) goto done;
    rk[0] = ranked(&P[0], &nrk[0]);
    rk[1] = ranked(&P[1], &nrk[1]);
    root = cJSON_CreateObject();
    if (!rk[0] || !rk[1] || !root) {
        rc = cf_fail(err, CF_EINTERNAL, "out of memory");
        goto done;
    }
    const char *labels[2] = {gen_label, real_label};
    const char *sides[2] = {"generated", "real"};
    for (int k = 0; k < 2; k++) {
        cJSON *x = cJSON_AddObjectToObject(root, sides[k]);
        cJSON_AddStringToObject(x, "label", labels[k]);
        cJSON_AddNumberToObject(x, "patients", (double)P[k].s->n_subjects);
        cJSON_AddNumberToObject(x, "events", (double)P[k].s->n_events);
        cJSON_AddNumberToObject(x, "distinct_codes", (double)P[k].s->n_codes);
        cJSON_AddStringToObject(x, "layout", synth_compare_layout(P[k].s));
    }
    cJSON *diffs = cJSON_CreateArray(), *ms = cJSON_AddArrayToObject(root, "measures");
    cJSON *qs = cJSON_AddArrayToObject(root, "distributions");
    double g, r;
    measure(ms, diffs, "male share", P[0].gendered ? P[0].male / P[0].gendered : NAN, P[1].gendered ? P[1].male / P[1].gendered : NAN, NULL);
    measure(ms, diffs, "record years per patient (mean)", P[0].years / fmax((double)gen->n_subjects, 1),
            P[1].years / fmax((double)real->n_subjects, 1), "first to last event");
    measure(ms, diffs, "events per patient (mean)", (double)gen->n_events / fmax((double)gen->n_subjects, 1),
            (double)real->n_events / fmax((double)real->n_subjects, 1), NULL);
    measure(ms, diffs, "deaths per 100 patient-years", 100 * P[0].deaths / fmax(P[0].years, 1e-9),
            100 * P[1].deaths / fmax(P[1].years, 1e-9), NULL);
    measure(ms, diffs, "admissions per 100 patient-years", 100 * (double)P[0].adm / fmax(P[0].years, 1e-9),
            100 * (double)P[1].adm / fmax(P[1].years, 1e-9), "a hospital cohort's rate is high by design");
    g = P[0].adm ? (double)P[0].adm_died / (double)P[0].adm : NAN, r = P[1].adm ? (double)P[1].adm_died / (double)P[1].adm : NAN;
    measure(ms, diffs, "in-hospital deaths per admission", g, r, NULL);
    g = P[0].adm ? (double)P[0].adm_icu / (double)P[0].adm : NAN, r = P[1].adm ? (double)P[1].adm_icu / (double)P[1].adm : NAN;
    measure(ms, diffs, "intensive care per admission", g, r, NULL);
    g = P[0].dis_alive ? (double)P[0].readmit / (double)P[0].dis_alive : NAN;
    r = P[1].dis_alive ? (double)P[1].readmit / (double)P[1].dis_alive : NAN;
    measure(ms, diffs, "readmissions within 30 days per discharge alive", g, r, NULL);
    quantiles(qs, diffs, "age at the first recorded event (years)", &P[0].ages, &P[1].ages, "");
    quantiles(qs, diffs, "events per patient", &P[0].epp, &P[1].epp, "");
    quantiles(qs, diffs, "length of stay (days)", &P[0].los, &P[1].los, "");

    /* codes: the most common of each side, with both shares; flagged beyond a factor of 2 */
    cJSON *codes = cJSON_AddObjectToObject(root, "codes");
    uint64_t shared_ev = 0;
    size_t shared = 0;
    for (size_t c = 0; c < real->n_codes; c++)
        if (store_find_code(gen, store_code_str(real, (uint32_t)c)) >= 0) shared++, shared_ev += real->code_count[c];
    cJSON_AddNumberToObject(codes, "shared", (double)shared);
    cJSON_AddNumberToObject(codes, "real_events_with_a_shared_code", real->n_events ? (double)shared_ev / (double)real->n_events : 0);
    cJSON *top = cJSON_AddArrayToObject(codes, "top");
    int flagged_codes = 0;
    for (int k = 0; k < 2; k++)
        for (size_t i = 0, shown = 0; i < nrk[k] && shown < TOP_CODES; i++) {
            const char *code = store_code_str(P[k].s, rk[k][i].code);
            if (has_prefix(code, "PHI//")) continue; /* identifiers handed to de-identification, not clinical codes */
            int dup = 0; /* listed already among the other side's most common */
            const cJSON *y;
            cJSON_ArrayForEach(y, top) dup |= !strcmp(cJSON_GetObjectItem(y, "code")->valuestring, code);
            if (dup) continue;
            shown++;
            double sg = share_of(&P[0], code), sr = share_of(&P[1], code);
            int d = (sg > 2 * sr || sr > 2 * sg) && fmax(sg, sr) >= 0.01;
            cJSON *x = cJSON_CreateObject();
            cJSON_AddStringToObject(x, "code", code);
            cJSON_AddNumberToObject(x, "generated", sg);
            cJSON_AddNumberToObject(x, "real", sr);
            cJSON_AddBoolToObject(x, "differs", d);
            cJSON_AddItemToArray(top, x);
            if (d && flagged_codes++ < 15) {
                char line[512];
                snprintf(line, sizeof line, "code %s: in %.1f%% of generated patients, %.1f%% of real ones", code, 100 * sg, 100 * sr);
                cJSON_AddItemToArray(diffs, cJSON_CreateString(line));
            }
        }
    if (flagged_codes > 15) {
        char line[128];
        snprintf(line, sizeof line, "... and %d more codes (see the code table)", flagged_codes - 15);
        cJSON_AddItemToArray(diffs, cJSON_CreateString(line));
    }

    /* values of the numeric codes both sides have, the real side's most frequent first */
    cJSON *vals = cJSON_AddArrayToObject(root, "values");
    size_t shown = 0;
    for (size_t i = 0; i < nrk[1] && shown < TOP_VALUES; i++) {
        uint32_t cr = rk[1][i].code;
        const char *code = store_code_str(real, cr);
        int64_t cg = store_find_code(gen, code);
        if (cg < 0 || P[1].numeric[cr] < 20 || P[0].numeric[cg] < 20) continue;
        dvec vg = {0}, vr = {0};
        if (sample_values(gen, (uint32_t)cg, &vg) || sample_values(real, cr, &vr)) {
            free(vg.v), free(vr.v);
            rc = cf_fail(err, CF_EINTERNAL, "out of memory");
            goto done;
        }
        quantiles(vals, diffs, code, &vg, &vr, "");
        cJSON_AddNumberToObject(cJSON_GetArrayItem(vals, cJSON_GetArraySize(vals) - 1), "generated_n", (double)P[0].numeric[cg]);
        cJSON_AddNumberToObject(cJSON_GetArrayItem(vals, cJSON_GetArraySize(vals) - 1), "real_n", (double)P[1].numeric[cr]);
        free(vg.v), free(vr.v);
        shown++;
    }
    cJSON_AddItemToObject(root, "differences", diffs);
    rc = CF_OK;
done:
    for (int k = 0; k < 2; k++) prof_free(&P[k]), free(rk[k]);
    if (rc) {
        cJSON_Delete(root);
        root = NULL;
    }
    *out = root;
    return rc;
}

static void cell3(char *buf, size_t cap, const cJSON *a) {
    const cJSON *x0 = cJSON_GetArrayItem(a, 0), *x1 = cJSON_GetArrayItem(a, 1), *x2 = cJSON_GetArrayItem(a, 2);
    if (!cJSON_IsNumber(x1)) {
        snprintf(buf, cap, "-");
        return;
    }
    snprintf(buf, cap, "%.3g [%.3g-%.3g]", x1->valuedouble, x0->valuedouble, x2->valuedouble);
}

static void cell(char *buf, size_t cap, const cJSON *x) {
    if (cJSON_IsNumber(x)) snprintf(buf, cap, "%.3g", x->valuedouble);
    else snprintf(buf, cap, "-");
}

static void pct(char *buf, size_t cap, const cJSON *x) { snprintf(buf, cap, "%.1f%%", 100 * x->valuedouble); }

/* One row of the table: x's name (printed with name_fmt), its generated and real cells (each
 * written by cellf), and a mark where they differ. */
static void compare_row(FILE *f, const char *name_fmt, const char *name_key, const cJSON *x,
                        void (*cellf)(char *, size_t, const cJSON *)) {
    char a[96], b[96];
    cellf(a, sizeof a, cJSON_GetObjectItem(x, "generated"));
    cellf(b, sizeof b, cJSON_GetObjectItem(x, "real"));
    fprintf(f, name_fmt, cJSON_GetObjectItem(x, name_key)->valuestring);
    fprintf(f, " %24s %24s%s\n", a, b, cJSON_IsTrue(cJSON_GetObjectItem(x, "differs")) ? "  <- differs" : "");
}

void synth_compare_print(const cJSON *rep, FILE *f) {
    const cJSON *gs = cJSON_GetObjectItem(rep, "generated"), *rs = cJSON_GetObjectItem(rep, "real");
    fprintf(f, "generated: %s (%s): %.0f patients, %.0f events, %.0f codes\n", cJSON_GetObjectItem(gs, "label")->valuestring,
            cJSON_GetObjectItem(gs, "layout")->valuestring, cJSON_GetObjectItem(gs, "patients")->valuedouble,
            cJSON_GetObjectItem(gs, "events")->valuedouble, cJSON_GetObjectItem(gs, "distinct_codes")->valuedouble);
    fprintf(f, "real:      %s (%s): %.0f patients, %.0f events, %.0f codes\n\n", cJSON_GetObjectItem(rs, "label")->valuestring,
            cJSON_GetObjectItem(rs, "layout")->valuestring, cJSON_GetObjectItem(rs, "patients")->valuedouble,
            cJSON_GetObjectItem(rs, "events")->valuedouble, cJSON_GetObjectItem(rs, "distinct_codes")->valuedouble);
    fprintf(f, "%-50s %24s %24s\n", "", "generated", "real");
    const cJSON *x;
    cJSON_ArrayForEach(x, cJSON_GetObjectItem(rep, "measures")) compare_row(f, "%-50s", "name", x, cell);
    fprintf(f, "median [p10-p90]:\n");
    cJSON_ArrayForEach(x, cJSON_GetObjectItem(rep, "distributions")) compare_row(f, "  %-48s", "name", x, cell3);
    const cJSON *codes = cJSON_GetObjectItem(rep, "codes");
    fprintf(f, "\ncodes: %.0f of the real store's codes occur in the generated one, carrying %.0f%% of its events\n",
            cJSON_GetObjectItem(codes, "shared")->valuedouble,
            100 * cJSON_GetObjectItem(codes, "real_events_with_a_shared_code")->valuedouble);
    fprintf(f, "share of patients with the code (the most common of each side):\n");
    cJSON_ArrayForEach(x, cJSON_GetObjectItem(codes, "top")) compare_row(f, "  %-48.48s", "code", x, pct);
    fprintf(f, "values of the numeric codes both have, median [p10-p90]:\n");
    cJSON_ArrayForEach(x, cJSON_GetObjectItem(rep, "values")) compare_row(f, "  %-48.48s", "name", x, cell3);
    const cJSON *d = cJSON_GetObjectItem(rep, "differences");
    fprintf(f, "\nwhere they differ (%d):\n", cJSON_GetArraySize(d));
    cJSON_ArrayForEach(x, d) fprintf(f, "  - %s\n", x->valuestring);
    fprintf(f, "margins: rates and shares beyond x%.1f either way; distributions whose medians lie more than a\n"
               "quarter of the real interquartile range apart; codes whose share of patients differs by a factor\n"
               "of 2 (and reaches 1%% on one side). A real store that is not a general population (a hospital\n"
               "or ICU cohort) differs by design.\n",
            RATIO_FLAG);
}
