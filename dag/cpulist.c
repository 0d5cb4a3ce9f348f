/* SPDX-License-Identifier: MIT */
/*
 * dag/cpulist.c - parsing and printing CPU lists (dag/cpulist.h). Pure:
 * no allocation, no global state.
 */
#include "dag/cpulist.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* One decimal number at *p (no sign, no blank); advances *p. -1 if none or too big. */
static long number(const char **p)
{
    const char *s = *p;
    long v = 0;
    if (*s < '0' || *s > '9')
        return -1;
    while (*s >= '0' && *s <= '9') {
        v = v * 10 + (*s - '0');
        if (v >= CPU_SETSIZE)
            return -2;
        s++;
    }
    *p = s;
    return v;
}

int weir__cpulist_parse(const char *s, cpu_set_t *out, char *why, size_t whyn)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    if (!s || !*s) {
        snprintf(why, whyn, "the list is empty (NULL means not pinned)");
        return -EINVAL;
    }
    const char *p = s;
    for (;;) {
        const char *item = p;
        long lo = number(&p), hi = lo;
        if (lo >= 0 && *p == '-') {
            p++;
            hi = number(&p);
        }
        if (lo == -2 || hi == -2) {
            snprintf(why, whyn, "CPU numbers go up to %d", CPU_SETSIZE - 1);
            return -EINVAL;
        }
        if (lo < 0 || hi < 0 || (*p && *p != ',')) {
            size_t n = strcspn(item, ",");
            if (n)
                snprintf(why, whyn, "'%.*s' is not a CPU number or a range N-M", (int)n, item);
            else
                snprintf(why, whyn, "an empty item");
            return -EINVAL;
        }
        if (hi < lo) {
            snprintf(why, whyn, "'%ld-%ld' is a range that goes down", lo, hi);
            return -EINVAL;
        }
        for (long c = lo; c <= hi; c++)
            CPU_SET((int)c, &set);
        if (!*p)
            break;
        p++; /* ',' */
    }
    *out = set;
    return 0;
}

int weir__cpulist_format(const cpu_set_t *set, char *buf, size_t n)
{
    size_t used = 0;
    int count = 0;
    if (n)
        buf[0] = '\0';
    for (int c = 0; c < CPU_SETSIZE; c++) {
        if (!CPU_ISSET(c, set))
            continue;
        int e = c;
        while (e + 1 < CPU_SETSIZE && CPU_ISSET(e + 1, set))
            e++;
        count += e - c + 1;
        int w = e == c ? snprintf(buf + used, used < n ? n - used : 0, "%s%d", used ? "," : "", c)
                       : snprintf(buf + used, used < n ? n - used : 0, "%s%d-%d", used ? "," : "", c, e);
        if (w > 0)
            used += (size_t)w;
        if (used >= n)
            used = n ? n - 1 : 0;
        c = e;
    }
    return count;
}
