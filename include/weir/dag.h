/* SPDX-License-Identifier: MIT */
/*
 * weir/dag.h - compiling a graph and running it (implemented in engine/:
 * dag.c lifecycle, driver.c execute/submit/wait and results, actor.c the
 * weir_call_* API, proc.c process actors).
 *
 * weir_compile() is the engine's entry: it lowers the graph through
 * compiler/ to a plan (channels + one ordered schedule per worker or
 * process actor) and checks the plan for deadlock, then instantiates it:
 * it creates the channels, forks one process per WEIR_PROCESS actor and
 * starts one thread per worker of WEIR_THREAD actors (co-scheduling,
 * below). The engine uses the compiler, never the reverse. The dag then runs executions until weir_dag_free().
 *
 * The driver side (execute / submit / wait / stats) is meant for one
 * thread at a time; calls from several threads are serialized by a mutex.
 * Methods run on their actor's worker thread or process, one call at a
 * time per worker (so one at a time per actor).
 *
 * Timeouts: as everywhere (<weir/common.h>): > 0 ms, 0 do not wait, -1
 * (WEIR_FOREVER) without bound; an option field left 0 takes the default.
 *
 * Errors of an execution have one shape:
 *     graph 'G': execution E: CAUSE
 * E is the execution the call asked about (weir_wait's exec_id, the one
 * weir_execute ran); CAUSE names what failed and at which execution F,
 * which can be earlier than E:
 *   -EREMOTEIO  actor 'A' method 'M' failed at execution F: TEXT
 *               (F == E: a method failed; that execution only)
 *   -EREMOTEIO  actor 'A' (pid P) died in method 'M' at execution F: HOW;
 *               restarted as pid Q (restart i of k)
 *               (a process actor that restarted: F and the executions it
 *               had half done fail, later ones run)
 *   -EPIPE      actor 'A' (pid P) died in method 'M' at execution F: HOW
 *               (the dag is dead: E and every later execution fail so)
 *   -ETIMEDOUT  not finished in time (waiting for execution F on channel 'C')
 * HOW is "killed by signal 11 (SIGSEGV)", "exited with status 1", ...
 * A failure inside weir_submit reads "graph 'G': submit: CAUSE".
 */
#ifndef WEIR_DAG_H
#define WEIR_DAG_H

#include <stdio.h>

#include <weir/graph.h>
#include <weir/stats.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct weir_dag weir_dag;

#define WEIR_TRANSPORT_URING 0
#define WEIR_TRANSPORT_ZMQ 1

#define WEIR_DEFAULT_MAX_INFLIGHT 8
#define WEIR_DEFAULT_BUFFER_BYTES 1024
#define WEIR_DEFAULT_TIMEOUT_MS 10000
#define WEIR_DEFAULT_MAX_BUFFERED 1024
#define WEIR_DEFAULT_RESULT_VIEW_BYTES 4096

typedef struct weir_compile_opts {
    unsigned max_inflight; /* executions in flight at once; 0: WEIR_DEFAULT_MAX_INFLIGHT */
    size_t buffer_bytes;   /* initial slot size of each channel (grows on demand); 0: default */
    unsigned depth;        /* slots per channel; 0: max_inflight. Less than max_inflight is
                              allowed only if the deadlock check accepts it. */
    int transport;         /* WEIR_TRANSPORT_URING (default) or WEIR_TRANSPORT_ZMQ, remote edges */
    int timeout_ms;        /* how long teardown waits for actors to leave before it kills
                              processes and detaches threads; 0: WEIR_DEFAULT_TIMEOUT_MS;
                              -1 (WEIR_FOREVER): as long as they take */
    unsigned max_buffered; /* completed results kept for out-of-order weir_wait; 0: default */
    const char *trace_path; /* Chrome trace events (Perfetto) written here at teardown
                               (<weir/prof.h>); NULL: $WEIR_TRACE if set, else no trace.
                               Not part of the plan (the hash does not change). */
    size_t result_view_bytes; /* results whose outputs total at least this many bytes are
                                 zero-copy views into the output channels' slots (see
                                 "Results" below); smaller ones are copies. 0:
                                 WEIR_DEFAULT_RESULT_VIEW_BYTES; SIZE_MAX: always copy.
                                 Not part of the plan. */
    int threads;            /* worker threads for the WEIR_THREAD actors (co-scheduling,
                               below); 0: automatic; WEIR_THREADS_PER_ACTOR: one each */
    int driver_worker;      /* 1: the driver's own thread runs the first worker (below, "The
                               driver's worker"); 0: every worker is a thread of its own.
                               Not part of the plan. */
} weir_compile_opts;

/*
 * Co-scheduling. The WEIR_THREAD actors of a dag run on worker threads: with
 * threads = N they are placed on N workers (fewer if there are fewer actors),
 * and the compiler fuses the schedules of the actors on one worker into one
 * schedule in the graph's global topological order, so a worker cannot
 * deadlock against itself and the deadlock check runs over the fused
 * schedules as over any other. Edges between actors on one worker pass
 * buffers directly, with no channel, as edges inside one actor do; a worker
 * runs one method at a time, so methods of the actors on a worker never run
 * at once. WEIR_PROCESS actors are never fused (each is its own process).
 *
 * Automatic placement keeps the graph's order: the actors not placed by
 * weir_actor_opts.worker are taken in the order of their first call (a
 * topological order) and cut into N contiguous runs of near-equal size, so
 * a chain of 4 on 2 workers runs (a, b) and (c, d). An actor pinned with
 * weir_actor_opts.cpu, and one with worker = WEIR_WORKER_ALONE, gets a
 * thread of its own, outside the N.
 *
 * The default (threads = 0) is measured, not guessed. When the thread
 * actors outnumber the CPUs this process may run on, a hand-off between
 * two threads waits for a context switch (the waiting thread spins 5 us,
 * then yields), while a hand-off inside a worker is a function call; and
 * the driver is a thread too, so the fewer workers the better. `weir-bench
 * dag --quick --threads 1` and `--threads 2`, two runs each on 2 vCPUs (CPU
 * parallelism 1.4-2.1), chain of 4, 8 B, best of 3 rounds:
 *   a thread per actor (5 threads)  0.64-0.78 M exec/s pipelined, p50 18-19 us
 *   threads = 2 (3 threads)         1.36-1.44 M exec/s,           p50 8.5-10.7 us
 *   threads = 1 (2 threads)         6.0-6.5 M exec/s,             p50 0.36-0.37 us
 *   threads = 2, driver_worker = 1 (2 threads: the driver runs a, b; below)
 *                                   4.4-4.5 M exec/s,             p50 0.39-0.45 us
 * so weir_compile then uses one worker per CPU but one (left to the
 * driver), at least 1. With a CPU for every actor, a thread per actor lets
 * the stages run in parallel (and a method that blocks stalls no other
 * actor), so that stays the default there.
 * The plan records the placement (`weir-plan show` prints it); with
 * threads = 0 it depends on the CPU count, so set threads for a plan (and
 * hash) that is the same on every machine.
 * Across ranks (weir_actor_opts.node), threads = N gives every rank N
 * workers: a worker holds actors of one rank only, and worker = k is the
 * k-th worker of its actor's rank. There threads = 0 runs a thread per
 * actor: every rank must compile the same plan, and their CPU counts may
 * differ.
 * threads < -1 or > 65536 is -EINVAL.
 */
/*
 * The driver's worker. With driver_worker = 1 the first worker of rank 0
 * (the lowest-numbered one with calls, none of whose actors is pinned with
 * weir_actor_opts.cpu or placed WEIR_WORKER_ALONE; with automatic placement
 * it holds the head of the graph) gets no thread: the thread that calls
 * weir_submit, weir_wait and weir_execute runs its fused schedule, inside
 * those calls. submit runs it as far as it can go without waiting; every
 * wait of the driver runs it while it can move and sleeps on both its own
 * channel and the worker's at once when neither can. So a hand-off between
 * the driver and that worker is a function call, not a context switch: with
 * threads = 2 a chain of 4 is the driver (running a, b) and one worker thread
 * (c, d), two threads on two CPUs instead of three.
 * What changes for the actors on it: their init runs in weir_compile's
 * thread, their methods in the driver's calls (never at the same time as
 * the caller's other code), their fini in weir_dag_free's; they make
 * progress only while the driver is inside one of those calls (a result you
 * never wait for is computed by a later call, or by the teardown, which runs
 * the worker until its inputs are drained). A method that blocks blocks the
 * driver: keep such an actor on a worker of its own (WEIR_WORKER_ALONE).
 * Ignored on other ranks (their weir_dag_join runs no schedule) and when no
 * worker qualifies.
 */
#define WEIR_THREADS_AUTO 0
#define WEIR_THREADS_PER_ACTOR (-1)
#define WEIR_MAX_THREADS 65536

/*
 * Compile g and start its actors; returns once every actor's init has
 * returned 0 (the ready barrier). opts may be NULL. g stays the caller's
 * and is frozen (no further builder calls) once a dag runs. An init that
 * fails, or an actor process that dies in it, fails the compile with
 * -EREMOTEIO and "graph 'g': actor 'a' (thread|pid N) could not start: TEXT"
 * (or "… died: HOW"); an init still running after timeout_ms is -ETIMEDOUT
 * naming the actor; either way nothing is left running. Returns NULL with a message
 * that names the node/actor/method on a validation error (-EINVAL), a
 * plan that could deadlock (-EDEADLK, with the cycle of waiting actors
 * and channels), or a resource failure.
 * The caller owns the dag and frees it with weir_dag_free().
 */
WEIR_API weir_dag *weir_compile(weir_graph *g, const weir_compile_opts *opts);

/* Save the dag's plan as a FlatBuffers file (read it with `weir-plan`). */
WEIR_API int weir_dag_save_plan(const weir_dag *d, const char *path);

/* Write the plan as Graphviz DOT to out. */
WEIR_API int weir_dag_write_dot(const weir_dag *d, FILE *out);

/* Write the plan as canonical JSON to out. */
WEIR_API int weir_dag_write_json(const weir_dag *d, FILE *out);

/* The plan's 64-bit content hash (same graph + options => same hash). */
WEIR_API uint64_t weir_dag_plan_hash(const weir_dag *d);

/*
 * Teardown: stops the actors and frees everything; returns within the
 * dag's timeout_ms (+ a little; with WEIR_FOREVER it waits for every method
 * to return). Executions still in flight are dropped. An actor process
 * still running at the deadline is killed and reaped.
 * An actor stuck inside a method past the timeout is named in the error
 * (-ETIMEDOUT); its thread is left to finish on its own and the memory it
 * can touch is freed when it returns. NULL: returns 0.
 */
WEIR_API int weir_dag_free(weir_dag *d);

/*
 * Several ranks (SPMD, <weir/cluster.h>): every rank calls weir_compile()
 * on the same graph; it joins the ranks (bounded by timeout_ms; a rank
 * whose plan hash differs is refused naming both hashes), creates this
 * rank's rings and links, starts the actors whose node is this rank and
 * returns once every rank's actors ran init. Rank 0 is the driver
 * (execute / submit / wait). Any other rank calls weir_dag_join(): 0 when
 * the driver tore the dag down (then weir_dag_free), or the failure: a
 * rank that died or was cut off past the heartbeat bound
 * (WEIR_HEARTBEAT_MS, default 2000; -EHOSTDOWN naming the rank), an actor
 * of this rank that died (-EPIPE; the other ranks learn it), -ETIMEDOUT
 * when neither happened within timeout_ms. On rank 0 (or one rank):
 * -EINVAL. A failed rank fails every pending and later execution on rank 0
 * with -EPIPE "rank R failed (...); the actors it hosted: 'a', 'b'".
 */
WEIR_API int weir_dag_join(weir_dag *d, int timeout_ms);

/* ---- execute ----------------------------------------------------------- */
typedef struct weir_buf {
    const void *data;
    size_t len;
} weir_buf;
typedef struct weir_result weir_result;

/*
 * One execution, start to finish: submit + wait. args are copied into the
 * argument channels before this returns. On success *res is a new result
 * owned by the caller (weir_result_free). A method that failed makes this
 * return -EREMOTEIO with "graph 'g': execution N: actor 'a' method 'm' failed
 * at execution N: text" in weir_errmsg() (the shape above); *res is then NULL. -EINVAL: wrong argument count.
 * -ETIMEDOUT: the execution did not finish in time (it stays in flight and
 * its result is discarded when it arrives).
 */
WEIR_API int weir_execute(weir_dag *d, const weir_buf *args, unsigned nargs, weir_result **res,
                          int timeout_ms);

/*
 * Pipelined: start an execution and return its id (0, 1, 2, ... in submit
 * order) in *exec_id. Blocks while max_inflight executions are unfinished.
 * Finished results are kept until weir_wait() collects them; past
 * max_buffered uncollected results, submit fails with -ENOBUFS. It also
 * fails with -ENOBUFS, at once, when a result view the caller holds has
 * the slot this execution needs ("Results" below).
 */
WEIR_API int weir_submit(weir_dag *d, const weir_buf *args, unsigned nargs, uint64_t *exec_id,
                         int timeout_ms);

/*
 * Wait for execution exec_id (any order). On success *res is owned by the
 * caller. Errors: -EREMOTEIO (a method failed; text in weir_errmsg()),
 * -ETIMEDOUT (still running; wait again later), -ENOENT (never submitted
 * or already collected).
 */
WEIR_API int weir_wait(weir_dag *d, uint64_t exec_id, weir_result **res, int timeout_ms);

/*
 * Results: the graph's outputs of one execution, in weir_output() order.
 * A result stays valid (its data too) after weir_dag_free(), until
 * weir_result_free(). Results may be freed in any order, from any thread.
 *
 * Zero-copy. A result whose outputs total at least result_view_bytes
 * (default 4096) is a view: weir_result_data() points into the output
 * channels' slots, and the result holds that execution's slot in every
 * output channel until weir_result_free() gives it back. Smaller results,
 * and failed executions, are copies and hold nothing. Either way the data
 * is read-only.
 *
 * Holding views and depth. An output channel has `depth` slots (the
 * compile option; default max_inflight), one per execution, reused in
 * order: while the caller holds the view result of execution F (F: the
 * oldest view it holds), the channel cannot take execution F + depth. So:
 *   - executions up to F + depth - 1 can be submitted and waited as usual;
 *   - weir_submit (or weir_execute) of execution F + depth fails at once
 *     with -ENOBUFS and "graph 'G': submit: the result of execution F is
 *     still held: channel 'C' (depth D) has no slot for execution E until
 *     it is freed (weir_result_free)" - never a wait, never a hang; free
 *     the result (or copy what you keep) and submit again;
 *   - results the driver buffered for you (finished, not yet waited) do
 *     not count: when their slots are needed they are copied out first, and
 *     a result handed out by weir_wait when submits have already gone past
 *     its execution + depth - 1 is handed out as a copy.
 * To keep more views at once, compile with a larger depth (depth may exceed
 * max_inflight); to never hold a slot, set result_view_bytes to SIZE_MAX.
 * A view kept past weir_dag_free() keeps its output channels' memory mapped
 * until it is freed.
 *
 * Number of outputs (0 for NULL). */
WEIR_API unsigned weir_result_count(const weir_result *r);
/* Output i (NULL if out of range); *len gets its size. Owned by the result. */
WEIR_API const void *weir_result_data(const weir_result *r, unsigned i, size_t *len);
/* Execution index of the result. */
WEIR_API uint64_t weir_result_exec(const weir_result *r);
/* Give a result back (a view releases its slots; a copy's block is recycled
 * by later executions); pointers from weir_result_data() are invalid
 * afterwards. Any thread, any order. NULL is a no-op. */
WEIR_API void weir_result_free(weir_result *r);

/* ---- inside a method ------------------------------------------------- */
/* Number of inputs and of outputs of the call (the nin and nout of weir_bind). */
WEIR_API unsigned weir_call_nin(const weir_call *c);
WEIR_API unsigned weir_call_nout(const weir_call *c);
/* Zero-copy view of input i, valid until the method returns. NULL if out of range. */
WEIR_API const void *weir_call_in(weir_call *c, unsigned i, size_t *len);
/*
 * Space for output i of len bytes, valid until the method returns: a slot
 * of the output channel when the value crosses actors (zero-copy), else a
 * buffer of the actor. May block while downstream readers lag. Calling it
 * again for the same i with len <= the first returns the same space.
 * Every output must be produced; an output left unset fails the execution.
 */
WEIR_API void *weir_call_out(weir_call *c, unsigned i, size_t len);
/* Execution index. */
WEIR_API uint64_t weir_call_exec(const weir_call *c);
/* Fail this execution with a message; returns a non-zero value to return from the method. */
WEIR_API int weir_call_fail(weir_call *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Names, for logging. */
WEIR_API const char *weir_call_actor(const weir_call *c);
WEIR_API const char *weir_call_method(const weir_call *c);

/* ---- stats ------------------------------------------------------------- */
/* Number of channels of the dag. */
WEIR_API unsigned weir_dag_nchannels(const weir_dag *d);
/* Counters of channel i (0 .. nchannels-1); names as in the plan. Across
 * ranks: this rank's ring of it (see weir_dag_link_stats below for the
 * links that feed or drain it). 0, or -EINVAL (NULL or i out of range),
 * -ENOENT (a rank the channel does not touch: no ring here, named). */
WEIR_API int weir_dag_chan_stats(const weir_dag *d, unsigned i, struct weir_chan_stats *st);
/*
 * Rank 0 of a dag across ranks: the counters of channel i when rank 0 has
 * no ring of it (written on rank W and read only on ranks other than 0),
 * as rank W last reported them: every rank sends rank 0, with every 4th
 * control-plane heartbeat (WEIR_HEARTBEAT_MS / 2, default 1 s) and once
 * more when the dag is torn down, the counters of up to 128 such rings it
 * writes, taking turns past that. So rank 0 sees every channel of the dag,
 * these at most WEIR_HEARTBEAT_MS / 2 old while it runs and final after
 * teardown (after a failure: the last report), and its stats
 * segment (weir-top) carries them too. 0; -ENOENT when rank 0 has a ring
 * of i (weir_dag_chan_stats) or no report came yet; -EINVAL on another
 * rank or for i out of range. The readers' ids and pids are the other
 * rank's.
 */
WEIR_API int weir_dag_chan_remote_stats(const weir_dag *d, unsigned i,
                                        struct weir_chan_stats *st);
/*
 * Links of a dag across ranks (engine/remote.c). A channel whose writer and
 * readers sit on different ranks crosses between them on links: on the
 * writer's rank one sending link per rank that reads it, on a reading rank
 * one receiving link from the writer's rank (weir_dag_chan_stats then
 * describes this rank's ring of the channel: the writer's own ring, or the
 * receiving ring its readers here share). The channels between the same
 * two ranks in one direction over one transport ride one connection per
 * 64 of them (in channel order; `conn` says which): messages, bytes, acked
 * and credit_stalls are this channel's own stream, frames, batches,
 * reconnects and last_rtt_ns the connection's, shared by conn_streams
 * channels. Counters survive a failure (the last values are kept when the
 * links are broken).
 */
struct weir_dag_link_stats {
    unsigned chan;          /* channel index */
    int rank;               /* this rank */
    int peer_rank;          /* the rank at the other end */
    int sending;            /* 1: written here, sent to peer_rank; 0: received from it */
    int status;             /* the stream's: 0 running, -EPIPE ended cleanly, else its failure */
    char peer[80];          /* "ADDR:PORT" of the connection's current or last peer, "" none yet */
    uint64_t messages;      /* committed into this rank's ring (receiving) / sent (sending:
                               messages sent again after a resume count again; acked
                               counts each message once) */
    uint64_t bytes;         /* payload bytes of those */
    uint64_t acked;         /* messages the receiving end acknowledged */
    uint64_t credit_stalls; /* sending: times the stream had data but no credit */
    unsigned conn_streams;  /* channels on the connection (1: the figures below are its alone) */
    uint64_t frames;        /* connection: frames sent or received, control frames included */
    uint64_t batches;       /* connection: transport sends (each one or more frames) */
    uint64_t reconnects;    /* connection: connections after the first one */
    uint64_t last_rtt_ns;   /* connection: last heartbeat round trip as this end measured
                               it (either end heartbeats), 0 if none yet */
    unsigned conn;          /* which connection between the two ranks over this transport:
                               channels are cut into groups of 64 in channel order, each
                               on its own connection (0: the first 64) */
    uint64_t stream_frames; /* this channel's own DATA and CLOSE frames, sent (sending) or
                               received (receiving); resent ones count again */
    uint64_t stream_batches; /* this end's transport sends that carried this channel's
                               frames: its DATA and CLOSE (sending), its ACKs (receiving);
                               stream_frames / stream_batches is how well it coalesces */
};

/* Number of links of channel i on this rank (0 on one rank, for a channel
 * that does not cross ranks, for i out of range, and on a rank the
 * channel does not touch). */
WEIR_API unsigned weir_dag_chan_nlinks(const weir_dag *d, unsigned i);

/* Counters of link k (0 .. weir_dag_chan_nlinks - 1, sending links in rank
 * order) of channel i. 0, or -EINVAL (NULL, i out of range), -ENOENT (no
 * link k: the text names the channel, the rank and its links). */
WEIR_API int weir_dag_link_stats(const weir_dag *d, unsigned i, unsigned k,
                                 struct weir_dag_link_stats *st);

/*
 * Rank 0 of a dag across ranks: the links of channel i on the other ranks,
 * as those ranks last reported them (with the same STATS as
 * weir_dag_chan_remote_stats: every WEIR_HEARTBEAT_MS / 2 while the dag
 * runs, up to 128 links per rank and report, taking turns past that, and
 * once more at teardown). Links are numbered in rank order (rank 1's, in
 * its weir_dag_link_stats order, then rank 2's, ...); st->rank says whose.
 * So rank 0 alone can show every link of the graph (its weir-top does).
 * A rank that failed sends no more: its links keep their last report, with
 * status set to the failure's code where it said running.
 * weir_dag_chan_remote_nlinks: their number (0 on other ranks, on one rank
 * and for i out of range). weir_dag_link_remote_stats: 0; -ENOENT (no link
 * k, or that rank has not reported it yet, named); -EINVAL (NULL, i out of
 * range, a rank other than 0).
 */
WEIR_API unsigned weir_dag_chan_remote_nlinks(const weir_dag *d, unsigned i);
WEIR_API int weir_dag_link_remote_stats(const weir_dag *d, unsigned i, unsigned k,
                                        struct weir_dag_link_stats *st);

/* Name of the writer of channel i: "driver" or the name of the actor whose method produces
 * it (also when it runs fused on a worker); owned by the dag (valid until weir_dag_free).
 * NULL if i is out of range. */
WEIR_API const char *weir_dag_chan_writer(const weir_dag *d, unsigned i);

/* Per-actor view of the same counters: where each actor's time went. */
struct weir_actor_stats {
    char name[WEIR_MAX_NAME + 1];
    int isolation;              /* WEIR_THREAD or WEIR_PROCESS */
    int pid;                    /* the actor's process (the driver's for threads) */
    unsigned restarts;          /* process restarts so far */
    uint64_t input_starved_ns;  /* time spent waiting for input messages (all inputs) */
    uint64_t output_blocked_ns; /* time spent waiting for readers to free output slots */
    int worker;                 /* WEIR_THREAD: its worker (1..; co-scheduling above); the
                                   waits above are then its worker's, shared by the actors
                                   fused there. WEIR_PROCESS: 0 */
};

/* Number of actors of the dag. */
WEIR_API unsigned weir_dag_nactors(const weir_dag *d);

/*
 * Counters of actor i (0 .. nactors-1, in creation order). 0, or -EINVAL
 * (NULL or i out of range). Across ranks, an actor hosted by another rank:
 * on rank 0 as its rank last reported it (with the channel counters, every
 * WEIR_HEARTBEAT_MS / 2; pid is a process there), pid 0 and zeros before
 * the first report and on the other ranks. busy time is
 * roughly elapsed - input_starved - output_blocked: the actor with the
 * most busy time is the pipeline's bottleneck.
 */
WEIR_API int weir_dag_actor_stats(const weir_dag *d, unsigned i, struct weir_actor_stats *st);

#ifdef __cplusplus
}
#endif
#endif
