/* Text forms of store values; see format_value.h. */
#include "store/format_value.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

char *format_float_shortest(float v, char *buf, size_t cap) {
    if (isnan(v)) {
        buf[0] = '\0';
        return buf;
    }
    for (int prec = 6; prec <= 9; prec++) {
        snprintf(buf, cap, "%.*g", prec, (double)v);
        if (strtof(buf, NULL) == v) break;
    }
    return buf;
}

void csv_write_field(FILE *f, const char *s, size_t len) {
    if (!memchr(s, ',', len) && !memchr(s, '"', len) && !memchr(s, '\n', len) && !memchr(s, '\r', len)) {
        fwrite(s, 1, len, f);
        return;
    }
    fputc('"', f);
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '"') fputc('"', f);
        fputc(s[i], f);
    }
    fputc('"', f);
}
