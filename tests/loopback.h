/* A loopback TCP client connection from a chosen source address: shared by the service tests
 * (serve_testutil.h) and the service's attack bench (bench/serve_attack.c), so both open their
 * connections the same way. Test and bench code only; needs nothing beyond libc. */
#ifndef CLINFM_TESTS_LOOPBACK_H
#define CLINFM_TESTS_LOOPBACK_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

/* A TCP connection to 127.0.0.1:port from the loopback address src (NULL: the kernel's choice,
 * 127.0.0.1), with send and receive timeouts of timeout_s; -1 on failure. Any 127.x.y.z address
 * works as a source, so one test can play several client hosts. */
static inline int tu_connect_from(const char *src, int port, int timeout_s) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    struct timeval tv = {timeout_s, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    int one = 1; /* requests are written whole: no waiting on Nagle's algorithm */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (src) {
        struct sockaddr_in b = {0};
        b.sin_family = AF_INET;
        inet_pton(AF_INET, src, &b.sin_addr);
        if (bind(fd, (struct sockaddr *)&b, sizeof b)) {
            close(fd);
            return -1;
        }
    }
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a)) {
        close(fd);
        return -1;
    }
    return fd;
}

#endif
