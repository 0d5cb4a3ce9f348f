/* SPDX-License-Identifier: MIT */
/*
 * channels/device_sim.c - the simulated device: the device ops table
 * (channels/device.h) over host memory that the host cannot touch by
 * accident, so the device protocol of tensor edges (pools, IPC handles,
 * events, release, teardown) is tested on machines without a GPU.
 *
 * Design notes
 *   - Memory: one memfd per block, mapped MAP_SHARED; exporting dups the fd,
 *     importing maps it again (in another process: its own mapping, as
 *     cuMemImportFromShareableHandle + cuMemMap would).
 *   - Device addresses are not host addresses: 0x51 in the top byte, the
 *     mapping's index in this process's table in bits 40..55 and the offset
 *     below. They are non-canonical on x86-64, so a host load or store
 *     through one faults at once; every access goes through copy(), which
 *     translates and bounds-checks it (-EFAULT naming the address).
 *   - The stream is synchronous: a copy is complete when copy() returns, so
 *     an event is complete when recorded and a wait never blocks (nothing
 *     here can hang on a peer that died). Events still are real shared
 *     objects (a memfd with a record counter, exported and imported like
 *     memory), so the handle passing and every record/wait of the protocol
 *     happen and are counted (weir__dev_counters).
 *   - Host registration (page-locking, cuMemHostRegister) changes nothing
 *     here but is checked as CUDA would: a range may not overlap one already
 *     registered with this device, unregistering wants the registered
 *     start, and a host-device copy whose host side lies inside a
 *     registered range counts as pinned (pinned_copies), so tests see which
 *     staged copies would run at full speed on a GPU.
 *   - Fork, as CUDA has it: a process forked from one that had opened a
 *     simulated device cannot open one (-ENODEV naming both pids), so the
 *     tests prove that the engine never makes a process actor open a
 *     device its parent had initialised (CUDA would fail there: "a forked
 *     process cannot use CUDA once its parent initialised it").
 *   - Devices 0..WEIR__SIM_NDEV-1 exist; any other id is -ENODEV, as on a
 *     machine with fewer GPUs. Blocks and events carry their device id;
 *     importing one on another device is -EXDEV.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "channels/atomics.h"
#include "channels/device.h"
#include "channels/err.h"

#define WEIR__SIM_NDEV 4
#define SIM_TAG ((uintptr_t)0x51 << 56)
#define SIM_SLOT_SHIFT 40
#define SIM_OFF_MASK (((uintptr_t)1 << SIM_SLOT_SHIFT) - 1)
#define SIM_MAX_MAPS 4096
#define SIM_MAGIC 0x4d495357u /* "WSIM" */

enum { KIND_MEM = 1, KIND_EVENT = 2 };

/* What an exported handle's blob holds. */
struct sim_blob {
    uint32_t magic;
    uint32_t kind;
    int32_t dev;
    uint32_t pad;
    uint64_t bytes;
};

#define SIM_MAX_HOST_REGS 64

struct sim_dev {
    int id;
    pthread_mutex_t mu; /* counters, host ranges (a device is used by one thread, but be safe) */
    weir__dev_counters ctr;
    unsigned nregs;
    struct {
        const char *p;
        size_t len;
    } regs[SIM_MAX_HOST_REGS];
};

struct sim_mem {
    unsigned slot;
    int fd;
    void *host;
    size_t bytes;
};

struct sim_event_shm {
    uint32_t magic;
    int32_t dev;
    uint64_t records; /* atomic: how many times it was recorded (each complete at once) */
};

struct sim_event {
    int fd;
    struct sim_event_shm *shm;
};

/* This process's mappings, for address translation. */
static pthread_mutex_t maps_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
    void *host;
    size_t bytes;
} maps[SIM_MAX_MAPS];

static void ctr_add(struct sim_dev *d, uint64_t *field, uint64_t v)
{
    pthread_mutex_lock(&d->mu);
    *field += v;
    pthread_mutex_unlock(&d->mu);
}

/* The process that first opened a simulated device (inherited by a fork:
 * that is how a child knows its parent had initialised it). */
static pid_t sim_user;

static int sim_used_here(void)
{
    return __atomic_load_n(&sim_user, __ATOMIC_ACQUIRE) == getpid();
}

static int sim_open(int id, void **dev)
{
    pid_t me = getpid(), was = 0;
    if (!__atomic_compare_exchange_n(&sim_user, &was, me, 0, __ATOMIC_ACQ_REL,
                                     __ATOMIC_ACQUIRE) &&
        was != me)
        return weir__seterr(-ENODEV,
                            "sim: device %d: this process (pid %d) was forked from pid %d after "
                            "that process had initialised the device; a forked process cannot "
                            "use it (as with CUDA)",
                            id, (int)me, (int)was);
    if (id < 0 || id >= WEIR__SIM_NDEV)
        return weir__seterr(-ENODEV, "sim: device %d absent (the simulated device has devices "
                                     "0..%d)",
                            id, WEIR__SIM_NDEV - 1);
    struct sim_dev *d = calloc(1, sizeof *d);
    if (!d)
        return weir__seterr(-ENOMEM, "sim: out of memory opening device %d", id);
    d->id = id;
    pthread_mutex_init(&d->mu, NULL);
    *dev = d;
    return 0;
}

static void sim_close(void *dev)
{
    struct sim_dev *d = dev;
    if (!d)
        return;
    pthread_mutex_destroy(&d->mu);
    free(d);
}

static int map_add(void *host, size_t bytes, unsigned *slot)
{
    pthread_mutex_lock(&maps_mu);
    for (unsigned i = 0; i < SIM_MAX_MAPS; i++)
        if (!maps[i].host) {
            maps[i].host = host;
            maps[i].bytes = bytes;
            pthread_mutex_unlock(&maps_mu);
            *slot = i;
            return 0;
        }
    pthread_mutex_unlock(&maps_mu);
    return weir__seterr(-ENOMEM, "sim: more than %d device mappings in this process",
                        SIM_MAX_MAPS);
}

static void *dev_addr(unsigned slot)
{
    return (void *)(SIM_TAG | ((uintptr_t)slot << SIM_SLOT_SHIFT));
}

static int is_dev_addr(const void *p)
{
    return ((uintptr_t)p & ~(((uintptr_t)1 << 56) - 1)) == SIM_TAG;
}

/* Translate [p, p + n) to host memory of this process, or -EFAULT. */
static int translate(const void *p, size_t n, void **host)
{
    if (!is_dev_addr(p))
        return weir__seterr(-EFAULT, "sim: address %p is not a device address", p);
    uintptr_t a = (uintptr_t)p;
    unsigned slot = (unsigned)((a >> SIM_SLOT_SHIFT) & 0xffff);
    size_t off = (size_t)(a & SIM_OFF_MASK);
    pthread_mutex_lock(&maps_mu);
    void *base = slot < SIM_MAX_MAPS ? maps[slot].host : NULL;
    size_t bytes = slot < SIM_MAX_MAPS ? maps[slot].bytes : 0;
    pthread_mutex_unlock(&maps_mu);
    if (!base)
        return weir__seterr(-EFAULT, "sim: device address %p is not mapped in this process", p);
    if (off > bytes || n > bytes - off)
        return weir__seterr(-EFAULT,
                            "sim: %zu bytes at device address %p overrun its block of %zu bytes",
                            n, p, bytes);
    *host = (char *)base + off;
    return 0;
}

static int map_block(struct sim_dev *d, int fd, size_t bytes, struct sim_mem **out, void **dptr)
{
    struct sim_mem *m = calloc(1, sizeof *m);
    if (!m)
        return weir__seterr(-ENOMEM, "sim: out of memory");
    void *host = mmap(NULL, bytes ? bytes : 1, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (host == MAP_FAILED) {
        int e = errno;
        free(m);
        return weir__seterr(-e, "sim: cannot map a block of %zu bytes on device %d: %s", bytes,
                            d->id, strerror(e));
    }
    int rc = map_add(host, bytes, &m->slot);
    if (rc < 0) {
        munmap(host, bytes ? bytes : 1);
        free(m);
        return rc;
    }
    m->fd = fd;
    m->host = host;
    m->bytes = bytes;
    *out = m;
    *dptr = dev_addr(m->slot);
    return 0;
}

static int sim_mem_alloc(void *dev, size_t bytes, void **mem, void **dptr)
{
    struct sim_dev *d = dev;
    if (bytes > SIM_OFF_MASK)
        return weir__seterr(-ENOMEM, "sim: a block of %zu bytes is larger than the device", bytes);
    int fd = memfd_create("weir-sim-device", MFD_CLOEXEC);
    if (fd < 0)
        return weir__seterr(-errno, "sim: memfd_create: %s", strerror(errno));
    if (ftruncate(fd, (off_t)(bytes ? bytes : 1)) < 0) {
        int e = errno;
        close(fd);
        return weir__seterr(-e, "sim: cannot allocate %zu bytes on device %d: %s", bytes, d->id,
                            strerror(e));
    }
    struct sim_mem *m;
    int rc = map_block(d, fd, bytes, &m, dptr);
    if (rc < 0) {
        close(fd);
        return rc;
    }
    *mem = m;
    ctr_add(d, &d->ctr.allocs, 1);
    return 0;
}

static void sim_mem_free(void *dev, void *mem)
{
    struct sim_dev *d = dev;
    struct sim_mem *m = mem;
    if (!m)
        return;
    pthread_mutex_lock(&maps_mu);
    maps[m->slot].host = NULL;
    maps[m->slot].bytes = 0;
    pthread_mutex_unlock(&maps_mu);
    munmap(m->host, m->bytes ? m->bytes : 1);
    close(m->fd);
    free(m);
    ctr_add(d, &d->ctr.frees, 1);
}

static void blob_put(weir__dev_ipc *h, uint32_t kind, int dev, uint64_t bytes)
{
    struct sim_blob b = {.magic = SIM_MAGIC, .kind = kind, .dev = dev, .bytes = bytes};
    memset(h->blob, 0, sizeof h->blob);
    memcpy(h->blob, &b, sizeof b);
    h->len = sizeof b;
    h->bytes = bytes;
}

static int blob_get(const struct sim_dev *d, const weir__dev_ipc *h, uint32_t kind,
                    struct sim_blob *b)
{
    const char *what = kind == KIND_MEM ? "memory" : "event";
    if (h->len != sizeof *b || h->fd < 0)
        return weir__seterr(-EBADMSG, "sim: not a simulated-device %s handle (%u bytes, fd %d)",
                            what, h->len, h->fd);
    memcpy(b, h->blob, sizeof *b);
    if (b->magic != SIM_MAGIC || b->kind != kind)
        return weir__seterr(-EBADMSG, "sim: not a simulated-device %s handle", what);
    if (b->dev != d->id)
        return weir__seterr(-EXDEV, "sim: %s handle of device %d imported on device %d", what,
                            b->dev, d->id);
    return 0;
}

static int sim_mem_export(void *dev, void *mem, weir__dev_ipc *h)
{
    struct sim_dev *d = dev;
    struct sim_mem *m = mem;
    int fd = fcntl(m->fd, F_DUPFD_CLOEXEC, 0);
    if (fd < 0)
        return weir__seterr(-errno, "sim: cannot export a block: %s", strerror(errno));
    h->fd = fd;
    blob_put(h, KIND_MEM, d->id, m->bytes);
    ctr_add(d, &d->ctr.exports, 1);
    return 0;
}

static int sim_mem_import(void *dev, const weir__dev_ipc *h, void **mem, void **dptr)
{
    struct sim_dev *d = dev;
    struct sim_blob b;
    int rc = blob_get(d, h, KIND_MEM, &b);
    if (rc < 0)
        return rc;
    if (h->bytes != b.bytes)
        return weir__seterr(-EBADMSG, "sim: memory handle of %llu bytes whose blob says %llu",
                            (unsigned long long)h->bytes, (unsigned long long)b.bytes);
    struct stat st;
    if (fstat(h->fd, &st) < 0 || (uint64_t)st.st_size < (b.bytes ? b.bytes : 1))
        return weir__seterr(-EBADMSG, "sim: memory handle of %llu bytes backed by %lld bytes",
                            (unsigned long long)b.bytes, (long long)st.st_size);
    int fd = fcntl(h->fd, F_DUPFD_CLOEXEC, 0);
    if (fd < 0)
        return weir__seterr(-errno, "sim: cannot import a block: %s", strerror(errno));
    struct sim_mem *m;
    rc = map_block(d, fd, (size_t)b.bytes, &m, dptr);
    if (rc < 0) {
        close(fd);
        return rc;
    }
    *mem = m;
    ctr_add(d, &d->ctr.imports, 1);
    return 0;
}

static int sim_copy(void *dev, void *dst, const void *src, size_t n, enum weir__dev_copy_kind kind)
{
    struct sim_dev *d = dev;
    void *hd = dst;
    void *hs = (void *)src;
    int rc = 0;
    switch (kind) {
    case WEIR__COPY_H2D:
        if (is_dev_addr(src))
            return weir__seterr(-EFAULT, "sim: host-to-device copy from device address %p", src);
        rc = translate(dst, n, &hd);
        break;
    case WEIR__COPY_D2H:
        if (is_dev_addr(dst))
            return weir__seterr(-EFAULT, "sim: device-to-host copy to device address %p", dst);
        rc = translate(src, n, &hs);
        break;
    case WEIR__COPY_D2D:
        rc = translate(dst, n, &hd);
        if (rc == 0)
            rc = translate(src, n, &hs);
        break;
    default:
        return weir__seterr(-EINVAL, "sim: unknown copy kind %d", (int)kind);
    }
    if (rc < 0)
        return rc;
    if (n)
        memmove(hd, hs, n);
    const char *host = kind == WEIR__COPY_H2D ? src : kind == WEIR__COPY_D2H ? dst : NULL;
    pthread_mutex_lock(&d->mu);
    d->ctr.copies[kind]++;
    d->ctr.copy_bytes += n;
    for (unsigned i = 0; host && i < d->nregs; i++)
        if (host >= d->regs[i].p && (size_t)(host - d->regs[i].p) + n <= d->regs[i].len) {
            d->ctr.pinned_copies++;
            break;
        }
    pthread_mutex_unlock(&d->mu);
    return 0;
}

static int sim_host_register(void *dev, void *ptr, size_t len)
{
    struct sim_dev *d = dev;
    const char *p = ptr;
    if (!p || !len || is_dev_addr(p))
        return weir__seterr(-EINVAL, "sim: host range %p of %zu bytes cannot be registered", ptr,
                            len);
    int rc = 0;
    pthread_mutex_lock(&d->mu);
    for (unsigned i = 0; i < d->nregs && rc == 0; i++)
        if (p < d->regs[i].p + d->regs[i].len && d->regs[i].p < p + len)
            rc = weir__seterr(-EEXIST, "sim: host range %p of %zu bytes overlaps the registered "
                              "range %p of %zu bytes", ptr, len, (const void *)d->regs[i].p,
                              d->regs[i].len);
    if (rc == 0 && d->nregs == SIM_MAX_HOST_REGS)
        rc = weir__seterr(-ENOMEM, "sim: %d host ranges registered already", SIM_MAX_HOST_REGS);
    if (rc == 0) {
        d->regs[d->nregs].p = p;
        d->regs[d->nregs].len = len;
        d->nregs++;
        d->ctr.host_regs++;
    } else {
        d->ctr.host_reg_fails++;
    }
    pthread_mutex_unlock(&d->mu);
    return rc;
}

static int sim_host_unregister(void *dev, void *ptr)
{
    struct sim_dev *d = dev;
    pthread_mutex_lock(&d->mu);
    for (unsigned i = 0; i < d->nregs; i++)
        if (d->regs[i].p == ptr) {
            d->regs[i] = d->regs[--d->nregs];
            d->ctr.host_unregs++;
            pthread_mutex_unlock(&d->mu);
            return 0;
        }
    pthread_mutex_unlock(&d->mu);
    return weir__seterr(-EINVAL, "sim: host range %p was not registered", ptr);
}

static int event_map(int fd, struct sim_event **out)
{
    struct sim_event *e = calloc(1, sizeof *e);
    if (!e)
        return weir__seterr(-ENOMEM, "sim: out of memory");
    void *p = mmap(NULL, sizeof(struct sim_event_shm), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        int err = errno;
        free(e);
        return weir__seterr(-err, "sim: cannot map an event: %s", strerror(err));
    }
    e->fd = fd;
    e->shm = p;
    *out = e;
    return 0;
}

static int sim_ev_create(void *dev, void **ev)
{
    struct sim_dev *d = dev;
    int fd = memfd_create("weir-sim-event", MFD_CLOEXEC);
    if (fd < 0)
        return weir__seterr(-errno, "sim: memfd_create: %s", strerror(errno));
    if (ftruncate(fd, sizeof(struct sim_event_shm)) < 0) {
        int e = errno;
        close(fd);
        return weir__seterr(-e, "sim: cannot create an event: %s", strerror(e));
    }
    struct sim_event *e;
    int rc = event_map(fd, &e);
    if (rc < 0) {
        close(fd);
        return rc;
    }
    e->shm->magic = SIM_MAGIC;
    e->shm->dev = d->id;
    *ev = e;
    ctr_add(d, &d->ctr.ev_creates, 1);
    return 0;
}

static void sim_ev_destroy(void *dev, void *ev)
{
    struct sim_dev *d = dev;
    struct sim_event *e = ev;
    if (!e)
        return;
    munmap(e->shm, sizeof *e->shm);
    close(e->fd);
    free(e);
    ctr_add(d, &d->ctr.ev_destroys, 1);
}

static int sim_ev_export(void *dev, void *ev, weir__dev_ipc *h)
{
    struct sim_dev *d = dev;
    struct sim_event *e = ev;
    int fd = fcntl(e->fd, F_DUPFD_CLOEXEC, 0);
    if (fd < 0)
        return weir__seterr(-errno, "sim: cannot export an event: %s", strerror(errno));
    h->fd = fd;
    blob_put(h, KIND_EVENT, d->id, 0);
    ctr_add(d, &d->ctr.exports, 1);
    return 0;
}

static int sim_ev_import(void *dev, const weir__dev_ipc *h, void **ev)
{
    struct sim_dev *d = dev;
    struct sim_blob b;
    int rc = blob_get(d, h, KIND_EVENT, &b);
    if (rc < 0)
        return rc;
    struct stat st;
    if (fstat(h->fd, &st) < 0 || (size_t)st.st_size < sizeof(struct sim_event_shm))
        return weir__seterr(-EBADMSG, "sim: event handle backed by %lld bytes",
                            (long long)st.st_size);
    int fd = fcntl(h->fd, F_DUPFD_CLOEXEC, 0);
    if (fd < 0)
        return weir__seterr(-errno, "sim: cannot import an event: %s", strerror(errno));
    struct sim_event *e;
    rc = event_map(fd, &e);
    if (rc < 0) {
        close(fd);
        return rc;
    }
    if (e->shm->magic != SIM_MAGIC) {
        sim_ev_destroy(dev, e);
        return weir__seterr(-EBADMSG, "sim: event handle without an event behind it");
    }
    *ev = e;
    ctr_add(d, &d->ctr.imports, 1);
    return 0;
}

static int sim_ev_record(void *dev, void *ev)
{
    struct sim_dev *d = dev;
    struct sim_event *e = ev;
    /* The stream is synchronous: everything before this record is done, so
     * the event completes as it is recorded. One atomic step (a process
     * that dies here leaves no half-recorded event for a waiter to spin
     * on); pairs with the acquire load in sim_ev_wait (another process). */
    weir__fetch_add(&e->shm->records, 1);
    ctr_add(d, &d->ctr.ev_records, 1);
    return 0;
}

static int sim_ev_wait(void *dev, void *ev)
{
    struct sim_dev *d = dev;
    struct sim_event *e = ev;
    /* Every record is complete: waiting is the acquire that makes the
     * recorder's copies visible (pairs with the fetch_add in sim_ev_record). */
    (void)weir__load_acquire(&e->shm->records);
    ctr_add(d, &d->ctr.ev_waits, 1);
    return 0;
}

static int sim_sync(void *dev)
{
    struct sim_dev *d = dev;
    ctr_add(d, &d->ctr.syncs, 1);
    return 0;
}

static void sim_counters(void *dev, weir__dev_counters *out)
{
    struct sim_dev *d = dev;
    pthread_mutex_lock(&d->mu);
    *out = d->ctr;
    pthread_mutex_unlock(&d->mu);
}

const weir__device_ops weir__device_sim_ops = {
    .name = "sim",
    .open = sim_open,
    .close = sim_close,
    .mem_alloc = sim_mem_alloc,
    .mem_free = sim_mem_free,
    .mem_export = sim_mem_export,
    .mem_import = sim_mem_import,
    .copy = sim_copy,
    .ev_create = sim_ev_create,
    .ev_destroy = sim_ev_destroy,
    .ev_export = sim_ev_export,
    .ev_import = sim_ev_import,
    .ev_record = sim_ev_record,
    .ev_wait = sim_ev_wait,
    .sync = sim_sync,
    .host_register = sim_host_register,
    .host_unregister = sim_host_unregister,
    .counters = sim_counters,
    .used_here = sim_used_here,
};
