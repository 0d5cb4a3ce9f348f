/* SPDX-License-Identifier: MIT */
/*
 * tests/test_tensor.c - tensor records (channels/tensor.c): exact round trips
 * of dtype/ndim/shape/strides/byte_offset/device, data placement (64-byte
 * aligned in the slot), and every rejection with its message.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include "channels/tensor.h"
#include <weir/weir.h>

#include "heap_check.h"
TestSuite(tensor, .fini = t_heap_check, .timeout = 60);

#define SLOT 4096

static unsigned char *slot_new(void)
{
    unsigned char *p = aligned_alloc(64, SLOT);
    cr_assert_not_null(p);
    memset(p, 0xee, SLOT);
    return p;
}

static DLTensor meta(int ndim, int64_t *shape, int64_t *strides, uint8_t code, uint8_t bits)
{
    DLTensor t;
    memset(&t, 0, sizeof t);
    t.ndim = ndim;
    t.shape = shape;
    t.strides = strides;
    t.dtype.code = code;
    t.dtype.bits = bits;
    t.dtype.lanes = 1;
    t.device.device_type = kDLCPU;
    return t;
}

Test(tensor, contiguous_round_trip_exact)
{
    unsigned char *slot = slot_new();
    int64_t shape[3] = {2, 3, 4};
    DLTensor m = meta(3, shape, NULL, kDLFloat, 32);
    size_t total = 0;
    void *data = NULL;
    cr_assert_eq(weir__tensor_encode(slot, SLOT, &m, 1, 0, "e", &total, &data), 0, "%s",
                 weir_errmsg());
    cr_assert_eq((unsigned char *)data - slot, 192);
    cr_assert_eq((uintptr_t)data % 64, 0);
    cr_assert_eq(total, 192 + 24 * 4);
    float *f = data;
    for (int i = 0; i < 24; i++)
        f[i] = (float)i * 1.5f;

    DLTensor t;
    uint32_t bi = 99;
    cr_assert_eq(weir__tensor_decode(slot, total, "e", &t, &bi), 0, "%s", weir_errmsg());
    cr_assert_eq(t.ndim, 3);
    cr_assert_eq(t.dtype.code, kDLFloat);
    cr_assert_eq(t.dtype.bits, 32);
    cr_assert_eq(t.dtype.lanes, 1);
    cr_assert_eq(t.device.device_type, kDLCPU);
    cr_assert_eq(t.device.device_id, 0);
    cr_assert_eq(t.shape[0], 2);
    cr_assert_eq(t.shape[1], 3);
    cr_assert_eq(t.shape[2], 4);
    cr_assert_null(t.strides, "contiguous stays contiguous (NULL strides)");
    cr_assert_eq(t.byte_offset, 0);
    cr_assert_eq(t.data, data, "zero-copy: the view is the very bytes written");
    cr_assert_eq(bi, 0);
    double sum = 0;
    for (int i = 0; i < 24; i++)
        sum += ((const float *)t.data)[i];
    cr_assert_float_eq(sum, 1.5 * 276, 1e-9);
    size_t nb = 0;
    cr_assert_eq(weir_tensor_nbytes(&t, &nb), 0);
    cr_assert_eq(nb, 96);
    free(slot);
}

Test(tensor, strided_with_byte_offset_preserved)
{
    unsigned char *slot = slot_new();
    /* A transposed 3x4 int16 view of a 4x3 buffer, starting 16 bytes in. */
    int64_t shape[2] = {3, 4}, strides[2] = {1, 3};
    DLTensor m = meta(2, shape, strides, kDLInt, 16);
    m.byte_offset = 16;
    m.device.device_id = 0;
    size_t total = 0;
    void *data = NULL;
    cr_assert_eq(weir__tensor_encode(slot, SLOT, &m, 1, 0, "tr", &total, &data), 0, "%s",
                 weir_errmsg());
    /* reach: 1*2 + 3*3 = 11 elements past the first, 12 * 2 bytes + 16 */
    cr_assert_eq(total, 192 + 16 + 24);
    DLTensor t;
    cr_assert_eq(weir__tensor_decode(slot, total, "tr", &t, NULL), 0, "%s", weir_errmsg());
    cr_assert_not_null(t.strides, "non-contiguous strides are not compacted");
    cr_assert_eq(t.strides[0], 1);
    cr_assert_eq(t.strides[1], 3);
    cr_assert_eq(t.shape[0], 3);
    cr_assert_eq(t.shape[1], 4);
    cr_assert_eq(t.byte_offset, 16);
    cr_assert_eq(t.dtype.code, kDLInt);
    cr_assert_eq(t.dtype.bits, 16);
    free(slot);
}

Test(tensor, scalar_empty_and_lanes)
{
    size_t nb = 0;
    DLTensor s = meta(0, NULL, NULL, kDLFloat, 64);
    cr_assert_eq(weir_tensor_nbytes(&s, &nb), 0, "%s", weir_errmsg());
    cr_assert_eq(nb, 8);
    int64_t shape[2] = {5, 0};
    DLTensor e = meta(2, shape, NULL, kDLUInt, 8);
    e.byte_offset = 7;
    cr_assert_eq(weir_tensor_nbytes(&e, &nb), 0, "%s", weir_errmsg());
    cr_assert_eq(nb, 7);
    int64_t sh1[1] = {10};
    DLTensor l = meta(1, sh1, NULL, kDLFloat, 32);
    l.dtype.lanes = 4;
    cr_assert_eq(weir_tensor_nbytes(&l, &nb), 0, "%s", weir_errmsg());
    cr_assert_eq(nb, 160);
}

Test(tensor, device_record_carries_buffer_index)
{
    unsigned char *slot = slot_new();
    int64_t shape[1] = {1000};
    DLTensor m = meta(1, shape, NULL, kDLFloat, 16);
    m.device.device_type = kDLCUDA;
    m.device.device_id = 1;
    size_t total = 0;
    void *data = (void *)1;
    cr_assert_eq(weir__tensor_encode(slot, 192, &m, 0, 5, "dev", &total, &data), 0, "%s",
                 weir_errmsg());
    cr_assert_eq(total, 192);
    cr_assert_null(data);
    DLTensor t;
    uint32_t bi = 0;
    cr_assert_eq(weir__tensor_decode(slot, total, "dev", &t, &bi), 0, "%s", weir_errmsg());
    cr_assert_eq(bi, 5);
    cr_assert_null(t.data);
    cr_assert_eq(t.device.device_type, kDLCUDA);
    cr_assert_eq(t.device.device_id, 1);
    cr_assert_eq(t.shape[0], 1000);
    free(slot);
}

Test(tensor, bad_metadata_rejected_with_reason)
{
    unsigned char *slot = slot_new();
    int64_t shape[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    size_t total;
    void *data;
    DLTensor m = meta(9, shape, NULL, kDLFloat, 32);
    cr_assert_eq(weir__tensor_encode(slot, SLOT, &m, 1, 0, "e9", &total, &data), -EINVAL);
    cr_assert_str_eq(weir_errmsg(), "tensor edge 'e9': ndim 9 out of range (0..8)");

    m = meta(2, shape, NULL, kDLFloat, 12);
    cr_assert_eq(weir__tensor_encode(slot, SLOT, &m, 1, 0, "eb", &total, &data), -EINVAL);
    cr_assert_str_eq(weir_errmsg(),
                     "tensor edge 'eb': bad dtype (code 2, bits 12, lanes 1): bits must be a "
                     "multiple of 8, lanes >= 1, code a DLPack type");

    int64_t neg[2] = {3, -1};
    m = meta(2, neg, NULL, kDLFloat, 32);
    cr_assert_eq(weir__tensor_encode(slot, SLOT, &m, 1, 0, "en", &total, &data), -EINVAL);
    cr_assert_str_eq(weir_errmsg(), "tensor edge 'en': shape[1] is negative (-1)");

    int64_t sh[1] = {4}, st[1] = {-1};
    m = meta(1, sh, st, kDLFloat, 32);
    cr_assert_eq(weir__tensor_encode(slot, SLOT, &m, 1, 0, "es", &total, &data), -EINVAL);
    cr_assert_str_eq(weir_errmsg(), "tensor edge 'es': strides overrun the buffer: negative "
                                    "strides reach 12 bytes below data (byte_offset 0)");
    m.byte_offset = 12; /* now the negative stride stays inside */
    cr_assert_eq(weir__tensor_encode(slot, SLOT, &m, 1, 0, "es", &total, &data), 0, "%s",
                 weir_errmsg());
    cr_assert_eq(total, 192 + 16);

    int64_t huge[8];
    for (int i = 0; i < 8; i++)
        huge[i] = (int64_t)1 << 48;
    m = meta(8, huge, NULL, kDLFloat, 32);
    cr_assert_eq(weir__tensor_encode(slot, SLOT, &m, 1, 0, "eh", &total, &data), -EOVERFLOW);
    cr_assert_str_eq(weir_errmsg(), "tensor edge 'eh': shape has more than 2^62 elements");
    int64_t hst[8] = {1, 1, 1, 1, 1, 1, 1, ((int64_t)1 << 48)};
    m = meta(8, huge, hst, kDLFloat, 32);
    cr_assert_eq(weir__tensor_encode(slot, SLOT, &m, 1, 0, "eh", &total, &data), -EOVERFLOW);
    cr_assert_str_eq(weir_errmsg(), "tensor edge 'eh': strides reach more than 2^62 elements");

    int64_t big[1] = {1000};
    m = meta(1, big, NULL, kDLFloat, 64);
    cr_assert_eq(weir__tensor_encode(slot, SLOT, &m, 1, 0, "small", &total, &data), -EMSGSIZE);
    cr_assert_str_eq(weir_errmsg(), "tensor edge 'small': 8192 bytes needed, the slot holds 4096");
    free(slot);
}

/* Encode a valid 4x4 float32 record, then let `mut` corrupt it. */
/* A device record with a staged host copy (a device edge read on other
 * ranks): buffer index, the copy's room at the aligned offset, exact
 * record; the decoder hands out the copy as data. */
Test(tensor, staged_device_record_round_trip)
{
    unsigned char *slot = slot_new();
    int64_t shape[2] = {3, 5}, strides[2] = {1, -3};
    DLTensor m = meta(2, shape, strides, kDLInt, 16);
    m.dtype.lanes = 2;
    m.device.device_type = WEIR_TENSOR_DEVICE_SIM;
    m.byte_offset = 4 * 4 * 3; /* the negative stride reaches 48 bytes below */
    size_t span, total = 0;
    cr_assert_eq(weir_tensor_nbytes(&m, &span), 0, "%s", weir_errmsg());
    void *data = NULL;
    cr_assert_eq(weir__tensor_encode(slot, 192 + 64 + span, &m, WEIR__TENSOR_STAGED, 3, "st",
                                     &total, &data), 0, "%s", weir_errmsg());
    cr_assert_eq(data, slot + 192, "right after the record (64-byte aligned)");
    cr_assert_eq(total, 192 + span);
    const weir__tensor_rec *r = (const weir__tensor_rec *)slot;
    cr_assert_eq(r->flags, WEIR__TENSOR_F_STAGED | WEIR__TENSOR_F_STRIDES);
    cr_assert_eq(r->buf_index, 3);
    DLTensor t;
    uint32_t bi = 0;
    cr_assert_eq(weir__tensor_decode(slot, total, "st", &t, &bi), 0, "%s", weir_errmsg());
    cr_assert_eq(bi, 3);
    cr_assert_eq(t.data, slot + 192, "the staged copy");
    cr_assert_eq(t.device.device_type, WEIR_TENSOR_DEVICE_SIM);
    cr_assert_eq(t.dtype.code, kDLInt);
    cr_assert_eq(t.dtype.bits, 16);
    cr_assert_eq(t.dtype.lanes, 2);
    cr_assert_eq(t.ndim, 2);
    cr_assert_eq(t.shape[0], 3);
    cr_assert_eq(t.shape[1], 5);
    cr_assert_eq(t.strides[0], 1);
    cr_assert_eq(t.strides[1], -3);
    cr_assert_eq(t.byte_offset, 48);
    /* Room too small for the copy, then records that are neither. */
    cr_assert_eq(weir__tensor_encode(slot, 192 + span - 1, &m, WEIR__TENSOR_STAGED, 3, "st",
                                     &total, &data), -EMSGSIZE);
    cr_assert_str_eq(weir_errmsg(), "tensor edge 'st': 252 bytes needed, the slot holds 251");
    cr_assert_eq(weir__tensor_encode(slot, 192 + 64 + span, &m, WEIR__TENSOR_STAGED, 3, "st",
                                     &total, &data), 0);
    cr_assert_eq(weir__tensor_decode(slot, total - 1, "st", &t, &bi), -EBADMSG);
    cr_assert_str_eq(weir_errmsg(),
                     "tensor edge 'st': data (offset 192, 60 bytes) outside the 251-byte message");
    ((weir__tensor_rec *)slot)->flags |= WEIR__TENSOR_F_INSLOT;
    cr_assert_eq(weir__tensor_decode(slot, total, "st", &t, &bi), -EBADMSG);
    cr_assert_str_eq(weir_errmsg(), "tensor edge 'st': record flags 0x07: in-slot data and a "
                                    "staged device copy at once");
    free(slot);
}

static size_t good(unsigned char *slot)
{
    int64_t shape[2] = {4, 4};
    DLTensor m = meta(2, shape, NULL, kDLFloat, 32);
    size_t total;
    void *data;
    cr_assert_eq(weir__tensor_encode(slot, SLOT, &m, 1, 0, "in", &total, &data), 0);
    return total;
}

Test(tensor, decoder_rejects_foreign_bytes)
{
    unsigned char *slot = slot_new();
    DLTensor t;
    weir__tensor_rec *r = (weir__tensor_rec *)slot;

    size_t n = good(slot);
    cr_assert_eq(weir__tensor_decode(slot, 100, "in", &t, NULL), -EBADMSG);
    cr_assert_str_eq(weir_errmsg(),
                     "tensor edge 'in': message of 100 bytes is shorter than a tensor record (192)");

    r->magic = 0x12345678;
    cr_assert_eq(weir__tensor_decode(slot, n, "in", &t, NULL), -EBADMSG);
    cr_assert_str_eq(weir_errmsg(), "tensor edge 'in': bad record magic 0x12345678");

    n = good(slot);
    r->version = 7;
    cr_assert_eq(weir__tensor_decode(slot, n, "in", &t, NULL), -EBADMSG);
    cr_assert_str_eq(weir_errmsg(), "tensor edge 'in': record version 7, this build reads 1");

    n = good(slot);
    r->flags |= 0x80;
    cr_assert_eq(weir__tensor_decode(slot, n, "in", &t, NULL), -EBADMSG);
    cr_assert_str_eq(weir_errmsg(), "tensor edge 'in': unknown record flags 0x82");

    n = good(slot);
    r->ndim = 9;
    cr_assert_eq(weir__tensor_decode(slot, n, "in", &t, NULL), -EBADMSG);
    cr_assert_str_eq(weir_errmsg(), "tensor edge 'in': ndim 9 out of range (0..8)");

    n = good(slot);
    r->dtype_lanes = 0;
    cr_assert_eq(weir__tensor_decode(slot, n, "in", &t, NULL), -EBADMSG);
    cr_assert_str_eq(weir_errmsg(),
                     "tensor edge 'in': bad dtype (code 2, bits 32, lanes 0): bits must be a "
                     "multiple of 8, lanes >= 1, code a DLPack type");

    n = good(slot);
    r->flags |= WEIR__TENSOR_F_STRIDES;
    r->strides[0] = 8; /* rows 8 floats apart in a 16-float buffer */
    r->strides[1] = 1;
    cr_assert_eq(weir__tensor_decode(slot, n, "in", &t, NULL), -EBADMSG);
    cr_assert_str_eq(weir_errmsg(), "tensor edge 'in': strides overrun the buffer: the tensor "
                                    "reaches byte 112, the buffer holds 64");

    n = good(slot);
    cr_assert_eq(weir__tensor_decode(slot, n - 1, "in", &t, NULL), -EBADMSG);
    cr_assert_str_eq(weir_errmsg(),
                     "tensor edge 'in': data (offset 192, 64 bytes) outside the 255-byte message");

    n = good(slot);
    r->data_off = 200;
    cr_assert_eq(weir__tensor_decode(slot, n + 8, "in", &t, NULL), -EBADMSG);
    cr_assert_str_eq(weir_errmsg(), "tensor edge 'in': data at offset 200 is not 64-byte aligned");

    n = good(slot);
    r->data_off = 100; /* inside the record */
    cr_assert_eq(weir__tensor_decode(slot, n, "in", &t, NULL), -EBADMSG);
    cr_assert_str_eq(weir_errmsg(),
                     "tensor edge 'in': data (offset 100, 64 bytes) outside the 256-byte message");

    n = good(slot);
    r->buf_index = 4;
    cr_assert_eq(weir__tensor_decode(slot, n, "in", &t, NULL), -EBADMSG);
    cr_assert_str_eq(weir_errmsg(), "tensor edge 'in': in-slot tensor naming device buffer 4");

    n = good(slot);
    r->device_id = -2;
    cr_assert_eq(weir__tensor_decode(slot, n, "in", &t, NULL), -EBADMSG);
    cr_assert_str_eq(weir_errmsg(), "tensor edge 'in': device id -2 is negative");

    n = good(slot);
    cr_assert_eq(weir__tensor_decode(slot, n, "in", &t, NULL), 0, "%s", weir_errmsg());
    free(slot);
}

Test(tensor, edge_checks_device_and_max_bytes)
{
    int64_t shape[2] = {16, 16};
    DLTensor t = meta(2, shape, NULL, kDLFloat, 32);
    weir__tensor_edge e = {.name = "img", .device_type = kDLCPU, .max_bytes = 1024};
    size_t b = 0;
    cr_assert_eq(weir__tensor_check_edge(&t, &e, &b), 0, "%s", weir_errmsg());
    cr_assert_eq(b, 1024);
    shape[1] = 17;
    cr_assert_eq(weir__tensor_check_edge(&t, &e, &b), -EMSGSIZE);
    cr_assert_str_eq(weir_errmsg(),
                     "tensor edge 'img': tensor of 1088 bytes exceeds the edge's max_bytes 1024");
    e.max_bytes = 0; /* any size */
    cr_assert_eq(weir__tensor_check_edge(&t, &e, &b), 0, "%s", weir_errmsg());
    cr_assert_eq(b, 1088);
    t.device.device_type = kDLCUDA;
    cr_assert_eq(weir__tensor_check_edge(&t, &e, &b), -EINVAL);
    cr_assert_str_eq(weir_errmsg(),
                     "tensor edge 'img': tensor on device type 2, the edge allows device type 1 only");
    t.ndim = 9;
    cr_assert_eq(weir__tensor_check_edge(&t, &e, &b), -EINVAL);
    cr_assert_str_eq(weir_errmsg(), "tensor edge 'img': ndim 9 out of range (0..8)");
}

/* ---- devices (channels/device.h): the simulated device and CUDA's absence ---- */

#include <dlfcn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "channels/device.h"
#include "engine/engine.h"

static uint64_t fnv(const void *p, size_t n)
{
    const unsigned char *b = p;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 1099511628211ull;
    return h;
}

static void fill(unsigned char *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)(i * 31u + seed);
}

static int open_fds(void)
{
    int n = 0;
    for (int fd = 0; fd < 1024; fd++)
        if (fcntl(fd, F_GETFD) >= 0)
            n++;
    return n;
}

Test(tensor, sim_device_copies_and_counts)
{
    int fds0 = open_fds();
    weir__device *dv;
    cr_assert_eq(weir__device_open(WEIR_TENSOR_DEVICE_SIM, 1, "e", &dv), 0, "%s", weir_errmsg());
    cr_assert_eq(dv->dl.device_type, WEIR_TENSOR_DEVICE_SIM);
    cr_assert_eq(dv->dl.device_id, 1);
    const size_t n = 1 << 20;
    void *ma, *mb, *a, *b;
    cr_assert_eq(dv->ops->mem_alloc(dv->impl, n, &ma, &a), 0, "%s", weir_errmsg());
    cr_assert_eq(dv->ops->mem_alloc(dv->impl, n, &mb, &b), 0, "%s", weir_errmsg());
    unsigned char *h = malloc(n), *back = malloc(n);
    fill(h, n, 7);
    cr_assert_eq(dv->ops->copy(dv->impl, a, h, n, WEIR__COPY_H2D), 0, "%s", weir_errmsg());
    cr_assert_eq(dv->ops->copy(dv->impl, b, a, n, WEIR__COPY_D2D), 0, "%s", weir_errmsg());
    memset(back, 0, n);
    cr_assert_eq(dv->ops->copy(dv->impl, back, b, n, WEIR__COPY_D2H), 0, "%s", weir_errmsg());
    cr_assert_eq(fnv(back, n), fnv(h, n));
    /* Offsets inside a block are device addresses too. */
    cr_assert_eq(dv->ops->copy(dv->impl, back, (char *)b + 100, 28, WEIR__COPY_D2H), 0);
    cr_assert_eq(memcmp(back, h + 100, 28), 0);

    /* Device memory is not host memory: copies check both sides. */
    char want[256];
    cr_assert_eq(dv->ops->copy(dv->impl, h, back, 16, WEIR__COPY_H2D), -EFAULT);
    snprintf(want, sizeof want, "sim: address %p is not a device address", (void *)h);
    cr_assert_str_eq(weir_errmsg(), want);
    cr_assert_eq(dv->ops->copy(dv->impl, b, a, n + 1, WEIR__COPY_D2D), -EFAULT);
    snprintf(want, sizeof want, "sim: %zu bytes at device address %p overrun its block of %zu bytes",
             n + 1, b, n);
    cr_assert_str_eq(weir_errmsg(), want);
    cr_assert_eq(dv->ops->copy(dv->impl, a, b, 8, WEIR__COPY_H2D), -EFAULT);
    snprintf(want, sizeof want, "sim: host-to-device copy from device address %p", b);
    cr_assert_str_eq(weir_errmsg(), want);

    weir__dev_counters c;
    dv->ops->counters(dv->impl, &c);
    cr_assert_eq(c.copies[WEIR__COPY_H2D], 1);
    cr_assert_eq(c.copies[WEIR__COPY_D2D], 1);
    cr_assert_eq(c.copies[WEIR__COPY_D2H], 2);
    cr_assert_eq(c.copy_bytes, 3 * n + 28);
    dv->ops->mem_free(dv->impl, ma);
    dv->ops->mem_free(dv->impl, mb);
    dv->ops->counters(dv->impl, &c);
    cr_assert_eq(c.allocs, 2);
    cr_assert_eq(c.frees, 2);
    /* A freed block's address is no longer mapped. */
    cr_assert_eq(dv->ops->copy(dv->impl, back, a, 8, WEIR__COPY_D2H), -EFAULT);
    snprintf(want, sizeof want, "sim: device address %p is not mapped in this process", a);
    cr_assert_str_eq(weir_errmsg(), want);
    weir__device_close(dv);
    free(h);
    free(back);
    cr_assert_eq(open_fds(), fds0, "every memfd closed");
}

Test(tensor, device_open_errors)
{
    weir__device *dv = NULL;
    cr_assert_eq(weir__device_open(WEIR_TENSOR_DEVICE_SIM, 4, "x.f.out0", &dv), -ENODEV);
    cr_assert_str_eq(weir_errmsg(), "tensor edge 'x.f.out0': sim: device 4 absent (the simulated "
                                    "device has devices 0..3)");
    cr_assert_eq(weir__device_open(kDLCPU, 0, "c", &dv), -EINVAL);
    cr_assert_str_eq(weir_errmsg(), "tensor edge 'c': device type 1 is not a device weir drives "
                                    "(kDLCUDA, or the test device 12)");
    cr_assert_null(dv);
}

/* CUDA on a machine without libcuda.so.1: a clear -ENODEV, never a crash. */
Test(tensor, cuda_missing_is_enodev)
{
    weir__device *dv = NULL;
    int rc = weir__device_open(kDLCUDA, 0, "gpu.f.out0", &dv);
    if (!weir__device_cuda_ops()) {
        cr_assert_eq(rc, -ENODEV);
        cr_assert_str_eq(weir_errmsg(), "tensor edge 'gpu.f.out0': device cuda:0: the build has "
                                        "no CUDA (configure with the CUDA toolkit's headers)");
        return;
    }
    void *lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_NOLOAD);
    void *probe = lib ? lib : dlopen("libcuda.so.1", RTLD_NOW);
    if (probe) {
        dlclose(probe);
        if (rc == 0)
            weir__device_close(dv);
        cr_skip_test("libcuda.so.1 is present: the real-GPU tests are in suite gpu");
    }
    cr_assert_eq(rc, -ENODEV);
    cr_assert_str_eq(weir_errmsg(),
                     "tensor edge 'gpu.f.out0': cuda: libcuda.so.1 not found: libcuda.so.1: "
                     "cannot open shared object file: No such file or directory");
    cr_assert_null(dv);
    /* Remembered: the second open says the same without retrying. */
    cr_assert_eq(weir__device_open(kDLCUDA, 1, "g2", &dv), -ENODEV);
    cr_assert_str_eq(weir_errmsg(),
                     "tensor edge 'g2': cuda: libcuda.so.1 not found: libcuda.so.1: cannot open "
                     "shared object file: No such file or directory");
}

/*
 * The IPC protocol across processes: the parent allocates a block and an
 * event, fills the block, records the event and sends both handles over a
 * unix socket (SCM_RIGHTS); the child opens its own device, imports both
 * (its own mapping), waits on the event, checks every byte, writes its own
 * pattern back and records; the parent waits and checks every byte.
 */
Test(tensor, sim_ipc_across_processes)
{
    int fds0 = open_fds();
    int sv[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
    const size_t n = 256 * 1024 + 3;
    unsigned char *h = malloc(n);
    fill(h, n, 1);
    const uint64_t sum1 = fnv(h, n);
    fill(h, n, 2);
    const uint64_t sum2 = fnv(h, n);
    fill(h, n, 1);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        close(sv[0]);
        weir__dev_ipc rm, re;
        weir__device *cd;
        void *cmem, *cptr, *cev;
        if (weir__dev_ipc_recv(sv[1], &rm, 5000) < 0 || weir__dev_ipc_recv(sv[1], &re, 5000) < 0)
            _exit(10);
        if (rm.fd < 0 || rm.bytes != n || re.fd < 0)
            _exit(11);
        if (weir__device_open(WEIR_TENSOR_DEVICE_SIM, 0, "ipc", &cd) < 0)
            _exit(12);
        if (cd->ops->mem_import(cd->impl, &rm, &cmem, &cptr) < 0 ||
            cd->ops->ev_import(cd->impl, &re, &cev) < 0)
            _exit(13);
        weir__dev_ipc_close(&rm);
        weir__dev_ipc_close(&re);
        unsigned char *b = malloc(n);
        if (cd->ops->ev_wait(cd->impl, cev) < 0 ||
            cd->ops->copy(cd->impl, b, cptr, n, WEIR__COPY_D2H) < 0)
            _exit(14);
        if (fnv(b, n) != sum1)
            _exit(15);
        fill(b, n, 2);
        if (cd->ops->copy(cd->impl, cptr, b, n, WEIR__COPY_H2D) < 0 ||
            cd->ops->ev_record(cd->impl, cev) < 0)
            _exit(16);
        weir__dev_counters c;
        cd->ops->counters(cd->impl, &c);
        if (c.imports != 2 || c.copies[WEIR__COPY_D2H] != 1 || c.copies[WEIR__COPY_H2D] != 1 ||
            c.ev_waits != 1 || c.ev_records != 1)
            _exit(17);
        cd->ops->mem_free(cd->impl, cmem);
        cd->ops->ev_destroy(cd->impl, cev);
        weir__device_close(cd);
        char done = 'd';
        if (write(sv[1], &done, 1) != 1)
            _exit(18);
        _exit(0);
    }
    /* The parent opens its device after the fork: a process forked from one
     * that had initialised the device cannot use it (as with CUDA). */
    weir__device *dv;
    cr_assert_eq(weir__device_open(WEIR_TENSOR_DEVICE_SIM, 0, "ipc", &dv), 0, "%s", weir_errmsg());
    void *mem, *ptr, *ev;
    cr_assert_eq(dv->ops->mem_alloc(dv->impl, n, &mem, &ptr), 0, "%s", weir_errmsg());
    cr_assert_eq(dv->ops->ev_create(dv->impl, &ev), 0, "%s", weir_errmsg());
    cr_assert_eq(dv->ops->copy(dv->impl, ptr, h, n, WEIR__COPY_H2D), 0);
    cr_assert_eq(dv->ops->ev_record(dv->impl, ev), 0);
    weir__dev_ipc hm, he;
    cr_assert_eq(dv->ops->mem_export(dv->impl, mem, &hm), 0, "%s", weir_errmsg());
    cr_assert_eq(dv->ops->ev_export(dv->impl, ev, &he), 0, "%s", weir_errmsg());
    close(sv[1]);
    cr_assert_eq(weir__dev_ipc_send(sv[0], &hm), 0, "%s", weir_errmsg());
    cr_assert_eq(weir__dev_ipc_send(sv[0], &he), 0, "%s", weir_errmsg());
    weir__dev_ipc_close(&hm);
    weir__dev_ipc_close(&he);
    int st = 0;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %d", st);
    cr_assert_eq(dv->ops->ev_wait(dv->impl, ev), 0);
    memset(h, 0, n);
    cr_assert_eq(dv->ops->copy(dv->impl, h, ptr, n, WEIR__COPY_D2H), 0);
    cr_assert_eq(fnv(h, n), sum2, "the child's writes are in the parent's block");
    dv->ops->mem_free(dv->impl, mem);
    dv->ops->ev_destroy(dv->impl, ev);
    weir__dev_counters c;
    dv->ops->counters(dv->impl, &c);
    cr_assert_eq(c.exports, 2);
    cr_assert_eq(c.allocs, c.frees);
    cr_assert_eq(c.ev_creates, c.ev_destroys);
    weir__device_close(dv);
    close(sv[0]);
    free(h);
    cr_assert_eq(open_fds(), fds0, "no fd left behind");
}

Test(tensor, sim_handles_checked)
{
    weir__device *d0, *d1;
    cr_assert_eq(weir__device_open(WEIR_TENSOR_DEVICE_SIM, 0, "h", &d0), 0);
    cr_assert_eq(weir__device_open(WEIR_TENSOR_DEVICE_SIM, 1, "h", &d1), 0);
    void *mem, *ptr, *m2, *p2, *ev, *e2;
    cr_assert_eq(d0->ops->mem_alloc(d0->impl, 4096, &mem, &ptr), 0);
    weir__dev_ipc h;
    cr_assert_eq(d0->ops->mem_export(d0->impl, mem, &h), 0);
    cr_assert_eq(d1->ops->mem_import(d1->impl, &h, &m2, &p2), -EXDEV);
    cr_assert_str_eq(weir_errmsg(), "sim: memory handle of device 0 imported on device 1");
    cr_assert_eq(d0->ops->ev_import(d0->impl, &h, &e2), -EBADMSG);
    cr_assert_str_eq(weir_errmsg(), "sim: not a simulated-device event handle");
    h.blob[0] ^= 1;
    cr_assert_eq(d0->ops->mem_import(d0->impl, &h, &m2, &p2), -EBADMSG);
    cr_assert_str_eq(weir_errmsg(), "sim: not a simulated-device memory handle");
    h.blob[0] ^= 1;
    h.bytes = 8192; /* the size outside the blob must agree with it (found by fuzz_devipc) */
    cr_assert_eq(d0->ops->mem_import(d0->impl, &h, &m2, &p2), -EBADMSG);
    cr_assert_str_eq(weir_errmsg(), "sim: memory handle of 8192 bytes whose blob says 4096");
    h.bytes = 4096;
    h.len = 3;
    cr_assert_eq(d0->ops->mem_import(d0->impl, &h, &m2, &p2), -EBADMSG);
    char want[128];
    snprintf(want, sizeof want, "sim: not a simulated-device memory handle (3 bytes, fd %d)", h.fd);
    cr_assert_str_eq(weir_errmsg(), want);
    weir__dev_ipc_close(&h);
    cr_assert_eq(h.fd, -1);
    cr_assert_eq(d0->ops->ev_create(d0->impl, &ev), 0);
    cr_assert_eq(d0->ops->ev_export(d0->impl, ev, &h), 0);
    cr_assert_eq(d0->ops->mem_import(d0->impl, &h, &m2, &p2), -EBADMSG);
    cr_assert_str_eq(weir_errmsg(), "sim: not a simulated-device memory handle");
    weir__dev_ipc_close(&h);

    /* The socket side: a message that is not a handle is refused, its fds closed. */
    int sv[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
    cr_assert_eq(write(sv[0], "junk", 4), 4);
    cr_assert_eq(weir__dev_ipc_recv(sv[1], &h, 1000), -EBADMSG);
    cr_assert_str_eq(weir_errmsg(), "device handle: malformed message (4 bytes, 0 fds)");
    cr_assert_eq(weir__dev_ipc_recv(sv[1], &h, 0), -ETIMEDOUT);
    cr_assert_str_eq(weir_errmsg(), "device handle: none received within 0 ms");
    close(sv[0]);
    cr_assert_eq(weir__dev_ipc_recv(sv[1], &h, 1000), -EPIPE);
    cr_assert_str_eq(weir_errmsg(), "device handle: the peer closed the socket");
    close(sv[1]);
    d0->ops->ev_destroy(d0->impl, ev);
    d0->ops->mem_free(d0->impl, mem);
    weir__device_close(d0);
    weir__device_close(d1);
}

/* ---- tensor edges in graphs (engine/tensor.c) ----------------------------- */

#include <signal.h>

#include "sanitized.h"

#define ROWS 4
#define COLS 6
static const DLDataType F32 = {kDLFloat, 32, 1};

/* The input of execution e: x[i][j] = e * 0.5 + i * COLS + j (exact in float). */
static float x_of(uint64_t e, int i, int j)
{
    return (float)(e % 4096) * 0.5f + (float)(i * COLS + j);
}

static DLTensor tensor2(float *data, int64_t *shape, int64_t *strides)
{
    DLTensor t;
    memset(&t, 0, sizeof t);
    t.data = data;
    t.device.device_type = kDLCPU;
    t.ndim = 2;
    t.dtype = F32;
    t.shape = shape;
    t.strides = strides;
    return t;
}

static void *zc_slot[1024]; /* thread mode: where stage 'a' wrote execution e's output */

/* a.scale: y = 2x + 1, written transposed (strides {1, ROWS}) 64 bytes into its
 * buffer, so strides and byte_offset cross the edge as given. */
static int m_scale(weir_call *c, void *st)
{
    (void)st;
    DLTensor x;
    if (weir_call_in_tensor(c, 0, &x) < 0)
        return weir_call_fail(c, "%s", weir_errmsg());
    if (x.ndim != 2 || x.shape[0] != ROWS || x.shape[1] != COLS || x.strides ||
        (uintptr_t)x.data % 64)
        return weir_call_fail(c, "bad input view");
    int64_t shape[2] = {ROWS, COLS}, strides[2] = {1, ROWS};
    DLTensor m = tensor2(NULL, shape, strides);
    m.byte_offset = 64;
    char *base = weir_call_out_tensor(c, 0, &m);
    if (!base)
        return weir_call_fail(c, "%s", weir_errmsg());
    zc_slot[weir_call_exec(c) % 1024] = base;
    float *y = (float *)(base + 64);
    const float *xv = x.data;
    for (int i = 0; i < ROWS; i++)
        for (int j = 0; j < COLS; j++)
            y[i * strides[0] + j * strides[1]] = 2 * xv[i * COLS + j] + 1;
    return 0;
}

/* Reads a strided tensor, writes it contiguous plus `add`. */
static int copy_add(weir_call *c, unsigned in, float add, int check_zc)
{
    DLTensor t;
    if (weir_call_in_tensor(c, in, &t) < 0)
        return weir_call_fail(c, "%s", weir_errmsg());
    if (!t.strides || t.strides[0] != 1 || t.strides[1] != ROWS || t.byte_offset != 64 ||
        t.shape[0] != ROWS || t.shape[1] != COLS || t.dtype.code != kDLFloat ||
        t.dtype.bits != 32 || (uintptr_t)t.data % 64)
        return weir_call_fail(c, "strides/byte_offset/shape not preserved");
    void *wrote = zc_slot[weir_call_exec(c) % 1024];
    if (check_zc && t.data != wrote)
        return weir_call_fail(c, "not zero-copy: %p, producer wrote %p", t.data, wrote);
    int64_t shape[2] = {ROWS, COLS};
    DLTensor m = tensor2(NULL, shape, NULL);
    float *z = weir_call_out_tensor(c, 0, &m);
    if (!z)
        return weir_call_fail(c, "%s", weir_errmsg());
    const float *y = (const float *)((const char *)t.data + t.byte_offset);
    for (int i = 0; i < ROWS; i++)
        for (int j = 0; j < COLS; j++)
            z[i * COLS + j] = y[i * t.strides[0] + j * t.strides[1]] + add;
    return 0;
}

static int m_plus3(weir_call *c, void *st)
{
    return copy_add(c, 0, 3, st != NULL);
}

static int m_plus5(weir_call *c, void *st)
{
    (void)st;
    return copy_add(c, 0, 5, 0);
}

/* d.join: out = in0 + in1 (both contiguous). */
static int m_join(weir_call *c, void *st)
{
    (void)st;
    DLTensor a, b;
    if (weir_call_in_tensor(c, 0, &a) < 0 || weir_call_in_tensor(c, 1, &b) < 0)
        return weir_call_fail(c, "%s", weir_errmsg());
    int64_t shape[2] = {ROWS, COLS};
    DLTensor m = tensor2(NULL, shape, NULL);
    float *z = weir_call_out_tensor(c, 0, &m);
    if (!z)
        return weir_call_fail(c, "%s", weir_errmsg());
    for (int k = 0; k < ROWS * COLS; k++)
        z[k] = ((const float *)a.data)[k] + ((const float *)b.data)[k];
    return 0;
}

static weir_tensor_spec f32_2d(void)
{
    weir_tensor_spec s;
    memset(&s, 0, sizeof s);
    s.device = kDLCPU;
    s.dtype = F32;
    s.ndim = 2;
    s.shape[0] = ROWS;
    s.shape[1] = COLS;
    return s;
}

/* Run n executions pipelined; check every element of every result with want(e, i, j). */
static void run_check(weir_dag *d, uint64_t n, float (*want)(uint64_t, int, int))
{
    uint64_t next = 0, done = 0;
    float x[ROWS * COLS];
    int64_t shape[2] = {ROWS, COLS};
    double sum = 0, wsum = 0;
    while (done < n) {
        while (next < n && next - done < 4) {
            for (int i = 0; i < ROWS; i++)
                for (int j = 0; j < COLS; j++)
                    x[i * COLS + j] = x_of(next, i, j);
            DLTensor t = tensor2(x, shape, NULL);
            weir_buf arg = weir_tensor_arg(&t);
            uint64_t id;
            cr_assert_eq(weir_submit(d, &arg, 1, &id, 10000), 0, "%s", weir_errmsg());
            cr_assert_eq(id, next);
            next++;
        }
        weir_result *r;
        cr_assert_eq(weir_wait(d, done, &r, 10000), 0, "execution %llu: %s",
                     (unsigned long long)done, weir_errmsg());
        DLTensor t;
        cr_assert_eq(weir_result_tensor(r, 0, &t), 0, "%s", weir_errmsg());
        cr_assert_eq(t.ndim, 2);
        cr_assert_eq(t.shape[0], ROWS);
        cr_assert_eq(t.shape[1], COLS);
        cr_assert_null(t.strides);
        cr_assert_eq(t.byte_offset, 0);
        cr_assert_eq(t.dtype.code, kDLFloat);
        cr_assert_eq(t.dtype.bits, 32);
        const float *z = t.data;
        for (int i = 0; i < ROWS; i++)
            for (int j = 0; j < COLS; j++) {
                float w = want(done, i, j);
                cr_assert_eq(z[i * COLS + j], w, "execution %llu [%d][%d]: %g != %g",
                             (unsigned long long)done, i, j, z[i * COLS + j], w);
                sum += z[i * COLS + j];
                wsum += w;
            }
        weir_result_free(r);
        done++;
    }
    cr_assert_eq(sum, wsum);
}

static float want_chain(uint64_t e, int i, int j)
{
    return 2 * x_of(e, i, j) + 1 + 3;
}

static void chain(int iso, uint64_t n, int zc)
{
    weir_graph *g = weir_graph_new("tchain");
    weir_actor_opts o = {.isolation = iso, .state = zc ? (void *)1 : NULL};
    weir_actor *a = weir_actor_new(g, "a", &o), *b = weir_actor_new(g, "b", &o);
    weir_node *in = weir_input(g, 0);
    weir_tensor_spec s = f32_2d();
    cr_assert_eq(weir_node_tensor_spec(in, &s), 0, "%s", weir_errmsg());
    weir_node *y = weir_bind(a, "scale", m_scale, &in, 1, 1);
    cr_assert_eq(weir_node_tensor(y, kDLCPU, 4096), 0, "%s", weir_errmsg());
    weir_node *z = weir_bind(b, "plus3", m_plus3, &y, 1, 1);
    cr_assert_eq(weir_node_tensor_spec(z, &s), 0);
    cr_assert_eq(weir_output(g, &z, 1), 0);
    weir_dag *d = weir_compile(g, NULL);
    cr_assert_not_null(d, "%s", weir_errmsg());
    run_check(d, n, want_chain);
    cr_assert_eq(weir_dag_free(d), 0, "%s", weir_errmsg());
    weir_graph_free(g);
}

Test(tensor, cpu_chain_threads_zero_copy)
{
    int fds0 = open_fds();
    chain(WEIR_THREAD, SANITIZED ? 5000 : 100000, 1);
    cr_assert_eq(open_fds(), fds0);
}

Test(tensor, cpu_chain_processes)
{
    int fds0 = open_fds();
    chain(WEIR_PROCESS, SANITIZED ? 5000 : 100000, 0);
    cr_assert_eq(open_fds(), fds0);
}

static float want_diamond(uint64_t e, int i, int j)
{
    float y = 2 * x_of(e, i, j) + 1;
    return (y + 3) + (y + 5);
}

/* in -> a -> {b, c} -> d: a's tensor is read by two actors (multicast). */
static void diamond(int iso_mid, uint64_t n)
{
    weir_graph *g = weir_graph_new("tdiamond");
    weir_actor_opts t = {0}, pm = {.isolation = iso_mid};
    weir_actor *a = weir_actor_new(g, "a", &t), *b = weir_actor_new(g, "b", &pm),
               *c = weir_actor_new(g, "c", &pm), *d = weir_actor_new(g, "d", &t);
    weir_node *in = weir_input(g, 0);
    weir_tensor_spec s = f32_2d();
    cr_assert_eq(weir_node_tensor_spec(in, &s), 0);
    weir_node *y = weir_bind(a, "scale", m_scale, &in, 1, 1);
    cr_assert_eq(weir_node_tensor(y, kDLCPU, 0), 0);
    weir_node *zb = weir_bind(b, "plus3", m_plus3, &y, 1, 1);
    weir_node *zc = weir_bind(c, "plus5", m_plus5, &y, 1, 1);
    cr_assert_eq(weir_node_tensor_spec(zb, &s), 0);
    cr_assert_eq(weir_node_tensor_spec(zc, &s), 0);
    weir_node *j2[2] = {zb, zc};
    weir_node *out = weir_bind(d, "join", m_join, j2, 2, 1);
    cr_assert_eq(weir_node_tensor_spec(out, &s), 0);
    cr_assert_eq(weir_output(g, &out, 1), 0);
    weir_dag *dg = weir_compile(g, NULL);
    cr_assert_not_null(dg, "%s", weir_errmsg());
    run_check(dg, n, want_diamond);
    cr_assert_eq(weir_dag_free(dg), 0, "%s", weir_errmsg());
    weir_graph_free(g);
}

Test(tensor, cpu_diamond_threads)
{
    diamond(WEIR_THREAD, SANITIZED ? 3000 : 100000);
}

Test(tensor, cpu_diamond_processes)
{
    int fds0 = open_fds();
    diamond(WEIR_PROCESS, SANITIZED ? 3000 : 100000);
    cr_assert_eq(open_fds(), fds0);
}

/* Result tensors, copies and views: data 64-byte aligned, the producer's
 * record exactly (a.scale writes transposed strides at byte_offset 64),
 * every element. A small contiguous second output rides along, so outputs
 * after the first are placed aligned too. */
static int m_scale2(weir_call *c, void *st)
{
    int rc = m_scale(c, st);
    if (rc)
        return rc;
    int64_t shape[1] = {3};
    DLTensor m;
    memset(&m, 0, sizeof m);
    m.device.device_type = kDLCPU;
    m.ndim = 1;
    m.shape = shape;
    m.dtype = (DLDataType){kDLInt, 8, 1};
    int8_t *p = weir_call_out_tensor(c, 1, &m);
    if (!p)
        return weir_call_fail(c, "%s", weir_errmsg());
    for (int k = 0; k < 3; k++)
        p[k] = (int8_t)(weir_call_exec(c) + (uint64_t)k);
    return 0;
}

static void result_tensors(size_t view_bytes, uint64_t n)
{
    weir_graph *g = weir_graph_new("tres");
    weir_actor *a = weir_actor_new(g, "a", NULL);
    weir_node *in = weir_input(g, 0);
    weir_tensor_spec s = f32_2d();
    cr_assert_eq(weir_node_tensor_spec(in, &s), 0);
    weir_node *y = weir_bind(a, "scale", m_scale2, &in, 1, 2);
    weir_node *y0 = weir_ret(y, 0), *y1 = weir_ret(y, 1);
    cr_assert_eq(weir_node_tensor(y0, kDLCPU, 0), 0);
    cr_assert_eq(weir_node_tensor(y1, kDLCPU, 0), 0);
    /* The small output first: the tensor's copy follows it in the block. */
    cr_assert_eq(weir_output(g, (weir_node *[]){y1, y0}, 2), 0);
    weir_compile_opts co = {.result_view_bytes = view_bytes};
    weir_dag *d = weir_compile(g, &co);
    cr_assert_not_null(d, "%s", weir_errmsg());
    float x[ROWS * COLS];
    int64_t shape[2] = {ROWS, COLS};
    for (uint64_t e = 0; e < n; e++) {
        for (int i = 0; i < ROWS; i++)
            for (int j = 0; j < COLS; j++)
                x[i * COLS + j] = x_of(e, i, j);
        DLTensor t = tensor2(x, shape, NULL);
        weir_buf arg = weir_tensor_arg(&t);
        weir_result *r;
        cr_assert_eq(weir_execute(d, &arg, 1, &r, 10000), 0, "%s", weir_errmsg());
        DLTensor v, w;
        cr_assert_eq(weir_result_tensor(r, 0, &w), 0, "%s", weir_errmsg());
        cr_assert_eq(weir_result_tensor(r, 1, &v), 0, "%s", weir_errmsg());
        cr_assert_eq((uintptr_t)w.data % 64, 0, "execution %llu: small output at %p",
                     (unsigned long long)e, w.data);
        cr_assert_eq((uintptr_t)v.data % 64, 0, "execution %llu: tensor at %p",
                     (unsigned long long)e, v.data);
        cr_assert_eq(w.ndim, 1);
        cr_assert_eq(w.shape[0], 3);
        cr_assert_null(w.strides);
        cr_assert_eq(w.dtype.code, kDLInt);
        cr_assert_eq(w.dtype.bits, 8);
        for (int k = 0; k < 3; k++)
            cr_assert_eq(((const int8_t *)w.data)[k], (int8_t)(e + (uint64_t)k));
        cr_assert_eq(v.ndim, 2);
        cr_assert_eq(v.shape[0], ROWS);
        cr_assert_eq(v.shape[1], COLS);
        cr_assert_not_null(v.strides);
        cr_assert_eq(v.strides[0], 1);
        cr_assert_eq(v.strides[1], ROWS);
        cr_assert_eq(v.byte_offset, 64);
        cr_assert_eq(v.dtype.code, kDLFloat);
        cr_assert_eq(v.dtype.bits, 32);
        cr_assert_eq(v.dtype.lanes, 1);
        cr_assert_eq(v.device.device_type, kDLCPU);
        const float *z = (const float *)((const char *)v.data + 64);
        for (int i = 0; i < ROWS; i++)
            for (int j = 0; j < COLS; j++)
                cr_assert_eq(z[i * v.strides[0] + j * v.strides[1]], 2 * x_of(e, i, j) + 1);
        weir_result_free(r);
    }
    cr_assert_eq(weir_dag_free(d), 0, "%s", weir_errmsg());
    weir_graph_free(g);
}

Test(tensor, result_tensors_aligned_and_exact)
{
    result_tensors(SIZE_MAX, 300); /* always copies */
    result_tensors(1, 300);        /* always views (zero-copy) */
}

/* ---- sim-device tensor edges ------------------------------------------------ */

#define SIM WEIR_TENSOR_DEVICE_SIM
#define TBYTES (ROWS * COLS * sizeof(float))

struct devst {
    weir__device *dev;
    uint64_t calls;
    int64_t kill_at; /* -1: never */
    float add;
};

static int devst_init(void *p)
{
    struct devst *s = p;
    s->calls = 0;
    return weir__device_open(SIM, 0, "test", &s->dev) < 0 ? -1 : 0;
}

static void devst_fini(void *p)
{
    struct devst *s = p;
    weir__device_close(s->dev);
    s->dev = NULL;
}

/* Output 0 of a method: a ROWS x COLS sim-device tensor copied from src (kind:
 * WEIR__COPY_H2D from the host, WEIR__COPY_D2D from the device). 0 or the failure. */
static int sim_out(weir_call *c, struct devst *s, const void *src,
                   enum weir__dev_copy_kind kind)
{
    int64_t shape[2] = {ROWS, COLS};
    DLTensor m = tensor2(NULL, shape, NULL);
    m.device.device_type = SIM;
    void *dptr = weir_call_out_tensor(c, 0, &m);
    if (!dptr || s->dev->ops->copy(s->dev->impl, dptr, src, TBYTES, kind) < 0)
        return weir_call_fail(c, "%s", weir_errmsg());
    return 0;
}

/* up: CPU x -> sim-device y = 2x + 1, with exactly one host-to-device copy. */
static int m_up(weir_call *c, void *p)
{
    struct devst *s = p;
    DLTensor x;
    if (weir_call_in_tensor(c, 0, &x) < 0)
        return weir_call_fail(c, "%s", weir_errmsg());
    float y[ROWS * COLS];
    for (int k = 0; k < ROWS * COLS; k++)
        y[k] = 2 * ((const float *)x.data)[k] + 1;
    int rc = sim_out(c, s, y, WEIR__COPY_H2D);
    if (rc)
        return rc;
    weir__dev_counters k;
    s->dev->ops->counters(s->dev->impl, &k);
    if (k.copies[WEIR__COPY_H2D] != ++s->calls || k.copies[WEIR__COPY_D2H] || k.copies[WEIR__COPY_D2D])
        return weir_call_fail(c, "copies: %llu h2d for %llu messages",
                              (unsigned long long)k.copies[WEIR__COPY_H2D],
                              (unsigned long long)s->calls);
    return 0;
}

/* down: sim-device y -> CPU z = y + add, with exactly one device-to-host copy. */
static int m_down(weir_call *c, void *p)
{
    struct devst *s = p;
    DLTensor t;
    if (weir_call_in_tensor(c, 0, &t) < 0)
        return weir_call_fail(c, "%s", weir_errmsg());
    if (t.device.device_type != SIM || t.ndim != 2 || t.shape[0] != ROWS || t.shape[1] != COLS ||
        t.strides || (uintptr_t)t.data % 64)
        return weir_call_fail(c, "bad device view");
    if ((int64_t)weir_call_exec(c) == s->kill_at)
        raise(SIGKILL); /* dies holding the device buffer */
    float y[ROWS * COLS];
    if (s->dev->ops->copy(s->dev->impl, y, t.data, TBYTES, WEIR__COPY_D2H) < 0)
        return weir_call_fail(c, "%s", weir_errmsg());
    int64_t shape[2] = {ROWS, COLS};
    DLTensor m = tensor2(NULL, shape, NULL);
    float *z = weir_call_out_tensor(c, 0, &m);
    if (!z)
        return weir_call_fail(c, "%s", weir_errmsg());
    for (int k = 0; k < ROWS * COLS; k++)
        z[k] = y[k] + s->add;
    weir__dev_counters k;
    s->dev->ops->counters(s->dev->impl, &k);
    if (k.copies[WEIR__COPY_D2H] != ++s->calls || k.copies[WEIR__COPY_H2D])
        return weir_call_fail(c, "copies: %llu d2h for %llu messages",
                              (unsigned long long)k.copies[WEIR__COPY_D2H],
                              (unsigned long long)s->calls);
    return 0;
}

static struct devst st_up, st_b, st_c;

static void sim_build(weir_graph *g, int iso, int diamond, int64_t kill_at)
{
    st_up = (struct devst){.kill_at = -1};
    st_b = (struct devst){.kill_at = kill_at, .add = 3};
    st_c = (struct devst){.kill_at = -1, .add = 5};
    weir_actor_opts ou = {.isolation = iso, .state = &st_up, .init = devst_init,
                          .fini = devst_fini};
    weir_actor_opts ob = ou, oc = ou;
    ob.state = &st_b;
    ob.max_restarts = kill_at >= 0 ? 1 : 0;
    oc.state = &st_c;
    weir_actor *up = weir_actor_new(g, "up", &ou), *b = weir_actor_new(g, "b", &ob);
    weir_node *in = weir_input(g, 0);
    weir_tensor_spec s = f32_2d();
    cr_assert_eq(weir_node_tensor_spec(in, &s), 0);
    weir_node *y = weir_bind(up, "up", m_up, &in, 1, 1);
    weir_tensor_spec ds = s;
    ds.device = SIM;
    ds.max_bytes = TBYTES;
    cr_assert_eq(weir_node_tensor_spec(y, &ds), 0, "%s", weir_errmsg());
    weir_node *zb = weir_bind(b, "down", m_down, &y, 1, 1);
    cr_assert_eq(weir_node_tensor_spec(zb, &s), 0);
    weir_node *out = zb;
    if (diamond) {
        weir_actor *c = weir_actor_new(g, "c", &oc);
        weir_actor *j = weir_actor_new(g, "j", &(weir_actor_opts){0});
        weir_node *zc = weir_bind(c, "down", m_down, &y, 1, 1);
        cr_assert_eq(weir_node_tensor_spec(zc, &s), 0);
        weir_node *j2[2] = {zb, zc};
        out = weir_bind(j, "join", m_join, j2, 2, 1);
        cr_assert_eq(weir_node_tensor_spec(out, &s), 0);
    }
    cr_assert_eq(weir_output(g, &out, 1), 0);
}

static weir_dag *sim_graph(weir_graph *g, int iso, int diamond, int64_t kill_at)
{
    sim_build(g, iso, diamond, kill_at);
    /* A thread per actor: the exact import counts below are per actor (fused actors
     * share their worker's imports). */
    weir_compile_opts co = {.threads = WEIR_THREADS_PER_ACTOR};
    weir_dag *d = weir_compile(g, &co);
    cr_assert_not_null(d, "%s", weir_errmsg());
    return d;
}

static void sim_run(int iso, int diamond, uint64_t n)
{
    int fds0 = open_fds();
    weir_graph *g = weir_graph_new("tsim");
    weir_dag *d = sim_graph(g, iso, diamond, -1);
    run_check(d, n, diamond ? want_diamond : want_chain);
    /* Process actors: the pool was made by the holder process, and this one
     * never opened the device (a process forked from it could not). */
    cr_assert_eq(weir__device_sim_ops.used_here(), iso == WEIR_THREAD);
    cr_assert_eq(weir_dag_free(d), 0, "%s", weir_errmsg());
    weir_graph_free(g);
    cr_assert_eq(open_fds(), fds0, "every pool buffer, event and handle closed");
    /* The protocol, from what every actor's devices did (engine/tensor.c):
     * each buffer and event imported once per actor, never per message; per
     * message one ready record and one wait per reader, one release record
     * per reader and the writer's wait on it; weir itself copies nothing. */
    const uint64_t D = WEIR_DEFAULT_MAX_INFLIGHT, nrd = diamond ? 2 : 1;
    weir__dev_counters c;
    weir__tensor_last_counters(&c);
    cr_assert_eq(c.copies[0] + c.copies[1] + c.copies[2], 0, "weir copied device data");
    cr_assert_eq(c.imports, D * (2 + nrd) + nrd * D * 3);
    cr_assert_eq(c.ev_records, n * (1 + nrd));
    cr_assert_eq(c.ev_waits, 2 * n * nrd);
    cr_assert_eq(c.frees, D * (1 + nrd), "every imported buffer unmapped");
    cr_assert_eq(c.ev_destroys, D * (1 + nrd) + nrd * 2 * D, "every imported event closed");
    cr_assert_eq(c.allocs, 0);
    /* The driver made the pool (CPU arguments: it copies nothing). */
    weir__dev_counters dk;
    weir__tensor_last_driver_counters(&dk);
    cr_assert_eq(dk.copies[0] + dk.copies[1] + dk.copies[2], 0, "the driver copied device data");
    cr_assert_eq(dk.allocs, D);
    cr_assert_eq(dk.frees, D);
    cr_assert_eq(dk.ev_creates, D * (1 + nrd));
    cr_assert_eq(dk.ev_destroys, dk.ev_creates);
}

Test(tensor, sim_chain_threads)
{
    sim_run(WEIR_THREAD, 0, SANITIZED ? 3000 : 50000);
    cr_assert_eq(st_b.calls, SANITIZED ? 3000 : 50000, "the reader made one copy per message");
}

Test(tensor, sim_chain_processes)
{
    sim_run(WEIR_PROCESS, 0, SANITIZED ? 3000 : 50000);
}

Test(tensor, sim_diamond_threads)
{
    sim_run(WEIR_THREAD, 1, SANITIZED ? 2000 : 30000);
}

Test(tensor, sim_diamond_processes)
{
    sim_run(WEIR_PROCESS, 1, SANITIZED ? 2000 : 30000);
}

/* A reader process killed while it holds a device buffer: that execution
 * fails, the replacement imports the pool again, the writer reuses the
 * buffer, every later execution is exact, nothing leaks. */
/* Device tensors as execution arguments and as graph outputs:
 *   arg0 (sim device, from the caller's device buffer) -> b.down: z0 = x0 + 3
 *   arg1 (cpu) -> up.up: y = 2 x1 + 1 on the device -> c.down: z2 = y + 5,
 *                                                   -> output 1 (a host copy)
 * Every element of every output, the records exact; weir's copies: the
 * driver's device-to-device into the pool (not an actor's), one
 * device-to-host staging copy per message of y (the driver reads it). */
static void dev_args_outputs(int iso, uint64_t n)
{
    int fds0 = open_fds();
    st_up = (struct devst){.kill_at = -1};
    st_b = (struct devst){.kill_at = -1, .add = 3};
    st_c = (struct devst){.kill_at = -1, .add = 5};
    weir_actor_opts ou = {.isolation = iso, .state = &st_up, .init = devst_init,
                          .fini = devst_fini};
    weir_actor_opts ob = ou, oc = ou;
    ob.state = &st_b;
    oc.state = &st_c;
    weir_graph *g = weir_graph_new("tdevio");
    weir_actor *up = weir_actor_new(g, "up", &ou), *b = weir_actor_new(g, "b", &ob),
               *c = weir_actor_new(g, "c", &oc);
    weir_node *in0 = weir_input(g, 0), *in1 = weir_input(g, 1);
    weir_tensor_spec s = f32_2d(), ds = s;
    ds.device = SIM;
    ds.max_bytes = TBYTES;
    cr_assert_eq(weir_node_tensor_spec(in0, &ds), 0, "%s", weir_errmsg());
    cr_assert_eq(weir_node_tensor_spec(in1, &s), 0);
    weir_node *z0 = weir_bind(b, "down", m_down, &in0, 1, 1);
    weir_node *y = weir_bind(up, "up", m_up, &in1, 1, 1);
    weir_node *z2 = weir_bind(c, "down", m_down, &y, 1, 1);
    cr_assert_eq(weir_node_tensor_spec(y, &ds), 0);
    cr_assert_eq(weir_node_tensor_spec(z0, &s), 0);
    cr_assert_eq(weir_node_tensor_spec(z2, &s), 0);
    cr_assert_eq(weir_output(g, (weir_node *[]){z0, y, z2}, 3), 0);
    weir_compile_opts co = {.threads = WEIR_THREADS_PER_ACTOR};
    weir_dag *d = weir_compile(g, &co);
    cr_assert_not_null(d, "%s", weir_errmsg());

    /* The caller's device buffers (two, reused: submit copies them). */
    weir__device *dev;
    cr_assert_eq(weir__device_open(SIM, 0, "caller", &dev), 0, "%s", weir_errmsg());
    void *mem[2], *dptr[2];
    for (int k = 0; k < 2; k++)
        cr_assert_eq(dev->ops->mem_alloc(dev->impl, TBYTES, &mem[k], &dptr[k]), 0, "%s",
                     weir_errmsg());
    int64_t shape[2] = {ROWS, COLS};
    float x0[ROWS * COLS], x1[ROWS * COLS];
    uint64_t next = 0, done = 0;
    while (done < n) {
        while (next < n && next - done < 2) {
            for (int i = 0; i < ROWS; i++)
                for (int j = 0; j < COLS; j++) {
                    x0[i * COLS + j] = x_of(next, i, j) + 1000;
                    x1[i * COLS + j] = x_of(next, i, j);
                }
            void *dp = dptr[next % 2];
            cr_assert_eq(dev->ops->copy(dev->impl, dp, x0, TBYTES, WEIR__COPY_H2D), 0);
            DLTensor t0 = tensor2(dp, shape, NULL), t1 = tensor2(x1, shape, NULL);
            t0.device.device_type = SIM;
            weir_buf args[2] = {weir_tensor_arg(&t0), weir_tensor_arg(&t1)};
            uint64_t id;
            cr_assert_eq(weir_submit(d, args, 2, &id, 10000), 0, "%s", weir_errmsg());
            /* Copied at submit: overwriting the caller's buffer now changes nothing. */
            memset(x0, 0, sizeof x0);
            cr_assert_eq(dev->ops->copy(dev->impl, dp, x0, TBYTES, WEIR__COPY_H2D), 0);
            next++;
        }
        weir_result *r;
        cr_assert_eq(weir_wait(d, done, &r, 10000), 0, "execution %llu: %s",
                     (unsigned long long)done, weir_errmsg());
        DLTensor t[3];
        for (unsigned k = 0; k < 3; k++) {
            cr_assert_eq(weir_result_tensor(r, k, &t[k]), 0, "%s", weir_errmsg());
            cr_assert_eq(t[k].device.device_type, kDLCPU, "output %u: a host tensor", k);
            cr_assert_eq(t[k].ndim, 2);
            cr_assert_eq(t[k].shape[0], ROWS);
            cr_assert_eq(t[k].shape[1], COLS);
            cr_assert_null(t[k].strides);
            cr_assert_eq(t[k].byte_offset, 0);
            cr_assert_eq(t[k].dtype.code, kDLFloat);
            cr_assert_eq((uintptr_t)t[k].data % 64, 0);
        }
        for (int i = 0; i < ROWS; i++)
            for (int j = 0; j < COLS; j++) {
                float yv = 2 * x_of(done, i, j) + 1;
                cr_assert_eq(((const float *)t[0].data)[i * COLS + j], x_of(done, i, j) + 1003);
                cr_assert_eq(((const float *)t[1].data)[i * COLS + j], yv);
                cr_assert_eq(((const float *)t[2].data)[i * COLS + j], yv + 5);
            }
        weir_result_free(r);
        done++;
    }
    cr_assert_eq(weir_dag_free(d), 0, "%s", weir_errmsg());
    weir__dev_counters k;
    weir__tensor_last_counters(&k);
    cr_assert_eq(k.copies[WEIR__COPY_D2H], n, "one staging copy per message of y");
    cr_assert_eq(k.copies[WEIR__COPY_H2D] + k.copies[WEIR__COPY_D2D], 0);
    /* ... each into y's ring slots, which its writer registered with the
     * device once (page-locked on a GPU) and unregistered at its stop */
    cr_assert_eq(k.pinned_copies, n, "%llu of %llu staging copies into registered slots",
                 (unsigned long long)k.pinned_copies, (unsigned long long)n);
    cr_assert_eq(k.host_regs, 1);
    cr_assert_eq(k.host_unregs, 1);
    cr_assert_eq(k.host_reg_fails, 0);
    /* The driver: one device-to-device copy of in0 per execution into its
     * pool (and nothing else copied), every pool buffer and event it made
     * freed; one ready record per argument. */
    weir__dev_counters dk;
    weir__tensor_last_driver_counters(&dk);
    cr_assert_eq(dk.copies[WEIR__COPY_D2D], n, "driver d2d copies %llu for %llu executions",
                 (unsigned long long)dk.copies[WEIR__COPY_D2D], (unsigned long long)n);
    cr_assert_eq(dk.copies[WEIR__COPY_H2D] + dk.copies[WEIR__COPY_D2H], 0);
    cr_assert_eq(dk.copy_bytes, n * TBYTES);
    cr_assert_eq(dk.ev_records, n);
    const uint64_t D = WEIR_DEFAULT_MAX_INFLIGHT;
    cr_assert_eq(dk.allocs, 2 * D, "two pools of depth buffers");
    /* With process actors the holder made the pools and the driver mapped
     * arg0's (D buffers, D ready and D release events) to write into it. */
    uint64_t imp = iso == WEIR_PROCESS ? 3 * D : 0;
    cr_assert_eq(dk.imports, imp);
    cr_assert_eq(dk.frees, dk.allocs + imp / 3);
    cr_assert_eq(dk.ev_destroys, dk.ev_creates + 2 * imp / 3);
    for (int j = 0; j < 2; j++)
        dev->ops->mem_free(dev->impl, mem[j]);
    weir__device_close(dev);
    weir_graph_free(g);
    cr_assert_eq(open_fds(), fds0, "every pool buffer, event and handle closed");
}

/* mid: sim-device y -> sim-device y2 = y, with exactly one device-to-device copy. */
static int m_mid(weir_call *c, void *p)
{
    struct devst *s = p;
    DLTensor t;
    if (weir_call_in_tensor(c, 0, &t) < 0)
        return weir_call_fail(c, "%s", weir_errmsg());
    if (t.device.device_type != SIM || t.ndim != 2 || t.shape[0] != ROWS || t.shape[1] != COLS)
        return weir_call_fail(c, "bad device view");
    int rc = sim_out(c, s, t.data, WEIR__COPY_D2D);
    if (rc)
        return rc;
    weir__dev_counters k;
    s->dev->ops->counters(s->dev->impl, &k);
    if (k.copies[WEIR__COPY_D2D] != ++s->calls || k.copies[WEIR__COPY_H2D] ||
        k.copies[WEIR__COPY_D2H])
        return weir_call_fail(c, "copies: %llu d2d for %llu messages",
                              (unsigned long long)k.copies[WEIR__COPY_D2D],
                              (unsigned long long)s->calls);
    return 0;
}

/* weir_execute of a chain's execution e (input x_of(e)). */
static int chain_execute(weir_dag *d, uint64_t e, weir_result **r)
{
    float x[ROWS * COLS];
    int64_t shape[2] = {ROWS, COLS};
    for (int i = 0; i < ROWS; i++)
        for (int j = 0; j < COLS; j++)
            x[i * COLS + j] = x_of(e, i, j);
    DLTensor t = tensor2(x, shape, NULL);
    weir_buf arg = weir_tensor_arg(&t);
    return weir_execute(d, &arg, 1, r, 10000);
}

/* Result r of execution e of a chain (output 0 = want_chain), checked and freed. */
static void chain_result_exact(weir_result *r, uint64_t e)
{
    DLTensor z;
    cr_assert_eq(weir_result_tensor(r, 0, &z), 0, "%s", weir_errmsg());
    for (int i = 0; i < ROWS; i++)
        for (int j = 0; j < COLS; j++)
            cr_assert_eq(((const float *)z.data)[i * COLS + j], want_chain(e, i, j),
                         "execution %llu [%d][%d]", (unsigned long long)e, i, j);
    weir_result_free(r);
}

/* One stage of a tensor chain: a's method m over `in`, its output marked as spec. */
static weir_node *tensor_stage(weir_actor *a, const char *m, weir_method_fn fn, weir_node *in,
                               const weir_tensor_spec *spec)
{
    weir_node *o = weir_bind(a, m, fn, &in, 1, 1);
    cr_assert_eq(weir_node_tensor_spec(o, spec), 0, "%s", weir_errmsg());
    return o;
}

/*
 * Device edges between fused actors: up (CPU x -> device y) -> mid (device
 * y -> device y2) -> b (device y2 -> CPU z = y2 + 3), on the workers given
 * (weir_actor_opts.worker). An edge inside one worker whose producer is not
 * the worker's first actor (mid on worker 1 with up) is the worker's own
 * buffer too. Every element of every result exact, one copy per message in
 * each method, nothing left open.
 */
static void sim_fused(int wu, int wm, int wb, unsigned threads, uint64_t n)
{
    int fds0 = open_fds();
    static struct devst st_mid;
    st_up = (struct devst){.kill_at = -1};
    st_mid = (struct devst){.kill_at = -1};
    st_b = (struct devst){.kill_at = -1, .add = 3};
    weir_actor_opts ou = {.state = &st_up, .init = devst_init, .fini = devst_fini, .worker = wu};
    weir_actor_opts om = ou, ob = ou;
    om.state = &st_mid;
    om.worker = wm;
    ob.state = &st_b;
    ob.worker = wb;
    weir_graph *g = weir_graph_new("tfused");
    weir_actor *up = weir_actor_new(g, "up", &ou), *mid = weir_actor_new(g, "mid", &om),
               *b = weir_actor_new(g, "b", &ob);
    weir_node *in = weir_input(g, 0);
    weir_tensor_spec s = f32_2d(), ds = s;
    ds.device = SIM;
    ds.max_bytes = TBYTES;
    cr_assert_eq(weir_node_tensor_spec(in, &s), 0);
    weir_node *y = tensor_stage(up, "up", m_up, in, &ds);
    weir_node *z = tensor_stage(b, "down", m_down, tensor_stage(mid, "mid", m_mid, y, &ds), &s);
    cr_assert_eq(weir_output(g, &z, 1), 0);
    weir_compile_opts co = {.threads = threads};
    weir_dag *d = weir_compile(g, &co);
    cr_assert_not_null(d, "%s", weir_errmsg());
    /* The placement asked for (a worker's lead is its first actor). */
    const int want[3] = {wu, wm, wb};
    const char *names[3] = {"up", "mid", "b"};
    cr_assert_eq(weir_dag_nactors(d), 3);
    for (unsigned k = 0; k < 3; k++) {
        struct weir_actor_stats as;
        cr_assert_eq(weir_dag_actor_stats(d, k, &as), 0, "%s", weir_errmsg());
        cr_assert_str_eq(as.name, names[k]);
        cr_assert_eq(as.worker, want[k], "actor '%s' on worker %d, want %d", names[k], as.worker,
                     want[k]);
    }
    run_check(d, n, want_chain);
    cr_assert_eq(weir_dag_free(d), 0, "%s", weir_errmsg());
    weir_graph_free(g);
    cr_assert_eq(st_up.calls, n);
    cr_assert_eq(st_mid.calls, n, "mid: one device-to-device copy per message");
    cr_assert_eq(st_b.calls, n);
    cr_assert_eq(open_fds(), fds0, "every pool buffer, event and handle closed");
}

Test(tensor, sim_fused_device_edges)
{
    uint64_t n = SANITIZED ? 1000 : 20000;
    sim_fused(1, 1, 1, 1, n); /* y and y2 inside worker 1, y2 made by mid, not the lead */
    sim_fused(1, 1, 2, 2, n); /* y inside worker 1, y2 a channel from it */
    sim_fused(1, 2, 2, 2, n); /* y a channel, y2 inside worker 2 */
}

/* up, then a lying record at executions 5 (a tensor twice the edge's
 * buffers, its data_bytes raised to match) and 7 (another device id): what a
 * broken or hostile writer process could commit. */
static int m_up_lying(weir_call *c, void *p)
{
    int rc = m_up(c, p);
    if (rc || (weir_call_exec(c) != 5 && weir_call_exec(c) != 7))
        return rc;
    weir__tensor_rec *rec = (weir__tensor_rec *)c->w->regs[c->op->out[0]].data;
    if (weir_call_exec(c) == 5) {
        rec->shape[0] *= 2;
        rec->data_bytes *= 2;
    } else {
        rec->device_id = 3;
    }
    return 0;
}

/* A reader checks a same-rank device record against its edge: the two lying
 * executions fail with the reason, every other one is exact. */
Test(tensor, sim_reader_refuses_lying_record)
{
    int fds0 = open_fds();
    st_up = (struct devst){.kill_at = -1};
    st_b = (struct devst){.kill_at = -1, .add = 3};
    weir_actor_opts ou = {.state = &st_up, .init = devst_init, .fini = devst_fini};
    weir_actor_opts ob = ou;
    ob.state = &st_b;
    weir_graph *g = weir_graph_new("tlying");
    weir_actor *up = weir_actor_new(g, "up", &ou), *b = weir_actor_new(g, "b", &ob);
    weir_node *in = weir_input(g, 0);
    weir_tensor_spec s = f32_2d(), ds = s;
    ds.device = SIM;
    ds.max_bytes = TBYTES;
    cr_assert_eq(weir_node_tensor_spec(in, &s), 0);
    weir_node *z = tensor_stage(b, "down", m_down, tensor_stage(up, "up", m_up_lying, in, &ds), &s);
    cr_assert_eq(weir_output(g, &z, 1), 0);
    weir_compile_opts co = {.threads = WEIR_THREADS_PER_ACTOR};
    weir_dag *d = weir_compile(g, &co);
    cr_assert_not_null(d, "%s", weir_errmsg());
    char want[200];
    for (uint64_t e = 0; e < 12; e++) {
        weir_result *r = NULL;
        int rc = chain_execute(d, e, &r);
        if (e == 5 || e == 7) {
            cr_assert_eq(rc, -EREMOTEIO, "execution %llu: %d %s", (unsigned long long)e, rc,
                         weir_errmsg());
            snprintf(want, sizeof want,
                     "graph 'tlying': execution %llu: actor 'b' method 'down' failed at "
                     "execution %llu: tensor edge 'up.up.out0': the record describes "
                     "%zu bytes on device %d; the edge's buffers hold %zu bytes on device 0",
                     (unsigned long long)e, (unsigned long long)e,
                     e == 5 ? 2 * (size_t)TBYTES : (size_t)TBYTES, e == 5 ? 0 : 3,
                     (size_t)TBYTES);
            cr_assert_str_eq(weir_errmsg(), want);
            continue;
        }
        cr_assert_eq(rc, 0, "execution %llu: %s", (unsigned long long)e, weir_errmsg());
        chain_result_exact(r, e);
    }
    cr_assert_eq(weir_dag_free(d), 0, "%s", weir_errmsg());
    weir_graph_free(g);
    cr_assert_eq(open_fds(), fds0, "every pool buffer, event and handle closed");
}

Test(tensor, sim_device_arguments_and_outputs)
{
    /* Processes first: once this process has used the device (the thread
     * actors, the caller's buffers) it cannot fork actors that use it. */
    dev_args_outputs(WEIR_PROCESS, SANITIZED ? 1000 : 20000);
    dev_args_outputs(WEIR_THREAD, SANITIZED ? 1000 : 20000);
}

Test(tensor, sim_reader_killed_holding_buffer)
{
    int fds0 = open_fds();
    weir_graph *g = weir_graph_new("tkill");
    weir_dag *d = sim_graph(g, WEIR_PROCESS, 0, 5);
    struct weir_actor_stats as;
    cr_assert_eq(weir_dag_actor_stats(d, 1, &as), 0);
    int pid = as.pid;
    for (uint64_t e = 0; e < 40; e++) {
        weir_result *r = NULL;
        int rc = chain_execute(d, e, &r);
        if (e == 5) {
            cr_assert_eq(rc, -EREMOTEIO, "%d %s", rc, weir_errmsg());
            char want[256];
            snprintf(want, sizeof want,
                     "graph 'tkill': execution 5: actor 'b' (pid %d) died in method 'down' at "
                     "execution 5: killed by signal 9 (SIGKILL); restarted as pid ",
                     pid);
            cr_assert(strstr(weir_errmsg(), want), "'%s' lacks '%s'", weir_errmsg(), want);
            cr_assert(strstr(weir_errmsg(), "(restart 1 of 1)"), "%s", weir_errmsg());
            continue;
        }
        cr_assert_eq(rc, 0, "execution %llu: %s", (unsigned long long)e, weir_errmsg());
        chain_result_exact(r, e);
    }
    cr_assert_eq(weir_dag_actor_stats(d, 1, &as), 0);
    cr_assert_eq(as.restarts, 1);
    cr_assert_neq(as.pid, pid);
    cr_assert_eq(weir_dag_free(d), 0, "%s", weir_errmsg());
    weir_graph_free(g);
    cr_assert_eq(open_fds(), fds0);
    /* The writer and the replacement reader each imported the pool once. */
    weir__dev_counters k;
    weir__tensor_last_counters(&k);
    cr_assert_eq(k.imports, 2 * 3 * WEIR_DEFAULT_MAX_INFLIGHT);
}

/* Teardown with device tensors in flight: submitted, never waited. */
Test(tensor, sim_teardown_in_flight)
{
    int fds0 = open_fds();
    for (int iso = 1; iso >= 0; iso--) { /* processes first (see sim_device_arguments...) */
        weir_graph *g = weir_graph_new("tdown");
        weir_dag *d = sim_graph(g, iso ? WEIR_PROCESS : WEIR_THREAD, 1, -1);
        float x[ROWS * COLS] = {0};
        int64_t shape[2] = {ROWS, COLS};
        DLTensor t = tensor2(x, shape, NULL);
        weir_buf arg = weir_tensor_arg(&t);
        for (int k = 0; k < 8; k++) {
            uint64_t id;
            cr_assert_eq(weir_submit(d, &arg, 1, &id, 10000), 0, "%s", weir_errmsg());
        }
        cr_assert_eq(weir_dag_free(d), 0, "%s", weir_errmsg());
        weir_graph_free(g);
    }
    cr_assert_eq(open_fds(), fds0);
}

/* Like CUDA, the simulated device cannot be used by a process forked from
 * one that had initialised it. */
Test(tensor, sim_refuses_a_process_forked_after_use)
{
    weir__device *dv;
    cr_assert_eq(weir__device_sim_ops.used_here(), 0);
    cr_assert_eq(weir__device_open(SIM, 1, "first", &dv), 0, "%s", weir_errmsg());
    weir__device_close(dv);
    cr_assert_eq(weir__device_sim_ops.used_here(), 1, "closing does not undo initialisation");
    int pp[2];
    cr_assert_eq(pipe(pp), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        close(pp[0]);
        weir__device *cd;
        int rc = weir__device_open(SIM, 0, "child", &cd);
        char buf[600];
        int n = snprintf(buf, sizeof buf, "%d %d %s", rc, weir__device_sim_ops.used_here(),
                         weir_errmsg());
        _exit(write(pp[1], buf, (size_t)n) == n ? 0 : 1);
    }
    close(pp[1]);
    char got[600] = {0}, want[600];
    cr_assert_gt(read(pp[0], got, sizeof got - 1), 0);
    close(pp[0]);
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    snprintf(want, sizeof want,
             "%d 0 tensor edge 'child': sim: device 0: this process (pid %d) was forked from pid "
             "%d after that process had initialised the device; a forked process cannot use it "
             "(as with CUDA)",
             -ENODEV, (int)pid, (int)getpid());
    cr_assert_str_eq(got, want);
}

/* So a dag with process actors on device edges needs a driver that has not
 * used the device: refused at compile, naming the edge, when it has. */
Test(tensor, sim_process_actors_refused_after_the_device_was_used)
{
    int fds0 = open_fds();
    weir__device *dv;
    cr_assert_eq(weir__device_open(SIM, 0, "user", &dv), 0, "%s", weir_errmsg());
    weir__device_close(dv);
    weir_graph *g = weir_graph_new("tbusy");
    sim_build(g, WEIR_PROCESS, 0, -1);
    weir_dag *d = weir_compile(g, &(weir_compile_opts){.threads = WEIR_THREADS_PER_ACTOR});
    cr_assert_null(d);
    cr_assert_eq(weir_errcode(), -EBUSY);
    cr_assert_str_eq(weir_errmsg(),
                     "graph 'tbusy': tensor edge 'up.up.out0': this process has used the sim "
                     "device before weir_compile, and process actors forked from it could not (a "
                     "forked process cannot use a device its parent initialised): compile dags "
                     "with process actors and device edges before the program's first device "
                     "call");
    weir_graph_free(g);
    cr_assert_eq(open_fds(), fds0);
}

/* A large CPU argument (copied into its slot with non-temporal stores past
 * 1 MiB, engine/tensor.c big_copy): every byte, the unaligned tail too. */
static int m_hash(weir_call *c, void *st)
{
    (void)st;
    DLTensor t;
    if (weir_call_in_tensor(c, 0, &t) < 0)
        return weir_call_fail(c, "%s", weir_errmsg());
    if (((uintptr_t)t.data & 63) != 0)
        return weir_call_fail(c, "data at %p is not 64-byte aligned", t.data);
    uint64_t *o = weir_call_out(c, 0, sizeof *o);
    *o = fnv((const char *)t.data + t.byte_offset, (size_t)t.shape[0]);
    return 0;
}

Test(tensor, large_cpu_argument_every_byte)
{
    const size_t sizes[] = {(1u << 20) - 1, 1u << 20, (3u << 20) + 17};
    weir_graph *g = weir_graph_new("tbig");
    weir_actor *a = weir_actor_new(g, "a", &(weir_actor_opts){0});
    weir_node *in = weir_input(g, 0);
    cr_assert_eq(weir_node_tensor(in, kDLCPU, 0), 0, "%s", weir_errmsg());
    weir_node *h = weir_bind(a, "hash", m_hash, &in, 1, 1);
    cr_assert_eq(weir_output(g, &h, 1), 0);
    weir_dag *d = weir_compile(g, NULL);
    cr_assert_not_null(d, "%s", weir_errmsg());
    unsigned char *buf = malloc(sizes[2] + 1);
    for (unsigned k = 0; k < 6; k++) {
        size_t n = sizes[k % 3];
        unsigned char *src = buf + (k & 1); /* the source need not be aligned */
        fill(src, n, k);
        int64_t shape[1] = {(int64_t)n};
        DLTensor t;
        memset(&t, 0, sizeof t);
        t.data = src;
        t.device.device_type = kDLCPU;
        t.ndim = 1;
        t.shape = shape;
        t.dtype = (DLDataType){kDLUInt, 8, 1};
        weir_buf arg = weir_tensor_arg(&t);
        weir_result *r;
        cr_assert_eq(weir_execute(d, &arg, 1, &r, 10000), 0, "%s", weir_errmsg());
        cr_assert_eq(*(const uint64_t *)weir_result_data(r, 0, NULL), fnv(src, n),
                     "%zu bytes, execution %u", n, k);
        weir_result_free(r);
    }
    free(buf);
    cr_assert_eq(weir_dag_free(d), 0, "%s", weir_errmsg());
    weir_graph_free(g);
}

/* ---- bad input: each a clear error naming the edge; the graph goes on -------- */

/* The producer's output for execution e: e % 8 picks what is wrong with it. */
static int m_bad(weir_call *c, void *st)
{
    (void)st;
    uint64_t e = weir_call_exec(c);
    int64_t shape[2] = {ROWS, COLS}, neg[2] = {-1, 1};
    DLTensor m = tensor2(NULL, shape, NULL);
    switch (e % 8) {
    case 1:
        m.dtype.bits = 64; /* wrong dtype */
        break;
    case 2:
        m.ndim = 1; /* wrong ndim */
        break;
    case 3:
        shape[1] = COLS + 1; /* wrong shape */
        break;
    case 4:
        m.strides = neg; /* strides that overrun the buffer */
        break;
    case 5:
        m.device.device_type = SIM; /* a device the edge does not allow */
        break;
    case 6:
        m.byte_offset = 4096; /* larger than max_bytes */
        break;
    }
    float *z = weir_call_out_tensor(c, 0, &m);
    if (!z)
        return 0; /* returning 0 anyway: the execution still fails */
    for (int k = 0; k < ROWS * COLS; k++)
        z[k] = (float)e;
    return 0;
}

Test(tensor, mismatches_fail_the_execution_naming_the_edge)
{
    weir_graph *g = weir_graph_new("tbad");
    weir_actor *a = weir_actor_new(g, "a", &(weir_actor_opts){0});
    weir_node *in = weir_input(g, 0);
    weir_node *y = weir_bind(a, "make", m_bad, &in, 1, 1);
    weir_tensor_spec s = f32_2d();
    s.max_bytes = 1024;
    cr_assert_eq(weir_node_tensor_spec(y, &s), 0);
    cr_assert_eq(weir_output(g, &y, 1), 0);
    weir_dag *d = weir_compile(g, NULL);
    cr_assert_not_null(d, "%s", weir_errmsg());
    static const char *why[8] = {
        NULL,
        "dtype (code 2, bits 64, lanes 1), the edge takes (code 2, bits 32, lanes 1)",
        "ndim 1, the edge takes ndim 2",
        "shape[1] is 7, the edge takes 6",
        "strides overrun the buffer: negative strides reach 12 bytes below data (byte_offset 0)",
        "tensor on device type 12, the edge allows device type 1 only",
        "tensor of 4192 bytes exceeds the edge's max_bytes 1024",
        NULL,
    };
    for (uint64_t e = 0; e < 16; e++) {
        int64_t v = (int64_t)e;
        weir_buf arg = {&v, sizeof v};
        weir_result *r = NULL;
        int rc = weir_execute(d, &arg, 1, &r, 10000);
        if (!why[e % 8]) {
            cr_assert_eq(rc, 0, "execution %llu: %s", (unsigned long long)e, weir_errmsg());
            DLTensor t;
            cr_assert_eq(weir_result_tensor(r, 0, &t), 0, "%s", weir_errmsg());
            cr_assert_eq(((const float *)t.data)[ROWS * COLS - 1], (float)e);
            weir_result_free(r);
            continue;
        }
        char want[512];
        snprintf(want, sizeof want,
                 "graph 'tbad': execution %llu: actor 'a' method 'make' failed at execution %llu: "
                 "tensor edge 'a.make.out0': %s",
                 (unsigned long long)e, (unsigned long long)e, why[e % 8]);
        cr_assert_eq(rc, -EREMOTEIO, "execution %llu: %d %s", (unsigned long long)e, rc,
                     weir_errmsg());
        cr_assert_str_eq(weir_errmsg(), want);
        cr_assert_null(r);
    }
    cr_assert_eq(weir_dag_free(d), 0);
    weir_graph_free(g);
}

static int m_touch(weir_call *c, void *st)
{
    (void)st;
    DLTensor t;
    if (weir_call_in_tensor(c, 0, &t) < 0)
        return weir_call_fail(c, "%s", weir_errmsg());
    int64_t *o = weir_call_out(c, 0, sizeof *o);
    *o = t.ndim;
    return 0;
}

Test(tensor, bad_arguments_fail_the_submit_naming_the_edge)
{
    weir_graph *g = weir_graph_new("targ");
    weir_actor *a = weir_actor_new(g, "a", &(weir_actor_opts){0});
    weir_node *in = weir_input(g, 0);
    weir_tensor_spec s = f32_2d();
    cr_assert_eq(weir_node_tensor_spec(in, &s), 0);
    weir_node *y = weir_bind(a, "touch", m_touch, &in, 1, 1);
    cr_assert_eq(weir_output(g, &y, 1), 0);
    weir_dag *d = weir_compile(g, NULL);
    cr_assert_not_null(d, "%s", weir_errmsg());
    float x[ROWS * COLS] = {0};
    int64_t shape[3] = {ROWS, COLS, 1};
    DLTensor t = tensor2(x, shape, NULL);
    t.ndim = 3;
    weir_buf arg = weir_tensor_arg(&t);
    weir_result *r = NULL;
    cr_assert_eq(weir_execute(d, &arg, 1, &r, 10000), -EINVAL);
    cr_assert_str_eq(weir_errmsg(), "graph 'targ': submit: tensor edge 'arg0': ndim 3, the edge "
                                    "takes ndim 2");
    int64_t raw = 1;
    weir_buf bad = {&raw, sizeof raw};
    cr_assert_eq(weir_execute(d, &bad, 1, &r, 10000), -EINVAL);
    cr_assert_str_eq(weir_errmsg(), "graph 'targ': submit: tensor edge 'arg0': the argument is "
                                    "not a tensor (pass weir_tensor_arg(&t))");
    t.ndim = 2;
    t.data = NULL;
    cr_assert_eq(weir_execute(d, &arg, 1, &r, 10000), -EINVAL);
    cr_assert_str_eq(weir_errmsg(), "graph 'targ': submit: tensor edge 'arg0': tensor of 96 bytes "
                                    "with NULL data");
    /* Nothing was sent: the next good execution is execution 0. */
    t.data = x;
    cr_assert_eq(weir_execute(d, &arg, 1, &r, 10000), 0, "%s", weir_errmsg());
    cr_assert_eq(weir_result_exec(r), 0);
    size_t len;
    cr_assert_eq(*(const int64_t *)weir_result_data(r, 0, &len), 2);
    DLTensor rt;
    cr_assert_eq(weir_result_tensor(r, 0, &rt), -EBADMSG);
    cr_assert_str_eq(weir_errmsg(), "tensor edge 'output 0': message of 8 bytes is shorter than a "
                                    "tensor record (192)");
    cr_assert_eq(weir_result_tensor(r, 1, &rt), -EINVAL);
    cr_assert_str_eq(weir_errmsg(), "result: output 1 out of range (1 outputs)");
    weir_result_free(r);
    cr_assert_eq(weir_dag_free(d), 0);
    weir_graph_free(g);
}

static int m_plain(weir_call *c, void *st)
{
    (void)st;
    DLTensor t;
    int rc = weir_call_in_tensor(c, 0, &t);
    if (rc != -EINVAL || strcmp(weir_errmsg(), "actor 'a' method 'plain': input 0 is not a tensor "
                                               "edge (mark it with weir_node_tensor)"))
        return weir_call_fail(c, "in: %d %s", rc, weir_errmsg());
    int64_t shape[1] = {1};
    DLTensor m = tensor2(NULL, shape, NULL);
    m.ndim = 1;
    if (weir_call_out_tensor(c, 0, &m))
        return weir_call_fail(c, "out_tensor on a plain edge worked");
    return 0;
}

Test(tensor, plain_edges_refuse_tensor_calls)
{
    weir_graph *g = weir_graph_new("tplain");
    weir_actor *a = weir_actor_new(g, "a", &(weir_actor_opts){0});
    weir_node *in = weir_input(g, 0);
    weir_node *y = weir_bind(a, "plain", m_plain, &in, 1, 1);
    cr_assert_eq(weir_output(g, &y, 1), 0);
    weir_dag *d = weir_compile(g, NULL);
    cr_assert_not_null(d, "%s", weir_errmsg());
    int64_t v = 0;
    weir_buf arg = {&v, sizeof v};
    weir_result *r = NULL;
    cr_assert_eq(weir_execute(d, &arg, 1, &r, 10000), -EREMOTEIO);
    cr_assert_str_eq(weir_errmsg(), "graph 'tplain': execution 0: actor 'a' method 'plain' failed "
                                    "at execution 0: actor 'a' method 'plain': output 0 is not a "
                                    "tensor edge (mark it with weir_node_tensor)");
    cr_assert_eq(weir_dag_free(d), 0);
    weir_graph_free(g);
}

/* Device edges the machine or the build cannot serve fail at compile. */
static const char *compile_err_iso(DLDeviceType dev, int id, size_t max_bytes, int to_driver,
                                   int iso, int *rc)
{
    static char msg[1024];
    weir_graph *g = weir_graph_new("tdev");
    weir_actor *a = weir_actor_new(g, "a", &(weir_actor_opts){.isolation = iso});
    weir_actor *b = weir_actor_new(g, "b", &(weir_actor_opts){.isolation = iso});
    weir_node *in = weir_input(g, 0);
    weir_node *y = weir_bind(a, "f", m_up, &in, 1, 1);
    weir_tensor_spec s;
    memset(&s, 0, sizeof s);
    s.device = dev;
    s.device_id = id;
    s.max_bytes = max_bytes;
    cr_assert_eq(weir_node_tensor_spec(y, &s), 0, "%s", weir_errmsg());
    weir_node *z = to_driver ? y : weir_bind(b, "g", m_down, &y, 1, 1);
    cr_assert_eq(weir_output(g, &z, 1), 0);
    weir_dag *d = weir_compile(g, NULL);
    *rc = d ? 0 : weir_errcode();
    snprintf(msg, sizeof msg, "%s", d ? "" : weir_errmsg());
    if (d)
        cr_assert_eq(weir_dag_free(d), 0, "%s", weir_errmsg());
    weir_graph_free(g);
    return msg;
}

static const char *compile_err(DLDeviceType dev, int id, size_t max_bytes, int to_driver, int *rc)
{
    return compile_err_iso(dev, id, max_bytes, to_driver, WEIR_THREAD, rc);
}

/* The same with process actors: the device pool holder opens the device,
 * and its reasons reach weir_compile word for word; this process never
 * opens the device, and no holder process is left. */
Test(tensor, device_edges_checked_at_compile_by_the_holder)
{
    int fds0 = open_fds();
    int rc;
    const char *m = compile_err_iso(kDLCUDA, 0, 1024, 0, WEIR_PROCESS, &rc);
    cr_assert_eq(rc, -ENODEV, "%d %s", rc, m);
    if (!weir__device_cuda_ops())
        cr_assert_str_eq(m, "graph 'tdev': tensor edge 'a.f.out0': device cuda:0: the build has no "
                            "CUDA (configure with the CUDA toolkit's headers)");
    else if (!weir__device_cuda_ops()->used_here())
        cr_assert_str_eq(m, "graph 'tdev': tensor edge 'a.f.out0': cuda: libcuda.so.1 not found: "
                            "libcuda.so.1: cannot open shared object file: No such file or "
                            "directory");
    m = compile_err_iso(SIM, 9, 1024, 0, WEIR_PROCESS, &rc);
    cr_assert_eq(rc, -ENODEV);
    cr_assert_str_eq(m, "graph 'tdev': tensor edge 'a.f.out0': sim: device 9 absent (the "
                        "simulated device has devices 0..3)");
    m = compile_err_iso(SIM, 2, 1024, 0, WEIR_PROCESS, &rc); /* device 2 is there */
    cr_assert_eq(rc, 0, "%s", m);
    cr_assert_eq(weir__device_sim_ops.used_here(), 0, "the driver opened the device");
    cr_assert_eq(waitpid(-1, NULL, WNOHANG), -1, "a child is left");
    cr_assert_eq(errno, ECHILD);
    cr_assert_eq(open_fds(), fds0);
}

Test(tensor, device_edges_checked_at_compile)
{
    int fds0 = open_fds();
    int rc;
    const char *m = compile_err(kDLCUDA, 0, 1024, 0, &rc);
    cr_assert_eq(rc, -ENODEV, "%d %s", rc, m);
    if (!weir__device_cuda_ops())
        cr_assert_str_eq(m, "graph 'tdev': tensor edge 'a.f.out0': device cuda:0: the build has no "
                            "CUDA (configure with the CUDA toolkit's headers)");
    else
        cr_assert_str_eq(m, "graph 'tdev': tensor edge 'a.f.out0': cuda: libcuda.so.1 not found: "
                            "libcuda.so.1: cannot open shared object file: No such file or "
                            "directory");
    m = compile_err(SIM, 9, 1024, 0, &rc);
    cr_assert_eq(rc, -ENODEV);
    cr_assert_str_eq(m, "graph 'tdev': tensor edge 'a.f.out0': sim: device 9 absent (the "
                        "simulated device has devices 0..3)");
    m = compile_err(SIM, 0, 0, 0, &rc);
    cr_assert_eq(rc, -EINVAL);
    cr_assert_str_eq(m, "graph 'tdev': tensor edge 'a.f.out0': a device edge needs max_bytes (the "
                        "size of its pool's buffers)");
    cr_assert_eq(open_fds(), fds0);

    weir_graph *g = weir_graph_new("tspec");
    weir_node *in = weir_input(g, 0);
    weir_tensor_spec s;
    memset(&s, 0, sizeof s);
    s.ndim = 9;
    cr_assert_eq(weir_node_tensor_spec(in, &s), -EINVAL);
    cr_assert_str_eq(weir_errmsg(), "graph 'tspec': tensor input 0: ndim 9 out of range (0: any, "
                                    "1..8, or WEIR_TENSOR_SCALAR)");
    s.ndim = 1;
    s.shape[0] = -3;
    cr_assert_eq(weir_node_tensor_spec(in, &s), -EINVAL);
    cr_assert_str_eq(weir_errmsg(), "graph 'tspec': tensor input 0: shape[0] is negative (-3)");
    s.shape[0] = 0;
    s.dtype.bits = 12;
    s.dtype.lanes = 1;
    cr_assert_eq(weir_node_tensor_spec(in, &s), -EINVAL);
    cr_assert_str_eq(weir_errmsg(), "graph 'tspec': tensor input 0: bad dtype (code 0, bits 12, "
                                    "lanes 1)");
    cr_assert_eq(weir_node_tensor_spec(NULL, &s), -EINVAL);
    cr_assert_str_eq(weir_errmsg(), "weir_node_tensor: NULL node or spec");
    cr_assert_eq(weir_node_tensor(in, SIM, 64), 0);
    weir_actor *a = weir_actor_new(g, "a", &(weir_actor_opts){0});
    weir_node *y = weir_bind(a, "touch", m_touch, &in, 1, 1);
    cr_assert_eq(weir_output(g, &y, 1), 0);
    /* A device argument edge: bad arguments fail the submit naming the edge,
     * nothing is sent, and the dag goes on. */
    weir_dag *d = weir_compile(g, NULL);
    cr_assert_not_null(d, "%s", weir_errmsg());
    int64_t shape[1] = {4};
    float host[4] = {1, 2, 3, 4};
    DLTensor t;
    memset(&t, 0, sizeof t);
    t.ndim = 1;
    t.shape = shape;
    t.dtype = F32;
    t.data = host;
    t.device.device_type = kDLCPU;
    weir_buf arg = weir_tensor_arg(&t);
    uint64_t id;
    cr_assert_eq(weir_submit(d, &arg, 1, &id, 1000), -EINVAL);
    cr_assert_str_eq(weir_errmsg(), "graph 'tspec': submit: tensor edge 'arg0': tensor on device "
                                    "type 1, the edge allows device type 12 only");
    t.device.device_type = SIM; /* but host memory */
    cr_assert_eq(weir_submit(d, &arg, 1, &id, 1000), -EFAULT);
    char want[256];
    snprintf(want, sizeof want, "graph 'tspec': submit: tensor edge 'arg0': execution 0: sim: "
             "address %p is not a device address", (void *)host);
    cr_assert_str_eq(weir_errmsg(), want);
    weir__device *dev;
    void *mem, *dptr;
    cr_assert_eq(weir__device_open(SIM, 0, "caller", &dev), 0, "%s", weir_errmsg());
    cr_assert_eq(dev->ops->mem_alloc(dev->impl, 64, &mem, &dptr), 0, "%s", weir_errmsg());
    t.data = dptr;
    weir_result *r;
    for (int k = 0; k < 3; k++) { /* and the dag goes on, from execution 0 */
        cr_assert_eq(weir_execute(d, &arg, 1, &r, 10000), 0, "%s", weir_errmsg());
        cr_assert_eq(weir_result_exec(r), (uint64_t)k);
        size_t len;
        const int64_t *nd = weir_result_data(r, 0, &len);
        cr_assert_eq(len, 8);
        cr_assert_eq(*nd, 1, "the reader saw the device tensor's record");
        weir_result_free(r);
    }
    cr_assert_eq(weir_dag_free(d), 0, "%s", weir_errmsg());
    dev->ops->mem_free(dev->impl, mem);
    weir__device_close(dev);
    weir_graph_free(g);
}
