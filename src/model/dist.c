/* MPI behind the dist.h interface: launch detection, the few collectives data-parallel training
 * needs, and a world of one when the process was not started by an MPI launcher.
 *
 * Why detection instead of always calling MPI_Init: initialising Open MPI in a process that no
 * launcher started spawns helper daemons, opens sockets and takes a second or so; a plain
 * `clinfm train` must not pay for (or depend on) any of that. */
#include "model/dist.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mpi.h>

static int g_active;        /* MPI_Init done by us */
static int g_finalized;
static int g_rank, g_size = 1, g_local_size = 1;
static size_t g_max_chunk = INT_MAX;

void dist__set_max_chunk(size_t n) { g_max_chunk = n >= 1 && n <= INT_MAX ? n : INT_MAX; }

/* Set by mpirun/mpiexec (Open MPI), by MPICH's Hydra and Slurm's PMI, or by PMIx launchers. */
static int launched_by_mpi(void) {
    static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        const char *v = getenv(vars[i]);
        if (v && *v) return 1;
    }
    return 0;
}

/* Takes --dist VALUE / --dist=VALUE out of argv; *mode: 0 auto, 1 mpi. */
static int strip_dist_option(int *argc, char ***argv, int *mode, cf_err *err) {
    char **av = *argv;
    int n = *argc, out = 0;
    *mode = 0;
    for (int i = 0; i < n; i++) {
        const char *val = NULL;
        int take = 0;
        if (i > 0 && strcmp(av[i], "--dist") == 0) {
            if (i + 1 >= n) return cf_fail(err, CF_EINPUT, "--dist expects auto or mpi");
            val = av[i + 1];
            take = 2;
        } else if (i > 0 && strncmp(av[i], "--dist=", 7) == 0) {
            val = av[i] + 7;
            take = 1;
        } else if (strcmp(av[i], "--") == 0) {
            /* Options end here; keep the rest as it is. */
            for (; i < n; i++) av[out++] = av[i];
            break;
        }
        if (!take) {
            av[out++] = av[i];
            continue;
        }
        if (strcmp(val, "auto") == 0) *mode = 0;
        else if (strcmp(val, "mpi") == 0) *mode = 1;
        else return cf_fail(err, CF_EINPUT, "--dist expects auto or mpi");
        i += take - 1;
    }
    if (out < n) av[out] = NULL;
    *argc = out;
    return CF_OK;
}

int dist_init(int *argc, char ***argv, cf_err *err) {
    int mode = 0;
    if (argc && argv && *argv) {
        int rc = strip_dist_option(argc, argv, &mode, err);
        if (rc) return rc;
    }
    if (g_active || g_finalized) return CF_OK;
    if (!mode && !launched_by_mpi()) return CF_OK;
    int provided = 0;
    /* Only the main thread calls MPI; OpenMP threads do the arithmetic in between. */
    if (MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
        return cf_fail(err, CF_EINTERNAL, "MPI_Init failed; check the MPI installation and launcher");
    g_active = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_size);
    MPI_Comm local;
    if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &local) == MPI_SUCCESS) {
        MPI_Comm_size(local, &g_local_size);
        MPI_Comm_free(&local);
    }
    return CF_OK;
}

int dist_active(void) { return g_active && !g_finalized; }
int dist_rank(void) { return g_rank; }
int dist_size(void) { return g_size; }
int dist_local_size(void) { return g_local_size; }

static int mpi_fail(cf_err *err, const char *what) {
    return cf_fail(err, CF_EINTERNAL, "MPI %s failed between ranks", what);
}

int dist_allreduce_mean(float *buf, size_t n, cf_err *err) {
    if (!dist_active() || g_size == 1) return CF_OK;
    for (size_t off = 0; off < n; off += g_max_chunk) {
        size_t k = n - off < g_max_chunk ? n - off : g_max_chunk;
        if (MPI_Allreduce(MPI_IN_PLACE, buf + off, (int)k, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD) != MPI_SUCCESS)
            return mpi_fail(err, "allreduce (float sum)");
    }
    const float inv = (float)g_size;
    for (size_t i = 0; i < n; i++) buf[i] /= inv;
    return CF_OK;
}

int dist_allreduce_sum_double(double *buf, size_t n, cf_err *err) {
    if (!dist_active() || g_size == 1) return CF_OK;
    for (size_t off = 0; off < n; off += g_max_chunk) {
        size_t k = n - off < g_max_chunk ? n - off : g_max_chunk;
        if (MPI_Allreduce(MPI_IN_PLACE, buf + off, (int)k, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD) != MPI_SUCCESS)
            return mpi_fail(err, "allreduce (double sum)");
    }
    return CF_OK;
}

int dist_agree_u64(const uint64_t *vals, size_t n, int *first_diff, cf_err *err) {
    *first_diff = -1;
    if (!dist_active() || g_size == 1 || n == 0) return CF_OK;
    uint64_t *lo = malloc(2 * n * sizeof *lo);
    if (!lo) return cf_fail(err, CF_EINTERNAL, "out of memory comparing ranks");
    uint64_t *hi = lo + n;
    memcpy(lo, vals, n * sizeof *lo);
    memcpy(hi, vals, n * sizeof *hi);
    int rc = CF_OK;
    for (size_t off = 0; off < n && !rc; off += g_max_chunk) {
        size_t k = n - off < g_max_chunk ? n - off : g_max_chunk;
        if (MPI_Allreduce(MPI_IN_PLACE, lo + off, (int)k, MPI_UINT64_T, MPI_MIN, MPI_COMM_WORLD) != MPI_SUCCESS ||
            MPI_Allreduce(MPI_IN_PLACE, hi + off, (int)k, MPI_UINT64_T, MPI_MAX, MPI_COMM_WORLD) != MPI_SUCCESS)
            rc = mpi_fail(err, "allreduce (min/max)");
    }
    for (size_t i = 0; i < n && !rc; i++)
        if (lo[i] != hi[i]) {
            *first_diff = (int)i;
            break;
        }
    free(lo);
    return rc;
}

int dist_max_status(int status) {
    if (!dist_active() || g_size == 1) return status;
    int worst = status;
    if (MPI_Allreduce(&status, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD) != MPI_SUCCESS) return CF_EINTERNAL;
    return worst;
}

int dist_bcast(void *buf, size_t bytes, int root, cf_err *err) {
    if (!dist_active() || g_size == 1) return CF_OK;
    char *p = buf;
    for (size_t off = 0; off < bytes; off += g_max_chunk) {
        size_t k = bytes - off < g_max_chunk ? bytes - off : g_max_chunk;
        if (MPI_Bcast(p + off, (int)k, MPI_BYTE, root, MPI_COMM_WORLD) != MPI_SUCCESS) return mpi_fail(err, "broadcast");
    }
    return CF_OK;
}

void dist_barrier(void) {
    if (dist_active() && g_size > 1) MPI_Barrier(MPI_COMM_WORLD);
}

void dist_finalize(void) {
    if (!dist_active()) return;
    MPI_Finalize();
    g_finalized = 1;
}

int dist_abort(int code) {
    fflush(stdout);
    fflush(stderr);
    if (dist_active()) MPI_Abort(MPI_COMM_WORLD, code ? code : CF_EINTERNAL);
    return code; /* a world of one: nothing else to end; the caller returns code to main */
}

uint64_t dist_checksum64(const void *data, size_t n, uint64_t seed) {
    const unsigned char *p = data;
    uint64_t h = 0xcbf29ce484222325ULL ^ seed;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        h = (h ^ w) * 0x100000001b3ULL;
        h ^= h >> 29;
    }
    for (; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ULL;
    return h ^ (uint64_t)n;
}
