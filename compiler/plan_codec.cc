// SPDX-License-Identifier: MIT
/*
 * compiler/plan_codec.cc - struct weir__plan <-> FlatBuffers bytes.
 *
 * Design notes. This is the only C++ file of weir (DESIGN.md,
 * "Conventions"): flatc generates compiler/plan_generated.h from
 * compiler/plan.fbs at build time and the official runtime builds and
 * verifies buffers. Nothing C++ crosses the boundary: the two entry points
 * are extern "C", take and return plain C data (malloc'd, freed with free()
 * or weir__plan_free()), and catch every exception (the builder throws
 * std::bad_alloc when it cannot grow) and turn it into -ENOMEM.
 *
 * Decoding trusts nothing. In order: the size (at least a root offset and
 * the identifier, at most PLAN_MAX_BYTES), the file identifier "WEIR", the
 * FlatBuffers verifier (every offset, vector and string inside the buffer,
 * bounded depth and table count), the format version, presence of every
 * string, and no NUL inside a string. Only then is the buffer copied into
 * C memory, and the copy goes through weir__plan_validate() - which checks
 * every index - before the caller sees it. The verifier needs aligned
 * scalars, so a buffer at an odd address is first copied to an aligned one.
 *
 * Size amplification: a table can be referenced from many vector slots,
 * so a small buffer could expand into a large C plan. The verifier's table
 * budget (PLAN_MAX_TABLES, each reference counts) bounds that.
 */
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <vector>

#include "compiler/plan_generated.h"

#include <weir/graph.h>

extern "C" {
#include "channels/err.h"
#include "compiler/plan.h"
}

namespace fb = flatbuffers;
namespace wp = weir::plan;

namespace {

constexpr uint32_t PLAN_FORMAT_VERSION = 3; // 3: Chan.tensor
constexpr uint32_t PLAN_OLDEST_VERSION = 1; // no placement: a thread per actor
constexpr size_t PLAN_MIN_BYTES = 8; // root offset + file identifier
constexpr size_t PLAN_MAX_BYTES = size_t(64) << 20;
constexpr uint32_t PLAN_MAX_TABLES = 4u << 20;

// ---- encode ----------------------------------------------------------------

fb::Offset<fb::Vector<uint32_t>> u32vec(fb::FlatBufferBuilder &b, const uint32_t *v, uint32_t n)
{
    if (n == 0 || v == nullptr)
        return 0; // absent == empty; saves bytes for READ/WRITE/RELEASE ops
    return b.CreateVector(v, n);
}

fb::Offset<wp::Op> encode_op(fb::FlatBufferBuilder &b, const weir__plan_op &o)
{
    auto in = u32vec(b, o.in, o.nin);
    auto out = u32vec(b, o.out, o.nout);
    wp::OpBuilder ob(b);
    ob.add_kind(static_cast<wp::OpKind>(o.kind));
    ob.add_chan(o.chan);
    ob.add_reg(o.reg);
    ob.add_method(o.method);
    ob.add_node(o.node);
    ob.add_actor(o.actor);
    if (!in.IsNull())
        ob.add_in_regs(in);
    if (!out.IsNull())
        ob.add_out_regs(out);
    return ob.Finish();
}

fb::Offset<wp::Actor> encode_actor(fb::FlatBufferBuilder &b, const weir__plan_actor &a)
{
    auto name = b.CreateString(a.name);
    std::vector<fb::Offset<wp::Method>> methods;
    methods.reserve(a.nmethods);
    for (uint32_t m = 0; m < a.nmethods; m++) {
        const weir__plan_method &pm = a.methods[m];
        auto mname = b.CreateString(pm.name);
        wp::MethodBuilder mb(b);
        mb.add_name(mname);
        mb.add_nin(pm.nin);
        mb.add_nout(pm.nout);
        methods.push_back(mb.Finish());
    }
    auto mvec = b.CreateVector(methods);
    std::vector<fb::Offset<wp::Op>> ops;
    ops.reserve(a.nops);
    for (uint32_t i = 0; i < a.nops; i++)
        ops.push_back(encode_op(b, a.ops[i]));
    auto ovec = b.CreateVector(ops);
    auto cpus = a.cpus ? b.CreateString(a.cpus) : fb::Offset<fb::String>();
    wp::ActorBuilder ab(b);
    ab.add_name(name);
    ab.add_node(a.node);
    ab.add_isolation(a.isolation);
    ab.add_cpu(-1);
    if (a.cpus)
        ab.add_cpus(cpus);
    ab.add_methods(mvec);
    ab.add_nregs(a.nregs);
    ab.add_ops(ovec);
    ab.add_worker(a.worker);
    return ab.Finish();
}

fb::Offset<wp::Tensor> encode_tensor(fb::FlatBufferBuilder &b, const weir__plan_tensor &t)
{
    if (!t.is_tensor)
        return 0;
    fb::Offset<fb::Vector<int64_t>> shape = 0;
    if (t.ndim > 0)
        shape = b.CreateVector(t.shape, static_cast<size_t>(t.ndim));
    wp::TensorBuilder tb(b);
    tb.add_device(t.device);
    tb.add_device_id(t.device_id);
    tb.add_max_bytes(t.max_bytes);
    tb.add_dtype_code(t.dtype_code);
    tb.add_dtype_bits(t.dtype_bits);
    tb.add_dtype_lanes(t.dtype_lanes);
    tb.add_ndim(t.ndim);
    tb.add_shape(shape);
    return tb.Finish();
}

fb::Offset<wp::Chan> encode_chan(fb::FlatBufferBuilder &b, const weir__plan_chan &c,
                                 int32_t plan_transport)
{
    auto name = b.CreateString(c.name);
    auto readers = b.CreateVector(c.readers, c.nreaders);
    auto tensor = encode_tensor(b, c.tensor);
    wp::ChanBuilder cb(b);
    cb.add_name(name);
    cb.add_writer(c.writer);
    cb.add_readers(readers);
    cb.add_slot_bytes(c.slot_bytes);
    cb.add_depth(c.depth);
    cb.add_src_kind(static_cast<wp::ChanSrc>(c.src_kind));
    cb.add_src_index(c.src_index);
    cb.add_src_out(c.src_out);
    cb.add_tensor(tensor);
    /* -1 (the default, not stored): the plan's transport */
    cb.add_transport(c.transport == plan_transport ? -1 : c.transport);
    return cb.Finish();
}

int encode(const weir__plan *p, uint8_t **buf, size_t *len)
{
    fb::FlatBufferBuilder b(1024);
    std::vector<fb::Offset<wp::Actor>> actors;
    actors.reserve(p->nactors);
    for (uint32_t i = 0; i < p->nactors; i++)
        actors.push_back(encode_actor(b, p->actors[i]));
    auto avec = b.CreateVector(actors);
    std::vector<fb::Offset<wp::Chan>> chans;
    chans.reserve(p->nchans);
    for (uint32_t i = 0; i < p->nchans; i++)
        chans.push_back(encode_chan(b, p->chans[i], p->transport));
    auto cvec = b.CreateVector(chans);
    auto outs = b.CreateVector(p->outputs, p->nouts);
    auto graph = b.CreateString(p->graph);

    wp::PlanBuilder pb(b);
    pb.add_version(PLAN_FORMAT_VERSION);
    pb.add_graph(graph);
    pb.add_nargs(p->nargs);
    pb.add_max_inflight(p->max_inflight);
    pb.add_depth(p->depth);
    pb.add_buffer_bytes(p->buffer_bytes);
    pb.add_transport(p->transport);
    pb.add_timeout_ms(p->timeout_ms);
    pb.add_max_buffered(p->max_buffered);
    pb.add_actors(avec);
    pb.add_chans(cvec);
    pb.add_outputs(outs);
    pb.add_threads(p->threads);
    pb.add_nworkers(p->nworkers);
    wp::FinishPlanBuffer(b, pb.Finish());

    size_t n = b.GetSize();
    if (n > PLAN_MAX_BYTES)
        return weir__seterr(-EFBIG, "plan '%s': encoded size %zu bytes exceeds the maximum %zu",
                            p->graph, n, PLAN_MAX_BYTES);
    uint8_t *out = static_cast<uint8_t *>(std::malloc(n));
    if (!out)
        return weir__seterr(-ENOMEM, "plan '%s': out of memory while encoding", p->graph);
    std::memcpy(out, b.GetBufferPointer(), n);
    *buf = out;
    *len = n;
    return 0;
}

// ---- decode ----------------------------------------------------------------

// A C copy of a verified string; the caller has checked s for NULL.
// Returns -EBADMSG (embedded NUL) or -ENOMEM; `what` names the field.
int copy_str(const fb::String *s, char **dst, const char *what)
{
    if (std::memchr(s->data(), '\0', s->size()))
        return weir__seterr(-EBADMSG, "plan: %s contains a NUL byte", what);
    char *c = static_cast<char *>(std::malloc(s->size() + 1));
    if (!c)
        return -ENOMEM;
    std::memcpy(c, s->data(), s->size());
    c[s->size()] = '\0';
    *dst = c;
    return 0;
}

// Copy a vector of scalars into a new C array (NULL when empty or absent).
template <typename T>
int copy_vec(const fb::Vector<T> *v, T **dst, uint32_t *n)
{
    *dst = nullptr;
    *n = 0;
    if (!v || v->size() == 0)
        return 0;
    T *c = static_cast<T *>(std::malloc(sizeof(T) * v->size()));
    if (!c)
        return -ENOMEM;
    for (fb::uoffset_t i = 0; i < v->size(); i++)
        c[i] = v->Get(i);
    *dst = c;
    *n = v->size();
    return 0;
}

template <typename T>
T *calloc_n(size_t n)
{
    return n ? static_cast<T *>(std::calloc(n, sizeof(T))) : nullptr;
}

int decode_actor(const wp::Actor *fa, uint32_t ai, weir__plan_actor *a)
{
    char what[96];
    int ret;
    if (!fa->name())
        return weir__seterr(-EBADMSG, "plan: actor %u: missing field 'name'", ai);
    std::snprintf(what, sizeof what, "actor %u name", ai);
    if ((ret = copy_str(fa->name(), &a->name, what)) < 0)
        return ret;
    a->node = fa->node();
    a->isolation = fa->isolation();
    if (fa->cpus()) {
        std::snprintf(what, sizeof what, "actor '%s' cpus", a->name);
        if ((ret = copy_str(fa->cpus(), &a->cpus, what)) < 0)
            return ret;
    } else if (fa->cpu() >= 0) { /* a plan written before cpus existed */
        char one[16];
        std::snprintf(one, sizeof one, "%d", fa->cpu());
        if (!(a->cpus = strdup(one)))
            return -ENOMEM;
    } else if (fa->cpu() < -1) {
        return weir__seterr(-EBADMSG, "plan: actor '%s' is pinned to cpu %d", a->name, fa->cpu());
    }
    a->worker = fa->worker();
    a->nregs = fa->nregs();

    if (const auto *ms = fa->methods()) {
        if (ms->size() && !(a->methods = calloc_n<weir__plan_method>(ms->size())))
            return -ENOMEM;
        a->nmethods = ms->size();
        for (uint32_t m = 0; m < ms->size(); m++) {
            const wp::Method *fm = ms->Get(m);
            if (!fm->name())
                return weir__seterr(-EBADMSG, "plan: actor '%s' method %u: missing field 'name'",
                                    a->name, m);
            std::snprintf(what, sizeof what, "actor '%.64s' method %u name", a->name, m);
            if ((ret = copy_str(fm->name(), &a->methods[m].name, what)) < 0)
                return ret;
            a->methods[m].nin = fm->nin();
            a->methods[m].nout = fm->nout();
        }
    }
    if (const auto *os = fa->ops()) {
        if (os->size() && !(a->ops = calloc_n<weir__plan_op>(os->size())))
            return -ENOMEM;
        a->nops = os->size();
        for (uint32_t i = 0; i < os->size(); i++) {
            const wp::Op *fo = os->Get(i);
            weir__plan_op &o = a->ops[i];
            o.kind = static_cast<uint32_t>(fo->kind());
            o.chan = fo->chan();
            o.reg = fo->reg();
            o.method = fo->method();
            o.node = fo->node();
            o.actor = fo->actor();
            if ((ret = copy_vec(fo->in_regs(), &o.in, &o.nin)) < 0 ||
                (ret = copy_vec(fo->out_regs(), &o.out, &o.nout)) < 0)
                return ret;
        }
    }
    return 0;
}

int decode_chan(const wp::Chan *fc, uint32_t ci, weir__plan_chan *c)
{
    char what[64];
    int ret;
    if (!fc->name())
        return weir__seterr(-EBADMSG, "plan: channel %u: missing field 'name'", ci);
    std::snprintf(what, sizeof what, "channel %u name", ci);
    if ((ret = copy_str(fc->name(), &c->name, what)) < 0)
        return ret;
    c->writer = fc->writer();
    if ((ret = copy_vec(fc->readers(), &c->readers, &c->nreaders)) < 0)
        return ret;
    c->slot_bytes = fc->slot_bytes();
    c->depth = fc->depth();
    c->src_kind = static_cast<uint32_t>(fc->src_kind());
    c->src_index = fc->src_index();
    c->src_out = fc->src_out();
    if (const auto *ft = fc->tensor()) {
        weir__plan_tensor &t = c->tensor;
        t.is_tensor = 1;
        t.device = ft->device();
        t.device_id = ft->device_id();
        t.max_bytes = ft->max_bytes();
        t.dtype_code = ft->dtype_code();
        t.dtype_bits = ft->dtype_bits();
        t.dtype_lanes = ft->dtype_lanes();
        t.ndim = ft->ndim();
        uint32_t n = ft->shape() ? ft->shape()->size() : 0;
        uint32_t want = t.ndim > 0 ? static_cast<uint32_t>(t.ndim) : 0;
        if (t.ndim > WEIR__PLAN_TENSOR_NDIM || n != want)
            return weir__seterr(-EBADMSG,
                                "plan: channel '%s': tensor ndim %d with %u shape entries", c->name,
                                t.ndim, n);
        for (uint32_t i = 0; i < n; i++)
            t.shape[i] = ft->shape()->Get(i);
    }
    c->transport = fc->transport(); /* -1: the plan's, filled in by the caller */
    return 0;
}

// Version 1 had no placement: every thread actor ran alone and every CALL
// was its own actor's. Give each thread actor a worker of its own.
void upgrade_v1(weir__plan *p)
{
    p->threads = -1;
    p->nworkers = 0;
    for (uint32_t i = 0; i < p->nactors; i++) {
        weir__plan_actor &a = p->actors[i];
        a.worker = a.isolation == WEIR_THREAD ? static_cast<int32_t>(p->nworkers++) : -1;
        for (uint32_t k = 0; a.ops && k < a.nops; k++)
            if (a.ops[k].kind == WEIR__OP_CALL)
                a.ops[k].actor = i;
    }
}

// Copy a verified root table into p (calloc'd by the caller; on failure the
// caller frees whatever was filled in - every count is set only once its
// array exists, so weir__plan_free() sees a consistent partial plan).
int decode_plan(const wp::Plan *fp, weir__plan *p)
{
    int ret;
    if (fp->version() == 0)
        return weir__seterr(-EBADMSG, "plan: missing field 'version'");
    if (fp->version() < PLAN_OLDEST_VERSION || fp->version() > PLAN_FORMAT_VERSION)
        return weir__seterr(-EBADMSG,
                            "plan: format version %u is not supported (this build reads %u..%u)",
                            fp->version(), PLAN_OLDEST_VERSION, PLAN_FORMAT_VERSION);
    if (!fp->graph())
        return weir__seterr(-EBADMSG, "plan: missing field 'graph'");
    if ((ret = copy_str(fp->graph(), &p->graph, "graph name")) < 0)
        return ret;
    p->nargs = fp->nargs();
    p->max_inflight = fp->max_inflight();
    p->depth = fp->depth();
    p->buffer_bytes = fp->buffer_bytes();
    p->transport = fp->transport();
    p->timeout_ms = fp->timeout_ms();
    p->max_buffered = fp->max_buffered();
    p->threads = fp->threads();
    p->nworkers = fp->nworkers();

    if (const auto *as = fp->actors()) {
        if (as->size() && !(p->actors = calloc_n<weir__plan_actor>(as->size())))
            return -ENOMEM;
        p->nactors = as->size();
        for (uint32_t i = 0; i < as->size(); i++)
            if ((ret = decode_actor(as->Get(i), i, &p->actors[i])) < 0)
                return ret;
    }
    if (const auto *cs = fp->chans()) {
        if (cs->size() && !(p->chans = calloc_n<weir__plan_chan>(cs->size())))
            return -ENOMEM;
        p->nchans = cs->size();
        for (uint32_t i = 0; i < cs->size(); i++)
            if ((ret = decode_chan(cs->Get(i), i, &p->chans[i])) < 0)
                return ret;
        for (uint32_t i = 0; i < p->nchans; i++)
            if (p->chans[i].transport < 0)
                p->chans[i].transport = p->transport;
    }
    if ((ret = copy_vec(fp->outputs(), &p->outputs, &p->nouts)) < 0)
        return ret;
    if (fp->version() == 1)
        upgrade_v1(p);
    return 0;
}

int decode(const uint8_t *buf, size_t len, weir__plan **out)
{
    if (len < PLAN_MIN_BYTES)
        return weir__seterr(-EBADMSG, "plan: truncated (%zu bytes, need at least %zu)", len,
                            PLAN_MIN_BYTES);
    if (len > PLAN_MAX_BYTES)
        return weir__seterr(-EBADMSG, "plan: too large (%zu bytes, at most %zu)", len,
                            PLAN_MAX_BYTES);
    if (!wp::PlanBufferHasIdentifier(buf)) {
        char id[4 * 4 + 1], *q = id;
        for (int i = 0; i < 4; i++) {
            unsigned char ch = buf[4 + i];
            if (ch >= 0x20 && ch < 0x7f && ch != '\'' && ch != '\\')
                *q++ = static_cast<char>(ch);
            else
                q += std::snprintf(q, 5, "\\x%02x", ch);
        }
        *q = '\0';
        return weir__seterr(-EBADMSG, "plan: not a weir plan (identifier '%s', expected '%s')",
                            id, wp::PlanIdentifier());
    }

    // The verifier checks alignment relative to the buffer start, but the
    // accessors then read through real pointers: give them an aligned copy.
    uint8_t *aligned = nullptr;
    if (reinterpret_cast<uintptr_t>(buf) % alignof(uint64_t)) {
        if (!(aligned = static_cast<uint8_t *>(std::malloc(len))))
            return weir__seterr(-ENOMEM, "plan: out of memory (%zu bytes)", len);
        std::memcpy(aligned, buf, len);
        buf = aligned;
    }

    int ret = 0;
    weir__plan *p = nullptr;
    fb::Verifier::Options vo;
    vo.max_depth = 16;
    vo.max_tables = PLAN_MAX_TABLES;
    vo.check_alignment = true;
    fb::Verifier v(buf, len, vo);
    if (!wp::VerifyPlanBuffer(v)) {
        ret = weir__seterr(-EBADMSG,
                           "plan: failed FlatBuffers verification (%zu bytes: truncated or "
                           "corrupt)",
                           len);
        goto out;
    }
    if (!(p = static_cast<weir__plan *>(std::calloc(1, sizeof *p)))) {
        ret = -ENOMEM;
        goto out;
    }
    if ((ret = decode_plan(wp::GetPlan(buf), p)) < 0)
        goto out;
    if ((ret = weir__plan_validate(p)) < 0)
        goto out;
    *out = p;
    p = nullptr;
out:
    if (ret == -ENOMEM)
        weir__seterr(-ENOMEM, "plan: out of memory while decoding (%zu bytes)", len);
    weir__plan_free(p);
    std::free(aligned);
    return ret;
}

} // namespace

extern "C" {

/* Declared in compiler/plan.h. */
const size_t weir__plan_max_bytes = PLAN_MAX_BYTES;

int weir__plan_encode(const struct weir__plan *p, uint8_t **buf, size_t *len)
{
    if (!p || !buf || !len)
        return weir__seterr(-EINVAL, "plan: encode: NULL argument");
    *buf = nullptr;
    *len = 0;
    // Never write bytes that every loader would reject; this also makes
    // every count/array pair safe to walk below.
    int ret = weir__plan_validate(p);
    if (ret < 0)
        return ret;
    try {
        return encode(p, buf, len);
    } catch (...) {
        return weir__seterr(-ENOMEM, "plan '%s': out of memory while encoding", p->graph);
    }
}

int weir__plan_decode(const uint8_t *buf, size_t len, struct weir__plan **out)
{
    if (!out || (!buf && len))
        return weir__seterr(-EINVAL, "plan: decode: NULL argument");
    *out = nullptr;
    try {
        return decode(buf, len, out);
    } catch (...) {
        return weir__seterr(-ENOMEM, "plan: out of memory while decoding");
    }
}

} // extern "C"
