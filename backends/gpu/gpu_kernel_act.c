/* gpu_kernel_act.c -- the activations leaky_relu, elu, gelu and their
 * backwards on the GPU (ops.def).  One work item per element; operands
 * have the result's exact shape, so every array is indexed flat.  The
 * formulas are the CPU kernels' (backends/llvm/kernel_act.c): the
 * backwards see x (the forward's input) and dy.
 */
#include "gpu_internal.h"

/* y[i] = expr, where the body sees x = x0[i] and (backwards) dy = x1[i],
 * the float constant c0 (an attribute; 0 when unused) and, when 'pre' is
 * not NULL, float t = pre. */
static void pointwise(DnGpuGen *G, const char *pre, const char *expr, float c0)
{
    const DnOp *op = G->op;
    const DnValue *y = op->out[0];
    int nin = op->nin;
    dn_gk_begin(G, "");
    dn_gk_ptr(G, 0, "float", "x0");
    if (nin > 1) dn_gk_ptr(G, 1, "float", "x1");
    dn_gk_ptr(G, nin, "float", "y");
    dn_gk_line(G, "i64 i = GLOBAL_ID;");
    dn_gk_line(G, "if (i >= %s) return;", dn_gk_count(G, y));
    dn_gk_line(G, "float x = x0[i];");
    if (nin > 1) dn_gk_line(G, "float dy = x1[i];");
    dn_gk_line(G, "float c0 = %s;", dn_gk_float(G, c0));
    if (pre) dn_gk_line(G, "float t = %s;", pre);
    dn_gk_line(G, "y[i] = %s;", expr);
    int64_t in, ib;
    dn_gk_items(y, &in, &ib);
    dn_gk_end(G, in, ib, 256);
}

static bool is_tanh(DnGpuGen *G) { return !strcmp(dn_op_str(G->op, "approximate"), "tanh"); }

/* tanh(sqrt(2/pi) (x + kappa x^3)); below, 1/sqrt 2, 1/sqrt(2 pi) and 3 kappa */
#define GELU_T "tanhf(0.7978845608028654f * (x + 0.044715f * x * x * x))"

void dn_gpu_kernel_leaky_relu(DnGpuGen *G)
{
    pointwise(G, NULL, "x < 0.0f ? x * c0 : x", (float)dn_op_float(G->op, "negative_slope"));
}

void dn_gpu_kernel_leaky_relu_bwd(DnGpuGen *G)
{
    pointwise(G, NULL, "x > 0.0f ? dy : dy * c0", (float)dn_op_float(G->op, "negative_slope"));
}

void dn_gpu_kernel_elu(DnGpuGen *G)
{
    pointwise(G, NULL, "x > 0.0f ? x : c0 * expm1f(x)", (float)dn_op_float(G->op, "alpha"));
}

void dn_gpu_kernel_elu_bwd(DnGpuGen *G)
{
    pointwise(G, NULL, "x > 0.0f ? dy : dy * (c0 * expf(x))", (float)dn_op_float(G->op, "alpha"));
}

void dn_gpu_kernel_gelu(DnGpuGen *G)
{
    if (is_tanh(G))
        pointwise(G, GELU_T, "x * 0.5f * (1.0f + t)", 0);
    else
        pointwise(G, "erff(x * 0.7071067811865476f)", "x * 0.5f * (1.0f + t)", 0);
}

void dn_gpu_kernel_gelu_bwd(DnGpuGen *G)
{
    if (is_tanh(G))
        pointwise(G, GELU_T,
                  "dy * (0.5f * (1.0f + t) + x * 0.5f * (1.0f - t * t) * (0.7978845608028654f * (1.0f + 0.134145f * x "
                  "* x)))",
                  0);
    else
        pointwise(G, NULL,
                  "dy * (0.5f * (1.0f + erff(x * 0.7071067811865476f)) + x * (0.3989422804014327f * expf(x * x * "
                  "-0.5f)))",
                  0);
}
