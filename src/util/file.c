/* Whole files into memory; see file.h. */
#include "util/file.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

int file_map(const char *path, const char *what, size_t min, void **map, size_t *len, cf_err *err) {
    return file_map_fd(path, what, min, map, len, NULL, err);
}

int file_map_fd(const char *path, const char *what, size_t min, void **map, size_t *len, int *keep, cf_err *err) {
    *map = NULL;
    *len = 0;
    if (keep) *keep = -1;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return cf_fail_errno(err, CF_EINPUT, "%s: cannot open %s", path, what);
    struct stat st;
    int rc = CF_OK;
    if (fstat(fd, &st) != 0) {
        rc = cf_fail_errno(err, CF_EINPUT, "%s: cannot stat %s", path, what);
    } else if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size < min) {
        rc = cf_fail(err, CF_EINPUT, "%s: not a clinfm %s (too short or not a file)", path, what);
    } else {
        void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
        if (m == MAP_FAILED) {
            rc = cf_fail_errno(err, CF_EINTERNAL, "%s: cannot map %s", path, what);
        } else {
            *map = m;
            *len = (size_t)st.st_size;
        }
    }
    if (keep && rc == CF_OK) *keep = fd;
    else close(fd);
    return rc;
}

int file_read_stream(FILE *f, const char *name, size_t max, char **out, size_t *len, cf_err *err) {
    size_t n = 0, cap = 0;
    char *b = NULL;
    int rc = CF_OK;
    *out = NULL;
    if (len) *len = 0;
    for (;;) {
        if (n + 4096 + 1 > cap) {
            size_t nc = cap ? cap * 2 : 65536;
            char *nb = realloc(b, nc);
            if (!nb) {
                rc = cf_fail(err, CF_EINTERNAL, "%s: out of memory", name);
                break;
            }
            b = nb;
            cap = nc;
        }
        size_t got = fread(b + n, 1, cap - n - 1, f);
        n += got;
        if (max && n > max) {
            rc = cf_fail(err, CF_EINPUT, "%s: larger than %zu bytes", name, max);
            break;
        }
        if (!got) {
            if (ferror(f)) rc = cf_fail(err, CF_EINPUT, "%s: read error", name);
            break;
        }
    }
    if (rc) {
        free(b);
        return rc;
    }
    b[n] = '\0';
    *out = b;
    if (len) *len = n;
    return CF_OK;
}

int file_read_all(const char *path, size_t max, char **out, size_t *len, cf_err *err) {
    *out = NULL;
    if (len) *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return cf_fail_errno(err, CF_EINPUT, "%s: cannot open", path);
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
        fclose(f);
        return cf_fail(err, CF_EINPUT, "%s: a folder, not a file", path);
    }
    int rc = file_read_stream(f, path, max, out, len, err);
    fclose(f);
    return rc;
}

void file_dir_of(const char *path, char *dir, size_t cap) {
    const char *slash = strrchr(path, '/');
    if (!slash) snprintf(dir, cap, ".");
    else if (slash == path) snprintf(dir, cap, "/");
    else snprintf(dir, cap, "%.*s", (int)(slash - path), path);
}

/* The folder that holds path, and the bytes free on its filesystem (0 when it cannot be asked). */
static int room_of(const char *path, char *dir, size_t cap, uint64_t *room) {
    file_dir_of(path, dir, cap);
    struct statvfs fs;
    if (statvfs(dir, &fs) != 0) return 0;
    *room = (uint64_t)fs.f_bavail * fs.f_frsize;
    return 1;
}

const char *file_size_str(uint64_t n, char *buf, size_t cap) {
    if (n >= (uint64_t)1 << 30) snprintf(buf, cap, "%.2f GiB", (double)n / (double)((uint64_t)1 << 30));
    else snprintf(buf, cap, "%.1f MiB", (double)n / (double)((uint64_t)1 << 20));
    return buf;
}

int file_room_up_front(const char *path, uint64_t need, const char *what, const char *override, FILE *say,
                       cf_err *err) {
    char dir[4096], a[32], b[32];
    uint64_t room = 0;
    if (!room_of(path, dir, sizeof dir, &room)) return CF_OK;
    if (say) fprintf(say, "clinfm: %s needs about %s on %s, %s free\n", what, file_size_str(need, a, sizeof a), dir,
                     file_size_str(room, b, sizeof b));
    if (room < need)
        return cf_fail(err, CF_EINPUT, "%s: needs about %s free to write %s, %s are free; free some space%s%s",
                       dir, file_size_str(need, a, sizeof a), what, file_size_str(room, b, sizeof b),
                       override ? ", write elsewhere, or skip this estimate with " : " or write elsewhere",
                       override ? override : "");
    return CF_OK;
}
