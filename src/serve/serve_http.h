/* The HTTP transport of the service: libmicrohttpd with its own thread pool (epoll on Linux),
 * TLS (GnuTLS, through libmicrohttpd) when given a certificate and key. It reads each request
 * body up to limits.max_body_bytes (answering 413 at once when Content-Length already says more),
 * hands the request to serve_handle, and sends the answer with Cache-Control: no-store. Slow or
 * idle connections are dropped after limits.connection_timeout_s. libmicrohttpd's own error log is
 * left off: its messages can quote request lines, which can hold patient ids. */
#ifndef CLINFM_SERVE_SERVE_HTTP_H
#define CLINFM_SERVE_SERVE_HTTP_H

#include "serve/serve.h"

typedef struct serve_http serve_http;

typedef struct {
    const char *listen;        /* IPv4 or IPv6 address */
    int port;                  /* 0: any free port (see serve_http_port) */
    int threads;
    const char *tls_cert, *tls_key; /* PEM file paths, both or neither */
    size_t max_body;
    int connection_timeout_s, max_connections;
} serve_http_options;

int serve_http_start(serve_http **out, serve_ctx *ctx, const serve_http_options *o, cf_err *err);
int serve_http_port(const serve_http *h);
/* Stops accepting, finishes or drops connections, joins the threads, frees h. */
void serve_http_stop(serve_http *h);

#endif
