/* SPDX-License-Identifier: MIT */
/*
 * engine/cluster_env.c - which rank this process is, how many there are and
 * where rank 0 listens, from the environment (weir/cluster.h).
 *
 * Design notes. The parser is a pure function of an envp array, so every
 * rule is unit tested with tables of environments (tests/test_nodes.c)
 * without touching the process environment; weir_rank() and
 * weir_world_size() run it over environ on every call.
 *
 * Launchers are one table, searched in order for the first rank variable
 * present. The order puts inner launchers before outer ones: mpirun or
 * torchrun run inside a Slurm allocation or a Kubernetes pod, where the
 * outer launcher's variables describe the outer task, not this process.
 * WEIR_RANK / WEIR_WORLD_SIZE are an explicit override and win (weir-run
 * inside an srun step). A launcher's size variable without its rank
 * variable is ignored (a salloc shell has SLURM_NTASKS but no task is
 * running yet); WEIR_WORLD_SIZE is the one exception, being explicit.
 *
 * Coordinator: WEIR_COORD, else MASTER_ADDR + MASTER_PORT (torchrun's),
 * else, for a launch the launcher says sits on one host, an abstract
 * ZeroMQ ipc endpoint named by the launcher's job id (so `mpirun -n 3
 * PROG` works with no weir variable set and leaves no file behind); else
 * a world of more than one rank is an error naming WEIR_COORD.
 */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "channels/err.h"
#include "engine/cluster.h"

extern char **environ;

#define ENV_ERR(...) weir__seterr(-EINVAL, "cluster environment: " __VA_ARGS__)

struct launcher {
    const char *name;
    const char *rank_var;
    const char *size_var;      /* NULL: the launcher has none (WEIR_WORLD_SIZE must be set) */
    /* One-host launch: every rank on this host when local_var == size ... */
    const char *local_var;
    /* ... or when nodes_var == 1; then job_var names the job (for the ipc endpoint). */
    const char *nodes_var;
    const char *job_var;
    const char *job_var2;      /* appended to job_var's value when set (Slurm's step) */
};

static const struct launcher launchers[] = {
    {"weir", "WEIR_RANK", "WEIR_WORLD_SIZE", NULL, NULL, NULL, NULL},
    {"Open MPI", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_SIZE",
     NULL, "OMPI_MCA_ess_base_jobid", NULL},
    {"MPICH/Hydra", "PMI_RANK", "PMI_SIZE", "MPI_LOCALNRANKS", NULL, NULL, NULL},
    {"torchrun", "RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", NULL, NULL, NULL},
    {"Slurm", "SLURM_PROCID", "SLURM_NTASKS", NULL, "SLURM_STEP_NUM_NODES", "SLURM_JOB_ID",
     "SLURM_STEP_ID"},
    {"Kubernetes indexed Job", "JOB_COMPLETION_INDEX", NULL, NULL, NULL, NULL, NULL},
};
#define NLAUNCHERS (sizeof launchers / sizeof launchers[0])

/* The value of NAME in envp (first entry wins), or NULL. */
static const char *env_get(char *const *envp, const char *name)
{
    size_t n = strlen(name);
    for (char *const *e = envp; e && *e; e++)
        if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
            return *e + n + 1;
    return NULL;
}

/* A decimal number without sign or blanks, 0 .. 999999999: 0, or -EINVAL. */
static int parse_num(const char *s, long *out)
{
    long v = 0;
    size_t i = 0;
    for (; s[i]; i++) {
        if (s[i] < '0' || s[i] > '9' || i >= 9)
            return -EINVAL;
        v = v * 10 + (s[i] - '0');
    }
    if (i == 0)
        return -EINVAL;
    *out = v;
    return 0;
}

static int get_num(char *const *envp, const char *var, long *out, int *present)
{
    const char *s = env_get(envp, var);
    *present = s != NULL;
    if (!s)
        return 0;
    if (parse_num(s, out) < 0)
        return ENV_ERR("%s='%.60s' is not a number (decimal digits only)", var, s);
    return 0;
}

static int get_size(char *const *envp, const char *var, long *out, int *present)
{
    int r = get_num(envp, var, out, present);
    if (r < 0)
        return r;
    if (*present && (*out < 1 || *out > WEIR_MAX_RANKS))
        return ENV_ERR("%s=%ld is out of range (1..%d)", var, *out, WEIR_MAX_RANKS);
    return 0;
}

/* HOST:PORT (HOST a name, an IPv4 address or [IPv6]); port 1..65535. 0 or -EINVAL. */
static int check_hostport(const char *var, const char *s, int need_port)
{
    size_t n = strlen(s);
    if (n == 0)
        return ENV_ERR("%s is empty (expected HOST%s)", var, need_port ? ":PORT" : "[:PORT]");
    if (n > WEIR__CLUSTER_ADDR_MAX)
        return ENV_ERR("%s is %zu bytes long (at most %d)", var, n, WEIR__CLUSTER_ADDR_MAX);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= ' ' || (unsigned char)s[i] >= 0x7f || s[i] == '/')
            return ENV_ERR("%s='%.60s': character %zu is not allowed in HOST%s", var, s, i + 1,
                           need_port ? ":PORT" : "[:PORT]");
    const char *colon;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close || close == s + 1)
            return ENV_ERR("%s='%.60s': an IPv6 address needs [ADDRESS]", var, s);
        colon = close[1] == ':' ? close + 1 : NULL;
        if (!colon && close[1] != '\0')
            return ENV_ERR("%s='%.60s': expected ':PORT' after ']'", var, s);
    } else {
        colon = strrchr(s, ':');
        if (colon && strchr(s, ':') != colon)
            return ENV_ERR("%s='%.60s': write an IPv6 address as [ADDRESS]:PORT", var, s);
        if (colon == s)
            return ENV_ERR("%s='%.60s': no host before ':'", var, s);
    }
    if (!colon) {
        if (need_port)
            return ENV_ERR("%s='%.60s' has no port (expected HOST:PORT)", var, s);
        return 0;
    }
    long port;
    if (parse_num(colon + 1, &port) < 0 || port < 1 || port > 65535)
        return ENV_ERR("%s='%.60s': port '%s' is not 1..65535", var, s, colon + 1);
    return 0;
}

/* Rank and size into out (rank_var, size_var, launcher). */
static int parse_rank(char *const *envp, struct weir__cluster_env *out, const struct launcher **lp)
{
    long wsize = 0;
    int have_wsize;
    int r = get_size(envp, "WEIR_WORLD_SIZE", &wsize, &have_wsize);
    if (r < 0)
        return r;
    *lp = NULL;
    for (size_t i = 0; i < NLAUNCHERS; i++) {
        const struct launcher *l = &launchers[i];
        long rank, size = 0;
        int have_rank, have_size = 0;
        if ((r = get_num(envp, l->rank_var, &rank, &have_rank)) < 0)
            return r;
        if (!have_rank)
            continue;
        if (l->size_var && (r = get_size(envp, l->size_var, &size, &have_size)) < 0)
            return r;
        if (i == 0 && !have_wsize)
            return ENV_ERR("WEIR_RANK=%ld is set but WEIR_WORLD_SIZE is not", rank);
        if (have_wsize && have_size && size != wsize)
            return ENV_ERR("WEIR_WORLD_SIZE=%ld contradicts %s=%ld", wsize, l->size_var, size);
        if (!have_wsize && !have_size) {
            if (!l->size_var)
                return ENV_ERR("%s=%ld gives the rank but no variable gives the world size: "
                               "set WEIR_WORLD_SIZE (a %s has no size variable)",
                               l->rank_var, rank, l->name);
            return ENV_ERR("%s=%ld is set but %s is not (set it, or WEIR_WORLD_SIZE)", l->rank_var,
                           rank, l->size_var);
        }
        const char *svar = have_wsize ? "WEIR_WORLD_SIZE" : l->size_var;
        long s = have_wsize ? wsize : size;
        if (rank >= s)
            return ENV_ERR("%s=%ld is not below %s=%ld", l->rank_var, rank, svar, s);
        out->rank = (int)rank;
        out->size = (int)s;
        out->launcher = l->name;
        snprintf(out->rank_var, sizeof out->rank_var, "%s", l->rank_var);
        snprintf(out->size_var, sizeof out->size_var, "%s", svar);
        *lp = l;
        return 0;
    }
    if (have_wsize && wsize > 1)
        return ENV_ERR("WEIR_WORLD_SIZE=%ld is set but no rank variable is (WEIR_RANK, "
                       "OMPI_COMM_WORLD_RANK, PMI_RANK, RANK, SLURM_PROCID, JOB_COMPLETION_INDEX)",
                       wsize);
    out->rank = 0;
    out->size = 1;
    out->launcher = "none";
    if (have_wsize)
        snprintf(out->size_var, sizeof out->size_var, "WEIR_WORLD_SIZE");
    return 0;
}

/* The launcher's own one-host endpoint, or "" when it cannot tell. */
static int one_host_coord(char *const *envp, const struct launcher *l, int size,
                          struct weir__cluster_env *out)
{
    if (!l || !l->job_var)
        return 0;
    int one_host = 0;
    long v;
    int present;
    if (l->local_var) {
        if (get_num(envp, l->local_var, &v, &present) < 0)
            return -EINVAL;
        one_host = present && v == size;
    } else if (l->nodes_var) {
        if (get_num(envp, l->nodes_var, &v, &present) < 0)
            return -EINVAL;
        one_host = present && v == 1;
    }
    const char *job = env_get(envp, l->job_var);
    if (!one_host || !job)
        return 0;
    const char *job2 = l->job_var2 ? env_get(envp, l->job_var2) : NULL;
    char id[96];
    snprintf(id, sizeof id, "%.40s%s%.40s", job, job2 ? "." : "", job2 ? job2 : "");
    for (char *p = id; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
              *p == '.' || *p == '-'))
            *p = '_';
    snprintf(out->coord, sizeof out->coord, "ipc://@weir-%s", id);
    snprintf(out->coord_var, sizeof out->coord_var, "%s", l->job_var);
    return 0;
}

int weir__cluster_env_parse(char *const *envp, struct weir__cluster_env *out)
{
    memset(out, 0, sizeof *out);
    const struct launcher *l;
    int r = parse_rank(envp, out, &l);
    if (r < 0)
        return r;

    const char *coord = env_get(envp, "WEIR_COORD");
    const char *maddr = env_get(envp, "MASTER_ADDR"), *mport = env_get(envp, "MASTER_PORT");
    if (coord) {
        const char *hp = coord;
        if (strncmp(coord, "tcp://", 6) == 0)
            hp = coord + 6;
        else if (strncmp(coord, "ipc://", 6) == 0) {
            if (strlen(coord) <= 6 || strlen(coord) > WEIR__CLUSTER_ADDR_MAX)
                return ENV_ERR("WEIR_COORD='%.60s': an ipc:// endpoint needs a path (at most "
                               "%d bytes)", coord, WEIR__CLUSTER_ADDR_MAX);
            hp = NULL;
        }
        if (hp && (r = check_hostport("WEIR_COORD", hp, 1)) < 0)
            return r;
        snprintf(out->coord, sizeof out->coord, "%s%s", hp ? "tcp://" : "", hp ? hp : coord);
        snprintf(out->coord_var, sizeof out->coord_var, "WEIR_COORD");
    } else if (maddr || mport) {
        if (!maddr)
            return ENV_ERR("MASTER_PORT is set but MASTER_ADDR is not (or set WEIR_COORD)");
        if (!mport)
            return ENV_ERR("MASTER_ADDR is set but MASTER_PORT is not (or set WEIR_COORD)");
        if ((r = check_hostport("MASTER_ADDR", maddr, 0)) < 0)
            return r;
        if (strchr(maddr[0] == '[' ? strchr(maddr, ']') : maddr, ':'))
            return ENV_ERR("MASTER_ADDR='%.60s' holds a port (the port goes in MASTER_PORT)",
                           maddr);
        long port;
        if (parse_num(mport, &port) < 0 || port < 1 || port > 65535)
            return ENV_ERR("MASTER_PORT='%.20s' is not a port (1..65535)", mport);
        if (strlen(maddr) + 6 > WEIR__CLUSTER_ADDR_MAX)
            return ENV_ERR("MASTER_ADDR is %zu bytes long (at most %d)", strlen(maddr),
                           WEIR__CLUSTER_ADDR_MAX - 6);
        snprintf(out->coord, sizeof out->coord, "tcp://%s:%ld", maddr, port);
        snprintf(out->coord_var, sizeof out->coord_var, "MASTER_ADDR");
    } else if (out->size > 1) {
        if ((r = one_host_coord(envp, l, out->size, out)) < 0)
            return r;
        if (!out->coord[0])
            return ENV_ERR("WEIR_COORD is not set: a world of %d ranks (from %s) needs rank 0's "
                           "control endpoint HOST:PORT (or MASTER_ADDR and MASTER_PORT)",
                           out->size, out->size_var);
    }

    const char *bind = env_get(envp, "WEIR_BIND");
    if (bind) {
        if ((r = check_hostport("WEIR_BIND", bind, 0)) < 0)
            return r;
        snprintf(out->bind, sizeof out->bind, "%s", bind);
    }
    const char *tok = env_get(envp, "WEIR_TOKEN");
    if (tok) {
        size_t n = strlen(tok);
        if (n > WEIR__CLUSTER_TOKEN_MAX)
            return ENV_ERR("WEIR_TOKEN is %zu bytes long (at most %d)", n,
                           WEIR__CLUSTER_TOKEN_MAX);
        memcpy(out->token, tok, n + 1);
        out->token_len = n;
    }
    return 0;
}

/* Rank and size only: a rank may ask where it stands before (or without)
 * the coordinator variables weir_compile needs. */
WEIR_API int weir_rank(void)
{
    struct weir__cluster_env e;
    const struct launcher *l;
    memset(&e, 0, sizeof e);
    int r = parse_rank(environ, &e, &l);
    return r < 0 ? r : e.rank;
}

WEIR_API int weir_world_size(void)
{
    struct weir__cluster_env e;
    const struct launcher *l;
    memset(&e, 0, sizeof e);
    int r = parse_rank(environ, &e, &l);
    return r < 0 ? r : e.size;
}

int weir__cluster_bind_addr(const struct weir__cluster_env *e, char *buf, size_t cap)
{
    if (e->bind[0]) {
        snprintf(buf, cap, "%s", e->bind);
        return 0;
    }
    if (strncmp(e->coord, "tcp://", 6) != 0) {
        snprintf(buf, cap, "127.0.0.1");
        return 0;
    }
    char host[WEIR__CLUSTER_ADDR_MAX + 1], *port;
    snprintf(host, sizeof host, "%s", e->coord + 6);
    port = strrchr(host, ':');
    if (port)
        *port++ = '\0';
    char *h = host;
    if (h[0] == '[') {
        h++;
        char *close = strchr(h, ']');
        if (close)
            *close = '\0';
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_DGRAM}, *ai = NULL;
    int g = getaddrinfo(h, port, &hints, &ai);
    if (g != 0)
        return weir__seterr(-EINVAL, "cluster environment: %s='%s': host '%s' does not resolve "
                            "(%s)", e->coord_var, e->coord, h, gai_strerror(g));
    int r = -EHOSTUNREACH;
    for (struct addrinfo *a = ai; a && r < 0; a = a->ai_next) {
        int s = socket(a->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (s < 0)
            continue;
        struct sockaddr_storage me;
        socklen_t ml = sizeof me;
        if (connect(s, a->ai_addr, a->ai_addrlen) == 0 &&
            getsockname(s, (struct sockaddr *)&me, &ml) == 0 &&
            getnameinfo((struct sockaddr *)&me, ml, buf, (socklen_t)cap, NULL, 0,
                        NI_NUMERICHOST) == 0)
            r = 0;
        close(s);
    }
    freeaddrinfo(ai);
    if (r < 0)
        return weir__seterr(r, "cluster environment: %s='%s': no local address routes to '%s' "
                            "(set WEIR_BIND)", e->coord_var, e->coord, h);
    return 0;
}
