/* On-disk layout of the event store, shared by the writer and the reader (internal to src/store).
 * See store.h for the meaning of each section. */
#ifndef CLINFM_STORE_FORMAT_H
#define CLINFM_STORE_FORMAT_H

#include <stdint.h>

#define STORE_MAGIC "CLINFMEV"
#define STORE_ENDIAN_MARK 0x01020304u
#define STORE_HEADER_SIZE 4096
#define STORE_ALIGN 64
#define STORE_HASH_BYTES 32

enum store_section_kind {
    SEC_EVENT_TIME = 1,
    SEC_EVENT_CODE,
    SEC_EVENT_NUMERIC,
    SEC_EVENT_TEXT,
    SEC_EVENT_PROV,
    SEC_SUBJECT_ID,
    SEC_SUBJECT_START,
    SEC_CODE_OFFSET,
    SEC_CODE_HEAP,
    SEC_CODE_COUNT,
    SEC_CODE_DESC_OFFSET,
    SEC_CODE_DESC_HEAP,
    SEC_TEXT_OFFSET,
    SEC_TEXT_HEAP,
    SEC_SOURCE_OFFSET,
    SEC_SOURCE_HEAP,
    SEC_SUBJECT_KEY_OFFSET,
    SEC_SUBJECT_KEY_HEAP,
    SEC_META,
    /* Version 2: the five event columns above are replaced by compressed blocks, and the counts
     * inspect needs are precomputed. */
    SEC_EVENT_BLOCKS,   /* store_block [n_blocks]: where each block of events lies in EVENT_DATA */
    SEC_EVENT_DATA,     /* one zstd frame per block (content checksum on) */
    SEC_SUMMARY,        /* uint64 [3 + K]: static, numeric, text events, then events per source */
    SEC_COUNT_ /* one past the last kind */
};

/* The header's section table has room for this many entries in every version (version 1 wrote
 * 19, version 2 writes 17), so the header layout, and its checksum's place, never move. */
#define STORE_MAX_SECTIONS 20

/* Version 2 event blocks: STORE_BLOCK_EVENTS events each (the last may hold fewer). A block
 * decompresses to six byte-plane-shuffled streams, one after the other:
 *   time    8 planes  zigzag(time[i] - time[i-1]), time[-1] = 0 at the block start (wrapping)
 *   code    4 planes  the code id
 *   numeric 4 planes  the float's bits (NaN kept bit for bit)
 *   text    8 planes  0 when no text, else zigzag(text[i] - last text id in the block) + 1
 *   source  2 planes  the provenance source id
 *   row     8 planes  zigzag(row[i] - last row of the same source in the block), 0 at its start
 * Plane p of a stream of width w holds byte p of every value (little-endian), so the high bytes
 * that small values leave zero compress to almost nothing. */
#define STORE_BLOCK_EVENTS 65536u
#define STORE_BLOCK_BYTES_PER_EVENT 34u

typedef struct {
    uint64_t offset;   /* into the EVENT_DATA section */
    uint64_t size;     /* compressed bytes */
    uint64_t n_events;
} store_block;

typedef struct {
    uint32_t kind;
    uint32_t reserved;
    uint64_t offset;
    uint64_t size;
    uint8_t hash[STORE_HASH_BYTES]; /* BLAKE2b-256 of the section's bytes */
} store_section;                    /* 56 bytes */

typedef struct {
    char magic[8];
    uint32_t endian;
    uint32_t version;
    uint32_t header_size;
    uint32_t flags;
    uint64_t n_events, n_subjects, n_codes, n_texts, n_sources;
    int64_t first_time, last_time;
    uint32_t n_sections;
    uint32_t reserved;
    store_section sections[STORE_MAX_SECTIONS];
    uint8_t header_hash[STORE_HASH_BYTES]; /* BLAKE2b-256 of all bytes before this field */
} store_header;

_Static_assert(sizeof(store_section) == 56, "section entry layout");
_Static_assert(sizeof(store_header) <= STORE_HEADER_SIZE, "header fits its block");

static inline const char *store_section_name(uint32_t kind) {
    static const char *names[] = {"?", "event_time", "event_code", "event_numeric", "event_text",
        "event_prov", "subject_id", "subject_start", "code_offset", "code_heap", "code_count",
        "code_desc_offset", "code_desc_heap", "text_offset", "text_heap", "source_offset",
        "source_heap", "subject_key_offset", "subject_key_heap", "meta", "event_blocks", "event_data",
        "summary"};
    return kind < SEC_COUNT_ ? names[kind] : "?";
}

#endif
