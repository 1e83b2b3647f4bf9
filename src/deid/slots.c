/* The rules after the model that read a line's slots (slots.tsv): words the model left where
 * the shape of the line says an identifier stands. Round 10 began them (docs/DEID.md, "Round 10
 * (recall)"): these slots were what the model missed on real notes in every casing alike, as the
 * generator had never written them and no weight was learned for them; rounds 40-51 added one
 * rule each, each switched on by its own slots.tsv kind and declared before it was built or
 * measured. Each rule needs its opener and a closing shape, and never takes a clinical, stop,
 * cue, measure or unit word. decode.c runs deid__slot_rules() after the model and the keep filter,
 * in every casing; the helpers both files use are in decode_int.h. */
#include "deid/decode_int.h"
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* The number of words of a slots.tsv phrase of kind k starting at word j, or 0. */
static int slot_starting_at(const ctx *c, int k, size_t j) {
    if (!(c->r->slots_first[k] & deid__slot_letter_bit(c->text[c->t[j].s]))) return 0;
    return deid__phrase_starting_at(c, &c->r->slots[k], c->r->slots_max_words[k], j);
}

/* Word i may be a person's name in a slot: letters, no clinical, stop, cue, measure or unit
 * word; a listed given or family name (common words too: "Faith", "Ray"), a word in no list,
 * or in a mixed-case note a capitalised word that does not open its line. */
static int slot_name_word(const ctx *c, size_t i, int cont) {
    const tok *t = &c->t[i];
    if (t->nletters < 2 || t->shape0 == SH_NUM || t->shape0 == SH_ALNUM) return 0;
    if (((t->f | t->start | t->cue_end) & SLOT_BAD) || keep_word(t) || t->clin_shape) return 0;
    if (slot_starting_at(c, DEID_SLOT_ABOUT, i) || slot_starting_at(c, DEID_SLOT_MESSAGE, i)) return 0;
    if (t->f & (F_FIRST | F_LAST)) return 1;
    if (t->oov) return 1;
    /* a second word after a name word may be a family name that is a common word ("Lamb") */
    if (cont) return !(t->f & F_MEDICAL) || (t->f & F_ENGLISH);
    /* in mixed case a capital, where no line or sentence opens (the slot's opener is before it) */
    return !c->lower_doc && !c->upper_doc && t->shape0 == SH_CAP && !deid__gap_info(c, i).nl;
}

/* What separates word j-1 from word j, spaces left out: "" (spaces only), "-", ":", "," ... */
static int gap_mark(const ctx *c, size_t j, char *mark, size_t cap) {
    size_t a = c->t[j - 1].e, b = c->t[j].s, n = 0;
    for (size_t q = a; q < b; q++) {
        char ch = c->text[q];
        if (ch == ' ' || ch == '\t') continue;
        if (n + 1 >= cap) return 0;
        mark[n++] = ch;
    }
    mark[n] = 0;
    return 1;
}

/* The run of words ending at z closes where the slot ends: the text's end, a line break, a
 * comma, colon, semicolon, full stop, dash, slash or bracket. */
static int slot_closes(const ctx *c, size_t z) {
    if (z + 1 >= c->nt) return 1;
    gapinfo g = deid__gap_info(c, z + 1);
    if (g.nl || g.comma || g.colon || g.sentence || g.period) return 1;
    char m[8];
    if (!gap_mark(c, z + 1, m, sizeof m)) return 1;
    return m[0] == '-' || m[0] == '/' || m[0] == '(' || m[0] == ')';
}

/* One to three name words from word j (slot_name_word), closed where the slot ends: the run's
 * last word, or -1. */
static long slot_name_run(const ctx *c, size_t j) {
    if (!slot_name_word(c, j, 0)) return -1;
    size_t z = j;
    while (z + 1 < c->nt && z + 1 < j + 3 && deid__gap_info(c, z + 1).space_only && slot_name_word(c, z + 1, 1)) z++;
    return slot_closes(c, z) ? (long)z : -1;
}

/* "call from son (Ned) re Faith, ...", "VM from dtr re: MR DUBOIS -": one to three name words
 * after "re"/"regarding" on a line that holds a message word before it, closed by punctuation. */
static void slot_message(const ctx *c, int8_t *lab, size_t i) {
    if (i == 0 || i + 1 >= c->nt || c->t[i].nletters < 2 || c->t[i].shape0 == SH_NUM || lab[i + 1] >= 0) return;
    int n = slot_starting_at(c, DEID_SLOT_ABOUT, i);
    if (!n) return;
    int msg = 0;
    for (size_t q = i; q > 0 && !msg && i - q < 14; q--) {
        if (deid__gap_info(c, q).nl) break;
        msg = slot_ending_at(c, DEID_SLOT_MESSAGE, q - 1) >= 0;
    }
    if (!msg) return;
    size_t j = i + (size_t)n;
    if (j >= c->nt || deid__gap_info(c, j).nl) return;
    char m[8];
    if (!gap_mark(c, j, m, sizeof m) || (m[0] && strcmp(m, ":"))) return;
    if (c->t[j].cue_end & F_TITLE) { /* "re Mrs Dubois": the model reads the title; the name may follow */
        j++;
        if (j >= c->nt || !deid__close_on_line(c, j)) return;
    }
    long z = slot_name_run(c, j);
    if (z < 0) return;
    for (size_t q = j; q <= (size_t)z; q++)
        if (lab[q] < 0) lab[q] = DEID_NAME;
}

/* "quit 1987", "quit etoh 2003", "PSH: TKR R 1988", "dx'd 2004": a year-shaped number (1930 to
 * 2029) after a history word of slots.tsv at most three words before it in its clause, the words
 * between no numbers; not joined to another number, not before a unit. */
static void slot_year(const ctx *c, int8_t *lab, size_t i) {
    const tok *t = &c->t[i];
    if (lab[i] >= 0 || t->shape0 != SH_NUM || t->e - t->s != 4 || joined_number(c, i) || i == 0) return;
    long v = deid__num_value(c, i);
    if (v < 1930 || v > 2029) return;
    if (i + 1 < c->nt && deid__close_on_line(c, i + 1) && (c->t[i + 1].f & (F_MEASURE | F_UNIT))) return;
    for (size_t p = i; p > 0 && i - p < 4; p--) {
        size_t q = p - 1;
        if (clause_break(c, p) || deid__gap_info(c, p).nl) return;
        if (q + 1 < i && (c->t[q + 1].shape0 == SH_NUM || (c->t[q + 1].f & (F_MEASURE | F_UNIT)))) return;
        if (slot_ending_at(c, DEID_SLOT_YEAR, q) >= 0) {
            lab[i] = DEID_DATE;
            return;
        }
    }
}

/* "Disposition: rehab - Maple Terrace", "Dispo: SNF - Willow Glen Nursing and Rehab": after a
 * disposition word and a dash or colon, a run of name and facility words to the clause's end or
 * a lower-case verb. It needs a word that is no facility word and, in a mixed-case note, capitals
 * on every such word; in one case a listed name or place that is no clinical word, a word in no
 * list, or a facility suffix after a common word ("maple terrace"; "bed offer pending" is none). */
static void slot_dispo(const ctx *c, int8_t *lab, size_t p) {
    if (p + 1 >= c->nt) return;
    char m[8];
    size_t j = p + 1;
    /* the gap first: it is cheaper than the phrase look-up */
    if (!gap_mark(c, j, m, sizeof m) || (strcmp(m, "-") && strcmp(m, ":")) || deid__gap_info(c, j).nl) return;
    if (slot_ending_at(c, DEID_SLOT_DISPO, p) < 0) return;
    int one_case = c->lower_doc || c->upper_doc, other = 0;
    size_t last_named = (size_t)-1, last_suffix = (size_t)-1, first = j;
    for (size_t z = j; z < c->nt && z < j + 6; z++) {
        if (z > j && !deid__gap_info(c, z).space_only) break;
        const tok *t = &c->t[z];
        int fac = slot_starting_at(c, DEID_SLOT_FACILITY, z) == 1;
        int part = !fac && slot_starting_at(c, DEID_SLOT_PART, z) == 1;
        int connector = part && t->nletters <= 3 && (t->f & F_STOP); /* "and", "of", "the", "at" */
        /* in mixed case every word of the name but a connector has its capital */
        if (!one_case && !connector && t->shape0 != SH_CAP && t->shape0 != SH_UPPER) break;
        if (fac || part) {
            if (fac && other) last_suffix = z;
            continue;
        }
        if (t->nletters < 2 || t->shape0 == SH_NUM || t->shape0 == SH_ALNUM) break;
        if (((t->f | t->start) & SLOT_BAD) || keep_word(t) || t->clin_shape) break; /* "transfer to X" */
        if (!other) first = z;
        other = 1;
        if (((t->f & (F_FIRST | F_LAST | F_PLACE)) && !(t->f & (F_ENGLISH | F_MEDICAL | F_NOT_NAME))) || t->oov)
            last_named = z;
    }
    /* the name ends at its last facility word after a name word ("Maple Terrace [has bed]"), or
       at its last listed or unlisted name word ("Stonebridge") */
    size_t end = last_suffix != (size_t)-1 ? last_suffix : last_named;
    if (end == (size_t)-1) return;
    for (size_t q = first; q <= end; q++) /* from its first name word: "rehab - the X" */
        if (lab[q] < 0 || lab[q] == DEID_NAME) lab[q] = DEID_ORGANIZATION;
}

/* "Radiologist: Hunter Frost / Dr. R. Nowak", "Signed: DANA LEE": after a signing role and a
 * colon, one to three name words closed at the line's end, a slash or a comma; one word alone
 * must be a listed name that is no common word or a word in no list. */
static void slot_sign(const ctx *c, int8_t *lab, size_t p) {
    if (p + 1 >= c->nt) return;
    char m[8];
    size_t j = p + 1;
    if (!gap_mark(c, j, m, sizeof m) || strcmp(m, ":") || deid__gap_info(c, j).nl) return;
    if (slot_ending_at(c, DEID_SLOT_SIGN, p) < 0) return;
    if (c->t[j].cue_end & F_TITLE) return; /* "Attending: Dr X": the model reads the title */
    long z = slot_name_run(c, j);
    if (z < 0) return;
    if ((size_t)z == j) {
        const tok *t = &c->t[j];
        if (!(t->oov || ((t->f & (F_FIRST | F_LAST)) && !(t->f & (F_ENGLISH | F_MEDICAL | F_NOT_NAME))))) return;
    }
    for (size_t q = j; q <= (size_t)z; q++)
        if (lab[q] < 0) lab[q] = DEID_NAME;
}

/* "reviewed w/ R, ok to ...", "per W (night RN)": one letter after "per", "w/", "d/w" closed by a
 * comma, semicolon or bracket, or at the line's end. */
static void slot_initial(const ctx *c, int8_t *lab, size_t i) {
    const tok *t = &c->t[i];
    if (lab[i] >= 0 || i == 0 || t->e - t->s != 1 || t->nletters != 1 || !deid__close_on_line(c, i)) return;
    if (slot_ending_at(c, DEID_SLOT_INITIAL, i - 1) < 0) return;
    char m[8];
    /* a space before the letter: "w/o", "s/p" are shorthand */
    if (!gap_mark(c, i, m, sizeof m) || (m[0] && strcmp(m, "/")) || c->text[c->t[i].s - 1] != ' ') return;
    if (i + 1 < c->nt) {
        gapinfo g = deid__gap_info(c, i + 1);
        if (!gap_mark(c, i + 1, m, sizeof m)) return;
        if (!(g.nl || !strcmp(m, ",") || !strcmp(m, ";") || m[0] == '(')) return;
    }
    lab[i] = DEID_NAME;
}

/* A medical word that is no listed name or place: clinical to the slot rules ("Corrigan" is a place too). */
static int unnamed_medical(const tok *t) { return (t->f & F_MEDICAL) && !(t->f & (F_FIRST | F_LAST | F_PLACE)); }

/* Word i may name a ward before its floor number, in any case (rounds 10, 45, 48): a word of two letters
 * or more, no stop, cue or clinical word (a medical word only when a listed name or place), no not_ward
 * word ("bed", "room"). */
static int ward_word(const ctx *c, size_t i) {
    const tok *t = &c->t[i];
    if (t->nletters < 2 || t->shape0 == SH_NUM || t->shape0 == SH_ALNUM) return 0;
    if (((t->f | t->start) & SLOT_BAD) || keep_word(t) || t->clin_shape || unnamed_medical(t)) return 0;
    return slot_starting_at(c, DEID_SLOT_NOT_WARD, i) != 1;
}

/* Round 10's slot and round 45's B: a ward_word that, in a mixed-case note, is capitalised. */
static int ward_name_word(const ctx *c, size_t i) {
    const tok *t = &c->t[i];
    return ward_word(c, i) && (c->lower_doc || c->upper_doc || t->shape0 == SH_CAP || t->shape0 == SH_UPPER);
}

/* "..., cardiology, Lowell 7", "(medicine), East 7": after a service and a comma, one word and a
 * floor number of one or two digits that close the line are a ward (the corpora's wards hold
 * their floor). Not a bed, room or bay (not_ward), a clinical, measure or cue word. */
static void slot_ward(const ctx *c, int8_t *lab, size_t i) {
    if (i < 2 || i + 1 >= c->nt) return;
    const tok *n = &c->t[i + 1];
    if (n->shape0 != SH_NUM || n->e - n->s > 2 || !deid__gap_info(c, i + 1).space_only || joined_number(c, i + 1)) return;
    if (!slot_closes(c, i + 1) || !ward_name_word(c, i)) return;
    char m[8];
    if (deid__gap_info(c, i).nl || !gap_mark(c, i, m, sizeof m) || (strcmp(m, ",") && strcmp(m, "),"))) return;
    if (slot_ending_at(c, DEID_SLOT_SERVICE, i - 1) < 0) return;
    for (size_t q = i; q <= i + 1; q++)
        if (lab[q] < 0 || lab[q] == DEID_NAME) lab[q] = DEID_LOCATION;
}

/* "/jdoe/" alone on its line: an electronic signature's user name (letters only, no common,
 * clinical or cue word). */
static void slot_username(const ctx *c, int8_t *lab, size_t i) {
    const tok *t = &c->t[i];
    if (lab[i] >= 0 || t->nletters < 3 || t->nletters != t->e - t->s || t->e - t->s > 20) return;
    if (t->s == 0 || c->text[t->s - 1] != '/' || t->e >= c->len || c->text[t->e] != '/') return;
    size_t a = t->s - 1, b = t->e + 1;
    while (a > 0 && (c->text[a - 1] == ' ' || c->text[a - 1] == '\t')) a--;
    while (b < c->len && (c->text[b] == ' ' || c->text[b] == '\t' || c->text[b] == '\r')) b++;
    if ((a > 0 && c->text[a - 1] != '\n') || (b < c->len && c->text[b] != '\n')) return;
    if (((t->f | t->start | t->cue_end) & SLOT_BAD) || keep_word(t) || (t->f & (F_ENGLISH | F_MEDICAL))) return;
    lab[i] = DEID_NAME;
}

/* Month/day words: word i and i+1 are "M/D" alone (not in a longer chain, not glued to letters),
 * a month 1-12 and a day 1-31. */
static int month_day(const ctx *c, size_t i) {
    if (i + 1 >= c->nt || c->t[i].shape0 != SH_NUM || c->t[i + 1].shape0 != SH_NUM || !gap_is(c, i + 1, '/')) return 0;
    if (c->t[i].e - c->t[i].s > 2 || c->t[i + 1].e - c->t[i + 1].s > 2) return 0;
    if ((i > 0 && c->t[i].s == c->t[i - 1].e + 1 && !isspace((unsigned char)c->text[c->t[i].s - 1])) ||
        (i > 0 && c->t[i].s == c->t[i - 1].e))
        return 0;
    if (i + 2 < c->nt && (c->t[i + 2].s == c->t[i + 1].e || (c->t[i + 2].s == c->t[i + 1].e + 1 &&
                                                              !isspace((unsigned char)c->text[c->t[i + 1].e]) &&
                                                              c->text[c->t[i + 1].e] != ',' && c->text[c->t[i + 1].e] != '.' &&
                                                              c->text[c->t[i + 1].e] != ')' && c->text[c->t[i + 1].e] != ';')))
        return 0;
    long m = deid__num_value(c, i), d = deid__num_value(c, i + 1);
    return m >= 1 && m <= 12 && d >= 1 && d <= 31;
}

/* A date by position: month/day closing the note's first line, a header of at most six words
 * none of them clinical ("Tel call 9/10", "Phone note 3/2"); or month/day right before a clock
 * time on its line, not after a clinical word or a number ("drawn 5/2 0530"). */
static void slot_dates(const ctx *c, int8_t *lab) {
    /* the first line */
    size_t z = 0;
    while (z + 1 < c->nt && !deid__gap_info(c, z + 1).nl) z++;
    if (c->nt >= 3 && z >= 2 && z <= 7 && month_day(c, z - 1) && lab[z - 1] < 0 && lab[z] < 0 &&
        c->text[c->t[z - 1].s - 1] == ' ' && (z + 1 >= c->nt || deid__gap_info(c, z + 1).space_only == 0)) {
        int ok = 1;
        for (size_t q = 0; q + 1 < z && ok; q++)
            ok = c->t[q].shape0 != SH_NUM && !keep_word(&c->t[q]) && !(c->t[q].f & (F_MEASURE | F_UNIT));
        if (ok) lab[z - 1] = lab[z] = DEID_DATE;
    }
    for (size_t i = 1; i + 2 < c->nt; i++) {
        if ((lab[i] >= 0 && lab[i] != DEID_DATE) || (lab[i + 1] >= 0 && lab[i + 1] != DEID_DATE) ||
            (lab[i] == DEID_DATE && lab[i + 1] == DEID_DATE) || !month_day(c, i))
            continue;
        size_t k = i + 2;
        if (!deid__gap_info(c, k).space_only || !deid__clock_time(c, k)) continue;
        if (k + 1 < c->nt && c->t[k + 1].shape0 == SH_NUM && c->t[k + 1].s == c->t[k].e + 1 &&
            c->text[c->t[k].e] != ' ')
            continue; /* "0600-0800", "1030/45": no clock alone */
        if (c->text[c->t[k].s] > '2') continue; /* "0530", "1430": a clock written with its leading digit */
        const tok *p = &c->t[i - 1];
        if (deid__gap_info(c, i).nl) continue;
        if (p->shape0 == SH_NUM || p->shape0 == SH_ALNUM || keep_word(p) || (p->f & (F_MEASURE | F_UNIT)) ||
            ((p->f & F_MEDICAL) && !(p->f & F_ENGLISH)) || ((p->f & F_MEDICAL) && deid__num_value(c, i + 1) == 10))
            continue; /* "pain 3/10 0800": a score out of ten after a clinical word */
        lab[i] = lab[i + 1] = DEID_DATE;
    }
}

/* Round 40 (A): "pt 91, adm w syncope", "PT IS 101, FROM ...", "Dufresne, 97, lives": a number from
 * 90 to 120 that the model left, alone (not joined to another number), right after a slots.tsv
 * patient phrase (spaces between) or after a word the model typed NAME and a comma, and closed by a
 * comma, semicolon, full stop, closing bracket or the line's end, is an age over 89 in apposition.
 * "pt 98%", "pt 95 kg", "pt 100.4" are none. A rules folder without patient phrases takes none. */
static void slot_age(const ctx *c, int8_t *lab, size_t i) {
    const tok *t = &c->t[i];
    if (lab[i] >= 0 || i == 0 || t->shape0 != SH_NUM || t->e - t->s < 2 || t->e - t->s > 3 || joined_number(c, i)) return;
    if (!c->r->slots_max_words[DEID_SLOT_PATIENT] || deid__gap_info(c, i).nl) return;
    long v = deid__num_value(c, i);
    if (v < 90 || v > 120) return;
    char m[8];
    if (!gap_mark(c, i, m, sizeof m)) return;
    int before = !m[0] ? slot_ending_at(c, DEID_SLOT_PATIENT, i - 1) >= 0 : !strcmp(m, ",") && lab[i - 1] == DEID_NAME;
    if (!before) return;
    if (i + 1 < c->nt && !deid__gap_info(c, i + 1).nl) {
        if (!gap_mark(c, i + 1, m, sizeof m) || !strchr(",;.)", m[0]) || !m[0]) return;
    } else if (i + 1 >= c->nt) {
        /* the text's end: what follows the number is punctuation or nothing */
        for (size_t q = t->e; q < c->len; q++)
            if (!strchr(",;.) \t\r\n", c->text[q])) return;
    }
    lab[i] = DEID_AGE_OVER_89;
}

/* Round 41 (E): "lines drawn 12/4.", "transfer date 12-11,", "wedding Sat 12/5,": a month/day the model
 * left (two numbers of one or two digits joined by one '/' or '-', a month 1-12 and a day 1-31, in no
 * longer chain, glued to no letter, '%' or '.') right after a slots.tsv date_after phrase (an event
 * participle or a date word) or a weekday, with spaces only between, and closing its clause (the
 * line's end, a comma, full stop, semicolon or closing bracket) or before a clock time. "started 1/2
 * NS", "since 3-4 days" and "pain 3/10." are none. A rules folder without date_after phrases takes
 * none. */
/* Words i and i + 1 are a month/day the model left, alone on its line's words (rounds 41 and 44): two
 * numbers of one or two digits joined by one '/' or '-', a month 1-12 and a day 1-31, in no longer
 * chain, glued to no letter, '%' or '.' and digits (after an opening bracket too when bracket), with
 * spaces only before it; *m and *d get the month and the day. */
static int lone_month_day(const ctx *c, const int8_t *lab, size_t i, int bracket, long *m, long *d) {
    if (i == 0 || i + 1 >= c->nt) return 0;
    const tok *a = &c->t[i], *b = &c->t[i + 1];
    if (lab[i] >= 0 || lab[i + 1] >= 0 || a->shape0 != SH_NUM || b->shape0 != SH_NUM) return 0;
    if (a->e - a->s > 2 || b->e - b->s > 2 || b->s != a->e + 1 || (c->text[a->e] != '/' && c->text[a->e] != '-')) return 0;
    *m = deid__num_value(c, i);
    *d = deid__num_value(c, i + 1);
    if (*m < 1 || *m > 12 || *d < 1 || *d > 31) return 0;
    /* alone: no number, letter, '%' or '.' glued before or after, no third number in the chain */
    if (a->s > 0 && !isspace((unsigned char)c->text[a->s - 1]) && !(bracket && c->text[a->s - 1] == '(')) return 0;
    if (b->e < c->len && (isalnum((unsigned char)c->text[b->e]) || c->text[b->e] == '%' || c->text[b->e] == '/' ||
                          c->text[b->e] == '-' || (c->text[b->e] == '.' && b->e + 1 < c->len && isdigit((unsigned char)c->text[b->e + 1]))))
        return 0;
    gapinfo g = deid__gap_info(c, i);
    return !g.nl && g.space_only;
}

/* The month/day at words i, i + 1 closes its clause (the line's end, a comma, full stop, semicolon or
 * closing bracket follows), or a clock time follows it. */
static int month_day_closes(const ctx *c, size_t i) {
    if (i + 2 >= c->nt || deid__gap_info(c, i + 2).nl) return 1;
    char mk[8];
    if (!gap_mark(c, i + 2, mk, sizeof mk)) return 0;
    int closes = mk[0] && strchr(",.;)", mk[0]);
    return closes || (!mk[0] && deid__clock_time(c, i + 2));
}

static void slot_event_date(const ctx *c, int8_t *lab, size_t i) {
    long m, d;
    if (!c->r->slots_max_words[DEID_SLOT_DATE_AFTER] || !lone_month_day(c, lab, i, 1, &m, &d)) return;
    if (!(c->t[i - 1].f & F_WEEKDAY) && slot_ending_at(c, DEID_SLOT_DATE_AFTER, i - 1) < 0) return;
    if (!month_day_closes(c, i)) return;
    lab[i] = lab[i + 1] = DEID_DATE;
}

/* Round 42 (W): "arrived to 4 North bed 12", "med surg 5 WEST.", "West 6": a number of one or two
 * digits (1-30) and a slots.tsv ward_side word next to each other on a line, in either order,
 * spaces only between, are a ward of the hospital (the corpora count a ward with its floor as a
 * place). The number is joined to no other number; not right after a not_ward word ("bed 3
 * east"), not before a unit or measure word. Words the model typed otherwise than a name, place
 * or organisation stay as they are. A rules folder without ward_side words takes none. */
static int ward_number(const ctx *c, size_t i) {
    const tok *t = &c->t[i];
    if (t->shape0 != SH_NUM || t->e - t->s > 2 || joined_number(c, i)) return 0;
    long v = deid__num_value(c, i);
    return v >= 1 && v <= 30;
}

/* Words i and i + 1 are a ward by its side and floor (round 42's W; the labels aside). */
int deid__ward_pair(const ctx *c, size_t i) {
    if (!c->r->slots_max_words[DEID_SLOT_WARD_SIDE] || i + 1 >= c->nt) return 0;
    gapinfo g = deid__gap_info(c, i + 1);
    if (g.nl || !g.space_only) return 0;
    int side_after = ward_number(c, i) && slot_starting_at(c, DEID_SLOT_WARD_SIDE, i + 1) == 1;
    int side_before = !side_after && ward_number(c, i + 1) && slot_ending_at(c, DEID_SLOT_WARD_SIDE, i) == (long)i;
    if (!side_after && !side_before) return 0;
    if (i > 0 && !deid__gap_info(c, i).nl && slot_ending_at(c, DEID_SLOT_NOT_WARD, i - 1) >= 0) return 0;
    /* round 50 (W3): a ward_room word after the pair ("5 north rm 512") is the ward's room, no unit */
    if (i + 2 < c->nt && deid__close_on_line(c, i + 2) && (c->t[i + 2].f & (F_MEASURE | F_UNIT)) &&
        ((c->t[i + 2].f & F_MEASURE) || slot_starting_at(c, DEID_SLOT_WARD_ROOM, i + 2) != 1))
        return 0;
    return 1;
}

static void slot_ward_side(const ctx *c, int8_t *lab, size_t i) {
    if (!deid__ward_pair(c, i)) return;
    for (size_t q = i; q <= i + 1; q++)
        if (lab[q] >= 0 && !is_name_type(lab[q])) return;
    lab[i] = lab[i + 1] = DEID_LOCATION;
}

/* What opens word i after the word before it, for a name after a role or relation (rounds 43, 45):
 * spaces only (0), an opening bracket (1), anything else or a line break (-1). */
static int space_or_bracket(const ctx *c, size_t i) {
    char m[8];
    if (deid__gap_info(c, i).nl || !gap_mark(c, i, m, sizeof m)) return -1;
    return !m[0] ? 0 : !strcmp(m, "(") ? 1 : -1;
}

/* Word z is followed, past spaces, by ")" or ",": a bracketed name closes there. */
static int closed_in_bracket(const ctx *c, size_t z) {
    size_t q = c->t[z].e;
    while (q < c->len && (c->text[q] == ' ' || c->text[q] == '\t')) q++;
    return q < c->len && (c->text[q] == ')' || c->text[q] == ',');
}

/* A word of a person's name for round 42's P: in no list at all, or a listed name that is no
 * common or clinical word; never a cue, stop, keep-list, role or charting-verb word. */
static int person_word_shape(const tok *t) { /* the word's own flags and shape: no phrase look-up */
    if (t->nletters < 2 || t->shape0 == SH_NUM || t->shape0 == SH_ALNUM) return 0;
    if (((t->f | t->start | t->cue_end) & NOT_A_LEFT_NAME) || keep_word(t) || t->clin_shape) return 0;
    if (t->f & (F_ENGLISH | F_MEDICAL | F_NOT_NAME)) return 0;
    return t->oov || (t->f & (F_FIRST | F_LAST));
}

static int person_word(const ctx *c, size_t i) {
    if (!person_word_shape(&c->t[i])) return 0;
    return !(role_ending_at(c, i) >= 0 || deid__verb_starting_at(c, i) || slot_starting_at(c, DEID_SLOT_PERSON_AFTER, i));
}

/* The last word of a person's name that opens at word i (rounds 42, 47): a next word on the line, after
 * spaces only, joins it when the model left it, person_word says it may be a name and it is in no list
 * or a listed family name ("Cormac O'Driscoll" is two). */
static size_t person_run_end(const ctx *c, const int8_t *lab, size_t i) {
    size_t z = i;
    if (z + 1 < c->nt && lab[z + 1] < 0 && !deid__gap_info(c, z + 1).nl && deid__gap_info(c, z + 1).space_only &&
        person_word(c, z + 1) && (c->t[z + 1].oov || (c->t[z + 1].f & F_LAST)))
        z++;
    return z;
}

/* Round 42 (P): "per midwife odalys.", "lactation (fiadh) to see", "Pharm (Aoife) double checked",
 * "intake (Dana, 555-0158)": in any case, a word the model left right after a slots.tsv
 * person_after phrase (care roles and relations keep_roles.txt and cues.tsv do not hold), or after
 * any care role or kinship word and an opening bracket, is a name when person_word says it may be
 * one; after a bracket, a ")" or "," must close it. A next word in no list or a listed family name
 * that is no common word joins it. (An unlisted word after a keep_roles.txt role and a space is as
 * often shorthand, "OT eval": round 9 left it, and so does this rule.) A rules folder without
 * person_after phrases takes none. */
static void slot_person_after(const ctx *c, int8_t *lab, size_t i) {
    if (!c->r->slots_max_words[DEID_SLOT_PERSON_AFTER] || i == 0 || lab[i] >= 0) return;
    int bracket = space_or_bracket(c, i);
    if (bracket < 0) return;
    /* the word's own flags first: most words are no name, and the phrase look-ups cost more */
    if (!person_word_shape(&c->t[i])) return;
    int after_new = slot_ending_at(c, DEID_SLOT_PERSON_AFTER, i - 1) >= 0;
    int after_any = after_new || role_ending_at(c, i - 1) >= 0 || (c->t[i - 1].cue_end & F_KIN);
    if (bracket ? !after_any : !after_new) return;
    if (!person_word(c, i)) return;
    size_t z = person_run_end(c, lab, i);
    if (bracket && !closed_in_bracket(c, z)) return;
    for (size_t q = i; q <= z; q++) lab[q] = DEID_NAME;
}

/* "SN 302815ZX", "serial # 4471209": after a serial-number word, a code of five digits or more. */
static void slot_serial(const ctx *c, int8_t *lab, size_t p) {
    if (p + 1 >= c->nt) return;
    size_t i = p + 1;
    const tok *t = &c->t[i];
    if (lab[i] >= 0 || (t->shape0 != SH_NUM && t->shape0 != SH_ALNUM) || t->e - t->s < 5) return;
    char m[8];
    if (deid__gap_info(c, i).nl || !gap_mark(c, i, m, sizeof m) || (m[0] && strcmp(m, ":") && strcmp(m, "#"))) return;
    if (slot_ending_at(c, DEID_SLOT_SERIAL, p) < 0) return;
    int digits = 0;
    for (size_t q = t->s; q < t->e; q++) digits += c->text[q] >= '0' && c->text[q] <= '9';
    if (digits < 5) return;
    lab[i] = DEID_ID;
}

/* Mixed case: a capitalised word right after a kinship word or a care role ("nephew Tunde,",
 * "granddaughter Peg prefers", "SW Lark"), which the model left: a listed name that is no common
 * word or a word in no list; a given name that is also a common word only after a kinship word
 * and not before a verb ("son Will call" stays). A capitalised family name after it joins it. */
static void mixed_case_names(const ctx *c, int8_t *lab) {
    if (c->lower_doc || c->upper_doc) return;
    const deid_flags bad = NOT_A_LEFT_NAME;
    for (size_t i = 1; i < c->nt; i++) {
        const tok *t = &c->t[i];
        if (lab[i] >= 0 || t->nletters < 2 || t->shape0 != SH_CAP) continue;
        if (((t->f | t->start | t->cue_end) & bad) || keep_word(t) || t->clin_shape) continue;
        gapinfo g = deid__gap_info(c, i);
        if (g.nl || !g.space_only) continue;
        int kin = (c->t[i - 1].cue_end & F_KIN) != 0, role = kin ? 0 : role_ending_at(c, i - 1) >= 0;
        if (!kin && !role) continue;
        if (role_ending_at(c, i) >= 0 || deid__verb_starting_at(c, i)) continue;
        if (i + 1 < c->nt && c->t[i + 1].shape0 == SH_LOWER && deid__close_on_line(c, i + 1) &&
            (c->t[i + 1].start & c->r->verb_after_name))
            continue;
        /* a heading in title case ("SW Initial Assessment", a typo in no list) */
        if (i + 1 < c->nt && deid__close_on_line(c, i + 1) && c->t[i + 1].shape0 == SH_CAP &&
            (c->t[i + 1].f & (F_ENGLISH | F_MEDICAL)) && !(c->t[i + 1].f & F_LAST))
            continue;
        int listed = (t->f & (F_FIRST | F_LAST)) != 0;
        int common = (t->f & (F_ENGLISH | F_MEDICAL | F_NOT_NAME)) != 0;
        int take = (listed && !common) || (t->oov && !common) || (kin && listed && (t->f & F_FIRST));
        if (!take) continue;
        lab[i] = DEID_NAME;
        if (i + 1 < c->nt && lab[i + 1] < 0 && c->t[i + 1].shape0 == SH_CAP && deid__gap_info(c, i + 1).space_only &&
            !((c->t[i + 1].f | c->t[i + 1].start) & bad) && !keep_word(&c->t[i + 1]) &&
            (((c->t[i + 1].f & F_LAST) && !(c->t[i + 1].f & (F_ENGLISH | F_MEDICAL))) || c->t[i + 1].oov))
            lab[i + 1] = DEID_NAME;
    }
}

/* Round 44 (T): "notified Dr hallworth, 1 u prbc ordered", "school teacher ms rutherford sent card":
 * a word the model left right after a slots.tsv honorific on its line, in any case, is a name when it
 * is in no list or a listed given or family name (a common or clinical word that is a listed name
 * too: "Dr Bell", "Mr. Foley"); never a stop or cue word, a charting verb, a number, or a common or
 * clinical word that names no one in the lists ("Dr aware", "Dr ordered lasix", "Dr to see"). A
 * next word in no list or a listed family name joins it. The dense model leaves such names in notes
 * thick with clinical words, most often typed in lower case in a mixed-case note, which neither the
 * one-case rule (round 9) nor the mixed-case one (capitals only) reads. A rules folder without
 * honorifics takes none. */
static int honorific_name_word(const ctx *c, size_t i) {
    const tok *t = &c->t[i];
    const deid_flags bad = SLOT_BAD & ~(deid_flags)F_KEEP;
    if (t->nletters < 2 || t->shape0 == SH_NUM || t->shape0 == SH_ALNUM || t->shape0 == SH_INITIAL) return 0;
    if ((t->f | t->start) & bad) return 0;
    if (deid__verb_starting_at(c, i) || role_ending_at(c, i) >= 0 || slot_starting_at(c, DEID_SLOT_HONORIFIC, i)) return 0;
    return t->oov || (t->f & (F_FIRST | F_LAST));
}

static void slot_honorific(const ctx *c, int8_t *lab, size_t i) {
    if (!c->r->slots_max_words[DEID_SLOT_HONORIFIC] || i == 0 || lab[i] >= 0) return;
    gapinfo g = deid__gap_info(c, i);
    if (g.nl) return;
    char m[8];
    if (!gap_mark(c, i, m, sizeof m) || (m[0] && strcmp(m, "."))) return;
    if (slot_ending_at(c, DEID_SLOT_HONORIFIC, i - 1) < 0 || !honorific_name_word(c, i)) return;
    size_t z = i;
    if (z + 1 < c->nt && lab[z + 1] < 0 && deid__gap_info(c, z + 1).space_only && !deid__gap_info(c, z + 1).nl &&
        honorific_name_word(c, z + 1) && (c->t[z + 1].oov || (c->t[z + 1].f & F_LAST)))
        z++;
    for (size_t q = i; q <= z; q++) lab[q] = DEID_NAME;
}

/* Word p is a past participle for round 44's D: a slots.tsv participle phrase ("given", "seen"), or a
 * word of four letters or more, letters only, ending in "ed" ("marked", "signed"). */
static int participle_word(const ctx *c, size_t p) {
    if (slot_ending_at(c, DEID_SLOT_PARTICIPLE, p) >= 0) return 1;
    const tok *t = &c->t[p];
    size_t n = t->e - t->s;
    if (n < 4 || t->nletters != n) return 0;
    return (c->text[t->e - 2] | 32) == 'e' && (c->text[t->e - 1] | 32) == 'd';
}

/* Round 44 (D): "bmz #2 given 12/3.", "demarcation marked 12/4, redness", "signed 4-17.": a month/day
 * the model left (round 41's shape: two numbers of one or two digits joined by one '/' or '-', a
 * month 1-12 and a day 1-31, in no longer chain, glued to nothing) right after a past participle,
 * spaces only between, closing its clause (the line's end, a comma, full stop, semicolon or closing
 * bracket) or before a clock time, is a date; never a score out of ten or a fraction ("1/2", "2/3",
 * "3/4": a first number below a second of 2-4). A rules folder without participle phrases takes
 * none. */
static void slot_participle_date(const ctx *c, int8_t *lab, size_t i) {
    long m, d;
    if (!c->r->slots_max_words[DEID_SLOT_PARTICIPLE] || !lone_month_day(c, lab, i, 0, &m, &d)) return;
    if (d == 10 || (m < d && d <= 4) || !participle_word(c, i - 1) || !month_day_closes(c, i)) return;
    lab[i] = lab[i + 1] = DEID_DATE;
}

/* Round 45 (K): "pt ambulating w/ partner wren.", "lives w/ his daughter marigold.", "NEIGHBOR CHUCK WHO
 * DID CPR": a slots.tsv word_name word (a given name that is a common English word and in no
 * given-name list, so no rule reads it as a name) that the model left, right after a kinship word or
 * a person_after relation, after spaces or an opening bracket (then closed by ")" or ","), in any case,
 * is a name. A rules folder without word_name words takes none. */
static void slot_word_name(const ctx *c, int8_t *lab, size_t i) {
    if (!c->r->slots_max_words[DEID_SLOT_WORD_NAME] || i == 0 || lab[i] >= 0) return;
    int bracket = space_or_bracket(c, i);
    if (bracket < 0 || slot_starting_at(c, DEID_SLOT_WORD_NAME, i) != 1) return;
    if (!(c->t[i - 1].cue_end & F_KIN) && slot_ending_at(c, DEID_SLOT_PERSON_AFTER, i - 1) < 0) return;
    if (bracket && !closed_in_bracket(c, i)) return;
    lab[i] = DEID_NAME;
}

/* Round 45 (B): "transfer to step-down (Corrigan 7) once bed opens", "from micu (ellison 6) at 1100": an
 * opening bracket right after a slots.tsv ward_unit phrase, holding one word and a floor number of one
 * or two digits and closed by ")", is a ward, a place (round 10's ward slot reads "unit, Name 7" closing
 * a line only). The word is no stop, cue, clinical, measure or not_ward word ("micu (bed 6)"), and in a
 * mixed-case note has its capital. A rules folder without ward_unit phrases takes none. */
int deid__ward_in_brackets(const ctx *c, size_t i) {
    if (!c->r->slots_max_words[DEID_SLOT_WARD_UNIT] || i == 0 || i + 1 >= c->nt) return 0;
    const tok *n = &c->t[i + 1];
    if (n->shape0 != SH_NUM || n->e - n->s > 2) return 0;
    if (!deid__gap_info(c, i + 1).space_only || deid__gap_info(c, i).nl || deid__gap_info(c, i + 1).nl) return 0;
    char m[8];
    if (!gap_mark(c, i, m, sizeof m) || strcmp(m, "(")) return 0;
    if (n->e >= c->len || c->text[n->e] != ')' || !ward_name_word(c, i)) return 0;
    return slot_ending_at(c, DEID_SLOT_WARD_UNIT, i - 1) >= 0;
}

static void slot_ward_brackets(const ctx *c, int8_t *lab, size_t i) {
    if (!deid__ward_in_brackets(c, i)) return;
    for (size_t q = i; q <= i + 1; q++)
        if (lab[q] >= 0 && !is_name_type(lab[q])) return;
    lab[i] = lab[i + 1] = DEID_LOCATION;
}

/* A four-digit number that reads as a clock time (hours 00-23, minutes 00-59): rounds 46's I and X
 * never take one. */
static int hhmm(long v) { return v / 100 <= 23 && v % 100 <= 59; }

static int clock_like(const ctx *c, size_t i) {
    const tok *t = &c->t[i];
    return t->shape0 == SH_NUM && t->e - t->s == 4 && hhmm(deid__num_value(c, i));
}

/* Round 46 (I): the code that starts at word i: words joined by single glued hyphens ("IR-2026-4471",
 * "AUTH-7732019"), 4-20 characters, at least three digits, or a number of four digits or more; its
 * last word, or -1. Never a clock time, never before a unit or measure word. */
static long id_code(const ctx *c, size_t i) {
    size_t z = i;
    while (z + 1 < c->nt && c->t[z + 1].s == c->t[z].e + 1 && c->text[c->t[z].e] == '-') z++;
    size_t len = c->t[z].e - c->t[i].s, digits = 0;
    for (size_t q = c->t[i].s; q < c->t[z].e; q++) digits += c->text[q] >= '0' && c->text[q] <= '9';
    if (len < 4 || len > 20 || digits < 3) return -1;
    for (size_t q = c->t[i].s; q < c->t[z].e; q++)
        if (!isalnum((unsigned char)c->text[q]) && c->text[q] != '-') return -1;
    if (z == i && clock_like(c, i)) return -1;
    if (z + 1 < c->nt && deid__close_on_line(c, z + 1) && (c->t[z + 1].f & (F_MEASURE | F_UNIT))) return -1;
    /* glued to a letter or digit on the right ("#4471b" is still one code; a '.' and digits is a number) */
    if (c->t[z].e < c->len && c->text[c->t[z].e] == '.' && c->t[z].e + 1 < c->len && isdigit((unsigned char)c->text[c->t[z].e + 1]))
        return -1;
    return (long)z;
}

/* Round 46 (I): "INCIDENT REPORT #IR-2026-4471 FILED.", "left card, badge 4471.", "auth # AUTH-7732019": a
 * code (id_code) the model left, right after "#" (glued or after spaces, the "#" after any word), or
 * right after a slots.tsv id_word phrase with spaces, ":", "#" or "no." between, is an identifier.
 * "bmz #2" and "line # 2" are too short; "report at 1900" has "at" between and is a clock. A rules
 * folder without id_word phrases takes none. */
static void slot_id_code(const ctx *c, int8_t *lab, size_t i) {
    if (!c->r->slots_max_words[DEID_SLOT_ID_WORD] || i == 0 || lab[i] >= 0 || deid__gap_info(c, i).nl) return;
    const tok *t = &c->t[i];
    if (t->shape0 != SH_NUM && t->shape0 != SH_ALNUM && !(i + 1 < c->nt && c->t[i + 1].s == t->e + 1 && c->text[t->e] == '-'))
        return;
    char m[8];
    if (!gap_mark(c, i, m, sizeof m)) return;
    int hash = !strcmp(m, "#");
    if (!hash) {
        size_t p = i - 1;
        if (!strcmp(m, "") || !strcmp(m, ":") || !strcmp(m, "#:")) {
        } else if (!strcmp(m, ".") && p > 0 && word_is(c, p, "no")) {
            p--;
        } else
            return;
        if (slot_ending_at(c, DEID_SLOT_ID_WORD, p) < 0) return;
    }
    long z = id_code(c, i);
    if (z < 0) return;
    for (size_t q = i; q <= (size_t)z; q++)
        if (lab[q] >= 0) return;
    for (size_t q = i; q <= (size_t)z; q++) lab[q] = DEID_ID;
}

/* Round 46 (X): "dr adeyemi paged 3317.", "paged at 2281", "paged 4-7731, called back", "ext 212",
 * "CHARGE MAUREEN X3380 SAYS": a number the model left right after a slots.tsv pager_word phrase
 * (spaces, ":", "#", "at" or "to" between) of three to five digits, or one digit, a glued hyphen and
 * four digits, is a phone; so is "x" or "X" glued to four or five digits anywhere. Never a clock
 * time, never before a unit or measure word. A rules folder without pager_word phrases takes none. */
static void slot_pager(const ctx *c, int8_t *lab, size_t i) {
    if (!c->r->slots_max_words[DEID_SLOT_PAGER_WORD] || lab[i] >= 0) return;
    const tok *t = &c->t[i];
    size_t n = t->e - t->s;
    if (i + 1 < c->nt && deid__close_on_line(c, i + 1) && (c->t[i + 1].f & (F_MEASURE | F_UNIT))) return;
    if (t->shape0 == SH_ALNUM && (n == 5 || n == 6) && (c->text[t->s] | 32) == 'x') {
        for (size_t q = t->s + 1; q < t->e; q++)
            if (!isdigit((unsigned char)c->text[q])) return;
        if (n == 5) {
            long v = 0;
            for (size_t q = t->s + 1; q < t->e; q++) v = v * 10 + (c->text[q] - '0');
            if (hhmm(v)) return;
        }
        lab[i] = DEID_PHONE;
        return;
    }
    if (i == 0 || t->shape0 != SH_NUM || deid__gap_info(c, i).nl) return;
    size_t z = i;
    if (n == 1 && i + 1 < c->nt && c->t[i + 1].s == t->e + 1 && c->text[t->e] == '-' && c->t[i + 1].shape0 == SH_NUM &&
        c->t[i + 1].e - c->t[i + 1].s == 4)
        z = i + 1;
    else if (n < 3 || n > 5 || clock_like(c, i))
        return;
    if (z + 1 < c->nt && c->t[z + 1].s == c->t[z].e + 1 && strchr("-/.", c->text[c->t[z].e]) &&
        c->t[z + 1].shape0 == SH_NUM)
        return; /* a longer chain: a date, a range, a full phone the patterns read */
    if (c->t[i].s > 0 && !isspace((unsigned char)c->text[c->t[i].s - 1]) && c->text[c->t[i].s - 1] != '#' &&
        c->text[c->t[i].s - 1] != ':')
        return;
    size_t p = i - 1;
    char m[8];
    if (!gap_mark(c, i, m, sizeof m) || (m[0] && strcmp(m, ":") && strcmp(m, "#"))) return;
    if (!m[0] && (word_is(c, p, "at") || word_is(c, p, "to")) && p > 0 && !deid__gap_info(c, p).nl) {
        if (!gap_mark(c, p, m, sizeof m) || m[0]) return;
        p--;
    }
    if (slot_ending_at(c, DEID_SLOT_PAGER_WORD, p) < 0) return;
    for (size_t q = i; q <= z; q++)
        if (lab[q] >= 0) return;
    for (size_t q = i; q <= z; q++) lab[q] = DEID_PHONE;
}

/* Round 47 (F): "report to oduya, pt stable.", "CCU 0700 HANDOFF FROM CORMAC: PT ON IABP", "handoff to
 * bexley:": in any case, a word the model left right after a slots.tsv handoff phrase, spaces only between,
 * on one line, is a name when person_word says it may be one or it is a word_name word (round 45's
 * given names that are common words); a next word joins as in P. "report to floor", "handoff to
 * oncoming rn" stay. A rules folder without handoff phrases takes none. */
static void slot_handoff_name(const ctx *c, int8_t *lab, size_t i) {
    if (!c->r->slots_max_words[DEID_SLOT_HANDOFF] || i == 0 || lab[i] >= 0 || space_or_bracket(c, i) != 0) return;
    /* the word's own flags before the phrase look-ups (a word_name word is looked up only when needed) */
    int shape = person_word_shape(&c->t[i]);
    int word_name = !shape && slot_starting_at(c, DEID_SLOT_WORD_NAME, i) == 1;
    if (!shape && !word_name) return;
    if (slot_ending_at(c, DEID_SLOT_HANDOFF, i - 1) < 0) return;
    if (!word_name && !person_word(c, i) && slot_starting_at(c, DEID_SLOT_WORD_NAME, i) != 1) return;
    size_t z = person_run_end(c, lab, i);
    for (size_t q = i; q <= z; q++) lab[q] = DEID_NAME;
}

/* Bytes of a double quote at text[q] (straight, or a curly opening or closing one in UTF-8), else 0. */
static int quote_at(const ctx *c, size_t q, int opening) {
    if (q >= c->len) return 0;
    if (c->text[q] == '"') return 1;
    if (q + 2 < c->len && (unsigned char)c->text[q] == 0xE2 && (unsigned char)c->text[q + 1] == 0x80 &&
        (unsigned char)c->text[q + 2] == (opening ? 0x9C : 0x9D))
        return 3;
    return 0;
}

/* Word t is letters only (UTF-8 letters too), apart from hyphens or apostrophes inside: two letters or more. */
static int letters_word(const ctx *c, const tok *t) {
    if (t->nletters < 2) return 0;
    for (size_t q = t->s; q < t->e; q++) {
        unsigned char ch = (unsigned char)c->text[q];
        if (!(isalpha(ch) || ch >= 0x80 || ((ch == '-' || ch == '\'') && q > t->s && q + 1 < t->e))) return 0;
    }
    return 1;
}

/* Words i..*z are one or two words in double quotes (Q's shape, rounds 47 and 50): the opening quote right
 * after the word before (spaces or ":" between) and glued to word i, the closing one glued to word *z;
 * two words joined by one space, or by a hyphen or apostrophe glued on both sides; no stop, keep-list or
 * clinical-shape word, none the model typed otherwise than a name. */
static int quoted_words(const ctx *c, const int8_t *lab, size_t i, size_t *zp) {
    if (i == 0 || deid__gap_info(c, i).nl) return 0;
    size_t a = c->t[i - 1].e, b = c->t[i].s, q = a;
    while (q < b && (c->text[q] == ' ' || c->text[q] == '\t')) q++;
    if (q < b && c->text[q] == ':') q++;
    while (q < b && (c->text[q] == ' ' || c->text[q] == '\t')) q++;
    int open = quote_at(c, q, 1);
    if (!open || q + (size_t)open != b) return 0;
    size_t z = i;
    int words = 1;
    for (;;) {
        const tok *t = &c->t[z];
        if (!letters_word(c, t) || (t->f & F_STOP) || keep_word(t) || t->clin_shape) return 0;
        if (lab[z] >= 0 && !is_name_type(lab[z])) return 0;
        if (quote_at(c, t->e, 0)) break;
        if (z + 1 >= c->nt || deid__gap_info(c, z + 1).nl) return 0;
        char m[8];
        if (!gap_mark(c, z + 1, m, sizeof m)) return 0;
        if (!m[0]) {
            if (++words > 2 || c->t[z + 1].s != t->e + 1) return 0; /* one space between the two words */
        } else if (strcmp(m, "-") && strcmp(m, "'")) {
            return 0;
        } else if (c->t[z + 1].s != t->e + 1) {
            return 0; /* "sung-min", "o'neil": the mark glued to both sides */
        }
        z++;
    }
    *zp = z;
    return 1;
}

/* Round 47 (Q): 'pt prefers "birdie", sharp', 'nickname "Bugsy", prefers it', 'registered as "Trauma Papa"':
 * one or two words of letters (hyphens and apostrophes inside) in double quotes, the opening quote right
 * after a slots.tsv nickname phrase (spaces or ":" between) and the closing one right after the words,
 * are a name in any case, unless a word is a stop, keep-list or clinical word or the model typed it
 * otherwise. A rules folder without nickname phrases takes none. */
static void slot_nickname(const ctx *c, int8_t *lab, size_t i) {
    size_t z;
    if (!c->r->slots_max_words[DEID_SLOT_NICKNAME] || !quoted_words(c, lab, i, &z)) return;
    if (slot_ending_at(c, DEID_SLOT_NICKNAME, i - 1) < 0) return;
    for (size_t w = i; w <= z; w++) lab[w] = DEID_NAME;
}

/* Round 50 (Q'): 'calling for "bunny" (wife)', 'friend "moose" brought glasses': quoted_words right after a
 * slots.tsv call_for phrase, a kinship word, or a relation or person_after phrase are a name when every
 * word is a listed given name or a word_name or word_name2 word ('asking for "water"' stays). A rules
 * folder without call_for phrases takes none. */
static void slot_called_for(const ctx *c, int8_t *lab, size_t i) {
    size_t z;
    if (!c->r->slots_max_words[DEID_SLOT_CALL_FOR] || !quoted_words(c, lab, i, &z)) return;
    for (size_t w = i; w <= z; w++)
        if (!(c->t[w].f & F_FIRST) && slot_starting_at(c, DEID_SLOT_WORD_NAME, w) != 1 &&
            slot_starting_at(c, DEID_SLOT_WORD_NAME2, w) != 1)
            return;
    if (slot_ending_at(c, DEID_SLOT_CALL_FOR, i - 1) < 0 && !(c->t[i - 1].cue_end & F_KIN) &&
        slot_ending_at(c, DEID_SLOT_RELATION, i - 1) < 0 && slot_ending_at(c, DEID_SLOT_PERSON_AFTER, i - 1) < 0)
        return;
    for (size_t w = i; w <= z; w++) lab[w] = DEID_NAME;
}

/* Round 50 (G): "-- jmc", "-ck", "--ldw rn": a line holding only one or two dashes and a word of two to four
 * letters (then, at most, a slots.tsv sign_dash credential: "rn", "lpn") is a name, the initials signing
 * the note; never a stop, keep-list, clinical-shape, role or medical word ("-- ok", "-- rn"). A rules
 * folder without sign_dash words takes none. */
static void slot_sign_initials(const ctx *c, int8_t *lab, size_t i) {
    if (!c->r->slots_max_words[DEID_SLOT_SIGN_DASH] || lab[i] >= 0) return;
    const tok *t = &c->t[i];
    if (t->nletters < 2 || t->nletters > 4 || t->nletters != t->e - t->s) return;
    if ((t->f & (F_STOP | F_MEDICAL)) || keep_word(t) || t->clin_shape || role_ending_at(c, i) >= 0) return;
    if (slot_starting_at(c, DEID_SLOT_SIGN_DASH, i)) return;
    /* before: the line's start, spaces, one or two dashes, spaces */
    size_t q = t->s;
    while (q > 0 && c->text[q - 1] == ' ') q--;
    int dashes = 0;
    while (q > 0 && c->text[q - 1] == '-' && dashes < 3) q--, dashes++;
    if (dashes < 1 || dashes > 2) return;
    while (q > 0 && (c->text[q - 1] == ' ' || c->text[q - 1] == '\t')) q--;
    if (q > 0 && c->text[q - 1] != '\n') return;
    /* after: the line's end, or one sign_dash credential and the line's end */
    size_t e = t->e;
    if (i + 1 < c->nt && !deid__gap_info(c, i + 1).nl) {
        if (!deid__gap_info(c, i + 1).space_only || slot_starting_at(c, DEID_SLOT_SIGN_DASH, i + 1) != 1) return;
        e = c->t[i + 1].e;
    }
    while (e < c->len && (c->text[e] == ' ' || c->text[e] == '\t' || c->text[e] == '\r')) e++;
    if (e < c->len && c->text[e] != '\n') return;
    lab[i] = DEID_NAME;
}

/* What separates word j-1 from word j is spaces, '/', '-', '+' or '&' only, on one line: the same clause. */
static int same_clause_gap(const ctx *c, size_t j) {
    char m[8];
    if (deid__gap_info(c, j).nl || !gap_mark(c, j, m, sizeof m)) return 0;
    for (const char *q = m; *q; q++)
        if (!strchr("/-+&", *q)) return 0;
    return 1;
}

/* Word i may be a word of an organisation's own name before its last words (round 48's O2): letters
 * (hyphens and apostrophes inside), no stop, cue, measure, unit, title, month or weekday word, no
 * charting verb, keep-list or clinical-shape word, no medical word unless a listed name or place, no
 * participle or gerund ("contracted", "participating") and no org_generic word ("outpatient"). */
static int org_name_shape(const ctx *c, size_t i) { /* org_name_word's own flags and shape: no look-up */
    const tok *t = &c->t[i];
    if (!letters_word(c, t) || ((t->f | t->start) & SLOT_BAD) || keep_word(t) || t->clin_shape || unnamed_medical(t))
        return 0;
    size_t n = t->e - t->s;
    const char *e = c->text + t->e;
    return !(n >= 4 && (((e[-2] | 32) == 'e' && (e[-1] | 32) == 'd') ||
                        ((e[-3] | 32) == 'i' && (e[-2] | 32) == 'n' && (e[-1] | 32) == 'g')));
}

static int org_name_word(const ctx *c, size_t i) {
    return org_name_shape(c, i) && !deid__verb_starting_at(c, i) && slot_starting_at(c, DEID_SLOT_ORG_GENERIC, i) != 1;
}

/* Round 48 (O2): "rx sent to walbrook pharmacy.", "transport via blue heron ambulance at 1100", "pt's employer
 * kestrel freight called": in any case, one to three words right after a slots.tsv org_cue phrase (spaces
 * or an opening bracket between), then an org_last phrase, all on one line and left by the model (or the
 * last words taken as a name or place), are an organisation. The words are org_name_word's, joined by
 * spaces or "&". A rules folder without org_cue and org_last phrases takes none. */
static void slot_org_after_cue(const ctx *c, int8_t *lab, size_t i) {
    if (!c->r->slots_max_words[DEID_SLOT_ORG_CUE] || !c->r->slots_max_words[DEID_SLOT_ORG_LAST] || i == 0 || lab[i] >= 0)
        return;
    /* spaces or "(" after the cue, or the slash of "w/" glued to it */
    char m[8];
    if (deid__gap_info(c, i).nl || !gap_mark(c, i, m, sizeof m) || (m[0] && strcmp(m, "(") && strcmp(m, "/")) ||
        (!strcmp(m, "/") && c->text[c->t[i - 1].e] != '/'))
        return;
    if (!org_name_shape(c, i) || slot_ending_at(c, DEID_SLOT_ORG_CUE, i - 1) < 0 || !org_name_word(c, i)) return;
    for (size_t k = i; k < i + 3 && k + 1 < c->nt; k++) {
        if (k > i) {
            if (lab[k] >= 0 || deid__gap_info(c, k).nl || !gap_mark(c, k, m, sizeof m) || (m[0] && strcmp(m, "&")) ||
                !org_name_word(c, k))
                return;
        }
        gapinfo g = deid__gap_info(c, k + 1);
        if (g.nl || !g.space_only) return;
        int n = slot_starting_at(c, DEID_SLOT_ORG_LAST, k + 1);
        if (n <= 0) continue;
        for (size_t q = k + 1; q <= k + (size_t)n; q++)
            if (lab[q] >= 0 && !is_name_type(lab[q])) return;
        for (size_t q = i; q <= k + (size_t)n; q++) lab[q] = DEID_ORGANIZATION;
        return;
    }
}

/* The ward number at word j is followed by its clause's end (a line break, ",", ".", ";", ")" or a dash)
 * or, after spaces, by a not_ward word ("bed", "rm", "pod") or a ward_after word ("conference", "full"). */
static int ward_number_closes(const ctx *c, size_t j) {
    if (j + 1 >= c->nt || deid__gap_info(c, j + 1).nl) return 1;
    char m[8];
    if (!gap_mark(c, j + 1, m, sizeof m)) return 0;
    if (m[0]) return strchr(",.;)", m[0]) || (m[0] == '-' && m[1] == '-');
    return slot_starting_at(c, DEID_SLOT_NOT_WARD, j + 1) > 0 || slot_starting_at(c, DEID_SLOT_WARD_AFTER, j + 1) > 0;
}

/* Round 48 (W2): "awaiting wexford 3 bed.", "micu kessler 4 pod b", "step down spruce 5.": in any case, a word
 * the model left right after a slots.tsv ward_cue or ward_unit phrase (spaces only between, on one line),
 * and right after it a number of one or two digits that ward_number_closes, are a ward (a place). The
 * word is letters only, no stop, cue, measure, unit, month, weekday, keep-list, clinical-shape, not_ward
 * or service word, and no medical word unless a listed name or place. A rules folder without ward_cue
 * phrases takes none. */
int deid__ward_after_cue(const ctx *c, size_t i) { /* W2's shape at words i, i + 1, the labels aside */
    if (!c->r->slots_max_words[DEID_SLOT_WARD_CUE] || i == 0 || i + 1 >= c->nt) return 0;
    const tok *t = &c->t[i], *n = &c->t[i + 1];
    if (n->shape0 != SH_NUM || n->e - n->s > 2 || joined_number(c, i + 1)) return 0;
    gapinfo g = deid__gap_info(c, i + 1);
    if (g.nl || !g.space_only || space_or_bracket(c, i) != 0) return 0;
    if (t->nletters != t->e - t->s || !ward_word(c, i) || slot_starting_at(c, DEID_SLOT_SERVICE, i)) return 0;
    if (slot_ending_at(c, DEID_SLOT_WARD_CUE, i - 1) < 0 && slot_ending_at(c, DEID_SLOT_WARD_UNIT, i - 1) < 0) return 0;
    return ward_number_closes(c, i + 1);
}

static void slot_ward_after_cue(const ctx *c, int8_t *lab, size_t i) {
    if (i + 1 < c->nt && lab[i] < 0 && lab[i + 1] < 0 && deid__ward_after_cue(c, i)) lab[i] = lab[i + 1] = DEID_LOCATION;
}

/* Round 48 (D2): "s/p cabg x3 12/5, pod 2.", "s/p l sdh evac 12-3, drain out": a month/day the model left
 * (lone_month_day; never a score out of ten or a fraction), closing its clause, with one to five words
 * between it and a slots.tsv sp_word phrase before it in the same clause (same_clause_gap), is a date.
 * A rules folder without sp_word phrases takes none. */
static void slot_sp_date(const ctx *c, int8_t *lab, size_t i) {
    long m, d;
    if (!c->r->slots_max_words[DEID_SLOT_SP_WORD] || !lone_month_day(c, lab, i, 0, &m, &d)) return;
    if (d == 10 || (m < d && d <= 4) || !month_day_closes(c, i)) return;
    for (size_t back = 2; back <= 6 && back <= i; back++) {
        if (!same_clause_gap(c, i - back + 1)) return;
        if (slot_ending_at(c, DEID_SLOT_SP_WORD, i - back) >= 0) {
            lab[i] = lab[i + 1] = DEID_DATE;
            return;
        }
    }
}

/* Text from q on (spaces skipped) is a phone number of seven digits or more: digits, with '-', '.', '(',
 * ')' or one space between groups, within 20 bytes. */
static int phone_from(const ctx *c, size_t q) {
    while (q < c->len && c->text[q] == ' ') q++;
    int digits = 0;
    for (size_t e = q; e < c->len && e < q + 20; e++) {
        char ch = c->text[e];
        if (isdigit((unsigned char)ch)) digits++;
        else if (!strchr("-.() ", ch) || (ch == ' ' && e + 1 < c->len && !isdigit((unsigned char)c->text[e + 1]))) break;
    }
    return digits >= 7;
}

/* Round 49 (S'): the name run i..z after a care role has evidence after it: a comma, colon, semicolon or
 * closing bracket; after spaces, a charting verb, a pager word, "x" glued to three digits or more, "at",
 * "from", "re", "@", a clock time or a phone number; and, when every word of the run is a listed given or
 * family name that is no common word, a full stop or the line's end as well. */
static int staff_name_evidence(const ctx *c, size_t i, size_t z) {
    int listed = 1;
    for (size_t q = i; q <= z; q++)
        listed &= (c->t[q].f & (F_FIRST | F_LAST)) && !(c->t[q].f & (F_ENGLISH | F_MEDICAL | F_NOT_NAME));
    if (z + 1 >= c->nt || deid__gap_info(c, z + 1).nl) return listed;
    char m[8];
    if (!gap_mark(c, z + 1, m, sizeof m)) return 0;
    if (m[0] == '(' ) return phone_from(c, c->t[z].e);
    if (m[0]) return strchr(",:;)@", m[0]) ? 1 : m[0] == '.' && !m[1] ? listed : 0;
    size_t n = z + 1;
    const tok *t = &c->t[n];
    if (deid__verb_starting_at(c, n) || slot_starting_at(c, DEID_SLOT_PAGER_WORD, n) > 0) return 1;
    if (slot_starting_at(c, DEID_SLOT_STAFF_VERB, n) > 0) return 1; /* round 50 (S''): "honora following" */
    if (word_is(c, n, "at") || word_is(c, n, "from") || word_is(c, n, "re")) return 1;
    if (t->e - t->s >= 4 && (c->text[t->s] | 32) == 'x') {
        size_t q = t->s + 1;
        while (q < t->e && isdigit((unsigned char)c->text[q])) q++;
        if (q == t->e) return 1;
    }
    return deid__clock_time(c, n) || phone_from(c, c->t[z].e);
}

/* Round 49 (S'): "report given to charge rn odalys at x5521.", "NEURO ICU CHARGE FABIAN X3318 SAYS", "paged
 * covering md fenwick x6621": in any case, a word of letters the model left right after a slots.tsv
 * staff_name_role phrase (spaces only between, on one line), that person_word says may be a name, is one
 * with a next word joined as in P, when staff_name_evidence finds evidence after the run. Never after a
 * role word that follows a number ("4 cm"), never a role word itself. A rules folder without
 * staff_name_role phrases takes none. */
static void slot_staff_name(const ctx *c, int8_t *lab, size_t i) {
    if (!c->r->slots_max_words[DEID_SLOT_STAFF_NAME_ROLE] || i == 0 || lab[i] >= 0) return;
    const tok *t = &c->t[i];
    if (space_or_bracket(c, i) != 0 || t->nletters != t->e - t->s) return;
    /* round 51 (M2): a listed given name the medical word list also holds ("delphine"), from medical_given */
    int shape = person_word_shape(t);
    /* its words are listed given names and medical words, no English ones: the flags first, then the look-up */
    int medical_given = !shape && c->r->slots_max_words[DEID_SLOT_MEDICAL_GIVEN] && (t->f & F_FIRST) &&
                        (t->f & F_MEDICAL) && !(t->f & F_ENGLISH) && slot_starting_at(c, DEID_SLOT_MEDICAL_GIVEN, i) == 1;
    if (!shape && !medical_given) return;
    long r0 = slot_ending_at(c, DEID_SLOT_STAFF_NAME_ROLE, i - 1);
    if (r0 < 0 || (r0 > 0 && c->t[r0 - 1].shape0 == SH_NUM && deid__close_on_line(c, (size_t)r0))) return;
    int person = shape ? person_word(c, i)
                       : !(role_ending_at(c, i) >= 0 || deid__verb_starting_at(c, i) ||
                           slot_starting_at(c, DEID_SLOT_PERSON_AFTER, i));
    if (!person || slot_starting_at(c, DEID_SLOT_STAFF_NAME_ROLE, i) || slot_ending_at(c, DEID_SLOT_STAFF_NAME_ROLE, i) >= 0)
        return;
    size_t z = person_run_end(c, lab, i);
    if (z > i && c->t[z].nletters != c->t[z].e - c->t[z].s) z = i;
    if (!staff_name_evidence(c, i, z)) return;
    for (size_t q = i; q <= z; q++) lab[q] = DEID_NAME;
}

/* Round 51 (P2): what follows the patient's name at word z: an opening bracket, a comma, "from" or a
 * slots.tsv patient_verb phrase ("has", "remains", "admitted", "goes by"). */
static int patient_name_evidence(const ctx *c, size_t z) {
    if (z + 1 >= c->nt || deid__gap_info(c, z + 1).nl) return 0;
    char m[8];
    if (!gap_mark(c, z + 1, m, sizeof m)) return 0;
    if (m[0]) return !strcmp(m, "(") || !strcmp(m, ",");
    return word_is(c, z + 1, "from") || slot_starting_at(c, DEID_SLOT_PATIENT_VERB, z + 1) > 0;
}

/* Round 51 (P2): "pt nnamdi has flat affect", "pt wojciech (goes by woj) extubated", "pt folau admitted 11-29": in
 * any case, a word the model left right after a slots.tsv patient phrase ("pt", "patient"), spaces only
 * between, on one line, that person_word says may be a name, with a next word joined as in P, is the patient's
 * name when patient_name_evidence finds evidence after the run ("pt afebrile", "pt tolerating diet" stay: no
 * person words). A rules folder without patient_verb phrases takes none. */
static void slot_patient_name(const ctx *c, int8_t *lab, size_t i) {
    if (!c->r->slots_max_words[DEID_SLOT_PATIENT_VERB] || i == 0 || lab[i] >= 0) return;
    const tok *t = &c->t[i];
    if (space_or_bracket(c, i) != 0 || !letters_word(c, t) || !person_word_shape(t)) return;
    if (slot_ending_at(c, DEID_SLOT_PATIENT, i - 1) < 0 || !person_word(c, i)) return;
    size_t z = person_run_end(c, lab, i);
    if (z > i && !letters_word(c, &c->t[z])) z = i;
    if (!patient_name_evidence(c, z)) return;
    for (size_t q = i; q <= z; q++) lab[q] = DEID_NAME;
}

/* Round 49 (K'): round 45's K with more words and more openers: a slots.tsv word_name or word_name2 word
 * the model left, right after a kinship word, a person_after relation or a slots.tsv relation phrase
 * ("neighbor chuck who did cpr", "partner rain asked"), after spaces or an opening bracket (then closed by
 * ")" or ","), in any case, is a name. A rules folder without word_name2 words takes none. */
static void slot_word_name_more(const ctx *c, int8_t *lab, size_t i) {
    if (!c->r->slots_max_words[DEID_SLOT_WORD_NAME2] || i == 0 || lab[i] >= 0) return;
    int bracket = space_or_bracket(c, i);
    if (bracket < 0) return;
    if (slot_starting_at(c, DEID_SLOT_WORD_NAME, i) != 1 && slot_starting_at(c, DEID_SLOT_WORD_NAME2, i) != 1) return;
    if (!(c->t[i - 1].cue_end & F_KIN) && slot_ending_at(c, DEID_SLOT_PERSON_AFTER, i - 1) < 0 &&
        slot_ending_at(c, DEID_SLOT_RELATION, i - 1) < 0)
        return;
    if (bracket && !closed_in_bracket(c, i)) return;
    lab[i] = DEID_NAME;
}

/* Round 54 (C): a four-digit clock time the model took alone for a date ("since [[1900]]", "calls
 * around [[2100]]"): the hours 00-23 and minutes a multiple of five (charted times are; "since 2022"
 * is a year, which the fixtures annotate), right after a clock_word phrase on its line
 * (spaces only between) or with "~" or "@" glued before it, nothing of a date glued to it ("/", "-"
 * or ":" on either side, a "." before it or a "." with a digit after it) and no date-labelled word
 * right after it with only spaces between (the rest of a date). A clock time is no date, and a year alone is no Safe Harbor identifier. */
static void slot_clock_time(const ctx *c, int8_t *lab, size_t i) {
    if (!c->r->slots_max_words[DEID_SLOT_CLOCK_WORD] || lab[i] != DEID_DATE || !deid__clock_time(c, i) ||
        deid__num_value(c, i) % 5)
        return;
    const tok *t = &c->t[i];
    char before = t->s > 0 ? c->text[t->s - 1] : ' ', after = t->e < c->len ? c->text[t->e] : ' ';
    if (strchr("/-:.", before) || after == '/' || after == '-' || after == ':') return;
    if (after == '.' && t->e + 1 < c->len && isdigit((unsigned char)c->text[t->e + 1])) return;
    if (i + 1 < c->nt && lab[i + 1] == DEID_DATE && deid__gap_info(c, i + 1).space_only) return;
    int cued = (before == '~' || before == '@') && (t->s < 2 || !isalnum((unsigned char)c->text[t->s - 2]));
    if (!cued && i > 0 && deid__gap_info(c, i).space_only && !deid__gap_info(c, i).nl)
        cued = slot_ending_at(c, DEID_SLOT_CLOCK_WORD, i - 1) >= 0;
    if (cued) lab[i] = -1;
}

/* Round 54 (O): obstetric notation the model took for a date: two or three numbers joined by "/"
 * (the third may carry a sign: "4/80/-1") right after an ob_exam phrase on its line (spaces or one
 * ":" between), the first at most 10 and the others at most 100: Apgar scores at one and five
 * minutes ("apgars 8/9"), a cervical exam's dilation, effacement and station ("SVE 4/80/-1"); the
 * phrase's own words go with them when the model's date run holds them. */
static void slot_ob_exam(const ctx *c, int8_t *lab, size_t i) {
    if (!c->r->slots_max_words[DEID_SLOT_OB_EXAM] || i == 0 || c->t[i].shape0 != SH_NUM) return;
    char m[8];
    if (deid__gap_info(c, i).nl || !gap_mark(c, i, m, sizeof m) || (m[0] && strcmp(m, ":"))) return;
    long st = slot_ending_at(c, DEID_SLOT_OB_EXAM, i - 1);
    if (st < 0) return;
    size_t z = i;
    while (z + 1 < c->nt && z < i + 2 && c->t[z + 1].shape0 == SH_NUM && c->text[c->t[z].e] == '/') {
        size_t gap = c->t[z + 1].s - c->t[z].e;
        int signed_third = gap == 2 && z == i + 1 && strchr("-+", c->text[c->t[z].e + 1]);
        if (gap != 1 && !signed_third) break;
        z++;
    }
    if (z == i || (c->t[z].e < c->len && c->text[c->t[z].e] == '/')) return;
    long first = deid__num_value(c, i); /* -1: more than nine digits */
    if (first < 0 || first > 10) return;
    int dated = 0;
    for (size_t q = i; q <= z; q++) {
        long v = deid__num_value(c, q);
        if (q > i && (v < 0 || v > 100)) return;
        dated |= lab[q] == DEID_DATE;
    }
    if (!dated) return;
    /* the model's date run may hold the exam's own name ("[[apgars 8/9]]"): none of it is a date */
    for (size_t q = (size_t)st; q <= z; q++)
        if (lab[q] == DEID_DATE) lab[q] = -1;
}

void deid__slot_rules(const ctx *c, int8_t *lab) {
    for (size_t i = 0; i < c->nt; i++) {
        slot_message(c, lab, i);
        slot_year(c, lab, i);
        slot_dispo(c, lab, i);
        slot_sign(c, lab, i);
        slot_initial(c, lab, i);
        slot_ward(c, lab, i);
        slot_username(c, lab, i);
        slot_serial(c, lab, i);
        slot_age(c, lab, i);
        slot_event_date(c, lab, i);
        slot_ward_side(c, lab, i);
        slot_person_after(c, lab, i);
    }
    slot_dates(c, lab);
    mixed_case_names(c, lab);
    for (size_t i = 0; i < c->nt; i++) {
        slot_honorific(c, lab, i);
        slot_participle_date(c, lab, i);
        slot_word_name(c, lab, i);
        slot_ward_brackets(c, lab, i);
        slot_id_code(c, lab, i);
        slot_pager(c, lab, i);
        slot_handoff_name(c, lab, i);
        slot_nickname(c, lab, i);
        slot_org_after_cue(c, lab, i);
        slot_ward_after_cue(c, lab, i);
        slot_sp_date(c, lab, i);
        slot_staff_name(c, lab, i);
        slot_word_name_more(c, lab, i);
        slot_called_for(c, lab, i);
        slot_sign_initials(c, lab, i);
        slot_patient_name(c, lab, i);
    }
    /* round 54: what the model took for a date and is none; after every rule that takes one */
    for (size_t i = 0; i < c->nt; i++) {
        slot_clock_time(c, lab, i);
        slot_ob_exam(c, lab, i);
    }
}
