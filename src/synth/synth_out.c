/* Output helpers shared by the generator's layouts (see synth_out.h). Numbers and times are
 * formatted by hand, not with printf: a million patients are a billion fields, and these are a
 * few times faster while giving the same text for the same value on every machine. */
#include "synth/synth_out.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void synth_buf_put(synth_buf *s, const char *p, size_t n) {
    sbuf_put(s, p, n);
}

void synth_buf_str(synth_buf *s, const char *p) { synth_buf_put(s, p, strlen(p)); }

static void put_u(synth_buf *s, unsigned long long v, int width) {
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n < width) tmp[n++] = '0';
    char out[24];
    for (int i = 0; i < n; i++) out[i] = tmp[n - 1 - i];
    synth_buf_put(s, out, (size_t)n);
}

void synth_buf_u64(synth_buf *s, uint64_t v) { put_u(s, v, 1); }

void synth_buf_fixed(synth_buf *s, double v, int dec) {
    static const double p10[] = {1, 10, 100, 1000, 10000, 100000, 1000000};
    if (dec < 0) dec = 0;
    if (dec > 6) dec = 6;
    if (!isfinite(v)) v = 0;
    long long x = llround(v * p10[dec]);
    if (x < 0) {
        synth_buf_put(s, "-", 1);
        x = -x;
    }
    unsigned long long ip = (unsigned long long)x / (unsigned long long)p10[dec];
    put_u(s, ip, 1);
    if (dec) {
        synth_buf_put(s, ".", 1);
        put_u(s, (unsigned long long)x % (unsigned long long)p10[dec], dec);
    }
}

/* days since 1970 -> civil date (Howard Hinnant's algorithm) */
static void civil(long long z, int *y, unsigned *m, unsigned *d) {
    z += 719468;
    long long era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    long long yy = (long long)yoe + era * 400;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int)(yy + (*m <= 2));
}

static void put_time(synth_buf *s, double day, int date_only, char sep, int zone) {
    long long secs = llround(day * 86400.0);
    long long dd = secs >= 0 ? secs / 86400 : -((-secs + 86399) / 86400);
    long long rem = secs - dd * 86400;
    int y;
    unsigned m, d;
    civil(dd, &y, &m, &d);
    put_u(s, (unsigned long long)y, 4);
    synth_buf_put(s, "-", 1);
    put_u(s, m, 2);
    synth_buf_put(s, "-", 1);
    put_u(s, d, 2);
    if (date_only) return;
    synth_buf_put(s, &sep, 1);
    put_u(s, (unsigned long long)(rem / 3600), 2);
    synth_buf_put(s, ":", 1);
    put_u(s, (unsigned long long)(rem / 60 % 60), 2);
    synth_buf_put(s, ":", 1);
    put_u(s, (unsigned long long)(rem % 60), 2);
    if (zone) synth_buf_put(s, "Z", 1);
}

void synth_buf_time(synth_buf *s, double day, int date_only) { put_time(s, day, date_only, 'T', 1); }

void synth_buf_datetime(synth_buf *s, double day) { put_time(s, day, 0, ' ', 0); }

void synth_buf_csv(synth_buf *s, const char *v) {
    if (!strpbrk(v, ",\"\r\n")) {
        synth_buf_str(s, v);
        return;
    }
    synth_buf_put(s, "\"", 1);
    for (const char *p = v; *p; p++) {
        if (*p == '"') synth_buf_put(s, "\"", 1);
        synth_buf_put(s, p, 1);
    }
    synth_buf_put(s, "\"", 1);
}

void synth_buf_nodot(synth_buf *s, const char *v) {
    for (const char *p = v; *p; p++)
        if (*p != '.') synth_buf_put(s, p, 1);
}
