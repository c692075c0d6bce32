/* kernel_act.c -- CPU kernels of the activations leaky_relu, elu, gelu and
 * their backwards leaky_relu_bwd, elu_bwd, gelu_bwd (ops.def).
 *
 * Every one is pointwise over operands of the result's exact shape (the
 * shape rules require it): one flat loop over all elements, parallel over
 * them.  The backwards read the forward's input x and dy.  erf and tanh
 * are llvm_math.c's inline ones (through dn_call_f32), expm1 the C
 * library's expm1f.
 */
#include <math.h>

#include "llvm_internal.h"

typedef LLVMValueRef (*ActFn)(DnKernel *k, LLVMValueRef x, LLVMValueRef dy);

/* out[i] = f(in0[i], in1[i]) (in1 only for the backwards) over this call's range. */
static void pointwise(DnKernel *k, ActFn f)
{
    const DnValue *y = k->op->out[0];
    int64_t s = dn_shape_numel_static(&y->shape);
    k->par_n = dn_shape_has_n(&y->shape) ? s : 0;
    k->par_b = dn_shape_has_n(&y->shape) ? 0 : s;
    DnLoop l = dn_loop_begin(k, k->begin, k->end, "i");
    LLVMValueRef x = dn_load_f32(k, k->in[0], l.i);
    LLVMValueRef dy = k->op->nin > 1 ? dn_load_f32(k, k->in[1], l.i) : NULL;
    dn_store_f32(k, k->out[0], l.i, f(k, x, dy));
    dn_loop_end(k, &l);
}

static LLVMValueRef fmul(DnKernel *k, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildFMul(k->L->b, a, b, ""); }
static LLVMValueRef fadd(DnKernel *k, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildFAdd(k->L->b, a, b, ""); }
static LLVMValueRef fconst(DnKernel *k, double v) { return dn_f32(k, v); }
static LLVMValueRef attr(DnKernel *k, const char *name) { return dn_f32(k, dn_op_float(k->op, name)); }
static bool is_tanh(DnKernel *k) { return !strcmp(dn_op_str(k->op, "approximate"), "tanh"); }

/* x < 0 ? slope x : x  (NaN: not < 0, kept) */
static LLVMValueRef leaky_relu(DnKernel *k, LLVMValueRef x, LLVMValueRef dy)
{
    (void)dy;
    LLVMValueRef neg = LLVMBuildFCmp(k->L->b, LLVMRealOLT, x, fconst(k, 0), "");
    return LLVMBuildSelect(k->L->b, neg, fmul(k, x, attr(k, "negative_slope")), x, "");
}

static LLVMValueRef leaky_relu_bwd(DnKernel *k, LLVMValueRef x, LLVMValueRef dy)
{
    LLVMValueRef pos = LLVMBuildFCmp(k->L->b, LLVMRealOGT, x, fconst(k, 0), "");
    return LLVMBuildSelect(k->L->b, pos, dy, fmul(k, dy, attr(k, "negative_slope")), "");
}

/* x > 0 ? x : alpha expm1(x)  (NaN: expm1(NaN) = NaN) */
static LLVMValueRef elu(DnKernel *k, LLVMValueRef x, LLVMValueRef dy)
{
    (void)dy;
    LLVMValueRef pos = LLVMBuildFCmp(k->L->b, LLVMRealOGT, x, fconst(k, 0), "");
    LLVMValueRef neg = fmul(k, attr(k, "alpha"), dn_call_f32(k, "expm1f", x));
    return LLVMBuildSelect(k->L->b, pos, x, neg, "");
}

static LLVMValueRef elu_bwd(DnKernel *k, LLVMValueRef x, LLVMValueRef dy)
{
    LLVMValueRef pos = LLVMBuildFCmp(k->L->b, LLVMRealOGT, x, fconst(k, 0), "");
    LLVMValueRef neg = fmul(k, dy, fmul(k, attr(k, "alpha"), dn_call_f32(k, "llvm.exp.f32", x)));
    return LLVMBuildSelect(k->L->b, pos, dy, neg, "");
}

#define SQRT1_2     0.70710678118654752440 /* 1 / sqrt 2 */
#define INV_SQRT2PI 0.39894228040143267794 /* 1 / sqrt(2 pi) */
#define SQRT_2_PI   0.79788456080286535588 /* sqrt(2 / pi) */
#define GELU_KAPPA  0.044715

/* tanh(sqrt(2/pi) (x + kappa x^3)) */
static LLVMValueRef gelu_tanh_inner(DnKernel *k, LLVMValueRef x)
{
    LLVMValueRef x3 = fmul(k, fmul(k, x, x), x);
    LLVMValueRef inner = fmul(k, fconst(k, SQRT_2_PI), fadd(k, x, fmul(k, fconst(k, GELU_KAPPA), x3)));
    return dn_call_f32(k, "tanhf", inner);
}

static LLVMValueRef gelu(DnKernel *k, LLVMValueRef x, LLVMValueRef dy)
{
    (void)dy;
    LLVMValueRef half_x = fmul(k, x, fconst(k, 0.5));
    LLVMValueRef t = is_tanh(k) ? gelu_tanh_inner(k, x) : dn_call_f32(k, "erff", fmul(k, x, fconst(k, SQRT1_2)));
    return fmul(k, half_x, fadd(k, fconst(k, 1), t));
}

static LLVMValueRef gelu_bwd(DnKernel *k, LLVMValueRef x, LLVMValueRef dy)
{
    LLVMBuilderRef b = k->L->b;
    LLVMValueRef x2 = fmul(k, x, x), d;
    if (is_tanh(k)) {
        LLVMValueRef t = gelu_tanh_inner(k, x);
        LLVMValueRef left = fmul(k, fconst(k, 0.5), fadd(k, fconst(k, 1), t));
        LLVMValueRef sech2 = LLVMBuildFSub(b, fconst(k, 1), fmul(k, t, t), "");
        LLVMValueRef slope =
            fmul(k, fconst(k, SQRT_2_PI), fadd(k, fconst(k, 1), fmul(k, fconst(k, 3 * GELU_KAPPA), x2)));
        d = fadd(k, left, fmul(k, fmul(k, fmul(k, x, fconst(k, 0.5)), sech2), slope));
    } else {
        LLVMValueRef cdf =
            fmul(k, fconst(k, 0.5), fadd(k, fconst(k, 1), dn_call_f32(k, "erff", fmul(k, x, fconst(k, SQRT1_2)))));
        LLVMValueRef pdf =
            fmul(k, fconst(k, INV_SQRT2PI), dn_call_f32(k, "llvm.exp.f32", fmul(k, x2, fconst(k, -0.5))));
        d = fadd(k, cdf, fmul(k, x, pdf));
    }
    return fmul(k, dy, d);
}

void dn_kernel_leaky_relu(DnKernel *k) { pointwise(k, leaky_relu); }
void dn_kernel_elu(DnKernel *k) { pointwise(k, elu); }
void dn_kernel_gelu(DnKernel *k) { pointwise(k, gelu); }
void dn_kernel_leaky_relu_bwd(DnKernel *k) { pointwise(k, leaky_relu_bwd); }
void dn_kernel_elu_bwd(DnKernel *k) { pointwise(k, elu_bwd); }
void dn_kernel_gelu_bwd(DnKernel *k) { pointwise(k, gelu_bwd); }
