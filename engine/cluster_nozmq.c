/* SPDX-License-Identifier: MIT */
/*
 * engine/cluster_nozmq.c - the control plane of a build without libzmq
 * (engine/cluster.h): every entry fails with -ENOSYS naming what is
 * missing, so a multi-rank graph is refused clearly instead of hanging.
 * engine/meson.build builds this file instead of cluster.c.
 */
#include <errno.h>
#include <stddef.h>

#include "channels/err.h"
#include "engine/cluster.h"

#define NOZMQ "cluster: this build has no ZeroMQ (libzmq3-dev; meson -Dzmq=enabled): the " \
              "control plane of a multi-rank graph is not available"

struct weir__cluster *weir__cluster_open(const struct weir__cluster_opts *o)
{
    (void)o;
    weir__seterr(-ENOSYS, NOZMQ);
    return NULL;
}

int weir__cluster_rank(const struct weir__cluster *c) { (void)c; return 0; }
int weir__cluster_size(const struct weir__cluster *c) { (void)c; return 1; }
unsigned weir__cluster_nendpoints(const struct weir__cluster *c, int r) { (void)c; (void)r; return 0; }
const char *weir__cluster_endpoint(const struct weir__cluster *c, int r, unsigned i)
{
    (void)c; (void)r; (void)i;
    return NULL;
}
const char *weir__cluster_describe(const struct weir__cluster *c, int r) { (void)c; (void)r; return "rank ?"; }
int weir__cluster_barrier(struct weir__cluster *c, int t) { (void)c; (void)t; return weir__seterr(-ENOSYS, NOZMQ); }
int weir__cluster_wait(struct weir__cluster *c, int t) { (void)c; (void)t; return weir__seterr(-ENOSYS, NOZMQ); }
int weir__cluster_failed(struct weir__cluster *c, char *b, size_t n) { (void)c; (void)b; (void)n; return 0; }
int weir__cluster_report(struct weir__cluster *c, int code, const char *fmt, ...)
{
    (void)c; (void)code; (void)fmt;
    return weir__seterr(-ENOSYS, NOZMQ);
}
int weir__cluster_close(struct weir__cluster *c, int t) { (void)c; (void)t; return 0; }
