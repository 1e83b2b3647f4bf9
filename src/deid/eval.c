/* Annotated corpora and scoring for the free-text de-identifier; see eval.h. Error messages
 * name the file and record number, never annotation text. */
#include "deid/eval.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
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

/* ---- which date spans name a day or month ---------------------------------------------- */

/* Is s[p - 1] an apostrophe ("'98")? */
static int apostrophe_before(const char *s, size_t p) {
    return p > 0 && (s[p - 1] == '\'' || (p >= 3 && (unsigned char)s[p - 1] == 0x99 &&
                                           (unsigned char)s[p - 2] == 0x80 && (unsigned char)s[p - 3] == 0xE2));
}

static int word_in(const char *w, size_t n, const char *const *list) {
    for (size_t i = 0; list[i]; i++)
        if (strlen(list[i]) == n && !strncasecmp(w, list[i], n)) return 1;
    return 0;
}

/* English month and weekday names with their usual abbreviations, and holidays that fix a day. */
static const char *const MONTHS[] = {"january", "february", "march", "april", "may", "june", "july",
                                     "august", "september", "october", "november", "december", "jan",
                                     "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct",
                                     "nov", "dec", NULL};
static const char *const WEEKDAYS[] = {"monday", "tuesday", "wednesday", "thursday", "friday", "saturday",
                                       "sunday", "mon", "tue", "tues", "wed", "thu", "thur", "thurs",
                                       "fri", "sat", "sun", NULL};
static const char *const HOLIDAYS[] = {"christmas", "xmas", "easter", "thanksgiving", "halloween", "hanukkah",
                                       "valentine", "valentine's", NULL};
static const char *const ORDINALS[] = {"st", "nd", "rd", "th", NULL};

int deid_date_element(const char *s, size_t n) {
    int year = 0, prev_cap = 0, small = 0, foreign = 0;
    size_t i = 0;
    while (i < n) {
        unsigned char ch = (unsigned char)s[i];
        if ((ch | 0x20) >= 'a' && (ch | 0x20) <= 'z') {
            size_t a = i;
            while (i < n && ((((unsigned char)s[i] | 0x20) >= 'a' && ((unsigned char)s[i] | 0x20) <= 'z') ||
                             s[i] == '\''))
                i++;
            size_t wl = i - a;
            if (word_in(s + a, wl, MONTHS) || word_in(s + a, wl, WEEKDAYS) || word_in(s + a, wl, HOLIDAYS))
                return DEID_DATE_DAY_MONTH;
            /* "Labor Day", "New Year's Day", "Mother's Day": a capitalised word and "Day" */
            if (wl == 3 && !strncmp(s + a, "Day", 3) && prev_cap) return DEID_DATE_DAY_MONTH;
            if (wl == 4 && !strncmp(s + a, "Year", 4) && prev_cap) return DEID_DATE_DAY_MONTH; /* New Year */
            prev_cap = ch >= 'A' && ch <= 'Z';
            continue;
        }
        if (ch >= '0' && ch <= '9') {
            /* a run of digit groups joined by / - . ("03/05/2020", "2017-2018", "1990s") */
            int groups = 0, g_len[8] = {0}, g_val[8] = {0};
            while (i < n && groups < 8) {
                int len = 0, val = 0;
                while (i < n && s[i] >= '0' && s[i] <= '9') {
                    if (len < 9) val = val * 10 + (s[i] - '0');
                    len++;
                    i++;
                }
                g_len[groups] = len;
                g_val[groups] = val;
                groups++;
                if (i + 1 < n && (s[i] == '/' || s[i] == '-' || s[i] == '.') && s[i + 1] >= '0' && s[i + 1] <= '9')
                    i++;
                else
                    break;
            }
            /* an ordinal day: "5th", "the 21st" */
            if (groups == 1 && g_len[0] <= 2 && i + 2 <= n && word_in(s + i, 2, ORDINALS) &&
                (i + 2 == n || !((((unsigned char)s[i + 2]) | 0x20) >= 'a' && (((unsigned char)s[i + 2]) | 0x20) <= 'z')))
                return DEID_DATE_DAY_MONTH;
            if (groups == 1) {
                if (g_len[0] == 8) return DEID_DATE_DAY_MONTH; /* yyyymmdd */
                if (g_len[0] == 4 && g_val[0] >= 1000 && g_val[0] <= 2999) year = 1;
                /* "1990s", "'90s" */
                if ((g_len[0] == 4 || g_len[0] == 2) && i < n && s[i] == 's') year = 1;
                if (g_len[0] == 2 && apostrophe_before(s, i - 2)) year = 1;
                else if (g_len[0] <= 2 && g_val[0] >= 1 && g_val[0] <= 31 && !(i < n && s[i] == 's')) small = 1;
                prev_cap = 0;
                continue;
            }
            /* several groups: a year range ("2017-2018", "2017-18") holds no day or month, any
               other combination is read as one (leaning to yes) */
            int all_years = 1;
            for (int g = 0; g < groups; g++) {
                int is_year = g_len[g] == 4 && g_val[g] >= 1000 && g_val[g] <= 2999;
                int short_tail = g > 0 && g_len[g] == 2 && g_len[0] == 4 && g_val[g] > 12;
                if (!is_year && !short_tail) all_years = 0;
            }
            if (!all_years) return DEID_DATE_DAY_MONTH;
            year = 1;
            prev_cap = 0;
            continue;
        }
        if (ch >= 0x80) foreign = 1; /* a word in another script or language ("März") */
        if (ch != ' ' && ch != '\'') prev_cap = 0;
        i++;
    }
    /* a day number with a year or with words these lists do not know ("5. März 2020",
       "2020年3月5日"): read as a date with a day, leaning to yes */
    if (small && (year || foreign)) return DEID_DATE_DAY_MONTH;
    return year ? DEID_DATE_YEAR_ONLY : DEID_DATE_OTHER;
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
    g->date_element = g->type == DEID_DATE ? deid_date_element(d->text + s, e - s) : -1;
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

int deid_corpus_select(deid_corpus *c, size_t first, size_t last, cf_err *err) {
    if (first > last || last >= c->n_docs)
        return cf_fail(err, CF_EINPUT, "record range %zu-%zu is outside the corpus (records 0-%zu)", first, last,
                       c->n_docs ? c->n_docs - 1 : 0);
    for (size_t i = 0; i < c->n_docs; i++) {
        if (i >= first && i <= last) continue;
        free(c->docs[i].text);
        free(c->docs[i].gold);
    }
    memmove(c->docs, c->docs + first, (last - first + 1) * sizeof *c->docs);
    c->n_docs = last - first + 1;
    c->n_gold = c->n_in_scope = 0;
    for (size_t i = 0; i < c->n_docs; i++)
        for (size_t g = 0; g < c->docs[i].n_gold; g++) {
            c->n_gold++;
            c->n_in_scope += c->docs[i].gold[g].in_scope ? 1 : 0;
        }
    /* n_unknown_types is about the file, not the records: kept */
    return CF_OK;
}

/* ---- scoring ----------------------------------------------------------------------------- */

static int overlaps(size_t a, size_t b, size_t c, size_t d) { return a < d && c < b; }

/* Does a gold span count in view v (0: every date; 1: only dates naming a day or month)? */
static int gold_counts(const deid_gold *gs, int v) {
    if (!gs->in_scope || gs->type < 0) return 0;
    if (v && gs->type == DEID_DATE && gs->date_element != DEID_DATE_DAY_MONTH) return 0;
    return 1;
}

static void sum_counts(const deid_counts *per_type, deid_counts *all) {
    memset(all, 0, sizeof *all);
    for (int t = 0; t < DEID_N_TYPES; t++) {
        all->gold_n += per_type[t].gold_n;
        all->gold_hit += per_type[t].gold_hit;
        all->pred_n += per_type[t].pred_n;
        all->pred_hit += per_type[t].pred_hit;
    }
}

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
        /* view 0 counts every annotated date, view 1 only dates that name a day or month */
        for (int v = 0; v < 2; v++) {
            deid_counts *ov = v ? res->dm_overlap : res->overlap, *st = v ? res->dm_strict : res->strict;
            /* gold spans: recall */
            for (size_t g = 0; g < d->n_gold; g++) {
                const deid_gold *gs = &d->gold[g];
                int hit_o = 0, hit_s = 0;
                for (size_t k = 0; k < ns; k++) {
                    if (overlaps(gs->start, gs->end, sp[k].start, sp[k].end)) hit_o = 1;
                    if (gs->start == sp[k].start && gs->end == sp[k].end) hit_s = 1;
                }
                if (!v) {
                    res->all_gold_n++;
                    res->all_gold_hit += (uint64_t)hit_o;
                }
                if (!gold_counts(gs, v)) continue;
                if (!v && gs->type == DEID_DATE && gs->date_element > 0) res->dates_n[gs->date_element]++;
                ov[gs->type].gold_n++;
                ov[gs->type].gold_hit += (uint64_t)hit_o;
                st[gs->type].gold_n++;
                st[gs->type].gold_hit += (uint64_t)hit_s;
                if (!v && !hit_o && cb) cb(cb_ctx, d, gs, NULL);
            }
            /* predictions: precision */
            for (size_t k = 0; k < ns; k++) {
                int in_o = 0, out_o = 0, in_s = 0;
                for (size_t g = 0; g < d->n_gold; g++) {
                    const deid_gold *gs = &d->gold[g];
                    int o = overlaps(gs->start, gs->end, sp[k].start, sp[k].end);
                    if (gold_counts(gs, v)) {
                        in_o |= o;
                        in_s |= gs->start == sp[k].start && gs->end == sp[k].end;
                    } else {
                        out_o |= o;
                    }
                }
                /* a prediction that only touches out-of-scope annotations is not counted */
                if (!in_o && out_o) continue;
                int t = sp[k].type;
                ov[t].pred_n++;
                ov[t].pred_hit += (uint64_t)in_o;
                st[t].pred_n++;
                st[t].pred_hit += (uint64_t)in_s;
                if (!v && !in_o && cb) cb(cb_ctx, d, NULL, &sp[k]);
            }
        }
        free(sp);
        progress_update(&pr, di + 1);
    }
    progress_end(&pr);
    sum_counts(res->overlap, &res->overlap_all);
    sum_counts(res->strict, &res->strict_all);
    sum_counts(res->dm_overlap, &res->dm_overlap_all);
    sum_counts(res->dm_strict, &res->dm_strict_all);
    return CF_OK;
}

