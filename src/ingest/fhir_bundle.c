/* Streaming over a Bundle's text: each entry is looked at on its own.
 *
 * Why: over half of a Synthea bundle's bytes are Claim and ExplanationOfBenefit resources, which
 * clinfm does not map. Building cJSON trees for them and throwing them away was the largest cost
 * of ingestion. Here the root object is walked with a validating scanner (fhir_json_skip); for
 * each Bundle.entry element the resource's "resourceType" is peeked at; entries of a type with no
 * mapping are validated and counted as filtered without a tree, the others are parsed by cJSON
 * one entry at a time (the arena is rewound after each), so the bundle's tree never exists whole.
 *
 * The whole text is still checked to be valid JSON: a syntax error anywhere rejects the bundle,
 * and the entries already mapped from it are taken back, exactly as when one cJSON parse of the
 * whole document fails. Layouts the walk does not handle simply (a root that is not a Bundle,
 * "entry" before "resourceType", escaped keys) go through the whole-document path. */
#include "ingest/fhir_internal.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* Reads a key (no escapes) at s[*i] == '"', then the ':' after it. Sets key/klen. Returns 0, 1
 * for a key with escapes (caller falls back), -1 on a syntax error. */
static int read_key(const char *s, size_t len, size_t *i, const char **key, size_t *klen) {
    size_t p = *i;
    if (p >= len || s[p] != '"') return -1;
    const char *q = memchr(s + p + 1, '"', len - p - 1);
    if (!q) return -1;
    if (memchr(s + p + 1, '\\', (size_t)(q - (s + p + 1)))) return 1;
    *key = s + p + 1;
    *klen = (size_t)(q - (s + p + 1));
    p = (size_t)(q - s) + 1;
    while (p < len && (s[p] == ' ' || s[p] == '\t' || s[p] == '\n' || s[p] == '\r')) p++;
    if (p >= len || s[p] != ':') return -1;
    p++;
    while (p < len && (s[p] == ' ' || s[p] == '\t' || s[p] == '\n' || s[p] == '\r')) p++;
    *i = p;
    return 0;
}

static int key_is(const char *k, size_t kl, const char *lit) {
    return kl == strlen(lit) && !memcmp(k, lit, kl);
}

/* A plain string value at s[i] (no escapes): sets v/vl and returns 0, else -1. */
static int plain_string(const char *s, size_t len, size_t i, const char **v, size_t *vl) {
    if (i >= len || s[i] != '"') return -1;
    const char *q = memchr(s + i + 1, '"', len - i - 1);
    if (!q || memchr(s + i + 1, '\\', (size_t)(q - (s + i + 1)))) return -1;
    *v = s + i + 1;
    *vl = (size_t)(q - (s + i + 1));
    return 0;
}

/* The resource type of the entry object at s[i] == '{', peeked at without building anything:
 * -2 when unknown (no plain resourceType, a syntax problem, escapes: let cJSON decide), else
 * the type index (-1 for names that are not FHIR types). */
static int peek_type(const char *s, size_t len, size_t i) {
    const char *why, *k, *v;
    size_t kl, vl;
    i = fhir_skip_ws(s, len, i + 1);
    while (i < len && s[i] == '"') {
        if (read_key(s, len, &i, &k, &kl)) return -2;
        if (key_is(k, kl, "resource")) {
            if (i >= len || s[i] != '{') return -2;
            i = fhir_skip_ws(s, len, i + 1);
            while (i < len && s[i] == '"') {
                if (read_key(s, len, &i, &k, &kl)) return -2;
                if (key_is(k, kl, "resourceType"))
                    return plain_string(s, len, i, &v, &vl) ? -2 : fhir_type_index(v, vl);
                if (fhir_json_skip(s, len, &i, &why)) return -2;
                i = fhir_skip_ws(s, len, i);
                if (i >= len || s[i] != ',') return -2;
                i = fhir_skip_ws(s, len, i + 1);
            }
            return -2;
        }
        if (fhir_json_skip(s, len, &i, &why)) return -2;
        i = fhir_skip_ws(s, len, i);
        if (i >= len || s[i] != ',') return -2;
        i = fhir_skip_ws(s, len, i + 1);
    }
    return -2;
}

/* Takes back everything a failed bundle added and records one rejection for it. */
static int reject_bundle(fhir_batch *b, size_t n_res, size_t n_ev, size_t heap_len,
                         const char *file, const char *why, size_t off) {
    char loc[1024];
    b->n_res = n_res;
    b->n_ev = n_ev;
    b->heap.len = heap_len;
    snprintf(loc, sizeof loc, "%s (near byte %zu)", file, off);
    return fhir_batch_reject(b, -1, "Bundle", 1, why, loc);
}

static int whole_document(fhir_batch *b, const char *file, const char *data, size_t len,
                          fhir_arena *a, size_t n_res, size_t n_ev, size_t heap_len) {
    const char *why;
    size_t off;
    b->n_res = n_res;
    b->n_ev = n_ev;
    b->heap.len = heap_len;
    fhir_arena_mark m = fhir_arena_get_mark(a);
    cJSON *root = fhir_json_parse(a, data, len, &why, &off);
    int rc = root ? fhir_map_bundle(b, file, root)
                  : reject_bundle(b, n_res, n_ev, heap_len, file, why, off);
    fhir_arena_release(a, m);
    return rc;
}

int fhir_map_bundle_text(fhir_batch *b, const char *file, const char *s, size_t len,
                         fhir_arena *a, size_t tree_limit) {
    const size_t n_res = b->n_res, n_ev = b->n_ev, heap_len = b->heap.len;
    const char *why = "invalid JSON", *k, *v;
    size_t kl, vl, i = 0;
    int is_bundle = 0, seen_type = 0, seen_entry = 0, rc = 0;
    fhir_arena_begin(a, tree_limit);
    if (len >= 3 && !memcmp(s, "\xEF\xBB\xBF", 3)) i = 3; /* UTF-8 byte-order mark */
    i = fhir_skip_ws(s, len, i);
    if (i >= len || s[i] != '{') goto fallback;
    i = fhir_skip_ws(s, len, i + 1);
    if (i < len && s[i] == '}') goto fallback;
    for (;;) {
        int kr = read_key(s, len, &i, &k, &kl);
        if (kr) goto fallback; /* escapes or a syntax error: cJSON will say which */
        /* duplicate keys: cJSON keeps the first; leave such oddities to it */
        if (key_is(k, kl, "resourceType")) {
            if (seen_type++ || plain_string(s, len, i, &v, &vl) || vl != 6 || memcmp(v, "Bundle", 6))
                goto fallback;
            is_bundle = 1;
        }
        if (key_is(k, kl, "entry")) {
            if (!is_bundle || seen_entry++ || i >= len || s[i] != '[') goto fallback;
            /* the entries, one at a time */
            uint64_t row = 0;
            i = fhir_skip_ws(s, len, i + 1);
            if (i < len && s[i] == ']') {
                i++;
            } else {
                for (;;) {
                    row++;
                    size_t e0 = i;
                    int t = i < len && s[i] == '{' ? peek_type(s, len, i) : -2;
                    if (t >= 0 && !fhir_type_mapped(t)) {
                        if (fhir_json_skip(s, len, &i, &why)) goto bad;
                        if (fhir_map_filtered(b, t, row)) goto oom;
                    } else if (i < len && s[i] != '{') {
                        /* not an object: no resource to count, as in the tree path */
                        if (fhir_json_skip(s, len, &i, &why)) goto bad;
                    } else {
                        fhir_arena_mark m = fhir_arena_get_mark(a);
                        size_t used = 0, off = 0;
                        cJSON *e = fhir_json_parse_prefix(a, s + e0, len - e0, &used, &why, &off);
                        if (!e) {
                            fhir_arena_release(a, m);
                            i = e0 + off;
                            goto bad;
                        }
                        rc = fhir_map_entry(b, file, row, e);
                        fhir_arena_release(a, m);
                        if (rc) goto oom;
                        i = e0 + used;
                    }
                    i = fhir_skip_ws(s, len, i);
                    if (i < len && s[i] == ',') {
                        i = fhir_skip_ws(s, len, i + 1);
                        continue;
                    }
                    if (i < len && s[i] == ']') {
                        i++;
                        break;
                    }
                    why = "invalid JSON";
                    goto bad;
                }
            }
        } else if (fhir_json_skip(s, len, &i, &why)) {
            goto bad;
        }
        i = fhir_skip_ws(s, len, i);
        if (i < len && s[i] == ',') {
            i = fhir_skip_ws(s, len, i + 1);
            continue;
        }
        if (i < len && s[i] == '}') {
            i++;
            break;
        }
        why = "invalid JSON";
        goto bad;
    }
    if (!is_bundle) goto fallback; /* a single resource (or no resourceType at all) */
    if (fhir_skip_ws(s, len, i) != len) {
        why = "invalid JSON (content after the value)";
        i = fhir_skip_ws(s, len, i);
        goto bad;
    }
    fhir_arena_end(a);
    return 0;
fallback:
    rc = whole_document(b, file, s, len, a, n_res, n_ev, heap_len);
    fhir_arena_end(a);
    return rc;
bad:
    rc = reject_bundle(b, n_res, n_ev, heap_len, file, why, i);
    fhir_arena_end(a);
    return rc;
oom:
    fhir_arena_end(a);
    return -1;
}
