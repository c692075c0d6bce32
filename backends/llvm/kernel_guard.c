/* kernel_guard.c -- the kernel of check_finite (ops.def), the guard the
 * training pass puts before the optimizer updates.
 *
 * Serial: one pass over each checked tensor reading its elements as
 * integers, acc = umax(acc, bits & 0x7fffffff), which the loop vectorizer
 * turns into a vector max reduction; the tensor holds a NaN or an
 * infinity exactly when acc >= 0x7f800000 (all exponent bits set).  No
 * floating-point compare, so no fast-math flag can fold the test away, and
 * the result does not depend on the thread count.  The host (host_entry.c)
 * reads the result after the call and stops the step when it is non-zero.
 */
#include "llvm_internal.h"

#define ABS_MASK 0x7fffffff /* clears the sign bit */
#define EXP_ALL  0x7f800000 /* infinity; anything above is a NaN */

/* Whether f32 tensor 'x' (base pointer 'p') holds a non-finite element, as i1. */
static LLVMValueRef has_nonfinite(DnKernel *k, const DnValue *x, LLVMValueRef p)
{
    LLVMBuilderRef b = k->L->b;
    LLVMTypeRef i32 = k->L->i32;
    LLVMValueRef acc = dn_var(k, i32, dn_i32(k, 0), "acc");
    DnLoop l = dn_loop_begin(k, dn_i64(k, 0), dn_numel(k, x), "i");
    LLVMValueRef bits = LLVMBuildAnd(b, dn_load_i32(k, p, l.i), dn_i32(k, ABS_MASK), "abs");
    LLVMValueRef cur = dn_get(k, acc, i32);
    dn_set(k, acc, LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntUGT, bits, cur, ""), bits, cur, "max"));
    dn_loop_end(k, &l);
    return LLVMBuildICmp(b, LLVMIntUGE, dn_get(k, acc, i32), dn_i32(k, EXP_ALL), "bad");
}

/* y = flag != 0 ? flag : codes[first j with a non-finite x_j], else 0. */
void dn_kernel_check_finite(DnKernel *k)
{
    LLVMBuilderRef b = k->L->b;
    int nc;
    const int64_t *codes = dn_op_ints(k->op, "codes", &nc);
    LLVMValueRef bad[DN_KERNEL_MAX_IN];
    for (int j = 0; j < nc; j++) bad[j] = has_nonfinite(k, k->op->in[j], k->in[j]);
    LLVMValueRef y = dn_i32(k, 0);
    for (int j = nc - 1; j >= 0; j--) y = LLVMBuildSelect(b, bad[j], dn_i32(k, (int32_t)codes[j]), y, "");
    if (k->op->nin > nc) {
        LLVMValueRef prev = dn_load_i32(k, k->in[nc], dn_i64(k, 0));
        y = LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntNE, prev, dn_i32(k, 0), ""), prev, y, "flag");
    }
    LLVMValueRef st = LLVMBuildStore(b, y, k->out[0]);
    LLVMSetAlignment(st, 4);
    k->par_n = 0;
    k->par_b = 1;
}
