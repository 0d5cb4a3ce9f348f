/* SPDX-License-Identifier: MIT */
/*
 * weir/cluster.h - several machines (SPMD): which rank this process is, and
 * how many there are (engine/cluster_env.c).
 *
 * Every rank runs the same program, builds the same graph and calls
 * weir_compile(). A rank learns its place from its environment, so any
 * launcher serves:
 *
 *   WEIR_RANK, WEIR_WORLD_SIZE   set by weir-run, or by hand; they win over
 *                                everything below
 *   OMPI_COMM_WORLD_RANK/_SIZE   Open MPI's mpirun
 *   PMI_RANK, PMI_SIZE           MPICH / Hydra
 *   RANK, WORLD_SIZE             torchrun (with MASTER_ADDR, MASTER_PORT)
 *   SLURM_PROCID, SLURM_NTASKS   Slurm's srun
 *   JOB_COMPLETION_INDEX         a Kubernetes indexed Job (it has no size
 *                                variable: set WEIR_WORLD_SIZE beside it)
 *
 * The first rank variable present in that order gives the rank (an inner
 * launcher before an outer one: torchrun inside a Slurm step is torchrun's);
 * the size comes from WEIR_WORLD_SIZE or that launcher's own size variable,
 * which must agree when both are set. WEIR_COORD (HOST:PORT of rank 0's
 * control endpoint; MASTER_ADDR + MASTER_PORT serve when it is absent),
 * WEIR_BIND (this rank's data address) and WEIR_TOKEN (a secret every rank
 * presents when it joins) complete the picture. A variable that is missing,
 * malformed or contradicts another is an error naming it.
 */
#ifndef WEIR_CLUSTER_H
#define WEIR_CLUSTER_H

#include <weir/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Largest world weir accepts (ranks 0 .. WEIR_MAX_RANKS - 1). */
#define WEIR_MAX_RANKS 1024

/*
 * This process's rank: 0 when not launched as several. Reads the
 * environment on every call (any thread). A negative errno when the
 * variables are malformed or contradict each other (-EINVAL), with
 * weir_errmsg() naming the variable, e.g.
 * "cluster environment: WEIR_RANK=4 is not below WEIR_WORLD_SIZE=4".
 * Only the rank and size variables are judged here; weir_compile() of a
 * multi-rank graph also needs the coordinator (WEIR_COORD ...).
 */
WEIR_API int weir_rank(void);

/* The number of ranks: 1 when not launched as several; errors as weir_rank(). */
WEIR_API int weir_world_size(void);

#ifdef __cplusplus
}
#endif
#endif
