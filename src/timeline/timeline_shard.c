/* Token shards: one split's token sequences in one mmap-able file, and training windows cut
 * from it; see timeline.h and docs/TIMELINE.md.
 *
 * Writing encodes the split twice: once to size the sections, once to write them, so memory
 * stays at one subject's tokens plus three 1 MiB write buffers whatever the store's size.
 * Each section is hashed as it is written; the header records the hashes and its own. */
#include "timeline/timeline.h"

#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "util/le.h"
#include "util/atomic_file.h"
#include "util/progress.h"

#define SHARD_MAGIC "CLINFMTK"
/* Version 2 adds the VALUES section right after TIMES (at the next 64-byte boundary); the
 * header has no room for a fourth hash, so the TIMES hash covers TIMES then VALUES. Version 1
 * shards are still read, as having no values. */
#define SHARD_VERSION 2
#define SHARD_HEADER 256
#define SHARD_REC 32
#define SHARD_ALIGN 64
#define SH_HASH_OFF 224

static uint64_t align_up(uint64_t x) { return (x + SHARD_ALIGN - 1) / SHARD_ALIGN * SHARD_ALIGN; }

/* A buffered, hashing writer into one section of the file. */
typedef struct {
    int fd;
    uint64_t off;
    uint8_t *buf;
    size_t n, cap;
    crypto_generichash_state h;
    const char *path;
} sec_writer;

static int sw_flush(sec_writer *w, cf_err *err) {
    if (!w->n) return CF_OK;
    crypto_generichash_update(&w->h, w->buf, w->n);
    int rc = pwrite_all(w->fd, w->buf, w->n, (long long)w->off, w->path, err);
    w->off += w->n;
    w->n = 0;
    return rc;
}

static int sw_put(sec_writer *w, const void *p, size_t len, cf_err *err) {
    if (w->n + len > w->cap) {
        int rc = sw_flush(w, err);
        if (rc) return rc;
    }
    memcpy(w->buf + w->n, p, len);
    w->n += len;
    return CF_OK;
}

int timeline_write_shards(const vocab *v, const store *s, const split_config *sp, int part, const char *path,
                          timeline_shard_stats *stats, cf_err *err) {
    uint8_t kid[SPLIT_KEY_ID_BYTES];
    split_key_id(sp, kid);
    if (memcmp(kid, v->split_key_id, sizeof kid) || sp->train_ppm != v->split_train_ppm ||
        sp->tuning_ppm != v->split_tuning_ppm || sp->rotate_ppm != v->split_rotate_ppm)
        return cf_fail(err, CF_EINPUT,
                       "the vocabulary was built with another split (key or fractions); shards must use the same "
                       "split, or held_out subjects could leak into what was fitted");
    if (part < 0 || part >= SPLIT_COUNT) return cf_fail(err, CF_EINTERNAL, "bad split %d", part);
    timeline_encoder *e = NULL;
    int rc = timeline_encoder_new(&e, v, s, err);
    if (rc) return rc;
    timeline_seq q;
    timeline_seq_init(&q);
    atomic_file f;
    int opened = 0;
    sec_writer w[4];
    memset(w, 0, sizeof w);
    uint64_t n_subj = 0, n_tok = 0, max_tok = 0;
    progress pr;
    progress_begin(&pr, "shard (sizing)", "subjects", s->n_subjects);
    for (uint64_t k = 0; k < s->n_subjects; k++) {
        progress_update(&pr, k);
        if (split_assign(sp, s->subject_id[k]) != part) continue;
        if ((rc = timeline_encode(e, k, &q, err))) goto done;
        if (q.len > UINT32_MAX) {
            rc = cf_fail(err, CF_EINPUT, "subject index %llu has more than 2^32 tokens", (unsigned long long)k);
            goto done;
        }
        n_subj++;
        n_tok += q.len;
        if (q.len > max_tok) max_tok = q.len;
    }
    progress_end(&pr);
    uint32_t tb = v->n_tokens <= 65536 ? 2 : 4;
    uint64_t subj_off = align_up(SHARD_HEADER), tok_off = align_up(subj_off + n_subj * SHARD_REC),
             time_off = align_up(tok_off + n_tok * tb), val_off = align_up(time_off + n_tok * 8),
             size = val_off + n_tok * 4;
    if ((rc = atomic_file_open(&f, path, err))) goto done;
    opened = 1;
    if (ftruncate(f.fd, (off_t)size) != 0) {
        rc = cf_fail_errno(err, CF_EINTERNAL, "%s: cannot size the shard file", path);
        goto done;
    }
    uint64_t offs[4] = {subj_off, tok_off, time_off, val_off};
    for (int j = 0; j < 4; j++) {
        w[j].fd = f.fd;
        w[j].off = offs[j];
        w[j].cap = 1 << 20;
        w[j].path = path;
        w[j].buf = malloc(w[j].cap);
        if (!w[j].buf) {
            rc = cf_fail(err, CF_EINTERNAL, "out of memory");
            goto done;
        }
        crypto_generichash_init(&w[j].h, NULL, 0, 32);
    }
    uint64_t first = 0, n2 = 0;
    progress_begin(&pr, "shard", "subjects", s->n_subjects);
    for (uint64_t k = 0; k < s->n_subjects; k++) {
        progress_update(&pr, k);
        if (split_assign(sp, s->subject_id[k]) != part) continue;
        if ((rc = timeline_encode(e, k, &q, err))) goto done;
        uint8_t rec[SHARD_REC];
        le_put64(rec, (uint64_t)q.subject_id);
        le_put64(rec + 8, first);
        le_put32(rec + 16, (uint32_t)q.len);
        le_put32(rec + 20, q.n_prefix);
        le_put64(rec + 24, (uint64_t)q.birth);
        if ((rc = sw_put(&w[0], rec, sizeof rec, err))) goto done;
        for (size_t j = 0; j < q.len; j++) {
            uint8_t b[8];
            if (tb == 2) {
                b[0] = (uint8_t)q.tokens[j];
                b[1] = (uint8_t)(q.tokens[j] >> 8);
            } else {
                le_put32(b, q.tokens[j]);
            }
            if ((rc = sw_put(&w[1], b, tb, err))) goto done;
            le_put64(b, (uint64_t)q.times[j]);
            if ((rc = sw_put(&w[2], b, 8, err))) goto done;
            uint32_t u;
            memcpy(&u, &q.values[j], 4);
            le_put32(b, u);
            if ((rc = sw_put(&w[3], b, 4, err))) goto done;
        }
        first += q.len;
        n2++;
    }
    progress_end(&pr);
    if (n2 != n_subj || first != n_tok) {
        rc = cf_fail(err, CF_EINTERNAL, "encoding was not deterministic between two passes");
        goto done;
    }
    uint8_t h[SHARD_HEADER];
    memset(h, 0, sizeof h);
    memcpy(h, SHARD_MAGIC, 8);
    le_put32(h + 8, SHARD_VERSION);
    le_put32(h + 12, SHARD_HEADER);
    le_put32(h + 16, (uint32_t)part);
    le_put32(h + 20, tb);
    le_put64(h + 24, n_subj);
    le_put64(h + 32, n_tok);
    memcpy(h + 40, v->hash, VOCAB_HASH_BYTES);
    memcpy(h + 72, kid, SPLIT_KEY_ID_BYTES);
    le_put64(h + 88, subj_off);
    le_put64(h + 96, tok_off);
    le_put64(h + 104, time_off);
    le_put64(h + 112, size);
    for (int j = 0; j < 4; j++)
        if ((rc = sw_flush(&w[j], err))) goto done;
    /* TIMES then VALUES under one hash: VALUES is read back into the TIMES hash state (the
     * sections were written interleaved, so one running hash could not see them in order). */
    for (int j = 0; j < 2; j++) crypto_generichash_final(&w[j].h, h + 120 + 32 * j, 32);
    {
        uint8_t *vbuf = malloc(1 << 20);
        if (!vbuf) {
            rc = cf_fail(err, CF_EINTERNAL, "out of memory");
            goto done;
        }
        for (uint64_t o = 0; o < n_tok * 4 && !rc; o += 1 << 20) {
            size_t len = n_tok * 4 - o < (1u << 20) ? (size_t)(n_tok * 4 - o) : (size_t)1 << 20;
            if (pread(f.fd, vbuf, len, (off_t)(val_off + o)) != (ssize_t)len)
                rc = cf_fail_errno(err, CF_EINTERNAL, "%s: cannot read back the shard's values", path);
            else
                crypto_generichash_update(&w[2].h, vbuf, len);
        }
        free(vbuf);
        if (rc) goto done;
    }
    crypto_generichash_final(&w[2].h, h + 120 + 64, 32);
    le_put32(h + 216, v->n_tokens);
    crypto_generichash(h + SH_HASH_OFF, 32, h, SH_HASH_OFF, NULL, 0);
    if ((rc = pwrite_all(f.fd, h, sizeof h, 0, path, err))) goto done;
    rc = atomic_file_commit(&f, err);
    opened = 0;
    if (!rc && stats) {
        stats->subjects = n_subj;
        stats->tokens = n_tok;
        stats->max_tokens = max_tok;
    }
done:
    if (opened) atomic_file_abort(&f);
    for (int j = 0; j < 4; j++) free(w[j].buf);
    timeline_seq_free(&q);
    timeline_encoder_free(e);
    return rc;
}

void timeline_shard_close(timeline_shard *sh) {
    if (sh->map) munmap(sh->map, sh->map_len);
    memset(sh, 0, sizeof *sh);
}

void timeline_shard_get_subject(const timeline_shard *sh, uint64_t i, timeline_shard_subject *out) {
    const uint8_t *r = sh->subjects + i * SHARD_REC;
    out->subject_id = (int64_t)le_get64(r);
    out->first = le_get64(r + 8);
    out->n_tokens = le_get32(r + 16);
    out->n_prefix = le_get32(r + 20);
    out->birth = (int64_t)le_get64(r + 24);
}

int timeline_shard_open(timeline_shard *sh, const char *path, const vocab *expect, cf_err *err) {
    memset(sh, 0, sizeof *sh);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return cf_fail_errno(err, CF_EINPUT, "%s: cannot open token shard", path);
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return cf_fail_errno(err, CF_EINPUT, "%s: cannot stat token shard", path);
    }
    if ((uint64_t)st.st_size < SHARD_HEADER) {
        close(fd);
        return cf_fail(err, CF_EINPUT, "%s: not a clinfm token shard (too short)", path);
    }
    void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (m == MAP_FAILED) return cf_fail_errno(err, CF_EINPUT, "%s: cannot map token shard", path);
    sh->map = m;
    sh->map_len = (size_t)st.st_size;
    const uint8_t *h = m;
    int rc = CF_EINPUT;
    uint8_t hh[32];
    if (memcmp(h, SHARD_MAGIC, 8)) {
        cf_fail(err, CF_EINPUT, "%s: not a clinfm token shard", path);
        goto fail;
    }
    sh->version = le_get32(h + 8);
    if (sh->version < 1 || sh->version > SHARD_VERSION || le_get32(h + 12) != SHARD_HEADER) {
        cf_fail(err, CF_EINPUT, "%s: token shard format version %u; this clinfm reads version %u", path,
                le_get32(h + 8), SHARD_VERSION);
        goto fail;
    }
    crypto_generichash(hh, sizeof hh, h, SH_HASH_OFF, NULL, 0);
    if (sodium_memcmp(hh, h + SH_HASH_OFF, 32)) {
        cf_fail(err, CF_EINPUT, "%s: token shard header checksum mismatch (the file is damaged)", path);
        goto fail;
    }
    sh->split = le_get32(h + 16);
    sh->token_bytes = le_get32(h + 20);
    sh->n_subjects = le_get64(h + 24);
    sh->n_tokens = le_get64(h + 32);
    memcpy(sh->vocab_hash, h + 40, VOCAB_HASH_BYTES);
    memcpy(sh->split_key_id, h + 72, SPLIT_KEY_ID_BYTES);
    uint64_t so = le_get64(h + 88), to = le_get64(h + 96), mo = le_get64(h + 104), size = le_get64(h + 112);
    uint32_t vocab_tokens = le_get32(h + 216);
    uint64_t vo = sh->version >= 2 ? align_up(mo + sh->n_tokens * 8) : 0;
    uint64_t end = sh->version >= 2 ? vo + sh->n_tokens * 4 : mo + sh->n_tokens * 8;
    if (sh->split >= SPLIT_COUNT || (sh->token_bytes != 2 && sh->token_bytes != 4) || size != sh->map_len ||
        sh->n_subjects > size / SHARD_REC || sh->n_tokens > size / 8 || so != align_up(SHARD_HEADER) ||
        to != align_up(so + sh->n_subjects * SHARD_REC) || mo != align_up(to + sh->n_tokens * sh->token_bytes) ||
        size != end) {
        cf_fail(err, CF_EINPUT, "%s: token shard sections do not match the file (truncated?)", path);
        goto fail;
    }
    if (expect && (memcmp(expect->hash, sh->vocab_hash, VOCAB_HASH_BYTES) || expect->n_tokens != vocab_tokens)) {
        cf_fail(err, CF_EINPUT, "%s: token shard was made with another vocabulary", path);
        goto fail;
    }
    sh->subjects = h + so;
    sh->tokens = h + to;
    sh->times = (const int64_t *)(const void *)(h + mo);
    sh->values = sh->version >= 2 ? (const float *)(const void *)(h + vo) : NULL;
    for (int j = 0; j < 3; j++) sh->section_hash[j] = h + 120 + 32 * j;
    /* The subject table must tile the token array exactly: window code relies on it. */
    uint64_t first = 0;
    for (uint64_t i = 0; i < sh->n_subjects; i++) {
        timeline_shard_subject r;
        timeline_shard_get_subject(sh, i, &r);
        if (r.first != first || r.n_prefix > r.n_tokens || r.n_tokens == 0 ||
            (expect && r.n_prefix != expect->n_slots + 2)) {
            cf_fail(err, CF_EINPUT, "%s: token shard subject table is inconsistent at record %llu", path,
                    (unsigned long long)i);
            goto fail;
        }
        first += r.n_tokens;
    }
    if (first != sh->n_tokens) {
        cf_fail(err, CF_EINPUT, "%s: token shard subject table does not cover its tokens", path);
        goto fail;
    }
    return CF_OK;
fail:
    timeline_shard_close(sh);
    return rc;
}

int timeline_shard_verify(const timeline_shard *sh, cf_err *err) {
    const uint8_t *h = sh->map;
    static const char *names[3] = {"SUBJECTS", "TOKENS", "TIMES"};
    uint64_t offs[3] = {le_get64(h + 88), le_get64(h + 96), le_get64(h + 104)};
    uint64_t lens[3] = {sh->n_subjects * SHARD_REC, sh->n_tokens * sh->token_bytes, sh->n_tokens * 8};
    for (int j = 0; j < 3; j++) {
        uint8_t hh[32];
        crypto_generichash_state st;
        crypto_generichash_init(&st, NULL, 0, sizeof hh);
        crypto_generichash_update(&st, h + offs[j], lens[j]);
        if (j == 2 && sh->values) /* version 2: the TIMES hash runs on over VALUES */
            crypto_generichash_update(&st, (const uint8_t *)sh->values, sh->n_tokens * 4);
        crypto_generichash_final(&st, hh, sizeof hh);
        if (sodium_memcmp(hh, sh->section_hash[j], 32))
            return cf_fail(err, CF_EINPUT, "token shard section %s checksum mismatch (the file is damaged)", names[j]);
    }
    uint32_t vt = le_get32(h + 216);
    for (uint64_t i = 0; i < sh->n_tokens; i++)
        if (timeline_shard_token(sh, i) >= vt)
            return cf_fail(err, CF_EINPUT, "token shard token %llu is outside the vocabulary", (unsigned long long)i);
    return CF_OK;
}

uint64_t timeline_shard_subject_at(const timeline_shard *sh, uint64_t pos) {
    uint64_t lo = 0, hi = sh->n_subjects; /* last record with first <= pos */
    while (hi - lo > 1) {
        uint64_t mid = lo + (hi - lo) / 2;
        if (le_get64(sh->subjects + mid * SHARD_REC + 8) <= pos) lo = mid;
        else hi = mid;
    }
    return lo;
}

/* Emits item i of a window: input i and target i-1. */
static void window_put(int *inputs, int *targets, int T, int i, uint32_t tok, int no_loss) {
    if (i < T) inputs[i] = (int)tok;
    if (i >= 1) targets[i - 1] = no_loss ? -1 : (int)tok;
}

int timeline_shard_window(const timeline_shard *sh, const vocab *v, uint64_t pos, int T, int *inputs, int *targets) {
    return timeline_shard_window_x(sh, v, pos, T, inputs, targets, NULL);
}

/* The latest event time before global token g of subject r (a time smaller than g's), or
 * TIME_NULL: the "previous event" of g's first continuous input. */
static int64_t prev_event_time(const timeline_shard *sh, const timeline_shard_subject *r, uint64_t g) {
    int64_t t = sh->times[g];
    for (uint64_t k = g; k-- > r->first + r->n_prefix;)
        if (sh->times[k] != t) return sh->times[k];
    return TIME_NULL;
}

int timeline_shard_window_x(const timeline_shard *sh, const vocab *v, uint64_t pos, int T, int *inputs, int *targets,
                            float *feats) {
    int i = 0, placed = 0;
    uint32_t pad = v->special[VOCAB_SP_PAD];
    if (pos < sh->n_tokens) {
        uint64_t k = timeline_shard_subject_at(sh, pos);
        timeline_shard_subject r;
        timeline_shard_get_subject(sh, k, &r);
        uint64_t local = pos - r.first;
        if (local < r.n_prefix) {
            pos = r.first;
        } else {
            /* A fresh prefix: slot values as of pos, age and year at pos's time. */
            uint32_t slots[VOCAB_MAX_SLOTS], pre[VOCAB_MAX_SLOTS + 2];
            for (uint32_t j = 0; j < v->n_slots && j < r.n_prefix; j++) slots[j] = timeline_shard_token(sh, r.first + j);
            for (uint64_t g = r.first + r.n_prefix; g < pos; g++) {
                uint32_t t = timeline_shard_token(sh, g);
                if (t < v->n_tokens && v->slot_of[t] >= 0) slots[v->slot_of[t]] = t;
            }
            uint32_t np = timeline_prefix(v, slots, r.birth, sh->times[pos], pre);
            for (uint32_t j = 0; j < np && i <= T; j++) {
                if (feats && i < T) timeline_token_features(feats + (size_t)i * TIMELINE_N_FEATURES, 1, TIME_NULL,
                                                            TIME_NULL, TIME_NULL, NAN);
                window_put(inputs, targets, T, i++, pre[j], 1);
            }
            placed = (int)np;
        }
        /* Then the tokens, subject after subject; their native prefixes carry no loss either. */
        while (i <= T && k < sh->n_subjects) {
            timeline_shard_get_subject(sh, k, &r);
            int i0 = i;
            uint64_t g0 = pos;
            for (uint64_t g = pos; g < r.first + r.n_tokens && i <= T; g++)
                window_put(inputs, targets, T, i++, timeline_shard_token(sh, g), g - r.first < r.n_prefix);
            if (feats && i0 < T) {
                /* The record's own times: its first event (the prefix carries that time), and
                 * the event before the window's first token. */
                uint64_t n = (uint64_t)((i < T ? i : T) - i0), loc = g0 - r.first;
                uint64_t np = loc < r.n_prefix ? r.n_prefix - loc : 0;
                int64_t prev0 = np ? TIME_NULL : prev_event_time(sh, &r, g0);
                timeline_features(feats + (size_t)i0 * TIMELINE_N_FEATURES, sh->times + g0,
                                  sh->values ? sh->values + g0 : NULL, (size_t)n, (size_t)np, sh->times[r.first],
                                  prev0);
            }
            k++;
            pos = r.first + r.n_tokens;
        }
    }
    if (feats)
        for (int j = i < T ? i : T; j < T; j++)
            timeline_token_features(feats + (size_t)j * TIMELINE_N_FEATURES, 0, TIME_NULL, TIME_NULL, TIME_NULL, NAN);
    while (i <= T) window_put(inputs, targets, T, i++, pad, 1);
    return placed;
}
