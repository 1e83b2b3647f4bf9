/* The evidence layers of the text de-identifier: tokens, word classes, patterns, the record's
 * known strings and the rule detectors. Every span they find goes into ctx.spans with its source,
 * and each word's rule label into tok.lab; features.c turns all of it into features, and decode.c
 * lets the fitted model (model.c) decide (deid_find lives there). Without a model the spans are taken as found, which
 * is the engine of the first rounds described below.
 *
 * Two kinds of evidence are combined:
 *  1. Patterns (patterns.tsv, PCRE2 JIT) for identifiers with a shape: e-mails, URLs, IPs, SSNs,
 *     phone and fax numbers, ids, dates, ages over 89, street addresses, ZIP codes.
 *  2. Token rules for identifiers without a shape: names, places, organisations, foreign-style
 *     street addresses and the lines of an address block. The text is split into words; each
 *     word gets its classes from the lists (given/family name, place, region, common English,
 *     clinical vocabulary, stop word, cue word) and a shape (Capitalised, UPPER, lower, initial,
 *     number). Runs of capitalised words are then judged by what they contain and by the cue
 *     words around them:
 *       - a title or name cue before ("Dr.", "Mrs.", "name is", "seen by") or a credential after
 *         ("MD", "RN") makes the run a name;
 *       - a place cue before ("lives in", "moved to", or a bare "in"/"from" for words that are no
 *         English) makes it a place; an organisation suffix after ("Inc", "Hospital") or cue
 *         before ("works at") makes it an organisation;
 *       - without a cue, a run is a name when it holds a listed name that is not also a common
 *         English or clinical word, or words that are in no list at all (an unknown capitalised
 *         word in a clinical note is far more often a name than anything else), or the
 *         "First M. Last" shape; a lone ambiguous word ("Reed", "Grace") needs a cue or a
 *         neighbouring name ("Graves and Reed" after "Monjeau,").
 *     Words the record knows (deid_known) are names wherever they appear. Address blocks,
 *     letter heads and "city + postal code" (or "postal code + city") are recognised from the
 *     line structure; lower-case street names and places are taken after their cues, "Town,
 *     State" and "X & Y" firms from their punctuation.
 *  3. Notes written all in one case are re-cased in the word shapes first (truecase()), so that
 *     the rules above, which read capitals, see listed names and places as capitalised. Passes
 *     after the runs: speaker labels, firm shapes, lists of names, and names that recur in the
 *     same note (propagate_names()).
 * Most patterns are tried only at candidate positions (digit runs, words holding a digit, cue
 * words of an anchor kind) rather than scanned over the text: that keeps the engine at several
 * MB/s per core. Overlapping spans are merged; the merged span takes the type of its longest
 * part (ties: the lower type value in text.h). */
#include "deid/find_int.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- words ------------------------------------------------------------------------------- */

static uint8_t shape_of(const char *s, size_t len, uint8_t *nletters) {
    size_t i = 0;
    int up = 0, lo = 0, dig = 0, nocase = 0, first = 0, letters = 0;
    while (i < len) {
        unsigned char b = (unsigned char)s[i];
        if (b < 0x80) {
            /* ASCII, most of every note, without the calls to decode and classify it: what
               they would answer (a letter's case by its range) */
            i++;
            if (b >= '0' && b <= '9') dig++;
            else if ((b | 0x20) >= 'a' && (b | 0x20) <= 'z') {
                letters++;
                int c = b <= 'Z' ? 1 : -1;
                if (c > 0) up++;
                else lo++;
                if (letters == 1) first = c;
            }
            continue;
        }
        uint32_t cp = deid_utf8_next(s, len, &i);
        if (cp >= '0' && cp <= '9') {
            dig++;
            continue;
        }
        if (!deid_cp_is_letter(cp)) continue;
        if (cp >= 0x300 && cp <= 0x36F) continue; /* combining mark */
        letters++;
        int c = deid_cp_is_upper(cp) ? 1 : deid_cp_is_lower(cp) ? -1 : 0;
        if (c > 0) up++;
        else if (c < 0) lo++;
        else nocase++;
        if (letters == 1) first = c;
    }
    *nletters = (uint8_t)(letters > 255 ? 255 : letters);
    if (!letters) return SH_NUM;
    if (dig) return SH_ALNUM;
    if (!up && !lo) return SH_NOCASE;
    if (first > 0) {
        if (letters == 1) return SH_INITIAL;
        if (lo == 0) return SH_UPPER;
        return SH_CAP;
    }
    return SH_LOWER;
}

#define F_NAMES (F_FIRST | F_LAST)
#define F_AMBIG (F_ENGLISH | F_MEDICAL | F_NOT_NAME | F_STOP)
#define F_ANYLIST (F_FIRST | F_LAST | F_PLACE | F_REGION | F_ENGLISH | F_MEDICAL | F_STOP | F_NOT_NAME | \
                   F_TITLE | F_NAME_BEFORE | F_NAME_AFTER | F_ORG_AFTER | F_STREET | F_UNIT | F_PARTICLE | \
                   F_MEASURE | F_MONTH | F_WEEKDAY | F_ORG_BEFORE | F_PLACE_BEFORE | F_STATE_ABBR | \
                   F_ADDR_BEFORE | F_NAME_WEAK | F_PLACE_WEAK)

/* Length of a lower-cased word without its possessive ending ("smith's", "smith\u2019s" ->
 * "smith"); the whole length when it has none. */
static size_t possessive_stem(const char *low, size_t ll) {
    if (ll > 2 && low[ll - 1] == 's' && low[ll - 2] == '\'') return ll - 2;
    if (ll > 4 && low[ll - 1] == 's' && !memcmp(low + ll - 4, "\xE2\x80\x99", 3)) return ll - 4;
    return ll;
}

/* Round 34: is w an entry of clinical_keep_extra.txt (deid_int.h, keep_extra)? */
static uint8_t keep_extra_word(const deid_text_rules *r, const char *w, size_t len) {
    return r->keep_extra.count && strmap_find(&r->keep_extra, w, len) >= 0;
}

/* Word classes with fallbacks: a possessive is looked up without "'s"; a hyphenated word that is
 * in no list takes the name/place classes of any part and the common-word classes only if every
 * part has them ("Mayo-Walters" is a name, "follow-up" is English). *extra (round 34) is set when
 * the word, or where its classes are looked up (a possessive's stem, a hyphenated word's first
 * part), is an entry of clinical_keep_extra.txt; the classes themselves never depend on that file. */
static deid_flags word_flags(const deid_text_rules *r, const char *low, size_t ll, uint8_t *extra) {
    deid_flags f = deid_word_flags(r, low, ll);
    *extra = keep_extra_word(r, low, ll);
    if (f & ~F_PHRASE_HEAD) return f;
    size_t stem = possessive_stem(low, ll);
    if (stem < ll) {
        deid_flags g = deid_word_flags(r, low, stem);
        *extra |= keep_extra_word(r, low, stem);
        if (g) return g | (f & F_PHRASE_HEAD);
    }
    const char *ap = memchr(low, '\'', ll);
    if (ap && !(f & ~F_PHRASE_HEAD)) {
        /* contractions: "I'll", "don't", "they're" are English when the stem is */
        size_t pl = (size_t)(ap - low), sl = ll - pl - 1;
        const char *suf = ap + 1;
        int contraction = (sl == 1 && (*suf == 's' || *suf == 't' || *suf == 'd' || *suf == 'm')) ||
                          (sl == 2 && (!memcmp(suf, "ve", 2) || !memcmp(suf, "ll", 2) || !memcmp(suf, "re", 2)));
        if (contraction && pl > 0) {
            deid_flags g = deid_word_flags(r, low, pl);
            if (g & (F_ENGLISH | F_STOP)) return f | F_ENGLISH;
            if (pl > 1 && low[pl - 1] == 'n' && *suf == 't') { /* "don't" -> "do", "won't" */
                g = deid_word_flags(r, low, pl - 1);
                if (g & (F_ENGLISH | F_STOP)) return f | F_ENGLISH;
            }
        }
    }
    if (memchr(low, '-', ll)) {
        deid_flags uni = 0, inter = F_ENGLISH | F_MEDICAL | F_STOP;
        size_t p = 0;
        while (p < ll) {
            size_t q = p;
            while (q < ll && low[q] != '-') q++;
            deid_flags g = q > p ? deid_word_flags(r, low + p, q - p) : 0;
            uni |= g & (F_NAMES | F_PLACE | F_REGION);
            /* anchor kinds of the first part: "ninety-two" starts like "ninety" */
            if (p == 0) {
                uni |= g & ~(deid_flags)0xFFFFFFFFu;
                *extra |= keep_extra_word(r, low, q);
            }
            inter &= g;
            p = q + 1;
        }
        return f | uni | inter;
    }
    return f;
}

/* Does an unlisted word look like clinical vocabulary (med_prefix / med_suffix of cues.tsv)? */
static int clinical_shape(const deid_text_rules *r, const char *low, size_t ll) {
    for (size_t k = 0; k < r->n_med_suffixes; k++) {
        size_t sl = strlen(r->med_suffixes[k]);
        if (sl < ll && !memcmp(low + ll - sl, r->med_suffixes[k], sl)) return 1;
    }
    for (size_t k = 0; k < r->n_med_prefixes; k++) {
        size_t pl = strlen(r->med_prefixes[k]);
        if (pl + 3 <= ll && !memcmp(low, r->med_prefixes[k], pl)) return 1;
    }
    return 0;
}

/* Is the gap before word i (the text between word i-1 and word i) only spaces and tabs? */
static int gap_space(const ctx *c, size_t i) {
    size_t a = i ? c->t[i - 1].e : 0, b = c->t[i].s;
    if (b == a) return i == 0;
    for (size_t k = a; k < b; k++)
        if (c->text[k] != ' ' && c->text[k] != '\t') return 0;
    return 1;
}

/* Gap summary: counts of newlines and of each punctuation of interest. */
#define gap_info deid__gap_info
gapinfo deid__gap_info(const ctx *c, size_t i) {
    gapinfo g = {0};
    size_t a = i ? c->t[i - 1].e : 0, b = i < c->nt ? c->t[i].s : c->len;
    g.len = (int)(b - a);
    g.space_only = 1;
    /* most gaps are one space (or none): nothing to count */
    if (b - a <= 1 && (b == a || c->text[a] == ' ' || c->text[a] == '\t')) return g;
    /* characters after the gap's last newline are a line prefix ("> ", "??? ") in quoted or
       pasted blocks: their punctuation ends no sentence */
    size_t last_nl = a;
    for (size_t k = a; k < b; k++)
        if (c->text[k] == '\n') last_nl = k;
    for (size_t k = a; k < b; k++) {
        char ch = c->text[k];
        if (ch == ' ' || ch == '\t') continue;
        if (k > last_nl && c->text[last_nl] == '\n' && (ch == '?' || ch == '!' || ch == '>' || ch == '|')) {
            g.space_only = 0;
            continue;
        }
        g.space_only = 0;
        if (ch == '\n') g.nl++;
        else if (ch == '\r') continue;
        else if (ch == ',') g.comma++;
        else if (ch == '.') g.period++;
        else if (ch == ':') g.colon++;
        else if (ch == '&') g.amp++;
        else if (ch == '?' || ch == '!' || ch == ';') {
            g.sentence++;
            g.other++;
        } else g.other++;
    }
    return g;
}

/* Words j-1 and j on one line, close together: no line break, at most three characters and no
 * sentence end between them. */
int deid__close_on_line(const ctx *c, size_t j) {
    gapinfo g = deid__gap_info(c, j);
    return !g.nl && g.len <= 3 && !g.sentence;
}

/* Whether words [a, b] (one line) spell an entry of a filter-only phrase list (keep_roles.txt,
 * keep_name_verbs.txt): lower-cased, words joined by one space. */
int deid__phrase_is(const ctx *c, const strmap *m, size_t a, size_t b) {
    char key[256];
    size_t kl = 0;
    for (size_t q = a; q <= b; q++) {
        if (q >= c->nt || (q > a && !deid__close_on_line(c, q))) return 0;
        if (kl + 1 + (c->t[q].e - c->t[q].s) * 2 >= sizeof key) return 0;
        if (q > a) key[kl++] = ' ';
        size_t wl = deid_lower(c->text + c->t[q].s, c->t[q].e - c->t[q].s, key + kl, sizeof key - kl);
        if (wl == (size_t)-1) return 0;
        kl += wl;
    }
    return strmap_find(m, key, kl) >= 0;
}

/* The longest entry of m (of at most maxw words) ending at word j: its first word, or -1. */
long deid__phrase_ending_at(const ctx *c, const strmap *m, int maxw, size_t j) {
    for (int n = maxw; n >= 1; n--)
        if ((size_t)n <= j + 1 && deid__phrase_is(c, m, j + 1 - (size_t)n, j)) return (long)(j + 1 - (size_t)n);
    return -1;
}

/* The number of words of the longest entry of m (of at most maxw words) starting at word j, or 0. */
int deid__phrase_starting_at(const ctx *c, const strmap *m, int maxw, size_t j) {
    for (int n = maxw; n >= 1; n--)
        if (j + (size_t)n <= c->nt && deid__phrase_is(c, m, j, j + (size_t)n - 1)) return n;
    return 0;
}

/* A keep_name_verbs.txt entry ("aware", "paged", "at bedside") starting at word j. */
int deid__verb_starting_at(const ctx *c, size_t j) {
    return deid__phrase_starting_at(c, &c->r->keep_verbs, c->r->keep_verbs_max_words, j) > 0;
}

static void tokenize(ctx *c) {
    const deid_text_rules *r = c->r;
    size_t pos = 0, ws, we;
    char low[256];
    while (deid_next_word(c->text, c->len, &pos, &ws, &we)) {
        tok t;
        memset(&t, 0, sizeof t);
        t.s = ws;
        t.e = we;
        t.place_end = t.org_end = t.orgname_end = t.after_end = -1;
        t.known = -1;
        t.lab = -1;
        t.covtype = -1;
        t.shape = shape_of(c->text + ws, we - ws, &t.nletters);
        t.shape0 = t.shape;
        size_t ll = (we - ws) < sizeof low ? deid_lower(c->text + ws, we - ws, low, sizeof low) : (size_t)-1;
        if (ll != (size_t)-1) {
            t.f = word_flags(r, low, ll, &t.keep_extra);
            if (c->k && c->k->words.count) {
                int64_t id = strmap_find(&c->k->words, low, ll);
                if (id < 0 && t.shape == SH_ALNUM) {
                    /* "Abe604": Synthea-style names carry digits; also try without them */
                    size_t l2 = ll;
                    while (l2 && low[l2 - 1] >= '0' && low[l2 - 1] <= '9') l2--;
                    if (l2 >= 2 && l2 < ll) id = strmap_find(&c->k->words, low, l2);
                    if (id >= 0) t.shape = SH_CAP;
                }
                if (id >= 0) t.known = (int8_t)c->k->word_type[id];
            }
            /* the initials of an organisation the record knows, unless they spell a clinical,
               English or unit word ("ICU" of an "Intensive Care Unit" stays) */
            if (t.known < 0 && c->k && c->k->initials.count && strmap_find(&c->k->initials, low, ll) >= 0 &&
                !(t.f & (F_KEEP | F_MEDICAL | F_ENGLISH | F_MEASURE | F_STATE_ABBR | F_STOP | F_MONTH | F_WEEKDAY)))
                t.known = DEID_ORGANIZATION;
        }
        t.oov = (t.shape == SH_CAP || t.shape == SH_UPPER || t.shape == SH_LOWER) &&
                !(t.f & F_ANYLIST) && t.nletters >= 2;
        if (t.oov && t.nletters >= 7 && ll != (size_t)-1 && clinical_shape(r, low, ll)) {
            t.f |= F_MEDICAL; /* "Normocephalic", "Tachycardic", "Thromboprophylaxis" */
            t.oov = 0;
            t.clin_shape = 1;
        }
        c->t[c->nt++] = t;
    }
    /* sentence starts: first word, after a newline, or after . ! ? : unless the previous word
     * is a title or an initial ("Dr. Smith", "J. Smith") */
    for (size_t i = 0; i < c->nt; i++) {
        if (i == 0) {
            c->t[i].sent = 1;
            continue;
        }
        gapinfo g = gap_info(c, i);
        int prev_abbrev = (c->t[i - 1].f & F_TITLE) || c->t[i - 1].shape == SH_INITIAL;
        if (g.nl || g.sentence || ((g.period || g.colon) && !prev_abbrev)) c->t[i].sent = 1;
        /* quotes and brackets at a sentence start */
        if (!g.space_only && !g.comma && !g.period && !g.colon && !g.nl && g.other) {
            for (size_t k = c->t[i - 1].e; k < c->t[i].s; k++)
                if (c->text[k] == '"' || c->text[k] == '(' || c->text[k] == '[') c->t[i].sent = 1;
        }
    }
}

/* A note written all in one letter case (all-caps or all-lower-case nursing notes are common)
 * carries no capitalisation evidence, and every rule below reads capitals. Such a note is
 * re-cased in the tokens' shapes (the text is untouched): a listed name, place or region that is
 * no common, clinical or cue word becomes Capitalised; every other word becomes lower case, except
 * that unknown words of an all-caps note stay upper case, where the rules read them as they read
 * any upper-case word (an abbreviation alone, "PTCA"; part of a name or place next to other name
 * evidence or after a cue, "MR. BAADER", "FROM REMNIKU"). A hyphenated word is capitalised only
 * when every part is a listed name ("garcia-smith", not "bi-level"). A note counts as one-case
 * when at most one word in fifty breaks the pattern (an "I", a unit, a stray acronym). */
/* Is word i hyphenated with every part a listed name ("garcia-smith", "Mayo-Walters")? The
 * family-name list is long enough to hold many rare words; two names joined are a name. */
static int all_parts_names(const ctx *c, size_t i) {
    const char *w = c->text + c->t[i].s;
    size_t n = c->t[i].e - c->t[i].s, p = 0, parts = 0;
    if (!memchr(w, '-', n)) return 0;
    while (p <= n) {
        size_t q = p;
        while (q < n && w[q] != '-') q++;
        char low[64];
        size_t ll = q > p && q - p < sizeof low ? deid_lower(w + p, q - p, low, sizeof low) : (size_t)-1;
        if (ll == (size_t)-1 || !(deid_word_flags(c->r, low, ll) & F_NAMES)) return 0;
        parts++;
        p = q + 1;
    }
    return parts >= 2;
}

/* In a one-case note, one or two common words between a place cue and an organisation or street
 * suffix ("at linden court", "on kettle pond rd", "rehab vs oak house") are a facility or street name:
 * in mixed case the capitals would say so, and the rules and the model read them ("at Linden
 * Court"). In one case the model weighs such words as the common words they are and mostly
 * leaves them (round 8 of docs/DEID.md); this rule marks them (tok.sfx) and the model's labels
 * take them when the model has none there (decode.c, model_labels). Word shapes are untouched, so
 * the model's features, and the trainer's output, do not change. The cue is a listed place,
 * organisation or address cue ("at", "to", "moved to", "works at", "lives at"), or "vs"/"versus"
 * (a choice of places to go); "on"/"off" count only before a main street word (Road, Street: "on
 * bed rest" stays). Words that are stop words, clinical vocabulary, measures, cues, or that open a
 * listed suffix phrase ("high school", "medical center") are never taken, nor is a suffix right
 * after its cue ("at rest"). The suffix is a word of the street list (Court, View, Rd; a
 * two-letter one only if a main street word, "rd" but not "ft"), or House, a facility word
 * taken here only (it is no cue word elsewhere; the organisation-suffix list is not used: it
 * holds words such as "limited" that follow "to" as verbs do, and "hospital" and "clinic" after
 * a place cue are mostly a care setting, no name). "of" alone is no cue here (in diagnosis
 * titles it precedes anatomy, and "radial" is a street word). A street suffix makes
 * a LOCATION, House an ORGANIZATION. */
static const char *const sfx_cue_extra[] = {"vs", "versus", NULL};
static const char *const sfx_cue_street[] = {"on", "off", NULL};
static const char *const sfx_cue_of[] = {"of", NULL};
static const char *const sfx_suffix_extra[] = {"house", NULL};

/* Is word i, lower-cased, one of the words in set (a NULL-terminated list)? */
static int word_in(const ctx *c, size_t i, const char *const *set) {
    char low[16];
    size_t n = c->t[i].e - c->t[i].s;
    if (n >= sizeof low) return 0;
    size_t ll = deid_lower(c->text + c->t[i].s, n, low, sizeof low);
    if (ll == (size_t)-1) return 0;
    for (const char *const *w = set; *w; w++)
        if (strlen(*w) == ll && !memcmp(*w, low, ll)) return 1;
    return 0;
}

static void mark_suffix_names(ctx *c) {
    const deid_flags cue = F_PLACE_WEAK | F_PLACE_BEFORE | F_ORG_BEFORE | F_ADDR_BEFORE;
    const deid_flags bad = F_STOP | F_MEDICAL | F_MEASURE | F_MONTH | F_WEEKDAY | F_TITLE | F_UNIT | F_PRONOUN |
                           F_NAME_BEFORE | F_NAME_IS | F_PLACE_BEFORE | F_PLACE_WEAK | F_ORG_BEFORE | F_ADDR_BEFORE;
    for (size_t j = 2; j < c->nt; j++) {
        const tok *sfx = &c->t[j];
        int street = (sfx->f & F_STREET) != 0, street_main = (sfx->f & F_STREET_MAIN) != 0;
        if (sfx->nletters < 2 || (sfx->f & (F_MEASURE | F_UNIT))) continue;
        if (!street && !word_in(c, j, sfx_suffix_extra)) continue;
        /* a short abbreviation is a street word only when it is a main one ("rd", "st", not "ft") */
        if (sfx->nletters < 3 && !street_main) continue;
        if (!gap_space(c, j)) continue;
        /* the words before the suffix: one or two, single spaces on one line */
        for (size_t nw = 1; nw <= 2 && nw < j; nw++) {
            size_t a = j - nw; /* first word of the name */
            const tok *w = &c->t[a];
            if (w->nletters < 2 || w->shape0 == SH_NUM || w->shape0 == SH_ALNUM || (w->f & bad) ||
                ((w->start & ~w->f) & (F_ORG_AFTER | F_PLACE_BEFORE | F_ORG_BEFORE)))
                break;
            if (a + 1 < j && !gap_space(c, a + 1)) break;
            if (!gap_space(c, a)) continue; /* the cue must sit right before, on the line */
            const tok *q = &c->t[a - 1];
            /* "of" alone is no place cue here (diagnosis titles: "fracture of ..."), "resident of" is */
            deid_flags qc = word_in(c, a - 1, sfx_cue_of) ? (q->cue_end & ~(deid_flags)F_PLACE_WEAK) : q->cue_end;
            int is_cue = (qc & cue) || word_in(c, a - 1, sfx_cue_extra) ||
                         (street_main && word_in(c, a - 1, sfx_cue_street));
            if (!is_cue) continue;
            uint8_t ty = (uint8_t)(1 + (street && !(sfx->f & F_ORG_AFTER) ? DEID_LOCATION : DEID_ORGANIZATION));
            for (size_t k = a; k <= j; k++) c->t[k].sfx = ty;
            break;
        }
    }
}

static void truecase(ctx *c) {
    size_t n_cap = 0, n_lower = 0, n_upper = 0;
    for (size_t i = 0; i < c->nt; i++) {
        const tok *w = &c->t[i];
        if (w->nletters < 2) continue;
        n_cap += w->shape == SH_CAP;
        n_lower += w->shape == SH_LOWER;
        n_upper += w->shape == SH_UPPER;
    }
    size_t words = n_cap + n_lower + n_upper;
    int lower = n_lower >= 5 && n_cap * 50 <= words;
    int upper = n_upper >= 5 && (n_cap + n_lower) * 50 <= words;
    c->lower_doc = lower;
    c->upper_doc = upper;
    if (!lower && !upper) return;
    size_t phrase_end = 0; /* words of a listed multi-word place keep their case: the phrase rules
                              for lower-case places read them ("moved to new york") */
    for (size_t i = 0; i < c->nt; i++) {
        tok *w = &c->t[i];
        if (w->place_end > (int)i && (size_t)w->place_end + 1 > phrase_end) phrase_end = (size_t)w->place_end + 1;
        if (i < phrase_end && lower) continue;
        if (w->nletters < 2 || w->shape != (lower ? SH_LOWER : SH_UPPER)) continue;
        deid_flags f = w->f;
        int proper = (f & (F_NAMES | F_PLACE | F_REGION | F_ORGNAME)) &&
                     !(f & (F_ENGLISH | F_MEDICAL | F_STOP | F_NOT_NAME | F_MEASURE | F_NAME_WEAK | F_PLACE_WEAK |
                            F_NAME_BEFORE | F_UNIT | F_PARTICLE));
        if (proper && memchr(c->text + w->s, '-', w->e - w->s)) proper = all_parts_names(c, i);
        /* an organisation suffix after a re-cased name keeps the capital it has in mixed case:
           "calvert hospital" reads as "Calvert Hospital", "readmission services" stays */
        int suffix = (f & F_ORG_AFTER) && i > 0 && c->t[i - 1].shape == SH_CAP && gap_space(c, i);
        if (w->known >= 0 || proper || suffix || (f & (F_TITLE | F_MONTH | F_WEEKDAY))) w->shape = SH_CAP;
        else if (!(upper && w->oov)) w->shape = SH_LOWER;
    }
    /* "eric g. samoylova": a given name, one letter and an unknown or listed word read as
       "Eric G. Samoylova" */
    for (size_t i = 0; i + 2 < c->nt; i++) {
        tok *w = c->t + i;
        if (w->shape != SH_CAP || !(w->f & F_FIRST) || w[1].nletters != 1 || w[1].e - w[1].s != 1 ||
            !gap_space(c, i + 1) || gap_info(c, i + 2).nl || gap_info(c, i + 2).len > 2)
            continue;
        if (w[2].nletters < 2 || (w[2].f & (F_STOP | F_ENGLISH | F_MEDICAL | F_MEASURE)) || !((w[2].f & F_NAMES) || w[2].oov))
            continue;
        w[1].shape = SH_INITIAL;
        w[2].shape = SH_CAP;
    }
    mark_suffix_names(c);
}

/* Multi-word list entries and known phrases, matched on lower-cased words joined by a space,
 * with any short same-line gap between words ("St. Louis", "M.D.", "Mora de Rubielos"). */
static void match_phrases(ctx *c) {
    const deid_text_rules *r = c->r;
    char key[512], low[256];
    int maxw = r->max_phrase_words;
    if (c->k && c->k->max_phrase_words > maxw) maxw = c->k->max_phrase_words;
    for (size_t i = 0; i < c->nt; i++) {
        tok *ti = &c->t[i];
        ti->cue_end |= ti->f;
        ti->start |= ti->f;
        int rule_head = (ti->f & F_PHRASE_HEAD) != 0;
        int known_head = 0;
        size_t kl = deid_lower(c->text + ti->s, ti->e - ti->s, key, sizeof key);
        if (kl == (size_t)-1) continue;
        if (c->k && c->k->heads.count) known_head = strmap_find(&c->k->heads, key, kl) >= 0;
        if (!rule_head && !known_head) continue;
        for (size_t j = i + 1; j < c->nt && (int)(j - i) < maxw; j++) {
            gapinfo g = gap_info(c, j);
            if (g.nl || g.len > 3 || g.sentence) break;
            size_t wl = deid_lower(c->text + c->t[j].s, c->t[j].e - c->t[j].s, low, sizeof low);
            if (wl == (size_t)-1 || kl + 1 + wl >= sizeof key) break;
            key[kl++] = ' ';
            memcpy(key + kl, low, wl);
            kl += wl;
            if (rule_head) {
                deid_flags pf = deid_phrase_flags(r, key, kl);
                if (!(pf & F_PHRASE_HEAD)) rule_head = 0; /* no longer entry can follow */
                pf &= ~(deid_flags)F_PHRASE_HEAD;
                if (pf) {
                    c->t[j].cue_end |= pf;
                    ti->start |= pf;
                    if (pf & (F_PLACE | F_REGION)) ti->place_end = (int)j;
                    if (pf & F_ORG_AFTER) ti->org_end = (int)j;
                    if (pf & F_ORGNAME) ti->orgname_end = (int)j;
                    if (pf & F_NAME_AFTER) ti->after_end = (int)j;
                }
            }
            if (known_head) {
                int64_t id = strmap_find(&c->k->phrases, key, kl);
                if (id >= 0) {
                    c->spans.cur_tag = (uint32_t)DEID_SRC_KNOWN << 16;
                    sv_add(&c->spans, ti->s, c->t[j].e, c->k->phrase_type[id]);
                    for (size_t q = i; q <= j; q++) c->t[q].cov = 1;
                }
            }
            if (!rule_head && !known_head) break;
        }
        if (ti->f & (F_PLACE | F_REGION)) {
            if (ti->place_end < (int)i) ti->place_end = (int)i;
        }
        if ((ti->f & F_ORG_AFTER) && ti->org_end < (int)i) ti->org_end = (int)i;
        if ((ti->f & F_NAME_AFTER) && ti->after_end < (int)i) ti->after_end = (int)i;
    }
    for (size_t i = 0; i < c->nt; i++) {
        tok *ti = &c->t[i];
        if (ti->f & (F_PLACE | F_REGION)) {
            if (ti->place_end < 0) ti->place_end = (int)i;
        }
        if ((ti->f & F_ORG_AFTER) && ti->org_end < 0) ti->org_end = (int)i;
        if ((ti->f & F_NAME_AFTER) && ti->after_end < 0) ti->after_end = (int)i;
    }
}

/* ---- patterns ---------------------------------------------------------------------------- */

/* Adds the span of a match (its (?<phi>) group when the pattern has one). */
static void add_match(ctx *c, const deid_pattern *pat, pcre2_match_data *md, int rc) {
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
    size_t s = ov[0], e = ov[1];
    if (pat->g_phi) {
        if (pat->g_phi < rc && ov[2 * pat->g_phi] != PCRE2_UNSET) {
            s = ov[2 * pat->g_phi];
            e = ov[2 * pat->g_phi + 1];
        } else {
            s = e = 0; /* the PHI group did not take part */
        }
    }
    if (e > s) {
        c->spans.cur_tag = (uint32_t)DEID_SRC_PATTERN << 16 | (uint32_t)(pat - c->r->pats);
        sv_add(&c->spans, s, e, pat->type);
    }
}

static int run_patterns(ctx *c, cf_err *err) {
    const deid_text_rules *r = c->r;
    pcre2_match_data *md = NULL;
    int has_digit = 0;
    for (size_t i = 0; i < c->len && !has_digit; i++) has_digit = c->text[i] >= '0' && c->text[i] <= '9';
    md = pcre2_match_data_create(r->max_groups ? r->max_groups : 1, NULL);
    if (!md) return cf_fail(err, CF_EINTERNAL, "out of memory");
    /* where runs of digits start: 'n' patterns are tried only there (and one '(' or '+' before) */
    size_t *nstart = NULL, n_nstart = 0;
    if (has_digit) {
        size_t cap = 64;
        nstart = cf_malloc(cap * sizeof *nstart);
        if (!nstart) {
            pcre2_match_data_free(md);
            return cf_fail(err, CF_EINTERNAL, "out of memory");
        }
        for (size_t i = 0; i < c->len; i++) {
            if (c->text[i] < '0' || c->text[i] > '9' || (i && c->text[i - 1] >= '0' && c->text[i - 1] <= '9'))
                continue;
            if (n_nstart + 2 > cap) {
                size_t *nn = cf_realloc_array(nstart, cap * 2, sizeof *nn);
                if (!nn) {
                    free(nstart);
                    pcre2_match_data_free(md);
                    return cf_fail(err, CF_EINTERNAL, "out of memory");
                }
                nstart = nn;
                cap *= 2;
            }
            if (i && (c->text[i - 1] == '(' || c->text[i - 1] == '+')) nstart[n_nstart++] = i - 1;
            nstart[n_nstart++] = i;
        }
    }
    for (size_t p = 0; p < r->n_pats; p++) {
        const deid_pattern *pat = &r->pats[p];
        if (pat->needs_digit && !has_digit) continue;
        if (pat->required && !memchr(c->text, pat->required, c->len)) continue;
        if (pat->at_alnum || pat->at_dotted) {
            for (size_t i = 0; i < c->nt; i++) {
                const tok *w = &c->t[i];
                int ok = pat->at_alnum ? (w->shape == SH_ALNUM || w->shape == SH_NUM)
                                       : (w->e + 1 < c->len && c->text[w->e] == '.' &&
                                          ((unsigned char)c->text[w->e + 1] | 0x20) >= 'a' &&
                                          ((unsigned char)c->text[w->e + 1] | 0x20) <= 'z');
                if (!ok) continue;
                int rc = pcre2_match(pat->re, (PCRE2_SPTR)c->text, c->len, w->s, 0, md, NULL);
                if (rc > 0) add_match(c, pat, md, rc);
            }
            continue;
        }
        if (pat->at_numbers) {
            for (size_t q = 0; q < n_nstart; q++) {
                int rc = pcre2_match(pat->re, (PCRE2_SPTR)c->text, c->len, nstart[q], 0, md, NULL);
                if (rc > 0) add_match(c, pat, md, rc);
            }
            continue;
        }
        if (pat->anchor) {
            /* tried only where a cue word or phrase of the anchor kind starts */
            for (size_t i = 0; i < c->nt; i++) {
                if (!(c->t[i].start & pat->anchor)) continue;
                int rc = pcre2_match(pat->re, (PCRE2_SPTR)c->text, c->len, c->t[i].s, 0, md, NULL);
                if (rc > 0) add_match(c, pat, md, rc);
            }
            continue;
        }
        PCRE2_SIZE start = 0;
        while (start <= c->len) {
            int rc = pcre2_match(pat->re, (PCRE2_SPTR)c->text, c->len, start, 0, md, NULL);
            if (rc == PCRE2_ERROR_NOMATCH) break;
            if (rc < 0) {
                /* match limits on pathological input: skip this pattern, never fail the note */
                break;
            }
            PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
            size_t ms = ov[0], me = ov[1];
            add_match(c, pat, md, rc);
            start = me > ms ? me : ms + 1;
            /* stay on a character boundary */
            while (start < c->len && ((unsigned char)c->text[start] & 0xC0) == 0x80) start++;
        }
    }
    pcre2_match_data_free(md);
    free(nstart);
    if (c->spans.oom) return cf_fail(err, CF_EINTERNAL, "out of memory");
    return CF_OK;
}

/* Marks words overlapping any span found so far as covered. */
static void cover_spans(ctx *c, size_t from) {
    for (size_t k = from; k < c->spans.n; k++) {
        const deid_span *sp = &c->spans.v[k];
        size_t lo = deid__first_word_ending_after(c, sp->start);
        for (size_t i = lo; i < c->nt && c->t[i].s < sp->end; i++) {
            if (c->t[i].covtype < 0) c->t[i].covtype = (int8_t)sp->type;
            c->t[i].cov = 1;
        }
    }
}

/* ---- known digit strings ----------------------------------------------------------------- */

static void match_known_digits(ctx *c) {
    if (!c->k || !c->k->digits.count) return;
    c->spans.cur_tag = (uint32_t)DEID_SRC_KNOWN << 16;
    const char *s = c->text;
    size_t i = 0;
    char dg[64];
    while (i < c->len) {
        if (s[i] < '0' || s[i] > '9') {
            i++;
            continue;
        }
        /* a run of digits joined by single separators */
        size_t a = i, e = i, nd = 0;
        size_t j = i;
        while (j < c->len) {
            if (s[j] >= '0' && s[j] <= '9') {
                if (nd < sizeof dg) dg[nd] = s[j];
                nd++;
                j++;
                e = j;
            } else if ((s[j] == '-' || s[j] == ' ' || s[j] == '.' || s[j] == '(' || s[j] == ')' || s[j] == '/') &&
                       j + 1 < c->len && ((s[j + 1] >= '0' && s[j + 1] <= '9') || s[j + 1] == '(' || s[j + 1] == ' ')) {
                j++;
            } else break;
        }
        if (nd >= 4 && nd <= sizeof dg) {
            int64_t id = strmap_find(&c->k->digits, dg, nd);
            if (id >= 0) sv_add(&c->spans, a, e, c->k->digit_type[id]);
            else if (nd > 10) {
                /* a known number inside a longer run ("+1 555 123 4567" for "5551234567") */
                for (size_t off = 1; off + 4 <= nd; off++) {
                    id = strmap_find(&c->k->digits, dg + off, nd - off);
                    if (id >= 0) {
                        sv_add(&c->spans, a, e, c->k->digit_type[id]);
                        break;
                    }
                }
            }
        }
        i = e > i ? e : i + 1;
    }
}

/* ---- addresses --------------------------------------------------------------------------- */

/* Is word i the given ASCII word, in any letter case? */
static int is_word(const ctx *c, size_t i, const char *w) {
    size_t n = strlen(w);
    return c->t[i].e - c->t[i].s == n && !strncasecmp(c->text + c->t[i].s, w, n);
}

static int ends_with_street(const ctx *c, size_t i) {
    const tok *t = &c->t[i];
    if (t->f & F_STREET) return 1;
    char low[256];
    size_t ll = deid_lower(c->text + t->s, t->e - t->s, low, sizeof low);
    if (ll == (size_t)-1) return 0;
    for (size_t k = 0; k < c->r->n_street_endings; k++) {
        size_t el = c->r->street_ending_len[k];
        const char *se = c->r->street_endings[k];
        /* the last letters first: most endings fail there, without a call to memcmp */
        if (el <= ll && (el == 0 || low[ll - 1] == se[el - 1]) && !memcmp(low + ll - el, se, el)) {
            /* a short English word ending like "tie" or "gate" is no street ("tie", "aggregate") */
            if ((t->f & (F_ENGLISH | F_MEDICAL)) && el < ll) return 0;
            if ((t->f & (F_ENGLISH | F_MEDICAL)) && el == ll && t->shape == SH_LOWER) return 0;
            return 1;
        }
    }
    return 0;
}

/* Is the word itself a street word of another language ("gate", "vej", "rua")? */
static int ends_with_word(const ctx *c, size_t i) {
    const tok *t = &c->t[i];
    char low[64];
    size_t ll = deid_lower(c->text + t->s, t->e - t->s, low, sizeof low);
    if (ll == (size_t)-1) return 0;
    for (size_t k = 0; k < c->r->n_street_endings; k++)
        if (!strcmp(low, c->r->street_endings[k])) return 1;
    return 0;
}

static int is_num(const tok *t, int maxd) {
    return t->shape == SH_NUM && (int)(t->e - t->s) <= maxd;
}

/* A word that can be part of a street or place name. */
static int streetish(const tok *t) {
    if (t->shape == SH_CAP || t->shape == SH_UPPER || t->shape == SH_NOCASE || t->shape == SH_INITIAL) return 1;
    if (t->shape == SH_LOWER) return !(t->f & (F_ENGLISH | F_MEDICAL)) || (t->f & (F_STREET | F_PARTICLE));
    return 0;
}

/* Extends an address span over the following lines of an address block: unit ("Suite 245"),
 * city, state code, postal code, country. Returns the new end offset. */
static size_t extend_block(ctx *c, size_t end_off, size_t *first_tok) {
    size_t i = *first_tok;
    int segments = 0;
    size_t end = end_off;
    while (i < c->nt && segments < 6) {
        gapinfo g = gap_info(c, i);
        if (g.sentence || g.nl > 2 || g.other > 1) break;
        if (g.period && !g.nl && !g.comma) break;
        /* past a blank line only a country, state or postal code still belongs to the block */
        if (g.nl == 2 && !((c->t[i].f & (F_REGION | F_STATE_ABBR)) || is_num(&c->t[i], 7))) {
            /* ... or a short line ending in a postal code ("Greenland 54005") */
            size_t e = i;
            while (e + 1 < c->nt && !gap_info(c, e + 1).nl) e++;
            if (!(e - i <= 3 && e > i && is_num(&c->t[e], 7) && c->t[e].e - c->t[e].s >= 4 &&
                  (c->t[i].shape == SH_CAP || c->t[i].shape == SH_UPPER)))
                break;
        }
        /* one segment: words on this line up to a comma or newline */
        size_t j = i, last_ok = (size_t)-1;
        int nwords = 0, bad = 0;
        while (j < c->nt) {
            if (j > i) {
                gapinfo g2 = gap_info(c, j);
                if (!g2.space_only && !(g2.period && !g2.nl && !g2.comma && g2.len <= 2 &&
                                        (c->t[j - 1].f & F_UNIT)))
                    break;
            }
            const tok *t = &c->t[j];
            int ok = 0;
            if (t->shape == SH_NUM && t->e - t->s <= 7) ok = 1;
            else if (t->shape == SH_ALNUM && t->e - t->s <= 8) ok = 1;
            else if (t->f & (F_UNIT | F_STATE_ABBR | F_REGION | F_PLACE | F_PARTICLE)) ok = 1;
            else if (t->known >= 0) ok = 1;
            else if (streetish(t) && !((t->f & (F_ENGLISH | F_STOP)) && t->shape == SH_LOWER)) ok = 1;
            if (t->shape == SH_LOWER && (t->f & (F_ENGLISH | F_STOP)) && !(t->f & (F_PARTICLE | F_PLACE)))
                ok = 0;
            if (!ok) {
                bad = 1;
                break;
            }
            nwords++;
            last_ok = j;
            j++;
            if (nwords > 5) break;
        }
        if (last_ok == (size_t)-1 || nwords > 5) break;
        end = c->t[last_ok].e;
        for (size_t q = i; q <= last_ok; q++) c->t[q].cov = 1;
        segments++;
        i = last_ok + 1;
        if (bad) break;
    }
    *first_tok = i;
    return end;
}

/* In lower-case text, common words may name a street ("18 elm grove", "7 oak tree road"): word j
 * after house number i is part of the street name when the next street word comes within three
 * words, all of them plain lower-case words, and an address cue precedes the number ("lives at")
 * or the street word is one that names nothing but streets ("road", "avenue"). */
static int lower_street_name(const ctx *c, size_t i, size_t j) {
    int cue = i > 0 && (c->t[i - 1].cue_end & F_ADDR_BEFORE);
    for (size_t q = j; q < c->nt && q <= j + 3; q++) {
        const tok *u = &c->t[q];
        if (q > j && !gap_space(c, q)) return 0;
        if (u->shape != SH_LOWER || u->cov) return 0;
        if (q > j && ends_with_street(c, q) && (cue || (u->f & F_STREET_MAIN))) return 1;
        if (u->f & (F_STOP | F_MEASURE | F_UNIT | F_PLACE_WEAK | F_NAME_WEAK)) return 0;
    }
    return 0;
}

static void find_addresses(ctx *c) {
    size_t n0 = c->spans.n;
    c->spans.cur_tag = (uint32_t)DEID_SRC_RULE << 16;
    /* number-led: "6750 Koskikatu 25", "20789 Allika 46", "74678 midtvollen 130 st." */
    for (size_t i = 0; i < c->nt; i++) {
        tok *t = &c->t[i];
        if (t->cov || !is_num(t, 6)) continue;
        if (i + 1 >= c->nt || !gap_space(c, i + 1)) continue;
        size_t j = i + 1, last = (size_t)-1;
        int words = 0, has_street = 0, has_num2 = 0, foreign = 0;
        while (j < c->nt && j <= i + 7) {
            if (j > i + 1) {
                gapinfo g = gap_info(c, j);
                if (!g.space_only && !(g.period && g.len <= 2 && !g.nl)) break;
            }
            tok *u = &c->t[j];
            if (u->cov) break;
            if (is_num(u, 5) && words) {
                if (j + 1 < c->nt && gap_space(c, j + 1) && (c->t[j + 1].f & F_MEASURE)) break;
                has_num2 = 1;
                last = j;
                j++;
                /* "130 st." */
                if (j < c->nt && gap_space(c, j) && ends_with_street(c, j)) {
                    has_street = 1;
                    last = j;
                    j++;
                }
                break;
            }
            int abbrev = u->shape == SH_LOWER && u->nletters <= 3 && u->e < c->len && c->text[u->e] == '.';
            /* a street word of another language opens the street name ("42 rue de Rivoli") */
            int opens = u->shape == SH_LOWER && !words && ends_with_word(c, j) && j + 1 < c->nt &&
                        gap_space(c, j + 1) && streetish(&c->t[j + 1]) &&
                        (c->t[j + 1].shape != SH_LOWER || (c->t[j + 1].f & F_PARTICLE));
            if (opens) has_street = 1;
            if (!(streetish(u) || abbrev || opens || (u->shape == SH_LOWER && words && ends_with_word(c, j)) ||
                  lower_street_name(c, i, j)) ||
                u->shape == SH_NUM)
                break;
            if (u->f & F_MEASURE && u->shape == SH_LOWER && (!abbrev || j == i + 1)) break; /* "16 sq. in." */
            if (ends_with_street(c, j)) has_street = 1;
            if (u->oov || (u->f & (F_NAMES | F_PLACE)) || u->shape == SH_NOCASE) foreign = 1;
            words++;
            last = j;
            j++;
        }
        if (last == (size_t)-1 || !words) continue;
        /* "3 key components", "2 park benches": one common word that is also a street word is no
           street name ("5 Broadway" names one) */
        if (words == 1 && !has_num2 && (c->t[i + 1].f & (F_ENGLISH | F_MEDICAL)) && !(c->t[i + 1].f & F_STREET_MAIN) &&
            c->t[i + 1].known < 0)
            continue;
        int cue = i > 0 && (c->t[i - 1].cue_end & F_ADDR_BEFORE);
        int next_unit = 0;
        if (last + 1 < c->nt) {
            gapinfo g = gap_info(c, last + 1);
            const tok *nx = &c->t[last + 1];
            if ((nx->f & F_UNIT) && !g.sentence) next_unit = 1;
            if (g.nl && (nx->shape == SH_CAP || nx->shape == SH_UPPER || is_num(nx, 7))) next_unit = 1;
        }
        int ok = has_street || (has_num2 && (cue || next_unit || foreign)) || (cue && foreign && words <= 4);
        if (!ok) continue;
        size_t first = last + 1;
        size_t end = extend_block(c, c->t[last].e, &first);
        sv_add(&c->spans, t->s, end, DEID_ADDRESS);
        for (size_t q = i; q <= last; q++) c->t[q].cov = 1;
        i = first > i ? first - 1 : i;
    }
    /* street-word-led: "Brucker Bundesstrasse 31", "Marina Fort Street" */
    for (size_t i = 0; i < c->nt; i++) {
        tok *t = &c->t[i];
        if (t->cov) continue;
        if (!(t->shape == SH_CAP || t->shape == SH_UPPER || t->shape == SH_NOCASE)) continue;
        if (!ends_with_street(c, i)) continue;
        int main_word = (t->f & F_STREET_MAIN) && t->shape != SH_LOWER;
        int num_after = i + 1 < c->nt && gap_space(c, i + 1) && is_num(&c->t[i + 1], 5) &&
                        !(i + 2 < c->nt && gap_space(c, i + 2) && (c->t[i + 2].f & F_MEASURE));
        if (!main_word && !num_after) continue;
        /* the capitalised words before it on the same line */
        size_t a = i;
        while (a > 0 && i - a < 4 && gap_space(c, a) && !c->t[a - 1].cov &&
               (c->t[a - 1].shape == SH_CAP || c->t[a - 1].shape == SH_UPPER || c->t[a - 1].shape == SH_NOCASE ||
                (c->t[a - 1].f & F_PARTICLE)) &&
               !(c->t[a - 1].f & (F_STOP | F_TITLE | F_NAME_BEFORE | F_PLACE_WEAK)))
            a--;
        if (a == i && !num_after) continue; /* "Street" alone */
        if (a == i && (t->f & (F_ENGLISH | F_MEDICAL)) && !(t->f & F_STREET)) continue;
        size_t last = num_after ? i + 1 : i;
        size_t first = last + 1;
        size_t end = extend_block(c, c->t[last].e, &first);
        sv_add(&c->spans, c->t[a].s, end, DEID_ADDRESS);
        for (size_t q = a; q <= last; q++) c->t[q].cov = 1;
    }
    /* a street corner: "the corner of 25 Dili Gianni Street and King Forges", "corner of
       heiligengeistbrücke 77 and minik courts": up to four words, "and", up to four words, on one
       line, with a street word or a house number among them */
    for (size_t i = 0; i + 4 < c->nt; i++) {
        if (!is_word(c, i, "corner") || !is_word(c, i + 1, "of") || !gap_space(c, i + 1) || !gap_space(c, i + 2))
            continue;
        size_t a = i + 2, j = a, and_at = 0;
        int streets = 0, ok = 1;
        for (; j < c->nt && j < a + 9; j++) {
            if (j > a && !gap_space(c, j)) break;
            if (c->t[j].cov) {
                ok = 0;
                break;
            }
            if (!and_at && j > a && is_word(c, j, "and")) {
                and_at = j;
                continue;
            }
            if (is_num(&c->t[j], 5) || ends_with_street(c, j)) streets++;
            else if ((c->t[j].f & (F_STOP | F_MEASURE)) && c->t[j].shape == SH_LOWER) break;
            /* a plural street word ("minik courts") */
            else if (c->t[j].shape == SH_LOWER && c->t[j].e - c->t[j].s > 3 && c->text[c->t[j].e - 1] == 's') {
                deid_flags g = deid_word_flags(c->r, c->text + c->t[j].s, c->t[j].e - c->t[j].s - 1);
                streets += (g & F_STREET) != 0;
            }
        }
        if (!ok || !and_at || j <= and_at + 1 || and_at - a > 4 || j - and_at - 1 > 4 || !streets) continue;
        sv_add(&c->spans, c->t[a].s, c->t[j - 1].e, DEID_ADDRESS);
        for (size_t q = a; q < j; q++) c->t[q].cov = 1;
        i = j - 1;
    }
    /* address blocks after pattern-found addresses ("123 Main St" then "Suite 4, Boston, MA") */
    for (size_t k = 0; k < n0; k++) {
        if (c->spans.v[k].type != DEID_ADDRESS) continue;
        size_t end = c->spans.v[k].end;
        size_t lo = deid__first_word_starting_from(c, end);
        size_t first = lo;
        size_t ne = extend_block(c, end, &first);
        if (ne > end) sv_add(&c->spans, end, ne, DEID_ADDRESS);
    }
    /* a number right before an address is part of it ("17151 2450 Crown St") */
    for (size_t k = 0; k < c->spans.n; k++) {
        deid_span *sp = &c->spans.v[k];
        if (sp->type != DEID_ADDRESS) continue;
        size_t lo = deid__first_word_starting_from(c, sp->start);
        if (lo > 0 && lo < c->nt && c->t[lo].s == sp->start && is_num(&c->t[lo - 1], 6) &&
            !c->t[lo - 1].cov && gap_space(c, lo))
            sp->start = c->t[lo - 1].s;
    }
    cover_spans(c, 0);
}

/* ---- names, places, organisations -------------------------------------------------------- */

/* Is a word that is both a given name and a common word ("will", "rose", "mark") used as a
 * common word here? Read from the next word: a verb or preposition that follows modals and verbs
 * ("will be", "rose from", "can not"; the a_verb_after_name cue list) says so; a name is
 * followed by punctuation, "and", a verb in the past or third person ("son mark visited"). */
static int modal_use(const ctx *c, size_t i) {
    if (i + 1 >= c->nt || !gap_space(c, i + 1)) return 0;
    const tok *n = &c->t[i + 1];
    return n->shape == SH_LOWER && (n->start & c->r->verb_after_name) != 0;
}

static uint8_t classify(const tok *t) {
    if (t->known >= 0) return C_K;
    deid_flags f = t->f;
    if (t->shape == SH_LOWER && (f & F_PARTICLE)) return C_PART;
    /* a name cue is no name itself ("Son Mark", "Sister Rose") */
    if (f & (F_STOP | F_TITLE | F_NAME_BEFORE)) return C_E;
    if (t->shape == SH_INITIAL) return C_I;
    /* a country or state is a place before it is a family name ("Canada", "Georgia") */
    if ((f & F_REGION) && !(f & (F_ENGLISH | F_MEDICAL))) return C_R;
    if ((f & F_NAMES) && !(f & F_AMBIG)) return C_S;
    if ((f & F_PLACE) && !(f & (F_ENGLISH | F_MEDICAL))) return C_P;
    if (t->oov) return C_O;
    if ((f & F_NAMES) && !(f & (F_STOP))) return C_W;
    if ((f & F_PLACE) && !(f & (F_ENGLISH | F_STOP))) return C_W; /* "Boston" is also in ICD titles */
    if (f & F_REGION) return C_R;
    return C_E;
}

static int nameable(const tok *t) {
    if (t->cov) return 0;
    if (t->known >= 0) return 1;
    return t->shape == SH_CAP || t->shape == SH_UPPER || t->shape == SH_INITIAL || t->shape == SH_NOCASE;
}

/* Cue classes that end right before word a (allowing "Dr. ", "Name: ", "Mr ", "name is\n"). */
static deid_flags cue_before(const ctx *c, size_t a) {
    if (a == 0) return 0;
    gapinfo g = gap_info(c, a);
    const tok *p = &c->t[a - 1];
    if (g.sentence || g.comma > 1 || g.other > 1) return 0;
    deid_flags f = p->cue_end;
    if ((p->f & F_PRONOUN) && g.space_only && a >= 2 && gap_space(c, a - 1) &&
        (c->t[a - 2].cue_end & F_NAME_IS))
        return F_NAME_IS | F_NAME_BEFORE; /* "named him Frank", "call her Anna" */
    if (g.nl) {
        /* a label on the line before ("Name:\nJohn Smith") */
        if (!g.colon) return 0;
        return f & (F_NAME_BEFORE | F_PLACE_BEFORE | F_ORG_BEFORE | F_ADDR_BEFORE);
    }
    if (g.comma) return f & (F_NAME_WEAK | F_NAME_BEFORE); /* "Dear Mary," no; "Hello, John" */
    if (g.period && !(f & F_TITLE) && !(p->shape == SH_INITIAL)) return 0;
    return f;
}

/* Is word i followed by a number and a measure ("Lipitor 20 mg"): a drug, not a name. */
static int drug_like(const ctx *c, size_t i) {
    if (i + 1 >= c->nt) return 0;
    const tok *n = &c->t[i + 1];
    if (n->shape != SH_NUM && n->shape != SH_ALNUM) return 0;
    if (n->shape == SH_ALNUM) return 1; /* "20mg" */
    if (i + 2 < c->nt && (c->t[i + 2].f & F_MEASURE)) return 1;
    return 0;
}

/* Does an eponym word follow word b, right after it or after one common word ("Murphy's sign",
 * "Morse Fall Scale", "Glasgow coma scale")? Then the word names a sign or score, not a person. */
static int eponym_follows(const ctx *c, size_t b) {
    if (b + 1 >= c->nt || !gap_space(c, b + 1)) return 0;
    if (c->t[b + 1].f & F_EPONYM) return 1;
    return b + 2 < c->nt && gap_space(c, b + 2) && (c->t[b + 1].f & (F_ENGLISH | F_MEDICAL)) &&
           (c->t[b + 2].f & F_EPONYM);
}

static void label(ctx *c, size_t a, size_t b, int type) {
    for (size_t i = a; i <= b; i++) {
        if (c->t[i].cov || c->t[i].lab >= 0) continue;
        c->t[i].lab = (int8_t)type;
    }
}

/* Decides one run [a, b] of capitalised words (b inclusive): by its cues first (organisation
 * suffix or cue, "name is", title or name cue, credential after, place cue), then by what it
 * holds; common words inside split it and the pieces are judged alone. */
static void judge_run(ctx *c, size_t a, size_t b) {
    tok *t = c->t;
    for (size_t i = a; i <= b; i++) t[i].cls = classify(&t[i]);
    deid_flags cb = cue_before(c, a);
    /* an eponym: "Murphy's sign", "Bell palsy", "Whipple procedure" (unless a title says
       otherwise: "Dr. Murphy") */
    if (b - a <= 2 && eponym_follows(c, b) && !(cb & (F_TITLE | F_NAME_BEFORE)) && t[a].known < 0)
        return;
    /* the eponym word inside the run: "Morse Fall Scale", "Glasgow Coma Scale" */
    if (!(cb & (F_TITLE | F_NAME_BEFORE)) && t[a].known < 0)
        for (size_t q = a + 1; q <= b && q <= a + 2; q++)
            if ((t[q].f & F_EPONYM) && (q == a + 1 || (t[q - 1].f & (F_ENGLISH | F_MEDICAL)))) {
                if (q < b) judge_run(c, q + 1, b);
                return;
            }
    /* a listed multi-word place inside the run ("In United States they") is judged apart */
    if (!(cb & (F_TITLE | F_NAME_BEFORE))) {
        for (size_t q = a + 1; q < b; q++) {
            if (t[q].place_end > (int)q && t[q].place_end <= (int)b && t[q - 1].cls == C_E) {
                size_t pe = (size_t)t[q].place_end;
                judge_run(c, a, q - 1);
                label(c, q, pe, DEID_LOCATION);
                if (pe < b) judge_run(c, pe + 1, b);
                return;
            }
        }
    }
    /* an organisation suffix right after the run, or inside it at its end ("Acme Inc") */
    int org_after_end = -1;
    if (b + 1 < c->nt && t[b + 1].org_end >= 0 && gap_info(c, b + 1).len <= 2 &&
        !gap_info(c, b + 1).nl && t[b + 1].shape != SH_LOWER)
        org_after_end = t[b + 1].org_end;
    size_t bb = b;
    if (org_after_end < 0) {
        /* suffix inside the run: "Microbilt Corporation" is one run */
        for (size_t i = a + 1; i <= b; i++)
            if (t[i].org_end >= 0 && (size_t)t[i].org_end <= b) {
                org_after_end = t[i].org_end;
                bb = i - 1;
                break;
            }
    }
    /* next to a listed name, a word shaped like clinical vocabulary is a name after all
       ("Anatoly Polyakov") */
    int strong = 0;
    for (size_t i = a; i <= bb; i++)
        strong |= t[i].cls == C_S || t[i].cls == C_K || (i == a && i < bb && t[i].cls == C_O && t[i].shape == SH_CAP);
    if (strong)
        for (size_t i = a; i <= bb; i++)
            if (t[i].clin_shape && t[i].shape == SH_CAP) t[i].cls = C_O;
    int n_s = 0, n_o = 0, n_w = 0, n_p = 0, n_r = 0, n_i = 0, n_k = 0, n_e = 0, n_oup = 0;
    for (size_t i = a; i <= bb; i++) {
        switch (t[i].cls) {
        case C_S: n_s++; break;
        case C_O: n_o++; if (t[i].shape == SH_UPPER) n_oup++; break;
        case C_W: n_w++; break;
        case C_P: n_p++; break;
        case C_R: n_r++; break;
        case C_I: n_i++; break;
        case C_K: n_k++; break;
        case C_E: n_e++; break;
        default: break;
        }
    }
    size_t len = bb - a + 1;
    /* a multi-word place ("United Kingdom", "Villafranca del Cid") */
    if (b > a && t[a].place_end >= (int)b && !(cb & (F_TITLE | F_NAME_BEFORE)) && org_after_end < 0) {
        label(c, a, b, DEID_LOCATION);
        return;
    }
    /* "my name is Key": whatever word follows */
    if ((cb & F_NAME_IS) && !(t[a].f & F_STOP)) {
        size_t e2 = a;
        while (e2 < bb && e2 - a < 3 && t[e2 + 1].cls != C_E) e2++;
        label(c, a, e2, DEID_NAME);
        return;
    }
    /* "works at Home Depot": after an employer cue, the capitalised words are the employer */
    if ((cb & F_ORG_BEFORE) && org_after_end < 0 && !(t[a].f & F_STOP) && t[a].known < 0) {
        label(c, a, b, DEID_ORGANIZATION);
        return;
    }
    /* "Rapid Cycle Solutions", "Civic Impulse LLC": capitalised words before a company suffix */
    if (org_after_end >= 0 && bb >= a && !(t[a].f & F_STOP)) {
        label(c, a, (size_t)org_after_end, DEID_ORGANIZATION);
        return;
    }
    if (org_after_end >= 0 && (cb & F_ORG_BEFORE)) {
        label(c, a, (size_t)org_after_end, DEID_ORGANIZATION);
        return;
    }
    /* known organisation names */
    if (t[a].orgname_end >= 0 && (size_t)t[a].orgname_end <= b) {
        label(c, a, (size_t)t[a].orgname_end, DEID_ORGANIZATION);
        return;
    }
    /* after a place cue, a generic place word at either end of two or three capitalised words
       makes them a place even when all are common words ("returned to Mill Village", "in Lake
       Forest", "from Port Lavaca") */
    if ((cb & (F_PLACE_BEFORE | F_PLACE_WEAK)) && b > a && b - a <= 2 && !t[a].sent &&
        ((t[a].f | t[b].f) & F_PLACE_WORD)) {
        int plain = 1;
        for (size_t i = a; i <= b; i++)
            if ((t[i].f & (F_MEDICAL | F_STOP | F_TITLE | F_MONTH | F_WEEKDAY)) || t[i].cls == C_S) plain = 0;
        if (plain) {
            label(c, a, b, DEID_LOCATION);
            return;
        }
    }
    int strong_name_cue = (cb & (F_TITLE | F_NAME_BEFORE)) != 0;
    int weak_name_cue = (cb & F_NAME_WEAK) != 0;
    int after_name = b + 1 < c->nt && t[b + 1].after_end >= 0 && !gap_info(c, b + 1).nl &&
                     gap_info(c, b + 1).len <= 2 && t[b + 1].shape != SH_LOWER;
    /* trim English/clinical words at the ends, except after a title ("Dr. Brown") */
    size_t lo = a, hi = bb;
    int titled = (cb & F_TITLE) != 0;
    while (lo <= hi && t[lo].cls == C_E && !(titled && lo == a && t[lo].shape != SH_UPPER)) lo++;
    while (hi >= lo && hi > a && t[hi].cls == C_E) {
        /* a common word right after a given name is the family name ("Jane Roe", "Ann Little") */
        const tok *pv = &t[hi - 1];
        if (hi == b && t[hi].shape == SH_CAP && !(t[hi].f & (F_STOP | F_MEDICAL | F_TITLE)) &&
            pv->cls == C_S && (pv->f & F_FIRST) && !(pv->f & F_LAST) && pv->shape == SH_CAP &&
            !(b + 1 < c->nt && gap_space(c, b + 1) && t[b + 1].shape == SH_CAP))
            break;
        hi--;
    }
    if (lo > hi || (lo == hi && t[lo].cls == C_E && !titled)) {
        return;
    }
    if (lo != a) {
        /* the trimmed word may itself be the cue ("Son Mark visited", "Wife Joy called") */
        cb = (t[lo - 1].cue_end & (F_NAME_BEFORE | F_TITLE)) ? cue_before(c, lo) & (F_NAME_BEFORE | F_TITLE | F_KIN) : 0;
        strong_name_cue = (cb & (F_TITLE | F_NAME_BEFORE)) != 0;
        titled = (cb & F_TITLE) != 0;
        weak_name_cue = 0;
    }
    /* a common word that is also a name, used as a verb after a name cue: "Patient Will be
       seen", "Pt Rose from bed" (a title still makes it a name: "Dr. Will") */
    if (lo == hi && (t[lo].f & F_NOT_NAME) && !titled && modal_use(c, lo)) {
        strong_name_cue = weak_name_cue = 0;
        cb &= ~(deid_flags)(F_NAME_BEFORE | F_NAME_WEAK | F_KIN);
    }
    if (t[lo].cls == C_PART) lo++;
    if (lo > hi) return;
    /* inner English words split the run: judge the pieces separately */
    if (!titled && !strong_name_cue) {
        for (size_t i = lo + 1; i < hi; i++)
            if (t[i].cls == C_E) {
                judge_run(c, lo, i - 1);
                if (i + 1 <= hi) judge_run(c, i + 1, hi);
                return;
            }
    }
    len = hi - lo + 1;
    int has_name_ev = n_s + n_k + n_o - n_oup > 0;
    if (cb & F_ORG_BEFORE) {
        label(c, lo, hi, DEID_ORGANIZATION);
        return;
    }
    if (titled || strong_name_cue || after_name || n_k) {
        if (titled || n_s + n_k + n_o + n_w + n_i > 0) {
            label(c, lo, hi, DEID_NAME);
            return;
        }
    }
    int place_cue = (cb & (F_PLACE_BEFORE | F_PLACE_WEAK)) != 0;
    int whole_place = hi > lo && t[lo].place_end >= (int)hi;
    if (place_cue || whole_place) {
        int strong_place = (cb & F_PLACE_BEFORE) != 0;
        if (whole_place && (place_cue || n_s + n_k == 0)) {
            label(c, lo, hi, DEID_LOCATION);
            return;
        }
        int tiny_acronym = len == 1 && t[lo].shape == SH_UPPER && t[lo].nletters <= 3 && t[lo].cls == C_O;
        if (n_p + n_r + n_o + n_oup > 0 && n_s == 0 && !tiny_acronym) {
            label(c, lo, hi, DEID_LOCATION);
            return;
        }
        /* after "lives in", "moved to": capitalised words are the place even when they are
           English words too ("Spring Valley", "Mill Creek") */
        if (strong_place && len <= 3 && !t[lo].sent) {
            label(c, lo, hi, DEID_LOCATION);
            return;
        }
    }
    if (weak_name_cue && (n_s + n_o - n_oup > 0 || (n_w && len >= 2))) {
        label(c, lo, hi, DEID_NAME);
        return;
    }
    if (len >= 2) {
        if (has_name_ev || (n_i && (n_s + n_o + n_w) >= 2) || (n_w >= 2 && n_i) ||
            (n_w + n_s >= 2 && n_s) || (len == 2 && n_w == 1 && n_i == 1 && (t[lo].f & F_FIRST))) {
            label(c, lo, hi, DEID_NAME);
            return;
        }
        if (n_p + n_r == (int)len || (n_p + n_r > 0 && n_oup + n_p + n_r == (int)len)) {
            label(c, lo, hi, DEID_LOCATION);
            return;
        }
        if (n_oup >= 2 && n_oup == (int)len) return; /* "CBC WNL": upper-case abbreviations */
        return;
    }
    /* a single word */
    tok *w = &t[lo];
    switch (w->cls) {
    case C_W:
        /* an ambiguous name word ("Belle", "Todd") capitalised in the middle of lower-case text */
        if (w->shape == SH_CAP && !w->sent && !(w->f & (F_MEDICAL | F_NOT_NAME | F_STOP)) && lo > 0 &&
            t[lo - 1].shape == SH_LOWER && !gap_info(c, lo).nl &&
            (lo + 1 >= c->nt || t[lo + 1].shape == SH_LOWER || t[lo + 1].shape == SH_NUM ||
             !gap_info(c, lo + 1).space_only) &&
            !drug_like(c, lo))
            label(c, lo, lo, DEID_NAME);
        return;
    case C_S:
        if (drug_like(c, lo)) return;
        if (w->shape == SH_UPPER && !place_cue) return; /* "IBAN", "MAX": acronyms need a cue */
        label(c, lo, lo, (w->f & (F_PLACE | F_REGION)) && place_cue ? DEID_LOCATION : DEID_NAME);
        return;
    case C_R:
        label(c, lo, lo, DEID_LOCATION);
        return;
    case C_P:
        if (w->shape == SH_UPPER && !place_cue && w->nletters <= 3) return;
        if (drug_like(c, lo)) return;
        label(c, lo, lo, DEID_LOCATION);
        return;
    case C_O:
        if (w->shape == SH_UPPER) return; /* unknown upper-case word: an abbreviation */
        if (cb & F_DRUG_BEFORE) return;   /* "Continue Flomax", "on Entresto" */
        if (w->nletters < 3 || drug_like(c, lo)) return;
        /* "Hgb 8.9", "Tmax: 38.2", "Troponin I 0.04": an unknown word before a number is a
           test or drug */
        if (lo + 1 < c->nt && (t[lo + 1].shape == SH_NUM) && gap_info(c, lo + 1).len <= 2 &&
            !gap_info(c, lo + 1).nl)
            return;
        if (lo + 2 < c->nt && t[lo + 1].shape == SH_INITIAL && gap_space(c, lo + 1) &&
            t[lo + 2].shape == SH_NUM && gap_info(c, lo + 2).len <= 2 && !gap_info(c, lo + 2).nl)
            return;
        label(c, lo, lo, DEID_NAME);
        return;
    default:
        return;
    }
}

static void find_runs(ctx *c) {
    tok *t = c->t;
    size_t i = 0;
    while (i < c->nt) {
        if (!nameable(&t[i]) || ((t[i].f & (F_STOP | F_TITLE)) && t[i].known < 0)) {
            i++;
            continue;
        }
        size_t a = i, b = i;
        while (b + 1 < c->nt) {
            const tok *n = &t[b + 1];
            gapinfo g = gap_info(c, b + 1);
            int joins = g.space_only || (g.period == 1 && !g.nl && g.len <= 2 && t[b].shape == SH_INITIAL);
            if (!joins) break;
            if (n->shape == SH_LOWER && (n->f & F_PARTICLE) && b + 2 < c->nt && nameable(&t[b + 2]) &&
                gap_space(c, b + 2)) {
                b++;
                continue;
            }
            if (!nameable(n) || (n->f & F_TITLE)) break;
            if ((n->f & F_STOP) && n->known < 0) {
                /* a stop word may still end a listed place ("United States") */
                int inside = 0;
                for (size_t q = a; q <= b; q++)
                    if (t[q].place_end >= (int)(b + 1) || t[q].orgname_end >= (int)(b + 1)) inside = 1;
                if (!inside) break;
            }
            if (b + 1 - a >= 5) break;
            b++;
        }
        judge_run(c, a, b);
        i = b + 1;
    }
}

/* Lower-case names: "patricia desrosiers", or after a strong cue ("name is bertram"). */
static void lower_names(ctx *c) {
    tok *t = c->t;
    for (size_t i = 0; i < c->nt; i++) {
        if (t[i].cov || t[i].lab >= 0 || t[i].shape != SH_LOWER) continue;
        int first_ok = (t[i].f & F_NAMES) && !(t[i].f & F_AMBIG) && !(t[i].f & (F_PLACE_WEAK | F_NAME_WEAK));
        deid_flags cb = cue_before(c, i);
        if ((cb & F_NAME_IS) && !(t[i].f & (F_STOP | F_ENGLISH | F_MEDICAL | F_PLACE_WEAK | F_NAME_WEAK))) {
            t[i].lab = DEID_NAME;
            continue;
        }
        /* "i work at walmart", "employed by kessler": after an employer cue ending in a
           preposition or colon, a word that is no common or clinical word names the employer
           (with any such words after it) */
        int org_cue = (cb & F_ORG_BEFORE) && i > 0 &&
                      ((t[i - 1].f & (F_PLACE_WEAK | F_NAME_WEAK)) || gap_info(c, i).colon); /* not "hospital x" */
        if (org_cue && !(t[i].f & (F_STOP | F_ENGLISH | F_MEDICAL | F_MEASURE)) && t[i].nletters >= 3) {
            size_t e = i;
            while (e + 1 < c->nt && e - i < 3 && gap_space(c, e + 1) && t[e + 1].shape == SH_LOWER && !t[e + 1].cov &&
                   !(t[e + 1].f & (F_STOP | F_ENGLISH | F_MEDICAL | F_MEASURE | F_PLACE_WEAK | F_NAME_WEAK)))
                e++;
            for (size_t q = i; q <= e; q++) t[q].lab = DEID_ORGANIZATION;
            i = e;
            continue;
        }
        /* a listed place of several words after a place cue ("moved to new york", "born in saint
           petersburg", "called from fall river"), even when every word is a common one */
        if ((cb & (F_PLACE_BEFORE | F_PLACE_WEAK)) && t[i].place_end > (int)i) {
            size_t pe = (size_t)t[i].place_end;
            int lower = 1;
            for (size_t q = i; q <= pe; q++)
                if (t[q].shape != SH_LOWER || t[q].cov || t[q].lab >= 0) lower = 0;
            if (lower) {
                for (size_t q = i; q <= pe; q++) t[q].lab = DEID_LOCATION;
                i = pe;
                continue;
            }
        }
        if ((cb & (F_PLACE_BEFORE | F_PLACE_WEAK)) && (t[i].f & (F_REGION | F_PLACE)) &&
            !(t[i].f & (F_ENGLISH | F_MEDICAL | F_STOP))) {
            t[i].lab = DEID_LOCATION;
            continue;
        }
        /* after a title, a word that is no common word is the name, in any case ("dr healey",
           "mr. baader", "dr. cettina fanucci"); "dr aware", "md notified" are left */
        if ((cb & F_TITLE) && !(t[i].f & (F_STOP | F_MEASURE | F_TITLE | F_PLACE_WEAK | F_NAME_WEAK)) &&
            t[i].nletters >= 2 && ((t[i].f & F_NAMES) || t[i].oov || !(t[i].f & (F_ENGLISH | F_MEDICAL)))) {
            t[i].lab = DEID_NAME;
            if (i + 1 < c->nt && gap_space(c, i + 1) && t[i + 1].shape == SH_LOWER && !t[i + 1].cov &&
                !(t[i + 1].f & (F_STOP | F_MEASURE | F_PLACE_WEAK | F_NAME_WEAK)) &&
                (((t[i + 1].f & F_NAMES) && !(t[i + 1].f & F_AMBIG)) || t[i + 1].oov))
                t[++i].lab = DEID_NAME;
            continue;
        }
        /* "roberto's daughter": a name word in the possessive before a kinship or care word */
        if (first_ok && i + 1 < c->nt && gap_space(c, i + 1) && (t[i + 1].cue_end & F_NAME_BEFORE) &&
            t[i].e - t[i].s > 2 && c->text[t[i].e - 1] == 's' && c->text[t[i].e - 2] == '\'') {
            t[i].lab = DEID_NAME;
            continue;
        }
        /* "eric g. samoylova" */
        if (first_ok && (t[i].f & F_FIRST) && i + 2 < c->nt && t[i + 1].nletters == 1 &&
            t[i + 1].shape == SH_LOWER && gap_space(c, i + 1) && t[i + 2].shape == SH_LOWER &&
            !(t[i + 2].f & (F_STOP | F_MEDICAL)) && gap_info(c, i + 2).len <= 2 && !gap_info(c, i + 2).nl &&
            ((t[i + 2].f & F_NAMES) || !(t[i + 2].f & F_ENGLISH))) {
            t[i].lab = t[i + 1].lab = t[i + 2].lab = DEID_NAME;
            i += 2;
            continue;
        }
        /* after a kinship word even a given name that is a common word ("son bob", "wife joy",
           "SON BOB" re-cased) */
        if ((cb & F_KIN) && ((t[i].f & F_FIRST) || (t[i].oov && t[i].nletters >= 3)) && t[i].nletters >= 2 &&
            !(t[i].f & (F_STOP | F_MONTH | F_WEEKDAY | F_MEDICAL | F_MEASURE | F_PLACE_WEAK | F_NAME_WEAK | F_TITLE)) &&
            !((t[i].f & F_NOT_NAME) && modal_use(c, i))) {
            t[i].lab = DEID_NAME;
            continue;
        }
        if (first_ok && (cb & (F_NAME_BEFORE | F_TITLE))) {
            t[i].lab = DEID_NAME;
            if (i + 1 < c->nt && gap_space(c, i + 1) && t[i + 1].shape == SH_LOWER &&
                !(t[i + 1].f & F_AMBIG) && ((t[i + 1].f & F_NAMES) || t[i + 1].oov))
                t[i + 1].lab = DEID_NAME;
            continue;
        }
        if (first_ok && (t[i].f & F_FIRST) && i + 1 < c->nt && gap_space(c, i + 1) &&
            t[i + 1].shape == SH_LOWER && !t[i + 1].cov && !(t[i + 1].f & F_AMBIG) &&
            ((t[i + 1].f & F_NAMES) || t[i + 1].oov)) {
            t[i].lab = DEID_NAME;
            t[i + 1].lab = DEID_NAME;
            continue;
        }
    }
}

/* A capitalised word in no clinical list that may be a name part of a firm's name. */
static int firm_word(const tok *w) {
    if (w->cov || !(w->shape == SH_CAP || w->shape == SH_UPPER) || w->nletters < 2) return 0;
    if ((w->f & F_MEDICAL) && !(w->f & F_NAMES)) return 0; /* "Johnson" is both */
    return !(w->f & (F_STOP | F_TITLE | F_MONTH | F_WEEKDAY));
}

/* "Johnson & Johnson", "Procter & Gamble", "Marks & Spencer": capitalised words joined by an
 * ampersand are a firm when some word on either side is a name or in no list (two common words,
 * "Research & Development", are not). */
static void ampersand_firms(ctx *c) {
    tok *t = c->t;
    for (size_t i = 0; i + 1 < c->nt; i++) {
        gapinfo g = gap_info(c, i + 1);
        if (g.amp != 1 || g.nl || g.comma || g.period || g.other || g.len > 3) continue;
        if (!firm_word(&t[i]) || !firm_word(&t[i + 1])) continue;
        size_t a = i, b = i + 1;
        /* further words only when they are no common word ("Call Johnson & Johnson") */
        while (a > 0 && i - a < 2 && gap_space(c, a) && firm_word(&t[a - 1]) && classify(&t[a - 1]) != C_E) a--;
        while (b + 1 < c->nt && b - i < 3 && gap_space(c, b + 1) && firm_word(&t[b + 1]) &&
               classify(&t[b + 1]) != C_E)
            b++;
        int named = 0;
        for (size_t q = a; q <= b; q++) {
            uint8_t cl = classify(&t[q]);
            if (cl == C_S || cl == C_O || cl == C_W || cl == C_K) named = 1;
        }
        if (!named) continue;
        for (size_t q = a; q <= b; q++) t[q].lab = DEID_ORGANIZATION;
        i = b;
    }
}

/* "Monjeau, Graves and Reed": names joined by commas and "and" share the type. */
static void coordinate(ctx *c) {
    tok *t = c->t;
    int changed = 1, rounds = 0;
    while (changed && rounds++ < 8) {
        changed = 0;
        for (size_t i = 0; i < c->nt; i++) {
            if (t[i].lab != DEID_NAME && t[i].lab != DEID_ORGANIZATION) continue;
            for (int dir = -1; dir <= 1; dir += 2) {
                /* neighbour index across ", " or " and " */
                size_t j;
                if (dir > 0) {
                    if (i + 1 >= c->nt) continue;
                    j = i + 1;
                    gapinfo g = gap_info(c, j);
                    if (g.nl || g.sentence) continue;
                    if (g.comma == 1 || g.amp == 1) {
                        if (j < c->nt && t[j].shape == SH_LOWER && t[j].e - t[j].s == 3 &&
                            !strncmp(c->text + t[j].s, "and", 3) && j + 1 < c->nt && gap_space(c, j + 1))
                            j++;
                    } else if (g.space_only && t[j].shape == SH_LOWER && t[j].e - t[j].s == 3 &&
                               !strncmp(c->text + t[j].s, "and", 3) && j + 1 < c->nt && gap_space(c, j + 1)) {
                        j++;
                    } else continue;
                } else {
                    if (i == 0) continue;
                    gapinfo g = gap_info(c, i);
                    if (g.nl || g.sentence) continue;
                    if (g.comma == 1 || g.amp == 1) j = i - 1;
                    else if (g.space_only && i >= 2 && t[i - 1].e - t[i - 1].s == 3 &&
                             !strncmp(c->text + t[i - 1].s, "and", 3)) {
                        gapinfo g2 = gap_info(c, i - 1);
                        if (!(g2.space_only || g2.comma == 1)) continue;
                        j = i - 2;
                    } else continue;
                }
                tok *n = &t[j];
                /* in a note written in lower case, a listed or unknown word joins the list too
                   ("kónya, becker and vasquez") */
                int lower_ok = c->lower_doc && n->shape == SH_LOWER && ((n->f & F_NAMES) || n->oov) &&
                               !(n->f & (F_STOP | F_TITLE | F_MEASURE | F_ENGLISH)) && n->nletters >= 3;
                if (n->lab >= 0 || n->cov || !(nameable(n) || lower_ok)) continue;
                uint8_t cl = classify(n);
                /* in a list of names even a common word is a name ("Graves and Reed") */
                int listed_word = cl == C_E && n->shape == SH_CAP && !(n->f & (F_STOP | F_TITLE));
                if (listed_word) {
                    /* only inside a list: the word is followed by ", " / " and ", or ends the list
                       after "and" ("Monjeau, Graves and Reed") */
                    int via_and = j >= 1 && j != i + 1 && j + 1 != i;
                    int then_list = 0;
                    /* the list goes on beyond the word, on the side away from the name */
                    if (dir > 0 && j + 1 < c->nt) {
                        gapinfo g3 = gap_info(c, j + 1);
                        const tok *nx = &t[j + 1];
                        if ((g3.comma == 1 && !g3.nl) ||
                            (g3.space_only && nx->e - nx->s == 3 && !strncmp(c->text + nx->s, "and", 3)))
                            then_list = 1;
                    } else if (dir < 0 && j >= 1) {
                        gapinfo g3 = gap_info(c, j);
                        if (g3.comma == 1 && !g3.nl && (t[j - 1].lab == DEID_NAME || classify(&t[j - 1]) == C_S))
                            then_list = 1;
                    }
                    if (!via_and && !then_list) listed_word = 0;
                }
                if (!(cl == C_S || cl == C_O || cl == C_W || cl == C_K || cl == C_P || listed_word)) continue;
                /* all-caps words join only an all-caps name ("SMITH, JOHN A") */
                if (n->shape == SH_UPPER && cl != C_S && cl != C_K && t[i].shape != SH_UPPER) continue;
                if (n->shape == SH_UPPER && cl == C_E && !listed_word && !(n->f & F_NAMES)) continue;
                n->lab = t[i].lab;
                changed = 1;
                /* the rest of the neighbour's name: "JOHN A", "Mary K. Lee" */
                if (dir > 0)
                    for (size_t q = j + 1; q < c->nt && q <= j + 3; q++) {
                        gapinfo gq = gap_info(c, q);
                        int joins = gq.space_only ||
                                    (gq.period == 1 && gq.len <= 2 && t[q - 1].shape == SH_INITIAL);
                        if (t[q].lab >= 0 || t[q].cov || !nameable(&t[q]) || !joins) break;
                        uint8_t cq = classify(&t[q]);
                        int initial = t[q].shape == SH_INITIAL && c->text[t[q].s] != 'I';
                        if (!(cq == C_I || cq == C_S || cq == C_W || cq == C_O || cq == C_K || initial)) break;
                        t[q].lab = t[i].lab;
                    }
            }
        }
    }
}

/* Lines of a letter head, signature or address label: a short capitalised line right before
 * an address line is the organisation (or the person) it belongs to; one right before a line
 * naming a country is a city ("ALFRICK\nUnited Kingdom"). */
static void line_blocks(ctx *c) {
    tok *t = c->t;
    size_t i = 0;
    while (i < c->nt) {
        size_t a = i, b = i;
        while (b + 1 < c->nt && !gap_info(c, b + 1).nl) b++;
        size_t n = b + 1;
        i = b + 1;
        if (n >= c->nt || b - a >= 4) continue;
        int ok = 1, names = 0;
        for (size_t q = a; q <= b && ok; q++) {
            if (t[q].cov || t[q].lab >= 0) ok = 0;
            else if (!(t[q].shape == SH_CAP || t[q].shape == SH_UPPER || t[q].shape == SH_NOCASE ||
                       (t[q].f & F_PARTICLE)))
                ok = 0;
            else if (t[q].f & (F_STOP | F_TITLE)) ok = 0;
            if (ok && classify(&t[q]) == C_S) names++;
            if (q > a && !gap_space(c, q) && !(gap_info(c, q).len <= 2 && !gap_info(c, q).nl)) ok = 0;
        }
        if (!ok) continue;
        gapinfo g = gap_info(c, n);
        if (g.nl > 2 || g.sentence) continue;
        /* the next line holds an address within its first words ("the corner of 25 Elm St") */
        size_t na = n;
        while (na < c->nt && na < n + 4 && !t[na].cov && !(na > n && gap_info(c, na).nl) && t[na].shape == SH_LOWER &&
               (t[na].f & (F_ENGLISH | F_STOP)))
            na++;
        if (na < c->nt && t[na].cov && t[na].covtype == DEID_ADDRESS && !(na > n && gap_info(c, na).nl)) {
            label(c, a, b, names == (int)(b - a + 1) ? DEID_NAME : DEID_ORGANIZATION);
            continue;
        }
        /* the next line is a country or state, maybe with a postal code */
        size_t e = n;
        while (e + 1 < c->nt && !gap_info(c, e + 1).nl) e++;
        if (e - n <= 4 && (((t[n].f & F_REGION) && !(t[n].f & F_STOP)) || t[n].lab == DEID_LOCATION ||
                           t[n].place_end > (int)n))
            label(c, a, b, DEID_LOCATION);
    }
}

/* A country or state after a place and a comma is a place too, in lower-case text as well
 * ("saint petersburg, russia"; capitalised ones are found as places anyway); and capitalised
 * words before a comma and a capitalised country or state are the town in it, even when they
 * are common words ("Bend, Oregon", "Mill Creek, Washington"). */
static void place_regions(ctx *c) {
    tok *t = c->t;
    for (size_t i = 0; i + 1 < c->nt; i++) {
        tok *n = &t[i + 1];
        gapinfo g = gap_info(c, i + 1);
        if (g.comma != 1 || g.nl || g.other || n->cov) continue;
        int region = (n->f & F_REGION) && !(n->f & (F_ENGLISH | F_MEDICAL | F_STOP));
        if (t[i].lab == DEID_LOCATION && n->lab < 0 && region) n->lab = DEID_LOCATION;
        if (!region || n->shape != SH_CAP || t[i].lab >= 0 || t[i].cov) continue;
        /* the town: one to three capitalised words ending at word i */
        size_t a = i;
        while (a > 0 && i - a < 2 && gap_space(c, a) && t[a - 1].shape == SH_CAP && t[a - 1].lab < 0 &&
               !t[a - 1].cov && !(t[a - 1].f & (F_STOP | F_TITLE)))
            a--;
        int ok = 1;
        for (size_t q = a; q <= i; q++)
            if (t[q].shape != SH_CAP || (t[q].f & (F_STOP | F_TITLE | F_MEDICAL | F_MONTH | F_WEEKDAY))) ok = 0;
        if (!ok) continue;
        for (size_t q = a; q <= i; q++) t[q].lab = DEID_LOCATION;
        if (n->lab < 0) n->lab = DEID_LOCATION;
    }
}

/* A postal code right after a place ("Bjert 6091", "København K 1421"), or right before one
 * where an address line puts it ("..., 75001 Paris", "00-514 Warszawa"): a number of 4-5 digits
 * (or "NN-NNN") after a comma or at the start of a line, followed by a listed place. Four-digit
 * numbers that read as years are left alone ("in 2004 Boston"). */
static void place_postcodes(ctx *c) {
    tok *t = c->t;
    for (size_t i = 0; i + 1 < c->nt; i++) {
        tok *n = &t[i];
        if (n->lab >= 0 || n->cov || n->shape != SH_NUM) continue;
        size_t e = n->e, nd = n->e - n->s;
        size_t j = i + 1;
        if (nd == 6 && c->text[n->s + 2] == '-') {
            nd = 5; /* "00-514" as one word */
        } else if (nd == 2 && e + 1 < c->len && c->text[e] == '-' && t[j].s == e + 1 && t[j].shape == SH_NUM &&
            t[j].e - t[j].s == 3) {
            e = t[j].e; /* "00-514" */
            j++;
            nd = 5;
        } else if (nd < 4 || nd > 5) {
            continue;
        }
        if (nd == 4) {
            int v = deid__digits_value(c->text + n->s, 4);
            if (v >= 1900 && v <= 2099) continue;
        }
        if (j >= c->nt || !gap_space(c, j)) continue;
        gapinfo g = gap_info(c, i);
        if (i > 0 && !g.comma && !g.nl) continue;
        const tok *p = &t[j];
        if (!(p->shape == SH_CAP || p->shape == SH_UPPER) || !(p->f & (F_PLACE | F_REGION)) || (p->f & F_STOP))
            continue;
        sv_add(&c->spans, n->s, e, DEID_ZIP);
        if (p->lab < 0 && !p->cov) t[j].lab = DEID_LOCATION;
    }
    for (size_t i = 0; i + 1 < c->nt; i++) {
        if (t[i].lab != DEID_LOCATION) continue;
        tok *n = &t[i + 1];
        if (n->lab >= 0 || n->cov || n->shape != SH_NUM || n->e - n->s < 3 || n->e - n->s > 9) continue;
        if (!gap_space(c, i + 1)) continue;
        if (i + 2 < c->nt && gap_space(c, i + 2) && (t[i + 2].f & F_MEASURE)) continue;
        size_t e = n->e;
        if (i + 2 < c->nt && gap_space(c, i + 2) && t[i + 2].shape == SH_NUM && t[i + 2].e - t[i + 2].s <= 3 &&
            n->e - n->s == 3)
            e = t[i + 2].e; /* "394 13" */
        sv_add(&c->spans, n->s, e, DEID_ZIP);
    }
}

/* Speaker labels of a transcript or chat ("John: You saved my life!", "mika: who are you?"): a
 * given name alone at the start of a line, followed by a colon and the words spoken. A name that
 * is also a common word ("John", "Will") counts only when another line of the same text starts
 * with an unambiguous name the same way, so that "Plan:" or "Hope: ..." headers stay. */
static int speaker_word(const ctx *c, size_t i, int *ambiguous) {
    const tok *w = &c->t[i];
    if (w->cov || w->nletters < 3 || i + 1 >= c->nt) return 0;
    if (!(w->shape == SH_CAP || w->shape == SH_UPPER || w->shape == SH_LOWER)) return 0;
    /* the flag tests first: the gap scans below run for given names only */
    if (!(w->f & F_FIRST) || (w->f & (F_STOP | F_TITLE | F_MEDICAL | F_NOT_NAME | F_NAME_BEFORE | F_MONTH |
                                      F_WEEKDAY | F_PLACE_WEAK | F_NAME_WEAK)))
        return 0;
    if (i > 0 && !gap_info(c, i).nl) return 0;
    gapinfo g = gap_info(c, i + 1);
    if (g.colon != 1 || g.nl || g.comma || g.period) return 0;
    *ambiguous = (w->f & (F_ENGLISH | F_PLACE | F_REGION)) != 0;
    return 1;
}

static void speaker_labels(ctx *c) {
    int sure = 0;
    for (size_t i = 0; i < c->nt; i++) {
        int amb = 0;
        if (speaker_word(c, i, &amb) && !amb) sure++;
    }
    for (size_t i = 0; i < c->nt; i++) {
        int amb = 0;
        if (!speaker_word(c, i, &amb) || c->t[i].lab >= 0) continue;
        if (amb && sure == 0) continue;
        if (!amb && sure < 2 && c->t[i].shape == SH_LOWER && !c->lower_doc) continue;
        c->t[i].lab = DEID_NAME;
    }
}

/* "Owens, Duran and Oneal", "hubbard, fox and gillespie": family names joined by a comma and
 * "and" are a firm (a law or accounting partnership), in any letter case; two of the three must
 * be names that are no common word ("Smith, Fox and Hound" is not enough with one). */
static void surname_firms(ctx *c) {
    tok *t = c->t;
    for (size_t i = 0; i + 3 < c->nt; i++) {
        size_t j = i + 1, k = i + 2, l = i + 3;
        gapinfo g1 = gap_info(c, j);
        if (g1.comma != 1 || g1.nl || g1.other || g1.period) continue;
        if (!is_word(c, k, "and") || !gap_space(c, k) || !gap_space(c, l)) continue;
        const size_t w[3] = {i, j, l};
        int ok = 1, sure = 0;
        for (int q = 0; q < 3 && ok; q++) {
            const tok *x = &t[w[q]];
            if (x->cov || !(x->f & F_LAST) || (x->f & (F_STOP | F_TITLE)) || x->nletters < 2) ok = 0;
            if (x->shape0 != SH_CAP && x->shape0 != SH_UPPER && x->shape0 != SH_LOWER) ok = 0;
            if (!(x->f & F_AMBIG)) sure++;
        }
        if (!ok || sure < 2) continue;
        /* all written alike: "Owens, Duran and Oneal" or all lower case */
        if ((t[i].shape0 == SH_LOWER) != (t[l].shape0 == SH_LOWER) || (t[i].shape0 == SH_LOWER) != (t[j].shape0 == SH_LOWER))
            continue;
        for (size_t q = i; q <= l; q++) t[q].lab = DEID_ORGANIZATION;
        i = l;
    }
}

/* "Compliance And Risks", "Barnes And Noble": capitalised words joined by a capitalised "And" in
 * the middle of a sentence are the title of a firm or a work, even when all are common words.
 * Headings ("Assessment And Plan:") start a line and are left; clinical words never join. */
static int title_word(const tok *w) {
    return !w->cov && (w->lab < 0 || w->lab == DEID_NAME) && w->shape == SH_CAP && w->nletters >= 2 &&
           !(w->f & (F_STOP | F_TITLE | F_MEDICAL | F_MONTH | F_WEEKDAY));
}

static void title_case_firms(ctx *c) {
    tok *t = c->t;
    for (size_t k = 1; k + 1 < c->nt; k++) {
        if (t[k].shape != SH_CAP || !is_word(c, k, "and") || t[k].sent || !gap_space(c, k) || !gap_space(c, k + 1))
            continue;
        if (!title_word(&t[k - 1]) || !title_word(&t[k + 1])) continue;
        size_t a = k - 1, b = k + 1;
        while (a > 0 && k - a < 3 && !t[a].sent && gap_space(c, a) && title_word(&t[a - 1])) a--;
        while (b + 1 < c->nt && b - k < 3 && gap_space(c, b + 1) && title_word(&t[b + 1])) b++;
        if (t[a].sent) continue;
        gapinfo after = gap_info(c, b + 1 < c->nt ? b + 1 : c->nt);
        if (after.colon) continue;
        for (size_t q = a; q <= b; q++) t[q].lab = DEID_ORGANIZATION;
        k = b;
    }
}

/* The lower-cased word without a possessive ending ("Samoylova's" -> "samoylova"). */
static size_t name_key(const ctx *c, const tok *w, char *buf, size_t cap) {
    size_t ll = deid_lower(c->text + w->s, w->e - w->s, buf, cap);
    return ll == (size_t)-1 ? ll : possessive_stem(buf, ll);
}

/* A name found once is a name wherever it recurs in the same text ("directed by Brad L Key and
 * starring Key", "eric g. samoylova ... early samoylova"). A recurrence is taken when the word is
 * a listed name that is no common word, or when it is written capitalised away from a sentence
 * start (a common word that was part of a name, "Key", "Young", is taken again only so). */
static void propagate_names(ctx *c) {
    enum { MAX_SOURCES = 64 };
    char low[MAX_SOURCES][32];
    size_t low_len[MAX_SOURCES];
    int low_src[MAX_SOURCES]; /* found written in lower case */
    int n = 0;
    tok *t = c->t;
    for (size_t i = 0; i < c->nt && n < MAX_SOURCES; i++) {
        if (t[i].lab != DEID_NAME || t[i].nletters < 3 || (t[i].f & (F_STOP | F_TITLE | F_PARTICLE)) ||
            t[i].shape == SH_INITIAL || t[i].shape == SH_NUM || t[i].shape == SH_ALNUM)
            continue;
        /* only names found with evidence beyond the word itself: part of a longer name ("Brad L
           Key"), or a listed name; a lone unknown word taken for a name ("Enteral formula") is
           too weak to spread */
        int in_name = (i > 0 && t[i - 1].lab == DEID_NAME && gap_info(c, i).len <= 2 && !gap_info(c, i).nl) ||
                      (i + 1 < c->nt && t[i + 1].lab == DEID_NAME && gap_info(c, i + 1).len <= 2 &&
                       !gap_info(c, i + 1).nl);
        if (!in_name && !(t[i].known >= 0) && !((t[i].f & F_NAMES) && !(t[i].f & F_AMBIG))) continue;
        size_t ll = name_key(c, &t[i], low[n], sizeof low[n]);
        if (ll == (size_t)-1 || ll < 3) continue;
        int dup = 0;
        for (int q = 0; q < n && !dup; q++) dup = low_len[q] == ll && !memcmp(low[q], low[n], ll);
        if (dup) continue;
        low_src[n] = t[i].shape0 == SH_LOWER;
        low_len[n++] = ll;
    }
    if (!n) return;
    char buf[32];
    for (size_t i = 0; i < c->nt; i++) {
        tok *w = &t[i];
        if (w->lab >= 0 || w->cov || w->nletters < 3) continue;
        size_t wl = w->e - w->s;
        int cand = 0;
        for (int q = 0; q < n && !cand; q++) cand = low_len[q] == wl || low_len[q] + 2 == wl || low_len[q] + 4 == wl;
        if (!cand) continue;
        size_t ll = name_key(c, w, buf, sizeof buf);
        if (ll == (size_t)-1) continue;
        int hit = 0, src_lower = 0;
        for (int q = 0; q < n && !hit; q++) {
            hit = low_len[q] == ll && !memcmp(low[q], buf, ll);
            src_lower = hit && low_src[q];
        }
        if (!hit) continue;
        int capital = (w->shape == SH_CAP || w->shape == SH_UPPER) && !w->sent;
        int plain_name = (w->f & F_NAMES) && !(w->f & F_AMBIG);
        if ((w->f & (F_STOP | F_TITLE)) || (!capital && !plain_name && !w->oov)) continue;
        if (w->shape == SH_LOWER && !plain_name && !(w->oov && src_lower)) continue;
        if (drug_like(c, i)) continue;
        w->lab = DEID_NAME;
    }
}

static void emit_labels(ctx *c) {
    tok *t = c->t;
    size_t i = 0;
    while (i < c->nt) {
        if (t[i].lab < 0) {
            i++;
            continue;
        }
        size_t j = i;
        while (j + 1 < c->nt && t[j + 1].lab == t[i].lab) {
            gapinfo g = gap_info(c, j + 1);
            int joins = g.space_only || (g.period == 1 && !g.nl && g.len <= 2 && !g.comma) ||
                        (t[i].lab == DEID_ORGANIZATION && !g.nl && g.len <= 3 && !g.sentence);
            if (!joins) break;
            j++;
        }
        size_t e = t[j].e;
        /* a name ending with an initial keeps its period ("John Q.") */
        if (t[j].shape == SH_INITIAL && e < c->len && c->text[e] == '.' && j > i) e++;
        sv_add(&c->spans, t[i].s, e, t[i].lab);
        i = j + 1;
    }
}

/* ---- merge ------------------------------------------------------------------------------- */

static int cmp_span(const void *a, const void *b) {
    const deid_span *x = a, *y = b;
    if (x->start != y->start) return x->start < y->start ? -1 : 1;
    if (x->end != y->end) return x->end > y->end ? -1 : 1;
    return x->type - y->type;
}

size_t deid__merge(deid_span *v, size_t n) {
    if (!n) return 0;
    qsort(v, n, sizeof *v, cmp_span);
    size_t o = 0;
    size_t best_len = v[0].end - v[0].start;
    for (size_t i = 1; i < n; i++) {
        deid_span *cur = &v[o];
        if (v[i].start < cur->end) {
            size_t l = v[i].end - v[i].start;
            if (l > best_len || (l == best_len && v[i].type < cur->type)) {
                cur->type = v[i].type;
                best_len = l;
            }
            if (v[i].end > cur->end) cur->end = v[i].end;
            continue;
        }
        v[++o] = v[i];
        best_len = v[o].end - v[o].start;
    }
    return o + 1;
}

/* ---- the evidence layers, in order ------------------------------------------------------- */

int deid__evidence(ctx *c, cf_err *err) {
    /* at most one word per two bytes (a word and a separator) */
    size_t cap = c->len / 2 + 2;
    c->t = cf_malloc(cap * sizeof *c->t);
    if (!c->t) return cf_fail(err, CF_EINTERNAL, "out of memory for %zu bytes of text", c->len);
    tokenize(c);
    match_phrases(c);
    truecase(c);
    int rc = run_patterns(c, err);
    if (rc) return rc;
    match_known_digits(c);
    cover_spans(c, 0);
    /* known name words are names whatever else the rules say (but not inside an e-mail) */
    for (size_t i = 0; i < c->nt; i++)
        if (c->t[i].known >= 0 && !c->t[i].cov) c->t[i].lab = c->t[i].known;
    find_addresses(c);
    c->spans.cur_tag = (uint32_t)DEID_SRC_RULE << 16;
    find_runs(c);
    speaker_labels(c);
    lower_names(c);
    ampersand_firms(c);
    surname_firms(c);
    title_case_firms(c);
    coordinate(c);
    line_blocks(c);
    place_regions(c);
    place_postcodes(c);
    propagate_names(c);
    emit_labels(c);
    if (c->spans.oom) return cf_fail(err, CF_EINTERNAL, "out of memory");
    for (size_t k = 0; k < c->spans.n; k++)
        if (c->spans.v[k].end > c->len) c->spans.v[k].end = c->len;
    return CF_OK;
}
