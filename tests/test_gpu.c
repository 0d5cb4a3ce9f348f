/* SPDX-License-Identifier: MIT */
/*
 * tests/test_gpu.c - the CUDA device path on a real GPU (suite gpu):
 *   1. two processes share a device buffer: the parent allocates it
 *      (cuMemCreate, POSIX fd), fills it with cuMemcpyHtoDAsync, records an
 *      interprocess event and sends both handles over a unix socket
 *      (SCM_RIGHTS); the child imports them, its stream waits on the event,
 *      it copies the buffer back and checks every byte, then writes its own
 *      pattern and records; the parent waits and checks every byte;
 *   2. a graph with a kDLCUDA edge between two thread actors, every element
 *      of every execution checked.
 * A plain program, not Criterion, so that a machine without a GPU or
 * without libcuda.so.1 reports a skip (exit 77) with the reason. Run it on
 * a GPU machine with `meson test -C BUILD --suite gpu`.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <weir/weir.h>

#include "channels/device.h"

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "test_gpu:%d: ", __LINE__);                                            \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fprintf(stderr, " (%s)\n", weir_errmsg());                                             \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

static uint64_t fnv(const void *p, size_t n)
{
    const unsigned char *b = p;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 1099511628211ull;
    return h;
}

static void fill(unsigned char *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)(i * 131u + seed);
}

#define N ((size_t)8 << 20)

/* The child: CUDA is initialised only after the fork, in each process. */
static int child(int sock)
{
    weir__device *d;
    CHECK(weir__device_open(kDLCUDA, 0, "gpu", &d) == 0, "child: open");
    weir__dev_ipc hm, he;
    CHECK(weir__dev_ipc_recv(sock, &hm, 30000) == 0 && weir__dev_ipc_recv(sock, &he, 30000) == 0,
          "child: receive handles");
    void *mem, *ptr, *ev;
    CHECK(d->ops->mem_import(d->impl, &hm, &mem, &ptr) == 0, "child: import memory");
    CHECK(d->ops->ev_import(d->impl, &he, &ev) == 0, "child: import event");
    weir__dev_ipc_close(&hm);
    char go;
    CHECK(read(sock, &go, 1) == 1, "child: go");
    unsigned char *b = malloc(N), *w = malloc(N);
    fill(w, N, 1);
    CHECK(d->ops->ev_wait(d->impl, ev) == 0, "child: wait");
    CHECK(d->ops->copy(d->impl, b, ptr, N, WEIR__COPY_D2H) == 0, "child: d2h");
    CHECK(d->ops->sync(d->impl) == 0, "child: sync");
    CHECK(fnv(b, N) == fnv(w, N), "child: the parent's bytes");
    fill(w, N, 2);
    CHECK(d->ops->copy(d->impl, ptr, w, N, WEIR__COPY_H2D) == 0, "child: h2d");
    CHECK(d->ops->sync(d->impl) == 0, "child: sync");
    char done = 'd';
    CHECK(write(sock, &done, 1) == 1, "child: done");
    d->ops->ev_destroy(d->impl, ev);
    d->ops->mem_free(d->impl, mem);
    weir__device_close(d);
    free(b);
    free(w);
    return 0;
}

static void two_processes(void)
{
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == 0, "socketpair");
    pid_t pid = fork();
    CHECK(pid >= 0, "fork");
    if (pid == 0) {
        close(sv[0]);
        _exit(child(sv[1]));
    }
    close(sv[1]);
    weir__device *d;
    CHECK(weir__device_open(kDLCUDA, 0, "gpu", &d) == 0, "open");
    void *mem, *ptr, *ev;
    CHECK(d->ops->mem_alloc(d->impl, N, &mem, &ptr) == 0, "alloc");
    CHECK(d->ops->ev_create(d->impl, &ev) == 0, "event");
    weir__dev_ipc hm, he;
    CHECK(d->ops->mem_export(d->impl, mem, &hm) == 0, "export memory");
    CHECK(d->ops->ev_export(d->impl, ev, &he) == 0, "export event");
    CHECK(weir__dev_ipc_send(sv[0], &hm) == 0 && weir__dev_ipc_send(sv[0], &he) == 0, "send");
    weir__dev_ipc_close(&hm);
    unsigned char *h = malloc(N);
    fill(h, N, 1);
    CHECK(d->ops->copy(d->impl, ptr, h, N, WEIR__COPY_H2D) == 0, "h2d");
    CHECK(d->ops->ev_record(d->impl, ev) == 0, "record");
    char go = 'g';
    CHECK(write(sv[0], &go, 1) == 1, "go");
    char done;
    CHECK(read(sv[0], &done, 1) == 1, "the child finished");
    CHECK(d->ops->copy(d->impl, h, ptr, N, WEIR__COPY_D2H) == 0 && d->ops->sync(d->impl) == 0,
          "d2h");
    unsigned char *w = malloc(N);
    fill(w, N, 2);
    CHECK(fnv(h, N) == fnv(w, N), "the child's bytes in the parent's buffer");
    int st;
    CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %d",
          st);
    d->ops->ev_destroy(d->impl, ev);
    d->ops->mem_free(d->impl, mem);
    weir__device_close(d);
    close(sv[0]);
    free(h);
    free(w);
    printf("ok: two processes share a device buffer, ordered by an interprocess event\n");
}

struct cst {
    weir__device *dev;
};

static int c_init(void *p)
{
    return weir__device_open(kDLCUDA, 0, "gpu", &((struct cst *)p)->dev) < 0 ? -1 : 0;
}

static void c_fini(void *p)
{
    weir__device_close(((struct cst *)p)->dev);
}

static int m_up(weir_call *c, void *p)
{
    struct cst *s = p;
    const int64_t *x = weir_call_in(c, 0, NULL);
    int64_t v[1024];
    for (int i = 0; i < 1024; i++)
        v[i] = *x * 1000 + i;
    int64_t shape[1] = {1024};
    DLTensor m = {.device = {kDLCUDA, 0}, .ndim = 1, .dtype = {kDLInt, 64, 1}, .shape = shape};
    void *dp = weir_call_out_tensor(c, 0, &m);
    if (!dp || s->dev->ops->copy(s->dev->impl, dp, v, sizeof v, WEIR__COPY_H2D) < 0 ||
        s->dev->ops->sync(s->dev->impl) < 0)
        return weir_call_fail(c, "%s", weir_errmsg());
    return 0;
}

static int m_down(weir_call *c, void *p)
{
    struct cst *s = p;
    DLTensor t;
    int64_t v[1024];
    if (weir_call_in_tensor(c, 0, &t) < 0 ||
        s->dev->ops->copy(s->dev->impl, v, t.data, sizeof v, WEIR__COPY_D2H) < 0 ||
        s->dev->ops->sync(s->dev->impl) < 0)
        return weir_call_fail(c, "%s", weir_errmsg());
    int64_t *sum = weir_call_out(c, 0, sizeof *sum);
    *sum = 0;
    for (int i = 0; i < 1024; i++)
        *sum += v[i];
    return 0;
}

/* up -> down over a kDLCUDA edge, thread or process actors. Processes: the
 * pool is made by weir's holder process and this one never initialises
 * CUDA (its actors are forked from it). */
static void graph_run(int iso)
{
    static struct cst su, sd;
    weir_graph *g = weir_graph_new("gpu");
    weir_actor_opts o = {.state = &su, .init = c_init, .fini = c_fini, .isolation = iso};
    weir_actor *a = weir_actor_new(g, "up", &o);
    o.state = &sd;
    weir_actor *b = weir_actor_new(g, "down", &o);
    weir_node *in = weir_input(g, 0);
    weir_node *y = weir_bind(a, "up", m_up, &in, 1, 1);
    CHECK(weir_node_tensor(y, kDLCUDA, 1024 * 8) == 0, "mark");
    weir_node *z = weir_bind(b, "down", m_down, &y, 1, 1);
    weir_output(g, &z, 1);
    weir_dag *d = weir_compile(g, NULL);
    CHECK(d, "compile");
    for (int64_t e = 0; e < 2000; e++) {
        weir_buf arg = {&e, sizeof e};
        weir_result *r;
        CHECK(weir_execute(d, &arg, 1, &r, 30000) == 0, "execution %lld", (long long)e);
        int64_t want = e * 1000 * 1024 + 1023 * 1024 / 2;
        CHECK(*(const int64_t *)weir_result_data(r, 0, NULL) == want, "execution %lld sum",
              (long long)e);
        weir_result_free(r);
    }
    CHECK(weir_dag_free(d) == 0, "free");
    weir_graph_free(g);
    if (iso == WEIR_PROCESS)
        CHECK(!weir__device_cuda_ops()->used_here(), "the driver initialised CUDA");
    printf("ok: a kDLCUDA edge between two %s actors, 2000 executions exact\n",
           iso == WEIR_PROCESS ? "process" : "thread");
}

int main(void)
{
    /* Probe in a child, so this process has not initialised CUDA before it forks. */
    pid_t pid = fork();
    if (pid == 0) {
        weir__device *d;
        if (weir__device_open(kDLCUDA, 0, "gpu", &d) < 0) {
            printf("SKIP: %s\n", weir_errmsg());
            fflush(stdout);
            _exit(77);
        }
        weir__device_close(d);
        _exit(0);
    }
    int st = 0;
    if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st))
        return 1;
    if (WEXITSTATUS(st) == 77)
        return 77;
    graph_run(WEIR_PROCESS); /* first: before this process initialises CUDA */
    two_processes();
    graph_run(WEIR_THREAD);
    return 0;
}
