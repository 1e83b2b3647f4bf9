/* `clinfm vocab`: fit the timeline vocabulary on the train split of a store, and optionally
 * write the token shards of every split and score the n-gram baselines the model must beat. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "cli/commands.h"
#include "cli/opts.h"
#include "store/store.h"
#include "timeline/prepare.h"
#include "timeline/split.h"
#include "timeline/timeline.h"
#include "timeline/vocab.h"

static const char *kind_names[VOCAB_KIND_MAX] = {"?", "special", "quantile", "gap", "age", "year",
                                                 "unknown", "missing", "code", "code_part"};

int cmd_vocab(int argc, char **argv) {
    int status;
    const char *store_path = NULL, *out = NULL, *shards = NULL;
    cli_split_args split = {0};
    vocab_options vo;
    vocab_options_default(&vo);
    int baselines = 1, json = 0, reuse = 1, room_check = 1;
    unsigned long long cache_mib = 256;
    const cli_opt opts[] = {
        CLI_OPT_STR("store", &store_path, "STORE", "the event store"),
        CLI_OPT_STR("out", &out, "VOCAB", "the vocabulary file to write (atomically)"),
        CLI_OPT_U32("min-count", &vo.min_count, "N", 1, CLI_ANY, "train events a code needs for its own token (default 5)"),
        CLI_OPT_U32("min-numeric", &vo.min_numeric, "N", VOCAB_N_QUANTILES, CLI_ANY,
                    "finite train values a code needs for decile tokens (default 20)"),
        CLI_OPT_U32("max-vocab", &vo.max_vocab, "N", 0, 1u << 30,
                    "keep the most frequent codes so the vocabulary has at most N\n"
                    "tokens (default 0: no cap)"),
        CLI_OPT_SET("no-split-codes", &vo.split_codes, 0,
                    "keep ICD-10-CM / ICD-10-PCS codes whole (default: split them into\n"
                    "category/detail/extension and 7 axes, as ETHOS does)"),
        CLI_OPT_STR("static", &vo.static_ns, "NS,NS",
                    "namespaces of the static prefix (default: GENDER, SEX, RACE,\n"
                    "ETHNICITY, MARITAL_STATUS when present, plus every namespace of\n"
                    "time-less facts)"),
        CLI_OPTS_SPLIT(&split),
        CLI_OPT_STR("shards", &shards, "DIR",
                    "also prepare DIR for training: DIR/train.tokens, tuning.tokens,\n"
                    "held_out.tokens, a copy of the vocabulary and DIR/prepared.json,\n"
                    "which `clinfm train --shards DIR` reuses without reading the store\n"
                    "again; a DIR already prepared from the same store, split and\n"
                    "options is reused as it is (docs/TIMELINE.md)"),
        CLI_OPT_SET("rebuild", &reuse, 0, "prepare DIR again even when it matches"),
        CLI_OPT_ROOM_CHECK(&room_check, "the shards (a bound of 12 bytes an event)"),
        CLI_OPT_SET("no-baselines", &baselines, 0, "skip the n-gram baselines and token counts"),
        CLI_OPT_U64("decoded-cache", &cache_mib, "MIB", 0, 1ull << 30,
                    "decoded store blocks kept between the preparation's passes\n"
                    "(default 256 MiB; 0 decodes every block on every pass)"),
        CLI_OPT_FLAG("json", &json, "print the summary as JSON"),
        CLI_OPT_END};
    const cli_spec spec = {
        .cmd = "vocab",
        .usage = "vocab --store STORE --out VOCAB [options]",
        .about = "Builds the timeline vocabulary from the train split of STORE (tuning and held_out\n"
                 "subjects are never read): code tokens, per-namespace unknowns, decile tokens for\n"
                 "numeric values, time-gap, age and calendar-year tokens, the static prefix, and the\n"
                 "special tokens. Then scores unigram and bigram baselines (nats per token).\n"
                 "See docs/TIMELINE.md.\n",
        .opts = opts};
    if (!cli_parse(&spec, argc, argv, NULL, &status)) return status;
    if (!store_path || !out) return cli_usage_error("vocab", "--store and --out are required");

    cf_err err = {0};
    split_config sp;
    split_config_default(&sp);
    int rc;
    if ((rc = cli_split_apply(&split, &sp, &err))) goto fail0;
    store s;
    /* The preparation reads the events subject by subject (store cursors), ten passes (the
     * vocabulary's two, sizing and writing each shard, the baselines' fit and scoring): the
     * first --decoded-cache MiB of decoded blocks are kept between passes, the rest decoded
     * again on each, so memory stays bounded whatever the store's size. */
    if ((rc = store_open_summary(&s, store_path, &err))) goto fail0;
    if ((rc = store_cache_set(&s, (size_t)cache_mib << 20, &err))) {
        store_close(&s);
        goto fail0;
    }
    timeline_prepare_options po;
    timeline_prepare_options_default(&po);
    po.vocab_out = out;
    po.vo = vo;
    po.shard_dir = shards;
    po.baselines = baselines;
    po.reuse = reuse;
    po.room_check = room_check;
    po.room_say = stderr;
    static timeline_prepared prep; /* static: ~13 KB of paths */
    vocab v;
    if ((rc = timeline_prepare(&v, &s, &sp, &po, &prep, &err))) goto fail1;
    const timeline_shard_stats *shs = prep.stats;
    if (prep.note[0]) fprintf(stderr, "clinfm vocab: %s; preparing again\n", prep.note);
    if (prep.reused) fprintf(stderr, "clinfm vocab: %s is prepared for this store already; reused (--rebuild to redo)\n", shards);

    uint64_t per_kind[VOCAB_KIND_MAX] = {0};
    for (uint32_t i = 0; i < v.n_tokens; i++) per_kind[v.kind[i]]++;
    uint64_t unk_events = 0, code_events = 0;
    for (uint32_t i = 0; i < v.n_tokens; i++) {
        if (v.kind[i] == VOCAB_KIND_UNK || (v.kind[i] == VOCAB_KIND_SPECIAL && v.aux0[i] == VOCAB_SP_UNK))
            unk_events += v.count[i];
        if (v.kind[i] == VOCAB_KIND_CODE || v.kind[i] == VOCAB_KIND_PART) code_events += v.count[i];
    }
    const timeline_baseline bl = prep.base;

    char hex[2 * VOCAB_HASH_BYTES + 1];
    vocab_hash_hex(&v, hex);
    if (json) {
        cJSON *root = cJSON_CreateObject();
        cJSON_AddStringToObject(root, "vocab", out);
        cJSON_AddStringToObject(root, "hash", hex);
        cJSON_AddNumberToObject(root, "format_version", VOCAB_FORMAT_VERSION);
        cJSON_AddNumberToObject(root, "tokens", v.n_tokens);
        cJSON *k = cJSON_AddObjectToObject(root, "tokens_by_kind");
        for (int i = 1; i < VOCAB_KIND_MAX; i++) cJSON_AddNumberToObject(k, kind_names[i], (double)per_kind[i]);
        cJSON_AddNumberToObject(root, "cut_sets", v.n_cut_sets);
        cJSON_AddNumberToObject(root, "train_subjects", (double)v.train_subjects);
        cJSON_AddNumberToObject(root, "train_events", (double)v.train_events);
        cJSON_AddNumberToObject(root, "train_events_unknown", (double)unk_events);
        cJSON_AddBoolToObject(root, "split_default_key", sp.default_key);
        cJSON *sl = cJSON_AddArrayToObject(root, "static_prefix");
        for (uint32_t j = 0; j < v.n_slots; j++) {
            const char *ns = vocab_token_str(&v, v.slot_none[j]);
            char nb[1100];
            snprintf(nb, sizeof nb, "%.*s", (int)(strlen(ns) - 8), ns);
            cJSON_AddItemToArray(sl, cJSON_CreateString(nb));
        }
        if (baselines) {
            cJSON *b = cJSON_AddObjectToObject(root, "splits");
            for (int p = 0; p < SPLIT_COUNT; p++) {
                cJSON *o = cJSON_AddObjectToObject(b, split_name(p));
                cJSON_AddNumberToObject(o, "subjects", (double)bl.eval_subjects[p]);
                cJSON_AddNumberToObject(o, "tokens", (double)bl.tokens_total[p]);
                cJSON_AddNumberToObject(o, "tokens_per_subject_mean",
                                        bl.eval_subjects[p] ? (double)bl.tokens_total[p] / (double)bl.eval_subjects[p] : 0);
                cJSON_AddNumberToObject(o, "tokens_per_subject_median", (double)bl.tokens_median[p]);
                cJSON_AddNumberToObject(o, "tokens_per_subject_max", (double)bl.tokens_max[p]);
                cJSON_AddNumberToObject(o, "targets", (double)bl.eval_targets[p]);
                if (bl.eval_targets[p]) {
                    cJSON_AddNumberToObject(o, "unigram_loss", bl.unigram[p]);
                    cJSON_AddNumberToObject(o, "bigram_loss", bl.bigram[p]);
                } else {
                    cJSON_AddNullToObject(o, "unigram_loss");
                    cJSON_AddNullToObject(o, "bigram_loss");
                }
            }
        }
        if (shards) {
            cJSON *sh = cJSON_AddObjectToObject(root, "shards");
            for (int p = 0; p < SPLIT_COUNT; p++) {
                cJSON *o = cJSON_AddObjectToObject(sh, split_name(p));
                cJSON_AddStringToObject(o, "path", prep.shard_path[p]);
                cJSON_AddNumberToObject(o, "subjects", (double)shs[p].subjects);
                cJSON_AddNumberToObject(o, "tokens", (double)shs[p].tokens);
            }
        }
        char *txt = cJSON_Print(root);
        if (txt) puts(txt);
        free(txt);
        cJSON_Delete(root);
    } else {
        printf("vocabulary   %s (format %d, %u tokens)\n", out, VOCAB_FORMAT_VERSION, v.n_tokens);
        printf("hash         %s\n", hex);
        printf("fitted on    train: %llu subjects, %llu events (split %g/%g/%g, %s)\n",
               (unsigned long long)v.train_subjects, (unsigned long long)v.train_events, sp.train_ppm / 1e4,
               sp.tuning_ppm / 1e4, (SPLIT_PPM - sp.train_ppm - sp.tuning_ppm) / 1e4,
               sp.default_key ? "public default key: demo only" : "keyed");
        printf("tokens       ");
        for (int i = 1; i < VOCAB_KIND_MAX; i++)
            printf("%s%llu %s", i > 1 ? ", " : "", (unsigned long long)per_kind[i], kind_names[i]);
        printf("\n");
        printf("codes        %.2f%% of train code events have their own token; %u codes have decile cut points\n",
               code_events + unk_events ? 100.0 * (double)code_events / (double)(code_events + unk_events) : 0.0,
               v.n_cut_sets);
        printf("prefix       ");
        for (uint32_t j = 0; j < v.n_slots; j++) {
            const char *ns = vocab_token_str(&v, v.slot_none[j]);
            printf("%.*s, ", (int)(strlen(ns) - 8), ns);
        }
        printf("age, year\n");
        if (baselines) {
            printf("%-9s %9s %10s %13s %7s %9s %15s %14s\n", "split", "subjects", "tokens", "mean/subject",
                   "median", "max", "unigram nats", "bigram nats");
            for (int p = 0; p < SPLIT_COUNT; p++)
                printf("%-9s %9llu %10llu %13.1f %7llu %9llu %15.4f %14.4f\n", split_name(p),
                       (unsigned long long)bl.eval_subjects[p], (unsigned long long)bl.tokens_total[p],
                       bl.eval_subjects[p] ? (double)bl.tokens_total[p] / (double)bl.eval_subjects[p] : 0.0,
                       (unsigned long long)bl.tokens_median[p], (unsigned long long)bl.tokens_max[p], bl.unigram[p],
                       bl.bigram[p]);
            printf("(loss: mean -ln p per token after the static prefix, counts fitted on train)\n");
        }
        if (shards)
            for (int p = 0; p < SPLIT_COUNT; p++)
                printf("shard        %s/%s.tokens: %llu subjects, %llu tokens\n", shards, split_name(p),
                       (unsigned long long)shs[p].subjects, (unsigned long long)shs[p].tokens);
    }
    vocab_free(&v);
fail1:
    store_close(&s);
fail0:
    if (rc) cf_err_print(&err);
    return rc;
}
