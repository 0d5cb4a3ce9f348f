/* SPDX-License-Identifier: MIT */
/*
 * tests/test_ring_window.c - the ring's "hold a window, release later"
 * reader mode (channels/ring_window.h): in-order and out-of-order release,
 * rewind, generations (messages larger than the slot), writer gating, and a
 * taker and a releaser on two threads.
 */
#include <criterion/criterion.h>

#include <pthread.h>

#include "channels/ring_window.h"
#include "chan_util.h"

static weir_chan *mk(unsigned depth, size_t slot)
{
    weir_chan_opts o = {.slot_bytes = slot, .depth = depth};
    weir_chan *c = weir_chan_create(NULL, &o);
    cr_assert_not_null(c, "%s", weir_errmsg());
    return c;
}

TestSuite(window, .fini = t_heap_check);

Test(window, hold_all_then_release_upto)
{
    weir_chan *c = mk(4, 64);
    int id = weir_chan_register_reader(c);
    struct weir__window w;
    cr_assert_eq(weir__window_open(&w, c, id), 0);
    for (uint64_t s = 0; s < 4; s++)
        cr_assert_eq(weir_chan_write(c, &s, sizeof s, TMO), 0);
    /* the window holds all four: the writer is gated */
    cr_assert_eq(weir_chan_write(c, "x", 1, 0), -ETIMEDOUT);
    weir_chan_msg m[4];
    for (uint64_t s = 0; s < 4; s++) {
        cr_assert_eq(weir__window_next(&w, &m[s], TMO), 0);
        cr_assert_eq(m[s].seq, s);
        cr_assert_eq(*(const uint64_t *)m[s].data, s);
    }
    cr_assert_eq(weir__window_next(&w, &m[0], 0), -ETIMEDOUT);
    cr_assert_str_eq(weir_errmsg(), "channel 'anon': window of reader 0: no message yet");
    /* all four still readable (held) */
    for (uint64_t s = 0; s < 4; s++)
        cr_assert_eq(*(const uint64_t *)m[s].data, s);
    cr_assert_eq(weir__window_release_upto(&w, 2, 4), 0);
    cr_assert_eq(weir__chan_read_seq(c, id), 2);
    cr_assert_eq(weir_chan_write(c, "x", 1, 0), 0);
    cr_assert_eq(weir_chan_write(c, "y", 1, 0), 0);
    cr_assert_eq(weir_chan_write(c, "z", 1, 0), -ETIMEDOUT);
    cr_assert_eq(weir__window_release_upto(&w, 1, 4), -EINVAL);
    cr_assert_str_eq(weir_errmsg(), "channel 'anon': window of reader 0: release_upto outside the held window");
    cr_assert_eq(weir__window_release_upto(&w, 5, 4), -EINVAL);
    weir__window_fini(&w);
    weir_chan_free(c);
}

Test(window, out_of_order_release)
{
    weir_chan *c = mk(8, 64);
    int id = weir_chan_register_reader(c);
    struct weir__window w;
    cr_assert_eq(weir__window_open(&w, c, id), 0);
    weir_chan_msg m;
    for (uint64_t s = 0; s < 5; s++) {
        cr_assert_eq(weir_chan_write(c, &s, sizeof s, TMO), 0);
        cr_assert_eq(weir__window_next(&w, &m, TMO), 0);
    }
    cr_assert_eq(weir__window_release_one(&w, 3, 5), 0);
    cr_assert_eq(weir__window_release_one(&w, 1, 5), 0);
    cr_assert_eq(weir__chan_read_seq(c, id), 0, "0 still held");
    cr_assert_eq(weir__window_release_one(&w, 1, 5), -EINVAL, "twice");
    cr_assert_eq(weir__window_release_one(&w, 0, 5), 0);
    cr_assert_eq(weir__chan_read_seq(c, id), 2, "0 and 1 released, 2 held");
    cr_assert_eq(weir__window_release_one(&w, 2, 5), 0);
    cr_assert_eq(weir__chan_read_seq(c, id), 4, "3 was released before");
    cr_assert_eq(weir__window_release_one(&w, 5, 5), -EINVAL, "not taken");
    cr_assert_eq(weir__window_release_one(&w, 4, 5), 0);
    cr_assert_eq(weir__window_released(&w), 5);
    weir__window_fini(&w);
    weir_chan_free(c);
}

Test(window, rewind_and_generations)
{
    weir_chan *c = mk(4, 64);
    int id = weir_chan_register_reader(c);
    struct weir__window w;
    cr_assert_eq(weir__window_open(&w, c, id), 0);
    uint8_t big[5000];
    weir_chan_msg m;
    /* messages 0..2 small, 3 grows the channel, 4..5 in the new generation */
    for (uint64_t s = 0; s < 6; s++) {
        size_t len = s == 3 ? sizeof big : 16;
        t_fill(big, len, s);
        cr_assert_eq(weir_chan_write(c, big, len, TMO), 0, "%s", weir_errmsg());
        cr_assert_eq(weir__window_next(&w, &m, TMO), 0);
        cr_assert_eq(m.seq, s);
        cr_assert_eq(m.len, len);
        cr_assert_eq(t_check(m.data, m.len, s), -1);
        if (s == 1 || s == 4)
            cr_assert_eq(weir__window_release_upto(&w, s, s + 1), 0);
    }
    /* rewind to the first held message (4) and again past the growth from 1 */
    cr_assert_eq(weir__window_rewind(&w, 3), -EINVAL);
    cr_assert_eq(weir__window_rewind(&w, 4), 0);
    for (uint64_t s = 4; s < 6; s++) {
        cr_assert_eq(weir__window_next(&w, &m, TMO), 0);
        cr_assert_eq(m.seq, s);
        cr_assert_eq(t_check(m.data, m.len, s), -1);
    }
    weir__window_fini(&w);
    weir_chan_free(c);
}

struct rel_arg {
    struct weir__window *w;
    uint64_t *taken; /* published by the taker */
    uint64_t n;
};

static void *releaser(void *p)
{
    struct rel_arg *a = p;
    uint64_t rel = 0;
    while (rel < a->n) {
        uint64_t t = __atomic_load_n(a->taken, __ATOMIC_ACQUIRE);
        if (t > rel) {
            weir__window_release_upto(a->w, t, t);
            rel = t;
        }
    }
    return NULL;
}

static void *writer(void *p)
{
    weir_chan *c = p;
    uint8_t buf[512];
    for (uint64_t s = 0; s < 100000; s++) {
        size_t len = 8 + t_len_for(s, 500);
        t_fill(buf, len, s);
        if (weir_chan_write(c, buf, len, TMO) < 0)
            return (void *)1;
    }
    weir_chan_close(c);
    return NULL;
}

Test(window, taker_and_releaser_threads, .timeout = 60)
{
    weir_chan *c = mk(16, 512);
    int id = weir_chan_register_reader(c);
    struct weir__window w;
    cr_assert_eq(weir__window_open(&w, c, id), 0);
    uint64_t taken = 0;
    struct rel_arg ra = {&w, &taken, 100000};
    pthread_t rt, wt;
    pthread_create(&rt, NULL, releaser, &ra);
    pthread_create(&wt, NULL, writer, c);
    weir_chan_msg m;
    uint64_t s = 0;
    int r;
    while ((r = weir__window_next(&w, &m, TMO)) == 0 || r == -EINTR) {
        if (r)
            continue;
        cr_assert_eq(m.seq, s);
        cr_assert_eq(m.len, 8 + t_len_for(s, 500));
        cr_assert_eq(t_check(m.data, m.len, s), -1, "message %llu", (unsigned long long)s);
        s++;
        __atomic_store_n(&taken, s, __ATOMIC_RELEASE);
    }
    cr_assert_eq(r, -EPIPE, "%s", weir_errmsg());
    cr_assert_eq(s, 100000);
    void *wr;
    pthread_join(wt, &wr);
    pthread_join(rt, NULL);
    cr_assert_null(wr);
    weir__window_fini(&w);
    weir_chan_free(c);
}

/* The taken count a releaser on another thread bounds its releases by
 * (the driver's weir_result_free), and the starved time of a window's
 * waits in the reader's counters, as a plain reader's. */
Test(window, taken_count_and_starved_time)
{
    weir_chan *c = mk(4, 64);
    int id = weir_chan_register_reader(c);
    struct weir__window w;
    cr_assert_eq(weir__window_open(&w, c, id), 0);
    cr_assert_eq(weir__window_taken(&w), 0);
    weir_chan_msg m;
    cr_assert_eq(weir__window_next(&w, &m, 30), -ETIMEDOUT);
    cr_assert_str_eq(weir_errmsg(), "channel 'anon': window of reader 0: timed out waiting for a message");
    struct weir_chan_stats st;
    cr_assert_eq(weir_chan_stats(c, &st), 0);
    cr_assert_eq(st.nreaders, 1);
    cr_assert(st.readers[0].starved_ns >= 25000000ull, "starved %llu ns",
              (unsigned long long)st.readers[0].starved_ns);
    for (uint64_t s = 0; s < 3; s++) {
        cr_assert_eq(weir_chan_write(c, &s, sizeof s, TMO), 0);
        cr_assert_eq(weir__window_next(&w, &m, TMO), 0);
        cr_assert_eq(weir__window_taken(&w), s + 1);
    }
    cr_assert_eq(weir__window_release_one(&w, 2, weir__window_taken(&w)), 0);
    cr_assert_eq(weir__window_release_one(&w, 0, weir__window_taken(&w)), 0);
    cr_assert_eq(weir__window_release_one(&w, 1, weir__window_taken(&w)), 0);
    cr_assert_eq(weir__window_released(&w), 3);
    cr_assert_eq(weir__chan_read_seq(c, id), 3);
    cr_assert_eq(weir__window_rewind(&w, 3), 0);
    cr_assert_eq(weir__window_taken(&w), 3);
    weir__window_fini(&w);
    weir_chan_free(c);
}

static void *kicker(void *p)
{
    t_sleep_ms(50);
    weir__window_kick(p);
    return NULL;
}

/* A kick ends a wait with -EINTR; with kicks cleared (the driver's windows)
 * the same kick does not, and the wait runs to its timeout. */
Test(window, kicks_can_be_turned_off)
{
    weir_chan *c = mk(4, 64);
    int id = weir_chan_register_reader(c);
    struct weir__window w;
    cr_assert_eq(weir__window_open(&w, c, id), 0);
    cr_assert_eq(w.kicks, 1);
    weir_chan_msg m;
    for (int kicks = 1; kicks >= 0; kicks--) {
        w.kicks = kicks;
        pthread_t th;
        pthread_create(&th, NULL, kicker, &w);
        uint64_t t0 = t_now_ns();
        int r = weir__window_next(&w, &m, 400);
        double ms = t_ms_since(t0);
        pthread_join(th, NULL);
        if (kicks) {
            cr_assert_eq(r, -EINTR, "%d %s", r, weir_errmsg());
            cr_assert_str_eq(weir_errmsg(), "channel 'anon': window of reader 0: woken without a message");
            cr_assert(ms < 390, "returned after %.0f ms", ms);
        } else {
            cr_assert_eq(r, -ETIMEDOUT, "%d %s", r, weir_errmsg());
            cr_assert(ms >= 390, "returned after %.0f ms", ms);
        }
    }
    weir__window_fini(&w);
    weir_chan_free(c);
}
