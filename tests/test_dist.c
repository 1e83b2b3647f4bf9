/* Tests of src/model/dist.c, the MPI layer of data-parallel training.
 *
 * In a plain process (no launcher) every collective must be an exact no-op and `--dist` must be
 * taken out of argv. When mpirun is installed, the test then starts itself under
 * `mpirun -np 2` in a child mode that checks the real collectives with a chunk size of 7
 * elements (so chunking is exercised), and once more in a mode where rank 1 fails while rank 0
 * waits in a barrier: the job must end with rank 1's code instead of hanging. */
#include "check.h"

#include <stdint.h>
#include <sys/wait.h>
#include <unistd.h>

#include "model/dist.h"

/* ------------------------------------------------------------------------------------------
 * one process */

static void test_single_process_noops(void) {
    cf_err err = {0};
    char a0[] = "train", a1[] = "--dist", a2[] = "auto", a3[] = "--steps", a4[] = "3", a5[] = "--dist=auto";
    char *args[] = {a0, a1, a2, a3, a4, a5, NULL};
    int argc = 6;
    char **argv = args;
    REQUIRE_EQ_INT(dist_init(&argc, &argv, &err), CF_OK);
    CHECK_EQ_INT(argc, 3);
    CHECK_EQ_STR(argv[0], "train");
    CHECK_EQ_STR(argv[1], "--steps");
    CHECK_EQ_STR(argv[2], "3");
    CHECK(argv[3] == NULL);
    CHECK_EQ_INT(dist_active(), 0);
    CHECK_EQ_INT(dist_rank(), 0);
    CHECK_EQ_INT(dist_size(), 1);
    CHECK_EQ_INT(dist_local_size(), 1);

    /* The mean over one rank is the buffer itself, bit for bit (no division by 1.0 rounding,
     * no NaN canonicalisation). */
    float f[5] = {1.5f, -0.1f, 3e-38f, 1e30f, NAN};
    float f0[5];
    memcpy(f0, f, sizeof f);
    CHECK_EQ_INT(dist_allreduce_mean(f, 5, &err), CF_OK);
    CHECK(memcmp(f, f0, sizeof f) == 0);
    double d[2] = {2.25, -7};
    CHECK_EQ_INT(dist_allreduce_sum_double(d, 2, &err), CF_OK);
    CHECK(d[0] == 2.25 && d[1] == -7);
    uint64_t v[3] = {1, 2, 3};
    int first_diff = 99;
    CHECK_EQ_INT(dist_agree_u64(v, 3, &first_diff, &err), CF_OK);
    CHECK_EQ_INT(first_diff, -1);
    CHECK_EQ_INT(dist_max_status(CF_EINPUT), CF_EINPUT);
    CHECK_EQ_INT(dist_max_status(CF_OK), CF_OK);
    char buf[4] = "abc";
    CHECK_EQ_INT(dist_bcast(buf, 4, 0, &err), CF_OK);
    CHECK_EQ_STR(buf, "abc");
    dist_barrier();
    dist_finalize(); /* harmless without MPI */
    CHECK_EQ_INT(dist_size(), 1);
}

static void test_bad_dist_option(void) {
    cf_err err = {0};
    char a0[] = "train", a1[] = "--dist", a2[] = "tcp";
    char *args[] = {a0, a1, a2, NULL};
    int argc = 3;
    char **argv = args;
    CHECK_EQ_INT(dist_init(&argc, &argv, &err), CF_EINPUT);
    CHECK_CONTAINS(err.msg, "--dist expects auto or mpi");
    char b0[] = "train", b1[] = "--dist";
    char *args2[] = {b0, b1, NULL};
    argc = 2;
    argv = args2;
    memset(&err, 0, sizeof err);
    CHECK_EQ_INT(dist_init(&argc, &argv, &err), CF_EINPUT);
    CHECK_CONTAINS(err.msg, "--dist");
    /* After "--", nothing is taken out. */
    char c0[] = "train", c1[] = "--", c2[] = "--dist", c3[] = "bogus";
    char *args3[] = {c0, c1, c2, c3, NULL};
    argc = 4;
    argv = args3;
    CHECK_EQ_INT(dist_init(&argc, &argv, &err), CF_OK);
    CHECK_EQ_INT(argc, 4);
    CHECK_EQ_INT(dist_active(), 0);
}

static void test_checksum(void) {
    float a[33], b[33];
    for (int i = 0; i < 33; i++) a[i] = b[i] = (float)i * 0.37f;
    uint64_t h = dist_checksum64(a, sizeof a, 0);
    CHECK(h == dist_checksum64(b, sizeof b, 0));
    CHECK(h != dist_checksum64(a, sizeof a, 1)); /* the seed matters */
    CHECK(h != dist_checksum64(a, sizeof a - 1, 0));
    /* One flipped bit anywhere, in a whole word or in the tail, changes the checksum. */
    for (size_t byte = 0; byte < sizeof b; byte += 13) {
        unsigned char *p = (unsigned char *)b;
        p[byte] ^= 0x10;
        CHECK(h != dist_checksum64(b, sizeof b, 0));
        p[byte] ^= 0x10;
    }
    unsigned char *p = (unsigned char *)b;
    p[sizeof b - 1] ^= 1;
    CHECK(h != dist_checksum64(b, sizeof b, 0));
}

/* ------------------------------------------------------------------------------------------
 * under mpirun (child modes) */

/* Fills path with n bytes of a pattern that depends on seed. */
static int write_pattern(const char *path, size_t n, int seed) {
    FILE *f = fopen(path, "wb");
    if (!f) return 1;
    for (size_t i = 0; i < n; i++) fputc((int)((i * 7 + (size_t)seed) & 0xff), f);
    return fclose(f) != 0;
}

/* 1 unless path holds exactly n bytes of the pattern of seed. */
static int differs(const char *path, size_t n, int seed) {
    FILE *f = fopen(path, "rb");
    if (!f) return 1;
    size_t i = 0;
    int c, bad = 0;
    while ((c = fgetc(f)) != EOF) bad |= i >= n || c != (int)((i * 7 + (size_t)seed) & 0xff), i++;
    fclose(f);
    return bad || i != n;
}

/* dist_share_file between ranks that each see their own path (as machines without a shared
 * filesystem would): rank 1 receives a file it lacks, kept or in a scratch file; nothing is
 * sent when its copy matches; a copy differing in the fingerprinted header is replaced; a file
 * rank 0 lacks fails on every rank. Returns 1 when something did not hold. */
static int share_files(int r) {
    const char *dir = getenv("CLINFM_DIST_TEST_DIR");
    if (!dir) return 1;
    cf_err err = {0};
    char p[4200], q[4200], local[4300];
    int fd, got, bad = 0;
    snprintf(p, sizeof p, "%s/share.%d", dir, r);
    snprintf(q, sizeof q, "%s/scratch.%d", dir, r);
    unlink(p);
    unlink(q);
    if (r == 0) bad |= write_pattern(p, 1000, 3) | write_pattern(q, 300, 5);
    bad |= dist_share_file(p, 0, 1, dir, local, sizeof local, &fd, &got, &err) != CF_OK;
    bad |= got != (r == 1) || fd != -1 || strcmp(local, p) || differs(p, 1000, 3);
    bad |= dist_share_file(p, 0, 1, dir, local, sizeof local, &fd, &got, &err) != CF_OK || got;
    if (r == 1) bad |= write_pattern(p, 1000, 4); /* every byte differs, the size does not */
    bad |= dist_share_file(p, 256, 1, dir, local, sizeof local, &fd, &got, &err) != CF_OK;
    bad |= got != (r == 1) || differs(p, 1000, 3);
    bad |= dist_share_file(q, 0, 0, dir, local, sizeof local, &fd, &got, &err) != CF_OK;
    if (r == 1) {
        bad |= !got || fd < 0 || strncmp(local, "/proc/self/fd/", 14) || differs(local, 300, 5);
        bad |= access(q, F_OK) == 0; /* a scratch copy leaves no file behind */
        if (fd >= 0) close(fd);
    }
    snprintf(q, sizeof q, "%s/absent", dir);
    bad |= dist_share_file(q, 0, 1, dir, local, sizeof local, &fd, &got, &err) != CF_EINPUT;
    if (bad) fprintf(stderr, "child rank %d: dist_share_file did not hold\n", r);
    return bad;
}

/* Each rank checks the collectives; the exit status says whether all held. */
static int mpi_child(int argc, char **argv) {
    cf_err err = {0};
    if (dist_init(&argc, &argv, &err) != CF_OK || !dist_active() || dist_size() != 2) {
        fprintf(stderr, "child: not a 2-rank MPI job\n");
        return 1;
    }
    const int r = dist_rank();
    int bad = 0;
    dist__set_max_chunk(7);
    float f[100];
    for (int i = 0; i < 100; i++) f[i] = (float)(r * 1000 + i); /* mean over ranks: 500 + i */
    bad |= dist_allreduce_mean(f, 100, &err) != CF_OK;
    for (int i = 0; i < 100; i++) bad |= f[i] != (float)(500 + i);
    double d[9];
    for (int i = 0; i < 9; i++) d[i] = (r + 1) * 0.5 + i;
    bad |= dist_allreduce_sum_double(d, 9, &err) != CF_OK;
    for (int i = 0; i < 9; i++) bad |= d[i] != 1.5 + 2 * i;
    uint64_t v[10];
    for (int i = 0; i < 10; i++) v[i] = 1000u + (uint64_t)i;
    int first = 99;
    bad |= dist_agree_u64(v, 10, &first, &err) != CF_OK || first != -1;
    if (r == 1) v[8] += 1;
    if (r == 1) v[9] -= 1;
    bad |= dist_agree_u64(v, 10, &first, &err) != CF_OK || first != 8;
    bad |= dist_max_status(r == 1 ? CF_EINTERNAL : CF_OK) != CF_EINTERNAL;
    bad |= dist_max_status(CF_OK) != CF_OK;
    char msg[50];
    for (int i = 0; i < 50; i++) msg[i] = (char)(r == 1 ? 'a' + i % 26 : 0);
    bad |= dist_bcast(msg, sizeof msg, 1, &err) != CF_OK;
    for (int i = 0; i < 50; i++) bad |= msg[i] != (char)('a' + i % 26);
    bad |= share_files(r);
    dist_barrier();
    if (bad) fprintf(stderr, "child rank %d: a collective gave a wrong result\n", r);
    dist_finalize();
    return bad;
}

/* Rank 1 fails while rank 0 waits for it: dist_abort must end both. */
static int mpi_abort_child(int argc, char **argv) {
    cf_err err = {0};
    if (dist_init(&argc, &argv, &err) != CF_OK || dist_size() != 2) return 1;
    if (dist_rank() == 1) return dist_abort(3);
    dist_barrier();
    /* Not reached when the abort works: rank 0 would otherwise wait above forever. */
    dist_finalize();
    return 0;
}

static int find_mpirun(char *out, size_t n) {
    const char *path = getenv("PATH");
    if (!path) return 0;
    char dirs[4096];
    snprintf(dirs, sizeof dirs, "%s", path);
    for (char *save = NULL, *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
        snprintf(out, n, "%s/mpirun", d);
        if (access(out, X_OK) == 0) return 1;
    }
    return 0;
}

/* Runs this test binary under `mpirun -np 2` in a child mode; returns the shell's status. */
static int run_under_mpirun(const char *mpirun, const char *mode) {
    char self[4096], cmd[9000];
    ssize_t k = readlink("/proc/self/exe", self, sizeof self - 1);
    if (k <= 0) return -1;
    self[k] = '\0';
    snprintf(cmd, sizeof cmd, "timeout 60 '%s' -np 2 --oversubscribe '%s' %s > '%s/mpi_%s.log' 2>&1", mpirun, self,
             mode, check_tmpdir(), mode + 2);
    return system(cmd);
}

static void test_under_mpirun(void) {
    char mpirun[4200];
    if (!find_mpirun(mpirun, sizeof mpirun)) {
        fprintf(stderr, "  skipped: mpirun is not installed (scripts/deps.sh installs openmpi-bin)\n");
        return;
    }
    if (geteuid() == 0) {
        setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 1);
        setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 1);
    }
    /* Under ASan, Open MPI's own allocations that live until exit are not ours to report
     * (tests/lsan_openmpi.supp). Its libraries have no frame pointers, so only the slow
     * unwinder finds their frames in a leak's stack for the suppressions to match. */
    char opt[4200];
    snprintf(opt, sizeof opt, "suppressions=%s/tests/lsan_openmpi.supp:print_suppressions=0", check_root());
    setenv("LSAN_OPTIONS", opt, 1);
    const char *asan = getenv("ASAN_OPTIONS");
    snprintf(opt, sizeof opt, "%s%sfast_unwind_on_malloc=0", asan ? asan : "", asan && *asan ? ":" : "");
    setenv("ASAN_OPTIONS", opt, 1);
    setenv("CLINFM_DIST_TEST_DIR", check_tmpdir(), 1);
    int st = run_under_mpirun(mpirun, "--mpi-child");
    CHECK(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    if (!(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0)) {
        char cmd[4400];
        snprintf(cmd, sizeof cmd, "cat '%s/mpi_mpi-child.log' >&2", check_tmpdir());
        if (system(cmd)) {}
    }
    st = run_under_mpirun(mpirun, "--mpi-abort-child");
    /* Non-zero, and not timeout's 124: the waiting rank was ended. */
    CHECK(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) != 0 && WEXITSTATUS(st) != 124);
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--mpi-child") == 0) return mpi_child(argc, argv);
    if (argc > 1 && strcmp(argv[1], "--mpi-abort-child") == 0) return mpi_abort_child(argc, argv);
    /* This process itself must not be an MPI rank: it checks the one-process paths. */
    unsetenv("OMPI_COMM_WORLD_SIZE");
    unsetenv("PMI_SIZE");
    unsetenv("PMIX_RANK");
    RUN(test_single_process_noops);
    RUN(test_bad_dist_option);
    RUN(test_checksum);
    RUN(test_under_mpirun);
    return check_summary();
}
