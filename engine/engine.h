/* SPDX-License-Identifier: MIT */
/*
 * engine/engine.h - the runtime state of a compiled dag and the one internal
 * interface of the engine's files: dag.c (lifecycle), driver.c (driver and
 * results), actor.c (actor loop), proc.c (process isolation), fail.c
 * (failure state), remote.c (a dag across ranks).
 */
#ifndef WEIR_ENGINE_H
#define WEIR_ENGINE_H

#include <pthread.h>
#include <sys/types.h>

#include <weir/dag.h>

#include "compiler/plan.h"

#define ERRTEXT_MAX 1024
#define ERRTEXT_BUF (ERRTEXT_MAX + 512) /* failure text + the actor/method prefix */
#define DEAD_MSG_MAX 768

/* Exit status of an actor process whose init failed (its text is in the note). */
#define WEIR__EXIT_INIT 86

struct reg {
    const void *data;
    size_t len;
    int err;       /* holds an error text instead of data */
    int produced;  /* CALL output set by weir_call_out */
    int reserved;  /* output reserved in its channel, not yet committed */
    char *errtext; /* owned copy (error registers) */
    int held;      /* restart fail mode: a channel message is held in this register */
    void *buf;     /* local buffer (values that stay in the actor) */
    size_t cap;
};

/*
 * What an actor is doing, in memory shared with the driver (MAP_SHARED,
 * mapped before any fork) so that a process actor's state is visible to
 * the driver when it dies or gets stuck.
 */
struct weir__actor_note {
    int in_call;         /* atomic: inside a method */
    int phase;           /* atomic: WEIR__PHASE_* */
    int resumed;         /* atomic: a replacement process got past the failed executions */
    int ready;           /* atomic: init returned 0 (weir_compile waits for every actor's) */
    int left;            /* atomic: the actor left cleanly (its inputs closed: a teardown,
                            which on a rank other than 0 arrives over the links first) */
    uint32_t stop;       /* atomic futex word: teardown began (weir_dag_free sets it and
                            wakes it); an actor with no calls sleeps on it, having no
                            channel that a close could reach */
    unsigned cur_method;
    uint64_t cur_exec;
    char text[512];      /* init failure text */
} __attribute__((aligned(64)));

enum { WEIR__PHASE_RUN = 0, WEIR__PHASE_INIT = 1, WEIR__PHASE_FINI = 2 };
enum { WEIR__PC_RUN = 0, WEIR__PC_LEFT = 1 };


struct weir__method_ctr;
struct weir__actor_ctr;
struct weir__prof_shared;
struct weir__prof;
struct weir__trace_buf;
struct weir__remote;

/*
 * One per actor. An actor that runs a schedule (a process actor, or the lead
 * of a worker: compiler/plan.h) owns the registers, reader ids and thread of
 * that schedule, and lists the actors whose calls it runs in `members`; the
 * other actors of a worker have no schedule and lend only their state,
 * methods, note and counters to the calls the lead runs for them.
 */
struct actor_rt {
    struct weir_dag *d;
    unsigned idx;
    const struct weir__plan_actor *pa;
    void *state;
    int (*init)(void *state);
    void (*fini)(void *state);
    weir_method_fn *fns;
    struct reg *regs;
    int *rid;      /* per channel: this actor's reader id, or -1 */
    int *reg_chan; /* per register: channel the register is written to, or -1 */
    struct weir__actor_note *note;
    unsigned nmembers; /* runs a schedule: the actors it calls (index order, itself
                          included); 0: its calls run in its worker's lead */
    unsigned *members;
    int init_failed; /* after weir__actor_run failed: the member whose init did */
    unsigned runner;   /* the actor whose schedule runs this one's calls (itself, or the lead) */
    /* the driver's worker (weir_compile_opts.driver_worker): where its schedule stopped */
    uint64_t pc_e;  /* execution */
    unsigned pc_i;  /* op */
    int pc_state;   /* WEIR__PC_* */
    unsigned blk_chan; /* when a step stopped: the channel its next op waits on ... */
    int blk_rid;       /* ... as reader blk_rid, or as its writer (-1) */
    /* thread actors */
    pthread_t th;
    int started;
    int exited; /* atomic: the thread is about to return (then signals exit_efd) */
    int joined;
    /* process actors */
    pid_t pid;
    int pidfd;
    int reaped; /* atomic */
    int status_code; /* siginfo si_code / si_status of the reaped process */
    int status;
    /* restarts (process actors) */
    unsigned max_restarts, restarts;
    int restarting;       /* set in the replacement process: resume after a death */
    int crashed_in_call;  /* the dead process was inside a method ... */
    uint64_t crash_exec;  /* ... at this execution, which must not be retried */
    char restart_text[DEAD_MSG_MAX]; /* why the in-flight executions failed */
    /* profiling (engine/prof.h): counters in memory shared with actor processes */
    struct weir__method_ctr *mctr;
    struct weir__actor_ctr *actr;
    struct weir__prof_shared *prof_shared;
    struct weir__trace_buf *trace; /* engine/trace.h; NULL: not tracing */
    struct weir__tensor_actor *tensor; /* engine/tensor.c: this actor's device mappings */
};

struct weir_call {
    struct actor_rt *a; /* the actor whose method runs (names, state) */
    struct actor_rt *w; /* the schedule running it (registers, channels): a, or its lead */
    const struct weir__plan_op *op;
    uint64_t exec;
    int failed;
    char failmsg[ERRTEXT_MAX];
};

struct weir__outs; /* driver.c: the driver's windows on the output channels */

/* One block: this header, the outs array, then the output bytes (and the error text).
 * A view (view != NULL) has no bytes: outs point into the output channels' slots. */
struct weir_result {
    uint64_t exec;
    unsigned n;
    int err;
    char *errtext; /* inside the block, or NULL */
    size_t cap;    /* bytes of the block (for the reuse cache) */
    struct weir__outs *view; /* the windows holding this execution's messages, or NULL */
    int held;      /* a view handed to the caller (under the windows' lock) */
    struct {
        void *data;
        size_t len;
    } *outs;
};

/* A deadline computed on first need, so calls that never wait read no clock. */
struct weir__deadline {
    int timeout_ms;
    uint64_t at; /* 0: not computed yet */
};

struct weir_dag {
    struct weir__plan *plan;
    struct weir_dag *live_prev, *live_next; /* proc.c: the live dags of this process */
    int tracked;
    weir_chan **chans;
    struct actor_rt *actors;
    struct weir__actor_note *notes; /* shared mapping, one per actor */
    size_t notes_bytes;
    int *drv_rid;    /* per channel: driver reader id or -1 */
    unsigned nargch;
    unsigned *argch; /* argument channels, in plan order */
    unsigned noutch;
    unsigned *outch; /* distinct output channels, in first-use order */
    uint64_t next_submit, next_collect;
    unsigned partial_k;          /* output channels held for next_collect */
    weir_chan_msg *held;         /* per output channel: the message held for next_collect */
    struct weir_result **ready;  /* finished, uncollected results */
    struct weir__outs *outs;     /* driver.c: windows on the output channels (NULL: none yet) */
    size_t view_bytes;           /* results of at least this many bytes are views */
    unsigned nready, capready;
    uint64_t *abandoned;         /* executions whose result is discarded on arrival */
    unsigned nabandoned, capabandoned;
    pthread_mutex_t mu;
    int refs; /* atomic */
    int timeout_ms;
    /* process actors */
    unsigned nproc;
    pthread_t monitor;
    int monitor_started;
    int mon_efd;
    int exit_efd; /* written by each thread actor as it leaves (teardown waits on it) */
    int tearing_down; /* atomic */
    /* a dead actor breaks the dag: every pending and later execution fails */
    int dead; /* atomic; dead_msg is written before it is set */
    char dead_msg[DEAD_MSG_MAX];
    pthread_mutex_t dead_mu;
    struct weir__prof *prof; /* engine/prof.c */
    const char *trace_opt;   /* weir_compile_opts.trace_path, borrowed during dag_start only */
    struct weir__tensor_rt *tensor; /* engine/tensor.c; NULL: no tensor edges */
    /* several ranks (remote.c): this process's rank; NULL and 0 on one rank */
    int rank;
    struct weir__remote *remote;
    /* the driver's worker (rank 0, weir_compile_opts.driver_worker): the lead whose
     * schedule the driver's calls run (driver.c), or NULL */
    struct actor_rt *inl;
    uint32_t inl_spin; /* spin budget of the driver's waits that step it */
};

/* Whether actor a runs on this rank (every actor does on one rank). */
#define WEIR__ACTOR_HERE(d, a) ((d)->plan->actors[(a)].node == (d)->rank)

/* Calls run one way: dag.c (lifecycle) -> driver.c, proc.c, actor.c -> fail.c
 * -> channels/. Each block below is one file's interface to those above it. */

/* actor.c: the actor loop. Run the init of every member of a's schedule (in
 * index order), the schedule loop and the members' fini in the calling thread
 * (a worker thread of dag.c's, or an actor process of proc.c's); returns 0 at
 * teardown, or non-zero when an init failed: a->init_failed is then that
 * member's index, and its text is in that member's note. */
int weir__actor_run(struct actor_rt *a);
/*
 * actor.c: the driver's worker. Its schedule runs in the driver's thread,
 * step by step, inside the driver's calls (driver.c), never waiting inside
 * a channel call. inline_start: the members' init (as weir__actor_run's).
 * inline_step: run ops until the next would wait; >0 if any ran, 0 if none
 * could (*w: the word to sleep on until it can), -EPIPE once the schedule
 * ended (it then ran the members' fini and left, as a thread does).
 * (a->blk_chan and a->blk_rid: the channel and reader id, -1 for the
 * writer, the waiting is counted for: driver.c adds it to weir_chan_stats).
 * inline_ready: could the next op run now (or has the schedule ended)?
 * inline_abandon: leave now (teardown past its deadline): fini, close, deregister.
 */
struct weir__wait_word;
int weir__actor_inline_start(struct actor_rt *a);
int weir__actor_inline_step(struct actor_rt *a, struct weir__wait_word *w);
int weir__actor_inline_ready(struct actor_rt *a);
void weir__actor_inline_abandon(struct actor_rt *a);

/* driver.c: results. A result block of at least `bytes` (from the reuse cache
 * or malloc); free with weir__result_free (NULL is a no-op). */
struct weir_result *weir__result_alloc(size_t bytes);
void weir__result_free(struct weir_result *r);
/* driver.c: the driver's windows (zero-copy results). init: once the driver's
 * reader ids of the output channels are registered (0 or -ENOMEM). stop: at
 * the start of weir_dag_free (views freed later release nothing). fini: in the
 * dag's destruction, before its channels are freed: frees the buffered
 * results and takes over (sets to NULL in d->chans) every output channel a
 * result still outstanding points into; the last such result frees them. */
int weir__driver_init(struct weir_dag *d);
void weir__driver_stop(struct weir_dag *d);
void weir__driver_fini(struct weir_dag *d);
/* driver.c: teardown runs the driver's worker (d->inl) until it leaves, or
 * the deadline (UINT64_MAX: none): 0 once it left, -ETIMEDOUT. */
int weir__driver_inline_finish(struct weir_dag *d, uint64_t deadline);

/* fail.c: the dag's failure state. */
/*
 * "in method 'm' (execution 5)", "in init", ... for messages. Reads a note a
 * dead process may have scribbled on: every field is checked.
 */
void weir__note_describe(const struct actor_rt *a, char *buf, size_t cap);
/* Close actor `who`'s output channels and deregister its readers through the
 * driver's handles, so everyone waiting on it wakes up. */
void weir__dag_break_around(struct weir_dag *d, int who);
/* Mark the dag dead (first caller wins) and break the pipeline around actor `who`
 * (-1: none): close its output channels and deregister its readers. */
void weir__dag_mark_dead(struct weir_dag *d, int who, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* tensor.c: tensor edges (<weir/tensor.h>). Read-only after init, so any
 * thread and every forked actor process reads d->tensor without locks. */
struct weir_graph;
/* dag.c, before channels are created and before any fork: the edges of g's
 * tensor marks, their channels and registers; device pools (opened, allocated
 * and exported by the driver). Raises CPU edges' slot_bytes to fit max_bytes.
 * 0, or an error naming the graph and the edge (-ENODEV no device, -ENOSYS). */
int weir__tensor_dag_init(struct weir_dag *d, const struct weir_graph *g);
/* dag.c teardown: the driver's pools and devices. NULL tensor: no-op. */
void weir__tensor_dag_free(struct weir_dag *d);
/* In a forked child (proc.c): drop this process's copy of d's socket to
 * its device pool holder (which waits for every copy to close) and, for
 * another dag than the child's own (other), of d's pool handles too. */
void weir__tensor_forget(struct weir_dag *d, int other);
/* actor.c, in the actor's thread or process before init: open this actor's
 * devices and import the pools it touches (once per buffer). 0 or an error. */
int weir__tensor_actor_start(struct actor_rt *a);
/* actor.c, after fini (or a failed start): unmap and close what start opened. */
void weir__tensor_actor_stop(struct actor_rt *a);
/* actor.c, after a method returned (call c, before its outputs are
 * committed): record the ready event of each device output it wrote, copy
 * the outputs that other ranks read into their slots (staging; a failed
 * copy fails c with the edge named), and record the release event of each
 * device input it read. */
void weir__tensor_after_call(struct actor_rt *a, const struct weir__plan_op *op, uint64_t exec,
                             weir_call *c);
/* driver.c submit: the bytes argument b takes in channel chan (tensor edges:
 * record + data, after checking *b against the edge; else b->len). */
int weir__tensor_arg_len(struct weir_dag *d, unsigned chan, const weir_buf *b, size_t *len);
/* driver.c submit: write tensor argument b of execution exec into dst
 * (reserved with arg_len's length); returns 1 and the exact length, 0 when
 * chan is no tensor edge, or a negative errno naming the edge (a device
 * argument's copy into the pool failed: nothing may be committed). */
int weir__tensor_arg_write(struct weir_dag *d, unsigned chan, const weir_buf *b, void *dst,
                           size_t *len, uint64_t exec);

/* For tests: the device counters every actor of the last dag with tensor
 * edges published when it stopped (summed), read after its weir_dag_free. */
struct weir__dev_counters;
void weir__tensor_last_counters(struct weir__dev_counters *out);
/* For tests: what the driver's devices did for that dag's pools (every
 * pool buffer and event it made, the device-to-device copy of each device
 * argument at submit), summed once every pool was freed. */
void weir__tensor_last_driver_counters(struct weir__dev_counters *out);
/* remote.c: a dag across ranks (see its design notes). */
/* Read the cluster environment and check that every actor's node is below
 * the world size (-EINVAL naming the actor and the size variable). 0 with
 * *out NULL on one rank, else with a new remote state for the dag. */
int weir__remote_check(const struct weir__plan *p, struct weir__remote **out);
int weir__remote_rank(const struct weir__remote *rm);
/* World size: 1 on one rank (rm NULL). */
int weir__remote_size(const struct weir__remote *rm);
/* Readers of channel c's ring on this rank (its local readers, plus one per
 * remote rank with readers when c is written here), or -1: no ring here. */
int weir__remote_chan_ring(const struct weir_dag *d, unsigned c);
/* Once c's ring exists: register its links' readers (c written here). */
int weir__remote_register(struct weir_dag *d, unsigned c);
/* With this rank's actors ready: listen, join the cluster, dial, and pass
 * the ready barrier of every rank. 0 or the error ("graph 'g': rank r: ..."). */
int weir__remote_start(struct weir_dag *d);
/* Teardown, before waiting for the actors: a rank other than 0 breaks its
 * receiving side so its actors leave. No-op on rank 0 and on one rank. */
void weir__remote_quiesce(struct weir_dag *d);
/* Teardown, after the actors: rank 0 waits (until deadline) for its links
 * to finish; every rank frees them and closes the cluster. 0 or the
 * cluster's error. Frees nothing of the dag's memory. */
int weir__remote_stop(struct weir_dag *d, uint64_t deadline);
void weir__remote_free(struct weir__remote *rm);
/* Links of channel c on this rank (weir_dag_chan_nlinks); 0 on one rank. */
unsigned weir__remote_nlinks(const struct weir_dag *d, unsigned c);
/* Counters of c's link k (weir_dag_link_stats; c in range). 0 or -ENOENT
 * naming the channel and rank. Any thread (the stats publisher too). */
int weir__remote_link_stats(const struct weir_dag *d, unsigned c, unsigned k,
                            struct weir_dag_link_stats *st);
/* Rank 0: links of channel c on the other ranks (weir_dag_chan_remote_nlinks;
 * 0 elsewhere and on one rank), and link k's counters as its rank last
 * reported them (STATS), with st->rank saying which rank: 0, or -ENOENT
 * naming the channel (no link k, or no report yet). Any thread. */
/* Rank 0: actor a of another rank as that rank last reported it (STATS).
 * 0, or -ENOENT (not rank 0, an actor of rank 0, or no report yet). */
struct weir__cluster_actor_stat;
int weir__remote_actor_stats(const struct weir_dag *d, unsigned a,
                             struct weir__cluster_actor_stat *out);
unsigned weir__remote_rlinks(const struct weir_dag *d, unsigned c);
int weir__remote_rlink_stats(const struct weir_dag *d, unsigned c, unsigned k,
                             struct weir_dag_link_stats *st);

/* Rank 0: the counters of channel c, which has no ring on rank 0, as its
 * writer's rank last reported them (STATS); who[WEIR_CHAN_MAX_READERS]
 * (may be NULL): per reader, the plan's actor index, -1 the driver, -2
 * another (a link). 0, or -ENOENT (not rank 0, or no report yet). */
int weir__remote_chan_stats(const struct weir_dag *d, unsigned c, struct weir_chan_stats *st,
                            int32_t *who);

/* proc.c */
/* The live dags of this process, so a process actor's child can drop the
 * fds and mappings of every dag but its own (proc.c: "Inherited fds").
 * track: once the dag's channels, notes and profiling exist; untrack:
 * before any of them is released. */
void weir__proc_track(struct weir_dag *d);
void weir__proc_untrack(struct weir_dag *d);
/* fork() for a process of dag d (an actor, or tensor.c's device pool
 * holder): in the child (0) other dags' fds and mappings are dropped, it
 * dies with the forking thread (PR_SET_PDEATHSIG) and is named
 * "weir:TITLE"; the parent gets the pid, or -1 with errno. */
pid_t weir__proc_fork(struct weir_dag *d, const char *title);
int weir__proc_start(struct weir_dag *d, struct actor_rt *a);
int weir__proc_monitor_start(struct weir_dag *d);
void weir__proc_monitor_stop(struct weir_dag *d);
/* Teardown past its deadline, with the monitor still running (it may have forked
 * the processes, and PR_SET_PDEATHSIG follows the forking thread): SIGKILL every
 * actor process still running, wait for its exit and break the pipeline around it.
 * Appends the names of killed actors to msg. Returns how many were killed. */
int weir__proc_stop_all(struct weir_dag *d, char *msg, size_t cap, int *len);
/* After the monitor stopped: reap every actor process it did not. */
void weir__proc_reap_remaining(struct weir_dag *d);
/* "killed by signal 11 (SIGSEGV)", "exited with status 1" */
void weir__proc_describe(int code, int status, char *buf, size_t cap);

#endif
