/* Data-parallel training across processes: the thin layer between `clinfm train` and MPI.
 *
 * Every MPI call of clinfm lives in dist.c. A process started by mpirun/mpiexec (or srun with
 * PMI/PMIx), or given `--dist mpi`, joins MPI_COMM_WORLD; any other process is a world of one
 * in which every function here is a cheap no-op, so the ordinary binary never initialises MPI
 * and behaves, bit for bit, as if this module did not exist.
 *
 * Collectives must be called by every rank in the same order. MPI's default error handler is
 * kept (an MPI failure aborts the whole job), and dist_abort ends every rank at once, so an
 * error on one rank can never leave the others waiting in a collective. */
#ifndef CLINFM_MODEL_DIST_H
#define CLINFM_MODEL_DIST_H

#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

/* Decides whether this process is one of several and, if so, initialises MPI. Removes a
 * `--dist auto|mpi` (or `--dist=...`) option from argv, wherever it is, so the caller's own
 * option parser never sees it: `auto` (the default) joins MPI only when a launcher's
 * environment says so (OMPI_COMM_WORLD_SIZE, PMI_SIZE or PMIX_RANK), `mpi` always does. May
 * be called more than once; only the first call initialises. CF_EINPUT for a bad --dist. */
int dist_init(int *argc, char ***argv, cf_err *err);
/* 1 once MPI has been initialised by dist_init (even with one rank), else 0. */
int dist_active(void);
/* This process's rank in [0, dist_size()), 0 without MPI. */
int dist_rank(void);
/* Number of ranks, 1 without MPI. */
int dist_size(void);
/* Ranks sharing this machine (MPI_COMM_TYPE_SHARED), 1 without MPI: for dividing the cores. */
int dist_local_size(void);

/* Element-wise mean over ranks of buf (n floats), in place on every rank. Done in chunks of at
 * most INT_MAX elements, since MPI counts are ints. */
int dist_allreduce_mean(float *buf, size_t n, cf_err *err);
/* Element-wise sum over ranks of buf (n doubles), in place on every rank. */
int dist_allreduce_sum_double(double *buf, size_t n, cf_err *err);
/* Whether every rank passed the same n values: *first_diff is -1 when they all agree, else the
 * index of the first value on which some ranks differ (the same answer on every rank; an
 * element-wise min and max over ranks, compared). */
int dist_agree_u64(const uint64_t *vals, size_t n, int *first_diff, cf_err *err);
/* The largest status over ranks: every rank passes its own CF_* code and all return the worst,
 * so that all ranks leave a phase together when any one of them failed in it. */
int dist_max_status(int status);
/* Copies bytes from rank root's buf to every other rank's buf. */
int dist_bcast(void *buf, size_t bytes, int root, cf_err *err);
void dist_barrier(void);

/* Machines that share no filesystem: makes rank 0's file at path readable on every rank.
 * Collective. Each rank compares a fingerprint of its own file at the same path with rank 0's
 * (size and BLAKE2b-256 of the first `fingerprint_bytes` bytes; 0: of the whole file); equal
 * (a shared filesystem, or a copy received before) costs nothing more. A rank whose copy
 * differs or is missing receives rank 0's bytes: with keep, written atomically at path (the
 * parent folder must exist), so the next run finds it; without, into an anonymous scratch file
 * in scratch_dir, kept open as *fd_out (the caller closes it) and named in local as
 * /proc/self/fd/N. local (cap bytes) is the path this rank should read. *received tells
 * whether bytes came. Every rank takes part to the end even after a local failure, so none is
 * left waiting; CF_EINPUT on every rank when rank 0 cannot read its file. */
int dist_share_file(const char *path, size_t fingerprint_bytes, int keep, const char *scratch_dir, char *local,
                    size_t cap, int *fd_out, int *received, cf_err *err);
/* MPI_Finalize when MPI was initialised; harmless otherwise and when called twice. */
void dist_finalize(void);
/* Ends every rank of the job with this exit code (MPI_Abort) when MPI is active. Without MPI
 * there is no other rank to end: it returns code, which the caller returns up to main (no
 * exit() outside main). */
int dist_abort(int code);

/* A 64-bit checksum (FNV-1a over 64-bit words) of n bytes, for checking that ranks hold the
 * same parameters; not cryptographic. */
uint64_t dist_checksum64(const void *data, size_t n, uint64_t seed);

/* Tests only: the largest count one MPI call may carry (default INT_MAX), so that chunking
 * can be exercised with small buffers. */
void dist__set_max_chunk(size_t n);

#endif
