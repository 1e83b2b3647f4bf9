/* Fuzz target for the vocabulary reader (vocab_parse).
 *
 * The file's BLAKE2b would stop almost every mutation at the checksum, so the target first
 * writes the correct hash into the input's header: the fuzzer then exercises the structural
 * checks behind it (sizes, string table, layout, cut points). Whatever parses must be
 * canonical: serialising it again gives the input bytes exactly (the writer picks the lowest
 * format version that holds the vocabulary, so a file whose version field says otherwise comes
 * back with another version: there the image must differ in that field and parse and serialise
 * to itself), every token's string finds that token, and the prefix builder stays inside the
 * vocabulary. Any disagreement aborts. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "timeline/timeline.h"
#include "timeline/vocab.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > (1u << 20)) return 0;
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf) return 0;
    memcpy(buf, data, size);
    if (size >= VOCAB_HEADER_BYTES) {
        crypto_generichash_state st;
        crypto_generichash_init(&st, NULL, 0, VOCAB_HASH_BYTES);
        crypto_generichash_update(&st, buf, 224);
        crypto_generichash_update(&st, buf + VOCAB_HEADER_BYTES, size - VOCAB_HEADER_BYTES);
        crypto_generichash_final(&st, buf + 224, VOCAB_HASH_BYTES);
    }
    vocab v;
    cf_err err = {0};
    if (vocab_parse(&v, buf, size, "fuzz", &err) == CF_OK) {
        uint8_t *img;
        size_t len;
        if (vocab_serialize(&v, &img, &len, &err) != CF_OK) abort();
        if (len != size || memcmp(img, buf, size) != 0) {
            if (len < 12 || memcmp(img + 8, buf + 8, 4) == 0) abort(); /* same version, other bytes */
            vocab again;
            uint8_t *img2;
            size_t len2;
            if (vocab_parse(&again, img, len, "fuzz (upgraded)", &err) != CF_OK) abort();
            if (vocab_serialize(&again, &img2, &len2, &err) != CF_OK) abort();
            if (len2 != len || memcmp(img2, img, len) != 0) abort();
            free(img2);
            vocab_free(&again);
        }
        free(img);
        for (uint32_t i = 0; i < v.n_tokens; i++)
            if (vocab_find(&v, vocab_token_str(&v, i)) != (int64_t)i) abort();
        uint32_t slots[VOCAB_MAX_SLOTS], pre[VOCAB_MAX_SLOTS + 2];
        for (uint32_t k = 0; k < v.n_slots; k++) slots[k] = v.slot_none[k];
        int64_t times[] = {TIME_NULL, 0, -INT64_C(5000000000000000), INT64_C(5000000000000000)};
        for (int a = 0; a < 4; a++)
            for (int b = 0; b < 4; b++) {
                uint32_t n = timeline_prefix(&v, slots, times[a], times[b], pre);
                if (n != v.n_slots + 2) abort();
                for (uint32_t j = 0; j < n; j++)
                    if (pre[j] >= v.n_tokens) abort();
            }
        vocab_free(&v);
    } else if (!err.msg[0]) {
        abort(); /* a refusal must say why */
    }
    free(buf);
    return 0;
}
