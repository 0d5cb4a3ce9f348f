/* SPDX-License-Identifier: MIT */
/*
 * tests/tcp_proxy.h - a loopback TCP proxy for the link tests (net, mux)
 * that can cut the connection pair (cut: reset both sides) or black-hole it
 * (mode 1: accept and forward nothing). One proxy thread at a time per
 * proxy; include after chan_util.h (t_write_full).
 */
#ifndef WEIR_TESTS_TCP_PROXY_H
#define WEIR_TESTS_TCP_PROXY_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>


struct proxy {
    int lfd;
    uint16_t port, target;
    int mode;     /* 0 forward, 1 black hole (accept, forward nothing), 2 forward only
                     what the dialer sends (drop the listener's answers) */
    int cut;      /* set: reset the current connection pair */
    int stop;
    int accepted; /* connections accepted */
    pthread_t thr;
};

static void rst_close(int fd)
{
    struct linger lg = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close(fd);
}

static void *proxy_thr(void *arg)
{
    struct proxy *px = arg;
    int a = -1, b = -1;
    uint8_t buf[65536];
    while (!__atomic_load_n(&px->stop, __ATOMIC_ACQUIRE)) {
        if (__atomic_exchange_n(&px->cut, 0, __ATOMIC_ACQ_REL) && a >= 0) {
            rst_close(a);
            rst_close(b);
            a = b = -1;
        }
        struct pollfd pf[3] = {{.fd = px->lfd, .events = POLLIN},
                               {.fd = a, .events = POLLIN},
                               {.fd = b, .events = POLLIN}};
        if (poll(pf, 3, 10) <= 0)
            continue;
        if (pf[0].revents & POLLIN) {
            int n = accept(px->lfd, NULL, NULL);
            if (n < 0)
                continue;
            __atomic_add_fetch(&px->accepted, 1, __ATOMIC_ACQ_REL);
            if (a >= 0) {
                rst_close(a);
                rst_close(b);
            }
            struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(px->target)};
            inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
            a = n;
            b = socket(AF_INET, SOCK_STREAM, 0);
            if (connect(b, (struct sockaddr *)&sa, sizeof sa) < 0) {
                close(a);
                close(b);
                a = b = -1;
            }
            continue;
        }
        for (int i = 1; i <= 2; i++) {
            if (!(pf[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            int from = i == 1 ? a : b, to = i == 1 ? b : a;
            ssize_t k = read(from, buf, sizeof buf);
            if (k <= 0) {
                close(a);
                close(b);
                a = b = -1;
                break;
            }
            int mode = __atomic_load_n(&px->mode, __ATOMIC_ACQUIRE);
            if ((mode == 0 || (mode == 2 && i == 1)) && t_write_full(to, buf, (size_t)k) < 0) {
                close(a);
                close(b);
                a = b = -1;
                break;
            }
        }
    }
    if (a >= 0) {
        close(a);
        close(b);
    }
    return NULL;
}

static void proxy_start(struct proxy *px, const char *target_ep)
{
    memset(px, 0, sizeof *px);
    px->target = (uint16_t)atoi(strrchr(target_ep, ':') + 1);
    px->lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    cr_assert_eq(bind(px->lfd, (struct sockaddr *)&sa, sizeof sa), 0);
    listen(px->lfd, 8);
    socklen_t sl = sizeof sa;
    getsockname(px->lfd, (struct sockaddr *)&sa, &sl);
    px->port = ntohs(sa.sin_port);
    pthread_create(&px->thr, NULL, proxy_thr, px);
}

static void proxy_stop(struct proxy *px)
{
    __atomic_store_n(&px->stop, 1, __ATOMIC_RELEASE);
    pthread_join(px->thr, NULL);
    close(px->lfd);
}

#endif
