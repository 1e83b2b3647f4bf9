/* Fuzz target for the CSV reader.
 *
 * Reads every record of the input twice: as an in-memory buffer (which the reader consumes in
 * tiny irregular pieces, so every resume-after-refill path is hit) and as a file through a
 * memfd (large read(2) blocks, or the background inflate thread when the input starts with the
 * gzip magic bytes). Both must agree exactly: same records, fields, line numbers, blank lines,
 * and the same outcome and message. Every field must be NUL-terminated at its length, and line
 * numbers must grow. Both must also agree with a deliberately naive byte-at-a-time reference
 * parser written here from the rules in csv.h (for gzip input, run on the inflated bytes when the
 * whole input inflates cleanly), down to the line of the first error. Any disagreement aborts.
 * Half the inputs (by length) use a pipe or a tab as the separator instead of a comma. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <zlib.h>

#include "ingest/csv.h"

typedef struct {
    uint64_t hash, records, blank, err_line;
    int status, code;
    char msg[1024];
} outcome;

static uint64_t mix(uint64_t h, const void *p, size_t n) {
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i++) h = (h ^ c[i]) * 0x100000001b3ull;
    return h;
}

static void read_all(csv_reader *r, outcome *o) {
    csv_record rec;
    cf_err err = {0};
    uint64_t h = 0xcbf29ce484222325ull, prev_line = 0;
    int st;
    while ((st = csv_next(r, &rec, &err)) == 1) {
        if (rec.line <= prev_line || rec.nfields == 0) abort();
        prev_line = rec.line;
        h = mix(h, &rec.line, sizeof rec.line);
        h = mix(h, &rec.nfields, sizeof rec.nfields);
        for (size_t i = 0; i < rec.nfields; i++) {
            if (rec.fields[i][rec.lens[i]] != '\0' || strlen(rec.fields[i]) != rec.lens[i]) abort();
            h = mix(h, &rec.lens[i], sizeof rec.lens[i]);
            h = mix(h, rec.fields[i], rec.lens[i]);
        }
        o->records++;
    }
    o->hash = h;
    o->status = st;
    o->code = st < 0 ? err.code : 0;
    if (st < 0) {
        /* drop the "<name>:" prefix, which differs between the two paths */
        const char *name = csv_name(r);
        size_t nl = strlen(name);
        const char *m = strncmp(err.msg, name, nl) == 0 ? err.msg + nl : err.msg;
        snprintf(o->msg, sizeof o->msg, "%s", m);
        o->err_line = strtoull(m + (*m == ':'), NULL, 10);
        if (csv_next(r, &rec, &err) != -1) abort(); /* a failed reader stays failed */
    }
    o->blank = csv_blank_lines(r);
}

/* ---- reference parser: simple, slow, obviously following csv.h ---- */

typedef struct {
    char *v;
    size_t n, cap;
} rbuf;

static void rb_put(rbuf *b, char c) {
    if (b->n == b->cap) {
        b->cap = b->cap ? 2 * b->cap : 64;
        b->v = realloc(b->v, b->cap);
        if (!b->v) abort();
    }
    b->v[b->n++] = c;
}

/* Records are hashed exactly like read_all does. */
static void reference(const unsigned char *d, size_t n, char sep, outcome *o) {
    uint64_t h = 0xcbf29ce484222325ull, line = 1;
    size_t i = 0;
    if (n >= 3 && d[0] == 0xEF && d[1] == 0xBB && d[2] == 0xBF) i = 3;
    rbuf fields = {0};        /* field bytes, back to back */
    rb_put(&fields, 0);       /* never NULL, even for records of empty fields */
    size_t lens[4096], nf;
    o->status = 0;
    while (i < n) {
        if (d[i] == '\n') { o->blank++; line++; i++; continue; }
        if (d[i] == '\r') {
            if (i + 1 < n && d[i + 1] == '\n') { o->blank++; line++; i += 2; continue; }
            goto fail;
        }
        uint64_t rec_line = line;
        fields.n = 0;
        nf = 0;
        for (;;) { /* one field */
            size_t before = fields.n;
            int last = 0;
            if (i < n && d[i] == '"') {
                uint64_t qline = line;
                i++;
                for (;;) {
                    if (i == n) { line = qline; goto fail; }
                    unsigned char c = d[i];
                    if (c == '\0') goto fail;
                    if (c == '"') {
                        if (i + 1 < n && d[i + 1] == '"') { rb_put(&fields, '"'); i += 2; continue; }
                        i++;
                        break;
                    }
                    if (c == '\n') line++;
                    rb_put(&fields, (char)c);
                    i++;
                }
                if (i == n) last = 1;
                else if (d[i] == (unsigned char)sep) i++;
                else if (d[i] == '\n') { i++; line++; last = 1; }
                else if (d[i] == '\r' && i + 1 < n && d[i + 1] == '\n') { i += 2; line++; last = 1; }
                else goto fail;
            } else {
                for (;;) {
                    if (i == n) { last = 1; break; }
                    unsigned char c = d[i];
                    if (c == (unsigned char)sep) { i++; break; }
                    if (c == '\n') { i++; line++; last = 1; break; }
                    if (c == '\r') {
                        if (i + 1 < n && d[i + 1] == '\n') { i += 2; line++; last = 1; break; }
                        goto fail;
                    }
                    if (c == '\0') goto fail;
                    rb_put(&fields, (char)c);
                    i++;
                }
            }
            if (nf == sizeof lens / sizeof lens[0]) { free(fields.v); o->status = 2; return; } /* too wide: skip */
            lens[nf++] = fields.n - before;
            if (last) break;
        }
        h = mix(h, &rec_line, sizeof rec_line);
        size_t nfz = nf;
        h = mix(h, &nfz, sizeof nfz);
        size_t off = 0;
        for (size_t k = 0; k < nf; k++) {
            h = mix(h, &lens[k], sizeof lens[k]);
            h = mix(h, fields.v + off, lens[k]);
            off += lens[k];
        }
        o->records++;
    }
    o->hash = h;
    free(fields.v);
    return;
fail:
    o->hash = h;
    o->status = -1;
    o->err_line = line;
    free(fields.v);
}

/* Inflates all gzip members of d; returns NULL unless the whole input is valid. */
static unsigned char *inflate_all(const uint8_t *d, size_t n, size_t *out_n) {
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (inflateInit2(&zs, 15 + 32) != Z_OK) return NULL;
    rbuf out = {0};
    unsigned char tmp[4096];
    zs.next_in = (unsigned char *)(uintptr_t)d;
    zs.avail_in = (uInt)n;
    int ok = 0;
    for (;;) {
        zs.next_out = tmp;
        zs.avail_out = sizeof tmp;
        int zr = inflate(&zs, Z_NO_FLUSH);
        for (size_t k = 0; k < sizeof tmp - zs.avail_out; k++) rb_put(&out, (char)tmp[k]);
        if (out.n > (8u << 20)) break;
        if (zr == Z_STREAM_END) {
            if (zs.avail_in == 0) { ok = 1; break; }
            if (inflateReset(&zs) != Z_OK) break;
            continue;
        }
        if (zr != Z_OK) break;
    }
    inflateEnd(&zs);
    if (!ok) { free(out.v); return NULL; }
    *out_n = out.n;
    return out.v ? (unsigned char *)out.v : calloc(1, 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    outcome a = {0}, b = {0};
    cf_err err = {0};
    csv_reader *r = NULL;
    /* Half the inputs are read with another separator (pipe or tab), chosen by their length. */
    char sep = size % 4 == 1 ? '|' : size % 4 == 3 ? '\t' : ',';
    if (csv_open_buffer(&r, "fuzz", (const char *)data, size, &err) != CF_OK) abort();
    csv_set_separator(r, sep);
    read_all(r, &a);
    csv_close(r);

    int fd = memfd_create("fuzz_csv", MFD_CLOEXEC);
    if (fd < 0) return 0;
    size_t off = 0;
    while (off < size) {
        ssize_t w = write(fd, data + off, size - off);
        if (w <= 0) {
            close(fd);
            return 0;
        }
        off += (size_t)w;
    }
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    if (csv_open_sep(&r, path, sep, &err) != CF_OK) abort();
    read_all(r, &b);
    csv_close(r);
    close(fd);

    if (a.hash != b.hash || a.records != b.records || a.blank != b.blank || a.status != b.status ||
        a.code != b.code || strcmp(a.msg, b.msg) != 0) {
        fprintf(stderr, "buffer and file paths disagree: records %llu/%llu status %d/%d msg '%s' / '%s'\n",
                (unsigned long long)a.records, (unsigned long long)b.records, a.status, b.status, a.msg,
                b.msg);
        abort();
    }

    outcome c = {0};
    int have_ref = 1;
    if (size >= 2 && data[0] == 0x1f && data[1] == 0x8b) {
        size_t pn;
        unsigned char *plain = inflate_all(data, size, &pn);
        if (plain) reference(plain, pn, sep, &c);
        else have_ref = 0;
        free(plain);
    } else {
        reference(data, size, sep, &c);
    }
    if (have_ref && c.status != 2 &&
        (c.hash != a.hash || c.records != a.records || c.blank != a.blank || c.status != a.status ||
         c.err_line != a.err_line)) {
        fprintf(stderr, "reader and reference disagree: records %llu/%llu status %d/%d line %llu/%llu msg '%s'\n",
                (unsigned long long)a.records, (unsigned long long)c.records, a.status, c.status,
                (unsigned long long)a.err_line, (unsigned long long)c.err_line, a.msg);
        abort();
    }
    return 0;
}
