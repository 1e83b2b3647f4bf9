/* Streaming CSV reader (RFC 4180) over plain or gzip-compressed files.
 *
 * Reads one record at a time from a file of any size in bounded memory. Fields are separated by
 * commas, or by another byte chosen at open (csv_open_sep: '|', tab). Compression is detected
 * from the gzip magic bytes, not the file name, and inflated with zlib as the file is read.
 * Accepted: quoted fields with "" escapes, embedded commas, CR, LF and CRLF inside quotes, CRLF or
 * LF record ends, a final record without a line end, a UTF-8 byte-order mark at the start (dropped),
 * empty fields (length 0) and arbitrary UTF-8. Rejected with an error naming the file and line:
 * a quote that is never closed, characters between a closing quote and the next separator, a
 * record longer than CSV_MAX_RECORD bytes, a NUL byte, a corrupt gzip stream.
 * Blank lines (a line end alone) are skipped and counted, never returned as records.
 *
 * For parsing on several threads, csv_next_chunk cuts the rest of the input (after any records
 * csv_next has returned, the header say) into chunks of whole records, decompressing as it goes;
 * a chunk reader (csv_open_chunk) then yields exactly the records, line numbers and errors the
 * sequential reader would have yielded for those bytes, so chunks can be parsed in any order and
 * their results put back in chunk order. */
#ifndef CLINFM_INGEST_CSV_H
#define CLINFM_INGEST_CSV_H

#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

#define CSV_MAX_RECORD (64u << 20)

typedef struct csv_reader csv_reader;

typedef struct {
    size_t nfields;
    char **fields;        /* (nfields) unescaped, NUL-terminated; valid until the next csv_next */
    const size_t *lens;   /* (nfields) byte lengths */
    uint64_t line;        /* 1-based physical line on which the record starts */
} csv_record;

/* Opens path ("-" is not accepted). The separator is ','. */
int csv_open(csv_reader **out, const char *path, cf_err *err);
/* The same with another one-byte field separator ('|', '\t', ';'); a quote, CR, LF or NUL is
 * refused. Quoting rules are unchanged. */
int csv_open_sep(csv_reader **out, const char *path, char sep, cf_err *err);
/* Changes the separator before the first csv_next (tests and the fuzzer use it on buffers). */
void csv_set_separator(csv_reader *r, char sep);
/* Opens an in-memory buffer (used by tests and the fuzzer); name appears in messages. */
int csv_open_buffer(csv_reader **out, const char *name, const char *data, size_t len, cf_err *err);
/* Returns 1 and fills rec on a record, 0 at end of input, or -1 with err set (CF_EINPUT for
 * malformed input, CF_EINTERNAL for I/O failures). After -1 the reader may not be used again. */
int csv_next(csv_reader *r, csv_record *rec, cf_err *err);
/* Bytes consumed from the underlying file so far (compressed bytes for gzip) and its size, for
 * progress lines. */
/* A run of whole records cut from a reader's input by csv_next_chunk. */
typedef struct {
    char *data;           /* len bytes, then zeroed slack the parser needs; malloc'd */
    size_t len;
    uint64_t first_line;  /* physical line on which data[0] lies */
    int last;             /* the input ends after this chunk (it may end without a line end) */
    int src_rc;           /* for the last chunk: the source's error after these bytes, or CF_OK */
    char src_msg[256];
} csv_chunk;

/* Cuts the next chunk of about target bytes (more when a record is longer) at a record boundary
 * of the reader's remaining input. Boundaries follow the parser's own quoting rules, so a line end
 * inside a quoted field never cuts. Returns 1 with *c filled (its data is the caller's, to give
 * to csv_open_chunk or free), 0 at the end of input, -1 with err set (out of memory). A source
 * error (a corrupt gzip stream) is not returned here: it travels in the last chunk, to be reported
 * by its chunk reader after the records that precede it, at the line where it happens. After the
 * first csv_next_chunk, csv_next may not be called on r. */
int csv_next_chunk(csv_reader *r, size_t target, csv_chunk *c, cf_err *err);
/* A reader of one chunk's records (name appears in messages; sep as the source's). Takes c->data
 * whatever it returns. */
int csv_open_chunk(csv_reader **out, const char *name, char sep, csv_chunk *c, cf_err *err);
void csv_chunk_free(csv_chunk *c);

/* The bytes a reader of path would yield, without reading it all: the file's size, or for a
 * gzip file an estimate. Its first 16 KiB are inflated (exact when that is the whole file) to
 * measure the compression ratio. The last member's trailer holds that member's size modulo 4 GiB:
 * it is lifted by the multiple of 4 GiB closest to size * ratio and taken when no member ended in
 * the first 16 KiB and it lies within 1.5x of size * ratio; otherwise (a file of many members,
 * or a ratio that changes) the larger of size * ratio and the trailer is taken. */
int csv_input_size(const char *path, uint64_t *bytes, cf_err *err);

uint64_t csv_bytes_read(const csv_reader *r);
uint64_t csv_file_size(const csv_reader *r);
uint64_t csv_blank_lines(const csv_reader *r);
const char *csv_name(const csv_reader *r);
void csv_close(csv_reader *r);

#endif
