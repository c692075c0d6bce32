/* kernel_matmul_gemm.c -- matmul of two matrices on the register-blocked
 * micro-kernel (llvm_gemm.c): y[M, P] = op(a)[M, K] · b[K, P] with b not
 * transposed, which is the form of every weight and input gradient of a
 * dense layer (dx = dy · W, dW = dyᵀ · x).  op(a) is read in place
 * (broadcast one element at a time, so a transposed a costs nothing) and
 * b one row of 8-wide vectors at a time; no packing, no scratch.
 *
 * The rows of y are the parallel iterations (as in kernel_dense.c), so
 * each thread computes whole rows with the same summation order whatever
 * the split.  M or K may be the batch N; P must be static.  Other forms
 * (batched, trans_b, a run-time stride) are left to kernel_dense.c:
 * dn_matmul_gemm returns false for them, emitting nothing.
 */
#include <stdlib.h>

#include "llvm_gemm.h"

bool dn_matmul_gemm(DnKernel *k)
{
    const DnValue *a = k->op->in[0], *b = k->op->in[1];
    bool ta = dn_op_int(k->op, "trans_a") != 0, tb = dn_op_int(k->op, "trans_b") != 0;
    if (!dn_llvm_fast_kernels(k) || a->shape.rank != 2 || b->shape.rank != 2 || tb) return false;
    int64_t M = a->shape.dim[ta], K = a->shape.dim[1 - ta], P = b->shape.dim[1];
    /* a's strides must be static: (M, K) at [m * K + k], or [k * M + m] when transposed */
    if (P == DN_DIM_N || (ta ? M : K) == DN_DIM_N) return false;
    k->par_n = M == DN_DIM_N ? 1 : 0;
    k->par_b = M == DN_DIM_N ? 0 : M;
    DnGemm g = {.a = k->in[0],
                .b = k->in[1],
                .c = k->out[0],
                .a_row0 = dn_i64(k, 0),
                .a_sm = ta ? 1 : K,
                .K1 = K == DN_DIM_N ? k->n : dn_i64(k, K),
                .K2 = 1,
                .a_s1 = ta ? M : 1,
                .b_off = dn_i64(k, 0),
                .ldb = P,
                .c_off = dn_i64(k, 0),
                .c_sm = P,
                .c_sn = 1};
    dn_gemm_range(k, &g, k->begin, k->end, P);
    return true;
}
