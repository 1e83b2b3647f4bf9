/* The growing byte buffer; see sbuf.h. */
#include "util/sbuf.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/atomic_file.h"

int sbuf_reserve(sbuf *b, size_t extra) {
    if (b->oom) return -1;
    if (extra > (size_t)-1 / 2 - b->len) {
        b->oom = 1;
        return -1;
    }
    if (b->len + extra + 1 <= b->cap) return 0;
    size_t nc = b->cap ? b->cap * 2 : 256;
    while (nc < b->len + extra + 1) nc *= 2;
    char *p = realloc(b->p, nc);
    if (!p) {
        b->oom = 1;
        return -1;
    }
    b->p = p;
    b->cap = nc;
    return 0;
}

int sbuf_put(sbuf *b, const void *s, size_t n) {
    if (sbuf_reserve(b, n)) return -1;
    if (n) memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

int sbuf_str(sbuf *b, const char *s) { return sbuf_put(b, s, strlen(s)); }

int sbuf_vfmt(sbuf *b, const char *fmt, va_list ap) {
    if (b->oom) return -1;
    va_list ap2;
    va_copy(ap2, ap);
    char small[256];
    int n = vsnprintf(small, sizeof small, fmt, ap2);
    va_end(ap2);
    if (n < 0) {
        b->oom = 1;
        return -1;
    }
    if ((size_t)n < sizeof small) return sbuf_put(b, small, (size_t)n);
    if (sbuf_reserve(b, (size_t)n)) return -1;
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return 0;
}

int sbuf_fmt(sbuf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int rc = sbuf_vfmt(b, fmt, ap);
    va_end(ap);
    return rc;
}

int sbuf_json_str(sbuf *b, const char *s) {
    sbuf_put(b, "\"", 1);
    for (const char *run = s;; s++) {
        unsigned char c = (unsigned char)*s;
        if (c && c != '"' && c != '\\' && c >= 0x20) continue;
        sbuf_put(b, run, (size_t)(s - run));
        if (!c) break;
        char e[8];
        if (c == '"' || c == '\\') {
            e[0] = '\\';
            e[1] = (char)c;
            sbuf_put(b, e, 2);
        } else {
            snprintf(e, sizeof e, "\\u%04x", c);
            sbuf_put(b, e, 6);
        }
        run = s + 1;
    }
    return sbuf_put(b, "\"", 1);
}

void sbuf_clear(sbuf *b) {
    b->len = 0;
    b->oom = 0;
    if (b->p) b->p[0] = '\0';
}

char *sbuf_take(sbuf *b, size_t *len) {
    if (!b->p) sbuf_reserve(b, 0); /* an empty buffer gives "" */
    char *p = b->oom ? NULL : b->p;
    if (p) p[b->len] = '\0';
    if (len) *len = p ? b->len : 0;
    if (!p) free(b->p);
    memset(b, 0, sizeof *b);
    return p;
}

void sbuf_free(sbuf *b) {
    free(b->p);
    memset(b, 0, sizeof *b);
}

int sbuf_write_file(sbuf *b, const char *path, cf_err *err) {
    assert(b->oom || b->len == 0 || b->p);
    int rc = b->oom ? cf_fail(err, CF_EINTERNAL, "out of memory") : atomic_write_file(path, b->p ? b->p : "", b->len, err);
    sbuf_free(b);
    return rc;
}
