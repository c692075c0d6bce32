/* kernel_conv_gemm.c -- conv2d forward as a GEMM on the register-blocked
 * micro-kernel (llvm_gemm.c), for every shape in practice
 * (dnnc --direct-kernels forces the direct kernel of kernel_conv.c, for A/B).
 *
 * Small images (the scratch below fits its budget): per item n and
 * group g,  yᵀ[p, o] = bias[o] + sum_m A[p, m] wᵀ[m, o]
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
 *
 * Larger shapes (ResNet's 56x56x64 and up) take the band form (dn_conv_band,
 * below): bounded scratch whatever the image, no padded copy, parallel
 * within an item too.  kernel_conv_bwd_gemm.c also uses it for
 * conv2d_bwd_data at stride 1.  3x3 stride-1 layers that Winograd's form
 * takes (kernel_conv_winograd.c, tried first) never reach this file.  The scratch arrays are in the caller's
 * worker slice of the arena (dn_ws_slice_f32; the stack without a plan
 * workspace), sized by dn_conv_fwd_gemm_scratch / dn_conv_band_scratch
 * from the same setup functions. */
#include <stdlib.h>

#include "llvm_gemm.h"

enum {
    FWD_WT_MAX = 32768,   /* floats: packed wᵀ of one group */
    FWD_XPAD_MAX = 16384, /* floats: zero-padded image of one group */
};

typedef struct Fwd {
    DnConvGeom c;
    int64_t CKK, P, ldw, Hp, Wp;
    int64_t y_item;     /* dn_conv_y_item */
    bool pad, rows;     /* rows: fwd_rows (vectors along ow), no packed wᵀ */
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
    LLVMValueRef src0 =
        dn_mul(k, dn_add(k, dn_mul(k, n, dn_i64(k, c->C)), dn_mul(k, g, dn_i64(k, c->Cg))), dn_i64(k, c->H * c->W));
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
    LLVMValueRef y0 = dn_add(k, dn_mul(k, n, dn_i64(k, f->y_item)), dn_mul(k, o0, dn_i64(k, f->P)));
    DnLoop lh = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, c->OH), "oh");
    DnGemm gm = {.a = k->in[1],
                 .a_row0 = dn_mul(k, o0, dn_i64(k, f->CKK)),
                 .a_sm = f->CKK,
                 .K0 = c->Cg,
                 .K1 = dn_i64(k, c->KH),
                 .K2 = c->KW,
                 .a_s0 = c->KH * c->KW,
                 .a_s1 = c->KW,
                 .a_s2 = 1,
                 .b = f->pad ? xp : k->in[0],
                 .b_3d = true,
                 .b_off = dn_add(k, xbase, dn_mul(k, lh.i, dn_i64(k, c->sh * f->Wp))),
                 .b_s0 = f->Hp * f->Wp,
                 .b_s1 = c->dh * f->Wp,
                 .b_s2 = c->dw,
                 .c = k->out[0],
                 .c_off = dn_add(k, y0, dn_mul(k, lh.i, dn_i64(k, c->OW))),
                 .c_sm = f->P,
                 .c_sn = 1,
                 .bias = k->op->nin > 2 ? k->in[2] : NULL,
                 .bias_off = o0,
                 .bias_rows = true,
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
    DnGemm gm = {.a = f->pad ? xp : k->in[0],
                 .b = wt,
                 .c = k->out[0],
                 .row_fn = fwd_row,
                 .row_ctx = f,
                 .K0 = c->Cg,
                 .K1 = dn_i64(k, c->KH),
                 .K2 = c->KW,
                 .a_s0 = f->Hp * f->Wp,
                 .a_s1 = c->dh * f->Wp,
                 .a_s2 = c->dw,
                 .b_off = dn_i64(k, 0),
                 .ldb = f->ldw,
                 .c_off = dn_add(k, dn_mul(k, n, dn_i64(k, f->y_item)), dn_mul(k, o0, dn_i64(k, f->P))),
                 .c_sm = 1,
                 .c_sn = f->P,
                 .relu = relu,
                 .bias = k->op->nin > 2 ? k->in[2] : NULL,
                 .bias_off = o0};
    dn_gemm(k, &gm, f->P, c->Og);
}

/* ---- the band form: any shape ------------------------------------------------
 *
 * y[n, o, oh, :] = bias[o] + sum_m A(o, m) B[m; oh, :] (A: w as stored, or
 * as DnConvBand's strides say), with vectors along ow (contiguous in y), as
 * fwd_rows, but B read from a small "band" buffer instead of a padded copy
 * of the whole image: for a band of R output rows and a block of cb input
 * channels,
 *     band(cc, t, kw, ow) = x[n, c0 + cc, ih0 + t, ow*sw - pw + kw*dw]   (0 outside the image)
 * with ih0 = r0*sh - ph, t < BH = (R-1)*sh + (KH-1)*dh + 1: the image
 * im2col'd along W, so B(m = (cc, kh, kw), ow) of output row r is band(cc, r*sh + kh*dh,
 * kw, ow), linear in cc, kh, kw and contiguous in ow whatever the stride and
 * padding.  The band's rows are one GEMM with N = R*OW, contiguous in y
 * too (a 7-wide image fills 49 of 64 lanes, not 7 of 16), B(m, p) for
 * p = r*OW + ow read at a fixed offset per m plus p, in one of two layouts
 * (DnBandLayout):
 *   - flat (sh = 1): [cc, kw, t, OW], rows of exactly OW floats, so
 *     B(m, p) = band(cc, kh*dh, kw, 0) + p: input rows shared by the taps;
 *   - im2col (sh > 1): [cc, kh, kw, r, OW], one copy of the input row
 *     r*sh + kh*dh per (kh, r), so B(m, p) = buf[(cc, kh, kw, 0, 0)] + p.
 * The last band, when R does not divide OH, is a GEMM of its own width.
 * The reduction runs over channel blocks (cb*KH*KW <= BAND_KC, the block of
 * weights and B an L1/L2-sized panel), accumulating into y (bias at the
 * first block, relu at the last): every element is summed in m order, as in
 * one pass.  The scratch is one band (<= BAND_BUF_MAX floats) whatever the
 * image size.  Parallel over units (n, g, output-channel block, band); each
 * element is computed by one unit, so results do not depend on the split. */

enum { BAND_KC = 256, BAND_BUF_MAX = 32768 };

typedef struct Band {
    DnConvGeom c;
    DnConvBand op;
    int64_t KK, CKK, cb, nkb, R, nb, OB, oc;
    bool flat;        /* else im2col */
    DnBandLayout lay; /* im2col: per kh, at offset kh * s_kh */
    int64_t s_kh;
} Band;

/* The layout of band (cc, t, kw, ow) for b's plan (R and cb set). */
static void band_layout(Band *b)
{
    const DnConvGeom *c = &b->c;
    int64_t BH = (b->R - 1) * c->sh + (c->KH - 1) * c->dh + 1;
    if (b->flat) {
        b->lay = (DnBandLayout){.BH = BH, .s_t = c->OW, .s_kw = BH * c->OW, .s_c = c->KW * BH * c->OW};
        b->s_kh = c->dh * c->OW;
    } else {
        int64_t rows = b->R * c->OW;
        b->lay = (DnBandLayout){.BH = b->R, .ih_step = c->sh, .s_t = c->OW, .s_kw = rows, .s_c = b->KK * rows};
        b->s_kh = c->KW * rows;
    }
}

static int64_t band_size(const Band *b) { return b->cb * b->lay.s_c; }

/* Picks the channel block, band height and output-channel blocks; false
 * when even one channel and one row do not fit the scratch budget. */
static bool band_plan(Band *b)
{
    const DnConvGeom *c = &b->c;
    b->KK = c->KH * c->KW, b->CKK = c->Cg * b->KK, b->flat = c->sh == 1;
    b->cb = 1;
    for (int64_t d = 1; d <= c->Cg; d++)
        if (c->Cg % d == 0 && d * b->KK <= BAND_KC) b->cb = d;
    int64_t nb = (c->OH + 7) / 8;
    if (nb > 1 && nb % 2) nb++;
    b->R = (c->OH + nb - 1) / nb;
    for (;;) {
        band_layout(b);
        if (band_size(b) <= BAND_BUF_MAX) break;
        if (b->R > 1) {
            b->R--;
        } else if (b->cb > 1) {
            int64_t d = b->cb - 1;
            while (c->Cg % d) d--;
            b->cb = d;
        } else {
            return false;
        }
    }
    b->nkb = c->Cg / b->cb;
    b->nb = (c->OH + b->R - 1) / b->R;
    b->OB = 1;
    while (b->nb * b->OB < 4 && c->Og % (2 * b->OB) == 0 && c->Og / (2 * b->OB) >= 64) b->OB *= 2;
    b->oc = c->Og / b->OB;
    return true;
}

void dn_conv_band_copy(DnKernel *k, const DnConvGeom *c, LLVMValueRef x, LLVMValueRef buf, LLVMValueRef ch0,
                       LLVMValueRef nch, LLVMValueRef ih0, const DnBandLayout *lay)
{
    LLVMBuilderRef bld = k->L->b;
    LLVMValueRef BH = dn_i64(k, lay->BH);
    DnLoop lt = dn_loop_begin(k, dn_i64(k, 0), dn_mul(k, nch, BH), "ct");
    LLVMValueRef cc = LLVMBuildSDiv(bld, lt.i, BH, ""), t = LLVMBuildSRem(bld, lt.i, BH, "");
    LLVMValueRef ih = dn_add(k, ih0, lay->ih_step > 1 ? dn_mul(k, t, dn_i64(k, lay->ih_step)) : t);
    LLVMValueRef dst = dn_add(k, dn_mul(k, cc, dn_i64(k, lay->s_c)), dn_mul(k, t, dn_i64(k, lay->s_t)));
    LLVMValueRef inside = LLVMBuildICmp(bld, LLVMIntULT, ih, dn_i64(k, c->H), "in");
    LLVMBasicBlockRef after = dn_if_begin(k, LLVMBuildNot(bld, inside, ""));
    for (int64_t kw = 0; kw < c->KW; kw++) dn_zero_f32(k, buf, dn_add(k, dst, dn_i64(k, kw * lay->s_kw)), c->OW);
    dn_if_end(k, after);
    after = dn_if_begin(k, inside);
    LLVMValueRef src = dn_mul(k, dn_add(k, dn_mul(k, dn_add(k, ch0, cc), dn_i64(k, c->H)), ih), dn_i64(k, c->W));
    for (int64_t kw = 0; kw < c->KW; kw++) {
        int64_t off = kw * c->dw - c->pw, lo = 0, hi;
        while (lo < c->OW && lo * c->sw + off < 0) lo++;
        hi = lo;
        while (hi < c->OW && hi * c->sw + off < c->W) hi++;
        LLVMValueRef d = dn_add(k, dst, dn_i64(k, kw * lay->s_kw));
        if (lo > 0) dn_zero_f32(k, buf, d, lo);
        if (c->sw == 2) { /* two contiguous vectors and a shuffle per 8 columns, not a gather */
            int64_t nvec = 0;
            while (lo + 8 * (nvec + 1) <= hi && 2 * (lo + 8 * nvec + 7) + 1 + off < c->W) nvec++;
            if (nvec > 0) {
                LLVMValueRef even[8];
                for (int i = 0; i < 8; i++) even[i] = dn_i32(k, 2 * i);
                DnLoop lv = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, nvec), "jv");
                LLVMValueRef j = dn_add(k, dn_i64(k, lo), dn_mul(k, lv.i, dn_i64(k, 8)));
                LLVMValueRef at = dn_add(k, src, dn_add(k, dn_mul(k, j, dn_i64(k, 2)), dn_i64(k, off)));
                LLVMValueRef v0 = dn_vec_load(k, x, at, 8), v1 = dn_vec_load(k, x, dn_add(k, at, dn_i64(k, 8)), 8);
                LLVMValueRef v = LLVMBuildShuffleVector(bld, v0, v1, LLVMConstVector(even, 8), "even");
                dn_vec_store(k, buf, dn_add(k, d, j), v, 8);
                dn_loop_end(k, &lv);
                lo += 8 * nvec;
            }
        }
        if (hi > lo) {
            DnLoop lj = dn_loop_begin(k, dn_i64(k, lo), dn_i64(k, hi), "j");
            LLVMValueRef v =
                dn_load_f32(k, x, dn_add(k, src, dn_add(k, dn_mul(k, lj.i, dn_i64(k, c->sw)), dn_i64(k, off))));
            dn_store_f32(k, buf, dn_add(k, d, lj.i), v);
            dn_loop_end(k, &lj);
        }
        if (hi < c->OW) dn_zero_f32(k, buf, dn_add(k, d, dn_i64(k, hi)), c->OW - hi);
    }
    dn_if_end(k, after);
    dn_loop_end(k, &lt);
}

/* The band of channel block kb of group g, item n, band rows from r0. */
static void band_copy(DnKernel *k, const Band *b, LLVMValueRef buf, LLVMValueRef n, LLVMValueRef g, LLVMValueRef kb,
                      LLVMValueRef r0)
{
    const DnConvGeom *c = &b->c;
    LLVMValueRef ch0 = dn_add(k, dn_add(k, dn_mul(k, n, dn_i64(k, c->C)), dn_mul(k, g, dn_i64(k, c->Cg))),
                              dn_mul(k, kb, dn_i64(k, b->cb)));
    LLVMValueRef ih0 = dn_add(k, dn_mul(k, r0, dn_i64(k, c->sh)), dn_i64(k, -c->ph));
    if (b->flat) {
        dn_conv_band_copy(k, c, b->op.x, buf, ch0, dn_i64(k, b->cb), ih0, &b->lay);
        return;
    }
    for (int64_t kh = 0; kh < c->KH; kh++) { /* input rows ih0 + kh*dh + r*sh */
        LLVMValueRef at =
            LLVMBuildInBoundsGEP2(k->L->b, k->L->f32, buf, (LLVMValueRef[]){dn_i64(k, kh * b->s_kh)}, 1, "");
        dn_conv_band_copy(k, c, b->op.x, at, ch0, dn_i64(k, b->cb), dn_add(k, ih0, dn_i64(k, kh * c->dh)), &b->lay);
    }
}

/* One unit's place: item n, group g, output channels from o0 (weights from
 * row arow), band rows r0 .. r0 + nrows - 1 (nrows a constant). */
typedef struct BandUnit {
    LLVMValueRef buf, n, g, o0, arow, r0;
    int64_t nrows;
} BandUnit;

/* Channel block kb of one unit: copy its band, then the GEMM over it. */
static void band_block(DnKernel *k, const Band *b, const BandUnit *u, LLVMValueRef kb, bool first, bool last)
{
    const DnConvGeom *c = &b->c;
    const DnConvBand *op = &b->op;
    const DnBandLayout *lay = &b->lay;
    band_copy(k, b, u->buf, u->n, u->g, kb, u->r0);
    int64_t y_item = op->y_item ? op->y_item : c->O * c->OH * c->OW;
    DnGemm gm = {.a = op->w,
                 .a_row0 = dn_add(k, u->arow, dn_mul(k, kb, dn_i64(k, b->cb * op->a_s0))),
                 .a_sm = op->a_sm,
                 .K0 = b->cb,
                 .K1 = dn_i64(k, c->KH),
                 .K2 = c->KW,
                 .a_s0 = op->a_s0,
                 .a_s1 = op->a_s1,
                 .a_s2 = op->a_s2,
                 .b = u->buf,
                 .b_3d = true,
                 .b_off = dn_i64(k, 0),
                 .b_s0 = lay->s_c,
                 .b_s1 = b->s_kh,
                 .b_s2 = lay->s_kw,
                 .c = op->y,
                 .c_sm = c->OH * c->OW,
                 .c_sn = 1,
                 .load_c = !first,
                 .bias = first ? op->bias : NULL,
                 .bias_off = u->o0,
                 .bias_rows = true,
                 .relu = last && op->relu};
    LLVMValueRef yrow0 = dn_add(k, dn_mul(k, u->o0, dn_i64(k, c->OH)), u->r0); /* rows inside the item */
    gm.c_off = dn_add(k, dn_mul(k, u->n, dn_i64(k, y_item)), dn_mul(k, yrow0, dn_i64(k, c->OW)));
    dn_gemm(k, &gm, b->oc, u->nrows * c->OW);
}

/* Every channel block of one unit, in order. */
static void band_unit(DnKernel *k, const Band *b, const BandUnit *u)
{
    bool relu = b->op.relu;
    band_block(k, b, u, dn_i64(k, 0), true, b->nkb == 1);
    int64_t mid_end = relu ? b->nkb - 1 : b->nkb;
    if (mid_end > 1) {
        DnLoop lk = dn_loop_begin(k, dn_i64(k, 1), dn_i64(k, mid_end), "kb");
        band_block(k, b, u, lk.i, false, false);
        dn_loop_end(k, &lk);
    }
    if (relu && b->nkb > 1) band_block(k, b, u, dn_i64(k, b->nkb - 1), false, true);
}

bool dn_conv_band(DnKernel *k, const DnConvGeom *geom, const DnConvBand *op, const DnValue *x)
{
    Band b = {.c = *geom, .op = *op};
    if (!band_plan(&b)) return false;
    const DnConvGeom *c = &b.c;
    LLVMBuilderRef bld = k->L->b;
    int64_t per = c->G * b.OB * b.nb;
    bool has_n = dn_shape_has_n(&x->shape);
    k->par_n = has_n ? per : 0;
    k->par_b = has_n ? 0 : per * x->shape.dim[0];
    BandUnit u = {.buf = dn_ws_slice_f32(k, band_size(&b), "band")};
    DnLoop lu = dn_loop_begin(k, k->begin, k->end, "unit");
    LLVMValueRef rem = LLVMBuildSRem(bld, lu.i, dn_i64(k, per), "");
    u.n = LLVMBuildSDiv(bld, lu.i, dn_i64(k, per), "n");
    u.g = LLVMBuildSDiv(bld, rem, dn_i64(k, b.OB * b.nb), "g");
    rem = LLVMBuildSRem(bld, rem, dn_i64(k, b.OB * b.nb), "");
    LLVMValueRef ob = LLVMBuildSDiv(bld, rem, dn_i64(k, b.nb), "ob"),
                 bi = LLVMBuildSRem(bld, rem, dn_i64(k, b.nb), "bi");
    u.o0 = dn_add(k, dn_mul(k, u.g, dn_i64(k, c->Og)), dn_mul(k, ob, dn_i64(k, b.oc)));
    u.arow = dn_add(k, dn_add(k, dn_mul(k, u.g, dn_i64(k, op->a_sg)), dn_mul(k, ob, dn_i64(k, b.oc * op->a_sm))),
                    dn_i64(k, op->a_base));
    u.r0 = dn_mul(k, bi, dn_i64(k, b.R));
    int64_t last_rows = c->OH - (b.nb - 1) * b.R;
    if (last_rows == b.R) {
        u.nrows = b.R;
        band_unit(k, &b, &u);
    } else { /* the last band is shorter: a GEMM of its own width */
        LLVMValueRef is_last = LLVMBuildICmp(bld, LLVMIntEQ, bi, dn_i64(k, b.nb - 1), "last");
        LLVMBasicBlockRef after = dn_if_begin(k, LLVMBuildNot(bld, is_last, ""));
        u.nrows = b.R;
        band_unit(k, &b, &u);
        dn_if_end(k, after);
        after = dn_if_begin(k, is_last);
        u.nrows = last_rows;
        band_unit(k, &b, &u);
        dn_if_end(k, after);
    }
    dn_loop_end(k, &lu);
    return true;
}

bool dn_conv_band_scratch(const DnConvGeom *geom, DnScratch *s)
{
    Band b = {.c = *geom};
    if (!band_plan(&b)) return false;
    *s = (DnScratch){.slice = dn_ws_f32_bytes(band_size(&b))};
    return true;
}

/* Whether the GEMM forms take 'op' (their epilogues: none, relu). */
static bool fwd_act_ok(const DnOp *op)
{
    const char *act = dn_op_str(op, "act");
    return !strcmp(act, "none") || !strcmp(act, "relu");
}

/* The small-image form's layout for 'op'; false when its packed wᵀ or
 * padded image exceeds its budget (then the band form). */
static bool fwd_setup(const DnOp *op, Fwd *fp)
{
    Fwd f = {.c = dn_conv_geom(op, op->in[0], op->in[1], op->out[0])};
    const DnConvGeom *c = &f.c;
    f.CKK = c->Cg * c->KH * c->KW, f.P = c->OH * c->OW, f.ldw = (c->Og + 7) / 8 * 8;
    f.pad = c->ph > 0 || c->pw > 0;
    f.Hp = c->H + 2 * c->ph, f.Wp = c->W + 2 * c->pw;
    f.rows = c->sw == 1 && lane_use(c->OW) > lane_use(c->Og);
    *fp = f;
    return !((!f.rows && f.CKK * f.ldw > FWD_WT_MAX) || (f.pad && c->Cg * f.Hp * f.Wp > FWD_XPAD_MAX));
}

/* Its scratch arrays, per worker: packed wᵀ (unless rows), the padded image (when padded). */
static int64_t fwd_nwt(const Fwd *f) { return f->CKK * f->ldw; }
static int64_t fwd_nxpad(const Fwd *f) { return f->c.Cg * f->Hp * f->Wp; }

bool dn_conv_fwd_gemm_scratch(const DnOp *op, DnScratch *s)
{
    Fwd f;
    if (!fwd_act_ok(op)) return false;
    if (!fwd_setup(op, &f)) return dn_conv_band_scratch(&f.c, s);
    *s = (DnScratch){.slice =
                         (f.rows ? 0 : dn_ws_f32_bytes(fwd_nwt(&f))) + (f.pad ? dn_ws_f32_bytes(fwd_nxpad(&f)) : 0)};
    return true;
}

int64_t dn_conv_y_item(const DnKernel *k, const DnConvGeom *c)
{
    const DnValue *y = k->op->out[0];
    if (!k->plan || !dn_shape_has_n(&y->shape)) return c->O * c->OH * c->OW;
    return dn_plan_item_stride(k->plan, y) / (int64_t)sizeof(float);
}

bool dn_conv_fwd_gemm(DnKernel *k)
{
    const DnOp *op = k->op;
    const char *act = dn_op_str(op, "act");
    if (!dn_llvm_fast_kernels(k) || !fwd_act_ok(op)) return false;
    Fwd f;
    bool small = fwd_setup(op, &f);
    const DnConvGeom *c = &f.c;
    f.y_item = dn_conv_y_item(k, c);
    if (!small) {
        int64_t KK = c->KH * c->KW;
        DnConvBand bo = {.x = k->in[0],
                         .w = k->in[1],
                         .y = k->out[0],
                         .bias = op->nin > 2 ? k->in[2] : NULL,
                         .relu = !strcmp(act, "relu"),
                         .a_sg = c->Og * f.CKK,
                         .a_sm = f.CKK,
                         .a_s0 = KK,
                         .a_s1 = c->KW,
                         .a_s2 = 1,
                         .y_item = f.y_item};
        return dn_conv_band(k, c, &bo, op->in[0]);
    }
    bool has_n = dn_shape_has_n(&op->in[0]->shape);
    k->par_n = has_n ? 1 : 0;
    k->par_b = has_n ? 0 : op->in[0]->shape.dim[0];
    LLVMValueRef wt = f.rows ? NULL : dn_ws_slice_f32(k, fwd_nwt(&f), "wt");
    LLVMValueRef xp = f.pad ? dn_ws_slice_f32(k, fwd_nxpad(&f), "xpad") : NULL;
    if (f.pad) dn_zero_f32(k, xp, dn_i64(k, 0), fwd_nxpad(&f));
    if (c->G == 1 && !f.rows) pack_w(k, &f, wt, dn_i64(k, 0));
    DnLoop ln = dn_loop_begin(k, k->begin, k->end, "n");
    DnLoop lg = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, c->G), "g");
    if (f.rows) {
        fwd_rows(k, &f, ln.i, lg.i, xp);
    } else {
        if (c->G > 1) pack_w(k, &f, wt, lg.i);
        fwd_item(k, &f, ln.i, lg.i, wt, xp);
    }
    dn_loop_end(k, &lg);
    dn_loop_end(k, &ln);
    return true;
}
