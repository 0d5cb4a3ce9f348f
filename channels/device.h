/* SPDX-License-Identifier: MIT */
/*
 * channels/device.h - the device ops table behind device tensor edges, and
 * the few generic calls the engine uses on top of it.
 *
 * One backend per file: channels/device_sim.c (a simulated device, the test
 * backend, device type WEIR_TENSOR_DEVICE_SIM) and channels/device_cuda.c
 * (the CUDA driver API, loaded with dlopen("libcuda.so.1") at run time;
 * built only when meson finds the CUDA headers).
 *
 * The protocol every backend implements (and the tensor edges rely on):
 *   - memory is allocated exportable: mem_export gives an IPC handle (a file
 *     descriptor and/or an opaque blob) that another process turns into
 *     its own mapping with mem_import, once per buffer, never per message;
 *   - device pointers are per process (each mapping has its own address)
 *     and are never dereferenced by the host: data moves with copy();
 *   - work is ordered on the device's one stream per process; an event
 *     recorded on it is complete once everything before it is; event_wait
 *     makes later work on this process's stream wait for an event another
 *     process recorded (events are exported and imported like memory);
 *     sync waits on the host for this process's stream.
 * A weir__device is used by one thread at a time (an actor, or the driver).
 */
#ifndef WEIR_CHANNELS_DEVICE_H
#define WEIR_CHANNELS_DEVICE_H

#include <stddef.h>
#include <stdint.h>

#include <weir/tensor.h>

/* What an exported memory block or event is in transit: a file descriptor
 * (-1: none) and/or an opaque blob of len bytes. The fd belongs to whoever
 * holds the handle (close it with weir__dev_ipc_close). */
typedef struct weir__dev_ipc {
    int fd;
    uint32_t len;
    uint64_t bytes; /* memory: size of the block */
    unsigned char blob[64];
} weir__dev_ipc;

enum weir__dev_copy_kind {
    WEIR__COPY_H2D = 0, /* host -> device */
    WEIR__COPY_D2H = 1, /* device -> host */
    WEIR__COPY_D2D = 2, /* device -> device (same device, any process's mapping) */
};

/* Per-process operation counters of a device (tests check the protocol with
 * them: copies per message, one import per buffer, nothing left allocated). */
typedef struct weir__dev_counters {
    uint64_t copies[3]; /* by enum weir__dev_copy_kind */
    uint64_t copy_bytes;
    uint64_t allocs, frees, exports, imports, unmaps;
    uint64_t ev_creates, ev_destroys, ev_records, ev_waits, syncs;
    uint64_t host_regs, host_unregs, host_reg_fails; /* host ranges page-locked for copies */
    uint64_t pinned_copies; /* host <-> device copies whose host side was registered (sim) */
} weir__dev_counters;

/*
 * A backend. Every entry returns 0 or a negative errno with weir__seterr
 * naming the backend ("sim: ...", "cuda: ..."); `dev` is what open returned.
 */
typedef struct weir__device_ops {
    const char *name; /* "sim", "cuda" */
    /* Select device `id` in this process: -ENODEV with the reason when the
     * backend, its driver or that device is absent. */
    int (*open)(int id, void **dev);
    /* Release the device (after every block and event of it is freed). */
    void (*close)(void *dev);
    /* An exportable block of `bytes`; *mem is the backend's object, *dptr
     * the device address in this process. */
    int (*mem_alloc)(void *dev, size_t bytes, void **mem, void **dptr);
    /* Free a block from mem_alloc or unmap one from mem_import. */
    void (*mem_free)(void *dev, void *mem);
    /* An IPC handle for mem (a new fd the caller owns). */
    int (*mem_export)(void *dev, void *mem, weir__dev_ipc *h);
    /* Map a block exported by any process; h stays the caller's. */
    int (*mem_import)(void *dev, const weir__dev_ipc *h, void **mem, void **dptr);
    /* Copy n bytes on this process's stream (dst/src device addresses of
     * this process where the kind says device). Bad addresses: -EFAULT. */
    int (*copy)(void *dev, void *dst, const void *src, size_t n, enum weir__dev_copy_kind kind);
    /* An interprocess event. */
    int (*ev_create)(void *dev, void **ev);
    void (*ev_destroy)(void *dev, void *ev);
    int (*ev_export)(void *dev, void *ev, weir__dev_ipc *h);
    int (*ev_import)(void *dev, const weir__dev_ipc *h, void **ev);
    /* Record ev on this process's stream. */
    int (*ev_record)(void *dev, void *ev);
    /* Later work on this process's stream waits for ev's last record. */
    int (*ev_wait)(void *dev, void *ev);
    /* The host waits until this process's stream is idle. */
    int (*sync)(void *dev);
    /* Page-lock the host range [ptr, ptr + len) of this process, so copies
     * to and from it run at full speed (CUDA: cuMemHostRegister, portable);
     * -EEXIST if it overlaps a registered range. Undone by host_unregister
     * (ptr as registered; -EINVAL if it was not) before the range is unmapped. */
    int (*host_register)(void *dev, void *ptr, size_t len);
    int (*host_unregister)(void *dev, void *ptr);
    /* This process's counters for dev. */
    void (*counters)(void *dev, weir__dev_counters *out);
    /* 1 if this process has initialised the backend (opened a device, or
     * for CUDA called cuInit, weir or not), else 0. Like CUDA, every
     * backend refuses open() in a process forked from one that had
     * initialised it (-ENODEV naming both pids): the engine asks this
     * before it forks processes that must open the device. */
    int (*used_here)(void);
} weir__device_ops;

/* An opened device: the backend, its object and the DLPack device it is. */
typedef struct weir__device {
    const weir__device_ops *ops;
    void *impl;
    DLDevice dl;
} weir__device;

/* The backends (NULL when not built). */
extern const weir__device_ops weir__device_sim_ops;
const weir__device_ops *weir__device_cuda_ops(void);

/*
 * Open device (type, id) for tensor edge `edge` (named in messages; may be
 * NULL). kDLCUDA without CUDA in the build: -ENODEV "... the build has no
 * CUDA"; a missing driver or device: -ENODEV with the backend's reason;
 * kDLCPU or another type: -EINVAL. On success *out is owned by the caller
 * (weir__device_close).
 */
int weir__device_open(DLDeviceType type, int id, const char *edge, weir__device **out);
/* The backend of device type `type` (NULL: none in this build, or not a
 * device type). */
const weir__device_ops *weir__device_backend(DLDeviceType type);
/* Close an opened device; NULL is a no-op. */
void weir__device_close(weir__device *d);
/* Close h's fd (if any) and mark it empty. */
void weir__dev_ipc_close(weir__dev_ipc *h);

/*
 * Send / receive IPC handles over a unix socket with SCM_RIGHTS (one
 * message per handle; the fds travel as ancillary data). recv: the
 * received fd belongs to the caller. -EPIPE when the peer is gone,
 * -EBADMSG for a malformed message. timeout_ms as in <weir/common.h>.
 */
int weir__dev_ipc_send(int sock, const weir__dev_ipc *h);
int weir__dev_ipc_recv(int sock, weir__dev_ipc *h, int timeout_ms);

#endif
