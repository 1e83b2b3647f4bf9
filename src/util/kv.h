/* The `key = value` section reader: the one lexer of clinfm's hand-written files (mapping files
 * `.map`, task files `.task`, disease modules `.module`, and any later one). It splits text into
 * items and knows nothing of what the keys mean; each format checks its own sections and keys
 * and reports a problem at the reader's line with kv_fail, so every message says "file:line:".
 *
 * The syntax, line by line:
 *   [kind]  or  [kind name]      a section header (kind and name split at the first white space)
 *   key = value                  a pair; key and value trimmed of white space (CR included)
 *   # comment                    from '#' at the start of a line or after white space to the end
 *                                (with KV_HASH_ANYWHERE, from any '#'); blank lines are skipped
 * With KV_QUOTES, a '#' inside double quotes starts no comment, and a value wholly in double
 * quotes (none inside) loses them. A NUL byte, a header without ']', a line without '=' and an
 * empty key are errors. */
#ifndef CLINFM_UTIL_KV_H
#define CLINFM_UTIL_KV_H

#include <stddef.h>

#include "util/err.h"

enum { KV_HASH_ANYWHERE = 1, KV_QUOTES = 2 };
enum { KV_END = 0, KV_SECTION = 1, KV_PAIR = 2, KV_ERROR = -1 };

typedef struct {
    const char *path;   /* for messages */
    const char *p, *end;
    unsigned flags;
    size_t max_line;    /* longer lines are an error; 0: no limit */
    int line;           /* 1-based line of the item last returned */
    char *buf;          /* the current line, cut into the fields below */
    size_t cap;
    char *kind, *name;  /* KV_SECTION: "" when the header has no name */
    char *key, *value;  /* KV_PAIR */
} kv_reader;

/* text (len bytes, not necessarily NUL-terminated) must outlive the reader. */
void kv_open(kv_reader *r, const char *path, const char *text, size_t len, unsigned flags);
/* The next item: KV_SECTION, KV_PAIR, KV_END, or KV_ERROR with err set (CF_EINPUT, or
 * CF_EINTERNAL when out of memory). The fields stay valid until the next call. */
int kv_next(kv_reader *r, cf_err *err);
void kv_close(kv_reader *r);
/* Fills err with "<path>:<line>: <message>" for the item last returned; returns CF_EINPUT. */
int kv_fail(const kv_reader *r, cf_err *err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
