/* Unigram and bigram baselines fitted on the train split and scored on every split; see
 * timeline.h. A model that cannot beat these by a wide margin has learnt nothing about
 * patients beyond token frequencies and the most common successions.
 *
 * The bigram counts live in an open-addressing table keyed by (previous, next) token pair,
 * so memory follows the distinct pairs seen, not V^2. */
#include "timeline/timeline.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util/progress.h"

typedef struct {
    uint64_t *keys;   /* (prev << 32 | next) + 1; 0 = empty */
    uint64_t *counts;
    size_t cap, used;
} pair_table;

static size_t pair_slot(const pair_table *p, uint64_t key) {
    size_t j = (size_t)((key * 0x9E3779B97F4A7C15ULL) >> 17) & (p->cap - 1);
    while (p->keys[j] && p->keys[j] != key) j = (j + 1) & (p->cap - 1);
    return j;
}

/* Adds one to the pair; *fresh = 1 when it was new. */
static int pair_add(pair_table *p, uint32_t a, uint32_t b, int *fresh) {
    if ((p->used + 1) * 2 > p->cap) {
        size_t nc = p->cap ? p->cap * 2 : 1 << 12;
        pair_table np = {calloc(nc, sizeof(uint64_t)), calloc(nc, sizeof(uint64_t)), nc, p->used};
        if (!np.keys || !np.counts) {
            free(np.keys);
            free(np.counts);
            return -1;
        }
        for (size_t i = 0; i < p->cap; i++)
            if (p->keys[i]) {
                size_t j = pair_slot(&np, p->keys[i]);
                np.keys[j] = p->keys[i];
                np.counts[j] = p->counts[i];
            }
        free(p->keys);
        free(p->counts);
        *p = np;
    }
    uint64_t key = ((uint64_t)a << 32 | b) + 1;
    size_t j = pair_slot(p, key);
    *fresh = !p->keys[j];
    if (*fresh) {
        p->keys[j] = key;
        p->used++;
    }
    p->counts[j]++;
    return 0;
}

static uint64_t pair_get(const pair_table *p, uint32_t a, uint32_t b) {
    if (!p->cap) return 0;
    size_t j = pair_slot(p, ((uint64_t)a << 32 | b) + 1);
    return p->keys[j] ? p->counts[j] : 0;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int timeline_ngram_baseline(const vocab *v, const store *s, const split_config *sp, timeline_baseline *out,
                            cf_err *err) {
    memset(out, 0, sizeof *out);
    uint32_t V = v->n_tokens;
    timeline_encoder *e = NULL;
    int rc = timeline_encoder_new(&e, v, s, err);
    if (rc) return rc;
    timeline_seq q;
    timeline_seq_init(&q);
    pair_table pt = {0};
    uint64_t *uni = calloc(V, sizeof *uni), *ctx = calloc(V, sizeof *ctx), *followers = calloc(V, sizeof *followers);
    uint64_t *lens = malloc((s->n_subjects + 1) * sizeof *lens);
    uint8_t *part_of = malloc(s->n_subjects + 1);
    if (!uni || !ctx || !followers || !lens || !part_of) {
        rc = cf_fail(err, CF_EINTERNAL, "out of memory for the n-gram baseline");
        goto done;
    }
    for (uint64_t k = 0; k < s->n_subjects; k++) part_of[k] = (uint8_t)split_assign(sp, s->subject_id[k]);

    /* Fit on train. */
    uint64_t N = 0;
    progress pr;
    progress_begin(&pr, "baseline (fit)", "subjects", s->n_subjects);
    for (uint64_t k = 0; k < s->n_subjects; k++) {
        progress_update(&pr, k);
        if (part_of[k] != SPLIT_TRAIN) continue;
        if ((rc = timeline_encode(e, k, &q, err))) goto done;
        out->train_subjects++;
        out->train_tokens += q.len;
        for (size_t j = q.n_prefix; j < q.len; j++) {
            uint32_t a = q.tokens[j - 1], b = q.tokens[j];
            int fresh;
            uni[b]++;
            N++;
            ctx[a]++;
            if (pair_add(&pt, a, b, &fresh)) {
                rc = cf_fail(err, CF_EINTERNAL, "out of memory for the n-gram baseline");
                goto done;
            }
            followers[a] += (uint64_t)fresh;
        }
    }
    progress_end(&pr);

    /* Score every split (train too: the gap between train and held_out shows overfitting), all
     * in one pass over the store: each split's sums still add its subjects in ascending order,
     * so the figures are those of one pass per split. lens holds each split's token counts in
     * its own segment. */
    double sum_u[SPLIT_COUNT] = {0}, sum_b[SPLIT_COUNT] = {0};
    size_t seg[SPLIT_COUNT + 1] = {0}, nl[SPLIT_COUNT] = {0};
    for (uint64_t k = 0; k < s->n_subjects; k++)
        if (part_of[k] < SPLIT_COUNT) seg[part_of[k] + 1]++;
    for (int p = 0; p < SPLIT_COUNT; p++) seg[p + 1] += seg[p];
    for (uint64_t k = 0; k < s->n_subjects; k++) {
        int p = part_of[k];
        if (p >= SPLIT_COUNT) continue;
        if ((rc = timeline_encode(e, k, &q, err))) goto done;
        out->eval_subjects[p]++;
        out->tokens_total[p] += q.len;
        if (q.len > out->tokens_max[p]) out->tokens_max[p] = q.len;
        lens[seg[p] + nl[p]++] = q.len;
        for (size_t j = q.n_prefix; j < q.len; j++) {
            uint32_t a = q.tokens[j - 1], b = q.tokens[j];
            double pu = ((double)uni[b] + 1.0) / ((double)N + (double)V);
            double pb = pu;
            if (ctx[a]) {
                double w = (double)followers[a];
                pb = ((double)pair_get(&pt, a, b) + w * pu) / ((double)ctx[a] + w);
            }
            sum_u[p] -= log(pu);
            sum_b[p] -= log(pb);
            out->eval_targets[p]++;
        }
    }
    for (int p = 0; p < SPLIT_COUNT; p++) {
        if (nl[p]) {
            qsort(lens + seg[p], nl[p], sizeof *lens, cmp_u64);
            out->tokens_median[p] = lens[seg[p] + nl[p] / 2];
        }
        out->unigram[p] = out->eval_targets[p] ? sum_u[p] / (double)out->eval_targets[p] : NAN;
        out->bigram[p] = out->eval_targets[p] ? sum_b[p] / (double)out->eval_targets[p] : NAN;
    }
done:
    CF_FREE_ALL(uni, ctx, followers, lens, part_of, pt.keys, pt.counts);
    timeline_seq_free(&q);
    timeline_encoder_free(e);
    return rc;
}
