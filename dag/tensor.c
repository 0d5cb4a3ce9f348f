/* SPDX-License-Identifier: MIT */
/*
 * dag/tensor.c - marking graph values as tensor edges (weir_node_tensor,
 * weir_node_tensor_spec in <weir/tensor.h>).
 *
 * Design notes. A mark is kept per value, (INPUT node) or (CALL node,
 * output index), so a weir_ret() pick and its call's node name the same
 * value. Everything about the spec that does not depend on the machine is
 * checked here (ndim range, shape, dtype); devices are opened and pools
 * sized by the engine at compile (engine/tensor.c), where a missing device
 * is -ENODEV naming the edge.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "channels/err.h"
#include "dag/graph_internal.h"

static void node_name(const weir_node *n, char *buf, size_t len)
{
    if (n->kind == WEIR__N_INPUT)
        snprintf(buf, len, "input %u", n->argi);
    else if (n->kind == WEIR__N_CALL)
        snprintf(buf, len, "node %u (%s.%s)", n->id, n->actor->name,
                 n->actor->methods[n->method].name);
    else
        snprintf(buf, len, "node %u (output %u of %s.%s)", n->id, n->out, n->call->actor->name,
                 n->call->actor->methods[n->call->method].name);
}

const struct weir__tensor_mark *weir__graph_tensor(const weir_graph *g, unsigned node, unsigned out)
{
    for (unsigned i = 0; i < g->ntensors; i++)
        if (g->tensors[i].node == node && g->tensors[i].out == out)
            return &g->tensors[i];
    return NULL;
}

WEIR_API int weir_node_tensor_spec(weir_node *n, const weir_tensor_spec *spec)
{
    weir__clearerr();
    if (!n || !spec)
        return weir__seterr(-EINVAL, "weir_node_tensor: NULL node or spec");
    weir_graph *g = n->g;
    char what[200];
    node_name(n, what, sizeof what);
    if (g->frozen)
        return weir__seterr(-EBUSY,
                            "graph '%s': already compiled; modifying it afterwards is not "
                            "allowed (build a new graph)",
                            g->name);
    weir_tensor_spec s = *spec;
    if (s.device == 0)
        s.device = kDLCPU;
    if (s.device_id < 0)
        return weir__seterr(-EINVAL, "graph '%s': tensor %s: device id %d is negative", g->name,
                            what, s.device_id);
    if (s.ndim < WEIR_TENSOR_SCALAR || s.ndim > WEIR_TENSOR_MAX_NDIM)
        return weir__seterr(-EINVAL,
                            "graph '%s': tensor %s: ndim %d out of range (0: any, 1..%d, or "
                            "WEIR_TENSOR_SCALAR)",
                            g->name, what, s.ndim, WEIR_TENSOR_MAX_NDIM);
    for (int i = 0; i < s.ndim; i++)
        if (s.shape[i] < 0)
            return weir__seterr(-EINVAL, "graph '%s': tensor %s: shape[%d] is negative (%lld)",
                                g->name, what, i, (long long)s.shape[i]);
    if (s.dtype.bits && (s.dtype.bits % 8 || s.dtype.lanes == 0))
        return weir__seterr(-EINVAL,
                            "graph '%s': tensor %s: bad dtype (code %u, bits %u, lanes %u)",
                            g->name, what, s.dtype.code, s.dtype.bits, s.dtype.lanes);
    unsigned node = n->id, out = 0;
    if (n->kind == WEIR__N_RET) {
        node = n->call->id;
        out = n->out;
    }
    for (unsigned i = 0; i < g->ntensors; i++)
        if (g->tensors[i].node == node && g->tensors[i].out == out) {
            g->tensors[i].spec = s;
            return 0;
        }
    if (g->ntensors == g->cap_tensors) {
        unsigned nc = g->cap_tensors ? g->cap_tensors * 2 : 8;
        struct weir__tensor_mark *nt = realloc(g->tensors, nc * sizeof *nt);
        if (!nt)
            return weir__seterr(-ENOMEM, "graph '%s': out of memory", g->name);
        g->tensors = nt;
        g->cap_tensors = nc;
    }
    g->tensors[g->ntensors++] = (struct weir__tensor_mark){.node = node, .out = out, .spec = s};
    return 0;
}

WEIR_API int weir_node_tensor(weir_node *n, DLDeviceType dev, size_t max_bytes)
{
    weir_tensor_spec s;
    memset(&s, 0, sizeof s);
    s.device = dev;
    s.max_bytes = max_bytes;
    return weir_node_tensor_spec(n, &s);
}
