/* SPDX-License-Identifier: MIT */
/*
 * tests/leak_proof.c - two tests that leak on purpose, so that the leak
 * fixture of tests/dag_util.h is seen to fail them. Not run on its own:
 * test_dag.c's `leak_fixture_fails_leaking_tests` runs this program and
 * expects both tests to fail with a LEAK line each.
 */
#include <criterion/criterion.h>
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
