/* MPI behind the dist.h interface: launch detection, the few collectives data-parallel training
 * needs, and a world of one when the process was not started by an MPI launcher.
 *
 * Why detection instead of always calling MPI_Init: initialising Open MPI in a process that no
 * launcher started spawns helper daemons, opens sockets and takes a second or so; a plain
 * `clinfm train` must not pay for (or depend on) any of that. */
#include "model/dist.h"

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <mpi.h>
#include <sodium.h>

#include "util/atomic_file.h"

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

/* Sums n values of type t (elem bytes each) over the ranks in place, in chunks of at most
 * g_max_chunk (MPI counts are ints); what names the call in the error. */
static int allreduce_sum(void *buf, size_t n, size_t elem, MPI_Datatype t, const char *what, cf_err *err) {
    for (size_t off = 0; off < n; off += g_max_chunk) {
        size_t k = n - off < g_max_chunk ? n - off : g_max_chunk;
        if (MPI_Allreduce(MPI_IN_PLACE, (char *)buf + off * elem, (int)k, t, MPI_SUM, MPI_COMM_WORLD) != MPI_SUCCESS)
            return mpi_fail(err, what);
    }
    return CF_OK;
}

int dist_allreduce_mean(float *buf, size_t n, cf_err *err) {
    if (!dist_active() || g_size == 1) return CF_OK;
    int rc = allreduce_sum(buf, n, sizeof *buf, MPI_FLOAT, "allreduce (float sum)", err);
    if (rc) return rc;
    const float inv = (float)g_size;
    for (size_t i = 0; i < n; i++) buf[i] /= inv;
    return CF_OK;
}

int dist_allreduce_sum_double(double *buf, size_t n, cf_err *err) {
    if (!dist_active() || g_size == 1) return CF_OK;
    return allreduce_sum(buf, n, sizeof *buf, MPI_DOUBLE, "allreduce (double sum)", err);
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

/* The file's size and BLAKE2b-256 of its first n bytes (0: all); 0 when it cannot be read. */
static int file_fingerprint(const char *path, size_t n, uint64_t *bytes, unsigned char h[32]) {
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) return 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    crypto_generichash_state gs;
    crypto_generichash_init(&gs, NULL, 0, 32);
    unsigned char buf[1 << 16];
    size_t want = n ? n : (size_t)st.st_size, got = 0;
    int ok = 1;
    while (got < want) {
        size_t k = want - got < sizeof buf ? want - got : sizeof buf;
        ssize_t r = read(fd, buf, k);
        if (r <= 0) {
            ok = r == 0 && n; /* a file shorter than n bytes: fingerprint what there is */
            break;
        }
        crypto_generichash_update(&gs, buf, (size_t)r);
        got += (size_t)r;
    }
    close(fd);
    crypto_generichash_final(&gs, h, 32);
    *bytes = (uint64_t)st.st_size;
    return ok;
}

int dist_share_file(const char *path, size_t fingerprint_bytes, int keep, const char *scratch_dir, char *local,
                    size_t cap, int *fd_out, int *received, cf_err *err) {
    *fd_out = -1;
    *received = 0;
    snprintf(local, cap, "%s", path);
    if (!dist_active() || g_size == 1) return CF_OK;
    struct {
        uint64_t bytes;
        unsigned char h[32];
        int32_t ok, pad;
    } mine, root;
    memset(&mine, 0, sizeof mine);
    mine.ok = file_fingerprint(path, fingerprint_bytes, &mine.bytes, mine.h);
    root = mine;
    int rc = dist_bcast(&root, sizeof root, 0, err);
    if (rc) return rc;
    if (!root.ok) return cf_fail(err, CF_EINPUT, "%s: rank 0 cannot read it", path);
    int need = g_rank != 0 && (!mine.ok || mine.bytes != root.bytes || memcmp(mine.h, root.h, sizeof mine.h));
    int any = 0;
    if (MPI_Allreduce(&need, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD) != MPI_SUCCESS) return mpi_fail(err, "reduce");
    if (!any) return CF_OK;

    /* Rank 0 streams the file in chunks; ranks that have it already receive and drop them. */
    int lrc = CF_OK, in = -1, out = -1;
    atomic_file af;
    af.fd = -1;
    if (g_rank == 0 && (in = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        lrc = cf_fail_errno(err, CF_EINPUT, "%s: cannot open it to send", path);
    if (need) {
        if (keep) {
            if ((lrc = atomic_file_open(&af, path, err)) == CF_OK) out = af.fd;
        } else {
            lrc = scratch_file_open(scratch_dir, err, &out);
        }
    }
    const size_t chunk = (size_t)64 << 20;
    char *buf = malloc(root.bytes < chunk ? (root.bytes ? root.bytes : 1) : chunk);
    if (!buf) {
        /* Without a buffer this rank cannot take part: end the job rather than hang it. */
        fprintf(stderr, "clinfm: rank %d: out of memory receiving %s\n", g_rank, path);
        MPI_Abort(MPI_COMM_WORLD, CF_EINTERNAL);
        return CF_EINTERNAL;
    }
    for (uint64_t off = 0; off < root.bytes; off += chunk) {
        size_t k = root.bytes - off < chunk ? (size_t)(root.bytes - off) : chunk;
        if (g_rank == 0 && lrc == CF_OK) {
            size_t got = 0;
            while (got < k) {
                ssize_t r = pread(in, buf + got, k - got, (off_t)(off + got));
                if (r <= 0) break;
                got += (size_t)r;
            }
            if (got < k) lrc = cf_fail(err, CF_EINPUT, "%s: changed while being sent", path);
        }
        if ((rc = dist_bcast(buf, k, 0, err))) {
            free(buf);
            return rc; /* MPI's own failure ends the job anyway */
        }
        if (need && lrc == CF_OK) lrc = write_all(out, buf, k, path, err);
    }
    free(buf);
    if (in >= 0) close(in);
    /* Rank 0's read status decides for everyone: what came may be garbage. */
    int32_t st0 = g_rank == 0 ? lrc : 0;
    if ((rc = dist_bcast(&st0, sizeof st0, 0, err))) return rc;
    if (st0 && !lrc) lrc = cf_fail(err, CF_EINPUT, "%s: rank 0 could not send it", path);
    if (need) {
        if (keep) {
            if (lrc == CF_OK) lrc = atomic_file_commit(&af, err);
            else if (af.fd >= 0) atomic_file_abort(&af);
        } else if (lrc == CF_OK) {
            *fd_out = out;
            snprintf(local, cap, "/proc/self/fd/%d", out);
        } else if (out >= 0) {
            close(out);
        }
        if (lrc == CF_OK) *received = 1;
    }
    return lrc;
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
