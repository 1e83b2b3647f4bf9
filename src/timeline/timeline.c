/* Encoding a subject's events into tokens, and printing them; see timeline.h.
 *
 * The encoder resolves every store code to its token list once (string lookups against the
 * vocabulary), so encoding a subject is one pass over its events with array lookups only. */
#include "timeline/timeline.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "timeline/timeline_codes.h"
#include "util/timeutil.h"

#define CODE_BIRTH 1u

struct timeline_encoder {
    const vocab *v;
    const store *s;
    store_cursor *cur;   /* the subject's events, a block decoded at a time */
    uint32_t *tok_off;   /* (C+1) into toks */
    uint32_t *toks;
    int8_t *slot;        /* (C) static slot of the code, or -1 */
    uint8_t *flags;      /* (C) CODE_BIRTH */
    uint32_t *cut_set;   /* (C) decile cut set, or UINT32_MAX */
    timeline_encoder_stats stats;
};

void timeline_seq_init(timeline_seq *q) {
    memset(q, 0, sizeof *q);
    q->birth = TIME_NULL;
}

void timeline_seq_free(timeline_seq *q) {
    CF_FREE_ALL(q->tokens, q->times, q->values, q->seen_key, q->seen_gen);
    timeline_seq_init(q);
}

size_t timeline_seq_known_at(const timeline_seq *q, int64_t t) {
    size_t n = q->n_prefix;
    /* Times never decrease along the stream, and [EOT] carries the last event's time. */
    while (n < q->len && q->times[n] != TIME_NULL && q->times[n] <= t) n++;
    return n;
}

static int seq_reserve(timeline_seq *q, size_t extra) {
    if (q->len + extra <= q->cap) return 0;
    size_t nc = q->cap ? q->cap : 256;
    while (nc < q->len + extra) nc *= 2;
    void *p;
#define GROW(field)                                               \
    if (!(p = realloc(q->field, nc * sizeof *q->field))) return -1; \
    q->field = p;
    GROW(tokens) GROW(times) GROW(values)
#undef GROW
    q->cap = nc;
    return 0;
}

static inline void seq_push(timeline_seq *q, uint32_t tok, int64_t t, float value) {
    q->tokens[q->len] = tok;
    q->values[q->len] = value;
    q->times[q->len++] = t;
}

/* ------------------------------------------------------------------ continuous inputs */

#define HOUR_US (INT64_C(3600) * USEC_PER_SEC)

void timeline_token_features(float out[TIMELINE_N_FEATURES], int is_prefix, int64_t t, int64_t prev_t, int64_t t0,
                             float value) {
    int has = !isnan(value);
    out[0] = has ? 1.0f : 0.0f;
    out[1] = has ? value : 0.0f;
    out[2] = out[3] = out[4] = 0.0f;
    out[5] = is_prefix ? 1.0f : 0.0f;
    if (is_prefix || t == TIME_NULL) return;
    if (prev_t != TIME_NULL && t > prev_t) out[2] = (float)(log1p((double)(t - prev_t) / HOUR_US) / 2.0);
    if (t0 != TIME_NULL && t > t0) {
        double h = (double)(t - t0) / HOUR_US;
        out[3] = (float)(log1p(h) / 4.0);
        out[4] = (float)(h < 48.0 ? h / 24.0 : 2.0);
    }
}

void timeline_features_run(timeline_feature_run *run, float *out, const int64_t *times, const float *values, size_t n,
                           size_t n_prefix, int64_t t0) {
    int64_t prev = run->prev, cur = run->cur;
    for (size_t j = 0; j < n; j++) {
        int64_t t = times[j];
        int pre = j < n_prefix;
        if (!pre && t != TIME_NULL && t != cur) {
            /* a new event time: the gap is measured from the last one */
            if (cur != TIME_NULL) prev = cur;
            cur = t;
        }
        timeline_token_features(out + j * TIMELINE_N_FEATURES, pre, t, prev, t0, values ? values[j] : NAN);
    }
    run->prev = prev;
    run->cur = cur;
}

void timeline_features(float *out, const int64_t *times, const float *values, size_t n, size_t n_prefix, int64_t t0,
                       int64_t prev0) {
    timeline_feature_run run = {prev0, TIME_NULL};
    timeline_features_run(&run, out, times, values, n, n_prefix, t0);
}

/* ------------------------------------------------------------------ encoder */

const timeline_encoder_stats *timeline_encoder_get_stats(const timeline_encoder *e) { return &e->stats; }

void timeline_encoder_free(timeline_encoder *e) {
    if (!e) return;
    store_cursor_free(e->cur);
    CF_FREE_ALL(e->tok_off, e->toks, e->slot, e->flags, e->cut_set, e);
}

/* The token of one code or part string: itself, its namespace's unknown, or [UNK]. */
static uint32_t resolve(const vocab *v, const char *str, int *unknown) {
    int64_t id = vocab_find(v, str);
    if (id >= 0 && (v->kind[id] == VOCAB_KIND_CODE || v->kind[id] == VOCAB_KIND_PART)) return (uint32_t)id;
    *unknown = 1;
    if (strstr(str, "//")) {
        size_t nl = timeline_code_namespace(str);
        char buf[1100];
        if (nl < 1000) {
            snprintf(buf, sizeof buf, "%.*s//[UNK]", (int)nl, str);
            int64_t u = vocab_find(v, buf);
            if (u >= 0) return (uint32_t)u;
        }
    }
    return v->special[VOCAB_SP_UNK];
}

int timeline_encoder_new(timeline_encoder **out, const vocab *v, const store *s, cf_err *err) {
    *out = NULL;
    timeline_encoder *e = calloc(1, sizeof *e);
    uint64_t C = s->n_codes;
    if (!e) return cf_fail(err, CF_EINTERNAL, "out of memory");
    e->v = v;
    e->s = s;
    e->stats.codes = C;
    int rc = store_cursor_new(&e->cur, s, STORE_CURSOR_READAHEAD, err);
    if (rc) {
        free(e);
        return rc;
    }
    e->tok_off = malloc((C + 1) * sizeof *e->tok_off);
    e->slot = malloc(C + 1);
    e->flags = calloc(C + 1, 1);
    e->cut_set = malloc((C + 1) * sizeof *e->cut_set);
    size_t cap = C * 2 + 8, n = 0;
    e->toks = malloc(cap * sizeof *e->toks);
    if (!e->tok_off || !e->slot || !e->flags || !e->cut_set || !e->toks) goto oom;
    int split = (v->flags & VOCAB_FLAG_SPLIT_CODES) != 0;
    for (uint64_t c = 0; c < C; c++) {
        const char *code = store_code_str(s, (uint32_t)c);
        timeline_code_info info;
        timeline_code_analyse(code, split, &info);
        e->tok_off[c] = (uint32_t)n;
        e->slot[c] = -1;
        e->cut_set[c] = UINT32_MAX;
        if (n + TIMELINE_MAX_PARTS + 1 > cap) {
            cap *= 2;
            uint32_t *nt = realloc(e->toks, cap * sizeof *nt);
            if (!nt) goto oom;
            e->toks = nt;
        }
        if (info.birth) {
            e->flags[c] = CODE_BIRTH;
            continue;
        }
        if (info.marker >= 0) e->toks[n++] = v->special[info.marker];
        if (!info.keep_code) continue;
        int unknown = 0;
        if (info.n_parts) {
            for (int j = 0; j < info.n_parts; j++) e->toks[n++] = resolve(v, info.parts[j], &unknown);
            e->stats.codes_split++;
        } else {
            uint32_t t = resolve(v, code, &unknown);
            e->toks[n++] = t;
            if (v->cut_set[t] != UINT32_MAX) {
                e->cut_set[c] = v->cut_set[t];
                e->stats.codes_quantised++;
            }
            /* A single-token code of a slot's namespace is that slot's value. */
            if (info.marker < 0) e->slot[c] = v->slot_of[t];
        }
        e->stats.codes_unknown += (uint64_t)unknown;
    }
    e->tok_off[C] = (uint32_t)n;
    *out = e;
    return CF_OK;
oom:
    timeline_encoder_free(e);
    return cf_fail(err, CF_EINTERNAL, "out of memory preparing the timeline encoder");
}

uint32_t timeline_prefix(const vocab *v, const uint32_t *slot_values, int64_t birth, int64_t t, uint32_t *out) {
    uint32_t n = 0;
    for (uint32_t k = 0; k < v->n_slots; k++) out[n++] = slot_values[k];
    int a = timeline_age_bin(birth, t);
    out[n++] = a < 0 ? v->age_unknown : v->age[a];
    if (t == TIME_NULL || !v->n_year_bins) {
        out[n++] = v->year_unknown;
    } else {
        int64_t days = t / USEC_PER_DAY - (t % USEC_PER_DAY < 0);
        int64_t y;
        unsigned m, d;
        civil_from_days(days, &y, &m, &d);
        int64_t b = y - v->year_base;
        b = b < 0 ? -1 : b / VOCAB_YEAR_BIN_YEARS;
        /* Years outside the train range fall into the first or last bin. */
        if (b < 0) b = 0;
        if (b >= (int64_t)v->n_year_bins) b = v->n_year_bins - 1;
        out[n++] = v->year[b];
    }
    return n;
}

/* Remembers (code, value) within one timestamp; returns 1 when it was already there. */
static int seen_before(timeline_seq *q, uint64_t key) {
    if ((q->seen_used + 1) * 2 > q->seen_cap) {
        size_t nc = q->seen_cap ? q->seen_cap * 2 : 64;
        uint64_t *nk = malloc(nc * sizeof *nk);
        uint32_t *ng = calloc(nc, sizeof *ng);
        if (!nk || !ng) {
            free(nk);
            free(ng);
            return -1;
        }
        for (size_t i = 0; i < q->seen_cap; i++) {
            if (q->seen_gen[i] != q->gen) continue;
            size_t j = (size_t)((q->seen_key[i] * 0x9E3779B97F4A7C15ULL) >> 20) & (nc - 1);
            while (ng[j] == q->gen) j = (j + 1) & (nc - 1);
            nk[j] = q->seen_key[i];
            ng[j] = q->gen;
        }
        free(q->seen_key);
        free(q->seen_gen);
        q->seen_key = nk;
        q->seen_gen = ng;
        q->seen_cap = nc;
    }
    size_t j = (size_t)((key * 0x9E3779B97F4A7C15ULL) >> 20) & (q->seen_cap - 1);
    while (q->seen_gen[j] == q->gen) {
        if (q->seen_key[j] == key) return 1;
        j = (j + 1) & (q->seen_cap - 1);
    }
    q->seen_key[j] = key;
    q->seen_gen[j] = q->gen;
    q->seen_used++;
    return 0;
}

static void seen_reset(timeline_seq *q) {
    q->seen_used = 0;
    if (++q->gen == 0) { /* wrapped: clear so no stale entry matches */
        if (q->seen_gen) memset(q->seen_gen, 0, q->seen_cap * sizeof *q->seen_gen);
        q->gen = 1;
    }
}

int timeline_encode(const timeline_encoder *e, uint64_t k, timeline_seq *q, cf_err *err) {
    const vocab *v = e->v;
    const store *s = e->s;
    if (k >= s->n_subjects) return cf_fail(err, CF_EINTERNAL, "subject index %llu out of range", (unsigned long long)k);
    uint32_t P = v->n_slots + 2;
    q->len = 0;
    q->subject_id = s->subject_id[k];
    q->birth = TIME_NULL;
    store_events ev;
    int rc = store_cursor_subject(e->cur, k, &ev, err);
    if (rc) return rc;
    if (seq_reserve(q, P + 1)) goto oom;
    q->len = P;
    uint32_t slot_now[VOCAB_MAX_SLOTS] = {0}, slot_static[VOCAB_MAX_SLOTS] = {0};
    for (uint32_t j = 0; j < v->n_slots; j++) slot_now[j] = v->slot_none[j];
    int have_static_snapshot = 0;
    int64_t prev_t = TIME_NULL, group_t = TIME_NULL, t0 = TIME_NULL;
    seen_reset(q);
    for (uint64_t i = 0; i < ev.n; i++) {
        uint32_t c = ev.code[i];
        int64_t t = ev.time[i];
        if (e->flags[c] & CODE_BIRTH) {
            if (q->birth == TIME_NULL && t != TIME_NULL) q->birth = t;
            continue;
        }
        const uint32_t *toks = e->toks + e->tok_off[c];
        uint32_t nt = e->tok_off[c + 1] - e->tok_off[c];
        int sl = e->slot[c];
        if (t == TIME_NULL) {
            /* A static fact: the first value of a slot wins; others have no place in a timeline. */
            if (sl >= 0 && slot_now[sl] == v->slot_none[sl]) slot_now[sl] = toks[0];
            continue;
        }
        if (!have_static_snapshot) {
            memcpy(slot_static, slot_now, sizeof slot_now);
            have_static_snapshot = 1;
        }
        if (t != group_t) {
            group_t = t;
            seen_reset(q);
        }
        float x = ev.numeric[i];
        uint32_t bits;
        memcpy(&bits, &x, 4);
        if (isnan(x)) bits = 0x7fc00000u;
        int dup = seen_before(q, (uint64_t)c << 32 | bits);
        if (dup < 0) goto oom;
        if (dup) continue;
        if (sl >= 0) {
            if (slot_now[sl] == toks[0]) continue; /* unchanged: nothing new */
            slot_now[sl] = toks[0];
        }
        if (!nt) continue;
        if (prev_t != TIME_NULL && t != prev_t) {
            /* One 6-month token per whole 182 days, then the bin of the rest (see
             * timeline_gap_bins; done here without its bounded buffer). */
            int64_t gap = t - prev_t, six = timeline_gap_lower_us(VOCAB_N_GAPS - 1);
            uint64_t n6 = (uint64_t)(gap / six);
            if (seq_reserve(q, n6 + 1)) goto oom;
            for (uint64_t j = 0; j < n6; j++) seq_push(q, v->gap[VOCAB_N_GAPS - 1], t, NAN);
            int last;
            if (timeline_gap_bins(gap % six, &last, 1) == 1) seq_push(q, v->gap[last], t, NAN);
        }
        /* At most a marker, 7 parts and a quantile, and room for the final [EOT]. */
        if (seq_reserve(q, TIMELINE_MAX_PARTS + 3)) goto oom;
        if (t0 == TIME_NULL) t0 = t;
        const float *cuts = e->cut_set[c] != UINT32_MAX ? v->cuts + (size_t)e->cut_set[c] * VOCAB_N_CUTS : NULL;
        float nv = cuts ? vocab_value_norm(cuts, x) : NAN;
        int embed = v->value_mode == VOCAB_VALUES_EMBED;
        /* In embed mode the code token (the last, for a marker and its code) carries the value. */
        for (uint32_t j = 0; j < nt; j++) seq_push(q, toks[j], t, embed && j + 1 == nt ? nv : NAN);
        if (!embed && !isnan(nv)) seq_push(q, v->quantile[vocab_decile(cuts, x) - 1], t, nv);
        prev_t = t;
    }
    if (!have_static_snapshot) memcpy(slot_static, slot_now, sizeof slot_now);
    seq_push(q, v->special[VOCAB_SP_EOT], prev_t, NAN);
    uint32_t pre[VOCAB_MAX_SLOTS + 2];
    uint32_t np = timeline_prefix(v, slot_static, q->birth, t0, pre);
    for (uint32_t j = 0; j < np; j++) {
        q->tokens[j] = pre[j];
        q->times[j] = t0;
        q->values[j] = NAN;
    }
    q->n_prefix = np;
    return CF_OK;
oom:
    return cf_fail(err, CF_EINTERNAL, "out of memory encoding a timeline");
}

/* ------------------------------------------------------------------ printing */

int timeline_print_subject(FILE *out, const vocab *v, const store *s, uint64_t k, const split_config *sp,
                           int show_ids, uint64_t limit, cf_err *err) {
    timeline_encoder *e;
    int rc = timeline_encoder_new(&e, v, s, err);
    if (rc) return rc;
    timeline_seq q;
    timeline_seq_init(&q);
    rc = timeline_encode(e, k, &q, err);
    if (rc) goto done;
    fprintf(out, "subject %lld: %zu tokens (%u in the static prefix)", (long long)q.subject_id, q.len, q.n_prefix);
    if (sp) fprintf(out, ", split %s", split_name(split_assign(sp, q.subject_id)));
    fputc('\n', out);
    char tbuf[40];
    fprintf(out, "%-21s", "prefix");
    for (uint32_t j = 0; j < q.n_prefix; j++) {
        fprintf(out, " %s", vocab_token_str(v, q.tokens[j]));
        if (show_ids) fprintf(out, "#%u", q.tokens[j]);
    }
    fputc('\n', out);
    uint64_t lines = 0;
    size_t j = q.n_prefix;
    while (j < q.len) {
        if (limit && lines == limit) {
            fprintf(out, "... %zu more tokens (--limit 0 shows all)\n", q.len - j);
            break;
        }
        int64_t t = q.times[j];
        /* Times here are ISO without the 'T' microseconds noise: minutes are enough to read. */
        if (t == TIME_NULL) fprintf(out, "%-21s", "-");
        else {
            time_format_iso(t, tbuf, sizeof tbuf);
            fprintf(out, "%-21.19s", tbuf);
        }
        for (; j < q.len && q.times[j] == t; j++) {
            fprintf(out, " %s", vocab_token_str(v, q.tokens[j]));
            if (show_ids) fprintf(out, "#%u", q.tokens[j]);
        }
        fputc('\n', out);
        lines++;
    }
done:
    timeline_seq_free(&q);
    timeline_encoder_free(e);
    return rc;
}
