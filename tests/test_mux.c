
/* ---- a TCP proxy that can reset the connection ----------------------------------- */

struct proxy {
    int lfd;
    uint16_t port, target;
    int hole;     /* atomic: swallow what arrives instead of forwarding it */
    int cut;      /* atomic: reset the current connection pair */
    int stop;
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
    static __thread uint8_t buf[65536];
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
        for (int i = 1; i <= 2 && a >= 0; i++) {
            if (!(pf[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            int from = i == 1 ? a : b, to = i == 1 ? b : a;
            ssize_t k = read(from, buf, sizeof buf);
            if (k <= 0 || (!__atomic_load_n(&px->hole, __ATOMIC_ACQUIRE) &&
                           t_write_full(to, buf, (size_t)k) < 0)) {
                close(a);
                close(b);
                a = b = -1;
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

Test(mux, resume_after_reset_every_stream_whole, .timeout = 120)
{
    const uint64_t n = SANITIZED ? 4000 : 15000;
    struct pair p;
    pair_init(&p, NS, n, 16);
    for (unsigned i = 0; i < NS; i++)
        p.s[i].pace_us = 300;
    weir_link_opts lo = {.timeout_ms = 3000};
    pair_listen(&p, &lo);
    struct proxy px;
    proxy_start(&px, weir__conn_endpoint(p.rx));
    char ep[64];
    snprintf(ep, sizeof ep, "tcp://127.0.0.1:%u", px.port);
    pair_dial(&p, ep, &lo);
    pair_run(&p);
    struct weir_link_stats ls;
    for (int k = 0; k < 2000; k++) {
        weir__conn_stats(p.tx, &ls);
        if (ls.acked > 3 * 1000)
            break;
        t_sleep_ms(2);
    }
    cr_assert_gt(ls.acked, 3000);
    /* swallow what is in flight for a moment (every stream must resend from
     * its last ack), then reset the connection */
    __atomic_store_n(&px.hole, 1, __ATOMIC_RELEASE);
    t_sleep_ms(30);
    __atomic_store_n(&px.cut, 1, __ATOMIC_RELEASE);
    __atomic_store_n(&px.hole, 0, __ATOMIC_RELEASE);
    for (unsigned i = 0; i < NS; i++)
        side_check(&p.s[i]);
    cr_assert_eq(wait_status(p.tx, 5000), -EPIPE, "%s", weir_errmsg());
    cr_assert_eq(wait_status(p.rx, 5000), -EPIPE, "%s", weir_errmsg());
    weir__conn_stats(p.tx, &ls);
    cr_assert_eq(ls.reconnects, 1, "sender reconnects %llu", (unsigned long long)ls.reconnects);
    cr_assert_eq(ls.messages >= 3 * n, 1, "resent messages count as sent");
    weir__conn_stats(p.rx, &ls);
    cr_assert_eq(ls.reconnects, 1, "receiver reconnects %llu", (unsigned long long)ls.reconnects);
    cr_assert_eq(ls.messages, 3 * n, "the receiver committed each message once");
    for (unsigned i = 0; i < NS; i++) {
        struct weir__conn_stream_stats st;
        weir__conn_stream_stats(p.rx, p.s[i].k, &st);
        cr_assert_eq(st.messages, n, "stream %u committed %llu", p.s[i].k,
                     (unsigned long long)st.messages);
    }
    proxy_stop(&px);
    pair_free(&p);
}
