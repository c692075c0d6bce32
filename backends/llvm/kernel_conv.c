/* kernel_conv.c -- conv2d forward (stride, padding, dilation, groups,
 * optional bias, "none"/"relu" epilogue), direct convolution in NCHW.
 *
 * Parallel over (n, o) pairs (par_n = O).  For each output row i the row is
 * set to the bias, then for every input channel c of the group, kernel row
 * kh (runtime loop, guarded against padding) and kernel column kw (unrolled
 * at generation time, so the valid column range is a constant) a saxpy
 *     y[n, o, i, j] += w[o, c, kh, kw] * x[n, g*C/G + c, ih, j*s1 - p1 + kw*d1]
 * runs over j; its innermost loop is contiguous in y (and in x for stride 1).
 * The epilogue applies relu to the finished row.
 */
#include "llvm_gemm.h"

typedef struct Conv {
    int64_t C, H, W, O, KH, KW, OH, OW, s[2], p[2], d[2], groups, cg, og;
    bool relu;
} Conv;

static Conv conv_params(const DnOp *op)
{
    const DnValue *x = op->in[0], *w = op->in[1], *y = op->out[0];
    Conv cv = {.C = x->shape.dim[1],
               .H = x->shape.dim[2],
               .W = x->shape.dim[3],
               .O = w->shape.dim[0],
               .KH = w->shape.dim[2],
               .KW = w->shape.dim[3],
               .OH = y->shape.dim[2],
               .OW = y->shape.dim[3]};
    int n;
    const int64_t *s = dn_op_ints(op, "stride", &n), *p = dn_op_ints(op, "pad", &n),
                  *d = dn_op_ints(op, "dilation", &n);
    for (int i = 0; i < 2; i++) cv.s[i] = s[i], cv.p[i] = p[i], cv.d[i] = d[i];
    cv.groups = dn_op_int(op, "groups");
    cv.cg = cv.C / cv.groups, cv.og = cv.O / cv.groups;
    cv.relu = !strcmp(dn_op_str(op, "act"), "relu");
    return cv;
}

/* Floor division for possibly negative numerators (positive d). */
static int64_t fdiv(int64_t a, int64_t d) { return a >= 0 ? a / d : -((-a + d - 1) / d); }

/* Output columns j with 0 <= j*s - p + kw*dil < W, as [*lo, *hi). */
static void col_range(const Conv *cv, int64_t kw, int64_t *lo, int64_t *hi)
{
    int64_t off = kw * cv->d[1] - cv->p[1];
    *lo = -fdiv(off, cv->s[1]); /* ceil(-off / s) */
    if (*lo < 0) *lo = 0;
    *hi = fdiv(cv->W - 1 - off, cv->s[1]) + 1;
    if (*hi > cv->OW) *hi = cv->OW;
}

/* The (c, kh, kw) accumulation into output row 'yrow' (element offset) for
 * output row 'i'; 'xbase' is the offset of channel 0 of the group in x and
 * 'wbase' the offset of w[o, 0, 0, 0]. */
static void accumulate_row(DnKernel *k, const Conv *cv, LLVMValueRef i, LLVMValueRef xbase, LLVMValueRef wbase,
                           LLVMValueRef yrow)
{
    LLVMBuilderRef b = k->L->b;
    DnLoop lc = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, cv->cg), "c");
    LLVMValueRef xc = dn_add(k, xbase, dn_mul(k, lc.i, dn_i64(k, cv->H * cv->W)));
    LLVMValueRef wc = dn_add(k, wbase, dn_mul(k, lc.i, dn_i64(k, cv->KH * cv->KW)));
    DnLoop lh = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, cv->KH), "kh");
    LLVMValueRef ih = dn_add(k, dn_add(k, dn_mul(k, i, dn_i64(k, cv->s[0])), dn_i64(k, -cv->p[0])),
                             dn_mul(k, lh.i, dn_i64(k, cv->d[0])));
    LLVMValueRef inside = LLVMBuildICmp(b, LLVMIntULT, ih, dn_i64(k, cv->H), "ih.ok");
    LLVMBasicBlockRef after = dn_if_begin(k, inside);
    LLVMValueRef xr = dn_add(k, xc, dn_mul(k, ih, dn_i64(k, cv->W)));
    LLVMValueRef wr = dn_add(k, wc, dn_mul(k, lh.i, dn_i64(k, cv->KW)));
    for (int64_t kw = 0; kw < cv->KW; kw++) {
        int64_t lo, hi;
        col_range(cv, kw, &lo, &hi);
        if (lo >= hi) continue;
        LLVMValueRef wv = dn_load_f32(k, k->in[1], dn_add(k, wr, dn_i64(k, kw)));
        LLVMValueRef xoff = dn_add(k, xr, dn_i64(k, kw * cv->d[1] - cv->p[1]));
        DnLoop lj = dn_loop_begin(k, dn_i64(k, lo), dn_i64(k, hi), "j");
        LLVMValueRef xv = dn_load_f32(k, k->in[0], dn_add(k, xoff, dn_mul(k, lj.i, dn_i64(k, cv->s[1]))));
        LLVMValueRef yi = dn_add(k, yrow, lj.i);
        dn_store_f32(k, k->out[0], yi, dn_fma(k, wv, xv, dn_load_f32(k, k->out[0], yi)));
        dn_loop_end(k, &lj);
    }
    dn_if_end(k, after);
    dn_loop_end(k, &lh);
    dn_loop_end(k, &lc);
}

void dn_kernel_conv2d(DnKernel *k)
{
    if (dn_conv_winograd(k) || dn_conv_fwd_gemm(k)) return;
    Conv cv = conv_params(k->op);
    k->par_n = dn_shape_has_n(&k->op->in[0]->shape) ? cv.O : 0;
    k->par_b = k->par_n ? 0 : cv.O * k->op->in[0]->shape.dim[0];
    LLVMBuilderRef b = k->L->b;
    DnLoop lr = dn_loop_begin(k, k->begin, k->end, "no");
    LLVMValueRef n = LLVMBuildSDiv(b, lr.i, dn_i64(k, cv.O), "n"), o = LLVMBuildSRem(b, lr.i, dn_i64(k, cv.O), "o");
    LLVMValueRef g = LLVMBuildSDiv(b, o, dn_i64(k, cv.og), "g");
    LLVMValueRef xbase =
        dn_mul(k, dn_add(k, dn_mul(k, n, dn_i64(k, cv.C)), dn_mul(k, g, dn_i64(k, cv.cg))), dn_i64(k, cv.H * cv.W));
    LLVMValueRef wbase = dn_mul(k, o, dn_i64(k, cv.cg * cv.KH * cv.KW));
    LLVMValueRef bias = k->op->nin > 2 ? dn_load_f32(k, k->in[2], o) : dn_f32(k, 0);
    DnConvGeom geom = dn_conv_geom(k->op, k->op->in[0], k->op->in[1], k->op->out[0]);
    LLVMValueRef ybase =
        dn_add(k, dn_mul(k, n, dn_i64(k, dn_conv_y_item(k, &geom))), dn_mul(k, o, dn_i64(k, cv.OH * cv.OW)));
    DnLoop li = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, cv.OH), "i");
    LLVMValueRef yrow = dn_add(k, ybase, dn_mul(k, li.i, dn_i64(k, cv.OW)));
    DnLoop lz = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, cv.OW), "j");
    dn_store_f32(k, k->out[0], dn_add(k, yrow, lz.i), bias);
    dn_loop_end(k, &lz);
    accumulate_row(k, &cv, li.i, xbase, wbase, yrow);
    if (cv.relu) {
        DnLoop la = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, cv.OW), "j");
        LLVMValueRef yi = dn_add(k, yrow, la.i), v = dn_load_f32(k, k->out[0], yi);
        LLVMValueRef neg = LLVMBuildFCmp(b, LLVMRealOLT, v, dn_f32(k, 0), "");
        dn_store_f32(k, k->out[0], yi, LLVMBuildSelect(b, neg, dn_f32(k, 0), v, ""));
        dn_loop_end(k, &la);
    }
    dn_loop_end(k, &li);
    dn_loop_end(k, &lr);
}
