/* SPDX-License-Identifier: MIT */
/*
 * perf/bench_main.c - weir-bench: subcommand dispatch, options, and the
 * report (human table or one JSON object on stdout).
 *
 * Adding a subcommand: write bench_cmd_<name>(argc, argv) in its own file,
 * parse its options with bench_parse_opts(), emit rows with bench_emit()
 * and ratios with bench_ratio(), then return bench_finish(). Add it to
 * the table `cmds` below.
 */
#include "bench.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct bench_opts bench_opts = {
    .timeout_ms = 5000,
    .threads = 2,
};

struct cmd {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *summary;
};

static const struct cmd cmds[] = {
    {"chan", bench_cmd_chan,
     "channel throughput (1->1, 1->2, 1->3) and ping-pong latency, with baselines"},
    {"dag", bench_cmd_dag,
     "compiled graphs (1 actor, chain of 4, diamond, fan-out to 4), threads and processes:\n"
     "           round-trip latency and pipelined executions/s, beside a plain call loop\n"
     "           and a hand-written pthread pipeline"},
    {"net", bench_cmd_net,
     "links over TCP (weir-uring, weir-zmq) beside raw TCP and ZeroMQ, loopback and a\n"
     "           veth pair between network namespaces: throughput 64 B..1 MiB, 64 B ping-pong\n"
     "           ('weir-bench net --help')"},
    {"tensor", bench_cmd_tensor,
     "CPU tensors (64 KiB .. 256 MiB) through one actor and a chain of 2, threads and\n"
     "           processes, beside memcpy of the same size; the simulated device's copies"},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: weir-bench <subcommand> [options]\n"
               "\n"
               "subcommands:\n");
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
        fprintf(f, "  %-8s %s\n", cmds[i].name, cmds[i].summary);
    fprintf(f, "\n"
               "options:\n"
               "  --quick           short budgets (whole run < 30 s on 2 cores)\n"
               "  --json            print only one JSON object on stdout:\n"
               "                    {\"cases\":[...],\"ratios\":{...},\"notes\":[...]}\n"
               "  --filter A,B,...  run only cases whose \"impl name msg_bytes rN\" contains\n"
               "                    one of the strings (e.g. --filter weir, --filter pingpong,\n"
               "                    --filter 'weir tput.thr.read 64 r,memcpy')\n"
               "  --list            list the cases, run nothing\n"
               "  --svg DIR         also write DIR/<cmd>-throughput.svg and -latency.svg\n"
               "  --budget-ms N     time budget of each case, shared by its rounds\n"
               "                    (default 1200, quick 120; dag quick 250)\n"
               "  --rounds N        run the whole plan N times (1..9, default 3), interleaved,\n"
               "                    and keep each case's best round (noise only slows down)\n"
               "  --timeout-ms N    bound of every blocking call (default 5000)\n"
               "  --threads N       dag: workers of the weir .fused rows (1..64, default 2:\n"
               "                    weir_compile_opts.threads; .thr rows run a thread per actor)\n"
               "  --nodes 2         dag: only the chain of 4 with its middle edge across two\n"
               "                    ranks, each in a network namespace of its own (weir-run\n"
               "                    --netns, root), beside the same chain on one rank and a\n"
               "                    spinning TCP ping-pong over the same namespaces\n"
               "  --depth N         ring depth / queue capacity for every size (1..65536;\n"
               "                    iceoryx queues are capped at its maximum of 256;\n"
               "                    default 4096 up to 64 B, 1024 up to 1 KiB, 16 for 64 KiB, 4 for 1 MiB);\n"
               "                    dag: max_inflight of weir and queue capacity of the\n"
               "                    pthread pipeline (default 16)\n"
               "  --pin-multi MODE  chan: 3-4 parties on the 2 cores: rr (party i on CPU\n"
               "                    i%%2, default) or none (unpinned); 2 parties: always CPUs 0/1;\n"
               "                    dag: none (default) or rr (driver on CPU 0, actor i on\n"
               "                    CPU (i+1)%%ncpu, weir and pthread alike)\n"
               "  --no-zmq          chan: skip the ZeroMQ baselines\n"
               "  --no-iceoryx      chan: skip the iceoryx baselines (and iox-roudi)\n"
               "  -h, --help        this text\n"
               "\n"
               "chan cases: tput.<thr|proc>.<read|zc|copy> (1 writer -> rd readers),\n"
               "pingpong.<thr|proc>.<read|zc|copy|block|spin>, floor.1line/2lines (cache-line\n"
               "ping-pong between two pinned threads), memcpy; thr = threads, proc = processes\n"
               "(fork); --list shows every case, the table's notes say what each one does.\n"
               "\n"
               "dag cases: <shape>.<mode>.<lat|tput> for shapes one, chain4, diamond, fanout4\n"
               "and payloads of 8 B and 64 KiB; impl weir (mode thr: a thread per actor,\n"
               "fused: the thread actors fused on --threads N workers (default 2), proc:\n"
               "every actor a process), pthread (thr: thread per actor, mutex/condvar queues),\n"
               "floor (call: the stage functions called in a loop). lat = one execution at a\n"
               "time, p50/p99 of the round trip; tput = depth executions in flight, exec/s.\n"
               "Every output is checked. JSON rows carry executions_per_s.\n"
               "\n"
               "Each case runs for its time budget or its message budget, whichever\n"
               "comes first. Exit status: 0 all cases ran, 1 a case failed, 2 usage.\n");
}

int bench_parse_opts(int argc, char **argv, const char *cmd)
{
    enum { O_BUDGET = 256, O_TIMEOUT, O_NOZMQ, O_NOICE, O_LIST, O_DEPTH, O_PINMULTI, O_ROUNDS, O_SVG,
           O_THREADS, O_NODES };
    static const struct option lo[] = {
        {"quick", no_argument, NULL, 'q'},
        {"json", no_argument, NULL, 'j'},
        {"filter", required_argument, NULL, 'f'},
        {"list", no_argument, NULL, O_LIST},
        {"budget-ms", required_argument, NULL, O_BUDGET},
        {"timeout-ms", required_argument, NULL, O_TIMEOUT},
        {"no-zmq", no_argument, NULL, O_NOZMQ},
        {"no-iceoryx", no_argument, NULL, O_NOICE},
        {"depth", required_argument, NULL, O_DEPTH},
        {"rounds", required_argument, NULL, O_ROUNDS},
        {"pin-multi", required_argument, NULL, O_PINMULTI},
        {"svg", required_argument, NULL, O_SVG},
        {"threads", required_argument, NULL, O_THREADS},
        {"nodes", required_argument, NULL, O_NODES},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    long budget_ms = -1;
    opterr = 0;
    optind = 1;
    for (;;) {
        int o = getopt_long(argc, argv, ":h", lo, NULL);
        if (o == -1) break;
        char *end = NULL;
        switch (o) {
        case 'q':
            bench_opts.quick = 1;
            break;
        case 'j':
            bench_opts.json = 1;
            break;
        case 'f':
            bench_opts.filter = optarg;
            break;
        case O_LIST:
            bench_opts.list = 1;
            break;
        case O_BUDGET:
            errno = 0;
            budget_ms = strtol(optarg, &end, 10);
            if (errno || !end || *end || budget_ms < 1 || budget_ms > 600000) {
                fprintf(stderr, "weir-bench %s: --budget-ms wants 1..600000, not '%s'\n", cmd,
                        optarg);
                return -1;
            }
            break;
        case O_TIMEOUT: {
            errno = 0;
            long t = strtol(optarg, &end, 10);
            if (errno || !end || *end || t < 10 || t > 600000) {
                fprintf(stderr, "weir-bench %s: --timeout-ms wants 10..600000, not '%s'\n", cmd,
                        optarg);
                return -1;
            }
            bench_opts.timeout_ms = (int)t;
            break;
        }
        case O_DEPTH: {
            errno = 0;
            long d = strtol(optarg, &end, 10);
            if (errno || !end || *end || d < 1 || d > 65536) {
                fprintf(stderr, "weir-bench %s: --depth wants 1..65536, not '%s'\n", cmd, optarg);
                return -1;
            }
            bench_opts.depth = (unsigned)d;
            break;
        }
        case O_THREADS: {
            errno = 0;
            long t = strtol(optarg, &end, 10);
            if (errno || !end || *end || t < 1 || t > 64) {
                fprintf(stderr, "weir-bench %s: --threads wants 1..64, not '%s'\n", cmd, optarg);
                return -1;
            }
            bench_opts.threads = (int)t;
            break;
        }
        case O_NODES: {
            errno = 0;
            long t = strtol(optarg, &end, 10);
            if (strcmp(cmd, "dag") != 0) {
                fprintf(stderr, "weir-bench %s: --nodes is a dag option\n", cmd);
                return -1;
            }
            if (errno || !end || *end || t != 2) {
                fprintf(stderr, "weir-bench dag: --nodes wants 2 (a chain of 4 whose middle edge "
                                "crosses two ranks), not '%s'\n", optarg);
                return -1;
            }
            bench_opts.nodes = (int)t;
            break;
        }
        case O_ROUNDS: {
            errno = 0;
            long r = strtol(optarg, &end, 10);
            if (errno || !end || *end || r < 1 || r > BENCH_MAX_ROUNDS) {
                fprintf(stderr, "weir-bench %s: --rounds wants 1..%d, not '%s'\n", cmd,
                        BENCH_MAX_ROUNDS, optarg);
                return -1;
            }
            bench_opts.rounds = (int)r;
            break;
        }
        case O_SVG:
            bench_opts.svg_dir = optarg;
            break;
        case O_PINMULTI:
            bench_opts.pin_given = 1;
            if (!strcmp(optarg, "rr")) {
                bench_opts.unpinned_multi = 0;
            } else if (!strcmp(optarg, "none")) {
                bench_opts.unpinned_multi = 1;
            } else {
                fprintf(stderr, "weir-bench %s: --pin-multi wants rr or none, not '%s'\n", cmd,
                        optarg);
                return -1;
            }
            break;
        case O_NOZMQ:
            bench_opts.no_zmq = 1;
            break;
        case O_NOICE:
            bench_opts.no_iceoryx = 1;
            break;
        case 'h':
            usage(stdout);
            return 1;
        case ':':
            fprintf(stderr, "weir-bench %s: option '%s' needs a value (try 'weir-bench --help')\n",
                    cmd, argv[optind - 1]);
            return -1;
        default:
            fprintf(stderr, "weir-bench %s: unknown option '%s' (try 'weir-bench --help')\n", cmd,
                    argv[optind - 1]);
            return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "weir-bench %s: unexpected argument '%s' (try 'weir-bench --help')\n", cmd,
                argv[optind]);
        return -1;
    }
    bench_opts.budget_given = budget_ms >= 0;
    if (budget_ms < 0) budget_ms = bench_opts.quick ? 120 : 1200;
    if (!bench_opts.rounds) bench_opts.rounds = 3;
    /* The budget of a case is shared by its rounds. */
    bench_opts.budget_ns = (uint64_t)budget_ms * 1000000u / (uint64_t)bench_opts.rounds;
    bench_opts.pp_budget_ns = bench_opts.budget_ns;
    bench_opts.max_msgs = bench_opts.quick ? 20000000u : 400000000u;
    bench_opts.pp_max_rt = bench_opts.quick ? 100000u : 1000000u;
    return 0;
}

/* ------------------------------------------------------------------ report */

static struct bench_row *rows;
static size_t nrows, caprows;
static char **notes;
static size_t nnotes;
static int any_failed;

struct ratio {
    char key[48];
    char desc[96];
    double value; /* < 0: n/a */
    char op[3];
    double target;
    int ok;
    char why[96];
};
static struct ratio ratios[64];

/* Column names (bench_set_columns). */
static const char *rate_key = "msgs_per_s", *rate_col = "msgs/s", *readers_col = "rd";

void bench_set_columns(const char *key, const char *col, const char *rcol)
{
    rate_key = key;
    rate_col = col;
    readers_col = rcol;
}
static size_t nratios;

void bench_row_init(struct bench_row *r, const char *name, const char *impl, size_t msg_bytes,
                    int readers, unsigned depth)
{
    memset(r, 0, sizeof(*r));
    snprintf(r->name, sizeof(r->name), "%s", name);
    snprintf(r->impl, sizeof(r->impl), "%s", impl);
    r->msg_bytes = msg_bytes;
    r->readers = readers;
    r->depth = depth;
    r->msgs_per_s = r->mb_per_s = r->p50_ns = r->p99_ns = -1;
}

/* The filter is a comma-separated list of substrings of "impl name msg_bytes rN". */
static int selected_key(const char *key)
{
    if (!bench_opts.filter) return 1;
    const char *f = bench_opts.filter;
    while (*f) {
        size_t n = strcspn(f, ",");
        char part[128];
        snprintf(part, sizeof(part), "%.*s", (int)(n < sizeof(part) ? n : sizeof(part) - 1), f);
        if (part[0] && strstr(key, part)) return 1;
        f += n;
        if (*f == ',') f++;
    }
    return 0;
}

int bench_selected(const char *name, const char *impl)
{
    char key[96];
    snprintf(key, sizeof(key), "%s %s", impl, name);
    return selected_key(key);
}

int bench_begin(const struct bench_row *r)
{
    char key[128];
    snprintf(key, sizeof(key), "%s %s %zu r%d", r->impl, r->name, r->msg_bytes, r->readers);
    if (!selected_key(key)) return 0;
    if (bench_opts.list) {
        printf("%-10s %-20s %9zu %d\n", r->impl, r->name, r->msg_bytes, r->readers);
        return 0;
    }
    return 1;
}

static void fmt_rate(char *out, size_t n, double v)
{
    if (v < 0)
        snprintf(out, n, "-");
    else if (v >= 1e9)
        snprintf(out, n, "%.2fG", v / 1e9);
    else if (v >= 1e6)
        snprintf(out, n, "%.2fM", v / 1e6);
    else if (v >= 1e3)
        snprintf(out, n, "%.1fk", v / 1e3);
    else
        snprintf(out, n, "%.0f", v);
}

static void fmt_num(char *out, size_t n, double v)
{
    if (v < 0)
        snprintf(out, n, "-");
    else if (v < 10)
        snprintf(out, n, "%.2f", v);
    else
        snprintf(out, n, "%.0f", v);
}

static void print_header(void)
{
    printf("%-20s %-10s %9s %3s %5s %9s %9s %8s %8s  %s\n", "name", "impl", "msg_bytes",
           readers_col, "depth", rate_col, "MB/s", "p50_ns", "p99_ns", "notes");
    printf("%.*s\n", 120,
           "---------------------------------------------------------------------------------"
           "---------------------------------------------------------------------------------");
}

static void print_row(const struct bench_row *r)
{
    char rate[16], mb[16], p50[16], p99[16], depth[16], rd[16];
    fmt_rate(rate, sizeof(rate), r->msgs_per_s);
    fmt_num(mb, sizeof(mb), r->mb_per_s);
    fmt_num(p50, sizeof(p50), r->p50_ns);
    fmt_num(p99, sizeof(p99), r->p99_ns);
    if (r->depth)
        snprintf(depth, sizeof(depth), "%u", r->depth);
    else
        snprintf(depth, sizeof(depth), "-");
    if (r->readers > 0)
        snprintf(rd, sizeof(rd), "%d", r->readers);
    else
        snprintf(rd, sizeof(rd), "-");
    const char *tag = r->failed ? "FAILED: " : r->skipped ? "skipped: " : "";
    printf("%-20s %-10s %9zu %3s %5s %9s %9s %8s %8s  %s%s%s%s\n", r->name, r->impl, r->msg_bytes,
           rd, depth, rate, mb, p50, p99, r->notes,
           (r->failed || r->skipped) && r->notes[0] ? "; " : "", tag,
           (r->failed || r->skipped) ? r->error : "");
    fflush(stdout);
}

static int is_latency_row(const struct bench_row *r)
{
    return r->p50_ns >= 0;
}

static double round_figure(const struct bench_row *r)
{
    return is_latency_row(r) ? r->p50_ns : r->msgs_per_s;
}

static struct bench_row *find_same(const struct bench_row *r)
{
    for (size_t i = 0; i < nrows; i++)
        if (!strcmp(rows[i].name, r->name) && !strcmp(rows[i].impl, r->impl) &&
            rows[i].msg_bytes == r->msg_bytes && rows[i].readers == r->readers)
            return &rows[i];
    return NULL;
}

static void progress(const struct bench_row *r)
{
    static int tty = -1;
    if (tty < 0) tty = isatty(2);
    if (!tty) return;
    fprintf(stderr, "\r\033[K[round %d/%d] %s %s %zu B r%d", bench_opts.round + 1,
            bench_opts.rounds, r->impl, r->name, r->msg_bytes, r->readers);
}

void bench_emit(const struct bench_row *r)
{
    progress(r);
    if (r->failed) {
        any_failed = 1;
        fprintf(stderr, "%sweir-bench: %s %s %zu B r%d (round %d): FAILED: %s\n",
                isatty(2) ? "\r\033[K" : "", r->impl, r->name, r->msg_bytes, r->readers,
                bench_opts.round + 1, r->error);
    }
    struct bench_row *old = find_same(r);
    if (old) {
        if (old->failed || old->skipped) return;
        if (r->failed || r->skipped) {
            double keep[BENCH_MAX_ROUNDS];
            int nk = old->nrounds;
            memcpy(keep, old->round_val, sizeof(keep));
            *old = *r;
            old->nrounds = nk;
            memcpy(old->round_val, keep, sizeof(keep));
            return;
        }
        double v = round_figure(r);
        if (old->nrounds < BENCH_MAX_ROUNDS) old->round_val[old->nrounds++] = v;
        int better = is_latency_row(r) ? v < old->p50_ns : v > old->msgs_per_s;
        if (better) {
            old->msgs_per_s = r->msgs_per_s;
            old->mb_per_s = r->mb_per_s;
            old->p50_ns = r->p50_ns;
            old->p99_ns = r->p99_ns;
        }
        return;
    }
    if (nrows == caprows) {
        size_t nc = caprows ? caprows * 2 : 64;
        struct bench_row *nr = realloc(rows, nc * sizeof(*nr));
        if (!nr) {
            fprintf(stderr, "weir-bench: out of memory\n");
            exit(1);
        }
        rows = nr;
        caprows = nc;
    }
    struct bench_row *n = &rows[nrows++];
    *n = *r;
    n->nrounds = 0;
    if (!r->failed && !r->skipped) n->round_val[n->nrounds++] = round_figure(r);
}

const struct bench_row *bench_find(const char *name, const char *impl, size_t msg_bytes,
                                   int readers)
{
    for (size_t i = 0; i < nrows; i++) {
        const struct bench_row *r = &rows[i];
        if (strcmp(r->name, name) || strcmp(r->impl, impl)) continue;
        if (msg_bytes && r->msg_bytes != msg_bytes) continue;
        if (readers && r->readers != readers) continue;
        if (r->failed || r->skipped) return NULL;
        return r;
    }
    return NULL;
}

void bench_note(const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (bench_opts.json) {
        char **nn = realloc(notes, (nnotes + 1) * sizeof(*nn));
        if (nn) {
            notes = nn;
            notes[nnotes] = strdup(buf);
            if (notes[nnotes]) nnotes++;
        }
    } else {
        printf("# %s\n", buf);
        fflush(stdout);
    }
}

void bench_ratio(const char *key, const char *desc, double num, double den, const char *op,
                 double target, const char *why_missing)
{
    if (nratios == sizeof(ratios) / sizeof(ratios[0])) return;
    if (bench_opts.filter && !(num > 0 && den > 0))
        return; /* a filtered run: only the ratios it measured */
    struct ratio *q = &ratios[nratios++];
    memset(q, 0, sizeof(*q));
    snprintf(q->key, sizeof(q->key), "%s", key);
    snprintf(q->desc, sizeof(q->desc), "%s", desc);
    snprintf(q->op, sizeof(q->op), "%s", op);
    q->target = target;
    if (num > 0 && den > 0) {
        q->value = num / den;
        q->ok = op[0] == '<' ? q->value <= target : q->value >= target;
    } else {
        q->value = -1;
        snprintf(q->why, sizeof(q->why), "%s", why_missing ? why_missing : "a case is missing");
    }
}

void bench_note_load(void)
{
    /* Other work on the machine moves every figure: say how busy it was. */
    FILE *f = fopen("/proc/loadavg", "r");
    char load[128] = "?";
    if (f) {
        if (fgets(load, sizeof(load), f)) load[strcspn(load, "\n")] = 0;
        fclose(f);
    }
    bench_note("load average at start: %s (figures assume an otherwise idle machine)", load);
    /* The 4th field is runnable/total tasks and counts us: take the least of a
     * few samples, so a task that was runnable for an instant does not count. */
    int running = 1 << 30;
    for (int i = 0; i < 5; i++) {
        int r = 0, total = 0;
        char buf[128] = "";
        FILE *lf = fopen("/proc/loadavg", "r");
        if (lf) {
            if (!fgets(buf, sizeof(buf), lf)) buf[0] = 0;
            fclose(lf);
        }
        if (sscanf(buf, "%*f %*f %*f %d/%d", &r, &total) == 2 && r < running) running = r;
        struct timespec ts = {0, 10000000L};
        nanosleep(&ts, NULL);
    }
    if (running != 1 << 30 && running > 1)
        bench_note("WARNING: %d other runnable task(s) at start: other work shares the 2 CPUs, "
                   "cross-CPU figures will be low and noisy (see the CPU parallelism notes)",
                   running - 1);
}

void bench_rounds(void (*plan)(void))
{
    for (bench_opts.round = 0; bench_opts.round < bench_opts.rounds; bench_opts.round++) {
        double par0 = bench_parallelism();
        plan();
        double par1 = bench_parallelism();
        bench_note("round %d/%d: CPU parallelism %.2f before, %.2f after (2.00: both CPUs ran "
                   "at once; near 1: the VM's vCPUs shared a core and cross-CPU figures suffer)",
                   bench_opts.round + 1, bench_opts.rounds, par0, par1);
    }
}

void bench_annotate(const char *name, const char *impl, size_t msg_bytes, const char *fmt, ...)
{
    struct bench_row *r = NULL;
    for (size_t i = 0; i < nrows && !r; i++)
        if (!strcmp(rows[i].name, name) && !strcmp(rows[i].impl, impl) &&
            rows[i].msg_bytes == msg_bytes && !rows[i].failed && !rows[i].skipped)
            r = &rows[i];
    if (!r) return;
    size_t off = strlen(r->notes);
    if (off + 3 >= sizeof(r->notes)) return;
    if (off) off += (size_t)snprintf(r->notes + off, sizeof(r->notes) - off, "; ");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->notes + off, sizeof(r->notes) - off, fmt, ap);
    va_end(ap);
}

static void json_str(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c == '\n')
            printf("\\n");
        else if (c < 0x20)
            printf("\\u%04x", c);
        else
            putchar(c);
    }
    putchar('"');
}

static void json_num(double v)
{
    if (v < 0)
        printf("null");
    else
        printf("%.1f", v);
}

static void print_json(const char *cmd)
{
    printf("{\"subcommand\":");
    json_str(cmd);
    printf(",\"quick\":%s,\"rounds\":%d,\"cases\":[", bench_opts.quick ? "true" : "false",
           bench_opts.rounds);
    for (size_t i = 0; i < nrows; i++) {
        const struct bench_row *r = &rows[i];
        printf("%s\n{\"name\":", i ? "," : "");
        json_str(r->name);
        printf(",\"impl\":");
        json_str(r->impl);
        printf(",\"msg_bytes\":%zu,\"readers\":", r->msg_bytes);
        if (r->readers > 0)
            printf("%d", r->readers);
        else
            printf("null");
        printf(",\"depth\":");
        if (r->depth)
            printf("%u", r->depth);
        else
            printf("null");
        printf(",\"%s\":", rate_key);
        json_num(r->msgs_per_s);
        printf(",\"mb_per_s\":");
        json_num(r->mb_per_s);
        printf(",\"p50_ns\":");
        json_num(r->p50_ns);
        printf(",\"p99_ns\":");
        json_num(r->p99_ns);
        printf(",\"notes\":");
        json_str(r->notes);
        printf(",\"status\":\"%s\"", r->failed ? "failed" : r->skipped ? "skipped" : "ok");
        printf(",\"rounds\":[");
        for (int k = 0; k < r->nrounds; k++)
            printf("%s%.1f", k ? "," : "", r->round_val[k]);
        printf("]");
        if (r->failed || r->skipped) {
            printf(",\"error\":");
            json_str(r->error);
        }
        printf("}");
    }
    printf("],\n\"ratios\":{");
    for (size_t i = 0; i < nratios; i++) {
        const struct ratio *q = &ratios[i];
        printf("%s\n", i ? "," : "");
        json_str(q->key);
        printf(":{\"value\":");
        if (q->value < 0)
            printf("null");
        else
            printf("%.4g", q->value);
        printf(",\"target\":\"%s %g\",\"met\":", q->op, q->target);
        if (q->value < 0)
            printf("null");
        else
            printf("%s", q->ok ? "true" : "false");
        printf(",\"what\":");
        json_str(q->desc + strspn(q->desc, " "));
        printf("}");
    }
    printf("},\n\"notes\":[");
    for (size_t i = 0; i < nnotes; i++) {
        printf("%s", i ? "," : "");
        json_str(notes[i]);
    }
    printf("]}\n");
}

static void print_table(void)
{
    if (isatty(2)) fprintf(stderr, "\r\033[K");
    if (!nrows) return;
    print_header();
    for (size_t i = 0; i < nrows; i++)
        print_row(&rows[i]);
}

static void print_ratios(void)
{
    if (!nratios) return;
    printf("\nratios (targets of the issue, from this run):\n");
    for (size_t i = 0; i < nratios; i++) {
        const struct ratio *q = &ratios[i];
        if (q->value < 0)
            printf("  %-28s %-64s %9s  (target %s %g)  n/a: %s\n", q->key, q->desc, "-", q->op,
                   q->target, q->why);
        else
            printf("  %-28s %-64s %9.3g  (target %s %g)  %s\n", q->key, q->desc, q->value, q->op,
                   q->target, q->ok ? "MET" : "MISSED");
    }
}

int bench_finish(const char *cmd)
{
    if (bench_opts.json) {
        if (isatty(2)) fprintf(stderr, "\r\033[K");
        print_json(cmd);
    } else {
        print_table();
        print_ratios();
    }
    fflush(stdout);
    if (bench_opts.svg_dir && !bench_opts.list && bench_svg_write(bench_opts.svg_dir, cmd, rows, nrows) < 0)
        any_failed = 1;
    for (size_t i = 0; i < nnotes; i++)
        free(notes[i]);
    free(notes);
    free(rows);
    return any_failed ? 1 : 0;
}

/* -------------------------------------------------------------------- main */

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *sub = argv[1];
    if (!strcmp(sub, "-h") || !strcmp(sub, "--help") || !strcmp(sub, "help")) {
        usage(stdout);
        return 0;
    }
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
        if (!strcmp(sub, cmds[i].name)) return cmds[i].fn(argc - 1, argv + 1);
    if (sub[0] == '-')
        fprintf(stderr,
                "weir-bench: expected a subcommand before option '%s' (try 'weir-bench --help')\n",
                sub);
    else
        fprintf(stderr, "weir-bench: unknown subcommand '%s' (try 'weir-bench --help')\n", sub);
    return 2;
}
