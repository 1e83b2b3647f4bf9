/* Task files and labels: the parser accepts the shipped tasks and names file:line in every
 * error; labels on small hand-built stores match labels worked out by hand (mortality,
 * readmission, length of stay, record pairing, new-onset with spacing, follow-up to death or
 * the data's end with competing deaths kept, a lookback of complete record, the older censor
 * rule, date-shifted stores, age rules, the gap, selection); nothing after the prediction time
 * reaches a row's input. */
#include <unistd.h>

#include "check.h"
#include "deid/key.h"
#include "eval/eval.h"
#include "store/store.h"
#include "tasks/task.h"
#include "timeline/split.h"
#include "util/timeutil.h"

#define H (INT64_C(3600) * USEC_PER_SEC)
#define D USEC_PER_DAY

typedef struct {
    int64_t subject, time;
    const char *code;
    float num;
    uint64_t row; /* provenance row: events of one admission record share it */
} ev;

static int64_t at(int y, unsigned m, unsigned d, int hh) {
    return days_from_civil(y, m, d) * D + hh * H;
}

static int build_store(const char *path, const ev *e, size_t n) {
    store_writer *w;
    cf_err err = {0};
    if (store_writer_open(&w, path, NULL, &err)) {
        fprintf(stderr, "store open: %s\n", err.msg);
        return -1;
    }
    int src = store_writer_source(w, "test");
    if (src < 0) return -1;
    for (size_t i = 0; i < n; i++) {
        int64_t c = store_writer_code(w, e[i].code, strlen(e[i].code));
        if (c < 0 || store_writer_add(w, e[i].subject, e[i].time, (uint32_t)c, e[i].num, NULL, 0, (uint32_t)src,
                                      e[i].row, &err)) {
            fprintf(stderr, "store add: %s\n", err.msg);
            store_writer_abort(w);
            return -1;
        }
    }
    if (store_writer_finish(w, &err)) {
        fprintf(stderr, "store: %s\n", err.msg);
        return -1;
    }
    return 0;
}

static char *tmp_path(const char *name) {
    static char buf[8][512];
    static int k;
    char *p = buf[k++ % 8];
    snprintf(p, 512, "%s/%s", check_tmpdir(), name);
    return p;
}

static char *task_file(const char *name) {
    static char buf[512];
    snprintf(buf, sizeof buf, "%s/tasks/%s", check_root(), name);
    return buf;
}

/* The row of subject sid with prediction time pt, or NULL. */
static const label_row *find_row(const task_labels *l, int64_t sid, int64_t pt) {
    for (size_t i = 0; i < l->n; i++)
        if (l->rows[i].subject_id == sid && l->rows[i].prediction_time == pt) return &l->rows[i];
    return NULL;
}
static size_t rows_of(const task_labels *l, int64_t sid) {
    size_t k = 0;
    for (size_t i = 0; i < l->n; i++) k += l->rows[i].subject_id == sid;
    return k;
}
static uint64_t excluded(const task_labels *l, const char *reason_prefix) {
    for (size_t i = 0; i < l->n_excluded; i++)
        if (!strncmp(l->excluded[i].reason, reason_prefix, strlen(reason_prefix))) return l->excluded[i].count;
    return UINT64_MAX;
}

/* Labels store_path with the task t, already loaded (freed here on failure), with seed. */
static int label_loaded(task_def *t, const char *store_path, uint64_t seed, task_labels *l, store *s) {
    cf_err err = {0};
    if (store_open(s, store_path, &err)) {
        task_free(t);
        return -1;
    }
    task_label_options o = {.seed = seed};
    split_config_default(&o.split);
    if (task_label(t, s, &o, l, &err)) {
        fprintf(stderr, "label: %s\n", err.msg);
        store_close(s);
        task_free(t);
        return -1;
    }
    return 0;
}

/* Labels store_path (NULL: making the store failed) with the shipped task file task_name. */
static int label_file(const char *task_name, const char *store_path, task_labels *l, store *s, task_def *t) {
    cf_err err = {0};
    if (!store_path) return -1;
    if (task_load(t, task_file(task_name), &err)) {
        fprintf(stderr, "task: %s\n", err.msg);
        return -1;
    }
    return label_loaded(t, store_path, 1, l, s);
}
static void unlabel(task_labels *l, store *s, task_def *t) {
    task_labels_free(l);
    store_close(s);
    task_free(t);
}

/* ---------------------------------------------------------------- a MIMIC-like store */

#define T0 (INT64_C(18262) * D + 10 * H) /* 2020-01-01T10:00Z; checked in test_mortality */
static const ev mimic_events[] = {
    /* 1: two stays; the second starts 15 days after the first ends; race recorded anew */
    {1, TIME_NULL, "GENDER//F", NAN, 1},
    {1, 0, "MEDS_BIRTH", NAN, 1}, /* time set in make_mimic: 1950-01-01 */
    {1, T0, "HOSPITAL_ADMISSION//EW EMER.//EMERGENCY ROOM", NAN, 1},
    {1, T0, "INSURANCE//Medicare", NAN, 1},
    {1, T0, "RACE//WHITE", NAN, 1},
    {1, T0 + 2 * H, "LAB//50912//mg/dL", 1.5f, 100},
    {1, T0 + 30 * H, "LAB//50912//mg/dL", 2.5f, 101},
    {1, T0 + 5 * D, "HOSPITAL_DISCHARGE//HOME", NAN, 1},
    {1, T0 + 20 * D, "HOSPITAL_ADMISSION//URGENT//TRANSFER", NAN, 2},
    {1, T0 + 20 * D, "INSURANCE//Medicare", NAN, 2},
    {1, T0 + 20 * D, "RACE//BLACK/AFRICAN AMERICAN", NAN, 2},
    {1, T0 + 30 * D, "HOSPITAL_DISCHARGE//HOME", NAN, 2},
    /* 2: dies on day 3 */
    {2, TIME_NULL, "GENDER//M", NAN, 3},
    {2, T0, "HOSPITAL_ADMISSION//EW EMER.//EMERGENCY ROOM", NAN, 3},
    {2, T0 + 3 * D, "HOSPITAL_DEATH", NAN, 3},
    {2, T0 + 3 * D, "HOSPITAL_DISCHARGE//DIED", NAN, 3},
    /* 3: dies at 20:00 the day after admission; the date of death (midnight) precedes the
     * prediction time (+24 h = 10:00 that day) */
    {3, T0, "HOSPITAL_ADMISSION//EW EMER.//EMERGENCY ROOM", NAN, 4},
    {3, T0 + 14 * H, "MEDS_DEATH", NAN, 5}, /* 2020-01-02T00:00 */
    {3, T0 + 34 * H, "HOSPITAL_DEATH", NAN, 4},
    {3, T0 + 34 * H, "HOSPITAL_DISCHARGE//DIED", NAN, 4},
    /* 4: discharged after 10 hours */
    {4, T0, "HOSPITAL_ADMISSION//ELECTIVE//PHYSICIAN REFERRAL", NAN, 6},
    {4, T0 + 10 * H, "HOSPITAL_DISCHARGE//HOME", NAN, 6},
    /* 5: an admission without a discharge */
    {5, T0, "HOSPITAL_ADMISSION//ELECTIVE//PHYSICIAN REFERRAL", NAN, 7},
    {5, T0 + 3 * D, "LAB//50912//mg/dL", 1.0f, 102},
    /* 6: stay A (row 10) encloses stay B (row 11): pairing by record gives A 8 days */
    {6, T0, "HOSPITAL_ADMISSION//URGENT//TRANSFER", NAN, 10},
    {6, T0 + 1 * D, "HOSPITAL_ADMISSION//URGENT//TRANSFER", NAN, 11},
    {6, T0 + 2 * D, "HOSPITAL_DISCHARGE//HOME", NAN, 11},
    {6, T0 + 8 * D, "HOSPITAL_DISCHARGE//HOME", NAN, 10},
    /* 7: died 12 hours after admission */
    {7, T0, "HOSPITAL_ADMISSION//EW EMER.//EMERGENCY ROOM", NAN, 12},
    {7, T0 + 12 * H, "HOSPITAL_DEATH", NAN, 12},
    {7, T0 + 40 * H, "HOSPITAL_DISCHARGE//DIED", NAN, 12},
};
#define N_MIMIC (sizeof mimic_events / sizeof mimic_events[0])

static const char *make_mimic(void) {
    static char path[512];
    snprintf(path, sizeof path, "%s/mimic_like.store", check_tmpdir());
    if (access(path, F_OK) == 0) return path;
    ev e[N_MIMIC];
    memcpy(e, mimic_events, sizeof e);
    e[1].time = at(1950, 1, 1, 0);
    return build_store(path, e, N_MIMIC) ? NULL : path;
}

static void test_shipped_tasks_parse(void) {
    const char *names[] = {"in_hospital_mortality.task", "readmission_30d.task", "icu_admission.task",
                           "long_stay_7d.task", "new_onset_t2d.task", "new_onset_hypertension.task",
                           "new_onset_ckd.task", "new_onset_heart_failure.task"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        task_def t;
        cf_err err = {0};
        int rc = task_load(&t, task_file(names[i]), &err);
        if (rc) fprintf(stderr, "%s: %s\n", names[i], err.msg);
        REQUIRE(rc == CF_OK);
        CHECK(t.title && t.description && t.population && t.outcome);
        CHECK(t.n_subgroups >= 3);
        task_free(&t);
    }
    task_def t;
    cf_err err = {0};
    REQUIRE(task_load(&t, task_file("in_hospital_mortality.task"), &err) == CF_OK);
    CHECK_EQ_STR(t.name, "in_hospital_mortality");
    CHECK_EQ_INT(t.prediction.anchor, TASK_T_TRIGGER);
    CHECK_EQ_INT(t.prediction.offset, 24 * H);
    CHECK_EQ_INT(t.n_exclude, 2);
    CHECK_EQ_INT(t.exclude[0].kind, TASK_C_TIME_CMP);
    CHECK_EQ_INT(t.exclude[1].kind, TASK_C_ANY);
    CHECK_EQ_INT(t.exclude[1].from.anchor, TASK_T_NEG_INF);
    CHECK(t.exclude[1].to_closed && !t.exclude[1].from_closed);
    CHECK_EQ_INT(t.label.kind, TASK_C_ANY);
    CHECK_EQ_STR(t.sets[t.label.set].name, "death");
    CHECK_EQ_INT(t.episode_pair, TASK_PAIR_RECORD);
    CHECK_EQ_INT(t.n_never_input, 1);
    char buf[64];
    CHECK_EQ_STR(task_time_str(&t.prediction, buf, sizeof buf), "trigger + 24h");
    task_free(&t);
}

static void expect_parse_error(const char *text, const char *want) {
    task_def t;
    cf_err err = {0};
    int rc = task_parse(&t, "x.task", text, strlen(text), &err);
    CHECK_EQ_INT(rc, CF_EINPUT);
    CHECK_CONTAINS(err.msg, want);
    if (!rc) task_free(&t);
}

#define MINI_HEAD "[task]\nname = t\n[codes a]\nprefix = A//\n[trigger]\ncodes = a\n"
static void test_parse_errors(void) {
    expect_parse_error(MINI_HEAD "[label]\nwhen = any a in (prediction, prediction + 30d]\nfoo = 1\n",
                       "x.task:9: unknown key 'foo'");
    expect_parse_error(MINI_HEAD "[label]\nwhen = any b in (prediction, prediction + 30d]\n", "x.task:8: no [codes b]");
    expect_parse_error(MINI_HEAD "[label]\nwhen = any a in (prediction, prediction + 30x]\n", "x.task:8: window end");
    expect_parse_error(MINI_HEAD "[label]\nwhen = any a in (prediction, episode_end]\n",
                       "x.task:8: episode_end needs an [episode]");
    expect_parse_error(MINI_HEAD "[label]\nwhen = age < 18\nwhen = age > 80\n", "x.task:9: a task has one label rule");
    expect_parse_error(MINI_HEAD "[label]\nwhen = any a in (+inf, prediction]\n", "x.task:8: a window runs");
    expect_parse_error(MINI_HEAD "[prediction]\ntime = prediction + 1h\n[label]\nwhen = age < 1\n", "x.task:8: time");
    expect_parse_error(MINI_HEAD "[prediction]\nselect = spaced\n[label]\nwhen = age < 1\n", "spacing");
    expect_parse_error(MINI_HEAD "[labels]\n", "x.task:7: unknown section");
    expect_parse_error(MINI_HEAD "[label]\nwhen = trigger < prediction extra\n", "x.task:8: unexpected text");
    expect_parse_error("[task]\nname = t\n[trigger]\ncodes = a\n[label]\nwhen = age < 1\n", "x.task:4: trigger: no [codes a]");
    expect_parse_error(MINI_HEAD "[codes a]\ncode = X\n[label]\nwhen = age < 1\n", "x.task:7: code set 'a' is defined twice");
    expect_parse_error(MINI_HEAD "[subgroups]\nage = age 65, 18\n[label]\nwhen = age < 1\n", "x.task:8: age bands");
    expect_parse_error(MINI_HEAD, "[label] needs a 'when' rule");
    /* comments, quotes and comma lists are fine */
    task_def t;
    cf_err err = {0};
    const char *ok = "# a comment\n[task]\nname = t   # trailing\ntitle = \"A # title\"\n[codes a]\ncode = X, Y\n"
                     "[trigger]\ncodes = a\n[label]\nwhen = none a in [trigger - 1.5h, prediction + 2w)\n";
    REQUIRE(task_parse(&t, "ok.task", ok, strlen(ok), &err) == CF_OK);
    CHECK_EQ_STR(t.title, "A # title");
    CHECK_EQ_INT(t.sets[0].n_codes, 2);
    CHECK_EQ_INT(t.label.kind, TASK_C_NONE);
    CHECK_EQ_INT(t.label.from.offset, -(3 * H) / 2);
    CHECK_EQ_INT(t.label.to.offset, 14 * D);
    CHECK(t.label.from_closed && !t.label.to_closed);
    task_free(&t);
}

static void test_mortality(void) {
    task_labels l;
    store s;
    task_def t;
    REQUIRE(T0 == at(2020, 1, 1, 10));
    REQUIRE(label_file("in_hospital_mortality.task", make_mimic(), &l, &s, &t) == 0);
    const label_row *r;
    /* subject 1: both stays, alive */
    REQUIRE((r = find_row(&l, 1, T0 + 24 * H)) != NULL);
    CHECK_EQ_INT(r->label, 0);
    CHECK_EQ_INT(r->trigger_time, T0);
    REQUIRE((r = find_row(&l, 1, T0 + 21 * D)) != NULL);
    CHECK_EQ_INT(r->label, 0);
    /* 2 and 3 die after the prediction time */
    REQUIRE((r = find_row(&l, 2, T0 + 24 * H)) != NULL);
    CHECK_EQ_INT(r->label, 1);
    REQUIRE((r = find_row(&l, 3, T0 + 24 * H)) != NULL);
    CHECK_EQ_INT(r->label, 1);
    /* 4 (discharged at 10 h), 5 (no discharge: undefined end) and 7 (died at 12 h) are out */
    CHECK_EQ_INT(rows_of(&l, 4), 0);
    CHECK_EQ_INT(rows_of(&l, 5), 0);
    CHECK_EQ_INT(rows_of(&l, 7), 0);
    /* ... and so is 6's stay B: admitted on day 1, discharged exactly 24 h later */
    CHECK_EQ_INT(excluded(&l, "episode_end <= prediction"), 3);
    CHECK_EQ_INT(excluded(&l, "any death in (-inf, prediction]"), 1);
    CHECK_EQ_INT(rows_of(&l, 6), 1);
    CHECK(find_row(&l, 6, T0 + 24 * H) != NULL);
    CHECK_EQ_INT(l.n, 5);
    CHECK_EQ_INT(l.n_triggers, 9);
    /* subgroups: sex static, race the latest before the prediction time, age band */
    REQUIRE((r = find_row(&l, 1, T0 + 21 * D)) != NULL);
    CHECK_EQ_STR(l.subgroup_names[2], "race");
    CHECK_EQ_STR(l.values[2][r->group[2]], "BLACK/AFRICAN AMERICAN");
    r = find_row(&l, 1, T0 + 24 * H);
    CHECK_EQ_STR(l.values[2][r->group[2]], "WHITE");
    CHECK_EQ_STR(l.values[0][r->group[0]], "F");
    CHECK_EQ_STR(l.values[1][r->group[1]], "65-79");
    CHECK_EQ_STR(l.values[3][r->group[3]], "Medicare");
    r = find_row(&l, 2, T0 + 24 * H);
    CHECK_EQ_STR(l.values[0][r->group[0]], "M");
    CHECK_EQ_STR(l.values[1][r->group[1]], "unknown"); /* no birth */
    CHECK_EQ_STR(l.values[2][r->group[2]], "unknown");
    /* the split is the keyed hash of the subject id */
    split_config sc;
    split_config_default(&sc);
    for (size_t i = 0; i < l.n; i++) CHECK_EQ_INT(l.rows[i].split, split_assign(&sc, l.rows[i].subject_id));
    /* history: exactly the events at or before the prediction time */
    for (size_t i = 0; i < l.n; i++) {
        const label_row *x = &l.rows[i];
        uint64_t a = s.subject_start[x->subject_index], b = s.subject_start[x->subject_index + 1];
        CHECK(x->history_end >= a && x->history_end <= b);
        for (uint64_t e = a; e < x->history_end; e++) CHECK(s.time[e] <= x->prediction_time);
        if (x->history_end < b) CHECK(s.time[x->history_end] > x->prediction_time);
    }
    /* the date of death of subject 3 lies in its history but is never input */
    r = find_row(&l, 3, T0 + 24 * H);
    int64_t md = store_find_code(&s, "MEDS_DEATH");
    REQUIRE(md >= 0);
    int seen = 0;
    for (uint64_t e = s.subject_start[r->subject_index]; e < r->history_end; e++) seen |= s.code[e] == (uint32_t)md;
    CHECK(seen);
    CHECK(!task_input_allowed(&l, (uint32_t)md));
    CHECK(task_input_allowed(&l, (uint32_t)store_find_code(&s, "HOSPITAL_DEATH")));
    unlabel(&l, &s, &t);
}

static void test_readmission_and_stay(void) {
    const char *sp = make_mimic();
    REQUIRE(sp);
    task_labels l;
    store s;
    task_def t;
    REQUIRE(label_file("readmission_30d.task", sp, &l, &s, &t) == 0);
    const label_row *r;
    REQUIRE((r = find_row(&l, 1, T0 + 5 * D)) != NULL); /* back after 15 days */
    CHECK_EQ_INT(r->label, 1);
    REQUIRE((r = find_row(&l, 1, T0 + 30 * D)) != NULL);
    CHECK_EQ_INT(r->label, 0);
    REQUIRE((r = find_row(&l, 4, T0 + 10 * H)) != NULL);
    CHECK_EQ_INT(r->label, 0);
    CHECK_EQ_INT(rows_of(&l, 2), 0); /* died in hospital */
    CHECK_EQ_INT(rows_of(&l, 3), 0);
    CHECK_EQ_INT(rows_of(&l, 7), 0);
    CHECK_EQ_INT(rows_of(&l, 5), 0); /* no discharge: no prediction time */
    CHECK_EQ_INT(excluded(&l, "prediction time undefined"), 1);
    CHECK_EQ_INT(excluded(&l, "any death in [trigger, episode_end]"), 3);
    /* subject 6: A ends at day 8, after B's admission (day 1): B is not "after" A's discharge */
    REQUIRE((r = find_row(&l, 6, T0 + 8 * D)) != NULL);
    CHECK_EQ_INT(r->label, 0);
    REQUIRE((r = find_row(&l, 6, T0 + 2 * D)) != NULL);
    CHECK_EQ_INT(r->label, 0);
    unlabel(&l, &s, &t);

    REQUIRE(label_file("long_stay_7d.task", sp, &l, &s, &t) == 0);
    REQUIRE((r = find_row(&l, 1, T0 + 24 * H)) != NULL); /* 5 days */
    CHECK_EQ_INT(r->label, 0);
    REQUIRE((r = find_row(&l, 1, T0 + 21 * D)) != NULL); /* 10 days */
    CHECK_EQ_INT(r->label, 1);
    REQUIRE((r = find_row(&l, 6, T0 + 24 * H)) != NULL); /* stay A: 8 days, paired by record */
    CHECK_EQ_INT(r->label, 1);
    REQUIRE((r = find_row(&l, 2, T0 + 24 * H)) != NULL); /* died on day 3 */
    CHECK_EQ_INT(r->label, 0);
    unlabel(&l, &s, &t);
}

static int label_text(const char *text, const char *store_path, task_labels *l, store *s, task_def *t) {
    cf_err err = {0};
    if (task_parse(t, "inline.task", text, strlen(text), &err)) {
        fprintf(stderr, "parse: %s\n", err.msg);
        return -1;
    }
    return label_loaded(t, store_path, 7, l, s);
}

static void test_pairing_and_gap(void) {
    const char *sp = make_mimic();
    REQUIRE(sp);
    const char *base = "[task]\nname = p\n[codes adm]\nprefix = HOSPITAL_ADMISSION//\n[codes dis]\n"
                       "prefix = HOSPITAL_DISCHARGE//\n[codes death]\ncode = HOSPITAL_DEATH, HOSPITAL_DISCHARGE//DIED\n"
                       "[trigger]\ncodes = adm\n";
    char text[2048];
    task_labels l;
    store s;
    task_def t;
    const label_row *r;
    /* pair = next: stay A of subject 6 ends at B's discharge (day 2), so it is not long */
    snprintf(text, sizeof text, "%s[episode]\nend = dis\npair = next\n[prediction]\ntime = trigger + 24h\n"
                                "[label]\nwhen = episode_end > trigger + 7d\n", base);
    REQUIRE(label_text(text, sp, &l, &s, &t) == 0);
    REQUIRE((r = find_row(&l, 6, T0 + 24 * H)) != NULL);
    CHECK_EQ_INT(r->label, 0);
    unlabel(&l, &s, &t);
    /* an observation gap of 12 h: subject 3 dies 10 h after the prediction time, inside the gap
     * (excluded); subject 2 dies after it (positive) */
    snprintf(text, sizeof text, "%s[episode]\nend = dis\n[prediction]\ntime = trigger + 24h\ngap = 12h\n"
                                "[exclude]\nwhen = episode_end <= prediction\nwhen = any death in (-inf, prediction]\n"
                                "[label]\nwhen = any death in (gap_end, episode_end]\n", base);
    REQUIRE(label_text(text, sp, &l, &s, &t) == 0);
    CHECK_EQ_INT(rows_of(&l, 3), 0);
    CHECK_EQ_INT(excluded(&l, "outcome during the observation gap"), 1);
    REQUIRE((r = find_row(&l, 2, T0 + 24 * H)) != NULL);
    CHECK_EQ_INT(r->label, 1);
    unlabel(&l, &s, &t);
    /* select first / last per subject */
    snprintf(text, sizeof text, "%s[prediction]\nselect = last\n[label]\nwhen = any adm in (prediction, +inf)\n", base);
    REQUIRE(label_text(text, sp, &l, &s, &t) == 0);
    CHECK_EQ_INT(rows_of(&l, 1), 1);
    REQUIRE((r = find_row(&l, 1, T0 + 20 * D)) != NULL);
    CHECK_EQ_INT(r->label, 0);
    CHECK_EQ_INT(excluded(&l, "not selected"), 2); /* subjects 1 and 6 had two */
    unlabel(&l, &s, &t);
    snprintf(text, sizeof text, "%s[prediction]\nselect = first\n[label]\nwhen = any adm in (prediction, +inf)\n", base);
    REQUIRE(label_text(text, sp, &l, &s, &t) == 0);
    REQUIRE((r = find_row(&l, 1, T0)) != NULL);
    CHECK_EQ_INT(r->label, 1);
    unlabel(&l, &s, &t);
}

/* ---------------------------------------------------------------- new onset (Synthea-like) */

/* LOINC events stand for the labs and vital signs Synthea exports for the last ten years of a
 * record: the record is complete from the first one. The store's data end is 2020-06-01 (19). */
static const char *make_synthea(void) {
    static char path[512];
    snprintf(path, sizeof path, "%s/synthea_like.store", check_tmpdir());
    if (access(path, F_OK) == 0) return path;
    const ev e[] = {
        /* 10: encounters 2010-01, 2010-06, 2011-03, 2012-01, 2013-01; type 2 diabetes 2011-05 */
        {10, TIME_NULL, "GENDER//F", NAN, 1},
        {10, at(1970, 1, 1, 0), "MEDS_BIRTH", NAN, 1},
        {10, at(2005, 1, 1, 9), "LOINC//39156-5//kg/m2", 24.0f, 2}, /* BMI: the record is complete from here */
        {10, at(2010, 1, 1, 9), "ENCOUNTER_END//AMB", NAN, 3},
        {10, at(2010, 6, 1, 9), "ENCOUNTER_END//AMB", NAN, 4},
        {10, at(2011, 3, 1, 9), "ENCOUNTER_END//AMB", NAN, 5},
        {10, at(2011, 5, 1, 9), "SNOMED//44054006", NAN, 6},
        {10, at(2012, 1, 1, 9), "ENCOUNTER_END//AMB", NAN, 7},
        {10, at(2013, 1, 1, 9), "ENCOUNTER_END//AMB", NAN, 8},
        /* 11: a child */
        {11, at(2000, 1, 1, 0), "MEDS_BIRTH", NAN, 9},
        {11, at(2004, 1, 1, 9), "LOINC//8302-2//cm", 100.0f, 10},
        {11, at(2005, 1, 1, 9), "ENCOUNTER_END//AMB", NAN, 10},
        {11, at(2010, 1, 1, 9), "ENCOUNTER_END//AMB", NAN, 11},
        {11, at(2012, 1, 1, 9), "ENCOUNTER_END//AMB", NAN, 12},
        /* 12: visits back to 2012, but labs only from 2015-01: the first year has no complete
         * record; after 2017-06 no more visits, yet alive: followed to the data's end */
        {12, at(1980, 1, 1, 0), "MEDS_BIRTH", NAN, 13},
        {12, at(2012, 1, 1, 9), "ENCOUNTER_END//AMB", NAN, 13},
        {12, at(2015, 1, 1, 8), "LOINC//8302-2//cm", 170.0f, 14},
        {12, at(2015, 1, 1, 9), "ENCOUNTER_END//AMB", NAN, 14},
        {12, at(2015, 6, 1, 9), "ENCOUNTER_END//AMB", NAN, 15},
        {12, at(2016, 2, 1, 9), "ENCOUNTER_END//AMB", NAN, 16},
        {12, at(2017, 6, 1, 9), "ENCOUNTER_END//AMB", NAN, 17},
        /* 13: the 2020-01 visit's year runs past the data's end: censored */
        {13, at(1960, 1, 1, 0), "MEDS_BIRTH", NAN, 18},
        {13, at(1999, 1, 1, 9), "LOINC//8302-2//cm", 160.0f, 18},
        {13, at(2000, 1, 1, 9), "ENCOUNTER_END//AMB", NAN, 19},
        {13, at(2018, 1, 1, 9), "ENCOUNTER_END//AMB", NAN, 20},
        {13, at(2020, 1, 1, 9), "ENCOUNTER_END//AMB", NAN, 21},
        /* 14: diabetic already before any visit */
        {14, at(1950, 1, 1, 0), "MEDS_BIRTH", NAN, 22},
        {14, at(1985, 1, 1, 9), "LOINC//8302-2//cm", 160.0f, 22},
        {14, at(1990, 1, 1, 9), "SNOMED//368581000119106", NAN, 23},
        {14, at(2000, 1, 1, 9), "ENCOUNTER_END//AMB", NAN, 24},
        {14, at(2003, 1, 1, 9), "ENCOUNTER_END//AMB", NAN, 25},
        /* 15: dies 2011-08 without the diagnosis: 2011-02 is a competing event, kept */
        {15, at(1940, 1, 1, 0), "MEDS_BIRTH", NAN, 26},
        {15, at(2005, 1, 1, 9), "LOINC//8302-2//cm", 160.0f, 26},
        {15, at(2010, 1, 1, 9), "ENCOUNTER_END//AMB", NAN, 27},
        {15, at(2011, 2, 1, 9), "ENCOUNTER_END//AMB", NAN, 28},
        {15, at(2011, 8, 1, 0), "MEDS_DEATH", NAN, 29},
        /* 16: diagnosed 2010-05, dies 2010-09: a positive */
        {16, at(1940, 1, 1, 0), "MEDS_BIRTH", NAN, 30},
        {16, at(2005, 1, 1, 9), "LOINC//8302-2//cm", 160.0f, 30},
        {16, at(2010, 1, 1, 9), "ENCOUNTER_END//AMB", NAN, 31},
        {16, at(2010, 5, 1, 9), "SNOMED//44054006", NAN, 32},
        {16, at(2010, 9, 1, 0), "MEDS_DEATH", NAN, 33},
        /* 17: dies 2010-03-01; the death certification encounter ends the next day */
        {17, at(1940, 1, 1, 0), "MEDS_BIRTH", NAN, 34},
        {17, at(2005, 1, 1, 9), "LOINC//8302-2//cm", 160.0f, 34},
        {17, at(2008, 1, 1, 9), "ENCOUNTER_END//AMB", NAN, 35},
        {17, at(2010, 3, 1, 0), "MEDS_DEATH", NAN, 36},
        {17, at(2010, 3, 2, 9), "ENCOUNTER_END//AMB", NAN, 37},
        /* 19: the data's last event */
        {19, at(2020, 6, 1, 9), "LOINC//8302-2//cm", 150.0f, 38},
    };
    return build_store(path, e, sizeof e / sizeof e[0]) ? NULL : path;
}

static void test_new_onset(void) {
    task_labels l;
    store s;
    task_def t;
    REQUIRE(label_file("new_onset_t2d.task", make_synthea(), &l, &s, &t) == 0);
    CHECK(l.has_follow_up);
    CHECK_EQ_INT(l.data_end, at(2020, 6, 1, 9));
    const label_row *r;
    /* 10: 2010-01 (no diagnosis within a year: 0); 2010-06 is within a year of the row before
     * (not selected); 2011-03 (diagnosed 2011-05: 1); 2012-01 and 2013-01 (diagnosed already) */
    CHECK_EQ_INT(rows_of(&l, 10), 2);
    REQUIRE((r = find_row(&l, 10, at(2010, 1, 1, 9))) != NULL);
    CHECK_EQ_INT(r->label, 0);
    CHECK_EQ_INT(r->event, TASK_EVENT_NONE);
    REQUIRE((r = find_row(&l, 10, at(2011, 3, 1, 9))) != NULL);
    CHECK_EQ_INT(r->label, 1);
    CHECK_EQ_INT(r->event, TASK_EVENT_OUTCOME);
    CHECK_EQ_STR(l.values[1][r->group[1]], "<45");
    CHECK_EQ_INT(rows_of(&l, 11), 0);
    CHECK_EQ_INT(excluded(&l, "age < 18"), 3); /* subject 11 at 5, 10 and 12 */
    /* 12: 2012-01, 2015-01 and 2015-06 lack a year of complete record; 2016-02 is a negative;
     * 2017-06 too: no visit after it, but alive and followed to the data's end (the old rule,
     * "the record must reach the end of the year", dropped it) */
    CHECK_EQ_INT(excluded(&l, "less than 365d of complete record"), 3);
    CHECK_EQ_INT(rows_of(&l, 12), 2);
    REQUIRE((r = find_row(&l, 12, at(2016, 2, 1, 9))) != NULL);
    CHECK_EQ_INT(r->label, 0);
    REQUIRE((r = find_row(&l, 12, at(2017, 6, 1, 9))) != NULL);
    CHECK_EQ_INT(r->label, 0);
    /* 13: 2000 (a year after the first lab: a negative), 2018 (negative), 2020 (censored: the
     * data end before its year does) */
    CHECK_EQ_INT(rows_of(&l, 13), 2);
    CHECK(find_row(&l, 13, at(2018, 1, 1, 9)) != NULL);
    CHECK(find_row(&l, 13, at(2020, 1, 1, 9)) == NULL);
    CHECK_EQ_INT(excluded(&l, "censored: follow-up"), 1);
    CHECK_EQ_INT(rows_of(&l, 14), 0);
    /* 15: a patient who dies without the outcome stays in the cohort: 2011-02 is a negative
     * whose label window held a competing death */
    CHECK_EQ_INT(rows_of(&l, 15), 2);
    REQUIRE((r = find_row(&l, 15, at(2011, 2, 1, 9))) != NULL);
    CHECK_EQ_INT(r->label, 0);
    CHECK_EQ_INT(r->event, TASK_EVENT_COMPETING);
    /* 16: diagnosed, then died: a positive */
    REQUIRE((r = find_row(&l, 16, at(2010, 1, 1, 9))) != NULL);
    CHECK_EQ_INT(r->label, 1);
    /* 17: 2008 is a negative (death more than a year later); the encounter after death is not
     * a prediction */
    CHECK_EQ_INT(rows_of(&l, 17), 1);
    CHECK_EQ_INT(excluded(&l, "died at or before the prediction time"), 1);
    CHECK_EQ_INT(excluded(&l, "not selected"), 1); /* 10: 2010-06 */
    task_counts c = task_count_rows(l.rows, l.n, -1);
    CHECK_EQ_INT(c.competing, 1);
    CHECK_EQ_INT(c.pos, 2);
    size_t all_rows = c.rows;
    unlabel(&l, &s, &t);

    /* the competing event as a task of its own: the same rows, death first is the label */
    cf_err err = {0};
    REQUIRE(task_load(&t, task_file("new_onset_t2d.task"), &err) == CF_OK);
    REQUIRE(store_open(&s, make_synthea(), &err) == CF_OK);
    task_label_options o = {.seed = 1, .target = TASK_TARGET_COMPETING};
    split_config_default(&o.split);
    REQUIRE(task_label(&t, &s, &o, &l, &err) == CF_OK);
    c = task_count_rows(l.rows, l.n, -1);
    CHECK_EQ_INT(c.rows, all_rows);
    CHECK_EQ_INT(c.pos, 1);
    REQUIRE((r = find_row(&l, 15, at(2011, 2, 1, 9))) != NULL);
    CHECK_EQ_INT(r->label, 1);
    REQUIRE((r = find_row(&l, 10, at(2011, 3, 1, 9))) != NULL);
    CHECK_EQ_INT(r->label, 0);
    unlabel(&l, &s, &t);
}

/* The earlier rule, `censor = yes`, kept for task files that use it: a negative row needs the
 * record to reach the end of its window, so 12's 2017-06 and 15's 2011-02 are censored. */
static void test_censor_rule(void) {
    const char *text = "[task]\nname = old\n[codes condition]\ncode = SNOMED//44054006\n"
                       "[codes visit_end]\nprefix = ENCOUNTER_END//\n[trigger]\ncodes = visit_end\n"
                       "[prediction]\nselect = spaced\nspacing = 365d\n[exclude]\nwhen = age < 18\n"
                       "when = any condition in (-inf, prediction]\n"
                       "[label]\nwhen = any condition in (prediction, prediction + 365d]\ncensor = yes\n";
    task_def t;
    task_labels l;
    store s;
    cf_err err = {0};
    REQUIRE(task_parse(&t, "old.task", text, strlen(text), &err) == CF_OK);
    REQUIRE(label_loaded(&t, make_synthea(), 1, &l, &s) == 0);
    CHECK(!l.has_follow_up);
    CHECK(find_row(&l, 12, at(2017, 6, 1, 9)) == NULL);
    CHECK(find_row(&l, 15, at(2011, 2, 1, 9)) == NULL);
    CHECK(find_row(&l, 16, at(2010, 1, 1, 9)) != NULL); /* the one who died with it stays */
    unlabel(&l, &s, &t);
}

/* Follow-up in a date-shifted store: each subject's own data end lies within a shift of the
 * store's, so only the store's last time minus two largest shifts is provable, with a record's
 * own last event as a lower bound; and that largest shift is de-identification's. */
static void test_follow_up_shifted(void) {
    long long worst = 0;
    unsigned char key[DEID_KEY_BYTES] = {1, 2, 3};
    for (int64_t id = 1; id < 20000; id++) {
        int d = deid_shift_days(key, id);
        if (llabs(d) > worst) worst = llabs(d);
    }
    CHECK_EQ_INT(worst, TASK_MAX_DATE_SHIFT_DAYS);
    const ev e[] = {
        {1, at(1950, 1, 1, 0), "MEDS_BIRTH", NAN, 1},
        {1, at(2000, 1, 1, 9), "LOINC//8302-2//cm", 160.0f, 1},
        {1, at(2010, 1, 1, 9), "ENCOUNTER_END//AMB", NAN, 2},
        {1, at(2016, 1, 1, 9), "ENCOUNTER_END//AMB", NAN, 3}, /* window ends 2016-12-31 */
        {1, at(2017, 6, 1, 9), "ENCOUNTER_END//AMB", NAN, 4}, /* window ends 2018-06 */
        {2, at(1950, 1, 1, 0), "MEDS_BIRTH", NAN, 5},
        {2, at(2000, 1, 1, 9), "LOINC//8302-2//cm", 160.0f, 5},
        {2, at(2016, 1, 1, 9), "ENCOUNTER_END//AMB", NAN, 6},
        {2, at(2018, 1, 1, 9), "LOINC//8302-2//cm", 160.0f, 7}, /* 2's record reaches 2018 */
        {3, at(2019, 1, 1, 9), "LOINC//8302-2//cm", 160.0f, 8},  /* the store's last time */
    };
    char *path = tmp_path("shifted.store");
    store_writer *w;
    cf_err err = {0};
    store_writer_options wo = {.flags = STORE_FLAG_DEIDENTIFIED | STORE_FLAG_DATES_SHIFTED};
    REQUIRE(store_writer_open(&w, path, &wo, &err) == CF_OK);
    int src = store_writer_source(w, "t");
    for (size_t i = 0; i < sizeof e / sizeof e[0]; i++) {
        int64_t c = store_writer_code(w, e[i].code, strlen(e[i].code));
        REQUIRE(store_writer_add(w, e[i].subject, e[i].time, (uint32_t)c, e[i].num, NULL, 0, (uint32_t)src, e[i].row,
                                 &err) == CF_OK);
    }
    REQUIRE(store_writer_finish(w, &err) == CF_OK);
    task_labels l;
    store s;
    task_def t;
    REQUIRE(label_file("new_onset_t2d.task", path, &l, &s, &t) == 0);
    CHECK(l.shifted_margin);
    CHECK_EQ_INT(l.data_end, at(2019, 1, 1, 9) - 2 * (int64_t)TASK_MAX_DATE_SHIFT_DAYS * D);
    /* provable follow-up ends 2017-01-02: 1's 2016 row is followed, its 2017-06 row is not;
     * 2's 2016 row is followed through its own record (to 2018) */
    CHECK(find_row(&l, 1, at(2016, 1, 1, 9)) != NULL);
    CHECK(find_row(&l, 1, at(2017, 6, 1, 9)) == NULL);
    CHECK(find_row(&l, 2, at(2016, 1, 1, 9)) != NULL);
    unlabel(&l, &s, &t);
}

static void test_follow_up_parse(void) {
    expect_parse_error(MINI_HEAD "[label]\nwhen = any a in (prediction, prediction + 1d]\n[follow_up]\nend = data_end\n",
                       "[follow_up] needs 'death = SET'");
    expect_parse_error(MINI_HEAD "[label]\nwhen = any a in (prediction, prediction + 1d]\n[follow_up]\ndeath = d\n",
                       "x.task:10: death: no [codes d]");
    expect_parse_error(MINI_HEAD "[label]\nwhen = age < 3\n[follow_up]\ndeath = a\n", "needs a label rule 'any SET");
    expect_parse_error(MINI_HEAD "[label]\nwhen = any a in (prediction, prediction + 1d]\n[follow_up]\ndeath = a\n"
                       "end = soon\n", "x.task:11: end: expected data_end, record_end or a date");
    expect_parse_error(MINI_HEAD "[label]\nwhen = any a in (prediction, prediction + 1d]\ncensor = yes\n"
                       "[follow_up]\ndeath = a\n", "'censor = yes' and [follow_up]");
    expect_parse_error(MINI_HEAD "[label]\nwhen = age < 3\n[record]\ncomplete_from = a\n", "needs 'lookback");
    expect_parse_error(MINI_HEAD "[label]\nwhen = age < 3\n[record]\nlookback = soon\n", "x.task:10: lookback");
    expect_parse_error(MINI_HEAD "[label]\nwhen = age < 3\n[report]\nthresholds = 0.5, 0.1\n", "x.task:10: thresholds");
    task_def t;
    cf_err err = {0};
    const char *ok = MINI_HEAD "[codes d]\ncode = MEDS_DEATH\n[label]\nwhen = any a in (prediction, prediction + 1d]\n"
                               "[follow_up]\ndeath = d\nend = 2020-01-01\ncompeting = exclude\n[record]\nlookback = 2w\n"
                               "[report]\nthresholds = 0.1, 0.3\n";
    REQUIRE(task_parse(&t, "ok.task", ok, strlen(ok), &err) == CF_OK);
    CHECK_EQ_INT(t.follow_end, TASK_FU_DATE);
    CHECK_EQ_INT(t.follow_date, at(2020, 1, 1, 0));
    CHECK_EQ_INT(t.competing, TASK_COMPETING_EXCLUDE);
    CHECK_EQ_INT(t.lookback, 14 * D);
    CHECK_EQ_INT(t.complete_set, -1);
    CHECK_EQ_INT(t.n_thresholds, 2);
    task_free(&t);
}

/* ---------------------------------------------------------------- nothing after prediction */

static void history_features(const char *store_path, int64_t sid, int64_t pt, char ***names, float **vals, size_t *n) {
    task_labels l;
    store s;
    task_def t;
    *n = 0;
    if (label_file("in_hospital_mortality.task", store_path, &l, &s, &t)) return;
    const label_row *r = find_row(&l, sid, pt);
    if (r) {
        eval_featurizer f;
        eval_feature_options fo = {.min_rows = 1};
        cf_err err = {0};
        ml_csr X;
        if (!eval_features_fit(&f, &s, &l, r, 1, &fo, &err)) {
            if (!eval_features_build(&f, r, 1, &X, &err)) {
                *names = calloc(X.nnz + 1, sizeof **names);
                *vals = calloc(X.nnz + 1, sizeof **vals);
                for (size_t k = 0; k < X.nnz; k++) {
                    char buf[256];
                    (*names)[k] = strdup(eval_feature_name(&f, X.idx[k], buf, sizeof buf));
                    (*vals)[k] = X.val[k];
                }
                *n = X.nnz;
                ml_csr_free(&X);
            }
            eval_featurizer_free(&f);
        }
    }
    unlabel(&l, &s, &t);
}

static void test_no_future_input(void) {
    const char *sp = make_mimic();
    REQUIRE(sp);
    /* the same store with more events after subject 1's first prediction time (T0 + 24 h) */
    ev e[N_MIMIC + 3];
    memcpy(e, mimic_events, sizeof mimic_events);
    e[1].time = at(1950, 1, 1, 0);
    e[N_MIMIC] = (ev){1, T0 + 25 * H, "LAB//50912//mg/dL", 9.0f, 200};
    e[N_MIMIC + 1] = (ev){1, T0 + 26 * H, "LAB//99999//x", 1.0f, 201};
    e[N_MIMIC + 2] = (ev){1, T0 + 24 * H + 1, "ICU_ADMISSION//MICU", NAN, 202};
    char *p2 = tmp_path("mimic_future.store");
    REQUIRE(build_store(p2, e, N_MIMIC + 3) == 0);
    char **n1 = NULL, **n2 = NULL;
    float *v1 = NULL, *v2 = NULL;
    size_t k1, k2;
    history_features(sp, 1, T0 + 24 * H, &n1, &v1, &k1);
    history_features(p2, 1, T0 + 24 * H, &n2, &v2, &k2);
    CHECK(k1 > 5);
    CHECK_EQ_INT(k1, k2);
    for (size_t i = 0; i < k1 && i < k2; i++) {
        CHECK_EQ_STR(n1[i], n2[i]);
        CHECK_NEAR(v1[i], v2[i], 0);
    }
    /* and the features are what was worked out by hand: the lab (1.5 at +2 h, in the 1-day
     * window) and not the 2.5 at +30 h */
    int found = 0;
    for (size_t i = 0; i < k1; i++) {
        if (!strcmp(n1[i], "LAB//50912//mg/dL last value")) { CHECK_NEAR(v1[i], 1.5, 1e-6); found++; }
        if (!strcmp(n1[i], "LAB//50912//mg/dL count 1d")) { CHECK_NEAR(v1[i], 1, 0); found++; }
        if (!strcmp(n1[i], "age")) { CHECK_NEAR(v1[i], 70.0, 0.01); found++; }
        if (!strcmp(n1[i], "GENDER//F count all")) { CHECK_NEAR(v1[i], 1, 0); found++; }
        CHECK(strcmp(n1[i], "GENDER//F count 1d") != 0); /* static facts: "all" only */
    }
    CHECK_EQ_INT(found, 4);
    for (size_t i = 0; i < k1; i++) free(n1[i]);
    for (size_t i = 0; i < k2; i++) free(n2[i]);
    free(n1), free(n2), free(v1), free(v2);
}

/* The auxiliary tasks of PhysioNet 2012 (tasks/aux/, `clinfm eval --ft-aux-task`) are labels
 * only: on a fictional stay in the mapping's codes whose death, discharge and scores all fall
 * before the prediction time (48 h), so they lie in the row's history range, no code of an
 * auxiliary task's label or exclusion rules is input under the main task or under its own, and
 * eval accepts each as an auxiliary task of the main one (the same prompts). A second stay,
 * discharged alive on day 12, gives the long stay a positive and 30-day death a negative. */
static void test_p12_aux_tasks_are_labels_only(void) {
    const int64_t t0 = at(2100, 1, 1, 0), end_of_day1 = t0 + 2 * D - USEC_PER_SEC;
    const ev e[] = {
        {1, t0 - 70 * 365 * D, "MEDS_BIRTH", NAN, 1},      {1, t0, "ICU_ADMISSION", NAN, 1},
        {1, t0 + H, "ICU//HR//bpm", 110, 1},               {1, t0 + 24 * H, "P12//SOFA", 12, 1},
        {1, t0 + 24 * H, "P12//SAPS-I", 20, 1},            {1, end_of_day1, "MEDS_DEATH", NAN, 1},
        {1, end_of_day1, "HOSPITAL_DEATH", NAN, 1},        {1, end_of_day1, "HOSPITAL_DISCHARGE//DIED", NAN, 1},
        {2, t0 - 50 * 365 * D, "MEDS_BIRTH", NAN, 2},      {2, t0, "ICU_ADMISSION", NAN, 2},
        {2, t0 + 2 * H, "ICU//HR//bpm", 80, 2},            {2, t0 + 24 * H, "P12//SOFA", 3, 2},
        {2, t0 + 13 * D - USEC_PER_SEC, "HOSPITAL_DISCHARGE//ALIVE", NAN, 2},
    };
    char *sp = tmp_path("p12_aux.store");
    REQUIRE(build_store(sp, e, sizeof e / sizeof e[0]) == 0);
    task_def mt;
    task_labels ml;
    store s;
    REQUIRE(label_file("physionet2012_in_hospital_death.task", sp, &ml, &s, &mt) == 0);
    REQUIRE(ml.n == 2);
    const char *aux[] = {"aux/physionet2012_death_30d.task", "aux/physionet2012_long_stay.task"};
    const int want[2][2] = {{1, 0}, {0, 1}}; /* per task, stays 1 and 2 */
    for (size_t a = 0; a < 2; a++) {
        task_def at_;
        task_labels al;
        cf_err err = {0};
        REQUIRE(task_load(&at_, task_file(aux[a]), &err) == CF_OK);
        task_label_options lo = {.seed = 1};
        split_config_default(&lo.split);
        REQUIRE(task_label(&at_, &s, &lo, &al, &err) == CF_OK);
        CHECK_EQ_INT(eval_aux_check(&s, &mt, &ml, &at_, &al, &err), CF_OK);
        REQUIRE(al.n == 2);
        for (size_t i = 0; i < 2; i++) CHECK_EQ_INT(al.rows[i].label, want[a][i]);
        /* every code of its label and exclusion rules: present before the prediction time, never input */
        size_t checked = 0;
        for (size_t r = 0; r <= at_.n_exclude; r++) {
            const task_cond *c = r < at_.n_exclude ? &at_.exclude[r] : &at_.label;
            if (c->kind != TASK_C_ANY && c->kind != TASK_C_NONE) continue;
            const task_codeset *cs = &at_.sets[c->set];
            CHECK_EQ_INT(cs->n_prefixes, 0);
            for (size_t k = 0; k < cs->n_codes; k++) {
                int64_t code = store_find_code(&s, cs->codes[k]);
                REQUIRE(code >= 0);
                int in_history = 0;
                for (uint64_t ev_i = s.subject_start[0]; ev_i < ml.rows[0].history_end; ev_i++)
                    in_history |= s.code[ev_i] == (uint32_t)code;
                if (strcmp(cs->codes[k], "HOSPITAL_DISCHARGE//ALIVE")) CHECK(in_history); /* stay 1 died */
                CHECK(!task_input_allowed(&ml, (uint32_t)code) && !task_input_allowed(&al, (uint32_t)code));
                checked++;
            }
        }
        CHECK(checked >= 1);
        task_labels_free(&al);
        task_free(&at_);
    }
    /* and the scores, which the language cannot threshold: not input either */
    CHECK(!task_input_allowed(&ml, (uint32_t)store_find_code(&s, "P12//SOFA")));
    CHECK(task_input_allowed(&ml, (uint32_t)store_find_code(&s, "ICU//HR//bpm")));
    task_labels_free(&ml);
    store_close(&s);
    task_free(&mt);
}

static void test_labels_csv(void) {
    task_labels l;
    store s;
    task_def t;
    REQUIRE(label_file("readmission_30d.task", make_mimic(), &l, &s, &t) == 0);
    char *out = tmp_path("labels.csv");
    cf_err err = {0};
    REQUIRE(task_write_labels_csv(&l, out, -1, &err) == CF_OK);
    FILE *f = fopen(out, "r");
    REQUIRE(f);
    char line[512];
    REQUIRE(fgets(line, sizeof line, f));
    CHECK_EQ_STR(line, "subject_id,prediction_time,boolean_value,split,sex,age,race,insurance\n");
    REQUIRE(fgets(line, sizeof line, f));
    split_config sc;
    split_config_default(&sc);
    char want[256];
    snprintf(want, sizeof want, "1,2020-01-06T10:00:00,true,%s,F,65-79,WHITE,Medicare\n", split_name(split_assign(&sc, 1)));
    CHECK_EQ_STR(line, want);
    size_t lines = 1;
    while (fgets(line, sizeof line, f)) lines++;
    fclose(f);
    CHECK_EQ_INT(lines, l.n);
    task_counts c = task_count_rows(l.rows, l.n, -1);
    CHECK_EQ_INT(c.rows, l.n);
    CHECK_EQ_INT(c.pos + c.neg, l.n);
    CHECK_EQ_INT(c.subjects, 3);
    unlabel(&l, &s, &t);
}

int main(void) {
    RUN(test_shipped_tasks_parse);
    RUN(test_parse_errors);
    RUN(test_mortality);
    RUN(test_readmission_and_stay);
    RUN(test_pairing_and_gap);
    RUN(test_new_onset);
    RUN(test_censor_rule);
    RUN(test_follow_up_shifted);
    RUN(test_follow_up_parse);
    RUN(test_no_future_input);
    RUN(test_labels_csv);
    RUN(test_p12_aux_tasks_are_labels_only);
    return check_summary();
}
