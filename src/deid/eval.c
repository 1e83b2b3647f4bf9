/* Annotated corpora and scoring for the free-text de-identifier; see eval.h. Error messages
 * name the file and record number, never annotation text. */
#include "deid/eval.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "deid/deid_int.h"
#include "util/progress.h"

/* ---- type mapping ------------------------------------------------------------------------ */

typedef struct {
    const char *name;
    int type;     /* DEID_* or -1 */
    int in_scope; /* 1 Safe Harbor; 0 not PHI; 2 depends on the value (ages) */
} type_map;

/* presidio-research entity types, and clinfm's own names (for the phrase format) */
static const type_map TYPE_MAP[] = {
    {"PERSON", DEID_NAME, 1},
    {"STREET_ADDRESS", DEID_ADDRESS, 1},
    {"GPE", DEID_LOCATION, 1},
    {"LOCATION", DEID_LOCATION, 1},
    {"ORGANIZATION", DEID_ORGANIZATION, 1}, /* employers are Safe Harbor identifiers */
    {"ORG", DEID_ORGANIZATION, 1},
    {"HOSPITAL", DEID_ORGANIZATION, 1},
    {"DATE_TIME", DEID_DATE, 1},
    {"AGE", DEID_AGE_OVER_89, 2},
    {"PHONE_NUMBER", DEID_PHONE, 1},
    {"EMAIL_ADDRESS", DEID_EMAIL, 1},
    {"US_SSN", DEID_SSN, 1},
    {"CREDIT_CARD", DEID_ID, 1},
    {"IBAN_CODE", DEID_ID, 1},
    {"US_DRIVER_LICENSE", DEID_ID, 1},
    {"US_PASSPORT", DEID_ID, 1},
    {"US_BANK_NUMBER", DEID_ID, 1},
    {"US_ITIN", DEID_ID, 1},
    {"MEDICAL_LICENSE", DEID_ID, 1},
    {"IP_ADDRESS", DEID_IP, 1},
    {"DOMAIN_NAME", DEID_URL, 1},
    {"ZIP_CODE", DEID_ZIP, 1},
    {"NRP", -1, 0},   /* nationality, religious or political group: not an identifier */
    {"TITLE", -1, 0}, /* "Dr.", job titles: not an identifier */
};

int deid_map_gold_type(const char *name, int *in_scope) {
    for (size_t i = 0; i < sizeof TYPE_MAP / sizeof TYPE_MAP[0]; i++)
        if (!strcasecmp(name, TYPE_MAP[i].name)) {
            *in_scope = TYPE_MAP[i].in_scope;
            return TYPE_MAP[i].type;
        }
    int t = deid_type_from_name(name);
    if (t >= 0) {
        *in_scope = t == DEID_AGE_OVER_89 ? 2 : 1;
        return t;
    }
    if (!strcasecmp(name, "AGE")) {
        *in_scope = 2;
        return DEID_AGE_OVER_89;
    }
    *in_scope = 0;
    return -1;
}

/* Ages: only 90 and over are Safe Harbor identifiers. */
static int age_in_scope(const char *s, size_t n) {
    int v = 0, nd = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] >= '0' && s[i] <= '9') {
            v = v * 10 + (s[i] - '0');
            if (++nd > 3) return 1;
        } else if (nd) break;
    }
    if (!nd) return 1; /* "ninety-two": treat as in scope */
    return v >= 90;
}

static int add_gold(deid_doc *d, size_t *cap, size_t s, size_t e, const char *label, deid_corpus *c) {
    if (d->n_gold == *cap) {
        size_t nc = *cap ? *cap * 2 : 8;
        deid_gold *ng = cf_realloc_array(d->gold, nc, sizeof *ng);
        if (!ng) return -1;
        d->gold = ng;
        *cap = nc;
    }
    deid_gold *g = &d->gold[d->n_gold++];
    memset(g, 0, sizeof *g);
    g->start = s;
    g->end = e;
    snprintf(g->label, sizeof g->label, "%s", label);
    int scope;
    g->type = deid_map_gold_type(label, &scope);
    if (g->type < 0 && scope == 0) {
        int known = 0;
        for (size_t i = 0; i < sizeof TYPE_MAP / sizeof TYPE_MAP[0]; i++)
            if (!strcasecmp(label, TYPE_MAP[i].name)) known = 1;
        if (!known) c->n_unknown_types++;
    }
    if (scope == 2) scope = age_in_scope(d->text + s, e - s);
    g->in_scope = scope ? 1 : 0;
    c->n_gold++;
    if (g->in_scope) c->n_in_scope++;
    return 0;
}

static int push_doc(deid_corpus *c, size_t *cap) {
    if (c->n_docs == *cap) {
        size_t nc = *cap ? *cap * 2 : 64;
        deid_doc *nd = cf_realloc_array(c->docs, nc, sizeof *nd);
        if (!nd) return -1;
        c->docs = nd;
        *cap = nc;
    }
    memset(&c->docs[c->n_docs], 0, sizeof c->docs[0]);
    c->n_docs++;
    return 0;
}

void deid_corpus_free(deid_corpus *c) {
    for (size_t i = 0; i < c->n_docs; i++) {
        free(c->docs[i].text);
        free(c->docs[i].gold);
    }
    free(c->docs);
    memset(c, 0, sizeof *c);
}

static int read_all(const char *path, char **out, size_t *len, cf_err *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return cf_fail_errno(err, CF_EINPUT, "%s: cannot open corpus", path);
    size_t cap = 1 << 16, n = 0;
    char *b = cf_malloc(cap);
    if (!b) {
        fclose(f);
        return cf_fail(err, CF_EINTERNAL, "out of memory");
    }
    for (;;) {
        if (n + 1 >= cap) {
            char *nb = realloc(b, cap * 2);
            if (!nb) {
                free(b);
                fclose(f);
                return cf_fail(err, CF_EINTERNAL, "out of memory reading %s", path);
            }
            b = nb;
            cap *= 2;
        }
        size_t got = fread(b + n, 1, cap - n - 1, f);
        if (!got) break;
        n += got;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(b);
        return cf_fail(err, CF_EINPUT, "%s: read error", path);
    }
    b[n] = 0;
    *out = b;
    *len = n;
    return CF_OK;
}

/* ---- presidio JSON ----------------------------------------------------------------------- */

static int load_presidio(const char *path, deid_corpus *c, cf_err *err) {
    char *buf;
    size_t len;
    int rc = read_all(path, &buf, &len, err);
    if (rc) return rc;
    cJSON *root = cJSON_ParseWithLength(buf, len);
    free(buf);
    if (!root || !cJSON_IsArray(root)) {
        cJSON_Delete(root);
        return cf_fail(err, CF_EINPUT, "%s: expected a JSON array of records (presidio format)", path);
    }
    size_t cap_docs = 0;
    size_t *cp_to_byte = NULL;
    size_t cp_cap = 0;
    int idx = -1;
    cJSON *rec;
    cJSON_ArrayForEach(rec, root) {
        idx++;
        cJSON *ft = cJSON_GetObjectItemCaseSensitive(rec, "full_text");
        cJSON *spans = cJSON_GetObjectItemCaseSensitive(rec, "spans");
        if (!cJSON_IsString(ft) || (spans && !cJSON_IsArray(spans))) {
            rc = cf_fail(err, CF_EINPUT, "%s: record %d: expected \"full_text\" string and \"spans\" array", path, idx);
            break;
        }
        if (push_doc(c, &cap_docs)) {
            rc = cf_fail(err, CF_EINTERNAL, "out of memory");
            break;
        }
        deid_doc *d = &c->docs[c->n_docs - 1];
        d->len = strlen(ft->valuestring);
        d->text = strdup(ft->valuestring);
        if (!d->text) {
            rc = cf_fail(err, CF_EINTERNAL, "out of memory");
            break;
        }
        /* code point index -> byte offset (positions are Python string indices) */
        size_t ncp = 0;
        if (d->len + 2 > cp_cap) {
            cp_cap = d->len + 2;
            size_t *nb = cf_realloc_array(cp_to_byte, cp_cap, sizeof *nb);
            if (!nb) {
                rc = cf_fail(err, CF_EINTERNAL, "out of memory");
                break;
            }
            cp_to_byte = nb;
        }
        for (size_t i = 0; i < d->len;) {
            cp_to_byte[ncp++] = i;
            (void)deid_utf8_next(d->text, d->len, &i);
        }
        cp_to_byte[ncp] = d->len;
        size_t gcap = 0;
        cJSON *sp;
        int sidx = -1;
        cJSON_ArrayForEach(sp, spans) {
            sidx++;
            cJSON *et = cJSON_GetObjectItemCaseSensitive(sp, "entity_type");
            cJSON *s = cJSON_GetObjectItemCaseSensitive(sp, "start_position");
            cJSON *e = cJSON_GetObjectItemCaseSensitive(sp, "end_position");
            if (!cJSON_IsString(et) || !cJSON_IsNumber(s) || !cJSON_IsNumber(e) || s->valuedouble < 0 ||
                e->valuedouble < s->valuedouble || e->valuedouble > (double)ncp) {
                rc = cf_fail(err, CF_EINPUT,
                             "%s: record %d, span %d: expected entity_type and start/end positions within the text",
                             path, idx, sidx);
                break;
            }
            size_t bs = cp_to_byte[(size_t)s->valuedouble], be = cp_to_byte[(size_t)e->valuedouble];
            if (be <= bs) continue; /* empty annotation */
            if (add_gold(d, &gcap, bs, be, et->valuestring, c)) {
                rc = cf_fail(err, CF_EINTERNAL, "out of memory");
                break;
            }
        }
        if (rc) break;
    }
    free(cp_to_byte);
    cJSON_Delete(root);
    return rc;
}

/* ---- phrase format ----------------------------------------------------------------------- */

/* Parses one record's annotated text into plain text and gold spans. */
static int parse_phrase_record(const char *src, size_t n, deid_doc *d, deid_corpus *c, const char *path,
                               int line0, cf_err *err) {
    d->text = cf_malloc(n + 1);
    if (!d->text) return cf_fail(err, CF_EINTERNAL, "out of memory");
    size_t o = 0, gcap = 0;
    int line = line0;
    for (size_t i = 0; i < n;) {
        if (src[i] == '\n') line++;
        if (i + 1 < n && src[i] == '{' && src[i + 1] == '{') {
            size_t j = i + 2;
            char label[32];
            size_t ll = 0;
            while (j < n && src[j] != ':' && src[j] != '}' && src[j] != '\n' && ll + 1 < sizeof label)
                label[ll++] = src[j++];
            label[ll] = 0;
            if (j >= n || src[j] != ':' || ll == 0)
                return cf_fail(err, CF_EINPUT, "%s:%d: expected {{TYPE:phrase}}", path, line);
            j++;
            size_t ps = o;
            while (j + 1 < n && !(src[j] == '}' && src[j + 1] == '}')) {
                if (src[j] == '{' && src[j + 1] == '{')
                    return cf_fail(err, CF_EINPUT, "%s:%d: nested {{ in an annotation", path, line);
                if (src[j] == '\n') line++;
                d->text[o++] = src[j++];
            }
            if (j + 1 >= n) return cf_fail(err, CF_EINPUT, "%s:%d: annotation without closing }}", path, line);
            d->len = o;
            if (o > ps && add_gold(d, &gcap, ps, o, label, c))
                return cf_fail(err, CF_EINTERNAL, "out of memory");
            i = j + 2;
            continue;
        }
        d->text[o++] = src[i++];
    }
    d->text[o] = 0;
    d->len = o;
    return CF_OK;
}

static int load_phrase(const char *path, deid_corpus *c, cf_err *err) {
    char *buf;
    size_t len;
    int rc = read_all(path, &buf, &len, err);
    if (rc) return rc;
    size_t cap_docs = 0;
    size_t pos = 0;
    int line = 1;
    const char *hdr = "##RECORD";
    size_t hl = strlen(hdr);
    /* skip anything before the first header (comments) */
    size_t rec_start = (size_t)-1;
    int rec_line = 0;
    while (pos <= len) {
        size_t le = pos;
        while (le < len && buf[le] != '\n') le++;
        int is_hdr = le - pos >= hl && !memcmp(buf + pos, hdr, hl) && (le - pos == hl || buf[pos + hl] == ' ');
        if (is_hdr || le >= len) {
            if (rec_start != (size_t)-1) {
                size_t rec_end = is_hdr ? pos : len;
                /* the newline before the next header belongs to the separator */
                if (rec_end > rec_start && buf[rec_end - 1] == '\n') rec_end--;
                if (rec_end > rec_start && buf[rec_end - 1] == '\r') rec_end--;
                if (push_doc(c, &cap_docs)) {
                    rc = cf_fail(err, CF_EINTERNAL, "out of memory");
                    break;
                }
                rc = parse_phrase_record(buf + rec_start, rec_end > rec_start ? rec_end - rec_start : 0,
                                         &c->docs[c->n_docs - 1], c, path, rec_line, err);
                if (rc) break;
                rec_start = (size_t)-1;
            }
            if (is_hdr) {
                rec_start = le < len ? le + 1 : len;
                rec_line = line + 1;
            }
        }
        if (le >= len) break;
        pos = le + 1;
        line++;
    }
    free(buf);
    if (!rc && c->n_docs == 0) rc = cf_fail(err, CF_EINPUT, "%s: no \"##RECORD\" lines (phrase format)", path);
    return rc;
}

int deid_corpus_load(const char *path, const char *format, deid_corpus *c, cf_err *err) {
    memset(c, 0, sizeof *c);
    int rc;
    if (!strcmp(format, "presidio")) rc = load_presidio(path, c, err);
    else if (!strcmp(format, "phrase")) rc = load_phrase(path, c, err);
    else return cf_fail(err, CF_EINPUT, "unknown corpus format (use presidio or phrase)");
    if (rc) deid_corpus_free(c);
    return rc;
}

/* ---- scoring ----------------------------------------------------------------------------- */

static int overlaps(size_t a, size_t b, size_t c, size_t d) { return a < d && c < b; }

int deid_evaluate(const deid_text_rules *r, const deid_corpus *c, deid_eval_result *res,
                  deid_eval_cb cb, void *cb_ctx, cf_err *err) {
    memset(res, 0, sizeof *res);
    progress pr;
    progress_begin(&pr, "deid-eval", "records", c->n_docs);
    for (size_t di = 0; di < c->n_docs; di++) {
        const deid_doc *d = &c->docs[di];
        deid_span *sp = NULL;
        size_t ns = 0;
        double t0 = now_seconds();
        int rc = deid_find(r, d->text, d->len, NULL, &sp, &ns, err);
        res->seconds += now_seconds() - t0;
        if (rc) {
            progress_end(&pr);
            return rc;
        }
        res->bytes += d->len;
        /* gold spans: recall */
        for (size_t g = 0; g < d->n_gold; g++) {
            const deid_gold *gs = &d->gold[g];
            int hit_o = 0, hit_s = 0;
            for (size_t k = 0; k < ns; k++) {
                if (overlaps(gs->start, gs->end, sp[k].start, sp[k].end)) hit_o = 1;
                if (gs->start == sp[k].start && gs->end == sp[k].end) hit_s = 1;
            }
            res->all_gold_n++;
            res->all_gold_hit += (uint64_t)hit_o;
            if (!gs->in_scope || gs->type < 0) continue;
            res->overlap[gs->type].gold_n++;
            res->overlap[gs->type].gold_hit += (uint64_t)hit_o;
            res->strict[gs->type].gold_n++;
            res->strict[gs->type].gold_hit += (uint64_t)hit_s;
            if (!hit_o && cb) cb(cb_ctx, d, gs, NULL);
        }
        /* predictions: precision */
        for (size_t k = 0; k < ns; k++) {
            int in_o = 0, out_o = 0, in_s = 0;
            for (size_t g = 0; g < d->n_gold; g++) {
                const deid_gold *gs = &d->gold[g];
                int ov = overlaps(gs->start, gs->end, sp[k].start, sp[k].end);
                if (gs->in_scope && gs->type >= 0) {
                    in_o |= ov;
                    in_s |= gs->start == sp[k].start && gs->end == sp[k].end;
                } else {
                    out_o |= ov;
                }
            }
            /* a prediction that only touches out-of-scope annotations is not counted */
            if (!in_o && out_o) continue;
            int t = sp[k].type;
            res->overlap[t].pred_n++;
            res->overlap[t].pred_hit += (uint64_t)in_o;
            res->strict[t].pred_n++;
            res->strict[t].pred_hit += (uint64_t)in_s;
            if (!in_o && cb) cb(cb_ctx, d, NULL, &sp[k]);
        }
        free(sp);
        progress_update(&pr, di + 1);
    }
    progress_end(&pr);
    for (int t = 0; t < DEID_N_TYPES; t++) {
        res->overlap_all.gold_n += res->overlap[t].gold_n;
        res->overlap_all.gold_hit += res->overlap[t].gold_hit;
        res->overlap_all.pred_n += res->overlap[t].pred_n;
        res->overlap_all.pred_hit += res->overlap[t].pred_hit;
        res->strict_all.gold_n += res->strict[t].gold_n;
        res->strict_all.gold_hit += res->strict[t].gold_hit;
        res->strict_all.pred_n += res->strict[t].pred_n;
        res->strict_all.pred_hit += res->strict[t].pred_hit;
    }
    return CF_OK;
}
