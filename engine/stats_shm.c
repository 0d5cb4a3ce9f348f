/* SPDX-License-Identifier: MIT */
/*
 * engine/stats_shm.c - the stats segment: create, publish under a sequence
 * lock, remove stale ones, and read consistent snapshots (see stats_shm.h).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <weir/common.h>
#include <weir/prof.h>

#include "channels/atomics.h"
#include "channels/err.h"
#include "engine/stats_shm.h"

size_t weir__stats_bytes(uint32_t nchans, uint32_t nactors, uint32_t nmethods, uint32_t nlinks)
{
    return sizeof(struct weir__stats_hdr) + (size_t)nchans * sizeof(struct weir__stats_chan) +
           (size_t)nactors * sizeof(struct weir__stats_actor) +
           (size_t)nmethods * sizeof(struct weir__stats_method) +
           (size_t)nlinks * sizeof(struct weir__stats_link);
}

struct weir__stats_chan *weir__stats_chan_at(struct weir__stats_hdr *h, unsigned i)
{
    return (struct weir__stats_chan *)(h + 1) + i;
}

struct weir__stats_actor *weir__stats_actor_at(struct weir__stats_hdr *h, unsigned i)
{
    return (struct weir__stats_actor *)(weir__stats_chan_at(h, h->nchans)) + i;
}

struct weir__stats_method *weir__stats_method_at(struct weir__stats_hdr *h, unsigned i)
{
    return (struct weir__stats_method *)(weir__stats_actor_at(h, h->nactors)) + i;
}

struct weir__stats_link *weir__stats_link_at(struct weir__stats_hdr *h, unsigned i)
{
    return (struct weir__stats_link *)(weir__stats_method_at(h, h->nmethods)) + i;
}

/* Word-wise relaxed atomic copy: the other side copies concurrently. */
static void copy_words_out(uint64_t *dst, const uint64_t *src, size_t n)
{
    for (size_t i = 0; i < n; i++)
        weir__store_relaxed(&dst[i], src[i]);
}

static void copy_words_in(uint64_t *dst, const uint64_t *src, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = weir__load_relaxed(&src[i]);
}

/* The body: every word after the header's mutable part (seq .. end). */
#define BODY_OFF offsetof(struct weir__stats_hdr, now_ns)

static int parse_name(const char *name, int *pid, const char **graph)
{
    size_t np = strlen(WEIR__STATS_PREFIX);
    if (strncmp(name, WEIR__STATS_PREFIX, np) != 0)
        return -1;
    char *end;
    long p = strtol(name + np, &end, 10);
    if (end == name + np || *end != '.' || p <= 0 || p > 0x7fffffff)
        return -1;
    *pid = (int)p;
    *graph = end + 1;
    return 0;
}

int weir__stats_list(int (*fn)(const char *path, int pid, const char *graph, void *arg), void *arg)
{
    DIR *dir = opendir("/dev/shm");
    if (!dir)
        return weir__seterr(-errno, "stats: cannot list /dev/shm: %s", strerror(errno));
    int n = 0;
    struct dirent *e;
    while ((e = readdir(dir))) {
        int pid;
        const char *graph;
        if (parse_name(e->d_name, &pid, &graph) < 0)
            continue;
        char path[320];
        snprintf(path, sizeof path, "/dev/shm/%s", e->d_name);
        n++;
        if (fn(path, pid, graph, arg))
            break;
    }
    closedir(dir);
    return n;
}

/* Gone: no such process, or a zombie (exited, not reaped yet). */
static int pid_gone(int pid)
{
    if (kill(pid, 0) < 0)
        return errno == ESRCH;
    char path[64], buf[256];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *rp = strrchr(buf, ')'); /* comm may hold spaces and parentheses */
    return rp && rp[1] == ' ' && (rp[2] == 'Z' || rp[2] == 'X');
}

int weir__stats_pid_gone(int pid)
{
    return pid_gone(pid);
}

static int remove_if_stale(const char *path, int pid, const char *graph, void *arg)
{
    (void)graph;
    if (pid_gone(pid) && unlink(path) == 0)
        ++*(int *)arg;
    return 0;
}

int weir__stats_remove_stale(void)
{
    int removed = 0;
    if (weir__stats_list(remove_if_stale, &removed) < 0)
        return weir_errcode();
    return removed;
}

WEIR_API int weir_stats_remove_stale(void)
{
    weir__clearerr();
    return weir__stats_remove_stale();
}

struct weir__stats_hdr *weir__stats_create(const struct weir__stats_hdr *tmpl, size_t *bytes,
                                           char *path, size_t cap)
{
    weir__stats_remove_stale();
    /* Graph names may hold anything a file name must not: keep [A-Za-z0-9_.-]. */
    char g[WEIR__STATS_NAME];
    size_t k = 0;
    for (const char *s = tmpl->graph; *s && k + 1 < sizeof g; s++)
        g[k++] = (char)((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
                                (*s >= '0' && *s <= '9') || *s == '_' || *s == '-' || *s == '.'
                            ? *s
                            : '_');
    g[k] = '\0';
    int fd = -1;
    for (unsigned n = 1; n < 1000 && fd < 0; n++) {
        if (n == 1)
            snprintf(path, cap, "/dev/shm/" WEIR__STATS_PREFIX "%d.%s", (int)getpid(), g);
        else
            snprintf(path, cap, "/dev/shm/" WEIR__STATS_PREFIX "%d.%s-%u", (int)getpid(), g, n);
        fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0 && errno != EEXIST)
            break;
    }
    if (fd < 0) {
        weir__seterr(-errno, "graph '%s': cannot create its stats segment %s: %s", tmpl->graph,
                     path, strerror(errno));
        return NULL;
    }
    size_t b = weir__stats_bytes(tmpl->nchans, tmpl->nactors, tmpl->nmethods, tmpl->nlinks);
    int fa = ftruncate(fd, (off_t)b) < 0 ? errno : 0;
    void *p = fa ? MAP_FAILED : mmap(NULL, b, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    int e = fa ? fa : errno;
    close(fd);
    if (p == MAP_FAILED) {
        unlink(path);
        weir__seterr(-e, "graph '%s': cannot map its stats segment %s (%zu bytes): %s",
                     tmpl->graph, path, b, strerror(e));
        return NULL;
    }
    struct weir__stats_hdr *h = p;
    memcpy(h, tmpl, sizeof *h);
    h->magic = 0;
    h->seq = 0;
    /* Readers check magic first: everything above is visible once it is. */
    weir__store_release(&h->magic, WEIR__STATS_MAGIC);
    *bytes = b;
    return h;
}

void weir__stats_publish(struct weir__stats_hdr *seg, const struct weir__stats_hdr *snap,
                         size_t bytes)
{
    uint64_t s = weir__load_relaxed(&seg->seq);
    weir__store_relaxed(&seg->seq, s + 1);
    /* Pairs with the reader's acquire fence before its second look at seq:
     * a reader that saw any body word of this write sees seq odd or changed. */
    __atomic_thread_fence(__ATOMIC_RELEASE);
    copy_words_out((uint64_t *)((char *)seg + BODY_OFF), (const uint64_t *)((const char *)snap + BODY_OFF),
                   (bytes - BODY_OFF) / 8);
    /* Pairs with the reader's acquire load of seq: the body is complete. */
    weir__store_release(&seg->seq, s + 2);
}

/* ---- reader -------------------------------------------------------------- */

int weir__stats_open(struct weir__stats_view *v, const char *path)
{
    memset(v, 0, sizeof *v);
    v->fd = -1;
    snprintf(v->path, sizeof v->path, "%s", path);
    int fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0 && errno == EACCES)
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return weir__seterr(-errno, "stats segment %s: %s", path, strerror(errno));
    int rw = (fcntl(fd, F_GETFL) & O_ACCMODE) == O_RDWR;
    struct stat st;
    if (fstat(fd, &st) < 0 || (size_t)st.st_size < sizeof(struct weir__stats_hdr)) {
        close(fd);
        return weir__seterr(-EBADMSG, "stats segment %s: too short to be one (%lld bytes)", path,
                            (long long)st.st_size);
    }
    void *p = mmap(NULL, (size_t)st.st_size, rw ? PROT_READ | PROT_WRITE : PROT_READ, MAP_SHARED,
                   fd, 0);
    close(fd);
    if (p == MAP_FAILED)
        return weir__seterr(-errno, "stats segment %s: cannot map: %s", path, strerror(errno));
    v->seg = p;
    v->bytes = v->map_bytes = (size_t)st.st_size;
    v->fd = rw; /* reused: 1 when watch_until_ns may be written */
    const struct weir__stats_hdr *h = p;
    uint32_t magic = weir__load_acquire(&h->magic);
    if (magic != WEIR__STATS_MAGIC || h->version != WEIR__STATS_VERSION ||
        h->hdr_bytes != sizeof(struct weir__stats_hdr) ||
        h->chan_bytes != sizeof(struct weir__stats_chan) ||
        h->actor_bytes != sizeof(struct weir__stats_actor) ||
        h->method_bytes != sizeof(struct weir__stats_method) ||
        (h->nlinks && h->link_bytes != sizeof(struct weir__stats_link)) ||
        weir__stats_bytes(h->nchans, h->nactors, h->nmethods, h->nlinks) > v->bytes) {
        int ver = magic == WEIR__STATS_MAGIC ? (int)h->version : -1;
        weir__stats_close(v);
        if (ver >= 0 && ver != (int)WEIR__STATS_VERSION)
            return weir__seterr(-EPROTO, "stats segment %s: layout version %d, this tool reads %u",
                                path, ver, WEIR__STATS_VERSION);
        return weir__seterr(-EBADMSG, "stats segment %s: not a weir stats segment (or not ready)",
                            path);
    }
    v->bytes = weir__stats_bytes(h->nchans, h->nactors, h->nmethods, h->nlinks);
    v->snap = calloc(1, v->bytes);
    if (!v->snap) {
        weir__stats_close(v);
        return weir__seterr(-ENOMEM, "stats segment %s: no memory for a snapshot", path);
    }
    memcpy(v->snap, h, offsetof(struct weir__stats_hdr, watch_until_ns)); /* identity, start_ns */
    return 0;
}

int weir__stats_read(struct weir__stats_view *v)
{
    struct weir__stats_hdr *h = v->seg;
    for (int tries = 0; tries < 1000; tries++) {
        uint64_t s1 = weir__load_acquire(&h->seq);
        if (s1 & 1 || s1 == 0) {
            if (s1 == 0 && tries > 200)
                break;
            usleep(s1 == 0 ? 1000 : 10);
            continue;
        }
        copy_words_in((uint64_t *)((char *)v->snap + BODY_OFF),
                      (const uint64_t *)((const char *)h + BODY_OFF), (v->bytes - BODY_OFF) / 8);
        /* Pairs with the publisher's release fence after it made seq odd. */
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        if (weir__load_relaxed(&h->seq) == s1) {
            v->snap->seq = s1;
            v->snap->watch_until_ns = weir__load_relaxed(&h->watch_until_ns);
            if (v->snap->state == 0 && pid_gone((int)h->pid))
                return weir__seterr(-ESTALE, "stats segment %s: process %u has exited", v->path,
                                    h->pid);
            return 0;
        }
    }
    if (pid_gone((int)h->pid))
        return weir__seterr(-ESTALE, "stats segment %s: process %u has exited", v->path, h->pid);
    return weir__seterr(-EAGAIN, "stats segment %s: no consistent snapshot yet", v->path);
}

void weir__stats_watch(struct weir__stats_view *v, unsigned ms)
{
    if (v->seg && v->fd == 1)
        weir__store_relaxed(&v->seg->watch_until_ns, weir_now_ns() + (uint64_t)ms * 1000000ull);
}

void weir__stats_close(struct weir__stats_view *v)
{
    if (v->seg)
        munmap(v->seg, v->map_bytes);
    free(v->snap);
    v->seg = NULL;
    v->snap = NULL;
}
