/* kernel_norm.c -- kernels of batch normalisation (ops.def): batchnorm
 * (inference, running statistics; parallel over (n, c) planes),
 * batchnorm_train (batch statistics, saved mean and 1/std, running
 * statistics updated in place as PyTorch; parallel over channels) and
 * batchnorm_bwd (dx, dweight, dbias; parallel over channels).
 * x is [N, C, ...]: S = product of the dims after C.  Channel sums run in
 * double in a fixed order.
 */
#include "llvm_internal.h"

static LLVMValueRef d64(DnKernel *k, double v) { return LLVMConstReal(k->L->f64, v); }
static LLVMValueRef ext(DnKernel *k, LLVMValueRef x) { return LLVMBuildFPExt(k->L->b, x, k->L->f64, ""); }
static LLVMValueRef trunc32(DnKernel *k, LLVMValueRef x) { return LLVMBuildFPTrunc(k->L->b, x, k->L->f32, ""); }
static LLVMValueRef fsub(DnKernel *k, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildFSub(k->L->b, a, b, ""); }

static LLVMValueRef sqrt64(DnKernel *k, LLVMValueRef x)
{
    LLVMTypeRef fty = LLVMFunctionType(k->L->f64, &k->L->f64, 1, 0);
    LLVMValueRef f = LLVMGetNamedFunction(k->L->mod, "llvm.sqrt.f64");
    if (!f) f = LLVMAddFunction(k->L->mod, "llvm.sqrt.f64", fty);
    return LLVMBuildCall2(k->L->b, fty, f, &x, 1, "");
}

/* Elements per (n, c) plane. */
static int64_t plane_size(const DnValue *x)
{
    int64_t s = 1;
    for (int i = 2; i < x->shape.rank; i++) s *= x->shape.dim[i];
    return s;
}

/* Flat index of element s of plane (n, c). */
static LLVMValueRef elem(DnKernel *k, LLVMValueRef n, int64_t C, LLVMValueRef c, int64_t S, LLVMValueRef s)
{
    return dn_add(k, dn_mul(k, dn_add(k, dn_mul(k, n, dn_i64(k, C)), c), dn_i64(k, S)), s);
}

/* y = (x - mean) / sqrt(var + eps) * weight + bias, running statistics. */
void dn_kernel_batchnorm(DnKernel *k)
{
    LLVMBuilderRef b = k->L->b;
    const DnValue *x = k->op->in[0];
    int64_t C = x->shape.dim[1], S = plane_size(x);
    k->par_n = dn_shape_has_n(&x->shape) ? C : 0;
    k->par_b = dn_shape_has_n(&x->shape) ? 0 : x->shape.dim[0] * C;
    DnLoop lp = dn_loop_begin(k, k->begin, k->end, "plane");
    LLVMValueRef c = LLVMBuildSRem(b, lp.i, dn_i64(k, C), "c");
    LLVMValueRef var = dn_fadd(k, dn_load_f32(k, k->in[4], c), dn_f32(k, dn_op_float(k->op, "eps")));
    LLVMValueRef inv = LLVMBuildFDiv(b, dn_f32(k, 1), dn_call_f32(k, "llvm.sqrt.f32", var), "");
    LLVMValueRef scale = dn_fmul(k, inv, dn_load_f32(k, k->in[1], c));
    LLVMValueRef mean = dn_load_f32(k, k->in[3], c), bias = dn_load_f32(k, k->in[2], c);
    DnLoop ls = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, S), "s");
    LLVMValueRef i = dn_add(k, dn_mul(k, lp.i, dn_i64(k, S)), ls.i);
    dn_store_f32(k, k->out[0], i, dn_fadd(k, dn_fmul(k, fsub(k, dn_load_f32(k, k->in[0], i), mean), scale), bias));
    dn_loop_end(k, &ls);
    dn_loop_end(k, &lp);
}

/* Sum over channel c's elements of x (when 'sub' is NULL) or of
 * (x - sub)^2, in double. */
static LLVMValueRef channel_sum(DnKernel *k, LLVMValueRef c, int64_t C, int64_t S, LLVMValueRef sub)
{
    LLVMBuilderRef b = k->L->b;
    LLVMValueRef acc = dn_var(k, k->L->f64, d64(k, 0), "acc");
    DnLoop ln = dn_loop_begin(k, dn_i64(k, 0), dn_dim(k, k->op->in[0], 0), "n");
    DnLoop ls = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, S), "s");
    LLVMValueRef v = ext(k, dn_load_f32(k, k->in[0], elem(k, ln.i, C, c, S, ls.i)));
    if (sub) {
        v = LLVMBuildFSub(b, v, sub, "");
        v = LLVMBuildFMul(b, v, v, "");
    }
    dn_set(k, acc, LLVMBuildFAdd(b, dn_get(k, acc, k->L->f64), v, ""));
    dn_loop_end(k, &ls);
    dn_loop_end(k, &ln);
    return dn_get(k, acc, k->L->f64);
}

/* running = (1 - m) running + m v, in place in state tensor 'buf'. */
static void blend(DnKernel *k, LLVMValueRef buf, LLVMValueRef c, double m, LLVMValueRef v)
{
    LLVMValueRef old = dn_fmul(k, dn_f32(k, 1.0 - m), dn_load_f32(k, buf, c));
    dn_store_f32(k, buf, c, dn_fadd(k, old, dn_fmul(k, dn_f32(k, m), trunc32(k, v))));
}

/* num_batches_tracked += 1, once per step: by the chunk holding channel 0. */
static void count_batch(DnKernel *k)
{
    LLVMBuilderRef b = k->L->b;
    LLVMBasicBlockRef after = dn_if_begin(k, LLVMBuildICmp(b, LLVMIntEQ, k->begin, dn_i64(k, 0), ""));
    LLVMValueRef old = LLVMBuildLoad2(b, k->L->i64, k->in[5], "nbt");
    LLVMBuildStore(b, LLVMBuildAdd(b, old, dn_i64(k, 1), ""), k->in[5]);
    dn_if_end(k, after);
}

void dn_kernel_batchnorm_train(DnKernel *k)
{
    LLVMBuilderRef b = k->L->b;
    const DnValue *x = k->op->in[0];
    int64_t C = x->shape.dim[1], S = plane_size(x);
    double eps = dn_op_float(k->op, "eps"), mom = dn_op_float(k->op, "momentum");
    k->par_n = 0;
    k->par_b = C;
    if (k->in[5]) count_batch(k);
    LLVMValueRef M = LLVMBuildSIToFP(b, dn_mul(k, dn_dim(k, x, 0), dn_i64(k, S)), k->L->f64, "M");
    DnLoop lc = dn_loop_begin(k, k->begin, k->end, "c");
    LLVMValueRef mean = LLVMBuildFDiv(b, channel_sum(k, lc.i, C, S, NULL), M, "mean");
    LLVMValueRef var = LLVMBuildFDiv(b, channel_sum(k, lc.i, C, S, mean), M, "var");
    LLVMValueRef sd = LLVMBuildFAdd(b, var, d64(k, eps), "");
    LLVMValueRef inv = LLVMBuildFDiv(b, d64(k, 1), sqrt64(k, sd), "invstd");
    LLVMValueRef mean32 = trunc32(k, mean), inv32 = trunc32(k, inv);
    dn_store_f32(k, k->out[1], lc.i, mean32);
    dn_store_f32(k, k->out[2], lc.i, inv32);
    LLVMValueRef scale = dn_fmul(k, inv32, dn_load_f32(k, k->in[1], lc.i)), bias = dn_load_f32(k, k->in[2], lc.i);
    DnLoop ln = dn_loop_begin(k, dn_i64(k, 0), dn_dim(k, k->op->in[0], 0), "n");
    DnLoop ls = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, S), "s");
    LLVMValueRef i = elem(k, ln.i, C, lc.i, S, ls.i);
    dn_store_f32(k, k->out[0], i, dn_fadd(k, dn_fmul(k, fsub(k, dn_load_f32(k, k->in[0], i), mean32), scale), bias));
    dn_loop_end(k, &ls);
    dn_loop_end(k, &ln);
    LLVMValueRef Mm1 = LLVMBuildFSub(b, M, d64(k, 1), "");
    Mm1 = LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealOGT, Mm1, d64(k, 0), ""), Mm1, d64(k, 1), "");
    blend(k, k->in[3], lc.i, mom, mean);
    blend(k, k->in[4], lc.i, mom, LLVMBuildFDiv(b, LLVMBuildFMul(b, var, M, ""), Mm1, "unbiased"));
    dn_loop_end(k, &lc);
}

/* dbias = sum dy;  dweight = sum dy xhat;
 * dx = weight invstd / M (M dy - dbias - xhat dweight). */
void dn_kernel_batchnorm_bwd(DnKernel *k)
{
    LLVMBuilderRef b = k->L->b;
    const DnValue *x = k->op->in[0];
    int64_t C = x->shape.dim[1], S = plane_size(x);
    k->par_n = 0;
    k->par_b = C;
    LLVMValueRef Mi = dn_mul(k, dn_dim(k, x, 0), dn_i64(k, S));
    DnLoop lc = dn_loop_begin(k, k->begin, k->end, "c");
    LLVMValueRef mean = dn_load_f32(k, k->in[2], lc.i), inv = dn_load_f32(k, k->in[3], lc.i);
    LLVMValueRef sdy = dn_var(k, k->L->f64, d64(k, 0), "sdy"), sdx = dn_var(k, k->L->f64, d64(k, 0), "sdyx");
    DnLoop ln = dn_loop_begin(k, dn_i64(k, 0), dn_dim(k, k->op->in[0], 0), "n");
    DnLoop ls = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, S), "s");
    LLVMValueRef i = elem(k, ln.i, C, lc.i, S, ls.i);
    LLVMValueRef dy = dn_load_f32(k, k->in[4], i);
    LLVMValueRef xh = dn_fmul(k, fsub(k, dn_load_f32(k, k->in[0], i), mean), inv);
    dn_set(k, sdy, LLVMBuildFAdd(b, dn_get(k, sdy, k->L->f64), ext(k, dy), ""));
    dn_set(k, sdx, LLVMBuildFAdd(b, dn_get(k, sdx, k->L->f64), ext(k, dn_fmul(k, dy, xh)), ""));
    dn_loop_end(k, &ls);
    dn_loop_end(k, &ln);
    LLVMValueRef db = trunc32(k, dn_get(k, sdy, k->L->f64)), dw = trunc32(k, dn_get(k, sdx, k->L->f64));
    dn_store_f32(k, k->out[1], lc.i, dw);
    dn_store_f32(k, k->out[2], lc.i, db);
    LLVMValueRef Mf = LLVMBuildSIToFP(b, Mi, k->L->f32, "");
    LLVMValueRef coef = LLVMBuildFDiv(b, dn_fmul(k, dn_load_f32(k, k->in[1], lc.i), inv), Mf, "");
    DnLoop ln2 = dn_loop_begin(k, dn_i64(k, 0), dn_dim(k, k->op->in[0], 0), "n");
    DnLoop ls2 = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, S), "s");
    i = elem(k, ln2.i, C, lc.i, S, ls2.i);
    dy = dn_load_f32(k, k->in[4], i);
    xh = dn_fmul(k, fsub(k, dn_load_f32(k, k->in[0], i), mean), inv);
    LLVMValueRef t = fsub(k, fsub(k, dn_fmul(k, Mf, dy), db), dn_fmul(k, xh, dw));
    dn_store_f32(k, k->out[0], i, dn_fmul(k, coef, t));
    dn_loop_end(k, &ls2);
    dn_loop_end(k, &ln2);
    dn_loop_end(k, &lc);
}
