/* The fitted model of the text de-identifier: a linear-chain conditional random field over the
 * words of a note, whose features are the evidence of find.c (word lists, cue words, word shape
 * and casing, the context window, the clinical keep-list, the section, the patterns, the
 * record's known strings and the rule detectors), each scored by a weight fitted on annotated
 * text (deid-train), not ordered by hand. Internal to src/deid; the file format is in
 * docs/DEID.md ("The model file").
 *
 * Labels: L = DEID_NL = 16, label 0 is "not PHI" (O) and label t + 1 is PHI type t (text.h). A
 * note of T words gets emission scores E (T, L) = the sum of the weight rows of each word's
 * features, and transition scores trans (L, L); forward-backward gives each word's marginal
 * label probabilities, and a word is PHI when P(O) < threshold (posterior decoding: the
 * threshold trades precision for recall and is kept in the model file). */
#ifndef CLINFM_DEID_MODEL_INT_H
#define CLINFM_DEID_MODEL_INT_H

#include <stddef.h>
#include <stdint.h>

#include "deid/find_int.h"
#include "util/strmap.h"

#define DEID_NL (DEID_N_TYPES + 1)

typedef struct deid_model {
    strmap feats;     /* feature name -> id */
    float *w;         /* (n_feat, L) emission weights; row id */
    uint32_t cap;     /* rows allocated in w */
    float trans[DEID_NL * DEID_NL]; /* (L prev, L cur) */
    float threshold;  /* a word is PHI when its P(O) is below this */
    /* stricter thresholds for words with less evidence (0 = same as threshold; decode.c,
       model_labels): a word no pattern, rule detector or known string marks at all
       ("@threshold_bare"), and a word whose most probable label is a shaped type (date, phone,
       id, ZIP, age...) that no pattern covers ("@threshold_nopattern") */
    float threshold_bare, threshold_nopattern;
    /* round 30 candidates D75, D70: in a note of keep density class '3' (find_int.h,
       deid__keep_density: at least one clinical keep-list word in seven), a word is PHI only when
       P(O) is below this instead of threshold; the bare and no-pattern thresholds still apply on
       top ("@threshold_dense<TAB>P"; 0 = off, as in a file without the line) */
    float threshold_dense;
    /* round 8: the context of a word in a note written in one case is also emitted conjoined
       with "one case" (features.c, one_case_context); "@one_case_context<TAB>1" in the file. A
       model without it never sees those features, so older files read as before. */
    int one_case_context;
    /* round 13: the list features (lst=, lst1=) stand aside for a word with a person cue within
       two words (features.c, person_cue_near); "@list_person_gate<TAB>1" in the file. Off in a file
       without it (the shipped model of round 12). */
    int list_person_gate;
    /* round 15 (shipped since round 16): a list note with no narrative line (features.c, narrative_line) is a
       catalogue, where round 13's person-cue gate applies only beside a title or a cue phrase
       (person_cue_near in a catalogue); "@list_catalogue_test<TAB>1" */
    int list_catalogue_test;
    /* round 16 (shipped): words the evidence layer joined into a firm by an ampersand ("Johnson &
       Johnson", find.c, ampersand_firms) are one organisation once the model takes any of them as
       a name, place or organisation (decode.c, amp_firms); "@amp_firm_span<TAB>1" */
    int amp_firm_span;
    /* round 19 candidate C: in a note written in one case, a catalogue (catalogue_note: no
       narrative line) whose lines are field-shaped is a field list even when its lines are long or
       open with common words (fields.c, deid__field_lines); "@one_case_fields<TAB>1" */
    int one_case_fields;
    /* round 19 candidate A: in the keep filter, a clinical word in no name or place list is not held
       by the cues only a name's shape gives (a credential or suffix after it, a line of its own:
       decode.c, strong_cue); "@keep_unnamed<TAB>1" */
    int keep_unnamed;
    /* round 20 candidates C' (2) and C't (1), with one_case_fields: in a one-case catalogue the
       re-cased shapes leave an unlisted surname lower-case ("reviewed by dr X" lower-cased), so the
       field cue's case test drops it; 1 frees the title and name_is cues of that test, 2 every cue
       before the word, weak ones ("per", "by") too (decode.c, field_cue); "@one_case_cue<TAB>N" */
    int one_case_cue;
    /* round 21 candidate C'': on a field list's line with its own person evidence (a name the field
       cue holds, a credential after a name), a date the model found stays whatever pattern covers
       it: a dated signature (decode.c, field_line_person); "@field_dates<TAB>1" */
    int field_dates;
    /* Round 22: nursing shorthand the model took for PHI is dropped after it (decode.c,
       shorthand_filter): 1 a vent setting's slash chain is no date and an ion ("K+") no name, 2
       also a bare host of numbers and common words ("2.Pt") no URL; round 23: 3 N1 and, on any
       label, a pattern-typed bare host, a short signed number, a pain score "a/10"; 4 also a
       clinical word labelled a place after at/in/from; "@nursing_shorthand<TAB>N" */
    int nursing_shorthand;
    /* lookup index built after loading: (ix_mask + 1) slots, each the upper 32 bits of a feature
       name's hash (never 0) and its row; names are not compared (a feature the model lacks
       matching a slot's 32-bit tag happens about once in a billion lookups, and costs one
       feature's weight), which keeps a lookup to one 8-byte load */
    uint64_t *ix;
    size_t ix_mask;
    /* a filter in front of the index: bit (tag >> 1) & have_mask is set for every feature of the
       model (about one bit in sixteen), so most features the model lacks are dropped after one
       load of a cache-resident bitmap instead of a walk along the index; a lookup that passes it
       walks the index as before, so the answers are the index's (a tag's bit is the same for
       every name with that tag) */
    uint64_t *have;
    size_t have_mask;
    /* set with the index, unique in the process (0: no index): the threads' caches of summed
       weight rows (features.c, thread_kind_cache) are keyed by it, so a loaded model's weights must
       not change after loading */
    uint64_t serial;
} deid_model;

/* Loads path; *out is NULL (and CF_OK) when the file does not exist, so a rules folder without a
 * model runs the evidence layers alone. Errors name the file and line. */
int deid_model_load(deid_model **out, const char *path, cf_err *err);
/* Writes the model as text (docs/DEID.md); weights with |w| < prune are left out. Atomic. */
int deid_model_save(const deid_model *m, const char *path, float prune, cf_err *err);
void deid_model_free(deid_model *m);
int deid_model_new(deid_model **out, cf_err *err);

/* The hash of feature names (features.c): 8 bytes at a time. */
uint64_t deid__feature_hash(const char *s, size_t n);
/* The same hash of the name tpl + v (tl <= 8), read from its two parts (inference never writes a
 * feature's name out). */
uint64_t deid__feature_hash_parts(const char *tpl, size_t tl, const char *v, size_t vl);

/* Features of one note: token i's feature ids are ids[start[i] .. start[i+1]). With intern set,
 * features not in the model are added (training); otherwise they are skipped. names, when not
 * NULL, receives nothing: names are read back from m->feats. */
typedef struct {
    uint32_t *ids;
    size_t n, cap;
    size_t *start; /* (T + 1) */
    int oom;
    /* inference only: the summed rows of the features a word's shape and classes alone decide
       (bias, shape, class letter, length, class bits: the same for every word alike) are
       computed once per kind of word and kept here, (T, L), instead of as ids; NULL when
       training, or when no_cache is set (explain lists every feature) */
    float *extra;
    int no_cache;
} deid_featbuf;
int deid__features(const ctx *c, deid_model *m, int intern, deid_featbuf *fb, cf_err *err);
void deid__featbuf_free(deid_featbuf *fb);

/* Marginals P (T, L) of a note with emission scores E (T, L) under trans; returns log Z.
 * work holds 4 * T * L floats. */
double deid__crf_marginals(const float *E, size_t T, const float *trans, float *P, float *work);
/* Negative log-likelihood of gold (T) and its gradient added into gE (T, L) and gT (L, L); P
 * receives the marginals, work 4 * T * L floats (model_train.c). */
double deid__crf_nll_grad(const float *E, size_t T, const float *trans, const uint8_t *gold, float *P, float *work,
                          float *gE, float *gT);
/* E (T, L) from the features. */
void deid__emissions(const deid_model *m, const deid_featbuf *fb, size_t T, float *E);

/* Word tests the features (features.c) and the rules after the model (decode.c, slots.c) share. */
long deid__num_value(const ctx *c, size_t i);
int deid__clock_time(const ctx *c, size_t i);
int deid__year_shaped(const ctx *c, size_t i);
int deid__slash_date_possible(const ctx *c, size_t i);
/* -1 out of memory */
int deid__one_case_catalogue(const ctx *c);

#endif
