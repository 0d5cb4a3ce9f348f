/* SPDX-License-Identifier: MIT */
/*
 * channels/barrier.c - asymmetric memory barriers.
 *
 * Design notes. Waking a sleeper without losing the wake-up is a Dekker
 * pattern: the progressing side stores (write_seq, read_seq) then loads
 * (sleeper flags); the sleeping side stores (sleeper flag) then loads
 * (write_seq, read_seq). Both need a full store->load barrier, which on
 * x86 costs a locked instruction on every commit and every release - it
 * measured as 3x the throughput of the whole 8-byte message path.
 *
 * The barrier is moved to the side that is about to sleep anyway: the fast
 * side uses only a compiler barrier (weir__light_barrier), and the slow
 * side issues membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED), which makes
 * every running thread of every process registered for it execute a full
 * barrier before it returns (weir__heavy_barrier). Every process that
 * touches a channel registers (at create/open/register, and in the child
 * after fork through pthread_atfork). If the kernel lacks the command the
 * light barrier becomes a real fence and the heavy one a plain fence, which
 * is the symmetric protocol again.
 */
#include <linux/membarrier.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "channels/barrier.h"

int weir__asym_barrier = 0;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static int membarrier(int cmd, unsigned flags)
{
    return (int)syscall(__NR_membarrier, cmd, flags, 0);
}

static void register_self(void)
{
    if (membarrier(MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED, 0) < 0)
        weir__store_relaxed(&weir__asym_barrier, 0); /* process-local flag; pthread_once orders it */
}

static void setup(void)
{
    int q = membarrier(MEMBARRIER_CMD_QUERY, 0);
    if (q < 0 || !(q & MEMBARRIER_CMD_GLOBAL_EXPEDITED) ||
        membarrier(MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED, 0) < 0)
        return;
    weir__store_relaxed(&weir__asym_barrier, 1); /* published by pthread_once */
    pthread_atfork(NULL, NULL, register_self);
}

void weir__barrier_init(void)
{
    pthread_once(&once, setup);
}

void weir__heavy_barrier(void)
{
    if (weir__load_relaxed(&weir__asym_barrier) &&
        membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED, 0) == 0)
        return;
    weir__fence_seq_cst();
}
