/* gpu_kernel_attention.c -- flash_attention and flash_attention_bwd on the
 * GPU (ops.def; the CPU kernels kernel_attention.c are the tiled
 * reference).  Like them, no kernel ever holds the [Tq, Tk] scores: each
 * work item walks the keys of its query row (or the queries of its key
 * row) with the online softmax, its accumulators in private memory.
 *
 *   flash_attention: one work item per (head, query row i): for each key
 *     j (with causal, j <= i) s = scale q_i·k_j + bias; when s exceeds the
 *     running maximum m the sum l and the accumulator are rescaled by
 *     e^(m - s); then p = e^(s - m), l += p, acc += p v_j.  o_i = acc / l,
 *     lse_i = m + log l.
 *   flash_attention_bwd: two kernels, neither writing what the other
 *     reads, no atomics: one work item per (head, key row j) accumulating
 *     dk_j and dv_j over the queries i (causal: i >= j), with
 *     p = e^(s - lse_i), D_i = do_i·o_i, ds = p (do_i·v_j - D_i),
 *     dv_j += p do_i, dk_j += ds q_i; then one per (head, query row i)
 *     accumulating dq_i += ds k_j over its keys.  dq and dk get the scale
 *     at the end.
 * The ops' block_q / block_k attributes set the CPU kernels' tiles; these
 * kernels read every key row from global memory (cached), which is the
 * form a LOCAL-memory tiling would speed up on a real GPU.
 */
#include "gpu_internal.h"

#define LL(v) ((long long)(v))
#define GROUP 64

/* i64 boff = the bias offset of head 'bh' (dn_attention_geom's strides). */
static void bias_offset(DnGpuGen *G, const DnAttnGeom *a)
{
    dn_gk_line(G, "i64 boff = 0, rem = bh;");
    for (int i = a->nlead - 1; i > 0; i--) {
        if (a->b_lead[i]) dn_gk_line(G, "boff += (rem %% %lld) * %lld;", LL(a->lead_dim[i]), LL(a->b_lead[i]));
        dn_gk_line(G, "rem = rem / %lld;", LL(a->lead_dim[i]));
    }
    if (a->nlead > 0 && a->b_lead[0]) dn_gk_line(G, "boff += rem * %lld;", LL(a->b_lead[0]));
}

/* float s = the logit of query row i (at qrow) and key j, given boff. */
static void logit(DnGpuGen *G, const DnAttnGeom *a, const char *qrow)
{
    dn_gk_line(G, "    float s = 0.0f;");
    dn_gk_line(G, "    for (i64 c = 0; c < %lld; c++) s += %s[c] * kh[j * %lld + c];", LL(a->d), qrow, LL(a->d));
    dn_gk_line(G, "    s = s * %s;", dn_gk_float(G, (float)a->scale));
    if (a->bias) dn_gk_line(G, "    s += bias[boff + i * %lld + j * %lld];", LL(a->b_si), LL(a->b_sj));
}

static void end_rows(DnGpuGen *G, const DnAttnGeom *a, int64_t rows)
{
    dn_gk_end(G, a->has_n ? a->lead * rows : 0, a->has_n ? 0 : a->lead * rows, GROUP);
}

/* i64 gid and the head bh, row r of 'rows' rows per head; returns early past the last. */
static void head_and_row(DnGpuGen *G, const DnAttnGeom *a, int64_t rows, const char *r)
{
    dn_gk_line(G, "i64 gid = GLOBAL_ID;");
    dn_gk_line(G, "if (gid >= %s%lld) return;", a->has_n ? "n * " : "", LL(a->lead * rows));
    dn_gk_line(G, "i64 bh = gid / %lld, %s = gid %% %lld;", LL(rows), r, LL(rows));
    dn_gk_line(G, "GLOBAL float *kh = k + bh * %lld;", LL(a->Tk * a->d));
    dn_gk_line(G, "GLOBAL float *vh = v + bh * %lld;", LL(a->Tk * a->dv));
    if (a->bias) bias_offset(G, a);
}

static void operands(DnGpuGen *G, int nin, bool bwd)
{
    dn_gk_ptr(G, 0, "float", "q");
    dn_gk_ptr(G, 1, "float", "k");
    dn_gk_ptr(G, 2, "float", "v");
    if (bwd) {
        dn_gk_ptr(G, 3, "float", "o");
        dn_gk_ptr(G, 4, "float", "lse");
        dn_gk_ptr(G, 5, "float", "dout");
    }
    if (nin > (bwd ? 6 : 3)) dn_gk_ptr(G, bwd ? 6 : 3, "float", "bias");
}

void dn_gpu_kernel_flash_attention(DnGpuGen *G)
{
    DnAttnGeom a = dn_attention_geom(G->op);
    int nin = G->op->nin;
    dn_gk_begin(G, "");
    operands(G, nin, false);
    dn_gk_ptr(G, nin, "float", "y");
    dn_gk_ptr(G, nin + 1, "float", "lse");
    head_and_row(G, &a, a.Tq, "i");
    dn_gk_line(G, "GLOBAL float *qi = q + gid * %lld;", LL(a.d));
    dn_gk_line(G, "float acc[%lld];", LL(a.dv));
    dn_gk_line(G, "for (i64 c = 0; c < %lld; c++) acc[c] = 0.0f;", LL(a.dv));
    dn_gk_line(G, "float m = -F32_INF, l = 0.0f;");
    dn_gk_line(G, "i64 jend = %s;",
               a.causal ? dn_arena_printf(&G->H->cx->arena, "i + 1 < %lld ? i + 1 : %lld", LL(a.Tk), LL(a.Tk))
                        : dn_arena_printf(&G->H->cx->arena, "%lld", LL(a.Tk)));
    dn_gk_line(G, "for (i64 j = 0; j < jend; j++) {");
    logit(G, &a, "qi");
    dn_gk_line(G, "    if (s > m) {");
    dn_gk_line(G, "        float r = expf(m - s);");
    dn_gk_line(G, "        l *= r;");
    dn_gk_line(G, "        for (i64 c = 0; c < %lld; c++) acc[c] *= r;", LL(a.dv));
    dn_gk_line(G, "        m = s;");
    dn_gk_line(G, "    }");
    dn_gk_line(G, "    float p = expf(s - m);");
    dn_gk_line(G, "    l += p;");
    dn_gk_line(G, "    for (i64 c = 0; c < %lld; c++) acc[c] += p * vh[j * %lld + c];", LL(a.dv), LL(a.dv));
    dn_gk_line(G, "}");
    dn_gk_line(G, "for (i64 c = 0; c < %lld; c++) y[gid * %lld + c] = acc[c] / l;", LL(a.dv), LL(a.dv));
    dn_gk_line(G, "lse[gid] = m + logf(l);");
    end_rows(G, &a, a.Tq);
}

/* float D = do_i·o_i and the rows of query i (row index 'row'). */
static void query_row(DnGpuGen *G, const DnAttnGeom *a, const char *row)
{
    dn_gk_line(G, "    GLOBAL float *qi = q + %s * %lld;", row, LL(a->d));
    dn_gk_line(G, "    GLOBAL float *doi = dout + %s * %lld, *oi = o + %s * %lld;", row, LL(a->dv), row, LL(a->dv));
    dn_gk_line(G, "    float D = 0.0f;");
    dn_gk_line(G, "    for (i64 c = 0; c < %lld; c++) D += doi[c] * oi[c];", LL(a->dv));
}

/* p and ds of query i (at row 'row') and key j. */
static void grads(DnGpuGen *G, const DnAttnGeom *a, const char *row)
{
    logit(G, a, "qi");
    dn_gk_line(G, "    float p = expf(s - lse[%s]);", row);
    dn_gk_line(G, "    float dp = 0.0f;");
    dn_gk_line(G, "    for (i64 c = 0; c < %lld; c++) dp += doi[c] * vh[j * %lld + c];", LL(a->dv), LL(a->dv));
    dn_gk_line(G, "    float ds = p * (dp - D);");
}

void dn_gpu_kernel_flash_attention_bwd(DnGpuGen *G)
{
    DnAttnGeom a = dn_attention_geom(G->op);
    int nin = G->op->nin;
    const char *scale = dn_gk_float(G, (float)a.scale);
    /* dk, dv: a work item per key row */
    dn_gk_begin(G, "kv");
    operands(G, nin, true);
    dn_gk_ptr(G, nin + 1, "float", "dk");
    dn_gk_ptr(G, nin + 2, "float", "dv");
    head_and_row(G, &a, a.Tk, "j");
    dn_gk_line(G, "float gk[%lld], gv[%lld];", LL(a.d), LL(a.dv));
    dn_gk_line(G, "for (i64 c = 0; c < %lld; c++) gk[c] = 0.0f;", LL(a.d));
    dn_gk_line(G, "for (i64 c = 0; c < %lld; c++) gv[c] = 0.0f;", LL(a.dv));
    dn_gk_line(G, "for (i64 i = %s; i < %lld; i++) {", a.causal ? "j" : "0", LL(a.Tq));
    dn_gk_line(G, "    i64 row = bh * %lld + i;", LL(a.Tq));
    query_row(G, &a, "row");
    grads(G, &a, "row");
    dn_gk_line(G, "    for (i64 c = 0; c < %lld; c++) gv[c] += p * doi[c];", LL(a.dv));
    dn_gk_line(G, "    for (i64 c = 0; c < %lld; c++) gk[c] += ds * qi[c];", LL(a.d));
    dn_gk_line(G, "}");
    dn_gk_line(G, "for (i64 c = 0; c < %lld; c++) dk[gid * %lld + c] = gk[c] * %s;", LL(a.d), LL(a.d), scale);
    dn_gk_line(G, "for (i64 c = 0; c < %lld; c++) dv[gid * %lld + c] = gv[c];", LL(a.dv), LL(a.dv));
    end_rows(G, &a, a.Tk);
    /* dq: a work item per query row */
    dn_gk_begin(G, "q");
    operands(G, nin, true);
    dn_gk_ptr(G, nin, "float", "dq");
    head_and_row(G, &a, a.Tq, "i");
    query_row(G, &a, "gid");
    dn_gk_line(G, "float gq[%lld];", LL(a.d));
    dn_gk_line(G, "for (i64 c = 0; c < %lld; c++) gq[c] = 0.0f;", LL(a.d));
    dn_gk_line(G, "for (i64 j = 0; j < %s; j++) {",
               a.causal ? dn_arena_printf(&G->H->cx->arena, "(i + 1 < %lld ? i + 1 : %lld)", LL(a.Tk), LL(a.Tk))
                        : dn_arena_printf(&G->H->cx->arena, "%lld", LL(a.Tk)));
    grads(G, &a, "gid");
    dn_gk_line(G, "    for (i64 c = 0; c < %lld; c++) gq[c] += ds * kh[j * %lld + c];", LL(a.d), LL(a.d));
    dn_gk_line(G, "}");
    dn_gk_line(G, "for (i64 c = 0; c < %lld; c++) dq[gid * %lld + c] = gq[c] * %s;", LL(a.d), LL(a.d), scale);
    end_rows(G, &a, a.Tq);
}
