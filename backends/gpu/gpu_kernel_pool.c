/* gpu_kernel_pool.c -- 2-d pooling on the GPU (NCHW; ops.def): maxpool2d,
 * avgpool2d (padding counts as -inf for max, as zeros that count in the
 * divisor for avg: count_include_pad) and their backwards.
 *
 * Forwards: one work item per output cell, which reduces its window in
 * row-major order as the CPU kernel does (backends/llvm/kernel_pool.c).
 * Backwards gather instead of scatter, so no two items write one cell and
 * nothing needs atomics: one item per input cell sums, over the windows
 * that contain it in (oh, ow) order (the CPU's scatter order), what each
 * sends it.  maxpool2d_bwd first finds each window's first maximal element
 * (one item per output cell, into the op's workspace: its in-plane index,
 * -1 for none), so the gather only compares indices.
 */
#include "gpu_internal.h"

typedef struct Pool {
    int64_t H, W, OH, OW, kh, kw, sh, sw, ph, pw;
} Pool;

/* Geometry from the input-sized value 'x' and the output-sized 'y'. */
static Pool geometry(const DnOp *op, const DnValue *x, const DnValue *y)
{
    int n;
    const int64_t *k = dn_op_ints(op, "kernel", &n), *s = dn_op_ints(op, "stride", &n), *p = dn_op_ints(op, "pad", &n);
    return (Pool){
        x->shape.dim[2], x->shape.dim[3], y->shape.dim[2], y->shape.dim[3], k[0], k[1], s[0], s[1], p[0], p[1]};
}

#define LL(v) ((long long)(v))

/* Emits the index split of an output-sized cell i:  ow, oh, pl (plane),
 * and h0, w0 (the window's top-left, padding included). */
static void emit_out_cell(DnGpuGen *G, const Pool *p)
{
    dn_gk_line(G, "i64 ow = i %% %lld, oh = (i / %lld) %% %lld, pl = i / %lld;", LL(p->OW), LL(p->OW), LL(p->OH),
               LL(p->OH * p->OW));
    dn_gk_line(G, "i64 h0 = oh * %lld - %lld, w0 = ow * %lld - %lld;", LL(p->sh), LL(p->ph), LL(p->sw), LL(p->pw));
    dn_gk_line(G, "GLOBAL const float *xp = x + pl * %lld;", LL(p->H * p->W));
}

/* Emits the loops over the window's cells inside the plane (ih, iw, and
 * v = the cell's value); 'inner' is the statement run for each. */
static void emit_window(DnGpuGen *G, const Pool *p, const char *inner)
{
    dn_gk_line(G, "for (i64 a = 0; a < %lld; a++) {", LL(p->kh));
    dn_gk_line(G, "    i64 ih = h0 + a;");
    dn_gk_line(G, "    if (ih < 0 || ih >= %lld) continue;", LL(p->H));
    dn_gk_line(G, "    for (i64 b = 0; b < %lld; b++) {", LL(p->kw));
    dn_gk_line(G, "        i64 iw = w0 + b;");
    dn_gk_line(G, "        if (iw < 0 || iw >= %lld) continue;", LL(p->W));
    dn_gk_line(G, "        float v = xp[ih * %lld + iw];", LL(p->W));
    dn_gk_line(G, "        %s", inner);
    dn_gk_line(G, "    }");
    dn_gk_line(G, "}");
}

static void pool_forward(DnGpuGen *G, bool is_max)
{
    const DnValue *y = G->op->out[0];
    Pool p = geometry(G->op, G->op->in[0], y);
    dn_gk_begin(G, "");
    dn_gk_ptr(G, 0, "float", "x");
    dn_gk_ptr(G, 1, "float", "y");
    dn_gk_line(G, "i64 i = GLOBAL_ID;");
    dn_gk_line(G, "if (i >= %s) return;", dn_gk_count(G, y));
    emit_out_cell(G, &p);
    dn_gk_line(G, "float acc = %s;", is_max ? "-F32_INF" : "0.0f");
    emit_window(G, &p, is_max ? "acc = v > acc ? v : acc;" : "acc = acc + v;");
    if (is_max)
        dn_gk_line(G, "y[i] = acc;");
    else
        dn_gk_line(G, "y[i] = acc * %s;", dn_gk_float(G, (float)(1.0 / (double)(p.kh * p.kw))));
    int64_t in, ib;
    dn_gk_items(y, &in, &ib);
    dn_gk_end(G, in, ib, 256);
}

void dn_gpu_kernel_maxpool2d(DnGpuGen *G) { pool_forward(G, true); }
void dn_gpu_kernel_avgpool2d(DnGpuGen *G) { pool_forward(G, false); }

/* Emits, for input-sized cell i (ih, iw of plane pl; cell = its index in
 * the plane) the sum s = 0 and the loops over the windows (oh, ow) that
 * contain it, in row-major order; 'inner' sees o, the window's index in
 * the output-sized tensor. */
static void emit_windows_of_cell(DnGpuGen *G, const Pool *p, const char *inner)
{
    dn_gk_line(G, "i64 iw = i %% %lld, ih = (i / %lld) %% %lld, pl = i / %lld;", LL(p->W), LL(p->W), LL(p->H),
               LL(p->H * p->W));
    /* oh * sh - ph <= ih < oh * sh - ph + kh  <=>  (ih + ph - kh + 1) / sh <= oh <= (ih + ph) / sh */
    dn_gk_line(G, "i64 lh = ih + %lld, lw = iw + %lld;", LL(p->ph - p->kh + 1), LL(p->pw - p->kw + 1));
    dn_gk_line(G, "i64 oh0 = lh <= 0 ? 0 : (lh + %lld) / %lld, ow0 = lw <= 0 ? 0 : (lw + %lld) / %lld;", LL(p->sh - 1),
               LL(p->sh), LL(p->sw - 1), LL(p->sw));
    dn_gk_line(G, "i64 oh1 = (ih + %lld) / %lld, ow1 = (iw + %lld) / %lld;", LL(p->ph), LL(p->sh), LL(p->pw),
               LL(p->sw));
    dn_gk_line(G, "if (oh1 > %lld) oh1 = %lld;", LL(p->OH - 1), LL(p->OH - 1));
    dn_gk_line(G, "if (ow1 > %lld) ow1 = %lld;", LL(p->OW - 1), LL(p->OW - 1));
    dn_gk_line(G, "int cell = (int)(i %% %lld);", LL(p->H * p->W));
    dn_gk_line(G, "float s = 0.0f;");
    dn_gk_line(G, "for (i64 oh = oh0; oh <= oh1; oh++)");
    dn_gk_line(G, "    for (i64 ow = ow0; ow <= ow1; ow++) {");
    dn_gk_line(G, "        i64 o = (pl * %lld + oh) * %lld + ow;", LL(p->OH), LL(p->OW));
    dn_gk_line(G, "        %s", inner);
    dn_gk_line(G, "    }");
}

/* One int per window of dy: its argmax. */
bool dn_gpu_workspace_maxpool2d_bwd(const DnOp *op, DnWorkspaceReq *req)
{
    dn_gk_ws_per_element(op->in[1], 4, req);
    return true;
}

void dn_gpu_kernel_maxpool2d_bwd(DnGpuGen *G)
{
    const DnValue *x = G->op->in[0], *dy = G->op->in[1], *dx = G->op->out[0];
    Pool p = geometry(G->op, x, dy);
    int64_t in, ib;
    /* each window's first maximum (padding never wins; none when no cell beats -inf) */
    dn_gk_begin(G, "argmax");
    dn_gk_ptr(G, 0, "float", "x");
    dn_gk_ws(G, "int", "arg");
    dn_gk_line(G, "i64 i = GLOBAL_ID;");
    dn_gk_line(G, "if (i >= %s) return;", dn_gk_count(G, dy));
    emit_out_cell(G, &p);
    dn_gk_line(G, "float best = -F32_INF;");
    dn_gk_line(G, "int at = -1;");
    char inner[96];
    snprintf(inner, sizeof inner, "if (v > best) { best = v; at = (int)(ih * %lld + iw); }", LL(p.W));
    emit_window(G, &p, inner);
    dn_gk_line(G, "arg[i] = at;");
    dn_gk_items(dy, &in, &ib);
    dn_gk_end(G, in, ib, 256);
    /* dx: the dy of every window whose argmax is this cell */
    dn_gk_begin(G, "gather");
    dn_gk_ws(G, "int", "arg");
    dn_gk_ptr(G, 1, "float", "dy");
    dn_gk_ptr(G, 2, "float", "dx");
    dn_gk_line(G, "i64 i = GLOBAL_ID;");
    dn_gk_line(G, "if (i >= %s) return;", dn_gk_count(G, dx));
    emit_windows_of_cell(G, &p, "if (arg[o] == cell) s = s + dy[o];");
    dn_gk_line(G, "dx[i] = s;");
    dn_gk_items(dx, &in, &ib);
    dn_gk_end(G, in, ib, 256);
}

void dn_gpu_kernel_avgpool2d_bwd(DnGpuGen *G)
{
    const DnValue *dy = G->op->in[0], *dx = G->op->out[0];
    Pool p = geometry(G->op, dx, dy);
    dn_gk_begin(G, "");
    dn_gk_ptr(G, 0, "float", "dy");
    dn_gk_ptr(G, 1, "float", "dx");
    dn_gk_line(G, "i64 i = GLOBAL_ID;");
    dn_gk_line(G, "if (i >= %s) return;", dn_gk_count(G, dx));
    char inner[96];
    snprintf(inner, sizeof inner, "s = s + dy[o] * %s;", dn_gk_float(G, (float)(1.0 / (double)(p.kh * p.kw))));
    emit_windows_of_cell(G, &p, inner);
    dn_gk_line(G, "dx[i] = s;");
    int64_t in, ib;
    dn_gk_items(dx, &in, &ib);
    dn_gk_end(G, in, ib, 256);
}
