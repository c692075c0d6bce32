/* kernel_adaptive.c -- CPU kernels of adaptive_avgpool2d,
 * adaptive_maxpool2d and their backwards (ops.def) on NCHW.
 *
 * PyTorch's uneven windows: output row i covers input rows
 * [floor(i H / OH), ceil((i + 1) H / OH)), columns likewise; the bounds are
 * computed in the loops (H, OH are constants).  Iterations are (n, c)
 * planes, parallel.  The max scans its window row-major and takes a cell
 * that is greater than the best so far or NaN (PyTorch's rule), starting
 * from the window's first cell.  The backwards scatter into a cleared
 * plane: the average spreads dy over its window, the max sends it to the
 * forward's pick.
 */
#include <math.h>

#include "llvm_internal.h"

typedef struct Adaptive {
    int64_t H, W, OH, OW;
} Adaptive;

/* Geometry from an input-sized value 'x' and an output-sized 'y'; sets
 * the planes as iterations. */
static Adaptive geometry(DnKernel *k, const DnValue *x, const DnValue *y)
{
    Adaptive a = {x->shape.dim[2], x->shape.dim[3], y->shape.dim[2], y->shape.dim[3]};
    k->par_n = dn_shape_has_n(&x->shape) ? x->shape.dim[1] : 0;
    k->par_b = k->par_n ? 0 : x->shape.dim[0] * x->shape.dim[1];
    return a;
}

/* The window of output index 'o' along an axis of 'len' cells and 'olen' outputs: [*lo, *hi). */
static void bounds(DnKernel *k, LLVMValueRef o, int64_t len, int64_t olen, LLVMValueRef *lo, LLVMValueRef *hi)
{
    LLVMBuilderRef b = k->L->b;
    *lo = LLVMBuildSDiv(b, dn_mul(k, o, dn_i64(k, len)), dn_i64(k, olen), "lo");
    LLVMValueRef end = dn_add(k, dn_mul(k, dn_add(k, o, dn_i64(k, 1)), dn_i64(k, len)), dn_i64(k, olen - 1));
    *hi = LLVMBuildSDiv(b, end, dn_i64(k, olen), "hi");
}

/* Loops over the window of output cell (i, j); the caller closes them with close_window. */
typedef struct Window {
    LLVMValueRef h0, h1, w0, w1; /* bounds */
    DnLoop lh, lw;
    LLVMValueRef cell; /* in-plane index of the current cell */
} Window;

static Window open_window(DnKernel *k, const Adaptive *a, LLVMValueRef i, LLVMValueRef j)
{
    Window w;
    bounds(k, i, a->H, a->OH, &w.h0, &w.h1);
    bounds(k, j, a->W, a->OW, &w.w0, &w.w1);
    w.lh = dn_loop_begin(k, w.h0, w.h1, "ih");
    w.lw = dn_loop_begin(k, w.w0, w.w1, "iw");
    w.cell = dn_add(k, dn_mul(k, w.lh.i, dn_i64(k, a->W)), w.lw.i);
    return w;
}

static void close_window(DnKernel *k, Window *w)
{
    dn_loop_end(k, &w->lw);
    dn_loop_end(k, &w->lh);
}

/* 1 / cells of the window, as f32. */
static LLVMValueRef inv_count(DnKernel *k, const Window *w)
{
    LLVMBuilderRef b = k->L->b;
    LLVMValueRef n = dn_mul(k, LLVMBuildSub(b, w->h1, w->h0, ""), LLVMBuildSub(b, w->w1, w->w0, ""));
    return LLVMBuildFDiv(b, dn_f32(k, 1), LLVMBuildSIToFP(b, n, k->L->f32, ""), "");
}

static void gen_forward(DnKernel *k, bool is_max)
{
    Adaptive a = geometry(k, k->op->in[0], k->op->out[0]);
    LLVMBuilderRef b = k->L->b;
    DnLoop lp = dn_loop_begin(k, k->begin, k->end, "plane");
    LLVMValueRef xplane = dn_mul(k, lp.i, dn_i64(k, a.H * a.W));
    LLVMValueRef yplane = dn_mul(k, lp.i, dn_i64(k, a.OH * a.OW));
    DnLoop li = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, a.OH), "i");
    DnLoop lj = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, a.OW), "j");
    LLVMValueRef acc = dn_var(k, k->L->f32, dn_f32(k, is_max ? -INFINITY : 0.0), "acc");
    Window w = open_window(k, &a, li.i, lj.i);
    LLVMValueRef v = dn_load_f32(k, k->in[0], dn_add(k, xplane, w.cell));
    LLVMValueRef cur = dn_get(k, acc, k->L->f32);
    if (is_max) {
        LLVMValueRef take =
            LLVMBuildOr(b, LLVMBuildFCmp(b, LLVMRealOGT, v, cur, ""), LLVMBuildFCmp(b, LLVMRealUNO, v, v, ""), "take");
        dn_set(k, acc, LLVMBuildSelect(b, take, v, cur, ""));
    } else {
        dn_set(k, acc, LLVMBuildFAdd(b, cur, v, ""));
    }
    close_window(k, &w);
    LLVMValueRef r = dn_get(k, acc, k->L->f32);
    if (!is_max) r = LLVMBuildFMul(b, r, inv_count(k, &w), "");
    dn_store_f32(k, k->out[0], dn_add(k, yplane, dn_add(k, dn_mul(k, li.i, dn_i64(k, a.OW)), lj.i)), r);
    dn_loop_end(k, &lj);
    dn_loop_end(k, &li);
    dn_loop_end(k, &lp);
}

void dn_kernel_adaptive_avgpool2d(DnKernel *k) { gen_forward(k, false); }
void dn_kernel_adaptive_maxpool2d(DnKernel *k) { gen_forward(k, true); }

static void clear_plane(DnKernel *k, LLVMValueRef base, int64_t size)
{
    DnLoop l = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, size), "z");
    dn_store_f32(k, k->out[0], dn_add(k, base, l.i), dn_f32(k, 0));
    dn_loop_end(k, &l);
}

void dn_kernel_adaptive_avgpool2d_bwd(DnKernel *k)
{
    const DnValue *dy = k->op->in[0];
    Adaptive a = geometry(k, k->op->out[0], dy);
    DnLoop lp = dn_loop_begin(k, k->begin, k->end, "plane");
    LLVMValueRef xplane = dn_mul(k, lp.i, dn_i64(k, a.H * a.W));
    LLVMValueRef yplane = dn_mul(k, lp.i, dn_i64(k, a.OH * a.OW));
    clear_plane(k, xplane, a.H * a.W);
    DnLoop li = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, a.OH), "i");
    DnLoop lj = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, a.OW), "j");
    LLVMValueRef g = dn_load_f32(k, k->in[0], dn_add(k, yplane, dn_add(k, dn_mul(k, li.i, dn_i64(k, a.OW)), lj.i)));
    Window w = open_window(k, &a, li.i, lj.i);
    LLVMValueRef share = LLVMBuildFMul(k->L->b, g, inv_count(k, &w), "");
    LLVMValueRef idx = dn_add(k, xplane, w.cell);
    dn_store_f32(k, k->out[0], idx, dn_fadd(k, dn_load_f32(k, k->out[0], idx), share));
    close_window(k, &w);
    dn_loop_end(k, &lj);
    dn_loop_end(k, &li);
    dn_loop_end(k, &lp);
}

void dn_kernel_adaptive_maxpool2d_bwd(DnKernel *k)
{
    const DnValue *dy = k->op->in[1];
    Adaptive a = geometry(k, k->op->in[0], dy);
    LLVMBuilderRef b = k->L->b;
    DnLoop lp = dn_loop_begin(k, k->begin, k->end, "plane");
    LLVMValueRef xplane = dn_mul(k, lp.i, dn_i64(k, a.H * a.W));
    LLVMValueRef yplane = dn_mul(k, lp.i, dn_i64(k, a.OH * a.OW));
    clear_plane(k, xplane, a.H * a.W);
    DnLoop li = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, a.OH), "i");
    DnLoop lj = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, a.OW), "j");
    LLVMValueRef best = dn_var(k, k->L->f32, dn_f32(k, -INFINITY), "best");
    LLVMValueRef arg = dn_var(k, k->L->i64, dn_i64(k, 0), "arg");
    LLVMValueRef h0, h1, w0, w1;
    bounds(k, li.i, a.H, a.OH, &h0, &h1);
    bounds(k, lj.i, a.W, a.OW, &w0, &w1);
    (void)h1, (void)w1;
    dn_set(k, arg, dn_add(k, dn_mul(k, h0, dn_i64(k, a.W)), w0)); /* the first cell, as PyTorch */
    Window w = open_window(k, &a, li.i, lj.i);
    LLVMValueRef v = dn_load_f32(k, k->in[0], dn_add(k, xplane, w.cell));
    LLVMValueRef take = LLVMBuildOr(b, LLVMBuildFCmp(b, LLVMRealOGT, v, dn_get(k, best, k->L->f32), ""),
                                    LLVMBuildFCmp(b, LLVMRealUNO, v, v, ""), "take");
    LLVMBasicBlockRef after = dn_if_begin(k, take);
    dn_set(k, best, v);
    dn_set(k, arg, w.cell);
    dn_if_end(k, after);
    close_window(k, &w);
    LLVMValueRef at = dn_add(k, xplane, dn_get(k, arg, k->L->i64));
    LLVMValueRef g = dn_load_f32(k, k->in[1], dn_add(k, yplane, dn_add(k, dn_mul(k, li.i, dn_i64(k, a.OW)), lj.i)));
    dn_store_f32(k, k->out[0], at, dn_fadd(k, dn_load_f32(k, k->out[0], at), g));
    dn_loop_end(k, &lj);
    dn_loop_end(k, &li);
    dn_loop_end(k, &lp);
}
