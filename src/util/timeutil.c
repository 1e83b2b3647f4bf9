/* Calendar arithmetic and timestamp parsing; see timeutil.h.
 * The day-count algorithms are Howard Hinnant's public-domain civil-date formulas. */
#include "util/timeutil.h"

#include <stdio.h>
#include <string.h>

int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = (unsigned)(y - era * 400);
    const unsigned doy = (153 * (m + (m > 2 ? (unsigned)-3 : 9)) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d) {
    z += 719468;
    const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const unsigned doe = (unsigned)(z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const int64_t yy = (int64_t)yoe + era * 400;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = yy + (*m <= 2);
}

static int is_leap(int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

static unsigned days_in_month(int64_t y, unsigned m) {
    static const unsigned dm[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : dm[m - 1];
}

/* Reads exactly n digits at s[*i]. */
static int digits(const char *s, size_t len, size_t *i, int n, int64_t *out) {
    int64_t v = 0;
    for (int k = 0; k < n; k++) {
        if (*i >= len || s[*i] < '0' || s[*i] > '9') return -1;
        v = v * 10 + (s[*i] - '0');
        (*i)++;
    }
    *out = v;
    return 0;
}

static int assemble(int64_t y, int64_t mo, int64_t d, int64_t h, int64_t mi, int64_t se,
                    int64_t us, int64_t *out) {
    if (mo < 1 || mo > 12 || d < 1 || d > (int64_t)days_in_month(y, (unsigned)mo)) return -1;
    if (h > 23 || mi > 59 || se > 60) return -1; /* 60 admits a leap second */
    int64_t days = days_from_civil(y, (unsigned)mo, (unsigned)d);
    *out = ((days * 24 + h) * 60 + mi) * 60 * USEC_PER_SEC + se * USEC_PER_SEC + us;
    return 0;
}

static int fraction(const char *s, size_t len, size_t *i, int64_t *us) {
    int64_t v = 0;
    int n = 0;
    if (*i >= len || s[*i] < '0' || s[*i] > '9') return -1;
    while (*i < len && s[*i] >= '0' && s[*i] <= '9') {
        if (n < 6) v = v * 10 + (s[*i] - '0'), n++;
        (*i)++;
    }
    while (n < 6) v *= 10, n++;
    *us = v;
    return 0;
}

int time_parse_iso(const char *s, size_t len, int64_t *out, int *has_zone) {
    size_t i = 0;
    int64_t y, mo, d, h = 0, mi = 0, se = 0, us = 0;
    int zone = 0;
    int64_t offset_min = 0;
    while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t')) len--;
    while (i < len && (s[i] == ' ' || s[i] == '\t')) i++;
    if (digits(s, len, &i, 4, &y) || i >= len || s[i++] != '-') return -1;
    if (digits(s, len, &i, 2, &mo) || i >= len || s[i++] != '-') return -1;
    if (digits(s, len, &i, 2, &d)) return -1;
    if (i < len && (s[i] == 'T' || s[i] == ' ')) {
        i++;
        if (digits(s, len, &i, 2, &h) || i >= len || s[i++] != ':') return -1;
        if (digits(s, len, &i, 2, &mi)) return -1;
        if (i < len && s[i] == ':') {
            i++;
            if (digits(s, len, &i, 2, &se)) return -1;
            if (i < len && (s[i] == '.' || s[i] == ',')) {
                i++;
                if (fraction(s, len, &i, &us)) return -1;
            }
        }
        if (i < len && s[i] == 'Z') {
            zone = 1;
            i++;
        } else if (i < len && (s[i] == '+' || s[i] == '-')) {
            int neg = s[i++] == '-';
            int64_t oh, om = 0;
            if (digits(s, len, &i, 2, &oh)) return -1;
            if (i < len && s[i] == ':') i++;
            if (i < len && digits(s, len, &i, 2, &om)) return -1;
            if (oh > 23 || om > 59) return -1;
            offset_min = (neg ? -1 : 1) * (oh * 60 + om);
            zone = 1;
        }
    }
    if (i != len) return -1;
    if (assemble(y, mo, d, h, mi, se, us, out)) return -1;
    *out -= offset_min * 60 * USEC_PER_SEC;
    if (has_zone) *has_zone = zone;
    return 0;
}

/* Reads one or two digits (formats such as 4/7/2020 omit leading zeros). */
static int digits12(const char *s, size_t len, size_t *i, int64_t *out) {
    if (*i >= len || s[*i] < '0' || s[*i] > '9') return -1;
    int64_t v = s[(*i)++] - '0';
    if (*i < len && s[*i] >= '0' && s[*i] <= '9') v = v * 10 + (s[(*i)++] - '0');
    *out = v;
    return 0;
}

int time_parse_format(const char *s, size_t len, const char *fmt, int64_t *out) {
    size_t i = 0;
    int64_t y = 1970, mo = 1, d = 1, h = 0, mi = 0, se = 0, us = 0;
    for (const char *f = fmt; *f; f++) {
        if (*f != '%') {
            if (i >= len || s[i] != *f) return -1;
            i++;
            continue;
        }
        f++;
        int rc;
        switch (*f) {
        case 'Y': rc = digits(s, len, &i, 4, &y); break;
        case 'y': rc = digits(s, len, &i, 2, &y); if (!rc) y += y < 69 ? 2000 : 1900; break;
        case 'm': rc = digits12(s, len, &i, &mo); break;
        case 'd': rc = digits12(s, len, &i, &d); break;
        case 'H': rc = digits12(s, len, &i, &h); break;
        case 'M': rc = digits12(s, len, &i, &mi); break;
        case 'S': rc = digits12(s, len, &i, &se); break;
        case 'f': rc = fraction(s, len, &i, &us); break;
        case '%': rc = (i < len && s[i] == '%') ? (i++, 0) : -1; break;
        default: return -1;
        }
        if (rc) return -1;
    }
    if (i != len) return -1;
    return assemble(y, mo, d, h, mi, se, us, out);
}

char *time_format_iso(int64_t t, char *buf, size_t cap) {
    if (t == TIME_NULL) {
        if (cap) buf[0] = '\0';
        return buf;
    }
    int64_t days = t / USEC_PER_DAY, rem = t % USEC_PER_DAY;
    if (rem < 0) rem += USEC_PER_DAY, days--;
    int64_t y;
    unsigned m, d;
    civil_from_days(days, &y, &m, &d);
    int64_t secs = rem / USEC_PER_SEC, us = rem % USEC_PER_SEC;
    if (us)
        snprintf(buf, cap, "%04lld-%02u-%02uT%02lld:%02lld:%02lld.%06lld", (long long)y, m, d,
                 (long long)(secs / 3600), (long long)(secs / 60 % 60), (long long)(secs % 60),
                 (long long)us);
    else
        snprintf(buf, cap, "%04lld-%02u-%02uT%02lld:%02lld:%02lld", (long long)y, m, d,
                 (long long)(secs / 3600), (long long)(secs / 60 % 60), (long long)(secs % 60));
    return buf;
}
