/* Fuzz target for the task-file parser (task_parse): sections, code sets, time expressions,
 * conditions, follow-up, record and report keys. Whatever it is given, it returns a status and
 * never crashes; a refusal names what is wrong (a non-empty message); what parses has a name,
 * a title, a trigger set and a label rule, and every set index it holds is in range. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tasks/task.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > (1u << 16)) return 0;
    task_def t;
    cf_err err = {0};
    if (task_parse(&t, "fuzz.task", (const char *)data, size, &err) == CF_OK) {
        if (!t.name || !t.title || t.trigger_set < 0 || (size_t)t.trigger_set >= t.n_sets) abort();
        if (t.death_set >= (int)t.n_sets || t.complete_set >= (int)t.n_sets || t.episode_end_set >= (int)t.n_sets) abort();
        if ((t.label.kind == TASK_C_ANY || t.label.kind == TASK_C_NONE) && (size_t)t.label.set >= t.n_sets) abort();
        for (size_t i = 0; i < t.n_never_input; i++)
            if ((size_t)t.never_input[i] >= t.n_sets) abort();
        char buf[96];
        task_time_str(&t.prediction, buf, sizeof buf);
        task_free(&t);
    } else if (!err.msg[0]) {
        abort(); /* a refusal must say why */
    }
    return 0;
}
