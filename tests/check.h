/* Minimal test harness: assertion macros that print both sides and are never compiled out.
 *
 * A test file defines functions `static void test_name(void)` and a main that calls
 * RUN(test_name) for each, then `return check_summary();`. A failed CHECK marks the current test
 * failed and continues; REQUIRE returns from the test. Each test binary runs in its own process
 * under tests/run.sh with a timeout. */
#ifndef CLINFM_TESTS_CHECK_H
#define CLINFM_TESTS_CHECK_H

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int check__failed_tests, check__passed_tests, check__current_failed;
static const char *check__current = "";

#define CHECK_FAIL_(...)                                                      \
    do {                                                                      \
        fprintf(stderr, "  FAIL %s (%s:%d): ", check__current, __FILE__, __LINE__); \
        fprintf(stderr, __VA_ARGS__);                                         \
        fputc('\n', stderr);                                                  \
        check__current_failed = 1;                                            \
    } while (0)

#define CHECK(cond) do { if (!(cond)) CHECK_FAIL_("%s", #cond); } while (0)
#define REQUIRE(cond) do { if (!(cond)) { CHECK_FAIL_("%s", #cond); return; } } while (0)
#define CHECK_EQ_INT(a, b) do { long long a_ = (long long)(a), b_ = (long long)(b); \
    if (a_ != b_) CHECK_FAIL_("%s == %s: %lld != %lld", #a, #b, a_, b_); } while (0)
#define REQUIRE_EQ_INT(a, b) do { long long a_ = (long long)(a), b_ = (long long)(b); \
    if (a_ != b_) { CHECK_FAIL_("%s == %s: %lld != %lld", #a, #b, a_, b_); return; } } while (0)
#define CHECK_EQ_STR(a, b) do { const char *a_ = (a), *b_ = (b); \
    if (!a_ || !b_ || strcmp(a_, b_) != 0) CHECK_FAIL_("%s == %s: \"%s\" != \"%s\"", #a, #b, \
        a_ ? a_ : "(null)", b_ ? b_ : "(null)"); } while (0)
#define CHECK_NEAR(a, b, tol) do { double a_ = (double)(a), b_ = (double)(b); \
    if (!(fabs(a_ - b_) <= (tol))) CHECK_FAIL_("%s ~ %s: %.9g vs %.9g (tol %g)", #a, #b, a_, b_, \
        (double)(tol)); } while (0)
#define CHECK_CONTAINS(hay, needle) do { const char *h_ = (hay), *n_ = (needle); \
    if (!h_ || !strstr(h_, n_)) CHECK_FAIL_("\"%s\" should contain \"%s\"", h_ ? h_ : "(null)", n_); \
    } while (0)

#define RUN(fn) do { check__current = #fn; check__current_failed = 0; fn(); \
    if (check__current_failed) check__failed_tests++; else check__passed_tests++; \
    fprintf(stderr, "  %s %s\n", check__current_failed ? "not ok" : "ok", #fn); } while (0)

static inline int check_summary(void) {
    fprintf(stderr, "  %d passed, %d failed\n", check__passed_tests, check__failed_tests);
    return check__failed_tests ? 1 : 0;
}

/* Scratch directory for a test binary, removed by tests/run.sh afterwards. */
static inline const char *check_tmpdir(void) {
    const char *d = getenv("CLINFM_TEST_TMP");
    return d ? d : "/tmp";
}

/* Repository root (tests run from it). */
static inline const char *check_root(void) {
    const char *d = getenv("CLINFM_ROOT");
    return d ? d : ".";
}

/* A dataset under the external data directory ($CLINFM_DATA, set by tests/run.sh; default
 * ../shared/data). Returns the full path, or NULL when it is absent: then the current test is
 * reported as skipped, except under CI=true, where missing data fails it. Usage:
 *     const char *dir = check_data("mimic-iv-demo"); if (!dir) return;                     */
static inline const char *check_data(const char *rel) {
    static char paths[8][4096];
    static int next;
    const char *base = getenv("CLINFM_DATA");
    if (!base || !*base) base = "../shared/data";
    char *out = paths[next++ % 8];
    snprintf(out, sizeof paths[0], "%s/%s", base, rel);
    if (access(out, R_OK) == 0) return out;
    const char *ci = getenv("CI");
    if (ci && !strcmp(ci, "true")) {
        CHECK_FAIL_("data missing under CI=true: %s (set CLINFM_DATA)", out);
    } else {
        fprintf(stderr, "  SKIP %s: needs %s (set CLINFM_DATA)\n", check__current, out);
    }
    return NULL;
}

/* For a test program that needs a dataset as a whole (called from main): the path, or the
 * process exits 77 (skipped) when it is absent, 1 under CI=true. */
static inline const char *check_data_or_exit(const char *rel) {
    const char *p = check_data(rel);
    if (!p) exit(check__current_failed ? 1 : 77);
    return p;
}

#endif
