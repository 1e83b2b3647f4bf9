/* What a GPT's task heads read from a history (gpt.h: cls_pool), shared by the model's public
 * header and the head kernels (gpt_feat.c), which must agree on the width without either
 * depending on the other. */
#ifndef CLINFM_MODEL_GPT_POOL_H
#define CLINFM_MODEL_GPT_POOL_H

/* GPT_POOL_EXTREMES reads [last ; mean ; max ; min] over the history, channel by channel: a
 * trajectory's extremes (the highest lactate of 48 hours) reach the heads as they reach a
 * value-aggregate model, instead of being averaged away. GPT_POOL_WINDOWS adds the max and min
 * over the history's first half in time and over its second half ([... ; early max ; early min ;
 * late max ; late min]): a trend (lactate falling or rising over the stay), which one max and min
 * over the whole history cannot tell apart. */
/* GPT_POOL_ATTENTION adds to the extremes one learned attention pooling ([... ; att]): per group
 * of channels (the model's attention heads), a softmax over the history's positions of a learned
 * query (the parameter tensor clsq, C numbers, zero at first: a uniform softmax, the mean) times
 * the hidden states, so the head can learn which moments of the stay to read. */
/* GPT_POOL_VARIABLES adds to the extremes a narrow per-variable block: each position's final
 * hidden state projected to k channels (the parameter tensor clsvw, k x C, zero at first), and
 * for each of S variable slots (a code token that carries a value, mapped to its slot by the
 * tensor clsmap, chosen from the training rows when fine-tuning starts) the [last ; max ; min]
 * of those k channels over the positions of that variable's tokens (zeros when it has none).
 * XGBoost on value aggregates reads per variable; a channel-wise max over every position mixes
 * every variable into one number. k is small (2) so the block stays narrow: wider poolings
 * overfit the ~2,800 training stays of PhysioNet 2012 (docs/P12.md, session 9). Every mode from
 * GPT_POOL_EXTREMES on starts with the extremes [last ; mean ; max ; min]. */
enum { GPT_POOL_LAST = 0, GPT_POOL_MEAN = 1, GPT_POOL_BOTH = 2, GPT_POOL_EXTREMES = 3, GPT_POOL_WINDOWS = 4,
       GPT_POOL_ATTENTION = 5, GPT_POOL_VARIABLES = 6 };
/* Bounds of the variables pooling: slots (S) and projected channels (k). */
#define GPT_POOL_MAX_SLOTS 64
#define GPT_POOL_MAX_PROJ 8
/* The continuous input the windows read a position's time from: column 3 of
 * timeline_token_features, log1p(hours since the record's first event) / 4 (tested against it
 * in test_gpt). A model pooling by windows needs more continuous inputs than this column. */
#define GPT_POOL_TIME_FEATURE 3
/* The width of what the heads read for a pooling mode: C, 2C ([last ; mean]), 4C, 8C, 5C or
 * 4C + 3 k S (the variables pooling's S slots of k channels; S and k are ignored otherwise). */
static inline int gpt_pool_width(int pool, int C, int S, int k) {
    return pool == GPT_POOL_BOTH         ? 2 * C
           : pool == GPT_POOL_EXTREMES   ? 4 * C
           : pool == GPT_POOL_WINDOWS    ? 8 * C
           : pool == GPT_POOL_ATTENTION  ? 5 * C
           : pool == GPT_POOL_VARIABLES  ? 4 * C + 3 * k * S
                                         : C;
}

#endif
