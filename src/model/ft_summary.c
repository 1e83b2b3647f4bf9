/* The summary target of fine-tuning; see ft_summary.h. */
#include "model/ft_summary.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/gpt_kernels.h"

int ft_choose_slots(const rt_prompt *ps, size_t n, int V, int F, int cap, int *slot) {
    size_t *count = calloc((size_t)V, sizeof *count);
    size_t *seen = malloc((size_t)V * sizeof *seen);
    int S = 0;
    if (!count || !seen) goto done;
    for (int v = 0; v < V; v++) seen[v] = (size_t)-1, slot[v] = -1;
    /* counting prompts rather than positions keeps a variable measured in every stay ahead of one
     * measured often in a few */
    for (size_t i = 0; i < n; i++)
        for (int t = 0; t < ps[i].len; t++) {
            int v = ps[i].tokens[t];
            if (v < 0 || v >= V || ps[i].feats[(size_t)t * F] != 1.0f || seen[v] == i) continue;
            seen[v] = i;
            count[v]++;
        }
    for (; S < cap; S++) { /* cap is at most 64: a selection, not a sort */
        int best = -1;
        for (int v = 0; v < V; v++)
            if (count[v] && slot[v] < 0 && (best < 0 || count[v] > count[best])) best = v;
        if (best < 0) break;
        slot[best] = S;
    }
done:
    free(count);
    free(seen);
    return S;
}

/* The raw last, min, max and mean of each variable's values in one prompt, raw (V * 4), and
 * whether it has any, has (V). */
static void raw_summaries(const ft_summary *s, const rt_prompt *p, double *raw, int *has) {
    for (int v = 0; v < s->V; v++) has[v] = 0;
    for (int t = 0; t < p->len; t++) {
        const int tok = p->tokens[t];
        if (tok < 0 || tok >= s->n_tokens || s->slot[tok] < 0) continue;
        const float *f = p->feats + (size_t)t * s->F;
        if (f[0] != 1.0f) continue;
        const int v = s->slot[tok];
        const double x = f[1];
        double *r = raw + 4 * v; /* r[3] holds the sum until the end */
        if (!has[v]) r[1] = r[2] = x, r[3] = 0;
        r[0] = x; /* positions run in time order: the latest value wins */
        if (x < r[1]) r[1] = x;
        if (x > r[2]) r[2] = x;
        r[3] += x;
        has[v]++;
    }
    for (int v = 0; v < s->V; v++)
        if (has[v]) raw[4 * v + 3] /= has[v];
}

void ft_summary_targets(const ft_summary *s, const rt_prompt *p, float *y) {
    double raw[4 * FT_SUMMARY_MAX_VARS];
    int has[FT_SUMMARY_MAX_VARS];
    raw_summaries(s, p, raw, has);
    for (int v = 0; v < s->V; v++) {
        float *yv = y + FT_SUMMARY_STATS * v;
        for (int k = 0; k < 4; k++) yv[k] = has[v] ? (float)((raw[4 * v + k] - s->mu[4 * v + k]) / s->sd[4 * v + k]) : NAN;
        yv[4] = has[v] ? 1.0f : 0.0f;
    }
}

void ft_summary_free(ft_summary *s) {
    CF_FREE_ALL(s->slot, s->mu, s->sd, s->A, s->c, s->dA, s->dc, s->mA, s->vA, s->mc, s->vc);
    memset(s, 0, sizeof *s);
}

int ft_summary_init(ft_summary *s, const rt_prompt *train, size_t ntr, int n_tokens, int F, int P, int max_vars,
                    cf_err *err) {
    memset(s, 0, sizeof *s);
    if (max_vars < 1 || max_vars > FT_SUMMARY_MAX_VARS)
        return cf_fail(err, CF_EINPUT, "the summary target takes 1 .. %d variables, not %d", FT_SUMMARY_MAX_VARS, max_vars);
    if (F < 2) return cf_fail(err, CF_EINPUT, "the summary target (--ft-summary-weight) reads each variable's values "
                              "from the continuous inputs, but the model has none: train it with --values embed --inputs");
    for (size_t i = 0; i < ntr; i++)
        if (!train[i].feats) return cf_fail(err, CF_EINTERNAL, "train prompt %zu has no continuous inputs", i);
    s->n_tokens = n_tokens, s->F = F, s->P = P;
    if (!(s->slot = malloc((size_t)n_tokens * sizeof *s->slot))) goto oom;
    s->V = ft_choose_slots(train, ntr, n_tokens, F, max_vars, s->slot);
    if (!s->V) {
        ft_summary_free(s);
        return cf_fail(err, CF_EINPUT, "the summary target (--ft-summary-weight) found no token that carries a value in "
                       "the train prompts: nothing to summarise");
    }
    s->J = FT_SUMMARY_STATS * s->V;
    const size_t JP = (size_t)s->J * (size_t)P;
    s->mu = calloc(4 * (size_t)s->V, sizeof *s->mu);
    s->sd = calloc(4 * (size_t)s->V, sizeof *s->sd);
    s->A = calloc(JP, sizeof *s->A), s->dA = calloc(JP, sizeof *s->dA);
    s->mA = calloc(JP, sizeof *s->mA), s->vA = calloc(JP, sizeof *s->vA);
    s->c = calloc((size_t)s->J, sizeof *s->c), s->dc = calloc((size_t)s->J, sizeof *s->dc);
    s->mc = calloc((size_t)s->J, sizeof *s->mc), s->vc = calloc((size_t)s->J, sizeof *s->vc);
    double *n = calloc(4 * (size_t)s->V, sizeof *n), *sq = calloc(4 * (size_t)s->V, sizeof *sq);
    float *y = malloc((size_t)s->J * sizeof *y);
    double *ysum = calloc((size_t)s->J, sizeof *ysum), *ycnt = calloc((size_t)s->J, sizeof *ycnt);
    int ok = s->mu && s->sd && s->A && s->dA && s->mA && s->vA && s->c && s->dc && s->mc && s->vc && n && sq && y &&
             ysum && ycnt;
    if (ok) {
        /* the standardisation: mean and spread of each value target over the train prompts that
         * have the variable (a constant one is left unscaled) */
        double raw[4 * FT_SUMMARY_MAX_VARS];
        int has[FT_SUMMARY_MAX_VARS];
        for (size_t i = 0; i < ntr; i++) {
            raw_summaries(s, &train[i], raw, has);
            for (int v = 0; v < s->V; v++)
                if (has[v])
                    for (int k = 0; k < 4; k++) n[4 * v + k]++, s->mu[4 * v + k] += raw[4 * v + k], sq[4 * v + k] += raw[4 * v + k] * raw[4 * v + k];
        }
        for (int q = 0; q < 4 * s->V; q++) {
            double m = n[q] ? s->mu[q] / n[q] : 0, var = n[q] ? sq[q] / n[q] - m * m : 0;
            s->mu[q] = m;
            s->sd[q] = var > 1e-12 ? sqrt(var) : 1.0;
        }
        /* the head starts at each target's train mean: A = 0, so its first gradient into the
         * model is zero, and the first steps fit the head */
        for (size_t i = 0; i < ntr; i++) {
            ft_summary_targets(s, &train[i], y);
            for (int j = 0; j < s->J; j++)
                if (!isnan(y[j])) ysum[j] += y[j], ycnt[j]++;
        }
        for (int j = 0; j < s->J; j++) s->c[j] = ycnt[j] ? (float)(ysum[j] / ycnt[j]) : 0.0f;
    }
    CF_FREE_ALL(n, sq, y, ysum, ycnt);
    if (ok) return CF_OK;
oom:
    ft_summary_free(s);
    return cf_fail(err, CF_EINTERNAL, "out of memory for the summary target");
}

/* ---- forward and backward, side by side ---- */

double ft_summary_forward(const ft_summary *s, const float *x, const float *y, int B, float *pred, size_t *n_obs) {
    double sse = 0;
    size_t k = 0;
    for (int b = 0; b < B; b++) {
        const float *xb = x + (size_t)b * s->P;
        for (int j = 0; j < s->J; j++) {
            const float *a = s->A + (size_t)j * s->P;
            float z = s->c[j];
            for (int i = 0; i < s->P; i++) z += a[i] * xb[i];
            pred[(size_t)b * s->J + j] = z;
            const float t = y[(size_t)b * s->J + j];
            if (isnan(t)) continue; /* a missing target: out of the loss and of its count */
            const double d = (double)z - t;
            sse += d * d;
            k++;
        }
    }
    *n_obs += k;
    return sse;
}

void ft_summary_backward(ft_summary *s, const float *x, const float *y, const float *pred, int B, float scale,
                         float *dx) {
    for (int b = 0; b < B; b++) {
        const float *xb = x + (size_t)b * s->P;
        float *dxb = dx + (size_t)b * s->P;
        for (int j = 0; j < s->J; j++) {
            const float t = y[(size_t)b * s->J + j];
            if (isnan(t)) continue;
            /* d/dz of scale * (z - t)^2 */
            const float g = 2.0f * scale * (pred[(size_t)b * s->J + j] - t);
            const float *a = s->A + (size_t)j * s->P;
            float *da = s->dA + (size_t)j * s->P;
            for (int i = 0; i < s->P; i++) {
                dxb[i] += g * a[i];
                da[i] += g * xb[i];
            }
            s->dc[j] += g;
        }
    }
}

void ft_summary_zero_grad(ft_summary *s) {
    memset(s->dA, 0, (size_t)s->J * s->P * sizeof *s->dA);
    memset(s->dc, 0, (size_t)s->J * sizeof *s->dc);
}

void ft_summary_update(ft_summary *s, const gpt_opt_config *o, float lr) {
    s->step++;
    const double t = (double)s->step;
    const float a = (float)(lr / (1.0 - pow(o->beta1, t))), inv_bc2 = (float)(1.0 / (1.0 - pow(o->beta2, t)));
    gpt__adamw_chunk(s->A, s->dA, s->mA, s->vA, (size_t)s->J * s->P, 1.0f, o->beta1, o->beta2, a, inv_bc2, o->eps, 0.0f);
    gpt__adamw_chunk(s->c, s->dc, s->mc, s->vc, (size_t)s->J, 1.0f, o->beta1, o->beta2, a, inv_bc2, o->eps, 0.0f);
}
