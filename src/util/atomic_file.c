/* Atomic output files; see atomic_file.h. */
#include "util/atomic_file.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/file.h"

/* Named temp files still to be removed if a signal arrives. Fixed-size so the signal handler
 * touches no allocator. */
#define MAX_PENDING 16
static char pending_paths[MAX_PENDING][4200];
static volatile sig_atomic_t pending_used[MAX_PENDING];

static void pending_add(const char *p) {
    for (int i = 0; i < MAX_PENDING; i++)
        if (!pending_used[i]) {
            snprintf(pending_paths[i], sizeof pending_paths[i], "%s", p);
            pending_used[i] = 1;
            return;
        }
}

static void pending_remove(const char *p) {
    for (int i = 0; i < MAX_PENDING; i++)
        if (pending_used[i] && strcmp(pending_paths[i], p) == 0) pending_used[i] = 0;
}

static void on_fatal_signal(int sig) {
    for (int i = 0; i < MAX_PENDING; i++)
        if (pending_used[i]) unlink(pending_paths[i]);
    signal(sig, SIG_DFL);
    raise(sig);
}

void atomic_install_signal_cleanup(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_fatal_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
}

int atomic_file_open(atomic_file *f, const char *path, cf_err *err) {
    memset(f, 0, sizeof *f);
    f->fd = -1;
    if (strlen(path) + 32 >= sizeof f->path)
        return cf_fail(err, CF_EINPUT, "output path is too long");
    snprintf(f->path, sizeof f->path, "%s", path);
    char dir[4096];
    file_dir_of(path, dir, sizeof dir);
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return cf_fail(err, CF_EINPUT, "%s: is a directory, expected a file path", path);
#ifdef O_TMPFILE
    f->fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0644);
#endif
    if (f->fd < 0) {
        snprintf(f->tmp_path, sizeof f->tmp_path, "%s.tmp.%ld", path, (long)getpid());
        f->fd = open(f->tmp_path, O_CREAT | O_TRUNC | O_RDWR | O_CLOEXEC, 0644);
        if (f->fd < 0) return cf_fail_errno(err, CF_EINPUT, "%s: cannot create output", path);
        f->named = 1;
        pending_add(f->tmp_path);
    }
    return CF_OK;
}

static int fsync_dir(const char *path) {
    char dir[4096];
    file_dir_of(path, dir, sizeof dir);
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) return -1;
    int rc = fsync(dfd);
    close(dfd);
    return rc;
}

int atomic_file_commit(atomic_file *f, cf_err *err) {
    if (f->fd < 0) return cf_fail(err, CF_EINTERNAL, "%s: commit of a closed file", f->path);
    if (fsync(f->fd) != 0) {
        cf_fail_errno(err, CF_EINTERNAL, "%s: fsync failed", f->path);
        atomic_file_abort(f);
        return CF_EINTERNAL;
    }
    if (!f->named) {
        /* Give the anonymous inode a temporary name, then rename it into place. */
        snprintf(f->tmp_path, sizeof f->tmp_path, "%s.tmp.%ld", f->path, (long)getpid());
        unlink(f->tmp_path);
        char proc[64];
        snprintf(proc, sizeof proc, "/proc/self/fd/%d", f->fd);
        if (linkat(AT_FDCWD, proc, AT_FDCWD, f->tmp_path, AT_SYMLINK_FOLLOW) != 0) {
            cf_fail_errno(err, CF_EINTERNAL, "%s: cannot link output", f->path);
            atomic_file_abort(f);
            return CF_EINTERNAL;
        }
        f->named = 1;
        pending_add(f->tmp_path);
    }
    if (rename(f->tmp_path, f->path) != 0) {
        cf_fail_errno(err, CF_EINTERNAL, "%s: cannot rename output into place", f->path);
        atomic_file_abort(f);
        return CF_EINTERNAL;
    }
    pending_remove(f->tmp_path);
    close(f->fd);
    f->fd = -1;
    f->named = 0;
    if (fsync_dir(f->path) != 0)
        return cf_fail_errno(err, CF_EINTERNAL, "%s: directory fsync failed", f->path);
    return CF_OK;
}

void atomic_file_abort(atomic_file *f) {
    if (f->fd >= 0) close(f->fd);
    f->fd = -1;
    if (f->named) {
        unlink(f->tmp_path);
        pending_remove(f->tmp_path);
        f->named = 0;
    }
}

int write_all(int fd, const void *buf, size_t len, const char *what, cf_err *err) {
    const char *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len > (1u << 30) ? (1u << 30) : len);
        if (n < 0) {
            if (errno == EINTR) continue;
            return cf_fail_errno(err, CF_EINTERNAL, "%s: write failed", what);
        }
        p += n;
        len -= (size_t)n;
    }
    return CF_OK;
}

int pwrite_all(int fd, const void *buf, size_t len, long long off, const char *what, cf_err *err) {
    const char *p = buf;
    while (len > 0) {
        ssize_t n = pwrite(fd, p, len > (1u << 30) ? (1u << 30) : len, (off_t)off);
        if (n < 0) {
            if (errno == EINTR) continue;
            return cf_fail_errno(err, CF_EINTERNAL, "%s: write failed", what);
        }
        p += n;
        off += n;
        len -= (size_t)n;
    }
    return CF_OK;
}

int atomic_write_file(const char *path, const void *data, size_t len, cf_err *err) {
    atomic_file f;
    int rc = atomic_file_open(&f, path, err);
    if (rc) return rc;
    rc = write_all(f.fd, data, len, path, err);
    if (rc) {
        atomic_file_abort(&f);
        return rc;
    }
    return atomic_file_commit(&f, err);
}

int scratch_file_open(const char *dir, cf_err *err, int *fd_out) {
    int fd = -1;
#ifdef O_TMPFILE
    fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
#endif
    if (fd < 0) {
        char tmpl[4096];
        snprintf(tmpl, sizeof tmpl, "%s/.clinfm-scratch-XXXXXX", dir);
        fd = mkstemp(tmpl);
        if (fd < 0) return cf_fail_errno(err, CF_EINTERNAL, "%s: cannot create scratch file", dir);
        unlink(tmpl);
    }
    *fd_out = fd;
    return CF_OK;
}

int atomic_copy_file(const char *src, const char *dest, cf_err *err) {
    char *data = NULL;
    size_t n = 0;
    int rc = file_read_all(src, (size_t)1 << 34, &data, &n, err);
    if (!rc) rc = atomic_write_file(dest, data, n, err);
    free(data);
    return rc;
}
