/* The text type of a note for the de-identifier: whether a text is a list of short structured
 * fields (lab and item labels, drug and device names, code titles: one field a line) rather than
 * a note of running text. A field list has no person names in running text: a title-cased word
 * in it is a title's word, an eponym or a brand ("Halvorsen splint", "Prentiss collar",
 * "[Brandname]"; examples written for clinfm), not a name, unless the field itself says so (a
 * title or kin word before it, MD after it, or a line that holds a name and nothing else). decode.c keeps the model's name, place and
 * organisation labels on such lines unless the line gives such a cue (field_filter there); this
 * file only decides which lines are fields. The shapes were chosen on the negative material's
 * development halves (bench/deid_negative.py) and checked against every note corpus
 * (docs/DEID.md, Round 9). */
#include "deid/find_int.h"

/* a contact card (name, street, town) has three lines; a list of titles, many */
enum { FIELD_MAX_WORDS = 60, FIELD_MIN_LINES = 4, FIELD_ONE_CASE_WORDS = 6 };
#define KEEP_NAME_FLAGS (F_FIRST | F_LAST | F_PLACE | F_REGION)

static int is_up(char ch) { return ch >= 'A' && ch <= 'Z'; }
static int is_low(char ch) { return ch >= 'a' && ch <= 'z'; }
static int is_dig(char ch) { return ch >= '0' && ch <= '9'; }

/* "i.u." or "e.g.": the line's final period closes a dotted abbreviation, not a sentence */
static int dotted_end(const char *t, size_t ls, size_t le) {
    /* le is one past the final '.' */
    if (le < ls + 4) return 0;
    return (is_low(t[le - 2]) || is_up(t[le - 2])) && t[le - 3] == '.' && (is_low(t[le - 4]) || is_up(t[le - 4]));
}

/* One line [ls, le) holding nw words is shaped as a field: short, no sentence inside it or at its
 * end, no "Heading:" label. */
static int field_shaped(const char *t, size_t ls, size_t le, size_t nw) {
    if (nw == 0 || nw > FIELD_MAX_WORDS) return 0;
    while (le > ls && (t[le - 1] == ' ' || t[le - 1] == '\t' || t[le - 1] == '\r')) le--;
    if (le == ls) return 0;
    char last = t[le - 1];
    /* (a final question mark is a survey item's title: "Do you smoke? [instrument]" ends with the
       bracket, a question as a title ends with the mark) */
    if ((last == '.' && !dotted_end(t, ls, le)) || last == '!' || last == ':') return 0;
    for (size_t k = ls; k + 1 < le; k++) {
        char ch = t[k];
        char prev = k > ls ? t[k - 1] : ' ';
        /* a heading or label ("Plan:", "Pt:", "Dr.:"); "10:30" and "1:40" are numbers */
        if (ch == ':' && (is_low(prev) || is_up(prev) || prev == ')') &&
            (t[k + 1] == ' ' || t[k + 1] == '\t'))
            return 0;
        /* a sentence ends inside the line ("... stable. Pt ...", "Dr. Quill") */
        if ((ch == '.' || ch == '!' || ch == '?') && (is_low(prev) || is_up(prev) || is_dig(prev) || prev == ')')) {
            size_t q = k + 1;
            if (q < le && t[q] != ' ' && t[q] != '\t') continue;
            while (q < le && (t[q] == ' ' || t[q] == '\t')) q++;
            if (q < le && is_up(t[q])) return 0;
        }
    }
    return 1;
}

/* A company-form word (cues.tsv org_after of at most three letters: "AB", "AG", "SA", "Co") right
 * after a clinical word that is no common English word ("IgE Ab", "HBs Ag", "IgG Ab"), a space
 * between on one line: the abbreviation of an antibody or antigen, not a company's legal form, so on
 * a field list's line it is no organisation cue. ("Nordic Ab", "Acme Co" keep it: their first word
 * is no clinical word.) */
int deid__field_clinical_suffix(const ctx *c, size_t q) {
    if (q == 0 || q >= c->nt) return 0;
    const tok *w = &c->t[q], *p = &c->t[q - 1];
    if (!((w->f | w->start) & F_ORG_AFTER) || w->nletters > 3 || w->nletters != w->e - w->s) return 0;
    if (!deid__gap_info(c, q).space_only) return 0;
    if (!(((p->f & (F_MEDICAL | F_KEEP)) && !(p->f & (F_ENGLISH | F_STOP))) || p->clin_shape)) return 0;
    /* a clinical word that is also a listed name counts only written as no name is: a capital
       after a small letter ("IgE", "HBsAg"; "Ige" is a given name too) */
    if (!(p->f & (F_FIRST | F_LAST | F_PLACE | F_REGION | F_ORGNAME))) return 1;
    for (size_t k = p->s + 1; k < p->e; k++)
        if (is_up(c->text[k]) && is_low(c->text[k - 1])) return 1;
    return 0;
}

/* Marks in field[i] the words of c that stand on a field-shaped line of a field list, and returns
 * 1 when the note is one. A field list is a note of at least four non-empty lines, four in five of
 * its lines shaped as fields, and nine in ten opening with a capital, a digit, a bracket or a
 * clinical word: a wrapped note's lines open mid-sentence ("off O2 and tried..."). In a one-case
 * note a line's first letter says nothing (and a wrapped nursing note of short lines could pass):
 * there every line must be shaped as a field of at most six words, and nine in ten must open with
 * a clinical word that is no common English word and no listed name (round 10: a list of
 * ingredient names, "alteplase", "ferrous sulfate").
 * A list holding a contact identifier or address (phone, e-mail, URL, ZIP, street...) or a string
 * the record knows is no field list. A line is shaped as a field when it holds at most 60 words, no
 * sentence ends inside it or at its end, and no "Heading:" opens a value in it. field may be NULL.
 * Round 19 (catalogue, @one_case_fields): a one-case note that features.c's test found to be a catalogue (no
 * line reads as narrative: no kinship word, pronoun, auxiliary, charting verb or clock time, which
 * a nursing note's short lines hold) is no wrapped nursing note, so its lines may be long and open
 * with common words ("home infusion ...", item titles of a code list); every line must still be
 * field-shaped, and nine in ten must open with a word that is not only a listed name or place. */
int deid__field_lines(const ctx *c, uint8_t *field, int catalogue) {
    if (field) memset(field, 0, c->nt ? c->nt : 1);
    if (c->nt == 0) return 0;
    /* in one case a line's first letter says nothing, so a one-case list must be a list of terms:
       every line short (a drug or ingredient name, "ferrous sulfate"), none a sentence, and nine
       in ten opening with a clinical word that is no common English word (a nursing note's short
       lines open with "pt", "neuro:", "son", and run longer) */
    int one_case = c->lower_doc || c->upper_doc;
    int strict = one_case && !catalogue; /* round 10's one-case shape */
    /* a list holding a contact identifier (a phone, an e-mail, a URL, a ZIP code, a street address,
       an SSN or MRN) or a string the record knows is a contact card or a letter's head, whose
       names are names (three- to five-line address blocks of the presidio set are such lists). A
       date or id pattern does not count: they match codes and titles too ("CD20", "NDA020800"),
       and only keep their own words (field_shaped_cue in decode.c) */
    for (size_t k = 0; k < c->spans.n; k++) {
        unsigned src = c->spans.tag[k] >> 16;
        int ty = c->spans.v[k].type;
        if (src == DEID_SRC_KNOWN || (src == DEID_SRC_PATTERN && ty != DEID_DATE && ty != DEID_ID)) return 0;
    }
    const char *t = c->text;
    size_t lines = 0, shaped = 0, opens = 0;
    size_t w = 0;
    for (size_t ls = 0; ls < c->len;) {
        size_t le = ls;
        while (le < c->len && t[le] != '\n') le++;
        size_t w0 = w;
        while (w < c->nt && c->t[w].s < le) w++;
        size_t nw = w - w0;
        if (nw) {
            lines++;
            shaped += (size_t)(field_shaped(t, ls, le, nw) && (!strict || nw <= FIELD_ONE_CASE_WORDS));
            size_t k = ls;
            while (k < le && (t[k] == ' ' || t[k] == '\t')) k++;
            /* a capital, a digit, a bracket, or a clinical word: listed and no common English word
               ("alteplase", "heparin": drug names are written in lower case), shaped like one (an
               unlisted word with a drug or clinical prefix or suffix), or on the ICU keep-list even
               where it is a common word ("ferrous sulfate"); in one case only a clinical word
               counts, and it must be no listed name */
            const tok *f0 = &c->t[w0];
            int clin = f0->s == k && !(f0->f & F_STOP) &&
                       (f0->clin_shape || (f0->f & F_KEEP) || ((f0->f & F_MEDICAL) && !(f0->f & F_ENGLISH)));
            if (strict) /* a medical word that is also a common one counts ("potassium", "calcium") */
                opens += f0->s == k && !(f0->f & (F_STOP | KEEP_NAME_FLAGS)) &&
                         (f0->clin_shape || (f0->f & (F_KEEP | F_MEDICAL)));
            else if (one_case) /* a catalogue: any word but a name or place alone ("anderson") */
                opens += k < le && (is_dig(t[k]) || t[k] == '[' || t[k] == '(' || t[k] == '{' ||
                                    (f0->s == k && (!(f0->f & KEEP_NAME_FLAGS) ||
                                                    (f0->f & (F_ENGLISH | F_MEDICAL | F_KEEP)))));
            else
                opens += k < le && (is_up(t[k]) || is_dig(t[k]) || t[k] == '[' || t[k] == '(' || t[k] == '{' || clin);
        }
        ls = le + 1;
    }
    if (lines < FIELD_MIN_LINES || shaped * 5 < lines * 4 || opens * 10 < lines * 9) return 0;
    if (one_case && shaped < lines) return 0;
    if (!field) return 1;
    w = 0;
    for (size_t ls = 0; ls < c->len;) {
        size_t le = ls;
        while (le < c->len && t[le] != '\n') le++;
        size_t w0 = w;
        while (w < c->nt && c->t[w].s < le) w++;
        if (w > w0 && field_shaped(t, ls, le, w - w0) && (!strict || w - w0 <= FIELD_ONE_CASE_WORDS))
            for (size_t q = w0; q < w; q++) field[q] = 1;
        ls = le + 1;
    }
    return 1;
}

/* A word that may label a field or name a service: common English or clinical vocabulary, and no
 * listed name or place, nor a string the record knows. */
static int label_word(const tok *t) {
    return t->known < 0 && t->nletters >= 2 && !(t->f & KEEP_NAME_FLAGS) &&
           ((t->f & (F_ENGLISH | F_MEDICAL | F_KEEP)) || t->clin_shape);
}

static int name_label(int y) { return y == DEID_NAME || y == DEID_LOCATION || y == DEID_ORGANIZATION; }

static int num_at(const ctx *c, size_t q) { return q < c->nt && c->t[q].shape0 == SH_NUM; }
/* exactly one character ch between words j-1 and j */
static int joined_by(const ctx *c, size_t j, char ch) {
    return j > 0 && j < c->nt && c->t[j].s == c->t[j - 1].e + 1 && c->text[c->t[j - 1].e] == ch;
}
/* The value of number word q when it has at most two digits, else -1. */
static long small_value(const ctx *c, size_t q) {
    const tok *t = &c->t[q];
    return t->e - t->s > 2 ? -1 : deid__digits_value(c->text + t->s, t->e - t->s);
}

/* Words q, q+1 are "N/M", N <= M <= 4, right after a month/day ("3/2") and a space, with a
 * clinical word after them ("GPC", "GNR"): how many of a culture's bottles grew, not a date. A
 * fraction with no date before it ("BCx 3/4 GPC") stays a date. */
static int bottle_count(const ctx *c, size_t q) {
    if (!num_at(c, q) || !num_at(c, q + 1) || !joined_by(c, q + 1, '/')) return 0;
    if (!num_at(c, q - 1) || !num_at(c, q - 2) || !joined_by(c, q - 1, '/') || joined_by(c, q - 2, '/')) return 0;
    if (!deid__gap_info(c, q).space_only || !deid__gap_info(c, q + 2).space_only) return 0;
    if (q + 3 < c->nt && joined_by(c, q + 2, '/')) return 0;
    long n = small_value(c, q), m = small_value(c, q + 1);
    if (n < 0 || m < 1 || n > m || m > 4) return 0;
    const tok *w = &c->t[q + 2];
    return w->known < 0 && !(w->f & (F_STOP | KEEP_NAME_FLAGS)) &&
           ((w->f & F_KEEP) || ((w->f & F_MEDICAL) && !(w->f & F_ENGLISH)));
}

/* Round 10: places of a note where a word the model took for a name, place or organisation is
 * a label of the note's own layout (docs/DEID.md, Round 10):
 *  - a heading: one to three words opening a line, the last one just before a colon, each a common
 *    or clinical word that is no listed name ("RADIOLOGIST: Opal Quill", "DX: sepsis"); what
 *    follows the colon is weighed as before (a speaker label, "Grace:", is a listed name);
 *    (and a space or the line's end after the colon: "CS:ab" is a transcriptionist's initials);
 *  - a service after a clinician's name: a clinical word of four letters or more (five for an
 *    organisation label: "Nozipho, DCH" is mostly a facility) that is no common English word and
 *    no listed name, after a comma that follows a word labelled a name, and closing its line or
 *    followed by a comma ("Dr. Quill, ORTHO, Kessler 7").
 * and in a date's place, a count of culture bottles ("BCx 3/2 2/2 GPC": bottle_count).
 * Sets keep[q] to 1 (heading), 2 (service) or 3 (count) for such labelled words; keep has c->nt
 * bytes. */
void deid__layout_labels(const ctx *c, const int8_t *lab, const uint8_t *evd, uint8_t *keep) {
    size_t T = c->nt;
    memset(keep, 0, T ? T : 1);
    int labelled = 0; /* most notes have no name or date label left: nothing to do */
    for (size_t q = 0; q < T && !labelled; q++) labelled = lab[q] >= 0 && (name_label(lab[q]) || lab[q] == DEID_DATE);
    if (!labelled) return;
    for (size_t q = 0; q < T; q++) {
        if (evd[q] & (1u << DEID_SRC_KNOWN)) continue;
        /* a heading: q opens a line, and a colon follows one of q..q+2 (one of them labelled) */
        int near = 0;
        for (size_t z = q; z < T && z < q + 3; z++) near |= lab[z] >= 0 && name_label(lab[z]);
        if (near && (q == 0 || deid__gap_info(c, q).nl)) {
            size_t e = q;
            int found = 0, any = 0;
            for (; e < T && e < q + 3; e++) {
                if (e > q && !deid__gap_info(c, e).space_only) break;
                if (!label_word(&c->t[e]) || (evd[e] & (1u << DEID_SRC_KNOWN))) break;
                any |= lab[e] >= 0 && name_label(lab[e]);
                /* the colon ends the heading: a space or the line's end after it ("SW:W.H.",
                   "CS:ab" are a transcriptionist's initials) */
                size_t k = c->t[e].e;
                if (k < c->len && c->text[k] == ':') {
                    found = k + 1 >= c->len || c->text[k + 1] == ' ' || c->text[k + 1] == '\t' ||
                            c->text[k + 1] == '\n' || c->text[k + 1] == '\r';
                    break;
                }
            }
            if (found && any)
                for (size_t z = q; z <= e; z++)
                    if (lab[z] >= 0 && name_label(lab[z])) keep[z] = 1;
        }
        /* a service after a clinician's name */
        if (q > 0 && lab[q] >= 0 && name_label(lab[q]) && lab[q - 1] == DEID_NAME) {
            gapinfo g = deid__gap_info(c, q);
            const tok *t = &c->t[q];
            if (g.nl || g.comma != 1 || g.other || g.period || g.colon) continue;
            if (!label_word(t) || (t->f & (F_ENGLISH | F_STOP)) || !(t->f & (F_MEDICAL | F_KEEP))) continue;
            /* a short abbreviation after a name is mostly a facility ("NP Nozipho, DCH") */
            if (t->nletters < 4 || (lab[q] == DEID_ORGANIZATION && t->nletters < 5)) continue;
            if (q + 1 < T) {
                gapinfo h = deid__gap_info(c, q + 1);
                if (!h.nl && !h.comma) continue;
            }
            keep[q] = 2;
        }
        /* a count of culture bottles after the culture's date: "BCx 3/2 2/2 GPC" */
        if (q >= 2 && q + 2 < T && lab[q] == DEID_DATE && lab[q + 1] == DEID_DATE && bottle_count(c, q)) keep[q] = keep[q + 1] = 3;
    }
}
