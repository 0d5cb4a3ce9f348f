/* SPDX-License-Identifier: MIT */
/*
 * channels/tensor.c - the on-ring tensor record (encode, decode, validate).
 *
 * Design notes
 *   - The record is plain fixed-width data at the start of a message; a
 *     reader decodes bytes another process wrote, so decode trusts nothing:
 *     every field is range-checked and the bytes the shape and strides reach
 *     are proven to lie inside the message (or the device buffer) before a
 *     view is handed out.
 *   - Extents are computed in 128-bit arithmetic, so no product of a shape
 *     and a stride can wrap; anything past SIZE_MAX / 2 is -EOVERFLOW.
 *   - Strides are stored as given (never compacted); NULL strides mean
 *     row-major contiguous and decode back to NULL.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "channels/err.h"
#include "channels/tensor.h"

#define EDGE(e) ((e) ? (e) : "?")

__extension__ typedef __int128 i128;
#define LIM ((i128)1 << 62)

static int dtype_ok(DLDataType d)
{
    switch (d.code) {
    case kDLInt:
    case kDLUInt:
    case kDLFloat:
    case kDLBfloat:
    case kDLComplex:
    case kDLOpaqueHandle:
        break;
    default:
        return 0;
    }
    return d.bits > 0 && d.bits % 8 == 0 && d.lanes >= 1;
}

int weir__tensor_span(const DLTensor *t, const char *edge, size_t *bytes)
{
    if (!t)
        return weir__seterr(-EINVAL, "tensor edge '%s': no tensor (NULL)", EDGE(edge));
    if (t->ndim < 0 || t->ndim > WEIR_TENSOR_MAX_NDIM)
        return weir__seterr(-EINVAL, "tensor edge '%s': ndim %d out of range (0..%d)",
                            EDGE(edge), t->ndim, WEIR_TENSOR_MAX_NDIM);
    if (!dtype_ok(t->dtype))
        return weir__seterr(-EINVAL,
                            "tensor edge '%s': bad dtype (code %u, bits %u, lanes %u): bits must be a "
                            "multiple of 8, lanes >= 1, code a DLPack type",
                            EDGE(edge), t->dtype.code, t->dtype.bits, t->dtype.lanes);
    if (t->ndim > 0 && !t->shape)
        return weir__seterr(-EINVAL, "tensor edge '%s': ndim %d but no shape", EDGE(edge), t->ndim);
    i128 es = (i128)(t->dtype.bits / 8) * t->dtype.lanes;
    i128 lo = 0, hi = 0, contig = 1;
    int empty = 0;
    for (int i = t->ndim - 1; i >= 0; i--) {
        int64_t n = t->shape[i];
        if (n < 0)
            return weir__seterr(-EINVAL, "tensor edge '%s': shape[%d] is negative (%lld)", EDGE(edge),
                                i, (long long)n);
        if (n > ((int64_t)1 << 48))
            return weir__seterr(-EOVERFLOW, "tensor edge '%s': shape[%d] = %lld is too large",
                                EDGE(edge), i, (long long)n);
        if (n == 0)
            empty = 1;
        i128 s = t->strides ? (i128)t->strides[i] : contig;
        if (t->strides && (t->strides[i] > ((int64_t)1 << 48) || t->strides[i] < -((int64_t)1 << 48)))
            return weir__seterr(-EOVERFLOW, "tensor edge '%s': strides[%d] = %lld is too large",
                                EDGE(edge), i, (long long)t->strides[i]);
        if (!t->strides) {
            contig *= n ? n : 1;
            if (contig > LIM)
                return weir__seterr(-EOVERFLOW, "tensor edge '%s': shape has more than 2^62 elements",
                                    EDGE(edge));
        }
        if (n > 0) {
            i128 reach = s * (n - 1); /* |s| <= 2^48, n <= 2^48: fits */
            if (reach < 0)
                lo += reach;
            else
                hi += reach;
        }
    }
    /* hi, -lo <= 8 * 2^96; bound them before scaling by the element size. */
    if (hi > LIM || -lo > LIM)
        return weir__seterr(-EOVERFLOW, "tensor edge '%s': strides reach more than 2^62 elements",
                            EDGE(edge));
    const i128 max = (i128)(SIZE_MAX / 2);
    i128 total;
    if (empty) {
        total = t->byte_offset;
    } else {
        i128 below = -lo * es, above = (hi + 1) * es; /* <= 2^62 * 2^23 */
        if (below > max || above > max)
            return weir__seterr(-EOVERFLOW, "tensor edge '%s': tensor spans more than %zu bytes",
                                EDGE(edge), SIZE_MAX / 2);
        if (below > (i128)t->byte_offset)
            return weir__seterr(-EINVAL,
                                "tensor edge '%s': strides overrun the buffer: negative strides reach "
                                "%llu bytes below data (byte_offset %llu)",
                                EDGE(edge), (unsigned long long)below,
                                (unsigned long long)t->byte_offset);
        total = (i128)t->byte_offset + above;
    }
    if (total > max)
        return weir__seterr(-EOVERFLOW, "tensor edge '%s': tensor spans more than %zu bytes",
                            EDGE(edge), SIZE_MAX / 2);
    *bytes = (size_t)total;
    return 0;
}

int weir_tensor_nbytes(const DLTensor *t, size_t *bytes)
{
    weir__clearerr();
    size_t b = 0;
    int rc = weir__tensor_span(t, NULL, &b);
    if (rc == 0 && bytes)
        *bytes = b;
    return rc;
}

size_t weir__tensor_data_off(const void *slot)
{
    uintptr_t p = (uintptr_t)slot + sizeof(weir__tensor_rec);
    uintptr_t a = (p + (WEIR_TENSOR_ALIGN - 1)) & ~(uintptr_t)(WEIR_TENSOR_ALIGN - 1);
    return (size_t)(a - (uintptr_t)slot);
}

int weir__tensor_encode(void *slot, size_t cap, const DLTensor *meta, int in_slot,
                        uint32_t buf_index, const char *edge, size_t *total, void **data)
{
    size_t span;
    int rc = weir__tensor_span(meta, edge, &span);
    if (rc < 0)
        return rc;
    size_t off = in_slot ? weir__tensor_data_off(slot) : 0;
    size_t need = in_slot ? off + span : sizeof(weir__tensor_rec);
    int staged = in_slot == WEIR__TENSOR_STAGED;
    if (need < sizeof(weir__tensor_rec) || cap < need)
        return weir__seterr(-EMSGSIZE, "tensor edge '%s': %zu bytes needed, the slot holds %zu",
                            EDGE(edge), need, cap);
    weir__tensor_rec r;
    memset(&r, 0, sizeof r);
    r.magic = WEIR__TENSOR_MAGIC;
    r.version = WEIR__TENSOR_VERSION;
    r.ndim = (uint8_t)meta->ndim;
    r.flags = (uint8_t)((meta->strides ? WEIR__TENSOR_F_STRIDES : 0) |
                        (staged ? WEIR__TENSOR_F_STAGED : in_slot ? WEIR__TENSOR_F_INSLOT : 0));
    r.dtype_code = meta->dtype.code;
    r.dtype_bits = meta->dtype.bits;
    r.dtype_lanes = meta->dtype.lanes;
    r.device_type = (int32_t)meta->device.device_type;
    r.device_id = meta->device.device_id;
    r.data_off = (uint32_t)off;
    r.buf_index = in_slot && !staged ? 0 : buf_index;
    r.byte_offset = meta->byte_offset;
    r.data_bytes = span;
    for (int i = 0; i < meta->ndim; i++) {
        r.shape[i] = meta->shape[i];
        r.strides[i] = meta->strides ? meta->strides[i] : 0;
    }
    memcpy(slot, &r, sizeof r);
    *total = need;
    *data = in_slot ? (char *)slot + off : NULL;
    return 0;
}

int weir__tensor_decode(const void *msg, size_t len, const char *edge, DLTensor *t,
                        uint32_t *buf_index)
{
    return weir__tensor_decode_aligned(msg, len, edge, t, buf_index, WEIR_TENSOR_ALIGN);
}

int weir__tensor_decode_aligned(const void *msg, size_t len, const char *edge, DLTensor *t,
                                uint32_t *buf_index, size_t align)
{
    if (!msg || len < sizeof(weir__tensor_rec))
        return weir__seterr(-EBADMSG, "tensor edge '%s': message of %zu bytes is shorter than a "
                                      "tensor record (%zu)",
                            EDGE(edge), msg ? len : 0, sizeof(weir__tensor_rec));
    /* The record sits at the slot's start; slots are 64-byte aligned, so the
     * fields are naturally aligned and can be read in place (shape/strides
     * are handed out as pointers into the message). */
    if ((uintptr_t)msg % _Alignof(weir__tensor_rec) != 0)
        return weir__seterr(-EBADMSG, "tensor edge '%s': record at a misaligned address",
                            EDGE(edge));
    const weir__tensor_rec *r = msg;
    if (r->magic != WEIR__TENSOR_MAGIC)
        return weir__seterr(-EBADMSG, "tensor edge '%s': bad record magic 0x%08x", EDGE(edge),
                            r->magic);
    if (r->version != WEIR__TENSOR_VERSION)
        return weir__seterr(-EBADMSG, "tensor edge '%s': record version %u, this build reads %u",
                            EDGE(edge), r->version, WEIR__TENSOR_VERSION);
    if (r->flags & ~(WEIR__TENSOR_F_STRIDES | WEIR__TENSOR_F_INSLOT | WEIR__TENSOR_F_STAGED))
        return weir__seterr(-EBADMSG, "tensor edge '%s': unknown record flags 0x%02x", EDGE(edge),
                            r->flags);
    if ((r->flags & WEIR__TENSOR_F_INSLOT) && (r->flags & WEIR__TENSOR_F_STAGED))
        return weir__seterr(-EBADMSG, "tensor edge '%s': record flags 0x%02x: in-slot data and a "
                                      "staged device copy at once",
                            EDGE(edge), r->flags);
    if (r->ndim > WEIR_TENSOR_MAX_NDIM)
        return weir__seterr(-EBADMSG, "tensor edge '%s': ndim %u out of range (0..%d)", EDGE(edge),
                            r->ndim, WEIR_TENSOR_MAX_NDIM);
    DLTensor v;
    memset(&v, 0, sizeof v);
    v.ndim = r->ndim;
    v.dtype.code = r->dtype_code;
    v.dtype.bits = r->dtype_bits;
    v.dtype.lanes = r->dtype_lanes;
    v.device.device_type = (DLDeviceType)r->device_type;
    v.device.device_id = r->device_id;
    v.shape = (int64_t *)r->shape;
    v.strides = (r->flags & WEIR__TENSOR_F_STRIDES) ? (int64_t *)r->strides : NULL;
    v.byte_offset = r->byte_offset;
    if (r->device_id < 0)
        return weir__seterr(-EBADMSG, "tensor edge '%s': device id %d is negative", EDGE(edge),
                            r->device_id);
    size_t span;
    if (weir__tensor_span(&v, edge, &span) < 0) {
        char why[512];
        snprintf(why, sizeof why, "%s", weir_errmsg());
        return weir__seterr(-EBADMSG, "%s", why);
    }
    if (span > r->data_bytes)
        return weir__seterr(-EBADMSG,
                            "tensor edge '%s': strides overrun the buffer: the tensor reaches byte "
                            "%zu, the buffer holds %llu",
                            EDGE(edge), span, (unsigned long long)r->data_bytes);
    if (r->flags & (WEIR__TENSOR_F_INSLOT | WEIR__TENSOR_F_STAGED)) {
        if (r->data_off < sizeof(weir__tensor_rec) || r->data_off > len ||
            r->data_bytes > len - r->data_off)
            return weir__seterr(-EBADMSG,
                                "tensor edge '%s': data (offset %u, %llu bytes) outside the "
                                "%zu-byte message",
                                EDGE(edge), r->data_off, (unsigned long long)r->data_bytes, len);
        if (((uintptr_t)msg + r->data_off) % align != 0)
            return weir__seterr(-EBADMSG, "tensor edge '%s': data at offset %u is not %zu-byte "
                                          "aligned",
                                EDGE(edge), r->data_off, align);
        v.data = (char *)msg + r->data_off;
    } else {
        if (r->data_off != 0)
            return weir__seterr(-EBADMSG, "tensor edge '%s': device tensor with in-slot data "
                                          "offset %u",
                                EDGE(edge), r->data_off);
        v.data = NULL;
    }
    if ((r->flags & WEIR__TENSOR_F_INSLOT) && r->buf_index != 0)
        return weir__seterr(-EBADMSG, "tensor edge '%s': in-slot tensor naming device buffer %u",
                            EDGE(edge), r->buf_index);
    if (buf_index)
        *buf_index = (r->flags & WEIR__TENSOR_F_INSLOT) ? 0 : r->buf_index;
    *t = v;
    return 0;
}

int weir__tensor_check_edge(const DLTensor *t, const weir__tensor_edge *e, size_t *bytes)
{
    size_t span;
    int rc = weir__tensor_span(t, e->name, &span);
    if (rc < 0)
        return rc;
    if (t->device.device_type != e->device_type)
        return weir__seterr(-EINVAL,
                            "tensor edge '%s': tensor on device type %d, the edge allows device "
                            "type %d only",
                            EDGE(e->name), (int)t->device.device_type, (int)e->device_type);
    if (e->max_bytes && span > e->max_bytes)
        return weir__seterr(-EMSGSIZE, "tensor edge '%s': tensor of %zu bytes exceeds the edge's "
                                       "max_bytes %zu",
                            EDGE(e->name), span, e->max_bytes);
    *bytes = span;
    return 0;
}
