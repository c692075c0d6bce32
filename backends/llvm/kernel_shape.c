/* kernel_shape.c -- data movement ops: reshape and copy (nothing to do when
 * the plan aliases the result to its operand, else a memcpy), transpose,
 * fill and sum_to (the reverse of broadcasting, used by gradients).
 *
 * Elements are moved as integers of the dtype's size, so these kernels work
 * for every dtype.  Parallel over axis 0 (par_n = 1 when it is N) except
 * sum_to when axis 0 is itself summed, which runs serially.
 */
#include "llvm_internal.h"

static LLVMTypeRef elem_type(DnKernel *k, const DnValue *v)
{
    return dn_dtype_size(v->dtype) == 8 ? k->L->i64 : k->L->i32;
}

static LLVMValueRef load_elem(DnKernel *k, LLVMTypeRef t, LLVMValueRef base, LLVMValueRef idx)
{
    LLVMValueRef p = LLVMBuildInBoundsGEP2(k->L->b, t, base, &idx, 1, "");
    LLVMValueRef v = LLVMBuildLoad2(k->L->b, t, p, "");
    LLVMSetAlignment(v, (unsigned)LLVMGetIntTypeWidth(t) / 8);
    return v;
}

static void store_elem(DnKernel *k, LLVMTypeRef t, LLVMValueRef base, LLVMValueRef idx, LLVMValueRef v)
{
    LLVMValueRef p = LLVMBuildInBoundsGEP2(k->L->b, t, base, &idx, 1, "");
    LLVMSetAlignment(LLVMBuildStore(k->L->b, v, p), (unsigned)LLVMGetIntTypeWidth(t) / 8);
}

/* Parallel split of a value over its axis 0: par_n = 1 for N, else dim 0. */
static void split_axis0(DnKernel *k, const DnValue *v)
{
    bool has_n = dn_shape_has_n(&v->shape);
    k->par_n = has_n ? 1 : 0;
    k->par_b = has_n ? 0 : (v->shape.rank ? v->shape.dim[0] : 1);
}

/* y = x byte for byte (reshape's and copy's kernel): nothing when the plan
 * puts both at the same address (a view, or a copy written in place), else
 * one memcpy per batch item (or one block without N). */
static void move_bytes(DnKernel *k)
{
    const DnValue *x = k->op->in[0], *y = k->op->out[0];
    DnBufLoc a = dn_plan_locate(k->plan, x), b = dn_plan_locate(k->plan, y);
    if (a.kind == b.kind && a.index == b.index && a.at_n == b.at_n && a.at_b == b.at_b) return;
    DN_ASSERT(a.stride == 0 && b.stride == 0); /* items are contiguous: no view today has gaps */
    int64_t item = dn_shape_numel_static(&y->shape) * dn_dtype_size(y->dtype);
    bool has_n = dn_shape_has_n(&y->shape);
    k->par_n = has_n ? 1 : 0, k->par_b = has_n ? 0 : 1;
    LLVMValueRef off = dn_mul(k, k->begin, dn_i64(k, item));
    LLVMValueRef len = dn_mul(k, LLVMBuildSub(k->L->b, k->end, k->begin, ""), dn_i64(k, item));
    LLVMValueRef dst = LLVMBuildInBoundsGEP2(k->L->b, k->L->i8, k->out[0], &off, 1, "");
    LLVMValueRef src = LLVMBuildInBoundsGEP2(k->L->b, k->L->i8, k->in[0], &off, 1, "");
    LLVMBuildMemCpy(k->L->b, dst, 4, src, 4, len);
}

void dn_kernel_reshape(DnKernel *k) { move_bytes(k); }

void dn_kernel_copy(DnKernel *k) { move_bytes(k); }

void dn_kernel_fill(DnKernel *k)
{
    const DnValue *y = k->op->out[0];
    int64_t item = dn_shape_numel_static(&y->shape);
    bool has_n = dn_shape_has_n(&y->shape);
    k->par_n = has_n ? item : 0, k->par_b = has_n ? 0 : item;
    LLVMValueRef v = dn_f32(k, dn_op_float(k->op, "value"));
    DnLoop l = dn_loop_begin(k, k->begin, k->end, "i");
    dn_store_f32(k, k->out[0], l.i, v);
    dn_loop_end(k, &l);
}

/* Loop nest over the axes 'level'.. of 'dims' (axis 0 runs [begin, end));
 * at the bottom calls 'leaf' with the two element offsets. */
typedef void (*Leaf)(DnKernel *k, LLVMTypeRef t, LLVMValueRef src_off, LLVMValueRef dst_off);

static void nest(DnKernel *k, LLVMTypeRef t, int rank, int level, const int64_t *dims, const int64_t *sst,
                 const int64_t *dst, LLVMValueRef so, LLVMValueRef dof, Leaf leaf)
{
    if (level == rank) {
        leaf(k, t, so, dof);
        return;
    }
    LLVMValueRef lo = level == 0 ? k->begin : dn_i64(k, 0), hi = level == 0 ? k->end : dn_i64(k, dims[level]);
    DnLoop l = dn_loop_begin(k, lo, hi, "i");
    nest(k, t, rank, level + 1, dims, sst, dst, dn_add(k, so, dn_mul(k, l.i, dn_i64(k, sst[level]))),
         dn_add(k, dof, dn_mul(k, l.i, dn_i64(k, dst[level]))), leaf);
    dn_loop_end(k, &l);
}

/* Contiguous element strides of 'v' (N counts as extent 1; unused there). */
static void strides(const DnValue *v, int64_t *st)
{
    int64_t s = 1;
    for (int d = v->shape.rank - 1; d >= 0; d--) {
        st[d] = s;
        if (v->shape.dim[d] != DN_DIM_N) s *= v->shape.dim[d];
    }
}

static void copy_leaf(DnKernel *k, LLVMTypeRef t, LLVMValueRef so, LLVMValueRef dof)
{
    store_elem(k, t, k->out[0], dof, load_elem(k, t, k->in[0], so));
}

void dn_kernel_transpose(DnKernel *k)
{
    const DnValue *x = k->op->in[0], *y = k->op->out[0];
    int n, r = y->shape.rank;
    const int64_t *perm = dn_op_ints(k->op, "perm", &n);
    int64_t xs[DN_MAX_RANK], ys[DN_MAX_RANK], src[DN_MAX_RANK];
    strides(x, xs);
    strides(y, ys);
    for (int d = 0; d < r; d++) src[d] = xs[perm[d]];
    split_axis0(k, y);
    if (r == 0) {
        copy_leaf(k, elem_type(k, y), dn_i64(k, 0), dn_i64(k, 0));
        return;
    }
    nest(k, elem_type(k, y), r, 0, y->shape.dim, src, ys, dn_i64(k, 0), dn_i64(k, 0), copy_leaf);
}

static void sum_leaf(DnKernel *k, LLVMTypeRef t, LLVMValueRef so, LLVMValueRef dof)
{
    (void)t;
    LLVMValueRef s = dn_fadd(k, dn_load_f32(k, k->out[0], dof), dn_load_f32(k, k->in[0], so));
    dn_store_f32(k, k->out[0], dof, s);
}

/* Zeroes 'count' elements of the result from element 'at'. */
static void zero(DnKernel *k, LLVMValueRef at, LLVMValueRef count)
{
    DnLoop l = dn_loop_begin(k, dn_i64(k, 0), count, "z");
    dn_store_f32(k, k->out[0], dn_add(k, at, l.i), dn_f32(k, 0));
    dn_loop_end(k, &l);
}

void dn_kernel_sum_to(DnKernel *k)
{
    const DnValue *x = k->op->in[0], *y = k->op->out[0];
    int r = x->shape.rank, off = r - y->shape.rank;
    int64_t xs[DN_MAX_RANK], ys0[DN_MAX_RANK], ys[DN_MAX_RANK];
    strides(x, xs);
    strides(y, ys0);
    for (int d = 0; d < r; d++) {
        int yd = d - off;
        bool kept = yd >= 0 && y->shape.dim[yd] == x->shape.dim[d];
        ys[d] = kept ? ys0[yd] : 0;
    }
    if (r == 0) {
        k->par_n = 0, k->par_b = 1;
        dn_store_f32(k, k->out[0], dn_i64(k, 0), dn_load_f32(k, k->in[0], dn_i64(k, 0)));
        return;
    }
    if (ys[0] != 0 || (x->shape.dim[0] == 1)) { /* axis 0 kept: parallel over it */
        split_axis0(k, x);
        LLVMValueRef per = dn_i64(k, ys[0] ? ys[0] : dn_shape_numel_static(&y->shape));
        zero(k, dn_mul(k, k->begin, per), dn_mul(k, LLVMBuildSub(k->L->b, k->end, k->begin, ""), per));
    } else { /* axis 0 summed: one serial pass over everything */
        k->par_n = 0, k->par_b = 1;
        zero(k, dn_i64(k, 0), dn_numel(k, y));
        DnLoop l = dn_loop_begin(k, dn_i64(k, 0), dn_dim(k, x, 0), "i0");
        LLVMValueRef b = k->begin, e = k->end;
        k->begin = l.i, k->end = dn_add(k, l.i, dn_i64(k, 1));
        nest(k, NULL, r, 0, x->shape.dim, xs, ys, dn_i64(k, 0), dn_i64(k, 0), sum_leaf);
        k->begin = b, k->end = e;
        dn_loop_end(k, &l);
        return;
    }
    nest(k, NULL, r, 0, x->shape.dim, xs, ys, dn_i64(k, 0), dn_i64(k, 0), sum_leaf);
}
