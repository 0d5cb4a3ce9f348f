/* SPDX-License-Identifier: MIT */
/* channels/err.h - the thread-local last error behind weir_errmsg(). */
#ifndef WEIR_ERR_H
#define WEIR_ERR_H

#include <weir/common.h>

/* Record `code` (a negative errno) and a printf-style one-line reason; returns code. */
int weir__seterr(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* weir__seterr with "channel 'NAME': " in front; returns code. */
int weir__chan_err(const char *name, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Clear the last error (called at the start of calls that may fail). */
void weir__clearerr(void);
/* Append " (<strerror>)" style context is the caller's job; this gives the text. */
const char *weir__strerror(int err);

#endif
