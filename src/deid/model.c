/* The de-identifier's fitted model: features of each word, the linear-chain CRF that scores them,
 * and deid_find(), which runs the evidence layers of find.c and lets the model decide.
 *
 * Every piece of evidence is one feature, scored on its own by a fitted weight per label:
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
 * The weights are fitted by deid-train (model_train.c); the file is data (data/deid/model.tsv).
 *
 * Spans: consecutive words with the same PHI label form a run; the run's span is the union of
 * the evidence spans of its type that overlap it (so a date glued to a word, "CXR3/4", gives
 * "3/4"), plus its words no such span covers. The record's known strings are always taken. */
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
static long num_value(const ctx *c, size_t i) {
    const tok *t = &c->t[i];
    return t->e - t->s > 9 ? -1 : deid__digits_value(c->text + t->s, t->e - t->s);
}

/* Word i, a number, is a four-digit clock time: hours under 24, minutes under 60 ("at 1500",
 * "1105 X aware": such a time opens an event line and says nothing clinical of the word after). */
static int clock_time(const ctx *c, size_t i) {
    if (c->t[i].shape0 != SH_NUM || c->t[i].e - c->t[i].s != 4) return 0;
    long v = num_value(c, i);
    return v / 100 < 24 && v % 100 < 60;
}

/* Word i (a number) has four digits and lies from 1900 to 2099: shaped like a year. */
static int year_shaped(const ctx *c, size_t i) {
    if (c->t[i].e - c->t[i].s != 4) return 0;
    long v = num_value(c, i);
    return v >= 1900 && v <= 2099;
}

/* Can the chain of numbers joined by '/' around word i ("3/7", "4/09", "3/7/21", "2020/03/05") be
 * read as a date at all: month/day or day/month, then a year of two or four digits, month/year,
 * or year/month/day? "PA
 * 44/21", "500/15/8/60" and "7.39/34" cannot (no month). Words outside such a chain: yes. */
static int slash_date_possible(const ctx *c, size_t i) {
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
    long x = num_value(c, a), y = num_value(c, a + 1);
    size_t xl = c->t[a].e - c->t[a].s, yl = c->t[a + 1].e - c->t[a + 1].s;
    if (xl == 4) return y >= 1 && y <= 12 && (z == a + 1 || (num_value(c, z) >= 1 && num_value(c, z) <= 31)); /* "2020/03/05" */
    int md = (x >= 1 && x <= 12 && y >= 1 && y <= 31) || (x >= 1 && x <= 31 && y >= 1 && y <= 12);
    if (z == a + 1) return md || (x >= 1 && x <= 12 && (yl == 2 || yl == 4)); /* "4/09", "03/2020" */
    size_t zl = c->t[z].e - c->t[z].s;
    return md && (zl == 2 || zl == 4);
}

/* Word q shares a line with word q - 1: no newline in the gap before it, as every other rule
 * reads a line (a '\r' is a space, so "\r\n" is one break and a lone '\r' none). */
static int same_line_as_previous(const ctx *c, size_t q) { return !deid__gap_info(c, q).nl; }

/* Word q of c is w (ASCII case folded). */
static int word_is(const ctx *c, size_t q, const char *w) {
    size_t n = c->t[q].e - c->t[q].s;
    return strlen(w) == n && !strncasecmp(c->text + c->t[q].s, w, n);
}

/* A second-level label of a real host name ("nhs.co.uk", "ox.ac.uk", "x.com.au"). */
static int generic_host_label(const ctx *c, size_t q) {
    static const char *const G[] = {"com", "org", "net", "edu", "gov", "co", "ac", "www"};
    for (size_t k = 0; k < sizeof G / sizeof G[0]; k++)
        if (word_is(c, q, G[k])) return 1;
    return 0;
}

/* Words a..z joined by single dots make a bare host of common words: nothing host-like around it
 * (no scheme, path, "@", port or further label), a two-letter (country) last label, and every
 * other label a number or a listed common word, none a generic second-level label. A run-on
 * sentence ("2.Pt", "well.no") reads so; a real host is rarely made of common words only. */
static int common_bare_host(const ctx *c, size_t a, size_t z) {
    if (z == a) return 0;
    char before = c->t[a].s > 0 ? c->text[c->t[a].s - 1] : ' ';
    char after = c->t[z].e < c->len ? c->text[c->t[z].e] : ' ';
    int bare = !strchr("/@:.-_", before) && !strchr("/@:-_", after) &&
               !(after == '.' && c->t[z].e + 1 < c->len && isalnum((unsigned char)c->text[c->t[z].e + 1]));
    if (!bare || c->t[z].e - c->t[z].s != 2 || c->t[z].nletters != 2) return 0;
    for (size_t q = a; q < z; q++)
        if (!(c->t[q].shape0 == SH_NUM || (c->t[q].f & (F_ENGLISH | F_MEDICAL | F_KEEP | F_STOP))) ||
            generic_host_label(c, q))
            return 0;
    return 1;
}

/* Round 23 (@nursing_shorthand 3): S1's three rules, on every label whatever its type, so on the
 * span's final type too (spans are made of labelled words only; the pattern, not the model, may
 * type a span a URL or a phone). (c') a URL span of the pattern layer that is a bare host of
 * common words: "2.Pt turned" is labelled NAME or DATE by the model and typed a URL by the
 * pattern, which N2's rule, reading the model's URL label, never saw. (d) a number glued after a
 * sign, with no letter or digit before the sign (a range "5-200" has one), no digit group after it
 * ("+1 555 0100" is a phone's start) and fewer than seven digits, is an intake or output figure
 * ("+900", "-200"), never a phone: a phone has seven digits or more. (e) "a/10" (a at most 10)
 * with "pain", "score" or "scale" among the two words before it on its line is a pain score, no
 * date ("seen 6/10" keeps its date). Level 4 also (f): a single word labelled a place or
 * organisation right after "at", "in" or "from" on its line, listed as a clinical, common or stop
 * word and in no name or place list (and lower case in a mixed-case note, where a proper name
 * would be capitalised) is running text ("at nare", "from yesterday"), no place. */
static void shorthand_filter_s(const ctx *c, int8_t *lab, int level) {
    size_t T = c->nt;
    for (size_t k = 0; k < c->spans.n; k++) {
        const deid_span *sp = &c->spans.v[k];
        if ((c->spans.tag[k] >> 16) != DEID_SRC_PATTERN || sp->type != DEID_URL) continue;
        size_t a = deid__first_word_ending_after(c, sp->start), z = a;
        if (a >= T || c->t[a].s != sp->start) continue;
        while (z + 1 < T && c->t[z].e < sp->end && c->t[z + 1].s == c->t[z].e + 1 && c->text[c->t[z].e] == '.') z++;
        if (c->t[z].e != sp->end || !common_bare_host(c, a, z)) continue;
        for (size_t q = a; q <= z; q++) lab[q] = -1;
    }
    for (size_t i = 0; i < T; i++) {
        const tok *t = &c->t[i];
        if (lab[i] < 0) continue;
        if (t->shape0 == SH_NUM && t->s > 0 && (c->text[t->s - 1] == '+' || c->text[t->s - 1] == '-') &&
            !(t->s > 1 && isalnum((unsigned char)c->text[t->s - 2])) && t->e - t->s < 7) {
            size_t e = t->e;
            int more = e + 1 < c->len && strchr(" -.()", c->text[e]) && c->text[e] &&
                       isdigit((unsigned char)c->text[e + 1]);
            if (!more) {
                lab[i] = -1;
                continue;
            }
        }
        if (t->shape0 == SH_NUM && i + 1 < T && c->t[i + 1].s == t->e + 1 && c->text[t->e] == '/' &&
            word_is(c, i + 1, "10") && t->e - t->s <= 2 && !(t->s > 0 && c->text[t->s - 1] == '/') &&
            !(c->t[i + 1].e < c->len && c->text[c->t[i + 1].e] == '/') && (lab[i] == DEID_DATE || lab[i + 1] == DEID_DATE)) {
            int v = 0;
            for (size_t q = t->s; q < t->e; q++) v = v * 10 + (c->text[q] - '0');
            int cue = 0;
            for (size_t q = i, n = 0; q > 0 && n < 2 && !cue; q--, n++) {
                if (!same_line_as_previous(c, q)) break;
                cue = word_is(c, q - 1, "pain") || word_is(c, q - 1, "score") || word_is(c, q - 1, "scale");
            }
            if (v <= 10 && cue) {
                lab[i] = lab[i + 1] = -1;
                continue;
            }
        }
        if (level >= 4 && (lab[i] == DEID_LOCATION || lab[i] == DEID_ORGANIZATION) && i > 0 &&
            same_line_as_previous(c, i) &&
            (word_is(c, i - 1, "at") || word_is(c, i - 1, "in") || word_is(c, i - 1, "from")) && lab[i - 1] < 0 &&
            !(i + 1 < T && lab[i + 1] == lab[i] && same_line_as_previous(c, i + 1)) &&
            (t->f & (F_MEDICAL | F_KEEP | F_ENGLISH | F_STOP)) &&
            !(t->f & (F_FIRST | F_LAST | F_PLACE | F_REGION | F_ORGNAME | F_PLACE_WORD)) &&
            (c->lower_doc || c->upper_doc || t->shape0 == SH_LOWER))
            lab[i] = -1;
    }
}

/* Round 22 (@nursing_shorthand): nursing shorthand the model took for PHI, dropped after it.
 * Level 1: (a) a chain of numbers joined by '/' (two slashes or more) labelled a date is a
 * ventilator setting when the word right before it on its line is a vent-mode or setting word
 * (the a_vent cues: "PS 10/5/40", "vent settings 10/5/40") or '%' closes it ("10/5/40%": an
 * oxygen fraction ends a setting, never a date); (b) a word of one or two letters glued to a '+'
 * ("K+", "Na+", "Mg++") labelled a name, place or organisation is an ion's charge, no initial.
 * Level 2 also: (c) a run labelled a URL that is a bare host (words joined by single dots, no
 * scheme, path, "@" or port) ending in a two-letter country label, all of whose other labels are
 * numbers or listed common words, is a run-on sentence ("2.Pt", "well.no"): a real host is
 * rarely made of common words only, and "www.", a scheme or a generic label ("co.uk") keeps it. */
static void shorthand_filter(const ctx *c, int8_t *lab, int level) {
    size_t T = c->nt;
    for (size_t i = 0; i < T; i++) {
        const tok *t = &c->t[i];
        if (lab[i] == DEID_DATE && t->shape0 == SH_NUM) {
            size_t a = i, z = i;
            while (a > 0 && c->t[a - 1].shape0 == SH_NUM && c->t[a].s == c->t[a - 1].e + 1 && c->text[c->t[a].s - 1] == '/') a--;
            while (z + 1 < T && c->t[z + 1].shape0 == SH_NUM && c->t[z + 1].s == c->t[z].e + 1 && c->text[c->t[z].e] == '/') z++;
            if (z - a < 2) continue;
            int vent = a > 0 && c->r->vent_cue && ((c->t[a - 1].f | c->t[a - 1].start) & c->r->vent_cue) &&
                       same_line_as_previous(c, a);
            int pct = c->t[z].e < c->len && c->text[c->t[z].e] == '%';
            if (vent || pct)
                for (size_t q = a; q <= z; q++)
                    if (lab[q] == DEID_DATE) lab[q] = -1;
            continue;
        }
        if ((lab[i] == DEID_NAME || lab[i] == DEID_LOCATION || lab[i] == DEID_ORGANIZATION) && t->e - t->s <= 2 &&
            (size_t)t->nletters == t->e - t->s && t->e < c->len && c->text[t->e] == '+' &&
            !(t->e + 1 < c->len && isalpha((unsigned char)c->text[t->e + 1]))) {
            lab[i] = -1;
            continue;
        }
        if (level == 2 && lab[i] == DEID_URL) {
            /* the host: the words around i joined by single dots, labelled or not */
            size_t a = i, z = i;
            while (a > 0 && c->t[a].s == c->t[a - 1].e + 1 && c->text[c->t[a].s - 1] == '.') a--;
            while (z + 1 < T && c->t[z + 1].s == c->t[z].e + 1 && c->text[c->t[z].e] == '.') z++;
            if (common_bare_host(c, a, z))
                for (size_t q = a; q <= z; q++)
                    if (lab[q] == DEID_URL) lab[q] = -1;
        }
    }
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

static int verb_starting_at(const ctx *c, size_t j);

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
        if (clock_time(c, q) || verb_starting_at(c, q)) return 1;
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
static int one_case_catalogue(const ctx *c) {
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
    size_t nkeep = 0, nwords = 0;
    for (size_t i = 0; i < c->nt; i++) {
        if (c->t[i].nletters >= 2) nwords++;
        if (c->t[i].f & F_KEEP) nkeep++;
    }
    char kd = nwords == 0 ? '0' : nkeep * 20 < nwords ? '1' : nkeep * 7 < nwords ? '2' : '3';
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
                    long nv = num_value(c, i + 1);
                    char vb[4];
                    int vl = nv >= 0 && nv <= 31 ? snprintf(vb, sizeof vb, "%ld", nv) : snprintf(vb, sizeof vb, "L");
                    f_str(&e, "den=", vb, (size_t)vl);
                }
                if (gl == '/' && i > 0 && c->t[i - 1].shape0 == SH_NUM) {
                    long nv = num_value(c, i);
                    char vb[4];
                    int vl = nv >= 0 && nv <= 31 ? snprintf(vb, sizeof vb, "%ld", nv) : snprintf(vb, sizeof vb, "L");
                    f_str(&e, "dnm=", vb, (size_t)vl);
                }
            }
            if (clock_time(c, i)) f_ch2(&e, "clk=", r, gl); /* "since 2050", "at 1500" */
            /* a range ("800-1000", "80-90") ascends and is often round; a phone number's
               groups ("555-0143") need not */
            for (int side = 0; side < 2; side++) {
                size_t a = side ? i - 1 : i, b2 = side ? i : i + 1;
                if (side ? (i == 0 || gl != '-') : (i + 1 >= c->nt || gr != '-')) continue;
                if (c->t[a].shape0 != SH_NUM || c->t[b2].shape0 != SH_NUM) continue;
                long va = num_value(c, a), vb = num_value(c, b2);
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

/* ---- the CRF ----------------------------------------------------------------------------- */

void deid__emissions(const deid_model *m, const deid_featbuf *fb, size_t T, float *E) {
    for (size_t i = 0; i < T; i++) {
        float acc[DEID_NL] = {0}; /* 16 floats: one or two vector registers */
        if (fb->extra) memcpy(acc, fb->extra + i * DEID_NL, sizeof acc);
        for (size_t k = fb->start[i]; k < fb->start[i + 1]; k++) {
            const float *restrict wr = m->w + (size_t)fb->ids[k] * DEID_NL;
            for (int y = 0; y < DEID_NL; y++) acc[y] += wr[y];
        }
        memcpy(E + i * DEID_NL, acc, sizeof acc);
    }
}

/* Forward-backward in scaled probability space (Rabiner's scaling): with psi[i][y] =
 * exp(E[i][y] - max_y E[i][y]) and M = exp(trans),
 *   alpha[0][y] = M[O][y] psi[0][y] / c[0],  alpha[i][y] = psi[i][y] sum_p alpha[i-1][p] M[p][y] / c[i],
 *   beta[T-1][y] = 1,  beta[i][p] = sum_y M[p][y] psi[i+1][y] beta[i+1][y] / c[i+1],
 * c[i] normalising alpha[i] to sum 1; then P[i][y] = alpha[i][y] beta[i][y] and
 * log Z = sum_i (log c[i] + max_y E[i][y]). Two exponentials per word and label instead of the
 * log-sum-exp of every pair: this runs for every note. work holds 4 * T * L floats: alpha, beta,
 * psi and (T) c. */
/* A row of L = 16 floats as four 4-lane vectors (the GCC and Clang vector extension), so that
 * the sums of the forward and backward passes stay in registers. Each lane does what the scalar
 * loop did, a multiply and then an add, in the same order (no fused multiply-add: -std=c11
 * turns contraction off), so every float is the scalar code's, bit for bit. */
typedef float crf_v4 __attribute__((vector_size(16)));
typedef struct {
    crf_v4 q[4];
} crf_row;
_Static_assert(sizeof(crf_row) == DEID_NL * sizeof(float), "a CRF row is the 16 labels");

static inline crf_row crf_load(const float *p) {
    crf_row r;
    memcpy(&r, p, sizeof r);
    return r;
}
static inline void crf_store(float *p, const crf_row *r) { memcpy(p, r, sizeof *r); }
/* acc + v * m, lane by lane (written out, and by value: a loop over the four, or a pointer to
 * acc, left the sums in memory) */
static inline crf_row crf_axpy(crf_row acc, float v, const crf_row *m) {
    crf_v4 vv = {v, v, v, v};
    acc.q[0] += vv * m->q[0];
    acc.q[1] += vv * m->q[1];
    acc.q[2] += vv * m->q[2];
    acc.q[3] += vv * m->q[3];
    return acc;
}

double deid__crf_marginals(const float *E, size_t T, const float *trans, float *P, float *work) {
    enum { L = DEID_NL };
    float *A = work, *B = work + T * L, *S = work + 2 * T * L, *C = work + 3 * T * L;
    float M[L * L];
    for (int k = 0; k < L * L; k++) M[k] = expf(trans[k]);
    crf_row Mr[L];
    for (int p = 0; p < L; p++) Mr[p] = crf_load(M + p * L);
    double logZ = 0;
    for (size_t i = 0; i < T; i++) {
        const float *e = E + i * L;
        float mx = e[0];
        for (int y = 1; y < L; y++)
            if (e[y] > mx) mx = e[y];
        for (int y = 0; y < L; y++) S[i * L + y] = expf(e[y] - mx);
        logZ += mx;
    }
    for (size_t i = 0; i < T; i++) {
        float *a = A + i * L, c = 0;
        const float *s = S + i * L;
        if (i == 0)
            for (int y = 0; y < L; y++) a[y] = M[0 * L + y] * s[y];
        else {
            /* a[y] = s[y] sum_p ap[p] M[p][y], summed over p in order, four lanes at a time */
            const float *ap = A + (i - 1) * L;
            crf_row acc = {{{0}}}, sr = crf_load(s);
            for (int p = 0; p < L; p++) acc = crf_axpy(acc, ap[p], &Mr[p]);
            for (int k = 0; k < 4; k++) acc.q[k] *= sr.q[k];
            crf_store(a, &acc);
        }
        for (int y = 0; y < L; y++) c += a[y];
        if (!(c > 1e-30f)) c = 1e-30f;
        C[i] = c;
        for (int y = 0; y < L; y++) a[y] /= c;
        logZ += log(c);
    }
    /* beta[i][p] = sum_y M[p][y] tmp[y], summed over y in order for every p at once: with M
       transposed the sixteen sums run side by side in vector lanes, each adding the same products
       in the same order as a dot product per p would (the same floats, bit for bit), where the
       dot products were one chain of dependent additions each */
    float MT[L * L];
    for (int p = 0; p < L; p++)
        for (int y = 0; y < L; y++) MT[y * L + p] = M[p * L + y];
    crf_row MTr[L];
    for (int y = 0; y < L; y++) MTr[y] = crf_load(MT + y * L);
    for (int y = 0; y < L; y++) B[(T - 1) * L + y] = 1;
    for (size_t i = T - 1; i-- > 0;) {
        float tmp[L];
        const float *bn = B + (i + 1) * L, *sn = S + (i + 1) * L;
        for (int y = 0; y < L; y++) tmp[y] = sn[y] * bn[y] / C[i + 1];
        crf_row v = {{{0}}};
        for (int y = 0; y < L; y++) v = crf_axpy(v, tmp[y], &MTr[y]);
        crf_store(B + i * L, &v);
    }
    for (size_t i = 0; i < T; i++) {
        float z = 0;
        for (int y = 0; y < L; y++) z += P[i * L + y] = A[i * L + y] * B[i * L + y];
        if (z > 0)
            for (int y = 0; y < L; y++) P[i * L + y] /= z;
    }
    return logZ;
}

/* ---- model file -------------------------------------------------------------------------- */

int deid_model_new(deid_model **out, cf_err *err) {
    deid_model *m = cf_calloc(1, sizeof *m);
    if (!m) return cf_fail(err, CF_EINTERNAL, "out of memory");
    strmap_init(&m->feats);
    m->threshold = 0.5f;
    *out = m;
    return CF_OK;
}

void deid_model_free(deid_model *m) {
    if (!m) return;
    free(m->ix);
    free(m->have);
    strmap_free(&m->feats);
    free(m->w);
    free(m);
}

static int label_from_name(const char *s, size_t n) {
    if (n == 1 && s[0] == 'O') return 0;
    char tmp[32];
    if (n >= sizeof tmp) return -1;
    memcpy(tmp, s, n);
    tmp[n] = 0;
    int t = deid_type_from_name(tmp);
    return t < 0 ? -1 : t + 1;
}

static const char *label_name(int y) { return y == 0 ? "O" : deid_type_name(y - 1); }

int deid_model_load(deid_model **out, const char *path, cf_err *err) {
    *out = NULL;
    struct stat st;
    if (stat(path, &st) != 0) return CF_OK; /* no model: the evidence layers alone */
    FILE *f = fopen(path, "rb");
    if (!f) return cf_fail_errno(err, CF_EINPUT, "%s: cannot open the de-identification model", path);
    deid_model *m = NULL;
    int rc = deid_model_new(&m, err);
    if (rc) {
        fclose(f);
        return rc;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    int ln = 0, have_magic = 0;
    while ((got = getline(&line, &cap, f)) >= 0) {
        ln++;
        size_t n = (size_t)got;
        while (n && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = 0;
        if (ln == 1) {
            if (strncmp(line, "# clinfm deid model 1", 21)) {
                rc = cf_fail(err, CF_EINPUT, "%s:1: not a clinfm de-identification model (expected \"# clinfm deid model 1\")", path);
                break;
            }
            have_magic = 1;
            continue;
        }
        if (n == 0 || line[0] == '#') continue;
        char *tab = strchr(line, '\t');
        if (!tab) {
            rc = cf_fail(err, CF_EINPUT, "%s:%d: expected \"name<TAB>values\"", path, ln);
            break;
        }
        *tab = 0;
        char *vals = tab + 1;
        float *thr = !strcmp(line, "@threshold")             ? &m->threshold
                     : !strcmp(line, "@threshold_bare")      ? &m->threshold_bare
                     : !strcmp(line, "@threshold_nopattern") ? &m->threshold_nopattern
                                                             : NULL;
        /* feature switches the model was fitted with, 0 or 1 */
        int *flag = !strcmp(line, "@one_case_context")   ? &m->one_case_context
                    : !strcmp(line, "@list_person_gate") ? &m->list_person_gate
                    : !strcmp(line, "@list_catalogue_test") ? &m->list_catalogue_test
                    : !strcmp(line, "@amp_firm_span") ? &m->amp_firm_span
                    : !strcmp(line, "@one_case_fields") ? &m->one_case_fields
                    : !strcmp(line, "@keep_unnamed") ? &m->keep_unnamed
                    : !strcmp(line, "@field_dates") ? &m->field_dates
                                                         : NULL;
        /* switches with levels: 0 to 2 (@nursing_shorthand 0 to 4) */
        int *level = !strcmp(line, "@one_case_cue")        ? &m->one_case_cue
                     : !strcmp(line, "@nursing_shorthand") ? &m->nursing_shorthand
                                                           : NULL;
        if (level) {
            int top = level == &m->nursing_shorthand ? 4 : 2;
            if (!(vals[0] >= '0' && vals[0] <= '0' + top && !vals[1])) {
                rc = cf_fail(err, CF_EINPUT, "%s:%d: %s must be 0 to %d", path, ln, line + 1, top);
                break;
            }
            *level = vals[0] - '0';
            continue;
        }
        if (flag) {
            if (strcmp(vals, "0") && strcmp(vals, "1")) {
                rc = cf_fail(err, CF_EINPUT, "%s:%d: %s must be 0 or 1", path, ln, line + 1);
                break;
            }
            *flag = vals[0] == '1';
            continue;
        }
        if (thr) {
            char *end;
            double v = strtod(vals, &end);
            if (end == vals || v <= 0 || v > 1) {
                rc = cf_fail(err, CF_EINPUT, "%s:%d: %s must be in (0, 1]", path, ln, line + 1);
                break;
            }
            *thr = (float)v;
            continue;
        }
        int is_trans = !strncmp(line, "@trans:", 7);
        int prev = -1;
        if (is_trans) {
            prev = label_from_name(line + 7, strlen(line + 7));
            if (prev < 0) {
                rc = cf_fail(err, CF_EINPUT, "%s:%d: unknown label in a transition row", path, ln);
                break;
            }
        }
        if (!is_trans && line[0] == '@') {
            /* the switches of candidates that were not adopted are gone from the code (docs/DEID.md,
               "Switches removed"): a model fitted with one is refused, not read without it */
            rc = cf_fail(err, CF_EINPUT, "%s:%d: unknown model switch %s: refit the model with this clinfm's deid-train",
                         path, ln, line);
            break;
        }
        float *row = NULL;
        if (!is_trans) {
            int64_t id = strmap_intern(&m->feats, line, strlen(line));
            if (id < 0) {
                rc = cf_fail(err, CF_EINTERNAL, "out of memory");
                break;
            }
            if ((uint32_t)id >= m->cap) {
                uint32_t nc = m->cap ? m->cap * 2 : 65536;
                float *nw = cf_realloc_array(m->w, (size_t)nc * DEID_NL, sizeof *nw);
                if (!nw) {
                    rc = cf_fail(err, CF_EINTERNAL, "out of memory");
                    break;
                }
                memset(nw + (size_t)m->cap * DEID_NL, 0, (size_t)(nc - m->cap) * DEID_NL * sizeof *nw);
                m->w = nw;
                m->cap = nc;
            }
            row = m->w + (size_t)id * DEID_NL;
        } else {
            row = m->trans + prev * DEID_NL;
        }
        /* "LABEL:weight LABEL:weight ..." */
        char *p = vals;
        while (*p && rc == CF_OK) {
            while (*p == ' ') p++;
            if (!*p) break;
            char *colon = strchr(p, ':');
            if (!colon) {
                rc = cf_fail(err, CF_EINPUT, "%s:%d: expected LABEL:weight", path, ln);
                break;
            }
            int y = label_from_name(p, (size_t)(colon - p));
            char *end;
            double wv = strtod(colon + 1, &end);
            if (y < 0 || end == colon + 1 || !isfinite(wv)) {
                rc = cf_fail(err, CF_EINPUT, "%s:%d: expected LABEL:weight with a known label and a number", path, ln);
                break;
            }
            row[y] = (float)wv;
            p = end;
        }
        if (rc) break;
    }
    free(line);
    if (!rc && ferror(f)) rc = cf_fail(err, CF_EINPUT, "%s: read error", path);
    if (!rc && !have_magic) rc = cf_fail(err, CF_EINPUT, "%s: empty model file", path);
    fclose(f);
    if (!rc) {
        /* the lookup index (see model_int.h) */
        size_t slots = 16;
        while (slots < (size_t)m->feats.count * 4 / 3 + 2) slots *= 2; /* load up to 3/4: half a megabyte for ~46k features */
        m->ix = cf_calloc_table(slots, sizeof *m->ix);
        if (!m->ix) rc = cf_fail(err, CF_EINTERNAL, "out of memory");
        m->ix_mask = slots - 1;
        size_t bits = 64;
        while (bits < (size_t)m->feats.count * 16) bits *= 2; /* 128 kB for ~46k features */
        m->have = rc ? NULL : cf_calloc(bits / 64, sizeof *m->have);
        if (!rc && !m->have) rc = cf_fail(err, CF_EINTERNAL, "out of memory");
        m->have_mask = bits - 1;
        /* names this model's weights for the threads' kind caches (thread_kind_cache) */
        static atomic_uint_fast64_t serials;
        m->serial = atomic_fetch_add(&serials, 1) + 1;
        for (uint32_t id = 0; !rc && id < m->feats.count; id++) {
            size_t nl;
            const char *nm = strmap_str(&m->feats, id, &nl);
            uint64_t h = deid__feature_hash(nm, nl);
            size_t j = h & m->ix_mask;
            while (m->ix[j]) j = (j + 1) & m->ix_mask;
            m->ix[j] = ((h >> 32) | 1) << 32 | id;
            size_t b = (h >> 33) & m->have_mask;
            m->have[b >> 6] |= 1ull << (b & 63);
        }
    }
    if (rc) {
        deid_model_free(m);
        return rc;
    }
    *out = m;
    return CF_OK;
}

typedef struct {
    char *b;
    size_t n, cap;
    int oom;
} sbuf;

static void sb_printf(sbuf *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#include <stdarg.h>
static void sb_printf(sbuf *s, const char *fmt, ...) {
    if (s->oom) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int k = vsnprintf(s->b ? s->b + s->n : NULL, s->b ? s->cap - s->n : 0, fmt, ap);
        va_end(ap);
        if (k < 0) {
            s->oom = 1;
            return;
        }
        if (s->b && s->n + (size_t)k < s->cap) {
            s->n += (size_t)k;
            return;
        }
        size_t nc = s->cap ? s->cap * 2 : 1 << 20;
        while (nc < s->n + (size_t)k + 1) nc *= 2;
        char *nb = realloc(s->b, nc);
        if (!nb) {
            s->oom = 1;
            return;
        }
        s->b = nb;
        s->cap = nc;
    }
}

int deid_model_save(const deid_model *m, const char *path, float prune, cf_err *err) {
    sbuf s = {0};
    sb_printf(&s, "# clinfm deid model 1\n");
    sb_printf(&s, "# A linear-chain CRF over words (docs/DEID.md, \"The model file\"). Written by clinfm deid-train;\n"
                  "# lines: FEATURE<TAB>LABEL:weight ..., @trans:PREV<TAB>LABEL:weight ..., @threshold<TAB>P(O) below\n"
                  "# which a word is PHI (@threshold_bare, @threshold_nopattern: the same for words with less\n"
                  "# evidence). Weights under %g in magnitude are left out.\n",
              (double)prune);
    sb_printf(&s, "@threshold\t%.4f\n", (double)m->threshold);
    if (m->threshold_bare > 0) sb_printf(&s, "@threshold_bare\t%.4f\n", (double)m->threshold_bare);
    if (m->threshold_nopattern > 0) sb_printf(&s, "@threshold_nopattern\t%.4f\n", (double)m->threshold_nopattern);
    if (m->one_case_context) sb_printf(&s, "@one_case_context\t1\n");
    if (m->list_person_gate) sb_printf(&s, "@list_person_gate\t1\n");
    if (m->list_catalogue_test) sb_printf(&s, "@list_catalogue_test\t1\n");
    if (m->amp_firm_span) sb_printf(&s, "@amp_firm_span\t1\n");
    if (m->one_case_fields) sb_printf(&s, "@one_case_fields\t1\n");
    if (m->keep_unnamed) sb_printf(&s, "@keep_unnamed\t1\n");
    if (m->one_case_cue) sb_printf(&s, "@one_case_cue\t%d\n", m->one_case_cue);
    if (m->field_dates) sb_printf(&s, "@field_dates\t1\n");
    if (m->nursing_shorthand) sb_printf(&s, "@nursing_shorthand\t%d\n", m->nursing_shorthand);
    for (int p = 0; p < DEID_NL; p++) {
        sb_printf(&s, "@trans:%s\t", label_name(p));
        for (int y = 0; y < DEID_NL; y++) sb_printf(&s, "%s%s:%.4g", y ? " " : "", label_name(y), (double)m->trans[p * DEID_NL + y]);
        sb_printf(&s, "\n");
    }
    for (uint32_t id = 0; id < m->feats.count; id++) {
        const float *row = m->w + (size_t)id * DEID_NL;
        int any = 0;
        for (int y = 0; y < DEID_NL; y++) any |= fabsf(row[y]) >= prune;
        if (!any) continue;
        size_t nl;
        const char *name = strmap_str(&m->feats, id, &nl);
        /* names hold no tab or newline (they are built from words, which hold neither) */
        sb_printf(&s, "%.*s\t", (int)nl, name);
        int first = 1;
        for (int y = 0; y < DEID_NL; y++) {
            if (fabsf(row[y]) < prune) continue;
            sb_printf(&s, "%s%s:%.3g", first ? "" : " ", label_name(y), (double)row[y]);
            first = 0;
        }
        sb_printf(&s, "\n");
    }
    if (s.oom) {
        free(s.b);
        return cf_fail(err, CF_EINTERNAL, "out of memory writing the model");
    }
    int rc = atomic_write_file(path, s.b, s.n, err);
    free(s.b);
    return rc;
}

int deid_rules_set_threshold(deid_text_rules *r, double p, cf_err *err) {
    if (!r || !r->model) return cf_fail(err, CF_EINPUT, "the rules folder has no model (model.tsv): no threshold to set");
    if (!(p > 0 && p <= 1)) return cf_fail(err, CF_EINPUT, "the threshold must be in (0, 1]");
    r->model->threshold = (float)p;
    return CF_OK;
}

/* ---- deid_find --------------------------------------------------------------------------- */

/* The end of a date span without the clock time after it ("10/19/2019 4:29 PM", "11/19 0530",
 * "2/18/05 10:30am"): a time of day is no date element under Safe Harbor, the annotated corpora
 * leave it out, and removing it costs the note a clinical fact (when a drug was given). Only a
 * time after a space or comma is cut, and only while a date with a digit stays before it; a
 * four-digit time only when the date already has its year or the number cannot be a year
 * ("0530"), so "11/19 2005" keeps its year. */
static int is_digit_c(char ch) { return ch >= '0' && ch <= '9'; }
size_t deid__date_trim_clock(const char *t, size_t s, size_t e) {
    for (;;) {
        size_t w = e;
        while (w > s && t[w - 1] != ' ' && t[w - 1] != ',' && t[w - 1] != '\t') w--;
        if (w <= s) return e;
        const char *p = t + w;
        size_t n = e - w, k = 0, nd = 0;
        if (n > 1 && p[n - 1] == '.') n--; /* "4:29 PM." at a sentence end, "P.M." */
        int clock = 0;
        int ap0 = (p[0] | 32) == 'a' || (p[0] | 32) == 'p';
        if (n == 2 && ap0 && (p[1] | 32) == 'm') clock = 1;
        else if (n == 3 && ap0 && p[1] == '.' && (p[2] | 32) == 'm') clock = 1;
        else {
            while (k < n && is_digit_c(p[k])) k++, nd++;
            int hh = nd >= 1 && nd <= 2 ? deid__digits_value(p, nd) : -1;
            if (nd >= 1 && nd <= 2 && hh <= 23 && k < n && p[k] == ':' && k + 3 <= n && is_digit_c(p[k + 1]) &&
                is_digit_c(p[k + 2]) && p[k + 1] <= '5') {
                k += 3;
                if (k + 3 <= n && p[k] == ':' && is_digit_c(p[k + 1]) && is_digit_c(p[k + 2])) k += 3;
                clock = 1;
            } else if (nd >= 1 && nd <= 2 && hh >= 1 && hh <= 12 && k < n) {
                clock = 2; /* "3pm" */
            } else if (nd == 4 && k == n) {
                int v = deid__digits_value(p, 4);
                if (v / 100 <= 23 && v % 100 <= 59) {
                    /* a year before it (three numbers in the date, or a month name and a year)? */
                    size_t groups = 0, q = s;
                    while (q < w) {
                        if (is_digit_c(t[q])) {
                            groups++;
                            while (q < w && is_digit_c(t[q])) q++;
                        } else q++;
                    }
                    if (p[0] == '0' || groups >= 3) clock = 3;
                }
            }
            if (clock == 1 || clock == 2) {
                if (clock == 2 && !(k + 2 == n && ((p[k] | 32) == 'a' || (p[k] | 32) == 'p') && (p[k + 1] | 32) == 'm'))
                    clock = 0;
                else if (clock == 1 && k < n) {
                    if (k + 2 == n && ((p[k] | 32) == 'a' || (p[k] | 32) == 'p') && (p[k + 1] | 32) == 'm') k = n;
                    else clock = 0;
                }
            }
        }
        if (!clock) return e;
        size_t ne = w;
        while (ne > s && (t[ne - 1] == ' ' || t[ne - 1] == ',' || t[ne - 1] == '\t')) ne--;
        /* a date with a digit must stay */
        int dig = 0;
        for (size_t q = s; q < ne && !dig; q++) dig = is_digit_c(t[q]);
        if (!dig) return e;
        e = ne;
    }
}

/* ---- the clinical keep filter (round 8) ----------------------------------------------------
 * After the model has labelled the words, a word it took as a name, place or organisation is
 * kept in the text when it is clinical vocabulary and the evidence for PHI is weak: no strong
 * cue (a title or name cue before it, MD/RN or Hospital after it, a listed name that is nothing
 * else beside it, a string the record knows). Clinical vocabulary is the clinical keep-list
 * (clinical_keep.txt), the clinical and medical word lists, and clinical_keep_post.txt, which
 * only this filter reads (multi-word entries such as "kerley b", "e coli", "sex m"). A word that
 * is also in the name or place lists ("Foley", "Swan", "Senna") needs clinical context too: a
 * clinical word or a number beside it on its line. Structured notation the model took for a
 * date is kept by shape: a half before a clinical word ("1/2 NS", "1/2NS"), a decimal between a
 * clinical word and a unit or frequency ("captopril 6.25 TID"); and a bare number of three digits
 * or fewer is no name or place alone. The rules and what each was measured against:
 * docs/DEID.md, Round 8. */
enum { KEEP_NO = 0, KEEP_WORD, KEEP_POST, KEEP_RUN, KEEP_NUMBER, KEEP_FRACTION, KEEP_DECIMAL, KEEP_FIELD, KEEP_SCORE, KEEP_VALUE,
       KEEP_HEADING, KEEP_SERVICE, KEEP_COUNT, KEEP_RANGE };
static const char *const KEEP_WHY[] = {"", "clinical word list entry", "clinical_keep_post.txt entry",
                                       "a word never a name alone (not_name) in a run with a kept clinical word",
                                       "a number alone is no name or place",
                                       "a fraction before a clinical word", "a decimal after a clinical word",
                                       "a field list's line with no cue or pattern for it",
                                       "a score after its scale's name (scores.txt)",
                                       "a value in a list of values that are no years",
                                       "a heading's word before its colon (fields.c)",
                                       "a clinical service after a clinician's name (fields.c)",
                                       "a count of culture bottles after the culture's date (fields.c)",
                                       "an ascending range of round numbers, no phone number"};

typedef struct {
    uint8_t why;
    int32_t lo, hi; /* words kept together */
    int32_t elo, ehi; /* words of the entry that kept them (may reach outside the run) */
} keepinfo;

static int same_line(const ctx *c, size_t j) { /* words j-1 and j on one line, close together */
    gapinfo g = deid__gap_info(c, j);
    return !g.nl && g.len <= 3 && !g.sentence;
}

static int gap_is(const ctx *c, size_t j, char ch) { /* exactly one character ch between j-1 and j */
    return j > 0 && j < c->nt && c->t[j].s == c->t[j - 1].e + 1 && c->text[c->t[j - 1].e] == ch;
}

/* "/" or ":" between words j-1 and j, after a dot or not ("AB/cd", "S.B./SB", "T.K.:VF") */
static int initials_gap(const ctx *c, size_t j) {
    if (j == 0 || j >= c->nt) return 0;
    size_t g0 = c->t[j - 1].e, g1 = c->t[j].s;
    if (g1 - g0 == 2 && c->text[g0] == '.') g0++;
    return g1 - g0 == 1 && (c->text[g0] == '/' || c->text[g0] == ':');
}

#define KEEP_NAMES (F_FIRST | F_LAST | F_PLACE | F_REGION)
/* above these P(PHI) the model's evidence is not weak: a list word stays removed */
#define KEEP_MAX_P 0.95f
#define KEEP_MAX_P_KEEP 0.99f /* the ICU keep-list (clinical_keep.txt) */
#define KEEP_MAX_P_NAMED 0.50f /* round 9: 0.70 until round 8 */
/* clinical vocabulary in the model's lists */
static int keep_word(const tok *t) {
    /* the keep-list, and medical words that are no common English word ("dysuria", "intubate"):
       the medical lists also hold common words ("rich", "star", "grant") that name people */
    return (t->f & F_KEEP) || ((t->f & F_MEDICAL) && !(t->f & (F_ENGLISH | F_NOT_NAME)) && !t->clin_shape);
}

/* The longest clinical_keep_post.txt entry covering word i: 1 with its words in [*lo, *hi]. */
static int post_entry(const ctx *c, size_t i, size_t *lo, size_t *hi) {
    const deid_text_rules *r = c->r;
    int maxw = r->keep_post_max_words;
    if (maxw <= 0) return 0;
    int found = 0;
    size_t a0 = i + 1 > (size_t)maxw ? i + 1 - (size_t)maxw : 0;
    for (size_t a = a0; a <= i; a++) {
        int ok = 1;
        for (size_t q = a + 1; q <= i && ok; q++) ok = same_line(c, q);
        if (!ok) continue;
        char key[256];
        size_t kl = 0;
        for (size_t b = a; b < c->nt && (int)(b - a) < maxw; b++) {
            if (b > a && !same_line(c, b)) break;
            if (kl + 1 + (c->t[b].e - c->t[b].s) * 2 >= sizeof key) break;
            if (b > a) key[kl++] = ' ';
            size_t wl = deid_lower(c->text + c->t[b].s, c->t[b].e - c->t[b].s, key + kl, sizeof key - kl);
            if (wl == (size_t)-1) break;
            kl += wl;
            if (b >= i && strmap_find(&r->keep_post, key, kl) >= 0 && (!found || b - a > *hi - *lo)) {
                *lo = a;
                *hi = b;
                found = 1;
            }
        }
    }
    return found;
}

/* A word that shows the run is a name, place or organisation whatever its clinical words. */
static int strong_word(const tok *t) {
    if (t->known >= 0) return 1;
    if (t->f & (F_ORG_AFTER | F_STREET | F_PLACE_WORD | F_TITLE)) return 1;
    if (t->shape0 == SH_INITIAL || t->nletters < 2) return 0;
    if ((t->f & (F_FIRST | F_LAST)) && !(t->f & (F_ENGLISH | F_MEDICAL | F_STOP | F_NOT_NAME))) return 1;
    return t->oov && t->nletters >= 3;
}

static int is_name_type(int y) { return y == DEID_NAME || y == DEID_LOCATION || y == DEID_ORGANIZATION; }

/* The run [a, b] of words labelled y has a strong cue outside the words [lo, hi] of the entry
 * that would keep it (an entry may reach outside the run: "PA Line", "APACHE II"). unnamed
 * (round 19, @keep_unnamed): the entry is in no name or place list, so the cues that only a name's
 * shape gives do not count: a credential or suffix after the run ("heparin IV", "APACHE II", an
 * upper-cased "(DO NOT CRUSH)" read as D.O.) and the run alone on its line (a drug list has one
 * drug a line; a signature is a name). */
static int strong_cue(const ctx *c, const int8_t *lab, const uint8_t *evd, size_t a, size_t b, size_t lo,
                      size_t hi, int unnamed) {
    const deid_flags before = F_TITLE | F_NAME_IS | F_KIN | F_NAME_BEFORE | F_PRONOUN | F_ORG_BEFORE |
                              F_PLACE_BEFORE | F_ADDR_BEFORE;
    for (size_t q = a; q <= b; q++) {
        if (c->t[q].known >= 0 || ((evd[q] >> DEID_SRC_KNOWN) & 1)) return 1;
        if ((q < lo || q > hi) && strong_word(&c->t[q])) return 1;
    }
    /* a cue before the run, or a role written before the name ("RN Dina", "NP DANA") */
    if (a > 0 && a - 1 < lo) {
        gapinfo g = deid__gap_info(c, a);
        deid_flags cb = c->t[a - 1].cue_end & (before | F_NAME_AFTER);
        /* across a full stop only a title cues ("Dr. Foley"; not "net -7550 cc. Cr rose") */
        if (!g.nl && cb && (!g.period || (cb & F_TITLE))) return 1;
        /* a weak cue with a colon is a signature field ("By: BP", "Per: SW") */
        if (!g.nl && g.colon && (c->t[a - 1].cue_end & F_NAME_WEAK)) return 1;
    }
    if (b + 1 < c->nt && b + 1 > hi && !deid__gap_info(c, b + 1).nl &&
        (c->t[b + 1].start & (unnamed ? F_ORG_AFTER : F_NAME_AFTER | F_ORG_AFTER)))
        return 1;
    /* initials joined by a slash or colon to other initials ("TF/JT", "CS:ab", "KG/A.H."): a
       transcriptionist's signature */
    for (size_t q = a; q <= b; q++) {
        if (c->t[q].nletters > 3) continue;
        if (q > 0 && initials_gap(c, q) && c->t[q - 1].nletters <= 3 &&
            c->t[q - 1].nletters == c->t[q - 1].e - c->t[q - 1].s)
            return 1;
        if (q + 1 < c->nt && initials_gap(c, q + 1) && c->t[q + 1].nletters <= 3 &&
            c->t[q + 1].nletters == c->t[q + 1].e - c->t[q + 1].s)
            return 1;
    }
    /* a place with a number in it is a ward and its floor ("Kessler 4", "JN 7") */
    if (lab[a] == DEID_LOCATION)
        for (size_t q = a; q <= b; q++)
            if (c->t[q].shape0 == SH_NUM && (q < lo || q > hi)) return 1;
    /* a line of its own holding only the run: a signature ("Chip", "Rich") */
    if (!unnamed && (a == 0 || deid__gap_info(c, a).nl) && (b + 1 >= c->nt || deid__gap_info(c, b + 1).nl)) return 1;
    /* a listed name next to the run, across a comma or an initial ("Foley, John") */
    for (size_t q = a >= 2 ? a - 2 : 0; q < a; q++)
        if (lab[q] >= 0 && is_name_type(lab[q]) && strong_word(&c->t[q]) && same_line(c, q + 1)) return 1;
    for (size_t q = b + 1; q < c->nt && q <= b + 2; q++)
        if (lab[q] >= 0 && is_name_type(lab[q]) && strong_word(&c->t[q]) && same_line(c, b + 1)) return 1;
    return 0;
}

/* Whether words [a, b] (one line) spell an entry of a filter-only phrase list (keep_roles.txt,
 * keep_name_verbs.txt): lower-cased, words joined by one space. */
static int phrase_is(const ctx *c, const strmap *m, size_t a, size_t b) {
    char key[256];
    size_t kl = 0;
    for (size_t q = a; q <= b; q++) {
        if (q >= c->nt || (q > a && !same_line(c, q))) return 0;
        if (kl + 1 + (c->t[q].e - c->t[q].s) * 2 >= sizeof key) return 0;
        if (q > a) key[kl++] = ' ';
        size_t wl = deid_lower(c->text + c->t[q].s, c->t[q].e - c->t[q].s, key + kl, sizeof key - kl);
        if (wl == (size_t)-1) return 0;
        kl += wl;
    }
    return strmap_find(m, key, kl) >= 0;
}

/* The longest entry of m (of at most maxw words) ending at word j: its first word, or -1. */
static long phrase_ending_at(const ctx *c, const strmap *m, int maxw, size_t j) {
    for (int n = maxw; n >= 1; n--)
        if ((size_t)n <= j + 1 && phrase_is(c, m, j + 1 - (size_t)n, j)) return (long)(j + 1 - (size_t)n);
    return -1;
}

/* The number of words of the longest entry of m (of at most maxw words) starting at word j, or 0. */
static int phrase_starting_at(const ctx *c, const strmap *m, int maxw, size_t j) {
    for (int n = maxw; n >= 1; n--)
        if (j + (size_t)n <= c->nt && phrase_is(c, m, j, j + (size_t)n - 1)) return n;
    return 0;
}

/* A keep_roles.txt entry ("sw", "night float", "h.o.") ending at word j: its first word, or -1. */
static long role_ending_at(const ctx *c, size_t j) {
    return phrase_ending_at(c, &c->r->keep_roles, c->r->keep_roles_max_words, j);
}

/* A keep_name_verbs.txt entry ("aware", "paged", "at bedside") starting at word j. */
static int verb_starting_at(const ctx *c, size_t j) {
    return phrase_starting_at(c, &c->r->keep_verbs, c->r->keep_verbs_max_words, j) > 0;
}

/* The end of a sentence between words z-1 and z: a line break, or a full stop and spaces after
 * a word of two letters or more ("EQUAL. ACK aware": the sentence before says nothing of the
 * word; "e.g., allergy" and "H.O. Bono" are no sentence ends; a ";" is not one either: "(e.g.,
 * pga; 5-point scale)"). */
static int clause_break(const ctx *c, size_t z) {
    gapinfo g = deid__gap_info(c, z);
    if (g.nl) return 1;
    return g.period == 1 && !g.comma && !g.colon && !g.other && !g.amp && g.len >= 2 &&
           c->text[c->t[z - 1].e] == '.' && c->t[z - 1].nletters >= 2;
}

/* Clinical context: a clinical word that is no name, a number, a unit; loose: any medical word
 * that is no name, common ones too ("neg"). A care role ("PCA", "SW") is none: it names the
 * person after it. */
static int context_word(const ctx *c, size_t q, int loose) {
    const tok *t = &c->t[q];
    if (t->f & KEEP_NAMES) return 0;
    if (role_ending_at(c, q) >= 0 || verb_starting_at(c, q)) return 0;
    return keep_word(t) || (loose && (t->f & F_MEDICAL)) || t->shape0 == SH_NUM || t->shape0 == SH_ALNUM ||
           (t->f & F_MEASURE);
}

/* A clinical word or a number within two words of [lo, hi] in its clause (round 9: no longer
 * across a full stop, and a clock time before the word does not count). */
static int clinical_context(const ctx *c, size_t lo, size_t hi, int loose) {
    for (size_t q = lo >= 2 ? lo - 2 : 0; q < lo; q++) {
        int ok = 1;
        for (size_t z = q + 1; z <= lo && ok; z++) ok = !clause_break(c, z);
        if (ok && !clock_time(c, q) && context_word(c, q, loose)) return 1;
    }
    for (size_t q = hi + 1; q < c->nt && q <= hi + 2; q++) {
        int ok = 1;
        for (size_t z = hi + 1; z <= q && ok; z++) ok = !clause_break(c, z);
        if (ok && context_word(c, q, loose)) return 1;
    }
    return 0;
}

/* Word i is part of notation the model took for a date: returns the reason and the words. */
static int keep_numeric(const ctx *c, size_t i, size_t *lo, size_t *hi) {
    const tok *t = c->t;
    if (t[i].shape0 != SH_NUM) return KEEP_NO;
    for (int side = 0; side < 2; side++) {
        size_t x = side ? i - 1 : i, y = x + 1;
        if ((side && i == 0) || y >= c->nt || t[y].shape0 != SH_NUM) continue;
        /* "1/2 NS", "1/2NS", "1/2 tab": a half, not inside a chain, before a clinical word or
           unit, and not after one ("ECHO 1/2 EF 25%" is a date) */
        if (gap_is(c, y, '/') && t[x].e - t[x].s == 1 && t[y].e - t[y].s == 1 && !gap_is(c, x, '/') &&
            !gap_is(c, x, '-') && !(y + 1 < c->nt && gap_is(c, y + 1, '/'))) {
            int n = c->text[t[x].s] - '0', d = c->text[t[y].s] - '0';
            int after_clin =
                x > 0 && deid__gap_info(c, x).space_only && (keep_word(&t[x - 1]) || (t[x - 1].f & F_MEDICAL));
            if (n == 1 && d == 2 && !after_clin && y + 1 < c->nt && t[y + 1].s - t[y].e <= 1 &&
                t[y + 1].nletters >= 2 &&
                (t[y + 1].s == t[y].e || c->text[t[y].e] == ' ') &&
                (t[y + 1].s == t[y].e ? t[y + 1].shape0 != SH_NUM
                                     : (keep_word(&t[y + 1]) || (t[y + 1].f & F_MEASURE)) != 0)) {
                *lo = x;
                *hi = y;
                return KEEP_FRACTION;
            }
        }
        /* "tot fluids 800-1000", "goal 1500-2000": two multiples of 100 joined by a hyphen, the
           second larger, are a range; a phone number's line group is not both round and larger
           than its exchange. Not inside a longer chain, nor after an area code or a phone cue
           ("call 800-1000") */
        if (gap_is(c, y, '-') && !gap_is(c, x, '-') && !gap_is(c, x, '/') && !gap_is(c, x, '.') &&
            !(y + 1 < c->nt && t[y + 1].s == t[y].e + 1 && t[y + 1].shape0 == SH_NUM)) {
            long va = num_value(c, x), vb = num_value(c, y);
            int after_num = x > 0 && t[x - 1].shape0 == SH_NUM && same_line(c, x) && t[x].s - t[x - 1].e <= 3;
            deid_flags pc = c->r->phone_cue;
            int cue = pc && ((x > 0 && (t[x - 1].cue_end & pc)) || (x > 1 && (t[x - 2].cue_end & pc)));
            if (va > 0 && vb > va && va % 100 == 0 && vb % 100 == 0 && !after_num && !cue) {
                *lo = x;
                *hi = y;
                return KEEP_RANGE;
            }
        }
        /* "captopril 6.25", "trough 7.4": a decimal after a clinical word that is no name */
        if (gap_is(c, y, '.') && !gap_is(c, x, '.') && !gap_is(c, x, '/') && !gap_is(c, x, '-') &&
            !(y + 1 < c->nt && (gap_is(c, y + 1, '.') || gap_is(c, y + 1, '/') || gap_is(c, y + 1, '-'))) &&
            x > 0 && !deid__gap_info(c, x).nl && deid__gap_info(c, x).space_only &&
            keep_word(&t[x - 1]) && !(t[x - 1].f & (KEEP_NAMES | F_MONTH | F_WEEKDAY)) &&
            t[x - 1].shape0 != SH_NUM &&
            y + 1 < c->nt && !deid__gap_info(c, y + 1).nl &&
            (deid__gap_info(c, y + 1).space_only || t[y + 1].s == t[y].e) &&
            (t[y + 1].f & (F_MEASURE | F_KEEP)) && t[y + 1].shape0 != SH_NUM && t[y + 1].nletters >= 2) {
            *lo = x;
            *hi = y;
            return KEEP_DECIMAL;
        }
    }
    return KEEP_NO;
}

/* A number joined to another by one punctuation mark ("53-320", "4/5", "7.4"): a code or a value
 * pair, never "a number alone". */
static int joined_number(const ctx *c, size_t q) {
    if (q > 0 && c->t[q - 1].shape0 == SH_NUM && c->t[q].s == c->t[q - 1].e + 1) return 1;
    if (q + 1 < c->nt && c->t[q + 1].shape0 == SH_NUM && c->t[q + 1].s == c->t[q].e + 1) return 1;
    return 0;
}

/* A word that may be part of a person's name the model left out ("covering MD Lucja Gemma"):
 * a listed name that is no clinical word, or an unlisted word of two letters or more. */
static int name_like(const tok *t) {
    if (keep_word(t) || (t->f & (F_STOP | F_NOT_NAME | F_ENGLISH)) || t->shape0 == SH_NUM) return 0;
    return (t->f & (F_FIRST | F_LAST)) || (t->oov && t->nletters >= 2);
}

/* Whether the words [elo, ehi] that would be kept, in the run [a, b] labelled y, stand where a
 * person's name or a place stands (round 9): after a care role ("SW", "PCA", "night float"),
 * or a title or name cue with one name-like word between ("covering MD Lucja Gemma"); after an
 * initial ("A. Babinski"); before a charting verb ("Gaba aware", "Bono paged") or a relation in
 * parentheses ("Ara (HCP)", "Lua (dtr)"); before a floor number the model also took ("VEA 8": a
 * ward); a listed place after "in", "from", "at" taken as a place ("VNA in Coria"). The role,
 * verb and place rules need a word that is also a listed name or place (named); the role rule
 * also takes a word that is not in the ICU keep-list ("PCA dilaudid" stays). */
static int name_shaped(const ctx *c, const int8_t *lab, int y, size_t a, size_t b, size_t elo, size_t ehi,
                       int named) {
    size_t first = a < elo ? a : elo, last = b > ehi ? b : ehi;
    int all_keep = 1;
    for (size_t z = elo; z <= ehi; z++) all_keep &= (c->t[z].f & F_KEEP) != 0;
    const deid_flags cues = F_TITLE | F_NAME_BEFORE | F_NAME_IS | F_KIN | F_NAME_AFTER;
    /* round 11: right after a given name the model took in the same run ("John Foley, pts
       son"), the kept word would be that person's family name: a listed given name that is no
       clinical, stop or never-a-name word, and no common word either unless it is written with
       a capital inside a sentence of a mixed-case note ("john" is also a common word) */
    if (y == DEID_NAME && named && elo > a && same_line(c, elo) && deid__gap_info(c, elo).space_only) {
        const tok *g = &c->t[elo - 1];
        if ((g->f & F_FIRST) && !keep_word(g) && g->nletters >= 2 &&
            !(g->f & (F_MEDICAL | F_NOT_NAME | F_STOP | F_KEEP)) &&
            (!(g->f & F_ENGLISH) || (g->shape0 == SH_CAP && !g->sent && !c->upper_doc && !c->lower_doc)))
            return 1;
    }
    if (first > 0 && same_line(c, first)) {
        size_t p = first - 1;
        for (int hop = 0; hop < 2; hop++) {
            long r0 = (named || !all_keep) ? role_ending_at(c, p) : -1;
            /* "2 cm": a number before the role word makes it a unit */
            if (r0 >= 0 && !(r0 > 0 && c->t[r0 - 1].shape0 == SH_NUM && same_line(c, (size_t)r0))) return 1;
            if (hop && (c->t[p].cue_end & cues)) return 1;
            /* one name-like word between ("MD Lucja [Gemma]") */
            if (hop || p == 0 || !same_line(c, p) || !name_like(&c->t[p])) break;
            p--;
        }
        p = first - 1;
        /* an initial: one capital letter and a full stop ("A. Babinski"), not after a clinical
           word ("vitamin K. Foley") nor the end of a dotted abbreviation ("E.G., NSAIDS") */
        const tok *t = &c->t[p];
        size_t plo, phi;
        if (t->nletters == 1 && t->e - t->s == 1 && c->text[t->s] >= 'A' && c->text[t->s] <= 'Z' && t->e < c->len &&
            c->text[t->e] == '.' && !(p > 0 && same_line(c, p) && keep_word(&c->t[p - 1])) &&
            !post_entry(c, p, &plo, &phi))
            return 1;
        /* a listed place after "in", "from", "at" */
        if (named && y == DEID_LOCATION && (c->t[p].cue_end & F_PLACE_WEAK)) {
            int place = 0;
            for (size_t z = elo; z <= ehi; z++) place |= (c->t[z].f & (F_PLACE | F_REGION)) != 0;
            if (place) return 1;
        }
    }
    if (last + 1 < c->nt && !deid__gap_info(c, last + 1).nl) {
        size_t q = last + 1;
        gapinfo g = deid__gap_info(c, q);
        if (named && !clause_break(c, q) && !g.comma && verb_starting_at(c, q)) return 1;
        /* "(dtr)", "(HCP)", "(brother)" */
        if (c->text[c->t[q].s - 1] == '(' && g.len <= 2 &&
            (((c->t[q].f | c->t[q].start) & F_KIN) || role_ending_at(c, q) >= 0))
            return 1;
        /* "VEA 8", "LUE 7": a ward and its floor, when the model took the number too, or the
           word is also a listed name or place after "to", "on", "from" ("transfer to VEA 8";
           "to PS 10", "on levo 8" are no listed names) */
        if (g.space_only && c->t[q].shape0 == SH_NUM && c->t[q].e - c->t[q].s <= 2 &&
            ((lab[q] >= 0 && is_name_type(lab[q])) ||
             (named && y != DEID_NAME && first > 0 && same_line(c, first) &&
              (c->t[first - 1].cue_end & (F_PLACE_WEAK | F_PLACE_BEFORE)))))
            return 1;
    }
    return 0;
}

/* A word the model left is never taken for a person's name by the rules below (slot names, and
 * the one-case and mixed-case names) when it, its line start or a cue ending at it carries one of
 * these: stop, cue, unit, calendar, place, organisation and keep words speak for something else.
 * SLOT_BAD is the slot rules' set; the one-case and mixed-case name rules also
 * refuse a word with an organisation cue after it, a street word or a place word. */
#define SLOT_BAD                                                                                                     \
    (F_STOP | F_MEASURE | F_MONTH | F_WEEKDAY | F_TITLE | F_UNIT | F_PRONOUN | F_NAME_BEFORE | F_NAME_IS |            \
     F_PLACE_BEFORE | F_PLACE_WEAK | F_ORG_BEFORE | F_ADDR_BEFORE | F_NAME_WEAK | F_NAME_AFTER | F_KIN | F_KEEP |      \
     F_EPONYM | F_DRUG_BEFORE | F_STATE_ABBR)
#define NOT_A_LEFT_NAME (SLOT_BAD | F_ORG_AFTER | F_STREET | F_PLACE_WORD)

/* Round 9, one-case notes: a word the model left, where a person's name stands, is a name. An
 * all-caps or all-lower-case note has no capitals to tell "son Sung-Min" or "SW Deacon" from
 * charting, and the model misses such names more there than in mixed case. Evidence before: a
 * kinship word or a care role (keep_roles.txt) right before; after: a charting verb
 * (keep_name_verbs.txt: "aware", "paged") or a relation in parentheses ("(nephew)"). A listed
 * name that is no common or clinical word needs one of them; a word in no list a kinship word
 * before or the evidence after (after a role it is as often shorthand: "OT eval", "RN obs"); a
 * given name that is also a common word ("will", "amber") evidence on both sides. Never a cue,
 * stop, clinical or measure word, a number, a month or a weekday. */
static void one_case_names(const ctx *c, int8_t *lab) {
    if (!c->lower_doc && !c->upper_doc) return;
    const deid_flags bad = NOT_A_LEFT_NAME;
    for (size_t i = 1; i < c->nt; i++) {
        const tok *t = &c->t[i];
        if (lab[i] >= 0 || t->nletters < 2 || t->shape0 == SH_NUM || t->shape0 == SH_ALNUM) continue;
        if (((t->f | t->start | t->cue_end) & bad) || keep_word(t) || t->clin_shape) continue;
        if (role_ending_at(c, i) >= 0 || verb_starting_at(c, i)) continue;
        int listed = (t->f & (F_FIRST | F_LAST)) != 0;
        int common = (t->f & (F_ENGLISH | F_MEDICAL | F_NOT_NAME)) != 0;
        int strong = (t->oov && !common) || (listed && !common);
        int weak = listed && common && (t->f & F_FIRST);
        if (!strong && !weak) continue;
        int kin = 0, role = 0, after = 0;
        gapinfo g = deid__gap_info(c, i);
        if (!g.nl && g.space_only) {
            kin = (c->t[i - 1].cue_end & F_KIN) != 0;
            role = role_ending_at(c, i - 1) >= 0;
        }
        if (i + 1 < c->nt) {
            gapinfo h = deid__gap_info(c, i + 1);
            if (!h.nl && h.space_only && verb_starting_at(c, i + 1)) after = 1;
            if (!h.nl && h.len <= 2 && c->text[c->t[i + 1].s - 1] == '(' &&
                (((c->t[i + 1].f | c->t[i + 1].start) & F_KIN) || role_ending_at(c, i + 1) >= 0))
                after = 1;
        }
        /* an unlisted word after a role is as often shorthand ("OT eval", "RN obs") */
        /* round 10: a clause that opens with the name and a charting verb ("..., AMBER AWARE") */
        int opens = g.nl || g.comma || g.period || g.sentence;
        int take = listed && !common ? kin || role || after : strong ? kin || after : (kin || role || opens) && after;
        if (take) lab[i] = DEID_NAME;
    }
}

/* Word j is "in" (a town follows an address: "... pl in brockton"). */
static int is_in_word(const ctx *c, size_t j) {
    return c->t[j].e - c->t[j].s == 2 && (c->text[c->t[j].s] | 32) == 'i' && (c->text[c->t[j].s + 1] | 32) == 'n';
}

/* Round 9, one-case notes: a house number, one to three words and a street word after "at", "on",
 * "to", "from" or an address cue, ending the clause ("lived alone at 146 maple pl in ...", "AT
 * 12 OLD MILL RD,") is a street address. In mixed case the capitals and the evidence layers find
 * these; in one case a stop word ("old") or a cue with a word inside ("lived alone at") stopped
 * them. Never with a clinical, measure or unit word among the words, nor a number joined to
 * another ("2/3"). */
static void one_case_addresses(const ctx *c, int8_t *lab) {
    if (!c->lower_doc && !c->upper_doc) return;
    for (size_t i = 1; i + 2 < c->nt; i++) {
        const tok *t = &c->t[i];
        if (t->shape0 != SH_NUM || t->e - t->s > 5 || joined_number(c, i)) continue;
        if (!same_line(c, i) || !deid__gap_info(c, i).space_only) continue;
        if (!(c->t[i - 1].cue_end & (F_PLACE_WEAK | F_ADDR_BEFORE | F_PLACE_BEFORE))) continue;
        size_t k = 0;
        for (size_t j = i + 1; j < c->nt && j <= i + 4; j++) {
            const tok *u = &c->t[j];
            if (!deid__gap_info(c, j).space_only || u->nletters < 2 || u->shape0 == SH_NUM || u->shape0 == SH_ALNUM)
                break;
            if (keep_word(u) || (u->f & (F_MEASURE | F_UNIT | F_PLACE_WEAK | F_NAME_WEAK | F_MONTH | F_WEEKDAY)))
                break;
            if (j > i + 1 && (u->f & F_STREET)) {
                k = j;
                break;
            }
        }
        if (!k) continue;
        /* street words in a row ("old mill rd": "mill" is one too) */
        while (k + 1 < c->nt && deid__gap_info(c, k + 1).space_only && (c->t[k + 1].f & F_STREET) &&
               c->t[k + 1].nletters >= 2 && !keep_word(&c->t[k + 1]))
            k++;
        /* the clause ends after the street word, or a unit, a town or a ZIP code follows */
        size_t end = k;
        int ok = k + 1 >= c->nt;
        if (!ok) {
            gapinfo g = deid__gap_info(c, k + 1);
            const tok *n = &c->t[k + 1];
            ok = g.nl || g.comma || g.period || (g.space_only && (is_in_word(c, k + 1) || n->shape0 == SH_NUM));
            if (g.space_only && (n->f & F_UNIT) && k + 2 < c->nt && deid__gap_info(c, k + 2).space_only &&
                (c->t[k + 2].shape0 == SH_NUM || c->t[k + 2].shape0 == SH_ALNUM || c->t[k + 2].nletters == 1)) {
                ok = 1;
                end = k + 2;
            }
        }
        if (!ok) continue;
        for (size_t q = i; q <= end; q++)
            if (lab[q] < 0 || is_name_type(lab[q])) lab[q] = DEID_ADDRESS;
        i = end;
    }
}

/* ---- round 10: slots a line's structure gives an identifier --------------------------------
 * After the model and the keep filter, in every casing: words the model left where the shape of
 * the line says an identifier stands (slots.tsv names the openers; docs/DEID.md, "Round 10
 * (recall)"). These slots were what the model missed on real notes in every casing alike: the
 * generator had never written them, so no weight was learned for them. Each rule needs its
 * opener and a closing shape, and never takes a clinical, stop, cue, measure or unit word. */

/* A slots.tsv phrase of kind k ending at word j (its first word), or -1. */
static long slot_ending_at(const ctx *c, int k, size_t j) {
    if (!(c->r->slots_last[k] & deid__slot_letter_bit(c->text[c->t[j].s]))) return -1;
    return phrase_ending_at(c, &c->r->slots[k], c->r->slots_max_words[k], j);
}

/* The number of words of a slots.tsv phrase of kind k starting at word j, or 0. */
static int slot_starting_at(const ctx *c, int k, size_t j) {
    if (!(c->r->slots_first[k] & deid__slot_letter_bit(c->text[c->t[j].s]))) return 0;
    return phrase_starting_at(c, &c->r->slots[k], c->r->slots_max_words[k], j);
}

/* Word i may be a person's name in a slot: letters, no clinical, stop, cue, measure or unit
 * word; a listed given or family name (common words too: "Faith", "Ray"), a word in no list,
 * or in a mixed-case note a capitalised word that does not open its line. */
static int slot_name_word(const ctx *c, size_t i, int cont) {
    const tok *t = &c->t[i];
    if (t->nletters < 2 || t->shape0 == SH_NUM || t->shape0 == SH_ALNUM) return 0;
    if (((t->f | t->start | t->cue_end) & SLOT_BAD) || keep_word(t) || t->clin_shape) return 0;
    if (slot_starting_at(c, DEID_SLOT_ABOUT, i) || slot_starting_at(c, DEID_SLOT_MESSAGE, i)) return 0;
    if (t->f & (F_FIRST | F_LAST)) return 1;
    if (t->oov) return 1;
    /* a second word after a name word may be a family name that is a common word ("Lamb") */
    if (cont) return !(t->f & F_MEDICAL) || (t->f & F_ENGLISH);
    /* in mixed case a capital, where no line or sentence opens (the slot's opener is before it) */
    return !c->lower_doc && !c->upper_doc && t->shape0 == SH_CAP && !deid__gap_info(c, i).nl;
}

/* What separates word j-1 from word j, spaces left out: "" (spaces only), "-", ":", "," ... */
static int gap_mark(const ctx *c, size_t j, char *mark, size_t cap) {
    size_t a = c->t[j - 1].e, b = c->t[j].s, n = 0;
    for (size_t q = a; q < b; q++) {
        char ch = c->text[q];
        if (ch == ' ' || ch == '\t') continue;
        if (n + 1 >= cap) return 0;
        mark[n++] = ch;
    }
    mark[n] = 0;
    return 1;
}

/* The run of words ending at z closes where the slot ends: the text's end, a line break, a
 * comma, colon, semicolon, full stop, dash, slash or bracket. */
static int slot_closes(const ctx *c, size_t z) {
    if (z + 1 >= c->nt) return 1;
    gapinfo g = deid__gap_info(c, z + 1);
    if (g.nl || g.comma || g.colon || g.sentence || g.period) return 1;
    char m[8];
    if (!gap_mark(c, z + 1, m, sizeof m)) return 1;
    return m[0] == '-' || m[0] == '/' || m[0] == '(' || m[0] == ')';
}

/* One to three name words from word j (slot_name_word), closed where the slot ends: the run's
 * last word, or -1. */
static long slot_name_run(const ctx *c, size_t j) {
    if (!slot_name_word(c, j, 0)) return -1;
    size_t z = j;
    while (z + 1 < c->nt && z + 1 < j + 3 && deid__gap_info(c, z + 1).space_only && slot_name_word(c, z + 1, 1)) z++;
    return slot_closes(c, z) ? (long)z : -1;
}

/* "call from son (Ned) re Faith, ...", "VM from dtr re: MR DUBOIS -": one to three name words
 * after "re"/"regarding" on a line that holds a message word before it, closed by punctuation. */
static void slot_message(const ctx *c, int8_t *lab, size_t i) {
    if (i == 0 || i + 1 >= c->nt || c->t[i].nletters < 2 || c->t[i].shape0 == SH_NUM || lab[i + 1] >= 0) return;
    int n = slot_starting_at(c, DEID_SLOT_ABOUT, i);
    if (!n) return;
    int msg = 0;
    for (size_t q = i; q > 0 && !msg && i - q < 14; q--) {
        if (deid__gap_info(c, q).nl) break;
        msg = slot_ending_at(c, DEID_SLOT_MESSAGE, q - 1) >= 0;
    }
    if (!msg) return;
    size_t j = i + (size_t)n;
    if (j >= c->nt || deid__gap_info(c, j).nl) return;
    char m[8];
    if (!gap_mark(c, j, m, sizeof m) || (m[0] && strcmp(m, ":"))) return;
    if (c->t[j].cue_end & F_TITLE) { /* "re Mrs Dubois": the model reads the title; the name may follow */
        j++;
        if (j >= c->nt || !same_line(c, j)) return;
    }
    long z = slot_name_run(c, j);
    if (z < 0) return;
    for (size_t q = j; q <= (size_t)z; q++)
        if (lab[q] < 0) lab[q] = DEID_NAME;
}

/* "quit 1987", "quit etoh 2003", "PSH: TKR R 1988", "dx'd 2004": a year-shaped number (1930 to
 * 2029) after a history word of slots.tsv at most three words before it in its clause, the words
 * between no numbers; not joined to another number, not before a unit. */
static void slot_year(const ctx *c, int8_t *lab, size_t i) {
    const tok *t = &c->t[i];
    if (lab[i] >= 0 || t->shape0 != SH_NUM || t->e - t->s != 4 || joined_number(c, i) || i == 0) return;
    long v = num_value(c, i);
    if (v < 1930 || v > 2029) return;
    if (i + 1 < c->nt && same_line(c, i + 1) && (c->t[i + 1].f & (F_MEASURE | F_UNIT))) return;
    for (size_t p = i; p > 0 && i - p < 4; p--) {
        size_t q = p - 1;
        if (clause_break(c, p) || deid__gap_info(c, p).nl) return;
        if (q + 1 < i && (c->t[q + 1].shape0 == SH_NUM || (c->t[q + 1].f & (F_MEASURE | F_UNIT)))) return;
        if (slot_ending_at(c, DEID_SLOT_YEAR, q) >= 0) {
            lab[i] = DEID_DATE;
            return;
        }
    }
}

/* "Disposition: rehab - Maple Terrace", "Dispo: SNF - Willow Glen Nursing and Rehab": after a
 * disposition word and a dash or colon, a run of name and facility words to the clause's end or
 * a lower-case verb. It needs a word that is no facility word and, in a mixed-case note, capitals
 * on every such word; in one case a listed name or place that is no clinical word, a word in no
 * list, or a facility suffix after a common word ("maple terrace"; "bed offer pending" is none). */
static void slot_dispo(const ctx *c, int8_t *lab, size_t p) {
    if (p + 1 >= c->nt) return;
    char m[8];
    size_t j = p + 1;
    /* the gap first: it is cheaper than the phrase look-up */
    if (!gap_mark(c, j, m, sizeof m) || (strcmp(m, "-") && strcmp(m, ":")) || deid__gap_info(c, j).nl) return;
    if (slot_ending_at(c, DEID_SLOT_DISPO, p) < 0) return;
    int one_case = c->lower_doc || c->upper_doc, other = 0;
    size_t last_named = (size_t)-1, last_suffix = (size_t)-1, first = j;
    for (size_t z = j; z < c->nt && z < j + 6; z++) {
        if (z > j && !deid__gap_info(c, z).space_only) break;
        const tok *t = &c->t[z];
        int fac = slot_starting_at(c, DEID_SLOT_FACILITY, z) == 1;
        int part = !fac && slot_starting_at(c, DEID_SLOT_PART, z) == 1;
        int connector = part && t->nletters <= 3 && (t->f & F_STOP); /* "and", "of", "the", "at" */
        /* in mixed case every word of the name but a connector has its capital */
        if (!one_case && !connector && t->shape0 != SH_CAP && t->shape0 != SH_UPPER) break;
        if (fac || part) {
            if (fac && other) last_suffix = z;
            continue;
        }
        if (t->nletters < 2 || t->shape0 == SH_NUM || t->shape0 == SH_ALNUM) break;
        if (((t->f | t->start) & SLOT_BAD) || keep_word(t) || t->clin_shape) break; /* "transfer to X" */
        if (!other) first = z;
        other = 1;
        if (((t->f & (F_FIRST | F_LAST | F_PLACE)) && !(t->f & (F_ENGLISH | F_MEDICAL | F_NOT_NAME))) || t->oov)
            last_named = z;
    }
    /* the name ends at its last facility word after a name word ("Maple Terrace [has bed]"), or
       at its last listed or unlisted name word ("Stonebridge") */
    size_t end = last_suffix != (size_t)-1 ? last_suffix : last_named;
    if (end == (size_t)-1) return;
    for (size_t q = first; q <= end; q++) /* from its first name word: "rehab - the X" */
        if (lab[q] < 0 || lab[q] == DEID_NAME) lab[q] = DEID_ORGANIZATION;
}

/* "Radiologist: Hunter Frost / Dr. R. Nowak", "Signed: DANA LEE": after a signing role and a
 * colon, one to three name words closed at the line's end, a slash or a comma; one word alone
 * must be a listed name that is no common word or a word in no list. */
static void slot_sign(const ctx *c, int8_t *lab, size_t p) {
    if (p + 1 >= c->nt) return;
    char m[8];
    size_t j = p + 1;
    if (!gap_mark(c, j, m, sizeof m) || strcmp(m, ":") || deid__gap_info(c, j).nl) return;
    if (slot_ending_at(c, DEID_SLOT_SIGN, p) < 0) return;
    if (c->t[j].cue_end & F_TITLE) return; /* "Attending: Dr X": the model reads the title */
    long z = slot_name_run(c, j);
    if (z < 0) return;
    if ((size_t)z == j) {
        const tok *t = &c->t[j];
        if (!(t->oov || ((t->f & (F_FIRST | F_LAST)) && !(t->f & (F_ENGLISH | F_MEDICAL | F_NOT_NAME))))) return;
    }
    for (size_t q = j; q <= (size_t)z; q++)
        if (lab[q] < 0) lab[q] = DEID_NAME;
}

/* "reviewed w/ R, ok to ...", "per W (night RN)": one letter after "per", "w/", "d/w" closed by a
 * comma, semicolon or bracket, or at the line's end. */
static void slot_initial(const ctx *c, int8_t *lab, size_t i) {
    const tok *t = &c->t[i];
    if (lab[i] >= 0 || i == 0 || t->e - t->s != 1 || t->nletters != 1 || !same_line(c, i)) return;
    if (slot_ending_at(c, DEID_SLOT_INITIAL, i - 1) < 0) return;
    char m[8];
    /* a space before the letter: "w/o", "s/p" are shorthand */
    if (!gap_mark(c, i, m, sizeof m) || (m[0] && strcmp(m, "/")) || c->text[c->t[i].s - 1] != ' ') return;
    if (i + 1 < c->nt) {
        gapinfo g = deid__gap_info(c, i + 1);
        if (!gap_mark(c, i + 1, m, sizeof m)) return;
        if (!(g.nl || !strcmp(m, ",") || !strcmp(m, ";") || m[0] == '(')) return;
    }
    lab[i] = DEID_NAME;
}

/* "..., cardiology, Lowell 7", "(medicine), East 7": after a service and a comma, one word and a
 * floor number of one or two digits that close the line are a ward (the corpora's wards hold
 * their floor). Not a bed, room or bay (not_ward), a clinical, measure or cue word. */
static void slot_ward(const ctx *c, int8_t *lab, size_t i) {
    if (i < 2 || i + 1 >= c->nt) return;
    const tok *t = &c->t[i], *n = &c->t[i + 1];
    if (n->shape0 != SH_NUM || t->nletters < 2 || t->shape0 == SH_NUM || t->shape0 == SH_ALNUM) return;
    if (n->e - n->s > 2 || !deid__gap_info(c, i + 1).space_only || joined_number(c, i + 1)) return;
    if (!slot_closes(c, i + 1)) return;
    if (((t->f | t->start) & SLOT_BAD) || keep_word(t) || t->clin_shape || (t->f & F_MEDICAL && !(t->f & (F_FIRST | F_LAST | F_PLACE))))
        return;
    if (slot_starting_at(c, DEID_SLOT_NOT_WARD, i) == 1) return;
    if (!c->lower_doc && !c->upper_doc && t->shape0 != SH_CAP && t->shape0 != SH_UPPER) return;
    char m[8];
    if (deid__gap_info(c, i).nl || !gap_mark(c, i, m, sizeof m) || (strcmp(m, ",") && strcmp(m, "),"))) return;
    if (slot_ending_at(c, DEID_SLOT_SERVICE, i - 1) < 0) return;
    for (size_t q = i; q <= i + 1; q++)
        if (lab[q] < 0 || lab[q] == DEID_NAME) lab[q] = DEID_LOCATION;
}

/* "/jdoe/" alone on its line: an electronic signature's user name (letters only, no common,
 * clinical or cue word). */
static void slot_username(const ctx *c, int8_t *lab, size_t i) {
    const tok *t = &c->t[i];
    if (lab[i] >= 0 || t->nletters < 3 || t->nletters != t->e - t->s || t->e - t->s > 20) return;
    if (t->s == 0 || c->text[t->s - 1] != '/' || t->e >= c->len || c->text[t->e] != '/') return;
    size_t a = t->s - 1, b = t->e + 1;
    while (a > 0 && (c->text[a - 1] == ' ' || c->text[a - 1] == '\t')) a--;
    while (b < c->len && (c->text[b] == ' ' || c->text[b] == '\t' || c->text[b] == '\r')) b++;
    if ((a > 0 && c->text[a - 1] != '\n') || (b < c->len && c->text[b] != '\n')) return;
    if (((t->f | t->start | t->cue_end) & SLOT_BAD) || keep_word(t) || (t->f & (F_ENGLISH | F_MEDICAL))) return;
    lab[i] = DEID_NAME;
}

/* Month/day words: word i and i+1 are "M/D" alone (not in a longer chain, not glued to letters),
 * a month 1-12 and a day 1-31. */
static int month_day(const ctx *c, size_t i) {
    if (i + 1 >= c->nt || c->t[i].shape0 != SH_NUM || c->t[i + 1].shape0 != SH_NUM || !gap_is(c, i + 1, '/')) return 0;
    if (c->t[i].e - c->t[i].s > 2 || c->t[i + 1].e - c->t[i + 1].s > 2) return 0;
    if ((i > 0 && c->t[i].s == c->t[i - 1].e + 1 && !isspace((unsigned char)c->text[c->t[i].s - 1])) ||
        (i > 0 && c->t[i].s == c->t[i - 1].e))
        return 0;
    if (i + 2 < c->nt && (c->t[i + 2].s == c->t[i + 1].e || (c->t[i + 2].s == c->t[i + 1].e + 1 &&
                                                              !isspace((unsigned char)c->text[c->t[i + 1].e]) &&
                                                              c->text[c->t[i + 1].e] != ',' && c->text[c->t[i + 1].e] != '.' &&
                                                              c->text[c->t[i + 1].e] != ')' && c->text[c->t[i + 1].e] != ';')))
        return 0;
    long m = num_value(c, i), d = num_value(c, i + 1);
    return m >= 1 && m <= 12 && d >= 1 && d <= 31;
}

/* A date by position: month/day closing the note's first line, a header of at most six words
 * none of them clinical ("Tel call 9/10", "Phone note 3/2"); or month/day right before a clock
 * time on its line, not after a clinical word or a number ("drawn 5/2 0530"). */
static void slot_dates(const ctx *c, int8_t *lab) {
    /* the first line */
    size_t z = 0;
    while (z + 1 < c->nt && !deid__gap_info(c, z + 1).nl) z++;
    if (c->nt >= 3 && z >= 2 && z <= 7 && month_day(c, z - 1) && lab[z - 1] < 0 && lab[z] < 0 &&
        c->text[c->t[z - 1].s - 1] == ' ' && (z + 1 >= c->nt || deid__gap_info(c, z + 1).space_only == 0)) {
        int ok = 1;
        for (size_t q = 0; q + 1 < z && ok; q++)
            ok = c->t[q].shape0 != SH_NUM && !keep_word(&c->t[q]) && !(c->t[q].f & (F_MEASURE | F_UNIT));
        if (ok) lab[z - 1] = lab[z] = DEID_DATE;
    }
    for (size_t i = 1; i + 2 < c->nt; i++) {
        if ((lab[i] >= 0 && lab[i] != DEID_DATE) || (lab[i + 1] >= 0 && lab[i + 1] != DEID_DATE) ||
            (lab[i] == DEID_DATE && lab[i + 1] == DEID_DATE) || !month_day(c, i))
            continue;
        size_t k = i + 2;
        if (!deid__gap_info(c, k).space_only || !clock_time(c, k)) continue;
        if (k + 1 < c->nt && c->t[k + 1].shape0 == SH_NUM && c->t[k + 1].s == c->t[k].e + 1 &&
            c->text[c->t[k].e] != ' ')
            continue; /* "0600-0800", "1030/45": no clock alone */
        if (c->text[c->t[k].s] > '2') continue; /* "0530", "1430": a clock written with its leading digit */
        const tok *p = &c->t[i - 1];
        if (deid__gap_info(c, i).nl) continue;
        if (p->shape0 == SH_NUM || p->shape0 == SH_ALNUM || keep_word(p) || (p->f & (F_MEASURE | F_UNIT)) ||
            ((p->f & F_MEDICAL) && !(p->f & F_ENGLISH)) || ((p->f & F_MEDICAL) && num_value(c, i + 1) == 10))
            continue; /* "pain 3/10 0800": a score out of ten after a clinical word */
        lab[i] = lab[i + 1] = DEID_DATE;
    }
}

/* "SN 302815ZX", "serial # 4471209": after a serial-number word, a code of five digits or more. */
static void slot_serial(const ctx *c, int8_t *lab, size_t p) {
    if (p + 1 >= c->nt) return;
    size_t i = p + 1;
    const tok *t = &c->t[i];
    if (lab[i] >= 0 || (t->shape0 != SH_NUM && t->shape0 != SH_ALNUM) || t->e - t->s < 5) return;
    char m[8];
    if (deid__gap_info(c, i).nl || !gap_mark(c, i, m, sizeof m) || (m[0] && strcmp(m, ":") && strcmp(m, "#"))) return;
    if (slot_ending_at(c, DEID_SLOT_SERIAL, p) < 0) return;
    int digits = 0;
    for (size_t q = t->s; q < t->e; q++) digits += c->text[q] >= '0' && c->text[q] <= '9';
    if (digits < 5) return;
    lab[i] = DEID_ID;
}

/* Mixed case: a capitalised word right after a kinship word or a care role ("nephew Tunde,",
 * "granddaughter Peg prefers", "SW Lark"), which the model left: a listed name that is no common
 * word or a word in no list; a given name that is also a common word only after a kinship word
 * and not before a verb ("son Will call" stays). A capitalised family name after it joins it. */
static void mixed_case_names(const ctx *c, int8_t *lab) {
    if (c->lower_doc || c->upper_doc) return;
    const deid_flags bad = NOT_A_LEFT_NAME;
    for (size_t i = 1; i < c->nt; i++) {
        const tok *t = &c->t[i];
        if (lab[i] >= 0 || t->nletters < 2 || t->shape0 != SH_CAP) continue;
        if (((t->f | t->start | t->cue_end) & bad) || keep_word(t) || t->clin_shape) continue;
        gapinfo g = deid__gap_info(c, i);
        if (g.nl || !g.space_only) continue;
        int kin = (c->t[i - 1].cue_end & F_KIN) != 0, role = kin ? 0 : role_ending_at(c, i - 1) >= 0;
        if (!kin && !role) continue;
        if (role_ending_at(c, i) >= 0 || verb_starting_at(c, i)) continue;
        if (i + 1 < c->nt && c->t[i + 1].shape0 == SH_LOWER && same_line(c, i + 1) &&
            (c->t[i + 1].start & c->r->verb_after_name))
            continue;
        /* a heading in title case ("SW Initial Assessment", a typo in no list) */
        if (i + 1 < c->nt && same_line(c, i + 1) && c->t[i + 1].shape0 == SH_CAP &&
            (c->t[i + 1].f & (F_ENGLISH | F_MEDICAL)) && !(c->t[i + 1].f & F_LAST))
            continue;
        int listed = (t->f & (F_FIRST | F_LAST)) != 0;
        int common = (t->f & (F_ENGLISH | F_MEDICAL | F_NOT_NAME)) != 0;
        int take = (listed && !common) || (t->oov && !common) || (kin && listed && (t->f & F_FIRST));
        if (!take) continue;
        lab[i] = DEID_NAME;
        if (i + 1 < c->nt && lab[i + 1] < 0 && c->t[i + 1].shape0 == SH_CAP && deid__gap_info(c, i + 1).space_only &&
            !((c->t[i + 1].f | c->t[i + 1].start) & bad) && !keep_word(&c->t[i + 1]) &&
            (((c->t[i + 1].f & F_LAST) && !(c->t[i + 1].f & (F_ENGLISH | F_MEDICAL))) || c->t[i + 1].oov))
            lab[i + 1] = DEID_NAME;
    }
}

static void slot_rules(const ctx *c, int8_t *lab) {
    for (size_t i = 0; i < c->nt; i++) {
        slot_message(c, lab, i);
        slot_year(c, lab, i);
        slot_dispo(c, lab, i);
        slot_sign(c, lab, i);
        slot_initial(c, lab, i);
        slot_ward(c, lab, i);
        slot_username(c, lab, i);
        slot_serial(c, lab, i);
    }
    slot_dates(c, lab);
    mixed_case_names(c, lab);
}

/* Unlabels the words the filter keeps; ki[i].why says why (ki may be NULL). */
static void keep_filter(const ctx *c, int8_t *lab, const uint8_t *evd, const float *P, keepinfo *ki) {
    size_t T = c->nt;
    size_t i = 0;
    while (i < T) {
        if (lab[i] < 0) {
            i++;
            continue;
        }
        /* a run as spans_from_labels will join it: one label, one line, no comma between */
        size_t j = i;
        while (j + 1 < T && lab[j + 1] == lab[i] && same_line(c, j + 1) && !deid__gap_info(c, j + 1).comma) j++;
        int y = lab[i];
        if (!is_name_type(y)) {
            for (size_t q = i; q <= j; q++) {
                size_t lo, hi;
                if (lab[q] < 0 || ((evd[q] >> DEID_SRC_KNOWN) & 1) || c->t[q].known >= 0) continue;
                int why = keep_numeric(c, q, &lo, &hi);
                if (!why) continue;
                for (size_t z = lo; z <= hi; z++) {
                    if (lab[z] < 0 && z != q) continue;
                    lab[z] = -1;
                    if (ki) ki[z] = (keepinfo){(uint8_t)why, (int32_t)lo, (int32_t)hi, (int32_t)lo, (int32_t)hi};
                }
            }
            i = j + 1;
            continue;
        }
        /* a run of bare numbers no pattern marks ("lives in 2 story home", "mb 5") */
        int allnum = 1;
        for (size_t q = i; q <= j && allnum; q++)
            allnum = c->t[q].shape0 == SH_NUM && c->t[q].e - c->t[q].s <= 3 && !joined_number(c, q) &&
                     !(evd[q] & ((1u << DEID_SRC_PATTERN) | (1u << DEID_SRC_KNOWN))) && c->t[q].known < 0;
        /* ... unless it follows a word the model took as a name or place and the filter did not
           keep ("VEA 8": the ward's floor) */
        if (allnum && i > 0 && lab[i - 1] >= 0 && is_name_type(lab[i - 1]) && deid__gap_info(c, i).space_only)
            allnum = 0;
        /* ... or a word that is also a listed name or place, after a place cue ("transfer to VEA
           8"): the ward's floor, and the word before it is the ward, taken with it */
        if (allnum && i == j && i >= 2 && lab[i - 1] < 0 && deid__gap_info(c, i).space_only &&
            (c->t[i - 1].f & KEEP_NAMES) && c->t[i - 1].nletters >= 2 && c->t[i].e - c->t[i].s <= 2 &&
            same_line(c, i - 1) && (c->t[i - 2].cue_end & (F_PLACE_WEAK | F_PLACE_BEFORE)) &&
            c->t[i - 1].known < 0 && !(c->t[i - 1].f & (F_STOP | F_MONTH | F_WEEKDAY))) {
            allnum = 0;
            lab[i - 1] = (int8_t)y;
        }
        if (allnum) {
            for (size_t q = i; q <= j; q++) {
                lab[q] = -1;
                if (ki) ki[q] = (keepinfo){KEEP_NUMBER, (int32_t)i, (int32_t)j, (int32_t)i, (int32_t)j};
            }
            i = j + 1;
            continue;
        }
        int any_kept = 0;
        for (size_t q = i; q <= j; q++) {
            size_t lo = q, hi = q;
            int why = KEEP_NO;
            if (post_entry(c, q, &lo, &hi)) why = KEEP_POST;
            else if (keep_word(&c->t[q]) && c->t[q].nletters >= 2) why = KEEP_WORD;
            if (!why) continue;
            /* a short abbreviation taken as an organisation is mostly a facility ("from SAH") */
            if (why == KEEP_WORD && y == DEID_ORGANIZATION && c->t[q].nletters <= 4) continue;
            /* weak evidence only: a list word the model is sure of stays removed ("from HCM"),
               and surer still when it is also a listed name */
            float pphi = 1 - P[q * DEID_NL];
            if (why == KEEP_WORD && pphi >= ((c->t[q].f & F_KEEP) ? KEEP_MAX_P_KEEP : KEEP_MAX_P)) continue;
            if (why == KEEP_WORD && (c->t[q].f & KEEP_NAMES) && pphi >= KEEP_MAX_P_NAMED) continue;
            size_t elo = lo, ehi = hi;
            if (lo < i) lo = i; /* the run's own words decide; an entry may start before it */
            if (hi > j) hi = j;
            int named = 0, all_named = 1;
            for (size_t z = elo; z <= ehi; z++) {
                named |= (c->t[z].f & KEEP_NAMES) != 0;
                all_named &= (c->t[z].f & KEEP_NAMES) || c->t[z].nletters == 1;
            }
            if (strong_cue(c, lab, evd, i, j, elo, ehi, c->r->model->keep_unnamed && !named)) continue;
            /* also a name or place: only beside clinical words or numbers ("foley draining") */
            /* an entry made only of listed names and letters ("jackson pratt", "kerley b") could be
               a person: it too needs clinical context (loose) */
            if (why == KEEP_POST && elo < ehi && all_named && !clinical_context(c, elo, ehi, 1)) continue;
            /* (loose context for a single-word entry of clinical_keep_post.txt: it is clinical
               notation first, "neg Homans"; strict for the larger lists, which hold "Lana") */
            if (named && (why == KEEP_WORD || elo == ehi) && !clinical_context(c, lo, hi, why == KEEP_POST))
                continue;
            /* round 9: a name's surroundings outweigh the word's clinical sense */
            if (name_shaped(c, lab, y, i, j, elo, ehi, named)) continue;
            for (size_t z = lo; z <= hi; z++) {
                lab[z] = -1;
                if (ki) ki[z] = (keepinfo){(uint8_t)why, (int32_t)lo, (int32_t)hi, (int32_t)elo, (int32_t)ehi};
            }
            any_kept = 1;
            q = hi;
        }
        /* the rest of a run with a kept clinical word goes too when it is only common words
           ("Cr rose": "rose" is a given name but here the verb) */
        if (any_kept) {
            int weak = 1;
            for (size_t q = i; q <= j && weak; q++)
                if (lab[q] >= 0)
                    weak = (c->t[q].f & F_NOT_NAME) && !strong_word(&c->t[q]) && c->t[q].nletters >= 2 &&
                           !((evd[q] >> DEID_SRC_PATTERN) & 1);
            for (size_t q = i; q <= j && weak; q++)
                if (lab[q] >= 0) {
                    lab[q] = -1;
                    if (ki) ki[q] = (keepinfo){KEEP_RUN, (int32_t)i, (int32_t)j, (int32_t)i, (int32_t)j};
                }
        }
        i = j + 1;
    }
}

/* The first and last words of word q's line. */
static void line_words(const ctx *c, size_t q, size_t *lo, size_t *hi) {
    *lo = *hi = q;
    while (*lo > 0 && !deid__gap_info(c, *lo).nl) (*lo)--;
    while (*hi + 1 < c->nt && !deid__gap_info(c, *hi + 1).nl) (*hi)++;
}

/* A word that names a person, place or organisation when it is a whole field: a listed name or
 * place that is no common, clinical or stop word, written with a capital ("Anderson"), or an
 * initial. */
static int field_name_word(const tok *t, int recased) {
    uint8_t sh = recased ? t->shape : t->shape0;
    if (sh == SH_INITIAL || (t->nletters == 1 && sh == SH_UPPER)) return 1;
    if (sh != SH_CAP && sh != SH_UPPER) return 0;
    return (t->f & KEEP_NAMES) && !(t->f & (F_ENGLISH | F_MEDICAL | F_STOP | F_NOT_NAME | F_KEEP)) && !t->clin_shape;
}

/* The run [a, b] labelled as a name, place or organisation on a field list's line (fields.c) is
 * one by the field's own evidence: a string the record knows or a pattern; a person or address cue
 * just before it ("Dr", "son", "name is"), MD or Hospital just after, a title or organisation word
 * inside it; or a line holding only names and initials ("Anderson", "Smith, John"). */
static int field_cue(const ctx *c, const uint8_t *evd, size_t a, size_t b, int recased, int free_case) {
    uint8_t sha = recased ? c->t[a].shape : c->t[a].shape0;
    /* round 20 (@one_case_cue, recased only): in a one-case note the re-casing leaves a word in no
       list lower-case, so the case tests below would drop an unlisted surname after "dr"; 1 frees
       the title and name_is cues of them, 2 every cue before the word */
    deid_flags cue_before = a > 0 ? c->t[a - 1].cue_end : 0;
    int any_case = free_case >= 2 || (free_case == 1 && (cue_before & (F_TITLE | F_NAME_IS)));
    for (size_t q = a; q <= b; q++) {
        if (c->t[q].known >= 0 || (evd[q] & ((1u << DEID_SRC_KNOWN) | (1u << DEID_SRC_PATTERN)))) return 1;
        if ((c->t[q].f & F_TITLE) || ((c->t[q].f & F_ORG_AFTER) && !deid__field_clinical_suffix(c, q))) return 1;
    }
    const deid_flags before = F_TITLE | F_NAME_IS | F_KIN | F_NAME_BEFORE | F_PRONOUN | F_ADDR_BEFORE;
    if (a > 0 && !deid__gap_info(c, a).nl && (cue_before & before) && (sha != SH_LOWER || any_case)) return 1;
    /* a weak cue ("per", "with", "by", "to", "from") before a capitalised word that is a listed name
       or place and nothing else, or in no list: a signature line closing an order list ("Reviewed
       with Kessler"), a transfer ("D/C to Brookside") */
    if (a > 0 && !deid__gap_info(c, a).nl &&
        (cue_before & (F_NAME_WEAK | F_PLACE_WEAK | F_PLACE_BEFORE | F_ORG_BEFORE)) &&
        (sha == SH_CAP || sha == SH_UPPER || any_case) && !c->t[a].clin_shape &&
        (field_name_word(&c->t[a], recased) || (c->t[a].oov && c->t[a].nletters >= 3)))
        return 1;
    if (b + 1 < c->nt && !deid__gap_info(c, b + 1).nl && (c->t[b + 1].start & (F_NAME_AFTER | F_ORG_AFTER)) &&
        !deid__field_clinical_suffix(c, b + 1))
        return 1;
    /* a capitalised run with a number after it is a ward and its floor ("Kessler 4") */
    if (sha != SH_LOWER && b + 1 < c->nt && c->t[b + 1].shape0 == SH_NUM && !deid__gap_info(c, b + 1).nl &&
        deid__gap_info(c, b + 1).space_only)
        return 1;
    /* the whole line is names and initials (the run [a, b] is on one line) */
    size_t lo, hi;
    line_words(c, a, &lo, &hi);
    for (size_t q = lo; q <= hi; q++)
        if (!field_name_word(&c->t[q], recased) && !(c->t[q].f & F_PARTICLE)) return 0;
    return 1;
}

/* A date, phone, id or address on a field list's line is one by its evidence: a pattern or a
 * string the record knows covers a word of it, or (an address) it holds a street or unit word
 * written with a capital. Numbers in titles are doses, counts, codes and marker names ("CD4/8",
 * a formula's dilution "(1/2)", "per 10 square cm", "above zero (> 0)"). */
static int field_shaped_cue(const ctx *c, const uint8_t *evd, size_t a, size_t b, int y) {
    for (size_t q = a; q <= b; q++) {
        if (c->t[q].known >= 0 || (evd[q] & ((1u << DEID_SRC_KNOWN) | (1u << DEID_SRC_PATTERN)))) return 1;
        if (y == DEID_ADDRESS && (c->t[q].f & (F_STREET | F_STREET_MAIN | F_UNIT)) &&
            (c->t[q].shape0 == SH_CAP || c->t[q].shape0 == SH_UPPER))
            return 1;
    }
    return 0;
}

/* Round 21 (@field_dates): the line of word q carries its own person evidence: a run labelled a
 * person name that the field cue holds, or a credential right after a word labelled a name (a
 * dated signature, "3/10 by c. X, pharmd"). A title line's date has neither; a signature's date is
 * a date of care whatever pattern covers it, and a month/day with no year has none. */
static int field_line_person(const ctx *c, const int8_t *lab, const uint8_t *evd, size_t q, int recased,
                             int free_case) {
    size_t lo, hi;
    line_words(c, q, &lo, &hi);
    for (size_t i = lo + 1; i <= hi; i++)
        if ((c->t[i].start & F_NAME_AFTER) && lab[i - 1] == DEID_NAME) return 1;
    for (size_t i = lo; i <= hi; i++) {
        if (lab[i] < 0 || !is_name_type(lab[i])) continue;
        /* the run as field_filter cuts it, so the cue is read on the same words */
        size_t j = i;
        int person = lab[i] == DEID_NAME;
        while (j + 1 <= hi && lab[j + 1] >= 0 && is_name_type(lab[j + 1])) person |= lab[++j] == DEID_NAME;
        if (person && field_cue(c, evd, i, j, recased, free_case)) return 1;
        i = j;
    }
    return 0;
}

/* On the field-shaped lines of a field list, the model's labels stay only with the field's own
 * evidence: a name, place or organisation with its cue (field_cue), a date, phone, id or address
 * with its pattern (field_shaped_cue), or (dates, round 21) a date on a line with its own person
 * evidence (field_line_person). */
static void field_filter(const ctx *c, int8_t *lab, const uint8_t *evd, const uint8_t *field, keepinfo *ki,
                         int recased, int free_case, int dates) {
    size_t T = c->nt;
    size_t i = 0;
    while (i < T) {
        if (lab[i] < 0 || !field[i]) {
            i++;
            continue;
        }
        int y = lab[i], named = is_name_type(y);
        size_t j = i;
        while (j + 1 < T && lab[j + 1] >= 0 && field[j + 1] &&
               (named ? is_name_type(lab[j + 1]) : lab[j + 1] == y) && !deid__gap_info(c, j + 1).nl)
            j++;
        if (!(named ? field_cue(c, evd, i, j, recased, free_case) : field_shaped_cue(c, evd, i, j, y)) &&
            !(dates && y == DEID_DATE && field_line_person(c, lab, evd, i, recased, free_case)))
            for (size_t q = i; q <= j; q++) {
                lab[q] = -1;
                if (ki) ki[q] = (keepinfo){KEEP_FIELD, (int32_t)i, (int32_t)j, (int32_t)i, (int32_t)j};
            }
        i = j + 1;
    }
}

/* A fraction N/M labelled a date, right after a scale's name whose maximum is M (scores.txt: "Tinetti
 * 12/28", "Berg score 41/56"), with N <= M and no third number joined to it, is a score. */
static void score_filter(const ctx *c, int8_t *lab, const uint8_t *evd, keepinfo *ki) {
    const deid_text_rules *r = c->r;
    if (r->scores_max_words <= 0) return;
    const tok *t = c->t;
    for (size_t x = 1; x + 1 < c->nt; x++) {
        size_t y = x + 1;
        if ((lab[x] != DEID_DATE && lab[y] != DEID_DATE) || t[x].shape0 != SH_NUM || t[y].shape0 != SH_NUM) continue;
        if (!gap_is(c, y, '/') || gap_is(c, x, '/') || gap_is(c, x, '-') || gap_is(c, x, '.')) continue;
        if (y + 1 < c->nt && t[y + 1].s == t[y].e + 1 && t[y + 1].shape0 == SH_NUM) continue;
        if (t[x].known >= 0 || t[y].known >= 0 || ((evd[x] | evd[y]) & (1u << DEID_SRC_KNOWN))) continue;
        if (t[x].e - t[x].s > 3 || t[y].e - t[y].s > 3) continue;
        long n = 0, d = 0;
        for (size_t k = t[x].s; k < t[x].e; k++) n = n * 10 + (c->text[k] - '0');
        for (size_t k = t[y].s; k < t[y].e; k++) d = d * 10 + (c->text[k] - '0');
        if (n > d) continue;
        /* the scale's name just before, on the line (a "score" or "scale" between may stand) */
        size_t w = x - 1;
        gapinfo g = deid__gap_info(c, x);
        if (g.nl || g.len > 3 || g.sentence || g.period) continue;
        char key[96];
        size_t kl = deid_lower(c->text + t[w].s, t[w].e - t[w].s, key, sizeof key);
        if (kl != (size_t)-1 && (kl == 5 && (!memcmp(key, "score", 5) || !memcmp(key, "scale", 5))) && w > 0 &&
            !deid__gap_info(c, w).nl) {
            w--;
            kl = deid_lower(c->text + t[w].s, t[w].e - t[w].s, key, sizeof key);
        }
        /* "PHQ-9", "GAD-7": the name and its number are one entry ("phq9") */
        if (kl != (size_t)-1 && w > 0 && t[w].shape0 == SH_NUM && gap_is(c, w, '-') && t[w].e - t[w].s <= 2) {
            char k2[96];
            size_t l2 = deid_lower(c->text + t[w - 1].s, t[w - 1].e - t[w - 1].s, k2, sizeof k2);
            if (l2 != (size_t)-1 && l2 + kl < sizeof key) {
                memmove(key + l2, key, kl);
                memcpy(key, k2, l2);
                kl += l2;
                w--;
            }
        }
        if (kl == (size_t)-1 || kl + 6 >= sizeof key) continue;
        kl += (size_t)snprintf(key + kl, sizeof key - kl, " %ld", d);
        if (strmap_find(&r->scores, key, kl) < 0) continue;
        for (size_t z = x; z <= y; z++) {
            lab[z] = -1;
            if (ki) ki[z] = (keepinfo){KEEP_SCORE, (int32_t)x, (int32_t)y, (int32_t)w, (int32_t)y};
        }
    }
}

/* "WORD NUMBER" at words w, w+1 on one line, a space between ("MB 37", "Na 132"). */
static int value_pair(const ctx *c, size_t w) {
    if (w + 1 >= c->nt || c->t[w].nletters < 1 || c->t[w].shape0 == SH_NUM || c->t[w + 1].shape0 != SH_NUM) return 0;
    gapinfo g = deid__gap_info(c, w + 1);
    return g.space_only && !g.nl && !joined_number(c, w + 1);
}

/* A four-digit number labelled a date that no pattern or known string marks, written as the value
 * of a word ("BNP 2025") in a list of such pairs whose other values are no years ("CK 262, MB 37,
 * BNP 2025; Na 132"), is a lab value: "CABG 2015, PCI 2018" stays a list of years. */
static void value_filter(const ctx *c, int8_t *lab, const uint8_t *evd, keepinfo *ki) {
    for (size_t q = 1; q < c->nt; q++) {
        if (lab[q] != DEID_DATE || c->t[q].shape0 != SH_NUM || c->t[q].e - c->t[q].s != 4) continue;
        if (c->t[q].known >= 0 || (evd[q] & ((1u << DEID_SRC_KNOWN) | (1u << DEID_SRC_PATTERN)))) continue;
        if (!value_pair(c, q - 1) || (c->t[q - 1].f & (F_MONTH | F_WEEKDAY))) continue;
        int pairs = 0, years = 0;
        /* the pair before, across a comma, semicolon or space; the pair after likewise */
        if (q >= 3 && value_pair(c, q - 3) && !deid__gap_info(c, q - 1).nl && !deid__gap_info(c, q - 1).period) {
            pairs++;
            years += year_shaped(c, q - 2);
        }
        if (q + 2 < c->nt && value_pair(c, q + 1) && !deid__gap_info(c, q + 1).nl && !deid__gap_info(c, q + 1).period) {
            pairs++;
            years += year_shaped(c, q + 2);
        }
        if (!pairs || years) continue;
        lab[q] = -1;
        if (ki) ki[q] = (keepinfo){KEEP_VALUE, (int32_t)q, (int32_t)q, (int32_t)(q - 1), (int32_t)q};
    }
}

/* Whether the span covers a word the keep filter kept. */
static int keeps_in(const ctx *c, const keepinfo *ki, const deid_span *sp) {
    if (!ki) return 0;
    size_t lo = deid__first_word_ending_after(c, sp->start);
    for (size_t q = lo; q < c->nt && c->t[q].s < sp->end; q++)
        if (ki[q].why) return 1;
    return 0;
}

/* Words i..j are an ampersand-joined firm the rules found and amp_firms labelled one
 * organisation: every word labelled so by both, and an ampersand between two of them. */
static int amp_group(const ctx *c, const int8_t *lab, size_t i, size_t j) {
    int amp = 0;
    for (size_t q = i; q <= j; q++) {
        if (lab[q] != DEID_ORGANIZATION || c->t[q].lab != DEID_ORGANIZATION) return 0;
        if (q > i) amp |= deid__gap_info(c, q).amp == 1;
    }
    return amp;
}

/* Spans from the labelled words (see the file comment). Words join one group when they are
 * neighbours on a line with the same label, or covered by the same evidence span (a date's
 * "1990", "02" and "18"); a group's type is the one with the most probability summed over its
 * words, and its span the union of the evidence spans of that type overlapping it, plus its words
 * no such span covers. P is (T, L). Words the keep filter kept (ki) are in no span. */
static int spans_from_labels(const ctx *c, const int8_t *lab, const float *P, const keepinfo *ki, spanvec *out) {
    /* the longest evidence span covering each word */
    long *evid = cf_malloc((c->nt + 1) * sizeof *evid);
    if (!evid) return -1;
    for (size_t i = 0; i < c->nt; i++) evid[i] = -1;
    for (size_t k = 0; k < c->spans.n; k++) {
        const deid_span *sp = &c->spans.v[k];
        size_t lo = deid__first_word_ending_after(c, sp->start);
        for (size_t i = lo; i < c->nt && c->t[i].s < sp->end; i++) {
            long cur = evid[i];
            if (cur < 0 || c->spans.v[cur].end - c->spans.v[cur].start < sp->end - sp->start) evid[i] = (long)k;
        }
    }
    size_t i = 0;
    while (i < c->nt) {
        if (lab[i] < 0) {
            i++;
            continue;
        }
        size_t j = i;
        while (j + 1 < c->nt && lab[j + 1] >= 0) {
            int same_ev = evid[j] >= 0 && evid[j] == evid[j + 1];
            if (!same_ev) {
                gapinfo g = deid__gap_info(c, j + 1);
                if (g.nl || g.len > 3 || g.sentence || g.comma || lab[j + 1] != lab[j]) break;
                /* a date, phone or id goes on only with digits or a month name ("C" between two
                   dates is no part of either) */
                int ty1 = lab[j + 1];
                int numeric1 = ty1 == DEID_DATE || ty1 == DEID_PHONE || ty1 == DEID_FAX || ty1 == DEID_ID ||
                               ty1 == DEID_MRN || ty1 == DEID_SSN || ty1 == DEID_ZIP || ty1 == DEID_AGE_OVER_89;
                const tok *u = &c->t[j + 1];
                if (numeric1 && u->shape != SH_NUM && u->shape != SH_ALNUM && !(u->f & (F_MONTH | F_WEEKDAY))) break;
            }
            j++;
        }
        float best = -1;
        int ty = lab[i];
        for (int y = 1; y < DEID_NL; y++) {
            float sum = 0;
            for (size_t q = i; q <= j; q++) sum += P[q * DEID_NL + y];
            if (sum > best) best = sum, ty = y - 1;
        }
        /* an ampersand-joined firm amp_firms made one organisation keeps that type, whatever the
           model's summed probability says of its words */
        if (c->r->model && c->r->model->amp_firm_span && amp_group(c, lab, i, j)) ty = DEID_ORGANIZATION;
        /* the kind of a structured identifier is the pattern's: the model decides whether it is
           PHI, the pattern's shape says whether it is a fax or a phone, an SSN or an id */
        {
            size_t blen = 0;
            int pty = -1;
            for (size_t k = 0; k < c->spans.n; k++) {
                const deid_span *sp = &c->spans.v[k];
                if ((c->spans.tag[k] >> 16) != DEID_SRC_PATTERN || sp->end <= c->t[i].s || sp->start >= c->t[j].e) continue;
                size_t l = sp->end - sp->start;
                if (l > blen || (l == blen && sp->type < pty)) blen = l, pty = sp->type;
            }
            if (pty >= 0 && pty != DEID_ADDRESS) ty = pty;
        }
        int numeric0 = ty == DEID_DATE || ty == DEID_PHONE || ty == DEID_FAX || ty == DEID_ID || ty == DEID_MRN ||
                       ty == DEID_SSN || ty == DEID_ZIP || ty == DEID_AGE_OVER_89;
        /* a date, phone or id starts with a digit or a month name, or where its evidence does */
        size_t i0 = i;
        while (numeric0 && i0 < j && evid[i0] < 0 && c->t[i0].shape != SH_NUM && c->t[i0].shape != SH_ALNUM &&
               !(c->t[i0].f & (F_MONTH | F_WEEKDAY)))
            i0++;
        size_t rs = c->t[i0].s, re = c->t[j].e;
        /* a number glued to a word ("CXR3/4", "x4-5678"): the word is no part of a date, phone
           or id; such a group is one span from its first digit */
        int numeric = ty == DEID_DATE || ty == DEID_PHONE || ty == DEID_FAX || ty == DEID_ID || ty == DEID_MRN ||
                      ty == DEID_SSN || ty == DEID_ZIP || ty == DEID_AGE_OVER_89;
        if (numeric) {
            size_t d = rs;
            if (c->t[i0].shape == SH_ALNUM)
                while (d < c->t[i0].e && !(c->text[d] >= '0' && c->text[d] <= '9')) d++;
            if (d < c->t[i0].e) rs = d;
        }
        int any = 0;
        size_t hs = rs, he = re;
        for (size_t k = 0; k < c->spans.n; k++) {
            const deid_span *sp = &c->spans.v[k];
            if (sp->type != ty || sp->end <= c->t[i0].s || sp->start >= re) continue;
            /* an evidence span over a word the keep filter kept does not bring it back */
            if (keeps_in(c, ki, sp)) continue;
            if (numeric) {
                if (sp->start < hs) hs = sp->start;
                if (sp->end > he) he = sp->end;
            } else {
                sv_add(out, sp->start, sp->end, ty);
            }
            any = 1;
        }
        if (numeric) {
            size_t fs = any ? hs : rs, fe = any ? he : re;
            if (ty == DEID_DATE) fe = deid__date_trim_clock(c->text, fs, fe);
            sv_add(out, fs, fe, ty);
        } else if (!any) {
            size_t e = re;
            if (c->t[j].shape == SH_INITIAL && e < c->len && c->text[e] == '.' && j > i) e++;
            sv_add(out, rs, e, ty);
        } else {
            for (size_t q = i; q <= j; q++) {
                int cov = 0;
                for (size_t k = 0; k < c->spans.n && !cov; k++) {
                    const deid_span *sp = &c->spans.v[k];
                    cov = sp->type == ty && sp->start < c->t[q].e && sp->end > c->t[q].s && !keeps_in(c, ki, sp);
                }
                if (!cov) sv_add(out, c->t[q].s, c->t[q].e, ty);
            }
        }
        i = j + 1;
    }
    free(evid);
    return out->oom ? -1 : 0;
}

/* "Johnson & Johnson", "Procter & Gamble": the evidence layer joins capitalised words across an
 * ampersand into a firm (find.c, ampersand_firms), but no training note holds such a firm, so the
 * model weighs each word alone, and a surname of the firm reads as a person (round 15, E3:
 * "Johnson" a name at 0.295, the second left). The ampersand is the evidence: once the model takes
 * any word of such a run as a name, place or organisation, the whole run is one organisation. A
 * run the model leaves alone stays alone (the rules' label alone never takes it). */
static void amp_firms(const ctx *c, int8_t *lab) {
    for (size_t a = 0; a < c->nt;) {
        if (c->t[a].lab != DEID_ORGANIZATION) {
            a++;
            continue;
        }
        size_t b = a;
        int amp = 0;
        while (b + 1 < c->nt && c->t[b + 1].lab == DEID_ORGANIZATION) {
            gapinfo g = deid__gap_info(c, b + 1);
            if (g.nl || g.comma || g.period || g.other || g.len > 3 || !(g.space_only || g.amp == 1)) break;
            amp |= g.amp == 1;
            b++;
        }
        int touched = 0;
        for (size_t q = a; q <= b; q++) touched |= lab[q] >= 0 && is_name_type(lab[q]);
        if (amp && touched)
            for (size_t q = a; q <= b; q++) lab[q] = DEID_ORGANIZATION;
        a = b + 1;
    }
}

/* The model's labels: lab[i] = type or -1; prob[i] = 1 - P(O) when not NULL. */
static int model_labels(const ctx *c, const deid_featbuf *fb, int8_t *lab, float *prob, float **P_out, keepinfo *ki,
                        cf_err *err) {
    const deid_model *m = c->r->model;
    size_t T = c->nt;
    float *E = cf_malloc(T * DEID_NL * sizeof *E), *P = cf_malloc(T * DEID_NL * sizeof *P);
    float *work = cf_malloc((4 * T * DEID_NL + 1) * sizeof *work);
    if (!E || !P || !work) {
        free(E);
        free(P);
        free(work);
        return cf_fail(err, CF_EINTERNAL, "out of memory for the model's scores");
    }
    deid__emissions(m, fb, T, E);
    deid__crf_marginals(E, T, m->trans, P, work);
    /* what the evidence layers say of each word: bit DEID_SRC_* set when a span of that layer
       covers it (tokens are sorted, so each span finds its first word by bisection) */
    uint8_t *evd = cf_calloc(T + 1, 1);
    if (!evd) {
        free(E);
        free(P);
        free(work);
        return cf_fail(err, CF_EINTERNAL, "out of memory for the model's scores");
    }
    for (size_t k = 0; k < c->spans.n; k++) {
        size_t lo = deid__first_word_ending_after(c, c->spans.v[k].start);
        for (size_t q = lo; q < T && c->t[q].s < c->spans.v[k].end; q++)
            evd[q] |= (uint8_t)(1u << ((c->spans.tag[k] >> 16) & 7));
    }
    for (size_t i = 0; i < T; i++) {
        const float *p = P + i * DEID_NL;
        lab[i] = -1;
        if (prob) prob[i] = 1 - p[0];
        if (p[0] >= m->threshold) continue;
        int best = 1;
        for (int y = 2; y < DEID_NL; y++)
            if (p[y] > p[best]) best = y;
        int ty = best - 1;
        /* less evidence, more certainty needed: a shaped type (date, phone, id, ZIP, age...) with
           no pattern behind it is mostly a number in a clinical context ("HCT <21", "at 1500",
           "30cc"); a word no evidence layer marks at all is mostly a clinical word ("stoma") */
        int shaped = ty != DEID_NAME && ty != DEID_LOCATION && ty != DEID_ORGANIZATION && ty != DEID_ADDRESS;
        int pattern = (evd[i] >> DEID_SRC_PATTERN) & 1;
        int any = evd[i] || c->t[i].lab >= 0 || c->t[i].known >= 0;
        if (shaped && !pattern && m->threshold_nopattern > 0 && p[0] >= m->threshold_nopattern) continue;
        if (!any && m->threshold_bare > 0 && p[0] >= m->threshold_bare) continue;
        /* calendar sense: numbers joined by '/' that no reading makes a date ("PA 44/21",
           "CMV 500/15/8/60") are no date, whatever their context */
        if (ty == DEID_DATE && c->t[i].shape0 == SH_NUM && !slash_date_possible(c, i)) continue;
        /* a single letter glued to a slash is shorthand ("w/", "n/v", "s/p"), no name or place */
        if ((ty == DEID_NAME || ty == DEID_LOCATION || ty == DEID_ORGANIZATION) && c->t[i].e - c->t[i].s == 1 &&
            ((c->t[i].e < c->len && c->text[c->t[i].e] == '/') || (c->t[i].s > 0 && c->text[c->t[i].s - 1] == '/')))
            continue;
        lab[i] = (int8_t)ty;
    }
    if (m->nursing_shorthand) shorthand_filter(c, lab, m->nursing_shorthand);
    /* a facility or street name of common words in a one-case note (find.c, mark_suffix_names):
       taken, with the rule's type, whether or not the model found it (a name, place or
       organisation label it gave is retyped), as the capitals would have had it in mixed case */
    for (size_t i = 0; i < T; i++)
        if (c->t[i].sfx && (lab[i] < 0 || lab[i] == DEID_NAME || lab[i] == DEID_LOCATION || lab[i] == DEID_ORGANIZATION))
            lab[i] = (int8_t)(c->t[i].sfx - 1);
    if (m->amp_firm_span) amp_firms(c, lab);
    one_case_names(c, lab);
    one_case_addresses(c, lab);
    if (ki) keep_filter(c, lab, evd, P, ki);
    slot_rules(c, lab);
    /* a list of fields (code titles, item labels): names only with the field's own cue */
    if (ki) {
        uint8_t *field = cf_malloc(T + 1);
        if (!field) {
            free(evd);
            free(E);
            free(P);
            free(work);
            return cf_fail(err, CF_EINTERNAL, "out of memory for the model's scores");
        }
        /* one_case_catalogue answers -1 out of memory: kept apart from the && that would make it 1 */
        int cat = m->one_case_fields && (c->lower_doc || c->upper_doc) ? one_case_catalogue(c) : 0;
        if (cat < 0) {
            free(field);
            free(evd);
            free(E);
            free(P);
            free(work);
            return cf_fail(err, CF_EINTERNAL, "out of memory for the model's scores");
        }
        if (deid__field_lines(c, field, cat)) field_filter(c, lab, evd, field, ki, cat, cat ? m->one_case_cue : 0, m->field_dates);
        /* a heading's word, a service after a clinician's name (fields.c, round 10) */
        deid__layout_labels(c, lab, evd, field);
        for (size_t q = 0; q < T; q++)
            if (field[q]) {
                lab[q] = -1;
                uint8_t why = field[q] == 1 ? KEEP_HEADING : field[q] == 2 ? KEEP_SERVICE : KEEP_COUNT;
                ki[q] = (keepinfo){why, (int32_t)q, (int32_t)q, (int32_t)q, (int32_t)q};
            }
        free(field);
        score_filter(c, lab, evd, ki);
        value_filter(c, lab, evd, ki);
    }
    /* S1/S2 last: the slot rules take a two-word line ("pain 6/10") as a field and its value after
       the model has left it, and a span is made of whatever labels are left here */
    if (m->nursing_shorthand >= 3) shorthand_filter_s(c, lab, m->nursing_shorthand);
    free(evd);
    free(E);
    free(work);
    if (P_out) *P_out = P;
    else free(P);
    return CF_OK;
}

int deid_find(const deid_text_rules *r, const char *text, size_t len, const deid_known *known,
              deid_span **spans, size_t *n, cf_err *err) {
    *spans = NULL;
    *n = 0;
    if (!r || (!text && len)) return cf_fail(err, CF_EINTERNAL, "deid_find: no rules or no text");
    if (len == 0) return CF_OK;
    ctx c;
    deid__ctx_init(&c, r, known, text, len);
    int rc = deid__evidence(&c, err);
    if (rc) goto done;
    if (!r->model || c.nt == 0) {
        /* no model: the evidence spans as found */
        *n = deid__merge(c.spans.v, c.spans.n);
        *spans = c.spans.v;
        c.spans.v = NULL;
        goto done;
    }
    deid_featbuf fb = {0};
    rc = deid__features(&c, r->model, 0, &fb, err);
    int8_t *lab = rc ? NULL : cf_malloc(c.nt);
    float *P = NULL;
    if (!rc && !lab) rc = cf_fail(err, CF_EINTERNAL, "out of memory");
    keepinfo *ki = rc ? NULL : cf_calloc(c.nt + 1, sizeof *ki);
    if (!rc && !ki) rc = cf_fail(err, CF_EINTERNAL, "out of memory");
    if (!rc) rc = model_labels(&c, &fb, lab, NULL, &P, ki, err);
    spanvec out = {0};
    if (!rc) {
        out.cur_tag = 0;
        if (spans_from_labels(&c, lab, P, ki, &out)) rc = cf_fail(err, CF_EINTERNAL, "out of memory");
        /* the record's known strings are taken whatever the model says */
        for (size_t k = 0; !rc && k < c.spans.n; k++)
            if ((c.spans.tag[k] >> 16) == DEID_SRC_KNOWN) sv_add(&out, c.spans.v[k].start, c.spans.v[k].end, c.spans.v[k].type);
        for (size_t i = 0; !rc && i < c.nt; i++)
            if (c.t[i].known >= 0 && !c.t[i].cov) sv_add(&out, c.t[i].s, c.t[i].e, c.t[i].known);
        if (out.oom) rc = cf_fail(err, CF_EINTERNAL, "out of memory");
    }
    free(lab);
    free(ki);
    free(P);
    deid__featbuf_free(&fb);
    if (!rc) {
        *n = deid__merge(out.v, out.n);
        *spans = out.v;
        out.v = NULL;
    }
    free(out.v);
    free(out.tag);
done:
    deid__ctx_free(&c);
    return rc;
}

/* ---- explain ----------------------------------------------------------------------------- */

int deid_find_explain(const deid_text_rules *r, const char *text, size_t len, const deid_known *known,
                      deid_explained **out, size_t *n_out, cf_err *err) {
    *out = NULL;
    *n_out = 0;
    deid_span *sp = NULL;
    size_t n = 0;
    int rc = deid_find(r, text, len, known, &sp, &n, err);
    /* with no span, the words the keep filter kept are still listed (round 9: they were not) */
    if (rc || (n == 0 && (!r->model || len == 0))) {
        free(sp);
        return rc;
    }
    deid_explained *ex = cf_calloc(n ? n : 1, sizeof *ex);
    if (!ex) {
        free(sp);
        return cf_fail(err, CF_EINTERNAL, "out of memory");
    }
    for (size_t k = 0; k < n; k++) {
        ex[k].start = sp[k].start;
        ex[k].end = sp[k].end;
        ex[k].type = sp[k].type;
        ex[k].prob = 1;
        snprintf(ex[k].why, sizeof ex[k].why, "%s", r->model ? "record's known string" : "evidence layers (no model)");
    }
    free(sp);
    if (!r->model) {
        *out = ex;
        *n_out = n;
        return CF_OK;
    }
    ctx c;
    deid__ctx_init(&c, r, known, text, len);
    deid_featbuf fb = {0};
    float *P = NULL, *prob = NULL;
    int8_t *lab = NULL;
    fb.no_cache = 1; /* every feature by its id, to list them */
    rc = deid__evidence(&c, err);
    if (!rc) rc = deid__features(&c, r->model, 0, &fb, err);
    if (!rc) {
        lab = cf_malloc(c.nt + 1);
        prob = cf_malloc((c.nt + 1) * sizeof *prob);
        if (!lab || !prob) rc = cf_fail(err, CF_EINTERNAL, "out of memory");
    }
    keepinfo *ki = NULL;
    if (!rc) {
        ki = cf_calloc(c.nt + 1, sizeof *ki);
        if (!ki) rc = cf_fail(err, CF_EINTERNAL, "out of memory");
    }
    if (!rc) rc = model_labels(&c, &fb, lab, prob, &P, ki, err);
    for (size_t k = 0; !rc && k < n; k++) {
        /* the most probable word of the span, and its features by contribution to the span's
           label against O */
        size_t best = (size_t)-1;
        for (size_t i = 0; i < c.nt; i++) {
            if (c.t[i].e <= ex[k].start || c.t[i].s >= ex[k].end) continue;
            if (best == (size_t)-1 || prob[i] > prob[best]) best = i;
        }
        if (best == (size_t)-1 || lab[best] < 0) continue;
        ex[k].prob = prob[best];
        int y = ex[k].type + 1;
        enum { TOP = 5 };
        float topv[TOP];
        uint32_t topi[TOP];
        int nt = 0;
        for (size_t q = fb.start[best]; q < fb.start[best + 1]; q++) {
            uint32_t id = fb.ids[q];
            float v = r->model->w[(size_t)id * DEID_NL + y] - r->model->w[(size_t)id * DEID_NL];
            int pos = nt;
            while (pos > 0 && topv[pos - 1] < v) pos--;
            if (pos >= TOP) continue;
            if (nt < TOP) nt++;
            for (int z = nt - 1; z > pos; z--) {
                topv[z] = topv[z - 1];
                topi[z] = topi[z - 1];
            }
            topv[pos] = v;
            topi[pos] = id;
        }
        size_t wl = 0;
        wl += (size_t)snprintf(ex[k].why + wl, sizeof ex[k].why - wl, "P(PHI)=%.3f;", (double)prob[best]);
        for (int z = 0; z < nt && wl < sizeof ex[k].why; z++) {
            size_t fl;
            const char *fn = strmap_str(&r->model->feats, topi[z], &fl);
            wl += (size_t)snprintf(ex[k].why + wl, sizeof ex[k].why - wl, " %.*s %+.2f", (int)(fl > 40 ? 40 : fl), fn,
                                   (double)topv[z]);
        }
    }
    /* the words the keep filter kept, one line per entry that kept them, after the spans */
    size_t nk = 0;
    for (size_t i = 0; !rc && i < c.nt; i++)
        if (ki[i].why && (i == 0 || ki[i - 1].why != ki[i].why || ki[i - 1].lo != ki[i].lo)) nk++;
    if (!rc && nk) {
        deid_explained *nx = cf_realloc_array(ex, n + nk, sizeof *ex);
        if (!nx) rc = cf_fail(err, CF_EINTERNAL, "out of memory");
        else ex = nx;
    }
    for (size_t i = 0; !rc && nk && i < c.nt; i++) {
        if (!ki[i].why || (i > 0 && ki[i - 1].why == ki[i].why && ki[i - 1].lo == ki[i].lo)) continue;
        size_t e = i;
        while (e + 1 < c.nt && ki[e + 1].why == ki[i].why && ki[e + 1].lo == ki[i].lo) e++;
        deid_explained *x = &ex[n++];
        memset(x, 0, sizeof *x);
        x->start = c.t[i].s;
        x->end = c.t[e].e;
        x->kept = 1;
        /* the model's type and probability for the most probable word */
        size_t best = i;
        for (size_t q = i; q <= e; q++)
            if (prob[q] > prob[best]) best = q;
        int by = 1;
        for (int y = 2; y < DEID_NL; y++)
            if (P[best * DEID_NL + y] > P[best * DEID_NL + by]) by = y;
        x->type = by - 1;
        x->prob = prob[best];
        const keepinfo *k = &ki[i];
        size_t es = c.t[k->elo].s, ee = c.t[k->ehi].e;
        snprintf(x->why, sizeof x->why, "P(PHI)=%.3f; kept: %s \"%.*s\"", (double)prob[best], KEEP_WHY[k->why],
                 (int)(ee - es > 60 ? 60 : ee - es), text + es);
    }
    free(ki);
    free(P);
    free(prob);
    free(lab);
    deid__featbuf_free(&fb);
    deid__ctx_free(&c);
    if (rc || n == 0) {
        free(ex);
        return rc;
    }
    *out = ex;
    *n_out = n;
    return CF_OK;
}
