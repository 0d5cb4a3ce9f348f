/* SPDX-License-Identifier: MIT */
/*
 * weir/graph.h - declaring a static graph of actors and method calls
 * (implemented in dag/: the builder, the graph IR and its validation).
 *
 * A graph is built once, by one thread, then compiled (weir/dag.h). Nodes
 * and actors are owned by their graph and freed with it. Builder calls
 * return NULL (or a negative errno) on failure with the reason in
 * weir_errmsg(); a failed call leaves the graph as it was. Once a graph
 * has been compiled it is frozen: further builder calls fail with -EBUSY
 * (compile a new graph instead), so a dag never disagrees with its graph.
 */
#ifndef WEIR_GRAPH_H
#define WEIR_GRAPH_H

#include <weir/common.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct weir_graph weir_graph;
typedef struct weir_actor weir_actor;
typedef struct weir_node weir_node; /* owned by its graph */
typedef struct weir_call weir_call; /* one method invocation; valid inside the method only */

/*
 * A method reads its inputs and writes its outputs through `call`; state
 * is the actor's state pointer. Return 0, or call weir_call_fail() and
 * return its value (any non-zero return fails the execution).
 */
typedef int (*weir_method_fn)(weir_call *call, void *state);

#define WEIR_THREAD 0
#define WEIR_PROCESS 1

#define WEIR_MAX_NAME 64     /* graph, actor and method names: 1..64 bytes */
#define WEIR_MAX_CALL_IO 64  /* inputs and outputs of one call */

/* A new, empty graph named `name` (copied). The caller owns it. */
WEIR_API weir_graph *weir_graph_new(const char *name);

/* Free the graph, its actors and nodes. Dags compiled from it stay valid. NULL: no-op. */
WEIR_API void weir_graph_free(weir_graph *g);

typedef struct weir_actor_opts {
    void *state;   /* handed to every method of this actor; owned by the caller */
    int node;      /* rank that hosts the actor; 0 is the driver's */
    int isolation; /* WEIR_THREAD (default) or WEIR_PROCESS */
    const char *cpus; /* pin to these CPUs: a list as `taskset -c` takes it ("2", "0,2-3");
                         NULL: not pinned (the default, and what a zero-filled struct
                         means). Copied by weir_actor_new. A list that does not parse, or
                         names a CPU this process may not run on, fails weir_compile
                         with -EINVAL naming the actor. (Was `int cpu`, whose zero
                         value pinned to CPU 0.) */
    /*
     * Optional. init runs once in the actor's own thread or process before
     * its first execution (so a WEIR_PROCESS actor creates what `state`
     * points to where it is used: a model, an open file); a non-zero return
     * makes the actor dead and fails every execution with its text.
     * fini runs there after the last execution, at teardown.
     * A WEIR_PROCESS actor works on its own copy of *state (fork): changes
     * it makes are not seen by the driver.
     */
    int (*init)(void *state);
    void (*fini)(void *state);
    unsigned max_restarts; /* WEIR_PROCESS: fresh processes after a death; 0: none */
    /*
     * Placement of a WEIR_THREAD actor on the dag's worker threads
     * (weir_compile_opts.threads, <weir/dag.h>): 0 (the default) lets the
     * compiler place it; k in 1..threads runs it on worker k of its rank
     * (workers are numbered from 1, so a zero-filled struct means
     * "automatic"), fused with the other actors placed there; WEIR_WORKER_ALONE gives it a
     * thread of its own that no other actor shares (an actor whose methods
     * block, for instance, so it never stalls the others). A WEIR_PROCESS
     * actor always runs alone: it must leave this 0. Checked by
     * weir_compile (-EINVAL naming the actor).
     */
    int worker;
} weir_actor_opts;

#define WEIR_WORKER_AUTO 0   /* weir_actor_opts.worker: placed by the compiler */
#define WEIR_WORKER_ALONE (-1) /* weir_actor_opts.worker: a thread of its own */

/*
 * Add an actor. Names are unique within a graph (-EEXIST otherwise).
 * opts may be NULL (state NULL, node 0, thread isolation, no pinning).
 */
WEIR_API weir_actor *weir_actor_new(weir_graph *g, const char *name, const weir_actor_opts *opts);

/* The node for argument argi of every execution (the same node for the same argi). */
WEIR_API weir_node *weir_input(weir_graph *g, unsigned argi);

/*
 * A call of method `method` of actor a, with nin inputs (nodes of the same
 * graph: inputs, single-output calls, or weir_ret() picks) and nout >= 1
 * outputs. Binding a method name again (another call of the same method)
 * must use the same fn, nin and nout. Errors name the actor and method:
 * -EINVAL (nin or nout out of range, NULL input, a multi-output call used
 * directly as an input), -EXDEV (an input from another graph).
 */
WEIR_API weir_node *weir_bind(weir_actor *a, const char *method, weir_method_fn fn,
                              weir_node *const *in, unsigned nin, unsigned nout);

/* Output i of a call (needed for calls with nout > 1; allowed for any call). */
WEIR_API weir_node *weir_ret(weir_node *call, unsigned i);

/*
 * Size hint for the channel that carries value n (an input, a
 * single-output call, or a weir_ret() pick): its slots start at `bytes`
 * instead of weir_compile_opts.buffer_bytes, so a dag whose images are
 * 256 KiB keeps its 8-byte argument channels small. A message larger than
 * the slot still grows the channel; a value passed inside one actor has no
 * channel and the hint has no effect there. 0 restores the default. The
 * plan records each channel's size (weir-plan show). 0, or -EINVAL (NULL,
 * a multi-output call: hint its weir_ret() picks; bytes over
 * WEIR_CHAN_MAX_SLOT), or -EBUSY once the graph was compiled.
 */
WEIR_API int weir_node_buffer_bytes(weir_node *n, size_t bytes);

/* weir_node_transport: back to weir_compile_opts.transport. */
#define WEIR_TRANSPORT_DEFAULT (-1)

/*
 * Transport of the links that carry value n's channel when its writer and
 * readers sit on different ranks (the per-edge override of
 * weir_compile_opts.transport): WEIR_TRANSPORT_URING or WEIR_TRANSPORT_ZMQ
 * (<weir/link.h>), or WEIR_TRANSPORT_DEFAULT. The node rules are
 * weir_node_buffer_bytes'. Channels between two ranks share one connection
 * per transport, so an override opens a second connection between the
 * ranks it crosses. The plan records each channel's transport (weir-plan
 * show lists the overrides); a transport this library lacks fails the
 * compile on every rank, naming the channel. 0, or -EINVAL (NULL, a
 * multi-output call, an unknown transport), or -EBUSY once compiled.
 */
WEIR_API int weir_node_transport(weir_node *n, int transport);

/*
 * Declare the graph's outputs, in order (replaces an earlier declaration).
 * Each must be a call output of this graph.
 */
WEIR_API int weir_output(weir_graph *g, weir_node *const *outs, unsigned n);

/* The graph's name. */
WEIR_API const char *weir_graph_name(const weir_graph *g);

#ifdef __cplusplus
}
#endif
#endif
