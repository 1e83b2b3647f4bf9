/* The `key = value` section reader; see kv.h. */
#include "util/kv.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void kv_open(kv_reader *r, const char *path, const char *text, size_t len, unsigned flags) {
    memset(r, 0, sizeof *r);
    r->path = path;
    r->p = text;
    r->end = text + len;
    r->flags = flags;
}

void kv_close(kv_reader *r) {
    free(r->buf);
    r->buf = NULL;
    r->cap = 0;
}

int kv_fail(const kv_reader *r, cf_err *err, const char *fmt, ...) {
    char msg[sizeof err->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return cf_fail(err, CF_EINPUT, "%s:%d: %s", r->path, r->line, msg);
}

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f' || c == '\n'; }

static char *trim(char *s) {
    while (is_space(*s)) s++;
    char *e = s + strlen(s);
    while (e > s && is_space(e[-1])) *--e = '\0';
    return s;
}

/* Cuts the comment off the line (see kv.h for where one starts). */
static void cut_comment(char *s, unsigned flags) {
    int quoted = 0;
    for (char *c = s; *c; c++) {
        if (*c == '"' && (flags & KV_QUOTES)) quoted = !quoted;
        else if (*c == '#' && !quoted && ((flags & KV_HASH_ANYWHERE) || c == s || is_space(c[-1]))) {
            *c = '\0';
            return;
        }
    }
}

int kv_next(kv_reader *r, cf_err *err) {
    while (r->p < r->end) {
        r->line++;
        const char *nl = memchr(r->p, '\n', (size_t)(r->end - r->p));
        size_t n = (size_t)((nl ? nl : r->end) - r->p);
        const char *src = r->p;
        r->p = nl ? nl + 1 : r->end;
        if (r->max_line && n > r->max_line) return kv_fail(r, err, "line longer than %zu bytes", r->max_line), KV_ERROR;
        if (memchr(src, '\0', n)) return kv_fail(r, err, "a NUL byte"), KV_ERROR;
        if (n + 1 > r->cap) {
            char *b = realloc(r->buf, n + 1);
            if (!b) return cf_fail(err, CF_EINTERNAL, "out of memory"), KV_ERROR;
            r->buf = b;
            r->cap = n + 1;
        }
        memcpy(r->buf, src, n);
        r->buf[n] = '\0';
        cut_comment(r->buf, r->flags);
        char *s = trim(r->buf);
        if (!*s) continue;
        r->kind = r->name = r->key = r->value = NULL;
        if (*s == '[') {
            size_t len = strlen(s);
            if (s[len - 1] != ']') return kv_fail(r, err, "a section header ends with ']'"), KV_ERROR;
            s[len - 1] = '\0';
            char *kind = trim(s + 1), *name = kind;
            while (*name && !is_space(*name)) name++;
            if (*name) *name++ = '\0';
            r->kind = kind;
            r->name = trim(name);
            return KV_SECTION;
        }
        char *eq = strchr(s, '=');
        if (!eq) return kv_fail(r, err, "expected `key = value` or a [section]"), KV_ERROR;
        *eq = '\0';
        char *key = trim(s), *val = trim(eq + 1);
        if (!*key) return kv_fail(r, err, "a key is missing before '='"), KV_ERROR;
        size_t vl = strlen(val);
        if ((r->flags & KV_QUOTES) && vl >= 2 && val[0] == '"' && val[vl - 1] == '"' && !memchr(val + 1, '"', vl - 2)) {
            val[vl - 1] = '\0';
            val++;
        }
        r->key = key;
        r->value = val;
        return KV_PAIR;
    }
    return KV_END;
}
