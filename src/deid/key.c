/* De-identification keys, pseudonyms and date shifts; see key.h. */
#include "deid/key.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "util/atomic_file.h"

#define KEY_MAGIC "clinfm-deid-key v1\n"

int deid_key_generate(const char *path, cf_err *err) {
    if (sodium_init() < 0) return cf_fail(err, CF_EINTERNAL, "libsodium failed to initialise");
    struct stat st;
    if (stat(path, &st) == 0)
        return cf_fail(err, CF_EINPUT, "%s: already exists; refusing to overwrite a key (data pseudonymised with it "
                       "could no longer be linked)", path);
    unsigned char key[DEID_KEY_BYTES];
    randombytes_buf(key, sizeof key);
    char text[sizeof KEY_MAGIC + 2 * DEID_KEY_BYTES + 2];
    size_t n = strlen(KEY_MAGIC);
    memcpy(text, KEY_MAGIC, n);
    sodium_bin2hex(text + n, 2 * DEID_KEY_BYTES + 1, key, sizeof key);
    n += 2 * DEID_KEY_BYTES;
    text[n++] = '\n';
    sodium_memzero(key, sizeof key);
    atomic_file f;
    int rc = atomic_file_open(&f, path, err);
    if (rc) return rc;
    if (fchmod(f.fd, 0600) != 0) {
        atomic_file_abort(&f);
        return cf_fail_errno(err, CF_EINTERNAL, "%s: cannot restrict permissions", path);
    }
    rc = write_all(f.fd, text, n, path, err);
    sodium_memzero(text, sizeof text);
    if (rc) {
        atomic_file_abort(&f);
        return rc;
    }
    return atomic_file_commit(&f, err);
}

int deid_key_load(const char *path, unsigned char key[DEID_KEY_BYTES], cf_err *err) {
    if (sodium_init() < 0) return cf_fail(err, CF_EINTERNAL, "libsodium failed to initialise");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return cf_fail_errno(err, CF_EINPUT, "%s: cannot open the key file (make one with `clinfm keygen`)", path);
    char text[256];
    ssize_t n = read(fd, text, sizeof text - 1);
    close(fd);
    if (n < 0) return cf_fail_errno(err, CF_EINPUT, "%s: cannot read the key file", path);
    text[n] = '\0';
    size_t ml = strlen(KEY_MAGIC);
    const char *hex_end = NULL;
    size_t bin_len = 0;
    int ok = (size_t)n >= ml + 2 * DEID_KEY_BYTES && memcmp(text, KEY_MAGIC, ml) == 0 &&
             sodium_hex2bin(key, DEID_KEY_BYTES, text + ml, 2 * DEID_KEY_BYTES, NULL, &bin_len, &hex_end) == 0 &&
             bin_len == DEID_KEY_BYTES && (*hex_end == '\n' || *hex_end == '\0');
    sodium_memzero(text, sizeof text);
    if (!ok) {
        sodium_memzero(key, DEID_KEY_BYTES);
        return cf_fail(err, CF_EINPUT, "%s: not a clinfm key file (expected the line 'clinfm-deid-key v1' and 64 hex "
                       "digits, as `clinfm keygen` writes)", path);
    }
    return CF_OK;
}

void deid_subkey(const unsigned char key[DEID_KEY_BYTES], enum deid_subkey which, unsigned char out[DEID_KEY_BYTES]) {
    crypto_kdf_derive_from_key(out, DEID_KEY_BYTES, (uint64_t)which, "clinfmdi", key);
}

static uint64_t keyed_u64(const unsigned char subkey[DEID_KEY_BYTES], int64_t id) {
    unsigned char msg[8], h[8];
    for (int i = 0; i < 8; i++) msg[i] = (unsigned char)((uint64_t)id >> (8 * i));
    crypto_generichash(h, sizeof h, msg, sizeof msg, subkey, DEID_KEY_BYTES);
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v = v << 8 | h[i];
    return v;
}

int64_t deid_pseudonym(const unsigned char subkey[DEID_KEY_BYTES], int64_t subject_id) {
    return (int64_t)(keyed_u64(subkey, subject_id) & (uint64_t)INT64_MAX);
}

int64_t deid_pseudonym_n(const unsigned char subkey[DEID_KEY_BYTES], int64_t subject_id, uint32_t n) {
    if (!n) return deid_pseudonym(subkey, subject_id);
    unsigned char msg[12], h[8];
    for (int i = 0; i < 8; i++) msg[i] = (unsigned char)((uint64_t)subject_id >> (8 * i));
    for (int i = 0; i < 4; i++) msg[8 + i] = (unsigned char)(n >> (8 * i));
    crypto_generichash(h, sizeof h, msg, sizeof msg, subkey, DEID_KEY_BYTES);
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v = v << 8 | h[i];
    return (int64_t)(v & (uint64_t)INT64_MAX);
}

int deid_shift_days(const unsigned char subkey[DEID_KEY_BYTES], int64_t subject_id) {
    int k = (int)(keyed_u64(subkey, subject_id) % 104); /* 0..103 */
    int weeks = k < 52 ? -(k + 1) : k - 51;             /* -52..-1, 1..52 */
    return weeks * 7;
}
