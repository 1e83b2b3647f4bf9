/* `clinfm demo`: the whole path, from no data to a clinician's card, in one command.
 *
 * Without --data it makes its own population (`clinfm synth`, fictional patients with notes and
 * ground truth), so it runs on a fresh machine; with --data DIR it reads the MIMIC-IV demo and
 * the Synthea FHIR bundles where a site keeps them. Then: ingest -> deid (fresh key) -> train ->
 * eval on two tasks (report.html; the ceiling row on generated data) -> serve on a free loopback
 * port with a fresh API key -> one CDS Hooks patient-view call and its card -> one clinician
 * feedback -> clean stop -> audit verify; and last, where every output is.
 *
 * Each step runs as its own `clinfm` process (this binary, through /proc/self/exe), with its
 * command printed first, exactly as a user would type it: the demo is also a smoke test of the
 * CLI, and a step that fails stops the demo with its own message. The service is a child process
 * with PR_SET_PDEATHSIG, stopped by SIGTERM on every path once it has started. */
#include <curl/curl.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <dirent.h>

#include <sodium.h>

#include "cli/commands.h"
#include "cli/opts.h"
#include "deid/key.h"
#include "store/store.h"
#include "util/atomic_file.h"
#include "util/sbuf.h"
#include "util/datadir.h"
#include "util/err.h"
#include "util/json.h"

#define PATHCAP 4352
#define MAX_TASKS 4
/* Left in an output folder the demo made, so a later run may clear it; a folder without it is
 * never deleted. */
#define DEMO_MARKER ".clinfm-demo"

typedef struct {
    char self[4096]; /* this binary */
    const char *out;
    double t0;
    int n_step;
} demo;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* a/b into buf (PATHCAP bytes); --out and --data are at most 2048 bytes, so it always fits. */
static void join(char *buf, const char *a, const char *b) {
    int n = snprintf(buf, PATHCAP, "%s/%s", a, b);
    if (n < 0 || n >= PATHCAP) buf[0] = '\0';
}

/* Prints an argument so the line can be pasted into a shell. */
static void print_arg(const char *a) {
    int plain = a[0] != '\0';
    for (const char *p = a; *p; p++)
        if (!(strchr("-_./=,:+@%", *p) || (*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') ||
              (*p >= 'A' && *p <= 'Z')))
            plain = 0;
    if (plain) {
        printf(" %s", a);
        return;
    }
    printf(" '");
    for (const char *p = a; *p; p++) {
        if (*p == '\'') printf("'\\''");
        else putchar(*p);
    }
    printf("'");
}

static void print_cmd(char **args) {
    printf("$ clinfm");
    for (int i = 0; args[i]; i++) print_arg(args[i]);
    printf("\n");
}

/* Runs `clinfm ARGS` as a child process. With capture, its stdout (up to cap - 1 bytes) is
 * returned there instead of printed. Returns its exit status, or 128 + signal. */
static int run_child(const demo *d, char **args, char *capture, size_t cap) {
    int n = 0;
    while (args[n]) n++;
    char **argv = calloc((size_t)n + 2, sizeof *argv);
    if (!argv) return 2;
    argv[0] = "clinfm";
    for (int i = 0; i < n; i++) argv[i + 1] = args[i];
    int fds[2] = {-1, -1};
    if (capture && pipe(fds) != 0) {
        free(argv);
        return 2;
    }
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "clinfm demo: cannot start a process: %s\n", strerror(errno));
        free(argv);
        return 2;
    }
    if (pid == 0) {
        if (capture) {
            close(fds[0]);
            dup2(fds[1], STDOUT_FILENO);
            close(fds[1]);
        }
        execv(d->self, argv);
        fprintf(stderr, "clinfm demo: cannot run %s: %s\n", d->self, strerror(errno));
        _exit(127);
    }
    free(argv);
    if (capture) {
        close(fds[1]);
        size_t got = 0;
        for (;;) {
            char tmp[4096];
            ssize_t r = read(fds[0], tmp, sizeof tmp);
            if (r < 0 && errno == EINTR) continue;
            if (r <= 0) break;
            size_t take = (size_t)r < cap - 1 - got ? (size_t)r : cap - 1 - got;
            memcpy(capture + got, tmp, take);
            got += take;
        }
        capture[got] = '\0';
        close(fds[0]);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR) return 2;
    if (WIFEXITED(st)) return WEXITSTATUS(st);
    return 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

static void header(demo *d, const char *title) {
    if (title[0] != ' ') printf("\n== %d. %s  [%.0f s]\n", ++d->n_step, title, now_s() - d->t0);
    else printf("\n== %s  [%.0f s]\n", title, now_s() - d->t0);
}

/* One step: its title, its command, its output, and its time. */
static int step(demo *d, const char *title, char **args) {
    header(d, title);
    print_cmd(args);
    double t = now_s();
    int rc = run_child(d, args, NULL, 0);
    if (rc) {
        fprintf(stderr, "clinfm demo: step '%s' failed (exit %d)\n", title, rc);
        return rc;
    }
    printf("   (%.1f s)\n", now_s() - t);
    return 0;
}

/* ------------------------------------------------------------------ output folder */

static int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static int dir_is_empty(const char *path) {
    DIR *dir = opendir(path);
    if (!dir) return 0;
    struct dirent *e;
    int empty = 1;
    while ((e = readdir(dir)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) empty = 0;
    closedir(dir);
    return empty;
}

static int mkdir_p(const char *path, mode_t mode) {
    char buf[PATHCAP];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            if (mkdir(buf, 0755) != 0 && errno != EEXIST) return -1;
            *p = '/';
        }
    if (mkdir(buf, mode) != 0 && errno != EEXIST) return -1;
    return 0;
}

/* A fresh output folder: an earlier demo's (it holds the marker) is cleared; anything else that
 * is not empty is refused, so the demo never deletes what it did not make. */
static int prepare_out(const char *out) {
    struct stat st;
    char marker[PATHCAP];
    join(marker, out, DEMO_MARKER);
    if (stat(out, &st) == 0) {
        if (!S_ISDIR(st.st_mode)) {
            fprintf(stderr, "clinfm demo: %s: exists and is not a folder\n", out);
            return 1;
        }
        if (access(marker, F_OK) == 0) {
            printf("clearing %s (an earlier demo's outputs)\n", out);
            if (nftw(out, rm_entry, 16, FTW_DEPTH | FTW_PHYS) != 0) {
                fprintf(stderr, "clinfm demo: %s: cannot clear an earlier demo's outputs: %s\n", out,
                        strerror(errno));
                return 1;
            }
        } else if (!dir_is_empty(out)) {
            fprintf(stderr,
                    "clinfm demo: %s: exists, is not empty and was not made by clinfm demo; "
                    "choose another --out or remove it\n",
                    out);
            return 1;
        }
    }
    if (mkdir_p(out, 0755) != 0) {
        fprintf(stderr, "clinfm demo: %s: cannot create folder: %s\n", out, strerror(errno));
        return 1;
    }
    cf_err err = {0};
    const char *note = "made by clinfm demo; the next demo with this --out clears this folder\n";
    if (atomic_write_file(marker, note, strlen(note), &err)) {
        fprintf(stderr, "clinfm demo: %s\n", err.msg);
        return 1;
    }
    return 0;
}

/* ------------------------------------------------------------------ choosing a patient */

/* The held-out patients' highest fine-tuned risk, by pseudonym, from eval's predictions.csv
 * (columns subject_id,prediction_time,boolean_value,<predictors...>). Returns the number of rows
 * read; *pseudo and *risk are sorted together, risk descending. Unreadable files give 0. */
typedef struct {
    int64_t pseudo;
    double risk;
} held_row;

static int cmp_risk(const void *a, const void *b) {
    double x = ((const held_row *)a)->risk, y = ((const held_row *)b)->risk;
    return x < y ? 1 : x > y ? -1 : 0;
}

static size_t read_held_out(const char *csv, held_row **out) {
    *out = NULL;
    FILE *f = fopen(csv, "r");
    if (!f) return 0;
    char line[4096];
    int col = -1;
    if (fgets(line, sizeof line, f)) {
        int i = 0;
        for (char *tok = strtok(line, ",\r\n"); tok; tok = strtok(NULL, ",\r\n"), i++)
            if (!strcmp(tok, "finetuned")) col = i;
    }
    size_t n = 0, cap = 0;
    held_row *rows = NULL;
    while (col >= 0 && fgets(line, sizeof line, f)) {
        char *p = line;
        int64_t id = strtoll(p, NULL, 10);
        for (int i = 0; i < col && p; i++) {
            p = strchr(p, ',');
            if (p) p++;
        }
        if (!p || id <= 0) continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 256;
            held_row *nr = realloc(rows, cap * sizeof *rows);
            if (!nr) break;
            rows = nr;
        }
        rows[n].pseudo = id;
        rows[n].risk = strtod(p, NULL);
        n++;
    }
    fclose(f);
    if (n) qsort(rows, n, sizeof *rows, cmp_risk);
    *out = rows;
    return n;
}

/* The patient whose chart the demo opens, by the id the service knows (the source's id). First
 * choice: a held-out patient (one the model never trained on) who is alive, the one the model
 * rated highest at one of the task's prediction times in eval, found through the
 * de-identification key (eval saw pseudonyms). Otherwise: a living patient whose latest encounter
 * is a hospital stay, with the most stays; else the living patient with the most events. */
static int pick_patient(const char *store_path, const char *key_path, const char *predictions, char *id,
                        size_t cap, const char **why, cf_err *err) {
    store s;
    int rc = store_open(&s, store_path, err);
    if (rc) return rc;
    int64_t death = store_find_code(&s, "MEDS_DEATH");
    uint8_t *kind = calloc(s.n_codes ? s.n_codes : 1, 1); /* 1: an encounter start, 2: inpatient */
    if (!kind) {
        store_close(&s);
        return cf_fail(err, CF_EINTERNAL, "out of memory");
    }
    static const char *const inpatient[] = {"ENCOUNTER_START//IMP", "ENCOUNTER_START//ACUTE",
                                            "ENCOUNTER_START//NONAC", "HOSPITAL_ADMISSION//", NULL};
    for (uint64_t c = 0; c < s.n_codes; c++) {
        const char *code = store_code_str(&s, (uint32_t)c);
        if (!strncmp(code, "ENCOUNTER_START//", 17) || !strncmp(code, "HOSPITAL_ADMISSION//", 20)) kind[c] = 1;
        for (int i = 0; inpatient[i]; i++)
            if (!strncmp(code, inpatient[i], strlen(inpatient[i]))) kind[c] = 2;
    }
    held_row *held = NULL;
    size_t n_held = read_held_out(predictions, &held);
    unsigned char key[DEID_KEY_BYTES], sub[DEID_KEY_BYTES];
    cf_err kerr = {0};
    int have_key = n_held && deid_key_load(key_path, key, &kerr) == CF_OK;
    if (have_key) deid_subkey(key, DEID_SUBKEY_PSEUDONYM, sub);
    int64_t best = -1;
    double best_score = -1;
    size_t best_rank = n_held;
    for (uint64_t i = 0; i < s.n_subjects; i++) {
        uint64_t a = s.subject_start[i], b = s.subject_start[i + 1];
        int dead = 0, last_kind = 0, stays = 0;
        for (uint64_t e = a; e < b; e++) {
            uint32_t c = s.code[e];
            if (death >= 0 && c == (uint32_t)death) dead = 1;
            if (kind[c]) last_kind = kind[c];
            if (kind[c] == 2) stays++;
        }
        if (dead) continue;
        if (have_key) {
            int64_t p = deid_pseudonym(sub, s.subject_id[i]);
            for (size_t r = 0; r < best_rank; r++)
                if (held[r].pseudo == p) {
                    best_rank = r;
                    best = (int64_t)i;
                    best_score = 1e300;
                    break;
                }
        }
        if (best_rank < n_held) continue; /* a held-out patient outranks every other rule */
        double n = (double)(b - a);
        double score = (last_kind == 2 ? 1e12 : 0) + stays * 1e7 + (n < 1e7 ? n : 1e7 - 1);
        if (score > best_score) {
            best_score = score;
            best = (int64_t)i;
        }
    }
    *why = best_rank < n_held ? "a living held-out patient (never seen in training), the one eval rated highest"
                              : "a living patient whose latest encounter is a hospital stay, with the most stays";
    sodium_memzero(key, sizeof key);
    sodium_memzero(sub, sizeof sub);
    free(held);
    free(kind);
    if (best < 0) {
        store_close(&s);
        return cf_fail(err, CF_EINPUT, "%s: no living patient to show", store_path);
    }
    size_t kl;
    const char *k = store_subject_key(&s, (uint64_t)best, &kl);
    if (k && kl < cap) snprintf(id, cap, "%.*s", (int)kl, k);
    else snprintf(id, cap, "%lld", (long long)s.subject_id[best]);
    store_close(&s);
    return CF_OK;
}

/* ------------------------------------------------------------------ HTTP (libcurl) */

/* curl's body callback: appends to an sbuf (0, which ends the transfer, when out of memory). */
static size_t on_body(char *p, size_t sz, size_t n, void *u) { return sbuf_put(u, p, sz * n) ? 0 : sz * n; }

/* POSTs (body) or GETs (body NULL) url; the answer's body into resp, its status into *status. */
static int http_call(const char *url, const char *bearer, const char *body, sbuf *resp, long *status,
                     cf_err *err) {
    CURL *h = curl_easy_init();
    if (!h) return cf_fail(err, CF_EINTERNAL, "libcurl did not start");
    struct curl_slist *hdr = NULL;
    char auth[512];
    if (bearer) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", bearer);
        hdr = curl_slist_append(hdr, auth);
    }
    hdr = curl_slist_append(hdr, "Content-Type: application/json");
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 120L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, resp);
    if (body) curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    CURLcode cc = curl_easy_perform(h);
    int rc = CF_OK;
    if (cc != CURLE_OK) rc = cf_fail(err, CF_EINPUT, "%s: %s", url, curl_easy_strerror(cc));
    else curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
    curl_slist_free_all(hdr);
    curl_easy_cleanup(h);
    if (!rc && sbuf_put(resp, "", 0)) rc = cf_fail(err, CF_EINTERNAL, "out of memory"); /* "" at least */
    return rc;
}

/* ------------------------------------------------------------------ the service */

/* The task file's `title = ` line (a bounded copy), else its name. */
static void task_title(const char *file, const char *name, char *out, size_t cap) {
    snprintf(out, cap, "%s", name);
    FILE *f = fopen(file, "r");
    if (!f) return;
    char line[1024];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "title", 5)) continue;
        char *p = line + 5;
        while (*p == ' ' || *p == '\t') p++;
        if (*p != '=') continue;
        p++;
        while (*p == ' ' || *p == '\t') p++;
        p[strcspn(p, "\r\n#")] = '\0';
        size_t n = strlen(p);
        while (n && p[n - 1] == ' ') p[--n] = '\0';
        if (n > 80) n = 80; /* the service caps titles at 80 characters */
        if (n) snprintf(out, cap, "%.*s", (int)n, p);
        break;
    }
    fclose(f);
}

static int write_service_config(const char *path, const char *task, const char *title, cf_err *err) {
    cJSON *c = cJSON_CreateObject();
    cJSON_AddStringToObject(c, "comment",
                            "Written by clinfm demo: loopback only, plain HTTP (put a TLS proxy in front, or set "
                            "tls, before anything but loopback reaches it; docs/SERVE.md).");
    cJSON_AddStringToObject(c, "listen", "127.0.0.1");
    cJSON_AddNumberToObject(c, "port", 0);
    cJSON_AddNumberToObject(c, "threads", 2);
    cJSON_AddStringToObject(c, "database", "serve.db");
    cJSON_AddStringToObject(c, "secret_file", "../private/serve.key");
    cJSON_AddStringToObject(c, "prediction_time", "last_event");
    cJSON *audit = cJSON_AddObjectToObject(c, "audit");
    cJSON_AddNumberToObject(audit, "anchor_interval_s", 10);
    cJSON_AddStringToObject(audit, "anchor_file", "anchors.log");
    cJSON *tasks = cJSON_AddArrayToObject(c, "tasks");
    cJSON *t = cJSON_CreateObject();
    cJSON_AddStringToObject(t, "id", task);
    cJSON_AddStringToObject(t, "title", title);
    cJSON_AddNumberToObject(t, "warning", 0.1);
    cJSON_AddNumberToObject(t, "critical", 0.3);
    cJSON_AddItemToArray(tasks, t);
    cJSON *svcs = cJSON_AddArrayToObject(c, "services");
    cJSON *s = cJSON_CreateObject();
    cJSON_AddStringToObject(s, "id", "clinfm-patient-view");
    cJSON_AddStringToObject(s, "hook", "patient-view");
    cJSON_AddStringToObject(s, "title", "clinfm risk");
    cJSON_AddStringToObject(s, "description", "The hospital model's risk when a chart is opened, with the events that raised it.");
    cJSON *st = cJSON_AddArrayToObject(s, "tasks");
    cJSON_AddItemToArray(st, cJSON_CreateString(task));
    /* every card, also below the warning threshold, so the demo always shows one */
    cJSON_AddBoolToObject(s, "show_info", 1);
    cJSON_AddItemToArray(svcs, s);
    return json_write_file(path, c, 1, err);
}

static pid_t start_service(const demo *d, char **args, const char *log_path) {
    int n = 0;
    while (args[n]) n++;
    char **argv = calloc((size_t)n + 2, sizeof *argv);
    if (!argv) return -1;
    argv[0] = "clinfm";
    for (int i = 0; i < n; i++) argv[i + 1] = args[i];
    int fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        fprintf(stderr, "clinfm demo: %s: cannot create: %s\n", log_path, strerror(errno));
        free(argv);
        return -1;
    }
    fflush(stdout);
    fflush(stderr);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        /* the service never outlives the demo, however the demo ends */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent) _exit(1);
        dup2(fd, STDOUT_FILENO);
        dup2(fd, STDERR_FILENO);
        execv(d->self, argv);
        _exit(127);
    }
    close(fd);
    free(argv);
    if (pid < 0) fprintf(stderr, "clinfm demo: cannot start the service: %s\n", strerror(errno));
    return pid;
}

/* SIGTERM (the service drains, anchors its chain and exits 0), then SIGKILL after 30 s. */
static int stop_service(pid_t pid) {
    int st = 0;
    kill(pid, SIGTERM);
    for (int i = 0; i < 300; i++) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid) return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        if (r < 0 && errno != EINTR) return 2;
        usleep(100000);
    }
    fprintf(stderr, "clinfm demo: the service did not stop within 30 s; killing it\n");
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
    return 137;
}

static void tail_log(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) return;
    char lines[8][512];
    int n = 0;
    while (fgets(lines[n % 8], sizeof lines[0], f)) n++;
    fclose(f);
    fprintf(stderr, "last lines of %s:\n", path);
    for (int i = n > 8 ? n - 8 : 0; i < n; i++) fprintf(stderr, "  | %s", lines[i % 8]);
}

/* Prints one card as a clinician's screen would carry it. */
static int print_card(const char *json, char *uuid, size_t cap) {
    cJSON *r = cJSON_Parse(json);
    const cJSON *cards = r ? cJSON_GetObjectItemCaseSensitive(r, "cards") : NULL;
    const cJSON *card = cJSON_IsArray(cards) ? cJSON_GetArrayItem(cards, 0) : NULL;
    const cJSON *u = card ? cJSON_GetObjectItemCaseSensitive(card, "uuid") : NULL;
    const cJSON *sum = card ? cJSON_GetObjectItemCaseSensitive(card, "summary") : NULL;
    const cJSON *ind = card ? cJSON_GetObjectItemCaseSensitive(card, "indicator") : NULL;
    const cJSON *det = card ? cJSON_GetObjectItemCaseSensitive(card, "detail") : NULL;
    if (!cJSON_IsString(u) || !cJSON_IsString(sum) || !cJSON_IsString(ind)) {
        cJSON_Delete(r);
        return -1;
    }
    snprintf(uuid, cap, "%s", u->valuestring);
    printf("   +-- card (%s) ----------------------------------------------\n", ind->valuestring);
    printf("   | %s\n   |\n", sum->valuestring);
    if (cJSON_IsString(det)) {
        printf("   | ");
        for (const char *p = det->valuestring; *p; p++) {
            putchar(*p);
            if (*p == '\n') printf("   | ");
        }
        printf("\n");
    }
    printf("   +-- uuid %s\n", uuid);
    cJSON_Delete(r);
    return 0;
}

typedef struct {
    const char *hospital_store; /* the identified store the service reads patients from */
    const char *model;
    const char *task, *task_file;
    const char *deid_key;    /* to find eval's held-out patients (pseudonyms) in the hospital store */
    const char *predictions; /* eval's predictions.csv for the task */
} service_args;

/* The service part: a secret, the configuration, an API key, `clinfm serve` on a free loopback
 * port, one patient-view call and its card, one feedback, a clean stop, and the audit checked. */
static int run_service(demo *d, const service_args *a) {
    char dir[PATHCAP], priv[PATHCAP], secret[PATHCAP], config[PATHCAP], portfile[PATHCAP], log[PATHCAP],
        hookfile[PATHCAP], cardfile[PATHCAP], keyfile[PATHCAP], fbfile[PATHCAP], export[PATHCAP], anchors[PATHCAP];
    join(dir, d->out, "service");
    join(priv, d->out, "private");
    join(secret, priv, "serve.key");
    join(config, dir, "serve.json");
    join(portfile, dir, "port");
    join(log, dir, "serve.log");
    join(hookfile, dir, "hook-request.json");
    join(cardfile, dir, "cards.json");
    join(keyfile, priv, "api.key");
    join(fbfile, dir, "feedback-request.json");
    join(export, dir, "feedback.csv");
    join(anchors, dir, "anchors.log");
    if (mkdir_p(dir, 0700) || mkdir_p(priv, 0700)) {
        fprintf(stderr, "clinfm demo: %s: cannot create folder: %s\n", dir, strerror(errno));
        return 1;
    }
    int rc;
    if ((rc = step(d, "The service's secret (audit chain, MACs, pseudonyms; kept apart from its database)",
                   (char *[]){"audit", "keygen", secret, NULL})))
        return rc;
    char title[128];
    task_title(a->task_file, a->task, title, sizeof title);
    cf_err err = {0};
    header(d, "The service's configuration");
    printf("wrote %s: loopback, a free port, patient-view with the task %s, scored by %s\n", config, a->task,
           a->model);
    if (write_service_config(config, a->task, title, &err)) {
        fprintf(stderr, "clinfm demo: %s\n", err.msg);
        return 1;
    }
    char key[512];
    char *token[] = {"token", "create", "--config", config, "--name", "demo clinician", "--role", "clinician", NULL};
    header(d, "A clinician's API key (shown once; only a keyed hash is stored)");
    print_cmd(token);
    if ((rc = run_child(d, token, key, sizeof key))) {
        fprintf(stderr, "clinfm demo: step 'token create' failed (exit %d)\n", rc);
        return rc;
    }
    key[strcspn(key, "\r\n")] = '\0';
    if (strncmp(key, "cfk_", 4)) {
        fprintf(stderr, "clinfm demo: token create printed no key\n");
        return 2;
    }
    printf("%.24s... (kept in %s, mode 0600)\n", key, keyfile);
    char keyline[520];
    snprintf(keyline, sizeof keyline, "%s\n", key);
    if (atomic_write_file(keyfile, keyline, strlen(keyline), &err)) {
        fprintf(stderr, "clinfm demo: %s\n", err.msg);
        return 1;
    }

    char patient[256];
    const char *why = "";
    if (pick_patient(a->hospital_store, a->deid_key, a->predictions, patient, sizeof patient, &why, &err)) {
        fprintf(stderr, "clinfm demo: %s\n", err.msg);
        return 1;
    }

    char *serve[] = {"serve", "--config", config, "--store", (char *)a->hospital_store, "--model", (char *)a->model,
                     "--port", "0", "--port-file", portfile, NULL};
    header(d, "Start the service on a free loopback port (access log in service/serve.log)");
    print_cmd(serve);
    unlink(portfile);
    double t = now_s();
    pid_t pid = start_service(d, serve, log);
    if (pid < 0) return 2;
    /* from here on, every path stops the service */
    int port = 0;
    sbuf resp = {0};
    char uuid[128] = "";
    char *hook_json = NULL;
    for (int i = 0; i < 1200 && !port; i++) { /* the model loads first: up to 120 s */
        FILE *f = fopen(portfile, "r");
        if (f) {
            if (fscanf(f, "%d", &port) != 1) port = 0;
            fclose(f);
        }
        if (port) break;
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            fprintf(stderr, "clinfm demo: the service exited before listening\n");
            tail_log(log);
            pid = -1;
            rc = 1;
            goto done;
        }
        usleep(100000);
    }
    if (!port) {
        fprintf(stderr, "clinfm demo: the service did not listen within 120 s\n");
        tail_log(log);
        rc = 1;
        goto done;
    }
    printf("listening on http://127.0.0.1:%d (pid %d, up in %.1f s)\n", port, (int)pid, now_s() - t);

    /* the EHR's call when a clinician opens the chart: no prefetch, so the service reads the
     * patient from its store */
    header(d, "A clinician opens a chart: the EHR calls the CDS Hooks service (patient-view)");
    printf("the chart: %s\n", why);
    cJSON *req = cJSON_CreateObject();
    char hi[64];
    snprintf(hi, sizeof hi, "d3m0%04x-0000-4000-8000-%012llx", (unsigned)(getpid() & 0xffff),
             (unsigned long long)time(NULL));
    cJSON_AddStringToObject(req, "hookInstance", hi);
    cJSON_AddStringToObject(req, "hook", "patient-view");
    cJSON *ctx = cJSON_AddObjectToObject(req, "context");
    cJSON_AddStringToObject(ctx, "userId", "Practitioner/demo-clinician");
    cJSON_AddStringToObject(ctx, "patientId", patient);
    hook_json = cJSON_PrintUnformatted(req);
    cJSON_Delete(req);
    if (!hook_json || atomic_write_file(hookfile, hook_json, strlen(hook_json), &err)) {
        fprintf(stderr, "clinfm demo: %s\n", hook_json ? err.msg : "out of memory");
        rc = 2;
        goto done;
    }
    char url[512];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/cds-services/clinfm-patient-view", port);
    printf("$ curl -s -H \"Authorization: Bearer $(cat %s)\" -H 'Content-Type: application/json' \\\n"
           "       --data-binary @%s %s\n",
           keyfile, hookfile, url);
    printf("   request: %s\n", hook_json);
    long status = 0;
    t = now_s();
    if (http_call(url, key, hook_json, &resp, &status, &err)) {
        fprintf(stderr, "clinfm demo: %s\n", err.msg);
        rc = 1;
        goto done;
    }
    if (status != 200) {
        fprintf(stderr, "clinfm demo: the hook call answered %ld: %.300s\n", status, resp.p);
        tail_log(log);
        rc = 1;
        goto done;
    }
    if (atomic_write_file(cardfile, resp.p, resp.len, &err)) {
        fprintf(stderr, "clinfm demo: %s\n", err.msg);
        rc = 1;
        goto done;
    }
    printf("   answer: HTTP 200 in %.2f s (saved to %s)\n", now_s() - t, cardfile);
    if (print_card(resp.p, uuid, sizeof uuid)) {
        fprintf(stderr, "clinfm demo: the answer holds no card: %.300s\n", resp.p);
        rc = 1;
        goto done;
    }

    header(d, "The clinician accepts the card: feedback to the service");
    char ts[32], fb[512];
    time_t now = time(NULL);
    struct tm tmv;
    gmtime_r(&now, &tmv);
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tmv);
    snprintf(fb, sizeof fb, "{\"feedback\":[{\"card\":\"%s\",\"outcome\":\"accepted\",\"outcomeTimestamp\":\"%s\"}]}",
             uuid, ts);
    if (atomic_write_file(fbfile, fb, strlen(fb), &err)) {
        fprintf(stderr, "clinfm demo: %s\n", err.msg);
        rc = 1;
        goto done;
    }
    snprintf(url, sizeof url, "http://127.0.0.1:%d/cds-services/clinfm-patient-view/feedback", port);
    printf("$ curl -s -H \"Authorization: Bearer $(cat %s)\" -H 'Content-Type: application/json' \\\n"
           "       --data-binary @%s %s\n",
           keyfile, fbfile, url);
    printf("   request: %s\n", fb);
    sbuf_clear(&resp);
    if (http_call(url, key, fb, &resp, &status, &err)) {
        fprintf(stderr, "clinfm demo: %s\n", err.msg);
        rc = 1;
        goto done;
    }
    printf("   answer: HTTP %ld %s\n", status, resp.p);
    if (status != 200 || !strstr(resp.p, "\"recorded\":1")) {
        fprintf(stderr, "clinfm demo: the feedback was not recorded\n");
        rc = 1;
        goto done;
    }
    rc = 0;
done:
    free(hook_json);
    sbuf_free(&resp);
    if (pid > 0) {
        header(d, "Stop the service (SIGTERM: connections drain, the audit chain is anchored)");
        int src = stop_service(pid);
        if (src) {
            fprintf(stderr, "clinfm demo: the service exited with status %d\n", src);
            tail_log(log);
            if (!rc) rc = 1;
        } else {
            printf("stopped cleanly\n");
        }
    }
    if (rc) return rc;
    if ((rc = step(d, "Verify the audit trail (hash chain, card and feedback MACs, anchors)",
                   (char *[]){"audit", "verify", "--config", config, "--anchor", anchors, NULL})))
        return rc;
    return step(d, "Export the clinicians' feedback for the next model (joined with its cards)",
                (char *[]){"feedback", "export", "--config", config, "--format", "csv", "--output", export, NULL});
}

/* ------------------------------------------------------------------ the command */

static int parse_tasks(const char *list, char names[MAX_TASKS][128], int *n) {
    *n = 0;
    const char *p = list;
    while (*p) {
        size_t len = strcspn(p, ",");
        if (len == 0 || len >= 128 || *n == MAX_TASKS) return -1;
        snprintf(names[*n], 128, "%.*s", (int)len, p);
        (*n)++;
        p += len;
        if (*p == ',') p++;
    }
    return *n >= 1 ? 0 : -1;
}

/* The model's held-out loss beside the bigram baseline, from the bundle's train.json. */
static void report_loss(const char *model) {
    char path[PATHCAP], *text = NULL;
    join(path, model, "train.json");
    FILE *f = fopen(path, "r");
    if (!f) return;
    size_t cap = 1 << 16, n = 0;
    text = malloc(cap);
    if (text) {
        n = fread(text, 1, cap - 1, f);
        text[n] = '\0';
    }
    fclose(f);
    cJSON *j = text ? cJSON_Parse(text) : NULL;
    free(text);
    const cJSON *l = j ? cJSON_GetObjectItemCaseSensitive(j, "loss_nats_per_token") : NULL;
    const cJSON *ho = l ? cJSON_GetObjectItemCaseSensitive(l, "held_out") : NULL;
    const cJSON *bi = l ? cJSON_GetObjectItemCaseSensitive(l, "held_out_bigram") : NULL;
    if (cJSON_IsNumber(ho) && cJSON_IsNumber(bi)) {
        if (ho->valuedouble < bi->valuedouble)
            printf("   the model beats the bigram baseline on held-out patients: %.3f vs %.3f nats/token\n",
                   ho->valuedouble, bi->valuedouble);
        else
            printf("   the model does NOT beat the bigram baseline yet (%.3f vs %.3f nats/token): train longer "
                   "(--steps)\n",
                   ho->valuedouble, bi->valuedouble);
    }
    cJSON_Delete(j);
}

int cmd_demo(int argc, char **argv) {
    int status;
    const char *data = NULL, *mappings_arg = NULL, *out = "out/demo", *tasks_arg = NULL;
    unsigned long long patients = 4000, steps = 400, seed = 1;
    int quick = 0;
    const cli_opt opts[] = {
        CLI_OPT_STR("out", &out, "DIR",
                    "where outputs go (default out/demo); an earlier demo's folder is cleared,\n"
                    "any other non-empty folder is refused"),
        CLI_OPT_STR("data", &data, "DIR",
                    "the public datasets (a folder holding mimic-iv-demo/ and synthea-fhir-r4/,\n"
                    "usually $CLINFM_DATA) instead of generated patients"),
        CLI_OPT_U64("patients", &patients, "N", 50, 1000000, "generated patients (default 4000)"),
        CLI_OPT_U64("steps", &steps, "N", 1, 1000000, "training steps (default 400)"),
        CLI_OPT_STR("tasks", &tasks_arg, "A,B",
                    "task names or files (default in_hospital_mortality_fhir,long_stay_7d_fhir;\n"
                    "with --data: new_onset_heart_failure,readmission_30d_fhir); the first is\n"
                    "the card's"),
        CLI_OPT_U64("seed", &seed, "S", 0, CLI_ANY, "seed of the generated population (default 1)"),
        CLI_OPT_STR("mappings", &mappings_arg, "DIR", "mapping files, with --data (default: the shipped mappings/)"),
        CLI_OPT_FLAG("quick", &quick,
                     "a smoke run of the same path (a tiny model, one baseline, no bootstrap\n"
                     "intervals): for tests, with small --patients and --steps"),
        CLI_OPT_END};
    const cli_spec spec = {
        .cmd = "demo",
        .usage = "demo [--out DIR] [--patients N] [--steps N] [--tasks A,B] [--seed S]\n"
                 "       clinfm demo --data DIR [--out DIR] [--steps N] [--tasks A,B]",
        .about = "The whole path in one command, each step printed as the clinfm command it runs:\n"
                 "  1. data: `clinfm synth` makes N fictional patients with notes and ground truth (default),\n"
                 "     or --data DIR reads the MIMIC-IV demo and the Synthea FHIR bundles (ingested, summarised,\n"
                 "     exported as MEDS CSV); the Synthea population then plays the hospital\n"
                 "  2. ingest the FHIR data into an event store (the hospital's identified data)\n"
                 "  3. de-identify it with a fresh key (structured fields and notes)\n"
                 "  4. train a small model on the de-identified store; held-out loss vs the bigram baseline\n"
                 "  5. evaluate it on the tasks beside count-feature baselines: report.html per task (with the\n"
                 "     ceiling row, the best any predictor could do, on generated data)\n"
                 "  6. serve it on a free loopback port with a fresh API key; one CDS Hooks patient-view call\n"
                 "     printed with its card; one clinician feedback; clean stop; the audit trail verified\n"
                 "then where every output is and what to open first.\n",
        .opts = opts,
        .after = "Takes about 5-10 minutes on 2 cores with the defaults. The service listens on 127.0.0.1\n"
                 "only, for the length of the demo.\n",
        .status = "exit status: 0 ok, 1 a step failed or bad usage.\n"};
    if (!cli_parse(&spec, argc, argv, NULL, &status)) return status;
    if (!out[0] || strlen(out) > 2048) return cli_usage_error("demo", "--out must be 1 to 2048 characters");
    if (data && strlen(data) > 2048) return cli_usage_error("demo", "--data must be at most 2048 characters");

    char task_names[MAX_TASKS][128];
    int n_tasks = 0;
    /* on Synthea these two have positives enough (49 new heart failures, 31 readmissions); the
     * hospital tasks have almost none in its one-day stays */
    const char *default_tasks = data ? "new_onset_heart_failure,readmission_30d_fhir"
                                     : "in_hospital_mortality_fhir,long_stay_7d_fhir";
    if (parse_tasks(tasks_arg ? tasks_arg : default_tasks, task_names, &n_tasks))
        return cli_usage_error("demo", "--tasks expects 1 to %d comma-separated task names", MAX_TASKS);
    char task_files[MAX_TASKS][PATHCAP], task_ids[MAX_TASKS][128];
    for (int i = 0; i < n_tasks; i++) {
        char named[PATHCAP];
        cf_share_resolve_named(task_names[i], "tasks", ".task", named, PATHCAP);
        /* printed in every command: the shortest true path ("build/../tasks" becomes "tasks") */
        if (!realpath(named, task_files[i])) snprintf(task_files[i], PATHCAP, "%s", named);
        if (access(task_files[i], R_OK) != 0) {
            fprintf(stderr, "clinfm demo: %s: no such task (a name among the shipped tasks/ or a file)\n",
                    task_names[i]);
            return 1;
        }
        /* the task id is the file's name: eval writes heads/<id>.json and its truth is truth/<id>.csv */
        const char *base = strrchr(task_files[i], '/');
        base = base ? base + 1 : task_files[i];
        snprintf(task_ids[i], sizeof task_ids[i], "%.*s", (int)strcspn(base, "."), base);
    }

    char mimic_in[PATHCAP], synthea_in[PATHCAP], mappings[PATHCAP];
    if (data) {
        struct stat st;
        join(mimic_in, data, "mimic-iv-demo");
        join(synthea_in, data, "synthea-fhir-r4");
        if (stat(data, &st) != 0 || !S_ISDIR(st.st_mode)) {
            fprintf(stderr,
                    "clinfm demo: --data %s: no such folder. The real-data demo reads the MIMIC-IV demo and the "
                    "Synthea FHIR bundles where they are kept (set CLINFM_DATA, or --data); without "
                    "--data the demo makes its own patients\n",
                    data);
            return 1;
        }
        if (stat(mimic_in, &st) != 0 || stat(synthea_in, &st) != 0) {
            fprintf(stderr, "clinfm demo: --data %s: needs mimic-iv-demo/ and synthea-fhir-r4/ in it\n", data);
            return 1;
        }
        char named[PATHCAP];
        if (mappings_arg) snprintf(named, sizeof named, "%s", mappings_arg);
        else cf_share_path("mappings", named, sizeof named);
        if (!realpath(named, mappings)) snprintf(mappings, sizeof mappings, "%s", named);
    }

    demo d = {.out = out, .t0 = now_s()};
    ssize_t sl = readlink("/proc/self/exe", d.self, sizeof d.self - 1);
    if (sl <= 0) {
        fprintf(stderr, "clinfm demo: cannot find its own binary (/proc/self/exe): %s\n", strerror(errno));
        return 2;
    }
    d.self[sl] = '\0';
    /* OpenMP threads that spin while they wait starve each other on a busy machine (ten times
     * slower under load); a demo on a shared or small machine is better off sleeping. */
    setenv("OMP_WAIT_POLICY", "PASSIVE", 0);
    /* Everything the demo writes is patient data (fictional or not) or a secret: owner only. */
    umask(077);
    if (prepare_out(out)) return 1;
    curl_global_init(CURL_GLOBAL_DEFAULT);

    char key[PATHCAP], hospital[PATHCAP], ingest_report[PATHCAP], deid_store[PATHCAP], deid_report[PATHCAP],
        model[PATHCAP], syn[PATHCAP], fhir_in[PATHCAP], privdir[PATHCAP], evaldir[PATHCAP], buf[PATHCAP];
    char np[32], ns[32], nseed[32], neval[32];
    snprintf(np, sizeof np, "%llu", patients);
    snprintf(ns, sizeof ns, "%llu", steps);
    snprintf(nseed, sizeof nseed, "%llu", seed);
    snprintf(neval, sizeof neval, "%llu", steps >= 4 ? steps / 4 : 1);
    join(privdir, out, "private");
    join(key, privdir, "deid.key");
    join(hospital, out, "hospital.store");
    join(ingest_report, out, "hospital.ingest.json");
    join(deid_store, out, "deid.store");
    join(deid_report, out, "deid.report.json");
    join(model, out, "model");
    join(syn, out, "synth");
    join(evaldir, out, "eval");
    join(fhir_in, syn, "fhir");
    if (mkdir_p(privdir, 0700) || mkdir_p(evaldir, 0755)) {
        fprintf(stderr, "clinfm demo: %s: cannot create folder: %s\n", out, strerror(errno));
        return 1;
    }
    int rc = 0;
    printf("clinfm demo: the whole path, %s; outputs under %s/\n",
           data ? "on the MIMIC-IV demo and Synthea" : "on generated patients (no data directory needed)", out);

    char mimic_store[PATHCAP], mimic_report[PATHCAP], meds[PATHCAP], mimic_deid[PATHCAP], mapping[PATHCAP];
    join(mimic_store, out, "mimic.store");
    join(mimic_report, out, "mimic.ingest.json");
    join(meds, out, "mimic-meds");
    join(mimic_deid, out, "mimic.deid.store");
    join(mapping, mappings, "mimic-iv.map");
    if (data) {
        if ((rc = step(&d, "Ingest the MIMIC-IV demo (100 patients) through mappings/mimic-iv.map",
                       (char *[]){"ingest", "--mapping", mapping, "--input", mimic_in, "--out", mimic_store,
                                  "--report", mimic_report, "--quiet", NULL})) ||
            (rc = step(&d, "   its summary", (char *[]){"inspect", mimic_store, "--verify", "--top", "10", NULL})) ||
            (rc = step(&d, "   one patient's timeline",
                       (char *[]){"inspect", mimic_store, "--subject", "10000032", "--limit", "15", NULL})) ||
            (rc = step(&d, "   exported as MEDS CSV",
                       (char *[]){"export", "--format", "meds-csv", mimic_store, "--out", meds, NULL})))
            return rc;
        if ((rc = step(&d, "Ingest the Synthea FHIR bundles (615 patients): the hospital's own records",
                       (char *[]){"ingest", "--format", "fhir", "--input", synthea_in, "--out", hospital,
                                  "--report", ingest_report, "--quiet", NULL})))
            return rc;
    } else {
        if ((rc = step(&d, "Make a population: fictional patients with notes, and the ground truth of each task",
                       (char *[]){"synth", "--patients", np, "--seed", nseed, "--notes", "--out", syn, NULL})))
            return rc;
        if ((rc = step(&d, "Ingest its FHIR export (Bulk Data NDJSON): the hospital's own records",
                       (char *[]){"ingest", "--format", "fhir", "--input", fhir_in, "--out", hospital, "--report",
                                  ingest_report, "--strict", "--quiet", NULL})))
            return rc;
    }
    if ((rc = step(&d, "   its summary", (char *[]){"inspect", hospital, "--top", "8", NULL}))) return rc;
    if ((rc = step(&d, "A fresh de-identification key (kept apart from the data in real use)",
                   (char *[]){"keygen", "--out", key, NULL})))
        return rc;
    if ((rc = step(&d, "De-identify: keyed pseudonyms, date shifts, identifier fields dropped, notes scrubbed",
                   (char *[]){"deid", hospital, "--out", deid_store, "--key", key, "--report", deid_report,
                              "--quiet", NULL})))
        return rc;
    if (data && (rc = step(&d, "   the MIMIC-IV store too",
                           (char *[]){"deid", mimic_store, "--out", mimic_deid, "--key", key, "--quiet", NULL})))
        return rc;
    if ((rc = step(&d, "   the de-identified store", (char *[]){"inspect", deid_store, "--top", "3", NULL}))) return rc;
    /* 60/10/30: more held-out patients than the default 80/10/10, so a demo's few thousand
     * patients still give the report some positives; train and eval must agree on it. */
    if ((rc = step(&d, "Train a small model on the de-identified store (docs/MODEL.md has the reference size)",
                   quick ? (char *[]){"train", "--store", deid_store, "--out", model, "--split", "60/10/30", "--layers",
                                      "1", "--d-model", "32", "--heads", "2", "--context", "64", "--batch", "4",
                                      "--steps", ns, "--eval-every", neval, "--eval-batches", "2", "--lr", "2e-3", NULL}
                         : (char *[]){"train", "--store", deid_store, "--out", model, "--split", "60/10/30", "--layers",
                                      "2", "--d-model", "128", "--heads", "4", "--context", "256", "--batch", "8",
                                      "--steps", ns, "--eval-every", neval, "--lr", "2e-3", NULL})))
        return rc;
    report_loss(model);
    for (int i = 0; i < n_tasks; i++) {
        char title[256], edir[PATHCAP], truth[PATHCAP];
        join(edir, evaldir, task_ids[i]);
        snprintf(buf, sizeof buf, "truth/%s.csv", task_ids[i]);
        join(truth, syn, buf);
        snprintf(title, sizeof title, "Evaluate on %s: the model beside count-feature baselines%s", task_ids[i],
                 data ? "" : " and the ceiling");
        char *ev[40] = {"eval", "--task", task_files[i], "--store", deid_store, "--model", model,
                        "--model-predictors", "finetuned", "--baselines", quick ? "logreg" : "logreg,xgboost",
                        "--split", "60/10/30", "--bootstrap", quick ? "0" : "500", "--out", edir, NULL};
        int n = 0;
        while (ev[n]) n++;
        if (!data) {
            if (access(truth, R_OK) != 0) {
                fprintf(stderr, "clinfm demo: %s: the generator wrote no ground truth for this task\n", truth);
                return 1;
            }
            ev[n++] = "--ceiling";
            ev[n++] = truth;
            ev[n++] = "--ceiling-key";
            ev[n++] = key;
        }
        ev[n] = NULL;
        if ((rc = step(&d, title, ev))) return rc;
    }
    char predictions[PATHCAP];
    snprintf(buf, sizeof buf, "%s/predictions.csv", task_ids[0]);
    join(predictions, evaldir, buf);
    service_args sa = {.hospital_store = hospital, .model = model, .task = task_ids[0], .task_file = task_files[0],
                       .deid_key = key, .predictions = predictions};
    if ((rc = run_service(&d, &sa))) return rc;

    double total = now_s() - d.t0;
    printf("\nDemo finished in %d min %02d s. Open first: %s/eval/%s/report.html\n\nOutputs (under %s/):\n", (int)total / 60,
           (int)total % 60, out, task_ids[0], out);
    const char *w = "  %-30s %s\n";
    if (data) {
        printf(w, "mimic.store", "the MIMIC-IV demo as an event store (clinfm inspect mimic.store)");
        printf(w, "mimic.ingest.json", "its ingestion report (rows, events, rejections)");
        printf(w, "mimic-meds/", "MEDS CSV export (data.csv, codes.csv)");
        printf(w, "mimic.deid.store", "its de-identified copy");
    } else {
        printf(w, "synth/", "the generated population: fhir/ (NDJSON), notes/ (gold identifier spans), truth/, manifest.json");
    }
    printf(w, "hospital.store", "the identified event store (the service reads patients from it)");
    printf(w, "hospital.ingest.json", "its ingestion report");
    printf(w, "private/", "secrets: deid.key, serve.key, api.key (mode 0600; apart from the data in real use)");
    printf(w, "deid.store", "the de-identified store the model learnt from");
    printf(w, "deid.report.json", "what de-identification removed (counts) and k-anonymity");
    printf(w, "model/", "the model bundle: checkpoint, vocabulary, train.json (losses vs baselines), heads/");
    for (int i = 0; i < n_tasks; i++) {
        snprintf(buf, sizeof buf, "eval/%s/", task_ids[i]);
        printf(w, buf, "report.html (open in a browser), MODEL_CARD.md, metrics.json, predictions.csv");
    }
    printf(w, "service/serve.json", "the service's configuration; serve.db its audit trail, cards and feedback");
    printf(w, "service/cards.json", "the patient-view answer (the card above)");
    printf(w, "service/feedback.csv", "the feedback, joined with its card");
    printf(w, "service/serve.log", "the service's access log");
    printf("Serve it again: clinfm serve --config %s/service/serve.json --store %s --model %s\n", out, hospital,
           model);
    return 0;
}
