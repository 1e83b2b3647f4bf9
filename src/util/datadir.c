/* Resolution of CLINFM_DATA and of clinfm's shipped files (see datadir.h). */
#include "util/datadir.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef CLINFM_SHAREDIR
#define CLINFM_SHAREDIR ""
#endif

const char *cf_data_dir(void) {
    const char *env = getenv("CLINFM_DATA");
    if (env && *env) return env;
    struct stat st;
    if (stat("../shared/data", &st) == 0 && S_ISDIR(st.st_mode)) return "../shared/data";
    return NULL;
}

static int exists_at(char *out, size_t cap, const char *base, const char *mid, const char *rel) {
    if (!base || !*base) return 0;
    int n = snprintf(out, cap, "%s%s/%s", base, mid, rel);
    if (n < 0 || (size_t)n >= cap) return 0;
    return access(out, R_OK) == 0;
}

int cf_share_path(const char *rel, char *out, size_t cap) {
    if (exists_at(out, cap, getenv("CLINFM_SHARE"), "", rel)) return 0;
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = '\0'; /* the binary's folder: PREFIX/bin or <checkout>/build */
            if (exists_at(out, cap, exe, "/../share/clinfm", rel)) return 0;
            if (exists_at(out, cap, exe, "/..", rel)) return 0;
        }
    }
    if (exists_at(out, cap, CLINFM_SHAREDIR, "", rel)) return 0;
    if (access(rel, R_OK) == 0) {
        snprintf(out, cap, "%s", rel);
        return 0;
    }
    snprintf(out, cap, "%s", rel);
    return -1;
}

void cf_share_resolve_named(const char *arg, const char *dir, const char *ext, char *out, size_t cap) {
    if (!arg || strchr(arg, '/') || access(arg, F_OK) == 0) {
        snprintf(out, cap, "%s", arg ? arg : "");
        return;
    }
    char rel[1024];
    size_t len = strlen(arg), el = strlen(ext);
    int has_ext = len > el && !strcmp(arg + len - el, ext);
    snprintf(rel, sizeof rel, "%s/%s%s", dir, arg, has_ext ? "" : ext);
    if (cf_share_path(rel, out, cap) != 0) snprintf(out, cap, "%s", arg);
}
