/* Whole files into memory: the one reader for the small files clinfm loads at once (task files,
 * mapping and rule files, configurations, heads, vocabularies, annotated corpora, a note on
 * standard input). Large inputs (tables, stores, shards) are streamed or mapped instead.
 *
 * The bytes come back NUL-terminated (out[len] == 0) in memory the caller frees; len may be NULL
 * for text. A size cap
 * keeps a wrong path (a store, /dev/zero) from filling the memory; 0 means no cap. Messages name
 * the file: "PATH: cannot open: <reason>", "PATH: larger than N bytes", "PATH: read error". */
#ifndef CLINFM_UTIL_FILE_H
#define CLINFM_UTIL_FILE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "util/err.h"

/* Reads the file at path. A file that is not a regular file (a folder) is CF_EINPUT. */
int file_read_all(const char *path, size_t max, char **out, size_t *len, cf_err *err);
/* Reads an open stream to its end (standard input, a pipe); name is used in messages. */
int file_read_stream(FILE *f, const char *name, size_t max, char **out, size_t *len, cf_err *err);

/* Maps the regular file at path read-only (a store, a token shard: read in place, not loaded);
 * what names the kind of file in messages ("PATH: cannot open WHAT", "PATH: not a clinfm WHAT
 * (too short or not a file)" when it holds fewer than min bytes). Release with munmap(*map, *len). */
int file_map(const char *path, const char *what, size_t min, void **map, size_t *len, cf_err *err);
/* The same, keeping the file open in *fd (the caller closes it): for reads of parts of the file into
 * the caller's own memory (pread) from the very file that is mapped, whatever happens to the path. */
int file_map_fd(const char *path, const char *what, size_t min, void **map, size_t *len, int *fd, cf_err *err);

/* The folder that holds path, in dir: "." for a bare name, "/" for a file at the root. */
void file_dir_of(const char *path, char *dir, size_t cap);

/* The up-front check of a command that writes a big output (ingest's store, deid's copy, vocab's
 * token shards, an export), before anything is written: prints "clinfm: WHAT needs about X GiB on
 * DIR, Y GiB free" on say (NULL: silent), then refuses (CF_EINPUT) when the filesystem holding
 * path has fewer than need bytes free: "DIR: needs about X free to write WHAT, Y are free; free
 * some space or write elsewhere", naming override, the option that skips an estimate ("--room-check
 * off"), when there is one (NULL: the need is exact, nothing to skip). A filesystem that cannot be
 * asked passes: the write itself will then say what is wrong. */
int file_room_up_front(const char *path, uint64_t need, const char *what, const char *override, FILE *say,
                       cf_err *err);
/* "1.23 GiB" or "45.6 MiB" for n bytes, in buf. */
const char *file_size_str(uint64_t n, char *buf, size_t cap);

#endif
