/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/fuzz_devipc.c - libFuzzer target for device IPC handles
 * (channels/device.c weir__dev_ipc_recv, and the simulated device's handle
 * checks in channels/device_sim.c): a process imports what another sent.
 *
 * Input: byte 0 picks the fds sent along (bit 0: a memfd, bit 1: a second
 * one), bytes 1..4 the memfd's size (mod 1 MiB), the rest is the message
 * sent over a SOCK_SEQPACKET pair. The receiver must refuse with a reason
 * or return a handle, which is then imported as memory and as an event on
 * sim device 0 (refused with a reason, or imported, read whole and freed).
 * No fd may be left open: the lowest free fd is the same before and after.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "channels/device.h"
#include <weir/weir.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int lowest_fd(void)
{
    int fd = dup(0);
    if (fd >= 0)
        close(fd);
    return fd;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static weir__device *dv;
    if (!dv && weir__device_open(WEIR_TENSOR_DEVICE_SIM, 0, "fuzz", &dv) < 0)
        __builtin_trap();
    if (size < 5)
        return 0;
    int before = lowest_fd();
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
        return 0;
    uint32_t fsz;
    memcpy(&fsz, data + 1, 4);
    fsz %= 1u << 20;
    int fds[2] = {-1, -1}, nfd = 0;
    for (int k = 0; k < 2; k++)
        if (data[0] & (1u << k)) {
            fds[nfd] = memfd_create("fuzz", MFD_CLOEXEC);
            if (fds[nfd] >= 0 && ftruncate(fds[nfd], fsz) == 0)
                nfd++;
            else if (fds[nfd] >= 0)
                close(fds[nfd]);
        }
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(2 * sizeof(int))];
    } cb;
    memset(&cb, 0, sizeof cb);
    struct iovec iov = {(void *)(data + 5), size - 5};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
    if (nfd) {
        m.msg_control = cb.buf;
        m.msg_controllen = CMSG_SPACE(nfd * sizeof(int));
        struct cmsghdr *c = CMSG_FIRSTHDR(&m);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(nfd * sizeof(int));
        memcpy(CMSG_DATA(c), fds, nfd * sizeof(int));
    }
    ssize_t sent = sendmsg(sv[0], &m, MSG_NOSIGNAL);
    for (int k = 0; k < nfd; k++)
        close(fds[k]);
    close(sv[0]);
    if (sent >= 0) {
        weir__dev_ipc h;
        int rc = weir__dev_ipc_recv(sv[1], &h, 0);
        if (rc < 0) {
            if (weir_errmsg()[0] == '\0' || h.fd != -1)
                __builtin_trap();
        } else {
            void *mem, *ptr, *ev;
            rc = dv->ops->mem_import(dv->impl, &h, &mem, &ptr);
            if (rc == 0) {
                /* Every byte the handle claims is mapped and readable. */
                unsigned char tmp[4096];
                for (uint64_t off = 0; off < h.bytes; off += sizeof tmp) {
                    size_t n = h.bytes - off < sizeof tmp ? (size_t)(h.bytes - off) : sizeof tmp;
                    if (dv->ops->copy(dv->impl, tmp, (char *)ptr + off, n, WEIR__COPY_D2H) < 0)
                        __builtin_trap();
                }
                dv->ops->mem_free(dv->impl, mem);
            } else if (weir_errmsg()[0] == '\0') {
                __builtin_trap();
            }
            rc = dv->ops->ev_import(dv->impl, &h, &ev);
            if (rc == 0) {
                dv->ops->ev_wait(dv->impl, ev);
                dv->ops->ev_destroy(dv->impl, ev);
            } else if (weir_errmsg()[0] == '\0') {
                __builtin_trap();
            }
            weir__dev_ipc_close(&h);
        }
    }
    close(sv[1]);
    if (lowest_fd() != before)
        __builtin_trap(); /* an fd leaked */
    return 0;
}
