/* Error reporting helpers; see err.h. */
#include "util/err.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cf_fail(cf_err *err, int code, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        err->code = code;
        err->reported = 0;
    }
    return code;
}

int cf_fail_errno(cf_err *err, int code, const char *fmt, ...) {
    int saved = errno;
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        if (n >= 0 && (size_t)n < sizeof err->msg)
            snprintf(err->msg + n, sizeof err->msg - (size_t)n, ": %s", strerror(saved));
        err->code = code;
        err->reported = 0;
    }
    return code;
}

void cf_err_print(const cf_err *err) {
    fprintf(stderr, "clinfm: %s\n", err->msg[0] ? err->msg : "unknown error");
}

void *cf_malloc(size_t n) { return malloc(n ? n : 1); }
void *cf_calloc(size_t n, size_t size) { return calloc(n ? n : 1, size ? size : 1); }
void *cf_realloc_array(void *p, size_t n, size_t size) {
    if (size && n > SIZE_MAX / size) return NULL;
    size_t bytes = n * size;
    return realloc(p, bytes ? bytes : 1);
}
