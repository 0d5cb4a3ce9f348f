/* SPDX-License-Identifier: MIT */
/*
 * tests/view_util.h - large outputs for the zero-copy result tests
 * (test_dag.c, test_proc.c): a payload that is a function of the execution
 * index (its length and every byte), methods that produce and pass it on,
 * and a checksum over every byte.
 *
 * Lengths: mostly 64 KiB (a view), every 5th execution 100000 bytes (more
 * than a 64 KiB slot: the channel grows while older views are held), every
 * 7th exactly WEIR_DEFAULT_RESULT_VIEW_BYTES (the smallest view), every
 * 11th 100 bytes (a copy). The methods run in actor threads or processes,
 * so they report a bad input by failing the execution, never by asserting.
 */
#ifndef WEIR_TESTS_VIEW_UTIL_H
#define WEIR_TESTS_VIEW_UTIL_H

#include <stdint.h>
#include <string.h>

#include <weir/weir.h>

static inline size_t big_len(uint64_t x)
{
    if (x % 11 == 10)
        return 100;
    if (x % 7 == 6)
        return WEIR_DEFAULT_RESULT_VIEW_BYTES;
    if (x % 5 == 4)
        return 100000;
    return 65536;
}

/* Byte j of the payload of execution x, after `stages` copy stages (each adds 1 to byte 0). */
static inline void big_fill(uint8_t *p, size_t n, uint64_t x)
{
    uint64_t w = x * 0x9e3779b97f4a7c15ull + 1;
    size_t j = 0;
    for (; j + 8 <= n; j += 8) {
        uint64_t v = w ^ (j * 0x100000001b3ull);
        memcpy(p + j, &v, 8);
    }
    for (; j < n; j++)
        p[j] = (uint8_t)(w >> (j % 8 * 8)) ^ (uint8_t)j;
}

/* FNV-1a over 8-byte words and then the tail bytes: every byte counts. */
static inline uint64_t big_hash(const void *data, size_t n)
{
    const uint8_t *p = data;
    uint64_t h = 0xcbf29ce484222325ull ^ n;
    size_t j = 0;
    for (; j + 8 <= n; j += 8) {
        uint64_t v;
        memcpy(&v, p + j, 8);
        h = (h ^ v) * 0x100000001b3ull;
    }
    for (; j < n; j++)
        h = (h ^ p[j]) * 0x100000001b3ull;
    return h;
}

/* The payload of execution x after `stages` stages, hashed. */
static inline uint64_t big_expect_hash(uint64_t x, int stages, uint8_t *scratch)
{
    size_t n = big_len(x);
    big_fill(scratch, n, x);
    scratch[0] = (uint8_t)(scratch[0] + stages);
    return big_hash(scratch, n);
}

/* Method: input 0 is an int64 execution index; output 0 its payload (stage 1). */
static inline int big_make(weir_call *c, void *st)
{
    (void)st;
    size_t n;
    const int64_t *x = weir_call_in(c, 0, &n);
    if (n != sizeof *x || (uint64_t)*x != weir_call_exec(c))
        return weir_call_fail(c, "bad index input (%zu bytes)", n);
    size_t len = big_len((uint64_t)*x);
    uint8_t *out = weir_call_out(c, 0, len);
    if (!out)
        return weir_call_fail(c, "no output space: %s", weir_errmsg());
    big_fill(out, len, (uint64_t)*x);
    out[0]++;
    return 0;
}

/* Method: copy input 0 to output 0, adding 1 to byte 0 (one more stage). */
static inline int big_pass(weir_call *c, void *st)
{
    (void)st;
    size_t n;
    const uint8_t *in = weir_call_in(c, 0, &n);
    if (n != big_len(weir_call_exec(c)))
        return weir_call_fail(c, "input of %zu bytes at execution %llu", n,
                              (unsigned long long)weir_call_exec(c));
    uint8_t *out = weir_call_out(c, 0, n);
    if (!out)
        return weir_call_fail(c, "no output space: %s", weir_errmsg());
    memcpy(out, in, n);
    out[0]++;
    return 0;
}

#endif
