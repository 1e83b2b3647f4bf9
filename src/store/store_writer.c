/* Event store writer: buffers events, spills sorted runs when the memory budget is reached, and
 * merges them into the columnar file described in store.h.
 *
 * Memory stays bounded for any number of events: the event buffer is capped by the budget, runs
 * live in anonymous scratch files, and the merge reads each run through a small buffer. What
 * grows with the data is the code dictionary, the text offsets (8 bytes per distinct text), and
 * the subject index (16 bytes per subject), all small next to the events themselves.
 *
 * Events sort by (subject, time, provenance). Provenance (source id, row) is unique per input
 * record and the sources are registered in a fixed order, so the output is byte-identical for
 * identical input, whatever the memory budget. */
#include "store/store.h"

#include <assert.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>
#include <zstd.h>

#include "store/store_block.h"
#include "store/store_format.h"
#include "util/atomic_file.h"
#include "util/file.h"
#include "util/sbuf.h"
#include "util/strmap.h"
#include "util/thread.h"

#define DEFAULT_BUDGET ((size_t)256 << 20)
#define SHORT_TEXT_MAX 64          /* texts up to this length are deduplicated */
#define SHORT_TEXT_LIMIT 4000000u  /* stop deduplicating after this many distinct short texts */
#define COLUMN_BUF (1u << 20)
/* zstd level for version 2 event blocks (written only on request: tests that older stores read):
 * measured on the MIMIC-IV demo, levels above 3 cost writing time for little size. */
#define STORE_ZSTD_LEVEL 3

typedef struct {
    int64_t subject;
    int64_t time;
    uint64_t prov;
    uint32_t code;
    uint32_t text;
    float numeric;
    uint32_t seq;  /* insertion order (mod 2^32): orders the events of one source row */
} wevent;

/* Spill runs are written compressed, in chunks of RUN_CHUNK events: each chunk is a header
 * {uint32 events, uint32 bytes} and one zstd frame of the events as byte planes of deltas (the
 * run is sorted, so subjects, times and provenance mostly step by little). The merge reads a
 * run chunk by chunk and punches each chunk out of the scratch file once decoded, so the scratch
 * disk shrinks as the output grows: the two together stay near the output's final size.
 *
 * The insertion order (seq) is not stored: it only orders events of one source row (equal keys),
 * which were added back to back, so within a run their sorted positions keep that order, and a row
 * split by a spill has its first events in the earlier run. Read back, an event's seq becomes its
 * run's first event number (runs counted in writing order) plus its position in the run, which
 * orders such events the same way. Insertion numbers are random within a sorted run and cost
 * more than any other field once compressed. */
#define RUN_CHUNK 16384u
#define RUN_BYTES_PER_EVENT 42u  /* run_width below */
#define RUN_ZSTD_LEVEL 1

typedef struct {
    ZSTD_CCtx *cctx;
    ZSTD_DCtx *dctx;
    uint8_t *raw;       /* (RUN_CHUNK * RUN_BYTES_PER_EVENT) */
    uint8_t *packed;    /* (packed_cap) */
    size_t packed_cap;
    uint64_t *tmp;      /* (RUN_CHUNK) */
    uint64_t *last_row; /* (STORE_MAX_SOURCES + 1) last row per source, zero between chunks */
} run_codec;

typedef struct {
    int64_t subject;
    uint32_t key;  /* id in subject_keys */
    uint32_t pad;
} subject_key_ref;

/* A full buffer being sorted, encoded and written as a run on the spill thread. */
typedef struct {
    store_writer *w;
    wevent *ev;
    size_t n;
    int fd;
    uint64_t bytes;
    int rc;
    cf_err err;
} spill_job;

struct store_writer {
    char path[4096];
    char scratch_dir[4096];
    uint32_t flags;
    uint32_t version;        /* format written: STORE_FORMAT_VERSION, or 2 (tests of old stores) */
    wevent *buf;
    size_t n, buf_alloc, cap; /* events held, allocated, and allowed by the budget */
    /* A full buffer is spilled on a thread of its own while adding goes on into the other
     * buffer (spare), so sorting and compressing runs overlaps the caller's work; each buffer
     * is half the budget. One spill at a time, so runs are recorded in the order they began. */
    wevent *spare;
    size_t spare_alloc;
    int spilling;
    pthread_t spill_th;
    spill_job job;
    int *run_fd;
    uint64_t *run_events;
    size_t n_runs, cap_runs;
    uint64_t run_bytes;     /* compressed bytes of every run written */
    run_codec *codec;       /* made at the first spill */
    strmap codes;
    uint64_t *code_desc_off; /* (codes.count) offset+1 into desc, 0 = none */
    size_t code_desc_cap;
    sbuf desc;
    strmap sources;
    int text_fd;
    sbuf text_pending;   /* buffered text heap bytes not yet written */
    uint64_t text_bytes;    /* heap bytes so far, written or pending */
    uint64_t *text_end;     /* (n_texts) end offset of text id i+1 */
    size_t n_texts, cap_texts;
    strmap short_texts;
    uint32_t *short_text_id;/* (short_texts.count) text id */
    size_t short_text_cap;
    strmap subject_keys;
    subject_key_ref *keys;
    size_t n_keys, cap_keys;
    char *meta;
    uint64_t total;
};

int store_writer_open(store_writer **out, const char *path, const store_writer_options *opt,
                      cf_err *err) {
    *out = NULL;
    if (sodium_init() < 0) return cf_fail(err, CF_EINTERNAL, "libsodium failed to initialise");
    store_writer *w = calloc(1, sizeof *w);
    if (!w) return cf_fail(err, CF_EINTERNAL, "out of memory");
    w->text_fd = -1;
    snprintf(w->path, sizeof w->path, "%s", path);
    if (opt && opt->scratch_dir) {
        snprintf(w->scratch_dir, sizeof w->scratch_dir, "%s", opt->scratch_dir);
    } else {
        const char *slash = strrchr(path, '/');
        if (!slash) snprintf(w->scratch_dir, sizeof w->scratch_dir, ".");
        else snprintf(w->scratch_dir, sizeof w->scratch_dir, "%.*s", (int)(slash - path) ? (int)(slash - path) : 1, path);
    }
    size_t budget = opt && opt->memory_budget ? opt->memory_budget : DEFAULT_BUDGET;
    w->cap = budget / 2 / sizeof(wevent); /* two buffers: one filling, one spilling */
    if (w->cap < 1024) w->cap = 1024;
    w->flags = opt ? opt->flags : 0;
    w->version = opt && opt->version ? opt->version : STORE_FORMAT_VERSION;
    if (w->version < 2 || w->version > STORE_FORMAT_VERSION) {
        uint32_t v = w->version;
        free(w);
        return cf_fail(err, CF_EINTERNAL, "store writer: cannot write format version %u", v);
    }
    strmap_init(&w->codes);
    strmap_init(&w->sources);
    strmap_init(&w->short_texts);
    strmap_init(&w->subject_keys);
    /* The buffer grows up to the budget as events arrive, so small inputs stay small. */
    int rc = scratch_file_open(w->scratch_dir, err, &w->text_fd);
    if (rc) {
        store_writer_abort(w);
        return rc;
    }
    *out = w;
    return CF_OK;
}

int store_writer_source(store_writer *w, const char *name) {
    int64_t id = strmap_intern(&w->sources, name, strlen(name));
    if (id < 0 || id >= STORE_MAX_SOURCES) return -1;
    return (int)id;
}

int64_t store_writer_code(store_writer *w, const char *code, size_t len) {
    return strmap_intern(&w->codes, code, len);
}

int store_writer_code_describe(store_writer *w, uint32_t code_id, const char *desc, size_t len) {
    if (code_id >= w->codes.count || len == 0) return CF_OK;
    if (w->code_desc_cap < w->codes.count) {
        size_t nc = w->code_desc_cap ? w->code_desc_cap : 256;
        while (nc < w->codes.count) nc *= 2;
        uint64_t *p = realloc(w->code_desc_off, nc * sizeof *p);
        if (!p) return CF_EINTERNAL;
        memset(p + w->code_desc_cap, 0, (nc - w->code_desc_cap) * sizeof *p);
        w->code_desc_off = p;
        w->code_desc_cap = nc;
    }
    if (w->code_desc_off[code_id]) return CF_OK;
    w->code_desc_off[code_id] = w->desc.len + 1;
    if (sbuf_put(&w->desc, desc, len) || sbuf_put(&w->desc, "", 1)) return CF_EINTERNAL;
    return CF_OK;
}

static int flush_text(store_writer *w, cf_err *err) {
    if (!w->text_pending.len) return CF_OK;
    int rc = write_all(w->text_fd, w->text_pending.p, w->text_pending.len, "store text scratch", err);
    w->text_pending.len = 0;
    return rc;
}

/* Returns the text id (1-based) for a new or deduplicated text, 0 on failure. */
static uint32_t add_text(store_writer *w, const char *text, size_t len, cf_err *err) {
    int dedup = len <= SHORT_TEXT_MAX && w->short_texts.count < SHORT_TEXT_LIMIT;
    if (dedup) {
        int64_t sid = strmap_find(&w->short_texts, text, len);
        if (sid >= 0) return w->short_text_id[sid];
    }
    if (w->n_texts >= UINT32_MAX - 1) {
        cf_fail(err, CF_EINPUT, "more than 4 billion distinct texts in one store");
        return 0;
    }
    if (w->n_texts == w->cap_texts) {
        size_t nc = w->cap_texts ? w->cap_texts * 2 : 1024;
        uint64_t *p = realloc(w->text_end, nc * sizeof *p);
        if (!p) goto oom;
        w->text_end = p;
        w->cap_texts = nc;
    }
    if (sbuf_put(&w->text_pending, text, len)) goto oom;
    w->text_bytes += len;
    w->text_end[w->n_texts++] = w->text_bytes;
    if (w->text_pending.len >= COLUMN_BUF && flush_text(w, err)) return 0;
    uint32_t id = (uint32_t)w->n_texts;
    if (dedup) {
        int64_t sid = strmap_intern(&w->short_texts, text, len);
        if (sid < 0) goto oom;
        if ((size_t)sid >= w->short_text_cap) {
            size_t nc = w->short_text_cap ? w->short_text_cap * 2 : 1024;
            uint32_t *p = realloc(w->short_text_id, nc * sizeof *p);
            if (!p) goto oom;
            w->short_text_id = p;
            w->short_text_cap = nc;
        }
        w->short_text_id[sid] = id;
    }
    return id;
oom:
    cf_fail(err, CF_EINTERNAL, "out of memory while storing text");
    return 0;
}

/* The one event order, used by the run sort and by the merge: subject, time, provenance, then
 * insertion order. Equal keys come from one source row, added back to back by one thread, so
 * their seq values are a few apart and the wrap-around difference orders them. */
static inline int ev_less(const wevent *a, const wevent *b) {
    if (a->subject != b->subject) return a->subject < b->subject;
    if (a->time != b->time) return a->time < b->time;
    if (a->prov != b->prov) return a->prov < b->prov;
    return (int32_t)(a->seq - b->seq) < 0;
}

/* In-place introsort with the comparison inlined: glibc's qsort sorts records this size through
 * an index and copies them twice, which showed as the largest single cost of finishing a store. */

static inline void ev_swap(wevent *a, wevent *b) {
    wevent t = *a;
    *a = *b;
    *b = t;
}

static void ev_sift_down(wevent *a, size_t n, size_t i) {
    for (;;) {
        size_t l = 2 * i + 1, m = i;
        if (l < n && ev_less(&a[m], &a[l])) m = l;
        if (l + 1 < n && ev_less(&a[m], &a[l + 1])) m = l + 1;
        if (m == i) return;
        ev_swap(&a[i], &a[m]);
        i = m;
    }
}

static void ev_heapsort(wevent *a, size_t n) {
    for (size_t i = n / 2; i-- > 0;) ev_sift_down(a, n, i);
    for (size_t i = n; i-- > 1;) {
        ev_swap(&a[0], &a[i]);
        ev_sift_down(a, i, 0);
    }
}

/* Index of the median of a[i], a[j], a[k]. */
static size_t ev_median3(const wevent *a, size_t i, size_t j, size_t k) {
    if (ev_less(&a[i], &a[j])) return ev_less(&a[j], &a[k]) ? j : ev_less(&a[i], &a[k]) ? k : i;
    return ev_less(&a[i], &a[k]) ? i : ev_less(&a[j], &a[k]) ? k : j;
}

static void ev_introsort(wevent *a, size_t n, int depth) {
    while (n > 24) {
        if (depth-- == 0) {
            ev_heapsort(a, n);
            return;
        }
        /* The pivot to the front, then Hoare partition around it. Events arrive as sorted
         * stretches (one source file or table after another) in an order the first, middle and
         * last elements do not sample well: a median of three chosen there sent a PhysioNet ingest
         * into the heapsort fallback for half its events. A median of three medians spread over
         * the range (Tukey's ninther) does not; small ranges keep the median of three. */
        size_t mid = n / 2;
        if (n > 128) {
            size_t s = n / 8;
            ev_swap(&a[0], &a[ev_median3(a, 1, s, 2 * s)]);
            ev_swap(&a[mid], &a[ev_median3(a, mid - s, mid, mid + s)]);
            ev_swap(&a[n - 1], &a[ev_median3(a, n - 1 - 2 * s, n - 1 - s, n - 2)]);
        }
        if (ev_less(&a[mid], &a[0])) ev_swap(&a[mid], &a[0]);
        if (ev_less(&a[n - 1], &a[0])) ev_swap(&a[n - 1], &a[0]);
        if (ev_less(&a[n - 1], &a[mid])) ev_swap(&a[n - 1], &a[mid]);
        ev_swap(&a[0], &a[mid]);
        wevent pivot = a[0];
        size_t i = 0, j = n;
        for (;;) {
            do i++; while (i < n && ev_less(&a[i], &pivot));
            do j--; while (ev_less(&pivot, &a[j]));
            if (i >= j) break;
            ev_swap(&a[i], &a[j]);
        }
        ev_swap(&a[0], &a[j]);
        /* Recurse into the smaller side, loop on the larger: stack depth stays O(log n). */
        if (j < n - j - 1) {
            ev_introsort(a, j, depth);
            a += j + 1;
            n -= j + 1;
        } else {
            ev_introsort(a + j + 1, n - j - 1, depth);
            n = j;
        }
    }
    for (size_t i = 1; i < n; i++) {
        wevent x = a[i];
        size_t k = i;
        while (k > 0 && ev_less(&x, &a[k - 1])) {
            a[k] = a[k - 1];
            k--;
        }
        a[k] = x;
    }
}

static void sort_events(wevent *a, size_t n) {
    int depth = 0;
    for (size_t k = n; k > 1; k >>= 1) depth += 2;
    ev_introsort(a, n, depth);
}

/* Two sorted halves read as one sorted sequence. The order is total (insertion order breaks
 * ties), so this is exactly the order sorting the whole would give. */
typedef struct {
    const wevent *a, *a_end, *b, *b_end;
} halves;

static inline const wevent *halves_next(halves *h) {
    if (h->a == h->a_end) return h->b == h->b_end ? NULL : h->b++;
    if (h->b == h->b_end || ev_less(h->a, h->b)) return h->a++;
    return h->b++;
}

typedef struct {
    wevent *ev;
    size_t n;
} sort_job;

static void *sort_thread(void *arg) {
    sort_job *j = arg;
    sort_events(j->ev, j->n);
    return NULL;
}

#define PAR_SORT_MIN 65536  /* below this a second thread costs more than it saves */

/* Sorts ev[0, n) as two halves, the second on a thread of its own, for the caller to read through
 * halves_next (sorting is the largest serial cost of finishing a store). */
static void sort_halves(wevent *ev, size_t n, halves *h) {
    size_t mid = n >= PAR_SORT_MIN ? n / 2 : n;
    sort_job j = {ev + mid, n - mid};
    pthread_t th;
    int threaded = 0;
    if (mid < n) threaded = cf_thread_start(&th, sort_thread, &j) == 0;
    sort_events(ev, mid);
    if (threaded) pthread_join(th, NULL);
    else sort_thread(&j);
    *h = (halves){ev, ev + mid, ev + mid, ev + n};
}

static void run_codec_free(run_codec *c) {
    if (!c) return;
    ZSTD_freeCCtx(c->cctx);
    ZSTD_freeDCtx(c->dctx);
    free(c->raw);
    free(c->packed);
    free(c->tmp);
    free(c->last_row);
    free(c);
}

static run_codec *run_codec_new(void) {
    run_codec *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->packed_cap = ZSTD_compressBound((size_t)RUN_CHUNK * RUN_BYTES_PER_EVENT);
    c->raw = malloc((size_t)RUN_CHUNK * RUN_BYTES_PER_EVENT);
    c->packed = malloc(c->packed_cap);
    c->tmp = malloc(RUN_CHUNK * sizeof *c->tmp);
    c->last_row = calloc((size_t)STORE_MAX_SOURCES + 1, sizeof *c->last_row);
    c->cctx = ZSTD_createCCtx();
    c->dctx = ZSTD_createDCtx();
    if (!c->raw || !c->packed || !c->tmp || !c->last_row || !c->cctx || !c->dctx ||
        ZSTD_isError(ZSTD_CCtx_setParameter(c->cctx, ZSTD_c_compressionLevel, RUN_ZSTD_LEVEL))) {
        run_codec_free(c);
        return NULL;
    }
    return c;
}

static inline uint64_t zz(int64_t v) { return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63); }
static inline int64_t unzz(uint64_t u) { return (int64_t)(u >> 1) ^ -(int64_t)(u & 1); }

/* The fields of a run chunk, in order: subject and time as deltas, the provenance as its source
 * and the row's delta from the last row of that source in the chunk (rows of one table interleave
 * by time), code and text ids (texts as deltas from the last one), the numeric value's bits. */
static const int run_width[7] = {8, 8, 2, 8, 4, 8, 4};

/* n (1..RUN_CHUNK) sorted events -> c->packed; returns the compressed size, 0 on failure. */
static size_t run_encode(run_codec *c, const wevent *e, size_t n) {
    uint64_t *v = c->tmp;
    uint8_t *dst = c->raw;
    for (int f = 0; f < 7; f++) {
        uint64_t prev = 0;
        for (size_t i = 0; i < n; i++) {
            switch (f) {
            case 0: v[i] = zz((int64_t)((uint64_t)e[i].subject - prev)); prev = (uint64_t)e[i].subject; break;
            case 1: v[i] = zz((int64_t)((uint64_t)e[i].time - prev)); prev = (uint64_t)e[i].time; break;
            case 2: v[i] = store_prov_source(e[i].prov); break;
            case 3: {
                uint64_t *last = &c->last_row[store_prov_source(e[i].prov)];
                v[i] = zz((int64_t)(store_prov_row(e[i].prov) - *last));
                *last = store_prov_row(e[i].prov);
                break;
            }
            case 4: v[i] = e[i].code; break;
            case 5:
                if (e[i].text) {
                    v[i] = zz((int64_t)e[i].text - (int64_t)prev) + 1;
                    prev = e[i].text;
                } else {
                    v[i] = 0;
                }
                break;
            default: {
                uint32_t b;
                memcpy(&b, &e[i].numeric, 4);
                v[i] = b;
            }
            }
        }
        if (f == 3)
            for (size_t i = 0; i < n; i++) c->last_row[store_prov_source(e[i].prov)] = 0;
        store_planes_put(dst, v, n, run_width[f]);
        dst += (size_t)run_width[f] * n;
    }
    size_t r = ZSTD_compress2(c->cctx, c->packed, c->packed_cap, c->raw, (size_t)(dst - c->raw));
    return ZSTD_isError(r) ? 0 : r;
}

/* c->packed (len bytes) -> n events, numbered from seq0. Returns 0, or -1 when the chunk does
 * not decode (the scratch file was damaged underneath us). */
static int run_decode(run_codec *c, size_t len, wevent *e, size_t n, uint32_t seq0) {
    size_t want = n * RUN_BYTES_PER_EVENT;
    size_t r = ZSTD_decompressDCtx(c->dctx, c->raw, want, c->packed, len);
    if (ZSTD_isError(r) || r != want) return -1;
    uint64_t *v = c->tmp;
    const uint8_t *src = c->raw;
    for (int f = 0; f < 7; f++) {
        store_planes_get(v, src, n, run_width[f]);
        src += (size_t)run_width[f] * n;
        uint64_t prev = 0;
        for (size_t i = 0; i < n; i++) {
            switch (f) {
            case 0: prev += (uint64_t)unzz(v[i]); e[i].subject = (int64_t)prev; break;
            case 1: prev += (uint64_t)unzz(v[i]); e[i].time = (int64_t)prev; break;
            case 2: e[i].prov = v[i] << 48; break;
            case 3: {
                uint64_t *last = &c->last_row[store_prov_source(e[i].prov)];
                *last = (*last + (uint64_t)unzz(v[i])) & STORE_MAX_ROW;
                e[i].prov |= *last;
                break;
            }
            case 4: e[i].code = (uint32_t)v[i]; break;
            case 5:
                if (v[i]) {
                    prev += (uint64_t)unzz(v[i] - 1);
                    e[i].text = (uint32_t)prev;
                } else {
                    e[i].text = 0;
                }
                break;
            default: {
                uint32_t b = (uint32_t)v[i];
                memcpy(&e[i].numeric, &b, 4);
            }
            }
        }
        if (f == 3)
            for (size_t i = 0; i < n; i++) c->last_row[store_prov_source(e[i].prov)] = 0;
    }
    for (size_t i = 0; i < n; i++) e[i].seq = seq0 + (uint32_t)i;
    return 0;
}

/* Sorts n events and writes them, compressed, to a new scratch file: *fd and *bytes. Touches
 * nothing of w but the run codec and the scratch directory, so it can run beside adding. */
static int write_run(store_writer *w, wevent *ev, size_t n_ev, int *fd_out, uint64_t *bytes, cf_err *err) {
    halves h;
    sort_halves(ev, n_ev, &h);
    wevent *chunk = malloc(RUN_CHUNK * sizeof *chunk);
    if (!chunk) return cf_fail(err, CF_EINTERNAL, "out of memory");
    int fd;
    int rc = scratch_file_open(w->scratch_dir, err, &fd);
    if (rc) {
        free(chunk);
        return rc;
    }
    *bytes = 0;
    for (size_t at = 0; at < n_ev && !rc; at += RUN_CHUNK) {
        size_t n = n_ev - at < RUN_CHUNK ? n_ev - at : RUN_CHUNK;
        for (size_t i = 0; i < n; i++) chunk[i] = *halves_next(&h);
        size_t len = run_encode(w->codec, chunk, n);
        if (!len) {
            rc = cf_fail(err, CF_EINTERNAL, "store spill run: compression failed");
            break;
        }
        uint32_t head[2] = {(uint32_t)n, (uint32_t)len};
        rc = write_all(fd, head, sizeof head, "store spill run", err);
        if (!rc) rc = write_all(fd, w->codec->packed, len, "store spill run", err);
        *bytes += sizeof head + len;
    }
    free(chunk);
    if (rc) {
        close(fd);
        return rc;
    }
    *fd_out = fd;
    return CF_OK;
}

/* Records a written run (in the order runs began: their first events' insertion order). */
static int run_append(store_writer *w, int fd, size_t n, uint64_t bytes, cf_err *err) {
    if (w->n_runs == w->cap_runs) {
        size_t nc = w->cap_runs ? w->cap_runs * 2 : 16;
        int *f = realloc(w->run_fd, nc * sizeof *f);
        if (!f) {
            close(fd);
            return cf_fail(err, CF_EINTERNAL, "out of memory");
        }
        w->run_fd = f;
        uint64_t *e = realloc(w->run_events, nc * sizeof *e);
        if (!e) {
            close(fd);
            return cf_fail(err, CF_EINTERNAL, "out of memory");
        }
        w->run_events = e;
        w->cap_runs = nc;
    }
    w->run_fd[w->n_runs] = fd;
    w->run_events[w->n_runs] = n;
    w->n_runs++;
    w->run_bytes += bytes;
    return CF_OK;
}

static void *spill_thread(void *arg) {
    spill_job *j = arg;
    j->rc = write_run(j->w, j->ev, j->n, &j->fd, &j->bytes, &j->err);
    return NULL;
}

/* Records the finished spill job's run; its buffer becomes the spare. */
static int spill_done(store_writer *w, cf_err *err) {
    spill_job *j = &w->job;
    w->spare = j->ev;
    w->spare_alloc = w->cap;
    j->ev = NULL;
    if (j->rc) {
        if (err) *err = j->err;
        return j->rc;
    }
    return run_append(w, j->fd, j->n, j->bytes, err);
}

/* Waits for the spill under way, if any, and records its run. */
static int spill_wait(store_writer *w, cf_err *err) {
    if (!w->spilling) return CF_OK;
    pthread_join(w->spill_th, NULL);
    w->spilling = 0;
    return spill_done(w, err);
}

/* Hands the full buffer to the spill thread and goes on with the spare (or spills right here
 * when no thread can be had). */
static int spill(store_writer *w, cf_err *err) {
    int rc = spill_wait(w, err);
    if (rc) return rc;
    if (!w->codec && !(w->codec = run_codec_new())) return cf_fail(err, CF_EINTERNAL, "out of memory");
    if (!w->spare && (w->spare = malloc(w->cap * sizeof *w->spare))) w->spare_alloc = w->cap;
    if (!w->spare) return cf_fail(err, CF_EINTERNAL, "out of memory");
    spill_job *j = &w->job;
    memset(j, 0, sizeof *j);
    j->w = w;
    j->ev = w->buf;
    j->n = w->n;
    j->fd = -1;
    w->buf = w->spare;
    w->buf_alloc = w->spare_alloc;
    w->spare = NULL;
    w->spare_alloc = 0;
    w->n = 0;
    int e = cf_thread_start(&w->spill_th, spill_thread, j);
    if (e == 0) {
        w->spilling = 1;
        return CF_OK;
    }
    spill_thread(j);
    return spill_done(w, err);
}

int store_writer_add(store_writer *w, int64_t subject_id, int64_t time, uint32_t code_id,
                     float numeric, const char *text, size_t text_len, uint32_t source,
                     uint64_t row, cf_err *err) {
    if (code_id >= w->codes.count)
        return cf_fail(err, CF_EINTERNAL, "event refers to an unknown code id");
    if (source >= w->sources.count)
        return cf_fail(err, CF_EINTERNAL, "event refers to an unknown source id");
    if (row > STORE_MAX_ROW) return cf_fail(err, CF_EINPUT, "source row number out of range");
    if (isinf(numeric)) return cf_fail(err, CF_EINPUT, "numeric value is infinite");
    uint32_t text_id = 0;
    if (text) {
        text_id = add_text(w, text, text_len, err);
        if (!text_id) return err && err->code ? err->code : CF_EINTERNAL;
    }
    if (w->n == w->buf_alloc) {
        if (w->buf_alloc == w->cap) {
            int rc = spill(w, err);
            if (rc) return rc;
        }
        if (w->n == w->buf_alloc) {
            /* Grow geometrically up to the budget, so small inputs stay small. */
            size_t nc = w->buf_alloc ? w->buf_alloc * 2 : 65536;
            if (nc > w->cap) nc = w->cap;
            wevent *p = realloc(w->buf, nc * sizeof *p);
            if (!p) return cf_fail(err, CF_EINTERNAL, "out of memory");
            w->buf = p;
            w->buf_alloc = nc;
        }
    }
    wevent *e = &w->buf[w->n++];
    e->subject = subject_id;
    e->time = time;
    e->prov = ((uint64_t)source << 48) | row;
    e->code = code_id;
    e->text = text_id;
    e->numeric = numeric;
    e->seq = (uint32_t)w->total;
    w->total++;
    return CF_OK;
}

int store_writer_subject_key(store_writer *w, int64_t subject_id, const char *key, size_t len,
                             cf_err *err) {
    int64_t id = strmap_intern(&w->subject_keys, key, len);
    if (id < 0) return cf_fail(err, CF_EINTERNAL, "out of memory");
    if (w->n_keys == w->cap_keys) {
        size_t nc = w->cap_keys ? w->cap_keys * 2 : 1024;
        subject_key_ref *p = realloc(w->keys, nc * sizeof *p);
        if (!p) return cf_fail(err, CF_EINTERNAL, "out of memory");
        w->keys = p;
        w->cap_keys = nc;
    }
    w->keys[w->n_keys++] = (subject_key_ref){subject_id, (uint32_t)id, 0};
    return CF_OK;
}

int store_writer_set_meta(store_writer *w, const char *json) {
    char *copy = strdup(json);
    if (!copy) return CF_EINTERNAL;
    free(w->meta);
    w->meta = copy;
    return CF_OK;
}

uint64_t store_writer_events(const store_writer *w) { return w->total; }

static void writer_free(store_writer *w) {
    if (!w) return;
    if (w->spilling) {
        pthread_join(w->spill_th, NULL);
        if (!w->job.rc && w->job.fd >= 0) close(w->job.fd);
        free(w->job.ev);
    }
    free(w->spare);
    free(w->buf);
    for (size_t i = 0; i < w->n_runs; i++) close(w->run_fd[i]);
    free(w->run_fd);
    free(w->run_events);
    run_codec_free(w->codec);
    strmap_free(&w->codes);
    free(w->code_desc_off);
    sbuf_free(&w->desc);
    strmap_free(&w->sources);
    if (w->text_fd >= 0) close(w->text_fd);
    sbuf_free(&w->text_pending);
    free(w->text_end);
    strmap_free(&w->short_texts);
    free(w->short_text_id);
    strmap_free(&w->subject_keys);
    free(w->keys);
    free(w->meta);
    free(w);
}

void store_writer_abort(store_writer *w) { writer_free(w); }

/* ------------------------------------------------------------------ output */

/* A section being written sequentially at a fixed file offset, hashed as it goes. */
typedef struct {
    int fd;
    uint64_t offset;   /* where the next byte goes */
    uint64_t start;
    char *buf;
    size_t len, cap;
    crypto_generichash_state hash;
    store_section *sec;
} section_out;

static int section_begin(section_out *s, int fd, store_section *sec, uint32_t kind, uint64_t offset,
                         size_t bufcap) {
    memset(s, 0, sizeof *s);
    s->fd = fd;
    s->offset = s->start = offset;
    s->sec = sec;
    sec->kind = kind;
    sec->offset = offset;
    s->cap = bufcap;
    s->buf = malloc(bufcap);
    if (!s->buf) return CF_EINTERNAL;
    crypto_generichash_init(&s->hash, NULL, 0, STORE_HASH_BYTES);
    return CF_OK;
}

static int section_flush(section_out *s, cf_err *err) {
    if (!s->len) return CF_OK;
    crypto_generichash_update(&s->hash, (const unsigned char *)s->buf, s->len);
    int rc = pwrite_all(s->fd, s->buf, s->len, (long long)s->offset, "store output", err);
    s->offset += s->len;
    s->len = 0;
    return rc;
}

static int section_write(section_out *s, const void *p, size_t len, cf_err *err) {
    const char *c = p;
    while (len) {
        size_t k = s->cap - s->len < len ? s->cap - s->len : len;
        memcpy(s->buf + s->len, c, k);
        s->len += k;
        c += k;
        len -= k;
        if (s->len == s->cap) {
            int rc = section_flush(s, err);
            if (rc) return rc;
        }
    }
    return CF_OK;
}

static int section_end(section_out *s, cf_err *err) {
    int rc = section_flush(s, err);
    s->sec->size = s->offset - s->start;
    crypto_generichash_final(&s->hash, s->sec->hash, STORE_HASH_BYTES);
    free(s->buf);
    s->buf = NULL;
    return rc;
}

static uint64_t align_up(uint64_t x) { return (x + STORE_ALIGN - 1) & ~(uint64_t)(STORE_ALIGN - 1); }

/* Writes one whole section from memory at *pos, advancing *pos past it (aligned). */
static int write_section(int fd, store_header *h, uint32_t kind, const void *data, size_t len,
                         uint64_t *pos, cf_err *err) {
    section_out s;
    if (section_begin(&s, fd, &h->sections[h->n_sections++], kind, *pos, len < COLUMN_BUF ? (len ? len : 1) : COLUMN_BUF))
        return cf_fail(err, CF_EINTERNAL, "out of memory");
    int rc = section_write(&s, data, len, err);
    int rc2 = section_end(&s, err);
    *pos = align_up(*pos + len);
    return rc ? rc : rc2;
}

/* Reads runs back in order for the merge, a chunk at a time. Each run holds two decoded chunks:
 * the one being merged (buf) and the next (ahead), which a decoder thread reads, decompresses and
 * decodes while the merge goes on, so the merging thread only compares and copies events. */
enum { AHEAD_NONE, AHEAD_WANTED, AHEAD_BUSY, AHEAD_READY };

typedef struct {
    int fd;
    uint64_t next, total;  /* events consumed from the file / in it */
    uint64_t off;          /* file offset of the next chunk */
    uint32_t seq0;         /* number of the run's first event, counted over all runs (mod 2^32) */
    wevent *buf;           /* (RUN_CHUNK) the current chunk, decoded */
    size_t pos, len;
    wevent *ahead;         /* (RUN_CHUNK) the next chunk, decoded ahead */
    size_t ahead_len;
    int state;             /* of ahead: AHEAD_*, under the decoder's lock */
    int rc;                /* of decoding ahead */
    int in_memory;         /* buf is a sorted part of the writer's buffer, not a run chunk */
    cf_err err;
} run_reader;

static int pread_full(int fd, void *p, size_t len, uint64_t off) {
    size_t got = 0;
    while (got < len) {
        ssize_t n = pread(fd, (char *)p + got, len - got, (off_t)(off + got));
        if (n <= 0) return -1;
        got += (size_t)n;
    }
    return 0;
}

/* Reads and decodes the run's next chunk into dst (*n events). Touches only r's file position. */
static int run_read_chunk(run_reader *r, run_codec *c, wevent *dst, size_t *n, cf_err *err) {
    uint32_t head[2];
    if (pread_full(r->fd, head, sizeof head, r->off))
        return cf_fail_errno(err, CF_EINTERNAL, "store spill run: read failed");
    if (head[0] == 0 || head[0] > RUN_CHUNK || head[0] > r->total - r->next || head[1] > c->packed_cap ||
        pread_full(r->fd, c->packed, head[1], r->off + sizeof head) ||
        run_decode(c, head[1], dst, head[0], r->seq0 + (uint32_t)r->next))
        return cf_fail(err, CF_EINTERNAL, "store spill run: a chunk does not read back; the scratch disk is damaged");
    /* The chunk is in memory now: give its disk space back (ignored where holes are unsupported). */
    uint64_t chunk = sizeof head + head[1];
    (void)fallocate(r->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)r->off, (off_t)chunk);
    r->off += chunk;
    r->next += head[0];
    *n = head[0];
    return CF_OK;
}

/* The decoder thread and what it shares with the merge. */
typedef struct {
    run_reader *runs;
    size_t k;
    run_codec *codec;
    pthread_mutex_t mu;
    pthread_cond_t wanted, ready; /* a chunk is wanted / a chunk is decoded */
    int stop, threaded;
    pthread_t th;
} run_decoder;

/* Of the runs whose next chunk is wanted, the one the merge will need first: its current chunk
 * ends lowest in the event order. Called under the lock. */
static run_reader *decoder_pick(run_decoder *d) {
    run_reader *best = NULL;
    for (size_t i = 0; i < d->k; i++) {
        run_reader *r = &d->runs[i];
        if (r->state == AHEAD_WANTED && (!best || ev_less(&r->buf[r->len - 1], &best->buf[best->len - 1]))) best = r;
    }
    return best;
}

static void *decoder_thread(void *arg) {
    run_decoder *d = arg;
    pthread_mutex_lock(&d->mu);
    for (;;) {
        if (d->stop) break;
        run_reader *r = decoder_pick(d);
        if (!r) {
            pthread_cond_wait(&d->wanted, &d->mu);
            continue;
        }
        r->state = AHEAD_BUSY;
        pthread_mutex_unlock(&d->mu);
        size_t n = 0;
        int rc = run_read_chunk(r, d->codec, r->ahead, &n, &r->err);
        pthread_mutex_lock(&d->mu);
        r->rc = rc;
        r->ahead_len = n;
        r->state = AHEAD_READY;
        pthread_cond_broadcast(&d->ready);
    }
    pthread_mutex_unlock(&d->mu);
    return NULL;
}

/* The run's current chunk is used up: makes its next chunk current. *more = 0 when the run has no
 * more events. Waits for the decoder when it is behind (or decodes here without a thread). */
static int run_advance(run_decoder *d, run_reader *r, int *more, cf_err *err) {
    pthread_mutex_lock(&d->mu);
    if (!d->threaded && r->state == AHEAD_WANTED) {
        r->rc = run_read_chunk(r, d->codec, r->ahead, &r->ahead_len, &r->err);
        r->state = AHEAD_READY;
    }
    while (r->state == AHEAD_WANTED || r->state == AHEAD_BUSY) pthread_cond_wait(&d->ready, &d->mu);
    int rc = CF_OK;
    *more = r->state == AHEAD_READY;
    if (*more) {
        if (r->rc) {
            rc = r->rc;
            if (err) *err = r->err;
            r->state = AHEAD_NONE;
        } else {
            wevent *t = r->buf;
            r->buf = r->ahead;
            r->ahead = t;
            r->len = r->ahead_len;
            r->pos = 0;
            r->state = r->next < r->total ? AHEAD_WANTED : AHEAD_NONE;
            if (r->state == AHEAD_WANTED) pthread_cond_signal(&d->wanted);
        }
    }
    pthread_mutex_unlock(&d->mu);
    return rc;
}

/* Stops the decoder thread (after the chunk it is decoding, if any). */
static void decoder_stop(run_decoder *d) {
    if (!d->threaded) return;
    pthread_mutex_lock(&d->mu);
    d->stop = 1;
    pthread_cond_signal(&d->wanted);
    pthread_mutex_unlock(&d->mu);
    pthread_join(d->th, NULL);
    d->threaded = 0;
}

/* Min-heap of run indices keyed by each run's current event. */
static void heap_sift(size_t *heap, size_t n, size_t i, run_reader *runs) {
    for (;;) {
        size_t l = 2 * i + 1, m = i;
        if (l < n && ev_less(&runs[heap[l]].buf[runs[heap[l]].pos], &runs[heap[m]].buf[runs[heap[m]].pos])) m = l;
        if (l + 1 < n && ev_less(&runs[heap[l + 1]].buf[runs[heap[l + 1]].pos], &runs[heap[m]].buf[runs[heap[m]].pos])) m = l + 1;
        if (m == i) return;
        size_t t = heap[i];
        heap[i] = heap[m];
        heap[m] = t;
        i = m;
    }
}

/* Output blocks are compressed on ENCODERS threads at a time while the merge fills the next one
 * (compressing is the largest cost of writing the output); each block is compressed on its own,
 * and the compressed blocks are written in order by the merging thread. */
#define ENCODERS 2

typedef struct {
    store_block_cols cols;   /* the block handed over */
    size_t n;
    size_t index;            /* its number in the output */
    store_block_ctx *ctx;
    const void *packed;      /* its compressed bytes, in ctx */
    size_t len;
    int busy, threaded, rc;
    pthread_t th;
} enc_slot;

typedef struct {
    section_out data;        /* EVENT_DATA: compressed blocks */
    store_block_cols blk;    /* the block being filled */
    size_t blk_n;
    enc_slot slot[ENCODERS]; /* blocks being compressed, the oldest at next_slot */
    size_t next_slot, flushed;
    store_block *blocks;
    size_t n_blocks, cap_blocks;
    uint64_t *summary;       /* (3 + sources) static, numeric, text events, events per source */
    int64_t *subj_id;
    uint64_t *subj_start;
    size_t n_subj, cap_subj;
    uint64_t written;
    const uint32_t *remap;
    uint32_t *text_new;      /* (n_texts+1) writer text id -> output id, 0 = not yet seen */
    uint32_t *text_old;      /* (n_texts) output id-1 -> writer text id */
    uint32_t texts_seen;
    uint64_t *code_count;
    int64_t first_time, last_time;
} merge_out;

/* Compresses a slot's block. */
static void *encode_block(void *arg) {
    enc_slot *s = arg;
    s->rc = store_block_encode(s->ctx, &s->cols, s->n, &s->packed, &s->len) ? CF_EINTERNAL : CF_OK;
    return NULL;
}

/* Waits for a slot's block, if any, and appends it to EVENT_DATA. */
static int slot_finish(merge_out *m, enc_slot *s, cf_err *err) {
    if (!s->busy) return CF_OK;
    if (s->threaded) pthread_join(s->th, NULL);
    s->busy = s->threaded = 0;
    if (s->rc) return cf_fail(err, CF_EINTERNAL, "store output: compressing event block %zu failed", s->index);
    if (m->n_blocks == m->cap_blocks) {
        size_t nc = m->cap_blocks ? m->cap_blocks * 2 : 64;
        store_block *p = realloc(m->blocks, nc * sizeof *p);
        if (!p) return cf_fail(err, CF_EINTERNAL, "out of memory");
        m->blocks = p;
        m->cap_blocks = nc;
    }
    m->blocks[m->n_blocks++] = (store_block){m->data.offset + m->data.len - m->data.start, s->len, s->n};
    return section_write(&m->data, s->packed, s->len, err);
}

/* Waits for every block being compressed and writes them, oldest first. */
static int encode_wait(merge_out *m, cf_err *err) {
    int rc = CF_OK;
    for (size_t i = 0; i < ENCODERS && !rc; i++) rc = slot_finish(m, &m->slot[(m->next_slot + i) % ENCODERS], err);
    return rc;
}

/* Joins the encoder threads without writing (after a failure). */
static void encode_drain(merge_out *m) {
    for (size_t i = 0; i < ENCODERS; i++) {
        enc_slot *s = &m->slot[i];
        if (s->busy && s->threaded) pthread_join(s->th, NULL);
        s->busy = s->threaded = 0;
    }
}

/* Hands the filled part of the current block to the oldest slot (after writing the block it
 * held) and goes on filling that slot's buffers. */
static int flush_block(merge_out *m, cf_err *err) {
    if (!m->blk_n) return CF_OK;
    enc_slot *s = &m->slot[m->next_slot];
    int rc = slot_finish(m, s, err);
    if (rc) return rc;
    store_block_cols t = s->cols;
    s->cols = m->blk;
    m->blk = t;
    s->n = m->blk_n;
    s->index = m->flushed++;
    m->blk_n = 0;
    m->next_slot = (m->next_slot + 1) % ENCODERS;
    s->busy = 1;
    s->threaded = cf_thread_start(&s->th, encode_block, s) == 0;
    if (!s->threaded) encode_block(s); /* no thread to be had: here; written in its turn */
    return CF_OK;
}

static int block_cols_alloc(store_block_cols *c) {
    size_t B = STORE_BLOCK_EVENTS;
    c->time = malloc(B * sizeof *c->time);
    c->code = malloc(B * sizeof *c->code);
    c->numeric = malloc(B * sizeof *c->numeric);
    c->text = malloc(B * sizeof *c->text);
    c->prov = malloc(B * sizeof *c->prov);
    return c->time && c->code && c->numeric && c->text && c->prov ? CF_OK : CF_EINTERNAL;
}

static void block_cols_free(store_block_cols *c) {
    free(c->time);
    free(c->code);
    free(c->numeric);
    free(c->text);
    free(c->prov);
}

static int emit(merge_out *m, const wevent *e, cf_err *err) {
    if (m->n_subj == 0 || m->subj_id[m->n_subj - 1] != e->subject) {
        if (m->n_subj == m->cap_subj) {
            size_t nc = m->cap_subj ? m->cap_subj * 2 : 1024;
            int64_t *a = realloc(m->subj_id, nc * sizeof *a);
            if (!a) return cf_fail(err, CF_EINTERNAL, "out of memory");
            m->subj_id = a;
            uint64_t *b = realloc(m->subj_start, (nc + 1) * sizeof *b);
            if (!b) return cf_fail(err, CF_EINTERNAL, "out of memory");
            m->subj_start = b;
            m->cap_subj = nc;
        }
        m->subj_id[m->n_subj] = e->subject;
        m->subj_start[m->n_subj] = m->written;
        m->n_subj++;
    }
    uint32_t code = m->remap[e->code];
    m->code_count[code]++;
    if (e->time != TIME_NULL) {
        if (m->first_time == TIME_NULL || e->time < m->first_time) m->first_time = e->time;
        if (m->last_time == TIME_NULL || e->time > m->last_time) m->last_time = e->time;
    }
    /* Texts are renumbered in order of first use in the sorted stream, so the output does not
     * depend on the order events were added in (several ingest threads) and a subject's texts
     * sit together in the heap. */
    uint32_t text = 0;
    if (e->text) {
        if (!m->text_new[e->text]) {
            m->text_new[e->text] = ++m->texts_seen;
            m->text_old[m->texts_seen - 1] = e->text;
        }
        text = m->text_new[e->text];
    }
    m->summary[0] += e->time == TIME_NULL;
    m->summary[1] += !isnan(e->numeric);
    m->summary[2] += text != 0;
    m->summary[3 + store_prov_source(e->prov)]++;
    size_t j = m->blk_n++;
    m->blk.time[j] = e->time;
    m->blk.code[j] = code;
    m->blk.numeric[j] = e->numeric;
    m->blk.text[j] = text;
    m->blk.prov[j] = e->prov;
    m->written++;
    return m->blk_n == STORE_BLOCK_EVENTS ? flush_block(m, err) : CF_OK;
}

static const strmap *sort_ctx;
static int cmp_code_ids(const void *pa, const void *pb) {
    uint32_t a = *(const uint32_t *)pa, b = *(const uint32_t *)pb;
    size_t la, lb;
    const char *sa = strmap_str(sort_ctx, a, &la), *sb = strmap_str(sort_ctx, b, &lb);
    int c = memcmp(sa, sb, la < lb ? la : lb);
    return c ? c : (la < lb ? -1 : la > lb);
}

static int cmp_key_ref(const void *pa, const void *pb) {
    const subject_key_ref *a = pa, *b = pb;
    if (a->subject != b->subject) return a->subject < b->subject ? -1 : 1;
    return a->key < b->key ? -1 : a->key > b->key;
}

/* Writes a string table (offsets + NUL-terminated heap) from a strmap in the given id order. */
static int write_string_table(int fd, store_header *h, uint32_t off_kind, uint32_t heap_kind,
                              const strmap *m, const uint32_t *order, uint64_t *pos, cf_err *err) {
    size_t n = m->count;
    uint64_t *off = malloc((n + 1) * sizeof *off);
    if (!off) return cf_fail(err, CF_EINTERNAL, "out of memory");
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++) {
        off[i] = total;
        total += m->lengths[order ? order[i] : i] + 1;
    }
    off[n] = total;
    int rc = write_section(fd, h, off_kind, off, (n + 1) * sizeof *off, pos, err);
    free(off);
    if (rc) return rc;
    section_out s;
    if (section_begin(&s, fd, &h->sections[h->n_sections++], heap_kind, *pos, COLUMN_BUF))
        return cf_fail(err, CF_EINTERNAL, "out of memory");
    for (size_t i = 0; i < n && !rc; i++) {
        size_t len;
        const char *str = strmap_str(m, order ? order[i] : (uint32_t)i, &len);
        rc = section_write(&s, str, len + 1, err);
    }
    int rc2 = section_end(&s, err);
    *pos = align_up(*pos + total);
    return rc ? rc : rc2;
}

/* Merges every event into the columns of m in store order: the in-memory buffer alone, or every
 * spilled run and the buffer's two sorted halves through a k-way heap. */
static int merge_events(store_writer *w, merge_out *m, cf_err *err) {
    if (w->n_runs == 0) {
        halves h;
        sort_halves(w->buf, w->n, &h);
        int rc = CF_OK;
        for (const wevent *e; !rc && (e = halves_next(&h));) rc = emit(m, e, err);
        return rc;
    }
    int rc = CF_OK;
    /* The events still buffered are not spilled: sorted in two halves (on two threads), each half
     * joins the merge as a run read from memory. The order is total, so the merge's order is the
     * one spilling them gave; this saves compressing them and decoding them again on one thread
     * while nothing else runs, and their disk space. The spare buffer goes; this one stays until
     * the writer is freed (half the budget, as while adding). */
    free(w->spare);
    w->spare = NULL;
    w->spare_alloc = 0;
    halves mem = {0};
    if (w->n) sort_halves(w->buf, w->n, &mem);
    size_t mem_runs = (mem.a < mem.a_end) + (mem.b < mem.b_end);
    size_t k = w->n_runs + mem_runs;
    run_reader *runs = calloc(k, sizeof *runs);
    size_t *heap = calloc(k, sizeof *heap);
    run_decoder d = {.runs = runs, .k = k, .codec = w->codec};
    pthread_mutex_init(&d.mu, NULL);
    pthread_cond_init(&d.wanted, NULL);
    pthread_cond_init(&d.ready, NULL);
    if (!runs || !heap) {
        rc = cf_fail(err, CF_EINTERNAL, "out of memory");
        goto done;
    }
    size_t hn = 0;
    uint64_t first = 0;
    for (size_t i = 0; i < w->n_runs; i++) {
        run_reader *r = &runs[i];
        r->fd = w->run_fd[i];
        r->total = w->run_events[i];
        r->seq0 = (uint32_t)first;
        first += w->run_events[i];
        r->buf = malloc(RUN_CHUNK * sizeof(wevent));
        r->ahead = malloc(RUN_CHUNK * sizeof(wevent));
        if (!r->buf || !r->ahead) {
            rc = cf_fail(err, CF_EINTERNAL, "out of memory");
            goto done;
        }
        if ((rc = run_read_chunk(r, w->codec, r->buf, &r->len, err))) goto done;
        r->state = r->next < r->total ? AHEAD_WANTED : AHEAD_NONE;
        heap[hn++] = i;
    }
    for (size_t i = 0; i < mem_runs; i++) {
        run_reader *r = &runs[w->n_runs + i];
        int first_half = i == 0 && mem.a < mem.a_end;
        const wevent *a = first_half ? mem.a : mem.b, *a_end = first_half ? mem.a_end : mem.b_end;
        r->fd = -1;
        r->in_memory = 1;
        r->buf = (wevent *)a;
        r->len = (size_t)(a_end - a);
        r->next = r->total = r->len;
        r->state = AHEAD_NONE;
        heap[hn++] = w->n_runs + i;
    }
    d.threaded = cf_thread_start(&d.th, decoder_thread, &d) == 0;
    for (size_t i = hn; i-- > 0;) heap_sift(heap, hn, i, runs);
    while (hn) {
        run_reader *r = &runs[heap[0]];
        if ((rc = emit(m, &r->buf[r->pos], err))) goto done;
        if (++r->pos == r->len) {
            int more;
            if ((rc = run_advance(&d, r, &more, err))) goto done;
            if (!more) heap[0] = heap[--hn];
        }
        heap_sift(heap, hn, 0, runs);
    }
done:
    decoder_stop(&d);
    pthread_cond_destroy(&d.ready);
    pthread_cond_destroy(&d.wanted);
    pthread_mutex_destroy(&d.mu);
    if (runs)
        for (size_t i = 0; i < k; i++) {
            if (!runs[i].in_memory) free(runs[i].buf);
            free(runs[i].ahead);
        }
    free(runs);
    free(heap);
    return rc;
}

/* The code descriptions as a string table in final code order ("" where none). */
static int write_code_descs(const store_writer *w, int fd, store_header *h, const uint32_t *order, size_t nc,
                            uint64_t *pos, cf_err *err) {
    uint64_t *off = malloc((nc + 1) * sizeof *off);
    sbuf heap = {0};
    if (!off) return cf_fail(err, CF_EINTERNAL, "out of memory");
    for (size_t i = 0; i < nc; i++) {
        off[i] = heap.len;
        uint32_t old = order[i];
        const char *d = "";
        if (old < w->code_desc_cap && w->code_desc_off && w->code_desc_off[old]) d = w->desc.p + w->code_desc_off[old] - 1;
        sbuf_put(&heap, d, strlen(d) + 1);
    }
    off[nc] = heap.len;
    int rc = heap.oom ? cf_fail(err, CF_EINTERNAL, "out of memory") : CF_OK;
    if (!rc) rc = write_section(fd, h, SEC_CODE_DESC_OFFSET, off, (nc + 1) * 8, pos, err);
    if (!rc) rc = write_section(fd, h, SEC_CODE_DESC_HEAP, heap.p ? heap.p : "", heap.len, pos, err);
    free(off);
    sbuf_free(&heap);
    return rc;
}

/* Texts in output order: offsets (T+1, leading 0), then the heap gathered from the scratch file. */
static int write_texts(const store_writer *w, const merge_out *m, int fd, store_header *h, uint64_t *pos, cf_err *err) {
    if (m->texts_seen != w->n_texts)
        return cf_fail(err, CF_EINTERNAL, "%llu stored texts belong to no event",
                       (unsigned long long)(w->n_texts - m->texts_seen));
    section_out s;
    if (section_begin(&s, fd, &h->sections[h->n_sections++], SEC_TEXT_OFFSET, *pos, COLUMN_BUF))
        return cf_fail(err, CF_EINTERNAL, "out of memory");
    uint64_t off = 0;
    int rc = section_write(&s, &off, 8, err);
    for (size_t i = 0; i < w->n_texts && !rc; i++) {
        uint32_t old = m->text_old[i];
        off += w->text_end[old - 1] - (old > 1 ? w->text_end[old - 2] : 0);
        rc = section_write(&s, &off, 8, err);
    }
    int rc2 = section_end(&s, err);
    if (rc || (rc = rc2)) return rc;
    *pos = align_up(*pos + (w->n_texts + 1) * 8);
    const char *text_heap = NULL;
    if (w->text_bytes) {
        text_heap = mmap(NULL, w->text_bytes, PROT_READ, MAP_SHARED, w->text_fd, 0);
        if (text_heap == MAP_FAILED) return cf_fail_errno(err, CF_EINTERNAL, "store text scratch: cannot map");
    }
    if (section_begin(&s, fd, &h->sections[h->n_sections++], SEC_TEXT_HEAP, *pos, COLUMN_BUF)) {
        if (text_heap) munmap((void *)text_heap, w->text_bytes);
        return cf_fail(err, CF_EINTERNAL, "out of memory");
    }
    for (size_t i = 0; i < w->n_texts && !rc; i++) {
        uint32_t old = m->text_old[i];
        uint64_t b = old > 1 ? w->text_end[old - 2] : 0;
        rc = section_write(&s, text_heap + b, (size_t)(w->text_end[old - 1] - b), err);
    }
    rc2 = section_end(&s, err);
    if (text_heap) munmap((void *)text_heap, w->text_bytes);
    if (rc || (rc = rc2)) return rc;
    *pos = align_up(*pos + w->text_bytes);
    return CF_OK;
}

/* The original subject identifiers, aligned with the subject index; two identifiers of one
 * subject id are refused. */
static int write_subject_keys(store_writer *w, const merge_out *m, int fd, store_header *h, uint64_t *pos,
                              cf_err *err) {
    qsort(w->keys, w->n_keys, sizeof *w->keys, cmp_key_ref);
    for (size_t i = 1; i < w->n_keys; i++)
        if (w->keys[i].subject == w->keys[i - 1].subject && w->keys[i].key != w->keys[i - 1].key)
            return cf_fail(err, CF_EINPUT, "two different source identifiers map to subject id %lld",
                           (long long)w->keys[i].subject);
    uint64_t *off = malloc((m->n_subj + 1) * sizeof *off);
    sbuf heap = {0};
    if (!off) return cf_fail(err, CF_EINTERNAL, "out of memory");
    size_t k = 0;
    for (size_t i = 0; i < m->n_subj; i++) {
        off[i] = heap.len;
        while (k < w->n_keys && w->keys[k].subject < m->subj_id[i]) k++;
        if (k < w->n_keys && w->keys[k].subject == m->subj_id[i]) {
            size_t len;
            const char *s = strmap_str(&w->subject_keys, w->keys[k].key, &len);
            sbuf_put(&heap, s, len);
        }
        sbuf_put(&heap, "", 1);
    }
    off[m->n_subj] = heap.len;
    int rc = heap.oom ? cf_fail(err, CF_EINTERNAL, "out of memory") : CF_OK;
    if (!rc) rc = write_section(fd, h, SEC_SUBJECT_KEY_OFFSET, off, (m->n_subj + 1) * 8, pos, err);
    if (!rc) rc = write_section(fd, h, SEC_SUBJECT_KEY_HEAP, heap.p ? heap.p : "", heap.len, pos, err);
    free(off);
    sbuf_free(&heap);
    return rc;
}

/* Refuses to start writing the output when its filesystem lacks the room for it. The output's
 * size is estimated from what was spilled (runs compress about as well as the output's blocks,
 * the MIMIC-IV demo replicated 50x: runs 4.9, the whole output 5.3 bytes per event) or, without spills, from
 * 10 bytes per event; texts are stored as they are. When the runs share the output's filesystem,
 * each run chunk's space is given back as the output grows, so only a fifth is asked for. */
static int check_room(const store_writer *w, cf_err *err) {
    char dir[4096];
    const char *slash = strrchr(w->path, '/');
    if (!slash) snprintf(dir, sizeof dir, ".");
    else snprintf(dir, sizeof dir, "%.*s", slash == w->path ? 1 : (int)(slash - w->path), w->path);
    struct stat out_st, scratch_st;
    /* Events still in the buffer will be spilled like those before them. */
    uint64_t spilled = w->total - w->n;
    uint64_t events = w->n_runs && spilled ? w->run_bytes + (uint64_t)((double)w->run_bytes / (double)spilled * (double)w->n)
                                           : w->total * 10;
    uint64_t need = events + w->text_bytes + ((uint64_t)1 << 20);
    if (w->n_runs && stat(dir, &out_st) == 0 && stat(w->scratch_dir, &scratch_st) == 0 && out_st.st_dev == scratch_st.st_dev)
        need = events / 5 + w->text_bytes + ((uint64_t)1 << 20);
    return file_room_up_front(w->path, need, "the store", NULL, NULL, err);
}

int store_writer_finish(store_writer *w, cf_err *err) {
    int rc = CF_OK;
    atomic_file out;
    int out_open = 0;
    uint32_t *order = NULL, *remap = NULL;
    merge_out m;
    memset(&m, 0, sizeof m);
    store_header *h = calloc(1, STORE_HEADER_SIZE);
    if (!h) {
        rc = cf_fail(err, CF_EINTERNAL, "out of memory");
        goto done;
    }
    if ((rc = flush_text(w, err))) goto done;
    if ((rc = spill_wait(w, err))) goto done;

    /* Final code order: sorted by string, so readers can binary-search codes. */
    size_t nc = w->codes.count;
    order = malloc((nc ? nc : 1) * sizeof *order);
    remap = malloc((nc ? nc : 1) * sizeof *remap);
    m.code_count = calloc(nc ? nc : 1, sizeof *m.code_count);
    if (!order || !remap || !m.code_count) {
        rc = cf_fail(err, CF_EINTERNAL, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < nc; i++) order[i] = (uint32_t)i;
    sort_ctx = &w->codes;
    qsort(order, nc, sizeof *order, cmp_code_ids);
    for (size_t i = 0; i < nc; i++) remap[order[i]] = (uint32_t)i;
    m.remap = remap;
    m.first_time = m.last_time = TIME_NULL;
    m.text_new = calloc(w->n_texts + 1, sizeof *m.text_new);
    m.text_old = calloc(w->n_texts + 1, sizeof *m.text_old);
    if (!m.text_new || !m.text_old) {
        rc = cf_fail(err, CF_EINTERNAL, "out of memory");
        goto done;
    }

    if ((rc = check_room(w, err))) goto done;
    if ((rc = atomic_file_open(&out, w->path, err))) goto done;
    out_open = 1;

    uint64_t N = w->total;
    uint64_t pos = STORE_HEADER_SIZE;
    int cols_rc = block_cols_alloc(&m.blk);
    for (size_t i = 0; i < ENCODERS; i++) {
        cols_rc |= block_cols_alloc(&m.slot[i].cols);
        if (!(m.slot[i].ctx = store_block_ctx_new((uint32_t)w->sources.count, STORE_ZSTD_LEVEL, w->version))) cols_rc = CF_EINTERNAL;
    }
    m.summary = calloc(3 + w->sources.count, sizeof *m.summary);
    if (cols_rc || !m.summary ||
        section_begin(&m.data, out.fd, &h->sections[h->n_sections++], SEC_EVENT_DATA, pos, COLUMN_BUF)) {
        rc = cf_fail(err, CF_EINTERNAL, "out of memory");
        goto done;
    }
    if ((rc = merge_events(w, &m, err))) goto done;
    if ((rc = flush_block(&m, err))) goto done;
    if ((rc = encode_wait(&m, err))) goto done;
    if ((rc = section_end(&m.data, err))) goto done;
    pos = align_up(pos + m.data.sec->size);
    if (m.written != N) {
        rc = cf_fail(err, CF_EINTERNAL, "merge wrote %llu of %llu events",
                     (unsigned long long)m.written, (unsigned long long)N);
        goto done;
    }
    if ((rc = write_section(out.fd, h, SEC_EVENT_BLOCKS, m.blocks ? (void *)m.blocks : (void *)"",
                            m.n_blocks * sizeof *m.blocks, &pos, err)))
        goto done;
    if ((rc = write_section(out.fd, h, SEC_SUMMARY, m.summary, (3 + w->sources.count) * 8, &pos, err))) goto done;

    /* Subject index. */
    if (m.subj_start) m.subj_start[m.n_subj] = N;
    uint64_t zero = 0;
    if ((rc = write_section(out.fd, h, SEC_SUBJECT_ID, m.subj_id, m.n_subj * 8, &pos, err))) goto done;
    if ((rc = write_section(out.fd, h, SEC_SUBJECT_START, m.subj_start ? (void *)m.subj_start : (void *)&zero,
                            (m.n_subj + 1) * 8, &pos, err)))
        goto done;
    /* Codes: sorted strings, counts, descriptions; texts; provenance sources; subject keys. */
    if ((rc = write_string_table(out.fd, h, SEC_CODE_OFFSET, SEC_CODE_HEAP, &w->codes, order, &pos, err))) goto done;
    if ((rc = write_section(out.fd, h, SEC_CODE_COUNT, m.code_count, nc * 8, &pos, err))) goto done;
    if ((rc = write_code_descs(w, out.fd, h, order, nc, &pos, err))) goto done;
    if ((rc = write_texts(w, &m, out.fd, h, &pos, err))) goto done;
    if ((rc = write_string_table(out.fd, h, SEC_SOURCE_OFFSET, SEC_SOURCE_HEAP, &w->sources, NULL, &pos, err))) goto done;
    if (w->n_keys && (rc = write_subject_keys(w, &m, out.fd, h, &pos, err))) goto done;
    const char *meta = w->meta ? w->meta : "{}";
    if ((rc = write_section(out.fd, h, SEC_META, meta, strlen(meta), &pos, err))) goto done;

    /* Header last, so a torn write can never look like a valid store. */
    memcpy(h->magic, STORE_MAGIC, 8);
    h->endian = STORE_ENDIAN_MARK;
    h->version = w->version;
    h->header_size = STORE_HEADER_SIZE;
    h->flags = w->flags;
    h->n_events = N;
    h->n_subjects = m.n_subj;
    h->n_codes = nc;
    h->n_texts = w->n_texts;
    h->n_sources = w->sources.count;
    h->first_time = m.first_time;
    h->last_time = m.last_time;
    assert(h->n_sections <= STORE_MAX_SECTIONS);
    crypto_generichash(h->header_hash, STORE_HASH_BYTES, (const unsigned char *)h,
                       offsetof(store_header, header_hash), NULL, 0);
    if ((rc = pwrite_all(out.fd, h, STORE_HEADER_SIZE, 0, "store output", err))) goto done;
    if (ftruncate(out.fd, (off_t)pos) != 0) {
        rc = cf_fail_errno(err, CF_EINTERNAL, "store output: truncate failed");
        goto done;
    }
    rc = atomic_file_commit(&out, err);
    out_open = 0;

done:
    encode_drain(&m);
    if (out_open) atomic_file_abort(&out);
    free(m.data.buf);
    block_cols_free(&m.blk);
    for (size_t i = 0; i < ENCODERS; i++) {
        block_cols_free(&m.slot[i].cols);
        store_block_ctx_free(m.slot[i].ctx);
    }
    free(m.blocks);
    free(m.summary);
    free(m.subj_id);
    free(m.subj_start);
    free(m.code_count);
    free(m.text_new);
    free(m.text_old);
    free(order);
    free(remap);
    free(h);
    writer_free(w);
    return rc;
}
