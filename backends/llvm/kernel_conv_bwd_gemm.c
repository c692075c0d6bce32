/* kernel_conv_bwd_gemm.c -- conv2d's gradient kernels as GEMMs on the
 * register-blocked micro-kernel (llvm_gemm.c), for the shapes whose
 * scratch buffers fit on the stack; kernel_conv_bwd.c falls back to the
 * direct loops otherwise (or under dnnc --direct-kernels, for A/B runs).
 *
 * conv2d_bwd_filter, per group g:  dWᵀ[m, o] = sum_{n, p} A[m, p] dyᵀ[p, o]
 * with m = (c, kh, kw), p = (oh, ow) and A[m, p] = x[c, oh*s - pad + kh*d,
 * ...]: the input image seen as im2col rows without building them (a
 * zero-padded copy of the image when pad > 0).  Parallel over tiles of MR
 * rows m; each thread accumulates its rows over the whole batch in a stack
 * block, in a fixed order (results do not depend on the thread count), and
 * writes them transposed into dw at the end.
 *
 * conv2d_bwd_data, per item n and group g:  col[m, p] = sum_o w[o, m] dy[o, p]
 * (one GEMM into a stack buffer), then col2im adds col into dx.  Parallel
 * over the batch.
 */
#include <stdlib.h>

#include "llvm_gemm.h"

enum {
    FILTER_DYT_MAX = 32768, /* floats: dyᵀ of one item (P x padded Og) */
    FILTER_XPAD_MAX = 16384, /* floats: zero-padded image of one group */
    FILTER_ACC = 8192,      /* floats: the accumulator block */
    DATA_COL_MAX = 49152,   /* floats: col of one item and group */
};

static int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }
static LLVMValueRef imin(DnKernel *k, LLVMValueRef a, LLVMValueRef b)
{
    return LLVMBuildSelect(k->L->b, LLVMBuildICmp(k->L->b, LLVMIntSLT, a, b, ""), a, b, "");
}
static LLVMValueRef imax(DnKernel *k, LLVMValueRef a, LLVMValueRef b)
{
    return LLVMBuildSelect(k->L->b, LLVMBuildICmp(k->L->b, LLVMIntSGT, a, b, ""), a, b, "");
}
static LLVMValueRef sdiv(DnKernel *k, LLVMValueRef a, int64_t d) { return LLVMBuildSDiv(k->L->b, a, dn_i64(k, d), ""); }
static LLVMValueRef srem(DnKernel *k, LLVMValueRef a, int64_t d) { return LLVMBuildSRem(k->L->b, a, dn_i64(k, d), ""); }

/* ---- conv2d_bwd_filter ------------------------------------------------------ */

typedef struct Filter {
    DnConvGeom c;
    int mr, nv;
    int64_t KK, CKK, P, NB, Hp, Wp, TB; /* NB: padded Og; Hp, Wp: padded image; TB: tiles a block */
    bool pad;
    LLVMValueRef xbase, tb0;            /* per item: offset of the group's image in A; first tile of the block */
} Filter;

/* Offset in A of block row 'm': rows past CKK repeat the last one (their
 * results land in unused accumulator rows). */
static LLVMValueRef filter_row(DnKernel *k, void *ctx, LLVMValueRef mb)
{
    Filter *f = ctx;
    LLVMValueRef m = dn_add(k, dn_mul(k, f->tb0, dn_i64(k, f->mr)), mb);
    m = imin(k, m, dn_i64(k, f->CKK - 1));
    LLVMValueRef ci = sdiv(k, m, f->KK), rem = srem(k, m, f->KK);
    LLVMValueRef kh = sdiv(k, rem, f->c.KW), kw = srem(k, rem, f->c.KW);
    LLVMValueRef off = dn_mul(k, ci, dn_i64(k, f->Hp * f->Wp));
    off = dn_add(k, off, dn_mul(k, kh, dn_i64(k, f->c.dh * f->Wp)));
    return dn_add(k, dn_add(k, off, dn_mul(k, kw, dn_i64(k, f->c.dw))), f->xbase);
}

/* dyt[p, o] = dy[n, g*Og + o, p] for o < Og. */
static void transpose_dy(DnKernel *k, const Filter *f, LLVMValueRef dyt, LLVMValueRef n, LLVMValueRef g)
{
    const DnConvGeom *c = &f->c;
    LLVMValueRef o0 = dn_add(k, dn_mul(k, n, dn_i64(k, c->O)), dn_mul(k, g, dn_i64(k, c->Og)));
    DnLoop lo = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, c->Og), "o");
    LLVMValueRef src = dn_mul(k, dn_add(k, o0, lo.i), dn_i64(k, f->P));
    DnLoop lp = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, f->P), "p");
    LLVMValueRef v = dn_load_f32(k, k->in[1], dn_add(k, src, lp.i));
    dn_store_f32(k, dyt, dn_add(k, dn_mul(k, lp.i, dn_i64(k, f->NB)), lo.i), v);
    dn_loop_end(k, &lp);
    dn_loop_end(k, &lo);
}

/* dw[g*Og + o, m] = acc[m - tb0*MR, o] for the block's valid rows m. */
static void store_block(DnKernel *k, const Filter *f, LLVMValueRef acc, LLVMValueRef g, LLVMValueRef nt)
{
    LLVMValueRef m0 = dn_mul(k, f->tb0, dn_i64(k, f->mr));
    LLVMValueRef rows = imin(k, dn_mul(k, nt, dn_i64(k, f->mr)), LLVMBuildSub(k->L->b, dn_i64(k, f->CKK), m0, ""));
    DnLoop li = dn_loop_begin(k, dn_i64(k, 0), rows, "row");
    LLVMValueRef dst = dn_add(k, dn_mul(k, g, dn_i64(k, f->c.Og * f->CKK)), dn_add(k, m0, li.i));
    DnLoop lo = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, f->c.Og), "o");
    LLVMValueRef v = dn_load_f32(k, acc, dn_add(k, dn_mul(k, li.i, dn_i64(k, f->NB)), lo.i));
    dn_store_f32(k, k->out[0], dn_add(k, dst, dn_mul(k, lo.i, dn_i64(k, f->CKK))), v);
    dn_loop_end(k, &lo);
    dn_loop_end(k, &li);
}

/* One block of 'nt' tiles from f->tb0 in group g: zero, accumulate over
 * the batch, store. */
static void filter_block(DnKernel *k, Filter *f, LLVMValueRef g, LLVMValueRef nt, LLVMValueRef acc, LLVMValueRef dyt,
                         LLVMValueRef xp)
{
    const DnConvGeom *c = &f->c;
    dn_zero_f32(k, acc, dn_i64(k, 0), f->TB * f->mr * f->NB);
    DnLoop ln = dn_loop_begin(k, dn_i64(k, 0), dn_dim(k, k->op->in[0], 0), "n");
    if (f->pad) {
        dn_conv_pad_image(k, c, k->in[0], xp, ln.i, g);
        f->xbase = dn_i64(k, 0);
    } else {
        LLVMValueRef ch = dn_add(k, dn_mul(k, ln.i, dn_i64(k, c->C)), dn_mul(k, g, dn_i64(k, c->Cg)));
        f->xbase = dn_mul(k, ch, dn_i64(k, c->H * c->W));
    }
    transpose_dy(k, f, dyt, ln.i, g);
    DnGemm gm = {.a = f->pad ? xp : k->in[0], .b = dyt, .c = acc, .row_fn = filter_row, .row_ctx = f,
                 .K1 = dn_i64(k, c->OH), .K2 = c->OW, .a_s1 = c->sh * f->Wp, .a_s2 = c->sw,
                 .b_off = dn_i64(k, 0), .ldb = f->NB, .c_off = dn_i64(k, 0), .c_sm = f->NB, .c_sn = 1, .load_c = true};
    dn_gemm_rows(k, &gm, nt, f->mr, f->nv, f->NB);
    dn_loop_end(k, &ln);
    store_block(k, f, acc, g, nt);
}

bool dn_conv_bwd_filter_gemm(DnKernel *k)
{
    const DnOp *op = k->op;
    if (!dn_llvm_fast_kernels(k)) return false;
    Filter f = {.c = dn_conv_geom(op, op->in[0], op->out[0], op->in[1])};
    const DnConvGeom *c = &f.c;
    f.KK = c->KH * c->KW, f.CKK = c->Cg * f.KK;
    dn_gemm_shape(f.CKK, c->Og, &f.mr, &f.nv);
    f.P = c->OH * c->OW, f.NB = round_up(c->Og, 8 * f.nv);
    f.pad = c->ph > 0 || c->pw > 0;
    f.Hp = c->H + 2 * c->ph, f.Wp = c->W + 2 * c->pw;
    f.TB = FILTER_ACC / (f.mr * f.NB);
    if (f.P * f.NB > FILTER_DYT_MAX || (f.pad && c->Cg * f.Hp * f.Wp > FILTER_XPAD_MAX) || f.TB < 1) return false;
    int64_t ntile = (f.CKK + f.mr - 1) / f.mr;
    k->par_n = 0, k->par_b = c->G * ntile;
    LLVMValueRef acc = dn_scratch_f32(k, f.TB * f.mr * f.NB, "acc");
    LLVMValueRef dyt = dn_scratch_f32(k, f.P * f.NB, "dyt");
    LLVMValueRef xp = f.pad ? dn_scratch_f32(k, c->Cg * f.Hp * f.Wp, "xpad") : NULL;
    if (f.NB > c->Og) dn_zero_f32(k, dyt, dn_i64(k, 0), f.P * f.NB);
    if (f.pad) dn_zero_f32(k, xp, dn_i64(k, 0), c->Cg * f.Hp * f.Wp);
    DnLoop lg = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, c->G), "g");
    LLVMValueRef gt = dn_mul(k, lg.i, dn_i64(k, ntile));
    LLVMValueRef lo = LLVMBuildSub(k->L->b, imax(k, k->begin, gt), gt, "");
    LLVMValueRef hi = LLVMBuildSub(k->L->b, imin(k, k->end, dn_add(k, gt, dn_i64(k, ntile))), gt, "");
    LLVMValueRef span = LLVMBuildSub(k->L->b, hi, lo, "");
    LLVMValueRef nblk = sdiv(k, dn_add(k, span, dn_i64(k, f.TB - 1)), f.TB);
    DnLoop lb = dn_loop_begin(k, dn_i64(k, 0), nblk, "blk");
    f.tb0 = dn_add(k, lo, dn_mul(k, lb.i, dn_i64(k, f.TB)));
    LLVMValueRef nt = imin(k, dn_i64(k, f.TB), LLVMBuildSub(k->L->b, hi, f.tb0, ""));
    filter_block(k, &f, lg.i, nt, acc, dyt, xp);
    dn_loop_end(k, &lb);
    dn_loop_end(k, &lg);
    return true;
}

/* ---- conv2d_bwd_data -------------------------------------------------------- */

/* dx[n, g*Cg + c, ...] += col[m, (oh, ow)] through each row m = (c, kh, kw). */
static void col2im(DnKernel *k, const DnConvGeom *c, LLVMValueRef col, int64_t ldc, LLVMValueRef n, LLVMValueRef g)
{
    int64_t KK = c->KH * c->KW;
    DnLoop lm = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, c->Cg * KK), "m");
    LLVMValueRef ci = sdiv(k, lm.i, KK), rem = srem(k, lm.i, KK);
    LLVMValueRef kh = sdiv(k, rem, c->KW), kw = srem(k, rem, c->KW);
    LLVMValueRef h0, h1, w0, w1;
    dn_conv_valid_range(k, kh, c->sh, c->ph, c->dh, c->H, c->OH, &h0, &h1);
    dn_conv_valid_range(k, kw, c->sw, c->pw, c->dw, c->W, c->OW, &w0, &w1);
    LLVMValueRef plane = dn_add(k, dn_add(k, dn_mul(k, n, dn_i64(k, c->C)), dn_mul(k, g, dn_i64(k, c->Cg))), ci);
    LLVMValueRef xoff = dn_add(k, dn_mul(k, kw, dn_i64(k, c->dw)), dn_i64(k, -c->pw));
    DnLoop loh = dn_loop_begin(k, h0, h1, "oh");
    LLVMValueRef ih = dn_add(k, dn_add(k, dn_mul(k, loh.i, dn_i64(k, c->sh)), dn_i64(k, -c->ph)),
                             dn_mul(k, kh, dn_i64(k, c->dh)));
    LLVMValueRef xrow = dn_add(k, dn_mul(k, dn_add(k, dn_mul(k, plane, dn_i64(k, c->H)), ih), dn_i64(k, c->W)), xoff);
    LLVMValueRef crow = dn_add(k, dn_mul(k, lm.i, dn_i64(k, ldc)), dn_mul(k, loh.i, dn_i64(k, c->OW)));
    DnLoop low = dn_loop_begin(k, w0, w1, "ow");
    LLVMValueRef at = dn_add(k, xrow, dn_mul(k, low.i, dn_i64(k, c->sw)));
    LLVMValueRef v = dn_load_f32(k, col, dn_add(k, crow, low.i));
    dn_store_f32(k, k->out[0], at, dn_fadd(k, dn_load_f32(k, k->out[0], at), v));
    dn_loop_end(k, &low);
    dn_loop_end(k, &loh);
    dn_loop_end(k, &lm);
}

bool dn_conv_bwd_data_gemm(DnKernel *k)
{
    const DnOp *op = k->op;
    if (!dn_llvm_fast_kernels(k)) return false;
    DnConvGeom c = dn_conv_geom(op, op->out[0], op->in[1], op->in[0]);
    int64_t CKK = c.Cg * c.KH * c.KW, P = c.OH * c.OW, ldc = round_up(P, 8);
    if (CKK * ldc > DATA_COL_MAX) return false;
    bool has_n = dn_shape_has_n(&op->out[0]->shape);
    k->par_n = has_n ? 1 : 0;
    k->par_b = has_n ? 0 : op->out[0]->shape.dim[0];
    LLVMValueRef col = dn_scratch_f32(k, CKK * ldc, "col");
    DnLoop ln = dn_loop_begin(k, k->begin, k->end, "n");
    dn_zero_f32(k, k->out[0], dn_mul(k, ln.i, dn_i64(k, c.C * c.H * c.W)), c.C * c.H * c.W);
    DnLoop lg = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, c.G), "g");
    LLVMValueRef o0 = dn_mul(k, lg.i, dn_i64(k, c.Og));
    DnGemm gm = {.a = k->in[1], .b = k->in[0], .c = col, .a_row0 = dn_mul(k, o0, dn_i64(k, CKK)), .a_sm = 1,
                 .K1 = dn_i64(k, 1), .K2 = c.Og, .a_s2 = CKK,
                 .b_off = dn_mul(k, dn_add(k, dn_mul(k, ln.i, dn_i64(k, c.O)), o0), dn_i64(k, P)), .ldb = P,
                 .c_off = dn_i64(k, 0), .c_sm = ldc, .c_sn = 1};
    dn_gemm(k, &gm, CKK, P);
    col2im(k, &c, col, ldc, ln.i, lg.i);
    dn_loop_end(k, &lg);
    dn_loop_end(k, &ln);
    return true;
}
