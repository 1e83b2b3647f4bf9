/* Generated clinical notes with PHI at known offsets (notes.h).
 *
 * A note is built sentence by sentence from small template functions; every identifier goes
 * through phi(), which records its span, everything else through put(). Templates pick among
 * phrasings with the note's own random stream, so one seed gives one note. The clinical filler is
 * written for clinfm from general knowledge of how ICU nursing notes, progress notes and
 * discharge summaries read; no real note was looked at or copied. */
#include "synth/notes.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "util/sbuf.h"

/* ---- builder ----------------------------------------------------------------------------- */

typedef struct {
    char **v;
    size_t n, cap;
} wlist;

struct synth_namelists {
    wlist first, last, place;
    wlist med; /* clinical words (medical_words.txt, clinical_keep.txt) for filler; may be empty */
    wlist contrast; /* round 26: name/place-list words also in a keep or English list (contrast_pool) */
};

typedef struct {
    sbuf t; /* the note's text */
    deid_span *sp;
    size_t nsp, spcap;
    int oom;
    uint64_t rng;
    uint64_t rng2; /* round 11's coordinated names draw from their own stream (coord_maybe) */
    uint64_t rng3; /* round 12's item titles in list notes too (title_lines) */
    uint64_t rng4; /* round 13's coded-finding prose (coded_paragraph) */
    uint64_t rng6; /* round 25's lines opening with a name, names after per/w/ (name_line_maybe) */
    int opts;      /* SYNTH_NOTE_OPT_* */
    const synth_note_context *c;
    const synth_namelists *filler;
    int kind;
} nb;

static uint64_t rnd(nb *b) {
    uint64_t x = b->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return b->rng = x;
}
static int pick(nb *b, int n) { return n <= 1 ? 0 : (int)(rnd(b) % (uint64_t)n); }
static int chance(nb *b, int pct) { return pick(b, 100) < pct; }

static void put_n(nb *b, const char *s, size_t n) {
    if (!b->oom && sbuf_put(&b->t, s, n)) b->oom = 1;
}
static void put(nb *b, const char *s) { put_n(b, s, strlen(s)); }
static void putf(nb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void putf(nb *b, const char *fmt, ...) {
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (k > 0) put_n(b, tmp, (size_t)k < sizeof tmp ? (size_t)k : sizeof tmp - 1);
}
static void phi(nb *b, int type, const char *s) {
    if (!*s) return;
    size_t st = b->t.len;
    put(b, s);
    if (b->oom) return;
    deid_span *ns = cf_grow(b->sp, &b->spcap, b->nsp + 1, sizeof *ns, 32);
    if (!ns) {
        b->oom = 1;
        return;
    }
    b->sp = ns;
    /* a span right after another of the same type with nothing between extends it */
    b->sp[b->nsp].start = st;
    b->sp[b->nsp].end = b->t.len;
    b->sp[b->nsp].type = type;
    b->nsp++;
}
static void phif(nb *b, int type, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void phif(nb *b, int type, const char *fmt, ...) {
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    phi(b, type, tmp);
}
#define ONE(b, ...) one_of((b), (const char *const[]){__VA_ARGS__}, sizeof((const char *const[]){__VA_ARGS__}) / sizeof(const char *))
static const char *one_of(nb *b, const char *const *v, size_t n) { return v[pick(b, (int)n)]; }

/* ---- names, dates, numbers --------------------------------------------------------------- */

static const synth_person *clin(nb *b) {
    const synth_note_context *c = b->c;
    return c->n_clinicians ? &c->clinician[pick(b, c->n_clinicians)] : NULL;
}
static int rel_i(nb *b) { return b->c->n_relatives ? pick(b, b->c->n_relatives) : -1; }

static void upper_copy(char *dst, const char *src, size_t cap) {
    size_t i = 0;
    for (; src[i] && i + 1 < cap; i++) dst[i] = (src[i] >= 'a' && src[i] <= 'z') ? (char)(src[i] - 32) : src[i];
    dst[i] = 0;
}

/* A clinician as nurses write one: "Dr. Quill", "DR QUILL", "Dr Quill", "R. Tanaka", "Quill",
 * "Dr. Rose Quill"; cue word outside the span. */
static void clinician_ref(nb *b, int allow_bare) {
    const synth_person *p = clin(b);
    if (!p) {
        put(b, "MD");
        return;
    }
    char up[SYNTH_FIELD];
    switch (pick(b, allow_bare ? 8 : 6)) {
    case 0: put(b, "Dr. "); phi(b, DEID_NAME, p->family); break;
    case 1: put(b, "DR "); upper_copy(up, p->family, sizeof up); phi(b, DEID_NAME, up); break;
    case 2: put(b, "Dr "); phi(b, DEID_NAME, p->family); break;
    case 3: phif(b, DEID_NAME, "%c. %s", p->given[0], p->family); break;
    case 4: put(b, "Dr. "); phif(b, DEID_NAME, "%s %s", p->given, p->family); break;
    case 5: put(b, ONE(b, "NP ", "PA ", "Dr. ", "RN ")); phi(b, DEID_NAME, p->given); break;
    case 6: phi(b, DEID_NAME, p->family); break;
    default: phif(b, DEID_NAME, "%s %s", p->given, p->family); break;
    }
}

static int days_in(int y, int m) {
    static const int d[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m == 2 && ((y % 4 == 0 && y % 100) || y % 400 == 0)) return 29;
    return d[m - 1];
}
static void add_days(int *y, int *m, int *d, int k) {
    while (k > 0) {
        if (++*d > days_in(*y, *m)) {
            *d = 1;
            if (++*m > 12) *m = 1, ++*y;
        }
        k--;
    }
    while (k < 0) {
        if (--*d < 1) {
            if (--*m < 1) *m = 12, --*y;
            *d = days_in(*y, *m);
        }
        k++;
    }
}

static const char *MONTHS[12] = {"January", "February", "March", "April", "May", "June",
                                 "July", "August", "September", "October", "November", "December"};
static const char *ord(int d) {
    if (d % 100 >= 11 && d % 100 <= 13) return "th";
    return d % 10 == 1 ? "st" : d % 10 == 2 ? "nd" : d % 10 == 3 ? "rd" : "th";
}

/* A date offset days from admission, in one of the shapes notes use. */
static void date_ref(nb *b, int offset, int full) {
    int y = b->c->adm_year, m = b->c->adm_month, d = b->c->adm_day;
    add_days(&y, &m, &d, offset);
    int k = full ? pick(b, 5) : pick(b, 12);
    switch (k) {
    case 0: phif(b, DEID_DATE, "%d/%d/%d", m, d, y); break;
    case 1: phif(b, DEID_DATE, "%02d/%02d/%04d", m, d, y); break;
    case 2: phif(b, DEID_DATE, "%s %d, %d", MONTHS[m - 1], d, y); break;
    case 3: phif(b, DEID_DATE, "%d-%02d-%02d", y, m, d); break;
    case 4: phif(b, DEID_DATE, "%d/%d/%02d", m, d, y % 100); break;
    case 5: case 6: case 7: phif(b, DEID_DATE, "%d/%d", m, d); break;
    case 8: phif(b, DEID_DATE, "%s %d%s", ONE(b, MONTHS[m - 1], MONTHS[m - 1]), d, ord(d)); break;
    case 9: {
        char mon[16];
        snprintf(mon, sizeof mon, "%s", MONTHS[m - 1]);
        if (chance(b, 50)) mon[3] = 0;
        phif(b, DEID_DATE, "%s %d", mon, d);
        break;
    }
    case 10: phif(b, DEID_DATE, "%02d/%02d", m, d); break;
    default: phif(b, DEID_DATE, "%d/%02d", m, y % 100); break; /* month/two-digit year, "4/09" */
    }
}

static void phone_ref(nb *b) {
    const synth_note_context *c = b->c;
    if (c->pager[0] && chance(b, 55)) {
        put(b, ONE(b, "pager ", "pager #", "beeper ", "pgr ", "page at ", "beeper #", "pager# "));
        phi(b, DEID_PHONE, c->pager);
        return;
    }
    if (!c->phone[0]) {
        put(b, "phone on file");
        return;
    }
    put(b, ONE(b, "", "#", "phone ", "tel ", "cell ", "at "));
    if (chance(b, 25) && strlen(c->phone) >= 14) phi(b, DEID_PHONE, c->phone + 6); /* "555-0147" */
    else phi(b, DEID_PHONE, c->phone);
}

static void ward_ref(nb *b) {
    if (b->c->ward[0]) phi(b, DEID_LOCATION, b->c->ward);
    else put(b, "the floor");
}

static void hospital_ref(nb *b, int allow_abbr) {
    const synth_note_context *c = b->c;
    if (allow_abbr && c->hospital_abbr[0] && chance(b, 45)) phi(b, DEID_ORGANIZATION, c->hospital_abbr);
    else if (c->hospital[0]) phi(b, DEID_ORGANIZATION, c->hospital);
    else put(b, "this hospital");
}

/* "son, Penny, called", "wife Mary", "daughter (HCP) Ann Smith" */
static void relative_ref(nb *b, int i) {
    const synth_note_context *c = b->c;
    if (i < 0) {
        put(b, "family");
        return;
    }
    const synth_person *p = &c->relative[i];
    const char *rel = c->relation[i];
    switch (pick(b, 7)) {
    case 0: putf(b, "%s, ", rel); phi(b, DEID_NAME, p->given); put(b, ","); break;
    case 5: put(b, ONE(b, "pt's ", "her ", "his ", "the pt's ")); phi(b, DEID_NAME, p->given); putf(b, " (%s)", rel); break;
    case 1: putf(b, "%s ", rel); phi(b, DEID_NAME, p->given); break;
    case 2: putf(b, "%s ", rel); phif(b, DEID_NAME, "%s %s", p->given, p->family); break;
    case 3: putf(b, "%s (", rel); phi(b, DEID_NAME, p->given); put(b, ")"); break;
    case 4: phi(b, DEID_NAME, p->given); putf(b, " (%s)", rel); break;
    default: putf(b, "pt's %s ", rel); phi(b, DEID_NAME, p->given); break;
    }
}

/* ---- clinical filler (no PHI) ------------------------------------------------------------ */

static void vitals(nb *b) {
    int hr = 60 + pick(b, 50);
    putf(b, "HR %d-%d %s", hr, hr + 5 + pick(b, 20), ONE(b, "SR", "NSR", "ST", "SB", "AF", "afib", "SR w/ occ PVCs", "NSR no VEA", "SR no ectopy"));
    int sb = 90 + pick(b, 50);
    putf(b, ", %s %d-%d/%d0s", ONE(b, "BP", "SBP", "ABP", "NBP"), sb, sb + 10 + pick(b, 30), 4 + pick(b, 4));
    if (chance(b, 40)) putf(b, ", MAP %d-%d", 55 + pick(b, 15), 70 + pick(b, 15));
    if (chance(b, 40)) putf(b, ", CVP %d-%d", 4 + pick(b, 8), 10 + pick(b, 8));
    if (chance(b, 30)) putf(b, ", CO/CI %d.%d/%d.%d", 3 + pick(b, 4), pick(b, 10), 1 + pick(b, 3), pick(b, 10));
    if (chance(b, 20)) putf(b, ", FICK CO %d.%d", 3 + pick(b, 5), pick(b, 10));
    if (chance(b, 20)) putf(b, ", SVR %d", 600 + pick(b, 900));
    if (chance(b, 40)) putf(b, ", Tmax %d.%d", 98 + pick(b, 4), pick(b, 10));
    put(b, ". ");
}

static void pseudo_drug(nb *b);
static void pseudo_abbr(nb *b);
static void clin_word(nb *b, int style);
static void phi_name(nb *b, const char *s);
static void trap_sentence(nb *b);
static void cue_sentence(nb *b);
static void coord_maybe(nb *b);
static void place_sentence2(nb *b);
static void date_sentence2(nb *b);
static void common_sentence(nb *b);
static void events_list(nb *b);

/* A drip or drug as nurses write it: "levo", "Levophed", "LEVO" */
static void drug_name(nb *b) {
    static const char *D[] = {"levophed", "levo", "neo", "neosynephrine", "vasopressin", "dopamine", "dobutamine",
                              "milrinone", "nitro", "amio", "amiodarone", "dilt", "esmolol", "heparin", "insulin",
                              "propofol", "fentanyl", "versed", "precedex", "dilaudid", "ativan", "haldol", "lasix",
                              "bumex", "vanco", "zosyn", "cefepime", "flagyl", "cipro", "protonix", "octreotide",
                              "lopressor", "coumadin", "lovenox", "tylenol", "narcan", "kcl", "mag"};
    char w[24];
    snprintf(w, sizeof w, "%s", D[pick(b, 38)]);
    int st = pick(b, 10);
    if (st < 4) w[0] = (char)(w[0] - 32);
    else if (st < 6) upper_copy(w, w, sizeof w);
    put(b, w);
}

/* Lower-case and abbreviated narrative of the kind every nursing note has, with the words that
 * look like places or names after "in", "to", "per" and "at" ("slept in long intervals", "NGT
 * to LIS", "covered per RISS", "meet at 1500", "#6 Shiley"). */
static void narrative(nb *b) {
    switch (pick(b, 8)) {
    case 0: put(b, ONE(b, "slept in long intervals. ", "resting in bed. ", "up in chair x2h. ", "in NAD. ", "in good spirits today. ", "lines in place. ")); break;
    case 1: put(b, ONE(b, "started on ", "changed to ", "weaned off ", "remains on ", "switched from ")); drug_name(b); put(b, ONE(b, " overnight. ", " per team. ", ", tol well. ", " at 0300. ")); break;
    case 2: put(b, ONE(b, "NGT to ", "covered per ", "per ", "placed on ", "d/c'd ")); pseudo_abbr(b); put(b, ONE(b, ". ", " protocol. ", " scale. ", " w/o incident. ")); break;
    case 3: putf(b, "%s %02d%02d%s", ONE(b, "meet w/ team at", "due to void by", "next dose at", "labs @", "turned at"), pick(b, 24), 15 * pick(b, 4), ONE(b, ". ", ", ", " today. ")); break;
    case 4: put(b, ONE(b, "trach #6 ", "18g ", "20F ", "#8 ")); pseudo_drug(b); put(b, ONE(b, " cuffed, intact. ", " catheter in place. ", " dressing c/d/i. ")); break;
    case 5: drug_name(b); putf(b, " %d%s given at %02d00. ", 1 + pick(b, 40), ONE(b, "mg IV", " mg PO", "mcg", "u SQ"), pick(b, 24)); break;
    case 6: put(b, ONE(b, "pt c/o ", "denies ", "reports ")); clin_word(b, 0); put(b, ONE(b, ", ", ". ")); break;
    default: put(b, ONE(b, "tele: ", "rhythm ", "ekg ")); put(b, ONE(b, "SR 60s-70s no ectopy. ", "ST 100s-110s, occ PVC's. ", "afib 90s-120s. ")); break;
    }
}

static void drips(nb *b) {
    if (chance(b, 30)) {
        narrative(b);
        return;
    }
    switch (pick(b, 9)) {
    case 0: putf(b, "Levo gtt @ .%02d mcg/kg/min, titrated to keep MAP >%d. ", 2 + pick(b, 20), 60 + pick(b, 10)); break;
    case 1: putf(b, "NEO %d.%d mcg/kg/min, weaning as tol. ", pick(b, 3), pick(b, 10)); break;
    case 2: put(b, "Off LEVO since 0400, NEO weaned to off. "); break;
    case 3: putf(b, "Propofol %d mcg/kg/min for sedation, fent %d mcg/hr. ", 10 + 5 * pick(b, 8), 25 * (1 + pick(b, 6))); break;
    case 4: put(b, "changed to NITRO gtt for BP control, off AMIO. "); break;
    case 5: putf(b, "insulin gtt %d u/hr per protocol, FS %d-%d. ", 1 + pick(b, 8), 100 + pick(b, 60), 160 + pick(b, 60)); break;
    case 6: putf(b, "Heparin gtt @ %d u/hr, PTT %d, next PTT @ %d00. ", 600 + 50 * pick(b, 12), 45 + pick(b, 50), 10 + pick(b, 12)); break;
    case 7: put(b, "from AMIO to lopressor, dilt gtt off. "); break;
    default: putf(b, "Precedex .%d mcg/kg/hr, RASS %d. ", 2 + pick(b, 6), -2 + pick(b, 3)); break;
    }
}

static void vent(nb *b) {
    switch (pick(b, 8)) {
    case 0:
        if (chance(b, 50)) putf(b, "Vent: PS %d/5/40%%, RR %d, TV %d. ", 5 + 5 * pick(b, 3), 14 + pick(b, 10), 350 + 10 * pick(b, 30));
        else putf(b, "%s %d/%d/%d, %s. ", ONE(b, "PS", "CPAP/PS", "PSV", "ps"), 5 + pick(b, 16), 5 + pick(b, 6), 30 + 5 * pick(b, 8),
                  ONE(b, "tol well", "RR 20s", "ABG pnd", "sats 95-98%", "TV 400-500s"));
        break;
    case 1: putf(b, "on CPAP %d/5, sats %d-%d%%. ", 5 + 5 * pick(b, 2), 92 + pick(b, 4), 97 + pick(b, 3)); break;
    case 2: putf(b, "AC %dx%d/%d/%d%%, ABG 7.%d/%d/%d. ", 450 + 50 * pick(b, 4), 12 + pick(b, 10), 5 + pick(b, 6), 40 + 10 * pick(b, 5), 30 + pick(b, 15), 35 + pick(b, 15), 70 + pick(b, 60)); break;
    case 3: putf(b, "PS %d/5, PEEP 5/5, weaning as tol, RSBI %d. ", 10 + 2 * pick(b, 5), 40 + pick(b, 60)); break;
    case 4: putf(b, "extubated to %dL NC, sats %d%%, strong cough. ", 2 + pick(b, 4), 93 + pick(b, 6)); break;
    case 5: putf(b, "LS coarse bilat, sxn for thick tan sputum, %s. ", ONE(b, "CXR pending", "CXR w/ RLL infiltrate", "nebs given")); break;
    case 6: putf(b, "on 40%% FM, RR %d, O2 sat %d%%. ", 18 + pick(b, 12), 90 + pick(b, 8)); break;
    default: putf(b, "BIPAP %d/%d overnight, now %dL NC. ", 10 + pick(b, 6), 5, 2 + pick(b, 4)); break;
    }
}

static void neuro(nb *b) {
    put(b, ONE(b, "A&Ox3, MAE, follows commands. ", "alert, oriented x2, MAE x4, PERRL. ", "sedated on propofol, opens eyes to voice, MAE. ",
               "lethargic but arousable, PERRLA 3mm brisk, MAE weakly. ", "pt alert and cooperative, nods appropriately, MAE. ",
               "CAM-ICU neg, no deficits, MAE. ", "pain 4/10, given dilaudid .5mg IV w/ relief. "));
}

static void gi_gu(nb *b) {
    putf(b, "%s ", ONE(b, "Abd soft, NT/ND, +BS.", "TF Nepro @ 40cc/hr, goal 60, residuals <30.", "NPO, OGT to LCS.", "tol PO, BM x1 guaiac neg."));
    putf(b, "Foley draining %d-%dcc/hr %s. ", 20 + pick(b, 30), 40 + pick(b, 60), ONE(b, "clear yellow urine", "amber urine", "qs"));
    if (chance(b, 40)) putf(b, "Lasix %dmg IV given, diuresed %d-%dcc. ", 20 * (1 + pick(b, 4)), 500 + 100 * pick(b, 5), 1000 + 100 * pick(b, 8));
    if (chance(b, 30)) putf(b, "LR %dcc bolus x1 for low UO, 1/2NS @ %dcc/hr. ", 250 * (1 + pick(b, 3)), 75 + 25 * pick(b, 3));
    if (chance(b, 30)) putf(b, "K %d.%d repleted w/ %dmeq KCL, Mg %d.%d. ", 3 + pick(b, 2), pick(b, 10), 20 * (1 + pick(b, 3)), 1 + pick(b, 2), pick(b, 10));
    if (chance(b, 25)) putf(b, "I/O +%d.%dL, goal even to -%d00cc. ", pick(b, 3), pick(b, 10), 5 + pick(b, 5));
}

/* Clinical words the lists may not hold, made up from syllables: drug names with real drug-name
 * endings ("Zetralinazole"), all-capital abbreviations ("SBNET", "VLA"), items of order and
 * flowsheet lists ("5-Imaging", "0.45%saline1000ml"). None is PHI: they teach a de-identifier
 * that an unknown word in clinical context is not a name. */
static void pseudo_drug(nb *b) {
    static const char *SYL[] = {"ze", "tra", "vo", "lin", "cor", "da", "mi", "xa", "pro", "ben", "fe", "qui",
                                "lo", "ra", "ti", "sul", "na", "dex", "ka", "pe", "ro", "val", "es", "am"};
    static const char *SUF[] = {"mab", "nib", "pril", "olol", "azole", "cillin", "statin", "sartan", "vir", "ine",
                                "ide", "one", "mycin", "floxacin", "parin", "dipine", "tidine", "prazole", "afil",
                                "gliptin", "zepam", "done", "phen", "cort", "lukast", "semide", "zosin", "penem"};
    char w[48];
    size_t n = 0;
    int k = 1 + pick(b, 3);
    for (int i = 0; i < k; i++) n += (size_t)snprintf(w + n, sizeof w - n, "%s", SYL[pick(b, 24)]);
    snprintf(w + n, sizeof w - n, "%s", SUF[pick(b, 28)]);
    int style = pick(b, 10);
    if (style < 5) w[0] = (char)(w[0] - 32);
    else if (style == 9) upper_copy(w, w, sizeof w);
    put(b, w);
}
static void pseudo_abbr(nb *b) {
    char w[8];
    int n = 2 + pick(b, 4);
    for (int i = 0; i < n; i++) w[i] = (char)('A' + pick(b, 26));
    w[n] = 0;
    put(b, w);
}
static void med_line(nb *b) {
    pseudo_drug(b);
    putf(b, " %s%s %s %s", ONE(b, "", " "), ONE(b, "10", "25", "0.5", "1", "125", "500", "40"), ONE(b, "mg", "mcg", "g", "units", "mL", "mEq"),
         ONE(b, "PO daily", "IV q8h", "PO BID", "IV ONCE", "SC q12h", "PO qhs prn", "IV q24h", "NG TID"));
}
static void lab_item(nb *b) {
    pseudo_abbr(b);
    putf(b, "%s%d.%d", ONE(b, " ", ": ", " "), pick(b, 200), pick(b, 10));
}
/* A clinical word from the filler vocabulary (or a made-up drug when there is none), written
 * Capitalised, UPPER or lower. */
static void clin_word(nb *b, int style) {
    const synth_namelists *f = b->filler;
    if (!f || !f->med.n) {
        pseudo_drug(b);
        return;
    }
    char w[32];
    snprintf(w, sizeof w, "%s", f->med.v[pick(b, (int)f->med.n)]);
    /* charting shorthand: a clinical word cut short ("prevoc", "absorp") or without its
       vowels ("scrn", "dtctd"), as order lists and nurses write them */
    size_t wl = strlen(w);
    if (wl > 5 && chance(b, style == 0 ? 40 : 15)) {
        if (chance(b, 50)) w[3 + pick(b, (int)(wl - 4 < 4 ? wl - 4 : 4))] = 0;
        else {
            size_t o = 1;
            for (size_t i = 1; i < wl && o < 6; i++)
                if (!strchr("aeiou", w[i])) w[o++] = w[i];
            w[o] = 0;
        }
    }
    if (style == 1) w[0] = (char)(w[0] >= 'a' && w[0] <= 'z' ? w[0] - 32 : w[0]);
    else if (style == 2) upper_copy(w, w, sizeof w);
    put(b, w);
}
/* Title-case items of a flowsheet or problem list: "Arterial Line Dressing", "Dialysate Fluid". */
static void flowsheet_items(nb *b) {
    static const char *NOUN[] = {"Line", "Dressing", "Drain", "Catheter", "Tube", "Pressure", "Monitoring", "Assessment",
                                 "Care", "Change", "Site", "Output", "Intake", "Fluid", "Balance", "Skin", "Wound",
                                 "Restraint", "Risk", "Score", "Pain", "Sedation", "Glucose", "Drip", "Rate", "Volume",
                                 "Arterial", "Venous", "Central", "Peripheral", "Chest", "Trauma", "Nasal", "Oral",
                                 "Gastric", "Urine", "Stool", "Level", "Alarm", "Setting", "Mode", "Flow", "Tidal",
                                 "Culture", "Specimen", "Panel", "Screen", "Count", "Index", "Insertion", "Removal"};
    int style = pick(b, 3);
    for (int k = 1 + pick(b, 5); k > 0; k--) {
        int nw = 1 + pick(b, 3);
        for (int q = 0; q < nw; q++) {
            if (q) put(b, " ");
            if (chance(b, 50)) clin_word(b, style == 0 ? 1 : style == 1 ? 2 : 1);
            else {
                char w[24];
                snprintf(w, sizeof w, "%s", NOUN[pick(b, 51)]);
                if (style == 1) upper_copy(w, w, sizeof w);
                put(b, w);
            }
        }
        if (chance(b, 40)) putf(b, "%s%d%s", ONE(b, " ", ": ", " - "), pick(b, 300), ONE(b, "", " mL", " mmHg", "%", " mg/dL"));
        put(b, ONE(b, "\n", "\n", ", ", "; "));
    }
}

static void orders_block(nb *b) {
    if (chance(b, 40)) {
        flowsheet_items(b);
        return;
    }
    switch (pick(b, 4)) {
    case 0:
        put(b, ONE(b, "Meds:\n", "MEDICATIONS:\n", "Current meds: ", "meds: "));
        for (int k = 1 + pick(b, 6); k > 0; k--) {
            med_line(b);
            put(b, ONE(b, "\n", "; ", ", "));
        }
        break;
    case 1:
        put(b, ONE(b, "Labs: ", "LABS: ", "labs "));
        for (int k = 2 + pick(b, 6); k > 0; k--) {
            lab_item(b);
            put(b, ONE(b, ", ", " ", "; "));
        }
        put(b, "\n");
        break;
    case 2:
        for (int k = 1 + pick(b, 4); k > 0; k--) {
            putf(b, "%d-", 1 + pick(b, 9));
            put(b, ONE(b, "Imaging", "Cultures", "Intubation/Extubation", "Ventilation", "Labs", "Dressing", "Access Lines", "Invasive Ventilation", "Hemodynamics"));
            put(b, "\n");
        }
        break;
    default:
        put(b, ONE(b, "started ", "on ", "cont ", "changed to ", "d/c'd ", "hold ", "from "));
        pseudo_drug(b);
        put(b, ONE(b, " gtt", "", " per protocol", " for coverage", " x1"));
        put(b, ONE(b, ". ", ", ", "; "));
        pseudo_abbr(b);
        put(b, ONE(b, " neg. ", " pending. ", " sent. ", " wnl. ", " d/c'd. "));
        break;
    }
}

static void misc(nb *b) {
    switch (pick(b, 16)) {
    case 0: put(b, "Skin intact, turned q2h. "); break;
    case 1: putf(b, "Hct %d.%d, transfused %du PRBC, post Hct pending. ", 22 + pick(b, 8), pick(b, 10), 1 + pick(b, 2)); break;
    case 2: put(b, "afebrile, cont vanco/zosyn, bcx x2 pending. "); break;
    case 3: put(b, "R IJ TLC intact, A-line L radial w/ good waveform. "); break;
    case 4: putf(b, "u/o %d-%d cc/hr, BUN/Cr %d/%d.%d. ", 800 - 800 + 30 + pick(b, 20), 60 + pick(b, 40), 20 + pick(b, 30), 1 + pick(b, 2), pick(b, 10)); break;
    case 5: putf(b, "tot fluids %d-%d today, NEO AS ordered. ", 800, 1000 + 100 * pick(b, 5)); break;
    case 6: put(b, "PACER wires capped, temp pacer off, no BOLUS needed. "); break;
    case 7: put(b, "Pt from OSH, intubated for airway protection, PMHx CHF, COPD, DM2. "); break;
    case 8: put(b, "seen by PT/OT, OOB to chair x2 hrs. "); break;
    case 9: putf(b, "CareVue updated, labs sent @ %02d00. ", pick(b, 24)); break;
    case 10:
        put(b, ONE(b, "1/2 tab PO given. ", "take 1/2 tablet qhs. ", "strength 5/5 all ext, ", "pain 7/10 -> 3/10 after meds. ",
                   "2/6 SEM heard, ", "Morse fall score 45, fall precautions. ", "Braden 14, turned q2h. ",
                   "GCS 15, Glasgow coma scale unchanged. ", "pt rose from bed w/ assist x1. ", "son will call in am. ",
                   "ST elevation in V2-V4 resolved. ", "takes St. John's wort at home. ", "Will: pt wishes DNR. ",
                   "Hoehn and Yahr stage 2. ", "Parkinson disease, on sinemet. ", "Graves disease s/p RAI. "));
        break;
    case 12: {
        /* ranges shaped like a 7-digit phone number ("800-1000") */
        int lo = 100 * (3 + pick(b, 9)), hi = lo + 100 * (1 + pick(b, 8));
        putf(b, "%s %d-%d%s. ", ONE(b, "tot fluids", "u/o", "goal neg", "diuresed", "UO goal", "IVF total", "I/O goal even to -"),
             lo, hi, ONE(b, "", " today", " over shift", " for 24h", " cc", "cc"));
        break;
    }
    case 11: put(b, ONE(b, "WBC 2000, plt 1950. ", "2000 calorie ADA diet. ", "resting at 1930. ", "febrile at 2100, cx sent. ",
                        "Weight 2000 g. ", "Height 5'10\". ", "0700-1900 shift uneventful. ")); break;
    default: orders_block(b); break;
    }
}

static void age_phrase(nb *b) {
    const synth_note_context *c = b->c;
    int over = c->age >= 90;
    char sx = c->patient.sex;
    char a[8];
    snprintf(a, sizeof a, "%d", c->age);
    switch (pick(b, 5)) {
    case 0: if (over) phi(b, DEID_AGE_OVER_89, a); else put(b, a); putf(b, "yo %c", sx); break;
    case 1: if (over) phi(b, DEID_AGE_OVER_89, a); else put(b, a); putf(b, " y/o %s", sx == 'F' ? "female" : "male"); break;
    case 2: if (over) phi(b, DEID_AGE_OVER_89, a); else put(b, a); putf(b, "%c", sx); break;
    case 3: if (over) phi(b, DEID_AGE_OVER_89, a); else put(b, a); putf(b, " yo %s", sx == 'F' ? "woman" : "man"); break;
    default: if (over) phi(b, DEID_AGE_OVER_89, a); else put(b, a); put(b, " year old"); putf(b, " %s", sx == 'F' ? "F" : "M"); break;
    }
}

/* ---- PHI sentences ----------------------------------------------------------------------- */

static void family_sentence(nb *b) {
    coord_maybe(b);
    int i = rel_i(b);
    switch (pick(b, 9)) {
    case 0: relative_ref(b, i); put(b, ONE(b, " called, updated on pt's condition. ", " in to visit, questions answered. ", " called x2 overnight. ")); break;
    case 1: put(b, "Family meeting w/ "); clinician_ref(b, 0); put(b, " and "); relative_ref(b, i); put(b, ", pt made DNR/DNI. "); break;
    case 2: put(b, "spoke with "); if (i >= 0) phi(b, DEID_NAME, b->c->relative[i].given); else put(b, "family"); put(b, ", who would like a call if any changes "); phone_ref(b); put(b, ". "); break;
    case 3: if (i >= 0) phi(b, DEID_NAME, b->c->relative[i].given); else put(b, "Family"); put(b, ONE(b, " updated by RN. ", " aware of plan. ", " here at bedside most of shift. ")); break;
    case 4: relative_ref(b, i); put(b, " is HCP, can be reached at "); phone_ref(b); put(b, ". "); break;
    case 5: put(b, "Social: "); relative_ref(b, i); put(b, ONE(b, " visited, ", " called, ", " at bedside, ")); put(b, "lives in "); phi(b, DEID_LOCATION, b->c->city[0] ? b->c->city : "town"); put(b, ". "); break;
    case 6: put(b, "Pt's "); put(b, i >= 0 ? b->c->relation[i] : "family"); put(b, " "); if (i >= 0) phif(b, DEID_NAME, "%s %s", b->c->relative[i].given, b->c->relative[i].family); put(b, " called from "); phi(b, DEID_LOCATION, b->c->city[0] ? b->c->city : "home"); put(b, ". "); break;
    case 7:
        if (chance(b, 50)) put(b, "no family contact this shift. ");
        else {
            /* a capitalised common word opening the sentence before a name is no part of it */
            put(b, ONE(b, "Later ", "Then ", "Today ", "Tonight ", "Earlier ", "Also ", "Afterwards ", "Again "));
            if (i >= 0) phi(b, DEID_NAME, chance(b, 50) ? b->c->relative[i].given : b->c->relative[i].family);
            else put(b, "family");
            put(b, ONE(b, " called back. ", " came in w/ her son. ", " visited. ", " asked for update. "));
        }
        break;
    default: put(b, "family in "); put(b, ONE(b, "this afternoon", "this eve", "on Monday", "Sunday")); put(b, ", "); relative_ref(b, i); put(b, " asking for update from "); clinician_ref(b, 0); put(b, ". "); break;
    }
}

static void team_sentence(nb *b) {
    coord_maybe(b);
    switch (pick(b, 10)) {
    case 0: clinician_ref(b, 1); put(b, ONE(b, " aware. ", " aware of hypotension. ", " notified, no new orders. ", " in to see pt. ")); break;
    case 1: put(b, "per "); clinician_ref(b, 1); put(b, ", cont current plan. "); break;
    case 2: put(b, "paged "); clinician_ref(b, 0); put(b, " re: low UO, "); phone_ref(b); put(b, ". "); break;
    case 3: { const synth_person *p = clin(b); put(b, "per "); if (p) phif(b, DEID_NAME, "%c.", p->given[0]); else put(b, "team"); put(b, " ok to hold TF. "); break; }
    case 4: put(b, "MD aware, team aware, no new orders. "); break;
    case 5: put(b, "discussed w/ "); clinician_ref(b, 1); put(b, " and "); clinician_ref(b, 1); put(b, ". "); break;
    case 6: put(b, "ID consult called, "); clinician_ref(b, 0); put(b, " to see pt in am. "); break;
    case 7: put(b, "Team notified of K 3.2, repleted. "); break;
    case 8: put(b, "called covering resident "); clinician_ref(b, 0); put(b, " at "); phone_ref(b); put(b, ". "); break;
    default: clinician_ref(b, 1); put(b, " placed new R IJ, CXR confirmed placement. "); break;
    }
}

static void dates_sentence(nb *b) {
    int k = b->c->day_of_stay;
    switch (pick(b, 9)) {
    case 0: put(b, "on "); date_ref(b, -pick(b, 3), 0); put(b, " pt had episode of AF w/ RVR. "); break;
    case 1: put(b, "CXR"); date_ref(b, -pick(b, 2), 0); put(b, " w/ worsening bilat effusions. "); break;
    case 2: put(b, "abx started "); date_ref(b, -2 - pick(b, 3), 0); put(b, "-"); date_ref(b, -pick(b, 2), 0); put(b, ". "); break;
    case 3: put(b, "Admitted "); date_ref(b, -k, 0); put(b, " from "); if (chance(b, 50)) put(b, "OSH"); else hospital_ref(b, 1); put(b, " w/ resp failure. "); break;
    case 4: put(b, "last BM "); date_ref(b, -1 - pick(b, 3), 0); put(b, ". "); break;
    case 5: put(b, "cardiac cath planned for "); date_ref(b, 1 + pick(b, 3), 0); put(b, ", consent signed. "); break;
    case 6: put(b, "s/p CABG x3 on "); date_ref(b, -k, 0); put(b, ". "); break;
    case 7: put(b, "ECHO "); date_ref(b, -pick(b, 3), 0); put(b, " EF 25%. "); break;
    default: put(b, "trach/PEG "); date_ref(b, pick(b, 5), 0); put(b, " per "); clinician_ref(b, 0); put(b, ". "); break;
    }
}

static void place_sentence(nb *b) {
    switch (pick(b, 7)) {
    case 0: put(b, "plan to transfer to "); ward_ref(b); put(b, ONE(b, " when bed available. ", " today. ", " in am. ")); break;
    case 1: put(b, "transferred from "); hospital_ref(b, 1); put(b, " for CABG eval. "); break;
    case 2: put(b, "pt was at "); if (b->c->other_hospital[0]) phi(b, DEID_ORGANIZATION, b->c->other_hospital); else put(b, "rehab"); put(b, " until last week. "); break;
    case 3: put(b, "bed requested on "); ward_ref(b); put(b, ", report to be called to floor RN. "); break;
    case 4: put(b, "admitted via "); hospital_ref(b, 1); put(b, " ED. "); break;
    case 5: put(b, "lives alone in "); phi(b, DEID_LOCATION, b->c->city[0] ? b->c->city : "town"); put(b, ", indep at baseline. "); break;
    default: put(b, "d/c to rehab vs home w/ VNA, case mgmt following. "); break;
    }
}

static void signature(nb *b) {
    const synth_note_context *c = b->c;
    const synth_person *p = NULL;
    for (int i = 0; i < c->n_clinicians; i++)
        if (!strcmp(c->role[i], "RN")) p = &c->clinician[i];
    if (!p) p = clin(b);
    if (!p) return;
    switch (pick(b, 11)) {
    case 0: put(b, "\n"); phif(b, DEID_NAME, "%s %s", p->given, p->family); put(b, ", RN\n"); break;
    case 1: put(b, "\n-- "); phif(b, DEID_NAME, "%c. %s", p->given[0], p->family); put(b, " RN 0700-1900\n"); break;
    case 2: put(b, "\n"); phif(b, DEID_NAME, "%s, %s", p->family, p->given); put(b, " RN\n"); break;
    case 3: put(b, "\nSigned: "); phif(b, DEID_NAME, "%s %s", p->given, p->family); put(b, " RN\n"); break;
    case 4: put(b, "\n"); phi(b, DEID_NAME, p->given); put(b, " RN "); phone_ref(b); put(b, "\n"); break;
    case 5: case 6: put(b, "\n"); phi_name(b, p->given); put(b, "\n"); break; /* a given name alone on the last line */
    case 7: { char tmp[2 * SYNTH_FIELD + 4]; put(b, "\n"); snprintf(tmp, sizeof tmp, "%s %c.", p->given, p->family[0]); phi_name(b, tmp); put(b, ONE(b, " RN\n", " rn\n", ", RN\n", "\n")); break; }
    case 8: { char tmp[8]; put(b, "\n"); snprintf(tmp, sizeof tmp, "%c.%c.", p->given[0], p->family[0]); phi(b, DEID_NAME, tmp); put(b, " RN\n"); break; }
    case 9: { char tmp[2 * SYNTH_FIELD + 4]; put(b, "\n"); snprintf(tmp, sizeof tmp, "%s %s", p->given, p->family); phi_name(b, tmp); put(b, ONE(b, " rn\n", " RN\n", "\n")); break; }
    default: put(b, "\n"); break;
    }
}

/* ---- note kinds -------------------------------------------------------------------------- */

static void intro(nb *b) {
    switch (pick(b, 4)) {
    case 0: put(b, "Pt is "); age_phrase(b); put(b, " w/ hx "); break;
    case 1: age_phrase(b); put(b, " adm w/ "); break;
    case 2: put(b, "pt "); age_phrase(b); put(b, ", PMHx "); break;
    default: put(b, "Pt is a "); age_phrase(b); put(b, " with h/o "); break;
    }
    put(b, ONE(b, "CHF, on levo gtt, PS 10/5, NEO weaned. ", "CAD s/p CABG, AF, CRI. ", "COPD, DM2, HTN, admitted w/ PNA. ",
               "ESLD, GIB, s/p banding x2. ", "sepsis from UTI, ARF, on CVVH. ", "SAH, s/p coiling, q1h neuro checks. "));
    if (chance(b, 40)) {
        put(b, ONE(b, "Transferred from ", "came from ", "Pt from "));
        if (chance(b, 35)) put(b, "OSH");
        else hospital_ref(b, 1);
        put(b, ". ");
    }
}

/* Round 25 (SYNTH_NOTE_OPT_NAME_LINES): a person charted with no cue at all, the given name or
 * nickname opening a line or sentence before the state or action it reports ("Faith calm and
 * cooperative", "Rusty OOB to chair x2"), and a clinician after "per", "w/", "d/w" as an initial
 * or a name with the instruction right after it, with or without punctuation ("per J give 20
 * meq KCL", "d/w Tanaka; NPO after MN"); beside as many lines of the same shapes with no PHI ("Pt
 * calm and cooperative", "Neo weaned off", "per MD cont IVF", "w/ PT OOB to chair"). Every phrase
 * written for clinfm for this round (none of the held-apart message style's). Drawn from a
 * stream of its own (rng6), so every other word of the note is what round 23's generator wrote. */
static const char *const NL_STATE[] = {
    "calm and cooperative", "resting quietly in bed", "resting comfortably", "more alert this am", "confused overnight, reoriented x3",
    "tolerated bath well", "ambulated 50 ft w/ walker", "OOB to chair x2", "sleeping on and off", "c/o incisional pain, medicated",
    "denies SOB or CP", "lethargic but opens eyes to voice", "alert and oriented x3", "tearful at times, support given",
    "ate 50% of breakfast", "refused am meds", "agitated, pulling at lines", "follows commands inconsistently", "voiding qs",
    "anxious about going home", "weak, needs assist x2", "pleasant, no complaints", "sat in chair for lunch", "tolerating clears",
    "to BSC w/ assist", "napping after lunch", "restless at times, redirected", "comfortable on 2L NC", "watching TV, in good spirits",
    "c/o nausea after lunch", "coughing up thick sputum", "incontinent of urine x1", "speech clearer today", "on bedpan, small BM",
    "nodding appropriately", "afebrile, VSS", "MAE, grips equal", "OOB w/ PT, tolerated well"};
static const char *const NL_ACT[] = {
    "give 20 meq KCL", "cont IVF at 75/hr", "start heparin gtt", "ok to d/c foley", "repeat lytes at 1600", "increase TF to 50",
    "wean FiO2 as tol", "NPO after MN", "transfuse 1 unit PRBC", "keep MAP > 65", "d/c a-line", "advance diet as tol",
    "send blood cx x2", "change dsg daily", "check FS q6h", "give lasix 40 IV", "no further imaging today", "titrate levo to MAP 65",
    "OOB to chair tid", "may shower"};
static const char *const NL_NOPHI_OPEN[] = {"Pt", "pt", "Patient", "PT", "Neo", "Levo", "Propofol", "Foley", "Family", "Wife", "Son",
                                            "Resident", "Team", "RN", "MD", "Dilt", "Insulin gtt", "TF", "Heparin", "Vanco"};
static const char *const NL_NOPHI_TAIL[] = {"weaned off", "titrated to MAP > 65", "off since 0400", "draining clear yellow", "at goal",
                                            "held for procedure", "restarted at 0600", "at bedside", "aware", "in to see pt"};
static const char *const NL_NOPHI_PER[] = {"MD", "protocol", "pharmacy", "renal", "team", "resident", "pt", "pt's wife", "PT",
                                           "RT", "family", "attending", "fellow", "NP", "ortho", "primary team"};

static void name_line(nb *b) {
    const synth_note_context *c = b->c;
    const synth_person *p = clin(b);
    char tmp[2 * SYNTH_FIELD + 4];
    int r = pick(b, 100);
    if (r < 35) { /* a person opening it, no cue */
        int who = pick(b, 100), i = rel_i(b);
        if (who < 70 || (!p && i < 0)) phi_name(b, c->nickname[0] && chance(b, 50) ? c->nickname : c->patient.given);
        else if (who < 85 && i >= 0) phi_name(b, c->relative[i].given);
        else if (p) phi_name(b, p->given);
        else phi_name(b, c->patient.given);
        if (who >= 70 && who < 85 && i >= 0)
            put(b, ONE(b, " at bedside most of shift", " called for update", " here overnight, supportive", " brought in clothes"));
        else if (who >= 85 && p) put(b, ONE(b, " in to assess", " placed new orders", " reviewed CXR", " at bedside for line"));
        else { put(b, " "); put(b, NL_STATE[pick(b, (int)(sizeof NL_STATE / sizeof *NL_STATE))]); }
    } else if (r < 60) { /* a clinician after per / w/ / d/w, the instruction right after it */
        put(b, ONE(b, "per ", "Per ", "w/ ", "d/w ", "D/w ", "discussed w/ ", "reviewed w/ ", "spoke w/ ", "PER "));
        if (!p) put(b, "team");
        else switch (pick(b, 5)) {
            case 0: phif(b, DEID_NAME, "%c", p->given[0]); break;
            case 1: phif(b, DEID_NAME, "%c.", p->given[0]); break;
            case 2: phi_name(b, p->given); break;
            case 3: phi_name(b, p->family); break;
            default: snprintf(tmp, sizeof tmp, "%c. %s", p->given[0], p->family); phi_name(b, tmp); break;
            }
        put(b, ONE(b, " ", " ", ", ", "; ", " - "));
        put(b, NL_ACT[pick(b, (int)(sizeof NL_ACT / sizeof *NL_ACT))]);
    } else if (r < 82) { /* the same line, no PHI */
        if (chance(b, 50)) {
            put(b, ONE(b, "Pt ", "pt ", "Patient ", "PT "));
            put(b, NL_STATE[pick(b, (int)(sizeof NL_STATE / sizeof *NL_STATE))]);
        } else {
            put(b, NL_NOPHI_OPEN[pick(b, (int)(sizeof NL_NOPHI_OPEN / sizeof *NL_NOPHI_OPEN))]);
            put(b, " ");
            put(b, NL_NOPHI_TAIL[pick(b, (int)(sizeof NL_NOPHI_TAIL / sizeof *NL_NOPHI_TAIL))]);
        }
    } else { /* per / w/ before no person */
        put(b, ONE(b, "per ", "Per ", "w/ ", "d/w ", "D/w ", "discussed w/ ", "reviewed w/ ", "PER "));
        put(b, NL_NOPHI_PER[pick(b, (int)(sizeof NL_NOPHI_PER / sizeof *NL_NOPHI_PER))]);
        put(b, ONE(b, " ", " ", ", ", "; ", " - "));
        put(b, NL_ACT[pick(b, (int)(sizeof NL_ACT / sizeof *NL_ACT))]);
    }
}

/* With SYNTH_NOTE_OPT_NAME_LINES, now and then (pct in 100) a name_line: its own line when
 * newline, else a sentence ended by ". " (run-on notes; the lines notes break it into a line). */
static void name_line_maybe(nb *b, int pct, int newline) {
    if (!(b->opts & SYNTH_NOTE_OPT_NAME_LINES)) return;
    uint64_t main_rng = b->rng;
    b->rng = b->rng6;
    if (chance(b, pct)) {
        name_line(b);
        put(b, newline ? "\n" : ". ");
    }
    b->rng6 = b->rng;
    b->rng = main_rng;
}

/* Round 26 (SYNTH_NOTE_OPT_CONTRAST): a one-line note in which words that are both in a name or
 * place list and in a keep or English list (b->filler->contrast, computed from the lists when the
 * notes are generated) are used among clinical words, so that the one-case identity and
 * end-of-note weights of such a word are fitted against one-line shorthand where it is no PHI;
 * and, beside it, the same one-line shape holding a real name (round 25's name opening a line
 * before a state) with such a trap next to it. Fragments written for clinfm for this round. */
static const char *const CT_FRAG[] = {
    "turned q2h", "HOB up 30", "on 2L NC", "lines patent", "dsg c/d/i", "cont to monitor", "no distress", "VSS", "MAE",
    "afebrile", "u/o adequate", "tol TF at goal", "skin intact", "pain 3/10", "sat 95%", "OOB to chair", "NPO", "IVF at 75",
    "BS x4", "sx'd x1", "K repleted", "FS 140s", "SR 80s", "resp even", "pulses palp", "up w/ walker"};
static const char *const CT_AFTER[] = {"noted", "in place", "cont", "present", "on", "off", "applied", "checked", "x1", "x2",
                                       "improved", "resolved", "intact", "changed"};
static void contrast_segment(nb *b) {
    const wlist *w = &b->filler->contrast;
    const char *word = w->v[pick(b, (int)w->n)];
    switch (pick(b, 4)) {
    case 0: put(b, word); put(b, " "); clin_word(b, 0); break;
    case 1: clin_word(b, 0); put(b, " "); put(b, word); break;
    case 2: put(b, word); put(b, " "); put(b, CT_AFTER[pick(b, (int)(sizeof CT_AFTER / sizeof *CT_AFTER))]); break;
    default: put(b, CT_FRAG[pick(b, (int)(sizeof CT_FRAG / sizeof *CT_FRAG))]); put(b, ONE(b, ", ", " ", "; ")); put(b, word); put(b, " ");
        put(b, CT_AFTER[pick(b, (int)(sizeof CT_AFTER / sizeof *CT_AFTER))]);
        break;
    }
}
static void contrast_note(nb *b) {
    const synth_note_context *c = b->c;
    if (!b->filler || !b->filler->contrast.n) { /* no lists to intersect: a line of shorthand only */
        put(b, CT_FRAG[pick(b, (int)(sizeof CT_FRAG / sizeof *CT_FRAG))]);
        put(b, "\n");
        return;
    }
    /* round 27: half with names, so a one-case name opening a line is met as often as a trap */
    if (chance(b, (b->opts & SYNTH_NOTE_OPT_CONTRAST_NAMES) ? 50 : 40)) { /* a name opening the line before a state, a trap beside it */
        phi_name(b, c->nickname[0] && chance(b, 50) ? c->nickname : c->patient.given);
        put(b, " ");
        put(b, NL_STATE[pick(b, (int)(sizeof NL_STATE / sizeof *NL_STATE))]);
        put(b, ONE(b, ", ", ". ", "; ", " "));
        contrast_segment(b);
    } else {
        for (int k = 1 + pick(b, 3), j = 0; j < k; j++) {
            if (j) put(b, ONE(b, ", ", ". ", "; ", " "));
            if (chance(b, 30)) {
                put(b, CT_FRAG[pick(b, (int)(sizeof CT_FRAG / sizeof *CT_FRAG))]);
                put(b, ONE(b, ", ", " "));
            }
            contrast_segment(b);
        }
    }
    put(b, ONE(b, "\n", ".\n", "\n"));
}

static void nursing_sections(nb *b) {
    int upper_heads = chance(b, 50);
    const char *heads[] = {"Neuro", "CV", "Resp", "GI/GU", "ID", "Skin", "Social", "Plan"};
    intro(b);
    put(b, "\n");
    for (int s = 0; s < 8; s++) {
        if (s > 0 && s < 7 && chance(b, 20)) continue;
        char h[16];
        if (upper_heads) upper_copy(h, heads[s], sizeof h);
        else snprintf(h, sizeof h, "%s", heads[s]);
        putf(b, "%s: ", h);
        switch (s) {
        case 0: neuro(b); if (chance(b, 30)) narrative(b); if (chance(b, 30)) team_sentence(b); if (chance(b, 30)) trap_sentence(b); if (chance(b, 40)) common_sentence(b); break;
        case 1: vitals(b); drips(b); if (chance(b, 40)) dates_sentence(b); if (chance(b, 40)) team_sentence(b); if (chance(b, 40)) trap_sentence(b); break;
        case 2: vent(b); if (chance(b, 30)) dates_sentence(b); if (chance(b, 50)) trap_sentence(b); if (chance(b, 40)) common_sentence(b); break;
        case 3: gi_gu(b); if (chance(b, 50)) trap_sentence(b); if (chance(b, 30)) cue_sentence(b); break;
        case 4: misc(b); if (chance(b, 30)) dates_sentence(b); if (chance(b, 30)) date_sentence2(b); break;
        case 5: misc(b); if (chance(b, 40)) orders_block(b); if (chance(b, 50)) common_sentence(b); break;
        case 6: if (chance(b, 50)) family_sentence(b); else cue_sentence(b); if (chance(b, 50)) family_sentence(b); if (chance(b, 30)) place_sentence2(b); break;
        default: put(b, ONE(b, "cont to monitor, wean vent as tol, ", "cont current POC, ", "monitor hemodynamics, "));
            if (chance(b, 60)) place_sentence(b);
            if (chance(b, 40)) team_sentence(b);
            break;
        }
        put(b, "\n");
        name_line_maybe(b, 12, 1);
    }
    if (chance(b, 70)) signature(b);
}

static void nursing_runon(nb *b) {
    put(b, ONE(b, "NPN 7a-7p\n", "Nursing Progress Note\n", "NSG NOTE 1900-0700:\n", "", "MICU NPN\n", "CCU NURSING NOTE\n"));
    intro(b);
    int n = 6 + pick(b, 8);
    for (int k = 0; k < n; k++) {
        switch (pick(b, 17)) {
        case 0: vitals(b); break;
        case 1: drips(b); break;
        case 2: vent(b); break;
        case 3: neuro(b); break;
        case 4: gi_gu(b); break;
        case 5: misc(b); break;
        case 6: family_sentence(b); break;
        case 7: team_sentence(b); break;
        case 8: dates_sentence(b); break;
        case 9: place_sentence(b); break;
        case 10: if (chance(b, 50)) { narrative(b); break; } put(b, ONE(b, "pt resting comfortably. ", "no acute events overnight. ", "see flowsheet for details. ", "will cont to monitor closely. ")); break;
        case 11: trap_sentence(b); if (chance(b, 50)) trap_sentence(b); break;
        case 12: cue_sentence(b); break;
        case 13: if (chance(b, 50)) place_sentence2(b); else date_sentence2(b); break;
        case 14: case 15: common_sentence(b); break;
        case 16: if (chance(b, 30)) events_list(b); else common_sentence(b); break;
        default: clin_word(b, chance(b, 15)); put(b, ONE(b, " noted, ", " improved, ", " cont, ", " ordered. ", ": ")); clin_word(b, 0); put(b, ". "); break;
        }
        name_line_maybe(b, 12, 0);
        if (chance(b, 25)) put(b, "\n");
    }
    if (chance(b, 60)) signature(b);
}

static void progress_note(nb *b) {
    const synth_note_context *c = b->c;
    put(b, ONE(b, "MICU Attending Progress Note\n", "Progress Note - Hospital Day ", "Resident Progress Note\n", "ICU PROGRESS NOTE\n"));
    if (b->t.len && b->t.p[b->t.len - 1] == ' ') putf(b, "%d\n", c->day_of_stay + 1);
    put(b, "Date: ");
    date_ref(b, 0, 1);
    put(b, "\n");
    if (chance(b, 60)) {
        put(b, "Patient: ");
        phif(b, DEID_NAME, "%s %s", c->patient.given, c->patient.family);
        if (c->mrn[0] && chance(b, 70)) {
            put(b, "   MRN: ");
            phi(b, DEID_MRN, c->mrn);
        }
        put(b, "\n");
    }
    put(b, "S: ");
    put(b, ONE(b, "Pt reports feeling better, less SOB. ", "Overnight: new AF w/ RVR, given dilt 10mg IV x2. ", "No acute events. ", "Intubated, sedated. "));
    if (chance(b, 40)) family_sentence(b);
    put(b, "\nO: ");
    vitals(b);
    vent(b);
    put(b, "\nLabs: ");
    putf(b, "WBC %d.%d, Hct %d.%d, Plt %d, Na %d, K %d.%d, Cr %d.%d, lactate %d.%d\n", 5 + pick(b, 15), pick(b, 10), 24 + pick(b, 12),
         pick(b, 10), 80 + pick(b, 300), 130 + pick(b, 15), 3 + pick(b, 2), pick(b, 10), pick(b, 3), pick(b, 10), 1 + pick(b, 3), pick(b, 10));
    if (chance(b, 60)) orders_block(b);
    put(b, "A/P: ");
    age_phrase(b);
    put(b, ONE(b, " w/ septic shock, improving. ", " w/ CHF exacerbation. ", " w/ hypoxemic resp failure. "));
    drips(b);
    if (chance(b, 50)) dates_sentence(b);
    if (chance(b, 50)) place_sentence(b);
    put(b, "\n");
    put(b, ONE(b, "Dispo: ICU for now. ", "Code: Full. ", "Code status: DNR/DNI, discussed w/ family. "));
    put(b, "\n");
    const synth_person *p = clin(b);
    if (p) {
        put(b, ONE(b, "Attending: ", "Signed by ", "Electronically signed: ", ""));
        if (chance(b, 50)) {
            put(b, "Dr. ");
            phif(b, DEID_NAME, "%s %s", p->given, p->family);
        } else {
            phif(b, DEID_NAME, "%s %s", p->given, p->family);
            put(b, ", MD");
        }
        if (chance(b, 40)) {
            put(b, " ");
            phone_ref(b);
        }
        put(b, "\n");
    }
}

static void discharge_summary(nb *b) {
    const synth_note_context *c = b->c;
    put(b, "DISCHARGE SUMMARY\n");
    put(b, "Name: ");
    phif(b, DEID_NAME, "%s, %s", c->patient.family, c->patient.given);
    if (c->mrn[0]) {
        put(b, "    Unit No: ");
        phi(b, DEID_MRN, c->mrn);
    }
    put(b, "\nAdmission Date: ");
    date_ref(b, -c->day_of_stay, 1);
    put(b, "    Discharge Date: ");
    date_ref(b, 0, 1);
    put(b, "\nService: MEDICINE\nAttending: ");
    const synth_person *p = clin(b);
    if (p) phif(b, DEID_NAME, "%s %s", p->given, p->family), put(b, ", MD");
    put(b, "\n\nHISTORY OF PRESENT ILLNESS: ");
    put(b, "The patient is a ");
    age_phrase(b);
    put(b, ONE(b, " with a history of CHF (EF 30%) and AF on coumadin who presented to ", " with COPD on home O2 who presented to ", " with ESRD on HD who was transferred from "));
    hospital_ref(b, 0);
    put(b, ONE(b, " with dyspnea. ", " after a fall. ", " with fever and hypotension. "));
    dates_sentence(b);
    put(b, "\n\nHOSPITAL COURSE: ");
    drips(b);
    vent(b);
    if (chance(b, 60)) team_sentence(b);
    put(b, "\n\nDISCHARGE MEDICATIONS: Lasix 40 mg PO daily, Lopressor 25 mg PO BID, ASA 81 mg daily, Coumadin 5 mg qhs.\n");
    for (int k = pick(b, 6); k > 0; k--) {
        putf(b, "%d. ", k);
        med_line(b);
        put(b, "\n");
    }
    put(b, "DISCHARGE DISPOSITION: ");
    if (chance(b, 50)) {
        put(b, "Home with services\nAddress: ");
        if (c->street[0]) {
            phi(b, DEID_ADDRESS, c->street);
            put(b, ", ");
        }
        phi(b, DEID_LOCATION, c->city);
        if (chance(b, 15)) {
            /* an address abroad, with a UK-style postcode */
            put(b, " ");
            phif(b, DEID_ZIP, "%c%c%d%c %d%c%c", 'A' + pick(b, 26), 'A' + pick(b, 26), 1 + pick(b, 9), 'A' + pick(b, 26),
                 1 + pick(b, 9), 'A' + pick(b, 26), 'A' + pick(b, 26));
        } else {
            putf(b, ", %s ", c->state);
            phi(b, DEID_ZIP, c->zip);
        }
        put(b, "\n");
    } else {
        put(b, "Extended care at ");
        if (c->other_hospital[0]) phi(b, DEID_ORGANIZATION, c->other_hospital);
        else put(b, "rehab");
        put(b, "\n");
    }
    if (chance(b, 50)) {
        char lo[2 * SYNTH_FIELD + 2];
        snprintf(lo, sizeof lo, "%s.%s", c->patient.given, c->patient.family);
        for (char *q = lo; *q; q++)
            if (*q >= 'A' && *q <= 'Z') *q = (char)(*q + 32);
        put(b, ONE(b, "Contact: ", "Patient e-mail: ", "CONTACT INFO: "));
        phif(b, DEID_EMAIL, "%s%d@%s", lo, pick(b, 100), ONE(b, "gmail.com", "example.net", "mail.org", "yahoo.com"));
        if (chance(b, 50)) {
            put(b, ", family blog ");
            phif(b, DEID_URL, "%s%s-family.%s", ONE(b, "www.", "http://www.", "https://"), lo, ONE(b, "org", "com", "net"));
        }
        if (chance(b, 40)) {
            put(b, ONE(b, ", SSN ", ", Social security number: ", ", SS# "));
            phif(b, DEID_SSN, "%03d-%02d-%04d", 100 + pick(b, 600), 1 + pick(b, 98), 1 + pick(b, 9998));
        }
        if (chance(b, 30)) {
            put(b, ONE(b, ", portal login from ", ", device at ", ", host "));
            if (chance(b, 50)) phif(b, DEID_IP, "%d.%d.%d.%d", 10 + pick(b, 200), pick(b, 255), pick(b, 255), 1 + pick(b, 250));
            else phif(b, DEID_IP, "2001:db8:%x:%x:0:%x:%x:%x", pick(b, 65535), pick(b, 65535), pick(b, 65535), pick(b, 65535), 1 + pick(b, 65534));
        }
        put(b, ".\n");
    }
    if (c->age >= 90 && chance(b, 60)) {
        put(b, ONE(b, "Pt, age ", "Age: ", "at age "));
        phif(b, DEID_AGE_OVER_89, "%d", c->age);
        put(b, ONE(b, ", lives alone.\n", ", frail.\n", ".\n"));
    }
    put(b, "FOLLOW UP: ");
    clinician_ref(b, 0);
    put(b, " on ");
    date_ref(b, 7 + pick(b, 14), 0);
    put(b, ", call ");
    phone_ref(b);
    put(b, ".\n");
}

/* The held-apart style: short event notes and shift summaries, phrased differently. */
static void event_note(nb *b) {
    const synth_note_context *c = b->c;
    put(b, ONE(b, "Event note: ", "EVENT: ", "Addendum: ", "Shift summary - "));
    switch (pick(b, 5)) {
    case 0:
        put(b, "at approx 0230 pt noted to be in VT, pulse present, ");
        clinician_ref(b, 1);
        put(b, " called to bedside, amio 150mg IV bolus given, converted to SR. ");
        break;
    case 1:
        put(b, "pt became acutely agitated, pulled out NGT. ");
        put(b, ONE(b, "Covering MD ", "H.O. ", "night float "));
        clinician_ref(b, 1);
        put(b, " paged x2, haldol 2mg IV given w/ effect. ");
        break;
    case 2:
        put(b, "rec'd pt from ");
        hospital_ref(b, 1);
        put(b, " via ambulance, ");
        age_phrase(b);
        put(b, ", VS stable. ");
        break;
    case 3:
        put(b, "met w/ ");
        relative_ref(b, rel_i(b));
        put(b, " and ");
        relative_ref(b, rel_i(b));
        put(b, " re goals of care; will meet again ");
        date_ref(b, 1 + pick(b, 2), 0);
        put(b, ". ");
        break;
    default:
        put(b, "pt transferred to ");
        ward_ref(b);
        put(b, " @ 1600, report given to ");
        {
            const synth_person *p = clin(b);
            if (p) phif(b, DEID_NAME, "%s %s", p->given, p->family);
        }
        put(b, " RN. ");
        break;
    }
    if (chance(b, 50)) {
        put(b, "Plan d/w ");
        clinician_ref(b, 1);
        put(b, ". ");
    }
    if (chance(b, 40)) dates_sentence(b);
    if (chance(b, 30)) family_sentence(b);
    if (chance(b, 50)) {
        put(b, "\n");
        phi(b, DEID_NAME, c->n_clinicians ? c->clinician[0].family : "Lee");
        put(b, " RN");
    }
}

/* ---- round 4: more kinds, cues and clinical traps ----------------------------------------
 * Shapes real notes have and the first templates lacked, all written for clinfm: names with
 * only a verb or a preposition around them ("X aware", "report given to X", "per X", "pt seen w/
 * x"), given names that are common words ("Rich", "Hope"), names typed in lower case in a
 * mixed-case note, signatures with credentials and extensions, kinship words misspelt or cut
 * short ("neice", "husb"), clergy titles, hospitals by their initials alone after "at" or
 * "from", wards glued to their floor ("Blake4"), nursing homes of common words, dates without a
 * cue ("CXR 4/9:", "npo 11/5-11/7", "8.12", "mar '08", "the 21st") and years of past history
 * ("s/p CABG 2002"); and, as much, clinical text that looks like PHI and is not: words that are
 * names elsewhere used clinically ("frank blood", "Hope to extubate", "Long discussion", "H.O.
 * aware", "covered per RISS"), weekdays ("repeat echo Friday"), blood gases, plateau pressures,
 * pain scores and antibiotic days written with slashes ("7.39/34/63/29", "relief to 3/10", "day
 * 7/10 of flagyl"), clock times, ECG interval tables, payor names. */

static void titled(char *dst, const char *src, size_t cap);
static const char *pickw(nb *b, const wlist *w);

/* given names that are also common English words (virtues, flowers, months, nicknames) */
static const char *const WORD_GIVEN[] = {
    "Rich", "Hope", "Joy", "Crystal", "Amber", "Faith", "Grace", "Bud", "Chip", "Skip", "Ace", "Pat", "Rusty",
    "Sandy", "Dusty", "Penny", "Ruby", "Pearl", "Iris", "Lily", "Daisy", "Holly", "Ivy", "Dawn", "April", "June",
    "Autumn", "Sky", "Brook", "Cliff", "Dale", "Glen", "Clay", "Rocky", "Buck", "Hunter", "Mason", "Sterling",
    "Mark", "Frank", "Bill", "Art", "Gene", "Ray", "Sonny", "Honey", "Candy", "Misty", "Star", "Charity",
    "Patience", "Prudence", "Constance", "Merry", "Sunny", "Chase", "Lance", "Miles", "Drew", "Rod", "Jack",
    "Hazel", "Ginger", "Coral", "Violet", "Jewel", "Summer", "Storm", "Reed", "Heath", "Flint", "Chance", "Bliss",
    "Major", "Duke", "Wade", "Grant", "Carol", "Bob", "Sue", "Mercy", "Page", "Lane", "Bishop", "Gay", "Hardy"};
#define N_WORD_GIVEN (sizeof WORD_GIVEN / sizeof WORD_GIVEN[0])

/* A name as nurses type it: mostly as given, sometimes all lower or all upper case. */
static void phi_name(nb *b, const char *s) {
    char w[2 * SYNTH_FIELD + 2];
    snprintf(w, sizeof w, "%s", s);
    int k = pick(b, 10);
    if (k == 0) upper_copy(w, w, sizeof w);
    else if (k <= 2)
        for (char *q = w; *q; q++)
            if (*q >= 'A' && *q <= 'Z') *q = (char)(*q + 32);
    phi(b, DEID_NAME, w);
}

/* A clinician with little or no cue: "Rich", "r. tanaka", "Tanaka", "RN Rich", "DR TANAKA". */
static void hcp_loose(nb *b) {
    const synth_person *p = clin(b);
    if (!p) {
        put(b, "the team");
        return;
    }
    char tmp[2 * SYNTH_FIELD + 4];
    switch (pick(b, 9)) {
    case 0: case 1: case 2: phi_name(b, p->given); break;
    case 3: phi_name(b, p->family); break;
    case 4: snprintf(tmp, sizeof tmp, "%c. %s", p->given[0], p->family); phi_name(b, tmp); break;
    case 5: snprintf(tmp, sizeof tmp, "%s %s", p->given, p->family); phi_name(b, tmp); break;
    case 6: put(b, ONE(b, "RN ", "NP ", "Dr. ", "Dr ", "DR ", "dr ", "PA ", "Fr. ", "SW ", "CM ", "OT ", "RT ", "chaplain ", "pharmacist ", "PCA "));
        phi_name(b, chance(b, 50) ? p->family : p->given);
        break;
    case 7: snprintf(tmp, sizeof tmp, "%c.", p->given[0]); phi(b, DEID_NAME, tmp); break;
    default: snprintf(tmp, sizeof tmp, "%c. %.2s", p->given[0], p->family); phi_name(b, tmp); break;
    }
}

static void rel_loose(nb *b, int i) {
    if (i < 0) {
        put(b, "family");
        return;
    }
    const synth_person *p = &b->c->relative[i];
    if (chance(b, 80)) phi_name(b, p->given);
    else {
        char tmp[2 * SYNTH_FIELD + 2];
        snprintf(tmp, sizeof tmp, "%s %s", p->given, p->family);
        phi_name(b, tmp);
    }
}

/* kinship words as charted, cut short or misspelt */
static const char *kin_word(nb *b, const char *rel) {
    if (chance(b, 50)) return rel;
    return ONE(b, "dtr", "dau", "husb", "neice", "nephew", "grandaughter", "granddaughter", "gdtr", "grandson", "sis",
               "bro", "sister-in-law", "dil", "son-in-law", "stepson", "cousin", "friend", "partner", "fiance", "mother", "ex-wife");
}

/* The initials of the capitalised words of a name ("Green Valley General Hospital" -> "GVGH"),
 * sometimes without the last word ("GVG"), written upper or lower case. */
static void abbr_of(nb *b, const char *name, char *out, size_t cap) {
    size_t al = 0, nw = 0;
    char tmp[16];
    for (size_t i = 0; name[i] && al < 5; i++)
        if (name[i] >= 'A' && name[i] <= 'Z' && (i == 0 || name[i - 1] == ' ')) tmp[al++] = name[i], nw++;
    if (al > 3 && chance(b, 30)) al--;
    tmp[al] = 0;
    if (al < 2) {
        out[0] = 0;
        return;
    }
    if (chance(b, 15))
        for (size_t i = 0; i < al; i++) tmp[i] = (char)(tmp[i] + 32);
    snprintf(out, cap, "%s", tmp);
}

static void hosp_abbr_ref(nb *b) {
    char ab[16];
    const char *h = chance(b, 50) && b->c->other_hospital[0] ? b->c->other_hospital : b->c->hospital;
    abbr_of(b, h, ab, sizeof ab);
    if (ab[0]) phi(b, DEID_ORGANIZATION, ab);
    else put(b, "OSH");
}

/* a ward as charted: "Kessler 4", "Kessler4", "kessler 4", "EAST 12" */
static void ward_loose(nb *b) {
    const char *w = b->c->ward;
    if (!w[0]) {
        put(b, "the floor");
        return;
    }
    char tmp[SYNTH_FIELD];
    snprintf(tmp, sizeof tmp, "%s", w);
    if (chance(b, 35)) {
        char *sp = strrchr(tmp, ' ');
        if (sp) memmove(sp, sp + 1, strlen(sp));
    }
    size_t k0 = b->nsp;
    phi_name(b, tmp);
    if (b->nsp > k0) b->sp[b->nsp - 1].type = DEID_LOCATION;
}

/* the patient's nursing home, rehab or residence: a LOCATION */
static void facility_ref(nb *b) {
    if (b->c->facility[0]) {
        size_t k0 = b->nsp;
        phi_name(b, b->c->facility);
        if (b->nsp > k0) b->sp[b->nsp - 1].type = DEID_LOCATION;
    } else put(b, "rehab");
}

/* a nursing home, rehab or residence named with common words or a family name */
static void facility_name(nb *b, const synth_namelists *nl, char *out, size_t cap) {
    static const char *A[] = {"Willow", "Pleasant View", "Sunrise", "Maple Grove", "Harbor View", "Meadow", "Briarwood",
                              "Laurel", "Evergreen", "Riverside", "Oak Hill", "Stonebridge", "Fairhaven", "Brookside",
                              "Silver Lake", "Bayberry", "Cranberry", "Seaview", "Linden", "Orchard", "Sunny Acres",
                              "Whispering Pines", "Blue Hills", "Chestnut", "Rosewood", "Cherry Hill", "Spring Garden"};
    static const char *S[] = {"Nursing Home", "Nursing", "Rehab", "Rehabilitation Center", "Assisted Living", "House",
                              "Court", "Hall", "Manor", "Place", "Gardens", "Healthcare", "Center", "Commons", "Terrace", "Lodge"};
    /* round 6: more names of common words, with "The" or with no generic word at all */
    static const char *A2[] = {"Cobblestone", "Heron Pond", "Juniper", "Larkspur", "Foxglove", "Quail Run", "Beacon Point",
                               "Lantern Hill", "Hawthorn", "Sandpiper", "Kestrel", "Copper Beech", "Elm Hollow", "Birch Haven"};
    int k = pick(b, 100);
    if (nl && nl->last.n && k < 25) {
        char w[24];
        titled(w, pickw(b, &nl->last), sizeof w);
        snprintf(out, cap, "%s %s", w, S[pick(b, 16)]);
    } else if (k < 40) {
        snprintf(out, cap, "The %s %s", chance(b, 50) ? A[pick(b, 27)] : A2[pick(b, 14)], S[pick(b, 16)]);
    } else if (k < 55) {
        snprintf(out, cap, "%s", chance(b, 50) ? A[pick(b, 27)] : A2[pick(b, 14)]);
    } else {
        snprintf(out, cap, "%s %s", chance(b, 70) ? A[pick(b, 27)] : A2[pick(b, 14)], S[pick(b, 16)]);
    }
}

/* dates in the shapes that need no cue word, as PHI */
static void date_loose(nb *b, int offset) {
    int y = b->c->adm_year, m = b->c->adm_month, d = b->c->adm_day;
    add_days(&y, &m, &d, offset);
    static const char *MON3[12] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    switch (pick(b, 12)) {
    case 0: case 1: case 2: case 3: phif(b, DEID_DATE, "%d/%d", m, d); break;
    case 4: phif(b, DEID_DATE, "%d.%d", m, d); break;
    case 5: phif(b, DEID_DATE, "%d-%d-%02d", m, d, y % 100); break;
    case 6: phif(b, DEID_DATE, "%d-%s-%02d", d, MON3[m - 1], y % 100); break;
    case 7: phif(b, DEID_DATE, "%s %d", ONE(b, MON3[m - 1], MONTHS[m - 1]), d); break;
    case 8: phif(b, DEID_DATE, "%s %d%s", MON3[m - 1], d, ord(d)); break;
    case 9: phif(b, DEID_DATE, "%d/%d/%02d", m, d, y % 100); break;
    case 10: phif(b, DEID_DATE, "%02d/%02d", m, d); break;
    default: phif(b, DEID_DATE, "%d/%d/%d", m, d, y); break;
    }
}

/* a year or month of past history: "2002", "'90", "mar '08", "11/92", "December 2004" */
static void history_date(nb *b) {
    int y = b->c->adm_year - 1 - pick(b, 25);
    static const char *MON3[12] = {"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"};
    switch (pick(b, 8)) {
    case 0: case 1: case 2: case 3: phif(b, DEID_DATE, "%d", y); break;
    case 4: phif(b, DEID_DATE, "'%02d", y % 100); break;
    case 5: phif(b, DEID_DATE, "%s '%02d", MON3[pick(b, 12)], y % 100); break;
    case 6: phif(b, DEID_DATE, "%d/%02d", 1 + pick(b, 12), y % 100); break;
    default: phif(b, DEID_DATE, "%s %d", MONTHS[pick(b, 12)], y); break;
    }
}

/* past history with years: "colon ca s/p resection 1987, CAD s/p CABG '02" */
static void history_items(nb *b) {
    static const char *H[] = {"CAD s/p CABG", "colon ca s/p resection", "lung ca s/p RUL lobectomy", "s/p MI", "MI",
                              "quit smoking", "prior intubations", "s/p AVR", "s/p R TKR", "tkr", "s/p CEA", "pancreatitis",
                              "CVA", "s/p appy", "breast ca s/p lumpectomy", "prostate ca s/p XRT", "dx'd w/ DM", "PE",
                              "s/p chole", "s/p PCI to LAD", "GIB", "hip fx s/p ORIF", "s/p trach", "ETOH withdrawal szs"};
    int n = 1 + pick(b, 3);
    for (int k = 0; k < n; k++) {
        if (k) put(b, ONE(b, ", ", "; ", ", "));
        put(b, H[pick(b, 24)]);
        put(b, ONE(b, " ", " ", " in ", " ("));
        if (b->t.len && b->t.p[b->t.len - 1] == '(') {
            history_date(b);
            put(b, ")");
        } else {
            history_date(b);
        }
        if (chance(b, 40)) put(b, ONE(b, ", HTN", ", DM2", ", obesity", ", OSA on CPAP", ", afib on coumadin", ", CHF (EF 25%)"));
    }
}

static void phone_loose(nb *b) {
    const synth_note_context *c = b->c;
    switch (pick(b, 7)) {
    case 0: put(b, ONE(b, "ext ", "ext. ", "x")); phif(b, DEID_PHONE, "%d-%04d", 2 + pick(b, 7), pick(b, 10000)); break;
    case 1: put(b, ONE(b, "x", "X")); phif(b, DEID_PHONE, "%d%04d", 2 + pick(b, 7), pick(b, 10000)); break;
    case 2: put(b, ONE(b, "pgr ", "pager ", "beeper #", "p")); phi(b, DEID_PHONE, c->pager[0] ? c->pager : "12345"); break;
    case 3: put(b, ONE(b, "ph ", "tel ", "cell ", "")); phif(b, DEID_PHONE, "%d.%03d.%04d", 200 + pick(b, 799), 200 + pick(b, 799), pick(b, 10000)); break;
    case 4: put(b, ONE(b, "ph ", "at ", "")); phif(b, DEID_PHONE, "%d-%03d-%04d", 200 + pick(b, 799), 200 + pick(b, 799), pick(b, 10000)); break;
    default: put(b, ONE(b, "ph ", "at ", "home # ", "")); phi(b, DEID_PHONE, c->phone[0] ? c->phone : "(617) 555-0100"); break;
    }
}

/* Sentences that name a person with hardly a cue. */
/* Round 11: names inside running text with no cue a line gives, as they read once a note is
 * typed in one case: a bare name coordinated with a role word ("RN and SMITH aware", "Tanaka
 * and resident at bedside"), pairs and lists of given names ("daughters Mary and Joy visited",
 * "Mary, Bud and Sue here"), a relative named mid-sentence after another relative ("spoke w/
 * wife and Mary re plan"). coord_traps writes the same shapes with no name in them ("RN and MD
 * aware", "wife and son visited"), as often, so the words around are not evidence alone. */
static void coord_names(nb *b) {
    const synth_person *p = clin(b);
    int i = rel_i(b), j = rel_i(b);
    const char *role = ONE(b, "RN", "MD", "NP", "resident", "team", "SW", "CM", "charge RN", "covering MD", "attending", "PA");
    const char *verb = ONE(b, " aware. ", " aware of plan. ", " at bedside. ", " updated. ", " notified. ", " made aware, no new orders. ",
                           " in to see pt. ", " discussed plan w/ family. ");
    switch (pick(b, 7)) {
    case 0: /* role and name */
        if (!p) { put(b, "RN and MD aware. "); break; }
        putf(b, "%s and ", role); phi_name(b, chance(b, 60) ? p->family : p->given); put(b, verb); break;
    case 1: /* name and role */
        if (!p) { put(b, "MD and RN aware. "); break; }
        phi_name(b, chance(b, 60) ? p->family : p->given); putf(b, " and %s", role); put(b, verb); break;
    case 2: /* two given names of relatives */
        if (i < 0 || j < 0 || i == j) { put(b, "family in to visit. "); break; }
        if (chance(b, 50)) putf(b, "%s ", ONE(b, "daughters", "sons", "kids", "children", "family", "pt's children", "grandchildren", "visitors:"));
        phi_name(b, b->c->relative[i].given); put(b, " and "); phi_name(b, b->c->relative[j].given);
        put(b, ONE(b, " visited. ", " in to visit, updated. ", " at bedside most of eve. ", " called for update. ", " aware of transfer. ", " will be here in am. "));
        break;
    case 3: /* a list of given names */
        if (i < 0 || j < 0 || i == j) { put(b, "family at bedside. "); break; }
        phi_name(b, b->c->relative[i].given); put(b, ", "); phi(b, DEID_NAME, WORD_GIVEN[pick(b, (int)N_WORD_GIVEN)]); put(b, " and ");
        phi_name(b, b->c->relative[j].given); put(b, ONE(b, " here this am. ", " called. ", " at bedside. "));
        break;
    case 4: /* a relative after another relative, mid-sentence */
        if (i < 0) { put(b, "spoke w/ wife and son re plan. "); break; }
        put(b, ONE(b, "spoke w/ ", "updated ", "met w/ ", "d/w ", "family mtg w/ ")); put(b, ONE(b, "wife and ", "son and ", "pt's dtr and ", "HCP and ", "husband and "));
        phi_name(b, b->c->relative[i].given); put(b, ONE(b, " re plan. ", " re: goals of care. ", ", agree w/ plan. ", " at length. "));
        break;
    case 5: /* a relative named mid-sentence with a verb on both sides */
        if (i < 0) { put(b, "pt asking for family. "); break; }
        put(b, ONE(b, "pt asked that ", "will have ", "pt wants ", "pls call ", "pt states ")); phi_name(b, b->c->relative[i].given);
        put(b, ONE(b, " bring in glasses. ", " be called in am. ", " is her HCP. ", " in the am re dispo. ", " will take her home. "));
        break;
    default: /* a clinician and a relative together */
        if (!p || i < 0) { put(b, "RN and family updated. "); break; }
        put(b, ONE(b, "", "plan d/w ", "met w/ ")); phi_name(b, p->family); put(b, " and "); phi_name(b, b->c->relative[i].given);
        put(b, ONE(b, " at bedside. ", ", pt made DNR. ", " re dispo. ")); break;
    }
}

static void coord_traps(nb *b) {
    const char *a = ONE(b, "RN", "MD", "NP", "resident", "team", "SW", "CM", "PT", "OT", "wife", "son", "dtr", "family", "pt", "HCP", "attending");
    const char *c = ONE(b, "MD", "RN", "team", "family", "wife", "son", "daughter", "friends", "PT", "nutrition", "chaplain", "pharmacy", "husband");
    switch (pick(b, 4)) {
    case 0: putf(b, "%s and %s", a, c); put(b, ONE(b, " aware. ", " at bedside. ", " updated. ", " notified. ", " in to see pt. ", " following. ")); break;
    case 1: put(b, ONE(b, "spoke w/ ", "updated ", "d/w ", "met w/ ")); putf(b, "%s and %s", a, c); put(b, ONE(b, " re plan. ", " re: goals of care. ", ". ")); break;
    case 2: put(b, ONE(b, "hope and pray ", "cough and deep breathe ", "turn and reposition ", "pain and anxiety ", "grace and ease ")); put(b, ONE(b, "per pt. ", "encouraged. ", "addressed. ")); break;
    default: put(b, ONE(b, "frank and bright red blood ", "sharp and stabbing pain ", "rose and fell ", "dawn and dusk ", "will and wishes ")); put(b, ONE(b, "noted. ", "per pt. ", "o/n. ")); break;
    }
}

/* Before some family, team and cue sentences, a sentence of round 11's shapes (half with names,
 * half without). Its draws come from a stream of their own, so every other word of a note is
 * what the round 10 generator wrote for the same seed: a refit sees the added sentences and
 * nothing else moved. */
static void coord_maybe(nb *b) {
    uint64_t main_rng = b->rng;
    b->rng = b->rng2;
    if (chance(b, 15)) {
        if (chance(b, 50)) coord_names(b);
        else coord_traps(b);
    }
    b->rng2 = b->rng;
    b->rng = main_rng;
}

static void cue_sentence(nb *b) {
    coord_maybe(b);
    switch (pick(b, 18)) {
    case 0: hcp_loose(b); put(b, ONE(b, " aware. ", " aware, no new orders. ", " aware, hct sent. ", " aware of low UO. ", " made aware. ")); break;
    case 1: put(b, ONE(b, "report given to ", "report called to ", "report called to RN ", "Report given to RN ", "handoff to ")); hcp_loose(b); put(b, ". "); break;
    case 2: put(b, ONE(b, "pleasant and cooperative per ", "ok to hold TF per ", "plan per ", "as per ", "restraints d/c'd per ")); hcp_loose(b); put(b, ". "); break;
    case 3: put(b, ONE(b, "d/w ", "discussed w/ ", "case d/w ", "spoke w/ ", "spoke with ", "reviewed w/ ")); hcp_loose(b); put(b, ONE(b, ", ", " re: plan. ", ". ", " who agrees. ")); break;
    case 4: put(b, ONE(b, "pt seen w/ ", "seen and examined w/ ", "rounded w/ ")); hcp_loose(b); put(b, ". "); break;
    case 5: put(b, ONE(b, "family updated by ", "pt updated by ", "updated by ")); hcp_loose(b); put(b, ". "); break;
    case 6: hcp_loose(b); put(b, ONE(b, " notified of ", " paged re: ", " called re: ")); put(b, ONE(b, "SBP 80s. ", "K 3.1. ", "temp 101.4. ", "low UO. ", "agitation. ")); break;
    case 7: put(b, ONE(b, "called ", "paged ", "message left for ", "awaiting call back from ")); hcp_loose(b);
        if (chance(b, 40)) { put(b, " at "); phone_loose(b); put(b, ". "); } else put(b, ONE(b, ". ", " x2. "));
        break;
    case 8: hcp_loose(b); put(b, ONE(b, " in to see pt. ", " at bedside, ", " to see pt in am. ", " here for procedure. ")); break;
    case 9: put(b, "placed back on AC overnight for rest per "); hcp_loose(b); put(b, ". "); break;
    case 10: put(b, ONE(b, "trach changed to #8 portex by ", "a-line placed by ", "PICC placed by ", "bedside thoracentesis by ")); hcp_loose(b); put(b, ONE(b, " MD. ", ". ", " w/o complication. ")); break;
    case 11: { int i = rel_i(b); put(b, ONE(b, "pt asking for ", "pt calling out for ", "pt asked for ")); rel_loose(b, i); put(b, ONE(b, " repeatedly overnight, reassured. ", ", reoriented. ", ". ")); break; }
    case 12: { int i = rel_i(b); rel_loose(b, i); put(b, ONE(b, " tearful, appropriately concerned. ", " at bedside, updated. ", " called for update. ", " aware of transfer. ", " visited. ")); break; }
    case 13: { int i = rel_i(b); put(b, ONE(b, "provided ", "gave ", "will f/u w/ ")); rel_loose(b, i); put(b, ONE(b, " w/ SW contact info. ", " re: HCP form. ", " w/ parking pass. ")); break; }
    case 14: { int i = rel_i(b); put(b, i >= 0 ? kin_word(b, b->c->relation[i]) : "family"); put(b, ONE(b, " ", ", ", " (HCP) ")); rel_loose(b, i); put(b, ONE(b, " aware. ", ", called. ", " is primary contact. ", " in to visit. ")); break; }
    case 15: put(b, ONE(b, "pt prefers to be called ", "pt goes by ", "PT PREFERS TO BE CALLED ")); phi(b, DEID_NAME, b->c->nickname[0] ? b->c->nickname : b->c->patient.given); put(b, ". "); break;
    case 16: { const synth_person *p = clin(b); put(b, ONE(b, "Fr. ", "Rev. ", "Chaplain ", "Rabbi ", "Sr. ")); if (p) phi_name(b, chance(b, 70) ? p->family : p->given); put(b, ONE(b, " in to see pt. ", " notified per family request. ", " visited. ")); break; }
    default: { int i = rel_i(b); put(b, ONE(b, "summary to be e-mailed to ", "copy of plan sent to ", "will call ")); rel_loose(b, i); put(b, ONE(b, ". ", " who could not attend. ", " tomorrow. ")); break; }
    }
}

static void place_sentence2(nb *b) {
    switch (pick(b, 12)) {
    case 0: put(b, ONE(b, "PCP is Dr. ", "pcp is dr ", "PCP: Dr. ")); { const synth_person *p = clin(b); if (p) phi_name(b, p->family); } put(b, " at "); hosp_abbr_ref(b); put(b, ". "); break;
    case 1: put(b, ONE(b, "records from ", "Records from ", "old records from ")); hosp_abbr_ref(b); put(b, ONE(b, " requested, not yet received. ", " requested. ", " reviewed. ")); break;
    case 2: put(b, ONE(b, "transferred from ", "tx from ", "came from ", "rec'd from ")); hosp_abbr_ref(b); put(b, ONE(b, " for cath. ", " for further mgmt. ", " w/ GIB. ")); break;
    case 3: put(b, ONE(b, "transferred to ", "to ", "call out to ", "TO ")); ward_loose(b); putf(b, " at %02d%02d%s", pick(b, 24), 5 * pick(b, 12), ONE(b, ". ", ", report called. ", " via wheelchair w/ O2 and monitor. ")); break;
    case 4: put(b, ONE(b, "awaiting bed on ", "bed assigned on ", "plan call out to ")); ward_loose(b); put(b, ONE(b, ". ", " when bed available. ")); break;
    case 5: put(b, ONE(b, "d/c planned to ", "plan d/c to ", "pt lived at ", "family toured ", "referral sent to ", "Dispo: ", "family unhappy w/ ", "resides at ")); facility_ref(b);
        if (chance(b, 30)) { put(b, " on "); date_loose(b, 1 + pick(b, 5)); put(b, ". "); } else put(b, ONE(b, ". ", " has a bed available. "));
        if (chance(b, 50)) {
            /* the facility opening a sentence, with no cue before it */
            facility_ref(b);
            put(b, ONE(b, " can take pt ", " liaison screening today. ", " declined, no LTC beds. ", " will call back re: bed. ", " accepted pending auth. ", " is pt's preference. "));
            if (b->t.p[b->t.len - 1] == ' ' && b->t.p[b->t.len - 2] == 't') { date_loose(b, 1 + pick(b, 4)); put(b, ". "); }
        }
        break;
    case 6: put(b, ONE(b, "lives alone in an apartment in ", "lived w/ son in ", "referral to VNA in ", "pt from ")); phi(b, DEID_LOCATION, b->c->city[0] ? b->c->city : "town"); put(b, ". "); break;
    case 7: put(b, "pt followed at "); hosp_abbr_ref(b); put(b, ONE(b, " clinic. ", " for HD. ", ". ")); break;
    case 8: put(b, ONE(b, "admitted via EW from ", "admitted from ", "sent in from ")); facility_ref(b); put(b, " w/ "); put(b, ONE(b, "fever. ", "AMS. ", "coffee ground emesis. ")); break;
    case 9: put(b, ONE(b, "Pt from OSH. ", "records from OSH reviewed. ", "OSH CT showed SAH. ", "transferred from an OSH. ", "seen at OSH ED. ")); break;
    case 10: put(b, ONE(b, "admitted via EW w/ ", "presented to ED w/ ", "admitted via ew ")); date_loose(b, -b->c->day_of_stay); put(b, " w/ "); put(b, ONE(b, "fall. ", "seizure at home. ", "SOB. ")); break;
    default: put(b, "prior adm at "); if (b->c->other_hospital[0]) phi(b, DEID_ORGANIZATION, b->c->other_hospital); else put(b, "OSH"); put(b, " "); date_loose(b, -40 - pick(b, 300)); put(b, " for similar presentation. "); break;
    }
}

static void date_sentence2(nb *b) {
    int k = b->c->day_of_stay;
    switch (pick(b, 16)) {
    case 0: put(b, ONE(b, "CXR ", "cxr ", "KUB ", "head ct ", "echo ", "RUQ US ")); date_loose(b, -pick(b, 3)); put(b, ONE(b, ": improving. ", ": resolving RLL PNA. ", ", mri when stable. ", " w/o change. ")); break;
    case 1: put(b, ONE(b, "IR for PICC ", "PICC ", "EGD ", "cath ", "HD ")); date_loose(b, 1 + pick(b, 3)); put(b, ". "); break;
    case 2: put(b, ONE(b, "npo ", "NPO ", "abx ")); date_loose(b, -pick(b, 3)); put(b, ONE(b, "-", " thru ", " - ")); date_loose(b, pick(b, 3)); put(b, " for serial procedures. "); break;
    case 3: put(b, ONE(b, "Admit date: ", "ADMIT DATE: ", "Adm: ", "admitted ")); date_loose(b, -k); put(b, ONE(b, "   ", "\n", ". ")); break;
    case 4: put(b, ONE(b, "application submitted ", "MassHealth application submitted ", "forms faxed ", "screen sent ")); date_loose(b, -pick(b, 5)); put(b, ONE(b, ", pending. ", ", approved. ", ". ")); break;
    case 5: put(b, ONE(b, "MRI scheduled for the ", "f/u appt on the ", "due back the ")); { int d = 1 + pick(b, 28); phif(b, DEID_DATE, "%d%s", d, ord(d)); } put(b, ". "); break;
    case 6: put(b, ONE(b, "last BM ", "LAST BM ", "last dose ")); date_loose(b, -1 - pick(b, 4)); put(b, ". "); break;
    case 7: put(b, "will readdress on "); date_loose(b, 1 + pick(b, 3)); put(b, ". "); break;
    case 8: put(b, "pmh: "); history_items(b); put(b, ". "); break;
    case 9: age_phrase(b); put(b, " w/ "); history_items(b); put(b, ONE(b, " admitted w/ sepsis. ", " p/w brbpr. ", ", admitted w/ resp failure. ")); break;
    case 10: put(b, ONE(b, "since previous tracing of ", "compared to study of ", "unchanged from ")); history_date(b); put(b, ". "); break;
    case 11: put(b, ONE(b, "family meeting set for ", "meeting planned ", "d/c planned for ")); date_loose(b, 1 + pick(b, 4)); put(b, ONE(b, " w/ team. ", " at 1400. ", ". ")); break;
    case 12: put(b, "on "); date_loose(b, -pick(b, 3)); put(b, ONE(b, " pt had ", " pt was ", ", ")); put(b, ONE(b, "episode of afib. ", "extubated. ", "febrile to 102. ")); break;
    case 13: {
        int paren = chance(b, 25);
        put(b, paren ? ONE(b, "Access: L IJ TLC (placed ", "R SC TLC (placed ", "PICC (placed ")
                     : ONE(b, "Lines: R IJ CVL placed ", "PICC PLACED ", "a-line placed ", "Crani for evacuation ", "trach placed "));
        date_loose(b, -pick(b, 6));
        put(b, paren ? "), dsg changed. " : ONE(b, ", site w/o redness. ", ", tip in SVC per CXR. ", ". "));
        break;
    }
    case 14: put(b, ONE(b, "upset that pt will be in hospital over ", "family hopes pt home by ", "visiting hours extended for ", "pt's son visiting over "));
        phi(b, DEID_DATE, ONE(b, "New Year's Eve", "Christmas", "Thanksgiving", "the 4th of July", "Easter", "Labor Day", "Memorial Day", "Christmas Eve", "New Year's"));
        put(b, ". ");
        break;
    default: put(b, ONE(b, "d/c'd ", "started ", "changed ")); date_loose(b, -pick(b, 4)); put(b, ". "); break;
    }
}

/* Clinical text that looks like PHI and is not (see the section comment). */
static void trap_sentence(nb *b) {
    switch (pick(b, 47)) {
    case 0: put(b, ONE(b, "Frank hematuria, CBI started @ ", "frank blood per rectum x1, ", "FRANK HEMATURIA, CBI @ ", "frank bleeding from site, ")); putf(b, "%d%s", 100 + pick(b, 150), ONE(b, "cc/hr. ", " cc/hr. ", "cc. ")); break;
    case 1: put(b, ONE(b, "Hope to extubate in am. ", "HOPE TO EXTUBATE IN AM. ", "hope to wean to PS today. ", "Plan: Hope to extubate. ", "Will hope for call out tomorrow. ")); break;
    case 2: put(b, ONE(b, "Long discussion w/ family re: goals of care. ", "long talk w/ pt re: code status. ", "LONG DISCUSSION W/ TEAM. ", "A: Long hx of family conflict. ")); break;
    case 3: put(b, ONE(b, "Lg brown stool x2, guaiac neg. ", "Sm formed brown stool. ", "LG LIQUID GREEN STOOL X4, C DIFF SENT. ", "lg amt tan sputum. ", "Mod amt brown liquid stool. ")); break;
    case 4: put(b, ONE(b, "H.O. aware of low UO, no new orders. ", "HO aware, will re-eval. ", "H.O. AWARE. ", "h.o. aware of hypotension. ", "covering H.O. notified. ")); break;
    case 5: putf(b, "FS %d-%d, covered per %s. ", 90 + pick(b, 60), 160 + pick(b, 120), ONE(b, "RISS", "riss", "SSI", "sliding scale", "protocol")); break;
    case 6: put(b, ONE(b, "Comfort measures, support family. ", "CMO as of 1945, morphine gtt. ", "comfort care per family wishes. ")); break;
    case 7: put(b, ONE(b, "Pressors titrated per MAP. ", "K and Mg repleted. ", "Mg and Phos repleted. ", "K AND MG REPLETED. ")); break;
    case 8: put(b, ONE(b, "Will f/u in am. ", "Will cont to monitor. ", "WILL CONT TO SUPPORT. ", "Will need PT eval. ", "will readdress in am. ")); break;
    case 9: put(b, ONE(b, "Bed mobility: mod A. ", "sit-stand w/ min A. ", "amb 40 ft w/ rolling walker. ", "OOB to chair w/ assist x2. ", "transferred via wheelchair. ")); break;
    case 10: put(b, ONE(b, "Desat to 83% w/ turning, bagged. ", "desat to 80s w/ suctioning. ", "Tol TF, no residuals. ", "tol well. ")); break;
    case 11: put(b, ONE(b, "Blood cx x2 sent. ", "Urine cx sent. ", "BLOOD & URINE CX SENT. ", "Sputum cx pnd. ")); break;
    case 12: put(b, ONE(b, "HOH, hearing aid R ear. ", "pt HOH, communicating w/ writing. ", "neuro: HOH, MAE. ")); break;
    case 13: put(b, ONE(b, "HD today via L IJ Quinton, ", "HD tomorrow via R IJ quinton, ", "Access: Quinton L IJ, dsg intact. ", "L IJ quinton placed. ")); putf(b, "%d.%dL removed. ", 1 + pick(b, 3), pick(b, 10)); break;
    case 14: putf(b, "I/O +%d.%dL for shift, %c%d.%dL LOS. ", pick(b, 3), pick(b, 10), chance(b, 50) ? '+' : '-', pick(b, 8), pick(b, 10)); break;
    case 15: putf(b, "ABG %d.%d%d/%d/%d/%d. ", 7, 2 + pick(b, 3), pick(b, 10), 30 + pick(b, 30), 60 + pick(b, 120), 18 + pick(b, 14)); break;
    case 16: putf(b, "%s %d/%d. ", ONE(b, "peak/plateau", "PEAK/PLATEAU", "PIP/Pplat", "peak pressures/plat"), 20 + pick(b, 20), 15 + pick(b, 12)); break;
    case 17: putf(b, "%s %d/%d/%d/%d%%. ", ONE(b, "remains on CMV", "AC", "ac", "on cmv"), 400 + 50 * pick(b, 5), 10 + pick(b, 10), 5 + pick(b, 8), 40 + 10 * pick(b, 5)); break;
    case 18: putf(b, "%s %dx%d/+%d/%d%%. ", ONE(b, "AC", "on AC", "SIMV"), 400 + 50 * pick(b, 5), 10 + pick(b, 10), 5 + pick(b, 8), 40 + 10 * pick(b, 5)); break;
    case 19: putf(b, "pain %d/10, %s given w/ relief to %d/10. ", 4 + pick(b, 6), ONE(b, "tylenol 650mg PO", "oxycodone 5mg PO", "morphine 2mg IV", "dilaudid .5mg IV"), pick(b, 4)); break;
    case 20: putf(b, "Day %d/%d of %s. ", 1 + pick(b, 10), 7 + 7 * pick(b, 2), ONE(b, "flagyl", "zosyn", "cefepime", "vanco", "cipro", "abx", "linezolid")); break;
    case 21: put(b, ONE(b, "1:1 sitter requested. ", "on 1:1 for safety. ", "TF at 1/2 strength, ", "TF at 3/4 strength, advance to full per nutrition. ")); break;
    case 22: putf(b, "%s %02d%02d. ", ONE(b, "no ativan needed since", "off pressors since", "NPO after", "slept until", "afebrile since"), pick(b, 24), 5 * pick(b, 12)); break;
    case 23: putf(b, "Family meeting %s at %d00. ", ONE(b, "Thursday", "Friday", "Monday", "tomorrow", "Tuesday", "WEDNESDAY", "Saturday"), 10 + pick(b, 8)); break;
    case 24: put(b, ONE(b, "Repeat echo Friday. ", "repeat echo Monday. ", "Plan to reconvene Sun or sooner. ", "PT to see Wednesday. ", "REPEAT ECHO SATURDAY. ", "over the weekend pt ")); break;
    case 25: put(b, ONE(b, "Pt is Baptist. ", "primary language is Russian; interpreter used. ", "Family is Catholic. ", "pt speaks Portuguese only. ", "Haitian Creole interpreter used. ")); break;
    case 26: put(b, ONE(b, "Payor: Medicare. ", "Ins: MassHealth. ", "PAYOR: MEDICAID. ", "Ins: BCBS. ", "has Tufts coverage. ", "Harvard Pilgrim approved. ")); break;
    case 27: putf(b, "Milrinone 0.%dmcg/kg/min, neo %d.%dmcg/kg/min, insulin gtt @ %d.%du/hr. ", 125 + 125 * pick(b, 5), pick(b, 4), pick(b, 10), pick(b, 10), pick(b, 10)); break;
    case 28: putf(b, "Tmax %d.%d, WBC %d.%d, CKs %d, trop %d.%d. ", 37 + pick(b, 3), pick(b, 10), 5 + pick(b, 20), pick(b, 10), 100 + pick(b, 2000), pick(b, 3), pick(b, 100)); break;
    case 29: put(b, ONE(b, "Amber urine via foley. ", "art line dampened, flushed. ", "x-ray tech in. ", "pat dry, barrier cream applied. ", "may need PICC. ", "ACE inhibitors held. ")); break;
    case 30: put(b, ONE(b, "Soc: family in. ", "SOC: no calls. ", "Dispo: MICU. ", "Belongings (glasses, dentures) sent w/ pt. ", "Grace period for meds explained. ")); break;
    case 31: put(b, ONE(b, "ETT 7.5 taped 23cm @ lip, moved to L side of mouth. ", "trach #8 portex, trach care done. ", "18g R AC, 20g L hand. ", "R IJ CVL placed, tip in SVC per CXR. ")); break;
    case 32: putf(b, "HCT %d.%d -> %d U PRBC, post HCT %d.%d. ", 21 + pick(b, 5), pick(b, 10), 1 + pick(b, 3), 26 + pick(b, 5), pick(b, 10)); break;
    case 33: putf(b, "U/O %d-%dcc/hr, BUN/Cr %d/%d.%d, %s. ", 10 + pick(b, 30), 30 + pick(b, 40), 20 + pick(b, 60), 1 + pick(b, 5), pick(b, 10), ONE(b, "stable", "trending up", "team aware")); break;
    case 34: putf(b, "SBP %d0s-%d0s, hydral %dmg IV x1, BP %d/%d. ", 9 + pick(b, 3), 14 + pick(b, 4), 10 * (1 + pick(b, 2)), 100 + pick(b, 60), 50 + pick(b, 30)); break;
    case 35: put(b, ONE(b, "Mark site for IR. ", "Rich in protein supplements per nutrition. ", "Cliff notes reviewed w/ family. ", "Grant from social services discussed. ", "Pt's Walker at bedside. ")); break;
    case 36: putf(b, "CIWA %d, ativan %dmg IV x%d. ", pick(b, 25), 1 + pick(b, 2), 1 + pick(b, 3)); break;
    case 37: putf(b, "strength %d/5 L arm, %d/5 L leg, grips equal. ", 3 + pick(b, 3), 3 + pick(b, 3)); break;
    case 38: putf(b, "%s %d-%d%s. ", ONE(b, "FS", "SBP", "HR", "sats", "U/O"), 80 + pick(b, 40), 130 + pick(b, 100), ONE(b, "", "s", "%", " cc/shift")); break;
    case 39: putf(b, "Lasix %dmg IV at %02d%02d, diuresed %d%s. ", 20 * (1 + pick(b, 4)), pick(b, 24), 5 * pick(b, 12), 400 + pick(b, 1600), ONE(b, "cc", "cc", "ml", " cc")); break;
    case 40: putf(b, "%s %dL. ", ONE(b, "goal net neg", "GOAL NET NEG", "goal neg", "net neg", "on", "sats 90% on"), 1 + pick(b, 3)); break;
    case 41: putf(b, "%s %d%s. ", ONE(b, "smokes", "SMOKES", "hx of smoking"), 1 + pick(b, 2), ONE(b, "ppd", " ppd", "ppd x40 yrs")); break;
    case 42: putf(b, "%s\n", ONE(b, "7A-7P:", "7a-7p:", "11p-7a:", "7P-7A NPN:", "3-11:", "nights:", "11P-7A:")); break;
    case 43: putf(b, "%s at %d%s. ", ONE(b, "next PTT", "foley d/c'd", "labs due", "next dose", "lytes"), 1 + pick(b, 12), ONE(b, "am", "pm", "AM", "PM", "a", "p")); break;
    case 44: putf(b, "%s at %02d%02d%s", ONE(b, "filter changed", "Foley d/c'd", "extubated to 50% cool neb", "insulin gtt off", "Will meet w/ family Monday", "restarted"), pick(b, 24), 5 * pick(b, 12),
                  ONE(b, " for clotting. ", ", voided 400cc. ", " w/o complication. ", ", transitioned to SQ. ", ".\n", ". ")); break;
    case 45: put(b, ONE(b, "EGD w/ 2 visible vessels clipped. ", "on integrilin x18h. ", "CO2 retention. ", "denies SI/HI. ", "f/u am labs and cx data. ", "per day RN, ", "N: CAM-ICU +. ", "no n/v. ")); break;
    default: putf(b, "HD#%d, POD#%d, %s. ", 1 + pick(b, 20), pick(b, 10), ONE(b, "s/p CABG x4", "s/p ex-lap", "s/p AVR")); break;
    }
}

/* "Intervals Axes / Rate PR QRS QT/QTc P QRS T / 73 126 110 350/430 7 -14 -39" */
static void ecg_table(nb *b) {
    putf(b, "%s\n%s\n", ONE(b, "Intervals Axes", "INTERVALS AXES", "intervals axes"), ONE(b, "Rate PR QRS QT/QTc P QRS T", "RATE PR QRS QT/QTC P QRS T", "rate pr qrs qt/qtc p qrs t"));
    putf(b, "%d %d %d %d/%d %d %d %d\n", 50 + pick(b, 80), 120 + pick(b, 100), 80 + pick(b, 70), 320 + pick(b, 100), 400 + pick(b, 100),
         -40 + pick(b, 120), -40 + pick(b, 120), -60 + pick(b, 180));
}

static void ecg_report(nb *b) {
    put(b, ONE(b, "Sinus rhythm. ", "Atrial fibrillation with controlled ventricular response. ", "Ventricular paced rhythm. ", "Sinus tachycardia. ", "Sinus bradycardia. "));
    put(b, ONE(b, "Left axis deviation. ", "Prolonged QTc interval. ", "Low voltages in the limb leads. ", "Nonspecific ST-T wave changes. ", "Right bundle-branch block. "));
    if (chance(b, 70)) {
        put(b, ONE(b, "Since previous tracing of ", "Since the previous tracing of ", "Compared to tracing of "));
        if (chance(b, 50)) history_date(b);
        else date_loose(b, -1 - pick(b, 20));
        put(b, ONE(b, ", no significant change.\n", ", Q waves are now present inferiorly.\n", " the rate is faster.\n"));
    } else put(b, "No previous tracing available for comparison.\n");
    if (chance(b, 40)) putf(b, "TRACING #%d\n", 1 + pick(b, 4));
    ecg_table(b);
}

static void radiology_report(nb *b) {
    int date_after = chance(b, 40);
    if (!date_after) {
        date_loose(b, -pick(b, 3));
        putf(b, " %d:%02d %s\n", 1 + pick(b, 12), pick(b, 60), ONE(b, "AM", "PM"));
    }
    put(b, ONE(b, "CHEST (PORTABLE AP)", "RENAL U.S.", "CT HEAD W/O CONTRAST", "ABDOMEN U.S. (COMPLETE)", "CHEST (PA & LAT)", "LIVER OR GALLBLADDER US"));
    if (date_after) {
        put(b, ONE(b, "   ", "  ", " "));
        date_loose(b, -pick(b, 3));
    }
    if (chance(b, 50)) {
        put(b, ONE(b, "   Clip # ", "  Clip # ", " CLIP # "));
        phif(b, DEID_ID, "%07d", 1000000 + pick(b, 8999999));
    }
    put(b, "\nReason: ");
    put(b, ONE(b, "r/o hydro", "eval for PNA", "r/o bleed", "ett placement", "eval effusion"));
    put(b, "\n");
    put(b, ONE(b, "FINAL REPORT\n", "WET READ\n", "PRELIMINARY REPORT\n"));
    put(b, ONE(b, "INDICATION: ", "HISTORY: "));
    age_phrase(b);
    put(b, ONE(b, " with hypoxia.\n", " with ARF.\n", " s/p fall.\n"));
    put(b, "COMPARISON: ");
    if (chance(b, 60)) date_loose(b, -2 - pick(b, 30));
    else put(b, "None");
    put(b, ".\nFINDINGS: ");
    put(b, ONE(b, "ET tube terminates 4 cm above the carina. Bilateral pleural effusions, L > R. ",
               "No hydronephrosis. Kidneys measure 10.2 and 11.1 cm. ", "No intracranial hemorrhage. ",
               "Moderate ascites and splenomegaly. RLQ collection amenable to percutaneous drainage. "));
    put(b, "\nIMPRESSION: ");
    put(b, ONE(b, "Worsening bilateral effusions.\n", "No acute process.\n", "Interval improvement.\n"));
}

/* A problem-oriented (D/A/R) nursing note. */
static void dar_note(nb *b) {
    put(b, ONE(b, "MICU B NURSING PROGRESS NOTE 7A-7P\n", "NSG NOTE 7p-7a\n", "CCU NPN\n", "Nursing progress note 1900-0700\n", ""));
    static const char *PROB[] = {"ALTERATION IN RESP FUNCTION", "ALTERATION IN HEMODYNAMICS", "POTENTIAL FOR INFECTION",
                                 "ALTERATION IN COMFORT", "ALTERATION IN F/E BALANCE", "FAMILY SUPPORT", "ALTERATION IN NUTRITION",
                                 "SAFETY", "KNOWLEDGE DEFICIT", "ALTERATION IN MENTAL STATUS"};
    int n = 2 + pick(b, 4);
    for (int k = 0; k < n; k++) {
        putf(b, "%s%d%s %s\n", ONE(b, "#", "PROBLEM #", "#"), k + 1, ONE(b, "", ".", ":"), chance(b, 70) ? PROB[pick(b, 10)] : "Alteration in resp function");
        put(b, "D: ");
        if (chance(b, 50)) trap_sentence(b);
        else common_sentence(b);
        if (chance(b, 50)) vitals(b);
        if (chance(b, 40)) cue_sentence(b);
        if (chance(b, 25)) date_sentence2(b);
        put(b, "\nA: ");
        if (chance(b, 50)) drips(b);
        else trap_sentence(b);
        if (chance(b, 30)) cue_sentence(b);
        put(b, "\nR: ");
        if (chance(b, 50)) trap_sentence(b);
        else common_sentence(b);
        put(b, "\n");
    }
    if (chance(b, 40)) {
        put(b, ONE(b, "#", "PROBLEM: "));
        put(b, "FAMILY SUPPORT\nD: ");
        cue_sentence(b);
        family_sentence(b);
        put(b, "\nA: QUESTIONS ANSWERED.\n");
    }
    if (chance(b, 75)) signature(b);
}

/* Social work, case management, family meeting. */
static void social_note(nb *b) {
    const synth_note_context *c = b->c;
    put(b, ONE(b, "Social Work Note\n", "Case Management Note\n", "CM NOTE:\n", "D/C PLANNING:\n", "Family Meeting Note\n", "SW follow up:\n", "Case Mgmt\n"));
    if (chance(b, 50)) {
        put(b, ONE(b, "Pt: ", "PT: ", "Patient: "));
        char tmp[2 * SYNTH_FIELD + 4];
        snprintf(tmp, sizeof tmp, "%s, %s", c->patient.family, c->patient.given);
        phi_name(b, tmp);
        if (c->mrn[0]) {
            put(b, ONE(b, "    MRN ", "   MRN: ", " Unit #"));
            phi(b, DEID_MRN, c->mrn);
        }
        put(b, "\n");
    }
    if (chance(b, 50)) {
        put(b, ONE(b, "Admit date: ", "ADMIT DATE: "));
        date_loose(b, -c->day_of_stay);
        put(b, "\n");
    }
    if (chance(b, 60)) {
        put(b, ONE(b, "Payor: ", "Ins: ", "PAYOR: ", "Insurance: "));
        put(b, ONE(b, "Medicare ", "MassHealth ", "BCBS ", "Tufts ", "Harvard Pilgrim ", "Medicaid ", "Fallon ", "Aetna ", "United ", "NHP "));
        if (chance(b, 30)) put(b, "#");
        if (chance(b, 50)) phif(b, DEID_ID, "%09d%c", pick(b, 1000000000), 'A' + pick(b, 26));
        else phif(b, DEID_ID, "%c%c%c%09d", 'A' + pick(b, 26), 'A' + pick(b, 26), 'A' + pick(b, 26), pick(b, 1000000000));
        put(b, "\n");
    }
    if (chance(b, 50)) {
        put(b, ONE(b, "PCP: Dr. ", "PCP is Dr. ", "PCP DR. "));
        const synth_person *p = clin(b);
        if (p) phi_name(b, chance(b, 50) ? p->family : p->given), put(b, " "), phi_name(b, p->family);
        if (chance(b, 40)) { put(b, " at "); hosp_abbr_ref(b); }
        else { put(b, ONE(b, ", ph ", " ")); phone_loose(b); }
        put(b, "\n");
    }
    int n = 3 + pick(b, 5);
    for (int k = 0; k < n; k++) {
        switch (pick(b, 7)) {
        case 0: family_sentence(b); break;
        case 1: case 2: cue_sentence(b); break;
        case 3: place_sentence2(b); break;
        case 4: date_sentence2(b); break;
        case 5: common_sentence(b); break;
        default: trap_sentence(b); break;
        }
        if (chance(b, 40)) put(b, "\n");
    }
    put(b, ONE(b, "\nPlan: ", "\nP: ", "\nPLAN: "));
    put(b, ONE(b, "CM will follow. ", "SW will cont to follow for support and d/c planning. ", "Will f/u w/ family. "));
    put(b, "\n");
    const synth_person *p = clin(b);
    if (p) {
        char tmp[2 * SYNTH_FIELD + 4];
        switch (pick(b, 5)) {
        case 0: put(b, "-- "); snprintf(tmp, sizeof tmp, "%s %s", p->given, p->family); phi_name(b, tmp); put(b, ONE(b, ", LICSW ", ", MSW ", ", RN CM ")); phone_loose(b); break;
        case 1: phi_name(b, p->given); put(b, " "); phone_loose(b); break;
        case 2: snprintf(tmp, sizeof tmp, "%s %s", p->given, p->family); phi_name(b, tmp); put(b, ONE(b, ", LICSW", ", RN CM", ", MSW", " CM")); break;
        case 3: snprintf(tmp, sizeof tmp, "%s, %s", p->family, p->given); phi_name(b, tmp); put(b, ", LICSW pgr "); phi(b, DEID_PHONE, c->pager[0] ? c->pager : "12345"); break;
        default: phi_name(b, p->given); break;
        }
        put(b, "\n");
    }
}

static void resp_note(nb *b) {
    put(b, ONE(b, "Respiratory Care:\n", "RESPIRATORY CARE:\n", "Resp Care Note\n", "RT NOTE: ", "resp care\n"));
    int n = 2 + pick(b, 4);
    for (int k = 0; k < n; k++) {
        switch (pick(b, 5)) {
        case 0: vent(b); break;
        case 1: trap_sentence(b); break;
        case 2: putf(b, "%s %d/%d/%d%%, RR %d, TV %ds. ", ONE(b, "PS", "ps", "CPAP/PS"), 5 + pick(b, 12), 5 + pick(b, 6), 35 + 5 * pick(b, 4), 14 + pick(b, 12), 350 + 10 * pick(b, 20)); break;
        case 3: if (chance(b, 50)) cue_sentence(b); else put(b, "In-line sx changed. BS coarse, sx'd for mod amt thick white sputum. "); break;
        default: putf(b, "RSBI %d this am, SBT %s. ", 40 + pick(b, 100), ONE(b, "failed d/t tachypnea", "passed, extubated", "deferred")); break;
        }
        if (chance(b, 60)) put(b, "\n");
    }
    put(b, ONE(b, "\nWill follow. ", "\nSee careview for vent settings. ", "\nPlan: wean as tol. ", "\n"));
    const synth_person *p = clin(b);
    if (p) {
        char tmp[2 * SYNTH_FIELD + 4];
        put(b, ONE(b, "\n-- ", "\n", "\n"));
        switch (pick(b, 4)) {
        case 0: phi_name(b, p->family); break;
        case 1: snprintf(tmp, sizeof tmp, "%s %s", p->given, p->family); phi_name(b, tmp); break;
        case 2: phi_name(b, p->given); break;
        default: snprintf(tmp, sizeof tmp, "%c%s", p->given[0], p->family); phi_name(b, tmp); break;
        }
        put(b, ONE(b, " RRT\n", " RT\n", " rrt\n", ", RRT\n", "\n"));
    }
}

static void report_note(nb *b) {
    if (chance(b, 50)) ecg_report(b);
    else radiology_report(b);
}

static void transfer_note(nb *b) {
    put(b, ONE(b, "MICU Admission Note\n", "Nursing Admission Note\n", "Transfer Note\n", "NURSING TRANSFER NOTE\n", "CCU admission note:\n", "micu npn admit note\n"));
    put(b, ONE(b, "HPI: ", "", "Pt is "));
    age_phrase(b);
    put(b, " w/ ");
    history_items(b);
    put(b, ONE(b, " admitted ", " transferred ", " adm "));
    date_loose(b, -b->c->day_of_stay);
    if (chance(b, 40)) { put(b, " from "); hosp_abbr_ref(b); }
    else put(b, ONE(b, " via EW", " from OSH", " via ED"));
    put(b, ONE(b, " w/ coffee ground emesis.\n", " w/ fall down stairs.\n", " w/ found down, GCS 7.\n", " for hypoxia.\n"));
    put(b, ONE(b, "Course: ", "COURSE: ", "In EW: "));
    for (int k = 1 + pick(b, 3); k > 0; k--) {
        if (chance(b, 50)) trap_sentence(b);
        else common_sentence(b);
    }
    if (chance(b, 30)) events_list(b);
    if (chance(b, 50)) cue_sentence(b);
    put(b, "\n");
    int n = 2 + pick(b, 4);
    for (int k = 0; k < n; k++) {
        switch (pick(b, 5)) {
        case 0: place_sentence2(b); break;
        case 1: cue_sentence(b); break;
        case 2: date_sentence2(b); break;
        default: trap_sentence(b); break;
        }
        if (chance(b, 50)) put(b, "\n");
    }
    put(b, "\n");
    if (chance(b, 60)) signature(b);
}

/* Flowsheet and order-list labels, one a line, as lists and exports hold them: no PHI. */
/* Round 12: item titles of a charge, supply or order catalogue, longer than the labels above
 * ("ADJUSTABLE KNEE SPLINT, PREFAB, EACH"-like lines of four to nine words: generic nouns of
 * supplies and services, clinical words whole or cut short, made-up abbreviations, counts glued
 * to a letter, connectives such as "with", "per", "other than"). Written in one case they hold
 * no capital that tells a name, and the one-case clinical-content cost on such lists was the
 * largest (docs/DEID.md, round 12): the model is shown what they are. Descriptions of ten to
 * twenty words with cue words before clinical words ("from plaster model"-like), and now and
 * then a line naming a clinician or a date (the only PHI). Words written for clinfm; none is
 * taken from any dataset. Drawn from a stream of their own, so the rest of
 * a list note is what round 11 wrote for its seed. */
static void title_lines(nb *b) {
    static const char *ITEM[] = {"supply", "device", "kit", "system", "component", "accessory", "replacement", "assembly",
                                 "adapter", "battery", "module", "insert", "pad", "sleeve", "strap", "liner", "socket",
                                 "implant", "electrode", "sensor", "pump", "mask", "tubing", "filter", "cannula",
                                 "needle", "syringe", "dressing", "bandage", "splint", "cast", "brace", "collar", "cushion",
                                 "mattress", "walker", "cane", "monitor", "cartridge", "reservoir", "applicator", "frame",
                                 "glove", "tray", "set", "valve", "catheter", "shoe", "wrap", "belt", "stocking", "vial"};
    static const char *MOD[] = {"each", "per", "with", "without", "for", "includes", "other than", "any type", "any size",
                                "custom", "prefabricated", "prefab", "adjustable", "disposable", "reusable", "single",
                                "bilateral", "unilateral", "pediatric", "adult", "complete", "partial", "initial",
                                "subsequent", "additional", "each additional", "up to", "minutes", "hour", "day", "month",
                                "visit", "session", "service", "evaluation", "management", "treatment", "therapy",
                                "procedure", "insertion", "removal", "repair", "open", "percutaneous", "fitting",
                                "not otherwise specified", "nos", "w/o", "w/", "incl", "addl", "sterile", "nonsterile",
                                "rigid", "soft", "flexible", "elastic", "standard", "heavy duty", "low", "high", "the",
                                "by", "of", "and", "or", "to", "in", "on", "under", "over"};
    static const char *CUE[] = {"from", "to", "at", "by", "per", "with", "for", "in", "on", "into", "than", "via"};
    int n = 8 + pick(b, 16), style = pick(b, 3);
    for (int k = 0; k < n; k++) {
        /* now and then a line with a name or a date in the same layout ("reviewed by X", "ordered
           3/4 per Dr X"): a list note is no place where nothing is PHI */
        if (chance(b, 5)) {
            const synth_person *p = clin(b);
            switch (pick(b, 3)) {
            case 0: put(b, ONE(b, "reviewed by ", "ordered by ", "entered by ", "verified by ")); break;
            case 1: put(b, ONE(b, "ordered ", "start ", "dispensed ", "last dose ")); date_ref(b, pick(b, 5), 0); put(b, " per "); break;
            default: clin_word(b, style == 1 ? 2 : 0); put(b, ONE(b, " ", ", ")); date_ref(b, pick(b, 5), 0); put(b, " by "); break;
            }
            /* the clinician with a title or a credential: a bare capitalised name here would teach
               that any listed name in a note dense with clinical words is PHI ("Morse Fall Scale") */
            if (p && chance(b, 50)) {
                put(b, ONE(b, "Dr ", "Dr. ", "DR "));
                phi_name(b, p->family);
            } else if (p) {
                char tmp[2 * SYNTH_FIELD + 4];
                snprintf(tmp, sizeof tmp, "%c. %s", p->given[0], p->family);
                phi_name(b, tmp);
                put(b, ONE(b, ", RN", " RN", ", PharmD", " MD"));
            }
            put(b, "\n");
            continue;
        }
        /* a description: a sentence of ten to twenty words whose cue words ("from", "to", "at",
           "per") are followed by clinical and common words, and a parenthesis of examples */
        if (chance(b, 25)) {
            int nw = 10 + pick(b, 11);
            for (int q = 0; q < nw; q++) {
                if (q) put(b, chance(b, 8) ? ", " : " ");
                int r = pick(b, 10);
                char w[48];
                if (r < 3) snprintf(w, sizeof w, "%s", CUE[pick(b, (int)(sizeof CUE / sizeof *CUE))]);
                else if (r < 5) snprintf(w, sizeof w, "%s", MOD[pick(b, (int)(sizeof MOD / sizeof *MOD))]);
                else if (r < 6) snprintf(w, sizeof w, "%s", ITEM[pick(b, (int)(sizeof ITEM / sizeof *ITEM))]);
                else {
                    clin_word(b, style == 1 ? 2 : 0);
                    continue;
                }
                if (style == 1) upper_copy(w, w, sizeof w);
                put(b, w);
            }
            if (chance(b, 50)) {
                put(b, ONE(b, " (e.g., ", " (i.e. ", " (", " (eg "));
                for (int q = 1 + pick(b, 4); q > 0; q--) {
                    if (chance(b, 50)) pseudo_abbr(b);
                    else clin_word(b, style == 1 ? 2 : 0);
                    if (q > 1) put(b, ", ");
                }
                put(b, ")");
            }
            put(b, "\n");
            continue;
        }
        int nw = 4 + pick(b, 6);
        for (int q = 0; q < nw; q++) {
            if (q) put(b, chance(b, 12) ? ", " : " ");
            int r = pick(b, 20);
            char w[48];
            w[0] = 0;
            if (r < 5) snprintf(w, sizeof w, "%s", ITEM[pick(b, (int)(sizeof ITEM / sizeof *ITEM))]);
            else if (r < 11) snprintf(w, sizeof w, "%s", MOD[pick(b, (int)(sizeof MOD / sizeof *MOD))]);
            else if (r == 11) snprintf(w, sizeof w, "%d%c", 1 + pick(b, 90), ONE(b, "D", "H", "CM", "MM", "ML", "X")[0]);
            else if (r == 12) snprintf(w, sizeof w, "%s-%s", ONE(b, "non", "self", "multi", "semi", "low", "pre"),
                                       ITEM[pick(b, (int)(sizeof ITEM / sizeof *ITEM))]);
            else if (r == 13) {
                pseudo_abbr(b);
                continue;
            } else if (r == 14) {
                pseudo_drug(b);
                continue;
            } else {
                clin_word(b, 0);
                continue;
            }
            if (style == 1) upper_copy(w, w, sizeof w);
            else if (style == 2 && w[0] >= 'a' && w[0] <= 'z') w[0] = (char)(w[0] - 32);
            put(b, w);
        }
        put(b, "\n");
    }
}

static void list_note(nb *b) {
    static const char *SUF[] = {"", "", "", " L", " R", " (mL)", " #1", " #2", " Intake", " Output", " Site", " Score",
                                " Level", " Value", " Alarm - High", " [Units/volume] in Serum", " serum/plasma",
                                " 10 MG Oral Tablet", " 2 MG/ML Injectable Solution", " injection", " (Dilaudid)", " Drip",
                                ", Urine", ", Whole Blood", " Ab", " IgG", " (3/4)", " (1/2)", " per unit", " Narrative"};
    int n = 15 + pick(b, 40), style = pick(b, 4);
    for (int k = 0; k < n; k++) {
        int nw = 1 + pick(b, 3);
        for (int q = 0; q < nw; q++) {
            if (q) put(b, " ");
            if (chance(b, 25)) pseudo_drug(b);
            else if (chance(b, 15)) pseudo_abbr(b);
            else clin_word(b, style == 0 ? 1 : style == 1 ? 2 : pick(b, 3));
        }
        put(b, SUF[pick(b, 30)]);
        put(b, "\n");
    }
    uint64_t main_rng = b->rng;
    b->rng = b->rng3;
    title_lines(b);
    b->rng3 = b->rng;
    b->rng = main_rng;
}


/* Everyday words in the places names take: a relative who wants, states, brings; common words
 * capitalised or in capitals at a sentence start ("Short of breath", "DEPRESSED AFFECT"); places
 * that are no place ("brought in food from home", "ambulated in hall"); organisms with an
 * initial ("E. coli"). No PHI. */
static void common_sentence(nb *b) {
    const char *kin = ONE(b, "wife", "husband", "son", "daughter", "dtr", "dau", "HCP", "partner", "brother", "sister", "niece", "nephew", "friend", "mom");
    switch (pick(b, 24)) {
    case 0: putf(b, "Pt's %s %s ", kin, ONE(b, "wants", "states", "requests", "feels", "asked", "reports", "prefers", "hopes"));
        put(b, ONE(b, "pt to go to rehab. ", "pt is at baseline mental status. ", "to be called for major changes only. ", "pt would not want to be on machines. ", "pt to be comfortable. "));
        break;
    case 1: putf(b, "Pt's %s brought in food from home, pt ate well. ", kin); break;
    case 2: put(b, ONE(b, "OOB to chair, ambulated in hall x2 w/ PT. ", "walked in hallway w/ RN. ", "up in chair most of shift. ", "back to bed at 1600. ")); break;
    case 3: put(b, ONE(b, "Short of breath w/ minimal exertion, sats drop to 88%. ", "SHORT OF BREATH W/ EXERTION. ", "short of breath at rest. ")); break;
    case 4: put(b, ONE(b, "Depressed affect, tearful at times talking about her son. ", "DEPRESSED AFFECT, TEARFUL AT TIMES. ", "flat affect. ", "Anxious at times, reassured. ")); break;
    case 5: put(b, ONE(b, "No major events overnight. ", "NO MAJOR EVENTS. ", "Plan: No major events. ", "no acute events. ")); break;
    case 6: put(b, ONE(b, "Monitor resp status, aggressive pulm toilet. ", "pulm toilet, IS q1h. ", "AGGRESSIVE PULM TOILET. ")); break;
    case 7: put(b, ONE(b, "Blood cx grew E. coli, abx narrowed. ", "sputum w/ S. aureus. ", "urine cx K. pneumoniae. ", "C. diff neg x1. ", "P. aeruginosa in BAL. ")); break;
    case 8: put(b, ONE(b, "Melena x2, HCT stable. ", "Condom cath in place. ", "Temp pacer VVI @ 60, not pacing. ", "Rectal tube draining liquid stool. ")); break;
    case 9: put(b, ONE(b, "Slept in naps overnight. ", "Refusing care at times. ", "Very anxious, reassured. ", "Decision made to make pt DNR/DNI. ", "Family aware of poor prognosis. ")); break;
    case 10: put(b, ONE(b, "reintubated by anesthesia without difficulty. ", "REINTUBATED BY ANESTHESIA WITHOUT DIFFICULTY. ", "intubated by anesthesia w/o difficulty. ")); break;
    case 11: put(b, ONE(b, "LS diminished at bases. ", "ls clear upper lobes, diminished at bases. ", "crackles at bases. ")); break;
    case 12: put(b, ONE(b, "Tolerating clear liquids, appetite fair. ", "appetite poor. ", "taking sips. ")); break;
    case 13: putf(b, "Information obtained from %s, chart, and RN. ", kin); break;
    case 14: put(b, ONE(b, "Pt's faith important to her, chaplain called. ", "Priest in to give sacrament of the sick. ", "Pt is a veteran, receives care at the VA. ", "served in the Army. ")); break;
    case 15: put(b, ONE(b, "Family updated by phone. ", "family aware. ", "Family in to visit. ", "FAMILY CHECKING IN DAILY. ")); break;
    case 16: put(b, ONE(b, "Encouraged family to bring in photos and music. ", "Will assist w/ parking. ", "Spoke w/ DON there. ", "Facility aware. ")); break;
    case 17: putf(b, "Rec: %s. ", ONE(b, "SNF", "cont PT in house", "home w/ services", "acute rehab")); break;
    case 18: put(b, ONE(b, "Addendum: ", "Nights: ", "Days: ", "Evenings: ")); break;
    case 19: putf(b, "Pt's %s %s. ", kin, ONE(b, "involved", "anxious", "upset", "flying in tomorrow", "at bedside", "updated")); break;
    case 20: put(b, ONE(b, "Pain mgmt, pulm toilet, OOB to chair. ", "Cont current plan. ", "Cont to monitor closely. ")); break;
    case 21: putf(b, "%s %d visitors at a time. ", ONE(b, "Large family, pls limit to", "pls limit to", "LIMIT TO"), 2 + pick(b, 2)); break;
    case 22: put(b, ONE(b, "sats 88-92% on 3L NC, goal sats 88-92% d/t COPD. ", "non productive cough, IS to 750cc. ", "HR up to 130s, switched to levo. ")); break;
    default: put(b, ONE(b, "Transferred to ICU for GIB. ", "Case reviewed at rounds. ", "CPAP w/ home settings at HS. ", "Stent to circ, groin site soft. ")); break;
    }
}

/* A timed list of the shift's events: "0930 SBP 70s, LR bolus", "* 2130 k 3.2, repleted.",
 * "- 1845 UO 10cc/hr". Clock times are no dates or phone numbers. */
static void events_list(nb *b) {
    const char *lead = ONE(b, "", "* ", "- ", "");
    int h = pick(b, 24);
    put(b, ONE(b, "24h events: ", "Events: ", "EVENTS:\n", "Overnight:\n", "Addendum:\n"));
    int n = 2 + pick(b, 5);
    for (int k = 0; k < n; k++) {
        h = (h + 1 + pick(b, 4)) % 24;
        putf(b, "%s%02d%02d ", lead, h, 5 * pick(b, 12));
        switch (pick(b, 8)) {
        case 0: put(b, ONE(b, "SBP 70s, LR bolus 500cc", "new AFib 130s, lopressor 5mg IV x2", "pt desat to 83%, sx'd & bagged, recovered", "fever 38.9, pan cultured")); break;
        case 1: put(b, ONE(b, "to CT head, returned ", "extubated, back on at ", "off pressors, restarted at ")); putf(b, "%02d%02d", (h + 1) % 24, 5 * pick(b, 12)); break;
        case 2: put(b, ONE(b, "k 3.2, repleted", "hct 23.8, 2 u prbc ordered", "a-line placed", "12 lead done, nitro SL x1")); break;
        case 3: putf(b, "%s ", kin_word(b, "son")); rel_loose(b, rel_i(b)); put(b, ONE(b, " called, updated", " arrived", " in to visit")); break;
        case 4: hcp_loose(b); put(b, ONE(b, " aware", " paged", " at bedside")); break;
        case 5: putf(b, "pt's %s arrived from ", kin_word(b, "son")); phi(b, DEID_LOCATION, b->c->city[0] ? b->c->city : "town"); break;
        default: trap_sentence(b); break;
        }
        put(b, ONE(b, ".\n", "\n", "; ", ".; "));
    }
}

/* ---- round 6: emergency, dictated and therapy notes -------------------------------------- */

/* A clinician's initials ("JB", "jb", "J.B.", "JKB"), as signed on a short line or typed by a
 * transcriptionist. */
static void initials_of(nb *b, const synth_person *p, int lower) {
    char tmp[8];
    if (chance(b, 15)) snprintf(tmp, sizeof tmp, "%c.%c.", p->given[0], p->family[0]);
    else if (chance(b, 12)) snprintf(tmp, sizeof tmp, "%c%c%c", p->given[0], 'A' + pick(b, 26), p->family[0]);
    else snprintf(tmp, sizeof tmp, "%c%c", p->given[0], p->family[0]);
    if (lower)
        for (char *q = tmp; *q; q++)
            if (*q >= 'A' && *q <= 'Z') *q = (char)(*q + 32);
    phi(b, DEID_NAME, tmp);
}

/* credentials after a signature; not PHI */
static const char *credential(nb *b) {
    return ONE(b, "RN", "MD", "DO", "NP", "PA-C", "DPT", "PTA", "OTR/L", "COTA", "RRT", "PharmD", "RPh", "LICSW", "MSW",
               "LCSW", "RD", "LDN", "SLP", "CCC-SLP", "CNA", "LPN", "CRNA", "ANP", "FNP-BC", "RN BSN", "RN CM", "MD PhD",
               "CNS", "EMT-P", "BSN", "SW", "CM");
}

/* A signature line of a short note: initials or a name, with a credential, sometimes a number */
static void sig_line(nb *b) {
    const synth_person *p = clin(b);
    if (!p || chance(b, 25)) {
        /* a short closing line that is no name: words alone on a last line are not always a signature */
        put(b, ONE(b, "\n(over)\n", "\n(Final)\n", "\nEND OF NOTE\n", "\nPage w/ questions.\n", "\ncont per plan\n",
                   "\nMVI, thiamine, folate\n", "\nFull code.\n", "\nDNR/DNI\n", "\n(cont)\n", "\nReviewed.\n"));
        return;
    }
    char tmp[2 * SYNTH_FIELD + 4];
    put(b, ONE(b, "\n- ", "\n-- ", "\n", "\n", "\nSigned: ", "\n~", "\nBy: "));
    switch (pick(b, 7)) {
    case 0: case 1: initials_of(b, p, chance(b, 20)); putf(b, " %s", credential(b)); break;
    case 2: phi_name(b, p->family); putf(b, " %s", credential(b)); break;
    case 3: snprintf(tmp, sizeof tmp, "%s %s", p->given, p->family); phi_name(b, tmp); putf(b, ONE(b, ", %s", " %s"), credential(b)); break;
    case 4: snprintf(tmp, sizeof tmp, "%c. %s", p->given[0], p->family); phi_name(b, tmp); putf(b, " %s", credential(b)); break;
    case 5: phi_name(b, p->given); putf(b, " %s", credential(b)); break;
    default: initials_of(b, p, 0); putf(b, " %s ", credential(b)); phone_loose(b); break;
    }
    put(b, "\n");
}

/* vital signs as a bare list in the reader's known order: "T/HR/BP/RR/SaO2 37.9, 104, 101/58,
 * 22, 93% 2L" (the numbers after the commas and slashes are no dates) */
static void vitals_list(nb *b) {
    put(b, ONE(b, "Initial vitals ", "T/HR/BP/RR/SaO2 ", "vitals on arrival: ", "Triage vitals - ", "V/S "));
    if (chance(b, 35)) putf(b, "%d.%d", 36 + pick(b, 4), pick(b, 10));
    else putf(b, "%d.%d", 96 + pick(b, 7), pick(b, 10));
    const char *sep = ONE(b, ", ", ", ", " / ", "  ", "; ");
    putf(b, "%s%d%s%d/%d%s%d%s%d%%", sep, 45 + pick(b, 90), sep, 80 + pick(b, 110), 35 + pick(b, 60), sep, 8 + pick(b, 28), sep, 80 + pick(b, 21));
    put(b, ONE(b, " RA", " on 2L", " 3 L NC", " 15L NRB", " on RA", " 5LNC", " BiPAP", ""));
    if (chance(b, 50)) putf(b, ONE(b, ", accucheck %d", "  glucose %d", ", FS %d"), 55 + pick(b, 420));
    if (chance(b, 60)) putf(b, ONE(b, ", pain %d/10", "  pain score %d", " (pain %d/10)"), pick(b, 11));
    if (chance(b, 30)) putf(b, ", wt %d kg", 40 + pick(b, 100));
    put(b, "\n");
}

/* numeric lab lists: "Na 141, K 3.6, Cl 99, CO2 27, BUN 22, Cr 0.9; iCa 1.12 Alb 2.9" */
static void lab_line(nb *b) {
    if (chance(b, 50))
        putf(b, "Na %d, K %d.%d, Cl %d, CO2 %d, BUN %d, Cr %d.%d, gluc %d", 126 + pick(b, 20), 2 + pick(b, 4), pick(b, 10), 92 + pick(b, 18),
             14 + pick(b, 16), 5 + pick(b, 70), pick(b, 5), pick(b, 10), 60 + pick(b, 350));
    else
        putf(b, "chem7 %d/%d.%d/%d/%d/%d/%d.%d/%d", 126 + pick(b, 20), 2 + pick(b, 4), pick(b, 10), 92 + pick(b, 18), 14 + pick(b, 16),
             5 + pick(b, 70), pick(b, 5), pick(b, 10), 60 + pick(b, 350));
    if (chance(b, 60)) putf(b, "%siCa %d.%02d Alb %d.%d Mg %d.%d PO4 %d.%d", ONE(b, "; ", "  ", ". "), 1, pick(b, 40), 2 + pick(b, 3), pick(b, 10), 1 + pick(b, 2), pick(b, 10), 1 + pick(b, 5), pick(b, 10));
    if (chance(b, 40)) putf(b, "%sCa %d.%d", ONE(b, ", ", "; ", " "), 7 + pick(b, 4), pick(b, 10));
    if (chance(b, 50)) putf(b, "%sCBC %d.%d>%d.%d<%d, PT %d.%d/INR %d.%d", ONE(b, "; ", "\n"), 2 + pick(b, 25), pick(b, 10), 7 + pick(b, 9), pick(b, 10), 30 + pick(b, 450), 11 + pick(b, 15), pick(b, 10), 1, pick(b, 10));
    if (chance(b, 40)) putf(b, "%sTnT %d.%02d, CK-MB %d, proBNP %d, lactate %d.%d", ONE(b, "; ", ". "), pick(b, 2), pick(b, 100), 1 + pick(b, 30), 100 + pick(b, 9000), pick(b, 8), pick(b, 10));
    put(b, "\n");
}

/* exam shorthand with eponyms and letters that look like names */
static void exam_line(nb *b) {
    put(b, ONE(b, "PE: ", "Physical exam: ", "O: ", "On exam "));
    put(b, ONE(b, "awake, oriented x3. ", "drowsy, follows commands. ", "in mild distress. ", "comfortable. "));
    put(b, ONE(b, "Heart reg, 3/6 holosystolic murmur apex. ", "tachy, irreg. ", "S1 S2 nl, no rub. ", "RRR, soft SEM. ", "Graham Steell murmur. "));
    put(b, ONE(b, "Chest: bibasilar rales. ", "Lungs clear. ", "decreased BS R base, egophony. ", "Kussmaul resp. "));
    put(b, ONE(b, "Abd: distended, tympanic. ", "abd benign, neg Rovsing. ", "Grey Turner sign absent. ", "no HSM. "));
    put(b, ONE(b, "Ext: trace pedal edema. ", "Calves soft, non-tender. ", "Janeway lesions noted. ", "Osler nodes absent. ", "Kernig/Brudzinski neg. "));
    if (chance(b, 40)) put(b, ONE(b, "Romberg pos. ", "Trousseau neg. ", "Cheyne-Stokes breathing at times. ", "Virchow node not palpable. ", "Roux-en-Y anatomy. ", "Kerley lines on film. "));
    put(b, "\n");
}

/* an emergency-department triage or physician note */
static void ed_note(nb *b) {
    const synth_note_context *c = b->c;
    put(b, ONE(b, "Emergency Dept Triage\n", "EMERGENCY NURSING ASSESSMENT\n", "ED Provider Note\n", "ER NOTE\n", "Triage Assessment:\n", "EW Attending\n"));
    if (chance(b, 60)) {
        put(b, ONE(b, "Pt: ", "Name: ", "", "PATIENT: "));
        char tmp[2 * SYNTH_FIELD + 4];
        if (chance(b, 50)) snprintf(tmp, sizeof tmp, "%s %s", c->patient.given, c->patient.family);
        else snprintf(tmp, sizeof tmp, "%s, %s", c->patient.family, c->patient.given);
        phi_name(b, tmp);
        if (c->mrn[0]) { put(b, ONE(b, "  MR# ", "   Unit no: ", " #")); phi(b, DEID_MRN, c->mrn); }
        put(b, "\n");
    }
    if (chance(b, 50)) { put(b, ONE(b, "Arrived ", "Seen at ", "Door time ")); putf(b, "%02d%02d  ", pick(b, 24), 5 * pick(b, 12)); date_loose(b, 0); put(b, "\n"); }
    put(b, ONE(b, "Presenting complaint: ", "CC: ", "Complaint - "));
    put(b, ONE(b, "dyspnea", "CP", "mechanical fall", "generalized weakness", "epigastric pain", "AMS", "fevers", "near syncope", "hematemesis"));
    put(b, "\n");
    age_phrase(b);
    put(b, ONE(b, " arrives via EMS from ", " by ambulance from ", " brought by family from ", " via private car from ", " transported from "));
    switch (pick(b, 4)) {
    case 0: facility_ref(b); break;
    case 1: put(b, ONE(b, "home", "a shelter", "work")); break;
    case 2: phi(b, DEID_ADDRESS, c->street); put(b, ", "); phi(b, DEID_LOCATION, c->city); break;
    default: hosp_abbr_ref(b); break;
    }
    put(b, ONE(b, " with ", " reporting ", " after "));
    put(b, ONE(b, "2 days of worsening dyspnea", "pressure-like CP", "an unwitnessed fall", "vomiting x3", "rigors", "confusion per staff"));
    put(b, ONE(b, ". ", "\n"));
    if (chance(b, 40)) { relative_ref(b, rel_i(b)); put(b, ONE(b, " found pt and called EMS. ", " accompanies pt. ", " is HCP. ")); }
    vitals_list(b);
    put(b, ONE(b, "Hx: ", "Past hx: ", "PMH - "));
    put(b, ONE(b, "HTN, HLD, T2DM", "HFrEF, AF on apixaban", "CKD4", "Parkinson's, prior CVA", "s/p CABG, PVD"));
    if (chance(b, 40)) { put(b, ", "); history_items(b); }
    put(b, "\n");
    put(b, ONE(b, "Allergies: none known\n", "ALLERGIES: codeine (nausea)\n", "NKDA\n", "allergy: iodine\n"));
    if (chance(b, 50)) put(b, ONE(b, "Home meds reviewed\n", "Med list w/ EMS\n", "Meds per facility MAR\n"));
    if (chance(b, 50)) { put(b, ONE(b, "PCP ", "Primary: ", "pcp ")); hcp_loose(b); if (chance(b, 50)) { put(b, ONE(b, " at ", ", ")); hosp_abbr_ref(b); } put(b, "\n"); }
    if (chance(b, 40)) exam_line(b);
    putf(b, ONE(b, "ESI level %d. ", "Acuity %d, ", "Triage category %d  ", "ESI %d; "), 1 + pick(b, 5));
    put(b, ONE(b, "placed in Rm ", "to Bay ", "to urgent care side", "to trauma bay", "to hall bed ", "to Rm "));
    if (b->t.p[b->t.len - 1] == ' ') { if (chance(b, 50)) putf(b, "%d", 1 + pick(b, 30)); else putf(b, "%c", 'A' + pick(b, 4)); }
    put(b, "\n");
    if (chance(b, 40)) { trap_sentence(b); put(b, "\n"); }
    if (chance(b, 40)) { put(b, ONE(b, "Given ", "Rec'd ", "s/p ")); put(b, ONE(b, "1/2 tab ASA", "NS 1/2 L bolus", "morphine 2-4 mg", "1-2 L IVF", "500-1000 mL LR", "tylenol 650 x1")); put(b, ONE(b, ".\n", " in triage.\n")); }
    sig_line(b);
}

/* a dictated consult or clinic letter with its transcription line ("D: date T: date JB/kl") */
static void dictated_note(nb *b) {
    const synth_note_context *c = b->c;
    put(b, ONE(b, "CONSULTATION REPORT\n", "Consultation\n", "Outpatient Visit\n", "CLINIC LETTER\n", "Nephrology Consultation\n", "GI consult\n"));
    if (chance(b, 70)) { put(b, ONE(b, "Service date: ", "DOS: ", "Visit ", "")); date_ref(b, 0, 1); put(b, "\n"); }
    if (chance(b, 70)) {
        put(b, ONE(b, "Consult requested by ", "Requesting physician: ", "REFERRED BY: ", "Referral from "));
        clinician_ref(b, 1);
        put(b, ", ");
        put(b, ONE(b, "General Medicine", "Gen Surg", "Orthopedics", "CCU", "Cards", "Neurology", "Heme/Onc", "Hospital Medicine"));
        if (chance(b, 60)) { put(b, ", "); ward_loose(b); }
        put(b, "\n");
    }
    put(b, ONE(b, "Question: ", "Indication: ", "RFC: "));
    put(b, ONE(b, "rising creatinine", "rapid AF", "K 6.2", "melena", "presyncope", "Na 122", "volume overload"));
    put(b, "\nHistory: ");
    age_phrase(b);
    put(b, ONE(b, " with ", " w/ ", " who has "));
    history_items(b);
    put(b, ONE(b, ", admitted ", ", seen here ", ", came in "));
    date_loose(b, -c->day_of_stay);
    put(b, ONE(b, ". ", " w/ orthopnea. ", " after syncope at home. "));
    if (chance(b, 50)) common_sentence(b);
    put(b, "\n");
    exam_line(b);
    put(b, ONE(b, "Results: ", "Labs: ", "LABS: "));
    lab_line(b);
    if (chance(b, 60)) {
        put(b, ONE(b, "  KUB", "  CTA", "  TTE ", "  EKG "));
        if (chance(b, 50)) date_loose(b, -pick(b, 3)); else { put(b, " "); date_loose(b, -pick(b, 3)); }
        put(b, ONE(b, ": no free air\n", ": EF 30-35%, severe TR\n", ": unchanged from prior\n", ": new LBBB\n"));
    }
    put(b, ONE(b, "Assessment and recommendations:\n", "Plan:\n", "RECOMMENDATIONS\n"));
    int n = 2 + pick(b, 3);
    for (int k = 0; k < n; k++) {
        putf(b, ONE(b, "%d) ", "%d. ", "%d- "), k + 1);
        switch (pick(b, 5)) {
        case 0: put(b, ONE(b, "carvedilol 3.125 BID", "digoxin 0.125 daily", "warfarin 7.5 tonight", "torsemide 20 qd", "K-Dur 20 mEq x2")); break;
        case 1: put(b, ONE(b, "renal US", "EGD in am", "TSH, iron studies", "repeat lytes q6h")); break;
        case 2: put(b, ONE(b, "discussed w/ ", "d/w ", "plan reviewed with ")); hcp_loose(b); break;
        case 3: put(b, ONE(b, "return to clinic ", "f/u appt ", "see in clinic ")); date_loose(b, 7 + pick(b, 30)); putf(b, " %d:%02d%s", 1 + pick(b, 12), 15 * pick(b, 4), ONE(b, "am", "pm", "")); break;
        default: trap_sentence(b); break;
        }
        put(b, "\n");
    }
    const synth_person *p = clin(b);
    if (p && chance(b, 80)) {
        /* dictator and transcriptionist initials ("JB/kl"): on their own line, before the dates or
           after them */
        const synth_person *q = clin(b);
        int where = pick(b, 4);
        if (where == 0) {
            put(b, "\n");
            initials_of(b, p, 0);
            put(b, ONE(b, "/", "/", ":"));
            initials_of(b, q ? q : p, chance(b, 70));
        }
        put(b, ONE(b, "\nD: ", "\nDD: ", "\nDictated: "));
        date_loose(b, 0);
        put(b, ONE(b, " T: ", "  TD: ", " Transcribed: "));
        date_loose(b, 1);
        if (where > 0) {
            put(b, where == 1 ? "  " : "\n");
            initials_of(b, p, 0);
            put(b, ONE(b, "/", "/", ":"));
            initials_of(b, q ? q : p, chance(b, 70));
        }
        if (chance(b, 40)) putf(b, " job %d", 10000 + pick(b, 90000));
        put(b, "\n");
    }
    if (chance(b, 60)) {
        put(b, ONE(b, "cc: ", "Copy to: ", "CC "));
        clinician_ref(b, 0);
        put(b, ", ");
        if (chance(b, 50)) phi(b, DEID_LOCATION, c->city);
        else hospital_ref(b, 1);
        put(b, "\n");
    }
    if (p && chance(b, 60)) {
        char tmp[2 * SYNTH_FIELD + 4];
        put(b, ONE(b, "Signed electronically by ", "Authenticated by ", "E-signed: "));
        snprintf(tmp, sizeof tmp, "%s %s", p->given, p->family);
        phi_name(b, tmp);
        put(b, ONE(b, " on ", " "));
        date_ref(b, 2, 1);
        put(b, "\n");
    }
}

/* physical and occupational therapy, pharmacy and nutrition notes */
static void therapy_note(nb *b) {
    const synth_note_context *c = b->c;
    int kind = pick(b, 3);
    if (kind == 0) put(b, ONE(b, "Physical Therapy Evaluation ", "PT treatment ", "PT daily note ", "Occupational Therapy ", "OT tx "));
    else if (kind == 1) put(b, ONE(b, "Clinical Pharmacy ", "Pharmacokinetics ", "Pharm note ", "Anticoagulation clinic "));
    else put(b, ONE(b, "Clinical Nutrition ", "Dietitian note ", "Nutrition f/u "));
    if (chance(b, 70)) date_loose(b, 0);
    put(b, "\n");
    if (kind == 0) {
        put(b, ONE(b, "Diagnosis: ", "Tx dx: ", "Referral dx: "));
        put(b, ONE(b, "R hemiarthroplasty", "L femoral neck fx", "debility", "R TKR POD2", "L MCA stroke", "lumbar stenosis s/p lami"));
        if (chance(b, 40)) { put(b, " "); date_loose(b, -pick(b, 5)); }
        put(b, "\n");
        put(b, ONE(b, "Home setup: ", "Baseline: ", "Social/home: "));
        put(b, ONE(b, "indep w/o device", "used a rollator", "household ambulator", "indep ADLs, no driving", "needed help w/ IADLs"));
        put(b, ONE(b, "; resides alone in ", "; lives w/ "));
        if (b->t.p[b->t.len - 2] == 'w' && b->t.p[b->t.len - 1] == ' ') { rel_loose(b, rel_i(b)); put(b, " in "); }
        putf(b, "%s, %d %s", ONE(b, "a split-level", "a ranch house", "a 1st floor apt", "a 3rd floor walk-up", "an assisted living apt", "a duplex"),
             1 + pick(b, 14), ONE(b, "steps w/ 1 rail", "stairs to bedroom", "entry steps"));
        if (chance(b, 50)) { put(b, ONE(b, " in ", ", ")); phi(b, DEID_LOCATION, c->city); }
        put(b, ".\n");
        putf(b, "Pain %d/10 at rest. Supine>sit mod A, transfers min A x%d, gait %d ft w/ rollator + SBA. MMT %d%s/5 hip flexors. ", pick(b, 11), 1 + pick(b, 2),
             10 + 5 * pick(b, 30), 2 + pick(b, 3), ONE(b, "", "+", "-"));
        putf(b, ONE(b, "Berg %d/56", "MoCA %d/30", "5xSTS %d sec", "Braden %d/23", "FIM %d/126"), 6 + pick(b, 20));
        put(b, ONE(b, ", fall risk.\n", ".\n", ", below age norms.\n"));
        put(b, ONE(b, "Impression: ", "A: "));
        put(b, ONE(b, "progressing toward goals. ", "slow progress, deconditioned. ", "limited by orthostasis. "));
        put(b, ONE(b, "D/c rec: ", "Recommend ", "plan d/c to ", "anticipate ", "Dispo: ", "d/c to rehab at ", "rehab bed at ", "SNF: "));
        if (chance(b, 70)) facility_ref(b); else put(b, ONE(b, "home w/ VNA", "home w/ family assist", "inpatient rehab"));
        put(b, ".\n");
    } else if (kind == 1) {
        putf(b, "%s level %d.%d drawn before dose %d; ", ONE(b, "Vanc", "Vancomycin", "Tobramycin", "Amikacin"), 5 + pick(b, 20), pick(b, 10), 3 + pick(b, 4));
        putf(b, "regimen %s, target %d-%d. ", ONE(b, "1250 mg q12h", "15 mg/kg q24h", "1 g q8h", "750 mg q12h"), 10 + 5 * pick(b, 2), 15 + 5 * pick(b, 2));
        putf(b, "INR %d.%d, coumadin %s. ", 1 + pick(b, 3), pick(b, 10), ONE(b, "hold x1", "7.5 mg", "1 mg tonight", "unchanged"));
        lab_line(b);
        put(b, ONE(b, "Outpt meds confirmed with ", "Med history from ", "Allergies confirmed w/ "));
        relative_ref(b, rel_i(b));
        if (chance(b, 50)) { put(b, " and "); put(b, ONE(b, "Walgreens ", "Stop & Shop pharmacy ", "the pharmacy in ", "CVS on ")); phi(b, DEID_LOCATION, c->city); put(b, " ("); phone_loose(b); put(b, ")"); }
        put(b, ".\nReviewed w/ ");
        clinician_ref(b, 1);
        put(b, ".\n");
    } else {
        putf(b, "Ht %d cm Wt %d.%d kg BMI %d. ", 150 + pick(b, 40), 45 + pick(b, 80), pick(b, 10), 17 + pick(b, 25));
        putf(b, "Needs %d-%d kcal/d, %d-%d g protein. ", 1400 + 100 * pick(b, 8), 1800 + 100 * pick(b, 8), 60 + pick(b, 30), 90 + pick(b, 30));
        put(b, ONE(b, "TF Jevity 1.2 @ 40, goal 60. ", "advancing to dysphagia diet. ", "eats <25% of meals. ", "Glucerna BID. "));
        if (chance(b, 50)) common_sentence(b);
        put(b, "\n");
        lab_line(b);
    }
    if (chance(b, 50)) { put(b, ONE(b, "Coverage: ", "Payer: ")); put(b, ONE(b, "Medicare A/B, member id ", "Medicaid #", "commercial, policy ", "Medicare Advantage ")); phif(b, DEID_ID, "%09d%c%03d", pick(b, 1000000000), 'A' + pick(b, 26), pick(b, 1000)); put(b, ".\n"); }
    if (chance(b, 40)) { put(b, ONE(b, "Will update ", "Will call ")); relative_ref(b, rel_i(b)); put(b, ONE(b, " in am.\n", " later today.\n", ".\n")); }
    sig_line(b);
}

/* ---- one note ---------------------------------------------------------------------------- */

int synth_note_write(const synth_note_context *ctx, int kind, int casing, uint64_t seed, synth_note *out,
                     cf_err *err) {
    return synth_note_write_ex(ctx, kind, casing, seed, NULL, out, err);
}

/* ---- round 10: stress notes for the recall classes of real notes ---------------------------
 * Telephone messages, dispositions, history years, requests and sign-offs, each identifier in
 * a role its structure shows (the slot after "re" in a call line, after "rehab -", after
 * "quit", a signature line) with names of every kind, common words among them, and traps of the
 * same shapes with no PHI. Written for measurement only (SYNTH_NOTE_MESSAGE). */
static void msg_patient(nb *b) {
    const synth_note_context *c = b->c;
    char tmp[2 * SYNTH_FIELD + 8];
    switch (pick(b, 6)) {
    case 0: case 1: phi(b, DEID_NAME, c->nickname[0] ? c->nickname : c->patient.given); break; /* "Faith", "Skip" */
    case 2: phi(b, DEID_NAME, c->patient.given); break;
    case 3: snprintf(tmp, sizeof tmp, "%s %s", c->patient.given, c->patient.family); phi(b, DEID_NAME, tmp); break;
    case 4: put(b, ONE(b, "Mrs ", "Mr. ", "Mr ", "Ms. ")); phi(b, DEID_NAME, c->patient.family); break;
    default: phi(b, DEID_NAME, c->nickname[0] ? c->nickname : c->patient.given); break;
    }
}

static void msg_caller(nb *b) {
    int i = rel_i(b);
    const synth_note_context *c = b->c;
    if (i < 0 || chance(b, 15)) {
        put(b, ONE(b, "nurse ", "RN ", "the nurse "));
        if (c->n_clinicians) phi(b, DEID_NAME, c->clinician[0].given);
        else put(b, "on duty");
        put(b, " at ");
        phi(b, DEID_LOCATION, c->facility);
        return;
    }
    const synth_person *p = &c->relative[i];
    const char *rel = kin_word(b, c->relation[i]);
    switch (pick(b, 4)) {
    case 0: putf(b, "%s (", rel); phi(b, DEID_NAME, p->given); put(b, ")"); break;
    case 1: putf(b, "%s, ", rel); phi(b, DEID_NAME, p->given); put(b, ","); break;
    case 2: putf(b, "%s ", rel); phif(b, DEID_NAME, "%s %s", p->given, p->family); break;
    default: putf(b, "%s ", rel); phi(b, DEID_NAME, p->given); break;
    }
}

static void msg_year(nb *b, int lo, int span) { phif(b, DEID_DATE, "%d", lo + pick(b, span)); }

static void message_line(nb *b) {
    const synth_note_context *c = b->c;
    const synth_person *p = clin(b);
    char tmp[2 * SYNTH_FIELD + 8];
    switch (pick(b, 11)) {
    case 9: /* device serials and timed draws */
        if (chance(b, 50)) {
            static const char *const dev[] = {"ICD interrogated (model MX-3, SN ", "Pacer check, serial # ", "LVAD controller SN: ",
                                              "Pump serial "};
            int k = pick(b, 4);
            put(b, dev[k]);
            phif(b, DEID_ID, "%06d%c%c", pick(b, 1000000), 'A' + pick(b, 26), 'A' + pick(b, 26));
            put(b, k == 0 ? ")\n" : ONE(b, "\n", ", no alarms.\n"));
        } else {
            put(b, ONE(b, "Level drawn ", "Cx sent ", "BMP drawn ", "Trough due "));
            date_ref(b, pick(b, 3), 0);
            putf(b, " %02d%02d", pick(b, 24), 15 * pick(b, 4));
            put(b, ONE(b, ", result pending.\n", ".\n", "\n"));
        }
        break;
    case 10: put(b, ONE(b, "Tel f/u ", "Callback ", "Addendum ")); date_ref(b, 1 + pick(b, 3), 0); put(b, "\n"); break;
    case 0: case 1: /* a call about the patient */
        put(b, ONE(b, "Call from ", "Rec'd call from ", "rec'd call from ", "Message from ", "VM from ", "Phone call from ",
                   "Spoke w/ "));
        msg_caller(b);
        put(b, ONE(b, " re ", " re: ", " RE ", " regarding "));
        msg_patient(b);
        put(b, ONE(b, ", ", ": ", " - ", ", "));
        put(b, ONE(b, "asks whether home meds resume at d/c. ", "reports poor appetite x3 days. ", "slipped in bathroom, denies head strike. ",
                   "asking when family mtg is. ", "low grade temp at home, productive cough. ", "worried about new confusion. ",
                   "needs refill of inhalers. ", "wants update on plan. ", "BS running 300s at home. "));
        put(b, ONE(b, "CB ", "cb ", "Call back ", "callback # "));
        phi(b, DEID_PHONE, c->phone);
        put(b, "\n");
        break;
    case 2: /* who reviewed or gave an order: an initial or a given name */
        put(b, ONE(b, "Reviewed w/ ", "reviewed with ", "D/w ", "Per ", "per ", "Discussed w/ "));
        if (p && chance(b, 60)) phif(b, DEID_NAME, "%c", p->given[0]);
        else if (p) phi(b, DEID_NAME, chance(b, 50) ? p->given : p->family);
        else put(b, "team");
        put(b, ONE(b, ", ok to give extra torsemide dose today.\n", " (eve RN) pt restless most of night.\n",
                   ", hold coumadin tonight.\n", " bolus LR 250cc then reassess.\n", "; recheck lytes in AM.\n"));
        break;
    case 3: /* the disposition facility */
        put(b, ONE(b, "Disposition: rehab - ", "Dispo: SNF - ", "D/C to rehab: ", "DISPOSITION: REHAB - ", "Dispo: ",
                   "Family unhappy w/ ", "Rehab screen: "));
        phi(b, DEID_LOCATION, c->facility);
        put(b, ONE(b, "\n", " and would prefer a different facility.\n", " can accept Monday.\n", ", awaiting auth.\n",
                   " reviewing referral.\n"));
        break;
    case 4: /* history with years */
        put(b, ONE(b, "Ex-smoker 25 pack-yrs, quit ", "SH: tob x30 yrs, quit ", "PSH: L THA ", "s/p CABG ", "DM2 dx'd ",
                   "Retired teacher, quit etoh ", "widowed ", "PSH: appy, lap chole "));
        msg_year(b, 1965, 55);
        put(b, ONE(b, ".\n", "\n", ". Lives alone.\n"));
        break;
    case 5: /* a request with a service and a ward */
        put(b, ONE(b, "Requesting: Dr ", "Requesting: ", "Referring: Dr. ", "Consult requested by "));
        if (p) phif(b, DEID_NAME, "%s %s", p->given, p->family);
        put(b, ONE(b, ", MICU, ", ", ortho, ", ", cardiology, ", ", gen surg, ", " (medicine), "));
        ward_ref(b);
        put(b, "\n");
        break;
    case 6: /* sign-offs */
        if (!p) break;
        switch (pick(b, 6)) {
        case 0: put(b, "- "); phif(b, DEID_NAME, "%c%c", p->given[0], p->family[0]); put(b, ONE(b, " RRT pgr ", " RN pgr ", " RT x"));
            phi(b, DEID_PHONE, c->pager); put(b, "\n"); break;
        case 1: put(b, ONE(b, "Radiologist: ", "Attending: ", "Signed: ", "Dictated by: ")); phif(b, DEID_NAME, "%s %s", p->given, p->family);
            put(b, ONE(b, " / Dr. ", "\n", ", MD\n")); if (b->t.len && b->t.p[b->t.len - 1] != '\n') { phif(b, DEID_NAME, "%c. %s", c->clinician[0].given[0], c->clinician[0].family); put(b, "\n"); } break;
        case 2: snprintf(tmp, sizeof tmp, "%c%s", p->given[0], p->family); for (char *q = tmp; *q; q++) if (*q >= 'A' && *q <= 'Z') *q = (char)(*q + 32);
            put(b, "/"); phi(b, DEID_NAME, tmp); put(b, "/\n"); break;
        case 3: phif(b, DEID_NAME, "%s %s", p->given, p->family); put(b, ONE(b, ", RN\n", ", LICSW\n", " RN\n", ", PharmD\n")); break;
        case 4: phif(b, DEID_NAME, "%c. %s", p->given[0], p->family); put(b, ONE(b, " RN\n", " RRT\n", ", NP\n")); break;
        default: put(b, "D: "); date_ref(b, 1, 1); put(b, " T: "); date_ref(b, 2, 1); put(b, " ");
            phif(b, DEID_NAME, "%c%c", p->given[0], p->family[0]); put(b, "/"); phif(b, DEID_NAME, "%c%c", 'a' + pick(b, 26), 'a' + pick(b, 26)); put(b, "\n"); break;
        }
        break;
    case 7: /* a name opening the note, with no cue */
        phi(b, DEID_NAME, c->nickname[0] ? c->nickname : c->patient.given);
        put(b, ONE(b, " drowsy but arousable, oriented to self only\n", " slept in naps, denies pain overnight.\n", " up w/ PT to hallway, steady gait.\n"));
        break;
    default: /* traps of the same shapes, no PHI */
        put(b, ONE(b, "Call from pharmacy re coumadin dosing, ok per MD.\n", "rec'd call from lab re: K 5.9, repeat sent.\n",
                   "Message from VNA re dressing supplies, will fax order.\n", "Former smoker, quit 2 yrs ago.\n",
                   "Dispo: home w/ VNA.\n", "Disposition: rehab - bed offer pending.\n", "Reviewed w/ team, ok to continue.\n",
                   "D/w PT and OT, will reassess.\n", "Requesting: cardiology, re new afib.\n", "per MD, hold 2100 dose.\n",
                   "drawn 2/3 of bag before line clotted.\n", "Pain 3/10 0800, 5/10 by noon.\n", "Model: X2-DR, SN on device card.\n",
                   "Call from son re visiting hours, info given.\n", "rehab - pt declined.\n", "- pt aware of plan.\n",
                   "PSH: TKR R, CCY, appy.\n", "Dispo: SNF - awaiting bed.\n", "Radiologist: see final report.\n"));
        break;
    }
}

static void message_note(nb *b) {
    put(b, ONE(b, "Tel call ", "Phone note ", "TELEPHONE ENCOUNTER ", "Message ", "Case mgmt note "));
    date_ref(b, pick(b, 5), 0);
    put(b, "\n");
    int n = 3 + pick(b, 4);
    for (int k = 0; k < n; k++) message_line(b);
    if (chance(b, 50)) signature(b);
}

/* Round 13: a nursing note written as short unlabelled lines, a finding or an action a line, no
 * section label, no sentence end; identifiers in the line forms such notes use (a relative by
 * given name with or without the kinship word, a clinician bare, with a role after the name or a
 * title before it, dates with no year, pagers, wards with a floor, hospitals whole or by their
 * initials), beside lines of the same shape with no PHI ("MD aware", "family updated", "OSH
 * records requested"). Held apart: deid-train never writes it (the list-note feature weighs such
 * a note as a list; this kind measures what that costs). Every phrase written for clinfm. */
static void shortline_note(nb *b) {
    static const char *CLIN[] = {
        "turned and repositioned q2h", "lungs coarse bilat, diminished at bases", "sx for mod amt thick tan secretions",
        "u/o 30-50cc/hr via foley", "foley draining clear yellow urine", "afebrile", "tmax 100.2 po", "skin intact, heels floated",
        "MAE, follows simple commands", "pupils equal and reactive", "sedated on propofol, RASS -2", "fentanyl gtt at 50 mcg/hr",
        "levo weaned to 0.04", "NEO off since 0400", "MAP 65-80 on levo", "SBP 100s-120s", "HR 80s SR, no ectopy", "afib 110s, dilt gtt started",
        "PS 10/5, FiO2 40%", "ABG 7.38/42/88", "CXR done, ETT in place", "abd soft, +BS", "tolerating TF at goal 60cc/hr",
        "NPO after MN for procedure", "K 3.4, repleted w/ 40 meq KCL", "Mg 1.7, 2 gm given", "BS 180, 4u RISS given",
        "IVF NS at 75/hr", "pain 3/10 after morphine 2mg", "OOB to chair x1 hr, tolerated well", "ambulated in hall w/ PT",
        "dsg to R groin dry and intact", "L radial a-line, good waveform", "R IJ TLC, site clean", "PIV x2 patent",
        "BM x1, guiac neg", "rectal tube draining liquid stool", "c/o nausea, zofran given w/ effect", "lasix 40 IV given, diuresed 800cc",
        "cont to monitor", "will cont plan of care", "safety maintained, bed alarm on", "restraints d/c'd", "oral care done",
        "CVP 8-12", "UO picked up after bolus", "1L LR bolus for MAP 58", "coags sent, INR 1.4", "blood cx x2 sent",
        "vanc trough due at 2100", "free water flushes 200cc q4h", "agitated overnight, haldol 2mg given", "slept most of shift"};
    static const char *TRAP[] = {"MD aware", "family updated", "family at bedside", "RN and MD aware", "team aware of BP",
                                 "wife and son visited", "OSH records requested", "resident notified", "covering MD paged",
                                 "plan d/w team", "report given to oncoming RN", "case mgmt to see in am", "SW consult placed",
                                 "no calls from family overnight", "transfer to floor when bed available", "awaiting bed on step down"};
    int n = 8 + pick(b, 13);
    if (chance(b, 40)) {
        putf(b, "%s ", ONE(b, "nsg", "NPN", "nursing", "Nsg note", "npn"));
        putf(b, "%s\n", ONE(b, "0700-1900", "7p-7a", "1900-0700", "7a-7p", "days", "nights"));
    }
    for (int k = 0; k < n; k++) {
        if (chance(b, 15)) putf(b, "%02d%s ", pick(b, 24), ONE(b, "00", "15", "30", "45"));
        int r = pick(b, 100);
        if (r < 50) put(b, CLIN[pick(b, (int)(sizeof CLIN / sizeof *CLIN))]);
        else if (r < 60) put(b, TRAP[pick(b, (int)(sizeof TRAP / sizeof *TRAP))]);
        else if (r < 68) { /* a relative */
            int i = rel_i(b);
            if (i < 0) { put(b, "family called"); }
            else switch (pick(b, 5)) {
            case 0: putf(b, "%s ", kin_word(b, b->c->relation[i])); rel_loose(b, i); put(b, ONE(b, " at bedside", " in to visit", " called for update", " updated by phone")); break;
            case 1: rel_loose(b, i); put(b, ONE(b, " called x2, updated", " here most of shift", " aware of plan", " visiting, very supportive")); break;
            case 2: put(b, ONE(b, "spoke w/ ", "updated ", "call from ", "left msg for ")); relative_ref(b, i); put(b, ONE(b, "", " re plan", " re DNR")); break;
            case 3: put(b, ONE(b, "son, ", "dtr, ", "wife, ")); rel_loose(b, i); put(b, ", in and updated"); break;
            default: rel_loose(b, i); put(b, " ("); put(b, kin_word(b, b->c->relation[i])); put(b, ") "); phone_loose(b); break;
            }
        } else if (r < 78) { /* a clinician */
            switch (pick(b, 6)) {
            case 0: hcp_loose(b); put(b, ONE(b, " aware", " notified", " in to see pt", " at bedside")); break;
            case 1: put(b, ONE(b, "per ", "d/w ", "paged ", "called ")); hcp_loose(b); put(b, ONE(b, "", " re BP", " re K", " re u/o")); break;
            case 2: clinician_ref(b, 1); put(b, ONE(b, " aware", " in to see pt", " notified, no new orders")); break;
            case 3: put(b, ONE(b, "report to ", "care to ", "handed off to ")); hcp_loose(b); put(b, ONE(b, " RN", "", " RN 1900")); break;
            case 4: hcp_loose(b); put(b, ONE(b, " RN covering", " NP covering", " RT in", " PT eval done")); break;
            default: put(b, ONE(b, "covering MD ", "NP ", "H.O. ")); hcp_loose(b); put(b, " "); phone_loose(b); break;
            }
        } else if (r < 88) { /* a date */
            switch (pick(b, 4)) {
            case 0: put(b, ONE(b, "CXR ", "echo ", "CT head ", "last BM ", "line placed ", "abx started ")); date_loose(b, -pick(b, 4)); break;
            case 1: date_loose(b, -pick(b, 3)); put(b, ONE(b, " cx neg to date", " echo EF 35%", " CT neg", " LP done")); break;
            case 2: put(b, ONE(b, "f/u ", "repeat echo ", "trach ", "PEG ")); date_loose(b, 1 + pick(b, 5)); put(b, ONE(b, "", " if stable", " per team")); break;
            default: put(b, ONE(b, "adm ", "intubated ", "extubated ")); date_ref(b, -pick(b, 5), 0); break;
            }
        } else if (r < 93) { /* a place */
            switch (pick(b, 4)) {
            case 0: put(b, ONE(b, "to ", "transfer to ", "bed on ")); ward_loose(b); put(b, ONE(b, " when bed ready", " pending", "")); break;
            case 1: put(b, ONE(b, "from ", "transferred from ", "records from ")); hosp_abbr_ref(b); break;
            case 2: put(b, ONE(b, "came from ", "tx from ", "labs from ")); hospital_ref(b, 0); break;
            default: put(b, ONE(b, "lives at ", "from ", "back to ")); facility_ref(b); break;
            }
        } else { /* a pager or a phone */
            if (chance(b, 50) && b->c->pager[0]) {
                put(b, ONE(b, "covering NP pager ", "renal fellow beeper #", "page CT surg at ", "resident pgr "));
                phi(b, DEID_PHONE, b->c->pager);
            } else {
                put(b, ONE(b, "wife's cell ", "family contact ", "dtr ", "HCP "));
                phone_loose(b);
            }
        }
        put(b, "\n");
    }
}

/* Round 13: the training counterpart of shortline_note (SYNTH_NOTE_LINES). A run-on nursing note
 * of the training kinds, then broken into lines: a full stop after a word of three letters or
 * more or a number, followed by a space, becomes a line break (the stop dropped: such notes end
 * no sentence), and a third of the commas after such a word too. Never inside a span ("R. Tanaka"
 * is one letter before its stop anyway). The text only shrinks, so every span is moved by the
 * bytes dropped before it. Draws from the note's own stream after the note is written. */
static void lines_note(nb *b) {
    nursing_runon(b);
    if (b->oom) return;
    size_t n = b->t.len, o = 0, k = 0;
    char *p = b->t.p;
    size_t *shift = malloc((n + 1) * sizeof *shift); /* new offset of every old one */
    if (!shift) {
        b->oom = 1;
        return;
    }
    /* The word before byte i is counted as the scan reads the original bytes, never looked back
     * for: bytes before i are rewritten in place (p[0..o) is the new text), so a look-back read
     * bytes already shifted left by the stops dropped so far (round 14's fix). */
    size_t wl = 0; /* letters and digits of the original text just before i */
    int last_digit = 0;
    for (size_t i = 0; i < n;) {
        while (k < b->nsp && b->sp[k].end <= i) k++;
        int in_span = k < b->nsp && b->sp[k].start <= i && i < b->sp[k].end;
        int wordy = wl >= 3 || (wl >= 1 && last_digit);
        if (!in_span && wordy && i + 1 < n && p[i + 1] == ' ' && (p[i] == '.' || (p[i] == ',' && chance(b, 33)))) {
            shift[i] = o;
            shift[i + 1] = o;
            p[o++] = '\n';
            i += 2;
            wl = 0;
            continue;
        }
        if (!in_span && wordy && p[i] == '.' && (i + 1 == n || p[i + 1] == '\n')) { /* a stop at a line's end */
            shift[i] = o;
            i++;
            wl = 0;
            continue;
        }
        unsigned char ch = (unsigned char)p[i];
        wl = isalnum(ch) ? wl + 1 : 0;
        last_digit = isdigit(ch) != 0;
        shift[i] = o;
        p[o++] = p[i++];
    }
    shift[n] = o;
    for (size_t q = 0; q < b->nsp; q++) {
        b->sp[q].start = shift[b->sp[q].start];
        b->sp[q].end = shift[b->sp[q].end];
    }
    b->t.len = o;
    p[o] = 0;
    free(shift);
}

/* Round 13: templated prose of coded findings, as an EHR writes a problem list or a social
 * history into a note: sentences of phrases, each a qualifier and one or two general nouns (or a
 * clinical word) with the terminology's semantic tag in parentheses ("part-time employment
 * (finding)", "housing insecurity (finding)", "screening for depression (procedure)"), joined by
 * commas. The word before "(" here is a common word, never a name: the training notes held that
 * shape almost only as a name before a relation ("Mary (daughter)"), and the model took template
 * words before a tag in one case. Words written for clinfm (general social-history and
 * assessment nouns; none taken from the negative material). No PHI. Written before the note's body
 * from a stream of its own (rng4), so the rest of the note is what round 12 wrote for its seed. */
static void coded_paragraph(nb *b) {
    static const char *NOUN[] = {"employment", "housing", "transport", "education", "income", "support", "stress", "exercise",
                                 "diet", "sleep", "activity", "risk", "exposure", "status", "limitation", "difficulty", "need",
                                 "access", "insecurity", "isolation", "violence", "misuse", "service", "contact", "retirement",
                                 "school", "training", "work", "occupation", "unemployment", "pension", "benefit", "insurance",
                                 "coverage", "household", "caregiver", "neighborhood", "community", "shelter", "family",
                                 "relationship", "tobacco", "smoking", "drug", "use", "history", "problem", "concern", "care",
                                 "home", "food", "water", "safety", "transportation", "literacy", "language", "finances",
                                 "debt", "military", "veteran", "prison", "detention", "migration", "refugee", "partner"};
    static const char *QUAL[] = {"full-time", "part-time", "not in", "lack of", "limited", "history of", "at risk of", "received",
                                 "higher", "reports", "high", "low", "moderate", "chronic", "recent", "social", "unhealthy",
                                 "unsafe", "reduced", "inadequate", "no", "some", "stable", "unstable", "victim of", "served in",
                                 "risk of", "level of", "medication", "dependent on", "difficulty with", "never", "former"};
    static const char *TAG[] = {"finding", "finding", "finding", "disorder", "disorder", "procedure", "situation",
                                "observable entity", "regime/therapy", "qualifier value", "social concept", "event"};
    static const char *LEAD[] = {"The patient has a history of ", "Pt has a history of ", "History includes ",
                                 "Social history: patient reports ", "Screening found ", "Assessment notes ",
                                 "Problems addressed: ", "The patient was screened for ", "Pt reports ", "Known: "};
    int ns = 1 + pick(b, 3);
    for (int s = 0; s < ns; s++) {
        put(b, LEAD[pick(b, (int)(sizeof LEAD / sizeof *LEAD))]);
        int np = 1 + pick(b, 5);
        for (int k = 0; k < np; k++) {
            if (k) put(b, k + 1 == np && chance(b, 50) ? " and " : ", ");
            if (chance(b, 60)) putf(b, "%s ", QUAL[pick(b, (int)(sizeof QUAL / sizeof *QUAL))]);
            if (chance(b, 30)) clin_word(b, 0);
            else put(b, NOUN[pick(b, (int)(sizeof NOUN / sizeof *NOUN))]);
            if (chance(b, 40)) putf(b, " %s", NOUN[pick(b, (int)(sizeof NOUN / sizeof *NOUN))]);
            putf(b, " (%s)", TAG[pick(b, (int)(sizeof TAG / sizeof *TAG))]);
        }
        put(b, chance(b, 70) ? ". " : ".\n");
    }
    put(b, "\n");
}

int synth_note_write_ex(const synth_note_context *ctx, int kind, int casing, uint64_t seed,
                        const synth_namelists *filler, synth_note *out, cf_err *err) {
    return synth_note_write_opt(ctx, kind, casing, seed, filler, 0, out, err);
}

int synth_note_write_opt(const synth_note_context *ctx, int kind, int casing, uint64_t seed,
                         const synth_namelists *filler, int opts, synth_note *out, cf_err *err) {
    memset(out, 0, sizeof *out);
    if (!ctx || kind < 0 || kind >= SYNTH_NOTE_KINDS || casing < 0 || casing > SYNTH_CASE_LOWER)
        return cf_fail(err, CF_EINPUT, "synth_note_write: unknown note kind or casing");
    nb b;
    memset(&b, 0, sizeof b);
    b.rng = seed * 0x9E3779B97F4A7C15ULL + 0x632BE59BD9B4E019ULL;
    if (!b.rng) b.rng = 1;
    b.rng2 = seed * 0xC2B2AE3D27D4EB4FULL + 0x165667B19E3779F9ULL;
    if (!b.rng2) b.rng2 = 1;
    b.rng3 = seed * 0xD6E8FEB86659FD93ULL + 0x2545F4914F6CDD1DULL;
    if (!b.rng3) b.rng3 = 1;
    b.rng4 = seed * 0x9FB21C651E98DF25ULL + 0x7F4A7C159E3779B9ULL;
    if (!b.rng4) b.rng4 = 1;
    b.rng6 = seed * 0x94D049BB133111EBULL + 0xD6E8FEB86659FD93ULL;
    if (!b.rng6) b.rng6 = 1;
    b.opts = opts;
    for (int k = 0; k < 4; k++) rnd(&b);
    b.c = ctx;
    b.filler = filler;
    b.kind = kind;
    if ((opts & SYNTH_NOTE_OPT_CODED) && (kind == SYNTH_NOTE_PROGRESS || kind == SYNTH_NOTE_DISCHARGE || kind == SYNTH_NOTE_SOCIAL ||
         kind == SYNTH_NOTE_THERAPY || kind == SYNTH_NOTE_DICTATED)) {
        uint64_t main_rng = b.rng;
        b.rng = b.rng4;
        if (chance(&b, 50)) coded_paragraph(&b);
        b.rng = main_rng;
    }
    if (opts & SYNTH_NOTE_OPT_CONTRAST) contrast_note(&b);
    else switch (kind) {
    case SYNTH_NOTE_NURSING: nursing_sections(&b); break;
    case SYNTH_NOTE_NURSING_RUNON: nursing_runon(&b); break;
    case SYNTH_NOTE_PROGRESS: progress_note(&b); break;
    case SYNTH_NOTE_DISCHARGE: discharge_summary(&b); break;
    case SYNTH_NOTE_DAR: dar_note(&b); break;
    case SYNTH_NOTE_SOCIAL: social_note(&b); break;
    case SYNTH_NOTE_RESP: resp_note(&b); break;
    case SYNTH_NOTE_REPORT: report_note(&b); break;
    case SYNTH_NOTE_TRANSFER: transfer_note(&b); break;
    case SYNTH_NOTE_LIST: list_note(&b); break;
    case SYNTH_NOTE_ED: ed_note(&b); break;
    case SYNTH_NOTE_DICTATED: dictated_note(&b); break;
    case SYNTH_NOTE_THERAPY: therapy_note(&b); break;
    case SYNTH_NOTE_MESSAGE: message_note(&b); break;
    case SYNTH_NOTE_SHORTLINE: shortline_note(&b); break;
    case SYNTH_NOTE_LINES: lines_note(&b); break;
    default: event_note(&b); break;
    }
    put(&b, "");
    if (b.oom) {
        free(b.t.p);
        free(b.sp);
        return cf_fail(err, CF_EINTERNAL, "out of memory writing a note");
    }
    if (casing != SYNTH_CASE_MIXED)
        for (size_t i = 0; i < b.t.len; i++) {
            char ch = b.t.p[i];
            if (casing == SYNTH_CASE_UPPER && ch >= 'a' && ch <= 'z') b.t.p[i] = (char)(ch - 32);
            if (casing == SYNTH_CASE_LOWER && ch >= 'A' && ch <= 'Z') b.t.p[i] = (char)(ch + 32);
        }
    out->text = b.t.p;
    out->len = b.t.len;
    out->spans = b.sp;
    out->n_spans = b.nsp;
    return CF_OK;
}

void synth_note_free(synth_note *n) {
    if (!n) return;
    free(n->text);
    free(n->spans);
    memset(n, 0, sizeof *n);
}

/* ---- name lists and random contexts ------------------------------------------------------ */

static void wl_free(wlist *w) {
    for (size_t i = 0; i < w->n; i++) free(w->v[i]);
    free(w->v);
}

/* Reads one entry per line ('#' comments), keeping single words of ASCII letters (and places of
 * up to three such words), 2 to 20 bytes. */
/* Appends a copy of word to w. */
static int wl_push(wlist *w, const char *word, cf_err *err) {
    if (w->n == w->cap) {
        size_t nc = w->cap ? w->cap * 2 : 4096;
        char **nv = realloc(w->v, nc * sizeof *nv);
        if (!nv) return cf_fail(err, CF_EINTERNAL, "out of memory");
        w->v = nv;
        w->cap = nc;
    }
    if (!(w->v[w->n] = strdup(word))) return cf_fail(err, CF_EINTERNAL, "out of memory");
    w->n++;
    return CF_OK;
}

static int wl_load(wlist *w, const char *path, int multi, cf_err *err) {
    FILE *f = fopen(path, "r");
    if (!f) return cf_fail_errno(err, CF_EINPUT, "%s: cannot open name list", path);
    char line[256];
    while (fgets(line, sizeof line, f)) {
        size_t n = strcspn(line, "\r\n");
        line[n] = 0;
        if (!n || line[0] == '#' || n > 20 || n < 2) continue;
        int ok = 1, spaces = 0;
        for (size_t i = 0; i < n && ok; i++) {
            if (line[i] == ' ') spaces++;
            else if (!(line[i] >= 'a' && line[i] <= 'z')) ok = 0;
        }
        if (!ok || spaces > (multi ? 2 : 0)) continue;
        int rc = wl_push(w, line, err);
        if (rc) {
            fclose(f);
            return rc;
        }
    }
    fclose(f);
    if (!w->n) return cf_fail(err, CF_EINPUT, "%s: no usable names", path);
    return CF_OK;
}

int synth_namelists_load(synth_namelists **out, const char *rules_dir, int which, cf_err *err) {
    *out = NULL;
    synth_namelists *nl = calloc(1, sizeof *nl);
    if (!nl) return cf_fail(err, CF_EINTERNAL, "out of memory");
    char p[4096];
    const char *sub = which == SYNTH_NAMES_HELDOUT ? "/heldout" : "";
    /* the name lists, required; places may have up to three words */
    wlist *const lists[] = {&nl->first, &nl->last, &nl->place};
    static const char *const files[] = {"first_names.txt", "last_names.txt", "places.txt"};
    int rc = CF_OK;
    for (int i = 0; i < 3 && !rc; i++) {
        snprintf(p, sizeof p, "%s%s/%s", rules_dir, sub, files[i]);
        rc = wl_load(lists[i], p, lists[i] == &nl->place, err);
    }
    if (!rc) {
        /* filler vocabulary: optional (a rules folder without it gives made-up drug names) */
        cf_err e2 = {0};
        snprintf(p, sizeof p, "%s/medical_words.txt", rules_dir);
        (void)wl_load(&nl->med, p, 0, &e2);
        snprintf(p, sizeof p, "%s/clinical_keep.txt", rules_dir);
        (void)wl_load(&nl->med, p, 0, &e2);
    }
    if (rc) synth_namelists_free(nl);
    else *out = nl;
    return rc;
}

void synth_namelists_free(synth_namelists *nl) {
    if (!nl) return;
    wlist *const all[] = {&nl->first, &nl->last, &nl->place, &nl->med, &nl->contrast};
    for (int i = 0; i < 5; i++) wl_free(all[i]);
    free(nl);
}

/* Title case: "new york" -> "New York" */
static void titled(char *dst, const char *src, size_t cap) {
    size_t i = 0;
    int start = 1;
    for (; src[i] && i + 1 < cap; i++) {
        char ch = src[i];
        dst[i] = start && ch >= 'a' && ch <= 'z' ? (char)(ch - 32) : ch;
        start = ch == ' ' || ch == '-';
    }
    dst[i] = 0;
}

static const char *pickw(nb *b, const wlist *w) { return w->v[pick(b, (int)w->n)]; }

static void person(nb *b, const synth_namelists *nl, synth_person *p, char sex) {
    /* family names that are also common words ("Quill", "Baker", "Rose") are common in real
       notes and in no name list */
    static const char *WORDY[] = {"Quill", "Baker", "Rose", "Hill", "Steel", "Wolf", "Frost", "Gold", "Marsh", "Bird",
                                  "Storm", "Glass", "Cross", "Moss", "Lamb", "Park", "Bell", "Hope", "Love", "Fox",
                                  "Crane", "Stone", "Wood", "Field", "Winter", "Summer", "Hunter", "Fisher", "Church", "Banks"};
    if (chance(b, 12)) snprintf(p->given, sizeof p->given, "%s", WORD_GIVEN[pick(b, (int)N_WORD_GIVEN)]);
    else if (chance(b, 4)) { /* hyphenated given names: "Mary-Kate", "Sung-Min" */
        char w1[24], w2[24];
        titled(w1, pickw(b, &nl->first), sizeof w1);
        titled(w2, pickw(b, &nl->first), sizeof w2);
        snprintf(p->given, sizeof p->given, "%s-%s", w1, w2);
    } else titled(p->given, pickw(b, &nl->first), sizeof p->given);
    if (chance(b, 10)) snprintf(p->family, sizeof p->family, "%s", WORDY[pick(b, 30)]);
    else titled(p->family, pickw(b, &nl->last), sizeof p->family);
    p->sex = sex ? sex : (chance(b, 50) ? 'F' : 'M');
}

void synth_context_random(const synth_namelists *nl, uint64_t seed, synth_note_context *c) {
    memset(c, 0, sizeof *c);
    nb b;
    memset(&b, 0, sizeof b);
    b.rng = seed * 0xD1B54A32D192ED03ULL + 0x8CB92BA72F3D8DD7ULL;
    if (!b.rng) b.rng = 1;
    for (int k = 0; k < 4; k++) rnd(&b);
    person(&b, nl, &c->patient, 0);
    static const char *REL[] = {"son", "wife", "daughter", "husband", "brother", "sister", "HCP", "niece", "dtr", "friend"};
    c->n_relatives = 1 + pick(&b, SYNTH_MAX_RELATIVES);
    for (int i = 0; i < c->n_relatives; i++) {
        person(&b, nl, &c->relative[i], 0);
        if (chance(&b, 60)) snprintf(c->relative[i].family, sizeof c->relative[i].family, "%s", c->patient.family);
        snprintf(c->relation[i], sizeof c->relation[i], "%s", REL[pick(&b, 10)]);
    }
    static const char *ROLE[] = {"MD", "RN", "NP", "MD", "RN", "PA", "RT"};
    c->n_clinicians = 2 + pick(&b, SYNTH_MAX_CLINICIANS - 1);
    for (int i = 0; i < c->n_clinicians; i++) {
        person(&b, nl, &c->clinician[i], 0);
        snprintf(c->role[i], sizeof c->role[i], "%s", ROLE[pick(&b, 7)]);
    }
    c->age = chance(&b, 12) ? 90 + pick(&b, 12) : 25 + pick(&b, 65);
    c->adm_year = 1995 + pick(&b, 36);
    c->adm_month = 1 + pick(&b, 12);
    c->adm_day = 1 + pick(&b, 28);
    c->day_of_stay = pick(&b, 12);
    /* hospitals: a place, a person, or common words ("Green Valley General") */
    char w1[24], w2[24]; /* list entries are at most 20 bytes */
    static const char *COMMON[] = {"Green", "Oak", "Maple", "River", "Lake", "Cedar", "Pine", "Bay", "Hill", "Spring", "Fair", "Summit", "Grand", "North Shore", "Mercy", "Good Samaritan", "Holy Cross", "Sacred Heart"};
    static const char *MID[] = {"Valley", "Ridge", "View", "Park", "Brook", "Haven", "Crest", "Wood", "Field", "Side"};
    static const char *SUF[] = {"General Hospital", "Memorial Hospital", "Medical Center", "Regional Medical Center", "Community Hospital", "Hospital", "General", "Health Center"};
    for (int h = 0; h < 2; h++) {
        char *dst = h == 0 ? c->hospital : c->other_hospital;
        switch (pick(&b, 4)) {
        case 0: titled(w1, pickw(&b, &nl->place), sizeof w1); snprintf(dst, SYNTH_FIELD, "%s %s", w1, SUF[pick(&b, 8)]); break;
        case 1: titled(w1, pickw(&b, &nl->last), sizeof w1); snprintf(dst, SYNTH_FIELD, "%s %s", w1, SUF[pick(&b, 8)]); break;
        case 2: snprintf(dst, SYNTH_FIELD, "%s %s %s", COMMON[pick(&b, 18)], MID[pick(&b, 10)], SUF[pick(&b, 8)]); break;
        default: titled(w2, pickw(&b, &nl->first), sizeof w2); snprintf(dst, SYNTH_FIELD, "St. %s's %s", w2, chance(&b, 50) ? "Hospital" : "Medical Center"); break;
        }
    }
    /* the abbreviation: initials of the capitalised words ("GVGH"), 2-4 letters */
    size_t al = 0;
    for (size_t i = 0; c->hospital[i] && al < 4; i++)
        if (c->hospital[i] >= 'A' && c->hospital[i] <= 'Z' && (i == 0 || c->hospital[i - 1] == ' ')) c->hospital_abbr[al++] = c->hospital[i];
    c->hospital_abbr[al] = 0;
    if (al < 2) c->hospital_abbr[0] = 0;
    static const char *DIR[] = {"West", "East", "North", "South"};
    if (chance(&b, 60)) {
        titled(w1, pickw(&b, &nl->last), sizeof w1);
        snprintf(c->ward, sizeof c->ward, "%s %d", w1, 2 + pick(&b, 10));
    } else {
        snprintf(c->ward, sizeof c->ward, "%s %d", DIR[pick(&b, 4)], 2 + pick(&b, 10));
    }
    static const char *ST[] = {"Street", "St", "Avenue", "Ave", "Road", "Rd", "Lane", "Drive", "Way", "Court", "Ct", "Pl", "Place", "Cir", "Ter", "Blvd", "Pkwy", "Hwy"};
    /* street names: a family name, or common words ("Old Mill", "Hillside") */
    static const char *STW[] = {"Old Mill", "Hillside", "Elm", "Pleasant", "High", "Cedar Ridge", "Spring", "Harbor", "Orchard", "Park",
                                "Church", "Water", "Old Farm", "Forest", "Sunset", "Meadow Brook", "Prospect", "Union", "Mill Pond", "Bay View"};
    if (chance(&b, 40)) snprintf(w1, sizeof w1, "%s", STW[pick(&b, 20)]);
    else titled(w1, pickw(&b, &nl->last), sizeof w1);
    snprintf(c->street, sizeof c->street, "%d %s %s%s", 1 + pick(&b, 9999), w1, ST[pick(&b, 18)], ONE(&b, "", "", "", " Apt 2", " #4B", " Unit 12", " apt 3C"));
    titled(c->city, pickw(&b, &nl->place), sizeof c->city);
    static const char *STATES[] = {"MA", "NH", "NY", "CA", "TX", "OH", "FL", "IL", "WA", "PA"};
    snprintf(c->state, sizeof c->state, "%s", STATES[pick(&b, 10)]);
    snprintf(c->zip, sizeof c->zip, "%05d", 1000 + pick(&b, 98000));
    snprintf(c->phone, sizeof c->phone, "(%d) %03d-%04d", 200 + pick(&b, 799), 200 + pick(&b, 799), pick(&b, 10000));
    snprintf(c->pager, sizeof c->pager, "%05d", 10000 + pick(&b, 89999));
    snprintf(c->mrn, sizeof c->mrn, "%07d", 1000000 + pick(&b, 8999999));
    if (chance(&b, 30)) snprintf(c->nickname, sizeof c->nickname, "%s", WORD_GIVEN[pick(&b, (int)N_WORD_GIVEN)]);
    else snprintf(c->nickname, sizeof c->nickname, "%.4s", c->patient.given);
    facility_name(&b, nl, c->facility, sizeof c->facility);
}

/* ---- corpora ----------------------------------------------------------------------------- */

/* Moves a written note into the corpus as its next document (its text and spans taken over). */
static int corpus_add_note(deid_corpus *c, synth_note *pnote, uint64_t s, cf_err *err) {
    synth_note note = *pnote;
    deid_doc *d = &c->docs[c->n_docs++];
    d->text = note.text;
    d->len = note.len;
    snprintf(d->id, sizeof d->id, "synth-%llu", (unsigned long long)s);
    d->gold = calloc(note.n_spans ? note.n_spans : 1, sizeof *d->gold);
    if (!d->gold) {
        synth_note_free(&note);
        d->text = NULL;
        return cf_fail(err, CF_EINTERNAL, "out of memory");
    }
    for (size_t k = 0; k < note.n_spans; k++) {
        deid_gold *g = &d->gold[k];
        g->start = note.spans[k].start;
        g->end = note.spans[k].end;
        g->type = note.spans[k].type;
        g->in_scope = 1;
        g->date_element = g->type == DEID_DATE ? deid_date_element(note.text + g->start, g->end - g->start) : -1;
        snprintf(g->label, sizeof g->label, "%s", deid_type_name(g->type));
    }
    d->n_gold = note.n_spans;
    c->n_gold += note.n_spans;
    c->n_in_scope += note.n_spans;
    free(note.spans);
    return CF_OK;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Round 26: the words of the keep lists (clinical_keep.txt, clinical_words.txt) and the English
 * list (english_words.txt) that are also single-word entries of the name or place lists, sorted
 * and unique: computed from the lists, never picked by hand, so no evaluation half steers it. */
/* Round 27 (no_given): words of the given-name list are left out, so no trap is a given name the
 * model must learn to take on the same one-line shape. */
static int contrast_pool(synth_namelists *nl, const char *rules_dir, int no_given, cf_err *err) {
    size_t nn = 0;
    const wlist *names[] = {&nl->first, &nl->last, &nl->place};
    for (int i = 0; i < 3; i++) nn += names[i]->n;
    char **all = malloc((nn ? nn : 1) * sizeof *all);
    if (!all) return cf_fail(err, CF_EINTERNAL, "out of memory");
    nn = 0;
    for (int i = 0; i < 3; i++)
        for (size_t k = 0; k < names[i]->n; k++)
            if (!strchr(names[i]->v[k], ' ')) all[nn++] = names[i]->v[k];
    qsort(all, nn, sizeof *all, cmp_str);
    char **given = NULL;
    if (no_given && nl->first.n) {
        given = malloc(nl->first.n * sizeof *given);
        if (!given) {
            free(all);
            return cf_fail(err, CF_EINTERNAL, "out of memory");
        }
        memcpy(given, nl->first.v, nl->first.n * sizeof *given);
        qsort(given, nl->first.n, sizeof *given, cmp_str);
    }
    wlist keep = {0};
    static const char *const files[] = {"clinical_keep.txt", "clinical_words.txt", "english_words.txt"};
    char p[4096];
    int rc = CF_OK;
    for (int i = 0; i < 3 && !rc; i++) {
        snprintf(p, sizeof p, "%s/%s", rules_dir, files[i]);
        rc = wl_load(&keep, p, 0, err);
    }
    if (!rc) qsort(keep.v, keep.n, sizeof *keep.v, cmp_str);
    for (size_t k = 0; k < keep.n && !rc; k++) {
        if (k && !strcmp(keep.v[k], keep.v[k - 1])) continue;
        if (!bsearch(&keep.v[k], all, nn, sizeof *all, cmp_str)) continue;
        if (given && bsearch(&keep.v[k], given, nl->first.n, sizeof *given, cmp_str)) continue;
        rc = wl_push(&nl->contrast, keep.v[k], err);
    }
    wl_free(&keep);
    free(given);
    free(all);
    if (!rc && !nl->contrast.n) rc = cf_fail(err, CF_EINPUT, "%s: no keep-list word is also a name or place", rules_dir);
    return rc;
}

int synth_notes_generate_ex(synth_notes *out, const char *rules_dir, int which, int style, size_t n,
                            uint64_t seed, cf_err *err) {
    memset(out, 0, sizeof *out);
    synth_namelists *nl = NULL;
    int rc = synth_namelists_load(&nl, rules_dir, which, err);
    if (rc) return rc;
    deid_corpus *c = &out->corpus;
    c->layout = DEID_LAYOUT_INLINE;
    /* round 26: one one-line contrast note for every eight, after the n notes (contrast_note);
       round 28: one for every sixteen with SYNTH_GEN_CONTRAST_THIN */
    size_t n_contrast = (style & SYNTH_GEN_CONTRAST_LINES) ? n / ((style & SYNTH_GEN_CONTRAST_THIN) ? 16 : 8) : 0;
    c->docs = calloc(n + n_contrast ? n + n_contrast : 1, sizeof *c->docs);
    if (!c->docs) {
        synth_namelists_free(nl);
        return cf_fail(err, CF_EINTERNAL, "out of memory");
    }
    for (size_t i = 0; i < n && !rc; i++) {
        synth_note_context ctx;
        uint64_t s = seed * 1000003ULL + i;
        synth_context_random(nl, s, &ctx);
        int kind = (style & SYNTH_GEN_LINES_STYLE)      ? SYNTH_NOTE_LINES
                   : (style & SYNTH_GEN_SHORTLINE_STYLE) ? SYNTH_NOTE_SHORTLINE
                   : (style & SYNTH_GEN_MESSAGE_STYLE) ? SYNTH_NOTE_MESSAGE
                   : (style & SYNTH_GEN_HELDOUT_STYLE) ? SYNTH_NOTE_EVENT
                                                       : (int)(i % SYNTH_NOTE_EVENT);
        /* every casing, mixed most often (half the notes), upper and lower a quarter each; or
           upper and lower a half each */
        size_t blk = i / SYNTH_NOTE_EVENT;
        int casing = (style & SYNTH_GEN_SHORTLINE_STYLE) ? SYNTH_CASE_MIXED
                     : (style & SYNTH_GEN_ONE_CASE) ? (blk % 2 == 0 ? SYNTH_CASE_UPPER : SYNTH_CASE_LOWER)
                     : blk % 4 < 2                ? SYNTH_CASE_MIXED
                     : blk % 4 == 2               ? SYNTH_CASE_UPPER
                                                  : SYNTH_CASE_LOWER;
        synth_note note;
        rc = synth_note_write_opt(&ctx, kind, casing, s, nl, ((style & SYNTH_GEN_CODED) ? SYNTH_NOTE_OPT_CODED : 0) |
                                                                  ((style & SYNTH_GEN_NAME_LINES) ? SYNTH_NOTE_OPT_NAME_LINES : 0),
                                  &note, err);
        if (rc) break;
        rc = corpus_add_note(c, &note, s, err);
    }
    if (!rc && n_contrast) rc = contrast_pool(nl, rules_dir, !!(style & SYNTH_GEN_CONTRAST_NAMES), err);
    for (size_t j = 0; j < n_contrast && !rc; j++) {
        /* a seed stream of their own: the n notes above are written as without the option */
        synth_note_context ctx;
        uint64_t s = (seed ^ 0x5DEECE66DULL) * 1000003ULL + 0x40000000ULL + j;
        synth_context_random(nl, s, &ctx);
        /* round 28: SYNTH_GEN_CONTRAST_MIXED leaves every one in mixed case (the same words) */
        int casing = (style & SYNTH_GEN_CONTRAST_MIXED) || j % 4 < 2 ? SYNTH_CASE_MIXED
                     : j % 4 == 2                                   ? SYNTH_CASE_UPPER
                                                                    : SYNTH_CASE_LOWER;
        synth_note note;
        rc = synth_note_write_opt(&ctx, SYNTH_NOTE_NURSING, casing, s, nl,
                                  SYNTH_NOTE_OPT_CONTRAST | ((style & SYNTH_GEN_CONTRAST_NAMES) ? SYNTH_NOTE_OPT_CONTRAST_NAMES : 0), &note, err);
        if (!rc) rc = corpus_add_note(c, &note, s, err);
    }
    synth_namelists_free(nl);
    if (rc) synth_notes_free(out);
    return rc;
}

void synth_notes_free(synth_notes *s) {
    if (!s) return;
    deid_corpus_free(&s->corpus);
    memset(s, 0, sizeof *s);
}

static void json_str(FILE *f, const char *s, size_t n) {
    fputc('"', f);
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '"' || ch == '\\') fprintf(f, "\\%c", ch);
        else if (ch == '\n') fputs("\\n", f);
        else if (ch == '\t') fputs("\\t", f);
        else if (ch == '\r') fputs("\\r", f);
        else if (ch < 0x20) fprintf(f, "\\u%04x", ch);
        else fputc(ch, f);
    }
    fputc('"', f);
}

/* code points in s[0..n) */
static size_t cps(const char *s, size_t n) {
    size_t k = 0;
    for (size_t i = 0; i < n; i++) k += ((unsigned char)s[i] & 0xC0) != 0x80;
    return k;
}

int synth_notes_write_presidio(FILE *f, const deid_corpus *c, cf_err *err) {
    fputs("[\n", f);
    for (size_t i = 0; i < c->n_docs; i++) {
        const deid_doc *d = &c->docs[i];
        fputs(i ? ",\n  {\"full_text\": " : "  {\"full_text\": ", f);
        json_str(f, d->text, d->len);
        fputs(", \"spans\": [", f);
        for (size_t k = 0; k < d->n_gold; k++) {
            const deid_gold *g = &d->gold[k];
            fprintf(f, "%s{\"entity_type\": \"%s\", \"start_position\": %zu, \"end_position\": %zu}", k ? ", " : "",
                    g->type >= 0 ? deid_type_name(g->type) : g->label, cps(d->text, g->start), cps(d->text, g->end));
        }
        fputs("]}", f);
    }
    fputs("\n]\n", f);
    if (ferror(f)) return cf_fail(err, CF_EINPUT, "write error");
    return CF_OK;
}

int synth_notes_write_phrase(FILE *f, const deid_corpus *c, cf_err *err) {
    fputs("Generated clinical notes (clinfm src/synth/notes.c; fictional), PHI inline as {{TYPE:phrase}}.\n", f);
    for (size_t i = 0; i < c->n_docs; i++) {
        const deid_doc *d = &c->docs[i];
        if (memmem(d->text, d->len, "{{", 2) || memmem(d->text, d->len, "}}", 2))
            return cf_fail(err, CF_EINPUT, "note %zu holds \"{{\" or \"}}\" and cannot be written inline", i);
        fprintf(f, "##RECORD %s\n", d->id[0] ? d->id : "note");
        size_t pos = 0;
        for (size_t k = 0; k < d->n_gold; k++) {
            const deid_gold *g = &d->gold[k];
            fwrite(d->text + pos, 1, g->start - pos, f);
            fprintf(f, "{{%s:", g->type >= 0 ? deid_type_name(g->type) : g->label);
            fwrite(d->text + g->start, 1, g->end - g->start, f);
            fputs("}}", f);
            pos = g->end;
        }
        fwrite(d->text + pos, 1, d->len - pos, f);
        fputc('\n', f);
    }
    if (ferror(f)) return cf_fail(err, CF_EINPUT, "write error");
    return CF_OK;
}

int synth_notes_write_physionet(FILE *text, FILE *phi, const deid_corpus *c, cf_err *err) {
    for (size_t i = 0; i < c->n_docs; i++) {
        const deid_doc *d = &c->docs[i];
        fprintf(text, "START_OF_RECORD=1||||%zu||||\n", i + 1);
        fwrite(d->text, 1, d->len, text);
        if (!d->len || d->text[d->len - 1] != '\n') fputc('\n', text);
        fputs("||||END_OF_RECORD\n", text);
        for (size_t k = 0; k < d->n_gold; k++) {
            const deid_gold *g = &d->gold[k];
            fprintf(phi, "1 %zu %zu %zu %s ", i + 1, g->start, g->end, g->type >= 0 ? deid_type_name(g->type) : g->label);
            for (size_t q = g->start; q < g->end; q++) fputc(d->text[q] == '\n' ? ' ' : d->text[q], phi);
            fputc('\n', phi);
        }
    }
    if (ferror(text) || ferror(phi)) return cf_fail(err, CF_EINPUT, "write error");
    return CF_OK;
}
