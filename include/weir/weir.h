/* SPDX-License-Identifier: MIT */
/* weir/weir.h - umbrella header: the whole public API. */
#ifndef WEIR_H
#define WEIR_H
#include <weir/common.h>
#include <weir/chan.h>
#include <weir/stats.h>
#include <weir/graph.h>
#include <weir/dag.h>
#include <weir/tensor.h>
#endif
