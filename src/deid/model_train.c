/* Fitting the CRF of model.c: features from the evidence layers, the gold labels from annotated
 * spans, and AdaGrad steps on the negative log-likelihood, one note at a time (train.h).
 *
 * Gradient of the NLL of one note (T words, L labels, P the marginals, A/B forward and
 * backward scores, Z the partition):
 *   d/dw[f][y] = sum over words i holding feature f of (P[i][y] - [gold_i == y])
 *   d/dtrans[p][y] = sum over i of (P(i-1 = p, i = y) - [gold_{i-1} == p and gold_i == y]),
 *   with P(i-1 = p, i = y) = alpha[i-1][p] M[p][y] psi[i][y] beta[i][y] / c[i] in the scaled
 *   forward-backward of model.c, and the chain starting after an O (row O of trans scores the
 *   first word).
 * tests/test_deid_model.c checks this gradient against finite differences. */
#include "deid/train.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deid/model_int.h"
#include "util/mix64.h"
#include "util/progress.h"

void deid_train_opts_default(deid_train_opts *o) {
    memset(o, 0, sizeof *o);
    o->epochs = 8;
    o->lr = 0.1f;
    o->l2 = 1e-5f;
    o->threshold = 0.7f;
    o->threshold_bare = 0.8f;
    o->threshold_nopattern = 0.5f;
    o->prune = 0.05f;
    o->min_count = 3;
    o->seed = 1;
}

/* Gold label of each word: the type of the first in-scope gold span it overlaps, + 1; else 0. */
static void gold_labels(const ctx *c, const deid_doc *d, uint8_t *gold) {
    memset(gold, 0, c->nt);
    for (size_t k = 0; k < d->n_gold; k++) {
        const deid_gold *g = &d->gold[k];
        if (!g->in_scope || g->type < 0 || g->end <= g->start) continue;
        size_t lo = deid__first_word_ending_after(c, g->start);
        for (size_t i = lo; i < c->nt && c->t[i].s < g->end; i++)
            if (!gold[i]) gold[i] = (uint8_t)(g->type + 1);
    }
}

/* Negative log-likelihood of the gold labels and its gradient (added into gE (T, L) per word and
 * gT (L, L)). work holds 2 * T * L floats; P (T, L) receives the marginals. */
double deid__crf_nll_grad(const float *E, size_t T, const float *trans, const uint8_t *gold, float *P, float *work,
                          float *gE, float *gT) {
    enum { L = DEID_NL };
    double logZ = deid__crf_marginals(E, T, trans, P, work);
    const float *A = work, *B = work + T * L, *S = work + 2 * T * L, *C = work + 3 * T * L;
    float M[L * L];
    for (int k = 0; k < L * L; k++) M[k] = expf(trans[k]);
    double score = trans[0 * L + gold[0]] + E[gold[0]];
    for (size_t i = 1; i < T; i++) score += trans[gold[i - 1] * L + gold[i]] + E[i * L + gold[i]];
    for (size_t i = 0; i < T; i++)
        for (int y = 0; y < L; y++) gE[i * L + y] += P[i * L + y] - (gold[i] == y);
    for (int y = 0; y < L; y++) gT[0 * L + y] += P[y];
    gT[0 * L + gold[0]] -= 1;
    for (size_t i = 1; i < T; i++) {
        float sb[L];
        for (int y = 0; y < L; y++) sb[y] = S[i * L + y] * B[i * L + y] / C[i];
        for (int p = 0; p < L; p++) {
            float ap = A[(i - 1) * L + p];
            for (int y = 0; y < L; y++) gT[p * L + y] += ap * M[p * L + y] * sb[y];
        }
        gT[gold[i - 1] * L + gold[i]] -= 1;
    }
    return logZ - score;
}

static uint64_t rng_next(uint64_t *s) {
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

/* One note's evidence and its tokens' features (new features added to m), for the counting pass
 * and the training passes alike; the caller frees c with deid__ctx_free whatever it returns. */
static int doc_features(ctx *c, const deid_text_rules *r, const deid_doc *d, deid_model *m, deid_featbuf *fb,
                        cf_err *err) {
    memset(c, 0, sizeof *c);
    c->r = r;
    c->m = m;
    c->text = d->text;
    c->len = d->len;
    int rc = deid__evidence(c, err);
    if (!rc && c->nt) rc = deid__features(c, m, 1, fb, err);
    return rc;
}

int deid_model_train(const deid_text_rules *r, const deid_doc *const *docs, size_t n, const deid_train_opts *o,
                     const char *out_path, cf_err *err) {
    enum { L = DEID_NL };
    if (n == 0) return cf_fail(err, CF_EINPUT, "deid-train: no annotated notes to train on");
    deid_model *m = NULL;
    int rc = deid_model_new(&m, err);
    if (rc) return rc;
    m->threshold = o->threshold;
    m->threshold_bare = o->threshold_bare;
    m->threshold_nopattern = o->threshold_nopattern;
    m->threshold_dense = o->threshold_dense;
    m->one_case_context = o->one_case_context;
    m->list_person_gate = o->list_person_gate;
    m->list_catalogue_test = o->list_catalogue_test;
    m->amp_firm_span = o->amp_firm_span;
    m->one_case_fields = o->one_case_fields;
    m->keep_unnamed = o->keep_unnamed;
    m->one_case_cue = o->one_case_cue;
    m->field_dates = o->field_dates;
    m->nursing_shorthand = o->nursing_shorthand;
    float *G = NULL;      /* (cap, L) AdaGrad sums of squared gradients */
    uint32_t gcap = 0;
    float GT[L * L];
    memset(GT, 0, sizeof GT);
    size_t *order = cf_malloc(n * sizeof *order);
    if (!order) {
        deid_model_free(m);
        return cf_fail(err, CF_EINTERNAL, "out of memory");
    }
    for (size_t k = 0; k < n; k++) order[k] = k;
    uint64_t rs = o->seed * 0x9E3779B97F4A7C15ULL + 1;
    float *E = NULL, *P = NULL, *work = NULL, *gE = NULL;
    uint8_t *gold = NULL;
    size_t cap_T = 0;
    deid_featbuf fb = {0};
    progress pg;
    /* how many training words hold each feature: one pass of feature extraction alone */
    uint32_t *fcount = NULL;
    uint32_t fcap = 0;
    if (o->min_count > 1) {
        progress_begin(&pg, "deid-train", "notes (counting features)", n);
        for (size_t q = 0; q < n && !rc; q++) {
            const deid_doc *d = docs[q];
            progress_update(&pg, q);
            if (!d->len) continue;
            ctx c;
            rc = doc_features(&c, r, d, m, &fb, err);
            if (!rc && m->cap > fcap) {
                uint32_t *nc = cf_realloc_array(fcount, m->cap, sizeof *nc);
                if (!nc) rc = cf_fail(err, CF_EINTERNAL, "out of memory");
                else {
                    memset(nc + fcap, 0, (size_t)(m->cap - fcap) * sizeof *nc);
                    fcount = nc;
                    fcap = m->cap;
                }
            }
            if (!rc && c.nt)
                for (size_t f = 0; f < fb.n; f++) fcount[fb.ids[f]]++;
            deid__ctx_free(&c);
        }
        progress_end(&pg);
        if (!rc && o->verbose) {
            uint32_t kept = 0;
            for (uint32_t f = 0; f < m->feats.count; f++) kept += fcount[f] >= (uint32_t)o->min_count;
            fprintf(stderr, "deid-train: %u features, %u seen in at least %d words\n", m->feats.count, kept, o->min_count);
        }
    }
    for (int ep = 0; ep < o->epochs && !rc; ep++) {
        for (size_t k = n; k > 1; k--) {
            size_t j = (size_t)(rng_next(&rs) % k);
            size_t t = order[k - 1];
            order[k - 1] = order[j];
            order[j] = t;
        }
        double loss = 0;
        size_t words = 0, phi_words = 0;
        progress_begin(&pg, "deid-train", "notes", n);
        for (size_t q = 0; q < n && !rc; q++) {
            const deid_doc *d = docs[order[q]];
            progress_update(&pg, q);
            if (!d->len) continue;
            ctx c;
            rc = doc_features(&c, r, d, m, &fb, err);
            if (!rc && c.nt > cap_T) {
                size_t nc = c.nt * 2;
                free(E), free(P), free(work), free(gE), free(gold);
                E = cf_malloc(nc * L * sizeof *E);
                P = cf_malloc(nc * L * sizeof *P);
                work = cf_malloc((4 * nc * L + 1) * sizeof *work);
                gE = cf_malloc(nc * L * sizeof *gE);
                gold = cf_malloc(nc);
                cap_T = nc;
                if (!E || !P || !work || !gE || !gold) {
                    rc = cf_fail(err, CF_EINTERNAL, "out of memory");
                    cap_T = 0;
                }
            }
            if (!rc && m->cap > gcap) {
                float *ng = cf_realloc_array(G, (size_t)m->cap * L, sizeof *ng);
                if (!ng) rc = cf_fail(err, CF_EINTERNAL, "out of memory");
                else {
                    memset(ng + (size_t)gcap * L, 0, (size_t)(m->cap - gcap) * L * sizeof *ng);
                    G = ng;
                    gcap = m->cap;
                }
            }
            if (!rc && c.nt) {
                size_t T = c.nt;
                gold_labels(&c, d, gold);
                deid__emissions(m, &fb, T, E);
                memset(gE, 0, T * L * sizeof *gE);
                float gT[L * L];
                memset(gT, 0, sizeof gT);
                loss += deid__crf_nll_grad(E, T, m->trans, gold, P, work, gE, gT);
                words += T;
                for (size_t i = 0; i < T; i++) phi_words += gold[i] != 0;
                /* AdaGrad on every weight row the note's words touched */
                for (size_t i = 0; i < T; i++) {
                    const float *g = gE + i * L;
                    for (size_t f = fb.start[i]; f < fb.start[i + 1]; f++) {
                        uint32_t id = fb.ids[f];
                        /* rare features (and any first met after counting) keep weight 0 */
                        if (fcount && (id >= fcap || fcount[id] < (uint32_t)o->min_count)) continue;
                        float *w = m->w + (size_t)id * L, *gs = G + (size_t)id * L;
                        for (int y = 0; y < L; y++) {
                            float gy = g[y] + o->l2 * w[y];
                            gs[y] += gy * gy;
                            w[y] -= o->lr * gy / sqrtf(gs[y] + 1e-6f);
                        }
                    }
                }
                for (int y = 0; y < L * L; y++) {
                    float gy = gT[y] + o->l2 * m->trans[y];
                    GT[y] += gy * gy;
                    m->trans[y] -= o->lr * gy / sqrtf(GT[y] + 1e-6f);
                }
            }
            deid__ctx_free(&c);
        }
        progress_end(&pg);
        if (!rc && o->verbose)
            fprintf(stderr, "deid-train: epoch %d: %zu words (%zu PHI), loss %.5f per word, %u features\n", ep + 1,
                    words, phi_words, words ? loss / (double)words : 0.0, m->feats.count);
    }
    if (!rc) rc = deid_model_save(m, out_path, o->prune, err);
    deid__featbuf_free(&fb);
    free(E), free(P), free(work), free(gE), free(gold), free(G), free(order), free(fcount);
    deid_model_free(m);
    return rc;
}

/* replicates of the bootstrap over calibration notes, and their fixed seed (the choice is
   reproducible: the same model and notes give the same threshold) */
#define CALIB_BOOT 1000
#define CALIB_BOOT_SEED 0x5EED0C411B0ULL

static double calib_f2(uint64_t gh, uint64_t gn, uint64_t ph, uint64_t pn) {
    return deid_f2(deid_ratio(ph, pn), deid_ratio(gh, gn));
}

size_t deid_calib_choose(const deid_calib_counts *counts, size_t ng, size_t n_notes, double min_precision,
                         unsigned n_boot, uint64_t seed, size_t *best_out, double *se_out) {
    size_t best = ng, top = 0;
    double best_f2 = -1, top_p = -1;
    double *f2 = malloc((ng + 1) * sizeof *f2), *pp = malloc((ng + 1) * sizeof *pp);
    if (!f2 || !pp) {
        free(f2), free(pp);
        if (best_out) *best_out = 0;
        if (se_out) *se_out = 0;
        return 0;
    }
    for (size_t g = 0; g < ng; g++) {
        uint64_t gh = 0, gn = 0, ph = 0, pn = 0;
        for (size_t d = 0; d < n_notes; d++) {
            const deid_calib_counts *k = &counts[g * n_notes + d];
            gh += k->gold_hit, gn += k->gold_n, ph += k->pred_hit, pn += k->pred_n;
        }
        f2[g] = calib_f2(gh, gn, ph, pn), pp[g] = deid_ratio(ph, pn);
        if (pp[g] >= min_precision && f2[g] > best_f2) best_f2 = f2[g], best = g;
        if (pp[g] > top_p + 1e-9) top_p = pp[g], top = g;
    }
    if (best == ng) { /* no threshold reaches the floor: the most precise one */
        free(f2), free(pp);
        if (best_out) *best_out = top;
        if (se_out) *se_out = 0;
        return top;
    }
    /* the standard error of the best F2 by a bootstrap over notes: a note's words are not
       independent (one note's names share a style), so notes are what is resampled */
    double se = 0;
    if (n_boot > 1 && n_notes > 1) {
        uint64_t s = seed;
        double sum = 0, sum2 = 0;
        const deid_calib_counts *row = &counts[best * n_notes];
        for (unsigned b = 0; b < n_boot; b++) {
            uint64_t gh = 0, gn = 0, ph = 0, pn = 0;
            for (size_t d = 0; d < n_notes; d++) {
                const deid_calib_counts *k = &row[cf_splitmix64(&s) % n_notes];
                gh += k->gold_hit, gn += k->gold_n, ph += k->pred_hit, pn += k->pred_n;
            }
            double v = calib_f2(gh, gn, ph, pn);
            sum += v, sum2 += v * v;
        }
        double mean = sum / n_boot, var = (sum2 - n_boot * mean * mean) / (n_boot - 1);
        se = var > 0 ? sqrt(var) : 0;
    }
    /* the lowest threshold whose F2 is within one standard error of the best: differences
       smaller than the noise of the calibration notes do not decide, and a lower threshold
       removes fewer words (the one-case clinical-content cost falls with it) */
    size_t chosen = best;
    for (size_t g = 0; g < ng; g++)
        if (pp[g] >= min_precision && f2[g] >= best_f2 - se) {
            chosen = g;
            break;
        }
    free(f2), free(pp);
    if (best_out) *best_out = best;
    if (se_out) *se_out = se;
    return chosen;
}

int deid_model_calibrate(deid_text_rules *r, const char *model_path, const deid_corpus *held, size_t n_held,
                         double min_precision, float prune, int verbose, double *chosen, double *recall,
                         double *precision, cf_err *err) {
    static const double GRID[] = {0.30, 0.35, 0.40, 0.45, 0.50, 0.55, 0.60, 0.65, 0.70, 0.75,
                                  0.80, 0.85, 0.90, 0.93, 0.95, 0.97, 0.99};
    enum { NG = sizeof GRID / sizeof GRID[0] };
    size_t n_notes = 0;
    for (size_t h = 0; h < n_held; h++) n_notes += held[h].n_docs;
    if (!n_notes) return cf_fail(err, CF_EINPUT, "no calibration notes");
    deid_model *m = NULL;
    int rc = deid_model_load(&m, model_path, err);
    if (rc) return rc;
    if (!m) return cf_fail(err, CF_EINPUT, "%s: no model to calibrate", model_path);
    deid_calib_counts *cnt = calloc((size_t)NG * n_notes, sizeof *cnt);
    if (!cnt) {
        deid_model_free(m);
        return cf_fail(err, CF_EINTERNAL, "out of memory for the calibration counts");
    }
    deid_model *keep = r->model, *keep_dense = r->model_dense;
    r->model = m;
    r->model_dense = NULL; /* the calibrated model decodes every note (round 31) */
    /* the threshold is chosen with the dense notes' own threshold (round 30) off, and that line is
       written back as it was: the calibration picks the base model's threshold */
    float dense = m->threshold_dense;
    m->threshold_dense = 0;
    double RR[NG], PP[NG];
    for (size_t g = 0; g < NG && !rc; g++) {
        m->threshold = (float)GRID[g];
        uint64_t gh = 0, gn = 0, ph = 0, pn = 0, wn = 0, wr = 0;
        size_t d = 0;
        for (size_t h = 0; h < n_held && !rc; h++)
            for (size_t k = 0; k < held[h].n_docs && !rc; k++, d++) {
                /* one note at a time: the bootstrap resamples notes */
                deid_corpus one = held[h];
                one.docs = &held[h].docs[k], one.n_docs = 1;
                deid_eval_result res;
                rc = deid_evaluate(r, &one, &res, NULL, NULL, err);
                deid_calib_counts *c = &cnt[g * n_notes + d];
                c->gold_hit = (uint32_t)res.overlap_all.gold_hit, c->gold_n = (uint32_t)res.overlap_all.gold_n;
                c->pred_hit = (uint32_t)res.overlap_all.pred_hit, c->pred_n = (uint32_t)res.overlap_all.pred_n;
                gh += c->gold_hit, gn += c->gold_n, ph += c->pred_hit, pn += c->pred_n;
                wn += res.words_not_phi, wr += res.words_not_phi_removed;
            }
        if (rc) break;
        RR[g] = deid_ratio(gh, gn), PP[g] = deid_ratio(ph, pn);
        if (verbose)
            fprintf(stderr, "deid-train: calibration: threshold %.2f recall %.4f precision %.4f F2 %.5f cost %.3f%%\n",
                    GRID[g], RR[g], PP[g], deid_f2(PP[g], RR[g]), 100.0 * deid_ratio(wr, wn));
    }
    size_t best = 0, pick = 0;
    double se = 0;
    if (!rc) {
        pick = deid_calib_choose(cnt, NG, n_notes, min_precision, CALIB_BOOT, CALIB_BOOT_SEED, &best, &se);
        if (verbose)
            fprintf(stderr, "deid-train: calibration: best F2 at %.2f, bootstrap standard error %.4f over %zu notes\n",
                    GRID[best], se, n_notes);
        m->threshold = (float)GRID[pick];
        m->threshold_dense = dense;
        rc = deid_model_save(m, model_path, prune, err);
    }
    r->model = keep;
    r->model_dense = keep_dense;
    deid_model_free(m);
    free(cnt);
    if (rc) return rc;
    *chosen = GRID[pick];
    if (recall) *recall = RR[pick];
    if (precision) *precision = PP[pick];
    return CF_OK;
}
