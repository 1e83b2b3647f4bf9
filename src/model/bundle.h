/* The model bundle: one directory that is a trained model on disk, and the one module that
 * reads and writes it. `clinfm train` creates it, `clinfm eval` adds task heads to it, `clinfm
 * serve` and every model-backed predictor open it through bundle_open. It is the unit that
 * governance signs, approves and serves.
 *
 *   MODEL/manifest.json       format, version, producer, and per part its size and BLAKE2b-256
 *   MODEL/checkpoint.bin      the GPT checkpoint (model/gpt.h)
 *   MODEL/vocab.bin           the vocabulary it was trained with (timeline/vocab.h)
 *   MODEL/train.json          the training summary: configuration, losses, throughput
 *   MODEL/split.json          the training split's fingerprint: the store it was trained on
 *                             (BLAKE2b-256 of the store's header, which holds every section's
 *                             checksum), its subjects, events, de-identification and time range,
 *                             the split key's id and fractions, subjects per split
 *   MODEL/split_subjects.bin  keyed hashes (under the split key) of every train and tuning
 *                             subject: of its id, and of its record print (timeline/split.h),
 *                             so an evaluation can refuse held-out rows of training patients
 *                             even in another copy of the data
 *   MODEL/heads/<task>.json   task heads (model/head.h), written by `clinfm eval --model`
 *
 * Heads belong to one checkpoint: committing a new checkpoint (training on, or a resumed run)
 * removes the heads fitted on the previous one, so the service never scores with a head and
 * weights that were never evaluated together.
 *
 * The manifest is the commit point. A part is written atomically to its final name, then the
 * manifest is rewritten atomically with its checksum, under an exclusive lock on the directory
 * (two evaluations adding heads do not lose one). bundle_open checks every listed part against
 * the manifest and reads only listed parts, so a part left by an interrupted write is refused
 * (the checkpoint: "`clinfm train --resume` repairs it") or, if unlisted, ignored.
 *
 * Token shards are not part of the bundle: they are the patients' timelines, and a bundle is
 * meant to travel to the service. They go to MODEL.shards/ beside it by default.
 *
 * The old layout (a checkpoint file MODEL with MODEL.vocab, MODEL.json and MODEL.heads/ beside
 * it) opens read-only as a legacy bundle: no checksums, no split fingerprint (evaluations then
 * say the overlap with training patients could not be checked), heads still readable and
 * writable. Training cannot resume one in place; it says to retrain into a bundle. */
#ifndef CLINFM_MODEL_BUNDLE_H
#define CLINFM_MODEL_BUNDLE_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"
#include "timeline/split.h"
#include "util/err.h"

#define BUNDLE_FORMAT "clinfm model bundle"
#define BUNDLE_VERSION 1

#define BUNDLE_CHECKPOINT "checkpoint.bin"
#define BUNDLE_VOCAB "vocab.bin"
#define BUNDLE_SUMMARY "train.json"
#define BUNDLE_SPLIT "split.json"
#define BUNDLE_SPLIT_SUBJECTS "split_subjects.bin"

typedef struct {
    char *path;       /* the bundle directory (legacy: the checkpoint file) */
    int legacy;       /* 1: the old layout of sibling files */
    void *manifest;   /* cJSON object of the parts (NULL for legacy) */
    int created;      /* bundle_create made the directory */
} model_bundle;

/* Opens an existing bundle (or a legacy model) for reading, checking every part listed in the
 * manifest against its size and checksum. */
int bundle_open(model_bundle *b, const char *path, cf_err *err);
/* Opens a bundle for training: creates the directory when missing; an existing bundle is kept
 * when resume is set and started afresh otherwise (its parts unlisted and its heads removed,
 * since they belong to the model being replaced). A legacy model at path is an error. A
 * checkpoint that does not match the manifest is accepted with resume (the step after it was
 * saved was interrupted; gpt_load checks the checkpoint itself). */
int bundle_create(model_bundle *b, const char *path, int resume, cf_err *err);
void bundle_close(model_bundle *b);
/* Closes a bundle whose training failed before it held a checkpoint: when bundle_create made
 * the directory, its parts and the directory are removed, so a failed run leaves nothing. */
void bundle_abandon(model_bundle *b);

/* The file of a part ("checkpoint.bin", "heads/x.json") into buf. Needs only b->path and
 * b->legacy, so a process that reads what another writes (an MPI rank) may fill just those. */
int bundle_part_path(const model_bundle *b, const char *part, char *buf, size_t cap, cf_err *err);
/* The file of task task_id's head. */
int bundle_head_path(const model_bundle *b, const char *task_id, char *buf, size_t cap, cf_err *err);
/* 1 when the manifest lists part (legacy: when its file exists). */
int bundle_has(const model_bundle *b, const char *part);
/* The part's BLAKE2b-256 as hex from the manifest, or NULL (legacy, or not listed). */
const char *bundle_part_hash(const model_bundle *b, const char *part);

/* Records a part that was written (atomically) to its bundle_part_path: its checksum goes into
 * the manifest, which is rewritten atomically. */
int bundle_commit(model_bundle *b, const char *part, cf_err *err);
/* Writes data as part, atomically, and commits it. */
int bundle_put(model_bundle *b, const char *part, const void *data, size_t n, cf_err *err);
/* Copies the file src into the bundle as part and commits it. */
int bundle_put_file(model_bundle *b, const char *part, const char *src, cf_err *err);

/* ---------------------------------------------------------------- the training split */

typedef struct {
    int present;                     /* 0: the bundle records no split (legacy, or never written) */
    char store_hash[65];             /* hex BLAKE2b-256 of the training store's header */
    uint64_t store_subjects, store_events;
    int64_t first_time, last_time;   /* the training store's time range (TIME_NULL if none) */
    int deidentified;
    uint8_t key_id[SPLIT_KEY_ID_BYTES];
    uint32_t train_ppm, tuning_ppm;
    int default_key;
    uint64_t subjects[SPLIT_COUNT];  /* subjects of the store per split */
    uint64_t *id_hash;               /* (n_id) sorted: split_subject_hash of train and tuning ids */
    size_t n_id;
    uint64_t *print_hash;            /* (n_print) sorted: split_record_hash of their records */
    size_t n_print;
    uint64_t unprinted;              /* train and tuning subjects too short for a print */
} bundle_split;

/* Computes the training split's fingerprint of store s under c and writes split.json and
 * split_subjects.bin into the bundle. */
int bundle_record_split(model_bundle *b, const store *s, const split_config *c, cf_err *err);
/* Reads it back (present = 0 when the bundle has none). */
int bundle_load_split(const model_bundle *b, bundle_split *out, cf_err *err);
void bundle_split_free(bundle_split *sp);
/* 1 when the sorted hash list holds h. */
int bundle_split_has(const uint64_t *sorted, size_t n, uint64_t h);

#endif
