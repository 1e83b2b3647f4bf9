/* Internal structures of the free-text de-identifier, shared by its source files (rules.c loads
 * the rules folder, find.c finds spans, redact.c replaces them). Not a public interface. */
#ifndef CLINFM_DEID_INT_H
#define CLINFM_DEID_INT_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stddef.h>
#include <stdint.h>

#include "deid/text.h"
#include "util/strmap.h"

/* Word classes from the lists and cue table (see data/deid/README.md for each file). Bits 0-31
 * are fixed classes (and bit 63, F_KIN); bits 32-62 are "anchor" cue kinds (cues.tsv kinds named a_*), defined by
 * the data: a pattern flagged @a_kind is tried only where a word or phrase of that kind starts. */
typedef uint64_t deid_flags;
#define DEID_ANCHOR_BASE 32
enum {
    F_FIRST = 1u << 0,        /* given name */
    F_LAST = 1u << 1,         /* family name */
    F_PLACE = 1u << 2,        /* city, town */
    F_REGION = 1u << 3,       /* country, state, province, large region */
    F_ENGLISH = 1u << 4,      /* common English word (lower-case dictionary entry) */
    F_MEDICAL = 1u << 5,      /* clinical vocabulary */
    F_ORGNAME = 1u << 6,      /* known organisation name */
    F_STOP = 1u << 7,         /* never PHI by itself (section words, month names...) */
    F_TITLE = 1u << 8,        /* Dr, Mr, Mrs: a name follows */
    F_NAME_BEFORE = 1u << 9,  /* "name is", "patient:": a name follows */
    F_NAME_WEAK = 1u << 10,   /* "by", "with": a name may follow if it looks like one */
    F_NAME_AFTER = 1u << 11,  /* MD, RN, Jr: a name precedes */
    F_PLACE_BEFORE = 1u << 12, /* "lives in", "moved to": a place follows */
    F_PLACE_WEAK = 1u << 13,  /* "in", "from", "to": a place may follow */
    F_ORG_BEFORE = 1u << 14,  /* "works at", "employed by" */
    F_ORG_AFTER = 1u << 15,   /* Inc, LLC, Hospital, Clinic: an organisation precedes */
    F_STREET = 1u << 16,      /* street suffix: Street, Ave, Road */
    F_UNIT = 1u << 17,        /* Apt, Suite, Unit, Floor, Box */
    F_PARTICLE = 1u << 18,    /* van, de, ten: inside names */
    F_ADDR_BEFORE = 1u << 19, /* "address", "lives at": an address follows */
    F_STATE_ABBR = 1u << 20,  /* two-letter state or province code */
    F_MEASURE = 1u << 21,     /* mg, ml, units: a number before it is a quantity */
    F_MONTH = 1u << 22,
    F_WEEKDAY = 1u << 23,
    F_PHRASE_HEAD = 1u << 24, /* first word of a multi-word list entry */
    F_NOT_NAME = 1u << 25,    /* common words that are also names but never taken as one alone */
    F_STREET_MAIN = 1u << 26, /* Street, Avenue, Road: names a street even without a number */
    F_NAME_IS = 1u << 27,     /* "name is", "named", "call me": whatever word follows is a name */
    F_PRONOUN = 1u << 28,     /* him, her, them: "named him Frank" */
    F_EPONYM = 1u << 29,      /* sign, disease, syndrome: "Murphy's sign" names no person */
    F_DRUG_BEFORE = 1u << 30  /* continue, start, hold: an unknown word after it is a drug */
};
/* Village, Port, Lake, Falls: a generic word of place names ("Mill Village", "Port Paien"). Bit
 * 31 does not fit an int enumerator. */
#define F_PLACE_WORD ((deid_flags)1 << 31)
/* son, wife, daughter: a kinship word (also a name cue); after it even a given name that is a
 * common word is a name ("son bob", "wife joy"). The top bit, so anchors get bits 32-62. */
#define F_KIN ((deid_flags)1 << 63)
/* In the clinical keep-list (clinical_keep.txt: drips, ventilator and monitoring terms, nursing
 * shorthand): strong evidence against PHI in any letter case. Bit 62, so anchors get bits 32-61. */
#define F_KEEP ((deid_flags)1 << 62)
#define DEID_MAX_ANCHOR_KINDS 30

typedef struct {
    int type;
    pcre2_code *re;
    int g_phi, g_y, g_m, g_d, g_mon, g_wd; /* capture group numbers, 0 when absent */
    deid_flags anchor; /* nonzero: match only at starts of words/phrases with these anchor bits */
    int needs_digit;   /* 'd' flag: skip texts without a digit */
    int at_numbers;    /* 'n' flag: match only where a run of digits starts (or one '(' / '+' before) */
    int at_alnum;      /* 'w' flag: match only at starts of words that hold a digit */
    int at_dotted;     /* 'p' flag: match only at starts of words followed by '.' and a letter */
    char required;     /* '=X' flag: skip texts without the character X */
    int line;
    uint32_t key;      /* hash of the pattern's source text: names it in the model's features */
} deid_pattern;

/* A read-only index over a strmap and its flags, built once after loading: one probe touches
 * one slot (hash, flags, id) instead of the strmap's separate arrays, which matters at a few
 * hundred thousand lookups per megabyte of text. */
typedef struct {
    uint64_t h;
    deid_flags f;
    uint32_t id, len;
    char key[16]; /* the word itself when it fits (most do): no second memory access */
} deid_lexslot;

typedef struct {
    deid_lexslot *slots;
    size_t mask;
} deid_lexindex;

/* Kinds of slots.tsv (round 10), in the order of rules.c's SLOT_KINDS. */
enum { DEID_SLOT_MESSAGE = 0, DEID_SLOT_ABOUT, DEID_SLOT_YEAR, DEID_SLOT_DISPO, DEID_SLOT_FACILITY, DEID_SLOT_SIGN,
       DEID_SLOT_INITIAL, DEID_SLOT_PART, DEID_SLOT_SERVICE, DEID_SLOT_NOT_WARD,
       DEID_SLOT_SERIAL, DEID_SLOT_PATIENT, DEID_SLOT_DATE_AFTER, DEID_SLOT_WARD_SIDE,
       DEID_SLOT_PERSON_AFTER, DEID_SLOT_HONORIFIC, DEID_SLOT_PARTICIPLE,
       DEID_SLOT_WORD_NAME, DEID_SLOT_WARD_UNIT, DEID_SLOT_ID_WORD,
       DEID_SLOT_PAGER_WORD, DEID_SLOT_HANDOFF, DEID_SLOT_NICKNAME,
       DEID_SLOT_ORG_CUE, DEID_SLOT_ORG_LAST, DEID_SLOT_ORG_GENERIC, DEID_SLOT_WARD_CUE, DEID_SLOT_WARD_AFTER,
       DEID_SLOT_SP_WORD, DEID_SLOT_STAFF_NAME_ROLE, DEID_SLOT_RELATION, DEID_SLOT_WORD_NAME2,
       DEID_SLOT_WARD_ROOM, DEID_SLOT_SIGN_DASH, DEID_SLOT_CALL_FOR, DEID_SLOT_STAFF_VERB, DEID_SLOT_PATIENT_VERB,
       DEID_SLOT_MEDICAL_GIVEN, DEID_SLOT_CLOCK_WORD, DEID_SLOT_OB_EXAM,
       DEID_SLOT_FACILITY_CUE, DEID_SLOT_KINDS };

struct deid_model; /* the fitted model that combines the evidence (model.c) */

struct deid_text_rules {
    struct deid_model *model; /* model.tsv of the rules folder; NULL: evidence spans taken as found */
    /* model_dense.tsv of the rules folder (round 31), optional: a note whose keep-list density class
       is '3' (find_int.h, deid__keep_density) is decoded entirely with it (its features, weights,
       thresholds and switches); every other note with model. NULL: model decodes every note */
    struct deid_model *model_dense;
    /* names this load of the rules for the threads' kind caches (features.c, thread_kind_cache): a
       word kind's flags mean other lists and cues under another rules folder */
    uint64_t serial;
    strmap words;      /* lower-case word -> id */
    deid_flags *wflags; /* per word id */
    uint32_t wflags_cap;
    strmap phrases;    /* lower-case multi-word entry, words joined by one space -> id */
    deid_flags *pflags; /* per phrase id; F_PHRASE_HEAD here means "prefix of a longer entry" */
    deid_lexindex wix, pix;
    /* Round 34: the one-word entries of the optional clinical_keep_extra.txt that clinical_keep.txt
       does not hold. They give a word no list flag (its flags are what the other lists give it):
       tokenize() only marks a token that is one (tok.keep_extra), and only the keep filter after
       the model reads the mark (decode.c, keep_filter: kept as a clinical_keep.txt word is, with
       KEEP_MAX_P_KEEP). No feature, density class or marginal reads it; no refit. Empty without
       the file (everything as before). */
    strmap keep_extra;
    /* clinical_keep_post.txt: entries (lower case, words joined by one space) that the keep
       filter after the model reads; never model evidence (decode.c, deid__keep_filter) */
    strmap keep_post;
    int keep_post_max_words;
    /* keep_roles.txt: care roles written before a name ("SW", "PCA", "night float"); a run
       after one is a person, never kept by the filter (and a role is no clinical context) */
    strmap keep_roles;
    int keep_roles_max_words;
    /* keep_name_verbs.txt: what follows a person in charting ("aware", "paged", "at bedside") */
    strmap keep_verbs;
    int keep_verbs_max_words;
    /* scores.txt: clinical scales and their maximum ("tinetti 28"), read after the model: a
       fraction N/MAX after the scale's name is a score, not a date (decode.c, score_filter) */
    strmap scores;
    int scores_max_words;
    /* slots.tsv (round 10): per kind (DEID_SLOT_*), phrases that open a slot a line's structure
       gives an identifier ("call ... re X,", "rehab - X", "quit 1987"); read after the model */
    strmap slots[DEID_SLOT_KINDS];
    int slots_max_words[DEID_SLOT_KINDS];
    /* per kind, the first letters (a-z as bits 0-25, anything else bit 26) of the entries' first
       and last words: a word whose letter is not in the mask needs no look-up */
    uint32_t slots_first[DEID_SLOT_KINDS], slots_last[DEID_SLOT_KINDS];
    uint32_t pflags_cap;
    char anchor_kinds[32][32]; /* names of the a_* cue kinds, by bit - DEID_ANCHOR_BASE */
    int n_anchor_kinds;
    int max_phrase_words;
    deid_pattern *pats;
    size_t n_pats;
    uint32_t max_groups; /* capture groups + 1 of the largest pattern (one match block fits all) */
    char **street_endings; /* foreign street words end with these: "katu", "vej", "straße" */
    size_t *street_ending_len;
    size_t n_street_endings;
    char **med_prefixes, **med_suffixes; /* an unlisted word shaped like these is clinical */
    size_t n_med_prefixes, n_med_suffixes;
    /* flag of the a_verb_after_name anchor kind: words that show a name-like common word is used
       as a verb or modal ("will be", "rose from"); 0 when the rules folder has none */
    deid_flags verb_after_name;
    /* flag of the a_phone anchor kind ("call", "pager", "tel"): a range of round numbers after
       it may be a phone number (decode.c, keep_numeric); 0 when the rules folder has none */
    deid_flags phone_cue;
    /* flag of the a_vent anchor kind ("PS", "CPAP", "PEEP", "settings"): a slash chain right
       after it is a ventilator setting, no date (decode.c, shorthand_filter); 0 when absent */
    deid_flags vent_cue;
    char month_names[12][16];  /* English month names for rendering shifted dates */
    char weekday_names[7][16]; /* Monday first */
    /* Surrogate pools: word ids usable as replacement given names, family names, places. */
    uint32_t *pool_first, *pool_last, *pool_place;
    size_t n_pool_first, n_pool_last, n_pool_place;
};

struct deid_known {
    strmap words;       /* lower-case name words */
    int *word_type;
    strmap phrases;     /* lower-case word sequences joined by one space */
    int *phrase_type;
    strmap heads;       /* first words of phrases */
    strmap initials;    /* lower-case initials of organisation names ("gvgh"), typed ORGANIZATION */
    int max_phrase_words;
    strmap digits;      /* digit strings of phones and ids */
    int *digit_type;
};

/* UTF-8 helpers (utf8.c). Decodes one code point at s[*i] (i < len), advancing *i; invalid
 * bytes decode as U+FFFD one byte at a time. */
uint32_t deid_utf8_next(const char *s, size_t len, size_t *i);
int deid_cp_is_letter(uint32_t cp);
int deid_cp_is_upper(uint32_t cp);
int deid_cp_is_lower(uint32_t cp);
uint32_t deid_cp_to_lower(uint32_t cp);
uint32_t deid_cp_to_upper(uint32_t cp);
/* Appends the UTF-8 encoding of cp to buf (at least 4 bytes free); returns bytes written. */
size_t deid_utf8_put(char *buf, uint32_t cp);
/* Lower-cases s[0..len) into out (capacity cap, at least len+1 since lower-casing never grows
 * the known scripts); returns the length, or (size_t)-1 when out is too small. */
size_t deid_lower(const char *s, size_t len, char *out, size_t cap);

/* Finds the next word at or after *pos: a run of letters and digits, with inner apostrophes after
 * a letter and hyphens between letters ("O'Brien", "Mayo-Walters"; "1990-02-18" is three words). Returns 0 at the end of the text, else 1 with the word in
 * [*ws, *we) and *pos after it. */
int deid_next_word(const char *s, size_t len, size_t *pos, size_t *ws, size_t *we);

/* Word-class lookups (rules.c). */
deid_flags deid_word_flags(const deid_text_rules *r, const char *lower, size_t len);
deid_flags deid_phrase_flags(const deid_text_rules *r, const char *lower, size_t len);

/* Parses the date groups of a DATE pattern match; used by redact.c to shift (find.c too). */
int deid_month_from_name(const deid_text_rules *r, const char *s, size_t len);
int deid_weekday_from_name(const deid_text_rules *r, const char *s, size_t len);

/* The end of the date span text[s, e) without a clock time after it ("10/19/2019 4:29 PM" ->
 * "10/19/2019"); e when there is none (decode.c). */
size_t deid__date_trim_clock(const char *t, size_t s, size_t e);

/* The value of the n decimal digits at p. A note's text is not NUL-terminated, so never atoi
 * on it. */
static inline int deid__digits_value(const char *p, size_t n) {
    int v = 0;
    for (size_t i = 0; i < n; i++) v = v * 10 + (p[i] - '0');
    return v;
}

/* The bit of a word's first byte in deid_text_rules.slots_first/slots_last (ASCII letters by
 * letter, whatever their case; any other byte shares bit 26). */
static inline uint32_t deid__slot_letter_bit(char ch) {
    unsigned char u = (unsigned char)ch;
    if (u >= 'A' && u <= 'Z') u = (unsigned char)(u + 32);
    return u >= 'a' && u <= 'z' ? (uint32_t)1 << (u - 'a') : (uint32_t)1 << 26;
}

#endif
