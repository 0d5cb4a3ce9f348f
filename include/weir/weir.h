/* SPDX-License-Identifier: MIT */
/* weir/weir.h - umbrella header: the whole public API (include/weir/; each
 * header names the folder that implements it). */
#ifndef WEIR_H
#define WEIR_H
#include <weir/common.h>
#include <weir/chan.h>
#include <weir/stats.h>
#include <weir/graph.h>
#include <weir/dag.h>
#include <weir/link.h>
#include <weir/prof.h>
#include <weir/tensor.h>
#include <weir/cluster.h>
#endif
