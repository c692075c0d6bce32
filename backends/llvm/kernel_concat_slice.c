/* kernel_concat_slice.c -- the shape family's CPU kernels: concat, slice and
 * slice_bwd (ops.def).
 *
 * Each op sees its tensors as [outer, axis, inner]: outer the axes before
 * 'axis' (N among them), inner the axes after it, so the moved blocks are
 * contiguous runs of inner (or axis * inner) elements, copied with memcpy.
 * Any dtype: bytes move as they are.  Parallel over the outer rows (par_n =
 * the static part of outer when it holds N).  A concat operand that the
 * memory plan made a view of the result (concat_views.c: its producer
 * wrote it in place) is skipped.
 */
#include "llvm_internal.h"

typedef struct Geom {
    int64_t outer; /* static part of the axes before 'axis' */
    int64_t inner; /* elements after 'axis' */
    bool has_n;
} Geom;

static Geom geom(const DnShape *s, int axis)
{
    Geom g = {1, 1, false};
    for (int d = 0; d < axis; d++) {
        if (s->dim[d] == DN_DIM_N)
            g.has_n = true;
        else
            g.outer *= s->dim[d];
    }
    for (int d = axis + 1; d < s->rank; d++) g.inner *= s->dim[d];
    return g;
}

/* One loop over the rows [begin, end) of 'g'. */
static DnLoop rows(DnKernel *k, Geom g)
{
    k->par_n = g.has_n ? g.outer : 0;
    k->par_b = g.has_n ? 0 : g.outer;
    return dn_loop_begin(k, k->begin, k->end, "o");
}

/* The address of element 'at' (i64) of 'base', elements of 'es' bytes. */
static LLVMValueRef at_elem(DnKernel *k, LLVMValueRef base, LLVMValueRef at, int64_t es)
{
    LLVMValueRef off = dn_mul(k, at, dn_i64(k, es));
    return LLVMBuildInBoundsGEP2(k->L->b, k->L->i8, base, &off, 1, "");
}

static void copy(DnKernel *k, LLVMValueRef dst, LLVMValueRef src, int64_t bytes)
{
    LLVMBuildMemCpy(k->L->b, dst, 4, src, 4, dn_i64(k, bytes));
}

void dn_kernel_concat(DnKernel *k)
{
    const DnValue *y = k->op->out[0];
    int axis = (int)dn_op_int(k->op, "axis");
    int64_t es = dn_dtype_size(y->dtype), ya = y->shape.dim[axis];
    Geom g = geom(&y->shape, axis);
    DnLoop l = rows(k, g);
    int64_t at = 0;
    for (int i = 0; i < k->op->nin; i++) {
        int64_t xa = k->op->in[i]->shape.dim[axis];
        if (dn_plan_is_view_at(k->plan, k->op->in[i], y, at * g.inner * es)) {
            at += xa;
            continue;
        }
        LLVMValueRef dst = dn_add(k, dn_mul(k, l.i, dn_i64(k, ya * g.inner)), dn_i64(k, at * g.inner));
        LLVMValueRef src = dn_mul(k, l.i, dn_i64(k, xa * g.inner));
        copy(k, at_elem(k, k->out[0], dst, es), at_elem(k, k->in[i], src, es), xa * g.inner * es);
        at += xa;
    }
    dn_loop_end(k, &l);
}

/* The slice's rows: 'fwd' copies x (size xa on the axis) to y (ya), else
 * dy (ya) into dx (xa), which it zeroes first. */
static void slice_rows(DnKernel *k, const DnValue *x, const DnValue *y, bool fwd)
{
    int axis = (int)dn_op_int(k->op, "axis");
    int64_t start = dn_op_int(k->op, "start"), step = dn_op_int(k->op, "step");
    int64_t es = dn_dtype_size(y->dtype), xa = x->shape.dim[axis], ya = y->shape.dim[axis];
    Geom g = geom(&x->shape, axis);
    LLVMValueRef xb = fwd ? k->in[0] : k->out[0], yb = fwd ? k->out[0] : k->in[0];
    DnLoop l = rows(k, g);
    LLVMValueRef xrow = dn_mul(k, l.i, dn_i64(k, xa * g.inner)), yrow = dn_mul(k, l.i, dn_i64(k, ya * g.inner));
    if (!fwd)
        LLVMBuildMemSet(k->L->b, at_elem(k, xb, xrow, es), LLVMConstInt(k->L->i8, 0, 0), dn_i64(k, xa * g.inner * es),
                        4);
    if (step == 1) { /* one block per row */
        LLVMValueRef xo = dn_add(k, xrow, dn_i64(k, start * g.inner));
        LLVMValueRef px = at_elem(k, xb, xo, es), py = at_elem(k, yb, yrow, es);
        copy(k, fwd ? py : px, fwd ? px : py, ya * g.inner * es);
    } else {
        DnLoop j = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, ya), "j");
        LLVMValueRef xo = dn_add(
            k, xrow, dn_mul(k, dn_add(k, dn_mul(k, j.i, dn_i64(k, step)), dn_i64(k, start)), dn_i64(k, g.inner)));
        LLVMValueRef yo = dn_add(k, yrow, dn_mul(k, j.i, dn_i64(k, g.inner)));
        LLVMValueRef px = at_elem(k, xb, xo, es), py = at_elem(k, yb, yo, es);
        copy(k, fwd ? py : px, fwd ? px : py, g.inner * es);
        dn_loop_end(k, &j);
    }
    dn_loop_end(k, &l);
}

void dn_kernel_slice(DnKernel *k) { slice_rows(k, k->op->in[0], k->op->out[0], true); }

void dn_kernel_slice_bwd(DnKernel *k) { slice_rows(k, k->op->out[0], k->op->in[0], false); }
