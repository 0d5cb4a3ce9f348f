/* SPDX-License-Identifier: MIT */
/*
 * channels/tensor.h - the on-ring tensor record: encode, decode, validate.
 * Pure functions over bytes (no channel, no allocation), so the decoder can
 * be fuzzed: a reader decodes bytes another process wrote.
 */
#ifndef WEIR_CHANNELS_TENSOR_H
#define WEIR_CHANNELS_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#include <weir/tensor.h>

#define WEIR__TENSOR_MAGIC 0x544e5357u /* "WSNT" */
#define WEIR__TENSOR_VERSION 1
#define WEIR__TENSOR_F_STRIDES 0x1u /* strides[] valid; else contiguous */
#define WEIR__TENSOR_F_INSLOT 0x2u  /* data follows the record in the slot */
#define WEIR__TENSOR_F_STAGED 0x4u  /* device data, and a host copy of it follows the
                                     * record (for readers on other ranks: the link
                                     * carries it; and for the driver: the result) */

/*
 * The record at the start of a tensor message. Fixed width, little-endian
 * host order (both ends run on one machine; links carry it as bytes).
 * `data_off` counts from the record's first byte; with F_INSLOT the data
 * (byte_offset + extent = data_bytes) starts there, 64-byte aligned in the
 * address space of whoever mapped the slot at a 64-byte aligned address.
 * Without F_INSLOT the data is in device buffer `buf_index` of the edge's
 * pool; data_off is 0, or with F_STAGED (a device edge read on other ranks
 * or by the driver) a host copy of the data_bytes follows at data_off,
 * aligned as in-slot data is, for the readers that cannot map the pool.
 */
typedef struct weir__tensor_rec {
    uint32_t magic;
    uint16_t version;
    uint8_t ndim;
    uint8_t flags;
    uint8_t dtype_code;
    uint8_t dtype_bits;
    uint16_t dtype_lanes;
    int32_t device_type;
    int32_t device_id;
    uint32_t data_off;
    uint32_t buf_index;
    uint32_t reserved0;
    uint64_t byte_offset;
    uint64_t data_bytes;
    int64_t shape[WEIR_TENSOR_MAX_NDIM];
    int64_t strides[WEIR_TENSOR_MAX_NDIM];
    uint8_t reserved[16];
} weir__tensor_rec;

_Static_assert(sizeof(weir__tensor_rec) == 192, "tensor record layout");
_Static_assert(offsetof(weir__tensor_rec, byte_offset) == 32, "tensor record layout");
_Static_assert(offsetof(weir__tensor_rec, shape) == 48, "tensor record layout");
_Static_assert(offsetof(weir__tensor_rec, strides) == 112, "tensor record layout");

/*
 * Validate t's metadata and compute the bytes its data spans from t->data
 * (weir_tensor_nbytes). `edge` names the edge in messages (may be NULL).
 */
int weir__tensor_span(const DLTensor *t, const char *edge, size_t *bytes);

/*
 * The offset from `slot` at which a CPU tensor's data goes: the first
 * 64-byte aligned address after the record.
 */
size_t weir__tensor_data_off(const void *slot);

/*
 * Write the record for meta into slot[0, cap). With in_slot
 * (WEIR__TENSOR_IN_SLOT), the data is to follow in the slot: on success
 * *total is data_off + data bytes (what to commit) and *data points to
 * where the caller writes them; cap too small: -EMSGSIZE naming the edge.
 * With 0 (device data in pool buffer buf_index) *total is sizeof the record
 * and *data is NULL. With WEIR__TENSOR_STAGED, device data in buffer
 * buf_index and room for its host copy after the record: *total and *data
 * as for in-slot data (the caller copies the device data there before it
 * commits). meta->data is not read. Errors name `edge`.
 */
#define WEIR__TENSOR_IN_SLOT 1
#define WEIR__TENSOR_STAGED 2
int weir__tensor_encode(void *slot, size_t cap, const DLTensor *meta, int in_slot,
                        uint32_t buf_index, const char *edge, size_t *total, void **data);

/*
 * Decode and validate the record in msg[0, len) (bytes from another process:
 * never trusted). On success fills *t (shape/strides point into msg; strides
 * NULL if contiguous; data = msg + data_off with F_INSLOT; device records:
 * *buf_index set, data NULL, or with F_STAGED the host copy at msg +
 * data_off) and returns 0. Otherwise -EBADMSG with a message naming
 * the edge and the field (magic, version, ndim, dtype, shape, strides that
 * overrun the buffer, data outside the message, misaligned data).
 */
int weir__tensor_decode(const void *msg, size_t len, const char *edge, DLTensor *t,
                        uint32_t *buf_index);
/* weir__tensor_decode requiring in-slot data aligned to `align` bytes only
 * (results: copies at 8-byte aligned addresses). */
int weir__tensor_decode_aligned(const void *msg, size_t len, const char *edge, DLTensor *t,
                                uint32_t *buf_index, size_t align);

/* What a tensor edge allows (weir_node_tensor): its device type and the
 * largest data in bytes (0: any). */
typedef struct weir__tensor_edge {
    const char *name;
    DLDeviceType device_type;
    size_t max_bytes;
} weir__tensor_edge;

/*
 * Check a producer's tensor against its edge before it is written: valid
 * metadata (weir__tensor_span), the edge's device type (-EINVAL naming both
 * devices), and data no larger than max_bytes (-EMSGSIZE). On success
 * *bytes is the data span. Errors name the edge.
 */
int weir__tensor_check_edge(const DLTensor *t, const weir__tensor_edge *e, size_t *bytes);

#endif
