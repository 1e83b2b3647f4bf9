/* Event store: write, mmap, read back equal; spills and merges; subject index; atomicity;
 * damage detection; byte-identical output whatever the memory budget. */
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>
#include <zlib.h>

#include "check.h"
#include "store/store.h"
#include "store/store_block.h"
#include "store/store_crc.h"
#include "store/store_format.h"

typedef struct {
    int64_t subject, time;
    char code[32];
    float numeric;
    char text[120];
    int has_text;
    uint32_t source;
    uint64_t row;
} ref_event;

static uint64_t rng_state = 88172645463325252ULL;
static uint64_t rnd(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static int cmp_ref(const void *pa, const void *pb) {
    const ref_event *a = pa, *b = pb;
    if (a->subject != b->subject) return a->subject < b->subject ? -1 : 1;
    if (a->time != b->time) return a->time < b->time ? -1 : 1;
    uint64_t pa_ = ((uint64_t)a->source << 48) | a->row, pb_ = ((uint64_t)b->source << 48) | b->row;
    return pa_ < pb_ ? -1 : pa_ > pb_;
}

static ref_event *make_events(size_t n) {
    ref_event *ev = calloc(n, sizeof *ev);
    for (size_t i = 0; i < n; i++) {
        ev[i].subject = (int64_t)(rnd() % 500) - 50; /* negative ids are legal */
        ev[i].time = (rnd() % 10 == 0) ? TIME_NULL : (int64_t)(rnd() % 1000000) * 60000000LL;
        snprintf(ev[i].code, sizeof ev[i].code, "LAB//%u//mg", (unsigned)(rnd() % 300));
        ev[i].numeric = rnd() % 3 == 0 ? NAN : (float)(rnd() % 10000) / 7.0f;
        ev[i].has_text = rnd() % 4 == 0;
        if (ev[i].has_text) {
            if (rnd() % 2) snprintf(ev[i].text, sizeof ev[i].text, "short %u", (unsigned)(rnd() % 20));
            else snprintf(ev[i].text, sizeof ev[i].text, "a longer unique note number %zu with enough text to skip dedup ......", i);
        }
        ev[i].source = (uint32_t)(i % 3);
        ev[i].row = i + 1;
    }
    return ev;
}

static uint32_t write_version; /* format write_store writes: 0 = the current one */

static int write_store(const char *path, ref_event *ev, size_t n, size_t budget, int abort_it) {
    store_writer *w;
    cf_err err = {0};
    store_writer_options opt = {.memory_budget = budget, .version = write_version};
    if (store_writer_open(&w, path, &opt, &err)) return -1;
    const char *srcs[] = {"hosp/labevents", "hosp/admissions", "icu/icustays"};
    for (int i = 0; i < 3; i++)
        if (store_writer_source(w, srcs[i]) != i) return -1;
    for (size_t i = 0; i < n; i++) {
        int64_t c = store_writer_code(w, ev[i].code, strlen(ev[i].code));
        if (c < 0) return -1;
        store_writer_code_describe(w, (uint32_t)c, "a lab test", 10);
        if (store_writer_add(w, ev[i].subject, ev[i].time, (uint32_t)c, ev[i].numeric,
                             ev[i].has_text ? ev[i].text : NULL, strlen(ev[i].text), ev[i].source,
                             ev[i].row, &err))
            return -1;
    }
    store_writer_set_meta(w, "{\"producer\":\"test\"}");
    if (abort_it) {
        store_writer_abort(w);
        return 0;
    }
    if (store_writer_finish(w, &err)) {
        fprintf(stderr, "finish: %s\n", err.msg);
        return -1;
    }
    return 0;
}

static void check_equal(const char *path, ref_event *ev, size_t n) {
    store s;
    cf_err err = {0};
    REQUIRE(store_open(&s, path, &err) == CF_OK);
    CHECK(store_verify(&s, &err) == CF_OK);
    qsort(ev, n, sizeof *ev, cmp_ref);
    REQUIRE_EQ_INT(s.n_events, n);
    CHECK_EQ_INT(s.n_sources, 3);
    CHECK_EQ_STR(store_source_name(&s, 1), "hosp/admissions");
    size_t mismatches = 0;
    for (size_t i = 0; i < n; i++) {
        const char *code = store_code_str(&s, s.code[i]);
        int ok = s.time[i] == ev[i].time && strcmp(code, ev[i].code) == 0 &&
                 store_prov_source(s.prov[i]) == ev[i].source && store_prov_row(s.prov[i]) == ev[i].row;
        ok = ok && (isnan(ev[i].numeric) ? isnan(s.numeric[i]) : s.numeric[i] == ev[i].numeric);
        if (ev[i].has_text) {
            size_t len;
            const char *t = s.text[i] ? store_text_str(&s, s.text[i], &len) : NULL;
            ok = ok && t && len == strlen(ev[i].text) && memcmp(t, ev[i].text, len) == 0;
        } else {
            ok = ok && s.text[i] == 0;
        }
        if (!ok && mismatches++ < 3) CHECK_FAIL_("event %zu differs", i);
    }
    CHECK_EQ_INT(mismatches, 0);
    /* Subject index: every subject's events are exactly its slice. */
    size_t subjects = 0;
    for (size_t i = 0; i < n; i++)
        if (i == 0 || ev[i].subject != ev[i - 1].subject) subjects++;
    CHECK_EQ_INT(s.n_subjects, subjects);
    for (size_t i = 0; i < n; i++) {
        int64_t k = store_find_subject(&s, ev[i].subject);
        if (k < 0 || i < s.subject_start[k] || i >= s.subject_start[k + 1]) {
            CHECK_FAIL_("event %zu not in its subject's slice", i);
            break;
        }
    }
    CHECK_EQ_INT(store_find_subject(&s, 123456789), -1);
    /* Codes are sorted, findable, counted and described. */
    uint64_t total = 0;
    for (uint32_t c = 0; c < s.n_codes; c++) {
        if (c) CHECK(strcmp(store_code_str(&s, c - 1), store_code_str(&s, c)) < 0);
        CHECK_EQ_INT(store_find_code(&s, store_code_str(&s, c)), c);
        CHECK_EQ_STR(store_code_desc(&s, c), "a lab test");
        total += s.code_count[c];
    }
    CHECK_EQ_INT(total, n);
    CHECK_EQ_INT(store_find_code(&s, "NOPE"), -1);
    CHECK(s.meta_len == strlen("{\"producer\":\"test\"}") && memcmp(s.meta, "{\"producer\"", 11) == 0);
    store_close(&s);
    /* The stored counts, read without decoding any event, match counts made from the input. */
    uint64_t n_static = 0, n_numeric = 0, n_text = 0, per_source[3] = {0};
    for (size_t i = 0; i < n; i++) {
        n_static += ev[i].time == TIME_NULL;
        n_numeric += !isnan(ev[i].numeric);
        n_text += ev[i].has_text;
        per_source[ev[i].source]++;
    }
    REQUIRE(store_open_summary(&s, path, &err) == CF_OK);
    CHECK(s.time == NULL && s.code == NULL); /* nothing decoded */
    CHECK(s.has_summary);
    CHECK_EQ_INT(s.n_events, n);
    CHECK_EQ_INT(s.n_static_events, n_static);
    CHECK_EQ_INT(s.n_numeric_events, n_numeric);
    CHECK_EQ_INT(s.n_text_events, n_text);
    for (int k = 0; k < 3; k++) CHECK_EQ_INT(s.source_events[k], per_source[k]);
    CHECK(store_verify(&s, &err) == CF_OK); /* without the columns: block by block through a cursor */
    store_close(&s);
}

static void read_file(const char *path, char **data, size_t *len) {
    FILE *f = fopen(path, "rb");
    *data = NULL;
    *len = 0;
    if (!f) return;
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    *data = malloc(*len);
    if (fread(*data, 1, *len, f) != *len) *len = 0;
    fclose(f);
}

static void test_round_trip_in_memory(void) {
    char path[512];
    snprintf(path, sizeof path, "%s/mem.store", check_tmpdir());
    /* Three blocks and a part (65,536 events each), subjects spanning block boundaries. */
    size_t n = 3 * 65536 + 77;
    ref_event *ev = make_events(n);
    REQUIRE(write_store(path, ev, n, 0, 0) == 0);
    check_equal(path, ev, n);
    free(ev);
}

static void test_round_trip_with_spills(void) {
    char path[512], path2[512];
    snprintf(path, sizeof path, "%s/spill.store", check_tmpdir());
    snprintf(path2, sizeof path2, "%s/mem2.store", check_tmpdir());
    size_t n = 50000;
    rng_state = 1234567;
    ref_event *ev = make_events(n);
    /* 40 KiB budget: about 1,000 events per run, so about 50 runs to merge. */
    REQUIRE(write_store(path, ev, n, 40 << 10, 0) == 0);
    REQUIRE(write_store(path2, ev, n, 0, 0) == 0);
    check_equal(path, ev, n);
    char *a, *b;
    size_t la, lb;
    read_file(path, &a, &la);
    read_file(path2, &b, &lb);
    CHECK(la > 0 && la == lb && memcmp(a, b, la) == 0); /* deterministic whatever the budget */
    free(a);
    free(b);
    free(ev);
}

/* Runs longer than one run chunk (16,384 events), so the merge reads each run's later chunks through
 * the decoder thread, in whatever order the runs' chunks run out, beside the events left in memory
 * (sorted in two halves when there are 65,536 or more): the store equals the in-memory one byte for
 * byte, for budgets giving 1 run of 5 chunks and 70,000 events in memory, 11 runs of 1 chunk and
 * 7,000, 32 runs and 2,800. */
static void test_spills_of_many_chunks(void) {
    char path[512], path2[512];
    snprintf(path, sizeof path, "%s/chunks.store", check_tmpdir());
    snprintf(path2, sizeof path2, "%s/chunks-mem.store", check_tmpdir());
    size_t n = 150000;
    rng_state = 7654321;
    ref_event *ev = make_events(n);
    REQUIRE(write_store(path2, ev, n, 0, 0) == 0);
    char *b;
    size_t lb;
    read_file(path2, &b, &lb);
    const size_t budgets[] = {(size_t)2 * 80000 * 40, (size_t)2 * 13000 * 40, (size_t)2 * 4600 * 40};
    for (size_t t = 0; t < sizeof budgets / sizeof *budgets; t++) {
        REQUIRE(write_store(path, ev, n, budgets[t], 0) == 0);
        char *a;
        size_t la;
        read_file(path, &a, &la);
        CHECK(la > 0 && la == lb && memcmp(a, b, la) == 0);
        free(a);
    }
    check_equal(path, ev, n);
    free(b);
    free(ev);
}

/* Events of one source row share (subject, time, provenance): they keep the order they were added
 * in, also when a spill splits a row between two runs (rows of 3 events, runs of 1,024). */
static int write_rows(const char *path, size_t rows, size_t budget) {
    store_writer *w;
    cf_err err = {0};
    store_writer_options opt = {.memory_budget = budget};
    if (store_writer_open(&w, path, &opt, &err)) return -1;
    store_writer_source(w, "t");
    const char *codes[] = {"A", "B", "C"};
    for (int k = 0; k < 3; k++) store_writer_code(w, codes[k], 1);
    for (size_t r = 0; r < rows; r++)
        for (size_t k = 0; k < 3; k++) /* row r adds codes in a rotated order */
            if (store_writer_add(w, (int64_t)(r % 13), (int64_t)(r / 13) * 60000000, (uint32_t)((r + k) % 3), (float)k, NULL,
                                 0, 0, r + 1, &err))
                return -1;
    return store_writer_finish(w, &err) ? -1 : 0;
}

static void test_row_order_across_spills(void) {
    char path[512], path2[512];
    snprintf(path, sizeof path, "%s/rows-spilled.store", check_tmpdir());
    snprintf(path2, sizeof path2, "%s/rows-mem.store", check_tmpdir());
    const size_t rows = 5000;
    REQUIRE(write_rows(path, rows, 1) == 0); /* the smallest budget: 1,024 events per run */
    REQUIRE(write_rows(path2, rows, 0) == 0);
    char *a, *b;
    size_t la, lb;
    read_file(path, &a, &la);
    read_file(path2, &b, &lb);
    CHECK(la > 0 && la == lb && memcmp(a, b, la) == 0);
    free(a);
    free(b);
    store s;
    cf_err err = {0};
    REQUIRE(store_open(&s, path, &err) == CF_OK);
    REQUIRE_EQ_INT(s.n_events, 3 * rows);
    size_t bad = 0;
    for (size_t i = 0; i + 2 < s.n_events; i += 3) {
        uint64_t r = store_prov_row(s.prov[i]) - 1;
        for (size_t k = 0; k < 3; k++)
            if (store_prov_row(s.prov[i + k]) != r + 1 || s.numeric[i + k] != (float)k ||
                strcmp(store_code_str(&s, s.code[i + k]), (const char *[]){"A", "B", "C"}[(r + k) % 3]) != 0)
                bad++;
    }
    CHECK_EQ_INT(bad, 0);
    store_close(&s);
}

static void test_empty_store(void) {
    char path[512];
    snprintf(path, sizeof path, "%s/empty.store", check_tmpdir());
    REQUIRE(write_store(path, NULL, 0, 0, 0) == 0);
    store s;
    cf_err err = {0};
    REQUIRE(store_open(&s, path, &err) == CF_OK);
    CHECK_EQ_INT(s.n_events, 0);
    CHECK_EQ_INT(s.n_subjects, 0);
    CHECK(s.first_time == TIME_NULL);
    CHECK(store_verify(&s, &err) == CF_OK);
    store_close(&s);
}

static void test_abort_leaves_nothing(void) {
    char path[512];
    snprintf(path, sizeof path, "%s/aborted.store", check_tmpdir());
    ref_event *ev = make_events(1000);
    REQUIRE(write_store(path, ev, 1000, 40 << 10, 1) == 0);
    CHECK(access(path, F_OK) != 0);
    /* Nothing else either: the directory holds no temp or spill files. */
    char cmd[700];
    snprintf(cmd, sizeof cmd, "test -z \"$(ls -A %s | grep -v '\\.store$')\"", check_tmpdir());
    CHECK(system(cmd) == 0);
    free(ev);
}

static void test_damage_detected(void) {
    char path[512];
    snprintf(path, sizeof path, "%s/damaged.store", check_tmpdir());
    ref_event *ev = make_events(3000);
    REQUIRE(write_store(path, ev, 3000, 0, 0) == 0);
    free(ev);
    store s;
    cf_err err = {0};
    /* A flipped byte inside an event block: the block's checksum fails at open, naming it. */
    int fd = open(path, O_RDWR);
    REQUIRE(fd >= 0);
    store_header h;
    REQUIRE(pread(fd, &h, sizeof h, 0) == (ssize_t)sizeof h);
    const store_section *data = NULL, *heap = NULL;
    for (uint32_t i = 0; i < h.n_sections; i++) {
        if (h.sections[i].kind == SEC_EVENT_DATA) data = &h.sections[i];
        if (h.sections[i].kind == SEC_CODE_HEAP) heap = &h.sections[i];
    }
    REQUIRE(data && heap && data->size > 100);
    unsigned char byte;
    off_t at = (off_t)(data->offset + data->size / 2);
    REQUIRE(pread(fd, &byte, 1, at) == 1);
    byte ^= 0x40;
    REQUIRE(pwrite(fd, &byte, 1, at) == 1);
    CHECK(store_open(&s, path, &err) == CF_EINPUT);
    CHECK_CONTAINS(err.msg, "event block 0");
    CHECK_CONTAINS(err.msg, "damaged");
    /* The summary does not read the blocks, so it still opens; verify (on a full open) would not. */
    CHECK(store_open_summary(&s, path, &err) == CF_OK);
    store_close(&s);
    byte ^= 0x40;
    REQUIRE(pwrite(fd, &byte, 1, at) == 1);
    REQUIRE(store_open(&s, path, &err) == CF_OK);
    store_close(&s);
    /* A flipped byte in a dictionary: open succeeds (cheap checks), verify names the section. */
    at = (off_t)(heap->offset + 1);
    REQUIRE(pread(fd, &byte, 1, at) == 1);
    byte ^= 0x01;
    REQUIRE(pwrite(fd, &byte, 1, at) == 1);
    REQUIRE(store_open(&s, path, &err) == CF_OK);
    CHECK(store_verify(&s, &err) == CF_EINPUT);
    CHECK_CONTAINS(err.msg, "code_heap");
    store_close(&s);
    /* A flipped byte in the header: open refuses. */
    REQUIRE(pread(fd, &byte, 1, 40) == 1);
    byte ^= 1;
    REQUIRE(pwrite(fd, &byte, 1, 40) == 1);
    CHECK(store_open(&s, path, &err) == CF_EINPUT);
    CHECK_CONTAINS(err.msg, "checksum");
    /* Truncation: open refuses. */
    REQUIRE(ftruncate(fd, 5000) == 0);
    CHECK(store_open(&s, path, &err) == CF_EINPUT);
    close(fd);
    /* Not a store at all. */
    char junk[512];
    snprintf(junk, sizeof junk, "%s/junk.store", check_tmpdir());
    FILE *f = fopen(junk, "w");
    for (int i = 0; i < 5000; i++) fputc('x', f);
    fclose(f);
    CHECK(store_open(&s, junk, &err) == CF_EINPUT);
    CHECK_CONTAINS(err.msg, "magic");
    CHECK(store_open(&s, "/nonexistent/x.store", &err) == CF_EINPUT);
}

/* Values at the edges of what each column holds, across a block boundary: NaN payloads kept bit
 * for bit, the largest and smallest times (deltas that wrap), the largest row, many sources. */
static void test_edge_values(void) {
    char path[512];
    snprintf(path, sizeof path, "%s/edge.store", check_tmpdir());
    store_writer *w;
    cf_err err = {0};
    REQUIRE(store_writer_open(&w, path, NULL, &err) == CF_OK);
    char name[32];
    for (int k = 0; k < 300; k++) {
        snprintf(name, sizeof name, "source-%03d", k);
        REQUIRE(store_writer_source(w, name) == k);
    }
    int64_t c = store_writer_code(w, "C", 1);
    REQUIRE(c == 0);
    const size_t n = 65536 + 1000;
    const int64_t times[] = {TIME_NULL, INT64_MIN + 1, -1, 0, 1, INT64_MAX - 1};
    uint32_t nan_bits[] = {0x7fc00000u, 0x7fc00001u, 0xffc00000u, 0x7f800001u};
    for (size_t i = 0; i < n; i++) {
        /* Subject i/7: each subject's events carry distinct times, so the store order is the
         * order added here, and event i sits at index i. */
        int64_t t = times[i % 7 < 6 ? i % 7 : 5];
        if (i % 7 == 6) t = INT64_MAX; /* a delta of one after huge ones */
        float v;
        if (i % 5 == 0) {
            memcpy(&v, &nan_bits[(i / 5) % 4], 4);
        } else {
            v = (i % 5 == 1) ? -0.0f : (i % 5 == 2) ? 3.4028235e38f : (i % 5 == 3) ? 1e-45f : -1.5f;
        }
        uint32_t src = (uint32_t)((i * 37) % 300);
        uint64_t row = i % 2 ? STORE_MAX_ROW - i : i + 1;
        const char *text = i % 3 == 0 ? NULL : i % 3 == 1 ? "same" : "";
        REQUIRE(store_writer_add(w, (int64_t)(i / 7), t, 0, v, text, text ? strlen(text) : 0, src, row, &err) == CF_OK);
    }
    REQUIRE(store_writer_finish(w, &err) == CF_OK);
    store s;
    REQUIRE(store_open(&s, path, &err) == CF_OK);
    CHECK(store_verify(&s, &err) == CF_OK);
    REQUIRE_EQ_INT(s.n_events, n);
    CHECK_EQ_INT(s.n_texts, 2);
    size_t bad = 0;
    for (size_t i = 0; i < n && bad < 3; i++) {
        int64_t t = i % 7 == 6 ? INT64_MAX : times[i % 7];
        uint32_t src = (uint32_t)((i * 37) % 300);
        uint64_t row = i % 2 ? STORE_MAX_ROW - i : i + 1;
        uint32_t want_bits, got_bits;
        float v = i % 5 == 1 ? -0.0f : i % 5 == 2 ? 3.4028235e38f : i % 5 == 3 ? 1e-45f : -1.5f;
        if (i % 5 == 0) want_bits = nan_bits[(i / 5) % 4];
        else memcpy(&want_bits, &v, 4);
        memcpy(&got_bits, &s.numeric[i], 4);
        int ok = s.time[i] == t && got_bits == want_bits && store_prov_source(s.prov[i]) == src &&
                 store_prov_row(s.prov[i]) == row && (i % 3 == 0 ? s.text[i] == 0 : s.text[i] != 0);
        if (ok && s.text[i]) {
            size_t len;
            const char *txt = store_text_str(&s, s.text[i], &len);
            ok = i % 3 == 1 ? len == 4 && memcmp(txt, "same", 4) == 0 : len == 0;
        }
        if (!ok) {
            bad++;
            CHECK_FAIL_("edge event %zu differs", i);
        }
    }
    store_close(&s);
    /* One event. */
    REQUIRE(store_writer_open(&w, path, NULL, &err) == CF_OK);
    store_writer_source(w, "t");
    store_writer_code(w, "X", 1);
    REQUIRE(store_writer_add(w, -5, INT64_MIN + 1, 0, NAN, "note", 4, 0, STORE_MAX_ROW, &err) == CF_OK);
    REQUIRE(store_writer_finish(w, &err) == CF_OK);
    REQUIRE(store_open(&s, path, &err) == CF_OK);
    CHECK(s.n_events == 1 && s.n_subjects == 1 && s.subject_id[0] == -5 && s.time[0] == INT64_MIN + 1);
    CHECK(isnan(s.numeric[0]) && s.text[0] == 1 && store_prov_row(s.prov[0]) == STORE_MAX_ROW);
    CHECK(s.n_static_events == 0 && s.n_numeric_events == 0 && s.n_text_events == 1);
    store_close(&s);
    /* Events so regular that the file holds fewer bytes than events: still opens. */
    REQUIRE(store_writer_open(&w, path, NULL, &err) == CF_OK);
    store_writer_source(w, "t");
    store_writer_code(w, "X", 1);
    for (size_t i = 0; i < 200000; i++)
        REQUIRE(store_writer_add(w, 1, (int64_t)i * 60000000, 0, NAN, NULL, 0, 0, i + 1, &err) == CF_OK);
    REQUIRE(store_writer_finish(w, &err) == CF_OK);
    struct stat st;
    REQUIRE(stat(path, &st) == 0);
    CHECK(st.st_size < 200000);
    REQUIRE(store_open(&s, path, &err) == CF_OK);
    CHECK(s.n_events == 200000 && s.time[199999] == 199999LL * 60000000 && store_prov_row(s.prov[199999]) == 200000);
    store_close(&s);
}

/* A version 1 store (tests/data/store-v1-small.store, 40 fictional events written by the version 1
 * writer) still reads, event for event as it was written, and its summary counts are made; a
 * version this reader does not know is refused by name. */
static void test_version1_and_unknown_versions(void) {
    char path[512];
    snprintf(path, sizeof path, "%s/tests/data/store-v1-small.store", check_root());
    store s;
    cf_err err = {0};
    REQUIRE(store_open(&s, path, &err) == CF_OK);
    CHECK_EQ_INT(s.version, 1);
    CHECK(store_verify(&s, &err) == CF_OK);
    REQUIRE_EQ_INT(s.n_events, 40);
    const char *codes[] = {"LAB//1", "DX//I10", "MEDS_BIRTH"};
    /* The writer's input: event i of subject i/5 - 2, static when i % 5 == 0, else at minute i,
     * so the store order is i. */
    for (int i = 0; i < 40; i++) {
        int ok = s.time[i] == (i % 5 == 0 ? TIME_NULL : 60000000LL * i) &&
                 strcmp(store_code_str(&s, s.code[i]), codes[i % 3]) == 0 &&
                 (i % 2 ? isnan(s.numeric[i]) : s.numeric[i] == (float)i / 3) && (s.text[i] != 0) == (i % 4 == 1) &&
                 store_prov_source(s.prov[i]) == (uint32_t)(i % 2) && store_prov_row(s.prov[i]) == (uint64_t)i + 1;
        if (!ok) CHECK_FAIL_("version 1 event %d differs", i);
    }
    store_close(&s);
    REQUIRE(store_open_summary(&s, path, &err) == CF_OK);
    CHECK(s.has_summary && s.n_static_events == 8 && s.n_numeric_events == 20 && s.n_text_events == 10);
    CHECK(s.source_events[0] == 20 && s.source_events[1] == 20);
    store_close(&s);
    /* The same file claiming version 99, its header checksum made right: refused, naming both. */
    char *data;
    size_t len;
    read_file(path, &data, &len);
    REQUIRE(len > STORE_HEADER_SIZE);
    store_header *h = (store_header *)data;
    h->version = 99;
    crypto_generichash(h->header_hash, STORE_HASH_BYTES, (const unsigned char *)h, offsetof(store_header, header_hash), NULL, 0);
    char path3[512];
    snprintf(path3, sizeof path3, "%s/v3.store", check_tmpdir());
    FILE *f = fopen(path3, "wb");
    REQUIRE(f && fwrite(data, 1, len, f) == len);
    fclose(f);
    free(data);
    CHECK(store_open(&s, path3, &err) == CF_EINPUT);
    CHECK_CONTAINS(err.msg, "version 99");
    CHECK_CONTAINS(err.msg, "re-run");
}

static void test_subject_keys(void) {
    char path[512];
    snprintf(path, sizeof path, "%s/keys.store", check_tmpdir());
    store_writer *w;
    cf_err err = {0};
    REQUIRE(store_writer_open(&w, path, NULL, &err) == CF_OK);
    int src = store_writer_source(w, "Patient");
    int64_t c = store_writer_code(w, "MEDS_BIRTH", 10);
    REQUIRE(src == 0 && c == 0);
    CHECK(store_writer_add(w, 7, 0, (uint32_t)c, NAN, NULL, 0, 0, 1, &err) == CF_OK);
    CHECK(store_writer_add(w, 3, 0, (uint32_t)c, NAN, NULL, 0, 0, 2, &err) == CF_OK);
    CHECK(store_writer_subject_key(w, 7, "patient-seven", 13, &err) == CF_OK);
    CHECK(store_writer_subject_key(w, 7, "patient-seven", 13, &err) == CF_OK);
    REQUIRE(store_writer_finish(w, &err) == CF_OK);
    store s;
    REQUIRE(store_open(&s, path, &err) == CF_OK);
    size_t len = 0;
    CHECK(store_subject_key(&s, (uint64_t)store_find_subject(&s, 3), &len) == NULL);
    const char *k = store_subject_key(&s, (uint64_t)store_find_subject(&s, 7), &len);
    CHECK(k && len == 13 && memcmp(k, "patient-seven", 13) == 0);
    store_close(&s);
    /* Two identifiers for one subject id (a hash collision) is an error, not a silent merge. */
    REQUIRE(store_writer_open(&w, path, NULL, &err) == CF_OK);
    store_writer_source(w, "Patient");
    store_writer_code(w, "X", 1);
    store_writer_add(w, 7, 0, 0, NAN, NULL, 0, 0, 1, &err);
    store_writer_subject_key(w, 7, "a", 1, &err);
    store_writer_subject_key(w, 7, "b", 1, &err);
    CHECK(store_writer_finish(w, &err) == CF_EINPUT);
}

static void test_bad_arguments(void) {
    char path[512];
    snprintf(path, sizeof path, "%s/bad.store", check_tmpdir());
    store_writer *w;
    cf_err err = {0};
    REQUIRE(store_writer_open(&w, path, NULL, &err) == CF_OK);
    CHECK(store_writer_add(w, 1, 0, 0, NAN, NULL, 0, 0, 1, &err) != CF_OK); /* no such code */
    store_writer_code(w, "X", 1);
    CHECK(store_writer_add(w, 1, 0, 0, NAN, NULL, 0, 0, 1, &err) != CF_OK); /* no such source */
    store_writer_source(w, "t");
    CHECK(store_writer_add(w, 1, 0, 0, INFINITY, NULL, 0, 0, 1, &err) == CF_EINPUT);
    CHECK(store_writer_add(w, 1, 0, 0, NAN, NULL, 0, 0, STORE_MAX_ROW + 1, &err) == CF_EINPUT);
    CHECK(store_writer_add(w, 1, 0, 0, NAN, NULL, 0, 0, 1, &err) == CF_OK);
    store_writer_abort(w);
    CHECK(access(path, F_OK) != 0);
}

/* ------------------------------------------------------------------ cursor */

/* A store whose event g (in store order) is known without reading it back: subject sizes chosen so
 * subjects cross block boundaries (one spans three blocks), time g minutes, numeric g, source g % 2,
 * row g + 1, code C<g % 7>, text "t<g % 5>" on every 1000th event. */
static const uint64_t cursor_sizes[] = {5, 70000, 150000, 1, 65536, 3};
#define CURSOR_SMALL 400 /* then this many subjects of 1..200 events */

static uint64_t cursor_store(const char *path) {
    store_writer *w;
    cf_err err = {0};
    if (store_writer_open(&w, path, NULL, &err)) return 0;
    store_writer_source(w, "a");
    store_writer_source(w, "b");
    for (int c = 0; c < 7; c++) {
        char code[16];
        snprintf(code, sizeof code, "C%d", c);
        store_writer_code(w, code, strlen(code));
    }
    uint64_t g = 0;
    size_t n_big = sizeof cursor_sizes / sizeof cursor_sizes[0];
    for (size_t k = 0; k < n_big + CURSOR_SMALL; k++) {
        uint64_t m = k < n_big ? cursor_sizes[k] : 1 + (k * 37) % 200;
        for (uint64_t j = 0; j < m; j++, g++) {
            char text[16];
            snprintf(text, sizeof text, "t%d", (int)(g % 5));
            /* Codes were added as C0..C6, so writer-local id g % 7 is C<g % 7>. */
            if (store_writer_add(w, (int64_t)k * 10, (int64_t)g * 60000000, (uint32_t)(g % 7), (float)g,
                                 g % 1000 == 0 ? text : NULL, 2, (uint32_t)(g % 2), g + 1, &err))
                return 0;
        }
    }
    if (store_writer_finish(w, &err)) return 0;
    return g;
}

/* Checks that ev holds events [first, first + n) of cursor_store, each by the formula. */
static int cursor_events_ok(const store *s, const store_events *ev, uint64_t first, uint64_t n) {
    if (ev->first != first || ev->n != n) return 0;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t g = first + i;
        char code[16];
        snprintf(code, sizeof code, "C%d", (int)(g % 7));
        if (ev->time[i] != (int64_t)g * 60000000 || ev->numeric[i] != (float)g ||
            strcmp(store_code_str(s, ev->code[i]), code) != 0 || store_prov_source(ev->prov[i]) != g % 2 ||
            store_prov_row(ev->prov[i]) != g + 1 || (ev->text[i] != 0) != (g % 1000 == 0))
            return 0;
        if (ev->text[i]) {
            size_t len;
            const char *t = store_text_str(s, ev->text[i], &len);
            if (len != 2 || t[0] != 't' || t[1] != (char)('0' + g % 5)) return 0;
        }
    }
    return 1;
}

/* Subjects that span block boundaries (one spans three blocks) come out whole and in order,
 * through a cursor with and without readahead, on a summary-opened store (with and without a cache
 * of decoded blocks smaller than the store) and a fully opened one; so do
 * ranges that start or end at a boundary, taken forwards, backwards and in a second pass. */
static void test_cursor_blocks(void) {
    char path[512];
    snprintf(path, sizeof path, "%s/cursor.store", check_tmpdir());
    uint64_t n = cursor_store(path);
    REQUIRE(n > 4 * STORE_BLOCK_EVENTS);
    cf_err err = {0};
    /* full: 0 summary-opened, 1 fully opened, 2 summary-opened with a cache of 3 of the 5 blocks, 3
     * summary-opened with its file closed (blocks read through the mapping, not with pread) */
    for (int full = 0; full < 4; full++) {
        store s;
        REQUIRE((full == 1 ? store_open(&s, path, &err) : store_open_summary(&s, path, &err)) == CF_OK);
        CHECK_EQ_INT(s.fd_open, 1);
        if (full == 3) {
            close(s.fd);
            s.fd_open = 0;
        }
        REQUIRE_EQ_INT(s.n_events, n);
        CHECK(full == 1 ? s.time != NULL : s.time == NULL);
        if (full == 2) REQUIRE(store_cache_set(&s, 3 * (size_t)STORE_BLOCK_EVENTS * 28 + 100, &err) == CF_OK);
        for (unsigned flags = 0; flags <= STORE_CURSOR_READAHEAD; flags += STORE_CURSOR_READAHEAD) {
            store_cursor *c;
            REQUIRE(store_cursor_new(&c, &s, flags, &err) == CF_OK);
            for (int pass = 0; pass < 2; pass++) { /* the second pass steps back to block 0 */
                uint64_t bad = 0, spanning = 0;
                for (uint64_t k = 0; k < s.n_subjects; k++) {
                    store_events ev;
                    uint64_t a = s.subject_start[k], b = s.subject_start[k + 1];
                    REQUIRE(store_cursor_subject(c, k, &ev, &err) == CF_OK);
                    spanning += b > a && a / STORE_BLOCK_EVENTS != (b - 1) / STORE_BLOCK_EVENTS;
                    if (!cursor_events_ok(&s, &ev, a, b - a) && bad++ < 3)
                        CHECK_FAIL_("subject index %llu (events %llu..%llu) differs (full %d, flags %u, pass %d)",
                                    (unsigned long long)k, (unsigned long long)a, (unsigned long long)b, full, flags,
                                    pass);
                }
                CHECK_EQ_INT(bad, 0);
                CHECK(spanning >= 3);
            }
            /* Ranges at and across boundaries, in an order that jumps both ways. */
            const uint64_t B = STORE_BLOCK_EVENTS;
            const uint64_t ranges[][2] = {{B - 1, B + 1}, {B, 2 * B}, {0, 3 * B + 5}, {2 * B - 3, 2 * B},
                                          {n - 1, n},     {5, 5},     {3 * B, 3 * B + 1}, {B - 1, B},
                                          {0, n},         {4 * B - 2, 4 * B + 2}};
            for (size_t r = 0; r < sizeof ranges / sizeof ranges[0]; r++) {
                store_events ev;
                REQUIRE(store_cursor_range(c, ranges[r][0], ranges[r][1], &ev, &err) == CF_OK);
                if (!cursor_events_ok(&s, &ev, ranges[r][0], ranges[r][1] - ranges[r][0]))
                    CHECK_FAIL_("range %llu..%llu differs (full %d, flags %u)", (unsigned long long)ranges[r][0],
                                (unsigned long long)ranges[r][1], full, flags);
            }
            store_events ev;
            CHECK(store_cursor_range(c, 10, n + 1, &ev, &err) != CF_OK); /* past the end: refused */
            CHECK(store_cursor_subject(c, s.n_subjects, &ev, &err) != CF_OK);
            store_cursor_free(c);
        }
        store_close(&s);
    }
}

/* A damaged block read through a cursor is reported with its index (and the file), whichever
 * way it is read; the blocks before it read fine. */
static void test_cursor_damage(void) {
    char path[512];
    snprintf(path, sizeof path, "%s/cursor-damaged.store", check_tmpdir());
    uint64_t n = cursor_store(path);
    REQUIRE(n > 4 * STORE_BLOCK_EVENTS);
    int fd = open(path, O_RDWR);
    REQUIRE(fd >= 0);
    store_header h;
    REQUIRE(pread(fd, &h, sizeof h, 0) == (ssize_t)sizeof h);
    const store_section *data = NULL, *blocks = NULL;
    for (uint32_t i = 0; i < h.n_sections; i++) {
        if (h.sections[i].kind == SEC_EVENT_DATA) data = &h.sections[i];
        if (h.sections[i].kind == SEC_EVENT_BLOCKS) blocks = &h.sections[i];
    }
    REQUIRE(data && blocks);
    store_block b2;
    REQUIRE(pread(fd, &b2, sizeof b2, (off_t)(blocks->offset + 2 * sizeof b2)) == (ssize_t)sizeof b2);
    unsigned char byte;
    off_t at = (off_t)(data->offset + b2.offset + b2.size / 2);
    REQUIRE(pread(fd, &byte, 1, at) == 1);
    byte ^= 0x10;
    REQUIRE(pwrite(fd, &byte, 1, at) == 1);
    close(fd);
    store s;
    cf_err err = {0};
    REQUIRE(store_open_summary(&s, path, &err) == CF_OK);
    for (unsigned flags = 0; flags <= STORE_CURSOR_READAHEAD; flags += STORE_CURSOR_READAHEAD) {
        store_cursor *c;
        REQUIRE(store_cursor_new(&c, &s, flags, &err) == CF_OK);
        store_events ev;
        CHECK(store_cursor_range(c, 0, 2 * STORE_BLOCK_EVENTS, &ev, &err) == CF_OK);
        CHECK(cursor_events_ok(&s, &ev, 0, 2 * STORE_BLOCK_EVENTS));
        int rc = CF_OK;
        uint64_t k = 0;
        for (; k < s.n_subjects && rc == CF_OK; k++) rc = store_cursor_subject(c, k, &ev, &err);
        CHECK_EQ_INT(rc, CF_EINPUT);
        CHECK_CONTAINS(err.msg, "event block 2 ");
        CHECK_CONTAINS(err.msg, "cursor-damaged.store");
        CHECK_CONTAINS(err.msg, "damaged");
        /* The failing subject is the one that reaches into block 2. */
        CHECK(s.subject_start[k] > 2 * STORE_BLOCK_EVENTS && s.subject_start[k - 1] < 3 * STORE_BLOCK_EVENTS);
        /* Still usable for the good blocks afterwards. */
        CHECK(store_cursor_range(c, 10, 20, &ev, &err) == CF_OK && cursor_events_ok(&s, &ev, 10, 10));
        store_cursor_free(c);
    }
    CHECK(store_verify(&s, &err) == CF_EINPUT); /* the event_data section's checksum first */
    store_close(&s);
    /* Damage that appears after the store was opened (the file changed underneath, block 3 this
     * time) is refused too: a block is read and checked when the cursor reaches it. */
    REQUIRE(store_open_summary(&s, path, &err) == CF_OK);
    store_block b3;
    fd = open(path, O_RDWR);
    REQUIRE(fd >= 0);
    REQUIRE(pread(fd, &b3, sizeof b3, (off_t)(blocks->offset + 3 * sizeof b3)) == (ssize_t)sizeof b3);
    at = (off_t)(data->offset + b3.offset + 17);
    REQUIRE(pread(fd, &byte, 1, at) == 1);
    byte ^= 0x01;
    REQUIRE(pwrite(fd, &byte, 1, at) == 1);
    close(fd);
    store_cursor *c;
    REQUIRE(store_cursor_new(&c, &s, 0, &err) == CF_OK);
    store_events ev;
    CHECK(store_cursor_range(c, 2 * STORE_BLOCK_EVENTS, 2 * STORE_BLOCK_EVENTS + 1, &ev, &err) != CF_OK); /* as before */
    CHECK(store_cursor_range(c, 3 * STORE_BLOCK_EVENTS, 3 * STORE_BLOCK_EVENTS + 10, &ev, &err) == CF_EINPUT);
    CHECK_CONTAINS(err.msg, "event block 3 ");
    CHECK_CONTAINS(err.msg, "checksum");
    CHECK(store_cursor_range(c, 10, 20, &ev, &err) == CF_OK && cursor_events_ok(&s, &ev, 10, 10));
    store_cursor_free(c);
    store_close(&s);
}

/* The version 1 fixture and a version 2 store written from its events give the same event
 * sequence through cursors, subject by subject: times, codes, values bit for bit, texts, sources,
 * rows. */
static void versions_agree(uint32_t version) {
    char v1[512], v2[512];
    snprintf(v1, sizeof v1, "%s/tests/data/store-v1-small.store", check_root());
    snprintf(v2, sizeof v2, "%s/from-v1-as-v%u.store", check_tmpdir(), version);
    store a, b;
    cf_err err = {0};
    REQUIRE(store_open_summary(&a, v1, &err) == CF_OK);
    REQUIRE_EQ_INT(a.version, 1);
    store_writer *w;
    store_writer_options opt = {.version = version};
    REQUIRE(store_writer_open(&w, v2, &opt, &err) == CF_OK);
    for (uint32_t k = 0; k < a.n_sources; k++) REQUIRE(store_writer_source(w, store_source_name(&a, k)) == (int)k);
    store_cursor *ca, *cb;
    REQUIRE(store_cursor_new(&ca, &a, 0, &err) == CF_OK);
    for (uint64_t k = 0; k < a.n_subjects; k++) {
        store_events ev;
        REQUIRE(store_cursor_subject(ca, k, &ev, &err) == CF_OK);
        for (uint64_t i = 0; i < ev.n; i++) {
            const char *code = store_code_str(&a, ev.code[i]), *text = NULL;
            size_t len = 0;
            if (ev.text[i]) text = store_text_str(&a, ev.text[i], &len);
            int64_t c = store_writer_code(w, code, strlen(code));
            REQUIRE(c >= 0);
            REQUIRE(store_writer_add(w, a.subject_id[k], ev.time[i], (uint32_t)c, ev.numeric[i], text, len,
                                     store_prov_source(ev.prov[i]), store_prov_row(ev.prov[i]), &err) == CF_OK);
        }
    }
    REQUIRE(store_writer_finish(w, &err) == CF_OK);
    REQUIRE(store_open_summary(&b, v2, &err) == CF_OK);
    CHECK_EQ_INT(b.version, version);
    REQUIRE_EQ_INT(b.n_events, a.n_events);
    REQUIRE_EQ_INT(b.n_subjects, a.n_subjects);
    REQUIRE(store_cursor_new(&cb, &b, STORE_CURSOR_READAHEAD, &err) == CF_OK);
    uint64_t bad = 0;
    for (uint64_t k = 0; k < a.n_subjects; k++) {
        store_events ea, eb;
        REQUIRE(store_cursor_subject(ca, k, &ea, &err) == CF_OK);
        REQUIRE(store_cursor_subject(cb, k, &eb, &err) == CF_OK);
        CHECK(a.subject_id[k] == b.subject_id[k] && ea.n == eb.n);
        for (uint64_t i = 0; i < ea.n && i < eb.n; i++) {
            uint32_t xa, xb;
            memcpy(&xa, &ea.numeric[i], 4);
            memcpy(&xb, &eb.numeric[i], 4);
            int ok = ea.time[i] == eb.time[i] && xa == xb && ea.prov[i] == eb.prov[i] &&
                     strcmp(store_code_str(&a, ea.code[i]), store_code_str(&b, eb.code[i])) == 0 &&
                     (ea.text[i] != 0) == (eb.text[i] != 0);
            if (ok && ea.text[i]) {
                size_t la, lb;
                const char *ta = store_text_str(&a, ea.text[i], &la), *tb = store_text_str(&b, eb.text[i], &lb);
                ok = la == lb && memcmp(ta, tb, la) == 0;
            }
            if (!ok && bad++ < 3) CHECK_FAIL_("subject index %llu event %llu differs between versions",
                                              (unsigned long long)k, (unsigned long long)i);
        }
    }
    CHECK_EQ_INT(bad, 0);
    store_cursor_free(ca);
    store_cursor_free(cb);
    store_close(&a);
    store_close(&b);
}

static void test_cursor_versions_agree(void) {
    versions_agree(2);
    versions_agree(3);
}

/* A version 2 store (what a hospital's stores hold today) written by this writer still reads,
 * whole and through cursors, equal to its input, and equal column for column to the same events
 * written as version 3. */
static void test_version2_still_read(void) {
    char p2[512], p3[512];
    snprintf(p2, sizeof p2, "%s/v2-written.store", check_tmpdir());
    snprintf(p3, sizeof p3, "%s/v3-written.store", check_tmpdir());
    size_t n = 3 * STORE_BLOCK_EVENTS + 123;
    rng_state = 99;
    ref_event *ev = make_events(n);
    write_version = 2;
    REQUIRE(write_store(p2, ev, n, 0, 0) == 0);
    write_version = 0;
    REQUIRE(write_store(p3, ev, n, 0, 0) == 0);
    store a, b;
    cf_err err = {0};
    REQUIRE(store_open(&a, p2, &err) == CF_OK);
    REQUIRE(store_open(&b, p3, &err) == CF_OK);
    CHECK_EQ_INT(a.version, 2);
    CHECK_EQ_INT(b.version, 3);
    REQUIRE_EQ_INT(a.n_events, n);
    REQUIRE_EQ_INT(b.n_events, n);
    CHECK(memcmp(a.time, b.time, n * 8) == 0 && memcmp(a.code, b.code, n * 4) == 0 &&
          memcmp(a.numeric, b.numeric, n * 4) == 0 && memcmp(a.text, b.text, n * 4) == 0 &&
          memcmp(a.prov, b.prov, n * 8) == 0);
    store_close(&a);
    store_close(&b);
    check_equal(p2, ev, n); /* against the input, sorted */
    free(ev);
}

/* ---- version 3 blocks, one at a time */

static size_t block3_round_trip(const store_block_cols *in, size_t n, uint64_t n_codes, uint64_t n_texts,
                                uint32_t n_sources, const char *what) {
    store_block_ctx *enc = store_block_ctx_new(n_sources, 1, 3), *dec = store_block_ctx_new(n_sources, 0, 3);
    /* And a decoder without the vector kernels (the path of CPUs without AVX2), and one with AVX2
     * but not AVX-512 (the same as dec on a CPU without AVX-512). */
    setenv("CLINFM_STORE_NO_SIMD", "1", 1);
    store_block_ctx *dec_scalar = store_block_ctx_new(n_sources, 0, 3);
    unsetenv("CLINFM_STORE_NO_SIMD");
    setenv("CLINFM_STORE_NO_AVX512", "1", 1);
    store_block_ctx *dec_avx2 = store_block_ctx_new(n_sources, 0, 3);
    unsetenv("CLINFM_STORE_NO_AVX512");
    const void *packed;
    size_t len = 0;
    store_block_cols out = {malloc(n * 8), malloc(n * 4), malloc(n * 4), malloc(n * 4), malloc(n * 8)};
    if (!enc || !dec || !dec_scalar || !dec_avx2 || !out.time || !out.code || !out.numeric || !out.text || !out.prov) {
        CHECK_FAIL_("%s: out of memory", what);
        goto done;
    }
    if (store_block_encode(enc, in, n, &packed, &len) != 0) {
        CHECK_FAIL_("%s: encoding failed", what);
        goto done;
    }
    const char *why = "";
    /* Decoded twice with one context (nothing of a block may leak into the next), then without
     * the vector unpackers. */
    for (int r = 0; r < 4; r++) {
        if (store_block_decode(r < 2 ? dec : r == 2 ? dec_scalar : dec_avx2, packed, len, n, n_codes, n_texts, &out, &why) != 0) {
            CHECK_FAIL_("%s: decoding failed: %s", what, why);
            break;
        }
        if (memcmp(out.time, in->time, n * 8) || memcmp(out.code, in->code, n * 4) ||
            memcmp(out.numeric, in->numeric, n * 4) || memcmp(out.text, in->text, n * 4) ||
            memcmp(out.prov, in->prov, n * 8))
            CHECK_FAIL_("%s: decoded columns differ from the input (decoder %d)", what, r);
    }
    /* In parts, as a cursor decodes (steps of 1 to a few parts, across part boundaries), with
     * each kernel: every event decoded is the input's, however the block is cut. */
    for (int r = 0; r < 3; r++) {
        store_block_ctx *d = r == 0 ? dec : r == 1 ? dec_scalar : dec_avx2;
        memset(out.time, 0xa5, n * 8);
        memset(out.prov, 0xa5, n * 8);
        size_t done = 0;
        if (store_block_begin(d, packed, len, n, n_codes, n_texts, &out, &done, &why) != 0) {
            CHECK_FAIL_("%s: begin failed: %s", what, why);
            break;
        }
        const size_t steps[] = {1, 7, 8, 9, 1000, 4095, 4096, 4097, 12289};
        for (int k = 0; done < n; k++) {
            size_t before = done, upto = done + steps[(k + r) % 9];
            if (store_block_more(d, upto, &out, &done, &why) != 0) {
                CHECK_FAIL_("%s: part to %zu failed: %s", what, upto, why);
                break;
            }
            if (done < (upto < n ? upto : n) || done <= before || (done % 8 && done != n)) {
                CHECK_FAIL_("%s: asked for %zu events, %zu decoded", what, upto, done);
                break;
            }
            if (memcmp(out.time, in->time, done * 8) || memcmp(out.code, in->code, done * 4) ||
                memcmp(out.numeric, in->numeric, done * 4) || memcmp(out.text, in->text, done * 4) ||
                memcmp(out.prov, in->prov, done * 8)) {
                CHECK_FAIL_("%s: events below %zu differ from the input (parts, decoder %d)", what, done, r);
                break;
            }
        }
    }
done:
    CF_FREE_ALL(out.time, out.code, out.numeric, out.text, out.prov);
    store_block_ctx_free(enc);
    store_block_ctx_free(dec);
    store_block_ctx_free(dec_scalar);
    store_block_ctx_free(dec_avx2);
    return len;
}

static void test_block3_round_trips(void) {
    const size_t E = STORE_BLOCK_EVENTS;
    store_block_cols c = {malloc(E * 8), malloc(E * 4), malloc(E * 4), malloc(E * 4), malloc(E * 8)};
    REQUIRE(c.time && c.code && c.numeric && c.text && c.prov);
    /* All equal: every stream is one value, so the block is its headers. */
    for (size_t i = 0; i < E; i++) {
        c.time[i] = 1700000000000000LL;
        c.code[i] = 7;
        c.numeric[i] = 2.5f;
        c.text[i] = 0;
        c.prov[i] = (UINT64_C(1) << 48) | 42;
    }
    size_t len = block3_round_trip(&c, E, 8, 0, 2, "all equal");
    CHECK(len > 0 && len < 1024);
    /* Times in whole minutes, a day apart at most, ascending: the common divisor (6e7 µs) packs a
     * delta in 11 bits, not the 37 its µs need. */
    int64_t t = 1600000000000000LL;
    for (size_t i = 0; i < E; i++) {
        t += (int64_t)(rnd() % 1440) * 60000000LL;
        c.time[i] = t;
    }
    size_t with_minutes = block3_round_trip(&c, E, 8, 0, 2, "minutes");
    CHECK(with_minutes < len + E * 11 / 8 + 64);
    /* A common divisor above 2^32 (the vector unpacker multiplies in two halves). */
    uint64_t ut = 0;
    for (size_t i = 0; i < E; i++) {
        ut += (rnd() % 3000) * (UINT64_C(3) << 33);
        c.time[i] = (int64_t)ut;
    }
    block3_round_trip(&c, E, 8, 0, 2, "divisor above 2^32");
    /* Widest values: time extremes (deltas of every size, negative ones), code ids up to
     * UINT32_MAX - 1, floats of every kind (NaN payloads, infinities, -0, subnormals), text ids
     * jumping up and down to the largest, every source, rows 0 and STORE_MAX_ROW. */
    const uint32_t fbits[] = {0x7fc00000u, 0xffc00001u, 0x7f800001u, 0x7f800000u, 0xff800000u, 0x80000000u,
                              0x00000001u, 0x7f7fffffu, 0x3f800000u};
    for (size_t i = 0; i < E; i++) {
        uint64_t r = rnd();
        c.time[i] = r % 5 == 0 ? INT64_MIN : r % 5 == 1 ? INT64_MAX : r % 5 == 2 ? TIME_NULL : (int64_t)rnd();
        c.code[i] = r % 3 == 0 ? UINT32_MAX - 1 : (uint32_t)(rnd() % UINT32_MAX);
        memcpy(&c.numeric[i], &fbits[rnd() % 9], 4);
        c.text[i] = r % 4 == 0 ? 0 : r % 4 == 1 ? UINT32_MAX : (uint32_t)(1 + rnd() % (UINT32_MAX - 1));
        uint64_t src = rnd() % 65535;
        c.prov[i] = src << 48 | (r % 7 == 0 ? 0 : r % 7 == 1 ? STORE_MAX_ROW : rnd() & STORE_MAX_ROW);
    }
    block3_round_trip(&c, E, UINT32_MAX, UINT32_MAX, 65535, "widest values");
    /* Descending times and rows (negative deltas everywhere), a block of few distinct values (a
     * dictionary) and one of more than a dictionary holds, and short blocks (a store's last). */
    for (size_t i = 0; i < E; i++) {
        c.time[i] = 1000000000000LL - (int64_t)i * 1000;
        c.code[i] = (uint32_t)(rnd() % 5) * 1000;
        float v = (float)(rnd() % 40) * 0.25f;
        if (rnd() % 3 == 0) v = NAN;
        c.numeric[i] = v;
        c.text[i] = (uint32_t)(i % 2 ? 0 : E - i / 2);
        c.prov[i] = (i % 3) << 48 | (STORE_MAX_ROW - i * 3);
    }
    block3_round_trip(&c, E, 5000, E, 3, "descending, dictionary");
    for (size_t i = 0; i < E; i++) c.numeric[i] = (float)i * 1.37f;
    block3_round_trip(&c, E, 5000, E, 3, "distinct values");
    block3_round_trip(&c, 1, 5000, E, 3, "one event");
    block3_round_trip(&c, 13, 5000, E, 3, "13 events");
    /* A random mix with a few wild values (exceptions) among small ones. */
    for (size_t i = 0; i < E; i++) {
        c.time[i] = i % 997 == 0 ? TIME_NULL : 1500000000000000LL + (int64_t)(rnd() % 5000);
        c.code[i] = i % 1001 == 0 ? 4000000000u : (uint32_t)(rnd() % 100);
        c.text[i] = (uint32_t)(rnd() % 3);
        c.prov[i] = (uint64_t)(rnd() % 2) << 48 | (i % 501 == 0 ? STORE_MAX_ROW : rnd() % 100);
    }
    block3_round_trip(&c, E, 4000000001u, 2, 2, "exceptions");
    /* As a hospital's events lie: runs of events at one time (a delta of 0 but a quarter of them,
     * which the writer stores as a zero-width stream and exceptions), a note now and then (text
     * ids only in exceptions), codes and values from a dictionary, sources 5..20 of 21 (4 bits
     * from a base: the row join's table, up to the last source). */
    t = 1700000000000000LL;
    for (size_t i = 0; i < E; i++) {
        if (rnd() % 4 == 0) t += (int64_t)(rnd() % 100000000000LL);
        c.time[i] = i % 5000 == 17 ? TIME_NULL : t;
        c.code[i] = (uint32_t)(rnd() % 3000);
        c.numeric[i] = (float)(rnd() % 2000) * 0.5f;
        c.text[i] = rnd() % 3000 == 0 ? (uint32_t)(1 + rnd() % 9000) : 0;
        c.prov[i] = (uint64_t)(5 + rnd() % 16) << 48 | (1000000 + i * 3 + rnd() % 3);
    }
    block3_round_trip(&c, E, 3000, 9000, 21, "runs at one time, rare notes");
    for (size_t i = 0; i < E; i++) c.prov[i] = (uint64_t)(rnd() % 16) << 48 | (rnd() % 100000); /* sources from 0 */
    block3_round_trip(&c, E, 3000, 9000, 16, "sources 0..15");
    block3_round_trip(&c, E - 5, 3000, 9000, 16, "a store's last block, not a whole part");
    CF_FREE_ALL(c.time, c.code, c.numeric, c.text, c.prov);
}

/* zlib's CRC-32: the same checksum the store computes with libdeflate, from another library. */
static uint32_t crc32_of(const uint8_t *p, size_t n) { return (uint32_t)crc32(0L, p, (uInt)n); }

/* A damaged version 3 block is refused, whatever byte is hit (its CRC), and a block whose CRC is
 * right but whose content is not (no writer makes these) is refused with what is wrong. */
static void test_block3_damage(void) {
    const size_t n = 1000;
    store_block_cols c = {malloc(n * 8), malloc(n * 4), malloc(n * 4), malloc(n * 4), malloc(n * 8)},
                     out = {malloc(n * 8), malloc(n * 4), malloc(n * 4), malloc(n * 4), malloc(n * 8)};
    REQUIRE(c.time && c.code && c.numeric && c.text && c.prov && out.time && out.code && out.numeric && out.text && out.prov);
    for (size_t i = 0; i < n; i++) {
        c.time[i] = (int64_t)i * 1000000;
        c.code[i] = (uint32_t)(i % 7);
        c.numeric[i] = (float)(i % 3);
        c.text[i] = i % 5 == 0 ? (uint32_t)(i / 5 + 1) : 0;
        c.prov[i] = (uint64_t)(i % 2) << 48 | (i + 1);
    }
    store_block_ctx *enc = store_block_ctx_new(2, 1, 3), *dec = store_block_ctx_new(2, 0, 3);
    REQUIRE(enc && dec);
    const void *packed;
    size_t len;
    REQUIRE(store_block_encode(enc, &c, n, &packed, &len) == 0);
    uint8_t *b = malloc(len);
    REQUIRE(b);
    const char *why;
    size_t accepted = 0;
    for (size_t at = 0; at < len; at++) {
        memcpy(b, packed, len);
        b[at] ^= (uint8_t)(1u << (at % 8));
        if (store_block_decode(dec, b, len, n, 7, 201, &out, &why) == 0) accepted++;
        else if (strcmp(why, "fails its checksum") != 0) CHECK_FAIL_("byte %zu: %s", at, why);
    }
    CHECK_EQ_INT(accepted, 0);
    CHECK(store_block_decode(dec, packed, len - 1, n, 7, 201, &out, &why) != 0);
    CHECK(store_block_decode(dec, packed, len, n - 1, 7, 201, &out, &why) != 0); /* another count */
    /* Ids out of the store's range: the same block read against smaller dictionaries. */
    CHECK(store_block_decode(dec, packed, len, n, 6, 201, &out, &why) != 0);
    CHECK_CONTAINS(why, "code id out of range");
    CHECK(store_block_decode(dec, packed, len, n, 7, 199, &out, &why) != 0);
    CHECK_CONTAINS(why, "text id out of range");
    store_block_ctx *dec1 = store_block_ctx_new(1, 0, 3);
    CHECK(store_block_decode(dec1, packed, len, n, 7, 201, &out, &why) != 0);
    CHECK_CONTAINS(why, "source id out of range");
    store_block_ctx_free(dec1);
    /* Malformed with a right CRC: the first stream's width made 60 (no such packing). */
    memcpy(b, packed, len);
    b[8 + 1] = 60;
    uint32_t crc = crc32_of(b, len - 4);
    memcpy(b + len - 4, &crc, 4);
    CHECK(store_block_decode(dec, b, len, n, 7, 201, &out, &why) != 0);
    CHECK_CONTAINS(why, "malformed");
    CHECK(store_block_decode(dec, packed, len, n, 7, 201, &out, &why) == 0); /* the original still reads */
    free(b);
    store_block_ctx_free(enc);
    store_block_ctx_free(dec);
    CF_FREE_ALL(c.time, c.code, c.numeric, c.text, c.prov, out.time, out.code, out.numeric, out.text, out.prov);
}

/* Bytes of a version 3 FOR stream's header and packed values (store_format.h). */
static size_t v3_packed_len(size_t n, int w) { return w == 64 ? n * 8 : (n * (size_t)w + 7) / 8 + 8; }

/* A block decoded in parts is checked part by part: a damaged block is refused before any part
 * (its CRC, its exception positions), and a value out of range in a late part (a dictionary
 * index; the CRC made right, as no writer would) lets the earlier parts through, equal to the
 * input, and fails the part that holds it, with every kernel; after that the block is closed. */
static void test_block3_parts_damage(void) {
    const size_t n = 2 * 4096 + 100;
    store_block_cols c = {malloc(n * 8), malloc(n * 4), malloc(n * 4), malloc(n * 4), malloc(n * 8)},
                     out = {malloc(n * 8), malloc(n * 4), malloc(n * 4), malloc(n * 4), malloc(n * 8)};
    REQUIRE(c.time && c.code && c.numeric && c.text && c.prov && out.time && out.code && out.numeric && out.text && out.prov);
    const uint32_t codes7[7] = {0, 1000, 2001, 3003, 4500, 5999, 6998};
    for (size_t i = 0; i < n; i++) {
        c.time[i] = i % 100 == 3 ? TIME_NULL : (int64_t)i * 1000000; /* exceptions in the time stream */
        c.code[i] = codes7[i % 7]; /* a dictionary of 7 (no common divisor): 3-bit indices */
        c.numeric[i] = 1.0f;
        c.text[i] = 0;
        c.prov[i] = (uint64_t)(i % 2) << 48 | i;
    }
    store_block_ctx *enc = store_block_ctx_new(2, 1, 3), *dec[3];
    setenv("CLINFM_STORE_NO_SIMD", "1", 1);
    dec[1] = store_block_ctx_new(2, 0, 3);
    unsetenv("CLINFM_STORE_NO_SIMD");
    setenv("CLINFM_STORE_NO_AVX512", "1", 1);
    dec[2] = store_block_ctx_new(2, 0, 3);
    unsetenv("CLINFM_STORE_NO_AVX512");
    dec[0] = store_block_ctx_new(2, 0, 3);
    REQUIRE(enc && dec[0] && dec[1] && dec[2]);
    const void *packed;
    size_t len, done;
    REQUIRE(store_block_encode(enc, &c, n, &packed, &len) == 0);
    uint8_t *b = malloc(len);
    REQUIRE(b);
    const char *why;
    /* Walk to the streams: time (FOR, with exceptions), then code (a dictionary). */
    const uint8_t *p0 = packed;
    int wt = p0[9];
    uint32_t n_exc;
    memcpy(&n_exc, p0 + 12, 4);
    REQUIRE(p0[8] == 0 && n_exc >= 2);
    size_t exc_pos = 8 + 24 + v3_packed_len(n, wt), code = exc_pos + (size_t)n_exc * 10;
    REQUIRE(p0[code] == 1); /* the code stream is a dictionary */
    uint32_t nd;
    memcpy(&nd, p0 + code + 4, 4);
    REQUIRE(nd == 7);
    size_t dict = code + 24, idx = dict + 24 + v3_packed_len(nd, p0[dict + 1]);
    int wi = p0[idx + 1];
    REQUIRE(p0[idx] == 0 && wi == 3);
    for (int r = 0; r < 3; r++) {
        /* A bit flipped: refused at begin, and nothing decodes after. */
        memcpy(b, packed, len);
        b[len / 2] ^= 4;
        CHECK(store_block_begin(dec[r], b, len, n, 7000, 0, &out, &done, &why) != 0);
        CHECK_CONTAINS(why, "checksum");
        CHECK(store_block_more(dec[r], n, &out, &done, &why) != 0);
        /* Two exception positions swapped (right CRC): malformed, at begin. */
        memcpy(b, packed, len);
        memcpy(b + exc_pos, (const uint8_t *)packed + exc_pos + 2, 2);
        memcpy(b + exc_pos + 2, (const uint8_t *)packed + exc_pos, 2);
        uint32_t crc = crc32_of(b, len - 4);
        memcpy(b + len - 4, &crc, 4);
        CHECK(store_block_begin(dec[r], b, len, n, 7000, 0, &out, &done, &why) != 0);
        CHECK_CONTAINS(why, "exception's position");
        /* 64 indices of the third part made 7 (all bits set), one past the dictionary (in whole
         * vector steps: not left to a scalar tail). */
        memcpy(b, packed, len);
        for (size_t i = 2 * 4096; i < 2 * 4096 + 64; i++) {
            size_t bit = i * (size_t)wi;
            for (int k = 0; k < wi; k++) b[idx + 24 + (bit + (size_t)k) / 8] |= (uint8_t)(1u << ((bit + (size_t)k) % 8));
        }
        crc = crc32_of(b, len - 4);
        memcpy(b + len - 4, &crc, 4);
        CHECK(store_block_decode(dec[r], b, len, n, 7000, 0, &out, &why) != 0);
        CHECK_CONTAINS(why, "dictionary index out of range");
        CHECK(store_block_begin(dec[r], b, len, n, 7000, 0, &out, &done, &why) == 0);
        CHECK(store_block_more(dec[r], 2 * 4096, &out, &done, &why) == 0);
        CHECK_EQ_INT(done, 2 * 4096);
        CHECK(memcmp(out.code, c.code, done * 4) == 0 && memcmp(out.time, c.time, done * 8) == 0 &&
              memcmp(out.prov, c.prov, done * 8) == 0);
        CHECK(store_block_more(dec[r], n, &out, &done, &why) != 0);
        CHECK_CONTAINS(why, "dictionary index out of range");
        CHECK(store_block_more(dec[r], n, &out, &done, &why) != 0); /* closed */
    }
    free(b);
    store_block_ctx_free(enc);
    for (int r = 0; r < 3; r++) store_block_ctx_free(dec[r]);
    CF_FREE_ALL(c.time, c.code, c.numeric, c.text, c.prov, out.time, out.code, out.numeric, out.text, out.prov);
}

/* Where stream k (0 time, 1 code, 2 value, 3 text, 4 source) of an encoded version 3 block of n
 * events begins, read from the layout in store_format.h (not from the decoder). */
static size_t v3_for_end(const uint8_t *p, size_t at, size_t count) {
    uint32_t e;
    memcpy(&e, p + at + 4, 4);
    return at + 24 + v3_packed_len(count, p[at + 1]) + (size_t)e * 10;
}
static size_t v3_stream(const uint8_t *p, size_t n, int k) {
    size_t at = 8;
    for (int i = 0; i < k; i++) {
        if (p[at] == 1) {
            uint32_t nd;
            memcpy(&nd, p + at + 4, 4);
            at = v3_for_end(p, v3_for_end(p, at + 24, nd), n);
        } else {
            at = v3_for_end(p, at, n);
        }
    }
    return at;
}

/* Encodes c (n events) and returns a copy of the block (the caller frees it). */
static uint8_t *v3_encode(const store_block_cols *c, size_t n, uint32_t n_sources, size_t *len) {
    store_block_ctx *enc = store_block_ctx_new(n_sources, 1, 3);
    const void *packed;
    uint8_t *copy = NULL;
    if (enc && store_block_encode(enc, c, n, &packed, len) == 0 && (copy = malloc(*len))) memcpy(copy, packed, *len);
    store_block_ctx_free(enc);
    return copy;
}

/* Every vector kernel against the input, through the decoders of each path (block3_round_trip:
 * AVX-512 where the CPU has it, AVX2, scalar; whole and in parts): packed widths 0 to 64 in the
 * 64-bit and 32-bit streams with exceptions at the part edges (events 0, 4095, 4096, 8191, 8192 and
 * the last), dictionaries of 3 to 16,384 values (index widths 2 to 14: fewer values are smaller as
 * a FOR stream, which the writer then chooses), and the row join's table
 * (sources in [first, first + 16) with row bases above 2^32), at lengths that are not a multiple
 * of the vector width. Each case checks from the encoded bytes that it holds what it tests. */
static void test_block3_kernels(void) {
    const size_t E = STORE_BLOCK_EVENTS;
    store_block_cols c = {malloc(E * 8), malloc(E * 4), malloc(E * 4), malloc(E * 4), malloc(E * 8)};
    REQUIRE(c.time && c.code && c.numeric && c.text && c.prov);
    char what[64];
    for (int w = 0; w <= 64; w++) {
        const size_t n = w == 17 || w == 49 ? E : w % 3 == 0 ? 8192 + 13 : w % 3 == 1 ? 4096 + 7 : 8192 + 1;
        const uint64_t mask = w == 64 ? UINT64_MAX : (UINT64_C(1) << w) - 1, m32 = w >= 32 ? UINT32_MAX - 1 : mask;
        const size_t edges[] = {0, 4095, 4096, 8191, 8192, n - 1};
        uint32_t n_edges = 0;
        for (size_t e = 0; e < 6; e++) n_edges += edges[e] < n - 1 || e == 5;
        uint64_t t = 0;
        for (size_t i = 0; i < n; i++) {
            uint64_t d = i == 1 ? 0 : i == 2 ? mask : rnd() & mask, x = i == 1 ? 0 : i == 2 ? m32 : rnd() & m32;
            for (size_t e = 0; e < 6; e++)
                if (i == edges[e] && w <= 40) d = x = UINT64_C(1) << 62 | rnd(); /* exceptions */
            t += d;
            c.time[i] = (int64_t)t;
            c.code[i] = (uint32_t)(x % UINT32_MAX);
            uint32_t bits = (uint32_t)(x ^ (x >> 32));
            memcpy(&c.numeric[i], &bits, 4);
            c.text[i] = 0;
            c.prov[i] = (uint64_t)(i % 2) << 48 | ((i & 1 ? 5000 : 0) + (rnd() & (w >= 48 ? STORE_MAX_ROW : mask)));
        }
        size_t len;
        uint8_t *b = v3_encode(&c, n, 2, &len);
        REQUIRE(b);
        size_t ts = v3_stream(b, n, 0);
        uint32_t n_exc;
        memcpy(&n_exc, b + ts + 4, 4);
        /* The time deltas: w bits (64 above 56), the six exceptions while w <= 40. */
        if (b[ts + 1] != (w > 56 ? 64 : w) || n_exc != (w <= 40 ? n_edges : 0u))
            CHECK_FAIL_("width %d: the time stream has width %d and %u exceptions", w, b[ts + 1], n_exc);
        free(b);
        snprintf(what, sizeof what, "packed width %d, %zu events", w, n);
        block3_round_trip(&c, n, UINT32_MAX, 0, 2, what);
    }
    /* Dictionaries of nd values (31-bit codes and float bits, no order among them). */
    uint32_t *table = malloc(16384 * 4);
    REQUIRE(table);
    for (uint32_t nd = 3; nd <= 16384; nd = nd == 16384 ? 16385 : 2 * nd - 1 > 16384 ? 16384 : 2 * nd - 1) {
        const size_t n = nd > 2048 ? 2 * nd + 5 : __builtin_ctz(nd - 1) % 2 ? 8192 + 3 : 4096 + 9;
        for (uint32_t k = 0; k < nd; k++) table[k] = (uint32_t)(rnd() & 0x7fffffff) | 0x40000000u;
        for (size_t i = 0; i < n; i++) {
            c.time[i] = (int64_t)i;
            c.code[i] = table[i < nd ? i : rnd() % nd];
            uint32_t bits = table[(i + 1) % nd] ^ 0x5a5a5a5au;
            memcpy(&c.numeric[i], &bits, 4);
            c.prov[i] = i;
        }
        size_t len;
        uint8_t *b = v3_encode(&c, n, 1, &len);
        REQUIRE(b);
        size_t cs = v3_stream(b, n, 1), idx = b[cs] == 1 ? v3_for_end(b, cs + 24, nd) : 0;
        int want = 32 - __builtin_clz(nd - 1);
        /* (One bit less, with the rare top index as exceptions, where that is smaller.) */
        if (b[cs] != 1 || idx + 2 > len || b[idx + 1] > want || b[idx + 1] < want - 1)
            CHECK_FAIL_("%u values: the code stream is not a dictionary of %d-bit indices", nd, want);
        free(b);
        snprintf(what, sizeof what, "a dictionary of %u, %zu events", nd, n);
        block3_round_trip(&c, n, UINT32_MAX, 0, 1, what);
    }
    free(table);
    /* The row join's table: 16 sources from first, each with its own row base (some above 2^32). */
    const uint32_t firsts[] = {0, 1, 7, 24};
    for (int f = 0; f < 4; f++) {
        const size_t n = f == 0 ? E : f == 1 ? 8192 + 3 : f == 2 ? 9 : 4096 + 5;
        uint64_t base[16];
        for (int k = 0; k < 16; k++) base[k] = k % 3 == 0 ? rnd() % 1000 : (rnd() & STORE_MAX_ROW) >> (k % 2);
        for (size_t i = 0; i < n; i++) {
            uint32_t k = i < 16 ? (uint32_t)i : (uint32_t)(rnd() % 16);
            c.time[i] = 0;
            c.code[i] = 1;
            c.numeric[i] = 0.5f;
            c.prov[i] = (uint64_t)(firsts[f] + k) << 48 | ((base[k] + rnd() % 70000) & STORE_MAX_ROW);
        }
        size_t len;
        uint8_t *b = v3_encode(&c, n, 40, &len);
        REQUIRE(b);
        size_t ss = v3_stream(b, n, 4);
        uint32_t n_exc;
        uint64_t sbase, mult, mode;
        memcpy(&n_exc, b + ss + 4, 4);
        memcpy(&sbase, b + ss + 8, 8);
        memcpy(&mult, b + ss + 16, 8);
        memcpy(&mode, b + v3_for_end(b, ss, n), 8);
        if (b[ss] != 0 || b[ss + 1] != (n < 16 ? b[ss + 1] : 4) || b[ss + 1] > 4 || n_exc || mult != 1 ||
            sbase != firsts[f] || mode != 0)
            CHECK_FAIL_("first source %u: the sources are not a 4-bit stream from it (or rows not from the lowest)",
                        firsts[f]);
        free(b);
        snprintf(what, sizeof what, "row join from source %u, %zu events", firsts[f], n);
        block3_round_trip(&c, n, 2, 0, 40, what);
    }
    CF_FREE_ALL(c.time, c.code, c.numeric, c.text, c.prov);
}

/* The block CRC's kernels (carry-less multiplication folding) against zlib's crc32, another
 * library: every length up to a few folding strides at several alignments, continued from another
 * CRC, the standard check value, and a buffer the size of a block. */
static void test_crc32_kernels(void) {
    const size_t N = 1200, big = 600000;
    uint8_t *b = malloc(big + 64);
    REQUIRE(b);
    for (size_t i = 0; i < big + 64; i++) b[i] = (uint8_t)rnd();
    CHECK_EQ_INT(store_crc32_with(2, 0, "123456789", 9), 0xCBF43926u); /* the CRC-32 check value */
    for (int k = 0; k <= 2; k++) {
        size_t bad = 0;
        for (size_t off = 0; off < 64; off += 13)
            for (size_t n = 0; n <= N; n++) {
                uint32_t start = (uint32_t)rnd(), want = (uint32_t)crc32(start, b + off, (uInt)n);
                bad += store_crc32_with(k, start, b + off, n) != want;
            }
        CHECK_EQ_INT(bad, 0);
        CHECK_EQ_INT(store_crc32_with(k, 0, b + 3, big), (uint32_t)crc32(0L, b + 3, (uInt)big));
    }
    CHECK_EQ_INT(store_crc32(0, b, big), (uint32_t)crc32(0L, b, (uInt)big));
    free(b);
}

int main(void) {
    RUN(test_round_trip_in_memory);
    RUN(test_round_trip_with_spills);
    RUN(test_row_order_across_spills);
    RUN(test_spills_of_many_chunks);
    RUN(test_empty_store);
    RUN(test_abort_leaves_nothing);
    RUN(test_damage_detected);
    RUN(test_edge_values);
    RUN(test_version1_and_unknown_versions);
    RUN(test_subject_keys);
    RUN(test_bad_arguments);
    RUN(test_cursor_blocks);
    RUN(test_cursor_damage);
    RUN(test_cursor_versions_agree);
    RUN(test_version2_still_read);
    RUN(test_block3_round_trips);
    RUN(test_block3_damage);
    RUN(test_block3_parts_damage);
    RUN(test_block3_kernels);
    RUN(test_crc32_kernels);
    return check_summary();
}
