/* `clinfm inspect`: what is in a store. A summary (text or JSON), or one subject's timeline.
 * A summary reads only the header, the small tables and the stored counts (store_open_summary),
 * so it costs the same for a thousand events or a billion; a timeline or --verify decodes the
 * events. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli/commands.h"
#include "cli/opts.h"
#include "eval/eval.h"
#include "store/format_value.h"
#include "store/store.h"

/* Prints subject k's events, read through a cursor (only the blocks that hold them are decoded). */
static int print_timeline(const store *s, uint64_t k, unsigned long long limit, cf_err *err) {
    char tbuf[40], nbuf[32];
    size_t klen;
    store_cursor *c;
    store_events ev;
    int rc = store_cursor_new(&c, s, 0, err);
    if (rc) return rc;
    uint64_t n = s->subject_start[k + 1] - s->subject_start[k], shown_n = limit && n > limit ? limit : n;
    if ((rc = store_cursor_range(c, s->subject_start[k], s->subject_start[k] + shown_n, &ev, err))) {
        store_cursor_free(c);
        return rc;
    }
    const char *key = store_subject_key(s, k, &klen);
    printf("subject %lld", (long long)s->subject_id[k]);
    if (key) printf(" (source id %.*s)", (int)klen, key);
    printf(": %llu events\n", (unsigned long long)n);
    printf("%-26s %-44s %12s  %-30s %s\n", "time", "code", "numeric", "text", "source:row");
    for (uint64_t i = 0; i < ev.n; i++) {
        const char *t = ev.time[i] == TIME_NULL ? "(static)" : time_format_iso(ev.time[i], tbuf, sizeof tbuf);
        printf("%-26s %-44s %12s  ", t, store_code_str(s, ev.code[i]), format_float_shortest(ev.numeric[i], nbuf, sizeof nbuf));
        if (ev.text[i]) {
            size_t len;
            const char *txt = store_text_str(s, ev.text[i], &len);
            /* One line per event: long text is cut, line breaks shown as spaces. */
            int shown = 0;
            for (size_t j = 0; j < len && shown < 30; j++, shown++) putchar(txt[j] == '\n' || txt[j] == '\r' ? ' ' : txt[j]);
            if (len > 30) printf("...");
            for (; shown < 30; shown++) putchar(' ');
        } else {
            printf("%-30s", "");
        }
        printf(" %s:%llu\n", store_source_name(s, store_prov_source(ev.prov[i])),
               (unsigned long long)store_prov_row(ev.prov[i]));
    }
    if (shown_n < n) printf("... %llu more events (--limit 0 shows all)\n", (unsigned long long)(n - shown_n));
    store_cursor_free(c);
    return CF_OK;
}

int cmd_inspect(int argc, char **argv) {
    int status;
    int json = 0, verify = 0, arg;
    const char *subject = NULL;
    unsigned long long top = 10, limit = 0;
    const cli_opt opts[] = {
        CLI_OPT_FLAG("json", &json,
                     "the summary as JSON (subjects, events, codes, texts, first_time,\n"
                     "last_time, sources, flags, top_codes, metadata)"),
        CLI_OPT_FLAG("verify", &verify, "also recompute every section checksum and check every event"),
        CLI_OPT_STR("subject", &subject, "ID", "print one subject's timeline (time, code, value, text, provenance)"),
        CLI_OPT_U64("limit", &limit, "N", 0, CLI_ANY, "with --subject: show the first N events only (default 0: all)"),
        CLI_OPT_U64("top", &top, "N", 0, CLI_ANY, "how many most frequent codes to list (default 10)"),
        CLI_OPT_END};
    const cli_spec spec = {.cmd = "inspect",
                           .usage = "inspect STORE [--json] [--verify] [--subject ID [--limit N]] [--top N]",
                           .about = "Summarises an event store: subjects, events, codes, time range, sources, flags.\n",
                           .opts = opts, .args = "STORE", .min_args = 1, .max_args = 1};
    if (!cli_parse(&spec, argc, argv, &arg, &status)) return status;
    const char *path = argv[arg];
    store s;
    cf_err err = {0};
    /* No decoded copy of the events: --verify and --subject read them through a store cursor. */
    int rc = store_open_summary(&s, path, &err);
    if (rc) {
        cf_err_print(&err);
        return rc;
    }
    if (verify && (rc = store_verify(&s, &err))) {
        cf_err_print(&err);
        store_close(&s);
        return rc;
    }
    if (subject) {
        char *end;
        long long id = strtoll(subject, &end, 10);
        int64_t k = *subject && !*end ? store_find_subject(&s, id) : -1;
        if (k < 0) {
            /* Not an integer id, or not found: try the original identifiers. */
            for (uint64_t i = 0; k < 0 && i < s.n_subjects && s.subject_key_offset; i++) {
                size_t len;
                const char *key = store_subject_key(&s, i, &len);
                if (key && len == strlen(subject) && !memcmp(key, subject, len)) k = (int64_t)i;
            }
        }
        if (k < 0) {
            fprintf(stderr, "clinfm inspect: subject %s is not in %s\n", subject, path);
            store_close(&s);
            return 1;
        }
        rc = print_timeline(&s, (uint64_t)k, limit, &err);
        if (rc) cf_err_print(&err);
        store_close(&s);
        return rc;
    }
    size_t ntop = top < s.n_codes ? (size_t)top : (size_t)s.n_codes;
    eval_code_freq *freq = malloc((s.n_codes ? s.n_codes : 1) * sizeof *freq);
    if (!freq) {
        store_close(&s);
        fprintf(stderr, "clinfm: out of memory\n");
        return 2;
    }
    eval_rank_codes(freq, s.code_count, s.n_codes, 0, s.n_codes); /* most frequent first, ties by code */
    uint64_t static_events = s.n_static_events, numeric_events = s.n_numeric_events, text_events = s.n_text_events;
    const uint64_t *per_source = s.source_events;
    char t0[40], t1[40];
    time_format_iso(s.first_time, t0, sizeof t0);
    time_format_iso(s.last_time, t1, sizeof t1);
    if (json) {
        cJSON *root = cJSON_CreateObject();
        cJSON_AddStringToObject(root, "store", path);
        cJSON_AddNumberToObject(root, "format_version", s.version);
        cJSON_AddNumberToObject(root, "subjects", (double)s.n_subjects);
        cJSON_AddNumberToObject(root, "events", (double)s.n_events);
        cJSON_AddNumberToObject(root, "codes", (double)s.n_codes);
        cJSON_AddNumberToObject(root, "texts", (double)s.n_texts);
        cJSON_AddNumberToObject(root, "static_events", (double)static_events);
        cJSON_AddNumberToObject(root, "numeric_events", (double)numeric_events);
        cJSON_AddNumberToObject(root, "text_events", (double)text_events);
        if (s.first_time == TIME_NULL) cJSON_AddNullToObject(root, "first_time");
        else cJSON_AddStringToObject(root, "first_time", t0);
        if (s.last_time == TIME_NULL) cJSON_AddNullToObject(root, "last_time");
        else cJSON_AddStringToObject(root, "last_time", t1);
        cJSON *fl = cJSON_AddObjectToObject(root, "flags");
        cJSON_AddBoolToObject(fl, "deidentified", (s.flags & STORE_FLAG_DEIDENTIFIED) != 0);
        cJSON_AddBoolToObject(fl, "dates_shifted", (s.flags & STORE_FLAG_DATES_SHIFTED) != 0);
        cJSON_AddBoolToObject(fl, "dates_year_only", (s.flags & STORE_FLAG_DATES_YEAR) != 0);
        cJSON *src = cJSON_AddObjectToObject(root, "sources");
        for (uint32_t k = 0; k < s.n_sources; k++)
            cJSON_AddNumberToObject(src, store_source_name(&s, k), per_source ? (double)per_source[k] : 0);
        cJSON *tc = cJSON_AddArrayToObject(root, "top_codes");
        for (size_t i = 0; i < ntop; i++) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "code", store_code_str(&s, freq[i].code));
            cJSON_AddNumberToObject(o, "count", (double)freq[i].rows);
            cJSON_AddItemToArray(tc, o);
        }
        cJSON *meta = cJSON_ParseWithLength(s.meta, s.meta_len);
        if (meta) cJSON_AddItemToObject(root, "metadata", meta);
        char *out = cJSON_Print(root);
        if (out) puts(out);
        free(out);
        cJSON_Delete(root);
    } else {
        printf("store        %s (format %u)\n", path, s.version);
        printf("subjects     %llu\n", (unsigned long long)s.n_subjects);
        printf("events       %llu (%llu static, %llu numeric, %llu with text)\n", (unsigned long long)s.n_events,
               (unsigned long long)static_events, (unsigned long long)numeric_events, (unsigned long long)text_events);
        printf("codes        %llu\n", (unsigned long long)s.n_codes);
        printf("texts        %llu distinct\n", (unsigned long long)s.n_texts);
        printf("time range   %s .. %s\n", s.first_time == TIME_NULL ? "-" : t0, s.last_time == TIME_NULL ? "-" : t1);
        printf("de-identified %s%s%s\n", s.flags & STORE_FLAG_DEIDENTIFIED ? "yes" : "no",
               s.flags & STORE_FLAG_DATES_SHIFTED ? " (dates shifted per subject)" : "",
               s.flags & STORE_FLAG_DATES_YEAR ? " (dates reduced to year)" : "");
        printf("sources:\n");
        for (uint32_t k = 0; k < s.n_sources; k++)
            printf("  %-30s %12llu events\n", store_source_name(&s, k),
                   per_source ? (unsigned long long)per_source[k] : 0ULL);
        printf("most frequent codes:\n");
        for (size_t i = 0; i < ntop; i++)
            printf("  %-50s %10llu\n", store_code_str(&s, freq[i].code), (unsigned long long)freq[i].rows);
        if (verify) printf("verify       ok (all checksums match)\n");
    }
    free(freq);
    store_close(&s);
    return 0;
}
