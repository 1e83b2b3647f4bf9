/* Metrics and cluster bootstrap; see metrics.h.
 *
 * Every metric is computed from one pass over the rows sorted by decreasing score, with a weight
 * per row: 1 for the point estimate, the number of times the row's cluster was drawn for a
 * bootstrap replicate. So a replicate costs O(n) after a single O(n log n) sort, and tied scores
 * are handled the same way in both. */
#include "eval/metrics.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util/mix64.h"

typedef struct {
    const float *p;
    const uint8_t *y;
    size_t n;
    size_t *order;   /* rows by decreasing score */
    size_t *gend;    /* end (exclusive, in order[]) of each tie group */
    size_t n_groups;
} sorted_scores;

static int cmp_desc(const void *a, const void *b, void *ctx) {
    const float *p = ctx;
    float x = p[*(const size_t *)a], y = p[*(const size_t *)b];
    if (x != y) return x > y ? -1 : 1;
    size_t i = *(const size_t *)a, j = *(const size_t *)b;
    return (i > j) - (i < j);
}

static int sort_scores(sorted_scores *s, const float *p, const uint8_t *y, size_t n) {
    memset(s, 0, sizeof *s);
    s->p = p, s->y = y, s->n = n;
    s->order = cf_malloc((n ? n : 1) * sizeof *s->order);
    s->gend = cf_malloc((n ? n : 1) * sizeof *s->gend);
    if (!s->order || !s->gend) {
        free(s->order);
        free(s->gend);
        return -1;
    }
    for (size_t i = 0; i < n; i++) s->order[i] = i;
    qsort_r(s->order, n, sizeof *s->order, cmp_desc, (void *)p);
    for (size_t i = 0; i < n; i++)
        if (i + 1 == n || p[s->order[i + 1]] != p[s->order[i]]) s->gend[s->n_groups++] = i + 1;
    return 0;
}

static void free_scores(sorted_scores *s) {
    free(s->order);
    free(s->gend);
}

typedef struct {
    double auroc, auprc, brier, ece;
    double bin_w[EVAL_BINS], bin_p[EVAL_BINS], bin_y[EVAL_BINS];
} point;

static int bin_of(float p) {
    int b = (int)((double)p * EVAL_BINS); /* in double: 0.7f is just below 0.7 and belongs in bin 6 */
    return b < 0 ? 0 : b >= EVAL_BINS ? EVAL_BINS - 1 : b;
}

/* w == NULL: every weight 1. */
static void weighted(const sorted_scores *s, const double *w, point *o) {
    double P = 0, N = 0, W = 0, se = 0;
    memset(o, 0, sizeof *o);
    for (size_t i = 0; i < s->n; i++) {
        double wi = w ? w[i] : 1.0;
        if (wi == 0) continue;
        double d = (double)s->p[i] - s->y[i];
        se += wi * d * d;
        W += wi;
        if (s->y[i]) P += wi;
        else N += wi;
        int b = bin_of(s->p[i]);
        o->bin_w[b] += wi;
        o->bin_p[b] += wi * s->p[i];
        o->bin_y[b] += wi * s->y[i];
    }
    o->brier = W > 0 ? se / W : NAN;
    double ece = 0;
    for (int b = 0; b < EVAL_BINS; b++)
        if (o->bin_w[b] > 0) ece += o->bin_w[b] / W * fabs(o->bin_p[b] / o->bin_w[b] - o->bin_y[b] / o->bin_w[b]);
    o->ece = W > 0 ? ece : NAN;
    if (P == 0 || N == 0) {
        /* one class only: neither ranking metric means anything (with positives only, average
         * precision would be a trivial 1) */
        o->auroc = o->auprc = NAN;
        return;
    }
    double TP = 0, FP = 0, auc = 0, ap = 0, prev_r = 0;
    size_t start = 0;
    for (size_t g = 0; g < s->n_groups; g++) {
        double tp = 0, fp = 0;
        for (size_t k = start; k < s->gend[g]; k++) {
            size_t i = s->order[k];
            double wi = w ? w[i] : 1.0;
            if (s->y[i]) tp += wi;
            else fp += wi;
        }
        start = s->gend[g];
        auc += fp * (TP + 0.5 * tp);
        TP += tp;
        FP += fp;
        if (tp > 0) {
            double r = TP / P;
            ap += (r - prev_r) * (TP / (TP + FP));
            prev_r = r;
        }
    }
    o->auroc = auc / (P * N);
    o->auprc = ap;
}

static int check_probs(const float *p, size_t n, cf_err *err) {
    for (size_t i = 0; i < n; i++)
        if (!(p[i] >= 0.0f && p[i] <= 1.0f))
            return cf_fail(err, CF_EINPUT, "prediction %zu is not a probability in [0, 1]", i);
    return CF_OK;
}

static double point_metric(const float *p, const uint8_t *y, size_t n, int which) {
    sorted_scores s;
    if (sort_scores(&s, p, y, n)) return NAN;
    point o;
    weighted(&s, NULL, &o);
    free_scores(&s);
    return which == 0 ? o.auroc : which == 1 ? o.auprc : which == 2 ? o.brier : o.ece;
}

double eval_auroc(const float *p, const uint8_t *y, size_t n) { return point_metric(p, y, n, 0); }
double eval_auprc(const float *p, const uint8_t *y, size_t n) { return point_metric(p, y, n, 1); }
double eval_brier(const float *p, const uint8_t *y, size_t n) { return point_metric(p, y, n, 2); }

static void fill_bins(const point *o, eval_bin *bins) {
    for (int b = 0; b < EVAL_BINS; b++) {
        bins[b].lo_edge = (double)b / EVAL_BINS;
        bins[b].hi_edge = (double)(b + 1) / EVAL_BINS;
        bins[b].n = o->bin_w[b];
        bins[b].mean_pred = o->bin_w[b] > 0 ? o->bin_p[b] / o->bin_w[b] : NAN;
        bins[b].frac_pos = o->bin_w[b] > 0 ? o->bin_y[b] / o->bin_w[b] : NAN;
        bins[b].frac_lo = bins[b].frac_hi = NAN;
    }
}

double eval_ece(const float *p, const uint8_t *y, size_t n, eval_bin *bins) {
    sorted_scores s;
    if (sort_scores(&s, p, y, n)) return NAN;
    point o;
    weighted(&s, NULL, &o);
    free_scores(&s);
    if (bins) fill_bins(&o, bins);
    return o.ece;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double eval_quantile(double *v, size_t n, double q) {
    if (!n) return NAN;
    qsort(v, n, sizeof *v, cmp_double);
    double pos = q * (double)(n - 1);
    size_t i = (size_t)pos;
    if (i + 1 >= n) return v[n - 1];
    double f = pos - (double)i;
    return v[i] + f * (v[i + 1] - v[i]);
}

/* xoshiro256** seeded through splitmix64 */
typedef struct {
    uint64_t s[4];
} rng;
static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
static uint64_t rng_next(rng *r) {
    uint64_t res = rotl(r->s[1] * 5, 7) * 9, t = r->s[1] << 17;
    r->s[2] ^= r->s[0];
    r->s[3] ^= r->s[1];
    r->s[1] ^= r->s[2];
    r->s[0] ^= r->s[3];
    r->s[2] ^= t;
    r->s[3] = rotl(r->s[3], 45);
    return res;
}

typedef struct {
    int64_t id;
    size_t row;
} idrow;
static int cmp_idrow(const void *a, const void *b) {
    const idrow *x = a, *y = b;
    if (x->id != y->id) return x->id < y->id ? -1 : 1;
    return (x->row > y->row) - (x->row < y->row);
}

static void rng_seed(rng *r, uint64_t seed) {
    for (int k = 0; k < 4; k++) r->s[k] = cf_splitmix64(&seed);
}

/* One bootstrap replicate over K clusters: draws K clusters with replacement (cnt[k]: how often
 * cluster k was drawn) and gives row i the weight of its cluster, w[i] = cnt[cl[i]]. */
static void resample(rng *r, const size_t *cl, size_t n, size_t K, double *cnt, double *w) {
    memset(cnt, 0, K * sizeof *cnt);
    for (size_t k = 0; k < K; k++) cnt[rng_next(r) % K] += 1;
    for (size_t i = 0; i < n; i++) w[i] = cnt[cl[i]];
}

/* Numbers the clusters 0..K-1 (cl[i]: row i's cluster; each row its own cluster when cluster
 * is NULL) in the order of their ids; ir is scratch of n rows. Returns K. */
static size_t cluster_index(const int64_t *cluster, size_t n, idrow *ir, size_t *cl) {
    for (size_t i = 0; i < n; i++) ir[i] = (idrow){cluster ? cluster[i] : (int64_t)i, i};
    qsort(ir, n, sizeof *ir, cmp_idrow);
    size_t K = 0;
    for (size_t i = 0; i < n; i++) {
        if (i && ir[i].id != ir[i - 1].id) K++;
        cl[ir[i].row] = K;
    }
    assert(!n || K < n);
    return n ? K + 1 : 0;
}

static void set_ci(eval_ci *c, double v, double *reps, size_t m) {
    c->value = v;
    c->lo = eval_quantile(reps, m, 0.025);
    c->hi = eval_quantile(reps, m, 0.975);
}

int eval_metrics_compute(const float *p, const uint8_t *y, const int64_t *cluster, size_t n,
                         const eval_boot_options *opt, eval_metrics *out, cf_err *err) {
    memset(out, 0, sizeof *out);
    int rc = check_probs(p, n, err);
    if (rc) return rc;
    out->n = n;
    for (size_t i = 0; i < n; i++) y[i] ? out->pos++ : out->neg++;
    sorted_scores s;
    if (sort_scores(&s, p, y, n)) return cf_fail(err, CF_EINTERNAL, "out of memory");
    point o;
    weighted(&s, NULL, &o);
    fill_bins(&o, out->bins);
    out->auroc.value = o.auroc;
    out->auprc.value = o.auprc;
    out->brier.value = o.brier;
    out->ece.value = o.ece;
    out->auroc.lo = out->auroc.hi = out->auprc.lo = out->auprc.hi = NAN;
    out->brier.lo = out->brier.hi = out->ece.lo = out->ece.hi = NAN;

    /* clusters: cl[i] in 0..K-1 */
    size_t *cl = cf_malloc((n ? n : 1) * sizeof *cl);
    idrow *ir = cf_malloc((n ? n : 1) * sizeof *ir);
    if (!cl || !ir) {
        free(cl);
        free(ir);
        free_scores(&s);
        return cf_fail(err, CF_EINTERNAL, "out of memory");
    }
    size_t K = cluster_index(cluster, n, ir, cl);
    out->clusters = K;
    free(ir);

    unsigned B = opt ? opt->n_boot : 0;
    out->n_boot = B;
    if (B == 0 || n == 0) {
        free(cl);
        free_scores(&s);
        return CF_OK;
    }
    double *w = cf_malloc(n * sizeof *w);
    double *cnt = cf_malloc(K * sizeof *cnt);
    double *reps = cf_malloc((size_t)B * (4 + EVAL_BINS) * sizeof *reps);
    size_t nrep[4 + EVAL_BINS] = {0};
    if (!w || !cnt || !reps) {
        CF_FREE_ALL(w, cnt, reps, cl);
        free_scores(&s);
        return cf_fail(err, CF_EINTERNAL, "out of memory");
    }
    rng r;
    rng_seed(&r, opt->seed);
    for (unsigned b = 0; b < B; b++) {
        resample(&r, cl, n, K, cnt, w);
        point q;
        weighted(&s, w, &q);
        double v[4] = {q.auroc, q.auprc, q.brier, q.ece};
        if (!isnan(q.auroc)) out->boot_valid++;
        for (int m = 0; m < 4; m++)
            if (!isnan(v[m])) reps[(size_t)m * B + nrep[m]++] = v[m];
        for (int bn = 0; bn < EVAL_BINS; bn++)
            if (q.bin_w[bn] > 0) reps[(size_t)(4 + bn) * B + nrep[4 + bn]++] = q.bin_y[bn] / q.bin_w[bn];
    }
    /* ranking intervals only with EVAL_MIN_CLASS_FOR_CI rows of each class, and only when most
     * replicates were defined: resampling two positives says nothing about the next two, and
     * the replicates that happened to draw both classes describe a different population */
    int ranked = out->pos >= EVAL_MIN_CLASS_FOR_CI && out->neg >= EVAL_MIN_CLASS_FOR_CI;
    if (ranked && nrep[0] * 2 >= B) set_ci(&out->auroc, o.auroc, reps, nrep[0]);
    if (ranked && nrep[1] * 2 >= B) set_ci(&out->auprc, o.auprc, reps + B, nrep[1]);
    set_ci(&out->brier, o.brier, reps + 2 * (size_t)B, nrep[2]);
    set_ci(&out->ece, o.ece, reps + 3 * (size_t)B, nrep[3]);
    for (int bn = 0; bn < EVAL_BINS; bn++)
        if (out->bins[bn].n > 0) {
            out->bins[bn].frac_lo = eval_quantile(reps + (size_t)(4 + bn) * B, nrep[4 + bn], 0.025);
            out->bins[bn].frac_hi = eval_quantile(reps + (size_t)(4 + bn) * B, nrep[4 + bn], 0.975);
        }
    CF_FREE_ALL(w, cnt, reps, cl);
    free_scores(&s);
    return CF_OK;
}

int eval_auroc_diffs(const float *const *p, size_t m, const float *ref, const uint8_t *y, const int64_t *cluster,
                     size_t n, const eval_boot_options *opt, eval_ci *out, cf_err *err) {
    int rc = CF_OK;
    sorted_scores *s = cf_calloc(m + 1, sizeof *s);
    size_t *cl = cf_malloc((n ? n : 1) * sizeof *cl);
    idrow *ir = cf_malloc((n ? n : 1) * sizeof *ir);
    unsigned B = opt ? opt->n_boot : 0;
    double *w = cf_malloc((n ? n : 1) * sizeof *w), *cnt = cf_malloc((n ? n : 1) * sizeof *cnt);
    double *reps = cf_malloc(((size_t)B * m + 1) * sizeof *reps);
    size_t *nrep = cf_calloc(m + 1, sizeof *nrep), sorted = 0;
    if (!s || !cl || !ir || !w || !cnt || !reps || !nrep) {
        rc = cf_fail(err, CF_EINTERNAL, "out of memory");
        goto done;
    }
    if ((rc = check_probs(ref, n, err))) goto done;
    for (size_t k = 0; k < m; k++)
        if ((rc = check_probs(p[k], n, err))) goto done;
    for (size_t k = 0; k <= m; k++, sorted++)
        if (sort_scores(&s[k], k < m ? p[k] : ref, y, n)) {
            rc = cf_fail(err, CF_EINTERNAL, "out of memory");
            goto done;
        }
    point o, q;
    weighted(&s[m], NULL, &o);
    double ref_auc = o.auroc;
    size_t pos = 0;
    for (size_t i = 0; i < n; i++) pos += y[i] != 0;
    for (size_t k = 0; k < m; k++) {
        weighted(&s[k], NULL, &q);
        out[k].value = q.auroc - ref_auc;
        out[k].lo = out[k].hi = NAN;
    }
    if (!B || pos < EVAL_MIN_CLASS_FOR_CI || n - pos < EVAL_MIN_CLASS_FOR_CI) goto done;
    size_t K = cluster_index(cluster, n, ir, cl);
    rng r;
    rng_seed(&r, opt->seed);
    for (unsigned b = 0; b < B; b++) {
        resample(&r, cl, n, K, cnt, w);
        weighted(&s[m], w, &o);
        if (isnan(o.auroc)) continue;
        for (size_t k = 0; k < m; k++) {
            weighted(&s[k], w, &q);
            if (!isnan(q.auroc)) reps[k * B + nrep[k]++] = q.auroc - o.auroc;
        }
    }
    for (size_t k = 0; k < m; k++)
        if (nrep[k] * 2 >= B) {
            out[k].lo = eval_quantile(reps + k * B, nrep[k], 0.025);
            out[k].hi = eval_quantile(reps + k * B, nrep[k], 0.975);
        }
done:
    for (size_t k = 0; k < sorted; k++) free_scores(&s[k]);
    CF_FREE_ALL(s, cl, ir, w, cnt, reps, nrep);
    return rc;
}

static int curve(const float *p, const uint8_t *y, size_t n, eval_curve *c, int roc, cf_err *err) {
    memset(c, 0, sizeof *c);
    sorted_scores s;
    if (sort_scores(&s, p, y, n)) return cf_fail(err, CF_EINTERNAL, "out of memory");
    double P = 0, N = 0;
    for (size_t i = 0; i < n; i++) y[i] ? (P += 1) : (N += 1);
    c->x = cf_malloc((s.n_groups + 2) * sizeof *c->x);
    c->y = cf_malloc((s.n_groups + 2) * sizeof *c->y);
    if (!c->x || !c->y) {
        free_scores(&s);
        eval_curve_free(c);
        return cf_fail(err, CF_EINTERNAL, "out of memory");
    }
    if (roc) {
        c->x[0] = 0, c->y[0] = 0, c->n = 1;
    }
    double TP = 0, FP = 0;
    size_t start = 0;
    for (size_t g = 0; g < s.n_groups; g++) {
        for (size_t k = start; k < s.gend[g]; k++) y[s.order[k]] ? (TP += 1) : (FP += 1);
        start = s.gend[g];
        if (roc) {
            c->x[c->n] = N > 0 ? FP / N : 0;
            c->y[c->n] = P > 0 ? TP / P : 0;
        } else {
            c->x[c->n] = P > 0 ? TP / P : 0;
            c->y[c->n] = TP / (TP + FP);
        }
        c->n++;
    }
    free_scores(&s);
    return CF_OK;
}

int eval_roc_curve(const float *p, const uint8_t *y, size_t n, eval_curve *c, cf_err *err) {
    return curve(p, y, n, c, 1, err);
}
int eval_pr_curve(const float *p, const uint8_t *y, size_t n, eval_curve *c, cf_err *err) {
    return curve(p, y, n, c, 0, err);
}
void eval_curve_free(eval_curve *c) {
    free(c->x);
    free(c->y);
    memset(c, 0, sizeof *c);
}

/* ---------------------------------------------------------------- thresholds and deciles */

eval_ci eval_wilson(size_t k, size_t n) {
    eval_ci c = {NAN, NAN, NAN};
    if (!n) return c;
    const double z = 1.959963984540054;
    double ph = (double)k / (double)n, nn = (double)n, d = 1 + z * z / nn;
    double mid = (ph + z * z / (2 * nn)) / d, half = z * sqrt(ph * (1 - ph) / nn + z * z / (4 * nn * nn)) / d;
    c.value = ph;
    c.lo = mid - half < 0 ? 0 : mid - half;
    c.hi = mid + half > 1 ? 1 : mid + half;
    return c;
}

void eval_threshold_metrics(const float *p, const uint8_t *y, size_t n, double t, eval_threshold *out) {
    memset(out, 0, sizeof *out);
    out->threshold = t;
    for (size_t i = 0; i < n; i++) {
        int flag = (double)p[i] >= t;
        if (y[i]) flag ? out->tp++ : out->fn++;
        else flag ? out->fp++ : out->tn++;
    }
    out->sensitivity = eval_wilson(out->tp, out->tp + out->fn);
    out->specificity = eval_wilson(out->tn, out->tn + out->fp);
    out->ppv = eval_wilson(out->tp, out->tp + out->fp);
    eval_ci a = eval_wilson(out->tp + out->fp, n);
    out->alerts_per_100 = (eval_ci){100 * a.value, 100 * a.lo, 100 * a.hi};
    /* evaluations (alerts) per outcome found: 1 / PPV, its interval from PPV's ends */
    const eval_ci *q = &out->ppv;
    out->nne = (eval_ci){q->value > 0 ? 1 / q->value : NAN, q->hi > 0 ? 1 / q->hi : NAN, q->lo > 0 ? 1 / q->lo : NAN};
}

int eval_scored_cmp(const void *a, const void *b) {
    float x = ((const eval_scored *)a)->p, y = ((const eval_scored *)b)->p;
    return (x > y) - (x < y);
}

size_t eval_quantile_bins(const float *p, const uint8_t *y, size_t n, size_t nb, eval_bin *out) {
    if (!n || !nb) return 0;
    eval_scored *v = malloc(n * sizeof *v);
    if (!v) return 0;
    for (size_t i = 0; i < n; i++) v[i] = (eval_scored){p[i], y[i]};
    qsort(v, n, sizeof *v, eval_scored_cmp);
    size_t m = 0, i = 0;
    for (size_t b = 0; b < nb && i < n; b++) {
        size_t end = (b + 1) * n / nb;
        if (end <= i) continue;
        /* ties stay in one bin */
        while (end < n && v[end].p == v[end - 1].p) end++;
        double sp = 0;
        size_t k = 0;
        for (size_t j = i; j < end; j++) sp += v[j].p, k += v[j].y;
        eval_ci w = eval_wilson(k, end - i);
        out[m++] = (eval_bin){.lo_edge = v[i].p, .hi_edge = v[end - 1].p, .n = (double)(end - i),
                              .mean_pred = sp / (double)(end - i), .frac_pos = w.value, .frac_lo = w.lo,
                              .frac_hi = w.hi};
        i = end;
    }
    free(v);
    return m;
}
