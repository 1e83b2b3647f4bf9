/* Splits that survive de-identification, and record prints that find a patient again.
 *
 * A store of 300 fictional subjects is de-identified twice with two de-identification keys and
 * one split key (clinfm deid --split-key): every original subject is found again in both copies
 * by its record print, and lies on the same side of the split in the original store and in both
 * copies, for several whole-percent fractions. Without --split-key (pseudonyms as before) the
 * same re-keying moves patients (so the check has teeth). Also: the percentile is what split_assign decides on, the
 * record print ignores identifier events, birth dates and the order of events at one time, and
 * short records get no print. */
#include "check.h"
#include "deid/store_deid.h"
#include "store/store.h"
#include "timeline/split.h"

#define N_SUBJ 300

static char dir[600], rules[900];

static uint64_t mix(uint64_t x) {
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

/* Subject i: a birth, a name, and 10-30 visits with labs at pseudo-random times. */
static int make_store(const char *path) {
    store_writer *w;
    cf_err err = {0};
    if (store_writer_open(&w, path, NULL, &err)) return -1;
    store_writer_source(w, "test");
    const char *codes[] = {"VISIT", "LAB//A", "LAB//B", "DIAGNOSIS//X", "MEDS_BIRTH", "PHI//NAME", "GENDER//F"};
    int64_t cid[7];
    for (int k = 0; k < 7; k++) cid[k] = store_writer_code(w, codes[k], strlen(codes[k]));
    uint64_t row = 1;
    for (int i = 0; i < N_SUBJ; i++) {
        int64_t id = 1000 + 7 * i;
        uint64_t r = mix((uint64_t)i);
        int64_t t = (int64_t)(1.5e15 + (double)(r % 1000000) * 1e9);
        store_writer_add(w, id, TIME_NULL, (uint32_t)cid[6], NAN, NULL, 0, 0, row++, &err);
        store_writer_add(w, id, TIME_NULL, (uint32_t)cid[5], NAN, "Fictional Name", 14, 0, row++, &err);
        store_writer_add(w, id, t - (int64_t)4e14, (uint32_t)cid[4], NAN, NULL, 0, 0, row++, &err);
        int visits = 10 + (int)(r % 21);
        for (int v = 0; v < visits; v++) {
            r = mix(r);
            t += (int64_t)(r % 100000) * 1000000 + 3600000000LL;
            store_writer_add(w, id, t, (uint32_t)cid[0], NAN, NULL, 0, 0, row++, &err);
            store_writer_add(w, id, t, (uint32_t)cid[1 + (r >> 20) % 3], (float)(r % 97), NULL, 0, 0, row++, &err);
        }
    }
    return store_writer_finish(w, &err) ? -1 : 0;
}

static int group_of(const void *ctx, int64_t id) { return split_percentile(ctx, id); }

static int run_deid(const char *out, const char *keyhex, const split_config *keep, cf_err *err) {
    char in[900], keyp[900];
    snprintf(in, sizeof in, "%s/split_in.store", dir);
    snprintf(keyp, sizeof keyp, "%s/split_deid.key", dir);
    FILE *f = fopen(keyp, "w");
    if (!f) return -1;
    fprintf(f, "clinfm-deid-key v1\n%s\n", keyhex);
    fclose(f);
    unsigned char key[DEID_KEY_BYTES];
    int rc = deid_key_load(keyp, key, err);
    if (rc) return rc;
    deid_store_options opt = {.dates = DEID_DATES_SHIFT, .text_mode = DEID_MODE_TAG, .k = 5, .rules_dir = rules};
    if (keep) {
        opt.split_group = group_of;
        opt.split_ctx = keep;
    }
    deid_store_report rep;
    return deid_store(in, out, key, &opt, &rep, err);
}

static const char *KEY_A = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
static const char *KEY_B = "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100";

static void split_key(split_config *c, const char *fractions) {
    split_config_default(c);
    for (int i = 0; i < SPLIT_KEY_BYTES; i++) c->key[i] = (uint8_t)(37 * i + 11);
    c->default_key = 0;
    cf_err err = {0};
    if (split_parse_fractions(c, fractions, &err)) fprintf(stderr, "%s\n", err.msg);
}

/* For each subject of a, the index of the subject of b with the same record print (-1: none). */
static void match_prints(const store *a, const store *b, const split_config *c, int64_t *map) {
    split_printer pa, pb;
    cf_err err = {0};
    split_printer_init(&pa, a, &err);
    split_printer_init(&pb, b, &err);
    for (uint64_t i = 0; i < a->n_subjects; i++) {
        map[i] = -1;
        uint64_t ha, hb;
        if (!split_record_hash(&pa, c, i, &ha)) continue;
        for (uint64_t j = 0; j < b->n_subjects; j++)
            if (split_record_hash(&pb, c, j, &hb) && hb == ha) {
                map[i] = (int64_t)j;
                break;
            }
    }
    split_printer_free(&pa);
    split_printer_free(&pb);
}

static void test_percentile_decides(void) {
    split_config c;
    split_key(&c, "50/20/30");
    for (int64_t id = 1; id < 5000; id += 3) {
        uint32_t b = split_bucket(&c, id);
        int want = b < 500000 ? SPLIT_TRAIN : b < 700000 ? SPLIT_TUNING : SPLIT_HELD_OUT;
        CHECK_EQ_INT(split_assign(&c, id), want);
        int p = split_percentile(&c, id);
        CHECK_EQ_INT(split_assign(&c, id), p < 50 ? SPLIT_TRAIN : p < 70 ? SPLIT_TUNING : SPLIT_HELD_OUT);
    }
    CHECK(split_whole_percent(&c));
    split_config d;
    split_key(&d, "33.5/33.5/33");
    CHECK(!split_whole_percent(&d));
    /* the subject hash is keyed and unrelated to the bucket */
    CHECK(split_subject_hash(&c, 42) != split_subject_hash(&c, 43));
    split_config e;
    split_config_default(&e);
    CHECK(split_subject_hash(&c, 42) != split_subject_hash(&e, 42));
}

/* Cross-validation folds: fold j holds out percentiles [20j, 20j+20), takes tuning from the
 * ten just below (cyclically) and trains on the rest; the five held-out folds partition the
 * subjects. Worked out from the percentile alone, independently of the rotation. */
static void test_folds(void) {
    cf_err err = {0};
    for (int64_t id = 1; id < 3000; id += 7) {
        int held = 0;
        for (int j = 0; j < 5; j++) {
            split_config c;
            split_key(&c, "80/10/10");
            REQUIRE(split_set_fold(&c, j, 5, &err) == CF_OK);
            CHECK_EQ_INT(c.train_ppm, 700000);
            CHECK_EQ_INT(c.tuning_ppm, 100000);
            int p = split_percentile(&c, id), want;
            if (p >= 20 * j && p < 20 * j + 20) want = SPLIT_HELD_OUT;
            else if ((p - (20 * j - 10) + 100) % 100 < 10) want = SPLIT_TUNING;
            else want = SPLIT_TRAIN;
            CHECK_EQ_INT(split_assign(&c, id), want);
            held += want == SPLIT_HELD_OUT;
        }
        CHECK_EQ_INT(held, 1);
    }
    split_config c;
    split_key(&c, "80/10/10");
    CHECK(split_parse_fold(&c, "2/5", &err) == CF_OK && c.fold == 2 && c.folds == 5 && c.rotate_ppm == 400000);
    CHECK(split_parse_fold(&c, "3/7", &err) == CF_EINPUT); /* 7 does not divide 100 */
    CHECK(split_parse_fold(&c, "5/5", &err) == CF_EINPUT);
    CHECK(split_parse_fold(&c, "x", &err) == CF_EINPUT);
    CHECK_CONTAINS(err.msg, "J/K");
    split_key(&c, "10/85/5");
    CHECK(split_parse_fold(&c, "0/5", &err) == CF_EINPUT); /* tuning and a fold leave no train */
    CHECK_CONTAINS(err.msg, "nothing to train on");
}

static void test_rekeying_keeps_the_split(void) {
    char in[900], a[900], b[900];
    snprintf(in, sizeof in, "%s/split_in.store", dir);
    snprintf(a, sizeof a, "%s/split_a.store", dir);
    snprintf(b, sizeof b, "%s/split_b.store", dir);
    REQUIRE(make_store(in) == 0);
    split_config keep;
    split_key(&keep, "80/10/10");
    cf_err err = {0};
    REQUIRE(run_deid(a, KEY_A, &keep, &err) == CF_OK);
    REQUIRE(run_deid(b, KEY_B, &keep, &err) == CF_OK);
    store s0, sa, sb;
    REQUIRE(store_open(&s0, in, &err) == CF_OK);
    REQUIRE(store_open(&sa, a, &err) == CF_OK);
    REQUIRE(store_open(&sb, b, &err) == CF_OK);
    REQUIRE_EQ_INT(s0.n_subjects, N_SUBJ);
    int64_t ma[N_SUBJ], mb[N_SUBJ];
    match_prints(&s0, &sa, &keep, ma);
    match_prints(&s0, &sb, &keep, mb);
    /* without --split-key a subject's pseudonym is its first candidate (deid_pseudonym) */
    unsigned char kb[DEID_KEY_BYTES], sub[DEID_KEY_BYTES];
    for (int i = 0; i < DEID_KEY_BYTES; i++) {
        unsigned hi, lo;
        sscanf(KEY_B + 2 * i, "%1x%1x", &hi, &lo);
        kb[i] = (unsigned char)(hi << 4 | lo);
    }
    deid_subkey(kb, DEID_SUBKEY_PSEUDONYM, sub);
    static const char *const fractions[] = {"80/10/10", "50/20/30", "70/15/15", "34/33/33"};
    int found = 0, moved_without = 0;
    for (size_t f = 0; f < sizeof fractions / sizeof fractions[0]; f++) {
        split_config c = keep;
        split_parse_fractions(&c, fractions[f], &err);
        for (uint64_t i = 0; i < N_SUBJ; i++) {
            if (ma[i] < 0 || mb[i] < 0) continue;
            if (!f) found++;
            int orig = split_assign(&c, s0.subject_id[i]);
            int in_a = split_assign(&c, sa.subject_id[ma[i]]), in_b = split_assign(&c, sb.subject_id[mb[i]]);
            if (in_a != orig || in_b != orig)
                CHECK_FAIL_("%s: subject %lld is %s in the original, %s and %s after de-identification", fractions[f],
                            (long long)s0.subject_id[i], split_name(orig), split_name(in_a), split_name(in_b));
            if (split_assign(&c, deid_pseudonym(sub, s0.subject_id[i])) != orig) moved_without++;
            /* two keys, two pseudonyms */
            CHECK(sa.subject_id[ma[i]] != sb.subject_id[mb[i]]);
        }
    }
    /* every subject is found again by its print: pseudonyms, date shifts and dropped names aside */
    CHECK_EQ_INT(found, N_SUBJ);
    /* without --split-key, re-keying moves patients across the split */
    CHECK(moved_without > N_SUBJ / 10);
    store_close(&s0);
    store_close(&sa);
    store_close(&sb);
}

static void test_record_print(void) {
    char path[900];
    snprintf(path, sizeof path, "%s/print.store", dir);
    store_writer *w;
    cf_err err = {0};
    REQUIRE(store_writer_open(&w, path, NULL, &err) == CF_OK);
    store_writer_source(w, "test");
    int64_t v = store_writer_code(w, "VISIT", 5), l = store_writer_code(w, "LAB//A", 6);
    int64_t phi = store_writer_code(w, "PHI//NAME", 9), birth = store_writer_code(w, "MEDS_BIRTH", 10);
    uint64_t row = 1;
    /* subjects 1 and 2: the same record, with events of one time in opposite orders, another
     * name and another birth date, and 1's times shifted by a week */
    for (int s = 1; s <= 2; s++) {
        int64_t shift = s == 1 ? 7 * USEC_PER_DAY : 0;
        store_writer_add(w, s, (int64_t)1e15 + s * USEC_PER_DAY, (uint32_t)birth, NAN, NULL, 0, 0, row++, &err);
        store_writer_add(w, s, (int64_t)1.6e15 + shift, (uint32_t)phi, NAN, "x", 1, 0, row++, &err);
        for (int k = 0; k < 6; k++) {
            int64_t t = (int64_t)1.6e15 + shift + k * 86400000000LL;
            if (s == 1) {
                store_writer_add(w, s, t, (uint32_t)v, NAN, NULL, 0, 0, row++, &err);
                store_writer_add(w, s, t, (uint32_t)l, (float)k, NULL, 0, 0, row++, &err);
            } else {
                store_writer_add(w, s, t, (uint32_t)l, (float)k, NULL, 0, 0, row++, &err);
                store_writer_add(w, s, t, (uint32_t)v, NAN, NULL, 0, 0, row++, &err);
            }
        }
    }
    /* subject 3: one value differs; subject 4: too short (two times) */
    for (int k = 0; k < 6; k++) {
        int64_t t = (int64_t)1.6e15 + k * 86400000000LL;
        store_writer_add(w, 3, t, (uint32_t)v, NAN, NULL, 0, 0, row++, &err);
        store_writer_add(w, 3, t, (uint32_t)l, (float)(k == 5 ? 9 : k), NULL, 0, 0, row++, &err);
        store_writer_add(w, 4, (int64_t)1.6e15 + (k % 2) * 1000000, (uint32_t)v, NAN, NULL, 0, 0, row++, &err);
        store_writer_add(w, 4, (int64_t)1.6e15 + (k % 2) * 1000000, (uint32_t)l, (float)k, NULL, 0, 0, row++, &err);
    }
    REQUIRE(store_writer_finish(w, &err) == CF_OK);
    store s;
    REQUIRE(store_open(&s, path, &err) == CF_OK);
    split_printer p;
    REQUIRE(split_printer_init(&p, &s, &err) == CF_OK);
    split_config c, d;
    split_key(&c, "80/10/10");
    split_config_default(&d);
    uint64_t h[4];
    int ok[4];
    for (int i = 0; i < 4; i++) ok[i] = split_record_hash(&p, &c, (uint64_t)store_find_subject(&s, i + 1), &h[i]);
    CHECK(ok[0] && ok[1] && ok[2]);
    CHECK(!ok[3]);
    CHECK(h[0] == h[1]);
    CHECK(h[0] != h[2]);
    uint64_t hd;
    CHECK(split_record_hash(&p, &d, (uint64_t)store_find_subject(&s, 1), &hd));
    CHECK(hd != h[0]); /* keyed */
    split_printer_free(&p);
    store_close(&s);
}

int main(void) {
    snprintf(dir, sizeof dir, "%s", check_tmpdir());
    snprintf(rules, sizeof rules, "%s/data/deid", check_root());
    RUN(test_percentile_decides);
    RUN(test_folds);
    RUN(test_record_print);
    RUN(test_rekeying_keeps_the_split);
    return check_summary();
}
