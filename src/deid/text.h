/* Free-text de-identification: finds the HIPAA Safe Harbor identifiers in clinical note text and
 * replaces them with typed tags ("[NAME]") or realistic surrogates, shifting dates by a given
 * number of days so that intervals in the notes agree with the shifted structured dates.
 *
 * The engine is code; the knowledge is data. Everything a reviewer may want to change lives in a
 * rules folder (data/deid/ by default, see data/deid/README.md): the PCRE2 patterns per type
 * (compiled with JIT), the cue words ("Dr.", "lives in", "Suite", "Hospital"...), word lists
 * (given names, family names, places, countries, common English words and clinical vocabulary
 * that must NOT be taken for names), and the weights of a fitted model (model.tsv). Each piece of
 * evidence (patterns for identifiers with a shape, word lists, cue words, casing, the context
 * window, the clinical keep-list, the section, the rule detectors) is a feature of each word;
 * a linear-chain CRF with fitted weights decides which words are PHI (src/deid/model_int.h,
 * docs/DEID.md). deid_find_explain() says why each span was taken.
 *
 * A caller that knows who the note is about passes a deid_known list (the patient's, relatives',
 * practitioners' and organisations' names, addresses, phone numbers, ids): those are found
 * wherever they occur, in any letter case, whatever the general rules decide.
 *
 * Thread safety: a loaded deid_text_rules is read-only and may be shared by threads; each call
 * allocates its own working memory. Error messages never quote the text (it is PHI). */
#ifndef CLINFM_DEID_TEXT_H
#define CLINFM_DEID_TEXT_H

#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

/* PHI types. The order is also the tie-break order when spans of different types overlap:
 * a lower value wins (an e-mail inside a URL is reported as an e-mail). */
enum {
    DEID_EMAIL = 0,
    DEID_URL,
    DEID_IP,
    DEID_SSN,
    DEID_MRN,
    DEID_DATE,
    DEID_ID,          /* health plan, account, licence, vehicle, device, card, IBAN, other ids */
    DEID_FAX,
    DEID_PHONE,
    DEID_AGE_OVER_89,
    DEID_ADDRESS,     /* street address, PO box */
    DEID_ZIP,
    DEID_ORGANIZATION, /* hospital, clinic, employer */
    DEID_LOCATION,    /* city, town, region, country */
    DEID_NAME,
    DEID_N_TYPES
};

/* "NAME", "DATE"...; NULL for an out-of-range type. */
const char *deid_type_name(int type);
/* The type for a name (as above, case-insensitive), or -1. */
int deid_type_from_name(const char *name);

typedef struct deid_text_rules deid_text_rules;

/* Loads and compiles the rules folder. Errors name the file and line, never its contents. */
int deid_rules_load(deid_text_rules **out, const char *rules_dir, cf_err *err);
void deid_rules_free(deid_text_rules *r);
/* Overrides the decision threshold of the rules folder's model (a word is PHI when its
 * probability of "not PHI" is below p, 0 < p <= 1), for calibration sweeps (deid-eval
 * --threshold); CF_EINPUT when the folder has no model or p is out of range. */
int deid_rules_set_threshold(deid_text_rules *r, double p, cf_err *err);

/* Strings the record itself knows, to be found in its notes whatever the general rules say. */
typedef struct deid_known deid_known;
int deid_known_new(deid_known **out, cf_err *err);
/* type is the PHI type of the string. NAME strings are split into words, and each word of two
 * letters or more is found as a word anywhere (a family name alone is still the patient's);
 * PHONE, FAX, SSN, MRN and ID strings are found by their digits whatever the punctuation; other
 * strings (addresses, cities, organisations, e-mails) are found as whole phrases, ignoring case
 * and runs of white space. An ORGANIZATION of two words or more is also found by its initials
 * ("Green Valley General Hospital": "GVGH", any case; "of", "the", "and", "at", "for", "in" and
 * "&" give none) when they are three to eight letters and not a clinical, English or unit word
 * ("Intensive Care Unit" gives no "ICU"). Dates need no entry: every date is found. */
int deid_known_add(deid_known *k, int type, const char *s, size_t len, cf_err *err);
void deid_known_free(deid_known *k);

typedef struct {
    size_t start, end; /* byte offsets into the text, end exclusive */
    int type;          /* DEID_* */
} deid_span;

/* Finds PHI in text[0..len) (UTF-8; invalid bytes are tolerated). known may be NULL. On success
 * *spans (free() it) holds *n sorted, non-overlapping spans. */
int deid_find(const deid_text_rules *r, const char *text, size_t len, const deid_known *known,
              deid_span **spans, size_t *n, cf_err *err);

/* A span with the reason it was taken, for review ("clinfm deid-text --explain"): the model's
 * probability that its most probable word is PHI and the features that weighed most for its
 * type against "not PHI", with their weights ("P(PHI)=0.981; pw&=NCsdr +2.31 ru=N +1.70 ..."). */
typedef struct {
    size_t start, end;
    int type;
    float prob;
    /* 1: not removed. The model took these words (type, prob) but the clinical keep filter kept
       them; why names the keep-list entry or the notation ("kept: clinical_keep_post.txt entry
       \"kerley b\""). These come after the removed spans. */
    int kept;
    char why[320];
} deid_explained;
int deid_find_explain(const deid_text_rules *r, const char *text, size_t len, const deid_known *known,
                      deid_explained **out, size_t *n, cf_err *err);

typedef enum { DEID_MODE_TAG = 0, DEID_MODE_SURROGATE = 1 } deid_mode;

typedef struct {
    deid_mode mode;
    /* When set, DATE spans that parse as dates are rewritten shifted by shift_days (same format,
     * so "03/05/2020" stays "MM/DD/YYYY" and "March 5" stays "Month D"), in either mode; dates
     * that do not parse become a tag or surrogate like any other span. */
    int shift_dates;
    int shift_days;
    /* Surrogate choice is keyed (SipHash): the same word gets the same surrogate under the same
     * key, and nothing can be linked back without it. Derive it from the secret key per patient
     * (all zero is allowed, and then surrogates are merely consistent). */
    unsigned char key[16];
} deid_redact_opts;

/* Writes text with spans replaced into *out (NUL-terminated, free() it). spans must be sorted
 * and non-overlapping within [0, len), as deid_find returns them. counts, when not NULL, receives
 * per-type replacement counts (DEID_N_TYPES entries, added to). */
int deid_redact(const deid_text_rules *r, const char *text, size_t len, const deid_span *spans,
                size_t n, const deid_redact_opts *opts, char **out, size_t *out_len,
                uint64_t *counts, cf_err *err);

/* find + redact in one call. */
int deid_text(const deid_text_rules *r, const char *text, size_t len, const deid_known *known,
              const deid_redact_opts *opts, char **out, size_t *out_len, uint64_t *counts,
              cf_err *err);

/* Date arithmetic shared with the structured-field de-identifier: days since 1970-01-01 of a
 * proleptic Gregorian date, and back. */
int64_t deid_days_from_civil(int y, int m, int d);
void deid_civil_from_days(int64_t z, int *y, int *m, int *d);

#endif
