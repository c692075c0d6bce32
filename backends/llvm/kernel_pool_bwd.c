/* kernel_pool_bwd.c -- kernels of maxpool2d_bwd and avgpool2d_bwd (ops.def).
 *
 * Both scatter each output cell's gradient into its window of one (n, c)
 * plane, so iterations are planes (N*C, parallel) and every plane is
 * cleared first.  Max pooling sends the gradient to the window's first
 * maximal element (PyTorch's choice; padding never wins); average pooling
 * spreads it evenly over KH*KW cells (count_include_pad).
 */
#include <math.h>

#include "llvm_internal.h"

typedef struct Pool {
    int64_t C, H, W, OH, OW, kh, kw, sh, sw, ph, pw;
} Pool;

/* Geometry from input 'x' (or the dx result) and output gradient 'dy'. */
static Pool geometry(DnKernel *k, const DnValue *x, const DnValue *dy)
{
    int n;
    const int64_t *ker = dn_op_ints(k->op, "kernel", &n), *st = dn_op_ints(k->op, "stride", &n),
                  *pad = dn_op_ints(k->op, "pad", &n);
    Pool p = {
        x->shape.dim[1], x->shape.dim[2], x->shape.dim[3], dy->shape.dim[2], dy->shape.dim[3], ker[0], ker[1], st[0],
        st[1],           pad[0],          pad[1]};
    k->par_n = p.C;
    k->par_b = 0;
    return p;
}

/* ih = o * s - p + t, and whether 0 <= ih < lim. */
static LLVMValueRef coord(DnKernel *k, LLVMValueRef o, int64_t s, int64_t p, LLVMValueRef t, int64_t lim,
                          LLVMValueRef *ok)
{
    LLVMBuilderRef b = k->L->b;
    LLVMValueRef i = dn_add(k, dn_add(k, dn_mul(k, o, dn_i64(k, s)), dn_i64(k, -p)), t);
    *ok = LLVMBuildICmp(b, LLVMIntULT, i, dn_i64(k, lim), "");
    return i;
}

static void clear_plane(DnKernel *k, LLVMValueRef base, int64_t size)
{
    DnLoop l = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, size), "z");
    dn_store_f32(k, k->out[0], dn_add(k, base, l.i), dn_f32(k, 0));
    dn_loop_end(k, &l);
}

/* Windows that tile the plane without overlap or padding (stride = kernel,
 * pad 0): every input cell is in at most one window, so each window
 * writes its cells directly (dy at the first maximum, 0 elsewhere) with
 * no clearing pass and no read-modify-write; the argmax is branch-free.
 * Cells past the last window are cleared first.  Not for ceil_mode's last
 * window that runs past the plane (the general kernel skips those cells). */
static void maxpool_bwd_tiled(DnKernel *k, const Pool *p)
{
    LLVMBuilderRef b = k->L->b;
    LLVMTypeRef i32 = k->L->i32, f32 = k->L->f32;
    DnLoop lp = dn_loop_begin(k, k->begin, k->end, "plane");
    LLVMValueRef xb = dn_mul(k, lp.i, dn_i64(k, p->H * p->W)), yb = dn_mul(k, lp.i, dn_i64(k, p->OH * p->OW));
    if (p->OH * p->kh < p->H || p->OW * p->kw < p->W) clear_plane(k, xb, p->H * p->W);
    DnLoop lo = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, p->OH), "oh");
    DnLoop lw = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, p->OW), "ow");
    LLVMValueRef corner =
        dn_add(k, xb, dn_add(k, dn_mul(k, lo.i, dn_i64(k, p->sh * p->W)), dn_mul(k, lw.i, dn_i64(k, p->sw))));
    LLVMValueRef best = dn_f32(k, -INFINITY), arg = LLVMConstInt(i32, (unsigned long long)-1, 1);
    for (int64_t t = 0; t < p->kh * p->kw; t++) {
        LLVMValueRef x = dn_load_f32(k, k->in[0], dn_add(k, corner, dn_i64(k, t / p->kw * p->W + t % p->kw)));
        LLVMValueRef gt = LLVMBuildFCmp(b, LLVMRealOGT, x, best, "");
        best = LLVMBuildSelect(b, gt, x, best, "");
        arg = LLVMBuildSelect(b, gt, LLVMConstInt(i32, (unsigned long long)t, 0), arg, "");
    }
    LLVMValueRef dy = dn_load_f32(k, k->in[1], dn_add(k, yb, dn_add(k, dn_mul(k, lo.i, dn_i64(k, p->OW)), lw.i)));
    for (int64_t t = 0; t < p->kh * p->kw; t++) {
        LLVMValueRef hit = LLVMBuildICmp(b, LLVMIntEQ, arg, LLVMConstInt(i32, (unsigned long long)t, 0), "");
        LLVMValueRef v = LLVMBuildSelect(b, hit, dy, LLVMConstReal(f32, 0), "");
        dn_store_f32(k, k->out[0], dn_add(k, corner, dn_i64(k, t / p->kw * p->W + t % p->kw)), v);
    }
    dn_loop_end(k, &lw);
    dn_loop_end(k, &lo);
    dn_loop_end(k, &lp);
}

void dn_kernel_maxpool2d_bwd(DnKernel *k)
{
    LLVMBuilderRef b = k->L->b;
    Pool p = geometry(k, k->op->in[0], k->op->in[1]);
    if (p.ph == 0 && p.pw == 0 && p.sh == p.kh && p.sw == p.kw && p.OH * p.kh <= p.H && p.OW * p.kw <= p.W) {
        maxpool_bwd_tiled(k, &p);
        return;
    }
    DnLoop lp = dn_loop_begin(k, k->begin, k->end, "plane");
    LLVMValueRef xb = dn_mul(k, lp.i, dn_i64(k, p.H * p.W)), yb = dn_mul(k, lp.i, dn_i64(k, p.OH * p.OW));
    clear_plane(k, xb, p.H * p.W);
    DnLoop lo = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, p.OH), "oh");
    DnLoop lw = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, p.OW), "ow");
    LLVMValueRef best = dn_var(k, k->L->f32, dn_f32(k, -INFINITY), "best");
    LLVMValueRef arg = dn_var(k, k->L->i64, dn_i64(k, -1), "arg");
    DnLoop lkh = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, p.kh), "kh");
    DnLoop lkw = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, p.kw), "kw");
    LLVMValueRef okh, okw;
    LLVMValueRef ih = coord(k, lo.i, p.sh, p.ph, lkh.i, p.H, &okh), iw = coord(k, lw.i, p.sw, p.pw, lkw.i, p.W, &okw);
    LLVMBasicBlockRef in = dn_if_begin(k, LLVMBuildAnd(b, okh, okw, ""));
    LLVMValueRef idx = dn_add(k, xb, dn_add(k, dn_mul(k, ih, dn_i64(k, p.W)), iw));
    LLVMValueRef x = dn_load_f32(k, k->in[0], idx);
    LLVMBasicBlockRef better = dn_if_begin(k, LLVMBuildFCmp(b, LLVMRealOGT, x, dn_get(k, best, k->L->f32), ""));
    dn_set(k, best, x);
    dn_set(k, arg, idx);
    dn_if_end(k, better);
    dn_if_end(k, in);
    dn_loop_end(k, &lkw);
    dn_loop_end(k, &lkh);
    LLVMValueRef a = dn_get(k, arg, k->L->i64);
    LLVMBasicBlockRef found = dn_if_begin(k, LLVMBuildICmp(b, LLVMIntSGE, a, dn_i64(k, 0), ""));
    LLVMValueRef dy = dn_load_f32(k, k->in[1], dn_add(k, yb, dn_add(k, dn_mul(k, lo.i, dn_i64(k, p.OW)), lw.i)));
    dn_store_f32(k, k->out[0], a, dn_fadd(k, dn_load_f32(k, k->out[0], a), dy));
    dn_if_end(k, found);
    dn_loop_end(k, &lw);
    dn_loop_end(k, &lo);
    dn_loop_end(k, &lp);
}

void dn_kernel_avgpool2d_bwd(DnKernel *k)
{
    LLVMBuilderRef b = k->L->b;
    Pool p = geometry(k, k->op->out[0], k->op->in[0]);
    DnLoop lp = dn_loop_begin(k, k->begin, k->end, "plane");
    LLVMValueRef xb = dn_mul(k, lp.i, dn_i64(k, p.H * p.W)), yb = dn_mul(k, lp.i, dn_i64(k, p.OH * p.OW));
    clear_plane(k, xb, p.H * p.W);
    DnLoop lo = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, p.OH), "oh");
    DnLoop lw = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, p.OW), "ow");
    LLVMValueRef dy = dn_load_f32(k, k->in[0], dn_add(k, yb, dn_add(k, dn_mul(k, lo.i, dn_i64(k, p.OW)), lw.i)));
    LLVMValueRef share = dn_fmul(k, dy, dn_f32(k, 1.0 / (double)(p.kh * p.kw)));
    DnLoop lkh = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, p.kh), "kh");
    DnLoop lkw = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, p.kw), "kw");
    LLVMValueRef okh, okw;
    LLVMValueRef ih = coord(k, lo.i, p.sh, p.ph, lkh.i, p.H, &okh), iw = coord(k, lw.i, p.sw, p.pw, lkw.i, p.W, &okw);
    LLVMBasicBlockRef in = dn_if_begin(k, LLVMBuildAnd(b, okh, okw, ""));
    LLVMValueRef idx = dn_add(k, xb, dn_add(k, dn_mul(k, ih, dn_i64(k, p.W)), iw));
    dn_store_f32(k, k->out[0], idx, dn_fadd(k, dn_load_f32(k, k->out[0], idx), share));
    dn_if_end(k, in);
    dn_loop_end(k, &lkw);
    dn_loop_end(k, &lkh);
    dn_loop_end(k, &lw);
    dn_loop_end(k, &lo);
    dn_loop_end(k, &lp);
}
