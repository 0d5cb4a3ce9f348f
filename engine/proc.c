/* SPDX-License-Identifier: MIT */
/*
 * engine/proc.c - WEIR_PROCESS actors: fork, death detection, teardown.
 *
 * Design notes.
 *
 * Where the fork happens. weir_compile forks every process actor after it
 * has created the dag's channels (anonymous memfd segments, inherited by
 * the child as MAP_SHARED mappings) and registered every reader, and
 * before it starts any thread of this dag. The child runs only the actor's
 * init, its schedule loop and fini on the forking thread's copy of the
 * process, then _exit()s. Threads that exist elsewhere in the program at
 * that moment (the caller's own, or another dag's actors) do not exist in
 * the child: a lock one of them held stays locked there. glibc makes malloc
 * safe across fork; anything else an actor's methods share with such a
 * thread is the caller's responsibility, which is why state meant for a
 * process actor should be created by its init callback, in the child.
 *
 * Lifetime. The child asks for SIGKILL when the thread that forked it dies
 * (PR_SET_PDEATHSIG) and checks that its parent did not die before that
 * request, so a driver that dies takes its actors with it: no orphans, and
 * the memfd segments go away with the last process that maps them.
 * Compile dags with process actors from a thread that outlives them (the
 * main thread, typically).
 *
 * Death. The driver holds a pidfd per actor process; one monitor thread
 * per dag polls them (no sleeping loops): a pidfd becomes readable the
 * moment its process exits. Outside teardown that is a death: the monitor
 * reaps the process (waitid P_PIDFD, so no zombie), describes it (signal,
 * exit status, the method and execution it was in, from the actor's note
 * in shared memory) and marks the dag dead, which closes the actor's
 * outputs and deregisters its readers so every waiting party wakes up.
 *
 * Inherited fds. A fork copies every fd and mapping of the driver, other
 * dags' channels and shared counters included; a child holding them would
 * keep their memory alive and could, by a stray pointer, write into another
 * dag. proc.c keeps the list of live dags (weir__proc_track), and the
 * child of a process actor drops, before it runs anything, every fd and
 * mapping of every dag but its own: channel segments (weir__chan_forget),
 * actor notes, profiling counters, stats segments, trace buffers, eventfds
 * and pidfds. Nothing shared is touched (no deregistration, no unlink):
 * only this process's copies go. The user's own fds and standalone
 * channels (not created by a dag) stay, since an actor may use them on
 * purpose. The list's lock is held across fork() so the child never sees
 * it half-updated; a dag still being built by another thread is not on the
 * list yet, and its child keeps what it inherited of it.
 *
 * Teardown. The monitor is stopped through an eventfd; then each actor
 * process gets until the dag's deadline to drain and exit, after which it
 * is killed with SIGKILL and reaped, and named in the error.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <weir/dag.h>

#include "channels/chan_internal.h"
#include "channels/err.h"
#include "dag/cpulist.h"
#include "engine/engine.h"
#include "engine/prof.h"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif

void weir__proc_describe(int code, int status, char *buf, size_t cap)
{
    const char *abbrev = NULL;
    if (code == CLD_KILLED || code == CLD_DUMPED)
        abbrev = sigabbrev_np(status);
    if (code == CLD_EXITED)
        snprintf(buf, cap, "exited with status %d", status);
    else if (code == CLD_KILLED || code == CLD_DUMPED)
        snprintf(buf, cap, "killed by signal %d (SIG%s)%s", status, abbrev ? abbrev : "?",
                 code == CLD_DUMPED ? ", core dumped" : "");
    else
        snprintf(buf, cap, "ended (code %d, status %d)", code, status);
}

/* ---- the live dags (see "Inherited fds") ---------------------------------- */

static pthread_mutex_t live_mu = PTHREAD_MUTEX_INITIALIZER;
static struct weir_dag *live_head;

void weir__proc_track(struct weir_dag *d)
{
    pthread_mutex_lock(&live_mu);
    if (!d->tracked) {
        d->live_prev = NULL;
        d->live_next = live_head;
        if (live_head)
            live_head->live_prev = d;
        live_head = d;
        d->tracked = 1;
    }
    pthread_mutex_unlock(&live_mu);
}

void weir__proc_untrack(struct weir_dag *d)
{
    pthread_mutex_lock(&live_mu);
    if (d->tracked) {
        if (d->live_prev)
            d->live_prev->live_next = d->live_next;
        else
            live_head = d->live_next;
        if (d->live_next)
            d->live_next->live_prev = d->live_prev;
        d->tracked = 0;
    }
    pthread_mutex_unlock(&live_mu);
}

/* In the child: drop this process's copies of another dag's fds and mappings. */
static void forget_dag(struct weir_dag *o)
{
    const struct weir__plan *p = o->plan;
    if (o->chans && p)
        for (unsigned c = 0; c < p->nchans; c++)
            weir__chan_forget(o->chans[c]);
    if (o->actors && p)
        for (unsigned a = 0; a < p->nactors; a++)
            if (o->actors[a].pidfd >= 0) {
                close(o->actors[a].pidfd);
                o->actors[a].pidfd = -1;
            }
    if (o->notes)
        munmap(o->notes, o->notes_bytes);
    o->notes = NULL;
    weir__prof_forget(o);
    weir__tensor_forget(o, 1);
    if (o->mon_efd >= 0)
        close(o->mon_efd);
    if (o->exit_efd >= 0)
        close(o->exit_efd);
    o->mon_efd = o->exit_efd = -1;
}

pid_t weir__proc_fork(struct weir_dag *d, const char *title)
{
    pid_t parent = getpid();
    fflush(NULL); /* the child must not inherit (and later repeat) buffered output */
    pthread_mutex_lock(&live_mu);
    pid_t pid = fork();
    if (pid != 0) {
        int e = errno;
        pthread_mutex_unlock(&live_mu);
        errno = e;
        return pid;
    }
    for (struct weir_dag *o = live_head; o; o = o->live_next)
        if (o != d)
            forget_dag(o);
    pthread_mutex_init(&live_mu, NULL);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(1);
    char name[16];
    snprintf(name, sizeof name, "weir:%s", title);
    prctl(PR_SET_NAME, name);
    return 0;
}

int weir__proc_start(struct weir_dag *d, struct actor_rt *a)
{
    pid_t pid = weir__proc_fork(d, a->pa->name);
    if (pid < 0)
        return weir__seterr(-errno, "actor '%s': fork failed: %s", a->pa->name, strerror(errno));
    if (pid == 0) {
        weir__tensor_forget(d, 0); /* the holder waits for the driver's end only */
        cpu_set_t set;
        char why[160];
        if (a->pa->cpus && (weir__cpulist_parse(a->pa->cpus, &set, why, sizeof why) < 0 ||
                            sched_setaffinity(0, sizeof set, &set) < 0)) {
            snprintf(a->note->text, sizeof a->note->text, "cannot pin to cpus '%s': %s",
                     a->pa->cpus, strerror(errno));
            _exit(WEIR__EXIT_INIT);
        }
        /* Its reader ids now belong to this process (liveness checks by pid). */
        for (unsigned c = 0; c < d->plan->nchans; c++) {
            if (a->restarting && d->chans[c])
                weir__chan_after_fork(d->chans[c]);
            if (a->rid[c] >= 0)
                weir__chan_claim_reader(d->chans[c], a->rid[c]);
        }
        if (a->restarting) {
            size_t n = strlen(a->restart_text);
            snprintf(a->restart_text + n, sizeof a->restart_text - n,
                     "; restarted as pid %d (restart %u of %u)", (int)getpid(), a->restarts,
                     a->max_restarts);
        }
        int rc = weir__actor_run(a);
        fflush(NULL);
        _exit(rc ? WEIR__EXIT_INIT : 0);
    }
    a->pid = pid;
    a->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (a->pidfd < 0) {
        int e = errno;
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        a->pid = 0;
        return weir__seterr(-e, "actor '%s': pidfd_open failed: %s", a->pa->name, strerror(e));
    }
    return 0;
}

static void reap(struct actor_rt *a)
{
    siginfo_t si;
    memset(&si, 0, sizeof si);
    while (waitid(P_PIDFD, (id_t)a->pidfd, &si, WEXITED) < 0 && errno == EINTR)
        ;
    a->status_code = si.si_code;
    a->status = si.si_status;
    weir__store_release(&a->reaped, 1);
}

/* The method a (possibly scribbled-on) note names, or "?". */
static const char *note_method(const struct actor_rt *a)
{
    unsigned m = weir__load_relaxed(&a->note->cur_method);
    return m < a->pa->nmethods ? a->pa->methods[m].name : "?";
}

static void on_death(struct weir_dag *d, struct actor_rt *a)
{
    char how[128];
    weir__proc_describe(a->status_code, a->status, how, sizeof how);
    if (a->status_code == CLD_EXITED && a->status == WEIR__EXIT_INIT && a->note->text[0])
        weir__dag_mark_dead(d, (int)a->idx, "actor '%s' (pid %d) could not start: %.*s",
                            a->pa->name, (int)a->pid, (int)sizeof a->note->text,
                            a->note->text);
    else if (weir__load_acquire(&a->note->in_call))
        weir__dag_mark_dead(d, (int)a->idx,
                            "actor '%s' (pid %d) died in method '%s' at execution %llu: %s",
                            a->pa->name, (int)a->pid, note_method(a),
                            (unsigned long long)weir__load_relaxed(&a->note->cur_exec), how);
    else
        weir__dag_mark_dead(d, (int)a->idx, "actor '%s' (pid %d) died: %s", a->pa->name,
                            (int)a->pid, how);
}

/*
 * A process actor died and may restart: fork a replacement that runs init
 * again, takes over the dead process's channel positions, fails exactly
 * the executions the dead one had started but not finished (and the one it
 * crashed in), and goes on. Returns 0 if restarted, 1 during teardown,
 * < 0 if the fork failed.
 */
static int restart(struct weir_dag *d, struct actor_rt *a)
{
    pthread_mutex_lock(&d->dead_mu);
    if (weir__load_acquire(&d->tearing_down)) {
        pthread_mutex_unlock(&d->dead_mu);
        return 1;
    }
    char how[128];
    weir__proc_describe(a->status_code, a->status, how, sizeof how);
    /* Remember the execution that crashed until a replacement got past it:
     * a replacement that dies before (in init, say) must not retry it. */
    int in_call = weir__load_acquire(&a->note->in_call);
    if (weir__load_acquire(&a->note->resumed))
        a->crashed_in_call = 0;
    if (in_call && (!a->crashed_in_call || weir__load_relaxed(&a->note->cur_exec) > a->crash_exec))
        a->crash_exec = weir__load_relaxed(&a->note->cur_exec);
    a->crashed_in_call |= in_call;
    weir__store_release(&a->note->resumed, 0);
    if (a->status_code == CLD_EXITED && a->status == WEIR__EXIT_INIT && a->note->text[0])
        snprintf(a->restart_text, sizeof a->restart_text,
                 "actor '%s' (pid %d) could not start: %.*s", a->pa->name, (int)a->pid,
                 (int)sizeof a->note->text, a->note->text);
    else if (in_call)
        snprintf(a->restart_text, sizeof a->restart_text,
                 "actor '%s' (pid %d) died in method '%s' at execution %llu: %s", a->pa->name,
                 (int)a->pid, note_method(a), (unsigned long long)weir__load_relaxed(&a->note->cur_exec), how);
    else
        snprintf(a->restart_text, sizeof a->restart_text, "actor '%s' (pid %d) died: %s",
                 a->pa->name, (int)a->pid, how);
    weir__store_release(&a->note->in_call, 0);
    a->note->text[0] = '\0';
    a->restarts++;
    a->restarting = 1;
    pthread_mutex_lock(&live_mu); /* a concurrent fork must not close a stale number */
    close(a->pidfd);
    a->pidfd = -1;
    pthread_mutex_unlock(&live_mu);
    int rc = weir__proc_start(d, a);
    if (rc == 0)
        weir__store_release(&a->reaped, 0);
    pthread_mutex_unlock(&d->dead_mu);
    return rc;
}

static void *monitor_main(void *arg)
{
    struct weir_dag *d = arg;
    unsigned n = d->plan->nactors;
    struct pollfd *pf = calloc(n + 1, sizeof *pf);
    unsigned *who = calloc(n + 1, sizeof *who);
    if (!pf || !who) {
        /* Without a monitor a death would go unseen: fail everything instead. */
        free(pf);
        free(who);
        weir__dag_mark_dead(d, -1, "graph '%s': out of memory starting the process monitor",
                            d->plan->graph);
        return NULL;
    }
    unsigned k = 1;
    pf[0] = (struct pollfd){.fd = d->mon_efd, .events = POLLIN};
    for (unsigned a = 0; a < n; a++)
        if (d->actors[a].pidfd >= 0) {
            pf[k] = (struct pollfd){.fd = d->actors[a].pidfd, .events = POLLIN};
            who[k++] = a;
        }
    pthread_setname_np(pthread_self(), "weir:monitor");
    for (;;) {
        if (poll(pf, k, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (pf[0].revents)
            break;
        for (unsigned i = 1; i < k; i++) {
            if (pf[i].fd < 0 || !(pf[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            struct actor_rt *a = &d->actors[who[i]];
            reap(a);
            pf[i].fd = -1;
            if (weir__load_acquire(&d->tearing_down))
                continue;
            if (a->status_code == CLD_EXITED && a->status == 0 &&
                weir__load_acquire(&a->note->left))
                continue; /* it left through the close cascade, not a death */
            if (a->restarts < a->max_restarts && !weir__load_acquire(&d->dead)) {
                int rc = restart(d, a);
                if (rc == 0)
                    pf[i].fd = a->pidfd;
                if (rc >= 0)
                    continue;
            }
            on_death(d, a);
        }
    }
    free(pf);
    free(who);
    return NULL;
}

int weir__proc_monitor_start(struct weir_dag *d)
{
    d->mon_efd = eventfd(0, EFD_CLOEXEC);
    if (d->mon_efd < 0)
        return weir__seterr(-errno, "graph '%s': eventfd: %s", d->plan->graph, strerror(errno));
    int rc = pthread_create(&d->monitor, NULL, monitor_main, d);
    if (rc != 0)
        return weir__seterr(-rc, "graph '%s': cannot start the process monitor: %s",
                            d->plan->graph, strerror(rc));
    d->monitor_started = 1;
    return 0;
}

void weir__proc_monitor_stop(struct weir_dag *d)
{
    uint64_t one = 1;
    if (write(d->mon_efd, &one, sizeof one) < 0) {
        /* an eventfd write of 1 cannot fail short of a bug; join regardless */
    }
    pthread_join(d->monitor, NULL);
    d->monitor_started = 0;
}

int weir__proc_stop_all(struct weir_dag *d, char *msg, size_t cap, int *len)
{
    int killed = 0;
    size_t used = 0;
    for (unsigned i = 0; i < d->plan->nactors; i++) {
        struct actor_rt *a = &d->actors[i];
        if (a->pidfd < 0 || weir__load_acquire(&a->reaped))
            continue;
        struct pollfd pf = {.fd = a->pidfd, .events = POLLIN};
        if (poll(&pf, 1, 0) > 0)
            continue; /* exited already */
        char what[160];
        weir__note_describe(a, what, sizeof what);
        int n = snprintf(msg + used, cap > used ? cap - used : 0,
                         "%sactor '%s' (pid %d) was stuck %s and was killed",
                         (*len > 0 || killed) ? "; " : "", a->pa->name, (int)a->pid, what);
        if (n > 0)
            used += (size_t)n;
        syscall(SYS_pidfd_send_signal, a->pidfd, SIGKILL, NULL, 0);
        killed++;
        while (poll(&pf, 1, -1) < 0 && errno == EINTR)
            ;
        /* Threads waiting on it (detached or not) must not wait forever. */
        weir__dag_break_around(d, (int)i);
    }
    *len += (int)(used < cap ? used : cap);
    return killed;
}

void weir__proc_reap_remaining(struct weir_dag *d)
{
    for (unsigned i = 0; i < d->plan->nactors; i++) {
        struct actor_rt *a = &d->actors[i];
        if (a->pidfd >= 0 && !weir__load_acquire(&a->reaped))
            reap(a);
    }
}
