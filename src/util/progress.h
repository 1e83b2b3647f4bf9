/* Progress lines for long work: rate and ETA on a terminal, silence in pipes and CI.
 *
 * progress_update is cheap to call per record: it looks at the clock only every 4096 calls and
 * redraws at most 5 times a second, on stderr, only when stderr is a TTY. */
#ifndef CLINFM_UTIL_PROGRESS_H
#define CLINFM_UTIL_PROGRESS_H

#include <stdint.h>

typedef struct {
    const char *label; /* e.g. "ingest labevents" */
    const char *unit;  /* e.g. "rows" */
    uint64_t total;    /* 0 when unknown: no ETA */
    int enabled;
    double start, last_draw;
    uint32_t calls;
    int drawn;
} progress;

void progress_begin(progress *p, const char *label, const char *unit, uint64_t total);
void progress_update(progress *p, uint64_t done);
/* Clears the line if one was drawn. */
void progress_end(progress *p);
/* Seconds from a monotonic clock. */
double now_seconds(void);

#endif
