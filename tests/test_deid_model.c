/* Tests of the de-identifier's fitted model (src/deid/model.c, model_train.c) and of the note
 * generator (src/synth/notes.c):
 *  - the scaled forward-backward against brute-force enumeration of every label path of a short
 *    chain (marginals and log Z);
 *  - the NLL gradient against central finite differences, for emissions and transitions;
 *  - the feature hash read from template and value equals the whole name's, for every split;
 *  - the thread's cache of per-kind row sums is keyed by the model: a second model never reads
 *    the first's sums;
 *  - the model file: save and load give the same weights; bad files are errors naming the line;
 *  - training learns: a model fitted on generated notes finds their PHI better than chance and
 *    writes a loadable file;
 *  - the generator: deterministic, spans inside the text, sorted and non-overlapping, the span
 *    text is what the context gave, casings keep the offsets, and the writers' output reads
 *    back through deid_corpus_load with the same spans;
 *  - one-case generation (round 8): every note in one case, both cases, the same spans as the
 *    mixed note of the same seed; the one-case context features are learned from one-case notes
 *    and never emitted for mixed-case ones. */
#include <ctype.h>
#include <dirent.h>
#include <limits.h>
#include <errno.h>
#include <strings.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "deid/model_int.h"
#include "deid/train.h"
#include "synth/notes.h"

enum { L = DEID_NL };

static uint64_t rs = 88172645463325252ULL;
/* The tests put models of their own in r->model: the shipped folder's model for notes dense with
 * clinical words (model_dense.tsv, round 31) is set aside, so theirs decodes every note. */
static void dense_model_aside(deid_text_rules *r) {
    deid_model_free(r->model_dense);
    r->model_dense = NULL;
}

static float frand(void) {
    rs ^= rs << 13;
    rs ^= rs >> 7;
    rs ^= rs << 17;
    return (float)((rs >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f;
}

/* log Z and marginals by enumerating all L^T paths (T <= 3). */
static double brute(const float *E, size_t T, const float *trans, double *Pm) {
    size_t n = 1;
    for (size_t i = 0; i < T; i++) n *= L;
    double Z = 0;
    memset(Pm, 0, T * L * sizeof *Pm);
    for (size_t code = 0; code < n; code++) {
        size_t c = code;
        int y[4];
        for (size_t i = 0; i < T; i++) y[i] = (int)(c % L), c /= L;
        double s = trans[0 * L + y[0]] + E[y[0]];
        for (size_t i = 1; i < T; i++) s += trans[y[i - 1] * L + y[i]] + E[i * L + y[i]];
        double w = exp(s);
        Z += w;
        for (size_t i = 0; i < T; i++) Pm[i * L + y[i]] += w;
    }
    for (size_t k = 0; k < T * L; k++) Pm[k] /= Z;
    return log(Z);
}

static void test_forward_backward(void) {
    enum { T = 3 };
    float E[T * L], trans[L * L], P[T * L], work[4 * T * L + 1];
    double Pm[T * L];
    for (int k = 0; k < T * L; k++) E[k] = 3 * frand();
    for (int k = 0; k < L * L; k++) trans[k] = 2 * frand();
    double lz = deid__crf_marginals(E, T, trans, P, work);
    double bz = brute(E, T, trans, Pm);
    double worst = 0;
    for (int k = 0; k < T * L; k++) worst = fmax(worst, fabs(P[k] - Pm[k]));
    fprintf(stderr, "  log Z %.6f vs brute force %.6f; largest marginal difference %.2e\n", lz, bz, worst);
    CHECK(fabs(lz - bz) < 1e-4 * fabs(bz) + 1e-4);
    CHECK(worst < 1e-5);
    /* a single word */
    lz = deid__crf_marginals(E, 1, trans, P, work);
    bz = brute(E, 1, trans, Pm);
    CHECK(fabs(lz - bz) < 1e-4);
}

/* Inference hashes a feature from its template and value (deid__feature_hash_parts) and the
 * index was built by hashing whole names (deid__feature_hash): the two must agree for every
 * split of every length, across the 8-byte chunks, or a feature would silently not be found. */
static void test_feature_hash_parts(void) {
    char s[48];
    for (size_t k = 0; k < sizeof s; k++) s[k] = (char)(' ' + (k * 37 + 11) % 95);
    s[5] = (char)0xC3; /* a byte above 0x7f (UTF-8) packs unsigned */
    int agree = 1;
    for (size_t n = 0; n <= 40; n++)
        for (size_t tl = 0; tl <= 8 && tl <= n; tl++)
            agree &= deid__feature_hash_parts(s, tl, s + tl, n - tl) == deid__feature_hash(s, n);
    CHECK(agree);
    /* the hash reads every byte: names differing in one byte or in length differ */
    CHECK(deid__feature_hash("w0=abc", 6) != deid__feature_hash("w0=abd", 6));
    CHECK(deid__feature_hash("w0=abcdefghijk", 14) != deid__feature_hash("w0=abcdefghijj", 14));
    CHECK(deid__feature_hash("b", 1) != deid__feature_hash("b", 0));
}

static void test_gradient(void) {
    enum { T = 5 };
    float E[T * L], trans[L * L], P[T * L], work[4 * T * L + 1], gE[T * L], gT[L * L];
    uint8_t gold[T] = {0, 15, 15, 0, 6};
    for (int k = 0; k < T * L; k++) E[k] = frand();
    for (int k = 0; k < L * L; k++) trans[k] = frand();
    memset(gE, 0, sizeof gE);
    memset(gT, 0, sizeof gT);
    double nll = deid__crf_nll_grad(E, T, trans, gold, P, work, gE, gT);
    CHECK(nll > 0);
    const float h = 1e-2f;
    double worst = 0;
    float dE[T * L], dT[L * L];
    for (int k = 0; k < T * L; k += 7) {
        float keep = E[k];
        memset(dE, 0, sizeof dE), memset(dT, 0, sizeof dT);
        E[k] = keep + h;
        double a = deid__crf_nll_grad(E, T, trans, gold, P, work, dE, dT);
        E[k] = keep - h;
        double b = deid__crf_nll_grad(E, T, trans, gold, P, work, dE, dT);
        E[k] = keep;
        worst = fmax(worst, fabs((a - b) / (2 * h) - gE[k]));
    }
    for (int k = 0; k < L * L; k += 11) {
        float keep = trans[k];
        memset(dE, 0, sizeof dE), memset(dT, 0, sizeof dT);
        trans[k] = keep + h;
        double a = deid__crf_nll_grad(E, T, trans, gold, P, work, dE, dT);
        trans[k] = keep - h;
        double b = deid__crf_nll_grad(E, T, trans, gold, P, work, dE, dT);
        trans[k] = keep;
        worst = fmax(worst, fabs((a - b) / (2 * h) - gT[k]));
    }
    fprintf(stderr, "  NLL gradient vs central differences: largest difference %.2e\n", worst);
    CHECK(worst < 2e-3);
}

static void test_model_file(void) {
    cf_err err = {0};
    deid_model *m = NULL;
    REQUIRE(deid_model_new(&m, &err) == CF_OK);
    const char *names[] = {"b", "w0=levo", "pt=d"};
    m->cap = 4;
    m->w = calloc((size_t)m->cap * L, sizeof *m->w);
    REQUIRE(m->w != NULL);
    for (int f = 0; f < 3; f++) {
        REQUIRE(strmap_intern(&m->feats, names[f], strlen(names[f])) == f);
        for (int y = 0; y < L; y++) m->w[f * L + y] = (y == f) ? 1.5f + (float)f : (y == 3 ? -0.25f : 0.0f);
    }
    m->trans[1 * L + 2] = 0.75f;
    m->threshold = 0.6f;
    m->threshold_bare = 0.45f;
    m->threshold_nopattern = 0.3f;
    char path[4200];
    snprintf(path, sizeof path, "%s/test-deid-model-%d.tsv", check_tmpdir(), (int)getpid());
    REQUIRE(deid_model_save(m, path, 0.01f, &err) == CF_OK);
    deid_model *b = NULL;
    REQUIRE(deid_model_load(&b, path, &err) == CF_OK);
    REQUIRE(b != NULL);
    CHECK(fabsf(b->threshold - 0.6f) < 1e-6f);
    CHECK(fabsf(b->threshold_bare - 0.45f) < 1e-6f);
    CHECK(fabsf(b->threshold_nopattern - 0.3f) < 1e-6f);
    CHECK(fabsf(b->trans[1 * L + 2] - 0.75f) < 1e-6f);
    for (int f = 0; f < 3; f++) {
        int64_t id = strmap_find(&b->feats, names[f], strlen(names[f]));
        REQUIRE(id >= 0);
        for (int y = 0; y < L; y++) CHECK(fabsf(b->w[id * L + y] - m->w[f * L + y]) < 1e-4f);
    }
    deid_model_free(b);
    deid_model_free(m);
    /* bad files: the error names the file and line */
    FILE *f = fopen(path, "w");
    REQUIRE(f != NULL);
    fputs("# clinfm deid model 1\n@threshold\t0.5\nw0=x\tNAME:abc\n", f);
    fclose(f);
    CHECK(deid_model_load(&b, path, &err) == CF_EINPUT);
    CHECK_CONTAINS(err.msg, ":3:");
    f = fopen(path, "w");
    fputs("# clinfm deid model 1\n@threshold\t0.5\n@threshold_bare\t1.5\n", f);
    fclose(f);
    CHECK(deid_model_load(&b, path, &err) == CF_EINPUT);
    CHECK_CONTAINS(err.msg, ":3:");
    CHECK_CONTAINS(err.msg, "threshold_bare");
    /* a model without the stricter thresholds (round 3) decides by @threshold alone */
    f = fopen(path, "w");
    fputs("# clinfm deid model 1\n@threshold\t0.5\n", f);
    fclose(f);
    CHECK(deid_model_load(&b, path, &err) == CF_OK && b != NULL);
    if (b) CHECK(b->threshold_bare == 0 && b->threshold_nopattern == 0);
    deid_model_free(b);
    f = fopen(path, "w");
    fputs("not a model\n", f);
    fclose(f);
    CHECK(deid_model_load(&b, path, &err) == CF_EINPUT);
    CHECK_CONTAINS(err.msg, ":1:");
    f = fopen(path, "w");
    fputs("# clinfm deid model 1\nw0=x\tBOGUS:1\n", f);
    fclose(f);
    CHECK(deid_model_load(&b, path, &err) == CF_EINPUT);
    f = fopen(path, "w");
    fputs("# clinfm deid model 1\n@threshold\t0.5\n@one_case_context\tyes\n", f);
    fclose(f);
    CHECK(deid_model_load(&b, path, &err) == CF_EINPUT);
    CHECK_CONTAINS(err.msg, ":3:");
    remove(path);
    /* no file: no model, no error */
    CHECK(deid_model_load(&b, path, &err) == CF_OK && b == NULL);
}

/* ---- the note generator ------------------------------------------------------------------ */

static void fill_ctx(synth_note_context *c) {
    memset(c, 0, sizeof *c);
    snprintf(c->patient.given, SYNTH_FIELD, "Ottilie");
    snprintf(c->patient.family, SYNTH_FIELD, "Brannigan");
    c->patient.sex = 'F';
    c->n_relatives = 1;
    snprintf(c->relative[0].given, SYNTH_FIELD, "Penny");
    snprintf(c->relative[0].family, SYNTH_FIELD, "Brannigan");
    snprintf(c->relation[0], 16, "son");
    c->n_clinicians = 2;
    snprintf(c->clinician[0].given, SYNTH_FIELD, "Rosalind");
    snprintf(c->clinician[0].family, SYNTH_FIELD, "Quill");
    snprintf(c->role[0], 8, "MD");
    snprintf(c->clinician[1].given, SYNTH_FIELD, "Ryo");
    snprintf(c->clinician[1].family, SYNTH_FIELD, "Tanaka");
    snprintf(c->role[1], 8, "RN");
    c->age = 93;
    c->adm_year = 2031, c->adm_month = 3, c->adm_day = 3;
    c->day_of_stay = 4;
    snprintf(c->hospital, SYNTH_FIELD, "Green Valley General Hospital");
    snprintf(c->hospital_abbr, 16, "GVGH");
    snprintf(c->ward, SYNTH_FIELD, "Kessler 4");
    snprintf(c->street, SYNTH_FIELD, "12 Alder Lane");
    snprintf(c->city, SYNTH_FIELD, "Marblehead");
    snprintf(c->state, 4, "MA");
    snprintf(c->zip, 8, "01945");
    snprintf(c->phone, 24, "(617) 555-0147");
    snprintf(c->pager, 12, "43210");
    snprintf(c->mrn, 16, "4829133");
    snprintf(c->nickname, SYNTH_FIELD, "Skip");
    snprintf(c->facility, SYNTH_FIELD, "Willow Manor");
}

/* Is the span (case ignored) one of the context's strings, or does it hold one? Notes write
 * names in lower or upper case too, hospitals by a prefix of their initials ("GVG"), wards glued
 * to their floor ("Kessler4"). */
static int span_from_ctx(const char *s, size_t n, const char *const *given, size_t ng) {
    char a[256], g[256];
    if (n >= sizeof a) return 0;
    size_t an = 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ') a[an++] = (char)(s[i] >= 'A' && s[i] <= 'Z' ? s[i] + 32 : s[i]);
    a[an] = 0;
    for (size_t q = 0; q < ng; q++) {
        size_t gn = 0;
        for (const char *p = given[q]; *p && gn + 1 < sizeof g; p++)
            if (*p != ' ') g[gn++] = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
        g[gn] = 0;
        if (strstr(a, g) || (an >= 2 && strstr(g, a))) return 1;
    }
    return 0;
}

static void test_generator(void) {
    synth_note_context c;
    fill_ctx(&c);
    cf_err err = {0};
    const char *given[] = {"Ottilie", "Brannigan", "Penny", "Rosalind", "Quill", "QUILL", "Ryo", "Tanaka", "TANAKA", "Kessler 4",
                           "Green Valley General Hospital", "GVGH", "Marblehead", "43210", "4829133", "93", "Skip",
                           "Willow Manor"};
    for (int kind = 0; kind < SYNTH_NOTE_KINDS; kind++)
        for (uint64_t seed = 1; seed <= 40; seed++) {
            synth_note a, b, u;
            REQUIRE(synth_note_write(&c, kind, SYNTH_CASE_MIXED, seed, &a, &err) == CF_OK);
            REQUIRE(synth_note_write(&c, kind, SYNTH_CASE_MIXED, seed, &b, &err) == CF_OK);
            REQUIRE(synth_note_write(&c, kind, SYNTH_CASE_UPPER, seed, &u, &err) == CF_OK);
            CHECK(a.len == b.len && !memcmp(a.text, b.text, a.len)); /* deterministic */
            CHECK_EQ_INT(strlen(a.text), a.len);
            CHECK_EQ_INT(u.len, a.len); /* casing keeps offsets */
            CHECK_EQ_INT(u.n_spans, a.n_spans);
            for (size_t k = 0; k < a.n_spans; k++) {
                const deid_span *s = &a.spans[k];
                CHECK(s->start < s->end && s->end <= a.len);
                if (k) CHECK(s->start >= a.spans[k - 1].end);
                CHECK(s->type >= 0 && s->type < DEID_N_TYPES);
                /* every span holds something the context gave (or a date/email/id made from it) */
                if (s->type == DEID_NAME || s->type == DEID_ORGANIZATION || s->type == DEID_LOCATION) {
                    int ok = span_from_ctx(a.text + s->start, s->end - s->start, given, sizeof given / sizeof given[0]);
                    /* initials and cut names: "R.", "R.T.", "R. Ta" */
                    if (!ok && s->end - s->start <= 5) ok = 1;
                    if (!ok) fprintf(stderr, "  kind %d seed %llu: span \"%.*s\"\n", kind, (unsigned long long)seed,
                                     (int)(s->end - s->start), a.text + s->start);
                    CHECK(ok);
                }
                if (s->type == DEID_AGE_OVER_89) CHECK(!memcmp(a.text + s->start, "93", 2));
            }
            /* nothing the context gave is left outside a span (names of the note's people) */
            for (size_t q = 0; q < 9; q++) {
                const char *p = a.text;
                while ((p = strstr(p, given[q]))) {
                    size_t at = (size_t)(p - a.text);
                    int in = 0;
                    for (size_t k = 0; k < a.n_spans; k++) in |= a.spans[k].start <= at && at < a.spans[k].end;
                    if (!in) fprintf(stderr, "  kind %d seed %llu: \"%s\" outside a span\n", kind, (unsigned long long)seed, given[q]);
                    CHECK(in);
                    p += strlen(given[q]);
                }
            }
            synth_note_free(&a);
            synth_note_free(&b);
            synth_note_free(&u);
        }
    CHECK(synth_note_write(&c, 99, 0, 1, &(synth_note){0}, &err) == CF_EINPUT);
}

static int same_spans(const deid_corpus *a, const deid_corpus *b) {
    if (a->n_docs != b->n_docs) return 0;
    for (size_t i = 0; i < a->n_docs; i++) {
        if (a->docs[i].n_gold != b->docs[i].n_gold) return 0;
        for (size_t k = 0; k < a->docs[i].n_gold; k++) {
            const deid_gold *x = &a->docs[i].gold[k], *y = &b->docs[i].gold[k];
            if (x->start != y->start || x->end != y->end || x->type != y->type) return 0;
        }
        if (memcmp(a->docs[i].text, b->docs[i].text, a->docs[i].len)) return 0;
    }
    return 1;
}

static void test_writers_and_training(void) {
    char rules[4200], p1[4300], p2[4300], p3[4300], t3[4400], f3[4400];
    snprintf(rules, sizeof rules, "%s/data/deid", check_root());
    cf_err err = {0};
    synth_notes sn;
    REQUIRE(synth_notes_generate(&sn, rules, SYNTH_NAMES_HELDOUT, 24, 7, &err) == CF_OK);
    CHECK_EQ_INT(sn.corpus.n_docs, 24);
    CHECK(sn.corpus.n_gold > 24);
    snprintf(p1, sizeof p1, "%s/test-notes-%d.json", check_tmpdir(), (int)getpid());
    snprintf(p2, sizeof p2, "%s/test-notes-%d.txt", check_tmpdir(), (int)getpid());
    snprintf(p3, sizeof p3, "%s/test-notes-%d", check_tmpdir(), (int)getpid());
    FILE *f = fopen(p1, "w");
    REQUIRE(f && synth_notes_write_presidio(f, &sn.corpus, &err) == CF_OK);
    fclose(f);
    f = fopen(p2, "w");
    REQUIRE(f && synth_notes_write_phrase(f, &sn.corpus, &err) == CF_OK);
    fclose(f);
    REQUIRE(mkdir(p3, 0700) == 0);
    snprintf(t3, sizeof t3, "%s/id.text", p3);
    snprintf(f3, sizeof f3, "%s/id-phi.phrase", p3);
    FILE *ft = fopen(t3, "w"), *fp = fopen(f3, "w");
    REQUIRE(ft && fp && synth_notes_write_physionet(ft, fp, &sn.corpus, &err) == CF_OK);
    fclose(ft);
    fclose(fp);
    deid_corpus c;
    REQUIRE(deid_corpus_load(p1, "presidio", &c, &err) == CF_OK);
    CHECK(same_spans(&sn.corpus, &c));
    deid_corpus_free(&c);
    REQUIRE(deid_corpus_load(p2, "phrase", &c, &err) == CF_OK);
    CHECK(same_spans(&sn.corpus, &c));
    deid_corpus_free(&c);
    REQUIRE(deid_corpus_load(p3, "phrase", &c, &err) == CF_OK);
    CHECK_EQ_INT(c.n_docs, sn.corpus.n_docs);
    CHECK_EQ_INT(c.n_gold, sn.corpus.n_gold);
    CHECK_EQ_INT(c.pn_misaligned, 0);
    deid_corpus_free(&c);
    remove(p1), remove(p2), remove(t3), remove(f3), rmdir(p3);

    /* a small model fitted on generated notes (listed names) finds the PHI of held-apart ones
       far better than a model that knows nothing */
    synth_notes tr;
    REQUIRE(synth_notes_generate(&tr, rules, SYNTH_NAMES_LISTED, 12 * SYNTH_NOTE_EVENT, 3, &err) == CF_OK);
    deid_text_rules *r = NULL;
    REQUIRE(deid_rules_load(&r, rules, &err) == CF_OK);
    dense_model_aside(r);
    const deid_doc **docs = malloc(tr.corpus.n_docs * sizeof *docs);
    REQUIRE(docs != NULL);
    for (size_t i = 0; i < tr.corpus.n_docs; i++) docs[i] = &tr.corpus.docs[i];
    deid_train_opts o;
    deid_train_opts_default(&o);
    o.epochs = 2;
    char mp[4300];
    snprintf(mp, sizeof mp, "%s/test-model-%d.tsv", check_tmpdir(), (int)getpid());
    REQUIRE(deid_model_train(r, docs, tr.corpus.n_docs, &o, mp, &err) == CF_OK);
    deid_model *m = NULL;
    REQUIRE(deid_model_load(&m, mp, &err) == CF_OK && m != NULL);
    deid_model *keep = r->model;
    r->model = m;
    deid_eval_result res;
    REQUIRE(deid_evaluate(r, &sn.corpus, &res, NULL, NULL, &err) == CF_OK);
    double rec = deid_ratio(res.overlap_all.gold_hit, res.overlap_all.gold_n);
    double prec = deid_ratio(res.overlap_all.pred_hit, res.overlap_all.pred_n);
    fprintf(stderr, "  2-epoch model on %d generated notes, held-apart names: recall %.3f precision %.3f\n", 12 * SYNTH_NOTE_EVENT, rec, prec);
    CHECK(rec > 0.85);
    CHECK(prec > 0.85);
    r->model = keep;
    deid_model_free(m);
    remove(mp);
    free(docs);
    deid_rules_free(r);
    synth_notes_free(&tr);
    synth_notes_free(&sn);
}

/* The type of the span over needle in text: -1 when none, -2 when needle is not in text, -3 on error. */
static int span_type(const deid_text_rules *r, const char *text, const char *needle) {
    const char *p = strstr(text, needle);
    if (!p) return -2;
    size_t s = (size_t)(p - text), e = s + strlen(needle);
    deid_span *sp = NULL;
    size_t n = 0;
    cf_err err = {0};
    if (deid_find(r, text, strlen(text), NULL, &sp, &n, &err)) return -3;
    int ty = -1;
    for (size_t i = 0; i < n; i++)
        if (sp[i].start < e && s < sp[i].end) ty = sp[i].type;
    free(sp);
    return ty;
}

/* Does a span overlap needle in text? 1 or 0 (-2, -3 as span_type). */
static int taken(const deid_text_rules *r, const char *text, const char *needle) {
    int ty = span_type(r, text, needle);
    return ty < -1 ? ty : ty >= 0;
}

/* The stricter thresholds of the shipped model: numbers in clinical context that the model gives
 * some probability of a shaped type but no pattern covers, and clinical words no evidence layer
 * marks, are kept; deciding by one loose threshold the same model removes the numbers.
 * Identifiers with a pattern or a cue are still taken. (Since round 6 the calibrated threshold
 * may itself be at or below the bare-word one, which then adds nothing.) */
static void test_less_evidence_thresholds(void) {
    char rules[4200];
    snprintf(rules, sizeof rules, "%s/data/deid", check_root());
    cf_err err = {0};
    deid_text_rules *r = NULL;
    REQUIRE(deid_rules_load(&r, rules, &err) == CF_OK);
    dense_model_aside(r);
    REQUIRE(r->model != NULL);
    CHECK(r->model->threshold_bare > 0 && r->model->threshold_bare < 0.9f);
    CHECK(r->model->threshold_nopattern > 0 && r->model->threshold_nopattern < r->model->threshold);
    static const char *const clean[][2] = {
        {"Propofol 15cc/hr, residuals 35cc.", "35cc"},
        {"Lactulose 20cc via NGT q6h.", "20cc"},
        {"Lasix 40mg IV at 2215, diuresed 1120cc.", "1120cc"},
        {"Diuresed 980cc since noon.", "Diuresed"},
    };
    static const char *const phi[][2] = {
        {"Plan d/w Dr. Quillfeather, pager 43122.", "Quillfeather"},
        {"Plan d/w Dr. Quillfeather, pager 43122.", "43122"},
        {"CXR 4/9: improving.", "4/9"},
        {"Son, Penny, called, updated.", "Penny"},
    };
    float tb = r->model->threshold_bare, tn = r->model->threshold_nopattern, t0 = r->model->threshold;
    for (size_t k = 0; k < sizeof clean / sizeof clean[0]; k++) {
        int h = taken(r, clean[k][0], clean[k][1]);
        if (h) fprintf(stderr, "  \"%s\" taken in \"%s\"\n", clean[k][1], clean[k][0]);
        CHECK_EQ_INT(h, 0);
    }
    for (size_t k = 0; k < sizeof phi / sizeof phi[0]; k++) CHECK_EQ_INT(taken(r, phi[k][0], phi[k][1]), 1);
    /* the same model deciding by one loose threshold (0.999) takes the numbers: the shaped-type
       gate is what keeps them. (The round-4 model also took "Diuresed" there; the round-6 model
       is sure of it without the bare-word gate, so it is checked above only.) */
    r->model->threshold_bare = 0, r->model->threshold_nopattern = 0, r->model->threshold = 0.999f;
    for (size_t k = 0; k < 3; k++) {
        int h = taken(r, clean[k][0], clean[k][1]);
        if (!h) fprintf(stderr, "  \"%s\" not taken with one threshold\n", clean[k][1]);
        CHECK_EQ_INT(h, 1);
    }
    for (size_t k = 0; k < sizeof phi / sizeof phi[0]; k++) CHECK_EQ_INT(taken(r, phi[k][0], phi[k][1]), 1);
    r->model->threshold_bare = tb, r->model->threshold_nopattern = tn, r->model->threshold = t0;
    deid_rules_free(r);
}

/* Does any byte of the note's text fall in [lo, hi]? */
static int has_range(const deid_doc *d, char lo, char hi) {
    for (size_t k = 0; k < d->len; k++)
        if (d->text[k] >= lo && d->text[k] <= hi) return 1;
    return 0;
}

/* SYNTH_GEN_ONE_CASE: every note in one case, upper and lower by blocks of kinds, and each the
 * re-cased twin of what the default generator writes for the same seed (so the spans and
 * offsets are the generator's own). */
/* Round 11: the training kinds write names coordinated in running text ("RN and Quill aware",
 * "Penny and Rosalind visited") and the same shapes with no name in them ("RN and MD aware",
 * "wife and son visited"): both must occur in a sample of training notes, and a span right
 * beside such an "and" is a name. Fails when coord_maybe writes nothing (checked). */
static int role_or_kin(const char *w, size_t n) {
    static const char *const v[] = {"rn", "md", "np", "resident", "team", "sw", "cm", "pt", "ot", "wife", "son",
                                    "dtr", "family", "hcp", "attending", "daughter", "friends", "nutrition",
                                    "chaplain", "pharmacy", "husband"};
    for (size_t k = 0; k < sizeof v / sizeof v[0]; k++)
        if (strlen(v[k]) == n && !strncasecmp(w, v[k], n)) return 1;
    return 0;
}

static void test_coordinated_names(void) {
    char rules[4200];
    snprintf(rules, sizeof rules, "%s/data/deid", check_root());
    cf_err err = {0};
    synth_notes sn;
    REQUIRE(synth_notes_generate_ex(&sn, rules, SYNTH_NAMES_LISTED, 0, 20 * SYNTH_NOTE_EVENT, 13, &err) == CF_OK);
    size_t named = 0, pairs = 0;
    for (size_t i = 0; i < sn.corpus.n_docs; i++) {
        const deid_doc *d = &sn.corpus.docs[i];
        for (size_t k = 0; k < d->n_gold; k++) {
            const deid_gold *g = &d->gold[k];
            int before = g->start >= 5 && !memcmp(d->text + g->start - 5, " and ", 5);
            int after = g->end + 5 <= d->len && !memcmp(d->text + g->end, " and ", 5);
            if (before || after) {
                named++;
                CHECK_EQ_INT(g->type, DEID_NAME);
            }
        }
        /* "<role or kin> and <role or kin>" */
        for (const char *p = d->text; (p = memmem(p, d->len - (size_t)(p - d->text), " and ", 5)); p += 5) {
            const char *l = p, *r = p + 5, *re = r;
            while (l > d->text && isalpha((unsigned char)l[-1])) l--;
            while (re < d->text + d->len && isalpha((unsigned char)*re)) re++;
            pairs += role_or_kin(l, (size_t)(p - l)) && role_or_kin(r, (size_t)(re - r));
        }
    }
    fprintf(stderr, "  %zu notes: %zu spans beside \"and\", %zu role or kin pairs\n", sn.corpus.n_docs, named, pairs);
    CHECK(named >= 15);
    CHECK(pairs >= 1); /* without coord_maybe: 9 spans, 0 pairs; with it 23 and 2 (seed 13) */
    synth_notes_free(&sn);
}

static void test_one_case_generation(void) {
    char rules[4200];
    snprintf(rules, sizeof rules, "%s/data/deid", check_root());
    cf_err err = {0};
    size_t n = 4 * SYNTH_NOTE_EVENT;
    synth_notes oc, mx;
    REQUIRE(synth_notes_generate_ex(&oc, rules, SYNTH_NAMES_LISTED, SYNTH_GEN_ONE_CASE, n, 11, &err) == CF_OK);
    REQUIRE(synth_notes_generate_ex(&mx, rules, SYNTH_NAMES_LISTED, 0, n, 11, &err) == CF_OK);
    REQUIRE(oc.corpus.n_docs == n && mx.corpus.n_docs == n);
    size_t upper = 0, lower = 0, mixed = 0;
    for (size_t i = 0; i < n; i++) {
        const deid_doc *d = &oc.corpus.docs[i], *m = &mx.corpus.docs[i];
        int lo = has_range(d, 'a', 'z'), up = has_range(d, 'A', 'Z');
        CHECK(!(lo && up));
        upper += up && !lo;
        lower += lo && !up;
        mixed += has_range(m, 'a', 'z') && has_range(m, 'A', 'Z');
        /* the same note re-cased: same length, same spans */
        CHECK_EQ_INT(d->len, m->len);
        CHECK_EQ_INT(d->n_gold, m->n_gold);
        int same = d->len == m->len && d->n_gold == m->n_gold;
        for (size_t k = 0; same && k < d->n_gold; k++)
            same = d->gold[k].start == m->gold[k].start && d->gold[k].end == m->gold[k].end && d->gold[k].type == m->gold[k].type;
        for (size_t k = 0; same && k < d->len; k++) {
            char a = d->text[k], b = m->text[k];
            if (a >= 'a' && a <= 'z') a = (char)(a - 32);
            if (b >= 'a' && b <= 'z') b = (char)(b - 32);
            same = a == b;
        }
        CHECK(same);
    }
    CHECK_EQ_INT(upper, n / 2);
    CHECK_EQ_INT(lower, n / 2);
    CHECK(mixed >= n / 3); /* the default generator writes half its notes in mixed case */
    synth_notes_free(&oc);
    synth_notes_free(&mx);
}

/* Does the model file at path hold a feature line starting with prefix? */
static int model_has(const char *path, const char *prefix) {
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char line[512];
    int hit = 0;
    while (!hit && fgets(line, sizeof line, f)) hit = !strncmp(line, prefix, strlen(prefix));
    fclose(f);
    return hit;
}

static int fit_small(deid_text_rules *r, const synth_notes *tr, int one_case_context, const char *mp, cf_err *err) {
    const deid_doc **docs = malloc(tr->corpus.n_docs * sizeof *docs);
    if (!docs) return CF_EINTERNAL;
    for (size_t i = 0; i < tr->corpus.n_docs; i++) docs[i] = &tr->corpus.docs[i];
    deid_train_opts o;
    deid_train_opts_default(&o);
    o.epochs = 1;
    o.one_case_context = one_case_context;
    int rc = deid_model_train(r, docs, tr->corpus.n_docs, &o, mp, err);
    free(docs);
    return rc;
}

/* The one-case context features (model.c, one_case_context) exist only for notes written in one
 * case and only in a model trained with them: a model fitted on mixed-case notes alone has none,
 * nor one fitted on one-case notes without the option; one fitted on one-case notes with it has
 * them and says so in its file, and reads back with the flag set. */
/* The shipped rules folder loaded, and a temporary model path named by tag. */
static deid_text_rules *rules_and_model_path(char *rules, size_t rcap, char *mp, size_t mcap, const char *tag) {
    snprintf(rules, rcap, "%s/data/deid", check_root());
    snprintf(mp, mcap, "%s/test-model-%s-%d.tsv", check_tmpdir(), tag, (int)getpid());
    cf_err err = {0};
    deid_text_rules *r = NULL;
    if (deid_rules_load(&r, rules, &err) != CF_OK) return NULL;
    dense_model_aside(r);
    return r;
}

static void test_one_case_features(void) {
    char rules[4200], mp[4300];
    cf_err err = {0};
    deid_text_rules *r = rules_and_model_path(rules, sizeof rules, mp, sizeof mp, "oc");
    REQUIRE(r != NULL);
    synth_notes mx, oc;
    REQUIRE(synth_notes_generate_ex(&mx, rules, SYNTH_NAMES_LISTED, 0, 4 * SYNTH_NOTE_EVENT, 5, &err) == CF_OK);
    /* keep the mixed-case notes only */
    size_t w = 0;
    for (size_t i = 0; i < mx.corpus.n_docs; i++) {
        deid_doc *d = &mx.corpus.docs[i];
        if (has_range(d, 'a', 'z') && has_range(d, 'A', 'Z')) {
            deid_doc t = mx.corpus.docs[w];
            mx.corpus.docs[w++] = *d;
            *d = t;
        }
    }
    CHECK(w >= mx.corpus.n_docs / 3);
    size_t all = mx.corpus.n_docs;
    mx.corpus.n_docs = w;
    REQUIRE(fit_small(r, &mx, 1, mp, &err) == CF_OK);
    CHECK_EQ_INT(model_has(mp, "o-1="), 0);
    CHECK_EQ_INT(model_has(mp, "o+1="), 0);
    CHECK_EQ_INT(model_has(mp, "w-1="), 1); /* the shared context features are there */
    mx.corpus.n_docs = all;
    REQUIRE(synth_notes_generate_ex(&oc, rules, SYNTH_NAMES_LISTED, SYNTH_GEN_ONE_CASE, 4 * SYNTH_NOTE_EVENT, 5, &err) == CF_OK);
    REQUIRE(fit_small(r, &oc, 0, mp, &err) == CF_OK);
    CHECK_EQ_INT(model_has(mp, "o-1="), 0);
    CHECK_EQ_INT(model_has(mp, "@one_case_context"), 0);
    REQUIRE(fit_small(r, &oc, 1, mp, &err) == CF_OK);
    CHECK_EQ_INT(model_has(mp, "o-1="), 1);
    CHECK_EQ_INT(model_has(mp, "o+1="), 1);
    CHECK_EQ_INT(model_has(mp, "o11="), 1);
    CHECK_EQ_INT(model_has(mp, "@one_case_context\t1"), 1);
    deid_model *m = NULL;
    REQUIRE(deid_model_load(&m, mp, &err) == CF_OK && m != NULL);
    CHECK_EQ_INT(m->one_case_context, 1);
    deid_model_free(m);
    remove(mp);
    synth_notes_free(&mx);
    synth_notes_free(&oc);
    deid_rules_free(r);
}

/* Round 12: list notes also hold item titles of four to nine words (title_lines), now and then
 * a line with a clinician's name or a date (their only PHI), drawn
 * from a stream of their own: the labels of round 11 come first, unchanged. */
static void test_title_lines(void) {
    synth_note_context c;
    fill_ctx(&c);
    cf_err err = {0};
    size_t long_lines = 0, notes = 0;
    for (uint64_t seed = 1; seed <= 20; seed++) {
        synth_note a;
        REQUIRE(synth_note_write(&c, SYNTH_NOTE_LIST, SYNTH_CASE_UPPER, seed, &a, &err) == CF_OK);
        for (size_t k = 0; k < a.n_spans; k++) CHECK(a.spans[k].type == DEID_NAME || a.spans[k].type == DEID_DATE);
        notes++;
        size_t words = 0;
        int in = 0;
        for (size_t i = 0; i <= a.len; i++) {
            int ch = i < a.len ? (unsigned char)a.text[i] : '\n';
            if (ch == '\n') {
                long_lines += words >= 4 && words <= 12;
                words = 0, in = 0;
            } else if (isalnum(ch)) {
                if (!in) words++;
                in = 1;
            } else if (ch == ' ') {
                in = 0;
            }
        }
        synth_note_free(&a);
    }
    fprintf(stderr, "  %zu list notes: %zu lines of 4-12 words\n", notes, long_lines);
    CHECK(long_lines >= 20 * notes); /* 532 (seeds 1-20); without title_lines 243, labels with a long suffix */
}

/* Round 13: nursing notes of short unlabelled lines. A full stop after a word of three letters or
 * more, or after a number, followed by a space or a line's end, outside every span: what
 * is_list_note (model.c) calls a sentence end. */
static size_t sentence_ends(const synth_note *a) {
    size_t n = 0, k = 0;
    for (size_t i = 1; i < a->len; i++) {
        while (k < a->n_spans && a->spans[k].end <= i) k++;
        if (k < a->n_spans && a->spans[k].start <= i) continue;
        char nx = i + 1 < a->len ? a->text[i + 1] : '\n';
        if (a->text[i] != '.' || (nx != ' ' && nx != '\n')) continue;
        size_t wl = 0;
        while (wl < i && isalnum((unsigned char)a->text[i - 1 - wl])) wl++;
        if (wl >= 3 || (wl >= 1 && isdigit((unsigned char)a->text[i - 1]))) n++;
    }
    return n;
}

/* The held-apart kind (SYNTH_NOTE_SHORTLINE) writes eight or more lines with no sentence end and
 * names, dates, phone numbers and places in them; the training kind (SYNTH_NOTE_LINES) is a
 * run-on nursing note broken into lines: no sentence end is left outside a span (the run-on note
 * it is made from has several), and its spans still name what the context gave (test_generator
 * checks every kind's strings). */
static void test_short_line_kinds(void) {
    synth_note_context c;
    fill_ctx(&c);
    cf_err err = {0};
    size_t types[DEID_N_TYPES] = {0}, ends = 0, short_notes = 0, lines_ends = 0, runon_ends = 0, lines_names = 0;
    for (uint64_t seed = 1; seed <= 40; seed++) {
        synth_note a, l, r;
        REQUIRE(synth_note_write(&c, SYNTH_NOTE_SHORTLINE, SYNTH_CASE_MIXED, seed, &a, &err) == CF_OK);
        size_t lines = 0;
        for (size_t i = 0; i < a.len; i++) lines += a.text[i] == '\n';
        short_notes += lines >= 8;
        ends += sentence_ends(&a);
        for (size_t k = 0; k < a.n_spans; k++) types[a.spans[k].type]++;
        REQUIRE(synth_note_write(&c, SYNTH_NOTE_LINES, SYNTH_CASE_MIXED, seed, &l, &err) == CF_OK);
        REQUIRE(synth_note_write(&c, SYNTH_NOTE_NURSING_RUNON, SYNTH_CASE_MIXED, seed, &r, &err) == CF_OK);
        lines_ends += sentence_ends(&l);
        runon_ends += sentence_ends(&r);
        for (size_t k = 0; k < l.n_spans; k++) lines_names += l.spans[k].type == DEID_NAME;
        CHECK(l.n_spans == r.n_spans); /* the same note, broken into lines */
        synth_note_free(&a);
        synth_note_free(&l);
        synth_note_free(&r);
    }
    fprintf(stderr, "  short-line notes: %zu of 40 with 8+ lines, %zu sentence ends, NAME %zu DATE %zu PHONE %zu LOCATION %zu ORG %zu;"
                    " lines notes: %zu sentence ends (run-on %zu), %zu names\n",
            short_notes, ends, types[DEID_NAME], types[DEID_DATE], types[DEID_PHONE], types[DEID_LOCATION],
            types[DEID_ORGANIZATION], lines_ends, runon_ends, lines_names);
    CHECK_EQ_INT(short_notes, 40);
    CHECK(ends <= 10); /* only "ext." of a phone extension (5 in seeds 1-40) */
    CHECK(types[DEID_NAME] >= 40 && types[DEID_DATE] >= 20 && types[DEID_PHONE] >= 10);
    CHECK(types[DEID_LOCATION] + types[DEID_ORGANIZATION] >= 10);
    CHECK_EQ_INT(lines_ends, 0);
    CHECK(runon_ends >= 100);
    CHECK(lines_names >= 40);
}

/* Round 14: lines_note breaks the run-on note by a rule read off the run-on text itself: a full
 * stop followed by a space after a word of three letters or digits or more (or ending in a
 * digit), outside a span, always becomes one line break; such a comma may; such a stop at a
 * line's end is dropped; every other byte is kept. Round 13's scan looked back over bytes it had
 * already rewritten in place, so after the first break it judged the word before a stop by
 * shifted bytes. The lines note is aligned against the run-on note of the same seed, byte by byte,
 * and every span must still cover the same text. */
static int runon_wordy(const char *t, size_t i) {
    size_t wl = 0;
    while (wl < i && isalnum((unsigned char)t[i - 1 - wl])) wl++;
    return wl >= 3 || (wl >= 1 && isdigit((unsigned char)t[i - 1]));
}

static void lines_follow_rule(int opts, size_t *notes_ok_out, size_t *stops_out, size_t *commas_out, size_t *spans_ok_out, size_t *spans_out) {
    synth_note_context c;
    fill_ctx(&c);
    cf_err err = {0};
    size_t notes_ok = 0, stops = 0, commas = 0, spans_ok = 0, spans = 0;
    for (uint64_t seed = 1; seed <= 40; seed++) {
        synth_note l, r;
        REQUIRE(synth_note_write_opt(&c, SYNTH_NOTE_LINES, SYNTH_CASE_MIXED, seed, NULL, opts, &l, &err) == CF_OK);
        REQUIRE(synth_note_write_opt(&c, SYNTH_NOTE_NURSING_RUNON, SYNTH_CASE_MIXED, seed, NULL, opts, &r, &err) == CF_OK);
        const char *t = r.text;
        size_t n = r.len, i = 0, j = 0, k = 0;
        size_t *at = malloc((n + 1) * sizeof *at); /* where each run-on byte lands in the lines note */
        REQUIRE(at != NULL);
        int ok = l.n_spans == r.n_spans;
        while (ok && i < n) {
            while (k < r.n_spans && r.spans[k].end <= i) k++;
            int free_byte = !(k < r.n_spans && r.spans[k].start <= i && i < r.spans[k].end);
            int wordy = free_byte && runon_wordy(t, i);
            if (wordy && i + 1 < n && t[i + 1] == ' ' && (t[i] == '.' || t[i] == ',')) {
                if (j < l.len && l.text[j] == '\n') { /* broken here */
                    stops += t[i] == '.';
                    commas += t[i] == ',';
                    at[i] = at[i + 1] = j++;
                    i += 2;
                    continue;
                }
                if (t[i] == '.') ok = 0; /* a stop the rule breaks, kept */
            } else if (wordy && t[i] == '.' && (i + 1 == n || t[i + 1] == '\n')) {
                at[i++] = j; /* a stop at a line's end, dropped */
                continue;
            }
            if (!ok || j >= l.len || l.text[j] != t[i]) {
                ok = 0;
                break;
            }
            at[i++] = j++;
        }
        if (ok && i == n && j == l.len) {
            at[n] = j;
            notes_ok++;
            for (size_t q = 0; q < r.n_spans; q++) {
                spans++;
                const deid_span *a = &r.spans[q], *b = &l.spans[q];
                spans_ok += b->start == at[a->start] && b->end == at[a->end] && b->end - b->start == a->end - a->start &&
                            !memcmp(l.text + b->start, t + a->start, a->end - a->start);
            }
        }
        free(at);
        synth_note_free(&l);
        synth_note_free(&r);
    }
    *stops_out = stops;
    *commas_out = commas;
    *spans_ok_out = spans_ok;
    *spans_out = spans;
    *notes_ok_out = notes_ok;
}

static void test_lines_break_rule(void) {
    size_t notes_ok = 0, stops = 0, commas = 0, spans_ok = 0, spans = 1;
    lines_follow_rule(0, &notes_ok, &stops, &commas, &spans_ok, &spans);
    fprintf(stderr, "  lines notes: %zu of 40 follow the break rule (%zu stops, %zu commas broken), %zu of %zu spans moved right\n",
            notes_ok, stops, commas, spans_ok, spans);
    CHECK_EQ_INT(notes_ok, 40);
    CHECK(stops >= 300 && commas >= 20);
    CHECK_EQ_INT(spans_ok, spans);
}

/* Round 13: coded-finding prose (notes.c, coded_paragraph, SYNTH_NOTE_OPT_CODED) opens about half
 * the progress and social notes and no nursing note, holds no span, and leaves the rest of the
 * note as it was: the text after the prose, and every span moved by the prose's length, are the
 * bytes written without the option. */
static int tagged_line(const char *s, size_t n) {
    static const char *const TAGS[] = {"(finding)", "(disorder)", "(procedure)", "(situation)", "(observable entity)",
                                       "(regime/therapy)", "(qualifier value)", "(social concept)", "(event)"};
    for (size_t k = 0; k < sizeof TAGS / sizeof *TAGS; k++) {
        size_t tl = strlen(TAGS[k]);
        for (size_t i = 0; i + tl <= n; i++)
            if (!memcmp(s + i, TAGS[k], tl)) return 1;
    }
    return 0;
}

static void test_coded_paragraphs(void) {
    synth_note_context c;
    fill_ctx(&c);
    cf_err err = {0};
    size_t with = 0, other = 0, same = 0;
    for (uint64_t seed = 1; seed <= 40; seed++) {
        int kind = seed % 2 ? SYNTH_NOTE_PROGRESS : SYNTH_NOTE_SOCIAL;
        synth_note a, p, n;
        REQUIRE(synth_note_write_opt(&c, kind, SYNTH_CASE_MIXED, seed, NULL, SYNTH_NOTE_OPT_CODED, &a, &err) == CF_OK);
        REQUIRE(synth_note_write_opt(&c, kind, SYNTH_CASE_MIXED, seed, NULL, 0, &p, &err) == CF_OK);
        REQUIRE(synth_note_write_opt(&c, SYNTH_NOTE_NURSING, SYNTH_CASE_MIXED, seed, NULL, SYNTH_NOTE_OPT_CODED, &n, &err) == CF_OK);
        /* the prose: the lines from the top that hold a tag, and the empty line after them */
        size_t end = 0;
        while (end < a.len) {
            const char *nl = memchr(a.text + end, '\n', a.len - end);
            size_t le = nl ? (size_t)(nl - a.text) : a.len;
            if (!tagged_line(a.text + end, le - end)) break;
            end = le + 1;
        }
        if (end) {
            with++;
            end += end < a.len && a.text[end] == '\n';
        }
        size_t d = a.len - p.len;
        int ok = end == d && !memcmp(a.text + d, p.text, p.len) && a.n_spans == p.n_spans;
        for (size_t k = 0; ok && k < a.n_spans; k++)
            ok = a.spans[k].start == p.spans[k].start + d && a.spans[k].end == p.spans[k].end + d;
        same += ok;
        other += tagged_line(n.text, n.len);
        synth_note_free(&a);
        synth_note_free(&p);
        synth_note_free(&n);
    }
    fprintf(stderr, "  coded prose in %zu of 40 progress/social notes, %zu nursing notes; rest unchanged in %zu\n", with, other, same);
    CHECK(with >= 10 && with <= 30);
    CHECK_EQ_INT(other, 0);
    CHECK_EQ_INT(same, 40);
}

/* Round 12: the list-note features (model.c, is_list_note) exist for a note of eight or more
 * item lines and never for a form of field labels ("CC: ...") or for prose of the same length
 * whose lines end sentences: a model fitted on the first has them, one fitted on the others none. */
/* Fits texts (no annotation) with the options o into mp. */
static void fit_texts_with(deid_text_rules *r, const char *const *texts, size_t n, const deid_train_opts *o, const char *mp,
                           cf_err *err) {
    deid_doc *docs = calloc(n, sizeof *docs);
    const deid_doc **dp = calloc(n, sizeof *dp);
    REQUIRE(docs && dp);
    for (size_t i = 0; i < n; i++) {
        docs[i].text = (char *)texts[i];
        docs[i].len = strlen(texts[i]);
        dp[i] = &docs[i];
    }
    CHECK(deid_model_train(r, dp, n, o, mp, err) == CF_OK);
    free(docs);
    free(dp);
}

static void fit_texts_opts(deid_text_rules *r, const char *const *texts, size_t n, int gate, int catalogue, const char *mp,
                           cf_err *err) {
    deid_train_opts o;
    deid_train_opts_default(&o);
    o.epochs = 2;
    o.list_person_gate = gate;
    o.list_catalogue_test = catalogue;
    fit_texts_with(r, texts, n, &o, mp, err);
}

static void fit_texts(deid_text_rules *r, const char *const *texts, size_t n, int gate, const char *mp, cf_err *err) {
    fit_texts_opts(r, texts, n, gate, 0, mp, err);
}

/* Round 15 (deid-train --list-catalogue-test, in the shipped model since round 16): a list note none
 * of whose lines reads as narrative (a kinship word, a pronoun, an auxiliary verb, a charting verb
 * of keep_name_verbs.txt, a clock time) is a catalogue, and round 13's person-cue gate applies in
 * it only beside a title or a cue phrase of several words: its title words beside "Patient" or
 * "Provider" keep the list features (lst=OM for an unlisted capitalised word), a name after
 * "ordered by Dr" does not. A nursing list note (kinship words, "is", a clock time) keeps the
 * gate, and the switch is written into the model file. */
/* Fits on six copies of one note, with the person-cue gate and the catalogue test as given. */
static void fit_six(deid_text_rules *r, const char *note, int gate, int catalogue, const char *mp, cf_err *err) {
    const char *six[] = {note, note, note, note, note, note};
    fit_texts_opts(r, six, 6, gate, catalogue, mp, err);
}

static void test_list_catalogue_test(void) {
    /* item titles whose unlisted words each stand beside "Patient" or "Provider" */
    const char *cat = "Patient Zorbanek Score\nKnee sleeve, elastic\nProvider Quelvarin Index\nWrist orthosis with strap\n"
                      "Patient Vrastomel Scale\nSplint padding roll\nProvider Pellimonde Form\nGait belt for transfer\n"
                      "Shower chair with back\n";
    char rules[4200], mp[4300];
    cf_err err = {0};
    deid_text_rules *r = rules_and_model_path(rules, sizeof rules, mp, sizeof mp, "cat");
    REQUIRE(r != NULL);
    for (int ct = 0; ct < 2; ct++) {
        fit_six(r, cat, 1, ct, mp, &err);
        CHECK_EQ_INT(model_has(mp, "lst=OM"), ct);
        CHECK_EQ_INT(model_has(mp, "@list_catalogue_test"), ct);
        /* a nursing note of short lines: kinship words, "is", a clock time */
        fit_six(r, "wife Zorbanek here\nson Quelvarin called\nturned q2h\nVrastomel RN aware\nlungs coarse\n"
                   "dtr Pellimonde in\nfoley draining\n1930 NP Hostravik notified\npain is controlled\n",
                1, ct, mp, &err);
        CHECK_EQ_INT(model_has(mp, "lst=OM"), 0);
    }
    /* without the gate the test changes nothing: the list features are everywhere */
    fit_six(r, cat, 0, 1, mp, &err);
    CHECK_EQ_INT(model_has(mp, "lst=OM"), 1);
    /* a catalogue whose unlisted words stand after a title or "ordered by": still gated */
    fit_six(r, "Knee sleeve, elastic\nOrdered by Dr Zorbanek\nWrist orthosis with strap\nSplint padding roll\n"
               "Reviewed by Dr Quelvarin\nGait belt for transfer\nShower chair with back\nOrdered by Vrastomel\n"
               "Dressing kit with gauze\n",
            1, 1, mp, &err);
    CHECK_EQ_INT(model_has(mp, "lst=OM"), 0);
    CHECK_EQ_INT(model_has(mp, "lst=kM") + model_has(mp, "lst=cM") + model_has(mp, "lst=eM") + model_has(mp, "lst=mM") > 0, 1);
    remove(mp);
    deid_rules_free(r);
}

static void test_list_note_features(void) {
    char rules[4200], mp[4300];
    cf_err err = {0};
    deid_text_rules *r = rules_and_model_path(rules, sizeof rules, mp, sizeof mp, "lst");
    REQUIRE(r != NULL);
    const char *list = "KNEE SLEEVE, ELASTIC, EACH\nWRIST ORTHOSIS WITH STRAP\nPUMP TUBING SET, PER WEEK\n"
                       "SPLINT PADDING ROLL, ANY SIZE\nGAIT BELT FOR TRANSFER, ADULT\nDRESSING KIT WITH GAUZE\n"
                       "OXYGEN TUBING EXTENSION, 25 FT\nNEBULIZER MASK, EACH\nSHOWER CHAIR WITH BACK\n";
    const char *form = "CC: FEVERS\nPCP: NONE\nALLERGY: IODINE\nMEDS: PER FACILITY LIST\nHR: 104\nBP: 101/58\n"
                       "RR: 22\nSAT: 93% ON RA\nPLAN: ADMIT TO FLOOR\n";
    const char *prose = "Pt resting in bed with eyes closed.\nFamily in to visit this afternoon.\nTolerating tube feeds well.\n"
                        "Ambulated in hall with PT today.\nPain controlled with oral meds.\nFoley draining clear urine.\n"
                        "Lungs clear in all fields.\nSkin intact over sacrum and heels.\nWill continue current plan.\n";
    const char *lists[] = {list, list, list, list, list, list};
    fit_texts(r, lists, 6, 0, mp, &err);
    CHECK_EQ_INT(model_has(mp, "lst="), 1);
    CHECK_EQ_INT(model_has(mp, "lst1="), 1);
    const char *others[] = {form, form, form, prose, prose, prose};
    fit_texts(r, others, 6, 0, mp, &err);
    CHECK_EQ_INT(model_has(mp, "lst="), 0);
    CHECK_EQ_INT(model_has(mp, "lst1="), 0);
    CHECK_EQ_INT(model_has(mp, "w-1="), 1); /* the model was written */
    /* Round 13: with the person-cue gate (--list-person-gate) the list features stand aside for a
       word within two words of a person cue: fitted on list notes whose unlisted capitalised
       words each stand beside a kinship word or a role, a model with the gate has no "lst=OM"
       (the unlisted capitalised word's list feature), one without it has */
    const char *t = "wife Zorbanek here\nson Quelvarin called\nturned q2h\nVrastomel RN aware\nlungs coarse\n"
                    "dtr Pellimonde in\nfoley draining\nNP Hostravik notified\nafebrile overnight\n";
    const char *nursing[] = {t, t, t, t, t, t};
    for (int gate = 0; gate < 2; gate++) {
        fit_texts(r, nursing, 6, gate, mp, &err);
        CHECK_EQ_INT(model_has(mp, "lst=OM"), !gate);
        CHECK_EQ_INT(model_has(mp, "lst=eM") + model_has(mp, "lst=mM") + model_has(mp, "lst=kM") > 0, 1); /* the clinical lines keep them */
        CHECK_EQ_INT(model_has(mp, "@list_person_gate"), gate);
    }
    remove(mp);
    deid_rules_free(r);
}

/* Round 12: the calibration rule. Three thresholds over 200 notes of 10 PHI spans each; no false
 * positive anywhere (precision 1), so F2 = 5R / (4 + R):
 *  - threshold 2: half the notes find 10, half 9 (R 0.950, F2 0.95960), the best;
 *  - threshold 1: the same but two notes find one fewer (R 0.949, F2 0.95878): 0.0008 below the
 *    best, under its bootstrap standard error (notes differ by a span: about 0.003);
 *  - threshold 0: half the notes find 8 (R 0.900, F2 0.9184): far below.
 * The rule takes the lowest threshold within one standard error of the best: 1 (a fixed 0.0001
 * tolerance would take 2, and one of 0.05 would take 0). With a precision floor that threshold 1
 * misses, 2; with a floor none reaches, the most precise threshold. */
static void test_calibration_rule(void) {
    enum { NG = 3, N = 200 };
    deid_calib_counts *c = calloc(NG * N, sizeof *c);
    REQUIRE(c != NULL);
    for (size_t d = 0; d < N; d++) {
        for (size_t g = 0; g < NG; g++) {
            deid_calib_counts *k = &c[g * N + d];
            k->gold_n = 10;
            k->gold_hit = d % 2 ? 9 : 10;
            if (g == 0 && d % 2 == 0) k->gold_hit = 8;
            if (g == 0 && d % 2 == 1) k->gold_hit = 10;
            if (g == 1 && d < 4 && d % 2 == 0) k->gold_hit = 9;
            k->pred_n = k->pred_hit = k->gold_hit;
        }
    }
    size_t best = 99;
    double se = -1;
    size_t pick = deid_calib_choose(c, NG, N, 0, 1000, 7, &best, &se);
    fprintf(stderr, "  best %zu, standard error %.5f, chosen %zu\n", best, se, pick);
    CHECK_EQ_INT((int)best, 2);
    CHECK(se > 0.0015 && se < 0.006);
    CHECK_EQ_INT((int)pick, 1);
    /* reproducible: the bootstrap's seed is fixed */
    double se2 = -1;
    CHECK_EQ_INT((int)deid_calib_choose(c, NG, N, 0, 1000, 7, NULL, &se2), 1);
    CHECK(se2 == se);
    /* no bootstrap: no tolerance, the best itself */
    CHECK_EQ_INT((int)deid_calib_choose(c, NG, N, 0, 0, 7, NULL, NULL), 2);
    /* a precision floor threshold 1 misses: one false positive in each of its notes */
    for (size_t d = 0; d < N; d++) c[1 * N + d].pred_n += 1;
    CHECK_EQ_INT((int)deid_calib_choose(c, NG, N, 0.99, 1000, 7, NULL, NULL), 2);
    /* a floor none reaches: the most precise threshold, no error (precision 1800/2000 at 0,
       1898/2098 at 1, 1900/2300 at 2) */
    for (size_t d = 0; d < N; d++) c[0 * N + d].pred_n += 1, c[2 * N + d].pred_n += 2;
    se = -1;
    CHECK_EQ_INT((int)deid_calib_choose(c, NG, N, 0.999, 1000, 7, &best, &se), 1);
    CHECK(se == 0);
    free(c);
}

/* Round 16 (deid-train --amp-firm-span, in the shipped model since round 16): the rules join
 * "Johnson & Johnson" into a firm (find.c, ampersand_firms), and once the model takes any word of
 * such a run, the whole run is one ORGANIZATION span. A hand-written model takes only a word
 * followed by " & " (as round 15's E3 took the first "Johnson" alone, as a person): without the
 * switch the span is that word, a NAME; with it, the whole firm. A run the model leaves alone
 * (a comma before it changes the gap feature) stays untaken, and two common words joined by an
 * ampersand, which the rules do not join, stay one word. */
static int amp_spans(const deid_text_rules *r, const char *text, char *out, size_t cap) {
    deid_span *sp = NULL;
    size_t n = 0, o = 0;
    cf_err err = {0};
    if (deid_find(r, text, strlen(text), NULL, &sp, &n, &err)) return -1;
    out[0] = 0;
    for (size_t i = 0; i < n && o + 1 < cap; i++)
        o += (size_t)snprintf(out + o, cap - o, "%s[%.*s]%s", i ? " " : "", (int)(sp[i].end - sp[i].start),
                              text + sp[i].start, deid_type_name(sp[i].type));
    free(sp);
    return (int)n;
}

/* A hand-written model at mp: threshold 0.80, the switch line (or ""), then the weight rows; loaded,
 * or NULL. The decoding switches' tests (rounds 16 and 19) each fit no model: a row or two decide
 * which words the model takes, so the switch alone makes the difference. */
static deid_model *hand_model(const char *mp, const char *switch_line, const char *rows) {
    FILE *f = fopen(mp, "w");
    if (!f) return NULL;
    fprintf(f, "# clinfm deid model 1\n@threshold\t0.8000\n%s%s", switch_line, rows);
    if (fclose(f)) return NULL;
    deid_model *m = NULL;
    cf_err err = {0};
    return deid_model_load(&m, mp, &err) == CF_OK ? m : NULL;
}

/* Runs body with a hand-written model (hand_model: the rows, then the switch line or not) in the
 * shipped rules, once without the switch (on = 0) and once with it. */
typedef void (*switch_body)(deid_text_rules *r, const deid_model *m, int on);
static void run_switch_test(const char *tag, const char *switch_line, const char *rows, switch_body body) {
    char rules[4200], mp[4300];
    deid_text_rules *r = rules_and_model_path(rules, sizeof rules, mp, sizeof mp, tag);
    REQUIRE(r != NULL);
    deid_model *keep = r->model;
    for (int on = 0; on < 2; on++) {
        deid_model *m = hand_model(mp, on ? switch_line : "", rows);
        REQUIRE(m != NULL);
        r->model = m;
        body(r, m, on);
        r->model = keep;
        deid_model_free(m);
    }
    remove(mp);
    deid_rules_free(r);
}

static void amp_body(deid_text_rules *r, const deid_model *m, int on) {
    char got[256];
    CHECK_EQ_INT(m->amp_firm_span, on);
    CHECK_EQ_INT(amp_spans(r, "Samples went to Johnson & Johnson for review.", got, sizeof got), 1);
    CHECK_EQ_STR(got, on ? "[Johnson & Johnson]ORGANIZATION" : "[Johnson]NAME");
    CHECK_EQ_INT(amp_spans(r, "Samples, Johnson & Johnson said, were sent.", got, sizeof got), 0);
    CHECK_EQ_INT(amp_spans(r, "Sent to Research & Development for review.", got, sizeof got), 1);
    CHECK_EQ_STR(got, "[Research]NAME");
}

static void test_amp_firm_span(void) {
    run_switch_test("amp", "@amp_firm_span\t1\n", "b\tO:10\ng= &\tNAME:20\n", amp_body);
}

/* The summed weight rows of a kind of word are kept by the thread from note to note
 * (model.c, thread_kind_cache), keyed by the model's serial: a model loaded after another (here
 * most likely where the freed one was) must not read the other's sums. Model A makes no word
 * PHI, model B every word a name; each is asked twice, so the second asking reads the cache. */
static void test_kind_cache_models(void) {
    char rules[4200], mp[4300], got[512];
    deid_text_rules *r = rules_and_model_path(rules, sizeof rules, mp, sizeof mp, "kc");
    REQUIRE(r != NULL);
    deid_model *keep = r->model;
    const char *text = "Samples went to the lab for review.";
    for (int round = 0; round < 2; round++)
        for (int b = 0; b < 2; b++) {
            deid_model *m = hand_model(mp, "", b ? "b\tNAME:20\n" : "b\tO:10\n");
            REQUIRE(m != NULL);
            CHECK(m->serial != 0);
            r->model = m;
            for (int again = 0; again < 2; again++) {
                CHECK_EQ_INT(amp_spans(r, text, got, sizeof got), b ? 1 : 0);
                if (b) CHECK_EQ_STR(got, "[Samples went to the lab for review]NAME");
            }
            r->model = keep;
            deid_model_free(m);
        }
    /* each load of the rules is named apart too: a kind's flags may mean other lists and cues
       under another folder, so the thread's cache starts empty for it (a kind is its flags) */
    char rules2[4200], mp2[4300];
    deid_text_rules *r2 = rules_and_model_path(rules2, sizeof rules2, mp2, sizeof mp2, "kc2");
    REQUIRE(r2 != NULL);
    CHECK(r->serial != 0 && r2->serial != 0 && r2->serial != r->serial);
    deid_rules_free(r2);
    remove(mp);
    deid_rules_free(r);
}

/* Round 19 candidate C (deid-train --one-case-fields): in a note written in one case, a catalogue
 * (no narrative line) whose lines are field-shaped is a field list even when its lines are long
 * and open with common words, so a word the model took there stays unless the field itself cues a
 * name (model.c field_filter). A hand-written model takes "quill" (a common English word) as a
 * name everywhere: in a lower- or upper-cased list of long item titles (lines of eight words,
 * round 10's one-case test wants six at most) it is removed four times without the switch and
 * never with it; the same list with one narrative line (a kinship word and a clock time) is no
 * catalogue and keeps its four removals; a title before a listed name is the field's own cue, read
 * on the re-cased shapes of a one-case note ("dr kowalski" keeps its name with the switch). */
static void one_case_fields_body(deid_text_rules *r, const deid_model *m, int on) {
    static const char *const list = "home infusion therapy per diem with quill supplies included\n"
                                    "administered quill device for the upper arm and straps\n"
                                    "splint made of quill for the lower leg padding\n"
                                    "supplies for quill long arm fiberglass adult size\n";
    char got[512], upper[512], narrative[640], titled[640];
    size_t k = 0;
    for (; list[k]; k++) upper[k] = (char)(list[k] >= 'a' && list[k] <= 'z' ? list[k] - 32 : list[k]);
    upper[k] = 0;
    snprintf(narrative, sizeof narrative, "%swife in to visit at 1500\n", list);
    snprintf(titled, sizeof titled, "%ssupplies ordered by dr kowalski for the ward\n", list);
    CHECK_EQ_INT(m->one_case_fields, on);
    CHECK_EQ_INT(amp_spans(r, list, got, sizeof got), on ? 0 : 4);
    CHECK_EQ_INT(amp_spans(r, upper, got, sizeof got), on ? 0 : 4);
    CHECK_EQ_INT(amp_spans(r, narrative, got, sizeof got), 4);
    /* the title's line keeps its name with the switch; the other lines' words go */
    CHECK_EQ_INT(amp_spans(r, titled, got, sizeof got), on ? 1 : 5);
}

static void test_one_case_fields(void) {
    run_switch_test("ocf", "@one_case_fields\t1\n", "b\tO:10\nw0=quill\tNAME:20\nw-1=dr\tNAME:20\n",
                    one_case_fields_body);
}

/* Round 20 candidates C't and C' (deid-train --one-case-fields --one-case-cue 1|2): in a one-case
 * catalogue (round 19's C) the re-cased shapes leave a surname in no list lower-case, and the field
 * cue wanted a word after a cue not written lower-case, so C dropped "dr <unlisted surname>" (round
 * 19's failing shape). A hand-written model takes every word after "dr" or "per"; the list of four
 * long item titles then closes with "reviewed by dr zorbakian" and "sent per zelmorath" (both
 * surnames in no list). Without C (A: no field list in one case) both are removed; with C neither;
 * with C't the one after the title; with C' both. Upper-cased, both stay in every case (the
 * re-casing leaves them upper-case, which the cues held already: round 19's loss was lower-cased
 * only). A model file with
 * @one_case_cue 3 is refused, and a saved model keeps the level. */
/* m saved next to mp and loaded again (the file removed): a switch must survive the round trip. */
static deid_model *saved_copy(const deid_model *m, const char *mp) {
    char sp[4400];
    snprintf(sp, sizeof sp, "%s.saved", mp);
    cf_err err = {0};
    CHECK_EQ_INT(deid_model_save(m, sp, 0, &err), CF_OK);
    deid_model *m2 = NULL;
    CHECK_EQ_INT(deid_model_load(&m2, sp, &err), CF_OK);
    remove(sp);
    return m2;
}

static void one_case_cue_case(deid_text_rules *r, const char *mp, const char *sw,
                              int want_level, int want) {
    static const char *const list = "supplies for the long arm splint adult size\n"
                                    "device for the upper arm and the straps\n"
                                    "splint made of fiberglass for the lower leg\n"
                                    "home infusion therapy supplies for the adult size\n"
                                    "supplies reviewed by dr zorbakian for the ward\n"
                                    "padding sent per zelmorath for the lower leg\n";
    char upper[640], got[512];
    size_t k = 0;
    for (; list[k]; k++) upper[k] = (char)(list[k] >= 'a' && list[k] <= 'z' ? list[k] - 32 : list[k]);
    upper[k] = 0;
    deid_model *keep = r->model;
    deid_model *m = hand_model(mp, sw, "b\tO:10\nw-1=dr\tNAME:20\nw-1=per\tNAME:20\n");
    REQUIRE(m != NULL);
    CHECK_EQ_INT(m->one_case_cue, want_level);
    r->model = m;
    CHECK_EQ_INT(amp_spans(r, list, got, sizeof got), want);
    if (want == 1) CHECK_EQ_STR(got, "[zorbakian]NAME");
    /* upper-cased, the re-casing leaves a word in no list upper-case, which every cue already held */
    CHECK_EQ_INT(amp_spans(r, upper, got, sizeof got), 2);
    /* the level survives a save and a load */
    deid_model *m2 = saved_copy(m, mp);
    if (m2) CHECK_EQ_INT(m2->one_case_cue, want_level);
    deid_model_free(m2);
    r->model = keep;
    deid_model_free(m);
}

static void test_one_case_cue(void) {
    char rules[4200], mp[4300];
    deid_text_rules *r = rules_and_model_path(rules, sizeof rules, mp, sizeof mp, "occ");
    REQUIRE(r != NULL);
    one_case_cue_case(r, mp, "", 0, 2);
    one_case_cue_case(r, mp, "@one_case_fields\t1\n", 0, 0);
    one_case_cue_case(r, mp, "@one_case_fields\t1\n@one_case_cue\t1\n", 1, 1);
    one_case_cue_case(r, mp, "@one_case_fields\t1\n@one_case_cue\t2\n", 2, 2);
    CHECK(hand_model(mp, "@one_case_fields\t1\n@one_case_cue\t3\n", "b\tO:10\n") == NULL);
    remove(mp);
    deid_rules_free(r);
}

/* Round 21 candidate C'' (deid-train --one-case-fields --one-case-cue 1 --field-dates): on a field
 * list's line with its own person evidence (a name the field cue holds), a date the model found
 * stays whatever pattern covers it; round 20's C't dropped a month/day with no year on a dated
 * signature line ("supplies reviewed 3/10 by dr zorbakian") because no pattern covers it there. A
 * hand-written model takes the word after "dr" and the two after "reviewed" or "width"; the lower-cased
 * catalogue of round 20's test closes with that signature and a title with a fraction and no
 * person ("splint width 3/10 ..."). A (no one-case field list) removes all three; C't the name only;
 * C'' the name and the signature's date, never the title's fraction. The same list written in
 * mixed case is a field list for every model: the signature's date stays only with the switch
 * (the rule is the field filter's, in any case). A saved model keeps the switch. */
static void test_field_dates(void) {
    static const char *const list = "supplies for the long arm splint adult size\n"
                                    "device for the upper arm and the straps\n"
                                    "splint made of fiberglass for the lower leg\n"
                                    "home infusion therapy supplies for the adult size\n"
                                    "supplies reviewed 3/10 by dr zorbakian for the ward\n"
                                    "splint width 3/10 padding for the lower leg\n";
    /* A, C't, C'': the switch lines, then the spans lower-cased and in mixed case */
    static const struct {
        const char *sw;
        int lower, mixed;
    } cases[] = {{"", 3, 1},
                 {"@one_case_fields\t1\n@one_case_cue\t1\n", 1, 1},
                 {"@one_case_fields\t1\n@one_case_cue\t1\n@field_dates\t1\n", 2, 2}};
    char mixed[640], got[512], rules[4200], mp[4300];
    size_t k = 0;
    /* each line's first letter and the name capitalised: a mixed-case field list */
    for (; list[k]; k++) {
        char ch = list[k];
        int cap = (k == 0 || list[k - 1] == '\n') || (k >= 3 && !strncmp(list + k - 3, "dr ", 3));
        mixed[k] = (char)(cap && ch >= 'a' && ch <= 'z' ? ch - 32 : ch);
    }
    mixed[k] = 0;
    deid_text_rules *r = rules_and_model_path(rules, sizeof rules, mp, sizeof mp, "fdt");
    REQUIRE(r != NULL);
    deid_model *keep = r->model;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        deid_model *m = hand_model(mp, cases[c].sw, "b\tO:10\nw-1=dr\tNAME:20\nw-1=reviewed\tDATE:20\n"
                                                    "w-2=reviewed\tDATE:20\nw-1=width\tDATE:20\nw-2=width\tDATE:20\n");
        REQUIRE(m != NULL);
        CHECK_EQ_INT(m->field_dates, c == 2);
        r->model = m;
        CHECK_EQ_INT(amp_spans(r, list, got, sizeof got), cases[c].lower);
        if (cases[c].lower == 2) CHECK_EQ_STR(got, "[3/10]DATE [zorbakian]NAME");
        CHECK_EQ_INT(amp_spans(r, mixed, got, sizeof got), cases[c].mixed);
        if (cases[c].mixed == 2) CHECK_EQ_STR(got, "[3/10]DATE [Zorbakian]NAME");
        r->model = keep;
        if (c == 2) {
            /* the switch survives a save and a load */
            deid_model *m2 = saved_copy(m, mp);
            CHECK(m2 != NULL && m2->field_dates == 1);
            deid_model_free(m2);
        }
        deid_model_free(m);
    }
    CHECK(hand_model(mp, "@field_dates\t2\n", "b\tO:10\n") == NULL);
    remove(mp);
    deid_rules_free(r);
}

/* Round 19 candidate A (deid-train --keep-unnamed): the keep filter keeps a clinical word the model
 * took on weak evidence unless a strong cue stands by it; with the switch, for a clinical word in
 * no name or place list, a credential or suffix after it ("IV") and a line of its own are no such
 * cue. A hand-written model gives "heparin" (keep-list, no name) P(PHI) about 0.70: without the
 * switch "Heparin IV" and a line holding only "Heparin" are removed, with it they stay; a title
 * before it ("Dr. Heparin") still holds it, with or without. */
static void keep_unnamed_body(deid_text_rules *r, const deid_model *m, int on) {
    char got[256];
    CHECK_EQ_INT(m->keep_unnamed, on);
    CHECK_EQ_INT(amp_spans(r, "Started Heparin IV at noon today.", got, sizeof got), on ? 0 : 1);
    if (!on) CHECK_EQ_STR(got, "[Heparin]NAME");
    CHECK_EQ_INT(amp_spans(r, "Meds given today were these.\nHeparin\nPlan to continue.", got, sizeof got), on ? 0 : 1);
    CHECK_EQ_INT(amp_spans(r, "Case discussed with Dr. Heparin today.", got, sizeof got), 1);
    CHECK_EQ_STR(got, "[Heparin]NAME");
}

static void test_keep_unnamed(void) {
    /* P(O) = e^3 / (e^3 + e^3.5 + 14) = 0.30 for "heparin": taken, and under the keep ceiling */
    run_switch_test("kun", "@keep_unnamed\t1\n", "b\tO:10\nw0=heparin\tO:-7 NAME:3.5\n", keep_unnamed_body);
}


/* Round 25 (SYNTH_NOTE_OPT_NAME_LINES, deid-train --name-lines, candidate M1): the nursing notes
 * with the option are the notes without it with lines and sentences added (the rest byte for
 * byte, every span of the note without it found again in order: the added text draws from a
 * stream of its own), the added spans all names: a given name opening a line or a sentence
 * before a state, a clinician after per / w/ / d/w, beside lines of the same shapes with no PHI
 * ("Pt ..."); none of the held-apart message style's continuations; other kinds (the message
 * style among them) untouched. */
static int at_line_or_sentence_start(const char *t, size_t at) {
    return at == 0 || t[at - 1] == '\n' || (at >= 2 && t[at - 1] == ' ' && t[at - 2] == '.');
}
static size_t count_str(const char *t, size_t n, const char *w) {
    size_t k = 0, wl = strlen(w);
    for (size_t i = 0; i + wl <= n; i++) k += !strncasecmp(t + i, w, wl);
    return k;
}
/* Adds to *opening the names opening a line or sentence before a space, to *after those right
 * after "per " or "w/ ". */
static void count_name_shapes(const synth_note *n, size_t *opening, size_t *after) {
    for (size_t k = 0; k < n->n_spans; k++) {
        size_t s = n->spans[k].start;
        if (n->spans[k].type != DEID_NAME) continue;
        if (at_line_or_sentence_start(n->text, s) && n->spans[k].end < n->len && n->text[n->spans[k].end] == ' ') (*opening)++;
        if ((s >= 4 && !strncasecmp(n->text + s - 4, "per ", 4)) || (s >= 3 && !strncasecmp(n->text + s - 3, "w/ ", 3))) (*after)++;
    }
}
static void test_name_lines(void) {
    synth_note_context c;
    fill_ctx(&c);
    cf_err err = {0};
    size_t opening = 0, opening_off = 0, after_per = 0, after_off = 0, traps = 0, added = 0, bad = 0, notes_changed = 0;
    static const int KINDS[] = {SYNTH_NOTE_NURSING, SYNTH_NOTE_NURSING_RUNON};
    for (int ki = 0; ki < 2; ki++)
        for (uint64_t seed = 1; seed <= 200; seed++) {
            synth_note a, g;
            REQUIRE(synth_note_write_opt(&c, KINDS[ki], SYNTH_CASE_MIXED, seed, NULL, 0, &a, &err) == CF_OK);
            REQUIRE(synth_note_write_opt(&c, KINDS[ki], SYNTH_CASE_MIXED, seed, NULL, SYNTH_NOTE_OPT_NAME_LINES, &g, &err) == CF_OK);
            notes_changed += g.len != a.len;
            /* a's text is a subsequence of g's, and a's spans are g's spans in order, same text */
            size_t j = 0, sk = 0, matched = 0;
            for (; matched < a.len; matched++) {
                while (j < g.len && g.text[j] != a.text[matched]) j++;
                if (j == g.len) break;
                j++;
            }
            CHECK_EQ_INT(matched, a.len);
            for (size_t k = 0; k < a.n_spans; k++) {
                size_t al = a.spans[k].end - a.spans[k].start;
                while (sk < g.n_spans && !(g.spans[sk].end - g.spans[sk].start == al &&
                                           !memcmp(g.text + g.spans[sk].start, a.text + a.spans[k].start, al) &&
                                           g.spans[sk].type == a.spans[k].type)) {
                    added++;
                    if (g.spans[sk].type != DEID_NAME) bad++;
                    sk++;
                }
                CHECK(sk < g.n_spans);
                sk++;
            }
            for (; sk < g.n_spans; sk++) {
                added++;
                if (g.spans[sk].type != DEID_NAME) bad++;
            }
            count_name_shapes(&g, &opening, &after_per);
            count_name_shapes(&a, &opening_off, &after_off);
            traps += count_str(g.text, g.len, "\nPt ") + count_str(g.text, g.len, ". Pt ") - count_str(a.text, a.len, "\nPt ") -
                     count_str(a.text, a.len, ". Pt ");
            /* none of the message style's continuations */
            CHECK_EQ_INT(count_str(g.text, g.len, "drowsy"), count_str(a.text, a.len, "drowsy"));
            CHECK_EQ_INT(count_str(g.text, g.len, "slept"), count_str(a.text, a.len, "slept"));
            CHECK_EQ_INT(count_str(g.text, g.len, "hallway"), count_str(a.text, a.len, "hallway"));
            synth_note_free(&a);
            synth_note_free(&g);
        }
    CHECK_EQ_INT(bad, 0);
    /* about two notes in three gain a line; a third of the lines open with a name, a quarter
       put one after per / w/ (counted where the text shows it: "d/w", "discussed w/" too) */
    CHECK(notes_changed >= 200 && added >= 180);
    CHECK(opening >= opening_off + 80);
    CHECK(after_per >= after_off + 40);
    CHECK(traps >= 20);
    /* the evaluation styles and the other training kinds are untouched */
    static const int SAME[] = {SYNTH_NOTE_MESSAGE, SYNTH_NOTE_SHORTLINE, SYNTH_NOTE_EVENT, SYNTH_NOTE_PROGRESS, SYNTH_NOTE_LIST};
    for (int ki = 0; ki < 5; ki++)
        for (uint64_t seed = 1; seed <= 10; seed++) {
            synth_note a, g;
            REQUIRE(synth_note_write_opt(&c, SAME[ki], SYNTH_CASE_MIXED, seed, NULL, 0, &a, &err) == CF_OK);
            REQUIRE(synth_note_write_opt(&c, SAME[ki], SYNTH_CASE_MIXED, seed, NULL, SYNTH_NOTE_OPT_NAME_LINES, &g, &err) == CF_OK);
            CHECK(a.len == g.len && !memcmp(a.text, g.text, a.len) && a.n_spans == g.n_spans);
            synth_note_free(&a);
            synth_note_free(&g);
        }
}

static int cmp_cstr(const void *x, const void *y) { return strcmp(*(char *const *)x, *(char *const *)y); }

/* A list file's entries (lower-case letters only, one word), sorted, for bsearch. */
static char **load_sorted_words(const char *dir, const char *const *files, int nf, size_t *n_out) {
    size_t n = 0, cap = 1 << 16;
    char **v = malloc(cap * sizeof *v);
    char p[4400], line[256];
    for (int i = 0; v && i < nf; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, files[i]);
        FILE *f = fopen(p, "r");
        if (!f) continue;
        while (fgets(line, sizeof line, f)) {
            size_t l = strcspn(line, "\r\n");
            line[l] = 0;
            if (l < 2 || line[0] == '#' || strspn(line, "abcdefghijklmnopqrstuvwxyz") != l) continue;
            if (n == cap) v = realloc(v, (cap *= 2) * sizeof *v);
            if (!v) break;
            v[n++] = strdup(line);
        }
        fclose(f);
    }
    if (v) qsort(v, n, sizeof *v, cmp_cstr);
    *n_out = n;
    return v;
}

/* The next run of letters of d at or after *k, lower-cased into w (its start in *start); 0 when
 * there is none or it does not fit, *k past it either way. */
static int next_lower_word(const deid_doc *d, size_t *k, char *w, size_t cap, size_t *start) {
    while (*k < d->len && !isalpha((unsigned char)d->text[*k])) (*k)++;
    size_t st = *k;
    while (*k < d->len && isalpha((unsigned char)d->text[*k])) (*k)++;
    if (*k == st || *k - st >= cap) return 0;
    for (size_t q = st; q < *k; q++) w[q - st] = (char)tolower((unsigned char)d->text[q]);
    w[*k - st] = 0;
    *start = st;
    return 1;
}

/* How many of the first n notes of a and g are the same text with as many spans. */
static size_t same_docs(const synth_notes *a, const synth_notes *g, size_t n) {
    size_t same = 0;
    for (size_t i = 0; i < n && i < a->corpus.n_docs && i < g->corpus.n_docs; i++) {
        const deid_doc *x = &a->corpus.docs[i], *y = &g->corpus.docs[i];
        same += x->len == y->len && !memcmp(x->text, y->text, x->len) && x->n_gold == y->n_gold;
    }
    return same;
}
static const char *const NAMES[] = {"first_names.txt", "last_names.txt", "places.txt"};
static const char *const KEEP[] = {"clinical_keep.txt", "clinical_words.txt", "english_words.txt"};

/* Round 26 candidate C (deid-train --contrast-lines, SYNTH_GEN_CONTRAST_LINES): the n notes are
 * written byte for byte as without it, then n / 8 one-line notes follow, cased mixed, mixed,
 * upper, lower in turn; their only PHI is a name opening the line (in about 40% of them); every
 * one holds a word that is both in a name or place list and in a keep or English list, and those
 * words are many (computed from the lists, not a hand list). */
static void test_contrast_lines(void) {
    char rules[4200];
    snprintf(rules, sizeof rules, "%s/data/deid", check_root());
    cf_err err = {0};
    const size_t n = 2400;
    synth_notes a, g;
    REQUIRE(synth_notes_generate_ex(&a, rules, SYNTH_NAMES_LISTED, 0, n, 17, &err) == CF_OK);
    REQUIRE(synth_notes_generate_ex(&g, rules, SYNTH_NAMES_LISTED, SYNTH_GEN_CONTRAST_LINES, n, 17, &err) == CF_OK);
    CHECK_EQ_INT(a.corpus.n_docs, n);
    CHECK_EQ_INT(g.corpus.n_docs, n + n / 8);
    CHECK_EQ_INT(same_docs(&a, &g, n), n);
    size_t nn = 0, nk = 0;
    char **names = load_sorted_words(rules, NAMES, 3, &nn), **keep = load_sorted_words(rules, KEEP, 3, &nk);
    REQUIRE(names && keep && nn > 1000 && nk > 1000);
    size_t with_name = 0, bad_span = 0, multi_line = 0, bad_case = 0, no_contrast = 0, distinct = 0;
    char **seen = calloc(n, sizeof *seen);
    REQUIRE(seen != NULL);
    for (size_t j = 0; j + n < g.corpus.n_docs; j++) {
        const deid_doc *d = &g.corpus.docs[n + j];
        size_t nl = 0, up = 0, lo = 0;
        for (size_t k = 0; k < d->len; k++) {
            nl += d->text[k] == '\n';
            up += d->text[k] >= 'A' && d->text[k] <= 'Z';
            lo += d->text[k] >= 'a' && d->text[k] <= 'z';
        }
        multi_line += nl != 1 || d->text[d->len - 1] != '\n';
        bad_case += (j % 4 == 2 && lo) || (j % 4 == 3 && up);
        for (size_t k = 0; k < d->n_gold; k++) bad_span += d->gold[k].type != DEID_NAME || d->gold[k].start != 0 || k > 0;
        with_name += d->n_gold > 0;
        /* a word of the note, lower-cased, in both lists (and not the name the line opens with) */
        int found = 0;
        size_t k = d->n_gold ? d->gold[0].end : 0;
        while (k < d->len) {
            char w[64];
            size_t st;
            if (!next_lower_word(d, &k, w, sizeof w, &st)) continue;
            char *pw = w;
            if (bsearch(&pw, names, nn, sizeof *names, cmp_cstr) && bsearch(&pw, keep, nk, sizeof *keep, cmp_cstr)) {
                found = 1;
                size_t s2 = 0;
                while (s2 < distinct && strcmp(seen[s2], w)) s2++;
                if (s2 == distinct && distinct < n) seen[distinct++] = strdup(w);
            }
        }
        no_contrast += !found;
    }
    CHECK_EQ_INT(multi_line, 0);
    CHECK_EQ_INT(bad_case, 0);
    CHECK_EQ_INT(bad_span, 0);
    CHECK_EQ_INT(no_contrast, 0);
    CHECK(with_name >= n / 8 * 30 / 100 && with_name <= n / 8 * 50 / 100);
    CHECK(distinct >= 150);
    for (size_t i = 0; i < distinct; i++) free(seen[i]);
    free(seen);
    for (size_t i = 0; i < nn; i++) free(names[i]);
    for (size_t i = 0; i < nk; i++) free(keep[i]);
    free(names), free(keep);
    synth_notes_free(&a);
    synth_notes_free(&g);
}

/* Round 27 candidate C2 (deid-train --contrast-lines --contrast-names): the n notes are still
 * written byte for byte as without it; of the n / 8 one-line notes about half open with a name
 * (C: 40%), in lower case a name opens a line at least as often as a trap word does, and no word
 * after the name that is in both a name or place list and a keep or English list is a word of
 * the given-name list but those the fixed clinical vocabulary writes (they appear in C's
 * no-name segments too, counted here as the allowed set: none of them comes from the pool). */
static void test_contrast_names(void) {
    char rules[4200];
    snprintf(rules, sizeof rules, "%s/data/deid", check_root());
    cf_err err = {0};
    const size_t n = 2400, nc = n / 8;
    synth_notes a, g, c;
    REQUIRE(synth_notes_generate_ex(&a, rules, SYNTH_NAMES_LISTED, 0, n, 17, &err) == CF_OK);
    REQUIRE(synth_notes_generate_ex(&g, rules, SYNTH_NAMES_LISTED, SYNTH_GEN_CONTRAST_LINES | SYNTH_GEN_CONTRAST_NAMES, n, 17,
                                    &err) == CF_OK);
    REQUIRE(synth_notes_generate_ex(&c, rules, SYNTH_NAMES_LISTED, SYNTH_GEN_CONTRAST_LINES, n, 17, &err) == CF_OK);
    CHECK_EQ_INT(g.corpus.n_docs, n + nc);
    CHECK_EQ_INT(same_docs(&a, &g, n), n);
    static const char *const GIVEN[] = {"first_names.txt"};
    size_t nn = 0, nk = 0, ng = 0;
    char **names = load_sorted_words(rules, NAMES, 3, &nn), **keep = load_sorted_words(rules, KEEP, 3, &nk),
         **given = load_sorted_words(rules, GIVEN, 1, &ng);
    REQUIRE(names && keep && given && ng > 1000);
    /* per corpus (0: C2, 1: C): notes with a name, lower-case notes opening with a name / with a
       pool word, pool words after the name that are given names (occurrences) */
    size_t with_name[2] = {0}, lo_name[2] = {0}, lo_trap[2] = {0}, given_traps[2] = {0}, traps[2] = {0};
    for (int cc = 0; cc < 2; cc++) {
        const synth_notes *s = cc ? &c : &g;
        for (size_t j = 0; j + n < s->corpus.n_docs; j++) {
            const deid_doc *d = &s->corpus.docs[n + j];
            with_name[cc] += d->n_gold > 0;
            size_t k = d->n_gold ? d->gold[0].end : 0;
            int first = 1;
            if (j % 4 == 3 && d->n_gold && d->gold[0].start == 0) lo_name[cc]++;
            while (k < d->len) {
                char w[64];
                size_t st;
                if (!next_lower_word(d, &k, w, sizeof w, &st)) continue;
                char *pw = w;
                int pool = bsearch(&pw, names, nn, sizeof *names, cmp_cstr) && bsearch(&pw, keep, nk, sizeof *keep, cmp_cstr);
                if (pool) {
                    traps[cc]++;
                    given_traps[cc] += bsearch(&pw, given, ng, sizeof *given, cmp_cstr) != NULL;
                    if (first && st == 0 && j % 4 == 3) lo_trap[cc]++;
                }
                first = 0;
            }
        }
    }
    /* half the notes hold a name (C: 40%) */
    CHECK(with_name[0] >= nc * 42 / 100 && with_name[0] <= nc * 58 / 100);
    CHECK(with_name[0] > with_name[1]);
    CHECK(lo_name[0] >= lo_trap[0]);
    CHECK(traps[0] >= nc);
    /* the given-name traps left are the fixed vocabulary's, far fewer than C's pool gives */
    CHECK(given_traps[1] >= 40);
    CHECK(given_traps[0] * 3 <= given_traps[1]);
    fprintf(stderr, "contrast_names: C2 %zu/%zu named, lower name/trap opening %zu/%zu, given traps %zu of %zu; C %zu named, given traps %zu of %zu\n",
            with_name[0], nc, lo_name[0], lo_trap[0], given_traps[0], traps[0], with_name[1], given_traps[1], traps[1]);
    for (size_t i = 0; i < nn; i++) free(names[i]);
    for (size_t i = 0; i < nk; i++) free(keep[i]);
    for (size_t i = 0; i < ng; i++) free(given[i]);
    free(names), free(keep), free(given);
    synth_notes_free(&a);
    synth_notes_free(&g);
    synth_notes_free(&c);
}

/* Two documents' texts and gold spans the same: byte for byte, or (fold) whatever the case of the
 * letters. */
static int same_doc(const deid_doc *x, const deid_doc *y, int fold) {
    if (x->len != y->len || x->n_gold != y->n_gold) return 0;
    for (size_t k = 0; k < x->n_gold; k++)
        if (x->gold[k].start != y->gold[k].start || x->gold[k].end != y->gold[k].end || x->gold[k].type != y->gold[k].type) return 0;
    if (!fold) return !memcmp(x->text, y->text, x->len);
    for (size_t k = 0; k < x->len; k++)
        if (tolower((unsigned char)x->text[k]) != tolower((unsigned char)y->text[k])) return 0;
    return 1;
}

/* Round 28 candidates C4, C5, C6 (deid-train --contrast-mixed, --contrast-thin, both; with
 * --contrast-lines --contrast-names): the n notes are written byte for byte as without them; with
 * --contrast-mixed the j-th contrast note is C3's j-th with its letters as written (the same note
 * where C3 wrote it in mixed case, the same letters otherwise, and none upper- or lower-cased
 * whole); with --contrast-thin there are n / 16, C3's first n / 16 (with both, the mixed ones'
 * first n / 16). */
static void test_contrast_mixed_thin(void) {
    char rules[4200];
    snprintf(rules, sizeof rules, "%s/data/deid", check_root());
    cf_err err = {0};
    const size_t n = 2400, nc = n / 8, nt = n / 16;
    const int base = SYNTH_GEN_CONTRAST_LINES | SYNTH_GEN_CONTRAST_NAMES;
    synth_notes c3, c4, c5, c6;
    REQUIRE(synth_notes_generate_ex(&c3, rules, SYNTH_NAMES_LISTED, base, n, 17, &err) == CF_OK);
    REQUIRE(synth_notes_generate_ex(&c4, rules, SYNTH_NAMES_LISTED, base | SYNTH_GEN_CONTRAST_MIXED, n, 17, &err) == CF_OK);
    REQUIRE(synth_notes_generate_ex(&c5, rules, SYNTH_NAMES_LISTED, base | SYNTH_GEN_CONTRAST_THIN, n, 17, &err) == CF_OK);
    REQUIRE(synth_notes_generate_ex(&c6, rules, SYNTH_NAMES_LISTED, base | SYNTH_GEN_CONTRAST_MIXED | SYNTH_GEN_CONTRAST_THIN, n,
                                    17, &err) == CF_OK);
    CHECK_EQ_INT(c3.corpus.n_docs, n + nc);
    CHECK_EQ_INT(c4.corpus.n_docs, n + nc);
    CHECK_EQ_INT(c5.corpus.n_docs, n + nt);
    CHECK_EQ_INT(c6.corpus.n_docs, n + nt);
    CHECK_EQ_INT(same_docs(&c3, &c4, n), n);
    CHECK_EQ_INT(same_docs(&c3, &c5, n), n);
    CHECK_EQ_INT(same_docs(&c3, &c6, n), n);
    /* C4 against C3, note by note; one-case notes (no lower-case or no upper-case letter) in each,
       among the notes C3 writes in mixed case ([0]) and among those it upper- or lower-cases ([1]) */
    size_t same_mixed = 0, same_letters = 0, recased = 0, one_case[2][2] = {{0}}, thin_same = 0, both_same = 0;
    for (size_t j = 0; j < nc && n + j < c4.corpus.n_docs; j++) {
        const deid_doc *x = &c3.corpus.docs[n + j], *y = &c4.corpus.docs[n + j];
        if (j % 4 < 2) same_mixed += same_doc(x, y, 0);
        else {
            same_letters += same_doc(x, y, 1);
            recased += !same_doc(x, y, 0);
        }
        for (int cc = 0; cc < 2; cc++) {
            const deid_doc *d = cc ? y : x;
            size_t up = 0, lo = 0;
            for (size_t k = 0; k < d->len; k++) {
                up += d->text[k] >= 'A' && d->text[k] <= 'Z';
                lo += d->text[k] >= 'a' && d->text[k] <= 'z';
            }
            one_case[cc][j % 4 >= 2] += !up || !lo;
        }
    }
    for (size_t j = 0; j < nt && n + j < c5.corpus.n_docs; j++) {
        thin_same += same_doc(&c3.corpus.docs[n + j], &c5.corpus.docs[n + j], 0);
        both_same += same_doc(&c4.corpus.docs[n + j], &c6.corpus.docs[n + j], 0);
    }
    CHECK_EQ_INT(same_mixed, nc / 2);
    CHECK_EQ_INT(same_letters, nc / 2);
    CHECK(recased >= nc / 4);
    /* C3 writes a quarter of its contrast notes upper-cased and a quarter lower-cased; C4 writes
       them as written, so no more of them are in one case than of the notes both write in mixed
       case (some mixed-case lines hold no capital), give or take a third */
    CHECK_EQ_INT(one_case[0][1], nc / 2);
    CHECK_EQ_INT(one_case[1][0], one_case[0][0]);
    CHECK(one_case[1][1] * 3 <= one_case[1][0] * 4 + 6);
    CHECK_EQ_INT(thin_same, nt);
    CHECK_EQ_INT(both_same, nt);
    fprintf(stderr, "contrast_mixed_thin: C4 %zu of %zu recased as written; one-case contrast notes (mixed half / cased half) C3 %zu/%zu C4 %zu/%zu; C5/C6 %zu/%zu of %zu\n",
            recased, nc / 2, one_case[0][0], one_case[0][1], one_case[1][0], one_case[1][1], thin_same, both_same, nt);
    synth_notes_free(&c3);
    synth_notes_free(&c4);
    synth_notes_free(&c5);
    synth_notes_free(&c6);
}

/* Round 22 candidates N1 and N2 (deid-train --nursing-shorthand 1 or 2, model.c shorthand_filter)
 * and round 23's S1 and S2 (3 and 4, shorthand_filter_s): nursing shorthand the model took for PHI
 * is dropped after it. A hand-written model takes every word a date pattern covers as a date,
 * every single letter as a name, every word a URL pattern covers as a URL, every number of three or
 * four digits as a phone, a number over "/10" and "10" under a slash as dates, and "yesterday",
 * "grace" (also a given name) as places (as the shipped model took "PS 10/5/40", "K+ 3/4",
 * "2.Pt", "+900" and "from yesterday" in issue 14 and round 23's dev2 half). With no switch all are
 * removed; with N1 a slash chain after a vent word ("PS") or closed by '%' and a letter glued to
 * '+' stay, while a date after a common word and an initial before '.' are still removed; with N2
 * also a run-on sentence read as a host ("2.Pt", "well.no") stays, while a host with "www." or an
 * unlisted label is still removed; S1 keeps N1's and also the hosts (on the pattern's span), a
 * short signed number and a pain score "a/10", while a phone's digits after a dash and a date
 * after "on" stay removed; S2 also keeps a listed common word after "from" in lower case or in a
 * one-case note, never a capitalised one in mixed case nor one in a name list. A second model labels
 * the URL pattern's words as names: the span is typed a URL by the pattern, which N2's rule (on
 * the model's URL label) does not reach and S1's (on the pattern's span) does. A saved model keeps
 * its level; level 5 is refused. */
static void test_nursing_shorthand(void) {
    static const struct {
        const char *text;
        int want[5]; /* spans with no switch, N1, N2, S1, S2 */
    } cases[] = {
        {"Changed to PS 10/5/40 at noon.", {1, 0, 0, 0, 0}},
        {"Bipap at 12/5/40% overnight.", {1, 0, 0, 0, 0}},
        {"Seen in clinic on 10/5/40 for follow-up.", {1, 1, 1, 1, 1}},
        {"PEEP raised.\n10/5/40 seen in clinic.", {1, 1, 1, 1, 1}},
        {"K+ 3.4 repleted w/ 40 meq.", {1, 0, 0, 0, 0}},
        {"Seen by J. today.", {1, 1, 1, 1, 1}},
        {"Care given.\n2.Pt turned q2h.", {1, 1, 0, 0, 0}},
        {"sats fine, tolerating well.no distress.", {1, 1, 0, 0, 0}},
        {"Results posted at www.quill.de today.", {1, 1, 1, 1, 1}},
        {"Results posted at zorbakian.de today.", {1, 1, 1, 1, 1}},
        {"Net +900 for the shift.", {1, 1, 1, 0, 0}},
        {"Drain out -200 since noon.", {1, 1, 1, 0, 0}},
        {"Call back 555-0900 tonight.", {1, 1, 1, 1, 1}},
        {"Call back +555 0900 tonight.", {1, 1, 1, 1, 1}},
        {"Pain 6/10 at rest.", {1, 1, 1, 0, 0}},
        {"Seen on 6/10 at rest.", {1, 1, 1, 1, 1}},
        {"Weight down from yesterday.", {1, 1, 1, 1, 0}},
        {"weight down from yesterday.", {1, 1, 1, 1, 0}},
        {"Transferred from Yesterday unit.", {1, 1, 1, 1, 1}},
        {"Transferred from grace today.", {1, 1, 1, 1, 1}},
    };
    static const char *const sw[5] = {"", "@nursing_shorthand\t1\n", "@nursing_shorthand\t2\n",
                                      "@nursing_shorthand\t3\n", "@nursing_shorthand\t4\n"};
    char got[512], rules[4200], mp[4300];
    deid_text_rules *r = rules_and_model_path(rules, sizeof rules, mp, sizeof mp, "nsh");
    REQUIRE(r != NULL);
    deid_model *keep = r->model;
    for (int level = 0; level < 5; level++) {
        deid_model *m = hand_model(mp, sw[level],
                                   "b\tO:10\npt=d\tDATE:20\nlen=1\tNAME:20\npt=u\tURL:20\nnd=3\tPHONE:20\n"
                                   "nd=4\tPHONE:20\nden=10\tDATE:20\ndnm=10\tDATE:20\nw0=yesterday\tLOCATION:20\nw0=grace\tLOCATION:20\n");
        REQUIRE(m != NULL);
        CHECK_EQ_INT(m->nursing_shorthand, level);
        r->model = m;
        for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
            int n = amp_spans(r, cases[k].text, got, sizeof got);
            if (n != cases[k].want[level]) fprintf(stderr, "  level %d: \"%s\" -> %s\n", level, cases[k].text, got);
            CHECK_EQ_INT(n, cases[k].want[level]);
            if (strstr(cases[k].text, "+555")) CHECK_EQ_STR(got, "[+555 0900]PHONE");
        }
        r->model = keep;
        deid_model *m2 = saved_copy(m, mp);
        CHECK(m2 != NULL && m2->nursing_shorthand == level);
        deid_model_free(m2);
        deid_model_free(m);
        /* the span's final type: the model says name, the pattern says URL */
        m = hand_model(mp, sw[level], "b\tO:10\npt=u\tNAME:20\n");
        REQUIRE(m != NULL);
        r->model = m;
        int n = amp_spans(r, "Care given.\n2.Pt turned q2h.", got, sizeof got);
        if (n) CHECK_EQ_STR(got, "[2.Pt]URL");
        CHECK_EQ_INT(n, level >= 3 ? 0 : 1);
        r->model = keep;
        deid_model_free(m);
    }
    CHECK(hand_model(mp, "@nursing_shorthand\t5\n", "b\tO:10\n") == NULL);
    remove(mp);
    deid_rules_free(r);
}

/* Round 30 (@threshold_dense, candidates D75 and D70): in a note where at least one word in seven
 * is a clinical keep-list word (keep density class '3'), a word is PHI only when P(O) is below
 * the dense threshold; in prose the model's @threshold decides as before. A hand-written model
 * gives one word ("grace": the w0= row of a common word) P(O) = 0.775 in every note (its row against "b"'s O weight, no transitions),
 * between the dense threshold 0.75 and @threshold 0.80: it is taken in the prose note and kept in
 * the shorthand one, and taken in both without the line. The line survives a save and a load and
 * the threshold calibration (deid_model_calibrate sets @threshold only); values outside (0, 1]
 * are refused. */
static void test_threshold_dense(void) {
    static const char *const dense = "Levo gtt 0.08, MAP 65, FiO2 40%, PEEP 5, UOP 30 ml, per Grace.";
    static const char *const prose = "Spoke with Grace this afternoon about the weekend, the weather and the "
                                     "long drive back to the farm after work.";
    /* e^W = e^10 (1 / 0.775 - 1) - (labels other than O and NAME), so P(O) = 0.775 */
    char rows[160];
    double ew = exp(10.0) * (1 / 0.775 - 1) - (DEID_NL - 2);
    snprintf(rows, sizeof rows, "b\tO:10\nw0=grace\tNAME:%.6f\n", log(ew));
    char rules[4200], mp[4300];
    deid_text_rules *r = rules_and_model_path(rules, sizeof rules, mp, sizeof mp, "dense");
    REQUIRE(r != NULL);
    deid_model *keep = r->model;
    for (int on = 0; on < 2; on++) {
        deid_model *m = hand_model(mp, on ? "@threshold_dense\t0.75\n" : "", rows);
        REQUIRE(m != NULL);
        CHECK(on ? fabsf(m->threshold_dense - 0.75f) < 1e-6f : m->threshold_dense == 0);
        r->model = m;
        int hd = taken(r, dense, "Grace"), hp = taken(r, prose, "Grace");
        if (hd != !on || hp != 1) fprintf(stderr, "  dense line %s: taken in the shorthand note %d, in prose %d\n", on ? "on" : "off", hd, hp);
        CHECK_EQ_INT(hd, !on);
        CHECK_EQ_INT(hp, 1);
        /* a clinical word of the dense note is not touched either way */
        CHECK_EQ_INT(taken(r, dense, "PEEP"), 0);
        r->model = keep;
        if (on) {
            deid_model *m2 = saved_copy(m, mp);
            CHECK(m2 != NULL && fabsf(m2->threshold_dense - 0.75f) < 1e-6f);
            deid_model_free(m2);
        }
        deid_model_free(m);
    }
    /* the calibration chooses @threshold and writes the dense line back as it was */
    synth_notes held;
    cf_err err = {0};
    REQUIRE(synth_notes_generate_ex(&held, rules, SYNTH_NAMES_HELDOUT, 0, 6, 31, &err) == CF_OK);
    FILE *f = fopen(mp, "w");
    REQUIRE(f != NULL);
    fprintf(f, "# clinfm deid model 1\n@threshold\t0.5000\n@threshold_dense\t0.7000\n%s", rows);
    REQUIRE(fclose(f) == 0);
    double thr = 0;
    CHECK_EQ_INT(deid_model_calibrate(r, mp, &held.corpus, 1, 0, 0, 0, &thr, NULL, NULL, &err), CF_OK);
    deid_model *c = NULL;
    CHECK_EQ_INT(deid_model_load(&c, mp, &err), CF_OK);
    CHECK(c != NULL && fabsf(c->threshold_dense - 0.70f) < 1e-6f && fabsf(c->threshold - (float)thr) < 1e-6f);
    deid_model_free(c);
    synth_notes_free(&held);
    /* out of (0, 1]: refused, with the file, line and name */
    static const char *const bad[] = {"@threshold_dense\t0\n", "@threshold_dense\t1.5\n", "@threshold_dense\t-0.2\n",
                                      "@threshold_dense\tx\n"};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        CHECK(hand_model(mp, bad[k], "b\tO:10\n") == NULL);
        deid_model *b = NULL;
        CHECK_EQ_INT(deid_model_load(&b, mp, &err), CF_EINPUT);
        CHECK_CONTAINS(err.msg, ":3:");
        CHECK_CONTAINS(err.msg, "threshold_dense");
    }
    deid_model *one = hand_model(mp, "@threshold_dense\t1\n", "b\tO:10\n");
    CHECK(one != NULL && one->threshold_dense == 1.0f);
    deid_model_free(one);
    remove(mp);
    deid_rules_free(r);
}

/* Round 31 (candidate R): a rules folder may hold model_dense.tsv beside model.tsv; a note of keep
 * density class '3' (at least one clinical keep-list word in seven) is decoded with it, every other
 * note with model.tsv. Two hand-written models label "Grace" differently (A: O, B: NAME); with A
 * as model.tsv and B as model_dense.tsv Grace is taken in the shorthand note only, with the two
 * swapped in the prose note only, and without model_dense.tsv the folder decodes both notes with
 * model.tsv as before. --explain says model=dense where the dense model decided, and nowhere
 * else. A bad line of model_dense.tsv is refused with its file and line. */
static int folder_with_models(const char *dir, const char *model, const char *dense) {
    char rel[4200], src[PATH_MAX];
    snprintf(rel, sizeof rel, "%s/data/deid", check_root());
    if (!realpath(rel, src)) return -1; /* the links must not be relative to dir */
    if (mkdir(dir, 0700) && errno != EEXIST) return -1;
    DIR *d = opendir(src);
    if (!d) return -1;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.' || !strcmp(e->d_name, "model.tsv") || !strcmp(e->d_name, "model_dense.tsv")) continue;
        char a[4600], b[4600];
        snprintf(a, sizeof a, "%s/%s", src, e->d_name);
        snprintf(b, sizeof b, "%s/%s", dir, e->d_name);
        unlink(b);
        if (symlink(a, b)) {
            closedir(d);
            return -1;
        }
    }
    closedir(d);
    const char *body[2] = {model, dense};
    const char *name[2] = {"model.tsv", "model_dense.tsv"};
    for (int k = 0; k < 2; k++) {
        char p[4600];
        snprintf(p, sizeof p, "%s/%s", dir, name[k]);
        unlink(p);
        if (!body[k]) continue;
        FILE *f = fopen(p, "w");
        if (!f) return -1;
        fprintf(f, "# clinfm deid model 1\n@threshold\t0.8000\n%s", body[k]);
        if (fclose(f)) return -1;
    }
    return 0;
}

static int explained_dense(const deid_text_rules *r, const char *text) {
    deid_explained *ex = NULL;
    size_t n = 0, nd = 0;
    cf_err err = {0};
    int rc = deid_find_explain(r, text, strlen(text), NULL, &ex, &n, &err);
    for (size_t k = 0; !rc && k < n; k++) nd += strstr(ex[k].why, "model=dense") != NULL;
    free(ex);
    return rc ? -1 : nd > 0; /* 1: some line says the dense model decided */
}

static void test_dense_model(void) {
    static const char *const dense = "Levo gtt 0.08, MAP 65, FiO2 40%, PEEP 5, UOP 30 ml, per Grace.";
    static const char *const prose = "Spoke with Grace this afternoon about the weekend, the weather and the "
                                     "long drive back to the farm after work.";
    static const char *const A = "b\tO:10\n", *const B = "b\tO:10\nw0=grace\tNAME:20\n";
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/test-dense-rules-%d", check_tmpdir(), (int)getpid());
    struct { const char *model, *dense; int want_dense, want_prose, explain_dense; } cases[] = {
        {A, B, 1, 0, 1}, /* the dense note by B, prose by A */
        {B, A, 0, 1, 0}, /* swapped (A takes nothing in the dense note: no line to explain) */
        {A, NULL, 0, 0, 0}, /* no model_dense.tsv: model.tsv decides both, as before */
        {B, NULL, 1, 1, 0},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        REQUIRE(folder_with_models(dir, cases[k].model, cases[k].dense) == 0);
        deid_text_rules *r = NULL;
        cf_err err = {0};
        int lrc = deid_rules_load(&r, dir, &err);
        if (lrc) fprintf(stderr, "  case %zu: %s\n", k, err.msg);
        REQUIRE(lrc == CF_OK);
        CHECK_EQ_INT(r->model_dense != NULL, cases[k].dense != NULL);
        int hd = taken(r, dense, "Grace"), hp = taken(r, prose, "Grace");
        if (hd != cases[k].want_dense || hp != cases[k].want_prose)
            fprintf(stderr, "  case %zu: taken in the shorthand note %d, in prose %d\n", k, hd, hp);
        CHECK_EQ_INT(hd, cases[k].want_dense);
        CHECK_EQ_INT(hp, cases[k].want_prose);
        /* explain names the dense model where it decided (a span or a kept word), and only there */
        if (cases[k].want_dense || cases[k].dense) CHECK_EQ_INT(explained_dense(r, dense), cases[k].explain_dense);
        CHECK_EQ_INT(explained_dense(r, prose), 0);
        deid_rules_free(r);
    }
    /* a bad line of model_dense.tsv: refused, naming the file and the line */
    REQUIRE(folder_with_models(dir, A, "@threshold_dense\t1.5\n") == 0);
    deid_text_rules *r = NULL;
    cf_err err = {0};
    CHECK_EQ_INT(deid_rules_load(&r, dir, &err), CF_EINPUT);
    CHECK(r == NULL);
    CHECK_CONTAINS(err.msg, "model_dense.tsv:3:");
    /* model_dense.tsv without model.tsv: refused */
    REQUIRE(folder_with_models(dir, NULL, A) == 0);
    err = (cf_err){0};
    CHECK_EQ_INT(deid_rules_load(&r, dir, &err), CF_EINPUT);
    CHECK_CONTAINS(err.msg, "model_dense.tsv");
}

/* Writes text to path (a new file: a link of the scratch folder is removed first, never written
 * through); with from, that file's bytes first. */
static int write_scratch_file(const char *path, const char *from, const char *text) {
    unlink(path);
    FILE *o = fopen(path, "w");
    if (!o) return -1;
    if (from) {
        FILE *i = fopen(from, "rb");
        if (!i) {
            fclose(o);
            return -1;
        }
        char buf[8192];
        size_t n;
        while ((n = fread(buf, 1, sizeof buf, i)) > 0) fwrite(buf, 1, n, o);
        fclose(i);
    }
    fputs(text, o);
    return fclose(o) ? -1 : 0;
}

/* Round 34: clinical_keep_extra.txt (optional) is read only by the keep filter after the model: its
 * words get no list flag (a word's classes, every feature, the density class and the model's
 * marginals are what they are without the file), and a word of it the model took is kept as a
 * clinical_keep.txt word is (KEEP_MAX_P_KEEP). The note below has 14 words of two letters or more,
 * one of them a clinical_keep.txt word ("Levo") and one the extra word "zorbix": counted, zorbix
 * would lift it to density class '3' (two in fourteen). With A as model.tsv and B (which takes
 * "Grace") as model_dense.tsv, Grace stays when zorbix is in clinical_keep_extra.txt (the note is
 * routed to model.tsv, as without the word) and is taken when zorbix is in clinical_keep.txt
 * instead (the control: the note is on the boundary). Then a model that gives every unlisted word
 * ("lc=O") P(PHI) 0.88 takes zorbix without the file; with the file zorbix is still "lc=O" (no list
 * flag), the model's P(PHI) for it is the same float, and the filter keeps it, naming the file. */
static void test_keep_extra(void) {
    static const char *const note = "Levo zorbix, then we walked over the hill and it was discussed with Grace";
    static const char *const prose = "Checked the zorbix at noon.";
    static const char *const A = "b\tO:10\n", *const B = "b\tO:10\nw0=grace\tNAME:20\n",
                             *const C = "b\tO:10\nlc=O\tNAME:12\n";
    char dir[4200], extra[4300], keep[4300], src[4300];
    snprintf(dir, sizeof dir, "%s/test-keep-extra-%d", check_tmpdir(), (int)getpid());
    snprintf(extra, sizeof extra, "%s/clinical_keep_extra.txt", dir);
    snprintf(keep, sizeof keep, "%s/clinical_keep.txt", dir);
    snprintf(src, sizeof src, "%s/data/deid/clinical_keep.txt", check_root());
    /* 0: zorbix in clinical_keep_extra.txt; 1: in clinical_keep.txt (the control); 2: in neither */
    for (int k = 0; k < 3; k++) {
        REQUIRE(folder_with_models(dir, A, B) == 0);
        unlink(extra);
        if (k == 0) REQUIRE(write_scratch_file(extra, NULL, "# test\nzorbix\n") == 0);
        if (k == 1) REQUIRE(write_scratch_file(keep, src, "zorbix\n") == 0);
        deid_text_rules *r = NULL;
        cf_err err = {0};
        REQUIRE(deid_rules_load(&r, dir, &err) == CF_OK);
        CHECK_EQ_INT((int)r->keep_extra.count, k == 0);
        int hit = taken(r, note, "Grace");
        if (hit != (k == 1)) fprintf(stderr, "  case %d: Grace taken %d\n", k, hit);
        CHECK_EQ_INT(hit, k == 1);
        CHECK_EQ_INT(explained_dense(r, note), k == 1);
        deid_rules_free(r);
    }
    /* 0: with the file, 1: without */
    float prob[2] = {-1, -1};
    int kept[2] = {-1, -1}, named[2] = {0, 0};
    size_t zs = (size_t)(strstr(prose, "zorbix") - prose), ze = zs + 6;
    for (int k = 0; k < 2; k++) {
        REQUIRE(folder_with_models(dir, C, NULL) == 0);
        unlink(extra);
        if (k == 0) REQUIRE(write_scratch_file(extra, NULL, "# test\nzorbix\n") == 0);
        deid_text_rules *r = NULL;
        cf_err err = {0};
        REQUIRE(deid_rules_load(&r, dir, &err) == CF_OK);
        int hit = taken(r, prose, "zorbix");
        if (hit != (k == 1)) fprintf(stderr, "  case %d: zorbix taken %d\n", k, hit);
        CHECK_EQ_INT(hit, k == 1);
        deid_explained *ex = NULL;
        size_t n = 0;
        CHECK_EQ_INT(deid_find_explain(r, prose, strlen(prose), NULL, &ex, &n, &err), CF_OK);
        for (size_t q = 0; q < n; q++)
            if (ex[q].start < ze && zs < ex[q].end) {
                prob[k] = ex[q].prob;
                kept[k] = ex[q].kept;
                named[k] = strstr(ex[q].why, "kept: clinical_keep_extra.txt entry") != NULL;
            }
        free(ex);
        deid_rules_free(r);
    }
    /* the model's P(PHI) for zorbix is what it is without the file (and above the threshold) */
    if (prob[0] != prob[1]) fprintf(stderr, "  P(PHI) of zorbix %.6f with the file, %.6f without\n", prob[0], prob[1]);
    CHECK(prob[1] > 0.80f && prob[1] < 0.99f);
    CHECK(prob[0] == prob[1]);
    CHECK_EQ_INT(kept[0], 1);
    CHECK_EQ_INT(kept[1], 0);
    CHECK_EQ_INT(named[0], 1);
    CHECK_EQ_INT(named[1], 0);
    unlink(extra);
    unlink(keep);
}

/* Rules from the shipped folder with a hand-written model.tsv, and slots.tsv without the lines of
 * kind drop (NULL: all of them kept); NULL on failure. */
static deid_text_rules *rules_without_slot_kind(const char *dir, const char *model, const char *drop) {
    char slots[4300], src[4300], line[512];
    snprintf(slots, sizeof slots, "%s/slots.tsv", dir);
    snprintf(src, sizeof src, "%s/data/deid/slots.tsv", check_root());
    if (folder_with_models(dir, model, NULL)) return NULL;
    FILE *in = fopen(src, "r");
    if (!in) return NULL;
    unlink(slots);
    FILE *out = fopen(slots, "w");
    if (!out) {
        fclose(in);
        return NULL;
    }
    size_t dl = drop ? strlen(drop) : 0;
    while (fgets(line, sizeof line, in))
        if (!drop || strncmp(line, drop, dl) || line[dl] != '\t') fputs(line, out);
    fclose(in);
    if (fclose(out)) return NULL;
    deid_text_rules *r = NULL;
    cf_err err = {0};
    return deid_rules_load(&r, dir, &err) == CF_OK ? r : NULL;
}

/* A slot kind's cases, once with the shipped slots.tsv and once without the kind's lines (the
 * hand-written model decides nothing else): each text of `taken` gives a span over its needle with
 * the kind, of type want (-1: any type), and none without it; no text of `left` gives one either
 * way. tag names the scratch folder. */
static void check_slot_kind(const char *tag, const char *model, const char *kind, const char *const (*taken_cases)[2],
                            size_t n_taken, const char *const (*left)[2], size_t n_left, int want) {
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/test-%s-%d", check_tmpdir(), tag, (int)getpid());
    for (int on = 0; on < 2; on++) {
        deid_text_rules *r = rules_without_slot_kind(dir, model, on ? NULL : kind);
        REQUIRE(r != NULL);
        for (size_t k = 0; k < n_taken; k++) {
            int ty = span_type(r, taken_cases[k][0], taken_cases[k][1]);
            int ok = on ? (want >= 0 ? ty == want : ty >= 0) : ty == -1;
            if (!ok) fprintf(stderr, "  %s phrases %d: \"%s\" gives type %d\n", kind, on, taken_cases[k][0], ty);
            CHECK(ok);
        }
        for (size_t k = 0; k < n_left; k++) {
            int ty = span_type(r, left[k][0], left[k][1]);
            if (ty != -1) fprintf(stderr, "  %s phrases %d: \"%s\" gives type %d\n", kind, on, left[k][0], ty);
            CHECK_EQ_INT(ty, -1);
        }
        deid_rules_free(r);
    }
}

/* Round 40 candidate A (slots.tsv patient phrases): a number from 90 to 120 the model left, after a
 * patient phrase or after a name and a comma, closed by a comma or the clause's end, is an age over
 * 89 (and typed so); a percentage, a temperature, a weight, a heart rate are not. A hand-written
 * model takes nothing but the name after "Mrs."; without the file's patient phrases no age is taken. */
static void test_age_apposition(void) {
    static const char *const ages[][2] = {
        {"step down. pt 91, adm w syncope.", "91"},
        {"MICU. PT IS 101, FROM HOME", "101"},
        {"Pt 97, hard of hearing.", "97"},
        {"Mrs. Dufresne, 97, lives alone.", "97"},
    };
    static const char *const none[][2] = {
        {"pt 98% on RA.", "98"}, {"pt 100.4 this am.", "100"}, {"pt 95 kg today.", "95"}, {"HR 95, BP 110/60.", "95"},
        {"pt 95 and stable.", "95"},
    };
    check_slot_kind("age", "b\tO:10\nw-1=mrs\tNAME:20\n", "patient", ages, sizeof ages / sizeof ages[0], none,
                    sizeof none / sizeof none[0], DEID_AGE_OVER_89);
}

/* Round 41 candidate E (slots.tsv date_after phrases): a month/day the model left, after an event
 * participle, a date word or a weekday, closing its clause or before a clock time, is a date; a half
 * (1/2 NS), a range of days, a score and a strength are not, nor a date cue's month/day inside a
 * sentence. A hand-written model takes nothing; without the phrases no such date is taken. */
static void test_event_dates(void) {
    /* each note opens with a heading line: round 10's slot takes a month/day closing a short first line */
    static const char *const dates[][2] = {
        {"NPN 7a-7p\nmarked borders from lines drawn 12/4.", "12/4"},
        {"NPN 7a-7p\nhospital, transfer date 12-11, transport booked", "12-11"},
        {"NPN 7a-7p\nmissed wedding Sat 12/5, family posted video", "12/5"},
        {"NPN 7a-7p\nmidline due 3/7, IR aware", "3/7"},
    };
    static const char *const none[][2] = {
        {"NPN 7a-7p\nstarted 1/2 NS at 75", "1/2"}, {"NPN 7a-7p\nchanged to 1/2 NS", "1/2"},
        {"NPN 7a-7p\nsick since 3-4 days", "3-4"},  {"NPN 7a-7p\npain 3/10.", "3/10"},
        {"NPN 7a-7p\nstrength 5/5.", "5/5"},        {"NPN 7a-7p\nline placed 3/7 attempts", "3/7"},
    };
    /* the span's type is the hand-written model's (it weighs no type above another), so any type */
    check_slot_kind("event-date", "b\tO:10\n", "date_after", dates, sizeof dates / sizeof dates[0], none,
                    sizeof none / sizeof none[0], -1);
}

/* Round 42 candidates W and P (slots.tsv ward_side, person_after): a floor number beside
 * a ward's side is a place; a word in no list after a role of person_after, or after any role or
 * kinship word in brackets, is a name. A bed's number, a charting verb after a role and a bracket
 * of stop words after a relation are none.
 * A hand-written model takes nothing; without the kind's phrases nothing is taken. */
static void test_ward_side(void) {
    static const char *const wards[][2] = {
        {"arrived to 4 North bed 12, on vent.", "4 North"},
        {"MED SURG 5 WEST. POD 2 LAP CHOLE.", "5 WEST"},
        {"bed on 7 east held for am.", "7 east"},
        {"pt to go to West 6 after lunch.", "West 6"},
    };
    static const char *const none[][2] = {
        {"pt in bed 3 east side of unit.", "3 east"}, {"walked 2 laps in hall.", "2"},
        {"moved 40 north of here.", "40 north"},
    };
    /* the span's type is the hand-written model's (it weighs no type above another), so any type */
    check_slot_kind("ward-side", "b\tO:10\n", "ward_side", wards, sizeof wards / sizeof wards[0], none,
                    sizeof none / sizeof none[0], -1);
    /* round 43 (W'): with the shipped model, the ward's span is a place of its two words; typed by
       the model's sums it was an address, widened by an address pattern across the sentence's end */
    char rules[4200];
    snprintf(rules, sizeof rules, "%s/data/deid", check_root());
    deid_text_rules *r = NULL;
    cf_err err = {0};
    REQUIRE(deid_rules_load(&r, rules, &err) == CF_OK);
    const char *note = "ED HOLD - MED\nED holding, awaiting 6 South. Pt w/ cellulitis R lower leg, marked borders at 1000.\n";
    deid_span *sp = NULL;
    size_t n = 0;
    REQUIRE(deid_find(r, note, strlen(note), NULL, &sp, &n, &err) == CF_OK);
    const char *w = strstr(note, "6 South");
    int found = 0;
    for (size_t k = 0; k < n; k++) {
        if (sp[k].start >= (size_t)(w - note) + 7 || sp[k].end <= (size_t)(w - note)) continue;
        found = 1;
        CHECK_EQ_INT(sp[k].type, DEID_LOCATION);
        CHECK_EQ_INT((int)sp[k].start, (int)(w - note));
        CHECK_EQ_INT((int)sp[k].end, (int)(w - note) + 7);
    }
    CHECK(found);
    free(sp);
    deid_rules_free(r);
}

static void test_person_after(void) {
    static const char *const people[][2] = {
        {"cervix 4/70/-1 per midwife odalys. fhr cat i.", "odalys"},
        {"lactation (fiadh) to see at 1300.", "fiadh"},
        {"Pharm (Aoife) double checked dose.", "Aoife"},
        {"call from hospice intake (Dana, 555-0158) re eval.", "Dana"},
    };
    static const char *const none[][2] = {
        {"np aware of labs. charge rn notified.", "aware"}, {"charge rn notified of labs.", "notified"},
        {"wife (at bedside) updated.", "at"}, {"OT (eval) today.", "eval"},
    };
    check_slot_kind("person-after", "b\tO:10\n", "person_after", people, sizeof people / sizeof people[0], none,
                    sizeof none / sizeof none[0], -1);
}

/* Round 44 candidates T and D (slots.tsv honorific, participle): a word in no list or a listed name
 * right after an honorific is a name in any case; a month/day closing its clause right after a past
 * participle is a date. A charting verb, a common word, a stop word after an honorific, a score out
 * of ten, a fraction, a strength and a month/day inside a clause are none. A hand-written model takes
 * nothing; without the kind's phrases nothing is taken. */
static void test_honorific_names(void) {
    static const char *const names[][2] = {
        {"NPN 7a-7p\nnotified Dr hallworth, 1 u prbc ordered", "hallworth"},
        {"NPN 7a-7p\nschool teacher ms rutherford sent card", "rutherford"},
        {"NPN 7a-7p\nspoke with dr bell about the plan", "bell"},
    };
    static const char *const none[][2] = {
        {"NPN 7a-7p\nDr aware.", "aware"}, {"NPN 7a-7p\nDr ordered lasix.", "ordered"},
        {"NPN 7a-7p\nDr to see pt.", "to"}, {"NPN 7a-7p\nMD paged.", "paged"},
    };
    /* the span's type is the hand-written model's (it weighs no type above another), so any type */
    check_slot_kind("honorific", "b\tO:10\n", "honorific", names, sizeof names / sizeof names[0], none,
                    sizeof none / sizeof none[0], -1);
}

static void test_participle_dates(void) {
    static const char *const dates[][2] = {
        {"NPN 7a-7p\nbmz #2 given 12/3.", "12/3"},
        {"NPN 7a-7p\ndemarcation marked 12/4, redness now 2cm", "12/4"},
        {"NPN 7a-7p\nconsent on chart, signed 4-17.", "4-17"},
    };
    static const char *const none[][2] = {
        {"NPN 7a-7p\npain rated 8/10.", "8/10"}, {"NPN 7a-7p\ntolerated 1/2.", "1/2"},
        {"NPN 7a-7p\ngiven 1/2 tab", "1/2"},     {"NPN 7a-7p\nstrength 5/5.", "5/5"},
        {"NPN 7a-7p\nmarked 12/4 borders", "12/4"},
    };
    check_slot_kind("participle", "b\tO:10\n", "participle", dates, sizeof dates / sizeof dates[0], none,
                    sizeof none / sizeof none[0], -1);
}

/* Round 45 candidates K and B (slots.tsv word_name, ward_unit): a given name that is a common word
 * and in no list, right after a relation, is a name in any case; a ward in brackets right after its
 * unit is a place. A charting word after a relation, a word left out of the list, a stop word, a bed,
 * a day and a count in brackets are none. A hand-written model takes nothing; without the kind's
 * phrases nothing is taken. */
static void test_word_names(void) {
    static const char *const names[][2] = {
        {"NPN 7a-7p\npt ambulating w/ partner wren.", "wren"},
        {"NPN 7a-7p\nlives w/ his daughter marigold.", "marigold"},
        {"NPN 7a-7p\nPT'S FIANCEE WREN SLEPT IN ROOM", "WREN"},
    };
    static const char *const none[][2] = {
        {"NPN 7a-7p\nson aware.", "aware"}, {"NPN 7a-7p\nwife honey", "honey"},
        {"NPN 7a-7p\npartner at bedside", "at"},
    };
    /* the span's type is the hand-written model's (it weighs no type above another), so any type */
    check_slot_kind("word-name", "b\tO:10\n", "word_name", names, sizeof names / sizeof names[0], none,
                    sizeof none / sizeof none[0], -1);
}

static void test_ward_brackets(void) {
    static const char *const wards[][2] = {
        {"NPN 7a-7p\ntransfer to step-down (Kessler 7) once bed opens", "Kessler 7"},
        {"npn 7a-7p\npt transferred from micu (ellison 6) at 1100", "ellison 6"},
    };
    static const char *const none[][2] = {
        {"NPN 7a-7p\nmicu (bed 6)", "bed 6"}, {"NPN 7a-7p\nmicu (day 3)", "day 3"}, {"NPN 7a-7p\ntele (x2)", "x2"},
    };
    check_slot_kind("ward-brackets", "b\tO:10\n", "ward_unit", wards, sizeof wards / sizeof wards[0], none,
                    sizeof none / sizeof none[0], DEID_LOCATION);
}

/* Round 46 candidates I and X (slots.tsv id_word, pager_word): a code after "#" or an id word is an
 * identifier, a number after a pager word (or "x" glued to four digits) a phone (the span's type is
 * the label's only where the model's sums would call it a name, place or ZIP; with this hand-written
 * model, which weighs no type above another, any type). A short count after "#", a clock time after "at", a count "x2" and a clock-shaped "x1200" are none. A
 * hand-written model takes nothing; without the kind's phrases nothing is taken. */
static void test_id_codes(void) {
    static const char *const ids[][2] = {
        {"NPN 7a-7p\nINCIDENT REPORT #IR-2026-4471 FILED.", "4471"},
        {"NPN 7a-7p\nleft card, badge 4471.", "4471"},
        {"NPN 7a-7p\nauth # AUTH-7732019 obtained", "7732019"},
    };
    static const char *const none[][2] = {
        {"NPN 7a-7p\nbmz #2 given", "2"}, {"NPN 7a-7p\nreport at 1900", "1900"}, {"NPN 7a-7p\nline # 2 flushed", "2"},
    };
    check_slot_kind("id-code", "b\tO:10\n", "id_word", ids, sizeof ids / sizeof ids[0], none,
                    sizeof none / sizeof none[0], -1);
}

static void test_pager_numbers(void) {
    static const char *const pagers[][2] = {
        {"NPN 7a-7p\nDr Abernathy paged at x4471 re lactate", "4471"},
        {"NPN 7a-7p\ndr adeyemi paged 3317.", "3317"},
        {"NPN 7a-7p\npaged 4-7731, called back", "7731"},
        {"NPN 7a-7p\nCHARGE MAUREEN X3380 SAYS", "3380"},
    };
    static const char *const none[][2] = {
        {"NPN 7a-7p\npaged at 2200", "2200"}, {"NPN 7a-7p\nambulated x2", "x2"}, {"NPN 7a-7p\nI&O x1200", "x1200"},
    };
    check_slot_kind("pager", "b\tO:10\n", "pager_word", pagers, sizeof pagers / sizeof pagers[0], none,
                    sizeof none / sizeof none[0], -1);
}

/* Round 47 candidates F and Q (slots.tsv handoff, nickname; S, a name after any care role, failed rule 2a
 * and was removed): in any case, a word in no list right after a handoff phrase is a name, and so are one
 * or two words in quotes after a nickname cue. Ordinary words after "report to" and a keep-list word in
 * quotes are none. A hand-written model takes nothing; without the
 * kind's phrases nothing is taken. */
static void test_handoff_names(void) {
    static const char *const names[][2] = {
        {"NPN 7a-7p\nreport to oduya, pt stable.", "oduya"},
        {"NPN 7a-7p\nCCU 0700 HANDOFF FROM CORMAC: PT ON IABP", "CORMAC"},
    };
    static const char *const none[][2] = {
        {"NPN 7a-7p\nreport to floor", "floor"}, {"NPN 7a-7p\nhandoff to oncoming rn", "oncoming"},
    };
    check_slot_kind("handoff", "b\tO:10\n", "handoff", names, sizeof names / sizeof names[0], none,
                    sizeof none / sizeof none[0], -1);
}

static void test_nicknames(void) {
    static const char *const names[][2] = {
        {"NPN 7a-7p\npt prefers \"birdie\", sharp", "birdie"},
        {"NPN 7a-7p\nnickname \"Bugsy\", prefers it", "Bugsy"},
    };
    static const char *const none[][2] = {
        {"NPN 7a-7p\nprefers \"tylenol\" for pain", "tylenol"},
    };
    check_slot_kind("nickname", "b\tO:10\n", "nickname", names, sizeof names / sizeof names[0], none,
                    sizeof none / sizeof none[0], -1);
}

/* Round 48 candidates O2, W2 and D2 (slots.tsv org_cue/org_last/org_generic, ward_cue/ward_after, sp_word):
 * an organisation by its last words after a referral or transport cue, a ward and its floor after a ward
 * cue, a month/day closing its clause after "s/p" are taken in any case; generic and participle words
 * before the last words, a dose, a bed, a unit, a fraction and a score are none. A hand-written model
 * takes nothing; without the kinds' phrases nothing is taken. */
static void test_org_after_cue(void) {
    static const char *const orgs[][2] = {
        {"NPN 7a-7p\nrx sent to walbrook pharmacy.", "walbrook pharmacy"},
        {"NPN 7a-7p\ntransport via coastline ambulance at 1845", "coastline ambulance"},
        {"NPN 7a-7p\nhome w/ bluebird home health for pt.", "bluebird home health"},
    };
    static const char *const none[][2] = {
        {"NPN 7a-7p\nd/c home w/ home care", "home care"},
        {"NPN 7a-7p\ntransport by a volunteer ambulance company", "volunteer ambulance"},
        {"NPN 7a-7p\nsent to outpatient pharmacy", "outpatient pharmacy"},
    };
    /* the span's type is the hand-written model's (it weighs no type above another), so any type */
    check_slot_kind("org-cue", "b\tO:10\n", "org_cue", orgs, sizeof orgs / sizeof orgs[0], none,
                    sizeof none / sizeof none[0], -1);
}

static void test_ward_after_cue(void) {
    static const char *const wards[][2] = {
        {"NPN 7a-7p\nawaiting wexford 3 bed.", "wexford 3"},
        {"NPN 7a-7p\nmicu kessler 4 pod b", "kessler 4"},
    };
    static const char *const none[][2] = {
        {"NPN 7a-7p\nawaiting dose 2.", "dose 2"}, {"NPN 7a-7p\nholding for bed 3", "bed 3"},
        {"NPN 7a-7p\nto tele 5.", "tele 5"},
    };
    check_slot_kind("ward-cue", "b\tO:10\n", "ward_cue", wards, sizeof wards / sizeof wards[0], none,
                    sizeof none / sizeof none[0], DEID_LOCATION);
}

static void test_sp_dates(void) {
    static const char *const dates[][2] = {
        {"NPN 7a-7p\ns/p cabg x3 12/5, pod 2.", "12/5"},
        {"NPN 7a-7p\ns/p l sdh evac 12-3, drain out", "12-3"},
    };
    static const char *const none[][2] = {
        {"NPN 7a-7p\ns/p 1/2 dose.", "1/2"}, {"NPN 7a-7p\ns/p fall, pain 3/10.", "3/10"},
    };
    check_slot_kind("sp-date", "b\tO:10\n", "sp_word", dates, sizeof dates / sizeof dates[0], none,
                    sizeof none / sizeof none[0], -1);
}

/* Round 49 candidates S' and K' (slots.tsv staff_name_role; relation and word_name2): a name after a care
 * role with evidence after it, and a common-word given name after more relations, in any case. Catalogue
 * abbreviations after a role with no such evidence, "rt" (right), a modal verb and a word out of the lists
 * after a relation are none. A hand-written model takes nothing; without the kinds nothing is taken. */
static void test_staff_names(void) {
    static const char *const names[][2] = {
        {"NPN 7a-7p\nreport given to charge rn odalys at x5521.", "odalys"},
        {"NPN 7a-7p\nNEURO ICU CHARGE FABIAN X3318 SAYS", "FABIAN"},
        {"NPN 7a-7p\npaged covering md fenwick x6621", "fenwick"},
    };
    static const char *const none[][2] = {
        {"NPN 7a-7p\nHhc lpn/rn obs/asses ea 15", "obs"}, {"NPN 7a-7p\nscreen pap by tech w md supv", "supv"},
        {"NPN 7a-7p\nOT ODI 3 MO", "ODI"},                 {"NPN 7a-7p\nrt ij tlc site clean", "ij"},
    };
    check_slot_kind("staff-name", "b\tO:10\n", "staff_name_role", names, sizeof names / sizeof names[0], none,
                    sizeof none / sizeof none[0], -1);
}

static void test_word_names_more(void) {
    static const char *const names[][2] = {
        {"NPN 7a-7p\npt's friend lark and wife visiting", "lark"},
        {"NPN 7a-7p\nneighbor chuck who did cpr", "chuck"},
        {"NPN 7a-7p\npartner rain asked abt visiting hrs", "rain"},
    };
    static const char *const none[][2] = {
        {"NPN 7a-7p\nson will call", "will"}, {"NPN 7a-7p\nfriend at bedside", "at"}, {"NPN 7a-7p\nwife honey", "honey"},
    };
    check_slot_kind("word-name2", "b\tO:10\n", "word_name2", names, sizeof names / sizeof names[0], none,
                    sizeof none / sizeof none[0], -1);
}

/* Round 50 candidates W3, G, Q' and S'' (slots.tsv ward_room, sign_dash, call_for, staff_verb): a ward before
 * its room, initials alone on a signing line, a quoted given name after a call for someone or a relation,
 * a role's name before what the person does. A bed before a side, a measure, a stop or role word after a
 * dash, a quoted common word, and a clinical word after a role are none. A hand-written model takes
 * nothing; without the kind's phrases nothing is taken. */
static void test_ward_room(void) {
    static const char *const wards[][2] = {
        {"NPN 7a-7p\nbed assigned 5 north rm 512 at 0610", "5 north"},
        {"NPN 7a-7p\npt to 6 south rm 614.", "6 south"},
    };
    static const char *const none[][2] = {
        {"NPN 7a-7p\nbed 3 east rm 4", "3 east"}, {"NPN 7a-7p\n5 mg rm temp", "5 mg"},
    };
    check_slot_kind("ward-room", "b\tO:10\n", "ward_room", wards, sizeof wards / sizeof wards[0], none,
                    sizeof none / sizeof none[0], DEID_LOCATION);
}

static void test_sign_initials(void) {
    static const char *const names[][2] = {
        {"NPN 7a-7p\npt resting, no events.\n-- jmc", "jmc"},
        {"NPN 7a-7p\nfamily will visit tomorrow.\n-- ldw", "ldw"},
    };
    static const char *const none[][2] = {
        {"NPN 7a-7p\nno events.\n-- ok", "ok"}, {"NPN 7a-7p\nno events.\n-- rn", "rn"},
    };
    check_slot_kind("sign-initials", "b\tO:10\n", "sign_dash", names, sizeof names / sizeof names[0], none,
                    sizeof none / sizeof none[0], -1);
}

static void test_called_for(void) {
    static const char *const names[][2] = {
        {"NPN 7a-7p\npt calling for \"bunny\" (wife)", "bunny"},
        {"NPN 7a-7p\nfriend \"moose\" brought glasses", "moose"},
    };
    static const char *const none[][2] = {
        {"NPN 7a-7p\nasking for \"water\"", "water"}, {"NPN 7a-7p\ncalling for \"help\"", "help"},
    };
    check_slot_kind("called-for", "b\tO:10\n", "call_for", names, sizeof names / sizeof names[0], none,
                    sizeof none / sizeof none[0], -1);
}

static void test_staff_verbs(void) {
    static const char *const names[][2] = {
        {"NPN 7a-7p\ncase mgr honora following.", "honora"},
        {"NPN 7a-7p\ncrisis worker tenzin says bed likely", "tenzin"},
    };
    static const char *const none[][2] = {
        {"NPN 7a-7p\nrn eval says", "eval"}, {"NPN 7a-7p\nOT eval consulted", "eval"},
    };
    check_slot_kind("staff-verb", "b\tO:10\n", "staff_verb", names, sizeof names / sizeof names[0], none,
                    sizeof none / sizeof none[0], -1);
}

/* Round 51 candidates P2 and M2 (slots.tsv patient_verb, medical_given): the patient's name after "pt" with
 * evidence after it, and a listed given name the medical word list holds after a care role. Clinical and
 * common words after "pt", a word out of the list and a charting verb after a role are none. A hand-written
 * model takes nothing; without the kind's phrases nothing is taken. */
static void test_patient_names(void) {
    static const char *const names[][2] = {
        {"NPN 7a-7p\npt nnamdi has flat affect", "nnamdi"},
        {"NPN 7a-7p\npt wojciech (goes by woj) extubated", "wojciech"},
        {"NPN 7a-7p\npt folau admitted 11-29 for gi bleed", "folau"},
    };
    static const char *const none[][2] = {
        {"NPN 7a-7p\npt afebrile, resting", "afebrile"}, {"NPN 7a-7p\npt nauseous has emesis", "nauseous"},
        {"NPN 7a-7p\npt tolerating diet", "tolerating"},
    };
    check_slot_kind("patient-name", "b\tO:10\n", "patient_verb", names, sizeof names / sizeof names[0], none,
                    sizeof none / sizeof none[0], -1);
}

static void test_medical_given(void) {
    static const char *const names[][2] = {
        {"NPN 7a-7p\nwound rn delphine: 4x3 cm stage 3", "delphine"},
        {"NPN 7a-7p\nsw delphine working on placement", "delphine"},
    };
    static const char *const none[][2] = {
        {"NPN 7a-7p\nrn hilar opacity,", "hilar"}, {"NPN 7a-7p\nmd aware", "aware"},
    };
    check_slot_kind("medical-given", "b\tO:10\n", "medical_given", names, sizeof names / sizeof names[0], none,
                    sizeof none / sizeof none[0], -1);
}

/* A kind that un-labels what the model took (round 54): each text of `dropped` gives a date over its
 * needle without the kind and none with it; each text of `kept` gives a date over its needle either
 * way. */
static void check_slot_drop(const char *tag, const char *model, const char *kind, const char *const (*dropped)[2],
                            size_t n_dropped, const char *const (*kept)[2], size_t n_kept) {
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/test-%s-%d", check_tmpdir(), tag, (int)getpid());
    for (int on = 0; on < 2; on++) {
        deid_text_rules *r = rules_without_slot_kind(dir, model, on ? NULL : kind);
        REQUIRE(r != NULL);
        for (size_t k = 0; k < n_dropped; k++) {
            int ty = span_type(r, dropped[k][0], dropped[k][1]);
            if (ty != (on ? -1 : DEID_DATE)) fprintf(stderr, "  %s %d: \"%s\" gives type %d\n", kind, on, dropped[k][0], ty);
            CHECK_EQ_INT(ty, on ? -1 : DEID_DATE);
        }
        for (size_t k = 0; k < n_kept; k++) {
            int ty = span_type(r, kept[k][0], kept[k][1]);
            if (ty != DEID_DATE) fprintf(stderr, "  %s %d: \"%s\" gives type %d\n", kind, on, kept[k][0], ty);
            CHECK_EQ_INT(ty, DEID_DATE);
        }
        deid_rules_free(r);
    }
}

/* Round 54 candidate C (slots.tsv clock_word): a four-digit clock time the model took alone for a
 * date, right after a time word, is none; a clock time beside a date, a month/year and a number that
 * is no clock time stay dates. The hand-written model takes every pattern date. */
static void test_clock_times(void) {
    static const char *const clocks[][2] = {
        {"2 wet diapers since 1900, 1 loose stool.", "1900"},
        {"Son will call around 2100 tonight.", "2100"},
    };
    static const char *const dates[][2] = {
        {"Drip on since 12/4 1900 per order.", "12/4"}, {"Smoker since 2/2019, quit.", "2/2019"},
    };
    check_slot_drop("clock", "b\tO:10\ns0=9\tO:-7 DATE:20\n", "clock_word", clocks, sizeof clocks / sizeof clocks[0],
                    dates, sizeof dates / sizeof dates[0]);
}

/* Round 54 candidate O (slots.tsv ob_exam): Apgar scores and a cervical exam's figures joined by "/"
 * after the exam's name are no date; a date later on the line stays one. */
static void test_ob_exam(void) {
    static const char *const exams[][2] = {
        {"Baby girl, apgars 8/9 at delivery.", "8/9"},
        {"SVE 4/80/-1 per cnm at 0300.", "4/80"},
    };
    static const char *const dates[][2] = {{"Apgars 8/9 on 12/6 per chart.", "12/6"}};
    check_slot_drop("ob", "b\tO:10\ns0=9\tO:-7 DATE:20\n", "ob_exam", exams, sizeof exams / sizeof exams[0], dates,
                    sizeof dates / sizeof dates[0]);
}

/* Round 55 candidate K (slots.tsv facility_cue): a keep-list abbreviation of four letters or fewer that
 * the model typed an organisation is a facility only after a facility cue; elsewhere the keep filter
 * tests it as any keep-list word. A hand-written model types "sah" (clinical_keep.txt: subarachnoid
 * haemorrhage, and a hospital's initials) an organisation on weak evidence. */
static void test_facility_cue(void) {
    static const char *const model = "b\tO:10\nw0=sah\tO:-7 ORGANIZATION:3.5\n";
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/test-facility-cue-%d", check_tmpdir(), (int)getpid());
    for (int on = 0; on < 2; on++) {
        deid_text_rules *r = rules_without_slot_kind(dir, model, on ? NULL : "facility_cue");
        REQUIRE(r != NULL);
        int ty = span_type(r, "CT head showed SAH, neuro checks q1h.", "SAH");
        if (ty != (on ? -1 : DEID_ORGANIZATION)) fprintf(stderr, "  facility_cue %d: showed SAH gives type %d\n", on, ty);
        CHECK_EQ_INT(ty, on ? -1 : DEID_ORGANIZATION);
        ty = span_type(r, "Pt transferred from SAH last night.", "SAH");
        if (ty != DEID_ORGANIZATION) fprintf(stderr, "  facility_cue %d: from SAH gives type %d\n", on, ty);
        CHECK_EQ_INT(ty, DEID_ORGANIZATION);
        deid_rules_free(r);
    }
}

/* The switches of candidates that were not adopted (rounds 14, 16, 24 and 25) are gone from the
 * code: a model file that sets one is refused with its file, line and name, not read as if the
 * switch were off; a feature-less "@" line is refused the same way, and a model without them loads. */
static void test_retired_switches(void) {
    static const char *const gone[] = {"@one_case_pair_gate\t1\n", "@catalogue_prep\t1\n", "@line_open\t1\n",
                                       "@line_shorthand\t2\n", "@no_such_switch\t0\n"};
    char rules[4200], mp[4300];
    deid_text_rules *r = rules_and_model_path(rules, sizeof rules, mp, sizeof mp, "gone");
    REQUIRE(r != NULL);
    for (size_t k = 0; k < sizeof gone / sizeof gone[0]; k++) {
        CHECK(hand_model(mp, gone[k], "b\tO:10\n") == NULL);
        deid_model *m = NULL;
        cf_err err = {0};
        CHECK_EQ_INT(deid_model_load(&m, mp, &err), CF_EINPUT);
        CHECK(m == NULL);
        char want[64];
        snprintf(want, sizeof want, ":3: unknown model switch %.*s", (int)strcspn(gone[k], "\t"), gone[k]);
        CHECK(strstr(err.msg, want) != NULL);
    }
    deid_model *m = hand_model(mp, "@nursing_shorthand\t3\n", "b\tO:10\n");
    CHECK(m != NULL && m->nursing_shorthand == 3);
    deid_model_free(m);
    remove(mp);
    deid_rules_free(r);
}

int main(void) {
    RUN(test_forward_backward);
    RUN(test_feature_hash_parts);
    RUN(test_gradient);
    RUN(test_kind_cache_models);
    RUN(test_model_file);
    RUN(test_generator);
    RUN(test_writers_and_training);
    RUN(test_less_evidence_thresholds);
    RUN(test_one_case_generation);
    RUN(test_coordinated_names);
    RUN(test_one_case_features);
    RUN(test_title_lines);
    RUN(test_short_line_kinds);
    RUN(test_lines_break_rule);
    RUN(test_coded_paragraphs);
    RUN(test_list_note_features);
    RUN(test_list_catalogue_test);
    RUN(test_amp_firm_span);
    RUN(test_one_case_fields);
    RUN(test_keep_unnamed);
    RUN(test_one_case_cue);
    RUN(test_field_dates);
    RUN(test_nursing_shorthand);
    RUN(test_name_lines);
    RUN(test_contrast_lines);
    RUN(test_contrast_names);
    RUN(test_contrast_mixed_thin);
    RUN(test_retired_switches);
    RUN(test_ward_side);
    RUN(test_person_after);
    RUN(test_honorific_names);
    RUN(test_participle_dates);
    RUN(test_word_names);
    RUN(test_ward_brackets);
    RUN(test_id_codes);
    RUN(test_pager_numbers);
    RUN(test_handoff_names);
    RUN(test_nicknames);
    RUN(test_org_after_cue);
    RUN(test_ward_after_cue);
    RUN(test_sp_dates);
    RUN(test_staff_names);
    RUN(test_word_names_more);
    RUN(test_ward_room);
    RUN(test_sign_initials);
    RUN(test_called_for);
    RUN(test_staff_verbs);
    RUN(test_patient_names);
    RUN(test_medical_given);
    RUN(test_clock_times);
    RUN(test_ob_exam);
    RUN(test_facility_cue);
    RUN(test_threshold_dense);
    RUN(test_dense_model);
    RUN(test_keep_extra);
    RUN(test_age_apposition);
    RUN(test_event_dates);
    RUN(test_calibration_rule);
    return check_summary();
}
