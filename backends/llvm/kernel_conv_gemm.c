/* kernel_conv_gemm.c -- conv2d forward as a GEMM on the register-blocked
 * micro-kernel (llvm_gemm.c), for the shapes whose scratch fits on the
 * stack (dn_conv_fwd_gemm returns false otherwise and the caller emits the
 * direct kernel of kernel_conv.c; dnnc --direct-kernels forces that, for A/B).
 *
 * Per item n and group g:  yᵀ[p, o] = bias[o] + sum_m A[p, m] wᵀ[m, o]
 * with p = (oh, ow), m = (c, kh, kw) and A[p, m] = x[c, oh*s - pad + kh*d,
 * ...]: the image seen as im2col rows without building them (a zero-padded
 * copy of the image when pad > 0), broadcast one element at a time; wᵀ is
 * packed once per call so that a row of 8 output channels is one vector
 * load.  The tile is written transposed into y[n, o, p] lane by lane, with
 * the relu epilogue applied in registers.  When the channels of a group
 * fill the vectors worse than an output row does (LeNet's conv1: 6
 * channels, rows of 28) and the stride along W is 1, the GEMM runs per
 * output row instead, with vectors along ow (fwd_rows).  Parallel over the
 * batch.
 */
#include <stdlib.h>

#include "llvm_gemm.h"

enum {
    FWD_WT_MAX = 32768,   /* floats: packed wᵀ of one group */
    FWD_XPAD_MAX = 16384, /* floats: zero-padded image of one group */
};

typedef struct Fwd {
    DnConvGeom c;
    int64_t CKK, P, ldw, Hp, Wp;
    bool pad;
    LLVMValueRef xbase; /* offset of the group's image in A (per item) */
} Fwd;

/* Offset in A of output position 'p' = (oh, ow). */
static LLVMValueRef fwd_row(DnKernel *k, void *ctx, LLVMValueRef p)
{
    Fwd *f = ctx;
    LLVMValueRef oh = LLVMBuildSDiv(k->L->b, p, dn_i64(k, f->c.OW), "oh");
    LLVMValueRef ow = LLVMBuildSRem(k->L->b, p, dn_i64(k, f->c.OW), "ow");
    LLVMValueRef off = dn_add(k, dn_mul(k, oh, dn_i64(k, f->c.sh * f->Wp)), dn_mul(k, ow, dn_i64(k, f->c.sw)));
    return dn_add(k, f->xbase, off);
}

/* wt[m, o] = w[g*Og + o, m]. */
static void pack_w(DnKernel *k, const Fwd *f, LLVMValueRef wt, LLVMValueRef g)
{
    LLVMValueRef w0 = dn_mul(k, g, dn_i64(k, f->c.Og * f->CKK));
    DnLoop lo = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, f->c.Og), "o");
    LLVMValueRef src = dn_add(k, w0, dn_mul(k, lo.i, dn_i64(k, f->CKK)));
    DnLoop lm = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, f->CKK), "m");
    LLVMValueRef v = dn_load_f32(k, k->in[1], dn_add(k, src, lm.i));
    dn_store_f32(k, wt, dn_add(k, dn_mul(k, lm.i, dn_i64(k, f->ldw)), lo.i), v);
    dn_loop_end(k, &lm);
    dn_loop_end(k, &lo);
}

void dn_conv_pad_image(DnKernel *k, const DnConvGeom *c, LLVMValueRef x, LLVMValueRef xp, LLVMValueRef n,
                       LLVMValueRef g)
{
    int64_t Hp = c->H + 2 * c->ph, Wp = c->W + 2 * c->pw;
    LLVMValueRef src0 = dn_mul(k, dn_add(k, dn_mul(k, n, dn_i64(k, c->C)), dn_mul(k, g, dn_i64(k, c->Cg))),
                               dn_i64(k, c->H * c->W));
    DnLoop lc = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, c->Cg * c->H), "ch");
    LLVMValueRef ci = LLVMBuildSDiv(k->L->b, lc.i, dn_i64(k, c->H), "");
    LLVMValueRef ih = LLVMBuildSRem(k->L->b, lc.i, dn_i64(k, c->H), "");
    LLVMValueRef row = dn_add(k, dn_mul(k, ci, dn_i64(k, Hp)), dn_add(k, ih, dn_i64(k, c->ph)));
    LLVMValueRef dst = dn_add(k, dn_mul(k, row, dn_i64(k, Wp)), dn_i64(k, c->pw));
    LLVMValueRef src = dn_add(k, src0, dn_mul(k, lc.i, dn_i64(k, c->W)));
    DnLoop lw = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, c->W), "iw");
    dn_store_f32(k, xp, dn_add(k, dst, lw.i), dn_load_f32(k, x, dn_add(k, src, lw.i)));
    dn_loop_end(k, &lw);
    dn_loop_end(k, &lc);
}

/* Item n, group g, one GEMM per output row oh (stride 1 along W):
 * y[o, oh, ow] = bias[o] + sum_m w[o, m] A[m, ow], the vectors running
 * along ow (contiguous in the image and in y); better than fwd_item when
 * Og fills the vectors worse than OW does. */
static void fwd_rows(DnKernel *k, Fwd *f, LLVMValueRef n, LLVMValueRef g, LLVMValueRef xp)
{
    const DnConvGeom *c = &f->c;
    LLVMValueRef ch = dn_add(k, dn_mul(k, n, dn_i64(k, c->C)), dn_mul(k, g, dn_i64(k, c->Cg)));
    if (f->pad) dn_conv_pad_image(k, c, k->in[0], xp, n, g);
    LLVMValueRef xbase = f->pad ? dn_i64(k, 0) : dn_mul(k, ch, dn_i64(k, c->H * c->W));
    LLVMValueRef o0 = dn_mul(k, g, dn_i64(k, c->Og));
    LLVMValueRef y0 = dn_mul(k, dn_add(k, dn_mul(k, n, dn_i64(k, c->O)), o0), dn_i64(k, f->P));
    DnLoop lh = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, c->OH), "oh");
    DnGemm gm = {.a = k->in[1], .a_row0 = dn_mul(k, o0, dn_i64(k, f->CKK)), .a_sm = f->CKK,
                 .K0 = c->Cg, .K1 = dn_i64(k, c->KH), .K2 = c->KW, .a_s0 = c->KH * c->KW, .a_s1 = c->KW, .a_s2 = 1,
                 .b = f->pad ? xp : k->in[0], .b_3d = true,
                 .b_off = dn_add(k, xbase, dn_mul(k, lh.i, dn_i64(k, c->sh * f->Wp))),
                 .b_s0 = f->Hp * f->Wp, .b_s1 = c->dh * f->Wp, .b_s2 = c->dw,
                 .c = k->out[0], .c_off = dn_add(k, y0, dn_mul(k, lh.i, dn_i64(k, c->OW))), .c_sm = f->P, .c_sn = 1,
                 .bias = k->op->nin > 2 ? k->in[2] : NULL, .bias_off = o0, .bias_rows = true,
                 .relu = !strcmp(dn_op_str(k->op, "act"), "relu")};
    dn_gemm(k, &gm, c->Og, c->OW);
    dn_loop_end(k, &lh);
}

/* Fraction of the lanes of 8-wide vectors that 'n' columns fill. */
static double lane_use(int64_t n) { return (double)n / (double)((n + 7) / 8 * 8); }

/* Item n, group g: y[n, g*Og + o, p] for all o, p. */
static void fwd_item(DnKernel *k, Fwd *f, LLVMValueRef n, LLVMValueRef g, LLVMValueRef wt, LLVMValueRef xp)
{
    const DnConvGeom *c = &f->c;
    LLVMValueRef ch = dn_add(k, dn_mul(k, n, dn_i64(k, c->C)), dn_mul(k, g, dn_i64(k, c->Cg)));
    if (f->pad) dn_conv_pad_image(k, c, k->in[0], xp, n, g);
    f->xbase = f->pad ? dn_i64(k, 0) : dn_mul(k, ch, dn_i64(k, c->H * c->W));
    LLVMValueRef o0 = dn_mul(k, g, dn_i64(k, c->Og));
    bool relu = !strcmp(dn_op_str(k->op, "act"), "relu");
    DnGemm gm = {.a = f->pad ? xp : k->in[0], .b = wt, .c = k->out[0], .row_fn = fwd_row, .row_ctx = f,
                 .K0 = c->Cg, .K1 = dn_i64(k, c->KH), .K2 = c->KW,
                 .a_s0 = f->Hp * f->Wp, .a_s1 = c->dh * f->Wp, .a_s2 = c->dw, .b_off = dn_i64(k, 0), .ldb = f->ldw,
                 .c_off = dn_mul(k, dn_add(k, dn_mul(k, n, dn_i64(k, c->O)), o0), dn_i64(k, f->P)),
                 .c_sm = 1, .c_sn = f->P, .relu = relu,
                 .bias = k->op->nin > 2 ? k->in[2] : NULL, .bias_off = o0};
    dn_gemm(k, &gm, f->P, c->Og);
}

bool dn_conv_fwd_gemm(DnKernel *k)
{
    const DnOp *op = k->op;
    const char *act = dn_op_str(op, "act");
    if (!dn_llvm_fast_kernels(k) || (strcmp(act, "none") && strcmp(act, "relu"))) return false;
    Fwd f = {.c = dn_conv_geom(op, op->in[0], op->in[1], op->out[0])};
    const DnConvGeom *c = &f.c;
    f.CKK = c->Cg * c->KH * c->KW, f.P = c->OH * c->OW, f.ldw = (c->Og + 7) / 8 * 8;
    f.pad = c->ph > 0 || c->pw > 0;
    f.Hp = c->H + 2 * c->ph, f.Wp = c->W + 2 * c->pw;
    bool rows = c->sw == 1 && lane_use(c->OW) > lane_use(c->Og); /* fwd_rows, no packed wᵀ */
    if ((!rows && f.CKK * f.ldw > FWD_WT_MAX) || (f.pad && c->Cg * f.Hp * f.Wp > FWD_XPAD_MAX)) return false;
    bool has_n = dn_shape_has_n(&op->in[0]->shape);
    k->par_n = has_n ? 1 : 0;
    k->par_b = has_n ? 0 : op->in[0]->shape.dim[0];
    LLVMValueRef wt = rows ? NULL : dn_scratch_f32(k, f.CKK * f.ldw, "wt");
    LLVMValueRef xp = f.pad ? dn_scratch_f32(k, c->Cg * f.Hp * f.Wp, "xpad") : NULL;
    if (f.pad) dn_zero_f32(k, xp, dn_i64(k, 0), c->Cg * f.Hp * f.Wp);
    if (c->G == 1 && !rows) pack_w(k, &f, wt, dn_i64(k, 0));
    DnLoop ln = dn_loop_begin(k, k->begin, k->end, "n");
    DnLoop lg = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, c->G), "g");
    if (rows) {
        fwd_rows(k, &f, ln.i, lg.i, xp);
    } else {
        if (c->G > 1) pack_w(k, &f, wt, lg.i);
        fwd_item(k, &f, ln.i, lg.i, wt, xp);
    }
    dn_loop_end(k, &lg);
    dn_loop_end(k, &ln);
    return true;
}
