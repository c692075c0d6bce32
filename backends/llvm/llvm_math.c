/* llvm_math.c -- exp, tanh and erf of f32 as inline code that loops
 * vectorize (the C library's expf, tanhf and erff are scalar calls, which
 * dominated the softmax, cross-entropy, recurrent-cell and gelu kernels).
 * dn_call_f32 routes "llvm.exp.f32", "tanhf" and "erff" here, so every
 * kernel gets them.
 *
 * Contract (tests/unit/test_llvm_kernels.c checks it against libm):
 *   exp:  relative error <= 2 ulp over [-87, 88]; results that underflow
 *         are denormal or 0 as the true value rounds; above
 *         ln(FLT_MAX) ~ 88.72 gives +inf, -inf gives 0, NaN gives NaN.
 *   tanh: error <= 2 ulp relative; +-1 beyond |x| ~ 9; NaN gives NaN;
 *         tanh(-x) = -tanh(x) exactly.
 *   erf:  error <= 3 ulp relative; +-1 beyond |x| ~ 3.9; NaN gives NaN;
 *         erf(-x) = -erf(x) exactly.
 * The method is Cephes' expf and tanhf: exp(x) = 2^n exp(r) with
 * n = rint(x log2 e), r = x - n ln 2 in two parts, exp(r) by a degree-6
 * polynomial, and 2^n applied as two exact power-of-two factors (so n in
 * [-150, 128] never leaves the exponent range); tanh by an odd polynomial
 * below |x| = 0.625 and 1 - 2 / (exp(2|x|) + 1) above, with x's sign;
 * erf by x P(x²) below |x| = 1 (degree 6, a least-squares fit of erf(x)/x)
 * and 1 - erfc(|x|) above, erfc(z) = t exp(-z² + Q(t)), t = 1 / (1 + z/2)
 * with Numerical Recipes' degree-9 Q (relative error 1.2e-7), x's sign.
 * No fast-math flags: the results must not depend on them. */
#include "llvm_internal.h"

static LLVMValueRef c32(DnKernel *k, double v) { return dn_f32(k, v); }
static LLVMValueRef fmul(DnKernel *k, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildFMul(k->L->b, a, b, ""); }
static LLVMValueRef fadd(DnKernel *k, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildFAdd(k->L->b, a, b, ""); }
static LLVMValueRef fsub(DnKernel *k, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildFSub(k->L->b, a, b, ""); }

/* An intrinsic of type f32(f32) or f32(f32, f32). */
static LLVMValueRef intrinsic(DnKernel *k, const char *name, LLVMValueRef a, LLVMValueRef b)
{
    LLVMTypeRef args[2] = {k->L->f32, k->L->f32};
    LLVMTypeRef fty = LLVMFunctionType(k->L->f32, args, b ? 2 : 1, 0);
    LLVMValueRef f = LLVMGetNamedFunction(k->L->mod, name);
    if (!f) f = LLVMAddFunction(k->L->mod, name, fty);
    LLVMValueRef v[2] = {a, b};
    return LLVMBuildCall2(k->L->b, fty, f, v, b ? 2 : 1, "");
}

/* p(x) with coefficients c[0] x^(n-1) + ... + c[n-1], by Horner's rule. */
static LLVMValueRef horner(DnKernel *k, LLVMValueRef x, const double *c, int n)
{
    LLVMValueRef y = c32(k, c[0]);
    for (int i = 1; i < n; i++) y = fadd(k, fmul(k, y, x), c32(k, c[i]));
    return y;
}

/* 2^n as an f32, for an i32 n in [-126, 127]. */
static LLVMValueRef pow2(DnKernel *k, LLVMValueRef n)
{
    LLVMBuilderRef b = k->L->b;
    LLVMValueRef bits = LLVMBuildShl(b, LLVMBuildAdd(b, n, dn_i32(k, 127), ""), dn_i32(k, 23), "");
    return LLVMBuildBitCast(b, bits, k->L->f32, "");
}

LLVMValueRef dn_exp_f32(DnKernel *k, LLVMValueRef x)
{
    static const double poly[] = {1.9875691500E-4, 1.3981999507E-3, 8.3334519073E-3,
                                  4.1665795894E-2, 1.6666665459E-1, 5.0000001201E-1};
    LLVMBuilderRef b = k->L->b;
    /* clamp so that n stays in [-150, 129]: beyond, the result is 0 or inf anyway */
    LLVMValueRef lo = c32(k, -104.0), hi = c32(k, 89.0);
    LLVMValueRef xc = LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealOLT, x, lo, ""), lo, x, "");
    xc = LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealOGT, xc, hi, ""), hi, xc, "");
    LLVMValueRef fn = intrinsic(k, "llvm.rint.f32", fmul(k, xc, c32(k, 1.44269504088896341)), NULL);
    LLVMValueRef r = fsub(k, xc, fmul(k, fn, c32(k, 0.693359375)));
    r = fsub(k, r, fmul(k, fn, c32(k, -2.12194440e-4)));
    LLVMValueRef e = fadd(k, fadd(k, fmul(k, horner(k, r, poly, 6), fmul(k, r, r)), r), c32(k, 1.0));
    LLVMValueRef n = LLVMBuildFPToSI(b, fn, k->L->i32, "");
    LLVMValueRef n1 = LLVMBuildAShr(b, n, dn_i32(k, 1), ""); /* n = n1 + n2, each in [-75, 65] */
    LLVMValueRef n2 = LLVMBuildSub(b, n, n1, "");
    LLVMValueRef y = fmul(k, fmul(k, e, pow2(k, n1)), pow2(k, n2));
    return LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealUNO, x, x, ""), x, y, "exp");
}

LLVMValueRef dn_tanh_f32(DnKernel *k, LLVMValueRef x)
{
    static const double poly[] = {-5.70498872745E-3, 2.06390887954E-2, -5.37397155531E-2, 1.33314422036E-1,
                                  -3.33332819422E-1};
    LLVMBuilderRef b = k->L->b;
    LLVMValueRef ax = intrinsic(k, "llvm.fabs.f32", x, NULL);
    LLVMValueRef z = fmul(k, x, x);
    LLVMValueRef small = fadd(k, fmul(k, fmul(k, horner(k, z, poly, 5), z), x), x);
    LLVMValueRef e = dn_exp_f32(k, fadd(k, ax, ax));
    LLVMValueRef big = fsub(k, c32(k, 1.0), LLVMBuildFDiv(b, c32(k, 2.0), fadd(k, e, c32(k, 1.0)), ""));
    big = intrinsic(k, "llvm.copysign.f32", big, x);
    return LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealOLT, ax, c32(k, 0.625), ""), small, big, "tanh");
}

LLVMValueRef dn_erf_f32(DnKernel *k, LLVMValueRef x)
{
    static const double inner[] = {7.898115165790795e-05, -0.0008024327532043518, 0.005190050793702439,
                                   -0.026854807194047342, 0.11283612398728704,    -0.37612628840860063,
                                   1.128379166509613};
    static const double outer[] = {0.17087277,  -0.82215223, 1.48851587, -1.13520398, 0.27886807,
                                   -0.18628806, 0.09678418,  0.37409196, 1.00002368,  -1.26551223};
    LLVMBuilderRef b = k->L->b;
    LLVMValueRef z = intrinsic(k, "llvm.fabs.f32", x, NULL);
    LLVMValueRef small = fmul(k, horner(k, fmul(k, z, z), inner, 7), z);
    LLVMValueRef t = LLVMBuildFDiv(b, c32(k, 1.0), fadd(k, c32(k, 1.0), fmul(k, c32(k, 0.5), z)), "");
    LLVMValueRef erfc = fmul(k, t, dn_exp_f32(k, fsub(k, horner(k, t, outer, 10), fmul(k, z, z))));
    LLVMValueRef big = fsub(k, c32(k, 1.0), erfc);
    LLVMValueRef y = LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealOLT, z, c32(k, 1.0), ""), small, big, "");
    /* copysign keeps NaN a NaN (|NaN| takes the big path: 1 - t exp(...) with t NaN) */
    return intrinsic(k, "llvm.copysign.f32", y, x);
}
