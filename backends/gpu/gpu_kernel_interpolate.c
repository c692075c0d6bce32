/* gpu_kernel_interpolate.c -- interpolate and interpolate_bwd on the GPU
 * (NCHW; ops.def: F.interpolate, align_corners=False).
 *
 * Source cells and weights per axis as ops.def states them, in f32 with
 * the constant scale (float)H / (float)OH, as the CPU kernel computes them
 * (backends/llvm/kernel_interpolate.c).  Forward: one work item per output
 * cell.  Backward gathers instead of scattering (no atomics): one item per
 * input cell (h, w) sums, over the output rows i and columns j whose
 * corners include it, in (i, j) order, weight times dy.  The rows that can
 * reach row h lie in
 *     [(h - 1) OH / H - 1, (h + 2) OH / H + 1]
 * (bilinear: the source s of row i is in [h - 1, h + 1); nearest: in
 * [h, h + 1)); each candidate is checked against the forward's cells.
 */
#include "gpu_internal.h"

typedef struct Interp {
    int64_t H, W, OH, OW;
    bool nearest;
} Interp;

#define LL(v) ((long long)(v))

static Interp geometry(const DnOp *op, const DnValue *x, const DnValue *y)
{
    return (Interp){x->shape.dim[2], x->shape.dim[3], y->shape.dim[2], y->shape.dim[3],
                    !strcmp(dn_op_str(op, "mode"), "nearest")};
}

/* Emits, for output index 'o' of an axis of 'len' cells and 'olen' outputs,
 * i64 <p>0, <p>1 (its source cells) and float <p>l (the weight of <p>1;
 * <p>0 gets 1 - <p>l). */
static void emit_source(DnGpuGen *G, const char *p, const char *o, int64_t len, int64_t olen, bool nearest)
{
    const char *scale = dn_gk_float(G, (float)len / (float)olen);
    if (nearest) {
        dn_gk_line(G, "i64 %s0 = (i64)((float)%s * %s);", p, o, scale);
        dn_gk_line(G, "if (%s0 > %lld) %s0 = %lld;", p, LL(len - 1), p, LL(len - 1));
        dn_gk_line(G, "i64 %s1 = %s0;", p, p);
        dn_gk_line(G, "float %sl = 0.0f;", p);
        return;
    }
    dn_gk_line(G, "float %ss = %s * ((float)%s + 0.5f) - 0.5f;", p, scale, o);
    dn_gk_line(G, "if (%ss < 0.0f) %ss = 0.0f;", p, p);
    dn_gk_line(G, "i64 %s0 = (i64)%ss;", p, p);
    dn_gk_line(G, "i64 %s1 = %s0 < %lld ? %s0 + 1 : %s0;", p, p, LL(len - 1), p, p);
    dn_gk_line(G, "float %sl = %ss - (float)%s0;", p, p, p);
}

void dn_gpu_kernel_interpolate(DnGpuGen *G)
{
    const DnValue *y = G->op->out[0];
    Interp a = geometry(G->op, G->op->in[0], y);
    dn_gk_begin(G, "");
    dn_gk_ptr(G, 0, "float", "x");
    dn_gk_ptr(G, 1, "float", "y");
    dn_gk_line(G, "i64 i = GLOBAL_ID;");
    dn_gk_line(G, "if (i >= %s) return;", dn_gk_count(G, y));
    dn_gk_line(G, "i64 ow = i %% %lld, oh = (i / %lld) %% %lld, pl = i / %lld;", LL(a.OW), LL(a.OW), LL(a.OH),
               LL(a.OH * a.OW));
    emit_source(G, "h", "oh", a.H, a.OH, a.nearest);
    emit_source(G, "w", "ow", a.W, a.OW, a.nearest);
    dn_gk_line(G, "GLOBAL const float *xp = x + pl * %lld;", LL(a.H * a.W));
    if (a.nearest) {
        dn_gk_line(G, "y[i] = xp[h0 * %lld + w0];", LL(a.W));
    } else {
        dn_gk_line(G, "float top = (1.0f - wl) * xp[h0 * %lld + w0] + wl * xp[h0 * %lld + w1];", LL(a.W), LL(a.W));
        dn_gk_line(G, "float bot = (1.0f - wl) * xp[h1 * %lld + w0] + wl * xp[h1 * %lld + w1];", LL(a.W), LL(a.W));
        dn_gk_line(G, "y[i] = (1.0f - hl) * top + hl * bot;");
    }
    int64_t in, ib;
    dn_gk_items(y, &in, &ib);
    dn_gk_end(G, in, ib, 256);
}

/* Emits the candidate range [<c>lo, <c>hi] of outputs 'olen' that can reach input index 'ix' of 'len'. */
static void emit_range(DnGpuGen *G, const char *c, const char *ix, int64_t len, int64_t olen)
{
    dn_gk_line(G, "i64 %slo = %s >= 1 ? (%s - 1) * %lld / %lld - 1 : 0;", c, ix, ix, LL(olen), LL(len));
    dn_gk_line(G, "i64 %shi = (%s + 2) * %lld / %lld + 1;", c, ix, LL(olen), LL(len));
    dn_gk_line(G, "if (%slo < 0) %slo = 0;", c, c);
    dn_gk_line(G, "if (%shi > %lld) %shi = %lld;", c, LL(olen - 1), c, LL(olen - 1));
}

void dn_gpu_kernel_interpolate_bwd(DnGpuGen *G)
{
    const DnValue *dy = G->op->in[0], *dx = G->op->out[0];
    Interp a = geometry(G->op, dx, dy);
    dn_gk_begin(G, "");
    dn_gk_ptr(G, 0, "float", "dy");
    dn_gk_ptr(G, 1, "float", "dx");
    dn_gk_line(G, "i64 i = GLOBAL_ID;");
    dn_gk_line(G, "if (i >= %s) return;", dn_gk_count(G, dx));
    dn_gk_line(G, "i64 iw = i %% %lld, ih = (i / %lld) %% %lld, pl = i / %lld;", LL(a.W), LL(a.W), LL(a.H),
               LL(a.H * a.W));
    emit_range(G, "r", "ih", a.H, a.OH);
    emit_range(G, "c", "iw", a.W, a.OW);
    dn_gk_line(G, "GLOBAL const float *dyp = dy + pl * %lld;", LL(a.OH * a.OW));
    dn_gk_line(G, "float s = 0.0f;");
    dn_gk_line(G, "for (i64 oh = rlo; oh <= rhi; oh++) {");
    emit_source(G, "h", "oh", a.H, a.OH, a.nearest);
    dn_gk_line(G, "if (h0 != ih && h1 != ih) continue;");
    dn_gk_line(G, "float wr = (h0 == ih ? 1.0f - hl : 0.0f) + (h1 == ih ? hl : 0.0f);");
    dn_gk_line(G, "for (i64 ow = clo; ow <= chi; ow++) {");
    emit_source(G, "w", "ow", a.W, a.OW, a.nearest);
    dn_gk_line(G, "if (w0 != iw && w1 != iw) continue;");
    dn_gk_line(G, "float wc = (w0 == iw ? 1.0f - wl : 0.0f) + (w1 == iw ? wl : 0.0f);");
    dn_gk_line(G, "s = s + wc * (wr * dyp[oh * %lld + ow]);", LL(a.OW));
    dn_gk_line(G, "}");
    dn_gk_line(G, "}");
    dn_gk_line(G, "dx[i] = s;");
    int64_t in, ib;
    dn_gk_items(dx, &in, &ib);
    dn_gk_end(G, in, ib, 256);
}
