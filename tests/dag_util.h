/* SPDX-License-Identifier: MIT */
/*
 * tests/dag_util.h - the leak fixture of the graph suites (test_dag.c,
 * test_proc.c): the channel suites' accounting of fds, shared mappings and
 * /dev/shm entries (tests/chan_util.h), plus "no child process is left".
 *
 * Why abort: Criterion 2.4.1 prints a failing cr_expect/cr_assert in .fini
 * but still reports the test as passed, while the TSan runner (tests/tsan/)
 * counts it. An abort() in .fini is a crash under both harnesses, so a leak
 * fails the test everywhere. The suites prove it with a test that leaks on
 * purpose and declares .signal = SIGABRT.
 */
#ifndef WEIR_TEST_DAG_UTIL_H
#define WEIR_TEST_DAG_UTIL_H

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>

#include "chan_util.h"

static inline void dag_leak_init(void)
{
    leak_init();
}

static inline void dag_leak_fini(void)
{
    int st;
    pid_t p = waitpid(-1, &st, WNOHANG);
    if (!(p == -1 && errno == ECHILD)) {
        fprintf(stderr, "LEAK: a child process is left (waitpid gave %d)\n", (int)p);
        abort();
    }
    leak_fini();
}

#endif
