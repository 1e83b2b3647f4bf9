/* `clinfm tokens`: one subject's timeline as readable tokens, the way the model sees it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "cli/opts.h"
#include "store/store.h"
#include "timeline/split.h"
#include "timeline/timeline.h"
#include "timeline/vocab.h"

int cmd_tokens(int argc, char **argv) {
    int status;
    const char *store_path = NULL, *vocab_path = NULL, *subject = NULL, *key_path = NULL;
    int ids = 0;
    unsigned long long limit = 0;
    const cli_opt opts[] = {
        CLI_OPT_STR("store", &store_path, "STORE", "the event store"),
        CLI_OPT_STR("vocab", &vocab_path, "VOCAB", "a vocabulary made by 'clinfm vocab'"),
        CLI_OPT_STR("subject", &subject, "ID", "subject id, or its original identifier"),
        CLI_OPT_FLAG("ids", &ids, "show each token's id as token#id"),
        CLI_OPT_U64("limit", &limit, "N", 0, CLI_ANY, "show the first N event times only (default 0: all)"),
        CLI_OPT_STR("split-key", &key_path, "FILE",
                    "the split key, to name the subject's split (the public default\n"
                    "key is recognised without it)"),
        CLI_OPT_END};
    const cli_spec spec = {.cmd = "tokens",
                           .usage = "tokens --store STORE --vocab VOCAB --subject ID [options]",
                           .about = "Prints one subject's token sequence: the static prefix, then one line per event time\n"
                                    "with the tokens at that time (gap tokens lead to the time they end at). See\n"
                                    "docs/TIMELINE.md.\n",
                           .opts = opts};
    if (!cli_parse(&spec, argc, argv, NULL, &status)) return status;
    if (!store_path || !vocab_path || !subject)
        return cli_usage_error("tokens", "--store, --vocab and --subject are required");
    cf_err err = {0};
    int rc;
    split_config sp;
    split_config_default(&sp);
    if (key_path && (rc = split_load_key(&sp, key_path, &err))) {
        cf_err_print(&err);
        return rc;
    }
    vocab v;
    if ((rc = vocab_load(&v, vocab_path, &err))) {
        cf_err_print(&err);
        return rc;
    }
    /* Name the split only when this key is the one the vocabulary was fitted with. */
    uint8_t kid[SPLIT_KEY_ID_BYTES];
    split_key_id(&sp, kid);
    sp.train_ppm = v.split_train_ppm;
    sp.tuning_ppm = v.split_tuning_ppm;
    sp.rotate_ppm = v.split_rotate_ppm;
    int know_split = memcmp(kid, v.split_key_id, sizeof kid) == 0;
    store s;
    /* One subject: the encoder's cursor decodes only the blocks that hold its events. */
    if ((rc = store_open_summary(&s, store_path, &err))) {
        cf_err_print(&err);
        vocab_free(&v);
        return rc;
    }
    char *end;
    long long id = strtoll(subject, &end, 10);
    int64_t k = *subject && !*end ? store_find_subject(&s, id) : -1;
    for (uint64_t i = 0; k < 0 && i < s.n_subjects && s.subject_key_offset; i++) {
        size_t len;
        const char *key = store_subject_key(&s, i, &len);
        if (key && len == strlen(subject) && !memcmp(key, subject, len)) k = (int64_t)i;
    }
    if (k < 0) {
        fprintf(stderr, "clinfm tokens: the subject is not in %s\n", store_path);
        rc = 1;
    } else {
        rc = timeline_print_subject(stdout, &v, &s, (uint64_t)k, know_split ? &sp : NULL, ids, limit, &err);
        if (rc) cf_err_print(&err);
    }
    store_close(&s);
    vocab_free(&v);
    return rc;
}
