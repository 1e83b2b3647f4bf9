/* Stable subject ids from strings; see ids.h. */
#include "util/ids.h"

#include <sodium.h>

int64_t subject_id_from_string(const char *s, size_t len) {
    unsigned char h[8];
    crypto_generichash(h, sizeof h, (const unsigned char *)s, len, NULL, 0);
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v = v << 8 | h[i];
    return (int64_t)(v & (uint64_t)INT64_MAX);
}
