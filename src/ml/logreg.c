/* L2-regularised logistic regression on sparse features, trained by L-BFGS; see logreg.h.
 *
 * Columns are put on a common scale first, so one penalty suits them all, without destroying
 * sparsity: counts become log1p(count) divided by their root mean square over the train rows;
 * numeric values and age are standardised over the rows that have them and an absent value
 * becomes 0, the train mean (absence itself is carried by the code's count columns). The
 * intercept is not penalised. The objective is smooth and strictly convex, so L-BFGS with a
 * backtracking line search converges to the one optimum from zero. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ml/logreg.h"

#define LBFGS_M 10
#define MAX_ITER 500

void ml_logreg_free(ml_logreg *m) {
    CF_FREE_ALL(m->w, m->shift, m->scale);
    memset(m, 0, sizeof *m);
}

static double xform(const ml_logreg *m, uint32_t col, float v) {
    if (m->kind[col] == ML_COL_COUNT) return log1p((double)v) * m->scale[col];
    return ((double)v - m->shift[col]) * m->scale[col];
}

static double log1pexp(double z) { return z > 0 ? z + log1p(exp(-z)) : log1p(exp(z)); }
double ml_sigmoid(double z) {
    if (z >= 0) return 1 / (1 + exp(-z));
    double e = exp(z);
    return e / (1 + e);
}

/* f and gradient at x = (w[0..d), b); g has d + 1 entries; z is scratch of n rows. */
static double objective(const ml_logreg *m, const ml_csr *X, const double *xt, const uint8_t *y,
                        const double *x, double *g, double *z) {
    size_t d = m->d, n = X->n_rows;
    double f = 0;
    memset(g, 0, (d + 1) * sizeof *g);
    for (size_t r = 0; r < n; r++) {
        double s = x[d];
        for (size_t k = X->indptr[r]; k < X->indptr[r + 1]; k++) s += x[X->idx[k]] * xt[k];
        z[r] = s;
        f += log1pexp(s) - (y[r] ? s : 0);
        double dz = ml_sigmoid(s) - y[r];
        for (size_t k = X->indptr[r]; k < X->indptr[r + 1]; k++) g[X->idx[k]] += dz * xt[k];
        g[d] += dz;
    }
    double inv = n ? 1.0 / (double)n : 0, reg = 0;
    f *= inv;
    for (size_t j = 0; j < d; j++) {
        g[j] = g[j] * inv + m->lambda * x[j];
        reg += x[j] * x[j];
    }
    g[d] *= inv;
    return f + 0.5 * m->lambda * reg;
}

static double dot(const double *a, const double *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

int ml_logreg_fit(ml_logreg *m, const ml_csr *X, const uint8_t *y, const uint8_t *kind, double lambda,
                    cf_err *err) {
    memset(m, 0, sizeof *m);
    size_t d = X->n_cols, n = X->n_rows, D = d + 1;
    m->d = d;
    m->lambda = lambda;
    m->kind = kind;
    m->w = cf_calloc(d ? d : 1, sizeof *m->w);
    m->shift = cf_calloc(d ? d : 1, sizeof *m->shift);
    m->scale = cf_calloc(d ? d : 1, sizeof *m->scale);
    double *sum = cf_calloc(d ? d : 1, sizeof *sum), *sq = cf_calloc(d ? d : 1, sizeof *sq);
    size_t *cnt = cf_calloc(d ? d : 1, sizeof *cnt);
    double *xt = cf_malloc((X->nnz ? X->nnz : 1) * sizeof *xt);
    double *x = cf_calloc(D, sizeof *x), *g = cf_calloc(D, sizeof *g), *xn = cf_calloc(D, sizeof *xn),
           *gn = cf_calloc(D, sizeof *gn), *dir = cf_calloc(D, sizeof *dir), *z = cf_calloc(n ? n : 1, sizeof *z);
    double *S = cf_calloc(LBFGS_M * D, sizeof *S), *Yv = cf_calloc(LBFGS_M * D, sizeof *Yv);
    double rho[LBFGS_M], alpha[LBFGS_M];
    int rc = CF_OK;
    if (!m->w || !m->shift || !m->scale || !sum || !sq || !cnt || !xt || !x || !g || !xn || !gn || !dir || !z ||
        !S || !Yv) {
        rc = cf_fail(err, CF_EINTERNAL, "out of memory");
        goto done;
    }
    /* column transform from the train rows */
    for (size_t k = 0; k < X->nnz; k++) {
        uint32_t c = X->idx[k];
        double v = kind[c] == ML_COL_COUNT ? log1p((double)X->val[k]) : (double)X->val[k];
        sum[c] += v;
        sq[c] += v * v;
        cnt[c]++;
    }
    for (size_t c = 0; c < d; c++) {
        if (kind[c] == ML_COL_COUNT) {
            double rms = n ? sqrt(sq[c] / (double)n) : 0;
            m->scale[c] = rms > 0 ? 1 / rms : 0;
        } else if (cnt[c]) {
            double mean = sum[c] / (double)cnt[c], var = sq[c] / (double)cnt[c] - mean * mean;
            m->shift[c] = mean;
            m->scale[c] = var > 1e-12 ? 1 / sqrt(var) : 0;
        }
    }
    for (size_t k = 0; k < X->nnz; k++) xt[k] = xform(m, X->idx[k], X->val[k]);
    /* start at w = 0 and the intercept of the base rate */
    size_t pos = 0;
    for (size_t r = 0; r < n; r++) pos += y[r] != 0;
    if (n) {
        double pr = ((double)pos + 0.5) / ((double)n + 1);
        x[d] = log(pr / (1 - pr));
    }
    double f = objective(m, X, xt, y, x, g, z);
    int mem = 0, head = 0, it;
    double g0 = sqrt(dot(g, g, D));
    for (it = 0; it < MAX_ITER; it++) {
        double gnorm = sqrt(dot(g, g, D));
        if (gnorm <= 1e-7 * (g0 > 1 ? g0 : 1)) break;
        /* two-loop recursion: dir = -H g */
        for (size_t i = 0; i < D; i++) dir[i] = -g[i];
        for (int k = 0; k < mem; k++) {
            int j = (head - 1 - k + LBFGS_M) % LBFGS_M;
            alpha[j] = rho[j] * dot(S + (size_t)j * D, dir, D);
            for (size_t i = 0; i < D; i++) dir[i] -= alpha[j] * Yv[(size_t)j * D + i];
        }
        if (mem) {
            int j = (head - 1 + LBFGS_M) % LBFGS_M;
            double gamma = dot(S + (size_t)j * D, Yv + (size_t)j * D, D) / dot(Yv + (size_t)j * D, Yv + (size_t)j * D, D);
            for (size_t i = 0; i < D; i++) dir[i] *= gamma;
        } else {
            for (size_t i = 0; i < D; i++) dir[i] /= gnorm > 1 ? gnorm : 1;
        }
        for (int k = mem - 1; k >= 0; k--) {
            int j = (head - 1 - k + LBFGS_M) % LBFGS_M;
            double beta = rho[j] * dot(Yv + (size_t)j * D, dir, D);
            for (size_t i = 0; i < D; i++) dir[i] += S[(size_t)j * D + i] * (alpha[j] - beta);
        }
        double slope = dot(g, dir, D);
        if (slope >= 0) { /* not a descent direction: restart from steepest descent */
            for (size_t i = 0; i < D; i++) dir[i] = -g[i];
            slope = -dot(g, g, D);
            mem = 0;
        }
        double step = 1, fn = f;
        int ok = 0;
        for (int ls = 0; ls < 40; ls++) {
            for (size_t i = 0; i < D; i++) xn[i] = x[i] + step * dir[i];
            fn = objective(m, X, xt, y, xn, gn, z);
            if (fn <= f + 1e-4 * step * slope) {
                ok = 1;
                break;
            }
            step *= 0.5;
        }
        if (!ok) break;
        double *sj = S + (size_t)head * D, *yj = Yv + (size_t)head * D;
        for (size_t i = 0; i < D; i++) {
            sj[i] = xn[i] - x[i];
            yj[i] = gn[i] - g[i];
        }
        double sy = dot(sj, yj, D);
        if (sy > 1e-12) {
            rho[head] = 1 / sy;
            head = (head + 1) % LBFGS_M;
            if (mem < LBFGS_M) mem++;
        }
        double df = f - fn;
        memcpy(x, xn, D * sizeof *x);
        memcpy(g, gn, D * sizeof *g);
        f = fn;
        if (df <= 1e-12 * (fabs(f) > 1 ? fabs(f) : 1)) break;
    }
    m->iterations = it;
    memcpy(m->w, x, d * sizeof *x);
    m->b = x[d];
done:
    CF_FREE_ALL(sum, sq, cnt, xt, x, g, xn, gn, dir, z, S, Yv);
    if (rc) ml_logreg_free(m);
    return rc;
}

void ml_logreg_predict(const ml_logreg *m, const ml_csr *X, float *p) {
    for (size_t r = 0; r < X->n_rows; r++) {
        double s = m->b;
        for (size_t k = X->indptr[r]; k < X->indptr[r + 1]; k++)
            if (X->idx[k] < m->d) s += m->w[X->idx[k]] * xform(m, X->idx[k], X->val[k]);
        p[r] = (float)ml_sigmoid(s);
    }
}

double ml_log_loss(const float *p, const uint8_t *y, size_t n) {
    if (!n) return NAN;
    double s = 0;
    for (size_t i = 0; i < n; i++) {
        double q = p[i] < 1e-7 ? 1e-7 : p[i] > 1 - 1e-7 ? 1 - 1e-7 : p[i];
        s -= y[i] ? log(q) : log(1 - q);
    }
    return s / (double)n;
}
