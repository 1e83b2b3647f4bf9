/* Whole files into memory; see file.h. */
#include "util/file.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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
