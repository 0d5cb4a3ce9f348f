/* SPDX-License-Identifier: MIT */
/* dag/graph_internal.h - the graph IR built by the builder API (weir/graph.h). */
#ifndef WEIR_GRAPH_INTERNAL_H
#define WEIR_GRAPH_INTERNAL_H

#include <stdbool.h>
#include <weir/graph.h>
#include <weir/tensor.h>

enum weir__node_kind { WEIR__N_INPUT, WEIR__N_CALL, WEIR__N_RET };

struct weir__method {
    char name[WEIR_MAX_NAME + 1];
    weir_method_fn fn;
    unsigned nin, nout;
};

struct weir_actor {
    weir_graph *g;
    unsigned idx;
    char name[WEIR_MAX_NAME + 1];
    weir_actor_opts opts; /* opts.cpus points at cpus */
    char *cpus;           /* the actor's own copy of the CPU list, NULL: not pinned */
    unsigned nmethods;
    struct weir__method *methods;
};

struct weir_node {
    weir_graph *g;
    unsigned id;   /* index in g->nodes */
    int kind;      /* enum weir__node_kind */
    unsigned argi; /* INPUT */
    /* CALL */
    weir_actor *actor;
    unsigned method; /* index in actor->methods */
    unsigned nin, nout;
    weir_node **in;
    /* RET */
    weir_node *call;
    unsigned out;
    /* weir_node_buffer_bytes: slot size hint of this value's channel; 0: default */
    size_t buffer_bytes;
    /* weir_node_transport + 1: its channel's links' transport; 0: the compile option */
    int transport1;
};

/* A value marked as a tensor edge (dag/tensor.c): the INPUT node, or the
 * CALL node and its output index. */
struct weir__tensor_mark {
    unsigned node;
    unsigned out;
    weir_tensor_spec spec;
};

struct weir_graph {
    char name[WEIR_MAX_NAME + 1];
    unsigned nactors, cap_actors;
    weir_actor **actors;
    unsigned nnodes, cap_nodes;
    weir_node **nodes;
    unsigned nouts;
    weir_node **outs;
    unsigned ntensors, cap_tensors;
    struct weir__tensor_mark *tensors; /* weir_node_tensor marks */
    bool frozen;
};

/* The (call, output index) a node stands for as a value; false for inputs. */
static inline bool weir__node_value(const weir_node *n, const weir_node **call, unsigned *out)
{
    if (n->kind == WEIR__N_CALL) {
        *call = n;
        *out = 0;
        return true;
    }
    if (n->kind == WEIR__N_RET) {
        *call = n->call;
        *out = n->out;
        return true;
    }
    return false;
}

/*
 * Checks of actor options that depend on the machine or on features not built
 * yet, run by weir_compile() before lowering (dag/graph.c): restarts need
 * process isolation, CPUs must be usable by this process, node must be 0.
 * 0, or a negative errno with the message naming the actor.
 */
int weir__graph_check_actors(const weir_graph *g);

/* The tensor mark of value (node id, out) of g, or NULL (dag/tensor.c). */
const struct weir__tensor_mark *weir__graph_tensor(const weir_graph *g, unsigned node, unsigned out);

#endif
