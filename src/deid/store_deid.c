/* Store de-identification; see store_deid.h.
 *
 * Two passes over the mmap'd input, subject by subject: the first computes each subject's
 * quasi-identifiers (after the date and age transforms) for the k-anonymity figures and the
 * suppression decision; the second writes the surviving subjects' transformed events to a new
 * store through the ordinary writer, which re-sorts them by pseudonym. */
#include "util/datadir.h"
#include "deid/store_deid.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>
#include <sodium.h>

#include "store/store.h"
#include "util/json.h"
#include "util/progress.h"
#include "util/strmap.h"
#include "util/timeutil.h"

#define USEC_PER_YEAR ((int64_t)(365.2425 * 86400.0) * USEC_PER_SEC)

/* What the de-identifier needs to know about each code of the input. */
enum code_class { CC_PLAIN = 0, CC_PHI, CC_BIRTH, CC_GENDER, CC_RACE, CC_NOTE };

/* Texts longer than this are treated as notes whatever their code. */
#define NOTE_MIN_LEN 200

typedef struct {
    uint8_t cls;
    int8_t phi_type;   /* DEID_* for CC_PHI, -1 = drop without using; -2 zip, -3 state */
} code_info;

static const struct {
    const char *suffix;
    int type;
} phi_kinds[] = {
    {"NAME", DEID_NAME},       {"ADDRESS", DEID_ADDRESS}, {"CITY", DEID_LOCATION},
    {"LOCATION", DEID_LOCATION}, {"ZIP", -2},             {"STATE", -3},
    {"PHONE", DEID_PHONE},     {"FAX", DEID_FAX},         {"EMAIL", DEID_EMAIL},
    {"SSN", DEID_SSN},         {"MRN", DEID_MRN},         {"ID", DEID_ID},
    {"ORGANIZATION", DEID_ORGANIZATION}, {"URL", DEID_URL}, {"IP", DEID_IP},
};

static code_info classify(const char *code) {
    code_info ci = {CC_PLAIN, 0};
    if (!strncmp(code, "PHI//", 5)) {
        ci.cls = CC_PHI;
        ci.phi_type = -1;
        const char *kind = code + 5;
        size_t kl = strcspn(kind, "/");
        for (size_t i = 0; i < sizeof phi_kinds / sizeof phi_kinds[0]; i++)
            if (strlen(phi_kinds[i].suffix) == kl && !strncmp(kind, phi_kinds[i].suffix, kl)) ci.phi_type = (int8_t)phi_kinds[i].type;
    } else if (!strcmp(code, "MEDS_BIRTH")) {
        ci.cls = CC_BIRTH;
    } else if (!strncmp(code, "GENDER//", 8) || !strncmp(code, "SEX//", 5)) {
        ci.cls = CC_GENDER;
    } else if (!strncmp(code, "RACE//", 6)) {
        ci.cls = CC_RACE;
    } else if (!strncmp(code, "NOTE//", 6) || !strcmp(code, "NOTE")) {
        ci.cls = CC_NOTE;
    }
    return ci;
}

/* The restricted 3-digit ZIP areas (20,000 people or fewer): a configurable table. */
typedef struct {
    char (*zip3)[4];
    size_t n;
} zip_table;

static int load_zip_table(const char *rules_dir, zip_table *z, cf_err *err) {
    char path[4200];
    snprintf(path, sizeof path, "%s/zip3_restricted.txt", rules_dir);
    memset(z, 0, sizeof *z);
    FILE *f = fopen(path, "r");
    if (!f) return cf_fail_errno(err, CF_EINPUT, "%s: cannot open the restricted ZIP3 table", path);
    char line[256];
    int lineno = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        char *s = line;
        while (isspace((unsigned char)*s)) s++;
        if (*s == '#' || !*s) continue;
        if (!(isdigit((unsigned char)s[0]) && isdigit((unsigned char)s[1]) && isdigit((unsigned char)s[2]) &&
              (s[3] == '\0' || isspace((unsigned char)s[3])))) {
            fclose(f);
            free(z->zip3);
            return cf_fail(err, CF_EINPUT, "%s:%d: expected a three-digit ZIP prefix", path, lineno);
        }
        char (*p)[4] = realloc(z->zip3, (z->n + 1) * sizeof *p);
        if (!p) {
            fclose(f);
            free(z->zip3);
            return cf_fail(err, CF_EINTERNAL, "out of memory");
        }
        z->zip3 = p;
        memcpy(z->zip3[z->n], s, 3);
        z->zip3[z->n][3] = '\0';
        z->n++;
    }
    fclose(f);
    return CF_OK;
}

/* ZIP3 for a ZIP text ("02139", "02139-4307"); "" when it has no three leading digits. */
static void zip3_of(const zip_table *z, const char *s, size_t len, char out[4], int *restricted) {
    out[0] = '\0';
    *restricted = 0;
    while (len && isspace((unsigned char)*s)) s++, len--;
    if (len < 3 || !isdigit((unsigned char)s[0]) || !isdigit((unsigned char)s[1]) || !isdigit((unsigned char)s[2])) return;
    memcpy(out, s, 3);
    out[3] = '\0';
    for (size_t i = 0; i < z->n; i++)
        if (!memcmp(z->zip3[i], out, 3)) {
            memcpy(out, "000", 4);
            *restricted = 1;
        }
}

/* Short structured text values (lab results, organism names such as "CANDIDA ALBICANS") are not
 * prose: the name and place detectors, which weigh capitalisation and word lists, mistake them for
 * people and towns. There only identifiers with a shape are replaced, plus any word of the
 * subject's own identifiers. */
static int shaped_type(int type) {
    return type == DEID_EMAIL || type == DEID_URL || type == DEID_IP || type == DEID_SSN || type == DEID_MRN ||
           type == DEID_DATE || type == DEID_FAX || type == DEID_PHONE || type == DEID_ID || type == DEID_AGE_OVER_89 ||
           type == DEID_ZIP;
}

typedef struct {
    const char **s;
    size_t *len;
    size_t n, cap;
} known_strings;

static int span_in_known(const known_strings *ks, const char *p, size_t n) {
    for (size_t i = 0; i < ks->n; i++)
        for (size_t j = 0; j + n <= ks->len[i]; j++)
            if (!strncasecmp(ks->s[i] + j, p, n)) return 1;
    return 0;
}

static int year_of(int64_t t) {
    int64_t days = t / USEC_PER_DAY;
    if (t % USEC_PER_DAY < 0) days--;
    int64_t y;
    unsigned m, d;
    civil_from_days(days, &y, &m, &d);
    return (int)y;
}

/* The first moment of t's year. */
static int64_t year_floor(int64_t t) { return days_from_civil(year_of(t), 1, 1) * USEC_PER_DAY; }

/* Per-subject facts computed once and used by both passes. */
typedef struct {
    int64_t pseudonym;
    int shift_days;
    int64_t birth;        /* original MEDS_BIRTH time or TIME_NULL */
    int64_t new_birth;    /* after the age cap, before the date transform */
    int64_t last;         /* last timed event */
    int64_t first_visit;  /* first timed event that is not the birth */
    uint32_t gender, race;/* code ids, UINT32_MAX if none */
    char zip3[4];
    int suppressed;
} subject_facts;

static int64_t transform_time(const deid_store_options *opt, const subject_facts *f, int64_t t) {
    if (t == TIME_NULL) return t;
    if (opt->dates == DEID_DATES_SHIFT) return t + (int64_t)f->shift_days * USEC_PER_DAY;
    return year_floor(t);
}

static void group_key(const store *s, const deid_store_options *opt, const subject_facts *f, char *buf, size_t cap) {
    char age[16] = "?", year[16] = "?";
    if (f->new_birth != TIME_NULL && f->last != TIME_NULL) {
        int64_t a = (f->last - f->new_birth) / USEC_PER_YEAR;
        if (a >= 90) snprintf(age, sizeof age, "90+");
        else snprintf(age, sizeof age, "%lld-%lld", (long long)(a / 10 * 10), (long long)(a / 10 * 10 + 9));
    }
    if (f->first_visit != TIME_NULL) snprintf(year, sizeof year, "%d", year_of(transform_time(opt, f, f->first_visit)));
    snprintf(buf, cap, "%s|%s|%s|%s|%s", age, f->gender != UINT32_MAX ? store_code_str(s, f->gender) : "?",
             f->zip3[0] ? f->zip3 : "?", f->race != UINT32_MAX ? store_code_str(s, f->race) : "?", year);
}

static int hist_bucket(uint64_t size) {
    if (size <= 4) return (int)size - 1;
    if (size < 10) return 4;
    if (size < 20) return 5;
    return 6;
}

/* What the steps of deid_store share: the input, its code classes, each subject's facts, the
 * quasi-identifier groups, the writer and pass 2's per-subject scratch. All freed in deid_store. */
typedef struct {
    const deid_store_options *opt;
    deid_store_report *rep;
    store s;
    deid_text_rules *rules;
    zip_table zips;
    code_info *ci;
    subject_facts *facts;
    int64_t *out_code;     /* output code id of each input code, -1 until first written */
    store_writer *w;
    strmap groups;         /* quasi-identifier group key -> group index */
    uint64_t *group_size;
    size_t group_cap;
    char *text_out;        /* the current event's redacted text */
    deid_known *known;     /* the current subject's own identifiers */
    known_strings ks;
    store_cursor *cur;
    store_events ev;       /* the current subject's events */
    unsigned char k_pseudo[DEID_KEY_BYTES], k_shift[DEID_KEY_BYTES], k_surr[DEID_KEY_BYTES];
} deid_run;

/* Loads the rules and ZIP3 table and classifies every input code once, so the passes only look up. */
static int prepare_run(deid_run *r, cf_err *err) {
    char shipped_rules[4096];
    cf_share_path("data/deid", shipped_rules, sizeof shipped_rules);
    const char *rules_dir = r->opt->rules_dir ? r->opt->rules_dir : shipped_rules;
    int rc;
    if ((rc = deid_rules_load(&r->rules, rules_dir, err))) return rc;
    if ((rc = load_zip_table(rules_dir, &r->zips, err))) return rc;
    if ((rc = store_cursor_new(&r->cur, &r->s, STORE_CURSOR_READAHEAD, err))) return rc;
    r->ci = calloc(r->s.n_codes ? r->s.n_codes : 1, sizeof *r->ci);
    r->facts = calloc(r->s.n_subjects ? r->s.n_subjects : 1, sizeof *r->facts);
    r->out_code = malloc((r->s.n_codes ? r->s.n_codes : 1) * sizeof *r->out_code);
    if (!r->ci || !r->facts || !r->out_code) return cf_fail(err, CF_EINTERNAL, "out of memory");
    for (uint32_t c = 0; c < r->s.n_codes; c++) {
        r->ci[c] = classify(store_code_str(&r->s, c));
        r->out_code[c] = -1;
    }
    return 0;
}

/* Picks subject k's pseudonym; with a split key, the first candidate in the original id's split group. */
static int pick_pseudonym(deid_run *r, uint64_t k, cf_err *err) {
    subject_facts *f = &r->facts[k];
    const deid_store_options *opt = r->opt;
    f->pseudonym = deid_pseudonym(r->k_pseudo, r->s.subject_id[k]);
    if (!opt->split_group) return 0;
    /* The same split group as the original id; about 100 candidates for a percentile. */
    int want = opt->split_group(opt->split_ctx, r->s.subject_id[k]);
    uint32_t n = 0;
    while (opt->split_group(opt->split_ctx, f->pseudonym) != want) {
        if (++n == UINT32_MAX)
            return cf_fail(err, CF_EINTERNAL, "subject index %llu: no pseudonym in its split group", (unsigned long long)k);
        f->pseudonym = deid_pseudonym_n(r->k_pseudo, r->s.subject_id[k], n);
    }
    r->rep->split_candidates += n + 1;
    return 0;
}

/* Reads subject k's quasi-identifiers (birth, gender, race, ZIP3, first and last times) and caps the age at 90. */
static int subject_facts_of(deid_run *r, uint64_t k, cf_err *err) {
    subject_facts *f = &r->facts[k];
    int rc = pick_pseudonym(r, k, err);
    if (rc) return rc;
    f->shift_days = deid_shift_days(r->k_shift, r->s.subject_id[k]);
    f->birth = f->last = f->first_visit = TIME_NULL;
    f->gender = f->race = UINT32_MAX;
    if ((rc = store_cursor_subject(r->cur, k, &r->ev, err))) return rc;
    const store_events *ev = &r->ev;
    const code_info *ci = r->ci;
    for (uint64_t i = 0; i < ev->n; i++) {
        uint32_t c = ev->code[i];
        int64_t t = ev->time[i];
        if (ci[c].cls == CC_BIRTH && f->birth == TIME_NULL) f->birth = t;
        else if (ci[c].cls == CC_GENDER && f->gender == UINT32_MAX) f->gender = c;
        else if (ci[c].cls == CC_RACE && f->race == UINT32_MAX) f->race = c;
        else if (ci[c].cls == CC_PHI && ci[c].phi_type == -2 && !f->zip3[0] && ev->text[i]) {
            size_t len;
            const char *z = store_text_str(&r->s, ev->text[i], &len);
            int restricted;
            zip3_of(&r->zips, z, len, f->zip3, &restricted);
        }
        if (t != TIME_NULL) {
            if (f->last == TIME_NULL || t > f->last) f->last = t;
            if (ci[c].cls != CC_BIRTH && ci[c].cls != CC_PHI && (f->first_visit == TIME_NULL || t < f->first_visit))
                f->first_visit = t;
        }
    }
    f->new_birth = f->birth;
    if (f->birth != TIME_NULL && f->last != TIME_NULL && f->last - f->birth >= 90 * USEC_PER_YEAR) {
        f->new_birth = f->last - 90 * USEC_PER_YEAR;
        r->rep->births_capped++;
    }
    return 0;
}

/* Counts subject k into its quasi-identifier group, growing the group sizes as new groups appear. */
static int count_group(deid_run *r, uint64_t k, cf_err *err) {
    char gk[512];
    group_key(&r->s, r->opt, &r->facts[k], gk, sizeof gk);
    int64_t g = strmap_intern(&r->groups, gk, strlen(gk));
    if (g < 0) return cf_fail(err, CF_EINTERNAL, "out of memory");
    size_t old_cap = r->group_cap;
    uint64_t *p = cf_grow(r->group_size, &r->group_cap, (size_t)g + 1, sizeof *p, 1024);
    if (!p) return cf_fail(err, CF_EINTERNAL, "out of memory");
    memset(p + old_cap, 0, (r->group_cap - old_cap) * sizeof *p);
    r->group_size = p;
    r->group_size[g]++;
    return 0;
}

/* Pass 1: every subject's facts and quasi-identifier group, before anything is written. */
static int collect_facts(deid_run *r, cf_err *err) {
    int rc;
    for (uint64_t k = 0; k < r->s.n_subjects; k++) {
        if ((rc = subject_facts_of(r, k, err))) return rc;
        if ((rc = count_group(r, k, err))) return rc;
    }
    return 0;
}

/* The k-anonymity figures; with --suppress, marks the subjects of groups smaller than k for dropping. */
static void group_subjects(deid_run *r) {
    deid_store_report *rep = r->rep;
    int kmin = r->opt->k > 0 ? r->opt->k : 5;
    rep->kanon_groups = r->groups.count;
    for (uint32_t g = 0; g < r->groups.count; g++)
        if (r->group_size[g] < (uint64_t)kmin) rep->kanon_groups_below_k++;
    for (uint64_t k = 0; k < r->s.n_subjects; k++) {
        char gk[512];
        group_key(&r->s, r->opt, &r->facts[k], gk, sizeof gk);
        uint64_t size = r->group_size[strmap_find(&r->groups, gk, strlen(gk))];
        rep->kanon_hist[hist_bucket(size)]++;
        if (size < (uint64_t)kmin) {
            rep->kanon_subjects_below_k++;
            if (r->opt->suppress) r->facts[k].suppressed = 1;
        }
    }
}

/* The current subject's own identifiers (r->ev), for the text matcher and the short-text filter. */
static int collect_known(deid_run *r, cf_err *err) {
    int rc;
    if ((rc = deid_known_new(&r->known, err))) return rc;
    known_strings *ks = &r->ks;
    ks->n = 0;
    for (uint64_t i = 0; i < r->ev.n; i++) {
        code_info c = r->ci[r->ev.code[i]];
        if (c.cls != CC_PHI || !r->ev.text[i]) continue;
        size_t len;
        const char *t = store_text_str(&r->s, r->ev.text[i], &len);
        if (ks->n == ks->cap) {
            size_t nc = ks->cap ? ks->cap * 2 : 16;
            const char **np = realloc(ks->s, nc * sizeof *np);
            size_t *nl = np ? realloc(ks->len, nc * sizeof *nl) : NULL;
            if (np) ks->s = np;
            if (!nl) return cf_fail(err, CF_EINTERNAL, "out of memory");
            ks->len = nl;
            ks->cap = nc;
        }
        ks->s[ks->n] = t;
        ks->len[ks->n++] = len;
        int type = c.phi_type >= 0 ? c.phi_type : (c.phi_type == -2 ? DEID_ZIP : -1);
        /* The matcher takes strings up to 4 KiB; a longer "identifier" is a mapping mistake,
         * and its first 4 KiB still find most of it. The event itself is removed either way. */
        if (len > 4096) len = 4096;
        if (type >= 0 && len && (rc = deid_known_add(r->known, type, t, len, err))) return rc;
    }
    return 0;
}

/* An identifier event: a ZIP as its ZIP3 and a state kept as undated static facts (*code_id set);
 * everything else removed (*code_id stays -1). */
static int generalise_identifier(deid_run *r, uint64_t i, int64_t *code_id, cf_err *err) {
    deid_store_report *rep = r->rep;
    code_info ci = r->ci[r->ev.code[i]];
    uint32_t text = r->ev.text[i];
    rep->identifier_events_removed++;
    if (ci.phi_type >= 0) rep->identifier_events_by_type[ci.phi_type]++;
    char code[32];
    if (ci.phi_type == -2 && text) {
        size_t len;
        const char *z = store_text_str(&r->s, text, &len);
        char z3[4];
        int restricted;
        zip3_of(&r->zips, z, len, z3, &restricted);
        rep->identifier_events_by_type[DEID_ZIP]++;
        if (!z3[0]) return 0;
        restricted ? rep->zip3_restricted++ : rep->zip3_kept++;
        snprintf(code, sizeof code, "ZIP3//%s", z3);
    } else if (ci.phi_type == -3 && text) {
        size_t len;
        const char *st = store_text_str(&r->s, text, &len);
        if (len == 0 || len > 20) return 0;
        snprintf(code, sizeof code, "STATE//%.*s", (int)len, st);
    } else {
        return 0;
    }
    rep->identifier_events_removed--; /* generalised, not removed */
    *code_id = store_writer_code(r->w, code, strlen(code));
    if (*code_id < 0) return cf_fail(err, CF_EINTERNAL, "out of memory");
    return 0;
}

/* Redacts event i's text into r->text_out: notes and long texts fully; short structured values only
 * for shaped identifiers and the subject's own (see shaped_type). */
static int redact_event_text(deid_run *r, uint64_t i, const deid_redact_opts *ro, size_t *text_len, cf_err *err) {
    deid_store_report *rep = r->rep;
    size_t len;
    const char *orig = store_text_str(&r->s, r->ev.text[i], &len);
    rep->texts_scanned++;
    rep->text_bytes += len;
    free(r->text_out);
    r->text_out = NULL;
    uint64_t counts[DEID_N_TYPES] = {0};
    int rc;
    if (r->ci[r->ev.code[i]].cls == CC_NOTE || len > NOTE_MIN_LEN) {
        if ((rc = deid_text(r->rules, orig, len, r->known, ro, &r->text_out, text_len, counts, err))) return rc;
    } else {
        deid_span *spans = NULL;
        size_t nsp = 0, kept = 0;
        if ((rc = deid_find(r->rules, orig, len, r->known, &spans, &nsp, err))) return rc;
        for (size_t q = 0; q < nsp; q++)
            if (shaped_type(spans[q].type) || span_in_known(&r->ks, orig + spans[q].start, spans[q].end - spans[q].start))
                spans[kept++] = spans[q];
        rc = deid_redact(r->rules, orig, len, spans, kept, ro, &r->text_out, text_len, counts, err);
        free(spans);
        if (rc) return rc;
    }
    uint64_t total = 0;
    for (int q = 0; q < DEID_N_TYPES; q++) {
        rep->text_spans[q] += counts[q];
        total += counts[q];
    }
    if (total) rep->texts_changed++;
    return 0;
}

/* Writes event i of the current subject: identifiers generalised or dropped, codes carried over
 * with their descriptions, the birth capped, the text redacted and the time transformed. */
static int write_event(deid_run *r, const subject_facts *f, uint64_t i, const deid_redact_opts *ro, cf_err *err) {
    uint32_t c = r->ev.code[i];
    int64_t t = r->ev.time[i];
    const char *text = NULL;
    size_t text_len = 0;
    int64_t code_id = -1;
    int rc;
    if (r->ci[c].cls == CC_PHI) {
        if ((rc = generalise_identifier(r, i, &code_id, err))) return rc;
        if (code_id < 0) return 0;
        t = TIME_NULL; /* where someone lived is kept as a static fact, undated */
    } else {
        if (r->out_code[c] < 0) {
            const char *cs = store_code_str(&r->s, c);
            r->out_code[c] = store_writer_code(r->w, cs, strlen(cs));
            if (r->out_code[c] < 0) return cf_fail(err, CF_EINTERNAL, "out of memory");
            const char *desc = store_code_desc(&r->s, c);
            if (*desc) store_writer_code_describe(r->w, (uint32_t)r->out_code[c], desc, strlen(desc));
        }
        code_id = r->out_code[c];
        if (r->ci[c].cls == CC_BIRTH && t == f->birth) t = f->new_birth;
        if (r->ev.text[i]) {
            if ((rc = redact_event_text(r, i, ro, &text_len, err))) return rc;
            text = r->text_out;
        }
    }
    int64_t nt = transform_time(r->opt, f, t);
    if (nt != r->ev.time[i]) r->rep->times_changed++;
    if ((rc = store_writer_add(r->w, f->pseudonym, nt, (uint32_t)code_id, r->ev.numeric[i], text, text_len,
                               store_prov_source(r->ev.prov[i]), 0, err)))
        return rc;
    r->rep->events_out++;
    return 0;
}

/* Writes subject k unless suppressed, redacting its texts with its own identifiers and surrogate key. */
static int write_subject(deid_run *r, uint64_t k, cf_err *err) {
    deid_store_report *rep = r->rep;
    const subject_facts *f = &r->facts[k];
    if (store_subject_key(&r->s, k, NULL)) rep->subject_keys_removed++;
    if (f->suppressed) {
        rep->subjects_suppressed++;
        return 0;
    }
    rep->subjects_out++;
    int rc;
    if ((rc = store_cursor_subject(r->cur, k, &r->ev, err))) return rc;
    if ((rc = collect_known(r, err))) return rc;
    deid_redact_opts ro;
    memset(&ro, 0, sizeof ro);
    ro.mode = r->opt->text_mode;
    ro.shift_dates = r->opt->dates == DEID_DATES_SHIFT;
    ro.shift_days = f->shift_days;
    unsigned char msg[8];
    for (int b = 0; b < 8; b++) msg[b] = (unsigned char)((uint64_t)r->s.subject_id[k] >> (8 * b));
    crypto_generichash(ro.key, sizeof ro.key, msg, sizeof msg, r->k_surr, sizeof r->k_surr);
    for (uint64_t i = 0; i < r->ev.n; i++)
        if ((rc = write_event(r, f, i, &ro, err))) return rc;
    deid_known_free(r->known);
    r->known = NULL;
    return 0;
}

/* Pass 2: opens the output (sources in the input's order, so source ids carry over) and writes every subject. */
static int write_events(deid_run *r, const char *out_path, cf_err *err) {
    const deid_store_options *opt = r->opt;
    store_writer_options wo = {.memory_budget = opt->memory_budget,
                               .flags = STORE_FLAG_DEIDENTIFIED |
                                        (opt->dates == DEID_DATES_SHIFT ? STORE_FLAG_DATES_SHIFTED : STORE_FLAG_DATES_YEAR)};
    int rc = store_writer_open(&r->w, out_path, &wo, err);
    if (rc) return rc;
    for (uint32_t k = 0; k < r->s.n_sources; k++)
        if (store_writer_source(r->w, store_source_name(&r->s, k)) != (int)k)
            return cf_fail(err, CF_EINTERNAL, "cannot register sources");
    r->rep->subjects_in = r->s.n_subjects;
    r->rep->events_in = r->s.n_events;
    progress pr;
    progress_begin(&pr, "deid", "subjects", r->s.n_subjects);
    for (uint64_t k = 0; k < r->s.n_subjects && !rc; k++) {
        progress_update(&pr, k);
        rc = write_subject(r, k, err);
    }
    progress_end(&pr);
    return rc;
}

/* Puts the report and the input's mapping name in the output's metadata, so a reader knows what was done. */
static int fill_report(deid_run *r, cf_err *err) {
    char *meta = deid_store_report_json(r->rep, r->opt);
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "producer", "clinfm");
    cJSON_AddBoolToObject(root, "deidentified", 1);
    cJSON *src_meta = cJSON_ParseWithLength(r->s.meta, r->s.meta_len);
    if (src_meta) {
        cJSON *mp = cJSON_GetObjectItem(src_meta, "mapping");
        if (cJSON_IsString(mp)) cJSON_AddStringToObject(root, "mapping", mp->valuestring);
        cJSON_Delete(src_meta);
    }
    cJSON *d = meta ? cJSON_Parse(meta) : NULL;
    if (d) cJSON_AddItemToObject(root, "deid", d);
    char *js = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    free(meta);
    int rc = 0;
    if (!js || store_writer_set_meta(r->w, js)) rc = cf_fail(err, CF_EINTERNAL, "out of memory");
    free(js);
    return rc;
}

int deid_store(const char *in_path, const char *out_path, const unsigned char key[DEID_KEY_BYTES],
               const deid_store_options *opt, deid_store_report *rep, cf_err *err) {
    memset(rep, 0, sizeof *rep);
    double t0 = now_seconds();
    /* Two passes over the events, subject by subject, a block decoded at a time (no decoded copy). */
    deid_run *r = calloc(1, sizeof *r);
    if (!r) return cf_fail(err, CF_EINTERNAL, "out of memory");
    int rc = store_open_summary(&r->s, in_path, err);
    if (rc) {
        free(r);
        return rc;
    }
    if (r->s.flags & STORE_FLAG_DEIDENTIFIED) {
        store_close(&r->s);
        free(r);
        return cf_fail(err, CF_EINPUT, "%s: this store is already de-identified; de-identify the original store instead",
                       in_path);
    }
    r->opt = opt;
    r->rep = rep;
    strmap_init(&r->groups);
    deid_subkey(key, DEID_SUBKEY_PSEUDONYM, r->k_pseudo);
    deid_subkey(key, DEID_SUBKEY_DATE_SHIFT, r->k_shift);
    deid_subkey(key, DEID_SUBKEY_SURROGATE, r->k_surr);

    if ((rc = prepare_run(r, err))) goto done;
    if ((rc = collect_facts(r, err))) goto done;
    group_subjects(r);
    if ((rc = write_events(r, out_path, err))) goto done;
    if ((rc = fill_report(r, err))) goto done;
    rc = store_writer_finish(r->w, err);
    r->w = NULL;
    rep->seconds = now_seconds() - t0;
done:
    if (r->w) store_writer_abort(r->w);
    store_cursor_free(r->cur);
    deid_known_free(r->known);
    strmap_free(&r->groups);
    CF_FREE_ALL(r->ks.s, r->ks.len, r->text_out, r->group_size, r->out_code, r->facts, r->ci, r->zips.zip3);
    deid_rules_free(r->rules);
    sodium_memzero(r->k_pseudo, sizeof r->k_pseudo);
    sodium_memzero(r->k_shift, sizeof r->k_shift);
    sodium_memzero(r->k_surr, sizeof r->k_surr);
    store_close(&r->s);
    free(r);
    return rc;
}

/* An object key of parent with the non-zero counts of each kind of identifier, by kind name. */
static void add_by_kind(cJSON *parent, const char *key, const uint64_t counts[DEID_N_TYPES]) {
    cJSON *o = cJSON_AddObjectToObject(parent, key);
    for (int q = 0; q < DEID_N_TYPES; q++)
        if (counts[q]) cJSON_AddNumberToObject(o, deid_type_name(q), (double)counts[q]);
}

char *deid_store_report_json(const deid_store_report *rep, const deid_store_options *opt) {
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "date_policy", opt->dates == DEID_DATES_SHIFT ? "shift" : "safe-harbor");
    cJSON_AddStringToObject(r, "date_policy_basis", opt->dates == DEID_DATES_SHIFT
                                                        ? "per-subject shift of whole weeks, intervals kept (Expert Determination, not Safe Harbor)"
                                                        : "dates reduced to the year (HIPAA Safe Harbor)");
    cJSON_AddStringToObject(r, "text_mode", opt->text_mode == DEID_MODE_TAG ? "tag" : "surrogate");
    JSON_ADD_NUMBERS(r, {"subjects_in", (double)rep->subjects_in}, {"subjects_out", (double)rep->subjects_out},
                     {"subjects_suppressed", (double)rep->subjects_suppressed}, {"events_in", (double)rep->events_in},
                     {"events_out", (double)rep->events_out});
    cJSON *rm = cJSON_AddObjectToObject(r, "removed");
    JSON_ADD_NUMBERS(rm, {"subject_ids_pseudonymised", (double)rep->subjects_out},
                     {"original_subject_identifiers", (double)rep->subject_keys_removed},
                     {"identifier_events", (double)rep->identifier_events_removed});
    add_by_kind(rm, "identifier_events_by_kind", rep->identifier_events_by_type);
    JSON_ADD_NUMBERS(rm, {"zip_to_zip3", (double)rep->zip3_kept}, {"zip_to_000_restricted_area", (double)rep->zip3_restricted},
                     {"times_changed", (double)rep->times_changed},
                     {"birth_dates_aggregated_age_90_plus", (double)rep->births_capped},
                     {"source_row_numbers", (double)rep->events_out}, {"texts_scanned", (double)rep->texts_scanned},
                     {"texts_changed", (double)rep->texts_changed});
    add_by_kind(rm, "text_spans_by_kind", rep->text_spans);
    cJSON *spl = cJSON_AddObjectToObject(r, "split");
    cJSON_AddBoolToObject(spl, "kept", opt->split_group != NULL);
    if (opt->split_group) {
        if (opt->split_key_id) cJSON_AddStringToObject(spl, "split_key_id", opt->split_key_id);
        cJSON_AddStringToObject(spl, "basis", "each pseudonym is in its original id's split percentile under the split "
                                              "key: whole-percent splits under that key are the same as the original "
                                              "store's, whatever the de-identification key");
        cJSON_AddNumberToObject(spl, "pseudonym_candidates_tried", (double)rep->split_candidates);
    } else {
        cJSON_AddStringToObject(spl, "basis", "pseudonyms are independent of the split: another de-identification key "
                                              "puts patients on other sides (pass --split-key to keep it)");
    }
    cJSON *ka = cJSON_AddObjectToObject(r, "k_anonymity");
    cJSON_AddStringToObject(ka, "quasi_identifiers", "age band (10 years, 90+) at last event, sex, ZIP3, race, year of first visit");
    JSON_ADD_NUMBERS(ka, {"k", opt->k > 0 ? opt->k : 5}, {"groups", (double)rep->kanon_groups},
                     {"groups_below_k", (double)rep->kanon_groups_below_k},
                     {"subjects_in_groups_below_k", (double)rep->kanon_subjects_below_k});
    cJSON_AddBoolToObject(ka, "suppressed", opt->suppress);
    cJSON *h = cJSON_AddObjectToObject(ka, "subjects_by_group_size");
    static const char *labels[DEID_KANON_BUCKETS] = {"1", "2", "3", "4", "5-9", "10-19", "20+"};
    for (int b = 0; b < DEID_KANON_BUCKETS; b++) cJSON_AddNumberToObject(h, labels[b], (double)rep->kanon_hist[b]);
    char *s = cJSON_Print(r);
    cJSON_Delete(r);
    return s;
}
