/* Fitting the de-identifier's model (model_int.h) on annotated notes: `clinfm deid-train`.
 *
 * Each note is run through the evidence layers of the rules folder; each word gets the label of
 * the in-scope gold span it overlaps (its PHI type) or "not PHI"; the CRF's weights are fitted by
 * stochastic gradient descent on the negative log-likelihood of the gold labels, with AdaGrad
 * steps and an L2 penalty, one note at a time in a shuffled order. Reproducible: the same notes,
 * rules and options give the same weights. */
#ifndef CLINFM_DEID_TRAIN_H
#define CLINFM_DEID_TRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "deid/deid_eval.h"
#include "deid/text.h"
#include "util/err.h"

typedef struct {
    int epochs;      /* passes over the notes (default 8) */
    float lr;        /* AdaGrad step (default 0.1) */
    float l2;        /* L2 penalty per step on the weights a note touches (default 1e-5) */
    float threshold; /* written into the model: a word is PHI when P(O) < threshold (default 0.7) */
    float prune;     /* weights under this in magnitude are not saved (default 0.05) */
    uint64_t seed;   /* shuffling */
    int verbose;     /* loss per epoch on stderr */
} deid_train_opts;

void deid_train_opts_default(deid_train_opts *o);

/* Fits a model on docs (gold spans with in_scope set are PHI, the rest of the text is not) and
 * writes it to out_path. The rules' own model, if any, is ignored (the evidence layers do not
 * read it). */
int deid_model_train(const deid_text_rules *r, const deid_doc *const *docs, size_t n, const deid_train_opts *o,
                     const char *out_path, cf_err *err);

#endif
