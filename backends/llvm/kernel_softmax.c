/* kernel_softmax.c -- softmax and log_softmax along 'axis', numerically
 * stable (the row maximum is subtracted before exp).
 *
 * The input is viewed as [outer, len, inner] around the axis; the kernel
 * runs in parallel over the outer x inner rows (par_n when outer holds N).
 * When the axis itself is N the whole op is one serial loop per column.
 * No nnan/ninf assumptions: a NaN or infinity in a row propagates as in
 * PyTorch.
 */
#include <math.h>

#include "llvm_internal.h"

/* One row: elements base + t*inner, t in [0, len). */
static void emit_row(DnKernel *k, bool is_log, LLVMValueRef base, LLVMValueRef len, int64_t inner)
{
    LLVMBuilderRef b = k->L->b;
    LLVMValueRef st = dn_i64(k, inner);
    LLVMValueRef mx = dn_var(k, k->L->f32, dn_f32(k, -INFINITY), "max");
    DnLoop l1 = dn_loop_begin(k, dn_i64(k, 0), len, "t");
    LLVMValueRef v = dn_load_f32(k, k->in[0], dn_add(k, base, dn_mul(k, l1.i, st)));
    dn_set(k, mx, dn_fmax(k, dn_get(k, mx, k->L->f32), v)); /* NaN wins */
    dn_loop_end(k, &l1);
    LLVMValueRef m = dn_get(k, mx, k->L->f32);

    LLVMValueRef sum = dn_var(k, k->L->f32, dn_f32(k, 0), "sum");
    DnLoop l2 = dn_loop_begin(k, dn_i64(k, 0), len, "t");
    LLVMValueRef idx = dn_add(k, base, dn_mul(k, l2.i, st));
    LLVMValueRef e = dn_call_f32(k, "llvm.exp.f32", LLVMBuildFSub(b, dn_load_f32(k, k->in[0], idx), m, ""));
    if (!is_log) dn_store_f32(k, k->out[0], idx, e);
    dn_set(k, sum, dn_fadd(k, dn_get(k, sum, k->L->f32), e));
    dn_loop_end(k, &l2);
    LLVMValueRef s = dn_get(k, sum, k->L->f32);
    LLVMValueRef shift = is_log ? LLVMBuildFAdd(b, m, dn_call_f32(k, "llvm.log.f32", s), "") : NULL;

    DnLoop l3 = dn_loop_begin(k, dn_i64(k, 0), len, "t");
    idx = dn_add(k, base, dn_mul(k, l3.i, st));
    LLVMValueRef r = is_log ? LLVMBuildFSub(b, dn_load_f32(k, k->in[0], idx), shift, "")
                            : LLVMBuildFDiv(b, dn_load_f32(k, k->out[0], idx), s, "");
    dn_store_f32(k, k->out[0], idx, r);
    dn_loop_end(k, &l3);
}

static void gen_softmax(DnKernel *k, bool is_log)
{
    const DnValue *x = k->op->in[0];
    int axis = (int)dn_op_int(k->op, "axis");
    int64_t outer = 1, inner = 1;
    bool n_outer = false;
    for (int d = 0; d < axis; d++) {
        if (x->shape.dim[d] == DN_DIM_N)
            n_outer = true;
        else
            outer *= x->shape.dim[d];
    }
    for (int d = axis + 1; d < x->shape.rank; d++) inner *= x->shape.dim[d];
    LLVMValueRef len = dn_dim(k, x, axis);
    k->par_n = n_outer ? outer * inner : 0;
    k->par_b = n_outer ? 0 : outer * inner;
    DnLoop l = dn_loop_begin(k, k->begin, k->end, "row");
    LLVMValueRef o = LLVMBuildSDiv(k->L->b, l.i, dn_i64(k, inner), "");
    LLVMValueRef in = LLVMBuildSRem(k->L->b, l.i, dn_i64(k, inner), "");
    LLVMValueRef base = dn_add(k, dn_mul(k, dn_mul(k, o, len), dn_i64(k, inner)), in);
    emit_row(k, is_log, base, len, inner);
    dn_loop_end(k, &l);
}

void dn_kernel_softmax(DnKernel *k) { gen_softmax(k, false); }
void dn_kernel_log_softmax(DnKernel *k) { gen_softmax(k, true); }
