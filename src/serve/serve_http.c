/* libmicrohttpd glue for the service; see serve_http.h.
 *
 * Connection deadlines. libmicrohttpd reports every connection as it opens and closes
 * (MHD_OPTION_NOTIFY_CONNECTION); each gets a tracker {socket, deadline} in a list under one
 * mutex. The access handler moves a tracker between phases (headers: deadline header_timeout_s
 * from the connection or the previous answer; body: body_timeout_s from the headers; handling:
 * none), and a watcher thread wakes five times a second to shut down the sockets of trackers past
 * their deadline (past one second of waiting for headers when the table is three quarters full). libmicrohttpd calls the close notification before it closes the socket, and the
 * tracker is removed there under the same mutex, so the watcher never touches a socket number
 * that has been closed and reused. */
#include "serve/serve_http.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include <microhttpd.h>

#include "util/progress.h"

#define MAX_ARGS 16

enum { PHASE_HEADERS, PHASE_BODY, PHASE_HANDLING };

typedef struct track {
    struct track *prev, *next;
    int fd;
    int phase;
    double since;              /* now_seconds() when the phase began */
    double deadline;           /* now_seconds(); 0: none */
    int killed;
} track;

struct serve_http {
    struct MHD_Daemon *d;
    serve_ctx *ctx;
    serve_metrics *metrics;
    size_t max_body, max_pending;
    atomic_size_t pending;     /* body bytes buffered over all connections */
    double header_timeout, body_timeout;
    int port;
    char *cert, *key;
    /* deadlines */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    track *tracks;
    pthread_t watcher;
    int watcher_started, stopping;
    int n_tracks, max_connections;
};

/* Under pressure -- the connection table three quarters full, as when many hosts each hold a
 * connection open without finishing its headers -- a connection still waiting for its headers
 * after this long is closed, whatever header_timeout_s says: a client that means it sends its
 * headers in milliseconds, and the table is freed for it. */
#define PRESSURE_HEADER_S 1.0

typedef struct {
    serve_call *call;          /* the request between its headers and its body */
    char *buf;
    size_t len, cap;
    int too_big, overloaded;
    double start;
    char client[64];
} conn_state;

typedef struct {
    serve_arg a[MAX_ARGS];
    size_t n;
} arg_list;

serve_http_options serve_http_options_of(const serve_config *c) {
    return (serve_http_options){c->listen,
                                c->port,
                                c->threads,
                                c->tls_cert,
                                c->tls_key,
                                c->max_body,
                                c->max_pending_body,
                                c->connection_timeout_s,
                                c->max_connections,
                                c->max_connections_per_client,
                                c->header_timeout_s,
                                c->body_timeout_s};
}

/* ------------------------------------------------------------------ deadlines */

static track *track_of(struct MHD_Connection *c) {
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

static void set_phase(serve_http *h, struct MHD_Connection *c, int phase) {
    track *t = track_of(c);
    if (!t) return;
    pthread_mutex_lock(&h->mu);
    t->phase = phase;
    double now = now_seconds();
    t->since = now;
    t->deadline = phase == PHASE_HEADERS ? now + h->header_timeout
                  : phase == PHASE_BODY  ? now + h->body_timeout : 0;
    pthread_mutex_unlock(&h->mu);
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode code) {
    serve_http *h = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        track *t = calloc(1, sizeof *t);
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        if (!t || !ci) {
            free(t);
            *socket_context = NULL;
            return;
        }
        t->fd = ci->connect_fd;
        t->phase = PHASE_HEADERS;
        t->since = now_seconds();
        t->deadline = t->since + h->header_timeout;
        pthread_mutex_lock(&h->mu);
        t->next = h->tracks;
        if (h->tracks) h->tracks->prev = t;
        h->tracks = t;
        h->n_tracks++;
        pthread_mutex_unlock(&h->mu);
        *socket_context = t;
    } else if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
        track *t = *socket_context;
        if (!t) return;
        pthread_mutex_lock(&h->mu);
        if (t->prev) t->prev->next = t->next;
        else h->tracks = t->next;
        if (t->next) t->next->prev = t->prev;
        h->n_tracks--;
        pthread_mutex_unlock(&h->mu);
        free(t);
        *socket_context = NULL;
    }
}

static void *watch(void *arg) {
    serve_http *h = arg;
    pthread_mutex_lock(&h->mu);
    while (!h->stopping) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 200 * 1000 * 1000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&h->cv, &h->mu, &ts);
        double now = now_seconds();
        int pressure = h->n_tracks * 4 > h->max_connections * 3;
        for (track *t = h->tracks; t; t = t->next) {
            int late = t->deadline && now > t->deadline;
            if (pressure && t->phase == PHASE_HEADERS && now - t->since > PRESSURE_HEADER_S) late = 1;
            if (t->killed || !late) continue;
            /* the socket is still open: the close notification needs this mutex */
            shutdown(t->fd, SHUT_RDWR);
            t->killed = 1;
            atomic_fetch_add_explicit(&h->metrics->refused[t->phase == PHASE_BODY
                                                              ? SERVE_REFUSED_BODY_DEADLINE
                                                              : SERVE_REFUSED_HEADER_DEADLINE],
                                      1, memory_order_relaxed);
        }
    }
    pthread_mutex_unlock(&h->mu);
    return NULL;
}

/* ------------------------------------------------------------------ requests */

static enum MHD_Result collect_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value) {
    (void)kind;
    arg_list *l = cls;
    if (l->n < MAX_ARGS) l->a[l->n++] = (serve_arg){key, value ? value : ""};
    return MHD_YES;
}

typedef struct {
    int n_cl, n_te;
    const char *te;
} framing;

static enum MHD_Result scan_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value) {
    (void)kind;
    (void)value;
    framing *f = cls;
    if (!strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH)) f->n_cl++;
    if (!strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING)) {
        f->n_te++;
        f->te = value;
    }
    return MHD_YES;
}

static const char *framing_error(struct MHD_Connection *c) {
    framing f = {0, 0, NULL};
    MHD_get_connection_values(c, MHD_HEADER_KIND, scan_header, &f);
    if (f.n_cl > 1)
        return "the request has more than one Content-Length header (a proxy could read it "
               "differently)";
    if (f.n_te && f.n_cl)
        return "the request has both Transfer-Encoding and Content-Length (a proxy could read it "
               "differently)";
    if (f.n_te > 1 || (f.n_te && (!f.te || strcasecmp(f.te, "chunked"))))
        return "only Transfer-Encoding: chunked is accepted";
    return NULL;
}

static void fill_request(serve_request *rq, struct MHD_Connection *c, const char *url,
                         const char *method, const conn_state *st, arg_list *args) {
    MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, collect_arg, args);
    const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    long long n = -1;
    if (cl) {
        char *end;
        unsigned long long v = strtoull(cl, &end, 10);
        n = *end || v > (1ULL << 62) ? (long long)(1ULL << 62) : (long long)v;
    }
    *rq = (serve_request){
        .method = method,
        .path = url,
        .args = args->a,
        .n_args = args->n,
        .authorization = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_AUTHORIZATION),
        .content_type = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                    MHD_HTTP_HEADER_CONTENT_TYPE),
        .origin = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin"),
        .acr_method = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                  "Access-Control-Request-Method"),
        .client = st->client[0] ? st->client : NULL,
        .content_length = n,
        .body = st->buf ? st->buf : "",
        .body_len = st->len,
        .body_too_large = st->too_big,
        .overloaded = st->overloaded,
        .start_s = st->start,
    };
}

static enum MHD_Result send_response(struct MHD_Connection *c, serve_response *rs) {
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(rs->len, rs->body, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        serve_response_free(rs);
        return MHD_NO;
    }
    rs->body = NULL; /* owned by the response now */
    if (rs->content_type) MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, rs->content_type);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    if (rs->www_authenticate[0])
        MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, rs->www_authenticate);
    if (rs->retry_after > 0) {
        char ra[24];
        snprintf(ra, sizeof ra, "%d", rs->retry_after);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, ra);
    }
    if (rs->allow) MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, rs->allow);
    if (rs->cors_origin[0]) {
        MHD_add_response_header(resp, "Access-Control-Allow-Origin", rs->cors_origin);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_VARY, "Origin");
        MHD_add_response_header(resp, "Access-Control-Expose-Headers", "WWW-Authenticate, Retry-After");
        if (rs->cors_methods) {
            char age[24];
            snprintf(age, sizeof age, "%d", rs->cors_max_age);
            MHD_add_response_header(resp, "Access-Control-Allow-Methods", rs->cors_methods);
            MHD_add_response_header(resp, "Access-Control-Allow-Headers", "Authorization, Content-Type");
            MHD_add_response_header(resp, "Access-Control-Max-Age", age);
        }
    }
    enum MHD_Result ret = MHD_queue_response(c, (unsigned)rs->status, resp);
    MHD_destroy_response(resp);
    serve_response_free(rs);
    return ret;
}

static void release_body(serve_http *h, conn_state *st) {
    if (st->cap) atomic_fetch_sub(&h->pending, st->cap);
    free(st->buf);
    st->buf = NULL;
    st->len = st->cap = 0;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls) {
    (void)version;
    serve_http *h = cls;
    conn_state *st = *con_cls;
    if (!st) {
        /* the request line and headers are in: phase one, before any body is read */
        if (!(st = calloc(1, sizeof *st))) return MHD_NO;
        st->start = now_seconds();
        *con_cls = st;
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        const struct sockaddr *sa = ci ? ci->client_addr : NULL;
        if (sa && sa->sa_family == AF_INET)
            inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, st->client, sizeof st->client);
        else if (sa && sa->sa_family == AF_INET6)
            inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, st->client,
                      sizeof st->client);
        arg_list args = {.n = 0};
        serve_request rq;
        fill_request(&rq, c, url, method, st, &args);
        rq.framing_error = framing_error(c);
        serve_response rs;
        st->call = serve_call_begin(h->ctx, &rq, &rs);
        if (!st->call) {
            set_phase(h, c, PHASE_HANDLING);
            return send_response(c, &rs);
        }
        set_phase(h, c, PHASE_BODY);
        return MHD_YES;
    }
    if (*upload_size) {
        size_t n = *upload_size;
        *upload_size = 0;
        if (st->too_big || st->overloaded) return MHD_YES;
        if (st->len + n > h->max_body) {
            st->too_big = 1;
            release_body(h, st);
            return MHD_YES;
        }
        if (st->len + n + 1 > st->cap) {
            size_t nc = st->cap ? st->cap : 4096;
            while (nc < st->len + n + 1) nc *= 2;
            if (nc > h->max_body + 1) nc = h->max_body + 1;
            size_t grow = nc - st->cap;
            if (atomic_fetch_add(&h->pending, grow) + grow > h->max_pending) {
                atomic_fetch_sub(&h->pending, grow);
                st->overloaded = 1;
                atomic_fetch_add_explicit(&h->metrics->refused[SERVE_REFUSED_PENDING_BODY], 1,
                                          memory_order_relaxed);
                release_body(h, st);
                return MHD_YES;
            }
            char *t = realloc(st->buf, nc);
            if (!t) {
                atomic_fetch_sub(&h->pending, grow);
                return MHD_NO;
            }
            st->buf = t;
            st->cap = nc;
        }
        memcpy(st->buf + st->len, upload, n);
        st->len += n;
        st->buf[st->len] = '\0';
        return MHD_YES;
    }
    if (!st->call) return MHD_NO; /* answered in phase one already */
    set_phase(h, c, PHASE_HANDLING);
    arg_list args = {.n = 0};
    serve_request rq;
    fill_request(&rq, c, url, method, st, &args);
    serve_response rs;
    serve_call *call = st->call;
    st->call = NULL;
    serve_call_finish(call, &rq, &rs);
    release_body(h, st);
    return send_response(c, &rs);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
    serve_http *h = cls;
    conn_state *st = *con_cls;
    if (st) {
        if (st->call) serve_call_abort(st->call); /* the body never came */
        release_body(h, st);
        free(st);
    }
    *con_cls = NULL;
    /* a kept-alive connection now waits for its next request's headers */
    if (toe == MHD_REQUEST_TERMINATED_COMPLETED_OK) set_phase(h, c, PHASE_HEADERS);
}

/* ------------------------------------------------------------------ start / stop */

/* Frees what serve_http_start made, the TLS key wiped first: after a failed start, or once
 * the daemon and the watcher have stopped. */
static void http_release(serve_http *h) {
    if (h->key) memset(h->key, 0, strlen(h->key));
    free(h->cert);
    free(h->key);
    pthread_mutex_destroy(&h->mu);
    pthread_cond_destroy(&h->cv);
    free(h);
}

int serve_http_start(serve_http **out, serve_ctx *ctx, const serve_http_options *o, cf_err *err) {
    *out = NULL;
    serve_http *h = calloc(1, sizeof *h);
    if (!h) return cf_fail(err, CF_EINTERNAL, "out of memory");
    h->ctx = ctx;
    h->metrics = serve_ctx_metrics(ctx);
    h->max_body = o->max_body;
    h->max_pending = o->max_pending_body ? o->max_pending_body : (size_t)64 << 20;
    h->header_timeout = o->header_timeout_s > 0 ? o->header_timeout_s : 10;
    h->max_connections = o->max_connections > 0 ? o->max_connections : 1000;
    h->body_timeout = o->body_timeout_s > 0 ? o->body_timeout_s : 30;
    pthread_mutex_init(&h->mu, NULL);
    pthread_cond_init(&h->cv, NULL);
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO;
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in *v4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&ss;
    int rc = CF_OK;
    if (inet_pton(AF_INET, o->listen, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)o->port);
    } else if (inet_pton(AF_INET6, o->listen, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)o->port);
        flags |= MHD_USE_IPv6;
    } else {
        rc = cf_fail(err, CF_EINPUT, "listen: not an IPv4 or IPv6 address");
        goto fail;
    }
    if ((o->tls_cert != NULL) != (o->tls_key != NULL)) {
        rc = cf_fail(err, CF_EINPUT, "TLS needs both a certificate and a key");
        goto fail;
    }
    if (o->tls_cert) {
        if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
            rc = cf_fail(err, CF_EINPUT, "this libmicrohttpd was built without TLS");
            goto fail;
        }
        size_t l1, l2;
        if ((rc = serve_check_private(o->tls_key, "TLS private key", err)) ||
            (rc = serve_read_file(o->tls_cert, 1 << 20, &h->cert, &l1, err)) ||
            (rc = serve_read_file(o->tls_key, 1 << 20, &h->key, &l2, err)))
            goto fail;
        flags |= MHD_USE_TLS;
    }
    struct MHD_OptionItem opts[16];
    size_t n = 0;
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_SOCK_ADDR, 0, &ss};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, h};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)on_connection, h};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_TIMEOUT,
                                        (intptr_t)o->connection_timeout_s, NULL};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_LIMIT,
                                        (intptr_t)o->max_connections, NULL};
    if (o->max_connections_per_client > 0)
        opts[n++] = (struct MHD_OptionItem){MHD_OPTION_PER_IP_CONNECTION_LIMIT,
                                            (intptr_t)o->max_connections_per_client, NULL};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_MEMORY_LIMIT,
                                        (intptr_t)(64 * 1024), NULL};
    if (o->threads > 1)
        opts[n++] = (struct MHD_OptionItem){MHD_OPTION_THREAD_POOL_SIZE, (intptr_t)o->threads, NULL};
    if (o->tls_cert) {
        opts[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, h->cert};
        opts[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, h->key};
    }
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
    h->d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, h, MHD_OPTION_ARRAY, opts,
                            MHD_OPTION_END);
    if (!h->d) {
        rc = cf_fail(err, CF_EINPUT, "cannot start the HTTP server on port %d (address in use, "
                                     "no permission, or an unusable TLS certificate or key)",
                     o->port);
        goto fail;
    }
    if (pthread_create(&h->watcher, NULL, watch, h)) {
        MHD_stop_daemon(h->d);
        rc = cf_fail(err, CF_EINTERNAL, "cannot start the connection deadline thread");
        goto fail;
    }
    h->watcher_started = 1;
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    h->port = info ? info->port : o->port;
    *out = h;
    return CF_OK;
fail:
    http_release(h);
    return rc;
}

int serve_http_port(const serve_http *h) { return h->port; }

void serve_http_stop(serve_http *h) {
    if (!h) return;
    if (h->watcher_started) {
        pthread_mutex_lock(&h->mu);
        h->stopping = 1;
        pthread_cond_signal(&h->cv);
        pthread_mutex_unlock(&h->mu);
        pthread_join(h->watcher, NULL);
    }
    if (h->d) MHD_stop_daemon(h->d);
    http_release(h);
}
