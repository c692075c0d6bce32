/* kernel_cached_attention.c -- the CPU kernel of cached_attention
 * (ops.def): one decoding step of multi-head self-attention over the KV
 * cache that the session keeps.
 *
 * Parallel over (batch row b, head h): the iteration writes its head's
 * features of this step's k and v into row pos[b] of the caches (no two
 * iterations write the same element), then attends q over the cache rows
 * 0..pos[b] in three passes over those rows -- the maximum score, then the
 * exponentials summed and v accumulated into o, then o / sum -- so a step
 * at position t reads 3 (t + 1) E / heads cache elements per head and
 * nothing else of the cache.  A pos outside [0, S) (which the runtime
 * refuses at a model input) writes nothing and gives o = 0.
 */
#include <math.h>

#include "llvm_internal.h"

/* sum_f q[qb + f] * kc[kb + f] over the head's dh features, times scale */
static LLVMValueRef score(DnKernel *k, LLVMValueRef qb, LLVMValueRef kb, int64_t dh, double scale)
{
    LLVMValueRef acc = dn_var(k, k->L->f32, dn_f32(k, 0), "dot");
    DnLoop lf = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, dh), "f");
    LLVMValueRef q = dn_load_f32(k, k->in[0], dn_add(k, qb, lf.i)), c = dn_load_f32(k, k->in[3], dn_add(k, kb, lf.i));
    dn_set(k, acc, dn_fma(k, q, c, dn_get(k, acc, k->L->f32)));
    dn_loop_end(k, &lf);
    return dn_fmul(k, dn_get(k, acc, k->L->f32), dn_f32(k, scale));
}

void dn_kernel_cached_attention(DnKernel *k)
{
    const DnValue *q = k->op->in[0], *cache = k->op->in[3];
    int64_t B = q->shape.dim[0], E = q->shape.dim[2], S = cache->shape.dim[1];
    int64_t H = dn_op_int(k->op, "heads"), dh = E / H;
    double scale = dn_op_float(k->op, "scale");
    k->par_n = 0;
    k->par_b = B * H;
    LLVMBuilderRef b = k->L->b;
    LLVMTypeRef f32 = k->L->f32;
    DnLoop it = dn_loop_begin(k, k->begin, k->end, "it");
    LLVMValueRef row = LLVMBuildSDiv(b, it.i, dn_i64(k, H), "b"), h = LLVMBuildSRem(b, it.i, dn_i64(k, H), "h");
    LLVMValueRef pos = LLVMBuildSExt(b, dn_load_i32(k, k->in[5], row), k->L->i64, "pos");
    LLVMValueRef valid = LLVMBuildICmp(b, LLVMIntULT, pos, dn_i64(k, S), "valid");
    LLVMValueRef len = LLVMBuildSelect(b, valid, dn_add(k, pos, dn_i64(k, 1)), dn_i64(k, 0), "len");
    LLVMValueRef hf = dn_mul(k, h, dn_i64(k, dh));
    LLVMValueRef qb = dn_add(k, dn_mul(k, row, dn_i64(k, E)), hf);     /* q, k, v and o: [B, 1, E] */
    LLVMValueRef cb = dn_add(k, dn_mul(k, row, dn_i64(k, S * E)), hf); /* row 0 of the caches */
    LLVMValueRef at = dn_add(k, cb, dn_mul(k, LLVMBuildSelect(b, valid, pos, dn_i64(k, 0), ""), dn_i64(k, E)));

    LLVMBasicBlockRef after = dn_if_begin(k, valid); /* this step's keys and values into row pos */
    DnLoop lw = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, dh), "f");
    dn_store_f32(k, k->in[3], dn_add(k, at, lw.i), dn_load_f32(k, k->in[1], dn_add(k, qb, lw.i)));
    dn_store_f32(k, k->in[4], dn_add(k, at, lw.i), dn_load_f32(k, k->in[2], dn_add(k, qb, lw.i)));
    dn_loop_end(k, &lw);
    dn_if_end(k, after);

    LLVMValueRef mx = dn_var(k, f32, dn_f32(k, -INFINITY), "m");
    DnLoop l1 = dn_loop_begin(k, dn_i64(k, 0), len, "j");
    LLVMValueRef s1 = score(k, qb, dn_add(k, cb, dn_mul(k, l1.i, dn_i64(k, E))), dh, scale);
    LLVMValueRef m0 = dn_get(k, mx, f32);
    dn_set(k, mx, LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealOGT, s1, m0, ""), s1, m0, ""));
    dn_loop_end(k, &l1);

    DnLoop lz = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, dh), "f");
    dn_store_f32(k, k->out[0], dn_add(k, qb, lz.i), dn_f32(k, 0));
    dn_loop_end(k, &lz);
    LLVMValueRef sum = dn_var(k, f32, dn_f32(k, 0), "l");
    DnLoop l2 = dn_loop_begin(k, dn_i64(k, 0), len, "j");
    LLVMValueRef jb = dn_add(k, cb, dn_mul(k, l2.i, dn_i64(k, E)));
    LLVMValueRef p = dn_exp_f32(k, LLVMBuildFSub(b, score(k, qb, jb, dh, scale), dn_get(k, mx, f32), ""));
    dn_set(k, sum, dn_fadd(k, dn_get(k, sum, f32), p));
    DnLoop lv = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, dh), "f");
    LLVMValueRef oi = dn_add(k, qb, lv.i);
    dn_store_f32(k, k->out[0], oi,
                 dn_fma(k, p, dn_load_f32(k, k->in[4], dn_add(k, jb, lv.i)), dn_load_f32(k, k->out[0], oi)));
    dn_loop_end(k, &lv);
    dn_loop_end(k, &l2);

    after = dn_if_begin(k, valid);
    LLVMValueRef inv = LLVMBuildFDiv(b, dn_f32(k, 1), dn_get(k, sum, f32), "inv");
    DnLoop ln = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, dh), "f");
    LLVMValueRef on = dn_add(k, qb, ln.i);
    dn_store_f32(k, k->out[0], on, dn_fmul(k, dn_load_f32(k, k->out[0], on), inv));
    dn_loop_end(k, &ln);
    dn_if_end(k, after);
    dn_loop_end(k, &it);
}
