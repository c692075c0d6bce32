/* gpu_kernel_rnn.c -- the recurrent scans on the GPU: rnn_scan and
 * rnn_scan_bwd for every cell of ir/rnn_cell.h (the contract: operand and
 * result layouts, save slots, masks, reverse): a scan kernel per op, after
 * a transpose of w_hh for rnn_scan.
 *
 * A work-group per batch item b walks the steps in order inside the kernel
 * (the recurrence is sequential; items of the batch are independent).  Its
 * items own hidden units j = LOCAL_ID, LOCAL_ID + GS, ... (GS the group
 * size): an item computes everything of its units, so only the vector that
 * every unit reads crosses items, through LOCAL memory, with a barrier
 * between the phases of a step (a step's mask is the same for the whole
 * group, so every item reaches every barrier).
 *
 * rnn_scan: a first kernel transposes w_hh into the op's workspace
 * (wt[k, r] = w_hh[r, k]), so that the scan's items, adjacent in j, read
 * adjacent weights.  In the scan LOCAL h[H] holds h_prev.  Phase 1: each
 * item forms the G gate rows of its unit, hg = w_hh[g*H + j, :] . h_prev +
 * b_hh (k ascending, float), applies the cell and writes y, save and the
 * running state, which is the s_T result itself (h, and LSTM's c, only
 * ever touched by the unit's item).  Phase 2: each item copies its units'
 * new h from s_T into LOCAL h.
 *
 * rnn_scan_bwd runs the steps the other way.  The carried gradients (dh,
 * and LSTM's dc) live in the ds0 result, per unit.  Phase 1: each item
 * turns dh + dy of its unit into the gate gradients (dxg, dhg, and dhg into
 * LOCAL gl[G*H]) and leaves the part of dh_prev that bypasses w_hh in ds0
 * (GRU's z * dh, else 0); phase 2: each item adds w_hh[:, k] . g (rows
 * ascending: reads coalesced along k) for its units k.  A masked step
 * writes zeros to dxg and dhg and skips phase 2 (dh and dc carry over).
 *
 * LOCAL memory bounds H: 4 H bytes (forward) and 4 G H (backward) within
 * 32 KiB, OpenCL's guaranteed minimum; a larger layer is a diagnostic.
 * The products by w_hh round their operands to the --precision
 * (DN_ROUND_IN), as other matrix products do.  Deterministic: every sum
 * has a fixed order.  Cost per step and item:
 * G H multiply-adds per unit it owns.
 */
#include <stdlib.h>

#include "../../ir/rnn_cell.h"
#include "gpu_internal.h"

#define LL(v)     ((long long)(v))
#define MAX_GROUP 256
#define LOCAL_MAX 32768

typedef struct Scan {
    const DnRnnCellInfo *c;
    int64_t H, nb; /* nb: the batch when static, else 0 */
    const char *T; /* the steps as text: a constant, or the parameter 'steps' (t) over the sequence axis */
    bool masked, reverse;
    int gs; /* the group size */
} Scan;

/* The scan of G's op whose operand 'iseq' is [n, T, _] and 'iw' w_hh. */
static Scan scan_of(DnGpuGen *G, int iseq, int iw)
{
    const DnOp *op = G->op;
    const DnValue *x = op->in[iseq];
    int64_t T = x->shape.dim[1];
    Scan s = {.c = dn_rnn_cell(dn_op_str(op, "cell")),
              .H = op->in[iw]->shape.dim[1],
              .T = DN_DIM_IS_SEQ(T) ? "steps" : dn_arena_printf(&G->H->cx->arena, "%lld", LL(T)),
              .nb = dn_gk_has_n(x) ? 0 : x->shape.dim[0],
              .masked = op->nin > 4,
              .reverse = dn_op_int(op, "reverse") != 0};
    DN_ASSERT(s.c);
    s.gs = (int)(s.H < MAX_GROUP ? (s.H + 31) / 32 * 32 : MAX_GROUP);
    return s;
}

/* Whether 'bytes' of LOCAL memory fit; a diagnostic when not. */
static bool local_fits(DnGpuGen *G, const Scan *s, int64_t bytes, const char *what)
{
    if (bytes <= LOCAL_MAX) return true;
    dn_error(G->H->cx, G->op->loc,
             "%s: the GPU kernel keeps %s (%lld bytes for hidden size %lld) in local memory, at most %d bytes",
             dn_op_info[G->op->kind].name, what, LL(bytes), LL(s->H), LOCAL_MAX);
    G->failed = true;
    return false;
}

static void end_scan(DnGpuGen *G, const Scan *s)
{
    if (s->nb)
        dn_gk_end(G, 0, s->nb * s->gs, s->gs);
    else
        dn_gk_end(G, s->gs, 0, s->gs);
}

/* dst[b, :] = src[b, :] for a state-shaped pair, each item copying its
 * own units (h and, for LSTM, c: the item that reads them later). */
static void units_copy(DnGpuGen *G, const Scan *s, const char *dst, const char *src)
{
    int64_t H = s->H, SH = s->c->state * H;
    dn_gk_line(G, "for (i64 j = LOCAL_ID; j < %lld; j += %d) {", LL(H), s->gs);
    for (int q = 0; q < s->c->state; q++)
        dn_gk_line(G, "    %s[b * %lld + %lld + j] = %s[b * %lld + %lld + j];", dst, LL(SH), LL(q * H), src, LL(SH),
                   LL(q * H));
    dn_gk_line(G, "}");
}

/* The step loop's head: t (the step), on (the step is part of item b's
 * sequence) and the offsets of step t's rows: xo (G*H wide), yo (H), so (K*H). */
static void step_head(DnGpuGen *G, const Scan *s, bool backwards)
{
    bool down = s->reverse != backwards;
    dn_gk_line(G, "for (i64 st = 0; st < %s; st++) {", s->T);
    if (down && !strcmp(s->T, "steps"))
        dn_gk_line(G, "    i64 t = steps - 1 - st;");
    else if (down)
        dn_gk_line(G, "    i64 t = %lld - st;", strtoll(s->T, NULL, 10) - 1);
    else
        dn_gk_line(G, "    i64 t = st;");
    if (s->masked)
        dn_gk_line(G, "    int on = mask[b * %s + t] != 0.0f;", s->T);
    else
        dn_gk_line(G, "    int on = 1;");
    dn_gk_line(G, "    i64 xo = (b * %s + t) * %lld, yo = (b * %s + t) * %lld, so = (b * %s + t) * %lld;", s->T,
               LL(s->c->gates * s->H), s->T, LL(s->H), s->T, LL(s->c->saved * s->H));
}

/* The parameter 'steps' of a scan over the sequence axis. */
static void steps_param(DnGpuGen *G, const Scan *s)
{
    if (!strcmp(s->T, "steps")) dn_gk_rt(G, "steps", DNRT_ARG_SEQ);
}

/* ---- rnn_scan ---------------------------------------------------------------- */

/* The sigmoid of expression 'v' as text. */
#define SIG(v) "1.0f / (1.0f + expf(-(" v ")))"

/* Phase 1's cell update for unit j: hg0.. (hg without xg) and hp (h_prev)
 * in scope; writes h, the saved slots and the state's c. */
static void cell_forward(DnGpuGen *G, const Scan *s)
{
    int64_t H = s->H, SH = s->c->state * H;
    switch (s->c->cell) {
    case DN_RNN_TANH:
    case DN_RNN_RELU:
        dn_gk_line(G, "        float a = xg[xo + j] + hg0;");
        if (s->c->cell == DN_RNN_TANH)
            dn_gk_line(G, "        float h = tanhf(a);");
        else
            dn_gk_line(G, "        float h = a > 0.0f ? a : 0.0f;");
        dn_gk_line(G, "        sv[so + %lld + j] = h;", LL(H));
        break;
    case DN_RNN_LSTM:
        dn_gk_line(G, "        float ig = " SIG("xg[xo + j] + hg0") ";");
        dn_gk_line(G, "        float fg = " SIG("xg[xo + %lld + j] + hg1") ";", LL(H));
        dn_gk_line(G, "        float gg = tanhf(xg[xo + %lld + j] + hg2);", LL(2 * H));
        dn_gk_line(G, "        float og = " SIG("xg[xo + %lld + j] + hg3") ";", LL(3 * H));
        dn_gk_line(G, "        float cp = sT[b * %lld + %lld + j];", LL(SH), LL(H));
        dn_gk_line(G, "        float c = fg * cp + ig * gg;");
        dn_gk_line(G, "        float h = og * tanhf(c);");
        dn_gk_line(G, "        sT[b * %lld + %lld + j] = c;", LL(SH), LL(H));
        const char *slot[] = {"ig", "fg", "gg", "og", "cp", "c"};
        for (int k = 0; k < 6; k++) dn_gk_line(G, "        sv[so + %lld + j] = %s;", LL((k + 1) * H), slot[k]);
        break;
    case DN_RNN_GRU:
        dn_gk_line(G, "        float r = " SIG("xg[xo + j] + hg0") ";");
        dn_gk_line(G, "        float z = " SIG("xg[xo + %lld + j] + hg1") ";", LL(H));
        dn_gk_line(G, "        float nn = tanhf(xg[xo + %lld + j] + r * hg2);", LL(2 * H));
        dn_gk_line(G, "        float h = (1.0f - z) * nn + z * hp;");
        const char *gslot[] = {"r", "z", "nn", "hg2"};
        for (int k = 0; k < 4; k++) dn_gk_line(G, "        sv[so + %lld + j] = %s;", LL((k + 1) * H), gslot[k]);
        break;
    }
}

/* The transposed w_hh: G H H floats. */
bool dn_gpu_workspace_rnn_scan(const DnOp *op, DnWorkspaceReq *req)
{
    const DnValue *w = op->in[1];
    req->bytes_b = 4 * w->shape.dim[0] * w->shape.dim[1];
    return true;
}

void dn_gpu_kernel_rnn_scan(DnGpuGen *G)
{
    Scan s = scan_of(G, 0, 1);
    int64_t H = s.H, SH = s.c->state * H, K = s.c->saved, GH = s.c->gates * H;
    int gates = s.c->gates, nin = G->op->nin;
    if (!local_fits(G, &s, 4 * H, "h")) return;
    dn_gk_begin(G, "wt");
    dn_gk_ptr(G, 1, "float", "w");
    dn_gk_ws(G, "float", "wt");
    dn_gk_line(G, "i64 i = GLOBAL_ID;");
    dn_gk_line(G, "if (i >= %lld) return;", LL(GH * H));
    dn_gk_line(G, "wt[(i %% %lld) * %lld + i / %lld] = DN_ROUND_IN(w[i]);", LL(H), LL(GH), LL(H));
    dn_gk_end(G, 0, GH * H, MAX_GROUP);

    dn_gk_begin(G, s.c->name);
    dn_gk_ptr(G, 0, "float", "xg");
    dn_gk_ws(G, "float", "wt");
    dn_gk_ptr(G, 2, "float", "bh");
    dn_gk_ptr(G, 3, "float", "s0");
    if (s.masked) dn_gk_ptr(G, 4, "float", "mask");
    dn_gk_ptr(G, nin, "float", "y");
    dn_gk_ptr(G, nin + 1, "float", "sT");
    dn_gk_ptr(G, nin + 2, "float", "sv");
    steps_param(G, &s);
    dn_gk_line(G, "LOCAL float hl[%lld];", LL(H));
    dn_gk_line(G, "i64 b = GROUP_ID;");
    units_copy(G, &s, "sT", "s0");
    dn_gk_line(G, "for (i64 j = LOCAL_ID; j < %lld; j += %d) hl[j] = s0[b * %lld + j];", LL(H), s.gs, LL(SH));
    dn_gk_line(G, "BARRIER();");
    step_head(G, &s, false);
    dn_gk_line(G, "    for (i64 j = LOCAL_ID; j < %lld; j += %d) {", LL(H), s.gs);
    dn_gk_line(G, "        float hp = hl[j];");
    dn_gk_line(G, "        sv[so + j] = hp;");
    dn_gk_line(G, "        if (!on) {");
    dn_gk_line(G, "            y[yo + j] = 0.0f;");
    dn_gk_line(G, "            for (int k = 1; k < %lld; k++) sv[so + k * %lld + j] = 0.0f;", LL(K), LL(H));
    dn_gk_line(G, "            continue;");
    dn_gk_line(G, "        }");
    for (int g = 0; g < gates; g++) dn_gk_line(G, "        float a%d = 0.0f;", g);
    dn_gk_line(G, "        GLOBAL float *wc = wt + j;");
    dn_gk_line(G, "        for (i64 k = 0; k < %lld; k++, wc += %lld) {", LL(H), LL(GH));
    dn_gk_line(G, "            float hk = DN_ROUND_IN(hl[k]);");
    for (int g = 0; g < gates; g++) dn_gk_line(G, "            a%d += wc[%lld] * hk;", g, LL(g * H));
    dn_gk_line(G, "        }");
    for (int g = 0; g < gates; g++) dn_gk_line(G, "        float hg%d = a%d + bh[%lld + j];", g, g, LL(g * H));
    cell_forward(G, &s);
    dn_gk_line(G, "        sT[b * %lld + j] = h;", LL(SH));
    dn_gk_line(G, "        y[yo + j] = h;");
    dn_gk_line(G, "    }");
    dn_gk_line(G, "    BARRIER();");
    dn_gk_line(G, "    for (i64 j = LOCAL_ID; j < %lld; j += %d) hl[j] = sT[b * %lld + j];", LL(H), s.gs, LL(SH));
    dn_gk_line(G, "    BARRIER();");
    dn_gk_line(G, "}");
    end_scan(G, &s);
}

/* ---- rnn_scan_bwd ------------------------------------------------------------ */

/* Phase 1 for unit j: dh (the carried gradient plus dy) in scope; sets the
 * gate gradients dx0.. (of xg) and dg0.. (of hg) and writes ds0's direct
 * part of dh_prev (and LSTM's dc_prev). */
static void cell_backward(DnGpuGen *G, const Scan *s)
{
    int64_t H = s->H, SH = s->c->state * H;
    switch (s->c->cell) {
    case DN_RNN_TANH:
    case DN_RNN_RELU:
        dn_gk_line(G, "        float h = sv[so + %lld + j];", LL(H));
        if (s->c->cell == DN_RNN_TANH)
            dn_gk_line(G, "        float dx0 = dh * (1.0f - h * h);");
        else
            dn_gk_line(G, "        float dx0 = h > 0.0f ? dh : 0.0f;");
        dn_gk_line(G, "        float dg0 = dx0;");
        dn_gk_line(G, "        ds0[b * %lld + j] = 0.0f;", LL(SH));
        break;
    case DN_RNN_LSTM:
        dn_gk_line(G, "        float ig = sv[so + %lld + j], fg = sv[so + %lld + j];", LL(H), LL(2 * H));
        dn_gk_line(G, "        float gg = sv[so + %lld + j], og = sv[so + %lld + j];", LL(3 * H), LL(4 * H));
        dn_gk_line(G, "        float cp = sv[so + %lld + j], tc = tanhf(sv[so + %lld + j]);", LL(5 * H), LL(6 * H));
        dn_gk_line(G, "        float dc = ds0[b * %lld + %lld + j] + dh * og * (1.0f - tc * tc);", LL(SH), LL(H));
        dn_gk_line(G, "        float dx0 = dc * gg * ig * (1.0f - ig);");
        dn_gk_line(G, "        float dx1 = dc * cp * fg * (1.0f - fg);");
        dn_gk_line(G, "        float dx2 = dc * ig * (1.0f - gg * gg);");
        dn_gk_line(G, "        float dx3 = dh * tc * og * (1.0f - og);");
        dn_gk_line(G, "        float dg0 = dx0, dg1 = dx1, dg2 = dx2, dg3 = dx3;");
        dn_gk_line(G, "        ds0[b * %lld + %lld + j] = dc * fg;", LL(SH), LL(H));
        dn_gk_line(G, "        ds0[b * %lld + j] = 0.0f;", LL(SH));
        break;
    case DN_RNN_GRU:
        dn_gk_line(G, "        float hp = sv[so + j], r = sv[so + %lld + j], z = sv[so + %lld + j];", LL(H), LL(2 * H));
        dn_gk_line(G, "        float nn = sv[so + %lld + j], hn = sv[so + %lld + j];", LL(3 * H), LL(4 * H));
        dn_gk_line(G, "        float dx2 = dh * (1.0f - z) * (1.0f - nn * nn);");
        dn_gk_line(G, "        float dx0 = dx2 * hn * r * (1.0f - r);");
        dn_gk_line(G, "        float dx1 = dh * (hp - nn) * z * (1.0f - z);");
        dn_gk_line(G, "        float dg0 = dx0, dg1 = dx1, dg2 = dx2 * r;");
        dn_gk_line(G, "        ds0[b * %lld + j] = dh * z;", LL(SH));
        break;
    }
}

void dn_gpu_kernel_rnn_scan_bwd(DnGpuGen *G)
{
    Scan s = scan_of(G, 0, 3);
    int64_t H = s.H, SH = s.c->state * H, GH = s.c->gates * H;
    int gates = s.c->gates, nin = G->op->nin;
    if (!local_fits(G, &s, 4 * GH, "the gate gradients")) return;
    dn_gk_begin(G, s.c->name);
    dn_gk_ptr(G, 0, "float", "dy");
    dn_gk_ptr(G, 1, "float", "ds");
    dn_gk_ptr(G, 2, "float", "sv");
    dn_gk_ptr(G, 3, "float", "w");
    if (s.masked) dn_gk_ptr(G, 4, "float", "mask");
    dn_gk_ptr(G, nin, "float", "dxg");
    dn_gk_ptr(G, nin + 1, "float", "dhg");
    dn_gk_ptr(G, nin + 2, "float", "ds0");
    steps_param(G, &s);
    dn_gk_line(G, "LOCAL float gl[%lld];", LL(GH));
    dn_gk_line(G, "i64 b = GROUP_ID;");
    units_copy(G, &s, "ds0", "ds");
    step_head(G, &s, true);
    dn_gk_line(G, "    for (i64 j = LOCAL_ID; j < %lld; j += %d) {", LL(H), s.gs);
    dn_gk_line(G, "        if (!on) {");
    dn_gk_line(G, "            for (int g = 0; g < %d; g++) {", gates);
    dn_gk_line(G, "                dxg[xo + g * %lld + j] = 0.0f;", LL(H));
    dn_gk_line(G, "                dhg[xo + g * %lld + j] = 0.0f;", LL(H));
    dn_gk_line(G, "            }");
    dn_gk_line(G, "            continue;");
    dn_gk_line(G, "        }");
    dn_gk_line(G, "        float dh = ds0[b * %lld + j] + dy[yo + j];", LL(SH));
    cell_backward(G, &s);
    for (int g = 0; g < gates; g++) {
        dn_gk_line(G, "        dxg[xo + %lld + j] = dx%d;", LL(g * H), g);
        dn_gk_line(G, "        dhg[xo + %lld + j] = dg%d;", LL(g * H), g);
        dn_gk_line(G, "        gl[%lld + j] = dg%d;", LL(g * H), g);
    }
    dn_gk_line(G, "    }");
    dn_gk_line(G, "    BARRIER();");
    dn_gk_line(G, "    if (on)");
    dn_gk_line(G, "        for (i64 k = LOCAL_ID; k < %lld; k += %d) {", LL(H), s.gs);
    dn_gk_line(G, "            float acc = 0.0f;");
    dn_gk_line(G,
               "            for (i64 r = 0; r < %lld; r++) acc += DN_ROUND_IN(w[r * %lld + k]) * DN_ROUND_IN(gl[r]);",
               LL(GH), LL(H));
    dn_gk_line(G, "            ds0[b * %lld + k] += acc;", LL(SH));
    dn_gk_line(G, "        }");
    dn_gk_line(G, "    BARRIER();");
    dn_gk_line(G, "}");
    end_scan(G, &s);
}
