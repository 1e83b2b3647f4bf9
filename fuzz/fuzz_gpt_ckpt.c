/* Fuzz target: arbitrary bytes as a model checkpoint through gpt_load. When the last byte is
 * odd, the header's CRC is recomputed first, so mutations reach the config, directory and
 * tensor checks instead of stopping at the header CRC. A checkpoint that loads must describe a
 * valid model that can run a one-token forward pass. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <zlib.h>

#include "model/gpt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf) return 0;
    memcpy(buf, data, size);
    if (size >= 256 && (data[size - 1] & 1)) {
        uint32_t crc = (uint32_t)crc32(crc32(0L, Z_NULL, 0), buf, 252);
        for (int i = 0; i < 4; i++) buf[252 + i] = (uint8_t)(crc >> (8 * i));
    }
    int fd = memfd_create("ckpt", 0);
    if (fd < 0) abort();
    if (size && write(fd, buf, size) != (ssize_t)size) abort();
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    gpt_model m;
    cf_err err = {0};
    if (gpt_load(&m, path, NULL, NULL, &err) == CF_OK) {
        if (gpt_config_check(&m.config, &err) != CF_OK) abort();
        int tok = 0;
        if (m.config.max_seq_len >= 1 && gpt_forward(&m, &tok, &tok, 1, 1, 0, &err) != CF_OK) abort();
        gpt_free(&m);
    } else if (!err.msg[0]) {
        abort(); /* every refusal says why */
    }
    close(fd);
    free(buf);
    return 0;
}
