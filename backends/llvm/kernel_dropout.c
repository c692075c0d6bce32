/* kernel_dropout.c -- kernels of dropout and dropout_bwd (ops.def).
 *
 * The mask is never stored: both kernels regenerate it from Philox 4x32-10
 * computed inline in LLVM IR (the same function as the runtime's
 * dnrt_philox4x32, checked by tests/unit/test_training.c), keyed by the
 * session seed, with counter {i lo, i hi, step lo, salt} for flat element i.
 * keep = r * 2^-32 >= p, evaluated exactly as the integer test
 * r >= ceil(p * 2^32).  Parallel over elements.  The Philox generator
 * itself (dn_llvm_philox) is shared with the augmentations
 * (kernel_augment.c).
 */
#include <math.h>

#include "llvm_internal.h"

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

static LLVMValueRef u32(DnKernel *k, uint32_t v) { return LLVMConstInt(k->L->i32, v, 0); }

/* 32x32 -> 64 product of constant 'm' and 'x': *hi and *lo. */
static void mulhilo(DnKernel *k, uint32_t m, LLVMValueRef x, LLVMValueRef *hi, LLVMValueRef *lo)
{
    LLVMBuilderRef b = k->L->b;
    LLVMValueRef p = LLVMBuildMul(b, LLVMConstInt(k->L->i64, m, 0), LLVMBuildZExt(b, x, k->L->i64, ""), "");
    *lo = LLVMBuildTrunc(b, p, k->L->i32, "");
    *hi = LLVMBuildTrunc(b, LLVMBuildLShr(b, p, LLVMConstInt(k->L->i64, 32, 0), ""), k->L->i32, "");
}

void dn_llvm_philox(DnKernel *k, LLVMValueRef key[2], LLVMValueRef ctr[4], LLVMValueRef out[4])
{
    LLVMBuilderRef b = k->L->b;
    LLVMValueRef x[4] = {ctr[0], ctr[1], ctr[2], ctr[3]}, k0 = key[0], k1 = key[1];
    for (int r = 0; r < 10; r++) {
        if (r > 0) {
            k0 = LLVMBuildAdd(b, k0, u32(k, PHILOX_W0), "");
            k1 = LLVMBuildAdd(b, k1, u32(k, PHILOX_W1), "");
        }
        LLVMValueRef hi0, lo0, hi1, lo1;
        mulhilo(k, PHILOX_M0, x[0], &hi0, &lo0);
        mulhilo(k, PHILOX_M1, x[2], &hi1, &lo1);
        LLVMValueRef y0 = LLVMBuildXor(b, LLVMBuildXor(b, hi1, x[1], ""), k0, "");
        LLVMValueRef y2 = LLVMBuildXor(b, LLVMBuildXor(b, hi0, x[3], ""), k1, "");
        x[0] = y0, x[1] = lo1, x[2] = y2, x[3] = lo0;
    }
    for (int i = 0; i < 4; i++) out[i] = x[i];
}

void dn_llvm_philox_key(DnKernel *k, LLVMValueRef key[2])
{
    LLVMBuilderRef b = k->L->b;
    LLVMValueRef seed = dn_call_field(k, DN_CALL_SEED);
    key[0] = LLVMBuildTrunc(b, seed, k->L->i32, "seed.lo");
    key[1] = LLVMBuildTrunc(b, LLVMBuildLShr(b, seed, dn_i64(k, 32), ""), k->L->i32, "seed.hi");
}

/* Word 0 of Philox4x32-10(key, ctr); key and ctr are i32 values. */
static LLVMValueRef philox_word0(DnKernel *k, LLVMValueRef key[2], LLVMValueRef ctr[4])
{
    LLVMValueRef out[4];
    dn_llvm_philox(k, key, ctr, out);
    return out[0];
}

/* out[i] = keep(i) ? in[i] / (1 - p) : 0 over this call's range. */
static void masked_scale(DnKernel *k)
{
    LLVMBuilderRef b = k->L->b;
    const DnValue *v = k->op->out[0];
    double p = dn_op_float(k->op, "p");
    uint32_t salt = (uint32_t)dn_op_int(k->op, "salt");
    int64_t s = dn_shape_numel_static(&v->shape);
    k->par_n = dn_shape_has_n(&v->shape) ? s : 0;
    k->par_b = dn_shape_has_n(&v->shape) ? 0 : s;
    double thr_d = ceil(p * 4294967296.0); /* keep when r >= thr (0 <= thr <= 2^32) */
    int64_t thr = thr_d < 0 ? 0 : thr_d > 4294967296.0 ? 4294967296LL : (int64_t)thr_d;
    LLVMValueRef step = dn_call_field(k, DN_CALL_STEP), key[2];
    dn_llvm_philox_key(k, key);
    LLVMValueRef step_lo = LLVMBuildTrunc(b, step, k->L->i32, "step.lo");
    LLVMValueRef scale = dn_f32(k, 1.0 - p);
    DnLoop l = dn_loop_begin(k, k->begin, k->end, "i");
    LLVMValueRef ctr[4] = {LLVMBuildTrunc(b, l.i, k->L->i32, ""),
                           LLVMBuildTrunc(b, LLVMBuildLShr(b, l.i, dn_i64(k, 32), ""), k->L->i32, ""), step_lo,
                           u32(k, salt)};
    LLVMValueRef r = LLVMBuildZExt(b, philox_word0(k, key, ctr), k->L->i64, "r");
    LLVMValueRef keep = LLVMBuildICmp(b, LLVMIntUGE, r, dn_i64(k, thr), "keep");
    LLVMValueRef y = LLVMBuildFDiv(b, dn_load_f32(k, k->in[0], l.i), scale, "");
    dn_store_f32(k, k->out[0], l.i, LLVMBuildSelect(b, keep, y, dn_f32(k, 0), ""));
    dn_loop_end(k, &l);
}

void dn_kernel_dropout(DnKernel *k) { masked_scale(k); }
void dn_kernel_dropout_bwd(DnKernel *k) { masked_scale(k); }
