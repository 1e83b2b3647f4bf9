/* The de-identifier's fitted model: the linear-chain CRF that scores a note's words from their
 * features (features.c), and the model file it is read from and written to
 * (data/deid/model.tsv; docs/DEID.md, "The model file"). decode.c runs it on a note. */
#include "deid/model_int.h"
#include <ctype.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include "util/atomic_file.h"

/* ---- the CRF ----------------------------------------------------------------------------- */

void deid__emissions(const deid_model *m, const deid_featbuf *fb, size_t T, float *E) {
    for (size_t i = 0; i < T; i++) {
        float acc[DEID_NL] = {0}; /* 16 floats: one or two vector registers */
        if (fb->extra) memcpy(acc, fb->extra + i * DEID_NL, sizeof acc);
        for (size_t k = fb->start[i]; k < fb->start[i + 1]; k++) {
            const float *restrict wr = m->w + (size_t)fb->ids[k] * DEID_NL;
            for (int y = 0; y < DEID_NL; y++) acc[y] += wr[y];
        }
        memcpy(E + i * DEID_NL, acc, sizeof acc);
    }
}

/* Forward-backward in scaled probability space (Rabiner's scaling): with psi[i][y] =
 * exp(E[i][y] - max_y E[i][y]) and M = exp(trans),
 *   alpha[0][y] = M[O][y] psi[0][y] / c[0],  alpha[i][y] = psi[i][y] sum_p alpha[i-1][p] M[p][y] / c[i],
 *   beta[T-1][y] = 1,  beta[i][p] = sum_y M[p][y] psi[i+1][y] beta[i+1][y] / c[i+1],
 * c[i] normalising alpha[i] to sum 1; then P[i][y] = alpha[i][y] beta[i][y] and
 * log Z = sum_i (log c[i] + max_y E[i][y]). Two exponentials per word and label instead of the
 * log-sum-exp of every pair: this runs for every note. work holds 4 * T * L floats: alpha, beta,
 * psi and (T) c. */
/* A row of L = 16 floats as four 4-lane vectors (the GCC and Clang vector extension), so that
 * the sums of the forward and backward passes stay in registers. Each lane does what the scalar
 * loop did, a multiply and then an add, in the same order (no fused multiply-add: -std=c11
 * turns contraction off), so every float is the scalar code's, bit for bit. */
typedef float crf_v4 __attribute__((vector_size(16)));
typedef struct {
    crf_v4 q[4];
} crf_row;
_Static_assert(sizeof(crf_row) == DEID_NL * sizeof(float), "a CRF row is the 16 labels");

static inline crf_row crf_load(const float *p) {
    crf_row r;
    memcpy(&r, p, sizeof r);
    return r;
}
static inline void crf_store(float *p, const crf_row *r) { memcpy(p, r, sizeof *r); }
/* acc + v * m, lane by lane (written out, and by value: a loop over the four, or a pointer to
 * acc, left the sums in memory) */
static inline crf_row crf_axpy(crf_row acc, float v, const crf_row *m) {
    crf_v4 vv = {v, v, v, v};
    acc.q[0] += vv * m->q[0];
    acc.q[1] += vv * m->q[1];
    acc.q[2] += vv * m->q[2];
    acc.q[3] += vv * m->q[3];
    return acc;
}

double deid__crf_marginals(const float *E, size_t T, const float *trans, float *P, float *work) {
    enum { L = DEID_NL };
    float *A = work, *B = work + T * L, *S = work + 2 * T * L, *C = work + 3 * T * L;
    float M[L * L];
    for (int k = 0; k < L * L; k++) M[k] = expf(trans[k]);
    crf_row Mr[L];
    for (int p = 0; p < L; p++) Mr[p] = crf_load(M + p * L);
    double logZ = 0;
    for (size_t i = 0; i < T; i++) {
        const float *e = E + i * L;
        float mx = e[0];
        for (int y = 1; y < L; y++)
            if (e[y] > mx) mx = e[y];
        for (int y = 0; y < L; y++) S[i * L + y] = expf(e[y] - mx);
        logZ += mx;
    }
    for (size_t i = 0; i < T; i++) {
        float *a = A + i * L, c = 0;
        const float *s = S + i * L;
        if (i == 0)
            for (int y = 0; y < L; y++) a[y] = M[0 * L + y] * s[y];
        else {
            /* a[y] = s[y] sum_p ap[p] M[p][y], summed over p in order, four lanes at a time */
            const float *ap = A + (i - 1) * L;
            crf_row acc = {{{0}}}, sr = crf_load(s);
            for (int p = 0; p < L; p++) acc = crf_axpy(acc, ap[p], &Mr[p]);
            for (int k = 0; k < 4; k++) acc.q[k] *= sr.q[k];
            crf_store(a, &acc);
        }
        for (int y = 0; y < L; y++) c += a[y];
        if (!(c > 1e-30f)) c = 1e-30f;
        C[i] = c;
        for (int y = 0; y < L; y++) a[y] /= c;
        logZ += log(c);
    }
    /* beta[i][p] = sum_y M[p][y] tmp[y], summed over y in order for every p at once: with M
       transposed the sixteen sums run side by side in vector lanes, each adding the same products
       in the same order as a dot product per p would (the same floats, bit for bit), where the
       dot products were one chain of dependent additions each */
    float MT[L * L];
    for (int p = 0; p < L; p++)
        for (int y = 0; y < L; y++) MT[y * L + p] = M[p * L + y];
    crf_row MTr[L];
    for (int y = 0; y < L; y++) MTr[y] = crf_load(MT + y * L);
    for (int y = 0; y < L; y++) B[(T - 1) * L + y] = 1;
    for (size_t i = T - 1; i-- > 0;) {
        float tmp[L];
        const float *bn = B + (i + 1) * L, *sn = S + (i + 1) * L;
        for (int y = 0; y < L; y++) tmp[y] = sn[y] * bn[y] / C[i + 1];
        crf_row v = {{{0}}};
        for (int y = 0; y < L; y++) v = crf_axpy(v, tmp[y], &MTr[y]);
        crf_store(B + i * L, &v);
    }
    for (size_t i = 0; i < T; i++) {
        float z = 0;
        for (int y = 0; y < L; y++) z += P[i * L + y] = A[i * L + y] * B[i * L + y];
        if (z > 0)
            for (int y = 0; y < L; y++) P[i * L + y] /= z;
    }
    return logZ;
}

/* ---- model file -------------------------------------------------------------------------- */

int deid_model_new(deid_model **out, cf_err *err) {
    deid_model *m = cf_calloc(1, sizeof *m);
    if (!m) return cf_fail(err, CF_EINTERNAL, "out of memory");
    strmap_init(&m->feats);
    m->threshold = 0.5f;
    *out = m;
    return CF_OK;
}

void deid_model_free(deid_model *m) {
    if (!m) return;
    free(m->ix);
    free(m->have);
    strmap_free(&m->feats);
    free(m->w);
    free(m);
}

static int label_from_name(const char *s, size_t n) {
    if (n == 1 && s[0] == 'O') return 0;
    char tmp[32];
    if (n >= sizeof tmp) return -1;
    memcpy(tmp, s, n);
    tmp[n] = 0;
    int t = deid_type_from_name(tmp);
    return t < 0 ? -1 : t + 1;
}

static const char *label_name(int y) { return y == 0 ? "O" : deid_type_name(y - 1); }

int deid_model_load(deid_model **out, const char *path, cf_err *err) {
    *out = NULL;
    struct stat st;
    if (stat(path, &st) != 0) return CF_OK; /* no model: the evidence layers alone */
    FILE *f = fopen(path, "rb");
    if (!f) return cf_fail_errno(err, CF_EINPUT, "%s: cannot open the de-identification model", path);
    deid_model *m = NULL;
    int rc = deid_model_new(&m, err);
    if (rc) {
        fclose(f);
        return rc;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    int ln = 0, have_magic = 0;
    while ((got = getline(&line, &cap, f)) >= 0) {
        ln++;
        size_t n = (size_t)got;
        while (n && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = 0;
        if (ln == 1) {
            if (strncmp(line, "# clinfm deid model 1", 21)) {
                rc = cf_fail(err, CF_EINPUT, "%s:1: not a clinfm de-identification model (expected \"# clinfm deid model 1\")", path);
                break;
            }
            have_magic = 1;
            continue;
        }
        if (n == 0 || line[0] == '#') continue;
        char *tab = strchr(line, '\t');
        if (!tab) {
            rc = cf_fail(err, CF_EINPUT, "%s:%d: expected \"name<TAB>values\"", path, ln);
            break;
        }
        *tab = 0;
        char *vals = tab + 1;
        float *thr = !strcmp(line, "@threshold")             ? &m->threshold
                     : !strcmp(line, "@threshold_bare")      ? &m->threshold_bare
                     : !strcmp(line, "@threshold_nopattern") ? &m->threshold_nopattern
                     : !strcmp(line, "@threshold_dense")     ? &m->threshold_dense
                                                             : NULL;
        /* feature switches the model was fitted with, 0 or 1 */
        int *flag = !strcmp(line, "@one_case_context")   ? &m->one_case_context
                    : !strcmp(line, "@list_person_gate") ? &m->list_person_gate
                    : !strcmp(line, "@list_catalogue_test") ? &m->list_catalogue_test
                    : !strcmp(line, "@amp_firm_span") ? &m->amp_firm_span
                    : !strcmp(line, "@one_case_fields") ? &m->one_case_fields
                    : !strcmp(line, "@keep_unnamed") ? &m->keep_unnamed
                    : !strcmp(line, "@field_dates") ? &m->field_dates
                                                         : NULL;
        /* switches with levels: 0 to 2 (@nursing_shorthand 0 to 4) */
        int *level = !strcmp(line, "@one_case_cue")        ? &m->one_case_cue
                     : !strcmp(line, "@nursing_shorthand") ? &m->nursing_shorthand
                                                           : NULL;
        if (level) {
            int top = level == &m->nursing_shorthand ? 4 : 2;
            if (!(vals[0] >= '0' && vals[0] <= '0' + top && !vals[1])) {
                rc = cf_fail(err, CF_EINPUT, "%s:%d: %s must be 0 to %d", path, ln, line + 1, top);
                break;
            }
            *level = vals[0] - '0';
            continue;
        }
        if (flag) {
            if (strcmp(vals, "0") && strcmp(vals, "1")) {
                rc = cf_fail(err, CF_EINPUT, "%s:%d: %s must be 0 or 1", path, ln, line + 1);
                break;
            }
            *flag = vals[0] == '1';
            continue;
        }
        if (thr) {
            char *end;
            double v = strtod(vals, &end);
            if (end == vals || v <= 0 || v > 1) {
                rc = cf_fail(err, CF_EINPUT, "%s:%d: %s must be in (0, 1]", path, ln, line + 1);
                break;
            }
            *thr = (float)v;
            continue;
        }
        int is_trans = !strncmp(line, "@trans:", 7);
        int prev = -1;
        if (is_trans) {
            prev = label_from_name(line + 7, strlen(line + 7));
            if (prev < 0) {
                rc = cf_fail(err, CF_EINPUT, "%s:%d: unknown label in a transition row", path, ln);
                break;
            }
        }
        if (!is_trans && line[0] == '@') {
            /* the switches of candidates that were not adopted are gone from the code (docs/DEID.md,
               "Switches removed"): a model fitted with one is refused, not read without it */
            rc = cf_fail(err, CF_EINPUT, "%s:%d: unknown model switch %s: refit the model with this clinfm's deid-train",
                         path, ln, line);
            break;
        }
        float *row = NULL;
        if (!is_trans) {
            int64_t id = strmap_intern(&m->feats, line, strlen(line));
            if (id < 0) {
                rc = cf_fail(err, CF_EINTERNAL, "out of memory");
                break;
            }
            if ((uint32_t)id >= m->cap) {
                uint32_t nc = m->cap ? m->cap * 2 : 65536;
                float *nw = cf_realloc_array(m->w, (size_t)nc * DEID_NL, sizeof *nw);
                if (!nw) {
                    rc = cf_fail(err, CF_EINTERNAL, "out of memory");
                    break;
                }
                memset(nw + (size_t)m->cap * DEID_NL, 0, (size_t)(nc - m->cap) * DEID_NL * sizeof *nw);
                m->w = nw;
                m->cap = nc;
            }
            row = m->w + (size_t)id * DEID_NL;
        } else {
            row = m->trans + prev * DEID_NL;
        }
        /* "LABEL:weight LABEL:weight ..." */
        char *p = vals;
        while (*p && rc == CF_OK) {
            while (*p == ' ') p++;
            if (!*p) break;
            char *colon = strchr(p, ':');
            if (!colon) {
                rc = cf_fail(err, CF_EINPUT, "%s:%d: expected LABEL:weight", path, ln);
                break;
            }
            int y = label_from_name(p, (size_t)(colon - p));
            char *end;
            double wv = strtod(colon + 1, &end);
            if (y < 0 || end == colon + 1 || !isfinite(wv)) {
                rc = cf_fail(err, CF_EINPUT, "%s:%d: expected LABEL:weight with a known label and a number", path, ln);
                break;
            }
            row[y] = (float)wv;
            p = end;
        }
        if (rc) break;
    }
    free(line);
    if (!rc && ferror(f)) rc = cf_fail(err, CF_EINPUT, "%s: read error", path);
    if (!rc && !have_magic) rc = cf_fail(err, CF_EINPUT, "%s: empty model file", path);
    fclose(f);
    if (!rc) {
        /* the lookup index (see model_int.h) */
        size_t slots = 16;
        while (slots < (size_t)m->feats.count * 4 / 3 + 2) slots *= 2; /* load up to 3/4: half a megabyte for ~46k features */
        m->ix = cf_calloc_table(slots, sizeof *m->ix);
        if (!m->ix) rc = cf_fail(err, CF_EINTERNAL, "out of memory");
        m->ix_mask = slots - 1;
        size_t bits = 64;
        while (bits < (size_t)m->feats.count * 16) bits *= 2; /* 128 kB for ~46k features */
        m->have = rc ? NULL : cf_calloc(bits / 64, sizeof *m->have);
        if (!rc && !m->have) rc = cf_fail(err, CF_EINTERNAL, "out of memory");
        m->have_mask = bits - 1;
        /* names this model's weights for the threads' kind caches (thread_kind_cache) */
        static atomic_uint_fast64_t serials;
        m->serial = atomic_fetch_add(&serials, 1) + 1;
        for (uint32_t id = 0; !rc && id < m->feats.count; id++) {
            size_t nl;
            const char *nm = strmap_str(&m->feats, id, &nl);
            uint64_t h = deid__feature_hash(nm, nl);
            size_t j = h & m->ix_mask;
            while (m->ix[j]) j = (j + 1) & m->ix_mask;
            m->ix[j] = ((h >> 32) | 1) << 32 | id;
            size_t b = (h >> 33) & m->have_mask;
            m->have[b >> 6] |= 1ull << (b & 63);
        }
    }
    if (rc) {
        deid_model_free(m);
        return rc;
    }
    *out = m;
    return CF_OK;
}

typedef struct {
    char *b;
    size_t n, cap;
    int oom;
} sbuf;

static void sb_printf(sbuf *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#include <stdarg.h>
static void sb_printf(sbuf *s, const char *fmt, ...) {
    if (s->oom) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int k = vsnprintf(s->b ? s->b + s->n : NULL, s->b ? s->cap - s->n : 0, fmt, ap);
        va_end(ap);
        if (k < 0) {
            s->oom = 1;
            return;
        }
        if (s->b && s->n + (size_t)k < s->cap) {
            s->n += (size_t)k;
            return;
        }
        size_t nc = s->cap ? s->cap * 2 : 1 << 20;
        while (nc < s->n + (size_t)k + 1) nc *= 2;
        char *nb = realloc(s->b, nc);
        if (!nb) {
            s->oom = 1;
            return;
        }
        s->b = nb;
        s->cap = nc;
    }
}

int deid_model_save(const deid_model *m, const char *path, float prune, cf_err *err) {
    sbuf s = {0};
    sb_printf(&s, "# clinfm deid model 1\n");
    sb_printf(&s, "# A linear-chain CRF over words (docs/DEID.md, \"The model file\"). Written by clinfm deid-train;\n"
                  "# lines: FEATURE<TAB>LABEL:weight ..., @trans:PREV<TAB>LABEL:weight ..., @threshold<TAB>P(O) below\n"
                  "# which a word is PHI (@threshold_bare, @threshold_nopattern: the same for words with less\n"
                  "# evidence). Weights under %g in magnitude are left out.\n",
              (double)prune);
    sb_printf(&s, "@threshold\t%.4f\n", (double)m->threshold);
    if (m->threshold_bare > 0) sb_printf(&s, "@threshold_bare\t%.4f\n", (double)m->threshold_bare);
    if (m->threshold_nopattern > 0) sb_printf(&s, "@threshold_nopattern\t%.4f\n", (double)m->threshold_nopattern);
    if (m->threshold_dense > 0) sb_printf(&s, "@threshold_dense\t%.4f\n", (double)m->threshold_dense);
    if (m->one_case_context) sb_printf(&s, "@one_case_context\t1\n");
    if (m->list_person_gate) sb_printf(&s, "@list_person_gate\t1\n");
    if (m->list_catalogue_test) sb_printf(&s, "@list_catalogue_test\t1\n");
    if (m->amp_firm_span) sb_printf(&s, "@amp_firm_span\t1\n");
    if (m->one_case_fields) sb_printf(&s, "@one_case_fields\t1\n");
    if (m->keep_unnamed) sb_printf(&s, "@keep_unnamed\t1\n");
    if (m->one_case_cue) sb_printf(&s, "@one_case_cue\t%d\n", m->one_case_cue);
    if (m->field_dates) sb_printf(&s, "@field_dates\t1\n");
    if (m->nursing_shorthand) sb_printf(&s, "@nursing_shorthand\t%d\n", m->nursing_shorthand);
    for (int p = 0; p < DEID_NL; p++) {
        sb_printf(&s, "@trans:%s\t", label_name(p));
        for (int y = 0; y < DEID_NL; y++) sb_printf(&s, "%s%s:%.4g", y ? " " : "", label_name(y), (double)m->trans[p * DEID_NL + y]);
        sb_printf(&s, "\n");
    }
    for (uint32_t id = 0; id < m->feats.count; id++) {
        const float *row = m->w + (size_t)id * DEID_NL;
        int any = 0;
        for (int y = 0; y < DEID_NL; y++) any |= fabsf(row[y]) >= prune;
        if (!any) continue;
        size_t nl;
        const char *name = strmap_str(&m->feats, id, &nl);
        /* names hold no tab or newline (they are built from words, which hold neither) */
        sb_printf(&s, "%.*s\t", (int)nl, name);
        int first = 1;
        for (int y = 0; y < DEID_NL; y++) {
            if (fabsf(row[y]) < prune) continue;
            sb_printf(&s, "%s%s:%.3g", first ? "" : " ", label_name(y), (double)row[y]);
            first = 0;
        }
        sb_printf(&s, "\n");
    }
    if (s.oom) {
        free(s.b);
        return cf_fail(err, CF_EINTERNAL, "out of memory writing the model");
    }
    int rc = atomic_write_file(path, s.b, s.n, err);
    free(s.b);
    return rc;
}

int deid_rules_set_threshold(deid_text_rules *r, double p, cf_err *err) {
    if (!r || !r->model) return cf_fail(err, CF_EINPUT, "the rules folder has no model (model.tsv): no threshold to set");
    if (!(p > 0 && p <= 1)) return cf_fail(err, CF_EINPUT, "the threshold must be in (0, 1]");
    r->model->threshold = (float)p;
    if (r->model_dense) r->model_dense->threshold = (float)p; /* an override holds in every note */
    return CF_OK;
}
