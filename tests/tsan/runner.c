/* SPDX-License-Identifier: MIT */
/*
 * tests/tsan/runner.c - main() for the Criterion stand-in in
 * tests/tsan/criterion/criterion.h (see there for why it exists).
 *
 * Like Criterion, every test runs in its own forked child process, one at
 * a time, sorted by suite then test name: the suite's .init and the test's
 * .init, the test body, then the test's .fini and the suite's .fini (the
 * .fini fixtures also run after a failed cr_assert* or a cr_skip_test).
 *
 * Verdicts (Criterion's, except where marked):
 *  - PASS: no failed assertion, and the process exits with status 0 (also
 *    an exit(0) before the end of the test, as in Criterion), or with the
 *    test's .exit_code, or is killed by the test's .signal.
 *  - FAIL: a failed cr_assert* / cr_expect*. Unlike Criterion, failures in
 *    .fini fixtures count too (Criterion prints them but lets the test pass).
 *  - FAIL (timeout): runs longer than its timeout (the test's .timeout, else
 *    its suite's, else --timeout; none if 0): killed with SIGKILL.
 *  - CRASH (counted among the failures too, as in Criterion): killed by a
 *    signal, or exits with a non-zero status (ThreadSanitizer exits with 66
 *    after a report, and it turns SIGSEGV/SIGBUS into exit status 66), or a
 *    cr_assert* failed in an .init fixture.
 *  - SKIP: cr_skip_test() or .disabled; not counted in "Tested".
 *
 * Output (on stderr, like Criterion): the children's own output, then one
 * line per test - "[PASS] suite::name (0.12s)", "[FAIL] suite::name: reason
 * (0.12s)" or "[SKIP] suite::name: reason" - and at the end
 *   [====] Synthesis: Tested: N | Passing: N | Failing: N | Crashing: N
 * The exit status is 0 iff every test that ran passed.
 *
 * Options: --filter GLOB (or --filter=GLOB, --pattern): run only the tests
 * whose "suite/name" matches (fnmatch, with extglob); --timeout S: default
 * timeout; --list / -l; --verbose / -V: a [RUN ] line before each test;
 * --fail-fast; --always-succeed; --help. Other Criterion options (--jobs 1,
 * -j1, --no-early-exit, ...) are accepted and ignored.
 *
 * An assertion that fails outside the test's main thread cannot unwind the
 * test (Criterion longjmps there, which is undefined): it is recorded and
 * printed, and the test process then ends at once with _exit(1), so the
 * test fails without running .fini. A failing cr_assert* in a process that
 * the test forked is recorded (the test fails) and ends that process with
 * _exit(1).
 */
#include "criterion/criterion.h"

#include <errno.h>
#include <fnmatch.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#if defined(__SANITIZE_THREAD__)
#define CRI_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define CRI_TSAN 1
#endif
#endif

/* ---- registry ------------------------------------------------------------- */

static struct cri_test_ *g_tests;
static struct cri_suite_ *g_suites;

void cri_register_test_(struct cri_test_ *t)
{
    t->next_ = g_tests;
    g_tests = t;
}

void cri_register_suite_(struct cri_suite_ *s)
{
    s->next_ = g_suites;
    g_suites = s;
}

/* ---- state shared between a test's process and the runner ------------------ */

enum { PH_NONE, PH_INIT, PH_TEST, PH_FINI, PH_DONE };

static const char *const phase_names[] = {"before .init", "in .init", "in the test body",
                                          "in .fini", "after .fini"};

struct shared {
    int phase;         /* PH_*, written by the test's main thread */
    int completed;     /* the .fini fixtures have returned */
    int nfailed;       /* failed assertions (any thread or forked child) */
    int first_claimed; /* the first failure's text below is being/was written */
    int first_ready;
    int skipped;
    int foreign_abort; /* a cr_assert* failed outside the test's main thread */
    int init_aborted;  /* a cr_assert* failed in an .init fixture */
    unsigned first_line;
    char first_file[256];
    char first_msg[1024];
    char skip_msg[512];
};

static struct shared *g_sh;

/* In a test's process: */
static pid_t g_test_pid;         /* 0 in the runner */
static pthread_t g_test_thread;  /* the thread running the fixtures and body */
static jmp_buf g_jmp;

/* strncpy that always terminates and never warns about truncation. */
static void copy_str(char *dst, size_t n, const char *src)
{
    size_t len = strlen(src);
    if (len >= n)
        len = n - 1;
    memcpy(dst, src, len);
    dst[len] = '\0';
}

static void set_phase(int ph)
{
    __atomic_store_n(&g_sh->phase, ph, __ATOMIC_SEQ_CST);
}

/* ---- assertion reporting -------------------------------------------------- */

static void default_msg(char *buf, size_t n, int kind, const char *expr, const char *s1,
                        const char *s2)
{
    switch (kind) {
    case CRI_MSG_FAIL_:
        snprintf(buf, n, "The conditions for this assertion were not met.");
        break;
    case CRI_MSG_STR_FALSE_:
        snprintf(buf, n, "The expression (as strings) %s is false: actual=`%s` expected=`%s`.",
                 expr, s1 ? s1 : "(null)", s2 ? s2 : "(null)");
        break;
    case CRI_MSG_IS_NULL_:
        snprintf(buf, n, "%s is null.", expr);
        break;
    case CRI_MSG_IS_NOT_NULL_:
        snprintf(buf, n, "%s is not null.", expr);
        break;
    case CRI_MSG_IS_EMPTY_:
        snprintf(buf, n, "%s is empty.", expr);
        break;
    case CRI_MSG_IS_NOT_EMPTY_:
        snprintf(buf, n, "%s is not empty: `%s`.", expr, s1 ? s1 : "(null)");
        break;
    default:
        snprintf(buf, n, "The expression %s is false.", expr);
        break;
    }
}

/* Prints "[----] " before every line of text. */
static void print_prefixed(const char *text)
{
    const char *p = text;
    do {
        const char *nl = strchr(p, '\n');
        int len = nl ? (int)(nl - p) : (int)strlen(p);
        fprintf(stderr, "[----]   %.*s\n", len, p);
        p = nl ? nl + 1 : NULL;
    } while (p && *p);
}

void cri_fail_(const char *file, unsigned line, int kind, const char *expr, const char *s1,
               const char *s2, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    const char *text = msg + 1; /* the macros prepend one character to the format */
    if (!*text) {
        default_msg(msg, sizeof msg, kind, expr, s1, s2);
        text = msg;
    }

    flockfile(stderr);
    fprintf(stderr, "[----] %s:%u: Assertion Failed\n", file, line);
    print_prefixed(text);
    funlockfile(stderr);

    if (!g_sh)
        return; /* not under the runner (a constructor, say) */
    __atomic_add_fetch(&g_sh->nfailed, 1, __ATOMIC_SEQ_CST);
    if (__atomic_exchange_n(&g_sh->first_claimed, 1, __ATOMIC_SEQ_CST) == 0) {
        copy_str(g_sh->first_file, sizeof g_sh->first_file, file);
        g_sh->first_line = line;
        copy_str(g_sh->first_msg, sizeof g_sh->first_msg, text);
        __atomic_store_n(&g_sh->first_ready, 1, __ATOMIC_SEQ_CST);
    }
}

/* Unwinds to the fixture loop of run_child(), or ends the process. */
static void unwind(const char *what) __attribute__((noreturn));
static void unwind(const char *what)
{
    if (g_test_pid == 0) {
        fprintf(stderr, "[----] %s outside of a test: exiting\n", what);
        fflush(NULL);
        _exit(1);
    }
    if (getpid() != g_test_pid) {
        fprintf(stderr, "[----] %s in process %d forked by the test: it exits with status 1\n",
                what, (int)getpid());
        fflush(NULL);
        _exit(1);
    }
    if (!pthread_equal(pthread_self(), g_test_thread)) {
        __atomic_store_n(&g_sh->foreign_abort, 1, __ATOMIC_SEQ_CST);
        fprintf(stderr,
                "[----] %s in a thread other than the test's main thread: the test process "
                "ends now (without .fini)\n",
                what);
        fflush(NULL);
        _exit(1);
    }
    longjmp(g_jmp, 1);
}

void cri_abort_(void)
{
    unwind("cr_assert failed");
}

void cri_skip_(const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (g_sh && g_test_pid == getpid()) {
        copy_str(g_sh->skip_msg, sizeof g_sh->skip_msg, msg + 1);
        __atomic_store_n(&g_sh->skipped, 1, __ATOMIC_SEQ_CST);
    }
    unwind("cr_skip_test");
}

void cri_log_(int level, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    const char *tag = level == CR_LOG_WARNING ? "[WARN]"
                      : level == CR_LOG_ERROR ? "[ERR ]"
                                              : "[----]";
    flockfile(stderr);
    fprintf(stderr, "%s %s\n", tag, msg);
    funlockfile(stderr);
}

/* ---- the test's process --------------------------------------------------- */

/* Runs fn with assertion unwinding; 0 if it returned, 1 if it was cut short. */
static int guarded(void (*fn)(void), int phase)
{
    if (!fn)
        return 0;
    set_phase(phase);
    if (setjmp(g_jmp) == 0) {
        fn();
        return 0;
    }
    return 1;
}

static void run_child(const struct cri_test_ *t, const struct cri_suite_ *s)
    __attribute__((noreturn));
static void run_child(const struct cri_test_ *t, const struct cri_suite_ *s)
{
    g_test_pid = getpid();
    g_test_thread = pthread_self();

    int cut = 0;
    if (s && s->data->init)
        cut = guarded(s->data->init, PH_INIT);
    if (!cut && t->data->init)
        cut = guarded(t->data->init, PH_INIT);
    if (cut && !g_sh->skipped)
        __atomic_store_n(&g_sh->init_aborted, 1, __ATOMIC_SEQ_CST);
    if (!cut)
        guarded(t->fn, PH_TEST);
    guarded(t->data->fini, PH_FINI);
    if (s)
        guarded(s->data->fini, PH_FINI);
    set_phase(PH_DONE);
    __atomic_store_n(&g_sh->completed, 1, __ATOMIC_SEQ_CST);
    exit(0); /* atexit handlers and sanitizers may still change the status */
}

/* ---- the runner ----------------------------------------------------------- */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_s(double s)
{
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static const struct cri_suite_ *find_suite(const char *name)
{
    for (const struct cri_suite_ *s = g_suites; s; s = s->next_)
        if (strcmp(s->name, name) == 0)
            return s;
    return NULL;
}

static int cmp_tests(const void *a, const void *b)
{
    const struct cri_test_ *x = *(const struct cri_test_ *const *)a;
    const struct cri_test_ *y = *(const struct cri_test_ *const *)b;
    int c = strcmp(x->suite, y->suite);
    return c ? c : strcmp(x->name, y->name);
}

enum outcome { O_PASS, O_FAIL, O_CRASH, O_SKIP };

struct opts {
    const char *filter;
    double timeout;
    int verbose;
    int list;
    int fail_fast;
    int always_succeed;
};

static void first_line_of(const char *text, char *buf, size_t n)
{
    size_t len = strcspn(text, "\n");
    if (len >= n)
        len = n - 1;
    memcpy(buf, text, len);
    buf[len] = '\0';
}

static enum outcome run_one(const struct cri_test_ *t, const struct opts *o)
{
    const struct cri_suite_ *s = find_suite(t->suite);
    double tmo = t->data->timeout > 0                 ? t->data->timeout
                 : s && s->data->timeout > 0          ? s->data->timeout
                                                      : o->timeout;
    memset(g_sh, 0, sizeof *g_sh);
    if (o->verbose) {
        fprintf(stderr, "[RUN ] %s::%s%s%s\n", t->suite, t->name,
                t->data->description ? ": " : "",
                t->data->description ? t->data->description : "");
    }
    fflush(NULL);

    pid_t parent = getpid();
    double t0 = now_s();
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "[FAIL] %s::%s: fork: %s\n", t->suite, t->name, strerror(errno));
        return O_CRASH;
    }
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(1);
        run_child(t, s);
    }

    int st = 0, timed_out = 0;
    double nap = 0.0005;
    for (;;) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            break;
        if (r < 0 && errno != EINTR) {
            fprintf(stderr, "[FAIL] %s::%s: waitpid: %s\n", t->suite, t->name, strerror(errno));
            return O_CRASH;
        }
        if (tmo > 0 && now_s() - t0 >= tmo) {
            kill(pid, SIGKILL);
            while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
            }
            timed_out = 1;
            break;
        }
        sleep_s(nap);
        if (nap < 0.005)
            nap *= 2;
    }
    double secs = now_s() - t0;

    const struct shared *sh = g_sh;
    int phase = sh->phase >= PH_NONE && sh->phase <= PH_DONE ? sh->phase : PH_NONE;
    char reason[2048] = "";
    char first[1400] = "";
    if (sh->nfailed > 0 && sh->first_ready) {
        char line1[sizeof sh->first_msg];
        first_line_of(sh->first_msg, line1, sizeof line1);
        snprintf(first, sizeof first, "%s:%u: %s", sh->first_file, sh->first_line, line1);
    } else if (sh->nfailed > 0) {
        snprintf(first, sizeof first, "an assertion failed");
    }
    char more[64] = "";
    if (sh->nfailed > 1)
        snprintf(more, sizeof more, " (%d failed assertions)", sh->nfailed);

    enum outcome out;
    int want_sig = t->data->signal, want_exit = t->data->exit_code;
    if (timed_out) {
        snprintf(reason, sizeof reason, "timed out after %g s %s (killed with SIGKILL)%s%s", tmo,
                 phase_names[phase], first[0] ? "; before that: " : "", first);
        out = O_FAIL;
    } else if (WIFSIGNALED(st)) {
        int sig = WTERMSIG(st);
        if (want_sig && sig == want_sig && sh->nfailed == 0) {
            out = O_PASS;
        } else {
            snprintf(reason, sizeof reason, "CRASH: killed by signal %d (%s) %s%s%s%s", sig,
                     strsignal(sig), phase_names[phase], first[0] ? "; before that: " : "",
                     first, more);
            out = O_CRASH;
        }
    } else if (WIFEXITED(st)) {
        int code = WEXITSTATUS(st);
        const char *hint = "";
#ifdef CRI_TSAN
        if (code == 66)
            hint = " (ThreadSanitizer's exit status: see its report above)";
#endif
        if (want_sig) {
            snprintf(reason, sizeof reason, "expected signal %d (%s), but the test exited with %d",
                     want_sig, strsignal(want_sig), code);
            out = O_FAIL;
        } else if (sh->foreign_abort) {
            snprintf(reason, sizeof reason, "%s%s (failed in another thread: process ended)",
                     first, more);
            out = O_FAIL;
        } else if (want_exit && code == want_exit && sh->nfailed == 0) {
            out = O_PASS;
        } else if (code != 0) {
            snprintf(reason, sizeof reason, "CRASH: exited with status %d %s%s%s%s%s", code,
                     phase_names[phase], hint, first[0] ? "; before that: " : "", first, more);
            out = O_CRASH;
        } else if (want_exit) {
            snprintf(reason, sizeof reason, "expected exit status %d, but the test exited with 0",
                     want_exit);
            out = O_FAIL;
        } else if (sh->nfailed > 0 && sh->init_aborted) {
            /* Criterion reports an aborted .init as a crash of the test */
            snprintf(reason, sizeof reason, "CRASH: cr_assert failed in .init: %s%s", first, more);
            out = O_CRASH;
        } else if (sh->nfailed > 0) {
            snprintf(reason, sizeof reason, "%s%s", first, more);
            out = O_FAIL;
        } else {
            /* exit(0) before the end passes in Criterion too (with a warning in a fixture) */
            if (!sh->completed && phase != PH_TEST)
                fprintf(stderr, "[----] Warning! The test `%s::%s` exited %s.\n", t->suite,
                        t->name, phase_names[phase]);
            out = sh->skipped ? O_SKIP : O_PASS;
        }
    } else {
        snprintf(reason, sizeof reason, "CRASH: wait status 0x%x", st);
        out = O_CRASH;
    }

    switch (out) {
    case O_PASS:
        fprintf(stderr, "[PASS] %s::%s (%.2fs)\n", t->suite, t->name, secs);
        break;
    case O_SKIP:
        fprintf(stderr, "[SKIP] %s::%s: %s\n", t->suite, t->name,
                sh->skip_msg[0] ? sh->skip_msg : "test was skipped");
        break;
    default:
        fprintf(stderr, "[FAIL] %s::%s: %s (%.2fs)\n", t->suite, t->name, reason, secs);
        break;
    }
    return out;
}

static void usage(const char *argv0)
{
    fprintf(stderr,
            "usage: %s [--filter GLOB] [--timeout SECONDS] [--list] [--verbose] [--fail-fast]\n"
            "          [--always-succeed] [--jobs N (ignored)] ...\n"
            "Runs the tests in forked processes, one at a time, sorted by suite/name.\n"
            "GLOB is matched (fnmatch, extglob) against \"suite/name\".\n",
            argv0);
}

/* Value of --opt VALUE or --opt=VALUE; NULL if argv[*i] is not opt. */
static const char *opt_value(int argc, char **argv, int *i, const char *opt)
{
    size_t n = strlen(opt);
    if (strncmp(argv[*i], opt, n) != 0)
        return NULL;
    if (argv[*i][n] == '=')
        return argv[*i] + n + 1;
    if (argv[*i][n] != '\0')
        return NULL;
    if (*i + 1 < argc)
        return argv[++*i];
    return "";
}

int main(int argc, char **argv)
{
    struct opts o = {0};
    const char *v;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if ((v = opt_value(argc, argv, &i, "--filter")) ||
            (v = opt_value(argc, argv, &i, "--pattern")))
            o.filter = v;
        else if ((v = opt_value(argc, argv, &i, "--timeout")))
            o.timeout = atof(v);
        else if (opt_value(argc, argv, &i, "--jobs") || opt_value(argc, argv, &i, "-j"))
            ; /* always one at a time */
        else if (strcmp(a, "--list") == 0 || strcmp(a, "-l") == 0)
            o.list = 1;
        else if (strncmp(a, "--verbose", 9) == 0 || strcmp(a, "-V") == 0)
            o.verbose = 1;
        else if (strcmp(a, "--fail-fast") == 0)
            o.fail_fast = 1;
        else if (strcmp(a, "--always-succeed") == 0)
            o.always_succeed = 1;
        else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(argv[0]);
            return 0;
        }
        /* anything else (-j1, --no-early-exit, --ascii, ...) is ignored */
    }

    size_t n = 0;
    for (struct cri_test_ *t = g_tests; t; t = t->next_)
        n++;
    struct cri_test_ **tests = calloc(n ? n : 1, sizeof *tests);
    if (!tests) {
        perror("calloc");
        return 1;
    }
    n = 0;
    for (struct cri_test_ *t = g_tests; t; t = t->next_)
        tests[n++] = t;
    qsort(tests, n, sizeof *tests, cmp_tests);

    if (o.list) {
        for (size_t i = 0; i < n; i++)
            printf("%s::%s\n", tests[i]->suite, tests[i]->name);
        free(tests);
        return 0;
    }

    signal(SIGCHLD, SIG_DFL); /* an inherited SIG_IGN would make waitpid() fail */
    g_sh = mmap(NULL, sizeof *g_sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (g_sh == MAP_FAILED) {
        perror("mmap");
        return 1;
    }

    unsigned long tested = 0, passing = 0, failing = 0, crashing = 0, skipped = 0;
    for (size_t i = 0; i < n; i++) {
        const struct cri_test_ *t = tests[i];
        if (o.filter) {
            char id[512];
            snprintf(id, sizeof id, "%s/%s", t->suite, t->name);
            if (fnmatch(o.filter, id, FNM_EXTMATCH) != 0)
                continue;
        }
        if (t->data->disabled) {
            fprintf(stderr, "[SKIP] %s::%s: test is disabled\n", t->suite, t->name);
            skipped++;
            continue;
        }
        enum outcome out = run_one(t, &o);
        if (out == O_SKIP) {
            skipped++;
            continue;
        }
        tested++;
        if (out == O_PASS)
            passing++;
        else
            failing++;
        if (out == O_CRASH)
            crashing++;
        if (o.fail_fast && out != O_PASS)
            break;
    }
    fprintf(stderr, "[====] Synthesis: Tested: %lu | Passing: %lu | Failing: %lu | Crashing: %lu\n",
            tested, passing, failing, crashing);
    free(tests);
    return (failing == 0 || o.always_succeed) ? 0 : 1;
}
