/* The ceiling predictor (see eval_ceiling.h): a hash table from (subject id, prediction time) to
 * the generator's probability, filled from the truth file and looked up per label row. It reads
 * no event of the store: the truth was computed by the generator from its own state at the
 * prediction time, which is why it can stand as the best any predictor could do. */
#include "eval/eval_ceiling.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deid/key.h"
#include "ingest/fhir.h"
#include "util/strmap.h"
#include "util/timeutil.h"

typedef struct {
    strmap rows;  /* (subject id, prediction time) as 16 bytes -> row id */
    float *prob;  /* (rows.count) the truth's probability */
    size_t cap;
    char path[1024];
} ceiling_ctx;

/* The last row of a (subject, time) pair wins, as the file is read top down. */
static int put(ceiling_ctx *c, int64_t sid, int64_t t, float p) {
    const int64_t key[2] = {sid, t};
    int64_t id = strmap_intern(&c->rows, (const char *)key, sizeof key);
    if (id < 0) return -1;
    if ((size_t)id >= c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 1024;
        float *pr = cf_realloc_array(c->prob, cap, sizeof *pr);
        if (!pr) return -1;
        c->prob = pr;
        c->cap = cap;
    }
    c->prob[id] = p;
    return 0;
}

static const float *get(const ceiling_ctx *c, int64_t sid, int64_t t) {
    const int64_t key[2] = {sid, t};
    int64_t id = strmap_find(&c->rows, (const char *)key, sizeof key);
    return id < 0 ? NULL : &c->prob[id];
}

static void ceiling_ctx_free(ceiling_ctx *c) {
    if (!c) return;
    strmap_free(&c->rows);
    free(c->prob);
    free(c);
}

static int ceiling_predict(void *ctx, const store *s, const label_row *rows, size_t n, float *probs, cf_err *err) {
    const ceiling_ctx *c = ctx;
    for (size_t i = 0; i < n; i++) {
        const float *p = get(c, rows[i].subject_id, rows[i].prediction_time);
        if (!p) {
            char tb[40];
            return cf_fail(err, CF_EINPUT,
                           "%s: no ground truth for subject %lld at %s; the ceiling needs the store made from this "
                           "population (identified, or de-identified with --ceiling-key and date policy shift)",
                           c->path, (long long)rows[i].subject_id, time_format_iso(rows[i].prediction_time, tb, sizeof tb));
        }
        probs[i] = *p;
    }
    return CF_OK;
}

static char *ceiling_describe(void *ctx) {
    const ceiling_ctx *c = ctx;
    char *s = malloc(1200);
    if (s) snprintf(s, 1200, "{\"truth_rows\": %zu, \"source\": \"clinfm synth ground truth\"}", (size_t)c->rows.count);
    return s;
}

/* Splits a CSV line (no quotes) into at most cap fields. */
static size_t split_fields(char *line, char **f, size_t cap) {
    size_t n = 0;
    char *p = line;
    while (n < cap) {
        f[n++] = p;
        char *comma = strchr(p, ',');
        if (!comma) break;
        *comma = 0;
        p = comma + 1;
    }
    return n;
}

int eval_ceiling_new(eval_predictor *p, const char *truth_path, const char *column, const char *deid_key_path,
                     cf_err *err) {
    if (!column) column = "probability";
    memset(p, 0, sizeof *p);
    unsigned char key[DEID_KEY_BYTES], k_pseudo[DEID_KEY_BYTES], k_shift[DEID_KEY_BYTES];
    int rc, keyed = 0;
    if (deid_key_path) {
        if ((rc = deid_key_load(deid_key_path, key, err))) return rc;
        deid_subkey(key, DEID_SUBKEY_PSEUDONYM, k_pseudo);
        deid_subkey(key, DEID_SUBKEY_DATE_SHIFT, k_shift);
        keyed = 1;
    }
    ceiling_ctx *c = calloc(1, sizeof *c);
    if (!c) return cf_fail(err, CF_EINTERNAL, "out of memory");
    snprintf(c->path, sizeof c->path, "%s", truth_path);
    FILE *f = fopen(truth_path, "r");
    char *line = NULL;
    size_t cap = 0;
    if (!f) {
        rc = cf_fail_errno(err, CF_EINPUT, "%s: cannot open the ground-truth file", truth_path);
        goto fail;
    }
    int col_key = -1, col_time = -1, col_prob = -1, fhir = 0;
    size_t lineno = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        while (len && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
        if (!len) continue;
        if (strchr(line, '"')) {
            rc = cf_fail(err, CF_EINPUT, "%s:%zu: quoted fields are not expected in a ground-truth file", truth_path, lineno);
            goto fail;
        }
        char *fl[16];
        size_t nf = split_fields(line, fl, 16);
        if (lineno == 1) {
            for (size_t i = 0; i < nf; i++) {
                if (!strcmp(fl[i], "fhir_id")) col_key = (int)i, fhir = 1;
                else if (!strcmp(fl[i], "subject_id")) col_key = (int)i, fhir = 0;
                else if (!strcmp(fl[i], "prediction_time")) col_time = (int)i;
                else if (!strcmp(fl[i], column)) col_prob = (int)i;
            }
            if (col_key < 0 || col_time < 0 || col_prob < 0) {
                rc = cf_fail(err, CF_EINPUT,
                             "%s:1: a ground-truth file needs columns fhir_id (or subject_id), prediction_time and %s",
                             truth_path, column);
                goto fail;
            }
            continue;
        }
        if ((size_t)col_key >= nf || (size_t)col_time >= nf || (size_t)col_prob >= nf) {
            rc = cf_fail(err, CF_EINPUT, "%s:%zu: too few fields", truth_path, lineno);
            goto fail;
        }
        int64_t sid, t;
        if (fhir) {
            sid = fhir_subject_id(fl[col_key], strlen(fl[col_key]));
        } else {
            char *end;
            long long v = strtoll(fl[col_key], &end, 10);
            if (*end || end == fl[col_key] || v < 1) {
                rc = cf_fail(err, CF_EINPUT, "%s:%zu: subject_id is not a positive integer", truth_path, lineno);
                goto fail;
            }
            sid = v;
        }
        if (time_parse_iso(fl[col_time], strlen(fl[col_time]), &t, NULL)) {
            rc = cf_fail(err, CF_EINPUT, "%s:%zu: prediction_time is not an ISO 8601 time", truth_path, lineno);
            goto fail;
        }
        char *end;
        double pr = strtod(fl[col_prob], &end);
        if (*end || end == fl[col_prob] || !(pr >= 0 && pr <= 1)) {
            rc = cf_fail(err, CF_EINPUT, "%s:%zu: %s must be a number from 0 to 1", truth_path, lineno, column);
            goto fail;
        }
        if (keyed) {
            t += (int64_t)deid_shift_days(k_shift, sid) * USEC_PER_DAY;
            sid = deid_pseudonym(k_pseudo, sid);
        }
        if (put(c, sid, t, (float)pr)) {
            rc = cf_fail(err, CF_EINTERNAL, "out of memory");
            goto fail;
        }
    }
    if (ferror(f)) {
        rc = cf_fail_errno(err, CF_EINPUT, "%s: read error", truth_path);
        goto fail;
    }
    if (!c->rows.count) {
        rc = cf_fail(err, CF_EINPUT, "%s: no ground-truth rows", truth_path);
        goto fail;
    }
    free(line);
    fclose(f);
    p->name = "ceiling";
    p->role = EVAL_ROLE_CEILING; /* a reference row: never proposed, never what an alarm compares with */
    p->description = "Ceiling: the generator's true probability given its full state at the prediction time "
                     "(clinfm synth ground truth); no predictor can do better in expectation";
    p->predict = ceiling_predict;
    p->describe = ceiling_describe;
    p->ctx = c;
    return CF_OK;
fail:
    free(line);
    if (f) fclose(f);
    ceiling_ctx_free(c);
    return rc;
}

void eval_ceiling_free(eval_predictor *p) {
    ceiling_ctx_free(p->ctx);
    p->ctx = NULL;
}
