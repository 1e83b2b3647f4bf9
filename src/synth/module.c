/* Disease module files: parsing, validation and cross-module resolution (format: docs/SYNTH.md).
 *
 * Every key is checked as it is read (numbers parse completely and lie in their range, codes
 * have the right shape, sections allow only their keys), and every message names the file and
 * line, so a clinician editing a module is told exactly what to fix. After all files are read,
 * references to other modules are resolved and the markers ordered; a reference to a module that
 * does not exist, or markers that depend on each other in a cycle, are errors too. */
#include "synth/module.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { SEC_NONE = 0, SEC_MODULE, SEC_CONDITION, SEC_MARKER, SEC_DIAGNOSIS, SEC_STAGE, SEC_TREATMENT,
       SEC_ACUTE };
static const char *const sec_names[] = {"", "module", "condition", "marker", "diagnosis", "stage",
                                        "treatment", "acute"};
#define N_SECS (sizeof sec_names / sizeof sec_names[0])

static char *trim(char *s) {
    while (isspace((unsigned char)*s)) s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1])) s[--n] = 0;
    return s;
}

static int bad(cf_err *err, const char *path, int line, const char *fmt, const char *a, const char *b) {
    char msg[512];
    snprintf(msg, sizeof msg, fmt, a ? a : "", b ? b : "");
    return cf_fail(err, CF_EINPUT, "%s:%d: %s", path, line, msg);
}

static int parse_num(const char *v, double lo, double hi, double *out) {
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (end == v || errno || !isfinite(x)) return -1;
    while (isspace((unsigned char)*end)) end++;
    if (*end) return -1;
    if (x < lo || x > hi) return -1;
    *out = x;
    return 0;
}

/* "CODE | display": the code must look like one of the system's codes. */
static int parse_code(const char *v, const char *sys, synth_code *c) {
    const char *bar = strchr(v, '|');
    if (!bar) return -1;
    size_t n = (size_t)(bar - v);
    while (n && isspace((unsigned char)v[n - 1])) n--;
    if (n == 0 || n >= sizeof c->code) return -1;
    for (size_t i = 0; i < n; i++) {
        char ch = v[i];
        int ok;
        if (!strcmp(sys, "snomed") || !strcmp(sys, "rxnorm")) ok = isdigit((unsigned char)ch);
        else if (!strcmp(sys, "loinc")) ok = isdigit((unsigned char)ch) || ch == '-';
        else if (!strcmp(sys, "icd10pcs")) ok = isdigit((unsigned char)ch) || (isupper((unsigned char)ch) && ch != 'I' && ch != 'O');
        else ok = isalnum((unsigned char)ch) || ch == '.'; /* icd10 */
        if (!ok) return -1;
    }
    if (!strcmp(sys, "loinc") && (n < 3 || v[n - 2] != '-' || !isdigit((unsigned char)v[n - 1]))) return -1;
    if (!strcmp(sys, "icd10") && (!isalpha((unsigned char)v[0]) || n < 3)) return -1;
    if (!strcmp(sys, "icd10pcs") && n != 7) return -1; /* ICD-10-PCS: always seven characters */
    memcpy(c->code, v, n);
    c->code[n] = 0;
    const char *d = bar + 1;
    while (isspace((unsigned char)*d)) d++;
    if (!*d || strlen(d) >= sizeof c->display || strchr(d, '"') || strchr(d, '\\')) return -1;
    snprintf(c->display, sizeof c->display, "%s", d);
    return 0;
}

static int parse_name(const char *v, char *out, size_t cap) {
    size_t n = strlen(v);
    if (!n || n >= cap) return -1;
    for (size_t i = 0; i < n; i++)
        if (!(isalnum((unsigned char)v[i]) || v[i] == '_')) return -1;
    memcpy(out, v, n + 1);
    return 0;
}

/* "COVARIATE COEF [above|below REF]" */
static int parse_effect(const char *v, synth_effect *e) {
    char cov[64], kw[16];
    double coef, ref;
    char tail[8];
    memset(e, 0, sizeof *e);
    e->module = -1;
    int n = sscanf(v, "%63s %lf %15s %lf %7s", cov, &coef, kw, &ref, tail);
    if (n != 2 && n != 4) return -1;
    if (!isfinite(coef) || fabs(coef) > 1e4) return -1;
    e->coef = coef;
    if (n == 4) {
        if (!strcmp(kw, "above")) e->ref_kind = SYN_REF_ABOVE;
        else if (!strcmp(kw, "below")) e->ref_kind = SYN_REF_BELOW;
        else return -1;
        if (!isfinite(ref)) return -1;
        e->ref = ref;
    }
    static const char *const plain[] = {"age", "male", "black", "hispanic", "asian", "bmi", "smoker",
                                        "former_smoker"};
    for (int i = 0; i < 8; i++)
        if (!strcmp(cov, plain[i])) {
            e->cov = i;
            return 0;
        }
    static const struct { const char *p; int cov; } pre[] = {
        {"marker:", SYN_COV_MARKER}, {"dx:", SYN_COV_DX}, {"history:", SYN_COV_HISTORY},
        {"treated:", SYN_COV_TREATED}};
    for (int i = 0; i < 4; i++) {
        size_t pl = strlen(pre[i].p);
        if (!strncmp(cov, pre[i].p, pl)) {
            e->cov = pre[i].cov;
            return parse_name(cov + pl, e->ref_name, sizeof e->ref_name);
        }
    }
    return -1;
}

/* Splits a copy of v (in buf) at its first n - 1 '|' into n trimmed parts; -1 with fewer bars. */
static int split_bars(const char *v, char *buf, size_t cap, char **parts, int n) {
    snprintf(buf, cap, "%s", v);
    char *p = buf;
    for (int k = 0; k < n - 1; k++) {
        char *bar = strchr(p, '|');
        if (!bar) return -1;
        *bar = 0;
        parts[k] = trim(p);
        p = bar + 1;
    }
    parts[n - 1] = trim(p);
    return 0;
}

/* "THRESHOLD | SNOMED | ICD10 | display" */
static int parse_stage(const char *v, synth_stage *s) {
    char buf[512], *parts[4];
    if (split_bars(v, buf, sizeof buf, parts, 4)) return -1;
    if (parse_num(parts[0], -1e6, 1e6, &s->threshold)) return -1;
    char tmp[256];
    snprintf(tmp, sizeof tmp, "%s | %s", parts[1], parts[3]);
    if (parse_code(tmp, "snomed", &s->snomed)) return -1;
    snprintf(tmp, sizeof tmp, "%s | %s", parts[2], parts[3]);
    if (parse_code(tmp, "icd10", &s->icd10)) return -1;
    return 0;
}

/* "LOINC | display | unit | mean | per_severity | sd | lo | hi | decimals" */
static int parse_lab(const char *v, synth_lab *l) {
    char buf[512], *parts[9];
    if (split_bars(v, buf, sizeof buf, parts, 9)) return -1;
    char tmp[256];
    snprintf(tmp, sizeof tmp, "%s | %s", parts[0], parts[1]);
    if (parse_code(tmp, "loinc", &l->loinc)) return -1;
    if (!parts[2][0] || strlen(parts[2]) >= sizeof l->unit || strchr(parts[2], '"')) return -1;
    snprintf(l->unit, sizeof l->unit, "%s", parts[2]);
    double d;
    if (parse_num(parts[3], -1e6, 1e6, &l->mean) || parse_num(parts[4], -1e6, 1e6, &l->per_severity) ||
        parse_num(parts[5], 0, 1e6, &l->sd) || parse_num(parts[6], -1e6, 1e6, &l->lo) ||
        parse_num(parts[7], -1e6, 1e6, &l->hi) || parse_num(parts[8], 0, 6, &d) || l->hi <= l->lo)
        return -1;
    l->decimals = (int)d;
    return 0;
}

typedef struct {
    const char *key;
    int sec;
    char kind; /* n number, c code, s string/name, e effect, h hazard effect, t stage, d drug, l lab */
    size_t off;
    double lo, hi;
    const char *sys;
} keydef;

#define OFF(f) offsetof(synth_module, f)
static const keydef keys[] = {
    {"name", SEC_MODULE, 'N', OFF(name), 0, 0, NULL},
    {"title", SEC_MODULE, 's', OFF(title), 0, 0, NULL},
    {"kind", SEC_MODULE, 'k', 0, 0, 0, NULL},
    {"min_age", SEC_MODULE, 'n', OFF(min_age), 0, 120, NULL},
    {"source", SEC_MODULE, 'x', 0, 0, 0, NULL},
    {"task", SEC_MODULE, 'T', OFF(task), 0, 0, NULL},
    {"snomed", SEC_CONDITION, 'c', OFF(snomed), 0, 0, "snomed"},
    {"icd10", SEC_CONDITION, 'c', OFF(icd10), 0, 0, "icd10"},
    {"name", SEC_MARKER, 'M', OFF(marker_name), 0, 0, NULL},
    {"loinc", SEC_MARKER, 'L', OFF(loinc), 0, 0, "loinc"},
    {"unit", SEC_MARKER, 'u', OFF(unit), 0, 0, NULL},
    {"decimals", SEC_MARKER, 'i', OFF(decimals), 0, 6, NULL},
    {"scale", SEC_MARKER, 'S', 0, 0, 0, NULL},
    {"mean", SEC_MARKER, 'n', OFF(mean), -1e6, 1e6, NULL},
    {"between_sd", SEC_MARKER, 'n', OFF(between_sd), 0, 1e6, NULL},
    {"slope_sd", SEC_MARKER, 'n', OFF(slope_sd), 0, 1e6, NULL},
    {"noise_sd", SEC_MARKER, 'n', OFF(noise_sd), 0, 1e6, NULL},
    {"min", SEC_MARKER, 'n', OFF(lo), -1e6, 1e6, NULL},
    {"max", SEC_MARKER, 'n', OFF(hi), -1e6, 1e6, NULL},
    {"effect", SEC_MARKER, 'e', 0, 0, 0, NULL},
    {"direction", SEC_DIAGNOSIS, 'D', 0, 0, 0, NULL},
    {"threshold", SEC_DIAGNOSIS, 'n', OFF(threshold), -1e6, 1e6, NULL},
    {"screen", SEC_DIAGNOSIS, 'n', OFF(screen), 0, 1, NULL},
    {"monitor", SEC_DIAGNOSIS, 'n', OFF(monitor), 0, 1, NULL},
    {"symptom_rate", SEC_DIAGNOSIS, 'n', OFF(symptom_rate), 0, 100, NULL},
    {"symptom_slope", SEC_DIAGNOSIS, 'n', OFF(symptom_slope), 0, 100, NULL},
    {"rate", SEC_DIAGNOSIS, 'n', OFF(rate), 0, 100, NULL},
    {"effect", SEC_DIAGNOSIS, 'h', 0, 0, 0, NULL},
    {"death_log_hr", SEC_DIAGNOSIS, 'n', OFF(death_log_hr), -5, 5, NULL},
    {"visit_factor", SEC_DIAGNOSIS, 'n', OFF(visit_factor), 0.1, 10, NULL},
    {"stage", SEC_STAGE, 't', 0, 0, 0, NULL},
    {"drug", SEC_TREATMENT, 'd', 0, 0, 0, NULL},
    {"effect", SEC_TREATMENT, 'n', OFF(treat_effect), -1e6, 1e6, NULL},
    {"rate", SEC_ACUTE, 'n', OFF(rate), 0, 100, NULL},
    {"requires", SEC_ACUTE, 'R', OFF(requires_name), 0, 0, NULL},
    {"effect", SEC_ACUTE, 'h', 0, 0, 0, NULL},
    {"admit", SEC_ACUTE, 'n', OFF(admit), 0, 1, NULL},
    {"los_days", SEC_ACUTE, 'n', OFF(los_days), 0.5, 60, NULL},
    {"icu_per_day", SEC_ACUTE, 'n', OFF(icu_per_day), 0, 1, NULL},
    {"death_per_day", SEC_ACUTE, 'n', OFF(death_per_day), 0, 1, NULL},
    {"severity_sd", SEC_ACUTE, 'n', OFF(severity_sd), 0, 5, NULL},
    {"readmission_boost", SEC_ACUTE, 'n', OFF(readmission_boost), 0, 100, NULL},
    {"procedure", SEC_ACUTE, 'c', OFF(procedure), 0, 0, "snomed"},
    {"procedure_prob", SEC_ACUTE, 'n', OFF(procedure_prob), 0, 1, NULL},
    {"procedure_icd10pcs", SEC_ACUTE, 'c', OFF(procedure_pcs), 0, 0, "icd10pcs"},
    {"death_log_hr", SEC_ACUTE, 'n', OFF(death_log_hr), -5, 5, NULL},
    {"drug", SEC_ACUTE, 'd', 0, 0, 0, NULL},
    {"lab", SEC_ACUTE, 'l', 0, 0, 0, NULL},
};
#define N_KEYS (sizeof keys / sizeof keys[0])

int synth_module_parse(synth_module *m, const char *path, const char *text, size_t len, cf_err *err) {
    memset(m, 0, sizeof *m);
    snprintf(m->path, sizeof m->path, "%s", path);
    m->kind = -1;
    m->direction = 1;
    m->visit_factor = 1.0;
    m->readmission_boost = 3.0;
    m->lo = -1e6;
    m->hi = 1e6;
    m->min_age = 18;
    m->severity_sd = 1.0;
    m->requires = -1;
    int sec = SEC_NONE, line = 0, seen_sec[N_SECS] = {0};
    int have_mean = 0, have_threshold = 0;
    const char *p = text, *endp = text + len;
    while (p < endp) {
        const char *nl = memchr(p, '\n', (size_t)(endp - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(endp - p);
        line++;
        char buf[1024];
        if (n >= sizeof buf) return bad(err, path, line, "line longer than 1023 bytes%s%s", NULL, NULL);
        memcpy(buf, p, n);
        buf[n] = 0;
        p = nl ? nl + 1 : endp;
        /* a comment starts a line or follows a space */
        for (char *c = buf; *c; c++)
            if (*c == '#' && (c == buf || isspace((unsigned char)c[-1]))) {
                *c = 0;
                break;
            }
        char *s = trim(buf);
        if (!*s) continue;
        if (*s == '[') {
            char *close = strchr(s, ']');
            if (!close || close[1]) return bad(err, path, line, "a section header is [name]%s%s", NULL, NULL);
            *close = 0;
            char *nm = trim(s + 1);
            int found = -1;
            for (size_t i = 1; i < N_SECS; i++)
                if (!strcmp(nm, sec_names[i])) found = (int)i;
            if (found < 0)
                return bad(err, path, line,
                           "unknown section [%s]; expected module, condition, marker, diagnosis, stage, treatment or acute%s",
                           nm, NULL);
            if (seen_sec[found]) return bad(err, path, line, "section [%s] appears twice%s", nm, NULL);
            seen_sec[found] = 1;
            sec = found;
            continue;
        }
        char *eq = strchr(s, '=');
        if (!eq) return bad(err, path, line, "expected key = value%s%s", NULL, NULL);
        *eq = 0;
        char *key = trim(s), *val = trim(eq + 1);
        if (sec == SEC_NONE) return bad(err, path, line, "key '%s' before any [section]%s", key, NULL);
        if (!*val) return bad(err, path, line, "key '%s' has no value%s", key, NULL);
        const keydef *k = NULL;
        for (size_t i = 0; i < N_KEYS; i++)
            if (keys[i].sec == sec && !strcmp(keys[i].key, key)) k = &keys[i];
        if (!k) return bad(err, path, line, "unknown key '%s' in [%s]", key, sec_names[sec]);
        char *base = (char *)m;
        switch (k->kind) {
        case 'n':
            if (parse_num(val, k->lo, k->hi, (double *)(base + k->off))) {
                char rng[96];
                snprintf(rng, sizeof rng, "a number from %g to %g", k->lo, k->hi);
                return bad(err, path, line, "'%s' must be %s", key, rng);
            }
            if (sec == SEC_MARKER && !strcmp(key, "mean")) have_mean = 1;
            if (sec == SEC_DIAGNOSIS && !strcmp(key, "threshold")) have_threshold = 1;
            break;
        case 'i': {
            double d;
            if (parse_num(val, k->lo, k->hi, &d) || d != floor(d))
                return bad(err, path, line, "'%s' must be a whole number from 0 to 6%s", key, NULL);
            *(int *)(base + k->off) = (int)d;
            break;
        }
        case 'R':
        case 'N':
        case 'M':
            if (parse_name(val, base + k->off, 32))
                return bad(err, path, line, "'%s' must be letters, digits or _ (at most 31)%s", key, NULL);
            if (k->kind == 'M') m->has_marker = 1;
            break;
        case 's':
            if (strlen(val) >= 112 || strchr(val, '"') || strchr(val, '\\'))
                return bad(err, path, line, "'%s' must be under 112 bytes, without quotes or backslashes%s", key, NULL);
            snprintf(base + k->off, 112, "%s", val);
            break;
        case 'u':
            if (strlen(val) >= sizeof m->unit || strchr(val, '"') || strchr(val, '\\') || strchr(val, ' '))
                return bad(err, path, line, "'unit' must be a UCUM unit under 24 bytes without spaces%s%s", NULL, NULL);
            snprintf(m->unit, sizeof m->unit, "%s", val);
            break;
        case 'x': break; /* sources are for readers */
        case 'T':
            if (parse_name(val, m->task, sizeof m->task))
                return bad(err, path, line, "'task' must be a task name (letters, digits, _)%s%s", NULL, NULL);
            break;
        case 'k':
            if (!strcmp(val, "chronic")) m->kind = SYN_CHRONIC;
            else if (!strcmp(val, "acute")) m->kind = SYN_ACUTE;
            else return bad(err, path, line, "'kind' must be chronic or acute%s%s", NULL, NULL);
            break;
        case 'S':
            if (!strcmp(val, "linear")) m->log10_scale = 0;
            else if (!strcmp(val, "log10")) m->log10_scale = 1;
            else return bad(err, path, line, "'scale' must be linear or log10%s%s", NULL, NULL);
            break;
        case 'D':
            if (!strcmp(val, "above")) m->direction = 1;
            else if (!strcmp(val, "below")) m->direction = -1;
            else return bad(err, path, line, "'direction' must be above or below%s%s", NULL, NULL);
            break;
        case 'c':
            if (parse_code(val, k->sys, (synth_code *)(base + k->off)))
                return bad(err, path, line, "'%s' must be a %s code, then | and its display name (no quotes)", key, k->sys);
            break;
        case 'L':
            if (!strcmp(val, "none")) break;
            if (parse_code(val, "loinc", &m->loinc))
                return bad(err, path, line, "'loinc' must be a LOINC code (digits-check digit), then | and its display name, or none%s%s", NULL, NULL);
            m->measured = 1;
            break;
        case 'e':
        case 'h': {
            synth_effect *arr = k->kind == 'e' ? m->effects : m->hazard;
            size_t *cnt = k->kind == 'e' ? &m->n_effects : &m->n_hazard;
            if (*cnt >= SYNTH_MAX_EFFECTS) return bad(err, path, line, "at most 16 effects per section%s%s", NULL, NULL);
            if (parse_effect(val, &arr[*cnt]))
                return bad(err, path, line,
                           "'effect' must be COVARIATE COEFFICIENT [above|below REFERENCE]; covariates: age, male, black, hispanic, asian, bmi, smoker, former_smoker, marker:NAME, dx:NAME, history:NAME, treated:NAME%s%s",
                           NULL, NULL);
            arr[*cnt].line = line;
            (*cnt)++;
            break;
        }
        case 't':
            if (m->n_stages >= SYNTH_MAX_STAGES) return bad(err, path, line, "at most 6 stages%s%s", NULL, NULL);
            if (parse_stage(val, &m->stages[m->n_stages]))
                return bad(err, path, line, "'stage' must be THRESHOLD | SNOMED | ICD10 | display%s%s", NULL, NULL);
            m->n_stages++;
            break;
        case 'd':
            if (m->n_drugs >= SYNTH_MAX_DRUGS) return bad(err, path, line, "at most 4 drugs%s%s", NULL, NULL);
            if (parse_code(val, "rxnorm", &m->drugs[m->n_drugs]))
                return bad(err, path, line, "'drug' must be an RxNorm code, then | and its display name%s%s", NULL, NULL);
            m->n_drugs++;
            break;
        case 'l':
            if (m->n_labs >= SYNTH_MAX_LABS) return bad(err, path, line, "at most 4 labs%s%s", NULL, NULL);
            if (parse_lab(val, &m->labs[m->n_labs]))
                return bad(err, path, line, "'lab' must be LOINC | display | unit | mean | per_severity | sd | min | max | decimals%s%s", NULL, NULL);
            m->n_labs++;
            break;
        }
    }
    /* whole-file checks */
    line = 0;
    if (!m->name[0]) return bad(err, path, line, "[module] needs a name%s%s", NULL, NULL);
    if (m->kind < 0) return bad(err, path, line, "[module] needs kind = chronic or acute%s%s", NULL, NULL);
    if (!m->snomed.code[0] || !m->icd10.code[0])
        return bad(err, path, line, "[condition] needs snomed and icd10 codes%s%s", NULL, NULL);
    if (m->kind == SYN_CHRONIC) {
        if (seen_sec[SEC_ACUTE]) return bad(err, path, line, "a chronic module has no [acute] section%s%s", NULL, NULL);
        if (m->has_marker) {
            if (!have_mean || !have_threshold)
                return bad(err, path, line, "a module with a [marker] needs its mean and a [diagnosis] threshold%s%s", NULL, NULL);
            if (m->lo >= m->hi) return bad(err, path, line, "[marker] min must be below max%s%s", NULL, NULL);
            if (m->measured && !m->unit[0]) return bad(err, path, line, "a measured [marker] needs a unit%s%s", NULL, NULL);
        } else if (m->rate <= 0) {
            return bad(err, path, line, "a chronic module without a [marker] needs a [diagnosis] rate%s%s", NULL, NULL);
        }
        for (size_t i = 1; i < m->n_stages; i++)
            if ((m->stages[i].threshold - m->stages[i - 1].threshold) * m->direction <= 0)
                return bad(err, path, line, "stages must be listed from the mildest, thresholds moving in the diagnosis direction%s%s", NULL, NULL);
    } else {
        if (seen_sec[SEC_MARKER] || seen_sec[SEC_STAGE])
            return bad(err, path, line, "an acute module has no [marker] or [stage] section%s%s", NULL, NULL);
        if (m->rate <= 0) return bad(err, path, line, "an acute module needs an [acute] rate%s%s", NULL, NULL);
        if (m->task[0]) return bad(err, path, line, "only a chronic module names a new-onset task%s%s", NULL, NULL);
        if (m->admit > 0 && m->los_days <= 0)
            return bad(err, path, line, "an acute module that admits needs los_days%s%s", NULL, NULL);
        if (m->procedure_pcs.code[0] && !m->procedure.code[0])
            return bad(err, path, line, "procedure_icd10pcs codes the module's procedure: it needs a procedure%s%s", NULL, NULL);
    }
    return CF_OK;
}

int synth_module_find(const synth_modules *ms, const char *name) {
    for (size_t i = 0; i < ms->n; i++)
        if (!strcmp(ms->m[i].name, name)) return (int)i;
    return -1;
}

static int resolve_list(synth_modules *ms, synth_module *m, synth_effect *e, size_t n, cf_err *err) {
    for (size_t i = 0; i < n; i++) {
        if (e[i].cov < SYN_COV_MARKER) continue;
        int j = -1;
        if (e[i].cov == SYN_COV_MARKER) /* marker:NAME names a marker (or its module) */
            for (size_t k = 0; k < ms->n && j < 0; k++)
                if (ms->m[k].has_marker && !strcmp(ms->m[k].marker_name, e[i].ref_name)) j = (int)k;
        if (j < 0) j = synth_module_find(ms, e[i].ref_name);
        if (j < 0) return bad(err, m->path, e[i].line, "effect names '%s', which no loaded module defines%s", e[i].ref_name, NULL);
        if (e[i].cov == SYN_COV_MARKER && !ms->m[j].has_marker)
            return bad(err, m->path, e[i].line, "marker:%s names a module without a [marker]%s", e[i].ref_name, NULL);
        if (e[i].cov == SYN_COV_HISTORY && ms->m[j].kind != SYN_ACUTE)
            return bad(err, m->path, e[i].line, "history:%s names a module that is not acute%s", e[i].ref_name, NULL);
        if ((e[i].cov == SYN_COV_DX || e[i].cov == SYN_COV_TREATED) && ms->m[j].kind != SYN_CHRONIC)
            return bad(err, m->path, e[i].line, "dx:/treated:%s names a module that is not chronic%s", e[i].ref_name, NULL);
        e[i].module = j;
    }
    return CF_OK;
}

int synth_modules_resolve(synth_modules *ms, cf_err *err) {
    for (size_t i = 0; i < ms->n; i++)
        for (size_t j = 0; j < i; j++)
            if (!strcmp(ms->m[i].name, ms->m[j].name))
                return bad(err, ms->m[i].path, 0, "module name '%s' is also used by %s", ms->m[i].name, ms->m[j].path);
    int rc;
    for (size_t i = 0; i < ms->n; i++) {
        synth_module *m = &ms->m[i];
        if ((rc = resolve_list(ms, m, m->effects, m->n_effects, err))) return rc;
        if ((rc = resolve_list(ms, m, m->hazard, m->n_hazard, err))) return rc;
        if (m->requires_name[0]) {
            int j = synth_module_find(ms, m->requires_name);
            if (j < 0 || ms->m[j].kind != SYN_CHRONIC)
                return bad(err, m->path, 0, "requires names '%s', which is not a loaded chronic module%s", m->requires_name, NULL);
            m->requires = j;
        }
    }
    /* markers in dependency order (marker:X effects), by repeated passes; a pass that places
     * nothing means a cycle */
    int placed[SYNTH_MAX_MODULES] = {0};
    size_t n_placed = 0;
    while (n_placed < ms->n) {
        int progress = 0;
        for (size_t i = 0; i < ms->n; i++) {
            if (placed[i]) continue;
            int ready = 1;
            for (size_t k = 0; k < ms->m[i].n_effects; k++) {
                const synth_effect *e = &ms->m[i].effects[k];
                if (e->cov == SYN_COV_MARKER && !placed[e->module] && e->module != (int)i) ready = 0;
                if (e->cov == SYN_COV_MARKER && e->module == (int)i)
                    return bad(err, ms->m[i].path, e->line, "a marker cannot depend on itself%s%s", NULL, NULL);
            }
            if (ready) {
                placed[i] = 1;
                ms->order[n_placed++] = (int)i;
                progress = 1;
            }
        }
        if (!progress) {
            for (size_t i = 0; i < ms->n; i++)
                if (!placed[i])
                    return bad(err, ms->m[i].path, 0, "marker '%s' is part of a cycle of marker: effects%s",
                               ms->m[i].marker_name, NULL);
        }
    }
    return CF_OK;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int synth_modules_load(synth_modules *ms, const char *dir, cf_err *err) {
    memset(ms, 0, sizeof *ms);
    DIR *d = opendir(dir);
    if (!d) return cf_fail_errno(err, CF_EINPUT, "%s: cannot open the modules folder", dir);
    char *names[64];
    size_t n = 0;
    int rc = CF_OK;
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t l = strlen(de->d_name);
        if (de->d_name[0] == '.' || l < 8 || strcmp(de->d_name + l - 7, ".module")) continue;
        if (n >= 64 || n >= SYNTH_MAX_MODULES) {
            rc = cf_fail(err, CF_EINPUT, "%s: more than %d module files", dir, SYNTH_MAX_MODULES);
            break;
        }
        if (!(names[n] = strdup(de->d_name))) {
            rc = cf_fail(err, CF_EINTERNAL, "out of memory");
            break;
        }
        n++;
    }
    closedir(d);
    if (rc) goto done;
    if (!n) {
        rc = cf_fail(err, CF_EINPUT, "%s: no *.module files", dir);
        goto done;
    }
    qsort(names, n, sizeof *names, cmp_str);
    for (size_t i = 0; i < n && !rc; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        FILE *f = fopen(path, "rb");
        if (!f) {
            rc = cf_fail_errno(err, CF_EINPUT, "%s: cannot open", path);
            break;
        }
        char *text = malloc(1 << 20);
        size_t len = text ? fread(text, 1, 1 << 20, f) : 0;
        int too_big = text && len == (1 << 20);
        fclose(f);
        if (!text) rc = cf_fail(err, CF_EINTERNAL, "out of memory");
        else if (too_big) rc = cf_fail(err, CF_EINPUT, "%s: a module file is at most 1 MiB", path);
        else if (memchr(text, 0, len)) rc = cf_fail(err, CF_EINPUT, "%s: not a text file", path);
        else rc = synth_module_parse(&ms->m[ms->n], path, text, len, err);
        free(text);
        if (!rc) ms->n++;
    }
    if (!rc) rc = synth_modules_resolve(ms, err);
done:
    for (size_t i = 0; i < n; i++) free(names[i]);
    return rc;
}
