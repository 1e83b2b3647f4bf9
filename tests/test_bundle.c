/* The model bundle (model/bundle.h) and the evaluation's refusal of training patients.
 *
 * Bundle: parts committed with checksums open again; a changed part is refused, naming it; an
 * unlisted file is ignored; a resume tolerates an interrupted checkpoint save but a fresh
 * bundle drops the old model's heads; a failed first run leaves nothing; the old layout opens
 * read-only and cannot be trained into; the training split's fingerprint reads back.
 *
 * Refusal: a model (random weights are enough: the check happens before any prediction) is
 * recorded as trained on store A under a split. Evaluating it on A's held-out rows is accepted.
 * Store B holds the same patients under other ids, every time shifted by whole weeks and their
 * names and birth dates changed, as another de-identification would: its held-out rows then hold
 * training patients, and the evaluation is refused (eval_model_predictors returns CF_EINPUT, the
 * message counts them), or with allow_overlap accepted and reported. On the code before this
 * check the evaluation on B went through silently. */
#include <sys/stat.h>

#include "check.h"
#include "eval/eval.h"
#include "model/bundle.h"
#include "model/gpt.h"
#include "store/store.h"
#include "tasks/task.h"
#include "timeline/vocab.h"

#define N_SUBJ 120
#define WEEK (7 * USEC_PER_DAY)

static char dir[600];

static uint64_t mix(uint64_t x) {
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

/* Fictional patients with visits and labs. other_ids: B's version (ids renamed, each subject's
 * times shifted by 1-52 whole weeks, another name and birth date). */
static int make_store(const char *path, int other_ids) {
    store_writer *w;
    cf_err err = {0};
    if (store_writer_open(&w, path, NULL, &err)) return -1;
    store_writer_source(w, "test");
    const char *codes[] = {"VISIT", "LAB//A", "LAB//B", "MEDS_BIRTH", "PHI//NAME", "GENDER//F"};
    int64_t cid[6];
    for (int k = 0; k < 6; k++) cid[k] = store_writer_code(w, codes[k], strlen(codes[k]));
    uint64_t row = 1;
    for (int i = 0; i < N_SUBJ; i++) {
        int64_t id = other_ids ? (int64_t)(mix((uint64_t)i + 99) & 0xffffffffff) : 5000 + i;
        int64_t shift = other_ids ? (int64_t)(1 + i % 52) * WEEK : 0;
        uint64_t r = mix((uint64_t)i);
        int64_t t = (int64_t)1.5e15 + (int64_t)(r % 1000000) * 1000000000LL + shift;
        store_writer_add(w, id, TIME_NULL, (uint32_t)cid[5], NAN, NULL, 0, 0, row++, &err);
        store_writer_add(w, id, TIME_NULL, (uint32_t)cid[4], NAN, other_ids ? "B" : "A", 1, 0, row++, &err);
        store_writer_add(w, id, t - (int64_t)9e14 - (other_ids ? USEC_PER_DAY : 0), (uint32_t)cid[3], NAN, NULL, 0, 0, row++, &err);
        for (int v = 0; v < 12; v++) {
            r = mix(r);
            t += (int64_t)(r % 1000) * 3600000000LL + 3600000000LL;
            store_writer_add(w, id, t, (uint32_t)cid[0], NAN, NULL, 0, 0, row++, &err);
            store_writer_add(w, id, t, (uint32_t)cid[1 + (r >> 20) % 2], (float)(r % 89), NULL, 0, 0, row++, &err);
        }
    }
    return store_writer_finish(w, &err) ? -1 : 0;
}

static int write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    fputs(text, f);
    return fclose(f);
}

static void test_parts_and_checksums(void) {
    char path[900], p[4400];
    snprintf(path, sizeof path, "%s/b1.model", dir);
    model_bundle b;
    cf_err err = {0};
    REQUIRE(bundle_create(&b, path, 0, &err) == CF_OK);
    CHECK(b.created);
    REQUIRE(bundle_put(&b, BUNDLE_VOCAB, "vocab", 5, &err) == CF_OK);
    REQUIRE(bundle_put(&b, BUNDLE_CHECKPOINT, "weights", 7, &err) == CF_OK);
    REQUIRE(bundle_put(&b, "heads/t1.json", "{}", 2, &err) == CF_OK);
    CHECK(bundle_has(&b, "heads/t1.json"));
    CHECK(!bundle_has(&b, "heads/t2.json"));
    bundle_close(&b);
    /* an unlisted file is ignored, a listed one is checked */
    snprintf(p, sizeof p, "%s/heads/stray.json", path);
    REQUIRE(write_file(p, "x") == 0);
    REQUIRE(bundle_open(&b, path, &err) == CF_OK);
    CHECK(!b.legacy);
    CHECK(!bundle_has(&b, "heads/stray.json"));
    const char *h = bundle_part_hash(&b, BUNDLE_CHECKPOINT);
    CHECK(h && strlen(h) == 64);
    bundle_close(&b);
    snprintf(p, sizeof p, "%s/vocab.bin", path);
    REQUIRE(write_file(p, "vocaB") == 0);
    CHECK(bundle_open(&b, path, &err) == CF_EINPUT);
    CHECK_CONTAINS(err.msg, "vocab.bin does not match its checksum");
    REQUIRE(write_file(p, "vocab") == 0);
    /* an interrupted checkpoint save: refused by readers, accepted by a resume */
    snprintf(p, sizeof p, "%s/checkpoint.bin", path);
    REQUIRE(write_file(p, "weights2") == 0);
    CHECK(bundle_open(&b, path, &err) == CF_EINPUT);
    CHECK_CONTAINS(err.msg, "--resume");
    REQUIRE(bundle_create(&b, path, 1, &err) == CF_OK);
    CHECK(bundle_has(&b, "heads/t1.json"));
    REQUIRE(bundle_commit(&b, BUNDLE_CHECKPOINT, &err) == CF_OK);
    /* new weights: the head fitted on the old ones is gone */
    CHECK(!bundle_has(&b, "heads/t1.json"));
    snprintf(p, sizeof p, "%s/heads/t1.json", path);
    CHECK(access(p, F_OK) != 0);
    REQUIRE(bundle_put(&b, "heads/t1.json", "{}", 2, &err) == CF_OK);
    bundle_close(&b);
    REQUIRE(bundle_open(&b, path, &err) == CF_OK);
    CHECK(bundle_has(&b, "heads/t1.json"));
    bundle_close(&b);
    /* a fresh run into the same directory: the old model's heads go */
    REQUIRE(bundle_create(&b, path, 0, &err) == CF_OK);
    CHECK(!bundle_has(&b, "heads/t1.json"));
    CHECK(!b.created);
    bundle_close(&b);
    CHECK(access(p, F_OK) != 0);
    /* part names never leave the directory */
    CHECK(bundle_part_path(&b, "../x", p, sizeof p, &err) == CF_EINPUT);
}

static void test_abandon_and_legacy(void) {
    char path[900], p[4400];
    snprintf(path, sizeof path, "%s/b2.model", dir);
    model_bundle b;
    cf_err err = {0};
    REQUIRE(bundle_create(&b, path, 0, &err) == CF_OK);
    REQUIRE(bundle_put(&b, BUNDLE_VOCAB, "v", 1, &err) == CF_OK);
    bundle_abandon(&b);
    CHECK(access(path, F_OK) != 0); /* a failed first run leaves nothing */
    /* the old layout: MODEL with MODEL.vocab and MODEL.heads/ beside it */
    snprintf(path, sizeof path, "%s/old.model", dir);
    REQUIRE(write_file(path, "weights") == 0);
    CHECK(bundle_open(&b, path, &err) == CF_EINPUT); /* no vocabulary beside it */
    snprintf(p, sizeof p, "%s.vocab", path);
    REQUIRE(write_file(p, "vocab") == 0);
    REQUIRE(bundle_open(&b, path, &err) == CF_OK);
    CHECK(b.legacy);
    REQUIRE(bundle_part_path(&b, BUNDLE_VOCAB, p, sizeof p, &err) == CF_OK);
    CHECK(strstr(p, "old.model.vocab") != NULL);
    REQUIRE(bundle_head_path(&b, "t", p, sizeof p, &err) == CF_OK);
    CHECK(strstr(p, "old.model.heads/t.json") != NULL);
    bundle_split bs;
    REQUIRE(bundle_load_split(&b, &bs, &err) == CF_OK);
    CHECK(!bs.present);
    bundle_close(&b);
    CHECK(bundle_create(&b, path, 1, &err) == CF_EINPUT);
    CHECK_CONTAINS(err.msg, "old layout");
}

static const char TASK[] = "[task]\nname = lab_b\ntitle = t\n"
                           "[codes visit]\ncode = VISIT\n[codes b]\ncode = LAB//B\n"
                           "[trigger]\ncodes = visit\n[prediction]\nselect = first\n"
                           "[label]\nwhen = any b in (prediction, prediction + 200d]\n";

/* A model bundle recorded as trained on store_path under split c (random weights). */
static int make_model(const char *model, const char *store_path, const split_config *c) {
    cf_err err = {0};
    store s;
    if (store_open(&s, store_path, &err)) return -1;
    model_bundle b;
    vocab v;
    vocab_options vo;
    vocab_options_default(&vo);
    char vp[4400], cp[4400];
    int rc = bundle_create(&b, model, 0, &err);
    if (rc) goto out;
    rc = vocab_build(&v, &s, c, &vo, &err);
    if (!rc) {
        gpt_config cfg = {.max_seq_len = 32, .vocab_size = (int)v.n_tokens, .num_layers = 1, .num_heads = 2,
                          .channels = 16, .dropout = 0};
        gpt_model m;
        rc = gpt_build(&m, &cfg, 3, &err);
        if (!rc) {
            memcpy(m.vocab_hash, v.hash, sizeof m.vocab_hash);
            gpt_opt_config opt = gpt_opt_default(1);
            rc = bundle_part_path(&b, BUNDLE_VOCAB, vp, sizeof vp, &err) || vocab_save(&v, vp, &err) ||
                 bundle_commit(&b, BUNDLE_VOCAB, &err) || bundle_part_path(&b, BUNDLE_CHECKPOINT, cp, sizeof cp, &err) ||
                 gpt_save(&m, cp, &opt, 0, &err) || bundle_commit(&b, BUNDLE_CHECKPOINT, &err) ||
                 bundle_record_split(&b, &s, c, &err);
            gpt_free(&m);
        }
        vocab_free(&v);
    }
    bundle_close(&b);
out:
    if (rc) fprintf(stderr, "  make_model: %s\n", err.msg);
    store_close(&s);
    return rc ? -1 : 0;
}

/* Opens the model's predictors for the task on store_path; returns the status. */
static int open_for_eval(const char *model, const char *store_path, const split_config *c, int allow,
                         eval_model_info *info, cf_err *err) {
    task_def t;
    task_labels l;
    store s;
    if (task_parse(&t, "t.task", TASK, strlen(TASK), err)) return -1;
    if (store_open(&s, store_path, err)) return -1;
    task_label_options lo = {.split = *c, .seed = 1};
    int rc = task_label(&t, &s, &lo, &l, err);
    if (!rc) {
        eval_model_options o = {.which = EVAL_MODEL_FINETUNED, .seed = 1, .threads = 1, .split = *c,
                                .store = &s, .allow_overlap = allow, .info = info};
        eval_predictor p[4];
        size_t n = 0;
        memset(info, 0, sizeof *info);
        rc = eval_model_predictors(model, &o, &t, &l, p, 4, &n, err);
        if (!rc) eval_model_predictors_free(p, n);
        task_labels_free(&l);
    }
    store_close(&s);
    task_free(&t);
    return rc;
}

static void test_training_patients_refused(void) {
    char a[900], b[900], model[900];
    snprintf(a, sizeof a, "%s/A.store", dir);
    snprintf(b, sizeof b, "%s/B.store", dir);
    snprintf(model, sizeof model, "%s/ab.model", dir);
    REQUIRE(make_store(a, 0) == 0 && make_store(b, 1) == 0);
    split_config c;
    split_config_default(&c);
    cf_err err = {0};
    REQUIRE(split_parse_fractions(&c, "60/10/30", &err) == CF_OK);
    REQUIRE(make_model(model, a, &c) == 0);

    /* the training split's fingerprint reads back */
    model_bundle mb;
    bundle_split bs;
    REQUIRE(bundle_open(&mb, model, &err) == CF_OK);
    REQUIRE(bundle_load_split(&mb, &bs, &err) == CF_OK);
    bundle_close(&mb);
    REQUIRE(bs.present);
    CHECK_EQ_INT(bs.subjects[SPLIT_TRAIN] + bs.subjects[SPLIT_TUNING] + bs.subjects[SPLIT_HELD_OUT], N_SUBJ);
    CHECK_EQ_INT(bs.n_id, bs.subjects[SPLIT_TRAIN] + bs.subjects[SPLIT_TUNING]);
    CHECK_EQ_INT(bs.n_print + bs.unprinted, bs.n_id);
    CHECK_EQ_INT(bs.train_ppm, 600000);
    CHECK(!bs.deidentified);
    CHECK(bs.subjects[SPLIT_HELD_OUT] > 15);
    for (int64_t i = 0; i < N_SUBJ; i++) {
        int part = split_assign(&c, 5000 + i);
        CHECK(bundle_split_has(bs.id_hash, bs.n_id, split_subject_hash(&c, 5000 + i)) == (part != SPLIT_HELD_OUT));
    }
    bundle_split_free(&bs);

    eval_model_info info;
    /* the training store's own held-out rows: accepted */
    int rc = open_for_eval(model, a, &c, 0, &info, &err);
    if (rc) fprintf(stderr, "  %s\n", err.msg);
    CHECK(rc == CF_OK);
    CHECK(info.split_recorded && info.same_store);
    CHECK(info.held_patients > 15);
    CHECK_EQ_INT(info.overlap_patients, 0);
    CHECK_EQ_INT(strlen(info.checkpoint_hash), 64);

    /* the same patients under other ids and shifted dates: their held-out rows include training
     * patients, found by their records, and the evaluation is refused */
    rc = open_for_eval(model, b, &c, 0, &info, &err);
    CHECK(rc == CF_EINPUT);
    CHECK_CONTAINS(err.msg, "were training or tuning patients");
    CHECK(!info.same_store);
    CHECK(info.overlap_patients > info.held_patients / 2);
    CHECK_EQ_INT(info.overlap_by_id, 0);
    CHECK_EQ_INT(info.overlap_by_record, info.overlap_patients);
    /* allowed on request, and reported */
    rc = open_for_eval(model, b, &c, 1, &info, &err);
    CHECK(rc == CF_OK);
    CHECK(info.overlap_allowed && info.overlap_patients > 0);
}

int main(void) {
    snprintf(dir, sizeof dir, "%s", check_tmpdir());
    RUN(test_parts_and_checksums);
    RUN(test_abandon_and_legacy);
    RUN(test_training_patients_refused);
    return check_summary();
}
