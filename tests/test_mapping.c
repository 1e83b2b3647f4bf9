/* Mapping files and the mapped-CSV engine: every mapping error is reported with its line, every
 * template feature does what docs/MAPPING.md says, and every input row ends up as events,
 * filtered or rejected (with its reason), never lost. */
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "ingest/mapped_csv.h"
#include "ingest/mapping.h"
#include "store/store.h"

static char dir[600];

static void write_text(const char *name, const char *text) {
    char path[900];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
}

static int load(const char *text, mapping *m, cf_err *err) {
    write_text("m.map", text);
    char path[900];
    snprintf(path, sizeof path, "%s/m.map", dir);
    memset(err, 0, sizeof *err);
    return mapping_load(m, path, err);
}

/* Each bad mapping must fail with a message naming the line and saying what is wrong. */
static void test_mapping_errors(void) {
    static const struct {
        const char *text, *expect;
    } cases[] = {
        {"[table t]\nfile = a.csv\n", ":1: [table t] needs `subject =`"},
        {"[table t]\nfile = a.csv\nsubject = id\n", "has no [event t/...] sections"},
        {"[table t]\nsubject = id\n[event t/e]\ncode = X\n", "needs `file =`"},
        {"[table t]\nfile=a\nsubject=id\n[event t/e]\ntime = {x}\n", ":4: [event t/e] needs `code =`"},
        {"[event t/e]\ncode = X\n", ":1: [event t/e] names a table not declared"},
        {"[table t]\nfile=a\nsubject=id\n[event t/e]\ncode = X\nbogus = 1\n", ":6: unknown key 'bogus' in [event]"},
        {"[tabel t]\n", ":1: unknown section [tabel]"},
        {"[table t]\nfile=a\nsubject=id\n[event t/e]\ncode = A{x\n", ":5: '{' without closing '}'"},
        {"[table t]\nfile=a\nsubject=id\n[event t/e]\ncode = A}x\n", ":5: '}' without '{'"},
        {"[table t]\nfile=a\nsubject=id\n[event t/e]\ncode = {x|frobnicate}\n", ":5: unknown filter 'frobnicate'"},
        {"[table t]\nfile=a\nsubject=id\n[event t/e]\ncode = {x|map:nodict}\n", "map:nodict names no [dictionary nodict]"},
        {"[table t]\nfile=a\nsubject=id\n[event t/e]\ncode = {d.x}\n", "refers to dictionary 'd', which this table does not join"},
        {"[table t]\nfile=a\nsubject=id\n[event t/e]\ncode = X\nwhere = x ~= 3\n", ":6: where: expected a column or a {template} followed by =="},
        {"[table t]\nfile=a\nsubject=id\n[event t/e]\ncode = X\nwhere = x in nodict\n", "where: names no [dictionary nodict]"},
        {"[table t]\nfile=a\nsubject=id\njoin = d on x\n[event t/e]\ncode = X\n", ":4: join names no [dictionary d]"},
        {"[table t]\nfile=a\nsubject=id\n[event t/e]\ncode = X\n[event t/e]\ncode = Y\n", "event 't/e' declared twice"},
        {"[table t]\nfile=a\nsubject=id\nsubject_type = uuid\n", ":4: subject_type must be int or string"},
        {"name = x\n", ":1: key 'name' outside any [section]"},
        {"[table t]\nfile=a\nsubject=id\n[event t/e]\ncode = {x|split:ab:1}\n", "split expects"},
        {"[table t]\nfile=a\nsubject=id\n[event t/e]\ncode = X\nnumeric_invalid = maybe\n", ":6: numeric_invalid must be"},
        {"[dictionary d]\nfile = a\nkey = k\n[table t]\nfile=a\nsubject=id\n[event t/e]\ncode=X\n", "[dictionary d] needs `columns =`"},
        {"", "no [table ...] sections"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        mapping m;
        cf_err err;
        int rc = load(cases[i].text, &m, &err);
        if (rc != CF_EINPUT) {
            CHECK_FAIL_("case %zu: expected CF_EINPUT, got %d", i, rc);
            if (rc == CF_OK) mapping_free(&m);
            continue;
        }
        CHECK_CONTAINS(err.msg, cases[i].expect);
        CHECK_CONTAINS(err.msg, "m.map");
    }
    mapping m;
    cf_err err;
    CHECK(mapping_load(&m, "/nonexistent/x.map", &err) == CF_EINPUT);
    CHECK_CONTAINS(err.msg, "/nonexistent/x.map");
}

typedef struct {
    int64_t subject, time;
    char code[128];
    float numeric;
    char text[128];
} got_event;

/* Ingests with the given mapping into a store and returns its events (store order). */
static int ingest(const char *map_text, ingest_report *rep, int strict, got_event **out, size_t *n, cf_err *err) {
    mapping m;
    int rc = load(map_text, &m, err);
    if (rc) return rc;
    char store_path[900];
    snprintf(store_path, sizeof store_path, "%s/out.store", dir);
    unlink(store_path);
    store_writer *w;
    ingest_report_init(rep, strict);
    rc = store_writer_open(&w, store_path, NULL, err);
    if (rc) return rc;
    mapped_csv_options opt = {0};
    rc = mapped_csv_ingest(&m, dir, w, rep, &opt, err);
    mapping_free(&m);
    if (rc) {
        store_writer_abort(w);
        return rc;
    }
    if ((rc = store_writer_finish(w, err))) return rc;
    store s;
    if ((rc = store_open(&s, store_path, err))) return rc;
    *n = s.n_events;
    *out = calloc(s.n_events + 1, sizeof **out);
    for (uint64_t k = 0; k < s.n_subjects; k++)
        for (uint64_t i = s.subject_start[k]; i < s.subject_start[k + 1]; i++) {
            got_event *g = &(*out)[i];
            g->subject = s.subject_id[k];
            g->time = s.time[i];
            snprintf(g->code, sizeof g->code, "%s", store_code_str(&s, s.code[i]));
            g->numeric = s.numeric[i];
            if (s.text[i]) {
                size_t len;
                const char *t = store_text_str(&s, s.text[i], &len);
                snprintf(g->text, sizeof g->text, "%.*s", (int)len, t);
            }
        }
    store_close(&s);
    return CF_OK;
}

static const got_event *find(const got_event *ev, size_t n, int64_t subject, const char *code) {
    for (size_t i = 0; i < n; i++)
        if (ev[i].subject == subject && !strcmp(ev[i].code, code)) return &ev[i];
    return NULL;
}

/* One ingest of a mapping that must succeed (strict off), with what it produced. */
typedef struct {
    ingest_report rep;
    got_event *ev;
    size_t n;
    cf_err err;
} ingested;

static int ingest_ok(const char *map_text, ingested *g) {
    memset(g, 0, sizeof *g);
    int rc = ingest(map_text, &g->rep, 0, &g->ev, &g->n, &g->err);
    if (rc) fprintf(stderr, "%s\n", g->err.msg);
    return rc == CF_OK;
}

static void ingested_free(ingested *g) {
    free(g->ev);
    ingest_report_free(&g->rep);
}

/* An ingest that must stop with CF_EINPUT and a message containing expect (and also2 when
 * given). */
static void check_ingest_fails(const char *map_text, int strict, const char *expect, const char *also2) {
    ingested g;
    memset(&g, 0, sizeof g);
    CHECK(ingest(map_text, &g.rep, strict, &g.ev, &g.n, &g.err) == CF_EINPUT);
    CHECK_CONTAINS(g.err.msg, expect);
    if (also2) CHECK_CONTAINS(g.err.msg, also2);
    ingested_free(&g);
}

static int64_t t_of(const char *iso) {
    int64_t t;
    return time_parse_iso(iso, strlen(iso), &t, NULL) ? -1 : t;
}

static void test_templates_and_filters(void) {
    write_text("people.csv",
               "id,sex,age,year,bp,unit,name,when,day\n"
               "1,F,40,2100,120/80,, Ann ,2100-05-01 10:00:00,2100-05-01\n"
               "2,m,90,2150,130/85,mg,Bob,,2150-02-03\n");
    write_text("units.csv", "u,label\nmg,milligram\n");
    const char *map =
        "[dictionary units]\nfile = units.csv\nkey = u\nvalue = label\n"
        "[table people]\nfile = people.csv\nsubject = id\n"
        "[event people/sex]\ncode = SEX//{sex|upper}\n"
        "[event people/birth]\ncode = MEDS_BIRTH\ntime = {year|minus:age}-01-01\n"
        "[event people/sys]\ncode = BP//SYS//{unit}\ntime = {when,day}\nnumeric = {bp|split:/:0}\n"
        "[event people/dia]\ncode = BP//DIA\ntime = {when,day}\nnumeric = {bp|split:/:1}\n"
        "[event people/name]\ncode = NAME//{name|trim|lower}\nempty = NONE\n"
        "[event people/unit]\ncode = UNIT//{unit|map:units}\nempty = NONE\ntime = {day}\n"
        "[event people/plus]\ncode = Y{year|plus:1}\n";
    ingested g;
    REQUIRE(ingest_ok(map, &g));
    CHECK_EQ_INT(g.n, 14);
    CHECK(find(g.ev, g.n, 1, "SEX//F") && find(g.ev, g.n, 2, "SEX//M"));
    const got_event *b = find(g.ev, g.n, 1, "MEDS_BIRTH");
    CHECK(b && b->time == t_of("2060-01-01"));
    b = find(g.ev, g.n, 2, "MEDS_BIRTH");
    CHECK(b && b->time == t_of("2060-01-01"));
    const got_event *s = find(g.ev, g.n, 1, "BP//SYS//UNK"); /* empty unit -> UNK */
    CHECK(s && s->numeric == 120.0f && s->time == t_of("2100-05-01T10:00:00"));
    s = find(g.ev, g.n, 2, "BP//SYS//mg");
    CHECK(s && s->time == t_of("2150-02-03")); /* empty 'when' falls back to 'day' */
    const got_event *d = find(g.ev, g.n, 2, "BP//DIA");
    CHECK(d && d->numeric == 85.0f);
    CHECK(find(g.ev, g.n, 1, "NAME//ann") != NULL);
    CHECK(find(g.ev, g.n, 2, "UNIT//milligram") != NULL);
    CHECK(find(g.ev, g.n, 1, "UNIT//NONE") != NULL); /* map miss -> empty -> 'empty' value */
    CHECK(find(g.ev, g.n, 1, "Y2101") != NULL);
    CHECK(find(g.ev, g.n, 1, "SEX//F")->time == TIME_NULL);
    CHECK_EQ_INT(ingest_report_total_rejected(&g.rep), 0);
    ingested_free(&g);
}

static void test_rows_accounted(void) {
    /* Row 2: good. 3: bad time. 4: subject not an integer. 5: too few fields. 6: filtered.
     * 7: bad number. 8: join miss. 9: good, numeric_invalid=text path not used.
     * Each event of a row succeeds or fails on its own (gap 8 of issue 12): row 3's bad time and
     * row 7's bad number reject their lab event only, row 8's join miss only the event that uses
     * the join; rows 4 and 5 have no subject (or no shape) and are rejected whole. */
    write_text("labs.csv",
               "sid,t,item,val,adm\n"
               "1,2100-01-01 08:00:00,A,1.5,10\n"
               "1,not-a-time,A,2,10\n"
               "x1,2100-01-01 09:00:00,A,3,10\n"
               "1,2100-01-01 10:00:00,A\n"
               "2,2100-01-02 10:00:00,SKIP,4,11\n"
               "2,2100-01-02 11:00:00,A,four,11\n"
               "2,2100-01-02 12:00:00,A,5,99\n"
               "3,\"2100-01-03 12:00:00\",\"A\",\"6\",11\n");
    write_text("adm.csv", "adm,disch\n10,2100-01-05 00:00:00\n11,2100-01-06 00:00:00\n");
    const char *map =
        "[dictionary adm]\nfile = adm.csv\nkey = adm\ncolumns = disch\n"
        "[table labs]\nfile = labs.csv\nsubject = sid\njoin = adm on adm\n"
        "[event labs/lab]\nwhere = item != SKIP\ncode = LAB//{item}\ntime = {t}\nnumeric = {val}\n"
        "[event labs/discharge_seen]\nwhere = item != SKIP\ncode = SEEN\ntime = {adm.disch}\n";
    ingested g;
    REQUIRE(ingest_ok(map, &g));
    REQUIRE_EQ_INT(g.rep.n_src, 1);
    ingest_source_stats *st = &g.rep.src[0];
    CHECK_EQ_INT(st->rows, 8);
    CHECK_EQ_INT(st->rows_with_events, 5);
    CHECK_EQ_INT(st->rows_filtered, 1);
    CHECK_EQ_INT(st->rows_rejected, 2);
    CHECK_EQ_INT(st->rows, st->rows_with_events + st->rows_filtered + st->rows_rejected);
    CHECK_EQ_INT(st->events, 7); /* rows 2 and 9: two each; rows 3, 7, 8: one each */
    CHECK_EQ_INT(st->events_rejected, 3);
    CHECK_EQ_INT(g.n, 7);
    CHECK_EQ_INT(ingest_report_total_rejected(&g.rep), 5); /* 3 events + 2 whole rows */
    /* The admission's discharge survives its row's bad time; the lab of a join miss survives. */
    CHECK(find(g.ev, g.n, 1, "SEEN") != NULL);
    int labs_of_2 = 0;
    for (size_t i = 0; i < g.n; i++) labs_of_2 += g.ev[i].subject == 2 && !strcmp(g.ev[i].code, "LAB//A");
    CHECK_EQ_INT(labs_of_2, 1); /* row 8 (join miss), not row 7 (bad number) */
    int seen_time = 0, seen_subject = 0, seen_fields = 0, seen_number = 0, seen_join = 0;
    for (size_t i = 0; i < g.rep.n_rej; i++) {
        const char *r = g.rep.rej[i].reason, *ex = g.rep.rej[i].examples[0];
        if (strstr(r, "time '{t}' is not a valid")) seen_time = strstr(ex, "labs.csv:3") != NULL;
        if (strstr(r, "subject id is not an integer")) seen_subject = strstr(ex, "labs.csv:4") != NULL;
        if (strstr(r, "number of fields")) seen_fields = strstr(ex, "labs.csv:5") != NULL;
        if (strstr(r, "is not a number")) seen_number = strstr(ex, "labs.csv:7") != NULL;
        if (strstr(r, "no row in dictionary 'adm'")) seen_join = strstr(ex, "labs.csv:8") != NULL;
        CHECK(strstr(r, "four") == NULL && strstr(r, "not-a-time") == NULL && strstr(r, "x1") == NULL);
    }
    CHECK(seen_time && seen_subject && seen_fields && seen_number && seen_join);
    const got_event *e = find(g.ev, g.n, 3, "LAB//A");
    CHECK(e && e->numeric == 6.0f);
    e = find(g.ev, g.n, 1, "SEEN");
    CHECK(e && e->time == t_of("2100-01-05"));
    ingested_free(&g);

    /* --strict: the first rejection is fatal and names file:line. */
    check_ingest_fails(map, 1, "labs.csv:3", "--strict");
}

static void test_numeric_invalid_and_text(void) {
    write_text("obs.csv", "sid,t,v\n1,2100-01-01,12\n1,2100-01-02,POS\n1,2100-01-03,\n");
    const char *map =
        "[table obs]\nfile = obs.csv\nsubject = sid\n"
        "[event obs/o]\ncode = O\ntime = {t}\nnumeric = {v}\nnumeric_invalid = text\n"
        "[event obs/p]\ncode = P\ntime = {t}\nnumeric = {v}\ntext = {v}\ntext_if_no_numeric = yes\nnumeric_invalid = ignore\n";
    ingested g;
    REQUIRE(ingest_ok(map, &g));
    CHECK_EQ_INT(g.n, 6);
    int pos_text = 0, num12 = 0, empty_none = 0;
    for (size_t i = 0; i < g.n; i++) {
        if (!strcmp(g.ev[i].code, "O") && !strcmp(g.ev[i].text, "POS") && isnan(g.ev[i].numeric)) pos_text++;
        if (!strcmp(g.ev[i].code, "P") && !strcmp(g.ev[i].text, "POS")) pos_text++;
        if (g.ev[i].numeric == 12.0f && g.ev[i].text[0] == '\0') num12++;
        if (g.ev[i].time == t_of("2100-01-03") && isnan(g.ev[i].numeric) && !g.ev[i].text[0]) empty_none++;
    }
    CHECK_EQ_INT(pos_text, 2);
    CHECK_EQ_INT(num12, 2);
    CHECK_EQ_INT(empty_none, 2);
    ingested_free(&g);
}

static void test_string_subjects_and_conditions(void) {
    write_text("p.csv", "mrn,kind,code\nA-1,x,1\nB-2,y,2\nA-1,z,3\n,x,4\n");
    write_text("allowed.csv", "k,v\n1,one\n3,three\n");
    const char *map =
        "[dictionary allowed]\nfile = allowed.csv\nkey = k\nvalue = v\n"
        "[table p]\nfile = p.csv\nsubject = mrn\nsubject_type = string\n"
        "[event p/in]\nwhere = code in allowed\nwhere = kind in (x, z)\ncode = IN//{code|map:allowed}\n"
        "[event p/out]\nwhere = code not in allowed\nwhere = kind not in (x)\ncode = OUT//{code}\n";
    ingested g;
    REQUIRE(ingest_ok(map, &g));
    CHECK_EQ_INT(g.n, 3);
    CHECK_EQ_INT(g.rep.src[0].rows_rejected, 1); /* empty subject */
    int64_t a = -1, b = -1;
    for (size_t i = 0; i < g.n; i++) {
        if (!strcmp(g.ev[i].code, "IN//one") || !strcmp(g.ev[i].code, "IN//three")) {
            if (a >= 0) CHECK(a == g.ev[i].subject); /* both A-1 rows: one subject */
            a = g.ev[i].subject;
        }
        if (!strcmp(g.ev[i].code, "OUT//2")) b = g.ev[i].subject;
    }
    CHECK(a > 0 && b > 0 && a != b);
    ingested_free(&g);
}

static void test_missing_column_is_fatal(void) {
    write_text("q.csv", "sid,t\n1,2100-01-01\n");
    check_ingest_fails("[table q]\nfile = q.csv\nsubject = sid\n[event q/e]\ncode = {nope}\ntime = {t}\n", 0,
                       "column 'nope' is not in the header of", "m.map:5");
    check_ingest_fails("[table q]\nfile = missing.csv\nsubject = sid\n[event q/e]\ncode = X\n", 0, "missing.csv",
                       NULL);
    check_ingest_fails("[table q]\nfile = q.csv\nsubject = who\n[event q/e]\ncode = X\n", 0,
                       "subject column 'who'", NULL);
}

static void test_aliases_optional_joins_and_dictionary_filters(void) {
    /* Upper-case headers read by lower-case names; one dictionary joined twice under aliases;
     * an optional join that misses leaves fields empty; a dictionary `where` drops rows. */
    write_text("M.csv", "PID,ITEM,UNIT,V\n1,100,200,5\n1,100,0,6\n1,999,200,7\n");
    write_text("concept.csv", "id,code\n0,none\n100,GLU\n200,mg/dL\n");
    const char *map =
        "[dictionary concept]\nfile = concept.csv\nkey = id\nvalue = code\nwhere = id != 0\n"
        "[dictionary absent]\nfile = nowhere.csv\nkey = k\nvalue = v\noptional = yes\n"
        "[table m]\nfile = M.csv\nsubject = pid\n"
        "join = concept on item\njoin_optional = concept as unit on unit\njoin_optional = absent on item\n"
        "[event m/e]\nwhere = item in concept\ncode = {concept.code}//{unit.code}\nnumeric = {v}\n"
        "[event m/x]\nwhere = item not in concept\ncode = RAW//{item}//{absent.v}\n";
    ingested g;
    REQUIRE(ingest_ok(map, &g));
    CHECK_EQ_INT(g.n, 3);
    const got_event *e = find(g.ev, g.n, 1, "GLU//mg/dL");
    CHECK(e && e->numeric == 5.0f);
    e = find(g.ev, g.n, 1, "GLU//UNK"); /* unit 0 is filtered out of the dictionary: a miss */
    CHECK(e && e->numeric == 6.0f);
    CHECK(find(g.ev, g.n, 1, "RAW//999//UNK") != NULL);
    CHECK_EQ_INT(ingest_report_total_rejected(&g.rep), 0);
    ingested_free(&g);
    /* Joining the same dictionary twice without an alias is a mapping error. */
    mapping m;
    cf_err err;
    CHECK(load("[dictionary c]\nfile=a\nkey=k\nvalue=v\n[table t]\nfile=a\nsubject=id\njoin = c on x\njoin = c on y\n"
               "[event t/e]\ncode=X\n", &m, &err) == CF_EINPUT);
    CHECK_CONTAINS(err.msg, "joined twice");
    /* A mandatory dictionary file that is missing is an error naming it. */
    check_ingest_fails("[dictionary c]\nfile = gone.csv\nkey = k\nvalue = v\n[table m]\nfile = M.csv\nsubject = PID\n"
                       "join = c on ITEM\n[event m/e]\ncode = {c.v}\n", 0, "gone.csv", NULL);
}

static void test_time_parsing(void) {
    int64_t t;
    int z;
    CHECK(time_parse_iso("1970-01-01", 10, &t, &z) == 0 && t == 0 && z == 0);
    CHECK(time_parse_iso("1970-01-02T00:00:01Z", 20, &t, &z) == 0 && t == 86401LL * 1000000 && z == 1);
    CHECK(time_parse_iso("2000-02-29 12:30:00.5", 21, &t, NULL) == 0);
    char buf[40];
    CHECK_EQ_STR(time_format_iso(t, buf, sizeof buf), "2000-02-29T12:30:00.500000");
    CHECK(time_parse_iso("2001-02-29", 10, &t, NULL) == -1); /* not a leap year */
    CHECK(time_parse_iso("2000-13-01", 10, &t, NULL) == -1);
    CHECK(time_parse_iso("2000-01-01 25:00", 16, &t, NULL) == -1);
    CHECK(time_parse_iso("2000-01-01x", 11, &t, NULL) == -1);
    CHECK(time_parse_iso("", 0, &t, NULL) == -1);
    CHECK(time_parse_iso("2020-06-01T10:00:00+02:00", 25, &t, &z) == 0 && z == 1);
    CHECK_EQ_STR(time_format_iso(t, buf, sizeof buf), "2020-06-01T08:00:00");
    CHECK(time_parse_iso("1850-03-04", 10, &t, NULL) == 0 && t < 0);
    CHECK_EQ_STR(time_format_iso(t, buf, sizeof buf), "1850-03-04T00:00:00");
    CHECK(time_parse_format("03/04/2100 07:08", 16, "%m/%d/%Y %H:%M", &t) == 0);
    CHECK_EQ_STR(time_format_iso(t, buf, sizeof buf), "2100-03-04T07:08:00");
    CHECK(time_parse_format("03/04/2100", 10, "%m/%d/%Y %H:%M", &t) == -1);
    CHECK(time_parse_format("3/4/2100", 8, "%m/%d/%Y", &t) == 0); /* leading zeros optional */
    CHECK_EQ_STR(time_format_iso(t, buf, sizeof buf), "2100-03-04T00:00:00");
    /* Round trip across 400 years, day by day, through civil dates. */
    int bad = 0;
    for (int64_t d = -80000; d < 80000 && !bad; d += 7) {
        int64_t y;
        unsigned m, dd;
        civil_from_days(d, &y, &m, &dd);
        bad = days_from_civil(y, m, dd) != d;
    }
    CHECK(!bad);
}

int main(void) {
    snprintf(dir, sizeof dir, "%s", check_tmpdir());
    RUN(test_mapping_errors);
    RUN(test_templates_and_filters);
    RUN(test_rows_accounted);
    RUN(test_numeric_invalid_and_text);
    RUN(test_string_subjects_and_conditions);
    RUN(test_missing_column_is_fatal);
    RUN(test_aliases_optional_joins_and_dictionary_filters);
    RUN(test_time_parsing);
    return check_summary();
}
