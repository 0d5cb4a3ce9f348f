/* SPDX-License-Identifier: MIT */
/*
 * channels/ring_map.c - the geometry of a ring channel's segment (control
 * part, data generations: headers, stride, sizes) and the mapping of a data
 * generation into a handle. Layout: channels/layout.h; growth, which
 * appends generations: ring.c.
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "channels/atomics.h"
#include "channels/err.h"
#include "channels/layout.h"
#include "channels/ring_handle.h"

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
size_t weir__ring_gen_bytes(unsigned depth, size_t slot_bytes)
{
    size_t stride = slot_stride(slot_bytes);
    if (stride > ((size_t)1 << 40) / depth)
        return 0;
    return round_up(hdrs_bytes(depth) + (size_t)depth * stride, 4096);
}

void weir__ring_gen_bind(struct weir__gen_map *g, uint8_t *seg, size_t seg_bytes, size_t off,
                     unsigned depth, size_t slot_bytes)
{
    g->hdrs = (struct weir__slot_hdr *)(void *)(seg + off);
    g->data = seg + off + hdrs_bytes(depth);
    g->stride = slot_stride(slot_bytes);
    g->slot_bytes = slot_bytes;
    g->seg_bytes = seg_bytes;
    /* Publish the pointer last: readers test g->seg without the mutex. */
    weir__store_release(&g->seg, seg);
}

size_t weir__ring_ctl_bytes(void)
{
    return round_up(sizeof(struct weir__chan_ctl), 4096);
}

/* ---- generation mapping ------------------------------------------------ */

/* Make generation k of the channel available in this handle. */
int weir__ring_map_gen(weir_chan *c, unsigned k)
{
    struct weir__gen_map *g = &c->gens[k];
    if (weir__load_acquire(&g->seg))
        return 0;
    int ret = 0;
    pthread_mutex_lock(&c->gen_mu);
    if (g->seg)
        goto out;
    struct weir__gen_desc d = c->ctl->gens[k];
    size_t want = weir__ring_gen_bytes(c->depth, d.slot_bytes);
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
    weir__ring_gen_bind(g, p, d.seg_bytes, 0, c->depth, d.slot_bytes);
out:
    pthread_mutex_unlock(&c->gen_mu);
    return ret;
}
