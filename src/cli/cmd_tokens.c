/* `clinfm tokens`: one subject's timeline as readable tokens, the way the model sees it. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "store/store.h"
#include "timeline/split.h"
#include "timeline/timeline.h"
#include "timeline/vocab.h"

static void tokens_help(void) {
    printf("usage: clinfm tokens --store STORE --vocab VOCAB --subject ID [options]\n"
           "\n"
           "Prints one subject's token sequence: the static prefix, then one line per event time\n"
           "with the tokens at that time (gap tokens lead to the time they end at). See\n"
           "docs/TIMELINE.md.\n"
           "\n"
           "options:\n"
           "  --store STORE        the event store\n"
           "  --vocab VOCAB        a vocabulary made by 'clinfm vocab'\n"
           "  --subject ID         subject id, or its original identifier\n"
           "  --ids                show each token's id as token#id\n"
           "  --limit N            show the first N event times only (default 0: all)\n"
           "  --split-key FILE     the split key, to name the subject's split (the public default\n"
           "                       key is recognised without it)\n"
           "  -h, --help           this help\n"
           "exit status: 0 ok, 1 bad input or usage, 2 internal error.\n");
}

int cmd_tokens(int argc, char **argv) {
    static const struct option opts[] = {
        {"store", required_argument, 0, 's'}, {"vocab", required_argument, 0, 'v'},
        {"subject", required_argument, 0, 'u'}, {"ids", no_argument, 0, 'i'},
        {"limit", required_argument, 0, 'l'}, {"split-key", required_argument, 0, 'k'},
        {"help", no_argument, 0, 'h'},         {0, 0, 0, 0}};
    const char *store_path = NULL, *vocab_path = NULL, *subject = NULL, *key_path = NULL;
    int ids = 0;
    unsigned long long limit = 0;
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 's': store_path = optarg; break;
        case 'v': vocab_path = optarg; break;
        case 'u': subject = optarg; break;
        case 'i': ids = 1; break;
        case 'l':
            if (cli_parse_u64("tokens", "--limit", optarg, &limit)) return 1;
            break;
        case 'k': key_path = optarg; break;
        case 'h': tokens_help(); return 0;
        default: return cli_usage_error("tokens", "unknown option '%s' or missing value", argv[optind - 1]);
        }
    }
    if (optind != argc) return cli_usage_error("tokens", "unexpected argument '%s'", argv[optind]);
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
    if ((rc = store_open(&s, store_path, &err))) {
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
