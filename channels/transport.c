/* SPDX-License-Identifier: MIT */
/* channels/transport.c - choosing a transport backend, parsing endpoints. */
#include "channels/transport.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <weir/link.h>

#include "channels/err.h"
#include "weir_config.h"

const struct weir__tp_ops *weir__tp_get(int transport)
{
    switch (transport) {
    case WEIR_TRANSPORT_URING:
#if WEIR_HAVE_URING
        return &weir__tp_uring;
#else
        weir__seterr(-ENOSYS, "link: transport uring: this build has no liburing (meson -During)");
        return NULL;
#endif
    case WEIR_TRANSPORT_ZMQ:
#if WEIR_HAVE_ZMQ_TRANSPORT
        return &weir__tp_zmq;
#else
        weir__seterr(-ENOSYS, "link: transport zmq: this build has no libzmq (meson -Dzmq)");
        return NULL;
#endif
    default:
        weir__seterr(-EINVAL, "link: unknown transport %d (WEIR_TRANSPORT_URING or "
                     "WEIR_TRANSPORT_ZMQ)", transport);
        return NULL;
    }
}

int weir__tp_parse_endpoint(const char *ep, char *host, size_t hostn, uint16_t *port)
{
    if (!ep)
        return weir__seterr(-EINVAL, "link: NULL endpoint");
    if (strncmp(ep, "tcp://", 6) != 0)
        return weir__seterr(-EINVAL, "link endpoint '%.100s': expected tcp://HOST:PORT", ep);
    const char *h = ep + 6, *he, *colon;
    if (*h == '[') {
        he = strchr(h, ']');
        if (!he || he[1] != ':')
            return weir__seterr(-EINVAL, "link endpoint '%.100s': bad [IPv6]:PORT", ep);
        colon = he + 1;
        h++;
    } else {
        colon = strrchr(h, ':');
        if (!colon)
            return weir__seterr(-EINVAL, "link endpoint '%.100s': no :PORT", ep);
        he = colon;
    }
    size_t hl = (size_t)(he - h);
    if (hl == 0 || hl >= hostn)
        return weir__seterr(-EINVAL, "link endpoint '%.100s': %s host", ep,
                            hl ? "too long a" : "empty");
    const char *p = colon + 1;
    if (!*p)
        return weir__seterr(-EINVAL, "link endpoint '%.100s': empty port", ep);
    unsigned long v = 0;
    for (const char *q = p; *q; q++) {
        if (*q < '0' || *q > '9' || v > 65535)
            return weir__seterr(-EINVAL, "link endpoint '%.100s': bad port '%s'", ep, p);
        v = v * 10 + (unsigned long)(*q - '0');
    }
    if (v > 65535)
        return weir__seterr(-EINVAL, "link endpoint '%.100s': port %lu over 65535", ep, v);
    memcpy(host, h, hl);
    host[hl] = '\0';
    *port = (uint16_t)v;
    return 0;
}
