/* The generator's driver: patients made in parallel, written in patient order.
 *
 * T worker threads take patient indices from a shared counter and make each patient into a slot
 * of a ring of RING slots (its records, its FHIR lines, its truth rows); the calling thread
 * writes the slots to the output files in patient order as they complete, while the workers go
 * on (a worker waits when the ring is full). Because each patient's record depends only on
 * (seed, index), the bytes are the same for any thread count, and the memory is that of the
 * ring, whatever N. Everything is written under "<out>.partial-<pid>"
 * and renamed to <out> at the end, so an interrupted run leaves no folder that looks finished. */
#include "synth/synth.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "synth/patient_notes.h"
#include "synth/sim.h"
#include "synth/synth_fhir.h"
#include "util/datadir.h"
#include "util/atomic_file.h"
#include "util/progress.h"
#include "util/timeutil.h"

const char *const synth_type_names[SYNTH_N_TYPES] = {"Patient", "Encounter", "Condition", "Observation",
                                                     "MedicationRequest", "Procedure", "DocumentReference"};

#define RING 64

typedef struct {
    synth_patient p;
    synth_buf out[SYNTH_N_TYPES];
    synth_buf truth[SYNTH_MAX_TASKS];
    uint64_t counts[SYNTH_N_TYPES], type_events[SYNTH_N_TYPES], events, truth_rows, truth_pos, admissions;
    synth_truth_row *rows;
    size_t n_rows, cap_rows;
    synth_patient_notes_out notes;
    int rc;
    cf_err err;
} slot;

static void slot_reset(slot *s) {
    for (int t = 0; t < SYNTH_N_TYPES; t++) s->out[t].n = 0;
    for (int t = 0; t < SYNTH_MAX_TASKS; t++) s->truth[t].n = 0;
    memset(s->counts, 0, sizeof s->counts);
    memset(s->type_events, 0, sizeof s->type_events);
    s->events = s->truth_rows = s->truth_pos = s->admissions = 0;
    s->n_rows = 0;
    s->notes.docref.n = s->notes.presidio.n = s->notes.phrase.n = 0;
    s->notes.notes = s->notes.spans = s->notes.events = 0;
    s->rc = 0;
}

/* A slot keeps its buffers for the next patient, but not one grown for an outlier: memory stays
 * that of typical patients, whatever N (the largest patient of a million would otherwise set
 * every slot's size). */
static void slot_trim(slot *s) {
    const size_t keep = 256 << 10;
    for (int t = 0; t < SYNTH_N_TYPES; t++)
        if (s->out[t].cap > keep) free(s->out[t].b), memset(&s->out[t], 0, sizeof s->out[t]);
    for (int t = 0; t < SYNTH_MAX_TASKS; t++)
        if (s->truth[t].cap > keep) free(s->truth[t].b), memset(&s->truth[t], 0, sizeof s->truth[t]);
    if (s->p.cap_recs * sizeof *s->p.recs > keep) synth_patient_free(&s->p);
    if (s->cap_rows * sizeof *s->rows > keep) free(s->rows), s->rows = NULL, s->cap_rows = 0;
}

static void slot_free(slot *s) {
    synth_patient_free(&s->p);
    for (int t = 0; t < SYNTH_N_TYPES; t++) free(s->out[t].b);
    for (int t = 0; t < SYNTH_MAX_TASKS; t++) free(s->truth[t].b);
    free(s->rows);
    free(s->notes.docref.b);
    free(s->notes.presidio.b);
    free(s->notes.phrase.b);
}

static void make_one(const sim_world *w, const synth_options *o, const synth_namelists *nl, uint64_t index, slot *s) {
    slot_reset(s);
    s->rc = sim_patient(w, index, &s->p, w->truth_paths ? &s->rows : NULL, &s->n_rows, &s->cap_rows, &s->err);
    if (s->rc) return;
    for (size_t i = 0; i < s->p.n_recs; i++)
        if (s->p.recs[i].kind == SYN_R_ENCOUNTER && s->p.recs[i].cls == SYN_ENC_IMP) s->admissions++;
    if (nl) {
        if ((s->rc = synth_patient_notes(&s->p, nl, o->seed, &s->notes, &s->err))) return;
        synth_buf_put(&s->out[SYNTH_T_DOCREF], s->notes.docref.b ? s->notes.docref.b : "", s->notes.docref.n);
        s->counts[SYNTH_T_DOCREF] += s->notes.notes;
        s->type_events[SYNTH_T_DOCREF] += s->notes.events; /* the NOTE events (author names aside) */
    }
    if (o->format == SYNTH_FMT_FHIR) {
        synth_fhir_patient(&s->p, s->out, s->counts, s->type_events);
    } else {
        synth_buf scratch[SYNTH_N_TYPES];
        memset(scratch, 0, sizeof scratch);
        synth_fhir_patient(&s->p, scratch, s->counts, s->type_events); /* counts, same as written */
        for (int t = 0; t < SYNTH_N_TYPES; t++) free(scratch[t].b);
    }
    for (int t = 0; t < SYNTH_N_TYPES; t++) s->events += s->type_events[t];
    for (size_t i = 0; i < s->n_rows; i++) {
        const synth_truth_row *r = &s->rows[i];
        synth_buf *b = &s->truth[r->task];
        /* the probability of a positive label among the rows a task keeps, under each rule */
        double p_rec = r->p_followed > 0 ? r->p_outcome / r->p_followed : r->p_outcome;
        double p_end = r->p_kept_end > 0 ? r->p_outcome / r->p_kept_end : r->p_outcome;
        if (p_rec > 1) p_rec = 1;
        if (p_end > 1) p_end = 1;
        char num[200];
        synth_buf_str(b, s->p.id);
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
    for (int t = 0; t < SYNTH_N_TYPES; t++)
        if (s->out[t].oom) s->rc = cf_fail(&s->err, CF_EINTERNAL, "out of memory writing patient %llu", (unsigned long long)index);
    for (int t = 0; t < SYNTH_MAX_TASKS; t++)
        if (s->truth[t].oom) s->rc = cf_fail(&s->err, CF_EINTERNAL, "out of memory writing patient %llu", (unsigned long long)index);
}

typedef struct {
    const sim_world *w;
    const synth_options *o;
    const synth_namelists *nl;
    slot *slots;
    uint64_t next;          /* next patient index to take */
    uint64_t written;       /* patients written so far (the ring's tail) */
    uint8_t *done;          /* per ring slot: made and not yet written */
    int stop;
    pthread_mutex_t mu;
    pthread_cond_t made, freed;
} pool;

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
        make_one(pl->w, pl->o, pl->nl, i, &pl->slots[i % RING]);
        pthread_mutex_lock(&pl->mu);
        pl->done[i % RING] = 1;
        pthread_cond_broadcast(&pl->made);
        pthread_mutex_unlock(&pl->mu);
    }
}

static int write_buf(int fd, const synth_buf *b, const char *what, cf_err *err) {
    return b->n ? write_all(fd, b->b, b->n, what, err) : CF_OK;
}

static int mkdir_p(const char *path, cf_err *err) {
    if (mkdir(path, 0777) && errno != EEXIST) return cf_fail_errno(err, CF_EINPUT, "%s: cannot create", path);
    return CF_OK;
}

static char *manifest_json(const synth_options *o, const sim_world *w, const synth_report *rep) {
    cJSON *root = cJSON_CreateObject();
    if (!root) return NULL;
    cJSON_AddStringToObject(root, "producer", "clinfm synth");
    cJSON_AddStringToObject(root, "note", "fictional patients made by clinfm synth; no real person's data");
    cJSON_AddNumberToObject(root, "seed", (double)o->seed);
    cJSON_AddNumberToObject(root, "patients", (double)o->patients);
    cJSON_AddNumberToObject(root, "start_year", o->start_year);
    cJSON_AddNumberToObject(root, "end_year", o->end_year);
    cJSON_AddStringToObject(root, "format", o->format == SYNTH_FMT_FHIR ? "fhir-ndjson" : "null");
    cJSON_AddNumberToObject(root, "truth_paths", o->truth_paths);
    cJSON_AddStringToObject(root, "notes", o->notes == SYNTH_NOTES_HELDOUT ? "heldout" : o->notes ? "listed" : "none");
    cJSON_AddNumberToObject(root, "note_gold_spans", (double)rep->note_spans);
    cJSON *mods = cJSON_AddArrayToObject(root, "modules");
    for (size_t i = 0; i < w->mods.n; i++) cJSON_AddItemToArray(mods, cJSON_CreateString(w->mods.m[i].name));
    cJSON *res = cJSON_AddObjectToObject(root, "resources");
    for (int t = 0; t < SYNTH_N_TYPES; t++) cJSON_AddNumberToObject(res, synth_type_names[t], (double)rep->resources[t]);
    cJSON_AddNumberToObject(root, "events", (double)rep->events);
    cJSON *ev = cJSON_AddObjectToObject(root, "events_by_type");
    for (int t = 0; t < SYNTH_N_TYPES; t++) cJSON_AddNumberToObject(ev, synth_type_names[t], (double)rep->type_events[t]);
    cJSON_AddNumberToObject(root, "deaths", (double)rep->deaths);
    cJSON_AddNumberToObject(root, "deaths_in_hospital", (double)rep->deaths_in_hospital);
    cJSON_AddNumberToObject(root, "hospital_admissions", (double)rep->admissions);
    cJSON *tr = cJSON_AddArrayToObject(root, "truth");
    for (size_t k = 0; k < w->n_tasks && w->truth_paths; k++) {
        cJSON *x = cJSON_CreateObject();
        cJSON_AddStringToObject(x, "task", w->task_names[k]);
        if (k < w->n_targets) cJSON_AddStringToObject(x, "module", w->mods.m[w->targets[k]].name);
        char f[96];
        snprintf(f, sizeof f, "truth/%s.csv", w->task_names[k]);
        cJSON_AddStringToObject(x, "file", f);
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
    pool pl;
    memset(&pl, 0, sizeof pl);
    pthread_mutex_init(&pl.mu, NULL);
    pthread_cond_init(&pl.made, NULL);
    pthread_cond_init(&pl.freed, NULL);
    pthread_t th[256];
    int n_th = 0;
    int fds[SYNTH_N_TYPES + SYNTH_MAX_TASKS + 2]; /* resources, truth files, the two gold files */
    synth_namelists *nl = NULL;
    const int fd_presidio = SYNTH_N_TYPES + SYNTH_MAX_TASKS, fd_phrase = fd_presidio + 1;
    int gold_written = 0;
    for (size_t i = 0; i < sizeof fds / sizeof fds[0]; i++) fds[i] = -1;
    char tmp[4200] = "", path[4400];
    int rc = CF_OK;
    if (!w || !slots || !done) {
        rc = cf_fail(err, CF_EINTERNAL, "out of memory");
        goto done;
    }
    double start = (double)days_from_civil(o->start_year, 1, 1), end = (double)days_from_civil(o->end_year + 1, 1, 1);
    if ((rc = sim_world_init(w, o->modules_dir, start, end, o->seed, o->truth_paths, err))) goto done;
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
    if (o->notes && o->format == SYNTH_FMT_FHIR) {
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
            int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
            if (fd < 0) {
                rc = cf_fail_errno(err, CF_EINPUT, "%s: cannot create", path);
                goto done;
            }
            fds[fd_presidio + g] = fd;
            if ((rc = write_all(fd, gold_heads[g], strlen(gold_heads[g]), path, err))) goto done;
        }
    }
    if (o->format == SYNTH_FMT_FHIR) {
        snprintf(path, sizeof path, "%s/fhir", tmp);
        if ((rc = mkdir_p(path, err))) goto done;
        for (int t = 0; t < SYNTH_N_TYPES; t++) {
            if (t == SYNTH_T_DOCREF && !nl) continue;
            snprintf(path, sizeof path, "%s/fhir/%s.000.ndjson", tmp, synth_type_names[t]);
            if ((fds[t] = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666)) < 0) {
                rc = cf_fail_errno(err, CF_EINPUT, "%s: cannot create", path);
                goto done;
            }
        }
    }
    if (o->truth_paths && w->n_tasks) {
        snprintf(path, sizeof path, "%s/truth", tmp);
        if ((rc = mkdir_p(path, err))) goto done;
        for (size_t k = 0; k < w->n_tasks; k++) {
            snprintf(path, sizeof path, "%s/truth/%s.csv", tmp, w->task_names[k]);
            int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
            if (fd < 0) {
                rc = cf_fail_errno(err, CF_EINPUT, "%s: cannot create", path);
                goto done;
            }
            fds[SYNTH_N_TYPES + k] = fd;
            static const char hdr[] = "fhir_id,prediction_time,probability,probability_censor_record,"
                                      "probability_follow_data_end,p_outcome,p_followed,p_kept_data_end,outcome,followed\n";
            if ((rc = write_all(fd, hdr, sizeof hdr - 1, path, err))) goto done;
        }
    }
    progress pr;
    if (!o->quiet) progress_begin(&pr, "synth", "patients", o->patients);
    else memset(&pr, 0, sizeof pr);
    pl.w = w, pl.o = o, pl.nl = nl, pl.slots = slots, pl.done = done;
    for (int i = 0; i < o->threads && i < 256; i++) {
        if (pthread_create(&th[n_th], NULL, worker, &pl)) {
            rc = cf_fail(err, CF_EINTERNAL, "cannot start a worker thread");
            goto done;
        }
        n_th++;
    }
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
        for (int t = 0; t < SYNTH_N_TYPES; t++) {
            rep->resources[t] += s->counts[t];
            rep->type_events[t] += s->type_events[t];
            rep->bytes += s->out[t].n;
            if (fds[t] >= 0 && (rc = write_buf(fds[t], &s->out[t], synth_type_names[t], err))) goto done;
        }
        for (size_t k = 0; k < w->n_tasks; k++)
            if (fds[SYNTH_N_TYPES + k] >= 0 && (rc = write_buf(fds[SYNTH_N_TYPES + k], &s->truth[k], "truth", err)))
                goto done;
        if (nl && s->notes.presidio.n) {
            if (gold_written && (rc = write_all(fds[fd_presidio], ",\n", 2, "gold", err))) goto done;
            if ((rc = write_buf(fds[fd_presidio], &s->notes.presidio, "gold", err))) goto done;
            if ((rc = write_buf(fds[fd_phrase], &s->notes.phrase, "gold", err))) goto done;
            gold_written = 1;
        }
        rep->notes += s->notes.notes;
        rep->note_spans += s->notes.spans;
        rep->events += s->events;
        rep->truth_rows += s->truth_rows;
        rep->truth_positive += s->truth_pos;
        rep->admissions += s->admissions;
        if (s->p.death >= 0) rep->deaths++;
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
    if (nl && (rc = write_all(fds[fd_presidio], "\n]\n", 3, "gold", err))) goto done;
    for (size_t i = 0; i < sizeof fds / sizeof fds[0]; i++) {
        if (fds[i] < 0) continue;
        if (fsync(fds[i]) && errno != EINVAL) {
            rc = cf_fail_errno(err, CF_EINTERNAL, "cannot flush an output file");
            goto done;
        }
        close(fds[i]);
        fds[i] = -1;
    }
    rep->seconds = now_seconds() - t0;
    char *man = manifest_json(o, w, rep);
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
    for (size_t i = 0; i < sizeof fds / sizeof fds[0]; i++)
        if (fds[i] >= 0) close(fds[i]);
    if (tmp[0]) { /* remove the partial folder */
        for (int t = 0; t < SYNTH_N_TYPES; t++) {
            snprintf(path, sizeof path, "%s/fhir/%s.000.ndjson", tmp, synth_type_names[t]);
            unlink(path);
        }
        for (size_t k = 0; w && k < w->n_tasks; k++) {
            snprintf(path, sizeof path, "%s/truth/%s.csv", tmp, w->task_names[k]);
            unlink(path);
        }
        snprintf(path, sizeof path, "%s/fhir", tmp);
        rmdir(path);
        snprintf(path, sizeof path, "%s/notes/gold.presidio.json", tmp);
        unlink(path);
        snprintf(path, sizeof path, "%s/notes/gold.phrase.txt", tmp);
        unlink(path);
        snprintf(path, sizeof path, "%s/notes", tmp);
        rmdir(path);
        snprintf(path, sizeof path, "%s/truth", tmp);
        rmdir(path);
        snprintf(path, sizeof path, "%s/manifest.json", tmp);
        unlink(path);
        rmdir(tmp);
    }
    if (slots)
        for (int i = 0; i < RING; i++) slot_free(&slots[i]);
    free(slots);
    free(done);
    if (nl) synth_namelists_free(nl);
    free(w);
    return rc;
}
