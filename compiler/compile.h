/* SPDX-License-Identifier: MIT */
/* compiler/compile.h - graph -> plan lowering and the deadlock check. */
#ifndef WEIR_COMPILE_H
#define WEIR_COMPILE_H

#include <weir/dag.h>

#include "compiler/plan.h"

/* Lower a validated graph to a new plan (*out, owned by the caller). */
int weir__compile_plan(const weir_graph *g, const weir_compile_opts *o, struct weir__plan **out);

/*
 * Simulate the plan's schedules and the driver against the channel depths;
 * -EDEADLK with the cycle of waiting parties in weir_errmsg() if they can
 * block forever, else 0.
 */
int weir__plan_deadlock_check(const struct weir__plan *p);

#endif
