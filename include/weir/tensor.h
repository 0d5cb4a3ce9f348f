/* SPDX-License-Identifier: MIT */
/*
 * weir/tensor.h - tensor edges. A tensor is DLPack's DLTensor (dtype, ndim,
 * shape, strides, byte_offset, device, data), so it crosses into PyTorch,
 * CuPy or JAX without a copy. Implemented in dag/tensor.c (marking edges),
 * engine/tensor.c (the calls below at run time, device pools),
 * channels/tensor.c (the record) and channels/device*.c (the devices).
 *
 * Devices: kDLCPU; kDLCUDA through the CUDA driver loaded at run time with
 * dlopen("libcuda.so.1") (a build without the CUDA headers, a machine
 * without the library or the device: weir_compile fails with -ENODEV and
 * "graph 'g': tensor edge 'E': cuda: ..."); WEIR_TENSOR_DEVICE_SIM in tests.
 *
 * Device edges and process actors: a process forked from one that had
 * initialised CUDA cannot use CUDA, and process actors are forked from the
 * process that calls weir_compile. So a dag with process actors and device
 * edges has its pools made by a small holder process that weir_compile
 * forks first, and the driver does not touch the device before the actors
 * are forked. Compile such dags before the program's first device call (a
 * program that already used the device gets -EBUSY from weir_compile,
 * naming the edge). A process actor restarted after the driver used the
 * device (a device argument, a thread actor on a device edge) cannot open
 * it and fails to start with CUDA's reason.
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
#include <weir/dag.h>

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

/* ---- graph API (dag/tensor.c builds, engine/tensor.c runs) ------------- */
/*
 * What a tensor edge accepts. A field left 0 takes its default, so
 * (weir_tensor_spec){.device = kDLCPU} accepts any CPU tensor.
 *   device     kDLCPU (data in the ring slot; 0 means kDLCPU), kDLCUDA, or
 *              WEIR_TENSOR_DEVICE_SIM (device data in a pool of `depth`
 *              buffers of max_bytes, one per in-flight message)
 *   device_id  the device the pool lives on (device edges)
 *   max_bytes  largest data span (byte_offset + extent); 0: any for CPU
 *              edges; required for device edges (the pool's buffer size)
 *   dtype      bits 0: any dtype; else code, bits and lanes must match
 *   ndim       0: any; 1..8: exactly that; WEIR_TENSOR_SCALAR: ndim 0
 *   shape      with ndim 1..8: shape[i] > 0 must match exactly, 0: any extent
 */
#define WEIR_TENSOR_SCALAR (-1)
typedef struct weir_tensor_spec {
    DLDeviceType device;
    int device_id;
    size_t max_bytes;
    DLDataType dtype;
    int ndim;
    int64_t shape[WEIR_TENSOR_MAX_NDIM];
} weir_tensor_spec;

/*
 * Mark value n (an input, a call, or a weir_ret() pick) as a tensor edge
 * whose data lives on devices of type dev, at most max_bytes (0: any; a
 * device edge needs it). Same as weir_node_tensor_spec with only device and
 * max_bytes set. Marking a value again replaces its spec. 0, or -EINVAL /
 * -EBUSY (frozen graph) with the reason naming the node. Builder thread.
 */
WEIR_API int weir_node_tensor(weir_node *n, DLDeviceType dev, size_t max_bytes);
/* As weir_node_tensor, with a dtype / ndim / shape the edge enforces: a
 * producer's tensor that does not match fails its execution with a message
 * naming the edge. spec is copied. */
WEIR_API int weir_node_tensor_spec(weir_node *n, const weir_tensor_spec *spec);

/*
 * Inside a method: a view of tensor input i. shape/strides point into
 * weir's memory, data is on the edge's device (CPU: the very bytes in the
 * ring slot, zero-copy, 64-byte aligned; device: this process's mapping of
 * the pool buffer, after this process's stream waits for the producer's
 * event). Valid until the method returns; read-only. 0, or -EINVAL (i out
 * of range, not a tensor edge) / -EBADMSG (a record that does not decode)
 * with the edge named.
 */
WEIR_API int weir_call_in_tensor(weir_call *c, unsigned i, DLTensor *t);

/*
 * Across ranks (a reader on another rank than the producer's): CPU data
 * travels in the message over the edge's link; device data is staged
 * through host memory: one device-to-host copy into the slot on the
 * producer's rank, one host-to-device copy per reader on the other rank
 * (into a buffer of that reader's own).
 *
 * Device work and ordering: weir orders a device tensor's producer and
 * readers with events on its own per-actor stream, which is ordered with
 * the device's default stream (CUDA: the legacy stream 0). Work a method
 * issues there is covered; work on other streams of its own must be
 * complete (synchronized) when the method returns.
 *
 * Inside a method: space for tensor output i described by meta (dtype,
 * ndim, shape, strides or NULL for contiguous, byte_offset, device; data is
 * not read). Returns where to put the bytes (the data pointer: byte_offset
 * is counted from it): a host pointer into the ring slot for CPU edges, a
 * device pointer of this process for device edges (write it with kernels
 * or copies on this process's stream), 64-byte aligned. NULL with the
 * reason (naming the edge) when meta does not fit the edge: the execution
 * then fails with that reason even if the method returns 0. Calling it
 * again for the same output returns the same space if meta is no larger.
 */
WEIR_API void *weir_call_out_tensor(weir_call *c, unsigned i, const DLTensor *meta);

/*
 * Driver: the argument for a tensor input: {t, sizeof *t}. The driver reads
 * *t and its data in weir_submit / weir_execute, checks it against the edge
 * (errors name the edge: the submit fails, nothing is sent) and copies
 * metadata and data: a CPU tensor's data (host memory) into the argument's
 * ring slot; a device tensor's data (a device address of this process on
 * the edge's device: CUDA, of the primary context) device-to-device into
 * the edge's pool buffer of that execution. t and its data must stay valid
 * until that call returns; after it the caller may reuse them.
 */
WEIR_API weir_buf weir_tensor_arg(const DLTensor *t);

/*
 * Output i of a result as a tensor: shape/strides/data point into the
 * result (into the output slot when the result is a view, see
 * result_view_bytes; else into its copy), data 64-byte aligned either way,
 * valid until weir_result_free(). dtype, ndim, shape, strides and
 * byte_offset are the producer's, exactly. A device edge's output arrives
 * as a host copy (device kDLCPU): weir copies it device-to-host once, after
 * the producer's method returned, into the output's slot.
 * 0, or -EINVAL (i out of range) / -EBADMSG (not a tensor) naming the output.
 */
WEIR_API int weir_result_tensor(const weir_result *r, unsigned i, DLTensor *t);

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
