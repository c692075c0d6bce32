/* kernel_pool.c -- maxpool2d and avgpool2d forward on NCHW.
 *
 * Parallel over (n, c) planes (par_n = C).  Each output cell reduces its
 * window with the padding cells skipped: for max they count as -inf, for
 * avg as zeros that still count in the divisor (count_include_pad, as
 * PyTorch's default).  Window loops are unrolled at generation time.
 */
#include <math.h>

#include "llvm_internal.h"

typedef struct Pool {
    int64_t H, W, OH, OW, k[2], s[2], p[2];
} Pool;

static Pool pool_params(const DnOp *op)
{
    const DnValue *x = op->in[0], *y = op->out[0];
    Pool pl = {.H = x->shape.dim[2], .W = x->shape.dim[3], .OH = y->shape.dim[2], .OW = y->shape.dim[3]};
    int n;
    const int64_t *kk = dn_op_ints(op, "kernel", &n), *s = dn_op_ints(op, "stride", &n), *p = dn_op_ints(op, "pad", &n);
    for (int i = 0; i < 2; i++) pl.k[i] = kk[i], pl.s[i] = s[i], pl.p[i] = p[i];
    return pl;
}

/* Reduces the window of output cell (i, j) of the plane at 'xplane'. */
static LLVMValueRef window(DnKernel *k, const Pool *pl, bool is_max, LLVMValueRef xplane, LLVMValueRef i,
                           LLVMValueRef j)
{
    LLVMBuilderRef b = k->L->b;
    LLVMValueRef acc = dn_var(k, k->L->f32, dn_f32(k, is_max ? -INFINITY : 0.0), "acc");
    LLVMValueRef ih0 = dn_add(k, dn_mul(k, i, dn_i64(k, pl->s[0])), dn_i64(k, -pl->p[0]));
    LLVMValueRef iw0 = dn_add(k, dn_mul(k, j, dn_i64(k, pl->s[1])), dn_i64(k, -pl->p[1]));
    for (int64_t a = 0; a < pl->k[0]; a++)
        for (int64_t c = 0; c < pl->k[1]; c++) {
            LLVMValueRef ih = dn_add(k, ih0, dn_i64(k, a)), iw = dn_add(k, iw0, dn_i64(k, c));
            LLVMValueRef ok = LLVMBuildAnd(b, LLVMBuildICmp(b, LLVMIntULT, ih, dn_i64(k, pl->H), ""),
                                           LLVMBuildICmp(b, LLVMIntULT, iw, dn_i64(k, pl->W), ""), "in");
            LLVMBasicBlockRef after = dn_if_begin(k, ok);
            LLVMValueRef v =
                dn_load_f32(k, k->in[0], dn_add(k, xplane, dn_add(k, dn_mul(k, ih, dn_i64(k, pl->W)), iw)));
            LLVMValueRef cur = dn_get(k, acc, k->L->f32);
            if (is_max)
                v = LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealOGT, v, cur, ""), v, cur, "");
            else
                v = LLVMBuildFAdd(b, cur, v, "");
            dn_set(k, acc, v);
            dn_if_end(k, after);
        }
    LLVMValueRef r = dn_get(k, acc, k->L->f32);
    return is_max ? r : LLVMBuildFMul(b, r, dn_f32(k, 1.0 / (double)(pl->k[0] * pl->k[1])), "");
}

static void gen_pool(DnKernel *k, bool is_max)
{
    Pool pl = pool_params(k->op);
    const DnValue *x = k->op->in[0];
    k->par_n = dn_shape_has_n(&x->shape) ? x->shape.dim[1] : 0;
    k->par_b = k->par_n ? 0 : x->shape.dim[0] * x->shape.dim[1];
    DnLoop lp = dn_loop_begin(k, k->begin, k->end, "plane");
    LLVMValueRef xplane = dn_mul(k, lp.i, dn_i64(k, pl.H * pl.W));
    LLVMValueRef yplane = dn_mul(k, lp.i, dn_i64(k, pl.OH * pl.OW));
    DnLoop li = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, pl.OH), "i");
    DnLoop lj = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, pl.OW), "j");
    LLVMValueRef v = window(k, &pl, is_max, xplane, li.i, lj.i);
    dn_store_f32(k, k->out[0], dn_add(k, yplane, dn_add(k, dn_mul(k, li.i, dn_i64(k, pl.OW)), lj.i)), v);
    dn_loop_end(k, &lj);
    dn_loop_end(k, &li);
    dn_loop_end(k, &lp);
}

void dn_kernel_maxpool2d(DnKernel *k) { gen_pool(k, true); }
void dn_kernel_avgpool2d(DnKernel *k) { gen_pool(k, false); }
