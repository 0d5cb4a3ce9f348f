/* SPDX-License-Identifier: MIT */
/* tools/plan_svg.h - `weir-plan svg`: the plan as one SVG (tools/plan_svg.c). */
#ifndef WEIR_PLAN_SVG_H
#define WEIR_PLAN_SVG_H

#include <stdio.h>

#include "compiler/plan.h"

/* Write an SVG of plan p to out: the graph drawn by Graphviz's `dot` (when it
 * is on PATH; otherwise a note on stderr and the schedules alone) beside
 * the per-actor schedules of `weir-plan show`. 0, or -1 with the reason on stderr. */
int weir_plan_svg(struct weir__plan *p, FILE *out);

#endif
