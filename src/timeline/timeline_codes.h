/* How one store code becomes tokens: its namespace, the special marker it carries (admission,
 * ICU stay, death), whether it is the birth event, and its ETHOS-style parts when it is a long
 * hierarchical code (ICD-10-CM into category / detail / extension, ICD-10-PCS into its 7 axes).
 * Shared by the vocabulary builder (which counts what the encoder will emit) and the encoder,
 * so the two can never disagree. Internal to src/timeline. */
#ifndef CLINFM_TIMELINE_TIMELINE_CODES_H
#define CLINFM_TIMELINE_TIMELINE_CODES_H

#include <stddef.h>

/* The special tokens, in vocabulary order (ids 0..VOCAB_N_SPECIAL-1). */
enum {
    VOCAB_SP_PAD = 0,      /* padding; never produced by the encoder */
    VOCAB_SP_EOT,          /* end of the timeline (after the last event) */
    VOCAB_SP_UNK,          /* a code whose namespace was never seen in train */
    VOCAB_SP_ADM_START,    /* start of a hospital admission (inpatient visit) */
    VOCAB_SP_ADM_END,      /* end of a hospital admission (discharge) */
    VOCAB_SP_ICU_START,    /* start of an ICU stay */
    VOCAB_SP_ICU_END,      /* end of an ICU stay */
    VOCAB_SP_DEATH,        /* death (MEDS_DEATH) */
    VOCAB_N_SPECIAL
};

/* The rules below are versioned: a vocabulary records the ruleset it was built with and the
 * encoder refuses another. Bump when a marker rule or the ICD splitting changes. */
#define TIMELINE_RULESET 1

#define TIMELINE_MAX_PARTS 7
#define TIMELINE_PART_CAP 32

typedef struct {
    int marker;     /* VOCAB_SP_* emitted before the code's tokens, or -1 */
    int keep_code;  /* 0 when the marker stands for the whole code (MEDS_DEATH) */
    int birth;      /* MEDS_BIRTH: becomes the age tokens, never a token itself */
    int n_parts;    /* 0: the code is one token; else the number of parts */
    char parts[TIMELINE_MAX_PARTS][TIMELINE_PART_CAP];
} timeline_code_info;

/* Length of the namespace: the bytes before the first "//" (the whole code when none). */
size_t timeline_code_namespace(const char *code);
/* Fills info for code; split_codes selects the ICD splitting. */
void timeline_code_analyse(const char *code, int split_codes, timeline_code_info *info);

#endif
