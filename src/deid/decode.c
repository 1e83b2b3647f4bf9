/* deid_find(): runs the evidence layers of find.c on a note, asks the fitted model (features.c,
 * model.c) for each word's label probabilities, and turns them into spans: a word is PHI when its
 * P(O) is under the model's threshold; then the rules that act after the model (the clinical keep
 * filter, the slots a line's structure gives (slots.c), the field, score and value filters, the one-case
 * name and address rules, the nursing-shorthand filters), each behind the model file's switch
 * where it has one; deid_find_explain() says why each span was taken.
 *
 * Spans: consecutive words with the same PHI label form a run; the run's span is the union of
 * the evidence spans of its type that overlap it (so a date glued to a word, "CXR3/4", gives
 * "3/4"), plus its words no such span covers. The record's known strings are always taken. */
#include "deid/decode_int.h"
#include <ctype.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include "util/atomic_file.h"

/* ---- the nursing-shorthand filters (rounds 22-23) ------------------------------------------ */

/* Word q shares a line with word q - 1: no newline in the gap before it, as every other rule
 * reads a line (a '\r' is a space, so "\r\n" is one break and a lone '\r' none). */
static int same_line_as_previous(const ctx *c, size_t q) { return !deid__gap_info(c, q).nl; }

/* A second-level label of a real host name ("nhs.co.uk", "ox.ac.uk", "x.com.au"). */
static int generic_host_label(const ctx *c, size_t q) {
    static const char *const G[] = {"com", "org", "net", "edu", "gov", "co", "ac", "www"};
    for (size_t k = 0; k < sizeof G / sizeof G[0]; k++)
        if (word_is(c, q, G[k])) return 1;
    return 0;
}

/* Words a..z joined by single dots make a bare host of common words: nothing host-like around it
 * (no scheme, path, "@", port or further label), a two-letter (country) last label, and every
 * other label a number or a listed common word, none a generic second-level label. A run-on
 * sentence ("2.Pt", "well.no") reads so; a real host is rarely made of common words only. */
static int common_bare_host(const ctx *c, size_t a, size_t z) {
    if (z == a) return 0;
    char before = c->t[a].s > 0 ? c->text[c->t[a].s - 1] : ' ';
    char after = c->t[z].e < c->len ? c->text[c->t[z].e] : ' ';
    int bare = !strchr("/@:.-_", before) && !strchr("/@:-_", after) &&
               !(after == '.' && c->t[z].e + 1 < c->len && isalnum((unsigned char)c->text[c->t[z].e + 1]));
    if (!bare || c->t[z].e - c->t[z].s != 2 || c->t[z].nletters != 2) return 0;
    for (size_t q = a; q < z; q++)
        if (!(c->t[q].shape0 == SH_NUM || (c->t[q].f & (F_ENGLISH | F_MEDICAL | F_KEEP | F_STOP))) ||
            generic_host_label(c, q))
            return 0;
    return 1;
}

/* Round 23 (@nursing_shorthand 3): S1's three rules, on every label whatever its type, so on the
 * span's final type too (spans are made of labelled words only; the pattern, not the model, may
 * type a span a URL or a phone). (c') a URL span of the pattern layer that is a bare host of
 * common words: "2.Pt turned" is labelled NAME or DATE by the model and typed a URL by the
 * pattern, which N2's rule, reading the model's URL label, never saw. (d) a number glued after a
 * sign, with no letter or digit before the sign (a range "5-200" has one), no digit group after it
 * ("+1 555 0100" is a phone's start) and fewer than seven digits, is an intake or output figure
 * ("+900", "-200"), never a phone: a phone has seven digits or more. (e) "a/10" (a at most 10)
 * with "pain", "score" or "scale" among the two words before it on its line is a pain score, no
 * date ("seen 6/10" keeps its date). Level 4 also (f): a single word labelled a place or
 * organisation right after "at", "in" or "from" on its line, listed as a clinical, common or stop
 * word and in no name or place list (and lower case in a mixed-case note, where a proper name
 * would be capitalised) is running text ("at nare", "from yesterday"), no place. */
static void shorthand_filter_s(const ctx *c, int8_t *lab, int level) {
    size_t T = c->nt;
    for (size_t k = 0; k < c->spans.n; k++) {
        const deid_span *sp = &c->spans.v[k];
        if ((c->spans.tag[k] >> 16) != DEID_SRC_PATTERN || sp->type != DEID_URL) continue;
        size_t a = deid__first_word_ending_after(c, sp->start), z = a;
        if (a >= T || c->t[a].s != sp->start) continue;
        while (z + 1 < T && c->t[z].e < sp->end && c->t[z + 1].s == c->t[z].e + 1 && c->text[c->t[z].e] == '.') z++;
        if (c->t[z].e != sp->end || !common_bare_host(c, a, z)) continue;
        for (size_t q = a; q <= z; q++) lab[q] = -1;
    }
    for (size_t i = 0; i < T; i++) {
        const tok *t = &c->t[i];
        if (lab[i] < 0) continue;
        if (t->shape0 == SH_NUM && t->s > 0 && (c->text[t->s - 1] == '+' || c->text[t->s - 1] == '-') &&
            !(t->s > 1 && isalnum((unsigned char)c->text[t->s - 2])) && t->e - t->s < 7) {
            size_t e = t->e;
            int more = e + 1 < c->len && strchr(" -.()", c->text[e]) && c->text[e] &&
                       isdigit((unsigned char)c->text[e + 1]);
            if (!more) {
                lab[i] = -1;
                continue;
            }
        }
        if (t->shape0 == SH_NUM && i + 1 < T && c->t[i + 1].s == t->e + 1 && c->text[t->e] == '/' &&
            word_is(c, i + 1, "10") && t->e - t->s <= 2 && !(t->s > 0 && c->text[t->s - 1] == '/') &&
            !(c->t[i + 1].e < c->len && c->text[c->t[i + 1].e] == '/') && (lab[i] == DEID_DATE || lab[i + 1] == DEID_DATE)) {
            int v = 0;
            for (size_t q = t->s; q < t->e; q++) v = v * 10 + (c->text[q] - '0');
            int cue = 0;
            for (size_t q = i, n = 0; q > 0 && n < 2 && !cue; q--, n++) {
                if (!same_line_as_previous(c, q)) break;
                cue = word_is(c, q - 1, "pain") || word_is(c, q - 1, "score") || word_is(c, q - 1, "scale");
            }
            if (v <= 10 && cue) {
                lab[i] = lab[i + 1] = -1;
                continue;
            }
        }
        if (level >= 4 && (lab[i] == DEID_LOCATION || lab[i] == DEID_ORGANIZATION) && i > 0 &&
            same_line_as_previous(c, i) &&
            (word_is(c, i - 1, "at") || word_is(c, i - 1, "in") || word_is(c, i - 1, "from")) && lab[i - 1] < 0 &&
            !(i + 1 < T && lab[i + 1] == lab[i] && same_line_as_previous(c, i + 1)) &&
            (t->f & (F_MEDICAL | F_KEEP | F_ENGLISH | F_STOP)) &&
            !(t->f & (F_FIRST | F_LAST | F_PLACE | F_REGION | F_ORGNAME | F_PLACE_WORD)) &&
            (c->lower_doc || c->upper_doc || t->shape0 == SH_LOWER))
            lab[i] = -1;
    }
}

/* Round 22 (@nursing_shorthand): nursing shorthand the model took for PHI, dropped after it.
 * Level 1: (a) a chain of numbers joined by '/' (two slashes or more) labelled a date is a
 * ventilator setting when the word right before it on its line is a vent-mode or setting word
 * (the a_vent cues: "PS 10/5/40", "vent settings 10/5/40") or '%' closes it ("10/5/40%": an
 * oxygen fraction ends a setting, never a date); (b) a word of one or two letters glued to a '+'
 * ("K+", "Na+", "Mg++") labelled a name, place or organisation is an ion's charge, no initial.
 * Level 2 also: (c) a run labelled a URL that is a bare host (words joined by single dots, no
 * scheme, path, "@" or port) ending in a two-letter country label, all of whose other labels are
 * numbers or listed common words, is a run-on sentence ("2.Pt", "well.no"): a real host is
 * rarely made of common words only, and "www.", a scheme or a generic label ("co.uk") keeps it. */
static void shorthand_filter(const ctx *c, int8_t *lab, int level) {
    size_t T = c->nt;
    for (size_t i = 0; i < T; i++) {
        const tok *t = &c->t[i];
        if (lab[i] == DEID_DATE && t->shape0 == SH_NUM) {
            size_t a = i, z = i;
            while (a > 0 && c->t[a - 1].shape0 == SH_NUM && c->t[a].s == c->t[a - 1].e + 1 && c->text[c->t[a].s - 1] == '/') a--;
            while (z + 1 < T && c->t[z + 1].shape0 == SH_NUM && c->t[z + 1].s == c->t[z].e + 1 && c->text[c->t[z].e] == '/') z++;
            if (z - a < 2) continue;
            int vent = a > 0 && c->r->vent_cue && ((c->t[a - 1].f | c->t[a - 1].start) & c->r->vent_cue) &&
                       same_line_as_previous(c, a);
            int pct = c->t[z].e < c->len && c->text[c->t[z].e] == '%';
            if (vent || pct)
                for (size_t q = a; q <= z; q++)
                    if (lab[q] == DEID_DATE) lab[q] = -1;
            continue;
        }
        if ((lab[i] == DEID_NAME || lab[i] == DEID_LOCATION || lab[i] == DEID_ORGANIZATION) && t->e - t->s <= 2 &&
            (size_t)t->nletters == t->e - t->s && t->e < c->len && c->text[t->e] == '+' &&
            !(t->e + 1 < c->len && isalpha((unsigned char)c->text[t->e + 1]))) {
            lab[i] = -1;
            continue;
        }
        if (level == 2 && lab[i] == DEID_URL) {
            /* the host: the words around i joined by single dots, labelled or not */
            size_t a = i, z = i;
            while (a > 0 && c->t[a].s == c->t[a - 1].e + 1 && c->text[c->t[a].s - 1] == '.') a--;
            while (z + 1 < T && c->t[z + 1].s == c->t[z].e + 1 && c->text[c->t[z].e] == '.') z++;
            if (common_bare_host(c, a, z))
                for (size_t q = a; q <= z; q++)
                    if (lab[q] == DEID_URL) lab[q] = -1;
        }
    }
}

/* ---- deid_find --------------------------------------------------------------------------- */

/* The end of a date span without the clock time after it ("10/19/2019 4:29 PM", "11/19 0530",
 * "2/18/05 10:30am"): a time of day is no date element under Safe Harbor, the annotated corpora
 * leave it out, and removing it costs the note a clinical fact (when a drug was given). Only a
 * time after a space or comma is cut, and only while a date with a digit stays before it; a
 * four-digit time only when the date already has its year or the number cannot be a year
 * ("0530"), so "11/19 2005" keeps its year. */
static int is_digit_c(char ch) { return ch >= '0' && ch <= '9'; }
size_t deid__date_trim_clock(const char *t, size_t s, size_t e) {
    for (;;) {
        size_t w = e;
        while (w > s && t[w - 1] != ' ' && t[w - 1] != ',' && t[w - 1] != '\t') w--;
        if (w <= s) return e;
        const char *p = t + w;
        size_t n = e - w, k = 0, nd = 0;
        if (n > 1 && p[n - 1] == '.') n--; /* "4:29 PM." at a sentence end, "P.M." */
        int clock = 0;
        int ap0 = (p[0] | 32) == 'a' || (p[0] | 32) == 'p';
        if (n == 2 && ap0 && (p[1] | 32) == 'm') clock = 1;
        else if (n == 3 && ap0 && p[1] == '.' && (p[2] | 32) == 'm') clock = 1;
        else {
            while (k < n && is_digit_c(p[k])) k++, nd++;
            int hh = nd >= 1 && nd <= 2 ? deid__digits_value(p, nd) : -1;
            if (nd >= 1 && nd <= 2 && hh <= 23 && k < n && p[k] == ':' && k + 3 <= n && is_digit_c(p[k + 1]) &&
                is_digit_c(p[k + 2]) && p[k + 1] <= '5') {
                k += 3;
                if (k + 3 <= n && p[k] == ':' && is_digit_c(p[k + 1]) && is_digit_c(p[k + 2])) k += 3;
                clock = 1;
            } else if (nd >= 1 && nd <= 2 && hh >= 1 && hh <= 12 && k < n) {
                clock = 2; /* "3pm" */
            } else if (nd == 4 && k == n) {
                int v = deid__digits_value(p, 4);
                if (v / 100 <= 23 && v % 100 <= 59) {
                    /* a year before it (three numbers in the date, or a month name and a year)? */
                    size_t groups = 0, q = s;
                    while (q < w) {
                        if (is_digit_c(t[q])) {
                            groups++;
                            while (q < w && is_digit_c(t[q])) q++;
                        } else q++;
                    }
                    if (p[0] == '0' || groups >= 3) clock = 3;
                }
            }
            if (clock == 1 || clock == 2) {
                if (clock == 2 && !(k + 2 == n && ((p[k] | 32) == 'a' || (p[k] | 32) == 'p') && (p[k + 1] | 32) == 'm'))
                    clock = 0;
                else if (clock == 1 && k < n) {
                    if (k + 2 == n && ((p[k] | 32) == 'a' || (p[k] | 32) == 'p') && (p[k + 1] | 32) == 'm') k = n;
                    else clock = 0;
                }
            }
        }
        if (!clock) return e;
        size_t ne = w;
        while (ne > s && (t[ne - 1] == ' ' || t[ne - 1] == ',' || t[ne - 1] == '\t')) ne--;
        /* a date with a digit must stay */
        int dig = 0;
        for (size_t q = s; q < ne && !dig; q++) dig = is_digit_c(t[q]);
        if (!dig) return e;
        e = ne;
    }
}

/* ---- the clinical keep filter (round 8) ----------------------------------------------------
 * After the model has labelled the words, a word it took as a name, place or organisation is
 * kept in the text when it is clinical vocabulary and the evidence for PHI is weak: no strong
 * cue (a title or name cue before it, MD/RN or Hospital after it, a listed name that is nothing
 * else beside it, a string the record knows). Clinical vocabulary is the clinical keep-list
 * (clinical_keep.txt), the clinical and medical word lists, and clinical_keep_post.txt, which
 * only this filter reads (multi-word entries such as "kerley b", "e coli", "sex m"). A word that
 * is also in the name or place lists ("Foley", "Swan", "Senna") needs clinical context too: a
 * clinical word or a number beside it on its line. Structured notation the model took for a
 * date is kept by shape: a half before a clinical word ("1/2 NS", "1/2NS"), a decimal between a
 * clinical word and a unit or frequency ("captopril 6.25 TID"); and a bare number of three digits
 * or fewer is no name or place alone. The rules and what each was measured against:
 * docs/DEID.md, Round 8. */
enum { KEEP_NO = 0, KEEP_WORD, KEEP_POST, KEEP_RUN, KEEP_NUMBER, KEEP_FRACTION, KEEP_DECIMAL, KEEP_FIELD, KEEP_SCORE, KEEP_VALUE,
       KEEP_HEADING, KEEP_SERVICE, KEEP_COUNT, KEEP_RANGE, KEEP_EXTRA };
static const char *const KEEP_WHY[] = {"", "clinical word list entry", "clinical_keep_post.txt entry",
                                       "a word never a name alone (not_name) in a run with a kept clinical word",
                                       "a number alone is no name or place",
                                       "a fraction before a clinical word", "a decimal after a clinical word",
                                       "a field list's line with no cue or pattern for it",
                                       "a score after its scale's name (scores.txt)",
                                       "a value in a list of values that are no years",
                                       "a heading's word before its colon (fields.c)",
                                       "a clinical service after a clinician's name (fields.c)",
                                       "a count of culture bottles after the culture's date (fields.c)",
                                       "an ascending range of round numbers, no phone number",
                                       "clinical_keep_extra.txt entry"};

typedef struct {
    uint8_t why;
    int32_t lo, hi; /* words kept together */
    int32_t elo, ehi; /* words of the entry that kept them (may reach outside the run) */
} keepinfo;

/* "/" or ":" between words j-1 and j, after a dot or not ("AB/cd", "S.B./SB", "T.K.:VF") */
static int initials_gap(const ctx *c, size_t j) {
    if (j == 0 || j >= c->nt) return 0;
    size_t g0 = c->t[j - 1].e, g1 = c->t[j].s;
    if (g1 - g0 == 2 && c->text[g0] == '.') g0++;
    return g1 - g0 == 1 && (c->text[g0] == '/' || c->text[g0] == ':');
}

#define KEEP_NAMES (F_FIRST | F_LAST | F_PLACE | F_REGION)
/* above these P(PHI) the model's evidence is not weak: a list word stays removed */
#define KEEP_MAX_P 0.95f
#define KEEP_MAX_P_KEEP 0.99f /* the ICU keep-list (clinical_keep.txt) */
#define KEEP_MAX_P_NAMED 0.50f /* round 9: 0.70 until round 8 */

/* The longest clinical_keep_post.txt entry covering word i: 1 with its words in [*lo, *hi]. */
static int post_entry(const ctx *c, size_t i, size_t *lo, size_t *hi) {
    const deid_text_rules *r = c->r;
    int maxw = r->keep_post_max_words;
    if (maxw <= 0) return 0;
    int found = 0;
    size_t a0 = i + 1 > (size_t)maxw ? i + 1 - (size_t)maxw : 0;
    for (size_t a = a0; a <= i; a++) {
        int ok = 1;
        for (size_t q = a + 1; q <= i && ok; q++) ok = deid__close_on_line(c, q);
        if (!ok) continue;
        char key[256];
        size_t kl = 0;
        for (size_t b = a; b < c->nt && (int)(b - a) < maxw; b++) {
            if (b > a && !deid__close_on_line(c, b)) break;
            if (kl + 1 + (c->t[b].e - c->t[b].s) * 2 >= sizeof key) break;
            if (b > a) key[kl++] = ' ';
            size_t wl = deid_lower(c->text + c->t[b].s, c->t[b].e - c->t[b].s, key + kl, sizeof key - kl);
            if (wl == (size_t)-1) break;
            kl += wl;
            if (b >= i && strmap_find(&r->keep_post, key, kl) >= 0 && (!found || b - a > *hi - *lo)) {
                *lo = a;
                *hi = b;
                found = 1;
            }
        }
    }
    return found;
}

/* A word that shows the run is a name, place or organisation whatever its clinical words. */
static int strong_word(const tok *t) {
    if (t->known >= 0) return 1;
    if (t->f & (F_ORG_AFTER | F_STREET | F_PLACE_WORD | F_TITLE)) return 1;
    if (t->shape0 == SH_INITIAL || t->nletters < 2) return 0;
    if ((t->f & (F_FIRST | F_LAST)) && !(t->f & (F_ENGLISH | F_MEDICAL | F_STOP | F_NOT_NAME))) return 1;
    return t->oov && t->nletters >= 3;
}

/* The run [a, b] of words labelled y has a strong cue outside the words [lo, hi] of the entry
 * that would keep it (an entry may reach outside the run: "PA Line", "APACHE II"). unnamed
 * (round 19, @keep_unnamed): the entry is in no name or place list, so the cues that only a name's
 * shape gives do not count: a credential or suffix after the run ("heparin IV", "APACHE II", an
 * upper-cased "(DO NOT CRUSH)" read as D.O.) and the run alone on its line (a drug list has one
 * drug a line; a signature is a name). */
static int strong_cue(const ctx *c, const int8_t *lab, const uint8_t *evd, size_t a, size_t b, size_t lo,
                      size_t hi, int unnamed) {
    const deid_flags before = F_TITLE | F_NAME_IS | F_KIN | F_NAME_BEFORE | F_PRONOUN | F_ORG_BEFORE |
                              F_PLACE_BEFORE | F_ADDR_BEFORE;
    for (size_t q = a; q <= b; q++) {
        if (c->t[q].known >= 0 || ((evd[q] >> DEID_SRC_KNOWN) & 1)) return 1;
        if ((q < lo || q > hi) && strong_word(&c->t[q])) return 1;
    }
    /* a cue before the run, or a role written before the name ("RN Dina", "NP DANA") */
    if (a > 0 && a - 1 < lo) {
        gapinfo g = deid__gap_info(c, a);
        deid_flags cb = c->t[a - 1].cue_end & (before | F_NAME_AFTER);
        /* across a full stop only a title cues ("Dr. Foley"; not "net -7550 cc. Cr rose") */
        if (!g.nl && cb && (!g.period || (cb & F_TITLE))) return 1;
        /* a weak cue with a colon is a signature field ("By: BP", "Per: SW") */
        if (!g.nl && g.colon && (c->t[a - 1].cue_end & F_NAME_WEAK)) return 1;
    }
    if (b + 1 < c->nt && b + 1 > hi && !deid__gap_info(c, b + 1).nl &&
        (c->t[b + 1].start & (unnamed ? F_ORG_AFTER : F_NAME_AFTER | F_ORG_AFTER)))
        return 1;
    /* initials joined by a slash or colon to other initials ("TF/JT", "CS:ab", "KG/A.H."): a
       transcriptionist's signature */
    for (size_t q = a; q <= b; q++) {
        if (c->t[q].nletters > 3) continue;
        if (q > 0 && initials_gap(c, q) && c->t[q - 1].nletters <= 3 &&
            c->t[q - 1].nletters == c->t[q - 1].e - c->t[q - 1].s)
            return 1;
        if (q + 1 < c->nt && initials_gap(c, q + 1) && c->t[q + 1].nletters <= 3 &&
            c->t[q + 1].nletters == c->t[q + 1].e - c->t[q + 1].s)
            return 1;
    }
    /* a place with a number in it is a ward and its floor ("Kessler 4", "JN 7") */
    if (lab[a] == DEID_LOCATION)
        for (size_t q = a; q <= b; q++)
            if (c->t[q].shape0 == SH_NUM && (q < lo || q > hi)) return 1;
    /* a line of its own holding only the run: a signature ("Chip", "Rich") */
    if (!unnamed && (a == 0 || deid__gap_info(c, a).nl) && (b + 1 >= c->nt || deid__gap_info(c, b + 1).nl)) return 1;
    /* a listed name next to the run, across a comma or an initial ("Foley, John") */
    for (size_t q = a >= 2 ? a - 2 : 0; q < a; q++)
        if (lab[q] >= 0 && is_name_type(lab[q]) && strong_word(&c->t[q]) && deid__close_on_line(c, q + 1)) return 1;
    for (size_t q = b + 1; q < c->nt && q <= b + 2; q++)
        if (lab[q] >= 0 && is_name_type(lab[q]) && strong_word(&c->t[q]) && deid__close_on_line(c, b + 1)) return 1;
    return 0;
}

/* Clinical context: a clinical word that is no name, a number, a unit; loose: any medical word
 * that is no name, common ones too ("neg"). A care role ("PCA", "SW") is none: it names the
 * person after it. */
static int context_word(const ctx *c, size_t q, int loose) {
    const tok *t = &c->t[q];
    if (t->f & KEEP_NAMES) return 0;
    if (role_ending_at(c, q) >= 0 || deid__verb_starting_at(c, q)) return 0;
    return keep_word(t) || (loose && (t->f & F_MEDICAL)) || t->shape0 == SH_NUM || t->shape0 == SH_ALNUM ||
           (t->f & F_MEASURE);
}

/* A clinical word or a number within two words of [lo, hi] in its clause (round 9: no longer
 * across a full stop, and a clock time before the word does not count). */
static int clinical_context(const ctx *c, size_t lo, size_t hi, int loose) {
    for (size_t q = lo >= 2 ? lo - 2 : 0; q < lo; q++) {
        int ok = 1;
        for (size_t z = q + 1; z <= lo && ok; z++) ok = !clause_break(c, z);
        if (ok && !deid__clock_time(c, q) && context_word(c, q, loose)) return 1;
    }
    for (size_t q = hi + 1; q < c->nt && q <= hi + 2; q++) {
        int ok = 1;
        for (size_t z = hi + 1; z <= q && ok; z++) ok = !clause_break(c, z);
        if (ok && context_word(c, q, loose)) return 1;
    }
    return 0;
}

/* Word i is part of notation the model took for a date: returns the reason and the words. */
static int keep_numeric(const ctx *c, size_t i, size_t *lo, size_t *hi) {
    const tok *t = c->t;
    if (t[i].shape0 != SH_NUM) return KEEP_NO;
    for (int side = 0; side < 2; side++) {
        size_t x = side ? i - 1 : i, y = x + 1;
        if ((side && i == 0) || y >= c->nt || t[y].shape0 != SH_NUM) continue;
        /* "1/2 NS", "1/2NS", "1/2 tab": a half, not inside a chain, before a clinical word or
           unit, and not after one ("ECHO 1/2 EF 25%" is a date) */
        if (gap_is(c, y, '/') && t[x].e - t[x].s == 1 && t[y].e - t[y].s == 1 && !gap_is(c, x, '/') &&
            !gap_is(c, x, '-') && !(y + 1 < c->nt && gap_is(c, y + 1, '/'))) {
            int n = c->text[t[x].s] - '0', d = c->text[t[y].s] - '0';
            int after_clin =
                x > 0 && deid__gap_info(c, x).space_only && (keep_word(&t[x - 1]) || (t[x - 1].f & F_MEDICAL));
            if (n == 1 && d == 2 && !after_clin && y + 1 < c->nt && t[y + 1].s - t[y].e <= 1 &&
                t[y + 1].nletters >= 2 &&
                (t[y + 1].s == t[y].e || c->text[t[y].e] == ' ') &&
                (t[y + 1].s == t[y].e ? t[y + 1].shape0 != SH_NUM
                                     : (keep_word(&t[y + 1]) || (t[y + 1].f & F_MEASURE)) != 0)) {
                *lo = x;
                *hi = y;
                return KEEP_FRACTION;
            }
        }
        /* "tot fluids 800-1000", "goal 1500-2000": two multiples of 100 joined by a hyphen, the
           second larger, are a range; a phone number's line group is not both round and larger
           than its exchange. Not inside a longer chain, nor after an area code or a phone cue
           ("call 800-1000") */
        if (gap_is(c, y, '-') && !gap_is(c, x, '-') && !gap_is(c, x, '/') && !gap_is(c, x, '.') &&
            !(y + 1 < c->nt && t[y + 1].s == t[y].e + 1 && t[y + 1].shape0 == SH_NUM)) {
            long va = deid__num_value(c, x), vb = deid__num_value(c, y);
            int after_num = x > 0 && t[x - 1].shape0 == SH_NUM && deid__close_on_line(c, x) && t[x].s - t[x - 1].e <= 3;
            deid_flags pc = c->r->phone_cue;
            int cue = pc && ((x > 0 && (t[x - 1].cue_end & pc)) || (x > 1 && (t[x - 2].cue_end & pc)));
            if (va > 0 && vb > va && va % 100 == 0 && vb % 100 == 0 && !after_num && !cue) {
                *lo = x;
                *hi = y;
                return KEEP_RANGE;
            }
        }
        /* "captopril 6.25", "trough 7.4": a decimal after a clinical word that is no name */
        if (gap_is(c, y, '.') && !gap_is(c, x, '.') && !gap_is(c, x, '/') && !gap_is(c, x, '-') &&
            !(y + 1 < c->nt && (gap_is(c, y + 1, '.') || gap_is(c, y + 1, '/') || gap_is(c, y + 1, '-'))) &&
            x > 0 && !deid__gap_info(c, x).nl && deid__gap_info(c, x).space_only &&
            keep_word(&t[x - 1]) && !(t[x - 1].f & (KEEP_NAMES | F_MONTH | F_WEEKDAY)) &&
            t[x - 1].shape0 != SH_NUM &&
            y + 1 < c->nt && !deid__gap_info(c, y + 1).nl &&
            (deid__gap_info(c, y + 1).space_only || t[y + 1].s == t[y].e) &&
            (t[y + 1].f & (F_MEASURE | F_KEEP)) && t[y + 1].shape0 != SH_NUM && t[y + 1].nletters >= 2) {
            *lo = x;
            *hi = y;
            return KEEP_DECIMAL;
        }
    }
    return KEEP_NO;
}

/* A word that may be part of a person's name the model left out ("covering MD Lucja Gemma"):
 * a listed name that is no clinical word, or an unlisted word of two letters or more. */
static int name_like(const tok *t) {
    if (keep_word(t) || (t->f & (F_STOP | F_NOT_NAME | F_ENGLISH)) || t->shape0 == SH_NUM) return 0;
    return (t->f & (F_FIRST | F_LAST)) || (t->oov && t->nletters >= 2);
}

/* Whether the words [elo, ehi] that would be kept, in the run [a, b] labelled y, stand where a
 * person's name or a place stands (round 9): after a care role ("SW", "PCA", "night float"),
 * or a title or name cue with one name-like word between ("covering MD Lucja Gemma"); after an
 * initial ("A. Babinski"); before a charting verb ("Gaba aware", "Bono paged") or a relation in
 * parentheses ("Ara (HCP)", "Lua (dtr)"); before a floor number the model also took ("VEA 8": a
 * ward); a listed place after "in", "from", "at" taken as a place ("VNA in Coria"). The role,
 * verb and place rules need a word that is also a listed name or place (named); the role rule
 * also takes a word that is not in the ICU keep-list ("PCA dilaudid" stays). */
static int name_shaped(const ctx *c, const int8_t *lab, int y, size_t a, size_t b, size_t elo, size_t ehi,
                       int named) {
    size_t first = a < elo ? a : elo, last = b > ehi ? b : ehi;
    int all_keep = 1;
    for (size_t z = elo; z <= ehi; z++) all_keep &= (c->t[z].f & F_KEEP) || c->t[z].keep_extra;
    const deid_flags cues = F_TITLE | F_NAME_BEFORE | F_NAME_IS | F_KIN | F_NAME_AFTER;
    /* round 11: right after a given name the model took in the same run ("John Foley, pts
       son"), the kept word would be that person's family name: a listed given name that is no
       clinical, stop or never-a-name word, and no common word either unless it is written with
       a capital inside a sentence of a mixed-case note ("john" is also a common word) */
    if (y == DEID_NAME && named && elo > a && deid__close_on_line(c, elo) && deid__gap_info(c, elo).space_only) {
        const tok *g = &c->t[elo - 1];
        if ((g->f & F_FIRST) && !keep_word(g) && g->nletters >= 2 &&
            !(g->f & (F_MEDICAL | F_NOT_NAME | F_STOP | F_KEEP)) &&
            (!(g->f & F_ENGLISH) || (g->shape0 == SH_CAP && !g->sent && !c->upper_doc && !c->lower_doc)))
            return 1;
    }
    if (first > 0 && deid__close_on_line(c, first)) {
        size_t p = first - 1;
        for (int hop = 0; hop < 2; hop++) {
            long r0 = (named || !all_keep) ? role_ending_at(c, p) : -1;
            /* "2 cm": a number before the role word makes it a unit */
            if (r0 >= 0 && !(r0 > 0 && c->t[r0 - 1].shape0 == SH_NUM && deid__close_on_line(c, (size_t)r0))) return 1;
            if (hop && (c->t[p].cue_end & cues)) return 1;
            /* one name-like word between ("MD Lucja [Gemma]") */
            if (hop || p == 0 || !deid__close_on_line(c, p) || !name_like(&c->t[p])) break;
            p--;
        }
        p = first - 1;
        /* an initial: one capital letter and a full stop ("A. Babinski"), not after a clinical
           word ("vitamin K. Foley") nor the end of a dotted abbreviation ("E.G., NSAIDS") */
        const tok *t = &c->t[p];
        size_t plo, phi;
        if (t->nletters == 1 && t->e - t->s == 1 && c->text[t->s] >= 'A' && c->text[t->s] <= 'Z' && t->e < c->len &&
            c->text[t->e] == '.' && !(p > 0 && deid__close_on_line(c, p) && keep_word(&c->t[p - 1])) &&
            !post_entry(c, p, &plo, &phi))
            return 1;
        /* a listed place after "in", "from", "at" */
        if (named && y == DEID_LOCATION && (c->t[p].cue_end & F_PLACE_WEAK)) {
            int place = 0;
            for (size_t z = elo; z <= ehi; z++) place |= (c->t[z].f & (F_PLACE | F_REGION)) != 0;
            if (place) return 1;
        }
    }
    if (last + 1 < c->nt && !deid__gap_info(c, last + 1).nl) {
        size_t q = last + 1;
        gapinfo g = deid__gap_info(c, q);
        if (named && !clause_break(c, q) && !g.comma && deid__verb_starting_at(c, q)) return 1;
        /* "(dtr)", "(HCP)", "(brother)" */
        if (c->text[c->t[q].s - 1] == '(' && g.len <= 2 &&
            (((c->t[q].f | c->t[q].start) & F_KIN) || role_ending_at(c, q) >= 0))
            return 1;
        /* "VEA 8", "LUE 7": a ward and its floor, when the model took the number too, or the
           word is also a listed name or place after "to", "on", "from" ("transfer to VEA 8";
           "to PS 10", "on levo 8" are no listed names) */
        if (g.space_only && c->t[q].shape0 == SH_NUM && c->t[q].e - c->t[q].s <= 2 &&
            ((lab[q] >= 0 && is_name_type(lab[q])) ||
             (named && y != DEID_NAME && first > 0 && deid__close_on_line(c, first) &&
              (c->t[first - 1].cue_end & (F_PLACE_WEAK | F_PLACE_BEFORE)))))
            return 1;
    }
    return 0;
}

/* Round 9, one-case notes: a word the model left, where a person's name stands, is a name. An
 * all-caps or all-lower-case note has no capitals to tell "son Sung-Min" or "SW Deacon" from
 * charting, and the model misses such names more there than in mixed case. Evidence before: a
 * kinship word or a care role (keep_roles.txt) right before; after: a charting verb
 * (keep_name_verbs.txt: "aware", "paged") or a relation in parentheses ("(nephew)"). A listed
 * name that is no common or clinical word needs one of them; a word in no list a kinship word
 * before or the evidence after (after a role it is as often shorthand: "OT eval", "RN obs"); a
 * given name that is also a common word ("will", "amber") evidence on both sides. Never a cue,
 * stop, clinical or measure word, a number, a month or a weekday. */
static void one_case_names(const ctx *c, int8_t *lab) {
    if (!c->lower_doc && !c->upper_doc) return;
    const deid_flags bad = NOT_A_LEFT_NAME;
    for (size_t i = 1; i < c->nt; i++) {
        const tok *t = &c->t[i];
        if (lab[i] >= 0 || t->nletters < 2 || t->shape0 == SH_NUM || t->shape0 == SH_ALNUM) continue;
        if (((t->f | t->start | t->cue_end) & bad) || keep_word(t) || t->clin_shape) continue;
        if (role_ending_at(c, i) >= 0 || deid__verb_starting_at(c, i)) continue;
        int listed = (t->f & (F_FIRST | F_LAST)) != 0;
        int common = (t->f & (F_ENGLISH | F_MEDICAL | F_NOT_NAME)) != 0;
        int strong = (t->oov && !common) || (listed && !common);
        int weak = listed && common && (t->f & F_FIRST);
        if (!strong && !weak) continue;
        int kin = 0, role = 0, after = 0;
        gapinfo g = deid__gap_info(c, i);
        if (!g.nl && g.space_only) {
            kin = (c->t[i - 1].cue_end & F_KIN) != 0;
            role = role_ending_at(c, i - 1) >= 0;
        }
        if (i + 1 < c->nt) {
            gapinfo h = deid__gap_info(c, i + 1);
            if (!h.nl && h.space_only && deid__verb_starting_at(c, i + 1)) after = 1;
            if (!h.nl && h.len <= 2 && c->text[c->t[i + 1].s - 1] == '(' &&
                (((c->t[i + 1].f | c->t[i + 1].start) & F_KIN) || role_ending_at(c, i + 1) >= 0))
                after = 1;
        }
        /* an unlisted word after a role is as often shorthand ("OT eval", "RN obs") */
        /* round 10: a clause that opens with the name and a charting verb ("..., AMBER AWARE") */
        int opens = g.nl || g.comma || g.period || g.sentence;
        int take = listed && !common ? kin || role || after : strong ? kin || after : (kin || role || opens) && after;
        if (take) lab[i] = DEID_NAME;
    }
}

/* Word j is "in" (a town follows an address: "... pl in brockton"). */
static int is_in_word(const ctx *c, size_t j) {
    return c->t[j].e - c->t[j].s == 2 && (c->text[c->t[j].s] | 32) == 'i' && (c->text[c->t[j].s + 1] | 32) == 'n';
}

/* Round 9, one-case notes: a house number, one to three words and a street word after "at", "on",
 * "to", "from" or an address cue, ending the clause ("lived alone at 146 maple pl in ...", "AT
 * 12 OLD MILL RD,") is a street address. In mixed case the capitals and the evidence layers find
 * these; in one case a stop word ("old") or a cue with a word inside ("lived alone at") stopped
 * them. Never with a clinical, measure or unit word among the words, nor a number joined to
 * another ("2/3"). */
static void one_case_addresses(const ctx *c, int8_t *lab) {
    if (!c->lower_doc && !c->upper_doc) return;
    for (size_t i = 1; i + 2 < c->nt; i++) {
        const tok *t = &c->t[i];
        if (t->shape0 != SH_NUM || t->e - t->s > 5 || joined_number(c, i)) continue;
        if (!deid__close_on_line(c, i) || !deid__gap_info(c, i).space_only) continue;
        if (!(c->t[i - 1].cue_end & (F_PLACE_WEAK | F_ADDR_BEFORE | F_PLACE_BEFORE))) continue;
        size_t k = 0;
        for (size_t j = i + 1; j < c->nt && j <= i + 4; j++) {
            const tok *u = &c->t[j];
            if (!deid__gap_info(c, j).space_only || u->nletters < 2 || u->shape0 == SH_NUM || u->shape0 == SH_ALNUM)
                break;
            if (keep_word(u) || (u->f & (F_MEASURE | F_UNIT | F_PLACE_WEAK | F_NAME_WEAK | F_MONTH | F_WEEKDAY)))
                break;
            if (j > i + 1 && (u->f & F_STREET)) {
                k = j;
                break;
            }
        }
        if (!k) continue;
        /* street words in a row ("old mill rd": "mill" is one too) */
        while (k + 1 < c->nt && deid__gap_info(c, k + 1).space_only && (c->t[k + 1].f & F_STREET) &&
               c->t[k + 1].nletters >= 2 && !keep_word(&c->t[k + 1]))
            k++;
        /* the clause ends after the street word, or a unit, a town or a ZIP code follows */
        size_t end = k;
        int ok = k + 1 >= c->nt;
        if (!ok) {
            gapinfo g = deid__gap_info(c, k + 1);
            const tok *n = &c->t[k + 1];
            ok = g.nl || g.comma || g.period || (g.space_only && (is_in_word(c, k + 1) || n->shape0 == SH_NUM));
            if (g.space_only && (n->f & F_UNIT) && k + 2 < c->nt && deid__gap_info(c, k + 2).space_only &&
                (c->t[k + 2].shape0 == SH_NUM || c->t[k + 2].shape0 == SH_ALNUM || c->t[k + 2].nletters == 1)) {
                ok = 1;
                end = k + 2;
            }
        }
        if (!ok) continue;
        for (size_t q = i; q <= end; q++)
            if (lab[q] < 0 || is_name_type(lab[q])) lab[q] = DEID_ADDRESS;
        i = end;
    }
}


/* Does a facility cue stand right before word q on its line ("from SAH", "transferred to CVICU")?
 * Always yes without slots.tsv facility_cue (the filter's rule before round 55). */
static int facility_cue_before(const ctx *c, size_t q) {
    if (!c->r->slots_max_words[DEID_SLOT_FACILITY_CUE]) return 1;
    return q > 0 && !deid__gap_info(c, q).nl && slot_ending_at(c, DEID_SLOT_FACILITY_CUE, q - 1) >= 0;
}

/* Unlabels the words the filter keeps; ki[i].why says why (ki may be NULL). */
static void keep_filter(const ctx *c, int8_t *lab, const uint8_t *evd, const float *P, keepinfo *ki) {
    size_t T = c->nt;
    size_t i = 0;
    while (i < T) {
        if (lab[i] < 0) {
            i++;
            continue;
        }
        /* a run as spans_from_labels will join it: one label, one line, no comma between */
        size_t j = i;
        while (j + 1 < T && lab[j + 1] == lab[i] && deid__close_on_line(c, j + 1) && !deid__gap_info(c, j + 1).comma) j++;
        int y = lab[i];
        if (!is_name_type(y)) {
            for (size_t q = i; q <= j; q++) {
                size_t lo, hi;
                if (lab[q] < 0 || ((evd[q] >> DEID_SRC_KNOWN) & 1) || c->t[q].known >= 0) continue;
                int why = keep_numeric(c, q, &lo, &hi);
                if (!why) continue;
                for (size_t z = lo; z <= hi; z++) {
                    if (lab[z] < 0 && z != q) continue;
                    lab[z] = -1;
                    if (ki) ki[z] = (keepinfo){(uint8_t)why, (int32_t)lo, (int32_t)hi, (int32_t)lo, (int32_t)hi};
                }
            }
            i = j + 1;
            continue;
        }
        /* a run of bare numbers no pattern marks ("lives in 2 story home", "mb 5") */
        int allnum = 1;
        for (size_t q = i; q <= j && allnum; q++)
            allnum = c->t[q].shape0 == SH_NUM && c->t[q].e - c->t[q].s <= 3 && !joined_number(c, q) &&
                     !(evd[q] & ((1u << DEID_SRC_PATTERN) | (1u << DEID_SRC_KNOWN))) && c->t[q].known < 0;
        /* ... unless it follows a word the model took as a name or place and the filter did not
           keep ("VEA 8": the ward's floor) */
        if (allnum && i > 0 && lab[i - 1] >= 0 && is_name_type(lab[i - 1]) && deid__gap_info(c, i).space_only)
            allnum = 0;
        /* ... or a word that is also a listed name or place, after a place cue ("transfer to VEA
           8"): the ward's floor, and the word before it is the ward, taken with it */
        if (allnum && i == j && i >= 2 && lab[i - 1] < 0 && deid__gap_info(c, i).space_only &&
            (c->t[i - 1].f & KEEP_NAMES) && c->t[i - 1].nletters >= 2 && c->t[i].e - c->t[i].s <= 2 &&
            deid__close_on_line(c, i - 1) && (c->t[i - 2].cue_end & (F_PLACE_WEAK | F_PLACE_BEFORE)) &&
            c->t[i - 1].known < 0 && !(c->t[i - 1].f & (F_STOP | F_MONTH | F_WEEKDAY))) {
            allnum = 0;
            lab[i - 1] = (int8_t)y;
        }
        if (allnum) {
            for (size_t q = i; q <= j; q++) {
                lab[q] = -1;
                if (ki) ki[q] = (keepinfo){KEEP_NUMBER, (int32_t)i, (int32_t)j, (int32_t)i, (int32_t)j};
            }
            i = j + 1;
            continue;
        }
        int any_kept = 0;
        for (size_t q = i; q <= j; q++) {
            size_t lo = q, hi = q;
            int why = KEEP_NO;
            /* round 34: a word of clinical_keep_extra.txt (tok.keep_extra) is kept here as a
               clinical_keep.txt word is (KEEP_MAX_P_KEEP, every exception below); this is the
               only place the mark is read (the word's flags, the features and the density class
               never see it) */
            int xk = c->t[q].keep_extra && !(c->t[q].f & F_KEEP);
            if (post_entry(c, q, &lo, &hi)) why = KEEP_POST;
            else if ((keep_word(&c->t[q]) || xk) && c->t[q].nletters >= 2) why = KEEP_WORD;
            if (!why) continue;
            /* a short abbreviation taken as an organisation is mostly a facility ("from SAH"); with
               slots.tsv facility_cue (round 55, K) only after such a cue: "pt resting, vss." */
            if (why == KEEP_WORD && y == DEID_ORGANIZATION && c->t[q].nletters <= 4 && facility_cue_before(c, q)) continue;
            /* weak evidence only: a list word the model is sure of stays removed ("from HCM"),
               and surer still when it is also a listed name */
            float pphi = 1 - P[q * DEID_NL];
            if (why == KEEP_WORD && pphi >= (((c->t[q].f & F_KEEP) || xk) ? KEEP_MAX_P_KEEP : KEEP_MAX_P)) continue;
            if (why == KEEP_WORD && (c->t[q].f & KEEP_NAMES) && pphi >= KEEP_MAX_P_NAMED) continue;
            size_t elo = lo, ehi = hi;
            if (lo < i) lo = i; /* the run's own words decide; an entry may start before it */
            if (hi > j) hi = j;
            int named = 0, all_named = 1;
            for (size_t z = elo; z <= ehi; z++) {
                named |= (c->t[z].f & KEEP_NAMES) != 0;
                all_named &= (c->t[z].f & KEEP_NAMES) || c->t[z].nletters == 1;
            }
            if (strong_cue(c, lab, evd, i, j, elo, ehi, c->m->keep_unnamed && !named)) continue;
            /* also a name or place: only beside clinical words or numbers ("foley draining") */
            /* an entry made only of listed names and letters ("jackson pratt", "kerley b") could be
               a person: it too needs clinical context (loose) */
            if (why == KEEP_POST && elo < ehi && all_named && !clinical_context(c, elo, ehi, 1)) continue;
            /* (loose context for a single-word entry of clinical_keep_post.txt: it is clinical
               notation first, "neg Homans"; strict for the larger lists, which hold "Lana") */
            if (named && (why == KEEP_WORD || elo == ehi) && !clinical_context(c, lo, hi, why == KEEP_POST))
                continue;
            /* round 9: a name's surroundings outweigh the word's clinical sense */
            if (name_shaped(c, lab, y, i, j, elo, ehi, named)) continue;
            /* --explain names clinical_keep_extra.txt when the word was kept because of it: not a
               keep word without it, or above the bound it would have had */
            if (why == KEEP_WORD && xk && (!keep_word(&c->t[q]) || pphi >= KEEP_MAX_P)) why = KEEP_EXTRA;
            for (size_t z = lo; z <= hi; z++) {
                lab[z] = -1;
                if (ki) ki[z] = (keepinfo){(uint8_t)why, (int32_t)lo, (int32_t)hi, (int32_t)elo, (int32_t)ehi};
            }
            any_kept = 1;
            q = hi;
        }
        /* the rest of a run with a kept clinical word goes too when it is only common words
           ("Cr rose": "rose" is a given name but here the verb) */
        if (any_kept) {
            int weak = 1;
            for (size_t q = i; q <= j && weak; q++)
                if (lab[q] >= 0)
                    weak = (c->t[q].f & F_NOT_NAME) && !strong_word(&c->t[q]) && c->t[q].nletters >= 2 &&
                           !((evd[q] >> DEID_SRC_PATTERN) & 1);
            for (size_t q = i; q <= j && weak; q++)
                if (lab[q] >= 0) {
                    lab[q] = -1;
                    if (ki) ki[q] = (keepinfo){KEEP_RUN, (int32_t)i, (int32_t)j, (int32_t)i, (int32_t)j};
                }
        }
        i = j + 1;
    }
}

/* The first and last words of word q's line. */
static void line_words(const ctx *c, size_t q, size_t *lo, size_t *hi) {
    *lo = *hi = q;
    while (*lo > 0 && !deid__gap_info(c, *lo).nl) (*lo)--;
    while (*hi + 1 < c->nt && !deid__gap_info(c, *hi + 1).nl) (*hi)++;
}

/* A word that names a person, place or organisation when it is a whole field: a listed name or
 * place that is no common, clinical or stop word, written with a capital ("Anderson"), or an
 * initial. */
static int field_name_word(const tok *t, int recased) {
    uint8_t sh = recased ? t->shape : t->shape0;
    if (sh == SH_INITIAL || (t->nletters == 1 && sh == SH_UPPER)) return 1;
    if (sh != SH_CAP && sh != SH_UPPER) return 0;
    return (t->f & KEEP_NAMES) && !(t->f & (F_ENGLISH | F_MEDICAL | F_STOP | F_NOT_NAME | F_KEEP)) && !t->clin_shape;
}

/* The run [a, b] labelled as a name, place or organisation on a field list's line (fields.c) is
 * one by the field's own evidence: a string the record knows or a pattern; a person or address cue
 * just before it ("Dr", "son", "name is"), MD or Hospital just after, a title or organisation word
 * inside it; or a line holding only names and initials ("Anderson", "Smith, John"). */
static int field_cue(const ctx *c, const uint8_t *evd, size_t a, size_t b, int recased, int free_case) {
    uint8_t sha = recased ? c->t[a].shape : c->t[a].shape0;
    /* round 20 (@one_case_cue, recased only): in a one-case note the re-casing leaves a word in no
       list lower-case, so the case tests below would drop an unlisted surname after "dr"; 1 frees
       the title and name_is cues of them, 2 every cue before the word */
    deid_flags cue_before = a > 0 ? c->t[a - 1].cue_end : 0;
    int any_case = free_case >= 2 || (free_case == 1 && (cue_before & (F_TITLE | F_NAME_IS)));
    for (size_t q = a; q <= b; q++) {
        if (c->t[q].known >= 0 || (evd[q] & ((1u << DEID_SRC_KNOWN) | (1u << DEID_SRC_PATTERN)))) return 1;
        if ((c->t[q].f & F_TITLE) || ((c->t[q].f & F_ORG_AFTER) && !deid__field_clinical_suffix(c, q))) return 1;
    }
    const deid_flags before = F_TITLE | F_NAME_IS | F_KIN | F_NAME_BEFORE | F_PRONOUN | F_ADDR_BEFORE;
    if (a > 0 && !deid__gap_info(c, a).nl && (cue_before & before) && (sha != SH_LOWER || any_case)) return 1;
    /* a weak cue ("per", "with", "by", "to", "from") before a capitalised word that is a listed name
       or place and nothing else, or in no list: a signature line closing an order list ("Reviewed
       with Kessler"), a transfer ("D/C to Brookside") */
    if (a > 0 && !deid__gap_info(c, a).nl &&
        (cue_before & (F_NAME_WEAK | F_PLACE_WEAK | F_PLACE_BEFORE | F_ORG_BEFORE)) &&
        (sha == SH_CAP || sha == SH_UPPER || any_case) && !c->t[a].clin_shape &&
        (field_name_word(&c->t[a], recased) || (c->t[a].oov && c->t[a].nletters >= 3)))
        return 1;
    if (b + 1 < c->nt && !deid__gap_info(c, b + 1).nl && (c->t[b + 1].start & (F_NAME_AFTER | F_ORG_AFTER)) &&
        !deid__field_clinical_suffix(c, b + 1))
        return 1;
    /* a capitalised run with a number after it is a ward and its floor ("Kessler 4") */
    if (sha != SH_LOWER && b + 1 < c->nt && c->t[b + 1].shape0 == SH_NUM && !deid__gap_info(c, b + 1).nl &&
        deid__gap_info(c, b + 1).space_only)
        return 1;
    /* the whole line is names and initials (the run [a, b] is on one line) */
    size_t lo, hi;
    line_words(c, a, &lo, &hi);
    for (size_t q = lo; q <= hi; q++)
        if (!field_name_word(&c->t[q], recased) && !(c->t[q].f & F_PARTICLE)) return 0;
    return 1;
}

/* A date, phone, id or address on a field list's line is one by its evidence: a pattern or a
 * string the record knows covers a word of it, or (an address) it holds a street or unit word
 * written with a capital. Numbers in titles are doses, counts, codes and marker names ("CD4/8",
 * a formula's dilution "(1/2)", "per 10 square cm", "above zero (> 0)"). */
static int field_shaped_cue(const ctx *c, const uint8_t *evd, size_t a, size_t b, int y) {
    for (size_t q = a; q <= b; q++) {
        if (c->t[q].known >= 0 || (evd[q] & ((1u << DEID_SRC_KNOWN) | (1u << DEID_SRC_PATTERN)))) return 1;
        if (y == DEID_ADDRESS && (c->t[q].f & (F_STREET | F_STREET_MAIN | F_UNIT)) &&
            (c->t[q].shape0 == SH_CAP || c->t[q].shape0 == SH_UPPER))
            return 1;
    }
    return 0;
}

/* Round 21 (@field_dates): the line of word q carries its own person evidence: a run labelled a
 * person name that the field cue holds, or a credential right after a word labelled a name (a
 * dated signature, "3/10 by c. X, pharmd"). A title line's date has neither; a signature's date is
 * a date of care whatever pattern covers it, and a month/day with no year has none. */
static int field_line_person(const ctx *c, const int8_t *lab, const uint8_t *evd, size_t q, int recased,
                             int free_case) {
    size_t lo, hi;
    line_words(c, q, &lo, &hi);
    for (size_t i = lo + 1; i <= hi; i++)
        if ((c->t[i].start & F_NAME_AFTER) && lab[i - 1] == DEID_NAME) return 1;
    for (size_t i = lo; i <= hi; i++) {
        if (lab[i] < 0 || !is_name_type(lab[i])) continue;
        /* the run as field_filter cuts it, so the cue is read on the same words */
        size_t j = i;
        int person = lab[i] == DEID_NAME;
        while (j + 1 <= hi && lab[j + 1] >= 0 && is_name_type(lab[j + 1])) person |= lab[++j] == DEID_NAME;
        if (person && field_cue(c, evd, i, j, recased, free_case)) return 1;
        i = j;
    }
    return 0;
}

/* On the field-shaped lines of a field list, the model's labels stay only with the field's own
 * evidence: a name, place or organisation with its cue (field_cue), a date, phone, id or address
 * with its pattern (field_shaped_cue), or (dates, round 21) a date on a line with its own person
 * evidence (field_line_person). */
static void field_filter(const ctx *c, int8_t *lab, const uint8_t *evd, const uint8_t *field, keepinfo *ki,
                         int recased, int free_case, int dates) {
    size_t T = c->nt;
    size_t i = 0;
    while (i < T) {
        if (lab[i] < 0 || !field[i]) {
            i++;
            continue;
        }
        int y = lab[i], named = is_name_type(y);
        size_t j = i;
        while (j + 1 < T && lab[j + 1] >= 0 && field[j + 1] &&
               (named ? is_name_type(lab[j + 1]) : lab[j + 1] == y) && !deid__gap_info(c, j + 1).nl)
            j++;
        if (!(named ? field_cue(c, evd, i, j, recased, free_case) : field_shaped_cue(c, evd, i, j, y)) &&
            !(dates && y == DEID_DATE && field_line_person(c, lab, evd, i, recased, free_case)))
            for (size_t q = i; q <= j; q++) {
                lab[q] = -1;
                if (ki) ki[q] = (keepinfo){KEEP_FIELD, (int32_t)i, (int32_t)j, (int32_t)i, (int32_t)j};
            }
        i = j + 1;
    }
}

/* A fraction N/M labelled a date, right after a scale's name whose maximum is M (scores.txt: "Tinetti
 * 12/28", "Berg score 41/56"), with N <= M and no third number joined to it, is a score. */
static void score_filter(const ctx *c, int8_t *lab, const uint8_t *evd, keepinfo *ki) {
    const deid_text_rules *r = c->r;
    if (r->scores_max_words <= 0) return;
    const tok *t = c->t;
    for (size_t x = 1; x + 1 < c->nt; x++) {
        size_t y = x + 1;
        if ((lab[x] != DEID_DATE && lab[y] != DEID_DATE) || t[x].shape0 != SH_NUM || t[y].shape0 != SH_NUM) continue;
        if (!gap_is(c, y, '/') || gap_is(c, x, '/') || gap_is(c, x, '-') || gap_is(c, x, '.')) continue;
        if (y + 1 < c->nt && t[y + 1].s == t[y].e + 1 && t[y + 1].shape0 == SH_NUM) continue;
        if (t[x].known >= 0 || t[y].known >= 0 || ((evd[x] | evd[y]) & (1u << DEID_SRC_KNOWN))) continue;
        if (t[x].e - t[x].s > 3 || t[y].e - t[y].s > 3) continue;
        long n = 0, d = 0;
        for (size_t k = t[x].s; k < t[x].e; k++) n = n * 10 + (c->text[k] - '0');
        for (size_t k = t[y].s; k < t[y].e; k++) d = d * 10 + (c->text[k] - '0');
        if (n > d) continue;
        /* the scale's name just before, on the line (a "score" or "scale" between may stand) */
        size_t w = x - 1;
        gapinfo g = deid__gap_info(c, x);
        if (g.nl || g.len > 3 || g.sentence || g.period) continue;
        char key[96];
        size_t kl = deid_lower(c->text + t[w].s, t[w].e - t[w].s, key, sizeof key);
        if (kl != (size_t)-1 && (kl == 5 && (!memcmp(key, "score", 5) || !memcmp(key, "scale", 5))) && w > 0 &&
            !deid__gap_info(c, w).nl) {
            w--;
            kl = deid_lower(c->text + t[w].s, t[w].e - t[w].s, key, sizeof key);
        }
        /* "PHQ-9", "GAD-7": the name and its number are one entry ("phq9") */
        if (kl != (size_t)-1 && w > 0 && t[w].shape0 == SH_NUM && gap_is(c, w, '-') && t[w].e - t[w].s <= 2) {
            char k2[96];
            size_t l2 = deid_lower(c->text + t[w - 1].s, t[w - 1].e - t[w - 1].s, k2, sizeof k2);
            if (l2 != (size_t)-1 && l2 + kl < sizeof key) {
                memmove(key + l2, key, kl);
                memcpy(key, k2, l2);
                kl += l2;
                w--;
            }
        }
        if (kl == (size_t)-1 || kl + 6 >= sizeof key) continue;
        kl += (size_t)snprintf(key + kl, sizeof key - kl, " %ld", d);
        if (strmap_find(&r->scores, key, kl) < 0) continue;
        for (size_t z = x; z <= y; z++) {
            lab[z] = -1;
            if (ki) ki[z] = (keepinfo){KEEP_SCORE, (int32_t)x, (int32_t)y, (int32_t)w, (int32_t)y};
        }
    }
}

/* "WORD NUMBER" at words w, w+1 on one line, a space between ("MB 37", "Na 132"). */
static int value_pair(const ctx *c, size_t w) {
    if (w + 1 >= c->nt || c->t[w].nletters < 1 || c->t[w].shape0 == SH_NUM || c->t[w + 1].shape0 != SH_NUM) return 0;
    gapinfo g = deid__gap_info(c, w + 1);
    return g.space_only && !g.nl && !joined_number(c, w + 1);
}

/* A four-digit number labelled a date that no pattern or known string marks, written as the value
 * of a word ("BNP 2025") in a list of such pairs whose other values are no years ("CK 262, MB 37,
 * BNP 2025; Na 132"), is a lab value: "CABG 2015, PCI 2018" stays a list of years. */
static void value_filter(const ctx *c, int8_t *lab, const uint8_t *evd, keepinfo *ki) {
    for (size_t q = 1; q < c->nt; q++) {
        if (lab[q] != DEID_DATE || c->t[q].shape0 != SH_NUM || c->t[q].e - c->t[q].s != 4) continue;
        if (c->t[q].known >= 0 || (evd[q] & ((1u << DEID_SRC_KNOWN) | (1u << DEID_SRC_PATTERN)))) continue;
        if (!value_pair(c, q - 1) || (c->t[q - 1].f & (F_MONTH | F_WEEKDAY))) continue;
        int pairs = 0, years = 0;
        /* the pair before, across a comma, semicolon or space; the pair after likewise */
        if (q >= 3 && value_pair(c, q - 3) && !deid__gap_info(c, q - 1).nl && !deid__gap_info(c, q - 1).period) {
            pairs++;
            years += deid__year_shaped(c, q - 2);
        }
        if (q + 2 < c->nt && value_pair(c, q + 1) && !deid__gap_info(c, q + 1).nl && !deid__gap_info(c, q + 1).period) {
            pairs++;
            years += deid__year_shaped(c, q + 2);
        }
        if (!pairs || years) continue;
        lab[q] = -1;
        if (ki) ki[q] = (keepinfo){KEEP_VALUE, (int32_t)q, (int32_t)q, (int32_t)(q - 1), (int32_t)q};
    }
}

/* Whether the span covers a word the keep filter kept. */
static int keeps_in(const ctx *c, const keepinfo *ki, const deid_span *sp) {
    if (!ki) return 0;
    size_t lo = deid__first_word_ending_after(c, sp->start);
    for (size_t q = lo; q < c->nt && c->t[q].s < sp->end; q++)
        if (ki[q].why) return 1;
    return 0;
}

/* Words i..j are an ampersand-joined firm the rules found and amp_firms labelled one
 * organisation: every word labelled so by both, and an ampersand between two of them. */
static int amp_group(const ctx *c, const int8_t *lab, size_t i, size_t j) {
    int amp = 0;
    for (size_t q = i; q <= j; q++) {
        if (lab[q] != DEID_ORGANIZATION || c->t[q].lab != DEID_ORGANIZATION) return 0;
        if (q > i) amp |= deid__gap_info(c, q).amp == 1;
    }
    return amp;
}

/* Spans from the labelled words (see the file comment). Words join one group when they are
 * neighbours on a line with the same label, or covered by the same evidence span (a date's
 * "1990", "02" and "18"); a group's type is the one with the most probability summed over its
 * words, and its span the union of the evidence spans of that type overlapping it, plus its words
 * no such span covers. P is (T, L). Words the keep filter kept (ki) are in no span. */
static int spans_from_labels(const ctx *c, const int8_t *lab, const float *P, const keepinfo *ki, spanvec *out) {
    /* the longest evidence span covering each word */
    long *evid = cf_malloc((c->nt + 1) * sizeof *evid);
    if (!evid) return -1;
    for (size_t i = 0; i < c->nt; i++) evid[i] = -1;
    for (size_t k = 0; k < c->spans.n; k++) {
        const deid_span *sp = &c->spans.v[k];
        size_t lo = deid__first_word_ending_after(c, sp->start);
        for (size_t i = lo; i < c->nt && c->t[i].s < sp->end; i++) {
            long cur = evid[i];
            if (cur < 0 || c->spans.v[cur].end - c->spans.v[cur].start < sp->end - sp->start) evid[i] = (long)k;
        }
    }
    size_t i = 0;
    while (i < c->nt) {
        if (lab[i] < 0) {
            i++;
            continue;
        }
        size_t j = i;
        while (j + 1 < c->nt && lab[j + 1] >= 0) {
            int same_ev = evid[j] >= 0 && evid[j] == evid[j + 1];
            if (!same_ev) {
                gapinfo g = deid__gap_info(c, j + 1);
                if (g.nl || g.len > 3 || g.sentence || g.comma || lab[j + 1] != lab[j]) break;
                /* a date, phone or id goes on only with digits or a month name ("C" between two
                   dates is no part of either) */
                int ty1 = lab[j + 1];
                int numeric1 = ty1 == DEID_DATE || ty1 == DEID_PHONE || ty1 == DEID_FAX || ty1 == DEID_ID ||
                               ty1 == DEID_MRN || ty1 == DEID_SSN || ty1 == DEID_ZIP || ty1 == DEID_AGE_OVER_89;
                const tok *u = &c->t[j + 1];
                if (numeric1 && u->shape != SH_NUM && u->shape != SH_ALNUM && !(u->f & (F_MONTH | F_WEEKDAY))) break;
            }
            j++;
        }
        float best = -1;
        int ty = lab[i];
        for (int y = 1; y < DEID_NL; y++) {
            float sum = 0;
            for (size_t q = i; q <= j; q++) sum += P[q * DEID_NL + y];
            if (sum > best) best = sum, ty = y - 1;
        }
        /* an ampersand-joined firm amp_firms made one organisation keeps that type, whatever the
           model's summed probability says of its words */
        if (c->m && c->m->amp_firm_span && amp_group(c, lab, i, j)) ty = DEID_ORGANIZATION;
        /* round 46 (I, X): a run labelled all identifier, or all phone, that the model's sums would
           call a name, place, organisation, address, ZIP or age ("paged 3317" a name, "event #
           EV-44029" a ZIP) keeps its label's type when the rules folder reads codes or pagers (a
           surrogate of the sums' type would replace it); a pattern's type still wins below */
        if (((lab[i] == DEID_ID && c->r->slots_max_words[DEID_SLOT_ID_WORD]) ||
             (lab[i] == DEID_PHONE && c->r->slots_max_words[DEID_SLOT_PAGER_WORD])) &&
            (is_name_type(ty) || ty == DEID_ADDRESS || ty == DEID_ZIP || ty == DEID_AGE_OVER_89)) {
            int same = 1;
            for (size_t q = i; q <= j && same; q++) same = lab[q] == lab[i];
            if (same) ty = lab[i];
        }
        /* the kind of a structured identifier is the pattern's: the model decides whether it is
           PHI, the pattern's shape says whether it is a fax or a phone, an SSN or an id */
        {
            size_t blen = 0;
            int pty = -1;
            for (size_t k = 0; k < c->spans.n; k++) {
                const deid_span *sp = &c->spans.v[k];
                if ((c->spans.tag[k] >> 16) != DEID_SRC_PATTERN || sp->end <= c->t[i].s || sp->start >= c->t[j].e) continue;
                size_t l = sp->end - sp->start;
                if (l > blen || (l == blen && sp->type < pty)) blen = l, pty = sp->type;
            }
            if (pty >= 0 && pty != DEID_ADDRESS) ty = pty;
        }
        /* round 40 (A): an age the apposition rule took alone keeps its type whatever the model's
           probabilities say of the number (it left it: mostly a date to it) */
        if (i == j && lab[i] == DEID_AGE_OVER_89 && c->r->slots_max_words[DEID_SLOT_PATIENT]) ty = DEID_AGE_OVER_89;
        /* round 43 (W'): a run of places that holds a ward by its side ("4 North"), or (round 45, B) a
           ward in brackets after its unit, or (round 48, W2) a ward and its floor after a ward cue,
           stays a place whatever the model's sums say: typed by them, an address pattern over "6
           South. Pt W" would type it an address and widen it across the sentence's end */
        if (c->r->slots_max_words[DEID_SLOT_WARD_SIDE] || c->r->slots_max_words[DEID_SLOT_WARD_UNIT] ||
            c->r->slots_max_words[DEID_SLOT_WARD_CUE]) {
            int places = 1, pair = 0;
            for (size_t q = i; q <= j && places; q++) places = lab[q] == DEID_LOCATION;
            for (size_t q = i; q < j && places && !pair; q++) pair = deid__ward_pair(c, q);
            for (size_t q = i; q < j && places && !pair; q++) pair = deid__ward_in_brackets(c, q);
            for (size_t q = i; q < j && places && !pair; q++) pair = deid__ward_after_cue(c, q);
            if (places && pair) ty = DEID_LOCATION;
        }
        int numeric0 = ty == DEID_DATE || ty == DEID_PHONE || ty == DEID_FAX || ty == DEID_ID || ty == DEID_MRN ||
                       ty == DEID_SSN || ty == DEID_ZIP || ty == DEID_AGE_OVER_89;
        /* a date, phone or id starts with a digit or a month name, or where its evidence does */
        size_t i0 = i;
        while (numeric0 && i0 < j && evid[i0] < 0 && c->t[i0].shape != SH_NUM && c->t[i0].shape != SH_ALNUM &&
               !(c->t[i0].f & (F_MONTH | F_WEEKDAY)))
            i0++;
        size_t rs = c->t[i0].s, re = c->t[j].e;
        /* a number glued to a word ("CXR3/4", "x4-5678"): the word is no part of a date, phone
           or id; such a group is one span from its first digit */
        int numeric = ty == DEID_DATE || ty == DEID_PHONE || ty == DEID_FAX || ty == DEID_ID || ty == DEID_MRN ||
                      ty == DEID_SSN || ty == DEID_ZIP || ty == DEID_AGE_OVER_89;
        if (numeric) {
            size_t d = rs;
            if (c->t[i0].shape == SH_ALNUM)
                while (d < c->t[i0].e && !(c->text[d] >= '0' && c->text[d] <= '9')) d++;
            if (d < c->t[i0].e) rs = d;
        }
        int any = 0;
        size_t hs = rs, he = re;
        for (size_t k = 0; k < c->spans.n; k++) {
            const deid_span *sp = &c->spans.v[k];
            if (sp->type != ty || sp->end <= c->t[i0].s || sp->start >= re) continue;
            /* an evidence span over a word the keep filter kept does not bring it back */
            if (keeps_in(c, ki, sp)) continue;
            if (numeric) {
                if (sp->start < hs) hs = sp->start;
                if (sp->end > he) he = sp->end;
            } else {
                sv_add(out, sp->start, sp->end, ty);
            }
            any = 1;
        }
        if (numeric) {
            size_t fs = any ? hs : rs, fe = any ? he : re;
            if (ty == DEID_DATE) fe = deid__date_trim_clock(c->text, fs, fe);
            sv_add(out, fs, fe, ty);
        } else if (!any) {
            size_t e = re;
            if (c->t[j].shape == SH_INITIAL && e < c->len && c->text[e] == '.' && j > i) e++;
            sv_add(out, rs, e, ty);
        } else {
            for (size_t q = i; q <= j; q++) {
                int cov = 0;
                for (size_t k = 0; k < c->spans.n && !cov; k++) {
                    const deid_span *sp = &c->spans.v[k];
                    cov = sp->type == ty && sp->start < c->t[q].e && sp->end > c->t[q].s && !keeps_in(c, ki, sp);
                }
                if (!cov) sv_add(out, c->t[q].s, c->t[q].e, ty);
            }
        }
        i = j + 1;
    }
    free(evid);
    return out->oom ? -1 : 0;
}

/* "Johnson & Johnson", "Procter & Gamble": the evidence layer joins capitalised words across an
 * ampersand into a firm (find.c, ampersand_firms), but no training note holds such a firm, so the
 * model weighs each word alone, and a surname of the firm reads as a person (round 15, E3:
 * "Johnson" a name at 0.295, the second left). The ampersand is the evidence: once the model takes
 * any word of such a run as a name, place or organisation, the whole run is one organisation. A
 * run the model leaves alone stays alone (the rules' label alone never takes it). */
static void amp_firms(const ctx *c, int8_t *lab) {
    for (size_t a = 0; a < c->nt;) {
        if (c->t[a].lab != DEID_ORGANIZATION) {
            a++;
            continue;
        }
        size_t b = a;
        int amp = 0;
        while (b + 1 < c->nt && c->t[b + 1].lab == DEID_ORGANIZATION) {
            gapinfo g = deid__gap_info(c, b + 1);
            if (g.nl || g.comma || g.period || g.other || g.len > 3 || !(g.space_only || g.amp == 1)) break;
            amp |= g.amp == 1;
            b++;
        }
        int touched = 0;
        for (size_t q = a; q <= b; q++) touched |= lab[q] >= 0 && is_name_type(lab[q]);
        if (amp && touched)
            for (size_t q = a; q <= b; q++) lab[q] = DEID_ORGANIZATION;
        a = b + 1;
    }
}

/* The model's labels: lab[i] = type or -1; prob[i] = 1 - P(O) when not NULL. */
static int model_labels(const ctx *c, const deid_featbuf *fb, int8_t *lab, float *prob, float **P_out, keepinfo *ki,
                        cf_err *err) {
    const deid_model *m = c->m;
    size_t T = c->nt;
    float *E = cf_malloc(T * DEID_NL * sizeof *E), *P = cf_malloc(T * DEID_NL * sizeof *P);
    float *work = cf_malloc((4 * T * DEID_NL + 1) * sizeof *work);
    if (!E || !P || !work) {
        free(E);
        free(P);
        free(work);
        return cf_fail(err, CF_EINTERNAL, "out of memory for the model's scores");
    }
    deid__emissions(m, fb, T, E);
    deid__crf_marginals(E, T, m->trans, P, work);
    /* what the evidence layers say of each word: bit DEID_SRC_* set when a span of that layer
       covers it (tokens are sorted, so each span finds its first word by bisection) */
    uint8_t *evd = cf_calloc(T + 1, 1);
    if (!evd) {
        free(E);
        free(P);
        free(work);
        return cf_fail(err, CF_EINTERNAL, "out of memory for the model's scores");
    }
    for (size_t k = 0; k < c->spans.n; k++) {
        size_t lo = deid__first_word_ending_after(c, c->spans.v[k].start);
        for (size_t q = lo; q < T && c->t[q].s < c->spans.v[k].end; q++)
            evd[q] |= (uint8_t)(1u << ((c->spans.tag[k] >> 16) & 7));
    }
    /* round 30: a note dense with clinical keep-list words has its own threshold, when the model
       gives one (@threshold_dense) */
    float thr = m->threshold_dense > 0 && deid__keep_density(c) == '3' ? m->threshold_dense : m->threshold;
    for (size_t i = 0; i < T; i++) {
        const float *p = P + i * DEID_NL;
        lab[i] = -1;
        if (prob) prob[i] = 1 - p[0];
        if (p[0] >= thr) continue;
        int best = 1;
        for (int y = 2; y < DEID_NL; y++)
            if (p[y] > p[best]) best = y;
        int ty = best - 1;
        /* less evidence, more certainty needed: a shaped type (date, phone, id, ZIP, age...) with
           no pattern behind it is mostly a number in a clinical context ("HCT <21", "at 1500",
           "30cc"); a word no evidence layer marks at all is mostly a clinical word ("stoma") */
        int shaped = ty != DEID_NAME && ty != DEID_LOCATION && ty != DEID_ORGANIZATION && ty != DEID_ADDRESS;
        int pattern = (evd[i] >> DEID_SRC_PATTERN) & 1;
        int any = evd[i] || c->t[i].lab >= 0 || c->t[i].known >= 0;
        if (shaped && !pattern && m->threshold_nopattern > 0 && p[0] >= m->threshold_nopattern) continue;
        if (!any && m->threshold_bare > 0 && p[0] >= m->threshold_bare) continue;
        /* calendar sense: numbers joined by '/' that no reading makes a date ("PA 44/21",
           "CMV 500/15/8/60") are no date, whatever their context */
        if (ty == DEID_DATE && c->t[i].shape0 == SH_NUM && !deid__slash_date_possible(c, i)) continue;
        /* a single letter glued to a slash is shorthand ("w/", "n/v", "s/p"), no name or place */
        if ((ty == DEID_NAME || ty == DEID_LOCATION || ty == DEID_ORGANIZATION) && c->t[i].e - c->t[i].s == 1 &&
            ((c->t[i].e < c->len && c->text[c->t[i].e] == '/') || (c->t[i].s > 0 && c->text[c->t[i].s - 1] == '/')))
            continue;
        lab[i] = (int8_t)ty;
    }
    if (m->nursing_shorthand) shorthand_filter(c, lab, m->nursing_shorthand);
    /* a facility or street name of common words in a one-case note (find.c, mark_suffix_names):
       taken, with the rule's type, whether or not the model found it (a name, place or
       organisation label it gave is retyped), as the capitals would have had it in mixed case */
    for (size_t i = 0; i < T; i++)
        if (c->t[i].sfx && (lab[i] < 0 || lab[i] == DEID_NAME || lab[i] == DEID_LOCATION || lab[i] == DEID_ORGANIZATION))
            lab[i] = (int8_t)(c->t[i].sfx - 1);
    if (m->amp_firm_span) amp_firms(c, lab);
    one_case_names(c, lab);
    one_case_addresses(c, lab);
    if (ki) keep_filter(c, lab, evd, P, ki);
    deid__slot_rules(c, lab);
    /* a list of fields (code titles, item labels): names only with the field's own cue */
    if (ki) {
        uint8_t *field = cf_malloc(T + 1);
        if (!field) {
            free(evd);
            free(E);
            free(P);
            free(work);
            return cf_fail(err, CF_EINTERNAL, "out of memory for the model's scores");
        }
        /* one_case_catalogue answers -1 out of memory: kept apart from the && that would make it 1 */
        int cat = m->one_case_fields && (c->lower_doc || c->upper_doc) ? deid__one_case_catalogue(c) : 0;
        if (cat < 0) {
            free(field);
            free(evd);
            free(E);
            free(P);
            free(work);
            return cf_fail(err, CF_EINTERNAL, "out of memory for the model's scores");
        }
        if (deid__field_lines(c, field, cat)) field_filter(c, lab, evd, field, ki, cat, cat ? m->one_case_cue : 0, m->field_dates);
        /* a heading's word, a service after a clinician's name (fields.c, round 10) */
        deid__layout_labels(c, lab, evd, field);
        for (size_t q = 0; q < T; q++)
            if (field[q]) {
                lab[q] = -1;
                uint8_t why = field[q] == 1 ? KEEP_HEADING : field[q] == 2 ? KEEP_SERVICE : KEEP_COUNT;
                ki[q] = (keepinfo){why, (int32_t)q, (int32_t)q, (int32_t)q, (int32_t)q};
            }
        free(field);
        score_filter(c, lab, evd, ki);
        value_filter(c, lab, evd, ki);
    }
    /* S1/S2 last: the slot rules take a two-word line ("pain 6/10") as a field and its value after
       the model has left it, and a span is made of whatever labels are left here */
    if (m->nursing_shorthand >= 3) shorthand_filter_s(c, lab, m->nursing_shorthand);
    free(evd);
    free(E);
    free(work);
    if (P_out) *P_out = P;
    else free(P);
    return CF_OK;
}

int deid_find(const deid_text_rules *r, const char *text, size_t len, const deid_known *known,
              deid_span **spans, size_t *n, cf_err *err) {
    *spans = NULL;
    *n = 0;
    if (!r || (!text && len)) return cf_fail(err, CF_EINTERNAL, "deid_find: no rules or no text");
    if (len == 0) return CF_OK;
    ctx c;
    deid__ctx_init(&c, r, known, text, len);
    int rc = deid__evidence(&c, err);
    if (rc) goto done;
    deid__choose_model(&c);
    if (!r->model || c.nt == 0) {
        /* no model: the evidence spans as found */
        *n = deid__merge(c.spans.v, c.spans.n);
        *spans = c.spans.v;
        c.spans.v = NULL;
        goto done;
    }
    deid_featbuf fb = {0};
    rc = deid__features(&c, c.m, 0, &fb, err);
    int8_t *lab = rc ? NULL : cf_malloc(c.nt);
    float *P = NULL;
    if (!rc && !lab) rc = cf_fail(err, CF_EINTERNAL, "out of memory");
    keepinfo *ki = rc ? NULL : cf_calloc(c.nt + 1, sizeof *ki);
    if (!rc && !ki) rc = cf_fail(err, CF_EINTERNAL, "out of memory");
    if (!rc) rc = model_labels(&c, &fb, lab, NULL, &P, ki, err);
    spanvec out = {0};
    if (!rc) {
        out.cur_tag = 0;
        if (spans_from_labels(&c, lab, P, ki, &out)) rc = cf_fail(err, CF_EINTERNAL, "out of memory");
        /* the record's known strings are taken whatever the model says */
        for (size_t k = 0; !rc && k < c.spans.n; k++)
            if ((c.spans.tag[k] >> 16) == DEID_SRC_KNOWN) sv_add(&out, c.spans.v[k].start, c.spans.v[k].end, c.spans.v[k].type);
        for (size_t i = 0; !rc && i < c.nt; i++)
            if (c.t[i].known >= 0 && !c.t[i].cov) sv_add(&out, c.t[i].s, c.t[i].e, c.t[i].known);
        if (out.oom) rc = cf_fail(err, CF_EINTERNAL, "out of memory");
    }
    free(lab);
    free(ki);
    free(P);
    deid__featbuf_free(&fb);
    if (!rc) {
        *n = deid__merge(out.v, out.n);
        *spans = out.v;
        out.v = NULL;
    }
    free(out.v);
    free(out.tag);
done:
    deid__ctx_free(&c);
    return rc;
}

/* ---- explain ----------------------------------------------------------------------------- */

int deid_find_explain(const deid_text_rules *r, const char *text, size_t len, const deid_known *known,
                      deid_explained **out, size_t *n_out, cf_err *err) {
    *out = NULL;
    *n_out = 0;
    deid_span *sp = NULL;
    size_t n = 0;
    int rc = deid_find(r, text, len, known, &sp, &n, err);
    /* with no span, the words the keep filter kept are still listed (round 9: they were not) */
    if (rc || (n == 0 && (!r->model || len == 0))) {
        free(sp);
        return rc;
    }
    deid_explained *ex = cf_calloc(n ? n : 1, sizeof *ex);
    if (!ex) {
        free(sp);
        return cf_fail(err, CF_EINTERNAL, "out of memory");
    }
    for (size_t k = 0; k < n; k++) {
        ex[k].start = sp[k].start;
        ex[k].end = sp[k].end;
        ex[k].type = sp[k].type;
        ex[k].prob = 1;
        snprintf(ex[k].why, sizeof ex[k].why, "%s", r->model ? "record's known string" : "evidence layers (no model)");
    }
    free(sp);
    if (!r->model) {
        *out = ex;
        *n_out = n;
        return CF_OK;
    }
    ctx c;
    deid__ctx_init(&c, r, known, text, len);
    deid_featbuf fb = {0};
    float *P = NULL, *prob = NULL;
    int8_t *lab = NULL;
    fb.no_cache = 1; /* every feature by its id, to list them */
    rc = deid__evidence(&c, err);
    /* the model that decided (round 31): said in every why text when it is the dense one */
    int dense = rc ? 0 : deid__choose_model(&c);
    const char *mtag = dense ? " model=dense;" : "";
    if (!rc) rc = deid__features(&c, c.m, 0, &fb, err);
    if (!rc) {
        lab = cf_malloc(c.nt + 1);
        prob = cf_malloc((c.nt + 1) * sizeof *prob);
        if (!lab || !prob) rc = cf_fail(err, CF_EINTERNAL, "out of memory");
    }
    keepinfo *ki = NULL;
    if (!rc) {
        ki = cf_calloc(c.nt + 1, sizeof *ki);
        if (!ki) rc = cf_fail(err, CF_EINTERNAL, "out of memory");
    }
    if (!rc) rc = model_labels(&c, &fb, lab, prob, &P, ki, err);
    for (size_t k = 0; !rc && k < n; k++) {
        /* the most probable word of the span, and its features by contribution to the span's
           label against O */
        size_t best = (size_t)-1;
        for (size_t i = 0; i < c.nt; i++) {
            if (c.t[i].e <= ex[k].start || c.t[i].s >= ex[k].end) continue;
            if (best == (size_t)-1 || prob[i] > prob[best]) best = i;
        }
        if (best == (size_t)-1 || lab[best] < 0) continue;
        ex[k].prob = prob[best];
        int y = ex[k].type + 1;
        enum { TOP = 5 };
        float topv[TOP];
        uint32_t topi[TOP];
        int nt = 0;
        for (size_t q = fb.start[best]; q < fb.start[best + 1]; q++) {
            uint32_t id = fb.ids[q];
            float v = c.m->w[(size_t)id * DEID_NL + y] - c.m->w[(size_t)id * DEID_NL];
            int pos = nt;
            while (pos > 0 && topv[pos - 1] < v) pos--;
            if (pos >= TOP) continue;
            if (nt < TOP) nt++;
            for (int z = nt - 1; z > pos; z--) {
                topv[z] = topv[z - 1];
                topi[z] = topi[z - 1];
            }
            topv[pos] = v;
            topi[pos] = id;
        }
        size_t wl = 0;
        wl += (size_t)snprintf(ex[k].why + wl, sizeof ex[k].why - wl, "P(PHI)=%.3f;%s", (double)prob[best], mtag);
        for (int z = 0; z < nt && wl < sizeof ex[k].why; z++) {
            size_t fl;
            const char *fn = strmap_str(&c.m->feats, topi[z], &fl);
            wl += (size_t)snprintf(ex[k].why + wl, sizeof ex[k].why - wl, " %.*s %+.2f", (int)(fl > 40 ? 40 : fl), fn,
                                   (double)topv[z]);
        }
    }
    /* the words the keep filter kept, one line per entry that kept them, after the spans */
    size_t nk = 0;
    for (size_t i = 0; !rc && i < c.nt; i++)
        if (ki[i].why && (i == 0 || ki[i - 1].why != ki[i].why || ki[i - 1].lo != ki[i].lo)) nk++;
    if (!rc && nk) {
        deid_explained *nx = cf_realloc_array(ex, n + nk, sizeof *ex);
        if (!nx) rc = cf_fail(err, CF_EINTERNAL, "out of memory");
        else ex = nx;
    }
    for (size_t i = 0; !rc && nk && i < c.nt; i++) {
        if (!ki[i].why || (i > 0 && ki[i - 1].why == ki[i].why && ki[i - 1].lo == ki[i].lo)) continue;
        size_t e = i;
        while (e + 1 < c.nt && ki[e + 1].why == ki[i].why && ki[e + 1].lo == ki[i].lo) e++;
        deid_explained *x = &ex[n++];
        memset(x, 0, sizeof *x);
        x->start = c.t[i].s;
        x->end = c.t[e].e;
        x->kept = 1;
        /* the model's type and probability for the most probable word */
        size_t best = i;
        for (size_t q = i; q <= e; q++)
            if (prob[q] > prob[best]) best = q;
        int by = 1;
        for (int y = 2; y < DEID_NL; y++)
            if (P[best * DEID_NL + y] > P[best * DEID_NL + by]) by = y;
        x->type = by - 1;
        x->prob = prob[best];
        const keepinfo *k = &ki[i];
        size_t es = c.t[k->elo].s, ee = c.t[k->ehi].e;
        snprintf(x->why, sizeof x->why, "P(PHI)=%.3f;%s kept: %s \"%.*s\"", (double)prob[best], mtag, KEEP_WHY[k->why],
                 (int)(ee - es > 60 ? 60 : ee - es), text + es);
    }
    free(ki);
    free(P);
    free(prob);
    free(lab);
    deid__featbuf_free(&fb);
    deid__ctx_free(&c);
    if (rc || n == 0) {
        free(ex);
        return rc;
    }
    *out = ex;
    *n_out = n;
    return CF_OK;
}
