/* gpu_kernel_adaptive.c -- adaptive_avgpool2d, adaptive_maxpool2d and
 * their backwards on the GPU (NCHW; ops.def).
 *
 * Windows are PyTorch's uneven ones: output row o covers input rows
 * [o H / OH, ceil((o + 1) H / OH)), columns likewise.  Forwards: one work
 * item per output cell, scanning its window row-major as the CPU kernel
 * does (backends/llvm/kernel_adaptive.c); the max takes a cell greater
 * than the best so far or NaN, from the window's first cell.  Backwards
 * gather instead of scatter (no atomics): one item per input cell sums,
 * over the windows containing it in (oh, ow) order, what each sends it;
 * the cell is in window o of an axis exactly when
 *     floor(i OH / H) <= o <= floor(((i + 1) OH - 1) / H).
 * adaptive_maxpool2d_bwd first writes each window's pick (its in-plane
 * index) into the op's workspace, one item per output cell.
 */
#include "gpu_internal.h"

typedef struct Adaptive {
    int64_t H, W, OH, OW;
} Adaptive;

#define LL(v) ((long long)(v))

static Adaptive geometry(const DnValue *x, const DnValue *y)
{
    return (Adaptive){x->shape.dim[2], x->shape.dim[3], y->shape.dim[2], y->shape.dim[3]};
}

/* Output cell i: ow, oh, pl (plane), its window [h0, h1) x [w0, w1), xp its plane of x. */
static void emit_out_cell(DnGpuGen *G, const Adaptive *a)
{
    dn_gk_line(G, "i64 ow = i %% %lld, oh = (i / %lld) %% %lld, pl = i / %lld;", LL(a->OW), LL(a->OW), LL(a->OH),
               LL(a->OH * a->OW));
    dn_gk_line(G, "i64 h0 = oh * %lld / %lld, h1 = ((oh + 1) * %lld + %lld) / %lld;", LL(a->H), LL(a->OH), LL(a->H),
               LL(a->OH - 1), LL(a->OH));
    dn_gk_line(G, "i64 w0 = ow * %lld / %lld, w1 = ((ow + 1) * %lld + %lld) / %lld;", LL(a->W), LL(a->OW), LL(a->W),
               LL(a->OW - 1), LL(a->OW));
}

/* The loops over the window's cells (ih, iw; v = the cell of plane xp); 'inner' runs for each. */
static void emit_window(DnGpuGen *G, const Adaptive *a, const char *inner)
{
    dn_gk_line(G, "GLOBAL const float *xp = x + pl * %lld;", LL(a->H * a->W));
    dn_gk_line(G, "for (i64 ih = h0; ih < h1; ih++)");
    dn_gk_line(G, "    for (i64 iw = w0; iw < w1; iw++) {");
    dn_gk_line(G, "        float v = xp[ih * %lld + iw];", LL(a->W));
    dn_gk_line(G, "        %s", inner);
    dn_gk_line(G, "    }");
}

#define TAKE "v > best || v != v"

static void forward(DnGpuGen *G, bool is_max)
{
    const DnValue *y = G->op->out[0];
    Adaptive a = geometry(G->op->in[0], y);
    dn_gk_begin(G, "");
    dn_gk_ptr(G, 0, "float", "x");
    dn_gk_ptr(G, 1, "float", "y");
    dn_gk_line(G, "i64 i = GLOBAL_ID;");
    dn_gk_line(G, "if (i >= %s) return;", dn_gk_count(G, y));
    emit_out_cell(G, &a);
    if (is_max) {
        dn_gk_line(G, "float best = -F32_INF;");
        emit_window(G, &a, "if (" TAKE ") best = v;");
        dn_gk_line(G, "y[i] = best;");
    } else {
        dn_gk_line(G, "float s = 0.0f;");
        emit_window(G, &a, "s = s + v;");
        dn_gk_line(G, "y[i] = s * (1.0f / (float)((h1 - h0) * (w1 - w0)));");
    }
    int64_t in, ib;
    dn_gk_items(y, &in, &ib);
    dn_gk_end(G, in, ib, 256);
}

void dn_gpu_kernel_adaptive_avgpool2d(DnGpuGen *G) { forward(G, false); }
void dn_gpu_kernel_adaptive_maxpool2d(DnGpuGen *G) { forward(G, true); }

/* Input cell i (ih, iw of plane pl; cell = its in-plane index): s = 0 and the
 * loops over the windows (oh, ow) containing it; 'inner' sees o (the
 * window's index in the output-sized tensor) and h0, h1, w0, w1 (its bounds). */
static void emit_windows_of_cell(DnGpuGen *G, const Adaptive *a, const char *inner)
{
    dn_gk_line(G, "i64 iw = i %% %lld, ih = (i / %lld) %% %lld, pl = i / %lld;", LL(a->W), LL(a->W), LL(a->H),
               LL(a->H * a->W));
    dn_gk_line(G, "i64 oh0 = ih * %lld / %lld, oh1 = ((ih + 1) * %lld - 1) / %lld;", LL(a->OH), LL(a->H), LL(a->OH),
               LL(a->H));
    dn_gk_line(G, "i64 ow0 = iw * %lld / %lld, ow1 = ((iw + 1) * %lld - 1) / %lld;", LL(a->OW), LL(a->W), LL(a->OW),
               LL(a->W));
    dn_gk_line(G, "int cell = (int)(i %% %lld);", LL(a->H * a->W));
    dn_gk_line(G, "float s = 0.0f;");
    dn_gk_line(G, "for (i64 oh = oh0; oh <= oh1; oh++) {");
    dn_gk_line(G, "    i64 h0 = oh * %lld / %lld, h1 = ((oh + 1) * %lld + %lld) / %lld;", LL(a->H), LL(a->OH), LL(a->H),
               LL(a->OH - 1), LL(a->OH));
    dn_gk_line(G, "    for (i64 ow = ow0; ow <= ow1; ow++) {");
    dn_gk_line(G, "        i64 w0 = ow * %lld / %lld, w1 = ((ow + 1) * %lld + %lld) / %lld;", LL(a->W), LL(a->OW),
               LL(a->W), LL(a->OW - 1), LL(a->OW));
    dn_gk_line(G, "        i64 o = (pl * %lld + oh) * %lld + ow;", LL(a->OH), LL(a->OW));
    dn_gk_line(G, "        %s", inner);
    dn_gk_line(G, "    }");
    dn_gk_line(G, "}");
}

void dn_gpu_kernel_adaptive_avgpool2d_bwd(DnGpuGen *G)
{
    const DnValue *dy = G->op->in[0], *dx = G->op->out[0];
    Adaptive a = geometry(dx, dy);
    dn_gk_begin(G, "");
    dn_gk_ptr(G, 0, "float", "dy");
    dn_gk_ptr(G, 1, "float", "dx");
    dn_gk_line(G, "i64 i = GLOBAL_ID;");
    dn_gk_line(G, "if (i >= %s) return;", dn_gk_count(G, dx));
    emit_windows_of_cell(G, &a, "s = s + dy[o] * (1.0f / (float)((h1 - h0) * (w1 - w0)));");
    dn_gk_line(G, "dx[i] = s;");
    int64_t in, ib;
    dn_gk_items(dx, &in, &ib);
    dn_gk_end(G, in, ib, 256);
}

/* One int per window of dy: the forward's pick. */
bool dn_gpu_workspace_adaptive_maxpool2d_bwd(const DnOp *op, DnWorkspaceReq *req)
{
    dn_gk_ws_per_element(op->in[1], 4, req);
    return true;
}

void dn_gpu_kernel_adaptive_maxpool2d_bwd(DnGpuGen *G)
{
    const DnValue *x = G->op->in[0], *dy = G->op->in[1], *dx = G->op->out[0];
    Adaptive a = geometry(x, dy);
    int64_t in, ib;
    dn_gk_begin(G, "argmax");
    dn_gk_ptr(G, 0, "float", "x");
    dn_gk_ws(G, "int", "arg");
    dn_gk_line(G, "i64 i = GLOBAL_ID;");
    dn_gk_line(G, "if (i >= %s) return;", dn_gk_count(G, dy));
    emit_out_cell(G, &a);
    dn_gk_line(G, "float best = -F32_INF;");
    dn_gk_line(G, "int at = (int)(h0 * %lld + w0);", LL(a.W));
    char inner[128];
    snprintf(inner, sizeof inner, "if (" TAKE ") { best = v; at = (int)(ih * %lld + iw); }", LL(a.W));
    emit_window(G, &a, inner);
    dn_gk_line(G, "arg[i] = at;");
    dn_gk_items(dy, &in, &ib);
    dn_gk_end(G, in, ib, 256);
    dn_gk_begin(G, "gather");
    dn_gk_ws(G, "int", "arg");
    dn_gk_ptr(G, 1, "float", "dy");
    dn_gk_ptr(G, 2, "float", "dx");
    dn_gk_line(G, "i64 i = GLOBAL_ID;");
    dn_gk_line(G, "if (i >= %s) return;", dn_gk_count(G, dx));
    emit_windows_of_cell(G, &a, "if (arg[o] == cell) s = s + dy[o];");
    dn_gk_line(G, "dx[i] = s;");
    dn_gk_items(dx, &in, &ib);
    dn_gk_end(G, in, ib, 256);
}
