/* SPDX-License-Identifier: MIT */
/*
 * channels/err.c - weir_errmsg() and weir_errcode().
 *
 * Lives in channels/ because channels are the lowest layer and every other
 * layer reports through it. The message buffer is thread-local, so a
 * failure on one thread never clobbers another thread's reason.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "channels/err.h"

static _Thread_local char errbuf[512];
static _Thread_local int errcode;

int weir__seterr(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errbuf, sizeof errbuf, fmt, ap);
    va_end(ap);
    errcode = code;
    return code;
}

void weir__clearerr(void)
{
    errcode = 0;
    errbuf[0] = '\0';
}

/* "channel 'NAME': " + the reason (channels/ring*.c). */
int weir__chan_err(const char *name, int code, const char *fmt, ...)
{
    char buf[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return weir__seterr(code, "channel '%s': %s", name, buf);
}

const char *weir__strerror(int err)
{
    if (err < 0)
        err = -err;
    return strerror(err);
}

WEIR_API const char *weir_errmsg(void)
{
    return errbuf;
}

WEIR_API int weir_errcode(void)
{
    return errcode;
}

WEIR_API uint64_t weir_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}
