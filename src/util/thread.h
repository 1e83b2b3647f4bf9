/* Starting the helper threads clinfm runs for its own work (decompressing, sorting, encoding,
 * spilling): each starts with every signal blocked, so the program's signal handlers run on the
 * program's own threads. One place for what five sites wrote out by hand. */
#ifndef CLINFM_UTIL_THREAD_H
#define CLINFM_UTIL_THREAD_H

#include <pthread.h>
#include <signal.h>

/* pthread_create with all signals blocked in the new thread; returns its result (0: started). */
static inline int cf_thread_start(pthread_t *th, void *(*fn)(void *), void *arg) {
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int e = pthread_create(th, NULL, fn, arg);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return e;
}

#endif
