/* Tests of the annotated-corpus readers of deid-eval (src/deid/eval.h): the PhysioNet deid layout
 * (text file + annotation file, offsets placed by their phrase, how the pair is found), the
 * category mapping, the inline layout left as it was, and re-casing of the notes.
 *
 * The PhysioNet fixture (tests/data/deid-physionet) is fictional, written for these tests. Every
 * expectation is computed here from the fixture files themselves (annotation lines, record
 * markers, "{{" counts), not copied from the loader's output. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "check.h"
#include "deid/deid_eval.h"
#include "deid/text.h"

/* ---- helpers --------------------------------------------------------------------------------- */

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, n = 0;
    char *b = malloc(cap);
    size_t got;
    while (b && (got = fread(b + n, 1, cap - n - 1, f)) > 0) {
        n += got;
        if (n + 1 == cap) {
            char *nb = realloc(b, cap * 2);
            if (!nb) {
                free(b);
                b = NULL;
                break;
            }
            b = nb;
            cap *= 2;
        }
    }
    fclose(f);
    if (b) b[n] = 0;
    return b;
}

static int spit(const char *path, const char *s) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t n = strlen(s);
    int ok = fwrite(s, 1, n, f) == n;
    return fclose(f) == 0 && ok ? 0 : -1;
}

static const char *fixture(const char *name) {
    static char p[2][4200];
    static int k;
    k ^= 1;
    snprintf(p[k], sizeof p[k], "%s/tests/data/deid-physionet%s%s", check_root(), *name ? "/" : "", name);
    return p[k];
}

/* A scratch folder of its own under the test's temporary directory. */
static const char *scratch(const char *name) {
    static char p[4][4200];
    static int k;
    k = (k + 1) % 4;
    snprintf(p[k], sizeof p[k], "%s/%s", check_tmpdir(), name);
    mkdir(p[k], 0700);
    return p[k];
}

static const char *in(const char *dir, const char *name) {
    static char p[4][4300];
    static int k;
    k = (k + 1) % 4;
    snprintf(p[k], sizeof p[k], "%s/%s", dir, name);
    return p[k];
}

/* One annotation line of the fixture, parsed here independently of eval.c. */
typedef struct {
    int patient, note;
    size_t start, end;
    char cat[32];
    char phrase[128];
} ann_line;

static size_t read_annotations(const char *path, ann_line *out, size_t max) {
    char *s = slurp(path);
    if (!s) return 0;
    size_t n = 0;
    for (char *line = strtok(s, "\n"); line && n < max; line = strtok(NULL, "\n")) {
        int used = 0;
        ann_line *a = &out[n];
        if (sscanf(line, "%d %d %zu %zu %31s %n", &a->patient, &a->note, &a->start, &a->end, a->cat, &used) < 5)
            continue;
        snprintf(a->phrase, sizeof a->phrase, "%s", line + used);
        n++;
    }
    free(s);
    return n;
}

/* Writes the annotations back, lines first..first+count-1 with ds added to start and de to end. */
static int write_annotations(const char *path, const ann_line *a, size_t n, long ds, long de, size_t first,
                             size_t count) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    for (size_t i = 0; i < n; i++) {
        int on = i >= first && i < first + count;
        fprintf(f, "%d %d %zu %zu %s %s\n", a[i].patient, a[i].note, (size_t)((long)a[i].start + (on ? ds : 0)),
                (size_t)((long)a[i].end + (on ? de : 0)), a[i].cat, a[i].phrase);
    }
    return fclose(f);
}

static size_t count_str(const char *s, const char *needle) {
    size_t n = 0, k = strlen(needle);
    for (const char *p = strstr(s, needle); p; p = strstr(p + k, needle)) n++;
    return n;
}

static const deid_doc *doc_by_id(const deid_corpus *c, const char *id) {
    for (size_t i = 0; i < c->n_docs; i++)
        if (!strcmp(c->docs[i].id, id)) return &c->docs[i];
    return NULL;
}

static const deid_gold *gold_at(const deid_doc *d, size_t s, size_t e) {
    for (size_t g = 0; d && g < d->n_gold; g++)
        if (d->gold[g].start == s && d->gold[g].end == e) return &d->gold[g];
    return NULL;
}

/* Same records, texts and gold spans. */
static int same_corpus(const deid_corpus *a, const deid_corpus *b) {
    if (a->n_docs != b->n_docs || a->n_gold != b->n_gold) return 0;
    for (size_t i = 0; i < a->n_docs; i++) {
        const deid_doc *x = &a->docs[i], *y = &b->docs[i];
        if (x->len != y->len || memcmp(x->text, y->text, x->len) || x->n_gold != y->n_gold || strcmp(x->id, y->id))
            return 0;
        for (size_t g = 0; g < x->n_gold; g++)
            if (x->gold[g].start != y->gold[g].start || x->gold[g].end != y->gold[g].end ||
                x->gold[g].type != y->gold[g].type)
                return 0;
    }
    return 1;
}

#define MAX_ANN 256

/* ---- the fixture read as it is ------------------------------------------------------------------ */

static void test_physionet_counts_and_spans(void) {
    ann_line a[MAX_ANN];
    size_t n = read_annotations(fixture("id-phi.phrase"), a, MAX_ANN);
    char *text = slurp(fixture("id.text"));
    REQUIRE(text != NULL);
    REQUIRE(n >= 20);
    size_t n_records = count_str(text, "START_OF_RECORD=");

    deid_corpus c;
    cf_err err = {0};
    REQUIRE(deid_corpus_load(fixture(""), "phrase", &c, &err) == CF_OK);
    CHECK_EQ_INT(c.layout, DEID_LAYOUT_PHYSIONET);
    CHECK_EQ_INT(c.n_docs, n_records);
    CHECK_EQ_INT(c.pn_annotations, n);
    CHECK_EQ_INT(c.n_gold, n);
    CHECK_EQ_INT(c.pn_realigned_inclusive, 0);
    CHECK_EQ_INT(c.pn_realigned_nearby, 0);
    CHECK_EQ_INT(c.pn_misaligned, 0);
    CHECK_EQ_INT(c.pn_crlf, 0);
    CHECK_EQ_INT(c.n_unknown_types, 0);

    /* the first record's text: exactly the lines between its marker lines, newlines included */
    const char *h = strstr(text, "START_OF_RECORD=1||||1||||\n");
    REQUIRE(h != NULL);
    h = strchr(h, '\n') + 1;
    const char *e = strstr(h, "||||END_OF_RECORD");
    REQUIRE(e != NULL);
    const deid_doc *d = doc_by_id(&c, "1-1");
    REQUIRE(d != NULL);
    CHECK_EQ_INT(d->len, (size_t)(e - h));
    CHECK(d->len == (size_t)(e - h) && !memcmp(d->text, h, d->len));
    CHECK(d->text[d->len - 1] == '\n');

    /* every annotation line is a gold span over its phrase, in the record it names */
    size_t found = 0;
    for (size_t i = 0; i < n; i++) {
        char id[64];
        snprintf(id, sizeof id, "%d-%d", a[i].patient, a[i].note);
        const deid_doc *dd = doc_by_id(&c, id);
        const deid_gold *g = gold_at(dd, a[i].start, a[i].end);
        if (g && !memcmp(dd->text + g->start, a[i].phrase, strlen(a[i].phrase)) &&
            !strcmp(g->label, a[i].cat))
            found++;
        else
            fprintf(stderr, "  annotation line %zu not found as a gold span\n", i + 1);
    }
    CHECK_EQ_INT(found, n);
    /* gold spans come in text order within a record, whatever the file's order */
    size_t unordered = 0;
    for (size_t i = 0; i < c.n_docs; i++)
        for (size_t g = 1; g < c.docs[i].n_gold; g++)
            if (c.docs[i].gold[g].start < c.docs[i].gold[g - 1].start) unordered++;
    CHECK_EQ_INT(unordered, 0);
    deid_corpus_free(&c);
    free(text);
}

/* ---- categories -------------------------------------------------------------------------------- */

static void test_category_mapping(void) {
    struct {
        const char *cat;
        int type, scope;
    } want[] = {
        {"Location", DEID_LOCATION, 1},  {"Hospital", DEID_ORGANIZATION, 1}, {"Date", DEID_DATE, 1},
        {"DateYear", DEID_DATE, 1},      {"HCPName", DEID_NAME, 1},          {"PTName", DEID_NAME, 1},
        {"RelativeProxyName", DEID_NAME, 1}, {"ProxyName", DEID_NAME, 1},    {"PTNameInitial", DEID_NAME, 1},
        {"Initial", DEID_NAME, 1},       {"Name", DEID_NAME, 1},             {"Phone", DEID_PHONE, 1},
        {"Age", DEID_AGE_OVER_89, 2},    {"Other", DEID_ID, 1},              {"Email", DEID_EMAIL, 1},
        {"SSN", DEID_SSN, 1},            {"MRN", DEID_MRN, 1},               {"URL", DEID_URL, 1},
        {"Zebra", -1, 0},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        int scope = -5;
        int t = deid_map_physionet_type(want[i].cat, &scope);
        if (t != want[i].type) fprintf(stderr, "  category %s -> %d, want %d\n", want[i].cat, t, want[i].type);
        CHECK_EQ_INT(t, want[i].type);
        CHECK_EQ_INT(scope, want[i].scope);
    }

    /* in the fixture: a hospital is an organisation, a bare year is a year-only date */
    deid_corpus c;
    cf_err err = {0};
    REQUIRE(deid_corpus_load(fixture(""), "phrase", &c, &err) == CF_OK);
    size_t hosp = 0, years = 0, dm = 0, ages = 0;
    for (size_t i = 0; i < c.n_docs; i++)
        for (size_t g = 0; g < c.docs[i].n_gold; g++) {
            const deid_gold *gs = &c.docs[i].gold[g];
            if (!strcmp(gs->label, "Hospital")) hosp += gs->type == DEID_ORGANIZATION;
            if (!strcmp(gs->label, "DateYear")) years += gs->type == DEID_DATE && gs->date_element == DEID_DATE_YEAR_ONLY;
            if (!strcmp(gs->label, "Date")) dm += gs->date_element == DEID_DATE_DAY_MONTH;
            if (!strcmp(gs->label, "Age")) ages += gs->type == DEID_AGE_OVER_89 && gs->in_scope;
        }
    ann_line a[MAX_ANN];
    size_t n = read_annotations(fixture("id-phi.phrase"), a, MAX_ANN), w_hosp = 0, w_years = 0, w_dates = 0, w_age = 0;
    for (size_t i = 0; i < n; i++) {
        w_hosp += !strcmp(a[i].cat, "Hospital");
        w_years += !strcmp(a[i].cat, "DateYear");
        w_dates += !strcmp(a[i].cat, "Date");
        w_age += !strcmp(a[i].cat, "Age") && atoi(a[i].phrase) >= 90;
    }
    CHECK(w_hosp > 0 && w_years > 0 && w_age > 0);
    CHECK_EQ_INT(hosp, w_hosp);
    CHECK_EQ_INT(years, w_years);
    CHECK_EQ_INT(dm, w_dates); /* "7/22", "July 24", "7/19/2105" all name a day or month */
    CHECK_EQ_INT(ages, w_age);
    deid_corpus_free(&c);

    /* an age under 90 is out of scope, an unknown category is counted as such */
    const char *dir = scratch("ages");
    REQUIRE(spit(in(dir, "id.text"), "START_OF_RECORD=1||||1||||\nPt is 86, her aunt is 97. Zz.\n||||END_OF_RECORD\n") == 0);
    REQUIRE(spit(in(dir, "id-phi.phrase"), "1 1 6 8 Age 86\n1 1 21 23 Age 97\n1 1 26 28 Zebra Zz\n") == 0);
    REQUIRE(deid_corpus_load(dir, "phrase", &c, &err) == CF_OK);
    REQUIRE_EQ_INT(c.n_gold, 3);
    CHECK_EQ_INT(c.docs[0].gold[0].in_scope, 0);
    CHECK_EQ_INT(c.docs[0].gold[1].in_scope, 1);
    CHECK_EQ_INT(c.docs[0].gold[2].type, -1);
    CHECK_EQ_INT(c.n_unknown_types, 1);
    CHECK_EQ_INT(c.n_in_scope, 1);
    deid_corpus_free(&c);
}

/* ---- how offsets are placed ------------------------------------------------------------------------ */

static void test_inclusive_end(void) {
    ann_line a[MAX_ANN];
    size_t n = read_annotations(fixture("id-phi.phrase"), a, MAX_ANN);
    REQUIRE(n > 0);
    const char *dir = scratch("inclusive");
    REQUIRE(write_annotations(in(dir, "incl.phrase"), a, n, 0, -1, 0, n) == 0);
    deid_corpus ref, c;
    cf_err err = {0};
    REQUIRE(deid_corpus_load(fixture(""), "phrase", &ref, &err) == CF_OK);
    REQUIRE(deid_corpus_load_files(NULL, "phrase", fixture("id.text"), in(dir, "incl.phrase"), &c, &err) == CF_OK);
    CHECK(same_corpus(&ref, &c));
    CHECK_EQ_INT(c.pn_realigned_inclusive, n);
    CHECK_EQ_INT(c.pn_realigned_nearby, 0);
    CHECK_EQ_INT(c.pn_misaligned, 0);
    deid_corpus_free(&c);
    deid_corpus_free(&ref);
}

static void test_shifted_offsets(void) {
    ann_line a[MAX_ANN];
    size_t n = read_annotations(fixture("id-phi.phrase"), a, MAX_ANN);
    REQUIRE(n >= 20);
    const char *dir = scratch("shifted");
    deid_corpus ref, c;
    cf_err err = {0};
    REQUIRE(deid_corpus_load(fixture(""), "phrase", &ref, &err) == CF_OK);

    /* within the window: found again where it is */
    REQUIRE(write_annotations(in(dir, "near.phrase"), a, n, 3, 3, 0, 1) == 0);
    REQUIRE(deid_corpus_load_files(NULL, "phrase", fixture("id.text"), in(dir, "near.phrase"), &c, &err) == CF_OK);
    CHECK(same_corpus(&ref, &c));
    CHECK_EQ_INT(c.pn_realigned_nearby, 1);
    CHECK_EQ_INT(c.pn_misaligned, 0);
    deid_corpus_free(&c);

    /* beyond the window: kept at its offsets (cut to the text) and counted misaligned */
    REQUIRE(write_annotations(in(dir, "far.phrase"), a, n, 20, 20, 0, 1) == 0);
    REQUIRE(deid_corpus_load_files(NULL, "phrase", fixture("id.text"), in(dir, "far.phrase"), &c, &err) == CF_OK);
    CHECK_EQ_INT(c.pn_misaligned, 1);
    CHECK_EQ_INT(c.pn_realigned_nearby + c.pn_realigned_inclusive, 0);
    char id[64];
    snprintf(id, sizeof id, "%d-%d", a[0].patient, a[0].note);
    const deid_doc *d = doc_by_id(&c, id);
    REQUIRE(d != NULL);
    size_t s = a[0].start + 20 < d->len ? a[0].start + 20 : d->len, e = a[0].end + 20 < d->len ? a[0].end + 20 : d->len;
    CHECK(gold_at(d, s, e) != NULL);
    CHECK(!gold_at(d, a[0].start, a[0].end));
    deid_corpus_free(&c);

    /* more than 5% misaligned: the files do not belong together */
    size_t k = n / 20 + 1;
    REQUIRE(write_annotations(in(dir, "bad.phrase"), a, n, 20, 20, 0, k) == 0);
    memset(&err, 0, sizeof err);
    CHECK(deid_corpus_load_files(NULL, "phrase", fixture("id.text"), in(dir, "bad.phrase"), &c, &err) == CF_EINPUT);
    CHECK_CONTAINS(err.msg, "annotations do not line up with the text");
    char want[64];
    snprintf(want, sizeof want, "%zu of %zu", k, n);
    CHECK_CONTAINS(err.msg, want);
    for (size_t i = 0; i < n; i++)
        if (strlen(a[i].phrase) >= 5 && strstr(err.msg, a[i].phrase)) CHECK_FAIL_("error message quotes a phrase (line %zu)", i + 1);
    /* exactly 5% or less is accepted: one fewer */
    if (k > 1 && (k - 1) * 20 <= n) {
        REQUIRE(write_annotations(in(dir, "ok.phrase"), a, n, 20, 20, 0, k - 1) == 0);
        CHECK(deid_corpus_load_files(NULL, "phrase", fixture("id.text"), in(dir, "ok.phrase"), &c, &err) == CF_OK);
        CHECK_EQ_INT(c.pn_misaligned, k - 1);
        deid_corpus_free(&c);
    }
    deid_corpus_free(&ref);
}

/* CRLF copies: offsets counted on LF text (a converted copy) and on the CRLF text itself. */
static void test_crlf(void) {
    char *text = slurp(fixture("id.text"));
    REQUIRE(text != NULL);
    size_t n = strlen(text);
    char *crlf = malloc(2 * n + 1);
    REQUIRE(crlf != NULL);
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (text[i] == '\n') crlf[o++] = '\r';
        crlf[o++] = text[i];
    }
    crlf[o] = 0;
    const char *dir = scratch("crlf");
    REQUIRE(spit(in(dir, "id.text"), crlf) == 0);
    deid_corpus ref, c;
    cf_err err = {0};
    REQUIRE(deid_corpus_load(fixture(""), "phrase", &ref, &err) == CF_OK);
    REQUIRE(deid_corpus_load_files(in(dir, "id.text"), "phrase", NULL, fixture("id-phi.phrase"), &c, &err) == CF_OK);
    CHECK(same_corpus(&ref, &c)); /* "\r\n" read as "\n" */
    CHECK_EQ_INT(c.pn_crlf, 1);
    CHECK_EQ_INT(c.pn_kept_cr, 0);
    CHECK_EQ_INT(c.pn_misaligned, 0);
    deid_corpus_free(&c);

    /* offsets that count the CRs: each newline before an offset adds one byte */
    ann_line a[MAX_ANN];
    size_t na = read_annotations(fixture("id-phi.phrase"), a, MAX_ANN);
    for (size_t i = 0; i < na; i++) {
        char id[64];
        snprintf(id, sizeof id, "%d-%d", a[i].patient, a[i].note);
        const deid_doc *d = doc_by_id(&ref, id);
        REQUIRE(d != NULL);
        size_t nl = 0;
        for (size_t p = 0; p < a[i].start; p++) nl += d->text[p] == '\n';
        a[i].start += nl;
        a[i].end += nl;
    }
    REQUIRE(write_annotations(in(dir, "cr.phrase"), a, na, 0, 0, 0, 0) == 0);
    REQUIRE(deid_corpus_load_files(NULL, "phrase", in(dir, "id.text"), in(dir, "cr.phrase"), &c, &err) == CF_OK);
    CHECK_EQ_INT(c.pn_kept_cr, 1);
    CHECK_EQ_INT(c.pn_misaligned, 0);
    CHECK_EQ_INT(c.pn_realigned_nearby, 0);
    CHECK_EQ_INT(c.n_gold, na);
    CHECK(c.n_docs > 0 && strstr(c.docs[0].text, "\r\n") != NULL);
    deid_corpus_free(&c);
    deid_corpus_free(&ref);
    free(crlf);
    free(text);
}

/* ---- errors -------------------------------------------------------------------------------------------- */

static void test_bad_files(void) {
    char *phi = slurp(fixture("id-phi.phrase"));
    REQUIRE(phi != NULL);
    size_t lines = count_str(phi, "\n");
    const char *dir = scratch("bad");
    char *text = slurp(fixture("id.text"));
    REQUIRE(text != NULL);
    REQUIRE(spit(in(dir, "bad.text"), text) == 0);

    /* an annotation for a record the text file does not have: FILE:LINE, no phrase */
    size_t n = strlen(phi);
    char *buf = malloc(n + 128);
    REQUIRE(buf != NULL);
    snprintf(buf, n + 128, "%s77 1 0 10 PTName Xylophanes\n", phi);
    REQUIRE(spit(in(dir, "bad-phi.phrase"), buf) == 0);
    deid_corpus c;
    cf_err err = {0};
    CHECK(deid_corpus_load(in(dir, "bad.text"), "phrase", &c, &err) == CF_EINPUT);
    char want[128];
    snprintf(want, sizeof want, "bad-phi.phrase:%zu: annotation for a record that is not in", lines + 1);
    CHECK_CONTAINS(err.msg, want);
    CHECK(!strstr(err.msg, "Xylophanes"));

    /* a malformed line */
    snprintf(buf, n + 128, "1 1 22 26 Date 7/22\n1 1 x 4 Date Xylophanes\n");
    REQUIRE(spit(in(dir, "bad-phi.phrase"), buf) == 0);
    CHECK(deid_corpus_load(in(dir, "bad.text"), "phrase", &c, &err) == CF_EINPUT);
    CHECK_CONTAINS(err.msg, "bad-phi.phrase:2: expected \"patient note start end category phrase\"");
    CHECK(!strstr(err.msg, "Xylophanes"));
    snprintf(buf, n + 128, "1 1 22 26 Date\n");
    REQUIRE(spit(in(dir, "bad-phi.phrase"), buf) == 0);
    CHECK(deid_corpus_load(in(dir, "bad.text"), "phrase", &c, &err) == CF_EINPUT);
    CHECK_CONTAINS(err.msg, "bad-phi.phrase:1: expected");
    snprintf(buf, n + 128, "1 1 26 22 Date 7/22\n");
    REQUIRE(spit(in(dir, "bad-phi.phrase"), buf) == 0);
    CHECK(deid_corpus_load(in(dir, "bad.text"), "phrase", &c, &err) == CF_EINPUT);
    CHECK_CONTAINS(err.msg, "bad-phi.phrase:1:");

    /* text files: a record without its end marker, text outside a record, a repeated record */
    REQUIRE(spit(in(dir, "bad-phi.phrase"), "") == 0);
    REQUIRE(spit(in(dir, "bad.text"), "START_OF_RECORD=1||||1||||\nSecret Name\n\nSTART_OF_RECORD=1||||2||||\n") == 0);
    CHECK(deid_corpus_load(in(dir, "bad.text"), "phrase", &c, &err) == CF_EINPUT);
    CHECK_CONTAINS(err.msg, "bad.text:4:");
    CHECK(!strstr(err.msg, "Secret"));
    REQUIRE(spit(in(dir, "bad.text"), "START_OF_RECORD=1||||1||||\nA\n||||END_OF_RECORD\nSecret Name\n") == 0);
    CHECK(deid_corpus_load(in(dir, "bad.text"), "phrase", &c, &err) == CF_EINPUT);
    CHECK_CONTAINS(err.msg, "bad.text:4: expected");
    REQUIRE(spit(in(dir, "bad.text"), "START_OF_RECORD=1||||1||||\nA\n||||END_OF_RECORD\n"
                                      "START_OF_RECORD=1||||1||||\nB\n||||END_OF_RECORD\n") == 0);
    CHECK(deid_corpus_load(in(dir, "bad.text"), "phrase", &c, &err) == CF_EINPUT);
    CHECK_CONTAINS(err.msg, "bad.text:4:");
    REQUIRE(spit(in(dir, "bad.text"), "START_OF_RECORD=1||||1||||\nA\n") == 0);
    CHECK(deid_corpus_load(in(dir, "bad.text"), "phrase", &c, &err) == CF_EINPUT);
    CHECK_CONTAINS(err.msg, "without a ||||END_OF_RECORD");
    /* an empty annotation file is a corpus without PHI */
    REQUIRE(spit(in(dir, "bad.text"), "\nSTART_OF_RECORD=1||||1||||\nA\n||||END_OF_RECORD\n") == 0);
    REQUIRE(deid_corpus_load(in(dir, "bad.text"), "phrase", &c, &err) == CF_OK);
    CHECK_EQ_INT(c.n_docs, 1);
    CHECK_EQ_INT(c.n_gold, 0);
    CHECK_EQ_STR(c.docs[0].text, "A\n");
    deid_corpus_free(&c);
    free(buf);
    free(text);
    free(phi);
}

/* ---- finding the pair ------------------------------------------------------------------------------- */

static void test_discovery(void) {
    deid_corpus ref, c;
    cf_err err = {0};
    REQUIRE(deid_corpus_load(fixture(""), "phrase", &ref, &err) == CF_OK);
    CHECK(strstr(ref.text_path, "id.text") != NULL);
    CHECK(strstr(ref.phi_path, "id-phi.phrase") != NULL);
    char *text = slurp(fixture("id.text")), *phi = slurp(fixture("id-phi.phrase"));
    REQUIRE(text && phi);

    /* (b) the text file, (c) the annotation file */
    REQUIRE(deid_corpus_load(fixture("id.text"), "phrase", &c, &err) == CF_OK);
    CHECK(same_corpus(&ref, &c));
    CHECK(strstr(c.phi_path, "id-phi.phrase") != NULL);
    deid_corpus_free(&c);
    REQUIRE(deid_corpus_load(fixture("id-phi.phrase"), "phrase", &c, &err) == CF_OK);
    CHECK(same_corpus(&ref, &c));
    CHECK(strstr(c.text_path, "id.text") != NULL);
    deid_corpus_free(&c);

    /* other names: the only *.text and *.phrase of a folder */
    const char *dir = scratch("other-names");
    REQUIRE(spit(in(dir, "notes.text"), text) == 0 && spit(in(dir, "gold.phrase"), phi) == 0);
    REQUIRE(deid_corpus_load(dir, "phrase", &c, &err) == CF_OK);
    CHECK(same_corpus(&ref, &c));
    deid_corpus_free(&c);
    REQUIRE(deid_corpus_load(in(dir, "notes.text"), "phrase", &c, &err) == CF_OK);
    CHECK(same_corpus(&ref, &c));
    CHECK(strstr(c.phi_path, "gold.phrase") != NULL);
    deid_corpus_free(&c);
    REQUIRE(deid_corpus_load(in(dir, "gold.phrase"), "phrase", &c, &err) == CF_OK);
    CHECK(same_corpus(&ref, &c));
    CHECK(strstr(c.text_path, "notes.text") != NULL);
    deid_corpus_free(&c);
    /* X.phrase -> X.text, even beside other *.text files */
    REQUIRE(spit(in(dir, "gold.text"), text) == 0);
    REQUIRE(deid_corpus_load(in(dir, "gold.phrase"), "phrase", &c, &err) == CF_OK);
    CHECK(strstr(c.text_path, "gold.text") != NULL);
    deid_corpus_free(&c);
    /* two of a kind and no id.text: ambiguous */
    memset(&err, 0, sizeof err);
    CHECK(deid_corpus_load(dir, "phrase", &c, &err) == CF_EINPUT);
    CHECK_CONTAINS(err.msg, "--text");
    REQUIRE(spit(in(dir, "other.phrase"), phi) == 0);
    CHECK(deid_corpus_load(in(dir, "notes.text"), "phrase", &c, &err) == CF_EINPUT);
    CHECK_CONTAINS(err.msg, "--phi");

    /* (d) --text and --phi with names the rules would not find */
    const char *d2 = scratch("explicit");
    REQUIRE(spit(in(d2, "a.txt"), text) == 0 && spit(in(d2, "b.ann"), phi) == 0);
    REQUIRE(deid_corpus_load_files(NULL, "phrase", in(d2, "a.txt"), in(d2, "b.ann"), &c, &err) == CF_OK);
    CHECK(same_corpus(&ref, &c));
    deid_corpus_free(&c);
    /* --corpus sniffed as the text file, --phi names the annotations */
    REQUIRE(deid_corpus_load_files(in(d2, "a.txt"), "phrase", NULL, in(d2, "b.ann"), &c, &err) == CF_OK);
    CHECK(same_corpus(&ref, &c));
    deid_corpus_free(&c);
    /* a folder with --phi: only the text comes from the folder */
    REQUIRE(deid_corpus_load_files(fixture(""), "phrase", NULL, in(d2, "b.ann"), &c, &err) == CF_OK);
    CHECK(same_corpus(&ref, &c));
    CHECK(strstr(c.phi_path, "b.ann") != NULL);
    deid_corpus_free(&c);
    /* --text/--phi do not go with an inline corpus nor with presidio */
    char inl[4200];
    snprintf(inl, sizeof inl, "%s/tests/data/clinical-notes-phrase.txt", check_root());
    CHECK(deid_corpus_load_files(inl, "phrase", in(d2, "a.txt"), NULL, &c, &err) == CF_EINPUT);
    CHECK(deid_corpus_load_files(NULL, "presidio", in(d2, "a.txt"), in(d2, "b.ann"), &c, &err) == CF_EINPUT);
    deid_corpus_free(&ref);
    free(text);
    free(phi);
}

/* ---- the inline layout is read as before ------------------------------------------------------------- */

static void test_inline_unchanged(void) {
    char path[4200];
    snprintf(path, sizeof path, "%s/tests/data/clinical-notes-phrase.txt", check_root());
    char *s = slurp(path);
    REQUIRE(s != NULL);
    /* records: "##RECORD" lines; annotations: "{{" after the first one (the comment above it shows
       the syntax) */
    const char *first = !strncmp(s, "##RECORD", 8) ? s : strstr(s, "\n##RECORD");
    REQUIRE(first != NULL);
    if (*first == '\n') first++;
    size_t records = count_str(s, "\n##RECORD") + (first == s), ann = count_str(first, "{{");
    char first_id[64] = "";
    sscanf(first + 8, " %63s", first_id);
    deid_corpus c;
    cf_err err = {0};
    REQUIRE(deid_corpus_load(path, "phrase", &c, &err) == CF_OK);
    CHECK_EQ_INT(c.layout, DEID_LAYOUT_INLINE);
    CHECK_EQ_INT(c.n_docs, records);
    CHECK_EQ_INT(c.n_gold, ann);
    CHECK_EQ_INT(c.pn_annotations, 0);
    CHECK(c.text_path == NULL && c.phi_path == NULL);
    CHECK_EQ_STR(c.docs[0].id, first_id);
    /* no marker left in any record text */
    size_t marks = 0;
    for (size_t i = 0; i < c.n_docs; i++) marks += strstr(c.docs[i].text, "{{") || strstr(c.docs[i].text, "##RECORD");
    CHECK_EQ_INT(marks, 0);
    deid_corpus_free(&c);
    free(s);
}

/* ---- re-casing ------------------------------------------------------------------------------------------ */

static void test_recase(void) {
    deid_corpus c;
    cf_err err = {0};
    REQUIRE(deid_corpus_load(fixture(""), "phrase", &c, &err) == CF_OK);
    size_t nd = c.n_docs;
    char **orig = calloc(nd, sizeof *orig);
    REQUIRE(orig != NULL);
    size_t lower_letters = 0;
    for (size_t i = 0; i < nd; i++) {
        orig[i] = strdup(c.docs[i].text);
        for (size_t k = 0; k < c.docs[i].len; k++) lower_letters += c.docs[i].text[k] >= 'a' && c.docs[i].text[k] <= 'z';
    }
    deid_gold g0 = c.docs[0].gold[0];
    size_t changed = deid_corpus_recase(&c, DEID_CASE_UPPER);
    CHECK_EQ_INT(changed, lower_letters);
    size_t wrong = 0;
    for (size_t i = 0; i < nd; i++) {
        CHECK_EQ_INT(strlen(c.docs[i].text), c.docs[i].len);
        CHECK_EQ_INT(c.docs[i].len, strlen(orig[i]));
        for (size_t k = 0; k < c.docs[i].len; k++) {
            char o = orig[i][k], want = o >= 'a' && o <= 'z' ? (char)(o - 32) : o;
            wrong += c.docs[i].text[k] != want;
        }
    }
    CHECK_EQ_INT(wrong, 0);
    CHECK_EQ_INT(c.docs[0].gold[0].start, g0.start);
    CHECK_EQ_INT(c.docs[0].gold[0].end, g0.end);
    CHECK_EQ_INT(c.docs[0].gold[0].type, g0.type);
    CHECK_EQ_INT(deid_corpus_recase(&c, DEID_CASE_UPPER), 0); /* nothing left to change */
    CHECK(deid_corpus_recase(&c, DEID_CASE_LOWER) > 0);
    size_t upper_left = 0;
    for (size_t i = 0; i < nd; i++)
        for (size_t k = 0; k < c.docs[i].len; k++) upper_left += c.docs[i].text[k] >= 'A' && c.docs[i].text[k] <= 'Z';
    CHECK_EQ_INT(upper_left, 0);
    CHECK_EQ_INT(deid_corpus_recase(&c, DEID_CASE_AS_IS), 0);
    for (size_t i = 0; i < nd; i++) free(orig[i]);
    free(orig);
    deid_corpus_free(&c);

    /* beyond ASCII: a letter changes only when its other case has as many bytes */
    const char *dir = scratch("recase");
    REQUIRE(spit(in(dir, "u.txt"), "##RECORD u\nzoë straße ıstanbul σαβ\n##RECORD l\nİzmir ΣΑΒ ZOË\n") == 0);
    REQUIRE(deid_corpus_load(in(dir, "u.txt"), "phrase", &c, &err) == CF_OK);
    REQUIRE_EQ_INT(c.n_docs, 2);
    size_t l0 = c.docs[0].len, l1 = c.docs[1].len;
    deid_corpus_recase(&c, DEID_CASE_UPPER);
    CHECK_EQ_STR(c.docs[0].text, "ZOË STRAßE ıSTANBUL ΣΑΒ"); /* ß and ı (whose capital is 1 byte) stay */
    CHECK_EQ_INT(c.docs[0].len, l0);
    deid_corpus_recase(&c, DEID_CASE_LOWER);
    CHECK_EQ_STR(c.docs[1].text, "İzmir σαβ zoë"); /* İ -> i would lose a byte */
    CHECK_EQ_INT(c.docs[1].len, l1);
    deid_corpus_free(&c);
}

int main(void) {
    RUN(test_physionet_counts_and_spans);
    RUN(test_category_mapping);
    RUN(test_inclusive_end);
    RUN(test_shifted_offsets);
    RUN(test_crlf);
    RUN(test_bad_files);
    RUN(test_discovery);
    RUN(test_inline_unchanged);
    RUN(test_recase);
    return check_summary();
}
