/* Replacing found PHI: typed tags ("[NAME]"), realistic surrogates, and shifted dates.
 *
 * Dates are shifted in their own format: the DATE patterns name their parts (year, month number
 * or name, day, weekday), so "03/05/2020", "2020-03-05", "March 5th, 2020" and "5 Mar 20" all move
 * by the same number of days and keep their look (zero padding, two-digit years, abbreviated or
 * capitalised month names). A weekday alone moves by shift mod 7; a year alone by the year of its
 * 2 July. Dates without a year are shifted within the leap year 2000, so "Feb 29" stays valid.
 *
 * Surrogates are chosen by a keyed hash (libsodium SipHash) of the lower-cased original word, so
 * a word gets the same surrogate everywhere under one key ("Smith" is always "Okafor"), and the
 * choice reveals nothing without the key. Names come from the name lists, places from the place
 * list; numbers keep their shape with other digits; e-mails, URLs and IPs become reserved
 * example values (example.org, 192.0.2.0/24, 2001:db8::/32). */
#include "deid/deid_int.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/sbuf.h"

/* ---- calendar (proleptic Gregorian; days since 1970-01-01) ------------------------------- */

int64_t deid_days_from_civil(int y, int m, int d) {
    int64_t yy = (int64_t)y - (m <= 2);
    int64_t era = (yy >= 0 ? yy : yy - 399) / 400;
    int64_t yoe = yy - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

void deid_civil_from_days(int64_t z, int *y, int *m, int *d) {
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t yy = yoe + era * 400;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int64_t dd = doy - (153 * mp + 2) / 5 + 1;
    int64_t mm = mp + (mp < 10 ? 3 : -9);
    *y = (int)(yy + (mm <= 2));
    *m = (int)mm;
    *d = (int)dd;
}

static int days_in_month(int y, int m) {
    static const int dm[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0)) return 29;
    return dm[m - 1];
}

/* ---- keyed choice ------------------------------------------------------------------------ */

static uint64_t keyed(const deid_redact_opts *opts, int salt, const char *s, size_t n) {
    unsigned char out[crypto_shorthash_BYTES];
    char low[512];
    size_t ll = n < sizeof low ? deid_lower(s, n, low, sizeof low) : (size_t)-1;
    /* salt separates uses (a given name and a place from the same word differ) */
    unsigned char buf[520];
    buf[0] = (unsigned char)salt;
    size_t bl = 1;
    if (ll != (size_t)-1) {
        memcpy(buf + 1, low, ll);
        bl += ll;
    } else {
        size_t m = n < sizeof buf - 1 ? n : sizeof buf - 1;
        memcpy(buf + 1, s, m);
        bl += m;
    }
    crypto_shorthash(out, buf, bl, opts->key);
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v = (v << 8) | out[i];
    return v;
}

/* Letter-case style of a word: 0 lower, 1 Capitalised, 2 UPPER. */
static int case_style(const char *s, size_t n) {
    size_t i = 0;
    int up = 0, lo = 0, first = -1;
    while (i < n) {
        uint32_t cp = deid_utf8_next(s, n, &i);
        if (deid_cp_is_upper(cp)) {
            up++;
            if (first < 0) first = 1;
        } else if (deid_cp_is_lower(cp)) {
            lo++;
            if (first < 0) first = 0;
        }
    }
    if (up && !lo && up > 1) return 2;
    return first == 1 ? 1 : 0;
}

static void add_styled(sbuf *o, const char *w, size_t n, int style) {
    char tmp[128];
    if (n >= sizeof tmp) n = sizeof tmp - 1;
    memcpy(tmp, w, n);
    for (size_t i = 0; i < n; i++) {
        if (style == 2 || (style == 1 && i == 0))
            if (tmp[i] >= 'a' && tmp[i] <= 'z') tmp[i] = (char)(tmp[i] - 32);
    }
    sbuf_put(o, tmp, n);
}

static void add_pool_word(const deid_text_rules *r, sbuf *o, const uint32_t *pool, size_t np,
                          uint64_t h, int style) {
    size_t len;
    const char *w = strmap_str(&r->words, pool[h % np], &len);
    add_styled(o, w, len, style);
}

/* Digits become other digits, letters other letters of the same case; the rest stays. */
static void shape_surrogate(sbuf *o, const deid_redact_opts *opts, const char *s, size_t n, int salt,
                            int first_digit) {
    uint64_t h = keyed(opts, salt, s, n);
    int ndig = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        h = h * 6364136223846793005ULL + 1442695040888963407ULL;
        uint32_t x = (uint32_t)(h >> 33);
        if (c >= '0' && c <= '9') {
            char d = (char)('0' + x % 10);
            if (ndig == 0 && first_digit >= 0) d = (char)('0' + first_digit);
            else if (ndig == 0 && c != '0' && d == '0') d = '1';
            ndig++;
            sbuf_put(o, &d, 1);
        } else if (c >= 'a' && c <= 'z') {
            char d = (char)('a' + x % 26);
            sbuf_put(o, &d, 1);
        } else if (c >= 'A' && c <= 'Z') {
            char d = (char)('A' + x % 26);
            sbuf_put(o, &d, 1);
        } else {
            sbuf_put(o, &c, 1);
        }
    }
}

/* Name-like surrogate: each word is replaced (given name first, family names after), initials
 * become another initial, particles and organisation/street words stay; the gaps stay. */
static void words_surrogate(const deid_text_rules *r, sbuf *o, const deid_redact_opts *opts,
                            const char *s, size_t n, int type) {
    size_t pos = 0, ws, we, last = 0;
    int nw = 0, total = 0;
    {
        size_t p2 = 0, a, b;
        while (deid_next_word(s, n, &p2, &a, &b)) total++;
    }
    char low[256];
    while (deid_next_word(s, n, &pos, &ws, &we)) {
        sbuf_put(o, s + last, ws - last);
        last = we;
        const char *w = s + ws;
        size_t wl = we - ws;
        size_t ll = wl < sizeof low ? deid_lower(w, wl, low, sizeof low) : (size_t)-1;
        deid_flags f = ll != (size_t)-1 ? deid_word_flags(r, low, ll) : 0;
        int style = case_style(w, wl);
        int has_digit = 0, letters = 0;
        for (size_t i = 0; i < wl; i++) {
            if (w[i] >= '0' && w[i] <= '9') has_digit = 1;
            else letters++;
        }
        nw++;
        if (has_digit) {
            shape_surrogate(o, opts, w, wl, type, -1);
            continue;
        }
        deid_flags keep = F_PARTICLE | F_ORG_AFTER | F_UNIT;
        if (type == DEID_ADDRESS) keep |= F_STREET | F_STATE_ABBR | F_REGION;
        if (type != DEID_NAME && (f & keep) && (style != 2 || wl <= 3 || type == DEID_ADDRESS)) {
            sbuf_put(o, w, wl);
            continue;
        }
        if (ll != (size_t)-1 && (!strcmp(low, "and") || !strcmp(low, "of") || !strcmp(low, "the"))) {
            sbuf_put(o, w, wl);
            continue;
        }
        uint64_t h = keyed(opts, type, w, wl);
        if (letters == 1) {
            char c = (char)('A' + h % 26);
            if (style == 0) c = (char)(c + 32);
            sbuf_put(o, &c, 1);
            continue;
        }
        if (type == DEID_NAME) {
            int given = (total == 1) ? ((f & F_FIRST) && !(f & F_LAST)) : (nw < total);
            if (given) add_pool_word(r, o, r->pool_first, r->n_pool_first, h, style ? style : 1);
            else add_pool_word(r, o, r->pool_last, r->n_pool_last, h, style ? style : 1);
        } else if (type == DEID_LOCATION) {
            add_pool_word(r, o, r->pool_place, r->n_pool_place, h, style ? style : 1);
        } else {
            add_pool_word(r, o, r->pool_last, r->n_pool_last, h, style ? style : 1);
        }
    }
    sbuf_put(o, s + last, n - last);
}

/* ---- dates ------------------------------------------------------------------------------- */

typedef struct {
    size_t s, e; /* effective span of the match in the text */
    PCRE2_SIZE g[6][2]; /* y, m, d, mon, wd ranges, absolute offsets; [0]=PCRE2_UNSET if absent */
} date_match;

enum { G_Y = 0, G_M, G_D, G_MON, G_WD };

static int group_range(const deid_pattern *p, PCRE2_SIZE *ov, int rc, int gnum, PCRE2_SIZE out[2]) {
    out[0] = out[1] = PCRE2_UNSET;
    if (!gnum || gnum >= rc || ov[2 * gnum] == PCRE2_UNSET) return 0;
    out[0] = ov[2 * gnum];
    out[1] = ov[2 * gnum + 1];
    (void)p;
    return 1;
}

static int is_alnum_byte(char ch) {
    unsigned char u = (unsigned char)ch;
    return (u >= '0' && u <= '9') || ((u | 0x20) >= 'a' && (u | 0x20) <= 'z') || u >= 0x80;
}

/* Finds a DATE pattern match whose span is exactly text[s, e), so that every part of the date is
 * rewritten (a match of only "Feb" inside "Feb 29" would leave the day as it was). Returns 1 when
 * found. Anchored patterns (@a_kind) are tried at each position up to s. */
static int find_date_match(const deid_text_rules *r, const char *text, size_t len, size_t s, size_t e,
                           date_match *best) {
    size_t best_len = 0;
    int found = 0;
    size_t from = s > 64 ? s - 64 : 0;
    while (from > 0 && ((unsigned char)text[from] & 0xC0) == 0x80) from--;
    for (size_t k = 0; k < r->n_pats; k++) {
        const deid_pattern *p = &r->pats[k];
        if (p->type != DEID_DATE) continue;
        pcre2_match_data *md = pcre2_match_data_create_from_pattern(p->re, NULL);
        if (!md) return found;
        size_t end_lim = e + 64 < len ? e + 64 : len;
        PCRE2_SIZE start = from;
        while (start <= s) {
            int rc = pcre2_match(p->re, (PCRE2_SPTR)text, end_lim, start, 0, md, NULL);
            if (rc < 0 && (p->anchor || p->at_numbers || p->at_alnum || p->at_dotted)) {
                /* anchored patterns start at a word start (or a "(" / "+"): skip other bytes */
                start++;
                while (start < s && !(is_alnum_byte(text[start]) && !is_alnum_byte(text[start - 1])) &&
                       text[start] != '(' && text[start] != '+')
                    start++;
                continue;
            }
            if (rc < 0) break;
            PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
            size_t ms = ov[0], me = ov[1];
            size_t es = ms, ee = me;
            if (p->g_phi && p->g_phi < rc && ov[2 * p->g_phi] != PCRE2_UNSET) {
                es = ov[2 * p->g_phi];
                ee = ov[2 * p->g_phi + 1];
            }
            if (ms > s && es > s) break;
            if (es == s && ee == e && ee - es > best_len) {
                date_match dm;
                dm.s = es;
                dm.e = ee;
                group_range(p, ov, rc, p->g_y, dm.g[G_Y]);
                group_range(p, ov, rc, p->g_m, dm.g[G_M]);
                group_range(p, ov, rc, p->g_d, dm.g[G_D]);
                group_range(p, ov, rc, p->g_mon, dm.g[G_MON]);
                group_range(p, ov, rc, p->g_wd, dm.g[G_WD]);
                if (dm.g[G_Y][0] != PCRE2_UNSET || dm.g[G_M][0] != PCRE2_UNSET ||
                    dm.g[G_MON][0] != PCRE2_UNSET || dm.g[G_WD][0] != PCRE2_UNSET) {
                    *best = dm;
                    best_len = ee - es;
                    found = 1;
                }
            }
            start = me > ms ? me : ms + 1;
            while (start < len && ((unsigned char)text[start] & 0xC0) == 0x80) start++;
        }
        pcre2_match_data_free(md);
    }
    return found;
}

static int parse_int(const char *s, size_t n, int *v) {
    if (n == 0 || n > 4) return 0;
    int x = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return 0;
        x = x * 10 + (s[i] - '0');
    }
    *v = x;
    return 1;
}

static void put_month(const deid_text_rules *r, sbuf *o, const char *orig, size_t on, int m) {
    const char *full = r->month_names[m - 1];
    size_t fl = strlen(full);
    size_t core = on;
    while (core && orig[core - 1] == '.') core--;
    char low[32];
    size_t ll = core < sizeof low ? deid_lower(orig, core, low, sizeof low) : (size_t)-1;
    int is_full = 0;
    for (int k = 0; k < 12 && ll != (size_t)-1; k++)
        if (!strcmp(low, r->month_names[k])) is_full = 1;
    size_t n = is_full ? fl : (core == 4 && m == 9 ? 4 : 3);
    if (n > fl) n = fl;
    char tmp[20];
    memcpy(tmp, full, n);
    if (n == 4 && m == 9) memcpy(tmp, "sept", 4);
    add_styled(o, tmp, n, case_style(orig, core));
    sbuf_put(o, orig + core, on - core);
}

static void put_weekday(const deid_text_rules *r, sbuf *o, const char *orig, size_t on, int wd) {
    const char *full = r->weekday_names[wd];
    char low[32];
    size_t ll = on < sizeof low ? deid_lower(orig, on, low, sizeof low) : (size_t)-1;
    int is_full = ll != (size_t)-1 && ll > 3;
    size_t n = is_full ? strlen(full) : 3;
    add_styled(o, full, n, case_style(orig, on));
}

/* Zero padding: kept when the original had it; two-digit fields of all-numeric dates
 * ("11/19/2020") are taken as padded, day numbers after a month name ("March 14") are not. */
static void put_num(sbuf *o, int v, size_t orig_len, int pad2) {
    char tmp[16];
    if (pad2) snprintf(tmp, sizeof tmp, "%02d", v);
    else snprintf(tmp, sizeof tmp, "%d", v);
    sbuf_str(o, tmp);
}

static int is_alpha_byte(char ch) { return ((unsigned char)ch | 0x20) >= 'a' && ((unsigned char)ch | 0x20) <= 'z'; }

/* "st", "nd", "rd", "th" in any case */
static int is_ordinal(const char *p) {
    char a = (char)(p[0] | 0x20), b = (char)(p[1] | 0x20);
    return (a == 's' && b == 't') || (a == 'n' && b == 'd') || (a == 'r' && b == 'd') || (a == 't' && b == 'h');
}

static const char *ordinal_suffix(int d) {
    if (d % 100 >= 11 && d % 100 <= 13) return "th";
    return d % 10 == 1 ? "st" : d % 10 == 2 ? "nd" : d % 10 == 3 ? "rd" : "th";
}

/* Writes the shifted form of the date span [s, e) or returns 0 when it cannot be parsed. */
static int shift_date(const deid_text_rules *r, sbuf *o, const char *text, size_t len, size_t s, size_t e,
                      int shift) {
    date_match dm;
    if (!find_date_match(r, text, len, s, e, &dm)) return 0;
    int y = 0, m = 0, d = 0, wd = -1, have_y = 0, have_m = 0, have_d = 0, y2 = 0;
    if (dm.g[G_Y][0] != PCRE2_UNSET) {
        size_t n = dm.g[G_Y][1] - dm.g[G_Y][0];
        if (!parse_int(text + dm.g[G_Y][0], n, &y)) return 0;
        if (n == 2) {
            y2 = 1;
            y += y <= 30 ? 2000 : 1900;
        }
        have_y = 1;
    }
    if (dm.g[G_M][0] != PCRE2_UNSET) {
        if (!parse_int(text + dm.g[G_M][0], dm.g[G_M][1] - dm.g[G_M][0], &m)) return 0;
        have_m = 1;
    } else if (dm.g[G_MON][0] != PCRE2_UNSET) {
        m = deid_month_from_name(r, text + dm.g[G_MON][0], dm.g[G_MON][1] - dm.g[G_MON][0]);
        if (!m) return 0;
        have_m = 1;
    }
    if (dm.g[G_D][0] != PCRE2_UNSET) {
        if (!parse_int(text + dm.g[G_D][0], dm.g[G_D][1] - dm.g[G_D][0], &d)) return 0;
        have_d = 1;
    }
    if (dm.g[G_WD][0] != PCRE2_UNSET) {
        wd = deid_weekday_from_name(r, text + dm.g[G_WD][0], dm.g[G_WD][1] - dm.g[G_WD][0]) - 1;
        if (wd < 0) return 0;
    }
    (void)y2;
    int ny = 0, nm = 0, nd = 0, nwd = -1;
    if (have_m) {
        int yy = have_y ? y : 2000;
        if (m < 1 || m > 12) return 0;
        int dd = have_d ? d : 15;
        if (dd < 1 || dd > days_in_month(yy, m)) return 0;
        int64_t z = deid_days_from_civil(yy, m, dd) + shift;
        deid_civil_from_days(z, &ny, &nm, &nd);
        if (!have_y) {
            /* stay in the reference year's calendar: only month and day are shown */
        }
        int64_t w = (z + 3) % 7; /* 1970-01-01 was a Thursday; 0 = Monday */
        if (w < 0) w += 7;
        nwd = (int)w;
    } else if (have_y) {
        int64_t z = deid_days_from_civil(y, 7, 2) + shift;
        int tm, td;
        deid_civil_from_days(z, &ny, &tm, &td);
    } else if (wd >= 0) {
        int64_t w = ((int64_t)wd + shift) % 7;
        if (w < 0) w += 7;
        nwd = (int)w;
    } else {
        return 0;
    }
    /* rewrite: copy the span, substituting each group in position order */
    size_t pos = s;
    for (;;) {
        int gi = -1;
        size_t gs = (size_t)-1;
        for (int k = 0; k < 5; k++)
            if (dm.g[k][0] != PCRE2_UNSET && dm.g[k][0] >= pos && dm.g[k][0] < gs) {
                gs = dm.g[k][0];
                gi = k;
            }
        if (gi < 0) break;
        sbuf_put(o, text + pos, gs - pos);
        size_t ge = dm.g[gi][1];
        const size_t gl = ge - gs;
        char tmp[16];
        switch (gi) {
        case G_Y:
            if (gl == 2) snprintf(tmp, sizeof tmp, "%02d", ny % 100);
            else snprintf(tmp, sizeof tmp, "%04d", ny);
            sbuf_str(o, tmp);
            break;
        case G_M: put_num(o, nm, gl, text[gs] == '0' || gl == 2); break;
        case G_D:
            put_num(o, nd, gl, text[gs] == '0' || (gl == 2 && dm.g[G_M][0] != PCRE2_UNSET));
            /* an ordinal suffix after the day follows the new day ("March 3rd" -> "September
               1st", not "1rd"), in the original's letter case */
            if (ge + 2 <= e && is_ordinal(text + ge) && !(ge + 2 < e && is_alpha_byte(text[ge + 2]))) {
                const char *sfx = ordinal_suffix(nd);
                char tmp2[3] = {sfx[0], sfx[1], 0};
                for (int q = 0; q < 2; q++)
                    if (text[ge + q] >= 'A' && text[ge + q] <= 'Z') tmp2[q] = (char)(tmp2[q] - 32);
                sbuf_put(o, tmp2, 2);
                ge += 2;
            }
            break;
        case G_MON: put_month(r, o, text + gs, gl, nm); break;
        case G_WD: put_weekday(r, o, text + gs, gl, nwd); break;
        default: break;
        }
        pos = ge;
    }
    sbuf_put(o, text + pos, e - pos);
    return 1;
}

/* ---- redact ------------------------------------------------------------------------------ */

static void surrogate(const deid_text_rules *r, sbuf *o, const deid_redact_opts *opts,
                      const char *text, size_t len, size_t s, size_t e, int type) {
    const char *w = text + s;
    size_t n = e - s;
    uint64_t h = keyed(opts, 100 + type, w, n);
    char tmp[96];
    switch (type) {
    case DEID_NAME:
    case DEID_LOCATION:
    case DEID_ORGANIZATION:
    case DEID_ADDRESS:
        words_surrogate(r, o, opts, w, n, type);
        return;
    case DEID_EMAIL: {
        size_t l1, l2;
        const char *f = strmap_str(&r->words, r->pool_first[h % r->n_pool_first], &l1);
        const char *l = strmap_str(&r->words, r->pool_last[(h >> 20) % r->n_pool_last], &l2);
        sbuf_put(o, f, l1);
        sbuf_str(o, ".");
        sbuf_put(o, l, l2);
        sbuf_str(o, "@example.org");
        return;
    }
    case DEID_URL:
        snprintf(tmp, sizeof tmp, "https://www.example.org/%04u", (unsigned)(h % 10000));
        sbuf_str(o, tmp);
        return;
    case DEID_IP:
        if (memchr(w, ':', n)) snprintf(tmp, sizeof tmp, "2001:db8::%x", (unsigned)(h % 0xffff) + 1);
        else snprintf(tmp, sizeof tmp, "192.0.2.%u", (unsigned)(h % 254) + 1);
        sbuf_str(o, tmp);
        return;
    case DEID_SSN:
        /* area numbers 9xx are never issued, so the surrogate cannot be a real SSN */
        shape_surrogate(o, opts, w, n, type, 9);
        return;
    case DEID_AGE_OVER_89:
        sbuf_str(o, "90+");
        return;
    case DEID_DATE:
    default:
        shape_surrogate(o, opts, w, n, type, -1);
        return;
    }
    (void)len;
}

int deid_redact(const deid_text_rules *r, const char *text, size_t len, const deid_span *spans,
                size_t n, const deid_redact_opts *opts, char **out, size_t *out_len,
                uint64_t *counts, cf_err *err) {
    *out = NULL;
    if (out_len) *out_len = 0;
    if (!r || !opts || (!text && len) || (!spans && n))
        return cf_fail(err, CF_EINTERNAL, "deid_redact: missing argument");
    for (size_t i = 0; i < n; i++) {
        if (spans[i].start >= spans[i].end || spans[i].end > len || spans[i].type < 0 ||
            spans[i].type >= DEID_N_TYPES || (i && spans[i].start < spans[i - 1].end))
            return cf_fail(err, CF_EINPUT, "deid_redact: span %zu is empty, out of range, of unknown type, or overlaps the one before", i);
    }
    sbuf o = {0};
    sbuf_put(&o, "", 0);
    size_t pos = 0;
    /* in surrogate mode without a requested shift, dates still move, by a key-derived amount */
    int shift = opts->shift_days;
    int do_shift = opts->shift_dates;
    if (!do_shift && opts->mode == DEID_MODE_SURROGATE) {
        uint64_t h = keyed(opts, 250, "date-shift", 10);
        shift = (int)(h % 730) - 365;
        if (shift == 0) shift = 1;
        do_shift = 1;
    }
    for (size_t i = 0; i < n; i++) {
        const deid_span *sp = &spans[i];
        sbuf_put(&o, text + pos, sp->start - pos);
        int done = 0;
        if (sp->type == DEID_DATE && do_shift)
            done = shift_date(r, &o, text, len, sp->start, sp->end, shift);
        if (!done) {
            if (opts->mode == DEID_MODE_SURROGATE) surrogate(r, &o, opts, text, len, sp->start, sp->end, sp->type);
            else {
                sbuf_str(&o, "[");
                sbuf_str(&o, deid_type_name(sp->type));
                sbuf_str(&o, "]");
            }
        }
        if (counts) counts[sp->type]++;
        pos = sp->end;
    }
    sbuf_put(&o, text + pos, len - pos);
    if (o.oom) {
        sbuf_free(&o);
        return cf_fail(err, CF_EINTERNAL, "out of memory writing de-identified text");
    }
    *out = o.p;
    if (out_len) *out_len = o.len;
    return CF_OK;
}

int deid_text(const deid_text_rules *r, const char *text, size_t len, const deid_known *known,
              const deid_redact_opts *opts, char **out, size_t *out_len, uint64_t *counts,
              cf_err *err) {
    deid_span *sp = NULL;
    size_t n = 0;
    *out = NULL;
    int rc = deid_find(r, text, len, known, &sp, &n, err);
    if (rc) return rc;
    rc = deid_redact(r, text, len, sp, n, opts, out, out_len, counts, err);
    free(sp);
    return rc;
}
