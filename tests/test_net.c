/* SPDX-License-Identifier: MIT */
/*
 * tests/test_net.c - links (include/weir/link.h) over the io_uring TCP
 * transport: loopback, separate processes, a veth pair between two network
 * namespaces, cuts, peer death and bad input.
 *
 * Every stream test writes messages whose bytes follow t_fill's pattern
 * for their sequence number and whose length comes from t_len_for; each
 * reader checks every byte of every message (per-message check) and keeps
 * a running FNV hash over (seq, len, bytes) that must equal the writer's.
 */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>

#include <weir/link.h>

#include "channels/frame.h"
#include "channels/link_codec.h"
#include "chan_util.h"

#define SMALL_MAX 300000 /* 8 B .. 256 KiB + a bit: some larger than the slot */

/* Message count of the big stream: 10^6 optimized; fewer under sanitizers. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZED 1
#else
#define SANITIZED 0
#endif
#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#undef SANITIZED
#define SANITIZED 1
#endif
#endif

static size_t msg_len(uint64_t seq, size_t maxlen)
{
    /* 8 B .. maxlen; most small (so 10^6 finish in bounded time), 1 in 64 large. */
    size_t small = 8 + t_len_for(seq, 4096 - 8);
    if (seq % 64 == 63)
        return 8 + t_len_for(seq * 7 + 1, maxlen - 8);
    return small;
}

static uint64_t hash_msg(uint64_t h, uint64_t seq, const void *p, size_t len)
{
    h = t_fnv_u64(h, seq);
    h = t_fnv_u64(h, len);
    return t_fnv(h, p, len);
}

/* ---- writer and readers as threads ------------------------------------------ */

struct writer_arg {
    weir_chan *c;
    uint64_t n;
    size_t maxlen;
    uint64_t hash;
    int close_at_end;
    struct t_fail fail;
};

static void *writer_thr(void *p)
{
    struct writer_arg *a = p;
    uint64_t h = T_FNV_OFF;
    for (uint64_t s = 0; s < a->n; s++) {
        size_t len = msg_len(s, a->maxlen);
        void *slot = weir_chan_reserve(a->c, len, TMO);
        if (!slot) {
            t_failf(&a->fail, "reserve of message %llu", (unsigned long long)s);
            return NULL;
        }
        t_fill(slot, len, s);
        if (weir_chan_commit(a->c, len) < 0) {
            t_failf(&a->fail, "commit of message %llu", (unsigned long long)s);
            return NULL;
        }
        h = hash_msg(h, s, slot, len);
    }
    a->hash = h;
    if (a->close_at_end)
        weir_chan_close(a->c);
    return NULL;
}

struct reader_arg {
    weir_chan *w;
    int id;
    size_t maxlen;
    uint64_t got;
    uint64_t hash;
    int end; /* -EPIPE at the end, or the error */
    char errtext[300]; /* text of an error record, if one arrived */
    struct t_fail fail;
};

static void *reader_thr(void *p)
{
    struct reader_arg *a = p;
    uint64_t h = T_FNV_OFF;
    for (;;) {
        weir_chan_msg m;
        int r = weir_chan_read_msg(a->w, a->id, &m, TMO);
        if (r < 0) {
            a->end = r;
            break;
        }
        if (m.flags & WEIR_MSG_ERROR) {
            snprintf(a->errtext, sizeof a->errtext, "%s", (const char *)m.data);
            weir_chan_release(a->w, a->id);
            continue;
        }
        size_t want = msg_len(a->got, a->maxlen);
        if (m.len != want) {
            t_failf(&a->fail, "reader %d: message %llu has %zu bytes, expected %zu", a->id,
                    (unsigned long long)a->got, m.len, want);
            break;
        }
        long bad = t_check(m.data, m.len, a->got);
        if (bad >= 0) {
            t_failf(&a->fail, "reader %d: message %llu byte %ld wrong", a->id,
                    (unsigned long long)a->got, bad);
            break;
        }
        h = hash_msg(h, a->got, m.data, m.len);
        a->got++;
        weir_chan_release(a->w, a->id);
    }
    a->hash = h;
    return NULL;
}

static int count_fds(void)
{
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1;
}

static int count_threads(void)
{
    int n = 0;
    DIR *d = opendir("/proc/self/task");
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

static int count_maps(void)
{
    FILE *f = fopen("/proc/self/maps", "r");
    int n = 0, ch;
    while ((ch = fgetc(f)) != EOF)
        n += ch == '\n';
    fclose(f);
    return n;
}

static weir_chan *mkchan(const char *label, unsigned depth, size_t slot)
{
    weir_chan_opts o = {.slot_bytes = slot, .depth = depth};
    weir_chan *c = weir_chan_create(NULL, &o);
    cr_assert_not_null(c, "chan create: %s", weir_errmsg());
    (void)label;
    return c;
}

/* Stream n messages c -> link -> w with nreaders readers on w; asserts everything. */
static void run_stream(const char *bind, uint64_t n, size_t maxlen, unsigned nreaders,
                       unsigned depth, unsigned credits)
{
    weir_chan *c = mkchan("c", depth, 4096);
    weir_chan *w = mkchan("w", depth, 4096);
    struct reader_arg ra[3];
    pthread_t rt[3], wt;
    for (unsigned i = 0; i < nreaders; i++) {
        memset(&ra[i], 0, sizeof ra[i]);
        ra[i].w = w;
        ra[i].maxlen = maxlen;
        ra[i].id = weir_chan_register_reader(w);
        cr_assert_geq(ra[i].id, 0);
    }
    weir_link_opts lo = {.credits = credits, .timeout_ms = 5000};
    weir_link *rx = weir_link_listen(w, bind, &lo);
    cr_assert_not_null(rx, "listen: %s", weir_errmsg());
    weir_link *tx = weir_link_connect(c, weir_link_endpoint(rx), &lo);
    cr_assert_not_null(tx, "connect: %s", weir_errmsg());
    for (unsigned i = 0; i < nreaders; i++)
        pthread_create(&rt[i], NULL, reader_thr, &ra[i]);
    struct writer_arg wa = {.c = c, .n = n, .maxlen = maxlen, .close_at_end = 1};
    pthread_create(&wt, NULL, writer_thr, &wa);
    pthread_join(wt, NULL);
    cr_assert_eq(wa.fail.text[0], 0, "%s", wa.fail.text);
    for (unsigned i = 0; i < nreaders; i++) {
        pthread_join(rt[i], NULL);
        cr_assert_eq(ra[i].fail.text[0], 0, "%s", ra[i].fail.text);
        cr_assert_eq(ra[i].end, -EPIPE, "reader %u ended with %d", i, ra[i].end);
        cr_assert_eq(ra[i].got, n, "reader %u got %llu of %llu", i,
                     (unsigned long long)ra[i].got, (unsigned long long)n);
        cr_assert_eq(ra[i].hash, wa.hash, "reader %u: running checksum differs", i);
    }
    struct weir_link_stats st;
    cr_assert_eq(weir_link_stats(tx, &st), 0);
    cr_assert_eq(st.messages, n);
    cr_assert_eq(st.reconnects, 0, "reconnects %llu, last refusal: %s", (unsigned long long)st.reconnects, st.last_refusal);
    cr_assert_eq(weir_link_stats(rx, &st), 0);
    cr_assert_eq(st.messages, n);
    for (int k = 0; k < 200 && weir_link_status(tx) == 0; k++)
        t_sleep_ms(5);
    cr_assert_eq(weir_link_status(tx), -EPIPE, "sender status %d: %s", weir_link_status(tx),
                 weir_errmsg());
    cr_assert_eq(weir_link_status(rx), -EPIPE);
    cr_assert_eq(weir_link_free(tx), -EPIPE);
    cr_assert_eq(weir_link_free(rx), -EPIPE);
    weir_chan_free(c);
    weir_chan_free(w);
}

Test(net, loopback_small_stream, .timeout = 60)
{
    run_stream("tcp://127.0.0.1:0", 20000, SMALL_MAX, 1, 8, 0);
}
