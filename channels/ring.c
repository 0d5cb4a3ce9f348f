/* SPDX-License-Identifier: MIT */
/*
 * channels/ring.c - the shared-memory ring channel (include/weir/chan.h).
 *
 * Design notes.
 *
 * Layout and sequence rules: channels/layout.h. Waiting: channels/wait.h.
 *
 * Fast paths. The writer caches the minimum read_seq of the active readers
 * (`min_read`, as the Disruptor caches its gating sequence) and rescans
 * the reader lines only when the ring looks full or the active mask
 * changed. A reader caches write_seq (`avail`) and reloads it only when it
 * has consumed everything it saw. So in steady state each side touches the
 * other's line once per batch, not once per message.
 *
 * Memory ordering, the three pairs:
 *  1. Data: the writer fills the slot, then publishes write_seq with a
 *     release store; a reader loads write_seq with acquire before it
 *     touches the slot. Symmetrically a reader's release of read_seq pairs
 *     with the writer's acquire loads in rescan() before slot reuse.
 *  2. Sleep/wake (Dekker): a sleeper announces itself (rd_sleepers++ or
 *     wr_sleeping=1), issues a heavy barrier and then re-checks the
 *     condition; the other side publishes progress, issues a light barrier
 *     and then checks for an announced sleeper (channels/barrier.c). One of
 *     the two always sees the other, so no wake-up is lost, and nobody
 *     calls futex() unless someone sleeps.
 *  3. Registration vs. the writer's cached gate: a new reader sets its bit
 *     in active_mask, heavy barrier, then loads write_seq to pick its start;
 *     the writer, after publishing write_seq (light barrier), compares
 *     active_mask with its cached copy and rescans on change. By the same
 *     Dekker argument the writer notices the new reader before it can
 *     reuse the slot of the first message that reader will read.
 *
 * Failure cases: a reader process that dies keeps its bit set and would
 * block the writer forever; weir_chan_deregister_reader() (by id) or
 * weir_chan_reap_dead_readers() (by pid liveness) clear it and wake the
 * writer. The registration lock stores its holder's pid so a lock left by
 * a dead process is taken over.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <weir/chan.h>
#include <weir/stats.h>

#include "channels/atomics.h"
#include "channels/barrier.h"
#include "channels/chan_internal.h"
#include "channels/err.h"
#include "channels/layout.h"
#include "channels/probes.h"
#include "channels/wait.h"

struct gen_map {
    uint8_t *seg;                /* start of the mapping (NULL: not mapped) */
    size_t seg_bytes;            /* bytes mapped at seg */
    struct weir__slot_hdr *hdrs; /* slot headers of the generation */
    uint8_t *data;               /* slot payloads */
    size_t stride;               /* bytes between payloads */
    size_t slot_bytes;
};

struct wstate {
    uint64_t seq;      /* next message to write */
    uint64_t min_read; /* cached gate: min read_seq of active readers */
    uint64_t mask;     /* active_mask when min_read was computed */
    unsigned idx;      /* seq % depth */
    unsigned gen;
    uint32_t spin_ns; /* adaptive spin budget (wait.h) */
    int reserved;
    int rescan;
    size_t reserved_len;
    struct gen_map *g;
} __attribute__((aligned(WEIR__CL)));

struct rstate {
    uint64_t seq;   /* next message to read */
    uint64_t avail; /* cached write_seq */
    unsigned idx;
    unsigned gen;
    uint32_t epoch; /* registration epoch of the id, to detect force-deregistration */
    uint32_t spin_ns; /* adaptive spin budget (wait.h) */
    int registered;
    int held;
    struct gen_map *g;
} __attribute__((aligned(WEIR__CL)));

struct weir_chan {
    struct wstate w;
    struct rstate r[WEIR_CHAN_MAX_READERS];
    struct weir__chan_ctl *ctl;
    size_t ctl_map_bytes;
    int fd;
    int writer; /* this handle may write */
    int named;
    pid_t creator; /* process that created the channel (unlinks its name) */
    unsigned depth;
    pthread_mutex_t gen_mu; /* guards mapping of generations */
    struct gen_map gens[WEIR_CHAN_MAX_GENS];
    char name[WEIR_CHAN_MAX_NAME + 1];
};

#define CHERR(c, code, ...) chan_err((c)->name, code, __VA_ARGS__)

__attribute__((format(printf, 3, 4))) static int chan_err(const char *name, int code,
                                                          const char *fmt, ...)
{
    char buf[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return weir__seterr(code, "channel '%s': %s", name, buf);
}

static size_t round_up(size_t v, size_t a)
{
    return (v + a - 1) / a * a;
}

static size_t slot_stride(size_t slot_bytes)
{
    if (slot_bytes < WEIR__CL)
        return round_up(slot_bytes ? slot_bytes : 8, 8);
    return round_up(slot_bytes, WEIR__CL);
}

static size_t hdrs_bytes(unsigned depth)
{
    return round_up((size_t)depth * sizeof(struct weir__slot_hdr), WEIR__CL);
}

/* Bytes of one data generation; 0 on overflow or past the size cap. */
static size_t gen_bytes(unsigned depth, size_t slot_bytes)
{
    size_t stride = slot_stride(slot_bytes);
    if (stride > ((size_t)1 << 40) / depth)
        return 0;
    return round_up(hdrs_bytes(depth) + (size_t)depth * stride, 4096);
}

static void gen_bind(struct gen_map *g, uint8_t *seg, size_t seg_bytes, size_t off,
                     unsigned depth, size_t slot_bytes)
{
    g->hdrs = (struct weir__slot_hdr *)(void *)(seg + off);
    g->data = seg + off + hdrs_bytes(depth);
    g->stride = slot_stride(slot_bytes);
    g->slot_bytes = slot_bytes;
    g->seg_bytes = seg_bytes;
    /* Publish the pointer last: readers test g->seg without the mutex. */
    __atomic_store_n(&g->seg, seg, __ATOMIC_RELEASE);
}

/* ---- registration lock (cold path, shared between processes) ---------- */

static void reg_lock(struct weir__chan_ctl *ctl)
{
    uint32_t me = (uint32_t)getpid();
    for (unsigned spins = 0;; spins++) {
        uint32_t cur = 0;
        if (weir__cas(&ctl->reg_lock, &cur, me))
            return;
        if (spins > 200 && cur != me && kill((pid_t)cur, 0) < 0 && errno == ESRCH) {
            /* The holder died inside the critical section: take over. */
            if (weir__cas(&ctl->reg_lock, &cur, me))
                return;
        }
        if (spins < 100)
            weir__cpu_relax();
        else
            sched_yield();
    }
}

static void reg_unlock(struct weir__chan_ctl *ctl)
{
    weir__store_release(&ctl->reg_lock, 0);
}

/* ---- generation mapping ------------------------------------------------ */

/* Make generation k of the channel available in this handle. */
static int map_gen(weir_chan *c, unsigned k)
{
    struct gen_map *g = &c->gens[k];
    if (__atomic_load_n(&g->seg, __ATOMIC_ACQUIRE))
        return 0;
    int ret = 0;
    pthread_mutex_lock(&c->gen_mu);
    if (g->seg)
        goto out;
    struct weir__gen_desc d = c->ctl->gens[k];
    size_t want = gen_bytes(c->depth, d.slot_bytes);
    if (k == 0 || want == 0 || d.seg_bytes != want || d.offset % 4096) {
        ret = CHERR(c, -EBADMSG, "corrupt generation %u descriptor", k);
        goto out;
    }
    struct stat st;
    if (fstat(c->fd, &st) < 0 || (uint64_t)st.st_size < d.offset + d.seg_bytes) {
        ret = CHERR(c, -EBADMSG, "generation %u lies beyond the end of the segment", k);
        goto out;
    }
    void *p = mmap(NULL, d.seg_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, c->fd, (off_t)d.offset);
    if (p == MAP_FAILED) {
        ret = CHERR(c, -errno, "mmap of generation %u: %s", k, strerror(errno));
        goto out;
    }
    gen_bind(g, p, d.seg_bytes, 0, c->depth, d.slot_bytes);
out:
    pthread_mutex_unlock(&c->gen_mu);
    return ret;
}

/* ---- create / open / free ---------------------------------------------- */

static int check_name(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > WEIR_CHAN_MAX_NAME || strchr(name, '/'))
        return weir__seterr(-EINVAL,
                            "channel '%.*s': invalid name (1..%d characters, no '/')",
                            WEIR_CHAN_MAX_NAME, name, WEIR_CHAN_MAX_NAME);
    return 0;
}

static weir_chan *handle_new(const char *name)
{
    weir_chan *c;
    if (posix_memalign((void **)&c, WEIR__CL, sizeof *c)) {
        weir__seterr(-ENOMEM, "channel '%s': out of memory", name ? name : "anon");
        return NULL;
    }
    memset(c, 0, sizeof *c);
    c->fd = -1;
    pthread_mutex_init(&c->gen_mu, NULL);
    snprintf(c->name, sizeof c->name, "%s", name ? name : "anon");
    return c;
}

WEIR_API weir_chan *weir_chan_create(const char *name, const weir_chan_opts *o)
{
    weir__clearerr();
    const char *nm = name ? name : "anon";
    if (name && check_name(name) < 0)
        return NULL;
    size_t slot = o && o->slot_bytes ? o->slot_bytes : WEIR_CHAN_DEFAULT_SLOT;
    unsigned depth = o && o->depth ? o->depth : WEIR_CHAN_DEFAULT_DEPTH;
    unsigned maxr = o && o->max_readers ? o->max_readers : WEIR_CHAN_MAX_READERS;
    if (depth > WEIR_CHAN_MAX_DEPTH) {
        chan_err(nm, -EINVAL, "depth %u exceeds the maximum %u", depth, WEIR_CHAN_MAX_DEPTH);
        return NULL;
    }
    if (maxr > WEIR_CHAN_MAX_READERS) {
        chan_err(nm, -EINVAL, "max_readers %u exceeds the maximum %d", maxr,
                 WEIR_CHAN_MAX_READERS);
        return NULL;
    }
    size_t gb = slot <= WEIR_CHAN_MAX_SLOT ? gen_bytes(depth, slot) : 0;
    if (gb == 0) {
        chan_err(nm, -EINVAL, "slot size %zu x depth %u is too large", slot, depth);
        return NULL;
    }
    size_t ctl_bytes = round_up(sizeof(struct weir__chan_ctl), 4096);
    size_t seg = ctl_bytes + gb;

    weir__barrier_init();
    weir_chan *c = handle_new(name);
    if (!c)
        return NULL;
    c->writer = 1;
    c->w.spin_ns = WEIR__SPIN_NS;
    c->creator = getpid();
    c->depth = depth;
    if (name) {
        char shm[WEIR_CHAN_MAX_NAME + 8];
        snprintf(shm, sizeof shm, "/weir.%s", name);
        c->fd = shm_open(shm, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (c->fd < 0) {
            int e = errno;
            chan_err(nm, -e, e == EEXIST ? "a channel of this name exists (/dev/shm%s)"
                                         : "shm_open %s failed: %s",
                     shm, strerror(e));
            free(c);
            return NULL;
        }
        c->named = 1;
    } else {
        c->fd = memfd_create("weir-chan", MFD_CLOEXEC);
        if (c->fd < 0) {
            chan_err(nm, -errno, "memfd_create failed: %s", strerror(errno));
            free(c);
            return NULL;
        }
    }
    if (ftruncate(c->fd, (off_t)seg) < 0) {
        chan_err(nm, -errno, "cannot size the segment to %zu bytes: %s", seg, strerror(errno));
        goto fail;
    }
    /* Allocate now: on tmpfs ftruncate reserves nothing, and a full /dev/shm
     * would otherwise surface as SIGBUS in the middle of a write. */
    int fa = posix_fallocate(c->fd, 0, (off_t)seg);
    if (fa != 0) {
        chan_err(nm, fa == ENOSPC ? -ENOMEM : -fa,
                 "cannot allocate %zu bytes of shared memory: %s", seg, strerror(fa));
        goto fail;
    }
    void *p = mmap(NULL, seg, PROT_READ | PROT_WRITE, MAP_SHARED, c->fd, 0);
    if (p == MAP_FAILED) {
        chan_err(nm, -errno, "mmap of %zu bytes failed: %s", seg, strerror(errno));
        goto fail;
    }
    c->ctl = p;
    c->ctl_map_bytes = seg;
    struct weir__chan_ctl *ctl = c->ctl;
    ctl->ctl_bytes = (uint32_t)ctl_bytes;
    ctl->depth = depth;
    ctl->max_readers = maxr;
    ctl->creator_pid = (uint32_t)c->creator;
    ctl->seg_bytes = seg;
    ctl->slot_bytes0 = slot;
    snprintf(ctl->name, sizeof ctl->name, "%s", nm);
    ctl->gens[0] = (struct weir__gen_desc){ctl_bytes, 0, slot, gb};
    gen_bind(&c->gens[0], p, seg, ctl_bytes, depth, slot);
    c->w.g = &c->gens[0];
    ctl->version = WEIR__CHAN_VERSION;
    /* Magic last: an opener that sees it sees a complete header. */
    weir__store_release(&ctl->magic, WEIR__CHAN_MAGIC);
    return c;
fail:
    weir_chan_free(c);
    return NULL;
}

WEIR_API weir_chan *weir_chan_open(const char *name)
{
    weir__clearerr();
    if (!name) {
        weir__seterr(-EINVAL, "channel (null): weir_chan_open needs a name");
        return NULL;
    }
    if (check_name(name) < 0)
        return NULL;
    weir__barrier_init();
    char shm[WEIR_CHAN_MAX_NAME + 8];
    snprintf(shm, sizeof shm, "/weir.%s", name);
    int fd = shm_open(shm, O_RDWR | O_CLOEXEC, 0);
    if (fd < 0) {
        int e = errno;
        chan_err(name, -e, e == ENOENT ? "no such channel (/dev/shm%s)" : "shm_open %s: %s", shm,
                 strerror(e));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) < 0) {
        chan_err(name, -errno, "fstat: %s", strerror(errno));
        close(fd);
        return NULL;
    }
    size_t ctl_bytes = round_up(sizeof(struct weir__chan_ctl), 4096);
    if ((size_t)st.st_size < ctl_bytes) {
        chan_err(name, (size_t)st.st_size < 8 ? -EPROTO : -EBADMSG,
                 "segment of %lld bytes is too small to be a weir channel",
                 (long long)st.st_size);
        close(fd);
        return NULL;
    }
    weir_chan *c = handle_new(name);
    if (!c) {
        close(fd);
        return NULL;
    }
    c->fd = fd;
    c->named = 1;
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        chan_err(name, -errno, "mmap: %s", strerror(errno));
        goto fail;
    }
    c->ctl = p;
    c->ctl_map_bytes = (size_t)st.st_size;
    struct weir__chan_ctl *ctl = c->ctl;
    uint32_t magic = weir__load_acquire(&ctl->magic);
    if (magic != WEIR__CHAN_MAGIC) {
        chan_err(name, -EPROTO, "not a weir channel (magic 0x%08x, expected 0x%08x)", magic,
                 WEIR__CHAN_MAGIC);
        goto fail;
    }
    if (ctl->version != WEIR__CHAN_VERSION) {
        chan_err(name, -EPROTO, "layout version %u, this library speaks version %u",
                 ctl->version, WEIR__CHAN_VERSION);
        goto fail;
    }
    if (ctl->depth == 0 || ctl->depth > WEIR_CHAN_MAX_DEPTH || ctl->max_readers == 0 ||
        ctl->max_readers > WEIR_CHAN_MAX_READERS || ctl->ctl_bytes != ctl_bytes ||
        ctl->slot_bytes0 == 0 || ctl->slot_bytes0 > WEIR_CHAN_MAX_SLOT ||
        ctl->seg_bytes != ctl_bytes + gen_bytes(ctl->depth, ctl->slot_bytes0) ||
        ctl->seg_bytes > (size_t)st.st_size || ctl->cur_gen >= WEIR_CHAN_MAX_GENS) {
        chan_err(name, -EBADMSG,
                 "corrupt header (depth %u, max_readers %u, slot %llu, segment %llu of %lld "
                 "bytes)",
                 ctl->depth, ctl->max_readers, (unsigned long long)ctl->slot_bytes0,
                 (unsigned long long)ctl->seg_bytes, (long long)st.st_size);
        goto fail;
    }
    c->depth = ctl->depth;
    c->creator = (pid_t)ctl->creator_pid;
    gen_bind(&c->gens[0], p, c->ctl_map_bytes, ctl_bytes, c->depth, ctl->slot_bytes0);
    return c;
fail:
    weir_chan_free(c);
    return NULL;
}

WEIR_API int weir_chan_unlink(const char *name)
{
    weir__clearerr();
    if (!name || check_name(name) < 0)
        return name ? weir_errcode() : weir__seterr(-EINVAL, "channel (null): no name");
    char shm[WEIR_CHAN_MAX_NAME + 8];
    snprintf(shm, sizeof shm, "/weir.%s", name);
    if (shm_unlink(shm) < 0)
        return chan_err(name, -errno, "shm_unlink %s: %s", shm, strerror(errno));
    return 0;
}

WEIR_API const char *weir_chan_name(const weir_chan *c)
{
    return c ? c->name : "(null)";
}

WEIR_API int weir_chan_fd(const weir_chan *c)
{
    return c ? c->fd : -EINVAL;
}

WEIR_API void weir_chan_free(weir_chan *c)
{
    if (!c)
        return;
    if (c->ctl) {
        /* Only readers this process registered: a forked child freeing its
         * copy of the handle must not deregister its parent's readers. */
        for (int i = 0; i < WEIR_CHAN_MAX_READERS; i++)
            if (c->r[i].registered && c->ctl->readers[i].pid == (uint32_t)getpid() &&
                c->ctl->readers[i].epoch == c->r[i].epoch)
                weir_chan_deregister_reader(c, i);
    }
    for (unsigned k = 1; k < WEIR_CHAN_MAX_GENS; k++) {
        if (c->gens[k].seg)
            munmap(c->gens[k].seg, c->gens[k].seg_bytes);
    }
    if (c->ctl)
        munmap(c->ctl, c->ctl_map_bytes);
    if (c->fd >= 0)
        close(c->fd);
    if (c->named && c->writer && c->creator == getpid()) {
        char shm[WEIR_CHAN_MAX_NAME + 8];
        snprintf(shm, sizeof shm, "/weir.%s", c->name);
        shm_unlink(shm);
    }
    pthread_mutex_destroy(&c->gen_mu);
    free(c);
}

/* ---- readers: registration ------------------------------------------- */

static void wake_writer_if_sleeping(struct weir__chan_ctl *ctl)
{
    /* Pairs with the writer's wr_sleeping store + re-check in wait_for_space(). */
    if (weir__load_relaxed(&ctl->wr_sleeping)) {
        weir__fetch_add(&ctl->wr_futex, 1);
        weir__futex_wake_all(&ctl->wr_futex);
    }
}

static void wake_readers(struct weir__chan_ctl *ctl)
{
    weir__fetch_add(&ctl->rd_futex, 1);
    weir__futex_wake_all(&ctl->rd_futex);
}

WEIR_API int weir_chan_register_reader(weir_chan *c)
{
    weir__clearerr();
    if (!c)
        return weir__seterr(-EINVAL, "channel (null): cannot register a reader");
    struct weir__chan_ctl *ctl = c->ctl;
    weir__barrier_init();
    reg_lock(ctl);
    if (weir__load_acquire(&ctl->closed)) {
        reg_unlock(ctl);
        return CHERR(c, -EPIPE, "closed; no new readers");
    }
    uint64_t mask = weir__load_acquire(&ctl->active_mask);
    int id = -1;
    for (unsigned i = 0; i < ctl->max_readers; i++)
        if (!(mask & (1ull << i))) {
            id = (int)i;
            break;
        }
    if (id < 0) {
        reg_unlock(ctl);
        return CHERR(c, -ENOSPC, "all %u reader slots are registered", ctl->max_readers);
    }
    struct weir__reader_line *rl = &ctl->readers[id];
    unsigned gen = weir__load_acquire(&ctl->cur_gen);
    weir__store_relaxed(&rl->read_seq, weir__load_acquire(&ctl->write_seq));
    rl->pid = (uint32_t)getpid();
    rl->starved_ns = 0;
    uint32_t epoch = rl->epoch + 1;
    weir__store_relaxed(&rl->epoch, epoch);
    /* Pair 3 (see top): set the bit, then pick the start from write_seq. */
    weir__fetch_or(&ctl->active_mask, 1ull << id);
    weir__heavy_barrier();
    uint64_t start = weir__load_acquire(&ctl->write_seq);
    weir__store_release(&rl->read_seq, start);
    rl->start_seq = start;
    reg_unlock(ctl);

    int ret = gen > 0 ? map_gen(c, gen) : 0;
    if (ret < 0) {
        weir_chan_deregister_reader(c, id);
        return ret;
    }
    struct rstate *r = &c->r[id];
    r->seq = start;
    r->avail = start;
    r->idx = (unsigned)(start % c->depth);
    r->gen = gen;
    r->g = &c->gens[gen];
    r->epoch = epoch;
    r->spin_ns = WEIR__SPIN_NS;
    r->held = 0;
    r->registered = 1;
    return id;
}

WEIR_API int weir_chan_deregister_reader(weir_chan *c, int reader)
{
    weir__clearerr();
    if (!c)
        return weir__seterr(-EINVAL, "channel (null): cannot deregister");
    struct weir__chan_ctl *ctl = c->ctl;
    if (reader < 0 || (unsigned)reader >= ctl->max_readers)
        return CHERR(c, -EINVAL, "reader id %d out of range 0..%u", reader,
                     ctl->max_readers - 1);
    reg_lock(ctl);
    uint64_t bit = 1ull << reader;
    if (!(weir__load_acquire(&ctl->active_mask) & bit)) {
        reg_unlock(ctl);
        return CHERR(c, -EINVAL, "reader %d is not registered", reader);
    }
    /* A handle still using this id (force-deregistered while alive) sees
     * the epoch change and gets -EINVAL instead of moving a future reader. */
    weir__store_relaxed(&ctl->readers[reader].epoch, ctl->readers[reader].epoch + 1);
    weir__fetch_and(&ctl->active_mask, ~bit);
    reg_unlock(ctl);
    /* The handle's local reader state belongs to the reader's thread: it
     * notices the bumped epoch on its next call (-EINVAL). */
    /* The writer may be waiting for exactly this reader; and the reader
     * itself may be asleep in read (another thread or process removed it). */
    wake_writer_if_sleeping(ctl);
    wake_readers(ctl);
    return 0;
}

WEIR_API int weir_chan_reap_dead_readers(weir_chan *c)
{
    weir__clearerr();
    if (!c)
        return weir__seterr(-EINVAL, "channel (null): cannot reap");
    int n = 0;
    uint64_t mask = weir__load_acquire(&c->ctl->active_mask);
    for (int i = 0; i < WEIR_CHAN_MAX_READERS; i++) {
        if (!(mask & (1ull << i)))
            continue;
        pid_t pid = (pid_t)weir__load_relaxed(&c->ctl->readers[i].pid);
        if (pid > 0 && kill(pid, 0) < 0 && errno == ESRCH &&
            weir_chan_deregister_reader(c, i) == 0)
            n++;
    }
    weir__clearerr();
    return n;
}

/* ---- writer ------------------------------------------------------------- */

/* Recompute the gate from the reader lines. Pairs with the readers' release of read_seq. */
static void rescan(weir_chan *c)
{
    struct weir__chan_ctl *ctl = c->ctl;
    uint64_t mask = weir__load_acquire(&ctl->active_mask);
    uint64_t min = c->w.seq;
    for (uint64_t m = mask; m; m &= m - 1) {
        int i = __builtin_ctzll(m);
        uint64_t r = weir__load_acquire(&ctl->readers[i].read_seq);
        if (r < min)
            min = r;
    }
    c->w.mask = mask;
    c->w.min_read = min;
    c->w.rescan = 0;
}

static inline int slot_free(const weir_chan *c)
{
    return c->w.seq - c->w.min_read < c->depth;
}

/* Slow path: wait until slot w.seq % depth is released by every active reader. */
static int wait_for_space(weir_chan *c, int timeout_ms)
{
    struct weir__chan_ctl *ctl = c->ctl;
    rescan(c);
    if (slot_free(c))
        return 0;
    if (timeout_ms == 0)
        return CHERR(c, -ETIMEDOUT, "writer would block (ring full at message %llu)",
                     (unsigned long long)c->w.seq);
    uint64_t t0 = weir_now_ns();
    WEIR_PROBE2(writer_block, c->name, c->w.seq);
    uint64_t deadline = weir__deadline(t0, timeout_ms);
    uint32_t spin = c->w.spin_ns;
    int spinning = 1;
    int ret = 0;
    for (unsigned it = 0;; it++) {
        for (int k = 0; k < 64; k++) {
            weir__cpu_relax();
            rescan(c);
            if (slot_free(c))
                goto done;
        }
        uint64_t now = weir_now_ns();
        if (now >= deadline) {
            ret = CHERR(c, -ETIMEDOUT,
                        "writer timed out after %d ms waiting for readers (message %llu)",
                        timeout_ms, (unsigned long long)c->w.seq);
            goto done;
        }
        if (now - t0 < spin)
            continue;
        spinning = 0;
        if (now - t0 < spin + WEIR__YIELD_NS) {
            sched_yield();
            continue;
        }
        /* Pair 2: announce, re-check, sleep. */
        __atomic_store_n(&ctl->wr_sleeping, 1, __ATOMIC_SEQ_CST);
        weir__heavy_barrier();
        uint32_t v = weir__load_acquire(&ctl->wr_futex);
        rescan(c);
        if (slot_free(c)) {
            weir__store_relaxed(&ctl->wr_sleeping, 0);
            goto done;
        }
        weir__futex_wait(&ctl->wr_futex, v, deadline == UINT64_MAX ? UINT64_MAX : deadline - now);
        weir__store_relaxed(&ctl->wr_sleeping, 0);
    }
done:
    c->w.spin_ns = weir__spin_adapt(spin, spinning && ret == 0);
    uint64_t waited = weir_now_ns() - t0;
    weir__store_relaxed(&ctl->blocked_ns, ctl->blocked_ns + waited);
    WEIR_PROBE4(writer_wake, c->name, c->w.seq, waited, ret);
    return ret;
}

/* Move the writer to a new generation whose slots hold len bytes. Slot w.seq is free. */
static int grow(weir_chan *c, size_t len)
{
    struct weir__chan_ctl *ctl = c->ctl;
    unsigned k = c->w.gen + 1;
    if (k >= WEIR_CHAN_MAX_GENS)
        return CHERR(c, -EMSGSIZE, "cannot grow past %d generations (message of %zu bytes)",
                     WEIR_CHAN_MAX_GENS, len);
    size_t want = c->w.g->slot_bytes * 2 > len ? c->w.g->slot_bytes * 2 : len;
    size_t slot = 64;
    while (slot < want)
        slot *= 2;
    size_t gb = gen_bytes(c->depth, slot);
    if (gb == 0)
        return CHERR(c, -EMSGSIZE, "message of %zu bytes needs slots too large for depth %u",
                     len, c->depth);
    /* Append the generation to the segment file: every process that holds
     * the channel's fd can map it, whoever created it and whether or not
     * the writer is still alive. */
    const struct weir__gen_desc *last = &ctl->gens[c->w.gen];
    uint64_t off = last->offset + last->seg_bytes;
    off = (off + 4095) / 4096 * 4096;
    int fa = ftruncate(c->fd, (off_t)(off + gb)) < 0 ? errno
                                                     : posix_fallocate(c->fd, (off_t)off, (off_t)gb);
    if (fa != 0) {
        if (ftruncate(c->fd, (off_t)off) < 0) {
            /* leave the file as long as it was; if even that fails the extra
             * length is unused and harmless */
        }
        return CHERR(c, -ENOMEM, "growing to %zu-byte slots (%zu bytes): %s", slot, gb,
                     strerror(fa));
    }
    void *p = mmap(NULL, gb, PROT_READ | PROT_WRITE, MAP_SHARED, c->fd, (off_t)off);
    if (p == MAP_FAILED)
        return CHERR(c, -ENOMEM, "growing to %zu-byte slots (%zu bytes): %s", slot, gb,
                     strerror(errno));
    struct gen_map *g = &c->gens[k];
    pthread_mutex_lock(&c->gen_mu);
    gen_bind(g, p, gb, 0, c->depth, slot);
    pthread_mutex_unlock(&c->gen_mu);

    /* The forward mark first: readers see it only with the commit's release of
     * write_seq, and a writer that dies before publishing cur_gen leaves a
     * channel a resynced writer can continue in either generation. */
    c->w.g->hdrs[c->w.idx].word = WEIR__HDR(0, WEIR__SLOT_FORWARD);
    reg_lock(ctl);
    ctl->gens[k] = (struct weir__gen_desc){off, c->w.seq, slot, gb};
    weir__store_release(&ctl->cur_gen, k);
    reg_unlock(ctl);
    c->w.gen = k;
    c->w.g = g;
    return 0;
}

WEIR_API void *weir_chan_reserve(weir_chan *c, size_t len, int timeout_ms)
{
    if (__builtin_expect(!c || !c->writer || c->w.reserved || len > c->w.g->slot_bytes, 0)) {
        weir__clearerr();
        if (!c) {
            weir__seterr(-EINVAL, "channel (null): reserve");
            return NULL;
        }
        if (!c->writer) {
            CHERR(c, -EPERM, "this handle was opened for reading; only the creator writes");
            return NULL;
        }
        if (c->w.reserved) {
            CHERR(c, -EBUSY, "a message is already reserved; commit it first");
            return NULL;
        }
        if (len > WEIR_CHAN_MAX_SLOT) {
            CHERR(c, -EMSGSIZE, "message of %zu bytes exceeds the maximum %zu", len,
                  (size_t)WEIR_CHAN_MAX_SLOT);
            return NULL;
        }
    }
    if (__builtin_expect(weir__load_relaxed(&c->ctl->closed), 0)) {
        CHERR(c, -EPIPE, "closed");
        return NULL;
    }
    if (__builtin_expect(c->w.rescan || !slot_free(c), 0)) {
        if (wait_for_space(c, timeout_ms) < 0)
            return NULL;
    }
    if (__builtin_expect(len > c->w.g->slot_bytes, 0)) {
        if (grow(c, len) < 0)
            return NULL;
    }
    c->w.reserved = 1;
    c->w.reserved_len = len;
    WEIR_PROBE3(chan_reserve, c->name, c->w.seq, len);
    return c->w.g->data + (size_t)c->w.idx * c->w.g->stride;
}

static int commit_flags(weir_chan *c, size_t len, uint32_t flags)
{
    struct weir__chan_ctl *ctl = c->ctl;
    c->w.g->hdrs[c->w.idx].word = WEIR__HDR(len, flags);
    c->w.reserved = 0;
    c->w.seq++;
    if (++c->w.idx == c->depth)
        c->w.idx = 0;
    weir__store_relaxed(&ctl->bytes, ctl->bytes + len);
    /* Pairs 1-3: publish, then look at the control line. The store->load
     * order comes from the light barrier paired with the sleeper's or the
     * registering reader's heavy barrier (channels/barrier.c). */
    weir__store_release(&ctl->write_seq, c->w.seq);
    WEIR_PROBE4(chan_commit, c->name, c->w.seq - 1, len, flags);
    weir__light_barrier();
    if (__builtin_expect(weir__load_relaxed(&ctl->active_mask) != c->w.mask, 0))
        c->w.rescan = 1;
    if (__builtin_expect(weir__load_relaxed(&ctl->rd_sleepers) != 0, 0))
        wake_readers(ctl);
    return 0;
}

WEIR_API int weir_chan_commit(weir_chan *c, size_t len)
{
    if (__builtin_expect(!c || !c->w.reserved || len > c->w.reserved_len, 0)) {
        if (!c)
            return weir__seterr(-EINVAL, "channel (null): commit");
        if (!c->writer)
            return CHERR(c, -EPERM, "this handle was opened for reading; only the creator writes");
        if (!c->w.reserved)
            return CHERR(c, -EINVAL, "commit without a reserve");
        return CHERR(c, -EINVAL, "commit of %zu bytes but only %zu were reserved", len,
                     c->w.reserved_len);
    }
    return commit_flags(c, len, 0);
}

WEIR_API int weir_chan_write(weir_chan *c, const void *p, size_t len, int timeout_ms)
{
    void *dst = weir_chan_reserve(c, len, timeout_ms);
    if (!dst)
        return weir_errcode();
    if (len)
        memcpy(dst, p, len);
    return commit_flags(c, len, 0);
}

WEIR_API int weir_chan_write_error(weir_chan *c, const char *text, int timeout_ms)
{
    size_t n = text ? strnlen(text, 4095) : 0;
    char *dst = weir_chan_reserve(c, n + 1, timeout_ms);
    if (!dst)
        return weir_errcode();
    if (n)
        memcpy(dst, text, n);
    dst[n] = '\0';
    commit_flags(c, n + 1, WEIR_MSG_ERROR);
    /* Counted after the record is published: weir_chan_stats, in any process,
     * loads errors before write_seq, so it never reports more error records
     * than messages. An atomic add (error path only): exact even if the
     * writer role moves between processes (weir__chan_writer_resync). */
    weir__fetch_add(&c->ctl->errors, 1);
    return 0;
}

WEIR_API int weir_chan_close(weir_chan *c)
{
    weir__clearerr();
    if (!c)
        return weir__seterr(-EINVAL, "channel (null): close");
    if (!c->writer)
        return CHERR(c, -EPERM, "this handle was opened for reading; only the creator closes");
    if (c->w.reserved)
        return CHERR(c, -EBUSY, "close with a reserved, uncommitted message");
    /* Release: a reader that sees closed also sees every committed message. */
    __atomic_store_n(&c->ctl->closed, 1, __ATOMIC_SEQ_CST);
    wake_readers(c->ctl);
    return 0;
}

WEIR_API int weir_chan_is_closed(const weir_chan *c)
{
    return c && weir__load_acquire(&c->ctl->closed) ? 1 : 0;
}

/* ---- reader ------------------------------------------------------------- */

static int reader_check(weir_chan *c, int reader)
{
    if (!c)
        return weir__seterr(-EINVAL, "channel (null): read");
    if (reader < 0 || reader >= WEIR_CHAN_MAX_READERS || !c->r[reader].registered)
        return CHERR(c, -EINVAL, "reader %d is not registered", reader);
    struct weir__reader_line *rl = &c->ctl->readers[reader];
    if (!(weir__load_acquire(&c->ctl->active_mask) & (1ull << reader)) ||
        weir__load_relaxed(&rl->epoch) != c->r[reader].epoch) {
        c->r[reader].registered = 0;
        return CHERR(c, -EINVAL, "reader %d was deregistered", reader);
    }
    return 0;
}

/* Slow path: wait until write_seq > r->seq, or closed. */
static int wait_for_data(weir_chan *c, int reader, int timeout_ms)
{
    struct weir__chan_ctl *ctl = c->ctl;
    struct rstate *r = &c->r[reader];
    int ret = reader_check(c, reader);
    if (ret < 0)
        return ret;
    /* A short uncounted poll first: most waits in a busy pipeline end here. */
    for (int k = 0; k < 32; k++) {
        weir__cpu_relax();
        r->avail = weir__load_acquire(&ctl->write_seq);
        if (r->seq < r->avail)
            return 0;
    }
    uint64_t t0 = weir_now_ns();
    WEIR_PROBE3(reader_block, c->name, reader, r->seq);
    uint64_t deadline = weir__deadline(t0, timeout_ms);
    uint32_t spin = r->spin_ns;
    int spinning = 1;
    for (;;) {
        for (int k = 0; k < 64; k++) {
            r->avail = weir__load_acquire(&ctl->write_seq);
            if (r->seq < r->avail)
                goto done;
            if (weir__load_acquire(&ctl->closed)) {
                /* closed is stored after the last commit: reload to be exact. */
                r->avail = weir__load_acquire(&ctl->write_seq);
                if (r->seq < r->avail)
                    goto done;
                ret = CHERR(c, -EPIPE, "closed (reader %d drained %llu messages)", reader,
                            (unsigned long long)r->seq);
                goto done;
            }
            weir__cpu_relax();
        }
        uint64_t now = weir_now_ns();
        if (now >= deadline) {
            ret = CHERR(c, -ETIMEDOUT, "reader %d timed out after %d ms waiting for message %llu",
                        reader, timeout_ms, (unsigned long long)r->seq);
            goto done;
        }
        if (now - t0 < spin)
            continue;
        spinning = 0;
        if (now - t0 < spin + WEIR__YIELD_NS) {
            sched_yield();
            continue;
        }
        if ((ret = reader_check(c, reader)) < 0)
            goto done;
        /* Pair 2: announce, re-check, sleep. */
        weir__fetch_add(&ctl->rd_sleepers, 1);
        weir__heavy_barrier();
        uint32_t v = weir__load_acquire(&ctl->rd_futex);
        r->avail = weir__load_acquire(&ctl->write_seq);
        if (r->seq >= r->avail && !weir__load_acquire(&ctl->closed))
            weir__futex_wait(&ctl->rd_futex, v,
                             deadline == UINT64_MAX ? UINT64_MAX : deadline - now);
        weir__fetch_sub(&ctl->rd_sleepers, 1);
    }
done:
    /* Removed while waiting (force-deregistered): no message on a dead id. */
    if (ret == 0)
        ret = reader_check(c, reader);
    r->spin_ns = weir__spin_adapt(spin, spinning && ret == 0);
    struct weir__reader_line *rl = &ctl->readers[reader];
    uint64_t waited = weir_now_ns() - t0;
    weir__store_relaxed(&rl->starved_ns, rl->starved_ns + waited);
    WEIR_PROBE5(reader_wake, c->name, reader, r->seq, waited, ret);
    return ret;
}

WEIR_API int weir_chan_read_msg(weir_chan *c, int reader, weir_chan_msg *m, int timeout_ms)
{
    if (__builtin_expect(!c || reader < 0 || reader >= WEIR_CHAN_MAX_READERS ||
                             !c->r[reader].registered || c->r[reader].held || !m ||
                             weir__load_relaxed(&c->ctl->readers[reader].epoch) !=
                                 c->r[reader].epoch,
                         0)) {
        weir__clearerr();
        int ret = reader_check(c, reader);
        if (ret < 0)
            return ret;
        if (!m)
            return CHERR(c, -EINVAL, "reader %d: NULL message pointer", reader);
        return CHERR(c, -EBUSY, "reader %d already holds message %llu; release it first",
                     reader, (unsigned long long)c->r[reader].seq);
    }
    struct rstate *r = &c->r[reader];
    if (r->seq >= r->avail) {
        r->avail = weir__load_acquire(&c->ctl->write_seq);
        if (r->seq >= r->avail) {
            if (timeout_ms != 0) {
                int ret = wait_for_data(c, reader, timeout_ms);
                if (ret < 0)
                    return ret;
            } else if (!weir__load_acquire(&c->ctl->closed)) {
                return CHERR(c, -ETIMEDOUT, "reader %d: no message %llu yet", reader,
                             (unsigned long long)r->seq);
            } else {
                /* closed is stored after the last commit: reload to be exact. */
                r->avail = weir__load_acquire(&c->ctl->write_seq);
                if (r->seq >= r->avail)
                    return CHERR(c, -EPIPE, "closed (reader %d drained %llu messages)", reader,
                                 (unsigned long long)r->seq);
            }
        }
    }
    uint64_t hw = r->g->hdrs[r->idx].word;
    uint32_t flags = WEIR__HDR_FLAGS(hw);
    while (__builtin_expect(flags & WEIR__SLOT_FORWARD, 0)) {
        unsigned k = r->gen + 1;
        if (k >= WEIR_CHAN_MAX_GENS || map_gen(c, k) < 0)
            return k >= WEIR_CHAN_MAX_GENS ? CHERR(c, -EBADMSG, "forward past the last generation")
                                           : weir_errcode();
        r->gen = k;
        r->g = &c->gens[k];
        hw = r->g->hdrs[r->idx].word;
        flags = WEIR__HDR_FLAGS(hw);
    }
    uint64_t len = WEIR__HDR_LEN(hw);
    if (__builtin_expect(len > r->g->slot_bytes, 0))
        return CHERR(c, -EBADMSG, "corrupt slot: message %llu claims %llu bytes in %zu-byte slots",
                     (unsigned long long)r->seq, (unsigned long long)len, r->g->slot_bytes);
    m->data = r->g->data + (size_t)r->idx * r->g->stride;
    m->len = (size_t)len;
    m->seq = r->seq;
    m->flags = flags & WEIR__SLOT_FLAGS_MASK;
    r->held = 1;
    WEIR_PROBE4(chan_read, c->name, reader, m->seq, m->len);
    return 0;
}

WEIR_API int weir_chan_release(weir_chan *c, int reader)
{
    if (__builtin_expect(!c || reader < 0 || reader >= WEIR_CHAN_MAX_READERS ||
                             !c->r[reader].held ||
                             weir__load_relaxed(&c->ctl->readers[reader].epoch) !=
                                 c->r[reader].epoch,
                         0)) {
        weir__clearerr();
        int ret = reader_check(c, reader);
        if (ret < 0)
            return ret;
        return CHERR(c, -EINVAL, "reader %d released without a read", reader);
    }
    struct rstate *r = &c->r[reader];
    struct weir__chan_ctl *ctl = c->ctl;
    r->held = 0;
    r->seq++;
    if (++r->idx == c->depth)
        r->idx = 0;
    /* Pair 1/2: publish the release, then look for a sleeping writer (light
     * barrier, paired with the writer's heavy barrier before it sleeps). */
    weir__store_release(&ctl->readers[reader].read_seq, r->seq);
    WEIR_PROBE3(chan_release, c->name, reader, r->seq - 1);
    weir__light_barrier();
    if (__builtin_expect(weir__load_relaxed(&ctl->wr_sleeping) != 0, 0))
        wake_writer_if_sleeping(ctl);
    return 0;
}

WEIR_API const void *weir_chan_read(weir_chan *c, int reader, size_t *len, int timeout_ms)
{
    weir_chan_msg m;
    int ret = weir_chan_read_msg(c, reader, &m, timeout_ms);
    if (ret < 0)
        return NULL;
    if (__builtin_expect(m.flags & WEIR_MSG_ERROR, 0)) {
        char text[4096];
        snprintf(text, sizeof text, "%s", (const char *)m.data);
        weir_chan_release(c, reader);
        CHERR(c, -EREMOTEIO, "error record at message %llu: %s", (unsigned long long)m.seq,
              text);
        return NULL;
    }
    if (len)
        *len = m.len;
    return m.data;
}

/* ---- stats -------------------------------------------------------------- */

WEIR_API int weir_chan_stats(const weir_chan *c, struct weir_chan_stats *st)
{
    weir__clearerr();
    if (!c || !st)
        return weir__seterr(-EINVAL, "channel: weir_chan_stats needs a channel and a buffer");
    const struct weir__chan_ctl *ctl = c->ctl;
    memset(st, 0, sizeof *st);
    snprintf(st->name, sizeof st->name, "%s", c->name);
    /* errors first (pairs with the add after the record's publication), so
     * errors <= messages in every snapshot. */
    st->errors = weir__load_acquire(&ctl->errors);
    st->messages = weir__load_acquire(&ctl->write_seq);
    st->bytes = weir__load_relaxed(&ctl->bytes);
    st->writer_blocked_ns = weir__load_relaxed(&ctl->blocked_ns);
    unsigned gen = weir__load_acquire(&ctl->cur_gen);
    st->grows = gen;
    st->slot_bytes = ctl->gens[gen < WEIR_CHAN_MAX_GENS ? gen : 0].slot_bytes;
    st->depth = ctl->depth;
    st->closed = (int)weir__load_relaxed(&ctl->closed);
    uint64_t mask = weir__load_acquire(&ctl->active_mask);
    for (uint64_t m = mask; m; m &= m - 1) {
        int i = __builtin_ctzll(m);
        const struct weir__reader_line *rl = &ctl->readers[i];
        struct weir_chan_reader_stats *rs = &st->readers[st->nreaders++];
        rs->id = i;
        rs->pid = (int)rl->pid;
        rs->consumed = weir__load_relaxed(&rl->read_seq) - rl->start_seq;
        rs->starved_ns = weir__load_relaxed(&rl->starved_ns);
    }
    return 0;
}

/* ---- engine-internal ---------------------------------------------------- */

int weir__chan_unreserve(weir_chan *c)
{
    if (!c || !c->w.reserved)
        return c ? CHERR(c, -EINVAL, "unreserve without a reservation")
                 : weir__seterr(-EINVAL, "channel (null): unreserve");
    /* The slot was never published; a forward mark written by grow() stays
     * valid because the writer stays on the new generation. */
    c->w.reserved = 0;
    return 0;
}


/* Give an anonymous channel a readable name (stats, messages). */
void weir__chan_set_label(weir_chan *c, const char *label)
{
    snprintf(c->name, sizeof c->name, "%s", label);
    snprintf(c->ctl->name, sizeof c->ctl->name, "%s", label);
}

/* A forked child takes over a reader id registered by its parent (stats and
 * weir_chan_reap_dead_readers then follow the child's pid). */
int weir__chan_claim_reader(weir_chan *c, int id)
{
    if (!c || id < 0 || id >= WEIR_CHAN_MAX_READERS || !c->r[id].registered)
        return weir__seterr(-EINVAL, "channel: cannot claim reader %d", id);
    weir__store_relaxed(&c->ctl->readers[id].pid, (uint32_t)getpid());
    return 0;
}

/*
 * After a fork from a multi-threaded process (an actor restart), the
 * child's copy of the handle may hold a mutex some other thread had
 * locked; the child is single-threaded, so start it fresh.
 */
void weir__chan_after_fork(weir_chan *c)
{
    pthread_mutex_init(&c->gen_mu, NULL);
}

/*
 * Take over the writer side from a process that died: rebuild the local
 * writer state from the shared one. A message it had reserved but not
 * committed is gone; a growth it had published stays (the forward mark and
 * the new generation are both in place).
 */
int weir__chan_writer_resync(weir_chan *c)
{
    struct weir__chan_ctl *ctl = c->ctl;
    unsigned gen = weir__load_acquire(&ctl->cur_gen);
    if (gen >= WEIR_CHAN_MAX_GENS)
        return CHERR(c, -EBADMSG, "corrupt current generation %u", gen);
    if (gen > 0 && map_gen(c, gen) < 0)
        return weir_errcode();
    c->w.seq = weir__load_acquire(&ctl->write_seq);
    c->w.idx = (unsigned)(c->w.seq % c->depth);
    c->w.gen = gen;
    c->w.g = &c->gens[gen];
    c->w.reserved = 0;
    c->w.rescan = 1;
    c->w.min_read = c->w.seq >= c->depth ? c->w.seq - c->depth : 0;
    c->w.mask = 0;
    return 0;
}

/* Take over reader `id` from a process that died: continue at its shared
 * position (the first message it had not released). */
int weir__chan_reader_resync(weir_chan *c, int id)
{
    struct weir__chan_ctl *ctl = c->ctl;
    if (id < 0 || id >= WEIR_CHAN_MAX_READERS)
        return CHERR(c, -EINVAL, "reader id %d out of range", id);
    struct rstate *r = &c->r[id];
    uint64_t seq = weir__load_acquire(&ctl->readers[id].read_seq);
    /* The generation holding message seq: the last one that started at or before it. */
    unsigned cur = weir__load_acquire(&ctl->cur_gen), gen = 0;
    for (unsigned k = 1; k <= cur && k < WEIR_CHAN_MAX_GENS; k++)
        if (ctl->gens[k].start_seq <= seq)
            gen = k;
    if (gen > 0 && map_gen(c, gen) < 0)
        return weir_errcode();
    r->seq = seq;
    r->avail = seq;
    r->idx = (unsigned)(seq % c->depth);
    r->gen = gen;
    r->g = &c->gens[gen];
    r->held = 0;
    r->registered = 1;
    r->epoch = weir__load_relaxed(&ctl->readers[id].epoch);
    return 0;
}

/* Shared positions, for deciding where a restarted actor resumes. */
uint64_t weir__chan_write_seq(const weir_chan *c)
{
    return weir__load_acquire(&c->ctl->write_seq);
}
uint64_t weir__chan_read_seq(const weir_chan *c, int id)
{
    return weir__load_acquire(&c->ctl->readers[id].read_seq);
}

/* Would weir_chan_read_msg return a message at once? (No clock, no error text.) */
int weir__chan_can_read(weir_chan *c, int id)
{
    struct rstate *r = &c->r[id];
    if (!r->registered || r->held)
        return 0;
    if (r->seq < r->avail)
        return 1;
    r->avail = weir__load_acquire(&c->ctl->write_seq);
    return r->seq < r->avail;
}

/* Would weir_chan_reserve(len) succeed at once without growing? */
int weir__chan_can_reserve(weir_chan *c, size_t len)
{
    return c->writer && !c->w.reserved && !c->w.rescan && slot_free(c) &&
           len <= c->w.g->slot_bytes && !weir__load_relaxed(&c->ctl->closed);
}
