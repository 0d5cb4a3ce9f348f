/* SPDX-License-Identifier: MIT */
/*
 * tests/test_nodes.c - several ranks: the environment a rank reads
 * (engine/cluster_env.c, table-driven), the control plane's messages
 * (engine/cluster_codec.cc) and the control plane itself (engine/cluster.c)
 * across processes on loopback, across network namespaces through
 * weir-run --netns, and under Open MPI's mpirun.
 *
 * Rank processes are forked children that never touch Criterion: each
 * writes one record (codes, texts, a timestamp, the events it saw) into a
 * pipe that the test reads. Every refusal is checked by exact code and
 * exact text on both sides. The fixture checks after every test that no
 * fd, child process, network interface, named namespace or /dev/shm
 * segment was left behind (and aborts in .fini, where Criterion ignores
 * assertions).
 */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <zmq.h>

#include <weir/weir.h>

#include "chan_util.h"
#include "engine/cluster.h"
#include "weir_config.h"

#include "sanitized.h"

#define HASH 0x5eedull

/* ---- leftovers -------------------------------------------------------------- */

static struct t_leak_base leak0;

static int count_lines(const char *cmd)
{
    FILE *f = popen(cmd, "r");
    if (!f)
        return -1;
    char line[512];
    int n = 0;
    while (fgets(line, sizeof line, f))
        n++;
    pclose(f);
    return n;
}

static int count_children(void)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task/%d/children", (int)getpid(), (int)getpid());
    FILE *f = fopen(path, "re");
    if (!f)
        return 0;
    int n = 0, c;
    int in = 0;
    while ((c = fgetc(f)) != EOF) {
        if (c >= '0' && c <= '9') {
            if (!in)
                n++;
            in = 1;
        } else
            in = 0;
    }
    fclose(f);
    return n;
}

/* weir-run's bridge and veths live in its own namespace: none may ever show
 * up in this one. (Other programs on the machine create links of their
 * own: only ours count.) */
#define OUR_LINKS "ip -o link show 2>/dev/null | grep -E '^[0-9]+: (weirbr|wr[0-9]+)[@:]'"

static void setup(void)
{
    t_leak_snapshot(&leak0);
}

static void teardown(void)
{
    int bad = t_leak_check(&leak0) != 0;
    int kids = count_children();
    if (kids) {
        fprintf(stderr, "LEAK: %d child processes still running\n", kids);
        bad = 1;
    }
    /* weir-run names no namespace: its ranks' namespaces end with their
     * processes, which count_children and the tests' pgrep checks cover. */
    int links = count_lines(OUR_LINKS);
    if (links) {
        fprintf(stderr, "LEAK: %d weir-run links left in this namespace\n", links);
        bad = 1;
    }
    if (bad)
        abort();
    t_heap_check();
}

TestSuite(nodes, .init = setup, .fini = teardown);

/* ---- the environment (pure, table-driven) ----------------------------------- */

struct env_case {
    const char *env[12];
    int rank, size;
    const char *coord; /* expected coord, or NULL for "" */
    const char *err;   /* expected text after "cluster environment: ", or NULL */
};

static const struct env_case env_cases[] = {
    /* nothing: one rank */
    {{NULL}, 0, 1, NULL, NULL},
    {{"PATH=/bin", "HOME=/root"}, 0, 1, NULL, NULL},
    {{"WEIR_WORLD_SIZE=1"}, 0, 1, NULL, NULL},
    /* weir's own */
    {{"WEIR_RANK=2", "WEIR_WORLD_SIZE=4", "WEIR_COORD=10.0.0.1:5000"}, 2, 4, "tcp://10.0.0.1:5000",
     NULL},
    {{"WEIR_RANK=0", "WEIR_WORLD_SIZE=2", "WEIR_COORD=tcp://h0:1"}, 0, 2, "tcp://h0:1", NULL},
    {{"WEIR_RANK=1", "WEIR_WORLD_SIZE=2", "WEIR_COORD=[fd00::1]:29500"}, 1, 2,
     "tcp://[fd00::1]:29500", NULL},
    {{"WEIR_RANK=1", "WEIR_WORLD_SIZE=2", "WEIR_COORD=ipc:///tmp/w.sock"}, 1, 2,
     "ipc:///tmp/w.sock", NULL},
    {{"WEIR_RANK=1", "WEIR_WORLD_SIZE=2"}, 0, 0, NULL,
     "WEIR_COORD is not set: a world of 2 ranks (from WEIR_WORLD_SIZE) needs rank 0's control "
     "endpoint HOST:PORT (or MASTER_ADDR and MASTER_PORT)"},
    {{"WEIR_RANK=1"}, 0, 0, NULL, "WEIR_RANK=1 is set but WEIR_WORLD_SIZE is not"},
    {{"WEIR_WORLD_SIZE=3"}, 0, 0, NULL,
     "WEIR_WORLD_SIZE=3 is set but no rank variable is (WEIR_RANK, OMPI_COMM_WORLD_RANK, "
     "PMI_RANK, RANK, SLURM_PROCID, JOB_COMPLETION_INDEX)"},
    {{"WEIR_RANK=4", "WEIR_WORLD_SIZE=4"}, 0, 0, NULL, "WEIR_RANK=4 is not below WEIR_WORLD_SIZE=4"},
    {{"WEIR_RANK=abc", "WEIR_WORLD_SIZE=4"}, 0, 0, NULL,
     "WEIR_RANK='abc' is not a number (decimal digits only)"},
    {{"WEIR_RANK=-1", "WEIR_WORLD_SIZE=4"}, 0, 0, NULL,
     "WEIR_RANK='-1' is not a number (decimal digits only)"},
    {{"WEIR_RANK=", "WEIR_WORLD_SIZE=4"}, 0, 0, NULL,
     "WEIR_RANK='' is not a number (decimal digits only)"},
    {{"WEIR_RANK=1 ", "WEIR_WORLD_SIZE=4"}, 0, 0, NULL,
     "WEIR_RANK='1 ' is not a number (decimal digits only)"},
    {{"WEIR_RANK=0", "WEIR_WORLD_SIZE=0"}, 0, 0, NULL, "WEIR_WORLD_SIZE=0 is out of range (1..1024)"},
    {{"WEIR_RANK=0", "WEIR_WORLD_SIZE=1025"}, 0, 0, NULL,
     "WEIR_WORLD_SIZE=1025 is out of range (1..1024)"},
    {{"WEIR_RANK=0", "WEIR_WORLD_SIZE=99999999999"}, 0, 0, NULL,
     "WEIR_WORLD_SIZE='99999999999' is not a number (decimal digits only)"},
    /* the first entry of a name wins, as getenv */
    {{"WEIR_RANK=1", "WEIR_RANK=7", "WEIR_WORLD_SIZE=2", "WEIR_COORD=a:1"}, 1, 2, "tcp://a:1", NULL},
    /* WEIR_* win over a launcher (weir-run inside an srun step) */
    {{"SLURM_PROCID=0", "SLURM_NTASKS=1", "WEIR_RANK=3", "WEIR_WORLD_SIZE=4", "WEIR_COORD=a:1"}, 3,
     4, "tcp://a:1", NULL},
    /* Open MPI; one host: an ipc endpoint named by the job id */
    {{"OMPI_COMM_WORLD_RANK=1", "OMPI_COMM_WORLD_SIZE=3", "OMPI_COMM_WORLD_LOCAL_SIZE=3",
      "OMPI_MCA_ess_base_jobid=1601634305"}, 1, 3, "ipc://@weir-1601634305", NULL},
    {{"OMPI_COMM_WORLD_RANK=1", "OMPI_COMM_WORLD_SIZE=3", "OMPI_COMM_WORLD_LOCAL_SIZE=2",
      "OMPI_MCA_ess_base_jobid=77"}, 0, 0, NULL,
     "WEIR_COORD is not set: a world of 3 ranks (from OMPI_COMM_WORLD_SIZE) needs rank 0's "
     "control endpoint HOST:PORT (or MASTER_ADDR and MASTER_PORT)"},
    {{"OMPI_COMM_WORLD_RANK=2", "OMPI_COMM_WORLD_SIZE=3", "WEIR_COORD=h:9"}, 2, 3, "tcp://h:9",
     NULL},
    {{"OMPI_COMM_WORLD_RANK=2"}, 0, 0, NULL,
     "OMPI_COMM_WORLD_RANK=2 is set but OMPI_COMM_WORLD_SIZE is not (set it, or "
     "WEIR_WORLD_SIZE)"},
    {{"OMPI_COMM_WORLD_RANK=3", "OMPI_COMM_WORLD_SIZE=3"}, 0, 0, NULL,
     "OMPI_COMM_WORLD_RANK=3 is not below OMPI_COMM_WORLD_SIZE=3"},
    {{"OMPI_COMM_WORLD_RANK=1", "OMPI_COMM_WORLD_SIZE=3", "WEIR_WORLD_SIZE=4"}, 0, 0, NULL,
     "WEIR_WORLD_SIZE=4 contradicts OMPI_COMM_WORLD_SIZE=3"},
    {{"OMPI_COMM_WORLD_RANK=1", "OMPI_COMM_WORLD_SIZE=3", "WEIR_WORLD_SIZE=3", "WEIR_COORD=h:1"},
     1, 3, "tcp://h:1", NULL},
    /* Open MPI inside Slurm: the inner launcher wins */
    {{"SLURM_PROCID=0", "SLURM_NTASKS=2", "OMPI_COMM_WORLD_RANK=5", "OMPI_COMM_WORLD_SIZE=8",
      "WEIR_COORD=n1:7"}, 5, 8, "tcp://n1:7", NULL},
    /* MPICH / Hydra */
    {{"PMI_RANK=1", "PMI_SIZE=2", "WEIR_COORD=h:2"}, 1, 2, "tcp://h:2", NULL},
    {{"PMI_RANK=1", "PMI_SIZE=x"}, 0, 0, NULL, "PMI_SIZE='x' is not a number (decimal digits only)"},
    /* torchrun: MASTER_ADDR / MASTER_PORT */
    {{"RANK=3", "WORLD_SIZE=4", "MASTER_ADDR=10.1.1.1", "MASTER_PORT=29500"}, 3, 4,
     "tcp://10.1.1.1:29500", NULL},
    {{"RANK=3", "WORLD_SIZE=4", "MASTER_ADDR=10.1.1.1"}, 0, 0, NULL,
     "MASTER_ADDR is set but MASTER_PORT is not (or set WEIR_COORD)"},
    {{"RANK=3", "WORLD_SIZE=4", "MASTER_PORT=29500"}, 0, 0, NULL,
     "MASTER_PORT is set but MASTER_ADDR is not (or set WEIR_COORD)"},
    {{"RANK=3", "WORLD_SIZE=4", "MASTER_ADDR=h", "MASTER_PORT=0"}, 0, 0, NULL,
     "MASTER_PORT='0' is not a port (1..65535)"},
    {{"RANK=3", "WORLD_SIZE=4", "MASTER_ADDR=h:5", "MASTER_PORT=6"}, 0, 0, NULL,
     "MASTER_ADDR='h:5' holds a port (the port goes in MASTER_PORT)"},
    {{"RANK=3", "WORLD_SIZE=4", "MASTER_ADDR=a", "MASTER_PORT=1", "WEIR_COORD=b:2"}, 3, 4,
     "tcp://b:2", NULL},
    {{"RANK=1"}, 0, 0, NULL, "RANK=1 is set but WORLD_SIZE is not (set it, or WEIR_WORLD_SIZE)"},
    /* torchrun inside a Slurm step: torchrun's */
    {{"SLURM_PROCID=1", "SLURM_NTASKS=2", "RANK=6", "WORLD_SIZE=8", "MASTER_ADDR=m",
      "MASTER_PORT=1"}, 6, 8, "tcp://m:1", NULL},
    /* Slurm; one node: ipc named by job and step */
    {{"SLURM_PROCID=1", "SLURM_NTASKS=4", "SLURM_STEP_NUM_NODES=1", "SLURM_JOB_ID=123",
      "SLURM_STEP_ID=0"}, 1, 4, "ipc://@weir-123.0", NULL},
    {{"SLURM_PROCID=1", "SLURM_NTASKS=4", "SLURM_STEP_NUM_NODES=2", "SLURM_JOB_ID=123"}, 0, 0, NULL,
     "WEIR_COORD is not set: a world of 4 ranks (from SLURM_NTASKS) needs rank 0's control "
     "endpoint HOST:PORT (or MASTER_ADDR and MASTER_PORT)"},
    /* a salloc shell: size without a task is not a launch */
    {{"SLURM_NTASKS=4", "SLURM_JOB_ID=1"}, 0, 1, NULL, NULL},
    {{"WORLD_SIZE=4"}, 0, 1, NULL, NULL},
    /* Kubernetes indexed Job: no size variable */
    {{"JOB_COMPLETION_INDEX=2", "WEIR_WORLD_SIZE=3", "WEIR_COORD=job-0.svc:29500"}, 2, 3,
     "tcp://job-0.svc:29500", NULL},
    {{"JOB_COMPLETION_INDEX=2"}, 0, 0, NULL,
     "JOB_COMPLETION_INDEX=2 gives the rank but no variable gives the world size: set "
     "WEIR_WORLD_SIZE (a Kubernetes indexed Job has no size variable)"},
    {{"JOB_COMPLETION_INDEX=3", "WEIR_WORLD_SIZE=3", "WEIR_COORD=a:1"}, 0, 0, NULL,
     "JOB_COMPLETION_INDEX=3 is not below WEIR_WORLD_SIZE=3"},
    /* WEIR_COORD forms */
    {{"WEIR_RANK=0", "WEIR_WORLD_SIZE=2", "WEIR_COORD=host"}, 0, 0, NULL,
     "WEIR_COORD='host' has no port (expected HOST:PORT)"},
    {{"WEIR_RANK=0", "WEIR_WORLD_SIZE=2", "WEIR_COORD=host:0"}, 0, 0, NULL,
     "WEIR_COORD='host:0': port '0' is not 1..65535"},
    {{"WEIR_RANK=0", "WEIR_WORLD_SIZE=2", "WEIR_COORD=host:65536"}, 0, 0, NULL,
     "WEIR_COORD='host:65536': port '65536' is not 1..65535"},
    {{"WEIR_RANK=0", "WEIR_WORLD_SIZE=2", "WEIR_COORD=:80"}, 0, 0, NULL,
     "WEIR_COORD=':80': no host before ':'"},
    {{"WEIR_RANK=0", "WEIR_WORLD_SIZE=2", "WEIR_COORD="}, 0, 0, NULL,
     "WEIR_COORD is empty (expected HOST:PORT)"},
    {{"WEIR_RANK=0", "WEIR_WORLD_SIZE=2", "WEIR_COORD=fd00::1:80"}, 0, 0, NULL,
     "WEIR_COORD='fd00::1:80': write an IPv6 address as [ADDRESS]:PORT"},
    {{"WEIR_RANK=0", "WEIR_WORLD_SIZE=2", "WEIR_COORD=[fd00::1"}, 0, 0, NULL,
     "WEIR_COORD='[fd00::1': an IPv6 address needs [ADDRESS]"},
    {{"WEIR_RANK=0", "WEIR_WORLD_SIZE=2", "WEIR_COORD=a b:1"}, 0, 0, NULL,
     "WEIR_COORD='a b:1': character 2 is not allowed in HOST:PORT"},
    {{"WEIR_RANK=0", "WEIR_WORLD_SIZE=2", "WEIR_COORD=ipc://"}, 0, 0, NULL,
     "WEIR_COORD='ipc://': an ipc:// endpoint needs a path (at most 255 bytes)"},
    /* WEIR_BIND and WEIR_TOKEN */
    {{"WEIR_RANK=0", "WEIR_WORLD_SIZE=2", "WEIR_COORD=a:1", "WEIR_BIND=10.0.0.2"}, 0, 2, "tcp://a:1",
     NULL},
    {{"WEIR_RANK=0", "WEIR_WORLD_SIZE=2", "WEIR_COORD=a:1", "WEIR_BIND=10.0.0.2:x"}, 0, 0, NULL,
     "WEIR_BIND='10.0.0.2:x': port 'x' is not 1..65535"},
    {{"WEIR_RANK=0", "WEIR_WORLD_SIZE=2", "WEIR_COORD=a:1", "WEIR_BIND="}, 0, 0, NULL,
     "WEIR_BIND is empty (expected HOST[:PORT])"},
};

Test(nodes, env_table)
{
    for (size_t i = 0; i < sizeof env_cases / sizeof env_cases[0]; i++) {
        const struct env_case *k = &env_cases[i];
        struct weir__cluster_env e;
        int r = weir__cluster_env_parse((char *const *)k->env, &e);
        if (k->err) {
            char want[600];
            snprintf(want, sizeof want, "cluster environment: %s", k->err);
            cr_assert_eq(r, -EINVAL, "case %zu (%s): %d", i, k->env[0] ? k->env[0] : "-", r);
            cr_assert_str_eq(weir_errmsg(), want, "case %zu", i);
            continue;
        }
        cr_assert_eq(r, 0, "case %zu (%s): %s", i, k->env[0] ? k->env[0] : "-", weir_errmsg());
        cr_assert_eq(e.rank, k->rank, "case %zu: rank %d", i, e.rank);
        cr_assert_eq(e.size, k->size, "case %zu: size %d", i, e.size);
        cr_assert_str_eq(e.coord, k->coord ? k->coord : "", "case %zu", i);
    }
}

Test(nodes, env_fields)
{
    char *env[] = {"SLURM_PROCID=1", "SLURM_NTASKS=9", "OMPI_COMM_WORLD_RANK=4",
                   "OMPI_COMM_WORLD_SIZE=6", "WEIR_COORD=tcp://c:3", "WEIR_BIND=10.9.9.9",
                   "WEIR_TOKEN=s3cret", NULL};
    struct weir__cluster_env e;
    cr_assert_eq(weir__cluster_env_parse(env, &e), 0, "%s", weir_errmsg());
    cr_assert_str_eq(e.launcher, "Open MPI");
    cr_assert_str_eq(e.rank_var, "OMPI_COMM_WORLD_RANK");
    cr_assert_str_eq(e.size_var, "OMPI_COMM_WORLD_SIZE");
    cr_assert_str_eq(e.coord_var, "WEIR_COORD");
    cr_assert_str_eq(e.bind, "10.9.9.9");
    cr_assert_eq(e.token_len, 6);
    cr_assert_str_eq(e.token, "s3cret");
    char b[64];
    cr_assert_eq(weir__cluster_bind_addr(&e, b, sizeof b), 0);
    cr_assert_str_eq(b, "10.9.9.9");
    /* Without WEIR_BIND: the address that routes to the coordinator. */
    char *env2[] = {"WEIR_RANK=1", "WEIR_WORLD_SIZE=2", "WEIR_COORD=127.0.0.1:9", NULL};
    cr_assert_eq(weir__cluster_env_parse(env2, &e), 0);
    cr_assert_eq(weir__cluster_bind_addr(&e, b, sizeof b), 0, "%s", weir_errmsg());
    cr_assert_str_eq(b, "127.0.0.1");
    char *env3[] = {"WEIR_RANK=1", "WEIR_WORLD_SIZE=2", "WEIR_COORD=no-such-host.invalid:9", NULL};
    cr_assert_eq(weir__cluster_env_parse(env3, &e), 0);
    cr_assert_eq(weir__cluster_bind_addr(&e, b, sizeof b), -EINVAL);
    cr_assert(strncmp(weir_errmsg(), "cluster environment: WEIR_COORD='tcp://no-such-host.invalid:9'"
                      ": host 'no-such-host.invalid' does not resolve (", 95) == 0, "%s",
              weir_errmsg());
    char tok[300];
    memset(tok, 'x', sizeof tok);
    memcpy(tok, "WEIR_TOKEN=", 11);
    tok[sizeof tok - 1] = '\0';
    char *env4[] = {tok, NULL};
    cr_assert_eq(weir__cluster_env_parse(env4, &e), -EINVAL);
    cr_assert_str_eq(weir_errmsg(), "cluster environment: WEIR_TOKEN is 288 bytes long (at most 256)");
}

Test(nodes, weir_rank_from_environ)
{
    cr_assert_eq(weir_rank(), 0);
    cr_assert_eq(weir_world_size(), 1);
    setenv("OMPI_COMM_WORLD_RANK", "2", 1);
    setenv("OMPI_COMM_WORLD_SIZE", "5", 1);
    cr_assert_eq(weir_rank(), 2);
    cr_assert_eq(weir_world_size(), 5); /* no coordinator needed to know one's rank */
    setenv("WEIR_WORLD_SIZE", "4", 1);
    cr_assert_eq(weir_rank(), -EINVAL);
    cr_assert_str_eq(weir_errmsg(), "cluster environment: WEIR_WORLD_SIZE=4 contradicts "
                                    "OMPI_COMM_WORLD_SIZE=5");
    cr_assert_eq(weir_world_size(), -EINVAL);
    unsetenv("WEIR_WORLD_SIZE");
    unsetenv("OMPI_COMM_WORLD_RANK");
    unsetenv("OMPI_COMM_WORLD_SIZE");
    cr_assert_eq(weir_world_size(), 1);
}

/* ---- the messages ------------------------------------------------------------- */

static size_t enc(const struct weir__cluster_msg *m, uint8_t *out, size_t cap)
{
    uint8_t *b;
    size_t n;
    cr_assert_eq(weir__cluster_msg_encode(m, &b, &n), 0, "%s", weir_errmsg());
    cr_assert_leq(n, cap);
    memcpy(out, b, n);
    free(b);
    return n;
}

static void join_msg(struct weir__cluster_msg *m, int rank, int size, const char *token)
{
    memset(m, 0, sizeof *m);
    m->kind = WEIR__CM_JOIN;
    m->version = WEIR__CLUSTER_PROTO;
    m->rank = rank;
    m->world_size = size;
    m->plan_hash = HASH;
    m->token_len = (uint32_t)strlen(token);
    memcpy(m->token, token, m->token_len);
    m->self.pid = getpid();
    gethostname(m->self.host, sizeof m->self.host);
    m->self.nep = 2;
    snprintf(m->self.ep[0], sizeof m->self.ep[0], "tcp://10.0.0.%d:7000", rank + 1);
    snprintf(m->self.ep[1], sizeof m->self.ep[1], "tcp://10.1.0.%d:7000", rank + 1);
}

Test(nodes, codec_roundtrip)
{
    static uint8_t buf[1 << 16];
    struct weir__cluster_msg m, d;
    join_msg(&m, 3, 4, "tok");
    size_t n = enc(&m, buf, sizeof buf);
    memset(&d, 0, sizeof d);
    cr_assert_eq(weir__cluster_msg_decode(buf, n, &d), 0, "%s", weir_errmsg());
    cr_assert_eq(d.kind, WEIR__CM_JOIN);
    cr_assert_eq(d.version, WEIR__CLUSTER_PROTO);
    cr_assert_eq(d.rank, 3);
    cr_assert_eq(d.world_size, 4);
    cr_assert_eq(d.plan_hash, HASH);
    cr_assert_eq(d.token_len, 3);
    cr_assert(memcmp(d.token, "tok", 3) == 0);
    cr_assert_eq(d.self.pid, getpid());
    cr_assert_str_eq(d.self.host, m.self.host);
    cr_assert_eq(d.self.nep, 2);
    cr_assert_str_eq(d.self.ep[1], "tcp://10.1.0.4:7000");

    struct weir__cluster_rank ranks[3], out[3];
    memset(ranks, 0, sizeof ranks);
    for (int r = 0; r < 3; r++) {
        ranks[r].rank = r;
        ranks[r].pid = 100 + r;
        snprintf(ranks[r].host, sizeof ranks[r].host, "h%d", r);
        ranks[r].nep = (unsigned)r;
        for (int i = 0; i < r; i++)
            snprintf(ranks[r].ep[i], sizeof ranks[r].ep[i], "tcp://h%d:%d", r, 7000 + i);
    }
    memset(&m, 0, sizeof m);
    m.kind = WEIR__CM_TABLE;
    m.world_size = 3;
    m.ranks = ranks;
    m.ranks_cap = m.nranks = 3;
    n = enc(&m, buf, sizeof buf);
    d.ranks = out;
    d.ranks_cap = 3;
    cr_assert_eq(weir__cluster_msg_decode(buf, n, &d), 0, "%s", weir_errmsg());
    cr_assert_eq(d.kind, WEIR__CM_TABLE);
    cr_assert_eq(d.nranks, 3);
    for (int r = 0; r < 3; r++) {
        cr_assert_eq(out[r].rank, r);
        cr_assert_eq(out[r].pid, 100 + r);
        cr_assert_eq(out[r].nep, (unsigned)r);
        for (int i = 0; i < r; i++)
            cr_assert_str_eq(out[r].ep[i], ranks[r].ep[i]);
    }
    /* A table larger than the receiver's world is refused. */
    d.ranks_cap = 2;
    cr_assert_eq(weir__cluster_msg_decode(buf, n, &d), -EPROTO);
    cr_assert_str_eq(weir_errmsg(), "cluster TABLE: 3 ranks (this rank expects 2)");

    int kinds[] = {WEIR__CM_REFUSE, WEIR__CM_ARRIVE, WEIR__CM_RELEASE, WEIR__CM_HEARTBEAT,
                   WEIR__CM_TEARDOWN, WEIR__CM_BYE, WEIR__CM_FAILURE};
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        memset(&m, 0, sizeof m);
        m.kind = kinds[k];
        m.rank = 2;
        m.code = -EHOSTDOWN;
        m.epoch = 7;
        m.seq = 99;
        snprintf(m.reason, sizeof m.reason, "why %zu\nnext", k);
        n = enc(&m, buf, sizeof buf);
        memset(&d, 0, sizeof d);
        cr_assert_eq(weir__cluster_msg_decode(buf, n, &d), 0, "%s", weir_errmsg());
        cr_assert_eq(d.kind, kinds[k]);
        if (m.kind == WEIR__CM_REFUSE || m.kind == WEIR__CM_FAILURE) {
            char want[32];
            snprintf(want, sizeof want, "why %zu?next", k); /* control bytes become '?' */
            cr_assert_str_eq(d.reason, want);
            cr_assert_eq(d.code, -EHOSTDOWN);
        }
        if (m.kind == WEIR__CM_ARRIVE || m.kind == WEIR__CM_RELEASE)
            cr_assert_eq(d.epoch, 7);
        if (m.kind == WEIR__CM_HEARTBEAT)
            cr_assert_eq(d.seq, 99);
        if (m.kind != WEIR__CM_RELEASE && m.kind != WEIR__CM_TEARDOWN &&
            m.kind != WEIR__CM_REFUSE)
            cr_assert_eq(d.rank, 2);
    }
}

Test(nodes, codec_rejects)
{
    static uint8_t buf[1 << 16];
    struct weir__cluster_msg m, d;
    join_msg(&m, 1, 2, "tok");
    size_t n = enc(&m, buf, sizeof buf);
    memset(&d, 0, sizeof d);
    cr_assert_eq(weir__cluster_msg_decode(buf, 5, &d), -EBADMSG);
    cr_assert_str_eq(weir_errmsg(), "cluster: control message of 5 bytes (expected 8..1048576)");
    cr_assert_eq(weir__cluster_msg_decode((const uint8_t *)"garbage!garbage!", 16, &d), -EBADMSG);
    cr_assert_str_eq(weir_errmsg(), "cluster: not a weir control message (16 bytes, no 'WCLU' "
                                    "identifier)");
    /* Every truncation of a valid JOIN fails verification (or the size check). */
    /* Every truncation of a valid JOIN fails verification, except cuts of the
     * builder's tail padding, which must decode to the very same message. */
    unsigned refused = 0;
    for (size_t cut = 8; cut < n; cut++) {
        int r = weir__cluster_msg_decode(buf, cut, &d);
        if (r == 0) {
            cr_assert_geq(cut, n - 8, "cut at %zu of %zu verified", cut, n);
            cr_assert(d.kind == WEIR__CM_JOIN && d.rank == 1 && d.plan_hash == HASH &&
                      d.self.nep == 2 && strcmp(d.self.ep[1], "tcp://10.1.0.2:7000") == 0);
            continue;
        }
        cr_assert_eq(r, -EBADMSG, "cut at %zu of %zu: %d %s", cut, n, r, weir_errmsg());
        refused++;
    }
    cr_assert_geq(refused, n - 16);
    /* Unaligned input is copied, then verified. */
    static uint8_t odd[1 << 16];
    memcpy(odd + 1, buf, n);
    cr_assert_eq(weir__cluster_msg_decode(odd + 1, n, &d), 0, "%s", weir_errmsg());
    /* Field ranges. */
    memset(&m, 0, sizeof m);
    m.kind = WEIR__CM_REFUSE;
    m.code = 5;
    snprintf(m.reason, sizeof m.reason, "x");
    n = enc(&m, buf, sizeof buf);
    cr_assert_eq(weir__cluster_msg_decode(buf, n, &d), -EPROTO);
    cr_assert_str_eq(weir_errmsg(), "cluster REFUSE: code 5 is not a negative errno");
    join_msg(&m, 1, 2, "t");
    m.self.nep = 1;
    m.self.ep[0][0] = '\0';
    n = enc(&m, buf, sizeof buf);
    cr_assert_eq(weir__cluster_msg_decode(buf, n, &d), -EPROTO);
    cr_assert_str_eq(weir_errmsg(), "cluster JOIN: endpoint 0 is empty");
    memset(&m, 0, sizeof m);
    m.kind = 42;
    uint8_t *b = NULL;
    cr_assert_eq(weir__cluster_msg_encode(&m, &b, &n), -EINVAL);
    cr_assert_str_eq(weir_errmsg(), "cluster: encode: bad argument");
}

/* STATS (rank -> 0: the counters of rings rank 0 has none of) round-trips
 * exactly; too many channels for the receiver, a reader that is no one,
 * a depth past the limit: each refused and named. */
Test(nodes, codec_stats)
{
    static uint8_t buf[1 << 16];
    static struct weir__cluster_chan_stat ch[2], got[2];
    memset(ch, 0, sizeof ch);
    ch[0].chan = 1;
    snprintf(ch[0].st.name, sizeof ch[0].st.name, "src.split.out0");
    ch[0].st.messages = 2000;
    ch[0].st.bytes = 16000;
    ch[0].st.errors = 3;
    ch[0].st.writer_blocked_ns = 777;
    ch[0].st.grows = 1;
    ch[0].st.slot_bytes = 1024;
    ch[0].st.depth = 8;
    ch[0].st.nreaders = 1;
    ch[0].st.readers[0] = (struct weir_chan_reader_stats){.id = 5, .pid = 4242, .consumed = 1999,
                                                          .starved_ns = 88};
    ch[0].who[0] = -2;
    ch[1].chan = 3;
    snprintf(ch[1].st.name, sizeof ch[1].st.name, "left.f.out0");
    ch[1].st.closed = 1;
    ch[1].st.nreaders = 2;
    ch[1].who[0] = 3;
    ch[1].who[1] = -1;
    struct weir__cluster_msg m, d;
    memset(&m, 0, sizeof m);
    m.kind = WEIR__CM_STATS;
    m.rank = 2;
    m.chans = ch;
    m.nchans = 2;
    size_t n = enc(&m, buf, sizeof buf);
    memset(&d, 0, sizeof d);
    d.chans = got;
    d.chans_cap = 2;
    cr_assert_eq(weir__cluster_msg_decode(buf, n, &d), 0, "%s", weir_errmsg());
    cr_assert_eq(d.kind, WEIR__CM_STATS);
    cr_assert_eq(d.rank, 2);
    cr_assert_eq(d.nchans, 2);
    cr_assert_eq(got[0].chan, 1);
    cr_assert_str_eq(got[0].st.name, "src.split.out0");
    cr_assert(got[0].st.messages == 2000 && got[0].st.bytes == 16000 && got[0].st.errors == 3 &&
              got[0].st.writer_blocked_ns == 777 && got[0].st.grows == 1 &&
              got[0].st.slot_bytes == 1024 && got[0].st.depth == 8 && !got[0].st.closed);
    cr_assert_eq(got[0].st.nreaders, 1);
    cr_assert(got[0].st.readers[0].id == 5 && got[0].st.readers[0].pid == 4242 &&
              got[0].st.readers[0].consumed == 1999 && got[0].st.readers[0].starved_ns == 88 &&
              got[0].who[0] == -2);
    cr_assert(got[1].chan == 3 && got[1].st.closed == 1 && got[1].st.nreaders == 2 &&
              got[1].who[0] == 3 && got[1].who[1] == -1);
    /* more channels than the receiver has room for */
    d.chans_cap = 1;
    cr_assert_eq(weir__cluster_msg_decode(buf, n, &d), -EPROTO);
    cr_assert_str_eq(weir_errmsg(), "cluster STATS: 2 channels (at most 1)");
    /* a rank that is not rank 0 has no room at all */
    d.chans = NULL;
    d.chans_cap = 0;
    cr_assert_eq(weir__cluster_msg_decode(buf, n, &d), -EPROTO);
    cr_assert_str_eq(weir_errmsg(), "cluster STATS: 2 channels (at most 0)");
    d.chans = got;
    d.chans_cap = 2;
    ch[1].who[1] = -7;
    n = enc(&m, buf, sizeof buf);
    cr_assert_eq(weir__cluster_msg_decode(buf, n, &d), -EPROTO);
    cr_assert_str_eq(weir_errmsg(), "cluster STATS: channel 3 reader 1 is -7");
    ch[1].who[1] = -1;
    ch[0].st.depth = WEIR_CHAN_MAX_DEPTH + 1;
    n = enc(&m, buf, sizeof buf);
    cr_assert_eq(weir__cluster_msg_decode(buf, n, &d), -EPROTO);
    cr_assert_str_eq(weir_errmsg(), "cluster STATS: channel 1 of depth 1048577 (at most 1048576)");
    /* the encoder refuses more than a message carries */
    m.nchans = WEIR__CLUSTER_STATS_MAX + 1;
    uint8_t *b = NULL;
    cr_assert_eq(weir__cluster_msg_encode(&m, &b, &n), -EINVAL);
    m.nchans = 0;
    m.nlinks = WEIR__CLUSTER_LINKS_MAX + 1;
    m.links = (struct weir__cluster_link_stat[1]){{0}};
    cr_assert_eq(weir__cluster_msg_encode(&m, &b, &n), -EINVAL);
}

/* STATS carry the sending rank's links (appended to protocol 2): every
 * field round-trips, the rank is the message's; more links than the
 * receiver has room for, a peer rank out of range, a status that is not
 * 0 or a negative errno: each refused and named; a peer text of the full
 * 79 bytes passes. */
Test(nodes, codec_stats_links)
{
    static uint8_t buf[1 << 16];
    static struct weir__cluster_link_stat ln[2], got[2];
    memset(ln, 0, sizeof ln);
    ln[0].index = 1;
    ln[0].st = (struct weir_dag_link_stats){
        .chan = 4, .rank = 99, .peer_rank = 2, .sending = 1, .status = 0, .messages = 10001,
        .bytes = 80008, .acked = 10000, .credit_stalls = 17, .conn_streams = 3, .frames = 20002,
        .batches = 555, .reconnects = 1, .last_rtt_ns = 41000, .conn = 1,
        .stream_frames = 10002, .stream_batches = 301};
    snprintf(ln[0].st.peer, sizeof ln[0].st.peer, "10.9.0.3:40123");
    ln[1].st = (struct weir_dag_link_stats){.chan = 0, .peer_rank = 0, .sending = 0,
                                            .status = -EPIPE, .messages = 7};
    struct weir__cluster_msg m, d;
    memset(&m, 0, sizeof m);
    m.kind = WEIR__CM_STATS;
    m.rank = 1;
    m.links = ln;
    m.nlinks = 2;
    size_t n = enc(&m, buf, sizeof buf);
    memset(&d, 0, sizeof d);
    d.links = got;
    d.links_cap = 2;
    cr_assert_eq(weir__cluster_msg_decode(buf, n, &d), 0, "%s", weir_errmsg());
    cr_assert(d.kind == WEIR__CM_STATS && d.rank == 1 && d.nchans == 0 && d.nlinks == 2);
    const struct weir_dag_link_stats *a = &got[0].st;
    cr_assert_eq(got[0].index, 1);
    cr_assert(a->chan == 4 && a->rank == 1 && a->peer_rank == 2 && a->sending == 1 &&
              a->status == 0 && a->messages == 10001 && a->bytes == 80008 &&
              a->acked == 10000 && a->credit_stalls == 17 && a->conn_streams == 3 &&
              a->frames == 20002 && a->batches == 555 && a->reconnects == 1 &&
              a->last_rtt_ns == 41000 && a->conn == 1 && a->stream_frames == 10002 &&
              a->stream_batches == 301);
    cr_assert_str_eq(a->peer, "10.9.0.3:40123");
    cr_assert(got[1].index == 0 && got[1].st.rank == 1 && got[1].st.status == -EPIPE &&
              got[1].st.messages == 7 && got[1].st.sending == 0 && !got[1].st.peer[0]);
    d.links_cap = 1;
    cr_assert_eq(weir__cluster_msg_decode(buf, n, &d), -EPROTO);
    cr_assert_str_eq(weir_errmsg(), "cluster STATS: 2 links (at most 1)");
    d.links = NULL;
    d.links_cap = 0;
    cr_assert_eq(weir__cluster_msg_decode(buf, n, &d), -EPROTO);
    cr_assert_str_eq(weir_errmsg(), "cluster STATS: 2 links (at most 0)");
    d.links = got;
    d.links_cap = 2;
    ln[0].st.peer_rank = WEIR_MAX_RANKS;
    n = enc(&m, buf, sizeof buf);
    cr_assert_eq(weir__cluster_msg_decode(buf, n, &d), -EPROTO);
    cr_assert_str_eq(weir_errmsg(), "cluster STATS: link 1 of channel 4: peer rank 1024 "
                                    "(expected 0..1023)");
    ln[0].st.peer_rank = 2;
    ln[1].st.status = 5;
    n = enc(&m, buf, sizeof buf);
    cr_assert_eq(weir__cluster_msg_decode(buf, n, &d), -EPROTO);
    cr_assert_str_eq(weir_errmsg(), "cluster STATS link status: code 5 is not a negative errno");
    ln[1].st.status = 0;
    memset(ln[1].st.peer, 'x', sizeof ln[1].st.peer - 1);
    ln[1].st.peer[sizeof ln[1].st.peer - 1] = '\0';
    n = enc(&m, buf, sizeof buf);
    cr_assert_eq(weir__cluster_msg_decode(buf, n, &d), 0, "%s", weir_errmsg());
    cr_assert_eq(strlen(got[1].st.peer), sizeof ln[1].st.peer - 1);
}

/* STATS carry the sending rank's actors (after the links): pid, restarts,
 * waits, every method's counters and the message's time round-trip; too many actors or
 * methods, a negative pid: each refused and named. */
Test(nodes, codec_stats_actors)
{
    static uint8_t buf[1 << 16];
    static struct weir__cluster_actor_stat ac[2], got[2];
    memset(ac, 0, sizeof ac);
    ac[0] = (struct weir__cluster_actor_stat){.actor = 3, .pid = 5150, .restarts = 2,
                                              .input_starved_ns = 900, .output_blocked_ns = 70,
                                              .nmethods = 2};
    ac[0].methods[0] = (struct weir__cluster_method_stat){.calls = 10000, .errors = 1,
                                                          .busy_ns = 123456};
    ac[0].methods[1] = (struct weir__cluster_method_stat){.calls = 9999};
    ac[1] = (struct weir__cluster_actor_stat){.actor = 0, .pid = 1, .nmethods = 0};
    struct weir__cluster_msg m, d;
    memset(&m, 0, sizeof m);
    m.kind = WEIR__CM_STATS;
    m.rank = 2;
    m.actors = ac;
    m.nactors = 2;
    m.at_ns = 987654321012ull;
    size_t n = enc(&m, buf, sizeof buf);
    memset(&d, 0, sizeof d);
    d.actors = got;
    d.actors_cap = 2;
    cr_assert_eq(weir__cluster_msg_decode(buf, n, &d), 0, "%s", weir_errmsg());
    cr_assert(d.kind == WEIR__CM_STATS && d.rank == 2 && d.nchans == 0 && d.nlinks == 0 &&
              d.nactors == 2);
    cr_assert(got[0].actor == 3 && got[0].pid == 5150 && got[0].restarts == 2 &&
              got[0].input_starved_ns == 900 && got[0].output_blocked_ns == 70 &&
              got[0].nmethods == 2);
    cr_assert(got[0].methods[0].calls == 10000 && got[0].methods[0].errors == 1 &&
              got[0].methods[0].busy_ns == 123456 && got[0].methods[1].calls == 9999 &&
              got[0].methods[1].errors == 0);
    cr_assert(got[1].actor == 0 && got[1].pid == 1 && got[1].nmethods == 0);
    /* the message's time, copied to every actor */
    cr_assert(d.at_ns == 987654321012ull && got[0].at_ns == d.at_ns && got[1].at_ns == d.at_ns);
    d.actors_cap = 1;
    cr_assert_eq(weir__cluster_msg_decode(buf, n, &d), -EPROTO);
    cr_assert_str_eq(weir_errmsg(), "cluster STATS: 2 actors (at most 1)");
    d.actors_cap = 2;
    ac[1].pid = -4;
    n = enc(&m, buf, sizeof buf);
    cr_assert_eq(weir__cluster_msg_decode(buf, n, &d), -EPROTO);
    cr_assert_str_eq(weir_errmsg(), "cluster STATS: actor 0 in pid -4");
    ac[1].pid = 1;
    ac[1].nmethods = WEIR__CLUSTER_METHODS_MAX + 1;
    uint8_t *b = NULL;
    cr_assert_eq(weir__cluster_msg_encode(&m, &b, &n), -EINVAL);
    cr_assert_str_eq(weir_errmsg(), "cluster STATS: encode: actor 0 has 65 methods");
    ac[1].nmethods = 0;
    m.nactors = WEIR__CLUSTER_ACTORS_MAX + 1;
    cr_assert_eq(weir__cluster_msg_encode(&m, &b, &n), -EINVAL);
}

/* ---- ranks as processes ---------------------------------------------------------- */

enum { C_OK, C_OPEN, C_KILL, C_LEAVE, C_REPORT, C_TEAR };

struct spec {
    int rank, size, mode;
    uint64_t hash;
    const char *token;
    int delay_ms, timeout_ms, hb_ms;
    int kill_peer; /* C_OPEN: a peer is C_KILL (meet it at one barrier first) */
    char coord[64];
};

struct rec {
    int code;        /* open */
    char msg[512];
    int code2;       /* then: close (rank 0, C_OK), the failure seen (C_OPEN), ... */
    char msg2[512];
    uint64_t t;      /* C_KILL: just before the kill; C_OPEN: when the failure was seen */
    int code3;       /* C_OPEN: close */
    double close_ms;
    char table[512];
    char events[2048];
};

struct child {
    pid_t pid;
    int fd;
};

static void on_event(void *ctx, int kind, int rank, int code, const char *msg)
{
    struct rec *r = ctx;
    size_t l = strlen(r->events);
    snprintf(r->events + l, sizeof r->events - l, "%s %d %d %s\n", kind == 1 ? "refused" : "failed",
             rank, code, msg);
}

static void rank_main(const struct spec *s, int fd)
{
    static struct rec rec;
    memset(&rec, 0, sizeof rec);
    if (s->delay_ms)
        t_sleep_ms((unsigned)s->delay_ms);
    char ep[64];
    snprintf(ep, sizeof ep, "tcp://127.0.0.1:%d", 7000 + s->rank);
    const char *eps[] = {ep};
    struct weir__cluster_opts o = {
        .rank = s->rank, .size = s->size, .coord = s->coord, .token = s->token,
        .token_len = strlen(s->token), .plan_hash = s->hash, .endpoints = eps, .nendpoints = 1,
        .timeout_ms = s->timeout_ms, .heartbeat_ms = s->hb_ms, .on_event = on_event, .ctx = &rec,
    };
    struct weir__cluster *c = weir__cluster_open(&o);
    rec.code = c ? 0 : weir_errcode();
    snprintf(rec.msg, sizeof rec.msg, "%s", c ? "" : weir_errmsg());
    if (c) {
        int len = 0;
        for (int r = 0; r < s->size; r++)
            len += snprintf(rec.table + len, sizeof rec.table - (size_t)len, "%s%s", r ? " " : "",
                            weir__cluster_endpoint(c, r, 0));
        switch (s->mode) {
        case C_OK:
            for (int b = 0; b < 3 && !rec.code2; b++) {
                rec.code2 = weir__cluster_barrier(c, TMO);
                if (rec.code2)
                    snprintf(rec.msg2, sizeof rec.msg2, "barrier %d: %s", b, weir_errmsg());
            }
            if (rec.code2)
                break;
            if (s->rank == 0) {
                rec.code2 = weir__cluster_close(c, TMO);
                c = NULL;
            } else {
                rec.code2 = weir__cluster_wait(c, TMO);
            }
            snprintf(rec.msg2, sizeof rec.msg2, "%s", rec.code2 ? weir_errmsg() : "");
            break;
        case C_KILL:
            weir__cluster_barrier(c, TMO); /* every rank is past open */
            rec.t = t_now_ns();
            if (write(fd, &rec, sizeof rec) != (ssize_t)sizeof rec)
                _exit(3);
            raise(SIGKILL);
            break;
        case C_LEAVE:
            weir__cluster_close(c, 500);
            c = NULL;
            break;
        case C_TEAR: /* rank 0 tears down after one barrier; the others wait in a second */
            weir__cluster_barrier(c, TMO);
            if (s->rank == 0) {
                weir__cluster_close(c, TMO);
                c = NULL;
                break;
            }
            rec.t = t_now_ns();
            rec.code2 = weir__cluster_barrier(c, 10000);
            snprintf(rec.msg2, sizeof rec.msg2, "%s", weir_errmsg());
            rec.close_ms = t_ms_since(rec.t);
            break;
        case C_REPORT:
            weir__cluster_report(c, -EIO, "disk on fire");
            __attribute__((fallthrough)); /* then see the failure like everyone */
        case C_OPEN: {
            if (s->mode == C_OPEN && s->kill_peer)
                weir__cluster_barrier(c, TMO); /* pairs with C_KILL's */
            uint64_t t0 = t_now_ns();
            if (s->rank == 0) {
                while (!(rec.code2 = weir__cluster_failed(c, rec.msg2, sizeof rec.msg2)) &&
                       t_now_ns() - t0 < 10000000000ull)
                    t_sleep_ms(1);
            } else {
                rec.code2 = weir__cluster_wait(c, 10000);
                snprintf(rec.msg2, sizeof rec.msg2, "%s", weir_errmsg());
            }
            rec.t = t_now_ns();
            rec.code3 = weir__cluster_close(c, 3000);
            rec.close_ms = t_ms_since(rec.t);
            c = NULL;
            break;
        }
        }
        weir__cluster_close(c, 300);
    }
    if (write(fd, &rec, sizeof rec) != (ssize_t)sizeof rec)
        _exit(3);
    _exit(0);
}

static struct child spawn(const struct spec *s)
{
    int p[2];
    cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        close(p[0]);
        rank_main(s, p[1]);
    }
    close(p[1]);
    return (struct child){pid, p[0]};
}

/* Read the child's record and reap it; returns its wait status. */
static int collect(struct child ch, struct rec *r)
{
    memset(r, 0, sizeof *r);
    int got = t_read_full(ch.fd, r, sizeof *r, 30000);
    close(ch.fd);
    int st = 0;
    waitpid(ch.pid, &st, 0);
    cr_assert_eq(got, 0, "no record from pid %d (status %d)", (int)ch.pid, st);
    return st;
}

static int free_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t l = sizeof a;
    cr_assert_eq(bind(s, (struct sockaddr *)&a, sizeof a), 0);
    cr_assert_eq(getsockname(s, (struct sockaddr *)&a, &l), 0);
    close(s);
    return ntohs(a.sin_port);
}

static struct spec base(int rank, int size, int port)
{
    struct spec s = {.rank = rank, .size = size, .mode = C_OK, .hash = HASH, .token = "tok",
                     .timeout_ms = TMO, .hb_ms = 1000};
    snprintf(s.coord, sizeof s.coord, "tcp://127.0.0.1:%d", port);
    return s;
}

static void hostname(char *b, size_t n)
{
    gethostname(b, n);
    b[n - 1] = '\0';
}

Test(nodes, join_barrier_teardown, .timeout = 60)
{
    int port = free_port();
    struct child ch[4];
    for (int r = 0; r < 4; r++) {
        struct spec s = base(r, 4, port);
        s.delay_ms = (3 - r) * 50; /* the workers first: they wait for rank 0 */
        ch[r] = spawn(&s);
    }
    for (int r = 0; r < 4; r++) {
        struct rec rec;
        int st = collect(ch[r], &rec);
        cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "rank %d status %d", r, st);
        cr_assert_eq(rec.code, 0, "rank %d: open: %s", r, rec.msg);
        cr_assert_str_eq(rec.table, "tcp://127.0.0.1:7000 tcp://127.0.0.1:7001 "
                                    "tcp://127.0.0.1:7002 tcp://127.0.0.1:7003");
        cr_assert_eq(rec.code2, 0, "rank %d: %s", r, rec.msg2);
        cr_assert_str_eq(rec.events, "", "rank %d", r);
    }
}

Test(nodes, refuse_plan_hash_both_sides, .timeout = 60)
{
    int port = free_port();
    struct spec s0 = base(0, 3, port), s1 = base(1, 3, port), s2 = base(2, 3, port);
    s0.mode = s1.mode = s2.mode = C_OPEN;
    s2.hash = 0xbad;
    s2.delay_ms = 300; /* rank 1 has joined: it hears of it too */
    struct child c0 = spawn(&s0), c1 = spawn(&s1), c2 = spawn(&s2);
    struct rec r0, r1, r2;
    collect(c0, &r0);
    collect(c1, &r1);
    collect(c2, &r2);
    const char *want = "cluster: rank 2 built a different plan: hash 0000000000000bad, rank 0's "
                       "is 0000000000005eed";
    cr_assert_eq(r2.code, -EPROTO, "%d %s", r2.code, r2.msg);
    cr_assert_str_eq(r2.msg, want);
    cr_assert_eq(r0.code, -EPROTO, "%d %s", r0.code, r0.msg);
    cr_assert_str_eq(r0.msg, want);
    cr_assert_eq(r1.code, -EPROTO, "%d %s", r1.code, r1.msg);
    cr_assert_str_eq(r1.msg, want);
    char ev[600];
    snprintf(ev, sizeof ev, "refused 2 -71 %s\nfailed 2 -71 %s\n", want, want);
    cr_assert_str_eq(r0.events, ev);
}

Test(nodes, refuse_wrong_token_cluster_unaffected, .timeout = 60)
{
    int port = free_port();
    struct spec s0 = base(0, 2, port), bad = base(1, 2, port), good = base(1, 2, port);
    bad.token = "guess";
    bad.mode = C_OPEN;
    good.delay_ms = 500;
    struct child c0 = spawn(&s0), cb = spawn(&bad), cg = spawn(&good);
    struct rec r0, rb, rg;
    collect(cb, &rb);
    collect(c0, &r0);
    collect(cg, &rg);
    char host[64], want[300];
    hostname(host, sizeof host);
    snprintf(want, sizeof want, "cluster: rank 1 (pid %d on host %s) presented a wrong token "
             "(WEIR_TOKEN differs)", (int)cb.pid, host);
    cr_assert_eq(rb.code, -EACCES, "%d %s", rb.code, rb.msg);
    cr_assert_str_eq(rb.msg, want);
    cr_assert_eq(r0.code, 0, "%s", r0.msg);
    cr_assert_eq(r0.code2, 0, "%s", r0.msg2);
    cr_assert_eq(rg.code, 0, "%s", rg.msg);
    cr_assert_eq(rg.code2, 0, "%s", rg.msg2);
    char ev[400];
    snprintf(ev, sizeof ev, "refused 1 -13 %s\n", want);
    cr_assert_str_eq(r0.events, ev);
}

Test(nodes, refuse_duplicate_rank, .timeout = 60)
{
    int port = free_port();
    struct spec s0 = base(0, 3, port), s1 = base(1, 3, port), dup = base(1, 3, port),
                s2 = base(2, 3, port);
    dup.delay_ms = 300;
    dup.mode = C_OPEN;
    s2.delay_ms = 900;
    struct child c0 = spawn(&s0), c1 = spawn(&s1), cd = spawn(&dup), c2 = spawn(&s2);
    struct rec r0, r1, rd, r2;
    collect(cd, &rd);
    collect(c0, &r0);
    collect(c1, &r1);
    collect(c2, &r2);
    char host[64], want[300];
    hostname(host, sizeof host);
    snprintf(want, sizeof want, "cluster: rank 1 joined twice: pid %d on host %s is rank 1 "
             "already; refused pid %d on host %s", (int)c1.pid, host, (int)cd.pid, host);
    cr_assert_eq(rd.code, -EEXIST, "%d %s", rd.code, rd.msg);
    cr_assert_str_eq(rd.msg, want);
    for (int i = 0; i < 3; i++) {
        struct rec *r = i == 0 ? &r0 : i == 1 ? &r1 : &r2;
        cr_assert_eq(r->code, 0, "rank %d: %s", i, r->msg);
        cr_assert_eq(r->code2, 0, "rank %d: %s", i, r->msg2);
    }
    char ev[400];
    snprintf(ev, sizeof ev, "refused 1 -17 %s\n", want);
    cr_assert_str_eq(r0.events, ev);
}

/* A raw DEALER that sends bytes to rank 0 and returns the REFUSE it gets. */
static void impostor_id(const char *coord, const char *id, const uint8_t *bytes, size_t n,
                        int want_code, const char *want)
{
    void *ctx = zmq_ctx_new();
    void *s = zmq_socket(ctx, ZMQ_DEALER);
    int linger = 0, tmo = 5000;
    if (id)
        zmq_setsockopt(s, ZMQ_ROUTING_ID, id, strlen(id));
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(s, ZMQ_RCVTIMEO, &tmo, sizeof tmo);
    cr_assert_eq(zmq_connect(s, coord), 0);
    cr_assert_eq(zmq_send(s, bytes, n, 0), (int)n);
    static uint8_t buf[1 << 16];
    int got = zmq_recv(s, buf, sizeof buf, 0);
    zmq_close(s);
    zmq_ctx_term(ctx);
    cr_assert_gt(got, 0, "no answer to %zu bytes (expected: %s)", n, want);
    struct weir__cluster_msg m;
    memset(&m, 0, sizeof m);
    cr_assert_eq(weir__cluster_msg_decode(buf, (size_t)got, &m), 0, "%s", weir_errmsg());
    cr_assert_eq(m.kind, WEIR__CM_REFUSE);
    cr_assert_eq(m.code, want_code, "%d for: %s", m.code, m.reason);
    cr_assert_str_eq(m.reason, want);
}

static void impostor(const char *coord, const uint8_t *bytes, size_t n, int want_code,
                     const char *want)
{
    impostor_id(coord, NULL, bytes, n, want_code, want);
}

Test(nodes, refuse_bad_input_cluster_unaffected, .timeout = 60)
{
    int port = free_port();
    struct spec s0 = base(0, 2, port), s1 = base(1, 2, port);
    s1.delay_ms = 100; /* joins after the impostors */
    struct child c0 = spawn(&s0);
    static uint8_t buf[1 << 16];
    struct weir__cluster_msg m;
    char host[64], wants[9][300];
    int codes[9], k = 0;
    hostname(host, sizeof host);

    impostor(s0.coord, (const uint8_t *)"hello", 5, -EBADMSG,
             "cluster: refused a message from a peer that has not joined: cluster: control "
             "message of 5 bytes (expected 8..1048576)");
    snprintf(wants[k], sizeof wants[k], "cluster: refused a message from a peer that has not "
             "joined: cluster: control message of 5 bytes (expected 8..1048576)");
    codes[k++] = -EBADMSG;
    impostor(s0.coord, (const uint8_t *)"garbage!garbage!", 16, -EBADMSG,
             "cluster: refused a message from a peer that has not joined: cluster: not a weir "
             "control message (16 bytes, no 'WCLU' identifier)");
    snprintf(wants[k], sizeof wants[k], "cluster: refused a message from a peer that has not "
             "joined: cluster: not a weir control message (16 bytes, no 'WCLU' identifier)");
    codes[k++] = -EBADMSG;
    join_msg(&m, 1, 2, "tok");
    size_t n = enc(&m, buf, sizeof buf);
    char w[300];
    snprintf(w, sizeof w, "cluster: refused a message from a peer that has not joined: cluster: "
             "control message failed FlatBuffers verification (%zu bytes: truncated or corrupt)",
             n / 2);
    impostor(s0.coord, buf, n / 2, -EBADMSG, w);
    snprintf(wants[k], sizeof wants[k], "%s", w);
    codes[k++] = -EBADMSG;
    memset(&m, 0, sizeof m);
    m.kind = WEIR__CM_HEARTBEAT;
    n = enc(&m, buf, sizeof buf);
    impostor(s0.coord, buf, n, -EPROTO, "cluster: refused a HEARTBEAT from a peer that has not "
             "joined");
    snprintf(wants[k], sizeof wants[k], "cluster: refused a HEARTBEAT from a peer that has not "
             "joined");
    codes[k++] = -EPROTO;
    join_msg(&m, 5, 2, "tok");
    n = enc(&m, buf, sizeof buf);
    impostor(s0.coord, buf, n, -ERANGE, "cluster: rank 5 is out of range (a world of 2 ranks "
             "joins ranks 1..1)");
    snprintf(wants[k], sizeof wants[k], "cluster: rank 5 is out of range (a world of 2 ranks "
             "joins ranks 1..1)");
    codes[k++] = -ERANGE;
    join_msg(&m, 1, 3, "tok");
    n = enc(&m, buf, sizeof buf);
    impostor(s0.coord, buf, n, -EINVAL, "cluster: rank 1 says the world has 3 ranks, rank 0 says 2");
    snprintf(wants[k], sizeof wants[k], "cluster: rank 1 says the world has 3 ranks, rank 0 says 2");
    codes[k++] = -EINVAL;
    join_msg(&m, 1, 2, "tok");
    m.version = 9;
    n = enc(&m, buf, sizeof buf);
    char proto_why[128];
    snprintf(proto_why, sizeof proto_why, "cluster: rank 1 speaks control protocol version 9, "
             "rank 0 speaks %d", WEIR__CLUSTER_PROTO);
    impostor(s0.coord, buf, n, -EPROTO, proto_why);
    snprintf(wants[k], sizeof wants[k], "%s", proto_why);
    codes[k++] = -EPROTO;
    join_msg(&m, 1, 2, "tok2");
    n = enc(&m, buf, sizeof buf);
    snprintf(w, sizeof w, "cluster: rank 1 (pid %d on host %s) presented a wrong token (WEIR_TOKEN "
             "differs)", (int)getpid(), host);
    impostor(s0.coord, buf, n, -EACCES, w);
    snprintf(wants[k], sizeof wants[k], "%s", w);
    codes[k++] = -EACCES;

    char longid[101];
    memset(longid, 'L', 100);
    longid[100] = '\0';
    impostor_id(s0.coord, longid, buf, n, -EPROTO, "cluster: refused a peer with a routing id of "
                "100 bytes (at most 32)");
    snprintf(wants[k], sizeof wants[k], "cluster: refused a peer with a routing id of 100 bytes "
             "(at most 32)");
    codes[k++] = -EPROTO;

    /* The real rank 1 joins: the cluster is unaffected. */
    struct child c1 = spawn(&s1);
    struct rec r0, r1;
    collect(c0, &r0);
    collect(c1, &r1);
    cr_assert_eq(r0.code, 0, "%s", r0.msg);
    cr_assert_eq(r0.code2, 0, "%s", r0.msg2);
    cr_assert_eq(r1.code, 0, "%s", r1.msg);
    cr_assert_eq(r1.code2, 0, "%s", r1.msg2);
    cr_assert_str_eq(r0.table, "tcp://127.0.0.1:7000 tcp://127.0.0.1:7001");
    /* Rank 0 saw each refusal, with the same text the impostor got. */
    char ev[2048];
    int len = 0;
    int ranks[9] = {-1, -1, -1, -1, 5, 1, 1, 1, -1};
    for (int i = 0; i < k; i++)
        len += snprintf(ev + len, sizeof ev - (size_t)len, "refused %d %d %s\n", ranks[i], codes[i],
                        wants[i]);
    cr_assert_str_eq(r0.events, ev);
}

Test(nodes, rank_never_joins_named, .timeout = 60)
{
    int port = free_port();
    struct spec s0 = base(0, 3, port), s1 = base(1, 3, port);
    s0.timeout_ms = s1.timeout_ms = 800;
    s1.timeout_ms = 5000; /* rank 1 hears it from rank 0, well before its own bound */
    uint64_t t0 = t_now_ns();
    struct child c0 = spawn(&s0), c1 = spawn(&s1);
    struct rec r0, r1;
    collect(c0, &r0);
    double ms = t_ms_since(t0);
    collect(c1, &r1);
    const char *want = "cluster: rank 2 of 3 did not join within 800 ms";
    cr_assert_eq(r0.code, -ETIMEDOUT, "%d %s", r0.code, r0.msg);
    cr_assert_str_eq(r0.msg, want);
    cr_assert_eq(r1.code, -ETIMEDOUT, "%d %s", r1.code, r1.msg);
    cr_assert_str_eq(r1.msg, want);
    cr_assert_lt(ms, 800 + 1500, "rank 0 took %.0f ms", ms);
    cr_assert_lt(t_ms_since(t0), 3000);
}

Test(nodes, worker_alone_names_rank0, .timeout = 60)
{
    int port = free_port();
    struct spec s1 = base(1, 2, port);
    s1.timeout_ms = 500;
    struct child c1 = spawn(&s1);
    struct rec r1;
    collect(c1, &r1);
    char want[200];
    snprintf(want, sizeof want, "cluster: rank 1: rank 0 at tcp://127.0.0.1:%d did not complete "
             "the join within 500 ms", port);
    cr_assert_eq(r1.code, -ETIMEDOUT);
    cr_assert_str_eq(r1.msg, want);
}

/* "cluster: rank R (pid P on host H) fell silent for N ms (heartbeat bound B ms)" */
static void assert_silent(const char *msg, int rank, pid_t pid, int bound)
{
    char host[64], pre[200], post[64];
    hostname(host, sizeof host);
    snprintf(pre, sizeof pre, "cluster: rank %d (pid %d on host %s) fell silent for ", rank,
             (int)pid, host);
    snprintf(post, sizeof post, " ms (heartbeat bound %d ms)", bound);
    cr_assert(strncmp(msg, pre, strlen(pre)) == 0, "'%s' does not start '%s'", msg, pre);
    const char *p = msg + strlen(pre);
    char *end;
    long n = strtol(p, &end, 10);
    cr_assert(end > p && n >= bound * 3 / 4 && n < bound, "silence %ld in '%s'", n, msg);
    cr_assert_str_eq(end, post);
}

Test(nodes, sigkill_worker_detected_within_bound, .timeout = 60)
{
    int port = free_port();
    int hb = 1000;
    struct spec s0 = base(0, 3, port), s1 = base(1, 3, port), s2 = base(2, 3, port);
    s0.mode = s1.mode = C_OPEN;
    s0.kill_peer = s1.kill_peer = 1;
    s2.mode = C_KILL;
    s0.hb_ms = s1.hb_ms = s2.hb_ms = hb;
    struct child c0 = spawn(&s0), c1 = spawn(&s1), c2 = spawn(&s2);
    struct rec r0, r1, r2;
    int st = collect(c2, &r2);
    cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    collect(c0, &r0);
    collect(c1, &r1);
    cr_assert_eq(r0.code, 0, "%s", r0.msg);
    cr_assert_eq(r0.code2, -EHOSTDOWN, "%d %s", r0.code2, r0.msg2);
    assert_silent(r0.msg2, 2, c2.pid, hb);
    double d0 = (double)(r0.t - r2.t) / 1e6, d1 = (double)(r1.t - r2.t) / 1e6;
    cr_assert_lt(d0, hb, "rank 0 saw it %.0f ms after the kill", d0);
    cr_assert_eq(r1.code2, -EHOSTDOWN, "%d %s", r1.code2, r1.msg2);
    cr_assert_str_eq(r1.msg2, r0.msg2); /* rank 0's notice */
    /* Rank 1 said goodbye, the dead rank 2 is not waited for. */
    cr_assert_eq(r0.code3, 0, "%d", r0.code3);
    cr_assert_lt(r0.close_ms, 1500, "%.0f ms", r0.close_ms);
    cr_assert_lt(d1, hb, "rank 1 saw it %.0f ms after the kill", d1);
    cr_log_info("SIGKILL of rank 2 seen by rank 0 after %.0f ms, by rank 1 after %.0f ms (bound %d)",
                d0, d1, hb);
}

/* A worker stopped (SIGSTOP) past the heartbeat bound, then resumed: rank 0
 * gives it up, and the worker learns that from rank 0 (the same notice,
 * naming itself) instead of blaming rank 0 for the silence of its own pause. */
Test(nodes, paused_worker_learns_it_was_given_up, .timeout = 60)
{
    int port = free_port();
    int hb = 1000;
    struct spec s0 = base(0, 2, port), s1 = base(1, 2, port);
    s0.mode = s1.mode = C_OPEN;
    s0.hb_ms = s1.hb_ms = hb;
    struct child c0 = spawn(&s0), c1 = spawn(&s1);
    t_sleep_ms(500); /* joined by then: the join takes milliseconds */
    cr_assert_eq(kill(c1.pid, SIGSTOP), 0);
    t_sleep_ms(1500);
    cr_assert_eq(kill(c1.pid, SIGCONT), 0);
    struct rec r0, r1;
    collect(c0, &r0);
    collect(c1, &r1);
    cr_assert_eq(r0.code2, -EHOSTDOWN, "%d %s", r0.code2, r0.msg2);
    assert_silent(r0.msg2, 1, c1.pid, hb);
    cr_assert_eq(r1.code2, -EHOSTDOWN, "%d %s", r1.code2, r1.msg2);
    cr_assert_str_eq(r1.msg2, r0.msg2); /* rank 0's notice, not "rank 0 fell silent" */
}

/* Rank 0 tears the cluster down (its compile failed after the join) while
 * the others wait in the next ready barrier: they return at once with the
 * reason, not after their timeout (nor never, with WEIR_FOREVER). */
Test(nodes, teardown_ends_a_waiting_barrier, .timeout = 60)
{
    int port = free_port();
    struct spec s0 = base(0, 3, port), s1 = base(1, 3, port), s2 = base(2, 3, port);
    s0.mode = s1.mode = s2.mode = C_TEAR;
    struct child c0 = spawn(&s0), c1 = spawn(&s1), c2 = spawn(&s2);
    struct rec r0, r1, r2;
    collect(c0, &r0);
    collect(c1, &r1);
    collect(c2, &r2);
    const struct rec *w[2] = {&r1, &r2};
    for (int k = 0; k < 2; k++) {
        char want[200];
        snprintf(want, sizeof want, "cluster: barrier 2: rank %d: rank 0 tore the cluster down "
                 "before releasing it", k + 1);
        cr_assert_eq(w[k]->code2, -ECANCELED, "rank %d: %d %s", k + 1, w[k]->code2, w[k]->msg2);
        cr_assert_str_eq(w[k]->msg2, want);
        cr_assert_lt(w[k]->close_ms, 3000, "rank %d waited %.0f ms", k + 1, w[k]->close_ms);
    }
}

Test(nodes, sigkill_rank0_detected_within_bound, .timeout = 60)
{
    int port = free_port();
    int hb = 1000;
    struct spec s0 = base(0, 2, port), s1 = base(1, 2, port);
    s0.mode = C_KILL;
    s1.mode = C_OPEN;
    s1.kill_peer = 1;
    struct child c0 = spawn(&s0), c1 = spawn(&s1);
    struct rec r0, r1;
    collect(c0, &r0);
    collect(c1, &r1);
    cr_assert_eq(r1.code2, -EHOSTDOWN, "%d %s", r1.code2, r1.msg2);
    assert_silent(r1.msg2, 0, c0.pid, hb);
    double d = (double)(r1.t - r0.t) / 1e6;
    cr_assert_lt(d, hb, "rank 1 saw it %.0f ms after the kill", d);
}

Test(nodes, worker_leaves_and_reports, .timeout = 60)
{
    int port = free_port();
    struct spec s0 = base(0, 3, port), s1 = base(1, 3, port), s2 = base(2, 3, port);
    s0.mode = s2.mode = C_OPEN;
    s1.mode = C_REPORT;
    struct child c0 = spawn(&s0), c1 = spawn(&s1), c2 = spawn(&s2);
    struct rec r0, r1, r2;
    collect(c0, &r0);
    collect(c1, &r1);
    collect(c2, &r2);
    char host[64], want[300];
    hostname(host, sizeof host);
    snprintf(want, sizeof want, "cluster: rank 1 (pid %d on host %s) failed: disk on fire",
             (int)c1.pid, host);
    cr_assert_eq(r0.code2, -EIO, "%d %s", r0.code2, r0.msg2);
    cr_assert_str_eq(r0.msg2, want);
    cr_assert_eq(r1.code2, -EIO, "%d %s", r1.code2, r1.msg2);
    cr_assert_str_eq(r1.msg2, want);
    cr_assert_eq(r2.code2, -EIO, "%d %s", r2.code2, r2.msg2);
    cr_assert_str_eq(r2.msg2, want);

    /* Closing without a teardown is a failure notice too. */
    port = free_port();
    s0 = base(0, 2, port);
    s1 = base(1, 2, port);
    s0.mode = C_OPEN;
    s1.mode = C_LEAVE;
    c0 = spawn(&s0);
    c1 = spawn(&s1);
    collect(c0, &r0);
    collect(c1, &r1);
    snprintf(want, sizeof want, "cluster: rank 1 (pid %d on host %s) failed: it left before rank "
             "0 tore the cluster down", (int)c1.pid, host);
    cr_assert_eq(r0.code2, -ECONNRESET, "%d %s", r0.code2, r0.msg2);
    cr_assert_str_eq(r0.msg2, want);
}

Test(nodes, open_bad_arguments)
{
    struct weir__cluster_opts o = {.rank = 2, .size = 2, .coord = "tcp://127.0.0.1:1"};
    cr_assert_null(weir__cluster_open(&o));
    cr_assert_eq(weir_errcode(), -EINVAL);
    cr_assert_str_eq(weir_errmsg(), "cluster: open: bad argument (rank 2 of 2, coordinator "
                                    "'tcp://127.0.0.1:1')");
    const char *eps[] = {""};
    struct weir__cluster_opts o2 = {.rank = 1, .size = 2, .coord = "tcp://127.0.0.1:1",
                                    .endpoints = eps, .nendpoints = 1};
    cr_assert_null(weir__cluster_open(&o2));
    cr_assert_str_eq(weir_errmsg(), "cluster: rank 1: data endpoint 0 is empty or longer than 127 "
                                    "bytes");
    /* The coordinator's port is taken. */
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t l = sizeof a;
    cr_assert_eq(bind(s, (struct sockaddr *)&a, sizeof a), 0);
    cr_assert_eq(listen(s, 1), 0);
    cr_assert_eq(getsockname(s, (struct sockaddr *)&a, &l), 0);
    char coord[64], want[200];
    snprintf(coord, sizeof coord, "tcp://127.0.0.1:%d", ntohs(a.sin_port));
    struct weir__cluster_opts o3 = {.rank = 0, .size = 2, .coord = coord, .timeout_ms = 100};
    cr_assert_null(weir__cluster_open(&o3));
    close(s);
    cr_assert_eq(weir_errcode(), -EADDRINUSE);
    snprintf(want, sizeof want, "cluster: rank 0 cannot listen at %s: Address already in use",
             coord);
    cr_assert_str_eq(weir_errmsg(), want);
}

/* ---- launchers: weir-run, weir-run --netns, mpirun -------------------------------- */

/* Run a shell command; its stdout+stderr into out; returns the exit status. */
static int sh_out(char *out, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int sh_out(char *out, size_t cap, const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    FILE *f = popen(cmd, "r");
    cr_assert_not_null(f);
    size_t n = fread(out, 1, cap - 1, f);
    out[n] = '\0';
    int st = pclose(f);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* Clean environment for a launcher: no weir or launcher variable from outside. */
#define CLEAN_ENV "env -u WEIR_RANK -u WEIR_WORLD_SIZE -u WEIR_COORD -u WEIR_BIND -u WEIR_TOKEN "

static void expect_line(const char *out, const char *line)
{
    char want[1024];
    snprintf(want, sizeof want, "%s\n", line);
    cr_assert(strstr(out, want) != NULL, "missing line '%s' in:\n%s", line, out);
}

static int no_rank_left(const char *marker)
{
    char cmd[256], out[4096];
    /* "[w]rmark..." matches the ranks' command lines, not this shell's. */
    snprintf(cmd, sizeof cmd, "pgrep -f -- '[%c]%s' || true", marker[0], marker + 1);
    return sh_out(out, sizeof out, "%s", cmd) == 0 && out[0] == '\0';
}

static pid_t start_sleepers(int netns, const char *marker);

Test(nodes, weir_run_loopback, .timeout = 120)
{
    char out[16384];
    int st = sh_out(out, sizeof out, CLEAN_ENV "%s -n 3 %s ok 3 2>&1", WEIR_RUN, NODES_RANK);
    cr_assert_eq(st, 0, "weir-run: %d\n%s", st, out);
    for (int r = 0; r < 3; r++) {
        char l[256];
        snprintf(l, sizeof l, "rank %d: table tcp://127.0.0.1:7000 tcp://127.0.0.1:7001 "
                 "tcp://127.0.0.1:7002", r);
        expect_line(out, l);
        snprintf(l, sizeof l, "rank %d: 3 barriers", r);
        expect_line(out, l);
    }
    expect_line(out, "rank 0: teardown 0");
    expect_line(out, "rank 1: wait 0");
    expect_line(out, "rank 2: wait 0");
    cr_assert(strstr(out, "launcher weir, rank from WEIR_RANK, coordinator tcp://127.0.0.1:"));
}

Test(nodes, weir_run_first_failure_stops_the_rest, .timeout = 60)
{
    char out[8192], marker[32];
    snprintf(marker, sizeof marker, "wrmark%d", (int)getpid());
    uint64_t t0 = t_now_ns();
    int st = sh_out(out, sizeof out, CLEAN_ENV "%s --grace 500 -n 3 %s exit 1 7 %s 2>&1", WEIR_RUN,
                    NODES_RANK, marker);
    double ms = t_ms_since(t0);
    cr_assert_eq(st, 7, "weir-run: %d\n%s", st, out);
    cr_assert(strstr(out, "weir-run: rank 1 (pid ") && strstr(out, ") exited with status 7; "
                                                                   "stopping the other ranks\n"),
              "%s", out);
    cr_assert_lt(ms, 3000, "%.0f ms", ms);
    cr_assert(no_rank_left(marker));
    /* A rank killed by a signal: 128 + signal. */
    st = sh_out(out, sizeof out, CLEAN_ENV "%s -n 2 sh -c 'kill -9 $$' 2>&1", WEIR_RUN);
    cr_assert_eq(st, 137, "%d %s", st, out);
    cr_assert(strstr(out, "killed by signal 9 (SIGKILL)"), "%s", out);
    /* Usage errors. */
    st = sh_out(out, sizeof out, "%s -n 0 true 2>&1", WEIR_RUN);
    cr_assert_eq(st, 2);
    cr_assert(strstr(out, "weir-run: -n 0 is out of range (1..1024)\n"), "%s", out);
}

Test(nodes, weir_run_forwards_signals, .timeout = 60)
{
    char marker[32];
    snprintf(marker, sizeof marker, "wrsig%d", (int)getpid());
    pid_t p = start_sleepers(0, marker);
    uint64_t t0 = t_now_ns();
    kill(p, SIGTERM);
    int st;
    waitpid(p, &st, 0);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 128 + SIGTERM, "status %d", st);
    cr_assert_lt(t_ms_since(t0), 1500);
    cr_assert(no_rank_left(marker));
}

static int netns_ok(void)
{
    char out[512];
    return sh_out(out, sizeof out, "unshare -n true 2>&1") == 0;
}

/* Start weir-run [--netns] -n 3 nodes_rank sleep MARKER; returns once the
 * three ranks run. */
static pid_t start_sleepers(int netns, const char *marker)
{
    pid_t p = fork();
    cr_assert_geq(p, 0);
    if (p == 0) {
        if (netns)
            execl(WEIR_RUN, WEIR_RUN, "--netns", "-n", "3", NODES_RANK, "sleep", marker,
                  (char *)NULL);
        else
            execl(WEIR_RUN, WEIR_RUN, "-n", "3", NODES_RANK, "sleep", marker, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 500; i++) {
        char out[4096];
        /* weir-run's children that exec'd nodes_rank (a child not yet past
         * exec still shows weir-run's own command line, which holds it too) */
        sh_out(out, sizeof out, "pgrep -P %d -f -- '^[^ ]*nodes_rank sleep [%c]%s' | wc -l",
               (int)p, marker[0], marker + 1);
        if (atoi(out) == 3)
            return p;
        t_sleep_ms(10);
    }
    cr_assert_fail("the ranks of %s did not start", marker);
    return p;
}

/* weir-run --netns stopped by SIGINT, or killed outright: every rank, veth,
 * namespace and the bridge go with it (the fixture checks the links). */
Test(nodes, weir_run_netns_sigint_and_sigkill_leave_nothing, .timeout = 60)
{
    if (!netns_ok())
        cr_skip_test("network namespaces not permitted here");
    char marker[32];
    snprintf(marker, sizeof marker, "wrns%d", (int)getpid());
    pid_t p = start_sleepers(1, marker);
    char nsid[64], out[4096];
    snprintf(nsid, sizeof nsid, "/proc/%d/ns/net", (int)p);
    cr_assert_eq(sh_out(out, sizeof out, "nsenter --net=%s ip -o link show | grep -c ' wr[0-9]@'",
                        nsid), 0);
    cr_assert_eq(atoi(out), 3, "%s", out); /* three veths on weir-run's bridge */
    kill(p, SIGINT);
    int st;
    waitpid(p, &st, 0);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 128 + SIGINT, "status %d", st);
    cr_assert(no_rank_left(marker));

    p = start_sleepers(1, marker);
    kill(p, SIGKILL);
    waitpid(p, &st, 0);
    int gone = 0;
    for (int i = 0; i < 200 && !gone; i++) {
        gone = no_rank_left(marker);
        if (!gone)
            t_sleep_ms(10);
    }
    cr_assert(gone, "ranks outlived a SIGKILLed weir-run");
}

Test(nodes, weir_run_netns, .timeout = 120)
{
    if (!netns_ok())
        cr_skip_test("network namespaces not permitted here");
    char out[16384];
    int st = sh_out(out, sizeof out, CLEAN_ENV "%s --netns -n 3 %s ok 2 2>&1", WEIR_RUN,
                    NODES_RANK);
    cr_assert_eq(st, 0, "weir-run --netns: %d\n%s", st, out);
    for (int r = 0; r < 3; r++) {
        char l[256];
        snprintf(l, sizeof l, "rank %d: table tcp://10.200.0.1:7000 tcp://10.200.0.2:7001 "
                 "tcp://10.200.0.3:7002", r);
        expect_line(out, l);
    }
    expect_line(out, "rank 0: teardown 0");
    expect_line(out, "rank 1: wait 0");
    expect_line(out, "rank 2: wait 0");
    cr_assert(strstr(out, "coordinator tcp://10.200.0.1:29500\n"), "%s", out);
}

Test(nodes, weir_run_netns_sigkill, .timeout = 120)
{
    if (!netns_ok())
        cr_skip_test("network namespaces not permitted here");
    char out[16384];
    int st = sh_out(out, sizeof out, CLEAN_ENV "%s --netns --grace 5000 -n 3 %s kill 2 2>&1",
                    WEIR_RUN, NODES_RANK);
    cr_assert_eq(st, 128 + SIGKILL, "weir-run --netns: %d\n%s", st, out);
    const char *k = strstr(out, "rank 2: killing itself at ");
    cr_assert_not_null(k, "%s", out);
    unsigned long long tk = strtoull(k + strlen("rank 2: killing itself at "), NULL, 10);
    for (int r = 0; r < 2; r++) {
        char pre[64];
        snprintf(pre, sizeof pre, "rank %d: failure %d at ", r, -EHOSTDOWN);
        const char *f = strstr(out, pre);
        cr_assert_not_null(f, "rank %d: no failure line in\n%s", r, out);
        char *end;
        unsigned long long tf = strtoull(f + strlen(pre), &end, 10);
        double d = (double)(tf - tk) / 1e6;
        cr_assert_lt(d, 1000, "rank %d saw it %.0f ms after the kill", r, d);
        cr_assert(strncmp(end, ": cluster: rank 2 (pid ", 23) == 0, "%s", end);
        cr_log_info("netns: SIGKILL of rank 2 seen by rank %d after %.0f ms", r, d);
    }
}

/* Run the shell command cmd (exec'd: its pid is weir-run's, whose network
 * namespace holds the ranks' veths) with its output into out; once
 * ready(out) holds, wait delay_ms, take veth down and, if cut_ms > 0, up
 * again cut_ms later. Gives up after limit_s. Returns the exit status;
 * *t_cut: when the cut began. `never` names what did not happen. */
static int veth_cut_run(const char *cmd, int (*ready)(const char *), int delay_ms,
                        const char *veth, int cut_ms, int limit_s, const char *never, char *out,
                        size_t cap, uint64_t *t_cut)
{
    int p[2];
    cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        dup2(p[1], 1);
        dup2(p[1], 2);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    size_t len = 0;
    int cut = 0;
    out[0] = '\0';
    uint64_t deadline = t_now_ns() + (uint64_t)limit_s * 1000000000ull;
    while (t_now_ns() < deadline) {
        struct pollfd pf = {.fd = p[0], .events = POLLIN};
        if (poll(&pf, 1, 20) > 0) {
            ssize_t k = read(p[0], out + len, cap - 1 - len);
            if (k <= 0)
                break;
            len += (size_t)k;
            out[len] = '\0';
        }
        if (!cut && ready(out)) {
            char c[128], o[256];
            if (delay_ms)
                t_sleep_ms((unsigned)delay_ms);
            snprintf(c, sizeof c, "nsenter -t %d -n ip link set %s down 2>&1", (int)pid, veth);
            *t_cut = t_now_ns();
            cr_assert_eq(sh_out(o, sizeof o, "%s", c), 0, "%s", o);
            if (cut_ms > 0) {
                t_sleep_ms((unsigned)cut_ms);
                snprintf(c, sizeof c, "nsenter -t %d -n ip link set %s up 2>&1", (int)pid, veth);
                cr_assert_eq(sh_out(o, sizeof o, "%s", c), 0, "%s", o);
            }
            cut = 1;
        }
    }
    close(p[0]);
    int st;
    waitpid(pid, &st, 0);
    cr_assert(cut, "%s:\n%s", never, out);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static int three_tables(const char *out)
{
    int tables = 0;
    for (const char *q = out; (q = strstr(q, ": table ")) != NULL; q++)
        tables++;
    return tables == 3;
}

/* Run weir-run --netns -n 3 nodes_rank watch MS; once every rank printed its
 * table, cut rank 2's veth for cut_ms. Output into out; returns the exit
 * status and the monotonic time of the cut. */
static int netns_cut_run(int watch_ms, int cut_ms, int hb_ms, char *out, size_t cap,
                         uint64_t *t_cut)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "NODES_HB_MS=%d exec %s --netns -n 3 %s watch %d", hb_ms, WEIR_RUN,
             NODES_RANK, watch_ms);
    return veth_cut_run(cmd, three_tables, 0, "wr2", cut_ms, 60,
                        "the ranks never printed their tables", out, cap, t_cut);
}

static double failure_ms(const char *out, int rank, uint64_t t_cut, const char **text)
{
    char pre[64];
    snprintf(pre, sizeof pre, "rank %d: failure %d at ", rank, -EHOSTDOWN);
    const char *f = strstr(out, pre);
    cr_assert_not_null(f, "rank %d: no failure line in\n%s", rank, out);
    char *end;
    unsigned long long tf = strtoull(f + strlen(pre), &end, 10);
    *text = end;
    return (double)(tf - t_cut) / 1e6;
}

Test(nodes, weir_run_netns_cut_past_bound, .timeout = 120)
{
    if (!netns_ok())
        cr_skip_test("network namespaces not permitted here");
    static char out[32768];
    uint64_t t_cut = 0;
    int st = netns_cut_run(8000, 0, 1000, out, sizeof out, &t_cut);
    cr_assert_eq(st, 0, "weir-run: %d\n%s", st, out);
    const char *text;
    for (int r = 0; r < 2; r++) {
        double d = failure_ms(out, r, t_cut, &text);
        cr_assert_lt(d, 1000, "rank %d saw the cut after %.0f ms", r, d);
        cr_assert(strncmp(text, ": cluster: rank 2 (pid ", 23) == 0, "%s", text);
        cr_log_info("netns cut: rank %d named rank 2 after %.0f ms", r, d);
    }
    /* The cut-off rank names rank 0. */
    double d = failure_ms(out, 2, t_cut, &text);
    cr_assert_lt(d, 1000, "rank 2 saw the cut after %.0f ms", d);
    cr_assert(strncmp(text, ": cluster: rank 0 (pid ", 23) == 0, "%s", text);
    expect_line(out, "rank 0: teardown 0");
}

Test(nodes, weir_run_netns_short_cut_fails_nothing, .timeout = 120)
{
    if (!netns_ok())
        cr_skip_test("network namespaces not permitted here");
    static char out[32768];
    uint64_t t_cut = 0;
    /* TCP retransmits from 200 ms on, backing off: a cut of C ms silences a
     * peer for up to about 2C + 200 ms plus one heartbeat interval, which
     * must stay below 3/4 of the bound (the default 2 s here). */
    int st = netns_cut_run(3000, 200, 2000, out, sizeof out, &t_cut);
    cr_assert_eq(st, 0, "weir-run: %d\n%s", st, out);
    expect_line(out, "rank 0: no failure");
    expect_line(out, "rank 0: teardown 0");
    expect_line(out, "rank 1: no failure");
    expect_line(out, "rank 2: no failure");
}

Test(nodes, mpirun_no_weir_variables, .timeout = 120)
{
    char out[16384];
    if (sh_out(out, sizeof out, "command -v mpirun") != 0)
        cr_skip_test("no mpirun (Debian openmpi-bin)");
    int st = sh_out(out, sizeof out, CLEAN_ENV "mpirun -n 3 --allow-run-as-root --oversubscribe "
                    "%s ok 2 2>&1", NODES_RANK);
    cr_assert_eq(st, 0, "mpirun: %d\n%s", st, out);
    for (int r = 0; r < 3; r++) {
        char l[256];
        snprintf(l, sizeof l, "rank %d: table tcp://127.0.0.1:7000 tcp://127.0.0.1:7001 "
                 "tcp://127.0.0.1:7002", r);
        expect_line(out, l);
    }
    cr_assert(strstr(out, "rank 1 of 3: launcher Open MPI, rank from OMPI_COMM_WORLD_RANK, "
                          "coordinator ipc://@weir-"), "%s", out);
    expect_line(out, "rank 0: teardown 0");
    expect_line(out, "rank 2: wait 0");
}

/* ---- compiled graphs across ranks (engine/remote.c; tests/mnode_rank.c) ---------- */

/* Executions per run: 10^5, fewer under sanitizers. */
#define MN_EXECS (SANITIZED ? 3000ull : 100000ull)

/* mnode_rank's functions (its header comment), to check its sum. */
static uint64_t mn_expect(const char *shape, int S, uint64_t x, unsigned k)
{
    if (!strcmp(shape, "chain")) {
        for (int i = 0; i <= S; i++)
            x = x * 3 + (uint64_t)i + 1;
        return x;
    }
    if (!strcmp(shape, "diamond"))
        return (((x + 1) + 10) ^ (2 * x * 3)) + x;
    uint64_t y = x * 7 + 1;
    return k == 0 ? y : y * ((uint64_t)k + 2);
}

static unsigned mn_nout(const char *shape, int S)
{
    return !strcmp(shape, "fanout") ? (unsigned)(S > 2 ? S : 2) + 2 : 1;
}

/* Run SHAPE over S ranks (launcher prefix pre) and check every rank's lines:
 * rank 0 checked all N executions (each output compared by mnode_rank; the
 * sum over every output here), every other rank joined, every free was 0. */
static void mn_run(const char *pre, const char *shape, int S, const char *iso, uint64_t n)
{
    static char out[65536];
    int st = sh_out(out, sizeof out, CLEAN_ENV "%s %s %s %llu %s 2>&1", pre, MNODE_RANK, shape,
                    (unsigned long long)n, iso);
    cr_assert_eq(st, 0, "%s %s over %d ranks: exit %d\n%s", shape, iso, S, st, out);
    uint64_t sum = 0;
    for (uint64_t e = 0; e < n; e++)
        for (unsigned k = 0; k < mn_nout(shape, S); k++)
            sum += mn_expect(shape, S, e * 2654435761u, k);
    char l[256];
    snprintf(l, sizeof l, "rank 0: %llu executions checked, 0 failed, sum %016llx",
             (unsigned long long)n, (unsigned long long)sum);
    expect_line(out, l);
    for (int r = 0; r < S; r++) {
        snprintf(l, sizeof l, "rank %d: free 0 in ", r);
        cr_assert(strstr(out, l), "rank %d did not free cleanly:\n%s", r, out);
        if (r) {
            snprintf(l, sizeof l, "rank %d: joined", r);
            expect_line(out, l);
        }
    }
}

static void mn_weir_run(const char *shape, const char *iso)
{
    for (int S = 2; S <= 4; S++) {
        char pre[256];
        snprintf(pre, sizeof pre, "%s -n %d", WEIR_RUN, S);
        mn_run(pre, shape, S, iso, MN_EXECS);
    }
}

Test(nodes, dag_chain_2_3_4_ranks_threads, .timeout = 300)
{
    mn_weir_run("chain", "thread");
}

Test(nodes, dag_diamond_2_3_4_ranks_mixed, .timeout = 300)
{
    mn_weir_run("diamond", "mixed");
}

Test(nodes, dag_fanout_2_3_4_ranks_processes, .timeout = 300)
{
    mn_weir_run("fanout", "process");
}

/* Fan-in past four senders: over 6 ranks, rank 0 (the driver, and c0, c6)
 * reads from ranks 1..5, one listening endpoint each. */
Test(nodes, dag_fanout_6_ranks_five_senders_to_one, .timeout = 300)
{
    char pre[256];
    snprintf(pre, sizeof pre, "%s -n 6", WEIR_RUN);
    mn_run(pre, "fanout", 6, "thread", SANITIZED ? 1000ull : 20000ull);
}

Test(nodes, dag_netns_chain_and_diamond, .timeout = 300)
{
    if (!netns_ok())
        cr_skip_test("network namespaces not permitted here");
    char pre[256];
    snprintf(pre, sizeof pre, "%s --netns -n 3", WEIR_RUN);
    mn_run(pre, "chain", 3, "thread", MN_EXECS);
    snprintf(pre, sizeof pre, "%s --netns -n 4", WEIR_RUN);
    mn_run(pre, "diamond", 4, "mixed", MN_EXECS);
}

Test(nodes, dag_mpirun_3_ranks, .timeout = 300)
{
    char out[256];
    if (sh_out(out, sizeof out, "command -v mpirun") != 0)
        cr_skip_test("no mpirun (Debian openmpi-bin)");
    mn_run("mpirun -n 3 --allow-run-as-root --oversubscribe", "diamond", 3, "mixed", MN_EXECS);
}

/* Run SHAPE over S ranks as mn_run does, with env (may be "") before the
 * launcher, rank 0 saving its plan; `weir-plan show` of it into out. */
static void mn_run_show(const char *env, const char *shape, int S, const char *iso, uint64_t n,
                        char *out, size_t cap)
{
    char path[] = "/tmp/weir-mnode-plan-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    close(fd);
    char pre[512];
    snprintf(pre, sizeof pre, "%s MNODE_SAVE=%s %s -n %d", env, path, WEIR_RUN, S);
    mn_run(pre, shape, S, iso, n);
    int st = sh_out(out, cap, "%s show %s 2>&1", WEIR_PLAN_CLI, path);
    unlink(path);
    cr_assert_eq(st, 0, "%s", out);
}

/* weir-plan show of a plan across ranks lists where each channel lives. */
Test(nodes, dag_plan_shows_placement, .timeout = 120)
{
    char out[16384];
    mn_run_show("", "fanout", 3, "thread", 10, out, sizeof out);
    cr_assert(strstr(out, "\nplacement (3 ranks; links over uring; one receiving ring per rank)\n"),
              "%s", out);
    /* src on rank 1; c0, c3 on rank 0 (with the driver: 3 readers share one ring), c1 on 1, c2 on 2 */
    cr_assert(strstr(out, "src.emit.out0  written on rank 1: rank 0 link (3 readers) rank 1 local "
                          "(1 reader) rank 2 link (1 reader)\n"), "%s", out);
    cr_assert(strstr(out, "  0  arg0           written on rank 0: rank 1 link (1 reader)\n"), "%s", out);
}

/* The remote edges over ZeroMQ (compile option transport): a diamond over
 * 3 ranks runs whole, and the saved plan names the transport. */
Test(nodes, dag_diamond_3_ranks_over_zmq, .timeout = 300)
{
    if (!WEIR_HAVE_ZMQ_TRANSPORT)
        cr_skip_test("this build has no ZeroMQ transport");
    char out[16384];
    mn_run_show("MNODE_TRANSPORT=zmq", "diamond", 3, "mixed", MN_EXECS, out, sizeof out);
    cr_assert(strstr(out, "\nplacement (3 ranks; links over zmq; one receiving ring per rank)\n"),
              "%s", out);
}

static void mn_link_check(const char *out, int r, const char *chan, const char *dir, int peer,
                          unsigned long long n, unsigned streams);

/* Run the wide shape (W channels from rank 1 to rank 0, n executions) over
 * transport tp ("uring" / "zmq") into out and check what every such run
 * shows: exit 0, every execution's sum, both ranks freed cleanly. */
static void mn_run_wide(char *out, size_t cap, unsigned W, unsigned n, const char *tp)
{
    uint64_t sum = 0;
    for (uint64_t e = 0; e < n; e++)
        sum += W * (e * 2654435761u) + W * (W - 1) / 2;
    char want[160];
    snprintf(want, sizeof want, "rank 0: %u executions checked, 0 failed, sum %016llx", n,
             (unsigned long long)sum);
    int st = sh_out(out, cap, CLEAN_ENV "MNODE_WIDE=%u MNODE_TRANSPORT=%s %s -n 2 %s wide %u "
                    "mixed 2>&1", W, tp, WEIR_RUN, MNODE_RANK, n);
    cr_assert_eq(st, 0, "%s", out);
    expect_line(out, want);
    cr_assert(strstr(out, "rank 0: free 0 in ") && strstr(out, "rank 1: free 0 in "), "%s", out);
}

/* As many channels from one rank to another as one connection carries
 * (64 streams, WEIR__LINK_MAX_STREAMS; the largest HELLO fills most of a
 * control frame), both transports, thread and process actors: every
 * execution's outputs checked, every link on one connection of 64 streams
 * counted every message. */
Test(nodes, dag_64_channels_between_two_ranks_share_one_connection, .timeout = 300)
{
    static char out[262144];
    const unsigned W = 64, n = 2000;
    for (int t = 0; t < 2; t++) {
        if (t == 1 && !WEIR_HAVE_ZMQ_TRANSPORT)
            break;
        mn_run_wide(out, sizeof out, W, n, t ? "zmq" : "uring");
        expect_line(out, "rank 1: joined");
        const char *chans[] = {"src.spread0.out0", "src.spread1.out31"};
        for (int k = 0; k < 2; k++) {
            mn_link_check(out, 1, chans[k], "send", 0, n, W);
            mn_link_check(out, 0, chans[k], "recv", 1, n, W);
        }
    }
}

/* Co-scheduling across ranks: threads = T gives every rank T workers, each
 * holding actors of its own rank only; the fused schedules run the chain
 * and the diamond whole (every output checked), and weir-plan show names
 * each worker's rank. chain over 2 ranks: s0, s2 on rank 1, s1 on rank 0;
 * diamond over 3: src on rank 1, left on 2, right on 0, join on 2. */
Test(nodes, dag_fused_workers_per_rank, .timeout = 300)
{
    char out[16384];
    mn_run_show("MNODE_THREADS=1", "chain", 2, "thread", MN_EXECS, out, sizeof out);
    cr_assert(strstr(out, "  placement: threads 1, 2 workers\n"
                          "    worker 1 (rank 0): s1\n"
                          "    worker 2 (rank 1): s0, s2\n"), "%s", out);
    mn_run_show("MNODE_THREADS=2", "diamond", 3, "thread", MN_EXECS, out, sizeof out);
    cr_assert(strstr(out, "  placement: threads 2, 4 workers\n"
                          "    worker 1 (rank 0): right\n"
                          "    worker 2 (rank 1): src\n"
                          "    worker 3 (rank 2): left\n"
                          "    worker 4 (rank 2): join\n"), "%s", out);
    /* The same with rank 0's worker run by its driver (driver_worker): s1,
     * then right, between two links; the plans are the same. The diamond
     * also with its feature actors in processes. */
    char again[16384];
    mn_run_show("MNODE_THREADS=1 MNODE_DRIVER_WORKER=1", "chain", 2, "thread", MN_EXECS, again,
                sizeof again);
    cr_assert(strstr(again, "    worker 1 (rank 0): s1\n"), "%s", again);
    mn_run_show("MNODE_THREADS=2 MNODE_DRIVER_WORKER=1", "diamond", 3, "thread", MN_EXECS, again,
                sizeof again);
    cr_assert_str_eq(again, out, "driver_worker is not part of the plan");
    mn_run_show("MNODE_THREADS=2 MNODE_DRIVER_WORKER=1", "diamond", 3, "mixed", MN_EXECS, again,
                sizeof again);
}

static int mn_nop(weir_call *c, void *state);

/* ---- link counters (weir_dag_chan_nlinks / weir_dag_link_stats, weir-top) ---- */

struct mn_link {
    unsigned long long messages, bytes, acked, reconnects, frames, batches, rtt_ns;
    unsigned long long sframes, sbatches; /* the channel's own */
    unsigned streams, conn;
    int status;
};

/* The counters on the line of out that starts with pre. */
static struct mn_link mn_link_parse(const char *out, const char *pre)
{
    const char *k = strstr(out, pre);
    cr_assert_not_null(k, "no line '%s' in\n%s", pre, out);
    struct mn_link l;
    int n = sscanf(k + strlen(pre), "messages %llu bytes %llu acked %llu streams %u reconnects "
                   "%llu status %d frames %llu batches %llu rtt_ns %llu conn %u sframes %llu "
                   "sbatches %llu", &l.messages, &l.bytes, &l.acked, &l.streams, &l.reconnects,
                   &l.status, &l.frames, &l.batches, &l.rtt_ns, &l.conn, &l.sframes,
                   &l.sbatches);
    cr_assert_eq(n, 12, "unparsed '%s' in\n%s", pre, out);
    return l;
}

/* The line mnode_rank printed for channel chan's link DIR rank peer on rank r. */
static struct mn_link mn_link_of(const char *out, int r, const char *chan, const char *dir,
                                 int peer)
{
    char pre[160];
    snprintf(pre, sizeof pre, "rank %d: link %s %s rank %d: ", r, chan, dir, peer);
    return mn_link_parse(out, pre);
}

/* Rank 0's copy of rank r's link (its STATS report, read before the
 * teardown) against what rank r printed of it after the teardown: the
 * stream's counters and the connection's identity equal, the
 * connection's counters no further than the final ones, running. */
static void mn_remote_link_check(const char *out, int r, const char *chan, const char *dir,
                                 int peer)
{
    char pre[200];
    snprintf(pre, sizeof pre, "rank 0: remote link %s on rank %d %s rank %d: ", chan, r, dir,
             peer);
    struct mn_link x = mn_link_parse(out, pre), y = mn_link_of(out, r, chan, dir, peer);
    cr_assert(x.messages == y.messages && x.bytes == y.bytes && x.acked == y.acked,
              "'%s' %llu/%llu/%llu, rank %d printed %llu/%llu/%llu", pre, x.messages, x.bytes,
              x.acked, r, y.messages, y.bytes, y.acked);
    cr_assert(x.streams == y.streams && x.conn == y.conn, "'%s' streams %u conn %u, rank %d "
              "printed %u %u", pre, x.streams, x.conn, r, y.streams, y.conn);
    cr_assert_eq(x.status, 0, "'%s' status %d", pre, x.status);
    cr_assert(x.frames >= x.messages && x.frames <= y.frames && x.batches > 0 &&
              x.batches <= y.batches && x.reconnects <= y.reconnects,
              "'%s' frames %llu batches %llu reconnects %llu, rank %d's final %llu %llu %llu",
              pre, x.frames, x.batches, x.reconnects, r, y.frames, y.batches, y.reconnects);
    cr_assert(x.sframes >= x.messages && x.sframes <= y.sframes && x.sbatches <= y.sbatches &&
              x.sbatches <= x.batches,
              "'%s' the channel's frames %llu sends %llu, rank %d's final %llu %llu", pre,
              x.sframes, x.sbatches, r, y.sframes, y.sbatches);
}

/* A link that carried n messages of 8 bytes, every one acknowledged, on a
 * connection of `streams` channels. A loaded machine can starve a link
 * past its silence bound (timeout/8) and make it reconnect, which fails
 * nothing: a sender then counts what it re-sent (at most a window each
 * time), the receiver and the acks count every message once. */
static void mn_link_check(const char *out, int r, const char *chan, const char *dir, int peer,
                          unsigned long long n, unsigned streams)
{
    struct mn_link l = mn_link_of(out, r, chan, dir, peer);
    if (!strcmp(dir, "recv") || l.reconnects == 0) {
        cr_assert_eq(l.messages, n, "rank %d %s %s: %llu messages", r, chan, dir, l.messages);
    } else {
        cr_assert_geq(l.messages, n);
        cr_assert_leq(l.messages, n + 64 * l.reconnects, "rank %d %s %s: %llu messages", r, chan,
                      dir, l.messages);
        cr_log_warn("rank %d %s %s: %llu reconnects on a loaded machine", r, chan, dir,
                    l.reconnects);
    }
    cr_assert_eq(l.bytes, 8 * l.messages, "rank %d %s %s: %llu bytes", r, chan, dir, l.bytes);
    cr_assert_eq(l.acked, n, "rank %d %s %s: %llu acked", r, chan, dir, l.acked);
    cr_assert_eq(l.streams, streams, "rank %d %s %s: %u streams", r, chan, dir, l.streams);
    /* every message is one DATA frame of the connection, which batches them */
    cr_assert_geq(l.frames, n * streams, "rank %d %s %s: %llu frames", r, chan, dir, l.frames);
    cr_assert_gt(l.batches, 0);
    cr_assert_leq(l.batches, l.frames);
    /* the channel's own: a DATA frame per message sent or received, and its
     * CLOSE unless the teardown cut the stream first; its sends (DATA and
     * CLOSE, or ACKs) are some of the connection's */
    cr_assert(l.sframes == l.messages || l.sframes == l.messages + 1,
              "rank %d %s %s: %llu frames of its own for %llu messages", r, chan, dir, l.sframes,
              l.messages);
    cr_assert(l.sbatches > 0 && l.sbatches <= l.batches && l.sbatches <= l.sframes,
              "rank %d %s %s: %llu sends of its own (%llu frames; the connection's %llu)", r,
              chan, dir, l.sbatches, l.sframes, l.batches);
}

/* More channels from one rank to another than one connection carries: the
 * first 64 (in channel order) ride connection 0, the other 36 connection
 * 1, both transports, thread and process actors, every execution's
 * outputs checked and every link counted every message. */
Test(nodes, dag_100_channels_between_two_ranks_ride_two_connections, .timeout = 300)
{
    static char out[393216];
    const unsigned W = 100, n = 2000;
    for (int t = 0; t < 2; t++) {
        if (t == 1 && !WEIR_HAVE_ZMQ_TRANSPORT)
            break;
        mn_run_wide(out, sizeof out, W, n, t ? "zmq" : "uring");
        /* channels 1..64 from rank 1: spread0.*, spread1.*; then spread2.*, spread3.* */
        const char *chans[] = {"src.spread0.out0", "src.spread1.out31", "src.spread2.out0",
                               "src.spread3.out3"};
        for (int k = 0; k < 4; k++)
            for (int dir = 0; dir < 2; dir++) {
                mn_link_check(out, dir ? 1 : 0, chans[k], dir ? "send" : "recv", dir ? 0 : 1, n,
                              k < 2 ? 64 : 36);
                struct mn_link l = mn_link_of(out, dir ? 1 : 0, chans[k], dir ? "send" : "recv",
                                              dir ? 0 : 1);
                cr_assert_eq(l.conn, k < 2 ? 0u : 1u, "%s on connection %u", chans[k], l.conn);
            }
    }
}

/* Chain over 2 ranks (s0, s2 on rank 1; s1 on rank 0): all four channels
 * cross, two per direction on one connection each. Every link counted
 * every message and byte; the stats segment (weir-top --json) has the
 * same; the sending links of rank 0 measured a round trip. */
Test(nodes, dag_link_counters_chain_2_ranks, .timeout = 120)
{
    static char out[262144];
    unsigned long long n = SANITIZED ? 2000 : 20000;
    int st = sh_out(out, sizeof out, CLEAN_ENV "MNODE_TOP=%s %s -n 2 %s chain %llu thread 2>&1",
                    WEIR_TOP_CLI, WEIR_RUN, MNODE_RANK, n);
    cr_assert_eq(st, 0, "%d\n%s", st, out);
    const char *ch[4] = {"arg0", "s0.step.out0", "s1.step.out0", "s2.step.out0"};
    for (int r = 0; r < 2; r++)
        for (int c = 0; c < 4; c++) {
            char l[160];
            snprintf(l, sizeof l, "rank %d: channel %s %llu messages %llu bytes", r, ch[c], n,
                     8 * n);
            expect_line(out, l);
            /* written on rank 0: arg0, s1; on rank 1: s0, s2 */
            int w = c == 0 || c == 2 ? 0 : 1;
            mn_link_check(out, r, ch[c], r == w ? "send" : "recv", 1 - r, n, 2);
        }
    /* both ends measure the round trip (the receiving end since protocol 2) */
    for (int c = 0; c < 4; c += 2) {
        cr_assert_gt(mn_link_of(out, 0, ch[c], "send", 1).rtt_ns, 0, "%s", out);
        cr_assert_gt(mn_link_of(out, 1, ch[c], "recv", 0).rtt_ns, 0, "%s", out);
    }
    /* the stats segment of each rank: rank, world and the same counters */
    char want[512];
    snprintf(want, sizeof want, "\"rank\":0,\"world\":2,\"links\":[{\"channel\":\"arg0\","
             "\"direction\":\"send\",\"peer_rank\":1,\"peer\":\"127.0.0.1:");
    cr_assert(strstr(out, want), "no '%s' in\n%s", want, out);
    snprintf(want, sizeof want, "\"rank\":1,\"world\":2,\"links\":[{\"channel\":\"arg0\","
             "\"direction\":\"receive\",\"peer_rank\":0,\"peer\":\"127.0.0.1:");
    cr_assert(strstr(out, want), "no '%s' in\n%s", want, out);
    snprintf(want, sizeof want, "{\"channel\":\"s2.step.out0\",\"direction\":\"send\","
             "\"peer_rank\":0,");
    cr_assert(strstr(out, want), "no '%s' in\n%s", want, out);
    snprintf(want, sizeof want, "\"messages\":%llu,\"bytes\":%llu,\"acked\":%llu,", n, 8 * n, n);
    int hits = 0;
    for (const char *q = out; (q = strstr(q, want)) != NULL; q++)
        hits++;
    unsigned long long rec = 0;
    for (int r = 0; r < 2; r++)
        for (int c = 0; c < 4; c++) {
            int w = c == 0 || c == 2 ? 0 : 1;
            rec += mn_link_of(out, r, ch[c], r == w ? "send" : "recv", 1 - r).reconnects;
        }
    /* every link exact: 4 in rank 1's segment, 8 in rank 0's (its own, and
     * rank 1's as reported); after a reconnect (a loaded machine) the
     * receivers still are (2 + 4) */
    cr_assert_geq(hits, rec ? 6 : 12, "%d links of 12 show '%s' in\n%s", hits, want, out);
    /* rank 0 sees rank 1's four links as rank 1 reported them, in rank 1's
     * order, and its stats segment (weir-top) carries them with their rank */
    for (int c = 0; c < 4; c++) {
        int w = c == 0 || c == 2 ? 0 : 1;
        mn_remote_link_check(out, 1, ch[c], w == 1 ? "send" : "recv", 0);
    }
    expect_line(out, "rank 1: remote links 0, -22: graph 'chain': channel 'arg0': "
                     "weir_dag_link_remote_stats is for rank 0 (this is rank 1)");
    const char *t0 = strstr(out, "rank 0: top {");
    cr_assert_not_null(t0, "%s", out);
    char *top0 = strndup(t0, strcspn(t0, "\n")); /* rank 0's weir-top line alone */
    cr_assert_not_null(top0);
    snprintf(want, sizeof want, "{\"channel\":\"s0.step.out0\",\"direction\":\"send\","
             "\"peer_rank\":0,\"peer\":\"127.0.0.1:");
    const char *rs = strstr(top0, want);
    cr_assert_not_null(rs, "rank 0's weir-top has no '%s':\n%s", want, top0);
    const char *rk = strstr(rs, "\"rank\":1,\"status\":0,");
    cr_assert(rk && rk < strchr(rs, '}'), "rank 1's link in rank 0's weir-top:\n%s", rs);
    free(top0);
}

/* Fan-out over 3 ranks: src (rank 1) sends one channel to two ranks, the
 * links in rank order; rank 2 has no ring of arg0 (-ENOENT, named). */
Test(nodes, dag_link_counters_fanout_3_ranks, .timeout = 120)
{
    static char out[131072];
    unsigned long long n = SANITIZED ? 1000 : 10000;
    int st = sh_out(out, sizeof out, CLEAN_ENV "%s -n 3 %s fanout %llu thread 2>&1", WEIR_RUN,
                    MNODE_RANK, n);
    cr_assert_eq(st, 0, "%d\n%s", st, out);
    /* rank 1 -> rank 0: src.emit.out0 and c1.mul.out0; rank 1 -> rank 2: src.emit.out0 */
    mn_link_check(out, 1, "src.emit.out0", "send", 0, n, 2);
    mn_link_check(out, 1, "src.emit.out0", "send", 2, n, 1);
    mn_link_check(out, 0, "src.emit.out0", "recv", 1, n, 2);
    mn_link_check(out, 2, "src.emit.out0", "recv", 1, n, 1);
    const char *k0 = strstr(out, "rank 1: link src.emit.out0 send rank 0: ");
    const char *k2 = strstr(out, "rank 1: link src.emit.out0 send rank 2: ");
    cr_assert(k0 && k2 && k0 < k2, "%s", out);
    mn_link_check(out, 2, "c2.mul.out0", "send", 0, n, 1);
    mn_link_check(out, 0, "arg0", "send", 1, n, 1);
    expect_line(out, "rank 2: channel 0 -2: graph 'fanout': channel 'arg0' has no ring on rank 2 "
                     "(neither written nor read here)");
    /* rank 0 sees the links of ranks 1 and 2: rank 1's in rank order, then rank 2's */
    mn_remote_link_check(out, 1, "src.emit.out0", "send", 0);
    mn_remote_link_check(out, 1, "src.emit.out0", "send", 2);
    mn_remote_link_check(out, 2, "src.emit.out0", "recv", 1);
    mn_remote_link_check(out, 2, "c2.mul.out0", "send", 0);
    const char *r10 = strstr(out, "rank 0: remote link src.emit.out0 on rank 1 send rank 0: ");
    const char *r12 = strstr(out, "rank 0: remote link src.emit.out0 on rank 1 send rank 2: ");
    const char *r21 = strstr(out, "rank 0: remote link src.emit.out0 on rank 2 recv rank 1: ");
    cr_assert(r10 && r12 && r21 && r10 < r12 && r12 < r21, "%s", out);
    /* arg0 and c1.mul.out0 are rank 0's to rank 1 and rank 1's into rank 0 */
    mn_remote_link_check(out, 1, "arg0", "recv", 0);
    mn_remote_link_check(out, 1, "c1.mul.out0", "send", 0);
}

/* Rank 0 sees every channel: the diamond over 3 ranks (src on 1, left on 2,
 * right on 0, join on 2) has two channels rank 0 has no ring of,
 * src.split.out0 (rank 1 -> 2) and left.f.out0 (within rank 2); their
 * writers report them with the heartbeats, so weir_dag_chan_remote_stats
 * and rank 0's stats segment (weir-top) carry every message; another rank
 * is refused; weir_dag_chan_stats still answers for this rank's rings only. */
Test(nodes, dag_rank0_sees_the_channels_it_has_no_ring_of, .timeout = 120)
{
    static char out[262144];
    unsigned long long n = SANITIZED ? 1000 : 10000;
    int st = sh_out(out, sizeof out, CLEAN_ENV "MNODE_TOP=%s %s -n 3 %s diamond %llu thread 2>&1",
                    WEIR_TOP_CLI, WEIR_RUN, MNODE_RANK, n);
    cr_assert_eq(st, 0, "%d\n%s", st, out);
    char l[320];
    snprintf(l, sizeof l, "rank 0: remote channel src.split.out0 %llu messages %llu bytes 1 "
             "readers", n, 8 * n);
    expect_line(out, l);
    snprintf(l, sizeof l, "rank 0: remote channel left.f.out0 %llu messages %llu bytes 1 readers",
             n, 8 * n);
    expect_line(out, l);
    expect_line(out, "rank 0: channel 3 -2: graph 'diamond': channel 'left.f.out0' has no ring on "
                     "rank 0 (neither written nor read here)");
    /* a channel with a ring on rank 0 is weir_dag_chan_stats' */
    cr_assert(!strstr(out, "rank 0: remote channel src.split.out1"), "%s", out);
    cr_assert(!strstr(out, "rank 1: remote channel") && !strstr(out, "rank 2: remote channel"),
              "%s", out);
    /* rank 0's weir-top: the remote ring with its reader, join */
    snprintf(l, sizeof l, "rank 0: top {");
    const char *top = strstr(out, l);
    cr_assert_not_null(top, "%s", out);
    snprintf(l, sizeof l, "{\"name\":\"left.f.out0\",\"writer\":\"left\",\"messages\":%llu,"
             "\"bytes\":%llu,", n, 8 * n);
    const char *lf = strstr(top, l);
    cr_assert_not_null(lf, "no '%s' in rank 0's weir-top:\n%s", l, top);
    const char *rd = strstr(lf, "\"readers\":[{\"who\":\"join\"");
    const char *next = strstr(lf + 1, "{\"name\":");
    cr_assert(rd && (!next || rd < next), "left.f.out0's reader is join:\n%s", lf);
    /* rank 0 sees the other ranks' actors as they reported them: their
     * pids, and in its weir-top their rank and every call */
    char *top0 = strndup(top, strcspn(top, "\n")); /* rank 0's weir-top line alone */
    cr_assert_not_null(top0);
    const char *acts[] = {"src", "left", "join"};
    const int host[] = {1, 2, 2};
    for (int i = 0; i < 3; i++) {
        char pre[64];
        snprintf(pre, sizeof pre, "rank %d: actor %s pid ", host[i], acts[i]);
        const char *own = strstr(out, pre);
        cr_assert_not_null(own, "no '%s' in\n%s", pre, out);
        int pid = atoi(own + strlen(pre));
        cr_assert_gt(pid, 0, "%s", own);
        snprintf(l, sizeof l, "rank 0: actor %s pid %d restarts 0", acts[i], pid);
        expect_line(out, l);
        /* rank 1 knows nothing of rank 2's actors */
        if (host[i] == 2) {
            snprintf(l, sizeof l, "rank 1: actor %s pid 0 restarts 0", acts[i]);
            expect_line(out, l);
        }
        snprintf(l, sizeof l, "{\"name\":\"%s\",\"isolation\":\"thread\",\"rank\":%d,\"pid\":%d,"
                 "\"restarts\":0,\"calls\":%llu,", acts[i], host[i], pid, n);
        cr_assert(strstr(top0, l), "no '%s' in rank 0's weir-top:\n%s", l, top0);
    }
    free(top0);
}

/* The demo across 3 netns ranks (weir-marketdata --nodes 3 runs itself
 * under weir-run --netns): every score verified, every rank's table with
 * its links, each carrying every tick. */
Test(nodes, demo_marketdata_3_ranks, .timeout = 120)
{
    if (!netns_ok())
        cr_skip_test("network namespaces not permitted here");
    static char out[65536];
    unsigned long long n = SANITIZED ? 2000 : 20000;
    int st = sh_out(out, sizeof out, CLEAN_ENV "WEIR_RUN=%s %s -n %llu --nodes 3 --quiet 2>&1",
                    WEIR_RUN, WEIR_DEMO_CLI, n);
    cr_assert_eq(st, 0, "%d\n%s", st, out);
    char l[256];
    snprintf(l, sizeof l, "  verified: %llu of %llu scores equal the single-threaded reference",
             n, n);
    cr_assert(strstr(out, l), "%s", out);
    cr_assert(strstr(out, "  across 3 ranks (actor i on rank i % 3): parser on rank 0, momentum 1, "
                          "liquidity 2, joiner 0, scorer 1; rank 0 drives\n"), "%s", out);
    for (int r = 0; r < 3; r++) {
        snprintf(l, sizeof l, "\n  rank %d of 3: channels with a ring here, and their links\n", r);
        cr_assert(strstr(out, l), "%s", out);
    }
    /* parser (rank 0) feeds momentum (1) and liquidity (2): one link each,
     * 16-byte ticks; joiner (0) feeds scorer (1) */
    snprintf(l, sizeof l, "      link to   rank 1: %llu msgs, %.2f MB, ", n, 16.0 * n / 1e6);
    cr_assert(strstr(out, l), "no '%s' in\n%s", l, out);
    snprintf(l, sizeof l, "      link to   rank 2: %llu msgs, %.2f MB, ", n, 16.0 * n / 1e6);
    cr_assert(strstr(out, l), "no '%s' in\n%s", l, out);
    snprintf(l, sizeof l, "      link from rank 0: %llu msgs, %.2f MB, ", n, 16.0 * n / 1e6);
    cr_assert(strstr(out, l), "no '%s' in\n%s", l, out);
    cr_assert(!strstr(out, "(failed)"), "%s", out);
}

/* ---- per-edge transport (weir_node_transport) -------------------------------- */

static int tp_add(weir_call *c, void *state)
{
    (void)state;
    size_t n;
    const uint64_t *x = weir_call_in(c, 0, &n);
    uint64_t *y = weir_call_out(c, 0, 8);
    if (!x || !y)
        return weir_call_fail(c, "no value");
    *y = *x + 1;
    return 0;
}

/* a -> b; transport t on a's output (-2: none). The graph into *gp. */
static weir_dag *tp_dag(int t, weir_graph **gp)
{
    weir_graph *g = weir_graph_new("tp");
    weir_actor *a = weir_actor_new(g, "a", NULL), *b = weir_actor_new(g, "b", NULL);
    weir_node *in = weir_input(g, 0);
    weir_node *x = weir_bind(a, "f", tp_add, &in, 1, 1);
    if (t != -2)
        cr_assert_eq(weir_node_transport(x, t), 0, "%s", weir_errmsg());
    weir_node *y = weir_bind(b, "g", tp_add, &x, 1, 1);
    weir_output(g, &y, 1);
    weir_dag *d = weir_compile(g, NULL);
    cr_assert_not_null(d, "%s", weir_errmsg());
    *gp = g;
    return d;
}

Test(nodes, edge_transport_builder_errors)
{
    cr_assert_eq(weir_node_transport(NULL, WEIR_TRANSPORT_ZMQ), -EINVAL);
    cr_assert_str_eq(weir_errmsg(), "weir_node_transport: NULL node");
    weir_graph *g = weir_graph_new("tpe");
    weir_actor *a = weir_actor_new(g, "a", NULL);
    weir_node *in = weir_input(g, 0);
    weir_node *two = weir_bind(a, "split", tp_add, &in, 1, 2);
    cr_assert_eq(weir_node_transport(in, 7), -EINVAL);
    cr_assert_str_eq(weir_errmsg(), "graph 'tpe': input 0: unknown transport 7 "
                                    "(WEIR_TRANSPORT_URING, WEIR_TRANSPORT_ZMQ or "
                                    "WEIR_TRANSPORT_DEFAULT)");
    cr_assert_eq(weir_node_transport(two, WEIR_TRANSPORT_ZMQ), -EINVAL);
    cr_assert_str_eq(weir_errmsg(), "graph 'tpe': node 1 (a.split) has 2 outputs: give the "
                                    "transport of each of its weir_ret() picks");
    cr_assert_eq(weir_node_transport(weir_ret(two, 1), WEIR_TRANSPORT_ZMQ), 0);
    cr_assert_eq(weir_node_transport(in, WEIR_TRANSPORT_DEFAULT), 0);
    weir_graph_free(g);
    /* a compiled graph is frozen */
    weir_graph *g2 = weir_graph_new("tpf");
    weir_actor *b = weir_actor_new(g2, "b", NULL);
    weir_node *in2 = weir_input(g2, 0);
    weir_node *y = weir_bind(b, "g", tp_add, &in2, 1, 1);
    weir_output(g2, &y, 1);
    weir_dag *d = weir_compile(g2, NULL);
    cr_assert_not_null(d, "%s", weir_errmsg());
    cr_assert_eq(weir_node_transport(y, WEIR_TRANSPORT_ZMQ), -EBUSY);
    cr_assert_str_eq(weir_errmsg(), "graph 'tpf': already compiled; modifying it afterwards is "
                                    "not allowed (build a new graph)");
    weir_dag_free(d);
    weir_graph_free(g2);
}

/* The plan records an override (text, JSON, hash; the file round-trips
 * through weir-plan show); WEIR_TRANSPORT_DEFAULT is no override. One rank:
 * nothing crosses, so even a transport this build lacks compiles. */
Test(nodes, edge_transport_recorded_in_plan)
{
    weir_graph *g0, *g1, *g2;
    weir_dag *d0 = tp_dag(-2, &g0), *d1 = tp_dag(WEIR_TRANSPORT_ZMQ, &g1),
             *d2 = tp_dag(WEIR_TRANSPORT_DEFAULT, &g2);
    cr_assert_neq(weir_dag_plan_hash(d0), weir_dag_plan_hash(d1));
    cr_assert_eq(weir_dag_plan_hash(d0), weir_dag_plan_hash(d2));
    char *js = NULL;
    size_t jl = 0;
    FILE *f = open_memstream(&js, &jl);
    cr_assert_eq(weir_dag_write_json(d1, f), 0);
    fclose(f);
    cr_assert(strstr(js, "\"name\":\"a.f.out0\""), "%s", js);
    const char *ov = strstr(js, "\"src_out\":0,\"transport\":1}");
    cr_assert(ov, "%s", js);
    cr_assert_eq(strstr(ov + 26, "\"transport\":"), NULL, "one override only:\n%s", js);
    free(js);
    char path[] = "/tmp/weir-tp-plan-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    close(fd);
    cr_assert_eq(weir_dag_save_plan(d1, path), 0, "%s", weir_errmsg());
    char out[16384];
    int st = sh_out(out, sizeof out, "%s show %s 2>&1", WEIR_PLAN_CLI, path);
    cr_assert_eq(st, 0, "%s", out);
    cr_assert(strstr(out, "a op 1 out 0; transport zmq\n"), "%s", out);
    cr_assert(strstr(out, "b op 1 out 0\n"), "%s", out);
    char hash[64];
    snprintf(hash, sizeof hash, "%016llx", (unsigned long long)weir_dag_plan_hash(d1));
    sh_out(out, sizeof out, "%s hash %s 2>&1", WEIR_PLAN_CLI, path);
    cr_assert(strstr(out, hash), "hash %s, weir-plan hash: %s", hash, out);
    unlink(path);
    weir_dag_free(d0);
    weir_dag_free(d1);
    weir_dag_free(d2);
    weir_graph_free(g0);
    weir_graph_free(g1);
    weir_graph_free(g2);
}

/* 1 if this library has the ZeroMQ transport. */
/* Every edge of a chain over 2 ranks on zmq, the compile option uring:
 * without the ZeroMQ transport every rank's compile fails alike, before
 * the join, naming the channel; with it the chain runs whole. */
Test(nodes, edge_transport_zmq_every_rank, .timeout = 120)
{
    char out[65536];
    if (WEIR_HAVE_ZMQ_TRANSPORT) {
        char pre[256];
        snprintf(pre, sizeof pre, "MNODE_EDGE_TRANSPORT=zmq %s -n 2", WEIR_RUN);
        mn_run(pre, "chain", 2, "thread", SANITIZED ? 1000 : 10000);
        return;
    }
    int st = sh_out(out, sizeof out, CLEAN_ENV "MNODE_EDGE_TRANSPORT=zmq MNODE_COMPILE_FAILS=1 "
                    "%s -n 2 %s chain 10 thread 2>&1", WEIR_RUN, MNODE_RANK);
    cr_assert_eq(st, 0, "%d\n%s", st, out);
    for (int r = 0; r < 2; r++) {
        char l[512];
        snprintf(l, sizeof l, "rank %d: compile -38: graph 'chain': channel 'arg0' crosses ranks "
                 "over zmq (weir_node_transport): link: transport zmq: not built into this "
                 "library (channels/tcp_zmq.c)", r);
        expect_line(out, l);
    }
}

/* The other way round: the compile option zmq, every crossing edge uring
 * (weir_node_transport): the chain runs whole over io_uring links, and
 * weir-plan show lists the overrides in the placement. */
Test(nodes, edge_transport_uring_over_zmq_option, .timeout = 120)
{
    char out[16384];
    mn_run_show("MNODE_TRANSPORT=zmq MNODE_EDGE_TRANSPORT=uring", "chain", 2, "thread",
                SANITIZED ? 1000 : 10000, out, sizeof out);
    cr_assert(strstr(out, "\nplacement (2 ranks; links over zmq; one receiving ring per rank)\n"),
              "%s", out);
    cr_assert(strstr(out, "s0.step.out0  written on rank 1: rank 0 link (1 reader); links over "
                          "uring (weir_node_transport)\n"), "%s", out);
    cr_assert(strstr(out, "arg0          written on rank 0: rank 1 link (1 reader); links over "
                          "uring (weir_node_transport)\n"), "%s", out);
}

/* weir-bench dag --nodes 2 runs itself under weir-run --netns: every row
 * ran (the zmq ones too; skipped with the reason in a build without the
 * transport), every output checked by the bench, the ratios computed. */
Test(nodes, bench_dag_nodes_2, .timeout = 120)
{
    if (!netns_ok())
        cr_skip_test("network namespaces not permitted here");
    static char out[65536], err[16384];
    char errpath[] = "/tmp/weir-bench-nodes2-XXXXXX";
    int efd = mkstemp(errpath);
    cr_assert_geq(efd, 0);
    int st = sh_out(out, sizeof out, CLEAN_ENV "WEIR_RUN=%s %s dag --nodes 2 --quick --rounds 1 "
                    "--budget-ms 40 --json 2>%s", WEIR_RUN, WEIR_BENCH_CLI, errpath);
    /* the tail of stderr (both ranks' and the launcher's) explains a failure */
    off_t end = lseek(efd, 0, SEEK_END);
    ssize_t got = pread(efd, err, sizeof err - 1, end > (off_t)sizeof err - 1
                                                    ? end - (off_t)sizeof err + 1 : 0);
    err[got > 0 ? got : 0] = 0;
    close(efd);
    unlink(errpath);
    cr_assert_eq(st, 0, "%d\n%s\nstderr:\n%s", st, out, err);
    const char *rows[][2] = {{"pingpong.2rank.lat", "tcp-spin"}, {"chain4.2rank.lat", "weir-uring"},
                             {"chain4.2rank.tput", "weir-uring"}, {"chain4.1rank.lat", "weir"},
                             {"chain4.1rank.tput", "weir"}, {"chain4.2fused.lat", "weir-uring"},
                             {"chain4.2fused.tput", "weir-uring"}, {"chain4.1fused.lat", "weir"},
                             {"chain4.1fused.tput", "weir"}};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        char want[160];
        snprintf(want, sizeof want, "\"name\":\"%s\",\"impl\":\"%s\"", rows[i][0], rows[i][1]);
        const char *k = strstr(out, want);
        cr_assert_not_null(k, "no row %s %s in\n%s", rows[i][0], rows[i][1], out);
        /* one case per line */
        const char *e = strchr(k, '\n');
        const char *ok = strstr(k, "\"status\":\"ok\"");
        cr_assert(ok && e && ok < e, "row %s %s not ok:\n%s", rows[i][0], rows[i][1], out);
    }
    if (!WEIR_HAVE_ZMQ_TRANSPORT)
        cr_assert(strstr(out, "crosses ranks over zmq: link: transport zmq: not built into this "
                              "library (channels/tcp_zmq.c)"), "%s", out);
    for (int i = 0; WEIR_HAVE_ZMQ_TRANSPORT && i < 2; i++) {
        char want[160];
        snprintf(want, sizeof want, "\"name\":\"chain4.2rank.%s\",\"impl\":\"weir-zmq\"",
                 i ? "tput" : "lat");
        const char *k = strstr(out, want), *e = k ? strchr(k, '\n') : NULL;
        const char *ok = k ? strstr(k, "\"status\":\"ok\"") : NULL;
        cr_assert(ok && e && ok < e, "row %s not ok:\n%s", want, out);
    }
    cr_assert(strstr(out, "\"nodes.rtt_vs_tcp\""), "%s", out);
    cr_assert(strstr(out, "\"nodes.tput_vs_1rank\""), "%s", out);
}

/* One rank: no links, and asking for one is -ENOENT naming the channel. */
Test(nodes, dag_link_stats_one_rank)
{
    weir_graph *g = weir_graph_new("solo");
    weir_actor *a = weir_actor_new(g, "a", NULL);
    weir_node *in = weir_input(g, 0);
    weir_node *x = weir_bind(a, "f", mn_nop, &in, 1, 1);
    weir_output(g, &x, 1);
    weir_dag *d = weir_compile(g, NULL);
    cr_assert_not_null(d, "%s", weir_errmsg());
    cr_assert_eq(weir_dag_chan_nlinks(d, 0), 0);
    cr_assert_eq(weir_dag_chan_nlinks(d, 9), 0);
    cr_assert_eq(weir_dag_chan_nlinks(NULL, 0), 0);
    struct weir_dag_link_stats ls;
    cr_assert_eq(weir_dag_link_stats(d, 0, 0, &ls), -ENOENT);
    cr_assert_str_eq(weir_errmsg(), "graph 'solo': channel 'arg0' has 0 links on rank 0, no link 0");
    cr_assert_eq(weir_dag_link_stats(d, 2, 0, &ls), -EINVAL);
    cr_assert_str_eq(weir_errmsg(), "weir_dag_link_stats: channel 2 out of range (2)");
    cr_assert_eq(weir_dag_link_stats(d, 0, 0, NULL), -EINVAL);
    /* rank 0 of one: no other rank, no remote link */
    cr_assert_eq(weir_dag_chan_remote_nlinks(d, 0), 0);
    cr_assert_eq(weir_dag_chan_remote_nlinks(d, 9), 0);
    cr_assert_eq(weir_dag_chan_remote_nlinks(NULL, 0), 0);
    cr_assert_eq(weir_dag_link_remote_stats(d, 0, 0, &ls), -ENOENT);
    cr_assert_str_eq(weir_errmsg(), "graph 'solo': channel 'arg0' has 0 links on ranks other "
                                    "than 0, no link 0");
    cr_assert_eq(weir_dag_link_remote_stats(d, 2, 0, &ls), -EINVAL);
    cr_assert_str_eq(weir_errmsg(), "weir_dag_link_remote_stats: channel 2 out of range (2)");
    cr_assert_eq(weir_dag_link_remote_stats(d, 0, 0, NULL), -EINVAL);
    weir_dag_free(d);
    weir_graph_free(g);
}

static int mn_nop(weir_call *c, void *state)
{
    (void)state;
    return weir_call_fail(c, "never runs");
}

/* A node past the world size is a compile error naming the variable. */
Test(nodes, dag_node_past_world_size)
{
    setenv("WEIR_RANK", "0", 1);
    setenv("WEIR_WORLD_SIZE", "2", 1);
    setenv("WEIR_COORD", "127.0.0.1:1", 1);
    weir_graph *g = weir_graph_new("far");
    weir_actor *a = weir_actor_new(g, "faraway", &(weir_actor_opts){.node = 2});
    weir_node *in = weir_input(g, 0);
    weir_node *x = weir_bind(a, "f", mn_nop, &in, 1, 1);
    cr_assert_not_null(x, "%s", weir_errmsg());
    weir_output(g, &x, 1);
    weir_dag *d = weir_compile(g, NULL);
    cr_assert_null(d);
    cr_assert_eq(weir_errcode(), -EINVAL);
    cr_assert_str_eq(weir_errmsg(), "graph 'far': actor 'faraway': node 2 is not below the world "
                                    "size 2 (WEIR_WORLD_SIZE)");
    unsetenv("WEIR_RANK");
    unsetenv("WEIR_WORLD_SIZE");
    unsetenv("WEIR_COORD");
    weir_graph_free(g);
}

/* Rank 1 builds another graph: both sides refuse, naming both hashes. */
Test(nodes, dag_plan_hash_mismatch_named, .timeout = 120)
{
    char out[16384];
    sh_out(out, sizeof out, CLEAN_ENV "%s -n 2 %s chain 10 thread hash 1 2>&1", WEIR_RUN,
           MNODE_RANK);
    char h0[17], h1[17];
    const char *k = strstr(out, "rank 0: compile -71: graph 'chain': rank 0: cluster: rank 1 built "
                                "a different plan: hash ");
    cr_assert_not_null(k, "%s", out);
    cr_assert_eq(sscanf(strstr(k, ": hash ") + 7, "%16[0-9a-f], rank 0's is %16[0-9a-f]", h1, h0), 2,
                 "%s", out);
    cr_assert_str_neq(h0, h1);
    char l[256];
    snprintf(l, sizeof l, "rank 1: compile -71: graph 'chain': rank 1: cluster: rank 1 built a "
             "different plan: hash %s, rank 0's is %s", h1, h0);
    expect_line(out, l);
}

/* A method failing on rank 1 fails its execution only, with its text. */
Test(nodes, dag_remote_method_failure_one_execution, .timeout = 120)
{
    char out[65536];
    uint64_t n = SANITIZED ? 2000 : 20000;
    int st = sh_out(out, sizeof out, CLEAN_ENV "%s -n 3 %s chain %llu thread fail 1 2>&1", WEIR_RUN,
                    MNODE_RANK, (unsigned long long)n);
    cr_assert_eq(st, 0, "%d\n%s", st, out);
    char l[512];
    snprintf(l, sizeof l, "rank 0: execution %llu -121: graph 'chain': execution %llu: actor 's0' "
             "method 'step' failed at execution %llu: boom at execution %llu",
             (unsigned long long)n / 2, (unsigned long long)n / 2, (unsigned long long)n / 2,
             (unsigned long long)n / 2);
    expect_line(out, l);
    snprintf(l, sizeof l, "rank 0: %llu executions checked, 1 failed, sum ", (unsigned long long)n - 1);
    cr_assert(strstr(out, l), "%s", out);
    expect_line(out, "rank 1: joined");
    expect_line(out, "rank 2: joined");
}

static unsigned long long num_after(const char *out, const char *pre)
{
    const char *k = strstr(out, pre);
    cr_assert_not_null(k, "no '%s' in\n%s", pre, out);
    return strtoull(k + strlen(pre), NULL, 10);
}

/* Where rank 0 reported a failed execution: at weir_wait, or at weir_submit
 * when the failure was already known before the next submit (both lines
 * carry "ERR after T ms at NOW ms: MESSAGE"). */
static const char *rank0_failure(const char *out)
{
    const char *w = strstr(out, "rank 0: wait ");
    return w ? w : strstr(out, "rank 0: submit ");
}

/* SIGKILL rank 1 mid-run: rank 0's execution fails within the bound naming
 * the rank and its actors; rank 2's join returns; everyone frees. */
Test(nodes, dag_sigkill_worker_fails_executions, .timeout = 120)
{
    char out[65536];
    int st = sh_out(out, sizeof out, CLEAN_ENV "%s -n 3 --grace 20000 %s chain %llu thread kill 1 "
                    "2>&1", WEIR_RUN, MNODE_RANK, SANITIZED ? 2000ull : 20000ull);
    cr_assert_eq(st, 128 + SIGKILL, "%d\n%s", st, out);
    unsigned long long tk = num_after(out, "rank 1: killing itself at ");
    const char *w = rank0_failure(out);
    cr_assert_not_null(w, "%s", out);
    unsigned long long tw = num_after(w, " ms at ");
    cr_assert(strstr(w, " -32 after "), "%s", out);
    cr_assert(strstr(w, ": rank 1 failed (cluster: rank 1 (pid "), "%s", out);
    cr_assert(strstr(w, "(heartbeat bound 2000 ms)); the actors it hosted: 's0', 's3'\n"), "%s", out);
    cr_assert_lt(tw - tk, 2500, "rank 0 failed %llu ms after the kill", tw - tk);
    cr_log_info("dag: SIGKILL of rank 1 failed rank 0's execution after %llu ms", tw - tk);
    const char *j = strstr(out, "rank 2: join -112 after ");
    cr_assert_not_null(j, "%s", out);
    cr_assert_lt(num_after(j, " ms at ") - tk, 2500, "%s", out);
    cr_assert(strstr(out, "rank 0: free 0 in "), "%s", out);
    cr_assert(strstr(out, "rank 2: free 0 in "), "%s", out);
}

/* A rank killed after it reported: rank 0 keeps its links' last report,
 * each now with the failure's code (-EHOSTDOWN), not "running". Paced
 * (500 us per execution) so the kill at N/2 comes ~1.5 s in, after the
 * first reports (every 1 s). */
Test(nodes, dag_sigkill_rank0_marks_the_dead_ranks_links, .timeout = 120)
{
    char out[65536];
    int st = sh_out(out, sizeof out, CLEAN_ENV "MNODE_PACE_US=500 %s -n 2 --grace 20000 %s chain "
                    "6000 thread kill 1 2>&1", WEIR_RUN, MNODE_RANK);
    cr_assert_eq(st, 128 + SIGKILL, "%d\n%s", st, out);
    /* rank 1's links: arg0 and s1.step.out0 in, s0.step.out0 and s2.step.out0 out */
    const char *want[] = {"arg0 on rank 1 recv rank 0", "s0.step.out0 on rank 1 send rank 0",
                          "s1.step.out0 on rank 1 recv rank 0", "s2.step.out0 on rank 1 send rank 0"};
    for (int i = 0; i < 4; i++) {
        char pre[160];
        snprintf(pre, sizeof pre, "rank 0: remote link %s: ", want[i]);
        struct mn_link l = mn_link_parse(out, pre);
        cr_assert_eq(l.status, -EHOSTDOWN, "'%s' status %d\n%s", pre, l.status, out);
        cr_assert_gt(l.messages, 0, "'%s' reported nothing\n%s", pre, out);
    }
}

static int rank0_started(const char *out)
{
    return strstr(out, "rank 0: started\n") != NULL;
}

/* Run `weir-run --netns -n 2 mnode_rank chain N thread [cut 1]` (env before
 * it), and once rank 0 printed "started" (and 200 ms more: well into the
 * pipelined run) cut rank 1's veth for cut_ms. Output into out; returns the
 * exit status; *t_cut: when the cut began. */
static int mn_cut_run(const char *env, unsigned long long n, int cut_ms, int expect_fail,
                      char *out, size_t cap, uint64_t *t_cut)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "exec " CLEAN_ENV "%s %s --netns -n 2 %s chain %llu thread%s", env,
             WEIR_RUN, MNODE_RANK, n, expect_fail ? " cut 1" : "");
    return veth_cut_run(cmd, rank0_started, 200, "wr1", cut_ms, 90, "rank 0 never started", out,
                        cap, t_cut);
}

/* A cut shorter than the links' timeout (rank 1's veth down 300 ms, mid
 * pipelined run, the default 2 s bound): every execution completes with
 * the right output, every link reconnected exactly once, nothing failed. */
Test(nodes, dag_netns_short_cut_resumes, .timeout = 180)
{
    if (!netns_ok())
        cr_skip_test("network namespaces not permitted here");
    static char out[131072];
    unsigned long long n = SANITIZED ? 1500 : 4000;
    uint64_t t_cut = 0;
    int st = mn_cut_run("MNODE_PACE_US=500", n, 300, 0, out, sizeof out, &t_cut);
    cr_assert_eq(st, 0, "%d\n%s", st, out);
    uint64_t sum = 0;
    for (uint64_t e = 0; e < n; e++)
        sum += mn_expect("chain", 2, e * 2654435761u, 0);
    char l[256];
    snprintf(l, sizeof l, "rank 0: %llu executions checked, 0 failed, sum %016llx", n,
             (unsigned long long)sum);
    expect_line(out, l);
    expect_line(out, "rank 1: joined");
    const char *ch[4] = {"arg0", "s0.step.out0", "s1.step.out0", "s2.step.out0"};
    for (int r = 0; r < 2; r++)
        for (int c = 0; c < 4; c++) {
            int w = c == 0 || c == 2 ? 0 : 1;
            struct mn_link k = mn_link_of(out, r, ch[c], r == w ? "send" : "recv", 1 - r);
            /* received and acknowledged once each; a sender counts what it
             * sent again after the resume (at most the unacknowledged window) */
            cr_assert_eq(k.acked, n, "rank %d %s: %llu acked\n%s", r, ch[c], k.acked, out);
            if (r == w) {
                cr_assert_geq(k.messages, n);
                cr_assert_leq(k.messages, n + 64 * k.reconnects, "rank %d %s: %llu messages\n%s",
                              r, ch[c], k.messages, out);
                cr_assert_eq(k.bytes, 8 * k.messages);
            } else {
                cr_assert_eq(k.messages, n, "rank %d %s: %llu messages\n%s", r, ch[c],
                             k.messages, out);
                cr_assert_eq(k.bytes, 8 * n);
            }
            /* once; a sanitized build on a loaded machine can be starved past
             * the links' silence bound (timeout/8) once more after the cut */
            if (SANITIZED && k.reconnects > 1 && k.reconnects <= 3)
                cr_log_warn("rank %d %s: %llu reconnects (sanitized build)", r, ch[c],
                            k.reconnects);
            else
                cr_assert_eq(k.reconnects, 1, "rank %d %s: %llu reconnects\n%s", r, ch[c],
                             k.reconnects, out);
        }
}

/* A cut past the timeout (1 s bound, rank 1 cut off for 2.5 s): rank 0's
 * pending execution fails within the bound naming rank 1 and its actors,
 * rank 1's join names rank 0; the links' counters stay readable. */
Test(nodes, dag_netns_cut_past_timeout_fails_naming_rank, .timeout = 180)
{
    if (!netns_ok())
        cr_skip_test("network namespaces not permitted here");
    static char out[131072];
    uint64_t t_cut = 0;
    int st = mn_cut_run("WEIR_HEARTBEAT_MS=1000 MNODE_PACE_US=1000", 100000, 2500, 1, out,
                        sizeof out, &t_cut);
    cr_assert_eq(st, 0, "%d\n%s", st, out);
    const char *w = rank0_failure(out);
    cr_assert_not_null(w, "%s", out);
    cr_assert(strstr(w, " -32 after "), "%s", out);
    cr_assert(strstr(w, ": rank 1 failed (cluster: rank 1 (pid "), "%s", out);
    cr_assert(strstr(w, "(heartbeat bound 1000 ms)); the actors it hosted: 's0', 's2'\n"), "%s",
              out);
    unsigned long long tw = num_after(w, " ms at ");
    double ms = (double)tw - (double)(t_cut / 1000000ull);
    cr_assert_lt(ms, 1800, "rank 0 failed %.0f ms after the cut\n%s", ms, out);
    cr_log_info("dag: a cut past the 1 s bound failed rank 0's execution after %.0f ms", ms);
    const char *j = strstr(out, "rank 1: join -112 after ");
    cr_assert_not_null(j, "%s", out);
    cr_assert(strstr(j, "graph 'chain': rank 1: cluster: rank 0 (pid "), "%s", out);
    struct mn_link k = mn_link_of(out, 0, "arg0", "send", 1);
    cr_assert_gt(k.messages, 0, "%s", out);
    cr_assert(strstr(out, "rank 0: free 0 in "), "%s", out);
    cr_assert(strstr(out, "rank 1: free 0 in "), "%s", out);
}

/* Kill the driver: every other rank's weir_dag_join returns within the bound. */
Test(nodes, dag_kill_driver_join_returns, .timeout = 120)
{
    char out[65536];
    int st = sh_out(out, sizeof out, CLEAN_ENV "%s -n 3 --grace 20000 %s diamond %llu mixed "
                    "killdriver 0 2>&1", WEIR_RUN, MNODE_RANK, SANITIZED ? 2000ull : 20000ull);
    cr_assert_eq(st, 128 + SIGKILL, "%d\n%s", st, out);
    unsigned long long tk = num_after(out, "rank 0: killing itself at ");
    for (int r = 1; r < 3; r++) {
        char pre[64];
        snprintf(pre, sizeof pre, "rank %d: join -112 after ", r);
        const char *j = strstr(out, pre);
        cr_assert_not_null(j, "%s", out);
        unsigned long long tj = num_after(j, " ms at ");
        cr_assert_lt(tj - tk, 2500, "rank %d: join returned %llu ms after the kill", r, tj - tk);
        snprintf(pre, sizeof pre, "graph 'diamond': rank %d: cluster: rank 0 (pid ", r);
        cr_assert(strstr(j, pre), "%s", out);
        snprintf(pre, sizeof pre, "rank %d: free 0 in ", r);
        cr_assert(strstr(out, pre), "%s", out);
        cr_log_info("dag: SIGKILL of the driver: rank %d's join returned after %llu ms", r, tj - tk);
    }
}

/* ---- tensor edges across ranks (engine/tensor.c over links; tests/tnode_rank.c) -- */

#include "tnode_util.h"

/* Executions per tensor run: 10^4 and more, fewer under sanitizers. */
#define TN_EXECS (SANITIZED ? 1500ull : 20000ull)

/* Run tnode_rank SHAPE over 2 ranks (launcher prefix pre) with an R x C
 * tensor; rank 0 checked every record and element of N results (every
 * reader on either rank checked its inputs the same way, or the execution
 * failed) and its sum over every element is the one computed here; rank 1
 * joined; both freed cleanly. Output into out. These runs test data, not
 * failure detection: a heartbeat bound of 10 s keeps a starved rank on a
 * loaded machine (sanitizer builds) from being declared dead. */
static void tn_run(const char *pre, const char *shape, const char *iso, const char *dev,
                   uint64_t n, int64_t R, int64_t C, char *out, size_t cap)
{
    int st = sh_out(out, cap,
                    CLEAN_ENV "WEIR_HEARTBEAT_MS=10000 %s %s %s %llu %s %s %lld %lld 2>&1", pre,
                    TNODE_RANK, shape, (unsigned long long)n, iso, dev, (long long)R, (long long)C);
    cr_assert_eq(st, 0, "%s %s %s: exit %d\n%s", shape, iso, dev, st, out);
    uint64_t sum = 0;
    for (uint64_t e = 0; e < n; e++)
        for (int64_t i = 0; i < R; i++)
            for (int64_t j = 0; j < C; j++)
                sum += !strcmp(shape, "chain") ? tn_chain(e, i, j, 3) : tn_diamond(e, i, j);
    char l[256];
    snprintf(l, sizeof l, "rank 0: %llu executions checked, 0 failed, sum %016llx",
             (unsigned long long)n, (unsigned long long)sum);
    expect_line(out, l);
    expect_line(out, "rank 1: joined");
    cr_assert(strstr(out, "rank 0: free 0 in "), "%s", out);
    cr_assert(strstr(out, "rank 1: free 0 in "), "%s", out);
}

static void tn_weir_run(const char *shape, const char *iso, const char *dev, uint64_t n,
                        int64_t R, int64_t C)
{
    static char out[65536];
    char pre[256];
    snprintf(pre, sizeof pre, "%s -n 2", WEIR_RUN);
    tn_run(pre, shape, iso, dev, n, R, C, out, sizeof out);
}

/* CPU tensors over the links: every edge of the chain crosses ranks (1 -> 0
 * -> 1 -> the driver), in all four layouts (contiguous, transposed, padded
 * rows at an odd byte_offset, rows reversed) and four dtypes. */
Test(nodes, tensor_chain_2_ranks_threads_and_processes, .timeout = 300)
{
    tn_weir_run("chain", "thread", "cpu", TN_EXECS, 8, 16);
    tn_weir_run("chain", "process", "cpu", TN_EXECS, 8, 16);
}

/* The diamond: the argument and src's tensor each have a reader on both
 * ranks (one local, one over the link), right's tensor crosses to join. */
Test(nodes, tensor_diamond_2_ranks_threads_and_processes, .timeout = 300)
{
    tn_weir_run("diamond", "thread", "cpu", TN_EXECS, 8, 16);
    tn_weir_run("diamond", "process", "cpu", TN_EXECS, 8, 16);
}

/* 1 MiB tensors: the edges with max_bytes 0 start at the default slot and
 * grow on both ranks (the receiving ring too) with the data still aligned;
 * results are views (past result_view_bytes) rather than copies. */
Test(nodes, tensor_large_2_ranks, .timeout = 300)
{
    /* Under sanitizers 256 KiB (every element is checked in every stage). */
    tn_weir_run("chain", "thread", "cpu", SANITIZED ? 30 : 400, SANITIZED ? 128 : 256,
                SANITIZED ? 512 : 1024);
    tn_weir_run("diamond", "process", "cpu", SANITIZED ? 30 : 400, SANITIZED ? 128 : 256,
                SANITIZED ? 512 : 1024);
}

/* The same through weir-run --netns: each rank its own network namespace. */
Test(nodes, tensor_netns_chain_and_diamond, .timeout = 300)
{
    if (!netns_ok())
        cr_skip_test("network namespaces not permitted here");
    static char out[65536];
    char pre[256];
    snprintf(pre, sizeof pre, "%s --netns -n 2", WEIR_RUN);
    tn_run(pre, "chain", "thread", "cpu", TN_EXECS, 8, 16, out, sizeof out);
    tn_run(pre, "diamond", "process", "cpu", TN_EXECS, 8, 16, out, sizeof out);
}

/* Simulated-device edges across ranks, staged through host memory: the
 * writer's rank copies each message device-to-host into its slot once, the
 * link carries it, each reader on the other rank copies it host-to-device
 * once into a buffer of its own; readers on the writer's rank use the pool
 * as on one rank (no copy). weir's own copies per rank, exactly, every one
 * between the device and ring slots the actor registered with it (pinned
 * on a GPU), each registration undone at the actor's stop. */
static void tn_sim_copies(const char *out, int rank, uint64_t h2d, uint64_t d2h)
{
    char l[160];
    snprintf(l, sizeof l, "rank %d: weir copied h2d %llu d2h %llu d2d 0, pinned %llu (slot ranges "
             "registered ", rank, (unsigned long long)h2d, (unsigned long long)d2h,
             (unsigned long long)(h2d + d2h));
    const char *k = strstr(out, l);
    cr_assert_not_null(k, "no line '%s...' in\n%s", l, out);
    unsigned long long reg = 0, unreg = 0, fail = 1;
    cr_assert_eq(sscanf(k + strlen(l), "%llu, unregistered %llu, failed %llu)", &reg, &unreg, &fail),
                 3, "%s", k);
    cr_assert_gt(reg, 0, "rank %d registered no slots", rank);
    cr_assert_eq(unreg, reg, "rank %d: %llu registered, %llu unregistered", rank, reg, unreg);
    cr_assert_eq(fail, 0);
}

/* The shape over 2 ranks with the simulated device, threads then
 * processes, and each rank's copy counts (in, staged) as multiples of n. */
static void tn_sim_staged(const char *shape, int in0, int st0, int in1, int st1)
{
    static char out[65536];
    char pre[256];
    uint64_t n = SANITIZED ? 1000 : 10000;
    snprintf(pre, sizeof pre, "%s -n 2", WEIR_RUN);
    const char *iso[2] = {"thread", "process"};
    for (int k = 0; k < 2; k++) {
        tn_run(pre, shape, iso[k], "sim", n, 8, 16, out, sizeof out);
        tn_sim_copies(out, 0, in0 * n, st0 * n);
        tn_sim_copies(out, 1, in1 * n, st1 * n);
    }
}

/* chain: the argument (the driver's device buffer, read on rank 1), edge 1
 * (s0 on rank 1 -> s1 on rank 0) and edge 2 (s1 -> s2 on rank 1) are
 * device edges: rank 1 receives two (s0, s2 copy in) and stages one (s0);
 * rank 0's actor receives one and stages one (the driver's staging of the
 * argument is no actor's). */
Test(nodes, tensor_sim_chain_2_ranks_staged, .timeout = 300)
{
    /* rank 0: n copied in, n staged; rank 1: 2n in, n staged */
    tn_sim_staged("chain", 1, 1, 2, 1);
}

/* diamond, every edge on the device: the argument has a reader on the
 * driver's rank (join: the pool) and one on rank 1 (src: staged); src's
 * tensor one on its rank (right: the pool) and one on rank 0 (left:
 * staged); right -> join is staged, left -> join stays on rank 0 (no copy);
 * join's output is staged for the driver (a host copy). Rank 0's actors:
 * left and join copy in, join stages; rank 1's: src copies in, src and
 * right stage. */
Test(nodes, tensor_sim_diamond_2_ranks_staged, .timeout = 300)
{
    /* rank 0: 2n copied in, n staged; rank 1: n in, 2n staged */
    tn_sim_staged("diamond", 2, 1, 1, 2);
}
