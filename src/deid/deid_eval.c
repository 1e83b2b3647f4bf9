/* Annotated corpora and scoring for the free-text de-identifier; see deid_eval.h. Error messages
 * name the file and record number (or line), never annotation text. */
#include "deid/deid_eval.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include "deid/deid_int.h"
#include "util/file.h"
#include "util/progress.h"
#include "util/u64map.h"

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

/* The PhysioNet deid gold standard's categories. "DateYear" is a bare year: deid_date_element()
 * classes it "year only", so it drops out of the day/month line like any other year. "Other"
 * holds the numbers that fit no other category (pager, room, unit numbers): ids. */
static const type_map PHYSIONET_MAP[] = {
    {"Location", DEID_LOCATION, 1},    {"Hospital", DEID_ORGANIZATION, 1},
    {"Date", DEID_DATE, 1},            {"DateYear", DEID_DATE, 1},
    {"HCPName", DEID_NAME, 1},         {"PTName", DEID_NAME, 1},
    {"RelativeProxyName", DEID_NAME, 1}, {"ProxyName", DEID_NAME, 1},
    {"PTNameInitial", DEID_NAME, 1},   {"Initial", DEID_NAME, 1},
    {"Name", DEID_NAME, 1},            {"Phone", DEID_PHONE, 1},
    {"Age", DEID_AGE_OVER_89, 2},      {"Other", DEID_ID, 1},
    {"Email", DEID_EMAIL, 1},          {"SSN", DEID_SSN, 1},
    {"MRN", DEID_MRN, 1},              {"URL", DEID_URL, 1},
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

int deid_map_physionet_type(const char *category, int *in_scope) {
    for (size_t i = 0; i < sizeof PHYSIONET_MAP / sizeof PHYSIONET_MAP[0]; i++)
        if (!strcasecmp(category, PHYSIONET_MAP[i].name)) {
            *in_scope = PHYSIONET_MAP[i].in_scope;
            return PHYSIONET_MAP[i].type;
        }
    return deid_map_gold_type(category, in_scope);
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

/* physionet: label is a PhysioNet category (deid_map_physionet_type), else a presidio or clinfm
   type name. */
static int add_gold(deid_doc *d, size_t *cap, size_t s, size_t e, const char *label, int physionet,
                    deid_corpus *c) {
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
    g->type = physionet ? deid_map_physionet_type(label, &scope) : deid_map_gold_type(label, &scope);
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
    CF_FREE_ALL(c->docs, c->text_path, c->phi_path);
    memset(c, 0, sizeof *c);
}

static int read_all(const char *path, char **out, size_t *len, cf_err *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return cf_fail_errno(err, CF_EINPUT, "%s: cannot open corpus", path);
    int rc = file_read_stream(f, path, 0, out, len, err);
    fclose(f);
    return rc;
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
            if (add_gold(d, &gcap, bs, be, et->valuestring, 0, c)) {
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
            if (o > ps && add_gold(d, &gcap, ps, o, label, 0, c))
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
    char rec_id[sizeof c->docs[0].id] = "";
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
                snprintf(c->docs[c->n_docs - 1].id, sizeof c->docs[0].id, "%s", rec_id);
                rc = parse_phrase_record(buf + rec_start, rec_end > rec_start ? rec_end - rec_start : 0,
                                         &c->docs[c->n_docs - 1], c, path, rec_line, err);
                if (rc) break;
                rec_start = (size_t)-1;
            }
            if (is_hdr) {
                rec_start = le < len ? le + 1 : len;
                rec_line = line + 1;
                size_t a = pos + hl, b = le;
                while (a < b && (buf[a] == ' ' || buf[a] == '\t')) a++;
                while (b > a && (buf[b - 1] == ' ' || buf[b - 1] == '\t' || buf[b - 1] == '\r')) b--;
                size_t n = b - a < sizeof rec_id - 1 ? b - a : sizeof rec_id - 1;
                memcpy(rec_id, buf + a, n);
                rec_id[n] = 0;
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

/* ---- PhysioNet deid layout --------------------------------------------------------------- */

/* The text file holds records
 *     START_OF_RECORD=<patient>||||<note>||||
 *     ...the note's lines...
 *     ||||END_OF_RECORD
 * with blank lines allowed between them, and the annotation file one line per PHI phrase:
 *     <patient> <note> <start> <end> <Category> <phrase, may hold spaces>
 * in any order. The offsets count bytes of the record text (the reference corpus is ASCII, so
 * bytes and characters agree); the record text is every line between the markers with its
 * newline. Whether end is exclusive or inclusive differs between copies of the corpus and tools
 * that wrote it, so each annotation is placed by its phrase (pn_align). */

static int is_ws(char ch) { return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\f' || ch == '\v'; }

/* The next line of buf from *pos: [*ls, *le) without its "\n"; 0 at the end. */
static int next_line(const char *buf, size_t len, size_t *pos, size_t *ls, size_t *le) {
    if (*pos >= len) return 0;
    size_t e = *pos;
    while (e < len && buf[e] != '\n') e++;
    *ls = *pos;
    *le = e;
    *pos = e < len ? e + 1 : len;
    return 1;
}

static size_t rtrim(const char *b, size_t s, size_t e) {
    while (e > s && is_ws(b[e - 1])) e--;
    return e;
}

static size_t bom_len(const char *b, size_t len) {
    return len >= 3 && (unsigned char)b[0] == 0xEF && (unsigned char)b[1] == 0xBB && (unsigned char)b[2] == 0xBF ? 3 : 0;
}

/* A run of 1 to 15 digits at b[*i] (i < e), so that any value fits a size_t offset. */
static int read_num(const char *b, size_t e, size_t *i, unsigned long long *v) {
    size_t k = *i;
    unsigned long long x = 0;
    while (k < e && b[k] >= '0' && b[k] <= '9') {
        if (k - *i >= 15) return 0;
        x = x * 10 + (unsigned long long)(b[k] - '0');
        k++;
    }
    if (k == *i) return 0;
    *i = k;
    *v = x;
    return 1;
}

static const char PN_START[] = "START_OF_RECORD=";
static const char PN_END[] = "||||END_OF_RECORD";
#define PN_START_LEN (sizeof PN_START - 1)
#define PN_END_LEN (sizeof PN_END - 1)

/* "START_OF_RECORD=<patient>||||<note>||||" (the last "||||" may be missing); e is trimmed. */
static int pn_header(const char *b, size_t s, size_t e, unsigned long long *patient, unsigned long long *note) {
    if (e - s < PN_START_LEN || memcmp(b + s, PN_START, PN_START_LEN)) return 0;
    size_t i = s + PN_START_LEN;
    if (!read_num(b, e, &i, patient)) return 0;
    if (e - i < 4 || memcmp(b + i, "||||", 4)) return 0;
    i += 4;
    if (!read_num(b, e, &i, note)) return 0;
    if (i < e) {
        if (e - i < 4 || memcmp(b + i, "||||", 4)) return 0;
        i += 4;
    }
    return i == e;
}

typedef struct {
    unsigned long long patient, note;
    size_t doc;
    int line;
} pn_key;

static int pn_key_cmp(const void *a, const void *b) {
    const pn_key *x = a, *y = b;
    if (x->patient != y->patient) return x->patient < y->patient ? -1 : 1;
    if (x->note != y->note) return x->note < y->note ? -1 : 1;
    return (x->line > y->line) - (x->line < y->line);
}

static int pn_key_find(const void *a, const void *b) {
    const pn_key *x = a, *y = b;
    if (x->patient != y->patient) return x->patient < y->patient ? -1 : 1;
    return (x->note > y->note) - (x->note < y->note);
}

/* Reads the records of a text file into c->docs and a sorted key per record into *keys.
 * keep_cr: keep the "\r" of "\r\n" line ends in the text (by default it is dropped: a CRLF copy
 * of the corpus is nearly always a converted copy, and the offsets were counted on "\n"). */
static int pn_read_text(const char *path, const char *buf, size_t len, int keep_cr, deid_corpus *c,
                        pn_key **keys, cf_err *err) {
    size_t cap_docs = 0, cap_keys = 0, pos = bom_len(buf, len), ls, le, body = 0;
    int line = 0, inside = 0, hdr_line = 0;
    *keys = NULL;
    while (next_line(buf, len, &pos, &ls, &le)) {
        line++;
        size_t te = rtrim(buf, ls, le);
        int is_start = te - ls >= PN_START_LEN && !memcmp(buf + ls, PN_START, PN_START_LEN);
        if (!inside) {
            if (te == ls) continue; /* blank lines between records */
            unsigned long long patient, note;
            if (!is_start || !pn_header(buf, ls, te, &patient, &note))
                return cf_fail(err, CF_EINPUT, "%s:%d: expected \"START_OF_RECORD=patient||||note||||\" or a blank line",
                               path, line);
            if (push_doc(c, &cap_docs)) return cf_fail(err, CF_EINTERNAL, "out of memory");
            if (c->n_docs > cap_keys) {
                size_t nc = cap_docs;
                pn_key *nk = cf_realloc_array(*keys, nc, sizeof *nk);
                if (!nk) return cf_fail(err, CF_EINTERNAL, "out of memory");
                *keys = nk;
                cap_keys = nc;
            }
            (*keys)[c->n_docs - 1] = (pn_key){patient, note, c->n_docs - 1, line};
            snprintf(c->docs[c->n_docs - 1].id, sizeof c->docs[0].id, "%llu-%llu", patient, note);
            inside = 1;
            hdr_line = line;
            body = pos;
            continue;
        }
        if (te - ls == PN_END_LEN && !memcmp(buf + ls, PN_END, PN_END_LEN)) {
            /* the record text: every line since the header, each with its newline */
            deid_doc *d = &c->docs[c->n_docs - 1];
            d->text = cf_malloc(ls - body + 1);
            if (!d->text) return cf_fail(err, CF_EINTERNAL, "out of memory");
            size_t o = 0;
            for (size_t i = body; i < ls; i++) {
                if (!keep_cr && buf[i] == '\r' && i + 1 < ls && buf[i + 1] == '\n') continue;
                d->text[o++] = buf[i];
            }
            d->text[o] = 0;
            d->len = o;
            inside = 0;
            continue;
        }
        if (is_start)
            return cf_fail(err, CF_EINPUT, "%s:%d: START_OF_RECORD before the ||||END_OF_RECORD of the record at line %d",
                           path, line, hdr_line);
    }
    if (inside) return cf_fail(err, CF_EINPUT, "%s:%d: record without a ||||END_OF_RECORD line", path, hdr_line);
    if (!c->n_docs) return cf_fail(err, CF_EINPUT, "%s: no START_OF_RECORD lines (PhysioNet text file)", path);
    qsort(*keys, c->n_docs, sizeof **keys, pn_key_cmp);
    for (size_t i = 1; i < c->n_docs; i++)
        if (!pn_key_find(&(*keys)[i - 1], &(*keys)[i]))
            return cf_fail(err, CF_EINPUT, "%s:%d: a second record with the patient and note numbers of line %d", path,
                           (*keys)[i].line, (*keys)[i - 1].line);
    return CF_OK;
}

typedef struct {
    size_t doc;
    unsigned long long s0, e0; /* as written */
    size_t start, end;         /* as placed */
    size_t ph, ph_len;         /* the phrase, in the annotation file's buffer */
    int line;
    char label[32];
} pn_ann;

/* "<patient> <note> <start> <end> <category> <phrase>": the numbers, and the category and
 * phrase as ranges of b. The phrase runs to the end of the line, trailing white space dropped. */
static int pn_ann_line(const char *b, size_t s, size_t e, unsigned long long v[4], size_t *cs, size_t *ce,
                       size_t *ps) {
    size_t i = s;
    while (i < e && (b[i] == ' ' || b[i] == '\t')) i++;
    for (int k = 0; k < 4; k++) {
        if (!read_num(b, e, &i, &v[k])) return 0;
        if (i >= e || (b[i] != ' ' && b[i] != '\t')) return 0;
        while (i < e && (b[i] == ' ' || b[i] == '\t')) i++;
    }
    *cs = i;
    while (i < e && !is_ws(b[i])) i++;
    *ce = i;
    if (*ce == *cs || i >= e) return 0;
    while (i < e && is_ws(b[i])) i++;
    *ps = i;
    return i < e; /* e is trimmed: a phrase follows */
}

/* Does the phrase p[0..pn) start at t[at]? With collapse, a run of white space in the phrase
 * matches any run in the text. *end is where the match ends. */
static int phrase_at(const char *t, size_t tl, size_t at, const char *p, size_t pn, int collapse, size_t *end) {
    if (at > tl) return 0;
    size_t i = at, j = 0;
    while (j < pn) {
        if (collapse && is_ws(p[j])) {
            if (i >= tl || !is_ws(t[i])) return 0;
            while (j < pn && is_ws(p[j])) j++;
            while (i < tl && is_ws(t[i])) i++;
            continue;
        }
        if (i >= tl || t[i] != p[j]) return 0;
        i++;
        j++;
    }
    *end = i;
    return 1;
}

#define PN_WINDOW 8 /* bytes either side of start searched for a phrase that is not at its offsets */

/* Places each annotation on its phrase; counts[0] inclusive ends, [1] found nearby, [2] misaligned. */
static void pn_align(const deid_corpus *c, const char *abuf, pn_ann *a, size_t n, size_t counts[3]) {
    counts[0] = counts[1] = counts[2] = 0;
    for (size_t k = 0; k < n; k++) {
        const deid_doc *d = &c->docs[a[k].doc];
        const char *p = abuf + a[k].ph;
        size_t pn = a[k].ph_len, s = (size_t)a[k].s0, e = (size_t)a[k].e0, x;
        int placed = 0;
        /* [start,end) and [start,end], exactly, then with white space runs taken as equal */
        for (int collapse = 0; collapse < 2 && !placed; collapse++)
            if (phrase_at(d->text, d->len, s, p, pn, collapse, &x) && (x == e || x == e + 1)) {
                a[k].start = s;
                a[k].end = x;
                if (x == e + 1) counts[0]++;
                placed = 1;
            }
        /* the nearest occurrence that starts within the window */
        for (int collapse = 0; collapse < 2 && !placed; collapse++)
            for (size_t dist = 0; dist <= PN_WINDOW && !placed; dist++)
                for (int side = 0; side < 2 && !placed; side++) {
                    if ((side && !dist) || (!side && dist > s)) continue;
                    size_t at = side ? s + dist : s - dist;
                    if (phrase_at(d->text, d->len, at, p, pn, collapse, &x)) {
                        a[k].start = at;
                        a[k].end = x;
                        counts[1]++;
                        placed = 1;
                    }
                }
        if (!placed) {
            a[k].start = s < d->len ? s : d->len;
            a[k].end = e < d->len ? e : d->len;
            counts[2]++;
        }
    }
}

static int pn_ann_cmp(const void *x, const void *y) {
    const pn_ann *a = x, *b = y;
    if (a->doc != b->doc) return a->doc < b->doc ? -1 : 1;
    if (a->start != b->start) return a->start < b->start ? -1 : 1;
    if (a->end != b->end) return a->end < b->end ? -1 : 1;
    return (a->line > b->line) - (a->line < b->line);
}

static void free_docs(deid_corpus *c) {
    for (size_t i = 0; i < c->n_docs; i++) {
        free(c->docs[i].text);
        free(c->docs[i].gold);
    }
    free(c->docs);
    c->docs = NULL;
    c->n_docs = 0;
}

static int load_physionet(const char *text_path, const char *phi_path, deid_corpus *c, cf_err *err) {
    char *tbuf = NULL, *abuf = NULL;
    size_t tlen = 0, alen = 0, n_ann = 0, cap_ann = 0;
    pn_key *keys = NULL, *alt_keys = NULL;
    pn_ann *ann = NULL;
    deid_corpus alt;
    memset(&alt, 0, sizeof alt);
    int rc = read_all(text_path, &tbuf, &tlen, err);
    if (!rc) rc = read_all(phi_path, &abuf, &alen, err);
    if (!rc) rc = pn_read_text(text_path, tbuf, tlen, 0, c, &keys, err);
    if (rc) goto done;

    size_t pos = bom_len(abuf, alen), ls, le;
    int line = 0;
    while (next_line(abuf, alen, &pos, &ls, &le)) {
        line++;
        size_t te = rtrim(abuf, ls, le), cs, ce, ps;
        if (te == ls) continue;
        unsigned long long v[4];
        if (!pn_ann_line(abuf, ls, te, v, &cs, &ce, &ps)) {
            rc = cf_fail(err, CF_EINPUT, "%s:%d: expected \"patient note start end category phrase\"", phi_path, line);
            goto done;
        }
        if (v[3] < v[2]) {
            rc = cf_fail(err, CF_EINPUT, "%s:%d: the end offset is before the start offset", phi_path, line);
            goto done;
        }
        pn_key want = {v[0], v[1], 0, 0};
        const pn_key *hit = bsearch(&want, keys, c->n_docs, sizeof *keys, pn_key_find);
        if (!hit) {
            rc = cf_fail(err, CF_EINPUT, "%s:%d: annotation for a record that is not in %s", phi_path, line, text_path);
            goto done;
        }
        if (n_ann == cap_ann) {
            size_t nc = cap_ann ? cap_ann * 2 : 64;
            pn_ann *na = cf_realloc_array(ann, nc, sizeof *na);
            if (!na) {
                rc = cf_fail(err, CF_EINTERNAL, "out of memory");
                goto done;
            }
            ann = na;
            cap_ann = nc;
        }
        pn_ann *a = &ann[n_ann++];
        memset(a, 0, sizeof *a);
        a->doc = hit->doc;
        a->s0 = v[2];
        a->e0 = v[3];
        a->ph = ps;
        a->ph_len = te - ps;
        a->line = line;
        size_t cl = ce - cs < sizeof a->label - 1 ? ce - cs : sizeof a->label - 1;
        memcpy(a->label, abuf + cs, cl);
        a->label[cl] = 0;
    }

    size_t counts[3];
    pn_align(c, abuf, ann, n_ann, counts);
    c->pn_crlf = memmem(tbuf, tlen, "\r\n", 2) != NULL;
    if (c->pn_crlf && (counts[1] || counts[2])) {
        /* Offsets counted on the CRLF text itself drift by one byte per line from the LF text
           (showing as realigned or misaligned annotations): try keeping the CRs, and keep the
           reading where fewer annotations are off. */
        size_t alt_counts[3];
        rc = pn_read_text(text_path, tbuf, tlen, 1, &alt, &alt_keys, err);
        if (rc) goto done;
        pn_align(&alt, abuf, ann, n_ann, alt_counts);
        if (alt_counts[2] < counts[2] || (alt_counts[2] == counts[2] && alt_counts[1] < counts[1])) {
            free_docs(c);
            c->docs = alt.docs;
            c->n_docs = alt.n_docs;
            alt.docs = NULL;
            alt.n_docs = 0;
            memcpy(counts, alt_counts, sizeof counts);
            c->pn_kept_cr = 1;
        } else {
            pn_align(c, abuf, ann, n_ann, counts);
        }
    }
    c->pn_annotations = n_ann;
    c->pn_realigned_inclusive = counts[0];
    c->pn_realigned_nearby = counts[1];
    c->pn_misaligned = counts[2];
    if (counts[2] * 20 > n_ann) {
        rc = cf_fail(err, CF_EINPUT,
                     "%s: annotations do not line up with the text: %zu of %zu (more than 5%%) have no matching phrase "
                     "at or within %d bytes of their offsets; is %s the text they were made on?",
                     phi_path, counts[2], n_ann, PN_WINDOW, text_path);
        goto done;
    }
    /* in text order within each record, as the other layouts give them */
    if (n_ann) qsort(ann, n_ann, sizeof *ann, pn_ann_cmp);
    size_t gcap = 0;
    for (size_t k = 0; k < n_ann; k++) {
        if (k == 0 || ann[k].doc != ann[k - 1].doc) gcap = 0;
        if (ann[k].end <= ann[k].start) continue; /* misaligned past the end of the record */
        if (add_gold(&c->docs[ann[k].doc], &gcap, ann[k].start, ann[k].end, ann[k].label, 1, c)) {
            rc = cf_fail(err, CF_EINTERNAL, "out of memory");
            goto done;
        }
    }
done:
    free_docs(&alt);
    CF_FREE_ALL(alt_keys, keys, ann, tbuf, abuf);
    return rc;
}

/* ---- finding the PhysioNet pair ------------------------------------------------------------ */

static int is_regular(const char *p) {
    struct stat st;
    return !stat(p, &st) && S_ISREG(st.st_mode);
}

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n > k && !strcmp(s + n - k, suffix);
}

/* a + b (b may be NULL); NULL when out of memory */
static char *concat(const char *a, size_t an, const char *b) {
    size_t bn = b ? strlen(b) : 0;
    char *s = cf_malloc(an + bn + 1);
    if (!s) return NULL;
    memcpy(s, a, an);
    if (bn) memcpy(s + an, b, bn);
    s[an + bn] = 0;
    return s;
}

static char *dir_of(const char *path) {
    const char *slash = strrchr(path, '/');
    if (!slash) return concat(".", 1, NULL);
    return concat(path, slash == path ? 1 : (size_t)(slash - path), NULL);
}

static char *join_path(const char *dir, const char *name) {
    size_t dn = strlen(dir);
    char *s = cf_malloc(dn + strlen(name) + 2);
    if (!s) return NULL;
    sprintf(s, dn && dir[dn - 1] == '/' ? "%s%s" : "%s/%s", dir, name);
    return s;
}

/* The only regular file in dir whose name ends with ext. */
static int only_file(const char *dir, const char *ext, const char *opt, char **out, cf_err *err) {
    DIR *dh = opendir(dir);
    if (!dh) return cf_fail_errno(err, CF_EINPUT, "%s: cannot read the folder", dir);
    int n = 0, rc = CF_OK;
    char *found = NULL;
    struct dirent *de;
    while ((de = readdir(dh))) {
        if (!ends_with(de->d_name, ext)) continue;
        char *p = join_path(dir, de->d_name);
        if (!p) {
            rc = cf_fail(err, CF_EINTERNAL, "out of memory");
            break;
        }
        if (!is_regular(p)) {
            free(p);
            continue;
        }
        if (n++ == 0) found = p;
        else free(p);
    }
    closedir(dh);
    if (!rc && n == 0)
        rc = cf_fail(err, CF_EINPUT, "%s: no *%s file for the PhysioNet layout; name it with %s", dir, ext, opt);
    if (!rc && n > 1)
        rc = cf_fail(err, CF_EINPUT, "%s: %d *%s files, cannot tell which belongs to the corpus; name it with %s", dir,
                     n, ext, opt);
    if (rc) {
        free(found);
        return rc;
    }
    *out = found;
    return CF_OK;
}

/* The file named name in dir if it is there, else the only *ext in dir. */
static int file_in_dir(const char *dir, const char *name, const char *ext, const char *opt, char **out, cf_err *err) {
    char *p = join_path(dir, name);
    if (!p) return cf_fail(err, CF_EINTERNAL, "out of memory");
    if (is_regular(p)) {
        *out = p;
        return CF_OK;
    }
    free(p);
    return only_file(dir, ext, opt, out, err);
}

/* The file beside path named as path with its last cut bytes replaced by repl, when there is one;
 * else the only file ending in ext in path's folder (opt names the option to give in the error). */
static int partner_file(const char *path, size_t cut, const char *repl, const char *ext, const char *opt,
                        char **out, cf_err *err) {
    if (cut) {
        char *p = concat(path, strlen(path) - cut, repl);
        if (!p) return cf_fail(err, CF_EINTERNAL, "out of memory");
        if (is_regular(p)) {
            *out = p;
            return CF_OK;
        }
        free(p);
    }
    char *dir = dir_of(path);
    if (!dir) return cf_fail(err, CF_EINTERNAL, "out of memory");
    int rc = only_file(dir, ext, opt, out, err);
    free(dir);
    return rc;
}

/* The annotation file of a text file: X-phi.phrase for X.text, else the only *.phrase beside it. */
static int pn_phi_for_text(const char *text, char **out, cf_err *err) {
    return partner_file(text, ends_with(text, ".text") ? 5 : 0, "-phi.phrase", ".phrase", "--phi", out, err);
}

/* The text file of an annotation file: X.text for X-phi.phrase or X.phrase, else the only
   *.text beside it. */
static int pn_text_for_phi(const char *phi, char **out, cf_err *err) {
    size_t cut = ends_with(phi, "-phi.phrase") ? 11 : ends_with(phi, ".phrase") ? 7 : 0;
    return partner_file(phi, cut, ".text", ".text", "--text", out, err);
}

enum { SNIFF_INLINE, SNIFF_PN_TEXT, SNIFF_PN_PHI };

/* "^\d+\s+\d+\s+\d+\s+\d+\s+\S" */
static int looks_like_annotation(const char *s) {
    for (int k = 0; k < 4; k++) {
        if (*s < '0' || *s > '9') return 0;
        while (*s >= '0' && *s <= '9') s++;
        if (!is_ws(*s)) return 0;
        while (is_ws(*s)) s++;
    }
    return *s != 0;
}

/* Which layout a "phrase" corpus file is in, from its first non-blank line. */
static int sniff_layout(const char *path, int *kind, cf_err *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return cf_fail_errno(err, CF_EINPUT, "%s: cannot open corpus", path);
    char *line = NULL;
    size_t cap = 0;
    int first = 1;
    *kind = SNIFF_INLINE;
    while (getline(&line, &cap, f) >= 0) {
        const char *s = line;
        if (first && bom_len(s, strlen(s))) s += 3;
        first = 0;
        const char *q = s;
        while (is_ws(*q)) q++;
        if (!*q) continue;
        if (!strncmp(s, PN_START, PN_START_LEN)) *kind = SNIFF_PN_TEXT;
        else if (looks_like_annotation(s)) *kind = SNIFF_PN_PHI;
        break;
    }
    int bad = ferror(f);
    free(line);
    fclose(f);
    if (bad) return cf_fail(err, CF_EINPUT, "%s: read error", path);
    return CF_OK;
}

static char *dup_str(const char *s) { return concat(s, strlen(s), NULL); }

int deid_corpus_load_files(const char *path, const char *format, const char *text_path, const char *phi_path,
                           deid_corpus *c, cf_err *err) {
    memset(c, 0, sizeof *c);
    char *tp = NULL, *pp = NULL;
    int rc = CF_OK;
    if (!format || (strcmp(format, "presidio") && strcmp(format, "phrase")))
        return cf_fail(err, CF_EINPUT, "unknown corpus format (use presidio or phrase)");
    if (!strcmp(format, "presidio")) {
        if (text_path || phi_path)
            return cf_fail(err, CF_EINPUT, "--text and --phi name PhysioNet deid files: use them with --format phrase");
        if (!path) return cf_fail(err, CF_EINPUT, "no corpus file given");
        c->layout = DEID_LAYOUT_PRESIDIO;
        rc = load_presidio(path, c, err);
        goto done;
    }
    if (!path && !text_path && !phi_path) return cf_fail(err, CF_EINPUT, "no corpus file given");
    if (path) {
        struct stat st;
        if (stat(path, &st)) return cf_fail_errno(err, CF_EINPUT, "%s: cannot open corpus", path);
        if (S_ISDIR(st.st_mode)) {
            if (!text_path) rc = file_in_dir(path, "id.text", ".text", "--text", &tp, err);
            if (!rc && !phi_path) rc = file_in_dir(path, "id-phi.phrase", ".phrase", "--phi", &pp, err);
        } else {
            int kind = SNIFF_INLINE;
            rc = sniff_layout(path, &kind, err);
            if (!rc && kind == SNIFF_INLINE) {
                if (text_path || phi_path) {
                    rc = cf_fail(err, CF_EINPUT,
                                 "%s: not in the PhysioNet deid layout (its first line is neither START_OF_RECORD= nor "
                                 "an annotation); --text and --phi apply to that layout only",
                                 path);
                    goto done;
                }
                c->layout = DEID_LAYOUT_INLINE;
                rc = load_phrase(path, c, err);
                goto done;
            }
            if (!rc && kind == SNIFF_PN_TEXT && !text_path && !(tp = dup_str(path))) rc = CF_EINTERNAL;
            if (!rc && kind == SNIFF_PN_PHI && !phi_path && !(pp = dup_str(path))) rc = CF_EINTERNAL;
            if (rc == CF_EINTERNAL) cf_fail(err, rc, "out of memory");
        }
        if (rc) goto done;
    }
    if (text_path && !(tp = dup_str(text_path))) rc = cf_fail(err, CF_EINTERNAL, "out of memory");
    if (!rc && phi_path && !(pp = dup_str(phi_path))) rc = cf_fail(err, CF_EINTERNAL, "out of memory");
    if (!rc && !tp) rc = pn_text_for_phi(pp, &tp, err);
    if (!rc && !pp) rc = pn_phi_for_text(tp, &pp, err);
    if (rc) goto done;
    c->layout = DEID_LAYOUT_PHYSIONET;
    rc = load_physionet(tp, pp, c, err);
    c->text_path = tp;
    c->phi_path = pp;
    tp = pp = NULL;
done:
    free(tp);
    free(pp);
    if (rc) deid_corpus_free(c);
    return rc;
}

int deid_corpus_load(const char *path, const char *format, deid_corpus *c, cf_err *err) {
    return deid_corpus_load_files(path, format, NULL, NULL, c, err);
}

/* ---- letter case ------------------------------------------------------------------------- */

size_t deid_corpus_recase(deid_corpus *c, int mode) {
    if (mode != DEID_CASE_UPPER && mode != DEID_CASE_LOWER) return 0;
    size_t changed = 0;
    for (size_t di = 0; di < c->n_docs; di++) {
        char *t = c->docs[di].text;
        size_t n = c->docs[di].len;
        for (size_t i = 0; i < n;) {
            unsigned char ch = (unsigned char)t[i];
            if (ch < 0x80) {
                if (mode == DEID_CASE_UPPER && ch >= 'a' && ch <= 'z') t[i] = (char)(ch - 32), changed++;
                else if (mode == DEID_CASE_LOWER && ch >= 'A' && ch <= 'Z') t[i] = (char)(ch + 32), changed++;
                i++;
                continue;
            }
            size_t at = i;
            uint32_t cp = deid_utf8_next(t, n, &i);
            if (cp == 0xFFFD && i == at + 1) continue; /* an invalid byte stays as it is */
            uint32_t o = mode == DEID_CASE_UPPER ? deid_cp_to_upper(cp) : deid_cp_to_lower(cp);
            if (o == cp) continue;
            char enc[4];
            size_t k = deid_utf8_put(enc, o);
            if (k != i - at) continue; /* "ı" -> "I" would shift every offset after it */
            memcpy(t + at, enc, k);
            changed++;
        }
    }
    return changed;
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

/* FNV-1a of the word with ASCII letters folded to lower case: the key of a distinct word form
 * (64 bits: a collision among the few thousand forms a corpus removes is not expected). */
static uint64_t folded_word_hash(const char *t, size_t ws, size_t we) {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = ws; i < we; i++) {
        unsigned char ch = (unsigned char)t[i];
        if (ch >= 'A' && ch <= 'Z') ch = (unsigned char)(ch + 32);
        h = (h ^ ch) * 0x100000001b3ULL;
    }
    return h;
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
    u64map forms = {0}; /* distinct forms of the words removed that are not PHI */
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
            u64map_free(&forms);
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
        /* the clinical-content cost: words outside every annotation that a prediction removes */
        {
            size_t pos = 0, ws, we, k = 0, g = 0;
            while (deid_next_word(d->text, d->len, &pos, &ws, &we)) {
                res->words++;
                int in_gold = 0;
                for (g = 0; g < d->n_gold && !in_gold; g++) in_gold = overlaps(d->gold[g].start, d->gold[g].end, ws, we);
                if (in_gold) continue;
                res->words_not_phi++;
                while (k < ns && sp[k].end <= ws) k++;
                if (k < ns && overlaps(sp[k].start, sp[k].end, ws, we)) {
                    res->words_not_phi_removed++;
                    if (!u64map_put(&forms, folded_word_hash(d->text, ws, we), NULL)) {
                        free(sp);
                        progress_end(&pr);
                        u64map_free(&forms);
                        return cf_fail(err, CF_EINTERNAL, "deid-eval: out of memory");
                    }
                }
            }
        }
        free(sp);
        progress_update(&pr, di + 1);
    }
    progress_end(&pr);
    res->distinct_not_phi_removed = forms.count;
    u64map_free(&forms);
    sum_counts(res->overlap, &res->overlap_all);
    sum_counts(res->strict, &res->strict_all);
    sum_counts(res->dm_overlap, &res->dm_overlap_all);
    sum_counts(res->dm_strict, &res->dm_strict_all);
    return CF_OK;
}

