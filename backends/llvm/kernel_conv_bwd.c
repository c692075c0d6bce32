/* kernel_conv_bwd.c -- kernels of conv2d's gradients (ops.def):
 * conv2d_bwd_data (dx, parallel over the batch: each item's dx is
 * disjoint; each dy cell is scattered through the filter) and
 * conv2d_bwd_filter (dw, parallel over output channels: the sum over the
 * batch stays inside one thread, in a fixed order, so results do not
 * depend on the thread count).  Stride, padding, dilation and groups as
 * in conv2d.
 *
 * These direct loops are the fallback: each generator first offers the op
 * to the fast forms (kernel_conv_bwd_dot.c, kernel_conv_bwd_gemm.c, on
 * the micro-kernel of llvm_gemm.c), which take every shape (large images
 * through bounded band buffers); dnnc --direct-kernels keeps the direct loops
 * (test_gemm compares the two).  Also the shared geometry helpers.
 */
#include <llvm-c/DebugInfo.h>

#include "llvm_gemm.h"

typedef DnConvGeom Conv;

/* Contract: llvm_gemm.h. */
DnConvGeom dn_conv_geom(const DnOp *op, const DnValue *x, const DnValue *w, const DnValue *dy)
{
    int n;
    const int64_t *s = dn_op_ints(op, "stride", &n), *p = dn_op_ints(op, "pad", &n),
                  *d = dn_op_ints(op, "dilation", &n);
    Conv c = {x->shape.dim[1],
              x->shape.dim[2],
              x->shape.dim[3],
              w->shape.dim[0],
              dy->shape.dim[2],
              dy->shape.dim[3],
              w->shape.dim[2],
              w->shape.dim[3],
              dn_op_int(op, "groups"),
              w->shape.dim[1],
              0,
              s[0],
              s[1],
              p[0],
              p[1],
              d[0],
              d[1]};
    c.Og = c.O / c.G;
    return c;
}

/* The outputs o in [*lo, *hi) whose input coordinate o * s - p + t * d
 * lies in [0, lim), for kernel tap t: computing the range once keeps the
 * inner loops free of bounds tests (so they vectorize). */
void dn_conv_valid_range(DnKernel *k, LLVMValueRef t, int64_t s, int64_t p, int64_t d, int64_t lim, int64_t nout,
                         LLVMValueRef *lo, LLVMValueRef *hi)
{
    LLVMBuilderRef b = k->L->b;
    LLVMValueRef off = dn_add(k, dn_mul(k, t, dn_i64(k, d)), dn_i64(k, -p)); /* coordinate of o = 0 */
    LLVMValueRef neg = LLVMBuildNeg(b, off, "");
    LLVMValueRef up = LLVMBuildSDiv(b, dn_add(k, neg, dn_i64(k, s - 1)), dn_i64(k, s), "");
    *lo = LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntSGT, neg, dn_i64(k, 0), ""), up, dn_i64(k, 0), "lo");
    LLVMValueRef last = dn_add(k, dn_i64(k, lim - 1), LLVMBuildNeg(b, off, ""));
    LLVMValueRef h = dn_add(k, LLVMBuildSDiv(b, last, dn_i64(k, s), ""), dn_i64(k, 1));
    h = LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntSLT, last, dn_i64(k, 0), ""), dn_i64(k, 0), h, "");
    *hi = LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntSLT, h, dn_i64(k, nout), ""), h, dn_i64(k, nout), "hi");
}

/* Input coordinate o * s - p + t * d. */
static LLVMValueRef coord(DnKernel *k, LLVMValueRef o, int64_t s, int64_t p, LLVMValueRef t, int64_t d)
{
    return dn_add(k, dn_add(k, dn_mul(k, o, dn_i64(k, s)), dn_i64(k, -p)), dn_mul(k, t, dn_i64(k, d)));
}

/* Closes loop 'l' with llvm.loop.unroll.disable on its back edge: the
 * short, bounded inner loops here would otherwise be fully unrolled and the
 * vectorizer would then gather across rows instead of streaming along one. */
static void loop_end_rolled(DnKernel *k, DnLoop *l)
{
    LLVMContextRef ctx = k->L->ctx;
    LLVMBasicBlockRef latch = LLVMGetInsertBlock(k->L->b);
    dn_loop_end(k, l);
    LLVMValueRef br = LLVMGetBasicBlockTerminator(latch);
    LLVMMetadataRef tmp = LLVMTemporaryMDNode(ctx, NULL, 0);
    LLVMMetadataRef opt = LLVMMDStringInContext2(ctx, "llvm.loop.unroll.disable", 24);
    LLVMMetadataRef dis = LLVMMDNodeInContext2(ctx, &opt, 1);
    LLVMMetadataRef ops[2] = {tmp, dis};
    LLVMMetadataRef node = LLVMMDNodeInContext2(ctx, ops, 2);
    LLVMMetadataReplaceAllUsesWith(tmp, node);
    LLVMSetMetadata(br, LLVMGetMDKindIDInContext(ctx, "llvm.loop", 9), LLVMMetadataAsValue(ctx, node));
}

/* Flat index ((a * B + b) * C + c) * D + d. */
static LLVMValueRef idx4(DnKernel *k, LLVMValueRef a, int64_t B, LLVMValueRef b, int64_t C, LLVMValueRef c, int64_t D,
                         LLVMValueRef d)
{
    LLVMValueRef r = dn_add(k, dn_mul(k, a, dn_i64(k, B)), b);
    r = dn_add(k, dn_mul(k, r, dn_i64(k, C)), c);
    return dn_add(k, dn_mul(k, r, dn_i64(k, D)), d);
}

/* dx[n] = sum over o, taps of dy[n, o] scattered through w[o]. */
void dn_kernel_conv2d_bwd_data(DnKernel *k)
{
    if (dn_conv_bwd_data_winograd(k) || dn_conv_bwd_data_gemm(k)) return;
    LLVMBuilderRef b = k->L->b;
    const DnOp *op = k->op;
    Conv c = dn_conv_geom(op, op->out[0], op->in[1], op->in[0]);
    bool has_n = dn_shape_has_n(&op->out[0]->shape);
    k->par_n = has_n ? 1 : 0;
    k->par_b = has_n ? 0 : op->out[0]->shape.dim[0];
    LLVMValueRef dy = k->in[0], w = k->in[1], dx = k->out[0];
    DnLoop ln = dn_loop_begin(k, k->begin, k->end, "n");
    DnLoop lz = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, c.C * c.H * c.W), "z");
    dn_store_f32(k, dx, dn_add(k, dn_mul(k, ln.i, dn_i64(k, c.C * c.H * c.W)), lz.i), dn_f32(k, 0));
    dn_loop_end(k, &lz);
    DnLoop lo = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, c.O), "o");
    LLVMValueRef cbase = dn_mul(k, LLVMBuildSDiv(b, lo.i, dn_i64(k, c.Og), ""), dn_i64(k, c.Cg));
    DnLoop lc = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, c.Cg), "c");
    DnLoop lkh = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, c.KH), "kh");
    DnLoop lkw = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, c.KW), "kw");
    LLVMValueRef wv = dn_load_f32(k, w, idx4(k, lo.i, c.Cg, lc.i, c.KH, lkh.i, c.KW, lkw.i));
    LLVMValueRef h0, h1, w0, w1;
    dn_conv_valid_range(k, lkh.i, c.sh, c.ph, c.dh, c.H, c.OH, &h0, &h1);
    dn_conv_valid_range(k, lkw.i, c.sw, c.pw, c.dw, c.W, c.OW, &w0, &w1);
    DnLoop loh = dn_loop_begin(k, h0, h1, "oh");
    LLVMValueRef ih = coord(k, loh.i, c.sh, c.ph, lkh.i, c.dh);
    LLVMValueRef xrow = idx4(k, ln.i, c.C, dn_add(k, cbase, lc.i), c.H, ih, c.W, dn_i64(k, 0));
    LLVMValueRef yrow = idx4(k, ln.i, c.O, lo.i, c.OH, loh.i, c.OW, dn_i64(k, 0));
    DnLoop low = dn_loop_begin(k, w0, w1, "ow");
    LLVMValueRef at = dn_add(k, xrow, coord(k, low.i, c.sw, c.pw, lkw.i, c.dw));
    LLVMValueRef g = dn_load_f32(k, dy, dn_add(k, yrow, low.i));
    dn_store_f32(k, dx, at, dn_fadd(k, dn_load_f32(k, dx, at), dn_fmul(k, g, wv)));
    dn_loop_end(k, &low);
    dn_loop_end(k, &loh);
    dn_loop_end(k, &lkw);
    dn_loop_end(k, &lkh);
    dn_loop_end(k, &lc);
    dn_loop_end(k, &lo);
    dn_loop_end(k, &ln);
}

/* dw[o, c, kh, kw] = sum_{n, oh, ow} x[n, g*Cg + c, ih, iw] * dy[n, o, oh, ow]. */
void dn_kernel_conv2d_bwd_filter(DnKernel *k)
{
    if (dn_conv_bwd_filter_dot(k) || dn_conv_bwd_filter_gemm(k)) return;
    LLVMBuilderRef b = k->L->b;
    const DnOp *op = k->op;
    Conv c = dn_conv_geom(op, op->in[0], op->out[0], op->in[1]);
    k->par_n = 0;
    k->par_b = c.O;
    LLVMValueRef x = k->in[0], dy = k->in[1], dw = k->out[0];
    DnLoop lo = dn_loop_begin(k, k->begin, k->end, "o");
    LLVMValueRef cbase = dn_mul(k, LLVMBuildSDiv(b, lo.i, dn_i64(k, c.Og), ""), dn_i64(k, c.Cg));
    DnLoop lc = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, c.Cg), "c");
    DnLoop lkh = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, c.KH), "kh");
    DnLoop lkw = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, c.KW), "kw");
    LLVMValueRef acc = dn_var(k, k->L->f32, dn_f32(k, 0), "acc");
    LLVMValueRef h0, h1, w0, w1;
    dn_conv_valid_range(k, lkh.i, c.sh, c.ph, c.dh, c.H, c.OH, &h0, &h1);
    dn_conv_valid_range(k, lkw.i, c.sw, c.pw, c.dw, c.W, c.OW, &w0, &w1);
    DnLoop ln = dn_loop_begin(k, dn_i64(k, 0), dn_dim(k, op->in[0], 0), "n");
    DnLoop loh = dn_loop_begin(k, h0, h1, "oh");
    LLVMValueRef ih = coord(k, loh.i, c.sh, c.ph, lkh.i, c.dh);
    LLVMValueRef xrow = idx4(k, ln.i, c.C, dn_add(k, cbase, lc.i), c.H, ih, c.W, dn_i64(k, 0));
    LLVMValueRef yrow = idx4(k, ln.i, c.O, lo.i, c.OH, loh.i, c.OW, dn_i64(k, 0));
    DnLoop low = dn_loop_begin(k, w0, w1, "ow");
    LLVMValueRef xv = dn_load_f32(k, x, dn_add(k, xrow, coord(k, low.i, c.sw, c.pw, lkw.i, c.dw)));
    LLVMValueRef g = dn_load_f32(k, dy, dn_add(k, yrow, low.i));
    dn_set(k, acc, dn_fadd(k, dn_get(k, acc, k->L->f32), dn_fmul(k, xv, g)));
    loop_end_rolled(k, &low);
    dn_loop_end(k, &loh);
    dn_loop_end(k, &ln);
    dn_store_f32(k, dw, idx4(k, lo.i, c.Cg, lc.i, c.KH, lkh.i, c.KW, lkw.i), dn_get(k, acc, k->L->f32));
    dn_loop_end(k, &lkw);
    dn_loop_end(k, &lkh);
    dn_loop_end(k, &lc);
    dn_loop_end(k, &lo);
}
