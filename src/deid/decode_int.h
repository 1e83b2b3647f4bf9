/* What decode.c and slots.c share: the word-level tests both read, the set of flags that keeps a
 * word the model left from being taken for a name, and the slot rules slots.c runs for decode.c.
 * Internal to src/deid. */
#ifndef CLINFM_DEID_DECODE_INT_H
#define CLINFM_DEID_DECODE_INT_H

#include <string.h>
#include <strings.h>

#include "deid/model_int.h"

/* A word the model left is never taken for a person's name by the rules below (slot names, and
 * the one-case and mixed-case names) when it, its line start or a cue ending at it carries one of
 * these: stop, cue, unit, calendar, place, organisation and keep words speak for something else.
 * SLOT_BAD is the slot rules' set; the one-case and mixed-case name rules also
 * refuse a word with an organisation cue after it, a street word or a place word. */
#define SLOT_BAD                                                                                                     \
    (F_STOP | F_MEASURE | F_MONTH | F_WEEKDAY | F_TITLE | F_UNIT | F_PRONOUN | F_NAME_BEFORE | F_NAME_IS |            \
     F_PLACE_BEFORE | F_PLACE_WEAK | F_ORG_BEFORE | F_ADDR_BEFORE | F_NAME_WEAK | F_NAME_AFTER | F_KIN | F_KEEP |      \
     F_EPONYM | F_DRUG_BEFORE | F_STATE_ABBR)
#define NOT_A_LEFT_NAME (SLOT_BAD | F_ORG_AFTER | F_STREET | F_PLACE_WORD)

/* Word q of c is w (ASCII case folded). */
static inline int word_is(const ctx *c, size_t q, const char *w) {
    size_t n = c->t[q].e - c->t[q].s;
    return strlen(w) == n && !strncasecmp(c->text + c->t[q].s, w, n);
}

static inline int gap_is(const ctx *c, size_t j, char ch) { /* exactly one character ch between j-1 and j */
    return j > 0 && j < c->nt && c->t[j].s == c->t[j - 1].e + 1 && c->text[c->t[j - 1].e] == ch;
}

/* clinical vocabulary in the model's lists */
static inline int keep_word(const tok *t) {
    /* the keep-list, and medical words that are no common English word ("dysuria", "intubate"):
       the medical lists also hold common words ("rich", "star", "grant") that name people */
    return (t->f & F_KEEP) || ((t->f & F_MEDICAL) && !(t->f & (F_ENGLISH | F_NOT_NAME)) && !t->clin_shape);
}

static inline int is_name_type(int y) { return y == DEID_NAME || y == DEID_LOCATION || y == DEID_ORGANIZATION; }

/* A keep_roles.txt entry ("sw", "night float", "h.o.") ending at word j: its first word, or -1. */
static inline long role_ending_at(const ctx *c, size_t j) {
    return deid__phrase_ending_at(c, &c->r->keep_roles, c->r->keep_roles_max_words, j);
}

/* The end of a sentence between words z-1 and z: a line break, or a full stop and spaces after
 * a word of two letters or more ("EQUAL. ACK aware": the sentence before says nothing of the
 * word; "e.g., allergy" and "H.O. Bono" are no sentence ends; a ";" is not one either: "(e.g.,
 * pga; 5-point scale)"). */
static inline int clause_break(const ctx *c, size_t z) {
    gapinfo g = deid__gap_info(c, z);
    if (g.nl) return 1;
    return g.period == 1 && !g.comma && !g.colon && !g.other && !g.amp && g.len >= 2 &&
           c->text[c->t[z - 1].e] == '.' && c->t[z - 1].nletters >= 2;
}

/* A number joined to another by one punctuation mark ("53-320", "4/5", "7.4"): a code or a value
 * pair, never "a number alone". */
static inline int joined_number(const ctx *c, size_t q) {
    if (q > 0 && c->t[q - 1].shape0 == SH_NUM && c->t[q].s == c->t[q - 1].e + 1) return 1;
    if (q + 1 < c->nt && c->t[q + 1].shape0 == SH_NUM && c->t[q + 1].s == c->t[q].e + 1) return 1;
    return 0;
}

/* A slots.tsv phrase of kind k ending at word j (its first word), or -1; a kind with no phrase
 * ending in word j's first letter is not looked up. */
static inline long slot_ending_at(const ctx *c, int k, size_t j) {
    if (!(c->r->slots_last[k] & deid__slot_letter_bit(c->text[c->t[j].s]))) return -1;
    return deid__phrase_ending_at(c, &c->r->slots[k], c->r->slots_max_words[k], j);
}

/* slots.c: every slot rule in its order, on the labels the model and the keep filter left */
void deid__slot_rules(const ctx *c, int8_t *lab);
/* a ward's side beside its floor number at words i, i + 1 ("4 North", "WEST 6") */
int deid__ward_pair(const ctx *c, size_t i);
/* a ward in brackets right after its unit at word i ("from micu (ellison 6)") */
int deid__ward_in_brackets(const ctx *c, size_t i);
/* round 48's W2 shape at words i, i + 1 after a ward cue, the labels aside */
int deid__ward_after_cue(const ctx *c, size_t i);

#endif
