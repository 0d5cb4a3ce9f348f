/* SPDX-License-Identifier: MIT */
/*
 * channels/ring.c - the ring channel's segment: create, open, free, unlink,
 * mapping of data generations, and growth (include/weir/chan.h).
 *
 * Design notes.
 *
 * Layout and sequence rules: channels/layout.h. The other jobs of the ring
 * live beside this file (channels/ring_handle.h lists them).
 *
 * A named channel lives in /dev/shm/weir.NAME (mode 0600), an anonymous one
 * in a memfd; both are one file: the control part, data generation 0, and
 * later generations appended when a message outgrows the slots, so any
 * process holding the fd can map every generation, even after the writer
 * has exited. The segment is fully allocated at creation (posix_fallocate)
 * so a full /dev/shm is an error here, not SIGBUS in a write.
 *
 * The creator's pid and start time are in the header (ring_life.c): a
 * reader notices a dead writer, and creating a name whose writer died
 * reclaims it, while a live writer's name stays -EEXIST.
 *
 * The registration lock stores its holder's pid so a lock left by a dead
 * process is taken over.
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <weir/chan.h>

#include "channels/atomics.h"
#include "channels/barrier.h"
#include "channels/err.h"
#include "channels/layout.h"
#include "channels/ring_handle.h"

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

/*
 * /dev/shm<shm> exists: if it is a complete weir channel whose creator is
 * dead (ring_life.c), unlink it and return 1 so the caller creates the name
 * again; else 0 (a live creator's channel, one being created right now, or
 * a file that is not a channel: the name stays -EEXIST). Two processes
 * reclaiming at once: the flock on the old file and the inode check make
 * the second leave the first one's new channel alone.
 */
static int reclaim_dead(const char *shm)
{
    int fd = shm_open(shm, O_RDWR | O_CLOEXEC, 0);
    if (fd < 0)
        return errno == ENOENT; /* gone meanwhile: just try again */
    int ret = 0;
    struct stat st, now;
    size_t need = offsetof(struct weir__chan_ctl, pad0);
    if (fstat(fd, &st) < 0 || (size_t)st.st_size < need)
        goto out;
    struct weir__chan_ctl *ctl = mmap(NULL, need, PROT_READ, MAP_SHARED, fd, 0);
    if (ctl == MAP_FAILED)
        goto out;
    int dead = weir__load_acquire(&ctl->magic) == WEIR__CHAN_MAGIC &&
               ctl->version == WEIR__CHAN_VERSION &&
               !weir__proc_alive((pid_t)ctl->creator_pid, ctl->creator_start);
    munmap(ctl, need);
    if (!dead || flock(fd, LOCK_EX) < 0)
        goto out;
    char path[WEIR_CHAN_MAX_NAME + 24];
    snprintf(path, sizeof path, "/dev/shm%s", shm);
    if (stat(path, &now) == 0 && now.st_ino == st.st_ino && now.st_dev == st.st_dev &&
        shm_unlink(shm) == 0)
        ret = 1;
    else if (errno == ENOENT)
        ret = 1;
    flock(fd, LOCK_UN);
out:
    close(fd);
    return ret;
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
        weir__chan_err(nm, -EINVAL, "depth %u exceeds the maximum %u", depth, WEIR_CHAN_MAX_DEPTH);
        return NULL;
    }
    if (maxr > WEIR_CHAN_MAX_READERS) {
        weir__chan_err(nm, -EINVAL, "max_readers %u exceeds the maximum %d", maxr,
                 WEIR_CHAN_MAX_READERS);
        return NULL;
    }
    size_t gb = slot <= WEIR_CHAN_MAX_SLOT ? weir__ring_gen_bytes(depth, slot) : 0;
    if (gb == 0) {
        weir__chan_err(nm, -EINVAL, "slot size %zu x depth %u is too large", slot, depth);
        return NULL;
    }
    size_t ctl_bytes = weir__ring_ctl_bytes();
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
        if (c->fd < 0 && errno == EEXIST && reclaim_dead(shm))
            c->fd = shm_open(shm, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (c->fd < 0) {
            int e = errno;
            if (e == EEXIST)
                weir__chan_err(nm, -e, "a channel of this name exists (/dev/shm%s)", shm);
            else
                weir__chan_err(nm, -e, "shm_open %s failed: %s", shm, strerror(e));
            pthread_mutex_destroy(&c->gen_mu);
            free(c);
            return NULL;
        }
        c->named = 1;
    } else {
        c->fd = memfd_create("weir-chan", MFD_CLOEXEC);
        if (c->fd < 0) {
            weir__chan_err(nm, -errno, "memfd_create failed: %s", strerror(errno));
            free(c);
            return NULL;
        }
    }
    if (ftruncate(c->fd, (off_t)seg) < 0) {
        weir__chan_err(nm, -errno, "cannot size the segment to %zu bytes: %s", seg, strerror(errno));
        goto fail;
    }
    /* Allocate now: on tmpfs ftruncate reserves nothing, and a full /dev/shm
     * would otherwise surface as SIGBUS in the middle of a write. */
    int fa = posix_fallocate(c->fd, 0, (off_t)seg);
    if (fa != 0) {
        weir__chan_err(nm, fa == ENOSPC ? -ENOMEM : -fa,
                 "cannot allocate %zu bytes of shared memory: %s", seg, strerror(fa));
        goto fail;
    }
    void *p = mmap(NULL, seg, PROT_READ | PROT_WRITE, MAP_SHARED, c->fd, 0);
    if (p == MAP_FAILED) {
        weir__chan_err(nm, -errno, "mmap of %zu bytes failed: %s", seg, strerror(errno));
        goto fail;
    }
    c->ctl = p;
    c->ctl_map_bytes = seg;
    struct weir__chan_ctl *ctl = c->ctl;
    ctl->ctl_bytes = (uint32_t)ctl_bytes;
    ctl->depth = depth;
    ctl->max_readers = maxr;
    ctl->creator_pid = (uint32_t)c->creator;
    ctl->creator_start = weir__proc_start_time(c->creator);
    ctl->seg_bytes = seg;
    ctl->slot_bytes0 = slot;
    snprintf(ctl->name, sizeof ctl->name, "%s", nm);
    ctl->gens[0] = (struct weir__gen_desc){ctl_bytes, 0, slot, gb};
    weir__ring_gen_bind(&c->gens[0], p, seg, ctl_bytes, depth, slot);
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
        weir__chan_err(name, -e, e == ENOENT ? "no such channel (/dev/shm%s)" : "shm_open %s: %s", shm,
                 strerror(e));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) < 0) {
        weir__chan_err(name, -errno, "fstat: %s", strerror(errno));
        close(fd);
        return NULL;
    }
    size_t ctl_bytes = weir__ring_ctl_bytes();
    if ((size_t)st.st_size < ctl_bytes) {
        weir__chan_err(name, (size_t)st.st_size < 8 ? -EPROTO : -EBADMSG,
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
        weir__chan_err(name, -errno, "mmap: %s", strerror(errno));
        goto fail;
    }
    c->ctl = p;
    c->ctl_map_bytes = (size_t)st.st_size;
    struct weir__chan_ctl *ctl = c->ctl;
    uint32_t magic = weir__load_acquire(&ctl->magic);
    if (magic != WEIR__CHAN_MAGIC) {
        weir__chan_err(name, -EPROTO, "not a weir channel (magic 0x%08x, expected 0x%08x)", magic,
                 WEIR__CHAN_MAGIC);
        goto fail;
    }
    if (ctl->version != WEIR__CHAN_VERSION) {
        weir__chan_err(name, -EPROTO, "layout version %u, this library speaks version %u",
                 ctl->version, WEIR__CHAN_VERSION);
        goto fail;
    }
    if (ctl->depth == 0 || ctl->depth > WEIR_CHAN_MAX_DEPTH || ctl->max_readers == 0 ||
        ctl->max_readers > WEIR_CHAN_MAX_READERS || ctl->ctl_bytes != ctl_bytes ||
        ctl->slot_bytes0 == 0 || ctl->slot_bytes0 > WEIR_CHAN_MAX_SLOT ||
        ctl->seg_bytes != ctl_bytes + weir__ring_gen_bytes(ctl->depth, ctl->slot_bytes0) ||
        ctl->seg_bytes > (size_t)st.st_size || ctl->cur_gen >= WEIR_CHAN_MAX_GENS) {
        weir__chan_err(name, -EBADMSG,
                 "corrupt header (depth %u, max_readers %u, slot %llu, segment %llu of %lld "
                 "bytes)",
                 ctl->depth, ctl->max_readers, (unsigned long long)ctl->slot_bytes0,
                 (unsigned long long)ctl->seg_bytes, (long long)st.st_size);
        goto fail;
    }
    c->depth = ctl->depth;
    c->creator = (pid_t)ctl->creator_pid;
    weir__ring_gen_bind(&c->gens[0], p, c->ctl_map_bytes, ctl_bytes, c->depth, ctl->slot_bytes0);
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
        return weir__chan_err(name, -errno, "shm_unlink %s: %s", shm, strerror(errno));
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

/* Move the writer to a new generation whose slots hold len bytes. Slot w.seq is free. */
int weir__ring_grow(weir_chan *c, size_t len)
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
    size_t gb = weir__ring_gen_bytes(c->depth, slot);
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
    struct weir__gen_map *g = &c->gens[k];
    pthread_mutex_lock(&c->gen_mu);
    weir__ring_gen_bind(g, p, gb, 0, c->depth, slot);
    pthread_mutex_unlock(&c->gen_mu);

    /* The forward mark first: readers see it only with the commit's release of
     * write_seq, and a writer that dies before publishing cur_gen leaves a
     * channel a resynced writer can continue in either generation. */
    int lk = weir__ring_reg_lock(c);
    if (lk < 0) {
        /* Nothing was published: forget the new generation. */
        pthread_mutex_lock(&c->gen_mu);
        weir__store_release(&g->seg, NULL);
        pthread_mutex_unlock(&c->gen_mu);
        munmap(p, gb);
        return lk;
    }
    c->w.g->hdrs[c->w.idx].word = WEIR__HDR(0, WEIR__SLOT_FORWARD);
    ctl->gens[k] = (struct weir__gen_desc){off, c->w.seq, slot, gb};
    weir__store_release(&ctl->cur_gen, k);
    weir__ring_reg_unlock(ctl);
    c->w.gen = k;
    c->w.g = g;
    return 0;
}
