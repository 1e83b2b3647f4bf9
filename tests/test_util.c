/* The shared tools of src/util that other tests do not cover on their own: the growing buffer
 * (sbuf.h) against snprintf and a hand-escaped JSON string, the whole-file reader (file.h) on
 * files written here, the byte-order codec (le.h) against bytes written out by hand, the
 * integer-keyed map (u64map.h) against a plain array with 100 000 keys (0 included), and the
 * section reader (kv.h) on every construct and error of its syntax, the string interner
 * (strmap.h) with and without a reserve against the same insertions, and the large-table
 * allocator (err.h) zeroed and writable end to end; cf_grow's capacities and its refusal of an
 * overflowing size, CF_FREE_ALL (run under ASan: a leak or double free fails), and the cJSON
 * field tables and file writer (json.h) against the text cJSON prints for the same calls. */
#include "check.h"

#include <stdint.h>

#include <cjson/cJSON.h>

#include "util/file.h"
#include "util/json.h"
#include "util/kv.h"
#include "util/le.h"
#include "util/sbuf.h"
#include "util/strmap.h"
#include "util/u64map.h"

static void test_sbuf(void) {
    sbuf b = {0};
    char want[4096] = "";
    size_t wl = 0;
    for (int i = 0; i < 300; i++) { /* grows past its first allocation several times */
        sbuf_fmt(&b, "%d,%s;", i, i % 7 ? "x" : "yy");
        wl += (size_t)snprintf(want + wl, sizeof want - wl, "%d,%s;", i, i % 7 ? "x" : "yy");
    }
    REQUIRE(!b.oom);
    CHECK_EQ_INT(b.len, wl);
    CHECK_EQ_STR(b.p, want);
    /* A formatted piece longer than the small stack buffer sbuf_vfmt tries first. */
    char big[1000];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = 0;
    sbuf_clear(&b);
    CHECK_EQ_INT(b.len, 0);
    CHECK_EQ_STR(b.p, "");
    sbuf_fmt(&b, "<%s>", big);
    CHECK_EQ_INT(b.len, 1001);
    CHECK(b.p[0] == '<' && b.p[1000] == '>' && b.p[1001] == 0);
    sbuf_clear(&b);
    sbuf_json_str(&b, "a\"b\\c\n\x01z");
    CHECK_EQ_STR(b.p, "\"a\\\"b\\\\c\\u000a\\u0001z\"");
    size_t n;
    char *t = sbuf_take(&b, &n);
    CHECK_EQ_INT(n, 22);
    CHECK(b.p == NULL && b.len == 0);
    free(t);
    /* An empty buffer hands over "". */
    t = sbuf_take(&b, &n);
    CHECK(t && !*t && n == 0);
    free(t);
    /* After an out-of-memory write everything is ignored and the writer learns it once. */
    sbuf_put(&b, "abc", 3);
    b.oom = 1;
    CHECK_EQ_INT(sbuf_str(&b, "more"), -1);
    CHECK_EQ_STR(b.p, "abc");
    char path[4200];
    snprintf(path, sizeof path, "%s/sbuf_oom.txt", check_tmpdir());
    cf_err err = {0};
    CHECK_EQ_INT(sbuf_write_file(&b, path, &err), CF_EINTERNAL);
    CHECK(access(path, F_OK) != 0);
    CHECK(b.p == NULL);
    sbuf_str(&b, "written\n");
    CHECK_EQ_INT(sbuf_write_file(&b, path, &err), CF_OK);
    char *data;
    size_t len;
    REQUIRE(file_read_all(path, 0, &data, &len, &err) == CF_OK);
    CHECK_EQ_STR(data, "written\n");
    free(data);
    unlink(path);
}

static void test_file(void) {
    char path[4200];
    snprintf(path, sizeof path, "%s/file_read.bin", check_tmpdir());
    /* 200 000 bytes with NULs inside: the reader returns them all, NUL-terminated after. */
    size_t n = 200000;
    unsigned char *src = malloc(n);
    REQUIRE(src);
    for (size_t i = 0; i < n; i++) src[i] = (unsigned char)(i * 131 % 251);
    FILE *f = fopen(path, "wb");
    REQUIRE(f);
    fwrite(src, 1, n, f);
    fclose(f);
    cf_err err = {0};
    char *data;
    size_t len;
    REQUIRE(file_read_all(path, 0, &data, &len, &err) == CF_OK);
    CHECK_EQ_INT(len, n);
    CHECK(memcmp(data, src, n) == 0 && data[n] == 0);
    free(data);
    CHECK_EQ_INT(file_read_all(path, n - 1, &data, &len, &err), CF_EINPUT);
    CHECK_CONTAINS(err.msg, "larger than 199999 bytes");
    CHECK(data == NULL);
    CHECK_EQ_INT(file_read_all(path, n, &data, &len, &err), CF_OK);
    free(data);
    unlink(path);
    CHECK_EQ_INT(file_read_all(path, 0, &data, &len, &err), CF_EINPUT);
    CHECK_CONTAINS(err.msg, "cannot open");
    CHECK_EQ_INT(file_read_all(check_tmpdir(), 0, &data, &len, &err), CF_EINPUT);
    CHECK_CONTAINS(err.msg, "a folder");
    free(src);
}

static void test_le(void) {
    uint8_t b[8];
    le_put32(b, 0x04030201u);
    CHECK(b[0] == 1 && b[1] == 2 && b[2] == 3 && b[3] == 4);
    CHECK_EQ_INT(le_get32(b), 0x04030201u);
    le_put64(b, 0x0807060504030201ull);
    for (int i = 0; i < 8; i++) CHECK_EQ_INT(b[i], i + 1);
    CHECK(le_get64(b) == 0x0807060504030201ull);
    le_putf(b, 1.0f); /* 0x3f800000 */
    CHECK(b[0] == 0 && b[1] == 0 && b[2] == 0x80 && b[3] == 0x3f);
    CHECK(le_getf(b) == 1.0f);
}

static void test_u64map(void) {
    u64map m = {0};
    enum { N = 100000 };
    /* Keys spread (odd multiples) and sequential, 0 among them; each value is its key's index. */
    for (uint64_t i = 0; i < N; i++) {
        int added;
        uint64_t key = i % 2 ? i * 0x9E3779B97F4A7C15ULL : i;
        uint64_t *v = u64map_put(&m, key, &added);
        REQUIRE(v);
        CHECK(added);
        *v = i;
    }
    CHECK_EQ_INT(m.count, N);
    for (uint64_t i = 0; i < N; i++) {
        uint64_t key = i % 2 ? i * 0x9E3779B97F4A7C15ULL : i;
        uint64_t *v = u64map_get(&m, key);
        REQUIRE(v);
        CHECK(*v == i);
        int added;
        CHECK(u64map_put(&m, key, &added) == v && !added);
    }
    CHECK(u64map_get(&m, 3) == NULL); /* odd keys were spread */
    CHECK(u64map_get(&m, (uint64_t)N * 2) == NULL);
    u64map_clear(&m);
    CHECK_EQ_INT(m.count, 0);
    CHECK(u64map_get(&m, 0) == NULL && u64map_get(&m, 2) == NULL);
    u64map_free(&m);
}

/* A reserved map gives the same ids as one that grows as it goes, and lookups agree. */
static void test_strmap_reserve(void) {
    strmap a, b;
    strmap_init(&a);
    strmap_init(&b);
    REQUIRE(strmap_reserve(&b, 20000) == 0);
    size_t cap = b.cap;
    CHECK(cap >= 2 * 20000);
    char key[32];
    for (int i = 0; i < 30000; i++) { /* a third more than reserved, with repeats */
        int n = snprintf(key, sizeof key, "w%d", (i * 7919) % 25000);
        CHECK(strmap_intern(&a, key, (size_t)n) == strmap_intern(&b, key, (size_t)n));
        if (i == 19999) CHECK(b.cap == cap); /* no regrowth within the reserve */
    }
    CHECK_EQ_INT(a.count, 25000);
    CHECK_EQ_INT(b.count, 25000);
    for (uint32_t id = 0; id < a.count; id++) {
        size_t la, lb;
        const char *sa = strmap_str(&a, id, &la), *sb = strmap_str(&b, id, &lb);
        CHECK(la == lb && !memcmp(sa, sb, la));
        CHECK(strmap_find(&b, sa, la) == (int64_t)id);
    }
    CHECK(strmap_find(&b, "w25000", 6) == -1);
    strmap_free(&a);
    strmap_free(&b);
    /* the large-table allocator: zeroed over its whole length, below and above 2 MB */
    size_t sizes[] = {1000, (size_t)3 << 20};
    for (int k = 0; k < 2; k++) {
        unsigned char *p = cf_calloc_table(sizes[k], 1);
        REQUIRE(p);
        size_t nonzero = 0;
        for (size_t i = 0; i < sizes[k]; i++) nonzero += p[i] != 0;
        CHECK(nonzero == 0);
        p[sizes[k] - 1] = 1;
        free(p);
    }
    CHECK(cf_calloc_table(SIZE_MAX / 2, 4) == NULL);
}

/* Reads text with flags into "S kind/name" and "P key=value" lines, or the error. */
static void kv_dump(const char *text, unsigned flags, char *out, size_t cap) {
    kv_reader r;
    kv_open(&r, "f.x", text, strlen(text), flags);
    cf_err err = {0};
    size_t n = 0;
    out[0] = 0;
    for (int k; (k = kv_next(&r, &err)) != KV_END;) {
        if (k == KV_ERROR) {
            snprintf(out + n, cap - n, "E %s", err.msg);
            break;
        }
        n += (size_t)snprintf(out + n, cap - n, k == KV_SECTION ? "S %s/%s@%d|" : "P %s=%s@%d|",
                              k == KV_SECTION ? r.kind : r.key, k == KV_SECTION ? r.name : r.value, r.line);
    }
    kv_close(&r);
}

static void test_kv(void) {
    char out[1024];
    kv_dump("# head\n\n[task]\nname = t   # trailing\r\n[codes  a ]\ncode = X, Y\nv=a#b\n", 0, out, sizeof out);
    CHECK_EQ_STR(out, "S task/@3|P name=t@4|S codes/a@5|P code=X, Y@6|P v=a#b@7|");
    kv_dump("v=a#b\nq = \"x # y\"\nr = \"a\" b \"c\"\n", KV_HASH_ANYWHERE | KV_QUOTES, out, sizeof out);
    CHECK_EQ_STR(out, "P v=a@1|P q=x # y@2|P r=\"a\" b \"c\"@3|");
    kv_dump("q = \"x\"\n", 0, out, sizeof out); /* without KV_QUOTES the quotes stay */
    CHECK_EQ_STR(out, "P q=\"x\"@1|");
    kv_dump("[a]\nno equals here\n", 0, out, sizeof out);
    CHECK_EQ_STR(out, "S a/@1|E f.x:2: expected `key = value` or a [section]");
    kv_dump("[a\n", 0, out, sizeof out);
    CHECK_EQ_STR(out, "E f.x:1: a section header ends with ']'");
    kv_dump("x = 1\n = 2\n", 0, out, sizeof out);
    CHECK_EQ_STR(out, "P x=1@1|E f.x:2: a key is missing before '='");
    kv_dump("empty =\n", 0, out, sizeof out);
    CHECK_EQ_STR(out, "P empty=@1|");
    const char nul[] = "a = 1\nb = \0\n";
    kv_reader r;
    kv_open(&r, "n.x", nul, sizeof nul - 1, 0);
    cf_err err = {0};
    CHECK_EQ_INT(kv_next(&r, &err), KV_PAIR);
    CHECK_EQ_INT(kv_next(&r, &err), KV_ERROR);
    CHECK_EQ_STR(err.msg, "n.x:2: a NUL byte");
    kv_close(&r);
    kv_open(&r, "l.x", "k = 123456789\n", 14, 0);
    r.max_line = 8;
    CHECK_EQ_INT(kv_next(&r, &err), KV_ERROR);
    CHECK_EQ_STR(err.msg, "l.x:1: line longer than 8 bytes");
    kv_close(&r);
    /* A last line without a newline is read. */
    kv_dump("[s x]\nk = v", 0, out, sizeof out);
    CHECK_EQ_STR(out, "S s/x@1|P k=v@2|");
}

static void test_grow_free(void) {
    size_t cap = 0;
    int *a = cf_grow(NULL, &cap, 1, sizeof *a, 16);
    REQUIRE(a);
    CHECK_EQ_INT(cap, 16);
    for (int i = 0; i < 16; i++) a[i] = i;
    CHECK(cf_grow(a, &cap, 16, sizeof *a, 16) == a); /* room already: the same block */
    CHECK_EQ_INT(cap, 16);
    a = cf_grow(a, &cap, 17, sizeof *a, 16); /* doubling from the capacity, contents kept */
    REQUIRE(a);
    CHECK_EQ_INT(cap, 32);
    CHECK(a[0] == 0 && a[15] == 15);
    a = cf_grow(a, &cap, 200, sizeof *a, 16);
    REQUIRE(a);
    CHECK_EQ_INT(cap, 256);
    /* a size that overflows is refused, the block and the capacity untouched */
    CHECK(cf_grow(a, &cap, SIZE_MAX / 2, sizeof *a, 16) == NULL);
    CHECK_EQ_INT(cap, 256);
    char *b = malloc(10), *c = NULL;
    struct {
        char *x;
    } *s = malloc(sizeof *s);
    REQUIRE(b && s);
    s->x = malloc(3);
    CF_FREE_ALL(a, b, c, s->x, s); /* NULL skipped; s read before it is freed */
}

static void test_json(void) {
    cJSON *a = cJSON_CreateObject(), *b = cJSON_CreateObject();
    REQUIRE(a && b);
    JSON_ADD_STRINGS(a, {"name", "x"}, {"file", "y.csv"});
    JSON_ADD_NUMBERS(a, {"rows", 3.0}, {"share", 0.25}, {"none", 0.0});
    cJSON_AddStringToObject(b, "name", "x");
    cJSON_AddStringToObject(b, "file", "y.csv");
    cJSON_AddNumberToObject(b, "rows", 3);
    cJSON_AddNumberToObject(b, "share", 0.25);
    cJSON_AddNumberToObject(b, "none", 0);
    char *ta = cJSON_PrintUnformatted(a), *tb = cJSON_PrintUnformatted(b);
    REQUIRE(ta && tb);
    CHECK_EQ_STR(ta, "{\"name\":\"x\",\"file\":\"y.csv\",\"rows\":3,\"share\":0.25,\"none\":0}");
    CHECK_EQ_STR(ta, tb);
    free(ta);
    cJSON_Delete(a);
    /* json_write_file: the pretty text, written whole; b is deleted */
    char path[4096];
    snprintf(path, sizeof path, "%s/util_json.json", check_tmpdir());
    cf_err err = {0};
    char *pretty = cJSON_Print(b);
    REQUIRE(pretty);
    CHECK_EQ_INT(json_write_file(path, b, 1, &err), CF_OK);
    char *data = NULL;
    size_t len = 0;
    CHECK_EQ_INT(file_read_all(path, 0, &data, &len, &err), CF_OK);
    CHECK(data && !strcmp(data, pretty));
    free(data);
    free(pretty);
    free(tb);
}

int main(void) {
    RUN(test_sbuf);
    RUN(test_file);
    RUN(test_le);
    RUN(test_u64map);
    RUN(test_kv);
    RUN(test_strmap_reserve);
    RUN(test_grow_free);
    RUN(test_json);
    return check_summary();
}
