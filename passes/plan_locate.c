/* plan_locate.c -- where a value lives under a memory plan, views resolved.
 *
 * Backends address every value, and decide which pointers may alias,
 * through dn_plan_locate (never by reading DnPlan.buf themselves), so a
 * value that is a VIEW inside another value's buffer gets the owner's
 * buffer plus its offset, and the bytes it covers include the gaps a
 * strided view spans.  Read-only: the plan is not changed.
 */
#include "passes.h"

/* The location of an owning buffer 'b' (not a view) holding 'bytes' bytes
 * per batch item when 'has_n', else in total. */
static DnBufLoc owner_loc(const DnBuf *b, int64_t bytes, bool has_n)
{
    DnBufLoc l = {.kind = b->kind, .index = b->index};
    if (b->kind == DN_BUF_ARENA) l.at_n = b->coef_n;
    if (b->kind == DN_BUF_ARENA || b->kind == DN_BUF_STATE) l.at_b = b->offset;
    if (has_n)
        l.span_n = bytes;
    else
        l.span_b = bytes;
    return l;
}

DnBufLoc dn_plan_locate(const DnPlan *p, const DnValue *v)
{
    const DnBuf *b = &p->buf[v->id];
    int64_t bytes = dn_shape_numel_static(&v->shape) * dn_dtype_size(v->dtype);
    bool has_n = dn_shape_has_n(&v->shape);
    if (b->kind != DN_BUF_VIEW) return owner_loc(b, bytes, has_n);
    const DnBuf *o = &p->buf[b->base];
    DN_ASSERT(o->kind != DN_BUF_VIEW);
    DnBufLoc l = owner_loc(o, 0, false);
    l.at_b += b->offset;
    if (has_n && b->stride && b->stride != bytes) { /* items 0 .. n-1 at 'stride' apart: (n-1)*stride + bytes */
        l.span_n = b->stride, l.span_b = bytes - b->stride;
        l.stride = b->stride;
    } else if (has_n) {
        l.span_n = bytes;
    } else {
        l.span_b = bytes;
    }
    return l;
}

DnBufLoc dn_plan_locate_workspace(const DnPlan *p, int op_index)
{
    const DnWorkspace *w = &p->workspace[op_index];
    if (w->buf.kind != DN_BUF_ARENA) return (DnBufLoc){.kind = DN_BUF_NONE};
    DnBufLoc l = owner_loc(&w->buf, 0, false);
    l.span_n = w->bytes_n, l.span_b = w->bytes_b;
    return l;
}

DnBufLoc dn_plan_locate_worker(const DnPlan *p, int op_index)
{
    const DnWorkspace *w = &p->workspace[op_index];
    if (w->per_worker <= 0) return (DnBufLoc){.kind = DN_BUF_NONE};
    return (DnBufLoc){
        .kind = DN_BUF_ARENA, .at_n = p->arena_n, .at_b = p->arena_b, .span_b = w->per_worker, .stride = p->arena_t};
}

int64_t dn_plan_item_stride(const DnPlan *p, const DnValue *v)
{
    DnBufLoc l = dn_plan_locate(p, v);
    return l.stride ? l.stride : dn_shape_numel_static(&v->shape) * dn_dtype_size(v->dtype);
}

bool dn_plan_is_view_at(const DnPlan *p, const DnValue *x, const DnValue *y, int64_t off)
{
    const DnBuf *b = &p->buf[x->id];
    return b->kind == DN_BUF_VIEW && b->base == y->id && b->offset == off;
}
