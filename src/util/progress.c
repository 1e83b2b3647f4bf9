/* Terminal progress lines; see progress.h. */
#include "util/progress.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void progress_begin(progress *p, const char *label, const char *unit, uint64_t total) {
    p->label = label;
    p->unit = unit;
    p->total = total;
    p->enabled = isatty(STDERR_FILENO) && !getenv("CLINFM_NO_PROGRESS");
    p->start = p->enabled ? now_seconds() : 0;
    p->last_draw = p->start;
    p->calls = 0;
    p->drawn = 0;
}

void progress_update(progress *p, uint64_t done) {
    if (!p->enabled || (++p->calls & 4095u) != 0) return;
    double t = now_seconds();
    if (t - p->last_draw < 0.2) return;
    p->last_draw = t;
    double el = t - p->start, rate = el > 0 ? (double)done / el : 0;
    if (p->total && rate > 0 && done <= p->total)
        fprintf(stderr, "\r\033[K%s: %llu/%llu %s, %.0f %s/s, ETA %.0f s", p->label,
                (unsigned long long)done, (unsigned long long)p->total, p->unit, rate, p->unit,
                (double)(p->total - done) / rate);
    else
        fprintf(stderr, "\r\033[K%s: %llu %s, %.0f %s/s", p->label, (unsigned long long)done,
                p->unit, rate, p->unit);
    p->drawn = 1;
}

void progress_end(progress *p) {
    if (p->enabled && p->drawn) fprintf(stderr, "\r\033[K");
    p->drawn = 0;
}
