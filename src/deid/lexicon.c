/* Lookups in the de-identifier's loaded rules (rules.c builds them): PHI type names, the word
 * and phrase classes of the hashed lists, month and weekday names. A leaf of the engine: the
 * finder (find.c), the model (features.c, model.c, decode.c) and the rules loader all read here, and nothing here calls
 * them, so the three form no circle. */
#include "deid/model_int.h"

#include <string.h>
#include <strings.h>

static const char *TYPE_NAMES[DEID_N_TYPES] = {
    "EMAIL", "URL", "IP", "SSN", "MRN", "DATE", "ID", "FAX", "PHONE",
    "AGE_OVER_89", "ADDRESS", "ZIP", "ORGANIZATION", "LOCATION", "NAME",
};

const char *deid_type_name(int type) {
    if (type < 0 || type >= DEID_N_TYPES) return NULL;
    return TYPE_NAMES[type];
}

int deid_type_from_name(const char *name) {
    if (!name) return -1;
    for (int t = 0; t < DEID_N_TYPES; t++)
        if (!strcasecmp(name, TYPE_NAMES[t])) return t;
    return -1;
}

static deid_flags index_find(const deid_lexindex *ix, const strmap *m, const char *s, size_t len) {
    if (!ix->slots) return 0;
    uint64_t h = strmap_hash(s, len) | 1;
    size_t j = h & ix->mask;
    while (ix->slots[j].h) {
        const deid_lexslot *sl = &ix->slots[j];
        if (sl->h == h && sl->len == len) {
            if (len <= sizeof sl->key) {
                if (!memcmp(sl->key, s, len)) return sl->f;
            } else {
                size_t l2;
                const char *t = strmap_str(m, sl->id, &l2);
                if (!memcmp(t, s, len)) return sl->f;
            }
        }
        j = (j + 1) & ix->mask;
    }
    return 0;
}

deid_flags deid_word_flags(const deid_text_rules *r, const char *lower, size_t len) {
    return index_find(&r->wix, &r->words, lower, len);
}

deid_flags deid_phrase_flags(const deid_text_rules *r, const char *lower, size_t len) {
    return index_find(&r->pix, &r->phrases, lower, len);
}

int deid_month_from_name(const deid_text_rules *r, const char *s, size_t len) {
    char low[32];
    if (len < 3 || len >= sizeof low) return 0;
    size_t ll = deid_lower(s, len, low, sizeof low);
    if (ll == (size_t)-1) return 0;
    while (ll && low[ll - 1] == '.') ll--;
    for (int m = 0; m < 12; m++)
        if (ll >= 3 && ll <= strlen(r->month_names[m]) && !strncmp(low, r->month_names[m], ll))
            return m + 1;
    /* "Sept" */
    if (ll == 4 && !strncmp(low, "sept", 4)) return 9;
    return 0;
}

int deid_weekday_from_name(const deid_text_rules *r, const char *s, size_t len) {
    char low[32];
    if (len < 3 || len >= sizeof low) return 0;
    size_t ll = deid_lower(s, len, low, sizeof low);
    if (ll == (size_t)-1) return 0;
    for (int d = 0; d < 7; d++)
        if (!strncmp(low, r->weekday_names[d], 3)) return d + 1;
    return 0;
}
