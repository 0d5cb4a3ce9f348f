/* SPDX-License-Identifier: MIT */
/*
 * channels/device.c - choosing a device backend (channels/device.h) and
 * passing IPC handles between processes over a unix socket.
 *
 * Design notes
 *   - The backend is chosen by DLPack device type: kDLCUDA is the CUDA
 *     driver (channels/device_cuda.c, only in builds with the CUDA headers),
 *     WEIR_TENSOR_DEVICE_SIM the simulated device. Nothing else is a device
 *     here (kDLCPU tensors live in the ring slot).
 *   - A handle crosses a unix socket as one fixed-size message (the blob
 *     and sizes) with its fd, if any, as SCM_RIGHTS ancillary data; a
 *     message of any other size, or with more than one fd, is -EBADMSG and
 *     any fd that came with it is closed.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "channels/device.h"
#include "channels/err.h"
#include "weir_config.h"

#if !WEIR_HAVE_CUDA
/* This build has no CUDA headers: kDLCUDA edges are refused (weir__device_open). */
const weir__device_ops *weir__device_cuda_ops(void)
{
    return NULL;
}
#endif

#define EDGE(e) ((e) ? (e) : "?")

const weir__device_ops *weir__device_backend(DLDeviceType type)
{
    if (type == kDLCUDA)
        return weir__device_cuda_ops();
    return type == WEIR_TENSOR_DEVICE_SIM ? &weir__device_sim_ops : NULL;
}

int weir__device_open(DLDeviceType type, int id, const char *edge, weir__device **out)
{
    const weir__device_ops *ops = NULL;
    if (type == kDLCUDA) {
        ops = weir__device_cuda_ops();
        if (!ops)
            return weir__seterr(-ENODEV, "tensor edge '%s': device cuda:%d: the build has no CUDA "
                                         "(configure with the CUDA toolkit's headers)",
                                EDGE(edge), id);
    } else if (type == WEIR_TENSOR_DEVICE_SIM) {
        ops = &weir__device_sim_ops;
    } else {
        return weir__seterr(-EINVAL, "tensor edge '%s': device type %d is not a device weir "
                                     "drives (kDLCUDA, or the test device %d)",
                            EDGE(edge), (int)type, (int)WEIR_TENSOR_DEVICE_SIM);
    }
    weir__device *d = calloc(1, sizeof *d);
    if (!d)
        return weir__seterr(-ENOMEM, "tensor edge '%s': out of memory", EDGE(edge));
    int rc = ops->open(id, &d->impl);
    if (rc < 0) {
        char why[512];
        snprintf(why, sizeof why, "%s", weir_errmsg());
        free(d);
        return weir__seterr(rc, "tensor edge '%s': %s", EDGE(edge), why);
    }
    d->ops = ops;
    d->dl.device_type = type;
    d->dl.device_id = id;
    *out = d;
    return 0;
}

void weir__device_close(weir__device *d)
{
    if (!d)
        return;
    d->ops->close(d->impl);
    free(d);
}

void weir__dev_ipc_close(weir__dev_ipc *h)
{
    if (h->fd >= 0)
        close(h->fd);
    h->fd = -1;
}

/* On the wire: the handle without its fd. */
struct ipc_wire {
    uint32_t magic;
    uint32_t len;
    uint64_t bytes;
    unsigned char blob[64];
    int32_t has_fd;
    uint32_t pad;
};
#define IPC_MAGIC 0x43504957u /* "WIPC" */

int weir__dev_ipc_send(int sock, const weir__dev_ipc *h)
{
    struct ipc_wire w;
    memset(&w, 0, sizeof w);
    w.magic = IPC_MAGIC;
    w.len = h->len;
    w.bytes = h->bytes;
    memcpy(w.blob, h->blob, sizeof w.blob);
    w.has_fd = h->fd >= 0;
    struct iovec iov = {&w, sizeof w};
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(sizeof(int))];
    } cb;
    memset(&cb, 0, sizeof cb);
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
    if (h->fd >= 0) {
        m.msg_control = cb.buf;
        m.msg_controllen = sizeof cb.buf;
        struct cmsghdr *c = CMSG_FIRSTHDR(&m);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &h->fd, sizeof(int));
    }
    ssize_t n;
    do
        n = sendmsg(sock, &m, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return weir__seterr(errno == EPIPE || errno == ECONNRESET ? -EPIPE : -errno,
                            "device handle: send: %s", strerror(errno));
    if ((size_t)n != sizeof w)
        return weir__seterr(-EIO, "device handle: short send (%zd of %zu bytes)", n, sizeof w);
    return 0;
}

int weir__dev_ipc_recv(int sock, weir__dev_ipc *h, int timeout_ms)
{
    h->fd = -1;
    struct pollfd pf = {.fd = sock, .events = POLLIN};
    int pr;
    do
        pr = poll(&pf, 1, timeout_ms);
    while (pr < 0 && errno == EINTR);
    if (pr == 0)
        return weir__seterr(-ETIMEDOUT, "device handle: none received within %d ms", timeout_ms);
    if (pr < 0)
        return weir__seterr(-errno, "device handle: poll: %s", strerror(errno));
    struct ipc_wire w;
    struct iovec iov = {&w, sizeof w};
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(4 * sizeof(int))];
    } cb;
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cb.buf,
                       .msg_controllen = sizeof cb.buf};
    ssize_t n;
    do
        n = recvmsg(sock, &m, MSG_CMSG_CLOEXEC);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return weir__seterr(-errno, "device handle: receive: %s", strerror(errno));
    /* Collect every fd that came, so none leaks whatever the message is. */
    int fds[4], nfd = 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c))
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
            size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            for (size_t i = 0; i < k && nfd < 4; i++)
                memcpy(&fds[nfd++], CMSG_DATA(c) + i * sizeof(int), sizeof(int));
        }
    int bad = 0;
    if (n == 0)
        bad = -EPIPE;
    else if ((size_t)n != sizeof w || (m.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) ||
             w.magic != IPC_MAGIC || w.len > sizeof w.blob || nfd != (w.has_fd ? 1 : 0))
        bad = -EBADMSG;
    if (bad) {
        for (int i = 0; i < nfd; i++)
            close(fds[i]);
        if (bad == -EPIPE)
            return weir__seterr(-EPIPE, "device handle: the peer closed the socket");
        return weir__seterr(-EBADMSG, "device handle: malformed message (%zd bytes, %d fds)", n,
                            nfd);
    }
    h->fd = nfd ? fds[0] : -1;
    h->len = w.len;
    h->bytes = w.bytes;
    memcpy(h->blob, w.blob, sizeof h->blob);
    return 0;
}
