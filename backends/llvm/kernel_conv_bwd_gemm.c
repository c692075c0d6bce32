/* kernel_conv_bwd_gemm.c -- conv2d's gradient kernels as GEMMs on the
 * register-blocked micro-kernel (llvm_gemm.c), for every shape in practice
 * (kernel_conv_bwd.c emits the direct loops when these return false, and
 * under dnnc --direct-kernels, for A/B runs).
 *
 * conv2d_bwd_filter, per group g:  dWᵀ[m, o] = sum_{n, p} A[m, p] dyᵀ[p, o]
 * with m = (c, kh, kw), p = (oh, ow) and A[m, p] = x[c, oh*s - pad + kh*d,
 * ...]: the input image seen as im2col rows without building them (a
 * zero-padded copy of the image when pad > 0).  Parallel over tiles of MR
 * rows m; each worker accumulates its rows over the whole batch in a
 * block of its workspace slice (llvm_workspace.c; the kernel's stack when
 * the plan has no workspace), in a fixed order (results do not depend on
 * the thread count), and writes them transposed into dw at the end.  When
 * dyᵀ of an item or the padded image would exceed its budget, filter_band
 * reads A from band buffers (a few output rows, im2col along W only;
 * dn_conv_band_copy) and transposes dy one band at a time: same sums, same
 * order.  dn_conv_bwd_filter_gemm_scratch sizes the slice from the same
 * setup functions the generators use; the data gradient's scratch (col)
 * is in the worker slices the same way (dn_conv_bwd_data_gemm_scratch).
 *
 * conv2d_bwd_data, per item n and group g:  col[m, p] = sum_o w[o, m] dy[o, p]
 * (one GEMM into a scratch buffer), then col2im adds col into dx.  Parallel
 * over the batch.  When col does not fit: at stride 1, the band form of a
 * forward convolution with the kernel flipped and transposed (data_band,
 * parallel within an item); at other strides, col one band of rows and
 * block of m at a time (data_colband). */
#include <stdlib.h>

#include "llvm_gemm.h"

enum {
    FILTER_DYT_MAX = 32768,  /* floats: dyᵀ of one item (P x padded Og) */
    FILTER_XPAD_MAX = 16384, /* floats: zero-padded image of one group */
    FILTER_ACC = 8192,       /* floats: the accumulator block */
    DATA_COL_MAX = 49152,    /* floats: col of one item and group */
};

static int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }
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
    int64_t KK, CKK, P, NB, Hp, Wp, TB, ntile; /* NB: padded Og; Hp, Wp: padded image; TB: tiles a block */
    bool pad;
    LLVMValueRef xbase, tb0; /* per item: offset of the group's image in A; first tile of the block */
} Filter;

/* Offset in A of block row 'm': rows past CKK repeat the last one (their
 * results land in unused accumulator rows). */
static LLVMValueRef filter_row(DnKernel *k, void *ctx, LLVMValueRef mb)
{
    Filter *f = ctx;
    LLVMValueRef m = dn_add(k, dn_mul(k, f->tb0, dn_i64(k, f->mr)), mb);
    m = dn_imin(k, m, dn_i64(k, f->CKK - 1));
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
    LLVMValueRef rows = dn_imin(k, dn_mul(k, nt, dn_i64(k, f->mr)), LLVMBuildSub(k->L->b, dn_i64(k, f->CKK), m0, ""));
    DnLoop li = dn_loop_begin(k, dn_i64(k, 0), rows, "row");
    LLVMValueRef dst = dn_add(k, dn_mul(k, g, dn_i64(k, f->c.Og * f->CKK)), dn_add(k, m0, li.i));
    DnLoop lo = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, f->c.Og), "o");
    LLVMValueRef v = dn_load_f32(k, acc, dn_add(k, dn_mul(k, li.i, dn_i64(k, f->NB)), lo.i));
    dn_store_f32(k, k->out[0], dn_add(k, dst, dn_mul(k, lo.i, dn_i64(k, f->CKK))), v);
    dn_loop_end(k, &lo);
    dn_loop_end(k, &li);
}

/* The weight gradient's parallel loop runs over G * ntile filter-row tiles;
 * a call handles [begin, end) of them, in blocks of at most TB tiles of one
 * group.  Opens the loops over the groups and the blocks: lg.i is the
 * group, tb0 the block's first tile within it, nt its tile count. */
typedef struct TileBlocks {
    DnLoop lg, lb;
    LLVMValueRef tb0, nt;
} TileBlocks;

static TileBlocks tile_blocks_begin(DnKernel *k, int64_t G, int64_t ntile, int64_t TB)
{
    TileBlocks t;
    t.lg = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, G), "g");
    LLVMValueRef gt = dn_mul(k, t.lg.i, dn_i64(k, ntile));
    LLVMValueRef lo = LLVMBuildSub(k->L->b, imax(k, k->begin, gt), gt, "");
    LLVMValueRef hi = LLVMBuildSub(k->L->b, dn_imin(k, k->end, dn_add(k, gt, dn_i64(k, ntile))), gt, "");
    LLVMValueRef span = LLVMBuildSub(k->L->b, hi, lo, "");
    LLVMValueRef nblk = sdiv(k, dn_add(k, span, dn_i64(k, TB - 1)), TB);
    t.lb = dn_loop_begin(k, dn_i64(k, 0), nblk, "blk");
    t.tb0 = dn_add(k, lo, dn_mul(k, t.lb.i, dn_i64(k, TB)));
    t.nt = dn_imin(k, dn_i64(k, TB), LLVMBuildSub(k->L->b, hi, t.tb0, ""));
    return t;
}

static void tile_blocks_end(DnKernel *k, TileBlocks *t)
{
    dn_loop_end(k, &t->lb);
    dn_loop_end(k, &t->lg);
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
    DnGemm gm = {.a = f->pad ? xp : k->in[0],
                 .b = dyt,
                 .c = acc,
                 .row_fn = filter_row,
                 .row_ctx = f,
                 .K1 = dn_i64(k, c->OH),
                 .K2 = c->OW,
                 .a_s1 = c->sh * f->Wp,
                 .a_s2 = c->sw,
                 .b_off = dn_i64(k, 0),
                 .ldb = f->NB,
                 .c_off = dn_i64(k, 0),
                 .c_sm = f->NB,
                 .c_sn = 1,
                 .load_c = true};
    dn_gemm_rows(k, &gm, nt, f->mr, f->nv, f->NB);
    dn_loop_end(k, &ln);
    store_block(k, f, acc, g, nt);
}

/* The band form, for any size: the image is read from band buffers
 * (dn_conv_band_copy: a band of R output rows, im2col along W only) built
 * for the channels of the block's rows, and dyᵀ is transposed one band at a
 * time; the accumulator block is larger (wide Og: fewer blocks, so fewer
 * re-transposes of dy).  Each element still sums over n, then p, in order. */
enum { FBAND_ACC = 65536, FBAND_DYT = 32768, FBAND_BUF = 32768 };

typedef struct FBand {
    DnConvGeom c;
    int mr, nv;
    int64_t KK, CKK, NB, TB, R, BH, OWp, nb, nch, ntile;
    LLVMValueRef tb0, clo; /* per block: its first tile; the band's first channel (within the group) */
} FBand;

static LLVMValueRef fband_row(DnKernel *k, void *ctx, LLVMValueRef mb)
{
    FBand *f = ctx;
    LLVMValueRef m = dn_add(k, dn_mul(k, f->tb0, dn_i64(k, f->mr)), mb);
    m = dn_imin(k, m, dn_i64(k, f->CKK - 1));
    LLVMValueRef ci = LLVMBuildSub(k->L->b, sdiv(k, m, f->KK), f->clo, ""), rem = srem(k, m, f->KK);
    LLVMValueRef kh = sdiv(k, rem, f->c.KW), kw = srem(k, rem, f->c.KW);
    int64_t rl = f->c.KW * f->OWp;
    LLVMValueRef off = dn_mul(k, ci, dn_i64(k, f->BH * rl));
    off = dn_add(k, off, dn_mul(k, kh, dn_i64(k, f->c.dh * rl)));
    return dn_add(k, off, dn_mul(k, kw, dn_i64(k, f->OWp)));
}

/* dyt[(r*OW + ow)*NB + o] = dy[n, g*Og + o, r0 + r, ow] for r < nrows. */
static void fband_dyt(DnKernel *k, const FBand *f, LLVMValueRef dyt, LLVMValueRef n, LLVMValueRef g, LLVMValueRef r0,
                      LLVMValueRef nrows)
{
    const DnConvGeom *c = &f->c;
    LLVMValueRef o0 = dn_add(k, dn_mul(k, n, dn_i64(k, c->O)), dn_mul(k, g, dn_i64(k, c->Og)));
    DnLoop lo = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, c->Og), "o");
    LLVMValueRef src = dn_mul(k, dn_add(k, dn_mul(k, dn_add(k, o0, lo.i), dn_i64(k, c->OH)), r0), dn_i64(k, c->OW));
    DnLoop lp = dn_loop_begin(k, dn_i64(k, 0), dn_mul(k, nrows, dn_i64(k, c->OW)), "p");
    LLVMValueRef v = dn_load_f32(k, k->in[1], dn_add(k, src, lp.i));
    dn_store_f32(k, dyt, dn_add(k, dn_mul(k, lp.i, dn_i64(k, f->NB)), lo.i), v);
    dn_loop_end(k, &lp);
    dn_loop_end(k, &lo);
}

static void fband_block(DnKernel *k, FBand *f, LLVMValueRef g, LLVMValueRef nt, LLVMValueRef acc, LLVMValueRef dyt,
                        LLVMValueRef buf)
{
    const DnConvGeom *c = &f->c;
    LLVMBuilderRef b = k->L->b;
    dn_zero_f32(k, acc, dn_i64(k, 0), f->TB * f->mr * f->NB);
    LLVMValueRef m0 = dn_mul(k, f->tb0, dn_i64(k, f->mr));
    LLVMValueRef mlast =
        dn_imin(k, dn_add(k, m0, dn_add(k, dn_mul(k, nt, dn_i64(k, f->mr)), dn_i64(k, -1))), dn_i64(k, f->CKK - 1));
    f->clo = sdiv(k, m0, f->KK);
    LLVMValueRef nch = dn_add(k, LLVMBuildSub(b, sdiv(k, mlast, f->KK), f->clo, ""), dn_i64(k, 1));
    DnLoop ln = dn_loop_begin(k, dn_i64(k, 0), dn_dim(k, k->op->in[0], 0), "n");
    LLVMValueRef ch0 = dn_add(k, dn_add(k, dn_mul(k, ln.i, dn_i64(k, c->C)), dn_mul(k, g, dn_i64(k, c->Cg))), f->clo);
    DnLoop lb = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, f->nb), "band");
    LLVMValueRef r0 = dn_mul(k, lb.i, dn_i64(k, f->R));
    LLVMValueRef nrows = dn_imin(k, dn_i64(k, f->R), LLVMBuildSub(b, dn_i64(k, c->OH), r0, ""));
    fband_dyt(k, f, dyt, ln.i, g, r0, nrows);
    DnBandLayout lay = {.BH = f->BH, .s_kw = f->OWp, .s_t = c->KW * f->OWp, .s_c = f->BH * c->KW * f->OWp};
    dn_conv_band_copy(k, c, k->in[0], buf, ch0, nch, dn_add(k, dn_mul(k, r0, dn_i64(k, c->sh)), dn_i64(k, -c->ph)),
                      &lay);
    DnGemm gm = {.a = buf,
                 .b = dyt,
                 .c = acc,
                 .row_fn = fband_row,
                 .row_ctx = f,
                 .K1 = nrows,
                 .K2 = c->OW,
                 .a_s1 = c->sh * c->KW * f->OWp,
                 .a_s2 = 1,
                 .b_off = dn_i64(k, 0),
                 .ldb = f->NB,
                 .c_off = dn_i64(k, 0),
                 .c_sm = f->NB,
                 .c_sn = 1,
                 .load_c = true};
    dn_gemm_rows(k, &gm, nt, f->mr, f->nv, f->NB);
    dn_loop_end(k, &lb);
    dn_loop_end(k, &ln);
    /* dw[g*Og + o, m] = acc[m - m0, o] for the block's valid rows */
    LLVMValueRef rows = dn_imin(k, dn_mul(k, nt, dn_i64(k, f->mr)), LLVMBuildSub(b, dn_i64(k, f->CKK), m0, ""));
    DnLoop li = dn_loop_begin(k, dn_i64(k, 0), rows, "row");
    LLVMValueRef dst = dn_add(k, dn_mul(k, g, dn_i64(k, c->Og * f->CKK)), dn_add(k, m0, li.i));
    DnLoop lo = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, c->Og), "o");
    LLVMValueRef v = dn_load_f32(k, acc, dn_add(k, dn_mul(k, li.i, dn_i64(k, f->NB)), lo.i));
    dn_store_f32(k, k->out[0], dn_add(k, dst, dn_mul(k, lo.i, dn_i64(k, f->CKK))), v);
    dn_loop_end(k, &lo);
    dn_loop_end(k, &li);
}

/* The band form's layout for geometry 'geom'; false when even one output
 * row's buffers exceed their budgets. */
static bool fband_setup(const DnConvGeom *geom, FBand *fp)
{
    FBand f = {.c = *geom};
    const DnConvGeom *c = &f.c;
    f.KK = c->KH * c->KW, f.CKK = c->Cg * f.KK;
    dn_gemm_shape(f.CKK, c->Og, &f.mr, &f.nv);
    f.NB = round_up(c->Og, 8 * f.nv), f.OWp = round_up(c->OW, 8);
    f.ntile = (f.CKK + f.mr - 1) / f.mr;
    f.TB = FBAND_ACC / (f.mr * f.NB);
    if (f.TB < 1) return false;
    if (f.TB > f.ntile) f.TB = f.ntile;
    /* The largest block (fewest re-transposes of dy) whose band buffer lets
     * the bands be as tall as dyᵀ allows (long reductions per pass); else
     * the largest block that fits at all. */
    int64_t rmax = FBAND_DYT / (c->OW * f.NB), fallback = 0;
    if (rmax > c->OH) rmax = c->OH;
    if (rmax < 1) return false;
    for (int64_t tb = f.TB;; tb = (tb + 1) / 2) {
        int64_t nch = (tb * f.mr + f.KK - 1) / f.KK + 1, r = rmax;
        if (nch > c->Cg) nch = c->Cg;
        while (r > 0 && nch * ((r - 1) * c->sh + (c->KH - 1) * c->dh + 1) * c->KW * f.OWp > FBAND_BUF) r--;
        if (r > 0 && !fallback) fallback = tb;
        if (r == rmax) {
            fallback = tb;
            break;
        }
        if (tb == 1) break;
    }
    if (!fallback) return false;
    f.TB = fallback;
    f.nch = (f.TB * f.mr + f.KK - 1) / f.KK + 1;
    if (f.nch > c->Cg) f.nch = c->Cg;
    for (f.R = rmax;; f.R--) {
        f.BH = (f.R - 1) * c->sh + (c->KH - 1) * c->dh + 1;
        if (f.nch * f.BH * c->KW * f.OWp <= FBAND_BUF) break;
    }
    f.nb = (c->OH + f.R - 1) / f.R;
    *fp = f;
    return true;
}

/* The scratch arrays of the band form, per worker: the accumulator block,
 * dyᵀ of one band, the band buffer. */
static int64_t fband_nacc(const FBand *f) { return f->TB * f->mr * f->NB; }
static int64_t fband_ndyt(const FBand *f) { return f->R * f->c.OW * f->NB; }
static int64_t fband_nbuf(const FBand *f) { return f->nch * f->BH * f->c.KW * f->OWp; }

static bool filter_band(DnKernel *k, const DnConvGeom *geom)
{
    FBand f;
    if (!fband_setup(geom, &f)) return false;
    const DnConvGeom *c = &f.c;
    k->par_n = 0, k->par_b = c->G * f.ntile;
    LLVMValueRef acc = dn_ws_slice_f32(k, fband_nacc(&f), "acc");
    LLVMValueRef dyt = dn_ws_slice_f32(k, fband_ndyt(&f), "dyt");
    LLVMValueRef buf = dn_ws_slice_f32(k, fband_nbuf(&f), "band");
    if (f.NB > c->Og) dn_zero_f32(k, dyt, dn_i64(k, 0), fband_ndyt(&f));
    TileBlocks t = tile_blocks_begin(k, c->G, f.ntile, f.TB);
    f.tb0 = t.tb0;
    fband_block(k, &f, t.lg.i, t.nt, acc, dyt, buf);
    tile_blocks_end(k, &t);
    return true;
}

/* The plain form's layout for 'op'; false when dyᵀ of an item or the
 * padded image exceeds its budget (then the band form). */
static bool filter_setup(const DnOp *op, Filter *fp)
{
    Filter f = {.c = dn_conv_geom(op, op->in[0], op->out[0], op->in[1])};
    const DnConvGeom *c = &f.c;
    f.KK = c->KH * c->KW, f.CKK = c->Cg * f.KK;
    dn_gemm_shape(f.CKK, c->Og, &f.mr, &f.nv);
    f.P = c->OH * c->OW, f.NB = round_up(c->Og, 8 * f.nv);
    f.pad = c->ph > 0 || c->pw > 0;
    f.Hp = c->H + 2 * c->ph, f.Wp = c->W + 2 * c->pw;
    f.TB = FILTER_ACC / (f.mr * f.NB);
    f.ntile = (f.CKK + f.mr - 1) / f.mr;
    if (f.TB > f.ntile) f.TB = f.ntile; /* a block never holds more tiles than the op has */
    *fp = f;
    return !(f.P * f.NB > FILTER_DYT_MAX || (f.pad && c->Cg * f.Hp * f.Wp > FILTER_XPAD_MAX) || f.TB < 1);
}

/* The plain form's scratch arrays, per worker: the accumulator block, dyᵀ
 * of one item, the padded image (when padded). */
static int64_t filter_nacc(const Filter *f) { return f->TB * f->mr * f->NB; }
static int64_t filter_ndyt(const Filter *f) { return f->P * f->NB; }
static int64_t filter_nxpad(const Filter *f) { return f->pad ? f->c.Cg * f->Hp * f->Wp : 0; }

bool dn_conv_bwd_filter_gemm_scratch(const DnOp *op, DnScratch *s)
{
    Filter f;
    FBand b;
    if (filter_setup(op, &f)) {
        *s = (DnScratch){.slice = dn_ws_f32_bytes(filter_nacc(&f)) + dn_ws_f32_bytes(filter_ndyt(&f)) +
                                  (f.pad ? dn_ws_f32_bytes(filter_nxpad(&f)) : 0)};
        return true;
    }
    if (!fband_setup(&f.c, &b)) return false;
    *s = (DnScratch){.slice = dn_ws_f32_bytes(fband_nacc(&b)) + dn_ws_f32_bytes(fband_ndyt(&b)) +
                              dn_ws_f32_bytes(fband_nbuf(&b))};
    return true;
}

bool dn_conv_bwd_filter_gemm(DnKernel *k)
{
    if (!dn_llvm_fast_kernels(k)) return false;
    Filter f;
    if (!filter_setup(k->op, &f)) return filter_band(k, &f.c);
    const DnConvGeom *c = &f.c;
    k->par_n = 0, k->par_b = c->G * f.ntile;
    LLVMValueRef acc = dn_ws_slice_f32(k, filter_nacc(&f), "acc");
    LLVMValueRef dyt = dn_ws_slice_f32(k, filter_ndyt(&f), "dyt");
    LLVMValueRef xp = f.pad ? dn_ws_slice_f32(k, filter_nxpad(&f), "xpad") : NULL;
    if (f.NB > c->Og) dn_zero_f32(k, dyt, dn_i64(k, 0), filter_ndyt(&f));
    if (f.pad) dn_zero_f32(k, xp, dn_i64(k, 0), filter_nxpad(&f));
    TileBlocks t = tile_blocks_begin(k, c->G, f.ntile, f.TB);
    f.tb0 = t.tb0;
    filter_block(k, &f, t.lg.i, t.nt, acc, dyt, xp);
    tile_blocks_end(k, &t);
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
    LLVMValueRef ih =
        dn_add(k, dn_add(k, dn_mul(k, loh.i, dn_i64(k, c->sh)), dn_i64(k, -c->ph)), dn_mul(k, kh, dn_i64(k, c->dh)));
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

/* Other strides, any size: per item, per band of R output rows and block
 * of mb rows m, col[m, r, ow] = sum_o w[o, m] dy[o, r0 + r, ow] (one GEMM per
 * output row into a bounded scratch buffer), then col2im of that piece adds
 * into dx.  Items are the parallel iterations and each item's pieces are
 * added in a fixed order, so results do not depend on the thread count. */
enum { DATA_BAND_COL = 32768 };

typedef struct DBand {
    DnConvGeom c;
    int64_t KK, CKK, P, OWp, mb, R;
} DBand;

/* dx[n, g*Cg + ci, ih, iw] += col[m - m0, r, ow] for m in [m0, m0 + rows), r < nrows. */
static void dband_col2im(DnKernel *k, const DBand *d, LLVMValueRef col, LLVMValueRef n, LLVMValueRef g, LLVMValueRef m0,
                         int64_t rows, LLVMValueRef r0, LLVMValueRef nrows)
{
    const DnConvGeom *c = &d->c;
    LLVMBuilderRef b = k->L->b;
    DnLoop lm = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, rows), "m");
    LLVMValueRef m = dn_add(k, m0, lm.i);
    LLVMValueRef ci = sdiv(k, m, d->KK), rem = srem(k, m, d->KK);
    LLVMValueRef kh = sdiv(k, rem, c->KW), kw = srem(k, rem, c->KW);
    LLVMValueRef w0, w1;
    dn_conv_valid_range(k, kw, c->sw, c->pw, c->dw, c->W, c->OW, &w0, &w1);
    LLVMValueRef plane = dn_add(k, dn_add(k, dn_mul(k, n, dn_i64(k, c->C)), dn_mul(k, g, dn_i64(k, c->Cg))), ci);
    LLVMValueRef xoff = dn_add(k, dn_mul(k, kw, dn_i64(k, c->dw)), dn_i64(k, -c->pw));
    DnLoop lr = dn_loop_begin(k, dn_i64(k, 0), nrows, "r");
    LLVMValueRef ih = dn_add(k, dn_add(k, dn_mul(k, dn_add(k, r0, lr.i), dn_i64(k, c->sh)), dn_i64(k, -c->ph)),
                             dn_mul(k, kh, dn_i64(k, c->dh)));
    LLVMBasicBlockRef after = dn_if_begin(k, LLVMBuildICmp(b, LLVMIntULT, ih, dn_i64(k, c->H), ""));
    LLVMValueRef xrow = dn_add(k, dn_mul(k, dn_add(k, dn_mul(k, plane, dn_i64(k, c->H)), ih), dn_i64(k, c->W)), xoff);
    LLVMValueRef crow = dn_mul(k, dn_add(k, dn_mul(k, lm.i, dn_i64(k, d->R)), lr.i), dn_i64(k, d->OWp));
    DnLoop low = dn_loop_begin(k, w0, w1, "ow");
    LLVMValueRef at = dn_add(k, xrow, dn_mul(k, low.i, dn_i64(k, c->sw)));
    LLVMValueRef v = dn_load_f32(k, col, dn_add(k, crow, low.i));
    dn_store_f32(k, k->out[0], at, dn_fadd(k, dn_load_f32(k, k->out[0], at), v));
    dn_loop_end(k, &low);
    dn_if_end(k, after);
    dn_loop_end(k, &lr);
    dn_loop_end(k, &lm);
}

/* The rows [m0, m0 + rows) of one band: GEMM per output row, then col2im. */
static void dband_piece(DnKernel *k, const DBand *d, LLVMValueRef col, LLVMValueRef n, LLVMValueRef g, LLVMValueRef m0,
                        int64_t rows, LLVMValueRef r0, LLVMValueRef nrows)
{
    const DnConvGeom *c = &d->c;
    LLVMValueRef o0 = dn_mul(k, g, dn_i64(k, c->Og));
    DnLoop lr = dn_loop_begin(k, dn_i64(k, 0), nrows, "r");
    DnGemm gm = {.a = k->in[1],
                 .b = k->in[0],
                 .c = col,
                 .a_row0 = dn_add(k, dn_mul(k, o0, dn_i64(k, d->CKK)), m0),
                 .a_sm = 1,
                 .K1 = dn_i64(k, 1),
                 .K2 = c->Og,
                 .a_s2 = d->CKK,
                 .b_off = dn_add(k, dn_mul(k, dn_add(k, dn_mul(k, n, dn_i64(k, c->O)), o0), dn_i64(k, d->P)),
                                 dn_mul(k, dn_add(k, r0, lr.i), dn_i64(k, c->OW))),
                 .ldb = d->P,
                 .c_off = dn_mul(k, lr.i, dn_i64(k, d->OWp)),
                 .c_sm = d->R * d->OWp,
                 .c_sn = 1};
    dn_gemm(k, &gm, rows, c->OW);
    dn_loop_end(k, &lr);
    dband_col2im(k, d, col, n, g, m0, rows, r0, nrows);
}

/* The layout for geometry 'geom'; false when one output row of col exceeds
 * its budget. */
static bool dband_setup(const DnConvGeom *geom, DBand *dp)
{
    DBand d = {.c = *geom};
    const DnConvGeom *c = &d.c;
    d.KK = c->KH * c->KW, d.CKK = c->Cg * d.KK, d.P = c->OH * c->OW, d.OWp = round_up(c->OW, 8);
    if (d.OWp > DATA_BAND_COL) return false;
    d.mb = d.CKK * d.OWp <= DATA_BAND_COL ? d.CKK : DATA_BAND_COL / d.OWp;
    d.R = DATA_BAND_COL / (d.mb * d.OWp);
    if (d.R > c->OH) d.R = c->OH;
    *dp = d;
    return true;
}

/* The col piece (floats), per worker. */
static int64_t dband_ncol(const DBand *d) { return d->mb * d->R * d->OWp; }

static bool data_colband(DnKernel *k, const DnConvGeom *geom)
{
    DBand d;
    if (!dband_setup(geom, &d)) return false;
    const DnConvGeom *c = &d.c;
    LLVMBuilderRef b = k->L->b;
    int64_t nb = (c->OH + d.R - 1) / d.R, nfull = d.CKK / d.mb, mrem = d.CKK % d.mb;
    bool has_n = dn_shape_has_n(&k->op->out[0]->shape);
    k->par_n = has_n ? 1 : 0;
    k->par_b = has_n ? 0 : k->op->out[0]->shape.dim[0];
    LLVMValueRef col = dn_ws_slice_f32(k, dband_ncol(&d), "col");
    DnLoop ln = dn_loop_begin(k, k->begin, k->end, "n");
    dn_zero_f32(k, k->out[0], dn_mul(k, ln.i, dn_i64(k, c->C * c->H * c->W)), c->C * c->H * c->W);
    DnLoop lg = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, c->G), "g");
    DnLoop lb = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, nb), "band");
    LLVMValueRef r0 = dn_mul(k, lb.i, dn_i64(k, d.R));
    LLVMValueRef nrows = dn_imin(k, dn_i64(k, d.R), LLVMBuildSub(b, dn_i64(k, c->OH), r0, ""));
    DnLoop lm = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, nfull), "mblk");
    dband_piece(k, &d, col, ln.i, lg.i, dn_mul(k, lm.i, dn_i64(k, d.mb)), d.mb, r0, nrows);
    dn_loop_end(k, &lm);
    if (mrem) dband_piece(k, &d, col, ln.i, lg.i, dn_i64(k, nfull * d.mb), mrem, r0, nrows);
    dn_loop_end(k, &lb);
    dn_loop_end(k, &lg);
    dn_loop_end(k, &ln);
    return true;
}

/* The geometry of the forward convolution that computes dx at stride 1:
 * dy convolved with the kernel flipped and its two channel axes swapped,
 * padding dh*(KH-1) - ph. */
static DnConvGeom flipped_geom(const DnConvGeom *c)
{
    return (DnConvGeom){.C = c->O,
                        .H = c->OH,
                        .W = c->OW,
                        .O = c->C,
                        .OH = c->H,
                        .OW = c->W,
                        .KH = c->KH,
                        .KW = c->KW,
                        .G = c->G,
                        .Cg = c->Og,
                        .Og = c->Cg,
                        .sh = 1,
                        .sw = 1,
                        .ph = c->dh * (c->KH - 1) - c->ph,
                        .pw = c->dw * (c->KW - 1) - c->pw,
                        .dh = c->dh,
                        .dw = c->dw};
}

/* The flipped convolution's operands: dy read as x, w flipped and transposed. */
static DnConvBand flipped_operands(DnKernel *k, const DnConvGeom *c)
{
    int64_t KK = c->KH * c->KW;
    return (DnConvBand){.x = k->in[0],
                        .w = k->in[1],
                        .y = k->out[0],
                        .a_sg = c->Og * c->Cg * KK,
                        .a_sm = KK,
                        .a_s0 = c->Cg * KK,
                        .a_s1 = -c->KW,
                        .a_s2 = -1,
                        .a_base = KK - 1};
}

/* Stride 1: the band form of the flipped convolution (dn_conv_band): no
 * col buffer, any size.  Other strides: data_colband. */
static bool data_band(DnKernel *k, const DnConvGeom *c)
{
    if (c->sh != 1 || c->sw != 1) return data_colband(k, c);
    DnConvGeom t = flipped_geom(c);
    DnConvBand bo = flipped_operands(k, c);
    return dn_conv_band(k, &t, &bo, k->op->in[0]);
}

/* The flipped convolution by Winograd, where it takes it (stride 1, 3x3, ...). */
static bool data_winograd_geom(const DnOp *op, DnConvGeom *t)
{
    DnConvGeom c = dn_conv_geom(op, op->out[0], op->in[1], op->in[0]);
    if (c.sh != 1 || c.sw != 1) return false;
    *t = flipped_geom(&c);
    return true;
}

bool dn_conv_bwd_data_winograd_scratch(const DnOp *op, const DnBackendOptions *o, DnScratch *s)
{
    DnConvGeom t;
    return data_winograd_geom(op, &t) && dn_conv_winograd_form_scratch(&t, o, s);
}

bool dn_conv_bwd_data_winograd(DnKernel *k)
{
    DnConvGeom t;
    if (!data_winograd_geom(k->op, &t)) return false;
    DnConvGeom c = dn_conv_geom(k->op, k->op->out[0], k->op->in[1], k->op->in[0]);
    DnConvBand bo = flipped_operands(k, &c);
    return dn_conv_winograd_form(k, &t, &bo, k->op->in[0]);
}

bool dn_conv_bwd_data_gemm_scratch(const DnOp *op, DnScratch *s)
{
    DnConvGeom c = dn_conv_geom(op, op->out[0], op->in[1], op->in[0]);
    int64_t CKK = c.Cg * c.KH * c.KW, ldc = round_up(c.OH * c.OW, 8);
    if (CKK * ldc <= DATA_COL_MAX) {
        *s = (DnScratch){.slice = dn_ws_f32_bytes(CKK * ldc)};
        return true;
    }
    if (c.sh == 1 && c.sw == 1) {
        DnConvGeom t = flipped_geom(&c);
        return dn_conv_band_scratch(&t, s);
    }
    DBand d;
    if (!dband_setup(&c, &d)) return false;
    *s = (DnScratch){.slice = dn_ws_f32_bytes(dband_ncol(&d))};
    return true;
}

bool dn_conv_bwd_data_gemm(DnKernel *k)
{
    const DnOp *op = k->op;
    if (!dn_llvm_fast_kernels(k)) return false;
    DnConvGeom c = dn_conv_geom(op, op->out[0], op->in[1], op->in[0]);
    int64_t CKK = c.Cg * c.KH * c.KW, P = c.OH * c.OW, ldc = round_up(P, 8);
    if (CKK * ldc > DATA_COL_MAX) return data_band(k, &c);
    bool has_n = dn_shape_has_n(&op->out[0]->shape);
    k->par_n = has_n ? 1 : 0;
    k->par_b = has_n ? 0 : op->out[0]->shape.dim[0];
    LLVMValueRef col = dn_ws_slice_f32(k, CKK * ldc, "col");
    DnLoop ln = dn_loop_begin(k, k->begin, k->end, "n");
    dn_zero_f32(k, k->out[0], dn_mul(k, ln.i, dn_i64(k, c.C * c.H * c.W)), c.C * c.H * c.W);
    DnLoop lg = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, c.G), "g");
    LLVMValueRef o0 = dn_mul(k, lg.i, dn_i64(k, c.Og));
    DnGemm gm = {.a = k->in[1],
                 .b = k->in[0],
                 .c = col,
                 .a_row0 = dn_mul(k, o0, dn_i64(k, CKK)),
                 .a_sm = 1,
                 .K1 = dn_i64(k, 1),
                 .K2 = c.Og,
                 .a_s2 = CKK,
                 .b_off = dn_mul(k, dn_add(k, dn_mul(k, ln.i, dn_i64(k, c.O)), o0), dn_i64(k, P)),
                 .ldb = P,
                 .c_off = dn_i64(k, 0),
                 .c_sm = ldc,
                 .c_sn = 1};
    dn_gemm(k, &gm, CKK, P);
    col2im(k, &c, col, ldc, ln.i, lg.i);
    dn_loop_end(k, &lg);
    dn_loop_end(k, &ln);
    return true;
}
