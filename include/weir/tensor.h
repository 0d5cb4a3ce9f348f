/* SPDX-License-Identifier: MIT */
/*
 * weir/tensor.h - tensor edges. A tensor is DLPack's DLTensor (dtype, ndim,
 * shape, strides, byte_offset, device, data), so it crosses into PyTorch,
 * CuPy or JAX without a copy.
 *
 * A tensor edge carries the tensor's metadata in its ring slot (a fixed
 * record, see channels/tensor.h) and its data either in the same slot
 * (kDLCPU: 64-byte aligned, zero-copy) or in a device buffer of the edge's
 * pool.
 *
 * Mutability rule (the contract every producer and reader relies on):
 *   - a producer writes only into space it reserved for the current
 *     message (the pointer weir hands it for that output), never into a
 *     tensor it already committed or one it received;
 *   - a slot (and its device buffer) is reused only after every registered
 *     reader released it, so a reader's view never changes under it, and
 *     it must not be used after the method that received it returned;
 *   - readers get read-only views: writing through them is undefined.
 *
 * Limits: ndim <= WEIR_TENSOR_MAX_NDIM; dtype bits a multiple of 8 and
 * lanes >= 1; shape[i] >= 0; strides (in elements, NULL: contiguous,
 * row-major) are preserved as given, never compacted, and the bytes they
 * reach (from data + byte_offset) must lie inside the tensor's buffer.
 */
#ifndef WEIR_TENSOR_H
#define WEIR_TENSOR_H

#include <dlpack/dlpack.h>
#include <weir/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Largest ndim a tensor edge carries. */
#define WEIR_TENSOR_MAX_NDIM 8
/* Alignment of the data of a CPU tensor in its ring slot. */
#define WEIR_TENSOR_ALIGN 64
/*
 * The simulated device (channels/device_sim.c): DLPack's extension device
 * type, reserved for testing. A test backend: separate memory that the
 * host cannot dereference (copies only), fd-passed handles and events, so
 * the device protocol of tensor edges runs on machines without a GPU. Not
 * a device for real work; nothing selects it unless asked for by type.
 */
#define WEIR_TENSOR_DEVICE_SIM kDLExtDev

/*
 * The number of bytes a tensor's data occupies from its data pointer:
 * byte_offset plus the extent its shape and strides reach (0 if any
 * dimension is 0 and byte_offset is 0). Validates t first (ndim, dtype,
 * shape, strides that do not reach below data); on failure returns a
 * negative errno (-EINVAL, -EOVERFLOW) with the reason in weir_errmsg().
 * `*bytes` is written on success only. Pure; any thread.
 */
WEIR_API int weir_tensor_nbytes(const DLTensor *t, size_t *bytes);

#ifdef __cplusplus
}
#endif
#endif
