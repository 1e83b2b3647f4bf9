/* The HTTP transport of the service: libmicrohttpd with its own thread pool (epoll on Linux), TLS
 * (GnuTLS, through libmicrohttpd) when given a certificate and key.
 *
 * What it does against clients that would hold the service without ever being served:
 *   - at most limits.max_connections_per_client connections per client address (libmicrohttpd's
 *     per-IP limit), so one host cannot take the whole connection table;
 *   - absolute deadlines, which libmicrohttpd's idle timeout is not (a client sending one byte
 *     every few seconds is never idle): the request line and headers must be in within
 *     limits.header_timeout_s of the connection opening (or of the previous answer, on a kept-alive
 *     connection), and a body within limits.body_timeout_s of its headers; when the connection
 *     table is three quarters full (many hosts each holding a connection), headers must come
 *     within one second. A watcher thread shuts down the socket of a connection past its
 *     deadline; libmicrohttpd then closes it;
 *   - the request is authenticated on its headers (serve_call_begin) before a byte of the body is
 *     read: a caller without a valid token, or with a declared body over the limit, is answered at
 *     once and the connection closed; bodies that are read are capped at limits.max_body_bytes
 *     each and limits.max_pending_body_bytes together (503 past that);
 *   - conflicting framing (two Content-Length headers, Content-Length with Transfer-Encoding, a
 *     transfer coding other than chunked) is refused before the body, as a proxy in front could
 *     read the message differently (request smuggling).
 * Answers carry Cache-Control: no-store, Allow on 405 and OPTIONS, and CORS headers for the
 * configured origins. libmicrohttpd's own error log is left off: its messages can quote request
 * lines, which can hold patient ids. */
#ifndef CLINFM_SERVE_SERVE_HTTP_H
#define CLINFM_SERVE_SERVE_HTTP_H

#include "serve/serve.h"

typedef struct serve_http serve_http;

typedef struct {
    const char *listen;        /* IPv4 or IPv6 address */
    int port;                  /* 0: any free port (see serve_http_port) */
    int threads;
    const char *tls_cert, *tls_key; /* PEM file paths, both or neither */
    size_t max_body, max_pending_body;
    int connection_timeout_s, max_connections, max_connections_per_client;
    int header_timeout_s, body_timeout_s;
} serve_http_options;

/* The options of a configuration (listen and port as given). */
serve_http_options serve_http_options_of(const serve_config *c);

int serve_http_start(serve_http **out, serve_ctx *ctx, const serve_http_options *o, cf_err *err);
int serve_http_port(const serve_http *h);
/* Stops accepting, finishes or drops connections, joins the threads, frees h. */
void serve_http_stop(serve_http *h);

#endif
