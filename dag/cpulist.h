/* SPDX-License-Identifier: MIT */
/*
 * dag/cpulist.h - CPU lists as `taskset -c` takes them ("2", "0,2-3"):
 * weir_actor_opts.cpus, checked by the builder, carried by the plan in
 * canonical form, applied by the engine (dag/cpulist.c).
 */
#ifndef WEIR_CPULIST_H
#define WEIR_CPULIST_H

#include <sched.h>
#include <stddef.h>

/*
 * Parse s: comma-separated items, each a CPU number N or a range N-M
 * (N <= M), numbers below CPU_SETSIZE, no blanks, no empty item. 0 and
 * *set filled, or -EINVAL with the reason in why (one clause, e.g.
 * "'3-1' is a range that goes down") and *set untouched.
 */
int weir__cpulist_parse(const char *s, cpu_set_t *set, char *why, size_t whyn);

/* The canonical list of set ("0,2-3") into buf (NUL-terminated; truncated
 * to n). Returns the number of CPUs in set. */
int weir__cpulist_format(const cpu_set_t *set, char *buf, size_t n);

#endif
