/* Ingest's up-front room check; see room.h. */
#include "ingest/room.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "ingest/fhir.h"
#include "ingest/mapped_csv.h"
#include "ingest/report.h"
#include "store/store.h"
#include "util/file.h"
#include "util/progress.h"

/* The writer's peak beyond the store: its spilled runs are given back chunk by chunk as the store
 * is written, and at most a fifth of the events' part is on disk twice (store_writer's own check);
 * long texts sit in a scratch file until they are copied into the store. */
static void need_of(ingest_room *r, double event_part, double long_text) {
    r->store_bytes = (uint64_t)(event_part + long_text) + ((uint64_t)1 << 20);
    r->need_bytes = (uint64_t)(event_part * 1.2 + long_text * 2) + ((uint64_t)1 << 20);
}

typedef struct {
    mapping *m;            /* NULL: FHIR */
    const char *input, *only_tables;
    int threads;
    mapped_csv_sample *sm; /* (m->n_tables) */
    uint64_t fhir_read, fhir_total;
} sample_job;

static int sample_into(sample_job *j, store_writer *w, cf_err *err) {
    ingest_report rep;
    ingest_report_init(&rep, 0);
    int rc;
    if (j->m) {
        mapped_csv_options mo = {.only_tables = j->only_tables, .threads = j->threads,
                                 .sample_bytes = INGEST_ROOM_SAMPLE, .sample = j->sm};
        rc = mapped_csv_ingest(j->m, j->input, w, &rep, &mo, err);
    } else {
        fhir_options fo = {.sample_bytes = INGEST_ROOM_SAMPLE, .sample_read = &j->fhir_read,
                           .sample_total = &j->fhir_total};
        rc = fhir_ingest(j->input, w, &rep, &fo, err);
    }
    ingest_report_free(&rep);
    return rc;
}

/* Samples the input into a store in the temporary folder and scales; see room.h. */
static int sample(sample_job *j, ingest_room *r, cf_err *err) {
    const char *tmpdir = getenv("TMPDIR");
    if (!tmpdir || !*tmpdir) tmpdir = "/tmp";
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s/clinfm-room-XXXXXX", tmpdir);
    /* A name of our own for the sample store; the writer replaces the empty file atomically. */
    int fd = mkstemp(tmp);
    if (fd < 0)
        return cf_fail_errno(err, CF_EINPUT, "%s: cannot write the room estimate's sample (set TMPDIR, or "
                             "--room-check off)", tmp);
    close(fd);
    store_writer *w = NULL;
    store_writer_options wopt = {.memory_budget = (size_t)64 << 20, .scratch_dir = tmpdir};
    int rc = store_writer_open(&w, tmp, &wopt, err);
    if (!rc) rc = sample_into(j, w, err);
    uint64_t sample_events = w ? store_writer_events(w) : 0;
    if (!rc) {
        rc = store_writer_finish(w, err);
        w = NULL;
    }
    if (w) store_writer_abort(w);
    struct stat st;
    uint64_t sample_store = 0;
    if (!rc) {
        if (stat(tmp, &st) != 0) rc = cf_fail_errno(err, CF_EINTERNAL, "%s: the sample store is missing", tmp);
        else sample_store = (uint64_t)st.st_size;
    }
    uint64_t sample_heap = 0; /* the sample store's text bytes */
    store ss;
    if (!rc && !(rc = store_open_summary(&ss, tmp, err))) {
        sample_heap = ss.n_texts ? ss.text_offset[ss.n_texts] : 0;
        store_close(&ss);
    }
    unlink(tmp);
    if (rc) return rc;
    double events = 0, long_text = 0, sample_long = 0;
    if (j->m) {
        for (size_t t = 0; t < j->m->n_tables; t++) {
            const mapped_csv_sample *sm = &j->sm[t];
            double scale = sm->cut && sm->read ? (double)sm->total / (double)sm->read : 1.0;
            if (scale < 1) scale = 1;
            events += (double)sm->events * scale;
            long_text += (double)sm->long_text * scale;
            sample_long += (double)sm->long_text;
        }
    } else {
        /* The whole sample scales as one: its files were taken in proportion. Every stored text
         * counts as long (notes are most of them), so it is asked for twice. */
        double scale = j->fhir_read ? (double)j->fhir_total / (double)j->fhir_read : 1.0;
        if (scale < 1) scale = 1;
        events = (double)sample_events * scale;
        sample_long = (double)sample_heap;
        long_text = (double)sample_heap * scale;
    }
    double per_event = sample_events && (double)sample_store > sample_long
                           ? ((double)sample_store - sample_long) / (double)sample_events
                           : 0;
    r->events = (uint64_t)events;
    r->sampled = 1;
    need_of(r, per_event * events, long_text);
    return CF_OK;
}

int ingest_room_check(int mode, mapping *m, const char *input, const char *only_tables, int threads, const char *out,
                      FILE *say, ingest_room *r_out, cf_err *err) {
    ingest_room rr, *r = r_out ? r_out : &rr;
    memset(r, 0, sizeof *r);
    if (mode == INGEST_ROOM_OFF) return CF_OK;
    double t0 = now_seconds();
    uint64_t n_files = 0;
    int rc = m ? mapped_csv_input_bytes(m, input, only_tables, &r->input_bytes, err)
               : fhir_input_bytes(input, &r->input_bytes, &n_files, err);
    if (rc) return rc;
    char dir[4096], a[32], b[32];
    const char *slash = strrchr(out, '/');
    if (!slash) snprintf(dir, sizeof dir, ".");
    else snprintf(dir, sizeof dir, "%.*s", slash == out ? 1 : (int)(slash - out), out);
    struct statvfs fs;
    uint64_t room = statvfs(dir, &fs) == 0 ? (uint64_t)fs.f_bavail * fs.f_frsize : UINT64_MAX;
    if (mode == INGEST_ROOM_AUTO && room / INGEST_ROOM_AMPLE >= r->input_bytes + ((uint64_t)1 << 30) / INGEST_ROOM_AMPLE) {
        r->seconds = now_seconds() - t0;
        if (say)
            fprintf(say, "clinfm: the inputs hold %s; %s free on %s is room enough without estimating the store\n",
                    file_size_str(r->input_bytes, a, sizeof a), file_size_str(room, b, sizeof b), dir);
        return CF_OK;
    }
    sample_job j = {.m = m, .input = input, .only_tables = only_tables, .threads = threads};
    if (m && !(j.sm = calloc(m->n_tables ? m->n_tables : 1, sizeof *j.sm)))
        return cf_fail(err, CF_EINTERNAL, "out of memory");
    rc = sample(&j, r, err);
    free(j.sm);
    if (rc) return rc;
    r->seconds = now_seconds() - t0;
    char what[200];
    snprintf(what, sizeof what, "the store (about %s, %.3g M events, estimated from a sample in %.1f s)",
             file_size_str(r->store_bytes, a, sizeof a), (double)r->events / 1e6, r->seconds);
    return file_room_up_front(out, r->need_bytes, what, "--room-check off", say, err);
}
