/* SPDX-License-Identifier: MIT */
/*
 * perf/bench.h - shared pieces of weir-bench: the result table, the
 * options, the party runner (threads or forked processes), statistics.
 *
 * Design notes
 *
 * A benchmark case is a small set of "parties" (a writer and its readers,
 * a pinger and its echo) that run a function concurrently, either as
 * threads of this process or as forked children. Everything a party
 * reports back lives in one MAP_SHARED anonymous mapping (struct
 * bench_shared, plus sample buffers from bench_shm_alloc), so the same
 * code works in both modes. Party 0 normally runs on the calling thread
 * (so a writer in process mode is the parent, which created the anonymous
 * channels before fork); cases that must keep the parent clean (iceoryx,
 * whose runtime cannot survive fork) ask for every party to be a child.
 *
 * Nothing may hang: every wait in this program is bounded (weir calls by
 * opts.timeout_ms, spin loops by bench_spin_deadline, children by
 * waitpid with a deadline followed by SIGKILL).
 */
#ifndef WEIR_PERF_BENCH_H
#define WEIR_PERF_BENCH_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define BENCH_MAX_PARTIES 8
#define BENCH_ERR_LEN 240
#define BENCH_MAX_ROUNDS 9

/* ---------------------------------------------------------------- options */

struct bench_opts {
    int quick;             /* --quick: short budgets */
    int json;              /* --json: one JSON object on stdout, nothing else */
    const char *filter;    /* --filter: run only cases whose "impl name" contains it */
    const char *svg_dir;   /* --svg DIR: SVG plots of the run (perf/svg.c) */
    int list;              /* --list: print the case names, run nothing */
    int no_zmq;            /* --no-zmq */
    int no_iceoryx;        /* --no-iceoryx */
    int timeout_ms;        /* bound of every blocking call (default 5000) */
    uint64_t budget_ns;    /* time budget of one throughput case */
    uint64_t max_msgs;     /* message budget of one throughput case */
    uint64_t pp_budget_ns; /* time budget of one ping-pong case */
    uint64_t pp_max_rt;    /* round-trip budget of one ping-pong case */
    unsigned depth;        /* --depth: override bench_depth_for() (0: no) */
    int rounds;            /* --rounds: the plan runs this many times; rows keep the best */
    int round;             /* the round running now (0-based) */
    int unpinned_multi;    /* --pin-multi none: 3+ parties float (default rr) */
    int budget_given;      /* --budget-ms was given */
    int pin_given;         /* --pin-multi was given (dag: unpinned unless "rr" is asked for) */
    int threads;           /* dag --threads N: workers of the .fused rows (default 2) */
    int nodes;             /* dag --nodes N: the cross-rank chain (bench_dag_nodes.c); 0: off */
};

extern struct bench_opts bench_opts;

/* ---------------------------------------------------------------- results */

/* One row of the table. Negative numbers mean "does not apply". */
struct bench_row {
    char name[48];
    char impl[24];
    size_t msg_bytes;
    int readers;
    unsigned depth; /* queue depth (slots, HWM, queue capacity); 0: n/a */
    double msgs_per_s;
    double mb_per_s;
    double p50_ns; /* latency percentiles: chan one way (ping-pong round trip / 2);
                      dag the whole round trip of one execution */
    double p99_ns;
    char notes[160];
    int failed;  /* the case ran and failed: error holds why */
    int skipped; /* the case could not run here: error holds why */
    char error[BENCH_ERR_LEN];
    /* Filled by bench_emit: the figure of each round (msgs/s, or p50 for latency rows). */
    int nrounds;
    double round_val[BENCH_MAX_ROUNDS];
};

/* Initialise a row with everything "n/a". */
void bench_row_init(struct bench_row *r, const char *name, const char *impl, size_t msg_bytes,
                    int readers, unsigned depth);

/*
 * Hand in a finished row. The first round appends it; later rounds merge
 * into it, keeping the best figures (highest msgs/s; lowest p50 with its
 * p99 for latency rows). A failure in any round fails the case.
 */
void bench_emit(const struct bench_row *r);

/* Find an emitted row (msg_bytes 0 / readers 0 match any); NULL if none. */
const struct bench_row *bench_find(const char *name, const char *impl, size_t msg_bytes,
                                   int readers);

/* --svg: write DIR/<cmd>-throughput.svg and DIR/<cmd>-latency.svg from the rows (perf/svg.c).
 * 0, or -1 with the reason on stderr. */
int bench_svg_write(const char *dir, const char *cmd, const struct bench_row *rows, size_t n);

/* A note printed in the table (stdout) or collected for JSON ("notes"). */
void bench_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * Append "; text" to the notes of an emitted row that ran (name, impl and
 * msg_bytes match; readers ignored): figures computed from other rows, such
 * as ratios beside each figure, once every round ran. No row: nothing.
 */
void bench_annotate(const char *name, const char *impl, size_t msg_bytes, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Note the load average and warn when other tasks were runnable at start. */
void bench_note_load(void);

/* Run plan() bench_opts.rounds times (bench_opts.round set), noting the CPU
 * parallelism (bench_parallelism) before and after each round. */
void bench_rounds(void (*plan)(void));

/* Should a case with this name/impl run (filter) ? */
int bench_selected(const char *name, const char *impl);

/*
 * Start a case: 1 to run it; 0 when the filter excludes it or in --list
 * mode (which prints the case instead).
 */
int bench_begin(const struct bench_row *r);

/*
 * A ratio of the targets: num / den compared with target by op
 * ("<=" or ">="). num or den <= 0 (a missing case): printed as n/a.
 */
void bench_ratio(const char *key, const char *desc, double num, double den, const char *op,
                 double target, const char *why_missing);

/* Parse the common options of a subcommand: 0 run, 1 help shown, -1 usage error. */
int bench_parse_opts(int argc, char **argv, const char *cmd);

/* Print the JSON object or the ratios; returns the exit status. */
int bench_finish(const char *cmd);

/* ----------------------------------------------------------- party runner */

struct bench_res {
    uint64_t msgs;    /* messages sent (writer) or received (reader) */
    uint64_t t_start; /* ns, CLOCK_MONOTONIC */
    uint64_t t_end;
    uint64_t sink;     /* checksum, keeps reads alive */
    uint64_t nsamples; /* latency samples written */
    int err;           /* 0 or a negative errno */
    uint64_t t_fail;   /* when err was set: the earliest failure is the cause */
    char errmsg[BENCH_ERR_LEN];
};

struct bench_shared {
    _Alignas(64) atomic_int arrived; /* barrier counter (monotonic) */
    _Alignas(64) atomic_int abort;   /* set by a failing party: others stop */
    _Alignas(64) struct bench_res res[BENCH_MAX_PARTIES];
};

enum bench_mode { BENCH_THREADS, BENCH_PROCS };

typedef int (*bench_party_fn)(struct bench_shared *sh, int idx, void *arg);

struct bench_run {
    enum bench_mode mode;
    int nparties;
    int cpus[BENCH_MAX_PARTIES]; /* CPU per party, -1: any */
    int all_children;            /* BENCH_PROCS: party 0 is a child too */
    int clean_exit;              /* children end with exit() (run destructors), not _exit() */
    bench_party_fn fn;
    void *arg;
    int deadline_ms; /* kill/abandon after this (0: derived) */
};

/*
 * Run the parties and wait for them. Returns 0, or the first negative
 * error of a party (its text in sh->res[i].errmsg) or of the runner.
 * sh must come from bench_shared_new().
 */
int bench_run_parties(struct bench_shared *sh, const struct bench_run *run);

struct bench_shared *bench_shared_new(void);
void bench_shared_free(struct bench_shared *sh);

/* Memory shared with forked children (MAP_SHARED | MAP_ANONYMOUS); zeroed. */
void *bench_shm_alloc(size_t bytes);
void bench_shm_free(void *p, size_t bytes);

/*
 * Barrier for the n parties of one run: the k-th call of every party
 * returns when all n made their k-th call. *gen is the party's own call
 * counter (start at 0). Returns 0 or -ETIMEDOUT / -ECANCELED (abort).
 */
int bench_barrier(struct bench_shared *sh, int n, int *gen);

/* Record a failure of party idx (first one wins) and raise abort. */
int bench_fail(struct bench_shared *sh, int idx, int err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Pin the calling thread to cpu (-1: every CPU). 0 or negative errno. */
int bench_pin_self(int cpu);

uint64_t bench_now_ns(void);

/*
 * How many CPUs really ran at once just now (1.0 .. 2.0 on 2 CPUs): the
 * work of two spinning threads on CPUs 0 and 1 over that of one. A VM
 * whose vCPUs share a physical core shows ~1.0; every cross-CPU figure is
 * then meaningless. Takes 40 ms.
 */
double bench_parallelism(void);

static inline void bench_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ volatile("yield");
#endif
}

/* Keep a value (and the memory behind a pointer) alive for the compiler. */
static inline void bench_escape(const void *p)
{
    __asm__ volatile("" : : "r"(p) : "memory");
}

/* Sum every 64-bit word of a buffer (len multiple of 8): "read it whole". */
uint64_t bench_sum64(const void *p, size_t len);

/* Touch one byte per cache line. */
uint64_t bench_touch_lines(const void *p, size_t len);

/* --------------------------------------------------------------- statistics */

/* Sort the samples in place and return the q-quantile (0..1). */
double bench_percentile_sorted(const uint64_t *sorted, size_t n, double q);
void bench_sort_u64(uint64_t *v, size_t n);

/*
 * Fill row p50/p99 from n round-trip samples (sorted in place), halving
 * them (one way), and msgs_per_s as round trips per second over `span_ns`.
 */
void bench_row_latency(struct bench_row *r, uint64_t *rt_samples, size_t n, uint64_t span_ns);

/* Fill msgs_per_s and mb_per_s from a message count over a span. */
void bench_row_throughput(struct bench_row *r, uint64_t msgs, uint64_t span_ns);

/* Mark the row failed with the first error found in sh (or rc). */
void bench_row_fail_from(struct bench_row *r, const struct bench_shared *sh, int nparties, int rc);

/* --------------------------------------------------------- case families */

/* Depth (slots / queue capacity) used for a message size. */
unsigned bench_depth_for(size_t msg_bytes);

/* Warm-up messages before the timed part of a throughput run. */
uint64_t bench_warmup_for(size_t msg_bytes, unsigned depth);

/* Pattern buffer for writers that copy in (64-byte aligned; never freed). */
const uint8_t *bench_src_buf(size_t bytes);

/* Stamp and check: seq in the first 8 bytes, ~seq in the last 8 (len >= 16). */
static inline void bench_stamp(void *p, size_t len, uint64_t seq)
{
    __builtin_memcpy(p, &seq, 8);
    if (len >= 16) {
        uint64_t inv = ~seq;
        __builtin_memcpy((char *)p + len - 8, &inv, 8);
    }
}

static inline int bench_check(const void *p, size_t len, uint64_t seq)
{
    uint64_t a;
    __builtin_memcpy(&a, p, 8);
    if (a != seq) return 0;
    if (len >= 16) {
        uint64_t b;
        __builtin_memcpy(&b, (const char *)p + len - 8, 8);
        if (b != ~seq) return 0;
    }
    return 1;
}

/* Sections of the chan subcommand (each emits its rows). */
void bench_baseline_floor(void);
void bench_baseline_memcpy(size_t msg_bytes);
/* The ideal SPSC ring (perf/bench_baselines.c): row tput.thr.read / ideal-ring. */
void bench_baseline_ideal_ring(size_t msg_bytes);
void bench_baseline_fd_tput(int unix_sock, size_t msg_bytes);
void bench_baseline_fd_pingpong(int unix_sock, int spin, size_t msg_bytes);
void bench_baseline_zmq_tput(int ipc, size_t msg_bytes);
void bench_baseline_zmq_pingpong(int ipc, size_t msg_bytes);
int bench_have_zmq(void);

void bench_chan_tput(enum bench_mode mode, int zero_copy, size_t msg_bytes, int readers);
/* batch: the .batch rows (weir_chan_reserve_n/commit_n, read_n/release_n). */
void bench_chan_tput_batch(enum bench_mode mode, int zero_copy, int batch, size_t msg_bytes,
                           int readers);
void bench_chan_pingpong(enum bench_mode mode, int zero_copy, size_t msg_bytes);

int bench_have_iceoryx(void);
void bench_iceoryx_tput(int zero_copy, size_t msg_bytes);
void bench_iceoryx_pingpong(enum bench_mode mode, int zero_copy, size_t msg_bytes);
void bench_iceoryx_stop(void);

/*
 * Column names of the report: the JSON key of the rate (default
 * "msgs_per_s"), its table heading ("msgs/s") and the heading of the
 * readers column ("rd"). The dag subcommand counts executions and actors.
 */
void bench_set_columns(const char *rate_key, const char *rate_col, const char *readers_col);

/* Subcommands. */
int bench_cmd_chan(int argc, char **argv);
int bench_cmd_dag(int argc, char **argv);
int bench_cmd_net(int argc, char **argv);
int bench_cmd_tensor(int argc, char **argv);

/* ----------------------------------------------------- ping-pong clock */

/*
 * The clock of a ping-pong loop: after round trip i, bench_pp_tick()
 * records its time (from round trip `warm` on, which also starts the time
 * budget) and says when the budget is spent; bench_pp_full() says when the
 * sample buffer is. bench_pp_finish() hands the samples to the result.
 */
struct bench_pp {
    uint64_t k, t_prev, t_first, deadline, warm;
    uint64_t *samples;
};

static inline struct bench_pp bench_pp_start(uint64_t warm, uint64_t *samples)
{
    return (struct bench_pp){0, bench_now_ns(), 0, UINT64_MAX, warm, samples};
}

static inline int bench_pp_full(const struct bench_pp *p)
{
    return p->k >= bench_opts.pp_max_rt;
}

static inline int bench_pp_tick(struct bench_pp *p, uint64_t i)
{
    uint64_t t = bench_now_ns();
    if (i == p->warm) {
        p->t_first = p->t_prev;
        p->deadline = t + bench_opts.pp_budget_ns;
    }
    if (i >= p->warm)
        p->samples[p->k++] = t - p->t_prev;
    p->t_prev = t;
    return t >= p->deadline;
}

static inline void bench_pp_finish(const struct bench_pp *p, struct bench_res *res)
{
    res->nsamples = p->k;
    res->t_start = p->t_first;
    res->t_end = p->t_prev;
}

#endif
