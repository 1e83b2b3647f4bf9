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
/* A zeroed block for a large table filled in random order (hash tables of word lists, model
 * indexes): from 2 MB up it is aligned to 2 MB, advised for transparent huge pages and zeroed by
 * writing, so that filling it costs a few page faults instead of two per 4 kB page (a read
 * fault maps the shared zero page, the write after it copies it: on this class of virtual
 * machine each costs a TLB flush). Released with free(). */
void *cf_calloc_table(size_t n, size_t size);
/* Room for need elements of size bytes in p, an array of *cap elements: p itself when it holds
 * them, else p reallocated to the first capacity of first, 2*first, 4*first... (or twice *cap)
 * that does, with *cap updated; NULL when out of memory, with p and *cap as they were (p is still
 * the caller's to free). The one growth rule of the appenders and arrays that double. */
void *cf_grow(void *p, size_t *cap, size_t need, size_t size, size_t first);
/* Frees each of n pointers (NULL ones are skipped, as free() does). Called through CF_FREE_ALL,
 * which releases a struct's owned buffers in one statement: CF_FREE_ALL(m->a, m->b, m->c). The
 * pointers are all read before the first is freed, so a list may end with the struct itself. */
void cf_free_n(void *const *ptrs, size_t n);
#define CF_FREE_ALL(...) \
    cf_free_n((void *const[]){__VA_ARGS__}, sizeof((void *const[]){__VA_ARGS__}) / sizeof(void *))

#endif
