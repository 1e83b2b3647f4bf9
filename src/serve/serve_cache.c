/* The card cache (see serve_cache.h): a fixed array of entries, a chained hash table over it
 * and a doubly linked recency list, all by index, allocated once at start, so a lookup or an
 * insert never allocates. */
#include "serve/serve_cache.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "serve/serve_ref.h"

#define NIL UINT32_MAX

typedef struct {
    serve_cache_key key;
    serve_score score;
    uint32_t prev, next; /* recency list: prev is more recent */
    uint32_t chain;      /* next entry in the same hash bucket */
} entry;

struct serve_cache {
    pthread_mutex_t lock;
    entry *e;
    uint32_t *bucket;    /* (n_buckets) first entry of each bucket */
    uint32_t n_buckets;  /* a power of two */
    uint32_t cap, used;
    uint32_t head, tail; /* most and least recently used */
};

int serve_cache_new(serve_cache **out, size_t capacity, cf_err *err) {
    *out = NULL;
    if (capacity < 1 || capacity > 100000000)
        return cf_fail(err, CF_EINPUT, "card cache: %zu entries, expected 1 .. 100000000", capacity);
    serve_cache *c = calloc(1, sizeof *c);
    uint32_t nb = 1;
    while (nb < 2 * capacity) nb *= 2;
    if (c) {
        c->e = calloc(capacity, sizeof *c->e);
        c->bucket = malloc((size_t)nb * sizeof *c->bucket);
    }
    if (!c || !c->e || !c->bucket) {
        if (c) {
            free(c->e);
            free(c->bucket);
        }
        free(c);
        return cf_fail(err, CF_EINTERNAL, "out of memory for a card cache of %zu entries", capacity);
    }
    for (uint32_t i = 0; i < nb; i++) c->bucket[i] = NIL;
    c->n_buckets = nb;
    c->cap = (uint32_t)capacity;
    c->head = c->tail = NIL;
    pthread_mutex_init(&c->lock, NULL);
    *out = c;
    return CF_OK;
}

void serve_cache_free(serve_cache *c) {
    if (!c) return;
    pthread_mutex_destroy(&c->lock);
    CF_FREE_ALL(c->e, c->bucket, c);
}

static void put_u64(crypto_generichash_state *st, uint64_t v) {
    unsigned char b[8];
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)(v >> (8 * i));
    crypto_generichash_update(st, b, sizeof b);
}

/* A string with its length first, so two fields cannot run into each other. */
static void put_str(crypto_generichash_state *st, const char *s) {
    size_t n = s ? strlen(s) : 0;
    put_u64(st, n);
    if (n) crypto_generichash_update(st, (const unsigned char *)s, n);
}

uint64_t serve_cache_events_hash(const serve_patient *p) {
    int64_t pt = serve_patient_effective_time(p);
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, 8);
    for (size_t i = 0; i < p->n; i++) {
        /* the predictors' rule for "seen": static facts, and events at or before the time */
        if (p->time[i] != TIME_NULL && pt != TIME_NULL && p->time[i] > pt) continue;
        float v = p->value ? p->value[i] : NAN;
        uint32_t vb;
        if (isnan(v)) vb = 0x7fc00000u; /* one NaN for every "no value" */
        else memcpy(&vb, &v, sizeof vb);
        put_u64(&st, i);
        put_u64(&st, (uint64_t)p->time[i]);
        put_u64(&st, vb);
        put_str(&st, p->code[i]);
    }
    unsigned char h[8];
    crypto_generichash_final(&st, h, sizeof h);
    uint64_t out = 0;
    for (int i = 0; i < 8; i++) out |= (uint64_t)h[i] << (8 * i);
    return out;
}

void serve_cache_key_make(serve_cache_key *key, const serve_predictor *pred, const char *task_id,
                          const char *patient_id, const serve_patient *p) {
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, sizeof key->d);
    put_u64(&st, pred->checksum);
    put_str(&st, pred->model_name);
    put_str(&st, pred->model_version);
    put_str(&st, task_id);
    put_str(&st, patient_id);
    put_u64(&st, (uint64_t)serve_patient_effective_time(p));
    put_u64(&st, serve_cache_events_hash(p));
    crypto_generichash_final(&st, key->d, sizeof key->d);
}

static uint32_t bucket_of(const serve_cache *c, const serve_cache_key *k) {
    uint32_t h;
    memcpy(&h, k->d, sizeof h);
    return h & (c->n_buckets - 1);
}

static uint32_t find(const serve_cache *c, const serve_cache_key *k) {
    for (uint32_t i = c->bucket[bucket_of(c, k)]; i != NIL; i = c->e[i].chain)
        if (!memcmp(c->e[i].key.d, k->d, sizeof k->d)) return i;
    return NIL;
}

static void unlink_lru(serve_cache *c, uint32_t i) {
    entry *x = &c->e[i];
    if (x->prev != NIL) c->e[x->prev].next = x->next;
    else c->head = x->next;
    if (x->next != NIL) c->e[x->next].prev = x->prev;
    else c->tail = x->prev;
    x->prev = x->next = NIL;
}

static void push_front(serve_cache *c, uint32_t i) {
    entry *x = &c->e[i];
    x->prev = NIL;
    x->next = c->head;
    if (c->head != NIL) c->e[c->head].prev = i;
    c->head = i;
    if (c->tail == NIL) c->tail = i;
}

static void unlink_bucket(serve_cache *c, uint32_t i) {
    uint32_t *pp = &c->bucket[bucket_of(c, &c->e[i].key)];
    while (*pp != i) pp = &c->e[*pp].chain;
    *pp = c->e[i].chain;
}

int serve_cache_get(serve_cache *c, const serve_cache_key *key, serve_score *out) {
    pthread_mutex_lock(&c->lock);
    uint32_t i = find(c, key);
    if (i != NIL) {
        *out = c->e[i].score;
        unlink_lru(c, i);
        push_front(c, i);
    }
    pthread_mutex_unlock(&c->lock);
    return i != NIL;
}

void serve_cache_put(serve_cache *c, const serve_cache_key *key, const serve_score *score) {
    pthread_mutex_lock(&c->lock);
    uint32_t i = find(c, key);
    if (i != NIL) {
        unlink_lru(c, i);
    } else {
        if (c->used < c->cap) {
            i = c->used++;
        } else { /* evict the least recently used */
            i = c->tail;
            unlink_lru(c, i);
            unlink_bucket(c, i);
        }
        c->e[i].key = *key;
        uint32_t b = bucket_of(c, key);
        c->e[i].chain = c->bucket[b];
        c->bucket[b] = i;
    }
    c->e[i].score = *score;
    push_front(c, i);
    pthread_mutex_unlock(&c->lock);
}

size_t serve_cache_size(serve_cache *c) {
    pthread_mutex_lock(&c->lock);
    size_t n = c->used;
    pthread_mutex_unlock(&c->lock);
    return n;
}
