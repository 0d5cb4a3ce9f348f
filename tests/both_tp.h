/* SPDX-License-Identifier: MIT */
/*
 * tests/both_tp.h - one test body, two Criterion tests: NAME over the
 * io_uring link transport, zmq_NAME over ZeroMQ (skipped in a build
 * without it). The including file defines `static int g_tp`, which the
 * body passes as weir_link_opts.transport.
 */
#ifndef WEIR_TESTS_BOTH_TP_H
#define WEIR_TESTS_BOTH_TP_H

#include <criterion/criterion.h>
#include <weir/link.h>

#include "weir_config.h"

#define BOTH_TP(suite, name, tmo, ...)                                                             \
    static void name##_body(void);                                                                 \
    Test(suite, name, .timeout = tmo, ##__VA_ARGS__)                                               \
    {                                                                                              \
        g_tp = WEIR_TRANSPORT_URING;                                                               \
        name##_body();                                                                             \
    }                                                                                              \
    Test(suite, zmq_##name, .timeout = tmo, ##__VA_ARGS__)                                         \
    {                                                                                              \
        if (!WEIR_HAVE_ZMQ_TRANSPORT)                                                              \
            cr_skip_test("this build has no ZeroMQ transport");                                    \
        g_tp = WEIR_TRANSPORT_ZMQ;                                                                 \
        name##_body();                                                                             \
    }                                                                                              \
    static void name##_body(void)

#endif
