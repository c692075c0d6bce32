/* kernel_conv_bwd_dot.c -- conv2d_bwd_filter for narrow output groups (Og
 * fills 8-wide vectors worse than an output row does, e.g. LeNet's conv1
 * with 6 channels and rows of 28) with stride 1 along W.
 *
 * dw[o, m] = sum_{n, oh, ow} dy[n, o, oh, ow] * A[m; oh, ow], m = (c, kh,
 * kw), as dot products whose vectors run along ow: both dy and the image
 * (zero-padded copy when pad > 0) are contiguous there, so a tile of TI
 * channels x TJ filter taps loads TI + TJ vectors per TI * TJ fmas and
 * needs no transpose.  The vector partial sums live in a workspace block
 * (one for all workers, indexed by tile) across the batch; each lane sum
 * is reduced (fixed tree) at the end.
 * Parallel over tiles; every tile sums in the same order whatever the
 * split.  dn_conv_bwd_filter_dot returns false (emitting nothing) for the
 * shapes it does not take; kernel_conv_bwd_gemm.c handles those.
 */
#include <stdlib.h>

#include "llvm_gemm.h"

enum { TI = 2, TJ = 5, DOT_ACC_MAX = 16384, DOT_XPAD_MAX = 16384 };

typedef struct Dot {
    DnConvGeom c;
    int64_t KK, CKK, P, Hp, Wp, ntj, ntile; /* ntile: tiles per group, ntj of them per row of TI channels */
    bool pad;
    LLVMValueRef acc, xp; /* scratch: partial sums [tile][TI][TJ][8], padded image */
} Dot;

static double lane_use(int64_t n) { return (double)n / (double)((n + 7) / 8 * 8); }

/* The scratch arrays (floats): the partial sums of every tile (shared: a
 * worker touches only its tiles' slots), the padded image (per worker). */
static int64_t dot_nacc(const Dot *d) { return d->c.G * d->ntile * TI * TJ * 8; }
static int64_t dot_nxpad(const Dot *d) { return d->c.Cg * d->Hp * d->Wp; }

/* Offsets of the rows of tile 'tt' (within group g) in dy (item n) and in
 * the image: rows past Og or CKK repeat the last one. */
static void tile_rows(DnKernel *k, const Dot *d, LLVMValueRef n, LLVMValueRef g, LLVMValueRef tt, LLVMValueRef xbase,
                      LLVMValueRef arow[TI], LLVMValueRef brow[TJ])
{
    LLVMBuilderRef b = k->L->b;
    const DnConvGeom *c = &d->c;
    LLVMValueRef ti = LLVMBuildSDiv(b, tt, dn_i64(k, d->ntj), ""), tj = LLVMBuildSRem(b, tt, dn_i64(k, d->ntj), "");
    LLVMValueRef o0 = dn_add(k, dn_mul(k, n, dn_i64(k, c->O)), dn_mul(k, g, dn_i64(k, c->Og)));
    for (int i = 0; i < TI; i++) {
        LLVMValueRef o = dn_imin(k, dn_add(k, dn_mul(k, ti, dn_i64(k, TI)), dn_i64(k, i)), dn_i64(k, c->Og - 1));
        arow[i] = dn_mul(k, dn_add(k, o0, o), dn_i64(k, d->P));
    }
    for (int j = 0; j < TJ; j++) {
        LLVMValueRef m = dn_imin(k, dn_add(k, dn_mul(k, tj, dn_i64(k, TJ)), dn_i64(k, j)), dn_i64(k, d->CKK - 1));
        LLVMValueRef ci = LLVMBuildSDiv(b, m, dn_i64(k, d->KK), ""), r = LLVMBuildSRem(b, m, dn_i64(k, d->KK), "");
        LLVMValueRef kh = LLVMBuildSDiv(b, r, dn_i64(k, c->KW), ""), kw = LLVMBuildSRem(b, r, dn_i64(k, c->KW), "");
        LLVMValueRef off = dn_add(k, dn_mul(k, ci, dn_i64(k, d->Hp * d->Wp)), dn_mul(k, kh, dn_i64(k, c->dh * d->Wp)));
        brow[j] = dn_add(k, xbase, dn_add(k, off, dn_mul(k, kw, dn_i64(k, c->dw))));
    }
}

/* acc[i][j] += dy row i . image row j over the vector at column 'col' ('nl' lanes). */
static void dot_step(DnKernel *k, LLVMValueRef x, LLVMValueRef acc[TI][TJ], LLVMValueRef arow[TI],
                     LLVMValueRef brow[TJ], LLVMValueRef ao, LLVMValueRef bo, int64_t col, int nl)
{
    LLVMTypeRef v8 = dn_v8_t(k);
    LLVMValueRef av[TI];
    for (int i = 0; i < TI; i++)
        av[i] = dn_vec_load(k, k->in[1], dn_add(k, arow[i], dn_add(k, ao, dn_i64(k, col))), nl);
    for (int j = 0; j < TJ; j++) {
        LLVMValueRef bv = dn_vec_load(k, x, dn_add(k, brow[j], dn_add(k, bo, dn_i64(k, col))), nl);
        for (int i = 0; i < TI; i++) dn_set(k, acc[i][j], dn_vec_fma(k, av[i], bv, dn_get(k, acc[i][j], v8)));
    }
}

/* Tile t (global index; tt within group g) of item n. */
static void dot_tile(DnKernel *k, const Dot *d, LLVMValueRef n, LLVMValueRef g, LLVMValueRef t, LLVMValueRef tt,
                     LLVMValueRef xbase)
{
    const DnConvGeom *c = &d->c;
    LLVMTypeRef v8 = dn_v8_t(k);
    LLVMValueRef arow[TI], brow[TJ], acc[TI][TJ], slot[TI][TJ];
    tile_rows(k, d, n, g, tt, xbase, arow, brow);
    for (int i = 0; i < TI; i++)
        for (int j = 0; j < TJ; j++) {
            slot[i][j] = dn_mul(k, dn_add(k, dn_mul(k, t, dn_i64(k, TI * TJ)), dn_i64(k, i * TJ + j)), dn_i64(k, 8));
            acc[i][j] = dn_var(k, v8, dn_vec_load(k, d->acc, slot[i][j], 8), "dacc");
        }
    DnLoop lh = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, c->OH), "oh");
    LLVMValueRef ao = dn_mul(k, lh.i, dn_i64(k, c->OW)), bo = dn_mul(k, lh.i, dn_i64(k, c->sh * d->Wp));
    LLVMValueRef x = d->pad ? d->xp : k->in[0];
    for (int64_t col = 0; col < c->OW; col += 8)
        dot_step(k, x, acc, arow, brow, ao, bo, col, c->OW - col < 8 ? (int)(c->OW - col) : 8);
    dn_loop_end(k, &lh);
    for (int i = 0; i < TI; i++)
        for (int j = 0; j < TJ; j++) dn_vec_store(k, d->acc, slot[i][j], dn_get(k, acc[i][j], v8), 8);
}

/* Item n: the tiles of [begin, end), group by group (one padded image each). */
static void dot_item(DnKernel *k, const Dot *d, LLVMValueRef n)
{
    LLVMBuilderRef b = k->L->b;
    const DnConvGeom *c = &d->c;
    DnLoop lg = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, c->G), "g");
    LLVMValueRef gt = dn_mul(k, lg.i, dn_i64(k, d->ntile));
    LLVMValueRef lo = LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntSGT, k->begin, gt, ""), k->begin, gt, "");
    LLVMValueRef ge = dn_add(k, gt, dn_i64(k, d->ntile));
    LLVMValueRef hi = LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntSLT, k->end, ge, ""), k->end, ge, "");
    LLVMBasicBlockRef after = dn_if_begin(k, LLVMBuildICmp(b, LLVMIntSLT, lo, hi, ""));
    LLVMValueRef ch = dn_add(k, dn_mul(k, n, dn_i64(k, c->C)), dn_mul(k, lg.i, dn_i64(k, c->Cg)));
    if (d->pad) dn_conv_pad_image(k, c, k->in[0], d->xp, n, lg.i);
    LLVMValueRef xbase = d->pad ? dn_i64(k, 0) : dn_mul(k, ch, dn_i64(k, c->H * c->W));
    DnLoop lt = dn_loop_begin(k, lo, hi, "tile");
    dot_tile(k, d, n, lg.i, lt.i, LLVMBuildSub(b, lt.i, gt, ""), xbase);
    dn_loop_end(k, &lt);
    dn_if_end(k, after);
    dn_loop_end(k, &lg);
}

/* dw[g*Og + o, m] = the lane sum of each valid element of the range's tiles. */
static void store_tiles(DnKernel *k, const Dot *d)
{
    LLVMBuilderRef b = k->L->b;
    DnLoop lt = dn_loop_begin(k, k->begin, k->end, "tile");
    LLVMValueRef g = LLVMBuildSDiv(b, lt.i, dn_i64(k, d->ntile), ""),
                 tt = LLVMBuildSRem(b, lt.i, dn_i64(k, d->ntile), "");
    LLVMValueRef ti = LLVMBuildSDiv(b, tt, dn_i64(k, d->ntj), ""), tj = LLVMBuildSRem(b, tt, dn_i64(k, d->ntj), "");
    for (int i = 0; i < TI; i++)
        for (int j = 0; j < TJ; j++) {
            LLVMValueRef o = dn_add(k, dn_mul(k, ti, dn_i64(k, TI)), dn_i64(k, i));
            LLVMValueRef m = dn_add(k, dn_mul(k, tj, dn_i64(k, TJ)), dn_i64(k, j));
            LLVMValueRef ok = LLVMBuildAnd(b, LLVMBuildICmp(b, LLVMIntSLT, o, dn_i64(k, d->c.Og), ""),
                                           LLVMBuildICmp(b, LLVMIntSLT, m, dn_i64(k, d->CKK), ""), "");
            LLVMBasicBlockRef after = dn_if_begin(k, ok);
            LLVMValueRef slot =
                dn_mul(k, dn_add(k, dn_mul(k, lt.i, dn_i64(k, TI * TJ)), dn_i64(k, i * TJ + j)), dn_i64(k, 8));
            LLVMValueRef s = dn_vec_hsum(k, dn_vec_load(k, d->acc, slot, 8));
            LLVMValueRef row = dn_add(k, dn_mul(k, g, dn_i64(k, d->c.Og)), o);
            dn_store_f32(k, k->out[0], dn_add(k, dn_mul(k, row, dn_i64(k, d->CKK)), m), s);
            dn_if_end(k, after);
        }
    dn_loop_end(k, &lt);
}

/* The layout for 'op'; false for the shapes this form does not take. */
static bool dot_setup(const DnOp *op, Dot *dp)
{
    Dot d = {.c = dn_conv_geom(op, op->in[0], op->out[0], op->in[1])};
    const DnConvGeom *c = &d.c;
    d.KK = c->KH * c->KW, d.CKK = c->Cg * d.KK, d.P = c->OH * c->OW;
    d.pad = c->ph > 0 || c->pw > 0, d.Hp = c->H + 2 * c->ph, d.Wp = c->W + 2 * c->pw;
    d.ntj = (d.CKK + TJ - 1) / TJ, d.ntile = (c->Og + TI - 1) / TI * d.ntj;
    *dp = d;
    return !(c->sw != 1 || lane_use(c->OW) <= lane_use(c->Og) || dot_nacc(&d) > DOT_ACC_MAX ||
             (d.pad && dot_nxpad(&d) > DOT_XPAD_MAX));
}

bool dn_conv_bwd_filter_dot_scratch(const DnOp *op, DnScratch *s)
{
    Dot d;
    if (!dot_setup(op, &d)) return false;
    *s = (DnScratch){.shared = dn_ws_f32_bytes(dot_nacc(&d)), .slice = d.pad ? dn_ws_f32_bytes(dot_nxpad(&d)) : 0};
    return true;
}

bool dn_conv_bwd_filter_dot(DnKernel *k)
{
    const DnOp *op = k->op;
    Dot d;
    if (!dn_llvm_fast_kernels(k) || !dot_setup(op, &d)) return false;
    const DnConvGeom *c = &d.c;
    k->par_n = 0, k->par_b = c->G * d.ntile;
    d.acc = dn_ws_shared_f32(k, dot_nacc(&d), "dacc"); /* workers touch only their own tiles' slots */
    d.xp = d.pad ? dn_ws_slice_f32(k, dot_nxpad(&d), "xpad") : NULL;
    if (d.pad) dn_zero_f32(k, d.xp, dn_i64(k, 0), dot_nxpad(&d));
    DnLoop lz =
        dn_loop_begin(k, dn_mul(k, k->begin, dn_i64(k, TI * TJ * 8)), dn_mul(k, k->end, dn_i64(k, TI * TJ * 8)), "z");
    dn_store_f32(k, d.acc, lz.i, dn_f32(k, 0));
    dn_loop_end(k, &lz);
    DnLoop ln = dn_loop_begin(k, dn_i64(k, 0), dn_dim(k, op->in[0], 0), "n");
    dot_item(k, &d, ln.i);
    dn_loop_end(k, &ln);
    store_tiles(k, &d);
    return true;
}
