/* What a GPT's task heads read from a history (gpt.h: cls_pool), shared by the model's public
 * header and the head kernels (gpt_feat.c), which must agree on the width without either
 * depending on the other. */
#ifndef CLINFM_MODEL_GPT_POOL_H
#define CLINFM_MODEL_GPT_POOL_H

/* GPT_POOL_EXTREMES reads [last ; mean ; max ; min] over the history, channel by channel: a
 * trajectory's extremes (the highest lactate of 48 hours) reach the heads as they reach a
 * value-aggregate model, instead of being averaged away. */
enum { GPT_POOL_LAST = 0, GPT_POOL_MEAN = 1, GPT_POOL_BOTH = 2, GPT_POOL_EXTREMES = 3 };
/* The width of what the heads read for a pooling mode: C, 2C ([last ; mean]) or 4C. */
static inline int gpt_pool_width(int pool, int C) { return pool == GPT_POOL_BOTH ? 2 * C : pool == GPT_POOL_EXTREMES ? 4 * C : C; }

#endif
