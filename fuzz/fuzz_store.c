/* Fuzz target for the event store reader (store_open, store_open_summary, store_verify), above
 * all the version 2 and 3 block decoders.
 *
 * The header's BLAKE2b would stop almost every mutation, so the target first writes the correct
 * hash into the input's header; the fuzzer then reaches the section table, the offset tables,
 * the block index and the blocks behind it (zstd frames, bit-packed streams). Whatever opens must
 * be safe to read in full: every event's ids are in range (store_open checks them for versions 2
 * and 3) and every subject's slice lies inside the events, and so is what a cursor hands out from
 * a summary-opened store. Any disagreement aborts; a crash or a sanitizer report fails. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <libdeflate.h>
#include <sodium.h>

#include "store/store.h"
#include "store/store_format.h"

/* A version 3 store's blocks carry a CRC-32 each, which would stop almost every mutation inside
 * them as the header's hash does: it is made right too (where the block table and the block lie
 * inside the input), so the fuzzer reaches the stream parser behind it. */
static void fix_block_crcs(uint8_t *buf, size_t size) {
    store_header h;
    memcpy(&h, buf, sizeof h);
    if (h.version != 3 || h.n_sections > STORE_MAX_SECTIONS) return;
    const store_section *blocks = NULL, *data = NULL;
    for (uint32_t i = 0; i < h.n_sections; i++) {
        if (h.sections[i].kind == SEC_EVENT_BLOCKS) blocks = &h.sections[i];
        if (h.sections[i].kind == SEC_EVENT_DATA) data = &h.sections[i];
    }
    if (!blocks || !data || blocks->offset > size || blocks->size > size - blocks->offset || data->offset > size ||
        data->size > size - data->offset)
        return;
    for (uint64_t b = 0; b < blocks->size / sizeof(store_block); b++) {
        store_block e;
        memcpy(&e, buf + blocks->offset + b * sizeof e, sizeof e);
        if (e.size < 4 || e.offset > data->size || e.size > data->size - e.offset) continue;
        uint8_t *p = buf + data->offset + e.offset;
        uint32_t crc = (uint32_t)libdeflate_crc32(0, p, (size_t)e.size - 4);
        memcpy(p + e.size - 4, &crc, 4);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > (1u << 20)) return 0;
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf) return 0;
    memcpy(buf, data, size);
    if (size >= STORE_HEADER_SIZE) fix_block_crcs(buf, size);
    if (size >= STORE_HEADER_SIZE && sodium_init() >= 0)
        crypto_generichash(buf + offsetof(store_header, header_hash), STORE_HASH_BYTES, buf,
                           offsetof(store_header, header_hash), NULL, 0);
    int fd = memfd_create("fuzz_store", MFD_CLOEXEC);
    if (fd < 0 || write(fd, buf, size) != (ssize_t)size) abort();
    free(buf);
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    store s;
    cf_err err = {0};
    if (store_open_summary(&s, path, &err) == CF_OK) {
        uint64_t total = 0;
        for (uint64_t k = 0; k < s.n_sources; k++) total += s.source_events[k];
        (void)total; /* any value: the counts are not checked against events here */
        /* The same events through a cursor, block by block: what it hands out is in range. */
        store_cursor *c;
        if (store_cursor_new(&c, &s, s.n_subjects % 2 ? STORE_CURSOR_READAHEAD : 0, &err) == CF_OK) {
            for (uint64_t k = 0; k < s.n_subjects; k++) {
                store_events ev;
                if (store_cursor_subject(c, k, &ev, &err) != CF_OK) break;
                for (uint64_t i = 0; i < ev.n; i++)
                    if (s.version != 1 && (ev.code[i] >= s.n_codes || ev.text[i] > s.n_texts)) abort();
            }
            store_cursor_free(c);
        }
        (void)store_verify(&s, &err);
        store_close(&s);
    }
    if (store_open(&s, path, &err) == CF_OK) {
        (void)store_verify(&s, &err);
        uint64_t sum = 0;
        for (uint64_t i = 0; i < s.n_events; i++) {
            if (s.code[i] >= s.n_codes && s.version != 1) abort();
            sum += (uint64_t)s.time[i] + s.prov[i] + s.text[i];
            if (s.version != 1) {
                sum += strlen(store_code_str(&s, s.code[i]));
                if (s.text[i]) {
                    size_t len;
                    sum += (uint64_t)store_text_str(&s, s.text[i], &len)[0] * !!len;
                }
            }
        }
        for (uint64_t j = 0; j < s.n_subjects; j++)
            if (s.subject_start[j] > s.subject_start[j + 1] || s.subject_start[j + 1] > s.n_events) abort();
        if (sum == 42) fputc(' ', stderr); /* keeps the reads */
        store_close(&s);
    }
    close(fd);
    return 0;
}
