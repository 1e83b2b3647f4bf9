/* Loading the de-identifier's rules folder: word lists and cue words into one hash of word
 * classes (plus a hash of multi-word entries), patterns.tsv into JIT-compiled PCRE2 codes, and
 * the model (model.tsv). The lookups the engine makes in the loaded rules are in lexicon.c.
 *
 * Every list is read the same way: one entry per line, '#' starts a comment line, entries are
 * matched ignoring case. An entry is split into words with the same tokenizer the engine uses on
 * notes, so "M.D." in a list matches "M.D." or "MD" in text alike. Errors name the file and line
 * but never quote the line (a list is not PHI, but the same code paths read user-supplied files
 * and must not echo them). */
#include "deid/model_int.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    const char *file;
    deid_flags flag;
} list_file;

static const list_file LIST_FILES[] = {
    {"first_names.txt", F_FIRST},     {"last_names.txt", F_LAST},
    {"places.txt", F_PLACE},          {"regions.txt", F_REGION},
    {"english_words.txt", F_ENGLISH}, {"medical_words.txt", F_MEDICAL},
    {"clinical_words.txt", F_MEDICAL},
    {"clinical_keep.txt", F_MEDICAL | F_KEEP},
};

typedef struct {
    const char *kind;
    deid_flags flag;
} cue_kind;

static const cue_kind CUE_KINDS[] = {
    {"title", F_TITLE},
    {"name_before", F_NAME_BEFORE},
    {"name_weak", F_NAME_WEAK},
    {"name_is", F_NAME_IS | F_NAME_BEFORE},
    {"pronoun", F_PRONOUN},
    {"eponym_after", F_EPONYM},
    {"name_after", F_NAME_AFTER},
    {"place_before", F_PLACE_BEFORE},
    {"place_weak", F_PLACE_WEAK},
    {"place_word", F_PLACE_WORD},
    {"kin", F_KIN | F_NAME_BEFORE},
    {"org_before", F_ORG_BEFORE},
    {"org_after", F_ORG_AFTER},
    {"street", F_STREET},
    {"street_main", F_STREET | F_STREET_MAIN},
    {"street_ending", 0}, /* kept as a suffix list, not as words */
    {"med_prefix", 0},    /* kept as lists too */
    {"med_suffix", 0},
    {"drug_before", F_DRUG_BEFORE},
    {"unit", F_UNIT},
    {"particle", F_PARTICLE},
    {"address_before", F_ADDR_BEFORE},
    {"state_abbr", F_STATE_ABBR},
    {"measure", F_MEASURE},
    {"month", F_MONTH | F_STOP},
    {"weekday", F_WEEKDAY | F_STOP},
    {"stop", F_STOP},
    {"not_name", F_NOT_NAME},
};
#define N_CUE_KINDS (sizeof CUE_KINDS / sizeof CUE_KINDS[0])

/* ---- word and phrase tables -------------------------------------------------------------- */

static int set_flag(strmap *m, deid_flags **flags, uint32_t *cap, const char *key, size_t len,
                    deid_flags flag) {
    int64_t id = strmap_intern(m, key, len);
    if (id < 0) return -1;
    if ((uint32_t)id >= *cap) {
        uint32_t ncap = *cap ? *cap * 2 : 4096;
        while (ncap <= (uint32_t)id) ncap *= 2;
        deid_flags *nf = cf_realloc_array(*flags, ncap, sizeof *nf);
        if (!nf) return -1;
        memset(nf + *cap, 0, (size_t)(ncap - *cap) * sizeof *nf);
        *flags = nf;
        *cap = ncap;
    }
    (*flags)[id] |= flag;
    return 0;
}

/* Adds a list entry: lower-cased, split into words; one word goes to the word table, several to
 * the phrase table (and the first word is marked as a phrase head). */
static int add_entry(deid_text_rules *r, const char *s, size_t len, deid_flags flag) {
    char low[1024], key[1024];
    if (len >= sizeof low) return 0; /* absurdly long entries are skipped */
    size_t ll = deid_lower(s, len, low, sizeof low);
    if (ll == (size_t)-1) return 0;
    size_t pos = 0, ws, we, kl = 0;
    int nwords = 0;
    size_t first_s = 0, first_e = 0;
    while (deid_next_word(low, ll, &pos, &ws, &we)) {
        if (kl + (we - ws) + 1 >= sizeof key) return 0;
        if (nwords) key[kl++] = ' ';
        else {
            first_s = ws;
            first_e = we;
        }
        memcpy(key + kl, low + ws, we - ws);
        kl += we - ws;
        nwords++;
    }
    if (nwords == 0) return 0;
    if (nwords == 1) return set_flag(&r->words, &r->wflags, &r->wflags_cap, key, kl, flag);
    if (set_flag(&r->phrases, &r->pflags, &r->pflags_cap, key, kl, flag)) return -1;
    /* every proper prefix of two words or more is marked, so matching stops early */
    for (size_t q = 0, sp = 0; q < kl; q++) {
        if (key[q] != ' ') continue;
        if (++sp >= 2 && set_flag(&r->phrases, &r->pflags, &r->pflags_cap, key, q, F_PHRASE_HEAD)) return -1;
    }
    if (nwords > r->max_phrase_words) r->max_phrase_words = nwords;
    return set_flag(&r->words, &r->wflags, &r->wflags_cap, low + first_s, first_e - first_s,
                    F_PHRASE_HEAD);
}

static int build_index(deid_lexindex *ix, const strmap *m, const deid_flags *flags) {
    size_t cap = 16;
    while (cap < (size_t)m->count * 2 + 2) cap *= 2;
    ix->slots = cf_calloc_table(cap, sizeof *ix->slots);
    if (!ix->slots) return -1;
    ix->mask = cap - 1;
    for (uint32_t id = 0; id < m->count; id++) {
        size_t len;
        const char *s = strmap_str(m, id, &len);
        uint64_t h = strmap_hash(s, len) | 1; /* 0 marks an empty slot */
        size_t j = h & ix->mask;
        while (ix->slots[j].h) j = (j + 1) & ix->mask;
        ix->slots[j].h = h;
        ix->slots[j].f = flags[id];
        ix->slots[j].id = id;
        ix->slots[j].len = (uint32_t)len;
        if (len <= sizeof ix->slots[j].key) memcpy(ix->slots[j].key, s, len);
    }
    return 0;
}

/* ---- file reading ------------------------------------------------------------------------ */

static int read_file(const char *dir, const char *name, char **out, size_t *out_len,
                     char *path, size_t path_cap, cf_err *err) {
    snprintf(path, path_cap, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f) return cf_fail_errno(err, CF_EINPUT, "%s: cannot open de-identification rules", path);
    size_t cap = 1 << 16, n = 0;
    char *buf = cf_malloc(cap);
    if (!buf) {
        fclose(f);
        return cf_fail(err, CF_EINTERNAL, "%s: out of memory", path);
    }
    for (;;) {
        if (n + 4096 + 1 > cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                fclose(f);
                return cf_fail(err, CF_EINTERNAL, "%s: out of memory", path);
            }
            buf = nb;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0) break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        return cf_fail(err, CF_EINPUT, "%s: read error", path);
    }
    buf[n] = 0;
    *out = buf;
    *out_len = n;
    return CF_OK;
}

/* Iterates lines: returns 1 with [*ls, *le) the line (no newline, no CR), 0 at the end. */
static int next_line(const char *buf, size_t len, size_t *pos, size_t *ls, size_t *le) {
    if (*pos >= len) return 0;
    size_t s = *pos, e = s;
    while (e < len && buf[e] != '\n') e++;
    *pos = e < len ? e + 1 : e;
    size_t ee = e;
    if (ee > s && buf[ee - 1] == '\r') ee--;
    *ls = s;
    *le = ee;
    return 1;
}

static int load_list(deid_text_rules *r, const char *dir, const list_file *lf, cf_err *err) {
    char path[4096];
    char *buf;
    size_t len;
    int rc = read_file(dir, lf->file, &buf, &len, path, sizeof path, err);
    if (rc) return rc;
    size_t lines = 1;
    for (size_t i = 0; i < len; i++) lines += buf[i] == '\n';
    if (strmap_reserve(&r->words, lines)) {
        free(buf);
        return cf_fail(err, CF_EINTERNAL, "%s: out of memory", path);
    }
    size_t pos = 0, ls, le;
    while (next_line(buf, len, &pos, &ls, &le)) {
        if (le == ls || buf[ls] == '#') continue;
        if (add_entry(r, buf + ls, le - ls, lf->flag)) {
            free(buf);
            return cf_fail(err, CF_EINTERNAL, "%s: out of memory", path);
        }
    }
    free(buf);
    return CF_OK;
}

/* A lower-cased list line as the post lists store it: its words joined by one space (as in
 * add_entry()), at most cap - 1 bytes (words past that are dropped); *nw gets the word count. */
static size_t phrase_key(const char *low, size_t ll, char *key, size_t cap, int *nw) {
    size_t wp = 0, ws, we, kl = 0;
    *nw = 0;
    while (deid_next_word(low, ll, &wp, &ws, &we)) {
        if (kl + (we - ws) + 1 >= cap) break;
        if ((*nw)++) key[kl++] = ' ';
        memcpy(key + kl, low + ws, we - ws);
        kl += we - ws;
    }
    return kl;
}

/* The clinical keep filter's own lists (clinical_keep_post.txt, keep_roles.txt) and the clinical
 * scales with their maximum (scores.txt): read after the model only, never as model evidence, so
 * they can grow without a refit. Entries are stored lower-cased, words joined by one space as in
 * add_entry(). A rules folder without the file has an empty list. With keep_of (round 34), only
 * one-word entries that are no F_KEEP word of keep_of are stored. */
static int load_post_list_x(const deid_text_rules *keep_of, const char *dir, const char *name, strmap *map,
                            int *max_words, cf_err *err) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (access(path, F_OK) != 0) return CF_OK;
    char *buf;
    size_t len;
    int rc = read_file(dir, name, &buf, &len, path, sizeof path, err);
    if (rc) return rc;
    size_t pos = 0, ls, le;
    while (!rc && next_line(buf, len, &pos, &ls, &le)) {
        if (le == ls || buf[ls] == '#') continue;
        char low[512], key[512];
        if (le - ls >= sizeof low) continue;
        size_t ll = deid_lower(buf + ls, le - ls, low, sizeof low);
        if (ll == (size_t)-1) continue;
        int nw = 0;
        size_t kl = phrase_key(low, ll, key, sizeof key, &nw);
        if (nw == 0) continue;
        if (keep_of) {
            int64_t id = strmap_find(&keep_of->words, key, kl);
            if (nw != 1 || (id >= 0 && (uint32_t)id < keep_of->wflags_cap && (keep_of->wflags[id] & F_KEEP))) continue;
        }
        if (strmap_intern(map, key, kl) < 0) rc = cf_fail(err, CF_EINTERNAL, "%s: out of memory", path);
        if (nw > *max_words) *max_words = nw;
    }
    free(buf);
    return rc;
}

/* The keep filter's lists: every entry kept. */
static int load_post_list(const char *dir, const char *name, strmap *map, int *max_words, cf_err *err) {
    return load_post_list_x(NULL, dir, name, map, max_words, err);
}

/* Round 34, optional: clinical_keep_extra.txt's one-word entries that clinical_keep.txt (loaded
 * before) does not hold go into r->keep_extra, and nowhere else: the file gives no word a list
 * flag. Only the keep filter after the model reads the set (through tok.keep_extra). */
static int load_keep_extra(deid_text_rules *r, const char *dir, cf_err *err) {
    int max_words = 0;
    return load_post_list_x(r, dir, "clinical_keep_extra.txt", &r->keep_extra, &max_words, err);
}

/* slots.tsv (round 10): "kind<TAB>phrase" lines, one strmap per kind, stored as load_post_list
 * stores its entries. An unknown kind is an error naming the line. A rules folder without the
 * file has empty lists (the slot rules then never fire). */
static const char *const SLOT_KINDS[DEID_SLOT_KINDS] = {"message", "about", "year", "dispo", "facility", "sign", "initial", "part", "service", "not_ward", "serial", "patient", "date_after",
                                                             "ward_side", "person_after", "honorific", "participle",
                                                             "word_name", "ward_unit", "id_word", "pager_word",
                                                             "handoff", "nickname", "org_cue", "org_last",
                                                             "org_generic", "ward_cue", "ward_after", "sp_word",
                                                             "staff_name_role", "relation", "word_name2", "ward_room",
                                                             "sign_dash", "call_for", "staff_verb", "patient_verb",
                                                             "medical_given", "clock_word", "ob_exam", "facility_cue"};
static int load_slots(const char *dir, deid_text_rules *r, cf_err *err) {
    char path[4096];
    snprintf(path, sizeof path, "%s/slots.tsv", dir);
    if (access(path, F_OK) != 0) return CF_OK;
    char *buf;
    size_t len;
    int rc = read_file(dir, "slots.tsv", &buf, &len, path, sizeof path, err);
    if (rc) return rc;
    size_t pos = 0, ls, le, line = 0;
    while (!rc && next_line(buf, len, &pos, &ls, &le)) {
        line++;
        if (le == ls || buf[ls] == '#') continue;
        size_t tab = ls;
        while (tab < le && buf[tab] != '\t') tab++;
        int kind = -1;
        for (int k = 0; k < DEID_SLOT_KINDS && tab < le; k++)
            if (strlen(SLOT_KINDS[k]) == tab - ls && !memcmp(SLOT_KINDS[k], buf + ls, tab - ls)) kind = k;
        if (kind < 0) {
            rc = cf_fail(err, CF_EINPUT, "%s:%zu: expected KIND<TAB>phrase with KIND one of message, about, year, dispo, "
                                         "facility, sign, initial, part, service, not_ward, serial, patient, date_after, "
                                         "ward_side, person_after, honorific, participle, word_name, ward_unit, id_word, "
                                         "pager_word, handoff, nickname, org_cue, org_last, org_generic, "
                                         "ward_cue, ward_after, sp_word, staff_name_role, relation, word_name2, "
                                         "ward_room, sign_dash, call_for, staff_verb, patient_verb, medical_given, clock_word, ob_exam, facility_cue",
                                         path,
                                         line);
            break;
        }
        char low[512], key[512];
        if (le - tab - 1 >= sizeof low) continue;
        size_t ll = deid_lower(buf + tab + 1, le - tab - 1, low, sizeof low);
        if (ll == (size_t)-1) continue;
        int nw = 0;
        size_t kl = phrase_key(low, ll, key, sizeof key, &nw);
        if (nw == 0) continue;
        size_t lw = kl;
        while (lw > 0 && key[lw - 1] != ' ') lw--;
        r->slots_first[kind] |= deid__slot_letter_bit(key[0]);
        r->slots_last[kind] |= deid__slot_letter_bit(key[lw]);
        if (strmap_intern(&r->slots[kind], key, kl) < 0) rc = cf_fail(err, CF_EINTERNAL, "%s: out of memory", path);
        if (nw > r->slots_max_words[kind]) r->slots_max_words[kind] = nw;
    }
    free(buf);
    return rc;
}

/* Cue entries kept raw per kind, for {@kind} in patterns and for street endings. */
typedef struct {
    char **items;
    size_t n, cap;
} strvec;

static int strvec_push(strvec *v, const char *s, size_t len) {
    if (v->n == v->cap) {
        size_t nc = v->cap ? v->cap * 2 : 64;
        char **ni = cf_realloc_array(v->items, nc, sizeof *ni);
        if (!ni) return -1;
        v->items = ni;
        v->cap = nc;
    }
    char *c = cf_malloc(len + 1);
    if (!c) return -1;
    memcpy(c, s, len);
    c[len] = 0;
    v->items[v->n++] = c;
    return 0;
}

static void strvec_free(strvec *v) {
    for (size_t i = 0; i < v->n; i++) free(v->items[i]);
    free(v->items);
    memset(v, 0, sizeof *v);
}

static int load_cues(deid_text_rules *r, const char *dir, strvec *raw, cf_err *err) {
    char path[4096];
    char *buf;
    size_t len;
    int rc = read_file(dir, "cues.tsv", &buf, &len, path, sizeof path, err);
    if (rc) return rc;
    size_t pos = 0, ls, le;
    int line = 0, n_month = 0, n_wd = 0;
    rc = CF_OK;
    while (next_line(buf, len, &pos, &ls, &le)) {
        line++;
        if (le == ls || buf[ls] == '#') continue;
        const char *tab = memchr(buf + ls, '\t', le - ls);
        if (!tab) {
            rc = cf_fail(err, CF_EINPUT, "%s:%d: expected \"kind<TAB>entry\"", path, line);
            break;
        }
        size_t kl = (size_t)(tab - (buf + ls));
        size_t k;
        deid_flags kflag = 0;
        for (k = 0; k < N_CUE_KINDS; k++)
            if (strlen(CUE_KINDS[k].kind) == kl && !memcmp(CUE_KINDS[k].kind, buf + ls, kl)) break;
        if (k < N_CUE_KINDS) kflag = CUE_KINDS[k].flag;
        else if (kl > 2 && kl < sizeof r->anchor_kinds[0] && !memcmp(buf + ls, "a_", 2)) {
            /* an anchor kind, defined by the data */
            int b;
            for (b = 0; b < r->n_anchor_kinds; b++)
                if (strlen(r->anchor_kinds[b]) == kl && !memcmp(r->anchor_kinds[b], buf + ls, kl)) break;
            if (b == r->n_anchor_kinds) {
                if (b == DEID_MAX_ANCHOR_KINDS) {
                    rc = cf_fail(err, CF_EINPUT, "%s:%d: more than %d anchor (a_*) cue kinds", path, line,
                                 DEID_MAX_ANCHOR_KINDS);
                    break;
                }
                memcpy(r->anchor_kinds[b], buf + ls, kl);
                r->anchor_kinds[b][kl] = 0;
                r->n_anchor_kinds++;
            }
            k = N_CUE_KINDS + (size_t)b;
            kflag = (deid_flags)1 << (DEID_ANCHOR_BASE + b);
        } else {
            rc = cf_fail(err, CF_EINPUT, "%s:%d: unknown cue kind", path, line);
            break;
        }
        const char *e = tab + 1;
        size_t el = (size_t)(buf + le - e);
        if (el == 0) {
            rc = cf_fail(err, CF_EINPUT, "%s:%d: empty entry", path, line);
            break;
        }
        char low[256];
        size_t ll = el < sizeof low ? deid_lower(e, el, low, sizeof low) : (size_t)-1;
        if (ll == (size_t)-1) {
            rc = cf_fail(err, CF_EINPUT, "%s:%d: entry longer than 255 bytes", path, line);
            break;
        }
        if (k < N_CUE_KINDS && !strcmp(CUE_KINDS[k].kind, "month")) {
            if (n_month >= 12 || ll >= sizeof r->month_names[0]) {
                rc = cf_fail(err, CF_EINPUT, "%s:%d: expected 12 month names", path, line);
                break;
            }
            memcpy(r->month_names[n_month++], low, ll + 1);
        }
        if (k < N_CUE_KINDS && !strcmp(CUE_KINDS[k].kind, "weekday")) {
            if (n_wd >= 7 || ll >= sizeof r->weekday_names[0]) {
                rc = cf_fail(err, CF_EINPUT, "%s:%d: expected 7 weekday names", path, line);
                break;
            }
            memcpy(r->weekday_names[n_wd++], low, ll + 1);
        }
        if (strvec_push(&raw[k], low, ll) || (kflag && add_entry(r, low, ll, kflag))) {
            rc = cf_fail(err, CF_EINTERNAL, "%s: out of memory", path);
            break;
        }
    }
    free(buf);
    if (rc) return rc;
    if (n_month != 12 || n_wd != 7)
        return cf_fail(err, CF_EINPUT, "%s: expected 12 \"month\" and 7 \"weekday\" entries", path);
    return CF_OK;
}

/* ---- patterns ---------------------------------------------------------------------------- */

typedef struct {
    char *buf;
    size_t len, cap;
} sbuf;

static int sb_add(sbuf *b, const char *s, size_t n) {
    if (b->len + n + 1 > b->cap) {
        size_t nc = b->cap ? b->cap : 256;
        while (b->len + n + 1 > nc) nc *= 2;
        char *nb = realloc(b->buf, nc);
        if (!nb) return -1;
        b->buf = nb;
        b->cap = nc;
    }
    memcpy(b->buf + b->len, s, n);
    b->len += n;
    b->buf[b->len] = 0;
    return 0;
}

static int cmp_len_desc(const void *a, const void *b) {
    size_t la = strlen(*(char *const *)a), lb = strlen(*(char *const *)b);
    if (la != lb) return la < lb ? 1 : -1;
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Appends "(?i:e1|e2|...)" for a cue kind, entries escaped, longest first. */
static int expand_kind(sbuf *out, strvec *v) {
    char **sorted = cf_malloc(v->n * sizeof *sorted);
    if (!sorted) return -1;
    memcpy(sorted, v->items, v->n * sizeof *sorted);
    qsort(sorted, v->n, sizeof *sorted, cmp_len_desc);
    int rc = sb_add(out, "(?i:", 4);
    for (size_t i = 0; i < v->n && !rc; i++) {
        if (i) rc |= sb_add(out, "|", 1);
        for (const char *p = sorted[i]; *p && !rc; p++) {
            if (strchr("\\^$.|?*+()[]{}/#- ", *p)) {
                if (*p == ' ') {
                    rc |= sb_add(out, "\\s+", 3);
                    continue;
                }
                rc |= sb_add(out, "\\", 1);
            }
            rc |= sb_add(out, p, 1);
        }
    }
    rc |= sb_add(out, ")", 1);
    free(sorted);
    return rc;
}

typedef struct {
    char name[32];
    char *body;
} macro;

/* Index into raw[] of a cue kind by name (fixed kinds, then anchor kinds), or -1. */
static int kind_index(const deid_text_rules *r, const char *nm, size_t nl) {
    for (size_t k = 0; k < N_CUE_KINDS; k++)
        if (strlen(CUE_KINDS[k].kind) == nl && !memcmp(CUE_KINDS[k].kind, nm, nl)) return (int)k;
    for (int b = 0; b < r->n_anchor_kinds; b++)
        if (strlen(r->anchor_kinds[b]) == nl && !memcmp(r->anchor_kinds[b], nm, nl)) return (int)N_CUE_KINDS + b;
    return -1;
}

/* Expands {NAME} macros and {@kind} cue lists; returns CF_OK or an error naming the line. */
static int expand(const deid_text_rules *r, const char *pat, size_t plen, macro *macros, size_t n_macros, strvec *raw,
                  sbuf *out, const char *path, int line, cf_err *err) {
    out->len = 0;
    if (sb_add(out, "", 0)) return cf_fail(err, CF_EINTERNAL, "out of memory");
    for (size_t i = 0; i < plen; i++) {
        if (pat[i] == '\\' && i + 1 < plen) {
            size_t n = 2;
            /* \x{2013}, \o{...}: the braces belong to the escape */
            if ((pat[i + 1] == 'x' || pat[i + 1] == 'o') && i + 2 < plen && pat[i + 2] == '{') {
                while (i + n < plen && pat[i + n - 1] != '}') n++;
            }
            if (sb_add(out, pat + i, n)) return cf_fail(err, CF_EINTERNAL, "out of memory");
            i += n - 1;
            continue;
        }
        if (pat[i] == '{' && i + 1 < plen && (pat[i + 1] == '@' || (pat[i + 1] >= 'A' && pat[i + 1] <= 'Z'))) {
            size_t j = i + 1;
            while (j < plen && pat[j] != '}') j++;
            if (j >= plen) return cf_fail(err, CF_EINPUT, "%s:%d: unclosed {macro}", path, line);
            const char *nm = pat + i + 1;
            size_t nl = j - i - 1;
            int done = 0;
            if (nm[0] == '@') {
                int k = kind_index(r, nm + 1, nl - 1);
                if (k >= 0) {
                    if (!raw[k].n)
                        return cf_fail(err, CF_EINPUT, "%s:%d: cue kind in {@...} has no entries", path, line);
                    if (expand_kind(out, &raw[k])) return cf_fail(err, CF_EINTERNAL, "out of memory");
                    done = 1;
                }
            } else {
                for (size_t k = 0; k < n_macros; k++)
                    if (strlen(macros[k].name) == nl && !memcmp(macros[k].name, nm, nl)) {
                        if (sb_add(out, "(?:", 3) || sb_add(out, macros[k].body, strlen(macros[k].body)) ||
                            sb_add(out, ")", 1))
                            return cf_fail(err, CF_EINTERNAL, "out of memory");
                        done = 1;
                        break;
                    }
            }
            if (!done) return cf_fail(err, CF_EINPUT, "%s:%d: unknown {macro}", path, line);
            i = j;
            continue;
        }
        if (sb_add(out, pat + i, 1)) return cf_fail(err, CF_EINTERNAL, "out of memory");
    }
    return CF_OK;
}

static int group_number(pcre2_code *re, const char *name) {
    int n = pcre2_substring_number_from_name(re, (PCRE2_SPTR)name);
    return n > 0 ? n : 0;
}

static int load_patterns(deid_text_rules *r, const char *dir, strvec *raw, cf_err *err) {
    char path[4096];
    char *buf;
    size_t len;
    int rc = read_file(dir, "patterns.tsv", &buf, &len, path, sizeof path, err);
    if (rc) return rc;
    macro *macros = NULL;
    size_t n_macros = 0, cap_pats = 0;
    sbuf ex = {0};
    size_t pos = 0, ls, le;
    int line = 0;
    while (!rc && next_line(buf, len, &pos, &ls, &le)) {
        line++;
        if (le == ls || buf[ls] == '#') continue;
        const char *l = buf + ls;
        size_t ll = le - ls;
        const char *t1 = memchr(l, '\t', ll);
        const char *t2 = t1 ? memchr(t1 + 1, '\t', (size_t)(l + ll - t1 - 1)) : NULL;
        if (!t1 || !t2) {
            rc = cf_fail(err, CF_EINPUT, "%s:%d: expected \"TYPE<TAB>FLAGS<TAB>PATTERN\"", path, line);
            break;
        }
        char f0[32] = {0};
        size_t f0l = (size_t)(t1 - l);
        if (f0l >= sizeof f0) {
            rc = cf_fail(err, CF_EINPUT, "%s:%d: type name too long", path, line);
            break;
        }
        memcpy(f0, l, f0l);
        const char *f1 = t1 + 1;
        size_t f1l = (size_t)(t2 - f1);
        const char *pat = t2 + 1;
        size_t plen = (size_t)(l + ll - pat);
        rc = expand(r, pat, plen, macros, n_macros, raw, &ex, path, line, err);
        if (rc) break;
        if (!strcmp(f0, "define")) {
            if (f1l == 0 || f1l >= sizeof macros[0].name) {
                rc = cf_fail(err, CF_EINPUT, "%s:%d: bad macro name", path, line);
                break;
            }
            macro *nm = cf_realloc_array(macros, n_macros + 1, sizeof *nm);
            if (!nm) {
                rc = cf_fail(err, CF_EINTERNAL, "out of memory");
                break;
            }
            macros = nm;
            memset(&macros[n_macros], 0, sizeof macros[n_macros]);
            memcpy(macros[n_macros].name, f1, f1l);
            macros[n_macros].body = strdup(ex.buf);
            if (!macros[n_macros].body) {
                rc = cf_fail(err, CF_EINTERNAL, "out of memory");
                break;
            }
            n_macros++;
            continue;
        }
        int type = deid_type_from_name(f0);
        if (type < 0) {
            rc = cf_fail(err, CF_EINPUT, "%s:%d: unknown PHI type", path, line);
            break;
        }
        uint32_t opts = PCRE2_UTF | PCRE2_MATCH_INVALID_UTF;
        deid_flags anchor = 0;
        int needs_digit = 0, at_numbers = 0, at_alnum = 0, at_dotted = 0;
        char required = 0;
        for (size_t k = 0; k < f1l; k++) {
            if (f1[k] == 'i') opts |= PCRE2_CASELESS;
            else if (f1[k] == 'd') needs_digit = 1;
            else if (f1[k] == 'n') at_numbers = needs_digit = 1;
            else if (f1[k] == 'w') at_alnum = needs_digit = 1;
            else if (f1[k] == 'p') at_dotted = 1;
            else if (f1[k] == '=' && k + 1 < f1l) required = f1[++k];
            else if (f1[k] == '@') {
                size_t q = k + 1;
                while (q < f1l && f1[q] != '@') q++;
                int ki = kind_index(r, f1 + k + 1, q - k - 1);
                if (ki < (int)N_CUE_KINDS) {
                    rc = cf_fail(err, CF_EINPUT, "%s:%d: @kind must name an a_* kind of cues.tsv", path, line);
                    break;
                }
                anchor |= (deid_flags)1 << (DEID_ANCHOR_BASE + (ki - (int)N_CUE_KINDS));
                k = q - 1;
            } else if (f1[k] != '-') {
                rc = cf_fail(err, CF_EINPUT, "%s:%d: unknown flag (use -, i, d, n, w, p, =X or @a_kind)", path, line);
                break;
            }
        }
        if (rc) break;
        /* anchored patterns are compiled anchored: JIT does not take PCRE2_ANCHORED at match time */
        if (anchor || at_numbers || at_alnum || at_dotted) opts |= PCRE2_ANCHORED;
        int ecode;
        PCRE2_SIZE eoff;
        pcre2_code *re = pcre2_compile((PCRE2_SPTR)ex.buf, ex.len, opts, &ecode, &eoff, NULL);
        if (!re) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(ecode, msg, sizeof msg);
            rc = cf_fail(err, CF_EINPUT, "%s:%d: pattern does not compile (%s at offset %zu of the expanded pattern)",
                         path, line, (char *)msg, (size_t)eoff);
            break;
        }
        /* JIT is an optimisation: if unavailable the interpreter gives the same results. */
        (void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
        if (r->n_pats == cap_pats) {
            size_t nc = cap_pats ? cap_pats * 2 : 64;
            deid_pattern *np = cf_realloc_array(r->pats, nc, sizeof *np);
            if (!np) {
                pcre2_code_free(re);
                rc = cf_fail(err, CF_EINTERNAL, "out of memory");
                break;
            }
            r->pats = np;
            cap_pats = nc;
        }
        deid_pattern *p = &r->pats[r->n_pats++];
        memset(p, 0, sizeof *p);
        p->type = type;
        p->re = re;
        p->line = line;
        p->key = (uint32_t)strmap_hash(pat, plen);
        p->g_phi = group_number(re, "phi");
        p->g_y = group_number(re, "y");
        p->g_m = group_number(re, "m");
        p->g_d = group_number(re, "d");
        p->g_mon = group_number(re, "mon");
        p->g_wd = group_number(re, "wd");
        uint32_t ngroups = 0;
        pcre2_pattern_info(re, PCRE2_INFO_CAPTURECOUNT, &ngroups);
        if (ngroups + 1 > r->max_groups) r->max_groups = ngroups + 1;
        p->anchor = anchor;
        p->needs_digit = needs_digit;
        p->at_numbers = at_numbers;
        p->at_alnum = at_alnum;
        p->at_dotted = at_dotted;
        p->required = required;
    }
    for (size_t k = 0; k < n_macros; k++) free(macros[k].body);
    free(macros);
    free(ex.buf);
    free(buf);
    return rc;
}

/* ---- surrogate pools --------------------------------------------------------------------- */

static int plain_word(const char *s, size_t len) {
    if (len < 3 || len > 10) return 0;
    for (size_t i = 0; i < len; i++)
        if (s[i] < 'a' || s[i] > 'z') return 0;
    return 1;
}

static int build_pools(deid_text_rules *r, cf_err *err) {
    uint32_t n = r->words.count;
    r->pool_first = cf_malloc(n * sizeof *r->pool_first);
    r->pool_last = cf_malloc(n * sizeof *r->pool_last);
    r->pool_place = cf_malloc(n * sizeof *r->pool_place);
    if (!r->pool_first || !r->pool_last || !r->pool_place)
        return cf_fail(err, CF_EINTERNAL, "out of memory building surrogate pools");
    const deid_flags bad = F_ENGLISH | F_MEDICAL | F_STOP | F_NOT_NAME | F_TITLE | F_REGION |
                         F_NAME_BEFORE | F_NAME_WEAK | F_STREET | F_UNIT | F_ORG_AFTER;
    for (uint32_t id = 0; id < n; id++) {
        size_t len;
        const char *s = strmap_str(&r->words, id, &len);
        deid_flags f = r->wflags[id];
        if (!plain_word(s, len) || (f & bad)) continue;
        if ((f & F_FIRST) && !(f & (F_LAST | F_PLACE))) r->pool_first[r->n_pool_first++] = id;
        if ((f & F_LAST) && !(f & (F_FIRST | F_PLACE))) r->pool_last[r->n_pool_last++] = id;
        if ((f & F_PLACE) && !(f & (F_FIRST | F_LAST))) r->pool_place[r->n_pool_place++] = id;
    }
    if (!r->n_pool_first || !r->n_pool_last || !r->n_pool_place)
        return cf_fail(err, CF_EINPUT, "rules: name and place lists give no usable surrogates");
    return CF_OK;
}

/* ---- load / free ------------------------------------------------------------------------- */

int deid_rules_load(deid_text_rules **out, const char *rules_dir, cf_err *err) {
    *out = NULL;
    if (!rules_dir || !*rules_dir) return cf_fail(err, CF_EINPUT, "no de-identification rules folder given");
    deid_text_rules *r = cf_calloc(1, sizeof *r);
    if (!r) return cf_fail(err, CF_EINTERNAL, "out of memory");
    strmap_init(&r->words);
    strmap_init(&r->phrases);
    strmap_init(&r->keep_post);
    strmap_init(&r->keep_extra);
    strmap_init(&r->keep_roles);
    strmap_init(&r->keep_verbs);
    strmap_init(&r->scores);
    for (int k = 0; k < DEID_SLOT_KINDS; k++) strmap_init(&r->slots[k]);
    strvec raw[N_CUE_KINDS + 32];
    memset(raw, 0, sizeof raw);
    int rc = CF_OK;
    for (size_t i = 0; i < sizeof LIST_FILES / sizeof LIST_FILES[0] && !rc; i++)
        rc = load_list(r, rules_dir, &LIST_FILES[i], err);
    if (!rc) rc = load_keep_extra(r, rules_dir, err);
    if (!rc) rc = load_post_list(rules_dir, "clinical_keep_post.txt", &r->keep_post, &r->keep_post_max_words, err);
    if (!rc) rc = load_post_list(rules_dir, "keep_roles.txt", &r->keep_roles, &r->keep_roles_max_words, err);
    if (!rc) rc = load_post_list(rules_dir, "keep_name_verbs.txt", &r->keep_verbs, &r->keep_verbs_max_words, err);
    if (!rc) rc = load_post_list(rules_dir, "scores.txt", &r->scores, &r->scores_max_words, err);
    if (!rc) rc = load_slots(rules_dir, r, err);
    if (!rc) rc = load_cues(r, rules_dir, raw, err);
    if (!rc) rc = load_patterns(r, rules_dir, raw, err);
    if (!rc) {
        for (size_t k = 0; k < N_CUE_KINDS; k++) {
            if (!strcmp(CUE_KINDS[k].kind, "med_prefix") || !strcmp(CUE_KINDS[k].kind, "med_suffix")) {
                int pre = CUE_KINDS[k].kind[4] == 'p';
                if (pre) {
                    r->med_prefixes = raw[k].items;
                    r->n_med_prefixes = raw[k].n;
                } else {
                    r->med_suffixes = raw[k].items;
                    r->n_med_suffixes = raw[k].n;
                }
                memset(&raw[k], 0, sizeof raw[k]);
            }
            if (!strcmp(CUE_KINDS[k].kind, "street_ending")) {
                r->street_endings = raw[k].items;
                r->n_street_endings = raw[k].n;
                memset(&raw[k], 0, sizeof raw[k]);
                r->street_ending_len = cf_malloc((r->n_street_endings + 1) * sizeof *r->street_ending_len);
                if (!r->street_ending_len) rc = cf_fail(err, CF_EINTERNAL, "out of memory");
                for (size_t q = 0; !rc && q < r->n_street_endings; q++)
                    r->street_ending_len[q] = strlen(r->street_endings[q]);
            }
        }
        /* anchor kinds the token rules read too (absent from a rules folder: no bit) */
        for (int b = 0; b < r->n_anchor_kinds; b++) {
            if (!strcmp(r->anchor_kinds[b], "a_verb_after_name")) r->verb_after_name = (deid_flags)1 << (DEID_ANCHOR_BASE + b);
            if (!strcmp(r->anchor_kinds[b], "a_phone")) r->phone_cue = (deid_flags)1 << (DEID_ANCHOR_BASE + b);
            if (!strcmp(r->anchor_kinds[b], "a_vent")) r->vent_cue = (deid_flags)1 << (DEID_ANCHOR_BASE + b);
        }
        if (!rc) rc = build_pools(r, err);
        if (!rc && (build_index(&r->wix, &r->words, r->wflags) || build_index(&r->pix, &r->phrases, r->pflags)))
            rc = cf_fail(err, CF_EINTERNAL, "out of memory indexing word lists");
        /* the model, and since round 31 an optional second one for notes dense with clinical
           keep-list words, which needs the first beside it */
        char mpath[4096];
        if (!rc) {
            snprintf(mpath, sizeof mpath, "%s/model.tsv", rules_dir);
            rc = deid_model_load(&r->model, mpath, err);
        }
        if (!rc) {
            snprintf(mpath, sizeof mpath, "%s/model_dense.tsv", rules_dir);
            rc = deid_model_load(&r->model_dense, mpath, err);
            if (!rc && r->model_dense && !r->model)
                rc = cf_fail(err, CF_EINPUT, "%s: a dense-notes model needs the folder's model.tsv beside it", mpath);
        }
    }
    for (size_t k = 0; k < N_CUE_KINDS + 32; k++) strvec_free(&raw[k]);
    if (rc) {
        deid_rules_free(r);
        return rc;
    }
    static atomic_uint_fast64_t serials;
    r->serial = atomic_fetch_add(&serials, 1) + 1;
    *out = r;
    return CF_OK;
}

void deid_rules_free(deid_text_rules *r) {
    if (!r) return;
    deid_model_free(r->model);
    deid_model_free(r->model_dense);
    strmap_free(&r->words);
    strmap_free(&r->phrases);
    strmap_free(&r->keep_extra);
    strmap_free(&r->keep_post);
    strmap_free(&r->keep_roles);
    strmap_free(&r->keep_verbs);
    strmap_free(&r->scores);
    for (int k = 0; k < DEID_SLOT_KINDS; k++) strmap_free(&r->slots[k]);
    free(r->wflags);
    free(r->pflags);
    free(r->wix.slots);
    free(r->pix.slots);
    for (size_t i = 0; i < r->n_pats; i++) pcre2_code_free(r->pats[i].re);
    free(r->pats);
    for (size_t i = 0; i < r->n_street_endings; i++) free(r->street_endings[i]);
    free(r->street_endings);
    free(r->street_ending_len);
    for (size_t i = 0; i < r->n_med_prefixes; i++) free(r->med_prefixes[i]);
    free(r->med_prefixes);
    for (size_t i = 0; i < r->n_med_suffixes; i++) free(r->med_suffixes[i]);
    free(r->med_suffixes);
    free(r->pool_first);
    free(r->pool_last);
    free(r->pool_place);
    free(r);
}
