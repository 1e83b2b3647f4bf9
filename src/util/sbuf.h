/* A growing byte buffer: the one place text and binary output are assembled before they are
 * written (reports, label CSVs, JSON and Markdown responses, NDJSON lines, store heaps).
 *
 * Writes append and keep the bytes NUL-terminated: once anything was written, p[len] == 0, so a
 * text buffer is also a C string. Out of memory is recoverable: a write that cannot grow the
 * buffer sets `oom`, leaves the bytes as they were and returns -1; every later write is ignored
 * (and returns -1), so a writer may append freely and check once at the end (sbuf_write_file
 * does), or check each write's status where it must stop at once. A zeroed sbuf is empty and
 * valid; sbuf_free releases it. */
#ifndef CLINFM_UTIL_SBUF_H
#define CLINFM_UTIL_SBUF_H

#include <stdarg.h>
#include <stddef.h>

#include "util/err.h"

typedef struct {
    char *p;        /* (cap) the bytes; NULL until the first write */
    size_t len;     /* bytes written, not counting the NUL */
    size_t cap;     /* bytes allocated */
    int oom;        /* a write ran out of memory; later writes are ignored */
} sbuf;

/* Makes room for extra more bytes (and the NUL); 0, or -1 with oom set. */
int sbuf_reserve(sbuf *b, size_t extra);
int sbuf_put(sbuf *b, const void *s, size_t n);
int sbuf_str(sbuf *b, const char *s);
int sbuf_fmt(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int sbuf_vfmt(sbuf *b, const char *fmt, va_list ap);
/* s as a JSON string literal: quotes, with '"' and '\\' escaped and control bytes as \u00XX. */
int sbuf_json_str(sbuf *b, const char *s);
/* Empties the buffer (len 0, "" once allocated) and clears oom; the memory is kept. */
void sbuf_clear(sbuf *b);
/* Hands the bytes to the caller (who frees them) and leaves the buffer empty; NULL after an
 * out-of-memory write (the bytes are then freed). An empty buffer gives "". */
char *sbuf_take(sbuf *b, size_t *len);
void sbuf_free(sbuf *b);
/* Writes the bytes to path atomically (util/atomic_file.h); CF_EINTERNAL when a write ran out of
 * memory. Frees the buffer either way. */
int sbuf_write_file(sbuf *b, const char *path, cf_err *err);

#endif
