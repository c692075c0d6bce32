/* kernel_elemwise.c -- pointwise forward ops: add, sub, mul, div (numpy
 * broadcasting of both operands to the result shape, N included), scale,
 * relu, tanh, sigmoid.
 *
 * Every operand is described by its element strides along the result's
 * axes (0 where it is broadcast); adjacent axes that every operand walks
 * contiguously are merged, so a plain op becomes one flat loop and a bias
 * add becomes N x C x (H*W) with a contiguous innermost loop.  The outermost
 * merged axis is the parallel one: par_n = its static factor when it holds
 * N, else par_b = its extent.  A result that the memory plan made a strided
 * view (DN_OPF_STRIDED_OUT: a concat operand written in place) has its own
 * stride along N, so N stays an axis of its own.
 */
#include "llvm_internal.h"

/* A loop nest over the result: 'nd' axes, extents 'ext' (axis 0's is a
 * factor of N when 'has_n'), strides per array (operands, then result). */
typedef struct Nest {
    int nd, narr;
    bool has_n;
    int64_t ext[DN_MAX_RANK];
    int64_t st[3][DN_MAX_RANK];
} Nest;

typedef LLVMValueRef (*BinFn)(DnKernel *k, LLVMValueRef a, LLVMValueRef b);

/* Strides of 'v' broadcast (right-aligned) to the result 'r'. */
static void bcast_strides(const DnValue *v, const DnValue *r, int64_t *st)
{
    int off = r->shape.rank - v->shape.rank;
    int64_t s = 1;
    for (int d = r->shape.rank - 1; d >= 0; d--) {
        int vd = d - off;
        int64_t e = vd < 0 ? 1 : v->shape.dim[vd];
        bool full = vd >= 0 && (e == DN_DIM_N || r->shape.dim[d] == e);
        st[d] = full ? s : 0;
        if (vd >= 0 && e != DN_DIM_N) s *= e;
    }
}

/* Builds the nest for result 'r' (r_item elements from one batch item to
 * the next) and the 'nops' operands 'ops', merging adjacent axes where
 * every array's strides allow it. */
static Nest make_nest(const DnValue *r, int64_t r_item, const DnValue **ops, int nops)
{
    Nest n = {.nd = r->shape.rank, .narr = nops + 1, .has_n = dn_shape_has_n(&r->shape)};
    for (int d = 0; d < n.nd; d++) n.ext[d] = r->shape.dim[d] == DN_DIM_N ? 1 : r->shape.dim[d];
    for (int j = 0; j < nops; j++) bcast_strides(ops[j], r, n.st[j]);
    bcast_strides(r, r, n.st[nops]);
    if (n.has_n) n.st[nops][0] = r_item;
    for (int d = n.nd - 1; d >= 0; d--) { /* drop static axes of extent 1 */
        if (n.ext[d] != 1 || r->shape.dim[d] == DN_DIM_N) continue;
        for (int e = d; e + 1 < n.nd; e++) {
            n.ext[e] = n.ext[e + 1];
            for (int j = 0; j < n.narr; j++) n.st[j][e] = n.st[j][e + 1];
        }
        n.nd--;
    }
    for (int d = n.nd - 1; d >= 1; d--) {
        bool ok = true;
        for (int j = 0; j < n.narr; j++) ok = ok && n.st[j][d - 1] == n.st[j][d] * n.ext[d];
        if (!ok) continue;
        n.ext[d - 1] *= n.ext[d];
        for (int j = 0; j < n.narr; j++) n.st[j][d - 1] = n.st[j][d];
        for (int e = d; e + 1 < n.nd; e++) {
            n.ext[e] = n.ext[e + 1];
            for (int j = 0; j < n.narr; j++) n.st[j][e] = n.st[j][e + 1];
        }
        n.nd--;
    }
    return n;
}

/* Emits loops from 'level' down, then  out = f(operands). */
static void emit_level(DnKernel *k, const Nest *n, int level, LLVMValueRef *offs, BinFn f)
{
    int nops = n->narr - 1;
    if (level == n->nd) {
        LLVMValueRef a = dn_load_f32(k, k->in[0], offs[0]);
        LLVMValueRef b = nops > 1 ? dn_load_f32(k, k->in[1], offs[1]) : NULL;
        dn_store_f32(k, k->out[0], offs[nops], f(k, a, b));
        return;
    }
    LLVMValueRef lo = level == 0 ? k->begin : dn_i64(k, 0), hi = level == 0 ? k->end : dn_i64(k, n->ext[level]);
    DnLoop l = dn_loop_begin(k, lo, hi, "i");
    LLVMValueRef next[3];
    for (int j = 0; j < n->narr; j++) next[j] = dn_add(k, offs[j], dn_mul(k, l.i, dn_i64(k, n->st[j][level])));
    emit_level(k, n, level + 1, next, f);
    dn_loop_end(k, &l);
}

/* The shared generator: 'nops' operands (1 or 2), combined by 'f'. */
static void gen_pointwise(DnKernel *k, int nops, BinFn f)
{
    const DnValue *r = k->op->out[0];
    int64_t r_item = dn_shape_has_n(&r->shape) && k->plan ? dn_plan_item_stride(k->plan, r) / dn_dtype_size(r->dtype)
                                                          : dn_shape_numel_static(&r->shape);
    Nest n = make_nest(r, r_item, (const DnValue **)k->op->in, nops);
    LLVMValueRef offs[3] = {dn_i64(k, 0), dn_i64(k, 0), dn_i64(k, 0)};
    if (n.nd == 0) {
        k->par_n = 0, k->par_b = 1;
        LLVMValueRef a = dn_load_f32(k, k->in[0], offs[0]);
        LLVMValueRef b = nops > 1 ? dn_load_f32(k, k->in[1], offs[1]) : NULL;
        dn_store_f32(k, k->out[0], offs[0], f(k, a, b));
        return;
    }
    k->par_n = n.has_n ? n.ext[0] : 0;
    k->par_b = n.has_n ? 0 : n.ext[0];
    n.ext[0] = -1; /* level 0 runs [begin, end) */
    emit_level(k, &n, 0, offs, f);
}

static LLVMValueRef f_add(DnKernel *k, LLVMValueRef a, LLVMValueRef b) { return dn_fadd(k, a, b); }
static LLVMValueRef f_sub(DnKernel *k, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildFSub(k->L->b, a, b, ""); }
static LLVMValueRef f_mul(DnKernel *k, LLVMValueRef a, LLVMValueRef b) { return dn_fmul(k, a, b); }
static LLVMValueRef f_div(DnKernel *k, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildFDiv(k->L->b, a, b, ""); }

static LLVMValueRef f_scale(DnKernel *k, LLVMValueRef a, LLVMValueRef b)
{
    (void)b;
    return LLVMBuildFMul(k->L->b, a, dn_f32(k, dn_op_float(k->op, "alpha")), "");
}

/* max(x, 0) that keeps NaN: x < 0 ? 0 : x. */
static LLVMValueRef f_relu(DnKernel *k, LLVMValueRef a, LLVMValueRef b)
{
    (void)b;
    LLVMValueRef neg = LLVMBuildFCmp(k->L->b, LLVMRealOLT, a, dn_f32(k, 0), "");
    return LLVMBuildSelect(k->L->b, neg, dn_f32(k, 0), a, "");
}

static LLVMValueRef f_tanh(DnKernel *k, LLVMValueRef a, LLVMValueRef b)
{
    (void)b;
    return dn_call_f32(k, "tanhf", a);
}

/* 1 / (1 + exp(-x)); exp overflow gives 1/inf = 0, the right limit. */
static LLVMValueRef f_sigmoid(DnKernel *k, LLVMValueRef a, LLVMValueRef b)
{
    (void)b;
    LLVMValueRef e = dn_call_f32(k, "llvm.exp.f32", LLVMBuildFNeg(k->L->b, a, ""));
    return LLVMBuildFDiv(k->L->b, dn_f32(k, 1), LLVMBuildFAdd(k->L->b, dn_f32(k, 1), e, ""), "");
}

void dn_kernel_add(DnKernel *k) { gen_pointwise(k, 2, f_add); }
void dn_kernel_sub(DnKernel *k) { gen_pointwise(k, 2, f_sub); }
void dn_kernel_mul(DnKernel *k) { gen_pointwise(k, 2, f_mul); }
void dn_kernel_div(DnKernel *k) { gen_pointwise(k, 2, f_div); }
void dn_kernel_scale(DnKernel *k) { gen_pointwise(k, 1, f_scale); }
void dn_kernel_relu(DnKernel *k) { gen_pointwise(k, 1, f_relu); }
void dn_kernel_tanh(DnKernel *k) { gen_pointwise(k, 1, f_tanh); }
void dn_kernel_sigmoid(DnKernel *k) { gen_pointwise(k, 1, f_sigmoid); }
