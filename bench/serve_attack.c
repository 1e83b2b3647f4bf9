/* Attack driver for bench/serve_attack.sh: a keyed client that measures its own latency while
 * one attack runs against `clinfm serve` on loopback, and the server's peak resident memory.
 *
 *   serve_attack --port P --pid SERVER_PID --key KEY --body FILE --path PATH --attack KIND
 *                [--seconds S] [--rate R] [--conns C] [--count N]
 *
 * KIND is one of
 *   none          the keyed client alone (the reference);
 *   slow          N sockets (default 1050) from one host (127.0.0.2) send a request line and then
 *                 one header line every 2 s, never finishing their headers; a socket the server
 *                 closes is opened again at the next round;
 *   slow-spread   the same from N different hosts (127.0.1.1 onwards), so a per-client limit does
 *                 not apply and only the header deadline does;
 *   bodies        N connections (default 40) from one host (127.0.0.3) start chunked uploads of up
 *                 to 7 MB without an Authorization header, 64 KiB every 100 ms, and never send the
 *                 last chunk; a closed one starts again;
 *   flood         N threads (default 4) send unauthenticated hook calls as fast as they can from
 *                 127.0.0.4 (each on a new connection, as the service closes after refusing a body).
 * The keyed client (127.0.0.1) sends the hook call with its API key at R requests a second
 * (default 200) over C kept-alive connections (default 4), records every latency and samples the
 * server's resident memory every 50 ms. Every attack is bounded in count and in time (S seconds,
 * default 20). --rate 0 runs the attack alone (so the script can run it in another process, at a
 * lower priority than the server and the keyed client, which share the machine with it). Prints
 * one line:
 *   <kind> p50_ms=<> p99_ms=<> ok=<> errors=<> peak_rss_mib=<> attack_requests=<> closed_by_server=<>
 * Build: cc -std=c11 -O2 -D_GNU_SOURCE -pthread bench/serve_attack.c -o build/serve_attack */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "../tests/loopback.h"

static int PORT, SERVER_PID, SECONDS = 20, RATE = 200, CONNS = 4, COUNT = -1;
static const char *KEY, *PATH = "/cds-services/clinfm-patient-view", *KIND = "none";
static char *BODY;
static size_t BODY_LEN;
static atomic_int STOP;
static atomic_long ATTACK_REQUESTS, CLOSED_BY_SERVER;
static double T0;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void sleep_s(double s) {
    if (s <= 0) return;
    struct timespec ts = {(time_t)s, (long)((s - (time_t)s) * 1e9)};
    nanosleep(&ts, NULL);
}

/* The tests' loopback client (tests/loopback.h), to this run's port. */
static int connect_from(const char *src, int timeout_s) { return tu_connect_from(src, PORT, timeout_s); }

static int write_all(int fd, const char *p, size_t n) {
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w <= 0) return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Reads one response (headers and Content-Length body); its status, or -1. */
static int read_response(int fd) {
    char buf[65536];
    size_t n = 0;
    char *end = NULL;
    while (!end) {
        if (n == sizeof buf - 1) return -1;
        ssize_t r = read(fd, buf + n, sizeof buf - 1 - n);
        if (r <= 0) return -1;
        n += (size_t)r;
        buf[n] = '\0';
        end = strstr(buf, "\r\n\r\n");
    }
    int status = 0;
    if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1) return -1;
    const char *cl = strcasestr(buf, "\r\nContent-Length:");
    size_t want = cl ? strtoul(cl + 17, NULL, 10) : 0, have = n - (size_t)(end + 4 - buf);
    while (have < want) {
        ssize_t r = read(fd, buf, sizeof buf < want - have ? sizeof buf : want - have);
        if (r <= 0) return -1;
        have += (size_t)r;
    }
    return status;
}

/* ------------------------------------------------------------------ the keyed client */

typedef struct {
    double *lat;
    size_t n, cap;
    long ok, errors;
} keyed_stats;

static void *keyed(void *arg) {
    keyed_stats *st = arg;
    char head[4096];
    int hn = snprintf(head, sizeof head,
                      "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n"
                      "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
                      PATH, KEY, BODY_LEN);
    char *req = malloc((size_t)hn + BODY_LEN);
    memcpy(req, head, (size_t)hn);
    memcpy(req + hn, BODY, BODY_LEN);
    double interval = (double)CONNS / RATE, next = now();
    int fd = -1;
    while (!atomic_load(&STOP)) {
        sleep_s(next - now());
        next += interval;
        if (fd < 0 && (fd = connect_from("127.0.0.1", 10)) < 0) {
            st->errors++;
            continue;
        }
        double a = now();
        int s = write_all(fd, req, (size_t)hn + BODY_LEN) ? -1 : read_response(fd);
        double ms = (now() - a) * 1000;
        if (s != 200) {
            st->errors++;
            close(fd);
            fd = -1;
            continue;
        }
        st->ok++;
        if (st->n == st->cap) {
            st->cap = st->cap ? st->cap * 2 : 4096;
            st->lat = realloc(st->lat, st->cap * sizeof *st->lat);
        }
        st->lat[st->n++] = ms;
    }
    if (fd >= 0) close(fd);
    free(req);
    return NULL;
}

/* ------------------------------------------------------------------ attacks */

static int alive(int fd) {
    char b[512];
    ssize_t n = recv(fd, b, sizeof b, MSG_DONTWAIT);
    return !(n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) && n <= 0;
}

static void *slow(void *arg) {
    int spread = arg != NULL, n = COUNT > 0 ? COUNT : 1050;
    int *fd = malloc((size_t)n * sizeof *fd);
    char line[512];
    snprintf(line, sizeof line, "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\n", PATH);
    for (int i = 0; i < n; i++) fd[i] = -1;
    while (!atomic_load(&STOP)) {
        double round = now();
        for (int i = 0; i < n && !atomic_load(&STOP); i++) {
            if (fd[i] >= 0 && !alive(fd[i])) {
                close(fd[i]);
                fd[i] = -1;
                atomic_fetch_add(&CLOSED_BY_SERVER, 1);
            }
            if (fd[i] < 0) {
                char src[32];
                if (spread) snprintf(src, sizeof src, "127.0.%d.%d", 1 + i / 250, 1 + i % 250);
                else snprintf(src, sizeof src, "127.0.0.2");
                fd[i] = connect_from(src, 1);
                if (fd[i] >= 0) {
                    atomic_fetch_add(&ATTACK_REQUESTS, 1);
                    if (write(fd[i], line, strlen(line)) < 0) {
                        close(fd[i]);
                        fd[i] = -1;
                    }
                }
            } else if (write(fd[i], "X-Slow: 1\r\n", 11) < 0) {
                close(fd[i]);
                fd[i] = -1;
                atomic_fetch_add(&CLOSED_BY_SERVER, 1);
            }
        }
        while (!atomic_load(&STOP) && now() - round < 2) sleep_s(0.05);
    }
    for (int i = 0; i < n; i++)
        if (fd[i] >= 0) close(fd[i]);
    free(fd);
    return NULL;
}

static void *bodies(void *arg) {
    (void)arg;
    int n = COUNT > 0 ? COUNT : 40;
    const size_t chunk = 64 << 10, limit = 7 << 20;
    char *data = malloc(chunk + 32);
    int hl = snprintf(data, 32, "%zx\r\n", chunk);
    memset(data + hl, 'x', chunk);
    memcpy(data + hl + chunk, "\r\n", 2);
    size_t piece = (size_t)hl + chunk + 2;
    int *fd = malloc((size_t)n * sizeof *fd);
    size_t *sent = calloc((size_t)n, sizeof *sent);
    char head[512];
    snprintf(head, sizeof head, "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
                                "application/json\r\nTransfer-Encoding: chunked\r\n\r\n", PATH);
    for (int i = 0; i < n; i++) fd[i] = -1;
    while (!atomic_load(&STOP)) {
        double round = now();
        for (int i = 0; i < n; i++) {
            if (fd[i] >= 0 && !alive(fd[i])) {
                close(fd[i]);
                fd[i] = -1;
                atomic_fetch_add(&CLOSED_BY_SERVER, 1);
            }
            if (fd[i] < 0) {
                if ((fd[i] = connect_from("127.0.0.3", 1)) < 0) continue;
                fcntl(fd[i], F_SETFL, O_NONBLOCK);
                sent[i] = 0;
                atomic_fetch_add(&ATTACK_REQUESTS, 1);
                if (write(fd[i], head, strlen(head)) < 0) {
                    close(fd[i]);
                    fd[i] = -1;
                    continue;
                }
            }
            if (sent[i] < limit) {
                ssize_t w = write(fd[i], data, piece);
                if (w > 0) sent[i] += (size_t)w;
            }
        }
        while (!atomic_load(&STOP) && now() - round < 0.1) sleep_s(0.01);
    }
    for (int i = 0; i < n; i++)
        if (fd[i] >= 0) close(fd[i]);
    free(fd);
    free(sent);
    free(data);
    return NULL;
}

static void *flood(void *arg) {
    (void)arg;
    char *req = malloc(BODY_LEN + 512);
    int hn = snprintf(req, 512, "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
                                "application/json\r\nContent-Length: %zu\r\n\r\n", PATH, BODY_LEN);
    memcpy(req + hn, BODY, BODY_LEN);
    while (!atomic_load(&STOP)) {
        int fd = connect_from("127.0.0.4", 2);
        if (fd < 0) continue;
        if (!write_all(fd, req, (size_t)hn + BODY_LEN)) read_response(fd);
        atomic_fetch_add(&ATTACK_REQUESTS, 1);
        close(fd);
    }
    free(req);
    return NULL;
}

/* ------------------------------------------------------------------ main */

static long rss_kb(void) {
    char p[64], line[256];
    snprintf(p, sizeof p, "/proc/%d/status", SERVER_PID);
    FILE *f = fopen(p, "r");
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "VmRSS:", 6)) kb = atol(line + 6);
    if (f) fclose(f);
    return kb;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    static const struct option opts[] = {
        {"port", 1, 0, 'p'},   {"pid", 1, 0, 'P'},     {"key", 1, 0, 'k'},  {"body", 1, 0, 'b'},
        {"path", 1, 0, 'u'},   {"attack", 1, 0, 'a'},  {"seconds", 1, 0, 's'},
        {"rate", 1, 0, 'r'},   {"conns", 1, 0, 'c'},   {"count", 1, 0, 'n'}, {0, 0, 0, 0}};
    const char *body_file = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'p': PORT = atoi(optarg); break;
        case 'P': SERVER_PID = atoi(optarg); break;
        case 'k': KEY = optarg; break;
        case 'b': body_file = optarg; break;
        case 'u': PATH = optarg; break;
        case 'a': KIND = optarg; break;
        case 's': SECONDS = atoi(optarg); break;
        case 'r': RATE = atoi(optarg); break;
        case 'c': CONNS = atoi(optarg); break;
        case 'n': COUNT = atoi(optarg); break;
        default: return 2;
        }
    }
    if (!PORT || !SERVER_PID || !KEY || !body_file || RATE < 0 || CONNS < 1 || CONNS > 64) {
        fprintf(stderr, "usage: serve_attack --port P --pid PID --key KEY --body FILE --attack KIND\n");
        return 2;
    }
    FILE *f = fopen(body_file, "rb");
    if (!f) return 2;
    fseek(f, 0, SEEK_END);
    BODY_LEN = (size_t)ftell(f);
    rewind(f);
    BODY = malloc(BODY_LEN);
    if (fread(BODY, 1, BODY_LEN, f) != BODY_LEN) return 2;
    fclose(f);
    signal(SIGPIPE, SIG_IGN);
    T0 = now();
    pthread_t at[8];
    int n_at = 0;
    if (!strcmp(KIND, "slow")) pthread_create(&at[n_at++], NULL, slow, NULL);
    else if (!strcmp(KIND, "slow-spread")) pthread_create(&at[n_at++], NULL, slow, (void *)1);
    else if (!strcmp(KIND, "bodies")) pthread_create(&at[n_at++], NULL, bodies, NULL);
    else if (!strcmp(KIND, "flood"))
        for (int i = 0; i < (COUNT > 0 ? COUNT : 4) && i < 8; i++)
            pthread_create(&at[n_at++], NULL, flood, NULL);
    else if (strcmp(KIND, "none")) {
        fprintf(stderr, "serve_attack: unknown attack %s\n", KIND);
        return 2;
    }
    if (RATE == 0) { /* the attack alone */
        sleep_s(SECONDS);
        atomic_store(&STOP, 1);
        for (int i = 0; i < n_at; i++) pthread_join(at[i], NULL);
        printf("%s attack_requests=%ld closed_by_server=%ld\n", KIND,
               atomic_load(&ATTACK_REQUESTS), atomic_load(&CLOSED_BY_SERVER));
        free(BODY);
        return 0;
    }
    if (n_at) sleep_s(1); /* let the attack take hold before measuring */
    keyed_stats st[64];
    pthread_t kt[64];
    memset(st, 0, sizeof st);
    for (int i = 0; i < CONNS; i++) pthread_create(&kt[i], NULL, keyed, &st[i]);
    long peak = 0;
    double end = now() + SECONDS;
    while (now() < end) {
        long r = rss_kb();
        if (r > peak) peak = r;
        sleep_s(0.05);
    }
    atomic_store(&STOP, 1);
    for (int i = 0; i < CONNS; i++) pthread_join(kt[i], NULL);
    for (int i = 0; i < n_at; i++) pthread_join(at[i], NULL);
    size_t total = 0;
    long ok = 0, errors = 0;
    for (int i = 0; i < CONNS; i++) {
        total += st[i].n;
        ok += st[i].ok;
        errors += st[i].errors;
    }
    double *all = malloc((total ? total : 1) * sizeof *all);
    size_t k = 0;
    for (int i = 0; i < CONNS; i++) {
        memcpy(all + k, st[i].lat, st[i].n * sizeof *all);
        k += st[i].n;
        free(st[i].lat);
    }
    qsort(all, total, sizeof *all, cmp_d);
    double p50 = total ? all[total / 2] : -1, p99 = total ? all[(size_t)(total * 0.99)] : -1;
    printf("%s p50_ms=%.2f p99_ms=%.2f ok=%ld errors=%ld peak_rss_mib=%.1f attack_requests=%ld "
           "closed_by_server=%ld\n",
           KIND, p50, p99, ok, errors, peak / 1024.0, atomic_load(&ATTACK_REQUESTS),
           atomic_load(&CLOSED_BY_SERVER));
    free(all);
    free(BODY);
    return 0;
}
