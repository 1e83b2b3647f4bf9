/* Tests for the streaming CSV reader (src/ingest/csv.c).
 *
 * Every small case runs through all four input paths: an in-memory buffer (handed to the parser
 * in tiny irregular pieces), the same bytes gzip-compressed in memory, a plain file (read(2)) and
 * a gzip file (background inflate thread). All four must give the same records, line numbers and
 * blank-line counts, or the same error at the same line. Larger tests cover records that cross
 * the internal block boundaries, multi-member gzip, the record-size limit, early close, and the
 * real MIMIC-IV demo files cross-checked against Python's csv module. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "check.h"
#include "ingest/csv.h"

/* ---- helpers --------------------------------------------------------------------------------- */

typedef struct {
    char *s;
    size_t n, cap;
} sbuf;

static void sb_add(sbuf *b, const char *s, size_t n) {
    if (b->n + n + 1 > b->cap) {
        size_t nc = b->cap ? b->cap : 256;
        while (nc < b->n + n + 1) nc *= 2;
        b->s = realloc(b->s, nc);
        if (!b->s) abort();
        b->cap = nc;
    }
    memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = '\0';
}
static void sb_str(sbuf *b, const char *s) { sb_add(b, s, strlen(s)); }

static char *tmp_path(const char *suffix) {
    static int counter;
    char *p = malloc(4096);
    if (!p) abort();
    snprintf(p, 4096, "%s/csv_case_%d%s", check_tmpdir(), counter++, suffix);
    return p;
}

static int write_file(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = len ? fwrite(data, 1, len, f) : 0;
    return (fclose(f) == 0 && w == len) ? 0 : -1;
}

static int write_gz_file(const char *path, const void *data, size_t len, const char *mode) {
    gzFile g = gzopen(path, mode);
    if (!g) return -1;
    int ok = len == 0 || gzwrite(g, data, (unsigned)len) == (int)len;
    return (gzclose(g) == Z_OK && ok) ? 0 : -1;
}

/* gzip-compresses in memory (windowBits 15 + 16 selects the gzip wrapper). */
static unsigned char *gzip_mem(const void *data, size_t len, size_t *out_len) {
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (deflateInit2(&zs, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) abort();
    size_t cap = deflateBound(&zs, (uLong)len) + 64;
    unsigned char *out = malloc(cap);
    if (!out) abort();
    zs.next_in = (unsigned char *)(uintptr_t)data;
    zs.avail_in = (uInt)len;
    zs.next_out = out;
    zs.avail_out = (uInt)cap;
    if (deflate(&zs, Z_FINISH) != Z_STREAM_END) abort();
    *out_len = cap - zs.avail_out;
    deflateEnd(&zs);
    return out;
}

static void *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    sbuf b = {0};
    char tmp[65536];
    size_t n;
    while ((n = fread(tmp, 1, sizeof tmp, f)) > 0) sb_add(&b, tmp, n);
    fclose(f);
    *len = b.n;
    return b.s ? b.s : calloc(1, 1);
}

/* Appends one field with \, |, LF and CR made visible, so a dump is one line per record. */
static void dump_field(sbuf *b, const char *f, size_t len) {
    for (size_t i = 0; i < len; i++) {
        switch (f[i]) {
        case '\\': sb_str(b, "\\\\"); break;
        case '|': sb_str(b, "\\|"); break;
        case '\n': sb_str(b, "\\n"); break;
        case '\r': sb_str(b, "\\r"); break;
        default: sb_add(b, f + i, 1);
        }
    }
}

typedef struct {
    char *dump;      /* "line:f1|f2|...\n" per record */
    int status;      /* last csv_next result: 0 or -1 */
    cf_err err;
    uint64_t blank;
    uint64_t bytes_read, file_size;
    int bad_term;    /* a field whose strlen differs from its length */
} run_result;

static void run_reader(csv_reader *r, run_result *res) {
    sbuf b = {0};
    sb_str(&b, "");
    csv_record rec;
    int st;
    while ((st = csv_next(r, &rec, &res->err)) == 1) {
        char num[32];
        snprintf(num, sizeof num, "%llu:", (unsigned long long)rec.line);
        sb_str(&b, num);
        for (size_t i = 0; i < rec.nfields; i++) {
            if (i) sb_str(&b, "|");
            if (strlen(rec.fields[i]) != rec.lens[i]) res->bad_term = 1;
            dump_field(&b, rec.fields[i], rec.lens[i]);
        }
        sb_str(&b, "\n");
    }
    res->status = st;
    res->dump = b.s;
    res->blank = csv_blank_lines(r);
    res->bytes_read = csv_bytes_read(r);
    res->file_size = csv_file_size(r);
}

static char test_sep = ','; /* the separator run_mode reads with */

/* The chunk modes cut the input with csv_next_chunk (after csv_next has read `head` records) and
 * parse each chunk with its own chunk reader, as parallel ingest does: they must give the same
 * records, lines and errors as the sequential paths. */
enum { MODE_MEM, MODE_MEM_GZ, MODE_FILE, MODE_FILE_GZ, MODE_CHUNK1, MODE_CHUNK7, MODE_CHUNK64, N_MODES };
static const char *mode_name[] = {"buffer", "buffer-gz", "file", "file-gz", "chunks-1", "chunks-7-gz", "chunks-64-file"};

/* Chunked reading of r after `head` records read one by one. */
static void run_chunked(csv_reader *r, size_t target, int head, run_result *res) {
    sbuf b = {0};
    sb_str(&b, "");
    csv_record rec;
    int st = 1;
    for (int i = 0; i < head && st == 1; i++) {
        if ((st = csv_next(r, &rec, &res->err)) != 1) break;
        char num[32];
        snprintf(num, sizeof num, "%llu:", (unsigned long long)rec.line);
        sb_str(&b, num);
        for (size_t k = 0; k < rec.nfields; k++) {
            if (k) sb_str(&b, "|");
            dump_field(&b, rec.fields[k], rec.lens[k]);
        }
        sb_str(&b, "\n");
    }
    while (st == 1) {
        csv_chunk c;
        st = csv_next_chunk(r, target, &c, &res->err);
        if (st != 1) break;
        csv_reader *cr;
        if (csv_open_chunk(&cr, csv_name(r), test_sep, &c, &res->err) != CF_OK) {
            st = -1;
            break;
        }
        run_result part;
        memset(&part, 0, sizeof part);
        run_reader(cr, &part);
        csv_close(cr);
        sb_str(&b, part.dump);
        free(part.dump);
        if (part.status != 0) {
            st = part.status;
            res->err = part.err;
            res->bad_term |= part.bad_term;
            break;
        }
        res->bad_term |= part.bad_term;
    }
    res->status = st;
    res->dump = b.s;
}


/* Reads data through one input path; returns 0 if the reader could be opened. */
static int run_chunk_mode(int mode, const char *data, size_t len, run_result *res);
static int run_mode(int mode, const char *data, size_t len, run_result *res) {
    if (mode >= MODE_CHUNK1) return run_chunk_mode(mode, data, len, res);
    memset(res, 0, sizeof *res);
    csv_reader *r = NULL;
    int rc = -1;
    if (mode == MODE_MEM) {
        rc = csv_open_buffer(&r, "mem.csv", data, len, &res->err);
    } else if (mode == MODE_MEM_GZ) {
        size_t zl;
        unsigned char *z = gzip_mem(data, len, &zl);
        rc = csv_open_buffer(&r, "mem.csv.gz", (const char *)z, zl, &res->err);
        free(z); /* the reader keeps its own copy */
    } else {
        char *p = tmp_path(mode == MODE_FILE ? ".csv" : ".csv.gz");
        int w = mode == MODE_FILE ? write_file(p, data, len) : write_gz_file(p, data, len, "wb");
        if (w == 0) rc = csv_open(&r, p, &res->err);
        unlink(p);
        free(p);
    }
    if (rc != CF_OK) return -1;
    csv_set_separator(r, test_sep);
    run_reader(r, res);
    csv_close(r);
    return 0;
}

static int run_chunk_mode(int mode, const char *data, size_t len, run_result *res) {
    memset(res, 0, sizeof *res);
    csv_reader *r = NULL;
    int rc = -1;
    if (mode == MODE_CHUNK1) {
        rc = csv_open_buffer(&r, "mem.csv", data, len, &res->err);
    } else if (mode == MODE_CHUNK7) {
        size_t zl;
        unsigned char *z = gzip_mem(data, len, &zl);
        rc = csv_open_buffer(&r, "mem.csv.gz", (const char *)z, zl, &res->err);
        free(z);
    } else {
        char *p = tmp_path(".csv.gz");
        if (write_gz_file(p, data, len, "wb") == 0) rc = csv_open(&r, p, &res->err);
        unlink(p);
        free(p);
    }
    if (rc != CF_OK) return -1;
    csv_set_separator(r, test_sep);
    run_chunked(r, mode == MODE_CHUNK1 ? 1 : mode == MODE_CHUNK7 ? 7 : 64, mode == MODE_CHUNK1 ? 0 : 1, res);
    csv_close(r);
    return 0;
}

/* All four paths must accept data with exactly this dump and blank-line count. */
static void expect_records(const char *data, size_t len, const char *want, uint64_t want_blank) {
    for (int mode = 0; mode < N_MODES; mode++) {
        run_result res;
        if (run_mode(mode, data, len, &res) != 0) {
            CHECK_FAIL_("%s: cannot open: %s", mode_name[mode], res.err.msg);
            continue;
        }
        if (res.status != 0) CHECK_FAIL_("%s: unexpected error: %s", mode_name[mode], res.err.msg);
        if (strcmp(res.dump, want) != 0)
            CHECK_FAIL_("%s: records differ\n--- got\n%s--- want\n%s", mode_name[mode], res.dump, want);
        if (res.blank != want_blank && mode < MODE_CHUNK1) /* chunk readers do not count them */
            CHECK_FAIL_("%s: blank lines %llu, want %llu", mode_name[mode],
                        (unsigned long long)res.blank, (unsigned long long)want_blank);
        if (res.bad_term) CHECK_FAIL_("%s: a field is not NUL-terminated at its length", mode_name[mode]);
        free(res.dump);
    }
}
#define EXPECT(lit, want, blank) expect_records(lit, sizeof(lit) - 1, want, blank)

/* All four paths must fail with CF_EINPUT at `line`, with `what` in the message, after exactly
 * the records in want_before, and without echoing the field text "SECRET". */
static void expect_error(const char *data, size_t len, uint64_t line, const char *what,
                         const char *want_before) {
    char at[64];
    snprintf(at, sizeof at, ":%llu: ", (unsigned long long)line);
    for (int mode = 0; mode < N_MODES; mode++) {
        run_result res;
        if (run_mode(mode, data, len, &res) != 0) {
            CHECK_FAIL_("%s: cannot open: %s", mode_name[mode], res.err.msg);
            continue;
        }
        if (res.status != -1 || res.err.code != CF_EINPUT) {
            CHECK_FAIL_("%s: expected an input error, got status %d code %d", mode_name[mode],
                        res.status, res.err.code);
        } else {
            if (!strstr(res.err.msg, at))
                CHECK_FAIL_("%s: message \"%s\" lacks line \"%s\"", mode_name[mode], res.err.msg, at);
            if (!strstr(res.err.msg, what))
                CHECK_FAIL_("%s: message \"%s\" lacks \"%s\"", mode_name[mode], res.err.msg, what);
            if (strstr(res.err.msg, "SECRET"))
                CHECK_FAIL_("%s: message leaks field content: %s", mode_name[mode], res.err.msg);
            if (strncmp(res.err.msg, "mem.csv", 7) != 0 && !strstr(res.err.msg, "csv_case_"))
                CHECK_FAIL_("%s: message does not name the file: %s", mode_name[mode], res.err.msg);
        }
        if (want_before && strcmp(res.dump, want_before) != 0)
            CHECK_FAIL_("%s: records before the error differ\n--- got\n%s--- want\n%s",
                        mode_name[mode], res.dump, want_before);
        free(res.dump);
    }
}
#define EXPECT_ERR(lit, line, what, before) expect_error(lit, sizeof(lit) - 1, line, what, before)

/* ---- small cases ----------------------------------------------------------------------------- */

static void test_basic(void) {
    EXPECT("a,b,c\n1,2,3\n", "1:a|b|c\n2:1|2|3\n", 0);
    EXPECT("a,b\n1,2", "1:a|b\n2:1|2\n", 0);               /* no final line end */
    EXPECT("x", "1:x\n", 0);
    EXPECT("", "", 0);
    EXPECT("a\tb,c\x01\n", "1:a\tb|c\x01\n", 0);            /* other control bytes are content */
}

static void test_crlf(void) {
    EXPECT("a,b\r\n1,2\r\n", "1:a|b\n2:1|2\n", 0);
    EXPECT("a,b\r\n1,2", "1:a|b\n2:1|2\n", 0);
    EXPECT("a,\r\n,\r\n", "1:a|\n2:|\n", 0);
    EXPECT("\"q\"\r\n\"r\"", "1:q\n2:r\n", 0);
    EXPECT("a\nb\r\nc\n", "1:a\n2:b\n3:c\n", 0);               /* mixed line ends */
}

static void test_quotes(void) {
    EXPECT("\"a,b\",\"c\"\"d\"\n", "1:a,b|c\"d\n", 0);
    EXPECT("\"\"\"\"\n", "1:\"\n", 0);                        /* a field that is one quote */
    EXPECT("\"\"\"a\"\"\",x", "1:\"a\"|x\n", 0);
    EXPECT("\"abc\"", "1:abc\n", 0);                          /* closing quote is the last byte */
    EXPECT("\"a\"\"\"", "1:a\"\n", 0);
    EXPECT("a\"b,c\"\n", "1:a\"b|c\"\n", 0);                  /* quotes inside unquoted fields are literal */
    EXPECT(" \"x\",y\n", "1: \"x\"|y\n", 0);
    EXPECT("\"x\",\"\",\"y\"\"\"\"z\"\n", "1:x||y\"\"z\n", 0);
}

static void test_embedded_newlines(void) {
    EXPECT("\"x\ny\",z\nnext,1\n", "1:x\\ny|z\n3:next|1\n", 0);
    EXPECT("\"x\r\ny\",z\r\nnext,1\r\n", "1:x\\r\\ny|z\n3:next|1\n", 0);
    EXPECT("h\n\"a\n\n\nb\",\"c\nd\"\nlast\n", "1:h\n2:a\\n\\n\\nb|c\\nd\n7:last\n", 0);
    EXPECT("\"lone\rcr\",1\n", "1:lone\\rcr|1\n", 0);          /* CR alone is fine inside quotes */
    EXPECT("\"a,\"\"b\"\"\nc\",d\n2\n", "1:a,\"b\"\\nc|d\n3:2\n", 0);
}

static void test_empty_fields(void) {
    EXPECT(",,\n", "1:||\n", 0);
    EXPECT("\"\"\n", "1:\n", 0);
    EXPECT("a,\n", "1:a|\n", 0);
    EXPECT("a,", "1:a|\n", 0);
    EXPECT(",", "1:|\n", 0);
    EXPECT("\"\",\"\"", "1:|\n", 0);
}

static void test_blank_lines(void) {
    EXPECT("a\n\n\r\nb\n\n", "1:a\n4:b\n", 3);
    EXPECT("\n\n", "", 2);
    EXPECT("\r\n", "", 1);
    EXPECT("\na", "2:a\n", 1);
    EXPECT(" \n", "1: \n", 0);                                /* a space is a field, not blank */
}

static void test_bom_and_utf8(void) {
    EXPECT("\xEF\xBB\xBFid,x\n1,2\n", "1:id|x\n2:1|2\n", 0);
    EXPECT("\xEF\xBB\xBF", "", 0);
    EXPECT("\xEF\xBB\xBF\"q\"", "1:q\n", 0);
    EXPECT("\xEF\xBB", "1:\xEF\xBB\n", 0);                   /* not a BOM: kept as data */
    EXPECT("x\xEF\xBB\xBF", "1:x\xEF\xBB\xBF\n", 0);         /* only at the start */
    EXPECT("na\xC3\xAFve,\xE6\x97\xA5\xE6\x9C\xAC,\"\xF0\x9F\x98\x80,\"\n",
           "1:na\xC3\xAFve|\xE6\x97\xA5\xE6\x9C\xAC|\xF0\x9F\x98\x80,\n", 0);
    /* byte lengths, not characters */
    csv_reader *r;
    cf_err err = {0};
    const char in[] = "\xE6\x97\xA5\xE6\x9C\xAC,\xF0\x9F\x98\x80\n";
    REQUIRE(csv_open_buffer(&r, "u", in, sizeof in - 1, &err) == CF_OK);
    csv_record rec;
    CHECK_EQ_INT(csv_next(r, &rec, &err), 1);
    CHECK_EQ_INT(rec.nfields, 2);
    CHECK_EQ_INT(rec.lens[0], 6);
    CHECK_EQ_INT(rec.lens[1], 4);
    CHECK_EQ_INT(csv_next(r, &rec, &err), 0);
    csv_close(r);
}

static void test_errors(void) {
    EXPECT_ERR("a,b\n1,\"SECRET\ny\n", 2, "never closed", "1:a|b\n");
    EXPECT_ERR("\"SECRET", 1, "never closed", "");
    EXPECT_ERR("h\n\n\"x\"\"\n", 3, "never closed", "1:h\n");
    EXPECT_ERR("a\n\"SECRET\"y,z\n", 2, "after the closing quote", "1:a\n");
    EXPECT_ERR("a\n\"x\ny\" ,z\n", 3, "after the closing quote", "1:a\n");
    EXPECT_ERR("\"x\"\r", 1, "after the closing quote", "");
    EXPECT_ERR("\"x\"\rz", 1, "after the closing quote", "");
    EXPECT_ERR("a\nb\nSEC\0RET\n", 3, "NUL", "1:a\n2:b\n");
    EXPECT_ERR("a\n\"SECRET\n\0\"\n", 3, "NUL", "1:a\n");
    EXPECT_ERR("a\n\0", 2, "NUL", "1:a\n");
    EXPECT_ERR("SECRET\rb\n", 1, "carriage return", "");
    EXPECT_ERR("a\n\rb\n", 2, "carriage return", "1:a\n");
    EXPECT_ERR("a\n\r", 2, "carriage return", "1:a\n");
    EXPECT_ERR("a,SECRET\r", 1, "carriage return", "");
}

static void test_error_is_final(void) {
    csv_reader *r;
    cf_err err = {0};
    const char in[] = "\"a\"b\nok\n";
    REQUIRE(csv_open_buffer(&r, "final", in, sizeof in - 1, &err) == CF_OK);
    csv_record rec;
    CHECK_EQ_INT(csv_next(r, &rec, &err), -1);
    CHECK_EQ_INT(err.code, CF_EINPUT);
    cf_err err2 = {0};
    CHECK_EQ_INT(csv_next(r, &rec, &err2), -1); /* not "ok": the reader stays failed */
    CHECK(err2.code != CF_OK);
    csv_close(r);
}

static void test_open_errors(void) {
    csv_reader *r = (csv_reader *)1;
    cf_err err = {0};
    CHECK_EQ_INT(csv_open(&r, "-", &err), CF_EINPUT);
    CHECK(r == NULL);
    char *p = tmp_path(".missing");
    CHECK_EQ_INT(csv_open(&r, p, &err), CF_EINPUT);
    CHECK_CONTAINS(err.msg, p);
    free(p);
    CHECK_EQ_INT(csv_open(&r, check_tmpdir(), &err), CF_EINPUT);
    CHECK_CONTAINS(err.msg, "directory");
}

/* ---- gzip ------------------------------------------------------------------------------------ */

/* A deterministic CSV of about n bytes, lines "i,word,i*i\n". */
static char *make_plain_csv(size_t n, size_t *len, uint64_t *nrec) {
    sbuf b = {0};
    sb_str(&b, "id,word,sq\n");
    uint64_t i = 0;
    while (b.n < n) {
        char line[96];
        snprintf(line, sizeof line, "%llu,w%llu,%llu\n", (unsigned long long)i,
                 (unsigned long long)(i * 7919 % 1000), (unsigned long long)(i * i));
        sb_str(&b, line);
        i++;
    }
    *len = b.n;
    *nrec = i + 1;
    return b.s;
}

static void test_gzip_multi_member(void) {
    char *p = tmp_path(".csv.gz");
    /* the member boundary falls inside a record and inside a quoted field */
    static const char *parts[] = {"a,b\n1,\"x", "y\"\"z\",2\n3,", "4\n"};
    for (int i = 0; i < 3; i++) REQUIRE(write_gz_file(p, parts[i], strlen(parts[i]), i ? "ab" : "wb") == 0);
    csv_reader *r;
    cf_err err = {0};
    REQUIRE(csv_open(&r, p, &err) == CF_OK);
    run_result res = {0};
    run_reader(r, &res);
    CHECK_EQ_INT(res.status, 0);
    CHECK_EQ_STR(res.dump, "1:a|b\n2:1|xy\"z|2\n3:3|4\n");
    struct stat st;
    REQUIRE(stat(p, &st) == 0);
    CHECK_EQ_INT(res.file_size, st.st_size);
    CHECK_EQ_INT(res.bytes_read, st.st_size);
    csv_close(r);
    free(res.dump);

    /* the same bytes as an in-memory buffer */
    size_t len;
    char *data = read_file(p, &len);
    REQUIRE(data != NULL);
    REQUIRE(csv_open_buffer(&r, "multi", data, len, &err) == CF_OK);
    memset(&res, 0, sizeof res);
    run_reader(r, &res);
    CHECK_EQ_INT(res.status, 0);
    CHECK_EQ_STR(res.dump, "1:a|b\n2:1|xy\"z|2\n3:3|4\n");
    csv_close(r);
    free(res.dump);
    free(data);
    unlink(p);
    free(p);

    /* two large members split in the middle of a line; then the second member cut short */
    size_t len1;
    uint64_t nrec;
    char *csv = make_plain_csv(3u << 20, &len1, &nrec);
    size_t za, zb;
    unsigned char *z1 = gzip_mem(csv, len1 / 2, &za);
    unsigned char *z2 = gzip_mem(csv + len1 / 2, len1 - len1 / 2, &zb);
    unsigned char *both = malloc(za + zb);
    REQUIRE(both != NULL);
    memcpy(both, z1, za);
    memcpy(both + za, z2, zb);
    for (int cut = 0; cut <= 1; cut++) {
        size_t blen = cut ? za + zb / 2 : za + zb;
        p = tmp_path(".csv.gz");
        REQUIRE(write_file(p, both, blen) == 0);
        for (int mem = 0; mem <= 1; mem++) {
            REQUIRE((mem ? csv_open_buffer(&r, p, (const char *)both, blen, &err) : csv_open(&r, p, &err)) == CF_OK);
            csv_record rec;
            uint64_t n = 0, bad = 0;
            int st2;
            while ((st2 = csv_next(r, &rec, &err)) == 1) {
                if (rec.nfields != 3 || rec.line != n + 1) bad++;
                n++;
            }
            CHECK_EQ_INT(bad, 0);
            if (cut) {
                CHECK_EQ_INT(st2, -1);
                CHECK_CONTAINS(err.msg, "truncated gzip");
                CHECK(n > nrec / 2 && n < nrec);
            } else {
                CHECK_EQ_INT(st2, 0);
                CHECK_EQ_INT(n, nrec);
                CHECK_EQ_INT(csv_bytes_read(r), blen);
            }
            csv_close(r);
        }
        unlink(p);
        free(p);
    }
    free(both);
    free(z1);
    free(z2);
    free(csv);
}

static void test_gzip_truncated_and_corrupt(void) {
    size_t len;
    uint64_t nrec;
    char *csv = make_plain_csv(3u << 20, &len, &nrec);
    size_t zl;
    unsigned char *z = gzip_mem(csv, len, &zl);
    free(csv);
    /* 0: cut in the middle; 1: wrong CRC in the trailer; 2: unknown compression method */
    for (int kind = 0; kind <= 2; kind++) {
        size_t cut = kind == 0 ? zl / 2 : zl;
        unsigned char *bad = malloc(cut);
        REQUIRE(bad != NULL);
        memcpy(bad, z, cut);
        if (kind == 1) bad[zl - 8] ^= 0x5a;
        if (kind == 2) bad[2] = 7;
        char *p = tmp_path(".csv.gz");
        REQUIRE(write_file(p, bad, cut) == 0);
        for (int mem = 0; mem <= 1; mem++) {
            csv_reader *r;
            cf_err err = {0};
            REQUIRE((mem ? csv_open_buffer(&r, p, (const char *)bad, cut, &err) : csv_open(&r, p, &err)) == CF_OK);
            csv_record rec;
            int st;
            uint64_t n = 0, last = 0;
            while ((st = csv_next(r, &rec, &err)) == 1) {
                if (rec.nfields != 3) CHECK_FAIL_("record at line %llu has %zu fields",
                                                  (unsigned long long)rec.line, rec.nfields);
                last = rec.line;
                n++;
            }
            CHECK_EQ_INT(st, -1);
            CHECK_EQ_INT(err.code, CF_EINPUT);
            CHECK_CONTAINS(err.msg, kind == 0 ? "truncated gzip" : "corrupt gzip");
            CHECK_CONTAINS(err.msg, p);
            /* records before the damage were delivered; the line is where parsing stopped */
            if (kind == 0) CHECK(n > 1000 && n < nrec);
            if (kind == 1) CHECK_EQ_INT(n, nrec);
            if (kind == 2) CHECK_EQ_INT(n, 0);
            char at[64];
            snprintf(at, sizeof at, ":%llu: ", (unsigned long long)last + 1);
            CHECK_CONTAINS(err.msg, at);
            csv_close(r);
        }
        unlink(p);
        free(p);
        free(bad);
    }
    /* gzip magic followed by nothing */
    for (int mem = 0; mem <= 1; mem++) {
        char *p = tmp_path(".csv.gz");
        REQUIRE(write_file(p, "\x1f\x8b", 2) == 0);
        csv_reader *r;
        cf_err err = {0};
        REQUIRE((mem ? csv_open_buffer(&r, p, "\x1f\x8b", 2, &err) : csv_open(&r, p, &err)) == CF_OK);
        csv_record rec;
        CHECK_EQ_INT(csv_next(r, &rec, &err), -1);
        CHECK_CONTAINS(err.msg, ":1: truncated gzip");
        csv_close(r);
        unlink(p);
        free(p);
    }
    free(z);
}

/* ---- large input and block boundaries -------------------------------------------------------- */

/* Field 2 of record i: length grows in jumps up to ~600 KiB, with commas, "" and newlines. */
static size_t long_field(uint64_t i, char *out) {
    size_t n = (size_t)((i * 104729u) % 600000u);
    if (i % 5 == 0) n = i % 3;
    for (size_t k = 0; k < n; k++) {
        uint64_t v = (i * 31 + k * 17) % 97;
        out[k] = v == 0 ? '"' : v == 1 ? ',' : v == 2 ? '\n' : v == 3 ? '\r' : (char)('a' + v % 26);
    }
    return n;
}

static void test_large_records_across_blocks(void) {
    char *fld = malloc(600000);
    REQUIRE(fld != NULL);
    sbuf b = {0};
    sb_str(&b, "id,text,tail\r\n");
    uint64_t nrec = 0;
    while (b.n < (9u << 20)) { /* > 9 MiB: many 1 MiB read and inflate blocks */
        char num[32];
        snprintf(num, sizeof num, "%llu,\"", (unsigned long long)nrec);
        sb_str(&b, num);
        size_t n = long_field(nrec, fld);
        for (size_t k = 0; k < n; k++) {
            if (fld[k] == '"') sb_add(&b, "\"\"", 2);
            else sb_add(&b, fld + k, 1);
        }
        sb_str(&b, nrec % 2 ? "\",end\r\n" : "\",end\n");
        nrec++;
    }
    /* one record longer than the initial 1 MiB file buffer forces the buffer to grow */
    sb_str(&b, "big,\"");
    for (int k = 0; k < 3 << 20; k++) sb_add(&b, k % 1000 ? "x" : "\"\"", k % 1000 ? 1 : 2);
    sb_str(&b, "\",end");

    char *p = tmp_path(".csv");
    char *pz = tmp_path(".csv.gz");
    REQUIRE(write_file(p, b.s, b.n) == 0);
    REQUIRE(write_gz_file(pz, b.s, b.n, "wb") == 0);
    for (int gz = 0; gz <= 1; gz++) {
        csv_reader *r;
        cf_err err = {0};
        REQUIRE(csv_open(&r, gz ? pz : p, &err) == CF_OK);
        csv_record rec;
        REQUIRE_EQ_INT(csv_next(r, &rec, &err), 1);
        CHECK_EQ_STR(rec.fields[1], "text");
        uint64_t line = 2;
        int bad = 0;
        for (uint64_t i = 0; i < nrec && !bad; i++) {
            if (csv_next(r, &rec, &err) != 1) {
                CHECK_FAIL_("record %llu: %s", (unsigned long long)i, err.msg);
                bad = 1;
                break;
            }
            size_t n = long_field(i, fld);
            char num[32];
            snprintf(num, sizeof num, "%llu", (unsigned long long)i);
            if (rec.nfields != 3 || strcmp(rec.fields[0], num) != 0 || rec.lens[1] != n ||
                memcmp(rec.fields[1], fld, n) != 0 || rec.fields[1][n] != '\0' ||
                strcmp(rec.fields[2], "end") != 0 || rec.line != line) {
                CHECK_FAIL_("record %llu differs (gz=%d, line %llu want %llu)", (unsigned long long)i,
                            gz, (unsigned long long)rec.line, (unsigned long long)line);
                bad = 1;
            }
            for (size_t k = 0; k < n; k++) line += fld[k] == '\n';
            line++;
        }
        if (!bad) {
            REQUIRE_EQ_INT(csv_next(r, &rec, &err), 1);
            CHECK_EQ_INT(rec.nfields, 3);
            CHECK_EQ_INT(rec.lens[1], 3u << 20);   /* each "" became one quote */
            CHECK_EQ_INT(rec.line, line);
            CHECK_EQ_STR(rec.fields[2], "end");
            CHECK_EQ_INT(csv_next(r, &rec, &err), 0);
        }
        csv_close(r);
    }
    unlink(p);
    unlink(pz);
    free(p);
    free(pz);
    free(b.s);
    free(fld);
}

static void test_record_limit(void) {
    size_t n = (size_t)CSV_MAX_RECORD + 4;
    char *data = malloc(n);
    REQUIRE(data != NULL);
    /* line 1 "h"; line 2 exactly CSV_MAX_RECORD bytes: accepted */
    memcpy(data, "h\n", 2);
    memset(data + 2, 'x', CSV_MAX_RECORD);
    memcpy(data + 2 + CSV_MAX_RECORD, "\nz", 2);
    csv_reader *r;
    cf_err err = {0};
    csv_record rec;
    REQUIRE(csv_open_buffer(&r, "limit", data, n, &err) == CF_OK);
    CHECK_EQ_INT(csv_next(r, &rec, &err), 1);
    CHECK_EQ_INT(csv_next(r, &rec, &err), 1);
    CHECK_EQ_INT(rec.lens[0], CSV_MAX_RECORD);
    CHECK_EQ_INT(csv_next(r, &rec, &err), 1);
    CHECK_EQ_STR(rec.fields[0], "z");
    csv_close(r);
    free(data);
    /* one byte more, ending in LF, in CRLF or at the end of input: rejected at line 2 */
    static const char *ends[] = {"\n", "\r\n", ""};
    for (int v = 0; v < 3; v++) {
        size_t len = 2 + (size_t)CSV_MAX_RECORD + 1 + strlen(ends[v]);
        char *d = malloc(len);
        REQUIRE(d != NULL);
        memcpy(d, "h\n", 2);
        memset(d + 2, 'x', (size_t)CSV_MAX_RECORD + 1);
        memcpy(d + 3 + CSV_MAX_RECORD, ends[v], strlen(ends[v]));
        REQUIRE(csv_open_buffer(&r, "limit", d, len, &err) == CF_OK);
        free(d);
        CHECK_EQ_INT(csv_next(r, &rec, &err), 1);
        CHECK_EQ_INT(csv_next(r, &rec, &err), -1);
        CHECK_EQ_INT(err.code, CF_EINPUT);
        CHECK_CONTAINS(err.msg, "limit:2: record longer than");
        csv_close(r);
    }
    /* an unterminated quote near the start of a huge file stops at the limit, at its line */
    char *p = tmp_path(".csv.gz");
    gzFile g = gzopen(p, "wb1");
    REQUIRE(g != NULL);
    gzputs(g, "a\nb\n\"open\n");
    char chunk[65536];
    memset(chunk, 'y', sizeof chunk);
    for (size_t w = 0; w < CSV_MAX_RECORD + sizeof chunk; w += sizeof chunk) gzwrite(g, chunk, sizeof chunk);
    gzclose(g);
    REQUIRE(csv_open(&r, p, &err) == CF_OK);
    CHECK_EQ_INT(csv_next(r, &rec, &err), 1);
    CHECK_EQ_INT(csv_next(r, &rec, &err), 1);
    CHECK_EQ_INT(csv_next(r, &rec, &err), -1);
    CHECK_CONTAINS(err.msg, ":3: record longer than");
    csv_close(r);
    unlink(p);
    free(p);
}

static void test_field_limit(void) {
    size_t n = (size_t)1 << 21; /* 2 Mi commas = 2 Mi + 1 fields */
    char *data = malloc(n);
    REQUIRE(data != NULL);
    memset(data, ',', n);
    csv_reader *r;
    cf_err err = {0};
    csv_record rec;
    REQUIRE(csv_open_buffer(&r, "wide", data, n, &err) == CF_OK);
    CHECK_EQ_INT(csv_next(r, &rec, &err), -1);
    CHECK_CONTAINS(err.msg, "wide:1: record has more than");
    csv_close(r);
    /* 1000 empty fields are fine */
    REQUIRE(csv_open_buffer(&r, "wide", data, 999, &err) == CF_OK);
    CHECK_EQ_INT(csv_next(r, &rec, &err), 1);
    CHECK_EQ_INT(rec.nfields, 1000);
    csv_close(r);
    free(data);
}

/* Closing early must stop the inflate thread (ASan/LSan would report the leak or the race). */
static void test_early_close(void) {
    size_t len;
    uint64_t nrec;
    char *csv = make_plain_csv(12u << 20, &len, &nrec);
    char *p = tmp_path(".csv.gz");
    REQUIRE(write_gz_file(p, csv, len, "wb1") == 0);
    free(csv);
    for (int k = 0; k < 3; k++) {
        csv_reader *r;
        cf_err err = {0};
        REQUIRE(csv_open(&r, p, &err) == CF_OK);
        csv_record rec;
        for (int i = 0; i < k * 40000; i++) REQUIRE(csv_next(r, &rec, &err) == 1);
        if (k > 0) CHECK(csv_bytes_read(r) > 0);
        CHECK(csv_bytes_read(r) <= csv_file_size(r));
        csv_close(r);
    }
    unlink(p);
    free(p);
}

static void test_progress_counters(void) {
    size_t len;
    uint64_t nrec;
    char *csv = make_plain_csv(2u << 20, &len, &nrec);
    char *p = tmp_path(".csv");
    REQUIRE(write_file(p, csv, len) == 0);
    csv_reader *r;
    cf_err err = {0};
    REQUIRE(csv_open(&r, p, &err) == CF_OK);
    CHECK_EQ_STR(csv_name(r), p);
    CHECK_EQ_INT(csv_file_size(r), len);
    csv_record rec;
    uint64_t n = 0;
    int st;
    while ((st = csv_next(r, &rec, &err)) == 1) n++;
    CHECK_EQ_INT(st, 0);
    CHECK_EQ_INT(n, nrec);
    CHECK_EQ_INT(csv_bytes_read(r), len);
    csv_close(r);
    unlink(p);
    free(p);
    free(csv);
}

/* ---- real data ------------------------------------------------------------------------------- */

/* Counts with Python's csv module: records (blank rows skipped), fields, field bytes, and the sum
 * of record start lines, all printed on one line. */
static int python_counts(const char *path, unsigned long long out[4]) {
    char cmd[8192];
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 -c '"
             "import csv,gzip,sys\n"
             "f=gzip.open(sys.argv[1],\"rt\",encoding=\"utf-8-sig\",newline=\"\")\n"
             "rd=csv.reader(f,strict=True)\n"
             "n=nf=nb=sl=0\n"
             "prev=0\n"
             "for row in rd:\n"
             "  start=prev+1; prev=rd.line_num\n"
             "  if not row: continue\n"
             "  n+=1; nf+=len(row); nb+=sum(len(x.encode()) for x in row); sl+=start\n"
             "print(n,nf,nb,sl)' '%s'",
             path);
    FILE *f = popen(cmd, "r");
    if (!f) return -1;
    int got = fscanf(f, "%llu %llu %llu %llu", &out[0], &out[1], &out[2], &out[3]);
    int rc = pclose(f);
    return got == 4 && rc == 0 ? 0 : -1;
}

static void check_real_file(const char *rel) {
    char path[4096];
    const char *demo = check_data("mimic-iv-demo");
    if (!demo) return;
    snprintf(path, sizeof path, "%s/%s", demo, rel);
    csv_reader *r;
    cf_err err = {0};
    REQUIRE(csv_open(&r, path, &err) == CF_OK);
    csv_record rec;
    REQUIRE_EQ_INT(csv_next(r, &rec, &err), 1);
    size_t want_fields = rec.nfields;
    CHECK(want_fields > 3);
    unsigned long long n = 1, nf = rec.nfields, nb = 0, sl = rec.line, wrong = 0;
    for (size_t i = 0; i < rec.nfields; i++) nb += rec.lens[i];
    int st;
    while ((st = csv_next(r, &rec, &err)) == 1) {
        n++;
        nf += rec.nfields;
        sl += rec.line;
        for (size_t i = 0; i < rec.nfields; i++) nb += rec.lens[i];
        if (rec.nfields != want_fields) wrong++;
    }
    CHECK_EQ_INT(st, 0);
    if (st != 0) fprintf(stderr, "  %s\n", err.msg);
    CHECK_EQ_INT(wrong, 0);
    CHECK(n > 1000);
    struct stat sb;
    REQUIRE(stat(path, &sb) == 0);
    CHECK_EQ_INT(csv_bytes_read(r), sb.st_size);
    csv_close(r);

    unsigned long long py[4];
    REQUIRE(python_counts(path, py) == 0);
    CHECK_EQ_INT(n, py[0]);
    CHECK_EQ_INT(nf, py[1]);
    CHECK_EQ_INT(nb, py[2]);
    CHECK_EQ_INT(sl, py[3]);
    fprintf(stderr, "  %s: %llu records, %llu fields, %llu field bytes (python agrees: %s)\n", rel, n,
            nf, nb, n == py[0] && nf == py[1] && nb == py[2] && sl == py[3] ? "yes" : "NO");
}

/* Other separators (PhysioNet 2019 files are pipe-separated): the same rules, commas are content. */
static void test_separators(void) {
    test_sep = '|';
    EXPECT("a|b,c|\"d|e\"\n1||3", "1:a|b,c|d\\|e\n2:1||3\n", 0); /* the dump escapes | */
    EXPECT("x|\"\"\"q\"\"\"\r\ny|", "1:x|\"q\"\n2:y|\n", 0);
    EXPECT_ERR("a|b\n\"x\"y|z\n", 2, "unexpected character after the closing quote", "1:a|b\n");
    test_sep = '\t';
    EXPECT("a\tb c\t\"d\te\"\n\n1\t\t3\n", "1:a|b c|d\te\n3:1||3\n", 1);
    test_sep = ',';
    cf_err err = {0};
    csv_reader *r;
    CHECK_EQ_INT(csv_open_sep(&r, "any.csv", '"', &err), CF_EINPUT);
    CHECK_CONTAINS(err.msg, "a field separator cannot be a quote");
}

static void test_mimic_labevents(void) { check_real_file("hosp/labevents.csv.gz"); }
static void test_mimic_d_items(void) { check_real_file("icu/d_items.csv.gz"); }

/* csv_input_size, for ingest's room estimate: a plain file's size; a one-member gzip file's exact
 * size (its trailer agrees with the first bytes' ratio); a file of many members, whose trailer
 * counts only the last, near its true size from the ratio (not the last member's); a small
 * gzip file read whole. Sizes checked against the bytes written, not the code's own output. */
static void test_input_size(void) {
    char plain[600], one[600], many[600], small[600];
    snprintf(plain, sizeof plain, "%s/size_plain.csv", check_tmpdir());
    snprintf(one, sizeof one, "%s/size_one.csv.gz", check_tmpdir());
    snprintf(many, sizeof many, "%s/size_many.csv.gz", check_tmpdir());
    snprintf(small, sizeof small, "%s/size_small.csv.gz", check_tmpdir());
    /* Rows of varied numbers: about 5:1 under gzip, the same all through. */
    size_t cap = (size_t)3 << 20, len = 0;
    char *text = malloc(cap);
    REQUIRE(text != NULL);
    uint32_t x = 12345;
    len += (size_t)snprintf(text, cap, "subject_id,time,value\n");
    while (len + 64 < cap) {
        x = x * 1664525u + 1013904223u;
        len += (size_t)snprintf(text + len, cap - len, "%u,2150-01-%02u %02u:%02u,%u.%u\n", 10000 + (x >> 20), 1 + (x >> 8) % 28,
                                (x >> 3) % 24, (x >> 11) % 60, (x >> 17) % 500, x % 10);
    }
    FILE *f = fopen(plain, "wb");
    REQUIRE(f != NULL);
    fwrite(text, 1, len, f);
    fclose(f);
    gzFile g = gzopen(one, "wb");
    REQUIRE(g != NULL);
    gzwrite(g, text, (unsigned)len);
    gzclose(g);
    /* Members of 40 KB each, appended as separate gzip streams (as bgzip and `cat a.gz b.gz` do). */
    unlink(many);
    size_t member = 40000, last = 0;
    for (size_t off = 0; off < len; off += member) {
        last = len - off < member ? len - off : member;
        g = gzopen(many, "ab");
        REQUIRE(g != NULL);
        gzwrite(g, text + off, (unsigned)last);
        gzclose(g);
    }
    unlink(small);
    for (int m = 0; m < 3; m++) {
        g = gzopen(small, "ab");
        REQUIRE(g != NULL);
        gzwrite(g, text, 1000);
        gzclose(g);
    }
    cf_err err = {0};
    uint64_t b = 0;
    CHECK_EQ_INT(csv_input_size(plain, &b, &err), CF_OK);
    CHECK_EQ_INT(b, len);
    CHECK_EQ_INT(csv_input_size(one, &b, &err), CF_OK);
    CHECK_EQ_INT(b, len);
    CHECK_EQ_INT(csv_input_size(many, &b, &err), CF_OK);
    CHECK(b > last * 4);
    CHECK((double)b > 0.8 * (double)len && (double)b < 1.25 * (double)len);
    CHECK_EQ_INT(csv_input_size(small, &b, &err), CF_OK);
    CHECK_EQ_INT(b, 3000);
    CHECK_EQ_INT(csv_input_size("/nonexistent/x.csv", &b, &err), CF_EINPUT);
    unlink(plain);
    unlink(one);
    unlink(many);
    unlink(small);
    free(text);
}

int main(void) {
    RUN(test_basic);
    RUN(test_input_size);
    RUN(test_crlf);
    RUN(test_quotes);
    RUN(test_embedded_newlines);
    RUN(test_empty_fields);
    RUN(test_blank_lines);
    RUN(test_bom_and_utf8);
    RUN(test_errors);
    RUN(test_error_is_final);
    RUN(test_open_errors);
    RUN(test_gzip_multi_member);
    RUN(test_gzip_truncated_and_corrupt);
    RUN(test_large_records_across_blocks);
    RUN(test_record_limit);
    RUN(test_field_limit);
    RUN(test_early_close);
    RUN(test_progress_counters);
    RUN(test_separators);
    RUN(test_mimic_labevents);
    RUN(test_mimic_d_items);
    /* Again with every gzip file streamed through zlib, the path files over 32 MiB take. */
    setenv("CLINFM_CSV_STREAM_GZ", "1", 1);
    RUN(test_basic);
    RUN(test_quotes);
    RUN(test_embedded_newlines);
    RUN(test_errors);
    RUN(test_gzip_multi_member);
    RUN(test_gzip_truncated_and_corrupt);
    RUN(test_large_records_across_blocks);
    RUN(test_early_close);
    RUN(test_progress_counters);
    RUN(test_separators);
    RUN(test_mimic_labevents);
    return check_summary();
}
