/* Measuring the free-text de-identifier against annotated corpora.
 *
 * Two corpus formats are read (both documented in docs/DEID.md):
 *  - "presidio": a JSON array of {"full_text", "spans": [{"entity_type", "start_position",
 *    "end_position"}]}, positions in Unicode code points, end exclusive (Microsoft
 *    presidio-research's format);
 *  - "phrase", in one of two layouts told apart by the content:
 *    - inline (clinfm's own): plain UTF-8 text, a line "##RECORD <id>" before each record, PHI
 *      annotated inline as {{TYPE:phrase}} where TYPE is a clinfm type (NAME, DATE, ...) or a
 *      presidio type;
 *    - the PhysioNet "deid" gold standard: a text file (id.text) of records
 *      "START_OF_RECORD=<patient>||||<note>||||" ... "||||END_OF_RECORD", and an annotation file
 *      (id-phi.phrase) of lines "<patient> <note> <start> <end> <Category> <phrase>". Whether end
 *      is exclusive or inclusive is not reliably documented, so each annotation is lined up with
 *      its phrase (see deid_corpus_load_files); the counts of realigned and misaligned ones are
 *      kept in the corpus for the report.
 *
 * Gold types are mapped to clinfm types; annotations that are not Safe Harbor identifiers (presidio
 * NRP and TITLE, and ages under 90, which Safe Harbor lets stay) are "out of scope": they count
 * neither as misses nor, when a prediction falls on them, as false positives.
 *
 * Scores, by any-overlap and by strict (exact span) match:
 *  - recall of a gold type: share of its in-scope spans that some prediction (of any type)
 *    overlaps / equals, since a name tagged as an organisation is still removed;
 *  - precision of a predicted type: share of its predictions that overlap / equal an in-scope
 *    gold span (of any type); predictions that touch only out-of-scope spans are not counted;
 *  - F2 = 5PR / (4P + R), weighing recall over precision as de-identification should.
 *
 * Dates are scored two ways, side by side, because Safe Harbor removes "all elements of dates
 * (except year)" (45 CFR 164.514(b)(2)(i)(C)) while corpora also annotate bare years ("1977"),
 * relative dates ("last week") and clock times as dates:
 *  - "all dates": every annotated date span counts (the stricter line, used for the floors);
 *  - "day/month dates": only date spans that name a day or a month count; the others (a year on
 *    its own, decades, year ranges, relative dates, times, durations) are then treated like the
 *    out-of-scope annotations above: neither misses nor, when a prediction falls on one, errors.
 * deid_date_element() decides which spans name a day or month; it is independent of the engine
 * (its own short English lists of month, weekday and holiday names, and the shape of the digits),
 * and leans towards "yes" when unsure (a day number beside a year or beside words it does not
 * know counts), so the second line can only leave out spans that clearly hold no day or month. */
#ifndef CLINFM_DEID_EVAL_H
#define CLINFM_DEID_EVAL_H

#include <stddef.h>
#include <stdint.h>

#include "deid/text.h"
#include "util/err.h"

typedef struct {
    size_t start, end; /* bytes, end exclusive */
    int type;          /* DEID_* or -1 when the annotation is no PHI type */
    int in_scope;      /* counts toward the Safe Harbor figures */
    int date_element;  /* DATE spans: DEID_DATE_DAY_MONTH / _YEAR_ONLY / _OTHER; else -1 */
    char label[32];    /* the corpus' own type name */
} deid_gold;

typedef struct {
    char *text;
    size_t len;
    deid_gold *gold;
    size_t n_gold;
    char id[64]; /* "##RECORD" id (inline), "<patient>-<note>" (PhysioNet); "" for presidio */
} deid_doc;

/* Which layout a corpus was read from. */
enum { DEID_LAYOUT_PRESIDIO = 1, DEID_LAYOUT_INLINE = 2, DEID_LAYOUT_PHYSIONET = 3 };

typedef struct {
    deid_doc *docs;
    size_t n_docs;
    size_t n_gold, n_in_scope, n_unknown_types;
    int layout; /* DEID_LAYOUT_* */
    /* PhysioNet layout only: the two files read, and how the annotations lined up with the text.
       Every annotation line counts in pn_annotations; it is either exact ([start,end) holds the
       phrase, white space runs ignored), or realigned (inclusive end, or found nearby), or
       misaligned (kept at [start,end) cut to the text). */
    char *text_path, *phi_path;
    size_t pn_annotations, pn_realigned_inclusive, pn_realigned_nearby, pn_misaligned;
    int pn_crlf;    /* the text file has CRLF line ends */
    int pn_kept_cr; /* ... and the offsets only lined up with the CRs counted (see deid_eval.c) */
} deid_corpus;

/* Loads a corpus: format "presidio" (path is the JSON file) or "phrase" (path is an inline-layout
 * file, or a PhysioNet text file, annotation file or a folder holding the two). Same as
 * deid_corpus_load_files(path, format, NULL, NULL, c, err). */
int deid_corpus_load(const char *path, const char *format, deid_corpus *c, cf_err *err);

/* The "phrase" format with the PhysioNet files named explicitly: text_path and phi_path (either
 * may be NULL) win over what path gives; path may be NULL when one of them is set. The missing
 * file is found as follows:
 *  - path a folder: id.text and id-phi.phrase in it, else its only *.text / only *.phrase;
 *  - a text file X.text: X-phi.phrase, else the only *.phrase in its folder;
 *  - an annotation file X-phi.phrase or X.phrase: X.text, else the only *.text in its folder.
 * A file given as path is told apart by its first non-blank line: "START_OF_RECORD=" (text),
 * "<n> <n> <n> <n> <word>" (annotations), anything else is the inline layout (text_path and
 * phi_path must then be NULL).
 *
 * Annotation offsets count bytes of the record text (the lines between the marker lines, each
 * with its newline). A CRLF text file is read with "\r\n" as "\n" (offsets made on the original
 * LF file, of which a CRLF file is usually a converted copy), unless the annotations line up
 * better with the CRs counted (pn_kept_cr; offsets made on the CRLF file itself). Each
 * annotation is placed where its phrase is: [start,end), else [start,end] (inclusive end),
 * comparing exactly and then with runs of white space taken as equal; else the phrase's nearest
 * occurrence starting within 8 bytes of start; else it stays at [start,end) (cut to the text) and
 * counts as misaligned. More than 5% misaligned is CF_EINPUT: the offsets do not belong to this
 * text. Errors name FILE:LINE, never the phrase (it is PHI). */
int deid_corpus_load_files(const char *path, const char *format, const char *text_path, const char *phi_path,
                           deid_corpus *c, cf_err *err);

/* Maps a PhysioNet deid category (HCPName, Hospital, DateYear...) to a clinfm type, as
 * deid_map_gold_type does for presidio and clinfm names (which it falls back to). */
int deid_map_physionet_type(const char *category, int *in_scope);

/* Re-cases every record's text in place, to measure how the engine copes with all-caps and
 * all-lower-case notes: mode DEID_CASE_UPPER or DEID_CASE_LOWER (DEID_CASE_AS_IS does nothing).
 * ASCII letters always change; other letters only when the other case has a UTF-8 encoding of
 * the same length, so every byte offset (and the gold spans) stays valid. The gold annotations
 * keep what was decided from the original text (scope, date element). Returns the number of
 * characters changed. */
enum { DEID_CASE_AS_IS = 0, DEID_CASE_UPPER = 1, DEID_CASE_LOWER = 2 };
size_t deid_corpus_recase(deid_corpus *c, int mode);
/* Keeps records first..last (0-based, inclusive) and drops the others, so a corpus can be split
 * into a development half and a confirmation half. The annotation counts are recomputed.
 * CF_EINPUT when the range is empty or outside the corpus. */
int deid_corpus_select(deid_corpus *c, size_t first, size_t last, cf_err *err);

/* What an annotated date span holds (see above). */
enum {
    DEID_DATE_DAY_MONTH = 1, /* a month (name or number), a day of the month, a weekday, a holiday */
    DEID_DATE_YEAR_ONLY = 2, /* only years: "1977", "1990s", "'98", "2017-2018", "in 2004" */
    DEID_DATE_OTHER = 3      /* neither: "last week", "yesterday", "10:30 am", "3 days" */
};
int deid_date_element(const char *s, size_t n);
void deid_corpus_free(deid_corpus *c);

/* Maps a corpus type name to a clinfm type (or -1) and says whether it is a Safe Harbor type. */
int deid_map_gold_type(const char *name, int *in_scope);

typedef struct {
    uint64_t gold_n, gold_hit;  /* in-scope gold spans of this type; found */
    uint64_t pred_n, pred_hit;  /* counted predictions of this type; correct */
} deid_counts;

typedef struct {
    /* every annotated date span counted */
    deid_counts overlap[DEID_N_TYPES], strict[DEID_N_TYPES];
    deid_counts overlap_all, strict_all; /* over all types, Safe Harbor scope */
    /* the same with only the date spans that name a day or month (DEID_DATE_DAY_MONTH) */
    deid_counts dm_overlap[DEID_N_TYPES], dm_strict[DEID_N_TYPES];
    deid_counts dm_overlap_all, dm_strict_all;
    uint64_t dates_n[4];                  /* in-scope DATE annotations by date_element (index 1-3) */
    uint64_t all_gold_n, all_gold_hit;    /* every annotation, scope ignored (any-overlap) */
    uint64_t bytes;
    double seconds; /* time spent in deid_find */
    /* clinical-content cost: words of the text, words outside every annotation (in scope or
       not), and of those the words a prediction overlaps (removed although no PHI) */
    uint64_t words, words_not_phi, words_not_phi_removed;
    /* round 17: distinct word forms (ASCII case folded) among words_not_phi_removed: one word
       repeated across template titles counts once, so a cost can be judged at that resolution */
    uint64_t distinct_not_phi_removed;
} deid_eval_result;

/* Called for each miss (gold != NULL, pred == NULL) and each false positive (pred != NULL) by
 * any-overlap (all-dates scoring), for development tools; the command itself passes NULL and never prints text. */
typedef void (*deid_eval_cb)(void *ctx, const deid_doc *doc, const deid_gold *gold, const deid_span *pred);

int deid_evaluate(const deid_text_rules *r, const deid_corpus *c, deid_eval_result *res,
                  deid_eval_cb cb, void *cb_ctx, cf_err *err);

static inline double deid_ratio(uint64_t a, uint64_t b) { return b ? (double)a / (double)b : 0.0; }
static inline double deid_f2(double p, double r) { return (4 * p + r) > 0 ? 5 * p * r / (4 * p + r) : 0.0; }

#endif
