/* SPDX-License-Identifier: MIT */
/*
 * compiler/plan.c - a plan's lifecycle as data: free, save and load (through
 * the FlatBuffers codec, compiler/plan_codec.cc), and the names the other
 * plan files use in messages. Beside it: plan_validate.c (the trust
 * boundary), plan_json.c (canonical JSON and the hash), plan_text.c (the
 * human listing and Graphviz DOT).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <weir/chan.h>
#include <weir/dag.h>
#include <weir/graph.h>

#include "channels/err.h"
#include "compiler/plan.h"

/* ---- free ----------------------------------------------------------------- */

void weir__plan_free(struct weir__plan *p)
{
    if (!p)
        return;
    for (uint32_t i = 0; p->actors && i < p->nactors; i++) {
        struct weir__plan_actor *a = &p->actors[i];
        for (uint32_t m = 0; a->methods && m < a->nmethods; m++)
            free(a->methods[m].name);
        for (uint32_t k = 0; a->ops && k < a->nops; k++) {
            free(a->ops[k].in);
            free(a->ops[k].out);
        }
        free(a->name);
        free(a->cpus);
        free(a->methods);
        free(a->ops);
    }
    for (uint32_t c = 0; p->chans && c < p->nchans; c++) {
        free(p->chans[c].name);
        free(p->chans[c].readers);
    }
    free(p->actors);
    free(p->chans);
    free(p->outputs);
    free(p->graph);
    free(p);
}

/* ---- placement --------------------------------------------------------------- */

int32_t weir__plan_worker_lead(const struct weir__plan *p, uint32_t w)
{
    for (uint32_t a = 0; p->actors && a < p->nactors; a++)
        if (p->actors[a].isolation == WEIR_THREAD && p->actors[a].worker == (int32_t)w)
            return (int32_t)a;
    return -1;
}

int32_t weir__plan_runner(const struct weir__plan *p, uint32_t a)
{
    if (!p->actors || a >= p->nactors)
        return -1;
    const struct weir__plan_actor *pa = &p->actors[a];
    if (pa->isolation != WEIR_THREAD)
        return (int32_t)a;
    if (pa->worker < 0 || (uint32_t)pa->worker >= p->nworkers)
        return -1;
    return weir__plan_worker_lead(p, (uint32_t)pa->worker);
}

/* ---- names used in messages ------------------------------------------------ */

const char *weir__plan_kind_name(uint32_t kind)
{
    static const char *const names[] = {"READ", "CALL", "WRITE", "RELEASE"};
    return kind < 4 ? names[kind] : NULL;
}

/* Actor index or the driver; safe on any index. */
const char *weir__plan_party(const struct weir__plan *p, int32_t who)
{
    if (who == WEIR__PLAN_DRIVER)
        return "driver";
    if (who < 0 || !p->actors || (uint32_t)who >= p->nactors || !p->actors[who].name)
        return "?";
    return p->actors[who].name;
}

const char *weir__plan_chan_name(const struct weir__plan *p, uint32_t c)
{
    if (!p->chans || c >= p->nchans || !p->chans[c].name)
        return "?";
    return p->chans[c].name;
}

const char *weir__plan_method_name(const struct weir__plan_actor *a, uint32_t m)
{
    if (!a->methods || m >= a->nmethods || !a->methods[m].name)
        return "?";
    return a->methods[m].name;
}


/* ---- save / load ----------------------------------------------------------- */

/* Put the path into a codec/validation message: "plan: x" -> "plan 'path': x". */
static int with_path(int ret, const char *path)
{
    const char *m = weir_errmsg();
    if (!strncmp(m, "plan: ", 6)) {
        char tail[512];
        snprintf(tail, sizeof tail, "%s", m + 6);
        weir__seterr(ret, "plan '%s': %s", path, tail);
    }
    return ret;
}

int weir__plan_save(const struct weir__plan *p, const char *path)
{
    if (!p || !path)
        return weir__seterr(-EINVAL, "plan: save: NULL argument");
    uint8_t *buf = NULL;
    size_t len = 0;
    int ret = weir__plan_encode(p, &buf, &len);
    if (ret < 0)
        return with_path(ret, path);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (fd < 0) {
        ret = -errno;
        weir__seterr(ret, "plan '%s': cannot create: %s", path, weir__strerror(ret));
        goto out;
    }
    for (size_t off = 0; off < len;) {
        ssize_t n = write(fd, buf + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            ret = n < 0 ? -errno : -EIO;
            weir__seterr(ret, "plan '%s': write failed: %s", path, weir__strerror(ret));
            close(fd);
            goto out;
        }
        off += (size_t)n;
    }
    if (close(fd) < 0) {
        ret = -errno;
        weir__seterr(ret, "plan '%s': write failed: %s", path, weir__strerror(ret));
    }
out:
    free(buf);
    return ret;
}

int weir__plan_load(const char *path, struct weir__plan **out)
{
    if (!path || !out)
        return weir__seterr(-EINVAL, "plan: load: NULL argument");
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int ret = -errno;
        return weir__seterr(ret, "plan '%s': cannot open: %s", path, weir__strerror(ret));
    }
    /* Read to EOF (works for pipes too), at most one byte past the limit. */
    size_t max = weir__plan_max_bytes, len = 0, cap = 0;
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size >= 0 &&
        (uint64_t)st.st_size < max)
        cap = (size_t)st.st_size + 1;
    if (cap < 4096)
        cap = 4096;
    uint8_t *buf = malloc(cap);
    int ret = 0;
    if (!buf) {
        ret = weir__seterr(-ENOMEM, "plan '%s': out of memory", path);
        goto out;
    }
    for (;;) {
        if (len == cap) {
            if (cap > max) {
                ret = weir__seterr(-EBADMSG, "plan '%s': too large (more than %zu bytes)", path,
                                   max);
                goto out;
            }
            size_t ncap = cap * 2 > max + 1 ? max + 1 : cap * 2;
            uint8_t *nb = realloc(buf, ncap);
            if (!nb) {
                ret = weir__seterr(-ENOMEM, "plan '%s': out of memory", path);
                goto out;
            }
            buf = nb;
            cap = ncap;
        }
        ssize_t n = read(fd, buf + len, cap - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            ret = -errno;
            weir__seterr(ret, "plan '%s': cannot read: %s", path, weir__strerror(ret));
            goto out;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    ret = weir__plan_decode(buf, len, out);
    if (ret < 0)
        with_path(ret, path);
out:
    close(fd);
    free(buf);
    return ret;
}

