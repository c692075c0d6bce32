/* kernel_dense.c -- dense (y = act(x Wᵀ + b) over all leading axes) and
 * matmul (op(a) @ op(b) over the last two axes, with batch axes, b
 * optionally shared, and N allowed as the batch, M or K dimension).
 *
 * dense, and matmul x @ Wᵀ with one W, run in parallel over chunks of
 * output columns (emit_blocked, below); the other matmul forms over result
 * rows (batch x M).  Loop order keeps the innermost loop contiguous: for Bᵀ
 * (dense weights, trans_b) a dot product over K, otherwise a saxpy over the
 * result row.
 * Reductions carry reassoc/contract flags only (dn_fadd/dn_fmul), so the
 * vectorizer may split them; results differ by fp32 reassociation at most.
 */
#include "llvm_gemm.h"

static LLVMValueRef sdiv(DnKernel *k, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildSDiv(k->L->b, a, b, ""); }
static LLVMValueRef srem(DnKernel *k, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildSRem(k->L->b, a, b, ""); }

/* A dimension that may be the batch N or the sequence axis T. */
static LLVMValueRef dimv(DnKernel *k, int64_t d)
{
    if (DN_DIM_IS_SEQ(d)) return k->t;
    return d == DN_DIM_N ? k->n : dn_i64(k, d);
}

/* The shape of one matrix product, in elements; any of batch/M/K/P may
 * involve N (kept as LLVM values). */
typedef struct Mm {
    LLVMValueRef M, K, P;          /* op(a) [M, K], op(b) [K, P] */
    LLVMValueRef a_st, b_st, y_st; /* per-batch strides of a, b (0 when shared), y */
    bool ta, tb;
} Mm;

/* y[row, :] (row = t*M + i over all batches) = op(a) row @ op(b).  Writes
 * the row's P results; 'bias' (may be NULL) and relu for dense. */
static void emit_row(DnKernel *k, const Mm *mm, LLVMValueRef row, LLVMValueRef bias, bool relu)
{
    LLVMValueRef t = sdiv(k, row, mm->M), i = srem(k, row, mm->M);
    LLVMValueRef a0 = dn_mul(k, t, mm->a_st), b0 = dn_mul(k, t, mm->b_st), y0 = dn_mul(k, row, mm->P);
    if (mm->tb) { /* dot products: y[i, j] = sum_q a[i, q] * b[j, q] */
        DnLoop lj = dn_loop_begin(k, dn_i64(k, 0), mm->P, "j");
        LLVMValueRef acc = dn_var(k, k->L->f32, bias ? dn_load_f32(k, bias, lj.i) : dn_f32(k, 0), "acc");
        DnLoop lq = dn_loop_begin(k, dn_i64(k, 0), mm->K, "q");
        LLVMValueRef ai = mm->ta ? dn_add(k, dn_mul(k, lq.i, mm->M), i) : dn_add(k, dn_mul(k, i, mm->K), lq.i);
        LLVMValueRef av = dn_load_f32(k, k->in[0], dn_add(k, a0, ai));
        LLVMValueRef bv = dn_load_f32(k, k->in[1], dn_add(k, b0, dn_add(k, dn_mul(k, lj.i, mm->K), lq.i)));
        dn_set(k, acc, dn_fadd(k, dn_get(k, acc, k->L->f32), dn_fmul(k, av, bv)));
        dn_loop_end(k, &lq);
        LLVMValueRef r = dn_get(k, acc, k->L->f32);
        if (relu)
            r = LLVMBuildSelect(k->L->b, LLVMBuildFCmp(k->L->b, LLVMRealOLT, r, dn_f32(k, 0), ""), dn_f32(k, 0), r, "");
        dn_store_f32(k, k->out[0], dn_add(k, y0, lj.i), r);
        dn_loop_end(k, &lj);
        return;
    }
    /* saxpy form: y[i, :] = 0; for q: y[i, :] += a[i, q] * b[q, :] */
    DnLoop lz = dn_loop_begin(k, dn_i64(k, 0), mm->P, "j");
    dn_store_f32(k, k->out[0], dn_add(k, y0, lz.i), dn_f32(k, 0));
    dn_loop_end(k, &lz);
    DnLoop lq = dn_loop_begin(k, dn_i64(k, 0), mm->K, "q");
    LLVMValueRef ai = mm->ta ? dn_add(k, dn_mul(k, lq.i, mm->M), i) : dn_add(k, dn_mul(k, i, mm->K), lq.i);
    LLVMValueRef av = dn_load_f32(k, k->in[0], dn_add(k, a0, ai));
    LLVMValueRef brow = dn_add(k, b0, dn_mul(k, lq.i, mm->P));
    DnLoop lj = dn_loop_begin(k, dn_i64(k, 0), mm->P, "j");
    LLVMValueRef yi = dn_add(k, y0, lj.i);
    LLVMValueRef bv = dn_load_f32(k, k->in[1], dn_add(k, brow, lj.i));
    dn_store_f32(k, k->out[0], yi, dn_fadd(k, dn_load_f32(k, k->out[0], yi), dn_fmul(k, av, bv)));
    dn_loop_end(k, &lj);
    dn_loop_end(k, &lq);
}

/* Register block for the dot-product form with one shared, untransposed
 * pair (a rows contiguous, b [P, K] shared by all rows):  R rows x J
 * columns of y accumulate together, so every loaded element of a is used
 * J times and every element of b R times.  The vectorizer turns each of
 * the R x J sums into a vector over K: 8 x 2 or 4 x 4 of them fit
 * AVX-512's 32 registers with their operands, 4 x 2 AVX2's 16.
 *
 * The parallel loop runs over chunks of JC output columns (b rows), each
 * unit taking every row of a: its JC x K block of b (at most DENSE_B_CHUNK
 * floats, at least 4 chunks where P allows) stays in the L2 cache from one
 * block of rows to the next, b is read from memory once per call however
 * many rows there are, and one row (batch 1) still spreads over every
 * core.  When P is too narrow for two chunks, b is small anyway and the
 * loop runs over rows instead.  The rows go in blocks of 8 (AVX-512),
 * then 4, then one by one; each element is one sum in a fixed order,
 * whatever the thread count. */
enum { BLK_R = 8, DENSE_B_CHUNK = 65536 };

static LLVMValueRef epilogue(DnKernel *k, LLVMValueRef r, bool relu)
{
    if (!relu) return r;
    return LLVMBuildSelect(k->L->b, LLVMBuildFCmp(k->L->b, LLVMRealOLT, r, dn_f32(k, 0), ""), dn_f32(k, 0), r, "");
}

/* y rows row0 .. row0+R-1, columns j0 .. j0 + J*nj - 1 (nj an i64 value). */
static void emit_block(DnKernel *k, const Mm *mm, LLVMValueRef row0, int R, int J, LLVMValueRef j0, LLVMValueRef nj,
                       LLVMValueRef bias, bool relu)
{
    LLVMValueRef acc[BLK_R][4], jj[4];
    DnLoop lj = dn_loop_begin(k, dn_i64(k, 0), nj, "jb");
    for (int c = 0; c < J; c++) jj[c] = dn_add(k, j0, dn_add(k, dn_mul(k, lj.i, dn_i64(k, J)), dn_i64(k, c)));
    for (int r = 0; r < R; r++)
        for (int c = 0; c < J; c++)
            acc[r][c] = dn_var(k, k->L->f32, bias ? dn_load_f32(k, bias, jj[c]) : dn_f32(k, 0), "acc");
    DnLoop lq = dn_loop_begin(k, dn_i64(k, 0), mm->K, "q");
    LLVMValueRef av[BLK_R], bv[4];
    for (int c = 0; c < J; c++) bv[c] = dn_load_f32(k, k->in[1], dn_add(k, dn_mul(k, jj[c], mm->K), lq.i));
    for (int r = 0; r < R; r++)
        av[r] = dn_load_f32(k, k->in[0], dn_add(k, dn_mul(k, dn_add(k, row0, dn_i64(k, r)), mm->K), lq.i));
    for (int r = 0; r < R; r++)
        for (int c = 0; c < J; c++)
            dn_set(k, acc[r][c], dn_fadd(k, dn_get(k, acc[r][c], k->L->f32), dn_fmul(k, av[r], bv[c])));
    dn_loop_end(k, &lq);
    for (int r = 0; r < R; r++)
        for (int c = 0; c < J; c++) {
            LLVMValueRef yi = dn_add(k, dn_mul(k, dn_add(k, row0, dn_i64(k, r)), mm->P), jj[c]);
            dn_store_f32(k, k->out[0], yi, epilogue(k, dn_get(k, acc[r][c], k->L->f32), relu));
        }
    dn_loop_end(k, &lj);
}

/* Rows [lo, lo + R * nblk) in blocks of R (nblk an i64 value), columns j0 .. j0 + len - 1. */
static void emit_row_blocks(DnKernel *k, const Mm *mm, LLVMValueRef lo, LLVMValueRef nblk, int R, int J,
                            LLVMValueRef j0, LLVMValueRef len, LLVMValueRef bias, bool relu)
{
    DnLoop lb = dn_loop_begin(k, dn_i64(k, 0), nblk, "rblk");
    LLVMValueRef nj = LLVMBuildSDiv(k->L->b, len, dn_i64(k, J), "");
    emit_block(k, mm, dn_add(k, lo, dn_mul(k, lb.i, dn_i64(k, R))), R, J, j0, nj, bias, relu);
    dn_loop_end(k, &lb);
}

/* Rows [lo, hi) (i64 values) of columns j0 .. j0 + len - 1, in the
 * blocks of 8, 4 and 1 rows. */
static void emit_rows_tiered(DnKernel *k, const Mm *mm, int J, LLVMValueRef lo, LLVMValueRef hi, LLVMValueRef j0,
                             LLVMValueRef len, LLVMValueRef bias, bool relu)
{
    LLVMBuilderRef bld = k->L->b;
    bool wide = k->L->vec_regs >= 32;
    LLVMValueRef done = lo;
    if (wide) { /* blocks of 8 rows */
        LLVMValueRef n8 = LLVMBuildSDiv(bld, LLVMBuildSub(bld, hi, done, ""), dn_i64(k, 8), "");
        emit_row_blocks(k, mm, done, n8, 8, J < 2 ? J : 2, j0, len, bias, relu);
        done = dn_add(k, done, dn_mul(k, n8, dn_i64(k, 8)));
    }
    LLVMValueRef n4 = LLVMBuildSDiv(bld, LLVMBuildSub(bld, hi, done, ""), dn_i64(k, 4), "");
    emit_row_blocks(k, mm, done, n4, 4, wide || J < 2 ? J : 2, j0, len, bias, relu);
    done = dn_add(k, done, dn_mul(k, n4, dn_i64(k, 4)));
    emit_row_blocks(k, mm, done, LLVMBuildSub(bld, hi, done, ""), 1, J, j0, len, bias, relu);
}

/* Sets the parallel loop and emits x @ bᵀ for the P columns of every row:
 * 'rows_static' rows (per item when 'has_n'), 'rows' their count (an i64
 * value). */
static void emit_blocked(DnKernel *k, const Mm *mm, int64_t P, int64_t rows_static, bool has_n, LLVMValueRef rows,
                         LLVMValueRef bias, bool relu)
{
    int J = P % 4 == 0 ? 4 : P % 2 == 0 ? 2 : 1;
    int64_t K = LLVMConstIntGetSExtValue(mm->K);
    int64_t jc = DENSE_B_CHUNK / (K > 0 ? K : 1), quarter = (P + 3) / 4;
    if (jc > quarter) jc = quarter;
    jc = jc < J ? J : jc / J * J;
    int64_t nchunk = (P + jc - 1) / jc;
    if (nchunk < 2) { /* too narrow to split: in parallel over rows */
        k->par_n = has_n ? rows_static : 0;
        k->par_b = has_n ? 0 : rows_static;
        emit_rows_tiered(k, mm, J, k->begin, k->end, dn_i64(k, 0), dn_i64(k, P), bias, relu);
        return;
    }
    k->par_n = 0, k->par_b = nchunk;
    DnLoop lc = dn_loop_begin(k, k->begin, k->end, "chunk");
    LLVMValueRef j0 = dn_mul(k, lc.i, dn_i64(k, jc));
    LLVMValueRef len = dn_imin(k, dn_i64(k, jc), LLVMBuildSub(k->L->b, dn_i64(k, P), j0, ""));
    emit_rows_tiered(k, mm, J, dn_i64(k, 0), rows, j0, len, bias, relu);
    dn_loop_end(k, &lc);
}

/* Sets the parallel count to 'rows' = rows_static (* N when 'has_n') and
 * emits  for row in [begin, end): emit_row. */
static void emit_rows(DnKernel *k, const Mm *mm, int64_t rows_static, bool has_n, LLVMValueRef bias, bool relu)
{
    k->par_n = has_n ? rows_static : 0;
    k->par_b = has_n ? 0 : rows_static;
    DnLoop l = dn_loop_begin(k, k->begin, k->end, "row");
    emit_row(k, mm, l.i, bias, relu);
    dn_loop_end(k, &l);
}

void dn_kernel_dense(DnKernel *k)
{
    const DnValue *x = k->op->in[0], *w = k->op->in[1];
    int64_t in = w->shape.dim[1], out = w->shape.dim[0];
    bool has_n = dn_shape_has_n(&x->shape);
    int64_t rows = dn_shape_numel_static(&x->shape) / in;
    Mm mm = {.M = dn_i64(k, 1),
             .K = dn_i64(k, in),
             .P = dn_i64(k, out),
             .a_st = dn_i64(k, in),
             .b_st = dn_i64(k, 0),
             .y_st = dn_i64(k, out),
             .ta = false,
             .tb = true};
    bool relu = !strcmp(dn_op_str(k->op, "act"), "relu");
    LLVMValueRef nrows = has_n ? dn_mul(k, k->n, dn_i64(k, rows)) : dn_i64(k, rows);
    emit_blocked(k, &mm, out, rows, has_n, nrows, k->op->nin > 2 ? k->in[2] : NULL, relu);
}

void dn_kernel_matmul(DnKernel *k)
{
    if (dn_matmul_gemm(k)) return;
    const DnValue *a = k->op->in[0], *b = k->op->in[1];
    int ra = a->shape.rank, rb = b->shape.rank;
    Mm mm = {.ta = dn_op_int(k->op, "trans_a") != 0, .tb = dn_op_int(k->op, "trans_b") != 0};
    int64_t m = a->shape.dim[ra - 2 + mm.ta], kk = a->shape.dim[ra - 1 - mm.ta], p = b->shape.dim[rb - 1 - mm.tb];
    mm.M = dimv(k, m), mm.K = dimv(k, kk), mm.P = dimv(k, p);
    mm.a_st = dn_mul(k, mm.M, mm.K);
    mm.b_st = rb == 2 ? dn_i64(k, 0) : dn_mul(k, mm.K, mm.P);
    mm.y_st = dn_mul(k, mm.M, mm.P);
    int64_t batch = 1;
    bool has_n = m == DN_DIM_N;
    for (int i = 0; i < ra - 2; i++) {
        if (a->shape.dim[i] == DN_DIM_N)
            has_n = true;
        else
            batch *= a->shape.dim[i];
    }
    int64_t rows = batch * (m == DN_DIM_N ? 1 : m);
    if (rb == 2 && !mm.ta && mm.tb) { /* x @ Wᵀ with one W: rows are independent */
        emit_blocked(k, &mm, p, rows, has_n, has_n ? dn_mul(k, k->n, dn_i64(k, rows)) : dn_i64(k, rows), NULL, false);
        return;
    }
    emit_rows(k, &mm, rows, has_n, NULL, false);
}
