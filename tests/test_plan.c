/* SPDX-License-Identifier: MIT */
/*
 * tests/test_plan.c - the plan data layer: validation, canonical JSON and
 * hash, the FlatBuffers codec (round trips, interop with the real flatc,
 * truncated / bit-flipped / foreign input), save / load, and the
 * `weir-plan` command-line tool.
 *
 * Plans are built by hand (chain_plan, diamond_plan) so these tests do not
 * depend on the compiler; one test also runs compiled graphs through the
 * same checks. The build passes WEIR_PLAN_FBS (the schema), WEIR_FLATC and
 * WEIR_PLAN_CLI (absolute paths).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <weir/weir.h>

#include "compiler/compile.h"
#include "compiler/plan.h"
#include "heap_check.h"

#ifndef WEIR_PLAN_FBS
#error "the build must define WEIR_PLAN_FBS (path of compiler/plan.fbs)"
#endif

/* ---- building plans by hand ------------------------------------------------ */

static char *xstrdup(const char *s)
{
    char *d = strdup(s);
    cr_assert_not_null(d);
    return d;
}

static void *grow(void *arr, uint32_t n, size_t elem)
{
    void *p = realloc(arr, (size_t)(n + 1) * elem);
    cr_assert_not_null(p);
    memset((char *)p + (size_t)n * elem, 0, elem);
    return p;
}

static uint32_t *u32dup(const uint32_t *v, uint32_t n)
{
    if (!n)
        return NULL;
    uint32_t *d = malloc(n * sizeof *d);
    cr_assert_not_null(d);
    memcpy(d, v, n * sizeof *d);
    return d;
}

static struct weir__plan *plan_new(const char *graph, uint32_t nargs)
{
    struct weir__plan *p = calloc(1, sizeof *p);
    cr_assert_not_null(p);
    p->graph = xstrdup(graph);
    p->nargs = nargs;
    p->max_inflight = 4;
    p->depth = 4;
    p->buffer_bytes = 1024;
    p->transport = WEIR_TRANSPORT_URING;
    p->timeout_ms = 5000;
    p->max_buffered = 64;
    return p;
}

static uint32_t add_actor(struct weir__plan *p, const char *name, uint32_t nregs)
{
    p->actors = grow(p->actors, p->nactors, sizeof *p->actors);
    struct weir__plan_actor *a = &p->actors[p->nactors];
    a->name = xstrdup(name);
    a->isolation = WEIR_THREAD;
    a->worker = (int32_t)p->nworkers++; /* a thread of its own */
    a->nregs = nregs;
    return p->nactors++;
}

static uint32_t add_method(struct weir__plan *p, uint32_t ai, const char *name, uint32_t nin,
                           uint32_t nout)
{
    struct weir__plan_actor *a = &p->actors[ai];
    a->methods = grow(a->methods, a->nmethods, sizeof *a->methods);
    a->methods[a->nmethods] = (struct weir__plan_method){xstrdup(name), nin, nout};
    return a->nmethods++;
}

static uint32_t add_chan(struct weir__plan *p, const char *name, int32_t writer,
                         const int32_t *readers, uint32_t nreaders, uint32_t src_kind,
                         uint32_t src_index, uint32_t src_out)
{
    p->chans = grow(p->chans, p->nchans, sizeof *p->chans);
    struct weir__plan_chan *c = &p->chans[p->nchans];
    c->name = xstrdup(name);
    c->writer = writer;
    c->nreaders = nreaders;
    c->readers = malloc(nreaders * sizeof *c->readers);
    cr_assert_not_null(c->readers);
    memcpy(c->readers, readers, nreaders * sizeof *c->readers);
    c->slot_bytes = p->buffer_bytes;
    c->depth = p->depth;
    c->src_kind = src_kind;
    c->src_index = src_index;
    c->src_out = src_out;
    return p->nchans++;
}

static uint32_t add_op(struct weir__plan *p, uint32_t ai, struct weir__plan_op op)
{
    struct weir__plan_actor *a = &p->actors[ai];
    a->ops = grow(a->ops, a->nops, sizeof *a->ops);
    a->ops[a->nops] = op;
    return a->nops++;
}

static uint32_t op_read(struct weir__plan *p, uint32_t ai, uint32_t chan, uint32_t reg)
{
    return add_op(p, ai, (struct weir__plan_op){.kind = WEIR__OP_READ, .chan = chan, .reg = reg});
}

static uint32_t op_write(struct weir__plan *p, uint32_t ai, uint32_t chan, uint32_t reg)
{
    return add_op(p, ai, (struct weir__plan_op){.kind = WEIR__OP_WRITE, .chan = chan, .reg = reg});
}

static uint32_t op_release(struct weir__plan *p, uint32_t ai, uint32_t chan, uint32_t reg)
{
    return add_op(p, ai,
                  (struct weir__plan_op){.kind = WEIR__OP_RELEASE, .chan = chan, .reg = reg});
}

static uint32_t op_call(struct weir__plan *p, uint32_t ai, uint32_t method, uint32_t node,
                        const uint32_t *in, uint32_t nin, const uint32_t *out, uint32_t nout)
{
    return add_op(p, ai,
                  (struct weir__plan_op){.kind = WEIR__OP_CALL,
                                         .method = method,
                                         .node = node,
                                         .actor = ai,
                                         .nin = nin,
                                         .nout = nout,
                                         .in = u32dup(in, nin),
                                         .out = u32dup(out, nout)});
}

static void set_outputs(struct weir__plan *p, const uint32_t *outs, uint32_t n)
{
    free(p->outputs);
    p->outputs = u32dup(outs, n);
    p->nouts = n;
}

/*
 * chain: arg0 -> a.f -> a.h -(chan)-> b.g -> output. Actor a passes f's
 * output to h in a register (no channel).
 *
 *   chans: 0 arg0      driver -> a
 *          1 a.h.out0  a -> b        (a op 3, out 0)
 *          2 b.g.out0  b -> driver   (b op 1, out 0)
 */
static struct weir__plan *chain_plan(void)
{
    struct weir__plan *p = plan_new("chain", 1);
    uint32_t a = add_actor(p, "a", 3), b = add_actor(p, "b", 2);
    uint32_t f = add_method(p, a, "f", 1, 1), h = add_method(p, a, "h", 1, 1);
    uint32_t g = add_method(p, b, "g", 1, 1);
    int32_t ra[] = {0}, rb[] = {1}, rd[] = {WEIR__PLAN_DRIVER};
    uint32_t c0 = add_chan(p, "arg0", WEIR__PLAN_DRIVER, ra, 1, WEIR__SRC_ARG, 0, 0);
    uint32_t c1 = add_chan(p, "a.h.out0", 0, rb, 1, WEIR__SRC_OUT, 3, 0);
    uint32_t c2 = add_chan(p, "b.g.out0", 1, rd, 1, WEIR__SRC_OUT, 1, 0);

    op_read(p, a, c0, 0);
    op_call(p, a, f, 1, (uint32_t[]){0}, 1, (uint32_t[]){1}, 1);
    op_release(p, a, c0, 0);
    op_call(p, a, h, 2, (uint32_t[]){1}, 1, (uint32_t[]){2}, 1);
    op_write(p, a, c1, 2);

    op_read(p, b, c1, 0);
    op_call(p, b, g, 3, (uint32_t[]){0}, 1, (uint32_t[]){1}, 1);
    op_write(p, b, c2, 1);
    op_release(p, b, c1, 0);

    set_outputs(p, (uint32_t[]){c2}, 1);
    return p;
}

/*
 * diamond: src.split(arg0, arg1) -> (left.f, right.g) -> join.merge(.., arg1).
 * arg1 is multicast to src and join; split's second output is both read by
 * right and a graph output. Mixed options: a process actor, a pinned one.
 *
 *   chans: 0 arg0 driver -> src          4 left.f.out0  left -> join
 *          1 arg1 driver -> src, join    5 right.g.out0 right -> join
 *          2 src.split.out0 src -> left  6 join.merge.out0 join -> driver
 *          3 src.split.out1 src -> right, driver
 */
static struct weir__plan *diamond_plan(void)
{
    struct weir__plan *p = plan_new("diamond", 2);
    p->transport = WEIR_TRANSPORT_ZMQ;
    p->timeout_ms = -1;
    uint32_t src = add_actor(p, "src", 4), left = add_actor(p, "left", 2);
    uint32_t right = add_actor(p, "right", 2), join = add_actor(p, "join", 4);
    p->actors[left].cpus = xstrdup("1");
    p->actors[right].isolation = WEIR_PROCESS;
    p->actors[right].worker = -1;
    p->actors[join].worker = 2;
    p->nworkers = 3;
    p->actors[join].node = 1;
    add_method(p, src, "split", 2, 2);
    add_method(p, left, "f", 1, 1);
    add_method(p, right, "g", 1, 1);
    add_method(p, join, "merge", 3, 1);

    add_chan(p, "arg0", WEIR__PLAN_DRIVER, (int32_t[]){0}, 1, WEIR__SRC_ARG, 0, 0);
    add_chan(p, "arg1", WEIR__PLAN_DRIVER, (int32_t[]){0, 3}, 2, WEIR__SRC_ARG, 1, 0);
    add_chan(p, "src.split.out0", 0, (int32_t[]){1}, 1, WEIR__SRC_OUT, 2, 0);
    add_chan(p, "src.split.out1", 0, (int32_t[]){WEIR__PLAN_DRIVER, 2}, 2, WEIR__SRC_OUT, 2, 1);
    add_chan(p, "left.f.out0", 1, (int32_t[]){3}, 1, WEIR__SRC_OUT, 1, 0);
    add_chan(p, "right.g.out0", 2, (int32_t[]){3}, 1, WEIR__SRC_OUT, 1, 0);
    add_chan(p, "join.merge.out0", 3, (int32_t[]){WEIR__PLAN_DRIVER}, 1, WEIR__SRC_OUT, 3, 0);
    p->chans[6].depth = 1;
    p->chans[2].slot_bytes = 1 << 20;

    op_read(p, src, 0, 0);
    op_read(p, src, 1, 1);
    op_call(p, src, 0, 2, (uint32_t[]){0, 1}, 2, (uint32_t[]){2, 3}, 2);
    op_write(p, src, 2, 2);
    op_write(p, src, 3, 3);
    op_release(p, src, 0, 0);
    op_release(p, src, 1, 1);

    op_read(p, left, 2, 0);
    op_call(p, left, 0, 3, (uint32_t[]){0}, 1, (uint32_t[]){1}, 1);
    op_write(p, left, 4, 1);
    op_release(p, left, 2, 0);

    op_read(p, right, 3, 0);
    op_call(p, right, 0, 4, (uint32_t[]){0}, 1, (uint32_t[]){1}, 1);
    op_write(p, right, 5, 1);
    op_release(p, right, 3, 0);

    op_read(p, join, 4, 0);
    op_read(p, join, 5, 1);
    op_read(p, join, 1, 2);
    op_call(p, join, 0, 5, (uint32_t[]){0, 1, 2}, 3, (uint32_t[]){3}, 1);
    op_write(p, join, 6, 3);
    op_release(p, join, 4, 0);
    op_release(p, join, 5, 1);
    op_release(p, join, 1, 2);

    set_outputs(p, (uint32_t[]){6, 3}, 2);
    return p;
}

/* ---- helpers ------------------------------------------------------------ */

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 0x100000001b3ull;
    }
    return h;
}

static void encode_ok(const struct weir__plan *p, uint8_t **buf, size_t *len)
{
    int rc = weir__plan_encode(p, buf, len);
    cr_assert_eq(rc, 0, "encode: %d %s", rc, weir_errmsg());
    cr_assert_gt(*len, 16);
}

static void expect_same(const struct weir__plan *x, const struct weir__plan *y)
{
    char *jx = weir__plan_json(x), *jy = weir__plan_json(y);
    cr_assert(jx && jy);
    cr_expect_str_eq(jx, jy);
    cr_expect_eq(weir__plan_hash(x), weir__plan_hash(y));
    free(jx);
    free(jy);
}

static char tmpdir[256];

static void mk_tmpdir(void)
{
    const char *t = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/weir-plan-test.XXXXXX", t && *t ? t : "/tmp");
    cr_assert_not_null(mkdtemp(tmpdir), "mkdtemp: %s", strerror(errno));
}

static void rm_tmpdir(void)
{
    if (!tmpdir[0])
        return;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    /* abort(): Criterion does not fail a test on a failed expectation in .fini,
     * but a crash there fails the run (see tests/dag_util.h). */
    if (system(cmd) != 0) {
        fprintf(stderr, "LEAK: could not remove the test's folder %s\n", tmpdir);
        abort();
    }
    t_heap_check();
}

static char *tmp_path(const char *name)
{
    static char buf[8][512]; /* a few paths may be live at once */
    static int k;
    char *s = buf[k++ % 8];
    snprintf(s, sizeof buf[0], "%s/%s", tmpdir, name);
    return s;
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = NULL;
    size_t cap = 0, n = 0;
    for (;;) {
        if (n + 4096 + 1 > cap) {
            cap = cap ? cap * 2 : 8192;
            buf = realloc(buf, cap);
            cr_assert_not_null(buf);
        }
        size_t r = fread(buf + n, 1, cap - n - 1, f);
        n += r;
        if (r == 0)
            break;
    }
    fclose(f);
    buf[n] = '\0';
    if (len)
        *len = n;
    return buf;
}

static void spit(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f, "%s: %s", path, strerror(errno));
    cr_assert_eq(fwrite(data, 1, len, f), len);
    cr_assert_eq(fclose(f), 0);
}

/*
 * Run argv with stdout and stderr captured into files of tmpdir; return the
 * exit status (or 128 + signal). *out / *err are malloc'd texts.
 */
static int run(char *const argv[], char **out, char **err)
{
    char po[512], pe[512];
    snprintf(po, sizeof po, "%s/stdout.txt", tmpdir);
    snprintf(pe, sizeof pe, "%s/stderr.txt", tmpdir);
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        int fo = open(po, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int fe = open(pe, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fo < 0 || fe < 0 || dup2(fo, 1) < 0 || dup2(fe, 2) < 0)
            _exit(126);
        execv(argv[0], argv);
        _exit(127);
    }
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    *out = slurp(po, NULL);
    *err = slurp(pe, NULL);
    cr_assert(*out && *err);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

TestSuite(plan, .init = mk_tmpdir, .fini = rm_tmpdir, .timeout = 120);

/* ---- validation of good plans, JSON and hash -------------------------------- */

Test(plan, hand_built_plans_validate)
{
    struct weir__plan *plans[] = {chain_plan(), diamond_plan()};
    for (int i = 0; i < 2; i++) {
        int rc = weir__plan_validate(plans[i]);
        cr_expect_eq(rc, 0, "%s: %d %s", plans[i]->graph, rc, weir_errmsg());
        weir__plan_free(plans[i]);
    }
    weir__plan_free(NULL);
}

/* The canonical form is a contract (hashes are compared across nodes): pin it. */
Test(plan, canonical_json_is_pinned)
{
    struct weir__plan *p = chain_plan();
    char *j = weir__plan_json(p);
    cr_assert_not_null(j);
    const char *want =
        "{\"graph\":\"chain\",\"nargs\":1,\"max_inflight\":4,\"depth\":4,\"buffer_bytes\":1024,"
        "\"transport\":0,\"timeout_ms\":5000,\"max_buffered\":64,\"threads\":0,"
        "\"nworkers\":2,\"actors\":["
        "{\"name\":\"a\",\"node\":0,\"isolation\":0,\"cpus\":null,\"worker\":0,\"methods\":["
        "{\"name\":\"f\",\"nin\":1,\"nout\":1},{\"name\":\"h\",\"nin\":1,\"nout\":1}],"
        "\"nregs\":3,\"ops\":["
        "{\"kind\":\"READ\",\"chan\":0,\"reg\":0},"
        "{\"kind\":\"CALL\",\"method\":0,\"node\":1,\"in\":[0],\"out\":[1],\"actor\":0},"
        "{\"kind\":\"RELEASE\",\"chan\":0,\"reg\":0},"
        "{\"kind\":\"CALL\",\"method\":1,\"node\":2,\"in\":[1],\"out\":[2],\"actor\":0},"
        "{\"kind\":\"WRITE\",\"chan\":1,\"reg\":2}]},"
        "{\"name\":\"b\",\"node\":0,\"isolation\":0,\"cpus\":null,\"worker\":1,\"methods\":["
        "{\"name\":\"g\",\"nin\":1,\"nout\":1}],\"nregs\":2,\"ops\":["
        "{\"kind\":\"READ\",\"chan\":1,\"reg\":0},"
        "{\"kind\":\"CALL\",\"method\":0,\"node\":3,\"in\":[0],\"out\":[1],\"actor\":1},"
        "{\"kind\":\"WRITE\",\"chan\":2,\"reg\":1},"
        "{\"kind\":\"RELEASE\",\"chan\":1,\"reg\":0}]}],"
        "\"chans\":["
        "{\"name\":\"arg0\",\"writer\":-1,\"readers\":[0],\"slot_bytes\":1024,\"depth\":4,"
        "\"src_kind\":\"ARG\",\"src_index\":0,\"src_out\":0},"
        "{\"name\":\"a.h.out0\",\"writer\":0,\"readers\":[1],\"slot_bytes\":1024,\"depth\":4,"
        "\"src_kind\":\"OUT\",\"src_index\":3,\"src_out\":0},"
        "{\"name\":\"b.g.out0\",\"writer\":1,\"readers\":[-1],\"slot_bytes\":1024,\"depth\":4,"
        "\"src_kind\":\"OUT\",\"src_index\":1,\"src_out\":0}],"
        "\"outputs\":[2]}";
    cr_expect_str_eq(j, want);
    cr_expect_eq(weir__plan_hash(p), fnv1a(want));
    free(j);
    weir__plan_free(p);
}

Test(plan, json_escapes_strings)
{
    struct weir__plan *p = chain_plan();
    free(p->graph);
    p->graph = xstrdup("q\"b\\s\n\t\x01");
    char *j = weir__plan_json(p);
    cr_assert_not_null(j);
    cr_expect(strstr(j, "{\"graph\":\"q\\\"b\\\\s\\n\\t\\u0001\",") == j, "%s", j);
    free(j);
    weir__plan_free(p);
}

Test(plan, hash_is_stable_and_sensitive)
{
    struct weir__plan *x = chain_plan(), *y = chain_plan();
    uint64_t h = weir__plan_hash(x);
    cr_expect_eq(h, weir__plan_hash(y), "same plan built twice must hash the same");
    char *j = weir__plan_json(x);
    cr_expect_eq(h, fnv1a(j), "hash is FNV-1a 64 of the canonical JSON");
    free(j);
    struct weir__plan *d = diamond_plan();
    cr_expect_neq(h, weir__plan_hash(d));
    weir__plan_free(d);

    /* Each edit of one field changes the hash; undoing it restores it. */
#define EDIT(field, val)                                                                      \
    do {                                                                                      \
        __typeof__(y->field) old_ = y->field;                                                 \
        y->field = (val);                                                                     \
        cr_expect_neq(weir__plan_hash(y), h, "editing " #field " did not change the hash");   \
        y->field = old_;                                                                      \
        cr_expect_eq(weir__plan_hash(y), h, "undoing " #field " did not restore the hash");   \
    } while (0)
    EDIT(nargs, 2);
    EDIT(max_inflight, 5);
    EDIT(depth, 3);
    EDIT(buffer_bytes, 1025);
    EDIT(transport, 1);
    EDIT(timeout_ms, -1);
    EDIT(max_buffered, 65);
    EDIT(actors[0].node, 2);
    EDIT(actors[0].isolation, 1);
    EDIT(actors[1].cpus, (char *)"0");
    EDIT(actors[1].nregs, 9);
    EDIT(actors[0].methods[1].nin, 2);
    EDIT(actors[0].methods[1].nout, 2);
    EDIT(actors[0].ops[0].chan, 1);
    EDIT(actors[0].ops[0].reg, 1);
    EDIT(actors[0].ops[0].kind, WEIR__OP_WRITE);
    EDIT(actors[0].ops[1].method, 1);
    EDIT(actors[0].ops[1].node, 7);
    EDIT(actors[0].ops[1].in[0], 2);
    EDIT(actors[0].ops[1].out[0], 2);
    EDIT(chans[1].writer, 1);
    EDIT(chans[1].readers[0], 0);
    EDIT(chans[1].slot_bytes, 1);
    EDIT(chans[1].depth, 1);
    EDIT(chans[1].src_kind, WEIR__SRC_ARG);
    EDIT(chans[1].src_index, 2);
    EDIT(chans[1].src_out, 1);
    EDIT(outputs[0], 1);
    EDIT(actors[0].name[0], 'z');
    EDIT(actors[0].methods[0].name[0], 'z');
    EDIT(chans[0].name[0], 'z');
    EDIT(graph[0], 'z');
#undef EDIT
    weir__plan_free(x);
    weir__plan_free(y);
}

/* ---- codec round trips ----------------------------------------------------- */

Test(plan, encode_decode_round_trip)
{
    struct weir__plan *plans[] = {chain_plan(), diamond_plan()};
    for (int i = 0; i < 2; i++) {
        uint8_t *buf, *buf2;
        size_t len, len2;
        encode_ok(plans[i], &buf, &len);
        struct weir__plan *q = NULL;
        int rc = weir__plan_decode(buf, len, &q);
        cr_assert_eq(rc, 0, "decode %s: %d %s", plans[i]->graph, rc, weir_errmsg());
        expect_same(plans[i], q);
        /* Encoding is deterministic: the decoded plan encodes to the same bytes. */
        encode_ok(q, &buf2, &len2);
        cr_expect_eq(len, len2);
        cr_expect(len == len2 && !memcmp(buf, buf2, len), "re-encoding changed the bytes");
        cr_expect(!memcmp(buf + 4, "WEIR", 4), "file identifier");

        /* An unaligned copy decodes too (the codec realigns it). */
        uint8_t *odd = malloc(len + 1);
        memcpy(odd + 1, buf, len);
        struct weir__plan *r = NULL;
        rc = weir__plan_decode(odd + 1, len, &r);
        cr_expect_eq(rc, 0, "unaligned decode: %s", weir_errmsg());
        if (r)
            expect_same(plans[i], r);
        weir__plan_free(r);
        free(odd);
        free(buf);
        free(buf2);
        weir__plan_free(q);
        weir__plan_free(plans[i]);
    }
}

Test(plan, encode_refuses_invalid_plan)
{
    struct weir__plan *p = chain_plan();
    p->actors[1].ops[0].chan = 42;
    uint8_t *buf = (uint8_t *)"x";
    size_t len = 7;
    cr_expect_eq(weir__plan_encode(p, &buf, &len), -EBADMSG);
    cr_expect_null(buf);
    cr_expect_eq(len, 0);
    cr_expect(strstr(weir_errmsg(), "actor 'b' op 0"), "%s", weir_errmsg());
    cr_expect_eq(weir__plan_save(p, tmp_path("bad.wplan")), -EBADMSG);
    cr_expect(strstr(weir_errmsg(), "bad.wplan"), "%s", weir_errmsg());
    cr_expect_eq(access(tmp_path("bad.wplan"), F_OK), -1, "nothing written");
    weir__plan_free(p);
}

Test(plan, save_load_round_trip)
{
    struct weir__plan *plans[] = {chain_plan(), diamond_plan()};
    for (int i = 0; i < 2; i++) {
        const char *path = tmp_path(i ? "diamond.wplan" : "chain.wplan");
        int rc = weir__plan_save(plans[i], path);
        cr_assert_eq(rc, 0, "save: %s", weir_errmsg());
        /* Saving again overwrites (truncates) the file. */
        cr_assert_eq(weir__plan_save(plans[i], path), 0, "save again: %s", weir_errmsg());
        struct weir__plan *q = NULL;
        rc = weir__plan_load(path, &q);
        cr_assert_eq(rc, 0, "load: %s", weir_errmsg());
        expect_same(plans[i], q);
        uint8_t *buf;
        size_t len, flen;
        encode_ok(plans[i], &buf, &len);
        char *file = slurp(path, &flen);
        cr_expect(flen == len && !memcmp(file, buf, len), "the file holds exactly the encoding");
        free(file);
        free(buf);
        weir__plan_free(q);
        weir__plan_free(plans[i]);
    }
}

Test(plan, io_errors_name_the_path)
{
    struct weir__plan *p = chain_plan(), *q = (struct weir__plan *)1;
    cr_expect_eq(weir__plan_load(tmp_path("missing.wplan"), &q), -ENOENT);
    cr_expect_null(q);
    cr_expect(strstr(weir_errmsg(), "missing.wplan") && strstr(weir_errmsg(), "No such file"),
              "%s", weir_errmsg());
    cr_expect_eq(weir__plan_load(tmpdir, &q), -EISDIR, "%s", weir_errmsg());
    cr_expect(strstr(weir_errmsg(), tmpdir), "%s", weir_errmsg());
    cr_expect_eq(weir__plan_save(p, tmp_path("no/such/dir.wplan")), -ENOENT);
    cr_expect(strstr(weir_errmsg(), "no/such/dir.wplan"), "%s", weir_errmsg());
    spit(tmp_path("empty.wplan"), "", 0);
    cr_expect_eq(weir__plan_load(tmp_path("empty.wplan"), &q), -EBADMSG);
    cr_expect(strstr(weir_errmsg(), "empty.wplan': truncated (0 bytes"), "%s", weir_errmsg());
    weir__plan_free(p);
}

/* ---- hostile input ------------------------------------------------------------ */

/* Decode must return 0 or -EBADMSG, and whatever it accepts must be usable. */
static int decode_checked(const uint8_t *buf, size_t len, FILE *sink)
{
    struct weir__plan *q = NULL;
    int rc = weir__plan_decode(buf, len, &q);
    cr_assert(rc == 0 || rc == -EBADMSG, "decode returned %d (%s)", rc, weir_errmsg());
    if (rc < 0) {
        cr_assert_null(q);
        cr_assert(strncmp(weir_errmsg(), "plan", 4) == 0, "message: %s", weir_errmsg());
        return rc;
    }
    cr_assert_eq(weir__plan_validate(q), 0);
    char *j = weir__plan_json(q);
    cr_assert_not_null(j);
    free(j);
    cr_assert_eq(weir__plan_print(q, sink), 0);
    cr_assert_eq(weir__plan_dot(q, sink), 0);
    uint8_t *b2;
    size_t l2;
    encode_ok(q, &b2, &l2);
    free(b2);
    weir__plan_free(q);
    return 0;
}

Test(plan, truncated_buffers_are_rejected)
{
    struct weir__plan *p = diamond_plan();
    uint8_t *buf;
    size_t len;
    encode_ok(p, &buf, &len);
    for (size_t n = 0; n < len; n++) {
        /* A fresh heap copy of exactly n bytes, so ASan sees any overread. */
        uint8_t *t = malloc(n ? n : 1);
        memcpy(t, buf, n);
        struct weir__plan *q = NULL;
        int rc = weir__plan_decode(t, n, &q);
        cr_assert_eq(rc, -EBADMSG, "truncated to %zu of %zu bytes: rc %d", n, len, rc);
        cr_assert_null(q);
        if (n < 8)
            cr_assert(strstr(weir_errmsg(), "truncated"), "%s", weir_errmsg());
        free(t);
    }
    free(buf);
    weir__plan_free(p);
}

Test(plan, bit_flips_never_crash)
{
    FILE *sink = fopen("/dev/null", "w");
    cr_assert_not_null(sink);
    struct weir__plan *plans[] = {chain_plan(), diamond_plan()};
    for (int i = 0; i < 2; i++) {
        uint8_t *buf;
        size_t len;
        encode_ok(plans[i], &buf, &len);
        unsigned accepted = 0, rejected = 0;
        uint8_t *t = malloc(len);
        for (size_t at = 0; at < len; at++)
            for (int bit = 0; bit < 8; bit++) {
                memcpy(t, buf, len);
                t[at] ^= (uint8_t)(1u << bit);
                if (decode_checked(t, len, sink) == 0)
                    accepted++;
                else
                    rejected++;
                if (at >= 4 && at < 8)
                    cr_assert(strstr(weir_errmsg(), "not a weir plan"),
                              "flip in the identifier: %s", weir_errmsg());
            }
        cr_log_info("%s: %zu bytes, %u flips accepted (still valid), %u rejected",
                    plans[i]->graph, len, accepted, rejected);
        cr_expect_gt(rejected, len, "most flips must be caught");
        free(t);
        free(buf);
        weir__plan_free(plans[i]);
    }
    fclose(sink);
}

/* Random multi-byte damage and random garbage with a valid identifier. */
Test(plan, random_corruption_never_crashes)
{
    FILE *sink = fopen("/dev/null", "w");
    cr_assert_not_null(sink);
    struct weir__plan *p = diamond_plan();
    uint8_t *buf;
    size_t len;
    encode_ok(p, &buf, &len);
    uint64_t s = 0x9e3779b97f4a7c15ull;
#define RND() (s ^= s << 13, s ^= s >> 7, s ^= s << 17, s)
    uint8_t *t = malloc(len);
    for (int iter = 0; iter < 20000; iter++) {
        memcpy(t, buf, len);
        int nd = 1 + (int)(RND() % 8);
        for (int k = 0; k < nd; k++) {
            size_t at = 8 + RND() % (len - 8);
            t[at] = (iter & 1) ? (uint8_t)RND() : (uint8_t)(t[at] + (RND() % 5) - 2);
        }
        decode_checked(t, len, sink);
    }
    for (int iter = 0; iter < 5000; iter++) {
        size_t n = 8 + RND() % 600;
        uint8_t *g = malloc(n);
        for (size_t k = 0; k < n; k++)
            g[k] = (uint8_t)RND();
        /* Small root offsets make the verifier look deeper than at pure noise. */
        g[0] = (uint8_t)(RND() % 64);
        g[1] = g[2] = g[3] = 0;
        memcpy(g + 4, "WEIR", 4);
        decode_checked(g, n, sink);
        free(g);
    }
#undef RND
    free(t);
    free(buf);
    weir__plan_free(p);
    fclose(sink);
}

Test(plan, foreign_files_are_not_plans)
{
    static const char text[] = "not a plan, just some text\n";
    struct weir__plan *q = NULL;
    cr_expect_eq(weir__plan_decode((const uint8_t *)text, sizeof text - 1, &q), -EBADMSG);
    cr_expect(strstr(weir_errmsg(), "not a weir plan (identifier 'a pl'"), "%s", weir_errmsg());
    static const uint8_t png[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13};
    cr_expect_eq(weir__plan_decode(png, sizeof png, &q), -EBADMSG);
    cr_expect(strstr(weir_errmsg(), "not a weir plan (identifier '\\x0d\\x0a\\x1a\\x0a'"),
              "%s", weir_errmsg());
    spit(tmp_path("text.wplan"), text, sizeof text - 1);
    cr_expect_eq(weir__plan_load(tmp_path("text.wplan"), &q), -EBADMSG);
    cr_expect(strstr(weir_errmsg(), "text.wplan': not a weir plan"), "%s", weir_errmsg());
    cr_expect_null(q);

    /* Right identifier, root table out of bounds. */
    static const uint8_t stub[16] = {200, 0, 0, 0, 'W', 'E', 'I', 'R'};
    cr_expect_eq(weir__plan_decode(stub, sizeof stub, &q), -EBADMSG);
    cr_expect(strstr(weir_errmsg(), "failed FlatBuffers verification"), "%s", weir_errmsg());
    /* Right identifier, an empty (but well-formed) root table. */
    static const uint8_t empty[16] = {12, 0, 0, 0, 'W', 'E', 'I', 'R', 4, 0, 4, 0, 4, 0, 0, 0};
    cr_expect_eq(weir__plan_decode(empty, sizeof empty, &q), -EBADMSG);
    cr_expect(strstr(weir_errmsg(), "plan: missing field 'version'"), "%s", weir_errmsg());
    cr_expect_eq(weir__plan_decode(stub, 7, &q), -EBADMSG);
    cr_expect(strstr(weir_errmsg(), "truncated (7 bytes, need at least 8)"), "%s",
              weir_errmsg());
}

/* ---- validation errors ---------------------------------------------------- */

typedef void (*mutate_fn)(struct weir__plan *p);

#define MUT(name, body)                                                                       \
    static void name(struct weir__plan *p)                                                    \
    {                                                                                         \
        body;                                                                                 \
    }

MUT(m_read_reg, p->actors[0].ops[0].reg = 9)
MUT(m_call_in_reg, p->actors[0].ops[1].in[0] = 9)
MUT(m_call_out_reg, p->actors[1].ops[1].out[0] = 5)
MUT(m_call_method, p->actors[0].ops[3].method = 7)
MUT(m_call_arity, p->actors[0].methods[0].nin = 2)
MUT(m_read_chan, p->actors[1].ops[0].chan = 3)
MUT(m_not_reader, p->actors[0].ops[0].chan = 2)
MUT(m_kind, p->actors[1].ops[2].kind = 9)
MUT(m_use_before_set, p->actors[0].ops[3].in[0] = 2)
MUT(m_use_after_release, {
    struct weir__plan_op t = p->actors[0].ops[1];
    p->actors[0].ops[1] = p->actors[0].ops[2];
    p->actors[0].ops[2] = t;
})
MUT(m_never_released, p->actors[1].nops = 3)
MUT(m_double_release, {
    p->actors[0].ops[4] = p->actors[0].ops[2];
    p->actors[0].ops[4].in = p->actors[0].ops[4].out = NULL;
})
MUT(m_release_call_value, p->actors[1].ops[3].reg = 1)
MUT(m_release_wrong_chan, p->actors[1].ops[3].chan = 0)
MUT(m_write_wrong_reg, p->actors[0].ops[4].reg = 1)
MUT(m_write_msg_reg, p->actors[0].ops[4].reg = 0)
MUT(m_write_foreign_chan, p->actors[0].ops[4].chan = 2)
MUT(m_overwrite_msg, p->actors[0].ops[1].out[0] = 0)
MUT(m_chan_writer, p->chans[1].writer = 5)
MUT(m_no_readers, p->chans[1].nreaders = 0)
MUT(m_many_readers, p->chans[1].nreaders = 65)
MUT(m_reader_range, p->chans[1].readers[0] = 2)
MUT(m_reader_is_writer, p->chans[1].readers[0] = 0)
MUT(m_dup_readers, {
    p->chans[0].readers = realloc(p->chans[0].readers, 2 * sizeof(int32_t));
    p->chans[0].readers[1] = 0;
    p->chans[0].nreaders = 2;
})
MUT(m_reader_never_reads, p->chans[0].readers[0] = 1)
MUT(m_depth0, p->chans[2].depth = 0)
MUT(m_slot0, p->chans[2].slot_bytes = 0)
MUT(m_arg_range, p->chans[0].src_index = 1)
MUT(m_arg_writer, p->chans[0].src_kind = WEIR__SRC_OUT)
MUT(m_src_op, p->chans[1].src_index = 2)
MUT(m_src_out, p->chans[1].src_out = 1)
MUT(m_src_kind, p->chans[1].src_kind = 2)
MUT(m_output_range, p->outputs[0] = 9)
MUT(m_output_not_driver, p->outputs[0] = 1)
MUT(m_actor_noname, p->actors[0].name[0] = '\0')
MUT(m_actor_dup, p->actors[1].name[0] = 'a')
MUT(m_method_dup, p->actors[0].methods[1].name[0] = 'f')
MUT(m_method_nout0, p->actors[1].methods[0].nout = 0)
MUT(m_graph_noname, p->graph[0] = '\0')
MUT(m_inflight0, p->max_inflight = 0)
MUT(m_transport, p->transport = 7)
MUT(m_isolation, p->actors[1].isolation = 5)
MUT(m_no_ops_array, {
    for (uint32_t i = 0; i < p->actors[1].nops; i++) {
        free(p->actors[1].ops[i].in);
        free(p->actors[1].ops[i].out);
    }
    free(p->actors[1].ops);
    p->actors[1].ops = NULL;
})
MUT(m_no_chan_array, {
    for (uint32_t i = 0; i < p->nchans; i++) {
        free(p->chans[i].name);
        free(p->chans[i].readers);
    }
    free(p->chans);
    p->chans = NULL;
})
MUT(m_nregs_huge, p->actors[0].nregs = 1u << 30)
MUT(m_write_twice, p->actors[1].ops[3] = p->actors[1].ops[2])
MUT(m_reader_never_reads2, {
    p->chans[2].readers = realloc(p->chans[2].readers, 2 * sizeof(int32_t));
    p->chans[2].readers[1] = 0;
    p->chans[2].nreaders = 2;
})
MUT(m_output_not_read, set_outputs(p, (uint32_t[]){2, 1}, 2))

static const struct {
    mutate_fn fn;
    const char *want;
} bad_cases[] = {
    {m_read_reg, "plan: actor 'a' op 0 (READ arg0) uses register 9 of 3"},
    {m_call_in_reg, "plan: actor 'a' op 1 reads register 9 of 3"},
    {m_call_out_reg, "plan: actor 'b' op 1 (CALL 'g') output 0 writes register 5 of 2"},
    {m_call_method, "plan: actor 'a' op 3 calls method 7 of 2"},
    {m_call_arity, "plan: actor 'a' op 1 calls 'f' with 1 inputs and 1 outputs (the method has 2 and 1)"},
    {m_read_chan, "plan: actor 'b' op 0 (READ) names channel 3 of 3"},
    {m_not_reader, "plan: actor 'a' op 0 reads channel 'b.g.out0' but is not one of its readers"},
    {m_kind, "plan: actor 'b' op 2 has unknown kind 9"},
    {m_use_before_set, "plan: actor 'a' op 3 (CALL 'h') input 0 reads register 2 before it is set"},
    {m_use_after_release, "plan: actor 'a' op 2 (CALL 'f') input 0 reads register 0 after its message was released"},
    {m_never_released, "plan: actor 'b' op 0 reads channel 'a.h.out0' into register 0 and never releases it"},
    {m_double_release, "plan: actor 'a' op 4 releases register 0 twice"},
    {m_release_call_value, "plan: actor 'b' op 3 releases register 1, which holds a call output"},
    {m_release_wrong_chan, "plan: actor 'b' op 3 releases register 0 as channel 'arg0', but it holds a message of channel 'a.h.out0'"},
    {m_write_wrong_reg, "plan: actor 'a' op 4 writes register 1 to channel 'a.h.out0', which carries output 0 of op 3"},
    {m_write_msg_reg, "plan: actor 'a' op 4 writes register 0 to channel 'a.h.out0', but it holds a channel message"},
    {m_write_foreign_chan, "plan: actor 'a' op 4 writes channel 'b.g.out0', whose writer is b"},
    {m_overwrite_msg, "plan: actor 'a' op 1 overwrites register 0, which still holds an unreleased message of channel 'arg0'"},
    {m_chan_writer, "plan: channel 'a.h.out0' writer is actor 5 of 2"},
    {m_no_readers, "plan: channel 'a.h.out0' has no readers"},
    {m_many_readers, "plan: channel 'a.h.out0' has 65 readers (max 64)"},
    {m_reader_range, "plan: channel 'a.h.out0' reader 0 is actor 2 of 2"},
    {m_reader_is_writer, "plan: channel 'a.h.out0' lists its writer (a) as a reader"},
    {m_dup_readers, "plan: channel 'arg0' lists reader a twice"},
    {m_reader_never_reads, "plan: actor 'a' op 0 reads channel 'arg0' but is not one of its readers"},
    {m_depth0, "plan: channel 'b.g.out0' depth 0 is out of range"},
    {m_slot0, "plan: channel 'b.g.out0' slot_bytes 0 is out of range"},
    {m_arg_range, "plan: channel 'arg0' carries argument 1 of 1"},
    {m_arg_writer, "plan: channel 'arg0' carries a call output but is written by the driver"},
    {m_src_op, "plan: channel 'a.h.out0' comes from actor 'a' op 2, which is not a CALL"},
    {m_src_out, "plan: channel 'a.h.out0' carries output 1 of actor 'a' op 3, which has 1 outputs"},
    {m_src_kind, "plan: channel 'a.h.out0' has unknown source kind 2"},
    {m_output_range, "plan: output 0 reads channel 9 of 3"},
    {m_output_not_driver, "plan: channel 'b.g.out0' is read by the driver but is not a graph output"},
    {m_actor_noname, "plan: actor 0 has no name"},
    {m_actor_dup, "plan: two actors are named 'a'"},
    {m_method_dup, "plan: actor 'a' has two methods named 'f'"},
    {m_method_nout0, "plan: actor 'b' method 'g' has 0 outputs"},
    {m_graph_noname, "plan: empty graph name"},
    {m_inflight0, "plan: max_inflight 0 is out of range"},
    {m_transport, "plan: unknown transport 7"},
    {m_isolation, "plan: actor 'b' has unknown isolation 5"},
    {m_no_ops_array, "plan: actor 'b' has 4 ops but no op array"},
    {m_no_chan_array, "plan: 3 channels but no channel array"},
    {m_nregs_huge, "plan: actor 'a' has 1073741824 registers (max 1048576)"},
    {m_write_twice, "plan: actor 'b' op 3 writes channel 'b.g.out0' a second time"},
    {m_reader_never_reads2, "plan: actor 'a' is a reader of channel 'b.g.out0' but never reads it"},
    {m_output_not_read, "plan: output 1 is channel 'a.h.out0', which the driver does not read"},
};

Test(plan, validate_names_the_fault)
{
    FILE *sink = fopen("/dev/null", "w");
    cr_assert_not_null(sink);
    for (size_t i = 0; i < sizeof bad_cases / sizeof *bad_cases; i++) {
        struct weir__plan *p = chain_plan();
        cr_assert_eq(weir__plan_validate(p), 0);
        bad_cases[i].fn(p);
        int rc = weir__plan_validate(p);
        cr_expect_eq(rc, -EBADMSG, "case %zu (%s): rc %d", i, bad_cases[i].want, rc);
        cr_expect(strstr(weir_errmsg(), bad_cases[i].want) == weir_errmsg(),
                  "case %zu:\n  want: %s\n  got:  %s", i, bad_cases[i].want, weir_errmsg());
        /* Restore counts that the mutation made inconsistent with the arrays. */
        if (p->actors[1].nops == 3)
            p->actors[1].nops = 4;
        if (p->chans && p->chans[1].nreaders != 1)
            p->chans[1].nreaders = 1;
        /* The other outputs take invalid (but consistent) plans without crashing. */
        weir__plan_hash(p);
        free(weir__plan_json(p));
        cr_expect_eq(weir__plan_print(p, sink), 0);
        cr_expect_eq(weir__plan_dot(p, sink), 0);
        weir__plan_free(p);
    }
    cr_expect_eq(weir__plan_validate(NULL), -EINVAL);
    fclose(sink);
}

Test(plan, listing_and_dot)
{
    struct weir__plan *p = diamond_plan();
    char *txt = NULL, *dot = NULL;
    size_t n1, n2;
    FILE *f = open_memstream(&txt, &n1);
    cr_assert_eq(weir__plan_print(p, f), 0, "%s", weir_errmsg());
    fclose(f);
    f = open_memstream(&dot, &n2);
    cr_assert_eq(weir__plan_dot(p, f), 0, "%s", weir_errmsg());
    fclose(f);
    char hash[40];
    snprintf(hash, sizeof hash, "hash %016" PRIx64, weir__plan_hash(p));
    cr_expect(strstr(txt, "plan 'diamond'") == txt, "%s", txt);
    cr_expect(strstr(txt, hash), "%s", txt);
    cr_expect(strstr(txt, "transport zmq, timeout_ms -1"), "%s", txt);
    cr_expect(strstr(txt, "src -> driver, right"), "%s", txt);
    cr_expect(strstr(txt, "driver -> src, join"), "%s", txt);
    cr_expect(strstr(txt, "    3 CALL    merge(r0, r1, r2) -> r3"), "%s", txt);
    cr_expect(strstr(txt, "    2 CALL    split(r0, r1) -> r2, r3"), "%s", txt);
    cr_expect(strstr(txt, "    0 READ    src.split.out0 -> r0"), "%s", txt);
    cr_expect(strstr(txt, "    2 WRITE   r1 -> left.f.out0"), "%s", txt);
    cr_expect(strstr(txt, "    3 RELEASE r0 (src.split.out0)"), "%s", txt);
    cr_expect(strstr(txt, "actor 2 'right'  node 0, process, unpinned"), "%s", txt);
    cr_expect(strstr(txt, "actor 1 'left'  node 0, thread, worker 2, cpus 1"), "%s", txt);
    cr_expect(strstr(txt, "  placement: threads automatic, 3 workers\n"
                          "    worker 1 (rank 0): src\n"
                          "    worker 2 (rank 0): left\n"
                          "    worker 3 (rank 1): join\n"
                          "    process: right\n"),
              "%s", txt);
    cr_expect(strstr(txt, "1 <- src.split.out1 (channel 3)"), "%s", txt);

    cr_expect(strstr(dot, "digraph \"diamond\" {") == dot, "%s", dot);
    cr_expect(strstr(dot, "subgraph cluster_a3 {"), "%s", dot);
    cr_expect(strstr(dot, "a3_op3 [label=\"join.merge\"]"), "%s", dot);
    cr_expect(strstr(dot, "arg1 -> a3_op3 [label=\"arg1\"]"), "%s", dot);
    cr_expect(strstr(dot, "a0_op2 -> a2_op1 [label=\"src.split.out1\"]"), "%s", dot);
    cr_expect(strstr(dot, "a0_op2 -> outputs [label=\"src.split.out1 [out 1]\"]"), "%s", dot);
    cr_expect(strstr(dot, "a3_op3 -> outputs"), "%s", dot);
    cr_expect_eq(dot[n2 - 2], '}');
    free(txt);
    free(dot);
    weir__plan_free(p);

    /* Intra-actor register edges are dashed. */
    p = chain_plan();
    f = open_memstream(&dot, &n2);
    cr_assert_eq(weir__plan_dot(p, f), 0);
    fclose(f);
    cr_expect(strstr(dot, "a0_op1 -> a0_op3 [style=dashed, label=\"r1\"]"), "%s", dot);
    cr_expect(strstr(dot, "a0_op3 -> a1_op1 [label=\"a.h.out0\"]"), "%s", dot);
    free(dot);
    weir__plan_free(p);

    /* Output errors are reported. */
    p = chain_plan();
    FILE *full = fopen("/dev/full", "w");
    if (full) {
        setvbuf(full, NULL, _IONBF, 0);
        cr_expect_eq(weir__plan_print(p, full), -EIO);
        cr_expect_eq(weir__plan_dot(p, full), -EIO);
        fclose(full);
    }
    weir__plan_free(p);
}

/* ---- interop with the real flatc ----------------------------------------------- */

#ifdef WEIR_FLATC
Test(plan, flatc_reads_our_files)
{
    struct weir__plan *p = diamond_plan();
    const char *path = tmp_path("diamond.wplan");
    cr_assert_eq(weir__plan_save(p, path), 0, "%s", weir_errmsg());
    char *out, *err;
    char *argv[] = {WEIR_FLATC,   "--json",  "--strict-json", "--raw-binary", "-o",
                    tmpdir,       WEIR_PLAN_FBS, "--",          (char *)path,   NULL};
    int st = run(argv, &out, &err);
    cr_assert_eq(st, 0, "flatc: %s%s", out, err);
    char *json = slurp(tmp_path("diamond.json"), NULL);
    cr_assert_not_null(json, "flatc wrote no JSON");
    cr_expect(strstr(json, "\"graph\": \"diamond\""), "%s", json);
    cr_expect(strstr(json, "\"version\": 3"), "%s", json);
    cr_expect(strstr(json, "\"nworkers\": 3"), "%s", json);
    cr_expect(strstr(json, "\"worker\": 2"), "%s", json); /* join: actor 3 on worker 2 */
    for (uint32_t i = 0; i < p->nactors; i++) {
        char want[80];
        snprintf(want, sizeof want, "\"name\": \"%s\"", p->actors[i].name);
        cr_expect(strstr(json, want), "no %s in %s", want, json);
    }
    cr_expect(strstr(json, "\"kind\": \"CALL\""), "%s", json);
    cr_expect(strstr(json, "\"src_kind\": \"OUT\""), "%s", json);
    free(out);
    free(err);

    /* ... and back: flatc's own binary from that JSON is the same plan. */
    spit(tmp_path("back.json"), json, strlen(json));
    free(json);
    char *argv2[] = {WEIR_FLATC, "-b", "-o", tmpdir, WEIR_PLAN_FBS, tmp_path("back.json"), NULL};
    st = run(argv2, &out, &err);
    cr_assert_eq(st, 0, "flatc -b: %s%s", out, err);
    struct weir__plan *q = NULL;
    cr_assert_eq(weir__plan_load(tmp_path("back.wplan"), &q), 0, "%s", weir_errmsg());
    expect_same(p, q);
    weir__plan_free(q);
    free(out);
    free(err);
    weir__plan_free(p);
}

/* Buffers our encoder refuses to write, made with flatc from JSON. */
Test(plan, flatc_made_bad_plans_are_rejected)
{
    static const struct {
        const char *json, *want;
    } cases[] = {
        {"{version: 1, graph: \"bad\", nargs: 1, max_inflight: 1, depth: 1, buffer_bytes: 64,"
         " actors: [{name: \"a\", nregs: 1, methods: [{name: \"f\", nin: 1, nout: 1}],"
         " ops: [{kind: \"READ\", chan: 5, reg: 0}]}],"
         " chans: [{name: \"arg0\", writer: -1, readers: [0], slot_bytes: 64, depth: 1}]}",
         "': actor 'a' op 0 (READ) names channel 5 of 1"},
        {"{graph: \"g\", max_inflight: 1, depth: 1, buffer_bytes: 64}",
         "': missing field 'version'"},
        {"{version: 4, graph: \"g\", max_inflight: 1, depth: 1, buffer_bytes: 64}",
         "': format version 4 is not supported (this build reads 1..3)"},
        /* Version 3: a tensor edge's spec is checked like weir_node_tensor_spec's. */
        {"{version: 3, graph: \"t\", max_inflight: 1, depth: 1, buffer_bytes: 64,"
         " chans: [{name: \"arg0\", writer: -1, slot_bytes: 64, depth: 1,"
         " tensor: {device: 1, ndim: 9, shape: [1,1,1,1,1,1,1,1,1]}}]}",
         "': channel 'arg0': tensor ndim 9 with 9 shape entries"},
        {"{version: 3, graph: \"t\", max_inflight: 1, depth: 1, buffer_bytes: 64,"
         " chans: [{name: \"arg0\", writer: -1, slot_bytes: 64, depth: 1,"
         " tensor: {device: 1, ndim: 2, shape: [4]}}]}",
         "': channel 'arg0': tensor ndim 2 with 1 shape entries"},
        {"{version: 3, graph: \"t\", nargs: 1, max_inflight: 1, depth: 1, buffer_bytes: 64,"
         " chans: [{name: \"arg0\", writer: -1, slot_bytes: 64, depth: 1,"
         " tensor: {device: -3}}]}",
         "': channel 'arg0': tensor device type -3 is no DLPack device type"},
        {"{version: 3, graph: \"t\", nargs: 1, max_inflight: 1, depth: 1, buffer_bytes: 64,"
         " chans: [{name: \"arg0\", writer: -1, slot_bytes: 64, depth: 1,"
         " tensor: {device: 1, dtype_code: 2, dtype_bits: 12, dtype_lanes: 1}}]}",
         "': channel 'arg0': tensor dtype (code 2, bits 12, lanes 1): bits must be a multiple "
         "of 8, lanes >= 1"},
        {"{version: 3, graph: \"t\", nargs: 1, max_inflight: 1, depth: 1, buffer_bytes: 64,"
         " chans: [{name: \"arg0\", writer: -1, slot_bytes: 64, depth: 1,"
         " tensor: {device: 1, ndim: 1, shape: [-4]}}]}",
         "': channel 'arg0': tensor shape[0] = -4 (ndim 1)"},
        {"{version: 3, graph: \"t\", nargs: 1, max_inflight: 1, depth: 1, buffer_bytes: 64,"
         " chans: [{name: \"arg0\", writer: -1, slot_bytes: 64, depth: 1,"
         " tensor: {device: 2, device_id: -1, max_bytes: 64}}]}",
         "': channel 'arg0': tensor device id -1 is negative"},
        /* Version 2: a thread actor must sit on a worker that exists. */
        {"{version: 2, graph: \"w\", nargs: 1, max_inflight: 1, depth: 1, buffer_bytes: 64,"
         " nworkers: 1, actors: [{name: \"a\", worker: 3}]}",
         "': actor 'a' is placed on worker 3 of 1"},
        {"{version: 2, graph: \"w\", nargs: 1, max_inflight: 1, depth: 1, buffer_bytes: 64,"
         " nworkers: 2, actors: [{name: \"a\", worker: 0}, {name: \"b\", worker: 0}]}",
         "': worker 1 has no actor"},
        /* A worker runs on one rank. */
        {"{version: 2, graph: \"w\", nargs: 1, max_inflight: 1, depth: 1, buffer_bytes: 64,"
         " nworkers: 1, actors: [{name: \"a\", worker: 0}, {name: \"b\", node: 1, worker: 0}]}",
         "': actor 'b' (node 1) is on worker 0 of actor 'a' (node 0): a worker runs on one rank"},
        {"{version: 1, max_inflight: 1, depth: 1, buffer_bytes: 64}", "': missing field 'graph'"},
        {"{version: 1, graph: \"g\", max_inflight: 1, depth: 1, buffer_bytes: 64,"
         " actors: [{nregs: 1}]}",
         "': actor 0: missing field 'name'"},
        {"{version: 1, graph: \"g\", max_inflight: 1, depth: 1, buffer_bytes: 64,"
         " actors: [{name: \"a\", methods: [{nin: 1}]}]}",
         "': actor 'a' method 0: missing field 'name'"},
        {"{version: 1, graph: \"g\", max_inflight: 1, depth: 1, buffer_bytes: 64,"
         " chans: [{writer: -1}]}",
         "': channel 0: missing field 'name'"},
        {"{version: 1, graph: \"g\\u0000x\", max_inflight: 1, depth: 1, buffer_bytes: 64}",
         "': graph name contains a NUL byte"},
        /* Version 2 (before tensor edges) still loads: no channel is a tensor. */
        {"{version: 2, graph: \"w\", nargs: 1, max_inflight: 1, depth: 1, buffer_bytes: 64,"
         " nworkers: 1, actors: [{name: \"a\", worker: 0, nregs: 2, methods: [{name: \"f\","
         " nin: 1, nout: 1}], ops: [{kind: \"READ\", chan: 0, reg: 0}, {kind: \"CALL\","
         " in_regs: [0], out_regs: [1]}, {kind: \"WRITE\", chan: 1, reg: 1}, {kind:"
         " \"RELEASE\", chan: 0, reg: 0}]}], chans: [{name: \"arg0\", writer: -1, readers: [0],"
         " slot_bytes: 64, depth: 1}, {name: \"a.f.out0\", writer: 0, readers: [-1],"
         " slot_bytes: 64, depth: 1, src_kind: \"OUT\", src_index: 1}], outputs: [1]}",
         NULL},
        /* A valid minimal plan: no actors, no channels. */
        {"{version: 1, graph: \"empty\", max_inflight: 1, depth: 1, buffer_bytes: 64}", NULL},
        /* Version 1 (before placement) still loads: a worker per thread actor. */
        {"{version: 1, graph: \"old\", nargs: 1, max_inflight: 1, depth: 1, buffer_bytes: 64,"
         " actors: [{name: \"a\", nregs: 2, methods: [{name: \"f\", nin: 1, nout: 1}],"
         " ops: [{kind: \"READ\", chan: 0, reg: 0}, {kind: \"CALL\", in_regs: [0],"
         " out_regs: [1]}, {kind: \"WRITE\", chan: 1, reg: 1}, {kind: \"RELEASE\", chan: 0,"
         " reg: 0}]}], chans: [{name: \"arg0\", writer: -1, readers: [0], slot_bytes: 64,"
         " depth: 1}, {name: \"a.f.out0\", writer: 0, readers: [-1], slot_bytes: 64, depth: 1,"
         " src_kind: \"OUT\", src_index: 1}], outputs: [1]}",
         NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char name[32], bin[32];
        snprintf(name, sizeof name, "case%zu.json", i);
        snprintf(bin, sizeof bin, "case%zu.wplan", i);
        spit(tmp_path(name), cases[i].json, strlen(cases[i].json));
        char *out, *err;
        char *argv[] = {WEIR_FLATC, "-b", "-o", tmpdir, WEIR_PLAN_FBS, tmp_path(name), NULL};
        int st = run(argv, &out, &err);
        cr_assert_eq(st, 0, "case %zu: flatc -b: %s%s", i, out, err);
        free(out);
        free(err);
        struct weir__plan *q = NULL;
        int rc = weir__plan_load(tmp_path(bin), &q);
        if (!cases[i].want) {
            cr_expect_eq(rc, 0, "case %zu: %s", i, weir_errmsg());
        } else {
            cr_expect_eq(rc, -EBADMSG, "case %zu: rc %d", i, rc);
            cr_expect(strstr(weir_errmsg(), cases[i].want), "case %zu:\n  want: %s\n  got:  %s",
                      i, cases[i].want, weir_errmsg());
            cr_expect(strstr(weir_errmsg(), bin), "case %zu: no path in %s", i, weir_errmsg());
        }
        weir__plan_free(q);
    }
}
#endif

/* ---- the weir-plan tool ---------------------------------------------------------- */

#ifdef WEIR_PLAN_CLI
Test(plan, cli)
{
    struct weir__plan *p = chain_plan();
    const char *path = tmp_path("chain.wplan");
    cr_assert_eq(weir__plan_save(p, path), 0, "%s", weir_errmsg());
    char *out, *err;

    char *hash[] = {WEIR_PLAN_CLI, "hash", (char *)path, NULL};
    cr_expect_eq(run(hash, &out, &err), 0, "%s", err);
    char want[32];
    snprintf(want, sizeof want, "%016" PRIx64 "\n", weir__plan_hash(p));
    cr_expect_str_eq(out, want);
    cr_expect_str_empty(err);
    free(out);
    free(err);

    char *json[] = {WEIR_PLAN_CLI, "json", (char *)path, NULL};
    cr_expect_eq(run(json, &out, &err), 0, "%s", err);
    char *j = weir__plan_json(p);
    cr_expect(strlen(out) == strlen(j) + 1 && !strncmp(out, j, strlen(j)), "%s", out);
    free(j);
    free(out);
    free(err);

    char *show[] = {WEIR_PLAN_CLI, "show", (char *)path, NULL};
    cr_expect_eq(run(show, &out, &err), 0, "%s", err);
    cr_expect(strstr(out, "plan 'chain'  hash "), "%s", out);
    cr_expect(strstr(out, "    1 CALL    f(r0) -> r1"), "%s", out);
    cr_expect(strstr(out, "a -> b"), "%s", out);
    free(out);
    free(err);

    char *dot[] = {WEIR_PLAN_CLI, "dot", (char *)path, NULL};
    cr_expect_eq(run(dot, &out, &err), 0, "%s", err);
    cr_expect(strstr(out, "digraph \"chain\"") == out, "%s", out);
    free(out);
    free(err);

    /* Usage errors: exit 2. */
    char *none[] = {WEIR_PLAN_CLI, NULL};
    cr_expect_eq(run(none, &out, &err), 2);
    cr_expect(strstr(err, "usage: weir-plan"), "%s", err);
    free(out);
    free(err);
    char *bogus[] = {WEIR_PLAN_CLI, "frob", (char *)path, NULL};
    cr_expect_eq(run(bogus, &out, &err), 2);
    cr_expect(strstr(err, "unknown command 'frob'"), "%s", err);
    free(out);
    free(err);
    char *extra[] = {WEIR_PLAN_CLI, "show", (char *)path, "more", NULL};
    cr_expect_eq(run(extra, &out, &err), 2);
    free(out);
    free(err);
    char *help[] = {WEIR_PLAN_CLI, "--help", NULL};
    cr_expect_eq(run(help, &out, &err), 0);
    cr_expect(strstr(out, "usage: weir-plan"), "%s", out);
    free(out);
    free(err);

    /* Load errors: exit 1 with weir_errmsg() on stderr. */
    char *missing[] = {WEIR_PLAN_CLI, "show", tmp_path("nope.wplan"), NULL};
    cr_expect_eq(run(missing, &out, &err), 1);
    cr_expect(strstr(err, "nope.wplan': cannot open: No such file"), "%s", err);
    cr_expect_str_empty(out);
    free(out);
    free(err);
    spit(tmp_path("junk.wplan"), "junkjunkjunkjunk", 16);
    char *junk[] = {WEIR_PLAN_CLI, "hash", tmp_path("junk.wplan"), NULL};
    cr_expect_eq(run(junk, &out, &err), 1);
    cr_expect(strstr(err, "junk.wplan': not a weir plan (identifier 'junk'"), "%s", err);
    free(out);
    free(err);
    weir__plan_free(p);
}
#endif

/* ---- plans from the real compiler --------------------------------------------------- */

static int nop_method(weir_call *c, void *st)
{
    (void)c;
    (void)st;
    return 0;
}

/* Every compiled plan must pass validation and survive the codec unchanged. */
Test(plan, compiled_plans_validate_and_round_trip)
{
    weir_graph *g = weir_graph_new("compiled");
    cr_assert_not_null(g, "%s", weir_errmsg());
    weir_actor *a = weir_actor_new(g, "a", NULL), *b = weir_actor_new(g, "b", NULL);
    weir_actor *c = weir_actor_new(g, "c", NULL);
    cr_assert(a && b && c, "%s", weir_errmsg());
    weir_node *x = weir_input(g, 0), *y = weir_input(g, 1);
    weir_node *f = weir_bind(a, "f", nop_method, (weir_node *[]){x}, 1, 1);
    weir_node *h = weir_bind(a, "h", nop_method, (weir_node *[]){f, y}, 2, 2);
    weir_node *h0 = weir_ret(h, 0), *h1 = weir_ret(h, 1);
    weir_node *gb = weir_bind(b, "g", nop_method, (weir_node *[]){h0, x}, 2, 1);
    weir_node *gc = weir_bind(c, "k", nop_method, (weir_node *[]){h1, gb, h0}, 3, 1);
    weir_node *gc2 = weir_bind(c, "k", nop_method, (weir_node *[]){gc, gc, h1}, 3, 1);
    cr_assert(f && h && h0 && h1 && gb && gc && gc2, "%s", weir_errmsg());
    cr_assert_eq(weir_output(g, (weir_node *[]){gc2, h0, gb}, 3), 0, "%s", weir_errmsg());

    weir_compile_opts o = {.max_inflight = 3, .depth = 2};
    struct weir__plan *p = NULL;
    int rc = weir__compile_plan(g, &o, &p);
    cr_assert_eq(rc, 0, "compile: %s", weir_errmsg());
    rc = weir__plan_validate(p);
    char *j = weir__plan_json(p);
    cr_expect_eq(rc, 0, "validate: %s\n%s", weir_errmsg(), j);
    free(j);
    if (rc == 0) {
        uint8_t *buf;
        size_t len;
        encode_ok(p, &buf, &len);
        struct weir__plan *q = NULL;
        cr_expect_eq(weir__plan_decode(buf, len, &q), 0, "%s", weir_errmsg());
        if (q)
            expect_same(p, q);
        weir__plan_free(q);
        free(buf);
    }
    weir__plan_free(p);
    weir_graph_free(g);
}

/* Tensor edges are in the plan (format version 3): which channels carry
 * tensors and their specs survive the codec and a file exactly, change the
 * hash (ranks with other marks are refused), and weir-plan show lists them.
 * A value inside one actor has no channel, so no entry. */
Test(plan, tensor_edges_recorded)
{
    weir_graph *g = weir_graph_new("tens");
    weir_actor *a = weir_actor_new(g, "a", NULL), *b = weir_actor_new(g, "b", NULL);
    weir_node *in = weir_input(g, 0);
    weir_node *y = weir_bind(a, "f", nop_method, &in, 1, 2);
    weir_node *y0 = weir_ret(y, 0), *y1 = weir_ret(y, 1);
    weir_node *z = weir_bind(b, "g", nop_method, (weir_node *[]){y0, y1}, 2, 1);
    cr_assert_eq(weir_output(g, &z, 1), 0, "%s", weir_errmsg());
    weir_compile_opts o = {.max_inflight = 2};
    struct weir__plan *plain = NULL, *p = NULL;
    cr_assert_eq(weir__compile_plan(g, &o, &plain), 0, "%s", weir_errmsg());
    for (uint32_t c = 0; c < plain->nchans; c++)
        cr_expect_eq(plain->chans[c].tensor.is_tensor, 0);

    weir_tensor_spec s0 = {.device = kDLCPU, .dtype = {kDLFloat, 32, 1}, .ndim = 2,
                           .shape = {8, 0}};
    weir_tensor_spec s1 = {.device = WEIR_TENSOR_DEVICE_SIM, .device_id = 1, .max_bytes = 4096,
                           .dtype = {kDLUInt, 16, 2}, .ndim = WEIR_TENSOR_SCALAR};
    cr_assert_eq(weir_node_tensor_spec(in, &s0), 0, "%s", weir_errmsg());
    cr_assert_eq(weir_node_tensor_spec(y1, &s1), 0, "%s", weir_errmsg());
    cr_assert_eq(weir_node_tensor(z, kDLCPU, 0), 0, "%s", weir_errmsg());
    cr_assert_eq(weir__compile_plan(g, &o, &p), 0, "%s", weir_errmsg());
    cr_assert_eq(weir__plan_validate(p), 0, "%s", weir_errmsg());
    cr_expect_neq(weir__plan_hash(p), weir__plan_hash(plain), "the marks are in the hash");
    /* channels: arg0, a.f.out0, a.f.out1, b.g.out0 */
    cr_assert_eq(p->nchans, 4);
    const struct weir__plan_tensor *t0 = &p->chans[0].tensor, *t1 = &p->chans[1].tensor,
                                   *t2 = &p->chans[2].tensor, *t3 = &p->chans[3].tensor;
    cr_expect_str_eq(p->chans[2].name, "a.f.out1");
    cr_expect_eq(t0->is_tensor, 1);
    cr_expect_eq(t0->device, kDLCPU);
    cr_expect_eq(t0->dtype_code, kDLFloat);
    cr_expect_eq(t0->dtype_bits, 32);
    cr_expect_eq(t0->ndim, 2);
    cr_expect_eq(t0->shape[0], 8);
    cr_expect_eq(t0->shape[1], 0);
    cr_expect_eq(t1->is_tensor, 0, "a.f.out0 is no tensor edge");
    cr_expect_eq(t2->is_tensor, 1);
    cr_expect_eq(t2->device, WEIR_TENSOR_DEVICE_SIM);
    cr_expect_eq(t2->device_id, 1);
    cr_expect_eq(t2->max_bytes, 4096);
    cr_expect_eq(t2->dtype_lanes, 2);
    cr_expect_eq(t2->ndim, WEIR_TENSOR_SCALAR);
    cr_expect_eq(t3->is_tensor, 1);
    cr_expect_eq(t3->dtype_bits, 0);

    const char *path = tmp_path("tens.wplan");
    cr_assert_eq(weir__plan_save(p, path), 0, "%s", weir_errmsg());
    struct weir__plan *q = NULL;
    cr_assert_eq(weir__plan_load(path, &q), 0, "%s", weir_errmsg());
    expect_same(p, q);
    cr_expect_eq(memcmp(&q->chans[2].tensor, t2, sizeof *t2), 0, "the spec, field by field");
    cr_expect_eq(memcmp(&q->chans[0].tensor, t0, sizeof *t0), 0);

    char *txt = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&txt, &n);
    cr_assert_eq(weir__plan_print(q, f), 0, "%s", weir_errmsg());
    fclose(f);
    cr_expect(strstr(txt, "\ntensor edges\n"
                          "     0  arg0      cpu, max_bytes any, dtype float32, ndim 2, shape 8 x ?\n"
                          "     2  a.f.out1  sim:1, max_bytes 4096, dtype uint16x2, scalar\n"
                          "     3  b.g.out0  cpu, max_bytes any, dtype any, ndim any\n"),
              "%s", txt);
    free(txt);
    weir__plan_free(q);
    weir__plan_free(p);
    weir__plan_free(plain);
    weir_graph_free(g);
}
