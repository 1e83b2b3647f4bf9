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
    /* Versions 2 and 3: the five event columns above are replaced by encoded blocks, and the
     * counts inspect needs are precomputed. */
    SEC_EVENT_BLOCKS,   /* store_block [n_blocks]: where each block of events lies in EVENT_DATA */
    SEC_EVENT_DATA,     /* version 2: one zstd frame per block (content checksum on); version 3:
                         * bit-packed streams with a CRC-32 per block */
    SEC_SUMMARY,        /* uint64 [3 + K]: static, numeric, text events, then events per source */
    SEC_COUNT_ /* one past the last kind */
};

/* The header's section table has room for this many entries in every version (version 1 wrote
 * 19, versions 2 and 3 write 17), so the header layout, and its checksum's place, never move. */
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
/* Version 3 event blocks (written today; store_block3.c): the same six streams, each packed on
 * its own without a general-purpose compressor, in this order:
 *   u32 n_events, u32 0
 *   time     stream  time[i] - time[i-1] (wrapping), time[-1] = 0 at the block start
 *   code     stream  the code id
 *   numeric  stream  the float's bits (NaN kept bit for bit)
 *   text     stream  0 when no text, else zigzag(text[i] - last text id in the block) + 1
 *   source   stream  the provenance source id
 *   u64 row mode     0: row = the source's lowest row in the block + offset;
 *                    1: row = the source's previous row in the block (0 at first) + unzigzag(delta)
 *   row base stream  n_sources values: each source's lowest row in the block (mode 0), or zeros
 *   row      stream  the offsets (mode 0) or deltas (mode 1)
 *   u32 CRC-32 (zlib's polynomial) of every byte before it
 * A stream of m values (m = n_events, or n_sources for the row bases) is one of:
 *   FOR   u8 0, u8 w, u16 0, u32 e, u64 base, u64 mult; then m values of w bits (w 0..56 or 64),
 *         little-endian bit order, value i at bit i*w, followed by 8 zero bytes (w < 64; so an
 *         unpacker can read any value with one 8-byte load); then e u16 positions and e u64
 *         values. Value i = base + mult * packed[i] (wrapping), except at the e positions, where
 *         it is the listed value (exceptions: a rare wide value does not widen every value).
 *   DICT  (code, value and source streams only) u8 1, u8 0, u16 0, u32 d (1..16384), u64 0,
 *         u64 0; then a FOR stream of the d distinct values (sorted), then a FOR stream of m
 *         indices into them.
 * The writer picks per stream whatever is smallest (width, exceptions, divisor, dictionary for the
 * code and value streams; row mode 1 only when a quarter smaller), from the block's values
 * alone. Rows from the lowest row decode without a chain from event to event, hence the default. */
#define STORE_BLOCK_EVENTS 65536u
#define STORE_BLOCK_BYTES_PER_EVENT 34u

typedef struct {
    uint64_t offset;   /* into the EVENT_DATA section */
    uint64_t size;     /* encoded bytes */
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
