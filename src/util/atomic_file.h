/* Output files that appear whole or not at all.
 *
 * A file is written to an anonymous O_TMPFILE inode in the destination directory, so a process
 * killed at any point (even by SIGKILL) leaves nothing behind. On commit the data is fsynced,
 * linked under a temporary name, renamed over the destination, and the directory is fsynced.
 * Where O_TMPFILE is unsupported, a named "<path>.tmp.<pid>" file is used instead and removed on
 * abort and on SIGINT/SIGTERM/SIGHUP (see atomic_install_signal_cleanup). */
#ifndef CLINFM_UTIL_ATOMIC_FILE_H
#define CLINFM_UTIL_ATOMIC_FILE_H

#include <stddef.h>
#include "util/err.h"

typedef struct {
    int fd;              /* write through this; -1 when closed */
    int named;           /* 1 when the fallback named temp file is in use */
    char path[4096];     /* final destination */
    char tmp_path[4200];  /* named temp path */
} atomic_file;

int atomic_file_open(atomic_file *f, const char *path, cf_err *err);
int atomic_file_commit(atomic_file *f, cf_err *err);
void atomic_file_abort(atomic_file *f);

/* Writes all of buf at the current offset / at offset off; retries short writes and EINTR. */
int write_all(int fd, const void *buf, size_t len, const char *what, cf_err *err);
int pwrite_all(int fd, const void *buf, size_t len, long long off, const char *what, cf_err *err);

/* Writes a whole file atomically. */
int atomic_write_file(const char *path, const void *data, size_t len, cf_err *err);
/* Copies the file at src (at most 16 GiB, read whole) to dest, atomically. */
int atomic_copy_file(const char *src, const char *dest, cf_err *err);

/* Opens an anonymous scratch file in dir (unlinked at once, so it never outlives the process). */
int scratch_file_open(const char *dir, cf_err *err, int *fd_out);

/* Installs handlers that remove registered named temp files on SIGINT, SIGTERM and SIGHUP,
 * then re-raise the signal. Call once from main. */
void atomic_install_signal_cleanup(void);

#endif
