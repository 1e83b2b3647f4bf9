/* The features of the de-identifier's fitted model: what each word of a note shows, each piece of
 * evidence one feature, scored on its own by a fitted weight per label (model.c holds the CRF that
 * sums them, decode.c what is done with its answer):
 *   - the word: its shape as written and after re-casing, its length, its lexical classes (given
 *     or family name, place, region, common English, medical, the clinical keep-list, stop and
 *     cue words), a one-letter summary of them, its lower-cased form when it is a common,
 *     clinical or cue word (never when it is only a name: names must be learned from what
 *     surrounds them, so that unlisted names are found too), prefix and suffix for unlisted words;
 *   - the context window: the same for the two words before and after, the punctuation between
 *     them (a comma, a slash, a colon, a newline, nothing at all);
 *   - numbers: digit count, range (a month, a day, a year), the separators around them;
 *   - the note: all-caps, all-lower-case or mixed; the section heading in force ("Social:",
 *     "Neuro:"); how dense the clinical keep-list is in the note (nursing shorthand);
 *   - the patterns (patterns.tsv): each PHI type whose pattern covers the word, and each pattern
 *     by its own key; the record's known strings (deid_known); the rule detectors' label;
 *   - a few conjunctions (rule label x word class, pattern type x the word before, shape x
 *     class), so that "NEO" read as a name by the rules and listed as a drip can be weighed.
 * The weights are fitted by deid-train (model_train.c); the file is data (data/deid/model.tsv). */
#include "deid/model_int.h"
#include <ctype.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include "util/atomic_file.h"

/* ---- per-word evidence from spans -------------------------------------------------------- */

typedef struct {
    uint16_t pat, pat_begin, rule, known; /* type bit masks */
    uint32_t keys[3];                     /* pattern keys covering the word */
    uint8_t nkeys;
} tokev;

/* Marks, for each span, the words it overlaps. */
static void span_evidence(const ctx *c, tokev *ev) {
    memset(ev, 0, c->nt * sizeof *ev);
    for (size_t k = 0; k < c->spans.n; k++) {
        const deid_span *sp = &c->spans.v[k];
        uint32_t tag = c->spans.tag[k];
        int src = (int)(tag >> 16);
        size_t lo = deid__first_word_ending_after(c, sp->start);
        for (size_t i = lo; i < c->nt && c->t[i].s < sp->end; i++) {
            uint16_t bit = (uint16_t)(1u << sp->type);
            if (src == DEID_SRC_PATTERN) {
                ev[i].pat |= bit;
                if (c->t[i].s >= sp->start && (i == lo)) ev[i].pat_begin |= bit;
                const deid_pattern *p = &c->r->pats[tag & 0xFFFF];
                int dup = 0;
                for (int q = 0; q < ev[i].nkeys; q++) dup |= ev[i].keys[q] == p->key;
                if (!dup && ev[i].nkeys < 3) ev[i].keys[ev[i].nkeys++] = p->key;
            } else if (src == DEID_SRC_KNOWN) {
                ev[i].known |= bit;
            } else {
                ev[i].rule |= bit;
            }
        }
    }
    for (size_t i = 0; i < c->nt; i++) {
        if (c->t[i].lab >= 0) ev[i].rule |= (uint16_t)(1u << c->t[i].lab);
        if (c->t[i].known >= 0) ev[i].known |= (uint16_t)(1u << c->t[i].known);
    }
}

/* The steps of the hash, shared by deid__feature_hash (a whole name) and feature_hash2 (a name
 * given as template and value, never written out), so that the two agree bit for bit. Chunks are
 * read little-endian on every host (the two read them differently: memcpy, byte packing). */
static inline uint64_t fh_seed(size_t n) { return 0x9E3779B97F4A7C15ULL ^ (n * 0xC2B2AE3D27D4EB4FULL); }
static inline uint64_t fh_chunk(uint64_t h, uint64_t v) {
    h = (h ^ v) * 0xFF51AFD7ED558CCDULL;
    return h ^ (h >> 32);
}
static inline uint64_t fh_tail(uint64_t h, uint64_t v) { return (h ^ v) * 0xFF51AFD7ED558CCDULL; }
static inline uint64_t fh_final(uint64_t h) {
    h ^= h >> 33;
    h *= 0xC4CEB9FE1A85EC53ULL;
    h ^= h >> 29;
    return h;
}
static inline uint64_t fh_load8(const char *s) {
    uint64_t v;
    memcpy(&v, s, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    return v;
}
/* Up to 8 bytes as a little-endian word, byte by byte: a memcpy of a variable length here went
 * through the library and stalled the load that followed it. */
static inline uint64_t fh_pack(const char *s, size_t n) {
    uint64_t v = 0;
    for (size_t k = n; k-- > 0;) v = v << 8 | (unsigned char)s[k];
    return v;
}

uint64_t deid__feature_hash(const char *s, size_t n) {
    uint64_t h = fh_seed(n);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) h = fh_chunk(h, fh_load8(s + i));
    if (i < n) h = fh_tail(h, fh_pack(s + i, n - i));
    return fh_final(h);
}

/* deid__feature_hash of the name tpl + v (tl <= 8), read from its two parts: at inference a
 * feature is only ever hashed, and copying template and value into one buffer and reading them
 * back as words cost more than the hash (the wide load waited on the narrow stores). Names of
 * more than 8 bytes (a word, a pattern key) go out of line. */
static uint64_t feature_hash2_long(const char *tpl, size_t tl, const char *v, size_t vl) {
    size_t n = tl + vl;
    uint64_t h = fh_seed(n);
    /* the first chunk: the template, then the value's first 8 - tl bytes */
    h = fh_chunk(h, fh_pack(tpl, tl) | (tl < 8 ? fh_pack(v, 8 - tl) << (8 * tl) : 0));
    size_t off = 8 - tl, rem = n - 8;
    /* fh_pack, not fh_load8: the compiler merges the eight byte loads into one, and cannot take
       the loop for a read past a short value (pk='s 12 bytes; -Warray-bounds) */
    for (; rem >= 8; off += 8, rem -= 8) h = fh_chunk(h, fh_pack(v + off, 8));
    if (rem) h = fh_tail(h, fh_pack(v + off, rem));
    return fh_final(h);
}

/* Inlined where the template is a literal, so a short name's one word is mostly constants. */
static inline __attribute__((always_inline)) uint64_t feature_hash2(const char *tpl, size_t tl, const char *v,
                                                                    size_t vl) {
    size_t n = tl + vl;
    if (n > 8) return feature_hash2_long(tpl, tl, v, vl);
    uint64_t w = fh_pack(tpl, tl) | (vl ? fh_pack(v, vl) << (8 * tl) : 0), h = fh_seed(n);
    if (n == 0) return fh_final(h);
    return fh_final(n < 8 ? fh_tail(h, w) : fh_chunk(h, w));
}

uint64_t deid__feature_hash_parts(const char *tpl, size_t tl, const char *v, size_t vl) {
    return feature_hash2(tpl, tl, v, vl);
}

/* ---- feature strings --------------------------------------------------------------------- */

static const char SHAPE_CH[] = "?lCUI9an";

static char shape_ch(uint8_t sh) { return sh < sizeof SHAPE_CH - 1 ? SHAPE_CH[sh] : '?'; }

/* One letter for what the lists say a word is. */
static char lexclass(const tok *t) {
    deid_flags f = t->f;
    if (f & F_KEEP) return 'k';
    if (t->shape0 == SH_NUM) return '#';
    if (t->shape0 == SH_ALNUM) return 'a';
    if (f & (F_STOP | F_TITLE | F_NAME_BEFORE | F_NAME_AFTER | F_PLACE_BEFORE | F_ORG_BEFORE | F_MONTH | F_WEEKDAY |
             F_MEASURE | F_UNIT | F_STREET | F_ORG_AFTER))
        return 'c';
    deid_flags nm = f & (F_FIRST | F_LAST), pl = f & (F_PLACE | F_REGION);
    deid_flags com = f & (F_ENGLISH | F_MEDICAL | F_NOT_NAME | F_NAME_WEAK | F_PLACE_WEAK);
    if (nm && !com) return 'N';
    if (pl && !com) return 'P';
    if ((nm || pl) && com) return 'W';
    if (com) return (f & F_MEDICAL) ? 'm' : 'e';
    if (t->oov) return 'O';
    return 'x';
}

/* The punctuation between word i-1 and word i, as one character: 'n' a newline, ' ' spaces,
 * '0' nothing (glued), else the first punctuation character ('/', ',', ':', '.', '-', '(' ...). */
static char gap_ch(const ctx *c, size_t i) {
    if (i == 0 || i >= c->nt) return 'n';
    size_t a = c->t[i - 1].e, b = c->t[i].s;
    if (a == b) return '0';
    char first = 0;
    for (size_t k = a; k < b; k++) {
        char ch = c->text[k];
        if (ch == '\n') return 'n';
        if (ch == ' ' || ch == '\t' || ch == '\r') continue;
        if (!first) first = (unsigned char)ch < 0x80 ? ch : 'u';
    }
    return first ? first : ' ';
}

/* What the features read of each word, computed once per note: its letter class, the gap
 * before it, and its lower-cased form (wl 0 when longer than w holds). */
typedef struct {
    char lc, gl;
    uint8_t wl;
    char w[29];
} wcache;

/* At inference a feature's lookup is a cache miss more often than not (the machine is shared
 * and the index and its filter are hundreds of kilobytes): emit() hashes the feature and
 * prefetches its filter word, and the lookups of a word's features are resolved together
 * (femit_flush), in the order emitted, so that the misses overlap instead of following one
 * another. */
#define FEMIT_PENDING 64

typedef struct {
    deid_model *m;
    int intern;
    deid_featbuf *fb;
    const wcache *wc;
    int hashed; /* inference with the index: a feature is only hashed, never written out */
    char buf[96];
    size_t bl;
    uint64_t pend[FEMIT_PENDING]; /* hashes of features emitted and not yet looked up */
    size_t npend;
} femit;

/* Room for more ids in fb; 0, or -1 with fb->oom set (or already set). */
static int fb_reserve(deid_featbuf *fb, size_t more) {
    if (fb->oom) return -1;
    if (fb->n + more > fb->cap) {
        size_t nc = fb->cap ? fb->cap * 2 : 1024;
        while (nc < fb->n + more) nc *= 2;
        uint32_t *ni = cf_realloc_array(fb->ids, nc, sizeof *ni);
        if (!ni) {
            fb->oom = 1;
            return -1;
        }
        fb->ids = ni;
        fb->cap = nc;
    }
    return 0;
}

static void fb_push(femit *e, uint32_t id) {
    if (!fb_reserve(e->fb, 1)) e->fb->ids[e->fb->n++] = id;
}

/* Looks the pending hashes up, in order, and records the ids of the features the model has. */
static void femit_flush(femit *e) {
    const deid_model *m = e->m;
    /* first the filter (model_int.h), prefetching the index slots of the features it passes */
    size_t n = 0;
    for (size_t k = 0; k < e->npend; k++) {
        uint64_t h = e->pend[k];
        size_t b = (h >> 33) & m->have_mask;
        if (!(m->have[b >> 6] >> (b & 63) & 1)) continue; /* not in the model */
        __builtin_prefetch(&m->ix[h & m->ix_mask]);
        e->pend[n++] = h;
    }
    e->npend = 0;
    /* room for every id that passed, so the loop below stores without a test */
    deid_featbuf *fb = e->fb;
    if (fb_reserve(fb, n)) return;
    for (size_t k = 0; k < n; k++) {
        uint64_t h = e->pend[k];
        uint64_t tag = (h >> 32) | 1;
        size_t j = h & m->ix_mask;
        for (;;) {
            uint64_t v = m->ix[j];
            if (!v) break;
            if ((v >> 32) == tag) {
                fb->ids[fb->n++] = (uint32_t)v;
                break;
            }
            j = (j + 1) & m->ix_mask;
        }
    }
}

/* Queues the feature of hash h for femit_flush, prefetching its filter word. */
static inline void emit_hash(femit *e, uint64_t h) {
    const deid_model *m = e->m;
    size_t b = (h >> 33) & m->have_mask;
    __builtin_prefetch(&m->have[b >> 6]);
    if (e->npend == FEMIT_PENDING) femit_flush(e);
    e->pend[e->npend++] = h;
}

/* Looks the feature in e->buf up (or adds it when training) and records its id; with the
 * index, the lookup waits in e->pend until femit_flush. */
static void emit(femit *e) {
    deid_model *m = e->m;
    int64_t id;
    if (e->intern) {
        id = strmap_intern(&m->feats, e->buf, e->bl);
        if (id < 0) {
            e->fb->oom = 1;
            return;
        }
        if ((uint32_t)id >= m->cap) {
            uint32_t nc = m->cap ? m->cap * 2 : 65536;
            while (nc <= (uint32_t)id) nc *= 2;
            float *nw = cf_realloc_array(m->w, (size_t)nc * DEID_NL, sizeof *nw);
            if (!nw) {
                e->fb->oom = 1;
                return;
            }
            memset(nw + (size_t)m->cap * DEID_NL, 0, (size_t)(nc - m->cap) * DEID_NL * sizeof *nw);
            m->w = nw;
            m->cap = nc;
        }
    } else if (m->ix) {
        emit_hash(e, deid__feature_hash(e->buf, e->bl));
        return;
    } else {
        id = strmap_find(&m->feats, e->buf, e->bl);
        if (id < 0) return;
    }
    fb_push(e, (uint32_t)id);
}

/* Feature "tpl" + value bytes. Always inlined: tpl is a literal at nearly every call, so its
 * length and its bytes in the hash's first word are constants. */
static inline __attribute__((always_inline)) void f_str(femit *e, const char *tpl, const char *v, size_t vl) {
    size_t tl = strlen(tpl);
    if (tl + vl >= sizeof e->buf) vl = sizeof e->buf - 1 - tl;
    if (e->hashed && tl <= 8) {
        emit_hash(e, feature_hash2(tpl, tl, v, vl));
        return;
    }
    memcpy(e->buf, tpl, tl);
    memcpy(e->buf + tl, v, vl);
    e->bl = tl + vl;
    emit(e);
}

static inline __attribute__((always_inline)) void f_ch(femit *e, const char *tpl, char a) { f_str(e, tpl, &a, 1); }
static inline __attribute__((always_inline)) void f_ch2(femit *e, const char *tpl, char a, char b) {
    char v[2] = {a, b};
    f_str(e, tpl, v, 2);
}
static inline __attribute__((always_inline)) void f_ch3(femit *e, const char *tpl, char a, char b, char d) {
    char v[3] = {a, b, d};
    f_str(e, tpl, v, 3);
}

/* Names of the word classes, for the per-class features. */
static const struct {
    deid_flags f;
    const char *name;
} CLASS_NAMES[] = {
    {F_FIRST, "fn"},        {F_LAST, "ln"},        {F_PLACE, "pl"},         {F_REGION, "rg"},
    {F_ENGLISH, "en"},      {F_MEDICAL, "md"},     {F_KEEP, "kp"},          {F_STOP, "st"},
    {F_TITLE, "ti"},        {F_NAME_BEFORE, "nb"}, {F_NAME_WEAK, "nw"},     {F_NAME_AFTER, "na"},
    {F_PLACE_BEFORE, "pb"}, {F_PLACE_WEAK, "pw"},  {F_ORG_BEFORE, "ob"},    {F_ORG_AFTER, "oa"},
    {F_STREET, "sr"},       {F_UNIT, "un"},        {F_MONTH, "mo"},         {F_WEEKDAY, "wd"},
    {F_NOT_NAME, "nn"},     {F_KIN, "ki"},         {F_MEASURE, "me"},       {F_STATE_ABBR, "sa"},
    {F_PLACE_WORD, "pwd"},  {F_EPONYM, "ep"},      {F_DRUG_BEFORE, "db"},   {F_PARTICLE, "pa"},
    {F_ADDR_BEFORE, "ab"},  {F_NAME_IS, "ni"},
};
#define N_CLASS_NAMES (sizeof CLASS_NAMES / sizeof CLASS_NAMES[0])
/* Cue classes read from the neighbours. */
static const deid_flags CUE_MASK = F_TITLE | F_NAME_BEFORE | F_NAME_WEAK | F_NAME_AFTER | F_PLACE_BEFORE |
                                   F_PLACE_WEAK | F_ORG_BEFORE | F_ORG_AFTER | F_KIN | F_MONTH | F_WEEKDAY |
                                   F_MEASURE | F_UNIT | F_STREET | F_ADDR_BEFORE | F_NAME_IS | F_STATE_ABBR |
                                   F_KEEP | F_EPONYM | F_DRUG_BEFORE;

static const char TYPE_CH[] = "eui$mdifpavzolN"; /* one letter per PHI type, in text.h order */

static char types_ch(uint16_t mask) {
    /* the first type of a mask (masks rarely hold two) */
    mask &= (1u << DEID_N_TYPES) - 1;
    return mask ? TYPE_CH[__builtin_ctz(mask)] : '-';
}

/* The lower-cased word, at most cap-1 bytes; 0 when it does not fit. */
static size_t low_word(const ctx *c, size_t i, char *out, size_t cap) {
    size_t n = c->t[i].e - c->t[i].s;
    if (n >= cap) return 0;
    size_t ll = deid_lower(c->text + c->t[i].s, n, out, cap);
    return ll == (size_t)-1 ? 0 : ll;
}

static int ascii_word(const char *w, size_t n) {
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)w[i] >= 0x80) return 0;
    return 1;
}

/* Is a word's identity a feature? Only for common, clinical and cue words: a word that is only a
 * name, or in no list, is known to the model by its class and shape alone. */
static int identity_ok(char lc) { return lc == 'k' || lc == 'c' || lc == 'e' || lc == 'm' || lc == 'W'; }

static void neighbour(femit *e, const ctx *c, size_t i, int off, const char *tw, const char *tc, const char *ts) {
    long j = (long)i + off;
    if (j < 0 || (size_t)j >= c->nt) {
        f_str(e, tw, "<>", 2);
        return;
    }
    const tok *u = &c->t[j];
    const wcache *wj = &e->wc[j];
    char lc = wj->lc;
    if (identity_ok(lc) && wj->wl) f_str(e, tw, wj->w, wj->wl);
    else f_ch(e, tw, lc);
    if (tc) {
        deid_flags f = (off < 0 ? u->cue_end : u->start) & CUE_MASK;
        /* a state code is written in capitals: a lower-case "on", "in", "me" that is also a
           common word is the word ("up to 2 pillows. on 2 l nc" has no Ontario in it) */
        if (u->shape0 != SH_UPPER && (u->f & (F_STOP | F_ENGLISH))) f &= ~(deid_flags)F_STATE_ABBR;
        /* every cue class has a name: the walk ends with f's last class, not the table's */
        for (size_t k = 0; f && k < N_CLASS_NAMES; k++)
            if (f & CLASS_NAMES[k].f) {
                f &= ~CLASS_NAMES[k].f;
                f_str(e, tc, CLASS_NAMES[k].name, strlen(CLASS_NAMES[k].name));
            }
    }
    if (ts) f_ch2(e, ts, shape_ch(u->shape0), lc);
}

/* Appends word j's identity (a common, clinical or cue word) or its class letter ('<' or '>'
 * outside the note) to buf; returns the new length. */
static size_t put_word(const femit *e, const ctx *c, long j, char *buf, size_t bl, size_t cap) {
    if (j < 0 || (size_t)j >= c->nt) {
        if (bl < cap) buf[bl++] = j < 0 ? '<' : '>';
        return bl;
    }
    const wcache *wj = &e->wc[j];
    if (identity_ok(wj->lc) && wj->wl && bl + wj->wl <= cap) {
        memcpy(buf + bl, wj->w, wj->wl);
        return bl + wj->wl;
    }
    if (bl < cap) buf[bl++] = wj->lc;
    return bl;
}

#define OC_CLASS(lc) ((lc) == 'W' || (lc) == 'e' || (lc) == 'N' || (lc) == 'P' || (lc) == 'O' || (lc) == 'x')
/* The context features of a word in a one-case note, each with the word's class letter: the
 * word before, the word after, both together, the two words after ("birch hollow nursing"), and
 * the cue classes ending just before. */
static void one_case_context(femit *e, const ctx *c, size_t i, char lc) {
    char b[72];
    size_t n;
    b[0] = lc;
    b[1] = '|';
    n = put_word(e, c, (long)i - 1, b, 2, sizeof b);
    f_str(e, "o-1=", b, n);
    n = put_word(e, c, (long)i + 1, b, 2, sizeof b);
    f_str(e, "o+1=", b, n);
    n = put_word(e, c, (long)i - 1, b, 2, 34);
    b[n++] = '_';
    n = put_word(e, c, (long)i + 1, b, n, sizeof b);
    f_str(e, "o11=", b, n);
    n = put_word(e, c, (long)i + 1, b, 2, 34);
    b[n++] = '_';
    n = put_word(e, c, (long)i + 2, b, n, sizeof b);
    f_str(e, "o+2=", b, n);
    if (i > 0) {
        deid_flags f = c->t[i - 1].cue_end & CUE_MASK;
        for (size_t k = 0; f && k < N_CLASS_NAMES; k++)
            if (f & CLASS_NAMES[k].f) {
                f &= ~CLASS_NAMES[k].f;
                size_t nl = strlen(CLASS_NAMES[k].name);
                memcpy(b + 2, CLASS_NAMES[k].name, nl);
                f_str(e, "oc-1=", b, 2 + nl);
            }
    }
}

/* The value of a number word of at most 9 digits, else -1. */
long deid__num_value(const ctx *c, size_t i) {
    const tok *t = &c->t[i];
    return t->e - t->s > 9 ? -1 : deid__digits_value(c->text + t->s, t->e - t->s);
}

/* Word i, a number, is a four-digit clock time: hours under 24, minutes under 60 ("at 1500",
 * "1105 X aware": such a time opens an event line and says nothing clinical of the word after). */
int deid__clock_time(const ctx *c, size_t i) {
    if (c->t[i].shape0 != SH_NUM || c->t[i].e - c->t[i].s != 4) return 0;
    long v = deid__num_value(c, i);
    return v / 100 < 24 && v % 100 < 60;
}

/* Word i (a number) has four digits and lies from 1900 to 2099: shaped like a year. */
int deid__year_shaped(const ctx *c, size_t i) {
    if (c->t[i].e - c->t[i].s != 4) return 0;
    long v = deid__num_value(c, i);
    return v >= 1900 && v <= 2099;
}

/* Can the chain of numbers joined by '/' around word i ("3/7", "4/09", "3/7/21", "2020/03/05") be
 * read as a date at all: month/day or day/month, then a year of two or four digits, month/year,
 * or year/month/day? "PA
 * 44/21", "500/15/8/60" and "7.39/34" cannot (no month). Words outside such a chain: yes. */
int deid__slash_date_possible(const ctx *c, size_t i) {
    size_t a = i, z = i;
    while (a > 0 && c->t[a - 1].shape0 == SH_NUM && c->t[a].s == c->t[a - 1].e + 1 && c->text[c->t[a].s - 1] == '/') a--;
    while (z + 1 < c->nt && c->t[z + 1].shape0 == SH_NUM && c->t[z + 1].s == c->t[z].e + 1 && c->text[c->t[z].e] == '/') z++;
    if (a == z) return 1;
    if (z - a > 2) return 0;
    for (size_t q = a; q <= z; q++)
        if (c->t[q].shape0 != SH_NUM) return 1;
    /* a '.' glued before or after the chain makes it a decimal ("7.39/34"): no date */
    if ((c->t[a].s > 0 && c->text[c->t[a].s - 1] == '.' && c->t[a].s > 1 && c->text[c->t[a].s - 2] >= '0' &&
         c->text[c->t[a].s - 2] <= '9') ||
        (c->t[z].e + 1 < c->len && c->text[c->t[z].e] == '.' && c->text[c->t[z].e + 1] >= '0' && c->text[c->t[z].e + 1] <= '9'))
        return 0;
    long x = deid__num_value(c, a), y = deid__num_value(c, a + 1);
    size_t xl = c->t[a].e - c->t[a].s, yl = c->t[a + 1].e - c->t[a + 1].s;
    if (xl == 4) return y >= 1 && y <= 12 && (z == a + 1 || (deid__num_value(c, z) >= 1 && deid__num_value(c, z) <= 31)); /* "2020/03/05" */
    int md = (x >= 1 && x <= 12 && y >= 1 && y <= 31) || (x >= 1 && x <= 31 && y >= 1 && y <= 12);
    if (z == a + 1) return md || (x >= 1 && x <= 12 && (yl == 2 || yl == 4)); /* "4/09", "03/2020" */
    size_t zl = c->t[z].e - c->t[z].s;
    return md && (zl == 2 || zl == 4);
}

static char num_range(const ctx *c, size_t i) {
    const tok *t = &c->t[i];
    size_t n = t->e - t->s;
    if (n > 4) return 'L';
    int v = 0;
    for (size_t k = t->s; k < t->e; k++) v = v * 10 + (c->text[k] - '0');
    if (n == 4) return (v >= 1900 && v <= 2199) ? 'Y' : 'F';
    if (v == 0) return 'z';
    if (v <= 12) return 'm';
    if (v <= 31) return 'd';
    if (v <= 99) return 't';
    return 'h';
}

/* A kind of word for the cache: its class bits and its packed shape, class letter, length. */
typedef struct {
    deid_flags f;
    uint64_t small;
} wkey;

/* The cache slot of a kind of word (L floats, then a "filled" mark); NULL when the cache is full
 * along the probe (the caller then emits the features as ids). */
static float *cache_slot(float *cache, wkey *keys, size_t mask, const wkey *k) {
    uint64_t h = (k->f ^ (k->small * 0x9E3779B97F4A7C15ULL)) * 0xFF51AFD7ED558CCDULL;
    h ^= h >> 29;
    size_t j = h & mask;
    for (size_t probes = 0; probes < 8; probes++, j = (j + 1) & mask) {
        float *s = cache + j * (DEID_NL + 1);
        wkey *kk = &keys[j];
        if (s[DEID_NL] == 0) {
            *kk = *k;
            return s;
        }
        if (kk->f == k->f && kk->small == k->small) return s;
    }
    return NULL;
}

/* The per-kind-of-word cache of a loaded model, kept by each thread from note to note: a note
 * of 200 words met most of its kinds for the first time when the cache lived one note, and
 * summing their rows again (cache misses on the weights) was a tenth of the time. Per thread,
 * as deid_text_rules are shared read-only by threads (text.h); keyed by the model's serial and
 * the rules' (a kind is its word flags, whose bits name another folder's lists and cues), so
 * another model or rules folder (or one loaded where a freed one was) starts it empty. A model's weights do
 * not change once loaded (model_int.h), so a kind's sum is the same in every note, and the
 * note's case and keep density, which the per-note cache left out of its key, are in it. */
enum { KIND_SLOTS = 4096 };
typedef struct {
    uint64_t serial, rules_serial; /* the model's and the rules'; 0 before the first note */
    size_t used;     /* kinds held: emptied at half full, so that probes stay short */
    float *rows;     /* KIND_SLOTS x (L + 1): the kind's summed rows, then its "filled" mark */
    wkey *keys;      /* KIND_SLOTS, in the same allocation */
} kind_cache;

static pthread_key_t kind_key;
static pthread_once_t kind_once = PTHREAD_ONCE_INIT;
static int kind_key_ok;

static void kind_cache_free(void *p) {
    kind_cache *k = p;
    free(k->rows);
    free(k);
}
static void kind_key_make(void) { kind_key_ok = pthread_key_create(&kind_key, kind_cache_free) == 0; }

/* This thread's cache, ready for model m; NULL when it cannot be had (the caller then keeps a
 * cache for the note alone). */
static kind_cache *thread_kind_cache(const deid_model *m, const deid_text_rules *r) {
    if (pthread_once(&kind_once, kind_key_make) || !kind_key_ok) return NULL;
    kind_cache *k = pthread_getspecific(kind_key);
    if (!k) {
        k = cf_calloc(1, sizeof *k);
        float *rows = k ? cf_calloc(KIND_SLOTS, (DEID_NL + 1) * sizeof *rows + sizeof(wkey)) : NULL;
        if (!rows || pthread_setspecific(kind_key, k)) {
            free(rows);
            free(k);
            return NULL;
        }
        k->rows = rows;
        k->keys = (wkey *)(rows + (size_t)KIND_SLOTS * (DEID_NL + 1));
    }
    if (k->serial != m->serial || k->rules_serial != r->serial || k->used * 2 > KIND_SLOTS) {
        memset(k->rows, 0, (size_t)KIND_SLOTS * (DEID_NL + 1) * sizeof *k->rows);
        k->used = 0;
        k->serial = m->serial;
        k->rules_serial = r->serial;
    }
    return k;
}

/* Round 12: is the note a list of items (a catalogue of titles, an order or flowsheet list)
 * rather than prose? At least eight lines hold a word, and nine in ten of them hold at most 24
 * words, no sentence end (a '.', '?' or '!' after a number or a word of three letters or more,
 * followed by a space or the line's end; "e.g." and "St." are none) and no field label (a colon
 * after one of the line's first three words: "CC: fevers", "PCP: X" make a form, not a list). In one case such a list has no
 * capital that tells a name, and the words after "for", "to", "from" in its titles are clinical
 * ("from plaster model"), while in prose ("I work for X") they are as often PHI: the feature lets
 * the model learn the two apart. */
static int is_list_note(const ctx *c, const wcache *wc) {
    size_t lines = 0, list_lines = 0;
    for (size_t a = 0; a < c->nt;) {
        size_t z = a + 1;
        while (z < c->nt && wc[z].gl != 'n') z++;
        int sentence = 0;
        for (size_t q = a; q < z && !sentence; q++) {
            size_t end = c->t[q].e;
            if (end >= c->len) continue;
            char p = c->text[end];
            char nx = end + 1 < c->len ? c->text[end + 1] : '\n';
            int ends = (p == '.' || p == '?' || p == '!') && (nx == ' ' || nx == '\n' || nx == '\r');
            int label = p == ':' && q < a + 3 && (nx == ' ' || nx == '\n' || nx == '\r');
            if ((ends && (c->t[q].nletters >= 3 || c->t[q].shape0 == SH_NUM)) || label) sentence = 1;
        }
        lines++;
        list_lines += !sentence && z - a <= 24;
        a = z;
    }
    return lines >= 8 && list_lines * 10 >= lines * 9;
}

/* Is a person cue (a title, a kinship word, a word a name follows or precedes: "Dr", "wife", "pt",
 * "RN") within reach words of word i? Round 13's list gate looks two words away: a catalogue's
 * titles hold none beside a word; a nursing note written as short lines holds them beside nearly
 * every name ("wife, X, in", "X RN covering", "handed off to X RN"). The list features stand aside
 * there, so the person context is weighed as in prose: fitted on catalogues, they had learned that
 * any word of a list note is no name (docs/DEID.md, round 13: recall 0.686 on short-line nursing
 * notes). Only in a model fitted with deid-train --list-person-gate (m->list_person_gate).
 * In a catalogue (catalogue_note) only a title ("Dr", "Mr": a person, not an item's noun) or a cue
 * phrase of several words ending there ("reviewed by", "ordered by", "signed by": the signature
 * line under a list) counts. The first version of the catalogue test let no cue gate in a
 * catalogue, and the names after "ordered by Dr" in the generated list notes were missed
 * (docs/DEID.md, round 15, E0). */
static int person_cue_near(const ctx *c, size_t i, size_t reach, int catalogue) {
    size_t a = i >= reach ? i - reach : 0, z = i + reach + 1 < c->nt ? i + reach + 1 : c->nt;
    for (size_t q = a; q < z; q++) {
        if (q == i) continue;
        const tok *t = &c->t[q];
        if (catalogue ? (t->f & F_TITLE) || ((t->cue_end & F_NAME_BEFORE) && !(t->f & F_NAME_BEFORE))
                      : (t->f & (F_TITLE | F_NAME_BEFORE | F_NAME_AFTER | F_KIN)))
            return 1;
    }
    return 0;
}

/* Round 15: does the line of words [a, z) read as narrative, a sentence about people and events
 * rather than an item's title? A kinship word ("wife in and updated"), a pronoun of cues.tsv or a
 * subject pronoun or auxiliary verb of the closed class below ("she is aware", "has been
 * turned"), a charting verb of keep_name_verbs.txt ("MD aware", "resident paged", "in to see
 * pt"), or a clock time ("1930 HR 80s"). Catalogue titles hold cue words as nouns ("patient",
 * "provider", a roman numeral: docs/DEID.md, round 14) but, as noun phrases, none of these. */
static int narrative_line(const ctx *c, const wcache *wc, size_t a, size_t z) {
    static const char *const GRAMMAR[] = {"he", "she", "his", "hers", "they", "their", "is", "was", "were", "are",
                                          "has", "had", "will"};
    for (size_t q = a; q < z; q++) {
        if (c->t[q].f & (F_KIN | F_PRONOUN)) return 1;
        if (deid__clock_time(c, q) || deid__verb_starting_at(c, q)) return 1;
        if (wc[q].wl >= 2 && wc[q].wl <= 5)
            for (size_t k = 0; k < sizeof GRAMMAR / sizeof *GRAMMAR; k++)
                if (strlen(GRAMMAR[k]) == wc[q].wl && !memcmp(GRAMMAR[k], wc[q].w, wc[q].wl)) return 1;
    }
    return 0;
}

/* Round 15 (@list_catalogue_test): a list note none of whose lines is narrative is a catalogue of
 * item titles, and round 13's person-cue gate applies in it only beside a title or a cue phrase
 * of several words (person_cue_near): in a catalogue the one-word cues are nouns of titles
 * ("patient", "provider", a roman numeral), and the gate turned the list features off around
 * them, so title words were weighed as prose (about a fifth of the one-case MIMIC cost, round
 * 14). A nursing note of short lines holds a kinship word, a pronoun, an auxiliary, a charting
 * verb or a clock time on some line. */
static int catalogue_note(const ctx *c, const wcache *wc) {
    for (size_t a = 0; a < c->nt;) {
        size_t z = a + 1;
        while (z < c->nt && wc[z].gl != 'n') z++;
        if (narrative_line(c, wc, a, z)) return 0;
        a = z;
    }
    return 1;
}

/* Round 19 (@one_case_fields): is the note a catalogue (catalogue_note) for the field-list test of
 * fields.c? 1 or 0; -1 out of memory. Outside deid__features, so it reads the words again. */
int deid__one_case_catalogue(const ctx *c) {
    wcache *wc = cf_malloc((c->nt + 1) * sizeof *wc);
    if (!wc) return -1;
    for (size_t i = 0; i < c->nt; i++) {
        wc[i].lc = lexclass(&c->t[i]);
        wc[i].gl = gap_ch(c, i);
        wc[i].wl = (uint8_t)low_word(c, i, wc[i].w, sizeof wc[i].w);
    }
    int r = catalogue_note(c, wc);
    free(wc);
    return r;
}

int deid__features(const ctx *c, deid_model *m, int intern, deid_featbuf *fb, cf_err *err) {
    fb->n = 0;
    fb->oom = 0;
    size_t *ns = cf_realloc_array(fb->start, c->nt + 1, sizeof *ns);
    if (ns) fb->start = ns;
    tokev *ev = cf_malloc((c->nt + 1) * sizeof *ev);
    char *sec = cf_malloc(c->nt + 1);
    if (!ns || !ev || !sec) {
        free(ev);
        free(sec);
        return cf_fail(err, CF_EINTERNAL, "out of memory for the features of %zu words", c->nt);
    }
    span_evidence(c, ev);
    wcache *wc = cf_malloc((c->nt + 1) * sizeof *wc);
    if (!wc) {
        free(ev);
        free(sec);
        return cf_fail(err, CF_EINTERNAL, "out of memory for the features of %zu words", c->nt);
    }
    for (size_t i = 0; i < c->nt; i++) {
        wc[i].lc = lexclass(&c->t[i]);
        wc[i].gl = gap_ch(c, i);
        wc[i].wl = (uint8_t)low_word(c, i, wc[i].w, sizeof wc[i].w);
    }
    /* the note: case, density of the clinical keep-list, section headings */
    char dc = c->upper_doc ? 'U' : c->lower_doc ? 'l' : 'M';
    char kd = deid__keep_density(c);
    int list_note = is_list_note(c, wc);
    /* a catalogue's list features stand aside only beside a title or a cue phrase (round 15) */
    int catalogue = list_note && m->list_catalogue_test && catalogue_note(c, wc);
    /* a heading: the first word of a line, followed by a colon, that is a common or clinical
       word; it stays in force until the next heading (sections: 'Social:', 'Neuro:') */
    size_t cur_sec = (size_t)-1;
    for (size_t i = 0; i < c->nt; i++) {
        if ((i == 0 || wc[i].gl == 'n') && i + 1 <= c->nt) {
            char g = i + 1 < c->nt ? wc[i + 1].gl : 'n';
            char lc = wc[i].lc;
            if (g == ':' && identity_ok(lc)) cur_sec = i;
        }
        sec[i] = cur_sec != (size_t)-1;
    }
    /* lines: how many words the word's line holds, where the word stands in it, and whether it
       is the note's last line (a name alone on the last line is a signature; one alone on a line
       of a list is a label) */
    uint8_t *lninfo = cf_malloc(c->nt + 1);
    if (!lninfo) {
        free(ev);
        free(sec);
        free(wc);
        free(lninfo);
        return cf_fail(err, CF_EINTERNAL, "out of memory for the features of %zu words", c->nt);
    }
    for (size_t a = 0; a < c->nt;) {
        size_t z = a + 1;
        while (z < c->nt && wc[z].gl != 'n') z++;
        size_t cnt = z - a;
        for (size_t q = a; q < z; q++)
            lninfo[q] = (uint8_t)((cnt > 4 ? 4 : cnt) | (q == a) << 4 | (q + 1 == z) << 5 | (z == c->nt) << 6);
        a = z;
    }
    femit e = {.m = m, .intern = intern, .fb = fb, .wc = wc, .hashed = !intern && m->ix};
    deid_flags class_bits = 0; /* the classes that have a name (the c0= walk stops at its word's last) */
    for (size_t k = 0; k < N_CLASS_NAMES; k++) class_bits |= CLASS_NAMES[k].f;
    /* the per-kind-of-word cache (inference): a word kind's summed rows, L floats and a "filled"
       mark; the thread's (thread_kind_cache) for a loaded model, else sized to the note, at
       most 1024 kinds */
    float *cache = NULL, *note_cache = NULL;
    wkey *cache_keys = NULL;
    size_t cache_mask = 0;
    kind_cache *kc = NULL;
    if (!intern && !fb->no_cache) {
        float *nx = cf_realloc_array(fb->extra, c->nt + 1, DEID_NL * sizeof *nx);
        if (nx) fb->extra = nx;
        kc = nx && m->serial && c->r->serial ? thread_kind_cache(m, c->r) : NULL;
        size_t slots = 16;
        while (slots < 1024 && slots < c->nt) slots *= 2;
        if (kc) {
            cache = kc->rows;
            cache_keys = kc->keys;
            cache_mask = KIND_SLOTS - 1;
        } else if (nx && (note_cache = cf_calloc(slots, (DEID_NL + 1) * sizeof *cache + sizeof *cache_keys))) {
            cache = note_cache;
            cache_keys = (wkey *)(cache + slots * (DEID_NL + 1));
            cache_mask = slots - 1;
        } else {
            free(fb->extra);
            fb->extra = NULL;
        }
    } else {
        free(fb->extra);
        fb->extra = NULL;
    }
    cur_sec = (size_t)-1;
    for (size_t i = 0; i < c->nt; i++) {
        fb->start[i] = fb->n;
        const tok *t = &c->t[i];
        const tokev *v = &ev[i];
        char lc = wc[i].lc, s0 = shape_ch(t->shape0), s1 = shape_ch(t->shape);
        char gl = wc[i].gl, gr = i + 1 < c->nt ? wc[i + 1].gl : 'n';
        const char *w = wc[i].w;
        size_t wl = wc[i].wl;
        /* the list features, unless a person cue stands near in a model with the gate
           (person_cue_near); part of the cache key, as they are emitted among the cached features */
        int lst_here = list_note && !(m->list_person_gate && person_cue_near(c, i, 2, catalogue));
        /* the features a word's shape and classes alone decide: cached at inference */
        wkey key = {t->f, (uint64_t)t->shape0 | (uint64_t)t->shape << 4 | (uint64_t)(unsigned char)lc << 8 |
                              (uint64_t)(t->nletters > 9 ? 9 : t->nletters) << 16 | (uint64_t)t->oov << 20 |
                              (uint64_t)t->clin_shape << 21 | (uint64_t)t->sent << 22 |
                              (uint64_t)(unsigned char)gl << 24 | (uint64_t)(unsigned char)gr << 32 |
                              (uint64_t)lst_here << 40 | (uint64_t)(unsigned char)dc << 48 |
                              (uint64_t)(unsigned char)kd << 56};
        float *slot = cache ? cache_slot(cache, cache_keys, cache_mask, &key) : NULL;
        if (slot && slot[DEID_NL] != 0) {
            memcpy(fb->extra + i * DEID_NL, slot, DEID_NL * sizeof(float));
        } else {
            size_t n0 = fb->n;
            if (fb->extra) memset(fb->extra + i * DEID_NL, 0, DEID_NL * sizeof(float));
            f_str(&e, "b", "", 0);
            f_ch(&e, "s0=", s0);
            f_ch2(&e, "s01=", s0, s1);
            f_ch(&e, "dc=", dc);
            f_ch(&e, "lc=", lc);
            f_ch2(&e, "lcs=", lc, s0);
            f_ch3(&e, "lcsd=", lc, s0, dc);
            f_ch3(&e, "lckd=", lc, s0, kd);
            f_ch(&e, "len=", (char)('0' + (t->nletters > 9 ? 9 : t->nletters)));
            /* round 12: a catalogue of item titles, apart from prose (see is_list_note) */
            if (lst_here) f_ch2(&e, "lst=", lc, dc);
            deid_flags cf = t->f & class_bits;
            for (size_t k = 0; cf && k < N_CLASS_NAMES; k++)
                if (cf & CLASS_NAMES[k].f) {
                    cf &= ~CLASS_NAMES[k].f;
                    f_str(&e, "c0=", CLASS_NAMES[k].name, strlen(CLASS_NAMES[k].name));
                }
            if (t->oov) f_ch(&e, "oov=", s0);
            if (t->clin_shape) f_str(&e, "cshape", "", 0);
            if (t->sent) f_ch(&e, "ss=", lc);
            f_ch2(&e, "g=", gl, gr);
            f_ch3(&e, "gs=", gl, s0, gr);
            f_ch3(&e, "gl=", gl, lc, gr);
            femit_flush(&e);
            if (slot && !fb->oom) {
                /* sum the rows into the cache and the word's extra row, and drop the ids */
                float acc[DEID_NL] = {0};
                for (size_t q = n0; q < fb->n; q++) {
                    const float *wr = m->w + (size_t)fb->ids[q] * DEID_NL;
                    for (int y = 0; y < DEID_NL; y++) acc[y] += wr[y];
                }
                fb->n = n0;
                memcpy(slot, acc, sizeof acc);
                slot[DEID_NL] = 1;
                if (kc) kc->used++;
                memcpy(fb->extra + i * DEID_NL, acc, sizeof acc);
            }
        }
        if (wl && identity_ok(lc)) {
            f_str(&e, "w0=", w, wl);
            char tmp[40];
            tmp[0] = s0; /* the word with its casing ("NEO" against "Neo") */
            memcpy(tmp + 1, w, wl);
            f_str(&e, "w0s=", tmp, wl + 1);
        } else if (wl >= 4 && (lc == 'O' || lc == 'N' || lc == 'P' || lc == 'x') && ascii_word(w, wl)) {
            f_str(&e, "x3=", w + wl - 3, 3);
            f_str(&e, "p3=", w, 3);
        }
        /* the line: words on it, first / last / middle, the note's last line ("Rich" alone at the
           end), with the word's class and shape */
        {
            uint8_t li = lninfo[i];
            char pos = (li & 16) ? 'f' : (li & 32) ? 'l' : 'm';
            f_ch3(&e, "ln=", (char)('0' + (li & 15)), pos, (li & 64) ? 'L' : '-');
            char tmp[4] = {(char)('0' + (li & 15)), pos, lc, s0};
            f_str(&e, "lns=", tmp, 4);
        }
        /* the words on both sides together ("given to _ at", "per _ .", "_ aware") */
        {
            char tmp[64];
            size_t tl = 0;
            for (int side = -1; side <= 1; side += 2) {
                long j = (long)i + side;
                if (side == 1) tmp[tl++] = '|';
                if (j < 0 || (size_t)j >= c->nt) tmp[tl++] = '<';
                else if (identity_ok(wc[j].lc) && wc[j].wl && wc[j].wl < 24) memcpy(tmp + tl, wc[j].w, wc[j].wl), tl += wc[j].wl;
                else tmp[tl++] = wc[j].lc;
            }
            tmp[tl++] = gl;
            tmp[tl++] = gr;
            f_str(&e, "ww=", tmp, tl);
        }
        neighbour(&e, c, i, -1, "w-1=", "c-1=", "s-1=");
        /* in a list note, the class of the word before with this word's: "FOR <word>" in a title
           of a catalogue against "I WORK FOR <word>" in prose (not beside a person cue) */
        if (lst_here && i > 0) f_ch3(&e, "lst1=", wc[i - 1].lc, lc, dc);
        neighbour(&e, c, i, 1, "w+1=", "c+1=", "s+1=");
        neighbour(&e, c, i, -2, "w-2=", NULL, NULL);
        neighbour(&e, c, i, 2, "w+2=", NULL, NULL);
        /* In a note written in one case the capitals that carry "at Linden Court", "on Kettle
           Pond Rd", "rehab vs Birch Hollow" are gone, and the weights the context words share
           with mixed-case notes (where the capitals did the work) undervalue them. The same
           context again, conjoined with "one case" and the word's class, lets the model learn
           how much the context alone says there. Mixed-case notes emit none of these. */
        if (m->one_case_context && dc != 'M' && OC_CLASS(lc)) one_case_context(&e, c, i, lc);
        /* the word before with this word's shape ("DR QUILL", "pager 43210") */
        if (i > 0) {
            const char *pw = wc[i - 1].w;
            char plc = wc[i - 1].lc;
            size_t pl = identity_ok(plc) ? wc[i - 1].wl : 0;
            if (pl) {
                char tmp[48];
                size_t tl = 0;
                tmp[tl++] = lc;
                tmp[tl++] = s0;
                tmp[tl++] = gl;
                memcpy(tmp + tl, pw, pl);
                tl += pl;
                f_str(&e, "pw&=", tmp, tl);
            }
        }
        if (t->shape0 == SH_NUM) {
            size_t nd = t->e - t->s;
            char r = num_range(c, i);
            f_ch(&e, "nd=", (char)('0' + (nd > 9 ? 9 : nd)));
            f_ch3(&e, "nr=", r, gl, gr);
            char pr = i > 0 && c->t[i - 1].shape0 == SH_NUM ? num_range(c, i - 1) : (i > 0 ? wc[i - 1].lc : '<');
            char nr = i + 1 < c->nt && c->t[i + 1].shape0 == SH_NUM ? num_range(c, i + 1)
                                                                     : (i + 1 < c->nt ? wc[i + 1].lc : '>');
            char tmp[5] = {pr, gl, r, gr, nr};
            f_str(&e, "nctx=", tmp, 5);
            /* a chain of numbers joined by '/' or '.' ("7.39/34/63/29", "10/5/40", "3/10"): its
               number of slashes and the word's place in it; the number across a slash when it is
               small ("_/10" is a score, "7/_" a day or a count) */
            {
                size_t a0 = i, z0 = i;
                int slashes = 0, dots = 0, before = 0;
                while (a0 > 0 && c->t[a0 - 1].shape0 == SH_NUM && c->t[a0].s - c->t[a0 - 1].e == 1 &&
                       (c->text[c->t[a0].s - 1] == '/' || c->text[c->t[a0].s - 1] == '.')) {
                    if (c->text[c->t[a0].s - 1] == '/') slashes++, before++;
                    else dots++;
                    a0--;
                }
                while (z0 + 1 < c->nt && c->t[z0 + 1].shape0 == SH_NUM && c->t[z0 + 1].s - c->t[z0].e == 1 &&
                       (c->text[c->t[z0].e] == '/' || c->text[c->t[z0].e] == '.')) {
                    if (c->text[c->t[z0].e] == '/') slashes++;
                    else dots++;
                    z0++;
                }
                if (slashes) f_ch3(&e, "sl=", (char)('0' + (slashes > 4 ? 4 : slashes)), (char)('0' + (before > 4 ? 4 : before)), dots ? 'd' : '-');
                if (gr == '/' && i + 1 < c->nt && c->t[i + 1].shape0 == SH_NUM) {
                    long nv = deid__num_value(c, i + 1);
                    char vb[4];
                    int vl = nv >= 0 && nv <= 31 ? snprintf(vb, sizeof vb, "%ld", nv) : snprintf(vb, sizeof vb, "L");
                    f_str(&e, "den=", vb, (size_t)vl);
                }
                if (gl == '/' && i > 0 && c->t[i - 1].shape0 == SH_NUM) {
                    long nv = deid__num_value(c, i);
                    char vb[4];
                    int vl = nv >= 0 && nv <= 31 ? snprintf(vb, sizeof vb, "%ld", nv) : snprintf(vb, sizeof vb, "L");
                    f_str(&e, "dnm=", vb, (size_t)vl);
                }
            }
            if (deid__clock_time(c, i)) f_ch2(&e, "clk=", r, gl); /* "since 2050", "at 1500" */
            /* a range ("800-1000", "80-90") ascends and is often round; a phone number's
               groups ("555-0143") need not */
            for (int side = 0; side < 2; side++) {
                size_t a = side ? i - 1 : i, b2 = side ? i : i + 1;
                if (side ? (i == 0 || gl != '-') : (i + 1 >= c->nt || gr != '-')) continue;
                if (c->t[a].shape0 != SH_NUM || c->t[b2].shape0 != SH_NUM) continue;
                long va = deid__num_value(c, a), vb = deid__num_value(c, b2);
                if (va < 0 || vb < 0) continue;
                char rr[3] = {side ? 'R' : 'L', va < vb ? 'a' : 'd',
                              (va % 10 == 0 && vb % 10 == 0) ? 'r' : c->text[c->t[b2].s] == '0' ? 'z' : 'n'};
                f_str(&e, "rng=", rr, 3);
            }
        }
        /* section */
        if ((i == 0 || gl == 'n') && gr == ':' && identity_ok(lc)) cur_sec = i;
        if (cur_sec != (size_t)-1 && sec[i]) {
            const char *sw = wc[cur_sec].w;
            size_t sl = wc[cur_sec].wl < 16 ? wc[cur_sec].wl : 0;
            if (sl) {
                f_str(&e, "sec=", sw, sl);
                char tmp[20];
                tmp[0] = lc;
                memcpy(tmp + 1, sw, sl);
                f_str(&e, "secl=", tmp, sl + 1);
            }
        }
        /* evidence layers (the walk ends after the word's last type: most words have none) */
        unsigned ev_types = (unsigned)(v->pat | v->pat_begin | v->rule | v->known);
        for (int ty = 0; ty < DEID_N_TYPES && (ev_types >> ty); ty++) {
            uint16_t bit = (uint16_t)(1u << ty);
            if (v->pat & bit) {
                f_ch(&e, "pt=", TYPE_CH[ty]);
                f_ch3(&e, "ptg=", TYPE_CH[ty], gl, gr);
                f_ch2(&e, "ptl=", TYPE_CH[ty], lc);
                if (i > 0) {
                    const char *pw = wc[i - 1].w;
                    char plc = wc[i - 1].lc;
                    size_t pl = identity_ok(plc) ? wc[i - 1].wl : 0;
                    char tmp[40];
                    tmp[0] = TYPE_CH[ty];
                    if (pl) memcpy(tmp + 1, pw, pl);
                    else tmp[1] = plc, pl = 1;
                    f_str(&e, "ptw=", tmp, pl + 1);
                }
            }
            if (v->pat_begin & bit) f_ch(&e, "pb=", TYPE_CH[ty]);
            if (v->rule & bit) {
                f_ch(&e, "ru=", TYPE_CH[ty]);
                f_ch3(&e, "rul=", TYPE_CH[ty], lc, s0);
                f_ch3(&e, "rud=", TYPE_CH[ty], dc, kd);
            }
            if (v->known & bit) f_ch(&e, "kn=", TYPE_CH[ty]);
        }
        for (int q = 0; q < v->nkeys; q++) {
            char tmp[12];
            int tl = snprintf(tmp, sizeof tmp, "%08x", v->keys[q]);
            f_str(&e, "pk=", tmp, (size_t)tl);
        }
        f_ch2(&e, "ru-1=", i > 0 ? types_ch(ev[i - 1].rule | ev[i - 1].pat) : '<', gl);
        f_ch2(&e, "ru+1=", i + 1 < c->nt ? types_ch(ev[i + 1].rule | ev[i + 1].pat) : '>', gr);
        femit_flush(&e);
    }
    fb->start[c->nt] = fb->n;
    free(ev);
    free(sec);
    free(wc);
    free(lninfo);
    free(note_cache);
    if (fb->oom) return cf_fail(err, CF_EINTERNAL, "out of memory for features");
    return CF_OK;
}

void deid__featbuf_free(deid_featbuf *fb) {
    free(fb->ids);
    free(fb->start);
    free(fb->extra);
    memset(fb, 0, sizeof *fb);
}
