/* SPDX-License-Identifier: MIT */
/*
 * tests/test_tensor.c - tensor records (channels/tensor.c): exact round trips
 * of dtype/ndim/shape/strides/byte_offset/device, data placement (64-byte
 * aligned in the slot), and every rejection with its message.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "channels/tensor.h"
#include <weir/weir.h>

TestSuite(tensor, .timeout = 60);

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
