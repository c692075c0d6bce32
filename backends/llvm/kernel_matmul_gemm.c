/* kernel_matmul_gemm.c -- matmul of two matrices on the register-blocked
 * micro-kernel (llvm_gemm.c): y[M, P] = op(a)[M, K] · b[K, P] with b not
 * transposed, which is the form of every weight and input gradient of a
 * dense layer (dx = dy · W, dW = dyᵀ · x).  op(a) is read in place
 * (broadcast one element at a time, so a transposed a costs nothing).
 *
 * Small b (under 512 KiB, so it stays in the L2 cache) is read in place,
 * one row of vectors at a time; with K the batch N, that is decided per
 * call.  A larger b is cache-blocked as BLIS does it, for a worker with at
 * least PACK_MIN_ROWS rows: for each block of NC
 * columns and KC reduction steps, the worker packs that block of b into
 * its workspace slice as panels of one register tile's width (KC rows of
 * W * NV contiguous floats: a panel stays in L1 while the row tiles run
 * over it, the block in L2), then runs the micro-kernel over MC-row blocks
 * x panels x row tiles, accumulating into y from the second KC block on.
 * Each element is still summed in k order, so the results equal the
 * unblocked form's and do not depend on the split.
 *
 * The rows of y are the parallel iterations (as in kernel_dense.c), so
 * each thread computes whole rows.  M or K may be the batch N; P must be
 * static.  Other forms (batched, trans_b, a run-time stride) are left to
 * kernel_dense.c: dn_matmul_gemm returns false for them, emitting nothing.
 */
#include "llvm_gemm.h"

enum {
    GEMM_KC = 256,                 /* reduction steps per packed block */
    GEMM_NC = 256,                 /* columns per packed block (a multiple of every panel width) */
    GEMM_MC = 192,                 /* rows per pass over the block's panels */
    PACK_MIN_B_BYTES = 512 * 1024, /* b at least this large is packed */
    PACK_MIN_ROWS = 32,            /* ... for a worker with at least this many rows */
};

typedef struct MatmulForm {
    bool ta;
    int64_t M, K, P; /* M or K may be DN_DIM_N */
} MatmulForm;

/* The form this file takes, or false. */
static bool matmul_form(const DnOp *op, MatmulForm *f)
{
    const DnValue *a = op->in[0], *b = op->in[1];
    bool tb = dn_op_int(op, "trans_b") != 0;
    f->ta = dn_op_int(op, "trans_a") != 0;
    if (a->shape.rank != 2 || b->shape.rank != 2 || tb) return false;
    f->M = a->shape.dim[f->ta], f->K = a->shape.dim[1 - f->ta], f->P = b->shape.dim[1];
    /* a's strides must be static: (M, K) at [m * K + k], or [k * M + m] when transposed */
    return f->P != DN_DIM_N && (f->ta ? f->M : f->K) != DN_DIM_N;
}

static bool packs_b(const MatmulForm *f)
{
    return f->P >= 64 && (f->K == DN_DIM_N || f->K * f->P * 4 >= PACK_MIN_B_BYTES);
}

bool dn_matmul_gemm_scratch(const DnOp *op, DnScratch *s)
{
    MatmulForm f;
    if (!matmul_form(op, &f)) return false;
    *s = (DnScratch){.slice = packs_b(&f) ? dn_ws_f32_bytes(GEMM_KC * GEMM_NC) : 0};
    return true;
}

/* Calls panel(k, ctx, p0, width) for the panels of a block nc columns
 * wide: the full ones (nr wide) in a loop, p0 an i64 value, then the
 * narrower last one.  So the code holds two panels whatever the size. */
typedef void (*PanelFn)(DnKernel *k, void *ctx, LLVMValueRef p0, int64_t width);

static void each_panel(DnKernel *k, int64_t nc, int64_t nr, PanelFn panel, void *ctx)
{
    int64_t nfull = nc / nr, rem = nc % nr;
    if (nfull > 0) {
        DnLoop lp = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, nfull), "panel");
        panel(k, ctx, dn_mul(k, lp.i, dn_i64(k, nr)), nr);
        dn_loop_end(k, &lp);
    }
    if (rem > 0) panel(k, ctx, dn_i64(k, nfull * nr), rem);
}

/* What the panels of one packed block share. */
typedef struct Block {
    LLVMValueRef buf, jc; /* the packed block; its first column of b (i64) */
    int64_t P, nr;
    LLVMValueRef pc, kc; /* pack: its first reduction step and their count */
    const DnGemm *g;     /* macro: the product over the packed block */
    int mr;
    LLVMValueRef r0, r1, tiles, rest; /* macro: the MC-row block, its full row tiles and the rows after them */
} Block;

/* buf[p0 * KC + kk * nr + c] = b[(pc + kk) * P + jc + p0 + c] for the
 * block's kc rows and the panel's 'width' columns. */
static void pack_panel(DnKernel *k, void *ctx, LLVMValueRef p0, int64_t width)
{
    const Block *B = ctx;
    DnLoop lk = dn_loop_begin(k, dn_i64(k, 0), B->kc, "kk");
    LLVMValueRef src = dn_add(k, dn_mul(k, dn_add(k, B->pc, lk.i), dn_i64(k, B->P)), dn_add(k, B->jc, p0));
    LLVMValueRef dst = dn_add(k, dn_mul(k, p0, dn_i64(k, GEMM_KC)), dn_mul(k, lk.i, dn_i64(k, B->nr)));
    DnLoop lc = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, width), "c");
    dn_store_f32(k, B->buf, dn_add(k, dst, lc.i), dn_load_f32(k, k->in[1], dn_add(k, src, lc.i)));
    dn_loop_end(k, &lc);
    dn_loop_end(k, &lk);
}

/* The row tiles of the MC-row block over one panel: full mr-row tiles,
 * then the remaining rows one at a time. */
static void macro_panel(DnKernel *k, void *ctx, LLVMValueRef p0, int64_t width)
{
    const Block *B = ctx;
    int w = dn_gemm_lanes(k);
    int nve = (int)((width + w - 1) / w), nlast = (int)(width - (int64_t)w * (nve - 1));
    DnGemm g = *B->g;
    LLVMValueRef n0 = dn_add(k, B->jc, p0);
    g.b_off =
        LLVMBuildSub(k->L->b, dn_mul(k, p0, dn_i64(k, GEMM_KC)), n0, ""); /* B(k, n) at buf[p0 KC + k nr + n - n0] */
    DnLoop lt = dn_loop_begin(k, dn_i64(k, 0), B->tiles, "mtile");
    dn_gemm_tile(k, &g, dn_add(k, B->r0, dn_mul(k, lt.i, dn_i64(k, B->mr))), n0, B->mr, nve, nlast);
    dn_loop_end(k, &lt);
    DnLoop lr = dn_loop_begin(k, B->rest, B->r1, "mrow");
    dn_gemm_tile(k, &g, lr.i, n0, 1, nve, nlast);
    dn_loop_end(k, &lr);
}

/* The rows [begin, end) over every panel of the packed block, in blocks of
 * MC rows (the rows' KC-wide strip of a stays in L2 while the panels pass). */
static void macro_kernel(DnKernel *k, Block *B, int64_t nc)
{
    LLVMBuilderRef b = k->L->b;
    LLVMValueRef rows = LLVMBuildSub(b, k->end, k->begin, "");
    LLVMValueRef nmb = LLVMBuildSDiv(b, dn_add(k, rows, dn_i64(k, GEMM_MC - 1)), dn_i64(k, GEMM_MC), "");
    DnLoop lm = dn_loop_begin(k, dn_i64(k, 0), nmb, "mblk");
    B->r0 = dn_add(k, k->begin, dn_mul(k, lm.i, dn_i64(k, GEMM_MC)));
    B->r1 = dn_imin(k, dn_add(k, B->r0, dn_i64(k, GEMM_MC)), k->end);
    B->tiles = LLVMBuildSDiv(b, LLVMBuildSub(b, B->r1, B->r0, ""), dn_i64(k, B->mr), "tiles");
    B->rest = dn_add(k, B->r0, dn_mul(k, B->tiles, dn_i64(k, B->mr)));
    each_panel(k, nc, B->nr, macro_panel, B);
    dn_loop_end(k, &lm);
}

/* The nc columns of y from column jc (an i64 value), block by block of KC
 * reduction steps: pack, then multiply. */
static void packed_columns(DnKernel *k, const DnGemm *g, const MatmulForm *f, LLVMValueRef buf, LLVMValueRef jc,
                           int64_t nc, int64_t nr, int mr)
{
    LLVMValueRef K = g->K1;
    LLVMValueRef nblk = LLVMBuildSDiv(k->L->b, dn_add(k, K, dn_i64(k, GEMM_KC - 1)), dn_i64(k, GEMM_KC), "");
    DnLoop lp = dn_loop_begin(k, dn_i64(k, 0), nblk, "kblk");
    LLVMValueRef pc = dn_mul(k, lp.i, dn_i64(k, GEMM_KC));
    LLVMValueRef kc = dn_imin(k, dn_i64(k, GEMM_KC), LLVMBuildSub(k->L->b, K, pc, ""));
    DnGemm gb = *g;
    gb.b = buf, gb.ldb = nr, gb.K1 = kc;
    gb.load_c_if = LLVMBuildICmp(k->L->b, LLVMIntNE, lp.i, dn_i64(k, 0), "later"); /* the first block overwrites y */
    gb.a_row0 = dn_mul(k, pc, dn_i64(k, g->a_s1));
    Block B = {.buf = buf, .jc = jc, .P = f->P, .nr = nr, .pc = pc, .kc = kc, .g = &gb, .mr = mr};
    each_panel(k, nc, nr, pack_panel, &B);
    macro_kernel(k, &B, nc);
    dn_loop_end(k, &lp);
}

/* The packed product: the full NC-wide column blocks in a loop, then the
 * narrower last one. */
static void emit_packed(DnKernel *k, const DnGemm *g, const MatmulForm *f)
{
    int mr, nv;
    dn_gemm_shape(0, f->P, &mr, &nv);
    int64_t nr = (int64_t)dn_gemm_lanes(k) * nv, nfull = f->P / GEMM_NC, rem = f->P % GEMM_NC;
    LLVMValueRef buf = dn_ws_slice_f32(k, GEMM_KC * GEMM_NC, "bpack");
    if (nfull > 0) {
        DnLoop lj = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, nfull), "jc");
        packed_columns(k, g, f, buf, dn_mul(k, lj.i, dn_i64(k, GEMM_NC)), GEMM_NC, nr, mr);
        dn_loop_end(k, &lj);
    }
    if (rem > 0) packed_columns(k, g, f, buf, dn_i64(k, nfull * GEMM_NC), rem, nr, mr);
}

bool dn_matmul_gemm(DnKernel *k)
{
    MatmulForm f;
    if (!dn_llvm_fast_kernels(k) || !matmul_form(k->op, &f)) return false;
    int64_t M = f.M, K = f.K, P = f.P;
    k->par_n = M == DN_DIM_N ? 1 : 0;
    k->par_b = M == DN_DIM_N ? 0 : M;
    DnGemm g = {.a = k->in[0],
                .b = k->in[1],
                .c = k->out[0],
                .a_row0 = dn_i64(k, 0),
                .a_sm = f.ta ? 1 : K,
                .K1 = K == DN_DIM_N ? k->n : dn_i64(k, K),
                .K2 = 1,
                .a_s1 = f.ta ? M : 1,
                .b_off = dn_i64(k, 0),
                .ldb = P,
                .c_off = dn_i64(k, 0),
                .c_sm = P,
                .c_sn = 1};
    if (!packs_b(&f)) {
        dn_gemm_range(k, &g, k->begin, k->end, P);
        return true;
    }
    LLVMBuilderRef b = k->L->b;
    LLVMValueRef many =
        LLVMBuildICmp(b, LLVMIntSGE, LLVMBuildSub(b, k->end, k->begin, ""), dn_i64(k, PACK_MIN_ROWS), "");
    if (K == DN_DIM_N) { /* a reduction over the batch: b is large only for a large batch */
        LLVMValueRef bytes = dn_mul(k, k->n, dn_i64(k, 4 * P));
        many = LLVMBuildAnd(b, many, LLVMBuildICmp(b, LLVMIntSGE, bytes, dn_i64(k, PACK_MIN_B_BYTES), ""), "");
    }
    LLVMBasicBlockRef after = dn_if_begin(k, many);
    emit_packed(k, &g, &f);
    dn_if_end(k, after);
    after = dn_if_begin(k, LLVMBuildNot(b, many, ""));
    dn_gemm_range(k, &g, k->begin, k->end, P);
    dn_if_end(k, after);
    return true;
}
