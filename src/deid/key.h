/* The de-identification secret key: 32 random bytes in a small text file kept apart from the data.
 *
 * File format (one line of magic, one of hex, mode 0600):
 *   clinfm-deid-key v1
 *   <64 hex digits>
 * Purpose-specific subkeys are derived with libsodium's KDF, so that knowing, say, the date-shift
 * subkey reveals nothing about the pseudonym subkey. The key itself never enters any output. */
#ifndef CLINFM_DEID_KEY_H
#define CLINFM_DEID_KEY_H

#include <stdint.h>

#include "util/err.h"

#define DEID_KEY_BYTES 32

enum deid_subkey { DEID_SUBKEY_PSEUDONYM = 1, DEID_SUBKEY_DATE_SHIFT = 2, DEID_SUBKEY_SURROGATE = 3,
                   DEID_SUBKEY_SPLIT = 4 };

int deid_key_generate(const char *path, cf_err *err);
int deid_key_load(const char *path, unsigned char key[DEID_KEY_BYTES], cf_err *err);
void deid_subkey(const unsigned char key[DEID_KEY_BYTES], enum deid_subkey which, unsigned char out[DEID_KEY_BYTES]);

/* Keyed pseudonym of a subject id: a positive int64; same id and key, same pseudonym. */
int64_t deid_pseudonym(const unsigned char subkey[DEID_KEY_BYTES], int64_t subject_id);
/* The n-th candidate pseudonym of a subject (n = 0 is deid_pseudonym): de-identification that
 * keeps the split takes the first candidate in the subject's split percentile. */
int64_t deid_pseudonym_n(const unsigned char subkey[DEID_KEY_BYTES], int64_t subject_id, uint32_t n);
/* Per-subject date shift in days: a whole number of weeks (weekday patterns survive) in
 * [-364, -7] or [7, 364], never 0. */
int deid_shift_days(const unsigned char subkey[DEID_KEY_BYTES], int64_t subject_id);

#endif
