/* kernel_act_bwd.c -- kernels of the activation gradients (ops.def):
 * relu_bwd, tanh_bwd, sigmoid_bwd (pointwise over y and dy, parallel over
 * elements) and softmax_bwd, log_softmax_bwd (per row along 'axis',
 * parallel over rows).  All read the forward's output y, never x.
 */
#include "llvm_internal.h"

/* Iterations = every element of 'v' (N included). */
static void par_elements(DnKernel *k, const DnValue *v)
{
    int64_t s = dn_shape_numel_static(&v->shape);
    k->par_n = dn_shape_has_n(&v->shape) ? s : 0;
    k->par_b = dn_shape_has_n(&v->shape) ? 0 : s;
}

typedef LLVMValueRef (*PointFn)(DnKernel *k, LLVMValueRef y, LLVMValueRef dy);

/* out[i] = f(in0[i], in1[i]) over this call's range. */
static void pointwise(DnKernel *k, PointFn f)
{
    par_elements(k, k->op->out[0]);
    DnLoop l = dn_loop_begin(k, k->begin, k->end, "i");
    LLVMValueRef y = dn_load_f32(k, k->in[0], l.i), dy = dn_load_f32(k, k->in[1], l.i);
    dn_store_f32(k, k->out[0], l.i, f(k, y, dy));
    dn_loop_end(k, &l);
}

static LLVMValueRef relu_bwd(DnKernel *k, LLVMValueRef y, LLVMValueRef dy)
{
    LLVMValueRef pos = LLVMBuildFCmp(k->L->b, LLVMRealOGT, y, dn_f32(k, 0), "pos");
    return LLVMBuildSelect(k->L->b, pos, dy, dn_f32(k, 0), "dx");
}

static LLVMValueRef tanh_bwd(DnKernel *k, LLVMValueRef y, LLVMValueRef dy)
{
    LLVMValueRef one_m = LLVMBuildFSub(k->L->b, dn_f32(k, 1), dn_fmul(k, y, y), "");
    return dn_fmul(k, dy, one_m);
}

static LLVMValueRef sigmoid_bwd(DnKernel *k, LLVMValueRef y, LLVMValueRef dy)
{
    LLVMValueRef one_m = LLVMBuildFSub(k->L->b, dn_f32(k, 1), y, "");
    return dn_fmul(k, dn_fmul(k, dy, y), one_m);
}

void dn_kernel_relu_bwd(DnKernel *k) { pointwise(k, relu_bwd); }
void dn_kernel_tanh_bwd(DnKernel *k) { pointwise(k, tanh_bwd); }
void dn_kernel_sigmoid_bwd(DnKernel *k) { pointwise(k, sigmoid_bwd); }

/* ---- softmax family: rows along 'axis' ------------------------------------ */

typedef struct Rows {
    LLVMValueRef len; /* elements along the axis */
    int64_t inner;    /* stride of the axis */
} Rows;

/* Splits y's shape into outer x axis x inner; iterations are outer rows. */
static Rows rows_of(DnKernel *k, const DnValue *y, int axis)
{
    int64_t outer = 1, inner = 1;
    for (int i = 0; i < axis; i++)
        if (y->shape.dim[i] != DN_DIM_N) outer *= y->shape.dim[i];
    for (int i = axis + 1; i < y->shape.rank; i++) inner *= y->shape.dim[i];
    bool outer_n = axis > 0 && dn_shape_has_n(&y->shape);
    k->par_n = outer_n ? outer : 0;
    k->par_b = outer_n ? 0 : outer;
    return (Rows){dn_dim(k, y, axis), inner};
}

/* Element (row o, position t along the axis, inner j). */
static LLVMValueRef at(DnKernel *k, Rows r, LLVMValueRef o, LLVMValueRef t, LLVMValueRef j)
{
    LLVMValueRef row = dn_mul(k, dn_mul(k, o, r.len), dn_i64(k, r.inner));
    return dn_add(k, dn_add(k, row, dn_mul(k, t, dn_i64(k, r.inner))), j);
}

/* softmax: dx = y (dy - sum(dy y));  log_softmax: dx = dy - exp(y) sum(dy). */
static void softmax_like(DnKernel *k, bool log)
{
    Rows r = rows_of(k, k->op->out[0], (int)dn_op_int(k->op, "axis"));
    LLVMBuilderRef b = k->L->b;
    DnLoop lo = dn_loop_begin(k, k->begin, k->end, "o");
    DnLoop lj = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, r.inner), "j");
    LLVMValueRef acc = dn_var(k, k->L->f32, dn_f32(k, 0), "acc");
    DnLoop lt = dn_loop_begin(k, dn_i64(k, 0), r.len, "t");
    LLVMValueRef idx = at(k, r, lo.i, lt.i, lj.i);
    LLVMValueRef dy = dn_load_f32(k, k->in[1], idx);
    LLVMValueRef term = log ? dy : dn_fmul(k, dy, dn_load_f32(k, k->in[0], idx));
    dn_set(k, acc, dn_fadd(k, dn_get(k, acc, k->L->f32), term));
    dn_loop_end(k, &lt);
    LLVMValueRef s = dn_get(k, acc, k->L->f32);
    DnLoop l2 = dn_loop_begin(k, dn_i64(k, 0), r.len, "t");
    idx = at(k, r, lo.i, l2.i, lj.i);
    LLVMValueRef y = dn_load_f32(k, k->in[0], idx);
    dy = dn_load_f32(k, k->in[1], idx);
    LLVMValueRef dx = log ? LLVMBuildFSub(b, dy, dn_fmul(k, dn_call_f32(k, "llvm.exp.f32", y), s), "")
                          : dn_fmul(k, y, LLVMBuildFSub(b, dy, s, ""));
    dn_store_f32(k, k->out[0], idx, dx);
    dn_loop_end(k, &l2);
    dn_loop_end(k, &lj);
    dn_loop_end(k, &lo);
}

void dn_kernel_softmax_bwd(DnKernel *k) { softmax_like(k, false); }
void dn_kernel_log_softmax_bwd(DnKernel *k) { softmax_like(k, true); }
