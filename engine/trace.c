/* SPDX-License-Identifier: MIT */
/*
 * engine/trace.c - WEIR_TRACE=FILE.json: per-actor event buffers and the
 * Chrome trace file written at teardown (see engine/trace.h).
 *
 * The file: one track (tid) per actor in the dag's process (pid), named by
 * thread_name metadata ("actor a (process 1234)" for process actors); an
 * "X" slice per READ / CALL / WRITE with the execution index in args; a
 * flow ("s" in the write, "f" in each read it feeds) per message between
 * two actors; a counter track ("C") per channel's occupancy, sampled by
 * the stats publisher; otherData.dropped_events, and an instant event
 * saying so, when a buffer overflowed.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <weir/dag.h>

#include "engine/engine.h"
#include "engine/prof.h"
#include "engine/trace.h"

struct sample {
    uint64_t t;
    uint32_t chan;
    uint32_t pad;
    uint64_t occ;
};

struct weir__trace {
    char path[1024];
    void *map;
    size_t map_bytes;
    uint64_t cap;
    uint64_t start_ns;
    struct sample *samples; /* driver side: the publisher's occupancy samples */
    uint64_t nsamples, capsamples, dropped_samples;
};

static size_t buf_bytes(uint64_t cap)
{
    return (sizeof(struct weir__trace_buf) + cap * sizeof(struct weir__trace_ev) + 63) & ~(size_t)63;
}

struct weir__trace *weir__trace_new(struct weir_dag *d, int *err)
{
    *err = 0;
    const char *path = d->trace_opt ? d->trace_opt : getenv("WEIR_TRACE");
    if (!path || !*path)
        return NULL;
    struct weir__trace *t = calloc(1, sizeof *t);
    if (!t) {
        *err = -ENOMEM;
        return NULL;
    }
    snprintf(t->path, sizeof t->path, "%s", path);
    const char *ev = getenv("WEIR_TRACE_EVENTS");
    long cap = ev ? strtol(ev, NULL, 10) : 65536;
    t->cap = cap > 0 && cap <= (1L << 26) ? (uint64_t)cap : 65536;
    unsigned na = d->plan->nactors;
    t->map_bytes = (na ? na : 1) * buf_bytes(t->cap);
    t->map = mmap(NULL, t->map_bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    t->capsamples = t->cap;
    t->samples = malloc(t->capsamples * sizeof *t->samples);
    if (t->map == MAP_FAILED || !t->samples) {
        if (t->map != MAP_FAILED)
            munmap(t->map, t->map_bytes);
        free(t->samples);
        free(t);
        *err = -ENOMEM;
        return NULL;
    }
    for (unsigned a = 0; a < na; a++) {
        struct weir__trace_buf *b = (void *)((char *)t->map + a * buf_bytes(t->cap));
        b->cap = t->cap;
        d->actors[a].trace = b;
    }
    t->start_ns = weir_now_ns();
    return t;
}

void weir__trace_sample(struct weir__trace *t, uint64_t now, unsigned nchans,
                        const uint64_t *occupancy)
{
    for (unsigned c = 0; c < nchans; c++) {
        if (t->nsamples == t->capsamples) {
            t->dropped_samples++;
            continue;
        }
        t->samples[t->nsamples++] = (struct sample){.t = now, .chan = c, .occ = occupancy[c]};
    }
}

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

static double us(const struct weir__trace *t, uint64_t ns)
{
    return ns > t->start_ns ? (double)(ns - t->start_ns) / 1000.0 : 0.0;
}

void weir__trace_write(struct weir__trace *t, const struct weir_dag *d)
{
    if (!t)
        return;
    const struct weir__plan *p = d->plan;
    FILE *f = fopen(t->path, "w");
    if (!f) {
        fprintf(stderr, "weir: WEIR_TRACE: cannot write '%s': %s\n", t->path, strerror(errno));
        return;
    }
    int pid = (int)getpid();
    uint64_t dropped = t->dropped_samples;
    fprintf(f, "{\"traceEvents\":[\n{\"ph\":\"M\",\"name\":\"process_name\",\"pid\":%d,\"tid\":0,"
               "\"args\":{\"name\":",
            pid);
    char name[512];
    snprintf(name, sizeof name, "weir graph '%s' (%s)", p->graph, program_invocation_short_name);
    json_str(f, name);
    fprintf(f, "}}");
    for (unsigned a = 0; a < p->nactors; a++) {
        const struct actor_rt *ar = &d->actors[a];
        const struct weir__trace_buf *b = ar->trace;
        if (ar->pa->isolation == WEIR_PROCESS)
            snprintf(name, sizeof name, "actor %s (process %u)", ar->pa->name,
                     ar->actr ? __atomic_load_n(&ar->actr->pid, __ATOMIC_RELAXED) : 0);
        else if (!ar->nmembers)
            continue; /* fused: its calls are on its worker's track */
        else if (ar->nmembers > 1)
            snprintf(name, sizeof name, "worker %d (fused, actor %s first)", ar->pa->worker + 1,
                     ar->pa->name);
        else
            snprintf(name, sizeof name, "actor %s", ar->pa->name);
        fprintf(f, ",\n{\"ph\":\"M\",\"name\":\"thread_name\",\"pid\":%d,\"tid\":%u,\"args\":{\"name\":",
                pid, a + 1);
        json_str(f, name);
        fprintf(f, "}},\n{\"ph\":\"M\",\"name\":\"thread_sort_index\",\"pid\":%d,\"tid\":%u,"
                   "\"args\":{\"sort_index\":%u}}",
                pid, a + 1, a + 1);
        uint64_t n = __atomic_load_n(&b->n, __ATOMIC_ACQUIRE);
        dropped += __atomic_load_n(&b->dropped, __ATOMIC_RELAXED);
        for (uint64_t i = 0; i < n && i < b->cap; i++) {
            const struct weir__trace_ev *e = &b->ev[i];
            if (e->op >= ar->pa->nops)
                continue;
            const struct weir__plan_op *op = &ar->pa->ops[e->op];
            const char *kind = op->kind == WEIR__OP_READ    ? "READ"
                               : op->kind == WEIR__OP_CALL  ? "CALL"
                               : op->kind == WEIR__OP_WRITE ? "WRITE"
                                                            : NULL;
            if (!kind)
                continue;
            const struct weir__plan_actor *ca = &p->actors[op->actor]; /* CALL: fused too */
            char fused[2 * WEIR_MAX_NAME + 2];
            snprintf(fused, sizeof fused, "%s.%s", ca->name,
                     op->kind == WEIR__OP_CALL ? ca->methods[op->method].name : "");
            const char *what = op->kind != WEIR__OP_CALL ? p->chans[op->chan].name
                               : op->actor == a      ? ca->methods[op->method].name
                                                     : fused;
            snprintf(name, sizeof name, "%s %s", kind, what);
            fprintf(f, ",\n{\"ph\":\"X\",\"cat\":\"%s\",\"name\":", kind);
            json_str(f, name);
            fprintf(f, ",\"pid\":%d,\"tid\":%u,\"ts\":%.3f,\"dur\":%.3f,\"args\":{\"exec\":%llu}}",
                    pid, a + 1, us(t, e->t0), (double)(e->t1 - e->t0) / 1000.0,
                    (unsigned long long)e->exec);
            if (op->kind == WEIR__OP_CALL)
                continue;
            const struct weir__plan_chan *pc = &p->chans[op->chan];
            if (pc->writer == WEIR__PLAN_DRIVER)
                continue; /* flows between actors only */
            for (unsigned r = 0; r < pc->nreaders; r++) {
                if (pc->readers[r] == WEIR__PLAN_DRIVER)
                    continue;
                if (op->kind == WEIR__OP_READ && pc->readers[r] != (int32_t)a)
                    continue;
                unsigned long long id =
                    ((unsigned long long)e->exec * p->nchans + op->chan) * 64ull + r;
                if (op->kind == WEIR__OP_WRITE)
                    fprintf(f, ",\n{\"ph\":\"s\",\"cat\":\"flow\",\"name\":");
                else
                    fprintf(f, ",\n{\"ph\":\"f\",\"bp\":\"e\",\"cat\":\"flow\",\"name\":");
                json_str(f, pc->name);
                fprintf(f, ",\"id\":%llu,\"pid\":%d,\"tid\":%u,\"ts\":%.3f}", id, pid, a + 1,
                        op->kind == WEIR__OP_WRITE ? us(t, e->t0) : us(t, e->t1));
            }
        }
    }
    for (uint64_t i = 0; i < t->nsamples; i++) {
        const struct sample *s = &t->samples[i];
        snprintf(name, sizeof name, "occupancy %s", p->chans[s->chan].name);
        fprintf(f, ",\n{\"ph\":\"C\",\"name\":");
        json_str(f, name);
        fprintf(f, ",\"pid\":%d,\"tid\":0,\"ts\":%.3f,\"args\":{\"messages\":%llu}}", pid,
                us(t, s->t), (unsigned long long)s->occ);
    }
    if (dropped)
        fprintf(f, ",\n{\"ph\":\"i\",\"s\":\"g\",\"name\":\"weir: %llu events dropped "
                   "(buffers full: WEIR_TRACE_EVENTS=%llu per actor)\",\"pid\":%d,\"tid\":0,"
                   "\"ts\":0}",
                (unsigned long long)dropped, (unsigned long long)t->cap, pid);
    fprintf(f, "\n],\"displayTimeUnit\":\"ns\",\"otherData\":{\"graph\":");
    json_str(f, p->graph);
    fprintf(f, ",\"events_per_actor\":%llu,\"dropped_events\":%llu}}\n",
            (unsigned long long)t->cap, (unsigned long long)dropped);
    if (fclose(f) != 0)
        fprintf(stderr, "weir: WEIR_TRACE: writing '%s' failed: %s\n", t->path, strerror(errno));
}

void weir__trace_forget(struct weir__trace *t)
{
    if (t && t->map) {
        munmap(t->map, t->map_bytes);
        t->map = NULL;
    }
}

void weir__trace_free(struct weir__trace *t)
{
    if (!t)
        return;
    if (t->map)
        munmap(t->map, t->map_bytes);
    free(t->samples);
    free(t);
}
