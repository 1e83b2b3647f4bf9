/* Error reporting helpers; see err.h. */
#include "util/err.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

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
void *cf_calloc_table(size_t n, size_t size) {
    const size_t huge = (size_t)2 << 20;
    if (size && n > SIZE_MAX / size) return NULL;
    size_t bytes = n * size;
    if (bytes < huge) return cf_calloc(n, size);
    if (bytes > SIZE_MAX - huge) return NULL;
    size_t padded = (bytes + huge - 1) & ~(huge - 1);
    void *p = aligned_alloc(huge, padded);
    if (!p) return NULL;
#ifdef MADV_HUGEPAGE
    madvise(p, padded, MADV_HUGEPAGE); /* advice only: without huge pages the memset still
                                         * faults each page once, not twice */
#endif
    memset(p, 0, padded);
    return p;
}
void *cf_realloc_array(void *p, size_t n, size_t size) {
    if (size && n > SIZE_MAX / size) return NULL;
    size_t bytes = n * size;
    return realloc(p, bytes ? bytes : 1);
}

void cf_free_n(void *const *ptrs, size_t n) {
    for (size_t i = 0; i < n; i++) free(ptrs[i]);
}

void *cf_grow(void *p, size_t *cap, size_t need, size_t size, size_t first) {
    if (need <= *cap) return p;
    size_t nc = *cap ? *cap : first;
    while (nc < need) {
        if (nc > SIZE_MAX / 2) return NULL;
        nc *= 2;
    }
    void *np = cf_realloc_array(p, nc, size);
    if (np) *cap = nc;
    return np;
}
