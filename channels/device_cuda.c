/* SPDX-License-Identifier: MIT */
/*
 * channels/device_cuda.c - the CUDA device behind the device ops table
 * (channels/device.h), on the CUDA driver API loaded at run time with
 * dlopen("libcuda.so.1"): one binary runs on machines with and without a
 * GPU. Built only when meson finds the toolkit's cuda.h (types and
 * prototypes only; libcuda is never linked).
 *
 * Design notes
 *   - Loading: once per process (pthread_once). The entry points are looked
 *     up by their ABI names (cuMemcpyHtoD_v2, ...: what cuda.h's macros map
 *     the API names to); the pointer types come from the prototypes, so a
 *     header/driver mismatch is a compile error, not a silent bad call. A
 *     missing library, a missing entry point or a failing cuInit is
 *     -ENODEV with the reason, remembered for later opens.
 *   - Memory: cuMemCreate with POSIX file descriptor handles, reserved and
 *     mapped in this process (cuMemAddressReserve + cuMemMap +
 *     cuMemSetAccess), sizes rounded to the allocation granularity.
 *     Exporting gives an fd (cuMemExportToShareableHandle); importing maps
 *     it again in the importing process. Once per buffer, never per message.
 *   - Ordering: one stream per opened device, a *blocking* one
 *     (CU_STREAM_DEFAULT), so it is ordered with the legacy default stream
 *     (stream 0) that a method's own kernels and copies use unless told
 *     otherwise: an event weir records after a method returns covers the
 *     method's stream-0 work, and stream-0 work after weir_call_in_tensor
 *     waits for the producer's event. Work on a method's own non-blocking
 *     streams must be synchronized by the method before it returns.
 *     Copies are asynchronous on the stream; events are
 *     CU_EVENT_INTERPROCESS (timing off), exported as cuIpcEventHandle
 *     blobs; ev_wait is cuStreamWaitEvent, so the host never blocks on
 *     another process's work.
 *   - fork: a CUDA context does not survive fork. Actor processes open
 *     their own device after the fork and import the pools' handles.
 *     The driver process must therefore not rely on device pointers
 *     inherited by a child (it never does: children import).
 *   - Not exercised on this project's CI machines (no GPU): the real-GPU
 *     tests live in tests/test_gpu.c (meson test --suite gpu).
 */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cuda.h>

#include "channels/device.h"
#include "channels/err.h"

#define CU_FN(name) __typeof__(&name) name

static struct {
    void *lib;
    int rc;
    pid_t init_pid; /* the process whose cuInit this is (a fork inherits the state, not CUDA) */
    char why[400];
    CU_FN(cuInit);
    CU_FN(cuGetErrorString);
    CU_FN(cuDeviceGetCount);
    CU_FN(cuDeviceGet);
    CU_FN(cuDevicePrimaryCtxRetain);
    CU_FN(cuDevicePrimaryCtxRelease);
    CU_FN(cuCtxSetCurrent);
    CU_FN(cuStreamCreate);
    CU_FN(cuStreamDestroy);
    CU_FN(cuStreamSynchronize);
    CU_FN(cuStreamWaitEvent);
    CU_FN(cuMemGetAllocationGranularity);
    CU_FN(cuMemCreate);
    CU_FN(cuMemRelease);
    CU_FN(cuMemAddressReserve);
    CU_FN(cuMemAddressFree);
    CU_FN(cuMemMap);
    CU_FN(cuMemUnmap);
    CU_FN(cuMemSetAccess);
    CU_FN(cuMemExportToShareableHandle);
    CU_FN(cuMemImportFromShareableHandle);
    CU_FN(cuMemcpyHtoDAsync);
    CU_FN(cuMemcpyDtoHAsync);
    CU_FN(cuMemcpyDtoDAsync);
    CU_FN(cuEventCreate);
    CU_FN(cuEventDestroy);
    CU_FN(cuEventRecord);
    CU_FN(cuIpcGetEventHandle);
    CU_FN(cuIpcOpenEventHandle);
    CU_FN(cuMemHostRegister);
    CU_FN(cuMemHostUnregister);
} cu;

static pthread_once_t cu_once = PTHREAD_ONCE_INIT;

/* Look up one entry point by its ABI name. */
#define CU_LOAD(field, sym)                                                                        \
    do {                                                                                           \
        *(void **)&cu.field = dlsym(cu.lib, sym);                                                  \
        if (!cu.field) {                                                                           \
            snprintf(cu.why, sizeof cu.why, "cuda: libcuda.so.1 has no %s (driver too old)", sym); \
            return;                                                                                \
        }                                                                                          \
    } while (0)

static void cu_load(void)
{
    cu.rc = -ENODEV;
    cu.lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!cu.lib) {
        const char *e = dlerror();
        snprintf(cu.why, sizeof cu.why, "cuda: libcuda.so.1 not found: %s", e ? e : "?");
        return;
    }
    CU_LOAD(cuInit, "cuInit");
    CU_LOAD(cuGetErrorString, "cuGetErrorString");
    CU_LOAD(cuDeviceGetCount, "cuDeviceGetCount");
    CU_LOAD(cuDeviceGet, "cuDeviceGet");
    CU_LOAD(cuDevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain");
    CU_LOAD(cuDevicePrimaryCtxRelease, "cuDevicePrimaryCtxRelease_v2");
    CU_LOAD(cuCtxSetCurrent, "cuCtxSetCurrent");
    CU_LOAD(cuStreamCreate, "cuStreamCreate");
    CU_LOAD(cuStreamDestroy, "cuStreamDestroy_v2");
    CU_LOAD(cuStreamSynchronize, "cuStreamSynchronize");
    CU_LOAD(cuStreamWaitEvent, "cuStreamWaitEvent");
    CU_LOAD(cuMemGetAllocationGranularity, "cuMemGetAllocationGranularity");
    CU_LOAD(cuMemCreate, "cuMemCreate");
    CU_LOAD(cuMemRelease, "cuMemRelease");
    CU_LOAD(cuMemAddressReserve, "cuMemAddressReserve");
    CU_LOAD(cuMemAddressFree, "cuMemAddressFree");
    CU_LOAD(cuMemMap, "cuMemMap");
    CU_LOAD(cuMemUnmap, "cuMemUnmap");
    CU_LOAD(cuMemSetAccess, "cuMemSetAccess");
    CU_LOAD(cuMemExportToShareableHandle, "cuMemExportToShareableHandle");
    CU_LOAD(cuMemImportFromShareableHandle, "cuMemImportFromShareableHandle");
    CU_LOAD(cuMemcpyHtoDAsync, "cuMemcpyHtoDAsync_v2");
    CU_LOAD(cuMemcpyDtoHAsync, "cuMemcpyDtoHAsync_v2");
    CU_LOAD(cuMemcpyDtoDAsync, "cuMemcpyDtoDAsync_v2");
    CU_LOAD(cuEventCreate, "cuEventCreate");
    CU_LOAD(cuEventDestroy, "cuEventDestroy_v2");
    CU_LOAD(cuEventRecord, "cuEventRecord");
    CU_LOAD(cuIpcGetEventHandle, "cuIpcGetEventHandle");
    CU_LOAD(cuIpcOpenEventHandle, "cuIpcOpenEventHandle");
    CU_LOAD(cuMemHostRegister, "cuMemHostRegister_v2");
    CU_LOAD(cuMemHostUnregister, "cuMemHostUnregister");
    CUresult r = cu.cuInit(0);
    if (r != CUDA_SUCCESS) {
        const char *s = NULL;
        cu.cuGetErrorString(r, &s);
        snprintf(cu.why, sizeof cu.why, "cuda: cuInit failed: %s (%d)", s ? s : "?", (int)r);
        return;
    }
    cu.init_pid = getpid();
    cu.rc = 0;
}

/* Has this process initialised CUDA (weir, or the program through the
 * runtime API)? Asked without initialising it: before cuInit every driver
 * call but a few returns CUDA_ERROR_NOT_INITIALIZED. */
static int cuda_used_here(void)
{
    if (cu.rc == 0 && cu.init_pid == getpid())
        return 1;
    void *lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL | RTLD_NOLOAD);
    if (!lib)
        return 0; /* nobody loaded the driver */
    CUresult (*count)(int *) = (CUresult(*)(int *))dlsym(lib, "cuDeviceGetCount");
    int n = 0, used = count && count(&n) != CUDA_ERROR_NOT_INITIALIZED;
    dlclose(lib);
    return used;
}

/* -EIO (or -ENOMEM) naming the call and CUDA's reason. */
static int cu_err(CUresult r, const char *what)
{
    const char *s = NULL;
    if (cu.cuGetErrorString)
        cu.cuGetErrorString(r, &s);
    return weir__seterr(r == CUDA_ERROR_OUT_OF_MEMORY ? -ENOMEM : -EIO, "cuda: %s failed: %s (%d)",
                        what, s ? s : "?", (int)r);
}

#define CU_TRY(call, what)                                                                         \
    do {                                                                                           \
        CUresult r_ = (call);                                                                      \
        if (r_ != CUDA_SUCCESS)                                                                    \
            return cu_err(r_, what);                                                               \
    } while (0)

struct cu_dev {
    int id;
    CUdevice dev;
    CUcontext ctx;
    CUstream stream;
    size_t gran;
    pthread_mutex_t mu;
    weir__dev_counters ctr;
};

struct cu_mem {
    CUmemGenericAllocationHandle h;
    CUdeviceptr ptr;
    size_t bytes, mapped;
};

static void ctr_add(struct cu_dev *d, uint64_t *field, uint64_t v)
{
    pthread_mutex_lock(&d->mu);
    *field += v;
    pthread_mutex_unlock(&d->mu);
}

static CUmemAllocationProp mem_prop(int id)
{
    CUmemAllocationProp p;
    memset(&p, 0, sizeof p);
    p.type = CU_MEM_ALLOCATION_TYPE_PINNED;
    p.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    p.location.id = id;
    p.requestedHandleTypes = CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR;
    return p;
}

static int cuda_open(int id, void **out)
{
    pthread_once(&cu_once, cu_load);
    if (cu.rc < 0)
        return weir__seterr(cu.rc, "%s", cu.why);
    if (cu.init_pid != getpid())
        return weir__seterr(-ENODEV,
                            "cuda: device %d: this process (pid %d) was forked from pid %d after "
                            "that process had initialised CUDA; a forked process cannot use CUDA",
                            id, (int)getpid(), (int)cu.init_pid);
    int n = 0;
    CU_TRY(cu.cuDeviceGetCount(&n), "cuDeviceGetCount");
    if (n == 0)
        return weir__seterr(-ENODEV, "cuda: no device (the driver sees no GPU)");
    if (id < 0 || id >= n)
        return weir__seterr(-ENODEV, "cuda: device %d absent (%d device%s)", id, n,
                            n == 1 ? "" : "s");
    struct cu_dev *d = calloc(1, sizeof *d);
    if (!d)
        return weir__seterr(-ENOMEM, "cuda: out of memory");
    d->id = id;
    pthread_mutex_init(&d->mu, NULL);
    CUresult r = cu.cuDeviceGet(&d->dev, id);
    const char *what = "cuDeviceGet";
    if (r == CUDA_SUCCESS && (what = "cuDevicePrimaryCtxRetain",
                              r = cu.cuDevicePrimaryCtxRetain(&d->ctx, d->dev)) == CUDA_SUCCESS) {
        if ((what = "cuCtxSetCurrent", r = cu.cuCtxSetCurrent(d->ctx)) == CUDA_SUCCESS &&
            (what = "cuStreamCreate",
             r = cu.cuStreamCreate(&d->stream, CU_STREAM_DEFAULT)) == CUDA_SUCCESS) {
            CUmemAllocationProp p = mem_prop(id);
            what = "cuMemGetAllocationGranularity";
            r = cu.cuMemGetAllocationGranularity(&d->gran, &p, CU_MEM_ALLOC_GRANULARITY_MINIMUM);
            if (r == CUDA_SUCCESS) {
                *out = d;
                return 0;
            }
            cu.cuStreamDestroy(d->stream);
        }
        cu.cuDevicePrimaryCtxRelease(d->dev);
    }
    pthread_mutex_destroy(&d->mu);
    free(d);
    return cu_err(r, what);
}

static void cuda_close(void *dev)
{
    struct cu_dev *d = dev;
    if (!d)
        return;
    cu.cuCtxSetCurrent(d->ctx);
    cu.cuStreamSynchronize(d->stream);
    cu.cuStreamDestroy(d->stream);
    cu.cuDevicePrimaryCtxRelease(d->dev);
    pthread_mutex_destroy(&d->mu);
    free(d);
}

/* Reserve, map and enable access to allocation m->h of m->mapped bytes. */
static int map_mem(struct cu_dev *d, struct cu_mem *m)
{
    CU_TRY(cu.cuCtxSetCurrent(d->ctx), "cuCtxSetCurrent");
    CU_TRY(cu.cuMemAddressReserve(&m->ptr, m->mapped, d->gran, 0, 0), "cuMemAddressReserve");
    CUresult r = cu.cuMemMap(m->ptr, m->mapped, 0, m->h, 0);
    if (r != CUDA_SUCCESS) {
        cu.cuMemAddressFree(m->ptr, m->mapped);
        return cu_err(r, "cuMemMap");
    }
    CUmemAccessDesc a;
    memset(&a, 0, sizeof a);
    a.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    a.location.id = d->id;
    a.flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
    r = cu.cuMemSetAccess(m->ptr, m->mapped, &a, 1);
    if (r != CUDA_SUCCESS) {
        cu.cuMemUnmap(m->ptr, m->mapped);
        cu.cuMemAddressFree(m->ptr, m->mapped);
        return cu_err(r, "cuMemSetAccess");
    }
    return 0;
}

static int cuda_mem_alloc(void *dev, size_t bytes, void **mem, void **dptr)
{
    struct cu_dev *d = dev;
    struct cu_mem *m = calloc(1, sizeof *m);
    if (!m)
        return weir__seterr(-ENOMEM, "cuda: out of memory");
    m->bytes = bytes;
    m->mapped = (bytes + d->gran - 1) / d->gran * d->gran;
    if (!m->mapped)
        m->mapped = d->gran;
    CUmemAllocationProp p = mem_prop(d->id);
    CUresult r = cu.cuMemCreate(&m->h, m->mapped, &p, 0);
    if (r != CUDA_SUCCESS) {
        free(m);
        return cu_err(r, "cuMemCreate");
    }
    int rc = map_mem(d, m);
    if (rc < 0) {
        cu.cuMemRelease(m->h);
        free(m);
        return rc;
    }
    *mem = m;
    *dptr = (void *)(uintptr_t)m->ptr;
    ctr_add(d, &d->ctr.allocs, 1);
    return 0;
}

static void cuda_mem_free(void *dev, void *mem)
{
    struct cu_dev *d = dev;
    struct cu_mem *m = mem;
    if (!m)
        return;
    cu.cuCtxSetCurrent(d->ctx);
    cu.cuStreamSynchronize(d->stream);
    cu.cuMemUnmap(m->ptr, m->mapped);
    cu.cuMemAddressFree(m->ptr, m->mapped);
    cu.cuMemRelease(m->h);
    free(m);
    ctr_add(d, &d->ctr.frees, 1);
}

static int cuda_mem_export(void *dev, void *mem, weir__dev_ipc *h)
{
    struct cu_dev *d = dev;
    struct cu_mem *m = mem;
    int fd = -1;
    CU_TRY(cu.cuMemExportToShareableHandle(&fd, m->h, CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR, 0),
           "cuMemExportToShareableHandle");
    h->fd = fd;
    h->bytes = m->bytes;
    h->len = sizeof(uint64_t);
    uint64_t mapped = m->mapped;
    memset(h->blob, 0, sizeof h->blob);
    memcpy(h->blob, &mapped, sizeof mapped);
    ctr_add(d, &d->ctr.exports, 1);
    return 0;
}

static int cuda_mem_import(void *dev, const weir__dev_ipc *h, void **mem, void **dptr)
{
    struct cu_dev *d = dev;
    if (h->fd < 0 || h->len != sizeof(uint64_t))
        return weir__seterr(-EBADMSG, "cuda: not a CUDA memory handle (%u bytes, fd %d)", h->len,
                            h->fd);
    struct cu_mem *m = calloc(1, sizeof *m);
    if (!m)
        return weir__seterr(-ENOMEM, "cuda: out of memory");
    uint64_t mapped;
    memcpy(&mapped, h->blob, sizeof mapped);
    m->bytes = h->bytes;
    m->mapped = (size_t)mapped;
    if (m->mapped < m->bytes || m->mapped % d->gran) {
        free(m);
        return weir__seterr(-EBADMSG, "cuda: memory handle of %llu bytes maps %llu",
                            (unsigned long long)h->bytes, (unsigned long long)mapped);
    }
    CUresult r = cu.cuMemImportFromShareableHandle(&m->h, (void *)(uintptr_t)h->fd,
                                                   CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR);
    if (r != CUDA_SUCCESS) {
        free(m);
        return cu_err(r, "cuMemImportFromShareableHandle");
    }
    int rc = map_mem(d, m);
    if (rc < 0) {
        cu.cuMemRelease(m->h);
        free(m);
        return rc;
    }
    *mem = m;
    *dptr = (void *)(uintptr_t)m->ptr;
    ctr_add(d, &d->ctr.imports, 1);
    return 0;
}

static int cuda_copy(void *dev, void *dst, const void *src, size_t n,
                     enum weir__dev_copy_kind kind)
{
    struct cu_dev *d = dev;
    CU_TRY(cu.cuCtxSetCurrent(d->ctx), "cuCtxSetCurrent");
    switch (kind) {
    case WEIR__COPY_H2D:
        CU_TRY(cu.cuMemcpyHtoDAsync((CUdeviceptr)(uintptr_t)dst, src, n, d->stream),
               "cuMemcpyHtoDAsync");
        break;
    case WEIR__COPY_D2H:
        CU_TRY(cu.cuMemcpyDtoHAsync(dst, (CUdeviceptr)(uintptr_t)src, n, d->stream),
               "cuMemcpyDtoHAsync");
        break;
    case WEIR__COPY_D2D:
        CU_TRY(cu.cuMemcpyDtoDAsync((CUdeviceptr)(uintptr_t)dst, (CUdeviceptr)(uintptr_t)src, n,
                                    d->stream),
               "cuMemcpyDtoDAsync");
        break;
    default:
        return weir__seterr(-EINVAL, "cuda: unknown copy kind %d", (int)kind);
    }
    pthread_mutex_lock(&d->mu);
    d->ctr.copies[kind]++;
    d->ctr.copy_bytes += n;
    pthread_mutex_unlock(&d->mu);
    return 0;
}

static int cuda_ev_create(void *dev, void **ev)
{
    struct cu_dev *d = dev;
    CUevent e;
    CU_TRY(cu.cuCtxSetCurrent(d->ctx), "cuCtxSetCurrent");
    CU_TRY(cu.cuEventCreate(&e, CU_EVENT_DISABLE_TIMING | CU_EVENT_INTERPROCESS), "cuEventCreate");
    *ev = e;
    ctr_add(d, &d->ctr.ev_creates, 1);
    return 0;
}

static void cuda_ev_destroy(void *dev, void *ev)
{
    struct cu_dev *d = dev;
    if (!ev)
        return;
    cu.cuCtxSetCurrent(d->ctx);
    cu.cuEventDestroy((CUevent)ev);
    ctr_add(d, &d->ctr.ev_destroys, 1);
}

static int cuda_ev_export(void *dev, void *ev, weir__dev_ipc *h)
{
    struct cu_dev *d = dev;
    CUipcEventHandle ih;
    _Static_assert(sizeof ih <= sizeof h->blob, "cuIpcEventHandle fits the blob");
    CU_TRY(cu.cuCtxSetCurrent(d->ctx), "cuCtxSetCurrent");
    CU_TRY(cu.cuIpcGetEventHandle(&ih, (CUevent)ev), "cuIpcGetEventHandle");
    h->fd = -1;
    h->bytes = 0;
    h->len = sizeof ih;
    memset(h->blob, 0, sizeof h->blob);
    memcpy(h->blob, &ih, sizeof ih);
    ctr_add(d, &d->ctr.exports, 1);
    return 0;
}

static int cuda_ev_import(void *dev, const weir__dev_ipc *h, void **ev)
{
    struct cu_dev *d = dev;
    CUipcEventHandle ih;
    if (h->len != sizeof ih)
        return weir__seterr(-EBADMSG, "cuda: not a CUDA event handle (%u bytes)", h->len);
    memcpy(&ih, h->blob, sizeof ih);
    CUevent e;
    CU_TRY(cu.cuCtxSetCurrent(d->ctx), "cuCtxSetCurrent");
    CU_TRY(cu.cuIpcOpenEventHandle(&e, ih), "cuIpcOpenEventHandle");
    *ev = e;
    ctr_add(d, &d->ctr.imports, 1);
    return 0;
}

static int cuda_ev_record(void *dev, void *ev)
{
    struct cu_dev *d = dev;
    CU_TRY(cu.cuCtxSetCurrent(d->ctx), "cuCtxSetCurrent");
    CU_TRY(cu.cuEventRecord((CUevent)ev, d->stream), "cuEventRecord");
    ctr_add(d, &d->ctr.ev_records, 1);
    return 0;
}

static int cuda_ev_wait(void *dev, void *ev)
{
    struct cu_dev *d = dev;
    CU_TRY(cu.cuCtxSetCurrent(d->ctx), "cuCtxSetCurrent");
    CU_TRY(cu.cuStreamWaitEvent(d->stream, (CUevent)ev, 0), "cuStreamWaitEvent");
    ctr_add(d, &d->ctr.ev_waits, 1);
    return 0;
}

static int cuda_sync(void *dev)
{
    struct cu_dev *d = dev;
    CU_TRY(cu.cuCtxSetCurrent(d->ctx), "cuCtxSetCurrent");
    CU_TRY(cu.cuStreamSynchronize(d->stream), "cuStreamSynchronize");
    ctr_add(d, &d->ctr.syncs, 1);
    return 0;
}

static int cuda_host_register(void *dev, void *ptr, size_t len)
{
    struct cu_dev *d = dev;
    CUresult r = cu.cuCtxSetCurrent(d->ctx);
    if (r == CUDA_SUCCESS)
        r = cu.cuMemHostRegister(ptr, len, CU_MEMHOSTREGISTER_PORTABLE);
    if (r != CUDA_SUCCESS) {
        ctr_add(d, &d->ctr.host_reg_fails, 1);
        return r == CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED
                   ? weir__seterr(-EEXIST, "cuda: host range %p of %zu bytes is registered "
                                  "already", ptr, len)
                   : cu_err(r, "cuMemHostRegister");
    }
    ctr_add(d, &d->ctr.host_regs, 1);
    return 0;
}

static int cuda_host_unregister(void *dev, void *ptr)
{
    struct cu_dev *d = dev;
    CU_TRY(cu.cuCtxSetCurrent(d->ctx), "cuCtxSetCurrent");
    CU_TRY(cu.cuMemHostUnregister(ptr), "cuMemHostUnregister");
    ctr_add(d, &d->ctr.host_unregs, 1);
    return 0;
}

static void cuda_counters(void *dev, weir__dev_counters *out)
{
    struct cu_dev *d = dev;
    pthread_mutex_lock(&d->mu);
    *out = d->ctr;
    pthread_mutex_unlock(&d->mu);
}

static const weir__device_ops cuda_ops = {
    .name = "cuda",
    .open = cuda_open,
    .close = cuda_close,
    .mem_alloc = cuda_mem_alloc,
    .mem_free = cuda_mem_free,
    .mem_export = cuda_mem_export,
    .mem_import = cuda_mem_import,
    .copy = cuda_copy,
    .ev_create = cuda_ev_create,
    .ev_destroy = cuda_ev_destroy,
    .ev_export = cuda_ev_export,
    .ev_import = cuda_ev_import,
    .ev_record = cuda_ev_record,
    .ev_wait = cuda_ev_wait,
    .sync = cuda_sync,
    .host_register = cuda_host_register,
    .host_unregister = cuda_host_unregister,
    .counters = cuda_counters,
    .used_here = cuda_used_here,
};

const weir__device_ops *weir__device_cuda_ops(void)
{
    return &cuda_ops;
}
