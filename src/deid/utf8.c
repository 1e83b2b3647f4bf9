/* UTF-8 decoding and letter case for the de-identifier's tokenizer.
 *
 * Names in notes come from many languages ("Šárka Ottová", "ΛΕΥΚΩΣΙΑ", "Jožef"), and the token
 * rules depend on capitalisation, so case must work beyond ASCII. A full Unicode table is not
 * needed: the scripts covered here (Latin with its Extended-A/B and Additional blocks, Greek,
 * Cyrillic) are the ones with letter case that the word lists carry. Other letters count as
 * letters without case. */
#include "deid/deid_int.h"

uint32_t deid_utf8_next(const char *str, size_t len, size_t *i) {
    const unsigned char *s = (const unsigned char *)str;
    size_t p = *i;
    unsigned char c = s[p];
    if (c < 0x80) {
        *i = p + 1;
        return c;
    }
    int n;
    uint32_t cp, min;
    if ((c & 0xE0) == 0xC0) {
        n = 1;
        cp = c & 0x1F;
        min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
        n = 2;
        cp = c & 0x0F;
        min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
        n = 3;
        cp = c & 0x07;
        min = 0x10000;
    } else {
        *i = p + 1;
        return 0xFFFD;
    }
    if (p + (size_t)n >= len) { /* truncated sequence at the end */
        *i = p + 1;
        return 0xFFFD;
    }
    for (int k = 1; k <= n; k++) {
        unsigned char cc = s[p + (size_t)k];
        if ((cc & 0xC0) != 0x80) {
            *i = p + 1;
            return 0xFFFD;
        }
        cp = (cp << 6) | (cc & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
        *i = p + 1;
        return 0xFFFD;
    }
    *i = p + (size_t)n + 1;
    return cp;
}

size_t deid_utf8_put(char *buf, uint32_t cp) {
    unsigned char *b = (unsigned char *)buf;
    if (cp < 0x80) {
        b[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        b[0] = (unsigned char)(0xC0 | (cp >> 6));
        b[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        b[0] = (unsigned char)(0xE0 | (cp >> 12));
        b[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        b[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    b[0] = (unsigned char)(0xF0 | (cp >> 18));
    b[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    b[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    b[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

int deid_cp_is_letter(uint32_t cp) {
    if (cp < 0x80) return (cp | 0x20) >= 'a' && (cp | 0x20) <= 'z';
    if (cp < 0xC0) return cp == 0xAA || cp == 0xB5 || cp == 0xBA;
    if (cp == 0xD7 || cp == 0xF7) return 0;
    if (cp >= 0x2000 && cp <= 0x2BFF) return 0; /* punctuation, symbols, arrows, math */
    if (cp >= 0x3000 && cp <= 0x303F) return 0; /* CJK punctuation */
    if (cp >= 0xFE00 && cp <= 0xFE0F) return 0; /* variation selectors */
    if (cp == 0xFEFF || cp == 0xFFFD) return 0;
    if (cp >= 0xFF00 && cp <= 0xFF20) return 0; /* full-width punctuation and digits */
    if (cp >= 0x1F000) return 0;                /* emoji and other symbols */
    return 1; /* combining marks (0300-036F) count as part of the word they follow */
}

/* Returns +1 upper, -1 lower, 0 caseless; *other is the other-case code point. */
static int case_of(uint32_t cp, uint32_t *other) {
    *other = cp;
    if (cp < 0x80) {
        if (cp >= 'A' && cp <= 'Z') { *other = cp + 32; return 1; }
        if (cp >= 'a' && cp <= 'z') { *other = cp - 32; return -1; }
        return 0;
    }
    if (cp >= 0xC0 && cp <= 0xDE && cp != 0xD7) { *other = cp + 32; return 1; }
    if (cp >= 0xE0 && cp <= 0xFE && cp != 0xF7) { *other = cp - 32; return -1; }
    if (cp == 0xDF) return -1;
    if (cp == 0xFF) { *other = 0x178; return -1; }
    if (cp >= 0x100 && cp <= 0x17F) {
        if (cp == 0x130) { *other = 'i'; return 1; }
        if (cp == 0x131) { *other = 'I'; return -1; }
        if (cp == 0x138 || cp == 0x149 || cp == 0x17F) return -1;
        if (cp == 0x178) { *other = 0xFF; return 1; }
        int even_upper = (cp <= 0x137) || (cp >= 0x14A && cp <= 0x177);
        if (even_upper) {
            if (cp % 2 == 0) { *other = cp + 1; return 1; }
            *other = cp - 1;
            return -1;
        }
        /* 0139-0148 and 0179-017E: odd upper */
        if (cp % 2 == 1) { *other = cp + 1; return 1; }
        *other = cp - 1;
        return -1;
    }
    if (cp >= 0x1E00 && cp <= 0x1EFF) { /* Latin Extended Additional (Vietnamese, Welsh) */
        if (cp >= 0x1E96 && cp <= 0x1E9F) return -1;
        if (cp % 2 == 0) { *other = cp + 1; return 1; }
        *other = cp - 1;
        return -1;
    }
    if (cp >= 0x180 && cp <= 0x24F) {
        /* Latin Extended-B: mostly pairs; the common ones (Ș ș Ț ț, Ǎ ǎ...) are even/odd. */
        if (cp >= 0x218 && cp <= 0x233) {
            if (cp % 2 == 0) { *other = cp + 1; return 1; }
            *other = cp - 1;
            return -1;
        }
        if (cp >= 0x1CD && cp <= 0x1DC) {
            if (cp % 2 == 1) { *other = cp + 1; return 1; }
            *other = cp - 1;
            return -1;
        }
        return 0;
    }
    if (cp >= 0x370 && cp <= 0x3FF) { /* Greek */
        switch (cp) {
        case 0x386: *other = 0x3AC; return 1;
        case 0x388: *other = 0x3AD; return 1;
        case 0x389: *other = 0x3AE; return 1;
        case 0x38A: *other = 0x3AF; return 1;
        case 0x38C: *other = 0x3CC; return 1;
        case 0x38E: *other = 0x3CD; return 1;
        case 0x38F: *other = 0x3CE; return 1;
        case 0x3AC: *other = 0x386; return -1;
        case 0x3AD: *other = 0x388; return -1;
        case 0x3AE: *other = 0x389; return -1;
        case 0x3AF: *other = 0x38A; return -1;
        case 0x3CC: *other = 0x38C; return -1;
        case 0x3CD: *other = 0x38E; return -1;
        case 0x3CE: *other = 0x38F; return -1;
        case 0x3C2: *other = 0x3A3; return -1; /* final sigma */
        default: break;
        }
        if (cp >= 0x391 && cp <= 0x3A9 && cp != 0x3A2) { *other = cp + 32; return 1; }
        if (cp >= 0x3B1 && cp <= 0x3C9) { *other = cp - 32; return -1; }
        if (cp == 0x390 || cp == 0x3B0) return -1;
        return 0;
    }
    if (cp >= 0x400 && cp <= 0x4FF) { /* Cyrillic */
        if (cp <= 0x40F) { *other = cp + 80; return 1; }
        if (cp <= 0x42F) { *other = cp + 32; return 1; }
        if (cp <= 0x44F) { *other = cp - 32; return -1; }
        if (cp <= 0x45F) { *other = cp - 80; return -1; }
        if (cp >= 0x460 && cp <= 0x4BF) {
            if (cp >= 0x482 && cp <= 0x489) return 0;
            if (cp % 2 == 0) { *other = cp + 1; return 1; }
            *other = cp - 1;
            return -1;
        }
        return 0;
    }
    return 0;
}

int deid_cp_is_upper(uint32_t cp) {
    uint32_t o;
    return case_of(cp, &o) > 0;
}

int deid_cp_is_lower(uint32_t cp) {
    uint32_t o;
    return case_of(cp, &o) < 0;
}

uint32_t deid_cp_to_lower(uint32_t cp) {
    uint32_t o;
    return case_of(cp, &o) > 0 ? o : cp;
}

uint32_t deid_cp_to_upper(uint32_t cp) {
    uint32_t o;
    if (cp == 0xDF) return cp;
    return case_of(cp, &o) < 0 ? o : cp;
}

size_t deid_lower(const char *s, size_t len, char *out, size_t cap) {
    size_t i = 0, o = 0;
    while (i < len) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x80) {
            if (o + 1 >= cap) return (size_t)-1;
            out[o++] = (char)((c >= 'A' && c <= 'Z') ? c + 32 : c);
            i++;
            continue;
        }
        size_t before = i;
        uint32_t cp = deid_utf8_next(s, len, &i);
        if (cp == 0xFFFD && i == before + 1) {
            /* keep invalid bytes as they are */
            if (o + 1 >= cap) return (size_t)-1;
            out[o++] = s[before];
            continue;
        }
        char tmp[4];
        size_t n = deid_utf8_put(tmp, deid_cp_to_lower(cp));
        if (o + n >= cap) return (size_t)-1;
        for (size_t k = 0; k < n; k++) out[o++] = tmp[k];
    }
    out[o] = 0;
    return o;
}

static int is_word_cp(uint32_t cp) { return (cp >= '0' && cp <= '9') || deid_cp_is_letter(cp); }

int deid_next_word(const char *s, size_t len, size_t *pos, size_t *ws, size_t *we) {
    size_t i = *pos;
    while (i < len) {
        size_t before = i;
        uint32_t cp = deid_utf8_next(s, len, &i);
        if (is_word_cp(cp)) {
            *ws = before;
            size_t end = i;
            uint32_t last = cp;
            while (i < len) {
                size_t at = i;
                uint32_t c2 = deid_utf8_next(s, len, &i);
                if (is_word_cp(c2)) {
                    end = i;
                    last = c2;
                    continue;
                }
                if (c2 == '\'' || c2 == '-' || c2 == 0x2019) {
                    /* inner apostrophe or hyphen between letters ("O'Brien", "Mayo-Walters",
                       "follow-up"); between digits it separates ("1990-02-18", "800-1000") */
                    size_t k = i;
                    uint32_t c3 = k < len ? deid_utf8_next(s, len, &k) : 0;
                    if (is_word_cp(c3) && deid_cp_is_letter(last) && (deid_cp_is_letter(c3) || c2 != '-')) {
                        end = k;
                        i = k;
                        last = c3;
                        continue;
                    }
                }
                i = at;
                break;
            }
            *we = end;
            *pos = end;
            return 1;
        }
    }
    *pos = len;
    return 0;
}
