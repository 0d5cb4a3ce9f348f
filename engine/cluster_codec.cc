// SPDX-License-Identifier: MIT
/*
 * engine/cluster_codec.cc - the control plane's messages <-> FlatBuffers
 * (engine/cluster.fbs), behind engine/cluster.h.
 *
 * Design notes. As channels/link_codec.cc: flatc generates
 * engine/cluster_generated.h at build time, the official header-only
 * runtime builds and verifies, every exception becomes -ENOMEM, and
 * nothing C++ crosses the header. Decoding order: size (>= 8, <=
 * WEIR__CLUSTER_MSG_MAX), identifier "WCLU", verifier (bounded depth and
 * tables), a known body, then every field's range; strings and the token
 * are copied into the fixed arrays of the C structs and a TABLE into the
 * caller's array, so nothing is allocated at a size the peer chose (the
 * one allocation is an aligned copy of the input when it is unaligned,
 * bounded by WEIR__CLUSTER_MSG_MAX).
 */
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "engine/cluster_generated.h"

extern "C" {
#include "channels/err.h"
#include "engine/cluster.h"
}

namespace fb = flatbuffers;
namespace wc = weir::cluster;

namespace {

const char *kind_name(int k)
{
    static const char *const names[] = {"?",       "JOIN",      "TABLE",    "REFUSE",
                                        "ARRIVE",  "RELEASE",   "HEARTBEAT", "TEARDOWN",
                                        "BYE",     "FAILURE",   "STATS"};
    return k >= 1 && k <= WEIR__CM_MAX ? names[k] : names[0];
}

int copy_str(const fb::String *s, char *dst, size_t cap, const char *what, const char *field,
             bool required)
{
    dst[0] = '\0';
    if (!s) {
        if (required)
            return weir__seterr(-EPROTO, "cluster %s: missing %s", what, field);
        return 0;
    }
    if (s->size() >= cap)
        return weir__seterr(-EPROTO, "cluster %s: %s of %u bytes (at most %zu)", what, field,
                            s->size(), cap - 1);
    if (std::memchr(s->data(), '\0', s->size()))
        return weir__seterr(-EPROTO, "cluster %s: %s contains a NUL byte", what, field);
    std::memcpy(dst, s->data(), s->size());
    dst[s->size()] = '\0';
    // One line of printable text, whatever the peer sent.
    for (char *p = dst; *p; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p == 0x7f)
            *p = '?';
    return 0;
}

int copy_eps(const fb::Vector<fb::Offset<fb::String>> *v, struct weir__cluster_rank *r,
             const char *what)
{
    unsigned n = v ? v->size() : 0;
    if (n > WEIR__CLUSTER_MAX_EP)
        return weir__seterr(-EPROTO, "cluster %s: %u endpoints (at most %d)", what, n,
                            WEIR__CLUSTER_MAX_EP);
    for (unsigned i = 0; i < n; i++) {
        int e = copy_str(v->Get(i), r->ep[i], sizeof r->ep[i], what, "endpoint", true);
        if (e < 0)
            return e;
        if (!r->ep[i][0])
            return weir__seterr(-EPROTO, "cluster %s: endpoint %u is empty", what, i);
    }
    r->nep = n;
    return 0;
}

int check_code(int32_t code, const char *what)
{
    if (code >= 0 || code < -4095)
        return weir__seterr(-EPROTO, "cluster %s: code %d is not a negative errno", what, code);
    return 0;
}

fb::Offset<fb::Vector<fb::Offset<fb::String>>> make_eps(fb::FlatBufferBuilder &b,
                                                          const struct weir__cluster_rank *r)
{
    std::vector<fb::Offset<fb::String>> v;
    for (unsigned i = 0; i < r->nep; i++)
        v.push_back(b.CreateString(r->ep[i]));
    return b.CreateVector(v);
}

} // namespace

extern "C" {

int weir__cluster_msg_encode(const struct weir__cluster_msg *m, uint8_t **out, size_t *len)
{
    if (!m || !out || !len || m->kind < 1 || m->kind > WEIR__CM_MAX)
        return weir__seterr(-EINVAL, "cluster: encode: bad argument");
    if (m->token_len > WEIR__CLUSTER_TOKEN_MAX || m->self.nep > WEIR__CLUSTER_MAX_EP ||
        (m->kind == WEIR__CM_TABLE && (!m->ranks || m->nranks > m->ranks_cap)) ||
        (m->kind == WEIR__CM_STATS &&
         ((m->nchans && !m->chans) || m->nchans > WEIR__CLUSTER_STATS_MAX ||
          (m->nlinks && !m->links) || m->nlinks > WEIR__CLUSTER_LINKS_MAX ||
          (m->nactors && !m->actors) || m->nactors > WEIR__CLUSTER_ACTORS_MAX)))
        return weir__seterr(-EINVAL, "cluster %s: encode: field out of range",
                            kind_name(m->kind));
    try {
        fb::FlatBufferBuilder b(256);
        fb::Offset<void> body;
        switch (m->kind) {
        case WEIR__CM_JOIN: {
            auto tok = b.CreateVector(m->token, m->token_len);
            auto host = b.CreateString(m->self.host);
            auto eps = make_eps(b, &m->self);
            body = wc::CreateJoin(b, m->version, m->rank, m->world_size, m->plan_hash, tok, host,
                                  m->self.pid, eps).Union();
            break;
        }
        case WEIR__CM_TABLE: {
            std::vector<fb::Offset<wc::RankInfo>> v;
            for (unsigned i = 0; i < m->nranks; i++) {
                const struct weir__cluster_rank *r = &m->ranks[i];
                if (r->nep > WEIR__CLUSTER_MAX_EP)
                    return weir__seterr(-EINVAL, "cluster TABLE: encode: rank %d has %u "
                                        "endpoints", r->rank, r->nep);
                auto host = b.CreateString(r->host);
                auto eps = make_eps(b, r);
                v.push_back(wc::CreateRankInfo(b, r->rank, r->pid, host, eps));
            }
            body = wc::CreateEndpointTable(b, m->world_size, b.CreateVector(v)).Union();
            break;
        }
        case WEIR__CM_REFUSE:
            body = wc::CreateRefuse(b, m->code, b.CreateString(m->reason)).Union();
            break;
        case WEIR__CM_ARRIVE:
            body = wc::CreateArrive(b, m->rank, m->epoch).Union();
            break;
        case WEIR__CM_RELEASE:
            body = wc::CreateRelease(b, m->epoch).Union();
            break;
        case WEIR__CM_HEARTBEAT:
            body = wc::CreateHeartbeat(b, m->rank, m->seq).Union();
            break;
        case WEIR__CM_TEARDOWN:
            body = wc::CreateTeardown(b).Union();
            break;
        case WEIR__CM_BYE:
            body = wc::CreateBye(b, m->rank).Union();
            break;
        case WEIR__CM_FAILURE:
            body = wc::CreateFailure(b, m->rank, m->code, b.CreateString(m->reason)).Union();
            break;
        case WEIR__CM_STATS: {
            std::vector<fb::Offset<wc::ChanStat>> v;
            for (unsigned i = 0; i < m->nchans; i++) {
                const struct weir__cluster_chan_stat *c = &m->chans[i];
                const struct weir_chan_stats *st = &c->st;
                unsigned nr = st->nreaders < WEIR_CHAN_MAX_READERS ? st->nreaders
                                                                    : WEIR_CHAN_MAX_READERS;
                std::vector<wc::ReaderStat> rd;
                for (unsigned r = 0; r < nr; r++)
                    rd.emplace_back(st->readers[r].id, st->readers[r].pid, c->who[r], 0u,
                                    st->readers[r].consumed, st->readers[r].starved_ns);
                auto name = b.CreateString(st->name);
                auto rv = b.CreateVectorOfStructs(rd);
                v.push_back(wc::CreateChanStat(b, c->chan, name, st->messages, st->bytes,
                                               st->errors, st->writer_blocked_ns, st->grows,
                                               st->slot_bytes, st->depth, st->closed != 0, rv));
            }
            std::vector<fb::Offset<wc::LinkStat>> lv;
            for (unsigned i = 0; i < m->nlinks; i++) {
                const struct weir__cluster_link_stat *l = &m->links[i];
                const struct weir_dag_link_stats *st = &l->st;
                auto peer = b.CreateString(st->peer);
                lv.push_back(wc::CreateLinkStat(b, st->chan, l->index, st->peer_rank,
                                                st->sending != 0, st->status, peer, st->messages,
                                                st->bytes, st->acked, st->credit_stalls,
                                                st->conn_streams, st->conn, st->frames,
                                                st->batches, st->reconnects, st->last_rtt_ns,
                                                st->stream_frames, st->stream_batches));
            }
            std::vector<fb::Offset<wc::ActorStat>> av;
            for (unsigned i = 0; i < m->nactors; i++) {
                const struct weir__cluster_actor_stat *a = &m->actors[i];
                if (a->nmethods > WEIR__CLUSTER_METHODS_MAX)
                    return weir__seterr(-EINVAL, "cluster STATS: encode: actor %u has %u "
                                        "methods", a->actor, a->nmethods);
                std::vector<wc::MethodStat> ms;
                for (unsigned k = 0; k < a->nmethods; k++)
                    ms.emplace_back(a->methods[k].calls, a->methods[k].errors,
                                    a->methods[k].busy_ns);
                auto mv = b.CreateVectorOfStructs(ms);
                av.push_back(wc::CreateActorStat(b, a->actor, a->pid, a->restarts,
                                                 a->input_starved_ns, a->output_blocked_ns, mv));
            }
            auto cvec = b.CreateVector(v);
            auto lvec = b.CreateVector(lv);
            auto avec = b.CreateVector(av);
            body = wc::CreateStats(b, m->rank, cvec, lvec, avec, m->at_ns).Union();
            break;
        }
        }
        wc::FinishMsgBuffer(b, wc::CreateMsg(b, static_cast<wc::Body>(m->kind), body));
        if (b.GetSize() > WEIR__CLUSTER_MSG_MAX)
            return weir__seterr(-EMSGSIZE, "cluster %s: %u bytes (at most %u)",
                                kind_name(m->kind), b.GetSize(), WEIR__CLUSTER_MSG_MAX);
        uint8_t *p = static_cast<uint8_t *>(std::malloc(b.GetSize()));
        if (!p)
            return weir__seterr(-ENOMEM, "cluster %s: out of memory", kind_name(m->kind));
        std::memcpy(p, b.GetBufferPointer(), b.GetSize());
        *out = p;
        *len = b.GetSize();
        return 0;
    } catch (...) {
        return weir__seterr(-ENOMEM, "cluster %s: out of memory while encoding",
                            kind_name(m->kind));
    }
}

int weir__cluster_msg_decode(const uint8_t *buf, size_t len, struct weir__cluster_msg *out)
{
    struct weir__cluster_rank *ranks = out->ranks;
    unsigned ranks_cap = out->ranks_cap;
    struct weir__cluster_chan_stat *chans = out->chans;
    unsigned chans_cap = out->chans_cap;
    struct weir__cluster_link_stat *links = out->links;
    unsigned links_cap = out->links_cap;
    struct weir__cluster_actor_stat *actors = out->actors;
    unsigned actors_cap = out->actors_cap;
    std::memset(out, 0, sizeof *out);
    out->ranks = ranks;
    out->ranks_cap = ranks_cap;
    out->chans = chans;
    out->chans_cap = chans_cap;
    out->links = links;
    out->links_cap = links_cap;
    out->actors = actors;
    out->actors_cap = actors_cap;
    if (!buf || len < 8 || len > WEIR__CLUSTER_MSG_MAX)
        return weir__seterr(-EBADMSG, "cluster: control message of %zu bytes (expected 8..%u)",
                            len, WEIR__CLUSTER_MSG_MAX);
    if (!wc::MsgBufferHasIdentifier(buf))
        return weir__seterr(-EBADMSG, "cluster: not a weir control message (%zu bytes, no "
                            "'WCLU' identifier)", len);
    std::vector<uint8_t> copy;
    if (reinterpret_cast<uintptr_t>(buf) % alignof(uint64_t)) {
        try {
            copy.assign(buf, buf + len);
        } catch (...) {
            return weir__seterr(-ENOMEM, "cluster: out of memory");
        }
        buf = copy.data();
    }
    fb::Verifier::Options vo;
    vo.max_depth = 8;
    vo.max_tables = 4 * WEIR_MAX_RANKS + WEIR__CLUSTER_STATS_MAX + WEIR__CLUSTER_LINKS_MAX +
                    WEIR__CLUSTER_ACTORS_MAX + 16;
    vo.check_alignment = true;
    fb::Verifier v(buf, len, vo);
    if (!wc::VerifyMsgBuffer(v))
        return weir__seterr(-EBADMSG, "cluster: control message failed FlatBuffers verification "
                            "(%zu bytes: truncated or corrupt)", len);
    const wc::Msg *msg = wc::GetMsg(buf);
    int k = static_cast<int>(msg->body_type());
    if (k < 1 || k > WEIR__CM_MAX || !msg->body())
        return weir__seterr(-EPROTO, "cluster: control message of unknown kind %d", k);
    out->kind = k;
    const char *what = kind_name(k);
    int e = 0;
    switch (k) {
    case WEIR__CM_JOIN: {
        const wc::Join *j = msg->body_as_Join();
        out->version = j->version();
        out->rank = j->rank();
        out->world_size = j->world_size();
        out->plan_hash = j->plan_hash();
        out->self.rank = j->rank();
        out->self.pid = j->pid();
        if (const auto *t = j->token()) {
            if (t->size() > WEIR__CLUSTER_TOKEN_MAX)
                return weir__seterr(-EPROTO, "cluster JOIN: token of %u bytes (at most %d)",
                                    t->size(), WEIR__CLUSTER_TOKEN_MAX);
            out->token_len = t->size();
            std::memcpy(out->token, t->data(), t->size());
        }
        if ((e = copy_str(j->host(), out->self.host, sizeof out->self.host, what, "host",
                          false)) < 0)
            return e;
        return copy_eps(j->endpoints(), &out->self, what);
    }
    case WEIR__CM_TABLE: {
        const wc::EndpointTable *t = msg->body_as_EndpointTable();
        out->world_size = t->world_size();
        const auto *rv = t->ranks();
        unsigned n = rv ? rv->size() : 0;
        if (t->world_size() < 1 || t->world_size() > WEIR_MAX_RANKS ||
            n != static_cast<unsigned>(t->world_size()))
            return weir__seterr(-EPROTO, "cluster TABLE: %u ranks for a world of %d", n,
                                t->world_size());
        if (!out->ranks || n > out->ranks_cap)
            return weir__seterr(-EPROTO, "cluster TABLE: %u ranks (this rank expects %u)", n,
                                out->ranks_cap);
        for (unsigned i = 0; i < n; i++) {
            const wc::RankInfo *ri = rv->Get(i);
            struct weir__cluster_rank *r = &out->ranks[i];
            std::memset(r, 0, sizeof *r);
            if (ri->rank() != static_cast<int32_t>(i))
                return weir__seterr(-EPROTO, "cluster TABLE: entry %u is rank %d", i,
                                    ri->rank());
            r->rank = ri->rank();
            r->pid = ri->pid();
            if ((e = copy_str(ri->host(), r->host, sizeof r->host, what, "host", false)) < 0 ||
                (e = copy_eps(ri->endpoints(), r, what)) < 0)
                return e;
        }
        out->nranks = n;
        return 0;
    }
    case WEIR__CM_REFUSE: {
        const wc::Refuse *r = msg->body_as_Refuse();
        out->code = r->code();
        if ((e = check_code(r->code(), what)) < 0)
            return e;
        return copy_str(r->reason(), out->reason, sizeof out->reason, what, "reason", true);
    }
    case WEIR__CM_ARRIVE:
        out->rank = msg->body_as_Arrive()->rank();
        out->epoch = msg->body_as_Arrive()->epoch();
        return 0;
    case WEIR__CM_RELEASE:
        out->epoch = msg->body_as_Release()->epoch();
        return 0;
    case WEIR__CM_HEARTBEAT:
        out->rank = msg->body_as_Heartbeat()->rank();
        out->seq = msg->body_as_Heartbeat()->seq();
        return 0;
    case WEIR__CM_TEARDOWN:
        return 0;
    case WEIR__CM_BYE:
        out->rank = msg->body_as_Bye()->rank();
        return 0;
    case WEIR__CM_FAILURE: {
        const wc::Failure *f = msg->body_as_Failure();
        out->rank = f->rank();
        out->code = f->code();
        if ((e = check_code(f->code(), what)) < 0)
            return e;
        return copy_str(f->reason(), out->reason, sizeof out->reason, what, "reason", true);
    }
    case WEIR__CM_STATS: {
        const wc::Stats *sm = msg->body_as_Stats();
        out->rank = sm->rank();
        out->at_ns = sm->at_ns();
        const auto *cv = sm->chans();
        unsigned n = cv ? cv->size() : 0;
        if (n > WEIR__CLUSTER_STATS_MAX || n > out->chans_cap || (n && !out->chans))
            return weir__seterr(-EPROTO, "cluster STATS: %u channels (at most %u)", n,
                                out->chans_cap < WEIR__CLUSTER_STATS_MAX
                                    ? out->chans_cap
                                    : (unsigned)WEIR__CLUSTER_STATS_MAX);
        for (unsigned i = 0; i < n; i++) {
            const wc::ChanStat *cs = cv->Get(i);
            struct weir__cluster_chan_stat *c = &out->chans[i];
            std::memset(c, 0, sizeof *c);
            c->chan = cs->chan();
            struct weir_chan_stats *st = &c->st;
            if ((e = copy_str(cs->name(), st->name, sizeof st->name, what, "channel name",
                              false)) < 0)
                return e;
            if (cs->depth() > WEIR_CHAN_MAX_DEPTH)
                return weir__seterr(-EPROTO, "cluster STATS: channel %u of depth %u (at most %u)",
                                    cs->chan(), cs->depth(), WEIR_CHAN_MAX_DEPTH);
            st->messages = cs->messages();
            st->bytes = cs->bytes();
            st->errors = cs->errors();
            st->writer_blocked_ns = cs->writer_blocked_ns();
            st->grows = cs->grows();
            st->slot_bytes = (size_t)cs->slot_bytes();
            st->depth = cs->depth();
            st->closed = cs->closed() ? 1 : 0;
            const auto *rv = cs->readers();
            unsigned nr = rv ? rv->size() : 0;
            if (nr > WEIR_CHAN_MAX_READERS)
                return weir__seterr(-EPROTO, "cluster STATS: channel %u with %u readers (at most "
                                    "%d)", cs->chan(), nr, WEIR_CHAN_MAX_READERS);
            for (unsigned r = 0; r < nr; r++) {
                // The verifier checks a vector's bounds, not that its 8-byte
                // structs are 8-byte aligned (a crafted buffer can place
                // them at 4): copy each one out before reading its fields.
                wc::ReaderStat rsv;
                std::memcpy(&rsv, rv->Data() + (size_t)r * sizeof rsv, sizeof rsv);
                const wc::ReaderStat *rs = &rsv;
                if (rs->who() < -2)
                    return weir__seterr(-EPROTO, "cluster STATS: channel %u reader %u is %d",
                                        cs->chan(), r, rs->who());
                st->readers[r].id = rs->id();
                st->readers[r].pid = rs->pid();
                st->readers[r].consumed = rs->consumed();
                st->readers[r].starved_ns = rs->starved_ns();
                c->who[r] = rs->who();
            }
            st->nreaders = nr;
        }
        out->nchans = n;
        const auto *lv = sm->links();
        unsigned nl = lv ? lv->size() : 0;
        if (nl > WEIR__CLUSTER_LINKS_MAX || nl > out->links_cap || (nl && !out->links))
            return weir__seterr(-EPROTO, "cluster STATS: %u links (at most %u)", nl,
                                out->links_cap < WEIR__CLUSTER_LINKS_MAX
                                    ? out->links_cap
                                    : (unsigned)WEIR__CLUSTER_LINKS_MAX);
        for (unsigned i = 0; i < nl; i++) {
            const wc::LinkStat *ls = lv->Get(i);
            struct weir__cluster_link_stat *l = &out->links[i];
            std::memset(l, 0, sizeof *l);
            struct weir_dag_link_stats *st = &l->st;
            if (ls->peer_rank() < 0 || ls->peer_rank() >= WEIR_MAX_RANKS)
                return weir__seterr(-EPROTO, "cluster STATS: link %u of channel %u: peer rank %d "
                                    "(expected 0..%d)", ls->index(), ls->chan(),
                                    ls->peer_rank(), WEIR_MAX_RANKS - 1);
            if (ls->status() != 0 && (e = check_code(ls->status(), "STATS link status")) < 0)
                return e;
            if ((e = copy_str(ls->peer(), st->peer, sizeof st->peer, what, "link peer",
                              false)) < 0)
                return e;
            l->index = ls->index();
            st->chan = ls->chan();
            st->rank = out->rank;
            st->peer_rank = ls->peer_rank();
            st->sending = ls->sending() ? 1 : 0;
            st->status = ls->status();
            st->messages = ls->messages();
            st->bytes = ls->bytes();
            st->acked = ls->acked();
            st->credit_stalls = ls->credit_stalls();
            st->conn_streams = ls->conn_streams();
            st->conn = ls->conn();
            st->frames = ls->frames();
            st->batches = ls->batches();
            st->reconnects = ls->reconnects();
            st->last_rtt_ns = ls->last_rtt_ns();
            st->stream_frames = ls->stream_frames();
            st->stream_batches = ls->stream_batches();
        }
        out->nlinks = nl;
        const auto *av = sm->actors();
        unsigned na = av ? av->size() : 0;
        if (na > WEIR__CLUSTER_ACTORS_MAX || na > out->actors_cap || (na && !out->actors))
            return weir__seterr(-EPROTO, "cluster STATS: %u actors (at most %u)", na,
                                out->actors_cap < WEIR__CLUSTER_ACTORS_MAX
                                    ? out->actors_cap
                                    : (unsigned)WEIR__CLUSTER_ACTORS_MAX);
        for (unsigned i = 0; i < na; i++) {
            const wc::ActorStat *as = av->Get(i);
            struct weir__cluster_actor_stat *a = &out->actors[i];
            std::memset(a, 0, sizeof *a);
            const auto *mv = as->methods();
            unsigned nm = mv ? mv->size() : 0;
            if (nm > WEIR__CLUSTER_METHODS_MAX)
                return weir__seterr(-EPROTO, "cluster STATS: actor %u with %u methods (at most "
                                    "%d)", as->actor(), nm, WEIR__CLUSTER_METHODS_MAX);
            if (as->pid() < 0)
                return weir__seterr(-EPROTO, "cluster STATS: actor %u in pid %d", as->actor(),
                                    as->pid());
            a->actor = as->actor();
            a->pid = as->pid();
            a->restarts = as->restarts();
            a->input_starved_ns = as->input_starved_ns();
            a->output_blocked_ns = as->output_blocked_ns();
            a->at_ns = out->at_ns;
            for (unsigned k = 0; k < nm; k++) {
                // 8-byte structs the verifier does not align-check: copy out (as readers).
                wc::MethodStat msv;
                std::memcpy(&msv, mv->Data() + (size_t)k * sizeof msv, sizeof msv);
                a->methods[k].calls = msv.calls();
                a->methods[k].errors = msv.errors();
                a->methods[k].busy_ns = msv.busy_ns();
            }
            a->nmethods = nm;
        }
        out->nactors = na;
        return 0;
    }
    }
    return weir__seterr(-EPROTO, "cluster: control message of unknown kind %d", k);
}

} // extern "C"
