/* SPDX-License-Identifier: MIT */
/*
 * tests/leak_proof.c - three tests that leak on purpose, so that the leak
 * fixture of tests/dag_util.h is seen to fail them. Not run on its own:
 * test_dag.c's `leak_fixture_fails_leaking_tests` runs this program and
 * expects each test to fail with a LEAK line (the heap leak only under
 * AddressSanitizer, where tests/heap_check.h sees it).
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <weir/weir.h>

#include "dag_util.h"

TestSuite(leak_proof, .init = dag_leak_init, .fini = dag_leak_fini, .timeout = 30);

Test(leak_proof, leaks_a_channel)
{
    weir_chan *c = weir_chan_create(NULL, NULL); /* an fd and a mapping, never freed */
    cr_assert(c, "%s", weir_errmsg());
}

Test(leak_proof, leaves_a_child)
{
    pid_t p = fork();
    cr_assert(p >= 0);
    if (p == 0)
        _exit(0); /* never waited for */
}

static void *volatile lost;

Test(leak_proof, leaks_heap_memory)
{
    lost = malloc(1000);
    cr_assert(lost);
    memset(lost, 1, 1000);
    lost = NULL; /* nothing reaches the block any more */
}
