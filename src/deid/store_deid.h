/* De-identification of a whole event store: HIPAA Safe Harbor for structured fields and notes.
 *
 * Input: a store as ingested. Identifiers that the sources carry as data (a patient's name,
 * address, phone, SSN, MRN...) arrive as events whose code starts with `PHI//` (see
 * docs/DEID.md for the list); they are used to find the same strings in that patient's notes and
 * are then removed, except the first three ZIP digits (`ZIP3//021`, or `ZIP3//000` for the
 * restricted areas) and the state, which Safe Harbor allows.
 *
 * Output: a new store in which
 *   - subject ids are keyed pseudonyms (same id and key, same pseudonym; unlinkable without it),
 *     and original identifiers (FHIR ids, MRNs) and source row numbers are gone;
 *   - every time is shifted by one per-subject whole number of weeks (policy `shift`, the default
 *     for training: intervals survive exactly; this is Expert Determination, not Safe Harbor), or
 *     reduced to its year (policy `safe-harbor`);
 *   - a birth date implying an age over 89 at the subject's last event is moved so that age is 90
 *     (one "90 or older" category);
 *   - every text value is run through the free-text de-identifier (deid/text.h) with the subject's
 *     own identifiers as known strings, dates shifted with the same shift as the structured dates;
 *   - optionally, subjects in quasi-identifier groups smaller than k are suppressed.
 * The policy used is recorded in the store header flags and META. The report holds kinds and
 * counts, never values. De-identifying twice with the same key gives the same bytes. */
#ifndef CLINFM_DEID_STORE_DEID_H
#define CLINFM_DEID_STORE_DEID_H

#include <stdint.h>

#include "deid/key.h"
#include "deid/text.h"
#include "util/err.h"

typedef enum { DEID_DATES_SHIFT = 0, DEID_DATES_YEAR = 1 } deid_date_policy;

typedef struct {
    deid_date_policy dates;
    deid_mode text_mode;      /* tags ([NAME]) or surrogates */
    int k;                    /* k-anonymity floor (default 5) */
    int suppress;             /* drop subjects in groups smaller than k */
    const char *rules_dir;    /* text rules and the restricted ZIP3 table (default data/deid) */
    size_t memory_budget;     /* for the output writer; 0 = default */
    /* Keeping the train/tuning/held-out split (clinfm deid --split-key): when split_group is
     * set, each subject's pseudonym is the first candidate (deid_pseudonym_n) in the same group
     * as its original id, so a split decided by the group gives the same patients on each side
     * whatever the de-identification key. split_key_id (hex) names the split key in the report. */
    int (*split_group)(const void *ctx, int64_t subject_id);
    const void *split_ctx;
    const char *split_key_id;
} deid_store_options;

#define DEID_KANON_BUCKETS 7  /* group sizes 1, 2, 3, 4, 5-9, 10-19, 20+ */

typedef struct {
    uint64_t subjects_in, subjects_out, subjects_suppressed;
    uint64_t events_in, events_out;
    uint64_t identifier_events_removed;     /* PHI// events dropped */
    uint64_t identifier_events_by_type[DEID_N_TYPES];
    uint64_t zip3_kept, zip3_restricted;    /* ZIPs generalised to 3 digits / to 000 */
    uint64_t subject_keys_removed;
    uint64_t split_candidates;              /* pseudonym candidates tried to keep the split */
    uint64_t times_changed;
    uint64_t births_capped;                 /* ages over 89 aggregated */
    uint64_t texts_scanned, texts_changed;
    uint64_t text_spans[DEID_N_TYPES];
    uint64_t kanon_groups, kanon_groups_below_k, kanon_subjects_below_k;
    uint64_t kanon_hist[DEID_KANON_BUCKETS];/* subjects by the size of their group */
    double seconds;
    uint64_t text_bytes;
} deid_store_report;

int deid_store(const char *in_path, const char *out_path, const unsigned char key[DEID_KEY_BYTES],
               const deid_store_options *opt, deid_store_report *rep, cf_err *err);
/* The report as JSON (malloc'd). */
char *deid_store_report_json(const deid_store_report *rep, const deid_store_options *opt);

#endif
