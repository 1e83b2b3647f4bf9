/* The GPT's optional parts: continuous-input embedding and task heads; see gpt_feat.h.
 *
 * Serial on purpose: a training step already runs them inside its per-slice threads, and a
 * parallel region of its own costs more than the work when another process holds a core
 * (measured: a 1-layer test model spent 40x its CPU time spinning in such regions). */
#include "model/gpt_feat.h"

#include <math.h>
#include <string.h>

#include "model/gpt_kernels.h"

void gpt__feat_forward(float *out, float *xh, const float *feat, const float *xw1, const float *xb1,
                       const float *xw2, size_t N, int F, int H, int C) {
    for (size_t n = 0; n < N; n++) {
        float *h = xh + n * (size_t)H;
        const float *f = feat ? feat + n * (size_t)F : NULL;
        for (int j = 0; j < H; j++) {
            float a = xb1[j];
            if (f)
                for (int i = 0; i < F; i++) a += xw1[(size_t)j * F + i] * f[i];
            h[j] = tanhf(a);
        }
        float *o = out + n * (size_t)C;
        for (int c = 0; c < C; c++) {
            const float *w = xw2 + (size_t)c * H;
            float a = 0.0f;
            for (int j = 0; j < H; j++) a += w[j] * h[j];
            o[c] += a;
        }
    }
}

void gpt__feat_backward(float *dxw1, float *dxb1, float *dxw2, float *dxh, const float *dout,
                        const float *xh, const float *feat, const float *xw2, size_t N, int F, int H,
                        int C) {
    /* dxh = (dout @ xw2) * (1 - xh^2): the gradient before tanh. */
    for (size_t n = 0; n < N; n++) {
        const float *d = dout + n * (size_t)C, *h = xh + n * (size_t)H;
        float *g = dxh + n * (size_t)H;
        for (int j = 0; j < H; j++) g[j] = 0.0f;
        for (int c = 0; c < C; c++) {
            const float *w = xw2 + (size_t)c * H;
            float dc = d[c];
            for (int j = 0; j < H; j++) g[j] += dc * w[j];
        }
        for (int j = 0; j < H; j++) g[j] *= 1.0f - h[j] * h[j];
    }
    /* Weight gradients. */
    for (int c = 0; c < C; c++) {
        float *dw = dxw2 + (size_t)c * H;
        for (size_t n = 0; n < N; n++) {
            float dc = dout[n * (size_t)C + c];
            if (dc == 0.0f) continue;
            const float *h = xh + n * (size_t)H;
            for (int j = 0; j < H; j++) dw[j] += dc * h[j];
        }
    }
    for (int j = 0; j < H; j++) {
        float *dw = dxw1 + (size_t)j * F;
        float db = 0.0f;
        for (size_t n = 0; n < N; n++) {
            float g = dxh[n * (size_t)H + j];
            db += g;
            if (feat)
                for (int i = 0; i < F; i++) dw[i] += g * feat[n * (size_t)F + i];
        }
        dxb1[j] += db;
    }
}

/* log(1 + exp(z)) without overflow */
static double softplus(double z) { return z > 0 ? z + log1p(exp(-z)) : log1p(exp(z)); }

/* The windows of GPT_POOL_WINDOWS (w 1: the history's first half in time, 2: its second half;
 * 0: the whole history). A position's time is its continuous input GPT_POOL_TIME_FEATURE,
 * log1p(hours) / 4, which is monotone in the hours, so the midpoint of [0, hours of the last
 * position] becomes a threshold on it. Position 0 is always early and the last always late, so
 * no window is empty (a history whose events all share one time has a late window of one
 * position). Without inputs (feat NULL) every position is at time 0: early. */
static float window_threshold(const float *feat, int F, int len) {
    if (!feat) return 0.0f;
    double f = feat[(size_t)(len - 1) * F + GPT_POOL_TIME_FEATURE];
    return (float)(log1p(0.5 * expm1(4.0 * f)) / 4.0);
}
static int in_window(const float *feat, int F, int len, int t, float thr, int w) {
    if (w == 0) return 1;
    float f = feat ? feat[(size_t)t * F + GPT_POOL_TIME_FEATURE] : 0.0f;
    return w == 1 ? t == 0 || f <= thr : t == len - 1 || f > thr;
}

/* The positions the max and min of channel c over window w came from: the first of equals, as
 * the forward's strict comparisons keep it (the gradient of a tie goes to one position, a
 * subgradient). Forward and backward both find them here, so they agree. */
static void extreme_pos(const float *h, const float *feat, int F, int len, int C, int c, float thr, int w,
                        int *tmax, int *tmin) {
    int a = -1, b = -1;
    for (int t = 0; t < len; t++) {
        if (!in_window(feat, F, len, t, thr, w)) continue;
        float v = h[(size_t)t * C + c];
        if (a < 0 || v > h[(size_t)a * C + c]) a = t;
        if (b < 0 || v < h[(size_t)b * C + c]) b = t;
    }
    *tmax = a, *tmin = b;
}

/* The attention pooling of GPT_POOL_ATTENTION, group g of G (channels g D .. g D + D - 1,
 * D = C / G): scores s_t = q_g . h_t[group] / sqrt(D) over positions 0 .. len - 1, a = softmax(s),
 * att[c] = sum_t a_t h_t[c]. The scores are recomputed where needed rather than stored: D is
 * small and a history is at most the context. */
static float att_score(const float *h, const float *q, int t, int C, int c0, int D) {
    const float *ht = h + (size_t)t * C + c0;
    float s = 0.0f;
    for (int i = 0; i < D; i++) s += q[c0 + i] * ht[i];
    return s / sqrtf((float)D);
}
/* the max score and the softmax's normaliser sum_t exp(s_t - max) */
static void att_norm(const float *h, const float *q, int len, int C, int c0, int D, float *mx, double *z) {
    float m = att_score(h, q, 0, C, c0, D);
    for (int t = 1; t < len; t++) m = fmaxf(m, att_score(h, q, t, C, c0, D));
    double s = 0.0;
    for (int t = 0; t < len; t++) s += exp((double)(att_score(h, q, t, C, c0, D) - m));
    *mx = m, *z = s;
}
static void att_forward(float *att, const float *h, const float *q, int G, int len, int C) {
    const int D = C / G;
    for (int g = 0; g < G; g++) {
        const int c0 = g * D;
        float m;
        double z;
        att_norm(h, q, len, C, c0, D, &m, &z);
        for (int i = 0; i < D; i++) att[c0 + i] = 0.0f;
        for (int t = 0; t < len; t++) {
            float a = (float)(exp((double)(att_score(h, q, t, C, c0, D) - m)) / z);
            const float *ht = h + (size_t)t * C + c0;
            for (int i = 0; i < D; i++) att[c0 + i] += a * ht[i];
        }
    }
}
/* Given datt (C): dh_t += a_t datt (the weighted sum) + ds_t q / sqrt(D) (the scores), dq +=
 * sum_t ds_t h_t / sqrt(D), with ds_t = a_t (da_t - sum_u a_u da_u), da_t = datt . h_t. */
static void att_backward(float *dh, float *dq, const float *datt, const float *h, const float *q, int G, int len,
                         int C) {
    const int D = C / G;
    const float inv = 1.0f / sqrtf((float)D);
    for (int g = 0; g < G; g++) {
        const int c0 = g * D;
        float m;
        double z, sad = 0.0;
        att_norm(h, q, len, C, c0, D, &m, &z);
        for (int t = 0; t < len; t++) {
            float a = (float)(exp((double)(att_score(h, q, t, C, c0, D) - m)) / z);
            const float *ht = h + (size_t)t * C + c0;
            float *dt = dh + (size_t)t * C + c0;
            float da = 0.0f;
            for (int i = 0; i < D; i++) {
                da += datt[c0 + i] * ht[i];
                dt[i] += a * datt[c0 + i];
            }
            sad += (double)a * da;
        }
        for (int t = 0; t < len; t++) {
            float a = (float)(exp((double)(att_score(h, q, t, C, c0, D) - m)) / z);
            const float *ht = h + (size_t)t * C + c0;
            float *dt = dh + (size_t)t * C + c0;
            float da = 0.0f;
            for (int i = 0; i < D; i++) da += datt[c0 + i] * ht[i];
            float ds = a * (da - (float)sad) * inv;
            for (int i = 0; i < D; i++) {
                dq[c0 + i] += ds * ht[i];
                dt[i] += ds * q[c0 + i];
            }
        }
    }
}

/* The variables pooling of GPT_POOL_VARIABLES. A token's slot is its map entry rounded (the map
 * holds whole numbers; rounding keeps a test's finite-difference nudge of the map harmless). */
static int var_slot(const gpt__pool_vars *pv, int tok) { return (int)floorf(pv->slot[tok] + 0.5f); }
/* z = proj h_t: k numbers; forward and backward both compute it here, in one order, so the
 * backward finds the positions the forward's max and min came from. */
static void var_project(float *z, const gpt__pool_vars *pv, const float *ht, int C) {
    for (int j = 0; j < pv->k; j++) {
        const float *w = pv->proj + (size_t)j * C;
        float a = 0.0f;
        for (int c = 0; c < C; c++) a += w[c] * ht[c];
        z[j] = a;
    }
}
/* Where each of the 3kS numbers comes from: at[i] the position of slot s's last, max or min of
 * channel j (i = 3ks + j, + k, + 2k), -1 for a slot with no position; val[i] its value. Ties keep
 * the first position, as the channel-wise extremes do. */
static void var_positions(int *at, float *val, const gpt__pool_vars *pv, const float *h, const int *tok, int len,
                          int C) {
    const int k = pv->k, n = 3 * k * pv->S;
    float z[GPT_POOL_MAX_PROJ];
    for (int i = 0; i < n; i++) at[i] = -1, val[i] = 0.0f;
    for (int t = 0; t < len; t++) {
        const int s = var_slot(pv, tok[t]);
        if (s < 0) continue;
        var_project(z, pv, h + (size_t)t * C, C);
        int *a = at + 3 * k * s;
        float *v = val + 3 * k * s;
        for (int j = 0; j < k; j++) {
            a[j] = t, v[j] = z[j];
            if (a[k + j] < 0 || z[j] > v[k + j]) a[k + j] = t, v[k + j] = z[j];
            if (a[2 * k + j] < 0 || z[j] < v[2 * k + j]) a[2 * k + j] = t, v[2 * k + j] = z[j];
        }
    }
}
/* Given dxv (3kS): dz at each number's position, then dh_t += proj^T dz and dproj += dz h_t^T. */
static void var_backward(float *dh, float *dproj, const float *dxv, const gpt__pool_vars *pv, const float *h,
                         const int *tok, int len, int C) {
    int at[3 * GPT_POOL_MAX_PROJ * GPT_POOL_MAX_SLOTS];
    float val[3 * GPT_POOL_MAX_PROJ * GPT_POOL_MAX_SLOTS];
    var_positions(at, val, pv, h, tok, len, C);
    for (int i = 0; i < 3 * pv->k * pv->S; i++) {
        const float d = dxv[i];
        if (at[i] < 0 || d == 0.0f) continue;
        const int j = i % pv->k;
        const float *ht = h + (size_t)at[i] * C, *w = pv->proj + (size_t)j * C;
        float *dt = dh + (size_t)at[i] * C, *dw = dproj + (size_t)j * C;
        for (int c = 0; c < C; c++) {
            dt[c] += d * w[c];
            dw[c] += d * ht[c];
        }
    }
}

void gpt__cls_pool(float *x, const float *h, const float *feat, int F, const float *q, int G,
                   const gpt__pool_vars *pv, int len, int C, int pool) {
    float *mean = x;
    if (pool != GPT_POOL_MEAN) {
        memcpy(x, h + (size_t)(len - 1) * C, (size_t)C * sizeof *x);
        if (pool == GPT_POOL_LAST) return;
        mean = x + C;
    }
    for (int c = 0; c < C; c++) mean[c] = 0.0f;
    for (int t = 0; t < len; t++)
        for (int c = 0; c < C; c++) mean[c] += h[(size_t)t * C + c];
    for (int c = 0; c < C; c++) mean[c] /= (float)len;
    if (pool < GPT_POOL_EXTREMES) return;
    float *mx = x + 2 * C, *mn = x + 3 * C;
    memcpy(mx, h, (size_t)C * sizeof *x);
    memcpy(mn, h, (size_t)C * sizeof *x);
    for (int t = 1; t < len; t++)
        for (int c = 0; c < C; c++) {
            float v = h[(size_t)t * C + c];
            if (v > mx[c]) mx[c] = v;
            if (v < mn[c]) mn[c] = v;
        }
    if (pool == GPT_POOL_ATTENTION) att_forward(x + 4 * C, h, q, G, len, C);
    if (pool == GPT_POOL_VARIABLES) {
        int at[3 * GPT_POOL_MAX_PROJ * GPT_POOL_MAX_SLOTS];
        var_positions(at, x + 4 * C, pv, h, pv->tok, len, C);
    }
    if (pool != GPT_POOL_WINDOWS) return;
    /* (early max, early min, late max, late min) at 4C .. 8C */
    float thr = window_threshold(feat, F, len);
    for (int w = 1; w <= 2; w++) {
        float *wmx = x + (2 + 2 * w) * C, *wmn = wmx + C;
        for (int c = 0; c < C; c++) {
            int a, b;
            extreme_pos(h, feat, F, len, C, c, thr, w, &a, &b);
            wmx[c] = h[(size_t)a * C + c];
            wmn[c] = h[(size_t)b * C + c];
        }
    }
}

/* pv with its tokens moved to row b of a (B, T) batch */
static gpt__pool_vars vars_of_row(const gpt__pool_vars *pv, int b, int T) {
    gpt__pool_vars r = {NULL, NULL, NULL, 0, 0};
    if (pv) r = *pv, r.tok = pv->tok + (size_t)b * T;
    return r;
}

double gpt__cls_forward(float *logits, float *xs, const float *h, const int *pos, const float *feat, int F,
                        const float *clsq, int G, const gpt__pool_vars *pv, const float *clsw, const float *clsb,
                        const float *y, size_t *n_labelled, double *head_loss, size_t *head_n, int b0, int b1, int T,
                        int C, int K, int pool) {
    double loss = 0.0;
    size_t n = 0;
    const int P = gpt_pool_width(pool, C, pv ? pv->S : 0, pv ? pv->k : 0);
    for (int b = b0; b < b1; b++) {
        float *x = xs + (size_t)b * P;
        gpt__pool_vars row = vars_of_row(pv, b, T);
        gpt__cls_pool(x, h + (size_t)b * T * C, feat ? feat + (size_t)b * T * F : NULL, F, clsq, G, &row, pos[b] + 1,
                      C, pool);
        for (int k = 0; k < K; k++) {
            const float *w = clsw + (size_t)k * P;
            float z = clsb[k];
            for (int c = 0; c < P; c++) z += w[c] * x[c];
            logits[(size_t)b * K + k] = z;
            if (y) {
                float t = y[(size_t)b * K + k];
                if (isnan(t)) continue;
                /* -[t log s(z) + (1-t) log(1 - s(z))] = softplus(z) - t z */
                const double l = softplus(z) - (double)t * z;
                loss += l;
                n++;
                if (head_loss) head_loss[k] += l, head_n[k]++;
            }
        }
    }
    *n_labelled += n;
    return loss;
}

void gpt__cls_backward(float *dh, float *dclsw, float *dclsb, float *dclsq, float *dproj, const float *logits,
                       const float *xs, const float *h, const int *pos, const float *feat, int F, const float *clsq,
                       int G, const gpt__pool_vars *pv, const float *clsw, const float *y, const float *scale,
                       const float *dx_add, int b0, int b1, int T, int C, int K, int pool) {
    const int P = gpt_pool_width(pool, C, pv ? pv->S : 0, pv ? pv->k : 0);
    float dx[8 * 4096];
    for (int b = b0; b < b1; b++) {
        const float *x = xs + (size_t)b * P;
        int any = dx_add != NULL;
        for (int c = 0; c < P; c++) dx[c] = dx_add ? dx_add[(size_t)b * P + c] : 0.0f;
        for (int k = 0; scale && k < K; k++) {
            float t = y[(size_t)b * K + k];
            if (isnan(t)) continue;
            float z = logits[(size_t)b * K + k];
            float g = scale[k] * (1.0f / (1.0f + expf(-z)) - t);
            const float *w = clsw + (size_t)k * P;
            float *dw = dclsw + (size_t)k * P;
            for (int c = 0; c < P; c++) {
                dx[c] += g * w[c];
                dw[c] += g * x[c];
            }
            dclsb[k] += g;
            any = 1;
        }
        if (!any) continue;
        /* back through the pooling: the last position gets its part, every position up to it
         * an equal share of the mean's, and the positions of each channel's max and min theirs */
        float *rows = dh + (size_t)b * T * C;
        const float *dmean = dx;
        if (pool != GPT_POOL_MEAN) {
            float *last = rows + (size_t)pos[b] * C;
            for (int c = 0; c < C; c++) last[c] += dx[c];
            dmean = dx + C;
        }
        if (pool != GPT_POOL_LAST) {
            float inv = 1.0f / (float)(pos[b] + 1);
            for (int t = 0; t <= pos[b]; t++)
                for (int c = 0; c < C; c++) rows[(size_t)t * C + c] += dmean[c] * inv;
        }
        if (pool == GPT_POOL_ATTENTION)
            att_backward(rows, dclsq, dx + 4 * C, h + (size_t)b * T * C, clsq, G, pos[b] + 1, C);
        if (pool == GPT_POOL_VARIABLES)
            var_backward(rows, dproj, dx + 4 * C, pv, h + (size_t)b * T * C, pv->tok + (size_t)b * T, pos[b] + 1, C);
        if (pool >= GPT_POOL_EXTREMES) {
            const int len = pos[b] + 1;
            const float *hb = h + (size_t)b * T * C, *fb = feat ? feat + (size_t)b * T * F : NULL;
            const float thr = window_threshold(fb, F, len);
            for (int w = 0; w <= (pool == GPT_POOL_WINDOWS ? 2 : 0); w++) {
                /* window w's max and min read dx at (2 + 2w) C and (3 + 2w) C */
                const float *dmax = dx + (2 + 2 * w) * C, *dmin = dmax + C;
                for (int c = 0; c < C; c++) {
                    int tmax, tmin;
                    extreme_pos(hb, fb, F, len, C, c, thr, w, &tmax, &tmin);
                    rows[(size_t)tmax * C + c] += dmax[c];
                    rows[(size_t)tmin * C + c] += dmin[c];
                }
            }
        }
    }
}

double gpt__value_forward(float *pred, const float *h, const int *targets, const float *vt, const float *valw,
                          const float *valb, size_t *n_values, size_t N, int C) {
    double loss = 0.0;
    size_t k = 0;
    for (size_t n = 0; n < N; n++) {
        int t = targets[n];
        if (t < 0 || !isfinite(vt[n])) {
            pred[n] = 0.0f;
            continue;
        }
        const float *w = valw + (size_t)t * C, *x = h + n * (size_t)C;
        float z = valb[t];
        for (int c = 0; c < C; c++) z += w[c] * x[c];
        pred[n] = z;
        double d = (double)z - vt[n];
        loss += 0.5 * d * d;
        k++;
    }
    *n_values += k;
    return loss;
}

void gpt__value_backward(float *dh, float *dvalw, float *dvalb, const float *pred, const float *h, const int *targets,
                         const float *vt, const float *valw, float scale, size_t N, int C) {
    for (size_t n = 0; n < N; n++) {
        int t = targets[n];
        if (t < 0 || !isfinite(vt[n])) continue;
        float g = scale * (pred[n] - vt[n]);
        const float *w = valw + (size_t)t * C, *x = h + n * (size_t)C;
        float *dw = dvalw + (size_t)t * C, *d = dh + n * (size_t)C;
        for (int c = 0; c < C; c++) {
            d[c] += g * w[c];
            dw[c] += g * x[c];
        }
        dvalb[t] += g;
    }
}
