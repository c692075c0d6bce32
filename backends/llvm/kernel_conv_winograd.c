/* kernel_conv_winograd.c -- conv2d forward (and conv2d_bwd_data at stride
 * 1, as the flipped convolution: kernel_conv_bwd_gemm.c) by Winograd's
 * minimal filtering F(2x2, 3x3) (Lavin and Gray, "Fast Algorithms for
 * Convolutional Neural Networks", 2015): each 2x2 block of outputs
 * ("tile") of a 3x3, stride 1,
 * dilation 1, one-group convolution is
 *     Y = Aᵀ [ sum_c (G g_oc Gᵀ) ⊙ (Bᵀ d_c B) ] A
 * for the 4x4 input patch d_c of channel c and the 3x3 kernel g_oc, with
 *     Bᵀ = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1],
 *     G  = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1],
 *     Aᵀ = [1 1 1 0; 0 1 -1 -1]:
 * 16 multiplies per tile and channel pair instead of 36 (2.25x fewer).
 * The sum over c, for each of the 16 points ξ of the transformed tile, is
 * a GEMM on the micro-kernel (llvm_gemm.c):  M[ξ] = U[ξ] · V[ξ], U[ξ] the
 * O x C transformed weights, V[ξ] the C x tiles transformed inputs.
 *
 * Two phases (DnKernel.phase):
 *   0  U[ξ, o, c] = (G g_oc Gᵀ)[ξ] into the workspace's shared part,
 *      parallel over o;
 *   1  parallel over units (n, block of RB tile rows, block of output
 *      channels): the block's input rows into a zero-padded strip
 *      (dn_conv_band_copy with a 1-wide kernel), V = Bᵀ d B for every
 *      channel and tile of the block, the 16 GEMMs into M, then
 *      Y = Aᵀ M A + bias [relu] into y (the tiles past OH, OW left out).
 *
 * Error: the transforms use only ±1, 1/2 and sums, so the result differs
 * from the direct sum by rounding only (tests/unit/test_gemm.c compares it
 * with the direct kernel; docs/design.md gives the measured size).
 * --no-winograd keeps these layers on the GEMM forms.
 *
 * Taken when the convolution has enough channels for the GEMMs to fill
 * the tile (C, O >= 16) and enough tiles per item (WINO_TILES_MIN: the
 * weights are transformed on every call), and the workspace stays within
 * bounds (wino_plan). */
#include "llvm_gemm.h"

enum {
    WINO_U_MAX = 1 << 22,     /* floats of U (16 MB): the shared part */
    WINO_VM_MAX = 1 << 18,    /* floats of V, and of M, per worker (1 MB each) */
    WINO_SLICE_MAX = 3 << 18, /* floats per worker: strip, V and M */
    WINO_TB_MIN = 64,         /* tiles per unit when the image has them */
    WINO_TILES_MIN = 36,      /* tiles per item: below, the weight transform (per call) costs more than it saves */
};

typedef struct Wino {
    DnConvGeom c;
    DnConvBand op; /* x, w (as its strides say), y, bias, relu, y_item */
    int64_t TH, TW, RB, TB, nblk, OB, ob, Wp, Wps, BH;
    LLVMValueRef u, strip, v, m; /* the scratch arrays */
} Wino;

static int64_t wino_nstrip(const Wino *w) { return w->c.C * w->BH * w->Wps; }
static int64_t wino_nv(const Wino *w) { return 16 * w->c.C * w->TB; }
static int64_t wino_nm(const Wino *w) { return 16 * w->ob * w->TB; }

/* Whether a convolution of geometry 'geom' takes the Winograd form, and its blocking. */
static bool wino_plan(const DnConvGeom *geom, const DnBackendOptions *o, Wino *w)
{
    if (o && (o->direct_kernels || o->no_winograd)) return false;
    *w = (Wino){.c = *geom};
    const DnConvGeom *c = &w->c;
    if (c->G != 1 || c->KH != 3 || c->KW != 3 || c->sh != 1 || c->sw != 1 || c->dh != 1 || c->dw != 1) return false;
    if (c->C < 16 || c->O < 16) return false;
    w->TH = (c->OH + 1) / 2, w->TW = (c->OW + 1) / 2;
    if (w->TH * w->TW < WINO_TILES_MIN || 16 * c->O * c->C > WINO_U_MAX) return false;
    /* RB tile rows per unit: enough for WINO_TB_MIN tiles, a divisor of TH
     * within twice that if there is one (no short last block), else as even
     * as the blocks go */
    int64_t rb0 = (WINO_TB_MIN + w->TW - 1) / w->TW;
    rb0 = rb0 < w->TH ? rb0 : w->TH;
    w->RB = 0;
    for (int64_t r = rb0; r <= 2 * rb0 && r <= w->TH && !w->RB; r++)
        if (w->TH % r == 0) w->RB = r;
    w->nblk = (w->TH + rb0 - 1) / rb0;
    if (w->RB)
        w->nblk = w->TH / w->RB;
    else
        w->RB = (w->TH + w->nblk - 1) / w->nblk;
    /* fewer rows where V or M would outgrow their bound (wide layers) */
    int64_t wide = c->C > c->O ? c->C : c->O;
    if (16 * wide * w->RB * w->TW > WINO_VM_MAX) {
        w->RB = WINO_VM_MAX / (16 * wide * w->TW);
        if (w->RB < 1) return false;
        w->nblk = (w->TH + w->RB - 1) / w->RB;
        w->RB = (w->TH + w->nblk - 1) / w->nblk;
    }
    w->TB = w->RB * w->TW;
    w->OB = 1;
    while (w->nblk * w->OB < 4 && c->O % (2 * w->OB) == 0 && c->O / (2 * w->OB) >= 64) w->OB *= 2;
    w->ob = c->O / w->OB;
    w->Wp = 2 * w->TW + 2, w->BH = 2 * w->RB + 2;
    w->Wps = 2 * ((w->TW + 7) / 8 * 8) + 2; /* room for the last group of 8 tiles' loads */
    return wino_nstrip(w) + wino_nv(w) + wino_nm(w) <= WINO_SLICE_MAX;
}

bool dn_conv_winograd_form_scratch(const DnConvGeom *c, const DnBackendOptions *o, DnScratch *s)
{
    Wino w;
    if (!wino_plan(c, o, &w)) return false;
    *s = (DnScratch){.shared = dn_ws_f32_bytes(16 * w.c.O * w.c.C),
                     .slice = dn_ws_f32_bytes(wino_nstrip(&w)) + dn_ws_f32_bytes(wino_nv(&w)) +
                              dn_ws_f32_bytes(wino_nm(&w))};
    return true;
}

static LLVMValueRef fsub(DnKernel *k, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildFSub(k->L->b, a, b, ""); }
static LLVMValueRef fadd(DnKernel *k, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildFAdd(k->L->b, a, b, ""); }
static LLVMValueRef half(DnKernel *k, LLVMValueRef a)
{
    return LLVMBuildFMul(k->L->b, a, dn_vec_splat(k, dn_f32(k, 0.5)), "");
}

/* g (3 values, stride 'st') times G: out[0..3] = g0, (g0+g1+g2)/2, (g0-g1+g2)/2, g2. */
static void mul_g(DnKernel *k, LLVMValueRef *g, int st, LLVMValueRef *out, int ost)
{
    LLVMValueRef s = fadd(k, g[0], g[2 * st]);
    out[0] = g[0];
    out[ost] = half(k, fadd(k, s, g[st]));
    out[2 * ost] = half(k, fsub(k, s, g[st]));
    out[3 * ost] = g[2 * st];
}

/* U[ξ, o, c .. c+7] for the first 'cnt' of the 8 channels from c of output
 * channel o.  Eight channels of weights stored [O, C, 3, 3] (a forward
 * conv2d) are loaded as one vector of 72 and split by position; the last
 * channels and other strides (conv2d_bwd_data's flipped, transposed
 * kernel) element by element. */
static void weight_group8(DnKernel *k, const Wino *w, LLVMValueRef o, LLVMValueRef c0, int cnt)
{
    LLVMBuilderRef b = k->L->b;
    const DnConvBand *op = &w->op;
    LLVMValueRef oc = dn_add(k, dn_mul(k, o, dn_i64(k, w->c.C)), c0);
    LLVMValueRef base = dn_add(k, dn_add(k, dn_mul(k, o, dn_i64(k, op->a_sm)), dn_mul(k, c0, dn_i64(k, op->a_s0))),
                               dn_i64(k, op->a_base));
    LLVMValueRef g[9], t[12], u[16], idx[8];
    if (cnt == 8 && op->a_s0 == 9 && op->a_s1 == 3 && op->a_s2 == 1) {
        LLVMTypeRef wide = LLVMVectorType(k->L->f32, 72);
        LLVMValueRef all = LLVMBuildLoad2(b, wide, LLVMBuildInBoundsGEP2(b, k->L->f32, op->w, &base, 1, ""), "w72");
        LLVMSetAlignment(all, 4);
        for (int p = 0; p < 9; p++) {
            for (int l = 0; l < 8; l++) idx[l] = dn_i32(k, 9 * l + p);
            g[p] = LLVMBuildShuffleVector(b, all, LLVMGetUndef(wide), LLVMConstVector(idx, 8), "g");
        }
    } else { /* lanes past cnt stay 0 */
        for (int p = 0; p < 9; p++) {
            g[p] = LLVMConstNull(dn_v8_t(k));
            for (int l = 0; l < cnt; l++) {
                int64_t off = l * op->a_s0 + (p / 3) * op->a_s1 + (p % 3) * op->a_s2;
                LLVMValueRef v = dn_load_f32(k, op->w, dn_add(k, base, dn_i64(k, off)));
                g[p] = LLVMBuildInsertElement(b, g[p], v, dn_i32(k, l), "");
            }
        }
    }
    for (int j = 0; j < 3; j++) mul_g(k, g + j, 3, t + j, 3); /* t = G g: 4 x 3 */
    for (int r = 0; r < 4; r++) mul_g(k, t + 3 * r, 1, u + 4 * r, 1);
    for (int x = 0; x < 16; x++)
        dn_vec_store(k, w->u, dn_add(k, dn_i64(k, (int64_t)x * w->c.O * w->c.C), oc), u[x], cnt);
}

/* Phase 0: U[ξ, o, c] = (G g Gᵀ)[ξ] for the units' output channels o. */
static void weight_transform(DnKernel *k, const Wino *w)
{
    const DnConvGeom *c = &w->c;
    k->par_n = 0, k->par_b = c->O;
    DnLoop lo = dn_loop_begin(k, k->begin, k->end, "o");
    if (c->C / 8 > 0) {
        DnLoop lc = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, c->C / 8), "c8");
        weight_group8(k, w, lo.i, dn_mul(k, lc.i, dn_i64(k, 8)), 8);
        dn_loop_end(k, &lc);
    }
    if (c->C % 8) weight_group8(k, w, lo.i, dn_i64(k, c->C / 8 * 8), (int)(c->C % 8));
    dn_loop_end(k, &lo);
}

/* d (4 values, stride st) times B: out = d0 - d2, d1 + d2, d2 - d1, d1 - d3. */
static void mul_b(DnKernel *k, LLVMValueRef *d, int st, LLVMValueRef *out, int ost)
{
    out[0] = fsub(k, d[0], d[2 * st]);
    out[ost] = fadd(k, d[st], d[2 * st]);
    out[2 * ost] = fsub(k, d[2 * st], d[st]);
    out[3 * ost] = fsub(k, d[st], d[3 * st]);
}

/* <8 x float> lanes first, first + step, ... of the 16 lanes of (lo, hi). */
static LLVMValueRef pick8(DnKernel *k, LLVMValueRef lo, LLVMValueRef hi, int first, int step)
{
    LLVMValueRef idx[8];
    for (int i = 0; i < 8; i++) idx[i] = dn_i32(k, first + step * i);
    return LLVMBuildShuffleVector(k->L->b, lo, hi, LLVMConstVector(idx, 8), "");
}

/* V[ξ, c, i*TW + tj] = (Bᵀ d B)[ξ] for the 8 tiles from tj0 of tile row i,
 * the first 'cnt' of them stored; 'at' is the strip offset of the row's
 * patch at tj = 0 and 'dst' V's offset of tile (i, 0) of channel c.  Tile
 * tj's patch columns are strip columns 2tj .. 2tj + 3: the even and odd
 * lanes of the 16 floats at 2 tj0 and at 2 tj0 + 2. */
static void input_tiles8(DnKernel *k, const Wino *w, LLVMValueRef at, LLVMValueRef dst, LLVMValueRef tj0, int cnt)
{
    LLVMValueRef d[16], t[16], v[16];
    LLVMValueRef col = dn_add(k, at, dn_mul(k, tj0, dn_i64(k, 2)));
    for (int r = 0; r < 4; r++)
        for (int x = 0; x < 4; x += 2) {
            LLVMValueRef o = dn_add(k, col, dn_i64(k, r * w->Wps + x));
            LLVMValueRef lo = dn_vec_load(k, w->strip, o, 8);
            LLVMValueRef hi = dn_vec_load(k, w->strip, dn_add(k, o, dn_i64(k, 8)), 8);
            d[4 * r + x] = pick8(k, lo, hi, 0, 2), d[4 * r + x + 1] = pick8(k, lo, hi, 1, 2);
        }
    for (int x = 0; x < 4; x++) mul_b(k, d + x, 4, t + x, 4); /* t = Bᵀ d */
    for (int r = 0; r < 4; r++) mul_b(k, t + 4 * r, 1, v + 4 * r, 1);
    LLVMValueRef o = dn_add(k, dst, tj0);
    for (int x = 0; x < 16; x++) dn_vec_store(k, w->v, dn_add(k, o, dn_i64(k, (int64_t)x * w->c.C * w->TB)), v[x], cnt);
}

/* V for every channel and the block's tile rows i < nrt. */
static void input_transform(DnKernel *k, const Wino *w, LLVMValueRef nrt)
{
    const DnConvGeom *c = &w->c;
    DnLoop lc = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, c->C), "c");
    DnLoop li = dn_loop_begin(k, dn_i64(k, 0), nrt, "i");
    LLVMValueRef at = dn_add(k, dn_mul(k, lc.i, dn_i64(k, w->BH * w->Wps)), dn_mul(k, li.i, dn_i64(k, 2 * w->Wps)));
    LLVMValueRef dst = dn_add(k, dn_mul(k, lc.i, dn_i64(k, w->TB)), dn_mul(k, li.i, dn_i64(k, w->TW)));
    int64_t full = w->TW / 8;
    if (full > 0) {
        DnLoop lj = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, full), "tj8");
        input_tiles8(k, w, at, dst, dn_mul(k, lj.i, dn_i64(k, 8)), 8);
        dn_loop_end(k, &lj);
    }
    if (w->TW % 8) input_tiles8(k, w, at, dst, dn_i64(k, full * 8), (int)(w->TW % 8));
    dn_loop_end(k, &li);
    dn_loop_end(k, &lc);
}

/* M[ξ] = U[ξ] (rows o0 ..) · V[ξ]: ob x TB, reduction over C. */
static void point_gemms(DnKernel *k, const Wino *w, LLVMValueRef o0)
{
    const DnConvGeom *c = &w->c;
    DnLoop lx = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, 16), "xi");
    DnGemm gm = {.a = w->u,
                 .a_row0 = dn_add(k, dn_mul(k, lx.i, dn_i64(k, c->O * c->C)), dn_mul(k, o0, dn_i64(k, c->C))),
                 .a_sm = c->C,
                 .K1 = dn_i64(k, 1),
                 .K2 = c->C,
                 .a_s2 = 1,
                 .b = w->v,
                 .b_off = dn_mul(k, lx.i, dn_i64(k, c->C * w->TB)),
                 .ldb = w->TB,
                 .c = w->m,
                 .c_off = dn_mul(k, lx.i, dn_i64(k, w->ob * w->TB)),
                 .c_sm = w->TB,
                 .c_sn = 1};
    dn_gemm(k, &gm, w->ob, w->TB);
    dn_loop_end(k, &lx);
}

/* m (4 values, stride st) times A: out = m0 + m1 + m2, m1 - m2 - m3. */
static void mul_a(DnKernel *k, LLVMValueRef *m, int st, LLVMValueRef *out, int ost)
{
    out[0] = fadd(k, fadd(k, m[0], m[st]), m[2 * st]);
    out[ost] = fsub(k, fsub(k, m[st], m[2 * st]), m[3 * st]);
}

/* Lanes h .. h+3 of a and b interleaved: a[h], b[h], a[h+1], b[h+1], ... */
static LLVMValueRef zip4(DnKernel *k, LLVMValueRef a, LLVMValueRef b, int h)
{
    LLVMValueRef idx[8];
    for (int i = 0; i < 8; i++) idx[i] = dn_i32(k, i % 2 ? 8 + h + i / 2 : h + i / 2);
    return LLVMBuildShuffleVector(k->L->b, a, b, LLVMConstVector(idx, 8), "");
}

static LLVMValueRef relu8(DnKernel *k, LLVMValueRef v)
{
    LLVMValueRef zero = LLVMConstNull(dn_v8_t(k));
    return LLVMBuildSelect(k->L->b, LLVMBuildFCmp(k->L->b, LLVMRealOLT, v, zero, ""), zero, v, "relu");
}

/* y = Aᵀ M A + bias [relu] for output channel o (within the block) and the
 * 8 tiles from tj0 of a tile row ('mrow': M's offset of its tile 0;
 * 'yrow': y's offset of its first output row): 'rows' (1 or 2) output rows,
 * the first 'ncol' (1..16) of the 16 output columns from 2 tj0 stored. */
static void output_tiles8(DnKernel *k, const Wino *w, LLVMValueRef mrow, LLVMValueRef yrow, LLVMValueRef bias,
                          bool relu, LLVMValueRef tj0, int rows, int ncol)
{
    LLVMValueRef m[16], t[8], y[4];
    LLVMValueRef at = dn_add(k, mrow, tj0);
    for (int x = 0; x < 16; x++)
        m[x] = dn_vec_load(k, w->m, dn_add(k, at, dn_i64(k, (int64_t)x * w->ob * w->TB)), (ncol + 1) / 2);
    for (int x = 0; x < 4; x++) mul_a(k, m + x, 4, t + x, 4); /* t = Aᵀ M: 2 x 4 */
    for (int r = 0; r < 2; r++) mul_a(k, t + 4 * r, 1, y + 2 * r, 1);
    LLVMValueRef bv = dn_vec_splat(k, bias);
    LLVMValueRef y0 = dn_add(k, yrow, dn_mul(k, tj0, dn_i64(k, 2)));
    for (int r = 0; r < rows; r++) {
        LLVMValueRef e = fadd(k, y[2 * r], bv), o = fadd(k, y[2 * r + 1], bv); /* columns 2tj, 2tj + 1 */
        if (relu) e = relu8(k, e), o = relu8(k, o);
        LLVMValueRef row = dn_add(k, y0, dn_i64(k, r * w->c.OW));
        dn_vec_store(k, w->op.y, row, zip4(k, e, o, 0), ncol < 8 ? ncol : 8);
        if (ncol > 8) dn_vec_store(k, w->op.y, dn_add(k, row, dn_i64(k, 8)), zip4(k, e, o, 4), ncol - 8);
    }
}

/* One tile row of output channel o, 'rows' of its 2 output rows inside y. */
static void output_row(DnKernel *k, const Wino *w, LLVMValueRef mrow, LLVMValueRef yrow, LLVMValueRef bias, bool relu,
                       int rows)
{
    int64_t full = w->c.OW / 16; /* groups of 8 whole tiles */
    if (full > 0) {
        DnLoop lj = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, full), "tj8");
        output_tiles8(k, w, mrow, yrow, bias, relu, dn_mul(k, lj.i, dn_i64(k, 8)), rows, 16);
        dn_loop_end(k, &lj);
    }
    if (w->c.OW % 16) output_tiles8(k, w, mrow, yrow, bias, relu, dn_i64(k, full * 8), rows, (int)(w->c.OW % 16));
}

/* y for the unit's output channels o0 .. o0 + ob - 1 and tile rows ti0 + i, i < nrt. */
static void output_transform(DnKernel *k, const Wino *w, LLVMValueRef n, LLVMValueRef o0, LLVMValueRef ti0,
                             LLVMValueRef nrt)
{
    const DnConvGeom *c = &w->c;
    bool relu = w->op.relu;
    int64_t y_item = w->op.y_item ? w->op.y_item : c->O * c->OH * c->OW;
    DnLoop lo = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, w->ob), "o");
    LLVMValueRef o = dn_add(k, o0, lo.i);
    LLVMValueRef bias = w->op.bias ? dn_load_f32(k, w->op.bias, o) : dn_f32(k, 0);
    LLVMValueRef yo = dn_add(k, dn_mul(k, n, dn_i64(k, y_item)), dn_mul(k, o, dn_i64(k, c->OH * c->OW)));
    DnLoop li = dn_loop_begin(k, dn_i64(k, 0), nrt, "i");
    LLVMValueRef oh = dn_mul(k, dn_add(k, ti0, li.i), dn_i64(k, 2));
    LLVMValueRef yrow = dn_add(k, yo, dn_mul(k, oh, dn_i64(k, c->OW)));
    LLVMValueRef mrow = dn_add(k, dn_mul(k, lo.i, dn_i64(k, w->TB)), dn_mul(k, li.i, dn_i64(k, w->TW)));
    if (c->OH % 2 == 0) {
        output_row(k, w, mrow, yrow, bias, relu, 2);
    } else { /* the last tile row has one output row */
        LLVMValueRef two = LLVMBuildICmp(k->L->b, LLVMIntSLT, dn_add(k, oh, dn_i64(k, 1)), dn_i64(k, c->OH), "two");
        LLVMBasicBlockRef after = dn_if_begin(k, two);
        output_row(k, w, mrow, yrow, bias, relu, 2);
        dn_if_end(k, after);
        after = dn_if_begin(k, LLVMBuildNot(k->L->b, two, ""));
        output_row(k, w, mrow, yrow, bias, relu, 1);
        dn_if_end(k, after);
    }
    dn_loop_end(k, &li);
    dn_loop_end(k, &lo);
}

/* Phase 1: the units (n, tile-row block, output-channel block). */
static void convolve(DnKernel *k, const Wino *w, const DnValue *xv)
{
    const DnConvGeom *c = &w->c;
    LLVMBuilderRef b = k->L->b;
    int64_t per = w->nblk * w->OB;
    bool has_n = dn_shape_has_n(&xv->shape);
    k->par_n = has_n ? per : 0;
    k->par_b = has_n ? 0 : per * xv->shape.dim[0];
    DnLoop lu = dn_loop_begin(k, k->begin, k->end, "unit");
    LLVMValueRef n = LLVMBuildSDiv(b, lu.i, dn_i64(k, per), "n"), rem = LLVMBuildSRem(b, lu.i, dn_i64(k, per), "");
    LLVMValueRef blk = LLVMBuildSDiv(b, rem, dn_i64(k, w->OB), "blk");
    LLVMValueRef o0 = dn_mul(k, LLVMBuildSRem(b, rem, dn_i64(k, w->OB), ""), dn_i64(k, w->ob));
    LLVMValueRef ti0 = dn_mul(k, blk, dn_i64(k, w->RB));
    LLVMValueRef nrt = dn_imin(k, dn_i64(k, w->RB), LLVMBuildSub(b, dn_i64(k, w->TH), ti0, ""));
    /* the strip: strip[c, q, u] = x[n, c, 2*ti0 - ph + q, u - pw] (0 outside), q < BH, u < Wp,
     * rows Wps apart (the columns past Wp feed only tiles past TW, never stored) */
    DnConvGeom sc = *c;
    sc.KW = 1, sc.dw = 1, sc.OW = w->Wp;
    DnBandLayout lay = {.BH = w->BH, .s_t = w->Wps, .s_kw = 0, .s_c = w->BH * w->Wps};
    LLVMValueRef ih0 = dn_add(k, dn_mul(k, ti0, dn_i64(k, 2)), dn_i64(k, -c->ph));
    dn_conv_band_copy(k, &sc, w->op.x, w->strip, dn_mul(k, n, dn_i64(k, c->C)), dn_i64(k, c->C), ih0, &lay);
    input_transform(k, w, nrt);
    point_gemms(k, w, o0);
    output_transform(k, w, n, o0, ti0, nrt);
    dn_loop_end(k, &lu);
}

bool dn_conv_winograd_form(DnKernel *k, const DnConvGeom *c, const DnConvBand *op, const DnValue *xv)
{
    Wino w;
    if (!wino_plan(c, k->L->opt, &w)) return false;
    DN_ASSERT(k->ws_shared); /* U is one array for all workers and both phases: the plan's shared part */
    w.op = *op;
    w.u = dn_ws_shared_f32(k, 16 * w.c.O * w.c.C, "wino.u");
    w.strip = dn_ws_slice_f32(k, wino_nstrip(&w), "wino.strip");
    w.v = dn_ws_slice_f32(k, wino_nv(&w), "wino.v");
    w.m = dn_ws_slice_f32(k, wino_nm(&w), "wino.m");
    if (k->phase == 0) {
        k->nphase = 2;
        weight_transform(k, &w);
    } else {
        convolve(k, &w, xv);
    }
    return true;
}

/* Whether the Winograd form takes conv2d 'op' (its epilogues: none, relu). */
static bool fwd_ok(const DnOp *op)
{
    const char *act = dn_op_str(op, "act");
    return !strcmp(act, "none") || !strcmp(act, "relu");
}

bool dn_conv_winograd_scratch(const DnOp *op, const DnBackendOptions *o, DnScratch *s)
{
    DnConvGeom c = dn_conv_geom(op, op->in[0], op->in[1], op->out[0]);
    return fwd_ok(op) && dn_conv_winograd_form_scratch(&c, o, s);
}

bool dn_conv_winograd(DnKernel *k)
{
    const DnOp *op = k->op;
    if (!fwd_ok(op)) return false;
    DnConvGeom c = dn_conv_geom(op, op->in[0], op->in[1], op->out[0]);
    DnConvBand bo = {.x = k->in[0],
                     .w = k->in[1],
                     .y = k->out[0],
                     .bias = op->nin > 2 ? k->in[2] : NULL,
                     .relu = !strcmp(dn_op_str(op, "act"), "relu"),
                     .a_sm = c.C * 9,
                     .a_s0 = 9,
                     .a_s1 = 3,
                     .a_s2 = 1,
                     .y_item = dn_conv_y_item(k, &c)};
    return dn_conv_winograd_form(k, &c, &bo, op->in[0]);
}
