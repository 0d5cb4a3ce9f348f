/* SPDX-License-Identifier: MIT */
/*
 * tests/tnode_util.h - what the tensor graphs across ranks compute
 * (tests/tnode_rank.c runs them, tests/test_nodes.c checks the sums):
 * every edge carries an R x C tensor of 4-byte elements whose layout and
 * dtype depend on the execution and the edge, so records cross the links
 * in every form: contiguous (strides NULL), transposed, padded rows with an
 * odd byte_offset, and rows reversed by a negative stride.
 *
 * Element (i, j) of the argument of execution e is
 *   x(e, i, j) = e * 2654435761 + i * 1000 + j            (u32, wrapping)
 * and stage k maps each element v to v * 3 + k + 1 (chain) or as the shape
 * says (diamond: see tnode_rank.c's header).
 */
#ifndef WEIR_TEST_TNODE_UTIL_H
#define WEIR_TEST_TNODE_UTIL_H

#include <stdint.h>
#include <string.h>

#include <dlpack/dlpack.h>

static inline uint32_t tn_x(uint64_t e, int64_t i, int64_t j)
{
    return (uint32_t)(e * 2654435761u + (uint64_t)i * 1000u + (uint64_t)j);
}

static inline uint32_t tn_step(uint32_t v, unsigned k)
{
    return v * 3u + k + 1u;
}

/* Chain of `stages` stages: the output element. */
static inline uint32_t tn_chain(uint64_t e, int64_t i, int64_t j, unsigned stages)
{
    uint32_t v = tn_x(e, i, j);
    for (unsigned k = 0; k < stages; k++)
        v = tn_step(v, k);
    return v;
}

/* Diamond: src y = 3x+1; left l = 3y+2 (k 1); right r = 3y+3 (k 2); join l ^ r + x. */
static inline uint32_t tn_diamond(uint64_t e, int64_t i, int64_t j)
{
    uint32_t x = tn_x(e, i, j), y = tn_step(x, 0);
    return (tn_step(y, 1) ^ tn_step(y, 2)) + x;
}

/* The 4-byte dtypes edges rotate through (edge k: tn_dtype(k)). */
static inline DLDataType tn_dtype(unsigned k)
{
    static const DLDataType t[4] = {
        {kDLUInt, 32, 1}, {kDLInt, 32, 1}, {kDLUInt, 16, 2}, {kDLFloat, 32, 1}};
    return t[k % 4];
}

/* Layout of edge k at execution e, for an R x C tensor: strides (NULL for
 * contiguous: st unused) and byte_offset. */
static inline int64_t *tn_layout(uint64_t e, unsigned k, int64_t R, int64_t C, int64_t st[2],
                                 uint64_t *byte_offset)
{
    switch ((e + k) % 4) {
    case 0:
        *byte_offset = 0;
        return NULL;
    case 1: /* transposed (column-major) */
        st[0] = 1;
        st[1] = R;
        *byte_offset = 64;
        break;
    case 2: /* rows padded to C + 3, an offset that is no multiple of 8 */
        st[0] = C + 3;
        st[1] = 1;
        *byte_offset = 20;
        break;
    default: /* rows reversed */
        st[0] = -C;
        st[1] = 1;
        *byte_offset = (uint64_t)((R - 1) * C * 4);
        break;
    }
    return st;
}

/* Byte position of element (i, j) from data. */
static inline int64_t tn_at(const int64_t *strides, uint64_t byte_offset, int64_t C, int64_t i,
                            int64_t j)
{
    int64_t s0 = strides ? strides[0] : C, s1 = strides ? strides[1] : 1;
    return (int64_t)byte_offset + 4 * (i * s0 + j * s1);
}

/* Largest span any layout above takes (max_bytes of the edges). */
static inline size_t tn_max_span(int64_t R, int64_t C)
{
    size_t padded = (size_t)(20 + 4 * ((R - 1) * (C + 3) + C));
    size_t transposed = (size_t)(64 + 4 * R * C);
    return padded > transposed ? padded : transposed;
}

#endif
