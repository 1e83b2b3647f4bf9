/* One preparation of a model's data from a store: vocabulary, then shards; see prepare.h. */
#include "timeline/prepare.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

void timeline_prepare_options_default(timeline_prepare_options *o) {
    memset(o, 0, sizeof *o);
    vocab_options_default(&o->vo);
}

/* Whether path holds a shard of split p made with v (a resumed run keeps it). */
static int reusable(const char *path, const vocab *v, timeline_shard_stats *st) {
    struct stat fs;
    if (stat(path, &fs) != 0) return 0;
    timeline_shard sh;
    cf_err ignored = {0};
    if (timeline_shard_open(&sh, path, v, &ignored) != CF_OK) return 0;
    st->subjects = sh.n_subjects;
    st->tokens = sh.n_tokens;
    timeline_shard_close(&sh);
    return 1;
}

int timeline_prepare(vocab *v, const store *s, const split_config *sp, const timeline_prepare_options *o,
                     timeline_shard_stats stats[SPLIT_COUNT], char shard_path[SPLIT_COUNT][4300], cf_err *err) {
    int rc;
    memset(stats, 0, SPLIT_COUNT * sizeof *stats);
    if (o->vocab_in) {
        if ((rc = vocab_load(v, o->vocab_in, err))) return rc;
    } else {
        if ((rc = vocab_build(v, s, sp, &o->vo, err))) return rc;
        if (o->vocab_out && (rc = vocab_save(v, o->vocab_out, err))) goto fail;
    }
    if (!o->shard_dir) return CF_OK;
    if (mkdir(o->shard_dir, 0777) != 0 && errno != EEXIST) {
        rc = cf_fail_errno(err, CF_EINPUT, "%s: cannot create the shard directory", o->shard_dir);
        goto fail;
    }
    for (int p = 0; p < SPLIT_COUNT; p++) {
        snprintf(shard_path[p], 4300, "%s/%s.tokens", o->shard_dir, split_name(p));
        if (o->reuse_shards && reusable(shard_path[p], v, &stats[p])) continue;
        if ((rc = timeline_write_shards(v, s, sp, p, shard_path[p], &stats[p], err))) goto fail;
    }
    return CF_OK;
fail:
    vocab_free(v);
    return rc;
}
