/* SPDX-License-Identifier: MIT */
/*
 * channels/link.c - a channel carried to another process over a transport
 * (include/weir/link.h): the one-stream case of a link connection.
 *
 * Design notes. Everything a link does - frames, HELLO / WELCOME, credits
 * as the receiving channel's free slots, acks, heartbeats, resume after a
 * cut, the timeout - lives in channels/link_conn.c, which carries many
 * streams on one connection (channels/link.h). A standalone link is a
 * connection with exactly one stream, id 1, whose channel identity is
 * weir_chan_name() of its channel; its status and counters are the
 * connection's. So the standalone API and the multi-node engine share one
 * implementation and one wire protocol.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include <weir/chan.h>
#include <weir/link.h>

#include "channels/err.h"
#include "channels/link.h"

#define STREAM_ID 1u
#define MSG_LEN 240

struct weir_link {
    weir__conn *cn;
};

/* Both ends give up alike: free what was built, keep the first reason. */
static weir_link *link_abort(weir__conn *cn)
{
    char msg[MSG_LEN];
    int code = weir_errcode();
    snprintf(msg, sizeof msg, "%s", weir_errmsg());
    weir__conn_free(cn);
    weir__seterr(code, "%s", msg);
    return NULL;
}

static weir_link *link_wrap(weir__conn *cn)
{
    weir_link *l = malloc(sizeof *l);
    if (!l) {
        weir__seterr(-ENOMEM, "link %s: out of memory", weir__conn_endpoint(cn));
        return link_abort(cn);
    }
    l->cn = cn;
    return l;
}

WEIR_API weir_link *weir_link_listen(weir_chan *w, const char *endpoint, const weir_link_opts *o)
{
    weir__clearerr();
    if (!w) {
        weir__seterr(-EINVAL, "link %.79s: NULL channel", endpoint ? endpoint : "(null)");
        return NULL;
    }
    weir__conn *cn = weir__conn_listen(endpoint, o);
    if (!cn)
        return NULL;
    if (weir__conn_add_recv_stream(cn, STREAM_ID, w) < 0 || weir__conn_start(cn) < 0)
        return link_abort(cn);
    return link_wrap(cn);
}

WEIR_API weir_link *weir_link_connect(weir_chan *c, const char *endpoint, const weir_link_opts *o)
{
    weir__clearerr();
    if (!c) {
        weir__seterr(-EINVAL, "link %.79s: NULL channel", endpoint ? endpoint : "(null)");
        return NULL;
    }
    weir__conn *cn = weir__conn_dial(endpoint, o);
    if (!cn)
        return NULL;
    if (weir__conn_add_send_stream(cn, STREAM_ID, c, -1) < 0 || weir__conn_start(cn) < 0)
        return link_abort(cn);
    return link_wrap(cn);
}

WEIR_API const char *weir_link_endpoint(const weir_link *l)
{
    return l ? weir__conn_endpoint(l->cn) : "(null)";
}

WEIR_API int weir_link_status(const weir_link *l)
{
    if (!l)
        return weir__seterr(-EINVAL, "link (null): status");
    return weir__conn_status(l->cn);
}

WEIR_API int weir_link_stats(const weir_link *l, struct weir_link_stats *st)
{
    if (!l || !st)
        return weir__seterr(-EINVAL, "link: weir_link_stats needs a link and a buffer");
    return weir__conn_stats(l->cn, st);
}

WEIR_API int weir_link_free(weir_link *l)
{
    if (!l)
        return 0;
    int s = weir__conn_free(l->cn);
    free(l);
    return s;
}
