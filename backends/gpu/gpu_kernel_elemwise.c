/* gpu_kernel_elemwise.c -- pointwise ops on the GPU: add, sub, mul, div
 * (numpy broadcasting of both operands to the result, N included), scale,
 * relu, tanh, sigmoid and their backwards, copy and reshape (nothing when
 * the plan puts the result where its operand is), fill.  One work item per
 * result element; a result that the memory plan made a strided view
 * (DN_OPF_STRIDED_OUT: a concat operand written in place) is written at
 * its item stride.
 */
#include "gpu_internal.h"

/* y[i] = expr, where the body sees a = x0[ia] and (binary) b = x1[ib]. */
static void pointwise(DnGpuGen *G, const char *expr)
{
    const DnOp *op = G->op;
    const DnValue *y = op->out[0];
    int nin = op->nin;
    dn_gk_begin(G, "");
    dn_gk_ptr(G, 0, NULL, "x0");
    if (nin > 1) dn_gk_ptr(G, 1, NULL, "x1");
    dn_gk_ptr(G, nin, NULL, "y");
    dn_gk_line(G, "i64 i = GLOBAL_ID;");
    dn_gk_line(G, "if (i >= %s) return;", dn_gk_count(G, y));
    dn_gk_bcast_index(G, op->in[0], y, "i", "ia");
    if (nin > 1) dn_gk_bcast_index(G, op->in[1], y, "i", "ib");
    dn_gk_line(G, "float a = x0[ia];");
    if (nin > 1) dn_gk_line(G, "float b = x1[ib];");
    int64_t per = dn_gk_numel(y), item = dn_gk_has_n(y) ? dn_plan_item_stride(G->l->plan, y) / 4 : per;
    if (item != per)
        dn_gk_line(G, "y[(i / %lld) * %lld + i %% %lld] = %s;", (long long)per, (long long)item, (long long)per, expr);
    else
        dn_gk_line(G, "y[i] = %s;", expr);
    int64_t in, ib;
    dn_gk_items(y, &in, &ib);
    dn_gk_end(G, in, ib, 256);
}

void dn_gpu_kernel_add(DnGpuGen *G) { pointwise(G, "a + b"); }
void dn_gpu_kernel_sub(DnGpuGen *G) { pointwise(G, "a - b"); }
void dn_gpu_kernel_mul(DnGpuGen *G) { pointwise(G, "a * b"); }
void dn_gpu_kernel_div(DnGpuGen *G) { pointwise(G, "a / b"); }
void dn_gpu_kernel_relu(DnGpuGen *G) { pointwise(G, "a < 0.0f ? 0.0f : a"); } /* NaN stays NaN, as on the CPU */
void dn_gpu_kernel_tanh(DnGpuGen *G) { pointwise(G, "tanhf(a)"); }
void dn_gpu_kernel_sigmoid(DnGpuGen *G) { pointwise(G, "1.0f / (1.0f + expf(-a))"); }
/* backwards: a = y (the forward's result), b = dy */
void dn_gpu_kernel_relu_bwd(DnGpuGen *G) { pointwise(G, "a > 0.0f ? b : 0.0f"); }
void dn_gpu_kernel_tanh_bwd(DnGpuGen *G) { pointwise(G, "b * (1.0f - a * a)"); }
void dn_gpu_kernel_sigmoid_bwd(DnGpuGen *G) { pointwise(G, "b * a * (1.0f - a)"); }

void dn_gpu_kernel_scale(DnGpuGen *G)
{
    char expr[96];
    snprintf(expr, sizeof expr, "%s * a", dn_gk_float(G, dn_op_float(G->op, "alpha")));
    pointwise(G, expr);
}

/* y = x byte for byte, as 32-bit words (every dtype's size is a multiple). */
static void move_words(DnGpuGen *G)
{
    if (dn_gk_same_place(G, 0, 1)) return;
    const DnValue *y = G->op->out[0];
    int words = dn_dtype_size(y->dtype) / 4;
    dn_gk_begin(G, "");
    dn_gk_ptr(G, 0, "u32", "x");
    dn_gk_ptr(G, 1, "u32", "y");
    dn_gk_line(G, "i64 i = GLOBAL_ID;");
    dn_gk_line(G, "if (i >= %s * %d) return;", dn_gk_count(G, y), words);
    dn_gk_line(G, "y[i] = x[i];");
    int64_t in, ib;
    dn_gk_items(y, &in, &ib);
    dn_gk_end(G, in * words, ib * words, 256);
}

void dn_gpu_kernel_reshape(DnGpuGen *G) { move_words(G); }
void dn_gpu_kernel_copy(DnGpuGen *G) { move_words(G); }

void dn_gpu_kernel_fill(DnGpuGen *G)
{
    const DnValue *y = G->op->out[0];
    dn_gk_begin(G, "");
    dn_gk_ptr(G, 0, NULL, "y");
    dn_gk_line(G, "i64 i = GLOBAL_ID;");
    dn_gk_line(G, "if (i < %s) y[i] = %s;", dn_gk_count(G, y), dn_gk_float(G, dn_op_float(G->op, "value")));
    int64_t in, ib;
    dn_gk_items(y, &in, &ib);
    dn_gk_end(G, in, ib, 256);
}
