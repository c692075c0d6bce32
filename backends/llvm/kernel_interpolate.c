/* kernel_interpolate.c -- CPU kernels of interpolate and interpolate_bwd
 * (ops.def: F.interpolate, align_corners=False, "bilinear" or "nearest")
 * on NCHW.
 *
 * Iterations are (n, c) planes, parallel.  Each output row i and column j
 * finds its source cells and weights in f32, as ops.def states them (and
 * PyTorch's CPU kernel computes them): the scale is the constant
 * (float)H / (float)OH.  The forward reads the 2 x 2 corners (one cell
 * for "nearest"); the backward clears its plane of dx and scatters each
 * dy[i, j] to those cells in row-major (i, j) order, so the sums are in a
 * fixed order: deterministic, no atomics.
 */
#include "llvm_internal.h"

typedef struct Interp {
    int64_t H, W, OH, OW;
    bool nearest;
} Interp;

/* Geometry from an input-sized value 'x' and an output-sized 'y'; sets
 * the planes as iterations. */
static Interp geometry(DnKernel *k, const DnValue *x, const DnValue *y)
{
    Interp a = {x->shape.dim[2], x->shape.dim[3], y->shape.dim[2], y->shape.dim[3],
                !strcmp(dn_op_str(k->op, "mode"), "nearest")};
    k->par_n = dn_shape_has_n(&x->shape) ? x->shape.dim[1] : 0;
    k->par_b = k->par_n ? 0 : x->shape.dim[0] * x->shape.dim[1];
    return a;
}

/* One axis of output index 'o' ('olen' outputs over 'len' input cells):
 * the source cells i0, i1 (i64) and their weights w0 = 1 - l, w1 = l
 * (f32).  "nearest": i1 = i0, w0 = 1, w1 = 0. */
typedef struct Src {
    LLVMValueRef i0, i1, w0, w1;
} Src;

static Src source(DnKernel *k, LLVMValueRef o, int64_t len, int64_t olen, bool nearest)
{
    LLVMBuilderRef b = k->L->b;
    LLVMTypeRef f32 = k->L->f32, i64 = k->L->i64;
    LLVMValueRef scale = dn_f32(k, (double)((float)len / (float)olen));
    LLVMValueRef of = LLVMBuildSIToFP(b, o, f32, "");
    Src s;
    if (nearest) {
        LLVMValueRef i = LLVMBuildFPToSI(b, LLVMBuildFMul(b, of, scale, ""), i64, ""); /* >= 0: floor */
        LLVMValueRef last = dn_i64(k, len - 1);
        s.i0 = s.i1 = LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntSLT, i, last, ""), i, last, "src");
        s.w0 = dn_f32(k, 1);
        s.w1 = dn_f32(k, 0);
        return s;
    }
    LLVMValueRef sy =
        LLVMBuildFSub(b, LLVMBuildFMul(b, scale, LLVMBuildFAdd(b, of, dn_f32(k, 0.5), ""), ""), dn_f32(k, 0.5), "");
    sy = LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealOLT, sy, dn_f32(k, 0), ""), dn_f32(k, 0), sy, "s");
    s.i0 = LLVMBuildFPToSI(b, sy, i64, "i0");
    s.i1 = LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntSLT, s.i0, dn_i64(k, len - 1), ""), dn_add(k, s.i0, dn_i64(k, 1)),
                           s.i0, "i1");
    s.w1 = LLVMBuildFSub(b, sy, LLVMBuildSIToFP(b, s.i0, f32, ""), "l");
    s.w0 = LLVMBuildFSub(b, dn_f32(k, 1), s.w1, "");
    return s;
}

/* The in-plane index of cell (h, w). */
static LLVMValueRef cell(DnKernel *k, const Interp *a, LLVMValueRef h, LLVMValueRef w)
{
    return dn_add(k, dn_mul(k, h, dn_i64(k, a->W)), w);
}

void dn_kernel_interpolate(DnKernel *k)
{
    Interp a = geometry(k, k->op->in[0], k->op->out[0]);
    LLVMBuilderRef b = k->L->b;
    DnLoop lp = dn_loop_begin(k, k->begin, k->end, "plane");
    LLVMValueRef xplane = dn_mul(k, lp.i, dn_i64(k, a.H * a.W));
    LLVMValueRef yplane = dn_mul(k, lp.i, dn_i64(k, a.OH * a.OW));
    DnLoop li = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, a.OH), "i");
    Src r = source(k, li.i, a.H, a.OH, a.nearest);
    DnLoop lj = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, a.OW), "j");
    Src c = source(k, lj.i, a.W, a.OW, a.nearest);
    LLVMValueRef y;
    if (a.nearest) {
        y = dn_load_f32(k, k->in[0], dn_add(k, xplane, cell(k, &a, r.i0, c.i0)));
    } else {
        LLVMValueRef v00 = dn_load_f32(k, k->in[0], dn_add(k, xplane, cell(k, &a, r.i0, c.i0)));
        LLVMValueRef v01 = dn_load_f32(k, k->in[0], dn_add(k, xplane, cell(k, &a, r.i0, c.i1)));
        LLVMValueRef v10 = dn_load_f32(k, k->in[0], dn_add(k, xplane, cell(k, &a, r.i1, c.i0)));
        LLVMValueRef v11 = dn_load_f32(k, k->in[0], dn_add(k, xplane, cell(k, &a, r.i1, c.i1)));
        LLVMValueRef top = LLVMBuildFAdd(b, LLVMBuildFMul(b, c.w0, v00, ""), LLVMBuildFMul(b, c.w1, v01, ""), "");
        LLVMValueRef bot = LLVMBuildFAdd(b, LLVMBuildFMul(b, c.w0, v10, ""), LLVMBuildFMul(b, c.w1, v11, ""), "");
        y = LLVMBuildFAdd(b, LLVMBuildFMul(b, r.w0, top, ""), LLVMBuildFMul(b, r.w1, bot, ""), "y");
    }
    dn_store_f32(k, k->out[0], dn_add(k, yplane, dn_add(k, dn_mul(k, li.i, dn_i64(k, a.OW)), lj.i)), y);
    dn_loop_end(k, &lj);
    dn_loop_end(k, &li);
    dn_loop_end(k, &lp);
}

/* dx[plane + cell(h, w)] += v */
static void add_to(DnKernel *k, const Interp *a, LLVMValueRef plane, LLVMValueRef h, LLVMValueRef w, LLVMValueRef v)
{
    LLVMValueRef idx = dn_add(k, plane, cell(k, a, h, w));
    dn_store_f32(k, k->out[0], idx, LLVMBuildFAdd(k->L->b, dn_load_f32(k, k->out[0], idx), v, ""));
}

void dn_kernel_interpolate_bwd(DnKernel *k)
{
    const DnValue *dy = k->op->in[0];
    Interp a = geometry(k, k->op->out[0], dy);
    LLVMBuilderRef b = k->L->b;
    DnLoop lp = dn_loop_begin(k, k->begin, k->end, "plane");
    LLVMValueRef xplane = dn_mul(k, lp.i, dn_i64(k, a.H * a.W));
    LLVMValueRef yplane = dn_mul(k, lp.i, dn_i64(k, a.OH * a.OW));
    DnLoop lz = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, a.H * a.W), "z");
    dn_store_f32(k, k->out[0], dn_add(k, xplane, lz.i), dn_f32(k, 0));
    dn_loop_end(k, &lz);
    DnLoop li = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, a.OH), "i");
    Src r = source(k, li.i, a.H, a.OH, a.nearest);
    DnLoop lj = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, a.OW), "j");
    Src c = source(k, lj.i, a.W, a.OW, a.nearest);
    LLVMValueRef g = dn_load_f32(k, k->in[0], dn_add(k, yplane, dn_add(k, dn_mul(k, li.i, dn_i64(k, a.OW)), lj.i)));
    if (a.nearest) {
        add_to(k, &a, xplane, r.i0, c.i0, g);
    } else {
        LLVMValueRef g0 = LLVMBuildFMul(b, r.w0, g, ""), g1 = LLVMBuildFMul(b, r.w1, g, "");
        add_to(k, &a, xplane, r.i0, c.i0, LLVMBuildFMul(b, c.w0, g0, ""));
        add_to(k, &a, xplane, r.i0, c.i1, LLVMBuildFMul(b, c.w1, g0, ""));
        add_to(k, &a, xplane, r.i1, c.i0, LLVMBuildFMul(b, c.w0, g1, ""));
        add_to(k, &a, xplane, r.i1, c.i1, LLVMBuildFMul(b, c.w1, g1, ""));
    }
    dn_loop_end(k, &lj);
    dn_loop_end(k, &li);
    dn_loop_end(k, &lp);
}
