/* Store cursor: the events of a range or a subject, a version 2 or 3 block decoded at a time into
 * reused buffers (see store.h for the contract).
 *
 * Why reused buffers and not the whole store decoded at open: memory stays at a few blocks however
 * large the store, and the buffers stay in cache and mapped, where decoding a whole store into
 * fresh memory spent a third of its time in the kernel clearing new pages. Why a readahead thread:
 * a pass spends most of its time decoding, which threads share block by block while the caller
 * consumes; a block's decoded columns do not depend on who decoded it, so the results are the same
 * with or without.
 *
 * Why each block is read with pread into the cursor's own buffer, not through the mapping (session
 * 9): reading a block through the mapping cost the pass its page-table work (mapping every page
 * of the block, then unmapping it at close: about a tenth of a warm pass) and a first read of
 * every 4 KiB page by the CRC at user-space speed (a quarter of the pass); the kernel's copy out
 * of the page cache runs at about twice that, and the CRC and the decoding then read the copy from
 * L2. It also means that what the CRC checked is exactly what is decoded: a file changed
 * underneath (by another process, through the same inode) cannot hand the decoder bytes that were
 * not checked, which a mapping could between the check and the read. */
#include "store/store.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "store/store_block.h"
#include "store/store_format.h"

#define RING 8        /* blocks decoded ahead (readahead): 1.75 MiB each */
#define WORKERS_MAX 4 /* readahead threads: one per core up to this */

typedef struct {
    char *mem;            /* (STORE_BLOCK_EVENTS * 28) the five columns */
    store_block_cols cols;
    uint64_t block;       /* which block the columns hold, UINT64_MAX for none */
    uint64_t done;        /* events of it decoded so far (the caller's own slot decodes in parts) */
    int state;            /* SLOT_* */
    const char *why;      /* SLOT_FAILED: what is wrong with the block */
} slot;

enum { SLOT_EMPTY, SLOT_BUSY, SLOT_READY, SLOT_FAILED };

/* One encoded block read from the store's file: the caller's thread has one, each readahead thread
 * its own. */
typedef struct {
    char *mem;
    size_t cap;
} raw_buf;

/* Decoded blocks kept for later passes (store_cache_set): filled in the order blocks are decoded
 * until the budget is spent, never evicted (a pass in order over a store larger than the budget
 * would evict every block before its reuse under LRU), freed at store_close. A block is claimed
 * under the lock, copied outside it, then published once (ready[b]) and never changes. */
struct store_cache {
    pthread_mutex_t lock;
    size_t budget, used;         /* bytes of `arena` handed out */
    uint64_t n_blocks;
    char **mem;                  /* (n_blocks) STORE_BLOCK_EVENTS * 28 bytes each, or NULL */
    unsigned char *ready;        /* (n_blocks) mem[b] holds block b (published with release) */
    char *arena;                 /* budget bytes of address space, touched as blocks are kept */
};

int store_cache_set(store *s, size_t budget, cf_err *err) {
    if (s->cache || s->time || !s->n_blocks) return CF_OK;
    struct store_cache *k = calloc(1, sizeof *k);
    if (k) k->mem = calloc((size_t)s->n_blocks, sizeof *k->mem);
    if (k) k->ready = calloc((size_t)s->n_blocks, 1);
    if (!k || !k->mem || !k->ready) {
        if (k) free(k->mem);
        free(k);
        return cf_fail(err, CF_EINTERNAL, "out of memory");
    }
    /* One reservation in huge pages where the kernel allows, carved block by block: a fresh 4 KiB
     * page per 4 KiB kept cost more in page faults than the decoding it saves (this VM). */
    const size_t bytes = (size_t)STORE_BLOCK_EVENTS * 28;
    if (budget / bytes > s->n_blocks) budget = (size_t)s->n_blocks * bytes;
    budget -= budget % bytes;
    if (budget) {
        k->arena = mmap(NULL, budget, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (k->arena == MAP_FAILED) {
            free(k->mem);
            free(k->ready);
            free(k);
            return cf_fail(err, CF_EINTERNAL, "cannot reserve %zu MiB for decoded store blocks", budget >> 20);
        }
        madvise(k->arena, budget, MADV_HUGEPAGE);
    }
    pthread_mutex_init(&k->lock, NULL);
    k->budget = budget;
    k->n_blocks = s->n_blocks;
    s->cache = k;
    return CF_OK;
}

void store_cache_release(struct store_cache *k) {
    if (!k) return;
    if (k->arena) munmap(k->arena, k->budget);
    free(k->mem);
    free(k->ready);
    pthread_mutex_destroy(&k->lock);
    free(k);
}

static const char *cache_get(struct store_cache *k, uint64_t b) {
    return k && __atomic_load_n(&k->ready[b], __ATOMIC_ACQUIRE) ? k->mem[b] : NULL;
}

/* Keeps a copy of block b's columns when the budget allows. */
static void cache_offer(struct store_cache *k, uint64_t b, const store_block_cols *c) {
    const size_t E = STORE_BLOCK_EVENTS, bytes = E * 28;
    if (!k || __atomic_load_n(&k->mem[b], __ATOMIC_RELAXED)) return;
    char *m = NULL;
    pthread_mutex_lock(&k->lock);
    if (!k->mem[b] && k->used + bytes <= k->budget) {
        m = k->arena + k->used;
        k->used += bytes;
        __atomic_store_n(&k->mem[b], m, __ATOMIC_RELAXED); /* claimed; readers wait for ready[b] */
    }
    pthread_mutex_unlock(&k->lock);
    if (!m) return;
    memcpy(m, c->time, E * 8);
    memcpy(m + E * 8, c->prov, E * 8);
    memcpy(m + E * 16, c->code, E * 4);
    memcpy(m + E * 20, c->numeric, E * 4);
    memcpy(m + E * 24, c->text, E * 4);
    __atomic_store_n(&k->ready[b], 1, __ATOMIC_RELEASE);
}

struct store_cursor {
    const store *s;
    const store_block *blocks;
    int direct;                  /* the store's columns are in memory: point into them */
    store_block_ctx *ctx;        /* the caller's thread */
    slot own;                    /* a block decoded by the caller's thread */
    raw_buf own_raw;             /* its encoded bytes */
    size_t max_block;            /* the largest block's encoded bytes */
    /* Assembly of a range that spans blocks. */
    char *asm_mem;
    size_t asm_cap;
    store_block_cols asm_cols;
    store_block_cols kept;       /* a block from the store's cache */
    /* Readahead. */
    int readahead, started, stop; /* started: how many readahead threads run */
    int active;                  /* readahead begun: the caller has moved on to a next block */
    uint64_t last_req;           /* the block asked for last, UINT64_MAX before the first */
    pthread_t th[WORKERS_MAX];
    store_block_ctx *th_ctx[WORKERS_MAX];
    int n_ctx;                   /* contexts handed to threads so far */
    pthread_mutex_t lock;
    pthread_cond_t cv;
    slot ring[RING];
    uint64_t base;               /* lowest block the caller may still hold */
    uint64_t next;               /* next block a thread decodes */
};

/* Points cols at a buffer of n events: time and prov first (8-byte aligned), then the 4-byte ones. */
static void layout(char *mem, uint64_t n, store_block_cols *c) {
    c->time = (int64_t *)mem;
    c->prov = (uint64_t *)(mem + n * 8);
    c->code = (uint32_t *)(mem + n * 16);
    c->numeric = (float *)(mem + n * 20);
    c->text = (uint32_t *)(mem + n * 24);
}

/* A buffer of a block's size (decoded columns, or encoded bytes) in 2 MiB huge pages where the
 * kernel allows: a cursor is made per pass, and its buffers' first touch in 4 KiB pages (a page
 * fault each, and the VM's fault entry) was 3% of a warm pass (perf, session 9). Freed with free. */
static void *big_alloc(size_t bytes) {
    const size_t huge = (size_t)2 << 20;
    bytes = (bytes + huge - 1) / huge * huge;
    void *p = aligned_alloc(huge, bytes);
    if (p) madvise(p, bytes, MADV_HUGEPAGE);
    return p;
}

static int slot_init(slot *sl) {
    sl->mem = big_alloc((size_t)STORE_BLOCK_EVENTS * 28);
    if (!sl->mem) return -1;
    layout(sl->mem, STORE_BLOCK_EVENTS, &sl->cols);
    sl->block = UINT64_MAX;
    sl->state = SLOT_EMPTY;
    return 0;
}

/* Maps block b's pages in one call before it is read: a block is read whole (its CRC), and a page
 * fault per 16 pages (the kernel's fault-around) cost this VM a tenth of a warm pass, half of it
 * in the faults' entry and exit. Advice only (Linux 5.14 and later; elsewhere the faults do it). */
static void map_block(const store *s, const store_block *blk, uint64_t b) {
#ifdef MADV_POPULATE_READ
    long page = sysconf(_SC_PAGESIZE);
    if (page <= 0 || !blk[b].size) return;
    uintptr_t p = (uintptr_t)s->block_data + blk[b].offset, at = p & ~(uintptr_t)(page - 1);
    madvise((void *)at, (size_t)(p + blk[b].size - at), MADV_POPULATE_READ);
#else
    (void)s, (void)blk, (void)b;
#endif
}

/* Block b's encoded bytes: read from the store's file into raw (grown as needed) when the store
 * keeps it open, else where the mapping holds them. NULL with why when the read fails. */
static const char *block_bytes(const store *s, const store_block *blk, uint64_t b, raw_buf *raw, const char **why) {
    if (!s->fd_open) {
        map_block(s, blk, b);
        return s->block_data + blk[b].offset;
    }
    return store_read_block(s, b, &raw->mem, &raw->cap, why);
}

static void slot_decode(const store *s, const store_block *blk, store_block_ctx *x, raw_buf *raw, uint64_t b, slot *sl) {
    const char *why = "";
    const char *src = block_bytes(s, blk, b, raw, &why);
    int bad = !src || store_block_decode(x, src, (size_t)blk[b].size, (size_t)blk[b].n_events, s->n_codes, s->n_texts,
                                         &sl->cols, &why);
    sl->block = b;
    sl->state = bad ? SLOT_FAILED : SLOT_READY;
    sl->why = why;
    sl->done = blk[b].n_events;
}

static void *readahead_main(void *arg) {
    store_cursor *c = arg;
    pthread_mutex_lock(&c->lock);
    store_block_ctx *x = c->th_ctx[c->n_ctx++];
    raw_buf raw = {c->s->fd_open ? big_alloc(c->max_block) : NULL, 0}; /* NULL: store_read_block allocates */
    if (raw.mem) raw.cap = c->max_block;
    for (;;) {
        /* A slot still being decoded (a block the caller skipped) is not claimed again until done. */
        while (!c->stop && (!c->active || c->next >= c->s->n_blocks || c->next >= c->base + RING ||
                            c->ring[c->next % RING].state == SLOT_BUSY))
            pthread_cond_wait(&c->cv, &c->lock);
        if (c->stop) break;
        uint64_t b = c->next++;
        slot *sl = &c->ring[b % RING];
        /* Already there (the caller stepped back to blocks still in the ring): decoding it again
         * would rewrite, through intermediate values, columns the caller may be reading. */
        if (sl->block == b && (sl->state == SLOT_READY || sl->state == SLOT_FAILED)) continue;
        sl->block = b;
        sl->state = SLOT_BUSY;
        pthread_mutex_unlock(&c->lock);
        slot tmp = *sl; /* decoded outside the lock; the caller waits for SLOT_READY */
        slot_decode(c->s, c->blocks, x, &raw, b, &tmp);
        if (tmp.state == SLOT_READY) cache_offer(c->s->cache, b, &tmp.cols);
        pthread_mutex_lock(&c->lock);
        sl->state = tmp.state;
        sl->why = tmp.why;
        pthread_cond_broadcast(&c->cv);
    }
    pthread_mutex_unlock(&c->lock);
    free(raw.mem);
    return NULL;
}

int store_cursor_new(store_cursor **out, const store *s, unsigned flags, cf_err *err) {
    *out = NULL;
    store_cursor *c = calloc(1, sizeof *c);
    if (!c) return cf_fail(err, CF_EINTERNAL, "out of memory");
    c->s = s;
    c->blocks = s->blocks;
    c->direct = s->time != NULL || s->n_events == 0;
    c->own.block = UINT64_MAX;
    c->last_req = UINT64_MAX;
    pthread_mutex_init(&c->lock, NULL);
    pthread_cond_init(&c->cv, NULL);
    *out = c;
    if (c->direct) return CF_OK;
    if (!s->blocks || !s->block_data) {
        store_cursor_free(c);
        *out = NULL;
        return cf_fail(err, CF_EINTERNAL, "store cursor: the store has neither columns nor blocks");
    }
    c->ctx = store_block_ctx_new((uint32_t)s->n_sources, 0, s->version);
    for (uint64_t b = 0; b < s->n_blocks; b++)
        c->max_block = c->blocks[b].size > c->max_block ? (size_t)c->blocks[b].size : c->max_block;
    if (s->fd_open) {
        c->own_raw.mem = big_alloc(c->max_block);
        c->own_raw.cap = c->max_block;
    }
    if (!c->ctx || slot_init(&c->own) || (s->fd_open && !c->own_raw.mem)) goto oom;
    if ((flags & STORE_CURSOR_READAHEAD) && s->n_blocks > 1) {
        long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
        int nt = ncpu < 1 ? 1 : ncpu > WORKERS_MAX ? WORKERS_MAX : (int)ncpu;
        for (int i = 0; i < nt; i++)
            if (!(c->th_ctx[i] = store_block_ctx_new((uint32_t)s->n_sources, 0, s->version))) goto oom;
        for (int i = 0; i < RING; i++)
            if (slot_init(&c->ring[i])) goto oom;
        /* Without a thread the cursor still works: every block is decoded by the caller. */
        for (int i = 0; i < nt; i++) {
            if (pthread_create(&c->th[c->started], NULL, readahead_main, c) != 0) break;
            c->started++;
        }
        c->readahead = c->started > 0;
    }
    return CF_OK;
oom:
    store_cursor_free(c);
    *out = NULL;
    return cf_fail(err, CF_EINTERNAL, "out of memory for a store cursor");
}

void store_cursor_free(store_cursor *c) {
    if (!c) return;
    if (c->started) {
        pthread_mutex_lock(&c->lock);
        c->stop = 1;
        pthread_cond_broadcast(&c->cv);
        pthread_mutex_unlock(&c->lock);
        for (int i = 0; i < c->started; i++) pthread_join(c->th[i], NULL);
    }
    pthread_mutex_destroy(&c->lock);
    pthread_cond_destroy(&c->cv);
    store_block_ctx_free(c->ctx);
    for (int i = 0; i < WORKERS_MAX; i++) store_block_ctx_free(c->th_ctx[i]);
    free(c->own.mem);
    free(c->own_raw.mem);
    for (int i = 0; i < RING; i++) free(c->ring[i].mem);
    free(c->asm_mem);
    free(c);
}

static int block_error(const store_cursor *c, uint64_t b, const char *why, cf_err *err) {
    return cf_fail(err, CF_EINPUT, "%s: event block %llu %s; the store is damaged",
                   c->s->path ? c->s->path : "store", (unsigned long long)b, why);
}

/* Block b's events up to at least upto decoded into the caller's own slot (it holds b already, or
 * b is begun); CF_OK, or an error with the slot emptied. Why in steps: see store_block_more; a
 * step is at least OWN_STEP events, so that a store of short subjects does not pay a part's fixed
 * costs per subject. */
#define OWN_STEP 1024u
static int own_decode(store_cursor *c, uint64_t b, uint64_t upto, cf_err *err) {
    slot *sl = &c->own;
    const char *why = "";
    size_t done = 0;
    const uint64_t n = c->blocks[b].n_events;
    int bad = 0;
    if (sl->block != b || sl->state != SLOT_READY) {
        sl->block = UINT64_MAX;
        sl->state = SLOT_EMPTY;
        const char *src = block_bytes(c->s, c->blocks, b, &c->own_raw, &why);
        bad = !src || store_block_begin(c->ctx, src, (size_t)c->blocks[b].size, (size_t)n, c->s->n_codes, c->s->n_texts,
                                        &sl->cols, &done, &why);
        if (!bad) {
            sl->block = b;
            sl->state = SLOT_READY;
            sl->done = done;
        }
    }
    if (!bad && sl->done < upto) {
        uint64_t want = upto < sl->done + OWN_STEP ? sl->done + OWN_STEP : upto;
        bad = store_block_more(c->ctx, (size_t)(want < n ? want : n), &sl->cols, &done, &why);
        if (!bad) {
            sl->done = done;
            if (done == n) cache_offer(c->s->cache, b, &sl->cols);
        }
    }
    if (bad) {
        sl->block = UINT64_MAX;
        sl->state = SLOT_EMPTY;
        return block_error(c, b, why, err);
    }
    return CF_OK;
}

/* The decoded columns of block b, at least its events below upto, or NULL with err set. */
static const store_block_cols *get_block(store_cursor *c, uint64_t b, uint64_t upto, cf_err *err) {
    if (c->own.block == b && c->own.state == SLOT_READY)
        return c->own.done >= upto || own_decode(c, b, upto, err) == CF_OK ? &c->own.cols : NULL;
    const char *kept = cache_get(c->s->cache, b);
    if (kept) {
        layout((char *)kept, STORE_BLOCK_EVENTS, &c->kept);
        return &c->kept;
    }
    /* Readahead begins when the caller steps from a block to the next, so a cursor that reads a
     * subject or two decodes nothing it does not need. */
    if (c->readahead && !c->active && c->last_req != UINT64_MAX && b == c->last_req + 1) {
        pthread_mutex_lock(&c->lock);
        c->active = 1;
        c->base = c->next = b;
        pthread_cond_broadcast(&c->cv);
        pthread_mutex_unlock(&c->lock);
    }
    c->last_req = b;
    if (c->active) {
        pthread_mutex_lock(&c->lock);
        /* A jump ahead skips the blocks in between; a step back (a second pass) starts again there. */
        if (b < c->base || c->next < b) c->next = b;
        c->base = b;
        pthread_cond_broadcast(&c->cv);
        slot *sl = &c->ring[b % RING];
        while (!(sl->block == b && (sl->state == SLOT_READY || sl->state == SLOT_FAILED))) {
            if (c->next > b && sl->block != b) { /* overtaken (cannot happen in order): decode here */
                pthread_mutex_unlock(&c->lock);
                goto own;
            }
            pthread_cond_wait(&c->cv, &c->lock);
        }
        int state = sl->state;
        const char *why = sl->why;
        pthread_mutex_unlock(&c->lock);
        if (state == SLOT_FAILED) {
            block_error(c, b, why, err);
            return NULL;
        }
        return &sl->cols;
    }
own:
    return own_decode(c, b, upto, err) == CF_OK ? &c->own.cols : NULL;
}

/* Points ev at the columns of c from event at on. */
static void point_at(store_events *ev, const store_block_cols *c, uint64_t at) {
    ev->time = c->time + at;
    ev->code = c->code + at;
    ev->numeric = c->numeric + at;
    ev->text = c->text + at;
    ev->prov = c->prov + at;
}

int store_cursor_range(store_cursor *c, uint64_t begin, uint64_t end, store_events *ev, cf_err *err) {
    const store *s = c->s;
    memset(ev, 0, sizeof *ev);
    if (begin > end || end > s->n_events)
        return cf_fail(err, CF_EINTERNAL, "store cursor: events [%llu, %llu) outside the store's %llu",
                       (unsigned long long)begin, (unsigned long long)end, (unsigned long long)s->n_events);
    ev->first = begin;
    ev->n = end - begin;
    if (c->direct) {
        if (!s->time) return CF_OK; /* an empty store */
        ev->time = s->time + begin;
        ev->code = s->code + begin;
        ev->numeric = s->numeric + begin;
        ev->text = s->text + begin;
        ev->prov = s->prov + begin;
        return CF_OK;
    }
    if (begin == end) return CF_OK;
    uint64_t b0 = begin / STORE_BLOCK_EVENTS, b1 = (end - 1) / STORE_BLOCK_EVENTS;
    if (b0 == b1) {
        const store_block_cols *bc = get_block(c, b0, end - b0 * STORE_BLOCK_EVENTS, err);
        if (!bc) return CF_EINPUT;
        point_at(ev, bc, begin - b0 * STORE_BLOCK_EVENTS);
        return CF_OK;
    }
    uint64_t n = end - begin;
    char *mem = cf_grow(c->asm_mem, &c->asm_cap, (size_t)n, 28, STORE_BLOCK_EVENTS);
    if (!mem) return cf_fail(err, CF_EINTERNAL, "out of memory for %llu events of one range", (unsigned long long)n);
    c->asm_mem = mem;
    store_block_cols *a = &c->asm_cols;
    layout(c->asm_mem, c->asm_cap, a);
    uint64_t done = 0;
    for (uint64_t b = b0; b <= b1; b++) {
        uint64_t lo = b == b0 ? begin - b * STORE_BLOCK_EVENTS : 0;
        uint64_t hi = b == b1 ? end - b * STORE_BLOCK_EVENTS : STORE_BLOCK_EVENTS;
        const store_block_cols *bc = get_block(c, b, hi, err);
        if (!bc) return CF_EINPUT;
        size_t m = (size_t)(hi - lo);
        memcpy(a->time + done, bc->time + lo, m * 8);
        memcpy(a->prov + done, bc->prov + lo, m * 8);
        memcpy(a->code + done, bc->code + lo, m * 4);
        memcpy(a->numeric + done, bc->numeric + lo, m * 4);
        memcpy(a->text + done, bc->text + lo, m * 4);
        done += m;
    }
    point_at(ev, a, 0);
    return CF_OK;
}

int store_cursor_subject(store_cursor *c, uint64_t k, store_events *ev, cf_err *err) {
    if (k >= c->s->n_subjects) {
        memset(ev, 0, sizeof *ev);
        return cf_fail(err, CF_EINTERNAL, "store cursor: subject index %llu out of range", (unsigned long long)k);
    }
    return store_cursor_range(c, c->s->subject_start[k], c->s->subject_start[k + 1], ev, err);
}
