/* Loading and checking the service configuration; see serve_config.h and docs/SERVE.md. */
#include "serve/serve_config.h"

#include "serve/serve_prefetch.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int serve_read_file(const char *path, size_t max, char **out, size_t *len, cf_err *err) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return cf_fail_errno(err, CF_EINPUT, "%s: cannot open", path);
    struct stat st;
    if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
        close(fd);
        return cf_fail(err, CF_EINPUT, "%s: not a regular file", path);
    }
    if ((size_t)st.st_size > max) {
        close(fd);
        return cf_fail(err, CF_EINPUT, "%s: larger than %zu bytes", path, max);
    }
    char *buf = malloc((size_t)st.st_size + 1);
    if (!buf) {
        close(fd);
        return cf_fail(err, CF_EINTERNAL, "out of memory");
    }
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            free(buf);
            close(fd);
            return cf_fail_errno(err, CF_EINPUT, "%s: cannot read", path);
        }
        got += (size_t)r;
    }
    close(fd);
    buf[got] = '\0';
    *out = buf;
    *len = got;
    return CF_OK;
}

static char *resolve(const char *dir, const char *p) {
    if (!p) return NULL;
    if (p[0] == '/' || !dir || !dir[0]) return strdup(p);
    size_t n = strlen(dir) + strlen(p) + 2;
    char *s = malloc(n);
    if (s) snprintf(s, n, "%s/%s", dir, p);
    return s;
}

/* Every key of o must be in allowed (NULL-terminated). */
static int known_keys(const cJSON *o, const char *const *allowed, const char *name,
                      const char *where, cf_err *err) {
    const cJSON *k;
    cJSON_ArrayForEach(k, o) {
        int ok = 0;
        for (const char *const *a = allowed; *a; a++)
            if (!strcmp(k->string, *a)) ok = 1;
        if (!ok)
            return cf_fail(err, CF_EINPUT, "%s: %s%s%.100s: unknown key (see docs/SERVE.md)", name,
                           where, where[0] ? "." : "", k->string);
    }
    return CF_OK;
}

/* o, when present, must be an object whose keys are all in allowed. */
static int object_keys(const cJSON *o, const char *const *allowed, const char *name, const char *where,
                       cf_err *err) {
    if (o && !cJSON_IsObject(o)) return cf_fail(err, CF_EINPUT, "%s: %s: expected an object", name, where);
    return known_keys(o, allowed, name, where, err);
}

/* Strings are never empty: an empty title, code or path is a mistake, not a choice. */
static int get_str(const cJSON *o, const char *key, const char *dflt, int required,
                   const char **out, const char *name, const char *where, cf_err *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v) {
        if (required)
            return cf_fail(err, CF_EINPUT, "%s: %s%s%s: a string is required", name, where,
                           where[0] ? "." : "", key);
        *out = dflt;
        return CF_OK;
    }
    if (!cJSON_IsString(v) || !v->valuestring[0])
        return cf_fail(err, CF_EINPUT, "%s: %s%s%s: expected a non-empty string", name, where,
                       where[0] ? "." : "", key);
    *out = v->valuestring;
    return CF_OK;
}

/* An optional array of non-empty strings; *out is NULL-terminated (calloc'd). check, when given,
 * returns a reason for a refused value. */
static int get_str_array(const cJSON *o, const char *key, const char ***out, size_t *n,
                         const char *(*check)(const char *), const char *name, const char *where,
                         cf_err *err) {
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(o, key), *v;
    *n = 0;
    if (!arr) return CF_OK;
    if (!cJSON_IsArray(arr))
        return cf_fail(err, CF_EINPUT, "%s: %s.%s: expected an array of strings", name, where, key);
    if (!(*out = calloc((size_t)cJSON_GetArraySize(arr) + 1, sizeof **out)))
        return cf_fail(err, CF_EINTERNAL, "out of memory");
    cJSON_ArrayForEach(v, arr) {
        if (!cJSON_IsString(v) || !v->valuestring[0])
            return cf_fail(err, CF_EINPUT, "%s: %s.%s[%zu]: expected a non-empty string", name,
                           where, key, *n);
        const char *why = check ? check(v->valuestring) : NULL;
        if (why)
            return cf_fail(err, CF_EINPUT, "%s: %s.%s[%zu]: %s", name, where, key, *n, why);
        (*out)[(*n)++] = v->valuestring;
    }
    return CF_OK;
}

/* An http(s) base URL without a trailing '/', query or fragment. */
static const char *check_base_url(const char *u) {
    if (strncmp(u, "http://", 7) && strncmp(u, "https://", 8))
        return "expected an http:// or https:// URL";
    const char *host = u + (u[4] == 's' ? 8 : 7);
    if (!*host || *host == '/') return "the URL names no host";
    if (u[strlen(u) - 1] == '/') return "leave out the trailing '/'";
    if (strpbrk(u, "?#") || strpbrk(u, " \t\r\n")) return "a base URL has no query, fragment or space";
    return NULL;
}

/* A browser origin: scheme, host and optional port, nothing else; never "*". */
static const char *check_origin(const char *o) {
    if (!strcmp(o, "*"))
        return "\"*\" is not accepted: list the origins browser-based EHRs call from";
    const char *why = check_base_url(o);
    if (why) return why;
    if (strchr(o + (o[4] == 's' ? 8 : 7), '/')) return "an origin has no path";
    return NULL;
}

static int get_num(const cJSON *o, const char *key, double dflt, double lo, double hi, double *out,
                   const char *name, const char *where, cf_err *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v) {
        *out = dflt;
        return CF_OK;
    }
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble < lo ||
        v->valuedouble > hi)
        return cf_fail(err, CF_EINPUT, "%s: %s%s%s: expected a number from %g to %g", name, where,
                       where[0] ? "." : "", key, lo, hi);
    *out = v->valuedouble;
    return CF_OK;
}

static int get_int(const cJSON *o, const char *key, int dflt, int lo, int hi, int *out,
                   const char *name, const char *where, cf_err *err) {
    double d;
    int rc = get_num(o, key, dflt, lo, hi, &d, name, where, err);
    if (rc) return rc;
    if (d != floor(d))
        return cf_fail(err, CF_EINPUT, "%s: %s%s%s: expected a whole number", name, where,
                       where[0] ? "." : "", key);
    *out = (int)d;
    return CF_OK;
}

static int get_bool(const cJSON *o, const char *key, int dflt, int *out, const char *name,
                    const char *where, cf_err *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v) {
        *out = dflt;
        return CF_OK;
    }
    if (!cJSON_IsBool(v))
        return cf_fail(err, CF_EINPUT, "%s: %s%s%s: expected true or false", name, where,
                       where[0] ? "." : "", key);
    *out = cJSON_IsTrue(v);
    return CF_OK;
}

static int valid_id(const char *s) {
    if (!*s || strlen(s) > 64) return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '-' || *s == '_' || *s == '.'))
            return 0;
    return 1;
}

static int parse_tasks(serve_config *c, const cJSON *arr, const char *name, cf_err *err) {
    if (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) == 0)
        return cf_fail(err, CF_EINPUT, "%s: tasks: expected a non-empty array", name);
    c->tasks = calloc((size_t)cJSON_GetArraySize(arr), sizeof *c->tasks);
    if (!c->tasks) return cf_fail(err, CF_EINTERNAL, "out of memory");
    const cJSON *t;
    static const char *const keys[] = {"id", "title", "warning", "critical", NULL};
    cJSON_ArrayForEach(t, arr) {
        char w[64];
        snprintf(w, sizeof w, "tasks[%zu]", c->n_tasks);
        serve_task *st = &c->tasks[c->n_tasks];
        int rc;
        if ((rc = object_keys(t, keys, name, w, err)) ||
            (rc = get_str(t, "id", NULL, 1, &st->task_id, name, w, err)) ||
            (rc = get_str(t, "title", st->task_id, 0, &st->title, name, w, err)) ||
            (rc = get_num(t, "warning", 0.2, 0, 1, &st->threshold_warning, name, w, err)) ||
            (rc = get_num(t, "critical", 0.5, 0, 1, &st->threshold_critical, name, w, err)))
            return rc;
        if (!valid_id(st->task_id))
            return cf_fail(err, CF_EINPUT, "%s: %s.id: use 1-64 letters, digits, '-', '_', '.'",
                           name, w);
        if (st->threshold_warning > st->threshold_critical)
            return cf_fail(err, CF_EINPUT, "%s: %s: warning must not exceed critical", name, w);
        if (strlen(st->title) > 80)
            return cf_fail(err, CF_EINPUT, "%s: %s.title: at most 80 characters (cards are short)",
                           name, w);
        for (size_t i = 0; i < c->n_tasks; i++)
            if (!strcmp(c->tasks[i].task_id, st->task_id))
                return cf_fail(err, CF_EINPUT, "%s: %s.id: duplicate task id", name, w);
        c->n_tasks++;
    }
    return CF_OK;
}

/* What the service reads by default: the Patient (age, sex), conditions, medication orders, the
 * 500 most recent observations, encounters and procedures; at discharge also the encounter being
 * closed, whose end is the prediction time. */
static cJSON *default_prefetch(const char *hook) {
    cJSON *p = cJSON_CreateObject();
    cJSON_AddStringToObject(p, "patient", "Patient/{{context.patientId}}");
    if (!strcmp(hook, "encounter-discharge"))
        cJSON_AddStringToObject(p, "encounter", "Encounter/{{context.encounterId}}");
    cJSON_AddStringToObject(p, "conditions", "Condition?patient={{context.patientId}}");
    cJSON_AddStringToObject(p, "medications", "MedicationRequest?patient={{context.patientId}}");
    cJSON_AddStringToObject(p, "observations",
                            "Observation?patient={{context.patientId}}&_sort=-date&_count=500");
    cJSON_AddStringToObject(p, "encounters", "Encounter?patient={{context.patientId}}");
    cJSON_AddStringToObject(p, "procedures", "Procedure?patient={{context.patientId}}");
    return p;
}

static int parse_services(serve_config *c, const cJSON *arr, const char *name, cf_err *err) {
    if (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) == 0)
        return cf_fail(err, CF_EINPUT, "%s: services: expected a non-empty array", name);
    c->services = calloc((size_t)cJSON_GetArraySize(arr), sizeof *c->services);
    if (!c->services) return cf_fail(err, CF_EINTERNAL, "out of memory");
    c->cap_services = (size_t)cJSON_GetArraySize(arr);
    static const char *const keys[] = {"id", "hook", "title", "description", "tasks",
                                       "prefetch", "show_info", NULL};
    cJSON *s;
    cJSON_ArrayForEach(s, arr) {
        char w[64];
        snprintf(w, sizeof w, "services[%zu]", c->n_services);
        serve_service *sv = &c->services[c->n_services];
        int rc;
        if ((rc = object_keys(s, keys, name, w, err)) ||
            (rc = get_str(s, "id", NULL, 1, &sv->id, name, w, err)) ||
            (rc = get_str(s, "hook", NULL, 1, &sv->hook, name, w, err)) ||
            (rc = get_str(s, "title", "clinfm risk", 0, &sv->title, name, w, err)) ||
            (rc = get_str(s, "description",
                          "Risk estimates from the hospital's clinical model, with the events "
                          "in the record that raised them.",
                          0, &sv->description, name, w, err)) ||
            (rc = get_bool(s, "show_info", 0, &sv->show_info, name, w, err)))
            return rc;
        if (!valid_id(sv->id))
            return cf_fail(err, CF_EINPUT, "%s: %s.id: use 1-64 letters, digits, '-', '_', '.'",
                           name, w);
        if (strcmp(sv->hook, "patient-view") && strcmp(sv->hook, "encounter-discharge"))
            return cf_fail(err, CF_EINPUT,
                           "%s: %s.hook: expected patient-view or encounter-discharge", name, w);
        for (size_t i = 0; i < c->n_services; i++)
            if (!strcmp(c->services[i].id, sv->id))
                return cf_fail(err, CF_EINPUT, "%s: %s.id: duplicate service id", name, w);
        const cJSON *tasks = cJSON_GetObjectItemCaseSensitive(s, "tasks");
        if (!cJSON_IsArray(tasks) || cJSON_GetArraySize(tasks) == 0)
            return cf_fail(err, CF_EINPUT, "%s: %s.tasks: expected a non-empty array of task ids",
                           name, w);
        sv->tasks = calloc((size_t)cJSON_GetArraySize(tasks), sizeof *sv->tasks);
        if (!sv->tasks) return cf_fail(err, CF_EINTERNAL, "out of memory");
        const cJSON *t;
        cJSON_ArrayForEach(t, tasks) {
            if (!cJSON_IsString(t) || !serve_config_task(c, t->valuestring))
                return cf_fail(err, CF_EINPUT, "%s: %s.tasks[%zu]: not the id of a configured task",
                               name, w, sv->n_tasks);
            sv->tasks[sv->n_tasks++] = t->valuestring;
        }
        cJSON *pf = cJSON_GetObjectItemCaseSensitive(s, "prefetch");
        if (pf) {
            const cJSON *v;
            if (!cJSON_IsObject(pf) || !pf->child)
                return cf_fail(err, CF_EINPUT, "%s: %s.prefetch: expected a non-empty object of "
                                               "query templates (leave it out for the defaults)",
                               name, w);
            cJSON_ArrayForEach(v, pf) {
                const char *why = !v->string[0] || strlen(v->string) > 60
                                      ? "a prefetch key has 1-60 characters"
                                  : !cJSON_IsString(v) ? "expected a query template string"
                                                       : serve_prefetch_check(v->valuestring, sv->hook);
                if (why)
                    return cf_fail(err, CF_EINPUT, "%s: %s.prefetch.%.60s: %s", name, w, v->string,
                                   why);
            }
            sv->prefetch = pf;
        } else {
            sv->prefetch = default_prefetch(sv->hook);
            if (!sv->prefetch) return cf_fail(err, CF_EINTERNAL, "out of memory");
            cJSON_AddItemToObject(s, "prefetch", sv->prefetch); /* owned by the tree */
        }
        c->n_services++;
    }
    return CF_OK;
}

static int parse_override(serve_config *c, cJSON *root, const char *name, cf_err *err) {
    cJSON *arr = cJSON_GetObjectItemCaseSensitive(root, "override_reasons");
    if (!arr) {
        static const char *const dflt[][2] = {
            {"not-relevant", "Not relevant to this patient"},
            {"already-addressed", "Already addressed"},
            {"disagree", "Disagree with the risk estimate"},
            {"record-incomplete", "The record used is incomplete or wrong"}};
        arr = cJSON_AddArrayToObject(root, "override_reasons");
        for (size_t i = 0; arr && i < 4; i++) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "code", dflt[i][0]);
            cJSON_AddStringToObject(o, "system", "urn:clinfm:override-reason");
            cJSON_AddStringToObject(o, "display", dflt[i][1]);
            cJSON_AddItemToArray(arr, o);
        }
        if (!arr) return cf_fail(err, CF_EINTERNAL, "out of memory");
    }
    if (!cJSON_IsArray(arr) || !arr->child)
        return cf_fail(err, CF_EINPUT, "%s: override_reasons: expected a non-empty array of "
                                       "codings (CDS Hooks: overrideReasons is never empty)", name);
    c->override_reasons = calloc((size_t)cJSON_GetArraySize(arr) + 1, sizeof *c->override_reasons);
    if (!c->override_reasons) return cf_fail(err, CF_EINTERNAL, "out of memory");
    static const char *const keys[] = {"code", "system", "display", NULL};
    const cJSON *o;
    cJSON_ArrayForEach(o, arr) {
        char w[64];
        snprintf(w, sizeof w, "override_reasons[%zu]", c->n_override_reasons);
        serve_coding *cd = &c->override_reasons[c->n_override_reasons];
        int rc;
        if ((rc = object_keys(o, keys, name, w, err)) ||
            (rc = get_str(o, "code", NULL, 1, &cd->code, name, w, err)) ||
            (rc = get_str(o, "system", "urn:clinfm:override-reason", 0, &cd->system, name, w, err)) ||
            (rc = get_str(o, "display", cd->code, 0, &cd->display, name, w, err)))
            return rc;
        for (size_t i = 0; i < c->n_override_reasons; i++)
            if (!strcmp(c->override_reasons[i].code, cd->code))
                return cf_fail(err, CF_EINPUT, "%s: %s.code: duplicate override reason", name, w);
        c->n_override_reasons++;
    }
    return CF_OK;
}

static int parse_auth(serve_config *c, const cJSON *a, const char *name, cf_err *err) {
    static const char *const keys[] = {"issuers", "extra_base_urls", "max_token_lifetime_s",
                                       "clock_skew_s", "replay_cache_max", NULL};
    int rc;
    double rcm;
    if ((rc = object_keys(a, keys, name, "auth", err)) ||
        (rc = get_int(a, "max_token_lifetime_s", 300, 1, 86400, &c->max_token_lifetime_s, name,
                      "auth", err)) ||
        (rc = get_int(a, "clock_skew_s", 60, 0, 600, &c->clock_skew_s, name, "auth", err)) ||
        (rc = get_num(a, "replay_cache_max", 1000000, 1000, 1e8, &rcm, name, "auth", err)) ||
        (rc = get_str_array(a, "extra_base_urls", &c->extra_base_urls, &c->n_extra_base_urls,
                            check_base_url, name, "auth", err)))
        return rc;
    c->replay_cache_max = (size_t)rcm;
    const cJSON *iss = cJSON_GetObjectItemCaseSensitive(a, "issuers");
    if (iss) {
        if (!cJSON_IsArray(iss))
            return cf_fail(err, CF_EINPUT, "%s: auth.issuers: expected an array", name);
        c->issuers = calloc((size_t)cJSON_GetArraySize(iss) + 1, sizeof *c->issuers);
        if (!c->issuers) return cf_fail(err, CF_EINTERNAL, "out of memory");
        const cJSON *o;
        static const char *const ikeys[] = {"iss", "jwks_file", NULL};
        cJSON_ArrayForEach(o, iss) {
            char w[64];
            snprintf(w, sizeof w, "auth.issuers[%zu]", c->n_issuers);
            serve_issuer *is = &c->issuers[c->n_issuers];
            const char *jf;
            if ((rc = object_keys(o, ikeys, name, w, err)) ||
                (rc = get_str(o, "iss", NULL, 1, &is->iss, name, w, err)) ||
                (rc = get_str(o, "jwks_file", NULL, 1, &jf, name, w, err)))
                return rc;
            if (!(is->jwks_path = resolve(c->dir, jf)))
                return cf_fail(err, CF_EINTERNAL, "out of memory");
            c->n_issuers++;
        }
    }
    return CF_OK;
}

static int parse_sections(serve_config *c, const cJSON *r, const char *name, cf_err *err) {
    int rc;
    const cJSON *cors = cJSON_GetObjectItemCaseSensitive(r, "cors");
    static const char *const ckeys[] = {"allowed_origins", "max_age_s", NULL};
    if ((rc = object_keys(cors, ckeys, name, "cors", err)) ||
        (rc = get_str_array(cors, "allowed_origins", &c->cors_origins, &c->n_cors_origins,
                            check_origin, name, "cors", err)) ||
        (rc = get_int(cors, "max_age_s", 600, 0, 86400, &c->cors_max_age_s, name, "cors", err)))
        return rc;
    const cJSON *fhir = cJSON_GetObjectItemCaseSensitive(r, "fhir");
    static const char *const fkeys[] = {"servers", "timeout_ms", "max_pages", "max_bytes",
                                        "ca_file", NULL};
    double mb;
    const char *ca = NULL;
    if ((rc = object_keys(fhir, fkeys, name, "fhir", err)) ||
        (rc = get_str_array(fhir, "servers", &c->fhir_servers, &c->n_fhir_servers, check_base_url,
                            name, "fhir", err)) ||
        (rc = get_int(fhir, "timeout_ms", 3000, 100, 600000, &c->fhir_timeout_ms, name, "fhir",
                      err)) ||
        (rc = get_int(fhir, "max_pages", 20, 1, 1000, &c->fhir_max_pages, name, "fhir", err)) ||
        (rc = get_num(fhir, "max_bytes", 16 << 20, 1024, 1 << 30, &mb, name, "fhir", err)) ||
        (rc = get_str(fhir, "ca_file", NULL, 0, &ca, name, "fhir", err)))
        return rc;
    c->fhir_max_bytes = (size_t)mb;
    if (ca && !(c->fhir_ca_file = resolve(c->dir, ca))) return cf_fail(err, CF_EINTERNAL, "out of memory");
    const cJSON *au = cJSON_GetObjectItemCaseSensitive(r, "audit");
    static const char *const akeys[] = {"anchor_interval_s", "anchor_file", "anchor_syslog", NULL};
    const char *af = NULL;
    if ((rc = object_keys(au, akeys, name, "audit", err)) ||
        (rc = get_int(au, "anchor_interval_s", 10, 1, 3600, &c->anchor_interval_s, name, "audit",
                      err)) ||
        (rc = get_str(au, "anchor_file", NULL, 0, &af, name, "audit", err)) ||
        (rc = get_bool(au, "anchor_syslog", 0, &c->anchor_syslog, name, "audit", err)))
        return rc;
    if (af && !(c->anchor_file = resolve(c->dir, af))) return cf_fail(err, CF_EINTERNAL, "out of memory");
    return CF_OK;
}

int serve_config_parse(serve_config *c, const char *text, size_t len, const char *dir,
                       const char *name, cf_err *err) {
    memset(c, 0, sizeof *c);
    c->dir = strdup(dir ? dir : ".");
    if (!c->dir) return cf_fail(err, CF_EINTERNAL, "out of memory");
    const char *end = NULL;
    c->root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (!c->root) {
        size_t off = end ? (size_t)(end - text) : 0;
        return cf_fail(err, CF_EINPUT, "%s: not valid JSON (near byte %zu)", name, off);
    }
    cJSON *r = c->root;
    if (!cJSON_IsObject(r)) return cf_fail(err, CF_EINPUT, "%s: expected a JSON object", name);
    static const char *const keys[] = {
        "listen", "port", "threads", "tls", "base_url", "database", "secret_file", "limits",
        "auth", "cors", "fhir", "audit", "tasks", "services", "override_reasons",
        "prediction_time", "summary", "access_log", "card_cache", "occlusion_batch",
        "reference_model", "comment", NULL};
    int rc;
    if ((rc = known_keys(r, keys, name, "", err))) return rc;
    const char *db, *secret, *pt;
    if ((rc = get_str(r, "listen", "127.0.0.1", 0, &c->listen, name, "", err)) ||
        (rc = get_int(r, "port", 8080, 0, 65535, &c->port, name, "", err)) ||
        (rc = get_int(r, "threads", 2, 1, 256, &c->threads, name, "", err)) ||
        (rc = get_str(r, "base_url", NULL, 0, &c->base_url, name, "", err)) ||
        (rc = get_str(r, "database", "serve.db", 0, &db, name, "", err)) ||
        (rc = get_str(r, "secret_file", "serve.key", 0, &secret, name, "", err)) ||
        (rc = get_str(r, "prediction_time", "last_event", 0, &pt, name, "", err)) ||
        (rc = get_bool(r, "access_log", 1, &c->access_log, name, "", err)) ||
        (rc = get_int(r, "card_cache", 1024, 0, 10000000, &c->card_cache, name, "", err)) ||
        (rc = get_int(r, "occlusion_batch", 16, 1, 256, &c->occlusion_batch, name, "", err)))
        return rc;
    if (!strcmp(pt, "now")) c->prediction_time_now = 1;
    else if (strcmp(pt, "last_event"))
        return cf_fail(err, CF_EINPUT, "%s: prediction_time: expected \"now\" or \"last_event\"",
                       name);
    if (c->base_url) {
        const char *why = check_base_url(c->base_url);
        if (why) return cf_fail(err, CF_EINPUT, "%s: base_url: %s", name, why);
    }
    if (!(c->database = resolve(c->dir, db)) || !(c->secret_file = resolve(c->dir, secret)))
        return cf_fail(err, CF_EINTERNAL, "out of memory");
    const cJSON *tls = cJSON_GetObjectItemCaseSensitive(r, "tls");
    if (tls) {
        static const char *const tkeys[] = {"cert", "key", NULL};
        const char *cert, *key;
        if ((rc = object_keys(tls, tkeys, name, "tls", err)) ||
            (rc = get_str(tls, "cert", NULL, 1, &cert, name, "tls", err)) ||
            (rc = get_str(tls, "key", NULL, 1, &key, name, "tls", err)))
            return rc;
        if (!(c->tls_cert = resolve(c->dir, cert)) || !(c->tls_key = resolve(c->dir, key)))
            return cf_fail(err, CF_EINTERNAL, "out of memory");
    }
    const cJSON *lim = cJSON_GetObjectItemCaseSensitive(r, "limits");
    static const char *const lkeys[] = {"max_body_bytes", "max_json_depth", "connection_timeout_s",
                                        "request_timeout_ms", "rate_per_minute", "burst",
                                        "max_connections", "header_timeout_s", "body_timeout_s",
                                        "max_connections_per_client", "client_rate_per_minute",
                                        "client_burst", "max_pending_body_bytes", NULL};
    double mb, mpb;
    if ((rc = object_keys(lim, lkeys, name, "limits", err)) ||
        (rc = get_num(lim, "max_body_bytes", 8 << 20, 1024, 1 << 30, &mb, name, "limits", err)) ||
        (rc = get_int(lim, "max_json_depth", 64, 4, 512, &c->max_depth, name, "limits", err)) ||
        (rc = get_int(lim, "connection_timeout_s", 30, 1, 3600, &c->connection_timeout_s, name,
                      "limits", err)) ||
        (rc = get_int(lim, "request_timeout_ms", 10000, 10, 600000, &c->request_timeout_ms, name,
                      "limits", err)) ||
        (rc = get_num(lim, "rate_per_minute", 600, 0, 1e9, &c->rate_per_minute, name, "limits",
                      err)) ||
        (rc = get_num(lim, "burst", 100, 1, 1e9, &c->burst, name, "limits", err)) ||
        (rc = get_int(lim, "max_connections", 1000, 1, 100000, &c->max_connections, name, "limits",
                      err)) ||
        (rc = get_int(lim, "header_timeout_s", 10, 1, 600, &c->header_timeout_s, name, "limits",
                      err)) ||
        (rc = get_int(lim, "body_timeout_s", 30, 1, 3600, &c->body_timeout_s, name, "limits", err)) ||
        (rc = get_int(lim, "max_connections_per_client", 64, 0, 100000,
                      &c->max_connections_per_client, name, "limits", err)) ||
        (rc = get_num(lim, "client_rate_per_minute", 600, 0, 1e9, &c->client_rate_per_minute,
                      name, "limits", err)) ||
        (rc = get_num(lim, "client_burst", 100, 1, 1e9, &c->client_burst, name, "limits", err)) ||
        (rc = get_num(lim, "max_pending_body_bytes", 64 << 20, 1024, 1 << 30, &mpb, name,
                      "limits", err)))
        return rc;
    c->max_body = (size_t)mb;
    c->max_pending_body = (size_t)mpb;
    if (c->max_pending_body < c->max_body)
        return cf_fail(err, CF_EINPUT, "%s: limits.max_pending_body_bytes must be at least "
                                       "max_body_bytes", name);
    if ((rc = parse_auth(c, cJSON_GetObjectItemCaseSensitive(r, "auth"), name, err)) ||
        (rc = parse_tasks(c, cJSON_GetObjectItemCaseSensitive(r, "tasks"), name, err)) ||
        (rc = parse_services(c, cJSON_GetObjectItemCaseSensitive(r, "services"), name, err)) ||
        (rc = parse_override(c, r, name, err)) || (rc = parse_sections(c, r, name, err)))
        return rc;
    serve_summary_defaults(&c->summary);
    const cJSON *sum = cJSON_GetObjectItemCaseSensitive(r, "summary");
    static const char *const skeys[] = {"medication_window_days", "lab_window_days", "max_items",
                                        "max_evidence", NULL};
    if ((rc = object_keys(sum, skeys, name, "summary", err)) ||
        (rc = get_int(sum, "medication_window_days", 180, 1, 36500,
                      &c->summary.medication_window_days, name, "summary", err)) ||
        (rc = get_int(sum, "lab_window_days", 365, 1, 36500, &c->summary.lab_window_days, name,
                      "summary", err)) ||
        (rc = get_int(sum, "max_items", 50, 1, 10000, &c->summary.max_items, name, "summary", err)) ||
        (rc = get_int(sum, "max_evidence", 10, 1, 1000, &c->summary.max_evidence, name, "summary",
                      err)))
        return rc;
    c->reference_model = cJSON_GetObjectItemCaseSensitive(r, "reference_model");
    return CF_OK;
}

int serve_config_load(serve_config *c, const char *path, cf_err *err) {
    char *text;
    size_t len;
    memset(c, 0, sizeof *c);
    int rc = serve_read_file(path, 16 << 20, &text, &len, err);
    if (rc) return rc;
    char *dir = strdup(path);
    if (!dir) {
        free(text);
        return cf_fail(err, CF_EINTERNAL, "out of memory");
    }
    char *slash = strrchr(dir, '/');
    if (slash) *slash = '\0';
    else strcpy(dir, ".");
    rc = serve_config_parse(c, text, len, dir, path, err);
    free(dir);
    free(text);
    return rc;
}

void serve_config_free(serve_config *c) {
    CF_FREE_ALL(c->dir, c->tls_cert, c->tls_key, c->database, c->secret_file);
    for (size_t i = 0; i < c->n_issuers; i++) free(c->issuers[i].jwks_path);
    CF_FREE_ALL(c->issuers, c->extra_base_urls, c->cors_origins, c->fhir_servers, c->fhir_ca_file,
                c->anchor_file, c->tasks);
    for (size_t i = 0; i < c->cap_services; i++) free(c->services[i].tasks);
    free(c->services);
    free(c->override_reasons);
    cJSON_Delete(c->root);
    memset(c, 0, sizeof *c);
}

const serve_task *serve_config_task(const serve_config *c, const char *id) {
    for (size_t i = 0; i < c->n_tasks; i++)
        if (!strcmp(c->tasks[i].task_id, id)) return &c->tasks[i];
    return NULL;
}

const serve_service *serve_config_service(const serve_config *c, const char *id) {
    for (size_t i = 0; i < c->n_services; i++)
        if (!strcmp(c->services[i].id, id)) return &c->services[i];
    return NULL;
}
