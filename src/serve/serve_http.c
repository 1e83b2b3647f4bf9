/* libmicrohttpd glue for the service; see serve_http.h. */
#include "serve/serve_http.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include "util/progress.h"

#define MAX_ARGS 16

struct serve_http {
    struct MHD_Daemon *d;
    serve_ctx *ctx;
    size_t max_body;
    int port;
    char *cert, *key;
};

typedef struct {
    char *buf;
    size_t len, cap;
    int too_big;
    double start;
} conn_state;

typedef struct {
    serve_arg a[MAX_ARGS];
    size_t n;
} arg_list;

static enum MHD_Result collect_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value) {
    (void)kind;
    arg_list *l = cls;
    if (l->n < MAX_ARGS) l->a[l->n++] = (serve_arg){key, value ? value : ""};
    return MHD_YES;
}

static enum MHD_Result respond(serve_http *h, struct MHD_Connection *c, const char *url,
                               const char *method, conn_state *st) {
    arg_list args = {.n = 0};
    MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, collect_arg, &args);
    serve_request rq = {
        .method = method,
        .path = url,
        .args = args.a,
        .n_args = args.n,
        .authorization = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_AUTHORIZATION),
        .content_type = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                    MHD_HTTP_HEADER_CONTENT_TYPE),
        .body = st->buf ? st->buf : "",
        .body_len = st->len,
        .body_too_large = st->too_big,
        .start_s = st->start,
    };
    serve_response rs;
    serve_handle(h->ctx, &rq, &rs);
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(rs.len, rs.body, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        serve_response_free(&rs);
        return MHD_NO;
    }
    rs.body = NULL; /* owned by the response now */
    if (rs.content_type) MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, rs.content_type);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    if (rs.www_authenticate[0])
        MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, rs.www_authenticate);
    if (rs.retry_after > 0) {
        char ra[24];
        snprintf(ra, sizeof ra, "%d", rs.retry_after);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, ra);
    }
    enum MHD_Result ret = MHD_queue_response(c, (unsigned)rs.status, resp);
    MHD_destroy_response(resp);
    serve_response_free(&rs);
    return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls) {
    (void)version;
    serve_http *h = cls;
    conn_state *st = *con_cls;
    if (!st) {
        if (!(st = calloc(1, sizeof *st))) return MHD_NO;
        st->start = now_seconds();
        *con_cls = st;
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl) {
            char *end;
            unsigned long long n = strtoull(cl, &end, 10);
            if (*end || n > h->max_body) {
                /* answer now rather than read a body that will be refused */
                st->too_big = 1;
                return respond(h, c, url, method, st);
            }
        }
        return MHD_YES;
    }
    if (*upload_size) {
        size_t n = *upload_size;
        *upload_size = 0;
        if (st->too_big) return MHD_YES;
        if (st->len + n > h->max_body) {
            st->too_big = 1;
            free(st->buf);
            st->buf = NULL;
            st->len = st->cap = 0;
            return MHD_YES;
        }
        if (st->len + n + 1 > st->cap) {
            size_t nc = st->cap ? st->cap : 4096;
            while (nc < st->len + n + 1) nc *= 2;
            char *t = realloc(st->buf, nc);
            if (!t) return MHD_NO;
            st->buf = t;
            st->cap = nc;
        }
        memcpy(st->buf + st->len, upload, n);
        st->len += n;
        st->buf[st->len] = '\0';
        return MHD_YES;
    }
    return respond(h, c, url, method, st);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
    (void)cls;
    (void)c;
    (void)toe;
    conn_state *st = *con_cls;
    if (st) {
        free(st->buf);
        free(st);
    }
    *con_cls = NULL;
}

int serve_http_start(serve_http **out, serve_ctx *ctx, const serve_http_options *o, cf_err *err) {
    *out = NULL;
    serve_http *h = calloc(1, sizeof *h);
    if (!h) return cf_fail(err, CF_EINTERNAL, "out of memory");
    h->ctx = ctx;
    h->max_body = o->max_body;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO;
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in *v4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, o->listen, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)o->port);
    } else if (inet_pton(AF_INET6, o->listen, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)o->port);
        flags |= MHD_USE_IPv6;
    } else {
        free(h);
        return cf_fail(err, CF_EINPUT, "listen: not an IPv4 or IPv6 address");
    }
    int rc = CF_OK;
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
        if ((rc = serve_read_file(o->tls_cert, 1 << 20, &h->cert, &l1, err)) ||
            (rc = serve_read_file(o->tls_key, 1 << 20, &h->key, &l2, err)))
            goto fail;
        flags |= MHD_USE_TLS;
    }
    struct MHD_OptionItem opts[12];
    size_t n = 0;
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_SOCK_ADDR, 0, &ss};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, NULL};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_TIMEOUT,
                                        (intptr_t)o->connection_timeout_s, NULL};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_LIMIT,
                                        (intptr_t)o->max_connections, NULL};
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
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    h->port = info ? info->port : o->port;
    *out = h;
    return CF_OK;
fail:
    free(h->cert);
    free(h->key);
    free(h);
    return rc;
}

int serve_http_port(const serve_http *h) { return h->port; }

void serve_http_stop(serve_http *h) {
    if (!h) return;
    if (h->d) MHD_stop_daemon(h->d);
    if (h->key) memset(h->key, 0, strlen(h->key));
    free(h->cert);
    free(h->key);
    free(h);
}
