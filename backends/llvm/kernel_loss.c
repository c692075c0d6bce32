/* kernel_loss.c -- kernels of the losses and their gradients (ops.def):
 * cross_entropy (with label smoothing), mse, cross_entropy_bwd, mse_bwd.
 *
 * The losses reduce across the batch, so they run serially and accumulate
 * in double (deterministic: the same sum for any thread count); the
 * gradients are pointwise or per row and run in parallel.  cross_entropy's
 * rows are every position of the logits but the last axis ([N, K] or
 * [N, T, K]); its mean divides by the run-time count of rows whose label is
 * not ignore_index (N * T when none is).
 */
#include <math.h>

#include "llvm_internal.h"

static LLVMValueRef to_f64(DnKernel *k, LLVMValueRef x) { return LLVMBuildFPExt(k->L->b, x, k->L->f64, ""); }
static LLVMValueRef i64_to_f32(DnKernel *k, LLVMValueRef x) { return LLVMBuildSIToFP(k->L->b, x, k->L->f32, ""); }
static LLVMValueRef fsub(DnKernel *k, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildFSub(k->L->b, a, b, ""); }

/* The rows of the logits [N, ..., K] (every position but the last axis):
 * per batch item when they hold N (*has_n), else all of them. */
static int64_t rows_per(const DnValue *x, bool *has_n)
{
    *has_n = dn_shape_has_n(&x->shape);
    return dn_shape_numel_static(&x->shape) / x->shape.dim[x->shape.rank - 1];
}

/* All rows as an i64 value. */
static LLVMValueRef rows_all(DnKernel *k, const DnValue *x)
{
    bool n;
    int64_t per = rows_per(x, &n);
    return n ? dn_mul(k, k->n, dn_i64(k, per)) : dn_i64(k, per);
}

/* The number of rows whose label is not ignore_index, as an i64 value (a serial scan). */
static LLVMValueRef kept_rows(DnKernel *k, LLVMValueRef rows, int64_t ignore)
{
    LLVMBuilderRef b = k->L->b;
    LLVMValueRef cnt = dn_var(k, k->L->i64, dn_i64(k, 0), "kept");
    DnLoop l = dn_loop_begin(k, dn_i64(k, 0), rows, "r");
    LLVMValueRef lab = LLVMBuildSExt(b, dn_load_i32(k, k->in[1], l.i), k->L->i64, "");
    LLVMValueRef keep = LLVMBuildZExt(b, LLVMBuildICmp(b, LLVMIntNE, lab, dn_i64(k, ignore), ""), k->L->i64, "");
    dn_set(k, cnt, dn_add(k, dn_get(k, cnt, k->L->i64), keep));
    dn_loop_end(k, &l);
    return dn_get(k, cnt, k->L->i64);
}

/* Whether row r's label is kept (not ignore_index). */
static LLVMValueRef kept(DnKernel *k, LLVMValueRef r, int64_t ignore)
{
    LLVMBuilderRef b = k->L->b;
    LLVMValueRef lab = LLVMBuildSExt(b, dn_load_i32(k, k->in[1], r), k->L->i64, "");
    return LLVMBuildICmp(b, LLVMIntNE, lab, dn_i64(k, ignore), "kept");
}

/* Row statistics of the softmax: max m and sum of exp(x - m); also sum x. */
typedef struct RowStats {
    LLVMValueRef max, sumexp, sumx;
} RowStats;

static RowStats row_stats(DnKernel *k, LLVMValueRef row, int64_t K)
{
    LLVMValueRef m = dn_var(k, k->L->f32, dn_f32(k, -INFINITY), "max");
    DnLoop l = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, K), "k");
    LLVMValueRef x = dn_load_f32(k, k->in[0], dn_add(k, row, l.i));
    dn_set(k, m, dn_fmax(k, dn_get(k, m, k->L->f32), x));
    dn_loop_end(k, &l);
    LLVMValueRef mx = dn_get(k, m, k->L->f32);
    LLVMValueRef se = dn_var(k, k->L->f32, dn_f32(k, 0), "sumexp");
    LLVMValueRef sx = dn_var(k, k->L->f32, dn_f32(k, 0), "sumx");
    DnLoop l2 = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, K), "k");
    x = dn_load_f32(k, k->in[0], dn_add(k, row, l2.i));
    dn_set(k, se, dn_fadd(k, dn_get(k, se, k->L->f32), dn_call_f32(k, "llvm.exp.f32", fsub(k, x, mx))));
    dn_set(k, sx, dn_fadd(k, dn_get(k, sx, k->L->f32), x));
    dn_loop_end(k, &l2);
    return (RowStats){mx, dn_get(k, se, k->L->f32), dn_get(k, sx, k->L->f32)};
}

/* The label of row n and whether it lies in [0, K) (others contribute no
 * label term); the returned index is clamped to 0 when invalid. */
static LLVMValueRef label_of(DnKernel *k, LLVMValueRef n, int64_t K, LLVMValueRef *valid)
{
    LLVMBuilderRef b = k->L->b;
    LLVMValueRef lab = LLVMBuildSExt(b, dn_load_i32(k, k->in[1], n), k->L->i64, "");
    *valid = LLVMBuildICmp(b, LLVMIntULT, lab, dn_i64(k, K), "valid");
    return LLVMBuildSelect(b, *valid, lab, dn_i64(k, 0), "");
}

/* loss = sum over kept rows r of [ -(1-s) logp[r,label] - s/K sum_k logp[r,k] ] / (kept rows);
 * serial, the sum in double; no kept row: 0/0 = NaN (PyTorch's). */
void dn_kernel_cross_entropy(DnKernel *k)
{
    LLVMBuilderRef b = k->L->b;
    const DnValue *x = k->op->in[0];
    int64_t K = x->shape.dim[x->shape.rank - 1], ignore = dn_op_int(k->op, "ignore_index");
    double s = dn_op_float(k->op, "smoothing");
    LLVMValueRef total = dn_var(k, k->L->f64, LLVMConstReal(k->L->f64, 0), "total");
    LLVMValueRef count = dn_var(k, k->L->i64, dn_i64(k, 0), "count");
    DnLoop l = dn_loop_begin(k, dn_i64(k, 0), rows_all(k, x), "r");
    LLVMBasicBlockRef after = dn_if_begin(k, kept(k, l.i, ignore));
    LLVMValueRef row = dn_mul(k, l.i, dn_i64(k, K));
    RowStats st = row_stats(k, row, K);
    LLVMValueRef lse = dn_fadd(k, st.max, dn_call_f32(k, "llvm.log.f32", st.sumexp));
    LLVMValueRef valid, lab = label_of(k, l.i, K, &valid);
    LLVMValueRef lp = fsub(k, dn_load_f32(k, k->in[0], dn_add(k, row, lab)), lse);
    lp = LLVMBuildSelect(b, valid, lp, dn_f32(k, 0), "");
    LLVMValueRef sum_lp = fsub(k, st.sumx, dn_fmul(k, dn_f32(k, (double)K), lse));
    LLVMValueRef term = dn_fmul(k, dn_f32(k, -(1.0 - s)), lp);
    if (s != 0) term = fsub(k, term, dn_fmul(k, dn_f32(k, s / (double)K), sum_lp));
    dn_set(k, total, LLVMBuildFAdd(b, dn_get(k, total, k->L->f64), to_f64(k, term), ""));
    dn_set(k, count, dn_add(k, dn_get(k, count, k->L->i64), dn_i64(k, 1)));
    dn_if_end(k, after);
    dn_loop_end(k, &l);
    LLVMValueRef nf = LLVMBuildSIToFP(b, dn_get(k, count, k->L->i64), k->L->f64, "");
    LLVMValueRef mean = LLVMBuildFDiv(b, dn_get(k, total, k->L->f64), nf, "");
    dn_store_f32(k, k->out[0], dn_i64(k, 0), LLVMBuildFPTrunc(b, mean, k->L->f32, ""));
    k->par_n = 0;
    k->par_b = 1;
}

/* dlogits[r] = dloss / (kept rows) * (softmax - ((1-s) onehot + s/K)) for a
 * kept row, 0 for an ignored one; parallel over rows (each call counts the
 * kept rows first). */
void dn_kernel_cross_entropy_bwd(DnKernel *k)
{
    LLVMBuilderRef b = k->L->b;
    const DnValue *x = k->op->in[0];
    int64_t K = x->shape.dim[x->shape.rank - 1], ignore = dn_op_int(k->op, "ignore_index");
    double s = dn_op_float(k->op, "smoothing");
    bool has_n;
    int64_t per = rows_per(x, &has_n);
    k->par_n = has_n ? per : 0;
    k->par_b = has_n ? 0 : per;
    LLVMValueRef nb = i64_to_f32(k, kept_rows(k, rows_all(k, x), ignore));
    LLVMValueRef coef = LLVMBuildFDiv(b, dn_load_f32(k, k->in[2], dn_i64(k, 0)), nb, "");
    DnLoop l = dn_loop_begin(k, k->begin, k->end, "r");
    LLVMValueRef row = dn_mul(k, l.i, dn_i64(k, K));
    LLVMValueRef keep = kept(k, l.i, ignore);
    LLVMBasicBlockRef after = dn_if_begin(k, keep);
    RowStats st = row_stats(k, row, K);
    LLVMValueRef inv = LLVMBuildFDiv(b, dn_f32(k, 1), st.sumexp, "");
    LLVMValueRef valid, lab = label_of(k, l.i, K, &valid);
    DnLoop lk = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, K), "k");
    LLVMValueRef xv = dn_load_f32(k, k->in[0], dn_add(k, row, lk.i));
    LLVMValueRef p = dn_fmul(k, dn_call_f32(k, "llvm.exp.f32", fsub(k, xv, st.max)), inv);
    LLVMValueRef hit = LLVMBuildAnd(b, valid, LLVMBuildICmp(b, LLVMIntEQ, lk.i, lab, ""), "");
    LLVMValueRef t = LLVMBuildSelect(b, hit, dn_f32(k, 1.0 - s + s / (double)K), dn_f32(k, s / (double)K), "");
    dn_store_f32(k, k->out[0], dn_add(k, row, lk.i), dn_fmul(k, coef, fsub(k, p, t)));
    dn_loop_end(k, &lk);
    dn_if_end(k, after);
    after = dn_if_begin(k, LLVMBuildNot(b, keep, ""));
    DnLoop lz = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, K), "k");
    dn_store_f32(k, k->out[0], dn_add(k, row, lz.i), dn_f32(k, 0));
    dn_loop_end(k, &lz);
    dn_if_end(k, after);
    dn_loop_end(k, &l);
}

/* loss = mean over all elements of (pred - target)^2; serial, in double. */
void dn_kernel_mse(DnKernel *k)
{
    LLVMBuilderRef b = k->L->b;
    LLVMValueRef numel = dn_numel(k, k->op->in[0]);
    LLVMValueRef total = dn_var(k, k->L->f64, LLVMConstReal(k->L->f64, 0), "total");
    DnLoop l = dn_loop_begin(k, dn_i64(k, 0), numel, "i");
    LLVMValueRef d = to_f64(k, fsub(k, dn_load_f32(k, k->in[0], l.i), dn_load_f32(k, k->in[1], l.i)));
    dn_set(k, total, LLVMBuildFAdd(b, dn_get(k, total, k->L->f64), LLVMBuildFMul(b, d, d, ""), ""));
    dn_loop_end(k, &l);
    LLVMValueRef mean = LLVMBuildFDiv(b, dn_get(k, total, k->L->f64), LLVMBuildSIToFP(b, numel, k->L->f64, ""), "");
    dn_store_f32(k, k->out[0], dn_i64(k, 0), LLVMBuildFPTrunc(b, mean, k->L->f32, ""));
    k->par_n = 0;
    k->par_b = 1;
}

/* dpred = dloss * 2 (pred - target) / numel; parallel over elements. */
void dn_kernel_mse_bwd(DnKernel *k)
{
    const DnValue *p = k->op->in[0];
    int64_t s = dn_shape_numel_static(&p->shape);
    k->par_n = dn_shape_has_n(&p->shape) ? s : 0;
    k->par_b = dn_shape_has_n(&p->shape) ? 0 : s;
    LLVMValueRef two = dn_fmul(k, dn_f32(k, 2), dn_load_f32(k, k->in[2], dn_i64(k, 0)));
    LLVMValueRef coef = LLVMBuildFDiv(k->L->b, two, i64_to_f32(k, dn_numel(k, p)), "coef");
    DnLoop l = dn_loop_begin(k, k->begin, k->end, "i");
    LLVMValueRef d = fsub(k, dn_load_f32(k, k->in[0], l.i), dn_load_f32(k, k->in[1], l.i));
    dn_store_f32(k, k->out[0], l.i, dn_fmul(k, coef, d));
    dn_loop_end(k, &l);
}
