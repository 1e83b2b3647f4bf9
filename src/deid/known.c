/* Strings a record knows about itself (its patient's, relatives' and practitioners' names,
 * addresses, phone numbers, ids), prepared for fast lookup in that record's notes.
 *
 * Names are split into words and each word is found on its own, in any letter case: a note that
 * says "Mrs. Larue" or "LARUE, SUMIKO" still names the patient. Numbers are reduced to their
 * digits, so "(555) 123-4567" in the structured data finds "555.123.4567" in a note. Everything
 * else is matched as a phrase of words, ignoring case and punctuation between the words. */
#include "deid/deid_int.h"

#include <stdlib.h>
#include <string.h>

int deid_known_new(deid_known **out, cf_err *err) {
    deid_known *k = cf_calloc(1, sizeof *k);
    if (!k) return cf_fail(err, CF_EINTERNAL, "out of memory");
    strmap_init(&k->words);
    strmap_init(&k->phrases);
    strmap_init(&k->heads);
    strmap_init(&k->initials);
    strmap_init(&k->digits);
    *out = k;
    return CF_OK;
}

void deid_known_free(deid_known *k) {
    if (!k) return;
    strmap_free(&k->words);
    strmap_free(&k->phrases);
    strmap_free(&k->heads);
    strmap_free(&k->initials);
    strmap_free(&k->digits);
    CF_FREE_ALL(k->word_type, k->phrase_type, k->digit_type, k);
}

/* Stores type for id in a growing int array (types of later additions win). */
static int put_type(int **arr, uint32_t count, int64_t id, int type) {
    if (id < 0) return -1;
    /* grow to the map's count: ids are dense */
    int *na = cf_realloc_array(*arr, count, sizeof *na);
    if (!na) return -1;
    *arr = na;
    na[id] = type;
    return 0;
}

/* Words that are too common to be found on their own even when they are part of a name. */
static int skip_word(const char *w, size_t n) {
    static const char *const common[] = {"jr", "sr", "ii", "iii", "iv", "mr", "mrs", "ms", "dr",
                                         "md", "de", "la", "le", "van", "von", "der", "del", "da",
                                         "di", "st", "the", "and", "of"};
    if (n < 2) return 1;
    for (size_t i = 0; i < sizeof common / sizeof common[0]; i++)
        if (strlen(common[i]) == n && !memcmp(common[i], w, n)) return 1;
    return 0;
}

/* A note names a hospital by its initials more often than in full ("transferred from GVGH"), so an
 * organisation the record knows is also known by them. Function words give no letter (HUP is the
 * Hospital of the University of Pennsylvania) and a word of digits gives none either; the
 * clinical filter is applied where the word is read (find.c), where the word lists are. */
static int add_initials(deid_known *k, const char *low, size_t ll) {
    static const char *const skip[] = {"of", "the", "and", "at", "for", "in"};
    char ini[9];
    size_t n = 0, pos = 0, ws, we;
    int words = 0;
    while (deid_next_word(low, ll, &pos, &ws, &we)) {
        words++;
        int function_word = 0;
        for (size_t i = 0; i < sizeof skip / sizeof skip[0]; i++)
            if (strlen(skip[i]) == we - ws && !memcmp(skip[i], low + ws, we - ws)) function_word = 1;
        if (function_word) continue;
        unsigned char c0 = (unsigned char)low[ws];
        if (c0 >= '0' && c0 <= '9') continue;
        if (c0 < 'a' || c0 > 'z') return 0; /* initials of other scripts: not attempted */
        if (n == sizeof ini - 1) return 0;  /* more than eight: nobody writes them */
        ini[n++] = (char)c0;
    }
    if (words < 2 || n < 3) return 0;
    return strmap_intern(&k->initials, ini, n) < 0 ? -1 : 0;
}

int deid_known_add(deid_known *k, int type, const char *s, size_t len, cf_err *err) {
    if (!k || (!s && len)) return cf_fail(err, CF_EINTERNAL, "deid_known_add: no list or no string");
    if (type < 0 || type >= DEID_N_TYPES) return cf_fail(err, CF_EINPUT, "deid_known_add: unknown PHI type %d", type);
    if (len == 0) return CF_OK;
    if (len > 4096) return cf_fail(err, CF_EINPUT, "deid_known_add: a %s string longer than 4096 bytes", deid_type_name(type));
    char *low = cf_malloc(len + 1);
    if (!low) return cf_fail(err, CF_EINTERNAL, "out of memory");
    size_t ll = deid_lower(s, len, low, len + 1);
    int rc = CF_OK;
    if (ll == (size_t)-1) goto done;

    if (type == DEID_PHONE || type == DEID_FAX || type == DEID_SSN || type == DEID_MRN || type == DEID_ID) {
        char dg[64];
        size_t nd = 0;
        for (size_t i = 0; i < ll; i++)
            if (low[i] >= '0' && low[i] <= '9' && nd < sizeof dg) dg[nd++] = low[i];
        if (nd >= 4) {
            int64_t id = strmap_intern(&k->digits, dg, nd);
            if (put_type(&k->digit_type, k->digits.count, id, type)) {
                rc = cf_fail(err, CF_EINTERNAL, "out of memory");
                goto done;
            }
        }
        /* ids with letters ("A12345") are also found as words */
        int letters = 0;
        for (size_t i = 0; i < ll; i++)
            if ((low[i] >= 'a' && low[i] <= 'z')) letters = 1;
        if (!letters) goto done;
    }

    /* split into words */
    size_t pos = 0, ws, we;
    char *key = cf_malloc(ll + 1);
    if (!key) {
        rc = cf_fail(err, CF_EINTERNAL, "out of memory");
        goto done;
    }
    size_t kl = 0;
    int nwords = 0;
    size_t h_s = 0, h_e = 0;
    while (deid_next_word(low, ll, &pos, &ws, &we)) {
        if (type == DEID_NAME) {
            /* Synthea-style digits at the end of a name word are dropped ("abe604") */
            size_t e2 = we;
            while (e2 > ws && low[e2 - 1] >= '0' && low[e2 - 1] <= '9') e2--;
            if (e2 > ws && !skip_word(low + ws, e2 - ws)) {
                int64_t id = strmap_intern(&k->words, low + ws, e2 - ws);
                if (put_type(&k->word_type, k->words.count, id, DEID_NAME)) {
                    rc = cf_fail(err, CF_EINTERNAL, "out of memory");
                    break;
                }
            }
            continue;
        }
        if (nwords) key[kl++] = ' ';
        else {
            h_s = ws;
            h_e = we;
        }
        memcpy(key + kl, low + ws, we - ws);
        kl += we - ws;
        nwords++;
    }
    if (!rc && type == DEID_ORGANIZATION && nwords > 1 && add_initials(k, low, ll))
        rc = cf_fail(err, CF_EINTERNAL, "out of memory");
    if (!rc && type != DEID_NAME && nwords > 0) {
        int64_t id;
        if (nwords == 1) {
            if (kl >= 3) {
                id = strmap_intern(&k->words, key, kl);
                if (put_type(&k->word_type, k->words.count, id, type)) rc = cf_fail(err, CF_EINTERNAL, "out of memory");
            }
        } else {
            id = strmap_intern(&k->phrases, key, kl);
            if (put_type(&k->phrase_type, k->phrases.count, id, type) ||
                strmap_intern(&k->heads, low + h_s, h_e - h_s) < 0)
                rc = cf_fail(err, CF_EINTERNAL, "out of memory");
            if (nwords > k->max_phrase_words) k->max_phrase_words = nwords;
        }
    }
    free(key);
done:
    free(low);
    return rc;
}
