/* Timelines: keyed splits, the vocabulary (fitted on train only), decile cut points, time-gap
 * bins, encoding against a hand-written expectation, decode round trip, determinism, damaged
 * vocabulary and shard files, training windows, and the n-gram baselines. */
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "check.h"
#include "store/store.h"
#include "timeline/prepare.h"
#include "timeline/split.h"
#include "timeline/timeline.h"
#include "timeline/vocab.h"
#include "util/atomic_file.h"
#include "util/file.h"
#include "util/le.h"
#include "util/timeutil.h"

#define MIN_US (INT64_C(60) * USEC_PER_SEC)
#define HOUR_US (60 * MIN_US)

static int64_t T(int y, unsigned m, unsigned d, int hh, int mm) {
    return days_from_civil(y, m, d) * USEC_PER_DAY + hh * HOUR_US + mm * MIN_US;
}

static char tmp_path[4200];
static const char *tmp(const char *name) {
    snprintf(tmp_path, sizeof tmp_path, "%s/%s", check_tmpdir(), name);
    return tmp_path;
}

/* ------------------------------------------------------------------ a tiny store builder */

typedef struct {
    store_writer *w;
    uint64_t row;
    int failed;
} builder;

static void b_open(builder *b, const char *path) {
    cf_err err = {0};
    memset(b, 0, sizeof *b);
    store_writer_options o = {0};
    if (store_writer_open(&b->w, path, &o, &err) != CF_OK || store_writer_source(b->w, "test") != 0) b->failed = 1;
}

static void b_add(builder *b, int64_t subject, int64_t t, const char *code, float x) {
    cf_err err = {0};
    if (b->failed) return;
    int64_t c = store_writer_code(b->w, code, strlen(code));
    if (c < 0 || store_writer_add(b->w, subject, t, (uint32_t)c, x, NULL, 0, 0, ++b->row, &err) != CF_OK)
        b->failed = 1;
}

static int b_finish(builder *b) {
    cf_err err = {0};
    if (b->failed) {
        if (b->w) store_writer_abort(b->w);
        return -1;
    }
    return store_writer_finish(b->w, &err) == CF_OK ? 0 : -1;
}

/* A small file's bytes into buf (0 when it cannot be read), to damage a copy of it. */
static size_t read_small(const char *path, uint8_t *buf, size_t cap) {
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    size_t n = fread(buf, 1, cap, f);
    fclose(f);
    return n;
}

static void split_all_train(split_config *sp) {
    cf_err err = {0};
    split_config_default(sp);
    split_parse_fractions(sp, "100/0/0", &err);
}

/* ------------------------------------------------------------------ splits */

static void test_split_proportions_and_determinism(void) {
    split_config a, b;
    split_config_default(&a);
    CHECK(a.default_key);
    CHECK_EQ_INT(a.train_ppm, 800000);
    CHECK_EQ_INT(a.tuning_ppm, 100000);
    b = a;
    b.key[5] ^= 0x40;
    const int n = 200000;
    int count[SPLIT_COUNT] = {0}, differ = 0;
    for (int64_t id = 1; id <= n; id++) {
        int p = split_assign(&a, id * 7919 - 100000);
        REQUIRE(p >= 0 && p < SPLIT_COUNT);
        count[p]++;
        if (split_assign(&a, id * 7919 - 100000) != p) CHECK_FAIL_("assignment of one id changed between calls");
        differ += split_assign(&b, id * 7919 - 100000) != p;
    }
    /* 80/10/10 within 4 standard deviations (sd of a share ~ 0.0009 at n = 200000). */
    CHECK_NEAR((double)count[SPLIT_TRAIN] / n, 0.8, 0.0036);
    CHECK_NEAR((double)count[SPLIT_TUNING] / n, 0.1, 0.0027);
    CHECK_NEAR((double)count[SPLIT_HELD_OUT] / n, 0.1, 0.0027);
    /* Another key is another split: two independent draws agree with probability
     * 0.8^2 + 0.1^2 + 0.1^2 = 0.66. */
    CHECK_NEAR((double)differ / n, 0.34, 0.01);
    uint8_t ka[SPLIT_KEY_ID_BYTES], kb[SPLIT_KEY_ID_BYTES];
    split_key_id(&a, ka);
    split_key_id(&b, kb);
    CHECK(memcmp(ka, kb, sizeof ka) != 0);
    /* Other fractions. */
    cf_err err = {0};
    CHECK(split_parse_fractions(&a, "70/20/10", &err) == CF_OK);
    memset(count, 0, sizeof count);
    for (int64_t id = 0; id < n; id++) count[split_assign(&a, id)]++;
    CHECK_NEAR((double)count[SPLIT_TRAIN] / n, 0.7, 0.005);
    CHECK_NEAR((double)count[SPLIT_TUNING] / n, 0.2, 0.005);
    CHECK(split_parse_fractions(&a, "33.3333/33.3333/33.3334", &err) == CF_OK);
    CHECK_EQ_INT(a.train_ppm, 333333);
    CHECK(split_parse_fractions(&a, "80/10", &err) == CF_EINPUT);
    CHECK(split_parse_fractions(&a, "80/10/20", &err) == CF_EINPUT);
    CHECK(split_parse_fractions(&a, "0/50/50", &err) == CF_EINPUT);
    CHECK(split_parse_fractions(&a, "x/10/10", &err) == CF_EINPUT);
    CHECK(split_from_name("held_out") == SPLIT_HELD_OUT && split_from_name("test") == -1);
}

static void test_split_key_file(void) {
    split_config a, b, d;
    split_config_default(&d);
    a = d;
    b = d;
    cf_err err = {0};
    uint8_t raw[32];
    char hex[80];
    for (int i = 0; i < 32; i++) raw[i] = (uint8_t)(i * 37 + 11);
    for (int i = 0; i < 32; i++) snprintf(hex + 2 * i, 3, "%02X", raw[i]);
    strcat(hex, "\n");
    REQUIRE(atomic_write_file(tmp("raw.key"), raw, 32, &err) == CF_OK);
    REQUIRE(atomic_write_file(tmp("hex.key"), hex, strlen(hex), &err) == CF_OK);
    CHECK(split_load_key(&a, tmp("raw.key"), &err) == CF_OK);
    CHECK(split_load_key(&b, tmp("hex.key"), &err) == CF_OK);
    CHECK(!a.default_key);
    CHECK(memcmp(a.key, raw, 32) == 0);
    CHECK(memcmp(a.key, b.key, 32) == 0);
    int differ = 0;
    for (int64_t id = 0; id < 1000; id++) differ += split_assign(&a, id) != split_assign(&d, id);
    CHECK(differ > 200);
    REQUIRE(atomic_write_file(tmp("short.key"), raw, 31, &err) == CF_OK);
    CHECK(split_load_key(&a, tmp("short.key"), &err) == CF_EINPUT);
    hex[10] = 'g';
    REQUIRE(atomic_write_file(tmp("bad.key"), hex, strlen(hex), &err) == CF_OK);
    CHECK(split_load_key(&a, tmp("bad.key"), &err) == CF_EINPUT);
    CHECK(split_load_key(&a, tmp("missing.key"), &err) == CF_EINPUT);
}

/* ------------------------------------------------------------------ bins and quantiles */

static void test_gap_bins(void) {
    int bins[16];
    const int64_t D = USEC_PER_DAY, SIX = 182 * USEC_PER_DAY;
    CHECK_EQ_INT(timeline_gap_bins(0, bins, 16), 0);
    CHECK_EQ_INT(timeline_gap_bins(5 * MIN_US - 1, bins, 16), 0);
    REQUIRE_EQ_INT(timeline_gap_bins(5 * MIN_US, bins, 16), 1);
    CHECK_EQ_INT(bins[0], 0);
    REQUIRE_EQ_INT(timeline_gap_bins(15 * MIN_US - 1, bins, 16), 1);
    CHECK_EQ_INT(bins[0], 0);
    REQUIRE_EQ_INT(timeline_gap_bins(15 * MIN_US, bins, 16), 1);
    CHECK_EQ_INT(bins[0], 1);
    REQUIRE_EQ_INT(timeline_gap_bins(D, bins, 16), 1);
    CHECK_EQ_INT(bins[0], 6); /* [1d-3d] */
    REQUIRE_EQ_INT(timeline_gap_bins(SIX - 1, bins, 16), 1);
    CHECK_EQ_INT(bins[0], 11); /* [3mo-6mo] */
    REQUIRE_EQ_INT(timeline_gap_bins(SIX, bins, 16), 1);
    CHECK_EQ_INT(bins[0], 12); /* [6mo] */
    /* The rest after whole 6-month spans gets a token only from 5 minutes on. */
    REQUIRE_EQ_INT(timeline_gap_bins(SIX + 5 * MIN_US - 1, bins, 16), 1);
    CHECK_EQ_INT(bins[0], 12);
    REQUIRE_EQ_INT(timeline_gap_bins(2 * SIX + 5 * MIN_US, bins, 16), 3);
    CHECK(bins[0] == 12 && bins[1] == 12 && bins[2] == 0);
    REQUIRE_EQ_INT(timeline_gap_bins(366 * D, bins, 16), 3); /* 2 x 182 d + 2 d */
    CHECK(bins[0] == 12 && bins[1] == 12 && bins[2] == 6);
    /* The count is exact even past the buffer. */
    CHECK_EQ_INT(timeline_gap_bins(20 * SIX + HOUR_US, bins, 4), 21);
    /* Bins are ordered by their lower edges. */
    for (int b = 1; b < VOCAB_N_GAPS; b++) CHECK(timeline_gap_lower_us(b) > timeline_gap_lower_us(b - 1));
}

static void test_age_bins(void) {
    int64_t birth = T(1980, 3, 15, 0, 0);
    CHECK_EQ_INT(timeline_age_bin(birth, T(2020, 3, 14, 23, 59)), 7); /* 39 */
    CHECK_EQ_INT(timeline_age_bin(birth, T(2020, 3, 15, 0, 0)), 8);  /* 40 */
    CHECK_EQ_INT(timeline_age_bin(birth, T(1979, 1, 1, 0, 0)), 0);   /* before birth: 0 */
    CHECK_EQ_INT(timeline_age_bin(birth, T(2090, 1, 1, 0, 0)), 20);  /* 109: 100+ */
    CHECK_EQ_INT(timeline_age_bin(TIME_NULL, T(2020, 1, 1, 0, 0)), -1);
    CHECK_EQ_INT(timeline_age_bin(T(1900, 1, 1, 0, 0), T(1899, 12, 31, 0, 0)), 0);
}

static void test_quantile_cuts(void) {
    float v[150], cuts[VOCAB_N_CUTS];
    /* 1..10: each value is its own decile. */
    for (int i = 0; i < 10; i++) v[i] = (float)(10 - i);
    vocab_fit_cuts(v, 10, cuts);
    for (int j = 0; j < VOCAB_N_CUTS; j++) CHECK_EQ_INT((int)cuts[j], j + 1);
    for (int x = 1; x <= 10; x++) CHECK_EQ_INT(vocab_decile(cuts, (float)x), x);
    /* 15 values 10, 20, .. 150, shuffled: cut j is the value at rank ceil(1.5 j) =
     * 2, 3, 5, 6, 8, 9, 11, 12, 14. */
    for (int i = 0; i < 15; i++) v[i] = (float)(10 * ((i * 7) % 15 + 1));
    vocab_fit_cuts(v, 15, cuts);
    const float want[VOCAB_N_CUTS] = {20, 30, 50, 60, 80, 90, 110, 120, 140};
    for (int j = 0; j < VOCAB_N_CUTS; j++) CHECK_NEAR(cuts[j], want[j], 0);
    CHECK_EQ_INT(vocab_decile(cuts, 5), 1);
    CHECK_EQ_INT(vocab_decile(cuts, 20), 1);   /* equal to the first cut: still Q1 */
    CHECK_EQ_INT(vocab_decile(cuts, 20.5f), 2);
    CHECK_EQ_INT(vocab_decile(cuts, 85), 6);
    CHECK_EQ_INT(vocab_decile(cuts, 140), 9);
    CHECK_EQ_INT(vocab_decile(cuts, 1e9f), 10);
    /* All equal: everything at the value is Q1, anything above Q10. */
    for (int i = 0; i < 30; i++) v[i] = 7;
    vocab_fit_cuts(v, 30, cuts);
    CHECK_EQ_INT(vocab_decile(cuts, 7), 1);
    CHECK_EQ_INT(vocab_decile(cuts, 7.5f), 10);
}

/* ------------------------------------------------------------------ encoding, by hand */

/* Subject 1 is the one checked token by token; subject 2 repeats its codes (so min-count 2
 * keeps them) and brings 20 values of LAB//A//mg for the deciles. */
static int build_spec_store(const char *path) {
    builder b;
    b_open(&b, path);
    b_add(&b, 1, TIME_NULL, "GENDER//F", NAN);
    b_add(&b, 1, T(1980, 3, 15, 0, 0), "MEDS_BIRTH", NAN);
    b_add(&b, 1, T(2020, 1, 1, 8, 0), "HOSPITAL_ADMISSION//EMERGENCY//ER", NAN);
    b_add(&b, 1, T(2020, 1, 1, 8, 0), "RACE//WHITE", NAN);
    b_add(&b, 1, T(2020, 1, 1, 8, 3), "LAB//A//mg", 5.0f);
    b_add(&b, 1, T(2020, 1, 1, 8, 3), "LAB//A//mg", 5.0f); /* the same again: dropped */
    b_add(&b, 1, T(2020, 1, 1, 8, 3), "LAB//B//mg", NAN);
    b_add(&b, 1, T(2020, 1, 1, 8, 3), "LAB//RARE//x", 1.0f);
    b_add(&b, 1, T(2020, 1, 1, 8, 3), "NOSLASHCODE", NAN);
    b_add(&b, 1, T(2020, 1, 1, 10, 0), "DIAGNOSIS//ICD//10//I2510", NAN);
    b_add(&b, 1, T(2020, 1, 1, 10, 0), "PROCEDURE//ICD//10//0210093", NAN);
    b_add(&b, 1, T(2020, 1, 2, 10, 0), "HOSPITAL_DISCHARGE//HOME", NAN);
    b_add(&b, 1, T(2020, 1, 2, 10, 0), "RACE//WHITE", NAN); /* unchanged: dropped */
    b_add(&b, 1, T(2020, 1, 2, 10, 4), "ICU_ADMISSION//MICU", NAN);
    b_add(&b, 1, T(2021, 1, 2, 10, 4), "MEDS_DEATH", NAN);

    b_add(&b, 2, TIME_NULL, "GENDER//F", NAN);
    b_add(&b, 2, T(1970, 6, 1, 0, 0), "MEDS_BIRTH", NAN);
    for (int i = 0; i < 20; i++) b_add(&b, 2, T(2019, 5, 1, i, 0), "LAB//A//mg", (float)(i + 1));
    const char *again[] = {"HOSPITAL_ADMISSION//EMERGENCY//ER", "RACE//WHITE", "LAB//B//mg",
                           "DIAGNOSIS//ICD//10//I2510", "PROCEDURE//ICD//10//0210093", "HOSPITAL_DISCHARGE//HOME",
                           "ICU_ADMISSION//MICU"};
    for (int i = 0; i < 7; i++) b_add(&b, 2, T(2021, 6, 1 + i, 0, 0), again[i], NAN);
    return b_finish(&b);
}

static void test_encode_by_hand(void) {
    REQUIRE(build_spec_store(tmp("spec.store")) == 0);
    store s;
    cf_err err = {0};
    REQUIRE(store_open(&s, tmp("spec.store"), &err) == CF_OK);
    split_config sp;
    split_all_train(&sp);
    vocab_options o;
    vocab_options_default(&o);
    o.min_count = 2;
    vocab v;
    REQUIRE(vocab_build(&v, &s, &sp, &o, &err) == CF_OK);
    CHECK_EQ_INT(v.train_subjects, 2);
    CHECK_EQ_INT(v.n_slots, 2);
    CHECK(vocab_find(&v, "LAB//RARE//x") < 0);
    CHECK(vocab_find(&v, "LAB//A//mg") >= 0);
    CHECK(v.cut_set[vocab_find(&v, "LAB//A//mg")] != UINT32_MAX);
    CHECK(v.cut_set[vocab_find(&v, "LAB//B//mg")] == UINT32_MAX);
    timeline_encoder *e;
    REQUIRE(timeline_encoder_new(&e, &v, &s, &err) == CF_OK);
    timeline_seq q;
    timeline_seq_init(&q);
    REQUIRE(timeline_encode(e, (uint64_t)store_find_subject(&s, 1), &q, &err) == CF_OK);
    /* Age 39 at the first event; year bins start at 2015 (first train event in 2019).
     * LAB//A//mg: 21 values 1..20 and 5, cuts at ranks ceil(2.1 j) = 3,5,7,9,..: 3, 5, 6, ..;
     * 5 is above only the first cut: [Q2]. 366 days = 2 x 182 d + 2 d. */
    static const char *want[] = {
        "GENDER//F", "RACE//[NONE]", "[AGE 35-39]", "[YEAR 2020-2024]",
        "[ADMISSION_START]", "HOSPITAL_ADMISSION//EMERGENCY//ER", "RACE//WHITE",
        "LAB//A//mg", "[Q2]", "LAB//B//mg", "LAB//[UNK]", "[UNK]",
        "[GAP 1h-2h]", "ICD10CM//I25", "ICD10CM//.10",
        "ICD10PCS//1:0", "ICD10PCS//2:2", "ICD10PCS//3:1", "ICD10PCS//4:0", "ICD10PCS//5:0", "ICD10PCS//6:9",
        "ICD10PCS//7:3",
        "[GAP 1d-3d]", "[ADMISSION_END]", "HOSPITAL_DISCHARGE//HOME",
        "[ICU_START]", "ICU_ADMISSION//MICU",
        "[GAP 6mo]", "[GAP 6mo]", "[GAP 1d-3d]", "[DEATH]",
        "[EOT]"};
    size_t nw = sizeof want / sizeof *want;
    CHECK_EQ_INT(q.len, nw);
    CHECK_EQ_INT(q.n_prefix, 4);
    for (size_t i = 0; i < nw && i < q.len; i++) CHECK_EQ_STR(vocab_token_str(&v, q.tokens[i]), want[i]);
    /* Times: the prefix at the first event, gaps at the event they lead to, [EOT] at the last. */
    CHECK_EQ_INT(q.times[0], T(2020, 1, 1, 8, 0));
    CHECK_EQ_INT(q.times[12], T(2020, 1, 1, 10, 0));
    CHECK_EQ_INT(q.times[27], T(2021, 1, 2, 10, 4));
    CHECK_EQ_INT(q.times[nw - 1], T(2021, 1, 2, 10, 4));
    CHECK_EQ_INT(q.birth, T(1980, 3, 15, 0, 0));
    CHECK_EQ_INT(timeline_seq_known_at(&q, T(2020, 1, 1, 9, 0)), 12);
    CHECK_EQ_INT(timeline_seq_known_at(&q, T(2019, 1, 1, 0, 0)), 4);
    /* Decode round trip: every token's string finds the same token. */
    for (size_t i = 0; i < q.len; i++) CHECK_EQ_INT(vocab_find(&v, vocab_token_str(&v, q.tokens[i])), q.tokens[i]);
    /* Without ICD splitting, the codes stay whole. */
    vocab v2;
    o.split_codes = 0;
    REQUIRE(vocab_build(&v2, &s, &sp, &o, &err) == CF_OK);
    timeline_encoder *e2;
    REQUIRE(timeline_encoder_new(&e2, &v2, &s, &err) == CF_OK);
    REQUIRE(timeline_encode(e2, (uint64_t)store_find_subject(&s, 1), &q, &err) == CF_OK);
    CHECK_EQ_INT(q.len, nw - 7);
    CHECK_EQ_STR(vocab_token_str(&v2, q.tokens[13]), "DIAGNOSIS//ICD//10//I2510");
    CHECK_EQ_STR(vocab_token_str(&v2, q.tokens[14]), "PROCEDURE//ICD//10//0210093");
    CHECK(vocab_find(&v2, "ICD10CM//I25") < 0);
    CHECK(memcmp(v.hash, v2.hash, VOCAB_HASH_BYTES) != 0);
    timeline_encoder_free(e2);
    vocab_free(&v2);
    timeline_seq_free(&q);
    timeline_encoder_free(e);
    vocab_free(&v);
    store_close(&s);
}

/* ------------------------------------------------------------------ train-only fitting */

#define ISO_SUBJECTS 240

/* Every subject: sex, birth, three labs with values. Tuning and held_out subjects also have
 * codes no train subject has, extreme values, and later years; none of it may reach the
 * vocabulary. only_train leaves the tuning and held_out subjects out altogether. */
static int build_isolation_store(const char *path, const split_config *sp, int only_train) {
    builder b;
    b_open(&b, path);
    for (int64_t id = 5000; id < 5000 + ISO_SUBJECTS; id++) {
        int part = split_assign(sp, id);
        if (only_train && part != SPLIT_TRAIN) continue;
        b_add(&b, id, TIME_NULL, id % 2 ? "GENDER//F" : "GENDER//M", NAN);
        b_add(&b, id, T(1950 + (int)(id % 40), 1, 1, 0, 0), "MEDS_BIRTH", NAN);
        for (int k = 0; k < 6; k++) {
            int64_t t = T(2010 + (int)(id % 5), 1 + (unsigned)k, 1, 8, 0);
            b_add(&b, id, t, "LAB//GLU//mg/dL", (float)(70 + (id * 13 + k * 7) % 90));
            b_add(&b, id, t, "LAB//NA//mEq/L", (float)(130 + (id + k) % 15));
            b_add(&b, id, t + HOUR_US, "MEDICATION//START//Aspirin", NAN);
        }
        if (part == SPLIT_HELD_OUT) {
            for (int k = 0; k < 6; k++) b_add(&b, id, T(2099, 1, 1 + (unsigned)k, 0, 0), "LAB//SECRET//u", 1e6f);
            b_add(&b, id, T(2099, 2, 1, 0, 0), "LAB//GLU//mg/dL", 1e6f);
            b_add(&b, id, T(2099, 2, 1, 0, 0), "RACE//HELDOUT", NAN);
        }
        if (part == SPLIT_TUNING)
            for (int k = 0; k < 6; k++) b_add(&b, id, T(1900, 1, 1 + (unsigned)k, 0, 0), "TUNEONLY//x", -5.0f);
    }
    return b_finish(&b);
}

static void test_vocab_sees_train_only(void) {
    split_config sp;
    split_config_default(&sp);
    cf_err err = {0};
    REQUIRE(build_isolation_store(tmp("iso_all.store"), &sp, 0) == 0);
    REQUIRE(build_isolation_store(tmp("iso_train.store"), &sp, 1) == 0);
    store all, tr;
    REQUIRE(store_open(&all, tmp("iso_all.store"), &err) == CF_OK);
    REQUIRE(store_open(&tr, tmp("iso_train.store"), &err) == CF_OK);
    int held = 0, tuning = 0;
    for (int64_t id = 5000; id < 5000 + ISO_SUBJECTS; id++) {
        held += split_assign(&sp, id) == SPLIT_HELD_OUT;
        tuning += split_assign(&sp, id) == SPLIT_TUNING;
    }
    REQUIRE(held > 5 && tuning > 5);
    CHECK(all.n_subjects > tr.n_subjects);
    vocab_options o;
    vocab_options_default(&o);
    vocab va, vt;
    REQUIRE(vocab_build(&va, &all, &sp, &o, &err) == CF_OK);
    REQUIRE(vocab_build(&vt, &tr, &sp, &o, &err) == CF_OK);
    /* The same bytes, whether or not the other splits exist at all. */
    CHECK(memcmp(va.hash, vt.hash, VOCAB_HASH_BYTES) == 0);
    CHECK_EQ_INT(va.train_subjects, ISO_SUBJECTS - held - tuning);
    CHECK(vocab_find(&va, "LAB//SECRET//u") < 0);
    CHECK(vocab_find(&va, "TUNEONLY//x") < 0);
    CHECK(vocab_find(&va, "TUNEONLY//[UNK]") < 0);
    CHECK(vocab_find(&va, "RACE//HELDOUT") < 0);
    CHECK(vocab_find(&va, "[YEAR 2095-2099]") < 0);
    CHECK(vocab_find(&va, "[YEAR 2010-2014]") >= 0);
    /* A held_out subject's secret code is an unknown lab; its year is clamped to train's. */
    timeline_encoder *e;
    REQUIRE(timeline_encoder_new(&e, &va, &all, &err) == CF_OK);
    timeline_seq q;
    timeline_seq_init(&q);
    int checked = 0;
    for (uint64_t k = 0; k < all.n_subjects && !checked; k++) {
        if (split_assign(&sp, all.subject_id[k]) != SPLIT_HELD_OUT) continue;
        REQUIRE(timeline_encode(e, k, &q, &err) == CF_OK);
        int unk = 0, race_unk = 0;
        for (size_t i = 0; i < q.len; i++) {
            const char *t = vocab_token_str(&va, q.tokens[i]);
            unk += !strcmp(t, "LAB//[UNK]");
            race_unk += !strcmp(t, "[UNK]");
            CHECK(strstr(t, "SECRET") == NULL);
        }
        CHECK_EQ_INT(unk, 6);
        CHECK_EQ_INT(race_unk, 1); /* RACE was never seen in train: not even RACE//[UNK] exists */
        checked = 1;
    }
    CHECK(checked);
    /* The extreme held_out value did not move the cut points: 1e6 is just above the top cut. */
    int64_t glu = vocab_find(&va, "LAB//GLU//mg/dL");
    REQUIRE(glu >= 0 && va.cut_set[glu] != UINT32_MAX);
    CHECK(va.cuts[(size_t)va.cut_set[glu] * VOCAB_N_CUTS + VOCAB_N_CUTS - 1] < 200);
    timeline_seq_free(&q);
    timeline_encoder_free(e);
    vocab_free(&va);
    vocab_free(&vt);
    store_close(&all);
    store_close(&tr);
}

static void test_max_vocab_and_min_count(void) {
    split_config sp;
    split_config_default(&sp);
    cf_err err = {0};
    REQUIRE(build_isolation_store(tmp("iso_mv.store"), &sp, 0) == 0);
    store s;
    REQUIRE(store_open(&s, tmp("iso_mv.store"), &err) == CF_OK);
    vocab_options o;
    vocab_options_default(&o);
    vocab v;
    REQUIRE(vocab_build(&v, &s, &sp, &o, &err) == CF_OK);
    uint32_t full = v.n_tokens;
    vocab_free(&v);
    /* One token fewer: the least frequent code goes (Aspirin and the labs tie at 6 per
     * subject; sex codes are rarer). */
    o.max_vocab = full - 1;
    REQUIRE(vocab_build(&v, &s, &sp, &o, &err) == CF_OK);
    CHECK_EQ_INT(v.n_tokens, full - 1);
    CHECK((vocab_find(&v, "GENDER//F") < 0) + (vocab_find(&v, "GENDER//M") < 0) == 1);
    CHECK(vocab_find(&v, "LAB//GLU//mg/dL") >= 0);
    vocab_free(&v);
    o.max_vocab = 40;
    CHECK(vocab_build(&v, &s, &sp, &o, &err) == CF_EINPUT); /* the fixed tokens alone exceed it */
    CHECK_CONTAINS(err.msg, "--max-vocab");
    o.max_vocab = 0;
    o.min_count = 1000000;
    REQUIRE(vocab_build(&v, &s, &sp, &o, &err) == CF_OK);
    CHECK(vocab_find(&v, "LAB//GLU//mg/dL") < 0);
    CHECK(vocab_find(&v, "LAB//[UNK]") >= 0);
    CHECK(v.count[vocab_find(&v, "LAB//[UNK]")] > 0);
    vocab_free(&v);
    store_close(&s);
}

/* ------------------------------------------------------------------ determinism and damage */

static void test_determinism_and_file_round_trip(void) {
    split_config sp;
    split_config_default(&sp);
    cf_err err = {0};
    REQUIRE(build_isolation_store(tmp("det.store"), &sp, 0) == 0);
    store s;
    REQUIRE(store_open(&s, tmp("det.store"), &err) == CF_OK);
    vocab_options o;
    vocab_options_default(&o);
    vocab a, b, c;
    REQUIRE(vocab_build(&a, &s, &sp, &o, &err) == CF_OK);
    REQUIRE(vocab_build(&b, &s, &sp, &o, &err) == CF_OK);
    CHECK(memcmp(a.hash, b.hash, VOCAB_HASH_BYTES) == 0);
    REQUIRE(vocab_save(&a, tmp("det.vocab"), &err) == CF_OK);
    REQUIRE(vocab_load(&c, tmp("det.vocab"), &err) == CF_OK);
    CHECK(memcmp(a.hash, c.hash, VOCAB_HASH_BYTES) == 0);
    REQUIRE_EQ_INT(c.n_tokens, a.n_tokens);
    for (uint32_t i = 0; i < a.n_tokens; i++) CHECK_EQ_STR(vocab_token_str(&c, i), vocab_token_str(&a, i));
    timeline_encoder *ea, *ec;
    REQUIRE(timeline_encoder_new(&ea, &a, &s, &err) == CF_OK);
    REQUIRE(timeline_encoder_new(&ec, &c, &s, &err) == CF_OK);
    timeline_seq qa, qc;
    timeline_seq_init(&qa);
    timeline_seq_init(&qc);
    size_t mismatched = 0;
    for (uint64_t k = 0; k < s.n_subjects; k++) {
        REQUIRE(timeline_encode(ea, k, &qa, &err) == CF_OK);
        REQUIRE(timeline_encode(ec, k, &qc, &err) == CF_OK);
        mismatched += qa.len != qc.len || memcmp(qa.tokens, qc.tokens, qa.len * 4) ||
                      memcmp(qa.times, qc.times, qa.len * 8);
        /* Encoding the same subject again with a reused sequence gives the same tokens. */
        REQUIRE(timeline_encode(ea, k, &qc, &err) == CF_OK);
        mismatched += qa.len != qc.len || memcmp(qa.tokens, qc.tokens, qa.len * 4);
    }
    CHECK_EQ_INT(mismatched, 0);
    timeline_seq_free(&qa);
    timeline_seq_free(&qc);
    timeline_encoder_free(ea);
    timeline_encoder_free(ec);
    vocab_free(&a);
    vocab_free(&b);
    vocab_free(&c);
    store_close(&s);
}

static void test_vocab_damage_detected(void) {
    split_config sp;
    split_all_train(&sp);
    cf_err err = {0};
    REQUIRE(build_spec_store(tmp("dmg.store")) == 0);
    store s;
    REQUIRE(store_open(&s, tmp("dmg.store"), &err) == CF_OK);
    vocab_options o;
    vocab_options_default(&o);
    vocab v, w;
    REQUIRE(vocab_build(&v, &s, &sp, &o, &err) == CF_OK);
    uint8_t *img;
    size_t len;
    REQUIRE(vocab_serialize(&v, &img, &len, &err) == CF_OK);
    CHECK(vocab_parse(&w, img, len, "image", &err) == CF_OK);
    vocab_free(&w);
    /* Any single flipped bit, anywhere, is caught. */
    size_t positions[] = {0, 9, 30, 70, 100, 230, 256, 256 + 41, len / 2, len - 2, len - 1};
    for (size_t p = 0; p < sizeof positions / sizeof *positions; p++) {
        img[positions[p]] ^= 0x10;
        err.msg[0] = 0;
        if (vocab_parse(&w, img, len, "image", &err) != CF_EINPUT) {
            CHECK_FAIL_("a flipped bit at byte %zu was accepted", positions[p]);
            vocab_free(&w);
        }
        CHECK(err.msg[0] != 0);
        img[positions[p]] ^= 0x10;
    }
    CHECK(vocab_parse(&w, img, len - 1, "image", &err) == CF_EINPUT);
    CHECK_CONTAINS(err.msg, "truncated");
    CHECK(vocab_parse(&w, img, 100, "image", &err) == CF_EINPUT);
    CHECK(vocab_parse(&w, img, 0, "image", &err) == CF_EINPUT);
    img[8] = VOCAB_FORMAT_VERSION + 1; /* a future version is named as such, not as damage */
    CHECK(vocab_parse(&w, img, len, "image", &err) == CF_EINPUT);
    CHECK_CONTAINS(err.msg, "version 3");
    img[8] = 1;
    /* A file on disk: damaged in the middle. */
    img[len / 3] ^= 1;
    REQUIRE(atomic_write_file(tmp("bad.vocab"), img, len, &err) == CF_OK);
    CHECK(vocab_load(&w, tmp("bad.vocab"), &err) == CF_EINPUT);
    CHECK_CONTAINS(err.msg, "damaged");
    CHECK(vocab_load(&w, tmp("none.vocab"), &err) == CF_EINPUT);
    free(img);
    vocab_free(&v);
    store_close(&s);
}

/* ------------------------------------------------------------------ shards and windows */

static void test_shards_and_windows(void) {
    split_config sp;
    split_all_train(&sp);
    cf_err err = {0};
    REQUIRE(build_spec_store(tmp("sh.store")) == 0);
    store s;
    REQUIRE(store_open(&s, tmp("sh.store"), &err) == CF_OK);
    vocab_options o;
    vocab_options_default(&o);
    o.min_count = 2;
    vocab v;
    REQUIRE(vocab_build(&v, &s, &sp, &o, &err) == CF_OK);
    timeline_shard_stats st;
    REQUIRE(timeline_write_shards(&v, &s, &sp, SPLIT_TRAIN, tmp("train.tokens"), &st, &err) == CF_OK);
    CHECK_EQ_INT(st.subjects, 2);
    timeline_shard sh;
    REQUIRE(timeline_shard_open(&sh, tmp("train.tokens"), &v, &err) == CF_OK);
    CHECK(timeline_shard_verify(&sh, &err) == CF_OK);
    CHECK_EQ_INT(sh.n_subjects, 2);
    CHECK_EQ_INT(sh.token_bytes, 2);
    CHECK_EQ_INT(sh.n_tokens, st.tokens);
    /* The shard holds exactly what the encoder makes. */
    timeline_encoder *e;
    REQUIRE(timeline_encoder_new(&e, &v, &s, &err) == CF_OK);
    timeline_seq q;
    timeline_seq_init(&q);
    for (uint64_t i = 0; i < sh.n_subjects; i++) {
        timeline_shard_subject r;
        timeline_shard_get_subject(&sh, i, &r);
        REQUIRE(timeline_encode(e, (uint64_t)store_find_subject(&s, r.subject_id), &q, &err) == CF_OK);
        REQUIRE_EQ_INT(r.n_tokens, q.len);
        CHECK_EQ_INT(r.n_prefix, q.n_prefix);
        CHECK_EQ_INT(r.birth, q.birth);
        for (size_t j = 0; j < q.len; j++) {
            CHECK_EQ_INT(timeline_shard_token(&sh, r.first + j), q.tokens[j]);
            CHECK_EQ_INT(timeline_shard_time(&sh, r.first + j), q.times[j]);
        }
        CHECK_EQ_INT(timeline_shard_subject_at(&sh, r.first), i);
        CHECK_EQ_INT(timeline_shard_subject_at(&sh, r.first + r.n_tokens - 1), i);
    }
    /* Subject 1 comes first (ids ascending). A window at its [GAP 1h-2h] (position 12) gets a
     * fresh prefix: RACE is WHITE by then. No loss on the prefix. */
    REQUIRE(timeline_encode(e, (uint64_t)store_find_subject(&s, 1), &q, &err) == CF_OK);
    int in[40], tg[40];
    CHECK_EQ_INT(timeline_shard_window(&sh, &v, 12, 10, in, tg), 4);
    CHECK_EQ_STR(vocab_token_str(&v, (uint32_t)in[0]), "GENDER//F");
    CHECK_EQ_STR(vocab_token_str(&v, (uint32_t)in[1]), "RACE//WHITE");
    CHECK_EQ_STR(vocab_token_str(&v, (uint32_t)in[2]), "[AGE 35-39]");
    CHECK_EQ_STR(vocab_token_str(&v, (uint32_t)in[3]), "[YEAR 2020-2024]");
    CHECK_EQ_STR(vocab_token_str(&v, (uint32_t)in[4]), "[GAP 1h-2h]");
    CHECK(tg[0] == -1 && tg[1] == -1 && tg[2] == -1);
    CHECK_EQ_INT(tg[3], q.tokens[12]);
    for (int i = 4; i < 10; i++) CHECK_EQ_INT(tg[i], q.tokens[12 + i - 3]);
    for (int i = 5; i < 10; i++) CHECK_EQ_INT(in[i], q.tokens[12 + i - 4]);
    /* Inside the native prefix: the window starts at the subject's first token. */
    CHECK_EQ_INT(timeline_shard_window(&sh, &v, 2, 6, in, tg), 0);
    for (int i = 0; i < 6; i++) CHECK_EQ_INT(in[i], q.tokens[i]);
    CHECK(tg[0] == -1 && tg[1] == -1 && tg[2] == -1 && tg[3] == (int)q.tokens[4]);
    /* Across the subject boundary: subject 2's prefix has no loss; then padding. */
    uint64_t end1 = q.len;
    CHECK_EQ_INT(timeline_shard_window(&sh, &v, end1 - 1, 6, in, tg), 4);
    CHECK_EQ_STR(vocab_token_str(&v, (uint32_t)in[4]), "[EOT]");
    CHECK_EQ_INT(tg[4], -1); /* the next token is subject 2's first prefix token */
    CHECK_EQ_STR(vocab_token_str(&v, (uint32_t)in[5]), "GENDER//F");
    int T40 = 40;
    timeline_shard_window(&sh, &v, sh.n_tokens - 2, T40, in, tg);
    CHECK_EQ_STR(vocab_token_str(&v, (uint32_t)in[T40 - 1]), "[PAD]");
    CHECK_EQ_INT(tg[T40 - 1], -1);
    timeline_shard_close(&sh);

    /* An empty split makes a valid, empty shard whose windows are all padding. */
    REQUIRE(timeline_write_shards(&v, &s, &sp, SPLIT_HELD_OUT, tmp("empty.tokens"), &st, &err) == CF_OK);
    CHECK_EQ_INT(st.subjects, 0);
    REQUIRE(timeline_shard_open(&sh, tmp("empty.tokens"), &v, &err) == CF_OK);
    CHECK(sh.n_subjects == 0 && sh.n_tokens == 0 && sh.split == SPLIT_HELD_OUT);
    CHECK(timeline_shard_verify(&sh, &err) == CF_OK);
    CHECK_EQ_INT(timeline_shard_window(&sh, &v, 0, 4, in, tg), 0);
    CHECK(in[0] == (int)v.special[VOCAB_SP_PAD] && tg[3] == -1);
    timeline_shard_close(&sh);

    /* A fold is recorded in the vocabulary (version 2) and shards of another fold are refused. */
    {
        split_config f2 = sp, f3 = sp;
        REQUIRE(split_set_fold(&f2, 2, 5, &err) == CF_OK);
        REQUIRE(split_set_fold(&f3, 3, 5, &err) == CF_OK);
        vocab vf, vb;
        REQUIRE(vocab_build(&vf, &s, &f2, &o, &err) == CF_OK);
        CHECK_EQ_INT(vf.split_rotate_ppm, f2.rotate_ppm);
        REQUIRE(vocab_save(&vf, tmp("fold.vocab"), &err) == CF_OK);
        REQUIRE(vocab_load(&vb, tmp("fold.vocab"), &err) == CF_OK);
        CHECK_EQ_INT(vb.split_rotate_ppm, f2.rotate_ppm);
        CHECK(timeline_write_shards(&vb, &s, &f3, SPLIT_TRAIN, tmp("f.tokens"), NULL, &err) == CF_EINPUT);
        CHECK(timeline_write_shards(&vb, &s, &f2, SPLIT_TRAIN, tmp("f.tokens"), NULL, &err) == CF_OK);
        vocab_free(&vf);
        vocab_free(&vb);
    }
    /* Another vocabulary is refused; a split other than the vocabulary's is refused. */
    vocab v2;
    o.min_count = 1;
    REQUIRE(vocab_build(&v2, &s, &sp, &o, &err) == CF_OK);
    CHECK(timeline_shard_open(&sh, tmp("train.tokens"), &v2, &err) == CF_EINPUT);
    split_config other;
    split_config_default(&other);
    CHECK(timeline_write_shards(&v, &s, &other, SPLIT_TRAIN, tmp("x.tokens"), NULL, &err) == CF_EINPUT);
    CHECK(access(tmp("x.tokens"), F_OK) != 0);
    vocab_free(&v2);

    /* Damage: a token byte fails verify; a header byte fails open. */
    static uint8_t buf[1 << 16];
    size_t len = read_small(tmp("train.tokens"), buf, sizeof buf);
    REQUIRE(len > 400 && len < sizeof buf);
    REQUIRE(timeline_shard_open(&sh, tmp("train.tokens"), &v, &err) == CF_OK);
    size_t tok_off = (size_t)((const uint8_t *)sh.tokens - (const uint8_t *)sh.map);
    timeline_shard_close(&sh);
    buf[tok_off + 3] ^= 1;
    REQUIRE(atomic_write_file(tmp("bad.tokens"), buf, len, &err) == CF_OK);
    REQUIRE(timeline_shard_open(&sh, tmp("bad.tokens"), &v, &err) == CF_OK);
    CHECK(timeline_shard_verify(&sh, &err) == CF_EINPUT);
    timeline_shard_close(&sh);
    buf[tok_off + 3] ^= 1;
    buf[30] ^= 1;
    REQUIRE(atomic_write_file(tmp("bad.tokens"), buf, len, &err) == CF_OK);
    CHECK(timeline_shard_open(&sh, tmp("bad.tokens"), &v, &err) == CF_EINPUT);
    buf[30] ^= 1;
    REQUIRE(atomic_write_file(tmp("bad.tokens"), buf, len - 8, &err) == CF_OK);
    CHECK(timeline_shard_open(&sh, tmp("bad.tokens"), &v, &err) == CF_EINPUT);

    timeline_seq_free(&q);
    timeline_encoder_free(e);
    vocab_free(&v);
    store_close(&s);
}

/* ------------------------------------------------------------------ values and continuous inputs */

static void test_values_and_features(void) {
    /* The value transform against hand-computed figures: cuts 1..9, median 5, spread
     * (9 - 1) / 2.563. */
    float cuts[VOCAB_N_CUTS] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    double sd = 8.0 / 2.563;
    CHECK_NEAR(vocab_value_norm(cuts, 5), 0.0, 1e-7);
    CHECK_NEAR(vocab_value_norm(cuts, (float)(5 + sd)), asinh(1.0), 1e-6);
    CHECK_NEAR(vocab_value_norm(cuts, -95), asinh(-100 / sd), 1e-5);
    CHECK(vocab_value_norm(cuts, 7) < vocab_value_norm(cuts, 7.5f));
    CHECK(isnan(vocab_value_norm(cuts, INFINITY)) && isnan(vocab_value_norm(cuts, NAN)));
    CHECK_NEAR(vocab_decile_norm(cuts, 5), asinh(-0.5 / sd), 1e-6);     /* middle of (4, 5] */
    CHECK_NEAR(vocab_decile_norm(cuts, 1), asinh(-4.5 / sd), 1e-6);     /* (0, 1] */
    CHECK_NEAR(vocab_decile_norm(cuts, 10), asinh(4.5 / sd), 1e-6);     /* (9, 10] */
    /* All train values equal: a departure from them is still a finite, signed number. */
    float flat[VOCAB_N_CUTS] = {15, 15, 15, 15, 15, 15, 15, 15, 15};
    CHECK_NEAR(vocab_value_norm(flat, 15), 0.0, 1e-7);
    CHECK(vocab_value_norm(flat, 3) < -1.0f && isfinite(vocab_value_norm(flat, 3)));

    REQUIRE(build_spec_store(tmp("val.store")) == 0);
    store s;
    cf_err err = {0};
    REQUIRE(store_open(&s, tmp("val.store"), &err) == CF_OK);
    split_config sp;
    split_all_train(&sp);
    vocab_options o;
    vocab_options_default(&o);
    o.min_count = 2;
    vocab v, ve;
    REQUIRE(vocab_build(&v, &s, &sp, &o, &err) == CF_OK);
    o.value_mode = VOCAB_VALUES_EMBED;
    REQUIRE(vocab_build(&ve, &s, &sp, &o, &err) == CF_OK);
    CHECK(memcmp(v.hash, ve.hash, VOCAB_HASH_BYTES) != 0);
    CHECK_EQ_INT(ve.value_mode, VOCAB_VALUES_EMBED);
    /* The mode survives a file round trip (version 2); the default mode stays version 1. */
    REQUIRE(vocab_save(&ve, tmp("e.vocab"), &err) == CF_OK);
    vocab back;
    REQUIRE(vocab_load(&back, tmp("e.vocab"), &err) == CF_OK);
    CHECK_EQ_INT(back.value_mode, VOCAB_VALUES_EMBED);
    CHECK(memcmp(back.hash, ve.hash, VOCAB_HASH_BYTES) == 0);
    vocab_free(&back);
    uint8_t *img;
    size_t len;
    REQUIRE(vocab_serialize(&v, &img, &len, &err) == CF_OK);
    CHECK_EQ_INT(img[8], 1);
    free(img);

    int64_t a = vocab_find(&v, "LAB//A//mg");
    REQUIRE(a >= 0);
    const float *c = v.cuts + (size_t)v.cut_set[a] * VOCAB_N_CUTS;
    timeline_encoder *e, *ee;
    REQUIRE(timeline_encoder_new(&e, &v, &s, &err) == CF_OK);
    REQUIRE(timeline_encoder_new(&ee, &ve, &s, &err) == CF_OK);
    timeline_seq q, qe;
    timeline_seq_init(&q);
    timeline_seq_init(&qe);
    uint64_t k1 = (uint64_t)store_find_subject(&s, 1);
    REQUIRE(timeline_encode(e, k1, &q, &err) == CF_OK);
    REQUIRE(timeline_encode(ee, k1, &qe, &err) == CF_OK);
    /* Token mode: LAB//A//mg [Q2] at positions 7, 8; the decile token carries 5 normalised. */
    CHECK_EQ_STR(vocab_token_str(&v, q.tokens[8]), "[Q2]");
    CHECK_NEAR(q.values[8], vocab_value_norm(c, 5.0f), 1e-7);
    for (size_t j = 0; j < q.len; j++)
        if (j != 8) CHECK(isnan(q.values[j]));
    /* Embed mode: no decile token; the code token carries the value. */
    CHECK_EQ_INT(qe.len, q.len - 1);
    CHECK_EQ_STR(vocab_token_str(&ve, qe.tokens[7]), "LAB//A//mg");
    CHECK_EQ_STR(vocab_token_str(&ve, qe.tokens[8]), "LAB//B//mg");
    const float *ce = ve.cuts + (size_t)ve.cut_set[vocab_find(&ve, "LAB//A//mg")] * VOCAB_N_CUTS;
    CHECK_NEAR(qe.values[7], vocab_value_norm(ce, 5.0f), 1e-7);
    for (size_t j = 0; j < qe.len; j++)
        if (j != 7) CHECK(isnan(qe.values[j]));

    /* Continuous inputs of the whole sequence, against figures worked out by hand. */
    float *f = malloc(q.len * TIMELINE_N_FEATURES * sizeof *f);
    REQUIRE(f);
    timeline_features(f, q.times, q.values, q.len, q.n_prefix, q.times[0], TIME_NULL);
#define FT(j, i) f[(size_t)(j) * TIMELINE_N_FEATURES + (i)]
    for (size_t j = 0; j < 4; j++) {
        CHECK(FT(j, 5) == 1.0f && FT(j, 0) == 0.0f && FT(j, 2) == 0.0f && FT(j, 3) == 0.0f);
    }
    CHECK(FT(4, 5) == 0.0f && FT(4, 2) == 0.0f && FT(4, 3) == 0.0f); /* the first event, 08:00 */
    /* 08:03: 3 minutes after the first event */
    CHECK_NEAR(FT(7, 2), log1p(3.0 / 60) / 2, 1e-6);
    CHECK_NEAR(FT(8, 0), 1.0, 0);
    CHECK_NEAR(FT(8, 1), q.values[8], 0);
    CHECK_NEAR(FT(8, 2), log1p(3.0 / 60) / 2, 1e-6); /* same time as its code: same gap */
    /* [GAP 1h-2h] at 10:00 leads to an event 117 minutes after 08:03, 2 h after the start */
    CHECK_NEAR(FT(12, 2), log1p(117.0 / 60) / 2, 1e-6);
    CHECK_NEAR(FT(12, 3), log1p(2.0) / 4, 1e-6);
    CHECK_NEAR(FT(12, 4), 2.0 / 24, 1e-6);
    CHECK_NEAR(FT(13, 2), log1p(117.0 / 60) / 2, 1e-6);
    /* discharge a day later: the linear clock stops at two days */
    CHECK_NEAR(FT(23, 4), 26.0 / 24, 1e-6);
    CHECK_NEAR(FT(27, 4), 2.0, 0);

    /* Shards keep the values; a window's inputs equal the whole sequence's, also when it
     * starts after a fresh prefix (the gap before its first token is measured from the event
     * before the window). */
    REQUIRE(timeline_write_shards(&v, &s, &sp, SPLIT_TRAIN, tmp("val.tokens"), NULL, &err) == CF_OK);
    timeline_shard sh;
    REQUIRE(timeline_shard_open(&sh, tmp("val.tokens"), &v, &err) == CF_OK);
    CHECK_EQ_INT(sh.version, TIMELINE_SHARD_VERSION);
    CHECK(timeline_shard_verify(&sh, &err) == CF_OK);
    for (size_t j = 0; j < q.len; j++) {
        float x = timeline_shard_value(&sh, j);
        CHECK(isnan(q.values[j]) ? isnan(x) : x == q.values[j]);
    }
    int in[12], tg[12];
    float wf[12 * TIMELINE_N_FEATURES];
    CHECK_EQ_INT(timeline_shard_window_x(&sh, &v, 12, 12, in, tg, wf), 4);
    for (int i = 0; i < 4; i++) CHECK(wf[i * TIMELINE_N_FEATURES + 5] == 1.0f);
    double worst = 0;
    for (int i = 4; i < 12; i++)
        for (int k = 0; k < TIMELINE_N_FEATURES; k++)
            worst = fmax(worst, fabs(wf[i * TIMELINE_N_FEATURES + k] - FT(12 + i - 4, k)));
    CHECK(worst == 0.0);
    /* A window that runs into the next subject: its inputs restart with that record. */
    float wf2[8 * TIMELINE_N_FEATURES];
    timeline_shard_window_x(&sh, &v, q.len - 2, 8, in, tg, wf2);
    CHECK(wf2[2 * TIMELINE_N_FEATURES + 5] == 1.0f); /* subject 2's prefix */
    CHECK(wf2[6 * TIMELINE_N_FEATURES + 3] == 0.0f); /* its first event */
    /* Corrupting a value is seen by verify (the TIMES hash covers VALUES). */
    timeline_shard_close(&sh);
    static uint8_t buf[1 << 16];
    size_t n = read_small(tmp("val.tokens"), buf, sizeof buf);
    REQUIRE(n > 100 && n < sizeof buf);
    buf[n - 2] ^= 4;
    REQUIRE(atomic_write_file(tmp("valbad.tokens"), buf, n, &err) == CF_OK);
    REQUIRE(timeline_shard_open(&sh, tmp("valbad.tokens"), &v, &err) == CF_OK);
    CHECK(timeline_shard_verify(&sh, &err) == CF_EINPUT);
    timeline_shard_close(&sh);
#undef FT
    free(f);
    timeline_seq_free(&q);
    timeline_seq_free(&qe);
    timeline_encoder_free(e);
    timeline_encoder_free(ee);
    vocab_free(&v);
    vocab_free(&ve);
    store_close(&s);
}

/* ------------------------------------------------------------------ shard blocks */

/* Version 3 codes times and values by blocks of 128 tokens that run across subjects. Many
 * subjects of uneven lengths put block and subject boundaries everywhere; times step by
 * minutes, seconds and microseconds, repeat, and jump back at each new subject; one subject
 * has no timed event at all. Every token, time and value must come back exactly as encoded,
 * windows must give the whole sequence's inputs, and damage must be reported. */
static void test_shard_blocks(void) {
    split_config sp;
    split_all_train(&sp);
    cf_err err = {0};
    builder b;
    b_open(&b, tmp("blk.store"));
    uint64_t rng = 12345;
    for (int64_t id = 1; id <= 23; id++) {
        b_add(&b, id, TIME_NULL, id % 2 ? "GENDER//F" : "GENDER//M", NAN);
        if (id == 7) continue; /* static facts only */
        b_add(&b, id, T(1950 + (int)id, 1, 1, 0, 0), "MEDS_BIRTH", NAN);
        int64_t t = T(2020, 1 + (unsigned)(id % 12), 1, 0, 0) + id * 7 * USEC_PER_SEC;
        int n = 20 + (int)((id * 37) % 90);
        for (int k = 0; k < n; k++) {
            rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
            unsigned r = (unsigned)(rng >> 33);
            switch (r % 5) { /* the step to this event */
            case 0: break;                                  /* the same time */
            case 1: t += (int64_t)(1 + r % 50) * MIN_US; break;
            case 2: t += (int64_t)(1 + r % 900) * USEC_PER_SEC; break;
            case 3: t += 1 + (int64_t)(r % 999983); break;  /* microseconds */
            default: t += (int64_t)(1 + r % 30) * 24 * HOUR_US; break;
            }
            if (r % 3 == 0) b_add(&b, id, t, "LAB//A//mg", (float)(r % 1000) / 7.0f);
            else if (r % 3 == 1) b_add(&b, id, t, "LAB//B//mg", (float)(r % 777) - 300.0f);
            else b_add(&b, id, t, k % 2 ? "X//C" : "X//D", NAN);
        }
    }
    REQUIRE(b_finish(&b) == 0);
    store s;
    REQUIRE(store_open(&s, tmp("blk.store"), &err) == CF_OK);
    vocab_options o;
    vocab_options_default(&o);
    o.min_count = 1;
    o.min_numeric = 5;
    for (int mode = 0; mode < 2; mode++) {
        o.value_mode = mode ? VOCAB_VALUES_EMBED : VOCAB_VALUES_TOKENS;
        vocab v;
        REQUIRE(vocab_build(&v, &s, &sp, &o, &err) == CF_OK);
        REQUIRE(timeline_write_shards(&v, &s, &sp, SPLIT_TRAIN, tmp("blk.tokens"), NULL, &err) == CF_OK);
        timeline_shard sh;
        REQUIRE(timeline_shard_open(&sh, tmp("blk.tokens"), &v, &err) == CF_OK);
        CHECK(timeline_shard_verify(&sh, &err) == CF_OK);
        CHECK_EQ_INT(sh.n_subjects, 23);
        REQUIRE(sh.n_tokens > 8 * 128); /* many blocks */
        /* The whole split, flat, from the encoder: the reference. */
        timeline_encoder *e;
        REQUIRE(timeline_encoder_new(&e, &v, &s, &err) == CF_OK);
        timeline_seq q;
        timeline_seq_init(&q);
        uint64_t N = sh.n_tokens;
        int64_t *rt = malloc(N * sizeof *rt), *gt = malloc(N * sizeof *gt);
        float *rv = malloc(N * sizeof *rv), *gv = malloc(N * sizeof *gv);
        float *rf = malloc(N * TIMELINE_N_FEATURES * sizeof *rf);
        uint64_t *sstart = malloc(N * sizeof *sstart); /* first token of each token's subject */
        REQUIRE(rt && gt && rv && gv && rf && sstart);
        uint64_t at = 0, n_vals = 0, crossing = 0;
        for (uint64_t i = 0; i < sh.n_subjects; i++) {
            timeline_shard_subject r;
            timeline_shard_get_subject(&sh, i, &r);
            REQUIRE(timeline_encode(e, (uint64_t)store_find_subject(&s, r.subject_id), &q, &err) == CF_OK);
            REQUIRE_EQ_INT(r.first, at);
            REQUIRE_EQ_INT(r.n_tokens, q.len);
            if (r.first / 128 != (r.first + r.n_tokens - 1) / 128) crossing++;
            for (size_t j = 0; j < q.len; j++) {
                CHECK_EQ_INT(timeline_shard_token(&sh, at + j), q.tokens[j]);
                rt[at + j] = q.times[j];
                rv[at + j] = q.values[j];
                sstart[at + j] = at;
                n_vals += !isnan(q.values[j]);
            }
            timeline_features(rf + at * TIMELINE_N_FEATURES, q.times, q.values, q.len, q.n_prefix, q.times[0],
                              TIME_NULL);
            at += q.len;
        }
        CHECK(crossing >= 5 && n_vals > 100);
        /* One token at a time, and ranges that start and end anywhere. */
        uint64_t bad = 0;
        for (uint64_t g = 0; g < N; g++) {
            float x = timeline_shard_value(&sh, g);
            bad += timeline_shard_time(&sh, g) != rt[g] || memcmp(&x, &rv[g], sizeof x) != 0;
        }
        CHECK_EQ_INT(bad, 0);
        for (uint64_t g0 = 0; g0 < N; g0 += 41) {
            size_t n = (size_t)((N - g0) < 300 ? N - g0 : 300);
            timeline_shard_read(&sh, g0, n, gt, gv);
            CHECK(!memcmp(gt, rt + g0, n * sizeof *gt) && !memcmp(gv, rv + g0, n * sizeof *gv));
        }
        /* Windows at and around every block boundary and every subject's start: the first
         * subject's inputs after a fresh prefix, and the following subjects' inputs, are the
         * whole sequence's. */
        int TW = 160, in[161], tg[161];
        float *wf = malloc((size_t)TW * TIMELINE_N_FEATURES * sizeof *wf);
        REQUIRE(wf);
        uint64_t windows = 0, mismatched = 0;
        for (uint64_t pos = 1; pos < N; pos++) {
            int near_block = pos % 128 <= 1 || pos % 128 == 127, near_subject = sstart[pos] + 5 >= pos;
            if (!near_block && !near_subject && pos % 97) continue;
            int placed = timeline_shard_window_x(&sh, &v, pos, TW, in, tg, wf);
            uint64_t g = placed ? pos : sstart[pos];
            for (int i = placed; i < TW && g < N; i++, g++) {
                CHECK_EQ_INT(in[i], timeline_shard_token(&sh, g));
                mismatched += memcmp(wf + (size_t)i * TIMELINE_N_FEATURES, rf + g * TIMELINE_N_FEATURES,
                                     TIMELINE_N_FEATURES * sizeof *wf) != 0;
            }
            windows++;
        }
        CHECK(windows > 100);
        CHECK_EQ_INT(mismatched, 0);
        free(wf);
        timeline_shard_close(&sh);

        if (mode == 0) {
            /* Damage. The file in memory; sections from the map. */
            static uint8_t buf[1 << 18];
            size_t len = read_small(tmp("blk.tokens"), buf, sizeof buf);
            REQUIRE(len > 1000 && len < sizeof buf);
            REQUIRE(timeline_shard_open(&sh, tmp("blk.tokens"), &v, &err) == CF_OK);
            size_t idx_off = (size_t)(sh.index - (const uint8_t *)sh.map),
                   data_off = (size_t)(sh.data - (const uint8_t *)sh.map);
            uint64_t n_blocks = sh.n_blocks;
            timeline_shard_close(&sh);
            CHECK_EQ_INT(n_blocks, (N + 127) / 128);
            /* A flipped bit in a block's data: open works (the header is intact), reading never
             * leaves the file, and verify names the section. */
            uint8_t *blk5 = buf + data_off + le_get64(buf + idx_off + 5 * 16);
            for (int k = 0; k < 40; k++) {
                blk5[k] ^= 0xff;
                REQUIRE(atomic_write_file(tmp("blkbad.tokens"), buf, len, &err) == CF_OK);
                REQUIRE(timeline_shard_open(&sh, tmp("blkbad.tokens"), &v, &err) == CF_OK);
                timeline_shard_read(&sh, 0, (size_t)N, gt, gv);
                CHECK(timeline_shard_verify(&sh, &err) == CF_EINPUT);
                timeline_shard_close(&sh);
                blk5[k] ^= 0xff;
            }
            CHECK_CONTAINS(err.msg, "INDEX and DATA");
            /* An index entry pointing past the data. */
            buf[idx_off + 3 * 16 + 6] ^= 0x40;
            REQUIRE(atomic_write_file(tmp("blkbad.tokens"), buf, len, &err) == CF_OK);
            REQUIRE(timeline_shard_open(&sh, tmp("blkbad.tokens"), &v, &err) == CF_OK);
            timeline_shard_read(&sh, 0, (size_t)N, gt, gv);
            CHECK_EQ_INT(gt[3 * 128], TIME_NULL);
            CHECK(timeline_shard_verify(&sh, &err) == CF_EINPUT);
            timeline_shard_close(&sh);
            buf[idx_off + 3 * 16 + 6] ^= 0x40;
            /* Data that checksums but does not decode (a writer's bug, not damage in transit):
             * an unknown time unit in block 2, the hashes made to match. */
            uint8_t save = buf[data_off + le_get64(buf + idx_off + 2 * 16)];
            buf[data_off + le_get64(buf + idx_off + 2 * 16)] = 9;
            uint8_t two[64];
            crypto_generichash(two, 32, buf + idx_off, n_blocks * 16, NULL, 0);
            crypto_generichash(two + 32, 32, buf + data_off, len - data_off, NULL, 0);
            uint8_t hdr[256];
            memcpy(hdr, buf, 256);
            crypto_generichash(buf + 184, 32, two, sizeof two, NULL, 0);
            crypto_generichash(buf + 224, 32, buf, 224, NULL, 0);
            REQUIRE(atomic_write_file(tmp("blkbad.tokens"), buf, len, &err) == CF_OK);
            REQUIRE(timeline_shard_open(&sh, tmp("blkbad.tokens"), &v, &err) == CF_OK);
            CHECK(timeline_shard_verify(&sh, &err) == CF_EINPUT);
            CHECK_CONTAINS(err.msg, "block 2 ");
            timeline_shard_close(&sh);
            memcpy(buf, hdr, 256);
            buf[data_off + le_get64(buf + idx_off + 2 * 16)] = save;
            /* A version-2 shard (flat times and values) is refused with what to do. */
            buf[8] = 2;
            REQUIRE(atomic_write_file(tmp("blkold.tokens"), buf, len, &err) == CF_OK);
            CHECK(timeline_shard_open(&sh, tmp("blkold.tokens"), &v, &err) == CF_EINPUT);
            CHECK_CONTAINS(err.msg, "version 2 is no longer read");
            CHECK_CONTAINS(err.msg, "--rebuild");
            buf[8] = TIMELINE_SHARD_VERSION + 1; /* a future version */
            REQUIRE(atomic_write_file(tmp("blkold.tokens"), buf, len, &err) == CF_OK);
            CHECK(timeline_shard_open(&sh, tmp("blkold.tokens"), &v, &err) == CF_EINPUT);
            CHECK_CONTAINS(err.msg, "this clinfm reads version");
            buf[8] = TIMELINE_SHARD_VERSION;
            /* Cut short: the header's size disagrees. */
            REQUIRE(atomic_write_file(tmp("blkbad.tokens"), buf, len - 3, &err) == CF_OK);
            CHECK(timeline_shard_open(&sh, tmp("blkbad.tokens"), &v, &err) == CF_EINPUT);
        }
        free(rt);
        free(gt);
        free(rv);
        free(gv);
        free(rf);
        free(sstart);
        timeline_seq_free(&q);
        timeline_encoder_free(e);
        vocab_free(&v);
    }
    store_close(&s);
}

/* ------------------------------------------------------------------ baselines */

static void test_ngram_baselines(void) {
    /* Each subject alternates A, B, A, B ... one minute apart (no gap tokens): after the first
     * stream token, the previous token decides the next, so a bigram is nearly perfect and a
     * unigram pays about ln 2 per token. */
    split_config sp;
    cf_err err = {0};
    split_config_default(&sp);
    REQUIRE(split_parse_fractions(&sp, "50/0/50", &err) == CF_OK);
    builder b;
    b_open(&b, tmp("ab.store"));
    int per_split[SPLIT_COUNT] = {0};
    for (int64_t id = 1; id <= 60; id++) {
        per_split[split_assign(&sp, id)]++;
        b_add(&b, id, TIME_NULL, "GENDER//F", NAN);
        for (int k = 0; k < 200; k++) b_add(&b, id, T(2020, 1, 1, 0, 0) + k * MIN_US, k % 2 ? "X//B" : "X//A", NAN);
    }
    REQUIRE(b_finish(&b) == 0);
    store s;
    REQUIRE(store_open(&s, tmp("ab.store"), &err) == CF_OK);
    vocab_options o;
    vocab_options_default(&o);
    vocab v;
    REQUIRE(vocab_build(&v, &s, &sp, &o, &err) == CF_OK);
    timeline_baseline bl;
    REQUIRE(timeline_ngram_baseline(&v, &s, &sp, &bl, &err) == CF_OK);
    CHECK_EQ_INT(bl.eval_subjects[SPLIT_TRAIN], per_split[SPLIT_TRAIN]);
    CHECK_EQ_INT(bl.eval_subjects[SPLIT_HELD_OUT], per_split[SPLIT_HELD_OUT]);
    CHECK_EQ_INT(bl.eval_subjects[SPLIT_TUNING], 0);
    CHECK(isnan(bl.unigram[SPLIT_TUNING]));
    /* 200 stream tokens + [EOT] per subject; each subject is prefix (3) + 201 tokens. */
    CHECK_EQ_INT(bl.eval_targets[SPLIT_HELD_OUT], 201 * per_split[SPLIT_HELD_OUT]);
    CHECK_EQ_INT(bl.tokens_median[SPLIT_HELD_OUT], 204);
    CHECK_NEAR(bl.unigram[SPLIT_HELD_OUT], 0.74, 0.08);
    CHECK(bl.bigram[SPLIT_HELD_OUT] < 0.15);
    CHECK(bl.bigram[SPLIT_HELD_OUT] < bl.unigram[SPLIT_HELD_OUT]);
    vocab_free(&v);
    store_close(&s);
}

/* timeline_prepare: the vocabulary it fits is vocab_build's, its shards hold every subject of
 * their split (prefix 3 + 200 stream tokens + [EOT] each) and its baselines are
 * timeline_ngram_baseline's. A second preparation with the same inputs reuses the record: no
 * shard is replaced (same inode), and the vocabulary and baselines read back are the ones
 * computed (bit for bit); a given vocabulary that is the fitted one reuses it too (a resume).
 * Other vocabulary options, or reuse off, prepare again. */
static void test_prepare(void) {
    split_config sp;
    cf_err err = {0};
    split_config_default(&sp);
    REQUIRE(split_parse_fractions(&sp, "50/20/30", &err) == CF_OK);
    builder b;
    b_open(&b, tmp("prep.store"));
    int per_split[SPLIT_COUNT] = {0};
    for (int64_t id = 1; id <= 40; id++) {
        per_split[split_assign(&sp, id)]++;
        b_add(&b, id, TIME_NULL, "GENDER//F", NAN);
        for (int k = 0; k < 200; k++) b_add(&b, id, T(2020, 1, 1, 0, 0) + k * MIN_US, k % 3 ? "X//B" : "X//A", NAN);
    }
    REQUIRE(b_finish(&b) == 0);
    store s;
    REQUIRE(store_open(&s, tmp("prep.store"), &err) == CF_OK);
    char vpath[4200], dir[4200];
    snprintf(vpath, sizeof vpath, "%s", tmp("prep.vocab"));
    snprintf(dir, sizeof dir, "%s", tmp("prep.shards"));
    unlink(tmp("prep.shards/prepared.json")); /* a folder left by an earlier run is not this run's */
    timeline_prepare_options po;
    timeline_prepare_options_default(&po);
    po.vocab_out = vpath;
    po.shard_dir = dir;
    po.baselines = 1;
    vocab v, ref;
    static timeline_prepared pr;
    REQUIRE(timeline_prepare(&v, &s, &sp, &po, &pr, &err) == CF_OK);
    CHECK_EQ_INT(pr.reused, 0);
    CHECK_EQ_STR(pr.note, "");
    REQUIRE(vocab_build(&ref, &s, &sp, &po.vo, &err) == CF_OK);
    CHECK(!memcmp(v.hash, ref.hash, VOCAB_HASH_BYTES));
    for (int p = 0; p < SPLIT_COUNT; p++) {
        CHECK_EQ_INT(pr.stats[p].subjects, per_split[p]);
        CHECK_EQ_INT(pr.stats[p].tokens, 204 * per_split[p]);
    }
    timeline_baseline bl;
    REQUIRE(timeline_ngram_baseline(&ref, &s, &sp, &bl, &err) == CF_OK);
    CHECK(!memcmp(&bl, &pr.base, sizeof bl));
    struct stat before, after;
    REQUIRE(stat(pr.shard_path[SPLIT_TRAIN], &before) == 0);
    vocab_free(&v);

    /* the same inputs: reused, nothing rewritten, the same figures */
    REQUIRE(timeline_prepare(&v, &s, &sp, &po, &pr, &err) == CF_OK);
    CHECK_EQ_INT(pr.reused, 1);
    CHECK(!memcmp(v.hash, ref.hash, VOCAB_HASH_BYTES));
    CHECK(!memcmp(&bl, &pr.base, sizeof bl));
    CHECK_EQ_INT(pr.stats[SPLIT_TRAIN].tokens, 204 * per_split[SPLIT_TRAIN]);
    REQUIRE(stat(pr.shard_path[SPLIT_TRAIN], &after) == 0);
    CHECK(after.st_ino == before.st_ino);
    vocab_free(&v);

    po.vocab_in = vpath; /* a resume: the saved vocabulary is the fitted one */
    po.vocab_out = NULL;
    REQUIRE(timeline_prepare(&v, &s, &sp, &po, &pr, &err) == CF_OK);
    CHECK_EQ_INT(pr.reused, 1);
    REQUIRE(stat(pr.shard_path[SPLIT_TRAIN], &after) == 0);
    CHECK(after.st_ino == before.st_ino);
    vocab_free(&v);

    /* A preparation whose shards are of an older format is rebuilt, not reused (a version-2
     * shard would be refused when opened). */
    {
        char rpath[4300];
        snprintf(rpath, sizeof rpath, "%s/%s", dir, TIMELINE_PREPARED_FILE);
        char *text = NULL;
        size_t tlen = 0;
        REQUIRE(file_read_all(rpath, 1 << 20, &text, &tlen, &err) == CF_OK);
        char *f = strstr(text, "\"shard_format\":");
        REQUIRE(f);
        f += strlen("\"shard_format\":");
        while (*f == ' ' || *f == '\t') f++;
        CHECK_EQ_INT(*f, '0' + TIMELINE_SHARD_VERSION);
        *f = '2';
        REQUIRE(atomic_write_file(rpath, text, tlen, &err) == CF_OK);
        free(text);
        REQUIRE(timeline_prepare(&v, &s, &sp, &po, &pr, &err) == CF_OK);
        CHECK_EQ_INT(pr.reused, 0);
        CHECK_CONTAINS(pr.note, "another token shard format");
        REQUIRE(stat(pr.shard_path[SPLIT_TRAIN], &after) == 0);
        CHECK(after.st_ino != before.st_ino);
        vocab_free(&v);
        REQUIRE(timeline_prepare(&v, &s, &sp, &po, &pr, &err) == CF_OK);
        CHECK_EQ_INT(pr.reused, 1); /* and the rebuilt one is reused */
        vocab_free(&v);
    }

    po.reuse = 0;
    REQUIRE(timeline_prepare(&v, &s, &sp, &po, &pr, &err) == CF_OK);
    CHECK_EQ_INT(pr.reused, 0);
    REQUIRE(stat(pr.shard_path[SPLIT_TRAIN], &after) == 0);
    CHECK(after.st_ino != before.st_ino); /* written again */
    vocab_free(&v);

    po.reuse = 1; /* fitted with other options: named, and prepared again */
    po.vocab_in = NULL;
    po.vo.min_count = 1000;
    REQUIRE(timeline_prepare(&v, &s, &sp, &po, &pr, &err) == CF_OK);
    CHECK_EQ_INT(pr.reused, 0);
    CHECK_CONTAINS(pr.note, "other vocabulary options");
    CHECK(memcmp(v.hash, ref.hash, VOCAB_HASH_BYTES) != 0);
    vocab_free(&v);
    vocab_free(&ref);
    store_close(&s);
}

int main(void) {
    RUN(test_split_proportions_and_determinism);
    RUN(test_split_key_file);
    RUN(test_gap_bins);
    RUN(test_age_bins);
    RUN(test_quantile_cuts);
    RUN(test_encode_by_hand);
    RUN(test_vocab_sees_train_only);
    RUN(test_max_vocab_and_min_count);
    RUN(test_determinism_and_file_round_trip);
    RUN(test_vocab_damage_detected);
    RUN(test_shards_and_windows);
    RUN(test_values_and_features);
    RUN(test_shard_blocks);
    RUN(test_ngram_baselines);
    RUN(test_prepare);
    return check_summary();
}
