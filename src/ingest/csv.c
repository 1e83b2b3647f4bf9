/* Streaming CSV reader: RFC 4180 records out of plain or gzip files in bounded memory; see csv.h.
 *
 * All bytes of the current record live contiguously in one record buffer, so fields can point into
 * it: quoted fields are unescaped in place (escapes only ever shrink a field) and every field is
 * NUL-terminated by overwriting its separator. The parser is a small state machine that can stop
 * at any byte when the buffer runs dry; the partial record is then moved to the front of the
 * buffer, more input is appended, and parsing resumes where it stopped. The buffer doubles only
 * when a single record does not fit, up to CSV_MAX_RECORD.
 *
 * The common case, an unquoted field, is scanned 64 bytes at a time: a bit mask marks the bytes
 * that matter (comma, quote, and every byte <= 0x0d, which covers LF, CR and NUL; the rare other
 * control bytes are skipped as ordinary content), and the loop jumps from bit to bit, so its cost
 * is per field rather than per byte.
 *
 * gzip input (detected by its magic bytes) is inflated by a background thread into a ring of
 * large blocks, so decompression on one core overlaps parsing on the other. The thread and the
 * reader share the ring through one mutex and two condition variables; block contents are only
 * touched by the side that currently owns the block. csv_close stops and joins the thread. */
#include "ingest/csv.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#ifdef CLINFM_WITH_LIBDEFLATE
#include <libdeflate.h>
#endif

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "util/thread.h"

/* Slack after the data in the record buffer: room for the NUL after a last field that ends at
 * end of input, and for the 64-byte vector loads of the scanner, which may read past the data. */
#define CSV_PAD 64
/* A record's content plus its CRLF must fit in the buffer. */
#define CSV_MAX_CAP ((size_t)CSV_MAX_RECORD + 2)
/* Defence against memory amplification: a record of only commas would otherwise need 16 bytes
 * of field table per input byte. No real table has a million columns. */
#define CSV_MAX_FIELDS ((size_t)1 << 20)
#define CSV_FILE_BUF ((size_t)1 << 20)  /* initial record buffer (and read size) for files */
#define CSV_MEM_BUF ((size_t)16)        /* initial record buffer for in-memory input */
#define GZ_BLOCK ((size_t)1 << 20)
#define GZ_NBLOCK 4
#define GZ_INBUF ((size_t)256 << 10)
/* gzip files up to this compressed size, and whose output fits WHOLE_MAX_OUT, are inflated in
 * one go by libdeflate (about three times zlib's speed); larger ones stream through zlib. */
#define WHOLE_MAX_IN ((size_t)32 << 20)
#define WHOLE_MAX_OUT ((size_t)256 << 20)

enum { SRC_MEM, SRC_MEM_GZ, SRC_FD, SRC_FD_GZ, SRC_WHOLE, SRC_CHUNK };
enum { ST_START, ST_UNQ, ST_QUO, ST_AFTER };

/* zlib state shared by the in-memory and the threaded gzip sources. */
typedef struct {
    z_stream zs;
    int init;
    int member_done;   /* the last inflate call ended a gzip member */
    int in_eof;        /* no more compressed input */
    uint64_t in_total; /* compressed bytes handed to zlib so far */
} gz_state;

typedef struct {
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t filled;   /* producer -> consumer: a block (or the end) is ready */
    pthread_cond_t freed;    /* consumer -> producer: a block is free, or stop */
    char *blk[GZ_NBLOCK];
    size_t len[GZ_NBLOCK];
    uint64_t in_pos[GZ_NBLOCK]; /* compressed bytes consumed when the block was finished */
    unsigned head, count;       /* ring: blocks head .. head+count-1 are filled */
    int done, failed, stop;
    int fail_code;
    uint64_t end_pos;           /* compressed bytes consumed in all, once done or failed */
    char msg[256];
    /* producer only */
    int fd;
    unsigned char *in;
    gz_state gz;
    /* consumer only */
    int held;                   /* the consumer is reading block `head` */
    size_t off;
} gz_pipe;

struct csv_reader {
    char *name;
    int kind;
    char sep;           /* field separator, ',' unless csv_set_separator says otherwise */
    char *buf;          /* cap + CSV_PAD bytes */
    size_t cap, head, tail;
    int eof, started, failed;
    uint64_t line, blank;
    /* unquoted-scan mask window carried between records; see csv_next */
    size_t mb;
    uint64_t m;
    /* field table */
    size_t fcap;
    uint32_t *foff;     /* scratch: field offsets while the buffer moves */
    size_t *flen;
    char **fptr;
    /* sources */
    int fd;
    uint64_t fsize, nread;
    unsigned char *mem;
    size_t mem_len, mem_pos;
    unsigned piece;
    gz_state gz;
    gz_pipe *pipe;
    int pending_rc;     /* in-memory gzip: error to report after the bytes that preceded it */
    char src_msg[256];
    /* csv_next_chunk: [head, spos) is scanned, state sst there; [head, sbound) holds whole
     * records with sbound_lines line ends (slines up to spos) */
    int chunking, chunk_done, sst;
    size_t spos, sbound;
    uint64_t slines, sbound_lines;
    /* a chunk reader: the source error that follows its bytes (its chunk was the last) */
    int chunk_rc;
};

/* ---- byte-class masks ---------------------------------------------------------------------- */

#if defined(__SSE2__)
/* 16 bits for p[0..15]: the separator, '"' or any byte <= 0x0d. */
static inline uint64_t unq16(const char *p, __m128i sepv) {
    __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
    __m128i hit = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, sepv),
                                            _mm_cmpeq_epi8(v, _mm_set1_epi8('"'))),
                               _mm_cmpeq_epi8(_mm_min_epu8(v, _mm_set1_epi8(0x0d)), v));
    return (uint16_t)_mm_movemask_epi8(hit);
}
/* 16 bits for p[0..15]: '"', LF or NUL. */
static inline uint64_t quo16(const char *p) {
    __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
    __m128i hit = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('"')),
                                            _mm_cmpeq_epi8(v, _mm_set1_epi8('\n'))),
                               _mm_cmpeq_epi8(v, _mm_setzero_si128()));
    return (uint16_t)_mm_movemask_epi8(hit);
}
#endif

/* Bit i set when p[i] matters outside quotes: the separator, '"' (opens a quoted field when it is a
 * field's first byte) or any byte <= 0x0d, which covers LF, CR and NUL; the other control bytes
 * are false hits that the parser skips. Bits at and beyond n are cleared; 64 bytes are read
 * regardless (the buffer has CSV_PAD bytes of slack after the data). */
static inline uint64_t mask_unq(const char *p, size_t n, char sep) {
    uint64_t bits;
#if defined(__SSE2__)
    __m128i sepv = _mm_set1_epi8(sep);
    bits = unq16(p, sepv) | unq16(p + 16, sepv) << 16 | unq16(p + 32, sepv) << 32 | unq16(p + 48, sepv) << 48;
#else
    bits = 0;
    for (size_t i = 0; i < 64; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c == (unsigned char)sep || c == '"' || c <= 0x0d) bits |= (uint64_t)1 << i;
    }
#endif
    if (n < 64) bits &= ((uint64_t)1 << n) - 1;
    return bits;
}

/* Bit i set when p[i] matters inside a quoted field: '"', LF (line counting) or NUL. */
static inline uint64_t mask_quo(const char *p, size_t n) {
    uint64_t bits;
#if defined(__SSE2__)
    bits = quo16(p) | quo16(p + 16) << 16 | quo16(p + 32) << 32 | quo16(p + 48) << 48;
#else
    bits = 0;
    for (size_t i = 0; i < 64; i++) {
        char c = p[i];
        if (c == '"' || c == '\n' || c == '\0') bits |= (uint64_t)1 << i;
    }
#endif
    if (n < 64) bits &= ((uint64_t)1 << n) - 1;
    return bits;
}

/* Bit i set when p[i] can change the record-boundary scan's state: the separator, '"' or LF. */
static inline uint64_t mask_split(const char *p, size_t n, char sep) {
    uint64_t bits;
#if defined(__SSE2__)
    __m128i sepv = _mm_set1_epi8(sep), qv = _mm_set1_epi8('"'), lf = _mm_set1_epi8('\n');
    bits = 0;
    for (int k = 0; k < 4; k++) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(p + 16 * k));
        __m128i hit = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, sepv), _mm_cmpeq_epi8(v, qv)), _mm_cmpeq_epi8(v, lf));
        bits |= (uint64_t)(uint16_t)_mm_movemask_epi8(hit) << (16 * k);
    }
#else
    bits = 0;
    for (size_t i = 0; i < 64; i++)
        if (p[i] == sep || p[i] == '"' || p[i] == '\n') bits |= (uint64_t)1 << i;
#endif
    if (n < 64) bits &= ((uint64_t)1 << n) - 1;
    return bits;
}

/* ---- gzip ------------------------------------------------------------------------------------ */

static int gz_begin(gz_state *g, char *msg, size_t msgsz) {
    memset(&g->zs, 0, sizeof g->zs);
    /* 15 + 32: largest window, accept gzip (or zlib) headers automatically. */
    if (inflateInit2(&g->zs, 15 + 32) != Z_OK) {
        snprintf(msg, msgsz, "cannot initialise zlib");
        return CF_EINTERNAL;
    }
    g->init = 1;
    return CF_OK;
}

static void gz_end(gz_state *g) {
    if (g->init) inflateEnd(&g->zs);
    g->init = 0;
}

/* Inflates up to cap bytes into out. Reads more compressed input from fd (into inbuf) when zlib
 * has consumed what it had, unless fd < 0 (all input was given up front). Consecutive gzip
 * members are concatenated. Returns CF_OK with *got bytes (*got < cap only at the end of input,
 * then *end = 1), or an error code with msg set. */
static int gz_produce(gz_state *g, int fd, unsigned char *inbuf, size_t incap, char *out, size_t cap,
                      size_t *got, int *end, char *msg, size_t msgsz) {
    z_stream *zs = &g->zs;
    zs->next_out = (unsigned char *)out;
    zs->avail_out = (uInt)cap;
    *end = 0;
    int rc = CF_OK;
    while (zs->avail_out > 0) {
        if (zs->avail_in == 0 && !g->in_eof) {
            if (fd < 0) {
                g->in_eof = 1;
                continue;
            }
            ssize_t n = read(fd, inbuf, incap);
            if (n < 0) {
                if (errno == EINTR) continue;
                snprintf(msg, msgsz, "read failed: %s", strerror(errno));
                rc = CF_EINTERNAL;
                break;
            }
            if (n == 0) {
                g->in_eof = 1;
                continue;
            }
            zs->next_in = inbuf;
            zs->avail_in = (uInt)n;
            g->in_total += (uint64_t)n;
            continue;
        }
        if (g->member_done) {
            if (zs->avail_in == 0) { /* input ended right after a member: the normal end */
                *end = 1;
                break;
            }
            /* more bytes after a member: the next member of a multi-member file */
            if (inflateReset(zs) != Z_OK) {
                snprintf(msg, msgsz, "cannot reset zlib");
                rc = CF_EINTERNAL;
                break;
            }
            g->member_done = 0;
        }
        /* Called even with no input left: zlib may still hold output it could not write yet. */
        int zr = inflate(zs, Z_NO_FLUSH);
        if (zr == Z_STREAM_END) {
            g->member_done = 1;
        } else if (zr == Z_BUF_ERROR && zs->avail_in == 0) {
            /* no progress and no input: the file stops inside a member */
            snprintf(msg, msgsz, "truncated gzip data (the file ends inside a compressed member)");
            rc = CF_EINPUT;
            break;
        } else if (zr == Z_MEM_ERROR) {
            snprintf(msg, msgsz, "out of memory in zlib");
            rc = CF_EINTERNAL;
            break;
        } else if (zr != Z_OK) {
            /* Z_DATA_ERROR, Z_NEED_DICT, or Z_BUF_ERROR with input and output room left. zlib's
             * own message describes the stream structure, never the content. */
            snprintf(msg, msgsz, "corrupt gzip data (%s)", zs->msg ? zs->msg : "zlib cannot continue");
            rc = CF_EINPUT;
            break;
        }
    }
    *got = cap - zs->avail_out;
    return rc;
}

static void *gz_thread(void *arg) {
    gz_pipe *p = arg;
    for (;;) {
        pthread_mutex_lock(&p->mu);
        while (p->count == GZ_NBLOCK && !p->stop) pthread_cond_wait(&p->freed, &p->mu);
        if (p->stop) {
            pthread_mutex_unlock(&p->mu);
            return NULL;
        }
        unsigned idx = (p->head + p->count) % GZ_NBLOCK;
        pthread_mutex_unlock(&p->mu);

        /* The block at idx is not in the filled range, so the consumer does not touch it. */
        size_t got = 0;
        int end = 0;
        char msg[sizeof p->msg];
        int rc = gz_produce(&p->gz, p->fd, p->in, GZ_INBUF, p->blk[idx], GZ_BLOCK, &got, &end, msg,
                            sizeof msg);

        pthread_mutex_lock(&p->mu);
        if (got > 0) {
            p->len[idx] = got;
            p->in_pos[idx] = p->gz.in_total - p->gz.zs.avail_in;
            p->count++;
        }
        if (rc != CF_OK) {
            p->failed = 1;
            p->fail_code = rc;
            memcpy(p->msg, msg, sizeof p->msg);
        } else if (end) {
            p->done = 1;
        }
        int finished = p->failed || p->done;
        if (finished) p->end_pos = p->gz.in_total - p->gz.zs.avail_in;
        pthread_cond_signal(&p->filled);
        pthread_mutex_unlock(&p->mu);
        if (finished) return NULL;
    }
}

static void pipe_free(gz_pipe *p) {
    if (!p) return;
    for (int i = 0; i < GZ_NBLOCK; i++) free(p->blk[i]);
    free(p->in);
    gz_end(&p->gz);
    free(p);
}

/* Takes ownership of fd's reading from now on; prefix holds the n bytes already read from it. */
static int pipe_start(csv_reader *r, const unsigned char *prefix, size_t n, cf_err *err) {
    gz_pipe *p = cf_calloc(1, sizeof *p);
    if (!p) return cf_fail(err, CF_EINTERNAL, "%s: out of memory", r->name);
    p->fd = r->fd;
    p->in = cf_malloc(GZ_INBUF);
    int ok = p->in != NULL;
    for (int i = 0; i < GZ_NBLOCK && ok; i++) ok = (p->blk[i] = cf_malloc(GZ_BLOCK)) != NULL;
    if (!ok) {
        pipe_free(p);
        return cf_fail(err, CF_EINTERNAL, "%s: out of memory", r->name);
    }
    char msg[256];
    if (gz_begin(&p->gz, msg, sizeof msg) != CF_OK) {
        pipe_free(p);
        return cf_fail(err, CF_EINTERNAL, "%s: %s", r->name, msg);
    }
    memcpy(p->in, prefix, n);
    p->gz.zs.next_in = p->in;
    p->gz.zs.avail_in = (uInt)n;
    p->gz.in_total = n;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->filled, NULL);
    pthread_cond_init(&p->freed, NULL);
    int e = cf_thread_start(&p->th, gz_thread, p);
    if (e != 0) {
        pthread_mutex_destroy(&p->mu);
        pthread_cond_destroy(&p->filled);
        pthread_cond_destroy(&p->freed);
        pipe_free(p);
        errno = e;
        return cf_fail_errno(err, CF_EINTERNAL, "%s: cannot start the decompression thread", r->name);
    }
    r->pipe = p;
    return CF_OK;
}

static void pipe_stop(gz_pipe *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    pthread_cond_signal(&p->freed);
    pthread_mutex_unlock(&p->mu);
    pthread_join(p->th, NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->filled);
    pthread_cond_destroy(&p->freed);
    pipe_free(p);
}

/* Copies up to room bytes of inflated data to dst. Returns CF_OK with *got = 0 only at the end. */
static int pipe_read(csv_reader *r, char *dst, size_t room, size_t *got) {
    gz_pipe *p = r->pipe;
    *got = 0;
    if (!p->held) {
        pthread_mutex_lock(&p->mu);
        while (p->count == 0 && !p->done && !p->failed) pthread_cond_wait(&p->filled, &p->mu);
        int rc = CF_OK;
        if (p->count > 0) {
            p->held = 1;
            p->off = 0;
            r->nread = p->in_pos[p->head];
        } else if (p->done) {
            r->nread = p->end_pos;
        } else if (p->failed) {
            r->nread = p->end_pos;
            rc = p->fail_code;
            memcpy(r->src_msg, p->msg, sizeof r->src_msg);
        }
        pthread_mutex_unlock(&p->mu);
        if (!p->held) return rc; /* end of input, or the thread's error after all good data */
    }
    size_t n = p->len[p->head] - p->off;
    if (n > room) n = room;
    memcpy(dst, p->blk[p->head] + p->off, n);
    p->off += n;
    *got = n;
    if (p->off == p->len[p->head]) {
        pthread_mutex_lock(&p->mu);
        p->head = (p->head + 1) % GZ_NBLOCK;
        p->count--;
        p->held = 0;
        pthread_cond_signal(&p->freed);
        pthread_mutex_unlock(&p->mu);
    }
    return CF_OK;
}

/* ---- sources --------------------------------------------------------------------------------- */

/* In-memory input is handed out in small pieces of irregular size on purpose: the tests and the
 * fuzzer then exercise every resume-after-refill path of the parser with tiny inputs. */
static size_t mem_piece(csv_reader *r) {
    static const unsigned short sizes[] = {1, 7, 64, 3, 200, 2, 4096, 13, 65, 1000, 31, 5};
    size_t s = sizes[r->piece % (sizeof sizes / sizeof sizes[0])];
    r->piece++;
    return s;
}

/* Appends input at buf + tail. Sets r->eof instead of adding bytes at the end of input. On error
 * returns the code with r->src_msg set (the caller adds file and line). */
static int src_fill(csv_reader *r) {
    size_t room = r->cap - r->tail;
    char *dst = r->buf + r->tail;
    size_t got = 0;
    int rc = CF_OK;
    switch (r->kind) {
    case SRC_MEM: {
        size_t n = mem_piece(r);
        if (n > room) n = room;
        if (n > r->mem_len - r->mem_pos) n = r->mem_len - r->mem_pos;
        memcpy(dst, r->mem + r->mem_pos, n);
        r->mem_pos += n;
        r->nread = r->mem_pos;
        got = n;
        break;
    }
    case SRC_MEM_GZ: {
        if (r->pending_rc != CF_OK) return r->pending_rc;
        size_t n = mem_piece(r);
        if (n > room) n = room;
        int end = 0;
        rc = gz_produce(&r->gz, -1, NULL, 0, dst, n, &got, &end, r->src_msg, sizeof r->src_msg);
        r->nread = r->gz.in_total - r->gz.zs.avail_in;
        if (rc != CF_OK && got > 0) { /* hand out the good bytes first, as the thread does */
            r->pending_rc = rc;
            rc = CF_OK;
        }
        /* cannot happen (n > 0 and not at the end), but never let the parser spin */
        if (rc == CF_OK && !end && got == 0 && r->pending_rc == CF_OK) {
            snprintf(r->src_msg, sizeof r->src_msg, "zlib made no progress");
            rc = CF_EINTERNAL;
        }
        break;
    }
    case SRC_FD:
        for (;;) {
            ssize_t n = read(r->fd, dst, room);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) {
                snprintf(r->src_msg, sizeof r->src_msg, "read failed: %s", strerror(errno));
                rc = CF_EINTERNAL;
            } else {
                got = (size_t)n;
                r->nread += got;
            }
            break;
        }
        break;
    case SRC_FD_GZ:
        rc = pipe_read(r, dst, room, &got);
        break;
    case SRC_WHOLE: {
        size_t n = r->mem_len - r->mem_pos < room ? r->mem_len - r->mem_pos : room;
        memcpy(dst, r->mem + r->mem_pos, n);
        r->mem_pos += n;
        /* progress in compressed bytes, like the streaming path */
        r->nread = r->mem_len ? (uint64_t)((double)r->fsize * (double)r->mem_pos / (double)r->mem_len) : r->fsize;
        got = n;
        break;
    }
    case SRC_CHUNK: /* never refilled: csv_next ends a chunk before asking */
        break;
    }
    if (rc != CF_OK) return rc;
    if (got == 0) r->eof = 1;
    r->tail += got;
    return CF_OK;
}

/* ---- open / close ---------------------------------------------------------------------------- */

static csv_reader *reader_new(const char *name, size_t cap) {
    csv_reader *r = cf_calloc(1, sizeof *r);
    if (!r) return NULL;
    r->fd = -1;
    r->line = 1;
    r->sep = ',';
    r->name = strdup(name);
    r->buf = cf_malloc(cap + CSV_PAD);
    r->fcap = 64;
    r->foff = cf_malloc(r->fcap * sizeof *r->foff);
    r->flen = cf_malloc(r->fcap * sizeof *r->flen);
    r->fptr = cf_malloc(r->fcap * sizeof *r->fptr);
    if (!r->name || !r->buf || !r->foff || !r->flen || !r->fptr) {
        csv_close(r);
        return NULL;
    }
    memset(r->buf + cap, 0, CSV_PAD);
    r->cap = cap;
    return r;
}

#ifdef CLINFM_WITH_LIBDEFLATE
/* Inflates the whole (multi-member) gzip file behind fd into r->mem. Returns 1 on success, 0 when
 * the file should stream through zlib instead: too large, or anything unusual (a corrupt or
 * truncated stream included), so that zlib's path reports errors with their line, after the
 * records that precede them, exactly as for large files. */
static int inflate_whole(csv_reader *r) {
    if (!r->fsize || r->fsize > WHOLE_MAX_IN) return 0;
    unsigned char *in = malloc((size_t)r->fsize);
    if (!in) return 0;
    size_t have = 0;
    while (have < r->fsize) {
        ssize_t k = pread(r->fd, in + have, (size_t)r->fsize - have, (off_t)have);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) break;
        have += (size_t)k;
    }
    int ok = 0;
    struct libdeflate_decompressor *d = have == r->fsize && have >= 18 ? libdeflate_alloc_decompressor() : NULL;
    size_t cap = 0, len = 0, pos = 0;
    unsigned char *out = NULL;
    if (d) {
        /* The last member's trailer gives its size: a good first guess for the whole. */
        size_t isize = (size_t)in[have - 4] | (size_t)in[have - 3] << 8 | (size_t)in[have - 2] << 16 | (size_t)in[have - 1] << 24;
        cap = isize + 1 < WHOLE_MAX_OUT ? isize + 1 : WHOLE_MAX_OUT;
        out = malloc(cap);
        ok = out != NULL;
        while (ok && pos < have) {
            size_t in_used = 0, out_got = 0;
            enum libdeflate_result res = libdeflate_gzip_decompress_ex(d, in + pos, have - pos, out + len, cap - len,
                                                                       &in_used, &out_got);
            if (res == LIBDEFLATE_INSUFFICIENT_SPACE && cap < WHOLE_MAX_OUT) {
                size_t nc = cap * 2 < WHOLE_MAX_OUT ? cap * 2 : WHOLE_MAX_OUT;
                unsigned char *p = realloc(out, nc);
                if (!p) ok = 0;
                else out = p, cap = nc;
                continue;
            }
            if (res != LIBDEFLATE_SUCCESS || in_used == 0) ok = 0;
            pos += in_used;
            len += out_got;
        }
        libdeflate_free_decompressor(d);
    }
    free(in);
    if (!ok) {
        free(out);
        return 0;
    }
    r->mem = out;
    r->mem_len = len;
    r->mem_pos = 0;
    return 1;
}
#endif

int csv_open(csv_reader **out, const char *path, cf_err *err) {
    *out = NULL;
    if (!path || !*path || strcmp(path, "-") == 0)
        return cf_fail(err, CF_EINPUT, "CSV input must be a file path (standard input is not accepted)");
    csv_reader *r = reader_new(path, CSV_FILE_BUF);
    if (!r) return cf_fail(err, CF_EINTERNAL, "%s: out of memory", path);
    int rc;
    r->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (r->fd < 0) {
        rc = cf_fail_errno(err, CF_EINPUT, "%s: cannot open", path);
        goto fail;
    }
    struct stat st;
    if (fstat(r->fd, &st) != 0) {
        rc = cf_fail_errno(err, CF_EINTERNAL, "%s: cannot stat", path);
        goto fail;
    }
    if (S_ISDIR(st.st_mode)) {
        rc = cf_fail(err, CF_EINPUT, "%s: is a directory, expected a CSV file", path);
        goto fail;
    }
    if (S_ISREG(st.st_mode)) {
        r->fsize = (uint64_t)st.st_size;
        (void)posix_fadvise(r->fd, 0, 0, POSIX_FADV_SEQUENTIAL); /* a hint: larger read-ahead */
    }
    /* Sniff the first two bytes with plain reads so pipes and FIFOs work as well as files. */
    unsigned char magic[2];
    size_t n = 0;
    while (n < 2) {
        ssize_t k = read(r->fd, magic + n, 2 - n);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) {
            rc = cf_fail_errno(err, CF_EINTERNAL, "%s: read failed", path);
            goto fail;
        }
        if (k == 0) break;
        n += (size_t)k;
    }
    r->nread = n;
    if (n == 2 && magic[0] == 0x1f && magic[1] == 0x8b) {
#ifdef CLINFM_WITH_LIBDEFLATE
        /* CLINFM_CSV_STREAM_GZ=1 forces the streaming path (tests cover both). */
        if (S_ISREG(st.st_mode) && !getenv("CLINFM_CSV_STREAM_GZ") && inflate_whole(r)) {
            r->kind = SRC_WHOLE;
            r->nread = 0;
            *out = r;
            return CF_OK;
        }
#endif
        r->kind = SRC_FD_GZ;
        r->nread = 0;
        rc = pipe_start(r, magic, n, err);
        if (rc != CF_OK) goto fail;
    } else {
        r->kind = SRC_FD;
        memcpy(r->buf, magic, n);
        r->tail = n;
    }
    *out = r;
    return CF_OK;
fail:
    csv_close(r);
    return rc;
}

int csv_open_buffer(csv_reader **out, const char *name, const char *data, size_t len, cf_err *err) {
    *out = NULL;
    if (!name) name = "(buffer)";
    csv_reader *r = reader_new(name, CSV_MEM_BUF);
    if (!r) return cf_fail(err, CF_EINTERNAL, "%s: out of memory", name);
    int rc;
    r->mem = cf_malloc(len); /* a private copy: the caller may free data right away */
    if (!r->mem) {
        rc = cf_fail(err, CF_EINTERNAL, "%s: out of memory", name);
        goto fail;
    }
    if (len) memcpy(r->mem, data, len);
    r->mem_len = len;
    r->fsize = len;
    if (len >= 2 && r->mem[0] == 0x1f && r->mem[1] == 0x8b) {
        r->kind = SRC_MEM_GZ;
        if (gz_begin(&r->gz, r->src_msg, sizeof r->src_msg) != CF_OK) {
            rc = cf_fail(err, CF_EINTERNAL, "%s: %s", name, r->src_msg);
            goto fail;
        }
        /* zlib counts in uInt; larger buffers would need chunked feeding, not worth it here. */
        if (len > (size_t)UINT32_MAX) {
            rc = cf_fail(err, CF_EINPUT, "%s: in-memory gzip input larger than 4 GiB", name);
            goto fail;
        }
        r->gz.zs.next_in = r->mem;
        r->gz.zs.avail_in = (uInt)len;
        r->gz.in_total = len;
    } else {
        r->kind = SRC_MEM;
    }
    *out = r;
    return CF_OK;
fail:
    csv_close(r);
    return rc;
}

void csv_close(csv_reader *r) {
    if (!r) return;
    pipe_stop(r->pipe); /* before closing fd: the thread reads from it */
    if (r->fd >= 0) close(r->fd);
    gz_end(&r->gz);
    CF_FREE_ALL(r->mem, r->buf, r->foff, r->flen, r->fptr, r->name, r);
}

int csv_open_sep(csv_reader **out, const char *path, char sep, cf_err *err) {
    if (sep == '"' || sep == '\n' || sep == '\r' || sep == '\0')
        return cf_fail(err, CF_EINPUT, "%s: a field separator cannot be a quote, a line end or NUL", path);
    int rc = csv_open(out, path, err);
    if (!rc) (*out)->sep = sep;
    return rc;
}

void csv_set_separator(csv_reader *r, char sep) {
    if (sep != '"' && sep != '\n' && sep != '\r' && sep != '\0') r->sep = sep;
}

uint64_t csv_bytes_read(const csv_reader *r) { return r->nread; }
uint64_t csv_file_size(const csv_reader *r) { return r->fsize; }
uint64_t csv_blank_lines(const csv_reader *r) { return r->blank; }
const char *csv_name(const csv_reader *r) { return r->name; }

/* ---- parsing --------------------------------------------------------------------------------- */

static int grow_fields(csv_reader *r) {
    size_t nc = r->fcap * 2;
    uint32_t *o = cf_realloc_array(r->foff, nc, sizeof *o);
    if (!o) return -1;
    r->foff = o;
    size_t *l = cf_realloc_array(r->flen, nc, sizeof *l);
    if (!l) return -1;
    r->flen = l;
    char **p = cf_realloc_array(r->fptr, nc, sizeof *p);
    if (!p) return -1;
    r->fptr = p;
    r->fcap = nc;
    return 0;
}

static int grow_buffer(csv_reader *r) {
    size_t nc = r->cap * 2;
    if (nc > CSV_MAX_CAP) nc = CSV_MAX_CAP;
    char *b = realloc(r->buf, nc + CSV_PAD);
    if (!b) return -1;
    memset(b + nc, 0, CSV_PAD);
    r->buf = b;
    r->cap = nc;
    return 0;
}

/* Fails the reader for good: every later csv_next repeats that it failed. */
static int fail_at(csv_reader *r, cf_err *err, int code, uint64_t line, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static int fail_at(csv_reader *r, cf_err *err, int code, uint64_t line, const char *fmt, ...) {
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    cf_fail(err, code, "%s:%llu: %s", r->name, (unsigned long long)line, what);
    r->failed = 1;
    return -1;
}

/* The first call drops a UTF-8 byte-order mark. */
static int skip_bom(csv_reader *r, cf_err *err) {
    while (!r->eof && r->tail - r->head < 3) {
        if (r->tail == r->cap && grow_buffer(r) != 0)
            return fail_at(r, err, CF_EINTERNAL, r->line, "out of memory");
        int rc = src_fill(r);
        if (rc != CF_OK) return fail_at(r, err, rc, r->line, "%s", r->src_msg);
    }
    if (r->tail - r->head >= 3 && memcmp(r->buf + r->head, "\xEF\xBB\xBF", 3) == 0) r->head += 3;
    r->mb = r->head - 64; /* no mask window yet (see the window notes in csv_next) */
    r->m = 0;
    return 0;
}

/* Parsing state, positions are indices into b = r->buf:
 *   rs       start of the current record; pos scan position; fs start of the current field;
 *   wr       in a quoted field, where the next unescaped byte goes (wr <= pos);
 *   [mb, mb + 64) the window of the unquoted mask m, whose bits at positions already consumed are
 *            cleared. mb = pos - 64 with m = 0 (mod 2^64) means "no window": the next window then
 *            starts at pos. A window stays valid while the bytes at and after the scan position
 *            are unchanged, which holds because the parser only writes behind its scan position;
 *            it is carried from record to record and dropped whenever the buffer changes.
 * Field pointers go straight into r->fptr; when the buffer moves they are rebased. */
int csv_next(csv_reader *r, csv_record *rec, cf_err *err) {
    if (r->failed)
        return cf_fail(err, CF_EINTERNAL, "%s: reader used again after an error", r->name), -1;
    if (!r->started) {
        r->started = 1;
        if (skip_bom(r, err) != 0) return -1;
    }

    char *b = r->buf;
    size_t end = r->tail;
    size_t rs = r->head, pos = rs, fs = 0, wr = 0, nf = 0, fcap = r->fcap;
    char **fp = r->fptr;
    size_t *fl = r->flen;
    size_t mb = r->mb;
    uint64_t m = r->m;
    uint64_t line = r->line, rec_line = line, quote_line = line;
    int st = ST_START;
    const char sep = r->sep;
    size_t rec_end; /* position of the record's line end (or end of input) */

/* Appends field [start, start + len) and NUL-terminates it at `term`. */
#define PUSH_FIELD(start, len, term)                                                              \
    do {                                                                                          \
        if (nf == fcap) {                                                                         \
            if (nf >= CSV_MAX_FIELDS)                                                             \
                return fail_at(r, err, CF_EINPUT, rec_line,                                       \
                               "record has more than %zu fields", CSV_MAX_FIELDS);                \
            if (grow_fields(r) != 0) return fail_at(r, err, CF_EINTERNAL, rec_line, "out of memory"); \
            fcap = r->fcap;                                                                       \
            fp = r->fptr;                                                                         \
            fl = r->flen;                                                                         \
        }                                                                                         \
        fp[nf] = b + (start);                                                                     \
        fl[nf] = (len);                                                                           \
        nf++;                                                                                     \
        b[term] = '\0';                                                                           \
    } while (0)

    for (;;) {
        switch (st) {
        case ST_START:
            if (pos == end) goto more;
            if (nf == 0 && pos == rs) { /* record start: skip blank lines */
                if (b[pos] == '\n') {
                    r->blank++;
                    line++;
                    rs = ++pos;
                    rec_line = line;
                    continue;
                }
                if (b[pos] == '\r') {
                    if (pos + 1 == end) goto more;
                    if (b[pos + 1] != '\n')
                        return fail_at(r, err, CF_EINPUT, line,
                                       "carriage return not followed by a line feed (expected CRLF or LF line ends)");
                    r->blank++;
                    line++;
                    pos += 2;
                    rs = pos;
                    rec_line = line;
                    continue;
                }
            }
            st = ST_UNQ;
            fs = pos;
            /* move the window to pos: drop bits before it, or start a new window at pos */
            if (pos - mb < 64) {
                m &= ~(uint64_t)0 << (pos - mb);
            } else {
                mb = pos - 64;
                m = 0;
            }
            /* fall through */
        case ST_UNQ:
            /* The hot loop: one iteration per marked byte; m's lowest bit is the next one. */
            for (;;) {
                while (m == 0) {
                    mb += 64;
                    if (mb >= end) {
                        pos = end;
                        goto more;
                    }
                    m = mask_unq(b + mb, end - mb, sep);
                }
                size_t q = mb + (size_t)__builtin_ctzll(m);
                m &= m - 1;
                char c = b[q];
                if (c == sep) {
                    PUSH_FIELD(fs, q - fs, q);
                    fs = q + 1;
                    continue;
                }
                if (c == '"') {
                    if (q != fs) continue; /* inside an unquoted field a quote is plain content */
                    st = ST_QUO;
                    quote_line = line;
                    pos = fs = wr = q + 1;
                    break;
                }
                if (c == '\n') {
                    PUSH_FIELD(fs, q - fs, q);
                    rec_end = q;
                    pos = q + 1;
                    line++;
                    goto record_done;
                }
                if (c == '\r') {
                    if (q + 1 == end) {
                        pos = q;
                        goto more;
                    }
                    if (b[q + 1] != '\n')
                        return fail_at(r, err, CF_EINPUT, line,
                                       "field %zu: carriage return not followed by a line feed outside quotes "
                                       "(expected CRLF or LF line ends; quote fields that contain CR)",
                                       nf + 1);
                    PUSH_FIELD(fs, q - fs, q);
                    rec_end = q;
                    pos = q + 2; /* the LF's bit is dropped when the next record moves the window */
                    line++;
                    goto record_done;
                }
                if (c == '\0')
                    return fail_at(r, err, CF_EINPUT, line, "field %zu: NUL byte (expected text)", nf + 1);
                /* another control byte: plain content */
            }
            continue;
        case ST_QUO: {
            /* Content from pos up to the scan point is not yet moved down to wr; qm marks '"',
             * LF and NUL in the window [qmb, qmb + 64), with the bits already consumed cleared. */
            size_t qmb = pos;
            uint64_t qm = mask_quo(b + pos, end - pos);
            for (;;) {
                while (qm == 0) {
                    qmb += 64;
                    if (qmb >= end) {
                        if (wr != pos) memmove(b + wr, b + pos, end - pos);
                        wr += end - pos;
                        pos = end;
                        goto more;
                    }
                    qm = mask_quo(b + qmb, end - qmb);
                }
                size_t q = qmb + (size_t)__builtin_ctzll(qm);
                qm &= qm - 1;
                char c = b[q];
                if (c == '\n') {
                    line++;
                    continue;
                }
                if (c == '\0')
                    return fail_at(r, err, CF_EINPUT, line, "field %zu: NUL byte (expected text)", nf + 1);
                /* a quote: move the run before it down, then look at the next byte */
                if (wr != pos) memmove(b + wr, b + pos, q - pos);
                wr += q - pos;
                pos = q;
                if (q + 1 == end) goto more; /* resumes at this quote */
                if (b[q + 1] == '"') { /* "" stands for one quote */
                    b[wr++] = '"';
                    pos = q + 2;
                    if (q + 1 < qmb + 64) { /* drop the second quote's bit, the next one in qm */
                        qm &= qm - 1;
                    } else { /* it opens the next window: start that window after it */
                        qmb = q + 2 - 64;
                        qm = 0;
                    }
                    continue;
                }
                pos = q + 1;
                st = ST_AFTER;
                break;
            }
            continue;
        }
        case ST_AFTER: {
            if (pos == end) goto more;
            char c = b[pos];
            if (c == sep) {
                PUSH_FIELD(fs, wr - fs, wr);
                pos++;
                st = ST_START;
                continue;
            }
            if (c == '\n') {
                PUSH_FIELD(fs, wr - fs, wr);
                rec_end = pos;
                pos++;
                line++;
                goto record_done;
            }
            if (c == '\r') {
                if (pos + 1 == end) goto more;
                if (b[pos + 1] == '\n') {
                    PUSH_FIELD(fs, wr - fs, wr);
                    rec_end = pos;
                    pos += 2;
                    line++;
                    goto record_done;
                }
            }
            return fail_at(r, err, CF_EINPUT, line,
                           "field %zu: unexpected character after the closing quote "
                                   "(expected a comma or a line end)",
                           nf + 1);
        }
        }

    more:
        if (r->kind == SRC_CHUNK && !r->eof) {
            /* A chunk that is not the input's last ends at a record boundary, so running dry
             * anywhere else means its record did not fit in CSV_MAX_RECORD (csv_next_chunk cut
             * it there), as the sequential reader reports when its buffer is full. */
            if (r->chunk_rc != CF_OK) return fail_at(r, err, r->chunk_rc, line, "%s", r->src_msg);
            if (st == ST_START && pos == end && nf == 0) {
                r->head = r->tail = rs;
                r->line = line;
                return 0;
            }
            return fail_at(r, err, CF_EINPUT, rec_line,
                           "record longer than %u bytes (expected at most that; is a quote never closed?)",
                           (unsigned)CSV_MAX_RECORD);
        }
        if (r->eof) {
            switch (st) {
            case ST_START:
                if (pos < end) /* a lone CR at the very end of a blank line */
                    return fail_at(r, err, CF_EINPUT, line,
                                   "carriage return not followed by a line feed (expected CRLF or LF line ends)");
                if (nf == 0) { /* nothing after the last line end */
                    r->head = r->tail = rs;
                    r->line = line;
                    return 0;
                }
                PUSH_FIELD(pos, 0, pos); /* "a," at the end: an empty last field */
                break;
            case ST_UNQ:
                if (pos < end)
                    return fail_at(r, err, CF_EINPUT, line,
                                   "field %zu: carriage return at the end of input not followed by a line feed",
                                   nf + 1);
                PUSH_FIELD(fs, end - fs, end);
                break;
            case ST_QUO:
                if (pos == end)
                    return fail_at(r, err, CF_EINPUT, quote_line,
                                   "field %zu: quoted field is never closed "
                                   "(expected a closing quote before the end of input)",
                                   nf + 1);
                PUSH_FIELD(fs, wr - fs, wr); /* the closing quote is the last byte */
                break;
            case ST_AFTER:
                if (pos < end)
                    return fail_at(r, err, CF_EINPUT, line,
                                   "field %zu: unexpected character after the closing quote "
                                   "(expected a comma or a line end)",
                                   nf + 1);
                PUSH_FIELD(fs, wr - fs, wr);
                break;
            }
            rec_end = end;
            pos = end;
            goto record_done;
        }
        /* Move the partial record to the front, make room, append input, resume. If the buffer
         * moves, field pointers are kept as offsets meanwhile. It moves at most once per record
         * plus once per doubling, so this costs O(fields) per record, not per refill. */
        int moves = rs > 0 || r->tail == r->cap;
        if (moves)
            for (size_t i = 0; i < nf; i++) r->foff[i] = (uint32_t)(fp[i] - (b + rs));
        if (rs > 0) {
            memmove(b, b + rs, end - rs);
            pos -= rs;
            fs -= rs; /* fs and wr may be stale in some states; unsigned wrap-around is harmless */
            wr -= rs;
            r->tail = end - rs;
            r->head = 0;
            rs = 0;
        }
        int rc = CF_OK;
        if (r->tail == r->cap) {
            if (r->cap >= CSV_MAX_CAP)
                return fail_at(r, err, CF_EINPUT, rec_line,
                               "record longer than %u bytes (expected at most that; is a quote never closed?)",
                               (unsigned)CSV_MAX_RECORD);
            if (grow_buffer(r) != 0) rc = CF_EINTERNAL;
        }
        b = r->buf;
        if (moves)
            for (size_t i = 0; i < nf; i++) fp[i] = b + r->foff[i];
        if (rc != CF_OK) return fail_at(r, err, rc, rec_line, "out of memory");
        rc = src_fill(r);
        if (rc != CF_OK) return fail_at(r, err, rc, line, "%s", r->src_msg);
        end = r->tail;
        mb = pos - 64; /* no window: the old one described old bytes at old positions */
        m = 0;
    }

record_done:
    if (rec_end - rs > CSV_MAX_RECORD)
        return fail_at(r, err, CF_EINPUT, rec_line, "record longer than %u bytes (expected at most that)",
                       (unsigned)CSV_MAX_RECORD);
    rec->nfields = nf;
    rec->fields = fp;
    rec->lens = fl;
    rec->line = rec_line;
    r->head = pos;
    r->line = line;
    r->mb = mb;
    r->m = m;
    return 1;
#undef PUSH_FIELD
}

/* ---- chunks ---------------------------------------------------------------------------------- */

/* The record-boundary scan: the parser's states reduced to what decides where a record ends.
 * Only the separator, '"' and LF change them; any other byte turns a field start (or the byte
 * after a closing quote) into unquoted content. */
enum { SS_START, SS_UNQ, SS_QUO, SS_QQ };

/* Scans [r->spos, r->tail), moving r->sbound to the end of the last complete record, and stops at
 * the first record end at or past `want` (a chunk's worth of bytes from r->head). On input
 * the parser accepts the states agree with csv_next's byte for byte; on input it rejects they can
 * differ only after the first error, which the chunk holding it reports as csv_next would. */
static void split_scan(csv_reader *r, size_t want) {
    const char *b = r->buf;
    const char sep = r->sep;
    size_t end = r->tail, prev = r->spos;
    int st = r->sst;
    uint64_t lines = r->slines;
    for (size_t base = r->spos; base < end; base += 64) {
        uint64_t m = mask_split(b + base, end - base, sep);
        while (m) {
            size_t q = base + (size_t)__builtin_ctzll(m);
            m &= m - 1;
            if (q > prev && (st == SS_START || st == SS_QQ)) st = SS_UNQ;
            prev = q + 1;
            char c = b[q];
            if (st == SS_QUO) {
                if (c == '"') st = SS_QQ;
                else if (c == '\n') lines++;
                continue;
            }
            if (c == '\n') {
                lines++;
                r->sbound = q + 1;
                r->sbound_lines = lines;
                st = SS_START;
                if (r->sbound >= want) { /* a chunk's worth: resume after this line end */
                    r->sst = st;
                    r->spos = r->sbound;
                    r->slines = lines;
                    return;
                }
            } else if (c == sep) {
                st = SS_START;
            } else { /* a quote: opens a field at its start, closes-or-escapes after one, else content */
                st = st == SS_START ? SS_QUO : st == SS_QQ ? SS_QUO : SS_UNQ;
            }
        }
    }
    if (end > prev && (st == SS_START || st == SS_QQ)) st = SS_UNQ;
    r->sst = st;
    r->spos = end;
    r->slines = lines;
}

static void chunk_take(csv_reader *r, csv_chunk *c, size_t len, cf_err *err, int *rc) {
    c->data = cf_malloc(len + CSV_PAD);
    if (!c->data) {
        *rc = fail_at(r, err, CF_EINTERNAL, r->line, "out of memory");
        return;
    }
    memcpy(c->data, r->buf + r->head, len);
    memset(c->data + len, 0, CSV_PAD);
    c->len = len;
    c->first_line = r->line;
    *rc = 1;
}

int csv_next_chunk(csv_reader *r, size_t target, csv_chunk *c, cf_err *err) {
    memset(c, 0, sizeof *c);
    if (r->failed)
        return cf_fail(err, CF_EINTERNAL, "%s: reader used again after an error", r->name), -1;
    if (!r->started) {
        r->started = 1;
        if (skip_bom(r, err) != 0) return -1;
    }
    if (r->chunk_done) return 0;
    if (!target) target = 1;
    if (!r->chunking) {
        r->chunking = 1;
        r->spos = r->sbound = r->head;
        r->sst = SS_START;
        r->slines = r->sbound_lines = 0;
    }
    int src_rc = CF_OK, oversize = 0;
    while (r->sbound - r->head < target && !r->eof) {
        if (r->spos < r->tail) {
            split_scan(r, r->head + target);
            continue;
        }
        if (r->tail == r->cap) {
            if (r->head > 0) { /* drop what earlier chunks took */
                size_t h = r->head;
                memmove(r->buf, r->buf + h, r->tail - h);
                r->tail -= h;
                r->spos -= h;
                r->sbound -= h;
                r->head = 0;
            } else if (r->sbound > r->head && r->cap >= 2 * target) {
                break; /* enough whole records for a chunk */
            } else if (r->cap >= CSV_MAX_CAP) {
                oversize = 1; /* no record end in CSV_MAX_CAP bytes */
                break;
            } else if (grow_buffer(r) != 0) {
                return fail_at(r, err, CF_EINTERNAL, r->line, "out of memory");
            }
            continue;
        }
        src_rc = src_fill(r);
        if (src_rc != CF_OK) break;
    }
    int rc = 0;
    if (src_rc != CF_OK || r->eof || oversize) {
        /* everything left: the input's last chunk, or a record too long to cut */
        r->chunk_done = 1;
        if (r->tail == r->head && src_rc == CF_OK) return 0;
        chunk_take(r, c, r->tail - r->head, err, &rc);
        if (rc < 0) return rc;
        c->last = !oversize;
        c->src_rc = src_rc;
        if (src_rc != CF_OK) memcpy(c->src_msg, r->src_msg, sizeof c->src_msg);
        r->head = r->tail;
        return 1;
    }
    chunk_take(r, c, r->sbound - r->head, err, &rc);
    if (rc < 0) return rc;
    r->line += r->sbound_lines;
    r->slines -= r->sbound_lines;
    r->sbound_lines = 0;
    r->head = r->sbound;
    return 1;
}

int csv_open_chunk(csv_reader **out, const char *name, char sep, csv_chunk *c, cf_err *err) {
    *out = NULL;
    csv_reader *r = cf_calloc(1, sizeof *r);
    int rc = CF_OK;
    if (r) r->fd = -1;
    if (!r || !(r->name = strdup(name ? name : "(chunk)"))) {
        rc = cf_fail(err, CF_EINTERNAL, "%s: out of memory", name ? name : "(chunk)");
        goto fail;
    }
    r->kind = SRC_CHUNK;
    r->sep = sep;
    r->fcap = 64;
    r->foff = cf_malloc(r->fcap * sizeof *r->foff);
    r->flen = cf_malloc(r->fcap * sizeof *r->flen);
    r->fptr = cf_malloc(r->fcap * sizeof *r->fptr);
    if (!r->foff || !r->flen || !r->fptr) {
        rc = cf_fail(err, CF_EINTERNAL, "%s: out of memory", name);
        goto fail;
    }
    r->buf = c->data; /* the chunk's slack is the parser's CSV_PAD */
    c->data = NULL;
    r->cap = r->tail = r->fsize = c->len;
    r->line = c->first_line;
    r->started = 1; /* a byte-order mark can only precede the header */
    r->mb = r->head - 64;
    r->eof = c->last && c->src_rc == CF_OK;
    r->chunk_rc = c->last ? c->src_rc : CF_OK;
    memcpy(r->src_msg, c->src_msg, sizeof r->src_msg);
    *out = r;
    return CF_OK;
fail:
    if (r) {
        r->buf = c->data;
        c->data = NULL;
        csv_close(r);
    } else {
        csv_chunk_free(c);
    }
    return rc;
}

void csv_chunk_free(csv_chunk *c) {
    free(c->data);
    c->data = NULL;
}

/* ---- input size, for ingest's room estimate ---------------------------------------------------- */

#define SIZE_SAMPLE_IN ((size_t)16 << 10)

int csv_input_size(const char *path, uint64_t *bytes, cf_err *err) {
    *bytes = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return cf_fail_errno(err, CF_EINPUT, "%s: cannot open", path);
    struct stat st;
    unsigned char *in = NULL, *out = NULL;
    int rc = CF_OK;
    if (fstat(fd, &st) != 0) {
        rc = cf_fail_errno(err, CF_EINPUT, "%s: cannot stat", path);
        goto done;
    }
    uint64_t size = (uint64_t)st.st_size;
    *bytes = size;
    size_t want = size < SIZE_SAMPLE_IN ? (size_t)size : SIZE_SAMPLE_IN, have = 0;
    if (size < 18) goto done; /* too short to be gzip: read as it is */
    in = malloc(want);
    out = malloc((size_t)256 << 10);
    if (!in || !out) {
        rc = cf_fail(err, CF_EINTERNAL, "out of memory");
        goto done;
    }
    while (have < want) {
        ssize_t k = pread(fd, in + have, want - have, (off_t)have);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) break;
        have += (size_t)k;
    }
    if (have < 18 || in[0] != 0x1f || in[1] != 0x8b) goto done; /* not gzip: its size is what it yields */
    unsigned char tr[4];
    if (pread(fd, tr, 4, (off_t)(size - 4)) != 4) goto done;
    uint64_t isize = (uint64_t)tr[0] | (uint64_t)tr[1] << 8 | (uint64_t)tr[2] << 16 | (uint64_t)tr[3] << 24;
    /* Inflate the first bytes (members back to back) and count what they yield. */
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (inflateInit2(&zs, 15 + 32) != Z_OK) goto done;
    zs.next_in = in;
    zs.avail_in = (uInt)have;
    uint64_t produced = 0;
    int whole = 0, members = 0;
    for (;;) {
        zs.next_out = out;
        zs.avail_out = (uInt)256 << 10;
        int zr = inflate(&zs, Z_NO_FLUSH);
        produced += ((size_t)256 << 10) - zs.avail_out;
        if (zr == Z_STREAM_END) {
            members++;
            if (zs.avail_in == 0) {
                whole = have == size;
                break;
            }
            if (inflateReset(&zs) != Z_OK) break;
            continue;
        }
        if (zr != Z_OK) break; /* the sample's end (Z_BUF_ERROR), or damage the reader will report */
    }
    uint64_t used = have - zs.avail_in;
    inflateEnd(&zs);
    if (whole) {
        *bytes = produced;
    } else if (used && produced) {
        /* The trailer counts the last member only, modulo 4 GiB: trusted when the file seems to
         * be one member (none ended in the sample) and it agrees with the first bytes' ratio. */
        double predicted = (double)size * ((double)produced / (double)used);
        double k = floor((predicted - (double)isize) / 4294967296.0 + 0.5);
        double lifted = (double)isize + (k > 0 ? k : 0) * 4294967296.0;
        int agrees = !members && lifted >= predicted / 1.5 && lifted <= predicted * 1.5;
        double best = agrees ? lifted : predicted > (double)isize ? predicted : (double)isize;
        *bytes = (uint64_t)best;
    }
done:
    free(in);
    free(out);
    close(fd);
    return rc;
}
