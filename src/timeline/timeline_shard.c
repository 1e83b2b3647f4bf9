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

#include "util/file.h"
#include "util/le.h"
#include "util/atomic_file.h"
#include "util/progress.h"

#define SHARD_MAGIC "CLINFMTK"
/* Version 3: TIMES and VALUES are coded by blocks of SHARD_BLOCK tokens (an INDEX entry per
 * block, a DATA stream), tokens stay a flat array. Versions 1 and 2 (flat int64 times, flat
 * float32 values) are refused with a request to re-prepare; a preparation record names the
 * shard version it was made with, so `clinfm vocab --shards` and `train` rebuild them alone. */
#define SHARD_HEADER 256
#define SHARD_REC 32
#define SHARD_ALIGN 64
#define SHARD_BLOCK 128
#define SHARD_IDX 16
#define SH_HASH_OFF 224

/* A block's time step: every time delta that is a positive multiple of it is written in
 * these units, anything else (a new subject, a time going back, TIME_NULL) whole. */
static const uint64_t time_units[3] = {60000000, 1000000, 1}; /* a minute, a second, 1 µs */

static uint64_t align_up(uint64_t x) { return (x + SHARD_ALIGN - 1) / SHARD_ALIGN * SHARD_ALIGN; }

static size_t varint_put(uint8_t *p, uint64_t x) {
    size_t n = 0;
    while (x >= 0x80) {
        p[n++] = (uint8_t)(x | 0x80);
        x >>= 7;
    }
    p[n++] = (uint8_t)x;
    return n;
}

static size_t varint_len(uint64_t x) {
    size_t n = 1;
    while (x >= 0x80) x >>= 7, n++;
    return n;
}

/* Reads a varint at *p (< end); 0 when it runs past end or past 10 bytes (damage). */
static int varint_get(const uint8_t **p, const uint8_t *end, uint64_t *x) {
    uint64_t v = 0;
    for (int sh = 0; sh < 70 && *p < end; sh += 7) {
        uint8_t b = *(*p)++;
        v |= (uint64_t)(b & 0x7f) << sh;
        if (!(b & 0x80)) {
            *x = v;
            return 1;
        }
    }
    return 0;
}

static uint64_t zigzag(uint64_t d) { return (d << 1) ^ (0 - (d >> 63)); }
static uint64_t unzigzag(uint64_t z) { return (z >> 1) ^ (0 - (z & 1)); }

/* The code of one time delta d (wrapping difference of two times) in units u: (d/u) << 1 when
 * d is a positive multiple of u, else the escape 1 followed by zigzag(d). */
static size_t delta_len(uint64_t d, uint64_t u) {
    if ((int64_t)d > 0 && d % u == 0) return varint_len(d / u << 1);
    return 1 + varint_len(zigzag(d));
}

static size_t delta_put(uint8_t *p, uint64_t d, uint64_t u) {
    if ((int64_t)d > 0 && d % u == 0) return varint_put(p, d / u << 1);
    p[0] = 1;
    return 1 + varint_put(p + 1, zigzag(d));
}

/* The largest byte count one block's DATA can take: unit, two bitmaps, 11 bytes a time, 4 a
 * value. */
#define BLOCK_MAX (1 + 2 * (SHARD_BLOCK / 8) + SHARD_BLOCK * (11 + 4))

/* Codes one block's times and values (n <= SHARD_BLOCK tokens) into out; returns its length.
 * Layout: unit code u8 (index into time_units); time bitmap (bit j: token j's time differs
 * from token j-1's; bit 0 is 0, token 0's time is in the INDEX); a delta code per set bit;
 * value bitmap (bit j: token j carries a value, i.e. its bits are not the canonical NaN's);
 * float32 per set bit. Everything little-endian, bits LSB first. */
static size_t block_encode(const int64_t *times, const float *values, size_t n, uint8_t *out) {
    size_t nb = (n + 7) / 8, best = 0, best_len = SIZE_MAX;
    for (size_t u = 0; u < 3; u++) {
        size_t len = 0;
        for (size_t j = 1; j < n; j++)
            if (times[j] != times[j - 1]) len += delta_len((uint64_t)times[j] - (uint64_t)times[j - 1], time_units[u]);
        if (len < best_len) best_len = len, best = u;
    }
    size_t o = 0;
    out[o++] = (uint8_t)best;
    uint8_t *bm = out + o;
    memset(bm, 0, nb);
    o += nb;
    for (size_t j = 1; j < n; j++)
        if (times[j] != times[j - 1]) {
            bm[j / 8] |= (uint8_t)(1u << (j % 8));
            o += delta_put(out + o, (uint64_t)times[j] - (uint64_t)times[j - 1], time_units[best]);
        }
    uint8_t *vm = out + o;
    memset(vm, 0, nb);
    o += nb;
    const float none = NAN;
    for (size_t j = 0; j < n; j++)
        if (memcmp(&values[j], &none, sizeof none)) {
            vm[j / 8] |= (uint8_t)(1u << (j % 8));
            le_putf(out + o, values[j]);
            o += 4;
        }
    return o;
}

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

/* The block being filled: tokens' times and values until SHARD_BLOCK of them are there. */
typedef struct {
    int64_t times[SHARD_BLOCK];
    float values[SHARD_BLOCK];
    size_t n;
    uint64_t data_len; /* DATA bytes written so far */
    uint8_t code[BLOCK_MAX];
} block_writer;

enum { W_SUBJ, W_TOK, W_IDX, W_DATA, W_COUNT };

static int block_flush(block_writer *b, sec_writer *w, cf_err *err) {
    if (!b->n) return CF_OK;
    uint8_t e[SHARD_IDX];
    le_put64(e, b->data_len);
    le_put64(e + 8, (uint64_t)b->times[0]);
    size_t len = block_encode(b->times, b->values, b->n, b->code);
    int rc = sw_put(&w[W_IDX], e, sizeof e, err);
    if (!rc) rc = sw_put(&w[W_DATA], b->code, len, err);
    b->data_len += len;
    b->n = 0;
    return rc;
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
    sec_writer w[W_COUNT];
    memset(w, 0, sizeof w);
    block_writer *bw = calloc(1, sizeof *bw);
    uint64_t n_subj = 0, n_tok = 0, max_tok = 0;
    if (!bw) {
        rc = cf_fail(err, CF_EINTERNAL, "out of memory");
        goto done;
    }
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
    uint64_t n_blocks = (n_tok + SHARD_BLOCK - 1) / SHARD_BLOCK;
    uint64_t subj_off = align_up(SHARD_HEADER), tok_off = align_up(subj_off + n_subj * SHARD_REC),
             idx_off = align_up(tok_off + n_tok * tb), data_off = align_up(idx_off + n_blocks * SHARD_IDX);
    if ((rc = atomic_file_open(&f, path, err))) goto done;
    opened = 1;
    uint64_t offs[W_COUNT] = {subj_off, tok_off, idx_off, data_off};
    for (int j = 0; j < W_COUNT; j++) {
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
        if ((rc = sw_put(&w[W_SUBJ], rec, sizeof rec, err))) goto done;
        for (size_t j = 0; j < q.len; j++) {
            uint8_t b[4];
            if (tb == 2) {
                b[0] = (uint8_t)q.tokens[j];
                b[1] = (uint8_t)(q.tokens[j] >> 8);
            } else {
                le_put32(b, q.tokens[j]);
            }
            if ((rc = sw_put(&w[W_TOK], b, tb, err))) goto done;
            bw->times[bw->n] = q.times[j];
            bw->values[bw->n++] = q.values[j];
            if (bw->n == SHARD_BLOCK && (rc = block_flush(bw, w, err))) goto done;
        }
        first += q.len;
        n2++;
    }
    progress_end(&pr);
    if ((rc = block_flush(bw, w, err))) goto done;
    if (n2 != n_subj || first != n_tok) {
        rc = cf_fail(err, CF_EINTERNAL, "encoding was not deterministic between two passes");
        goto done;
    }
    uint64_t size = data_off + bw->data_len;
    for (int j = 0; j < W_COUNT; j++)
        if ((rc = sw_flush(&w[j], err))) goto done;
    if (ftruncate(f.fd, (off_t)size) != 0) {
        rc = cf_fail_errno(err, CF_EINTERNAL, "%s: cannot size the shard file", path);
        goto done;
    }
    uint8_t h[SHARD_HEADER];
    memset(h, 0, sizeof h);
    memcpy(h, SHARD_MAGIC, 8);
    le_put32(h + 8, TIMELINE_SHARD_VERSION);
    le_put32(h + 12, SHARD_HEADER);
    le_put32(h + 16, (uint32_t)part);
    le_put32(h + 20, tb);
    le_put64(h + 24, n_subj);
    le_put64(h + 32, n_tok);
    memcpy(h + 40, v->hash, VOCAB_HASH_BYTES);
    memcpy(h + 72, kid, SPLIT_KEY_ID_BYTES);
    le_put64(h + 88, subj_off);
    le_put64(h + 96, tok_off);
    le_put64(h + 104, idx_off);
    le_put64(h + 112, size);
    /* Three hash slots: SUBJECTS, TOKENS, and BLAKE2b-256(hash of INDEX || hash of DATA) (the
     * two were written interleaved, so one running hash could not see them in order). */
    uint8_t two[64];
    crypto_generichash_final(&w[W_SUBJ].h, h + 120, 32);
    crypto_generichash_final(&w[W_TOK].h, h + 152, 32);
    crypto_generichash_final(&w[W_IDX].h, two, 32);
    crypto_generichash_final(&w[W_DATA].h, two + 32, 32);
    crypto_generichash(h + 184, 32, two, sizeof two, NULL, 0);
    le_put32(h + 216, v->n_tokens);
    le_put32(h + 220, SHARD_BLOCK);
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
    for (int j = 0; j < W_COUNT; j++) free(w[j].buf);
    free(bw);
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
    int rc = file_map(path, "token shard", SHARD_HEADER, &sh->map, &sh->map_len, err);
    if (rc) return rc;
    const uint8_t *h = sh->map;
    rc = CF_EINPUT;
    uint8_t hh[32];
    if (memcmp(h, SHARD_MAGIC, 8)) {
        cf_fail(err, CF_EINPUT, "%s: not a clinfm token shard", path);
        goto fail;
    }
    sh->version = le_get32(h + 8);
    if (sh->version >= 1 && sh->version < TIMELINE_SHARD_VERSION) {
        cf_fail(err, CF_EINPUT,
                "%s: token shard format version %u is no longer read (this clinfm writes version %u); prepare the "
                "shards again: `clinfm vocab --shards DIR --rebuild`, or any `clinfm train`, which rebuilds a stale "
                "preparation",
                path, sh->version, TIMELINE_SHARD_VERSION);
        goto fail;
    }
    if (sh->version != TIMELINE_SHARD_VERSION || le_get32(h + 12) != SHARD_HEADER) {
        cf_fail(err, CF_EINPUT, "%s: token shard format version %u; this clinfm reads version %u", path,
                le_get32(h + 8), TIMELINE_SHARD_VERSION);
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
    uint64_t so = le_get64(h + 88), to = le_get64(h + 96), io = le_get64(h + 104), size = le_get64(h + 112);
    uint32_t vocab_tokens = le_get32(h + 216), block = le_get32(h + 220);
    if (sh->split >= SPLIT_COUNT || (sh->token_bytes != 2 && sh->token_bytes != 4) || size != sh->map_len ||
        block != SHARD_BLOCK || sh->n_subjects > size / SHARD_REC || sh->n_tokens > size / 2 ||
        so != align_up(SHARD_HEADER) || to != align_up(so + sh->n_subjects * SHARD_REC) ||
        io != align_up(to + sh->n_tokens * sh->token_bytes)) {
        cf_fail(err, CF_EINPUT, "%s: token shard sections do not match the file (truncated?)", path);
        goto fail;
    }
    sh->n_blocks = (sh->n_tokens + SHARD_BLOCK - 1) / SHARD_BLOCK;
    uint64_t data_off = align_up(io + sh->n_blocks * SHARD_IDX);
    if (data_off > size) {
        cf_fail(err, CF_EINPUT, "%s: token shard sections do not match the file (truncated?)", path);
        goto fail;
    }
    if (expect && (memcmp(expect->hash, sh->vocab_hash, VOCAB_HASH_BYTES) || expect->n_tokens != vocab_tokens)) {
        cf_fail(err, CF_EINPUT, "%s: token shard was made with another vocabulary", path);
        goto fail;
    }
    sh->subjects = h + so;
    sh->tokens = h + to;
    sh->index = h + io;
    sh->data = h + data_off;
    sh->data_len = size - data_off;
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

/* Decodes block b: times and values of its tokens (n of them, returned in *n). Returns 1, or 0
 * when its bytes do not decode as written (damage), leaving TIME_NULL and NaN in what was not
 * decoded. Bounds are checked on every read, so a damaged file never reads outside its map;
 * exact: every byte of the block used (what verify asks). */
static int block_decode(const timeline_shard *sh, uint64_t b, int64_t times[SHARD_BLOCK], float values[SHARD_BLOCK],
                        size_t *n_out, int *exact) {
    uint64_t g0 = b * SHARD_BLOCK;
    size_t n = (size_t)(sh->n_tokens - g0 < SHARD_BLOCK ? sh->n_tokens - g0 : SHARD_BLOCK), nb = (n + 7) / 8;
    *n_out = n;
    *exact = 0;
    for (size_t j = 0; j < n; j++) {
        times[j] = TIME_NULL;
        values[j] = NAN;
    }
    const uint8_t *e = sh->index + b * SHARD_IDX;
    uint64_t off = le_get64(e), next = b + 1 < sh->n_blocks ? le_get64(e + SHARD_IDX) : sh->data_len;
    if (off > next || next > sh->data_len || next - off < 1 + 2 * nb) return 0;
    const uint8_t *p = sh->data + off, *end = sh->data + next;
    uint8_t unit = *p++;
    if (unit >= 3) return 0;
    const uint8_t *bm = p;
    p += nb;
    uint64_t t = le_get64(e + 8);
    times[0] = (int64_t)t;
    for (size_t j = 1; j < n; j++) {
        if (bm[j / 8] >> (j % 8) & 1) {
            uint64_t x;
            if (!varint_get(&p, end, &x)) return 0;
            if (x & 1) {
                if (x != 1 || !varint_get(&p, end, &x)) return 0;
                t += unzigzag(x);
            } else {
                t += (x >> 1) * time_units[unit];
            }
        }
        times[j] = (int64_t)t;
    }
    if ((size_t)(end - p) < nb) return 0;
    const uint8_t *vm = p;
    p += nb;
    for (size_t j = 0; j < n; j++)
        if (vm[j / 8] >> (j % 8) & 1) {
            if (end - p < 4) return 0;
            values[j] = le_getf(p);
            p += 4;
        }
    *exact = p == end && !(bm[0] & 1);
    return 1;
}

void timeline_shard_read(const timeline_shard *sh, uint64_t g, size_t n, int64_t *times, float *values) {
    int64_t bt[SHARD_BLOCK];
    float bv[SHARD_BLOCK];
    while (n) {
        uint64_t b = g / SHARD_BLOCK, j0 = g % SHARD_BLOCK;
        size_t bn;
        int exact;
        block_decode(sh, b, bt, bv, &bn, &exact);
        size_t take = bn - j0 < n ? bn - j0 : n;
        if (times) memcpy(times, bt + j0, take * sizeof *times), times += take;
        if (values) memcpy(values, bv + j0, take * sizeof *values), values += take;
        g += take;
        n -= take;
    }
}

int64_t timeline_shard_time(const timeline_shard *sh, uint64_t i) {
    int64_t t;
    timeline_shard_read(sh, i, 1, &t, NULL);
    return t;
}

float timeline_shard_value(const timeline_shard *sh, uint64_t i) {
    float x;
    timeline_shard_read(sh, i, 1, NULL, &x);
    return x;
}

int timeline_shard_verify(const timeline_shard *sh, cf_err *err) {
    const uint8_t *h = sh->map;
    static const char *names[3] = {"SUBJECTS", "TOKENS", "INDEX and DATA"};
    for (int j = 0; j < 3; j++) {
        uint8_t hh[32];
        if (j < 2) {
            const uint8_t *p = j ? (const uint8_t *)sh->tokens : sh->subjects;
            crypto_generichash(hh, sizeof hh, p, j ? sh->n_tokens * sh->token_bytes : sh->n_subjects * SHARD_REC,
                               NULL, 0);
        } else {
            uint8_t two[64];
            crypto_generichash(two, 32, sh->index, sh->n_blocks * SHARD_IDX, NULL, 0);
            crypto_generichash(two + 32, 32, sh->data, sh->data_len, NULL, 0);
            crypto_generichash(hh, sizeof hh, two, sizeof two, NULL, 0);
        }
        if (sodium_memcmp(hh, sh->section_hash[j], 32))
            return cf_fail(err, CF_EINPUT, "token shard section %s checksum mismatch (the file is damaged)", names[j]);
    }
    uint32_t vt = le_get32(h + 216);
    for (uint64_t i = 0; i < sh->n_tokens; i++)
        if (timeline_shard_token(sh, i) >= vt)
            return cf_fail(err, CF_EINPUT, "token shard token %llu is outside the vocabulary", (unsigned long long)i);
    /* Blocks decode to exactly their bytes (what a checksum cannot say of a file written wrong). */
    int64_t bt[SHARD_BLOCK];
    float bv[SHARD_BLOCK];
    for (uint64_t b = 0; b < sh->n_blocks; b++) {
        size_t n;
        int exact;
        if (!block_decode(sh, b, bt, bv, &n, &exact) || !exact || (b == 0 && le_get64(sh->index) != 0))
            return cf_fail(err, CF_EINPUT, "token shard block %llu (tokens from %llu) does not decode",
                           (unsigned long long)b, (unsigned long long)(b * SHARD_BLOCK));
    }
    if (!sh->n_blocks && sh->data_len)
        return cf_fail(err, CF_EINPUT, "token shard has data but no tokens");
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

/* The latest event time before global token g of subject r (a time other than g's), or
 * TIME_NULL: the "previous event" of g's first continuous input. Reads back block by block. */
static int64_t prev_event_time(const timeline_shard *sh, const timeline_shard_subject *r, uint64_t g) {
    int64_t t = timeline_shard_time(sh, g), bt[SHARD_BLOCK];
    uint64_t lo = r->first + r->n_prefix;
    for (uint64_t k = g; k > lo;) {
        uint64_t b = (k - 1) / SHARD_BLOCK, b0 = b * SHARD_BLOCK, start = b0 > lo ? b0 : lo;
        timeline_shard_read(sh, start, (size_t)(k - start), bt, NULL);
        for (uint64_t j = k - start; j-- > 0;)
            if (bt[j] != t) return bt[j];
        k = start;
    }
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
            uint32_t np = timeline_prefix(v, slots, r.birth, timeline_shard_time(sh, pos), pre);
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
                 * the event before the window's first token. Decoded a block at a time, the
                 * inputs' running state carried from one to the next. */
                uint64_t n = (uint64_t)((i < T ? i : T) - i0), loc = g0 - r.first;
                uint64_t np = loc < r.n_prefix ? r.n_prefix - loc : 0;
                timeline_feature_run run = {np ? TIME_NULL : prev_event_time(sh, &r, g0), TIME_NULL};
                int64_t t0 = timeline_shard_time(sh, r.first), bt[SHARD_BLOCK];
                float bv[SHARD_BLOCK];
                for (uint64_t d = 0; d < n;) {
                    uint64_t g = g0 + d, take = SHARD_BLOCK - g % SHARD_BLOCK;
                    if (take > n - d) take = n - d;
                    timeline_shard_read(sh, g, (size_t)take, bt, bv);
                    timeline_features_run(&run, feats + (size_t)(i0 + (int)d) * TIMELINE_N_FEATURES, bt, bv,
                                          (size_t)take, (size_t)(np > d ? (np - d < take ? np - d : take) : 0), t0);
                    d += take;
                }
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
