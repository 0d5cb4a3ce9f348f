/* SPDX-License-Identifier: MIT */
/*
 * tests/test_chan_procs.c - channels shared between threads and processes:
 * counters read while they change, reader ids handed between handles and
 * processes (weir_chan_attach_reader), waiting for readers
 * (weir_chan_wait_readers), writers and readers that die (dead writers of
 * named channels, zombies). Each regression test is named after the bug it
 * pins (issues 7 and 13).
 *
 * Same conventions as tests/test_chan.c: the `leak` fixture, a timeout on
 * every blocking call, forked children report through CCHECK and _exit().
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <sys/mman.h>

#include "chan_util.h"

TestSuite(chan_procs, .init = leak_init, .fini = leak_fini, .timeout = 120);

static weir_chan *mk(const char *name, size_t slot, unsigned depth)
{
    weir_chan_opts o = {.slot_bytes = slot, .depth = depth};
    weir_chan *c = weir_chan_create(name, &o);
    cr_assert_not_null(c, "weir_chan_create(%s, slot %zu, depth %u): %d %s",
                       name ? name : "NULL", slot, depth, weir_errcode(), weir_errmsg());
    return c;
}

static void stats(const weir_chan *c, struct weir_chan_stats *st)
{
    memset(st, 0xa5, sizeof *st);
    int rc = weir_chan_stats(c, st);
    cr_assert_eq(rc, 0, "weir_chan_stats: %d %s", rc, weir_errmsg());
}

/* Check a failure: return value, weir_errcode() and an exact piece of the text. */
#define EXPECT_ERR(expr, code, text)                                                               \
    do {                                                                                           \
        int rc_ = (expr);                                                                          \
        cr_assert_eq(rc_, (code), "%s: expected %d (%s), got %d; errmsg '%s'", #expr, (code),     \
                     strerror(-(code)), rc_, weir_errmsg());                                       \
        cr_assert_eq(weir_errcode(), (code), "weir_errcode() is %d after %s, expected %d",        \
                     weir_errcode(), #expr, (code));                                               \
        cr_assert(strstr(weir_errmsg(), (text)) != NULL, "weir_errmsg() after %s: '%s', want '%s'", \
                  #expr, weir_errmsg(), (text));                                                   \
    } while (0)

/* =========================================================================== */
/* Issue 7, finding 3: the error-records counter is read while it changes      */
/* =========================================================================== */

#define ERR_RECORDS 20000

struct err_writer {
    pthread_t th;
    weir_chan *c;
    struct t_fail fail;
};

static void *err_writer_main(void *arg)
{
    struct err_writer *w = arg;
    char text[32];
    for (int i = 0; i < ERR_RECORDS; i++) {
        snprintf(text, sizeof text, "e%d", i);
        if (weir_chan_write_error(w->c, text, TMO) != 0) {
            t_failf(&w->fail, "error record %d not written", i);
            break;
        }
    }
    return NULL;
}

/*
 * The writer thread writes error records while this thread reads them and
 * reads the counters through weir_chan_stats: the count never goes back,
 * never passes what was written, ends exact, and every record's text is
 * checksummed. Under ThreadSanitizer the old plain `errors++` is a data
 * race with the stats reader, and the test fails.
 */
Test(chan_procs, error_counter_exact_while_stats_read)
{
    weir_chan *c = mk(NULL, 64, 16);
    int id = weir_chan_register_reader(c);
    cr_assert_geq(id, 0, "%s", weir_errmsg());
    struct err_writer w = {.c = c};
    cr_assert_eq(pthread_create(&w.th, NULL, err_writer_main, &w), 0);
    uint64_t last = 0, sum = T_FNV_OFF, want = T_FNV_OFF;
    char text[32];
    for (int i = 0; i < ERR_RECORDS; i++) {
        weir_chan_msg m;
        int rc = weir_chan_read_msg(c, id, &m, TMO);
        cr_assert_eq(rc, 0, "record %d: %d %s", i, rc, weir_errmsg());
        cr_assert_eq(m.flags, WEIR_MSG_ERROR, "record %d: flags 0x%x", i, m.flags);
        sum = t_fnv(sum, m.data, m.len);
        int n = snprintf(text, sizeof text, "e%d", i);
        want = t_fnv(want, text, (size_t)n + 1);
        cr_assert_eq(weir_chan_release(c, id), 0, "%s", weir_errmsg());
        if (i % 7 == 0) {
            struct weir_chan_stats st;
            stats(c, &st);
            cr_assert_geq(st.errors, last, "errors went back from %llu to %llu",
                          (unsigned long long)last, (unsigned long long)st.errors);
            /* counted after publication: at least every record before this one */
            cr_assert_geq(st.errors, (uint64_t)i, "record %d read but errors = %llu", i,
                          (unsigned long long)st.errors);
            cr_assert_leq(st.errors, st.messages, "more errors (%llu) than messages (%llu)",
                          (unsigned long long)st.errors, (unsigned long long)st.messages);
            last = st.errors;
        }
    }
    pthread_join(w.th, NULL);
    cr_assert(w.fail.text[0] == 0, "%s", w.fail.text);
    cr_assert_eq(sum, want, "checksum of the error texts: %016llx, expected %016llx",
                 (unsigned long long)sum, (unsigned long long)want);
    struct weir_chan_stats st;
    stats(c, &st);
    cr_assert_eq(st.errors, ERR_RECORDS, "errors = %llu", (unsigned long long)st.errors);
    cr_assert_eq(st.messages, ERR_RECORDS);
    cr_assert_eq(weir_chan_deregister_reader(c, id), 0);
    weir_chan_free(c);
}

/* The same across processes: a child writes, the parent reads and counts. */
Test(chan_procs, error_counter_exact_across_processes)
{
    char nm[64];
    weir_chan *c = mk(t_name(nm, sizeof nm, "errx"), 64, 16);
    int id = weir_chan_register_reader(c);
    cr_assert_geq(id, 0, "%s", weir_errmsg());
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        for (int i = 0; i < ERR_RECORDS; i++)
            CCHECK(weir_chan_write_error(c, "boom", TMO) == 0, "record %d", i);
        _exit(0);
    }
    uint64_t last = 0;
    for (int i = 0; i < ERR_RECORDS; i++) {
        weir_chan_msg m;
        cr_assert_eq(weir_chan_read_msg(c, id, &m, TMO), 0, "record %d: %s", i, weir_errmsg());
        cr_assert_eq(m.flags, WEIR_MSG_ERROR);
        cr_assert_eq(m.len, 5);
        cr_assert(memcmp(m.data, "boom", 5) == 0, "record %d: text %.*s", i, (int)m.len, (const char *)m.data);
        cr_assert_eq(weir_chan_release(c, id), 0);
        struct weir_chan_stats st;
        stats(c, &st);
        cr_assert(st.errors >= last && st.errors >= (uint64_t)i && st.errors <= st.messages, "errors %llu at record %d",
                  (unsigned long long)st.errors, i);
        last = st.errors;
    }
    char sb[64];
    int ws = t_wait_child(pid, TMO);
    cr_assert(ws != -1 && WIFEXITED(ws) && WEXITSTATUS(ws) == 0, "writer: %s",
              t_status_str(ws, sb, sizeof sb));
    struct weir_chan_stats st;
    stats(c, &st);
    cr_assert_eq(st.errors, ERR_RECORDS, "errors = %llu", (unsigned long long)st.errors);
    cr_assert_eq(weir_chan_deregister_reader(c, id), 0);
    weir_chan_free(c);
}

/* =========================================================================== */
/* Helpers for the multi-process tests                                         */
/* =========================================================================== */

/* Write message seq (t_len_for(seq, max) bytes of pattern seq). */
static void wr_pat(weir_chan *c, uint64_t seq, size_t max)
{
    size_t len = t_len_for(seq, max);
    void *p = weir_chan_reserve(c, len, TMO);
    cr_assert_not_null(p, "reserve of message %llu: %d %s", (unsigned long long)seq,
                       weir_errcode(), weir_errmsg());
    t_fill(p, len, seq);
    cr_assert_eq(weir_chan_commit(c, len), 0, "%s", weir_errmsg());
}

/* The checksum a reader of messages first..first+n-1 of wr_pat must compute. */
static uint64_t want_sum(uint64_t first, uint64_t n, size_t max)
{
    uint64_t h = T_FNV_OFF;
    static uint8_t buf[4096];
    for (uint64_t s = first; s < first + n; s++) {
        size_t len = t_len_for(s, max);
        t_fill(buf, len, s);
        h = t_fnv_u64(t_fnv(h, buf, len), s);
    }
    return h;
}

/*
 * In a child: read until -EPIPE, checking every message's sequence number,
 * length and bytes; returns the checksum and the count through *n.
 * The final code (-EPIPE expected) goes to *end.
 */
static uint64_t child_drain(weir_chan *c, int id, uint64_t first, size_t max, uint64_t *n,
                            int timeout_ms, int *end)
{
    uint64_t h = T_FNV_OFF, s = first;
    for (;;) {
        weir_chan_msg m;
        int rc = weir_chan_read_msg(c, id, &m, timeout_ms);
        if (rc < 0) {
            *end = rc;
            break;
        }
        CCHECK(m.seq == s, "reader %d: seq %llu, expected %llu", id, (unsigned long long)m.seq,
               (unsigned long long)s);
        CCHECK(m.len == t_len_for(s, max), "reader %d: message %llu has %zu bytes", id,
               (unsigned long long)s, m.len);
        CCHECK(t_check(m.data, m.len, s) == -1, "reader %d: message %llu corrupt", id,
               (unsigned long long)s);
        h = t_fnv_u64(t_fnv(h, m.data, m.len), s);
        CCHECK(weir_chan_release(c, id) == 0, "release");
        s++;
    }
    *n = s - first;
    return h;
}

/* Wait until child pid has exited and is a zombie (this process has not reaped it). */
static void wait_zombie(pid_t pid)
{
    for (int i = 0;; i++) {
        char path[64], buf[512];
        snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
        FILE *f = fopen(path, "re");
        cr_assert_not_null(f, "child %d vanished", (int)pid);
        size_t k = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[k] = 0;
        char *p = strrchr(buf, ')');
        if (p && p[1] && p[2] == 'Z')
            return;
        cr_assert_lt(i, 1000, "child %d never exited", (int)pid);
        t_sleep_ms(5);
    }
}

struct child_report {
    uint64_t sum;
    uint64_t n;
    int end;
    int pad;
};

/* =========================================================================== */
/* Issue 13, item 1: reader ids registered by a coordinator, read by children  */
/* =========================================================================== */

#define ATT_READERS 3
#define ATT_EARLY 4   /* messages written before the children attach */
#define ATT_MSGS 3000 /* messages in all */
#define ATT_MAX 300   /* largest message */

/*
 * The scenario of the issue: a coordinator creates a named channel,
 * registers three readers and forks three processes; each opens the channel
 * by name and reads with its id. Reading before attaching is -EINVAL with a
 * text that says what to do; after weir_chan_attach_reader every child
 * reads every message from the first one after registration (including
 * those written before it attached), the coordinator's handle can no longer
 * use the ids, stats follow the children's pids, and the writer never
 * times out.
 */
Test(chan_procs, attach_reader_ids_registered_by_coordinator)
{
    char nm[64];
    weir_chan *c = mk(t_name(nm, sizeof nm, "att"), 64, 8);
    int ids[ATT_READERS];
    for (int i = 0; i < ATT_READERS; i++) {
        ids[i] = weir_chan_register_reader(c);
        cr_assert_eq(ids[i], i, "register %d: %d %s", i, ids[i], weir_errmsg());
    }
    for (uint64_t s = 0; s < ATT_EARLY; s++)
        wr_pat(c, s, ATT_MAX);
    int up[2];
    cr_assert_eq(pipe(up), 0);
    pid_t pids[ATT_READERS];
    for (int i = 0; i < ATT_READERS; i++) {
        pids[i] = fork();
        cr_assert_geq(pids[i], 0);
        if (pids[i] == 0) {
            close(up[0]);
            weir_chan *h = weir_chan_open(nm);
            CCHECK(h != NULL, "open %s", nm);
            weir_chan_msg m;
            int rc = weir_chan_read_msg(h, ids[i], &m, 0);
            CCHECK(rc == -EINVAL && weir_errcode() == -EINVAL, "read before attach: %d", rc);
            char want[400];
            snprintf(want, sizeof want,
                     "channel '%s': reader %d is registered through another handle: attach it "
                     "first (weir_chan_attach_reader)",
                     nm, ids[i]);
            CCHECK(strcmp(weir_errmsg(), want) == 0, "text '%s'", weir_errmsg());
            CCHECK(weir_chan_attach_reader(h, ids[i]) == 0, "attach %d", ids[i]);
            struct child_report r = {0};
            r.sum = child_drain(h, ids[i], 0, ATT_MAX, &r.n, TMO, &r.end);
            CCHECK(weir_chan_deregister_reader(h, ids[i]) == 0, "deregister");
            weir_chan_free(h);
            CCHECK(t_write_full(up[1], &r, sizeof r) == 0, "pipe");
            _exit(0);
        }
    }
    close(up[1]);
    /* Every child attached once the ids' pids are theirs. */
    for (int tries = 0;; tries++) {
        struct weir_chan_stats st;
        stats(c, &st);
        int moved = 0;
        for (int i = 0; i < ATT_READERS; i++) {
            const struct weir_chan_reader_stats *rs = t_reader_stats(&st, ids[i]);
            cr_assert_not_null(rs, "reader %d vanished", ids[i]);
            moved += rs->pid == pids[i];
        }
        cr_assert_eq(st.nreaders, ATT_READERS);
        if (moved == ATT_READERS)
            break;
        cr_assert_lt(tries, 1000, "children did not attach within 10 s (%d of %d)", moved,
                     ATT_READERS);
        t_sleep_ms(10);
    }
    /* The coordinator's handle lost the ids. */
    weir_chan_msg m;
    char want[400];
    snprintf(want, sizeof want,
             "channel '%s': reader 1 was taken over by another handle (attached or registered "
             "again)",
             nm);
    EXPECT_ERR(weir_chan_read_msg(c, 1, &m, 0), -EINVAL, want);
    EXPECT_ERR(weir_chan_release(c, 1), -EINVAL, "reader 1 is registered through another handle");
    EXPECT_ERR(weir_chan_attach_reader(c, 5), -EINVAL, "reader 5 is not registered");
    EXPECT_ERR(weir_chan_attach_reader(c, 64), -EINVAL, "reader id 64 out of range 0..63");
    for (uint64_t s = ATT_EARLY; s < ATT_MSGS; s++)
        wr_pat(c, s, ATT_MAX);
    cr_assert_eq(weir_chan_close(c), 0);
    uint64_t want_h = want_sum(0, ATT_MSGS, ATT_MAX);
    for (int i = 0; i < ATT_READERS; i++) {
        struct child_report r;
        cr_assert_eq(t_read_full(up[0], &r, sizeof r, TMO), 0, "a child did not report");
        cr_assert_eq(r.end, -EPIPE, "a child's read ended with %d, not -EPIPE", r.end);
        cr_assert_eq(r.n, ATT_MSGS, "a child read %llu messages", (unsigned long long)r.n);
        cr_assert_eq(r.sum, want_h, "a child's checksum %016llx, expected %016llx",
                     (unsigned long long)r.sum, (unsigned long long)want_h);
    }
    for (int i = 0; i < ATT_READERS; i++) {
        char sb[64];
        int ws = t_wait_child(pids[i], TMO);
        cr_assert(ws != -1 && WIFEXITED(ws) && WEXITSTATUS(ws) == 0, "child %d: %s", i,
                  t_status_str(ws, sb, sizeof sb));
    }
    close(up[0]);
    struct weir_chan_stats st;
    stats(c, &st);
    cr_assert_eq(st.nreaders, 0, "%u readers left", st.nreaders);
    weir_chan_free(c);
}

/* In one process: an id moves between two handles; freeing the old one keeps it. */
Test(chan_procs, attach_moves_id_between_handles)
{
    char nm[64];
    weir_chan *c = mk(t_name(nm, sizeof nm, "att2"), 64, 4);
    weir_chan *h = weir_chan_open(nm);
    cr_assert_not_null(h, "%s", weir_errmsg());
    weir_chan *h2 = weir_chan_open(nm);
    cr_assert_not_null(h2, "%s", weir_errmsg());
    int id = weir_chan_register_reader(h);
    cr_assert_eq(id, 0);
    wr_pat(c, 0, 64);
    wr_pat(c, 1, 64);
    weir_chan_msg m;
    cr_assert_eq(weir_chan_read_msg(h, id, &m, TMO), 0);
    cr_assert_eq(m.seq, 0);
    /* h holds message 0 without releasing it: h2 starts at message 0 again */
    cr_assert_eq(weir_chan_attach_reader(h2, id), 0, "%s", weir_errmsg());
    EXPECT_ERR(weir_chan_release(h, id), -EINVAL, "reader 0 was taken over by another handle");
    weir_chan_free(h); /* must not deregister the id h2 now owns */
    struct weir_chan_stats st;
    stats(c, &st);
    cr_assert_eq(st.nreaders, 1, "freeing the old handle deregistered the attached id");
    uint64_t sum = T_FNV_OFF;
    for (uint64_t s = 0; s < 2; s++) {
        cr_assert_eq(weir_chan_read_msg(h2, id, &m, TMO), 0, "%s", weir_errmsg());
        cr_assert_eq(m.seq, s);
        cr_assert_eq(t_check(m.data, m.len, s), -1);
        sum = t_fnv_u64(t_fnv(sum, m.data, m.len), s);
        cr_assert_eq(weir_chan_release(h2, id), 0);
    }
    cr_assert_eq(sum, want_sum(0, 2, 64));
    cr_assert_eq(weir_chan_deregister_reader(h2, id), 0);
    weir_chan_free(h2);
    weir_chan_free(c);
}

/* =========================================================================== */
/* Issue 13, item 2: waiting for readers                                       */
/* =========================================================================== */

#define WR_READERS 3
#define WR_MSGS 2000
#define WR_MAX 200

/*
 * The writer waits for three reader processes that open the channel by name
 * and register at staggered times; it returns only when all three are
 * registered, and then every reader gets every message from the first.
 */
Test(chan_procs, wait_readers_then_none_misses_the_first_message)
{
    char nm[64];
    weir_chan *c = mk(t_name(nm, sizeof nm, "wrd"), 64, 8);
    int up[2];
    cr_assert_eq(pipe(up), 0);
    pid_t pids[WR_READERS];
    for (int i = 0; i < WR_READERS; i++) {
        pids[i] = fork();
        cr_assert_geq(pids[i], 0);
        if (pids[i] == 0) {
            close(up[0]);
            t_sleep_ms(50u + 100u * (unsigned)i);
            weir_chan *h = weir_chan_open(nm);
            CCHECK(h != NULL, "open");
            int id = weir_chan_register_reader(h);
            CCHECK(id >= 0, "register");
            struct child_report r = {0};
            r.sum = child_drain(h, id, 0, WR_MAX, &r.n, TMO, &r.end);
            CCHECK(weir_chan_deregister_reader(h, id) == 0, "deregister");
            weir_chan_free(h);
            CCHECK(t_write_full(up[1], &r, sizeof r) == 0, "pipe");
            _exit(0);
        }
    }
    close(up[1]);
    EXPECT_ERR(weir_chan_wait_readers(c, 65, 0), -EINVAL,
               "cannot wait for 65 readers: at most 64 can register");
    uint64_t t0 = t_now_ns();
    int rc = weir_chan_wait_readers(c, WR_READERS, TMO);
    cr_assert_eq(rc, 0, "wait_readers: %d %s", rc, weir_errmsg());
    struct weir_chan_stats st;
    stats(c, &st);
    cr_assert_geq(st.nreaders, WR_READERS, "returned with %u readers", st.nreaders);
    cr_assert_geq(t_ms_since(t0), 200.0, "returned before the last reader could register");
    for (uint64_t s = 0; s < WR_MSGS; s++)
        wr_pat(c, s, WR_MAX);
    cr_assert_eq(weir_chan_close(c), 0);
    uint64_t want_h = want_sum(0, WR_MSGS, WR_MAX);
    for (int i = 0; i < WR_READERS; i++) {
        struct child_report r;
        cr_assert_eq(t_read_full(up[0], &r, sizeof r, TMO), 0, "a child did not report");
        cr_assert_eq(r.end, -EPIPE);
        cr_assert_eq(r.n, WR_MSGS, "a reader missed messages: %llu of %d",
                     (unsigned long long)r.n, WR_MSGS);
        cr_assert_eq(r.sum, want_h, "checksum %016llx, expected %016llx",
                     (unsigned long long)r.sum, (unsigned long long)want_h);
    }
    for (int i = 0; i < WR_READERS; i++) {
        char sb[64];
        int ws = t_wait_child(pids[i], TMO);
        cr_assert(ws != -1 && WIFEXITED(ws) && WEXITSTATUS(ws) == 0, "child %d: %s", i,
                  t_status_str(ws, sb, sizeof sb));
    }
    close(up[0]);
    weir_chan_free(c);
}

struct closer {
    pthread_t th;
    weir_chan *c;
    unsigned ms;
};

static void *closer_main(void *arg)
{
    struct closer *k = arg;
    t_sleep_ms(k->ms);
    weir_chan_close(k->c);
    return NULL;
}

Test(chan_procs, wait_readers_timeout_and_close)
{
    weir_chan *c = mk(NULL, 64, 4);
    char want[128];
    EXPECT_ERR(weir_chan_wait_readers(c, 1, 0), -ETIMEDOUT,
               "channel 'anon': timed out after 0 ms waiting for 1 readers (0 registered)");
    int id = weir_chan_register_reader(c);
    cr_assert_eq(weir_chan_wait_readers(c, 1, 0), 0, "%s", weir_errmsg());
    cr_assert_eq(weir_chan_wait_readers(c, 0, 0), 0);
    uint64_t t0 = t_now_ns();
    snprintf(want, sizeof want, "timed out after 150 ms waiting for 2 readers (1 registered)");
    EXPECT_ERR(weir_chan_wait_readers(c, 2, 150), -ETIMEDOUT, want);
    double ms = t_ms_since(t0);
    cr_assert(ms >= 149.0 && ms < 2000.0, "a 150 ms wait took %.1f ms", ms);
    /* a close wakes a waiter that would wait forever */
    struct closer k = {.c = c, .ms = 100};
    cr_assert_eq(pthread_create(&k.th, NULL, closer_main, &k), 0);
    t0 = t_now_ns();
    EXPECT_ERR(weir_chan_wait_readers(c, 2, -1), -EPIPE, "closed while waiting for 2 readers");
    ms = t_ms_since(t0);
    pthread_join(k.th, NULL);
    cr_assert_lt(ms, 2000.0, "close woke the waiter only after %.1f ms", ms);
    cr_assert_eq(weir_chan_deregister_reader(c, id), 0);
    weir_chan_free(c);
}

/* =========================================================================== */
/* Issue 13, item 3: a named channel's writer dies                             */
/* =========================================================================== */

#define DW_MSGS 500
#define DW_MAX 100

/*
 * The scenario of the issue: the writer of a named channel is SIGKILLed
 * while its readers wait (one with timeout -1, one with a timeout). Both
 * first get every message it committed, then -EPIPE "writer (pid N) died"
 * within a bounded time (the dead writer is a zombie until this process,
 * blocked in the read, reaps it). The name it left is then reclaimed by a
 * new create.
 */
Test(chan_procs, dead_writer_of_named_channel_is_epipe)
{
    char nm[64];
    t_name(nm, sizeof nm, "dw");
    int down[2];
    cr_assert_eq(pipe(down), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        close(down[1]);
        weir_chan_opts o = {.slot_bytes = 128, .depth = 512}; /* all DW_MSGS fit: b reads late */
        weir_chan *w = weir_chan_create(nm, &o);
        CCHECK(w != NULL, "create");
        CCHECK(weir_chan_wait_readers(w, 2, TMO) == 0, "readers");
        for (uint64_t s = 0; s < DW_MSGS; s++) {
            size_t len = t_len_for(s, DW_MAX);
            void *p = weir_chan_reserve(w, len, TMO);
            CCHECK(p != NULL, "reserve %llu", (unsigned long long)s);
            t_fill(p, len, s);
            CCHECK(weir_chan_commit(w, len) == 0, "commit");
        }
        char b;
        CCHECK(t_read_full(down[0], &b, 1, TMO) == 0, "parent never said die");
        raise(SIGKILL); /* dies without closing or unlinking */
        _exit(3);
    }
    close(down[0]);
    weir_chan *h = NULL;
    for (int i = 0; i < 1000 && !h; i++) {
        h = weir_chan_open(nm);
        if (!h)
            t_sleep_ms(5);
    }
    cr_assert_not_null(h, "the writer's channel never appeared: %s", weir_errmsg());
    int a = weir_chan_register_reader(h), b = weir_chan_register_reader(h);
    cr_assert(a >= 0 && b >= 0, "%s", weir_errmsg());
    /* Reader a drains at once and then sleeps with no timeout. */
    uint64_t n = 0, sum = T_FNV_OFF;
    for (uint64_t s = 0; s < DW_MSGS; s++) {
        weir_chan_msg m;
        cr_assert_eq(weir_chan_read_msg(h, a, &m, TMO), 0, "message %llu: %s",
                     (unsigned long long)s, weir_errmsg());
        cr_assert_eq(m.seq, s);
        cr_assert_eq(t_check(m.data, m.len, s), -1);
        sum = t_fnv_u64(t_fnv(sum, m.data, m.len), s);
        cr_assert_eq(weir_chan_release(h, a), 0);
        n++;
    }
    cr_assert_eq(sum, want_sum(0, DW_MSGS, DW_MAX), "checksum of reader %d", a);
    char go = 1;
    cr_assert_eq(t_write_full(down[1], &go, 1), 0);
    uint64_t t0 = t_now_ns();
    weir_chan_msg m;
    char want[128];
    snprintf(want, sizeof want, "channel '%s': writer (pid %d) died (reader %d drained %d messages)",
             nm, (int)pid, a, DW_MSGS);
    EXPECT_ERR(weir_chan_read_msg(h, a, &m, -1), -EPIPE, want);
    double ms = t_ms_since(t0);
    cr_assert_lt(ms, 3000.0, "the death was noticed after %.0f ms", ms);
    /* Reader b had not read yet: it gets everything first, then the same end. */
    uint64_t got = 0;
    sum = T_FNV_OFF;
    int rc;
    while ((rc = weir_chan_read_msg(h, b, &m, TMO)) == 0) {
        cr_assert_eq(m.seq, got);
        sum = t_fnv_u64(t_fnv(sum, m.data, m.len), m.seq);
        cr_assert_eq(weir_chan_release(h, b), 0);
        got++;
    }
    cr_assert_eq(rc, -EPIPE, "reader %d ended with %d: %s", b, rc, weir_errmsg());
    cr_assert(strstr(weir_errmsg(), "writer (pid ") != NULL, "%s", weir_errmsg());
    cr_assert_eq(got, DW_MSGS);
    cr_assert_eq(sum, want_sum(0, DW_MSGS, DW_MAX), "checksum of reader %d", b);
    char sb[64];
    int ws = t_wait_child(pid, TMO);
    cr_assert(ws != -1 && WIFSIGNALED(ws) && WTERMSIG(ws) == SIGKILL, "writer: %s",
              t_status_str(ws, sb, sizeof sb));
    close(down[1]);
    cr_assert(t_shm_exists(nm), "the dead writer's name is expected to stay behind");
    weir_chan_free(h);
    /* The name a dead process left is reclaimed by a new create. */
    weir_chan *c = mk(nm, 64, 4);
    struct weir_chan_stats st;
    stats(c, &st);
    cr_assert_eq(st.messages, 0, "the reclaimed channel is not new");
    weir_chan_free(c);
    cr_assert(!t_shm_exists(nm));
}

/* A live creator's name stays -EEXIST; once it dies (a zombie too) it is reclaimed. */
Test(chan_procs, create_over_live_is_eexist_over_dead_reclaims)
{
    char nm[64];
    t_name(nm, sizeof nm, "own");
    int up[2], down[2];
    cr_assert_eq(pipe(up), 0);
    cr_assert_eq(pipe(down), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        close(up[0]);
        close(down[1]);
        weir_chan *w = weir_chan_create(nm, NULL);
        CCHECK(w != NULL, "create");
        char b = 1;
        CCHECK(t_write_full(up[1], &b, 1) == 0, "pipe");
        CCHECK(t_read_full(down[0], &b, 1, TMO) == 0, "parent never said go");
        _exit(0); /* leaves the name behind: no weir_chan_free */
    }
    close(up[1]);
    close(down[0]);
    char b;
    cr_assert_eq(t_read_full(up[0], &b, 1, TMO), 0, "child did not create");
    char want[400];
    snprintf(want, sizeof want, "channel '%s': a channel of this name exists (/dev/shm/weir.%s)",
             nm, nm);
    cr_assert_null(weir_chan_create(nm, NULL), "created over a live writer's channel");
    cr_assert_eq(weir_errcode(), -EEXIST);
    cr_assert(strcmp(weir_errmsg(), want) == 0, "%s", weir_errmsg());
    cr_assert_eq(t_write_full(down[1], &b, 1), 0);
    wait_zombie(pid); /* not reaped: that is the point */
    weir_chan *c = weir_chan_create(nm, NULL);
    cr_assert_not_null(c, "a zombie's channel was not reclaimed: %s", weir_errmsg());
    char sb[64];
    int ws = t_wait_child(pid, TMO);
    cr_assert(ws != -1 && WIFEXITED(ws) && WEXITSTATUS(ws) == 0, "child: %s",
              t_status_str(ws, sb, sizeof sb));
    close(up[0]);
    close(down[1]);
    weir_chan_free(c);
    cr_assert(!t_shm_exists(nm));
}

/* =========================================================================== */
/* Issue 13, item 4: a zombie reader is dead for weir_chan_reap_dead_readers     */
/* =========================================================================== */

/*
 * The scenario of the issue: a reader child _exits holding a message, and
 * its parent (the writer) has not called waitpid: the child is a zombie. The
 * writer is blocked by it until reap_dead_readers removes it, which it must
 * do while the child is still a zombie. Messages after that reach the live
 * reader intact.
 */
Test(chan_procs, zombie_reader_is_reaped)
{
    weir_chan *c = mk(NULL, 64, 2);
    int live = weir_chan_register_reader(c);
    cr_assert_geq(live, 0);
    int up[2];
    cr_assert_eq(pipe(up), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        close(up[0]);
        int id = weir_chan_register_reader(c);
        CCHECK(id >= 0, "register");
        CCHECK(t_write_full(up[1], &id, sizeof id) == 0, "pipe");
        weir_chan_msg m;
        CCHECK(weir_chan_read_msg(c, id, &m, TMO) == 0, "read");
        CCHECK(m.seq == 0 && t_check(m.data, m.len, 0) == -1, "message 0");
        _exit(0); /* holding message 0, still registered */
    }
    close(up[1]);
    int cid;
    cr_assert_eq(t_read_full(up[0], &cid, sizeof cid, TMO), 0);
    close(up[0]);
    cr_assert_eq(weir_chan_reap_dead_readers(c), 0, "reaped a live reader");
    wr_pat(c, 0, 64);
    wr_pat(c, 1, 64);
    wait_zombie(pid);
    uint64_t sum = T_FNV_OFF;
    for (uint64_t s = 0; s < 2; s++) {
        weir_chan_msg m;
        cr_assert_eq(weir_chan_read_msg(c, live, &m, TMO), 0);
        sum = t_fnv_u64(t_fnv(sum, m.data, m.len), m.seq);
        cr_assert_eq(weir_chan_release(c, live), 0);
    }
    /* the zombie holds message 0: the writer is blocked by it */
    cr_assert_null(weir_chan_reserve(c, 8, 0), "the zombie's reader does not hold the writer");
    cr_assert_eq(weir_errcode(), -ETIMEDOUT);
    cr_assert_eq(weir_chan_reap_dead_readers(c), 1, "a zombie reader was not reaped");
    struct weir_chan_stats st;
    stats(c, &st);
    cr_assert_eq(st.nreaders, 1);
    cr_assert_eq(st.readers[0].id, live);
    for (uint64_t s = 2; s < 200; s++) {
        wr_pat(c, s, 64);
        weir_chan_msg m;
        cr_assert_eq(weir_chan_read_msg(c, live, &m, TMO), 0);
        cr_assert_eq(m.seq, s);
        sum = t_fnv_u64(t_fnv(sum, m.data, m.len), m.seq);
        cr_assert_eq(weir_chan_release(c, live), 0);
    }
    cr_assert_eq(sum, want_sum(0, 200, 64), "checksum of the live reader");
    char sb[64];
    int ws = t_wait_child(pid, TMO);
    cr_assert(ws != -1 && WIFEXITED(ws) && WEXITSTATUS(ws) == 0, "child: %s",
              t_status_str(ws, sb, sizeof sb));
    cr_assert_eq(weir_chan_deregister_reader(c, live), 0);
    weir_chan_free(c);
}

/* =========================================================================== */
/* Issue 12, item 3: batches between processes                                  */
/* =========================================================================== */

#define BATCH_PROC_MSGS 200000ull

/* Message s: 8..64 bytes of t_fill's pattern for s (its length from s). */
static size_t bp_len(uint64_t s)
{
    return 8 + t_len_for(s, 56);
}

static uint64_t bp_add(uint64_t h, uint64_t s, const void *p, size_t len)
{
    h = t_fnv_u64(h, s);
    h = t_fnv_u64(h, len);
    return t_fnv(h, p, len);
}

/* A forked reader of an anonymous channel (inherited handle): read_n of
 * 1..100 at a time, checks every message, sends its count and checksum. */
static void bp_child(weir_chan *c, int id, int out_fd)
{
    uint64_t h = T_FNV_OFF, s = 0, rng = 0x243F6A8885A308D3ull * (uint64_t)(id + 1);
    weir_chan_msg m[100];
    for (;;) {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        unsigned want = 1 + (unsigned)(rng % 100);
        int k = weir_chan_read_n(c, id, m, want, TMO);
        if (k == -EPIPE)
            break;
        CCHECK(k >= 1 && (unsigned)k <= want, "read_n(%u) at %llu: %d", want,
               (unsigned long long)s, k);
        for (int i = 0; i < k; i++, s++) {
            CCHECK(m[i].seq == s && m[i].len == bp_len(s) && m[i].flags == 0,
                   "message %llu: seq %llu len %zu flags %u", (unsigned long long)s,
                   (unsigned long long)m[i].seq, m[i].len, m[i].flags);
            CCHECK(t_check(m[i].data, m[i].len, s) == -1, "message %llu corrupt",
                   (unsigned long long)s);
            h = bp_add(h, s, m[i].data, m[i].len);
        }
        CCHECK(weir_chan_release_n(c, id, (unsigned)k) == 0, "release_n(%d)", k);
    }
    uint64_t res[2] = {s, h};
    CCHECK(t_write_full(out_fd, res, sizeof res) == 0, "result pipe");
    _exit(0);
}

/*
 * One writer process, three reader processes forked from it, everything
 * through the batch calls: every reader sees every message once, in order
 * (count and checksum equal the writer's), the writer's batches partly
 * committed, and the shared counters exact at the end.
 */
Test(chan_procs, batches_to_three_forked_readers_exact)
{
    weir_chan *c = mk(NULL, 64, 256);
    int ids[3], fds[3];
    pid_t pids[3];
    for (int i = 0; i < 3; i++) {
        ids[i] = weir_chan_register_reader(c);
        cr_assert_geq(ids[i], 0, "%s", weir_errmsg());
    }
    for (int i = 0; i < 3; i++) {
        int p[2];
        cr_assert_eq(pipe(p), 0);
        pids[i] = fork();
        cr_assert_geq(pids[i], 0);
        if (pids[i] == 0) {
            close(p[0]);
            bp_child(c, ids[i], p[1]);
        }
        close(p[1]);
        fds[i] = p[0];
    }
    uint64_t h = T_FNV_OFF, bytes = 0, rng = 0x13198A2E03707344ull;
    void *slots[64];
    size_t lens[64];
    for (uint64_t s = 0; s < BATCH_PROC_MSGS;) {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        unsigned want = 1 + (unsigned)(rng % 64);
        if (want > BATCH_PROC_MSGS - s)
            want = (unsigned)(BATCH_PROC_MSGS - s);
        int k = weir_chan_reserve_n(c, 64, want, slots, TMO);
        cr_assert(k >= 1 && (unsigned)k <= want, "reserve_n(%u) at %llu: %d %s", want,
                  (unsigned long long)s, k, weir_errmsg());
        unsigned j = (rng >> 32) % 5 == 0 ? (unsigned)(k + 1) / 2 : (unsigned)k;
        for (unsigned i = 0; i < j; i++) {
            lens[i] = bp_len(s + i);
            t_fill(slots[i], lens[i], s + i);
            h = bp_add(h, s + i, slots[i], lens[i]);
            bytes += lens[i];
        }
        cr_assert_eq(weir_chan_commit_n(c, j, lens), 0, "commit_n(%u): %s", j, weir_errmsg());
        s += j;
    }
    cr_assert_eq(weir_chan_close(c), 0);
    for (int i = 0; i < 3; i++) {
        uint64_t res[2] = {0, 0};
        int got = t_read_full(fds[i], res, sizeof res, 60000);
        close(fds[i]);
        char sb[64];
        int ws = t_wait_child(pids[i], 30000);
        cr_assert_eq(got, 0, "reader process %d sent nothing (%s)", i,
                     t_status_str(ws, sb, sizeof sb));
        cr_assert(ws != -1 && WIFEXITED(ws) && WEXITSTATUS(ws) == 0, "reader %d: %s", i,
                  t_status_str(ws, sb, sizeof sb));
        cr_assert_eq(res[0], BATCH_PROC_MSGS, "reader %d got %llu messages", i,
                     (unsigned long long)res[0]);
        cr_assert_eq(res[1], h, "reader %d: checksum %016llx, the writer's %016llx", i,
                     (unsigned long long)res[1], (unsigned long long)h);
    }
    struct weir_chan_stats st;
    stats(c, &st);
    cr_assert_eq(st.messages, BATCH_PROC_MSGS);
    cr_assert_eq(st.bytes, bytes, "bytes %llu, written %llu", (unsigned long long)st.bytes,
                 (unsigned long long)bytes);
    cr_assert_eq(st.nreaders, 3);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(t_reader_stats(&st, ids[i])->consumed, BATCH_PROC_MSGS,
                     "reader %d consumed %llu", i,
                     (unsigned long long)t_reader_stats(&st, ids[i])->consumed);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(weir_chan_deregister_reader(c, ids[i]), 0);
    weir_chan_free(c);
}
