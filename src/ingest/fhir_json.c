/* JSON side of FHIR ingestion: an arena allocator for cJSON trees, parsing with caps, and reading
 * whole (possibly gzipped) bundle files. See fhir_internal.h.
 *
 * Why an arena: cJSON allocates every node, key and string separately; for a Synthea bundle that
 * is hundreds of thousands of malloc/free pairs, about a third of parse time. cJSON lets us swap
 * its allocator (cJSON_InitHooks, process-wide), so the hooks send allocations to a thread-local
 * arena while one is active on the calling thread and to malloc/free otherwise; other users of
 * cJSON in the process are unaffected. A tree is dropped by resetting its arena, never by
 * cJSON_Delete. The arena has a cap, so a hostile bundle (say 200 MB of "[1,1,1,...]", 32 bytes
 * of nodes per input byte) fails to parse instead of exhausting memory. The hooks are installed
 * once, before any worker thread starts (fhir_json_init).
 *
 * Threads: cJSON's parse functions are reentrant except that every call resets a global "last
 * error" record; clinfm never reads it (fhir_json_parse reports positions from the parse end
 * pointer instead), so the concurrent writes are harmless. cJSON has a compiled-in nesting limit
 * (CJSON_NESTING_LIMIT, 1000), which keeps its recursion bounded; the scanner below applies the
 * same limit without recursing.
 *
 * Why libdeflate: it inflates a whole gzip member into a buffer sized from the gzip trailer about
 * 3x faster than zlib's streaming inflate, which matters because decompression is a large share
 * of bundle ingestion. zlib remains the fallback for multi-member files, for trailers that do
 * not give the true size (over 4 GiB), and for builds without libdeflate (see below). */
#include "ingest/fhir_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zlib.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

/* libdeflate is used when the build defines CLINFM_WITH_LIBDEFLATE and links -ldeflate (Debian
 * libdeflate-dev); otherwise zlib inflates everything, about 3x slower on bundles. */
#ifdef CLINFM_WITH_LIBDEFLATE
#include <libdeflate.h>
#define FHIR_HAVE_LIBDEFLATE 1
#endif

/* ------------------------------------------------------------------ arena */

typedef struct arena_chunk {
    struct arena_chunk *next;
    size_t cap, used;
    /* data follows, 16-byte aligned */
} arena_chunk;

struct fhir_arena {
    arena_chunk *head, *cur; /* chunks in order; cur is the one being filled */
    size_t limit, total;     /* bytes handed out in this session */
    int exhausted;
};

#define ARENA_HDR ((sizeof(arena_chunk) + 15) & ~(size_t)15)
#define ARENA_FIRST_CHUNK ((size_t)64 << 10)
#define ARENA_KEEP ((size_t)64 << 20) /* chunk bytes kept between sessions */

static _Thread_local fhir_arena *tl_arena;

/* Slow path: the current chunk is full; move to a kept chunk or add a bigger one. */
__attribute__((noinline)) static void *arena_alloc_slow(fhir_arena *a, size_t n) {
    if (a->total + n > a->limit || n > SIZE_MAX / 4) {
        a->exhausted = 1;
        return NULL;
    }
    for (;;) {
        arena_chunk *c = a->cur;
        if (c && c->cap - c->used >= n) {
            void *p = (char *)c + ARENA_HDR + c->used;
            c->used += n;
            a->total += n;
            return p;
        }
        if (c && c->next) { /* a chunk kept from an earlier session */
            a->cur = c->next;
            a->cur->used = 0;
            continue;
        }
        size_t cap = c ? c->cap * 2 : ARENA_FIRST_CHUNK;
        if (cap < n) cap = n;
        arena_chunk *nc = malloc(ARENA_HDR + cap);
        if (!nc) {
            a->exhausted = 1;
            return NULL;
        }
        nc->next = NULL;
        nc->cap = cap;
        nc->used = 0;
        if (c) c->next = nc;
        else a->head = nc;
        a->cur = nc;
    }
}

/* Called for every cJSON node, key and string: the common case is a pointer bump. */
static void *hook_malloc(size_t n) {
    fhir_arena *a = tl_arena;
    if (!a) return malloc(n);
    n = n ? (n + 15) & ~(size_t)15 : 16;
    arena_chunk *c = a->cur;
    if (c && c->cap - c->used >= n && a->total + n <= a->limit) {
        void *p = (char *)c + ARENA_HDR + c->used;
        c->used += n;
        a->total += n;
        return p;
    }
    return arena_alloc_slow(a, n);
}

static void hook_free(void *p) {
    if (tl_arena) return; /* arena memory goes all at once in fhir_arena_end */
    free(p);
}

static pthread_once_t hooks_once = PTHREAD_ONCE_INIT;
static void install_hooks(void) {
    cJSON_Hooks h = {hook_malloc, hook_free};
    cJSON_InitHooks(&h);
}

void fhir_json_init(void) { pthread_once(&hooks_once, install_hooks); }

fhir_arena *fhir_arena_new(void) {
    fhir_json_init();
    return calloc(1, sizeof(fhir_arena));
}

void fhir_arena_delete(fhir_arena *a) {
    if (!a) return;
    if (tl_arena == a) tl_arena = NULL;
    for (arena_chunk *c = a->head, *n; c; c = n) {
        n = c->next;
        free(c);
    }
    free(a);
}

void fhir_arena_begin(fhir_arena *a, size_t limit) {
    a->limit = limit;
    a->total = 0;
    a->exhausted = 0;
    a->cur = a->head;
    if (a->cur) a->cur->used = 0;
    tl_arena = a;
}

void fhir_arena_end(fhir_arena *a) {
    if (tl_arena == a) tl_arena = NULL;
    /* Keep the leading chunks up to ARENA_KEEP for the next tree; a single huge bundle must not
     * pin its memory for the rest of the run. */
    size_t kept = 0;
    arena_chunk **pp = &a->head;
    while (*pp) {
        if (kept + (*pp)->cap > ARENA_KEEP && kept > 0) {
            for (arena_chunk *c = *pp, *n; c; c = n) {
                n = c->next;
                free(c);
            }
            *pp = NULL;
            break;
        }
        kept += (*pp)->cap;
        pp = &(*pp)->next;
    }
    a->cur = a->head;
    a->total = 0;
}

int fhir_arena_exhausted(const fhir_arena *a) { return a->exhausted; }

fhir_arena_mark fhir_arena_get_mark(const fhir_arena *a) {
    fhir_arena_mark m = {a->cur, a->cur ? a->cur->used : 0, a->total};
    return m;
}

void fhir_arena_release(fhir_arena *a, fhir_arena_mark m) {
    a->cur = m.chunk ? (arena_chunk *)m.chunk : a->head;
    if (a->cur) a->cur->used = m.chunk ? m.used : 0;
    a->total = m.total;
}

/* ------------------------------------------------------------------ parsing */

/* Depth of brackets reached in data[0..len), outside strings. Used only to explain a failure. */
static size_t max_depth(const char *s, size_t len) {
    size_t d = 0, m = 0;
    int in_str = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (in_str) {
            if (c == '\\') i++;
            else if (c == '"') in_str = 0;
        } else if (c == '"') {
            in_str = 1;
        } else if (c == '[' || c == '{') {
            if (++d > m) m = d;
        } else if ((c == ']' || c == '}') && d > 0) {
            d--;
        }
    }
    return m;
}

/* Why a parse that stopped at end (cJSON's error position, may be NULL) failed, and where. */
static cJSON *parse_failed(fhir_arena *a, const char *data, size_t len, const char *end, const char **why,
                           size_t *offset) {
    size_t stop = end && end >= data && end <= data + len ? (size_t)(end - data) : len;
    *offset = stop;
    if (a && fhir_arena_exhausted(a)) *why = "JSON parse tree over its memory cap";
    else if (max_depth(data, stop < len ? stop + 1 : len) >= CJSON_NESTING_LIMIT)
        *why = "JSON nested too deeply";
    else *why = "invalid JSON";
    return NULL;
}

cJSON *fhir_json_parse(fhir_arena *a, const char *data, size_t len, const char **why,
                       size_t *offset) {
    const char *end = NULL;
    *why = NULL;
    *offset = 0;
    cJSON *root = len ? cJSON_ParseWithLengthOpts(data, len, &end, 0) : NULL;
    if (root) {
        size_t i = (size_t)(end - data);
        while (i < len && (data[i] == ' ' || data[i] == '\t' || data[i] == '\r' || data[i] == '\n'))
            i++;
        if (i == len) return root;
        *offset = i;
        *why = "invalid JSON (content after the value)";
        return NULL;
    }
    return parse_failed(a, data, len, end, why, offset);
}

cJSON *fhir_json_parse_prefix(fhir_arena *a, const char *data, size_t len, size_t *used,
                              const char **why, size_t *offset) {
    const char *end = NULL;
    *why = NULL;
    *offset = 0;
    cJSON *v = len ? cJSON_ParseWithLengthOpts(data, len, &end, 0) : NULL;
    if (v) {
        *used = (size_t)(end - data);
        return v;
    }
    return parse_failed(a, data, len, end, why, offset);
}

/* ------------------------------------------------------------------ validating skip */

/* Byte classes for the scanner: 1 = JSON whitespace, 2 = ends a run of plain string bytes. */
static const unsigned char k_class[256] = {
    [' '] = 1, ['\t'] = 1, ['\n'] = 1, ['\r'] = 1, ['"'] = 2, ['\\'] = 2,
};

static int hexval(char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* Index of the first '"' or backslash in s[p..len), or len. SSE2 (x86-64's baseline) looks at 16
 * bytes per step; strings are most of a bundle's bytes. */
static inline size_t find_quote_or_escape(const char *s, size_t len, size_t p) {
#ifdef __SSE2__
    const __m128i quote = _mm_set1_epi8('"'), bslash = _mm_set1_epi8('\\');
    while (p + 16 <= len) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(s + p));
        int m = _mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, bslash)));
        if (m) return p + (size_t)__builtin_ctz((unsigned)m);
        p += 16;
    }
#endif
    while (p < len && k_class[(unsigned char)s[p]] != 2) p++;
    return p;
}

/* s[*i] is the opening quote. Moves past the closing quote; -1 on a bad escape or no end. Raw
 * control characters are accepted, as cJSON accepts them. */
static int skip_string(const char *s, size_t len, size_t *i) {
    size_t p = *i + 1;
    for (;;) {
        p = find_quote_or_escape(s, len, p);
        if (p >= len) break;
        if (s[p] == '"') {
            *i = p + 1;
            return 0;
        }
        p++; /* the escaped character */
        if (p >= len) break;
        char e = s[p];
        if (e == 'u') {
            if (p + 4 >= len || !hexval(s[p + 1]) || !hexval(s[p + 2]) || !hexval(s[p + 3]) ||
                !hexval(s[p + 4]))
                break;
            p += 5;
        } else if (e == '"' || e == '\\' || e == '/' || e == 'b' || e == 'f' || e == 'n' ||
                   e == 'r' || e == 't') {
            p++;
        } else {
            break;
        }
    }
    *i = p;
    return -1;
}

static int skip_number(const char *s, size_t len, size_t *i) {
    size_t p = *i;
    if (p < len && s[p] == '-') p++;
    if (p >= len || s[p] < '0' || s[p] > '9') goto bad;
    if (s[p] == '0') p++;
    else while (p < len && s[p] >= '0' && s[p] <= '9') p++;
    if (p < len && s[p] == '.') {
        p++;
        if (p >= len || s[p] < '0' || s[p] > '9') goto bad;
        while (p < len && s[p] >= '0' && s[p] <= '9') p++;
    }
    if (p < len && (s[p] == 'e' || s[p] == 'E')) {
        p++;
        if (p < len && (s[p] == '+' || s[p] == '-')) p++;
        if (p >= len || s[p] < '0' || s[p] > '9') goto bad;
        while (p < len && s[p] >= '0' && s[p] <= '9') p++;
    }
    *i = p;
    return 0;
bad:
    *i = p;
    return -1;
}

int fhir_json_skip(const char *s, size_t len, size_t *pos, const char **why) {
    char stack[CJSON_NESTING_LIMIT]; /* '{' or '[' per open container */
    int depth = 0;
    size_t i = fhir_skip_ws(s, len, *pos);
    *why = "invalid JSON";
    for (;;) {
        /* a value starts at i */
        if (i >= len) goto bad;
        char c = s[i];
        if (c == '{' || c == '[') {
            if (depth >= CJSON_NESTING_LIMIT) {
                *why = "JSON nested too deeply";
                goto bad;
            }
            stack[depth++] = c;
            i = fhir_skip_ws(s, len, i + 1);
            if (i < len && s[i] == (c == '{' ? '}' : ']')) {
                depth--;
                i++;
                goto after_value;
            }
            if (c == '{') goto key;
            continue;
        } else if (c == '"') {
            if (skip_string(s, len, &i)) goto bad;
        } else if (c == '-' || (c >= '0' && c <= '9')) {
            if (skip_number(s, len, &i)) goto bad;
        } else if (len - i >= 4 && !memcmp(s + i, "true", 4)) {
            i += 4;
        } else if (len - i >= 5 && !memcmp(s + i, "false", 5)) {
            i += 5;
        } else if (len - i >= 4 && !memcmp(s + i, "null", 4)) {
            i += 4;
        } else {
            goto bad;
        }
    after_value:
        for (;;) {
            if (depth == 0) {
                *pos = i;
                *why = NULL;
                return 0;
            }
            i = fhir_skip_ws(s, len, i);
            if (i >= len) goto bad;
            char open = stack[depth - 1];
            if (s[i] == ',') {
                i = fhir_skip_ws(s, len, i + 1);
                if (open == '{') goto key;
                break; /* next array element */
            }
            if (s[i] == (open == '{' ? '}' : ']')) {
                depth--;
                i++;
                continue;
            }
            goto bad;
        }
        continue;
    key:
        if (i >= len || s[i] != '"' || skip_string(s, len, &i)) goto bad;
        i = fhir_skip_ws(s, len, i);
        if (i >= len || s[i] != ':') goto bad;
        i = fhir_skip_ws(s, len, i + 1);
    }
bad:
    *pos = i < len ? i : len;
    return -1;
}

/* ------------------------------------------------------------------ whole-file reading */

static int grow(char **buf, size_t *cap, size_t need) {
    if (need <= *cap) return 0;
    size_t n = *cap ? *cap : 1 << 16;
    while (n < need) n = n > SIZE_MAX / 2 ? need : n * 2;
    char *p = realloc(*buf, n);
    if (!p) return -1;
    *buf = p;
    *cap = n;
    return 0;
}

/* zlib inflate of every gzip member in `in`, for what libdeflate declines. */
static int inflate_zlib(const unsigned char *in, size_t n, size_t max_len, char **buf, size_t *cap,
                        size_t *len, const char **reason) {
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, 15 + 16) != Z_OK) return CF_EINTERNAL;
    size_t pos = 0, out = 0;
    int rc = CF_OK;
    while (pos < n) {
        /* Trailing zero padding after the last member is tolerated, as gzip(1) does. */
        size_t k = pos;
        while (k < n && in[k] == 0) k++;
        if (k == n && pos > 0) break;
        z.next_in = (unsigned char *)in + pos;
        z.avail_in = (uInt)((n - pos) > (1u << 30) ? (1u << 30) : (n - pos));
        int zr;
        do {
            if (out + 1 >= *cap && grow(buf, cap, out + (1 << 20))) {
                rc = CF_EINTERNAL;
                goto done;
            }
            size_t room = *cap - out - 1;
            if (room > (1u << 30)) room = 1u << 30;
            z.next_out = (unsigned char *)*buf + out;
            z.avail_out = (uInt)room;
            const unsigned char *before = z.next_in;
            zr = inflate(&z, Z_NO_FLUSH);
            out += room - z.avail_out;
            pos += (size_t)(z.next_in - before);
            if (out > max_len) {
                *reason = "file larger than the size cap";
                rc = CF_EINPUT;
                goto done;
            }
            if (z.avail_in == 0 && pos < n) {
                z.next_in = (unsigned char *)in + pos;
                z.avail_in = (uInt)((n - pos) > (1u << 30) ? (1u << 30) : (n - pos));
            }
        } while (zr == Z_OK);
        if (zr != Z_STREAM_END) {
            *reason = zr == Z_BUF_ERROR ? "truncated gzip stream" : "corrupt gzip stream";
            rc = CF_EINPUT;
            goto done;
        }
        if (inflateReset(&z) != Z_OK) {
            rc = CF_EINTERNAL;
            goto done;
        }
    }
    *len = out;
done:
    inflateEnd(&z);
    return rc;
}

/* Per-thread decompressor and compressed-input buffer, released by fhir_read_release. */
#ifdef FHIR_HAVE_LIBDEFLATE
static _Thread_local struct libdeflate_decompressor *dec;
#endif
static _Thread_local unsigned char *zbuf;
static _Thread_local size_t zcap;

void fhir_read_release(void) {
#ifdef FHIR_HAVE_LIBDEFLATE
    if (dec) libdeflate_free_decompressor(dec);
    dec = NULL;
#endif
    free(zbuf);
    zbuf = NULL;
    zcap = 0;
}

int fhir_have_libdeflate(void) {
#ifdef FHIR_HAVE_LIBDEFLATE
    return 1;
#else
    return 0;
#endif
}

int fhir_read_file(const char *path, size_t max_len, char **buf, size_t *cap, size_t *len,
                   const char **reason, cf_err *err) {
    int rc = CF_OK;
    *len = 0;
    *reason = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return cf_fail_errno(err, CF_EINPUT, "%s: cannot open", path);
    struct stat st;
    if (fstat(fd, &st) != 0) {
        rc = cf_fail_errno(err, CF_EINPUT, "%s: cannot stat", path);
        goto out;
    }
    if ((uint64_t)st.st_size > max_len) {
        *reason = "file larger than the size cap";
        rc = CF_EINPUT;
        goto out;
    }
    size_t n = (size_t)st.st_size;
    if (grow((char **)&zbuf, &zcap, n + 1)) {
        rc = cf_fail(err, CF_EINTERNAL, "%s: out of memory", path);
        goto out;
    }
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, zbuf + got, n - got);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            rc = cf_fail_errno(err, CF_EINPUT, "%s: read error", path);
            goto out;
        }
        if (r == 0) break; /* file shrank while reading; use what is there */
        got += (size_t)r;
    }
    n = got;
    if (n < 2 || zbuf[0] != 0x1f || zbuf[1] != 0x8b) { /* plain */
        if (grow(buf, cap, n + 1)) {
            rc = cf_fail(err, CF_EINTERNAL, "%s: out of memory", path);
            goto out;
        }
        memcpy(*buf, zbuf, n);
        (*buf)[n] = '\0';
        *len = n;
        goto out;
    }
    if (n < 18) {
        *reason = "truncated gzip stream";
        rc = CF_EINPUT;
        goto out;
    }
    uint32_t isize = (uint32_t)zbuf[n - 4] | (uint32_t)zbuf[n - 3] << 8 |
                     (uint32_t)zbuf[n - 2] << 16 | (uint32_t)zbuf[n - 1] << 24;
    /* A trailer claiming more than the cap may be corrupt (or the file may exceed 4 GiB):
     * let zlib inflate and tell which. */
    if (isize > max_len) {
        rc = inflate_zlib(zbuf, n, max_len, buf, cap, len, reason);
        goto inflated;
    }
#ifdef FHIR_HAVE_LIBDEFLATE
    {
        if (!dec && !(dec = libdeflate_alloc_decompressor())) {
            rc = cf_fail(err, CF_EINTERNAL, "%s: out of memory", path);
            goto out;
        }
        if (grow(buf, cap, (size_t)isize + 1)) {
            rc = cf_fail(err, CF_EINTERNAL, "%s: out of memory", path);
            goto out;
        }
        size_t in_used = 0, out_n = 0;
        enum libdeflate_result lr =
            libdeflate_gzip_decompress_ex(dec, zbuf, n, *buf, isize, &in_used, &out_n);
        if (lr == LIBDEFLATE_SUCCESS && in_used == n) {
            (*buf)[out_n] = '\0';
            *len = out_n;
            goto out;
        }
    }
#endif
    if (grow(buf, cap, (size_t)isize + 1)) { /* the trailer's size is a good first guess */
        rc = cf_fail(err, CF_EINTERNAL, "%s: out of memory", path);
        goto out;
    }
    rc = inflate_zlib(zbuf, n, max_len, buf, cap, len, reason);
inflated:
    if (rc == CF_EINTERNAL) cf_fail(err, CF_EINTERNAL, "%s: out of memory inflating", path);
    else if (rc == CF_OK) (*buf)[*len] = '\0';
out:
    close(fd);
    /* A huge file must not pin its compressed copy for the rest of the run. */
    if (zcap > ((size_t)64 << 20)) {
        free(zbuf);
        zbuf = NULL;
        zcap = 0;
    }
    return rc;
}
