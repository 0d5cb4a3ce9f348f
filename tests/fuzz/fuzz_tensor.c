/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/fuzz_tensor.c - libFuzzer target for the tensor record decoder
 * (channels/tensor.c): a reader decodes bytes another process wrote.
 *
 * The input is copied to a 64-byte aligned buffer (slots are aligned) and
 * decoded. A refusal must say why; an accepted record must describe a
 * tensor whose every byte lies inside the message (in-slot data is read
 * whole, so ASan catches any overrun), whose metadata re-validates, and
 * which re-encodes to the same record (in-slot, staged device copy, or
 * device only; the same flags and buffer index).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "channels/tensor.h"
#include <weir/weir.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t cap = (size + 63) & ~(size_t)63;
    unsigned char *buf = aligned_alloc(64, cap ? cap : 64);
    if (!buf)
        __builtin_trap();
    memcpy(buf, data, size);
    DLTensor t;
    uint32_t bi = 0;
    int rc = weir__tensor_decode(buf, size, "fuzz", &t, &bi);
    if (rc < 0) {
        if (rc != -EBADMSG || weir_errmsg()[0] == '\0')
            __builtin_trap();
    } else {
        size_t span = 0;
        if (weir_tensor_nbytes(&t, &span) < 0)
            __builtin_trap(); /* accepted metadata must re-validate */
        const weir__tensor_rec *r = (const weir__tensor_rec *)buf;
        if (span > r->data_bytes)
            __builtin_trap();
        if (t.data) {
            if ((uintptr_t)t.data % WEIR_TENSOR_ALIGN)
                __builtin_trap();
            volatile unsigned char acc = 0;
            const unsigned char *p = t.data;
            for (size_t i = 0; i < r->data_bytes; i++)
                acc ^= p[i];
            (void)acc;
        }
        /* Re-encode the metadata: same shape of record. */
        /* In-slot data is within the message, so span <= size; a device
         * record needs the record only. */
        size_t rcap = sizeof(weir__tensor_rec) + (t.data ? ((span + 63) & ~(size_t)63) : 0);
        unsigned char *re = aligned_alloc(64, rcap);
        if (!re)
            __builtin_trap();
        size_t total = 0;
        void *d = NULL;
        int mode = (r->flags & WEIR__TENSOR_F_STAGED) ? WEIR__TENSOR_STAGED
                   : t.data                            ? WEIR__TENSOR_IN_SLOT
                                                       : 0;
        if (weir__tensor_encode(re, rcap, &t, mode, bi, "fuzz", &total, &d) < 0)
            __builtin_trap();
        const weir__tensor_rec *q = (const weir__tensor_rec *)re;
        if (q->flags != r->flags || q->buf_index != r->buf_index)
            __builtin_trap(); /* in-slot, staged or device: the same kind of record */
        if (q->ndim != r->ndim || q->byte_offset != r->byte_offset ||
            memcmp(q->shape, r->shape, sizeof(int64_t) * r->ndim) != 0 ||
            ((r->flags & WEIR__TENSOR_F_STRIDES) &&
             memcmp(q->strides, r->strides, sizeof(int64_t) * r->ndim) != 0))
            __builtin_trap();
        free(re);
    }
    free(buf);
    return 0;
}
