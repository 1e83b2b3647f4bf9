/* Error values shared by every module.
 *
 * Functions return an int status (CF_OK, CF_EINPUT or CF_EINTERNAL) and, on failure, fill a
 * caller-owned cf_err with one human-readable sentence. The status doubles as the process exit
 * code: 0 ok, 1 bad input or usage, 2 internal error. Messages name files, lines, columns and
 * mapping keys; they must never contain field values, because field values may be PHI. */
#ifndef CLINFM_UTIL_ERR_H
#define CLINFM_UTIL_ERR_H

#include <stddef.h>

enum { CF_OK = 0, CF_EINPUT = 1, CF_EINTERNAL = 2 };

typedef struct {
    int code;       /* CF_EINPUT or CF_EINTERNAL once set */
    int reported;   /* already told (cf_err_reported): the code ending the command prints it no more */
    char msg[1024];
} cf_err;

/* Sets err (if not NULL) and returns code, so callers can write `return cf_fail(...)`. */
int cf_fail(cf_err *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Like cf_fail, with ": <strerror(errno)>" appended. */
int cf_fail_errno(cf_err *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Prints "clinfm: <msg>" to stderr. */
void cf_err_print(const cf_err *err);
/* Marks err as told to the user, printed here or left to another MPI rank that failed alike, so
 * that whoever ends the command does not print it again (see cf_err_unreported); the next
 * cf_fail on err clears the mark. */
static inline void cf_err_reported(cf_err *err) { err->reported = 1; }
/* Is there an error in err that nobody has told the user about yet? */
static inline int cf_err_unreported(const cf_err *err) { return err->code && !err->reported; }
/* Out-of-memory is recoverable: allocation helpers return NULL and callers report CF_EINTERNAL. */
void *cf_malloc(size_t n);
void *cf_calloc(size_t n, size_t size);
void *cf_realloc_array(void *p, size_t n, size_t size);

#endif
