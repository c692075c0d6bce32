/* gpu_kernel_layernorm.c -- layernorm, layernorm_bwd and
 * layernorm_bwd_params on the GPU (ops.def), the same sums in the same
 * order as the CPU kernels (kernel_layernorm.c).
 *
 * The input is viewed as [rows, D] (the last 'dims' axes a row).
 * layernorm and layernorm_bwd: one work item per row, walking its D
 * elements three times (mean, variance, result; the backward: the sums of
 * g and g * xh, then dx).  layernorm_bwd_params: one work item per column,
 * summing over the rows in order.  Adjacent items touch elements D apart,
 * which is fine for the row widths of these models; a group per row with a
 * tree reduction is the form for wide rows.
 */
#include "gpu_internal.h"

#define LL(v) ((long long)(v))
#define GROUP 64

typedef DnRows Rows;

static Rows rows_of(const DnOp *op) { return dn_shape_rows(&op->in[0]->shape, (int)dn_op_int(op, "dims")); }

static const char *row_count(DnGpuGen *G, const Rows *r)
{
    return dn_arena_printf(&G->H->cx->arena, r->has_n ? "(n * %lld)" : "%lld", LL(r->lead));
}

static void end_rows(DnGpuGen *G, const Rows *r)
{
    dn_gk_end(G, r->has_n ? r->lead : 0, r->has_n ? 0 : r->lead, GROUP);
}

void dn_gpu_kernel_layernorm(DnGpuGen *G)
{
    Rows r = rows_of(G->op);
    bool affine = G->op->nin == 3;
    int out = G->op->nin;
    dn_gk_begin(G, "");
    dn_gk_ptr(G, 0, "float", "x");
    if (affine) dn_gk_ptr(G, 1, "float", "w"), dn_gk_ptr(G, 2, "float", "bias");
    dn_gk_ptr(G, out, "float", "y");
    dn_gk_ptr(G, out + 1, "float", "st");
    dn_gk_line(G, "i64 row = GLOBAL_ID;");
    dn_gk_line(G, "if (row >= %s) return;", row_count(G, &r));
    dn_gk_line(G, "GLOBAL float *xr = x + row * %lld;", LL(r.D));
    dn_gk_line(G, "float s = 0.0f;");
    dn_gk_line(G, "for (i64 j = 0; j < %lld; j++) s += xr[j];", LL(r.D));
    dn_gk_line(G, "float mean = s * %s;", dn_gk_float(G, (float)(1.0 / (double)r.D)));
    dn_gk_line(G, "float q = 0.0f;");
    dn_gk_line(G, "for (i64 j = 0; j < %lld; j++) { float d = xr[j] - mean; q += d * d; }", LL(r.D));
    dn_gk_line(G, "float rstd = 1.0f / sqrtf(q * %s + %s);", dn_gk_float(G, (float)(1.0 / (double)r.D)),
               dn_gk_float(G, (float)dn_op_float(G->op, "eps")));
    dn_gk_line(G, "st[row * 2] = mean;");
    dn_gk_line(G, "st[row * 2 + 1] = rstd;");
    dn_gk_line(G, "for (i64 j = 0; j < %lld; j++) {", LL(r.D));
    dn_gk_line(G, "    float v = (xr[j] - mean) * rstd;");
    if (affine) dn_gk_line(G, "    v = v * w[j] + bias[j];");
    dn_gk_line(G, "    y[row * %lld + j] = v;", LL(r.D));
    dn_gk_line(G, "}");
    end_rows(G, &r);
}

void dn_gpu_kernel_layernorm_bwd(DnGpuGen *G)
{
    Rows r = rows_of(G->op);
    bool affine = G->op->nin > 3;
    const char *inv = dn_gk_float(G, (float)(1.0 / (double)r.D));
    dn_gk_begin(G, "");
    dn_gk_ptr(G, 0, "float", "x");
    dn_gk_ptr(G, 1, "float", "st");
    dn_gk_ptr(G, 2, "float", "dy");
    if (affine) dn_gk_ptr(G, 3, "float", "w");
    dn_gk_ptr(G, G->op->nin, "float", "dx");
    dn_gk_line(G, "i64 row = GLOBAL_ID;");
    dn_gk_line(G, "if (row >= %s) return;", row_count(G, &r));
    dn_gk_line(G, "i64 o = row * %lld;", LL(r.D));
    dn_gk_line(G, "float mean = st[row * 2], rstd = st[row * 2 + 1];");
    dn_gk_line(G, "float sg = 0.0f, sgx = 0.0f;");
    dn_gk_line(G, "for (i64 j = 0; j < %lld; j++) {", LL(r.D));
    dn_gk_line(G, "    float g = dy[o + j]%s;", affine ? " * w[j]" : "");
    dn_gk_line(G, "    sg += g;");
    dn_gk_line(G, "    sgx += g * ((x[o + j] - mean) * rstd);");
    dn_gk_line(G, "}");
    dn_gk_line(G, "float mg = sg * %s, mgx = sgx * %s;", inv, inv);
    dn_gk_line(G, "for (i64 j = 0; j < %lld; j++) {", LL(r.D));
    dn_gk_line(G, "    float g = dy[o + j]%s;", affine ? " * w[j]" : "");
    dn_gk_line(G, "    dx[o + j] = rstd * (g - mg - ((x[o + j] - mean) * rstd) * mgx);");
    dn_gk_line(G, "}");
    end_rows(G, &r);
}

void dn_gpu_kernel_layernorm_bwd_params(DnGpuGen *G)
{
    Rows r = rows_of(G->op);
    dn_gk_begin(G, "");
    dn_gk_ptr(G, 0, "float", "x");
    dn_gk_ptr(G, 1, "float", "st");
    dn_gk_ptr(G, 2, "float", "dy");
    dn_gk_ptr(G, 3, "float", "dw");
    dn_gk_ptr(G, 4, "float", "db");
    dn_gk_line(G, "i64 j = GLOBAL_ID;");
    dn_gk_line(G, "if (j >= %lld) return;", LL(r.D));
    dn_gk_line(G, "float sw = 0.0f, sb = 0.0f;");
    dn_gk_line(G, "for (i64 row = 0; row < %s; row++) {", row_count(G, &r));
    dn_gk_line(G, "    float d = dy[row * %lld + j];", LL(r.D));
    dn_gk_line(G, "    sw += d * ((x[row * %lld + j] - st[row * 2]) * st[row * 2 + 1]);", LL(r.D));
    dn_gk_line(G, "    sb += d;");
    dn_gk_line(G, "}");
    dn_gk_line(G, "dw[j] = sw;");
    dn_gk_line(G, "db[j] = sb;");
    dn_gk_end(G, 0, r.D, GROUP);
}
