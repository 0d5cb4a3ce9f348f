/* SPDX-License-Identifier: MIT */
/*
 * compiler/plan.h - the compiled plan: plain data, no function pointers.
 *
 * Design notes. A plan is what weir_compile produces from a graph and what
 * the engine instantiates: the channels (one per produced value that
 * crosses an actor boundary, multicast to every consuming actor; one per
 * execution argument), and per actor an ordered schedule of operations
 * over a small register file:
 *
 *   READ    chan -> reg      wait for this execution's message on chan, hold it
 *   CALL    method(in regs) -> out regs
 *   WRITE   reg -> chan      commit the output held in reg to chan
 *   RELEASE reg              release the channel message held in reg
 *
 * Registers hold either a message read from a channel (zero-copy view) or a
 * method output (in a reserved channel slot when the value is written to a
 * channel, else in a local buffer: edges inside one actor use no channel).
 * The driver is not an actor: it writes the argument channels and reads
 * the output channels (plan.outputs), in that order per execution.
 *
 * Placement (co-scheduling). Every WEIR_THREAD actor is placed on a worker
 * (actor.worker, 0..nworkers-1); a WEIR_PROCESS actor has worker -1 and
 * runs its own schedule in its process. The schedule of a worker - the
 * fused schedule of all its actors, in the global topological order - is
 * kept by the worker's first actor (the lowest actor index placed there,
 * its "lead"): the lead's ops, registers, and its index as the writer or
 * reader of channels stand for the whole worker. The other actors of the
 * worker have no ops and no registers and appear in no channel; each CALL
 * op names the actor whose method it calls (op.actor), so fused calls keep
 * their actor's name, state, methods and counters. Values passed between
 * actors of one worker stay in the lead's registers (no channel).
 * With one actor per worker every actor is its own lead: the plan is the
 * thread-per-actor plan.
 *
 * Every string is owned by the plan (heap, NUL-terminated); free with
 * weir__plan_free(). All indices are checked by weir__plan_validate(),
 * which every loader calls before trusting a plan.
 */
#ifndef WEIR_PLAN_H
#define WEIR_PLAN_H

#include <stddef.h>
#include <stdint.h>

#define WEIR__PLAN_DRIVER (-1) /* writer/reader index meaning "the driver" */

enum weir__op_kind {
    WEIR__OP_READ = 0,
    WEIR__OP_CALL = 1,
    WEIR__OP_WRITE = 2,
    WEIR__OP_RELEASE = 3,
};

enum weir__chan_src {
    WEIR__SRC_ARG = 0, /* execution argument src_index, written by the driver */
    WEIR__SRC_OUT = 1, /* output src_out of the call op at actor `writer`, op src_index */
};

struct weir__plan_op {
    uint32_t kind;   /* enum weir__op_kind */
    uint32_t chan;   /* READ, WRITE: channel index */
    uint32_t reg;    /* READ: destination; WRITE, RELEASE: source register */
    uint32_t method; /* CALL: index into the actor's methods */
    uint32_t node;   /* CALL: the graph node id of this call (for messages and DOT) */
    uint32_t actor;  /* CALL: the actor whose method this is (the schedule's own actor, or
                        another actor of the same worker); 0 for other kinds */
    uint32_t nin, nout;
    uint32_t *in;  /* CALL: nin input registers */
    uint32_t *out; /* CALL: nout output registers */
};

struct weir__plan_method {
    char *name;
    uint32_t nin, nout;
};

struct weir__plan_actor {
    char *name;
    int32_t node;      /* rank hosting the actor */
    int32_t isolation; /* WEIR_THREAD / WEIR_PROCESS */
    char *cpus;        /* CPU list in canonical form ("0,2-3"); NULL: unpinned */
    int32_t worker;    /* WEIR_THREAD: worker index (0..nworkers-1); WEIR_PROCESS: -1 */
    uint32_t nmethods;
    struct weir__plan_method *methods;
    uint32_t nregs;
    uint32_t nops;
    struct weir__plan_op *ops;
};

/* What a tensor edge accepts (weir_tensor_spec as plain integers; plan
 * format version 3). is_tensor 0: the channel carries plain messages. */
#define WEIR__PLAN_TENSOR_NDIM 8
struct weir__plan_tensor {
    uint32_t is_tensor;
    int32_t device;    /* DLDeviceType: kDLCPU, kDLCUDA, WEIR_TENSOR_DEVICE_SIM */
    int32_t device_id;
    uint64_t max_bytes; /* 0: any (CPU edges) */
    uint8_t dtype_code, dtype_bits; /* bits 0: any dtype */
    uint16_t dtype_lanes;
    int32_t ndim;      /* 0: any; 1..8: exactly; -1 (WEIR_TENSOR_SCALAR): ndim 0 */
    int64_t shape[WEIR__PLAN_TENSOR_NDIM]; /* [0, ndim): > 0 exact, 0 any extent; rest 0 */
};

struct weir__plan_chan {
    char *name;        /* "arg0", "<actor>.<method>.out<i>" */
    int32_t writer;    /* actor index, or WEIR__PLAN_DRIVER */
    uint32_t nreaders;
    int32_t *readers;  /* actor indices (each at most once), or WEIR__PLAN_DRIVER */
    uint64_t slot_bytes;
    uint32_t depth;
    uint32_t src_kind; /* enum weir__chan_src */
    uint32_t src_index;
    uint32_t src_out;
    struct weir__plan_tensor tensor; /* a tensor edge's spec, or is_tensor 0 */
    int32_t transport; /* links' transport when it crosses ranks: the plan's, or the
                          value's weir_node_transport */
};

struct weir__plan {
    char *graph;           /* graph name */
    uint32_t nargs;        /* arguments of every execution */
    uint32_t max_inflight;
    uint32_t depth;        /* requested default depth (each channel has its own) */
    uint64_t buffer_bytes; /* requested initial slot size */
    int32_t transport;
    int32_t timeout_ms;
    uint32_t max_buffered; /* results kept for out-of-order waits */
    int32_t threads;       /* weir_compile_opts.threads as asked (0 auto, -1 one per actor) */
    uint32_t nworkers;     /* workers of the thread actors (each one thread) */
    uint32_t nactors;
    struct weir__plan_actor *actors;
    uint32_t nchans;
    struct weir__plan_chan *chans;
    uint32_t nouts;
    uint32_t *outputs; /* graph output i is read from channel outputs[i] */
};

/* The lead of worker w (the lowest actor index placed on it), or -1 if none. */
int32_t weir__plan_worker_lead(const struct weir__plan *p, uint32_t w);
/* The actor whose schedule runs actor a's calls: a itself for a process actor
 * or a lead, else the lead of a's worker (-1 if a or its worker is out of range). */
int32_t weir__plan_runner(const struct weir__plan *p, uint32_t a);

/* Free a plan and everything it owns. NULL is a no-op. */
void weir__plan_free(struct weir__plan *p);

/*
 * Placement across ranks (compiler/place.c; pure functions of the plan, safe
 * on any index). The rank of party `who` (an actor's node; the driver and an
 * index out of range: 0); the rank writing channel c; how many of c's
 * readers run on `rank`; the ranks the plan spans (1 + the highest node);
 * the links channel c needs (ranks other than the writer's with a reader).
 */
int32_t weir__plan_party_rank(const struct weir__plan *p, int32_t who);
int32_t weir__plan_writer_rank(const struct weir__plan *p, uint32_t c);
uint32_t weir__plan_readers_on(const struct weir__plan *p, uint32_t c, int32_t rank);
int32_t weir__plan_nranks(const struct weir__plan *p);
uint32_t weir__plan_links_from(const struct weir__plan *p, uint32_t c);

/* Registers per actor a plan may declare (validation, DOT). */
#define WEIR__PLAN_MAX_REGS (1u << 20)

/* The largest encoded plan the codec accepts; weir__plan_load() reads at
 * most this + 1 bytes (defined in compiler/plan_codec.cc). */
extern const size_t weir__plan_max_bytes;

/* Names for messages, safe on any index ("?" when out of range) (plan.c). */
const char *weir__plan_kind_name(uint32_t kind);                      /* NULL if unknown */
const char *weir__plan_party(const struct weir__plan *p, int32_t who); /* actor or "driver" */
const char *weir__plan_chan_name(const struct weir__plan *p, uint32_t c);
const char *weir__plan_method_name(const struct weir__plan_actor *a, uint32_t m);

/*
 * Check every index and count of a plan (channels, registers, methods,
 * readers, ops); on failure returns -EBADMSG with a message naming the
 * actor/op/channel at fault. Does not run the deadlock check.
 */
int weir__plan_validate(const struct weir__plan *p);

/* 64-bit FNV-1a hash of the canonical JSON of the plan (weir__plan_json). */
uint64_t weir__plan_hash(const struct weir__plan *p);

/*
 * Canonical JSON text of the plan (fixed key order, no whitespace
 * variation). Returns a malloc'd string owned by the caller, NULL on OOM.
 */
char *weir__plan_json(const struct weir__plan *p);

/* Human-readable schedules and channels, for `weir-plan show`. Returns 0 or -errno. */
int weir__plan_print(const struct weir__plan *p, void *FILE_out);

/* Graphviz DOT of the plan: actors as clusters, calls as nodes, channels as edges. */
int weir__plan_dot(const struct weir__plan *p, void *FILE_out);

/*
 * FlatBuffers codec (compiler/plan_codec.cc, schema compiler/plan.fbs).
 * encode: *buf is malloc'd, owned by the caller. decode: verifies the
 * buffer with the FlatBuffers verifier, then weir__plan_validate(); on
 * success *out is a new plan owned by the caller. Errors: -EBADMSG with a
 * clear message (truncated, not a weir plan, failed verification, bad
 * index), -ENOMEM.
 */
int weir__plan_encode(const struct weir__plan *p, uint8_t **buf, size_t *len);
int weir__plan_decode(const uint8_t *buf, size_t len, struct weir__plan **out);

/* Save to / load from a file (encode/decode plus I/O errors naming the path). */
int weir__plan_save(const struct weir__plan *p, const char *path);
int weir__plan_load(const char *path, struct weir__plan **out);

#endif
