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
/* Threads and chunk size every ingest below uses (main runs the engine tests again with tiny
 * chunks on several threads: the results must not change). */
static int opt_threads;
static size_t opt_chunk;

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
        {"[dictionary a]\nfile=x\nkey=k\nvalue=v\n[dictionary d]\nfile = x\nkey = {k|map:a}\nvalue = v\n[table t]\nfile=a\n"
         "subject=id\n[event t/e]\ncode=X\n", ":5: [dictionary d]: map: is not available"},
        {"[table t]\nfile=a\nsubject=id\nseparator = ab\n", ":4: separator must be one character"},
        {"[table t]\nfile=a\nsubject=id\n[event t/e]\ncode=X\nonce = some per {k}\n", ":6: once expects"},
        {"[table t]\nfile=a\nsubject=id\n[event t/e]\ncode=X\nunpivot = A ..\n", ":6: unpivot expects"},
        {"[table t]\nfile=a\nsubject=id\n[event t/e]\ncode=X\ndate_only = late\n", ":6: date_only must be"},
        {"[table t]\nfile=a\nsubject=id\n[event t/e]\ncode=X\ntime_format = %s\ntime={t}\ntime_anchor=2100-01-01\n",
         "takes no time_anchor"},
        {"[variables]\ndata = x\n", ":2: variable names are"},
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
    mapped_csv_options opt = {.threads = opt_threads, .chunk_bytes = opt_chunk};
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


/* ---------------------------------------------------------------- issue 12: one test per gap */

/* Counts the events of a subject with a code. */
static int count_code(const ingested *g, int64_t subject, const char *code) {
    int n = 0;
    for (size_t i = 0; i < g->n; i++) n += g->ev[i].subject == subject && !strcmp(g->ev[i].code, code);
    return n;
}

static int has_reason(const ingest_report *rep, const char *part) {
    for (size_t i = 0; i < rep->n_rej; i++)
        if (strstr(rep->rej[i].reason, part)) return 1;
    return 0;
}

/* Gap 1: times as offsets (minutes, hours, days, HH:MM, seconds since 1970) from an anchor that
 * is a constant, a column or a joined column. */
static void test_gap01_relative_times(void) {
    write_text("rel_stays.csv", "stay,intime\n10,2100-02-01 06:00:00\n");
    write_text("rel.csv",
               "sid,stay,off_min,off_h,off_d,hhmm,epoch,admit,adm2\n"
               "1,10,-30,1.5,2,49:15,86400,2100-03-01 08:00:00,01/03/2100\n"
               "2,10,abc,0,0,-01:30,1.5,2100-03-01 08:00:00,01/03/2100\n");
    const char *map =
        "[dictionary stays]\nfile = rel_stays.csv\nkey = stay\ncolumns = intime\n"
        "[table rel]\nfile = rel.csv\nsubject = sid\njoin = stays on stay\n"
        "[event rel/minutes]\ncode = MIN\ntime = {off_min}\ntime_offset = minutes\ntime_anchor = 2100-01-01\n"
        "[event rel/hours]\ncode = HOURS\ntime = {off_h}\ntime_offset = hours\ntime_anchor = {admit}\n"
        "[event rel/days]\ncode = DAYS\ntime = {off_d}\ntime_offset = days\ntime_anchor = {stays.intime}\n"
        "[event rel/day_end]\ncode = DAY_END\ntime = {off_d}\ntime_offset = days\ndate_only = end\ntime_anchor = 2100-01-01\n"
        "[event rel/hhmm]\ncode = HHMM\ntime = {hhmm}\ntime_offset = hh:mm\ntime_anchor = 2100-01-01T00:00:00\n"
        "[event rel/epoch]\ncode = EPOCH\ntime = {epoch}\ntime_format = %s\n"
        "[event rel/fmt]\ncode = FMT\ntime = {off_h}\ntime_offset = hours\ntime_anchor = {adm2}\nanchor_format = %d/%m/%Y\n";
    ingested g;
    REQUIRE(ingest_ok(map, &g));
    const struct {
        int64_t sid;
        const char *code, *when;
    } want[] = {{1, "MIN", "2099-12-31T23:30:00"},  {1, "HOURS", "2100-03-01T09:30:00"},
                {1, "DAYS", "2100-02-03T06:00:00"}, {1, "DAY_END", "2100-01-03T23:59:59"},
                {1, "HHMM", "2100-01-03T01:15:00"}, {1, "EPOCH", "1970-01-02T00:00:00"},
                {1, "FMT", "2100-03-01T01:30:00"},  {2, "HHMM", "2099-12-31T22:30:00"},
                {2, "EPOCH", "1970-01-01T00:00:01.5"}, {2, "DAY_END", "2100-01-01T23:59:59"},
                {2, "HOURS", "2100-03-01T08:00:00"}};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const got_event *e = find(g.ev, g.n, want[i].sid, want[i].code);
        if (!e || e->time != t_of(want[i].when))
            CHECK_FAIL_("subject %lld %s: expected at %s", (long long)want[i].sid, want[i].code, want[i].when);
    }
    CHECK(find(g.ev, g.n, 2, "MIN") == NULL); /* "abc" minutes: that event alone is rejected */
    CHECK(has_reason(&g.rep, "event rel/minutes: time '{off_min}' is not a number"));
    CHECK_EQ_INT(g.n, 13);
    ingested_free(&g);
    /* An offset without an anchor, or an anchor that is not a time, is a mapping error. */
    mapping m;
    cf_err err;
    CHECK(load("[table t]\nfile=a\nsubject=id\n[event t/e]\ncode=X\ntime={t}\ntime_offset=hours\n", &m, &err) == CF_EINPUT);
    CHECK_CONTAINS(err.msg, "time_offset needs `time_anchor =`");
    CHECK(load("[table t]\nfile=a\nsubject=id\n[event t/e]\ncode=X\ntime={t}\ntime_offset=hours\ntime_anchor=soon\n", &m,
               &err) == CF_EINPUT);
    CHECK_CONTAINS(err.msg, "time_anchor 'soon' is not a valid");
    CHECK(load("[table t]\nfile=a\nsubject=id\n[event t/e]\ncode=X\ntime={t}\ntime_offset=fortnights\n", &m, &err) == CF_EINPUT);
    CHECK_CONTAINS(err.msg, ":7: time_offset must be");
}

/* Gap 2: arithmetic with constants and with columns of joined dictionaries; decimals. */
static void test_gap02_arithmetic(void) {
    write_text("ar_hosp.csv", "hosp,year\n7,2014\n");
    write_text("ar.csv", "id,age,hosp\n1,54,7\n2,,7\n");
    const char *map =
        "[dictionary hosp]\nfile = ar_hosp.csv\nkey = hosp\ncolumns = year\n"
        "[table ar]\nfile = ar.csv\nsubject = id\njoin = hosp on hosp\n"
        "[event ar/by]\ncode = BY//{const:2014|minus:age}\n"
        "[event ar/by2]\ncode = B2//{hosp.year|minus:age}\n"
        "[event ar/plus]\ncode = P//{age|plus:hosp.year}\n"
        "[event ar/times]\ncode = T//{age|times:1.5}\n"
        "[event ar/div]\ncode = D//{age|div:4}\n";
    ingested g;
    REQUIRE(ingest_ok(map, &g));
    const char *codes1[] = {"BY//1960", "B2//1960", "P//2068", "T//81", "D//13.5"};
    for (size_t i = 0; i < 5; i++)
        if (!find(g.ev, g.n, 1, codes1[i])) CHECK_FAIL_("missing %s", codes1[i]);
    /* An unknown (empty) age makes every result unknown: empty, then the `empty` value. */
    CHECK_EQ_INT(count_code(&g, 2, "BY//UNK") + count_code(&g, 2, "B2//UNK") + count_code(&g, 2, "P//UNK"), 3);
    ingested_free(&g);
}

/* Gap 3: the subject through a join (unit stay -> patient): one patient's stays are one subject. */
static void test_gap03_subject_through_join(void) {
    write_text("sj_stays.csv", "stay,patient\n100,7\n101,7\n102,8\n");
    write_text("sj_vitals.csv", "stay,hr\n100,80\n101,90\n102,70\n103,60\n");
    const char *map =
        "[dictionary stays]\nfile = sj_stays.csv\nkey = stay\ncolumns = patient\n"
        "[table vitals]\nfile = sj_vitals.csv\nsubject = {stays.patient}\njoin = stays on stay\n"
        "[event vitals/hr]\ncode = HR\nnumeric = {hr}\n";
    ingested g;
    REQUIRE(ingest_ok(map, &g));
    CHECK_EQ_INT(count_code(&g, 7, "HR"), 2);
    CHECK_EQ_INT(count_code(&g, 8, "HR"), 1);
    CHECK_EQ_INT(g.rep.src[0].rows_rejected, 1); /* stay 103 has no patient: no subject */
    CHECK(has_reason(&g.rep, "no row in dictionary 'stays'"));
    ingested_free(&g);
    /* String patient ids through the join, and a `once = last` event of such a subject. */
    write_text("sj_stays2.csv", "stay,patient\n100,002-7\n101,002-7\n102,002-8\n");
    const char *map2 =
        "[dictionary stays]\nfile = sj_stays2.csv\nkey = stay\ncolumns = patient\n"
        "[table vitals]\nfile = sj_vitals.csv\nsubject = {stays.patient}\nsubject_type = string\njoin = stays on stay\n"
        "may_be_empty = yes\n"
        "[event vitals/hr]\ncode = HR\nnumeric = {hr}\n"
        "[event vitals/last]\nonce = last per {stays.patient}\ncode = LAST\nnumeric = {hr}\n";
    REQUIRE(ingest_ok(map2, &g));
    int64_t s7 = -1, s8 = -1;
    int same = 1;
    for (size_t i = 0; i < g.n; i++) {
        if (!strcmp(g.ev[i].code, "HR") && (g.ev[i].numeric == 80.0f || g.ev[i].numeric == 90.0f)) {
            if (s7 >= 0 && s7 != g.ev[i].subject) same = 0;
            s7 = g.ev[i].subject;
        }
        if (!strcmp(g.ev[i].code, "HR") && g.ev[i].numeric == 70.0f) s8 = g.ev[i].subject;
    }
    CHECK(same && s7 >= 0 && s8 >= 0 && s7 != s8);
    const got_event *last = find(g.ev, g.n, s7, "LAST");
    CHECK(last && last->numeric == 90.0f);
    CHECK_EQ_INT(count_code(&g, s8, "LAST"), 1);
    ingested_free(&g);
}

/* Gap 4: facts repeated on every row of a group, once per group (first or last row). */
static void test_gap04_once_per_group(void) {
    write_text("op_units.csv",
               "unitstay,hospstay,pid,hospital,t\n"
               "1,50,9,H1,2100-01-01 10:00:00\n"
               "2,50,9,H1,2100-01-02 10:00:00\n"
               "3,51,9,H2,2100-02-01 10:00:00\n");
    write_text("op_g.csv", "g,pid,t\n60,9,\n60,9,2100-01-05\n60,9,2100-01-06\n");
    const char *map =
        "[table units]\nfile = op_units.csv\nsubject = pid\n"
        "[event units/hospital]\nonce = first per {hospstay}\ncode = HOSPITAL//{hospital}\ntime = {t}\n"
        "[event units/last_unit]\nonce = last per {hospstay}\ncode = LAST//{unitstay}\ntime = {t}\n"
        "[table g]\nfile = op_g.csv\nsubject = pid\n"
        "[event g/first_ok]\nonce = first per {g}\ncode = G\ntime = {t}\n";
    ingested g;
    REQUIRE(ingest_ok(map, &g));
    CHECK_EQ_INT(count_code(&g, 9, "HOSPITAL//H1"), 1);
    CHECK_EQ_INT(count_code(&g, 9, "HOSPITAL//H2"), 1);
    const got_event *e = find(g.ev, g.n, 9, "HOSPITAL//H1");
    CHECK(e && e->time == t_of("2100-01-01T10:00:00"));
    CHECK(find(g.ev, g.n, 9, "LAST//2") && find(g.ev, g.n, 9, "LAST//3") && !find(g.ev, g.n, 9, "LAST//1"));
    /* A group's first row whose event fails leaves the group to the next row. */
    CHECK_EQ_INT(count_code(&g, 9, "G"), 1);
    e = find(g.ev, g.n, 9, "G");
    CHECK(e && e->time == t_of("2100-01-05"));
    CHECK_EQ_INT(g.rep.src[0].events, 4);
    ingested_free(&g);
}

/* Gap 5: a condition's left side may combine fields; a bad condition says what is supported. */
static void test_gap05_composite_keys(void) {
    write_text("ck_dx.csv", "sid,ver,code\n1,9,4019\n1,10,I10\n1,9,9999\n");
    write_text("ck_known.csv", "key,label\n9//4019,hypertension\n10//I10,hypertension\n");
    const char *map =
        "[dictionary known]\nfile = ck_known.csv\nkey = key\ncolumns = label\n"
        "[table dx]\nfile = ck_dx.csv\nsubject = sid\n"
        "[event dx/known]\nwhere = {ver}//{code} in known\ncode = DX//{ver}//{code}\n"
        "[event dx/unknown]\nwhere = {ver}{code} not in known\ncode = OTHER//{ver}{code}\n";
    ingested g;
    REQUIRE(ingest_ok(map, &g));
    CHECK(find(g.ev, g.n, 1, "DX//9//4019") && find(g.ev, g.n, 1, "DX//10//I10") && !find(g.ev, g.n, 1, "DX//9//9999"));
    CHECK_EQ_INT(count_code(&g, 1, "OTHER//99999"), 1);
    CHECK_EQ_INT(count_code(&g, 1, "OTHER//94019"), 1);
    ingested_free(&g);
    mapping m;
    cf_err err;
    CHECK(load("[table t]\nfile=a\nsubject=id\n[event t/e]\ncode=X\nwhere = {a}{b} like x\n", &m, &err) == CF_EINPUT);
    CHECK_CONTAINS(err.msg, ":6: where: expected a column or a {template} followed by ==");
    CHECK_CONTAINS(err.msg, "in DICTIONARY");
    CHECK_CONTAINS(err.msg, "matches REGEX");
}

/* Gap 6: a replace filter, and prefix and regular-expression conditions (ICD-9 and ICD-10 codes
 * in one column). */
static void test_gap06_replace_prefix_regex(void) {
    write_text("rx.csv", "sid,code\n1,401.9\n1,I10\n1,E11.9\n1,250.00\n");
    const char *map =
        "[table rx]\nfile = rx.csv\nsubject = sid\n"
        "[event rx/icd10]\nwhere = code matches \"^[A-Z][0-9]\"\ncode = ICD10//{code|replace:.:}\n"
        "[event rx/icd9]\nwhere = code not matches ^[A-Z]\ncode = ICD9//{code|replace:.:}\n"
        "[event rx/endocrine]\nwhere = code starts with E\ncode = E\n"
        "[event rx/not_endocrine]\nwhere = code not starts with E\ncode = NOT_E\n"
        "[event rx/swap]\ncode = S//{code|replace:0:zero}\n";
    ingested g;
    REQUIRE(ingest_ok(map, &g));
    const char *want[] = {"ICD10//I10", "ICD10//E119", "ICD9//4019", "ICD9//25000", "S//4zero1.9", "S//25zero.zerozero"};
    for (size_t i = 0; i < 6; i++)
        if (count_code(&g, 1, want[i]) != 1) CHECK_FAIL_("expected one %s", want[i]);
    CHECK_EQ_INT(count_code(&g, 1, "E"), 1);
    CHECK_EQ_INT(count_code(&g, 1, "NOT_E"), 3);
    ingested_free(&g);
    mapping m;
    cf_err err;
    CHECK(load("[table t]\nfile=a\nsubject=id\n[event t/e]\ncode=X\nwhere = c matches \"(unclosed\"\n", &m, &err) == CF_EINPUT);
    CHECK_CONTAINS(err.msg, ":6: where: regular expression:");
    CHECK(load("[table t]\nfile=a\nsubject=id\n[event t/e]\ncode={c|replace::x}\n", &m, &err) == CF_EINPUT);
    CHECK_CONTAINS(err.msg, "replace expects replace:OLD:NEW");
}

/* Gap 7: `in (...)` values may contain commas inside quotes. */
static void test_gap07_in_list_quotes(void) {
    write_text("iq.csv", "sid,place\n1,\"Home, with services\"\n1,Home\n1,Other\n");
    const char *map =
        "[table iq]\nfile = iq.csv\nsubject = sid\n"
        "[event iq/in]\nwhere = place in (\"Home, with services\", Hospice)\ncode = IN//{place}\n"
        "[event iq/out]\nwhere = place not in (\"Home, with services\", Other)\ncode = OUT//{place}\n";
    ingested g;
    REQUIRE(ingest_ok(map, &g));
    CHECK_EQ_INT(count_code(&g, 1, "IN//Home, with services"), 1);
    CHECK_EQ_INT(g.n, 2);
    CHECK_EQ_INT(count_code(&g, 1, "OUT//Home"), 1);
    ingested_free(&g);
}

/* Gap 8: one fragile field ("> 89" in minus:) rejects its own event, not the admission and the
 * death of the same row. */
static void test_gap08_events_fail_alone(void) {
    write_text("fa.csv", "sid,age,year,admit,death\n1,> 89,2150,2150-01-01 00:00,2150-01-05 00:00\n"
                         "2,70,2150,2150-02-01 00:00,\n");
    const char *map =
        "[table fa]\nfile = fa.csv\nsubject = sid\n"
        "[event fa/birth]\ncode = MEDS_BIRTH\ntime = {year|minus:age}-01-01\n"
        "[event fa/admit]\ncode = ADMIT\ntime = {admit}\n"
        "[event fa/death]\nwhere = death is not empty\ncode = MEDS_DEATH\ntime = {death}\n";
    ingested g;
    REQUIRE(ingest_ok(map, &g));
    CHECK(find(g.ev, g.n, 1, "ADMIT") && find(g.ev, g.n, 1, "MEDS_DEATH") && !find(g.ev, g.n, 1, "MEDS_BIRTH"));
    const got_event *b = find(g.ev, g.n, 2, "MEDS_BIRTH");
    CHECK(b && b->time == t_of("2080-01-01"));
    CHECK_EQ_INT(g.rep.src[0].rows_with_events, 2);
    CHECK_EQ_INT(g.rep.src[0].rows_rejected, 0);
    CHECK_EQ_INT(g.rep.src[0].events_rejected, 1);
    CHECK(has_reason(&g.rep, "event fa/birth: 'age' is not a number (needed by minus)"));
    ingested_free(&g);
}

/* Gap 9: numeric comparisons, and sentinel values declared as missing markers. */
static void test_gap09_numbers_and_sentinels(void) {
    write_text("ns.csv", "sid,v,w\n1,9,-1\n1,10,5\n1,abc,-1\n1,,7\n1,1e2, -1 \n");
    const char *map =
        "[table ns]\nfile = ns.csv\nsubject = sid\nmissing = -1\n"
        "[event ns/big]\nwhere = v >= 10\ncode = BIG//{v}\n"
        "[event ns/small]\nwhere = v < 10\ncode = SMALL//{v}\n"
        "[event ns/w]\nwhere = w is not empty\ncode = W\nnumeric = {w}\n"
        "[event ns/wv]\ncode = WV//{w,v}\n"
        "[event ns/own]\nmissing = 9\nwhere = v is not empty\ncode = OWN//{v}//{w}\n";
    ingested g;
    REQUIRE(ingest_ok(map, &g));
    /* "9" >= "10" as text, but not as numbers; "abc" and "" compare with nothing. */
    CHECK(find(g.ev, g.n, 1, "BIG//10") && find(g.ev, g.n, 1, "BIG//1e2") && !find(g.ev, g.n, 1, "BIG//9"));
    CHECK_EQ_INT(count_code(&g, 1, "SMALL//9"), 1);
    CHECK_EQ_INT(count_code(&g, 1, "W"), 2); /* 5 and 7; -1 (with spaces too) is missing */
    const char *wv[] = {"WV//9", "WV//5", "WV//abc", "WV//7", "WV//1e2"};
    for (size_t i = 0; i < 5; i++)
        if (count_code(&g, 1, wv[i]) != 1) CHECK_FAIL_("expected one %s", wv[i]);
    /* An event's own markers replace the table's: -1 is a value there, 9 is missing. */
    CHECK(find(g.ev, g.n, 1, "OWN//10//5") && find(g.ev, g.n, 1, "OWN//abc//-1") && !find(g.ev, g.n, 1, "OWN//9//-1"));
    ingested_free(&g);
    mapping m;
    cf_err err;
    CHECK(load("[table t]\nfile=a\nsubject=id\n[event t/e]\ncode=X\nwhere = v > ten\n", &m, &err) == CF_EINPUT);
    CHECK_CONTAINS(err.msg, "compares numbers; 'ten' is not a number");
}

/* Gap 10: a wide table unpivoted in one section: one event per measured column of a row. */
static void test_gap10_unpivot(void) {
    write_text("wide.csv", "sid,hour,HR,SBP,Temp,note\n1,1,80,NaN,,x\n1,2,NaN,NaN,NaN,y\n1,3,82,120,37.1,z\n");
    const char *map =
        "[table wide]\nfile = wide.csv\nsubject = sid\nmissing = NaN\n"
        "[event wide/v]\nunpivot = HR .. Temp\ncode = V//{_column}\nnumeric = {_value}\ntime = {hour}\n"
        "time_offset = hours\ntime_anchor = 2100-01-01\n"
        "[event wide/high]\nunpivot = HR, Temp\nwhere = {_value} > 50\ncode = HIGH//{_column}\n";
    ingested g;
    REQUIRE(ingest_ok(map, &g));
    CHECK_EQ_INT(count_code(&g, 1, "V//HR"), 2);
    CHECK_EQ_INT(count_code(&g, 1, "V//SBP"), 1);
    CHECK_EQ_INT(count_code(&g, 1, "V//Temp"), 1);
    CHECK_EQ_INT(count_code(&g, 1, "HIGH//HR"), 2);
    CHECK_EQ_INT(count_code(&g, 1, "HIGH//Temp"), 0);
    const got_event *e = find(g.ev, g.n, 1, "V//Temp");
    CHECK(e && e->time == t_of("2100-01-01T03:00:00") && fabsf(e->numeric - 37.1f) < 1e-5f);
    CHECK_EQ_INT(g.rep.src[0].rows_with_events, 2);
    CHECK_EQ_INT(g.rep.src[0].rows_filtered, 1); /* hour 2 measured nothing */
    ingested_free(&g);
    check_ingest_fails("[table wide]\nfile = wide.csv\nsubject = sid\n[event wide/v]\nunpivot = Temp .. HR\ncode = X\n", 0,
                       "'Temp' comes after 'HR'", NULL);
    check_ingest_fails("[table wide]\nfile = wide.csv\nsubject = sid\n[event wide/v]\ncode = {_value}\n", 0,
                       "{_value} is defined only in an event with `unpivot =`", NULL);
}

/* Gap 11: filters after the last alternative apply to every alternative. */
static void test_gap11_filters_each_alternative(void) {
    write_text("fb.csv", "sid,a,b\n1,,low\n1,mid,low2\n1,  ,low3\n");
    const char *map =
        "[table fb]\nfile = fb.csv\nsubject = sid\n"
        "[event fb/f]\ncode = F//{a,b|upper}\n"
        "[event fb/g]\ncode = G//{a,(b|upper)}\n"
        "[event fb/t]\ncode = T//{a,b|trim}\n";
    ingested g;
    REQUIRE(ingest_ok(map, &g));
    CHECK(find(g.ev, g.n, 1, "F//LOW") && find(g.ev, g.n, 1, "F//MID") && !find(g.ev, g.n, 1, "F//mid"));
    CHECK(find(g.ev, g.n, 1, "G//LOW") && find(g.ev, g.n, 1, "G//mid")); /* (b|upper) keeps its filter */
    CHECK(find(g.ev, g.n, 1, "T//low3")); /* "  " trims to empty and falls through to b */
    ingested_free(&g);
}

/* Gap 12: a table whose export may be absent some months. */
static void test_gap12_optional_tables(void) {
    write_text("ot.csv", "sid\n1\n");
    const char *map =
        "[table here]\nfile = ot.csv\nsubject = sid\n[event here/e]\ncode = HERE\n"
        "[table gone]\nfile = not-this-month.csv\nsubject = sid\noptional = yes\n[event gone/e]\ncode = GONE\n"
        "[table gone2]\nfile = nothing-*.csv\nsubject = sid\noptional = yes\n[event gone2/e]\ncode = GONE\n";
    ingested g;
    REQUIRE(ingest_ok(map, &g));
    CHECK_EQ_INT(g.n, 1);
    REQUIRE_EQ_INT(g.rep.n_src, 3);
    CHECK_EQ_INT(g.rep.src[1].files, 0);
    CHECK_EQ_INT(g.rep.src[1].rows, 0);
    ingested_free(&g);
    check_ingest_fails("[table gone]\nfile = not-this-month.csv\nsubject = sid\n[event gone/e]\ncode = GONE\n", 0,
                       "not-this-month.csv: cannot open", NULL);
    check_ingest_fails("[table gone]\nfile = nothing-*.csv\nsubject = sid\n[event gone/e]\ncode = GONE\n", 0,
                       "nothing-*.csv: no file matches this pattern", NULL);
}

/* Gap 13: terminology is found in the data directory ($CLINFM_DATA, written ${data}/) and next to
 * the mapping (${mapping}/); without a data directory the error says what to set. */
static void test_gap13_terminology_paths(void) {
    char data[900], old_cwd[4096], *saved = getenv("CLINFM_DATA") ? strdup(getenv("CLINFM_DATA")) : NULL;
    snprintf(data, sizeof data, "%s/td", dir);
    mkdir(data, 0755);
    char sub[960];
    snprintf(sub, sizeof sub, "%s/terminology", data);
    mkdir(sub, 0755);
    write_text("td/terminology/gem.csv", "icd9,icd10\n4019,I10\n");
    write_text("own_codes.csv", "k,v\nX,own\n");
    write_text("tp.csv", "sid,code\n1,4019\n");
    setenv("CLINFM_DATA", data, 1);
    const char *map =
        "[dictionary gem]\nfile = ${data}/terminology/gem.csv\nkey = icd9\nvalue = icd10\n"
        "[dictionary own]\nfile = ${mapping}/own_codes.csv\nkey = k\nvalue = v\n"
        "[table tp]\nfile = tp.csv\nsubject = sid\n[event tp/e]\ncode = DX//{code|map:gem}//{const:X|map:own}\n";
    ingested g;
    if (ingest_ok(map, &g)) {
        CHECK(find(g.ev, g.n, 1, "DX//I10//own") != NULL);
        ingested_free(&g);
    } else {
        CHECK_FAIL_("ingest with ${data} failed");
    }
    /* No CLINFM_DATA, and no ../shared/data from here. */
    unsetenv("CLINFM_DATA");
    REQUIRE(getcwd(old_cwd, sizeof old_cwd) != NULL);
    REQUIRE(chdir(data) == 0);
    check_ingest_fails(map, 0, "${data}/terminology/gem.csv' is in the external data directory, which is not set",
                       "set CLINFM_DATA");
    CHECK(chdir(old_cwd) == 0);
    if (saved) setenv("CLINFM_DATA", saved, 1);
    free(saved);
}

/* Gap 14: a mapping that rejects every row (a time format that never matches) is an error, not
 * an empty store, unless it says the table or event may be empty. */
static void test_gap14_all_rejected_is_an_error(void) {
    write_text("ar14.csv", "sid,t\n1,2100-01-01\n2,2100-01-02\n");
    check_ingest_fails("[table ar14]\nfile = ar14.csv\nsubject = sid\n[event ar14/e]\ncode = X\ntime = {t}\n"
                       "time_format = %d/%m/%Y\n", 0, "[event ar14/e] rejected every row it applies to (2)",
                       "ar14.csv:2");
    /* One good event does not hide a broken one. */
    check_ingest_fails("[table ar14]\nfile = ar14.csv\nsubject = sid\n[event ar14/ok]\ncode = OK\ntime = {t}\n"
                       "[event ar14/e]\ncode = X\ntime = {t}\ntime_format = %d/%m/%Y\n", 0, "[event ar14/e] rejected every row",
                       NULL);
    /* A table whose rows all lack a subject. */
    check_ingest_fails("[table ar14]\nfile = ar14.csv\nsubject = t\n[event ar14/e]\ncode = X\n", 0,
                       "[table ar14]: every row (2) was rejected", NULL);
    ingested g;
    REQUIRE(ingest_ok("[table ar14]\nfile = ar14.csv\nsubject = sid\nmay_be_empty = yes\n[event ar14/e]\ncode = X\n"
                      "time = {t}\ntime_format = %d/%m/%Y\n", &g));
    CHECK_EQ_INT(g.n, 0);
    CHECK_EQ_INT(ingest_report_total_rejected(&g.rep), 2);
    ingested_free(&g);
}

/* A folder of per-subject files: the subject from the file name or from a row; another
 * separator. */
static void test_folder_of_files(void) {
    char sub[900];
    snprintf(sub, sizeof sub, "%s/stays", dir);
    mkdir(sub, 0755);
    write_text("stays/p101.psv", "hour|HR\n1|80\n2|NaN\n");
    write_text("stays/p102.psv", "hour|HR\n1|\"9|0\"\n");
    write_text("stays/notes.txt", "not a stay\n");
    const char *map =
        "[table s]\nfile = stays/p*.psv\nseparator = |\nsubject = {_file|replace:p:}\nmissing = NaN\n"
        "[event s/hr]\nwhere = HR is not empty\ncode = HR//{_file}\ntext = {HR}\ntime = {hour}\ntime_offset = hours\n"
        "time_anchor = 2100-01-01\n";
    ingested g;
    REQUIRE(ingest_ok(map, &g));
    CHECK_EQ_INT(g.n, 2);
    CHECK(find(g.ev, g.n, 101, "HR//p101") != NULL);
    const got_event *e = find(g.ev, g.n, 102, "HR//p102");
    CHECK(e && !strcmp(e->text, "9|0")); /* quoting works with any separator */
    CHECK_EQ_INT(g.rep.src[0].files, 2);
    ingested_free(&g);
    /* The subject from a row of each file (long format with the id as one of its rows). */
    char sub2[900];
    snprintf(sub2, sizeof sub2, "%s/long", dir);
    mkdir(sub2, 0755);
    write_text("long/a.txt", "Time,Parameter,Value\n00:00,HR,70\n00:00,RecordID,555\n01:00,HR,72\n");
    write_text("long/b.txt", "Time,Parameter,Value\n00:00,HR,60\n");
    const char *map2 =
        "[table l]\nfile = long/*.txt\nsubject = {Value}\nsubject_from = Parameter == RecordID\n"
        "[event l/m]\nwhere = Parameter != RecordID\ncode = {Parameter}\nnumeric = {Value}\ntime = {Time}\n"
        "time_offset = hh:mm\ntime_anchor = 2100-01-01\n";
    REQUIRE(ingest_ok(map2, &g));
    CHECK_EQ_INT(count_code(&g, 555, "HR"), 2); /* the row before the RecordID row too */
    CHECK_EQ_INT(g.rep.src[0].rows_rejected, 1); /* b.txt has no RecordID row */
    CHECK(has_reason(&g.rep, "no row of this file gives the subject"));
    ingested_free(&g);
}

/* [variables] and --var: one mapping for files named differently (set A, set B). */
static void test_variables(void) {
    write_text("s-a.csv", "sid\n1\n");
    write_text("s-b.csv", "sid\n2\n");
    write_text("m.map", "[variables]\nset = a    # the default\n[table s]\nfile = s-${set}.csv\nsubject = sid\n"
                        "[event s/e]\ncode = SET//${set}\n");
    char path[900];
    snprintf(path, sizeof path, "%s/m.map", dir);
    mapping m;
    cf_err err = {0};
    REQUIRE(mapping_load(&m, path, &err) == CF_OK);
    CHECK_EQ_STR(m.tables[0].file, "s-a.csv");
    mapping_free(&m);
    char *vars[] = {"set=b"};
    REQUIRE(mapping_load_vars(&m, path, vars, 1, &err) == CF_OK);
    CHECK_EQ_STR(m.tables[0].file, "s-b.csv");
    CHECK_EQ_STR(m.tables[0].events[0].code.source, "SET//b");
    mapping_free(&m);
    char *bad[] = {"sett=b"};
    CHECK(mapping_load_vars(&m, path, bad, 1, &err) == CF_EINPUT);
    CHECK_CONTAINS(err.msg, "--var sett");
    CHECK(load("[table s]\nfile = s-${nope}.csv\nsubject = sid\n[event s/e]\ncode = X\n", &m, &err) == CF_EINPUT);
    CHECK_CONTAINS(err.msg, ":2: ${nope} names no variable");
}

/* Dates at the end of their day, and no later than a limit (a stay's discharge). */
static void test_date_only_and_not_after(void) {
    write_text("dn.csv", "sid,day,limit\n1,2100-01-05,2100-01-05 10:00:00\n1,2100-01-06,\n1,2100-01-07 08:00:00,\n"
                         "1,2100-01-08 00:00:00,\n");
    const char *map =
        "[table dn]\nfile = dn.csv\nsubject = sid\n"
        "[event dn/e]\ncode = E\ntime = {day}\ndate_only = end\ntime_not_after = {limit}\n"
        "[event dn/d]\ncode = D\ntime = {(day|date)}\ndate_only = end\n";
    ingested g;
    REQUIRE(ingest_ok(map, &g));
    int64_t want[] = {t_of("2100-01-05T10:00:00"), t_of("2100-01-06T23:59:59"), t_of("2100-01-07T08:00:00"),
                      t_of("2100-01-08T00:00:00")};
    for (size_t k = 0; k < 4; k++) {
        int seen = 0;
        for (size_t i = 0; i < g.n; i++) seen += !strcmp(g.ev[i].code, "E") && g.ev[i].time == want[k];
        if (seen != 1) CHECK_FAIL_("E at expected time %zu", k);
    }
    /* The date filter turns a date written with a midnight time into a date. */
    int late = 0;
    for (size_t i = 0; i < g.n; i++) late += !strcmp(g.ev[i].code, "D") && g.ev[i].time == t_of("2100-01-08T23:59:59");
    CHECK_EQ_INT(late, 1);
    ingested_free(&g);
}


/* ---- parallel ingest: chunks mapped on several threads ---- */

/* Ingests map_text into dir/name with the given threads and chunk size; returns the status, the
 * store's bytes in *bytes (malloc'd) and the report as JSON in *report. */
static int ingest_bytes(const char *map_text, const char *name, int threads, size_t chunk, int strict, char **bytes,
                        size_t *len, char **report, cf_err *err) {
    *bytes = *report = NULL;
    *len = 0;
    mapping m;
    int rc = load(map_text, &m, err);
    if (rc) return rc;
    char path[900];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    unlink(path);
    ingest_report rep;
    ingest_report_init(&rep, strict);
    store_writer *w;
    if ((rc = store_writer_open(&w, path, NULL, err))) {
        mapping_free(&m);
        ingest_report_free(&rep);
        return rc;
    }
    mapped_csv_options opt = {.threads = threads, .chunk_bytes = chunk};
    rc = mapped_csv_ingest(&m, dir, w, &rep, &opt, err);
    mapping_free(&m);
    if (rc) store_writer_abort(w);
    else rc = store_writer_finish(w, err);
    if (!rc) {
        *report = ingest_report_json(&rep);
        FILE *f = fopen(path, "rb");
        if (f) {
            fseek(f, 0, SEEK_END);
            *len = (size_t)ftell(f);
            fseek(f, 0, SEEK_SET);
            *bytes = malloc(*len ? *len : 1);
            if (fread(*bytes, 1, *len, f) != *len) *len = 0;
            fclose(f);
        }
    }
    ingest_report_free(&rep);
    return rc;
}

/* A table of n rows (fictional) whose notes hold quoted commas, doubled quotes and line ends
 * (LF and CRLF), with CRLF and LF row ends, a byte-order mark, blank lines, and rows that are
 * rejected (a bad time every 97th, a missing field every 101st). *good counts the rows that make
 * an event, *lines the physical lines written. */
static char *parallel_table(int n, int *good, int *lines, int *first_bad) {
    size_t cap = (size_t)n * 96 + 256, len = 0;
    char *t = malloc(cap);
    len += (size_t)snprintf(t + len, cap - len, "\xEF\xBB\xBFsid,t,item,val,note\n");
    *good = *first_bad = 0;
    *lines = 1;
    for (int i = 0; i < n; i++) {
        const char *end = i % 5 == 0 ? "\r\n" : "\n";
        if (i % 211 == 0) len += (size_t)snprintf(t + len, cap - len, "\n"), ++*lines;
        if (i % 101 == 100) {
            len += (size_t)snprintf(t + len, cap - len, "%d,2100-01-01 00:00:00,A%s", i, end);
        } else {
            int bad = i % 97 == 96;
            if (bad && !*first_bad) *first_bad = *lines + 1;
            const char *note = i % 3 == 0 ? "\"line one\nline two, \"\"quoted\"\"\r\nthree\"" : i % 3 == 1 ? "plain" : "\"a,b\"";
            len += (size_t)snprintf(t + len, cap - len, "%d,%s2100-01-%02d %02d:%02d:00,B%d,%d.5,%s%s", i % 50,
                                    bad ? "x" : "", 1 + i % 28, i % 24, i % 60, i % 7, i, note, end);
            *good += !bad;
            if (i % 3 == 0) *lines += 2;
        }
        ++*lines;
    }
    t[len] = '\0';
    return t;
}

static const char *parallel_map =
    "[table labs]\nfile = labs.csv\nsubject = sid\n"
    "[event labs/lab]\ncode = LAB//{item}\ntime = {t}\nnumeric = {val}\ntext = {note}\n";

static void test_parallel_identical(void) {
    int good, lines, first_bad;
    char *t = parallel_table(3000, &good, &lines, &first_bad);
    write_text("labs.csv", t);
    free(t);
    char *ref, *ref_rep;
    size_t ref_len;
    cf_err err;
    memset(&err, 0, sizeof err);
    REQUIRE(ingest_bytes(parallel_map, "ref.store", 1, (size_t)1 << 30, 0, &ref, &ref_len, &ref_rep, &err) == CF_OK);
    /* The reference itself is right: one event per good row (counted by the generator), and a
     * note with quoted line ends kept whole. */
    store s;
    char path[900];
    snprintf(path, sizeof path, "%s/ref.store", dir);
    REQUIRE(store_open(&s, path, &err) == CF_OK);
    CHECK_EQ_INT(s.n_events, good);
    int whole = 0;
    const char *note = "line one\nline two, \"quoted\"\r\nthree";
    for (uint64_t i = 0; i < s.n_events; i++) {
        size_t n;
        const char *x = s.text[i] ? store_text_str(&s, s.text[i], &n) : NULL;
        whole += x && n == strlen(note) && !memcmp(x, note, n);
    }
    CHECK(whole > 900);
    store_close(&s);
    char at[64];
    snprintf(at, sizeof at, "labs.csv:%d\"", first_bad); /* the first bad time's line, as the generator counted */
    CHECK(strstr(ref_rep, at) != NULL);
    const struct { int threads; size_t chunk; } runs[] = {{1, 1}, {1, 7}, {2, 1}, {3, 7}, {4, 64}, {2, 4096}, {0, 0}};
    for (size_t k = 0; k < sizeof runs / sizeof runs[0]; k++) {
        char *b, *rj;
        size_t len;
        int rc = ingest_bytes(parallel_map, "par.store", runs[k].threads, runs[k].chunk, 0, &b, &len, &rj, &err);
        CHECK_EQ_INT(rc, CF_OK);
        if (rc) {
            fprintf(stderr, "threads %d chunk %zu: %s\n", runs[k].threads, runs[k].chunk, err.msg);
            continue;
        }
        if (len != ref_len || memcmp(b, ref, len)) CHECK_FAIL_("threads %d, chunk %zu: store differs", runs[k].threads, runs[k].chunk);
        if (strcmp(rj, ref_rep)) CHECK_FAIL_("threads %d, chunk %zu: report differs", runs[k].threads, runs[k].chunk);
        free(b);
        free(rj);
    }
    free(ref);
    free(ref_rep);
}

/* An error in a late chunk stops the ingest with the line the sequential reading names. */
static void test_parallel_late_errors(void) {
    int good, lines, first_bad;
    char *t = parallel_table(1200, &good, &lines, &first_bad);
    size_t n = strlen(t);
    t = realloc(t, n + 256);
    int bad_line = lines + 1;
    /* a malformed CSV row near the end, then more good rows */
    snprintf(t + n, 256, "7,\"2100-01-01 00:00:00\"x,A,1,z\n8,2100-01-01 00:00:00,A,1,z\n");
    write_text("labs.csv", t);
    char want[64];
    snprintf(want, sizeof want, "labs.csv:%d: ", bad_line);
    const struct { int threads; size_t chunk; } runs[] = {{1, (size_t)1 << 30}, {3, 64}, {2, 1}};
    for (size_t k = 0; k < sizeof runs / sizeof runs[0]; k++) {
        char *b, *rj;
        size_t len;
        cf_err err;
        memset(&err, 0, sizeof err);
        CHECK_EQ_INT(ingest_bytes(parallel_map, "err.store", runs[k].threads, runs[k].chunk, 0, &b, &len, &rj, &err),
                     CF_EINPUT);
        CHECK_CONTAINS(err.msg, want);
        CHECK_CONTAINS(err.msg, "after the closing quote");
    }
    /* --strict: the first rejection (the first bad time) is the error, on any thread count. */
    snprintf(want, sizeof want, "labs.csv:%d: ", first_bad);
    t[n] = '\0';
    write_text("labs.csv", t);
    free(t);
    for (size_t k = 0; k < sizeof runs / sizeof runs[0]; k++) {
        char *b, *rj;
        size_t len;
        cf_err err;
        memset(&err, 0, sizeof err);
        CHECK_EQ_INT(ingest_bytes(parallel_map, "err.store", runs[k].threads, runs[k].chunk, 1, &b, &len, &rj, &err),
                     CF_EINPUT);
        CHECK_CONTAINS(err.msg, want);
    }
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
    RUN(test_gap01_relative_times);
    RUN(test_gap02_arithmetic);
    RUN(test_gap03_subject_through_join);
    RUN(test_gap04_once_per_group);
    RUN(test_gap05_composite_keys);
    RUN(test_gap06_replace_prefix_regex);
    RUN(test_gap07_in_list_quotes);
    RUN(test_gap08_events_fail_alone);
    RUN(test_gap09_numbers_and_sentinels);
    RUN(test_gap10_unpivot);
    RUN(test_gap11_filters_each_alternative);
    RUN(test_gap12_optional_tables);
    RUN(test_gap13_terminology_paths);
    RUN(test_gap14_all_rejected_is_an_error);
    RUN(test_folder_of_files);
    RUN(test_variables);
    RUN(test_date_only_and_not_after);
    RUN(test_parallel_identical);
    RUN(test_parallel_late_errors);
    /* The engine tests again, every table cut into 5-byte chunks mapped on three threads. */
    opt_threads = 3;
    opt_chunk = 5;
    RUN(test_templates_and_filters);
    RUN(test_rows_accounted);
    RUN(test_numeric_invalid_and_text);
    RUN(test_string_subjects_and_conditions);
    RUN(test_aliases_optional_joins_and_dictionary_filters);
    RUN(test_gap03_subject_through_join);
    RUN(test_gap04_once_per_group);
    RUN(test_gap08_events_fail_alone);
    RUN(test_gap10_unpivot);
    RUN(test_gap14_all_rejected_is_an_error);
    RUN(test_folder_of_files);
    return check_summary();
}
