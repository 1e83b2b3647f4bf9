/* Event store reader: maps the file read-only and points the column arrays into the mapping.
 *
 * Opening checks everything that is cheap and needed for memory safety of the accessors: magic,
 * byte order, version, the header checksum, that every section lies inside the file with the size
 * its counts imply, and that the small offset tables (codes, sources, subjects) are monotone and
 * in bounds. For a version 1 store, per-event checks (code ids, text ids) and the section checksums
 * cost a full read of the file and live in store_verify; a version 2 or 3 store's blocks are read
 * anyway to decode them, so their checksums and ids are checked where they are decoded: at open
 * (store_open), or block by block (store_open_summary and a store_cursor, store_cursor.c). */
#include "store/store.h"

#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "store/store_block.h"
#include "store/store_format.h"
#include "util/file.h"

/* Decoding threads: blocks are independent, so a store opens about this many times faster. */
#define DECODE_THREADS_MAX 8

typedef struct {
    store *s;
    const store_block *blocks;
    const char *data;
    uint64_t n_blocks;
    uint64_t next;          /* next block to claim (atomic) */
    int failed;             /* atomic: first failure stops the others */
    pthread_mutex_t lock;   /* guards bad_block and why */
    uint64_t bad_block;
    const char *why;
    int oom;
} decode_job;

static void *decode_worker(void *arg) {
    decode_job *j = arg;
    store *s = j->s;
    store_block_ctx *x = store_block_ctx_new((uint32_t)s->n_sources, 0, s->version);
    if (!x) {
        __atomic_store_n(&j->oom, 1, __ATOMIC_SEQ_CST);
        __atomic_store_n(&j->failed, 1, __ATOMIC_SEQ_CST);
        return NULL;
    }
    char *raw = NULL;
    size_t raw_cap = 0;
    for (;;) {
        if (__atomic_load_n(&j->failed, __ATOMIC_SEQ_CST)) break;
        uint64_t b = __atomic_fetch_add(&j->next, 1, __ATOMIC_SEQ_CST);
        if (b >= j->n_blocks) break;
        uint64_t at = b * STORE_BLOCK_EVENTS;
        store_block_cols c = {(int64_t *)s->time + at, (uint32_t *)s->code + at, (float *)s->numeric + at,
                              (uint32_t *)s->text + at, (uint64_t *)s->prov + at};
        const char *why = "";
        /* Read with pread into this thread's buffer, as a cursor does (store_cursor.c says why). */
        const char *src = j->data + j->blocks[b].offset;
        if (s->fd_open) src = store_read_block(s, b, &raw, &raw_cap, &why);
        if (!src || store_block_decode(x, src, (size_t)j->blocks[b].size, (size_t)j->blocks[b].n_events, s->n_codes,
                                       s->n_texts, &c, &why)) {
            pthread_mutex_lock(&j->lock);
            if (b < j->bad_block) {
                j->bad_block = b;
                j->why = why;
            }
            pthread_mutex_unlock(&j->lock);
            __atomic_store_n(&j->failed, 1, __ATOMIC_SEQ_CST);
        }
    }
    store_block_ctx_free(x);
    free(raw);
    return NULL;
}

/* Decodes every block of a version 2 or 3 store into one allocation holding the five columns. */
static int decode_events(store *s, const store_block *blocks, uint64_t n_blocks, const char *data,
                         const char *path, cf_err *err) {
    uint64_t N = s->n_events;
    /* An anonymous mapping in huge pages where the kernel allows: filling hundreds of MB of fresh
     * 4 KiB pages cost more page faults than the decoding itself (measured on this VM). */
    size_t bytes = (size_t)N * 28 + 64;
    char *mem = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED)
        return cf_fail(err, CF_EINTERNAL, "%s: out of memory decoding %llu events", path, (unsigned long long)N);
    madvise(mem, bytes, MADV_HUGEPAGE);
    s->decoded = mem;
    s->decoded_len = bytes;
    s->time = (const int64_t *)mem;
    s->prov = (const uint64_t *)(mem + N * 8);
    s->code = (const uint32_t *)(mem + N * 16);
    s->numeric = (const float *)(mem + N * 20);
    s->text = (const uint32_t *)(mem + N * 24);
    decode_job j = {s, blocks, data, n_blocks, 0, 0, PTHREAD_MUTEX_INITIALIZER, UINT64_MAX, "", 0};
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    int nt = ncpu < 1 ? 1 : ncpu > DECODE_THREADS_MAX ? DECODE_THREADS_MAX : (int)ncpu;
    if ((uint64_t)nt > n_blocks) nt = n_blocks ? (int)n_blocks : 1;
    pthread_t th[DECODE_THREADS_MAX];
    int started = 0;
    for (int t = 1; t < nt; t++) {
        if (pthread_create(&th[started], NULL, decode_worker, &j) != 0) break;
        started++;
    }
    decode_worker(&j);
    for (int t = 0; t < started; t++) pthread_join(th[t], NULL);
    if (j.oom) return cf_fail(err, CF_EINTERNAL, "%s: out of memory decoding events", path);
    if (j.failed)
        return cf_fail(err, CF_EINPUT, "%s: event block %llu %s; the store is damaged", path,
                       (unsigned long long)j.bad_block, j.why);
    return CF_OK;
}

static const store_section *find_section(const store_header *h, uint32_t kind) {
    for (uint32_t i = 0; i < h->n_sections && i < STORE_MAX_SECTIONS; i++)
        if (h->sections[i].kind == kind) return &h->sections[i];
    return NULL;
}

/* Points *out at a section whose size must be `expect` bytes (or any size when expect is
 * UINT64_MAX). Optional sections may be absent (out = NULL). */
static int bind(const store *s, const store_header *h, uint32_t kind, uint64_t expect, int optional,
                const void **out, uint64_t *size, const char *path, cf_err *err) {
    const store_section *sec = find_section(h, kind);
    *out = NULL;
    if (size) *size = 0;
    if (!sec) {
        if (optional) return CF_OK;
        return cf_fail(err, CF_EINPUT, "%s: store has no %s section; the file is damaged or not a clinfm store",
                       path, store_section_name(kind));
    }
    if (sec->offset < STORE_HEADER_SIZE || sec->offset > s->map_len || sec->size > s->map_len - sec->offset ||
        sec->offset % STORE_ALIGN)
        return cf_fail(err, CF_EINPUT, "%s: section %s lies outside the file (truncated store?)", path,
                       store_section_name(kind));
    if (expect != UINT64_MAX && sec->size != expect)
        return cf_fail(err, CF_EINPUT, "%s: section %s has %llu bytes, expected %llu", path,
                       store_section_name(kind), (unsigned long long)sec->size, (unsigned long long)expect);
    *out = (const char *)s->map + sec->offset;
    if (size) *size = sec->size;
    return CF_OK;
}

/* Offsets must start at 0, never decrease, end within the heap, and (for string tables) each
 * string must end with a NUL inside its slot. */
static int check_offsets(const uint64_t *off, uint64_t n, const char *heap, uint64_t heap_len,
                         int nul_terminated, const char *what, const char *path, cf_err *err) {
    if (off[0] != 0) goto bad;
    for (uint64_t i = 0; i < n; i++) {
        if (off[i + 1] < off[i] || off[i + 1] > heap_len) goto bad;
        if (nul_terminated && (off[i + 1] == off[i] || heap[off[i + 1] - 1] != '\0')) goto bad;
    }
    return CF_OK;
bad:
    return cf_fail(err, CF_EINPUT, "%s: %s table is inconsistent; the store is damaged", path, what);
}

static int count_v1(store *s, cf_err *err);

static int open_store(store *s, const char *path, int summary_only, cf_err *err) {
    memset(s, 0, sizeof *s);
    if (sodium_init() < 0) return cf_fail(err, CF_EINTERNAL, "libsodium failed to initialise");
    int rc = file_map_fd(path, "store", STORE_HEADER_SIZE, &s->map, &s->map_len, &s->fd, err);
    if (rc) return rc;
    s->fd_open = 1;
    if (!(s->path = strdup(path))) {
        store_close(s);
        return cf_fail(err, CF_EINTERNAL, "out of memory");
    }
    const store_header *h = s->map;
    rc = CF_EINPUT;
    if (memcmp(h->magic, STORE_MAGIC, 8) != 0) {
        cf_fail(err, CF_EINPUT, "%s: not a clinfm event store (bad magic number)", path);
        goto fail;
    }
    if (h->endian != STORE_ENDIAN_MARK) {
        cf_fail(err, CF_EINPUT, "%s: store was written on a machine of other byte order", path);
        goto fail;
    }
    if (h->version < 1 || h->version > STORE_FORMAT_VERSION) {
        cf_fail(err, CF_EINPUT, "%s: store format version %u, this clinfm reads versions 1 to %u; re-run "
                "`clinfm ingest` with this version", path, h->version, STORE_FORMAT_VERSION);
        goto fail;
    }
    uint8_t hash[STORE_HASH_BYTES];
    crypto_generichash(hash, sizeof hash, (const unsigned char *)h, offsetof(store_header, header_hash), NULL, 0);
    if (sodium_memcmp(hash, h->header_hash, sizeof hash) != 0 || h->header_size != STORE_HEADER_SIZE ||
        h->n_sections > STORE_MAX_SECTIONS) {
        cf_fail(err, CF_EINPUT, "%s: store header checksum mismatch; the file is damaged", path);
        goto fail;
    }
    s->version = h->version;
    s->flags = h->flags;
    s->n_events = h->n_events;
    s->n_subjects = h->n_subjects;
    s->n_codes = h->n_codes;
    s->n_texts = h->n_texts;
    s->n_sources = h->n_sources;
    s->first_time = h->first_time;
    s->last_time = h->last_time;
    uint64_t N = s->n_events, S = s->n_subjects, C = s->n_codes, T = s->n_texts, K = s->n_sources;
    /* Version 1 stores 28 bytes per event; versions 2 and 3 at least one block entry per 65,536. */
    uint64_t max_events = h->version == 1 ? s->map_len : s->map_len / sizeof(store_block) * STORE_BLOCK_EVENTS;
    if (N > max_events || S > N || C > s->map_len || T > s->map_len || K > STORE_MAX_SOURCES + 1) {
        cf_fail(err, CF_EINPUT, "%s: store counts are inconsistent with its size", path);
        goto fail;
    }
    uint64_t code_heap_len, desc_heap_len, text_heap_len, src_heap_len, key_heap_len, meta_len;
    const void *p;
#define BIND(kind, expect, opt, field, sizep)                                      \
    do {                                                                           \
        if ((rc = bind(s, h, kind, expect, opt, &p, sizep, path, err))) goto fail; \
        s->field = p;                                                              \
    } while (0)
    const store_block *blocks = NULL;
    const char *block_data = NULL;
    uint64_t n_blocks = 0, data_len = 0;
    if (s->version == 1) {
        BIND(SEC_EVENT_TIME, N * 8, 0, time, NULL);
        BIND(SEC_EVENT_CODE, N * 4, 0, code, NULL);
        BIND(SEC_EVENT_NUMERIC, N * 4, 0, numeric, NULL);
        BIND(SEC_EVENT_TEXT, N * 4, 0, text, NULL);
        BIND(SEC_EVENT_PROV, N * 8, 0, prov, NULL);
    } else {
        n_blocks = (N + STORE_BLOCK_EVENTS - 1) / STORE_BLOCK_EVENTS;
        if ((rc = bind(s, h, SEC_EVENT_BLOCKS, n_blocks * sizeof(store_block), 0, &p, NULL, path, err))) goto fail;
        blocks = p;
        if ((rc = bind(s, h, SEC_EVENT_DATA, UINT64_MAX, 0, &p, &data_len, path, err))) goto fail;
        block_data = p;
        BIND(SEC_SUMMARY, (3 + K) * 8, 0, source_events, NULL);
        s->source_events += 3;
        s->n_static_events = s->source_events[-3];
        s->n_numeric_events = s->source_events[-2];
        s->n_text_events = s->source_events[-1];
        s->has_summary = 1;
    }
    BIND(SEC_SUBJECT_ID, S * 8, 0, subject_id, NULL);
    BIND(SEC_SUBJECT_START, (S + 1) * 8, 0, subject_start, NULL);
    BIND(SEC_CODE_OFFSET, (C + 1) * 8, 0, code_offset, NULL);
    BIND(SEC_CODE_HEAP, UINT64_MAX, 0, code_heap, &code_heap_len);
    BIND(SEC_CODE_COUNT, C * 8, 0, code_count, NULL);
    BIND(SEC_CODE_DESC_OFFSET, (C + 1) * 8, 0, code_desc_offset, NULL);
    BIND(SEC_CODE_DESC_HEAP, UINT64_MAX, 0, code_desc_heap, &desc_heap_len);
    BIND(SEC_TEXT_OFFSET, (T + 1) * 8, 0, text_offset, NULL);
    BIND(SEC_TEXT_HEAP, UINT64_MAX, 0, text_heap, &text_heap_len);
    BIND(SEC_SOURCE_OFFSET, (K + 1) * 8, 0, source_offset, NULL);
    BIND(SEC_SOURCE_HEAP, UINT64_MAX, 0, source_heap, &src_heap_len);
    BIND(SEC_SUBJECT_KEY_OFFSET, (S + 1) * 8, 1, subject_key_offset, NULL);
    BIND(SEC_SUBJECT_KEY_HEAP, UINT64_MAX, 1, subject_key_heap, &key_heap_len);
    BIND(SEC_META, UINT64_MAX, 0, meta, &meta_len);
#undef BIND
    s->meta_len = (size_t)meta_len;
    rc = CF_EINPUT;
    if (check_offsets(s->code_offset, C, s->code_heap, code_heap_len, 1, "code", path, err) ||
        check_offsets(s->code_desc_offset, C, s->code_desc_heap, desc_heap_len, 1, "code description", path, err) ||
        check_offsets(s->source_offset, K, s->source_heap, src_heap_len, 1, "source", path, err) ||
        check_offsets(s->text_offset, T, s->text_heap, text_heap_len, 0, "text", path, err))
        goto fail;
    if ((s->subject_key_offset == NULL) != (s->subject_key_heap == NULL) ||
        (s->subject_key_offset &&
         check_offsets(s->subject_key_offset, S, s->subject_key_heap, key_heap_len, 1, "subject key", path, err))) {
        if (!err || !err->msg[0]) cf_fail(err, CF_EINPUT, "%s: subject key table is incomplete", path);
        goto fail;
    }
    if (check_offsets(s->subject_start, S, NULL, N, 0, "subject index", path, err)) goto fail;
    if (S && s->subject_start[S] != N) {
        cf_fail(err, CF_EINPUT, "%s: subject index does not cover every event; the store is damaged", path);
        goto fail;
    }
    for (uint64_t i = 1; i < S; i++)
        if (s->subject_id[i] <= s->subject_id[i - 1]) {
            cf_fail(err, CF_EINPUT, "%s: subject ids are not ascending; the store is damaged", path);
            goto fail;
        }
    if (s->version != 1) {
        uint64_t k = 0;
        for (uint64_t b = 0; b < n_blocks; b++) {
            uint64_t want = b + 1 < n_blocks ? STORE_BLOCK_EVENTS : N - k;
            if (blocks[b].n_events != want || blocks[b].offset > data_len || blocks[b].size > data_len - blocks[b].offset) {
                cf_fail(err, CF_EINPUT, "%s: event block %llu is out of place; the store is damaged", path,
                        (unsigned long long)b);
                goto fail;
            }
            k += want;
        }
        s->blocks = blocks;
        s->block_data = block_data;
        s->n_blocks = n_blocks;
        /* The blocks are read all at once (store_open, on every core: out of order) or front to
         * back (a cursor's pass): said to the kernel, a cold file streams in large reads ahead of
         * the decoders instead of a page fault at a time. Advice only. */
        long page = sysconf(_SC_PAGESIZE);
        if (page > 0 && data_len) {
            uintptr_t at = (uintptr_t)block_data & ~(uintptr_t)(page - 1);
            madvise((void *)at, (size_t)((uintptr_t)block_data + data_len - at), summary_only ? MADV_SEQUENTIAL : MADV_WILLNEED);
        }
        if (!summary_only && (rc = decode_events(s, blocks, n_blocks, block_data, path, err))) goto fail;
    } else if (summary_only && (rc = count_v1(s, err))) {
        goto fail;
    }
    return CF_OK;
fail:
    store_close(s);
    return rc ? rc : CF_EINPUT;
}

int store_open(store *s, const char *path, cf_err *err) { return open_store(s, path, 0, err); }

int store_open_summary(store *s, const char *path, cf_err *err) { return open_store(s, path, 1, err); }

void store_close(store *s) {
    if (s->map) munmap(s->map, s->map_len);
    if (s->fd_open) close(s->fd);
    if (s->decoded) munmap(s->decoded, s->decoded_len);
    free(s->summary_buf);
    free(s->path);
    store_cache_release(s->cache);
    memset(s, 0, sizeof *s);
}

/* Version 1 keeps no counts: one pass over the mapped columns makes them, so every reader sees
 * the same fields whatever the version. */
static int count_v1(store *s, cf_err *err) {
    s->summary_buf = calloc(3 + s->n_sources, sizeof *s->summary_buf);
    if (!s->summary_buf) return cf_fail(err, CF_EINTERNAL, "out of memory");
    uint64_t *per_source = s->summary_buf + 3;
    for (uint64_t i = 0; i < s->n_events; i++) {
        s->n_static_events += s->time[i] == TIME_NULL;
        s->n_numeric_events += !isnan(s->numeric[i]);
        s->n_text_events += s->text[i] != 0;
        uint32_t k = store_prov_source(s->prov[i]);
        if (k < s->n_sources) per_source[k]++;
    }
    s->source_events = per_source;
    s->has_summary = 1;
    return CF_OK;
}

int store_verify(const store *s, cf_err *err) {
    const store_header *h = s->map;
    for (uint32_t i = 0; i < h->n_sections && i < STORE_MAX_SECTIONS; i++) {
        const store_section *sec = &h->sections[i];
        uint8_t hash[STORE_HASH_BYTES];
        crypto_generichash(hash, sizeof hash, (const unsigned char *)s->map + sec->offset, sec->size, NULL, 0);
        if (sodium_memcmp(hash, sec->hash, sizeof hash) != 0)
            return cf_fail(err, CF_EINPUT, "section %s fails its checksum; the store is damaged",
                           store_section_name(sec->kind));
    }
    /* The events subject by subject through a cursor (a store opened either way). */
    store_cursor *c = NULL;
    int rc = store_cursor_new(&c, s, STORE_CURSOR_READAHEAD, err);
    if (rc) return rc;
    for (uint64_t j = 0; j < s->n_subjects && !rc; j++) {
        store_events ev;
        if ((rc = store_cursor_subject(c, j, &ev, err))) break;
        for (uint64_t i = 0; i < ev.n; i++) {
            unsigned long long at = (unsigned long long)(ev.first + i);
            if (ev.code[i] >= s->n_codes) {
                rc = cf_fail(err, CF_EINPUT, "event %llu has a code id out of range", at);
                break;
            }
            if (ev.text[i] > s->n_texts) {
                rc = cf_fail(err, CF_EINPUT, "event %llu has a text id out of range", at);
                break;
            }
            if (store_prov_source(ev.prov[i]) >= s->n_sources) {
                rc = cf_fail(err, CF_EINPUT, "event %llu has a source id out of range", at);
                break;
            }
            if (i && ev.time[i] < ev.time[i - 1]) {
                rc = cf_fail(err, CF_EINPUT, "events of subject index %llu are not in time order",
                             (unsigned long long)j);
                break;
            }
        }
    }
    store_cursor_free(c);
    return rc;
}

int64_t store_find_subject(const store *s, int64_t subject_id) {
    uint64_t lo = 0, hi = s->n_subjects;
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        if (s->subject_id[mid] < subject_id) lo = mid + 1;
        else hi = mid;
    }
    return lo < s->n_subjects && s->subject_id[lo] == subject_id ? (int64_t)lo : -1;
}

int64_t store_find_code(const store *s, const char *code) {
    uint64_t lo = 0, hi = s->n_codes;
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        if (strcmp(store_code_str(s, (uint32_t)mid), code) < 0) lo = mid + 1;
        else hi = mid;
    }
    return lo < s->n_codes && strcmp(store_code_str(s, (uint32_t)lo), code) == 0 ? (int64_t)lo : -1;
}

const char *store_subject_key(const store *s, uint64_t i, size_t *len) {
    if (!s->subject_key_offset || i >= s->n_subjects) return NULL;
    const char *k = s->subject_key_heap + s->subject_key_offset[i];
    size_t n = (size_t)(s->subject_key_offset[i + 1] - s->subject_key_offset[i]) - 1;
    if (n == 0) return NULL;
    if (len) *len = n;
    return k;
}
