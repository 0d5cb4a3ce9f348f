// SPDX-License-Identifier: MIT
/*
 * channels/link_codec.cc - the control payloads of a link (HELLO, WELCOME,
 * REFUSE) <-> FlatBuffers (channels/link.fbs), behind channels/link_codec.h.
 *
 * Design notes. As compiler/plan_codec.cc: flatc generates
 * channels/link_generated.h at build time, the official header-only
 * runtime builds and verifies, every exception becomes -ENOMEM, and
 * nothing C++ crosses the header. Decoding order: size (>= 8, <=
 * WEIR__FRAME_CTL_MAX), identifier "WLNK", verifier (bounded depth and
 * tables), the right table present, every field in range; strings and the
 * token are copied into the fixed arrays of the C structs, so nothing is
 * allocated at a size the peer chose (an unaligned input is copied into an
 * aligned buffer of WEIR__FRAME_CTL_MAX bytes on the caller's stack, not a
 * thread_local one: every thread of the program would carry it).
 */
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <vector>

#include "channels/link_generated.h"

extern "C" {
#include "channels/err.h"
#include "channels/frame.h"
#include "channels/link_codec.h"
}

namespace fb = flatbuffers;
namespace wl = weir::link;

namespace {

int finish(fb::FlatBufferBuilder &b, fb::Offset<wl::Control> root, uint8_t *out, size_t cap)
{
    wl::FinishControlBuffer(b, root);
    if (b.GetSize() > cap)
        return weir__seterr(-EMSGSIZE, "link: control frame of %u bytes over %zu", b.GetSize(),
                            cap);
    std::memcpy(out, b.GetBufferPointer(), b.GetSize());
    return static_cast<int>(b.GetSize());
}

// Verify and return the root, or nullptr with the error set.
const wl::Control *open_ctl(const uint8_t *buf, size_t len, const char *what, uint8_t *tmp)
{
    if (!buf || len < 8 || len > WEIR__FRAME_CTL_MAX) {
        weir__seterr(-EBADMSG, "link %s: control payload of %zu bytes (expected 8..%u)", what, len,
                     WEIR__FRAME_CTL_MAX);
        return nullptr;
    }
    if (!wl::ControlBufferHasIdentifier(buf)) {
        weir__seterr(-EBADMSG, "link %s: not a weir link control frame (no 'WLNK' identifier)",
                     what);
        return nullptr;
    }
    if (reinterpret_cast<uintptr_t>(buf) % alignof(uint64_t)) {
        std::memcpy(tmp, buf, len);
        buf = tmp;
    }
    fb::Verifier::Options vo;
    vo.max_depth = 8;
    vo.max_tables = 4 * WEIR__LINK_MAX_STREAMS + 16;
    vo.check_alignment = true;
    fb::Verifier v(buf, len, vo);
    if (!wl::VerifyControlBuffer(v)) {
        weir__seterr(-EBADMSG, "link %s: control frame failed FlatBuffers verification (%zu "
                     "bytes: truncated or corrupt)", what, len);
        return nullptr;
    }
    return wl::GetControl(buf);
}

int copy_str(const fb::String *s, char *dst, size_t cap, const char *what, const char *field)
{
    if (!s)
        return weir__seterr(-EPROTO, "link %s: missing %s", what, field);
    if (s->size() >= cap)
        return weir__seterr(-EPROTO, "link %s: %s of %u bytes (at most %zu)", what, field,
                            s->size(), cap - 1);
    if (std::memchr(s->data(), '\0', s->size()))
        return weir__seterr(-EPROTO, "link %s: %s contains a NUL byte", what, field);
    std::memcpy(dst, s->data(), s->size());
    dst[s->size()] = '\0';
    return 0;
}

} // namespace

extern "C" {

int weir__link_hello_encode(const struct weir__link_hello *h, uint8_t *out, size_t cap)
{
    if (!h || !out || h->nstreams > WEIR__LINK_MAX_STREAMS || h->token_len > WEIR__LINK_MAX_TOKEN)
        return weir__seterr(-EINVAL, "link HELLO: encode: bad argument");
    try {
        fb::FlatBufferBuilder b(512);
        std::vector<fb::Offset<wl::StreamOpen>> so;
        for (uint32_t i = 0; i < h->nstreams; i++)
            so.push_back(wl::CreateStreamOpen(b, h->streams[i].stream,
                                              b.CreateString(h->streams[i].channel),
                                              h->streams[i].next_seq));
        auto tok = b.CreateVector(h->token, h->token_len);
        auto sv = b.CreateVector(so);
        auto hello = wl::CreateHello(b, h->version, tok, h->sender_id, h->max_data, sv);
        return finish(b, wl::CreateControl(b, hello), out, cap);
    } catch (...) {
        return weir__seterr(-ENOMEM, "link HELLO: out of memory while encoding");
    }
}

int weir__link_welcome_encode(const struct weir__link_welcome *w, uint8_t *out, size_t cap)
{
    if (!w || !out || w->nstreams > WEIR__LINK_MAX_STREAMS)
        return weir__seterr(-EINVAL, "link WELCOME: encode: bad argument");
    try {
        fb::FlatBufferBuilder b(256);
        std::vector<fb::Offset<wl::StreamAccept>> sa;
        for (uint32_t i = 0; i < w->nstreams; i++)
            sa.push_back(wl::CreateStreamAccept(b, w->streams[i].stream, w->streams[i].next_seq,
                                                w->streams[i].credits));
        auto sv = b.CreateVector(sa);
        auto wel = wl::CreateWelcome(b, w->version, sv);
        return finish(b, wl::CreateControl(b, 0, wel), out, cap);
    } catch (...) {
        return weir__seterr(-ENOMEM, "link WELCOME: out of memory while encoding");
    }
}

int weir__link_refuse_encode(const char *reason, const uint32_t *ended, uint32_t nended,
                             uint8_t *out, size_t cap)
{
    if (!reason || !out || (nended && !ended) || nended > WEIR__LINK_MAX_STREAMS)
        return weir__seterr(-EINVAL, "link REFUSE: encode: bad argument");
    try {
        fb::FlatBufferBuilder b(256);
        size_t n = std::strlen(reason);
        if (n > WEIR__LINK_MAX_REASON)
            n = WEIR__LINK_MAX_REASON;
        auto rs = b.CreateString(reason, n);
        auto ev = nended ? b.CreateVector(ended, nended) : fb::Offset<fb::Vector<uint32_t>>();
        auto r = wl::CreateRefuse(b, rs, ev);
        return finish(b, wl::CreateControl(b, 0, 0, r), out, cap);
    } catch (...) {
        return weir__seterr(-ENOMEM, "link REFUSE: out of memory while encoding");
    }
}

int weir__link_hello_decode(const uint8_t *buf, size_t len, struct weir__link_hello *out)
{
    alignas(8) uint8_t tmp[WEIR__FRAME_CTL_MAX];
    const wl::Control *c = open_ctl(buf, len, "HELLO", tmp);
    if (!c)
        return -EBADMSG;
    const wl::Hello *h = c->hello();
    if (!h)
        return weir__seterr(-EPROTO, "link HELLO: the control frame holds no Hello");
    std::memset(out, 0, sizeof *out);
    out->version = h->version();
    out->sender_id = h->sender_id();
    out->max_data = h->max_data();
    if (const auto *t = h->token()) {
        if (t->size() > WEIR__LINK_MAX_TOKEN)
            return weir__seterr(-EPROTO, "link HELLO: token of %u bytes (at most %d)", t->size(),
                                WEIR__LINK_MAX_TOKEN);
        out->token_len = t->size();
        std::memcpy(out->token, t->data(), t->size());
    }
    const auto *sv = h->streams();
    if (!sv || sv->size() == 0)
        return weir__seterr(-EPROTO, "link HELLO: opens no stream");
    if (sv->size() > WEIR__LINK_MAX_STREAMS)
        return weir__seterr(-EPROTO, "link HELLO: opens %u streams (at most %d)", sv->size(),
                            WEIR__LINK_MAX_STREAMS);
    for (uint32_t i = 0; i < sv->size(); i++) {
        const wl::StreamOpen *s = sv->Get(i);
        if (s->stream() == 0)
            return weir__seterr(-EPROTO, "link HELLO: stream %u has id 0", i);
        for (uint32_t j = 0; j < i; j++)
            if (out->streams[j].stream == s->stream())
                return weir__seterr(-EPROTO, "link HELLO: stream id %u opened twice",
                                    s->stream());
        out->streams[i].stream = s->stream();
        out->streams[i].next_seq = s->next_seq();
        int r = copy_str(s->channel(), out->streams[i].channel, sizeof out->streams[i].channel,
                         "HELLO", "channel identity");
        if (r < 0)
            return r;
    }
    out->nstreams = sv->size();
    return 0;
}

int weir__link_welcome_decode(const uint8_t *buf, size_t len, struct weir__link_welcome *out)
{
    alignas(8) uint8_t tmp[WEIR__FRAME_CTL_MAX];
    const wl::Control *c = open_ctl(buf, len, "WELCOME", tmp);
    if (!c)
        return -EBADMSG;
    const wl::Welcome *w = c->welcome();
    if (!w)
        return weir__seterr(-EPROTO, "link WELCOME: the control frame holds no Welcome");
    std::memset(out, 0, sizeof *out);
    out->version = w->version();
    const auto *sv = w->streams();
    uint32_t n = sv ? sv->size() : 0;
    if (n > WEIR__LINK_MAX_STREAMS)
        return weir__seterr(-EPROTO, "link WELCOME: %u streams (at most %d)", n,
                            WEIR__LINK_MAX_STREAMS);
    for (uint32_t i = 0; i < n; i++) {
        const wl::StreamAccept *s = sv->Get(i);
        /* credits 0 is valid: the receiving channel is full, an ACK grants later */
        if (s->stream() == 0)
            return weir__seterr(-EPROTO, "link WELCOME: stream entry %u: id 0 (must be >= 1)", i);
        out->streams[i].stream = s->stream();
        out->streams[i].next_seq = s->next_seq();
        out->streams[i].credits = s->credits();
    }
    out->nstreams = n;
    return 0;
}

int weir__link_refuse_decode(const uint8_t *buf, size_t len, struct weir__link_refuse *out)
{
    alignas(8) uint8_t tmp[WEIR__FRAME_CTL_MAX];
    const wl::Control *c = open_ctl(buf, len, "REFUSE", tmp);
    if (!c)
        return -EBADMSG;
    const wl::Refuse *r = c->refuse();
    if (!r)
        return weir__seterr(-EPROTO, "link REFUSE: the control frame holds no Refuse");
    out->nended = 0;
    out->reason[0] = '\0';
    char tmpr[WEIR__LINK_MAX_REASON + 1];
    int ret = copy_str(r->reason(), tmpr, sizeof tmpr, "REFUSE", "reason");
    if (ret < 0)
        return ret;
    for (char *p = tmpr; *p; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p == 0x7f)
            *p = '?'; // one line of printable text, whatever the peer sent
    const auto *ev = r->ended();
    uint32_t n = ev ? ev->size() : 0;
    if (n > WEIR__LINK_MAX_STREAMS)
        return weir__seterr(-EPROTO, "link REFUSE: %u ended streams (at most %d)", n,
                            WEIR__LINK_MAX_STREAMS);
    for (uint32_t i = 0; i < n; i++) {
        uint32_t id = ev->Get(i);
        if (id == 0)
            return weir__seterr(-EPROTO, "link REFUSE: ended stream entry %u: id 0", i);
        for (uint32_t j = 0; j < i; j++)
            if (out->ended[j] == id)
                return weir__seterr(-EPROTO, "link REFUSE: stream %u ended twice", id);
        out->ended[i] = id;
    }
    out->nended = n;
    std::snprintf(out->reason, sizeof out->reason, "%s", tmpr);
    return 0;
}

} // extern "C"
