/* The generator's driver: patients made in parallel, written in patient order.
 *
 * T worker threads take patient indices from a shared counter and make each patient into a slot
 * of a ring of RING slots (its records, its rows of each table in the chosen layout, its truth
 * rows); the calling thread writes the slots to the output files in patient order as they
 * complete, while the workers go on (a worker waits when the ring is full). Because each
 * patient's record depends only on (seed, index), the bytes are the same for any thread count,
 * and the memory is that of the ring, whatever N. Compressed tables are deflated by the writing
 * thread, one gzip stream per file, fed in patient order (so compression keeps the bytes
 * independent of the thread count too). Everything is written under "<out>.partial-<pid>" and
 * renamed to <out> at the end, so an interrupted run leaves no folder that looks finished. */
#include "synth/synth.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <zlib.h>

#include "synth/patient_notes.h"
#include "synth/sim.h"
#include "synth/synth_fhir.h"
#include "synth/synth_mimic.h"
#include "synth/synth_omop.h"
#include "util/atomic_file.h"
#include "util/datadir.h"
#include "util/json.h"
#include "util/progress.h"
#include "util/timeutil.h"

const char *const synth_type_names[SYNTH_N_TYPES] = {"Patient", "Encounter", "Condition", "Observation",
                                                     "MedicationRequest", "Procedure", "DocumentReference"};

#define RING 64
/* zlib level of the .csv.gz tables: 1 compresses CSV about 5x at a few hundred MB/s, which keeps
 * the writing thread ahead of two simulating ones; higher levels gain little on such text. */
#define GZ_LEVEL 1

typedef struct {
    synth_patient p;
    synth_buf out[SYNTH_MAX_TABLES];
    synth_buf truth[SYNTH_MAX_TASKS];
    uint64_t rows[SYNTH_MAX_TABLES], events[SYNTH_MAX_TABLES], truth_rows, truth_pos, admissions;
    synth_truth_row *trows;
    size_t n_trows, cap_trows;
    synth_patient_notes_out notes;
    int rc;
    cf_err err;
} slot;

static void slot_reset(slot *s) {
    for (int t = 0; t < SYNTH_MAX_TABLES; t++) s->out[t].len = 0;
    for (int t = 0; t < SYNTH_MAX_TASKS; t++) s->truth[t].len = 0;
    memset(s->rows, 0, sizeof s->rows);
    memset(s->events, 0, sizeof s->events);
    s->truth_rows = s->truth_pos = s->admissions = 0;
    s->n_trows = 0;
    s->notes.docref.len = s->notes.presidio.len = s->notes.phrase.len = 0;
    s->notes.notes = s->notes.spans = s->notes.events = 0;
    s->rc = 0;
}

/* A slot keeps its buffers for the next patient, but not one grown for an outlier: memory stays
 * that of typical patients, whatever N (the largest patient of a million would otherwise set
 * every slot's size). */
static void slot_trim(slot *s) {
    const size_t keep = 256 << 10;
    for (int t = 0; t < SYNTH_MAX_TABLES; t++)
        if (s->out[t].cap > keep) free(s->out[t].p), memset(&s->out[t], 0, sizeof s->out[t]);
    for (int t = 0; t < SYNTH_MAX_TASKS; t++)
        if (s->truth[t].cap > keep) free(s->truth[t].p), memset(&s->truth[t], 0, sizeof s->truth[t]);
    if (s->p.cap_recs * sizeof *s->p.recs > keep) synth_patient_free(&s->p);
    if (s->cap_trows * sizeof *s->trows > keep) free(s->trows), s->trows = NULL, s->cap_trows = 0;
}

static void slot_free(slot *s) {
    synth_patient_free(&s->p);
    for (int t = 0; t < SYNTH_MAX_TABLES; t++) free(s->out[t].p);
    for (int t = 0; t < SYNTH_MAX_TASKS; t++) free(s->truth[t].p);
    CF_FREE_ALL(s->trows, s->notes.docref.p, s->notes.presidio.p, s->notes.phrase.p);
}

typedef struct {
    const sim_world *w;
    const synth_options *o;
    const synth_format *f;
    const synth_namelists *nl;
    const char *truth_names[SYNTH_MAX_TASKS]; /* per world task: the file's name, or NULL (not written) */
    slot *slots;
    uint64_t next;          /* next patient index to take */
    uint64_t written;       /* patients written so far (the ring's tail) */
    uint8_t *done;          /* per ring slot: made and not yet written */
    int stop;
    pthread_mutex_t mu;
    pthread_cond_t made, freed;
} pool;

static void make_one(const pool *pl, uint64_t index, slot *s) {
    const sim_world *w = pl->w;
    const synth_options *o = pl->o;
    slot_reset(s);
    s->rc = sim_patient(w, index, &s->p, w->truth_paths ? &s->trows : NULL, &s->n_trows, &s->cap_trows, &s->err);
    if (s->rc) return;
    for (size_t i = 0; i < s->p.n_recs; i++)
        if (s->p.recs[i].kind == SYN_R_ENCOUNTER && s->p.recs[i].cls == SYN_ENC_IMP) s->admissions++;
    if (pl->nl) {
        if ((s->rc = synth_patient_notes(&s->p, pl->nl, o->seed, &s->notes, &s->err))) return;
        synth_buf_put(&s->out[SYNTH_T_DOCREF], s->notes.docref.p ? s->notes.docref.p : "", s->notes.docref.len);
        s->rows[SYNTH_T_DOCREF] += s->notes.notes;
        s->events[SYNTH_T_DOCREF] += s->notes.events; /* the NOTE events (author names aside) */
    }
    pl->f->patient(pl->f->ctx, &s->p, s->out, s->rows, s->events);
    char key[40];
    if (pl->f->truth_key[0] == 'f') snprintf(key, sizeof key, "%s", s->p.id);
    else snprintf(key, sizeof key, "%llu", (unsigned long long)synth_subject_id(index));
    for (size_t i = 0; i < s->n_trows; i++) {
        const synth_truth_row *r = &s->trows[i];
        if (!pl->truth_names[r->task]) continue;
        synth_buf *b = &s->truth[r->task];
        /* the probability of a positive label among the rows a task keeps, under each rule */
        double p_rec = r->p_followed > 0 ? r->p_outcome / r->p_followed : r->p_outcome;
        double p_end = r->p_kept_end > 0 ? r->p_outcome / r->p_kept_end : r->p_outcome;
        if (p_rec > 1) p_rec = 1;
        if (p_end > 1) p_end = 1;
        char num[200];
        synth_buf_str(b, key);
        synth_buf_put(b, ",", 1);
        synth_buf_time(b, r->t, 0);
        /* `probability` is for the rule the shipped new-onset tasks use: follow-up to death or the
         * data's end (tasks/new_onset_*.task, [follow_up]) */
        int k = snprintf(num, sizeof num, ",%.9g,%.9g,%.9g,%.9g,%.9g,%.9g,%d,%d\n", p_end, p_rec, p_end,
                         (double)r->p_outcome, (double)r->p_followed, (double)r->p_kept_end, r->outcome, r->followed);
        synth_buf_put(b, num, (size_t)k);
        s->truth_rows++;
        s->truth_pos += r->outcome;
    }
    for (int t = 0; t < SYNTH_MAX_TABLES; t++)
        if (s->out[t].oom) s->rc = cf_fail(&s->err, CF_EINTERNAL, "out of memory writing patient %llu", (unsigned long long)index);
    for (int t = 0; t < SYNTH_MAX_TASKS; t++)
        if (s->truth[t].oom) s->rc = cf_fail(&s->err, CF_EINTERNAL, "out of memory writing patient %llu", (unsigned long long)index);
}

/* Age bands of the national statistics (CDC NVSS): 0-4, 5-14, 15-24, ..., 75-84, 85 and over. */
static int age_band(double years) { return years < 5 ? 0 : years >= 85 ? 9 : 1 + (int)((years - 5) / 10); }

/* Person-years of follow-up by age band, split at the band's birthdays; the death in its band. */
static void follow_up(const synth_patient *p, synth_report *rep) {
    const double year = 365.2425;
    double t = p->record_start, end = p->followed_until;
    while (t < end) {
        int band = age_band((t - p->birth) / year);
        double next = band < 9 ? fmin(end, p->birth + (5 + 10 * band) * year) : end;
        if (next <= t) next = fmin(end, t + 1); /* rounding at a birthday */
        rep->person_years[band] += (next - t) / year;
        t = next;
    }
    if (p->death >= 0) rep->deaths_by_age[age_band((p->death - p->birth) / year)]++;
}

static void *worker(void *arg) {
    pool *pl = arg;
    for (;;) {
        pthread_mutex_lock(&pl->mu);
        while (!pl->stop && pl->next < pl->o->patients && pl->next - pl->written >= RING)
            pthread_cond_wait(&pl->freed, &pl->mu);
        if (pl->stop || pl->next >= pl->o->patients) {
            pthread_mutex_unlock(&pl->mu);
            return NULL;
        }
        uint64_t i = pl->next++;
        pthread_mutex_unlock(&pl->mu);
        make_one(pl, i, &pl->slots[i % RING]);
        pthread_mutex_lock(&pl->mu);
        pl->done[i % RING] = 1;
        pthread_cond_broadcast(&pl->made);
        pthread_mutex_unlock(&pl->mu);
    }
}

/* An output file: plain, or one gzip stream deflated as the rows arrive. */
typedef struct {
    int fd;
    z_stream *z;
    unsigned char *zbuf;
    char path[4400];
} sink;

#define ZBUF (256u << 10)

static int sink_open(sink *k, const char *path, int gzip, cf_err *err) {
    memset(k, 0, sizeof *k);
    snprintf(k->path, sizeof k->path, "%s", path);
    if ((k->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666)) < 0)
        return cf_fail_errno(err, CF_EINPUT, "%s: cannot create", path);
    if (!gzip) return CF_OK;
    k->z = calloc(1, sizeof *k->z);
    k->zbuf = malloc(ZBUF);
    if (!k->z || !k->zbuf) return cf_fail(err, CF_EINTERNAL, "out of memory");
    if (deflateInit2(k->z, GZ_LEVEL, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
        free(k->z);
        k->z = NULL;
        return cf_fail(err, CF_EINTERNAL, "cannot start a gzip stream");
    }
    return CF_OK;
}

static int sink_deflate(sink *k, const void *p, size_t n, int flush, cf_err *err) {
    k->z->next_in = (Bytef *)p;
    k->z->avail_in = (uInt)n;
    do {
        k->z->next_out = k->zbuf;
        k->z->avail_out = ZBUF;
        int zr = deflate(k->z, flush);
        if (zr == Z_STREAM_ERROR) return cf_fail(err, CF_EINTERNAL, "%s: gzip stream error", k->path);
        size_t have = ZBUF - k->z->avail_out;
        if (have && write_all(k->fd, k->zbuf, have, k->path, err)) return CF_EINPUT;
        if (flush == Z_FINISH && zr == Z_STREAM_END) break;
    } while (k->z->avail_out == 0 || (flush == Z_FINISH));
    return CF_OK;
}

static int sink_write(sink *k, const void *p, size_t n, cf_err *err) {
    if (k->fd < 0 || !n) return CF_OK;
    if (!k->z) return write_all(k->fd, p, n, k->path, err);
    /* avail_in is 32 bits: feed big buffers in pieces */
    const char *c = p;
    while (n) {
        size_t piece = n > (1u << 30) ? (1u << 30) : n;
        int rc = sink_deflate(k, c, piece, Z_NO_FLUSH, err);
        if (rc) return rc;
        c += piece, n -= piece;
    }
    return CF_OK;
}

static int sink_close(sink *k, cf_err *err) {
    int rc = CF_OK;
    if (k->fd >= 0 && k->z) rc = sink_deflate(k, "", 0, Z_FINISH, err);
    if (k->z) {
        deflateEnd(k->z);
        free(k->z);
        k->z = NULL;
    }
    free(k->zbuf);
    k->zbuf = NULL;
    if (k->fd >= 0) {
        if (!rc && fsync(k->fd) && errno != EINVAL) rc = cf_fail_errno(err, CF_EINTERNAL, "%s: cannot flush", k->path);
        close(k->fd);
        k->fd = -1;
    }
    return rc;
}

static int mkdir_p(const char *path, cf_err *err) {
    if (mkdir(path, 0777) && errno != EEXIST) return cf_fail_errno(err, CF_EINPUT, "%s: cannot create", path);
    return CF_OK;
}

/* the folders of a path under the output folder ("hosp/x.csv.gz" -> DIR/hosp) */
static int mkdir_parents(const char *root, const char *rel, cf_err *err) {
    char path[4400];
    for (const char *p = strchr(rel, '/'); p; p = strchr(p + 1, '/')) {
        snprintf(path, sizeof path, "%s/%.*s", root, (int)(p - rel), rel);
        int rc = mkdir_p(path, err);
        if (rc) return rc;
    }
    return CF_OK;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    remove(path);
    return 0;
}

static char *manifest_json(const synth_options *o, const sim_world *w, const synth_format *f, const pool *pl,
                           const synth_report *rep) {
    cJSON *root = cJSON_CreateObject();
    if (!root) return NULL;
    cJSON_AddStringToObject(root, "producer", "clinfm synth");
    cJSON_AddStringToObject(root, "note", "fictional patients made by clinfm synth; no real person's data");
    cJSON_AddNumberToObject(root, "seed", (double)o->seed);
    cJSON_AddNumberToObject(root, "patients", (double)o->patients);
    cJSON_AddNumberToObject(root, "start_year", o->start_year);
    cJSON_AddNumberToObject(root, "end_year", o->end_year);
    cJSON_AddStringToObject(root, "format", o->format == SYNTH_FMT_NULL ? "null" : f->name);
    cJSON_AddNumberToObject(root, "truth_paths", o->truth_paths);
    cJSON_AddStringToObject(root, "notes", o->notes == SYNTH_NOTES_HELDOUT ? "heldout" : o->notes ? "listed" : "none");
    cJSON_AddNumberToObject(root, "note_gold_spans", (double)rep->note_spans);
    cJSON *mods = cJSON_AddArrayToObject(root, "modules");
    for (size_t i = 0; i < w->mods.n; i++) cJSON_AddItemToArray(mods, cJSON_CreateString(w->mods.m[i].name));
    if (o->format == SYNTH_FMT_FHIR || o->format == SYNTH_FMT_NULL) {
        cJSON *res = cJSON_AddObjectToObject(root, "resources");
        for (int t = 0; t < SYNTH_N_TYPES; t++) cJSON_AddNumberToObject(res, synth_type_names[t], (double)rep->resources[t]);
    }
    cJSON_AddNumberToObject(root, "events", (double)rep->events);
    if (o->format == SYNTH_FMT_FHIR || o->format == SYNTH_FMT_NULL) {
        cJSON *ev = cJSON_AddObjectToObject(root, "events_by_type");
        for (int t = 0; t < SYNTH_N_TYPES; t++) cJSON_AddNumberToObject(ev, synth_type_names[t], (double)rep->type_events[t]);
    }
    /* every table: rows, and the events the layout's reader or mapping makes of them */
    cJSON *tabs = cJSON_AddArrayToObject(root, "tables");
    for (size_t t = 0; t < rep->n_tables; t++) {
        const synth_table_report *x = &rep->tables[t];
        cJSON *j = cJSON_CreateObject();
        JSON_ADD_STRINGS(j, {"name", x->name}, {"file", x->path});
        cJSON_AddNumberToObject(j, "rows", (double)x->rows);
        if (x->dictionary) cJSON_AddBoolToObject(j, "dictionary", 1);
        else if (x->unmapped) cJSON_AddBoolToObject(j, "unmapped", 1);
        else cJSON_AddNumberToObject(j, "events", (double)x->events);
        cJSON_AddItemToArray(tabs, j);
    }
    cJSON_AddNumberToObject(root, "deaths", (double)rep->deaths);
    cJSON_AddNumberToObject(root, "deaths_in_hospital", (double)rep->deaths_in_hospital);
    cJSON_AddNumberToObject(root, "hospital_admissions", (double)rep->admissions);
    double py = 0;
    for (int b = 0; b < 10; b++) py += rep->person_years[b];
    cJSON *pop = cJSON_AddObjectToObject(root, "follow_up");
    cJSON_AddNumberToObject(pop, "person_years", py);
    cJSON_AddNumberToObject(pop, "deaths_per_100_person_years", py > 0 ? 100 * (double)rep->deaths / py : 0);
    cJSON_AddNumberToObject(pop, "admissions_per_100_person_years", py > 0 ? 100 * (double)rep->admissions / py : 0);
    cJSON_AddNumberToObject(pop, "in_hospital_deaths_per_admission",
                            rep->admissions ? (double)rep->deaths_in_hospital / (double)rep->admissions : 0);
    cJSON *ages = cJSON_AddArrayToObject(pop, "by_age");
    for (int b = 0; b < 10; b++) {
        cJSON *x = cJSON_CreateObject();
        char band[16];
        if (b == 0) snprintf(band, sizeof band, "0-4");
        else if (b < 9) snprintf(band, sizeof band, "%d-%d", 10 * b - 5, 10 * b + 4);
        else snprintf(band, sizeof band, "85+");
        cJSON_AddStringToObject(x, "ages", band);
        cJSON_AddNumberToObject(x, "person_years", rep->person_years[b]);
        cJSON_AddNumberToObject(x, "deaths", (double)rep->deaths_by_age[b]);
        cJSON_AddNumberToObject(x, "deaths_per_100_person_years",
                                rep->person_years[b] > 0 ? 100 * (double)rep->deaths_by_age[b] / rep->person_years[b] : 0);
        cJSON_AddItemToArray(ages, x);
    }
    cJSON_AddStringToObject(root, "truth_key", f->truth_key);
    cJSON *tr = cJSON_AddArrayToObject(root, "truth");
    for (size_t k = 0; k < w->n_tasks && w->truth_paths; k++) {
        if (!pl->truth_names[k]) continue;
        cJSON *x = cJSON_CreateObject();
        cJSON_AddStringToObject(x, "task", pl->truth_names[k]);
        if (k < w->n_targets) cJSON_AddStringToObject(x, "module", w->mods.m[w->targets[k]].name);
        char fn[96];
        snprintf(fn, sizeof fn, "truth/%s.csv", pl->truth_names[k]);
        cJSON_AddStringToObject(x, "file", fn);
        cJSON_AddItemToArray(tr, x);
    }
    char *s = cJSON_Print(root);
    cJSON_Delete(root);
    return s;
}

int synth_run(const synth_options *o, synth_report *rep, cf_err *err) {
    memset(rep, 0, sizeof *rep);
    double t0 = now_seconds();
    sim_world *w = calloc(1, sizeof *w);
    slot *slots = calloc(RING, sizeof *slots);
    uint8_t *done = calloc(RING, 1);
    synth_format fmt;
    memset(&fmt, 0, sizeof fmt);
    pool pl;
    memset(&pl, 0, sizeof pl);
    pthread_mutex_init(&pl.mu, NULL);
    pthread_cond_init(&pl.made, NULL);
    pthread_cond_init(&pl.freed, NULL);
    pthread_t th[256];
    int n_th = 0;
    sink sinks[SYNTH_MAX_TABLES], tsinks[SYNTH_MAX_TASKS], gold[2]; /* tables, truth files, the two gold files */
    for (int i = 0; i < SYNTH_MAX_TABLES; i++) sinks[i].fd = -1, sinks[i].z = NULL, sinks[i].zbuf = NULL;
    for (int i = 0; i < SYNTH_MAX_TASKS; i++) tsinks[i].fd = -1, tsinks[i].z = NULL, tsinks[i].zbuf = NULL;
    for (int i = 0; i < 2; i++) gold[i].fd = -1, gold[i].z = NULL, gold[i].zbuf = NULL;
    synth_namelists *nl = NULL;
    int gold_written = 0;
    char tmp[4200] = "", path[4400];
    int rc = CF_OK;
    synth_buf dict[SYNTH_MAX_TABLES];
    memset(dict, 0, sizeof dict);
    if (!w || !slots || !done) {
        rc = cf_fail(err, CF_EINTERNAL, "out of memory");
        goto done;
    }
    double start = (double)days_from_civil(o->start_year, 1, 1), end = (double)days_from_civil(o->end_year + 1, 1, 1);
    if ((rc = sim_world_init(w, o->modules_dir, start, end, o->seed, o->truth_paths, err))) goto done;
    if (o->notes && o->format != SYNTH_FMT_FHIR) {
        rc = cf_fail(err, CF_EINPUT, "--notes writes FHIR DocumentReferences: use it with --format fhir-ndjson");
        goto done;
    }
    if (o->format == SYNTH_FMT_MIMIC) rc = synth_mimic_format(&fmt, w, o->seed, err);
    else if (o->format == SYNTH_FMT_OMOP) rc = synth_omop_format(&fmt, w, o->seed, err);
    else synth_fhir_format(&fmt, w, o->notes != 0);
    if (rc) goto done;
    struct stat sb;
    if (stat(o->out_dir, &sb) == 0) {
        rc = cf_fail(err, CF_EINPUT, "%s: already exists; clinfm synth writes a new folder", o->out_dir);
        goto done;
    }
    snprintf(tmp, sizeof tmp, "%s.partial-%ld", o->out_dir, (long)getpid());
    if ((rc = mkdir_p(tmp, err))) {
        tmp[0] = 0;
        goto done;
    }
    int writing = o->format != SYNTH_FMT_NULL;
    rep->n_tables = fmt.n_tables;
    for (size_t t = 0; t < fmt.n_tables; t++) {
        const synth_table *d = &fmt.tables[t];
        synth_table_report *x = &rep->tables[t];
        snprintf(x->name, sizeof x->name, "%s", d->name);
        snprintf(x->path, sizeof x->path, "%s", d->path);
        x->dictionary = d->dictionary, x->unmapped = d->unmapped;
        if (!writing) continue;
        snprintf(path, sizeof path, "%s/%s", tmp, d->path);
        if ((rc = mkdir_parents(tmp, d->path, err)) || (rc = sink_open(&sinks[t], path, d->gzip, err))) goto done;
        if (d->header && (rc = sink_write(&sinks[t], d->header, strlen(d->header), err))) goto done;
    }
    if (fmt.dictionaries) { /* lookup tables, whole, before any patient */
        uint64_t drows[SYNTH_MAX_TABLES] = {0};
        fmt.dictionaries(fmt.ctx, dict, drows);
        for (size_t t = 0; t < fmt.n_tables; t++) {
            if (dict[t].oom) {
                rc = cf_fail(err, CF_EINTERNAL, "out of memory");
                goto done;
            }
            rep->tables[t].rows += drows[t];
            if (writing && (rc = sink_write(&sinks[t], dict[t].p, dict[t].len, err))) goto done;
        }
    }
    if (o->notes && writing) {
        char rules[4096];
        cf_share_path("data/deid", rules, sizeof rules);
        if ((rc = synth_namelists_load(&nl, rules, o->notes == SYNTH_NOTES_HELDOUT ? SYNTH_NAMES_HELDOUT : SYNTH_NAMES_LISTED,
                                       err)))
            goto done;
        snprintf(path, sizeof path, "%s/notes", tmp);
        if ((rc = mkdir_p(path, err))) goto done;
        static const char *const gold_names[2] = {"gold.presidio.json", "gold.phrase.txt"};
        static const char *const gold_heads[2] = {
            "[\n", "Notes of clinfm synth patients (fictional; src/synth/notes.c), PHI inline as {{TYPE:phrase}}.\n"};
        for (int g = 0; g < 2; g++) {
            snprintf(path, sizeof path, "%s/notes/%s", tmp, gold_names[g]);
            if ((rc = sink_open(&gold[g], path, 0, err))) goto done;
            if ((rc = sink_write(&gold[g], gold_heads[g], strlen(gold_heads[g]), err))) goto done;
        }
    }
    for (size_t k = 0; k < w->n_tasks; k++) {
        pl.truth_names[k] = fmt.truth_task ? fmt.truth_task(fmt.ctx, k) : NULL;
        w->task_off[k] = !pl.truth_names[k];
    }
    if (o->truth_paths && w->n_tasks) {
        snprintf(path, sizeof path, "%s/truth", tmp);
        if ((rc = mkdir_p(path, err))) goto done;
        for (size_t k = 0; k < w->n_tasks; k++) {
            if (!pl.truth_names[k]) continue;
            snprintf(path, sizeof path, "%s/truth/%s.csv", tmp, pl.truth_names[k]);
            if ((rc = sink_open(&tsinks[k], path, 0, err))) goto done;
            char hdr[256];
            int n = snprintf(hdr, sizeof hdr,
                             "%s,prediction_time,probability,probability_censor_record,probability_follow_data_end,"
                             "p_outcome,p_followed,p_kept_data_end,outcome,followed\n",
                             fmt.truth_key);
            if ((rc = sink_write(&tsinks[k], hdr, (size_t)n, err))) goto done;
        }
    }
    progress pr;
    if (!o->quiet) progress_begin(&pr, "synth", "patients", o->patients);
    else memset(&pr, 0, sizeof pr);
    pl.w = w, pl.o = o, pl.f = &fmt, pl.nl = nl, pl.slots = slots, pl.done = done;
    for (int i = 0; i < o->threads && i < 256; i++) {
        if (pthread_create(&th[n_th], NULL, worker, &pl)) {
            rc = cf_fail(err, CF_EINTERNAL, "cannot start a worker thread");
            goto done;
        }
        n_th++;
    }
    int fhir = o->format == SYNTH_FMT_FHIR || o->format == SYNTH_FMT_NULL;
    for (uint64_t i = 0; i < o->patients; i++) {
        slot *s = &slots[i % RING];
        pthread_mutex_lock(&pl.mu);
        while (!done[i % RING]) pthread_cond_wait(&pl.made, &pl.mu);
        pthread_mutex_unlock(&pl.mu);
        if (s->rc) {
            *err = s->err;
            rc = s->rc;
            goto done;
        }
        for (size_t t = 0; t < fmt.n_tables; t++) {
            rep->tables[t].rows += s->rows[t];
            rep->tables[t].events += s->events[t];
            rep->events += s->events[t];
            if (fhir) rep->resources[t] += s->rows[t], rep->type_events[t] += s->events[t];
            rep->bytes += s->out[t].len;
            if ((rc = sink_write(&sinks[t], s->out[t].p, s->out[t].len, err))) goto done;
        }
        for (size_t k = 0; k < w->n_tasks; k++)
            if ((rc = sink_write(&tsinks[k], s->truth[k].p, s->truth[k].len, err))) goto done;
        if (nl && s->notes.presidio.len) {
            if (gold_written && (rc = sink_write(&gold[0], ",\n", 2, err))) goto done;
            if ((rc = sink_write(&gold[0], s->notes.presidio.p, s->notes.presidio.len, err))) goto done;
            if ((rc = sink_write(&gold[1], s->notes.phrase.p, s->notes.phrase.len, err))) goto done;
            gold_written = 1;
        }
        rep->notes += s->notes.notes;
        rep->note_spans += s->notes.spans;
        rep->truth_rows += s->truth_rows;
        rep->truth_positive += s->truth_pos;
        rep->admissions += s->admissions;
        if (s->p.death >= 0) rep->deaths++;
        follow_up(&s->p, rep);
        rep->deaths_in_hospital += s->p.died_in_hospital;
        rep->patients++;
        slot_trim(s);
        pthread_mutex_lock(&pl.mu);
        done[i % RING] = 0;
        pl.written = i + 1;
        pthread_cond_broadcast(&pl.freed);
        pthread_mutex_unlock(&pl.mu);
        if (!o->quiet) progress_update(&pr, rep->patients);
    }
    if (!o->quiet) progress_end(&pr);
    if (nl && (rc = sink_write(&gold[0], "\n]\n", 3, err))) goto done;
    for (int i = 0; i < SYNTH_MAX_TABLES; i++)
        if ((rc = sink_close(&sinks[i], err))) goto done;
    for (int i = 0; i < SYNTH_MAX_TASKS; i++)
        if ((rc = sink_close(&tsinks[i], err))) goto done;
    for (int i = 0; i < 2; i++)
        if ((rc = sink_close(&gold[i], err))) goto done;
    rep->seconds = now_seconds() - t0;
    char *man = manifest_json(o, w, &fmt, &pl, rep);
    if (!man) {
        rc = cf_fail(err, CF_EINTERNAL, "out of memory");
        goto done;
    }
    snprintf(path, sizeof path, "%s/manifest.json", tmp);
    rc = atomic_write_file(path, man, strlen(man), err);
    free(man);
    if (rc) goto done;
    if (rename(tmp, o->out_dir)) {
        rc = cf_fail_errno(err, CF_EINPUT, "%s: cannot rename the finished output into place", o->out_dir);
        goto done;
    }
    tmp[0] = 0;
done:
    pthread_mutex_lock(&pl.mu);
    pl.stop = 1;
    pthread_cond_broadcast(&pl.freed);
    pthread_mutex_unlock(&pl.mu);
    for (int i = 0; i < n_th; i++) pthread_join(th[i], NULL);
    pthread_mutex_destroy(&pl.mu);
    pthread_cond_destroy(&pl.made);
    pthread_cond_destroy(&pl.freed);
    cf_err ignore;
    for (int i = 0; i < SYNTH_MAX_TABLES; i++) sink_close(&sinks[i], &ignore);
    for (int i = 0; i < SYNTH_MAX_TASKS; i++) sink_close(&tsinks[i], &ignore);
    for (int i = 0; i < 2; i++) sink_close(&gold[i], &ignore);
    if (tmp[0]) nftw(tmp, rm_entry, 16, FTW_DEPTH | FTW_PHYS); /* the partial folder: ours alone (its name has our pid) */
    if (slots)
        for (int i = 0; i < RING; i++) slot_free(&slots[i]);
    for (int i = 0; i < SYNTH_MAX_TABLES; i++) free(dict[i].p);
    if (fmt.free) fmt.free(fmt.ctx);
    free(slots);
    free(done);
    if (nl) synth_namelists_free(nl);
    free(w);
    return rc;
}
