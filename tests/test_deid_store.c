/* Store de-identification: pseudonyms, date policies, ages over 89, identifier events, ZIP3,
 * notes cleaned with the subject's own identifiers, k-anonymity and suppression, determinism,
 * key handling, and no identifier in the report. */
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "deid/store_deid.h"
#include "store/store.h"

static char dir[600], rules[900];

static int64_t T(const char *iso) {
    int64_t t;
    return time_parse_iso(iso, strlen(iso), &t, NULL) ? -1 : t;
}

typedef struct {
    int64_t subject;
    const char *time; /* NULL: static */
    const char *code;
    const char *text;
} ev;

static const ev events[] = {
    /* Subject 101: a 95-year-old with identifiers and a note that repeats them. */
    {101, NULL, "GENDER//F", NULL},
    {101, "1925-06-01", "MEDS_BIRTH", NULL},
    {101, NULL, "PHI//NAME", "Zelda Quixwort"},
    {101, NULL, "PHI//PHONE", "(617) 555-0143"},
    {101, NULL, "PHI//SSN", "999-12-3456"},
    {101, NULL, "PHI//ZIP", "02139"},
    {101, NULL, "PHI//STATE", "MA"},
    {101, NULL, "RACE//WHITE", NULL},
    {101, "2020-03-05T10:00:00", "HOSPITAL_ADMISSION//URGENT", NULL},
    {101, "2020-03-05T12:30:00", "NOTE//PROGRESS", "Mrs. Quixwort seen today. Call (617) 555-0143. SSN 999-12-3456. Next visit 2020-03-19."},
    {101, "2020-03-09T08:00:00", "HOSPITAL_DISCHARGE//HOME", NULL},
    /* Subject 202: restricted ZIP area, younger. */
    {202, NULL, "GENDER//M", NULL},
    {202, "1980-01-15", "MEDS_BIRTH", NULL},
    {202, NULL, "PHI//ZIP", "03601"},
    {202, NULL, "RACE//WHITE", NULL},
    {202, "2019-07-01T09:00:00", "HOSPITAL_ADMISSION//ELECTIVE", NULL},
    {202, "2019-07-03T09:00:00", "LAB//50912//mg/dL", "1.1"},
    /* Subjects 303..307: five alike (one k=5 group), to see suppression spare them. */
    {303, NULL, "GENDER//M", NULL}, {303, "1980-02-01", "MEDS_BIRTH", NULL}, {303, "2019-05-01", "VISIT", NULL},
    {304, NULL, "GENDER//M", NULL}, {304, "1981-02-01", "MEDS_BIRTH", NULL}, {304, "2019-05-02", "VISIT", NULL},
    {305, NULL, "GENDER//M", NULL}, {305, "1982-02-01", "MEDS_BIRTH", NULL}, {305, "2019-05-03", "VISIT", NULL},
    {306, NULL, "GENDER//M", NULL}, {306, "1983-02-01", "MEDS_BIRTH", NULL}, {306, "2019-05-04", "VISIT", NULL},
    {307, NULL, "GENDER//M", NULL}, {307, "1984-02-01", "MEDS_BIRTH", NULL}, {307, "2019-05-05", "VISIT", NULL},
};
#define N_EV (sizeof events / sizeof events[0])

static void make_store(const char *path) {
    store_writer *w;
    cf_err err = {0};
    if (store_writer_open(&w, path, NULL, &err)) return;
    store_writer_source(w, "test");
    for (size_t i = 0; i < N_EV; i++) {
        int64_t c = store_writer_code(w, events[i].code, strlen(events[i].code));
        const char *t = events[i].text;
        store_writer_add(w, events[i].subject, events[i].time ? T(events[i].time) : TIME_NULL, (uint32_t)c, NAN, t,
                         t ? strlen(t) : 0, 0, i + 1, &err);
    }
    store_writer_subject_key(w, 101, "patient-uuid-101", 16, &err);
    store_writer_finish(w, &err);
}

static int write_key(const char *path, const char *hex) {
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    fprintf(f, "clinfm-deid-key v1\n%s\n", hex);
    fclose(f);
    return 0;
}

static const char *KEY_A = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
static const char *KEY_B = "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100";

static int run_deid(const char *out, const char *keyhex, deid_date_policy dates, int suppress, deid_store_report *rep,
                    cf_err *err) {
    char in[900], keyp[900];
    snprintf(in, sizeof in, "%s/in.store", dir);
    snprintf(keyp, sizeof keyp, "%s/k.key", dir);
    write_key(keyp, keyhex);
    unsigned char key[DEID_KEY_BYTES];
    int rc = deid_key_load(keyp, key, err);
    if (rc) return rc;
    deid_store_options opt = {.dates = dates, .text_mode = DEID_MODE_TAG, .k = 5, .suppress = suppress, .rules_dir = rules};
    return deid_store(in, out, key, &opt, rep, err);
}

/* The events of the output subject whose GENDER and birth year match. */
static int64_t find_subject(const store *s, const char *code_needed) {
    int64_t c = store_find_code(s, code_needed);
    for (uint64_t k = 0; k < s->n_subjects; k++)
        for (uint64_t i = s->subject_start[k]; i < s->subject_start[k + 1]; i++)
            if ((int64_t)s->code[i] == c) return (int64_t)k;
    return -1;
}

static int64_t event_time(const store *s, uint64_t k, const char *code) {
    int64_t c = store_find_code(s, code);
    for (uint64_t i = s->subject_start[k]; i < s->subject_start[k + 1]; i++)
        if ((int64_t)s->code[i] == c) return s->time[i];
    return TIME_NULL;
}

static void test_shift_policy(void) {
    char out[900];
    snprintf(out, sizeof out, "%s/shift.store", dir);
    deid_store_report rep;
    cf_err err = {0};
    int rc = run_deid(out, KEY_A, DEID_DATES_SHIFT, 0, &rep, &err);
    if (rc) fprintf(stderr, "%s\n", err.msg);
    REQUIRE(rc == CF_OK);
    store s;
    REQUIRE(store_open(&s, out, &err) == CF_OK);
    CHECK(s.flags & STORE_FLAG_DEIDENTIFIED);
    CHECK(s.flags & STORE_FLAG_DATES_SHIFTED);
    CHECK_EQ_INT(s.n_subjects, 7);
    /* No original ids, no original identifiers, no source rows. */
    for (uint64_t k = 0; k < s.n_subjects; k++) CHECK(s.subject_id[k] > 1000);
    CHECK(s.subject_key_offset == NULL);
    for (uint64_t i = 0; i < s.n_events; i++) CHECK_EQ_INT(store_prov_row(s.prov[i]), 0);
    CHECK(store_find_code(&s, "PHI//NAME") < 0 && store_find_code(&s, "PHI//SSN") < 0);
    CHECK(store_find_code(&s, "ZIP3//021") >= 0);
    CHECK(store_find_code(&s, "ZIP3//000") >= 0); /* 036 is a restricted area */
    CHECK(store_find_code(&s, "STATE//MA") >= 0);
    int64_t k = find_subject(&s, "HOSPITAL_ADMISSION//URGENT");
    REQUIRE(k >= 0);
    int64_t adm = event_time(&s, (uint64_t)k, "HOSPITAL_ADMISSION//URGENT");
    int64_t dis = event_time(&s, (uint64_t)k, "HOSPITAL_DISCHARGE//HOME");
    int64_t note = event_time(&s, (uint64_t)k, "NOTE//PROGRESS");
    /* Intervals kept exactly; the shift is a whole, non-zero number of weeks. */
    CHECK_EQ_INT(dis - adm, T("2020-03-09T08:00:00") - T("2020-03-05T10:00:00"));
    CHECK_EQ_INT(note - adm, T("2020-03-05T12:30:00") - T("2020-03-05T10:00:00"));
    int64_t shift = adm - T("2020-03-05T10:00:00");
    CHECK(shift != 0 && shift % (7 * USEC_PER_DAY) == 0 && llabs(shift) <= 364 * USEC_PER_DAY);
    /* Age over 89 aggregated: birth moved so the age at the last event is 90. */
    int64_t birth = event_time(&s, (uint64_t)k, "MEDS_BIRTH");
    double age = (double)(dis - birth) / (365.2425 * 86400e6);
    CHECK_NEAR(age, 90.0, 0.01);
    CHECK_EQ_INT(rep.births_capped, 1);
    /* The note: identifiers gone, the follow-up date shifted by the same number of days. */
    int64_t nc = store_find_code(&s, "NOTE//PROGRESS");
    const char *txt = NULL;
    size_t len = 0;
    for (uint64_t i = s.subject_start[k]; i < s.subject_start[k + 1]; i++)
        if ((int64_t)s.code[i] == nc && s.text[i]) txt = store_text_str(&s, s.text[i], &len);
    REQUIRE(txt);
    char note_text[512];
    snprintf(note_text, sizeof note_text, "%.*s", (int)len, txt);
    CHECK(!strstr(note_text, "Quixwort"));
    CHECK(!strstr(note_text, "555-0143"));
    CHECK(!strstr(note_text, "3456"));
    CHECK(!strstr(note_text, "2020-03-19"));
    int64_t sd = shift / USEC_PER_DAY;
    int64_t y;
    unsigned m, d;
    civil_from_days(days_from_civil(2020, 3, 19) + sd, &y, &m, &d);
    char shifted[16];
    snprintf(shifted, sizeof shifted, "%04lld-%02u-%02u", (long long)y, m, d);
    CHECK_CONTAINS(note_text, shifted);
    /* Lab text values survive. */
    int64_t lab = find_subject(&s, "LAB//50912//mg/dL");
    CHECK(lab >= 0 && lab != k);
    /* The report: counts, never values. */
    char *js = deid_store_report_json(&rep, &(deid_store_options){.k = 5});
    CHECK(js && !strstr(js, "Quixwort") && !strstr(js, "555") && !strstr(js, "02139"));
    CHECK_EQ_INT(rep.subject_keys_removed, 1);
    CHECK(rep.identifier_events_removed >= 3);
    free(js);
    store_close(&s);
}

static void test_determinism_and_keys(void) {
    char a[900], b[900], c[900];
    snprintf(a, sizeof a, "%s/a.store", dir);
    snprintf(b, sizeof b, "%s/b.store", dir);
    snprintf(c, sizeof c, "%s/c.store", dir);
    deid_store_report rep;
    cf_err err = {0};
    REQUIRE(run_deid(a, KEY_A, DEID_DATES_SHIFT, 0, &rep, &err) == CF_OK);
    REQUIRE(run_deid(b, KEY_A, DEID_DATES_SHIFT, 0, &rep, &err) == CF_OK);
    REQUIRE(run_deid(c, KEY_B, DEID_DATES_SHIFT, 0, &rep, &err) == CF_OK);
    char cmd[3000];
    snprintf(cmd, sizeof cmd, "cmp -s %s %s", a, b);
    CHECK(system(cmd) == 0); /* same key: same bytes */
    store sa, sc;
    REQUIRE(store_open(&sa, a, &err) == CF_OK);
    REQUIRE(store_open(&sc, c, &err) == CF_OK);
    int same = 0;
    for (uint64_t i = 0; i < sa.n_subjects; i++)
        for (uint64_t j = 0; j < sc.n_subjects; j++) same += sa.subject_id[i] == sc.subject_id[j];
    CHECK_EQ_INT(same, 0); /* another key: unlinkable pseudonyms */
    store_close(&sa);
    store_close(&sc);
    /* Key files: missing, malformed. A de-identified store is not de-identified again. */
    unsigned char key[DEID_KEY_BYTES];
    char kp[900];
    snprintf(kp, sizeof kp, "%s/none.key", dir);
    CHECK(deid_key_load(kp, key, &err) == CF_EINPUT);
    CHECK_CONTAINS(err.msg, "clinfm keygen");
    snprintf(kp, sizeof kp, "%s/bad.key", dir);
    write_key(kp, "1234");
    CHECK(deid_key_load(kp, key, &err) == CF_EINPUT);
    CHECK_CONTAINS(err.msg, "not a clinfm key file");
    CHECK(!strstr(err.msg, "1234"));
    snprintf(kp, sizeof kp, "%s/gen.key", dir);
    CHECK(deid_key_generate(kp, &err) == CF_OK);
    struct stat st;
    CHECK(stat(kp, &st) == 0 && (st.st_mode & 077) == 0);
    CHECK(deid_key_load(kp, key, &err) == CF_OK);
    CHECK(deid_key_generate(kp, &err) == CF_EINPUT); /* never overwrites */
    deid_store_options opt = {.rules_dir = rules};
    char again[900];
    snprintf(again, sizeof again, "%s/again.store", dir);
    CHECK(deid_store(a, again, key, &opt, &rep, &err) == CF_EINPUT);
    CHECK_CONTAINS(err.msg, "already de-identified");
    CHECK(access(again, F_OK) != 0);
}

static void test_safe_harbor_and_suppression(void) {
    char out[900];
    snprintf(out, sizeof out, "%s/sh.store", dir);
    deid_store_report rep;
    cf_err err = {0};
    REQUIRE(run_deid(out, KEY_A, DEID_DATES_YEAR, 1, &rep, &err) == CF_OK);
    store s;
    REQUIRE(store_open(&s, out, &err) == CF_OK);
    CHECK(s.flags & STORE_FLAG_DATES_YEAR);
    int not_jan1 = 0;
    for (uint64_t i = 0; i < s.n_events; i++) {
        if (s.time[i] == TIME_NULL) continue;
        char buf[40];
        time_format_iso(s.time[i], buf, sizeof buf);
        not_jan1 += strcmp(buf + 4, "-01-01T00:00:00") != 0;
    }
    CHECK_EQ_INT(not_jan1, 0);
    /* Groups: 101 and 202 are alone; 303-307 share sex, no ZIP, no race, first-visit year 2019,
     * and age band 30-39. k = 5: the two singletons are suppressed, the five kept. */
    CHECK_EQ_INT(rep.kanon_subjects_below_k, 2);
    CHECK_EQ_INT(rep.subjects_suppressed, 2);
    CHECK_EQ_INT(s.n_subjects, 5);
    CHECK_EQ_INT(rep.kanon_hist[0], 2);
    CHECK_EQ_INT(rep.kanon_hist[4], 5);
    store_close(&s);
}

int main(void) {
    snprintf(dir, sizeof dir, "%s", check_tmpdir());
    snprintf(rules, sizeof rules, "%s/data/deid", check_root());
    char in[900];
    snprintf(in, sizeof in, "%s/in.store", dir);
    make_store(in);
    RUN(test_shift_policy);
    RUN(test_determinism_and_keys);
    RUN(test_safe_harbor_and_suppression);
    return check_summary();
}
