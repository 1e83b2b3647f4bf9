/* Internal to the text de-identifier's finder: the token and context structures shared by
 * find.c (tokens, word classes, patterns, the rule detectors), features.c (the model's features)
 * and decode.c (the fitted model's decision and the rules after it). Not a public interface. */
#ifndef CLINFM_DEID_FIND_INT_H
#define CLINFM_DEID_FIND_INT_H

#include <stdlib.h>
#include <string.h>

#include "deid/deid_int.h"

enum { SH_LOWER = 1, SH_CAP, SH_UPPER, SH_INITIAL, SH_NUM, SH_ALNUM, SH_NOCASE };

/* Classes of a word inside a capitalised run: C_E a common English, clinical or stop word;
 * C_S a listed name that is nothing else ("strong"); C_O in no list at all (out of vocabulary);
 * C_W a listed name that is also a common word ("weak": Reed, Grace); C_P a place; C_R a
 * country or state; C_I an initial; C_K a word the record knows; C_PART a particle (van, de). */
enum { C_E = 0, C_S, C_O, C_W, C_P, C_R, C_I, C_K, C_PART };

typedef struct {
    size_t s, e;
    deid_flags f;       /* word classes */
    deid_flags cue_end; /* classes of any list phrase that ends at this word (and its own) */
    deid_flags start;   /* classes of any list phrase that starts at this word (and its own) */
    int place_end;  /* last word of a place/region phrase starting here, or -1 */
    int org_end;    /* last word of an organisation suffix phrase starting here, or -1 */
    int orgname_end; /* last word of a known organisation name starting here, or -1 */
    int after_end;  /* last word of a name_after phrase starting here, or -1 */
    uint8_t shape;
    uint8_t sent;   /* first word of a sentence or line */
    uint8_t cov;    /* already inside a span */
    int8_t covtype; /* type of the span that covers it */
    uint8_t oov;    /* letters only, in no list */
    int8_t known;   /* known-name type, or -1 */
    int8_t lab;     /* assigned type, or -1 */
    uint8_t cls;
    uint8_t nletters;
    uint8_t clin_shape; /* unlisted, but shaped like clinical vocabulary (med_prefix/suffix) */
    uint8_t shape0;     /* shape as written (truecase() may change shape) */
    uint8_t sfx;        /* one-case note: 1 + the type of a facility or street name of common words
                           before a suffix after a place cue (find.c, mark_suffix_names), or 0 */
    uint8_t keep_extra; /* round 34: the word (its possessive stem, a hyphenated word's first part)
                           is an entry of clinical_keep_extra.txt (find.c, word_flags). Read only by
                           the keep filter after the model (decode.c, keep_filter); no list flag,
                           feature, density class or marginal reads it */
} tok;

/* Spans found by the evidence layers; tag[k] says which layer found span k (DEID_SRC_* << 16 |
 * the pattern's index for patterns), set from cur_tag when the span is added. */
typedef struct {
    deid_span *v;
    uint32_t *tag;
    size_t n, cap;
    uint32_t cur_tag;
    int oom;
} spanvec;
enum { DEID_SRC_PATTERN = 1, DEID_SRC_KNOWN = 2, DEID_SRC_RULE = 3 };

static inline void sv_add(spanvec *sv, size_t s, size_t e, int type) {
    if (e <= s || sv->oom) return;
    if (sv->n == sv->cap) {
        size_t nc = sv->cap ? sv->cap * 2 : 64;
        deid_span *nv = cf_realloc_array(sv->v, nc, sizeof *nv);
        if (!nv) {
            sv->oom = 1;
            return;
        }
        sv->v = nv;
        uint32_t *nt = cf_realloc_array(sv->tag, nc, sizeof *nt);
        if (!nt) {
            sv->oom = 1;
            return;
        }
        sv->tag = nt;
        sv->cap = nc;
    }
    sv->v[sv->n].start = s;
    sv->v[sv->n].end = e;
    sv->v[sv->n].type = type;
    sv->tag[sv->n] = sv->cur_tag;
    sv->n++;
}

typedef struct {
    const deid_text_rules *r;
    const deid_known *k;
    const char *text;
    size_t len;
    tok *t;
    size_t nt;
    spanvec spans;
    int lower_doc; /* written all in lower case (see truecase()): names are lower case too */
    int upper_doc; /* written all in upper case */
    /* the model that decodes this note: r->model, or r->model_dense for a note of keep density
       class '3' (deid__choose_model, after the evidence); every use of the model reads this */
    struct deid_model *m;
} ctx;


/* find.c: the evidence layers. Tokenizes c->text and runs the word lists, the patterns, the
 * record's known strings and the rule detectors; every span they find is in c->spans with its
 * source tag, and each token's rule label is in tok.lab. */
int deid__evidence(ctx *c, cf_err *err);
/* Frees what deid__evidence allocated in c (its tokens and spans). */
/* The first word of c ending after text offset off (c->nt when none): words are in text order, so
 * a binary search; the callers walk on from it while words start before a span's end. */
static inline size_t deid__first_word_ending_after(const ctx *c, size_t off) {
    size_t lo = 0, hi = c->nt;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (c->t[mid].e <= off) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

/* How dense the clinical keep-list is in the note: '0' no word of two letters or more, '1' fewer
 * than one keep-list word (F_KEEP) in twenty of them, '2' fewer than one in seven, '3' at least one
 * in seven (nursing shorthand). The note feature kd= of features.c and round 30's
 * @threshold_dense of decode.c read this one class. */
static inline char deid__keep_density(const ctx *c) {
    size_t nkeep = 0, nwords = 0;
    for (size_t i = 0; i < c->nt; i++) {
        if (c->t[i].nletters >= 2) nwords++;
        if (c->t[i].f & F_KEEP) nkeep++;
    }
    return nwords == 0 ? '0' : nkeep * 20 < nwords ? '1' : nkeep * 7 < nwords ? '2' : '3';
}

/* Round 31: after the evidence (the tokens and their keep-list flags), the model that decodes the
 * note: the rules folder's model_dense.tsv when it has one and the note is of keep density class
 * '3', else model.tsv. Returns 1 when the dense model was chosen. */
static inline int deid__choose_model(ctx *c) {
    c->m = c->r->model;
    if (c->r->model && c->r->model_dense && deid__keep_density(c) == '3') {
        c->m = c->r->model_dense;
        return 1;
    }
    return 0;
}

/* The first word of c starting at or after text offset off (c->nt when none). */
static inline size_t deid__first_word_starting_from(const ctx *c, size_t off) {
    size_t lo = 0, hi = c->nt;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (c->t[mid].s < off) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

/* A context over one note, before any evidence. */
static inline void deid__ctx_init(ctx *c, const deid_text_rules *r, const deid_known *known, const char *text, size_t len) {
    memset(c, 0, sizeof *c);
    c->r = r;
    c->m = r->model;
    c->k = known;
    c->text = text;
    c->len = len;
}

static inline void deid__ctx_free(ctx *c) {
    free(c->spans.v);
    free(c->spans.tag);
    free(c->t);
}
size_t deid__merge(deid_span *v, size_t n);
/* gap summary between word i-1 and word i (find.c) */
typedef struct {
    int nl, comma, period, colon, other, amp, len, space_only, sentence;
} gapinfo;
gapinfo deid__gap_info(const ctx *c, size_t i);
/* Words j-1 and j on one line, close together (no line break, at most three characters, no
 * sentence end between them). */
int deid__close_on_line(const ctx *c, size_t j);
/* Phrase lists of the rules folder (keep_roles.txt, keep_name_verbs.txt, slots.tsv) read over the
 * words of a note: whether words [a, b] of one line spell an entry of m; the first word of the
 * longest entry (of at most maxw words) ending at word j, or -1; the number of words of the
 * longest one starting at word j, or 0; a keep_name_verbs.txt entry starting at word j. */
int deid__phrase_is(const ctx *c, const strmap *m, size_t a, size_t b);
long deid__phrase_ending_at(const ctx *c, const strmap *m, int maxw, size_t j);
int deid__phrase_starting_at(const ctx *c, const strmap *m, int maxw, size_t j);
int deid__verb_starting_at(const ctx *c, size_t j);
/* fields.c: 1 when the note is a list of short structured fields (one label or title a line), with
 * field[i] set for the words on its field-shaped lines (field may be NULL; else c->nt bytes). */
/* catalogue: the note is written in one case and is a catalogue by features.c's test (no narrative
 * line), in a model with @one_case_fields (round 19): its lines are judged as a mixed-case list's. */
int deid__field_lines(const ctx *c, uint8_t *field, int catalogue);
/* fields.c: 1 when word q is a company-form word ("AB", "AG", "Co") right after a clinical word on
 * its line: "IgE Ab" is an antibody, "HBs Ag" an antigen, no company. */
int deid__field_clinical_suffix(const ctx *c, size_t q);
/* fields.c: marks in keep (c->nt bytes) the words labelled a name, place or organisation (lab:
 * DEID_* or -1) that are a label of the note's layout: 1 a heading's word before its colon
 * ("RADIOLOGIST:"), 2 a clinical service after a clinician's name and a comma ("Quill, ORTHO");
 * evd[q] holds the sources of the evidence covering word q. */
void deid__layout_labels(const ctx *c, const int8_t *lab, const uint8_t *evd, uint8_t *keep);

#endif
