/* gpu_kernel_concat_slice.c -- the shape family on the GPU: concat, slice
 * and slice_bwd (ops.def).  One work item per result element, which splits
 * its index as [outer, axis, inner] (outer the axes before 'axis', N among
 * them; inner those after it) and gathers its source element.  concat and
 * slice move any dtype as 32- or 64-bit words; slice_bwd writes zeros where
 * no element of dy lands.  A concat operand that the memory plan made a
 * view of the result (concat_views.c: its producer wrote it in place) is
 * not copied: its items return at once.
 */
#include "gpu_internal.h"

#define LL(v) ((long long)(v))

static int64_t inner_of(const DnShape *s, int axis)
{
    int64_t inner = 1;
    for (int d = axis + 1; d < s->rank; d++) inner *= s->dim[d];
    return inner;
}

static const char *word_of(const DnValue *v) { return dn_dtype_size(v->dtype) == 8 ? "u64" : "u32"; }

/* Opens the kernel's index split: i (flat), j (inner), a (on the axis of size 'len'), o (outer). */
static void split_index(DnGpuGen *G, const DnValue *r, int64_t len, int64_t inner)
{
    dn_gk_line(G, "i64 i = GLOBAL_ID;");
    dn_gk_line(G, "if (i >= %s) return;", dn_gk_count(G, r));
    dn_gk_line(G, "i64 j = i %% %lld, t = i / %lld;", LL(inner), LL(inner));
    dn_gk_line(G, "i64 a = t %% %lld, o = t / %lld;", LL(len), LL(len));
}

static void end_items(DnGpuGen *G, const DnValue *r)
{
    int64_t in, ib;
    dn_gk_items(r, &in, &ib);
    dn_gk_end(G, in, ib, 256);
}

void dn_gpu_kernel_concat(DnGpuGen *G)
{
    const DnOp *op = G->op;
    const DnValue *y = op->out[0];
    int axis = (int)dn_op_int(op, "axis");
    int64_t inner = inner_of(&y->shape, axis);
    const char *w = word_of(y);
    bool copied[8], any = false;
    DN_ASSERT(op->nin <= 8);
    for (int i = 0, at = 0; i < op->nin; at += (int)op->in[i]->shape.dim[axis], i++) {
        copied[i] = !dn_plan_is_view_at(G->l->plan, op->in[i], y, at * inner * dn_dtype_size(y->dtype));
        any |= copied[i];
    }
    if (!any) return; /* every operand was written in place */
    dn_gk_begin(G, "");
    for (int i = 0; i < op->nin; i++) {
        char name[16];
        snprintf(name, sizeof name, "x%d", i);
        if (copied[i]) dn_gk_ptr(G, i, w, name);
    }
    dn_gk_ptr(G, op->nin, w, "y");
    split_index(G, y, y->shape.dim[axis], inner);
    int64_t at = 0;
    for (int i = 0; i < op->nin; i++) {
        int64_t len = op->in[i]->shape.dim[axis];
        if (copied[i])
            dn_gk_line(G, "%sif (a < %lld) y[i] = x%d[(o * %lld + a - %lld) * %lld + j];", i ? "else " : "",
                       LL(at + len), i, LL(len), LL(at), LL(inner));
        else
            dn_gk_line(G, "%sif (a < %lld) { /* x%d: written in place */ }", i ? "else " : "", LL(at + len), i);
        at += len;
    }
    end_items(G, y);
}

void dn_gpu_kernel_slice(DnGpuGen *G)
{
    const DnValue *x = G->op->in[0], *y = G->op->out[0];
    int axis = (int)dn_op_int(G->op, "axis");
    int64_t start = dn_op_int(G->op, "start"), step = dn_op_int(G->op, "step");
    int64_t inner = inner_of(&y->shape, axis);
    const char *w = word_of(y);
    dn_gk_begin(G, "");
    dn_gk_ptr(G, 0, w, "x");
    dn_gk_ptr(G, 1, w, "y");
    split_index(G, y, y->shape.dim[axis], inner);
    dn_gk_line(G, "y[i] = x[(o * %lld + %lld + a * %lld) * %lld + j];", LL(x->shape.dim[axis]), LL(start), LL(step),
               LL(inner));
    end_items(G, y);
}

void dn_gpu_kernel_slice_bwd(DnGpuGen *G)
{
    const DnValue *dy = G->op->in[0], *dx = G->op->out[0];
    int axis = (int)dn_op_int(G->op, "axis");
    int64_t start = dn_op_int(G->op, "start"), step = dn_op_int(G->op, "step");
    int64_t inner = inner_of(&dx->shape, axis), ya = dy->shape.dim[axis];
    dn_gk_begin(G, "");
    dn_gk_ptr(G, 0, "float", "dy");
    dn_gk_ptr(G, 1, "float", "dx");
    split_index(G, dx, dx->shape.dim[axis], inner);
    dn_gk_line(G, "i64 s = a - %lld;", LL(start));
    dn_gk_line(G, "int hit = s >= 0 && s %% %lld == 0 && s / %lld < %lld;", LL(step), LL(step), LL(ya));
    dn_gk_line(G, "dx[i] = hit ? dy[(o * %lld + s / %lld) * %lld + j] : 0.0f;", LL(ya), LL(step), LL(inner));
    end_items(G, dx);
}
