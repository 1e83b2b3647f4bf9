/* Kernels of the GPT's optional parts (gpt.h: n_features, num_outputs): the embedding of
 * continuous inputs and the binary task heads. Internal contract between gpt.c, gpt_sample.c,
 * runtime_batch.c and the tests, in the style of gpt_kernels.h: forward and backward with
 * mirrored signatures, outputs first, dimensions last; a backward ADDS into the gradients it is
 * given. They are plain loops: F and H are small (a few and a few dozen), so these cost a
 * sliver of a transformer layer and need no fast twin.
 *
 * Dimension legend: N rows (B * T positions), F inputs per row, H hidden width, C channels,
 * B sequences, T positions, K heads. */
#ifndef CLINFM_MODEL_GPT_FEAT_H
#define CLINFM_MODEL_GPT_FEAT_H

#include <stddef.h>

#include "model/gpt_pool.h"

/* ---- continuous inputs: xh = tanh(feat @ xw1^T + xb1); out += xh @ xw2^T ----
 * feat (N, F) may be NULL (all zeros); xh (N, H) is kept for backward; out (N, C). */
void gpt__feat_forward(float *out, float *xh, const float *feat, const float *xw1, const float *xb1,
                       const float *xw2, size_t N, int F, int H, int C);
/* Gradients of xw1 (H, F), xb1 (H), xw2 (C, H) from dout (N, C); dxh (N, H) is scratch. The
 * inputs themselves get no gradient (they are data). */
void gpt__feat_backward(float *dxw1, float *dxb1, float *dxw2, float *dxh, const float *dout,
                        const float *xh, const float *feat, const float *xw2, size_t N, int F, int H,
                        int C);

/* What GPT_POOL_VARIABLES reads beside the hidden states (NULL in the other modes): tok the
 * token ids, (B, T) in the batch kernels and (len) in gpt__cls_pool; slot (Vp) each token's
 * variable slot as a whole number, -1 for none (gpt.h: clsmap); proj (k, C) the projection
 * (clsvw); S slots, k channels. */
typedef struct {
    const int *tok;
    const float *slot;
    const float *proj;
    int S, k;
} gpt__pool_vars;

/* ---- task heads over the rows b0 .. b1 - 1 of a (B, T, C) tensor h: x[b] (P) is what the
 * heads read (pool GPT_POOL_*: h[b, pos[b]] (P = C), the mean of h[b, 0..pos[b]] (P = C), both
 * (P = 2C), or both then the channel-wise max and min of h[b, 0..pos[b]] (EXTREMES, P = 4C),
 * then the max and min over the first and the second half of the history in time (WINDOWS,
 * P = 8C; the times are column GPT_POOL_TIME_FEATURE of feat (B, T, F), which may be NULL:
 * every position at time 0)), or the extremes then an attention pooling (ATTENTION, P = 5C: per
 * group g of G channel groups, softmax over positions of clsq[group] . h_t / sqrt(C / G), the
 * weighted sum of h_t; clsq (C) is used by this mode only, NULL otherwise), or the extremes then
 * per slot s of pv the [last ; max ; min] of z_t = proj h_t (k numbers each) over the positions
 * t <= pos[b] whose token is slot s's, zeros for a slot with none (VARIABLES, P = 4C + 3kS;
 * slot s at 4C + 3ks, its last, max and min k apart),
 * logits[b, k] = clsw[k] . x[b] + clsb[k]; losses: log loss over the labelled (b, k) of
 * y (B, K), NaN = no label. Returns the sum of the log losses of rows b0 .. b1 - 1 and adds
 * their labelled count to *n_labelled; head_loss and head_n (K, both or neither may be NULL) get
 * the same sum and count per head added (what a weighted multi-task objective needs). ---- */
double gpt__cls_forward(float *logits, float *x, const float *h, const int *pos, const float *feat, int F,
                        const float *clsq, int G, const gpt__pool_vars *pv, const float *clsw, const float *clsb,
                        const float *y, size_t *n_labelled, double *head_loss, size_t *head_n, int b0, int b1, int T,
                        int C, int K, int pool);
/* g = scale[k] * (sigmoid(logit) - y) for labelled (b, k) (none when scale is NULL): dclsw[k] +=
 * g x[b], dclsb[k] += g, and dx = dx_add[b] (when not NULL: the gradient of an objective outside
 * the model on what the heads read, (B, P) like x) + sum_k g clsw[k] goes back into dh through
 * the pooling (h, the forward's input, finds where each max and min came from), into dclsq (C)
 * through the attention's scores, and into dproj (k, C) through the variables' projection. */
void gpt__cls_backward(float *dh, float *dclsw, float *dclsb, float *dclsq, float *dproj, const float *logits,
                       const float *x, const float *h, const int *pos, const float *feat, int F, const float *clsq,
                       int G, const gpt__pool_vars *pv, const float *clsw, const float *y, const float *scale,
                       const float *dx_add, int b0, int b1, int T, int C, int K, int pool);
/* ---- value forecast over N positions: for each n with targets[n] >= 0 and a finite value
 * vt[n], pred[n] = valw[targets[n]] . h[n] + valb[targets[n]]; returns the sum of
 * 1/2 (pred - vt)^2 and adds the count to *n_values. ---- */
double gpt__value_forward(float *pred, const float *h, const int *targets, const float *vt, const float *valw,
                          const float *valb, size_t *n_values, size_t N, int C);
/* g = scale * (pred - vt) at those positions: dh[n] += g valw[t], dvalw[t] += g h[n],
 * dvalb[t] += g. */
void gpt__value_backward(float *dh, float *dvalw, float *dvalb, const float *pred, const float *h, const int *targets,
                         const float *vt, const float *valw, float scale, size_t N, int C);

/* x (P) from one sequence's hidden states h (len, C), pooled up to position len - 1; feat (len, F)
 * its continuous inputs (the windows' times) or NULL; pv->tok that sequence's tokens (len). */
void gpt__cls_pool(float *x, const float *h, const float *feat, int F, const float *clsq, int G,
                   const gpt__pool_vars *pv, int len, int C, int pool);

#endif
