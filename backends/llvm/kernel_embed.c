/* kernel_embed.c -- CPU kernels of the embedding family (ops.def):
 * embedding (a row gather), embedding_bwd (its scatter-add) and
 * sequence_mask (parallel over the lengths, each writing its row), and the
 * constant tables causal_bias and sinusoid (parallel over their rows;
 * sinusoid with positions: over those).
 *
 * embedding runs in parallel over the indices (one iteration per token
 * writes its D outputs).  An index outside [0, V) reads nothing and writes
 * zeros, so a kernel never reads outside the table whatever the input
 * holds (the runtime refuses such a model input before the kernel runs).
 *
 * embedding_bwd is deterministic without atomics: the iterations are the D
 * columns of dweight; an iteration zeroes its column, then walks every
 * token in flat index order and adds the token's dy element to the row of
 * its index (skipping padding_idx and indices outside [0, num)).  Each
 * element of dweight is thus the same ordered f32 sum for any thread count,
 * and equal to the GPU kernel's, which adds in the same order.
 */
#include <math.h>

#include "llvm_internal.h"

/* Index elements of 'v' per batch item (all of them when it has no N). */
static int64_t tokens_per_item(const DnValue *v) { return dn_shape_numel_static(&v->shape); }

/* index s of the indices, as i64, and whether it is a row in [0, rows) */
static LLVMValueRef load_index(DnKernel *k, LLVMValueRef s, int64_t rows, LLVMValueRef *valid)
{
    LLVMBuilderRef b = k->L->b;
    LLVMValueRef ix = LLVMBuildSExt(b, dn_load_i32(k, k->in[0], s), k->L->i64, "ix");
    *valid = LLVMBuildICmp(b, LLVMIntULT, ix, dn_i64(k, rows), "valid");
    return ix;
}

/* y[s, :] = weight[indices[s], :], 0 for an index outside [0, V). */
void dn_kernel_embedding(DnKernel *k)
{
    const DnValue *ix = k->op->in[0], *w = k->op->in[1];
    int64_t V = w->shape.dim[0], D = w->shape.dim[1], per = tokens_per_item(ix);
    bool n = dn_shape_has_n(&ix->shape);
    k->par_n = n ? per : 0;
    k->par_b = n ? 0 : per;
    LLVMBuilderRef b = k->L->b;
    DnLoop l = dn_loop_begin(k, k->begin, k->end, "s");
    LLVMValueRef valid, row = load_index(k, l.i, V, &valid);
    LLVMValueRef src = dn_mul(k, LLVMBuildSelect(b, valid, row, dn_i64(k, 0), ""), dn_i64(k, D));
    LLVMValueRef dst = dn_mul(k, l.i, dn_i64(k, D));
    LLVMBasicBlockRef after = dn_if_begin(k, valid);
    DnLoop ld = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, D), "d");
    dn_store_f32(k, k->out[0], dn_add(k, dst, ld.i), dn_load_f32(k, k->in[1], dn_add(k, src, ld.i)));
    dn_loop_end(k, &ld);
    dn_if_end(k, after);
    LLVMValueRef invalid = LLVMBuildNot(b, valid, "");
    after = dn_if_begin(k, invalid);
    DnLoop lz = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, D), "d");
    dn_store_f32(k, k->out[0], dn_add(k, dst, lz.i), dn_f32(k, 0));
    dn_loop_end(k, &lz);
    dn_if_end(k, after);
    dn_loop_end(k, &l);
}

/* dweight[:, d] for the columns d in [begin, end): zero, then every token
 * in order adds dy[s, d] to row indices[s]. */
void dn_kernel_embedding_bwd(DnKernel *k)
{
    const DnValue *ix = k->op->in[0];
    int64_t V = dn_op_int(k->op, "num"), pad = dn_op_int(k->op, "padding_idx");
    int64_t D = k->op->out[0]->shape.dim[1];
    k->par_n = 0;
    k->par_b = D;
    LLVMBuilderRef b = k->L->b;
    DnLoop lv = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, V), "v");
    DnLoop lz = dn_loop_begin(k, k->begin, k->end, "d");
    dn_store_f32(k, k->out[0], dn_add(k, dn_mul(k, lv.i, dn_i64(k, D)), lz.i), dn_f32(k, 0));
    dn_loop_end(k, &lz);
    dn_loop_end(k, &lv);
    LLVMValueRef count = dn_numel(k, ix);
    DnLoop ls = dn_loop_begin(k, dn_i64(k, 0), count, "s");
    LLVMValueRef valid, row = load_index(k, ls.i, V, &valid);
    if (pad >= 0) valid = LLVMBuildAnd(b, valid, LLVMBuildICmp(b, LLVMIntNE, row, dn_i64(k, pad), ""), "");
    LLVMBasicBlockRef after = dn_if_begin(k, valid);
    LLVMValueRef dst = dn_mul(k, row, dn_i64(k, D)), src = dn_mul(k, ls.i, dn_i64(k, D));
    DnLoop ld = dn_loop_begin(k, k->begin, k->end, "d");
    LLVMValueRef at = dn_add(k, dst, ld.i);
    LLVMValueRef sum = LLVMBuildFAdd(b, dn_load_f32(k, k->out[0], at), dn_load_f32(k, k->in[1], dn_add(k, src, ld.i)),
                                     ""); /* plain fadd: the order is the contract */
    dn_store_f32(k, k->out[0], at, sum);
    dn_loop_end(k, &ld);
    dn_if_end(k, after);
    dn_loop_end(k, &ls);
}

/* y[i, j] = j <= i ? 0 : -1e9, parallel over the rows (a constant). */
void dn_kernel_causal_bias(DnKernel *k)
{
    int64_t rows = dn_op_int(k->op, "rows"), cols = dn_op_int(k->op, "cols");
    k->par_n = 0, k->par_b = rows;
    LLVMBuilderRef b = k->L->b;
    DnLoop li = dn_loop_begin(k, k->begin, k->end, "i");
    DnLoop lj = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, cols), "j");
    LLVMValueRef above = LLVMBuildICmp(b, LLVMIntSGT, lj.i, li.i, "");
    LLVMValueRef v = LLVMBuildSelect(b, above, dn_f32(k, -1e9), dn_f32(k, 0), "");
    dn_store_f32(k, k->out[0], dn_add(k, dn_mul(k, li.i, dn_i64(k, cols)), lj.i), v);
    dn_loop_end(k, &lj);
    dn_loop_end(k, &li);
}

/* A call of the C library's double function 'name' (sin, cos, exp). */
static LLVMValueRef f64_call(DnKernel *k, const char *name, LLVMValueRef x)
{
    LLVMTypeRef d = LLVMDoubleTypeInContext(k->L->ctx), fty = LLVMFunctionType(d, &d, 1, 0);
    LLVMValueRef f = LLVMGetNamedFunction(k->L->mod, name);
    if (!f) f = LLVMAddFunction(k->L->mod, name, fty);
    return LLVMBuildCall2(k->L->b, fty, f, &x, 1, "");
}

/* y[p, j] = (j even ? sin : cos)(p * exp(-(j - j % 2) ln(10000) / cols)), in double;
   parallel over the rows. */
/* The table's rows, or with an operand the rows it names (an iteration
 * per position: row pos[s] into row s of y, zeros for one outside the
 * table). */
void dn_kernel_sinusoid(DnKernel *k)
{
    int64_t rows = dn_op_int(k->op, "rows"), cols = dn_op_int(k->op, "cols");
    bool gather = k->op->nin == 1;
    k->par_n = 0, k->par_b = gather ? dn_shape_numel_static(&k->op->in[0]->shape) : rows;
    LLVMBuilderRef b = k->L->b;
    LLVMTypeRef d = LLVMDoubleTypeInContext(k->L->ctx);
    DnLoop lp = dn_loop_begin(k, k->begin, k->end, "p");
    LLVMValueRef valid = NULL, p = gather ? load_index(k, lp.i, rows, &valid) : lp.i;
    DnLoop lj = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, cols), "j");
    LLVMValueRef even = LLVMBuildAnd(b, lj.i, dn_i64(k, ~(int64_t)1), "");
    LLVMValueRef e =
        LLVMBuildFMul(b, LLVMBuildSIToFP(b, even, d, ""), LLVMConstReal(d, -log(10000.0) / (double)cols), "");
    LLVMValueRef ang = LLVMBuildFMul(b, LLVMBuildSIToFP(b, p, d, ""), f64_call(k, "exp", e), "");
    LLVMValueRef odd = LLVMBuildICmp(b, LLVMIntNE, LLVMBuildAnd(b, lj.i, dn_i64(k, 1), ""), dn_i64(k, 0), "");
    LLVMValueRef v = LLVMBuildFPTrunc(b, LLVMBuildSelect(b, odd, f64_call(k, "cos", ang), f64_call(k, "sin", ang), ""),
                                      k->L->f32, "");
    if (valid) v = LLVMBuildSelect(b, valid, v, dn_f32(k, 0), "");
    dn_store_f32(k, k->out[0], dn_add(k, dn_mul(k, lp.i, dn_i64(k, cols)), lj.i), v);
    dn_loop_end(k, &lj);
    dn_loop_end(k, &lp);
}

/* y[s, t] = t < lengths[s] ? 1 : 0. */
void dn_kernel_sequence_mask(DnKernel *k)
{
    const DnValue *len = k->op->in[0];
    int64_t per = tokens_per_item(len);
    LLVMValueRef T = dn_dim(k, k->op->out[0], k->op->out[0]->shape.rank - 1); /* max_len, or t */
    bool n = dn_shape_has_n(&len->shape);
    k->par_n = n ? per : 0;
    k->par_b = n ? 0 : per;
    LLVMBuilderRef b = k->L->b;
    DnLoop l = dn_loop_begin(k, k->begin, k->end, "s");
    LLVMValueRef L = LLVMBuildSExt(b, dn_load_i32(k, k->in[0], l.i), k->L->i64, "len");
    LLVMValueRef dst = dn_mul(k, l.i, T);
    DnLoop lt = dn_loop_begin(k, dn_i64(k, 0), T, "t");
    LLVMValueRef on = LLVMBuildICmp(b, LLVMIntSLT, lt.i, L, "");
    dn_store_f32(k, k->out[0], dn_add(k, dst, lt.i), LLVMBuildSelect(b, on, dn_f32(k, 1), dn_f32(k, 0), ""));
    dn_loop_end(k, &lt);
    dn_loop_end(k, &l);
}
