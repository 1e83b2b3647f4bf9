/* `clinfm export --format meds-csv`: a store as MEDS-schema CSV, for pandas and MEDS tools.
 *
 * Writes DIR/data.csv (subject_id,time,code,numeric_value,text_value; one row per event, in the
 * store's order: by subject then time) and DIR/codes.csv (code,description,count). Each file
 * appears atomically. Static facts have an empty time; absent values are empty fields. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/commands.h"
#include "cli/opts.h"
#include "store/format_value.h"
#include "store/store.h"
#include "util/atomic_file.h"
#include "util/file.h"
#include "util/progress.h"

static const char export_about[] =
    "Writes the store as MEDS-schema CSV:\n"
    "  DIR/data.csv    subject_id,time,code,numeric_value,text_value\n"
    "  DIR/codes.csv   code,description,count\n"
    "Times are ISO 8601 (UTC, microseconds when present); static facts have no time.\n";

/* Streams to an atomic file through stdio. */
static int open_out(atomic_file *af, FILE **f, const char *path, cf_err *err) {
    int rc = atomic_file_open(af, path, err);
    if (rc) return rc;
    /* stdio gets its own descriptor, so fclose and the atomic commit each close their own. */
    int fd = dup(af->fd);
    *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!*f) {
        if (fd >= 0) close(fd);
        atomic_file_abort(af);
        return cf_fail_errno(err, CF_EINTERNAL, "%s: cannot open for writing", path);
    }
    setvbuf(*f, NULL, _IOFBF, 1 << 20);
    return CF_OK;
}

static int close_out(atomic_file *af, FILE *f, cf_err *err) {
    int bad = ferror(f);
    bad |= fclose(f) != 0;
    if (bad) {
        atomic_file_abort(af);
        return cf_fail_errno(err, CF_EINTERNAL, "%s: write failed", af->path);
    }
    return atomic_file_commit(af, err);
}

/* The bytes data.csv and codes.csv will hold, from the store's summary alone: each subject's id
 * on each of its events, the codes by their counts (quoted where they must be), a time of at most
 * 27 characters on each timed event, a value of at most 15 on each numeric one, and the texts:
 * their heap once, plus the shared short ones again on every further event that carries one
 * (at most 66 bytes each, quotes included). */
static uint64_t export_bytes(const store *s) {
    uint64_t n = 0;
    char idbuf[32];
    for (uint64_t k = 0; k < s->n_subjects; k++)
        n += (uint64_t)snprintf(idbuf, sizeof idbuf, "%lld", (long long)s->subject_id[k]) *
             (s->subject_start[k + 1] - s->subject_start[k]);
    for (uint64_t c = 0; c < s->n_codes; c++) {
        uint64_t len = s->code_offset[c + 1] - s->code_offset[c], quoted = len;
        const char *p = s->code_heap + s->code_offset[c];
        for (uint64_t i = 0; i < len; i++)
            if (p[i] == '"' || p[i] == ',' || p[i] == '\n' || p[i] == '\r') quoted = len + 2;
        for (uint64_t i = 0; i < len && quoted > len; i++) quoted += p[i] == '"';
        n += quoted * s->code_count[c] + 2 * len + 32 + (s->code_desc_offset[c + 1] - s->code_desc_offset[c]) * 2;
    }
    uint64_t heap = s->n_texts ? s->text_offset[s->n_texts] : 0;
    uint64_t shared = s->n_text_events > s->n_texts ? s->n_text_events - s->n_texts : 0;
    n += 5 * s->n_events + 27 * (s->n_events - s->n_static_events) + 15 * s->n_numeric_events + heap + heap / 8 +
         66 * shared;
    return n + ((uint64_t)1 << 20);
}

int cmd_export(int argc, char **argv) {
    int status;
    const char *out = NULL;
    int format = 0, arg, room_check = 1;
    static const cli_choice formats[] = {{"meds-csv", 1}, {NULL, 0}};
    const cli_opt opts[] = {
        CLI_OPT_CHOICE("format", &format, "meds-csv", formats, "the only format so far"),
        CLI_OPT_STR_REQ("out", &out, "DIR", "output directory (created if missing)"),
        CLI_OPT_ROOM_CHECK(&room_check, "the CSV (an estimate from the store's counts)"),
        CLI_OPT_END};
    const cli_spec spec = {.cmd = "export", .usage = "export --format meds-csv STORE --out DIR", .about = export_about,
                           .opts = opts, .args = "STORE", .min_args = 1, .max_args = 1};
    if (!cli_parse(&spec, argc, argv, &arg, &status)) return status;
    if (!format) return cli_usage_error("export", "--format meds-csv is required");
    if (mkdir(out, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "clinfm export: %s: cannot create directory: %s\n", out, strerror(errno));
        return 1;
    }
    store s;
    cf_err err = {0};
    /* The events subject by subject through a cursor: no decoded copy of the store. */
    int rc = store_open_summary(&s, argv[arg], &err);
    if (rc) {
        cf_err_print(&err);
        return rc;
    }
    char path[4200];
    atomic_file af;
    FILE *f;
    snprintf(path, sizeof path, "%s/data.csv", out);
    if (room_check && s.has_summary &&
        (rc = file_room_up_front(path, export_bytes(&s), "the MEDS CSV", "--room-check off", stderr, &err)))
        goto done;
    if ((rc = open_out(&af, &f, path, &err))) goto done;
    fputs("subject_id,time,code,numeric_value,text_value\n", f);
    char tbuf[40], nbuf[32];
    progress pr;
    progress_begin(&pr, "export", "events", s.n_events);
    store_cursor *cur = NULL;
    if ((rc = store_cursor_new(&cur, &s, STORE_CURSOR_READAHEAD, &err))) {
        progress_end(&pr);
        fclose(f);
        atomic_file_abort(&af);
        goto done;
    }
    for (uint64_t k = 0; k < s.n_subjects; k++) {
        store_events ev;
        if ((rc = store_cursor_subject(cur, k, &ev, &err))) break;
        for (uint64_t i = 0; i < ev.n; i++) {
            progress_update(&pr, ev.first + i);
            fprintf(f, "%lld,%s,", (long long)s.subject_id[k], time_format_iso(ev.time[i], tbuf, sizeof tbuf));
            const char *code = store_code_str(&s, ev.code[i]);
            csv_write_field(f, code, strlen(code));
            fprintf(f, ",%s,", format_float_shortest(ev.numeric[i], nbuf, sizeof nbuf));
            if (ev.text[i]) {
                size_t len;
                const char *t = store_text_str(&s, ev.text[i], &len);
                /* An empty text must stay distinguishable from no text: write it quoted. */
                if (len == 0) fputs("\"\"", f);
                else csv_write_field(f, t, len);
            }
            fputc('\n', f);
        }
    }
    progress_end(&pr);
    store_cursor_free(cur);
    if (rc) { /* a damaged block: no half-written data.csv */
        fclose(f);
        atomic_file_abort(&af);
        goto done;
    }
    if ((rc = close_out(&af, f, &err))) goto done;
    snprintf(path, sizeof path, "%s/codes.csv", out);
    if ((rc = open_out(&af, &f, path, &err))) goto done;
    fputs("code,description,count\n", f);
    for (uint32_t i = 0; i < s.n_codes; i++) {
        const char *code = store_code_str(&s, i), *desc = store_code_desc(&s, i);
        csv_write_field(f, code, strlen(code));
        fputc(',', f);
        csv_write_field(f, desc, strlen(desc));
        fprintf(f, ",%llu\n", (unsigned long long)s.code_count[i]);
    }
    rc = close_out(&af, f, &err);
done:
    if (rc) cf_err_print(&err);
    else printf("wrote %s/data.csv (%llu events) and %s/codes.csv (%llu codes)\n", out,
                (unsigned long long)s.n_events, out, (unsigned long long)s.n_codes);
    store_close(&s);
    return rc;
}
